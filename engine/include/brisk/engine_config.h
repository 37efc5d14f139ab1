#pragma once
#include <cstdint>
#include <string>

namespace brisk {

enum class SchedulerPolicy { Continuous, Static };
const char* policy_name(SchedulerPolicy p);

// Everything that decides how the engine runs. Validated up front by
// validate(): nonsense values are errors naming the field and why.
struct EngineConfig {
  // Model: a GGUF file, a Hugging Face directory, a llama2.c .bin, or "demo".
  std::string model = "demo";
  std::string tokenizer;  // optional override (needed for llama2.c checkpoints)

  // KV cache: sized from num_kv_blocks if > 0, else from kv_cache_bytes if > 0,
  // else enough for max_num_seqs full-context sequences capped at 1 GiB.
  int block_size = 16;
  int64_t num_kv_blocks = 0;
  int64_t kv_cache_bytes = 0;

  // Scheduler.
  SchedulerPolicy policy = SchedulerPolicy::Continuous;
  int max_num_seqs = 32;
  int max_num_batched_tokens = 2048;
  bool enable_chunked_prefill = true;
  int max_model_len = 0;  // 0 = the model's context length

  // Backend.
  std::string backend = "cpu";
  int threads = 0;  // 0 = physical cores

  uint64_t seed = 0;  // default seed for requests that set none

  std::string validate() const;  // empty when valid
};

}  // namespace brisk
