// The op interface the model code is written against. Tensors are handles
// the backend owns (they may live in device memory); the model code never
// dereferences them. Activation tensors are [rows, cols] F32 planned once at
// their maximum row count; ops take the number of rows `n` actually in use.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/dtype.h"

namespace brisk {

struct WeightTensor;

struct Tensor {
  void* handle = nullptr;  // opaque to the model code
  void* scales =
      nullptr;  // scaled dtypes (I8, F8_*): one F32 per row (weights) / per row and KV head (cache)
  DType dtype = DType::F32;
  int64_t rows = 0, cols = 0;
};

// The per-step attention metadata (device copies of the runner's arrays).
struct AttentionBatch {
  int num_seqs = 0;
  Tensor query_start;   // I32 [num_seqs + 1]
  Tensor seq_lens;      // I32 [num_seqs]
  Tensor block_tables;  // I32 [num_seqs, max_blocks_per_seq]
  int max_blocks_per_seq = 0;
  int block_size = 16;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;

  // A weight as stored by the loader (CPU: used in place, no copy).
  virtual Tensor weight(const WeightTensor& w) = 0;
  // Zero-initialised storage, owned by the backend until it is destroyed.
  virtual Tensor alloc(DType dtype, int64_t rows, int64_t cols) = 0;
  virtual void upload(Tensor dst, const void* src, int64_t rows) = 0;
  virtual void download(void* dst, Tensor src, int64_t rows) = 0;

