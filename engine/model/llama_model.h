// The one Llama-family forward pass (RMSNorm, RoPE, grouped-query paged
// attention, SwiGLU, tied or separate classifier), written against the
// Backend op interface so every backend runs the same model code.
#pragma once
#include <memory>
#include <vector>

#include "backend/backend.h"
#include "backend/cuda/graph_buckets.h"
#include "backend/fused_decode.h"
#include "model/model_weights.h"
#include "runner/forward_batch.h"

namespace brisk {

struct ModelLimits {
  int max_tokens = 2048;  // rows of one packed batch
  int max_seqs = 32;      // sequences of one batch
  // Rows of one batch that produce logits; 0 = max_seqs. Speculative
  // decoding verifies several positions of one sequence at once.
  int max_logits_rows = 0;
  int max_blocks_per_seq = 128;
  int64_t num_kv_blocks = 0;
  int block_size = 16;
  DType kv_dtype = DType::F32;  // KV cache storage: F32, F16, BF16, I8 or F8_E4M3
};

class LlamaModel {
 public:
  // Plans every buffer once (weights, workspace, KV cache): no allocation
  // happens per step.
  LlamaModel(const LoadedModel& model, Backend& backend, const ModelLimits& limits);
  // Runs the batch; writes logits [logits_rows, vocab] to `logits`.
  void forward(const ForwardBatch& batch, std::vector<float>& logits);
  // The same forward with each logits row reduced to its argmax on the
  // backend (greedy sampling): writes ids [logits_rows] and no logits, so a
  // device backend copies back 4 bytes a row instead of the vocabulary.
  // Ids are among the first `vocab` (the tokenizer's) of the classifier's rows.
  void forward_greedy(const ForwardBatch& batch, int vocab, std::vector<int32_t>& ids);
  void copy_kv_blocks(const std::vector<std::pair<int32_t, int32_t>>& pairs);
  const ModelConfig& config() const { return cfg_; }
  const ModelLimits& limits() const { return limits_; }
  // Bytes of K and V cache, all layers, for one block of `block_size` tokens
  // stored as kv_dtype (per-token scales of I8/F8_E4M3 included).
  static int64_t kv_bytes_per_block(const ModelConfig& c, int block_size, DType kv_dtype = DType::F32);

 private:
  // Uploads the batch's metadata (block tables at `bt_cols` columns) and
  // runs the layers on its n rows, leaving the hidden states in x_.
  void upload_batch(const ForwardBatch& b, int bt_cols);
  void run_layers(int n, const AttentionBatch& ab);
  // The same layers through the backend's fused small-batch ops.
  void run_layers_fused(int n, const AttentionBatch& ab);
  // A decode step (every row a query of length 1) on a backend with step
  // graphs: padded to its bucket and replayed; false when it has no bucket.
  bool forward_graph(const ForwardBatch& b);
  void run_batch(const ForwardBatch& b);
  // The final norm and classifier on the rows that sample, a planned number
  // at a time; each chunk then goes to `take(r0, m)`.
  template <class Take>
  void classify_rows(const ForwardBatch& b, Take take);
  void logits_rows(const ForwardBatch& b, std::vector<float>& logits);

  // A layer's weights and caches, as the backend's one-launch decode takes them.
  using Layer = FusedDecode::DecodeLayer;
  ModelConfig cfg_;
  ModelLimits limits_;
  Backend& be_;
  Tensor token_embd_, output_norm_, output_;
  std::vector<Layer> layers_;
  // Workspace.
  Tensor x_, h_, q_, k_, v_, att_, tmp_, gate_, up_;
  Tensor ids_, pos_, slots_, qstart_, seqlens_, btables_, lrows_, sel_, logits_, argmax_;
  // Step graphs (CUDA): null when the backend has none or they are off.
  // Padding rows of a graph step write their K/V to scratch_block_, a block
  // past the allocator's, and read only it.
  StepGraphs* graphs_ = nullptr;
  // Fused decode ops (CUDA): null when the backend has none, they are off,
  // or the weights they would group differ in dtype (or are F32, which runs
  // through cuBLAS SGEMM at every batch size).
  FusedDecode* fused_ = nullptr;
  // A one-sequence decode step runs its layers in one launch (the backend planned it).
  bool one_launch_ = false;
  std::vector<int> buckets_;
  int32_t scratch_block_ = 0;
  ForwardBatch padded_;
};

}  // namespace brisk
