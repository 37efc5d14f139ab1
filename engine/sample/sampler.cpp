#include "sample/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_set>

#include "kernels/cpu/ops.h"

namespace brisk {

namespace {

void apply_repetition_penalty(float* logits, float penalty, const std::vector<int32_t>& a,
                              const std::vector<int32_t>& b, int vocab) {
  // CTRL-style: divide positive logits, multiply negative ones, once per
  // distinct token seen.
  std::unordered_set<int32_t> seen(a.begin(), a.end());
  seen.insert(b.begin(), b.end());
  for (int32_t t : seen) {
    if (t < 0 || t >= vocab) continue;
    logits[t] = logits[t] > 0 ? logits[t] / penalty : logits[t] * penalty;
  }
}

}  // namespace

int32_t argmax(const float* x, int n) { return cpu::argmax(x, n); }

// Bans every token that would complete an n-gram already present in the
// history (prompt + output), as in HF's no_repeat_ngram_size.
void ban_repeated_ngrams(float* logits, int n, const std::vector<int32_t>& a, const std::vector<int32_t>& b,
                         int vocab) {
  const size_t len = a.size() + b.size();
  if (n <= 0 || len + 1 < (size_t)n) return;
  auto at = [&](size_t i) { return i < a.size() ? a[i] : b[i - a.size()]; };
  // The current (n-1)-token suffix; every earlier occurrence bans its follower.
  const size_t suffix = len - (n - 1);
  for (size_t s = 0; s + n <= len; ++s) {
    bool match = true;
    for (int k = 0; k < n - 1 && match; ++k) match = at(s + k) == at(suffix + k);
    if (!match) continue;
    const int32_t next = at(s + n - 1);
    if (next >= 0 && next < vocab) logits[next] = -INFINITY;
  }
}

void apply_logits_processors(float* logits, int vocab, const SamplingParams& p,
                             const std::vector<int32_t>& prompt, const std::vector<int32_t>& output) {
  for (const auto& [id, bias] : p.logit_bias)
    if (id < vocab) logits[id] += bias;
  if (p.repetition_penalty != 1.0f)
    apply_repetition_penalty(logits, p.repetition_penalty, prompt, output, vocab);
  if (p.no_repeat_ngram_size > 0) ban_repeated_ngrams(logits, p.no_repeat_ngram_size, prompt, output, vocab);
}

int32_t sample_token(float* logits, int vocab, const SamplingParams& p, std::mt19937_64& rng,
                     const std::vector<int32_t>& prompt, const std::vector<int32_t>& output) {
  apply_logits_processors(logits, vocab, p, prompt, output);
  if (p.temperature <= 0.0f) return argmax(logits, vocab);

  // Candidates sorted by logit (descending, ties by id so the order is
  // deterministic); top-k cuts first, then softmax, top-p and min-p.
  std::vector<int32_t> idx(vocab);
  std::iota(idx.begin(), idx.end(), 0);
  const int k = p.top_k > 0 ? std::min(p.top_k, vocab) : vocab;
  auto cmp = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), cmp);
  idx.resize(k);
  std::vector<double> prob(k);
  const double mx = logits[idx[0]];
  double sum = 0;
  for (int i = 0; i < k; ++i) sum += prob[i] = std::exp((logits[idx[i]] - mx) / p.temperature);
  for (double& q : prob) q /= sum;
  int keep = k;
  if (p.top_p < 1.0f) {
    double cum = 0;
    for (int i = 0; i < k; ++i) {
      cum += prob[i];
      if (cum >= p.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  if (p.min_p > 0.0f) {
    const double floor = p.min_p * prob[0];
    int i = 1;
    while (i < keep && prob[i] >= floor) ++i;
    keep = i;
  }
  double total = 0;
  for (int i = 0; i < keep; ++i) total += prob[i];
  // 53 random bits -> [0, total): identical on every platform, unlike
  // std::uniform_real_distribution.
  const double u = (double)(rng() >> 11) * (1.0 / 9007199254740992.0) * total;
  double cum = 0;
  for (int i = 0; i < keep; ++i) {
    cum += prob[i];
    if (u < cum) return idx[i];
  }
  return idx[keep - 1];
}

TokenLogprob token_logprobs(const float* logits, int vocab, int32_t chosen, int k) {
  float mx = logits[0];
  for (int i = 1; i < vocab; ++i) mx = std::max(mx, logits[i]);
  double sum = 0;
  for (int i = 0; i < vocab; ++i) sum += std::exp((double)logits[i] - mx);
  const double lse = mx + std::log(sum);
  TokenLogprob t;
  t.token = chosen;
  t.logprob = (float)(logits[chosen] - lse);
  k = std::min(k, vocab);
  if (k > 0) {
    std::vector<int32_t> idx(vocab);
    std::iota(idx.begin(), idx.end(), 0);
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int32_t a, int32_t b) {
      return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
    });
    for (int i = 0; i < k; ++i) t.top.emplace_back(idx[i], (float)(logits[idx[i]] - lse));
  }
  return t;
}

}  // namespace brisk
