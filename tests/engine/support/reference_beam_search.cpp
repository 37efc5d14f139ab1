#include "engine/support/reference_beam_search.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <stdexcept>

namespace reference {

std::vector<std::vector<std::pair<int32_t, float>>> next_tokens(
    brisk::Engine& e, const std::vector<std::vector<int32_t>>& contexts, int k) {
  brisk::SamplingParams p;
  p.max_tokens = 1;
  p.ignore_eos = true;
  p.logprobs = k;
  // Every one-token request's per-token events are collected by hand: the
  // final event carries the log-probabilities of its only token.
  std::map<uint64_t, size_t> index;
  for (size_t i = 0; i < contexts.size(); ++i) index[e.add_request(contexts[i], p)] = i;
  std::vector<std::vector<std::pair<int32_t, float>>> out(contexts.size());
  while (e.has_unfinished())
    for (auto& o : e.step()) {
      if (o.finish_reason == brisk::FinishReason::Error) throw std::runtime_error(o.error);
      if (!o.new_logprobs.empty()) out[index.at(o.request_id)] = o.new_logprobs[0].top;
    }
  return out;
}

std::vector<float> token_logprobs(brisk::Engine& e, const std::vector<int32_t>& context,
                                  const std::vector<int32_t>& tokens) {
  std::vector<brisk::SamplingParams> params(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    params[i].max_tokens = 1;
    params[i].ignore_eos = true;
    params[i].logprobs = 0;
    params[i].logit_bias[tokens[i]] = 1000.0f;  // forces the token; logprobs stay raw
  }
  std::vector<float> lp(tokens.size(), NAN);
  std::map<uint64_t, size_t> index;
  for (size_t i = 0; i < tokens.size(); ++i) index[e.add_request(context, params[i])] = i;
  while (e.has_unfinished())
    for (auto& o : e.step())
      if (!o.new_logprobs.empty()) {
        const size_t i = index.at(o.request_id);
        if (o.new_logprobs[0].token != tokens[i]) throw std::runtime_error("forced token not chosen");
        lp[i] = o.new_logprobs[0].logprob;
      }
  return lp;
}

std::vector<Hypothesis> beam_search(brisk::Engine& e, const std::vector<int32_t>& prompt,
                                    const BeamOptions& o) {
  const int W = o.width;
  auto score = [&](double cum, size_t len) { return cum / std::pow((double)len, (double)o.length_penalty); };
  std::vector<Hypothesis> live = {Hypothesis{}};
  std::vector<Hypothesis> finished;  // best first, at most W
  auto keep_best = [&] {
    std::stable_sort(finished.begin(), finished.end(),
                     [](const Hypothesis& a, const Hypothesis& b) { return a.score > b.score; });
    if ((int)finished.size() > W) finished.resize(W);
  };
  for (int len = 1; len <= o.max_tokens && !live.empty(); ++len) {
    std::vector<std::vector<int32_t>> contexts;
    for (const auto& h : live) {
      contexts.push_back(prompt);
      contexts.back().insert(contexts.back().end(), h.tokens.begin(), h.tokens.end());
    }
    const auto tops = next_tokens(e, contexts, 2 * W);
    struct Cand {
      int beam;
      int32_t token;
      double cum;
    };
    std::vector<Cand> cands;
    for (size_t b = 0; b < live.size(); ++b)
      for (const auto& [t, lp] : tops[b]) cands.push_back({(int)b, t, live[b].cum_logprob + lp});
    std::sort(cands.begin(), cands.end(), [](const Cand& a, const Cand& b) {
      if (a.cum != b.cum) return a.cum > b.cum;
      if (a.beam != b.beam) return a.beam < b.beam;
      return a.token < b.token;
    });
    std::vector<Hypothesis> next;
    int taken = 0;
    for (size_t rank = 0; rank < cands.size() && taken < W; ++rank) {
      const Cand& c = cands[rank];
      Hypothesis h = live[c.beam];
      h.tokens.push_back(c.token);
      h.cum_logprob = c.cum;
      h.score = score(c.cum, h.tokens.size());
      if (c.token == o.eos) {
        if ((int)rank < W) finished.push_back(h);
        continue;
      }
      ++taken;
      if (len == o.max_tokens)
        finished.push_back(h);
      else
        next.push_back(h);
    }
    keep_best();
    live = next;
    if (live.empty() || (int)finished.size() < W) continue;
    if (o.early_stopping) break;
    const double best = live[0].cum_logprob;
    const double bound = std::max(score(best, len + 1), score(best, std::max(o.max_tokens, len + 1)));
    if (bound <= finished.back().score) break;
  }
  return finished;
}

}  // namespace reference
