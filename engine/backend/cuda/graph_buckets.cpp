#include "backend/cuda/graph_buckets.h"

#include <algorithm>

namespace brisk {

std::vector<int> graph_buckets(int max_rows) {
  std::vector<int> b;
  for (int n : {1, 2, 4})
    if (n < max_rows) b.push_back(n);
  for (int n = 8; n < max_rows; n += n < 256 ? 8 : 32) b.push_back(n);
  if (max_rows >= 1) b.push_back(max_rows);
  return b;
}

int pick_bucket(const std::vector<int>& buckets, int n) {
  if (n < 1) return 0;
  auto it = std::lower_bound(buckets.begin(), buckets.end(), n);
  return it == buckets.end() ? 0 : *it;
}

}  // namespace brisk
