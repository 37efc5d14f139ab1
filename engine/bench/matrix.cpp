// A/B matrices: expand a matrix into runs, run them one after another on
// fresh engines, and keep every result (failures included).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "bench/bench_json.h"
#include "bench/run_hooks.h"
#include "brisk/bench_matrix.h"
#include "brisk/quality.h"

extern const char* const brisk_git_commit;  // resources/version.cmake

namespace brisk {

namespace {

using bench::json;

std::string number_string(double v) {
  std::ostringstream o;
  o.precision(15);
  o << v;
  return o.str();
}

// Axis values are strings in the API; the JSON may say 8, true or "8".
std::string axis_value_string(const json& v, const bench::ObjReader& r, const std::string& key) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_integer() || v.is_number_unsigned()) return v.dump();
  if (v.is_number_float()) return number_string(v.get<double>());
  r.fail(key, "expected strings, numbers or booleans, got " + v.dump());
}

[[noreturn]] void bad_value(const std::string& field, const std::string& value, const std::string& why) {
  throw Error("matrix axis '" + field + "': value '" + value + "' " + why);
}

bool as_bool(const std::string& field, const std::string& v) {
  if (v == "true" || v == "1" || v == "on" || v == "yes") return true;
  if (v == "false" || v == "0" || v == "off" || v == "no") return false;
  bad_value(field, v, "is not true or false");
}

int64_t as_int(const std::string& field, const std::string& v, int64_t lo, int64_t hi) {
  try {
    size_t used = 0;
    const long long x = std::stoll(v, &used);
    if (used == v.size() && x >= lo && x <= hi) return x;
  } catch (const std::exception&) {
  }
  bad_value(field, v, "is not an integer in " + std::to_string(lo) + ".." + std::to_string(hi));
}

double as_double(const std::string& field, const std::string& v) {
  try {
    size_t used = 0;
    const double x = std::stod(v, &used);
    if (used == v.size() && std::isfinite(x)) return x;
  } catch (const std::exception&) {
  }
  bad_value(field, v, "is not a number");
}

constexpr int64_t kMaxConcurrency = 1 << 24;

const char* const kAxisFields[] = {"weight_dtype",
                                   "kv_dtype",
                                   "policy",
                                   "max_num_seqs",
                                   "block_size",
                                   "enable_prefix_caching",
                                   "speculative_tokens",
                                   "speculative_ngram",
                                   "int8_activations",
                                   "quantize_embeddings",
                                   "fp8_per_tensor_scale",
                                   "max_num_batched_tokens",
                                   "enable_chunked_prefill",
                                   "num_kv_blocks",
                                   "kv_cache_bytes",
                                   "max_model_len",
                                   "threads",
                                   "backend",
                                   "cuda_graphs",
                                   "fused_decode",
                                   "dependent_launch",
                                   "fused_rope",
                                   "fp8_fast_accum",
                                   "split_merge_in_kernel",
                                   "l2_prefetch",
                                   "persistent_decode",
                                   "huge_page_weights",
                                   "int8_fma",
                                   "fp8_fma",
                                   "gpu_memory_utilization",
                                   "model",
                                   "n",
                                   "best_of",
                                   "beam_width",
                                   "temperature",
                                   "top_p",
                                   "top_k",
                                   "max_concurrency"};

