// The L2 prefetch kernel (plan and rationale: l2_prefetch.h).
#include <algorithm>
#include <atomic>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/l2_prefetch.h"

namespace brisk::cuda {
using namespace detail;

namespace {

constexpr int kThreads = 128;
constexpr size_t kChunk = 32 << 10;  // bytes per bulk prefetch instruction

struct PrefetchArgs {
  PrefetchRange r[kMaxPrefetchRanges];
  int count;
};

std::atomic<int64_t> g_launches{0};

// Chunk c of the ranges laid end to end: its start and length (0 past the end).
__device__ __forceinline__ const char* chunk_of(const PrefetchArgs& a, int64_t c, size_t& len) {
  for (int i = 0; i < a.count; ++i) {
    const int64_t n = (int64_t)((a.r[i].bytes + kChunk - 1) / kChunk);
    if (c < n) {
      const size_t off = (size_t)c * kChunk;
      len = min(kChunk, a.r[i].bytes - off);
      return static_cast<const char*>(a.r[i].data) + off;
    }
    c -= n;
  }
  len = 0;
  return nullptr;
}

// Chunks go round-robin over the blocks, so each multiprocessor's copy
// engine (or load path) issues a share. Nothing here reads what an earlier
// kernel writes, so the prefetches are issued first; the wait at the end
// makes this grid finish after its predecessor, which is what the next
// kernel's wait stands on.
__global__ void __launch_bounds__(kThreads) l2_prefetch_kernel(PrefetchArgs a, int64_t chunks) {
  allow_dependents();
  for (int64_t c = (int64_t)threadIdx.x * gridDim.x + blockIdx.x; c < chunks;
       c += (int64_t)gridDim.x * kThreads) {
    size_t len = 0;
    const char* p = chunk_of(a, c, len);
    if (!p) break;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    // One bulk prefetch: a 16-byte aligned start and a multiple of 16 bytes
    // (the start rounded down stays inside the allocation, which is aligned;
    // the last few bytes of an odd-sized range are left out).
    const uintptr_t start = (uintptr_t)p & ~(uintptr_t)15;
    const uint32_t bytes = (uint32_t)(((uintptr_t)p + len - start) & ~(uintptr_t)15);
    if (bytes > 0)
      asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(start), "r"(bytes) : "memory");
#else
    for (size_t off = 0; off < len; off += 128) prefetch_l2(p + off);
#endif
  }
  grid_dependency_wait();
}

}  // namespace

void l2_prefetch(const PrefetchRange* ranges, int count, Stream s) {
  PrefetchArgs a = {};
  int64_t chunks = 0;
  for (int i = 0; i < count && a.count < kMaxPrefetchRanges; ++i) {
    if (!ranges[i].data || ranges[i].bytes == 0) continue;
    a.r[a.count++] = ranges[i];
    chunks += (int64_t)((ranges[i].bytes + kChunk - 1) / kChunk);
  }
  if (chunks == 0) return;
  // A block per multiprocessor at most, each taking every gridDim-th chunk.
  const int blocks = (int)std::min<int64_t>(sm_count(), chunks);
  launch_dependent(l2_prefetch_kernel, std::max(1, blocks), kThreads, 0, stream_of(s), a, chunks);
  g_launches.fetch_add(1, std::memory_order_relaxed);
}

int64_t l2_prefetch_launches() { return g_launches.load(std::memory_order_relaxed); }

}  // namespace brisk::cuda
