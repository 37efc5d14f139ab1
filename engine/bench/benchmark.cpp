#include "brisk/benchmark.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "bench/bench_json.h"
#include "bench/run_hooks.h"
#include "metrics/metrics_json.h"

extern const char* const brisk_git_commit;  // resources/version.cmake

namespace brisk {

namespace {

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> v;
  std::stringstream ss(s);
  std::string x;
  while (std::getline(ss, x, sep)) v.push_back(x);
  return v;
}

double to_number(const std::string& spec, const std::string& s) {
  try {
    size_t used = 0;
    const double v = std::stod(s, &used);
    if (used != s.size() || !std::isfinite(v)) throw std::invalid_argument(s);
    return v;
  } catch (const std::exception&) {
    throw Error("length distribution '" + spec + "': '" + s + "' is not a number");
  }
}

}  // namespace

LengthDist LengthDist::parse(const std::string& spec) {
  const auto parts = split(spec, ':');
  LengthDist d;
  if (parts.empty()) throw Error("length distribution '' is empty");
  d.kind = parts[0];
  if (d.kind == "fixed" && parts.size() == 2) {
    d.a = to_number(spec, parts[1]);
  } else if ((d.kind == "uniform" || d.kind == "normal") && parts.size() == 3) {
    d.a = to_number(spec, parts[1]);
    d.b = to_number(spec, parts[2]);
    if (d.kind == "uniform" && d.b < d.a) throw Error("length distribution '" + spec + "': HI < LO");
    if (d.kind == "normal" && d.b < 0) throw Error("length distribution '" + spec + "': negative STD");
    if (d.b > 1e7) throw Error("length distribution '" + spec + "': lengths must be at most 10000000");
  } else if (d.kind == "file" && parts.size() >= 2) {
    d.path = spec.substr(5);
  } else {
    throw Error("length distribution '" + spec +
                "' is not fixed:N, uniform:LO:HI, normal:MEAN:STD or file:PATH.jsonl");
  }
  if (d.kind != "file" && (d.a < 1 || d.a > 1e7))
    throw Error("length distribution '" + spec + "': lengths must be >= 1");
  return d;
}

std::string LengthDist::to_string() const {
  std::ostringstream o;
  if (kind == "fixed")
    o << "fixed:" << a;
  else if (kind == "file")
    o << "file:" << path;
  else
    o << kind << ":" << a << ":" << b;
  return o.str();
}

namespace bench {

void check_trace_length(const WorkloadSpec& w, size_t arrivals) {
  if (arrivals < (size_t)std::max(0, w.num_requests))
    throw Error((w.trace_path.empty() ? std::string("workload: trace_times") : w.trace_path) + " has " +
                std::to_string(arrivals) + " arrivals but num_requests is " + std::to_string(w.num_requests));
}

}  // namespace bench

std::vector<WorkloadRequest> make_workload(const WorkloadSpec& spec, const Engine& engine) {
  return bench::make_workload(spec, engine, {});
}

