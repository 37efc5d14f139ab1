#include "brisk/benchmark.h"

#include "metrics/metrics_json.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

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

struct FilePrompt {
  std::string prompt;
  int max_tokens = 0;
};

std::vector<FilePrompt> read_prompt_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw Error(path + ": cannot open prompt file");
  std::vector<FilePrompt> v;
  std::string line;
  int n = 0;
  while (std::getline(f, line)) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      const auto j = nlohmann::json::parse(line);
      v.push_back({j.at("prompt").get<std::string>(), j.value("max_tokens", 0)});
    } catch (const std::exception& e) {
      throw Error(path + ":" + std::to_string(n) + ": expected {\"prompt\": ...}: " + e.what());
    }
  }
  if (v.empty()) throw Error(path + ": no prompts");
  return v;
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
  if (d.kind != "file" && (d.a < 1 || d.a > 1e7)) throw Error("length distribution '" + spec + "': lengths must be >= 1");
  return d;
}

std::string LengthDist::to_string() const {
  std::ostringstream o;
  if (kind == "fixed") o << "fixed:" << a;
  else if (kind == "file") o << "file:" << path;
  else o << kind << ":" << a << ":" << b;
  return o.str();
}

std::vector<WorkloadRequest> make_workload(const WorkloadSpec& spec, const Engine& engine) {
  if (spec.num_requests < 1) throw Error("workload: num_requests must be at least 1");
  if (spec.arrival != "all" && spec.arrival != "poisson")
    throw Error("workload: arrival '" + spec.arrival + "' is not 'all' or 'poisson'");
  if (spec.arrival == "poisson" && !(spec.rate > 0)) throw Error("workload: poisson rate must be positive");
  if (spec.output_len.kind == "file") throw Error("workload: output lengths come from a distribution, not a file");
  std::mt19937_64 rng(spec.seed);
  auto uniform01 = [&] { return (double)(rng() >> 11) * (1.0 / 9007199254740992.0); };
  auto draw = [&](const LengthDist& d) -> int {
    double v = d.a;
    if (d.kind == "uniform") v = d.a + std::floor(uniform01() * (d.b - d.a + 1));
    if (d.kind == "normal") {
      // Box-Muller from our own uniforms: the same numbers on every platform.
      const double u1 = std::max(uniform01(), 1e-12), u2 = uniform01();
      v = d.a + d.b * std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2);
    }
    return (int)std::clamp(std::lround(v), 1L, 10000000L);
  };
  std::vector<FilePrompt> file;
  if (spec.prompt_len.kind == "file") file = read_prompt_file(spec.prompt_len.path);
  const int vocab = std::min(engine.model_info().vocab_size, engine.model_info().tokenizer_vocab_size);
  const int max_len = engine.max_model_len();
  std::vector<WorkloadRequest> out;
  double t = 0;
  for (int i = 0; i < spec.num_requests; ++i) {
    WorkloadRequest r;
    if (spec.arrival == "poisson") t += -std::log(std::max(1e-12, 1 - uniform01())) / spec.rate;
    r.arrival = t;
    int out_len = 0;
    if (!file.empty()) {
      const FilePrompt& fp = file[i % file.size()];
      r.prompt_ids = engine.encode(fp.prompt, true);
      out_len = fp.max_tokens;
    } else {
      // Random token ids stand for prompt text: the cost of a prompt is its
      // length, not its words. Ids 0..2 (unk, bos, eos) are avoided.
      const int n = std::min(draw(spec.prompt_len), std::max(1, max_len / 2));  // clamped before building
      r.prompt_ids.push_back(1);
      for (int k = 1; k < n; ++k) r.prompt_ids.push_back(3 + (int32_t)(rng() % (uint64_t)std::max(1, vocab - 3)));
    }
    if (out_len <= 0) out_len = draw(spec.output_len);
    // Keep prompt + output inside the usable context.
    if ((int)r.prompt_ids.size() >= max_len) r.prompt_ids.resize(std::max(1, max_len / 2));
    out_len = std::min(out_len, max_len - (int)r.prompt_ids.size());
    r.params.max_tokens = std::max(1, out_len);
    r.params.temperature = spec.temperature;
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
                       double duration, const Slo& /*slo*/) {
  BenchSummary s;
  s.duration_s = duration;
  s.requests = (int)reqs.size();
  std::vector<double> ttft, tpot, itl, e2e, queue;
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
  }
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
  s.spec_acceptance_rate = s.spec_proposed_tokens ? (double)s.spec_accepted_tokens / s.spec_proposed_tokens : 0;
  s.tokens_per_decode_step = decode_seqs ? (decode_seqs + s.spec_accepted_tokens) / decode_seqs : 0;
  s.steps = steps.size();
  if (!steps.empty()) {
    s.kv_occupancy_mean = occ / steps.size();
    s.mean_batch_size = batch / steps.size();
  }
  s.kv_waste = alloc > 0 ? waste / alloc : 0;
  return s;
}

