// An independent oracle for end-to-end tests: a plain double-precision scalar Llama forward
// pass, checkpoint readers (llama2.c, GGUF) and a Hugging Face directory writer.
//
// This file and reference_llama.cpp deliberately share no code with engine/ or kernels/ and
// use only the C++ standard library, so a bug in the engine's loaders, dtype conversions or
// kernels cannot hide by being repeated here. Clarity beats speed: everything is double,
// one token at a time, with a contiguous KV cache.
#pragma once

#include <string>
#include <vector>

namespace brisk_test {

struct RefDims {
  int dim = 0;
  int hidden_dim = 0;
  int n_layers = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int vocab_size = 0;
  int seq_len = 0;  // Context length from the checkpoint; informational, not enforced.
  double rms_eps = 1e-5;
  double rope_theta = 10000.0;
  int bos_id = 1;
  int eos_id = 2;

  int head_size() const { return dim / n_heads; }
  int kv_dim() const { return head_size() * n_kv_heads; }
};

// Matrices are row-major [out, in] (out = W * x with rows of length `in`), the llama2.c and
// GGUF layout. wq and wk rows are in interleaved-pair RoPE order (llama2.c / GGUF), NOT the
// rotate-half order of Hugging Face checkpoints.
struct RefLayer {
  std::vector<double> rms_att;  // [dim]
  std::vector<double> wq;       // [dim, dim]
  std::vector<double> wk;       // [kv_dim, dim]
  std::vector<double> wv;       // [kv_dim, dim]
  std::vector<double> wo;       // [dim, dim]
  std::vector<double> rms_ffn;  // [dim]
  std::vector<double> w1;       // [hidden, dim]  gate_proj
  std::vector<double> w2;       // [dim, hidden]  down_proj
  std::vector<double> w3;       // [hidden, dim]  up_proj
};

struct RefModel {
  RefDims dims;
  std::vector<double> token_embedding;  // [vocab, dim]
  std::vector<RefLayer> layers;
  std::vector<double> rms_final;  // [dim]
  std::vector<double> wcls;       // [vocab, dim]; a copy of token_embedding when tied
  bool tied_classifier = true;
  // Storage type of the checkpoint's matrices: "F32", "F16" or "BF16" (informational).
  std::string source_dtype = "F32";
};

// Throws std::runtime_error with the path and the problem on malformed input.
RefModel load_llama2c(const std::string& path);
// GGUF v2/v3 with F32, F16 or BF16 tensors and llama.cpp tensor names.
RefModel load_gguf(const std::string& path);

// KV cache of one sequence.
struct RefState {
  std::vector<std::vector<double>> key_cache;    // [layer] -> [pos * kv_dim]
  std::vector<std::vector<double>> value_cache;  // [layer] -> [pos * kv_dim]
  int length = 0;                                // Positions currently cached.
};

// Runs `token` at position `pos` and returns the vocab_size logits. `pos` must be at most
// state.length; a smaller value rewinds the cache to `pos` first.
std::vector<double> forward(const RefModel& m, RefState& state, int token, int pos);

// Feeds prompt_ids at positions 0..P-1, then appends n_new greedy tokens (argmax, ties to
// the lowest id) and returns those n_new ids. It does not stop at EOS: callers comparing
// with an engine that stops there truncate. When top_gaps is given it receives, per
// generated token, top1 - top2 logit (0 for an exact tie), so a test can tell a real
// mismatch from a near-tie.
std::vector<int> greedy(const RefModel& m, const std::vector<int>& prompt_ids, int n_new,
                        std::vector<double>* top_gaps = nullptr);

// Writes a Hugging Face LlamaForCausalLM directory (created if missing): config.json and
// model.safetensors, or, when sharded, model-0000{1,2}-of-00002.safetensors plus
// model.safetensors.index.json. dtype is "F32", "F16" or "BF16" (round to nearest even).
// q_proj / k_proj rows are written permuted to HF rotate-half order, as HF's conversion
// script does, so a loader must undo it to reproduce this oracle. lm_head.weight is omitted
// when the classifier is tied.
void write_hf_directory(const RefModel& m, const std::string& dir, const std::string& dtype,
                        bool sharded);

// The HF q_proj/k_proj row that holds interleaved row `row` of a projection with heads of
// head_size rows each: within a head, interleaved row 2*i + j goes to j*(head_size/2) + i.
int hf_rope_row(int row, int head_size);

}  // namespace brisk_test