void apply_axis(const std::string& f, const std::string& v, EngineConfig& c, WorkloadSpec& w) {
  if (f == "weight_dtype")
    c.weight_dtype = v;
  else if (f == "kv_dtype")
    c.kv_dtype = v;
  else if (f == "policy") {
    if (v == "continuous")
      c.policy = SchedulerPolicy::Continuous;
    else if (v == "static")
      c.policy = SchedulerPolicy::Static;
    else
      bad_value(f, v, "is not continuous or static");
  } else if (f == "max_num_seqs")
    c.max_num_seqs = (int)as_int(f, v, 1, 4096);
  else if (f == "block_size")
    c.block_size = (int)as_int(f, v, 1, 1024);
  else if (f == "enable_prefix_caching")
    c.enable_prefix_caching = as_bool(f, v);
  else if (f == "speculative_tokens")
    c.speculative_tokens = (int)as_int(f, v, 0, 64);
  else if (f == "speculative_ngram")
    c.speculative_ngram = (int)as_int(f, v, 1, 64);
  else if (f == "int8_activations")
    c.int8_activations = as_bool(f, v);
  else if (f == "quantize_embeddings")
    c.quantize_embeddings = as_bool(f, v);
  else if (f == "fp8_per_tensor_scale")
    c.fp8_per_tensor_scale = as_bool(f, v);
  else if (f == "max_num_batched_tokens")
    c.max_num_batched_tokens = (int)as_int(f, v, 1, 1 << 20);
  else if (f == "enable_chunked_prefill")
    c.enable_chunked_prefill = as_bool(f, v);
  else if (f == "num_kv_blocks")
    c.num_kv_blocks = as_int(f, v, 0, 1LL << 40);
  else if (f == "kv_cache_bytes")
    c.kv_cache_bytes = as_int(f, v, 0, 1LL << 50);
  else if (f == "max_model_len")
    c.max_model_len = (int)as_int(f, v, 0, 1 << 24);
  else if (f == "threads")
    c.threads = (int)as_int(f, v, 0, 1024);
  else if (f == "backend") {
    if (v != "auto" && v != "cpu" && v != "cuda") bad_value(f, v, "is not auto, cpu or cuda");
    c.backend = v;
  } else if (f == "cuda_graphs")
    c.cuda_graphs = as_bool(f, v);
  else if (f == "fused_decode")
    c.fused_decode = as_bool(f, v);
  else if (f == "dependent_launch")
    c.dependent_launch = as_bool(f, v);
  else if (f == "fused_rope")
    c.fused_rope = as_bool(f, v);
  else if (f == "fp8_fast_accum")
    c.fp8_fast_accum = as_bool(f, v);
  else if (f == "split_merge_in_kernel")
    c.split_merge_in_kernel = as_bool(f, v);
  else if (f == "l2_prefetch")
    c.l2_prefetch = as_bool(f, v);
  else if (f == "persistent_decode")
    c.persistent_decode = as_bool(f, v);
  else if (f == "huge_page_weights")
    c.huge_page_weights = as_bool(f, v);
  else if (f == "int8_fma")
    c.int8_fma = as_bool(f, v);
  else if (f == "fp8_fma")
    c.fp8_fma = as_bool(f, v);
  else if (f == "gpu_memory_utilization")
    c.gpu_memory_utilization = as_double(f, v);
  else if (f == "model")
    c.model = v;
  else if (f == "n")
    w.n = (int)as_int(f, v, 1, 64);
  else if (f == "best_of")
    w.best_of = (int)as_int(f, v, 0, 64);
  else if (f == "beam_width")
    w.beam_width = (int)as_int(f, v, 0, 64);
  else if (f == "temperature")
    w.temperature = (float)as_double(f, v);
  else if (f == "top_p")
    w.top_p = (float)as_double(f, v);
  else if (f == "top_k")
    w.top_k = (int)as_int(f, v, 0, 1 << 24);
  else if (f == "max_concurrency")
    w.max_concurrency = (int)as_int(f, v, 0, 1 << 24);
  else {
    std::string known;
    for (const char* k : kAxisFields) known += (known.empty() ? "" : ", ") + std::string(k);
    throw Error("matrix axis '" + f + "' is not a field a matrix can vary (" + known + ")");
  }
}

bool is_cuda_only_field(const std::string& f) {
  const std::vector<std::string>& fields = cuda_only_fields();
  return std::find(fields.begin(), fields.end(), f) != fields.end();
}

// A run's precision differs from the F32 reference (header: not f32/auto).
bool changes_precision(const EngineConfig& c) {
  return (c.weight_dtype != "f32" && c.weight_dtype != "auto") || c.kv_dtype != "f32" || c.int8_activations;
}

}  // namespace

EngineConfig fp32_reference(const EngineConfig& c) {
  EngineConfig b = c;
  b.weight_dtype = "f32";
  b.kv_dtype = "f32";
  b.int8_activations = false;
  b.quantize_embeddings = false;
  b.fp8_per_tensor_scale = false;
  return b;
}

