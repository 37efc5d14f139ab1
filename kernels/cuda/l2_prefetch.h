// Moving weights into the device's L2 cache ahead of the kernels that read
// them. A single-sequence decode step alternates kernels that stream weights
// (the projections, memory-bound) with kernels that read almost nothing
// (RoPE + KV write, attention over a short context): during the latter the
// memory sits idle. Issued between the two, a prefetch of the weights read
// next (wo, then the first rows of gate and up) fills that idle time, and
// the projections read those bytes from L2 instead of device memory.
//
// Plain C++ (no CUDA headers): the plan is host-only and unit-tested
// everywhere; l2_prefetch() is defined in l2_prefetch.cu, built with nvcc.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/cuda/cuda_kernels.h"

namespace brisk::cuda {

// A weight the next kernels read, as rows of row_bytes from data. Parts
// with the same group that follow each other advance together, a row of
// each at a time (gate row j and up row j are read by the same warp).
struct PrefetchPart {
  const void* data = nullptr;
  size_t row_bytes = 0;
  int64_t rows = 0;
  int group = 0;
};
// Bytes from data on, to move into L2.
struct PrefetchRange {
  const void* data = nullptr;
  size_t bytes = 0;
};
constexpr int kMaxPrefetchRanges = 8;

// The leading rows of each part that fit in `budget` bytes, in order: a
// group's parts take the same number of rows (the fewest any of them has
// at most), and planning stops at the first group the budget cannot cover
// whole. No empty ranges; at most kMaxPrefetchRanges (planning stops
// before a group whose parts would not all fit).
std::vector<PrefetchRange> plan_l2_prefetch(const PrefetchPart* parts, int count, size_t budget);

// The budget a decode step's prefetch gets on a device with l2_bytes of L2:
// half of it (the rest keeps the KV cache, activations and the rows
// already prefetched but not yet read), or the override set below.
size_t l2_prefetch_budget(size_t l2_bytes);
// Overrides the budget (bytes; 0: back to half the L2), process-wide: for
// benchmarks sweeping it (tests/gpu/bench_decode_layer.cpp).
void set_l2_prefetch_budget(size_t bytes);

// Launches the prefetch of `ranges` on stream s: a kernel that lets the
// next kernel launch, waits for the kernel before it (so the prefetches go
// out once that kernel's own loads are done, and this grid completes after
// it: a dependent launch chain keeps its order, see grid_dependency_wait in
// common.cuh), then issues them (bulk L2 prefetches on sm_90, a prefetch
// per 128-byte line before). Nothing is read into registers and nothing is
// written.
void l2_prefetch(const PrefetchRange* ranges, int count, Stream s);
// How many prefetch kernels have been launched (process-wide), for tests.
int64_t l2_prefetch_launches();

}  // namespace brisk::cuda
