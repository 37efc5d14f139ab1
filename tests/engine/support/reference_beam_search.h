// A plain beam search for tests, sharing no code with the engine's: it asks
// the engine only for next-token distributions (one request per live beam,
// prompt + beam tokens, one greedy token with top-k log-probabilities) and
// does the ranking, pruning and stopping itself.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "brisk/engine.h"

namespace reference {

struct Hypothesis {
  std::vector<int32_t> tokens;  // ends with the end-of-sequence token when it finished there
  double cum_logprob = 0;
  double score = 0;
};

struct BeamOptions {
  int width = 1;
  int max_tokens = 4;
  float length_penalty = 1.0f;
  bool early_stopping = false;
  int32_t eos = -1;  // -1: never stops on a token
};

// The top-k (k <= 20) next tokens after each context, with their
// log-probabilities, most likely first. Runs every context as one request.
std::vector<std::vector<std::pair<int32_t, float>>> next_tokens(
    brisk::Engine& e, const std::vector<std::vector<int32_t>>& contexts, int k);

// Log-probability of each listed token after the context under the raw
// model distribution (one forced one-token request per token).
std::vector<float> token_logprobs(brisk::Engine& e, const std::vector<int32_t>& context,
                                  const std::vector<int32_t>& tokens);

// Needs 2 * width <= 20. Hypotheses best first.
std::vector<Hypothesis> beam_search(brisk::Engine& e, const std::vector<int32_t>& prompt,
                                    const BeamOptions& o);

}  // namespace reference
