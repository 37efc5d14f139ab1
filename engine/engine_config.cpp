#include "brisk/engine_config.h"

#include <climits>
#include <cmath>

#include "brisk/request_output.h"
#include "brisk/sampling_params.h"

namespace brisk {

const char* policy_name(SchedulerPolicy p) { return p == SchedulerPolicy::Static ? "static" : "continuous"; }

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::None:
      return "none";
    case FinishReason::Length:
      return "length";
    case FinishReason::Stop:
      return "stop";
    case FinishReason::Eos:
      return "eos";
    case FinishReason::Abort:
      return "abort";
    case FinishReason::Error:
      return "error";
  }
  return "?";
}

std::string EngineConfig::validate() const {
  auto bad = [](const std::string& field, const std::string& value, const std::string& why) {
    return "EngineConfig." + field + " = " + value + ": " + why;
  };
  if (block_size < 1 || block_size > 1024 || (block_size & (block_size - 1)))
    return bad("block_size", std::to_string(block_size), "must be a power of two between 1 and 1024");
  if (num_kv_blocks < 0) return bad("num_kv_blocks", std::to_string(num_kv_blocks), "must not be negative");
  // Slots are 32-bit indices.
  if (num_kv_blocks * (int64_t)block_size > INT32_MAX)
    return bad("num_kv_blocks", std::to_string(num_kv_blocks), "is too large (more than 2^31 token slots)");
  if (kv_cache_bytes < 0)
    return bad("kv_cache_bytes", std::to_string(kv_cache_bytes), "must not be negative");
  if (max_num_seqs < 1 || max_num_seqs > 4096)
    return bad("max_num_seqs", std::to_string(max_num_seqs), "must be between 1 and 4096");
  if (max_num_batched_tokens < 1 || max_num_batched_tokens > (1 << 20))
    return bad("max_num_batched_tokens", std::to_string(max_num_batched_tokens),
               "must be between 1 and 1048576");
  if (max_num_batched_tokens < max_num_seqs)
    return bad("max_num_batched_tokens", std::to_string(max_num_batched_tokens),
               "must be at least max_num_seqs (" + std::to_string(max_num_seqs) +
                   ") so every running sequence can decode");
  if (speculative_tokens < 0 || speculative_tokens > 64)
    return bad("speculative_tokens", std::to_string(speculative_tokens), "must be between 0 (off) and 64");
  if (speculative_ngram < 1 || speculative_ngram > 64)
    return bad("speculative_ngram", std::to_string(speculative_ngram), "must be between 1 and 64");
  // Static batching steps its batch in lockstep and never proposes drafts:
  // the setting would label runs it did not change.
  if (speculative_tokens > 0 && policy == SchedulerPolicy::Static)
    return bad("speculative_tokens", std::to_string(speculative_tokens),
               "speculative decoding needs the continuous scheduler (policy is static)");
  if (max_model_len < 0) return bad("max_model_len", std::to_string(max_model_len), "must not be negative");
  if (backend != "cpu" && backend != "cuda" && backend != "auto")
    return bad("backend", "'" + backend + "'", "unknown backend (one of auto, cpu, cuda)");
  if (!(gpu_memory_utilization > 0.0 && gpu_memory_utilization <= 1.0))
    return bad("gpu_memory_utilization", std::to_string(gpu_memory_utilization), "must be in (0, 1]");
  if (threads < 0 || threads > 1024)
    return bad("threads", std::to_string(threads), "must be between 0 (auto) and 1024");
  {
    static const char* kWeight[] = {"auto", "f32", "f16", "bf16", "q8_0", "int8", "fp8-e4m3", "fp8-e5m2"};
    static const char* kKv[] = {"f32", "f16", "bf16", "fp8-e4m3", "int8"};
    auto one_of = [](const std::string& v, const auto& list) {
      for (const char* n : list)
        if (v == n) return true;
      return false;
    };
    if (!one_of(weight_dtype, kWeight))
      return bad("weight_dtype", "'" + weight_dtype + "'",
                 "unknown (auto, f32, f16, bf16, q8_0, int8, fp8-e4m3, fp8-e5m2)");
    if (!one_of(kv_dtype, kKv))
      return bad("kv_dtype", "'" + kv_dtype + "'", "unknown (f32, f16, bf16, fp8-e4m3, int8)");
    if (int8_activations && weight_dtype != "int8" && weight_dtype != "auto")
      return bad(
          "int8_activations", "true",
          "needs int8 weights: weight_dtype int8, or auto on an int8 model (it is '" + weight_dtype + "')");
  }
  if (model.empty()) return bad("model", "''", "empty path (use \"demo\" for the built-in demo model)");
  return {};
}

