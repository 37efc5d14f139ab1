// The selection rule of beam search, apart from the engine's bookkeeping of
// sequences and KV blocks: given every live beam's best next tokens, which
// beams continue with which token, and which hypotheses are finished.
#pragma once
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "brisk/request_output.h"

namespace brisk {

struct BeamInput {
  double cum_logprob = 0;
  int length = 0;  // tokens generated so far
  // The beam's 2W most likely next tokens with their log-probabilities,
  // most likely first (ties by lower id).
  std::vector<std::pair<int32_t, float>> top;
};

struct BeamChoice {
  int beam = 0;  // index into the step's inputs
  int32_t token = 0;
  double cum_logprob = 0;
  FinishReason reason = FinishReason::None;  // set for hypotheses that finished
};

struct BeamStep {
  std::vector<BeamChoice> live;      // at most W, best first
  std::vector<BeamChoice> finished;  // candidates that ended (stop token or length)
};

// Candidates are ranked by cumulative log-probability (ties: lower beam
// index, then lower token id). Walking them best first, a stop token (its
// reason given by `stop_reason`, None for an ordinary token) among the first
// W candidates finishes a hypothesis and one past them is dropped, as in the
// usual formulation; any other token becomes a live beam until W are found.
// A live beam reaching `max_new` tokens finishes with Length instead.
BeamStep beam_step(const std::vector<BeamInput>& beams, int width, int max_new,
                   const std::function<FinishReason(int32_t)>& stop_reason);

// The finished hypotheses of one request: the W best by score, and the rule
// that ends the search.
class BeamHypotheses {
 public:
  BeamHypotheses(int width, float length_penalty, bool early_stopping, int max_new)
      : width_(width), length_penalty_(length_penalty), early_stopping_(early_stopping), max_new_(max_new) {}

  double score(double cum_logprob, int length) const;
  // Keeps it when fewer than W are held or it beats the worst (then dropped).
  void add(SequenceOutput h);
  // True when the search can end: early_stopping and W hypotheses finished,
  // or W finished and no live beam (best cumulative log-probability
  // `best_live`, `length` tokens so far) can reach a better score than the
  // worst of them at any length it may still finish with.
  bool done(double best_live, int length) const;
  // Best first (ties: the earlier finished).
  const std::vector<SequenceOutput>& sorted() const { return held_; }

 private:
  int width_;
  float length_penalty_;
  bool early_stopping_;
  int max_new_;
  std::vector<SequenceOutput> held_;  // sorted by score, best first
};

}  // namespace brisk