std::vector<std::string> read_prompt_lines(const std::string& path) {
  bench::refuse_directory(path, "prompts file");
  std::ifstream f(path);
  if (!f) throw Error(path + ": cannot open");
  std::vector<std::string> out;
  std::string s;
  for (int n = 1; std::getline(f, s); ++n) {
    if (!s.empty() && s.back() == '\r') s.pop_back();
    const size_t start = s.find_first_not_of(" \t");
    if (start == std::string::npos) continue;
    if (s[start] != '{') {
      out.push_back(s);
      continue;
    }
    try {
      const json j = json::parse(s);
      if (!j.contains("prompt") || !j["prompt"].is_string()) throw Error("needs a string field \"prompt\"");
      out.push_back(j["prompt"]);
    } catch (const std::exception& e) {
      throw Error(path + ":" + std::to_string(n) + ": " + e.what());
    }
  }
  if (out.empty()) throw Error(path + ": no prompts (one per line)");
  return out;
}

QualityFigures measure_quality(const EngineConfig& cfg, const std::string& text_path,
                               const std::string& prompts_path, int agreement_tokens) {
  QualityFigures q;
  const EngineConfig base = fp32_reference(cfg);
  if (!text_path.empty()) {
    q.text_path = text_path;
    const std::string text = bench::read_text_file(text_path, "quality text");
    const std::string tmp = (std::filesystem::temp_directory_path() /
                             ("brisk-quality-baseline-" + std::to_string(::getpid()) + ".logits"))
                                .string();
    PerplexityOptions o;
    o.save_logits_path = tmp;
    PerplexityResult pr;
    try {
      evaluate_perplexity(base, text, o);
      o.save_logits_path.clear();
      o.baseline_logits_path = tmp;
      pr = evaluate_perplexity(cfg, text, o);
    } catch (...) {
      std::remove(tmp.c_str());
      throw;
    }
    std::remove(tmp.c_str());
    q.perplexity = pr.perplexity;
    q.baseline_perplexity = pr.baseline_perplexity;
    q.kl_mean = pr.kl_mean;
    q.kl_p99 = pr.kl_p99;
    q.top1_agreement = pr.top1_agreement;
    q.tokens_scored = pr.tokens_scored;
  }
  if (!prompts_path.empty()) {
    q.prompts_path = prompts_path;
    const AgreementResult ar = greedy_agreement(base, cfg, read_prompt_lines(prompts_path), agreement_tokens);
    q.greedy_agreement = ar.agreement;
    q.mean_identical_prefix = ar.mean_identical_prefix;
    q.agreement_prompts = ar.prompts;
    q.agreement_tokens = agreement_tokens;
  }
  q.measured = true;
  // The reference is F32 by name: "auto" runs a file's own types, which may be F16 or quantized.
  q.reference = !changes_precision(cfg) && cfg.weight_dtype == "f32";
  return q;
}

MatrixSpec matrix_from_json(const std::string& text, const std::string& source) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw Error(source + ": not valid JSON: " + e.what());
  }
  bench::ObjReader r(j, "", source);
  std::string schema;
  r.get("schema", schema);
  if (schema != "brisk.matrix")
    r.fail("schema", schema.empty() ? "missing; a matrix file starts {\"schema\": \"brisk.matrix\", ...}"
                                    : "'" + schema + "' is not brisk.matrix");
  int version = 0;
  r.get("version", version);
  if (version != 1)
    r.fail("version",
           version ? std::to_string(version) + " is not a version this Brisk reads (1)" : "missing");
  // The reader checks the JSON's shapes; what the values mean, validate_matrix
  // checks (the GUI's builder makes matrices without a file).
  MatrixSpec m;
  r.get("name", m.name);
  r.get("kind", m.kind);
  if (const json* b = r.find("base")) m.base = bench::config_from(*b, "base", source);
  if (const json* a = r.find("axes")) {
    if (!a->is_array()) r.fail("axes", "expected an array of {\"field\": ..., \"values\": [...]}");
    for (size_t i = 0; i < a->size(); ++i) {
      bench::ObjReader ar((*a)[i], "axes[" + std::to_string(i) + "]", source);
      MatrixAxis axis;
      ar.get("field", axis.field);
      const json* vals = ar.find("values");
      if (!vals || !vals->is_array() || vals->empty()) ar.fail("values", "expected a non-empty array");
      for (const json& v : *vals) axis.values.push_back(axis_value_string(v, ar, "values"));
      ar.reject_unknown();
      m.axes.push_back(std::move(axis));
    }
  }
  r.get("rates", m.rates);
  if (const json* c = r.find("concurrencies")) {
    if (!c->is_array()) r.fail("concurrencies", "expected an array of integers");
    for (const json& v : *c) {
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > kMaxConcurrency)
        r.fail("concurrencies", v.dump() + " is not a request count >= 0 (0 = no cap)");
      m.concurrencies.push_back(v.get<int>());
    }
  }
  r.get("repeats", m.repeats);
  r.get("warmup_requests", m.warmup_requests);
  if (const json* s = r.find("slo")) {
    bench::ObjReader sr(*s, "slo", source);
    sr.get("ttft_s", m.slo.ttft_s);
    sr.get("tpot_s", m.slo.tpot_s);
    sr.get("e2e_s", m.slo.e2e_s);
    sr.reject_unknown();
  }
  r.get("quality_text", m.quality_text);
  r.get("quality_prompts", m.quality_prompts);
  r.reject_unknown();
  validate_matrix(m, source);
  return m;
}

