// Turns one row of logits into a token under a request's SamplingParams.
#pragma once
#include <cstdint>
#include <random>
#include <vector>

#include "brisk/request_output.h"
#include "brisk/sampling_params.h"

namespace brisk {

// logit_bias, repetition penalty and no-repeat-ngram bans, in place (the
// processing before temperature; beam search scores with this alone).
void apply_logits_processors(float* logits, int vocab, const SamplingParams& p,
                             const std::vector<int32_t>& prompt, const std::vector<int32_t>& output);

// Processes logits in place (repetition penalty, temperature) then picks:
// The first index of the largest value (NaNs are never the largest, unless x[0] is NaN: then 0).
int32_t argmax(const float* x, int n);

// argmax when temperature == 0 (ties to the lowest id), otherwise a draw from
// the top-k / top-p / min-p filtered distribution using `rng`.
// `history` is the prompt + output so far (for the repetition penalty).
int32_t sample_token(float* logits, int vocab, const SamplingParams& p, std::mt19937_64& rng,
                     const std::vector<int32_t>& prompt, const std::vector<int32_t>& output);

// Log-probabilities of one row of raw logits: the chosen token's and the k
// most likely (ties by id), from one log-sum-exp pass.
TokenLogprob token_logprobs(const float* logits, int vocab, int32_t chosen, int k);

}  // namespace brisk
