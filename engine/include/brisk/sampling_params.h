#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace brisk {

// Per-request decoding settings. temperature == 0 means greedy.
struct SamplingParams {
  float temperature = 0.0f;
  int top_k = 0;                    // 0 = off
  float top_p = 1.0f;               // 1 = off
  float min_p = 0.0f;               // 0 = off
  float repetition_penalty = 1.0f;  // 1 = off; >1 discourages tokens already seen
  int max_tokens = 16;
  std::optional<uint64_t> seed;   // unset: derived from the engine seed and request id
  std::vector<std::string> stop;  // stop strings (not included in the output)
  std::vector<int32_t> stop_token_ids;
  bool ignore_eos = false;
  // Per generated token: its log-probability under the model's distribution
  // (before penalties and temperature) and the `logprobs` most likely
  // alternatives; -1 = off, 0 = the chosen token only, at most 20.
  int logprobs = -1;
  // Per prompt token after the first: its log-probability given the tokens
  // before it, and the `prompt_logprobs` most likely alternatives; -1 = off,
  // 0..20. A request asking for them does not reuse prefix-cached blocks
  // (every prompt position must be computed to be scored).
  int prompt_logprobs = -1;
  // Forbid any token that would repeat an n-gram already in prompt + output; 0 = off.
  int no_repeat_ngram_size = 0;
  // Added to a token's logit before sampling (-100 bans it in practice).
  std::map<int32_t, float> logit_bias;

  // Parallel sampling: the prompt is prefilled once, then best_of sequences
  // (sequence i seeded with seed + i) share its KV blocks and sample
  // independently; the n with the highest cumulative log-probability are
  // returned. best_of 0 means n.
  int n = 1;
  int best_of = 0;
  // Beam search with this many beams (0 = off): scores are log-softmax of the
  // logits after logit_bias / repetition penalty / no-repeat-ngram
  // (temperature, top-k/p and min-p are ignored); returns the n best beams.
  // A finished beam scores cumulative_logprob / length ^ length_penalty.
  int beam_width = 0;
  float length_penalty = 1.0f;
  // Stop as soon as beam_width hypotheses have finished, rather than when no
  // live beam can beat the worst finished one.
  bool early_stopping = false;

  int num_sequences() const { return beam_width > 0 ? beam_width : (best_of > 0 ? best_of : n); }

  // Empty when valid; otherwise names the field and why.
  std::string validate() const;
};

}  // namespace brisk