void validate_matrix(const MatrixSpec& m, const std::string& source) {
  auto bad = [&](const std::string& field, const std::string& why) { bench::fail(source, field, why); };
  if (m.kind != "grid" && m.kind != "rate_sweep" && m.kind != "concurrency_sweep")
    bad("kind", "'" + m.kind + "' is not grid, rate_sweep or concurrency_sweep");
  bench::validate_config(m.base, "base", source);
  for (size_t i = 0; i < m.axes.size(); ++i) {
    const MatrixAxis& axis = m.axes[i];
    const std::string at = "axes[" + std::to_string(i) + "]";
    if (axis.field.empty()) bad(at + ".field", "missing (the EngineConfig or workload field to vary)");
    // Two axes on one field would label a run with both values while the
    // later one alone sets it ("static · continuous" running continuous).
    for (size_t k = 0; k < i; ++k)
      if (m.axes[k].field == axis.field)
        bad(at + ".field", "'" + axis.field + "' is already varied by axes[" + std::to_string(k) +
                               "]; put all its values in one axis");
    // The sweep sets max_concurrency before the axes: an axis on it would
    // silently replace every swept value.
    if (m.kind == "concurrency_sweep" && axis.field == "max_concurrency")
      bad(at + ".field",
          "'max_concurrency' is what a concurrency_sweep varies; list its values in "
          "\"concurrencies\", not in an axis");
    if (axis.values.empty()) bad(at + ".values", "expected at least one value");
    // A repeated value is the same configuration run twice under one label ("repeats" does that).
    for (size_t j = 0; j < axis.values.size(); ++j)
      if (std::find(axis.values.begin(), axis.values.begin() + (ptrdiff_t)j, axis.values[j]) !=
          axis.values.begin() + (ptrdiff_t)j)
        bad(at + ".values",
            "'" + axis.values[j] + "' is listed twice (use \"repeats\" to run a configuration again)");
  }
  // A sweep's list in a matrix of another kind would be ignored: a grid with
  // "rates" runs nothing at those rates. (Empty lists are what to_json writes.)
  if (m.kind != "rate_sweep" && !m.rates.empty())
    bad("rates", "only a rate_sweep has rates; this matrix's kind is '" + m.kind + "'");
  if (m.kind != "concurrency_sweep" && !m.concurrencies.empty())
    bad("concurrencies",
        "only a concurrency_sweep has concurrencies; this matrix's kind is '" + m.kind + "'");
  for (double r : m.rates)
    if (!(r > 0) || !std::isfinite(r))
      bad("rates", number_string(r) + " is not a positive rate (requests/s)");
  for (int c : m.concurrencies)
    if (c < 0 || c > kMaxConcurrency)
      bad("concurrencies", std::to_string(c) + " is not a request count >= 0 (0 = no cap)");
  if (m.kind == "rate_sweep" && m.rates.empty()) bad("rates", "a rate_sweep needs at least one rate");
  if (m.kind == "concurrency_sweep" && m.concurrencies.empty())
    bad("concurrencies", "a concurrency_sweep needs at least one value");
  // A CUDA-only field varied or set where every run says backend "cpu" would
  // label identical runs differently (an A/B of nothing) and record settings
  // that did nothing. (Where "auto" resolves to the CPU depends on the
  // machine: check_matrix_inputs refuses that case.)
  const MatrixAxis* backend_axis = nullptr;
  for (const MatrixAxis& axis : m.axes)
    if (axis.field == "backend") backend_axis = &axis;
  const bool all_cpu = backend_axis ? std::all_of(backend_axis->values.begin(), backend_axis->values.end(),
                                                  [](const std::string& v) { return v == "cpu"; })
                                    : m.base.backend == "cpu";
  if (all_cpu) {
    const std::string why =
        " applies to the CUDA backend only, and every run of this matrix runs on the CPU "
        "(backend 'cpu'): ";
    for (size_t i = 0; i < m.axes.size(); ++i)
      if (is_cuda_only_field(m.axes[i].field))
        bad("axes[" + std::to_string(i) + "].field",
            "'" + m.axes[i].field + "'" + why +
                "its runs would be identical under different labels; drop the axis or run on backend 'cuda'");
    for (const std::string& f : cuda_only_fields_set(m.base))
      bad("base." + f, "'" + f + "'" + why + "it would change nothing; leave it at its default");
  }
  if (m.repeats < 1 || m.repeats > 1000) bad("repeats", "must be 1..1000");
  if (m.warmup_requests < 0 || m.warmup_requests > 1000) bad("warmup_requests", "must be 0..1000");
  for (auto [k, v] :
       {std::pair{"slo.ttft_s", m.slo.ttft_s}, {"slo.tpot_s", m.slo.tpot_s}, {"slo.e2e_s", m.slo.e2e_s}})
    if (!(v >= 0)) bad(k, "must be >= 0 seconds (0 = no limit)");
}

