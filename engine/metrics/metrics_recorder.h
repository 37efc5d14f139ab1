// Collects per-request timelines and per-step gauges; the one source of
// every number the UI, CLI, server and reports show.
#pragma once
#include <cstdint>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "brisk/metrics.h"

namespace brisk {

class MetricsRecorder {
 public:
  void on_add(uint64_t id, double arrival, int prompt_tokens);
  void on_scheduled(uint64_t id, double t);
  // One generated token; every token of a step comes before that step's on_step.
  void on_token(uint64_t id, double t);
  // A step [start, end) computed `tokens` prompt (or recomputed) tokens of the request.
  void on_prefill_chunk(uint64_t id, double start, double end, int tokens);
  void on_detokenize(uint64_t id, double seconds);
  void on_preempt(uint64_t id);
  // Returns the request's timeline as recorded.
  RequestTimings on_finish(uint64_t id, double t, FinishReason reason, int output_tokens);
  void on_step(const StepMetrics& s);
  void reset();

  MetricsSnapshot snapshot(double now) const;
  const std::vector<StepMetrics>& steps() const { return steps_; }
  const std::vector<RequestMetrics>& finished() const { return finished_; }

 private:
  std::unordered_map<uint64_t, RequestMetrics> live_;
  std::vector<RequestMetrics> finished_;
  std::vector<StepMetrics> steps_;
  uint64_t added_ = 0, rejected_ = 0, aborted_ = 0, preemptions_ = 0;
  uint64_t prefix_query_tokens_ = 0, prefix_hit_tokens_ = 0;
  uint64_t spec_proposed_ = 0, spec_accepted_ = 0, decode_seq_steps_ = 0;
  uint64_t prompt_tokens_ = 0, generation_tokens_ = 0;
  // The step under way (until on_step): requests given a token, and tokens given.
  std::unordered_set<uint64_t> advanced_;
  int step_tokens_ = 0;
};

}  // namespace brisk
