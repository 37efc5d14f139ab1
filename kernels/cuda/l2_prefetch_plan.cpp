// Host-only planning of L2 prefetches (built everywhere, no CUDA headers).
#include <algorithm>
#include <atomic>

#include "kernels/cuda/l2_prefetch.h"

namespace brisk::cuda {

namespace {
std::atomic<size_t> g_budget_override{0};
}

std::vector<PrefetchRange> plan_l2_prefetch(const PrefetchPart* parts, int count, size_t budget) {
  std::vector<PrefetchRange> out;
  size_t left = budget;
  for (int i = 0; i < count;) {
    // The group: parts i .. end-1.
    int end = i + 1;
    while (end < count && parts[end].group == parts[i].group) ++end;
    size_t step = 0;  // bytes of one row of every part of the group
    int64_t rows = INT64_MAX;
    int ranges = 0;  // the group's parts that read anything
    for (int j = i; j < end; ++j) {
      step += parts[j].row_bytes;
      rows = std::min(rows, parts[j].data ? parts[j].rows : 0);
      ranges += parts[j].row_bytes > 0;
    }
    if (step == 0 || rows <= 0) {  // nothing to read
      i = end;
      continue;
    }
    const int64_t take = (int64_t)std::min<uint64_t>((uint64_t)rows, left / step);
    if (take > 0 && (int)out.size() + ranges > kMaxPrefetchRanges) break;  // never part of a group
    for (int j = i; j < end && take > 0; ++j)
      if (parts[j].row_bytes > 0) out.push_back({parts[j].data, (size_t)take * parts[j].row_bytes});
    if (take < rows) break;  // the budget ends inside this group
    left -= (size_t)take * step;
    i = end;
  }
  return out;
}

size_t l2_prefetch_budget(size_t l2_bytes) {
  const size_t o = g_budget_override.load(std::memory_order_relaxed);
  return o > 0 ? o : l2_bytes / 2;
}

void set_l2_prefetch_budget(size_t bytes) { g_budget_override.store(bytes, std::memory_order_relaxed); }

}  // namespace brisk::cuda
