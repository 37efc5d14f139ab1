// One benchmark engine (no Qt) behind `brisk-cli bench`, the GUI's
// benchmark view and reports: a workload is data, a run replays it against
// an Engine in real time and keeps every number engine/metrics produced.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "brisk/engine.h"
#include "brisk/sysinfo.h"

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

// A workload is data: docs/WORKLOADS.md documents its JSON (schema
// "brisk.workload", version 1; docs/schemas/workload.v1.schema.json), and
// resources/workloads/ ships built-in ones.
struct WorkloadSpec {
  std::string name, description;
  int num_requests = 64;
  // Arrival process: "all" (every request at t=0), "poisson" (rate
  // requests/s), "gamma" (mean rate requests/s; burstiness 1 = Poisson,
  // < 1 burstier, > 1 more regular), "ramp" (rate rising linearly from
  // ramp_start_rate to ramp_end_rate across the run), "trace" (the
  // timestamps in trace_times, seconds, one per request, or read from
  // trace_path: JSONL lines {"timestamp": s, optional "prompt", "max_tokens"}).
  std::string arrival = "all";
  double rate = 8.0;
  double burstiness = 1.0;
  double ramp_start_rate = 1.0, ramp_end_rate = 16.0;
  std::vector<double> trace_times;
  std::string trace_path;
  int max_concurrency = 0;  // requests in flight at once (0 = no cap): later arrivals wait client-side
  LengthDist prompt_len{"fixed", 128, 0, {}};
  LengthDist output_len{"fixed", 128, 0, {}};
  // Sampling parameters of every request (max_tokens comes from output_len).
  float temperature = 0.0f;
  float top_p = 1.0f;
  int top_k = 0;
  float repetition_penalty = 1.0f;
  bool ignore_eos = true;       // outputs run to their drawn length
  // Decoding strategy per request (SamplingParams): parallel samples, best-of, beam width.
  int n = 1, best_of = 0, beam_width = 0;
  uint64_t seed = 0;
};

// Throws brisk::Error naming `source` and the field on bad input.
WorkloadSpec workload_from_json(const std::string& text, const std::string& source);
WorkloadSpec load_workload(const std::string& path);
std::string to_json(const WorkloadSpec& w);  // schema "brisk.workload" v1; round-trips
// Built-in workloads (resources/workloads/*.json, embedded at build time).
std::vector<std::string> builtin_workload_names();
WorkloadSpec builtin_workload(const std::string& name);  // throws naming the unknown name

// Service-level objectives for goodput: a request is "good" when every set
// limit holds (0 = no limit).
struct Slo {
  double ttft_s = 0, tpot_s = 0, e2e_s = 0;
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
  // Goodput: finished requests meeting the SLO, per second and as a
  // fraction of finished requests (equal to requests_per_s / 1 with no SLO set).
  double goodput_requests_per_s = 0, goodput_fraction = 0;
  double kv_occupancy_mean = 0, kv_occupancy_peak = 0;  // used / total blocks over steps
  double kv_waste = 0;       // (allocated - filled) / allocated slots, over all steps
  uint64_t preemptions = 0;
  uint64_t padding_tokens = 0;
  double prefix_cache_hit_rate = 0;  // prompt tokens found cached / looked up
  // Speculative decoding: accepted / proposed draft tokens, and tokens
  // generated per sequence decode step (1 without speculation).
  uint64_t spec_proposed_tokens = 0, spec_accepted_tokens = 0;
  double spec_acceptance_rate = 0, tokens_per_decode_step = 0;
  double mean_batch_size = 0;
  uint64_t steps = 0;
};

// How close a run came to the machine's two ceilings (brisk/sysinfo.h).
// Decode streams every weight once per step plus the K/V it attends to, so
// it is judged against read bandwidth; prefill is judged against FP32 FMA
// peak. On CUDA the two are the GPU's device bandwidth and F16 GEMM
// throughput (backend_ceilings). Only pure decode and pure prefill steps count, so neither figure is
// blurred by the other kind of work.
struct RooflineFigures {
  bool measured = false;  // the machine's ceilings were known
  double read_bandwidth_bytes_per_s = 0, fma_peak_flops = 0;
  double weight_bytes_per_step = 0;   // bytes of every matrix a forward reads (embedding rows aside)
  double kv_bytes_per_token = 0;      // K and V of one token, all layers
  double matmul_flops_per_token = 0;  // 2 x parameters of the layer matrices (the classifier runs per sampled row)
  int decode_steps = 0, prefill_steps = 0;
  double decode_step_s = 0;        // mean duration of a pure decode step
  double decode_forward_s = 0;     // of which the model forward (the rest: scheduling, sampling, detokenizing)
  double decode_tokens_per_s = 0;  // tokens / time over pure decode steps
  double decode_bytes_per_step = 0;
  double decode_bandwidth_fraction = 0;  // bytes per step / step time / read bandwidth
  double prefill_tokens_per_s = 0;       // tokens / time over pure prefill steps
  double prefill_fma_fraction = 0;       // matmul FLOP/s / FMA peak
};

// Quality of the run's precision against the same model in F32 weights and
// KV (brisk/quality.h): perplexity with KL divergence, and greedy agreement.
struct QualityFigures {
  bool measured = false;
  // The run is its own F32 reference (no precision change): measured all the
  // same, so its perplexity is the reference's and KL / agreement show what
  // the comparison gives when nothing differs.
  bool reference = false;
  std::string text_path, prompts_path;
  double perplexity = 0, baseline_perplexity = 0;
  double kl_mean = 0, kl_p99 = 0, top1_agreement = 0;
  int64_t tokens_scored = 0;
  double greedy_agreement = 0;  // teacher-forced, see AgreementResult::agreement
  double mean_identical_prefix = 0;
  int agreement_prompts = 0, agreement_tokens = 0;
};

struct BenchResult {
  // Where it came from in a matrix: the run's label ("f16 · static"), the
  // axis values that made it, and which repeat it was (0-based).
  std::string label;
  std::vector<std::pair<std::string, std::string>> settings;
  int repeat = 0;
  std::string matrix_name;
  std::string created;  // ISO 8601 UTC, when the run finished
  std::string model_sha256;  // of the model file ("" for the built-in demo model)
  Slo slo;
  std::string error;  // the run failed (the rest of the result may be empty)
  EngineConfig config;
  ModelInfo model;
  WorkloadSpec workload;
  BenchSummary summary;
  std::vector<RequestMetrics> requests;
  std::vector<StepMetrics> steps;
  std::string brisk_version, commit;
  SystemInfo system;
  RooflineFigures roofline;
  QualityFigures quality;
};

// Fills r.roofline from the run's steps, its model and the machine.
void compute_roofline(BenchResult& r, const SystemInfo& system, double kv_bytes_per_token);

// Replays the workload in real time (requests join at their arrival times)
// and returns everything measured. warmup_requests run first, untimed.
BenchResult run_benchmark(Engine& engine, const WorkloadSpec& spec, const std::vector<WorkloadRequest>& workload,
                          int warmup_requests = 2);
BenchSummary summarize(const std::vector<RequestMetrics>& requests, const std::vector<StepMetrics>& steps,
                       double duration_s, const Slo& slo = {});
std::string to_json(const BenchResult& r, bool with_series = true);
// Re-imports to_json's output (with series); throws brisk::Error naming
// `source` and the field.
BenchResult bench_result_from_json(const std::string& text, const std::string& source);

}  // namespace brisk