MatrixSpec load_matrix(const std::string& path) {
  return matrix_from_json(bench::read_text_file(path, "matrix file"), path);
}

std::string to_json(const MatrixSpec& m) {
  json axes = json::array();
  for (const MatrixAxis& a : m.axes) axes.push_back({{"field", a.field}, {"values", a.values}});
  json j = {{"schema", "brisk.matrix"},
            {"version", 1},
            {"name", m.name},
            {"kind", m.kind},
            {"base", bench::config_json(m.base)},
            {"axes", axes},
            {"rates", m.rates},
            {"concurrencies", m.concurrencies},
            {"repeats", m.repeats},
            {"warmup_requests", m.warmup_requests},
            {"slo", {{"ttft_s", m.slo.ttft_s}, {"tpot_s", m.slo.tpot_s}, {"e2e_s", m.slo.e2e_s}}},
            {"quality_text", m.quality_text},
            {"quality_prompts", m.quality_prompts}};
  return j.dump(2);
}

std::vector<MatrixRun> expand_matrix(const MatrixSpec& m, const WorkloadSpec& w) {
  const std::string src = "matrix" + (m.name.empty() ? std::string() : " '" + m.name + "'");
  validate_matrix(m, src);
  // The sweep is the outer dimension: a rate sweep reads left to right.
  struct Point {
    std::vector<std::pair<std::string, std::string>> settings;
    std::vector<std::string> label;
  };
  std::vector<Point> sweep(1);
  if (m.kind == "rate_sweep") {
    sweep.clear();
    for (double r : m.rates) sweep.push_back({{{"rate", number_string(r)}}, {number_string(r) + " req/s"}});
  } else if (m.kind == "concurrency_sweep") {
    sweep.clear();
    for (int c : m.concurrencies)
      sweep.push_back({{{"max_concurrency", std::to_string(c)}},
                       {c == 0 ? std::string("no cap") : std::to_string(c) + " concurrent"}});
  }
  // Cartesian product of the axes, the last axis varying fastest.
  std::vector<Point> configs;
  for (const Point& s : sweep) {
    std::vector<size_t> idx(m.axes.size(), 0);
    for (;;) {
      Point p = s;
      for (size_t k = 0; k < m.axes.size(); ++k) {
        p.settings.emplace_back(m.axes[k].field, m.axes[k].values[idx[k]]);
        p.label.push_back(m.axes[k].values[idx[k]]);
      }
      configs.push_back(std::move(p));
      size_t k = m.axes.size();
      while (k > 0 && ++idx[k - 1] == m.axes[k - 1].values.size()) idx[--k] = 0;
      if (k == 0) break;
    }
  }
  std::vector<MatrixRun> prototypes;
  for (const Point& p : configs) {
    MatrixRun run;
    run.config = m.base;
    run.workload = w;
    run.settings = p.settings;
    for (const auto& [field, value] : p.settings) {
      if (field == "rate" && m.kind == "rate_sweep") {
        run.workload.arrival = "poisson";
        run.workload.rate = std::stod(value);
        run.workload.trace_path.clear();  // the trace's arrivals are what the sweep replaces
        run.workload.trace_times.clear();
      } else {
        apply_axis(field, value, run.config, run.workload);
      }
    }
    std::string setting;
    for (const auto& [field, value] : p.settings)
      setting += (setting.empty() ? "" : ", ") + field + " = " + value;
    bench::validate_config(run.config, "", src + " run (" + setting + ")");
    bench::validate_workload(run.workload, "workload", src + " run (" + setting + ")");
    for (const std::string& l : p.label) run.label += (run.label.empty() ? "" : " · ") + l;
    if (run.label.empty()) run.label = "base";
    prototypes.push_back(std::move(run));
  }
  std::vector<MatrixRun> runs;
  for (int rep = 0; rep < m.repeats; ++rep)
    for (const MatrixRun& p : prototypes) {
      runs.push_back(p);
      runs.back().repeat = rep;
    }
  return runs;
}

