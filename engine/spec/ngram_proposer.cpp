#include "spec/ngram_proposer.h"

#include <algorithm>

namespace brisk {

std::vector<int32_t> propose_ngram(const std::vector<int32_t>& prompt, const std::vector<int32_t>& output,
                                   int max_ngram, int k) {
  if (k <= 0) return {};
  std::vector<int32_t> s;
  s.reserve(prompt.size() + output.size());
  s.insert(s.end(), prompt.begin(), prompt.end());
  s.insert(s.end(), output.begin(), output.end());
  const int64_t L = (int64_t)s.size();
  for (int64_t n = std::min<int64_t>(max_ngram, L - 1); n >= 1; --n) {
    const int32_t* suffix = s.data() + L - n;
    // Occurrences may overlap the suffix (a run like "a a a" continues
    // itself); at least one token must follow.
    for (int64_t i = L - n - 1; i >= 0; --i) {
      if (!std::equal(suffix, suffix + n, s.data() + i)) continue;
      const int64_t from = i + n, to = std::min<int64_t>(from + k, L);
      return std::vector<int32_t>(s.begin() + from, s.begin() + to);
    }
  }
  return {};
}

}  // namespace brisk
