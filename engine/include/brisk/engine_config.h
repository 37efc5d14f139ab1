#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace brisk {

enum class SchedulerPolicy { Continuous, Static };
const char* policy_name(SchedulerPolicy p);

// Everything that decides how the engine runs. Validated up front by
// validate(): nonsense values are errors naming the field and why.
struct EngineConfig {
  // Model: a GGUF file, a Hugging Face directory, a llama2.c .bin, or "demo".
  std::string model = "demo";
  std::string tokenizer;  // optional override (needed for llama2.c checkpoints)

  // KV cache: sized from num_kv_blocks if > 0, else from kv_cache_bytes if > 0,
  // else enough for max_num_seqs full-context sequences capped at 1 GiB.
  int block_size = 16;
  int64_t num_kv_blocks = 0;
  int64_t kv_cache_bytes = 0;

  // Scheduler.
  SchedulerPolicy policy = SchedulerPolicy::Continuous;
  int max_num_seqs = 32;
  int max_num_batched_tokens = 2048;
  bool enable_chunked_prefill = true;
  int max_model_len = 0;  // 0 = the model's context length
  // Prefix caching (continuous policy): full KV blocks are kept, keyed by
  // their tokens, and a new request reuses the longest cached prefix of its
  // prompt instead of recomputing it. An A/B knob; on by default.
  bool enable_prefix_caching = true;

  // Speculative decoding by prompt lookup (continuous policy; greedy
  // single-sequence requests only): each decode step proposes up to
  // speculative_tokens tokens that followed the most recent earlier
  // occurrence of the sequence's last n tokens (n = speculative_ngram down
  // to 1), and verifies them in the same forward. Output is unchanged.
  int speculative_tokens = 0;  // 0 = off
  int speculative_ngram = 3;

  // Precision. weight_dtype "auto" runs the weights as stored; otherwise the
  // matmul weights are converted at load: "f32", "f16", "bf16", "q8_0",
  // "int8" (symmetric, one scale per output channel), "fp8-e4m3", "fp8-e5m2"
  // (scaled per output channel, or per tensor with fp8_per_tensor_scale).
  // The embedding table and the classifier keep their stored type unless
  // quantize_embeddings is set. int8_activations turns on the W8A8 path for
  // int8 weights (activations quantized per token, integer dot products).
  // kv_dtype: "f32", "f16", "bf16", "fp8-e4m3" or "int8" (the last two with
  // one scale per token and KV head).
  std::string weight_dtype = "auto";
  bool quantize_embeddings = false;
  bool fp8_per_tensor_scale = false;
  bool int8_activations = false;  // applies to I8 weights (converted, or stored so with weight_dtype auto)
  std::string kv_dtype = "f32";

