// Host-only launch planning for the CUDA kernels (built everywhere, no CUDA headers).
#include <algorithm>

#include "kernels/cuda/cuda_kernels.h"

namespace brisk::cuda {

namespace {

// Splits of at least min_tokens tokens each, enough that work * splits
// blocks cover every multiprocessor twice (one wave of one block per SM
// leaves most of each idle).
int splits_for(int max_seq_len, long work, int sm_count, int min_tokens) {
  const int by_length = std::min(kMaxSplits, std::max(1, max_seq_len / min_tokens));
  if (by_length <= 1) return 1;
  const long target = 2L * std::max(1, sm_count);
  const long want = (target + work - 1) / work;
  return (int)std::clamp<long>(want, 1, by_length);
}

}  // namespace

int attention_splits(int max_seq_len, int num_seqs, int n_kv_heads, int sm_count) {
  return splits_for(max_seq_len, (long)std::max(1, num_seqs) * std::max(1, n_kv_heads), sm_count,
                    kMinSplitTokens);
}

DecodePlan plan_decode_attention(DecodeAttention want, bool vector_rows, int head_dim, int max_seq_len,
                                 int num_seqs, int n_heads, int n_kv_heads, int sm_count) {
  const long seqs = std::max(1, num_seqs), heads = std::max(1, n_heads), kv = std::max(1, n_kv_heads);
  const bool per_head_ok = vector_rows && head_dim <= 256;
  const bool per_group_ok = vector_rows && head_dim <= 128;
  // A group block runs all 8 heads' value updates whatever the group size:
  // under 4 heads a KV head, a block per query head does less (and K and V
  // are read at most 3 times, from L2).
  const bool big_group = heads / kv >= kLaneGroupHeads / 2;
  DecodeAttention k = want;
  if (k == DecodeAttention::Auto)
    k = per_head_ok && (seqs * heads <= 2L * std::max(1, sm_count) || !big_group) ? DecodeAttention::PerHead
        : per_group_ok                                                            ? DecodeAttention::PerGroup
                                                                                  : DecodeAttention::Tiled;
  if ((k == DecodeAttention::PerHead && !per_head_ok) || (k == DecodeAttention::PerGroup && !per_group_ok))
    k = DecodeAttention::Tiled;
  DecodePlan p;
  p.kernel = k;
  switch (k) {
    case DecodeAttention::PerHead:
      p.splits = splits_for(max_seq_len, seqs * heads, sm_count, kLaneSplitTokens);
      break;
    case DecodeAttention::PerGroup: {
      const long tiles = (std::max(1L, heads / kv) + kLaneGroupHeads - 1) / kLaneGroupHeads;
      p.splits = splits_for(max_seq_len, seqs * kv * tiles, sm_count, kLaneSplitTokens);
      break;
    }
    default:
      p.splits = attention_splits(max_seq_len, num_seqs, n_kv_heads, sm_count);
      break;
  }
  return p;
}

bool gemv_streams(DType dt, int n, int K) {
  if (n <= 0 || K <= 0) return false;
  const int esize = dt == DType::F32 ? 4 : (dt == DType::F16 || dt == DType::BF16) ? 2 : 1;
  const bool vector_type = dt == DType::F32 || dt == DType::F16 || dt == DType::BF16 || dt == DType::I8 ||
                           dt == DType::F8_E4M3 || dt == DType::F8_E5M2;
  const int per_load = 16 / esize;  // weights per 16-byte load
  return vector_type && K % (32 * per_load) == 0 &&
         (size_t)std::min(n, kGemvMaxRows) * K * sizeof(float) <= kGemvStreamSmemBytes;
}

bool gemv_rope_foldable(DType dt, int n, int K, const int (&n_rows)[3], int head_dim, int rot_dim,
                        DType k_cache, DType v_cache) {
  auto unscaled = [](DType c) { return c == DType::F32 || c == DType::F16 || c == DType::BF16; };
  // head_dim <= 256: rope_kv_write's limit, so the fold never runs where the two launches would not.
  if (!gemv_streams(dt, n, K) || head_dim < 2 || head_dim % 2 || head_dim > 256 || rot_dim < 0 ||
      rot_dim > head_dim || !unscaled(k_cache) || !unscaled(v_cache))
    return false;
  for (int rows : n_rows)
    if (rows <= 0 || rows % head_dim) return false;
  return true;
}

size_t attention_workspace_bytes(int max_rows, int n_heads, int head_dim, int max_splits) {
  if (max_splits <= 1 || max_rows <= 0) return 0;
  // Per (row, head, split): the running max, the softmax denominator and the unnormalised output.
  return (size_t)max_rows * n_heads * std::min(max_splits, kMaxSplits) * (head_dim + 2) * sizeof(float);
}

size_t attention_split_counters(int max_rows, int n_heads) {
  return max_rows > 0 && n_heads > 0 ? (size_t)max_rows * n_heads : 0;
}

}  // namespace brisk::cuda
