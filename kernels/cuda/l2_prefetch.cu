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

// The order: allow, wait, prefetch. Allowing first launches the next kernel
// (RoPE + KV write, or attention) while this one waits, so it is resident
// and waiting on this grid; waiting before prefetching issues the
// prefetches the moment the projection before has finished, into the
// memory's idle time rather than against that projection's own loads (an
// earlier read-ahead issued from inside the q/k/v GEMV competed with it
// and gained nothing, docs/BENCHMARKS.md, fourth session). This grid
// touches nothing another kernel writes or reads, which is what makes
// allowing before the wait safe (see common.cuh); it completes after its
// predecessor, so the chain keeps its order. Chunks go round-robin over
// the blocks, so the prefetches are issued from every multiprocessor.
__global__ void __launch_bounds__(kThreads) l2_prefetch_kernel(PrefetchArgs a, int64_t chunks) {
  allow_dependents();
  grid_dependency_wait();
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  // A bulk prefetch per chunk, a chunk per thread: a 16-byte aligned start
  // and a multiple of 16 bytes (chunks start at multiples of kChunk from
  // their range's aligned start; an odd-sized range's last bytes are left out).
  for (int64_t c = (int64_t)threadIdx.x * gridDim.x + blockIdx.x; c < chunks;
       c += (int64_t)gridDim.x * kThreads) {
    size_t len = 0;
    const char* p = chunk_of(a, c, len);
    if (!p) break;
    const uintptr_t start = (uintptr_t)p & ~(uintptr_t)15;
    const uint32_t bytes = (uint32_t)(((uintptr_t)p + len - start) & ~(uintptr_t)15);
    if (bytes > 0)
      asm volatile(
          "cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(__cvta_generic_to_global((const void*)start)),
          "r"(bytes)
          : "memory");
  }
#else
  // No bulk prefetch: a chunk per warp, its lanes a 128-byte line each in turn.
  constexpr int kWarps = kThreads / 32;
  const int lane = threadIdx.x & 31;
  for (int64_t c = (int64_t)(threadIdx.x >> 5) * gridDim.x + blockIdx.x; c < chunks;
       c += (int64_t)gridDim.x * kWarps) {
    size_t len = 0;
    const char* p = chunk_of(a, c, len);
    if (!p) break;
    for (size_t off = (size_t)lane * 128; off < len; off += 32 * 128) prefetch_l2(p + off);
  }
#endif
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
