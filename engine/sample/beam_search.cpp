#include "sample/beam_search.h"

#include <algorithm>
#include <cmath>

namespace brisk {

BeamStep beam_step(const std::vector<BeamInput>& beams, int width, int max_new,
                   const std::function<FinishReason(int32_t)>& stop_reason) {
  std::vector<BeamChoice> cand;
  for (int b = 0; b < (int)beams.size(); ++b)
    for (const auto& [tok, lp] : beams[b].top) cand.push_back({b, tok, beams[b].cum_logprob + lp});
  std::stable_sort(cand.begin(), cand.end(), [](const BeamChoice& x, const BeamChoice& y) {
    if (x.cum_logprob != y.cum_logprob) return x.cum_logprob > y.cum_logprob;
    if (x.beam != y.beam) return x.beam < y.beam;
    return x.token < y.token;
  });
  BeamStep out;
  for (size_t rank = 0; rank < cand.size() && (int)out.live.size() < width; ++rank) {
    BeamChoice c = cand[rank];
    c.reason = stop_reason(c.token);
    if (c.reason != FinishReason::None) {
      if ((int)rank < width) out.finished.push_back(c);
      continue;
    }
    if (beams[c.beam].length + 1 >= max_new) {
      c.reason = FinishReason::Length;
      out.finished.push_back(c);
    }
    out.live.push_back(c);
  }
  // Length-finished beams were counted above so that the W best still fill
  // the step; none of them goes on.
  out.live.erase(std::remove_if(out.live.begin(), out.live.end(),
                                [](const BeamChoice& c) { return c.reason != FinishReason::None; }),
                 out.live.end());
  return out;
}

double BeamHypotheses::score(double cum_logprob, int length) const {
  return cum_logprob / std::pow((double)std::max(length, 1), (double)length_penalty_);
}

void BeamHypotheses::add(SequenceOutput h) {
  if ((int)held_.size() >= width_ && !(h.score > held_.back().score)) return;
  // After the last one with a score >= h's: equal scores keep finishing order.
  auto at = std::upper_bound(held_.begin(), held_.end(), h.score,
                             [](double s, const SequenceOutput& x) { return s > x.score; });
  held_.insert(at, std::move(h));
  if ((int)held_.size() > width_) held_.pop_back();
}

bool BeamHypotheses::done(double best_live, int length) const {
  if ((int)held_.size() < width_) return false;
  if (early_stopping_) return true;
  // A live beam's log-probability only falls, so its best score is at its
  // shortest or its longest possible finish (score is monotonic in length).
  const int shortest = length + 1, longest = std::max(max_new_, shortest);
  const double bound = std::max(score(best_live, shortest), score(best_live, longest));
  return bound <= held_.back().score;
}

}  // namespace brisk