std::string SamplingParams::validate() const {
  auto bad = [](const std::string& field, const std::string& value, const std::string& why) {
    return "SamplingParams." + field + " = " + value + ": " + why;
  };
  if (!(temperature >= 0) || temperature > 100)
    return bad("temperature", std::to_string(temperature), "must be in [0, 100]");
  if (top_k < 0) return bad("top_k", std::to_string(top_k), "must be >= 0 (0 = off)");
  if (!(top_p > 0 && top_p <= 1)) return bad("top_p", std::to_string(top_p), "must be in (0, 1]");
  if (!(min_p >= 0 && min_p <= 1)) return bad("min_p", std::to_string(min_p), "must be in [0, 1]");
  if (!(repetition_penalty > 0) || repetition_penalty > 100)
    return bad("repetition_penalty", std::to_string(repetition_penalty), "must be in (0, 100]");
  if (max_tokens < 1) return bad("max_tokens", std::to_string(max_tokens), "must be at least 1");
  if (no_repeat_ngram_size < 0)
    return bad("no_repeat_ngram_size", std::to_string(no_repeat_ngram_size), "must be >= 0 (0 = off)");
  for (const auto& [id, b] : logit_bias)
    if (id < 0 || !std::isfinite(b))
      return bad("logit_bias", std::to_string(id), "needs a non-negative token id and a finite bias");
  if (logprobs < -1 || logprobs > 20)
    return bad("logprobs", std::to_string(logprobs), "must be -1 (off) or 0..20");
  if (prompt_logprobs < -1 || prompt_logprobs > 20)
    return bad("prompt_logprobs", std::to_string(prompt_logprobs), "must be -1 (off) or 0..20");
  for (const auto& s : stop)
    if (s.empty()) return bad("stop", "\"\"", "stop strings must not be empty");
  // 64 sequences per request is far beyond useful and keeps one request from
  // monopolising a step.
  if (n < 1 || n > 64) return bad("n", std::to_string(n), "must be between 1 and 64");
  if (best_of != 0 && (best_of < n || best_of > 64))
    return bad("best_of", std::to_string(best_of),
               "must be 0 (= n) or between n (" + std::to_string(n) + ") and 64");
  if (beam_width < 0 || beam_width > 64)
    return bad("beam_width", std::to_string(beam_width), "must be between 0 (off) and 64");
  if (beam_width > 0) {
    if (n > beam_width)
      return bad("n", std::to_string(n), "must not exceed beam_width (" + std::to_string(beam_width) + ")");
    if (best_of != 0)
      return bad("best_of", std::to_string(best_of), "has no meaning with beam search (use beam_width)");
    if (!stop.empty())
      return bad("stop", "\"" + stop[0] + "\"", "stop strings are not supported with beam search");
  }
  if (!std::isfinite(length_penalty) || std::fabs(length_penalty) > 10)
    return bad("length_penalty", std::to_string(length_penalty), "must be finite, in [-10, 10]");
  return {};
}

namespace {
// The CUDA-only switches, once: the field list, the check and the reset all
// walk this table (gpu_memory_utilization, the one number, goes first).
struct CudaOnlySwitch {
  const char* name;
  bool EngineConfig::*field;
};
constexpr CudaOnlySwitch kCudaOnlySwitches[] = {
    {"cuda_graphs", &EngineConfig::cuda_graphs},
    {"fused_decode", &EngineConfig::fused_decode},
    {"dependent_launch", &EngineConfig::dependent_launch},
    {"fused_rope", &EngineConfig::fused_rope},
    {"fp8_fast_accum", &EngineConfig::fp8_fast_accum},
    {"split_merge_in_kernel", &EngineConfig::split_merge_in_kernel},
    {"l2_prefetch", &EngineConfig::l2_prefetch},
    {"persistent_decode", &EngineConfig::persistent_decode}};
}  // namespace

const std::vector<std::string>& cuda_only_fields() {
  static const std::vector<std::string> fields = [] {
    std::vector<std::string> v{"gpu_memory_utilization"};
    for (const CudaOnlySwitch& s : kCudaOnlySwitches) v.push_back(s.name);
    return v;
  }();
  return fields;
}

std::vector<std::string> cuda_only_fields_set(const EngineConfig& c) {
  const EngineConfig d;
  std::vector<std::string> v;
  if (c.gpu_memory_utilization != d.gpu_memory_utilization) v.push_back("gpu_memory_utilization");
  for (const CudaOnlySwitch& s : kCudaOnlySwitches)
    if (c.*s.field != d.*s.field) v.push_back(s.name);
  return v;
}

void reset_cuda_only_fields(EngineConfig& c) {
  const EngineConfig d;
  c.gpu_memory_utilization = d.gpu_memory_utilization;
  for (const CudaOnlySwitch& s : kCudaOnlySwitches) c.*s.field = d.*s.field;
}

}  // namespace brisk
