#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace brisk {

enum class FinishReason { None, Length, Stop, Eos, Abort, Error };
const char* finish_reason_name(FinishReason r);

// A finished request's timeline on the engine's metrics clock (seconds),
// as engine/metrics recorded it; -1 where it never happened.
struct RequestTimings {
  double arrival = -1, first_scheduled = -1, first_token = -1, last_token = -1, finished = -1;
  int preemptions = 0;
  double ttft() const { return first_token >= 0 ? first_token - arrival : -1; }
  double e2e() const { return finished >= 0 ? finished - arrival : -1; }
  // Decode rate after the first token; -1 with fewer than two tokens.
  double decode_tokens_per_s(int output_tokens) const {
    return output_tokens >= 2 && last_token > first_token ? (output_tokens - 1) / (last_token - first_token)
                                                          : -1;
  }
};

struct TokenLogprob {
  int32_t token = 0;
  float logprob = 0;
  std::vector<std::pair<int32_t, float>> top;  // most likely tokens first
};

// One finished sequence of a request with n > 1 or beam search.
struct SequenceOutput {
  int index = 0;  // parallel sampling: the sequence's number (seeded seed + index); beams: rank
  std::vector<int32_t> token_ids;
  std::string text;
  double cumulative_logprob = 0;
  double score = 0;  // beams: cumulative_logprob / length ^ length_penalty; sampling: cumulative_logprob
  FinishReason finish_reason = FinishReason::None;
};

// One event for one request from one engine step: the tokens and text it
// added, and when finished, why.
struct RequestOutput {
  uint64_t request_id = 0;
  std::vector<int32_t> new_token_ids;
  std::vector<TokenLogprob> new_logprobs;  // one per new token when SamplingParams::logprobs >= 0
  // SamplingParams::prompt_logprobs >= 0: prompt tokens 1..P-1 scored, in
  // the request's first event after its prompt is computed (only there).
  std::vector<TokenLogprob> prompt_logprobs;
  std::string new_text;
  std::vector<int32_t> token_ids;  // every generated token so far
  std::string text;                // every generated character so far
  int prompt_tokens = 0;
  bool finished = false;
  FinishReason finish_reason = FinishReason::None;
  std::string error;       // set when finish_reason == Error
  RequestTimings timings;  // set when finished
  // n > 1 or beam search. Streaming events (parallel sampling only) carry
  // one sequence's token: seq_index says which, token_ids/text are that
  // sequence's so far. The final event (finished) carries no new tokens and
  // lists the returned sequences best first; token_ids/text/finish_reason
  // are then the best sequence's.
  int seq_index = 0;
  std::vector<SequenceOutput> sequences;
};

}  // namespace brisk
