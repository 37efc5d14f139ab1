#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>

#include "brisk/benchmark.h"
#include "brisk/quality.h"
#include "brisk/sysinfo.h"
#include "cli/common.h"

namespace brisk::cli {

namespace {

void print_table(const std::vector<std::pair<std::string, BenchResult>>& runs) {
  auto row = [&](const char* label, auto fn) {
    std::printf("%-28s", label);
    for (const auto& [name, r] : runs) std::printf("%18s", fn(r.summary).c_str());
    std::printf("\n");
  };
  auto rrow = [&](const char* label, auto fn) {  // from the whole result
    std::printf("%-28s", label);
    for (const auto& [name, r] : runs) std::printf("%18s", fn(r).c_str());
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
  row("spec accepted % / tokens per decode", [&](const BenchSummary& s) {
    return f("%.1f", s.spec_acceptance_rate * 100) + "/" + f("%.2f", s.tokens_per_decode_step);
  });
  row("padding tokens (wasted)", [&](const BenchSummary& s) { return std::to_string(s.padding_tokens); });
  row("steps", [&](const BenchSummary& s) { return std::to_string(s.steps); });
  // Speeds inside pure decode / pure prefill steps, as a fraction of the
  // machine's measured ceilings (brisk-cli sysinfo).
  auto frac = [&](double v, double fr, bool measured, const char* fmt) {
    return measured ? f(fmt, v) + " (" + f("%.0f", fr * 100) + "%)" : f(fmt, v);
  };
  rrow("decode tok/s (% of BW)", [&](const BenchResult& r) {
    const auto& x = r.roofline;
    return x.decode_steps ? frac(x.decode_tokens_per_s, x.decode_bandwidth_fraction, x.measured, "%.1f") : std::string("-");
  });
  rrow("decode GB/s per step", [&](const BenchResult& r) {
    const auto& x = r.roofline;
    return x.decode_steps ? f("%.1f", x.decode_bytes_per_step / x.decode_step_s / 1e9) : std::string("-");
  });
  rrow("prefill tok/s (% of FMA)", [&](const BenchResult& r) {
    const auto& x = r.roofline;
    return x.prefill_steps ? frac(x.prefill_tokens_per_s, x.prefill_fma_fraction, x.measured, "%.0f") : std::string("-");
  });
  if (runs[0].second.quality.measured) {
    rrow("perplexity (FP32)", [&](const BenchResult& r) {
      return f("%.4f", r.quality.perplexity) + " (" + f("%.4f", r.quality.baseline_perplexity) + ")";
    });
    rrow("KL mean/p99 vs FP32", [&](const BenchResult& r) {
      return f("%.4f", r.quality.kl_mean) + "/" + f("%.4f", r.quality.kl_p99);
    });
    rrow("greedy agreement %", [&](const BenchResult& r) { return f("%.2f", r.quality.greedy_agreement * 100); });
  }
  const SystemInfo& sys = runs[0].second.system;
  if (sys.measured)
    std::printf("\nmachine: %s, %d threads, %s kernels; read bandwidth %.1f GB/s, FMA peak %.0f GFLOP/s\n",
                sys.cpu_model.c_str(), sys.threads_used, sys.kernel_isa.c_str(), sys.read_bandwidth_bytes_per_s / 1e9,
                sys.fma_peak_flops / 1e9);
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
  a.flag("--n", "N", "sequences sampled per request (forked from one prefill)", "1");
  a.flag("--best-of", "M", "sample M per request, keep the n best by cumulative logprob (0 = n)", "0");
  a.flag("--beam-width", "W", "beam search with W beams per request (0 = off)", "0");
  a.flag("--seed", "S", "workload seed", "0");
  a.flag("--warmup", "N", "untimed warm-up requests", "2");
  a.flag("--compare", "", "run continuous and static batching on the same workload, side by side");
  a.flag("--json", "", "print the full result (with per-request and per-step series) as JSON");
  a.flag("--out", "FILE", "also write the JSON result to FILE");
  a.flag("--no-limits", "", "do not measure or recall the machine's ceilings (no fraction-of-limit figures)");
  a.flag("--quality-text", "FILE", "also measure perplexity and KL divergence against FP32 weights+KV on FILE");
  a.flag("--quality-prompts", "FILE", "also measure greedy agreement with FP32 on these prompts (one per line)");
  a.flag("--quality-tokens", "N", "tokens per prompt for --quality-prompts", "200");
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
  spec.n = (int)a.integer("--n", 1, 64);
  spec.best_of = (int)a.integer("--best-of", 0, 64);
  spec.beam_width = (int)a.integer("--beam-width", 0, 64);
  if (spec.beam_width > 0 && !a.has("--n")) spec.n = 1;
  spec.seed = (uint64_t)a.integer("--seed", 0, INT64_MAX);
  const int warmup = (int)a.integer("--warmup", 0, 1000);
  EngineConfig cfg = engine_config_from(a, a.positional()[0]);

  std::vector<std::pair<std::string, BenchResult>> runs;
  std::vector<SchedulerPolicy> policies = {cfg.policy};
  if (a.has("--compare")) policies = {SchedulerPolicy::Continuous, SchedulerPolicy::Static};
  // Every policy replays the same requests, sized for the engine with the
  // smallest usable context (static batching caps a sequence at one step's
  // token budget), so no side rejects what the other runs.
  SystemInfo sys;
  if (!a.has("--no-limits")) {
    ProbeOptions po;
    po.threads = cfg.threads;
    sys = probe_system(po);  // cached after the first measurement
  }
  QualityFigures quality;
  if (a.has("--quality-text") || a.has("--quality-prompts")) {
    const EngineConfig base = fp32_baseline(cfg);
    if (a.has("--quality-text")) {
      quality.text_path = a.str("--quality-text");
      const std::string text = read_file(quality.text_path);
      const std::string tmp = "/tmp/brisk-bench-baseline-" + std::to_string(::getpid()) + ".logits";
      PerplexityOptions o;
      o.save_logits_path = tmp;
      evaluate_perplexity(base, text, o);
      o.save_logits_path.clear();
      o.baseline_logits_path = tmp;
      PerplexityResult pr;
      try {
        pr = evaluate_perplexity(cfg, text, o);
      } catch (...) {
        std::remove(tmp.c_str());
        throw;
      }
      std::remove(tmp.c_str());
      quality.perplexity = pr.perplexity;
      quality.baseline_perplexity = pr.baseline_perplexity;
      quality.kl_mean = pr.kl_mean;
      quality.kl_p99 = pr.kl_p99;
      quality.top1_agreement = pr.top1_agreement;
      quality.tokens_scored = pr.tokens_scored;
    }
    if (a.has("--quality-prompts")) {
      quality.prompts_path = a.str("--quality-prompts");
      const int n = (int)a.integer("--quality-tokens", 1, 1 << 20);
      const AgreementResult ar = greedy_agreement(base, cfg, read_prompt_lines(quality.prompts_path), n);
      quality.greedy_agreement = ar.agreement;
      quality.mean_identical_prefix = ar.mean_identical_prefix;
      quality.agreement_prompts = ar.prompts;
      quality.agreement_tokens = n;
    }
    quality.measured = true;
  }
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
    compute_roofline(runs.back().second, sys, engine->kv_bytes_per_token());
    runs.back().second.quality = quality;
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