BenchResult run_benchmark(Engine& e, const WorkloadSpec& spec, const std::vector<WorkloadRequest>& w,
                          int warmup) {
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

  std::vector<size_t> order(w.size());
  for (size_t i = 0; i < w.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return w[a].arrival < w[b].arrival; });
  const double t0 = e.now();
  size_t next = 0;
  while (next < order.size() || e.has_unfinished()) {
    const double now = e.now() - t0;
    while (next < order.size() && w[order[next]].arrival <= now) {
      const WorkloadRequest& r = w[order[next++]];
      e.add_request(r.prompt_ids, r.params, std::nullopt, t0 + r.arrival);
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
  }
  r.steps = e.step_history();
  for (auto& s : r.steps) s.start -= t0;
  // Duration runs from the first arrival to the last finish.
  const double first = order.empty() ? 0 : w[order[0]].arrival;
  r.summary = summarize(r.requests, r.steps, t1 - t0 - first);
  r.brisk_version = BRISK_VERSION;
  r.commit = brisk_git_commit;
  return r;
}

void compute_roofline(BenchResult& r, const SystemInfo& sys, double kv_bytes_per_token) {
  r.system = sys;
  RooflineFigures& f = r.roofline;
  f = {};
  const ModelInfo& m = r.model;
  f.measured = sys.measured && sys.read_bandwidth_bytes_per_s > 0 && sys.fma_peak_flops > 0;
  f.read_bandwidth_bytes_per_s = sys.read_bandwidth_bytes_per_s;
  f.fma_peak_flops = sys.fma_peak_flops;
  // The embedding table is gathered a row at a time; with tied embeddings
  // it is also the classifier and then streamed whole.
  f.weight_bytes_per_step = (double)m.weight_bytes;
  if (!m.tied_embeddings && !m.tensors.empty()) f.weight_bytes_per_step -= (double)m.tensors.front().bytes;
  f.kv_bytes_per_token = kv_bytes_per_token;
  const double q = (double)m.n_heads * m.head_dim, kv = (double)m.n_kv_heads * m.head_dim;
  f.matmul_flops_per_token = 2.0 * m.n_layers * (m.dim * q * 2 + 2 * m.dim * kv + 3.0 * m.dim * m.hidden_dim);
  double dt = 0, dtok = 0, dbytes = 0, pt = 0, ptok = 0;
  for (const StepMetrics& s : r.steps) {
    if (s.decode_tokens > 0 && s.prefill_tokens == 0) {
      f.decode_steps++;
      dt += s.duration;
      dtok += s.decode_tokens;
      dbytes += f.weight_bytes_per_step + (double)s.kv_slots_filled * kv_bytes_per_token;
    } else if (s.prefill_tokens > 0 && s.decode_tokens == 0) {
      f.prefill_steps++;
      pt += s.duration;
      ptok += s.prefill_tokens;
    }
  }
  if (f.decode_steps > 0 && dt > 0) {
    f.decode_step_s = dt / f.decode_steps;
    f.decode_tokens_per_s = dtok / dt;
    f.decode_bytes_per_step = dbytes / f.decode_steps;
    if (f.measured) f.decode_bandwidth_fraction = dbytes / dt / f.read_bandwidth_bytes_per_s;
  }
  if (f.prefill_steps > 0 && pt > 0) {
    f.prefill_tokens_per_s = ptok / pt;
    if (f.measured) f.prefill_fma_fraction = f.prefill_tokens_per_s * f.matmul_flops_per_token / f.fma_peak_flops;
  }
}