std::vector<WorkloadRequest> bench::make_workload(const WorkloadSpec& spec, const Engine& engine,
                                                  const WorkloadFiles& files) {
  bench::validate_workload(spec, "",
                           spec.name.empty() ? std::string("workload") : "workload '" + spec.name + "'");
  std::mt19937_64 rng(spec.seed);
  // Every random number comes from our own uniforms over mt19937_64 (whose
  // output the standard fixes), not std::*_distribution (whose algorithms it
  // does not): the same seed gives the same workload with any library.
  auto uniform01 = [&] { return (double)(rng() >> 11) * (1.0 / 9007199254740992.0); };
  auto normal01 = [&] {
    const double u1 = std::max(uniform01(), 1e-12), u2 = uniform01();
    return std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2);
  };
  // Marsaglia & Tsang (2000), unit scale; shape < 1 boosted by U^(1/shape).
  std::function<double(double)> gamma01 = [&](double shape) -> double {
    if (shape < 1) return gamma01(shape + 1) * std::pow(std::max(uniform01(), 1e-300), 1 / shape);
    const double d = shape - 1.0 / 3, c = 1 / std::sqrt(9 * d);
    for (;;) {
      const double x = normal01();
      double v = 1 + c * x;
      if (v <= 0) continue;
      v = v * v * v;
      const double u = uniform01();
      if (u < 1 - 0.0331 * x * x * x * x) return d * v;
      if (std::log(std::max(u, 1e-300)) < 0.5 * x * x + d * (1 - v + std::log(v))) return d * v;
    }
  };
  auto draw = [&](const LengthDist& d) -> int {
    double v = d.a;
    if (d.kind == "uniform") v = d.a + std::floor(uniform01() * (d.b - d.a + 1));
    if (d.kind == "normal") v = d.a + d.b * normal01();
    return (int)std::clamp(std::lround(v), 1L, 10000000L);
  };
  // Read strictly by bench_json (unknown keys and max_tokens < 1 are errors, in both files alike),
  // unless the caller read them before (run_matrix reads every run's files before the first).
  static const std::vector<bench::DatasetLine> kNoLines;
  std::shared_ptr<const std::vector<bench::DatasetLine>> dataset = files.dataset;
  if (spec.prompt_len.kind == "file" && !dataset)
    dataset = std::make_shared<const std::vector<bench::DatasetLine>>(
        bench::read_prompt_dataset(spec.prompt_len.path));
  const std::vector<bench::DatasetLine>& file = spec.prompt_len.kind == "file" ? *dataset : kNoLines;
  static const std::vector<bench::TraceFileLine> kNoTrace;
  std::shared_ptr<const std::vector<bench::TraceFileLine>> arrivals;
  if (spec.arrival == "trace") {
    if (!spec.trace_path.empty()) {
      arrivals =
          files.trace
              ? files.trace
              : std::make_shared<const std::vector<bench::TraceFileLine>>(bench::read_trace(spec.trace_path));
    } else {
      auto times = std::make_shared<std::vector<bench::TraceFileLine>>();
      for (double t : spec.trace_times) times->push_back({t, {}, false, 0});
      arrivals = std::move(times);
    }
    bench::check_trace_length(spec, arrivals->size());
  }
  const std::vector<bench::TraceFileLine>& trace = arrivals ? *arrivals : kNoTrace;
  // A trace's clock starts at its earliest arrival (traces often carry wall-clock times).
  double trace0 = 0;
  if (!trace.empty()) {
    trace0 = trace[0].timestamp;
    for (int i = 0; i < spec.num_requests; ++i) trace0 = std::min(trace0, trace[i].timestamp);
  }
  const int vocab = std::min(engine.model_info().vocab_size, engine.model_info().tokenizer_vocab_size);
  const int max_len = engine.max_model_len();
  const std::vector<int32_t> bos_only = engine.encode("", true);
  std::vector<WorkloadRequest> out;
  double t = 0;
  for (int i = 0; i < spec.num_requests; ++i) {
    WorkloadRequest r;
    if (spec.arrival == "poisson") {
      t += -std::log(std::max(1e-12, 1 - uniform01())) / spec.rate;
    } else if (spec.arrival == "gamma") {
      // Gaps ~ Gamma(shape k, scale 1/(rate k)): mean 1/rate, CV^2 = 1/k.
      t += gamma01(spec.burstiness) / (spec.rate * spec.burstiness);
    } else if (spec.arrival == "ramp") {
      // Evenly spaced at an instantaneous rate rising linearly with the
      // request index: the gap before request i is 1 / rate_i.
      const double f = spec.num_requests > 1 ? (double)i / (spec.num_requests - 1) : 1.0;
      if (i > 0) t += 1 / (spec.ramp_start_rate + (spec.ramp_end_rate - spec.ramp_start_rate) * f);
    } else if (spec.arrival == "trace") {
      t = trace[i].timestamp - trace0;
    }
    r.arrival = t;
    int out_len = 0;
    if (!trace.empty() && trace[i].has_prompt) {
      r.prompt_ids = engine.encode(trace[i].prompt, true);
    } else if (!file.empty()) {
      const bench::DatasetLine& fp = file[i % file.size()];
      r.prompt_ids = engine.encode(fp.prompt, true);
      out_len = fp.max_tokens;
    } else {
      // Random token ids stand for prompt text: the cost of a prompt is its
      // length, not its words. The prompt starts as text does (BOS, where the
      // vocabulary has one); ids 0..2 (unk, bos, eos in sentencepiece
      // vocabularies) are avoided unless they are all there is.
      const int n = std::min(draw(spec.prompt_len), std::max(1, max_len / 2));  // clamped before building
      r.prompt_ids = bos_only;
      const int first = vocab > 3 ? 3 : 0;
      while ((int)r.prompt_ids.size() < n)
        r.prompt_ids.push_back(first + (int32_t)(rng() % (uint64_t)std::max(1, vocab - first)));
    }
    if (!trace.empty() && trace[i].max_tokens > 0) out_len = trace[i].max_tokens;
    if (out_len <= 0) out_len = draw(spec.output_len);
    // Keep prompt + output inside the usable context.
    if ((int)r.prompt_ids.size() >= max_len) r.prompt_ids.resize(std::max(1, max_len / 2));
    out_len = std::min(out_len, max_len - (int)r.prompt_ids.size());
    r.params.max_tokens = std::max(1, out_len);
    r.params.temperature = spec.temperature;
    r.params.top_p = spec.top_p;
    r.params.top_k = spec.top_k;
    r.params.repetition_penalty = spec.repetition_penalty;
    r.params.ignore_eos = spec.ignore_eos;
    r.params.n = spec.n;
    r.params.best_of = spec.best_of;
    r.params.beam_width = spec.beam_width;
    r.params.seed = spec.seed * 1000003ull + i;
    out.push_back(std::move(r));
  }
  return out;
}

