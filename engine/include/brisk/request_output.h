#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace brisk {

enum class FinishReason { None, Length, Stop, Eos, Abort, Error };
const char* finish_reason_name(FinishReason r);

// One event for one request from one engine step: the tokens and text it
// added, and when finished, why.
struct RequestOutput {
  uint64_t request_id = 0;
  std::vector<int32_t> new_token_ids;
  std::string new_text;
  std::vector<int32_t> token_ids;  // every generated token so far
  std::string text;                // every generated character so far
  int prompt_tokens = 0;
  bool finished = false;
  FinishReason finish_reason = FinishReason::None;
  std::string error;               // set when finish_reason == Error
};

}  // namespace brisk