struct MatrixInputs::Files {
  std::map<std::string, std::shared_ptr<const std::vector<bench::DatasetLine>>> datasets;
  std::map<std::string, std::shared_ptr<const std::vector<bench::TraceFileLine>>> traces;

  // What make_workload would read for w (null where not read here: it reads it then).
  bench::WorkloadFiles of(const WorkloadSpec& w) const {
    bench::WorkloadFiles f;
    if (w.prompt_len.kind == "file")
      if (auto it = datasets.find(w.prompt_len.path); it != datasets.end()) f.dataset = it->second;
    if (w.arrival == "trace" && !w.trace_path.empty())
      if (auto it = traces.find(w.trace_path); it != traces.end()) f.trace = it->second;
    return f;
  }
};

namespace {

// What this machine can run, checked before any run: a run on a backend that
// is not available would fail at load, after the runs before it spent their
// time, and say so once per run.
void check_backends(const std::vector<MatrixRun>& runs) {
  if (runs.empty()) return;
  const std::vector<BackendStatus> backends = list_backends();
  auto status = [&](const std::string& name) -> const BackendStatus* {
    for (const BackendStatus& b : backends)
      if (b.name == name) return &b;
    return nullptr;
  };
  // The run labels (once each, in order) of runs matching `pred`.
  auto labels_of = [&](auto pred) {
    std::vector<std::string> labels;
    for (const MatrixRun& r : runs)
      if (pred(r) && std::find(labels.begin(), labels.end(), r.label) == labels.end())
        labels.push_back(r.label);
    return labels;
  };
  auto joined = [](const std::vector<std::string>& v) {
    std::string s;
    for (const std::string& x : v) s += (s.empty() ? "" : ", ") + x;
    return s;
  };
  // Which runs: worth saying where there is more than the one unlabelled configuration.
  auto which = [&](const std::vector<std::string>& labels) -> std::string {
    if (labels.size() == 1 && labels[0] == "base") return "";
    const std::vector<std::string> all = labels_of([](const MatrixRun&) { return true; });
    return (labels.size() == all.size() ? std::string("; every run asks for it (")
                                        : std::string("; the runs asking for it: ")) +
           joined(labels) + (labels.size() == all.size() ? ")" : "");
  };
  // An explicitly named backend that is not available ("auto" always resolves to one that is).
  std::vector<std::string> names;
  for (const MatrixRun& r : runs)
    if (r.config.backend != "auto" && std::find(names.begin(), names.end(), r.config.backend) == names.end())
      names.push_back(r.config.backend);
  for (const std::string& name : names) {
    const BackendStatus* b = status(name);
    if (b && b->available) continue;
    const std::string reason = b ? b->reason : "this build has no such backend";
    throw Error("backend '" + name + "' is unavailable: " + (reason.empty() ? "no device" : reason) +
                which(labels_of([&](const MatrixRun& r) { return r.config.backend == name; })) +
                "; nothing was run");
  }
  // Every run on the CPU (named, or "auto" without a CUDA device): an axis on
  // a CUDA-only field labels identical runs differently. (Set in the base of
  // an "auto" matrix it is let through, as the CLI lets such flags through:
  // the same matrix means something on a GPU machine; cuda_only_fields_note
  // is the warning and run_matrix records the defaults. With backend "cpu"
  // validate_matrix refuses both.)
  for (const MatrixRun& r : runs)
    if (resolve_backend(r.config.backend) != "cpu") return;
  const BackendStatus* cuda = status("cuda");
  const std::string where =
      std::any_of(runs.begin(), runs.end(), [](const MatrixRun& r) { return r.config.backend == "auto"; })
          ? "backend 'auto' runs on the CPU here" +
                (cuda && !cuda->reason.empty() ? " (CUDA: " + cuda->reason + ")" : std::string())
          : std::string("backend 'cpu'");
  for (const MatrixRun& r : runs)
    for (const auto& [field, value] : r.settings)
      if (is_cuda_only_field(field))
        throw Error("matrix axis '" + field +
                    "' applies to the CUDA backend only, and every run of this matrix runs on the CPU (" +
                    where + "): its runs would be identical under different labels; nothing was run");
}

}  // namespace