BenchSummary summarize(const std::vector<RequestMetrics>& reqs, const std::vector<StepMetrics>& steps,
                       double duration, const Slo& slo) {
  BenchSummary s;
  s.duration_s = duration;
  s.requests = (int)reqs.size();
  std::vector<double> ttft, tpot, itl, e2e, queue;
  int good = 0;
  for (const auto& r : reqs) {
    if (r.finish_reason == FinishReason::Error) {
      s.errors++;
      continue;
    }
    s.finished++;
    s.prompt_tokens += r.prompt_tokens;
    s.generation_tokens += r.output_tokens;
    ttft.push_back(r.ttft());
    tpot.push_back(r.tpot());
    e2e.push_back(r.e2e());
    queue.push_back(r.queue_time());
    for (size_t i = 1; i < r.token_times.size(); ++i) itl.push_back(r.token_times[i] - r.token_times[i - 1]);
    s.preemptions += r.preemptions;
    // A request with one output token has no TPOT: it cannot miss a TPOT target.
    const bool ok = (slo.ttft_s <= 0 || (r.ttft() >= 0 && r.ttft() <= slo.ttft_s)) &&
                    (slo.tpot_s <= 0 || r.tpot() <= slo.tpot_s) &&
                    (slo.e2e_s <= 0 || (r.e2e() >= 0 && r.e2e() <= slo.e2e_s));
    good += ok;
  }
  s.ttft = percentiles(ttft);
  s.tpot = percentiles(tpot);
  s.itl = percentiles(itl);
  s.e2e = percentiles(e2e);
  s.queue = percentiles(queue);
  if (duration > 0) {
    s.prompt_tokens_per_s = s.prompt_tokens / duration;
    s.generation_tokens_per_s = s.generation_tokens / duration;
    s.requests_per_s = s.finished / duration;
    s.goodput_requests_per_s = good / duration;
  }
  s.goodput_fraction = s.finished ? (double)good / s.finished : 0;
  double occ = 0, alloc = 0, waste = 0, batch = 0, queried = 0, hit = 0, decode_seqs = 0;
  for (const auto& st : steps) {
    const double o = st.kv_blocks_total ? (double)st.kv_blocks_used / st.kv_blocks_total : 0;
    occ += o;
    s.kv_occupancy_peak = std::max(s.kv_occupancy_peak, o);
    alloc += st.kv_slots_allocated;
    waste += st.kv_slots_allocated - st.kv_slots_filled;
    s.padding_tokens += st.padding_tokens;
    batch += st.num_seqs;
    queried += st.prefix_query_tokens;
    hit += st.prefix_hit_tokens;
    s.spec_proposed_tokens += st.spec_proposed_tokens;
    s.spec_accepted_tokens += st.spec_accepted_tokens;
    decode_seqs += st.decode_seqs;
  }
  s.prefix_cache_hit_rate = queried > 0 ? hit / queried : 0;
  s.spec_acceptance_rate =
      s.spec_proposed_tokens ? (double)s.spec_accepted_tokens / s.spec_proposed_tokens : 0;
  s.tokens_per_decode_step = decode_seqs ? (decode_seqs + s.spec_accepted_tokens) / decode_seqs : 0;
  s.steps = steps.size();
  if (!steps.empty()) {
    s.kv_occupancy_mean = occ / steps.size();
    s.mean_batch_size = batch / steps.size();
  }
  s.kv_waste = alloc > 0 ? waste / alloc : 0;
  return s;
}