  // Backend: "auto" (CUDA when a device exists, else CPU), "cpu" or "cuda".
  std::string backend = "auto";
  int threads = 0;  // 0 = physical cores (CPU backend, and host work)
  // CUDA: without num_kv_blocks / kv_cache_bytes, the KV pool takes this
  // fraction of the device memory left free once weights and workspace are
  // placed (as vLLM's gpu_memory_utilization, but of free memory).
  double gpu_memory_utilization = 0.9;
  // CUDA: decode steps replay a graph captured per batch-size bucket.
  bool cuda_graphs = true;
  // CUDA: a decode step of up to 8 rows folds each RMSNorm, residual add and
  // SwiGLU into the GEMV beside it (seven launches a layer instead of twelve).
  bool fused_decode = true;
  // CUDA (sm_90+): each decode kernel launches while the one before it
  // finishes and loads what does not depend on it (weights, KV cache lines)
  // before waiting for its output (programmatic dependent launch).
  bool dependent_launch = true;
  // CUDA, with fused_decode: RoPE and the KV cache write (F32, F16 or BF16
  // caches) run in the epilogue of the q/k/v projection, whose warps each
  // stream a rotation pair of rows, instead of in a launch of their own.
  // Off: on an H100 it was no faster (docs/BENCHMARKS.md, twelfth session).
  bool fused_rope = false;
  // CUDA, FP8 weights: the prefill GEMMs keep their partial sums in the
  // tensor cores' accumulator over the whole K (cuBLASLt's fast
  // accumulation) instead of promoting them to F32 every few steps. On by
  // default: on an H100 a 1.1B layer's prefill GEMMs ran 1.57x F16 with it
  // and 1.38x without, and the error it adds is 2% of FP8's own (relative
  // error 0.0250 against 0.0246 at K = 2048; docs/BENCHMARKS.md).
  bool fp8_fast_accum = true;
  // CUDA: decode attention split over the context merges its partitions in
  // the attention kernel (the row's last block to finish, counted through a
  // per-row counter) instead of a reduce kernel launched after it: one
  // launch a layer fewer, the same arithmetic. Off: on an H100 it was no
  // faster (docs/BENCHMARKS.md, twelfth session).
  bool split_merge_in_kernel = false;
  // CUDA, with fused_decode: once a layer's q/k/v projection is done, a
  // small kernel starts moving the weights read next (wo, then the first
  // rows of gate and up, up to half the device's L2 cache) from device
  // memory into L2, so RoPE and attention, which read almost nothing, no
  // longer leave the memory idle and the projections after them read part
  // of their weights from L2. A hint: the arithmetic is unchanged. Off until
  // measured on a device (docs/BENCHMARKS.md, thirteenth session).
  bool l2_prefetch = false;
  // CUDA, with fused_decode: a decode step of one sequence (F16 or BF16
  // weights, F32/F16/BF16 KV cache) runs all of its layers in one persistent
  // kernel launch: every multiprocessor stays resident and the phases of a
  // layer (q/k/v projection, RoPE + KV write + attention, wo, gate/up +
  // SwiGLU, down) are separated by grid-wide barriers instead of kernel
  // boundaries, each block prefetching its next phase's weight rows into L2
  // before it waits. The same arithmetic up to summation order. An A/B knob,
  // off until measured on a GPU (docs/BENCHMARKS.md, fourteenth session).
  bool persistent_decode = false;
  // CPU: weights of 2 MiB or more are copied into transparent huge pages at
  // load (up to half the memory available) instead of being read from the
  // file mapping in 4 KiB pages.
  bool huge_page_weights = true;
  // CPU, INT8 weights without int8_activations: by default (on AVX-512 VNNI
  // CPUs) the activations are rounded to 24-bit integers per row and the
  // products are VNNI dot products (W8A24, ref::matmul_w8a24). Q8_0 weights:
  // by default (AVX-512) the activations are rounded to 16-bit integers per
  // row and each block is a vpmaddwd dot product (ref::matmul_q8_0_w16).
  // int8_fma widens either to F32 and uses FMAs instead (an A/B knob).
  bool int8_fma = false;
  // CPU, FP8 weights: by default (on CPUs with AVX-512 BF16 and VBMI) the
  // codes are mapped to BF16 and multiplied with BF16 dot products against
  // the activations carried as two BF16 each (cpu::matmul_fp8_dpbf16);
  // fp8_fma widens the weights to F32 and uses FMAs instead (an A/B knob).
  bool fp8_fma = false;

  uint64_t seed = 0;  // default seed for requests that set none

  std::string validate() const;  // empty when valid
};

// Every field as one JSON object (the "config" of a benchmark result; the
// same keys as the results schema's config), compact.
std::string to_json(const EngineConfig& c);

// The fields only the CUDA backend reads (gpu_memory_utilization,
// cuda_graphs, fused_decode, dependent_launch, fused_rope, fp8_fast_accum,
// split_merge_in_kernel, l2_prefetch, persistent_decode; matrix-file
// spelling): on the CPU they change nothing.
const std::vector<std::string>& cuda_only_fields();
// Those c sets away from their defaults, in cuda_only_fields() order.
std::vector<std::string> cuda_only_fields_set(const EngineConfig& c);
// Puts them back at their defaults: what a run on the CPU records, so a
// result names no setting that did nothing.
void reset_cuda_only_fields(EngineConfig& c);

}  // namespace brisk
