#include <cstdio>
#include <fstream>
#include <iostream>

#include "brisk/benchmark.h"
#include "cli/common.h"

namespace brisk::cli {

namespace {

void print_table(const std::vector<std::pair<std::string, BenchResult>>& runs) {
  auto row = [&](const char* label, auto fn) {
    std::printf("%-28s", label);
    for (const auto& [name, r] : runs) std::printf("%18s", fn(r.summary).c_str());
    std::printf("\n");
  };
  auto f = [](const char* fmt, double v) {
    char b[64];
    std::snprintf(b, sizeof b, fmt, v);
    return std::string(b);
  };
  auto pct = [&](const Percentiles& p) {
    char b[64];
    std::snprintf(b, sizeof b, "%.1f/%.1f/%.1f", p.p50 * 1e3, p.p90 * 1e3, p.p99 * 1e3);
    return std::string(b);
  };
  std::printf("%-28s", "");
  for (const auto& [name, r] : runs) std::printf("%18s", name.c_str());
  std::printf("\n");
  row("requests (ok/errors)", [&](const BenchSummary& s) { return std::to_string(s.finished) + "/" + std::to_string(s.errors); });
  row("duration s", [&](const BenchSummary& s) { return f("%.2f", s.duration_s); });
  row("generation tokens/s", [&](const BenchSummary& s) { return f("%.1f", s.generation_tokens_per_s); });
  row("prompt tokens/s", [&](const BenchSummary& s) { return f("%.1f", s.prompt_tokens_per_s); });
  row("requests/s", [&](const BenchSummary& s) { return f("%.2f", s.requests_per_s); });
  row("TTFT ms p50/p90/p99", [&](const BenchSummary& s) { return pct(s.ttft); });
  row("TPOT ms p50/p90/p99", [&](const BenchSummary& s) { return pct(s.tpot); });
  row("ITL ms p50/p90/p99", [&](const BenchSummary& s) { return pct(s.itl); });
  row("E2E ms p50/p90/p99", [&](const BenchSummary& s) { return pct(s.e2e); });
  row("KV occupancy mean/peak %", [&](const BenchSummary& s) {
    return f("%.1f", s.kv_occupancy_mean * 100) + "/" + f("%.1f", s.kv_occupancy_peak * 100);
  });
  row("KV waste %", [&](const BenchSummary& s) { return f("%.2f", s.kv_waste * 100); });
  row("mean batch size", [&](const BenchSummary& s) { return f("%.2f", s.mean_batch_size); });
  row("preemptions", [&](const BenchSummary& s) { return std::to_string(s.preemptions); });
  row("prefix cache hit %", [&](const BenchSummary& s) { return f("%.1f", s.prefix_cache_hit_rate * 100); });
  row("padding tokens (wasted)", [&](const BenchSummary& s) { return std::to_string(s.padding_tokens); });
  row("steps", [&](const BenchSummary& s) { return std::to_string(s.steps); });
}

}  // namespace

int cmd_bench(const std::vector<std::string>& argv) {
  Args a("bench", "MODEL [flags]",
         "Replay a workload of N requests in real time (requests join at their arrival times) and report\n"
         "throughput, TTFT/TPOT/ITL/E2E percentiles, KV occupancy and waste, preemptions.\n"
         "Length distributions: fixed:N, uniform:LO:HI, normal:MEAN:STD, or (prompts) file:PATH.jsonl.\n"
         "MODEL is a .gguf file, a Hugging Face directory, a llama2.c .bin, or 'demo'.");
  a.flag("--num-requests", "N", "requests in the workload", "64");
  a.flag("--arrival", "all|poisson", "all at t=0, or a Poisson process", "all");
  a.flag("--rate", "R", "Poisson arrival rate, requests/s", "8");
  a.flag("--prompt-len", "DIST", "prompt length distribution", "fixed:128");
  a.flag("--output-len", "DIST", "output length distribution", "fixed:128");
  a.flag("--temperature", "T", "sampling temperature (0 = greedy)", "0");
  a.flag("--seed", "S", "workload seed", "0");
  a.flag("--warmup", "N", "untimed warm-up requests", "2");
  a.flag("--compare", "", "run continuous and static batching on the same workload, side by side");
  a.flag("--json", "", "print the full result (with per-request and per-step series) as JSON");
  a.flag("--out", "FILE", "also write the JSON result to FILE");
  add_engine_flags(a);
  if (!a.parse(argv)) return 0;
  if (a.positional().size() != 1) throw UsageError("bench takes exactly one MODEL (see --help)");
  WorkloadSpec spec;
  spec.num_requests = (int)a.integer("--num-requests", 1, 1000000);
  spec.arrival = a.str("--arrival");
  if (spec.arrival != "all" && spec.arrival != "poisson") throw UsageError("flag --arrival: '" + spec.arrival + "' is not all or poisson");
  spec.rate = a.number("--rate", 1e-6, 1e9);
  try {
    spec.prompt_len = LengthDist::parse(a.str("--prompt-len"));
    spec.output_len = LengthDist::parse(a.str("--output-len"));
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
  if (spec.output_len.kind == "file") throw UsageError("flag --output-len: file: is only for --prompt-len");
  spec.temperature = (float)a.number("--temperature", 0, 100);
  spec.seed = (uint64_t)a.integer("--seed", 0, INT64_MAX);
  const int warmup = (int)a.integer("--warmup", 0, 1000);
  EngineConfig cfg = engine_config_from(a, a.positional()[0]);

  std::vector<std::pair<std::string, BenchResult>> runs;
  std::vector<SchedulerPolicy> policies = {cfg.policy};
  if (a.has("--compare")) policies = {SchedulerPolicy::Continuous, SchedulerPolicy::Static};
  // Every policy replays the same requests, sized for the engine with the
  // smallest usable context (static batching caps a sequence at one step's
  // token budget), so no side rejects what the other runs.
  std::vector<std::unique_ptr<Engine>> engines;
  for (SchedulerPolicy p : policies) {
    cfg.policy = p;
    engines.push_back(Engine::create(cfg));
  }
  const Engine* smallest = engines[0].get();
  for (const auto& e : engines)
    if (e->max_model_len() < smallest->max_model_len()) smallest = e.get();
  const std::vector<WorkloadRequest> workload = make_workload(spec, *smallest);
  for (auto& engine : engines) {
    const SchedulerPolicy p = engine->config().policy;
    if (!a.has("--json"))
      std::fprintf(stderr, "running %d requests, %s policy, on %s%s...\n", spec.num_requests, policy_name(p),
                   engine->model_info().path.c_str(), engine->model_info().synthetic ? " (synthetic)" : "");
    runs.emplace_back(policy_name(p), run_benchmark(*engine, spec, workload, warmup));
    engine.reset();  // free its KV cache before the next run
  }
  std::string json;
  if (runs.size() == 1) {
    json = to_json(runs[0].second);
  } else {
    json = "{";
    for (size_t i = 0; i < runs.size(); ++i) json += (i ? ",\"" : "\"") + runs[i].first + "\":" + to_json(runs[i].second);
    json += "}";
  }
  if (a.has("--out")) {
    std::ofstream f(a.str("--out"));
    if (!f) throw Error(a.str("--out") + ": cannot open for writing");
    f << json << "\n";
  }
  if (a.has("--json")) {
    std::cout << json << "\n";
    return 0;
  }
  print_table(runs);
  if (runs.size() == 2) {
    const auto& c = runs[0].second.summary;
    const auto& s = runs[1].second.summary;
    if (s.generation_tokens_per_s > 0)
      std::printf("\ncontinuous / static generation throughput: %.2fx; p99 TTFT %.1f ms vs %.1f ms\n",
                  c.generation_tokens_per_s / s.generation_tokens_per_s, c.ttft.p99 * 1e3, s.ttft.p99 * 1e3);
  }
  return 0;
}

}  // namespace brisk::cli
