#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "brisk/bench_matrix.h"
#include "brisk/quality.h"
#include "brisk/sysinfo.h"
#include "cli/common.h"
#include "cli/report_output.h"

namespace brisk::cli {

namespace {

// Characters, not bytes: labels hold "·".
int chars(const std::string& s) {
  int n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// Right-aligned in `width` columns.
std::string cell(const std::string& s, int width) {
  return std::string(std::max(0, width - chars(s)), ' ') + s;
}

// The summary table: the columns of summary_fields(), one per row, so this
// table, the CSV and every report show the same figures.
void print_table(const std::vector<BenchResult>& runs) {
  std::printf("%-26s", "");
  // With repeats every run is numbered (r1, r2, ...), as the reports label them.
  const bool repeated =
      std::any_of(runs.begin(), runs.end(), [](const BenchResult& r) { return r.repeat > 0; });
  std::vector<std::string> heads;
  for (const BenchResult& r : runs) {
    heads.push_back(r.label.empty() ? policy_name(r.config.policy) : r.label);
    if (repeated) heads.back() += " r" + std::to_string(r.repeat + 1);
  }
  // Every column as wide as the longest heading plus two spaces, so long
  // labels ("10 req/s · continuous r1") never run into the next.
  int width = 20;
  for (const std::string& h : heads) width = std::max(width, 2 + chars(h));
  for (const std::string& h : heads) std::printf("%s", cell(h, width).c_str());
  std::printf("\n");
  auto text_row = [&](const char* label, auto fn) {
    std::printf("%-26s", label);
    for (const BenchResult& r : runs) std::printf("%s", cell(fn(r), width).c_str());
    std::printf("\n");
  };
  text_row("requests (ok/errors)", [](const BenchResult& r) {
    return r.error.empty() ? std::to_string(r.summary.finished) + "/" + std::to_string(r.summary.errors)
                           : std::string("failed");
  });
  // What ran it: the backend the run used (--backend auto resolved on this machine).
  text_row("backend", [](const BenchResult& r) {
    const std::string b =
        r.system.backend_used.empty() ? resolve_backend(r.config.backend) : r.system.backend_used;
    std::string s = b == "cuda" ? "CUDA" : b == "cpu" ? "CPU" : b;
    if (r.config.backend == "auto") s += " (auto)";
    return r.error.empty() ? s : std::string("-");
  });
  text_row("duration s", [](const BenchResult& r) {
    char b[32];
    std::snprintf(b, sizeof b, "%.2f", r.summary.duration_s);
    return r.error.empty() ? std::string(b) : std::string("-");
  });
  for (const SummaryField& f : summary_fields()) {
    std::printf("%-26s", f.label.c_str());
    for (const BenchResult& r : runs) std::printf("%s", cell(format_field(f, f.value(r)), width).c_str());
    std::printf("\n");
  }
  // Roofline detail beyond the decode-bandwidth column: the speeds inside
  // pure decode / pure prefill steps.
  auto f = [](const char* fmt, double v) {
    char b[64];
    std::snprintf(b, sizeof b, fmt, v);
    return std::string(b);
  };
  text_row("decode tok/s (pure steps)", [&](const BenchResult& r) {
    return r.roofline.decode_steps ? f("%.1f", r.roofline.decode_tokens_per_s) : std::string("-");
  });
  text_row("prefill tok/s (% of FMA)", [&](const BenchResult& r) {
    const auto& x = r.roofline;
    if (!x.prefill_steps) return std::string("-");
    return x.measured
               ? f("%.0f", x.prefill_tokens_per_s) + " (" + f("%.0f", x.prefill_fma_fraction * 100) + "%)"
               : f("%.0f", x.prefill_tokens_per_s);
  });
  for (const BenchResult& r : runs)
    if (!r.error.empty())
      std::printf("\n%s r%d failed: %s\n", r.label.c_str(), r.repeat + 1, r.error.c_str());
  const SystemInfo& sys = runs[0].system;
  if (sys.backend_used == "cuda" && !sys.gpus.empty()) {
    const GpuInfo& g = sys.gpus[0];
    std::printf("\nmachine: CUDA on %s (sm_%d%d, %d SMs, driver CUDA %s)", g.name.c_str(), g.cc_major,
                g.cc_minor, g.sm_count, g.driver_version.c_str());
    if (g.measured)
      std::printf("; device bandwidth %.0f GB/s, F16 GEMM %.0f TFLOP/s", g.bandwidth_bytes_per_s / 1e9,
                  g.f16_flops / 1e12);
    std::printf("\n");
  } else if (sys.measured)
    std::printf("\nmachine: %s, %d threads, %s kernels; read bandwidth %.1f GB/s, FMA peak %.0f GFLOP/s\n",
                sys.cpu_model.c_str(), sys.threads_used, sys.kernel_isa.c_str(),
                sys.read_bandwidth_bytes_per_s / 1e9, sys.fma_peak_flops / 1e9);
}

std::string clock(double s) {
  if (s < 0) return "?";
  const long t = std::lround(s);
  char b[32];
  if (t >= 3600)
    std::snprintf(b, sizeof b, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  else
    std::snprintf(b, sizeof b, "%ld:%02ld", t / 60, t % 60);
  return b;
}

std::atomic<bool> g_stop{false};
extern "C" void on_sigint(int) { g_stop = true; }

}  // namespace

int cmd_bench(const std::vector<std::string>& argv) {
  Args a("bench", "[MODEL] [flags]",
         "Replay a workload of N requests in real time (requests join at their arrival times) and report\n"
         "throughput, TTFT/TPOT/ITL/E2E percentiles, goodput, KV occupancy, preemptions.\n"
         "The workload comes from --workload (a JSON file or builtin:NAME) or from the flags below.\n"
         "--matrix runs the workload against several configurations (docs/WORKLOADS.md).\n"
         "Length distributions: fixed:N, uniform:LO:HI, normal:MEAN:STD, or (prompts) file:PATH.jsonl.\n"
         "MODEL is a .gguf file, a Hugging Face directory, a llama2.c .bin, or 'demo'.");
  a.flag("--model", "MODEL", "the model (instead of the positional MODEL)");
  a.flag("--workload", "FILE|builtin:NAME",
         "workload JSON (schema brisk.workload) or a built-in one: builtin:chat, summarize, mixed, burst");
  a.flag("--matrix", "FILE",
         "run the workload against every configuration of this matrix (schema brisk.matrix)");
  a.flag("--repeats", "R", "repeat every configuration R times (with --matrix: overrides its repeats)", "1");
  a.flag("--slo-ttft", "MS", "goodput target: time to first token at most MS milliseconds (0 = none)", "0");
  a.flag("--slo-tpot", "MS", "goodput target: time per output token at most MS milliseconds (0 = none)", "0");
  a.flag("--slo-e2e", "MS", "goodput target: end-to-end latency at most MS milliseconds (0 = none)", "0");
  a.flag("--num-requests", "N", "requests in the workload", "64");
  a.flag("--arrival", "all|poisson|gamma|ramp", "all at t=0, a Poisson process, gamma gaps, a linear ramp",
         "all");
  a.flag("--rate", "R", "Poisson/gamma arrival rate, requests/s", "8");
  a.flag("--burstiness", "B", "gamma arrivals: 1 = Poisson, < 1 burstier, > 1 more regular", "1");
  a.flag("--ramp", "R0:R1", "ramp arrivals: rate from R0 to R1 requests/s", "1:16");
  a.flag("--max-concurrency", "N", "requests in flight at once; later arrivals wait client-side (0 = no cap)",
         "0");
  a.flag("--prompt-len", "DIST", "prompt length distribution", "fixed:128");
  a.flag("--output-len", "DIST", "output length distribution", "fixed:128");
  a.flag("--temperature", "T", "sampling temperature (0 = greedy)", "0");
  a.flag("--top-p", "P", "nucleus sampling (1 = off)", "1");
  a.flag("--top-k", "K", "top-k sampling (0 = off)", "0");
  a.flag("--n", "N", "sequences sampled per request (forked from one prefill)", "1");
  a.flag("--best-of", "M", "sample M per request, keep the n best by cumulative logprob (0 = n)", "0");
  a.flag("--beam-width", "W", "beam search with W beams per request (0 = off)", "0");
  a.flag("--seed", "S", "workload seed", "0");
  a.flag("--warmup", "N", "untimed warm-up requests before each run", "2");
  a.flag("--compare", "", "run continuous and static batching on the same workload, side by side");
  a.flag("--json", "", "print the result as JSON (one run: the result; several: a brisk.results file)");
  a.flag("--out", "FILE", "also write every result to FILE (schema brisk.results)");
  a.flag("--report", "FILE", "also write a report: .html, .pdf, .md, .json or .csv by the suffix");
  a.flag("--no-limits", "", "do not measure or recall the machine's ceilings (no fraction-of-limit figures)");
  a.flag("--quality-text", "FILE",
         "also measure perplexity and KL divergence against FP32 weights+KV on FILE");
  a.flag("--quality-prompts", "FILE",
         "also measure greedy agreement with FP32 on these prompts (one per line)");
  a.flag("--quality-tokens", "N", "tokens per prompt for --quality-prompts", "200");
  add_engine_flags(a);
  if (!a.parse(argv)) return 0;
  if (a.positional().size() > 1) throw UsageError("bench takes at most one MODEL (see --help)");
  if (a.positional().size() == 1 && a.has("--model")) throw UsageError("give MODEL or --model, not both");
  const bool model_given = a.positional().size() == 1 || a.has("--model");
  const std::string model = a.positional().size() == 1 ? a.positional()[0]
                            : a.has("--model")         ? a.str("--model")
                                                       : "";
  if (!model_given && !a.has("--matrix"))
    throw UsageError("bench needs a MODEL (or --model, or a --matrix naming one)");

  WorkloadSpec spec;
  if (a.has("--workload")) {
    static const char* kWorkloadFlags[] = {
        "--num-requests", "--arrival",     "--rate",           "--burstiness", "--ramp", "--prompt-len",
        "--output-len",   "--temperature", "--top-p",          "--top-k",      "--n",    "--best-of",
        "--beam-width",   "--seed",        "--max-concurrency"};
    for (const char* f : kWorkloadFlags)
      if (a.has(f))
        throw UsageError(std::string("flag ") + f + ": the workload comes from --workload; edit it there");
    const std::string w = a.str("--workload");
    spec = w.rfind("builtin:", 0) == 0 ? builtin_workload(w.substr(8)) : load_workload(w);
  } else {
    spec.num_requests = (int)a.integer("--num-requests", 1, 1000000);
    spec.arrival = a.str("--arrival");
    if (spec.arrival != "all" && spec.arrival != "poisson" && spec.arrival != "gamma" &&
        spec.arrival != "ramp")
      throw UsageError("flag --arrival: '" + spec.arrival + "' is not all, poisson, gamma or ramp");
    spec.rate = a.number("--rate", 1e-6, 1e9);
    spec.burstiness = a.number("--burstiness", 1e-3, 1e3);
    {
      const std::string r = a.str("--ramp");
      const size_t c = r.find(':');
      try {
        if (c == std::string::npos) throw std::invalid_argument(r);
        spec.ramp_start_rate = std::stod(r.substr(0, c));
        spec.ramp_end_rate = std::stod(r.substr(c + 1));
        if (!(spec.ramp_start_rate > 0) || !(spec.ramp_end_rate > 0)) throw std::invalid_argument(r);
      } catch (const std::exception&) {
        throw UsageError("flag --ramp: '" + r + "' is not R0:R1 (two positive rates, requests/s)");
      }
    }
    spec.max_concurrency = (int)a.integer("--max-concurrency", 0, 1 << 24);
    try {
      spec.prompt_len = LengthDist::parse(a.str("--prompt-len"));
      spec.output_len = LengthDist::parse(a.str("--output-len"));
    } catch (const Error& e) {
      throw UsageError(e.what());
    }
    if (spec.output_len.kind == "file") throw UsageError("flag --output-len: file: is only for --prompt-len");
    spec.temperature = (float)a.number("--temperature", 0, 100);
    spec.top_p = (float)a.number("--top-p", 1e-6, 1);
    spec.top_k = (int)a.integer("--top-k", 0, 1 << 24);
    spec.n = (int)a.integer("--n", 1, 64);
    spec.best_of = (int)a.integer("--best-of", 0, 64);
    spec.beam_width = (int)a.integer("--beam-width", 0, 64);
    if (spec.beam_width > 0 && !a.has("--n")) spec.n = 1;
    spec.seed = (uint64_t)a.integer("--seed", 0, INT64_MAX);
  }

  MatrixSpec m;
  if (a.has("--matrix")) {
    if (a.has("--compare"))
      throw UsageError("flag --compare: with --matrix, add a policy axis to the matrix");
    const std::string path = a.str("--matrix");
    m = load_matrix(path);
    // The matrix's base wins; MODEL fills it in when the matrix names no model.
    bool names_model = false;
    try {
      const auto j = nlohmann::json::parse(read_file(path));
      names_model = j.contains("base") && j["base"].contains("model");
    } catch (const nlohmann::json::exception&) {
    }
    if (!names_model && model_given) m.base.model = model;
    if (names_model && model_given && m.base.model != model)
      std::fprintf(stderr, "note: %s names model %s; ignoring %s\n", path.c_str(), m.base.model.c_str(),
                   model.c_str());
    if (a.has("--repeats")) m.repeats = (int)a.integer("--repeats", 1, 1000);
    if (a.has("--warmup")) m.warmup_requests = (int)a.integer("--warmup", 0, 1000);
  } else {
    m.base = engine_config_from(a, model);
    m.repeats = (int)a.integer("--repeats", 1, 1000);
    m.warmup_requests = (int)a.integer("--warmup", 0, 1000);
    if (a.has("--compare")) {
      if (m.base.speculative_tokens > 0)
        throw UsageError(
            "flag --compare: its static run cannot speculate; drop --speculate to compare policies");
      m.axes.push_back({"policy", {"continuous", "static"}});
    }
  }
  if (a.has("--slo-ttft")) m.slo.ttft_s = a.number("--slo-ttft", 0, 1e9) / 1e3;
  if (a.has("--slo-tpot")) m.slo.tpot_s = a.number("--slo-tpot", 0, 1e9) / 1e3;
  if (a.has("--slo-e2e")) m.slo.e2e_s = a.number("--slo-e2e", 0, 1e9) / 1e3;
  const std::vector<MatrixRun> plan = expand_matrix(m, spec);  // bad axes fail here, before any work
  // Where the results go, checked before any work: a bench must not run for
  // minutes and then lose everything to a typo in a path.
  if (a.has("--out")) check_output_path(a.str("--out"));
  if (a.has("--report")) check_report_path(a.str("--report"));
  // A matrix measures quality per configuration, on the flags' files where given.
  if (a.has("--matrix")) {
    if (a.has("--quality-text")) m.quality_text = a.str("--quality-text");
    if (a.has("--quality-prompts")) m.quality_prompts = a.str("--quality-prompts");
  }
  // So are the prompt datasets and traces of every run, each read once here and replayed from memory,
  // and the quality files: a bad line must not wait until the runs before the one that reads it have run.
  const MatrixInputs inputs = check_matrix_inputs(m, plan);
  if (const std::string note = cuda_only_fields_note(plan); !note.empty())
    std::fprintf(stderr, "warning: %s\n", note.c_str());
  if (!a.has("--matrix"))
    check_quality_files(a.has("--quality-text") ? a.str("--quality-text") : "",
                        a.has("--quality-prompts") ? a.str("--quality-prompts") : "");

  // The machine's ceilings: measured once (then cached) unless --no-limits.
  SystemInfo sys;
  {
    ProbeOptions po;
    po.threads = m.base.threads;
    po.measure = !a.has("--no-limits");
    sys = probe_system(po);
    if (a.has("--no-limits")) {
      sys.measured = false;
      sys.read_bandwidth_bytes_per_s = sys.fma_peak_flops = 0;
    }
  }

  // Quality of the flags' single configuration (as before matrices): measured
  // once and attached to every run. A matrix measures its own per configuration.
  QualityFigures quality;
  if (!a.has("--matrix") && (a.has("--quality-text") || a.has("--quality-prompts"))) {
    quality =
        measure_quality(m.base, a.has("--quality-text") ? a.str("--quality-text") : "",
                        a.has("--quality-prompts") ? a.str("--quality-prompts") : "",
                        a.has("--quality-prompts") ? (int)a.integer("--quality-tokens", 1, 1 << 20) : 0);
  }

  // Progress on stderr: a redrawn bar on a terminal, plain lines otherwise.
  const bool tty = ::isatty(2);
  MatrixCallbacks cb;
  int last_run = -1;
  cb.progress = [&](const MatrixProgress& p) {
    const std::string name = p.label + " r" + std::to_string(p.repeat + 1);
    if (tty) {
      const int width = 20, filled = (int)(p.fraction * width + 0.5);
      std::fprintf(stderr, "\r\033[K[%s%s] %d/%d %s  %s  %3.0f%%  ETA %s", std::string(filled, '#').c_str(),
                   std::string(width - filled, ' ').c_str(), p.run + 1, p.runs, name.c_str(), p.phase.c_str(),
                   p.fraction * 100, clock(p.eta_s).c_str());
      std::fflush(stderr);
    } else if (p.run != last_run && p.phase == "loading") {
      std::fprintf(stderr, "run %d/%d %s: %d %s on %s\n", p.run + 1, p.runs, name.c_str(), p.requests_total,
                   p.requests_total == 1 ? "request" : "requests", plan[p.run].config.model.c_str());
    }
    last_run = p.run;
  };
  cb.on_result = [&](const BenchResult& r) {
    if (tty) return;
    const int i = last_run;
    if (!r.error.empty())
      std::fprintf(stderr, "run %d/%d %s r%d: failed: %s\n", i + 1, (int)plan.size(), r.label.c_str(),
                   r.repeat + 1, r.error.c_str());
    else
      std::fprintf(stderr, "run %d/%d %s r%d: done in %.2f s, %.1f generation tok/s, %d/%d requests ok\n",
                   i + 1, (int)plan.size(), r.label.c_str(), r.repeat + 1, r.summary.duration_s,
                   r.summary.generation_tokens_per_s, r.summary.finished, r.summary.requests);
  };
  cb.stop = &g_stop;
  g_stop = false;
  auto* previous = std::signal(SIGINT, on_sigint);
  std::vector<BenchResult> runs;
  try {
    runs = run_matrix(m, spec, cb, &inputs);
  } catch (...) {
    std::signal(SIGINT, previous);
    throw;
  }
  std::signal(SIGINT, previous);
  if (tty) std::fprintf(stderr, "\r\033[K");
  if (g_stop) std::fprintf(stderr, "stopped: %zu of %zu runs finished\n", runs.size(), plan.size());
  for (BenchResult& r : runs) {
    if (!r.error.empty()) {
      // A failed run ran on this machine too: it records the same description as the others
      // (its model, never loaded, stays empty).
      r.system = sys;
      r.system.backend_used = resolve_backend(r.config.backend);
      continue;
    }
    // The CLI's view of the machine (measured now, or --no-limits) is the one reported.
    compute_roofline(r, sys, r.roofline.kv_bytes_per_token);
    if (quality.measured) r.quality = quality;
  }
  if (runs.empty()) throw Error(g_stop ? "stopped before any run finished" : "no run finished");

  if (a.has("--out")) {
    std::ofstream f(a.str("--out"));
    if (!f) throw Error(a.str("--out") + ": cannot open for writing");
    f << results_to_json(runs) << "\n";
    if (!f) throw Error(a.str("--out") + ": write failed");
  }
  if (a.has("--json")) {
    // Flushed now: a later abort would otherwise lose the results of a redirected run.
    std::cout << (runs.size() == 1 ? to_json(runs[0]) : results_to_json(runs)) << std::endl;
  } else {
    print_table(runs);
  }
  if (!a.has("--json") && a.has("--compare") && runs.size() >= 2 && runs[0].error.empty() &&
      runs[1].error.empty()) {
    const auto& c = runs[0].summary;
    const auto& s = runs[1].summary;
    if (s.generation_tokens_per_s > 0)
      std::printf("\ncontinuous / static generation throughput: %.2fx; p99 TTFT %.1f ms vs %.1f ms\n",
                  c.generation_tokens_per_s / s.generation_tokens_per_s, c.ttft.p99 * 1e3, s.ttft.p99 * 1e3);
  }
  // The table is out before anything below says a word on stderr: with both streams in one pipe
  // (2>&1), a buffered stdout would otherwise put those lines in the middle of it.
  std::fflush(stdout);
  // Last: its path and format were checked before the runs, so what can still fail here (a full disk)
  // leaves the table and --out in place.
  if (a.has("--report")) write_report_file(runs, a.str("--report"));
  // A failed run fails the command (as a failed line fails generate --prompts), after the others'
  // results are out: a script must not read a bench that could not run as one that did. A run
  // none of whose requests finished measured nothing, and counts as failed too.
  size_t failed = 0;
  const BenchResult* first_failure = nullptr;
  for (const BenchResult& r : runs) {
    const bool nothing = r.error.empty() && r.summary.requests > 0 && r.summary.finished == 0;
    if (nothing)
      std::fprintf(stderr,
                   "brisk-cli bench: %s r%d: all %d requests ended in an error; nothing was measured\n",
                   r.label.c_str(), r.repeat + 1, r.summary.requests);
    else if (r.error.empty() && r.summary.errors > 0)
      std::fprintf(stderr, "brisk-cli bench: %s r%d: %d of %d requests ended in an error\n", r.label.c_str(),
                   r.repeat + 1, r.summary.errors, r.summary.requests);
    if ((!r.error.empty() || nothing) && !failed++) first_failure = &r;
  }
  if (failed) {
    std::fprintf(
        stderr, "brisk-cli bench: %zu of %zu runs failed (%s r%d: %s)\n", failed, runs.size(),
        first_failure->label.c_str(), first_failure->repeat + 1,
        first_failure->error.empty() ? "every request ended in an error" : first_failure->error.c_str());
    return 1;
  }
  // Stopped (Ctrl-C): what finished is out, but the bench is incomplete.
  if (g_stop) return 130;
  return 0;
}

}  // namespace brisk::cli