namespace bench {

BenchResult run_benchmark_hooked(Engine& e, const WorkloadSpec& spec, const std::vector<WorkloadRequest>& w,
                                 int warmup, const RunHooks& hooks, bool* stopped) {
  if (stopped) *stopped = false;
  auto stop_requested = [&] { return hooks.stop && hooks.stop->load(); };
  // Warm-up: touch the weights and the thread pool so the first timed
  // request does not pay for page faults.
  for (int i = 0; i < warmup && !w.empty(); ++i) {
    SamplingParams p = w[i % w.size()].params;
    p.max_tokens = std::min(p.max_tokens, 8);
    // Reversed (BOS kept first), so warm-up leaves nothing in the prefix
    // cache that the measured requests could reuse.
    std::vector<int32_t> ids = w[i % w.size()].prompt_ids;
    if (ids.size() > 2) std::reverse(ids.begin() + 1, ids.end());
    e.add_request(ids, p);
  }
  while (e.has_unfinished()) e.step();
  e.reset_metrics();
  if (hooks.warmup_done) hooks.warmup_done();

  std::vector<size_t> order(w.size());
  for (size_t i = 0; i < w.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return w[a].arrival < w[b].arrival; });
  const int cap = spec.max_concurrency;
  const double t0 = e.now();
  double next_tick = t0;
  size_t next = 0;
  while (next < order.size() || e.has_unfinished()) {
    if (stop_requested()) {
      if (stopped) *stopped = true;
      break;
    }
    const double now = e.now() - t0;
    // A request past the concurrency cap waits client-side; it is handed to
    // the engine with its original arrival, so its queue time (and TTFT)
    // include the wait, as a real client's would.
    while (next < order.size() && w[order[next]].arrival <= now &&
           (cap <= 0 || next - e.finished_requests().size() < (size_t)cap)) {
      const WorkloadRequest& r = w[order[next++]];
      e.add_request(r.prompt_ids, r.params, std::nullopt, t0 + r.arrival);
    }
    if (hooks.tick && e.now() >= next_tick) {
      hooks.tick(e, (int)e.finished_requests().size(), (int)w.size());
      next_tick = e.now() + hooks.interval_s;
    }
    if (!e.has_unfinished()) {
      // Idle until the next arrival.
      const double wait = w[order[next]].arrival - (e.now() - t0);
      if (wait > 0) std::this_thread::sleep_for(std::chrono::duration<double>(std::min(wait, 0.05)));
      continue;
    }
    e.step();
  }
  const double t1 = e.now();
  // The last look: live views end on the run's final state.
  if (hooks.tick && !(stopped && *stopped)) hooks.tick(e, (int)e.finished_requests().size(), (int)w.size());
  BenchResult r;
  r.config = e.config();
  r.model = e.model_info();
  r.workload = spec;
  r.requests = e.finished_requests();
  for (auto& q : r.requests) {  // times relative to the run's start
    q.arrival -= t0;
    if (q.first_scheduled >= 0) q.first_scheduled -= t0;
    if (q.first_token >= 0) q.first_token -= t0;
    if (q.finished >= 0) q.finished -= t0;
    for (double& t : q.token_times) t -= t0;
    for (auto& c : q.prefill_chunks) {
      c.start -= t0;
      c.end -= t0;
    }
  }
  r.steps = e.step_history();
  for (auto& s : r.steps) s.start -= t0;
  // Duration runs from the first arrival to the last finish.
  const double first = order.empty() ? 0 : w[order[0]].arrival;
  r.summary = summarize(r.requests, r.steps, t1 - t0 - first);
  r.brisk_version = BRISK_VERSION;
  r.commit = brisk_git_commit;
  r.created = utc_now();
  return r;
}

}  // namespace bench

