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
  int top_k = 0;        // 0 = off
  float top_p = 1.0f;   // 1 = off
  float min_p = 0.0f;   // 0 = off
  float repetition_penalty = 1.0f;  // 1 = off; >1 discourages tokens already seen
  int max_tokens = 16;
  std::optional<uint64_t> seed;     // unset: derived from the engine seed and request id
  std::vector<std::string> stop;    // stop strings (not included in the output)
  std::vector<int32_t> stop_token_ids;
  bool ignore_eos = false;
  // Per generated token: its log-probability under the model's distribution
  // (before penalties and temperature) and the `logprobs` most likely
  // alternatives; -1 = off, 0 = the chosen token only, at most 20.
  int logprobs = -1;
  // Forbid any token that would repeat an n-gram already in prompt + output; 0 = off.
  int no_repeat_ngram_size = 0;
  // Added to a token's logit before sampling (-100 bans it in practice).
  std::map<int32_t, float> logit_bias;

  // Empty when valid; otherwise names the field and why.
  std::string validate() const;
};

}  // namespace brisk
