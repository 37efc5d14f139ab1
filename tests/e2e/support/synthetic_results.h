// Hand-built benchmark results for the report tests: realistic timelines
// (queueing, chunked prefill, decode with the odd slow gap, KV occupancy that
// rises and falls) without running an engine. Deterministic given the seed.
#pragma once
#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "brisk/bench_matrix.h"

namespace synthetic {

// `speed` scales every duration down (2 = twice as fast).
inline brisk::BenchResult makeRun(const std::string& label,
                                  std::vector<std::pair<std::string, std::string>> settings, int repeat,
                                  double speed, uint32_t seed, int requests = 12) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> jitter(0.8, 1.25);
  brisk::BenchResult r;
  r.label = label;
  r.settings = std::move(settings);
  r.repeat = repeat;
  r.matrix_name = "precision-x-policy";
  r.created = "2026-11-25T12:00:00Z";
  r.model_sha256 = "";
  r.slo.ttft_s = 0.5;
  r.slo.tpot_s = 0.1;
  r.config.model = "demo";
  for (const auto& [k, v] : r.settings) {
    if (k == "weight_dtype") r.config.weight_dtype = v;
    if (k == "policy")
      r.config.policy = v == "static" ? brisk::SchedulerPolicy::Static : brisk::SchedulerPolicy::Continuous;
    if (k == "max_num_seqs") r.config.max_num_seqs = std::stoi(v);
  }
  r.config.threads = 2;
  r.model.path = "demo";
  r.model.format = "demo";
  r.model.architecture = "llama";
  r.model.name = "brisk-demo";
  r.model.synthetic = true;
  r.model.dim = 288;
  r.model.hidden_dim = 768;
  r.model.n_layers = 6;
  r.model.n_heads = 6;
  r.model.n_kv_heads = 6;
  r.model.head_dim = 48;
  r.model.vocab_size = 512;
  r.model.context_length = 256;
  r.model.n_params = 7'000'000;
  r.model.weight_bytes = 28'000'000;
  r.workload.name = "chat";
  r.workload.num_requests = requests;
  r.workload.arrival = "poisson";
  r.workload.rate = 8;
  r.brisk_version = "0.1.0";
  r.commit = "0123abc";
  r.system.cpu_model = "Test CPU @ 3.0GHz";
  r.system.physical_cores = 2;
  r.system.logical_cpus = 4;
  r.system.memory_bytes = uint64_t(16) << 30;
  r.system.features = {"avx2", "fma"};
  r.system.kernel_isa = "avx2";
  r.system.detected_isa = "avx2";
  r.system.measured = true;
  r.system.read_bandwidth_bytes_per_s = 12.5e9;
  r.system.fma_peak_flops = 150e9;
  r.system.threads_used = 2;
  r.system.measured_at = "2026-11-25T11:00:00Z";

  const double step = 0.02 / speed;
  double t = 0.0;
  for (int i = 0; i < requests; ++i) {
    brisk::RequestMetrics q;
    q.request_id = uint64_t(i + 1);
    q.arrival = t;
    t += 0.06 * jitter(rng) / speed;
    q.prompt_tokens = 64 + 16 * (i % 4);
    q.output_tokens = 16 + 4 * (i % 5);
    q.first_scheduled = q.arrival + (i % 3) * 0.03 / speed * jitter(rng);
    // One or two prefill chunks (chunked prefill), a step apart.
    double c = q.first_scheduled;
    const int chunks = 1 + i % 2;
    for (int k = 0; k < chunks; ++k) {
      q.prefill_chunks.push_back({c, c + step * jitter(rng), q.prompt_tokens / chunks});
      c = q.prefill_chunks.back().end + (k + 1 < chunks ? step : 0);
    }
    q.first_token = c;
    double tt = c;
    for (int k = 0; k < q.output_tokens; ++k) {
      if (k > 0) tt += step * jitter(rng) * (k % 11 == 7 ? 6.0 : 1.0);  // the odd slow gap
      q.token_times.push_back(tt);
    }
    q.finished = tt + 0.001;
    q.detokenize_s = 0.0005;
    q.finish_reason = brisk::FinishReason::Length;
    r.requests.push_back(q);
  }
  double end = 0;
  for (const auto& q : r.requests) end = std::max(end, q.finished);
  uint64_t n = 0;
  for (double s = 0; s < end; s += step) {
    brisk::StepMetrics m;
    m.step = n++;
    m.start = s;
    m.duration = step;
    int running = 0;
    int64_t blocks = 0;
    for (const auto& q : r.requests)
      if (q.first_scheduled <= s && q.finished > s) {
        ++running;
        blocks += (q.prompt_tokens + q.output_tokens + 15) / 16;
      }
    m.running = m.num_seqs = running;
    m.decode_tokens = m.decode_seqs = running;
    m.kv_blocks_total = 64;
    m.kv_blocks_used = std::min<int64_t>(blocks, 64);
    m.kv_slots_allocated = m.kv_blocks_used * 16;
    m.kv_slots_filled = m.kv_slots_allocated * 3 / 4;
    r.steps.push_back(m);
  }
  r.summary = brisk::summarize(r.requests, r.steps, end, r.slo);
  return r;
}

// A precision × policy matrix with two repeats: 2 × 2 × 2 runs.
inline std::vector<brisk::BenchResult> matrix() {
  std::vector<brisk::BenchResult> runs;
  uint32_t seed = 1;
  for (int rep = 0; rep < 2; ++rep)
    for (const char* dtype : {"f32", "int8"})
      for (const char* policy : {"continuous", "static"}) {
        const double speed =
            (std::string(dtype) == "int8" ? 1.6 : 1.0) * (std::string(policy) == "static" ? 0.7 : 1.0);
        runs.push_back(makeRun(std::string(dtype) + " · " + policy,
                               {{"weight_dtype", dtype}, {"policy", policy}}, rep, speed * (rep ? 1.03 : 1.0),
                               seed++));
      }
  return runs;
}

// A request-rate sweep over two policies.
inline std::vector<brisk::BenchResult> rateSweep() {
  std::vector<brisk::BenchResult> runs;
  uint32_t seed = 100;
  for (const char* policy : {"continuous", "static"})
    for (double rate : {2.0, 4.0, 8.0}) {
      const std::string rs = std::to_string(int(rate));
      runs.push_back(makeRun(std::string(policy) + " · " + rs, {{"policy", policy}, {"rate", rs}}, 0,
                             (std::string(policy) == "static" ? 0.7 : 1.0) * (1.2 - 0.08 * rate), seed++));
      runs.back().summary.generation_tokens_per_s *= rate / 2;  // throughput grows with the offered load
    }
  return runs;
}

}  // namespace synthetic