std::string cuda_only_fields_note(const std::vector<MatrixRun>& runs) {
  std::vector<std::string> fields;
  for (const MatrixRun& r : runs)
    if (resolve_backend(r.config.backend) == "cpu")
      for (const std::string& f : cuda_only_fields_set(r.config))
        if (std::find(fields.begin(), fields.end(), f) == fields.end()) fields.push_back(f);
  if (fields.empty()) return "";
  std::string list;
  for (const std::string& f : fields) list += (list.empty() ? "" : ", ") + f;
  std::string reason;
  for (const BackendStatus& b : list_backends())
    if (b.name == "cuda" && !b.reason.empty()) reason = " (CUDA: " + b.reason + ")";
  return list + (fields.size() == 1 ? " applies" : " apply") +
         " to the CUDA backend only and the runs run on the CPU here" + reason +
         ": they are left at their defaults and recorded so";
}

MatrixInputs check_matrix_inputs(const std::vector<MatrixRun>& runs) {
  check_backends(runs);
  auto files = std::make_shared<MatrixInputs::Files>();
  for (const MatrixRun& run : runs) {
    const WorkloadSpec& w = run.workload;
    // The same reads make_workload does, once per file however many runs name it.
    if (w.prompt_len.kind == "file" && !files->datasets.count(w.prompt_len.path))
      files->datasets[w.prompt_len.path] = std::make_shared<const std::vector<bench::DatasetLine>>(
          bench::read_prompt_dataset(w.prompt_len.path));
    if (w.arrival == "trace" && !w.trace_path.empty()) {
      auto& trace = files->traces[w.trace_path];
      if (!trace)
        trace = std::make_shared<const std::vector<bench::TraceFileLine>>(bench::read_trace(w.trace_path));
      bench::check_trace_length(w, trace->size());
    }
  }
  return {files};
}

void check_quality_files(const std::string& text_path, const std::string& prompts_path) {
  if (!text_path.empty()) {
    const std::string text = bench::read_text_file(text_path, "quality text");
    if (text.find_first_not_of(" \t\r\n") == std::string::npos)
      throw Error(text_path + ": empty quality text (nothing to score perplexity on)");
  }
  if (!prompts_path.empty()) (void)read_prompt_lines(prompts_path);
}

MatrixInputs check_matrix_inputs(const MatrixSpec& m, const std::vector<MatrixRun>& runs) {
  MatrixInputs inputs = check_matrix_inputs(runs);
  check_quality_files(m.quality_text, m.quality_prompts);
  return inputs;
}