std::string to_json(const BenchResult& r, bool with_series) {
  using json = nlohmann::json;
  const BenchSummary& s = r.summary;
  json j;
  j["brisk_version"] = r.brisk_version;
  j["commit"] = r.commit;
  j["model"] = {{"path", r.model.path},       {"name", r.model.name},     {"format", r.model.format},
                {"synthetic", r.model.synthetic}, {"n_params", r.model.n_params}, {"dim", r.model.dim},
                {"n_layers", r.model.n_layers}, {"vocab_size", r.model.vocab_size}};
  j["config"] = {{"policy", policy_name(r.config.policy)},
                 {"block_size", r.config.block_size},
                 {"num_kv_blocks", r.config.num_kv_blocks},
                 {"kv_cache_bytes", r.config.kv_cache_bytes},
                 {"max_num_seqs", r.config.max_num_seqs},
                 {"max_num_batched_tokens", r.config.max_num_batched_tokens},
                 {"enable_chunked_prefill", r.config.enable_chunked_prefill},
                 {"threads", r.config.threads},
                 {"backend", r.config.backend},
                 {"weight_dtype", r.config.weight_dtype},
                 {"kv_dtype", r.config.kv_dtype},
                 {"int8_activations", r.config.int8_activations},
                 {"quantize_embeddings", r.config.quantize_embeddings},
                 {"enable_prefix_caching", r.config.enable_prefix_caching},
                 {"speculative_tokens", r.config.speculative_tokens},
                 {"speculative_ngram", r.config.speculative_ngram}};
  j["model"]["weight_bytes"] = r.model.weight_bytes;
  j["model"]["converted_to"] = r.model.converted_to;
  j["system"] = json::parse(to_json(r.system));
  const RooflineFigures& f = r.roofline;
  j["roofline"] = {{"measured", f.measured},
                   {"read_bandwidth_bytes_per_s", f.read_bandwidth_bytes_per_s},
                   {"fma_peak_flops", f.fma_peak_flops},
                   {"weight_bytes_per_step", f.weight_bytes_per_step},
                   {"kv_bytes_per_token", f.kv_bytes_per_token},
                   {"matmul_flops_per_token", f.matmul_flops_per_token},
                   {"decode_steps", f.decode_steps},
                   {"decode_step_s", f.decode_step_s},
                   {"decode_tokens_per_s", f.decode_tokens_per_s},
                   {"decode_bytes_per_step", f.decode_bytes_per_step},
                   {"decode_bandwidth_fraction", f.decode_bandwidth_fraction},
                   {"prefill_steps", f.prefill_steps},
                   {"prefill_tokens_per_s", f.prefill_tokens_per_s},
                   {"prefill_fma_fraction", f.prefill_fma_fraction}};
  const QualityFigures& qf = r.quality;
  if (qf.measured)
    j["quality"] = {{"text", qf.text_path},
                    {"prompts", qf.prompts_path},
                    {"perplexity", qf.perplexity},
                    {"baseline_perplexity", qf.baseline_perplexity},
                    {"kl_mean", qf.kl_mean},
                    {"kl_p99", qf.kl_p99},
                    {"top1_agreement", qf.top1_agreement},
                    {"tokens_scored", qf.tokens_scored},
                    {"greedy_agreement", qf.greedy_agreement},
                    {"mean_identical_prefix", qf.mean_identical_prefix},
                    {"agreement_prompts", qf.agreement_prompts},
                    {"agreement_tokens", qf.agreement_tokens}};
  j["workload"] = {{"num_requests", r.workload.num_requests},
                   {"arrival", r.workload.arrival},
                   {"rate", r.workload.rate},
                   {"prompt_len", r.workload.prompt_len.to_string()},
                   {"output_len", r.workload.output_len.to_string()},
                   {"temperature", r.workload.temperature},
                   {"ignore_eos", r.workload.ignore_eos},
                   {"n", r.workload.n},
                   {"best_of", r.workload.best_of},
                   {"beam_width", r.workload.beam_width},
                   {"seed", r.workload.seed}};
  j["summary"] = {{"duration_s", s.duration_s},
                  {"requests", s.requests},
                  {"finished", s.finished},
                  {"errors", s.errors},
                  {"prompt_tokens", s.prompt_tokens},
                  {"generation_tokens", s.generation_tokens},
                  {"prompt_tokens_per_s", s.prompt_tokens_per_s},
                  {"generation_tokens_per_s", s.generation_tokens_per_s},
                  {"requests_per_s", s.requests_per_s},
                  {"ttft_s", percentiles_json(s.ttft)},
                  {"tpot_s", percentiles_json(s.tpot)},
                  {"itl_s", percentiles_json(s.itl)},
                  {"e2e_s", percentiles_json(s.e2e)},
                  {"queue_s", percentiles_json(s.queue)},
                  {"kv_occupancy_mean", s.kv_occupancy_mean},
                  {"kv_occupancy_peak", s.kv_occupancy_peak},
                  {"kv_waste", s.kv_waste},
                  {"preemptions", s.preemptions},
                  {"padding_tokens", s.padding_tokens},
                  {"prefix_cache_hit_rate", s.prefix_cache_hit_rate},
                  {"spec_proposed_tokens", s.spec_proposed_tokens},
                  {"spec_accepted_tokens", s.spec_accepted_tokens},
                  {"spec_acceptance_rate", s.spec_acceptance_rate},
                  {"tokens_per_decode_step", s.tokens_per_decode_step},
                  {"mean_batch_size", s.mean_batch_size},
                  {"steps", s.steps}};
  if (with_series) {
    json reqs = json::array(), steps = json::array();
    for (const auto& q : r.requests) reqs.push_back(request_json(q));
    for (const auto& st : r.steps) steps.push_back(step_json(st));
    j["requests"] = reqs;
    j["steps"] = steps;
  }
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace brisk