  virtual void embed(Tensor out, Tensor table, Tensor ids, int n) = 0;
  virtual void rmsnorm(Tensor out, Tensor x, Tensor w, int n, float eps) = 0;
  virtual void matmul(Tensor out, Tensor x, Tensor w, int n) = 0;  // out[n, N] = x[n, K] * w[N, K]^T
  virtual void rope(Tensor x, Tensor positions, int n, int n_heads, int head_dim, int rot_dim,
                    float theta) = 0;
  // A zero-initialised KV cache of one layer's K (or V): `slots` rows of
  // n_kv_heads * head_dim values stored as dtype (F32, F16, BF16, I8 or
  // F8_E4M3), and for I8/F8_E4M3 one F32 scale per (slot, KV head) in
  // `scales` (layout: KvCacheView in kernels/reference/attention.h). Throws
  // Error for another dtype.
  // The same for every backend (storage from alloc()), so defined once in backend.cpp.
  virtual Tensor alloc_kv_cache(DType dtype, int64_t slots, int n_kv_heads, int head_dim);
  // Converts (quantizes) rows of k and v [n, n_kv_heads * head_dim] into slots.
  virtual void kv_write(Tensor k_cache, Tensor v_cache, Tensor k, Tensor v, Tensor slots, int n,
                        int n_kv_heads, int head_dim) = 0;
  // RoPE on q (in place) and k, then the rotated k and v written into the
  // caches, in one pass (k itself is left unrotated).
  virtual void rope_kv_write(Tensor q, Tensor k, Tensor v, Tensor positions, Tensor slots, Tensor k_cache,
                             Tensor v_cache, int n, int n_heads, int n_kv_heads, int head_dim, int rot_dim,
                             float theta) = 0;
  virtual void attention(Tensor out, Tensor q, Tensor k_cache, Tensor v_cache, const AttentionBatch& b,
                         int n_heads, int n_kv_heads, int head_dim) = 0;
  // x += residual; y = rmsnorm(x) * w (the residual add fused into the next norm).
  virtual void add_rmsnorm(Tensor x, Tensor residual, Tensor w, Tensor y, int n, float eps) = 0;
  virtual void silu_mul(Tensor out, Tensor gate, Tensor up, int n) = 0;
  virtual void add(Tensor out, Tensor a, Tensor b, int n) = 0;
  virtual void gather_rows(Tensor out, Tensor x, Tensor rows, int n) = 0;  // out[i] = x[rows[i]]
  // out (I32 [n]) = the first index of the largest value among the first
  // `cols` columns of each row of x, NaNs never chosen (ref::argmax_rows):
  // greedy sampling without copying the logits off the backend.
  virtual void argmax_rows(Tensor out, Tensor x, int n, int cols) = 0;
  // Copies whole KV blocks src -> dst in a cache (copy-on-write), scales included.
  virtual void copy_blocks(Tensor cache, const std::vector<std::pair<int32_t, int32_t>>& pairs,
                           int block_size, int n_kv_heads) = 0;
};

// int8_activations: INT8 weights run W8A8 (activations quantized per token,
// integer dot products) instead of converting the weights to F32.
// huge_page_weights: weights of 2 MiB or more are copied into transparent
// huge pages (up to half the memory available), not read from the mapping.
std::unique_ptr<Backend> make_cpu_backend(int threads, bool int8_activations = false,
                                          bool huge_page_weights = true);
struct BackendOptions;
std::unique_ptr<Backend> make_cpu_backend(const BackendOptions& opts);

// Every backend this build knows, available or not, and why not: a build
// without nvcc, or a machine without a driver or a device, lists "cuda" as
// unavailable with the reason, so the CLI, sysinfo and the GUI can say it once.
struct BackendInfo {
  std::string name;  // "cpu", "cuda"
  bool available = false;
  std::string reason;  // why not, when unavailable
  std::string device;  // e.g. "NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB)"; the CPU model for cpu
};
std::vector<BackendInfo> backend_infos();
std::vector<std::string> available_backends();  // the names of the available ones, cpu first

struct BackendOptions {
  int threads = 0;                // CPU threads (0 = physical cores)
  bool int8_activations = false;  // W8A8 for INT8 weights
  bool cuda_graphs = true;        // CUDA: replay captured decode steps (an A/B knob)
  bool fused_decode = true;  // CUDA: norms, residual adds and SwiGLU folded into decode GEMVs (an A/B knob)
  bool huge_page_weights = true;  // CPU: large weights copied into transparent huge pages (an A/B knob)
  // CPU: INT8 weights (without int8_activations) widened to F32 and multiplied with FMAs, instead of
  // the default W8A24 (activations as 24-bit integers, VNNI dot products; AVX-512 VNNI CPUs). An A/B knob.
  bool int8_fma = false;
  // CUDA (sm_90+): decode kernels launch while their predecessor finishes (programmatic dependent
  // launch), loading weights and prefetching the KV cache before they wait for its output. An A/B knob.
  bool dependent_launch = true;
  // CPU: FP8 weights widened to F32 and multiplied with FMAs, instead of the default BF16 dot products
  // (activations as two BF16 each; AVX-512 BF16 + VBMI CPUs). An A/B knob.
  bool fp8_fma = false;
  // CUDA: with fused_decode, RoPE and the KV cache write (F32/F16/BF16 caches) run in the epilogue of
  // the q/k/v projection instead of a launch of their own. An A/B knob, off (no faster on an H100).
  bool fused_rope = false;
  // CUDA: FP8 GEMMs accumulate in the tensor cores' own precision over the whole K (cuBLASLt fast
  // accumulation) instead of promoting partial sums to F32 every few steps. On by default (see
  // EngineConfig::fp8_fast_accum); an A/B knob.
  bool fp8_fast_accum = true;
  // CUDA: a split decode attention merges its partitions in the attention kernel (the last block of a
  // row to finish) instead of a reduce kernel launched after it. An A/B knob, the same arithmetic; off
  // (no faster on an H100).
  bool split_merge_in_kernel = false;
  // CUDA, with fused_decode: after each layer's q/k/v projection, the weights read next (wo, then the
  // first rows of gate and up) are prefetched into L2 while RoPE and attention run
  // (FusedDecode::prefetch_weights). A hint; an A/B knob, off until measured.
  bool l2_prefetch = false;
  // CUDA, with fused_decode: a decode step of one sequence (F16 or BF16 weights, F32/F16/BF16 KV cache)
  // runs all of its layers in one persistent kernel launch: every multiprocessor stays resident and the
  // phases of a layer (q/k/v projection, RoPE + KV write + attention, wo, gate/up + SwiGLU, down) are
  // separated by grid-wide barriers instead of kernel boundaries, each block prefetching its next phase's
  // weight rows into L2 before it waits. The same arithmetic up to summation order; an A/B knob, off
  // until measured.
  bool persistent_decode = false;
};
// "cpu", "cuda" or "auto" (cuda when available, else cpu). Throws Error
// naming the backend and the reason when it cannot be made.
std::unique_ptr<Backend> make_backend(const std::string& name, const BackendOptions& opts);
// The backend an engine configuration asks for (cfg.backend with its knobs).
struct EngineConfig;
std::unique_ptr<Backend> make_backend(const EngineConfig& cfg);

}  // namespace brisk
