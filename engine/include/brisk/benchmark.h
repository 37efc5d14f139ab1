// One benchmark engine (no Qt) behind `brisk-cli bench`, the GUI's
// benchmark view and reports: a workload is data, a run replays it against
// an Engine in real time and keeps every number engine/metrics produced.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "brisk/engine.h"

namespace brisk {

// A length distribution: "fixed:N", "uniform:LO:HI", "normal:MEAN:STD"
// (clamped to >= 1), or "file:PATH.jsonl" (prompts from a file: each line
// {"prompt": "...", optional "max_tokens": N}).
struct LengthDist {
  std::string kind = "fixed";
  double a = 128, b = 0;
  std::string path;
  static LengthDist parse(const std::string& spec);  // throws brisk::Error naming the spec
  std::string to_string() const;
};

struct WorkloadSpec {
  int num_requests = 64;
  std::string arrival = "all";  // "all" (at t=0) or "poisson"
  double rate = 8.0;            // requests/s for poisson
  LengthDist prompt_len{"fixed", 128, 0, {}};
  LengthDist output_len{"fixed", 128, 0, {}};
  float temperature = 0.0f;
  bool ignore_eos = true;       // outputs run to their drawn length
  uint64_t seed = 0;
};

struct WorkloadRequest {
  double arrival = 0;  // seconds after the run starts
  std::vector<int32_t> prompt_ids;
  SamplingParams params;
};

// Deterministic given spec.seed; prompts are tokenized with the engine.
std::vector<WorkloadRequest> make_workload(const WorkloadSpec& spec, const Engine& engine);

struct BenchSummary {
  double duration_s = 0;
  int requests = 0, finished = 0, errors = 0;
  uint64_t prompt_tokens = 0, generation_tokens = 0;
  double prompt_tokens_per_s = 0, generation_tokens_per_s = 0, requests_per_s = 0;
  Percentiles ttft, tpot, itl, e2e, queue;
  double kv_occupancy_mean = 0, kv_occupancy_peak = 0;  // used / total blocks over steps
  double kv_waste = 0;       // (allocated - filled) / allocated slots, over all steps
  uint64_t preemptions = 0;
  uint64_t padding_tokens = 0;
  double prefix_cache_hit_rate = 0;  // prompt tokens found cached / looked up
  double mean_batch_size = 0;
  uint64_t steps = 0;
};

struct BenchResult {
  EngineConfig config;
  ModelInfo model;
  WorkloadSpec workload;
  BenchSummary summary;
  std::vector<RequestMetrics> requests;
  std::vector<StepMetrics> steps;
  std::string brisk_version, commit;
};

// Replays the workload in real time (requests join at their arrival times)
// and returns everything measured. warmup_requests run first, untimed.
BenchResult run_benchmark(Engine& engine, const WorkloadSpec& spec, const std::vector<WorkloadRequest>& workload,
                          int warmup_requests = 2);
BenchSummary summarize(const std::vector<RequestMetrics>& requests, const std::vector<StepMetrics>& steps,
                       double duration_s);
std::string to_json(const BenchResult& r, bool with_series = true);

}  // namespace brisk
