// Host-side planning of the one-launch decode kernel (cuda_kernels.h),
// built everywhere and unit-tested without a device
// (tests/kernels/test_cuda_launch_plan.cpp).
#include <algorithm>

#include "kernels/cuda/decode_persistent.cuh"

namespace brisk::cuda {

namespace {
using persist::kMaxHeadDim, persist::kRedFloats, persist::kThreads, persist::kWarps;
constexpr int kVec = persist::kVecElems;
}  // namespace

std::string persistent_decode_unsupported(DType wdt, DType kv_dt, int dim, int hidden, int n_heads,
                                          int n_kv_heads, int head_dim, int rot_dim) {
  if (wdt != DType::F16 && wdt != DType::BF16)
    return std::string("weights are ") + dtype_name(wdt) + " (F16 or BF16 only)";
  if (kv_dt != DType::F32 && kv_dt != DType::F16 && kv_dt != DType::BF16)
    return std::string("the KV cache is ") + dtype_name(kv_dt) + " (F32, F16 or BF16 only)";
  if (dim <= 0 || hidden <= 0 || n_heads <= 0 || n_kv_heads <= 0 || head_dim <= 0 || n_heads % n_kv_heads)
    return "a malformed shape";
  if (dim % kVec || hidden % kVec || (n_heads * head_dim) % kVec)
    return "dim " + std::to_string(dim) + ", hidden " + std::to_string(hidden) + " or q width " +
           std::to_string(n_heads * head_dim) + " is not a multiple of 8 (rows of whole 16-byte vectors)";
  if (head_dim > kMaxHeadDim || head_dim % 2 || rot_dim > head_dim || rot_dim % 2)
    return "head_dim " + std::to_string(head_dim) + " / rot_dim " + std::to_string(rot_dim) +
           " (even, head_dim <= 256)";
  return "";
}

int persistent_warps_per_row(int rows, int row_vectors, int grid) {
  // The fewest warps a row whose groups fill the grid's rounds to 90%
  // (rows / (8 / wpr) groups over `grid` blocks), with a 16-byte load for
  // every lane of every warp; else the fullest rounds.
  int best = kWarps;
  double best_fill = -1.0;
  for (int wpr = 1; wpr <= kWarps; wpr *= 2) {
    if (wpr > 1 && row_vectors < 32 * wpr) break;
    const int rpb = kWarps / wpr;
    const int64_t groups = (rows + rpb - 1) / rpb;
    const int64_t rounds = (groups + grid - 1) / grid;
    const double fill = (double)groups / (double)(rounds * grid);
    if (fill >= 0.9) return wpr;
    if (fill > best_fill + 1e-9) {
      best_fill = fill;
      best = wpr;
    }
  }
  return best;
}

PersistentPlan plan_persistent_decode(int dim, int hidden, int n_heads, int n_kv_heads, int head_dim,
                                      int max_context, int sm_count, int blocks_per_sm) {
  PersistentPlan p;
  p.grid = std::max(1, sm_count) * std::max(1, blocks_per_sm);
  const int qd = n_heads * head_dim;
  p.wpr[0] = persistent_warps_per_row(qd + 2 * n_kv_heads * head_dim, dim / kVec, p.grid);
  p.wpr[1] = persistent_warps_per_row(dim, qd / kVec, p.grid);
  p.wpr[2] = persistent_warps_per_row(hidden, dim / kVec, p.grid);
  p.wpr[3] = persistent_warps_per_row(dim, hidden / kVec, p.grid);
  // Enough partitions for every block to hold a piece, none under 64 keys;
  // at least enough that none has over kPersistentMaxChunk.
  const int by_grid = std::max(1, p.grid / std::max(1, n_heads));
  const int need = (std::max(1, max_context) + kPersistentMaxChunk - 1) / kPersistentMaxChunk;
  p.max_splits = std::max(need, std::min(by_grid, kMaxSplits));
  p.min_chunk = 64;
  // Shared memory: the largest staged input, or attention's q, k, v, scores and partial sums
  // (a 16-byte vector of values per thread).
  const int staged = std::max({dim, hidden, qd});
  const int attention = 3 * kMaxHeadDim + 2 * kPersistentMaxChunk + kThreads * 8;  // + the keys' slots
  p.red_at = (std::max(staged, attention) + 3) / 4 * 4;
  p.rope_at = p.red_at + kRedFloats;
  p.smem_bytes = (size_t)(p.rope_at + kMaxHeadDim / 2 * 4) * sizeof(float);  // a double pair per rotation
  return p;
}

size_t persistent_partials_floats(const PersistentPlan& p, int n_heads, int head_dim) {
  return (size_t)n_heads * p.max_splits * (head_dim + 2);
}

}  // namespace brisk::cuda