std::vector<BenchResult> run_matrix(const MatrixSpec& m, const WorkloadSpec& w, const MatrixCallbacks& cb,
                                    const MatrixInputs* given) {
  const std::vector<MatrixRun> runs = expand_matrix(m, w);
  // Every run's files before the first run: a bad line must not wait for the runs before it.
  const MatrixInputs inputs = given && given->files ? *given : check_matrix_inputs(runs);
  // The quality files too (small; read again by each configuration's quality phase).
  check_quality_files(m.quality_text, m.quality_prompts);
  const auto t_start = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  };
  auto stopped = [&] { return cb.stop && cb.stop->load(); };
  MatrixProgress p;
  p.runs = (int)runs.size();
  auto emit = [&](const std::string& phase, double within) {
    p.phase = phase;
    p.elapsed_s = elapsed();
    p.fraction = p.runs ? std::clamp((p.run + within) / p.runs, 0.0, 1.0) : 1.0;
    p.eta_s = p.fraction > 0 && p.fraction < 1 ? p.elapsed_s * (1 - p.fraction) / p.fraction
              : p.fraction >= 1                ? 0
                                               : -1;
    if (cb.progress) cb.progress(p);
    p.new_steps.clear();
  };
  std::map<std::string, std::string> sha_cache;
  std::map<std::string, QualityFigures> quality_cache;
  std::vector<BenchResult> results;
  for (size_t i = 0; i < runs.size() && !stopped(); ++i) {
    MatrixRun run = runs[i];
    // On the CPU the CUDA-only fields change nothing (an axis over one is
    // refused above): the run records them at their defaults, as the CLI's
    // flags are (cuda_only_fields_note says so before the first run).
    if (resolve_backend(run.config.backend) == "cpu") reset_cuda_only_fields(run.config);
    p.run = (int)i;
    p.label = run.label;
    p.repeat = run.repeat;
    p.requests_done = 0;
    p.requests_total = run.workload.num_requests;
    p.live = {};
    emit("loading", 0);
    BenchResult r;
    bool dropped = false;
    ModelInfo loaded;  // set once the model loaded: a run failing after that still names it
    try {
      std::unique_ptr<Engine> engine = Engine::create(run.config);
      loaded = engine->model_info();
      const std::vector<WorkloadRequest> reqs =
          bench::make_workload(run.workload, *engine, inputs.files->of(run.workload));
      emit("warmup", 0);
      bench::RunHooks hooks;
      hooks.stop = cb.stop;
      size_t steps_seen = 0;
      hooks.warmup_done = [&] {
        steps_seen = 0;
        emit("running", 0);
      };
      hooks.tick = [&](const Engine& e, int done, int total) {
        p.requests_done = done;
        p.live = e.metrics();
        const auto& hist = e.step_history();
        if (steps_seen > hist.size()) steps_seen = 0;
        p.new_steps.assign(hist.begin() + (ptrdiff_t)steps_seen, hist.end());
        steps_seen = hist.size();
        emit("running", total > 0 ? 0.98 * done / total : 0);
      };
      bool was_stopped = false;
      r = bench::run_benchmark_hooked(*engine, run.workload, reqs, m.warmup_requests, hooks, &was_stopped);
      if (was_stopped) {
        dropped = true;
      } else {
        r.summary = summarize(r.requests, r.steps, r.summary.duration_s, m.slo);
        ProbeOptions po;
        po.threads = run.config.threads;
        po.measure = false;  // recall the machine's ceilings if known; measuring takes seconds
        compute_roofline(r, probe_system(po), engine->kv_bytes_per_token());
        const std::string path = run.config.model;
        if (r.model.format != "demo" && std::filesystem::is_regular_file(path)) {
          std::error_code ec;
          const std::string key =
              path + "|" + std::to_string(std::filesystem::file_size(path, ec)) + "|" +
              std::to_string(std::filesystem::last_write_time(path, ec).time_since_epoch().count());
          if (!sha_cache.count(key)) sha_cache[key] = bench::sha256_file(path);
          r.model_sha256 = sha_cache[key];
        }
        engine.reset();  // free its memory before the quality runs
        // Every run gets the quality figures, the F32 runs too: a report then
        // shows the reference's perplexity beside the quantized ones.
        if (!m.quality_text.empty() || !m.quality_prompts.empty()) {
          p.requests_done = p.requests_total;
          emit("quality", 0.99);
          const std::string key = bench::config_json(run.config).dump();
          if (!quality_cache.count(key))
            quality_cache[key] = measure_quality(run.config, m.quality_text, m.quality_prompts, 64);
          r.quality = quality_cache[key];
        }
      }
    } catch (const std::exception& e) {
      r = BenchResult{};
      r.config = run.config;
      r.workload = run.workload;
      r.error = e.what();
      // The machine it failed on, described as the finished runs' is (a report
      // compares machines across runs); the model as loaded, or empty where it never was.
      r.model = loaded;
      try {
        ProbeOptions po;
        po.threads = run.config.threads;
        po.measure = false;
        r.system = probe_system(po);
        r.system.backend_used = resolve_backend(run.config.backend);
      } catch (const std::exception&) {
      }
    }
    if (dropped) break;
    r.label = run.label;
    r.settings = run.settings;
    r.repeat = run.repeat;
    r.matrix_name = m.name;
    r.slo = m.slo;
    r.created = bench::utc_now();
    if (r.brisk_version.empty()) r.brisk_version = BRISK_VERSION;
    if (r.commit.empty()) r.commit = brisk_git_commit;
    results.push_back(r);
    if (cb.on_result) cb.on_result(results.back());
    p.requests_done = p.requests_total;
    emit("done", 1);
  }
  return results;
}

}  // namespace brisk
