// Host-only launch planning for the CUDA kernels (built everywhere, no CUDA headers).
#include <algorithm>

#include "kernels/cuda/cuda_kernels.h"

namespace brisk::cuda {

int attention_splits(int max_seq_len, int num_seqs, int n_kv_heads, int sm_count) {
  // Each partition must be worth a block: at least kMinSplitTokens tokens.
  const int by_length = std::min(kMaxSplits, std::max(1, max_seq_len / kMinSplitTokens));
  if (by_length <= 1) return 1;
  const long work = (long)std::max(1, num_seqs) * std::max(1, n_kv_heads);
  // Two blocks per multiprocessor: one wave of a 128-thread block leaves most of an SM idle.
  const long target = 2L * std::max(1, sm_count);
  const long want = (target + work - 1) / work;
  return (int)std::clamp<long>(want, 1, by_length);
}

size_t attention_workspace_bytes(int max_rows, int n_heads, int head_dim, int max_splits) {
  if (max_splits <= 1 || max_rows <= 0) return 0;
  // Per (row, head, split): the running max, the softmax denominator and the unnormalised output.
  return (size_t)max_rows * n_heads * std::min(max_splits, kMaxSplits) * (head_dim + 2) * sizeof(float);
}

}  // namespace brisk::cuda
