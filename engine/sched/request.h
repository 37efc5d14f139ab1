#pragma once
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "brisk/request_output.h"
#include "brisk/sampling_params.h"
#include "tokenizer/tokenizer.h"

namespace brisk {

enum class RequestStatus { Waiting, Running, Finished };

// One sequence as the engine tracks it: a whole request when it generates
// one sequence, else one of its parallel samples or beams. The scheduler
// reads only the token counts (and seats); sampling and detokenization state
// live here too so that a preempted sequence resumes exactly where it was.
// `id` keys the KV cache and the scheduler; `group_id` is the public request
// id (equal to `id` for a request's first sequence).
struct Request {
  uint64_t id = 0;
  uint64_t group_id = 0;
  int seq_index = 0;
  // Rows of max_num_seqs this entity stands for: a request that will fork
  // into k sequences holds k seats until it does, so a group never pushes a
  // step past max_num_seqs.
  int seats = 1;
  double cum_logprob = 0;  // of the chosen tokens (parallel sampling and beams)
  std::vector<int32_t> prompt_ids;
  std::vector<int32_t> output_ids;
  SamplingParams params;
  RequestStatus status = RequestStatus::Waiting;
  int64_t num_computed = 0;  // tokens whose K/V are in the cache
  double arrival = 0;
  int preemptions = 0;
  int max_len = 0;  // prompt + output may not exceed this (context / cache)
  // Speculative decoding: tokens proposed to follow output_ids, verified
  // (and then cleared) by the step that schedules them.
  std::vector<int32_t> draft;
  std::string reject_reason;  // non-empty: finish with an error at the next step

  std::mt19937_64 rng;
  std::unique_ptr<StreamingDetokenizer> detok;
  std::string text;         // every generated character so far (after stop handling)
  size_t text_emitted = 0;  // bytes of text already sent in outputs

  int64_t num_tokens() const { return (int64_t)prompt_ids.size() + (int64_t)output_ids.size(); }
  // Positions past num_tokens() read the draft.
  int32_t token_at(int64_t i) const {
    if (i < (int64_t)prompt_ids.size()) return prompt_ids[i];
    i -= (int64_t)prompt_ids.size();
    return i < (int64_t)output_ids.size() ? output_ids[i] : draft[i - output_ids.size()];
  }
};

}  // namespace brisk