BenchResult run_benchmark(Engine& e, const WorkloadSpec& spec, const std::vector<WorkloadRequest>& w,
                          int warmup) {
  return bench::run_benchmark_hooked(e, spec, w, warmup, {}, nullptr);
}

void compute_roofline(BenchResult& r, const SystemInfo& sys, double kv_bytes_per_token) {
  r.system = sys;
  r.system.backend_used = resolve_backend(r.config.backend);
  RooflineFigures& f = r.roofline;
  f = {};
  const ModelInfo& m = r.model;
  // On CUDA the ceilings are the GPU's: device bandwidth and F16 GEMM throughput.
  f.measured =
      backend_ceilings(r.system, r.system.backend_used, &f.read_bandwidth_bytes_per_s, &f.fma_peak_flops);
  // The embedding table is gathered a row at a time; with tied embeddings
  // it is also the classifier and then streamed whole.
  f.weight_bytes_per_step = (double)m.weight_bytes;
  if (!m.tied_embeddings && !m.tensors.empty()) f.weight_bytes_per_step -= (double)m.tensors.front().bytes;
  f.kv_bytes_per_token = kv_bytes_per_token;
  const double q = (double)m.n_heads * m.head_dim, kv = (double)m.n_kv_heads * m.head_dim;
  f.matmul_flops_per_token = 2.0 * m.n_layers * (m.dim * q * 2 + 2 * m.dim * kv + 3.0 * m.dim * m.hidden_dim);
  double dt = 0, dfw = 0, dtok = 0, dbytes = 0, pt = 0, ptok = 0;
  for (const StepMetrics& s : r.steps) {
    if (s.decode_tokens > 0 && s.prefill_tokens == 0) {
      f.decode_steps++;
      dt += s.duration;
      dfw += s.forward;
      // Tokens generated, not positions verified: a rejected draft costs
      // the step time but is no output.
      dtok += s.generated_tokens;
      dbytes += f.weight_bytes_per_step + (double)s.kv_slots_filled * kv_bytes_per_token;
    } else if (s.prefill_tokens > 0 && s.decode_tokens == 0) {
      f.prefill_steps++;
      pt += s.duration;
      ptok += s.prefill_tokens;
    }
  }
  if (f.decode_steps > 0 && dt > 0) {
    f.decode_step_s = dt / f.decode_steps;
    f.decode_forward_s = dfw / f.decode_steps;
    f.decode_tokens_per_s = dtok / dt;
    f.decode_bytes_per_step = dbytes / f.decode_steps;
    if (f.measured) f.decode_bandwidth_fraction = dbytes / dt / f.read_bandwidth_bytes_per_s;
  }
  if (f.prefill_steps > 0 && pt > 0) {
    f.prefill_tokens_per_s = ptok / pt;
    if (f.measured)
      f.prefill_fma_fraction = f.prefill_tokens_per_s * f.matmul_flops_per_token / f.fma_peak_flops;
  }
}

}  // namespace brisk
