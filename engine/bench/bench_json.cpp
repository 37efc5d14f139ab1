#include "bench/bench_json.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>

#include "metrics/metrics_json.h"

namespace brisk::bench {

double float_json(float v) {
  if (!std::isfinite(v)) return v;
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::strtod(std::string(buf, r.ptr).c_str(), nullptr);
}

void fail(const std::string& source, const std::string& field, const std::string& why) {
  throw Error(source + ": " + (field.empty() ? std::string() : "field '" + field + "': ") + why);
}

ObjReader::ObjReader(const json& j, std::string path, const std::string& source)
    : j_(j), path_(std::move(path)), source_(source) {
  if (!j.is_object()) bench::fail(source_, path_, "expected a JSON object");
}

void ObjReader::fail(const std::string& key, const std::string& why) const {
  bench::fail(source_, name(key), why);
}

const json* ObjReader::find(const std::string& key) {
  seen_.insert(key);
  const auto it = j_.find(key);
  return it == j_.end() || it->is_null() ? nullptr : &*it;
}

void ObjReader::get(const std::string& key, double& v) {
  if (const json* p = find(key)) {
    if (!p->is_number()) fail(key, "expected a number, got " + p->dump());
    v = p->get<double>();
  }
}

void ObjReader::get(const std::string& key, float& v) {
  double d = v;
  get(key, d);
  v = (float)d;
}

namespace {

// Integers may be written as 8 or 8.0, not as 8.5 or "8".
template <typename T>
T integer_of(const ObjReader& r, const std::string& key, const json& p) {
  if (p.is_number_unsigned()) {
    const uint64_t u = p.get<uint64_t>();
    if (u > (uint64_t)std::numeric_limits<T>::max()) r.fail(key, "out of range: " + p.dump());
    return (T)u;
  }
  if (p.is_number_integer()) {
    const int64_t i = p.get<int64_t>();
    if (i < (int64_t)std::numeric_limits<T>::min() ||
        (i > 0 && (uint64_t)i > (uint64_t)std::numeric_limits<T>::max()))
      r.fail(key, "out of range: " + p.dump());
    return (T)i;
  }
  if (p.is_number_float()) {
    const double d = p.get<double>();
    if (d == std::floor(d) && d >= (double)std::numeric_limits<T>::min() &&
        d <= (double)std::numeric_limits<T>::max())
      return (T)d;
  }
  r.fail(key, "expected an integer, got " + p.dump());
}

}  // namespace

void ObjReader::get(const std::string& key, int& v) {
  if (const json* p = find(key)) v = integer_of<int>(*this, key, *p);
}
void ObjReader::get(const std::string& key, int64_t& v) {
  if (const json* p = find(key)) v = integer_of<int64_t>(*this, key, *p);
}
void ObjReader::get(const std::string& key, uint64_t& v) {
  if (const json* p = find(key)) v = integer_of<uint64_t>(*this, key, *p);
}

void ObjReader::get(const std::string& key, bool& v) {
  if (const json* p = find(key)) {
    if (!p->is_boolean()) fail(key, "expected true or false, got " + p->dump());
    v = p->get<bool>();
  }
}

void ObjReader::get(const std::string& key, std::string& v) {
  if (const json* p = find(key)) {
    if (!p->is_string()) fail(key, "expected a string, got " + p->dump());
    v = p->get<std::string>();
  }
}

void ObjReader::get(const std::string& key, std::vector<double>& v) {
  if (const json* p = find(key)) {
    if (!p->is_array()) fail(key, "expected an array of numbers");
    v.clear();
    for (const json& x : *p) {
      if (!x.is_number()) fail(key, "expected an array of numbers, got " + x.dump());
      v.push_back(x.get<double>());
    }
  }
}

void ObjReader::get(const std::string& key, std::vector<std::string>& v) {
  if (const json* p = find(key)) {
    if (!p->is_array()) fail(key, "expected an array of strings");
    v.clear();
    for (const json& x : *p) {
      if (!x.is_string()) fail(key, "expected an array of strings, got " + x.dump());
      v.push_back(x.get<std::string>());
    }
  }
}

void ObjReader::reject_unknown() const {
  for (const auto& [k, v] : j_.items())
    if (!seen_.count(k)) fail(k, "unknown field");
}

// ---------------------------------------------------------------- config

json config_json(const EngineConfig& c) {
  return {{"model", c.model},
          {"tokenizer", c.tokenizer},
          {"policy", policy_name(c.policy)},
          {"block_size", c.block_size},
          {"num_kv_blocks", c.num_kv_blocks},
          {"kv_cache_bytes", c.kv_cache_bytes},
          {"max_num_seqs", c.max_num_seqs},
          {"max_num_batched_tokens", c.max_num_batched_tokens},
          {"enable_chunked_prefill", c.enable_chunked_prefill},
          {"max_model_len", c.max_model_len},
          {"enable_prefix_caching", c.enable_prefix_caching},
          {"speculative_tokens", c.speculative_tokens},
          {"speculative_ngram", c.speculative_ngram},
          {"threads", c.threads},
          {"backend", c.backend},
          {"gpu_memory_utilization", c.gpu_memory_utilization},
          {"cuda_graphs", c.cuda_graphs},
          {"fused_decode", c.fused_decode},
          {"dependent_launch", c.dependent_launch},
          {"fused_rope", c.fused_rope},
          {"fp8_fast_accum", c.fp8_fast_accum},
          {"split_merge_in_kernel", c.split_merge_in_kernel},
          {"l2_prefetch", c.l2_prefetch},
          {"persistent_decode", c.persistent_decode},
          {"huge_page_weights", c.huge_page_weights},
          {"int8_fma", c.int8_fma},
          {"fp8_fma", c.fp8_fma},
          {"weight_dtype", c.weight_dtype},
          {"kv_dtype", c.kv_dtype},
          {"int8_activations", c.int8_activations},
          {"quantize_embeddings", c.quantize_embeddings},
          {"fp8_per_tensor_scale", c.fp8_per_tensor_scale},
          {"seed", c.seed}};
}

EngineConfig config_from(const json& j, const std::string& path, const std::string& source, EngineConfig c) {
  ObjReader r(j, path, source);
  r.get("model", c.model);
  r.get("tokenizer", c.tokenizer);
  std::string policy = policy_name(c.policy);
  r.get("policy", policy);
  if (policy == "continuous")
    c.policy = SchedulerPolicy::Continuous;
  else if (policy == "static")
    c.policy = SchedulerPolicy::Static;
  else
    r.fail("policy", "'" + policy + "' is not continuous or static");
  r.get("block_size", c.block_size);
  r.get("num_kv_blocks", c.num_kv_blocks);
  r.get("kv_cache_bytes", c.kv_cache_bytes);
  r.get("max_num_seqs", c.max_num_seqs);
  r.get("max_num_batched_tokens", c.max_num_batched_tokens);
  r.get("enable_chunked_prefill", c.enable_chunked_prefill);
  r.get("max_model_len", c.max_model_len);
  r.get("enable_prefix_caching", c.enable_prefix_caching);
  r.get("speculative_tokens", c.speculative_tokens);
  r.get("speculative_ngram", c.speculative_ngram);
  r.get("threads", c.threads);
  r.get("backend", c.backend);
  r.get("gpu_memory_utilization", c.gpu_memory_utilization);
  r.get("cuda_graphs", c.cuda_graphs);
  r.get("fused_decode", c.fused_decode);
  r.get("dependent_launch", c.dependent_launch);
  r.get("fused_rope", c.fused_rope);
  r.get("fp8_fast_accum", c.fp8_fast_accum);
  r.get("split_merge_in_kernel", c.split_merge_in_kernel);
  r.get("l2_prefetch", c.l2_prefetch);
  r.get("persistent_decode", c.persistent_decode);
  r.get("huge_page_weights", c.huge_page_weights);
  r.get("int8_fma", c.int8_fma);
  r.get("fp8_fma", c.fp8_fma);
  r.get("weight_dtype", c.weight_dtype);
  r.get("kv_dtype", c.kv_dtype);
  r.get("int8_activations", c.int8_activations);
  r.get("quantize_embeddings", c.quantize_embeddings);
  r.get("fp8_per_tensor_scale", c.fp8_per_tensor_scale);
  r.get("seed", c.seed);
  r.reject_unknown();
  return c;
}

void validate_config(const EngineConfig& c, const std::string& path, const std::string& source) {
  const std::string e = c.validate();
  if (e.empty()) return;
  // validate() says "EngineConfig.FIELD = VALUE: why"; name the field as the JSON does.
  std::string field = e.rfind("EngineConfig.", 0) == 0 ? e.substr(13) : e;
  field = field.substr(0, field.find_first_of(" :"));
  fail(source, path.empty() ? field : path + "." + field, e);
}

// ---------------------------------------------------------------- workload

json workload_json(const WorkloadSpec& w) {
  return {{"schema", "brisk.workload"},
          {"version", 1},
          {"name", w.name},
          {"description", w.description},
          {"num_requests", w.num_requests},
          {"arrival", w.arrival},
          {"rate", w.rate},
          {"burstiness", w.burstiness},
          {"ramp_start_rate", w.ramp_start_rate},
          {"ramp_end_rate", w.ramp_end_rate},
          {"trace_times", w.trace_times},
          {"trace_path", w.trace_path},
          {"max_concurrency", w.max_concurrency},
          {"prompt_len", w.prompt_len.to_string()},
          {"output_len", w.output_len.to_string()},
          {"temperature", float_json(w.temperature)},
          {"top_p", float_json(w.top_p)},
          {"top_k", w.top_k},
          {"repetition_penalty", float_json(w.repetition_penalty)},
          {"ignore_eos", w.ignore_eos},
          {"n", w.n},
          {"best_of", w.best_of},
          {"beam_width", w.beam_width},
          {"seed", w.seed}};
}

void validate_workload(const WorkloadSpec& w, const std::string& path, const std::string& source) {
  auto bad = [&](const char* field, const std::string& why) {
    fail(source, path.empty() ? field : path + "." + field, why);
  };
  auto num = [](double v) {
    std::ostringstream o;
    o << v;
    return o.str();
  };
  if (w.num_requests < 1 || w.num_requests > 10000000) bad("num_requests", "must be 1..10000000");
  static const char* kArrivals[] = {"all", "poisson", "gamma", "ramp", "trace"};
  if (std::find(std::begin(kArrivals), std::end(kArrivals), w.arrival) == std::end(kArrivals))
    bad("arrival", "'" + w.arrival + "' is not all, poisson, gamma, ramp or trace");
  if ((w.arrival == "poisson" || w.arrival == "gamma") && !(w.rate > 0 && std::isfinite(w.rate)))
    bad("rate", num(w.rate) + " is not a positive rate (requests/s)");
  if (w.arrival == "gamma" && !(w.burstiness > 0 && std::isfinite(w.burstiness)))
    bad("burstiness", num(w.burstiness) + " must be positive (1 = Poisson, < 1 burstier)");
  if (w.arrival == "ramp") {
    if (!(w.ramp_start_rate > 0 && std::isfinite(w.ramp_start_rate)))
      bad("ramp_start_rate", num(w.ramp_start_rate) + " is not a positive rate (requests/s)");
    if (!(w.ramp_end_rate > 0 && std::isfinite(w.ramp_end_rate)))
      bad("ramp_end_rate", num(w.ramp_end_rate) + " is not a positive rate (requests/s)");
  }
  for (double t : w.trace_times)
    if (!(t >= 0 && std::isfinite(t))) bad("trace_times", num(t) + " is not a time in seconds >= 0");
  // A trace file is read only to replay it: beside another arrival it would be ignored without a word.
  if (w.arrival != "trace" && !w.trace_path.empty())
    bad("trace_path", "a trace file is replayed only with arrival 'trace', not '" + w.arrival +
                          "' (set arrival to 'trace', or remove trace_path)");
  if (w.arrival != "trace" && !w.trace_times.empty())
    bad("trace_times", "arrival times are replayed only with arrival 'trace', not '" + w.arrival +
                           "' (set arrival to 'trace', or remove trace_times)");
  if (w.arrival == "trace") {
    if (w.trace_times.empty() && w.trace_path.empty())
      bad("trace_times", "arrival 'trace' needs trace_times or trace_path");
    if (!w.trace_times.empty() && !w.trace_path.empty())
      bad("trace_path", "give trace_times or trace_path, not both");
    if (!w.trace_times.empty() && (int)w.trace_times.size() < w.num_requests)
      bad("num_requests", std::to_string(w.num_requests) + " requests but trace_times has only " +
                              std::to_string(w.trace_times.size()));
  }
  if (w.max_concurrency < 0) bad("max_concurrency", "must be >= 0 (0 = no cap)");
  if (w.output_len.kind == "file") bad("output_len", "output lengths come from a distribution, not a file");
  if (w.prompt_len.kind == "file" && w.prompt_len.path.empty()) bad("prompt_len", "file: needs a path");
  if (!(w.temperature >= 0 && w.temperature <= 100)) bad("temperature", "must be 0..100");
  if (!(w.top_p > 0 && w.top_p <= 1)) bad("top_p", "must be in (0, 1]");
  if (w.top_k < 0) bad("top_k", "must be >= 0 (0 = off)");
  if (!(w.repetition_penalty > 0 && w.repetition_penalty <= 100))
    bad("repetition_penalty", "must be in (0, 100]");
  if (w.n < 1 || w.n > 64) bad("n", "must be 1..64");
  if (w.best_of < 0 || w.best_of > 64) bad("best_of", "must be 0..64");
  if (w.best_of > 0 && w.best_of < w.n) bad("best_of", "must be >= n (or 0)");
  if (w.beam_width < 0 || w.beam_width > 64) bad("beam_width", "must be 0..64");
}

WorkloadSpec workload_from(const json& j, const std::string& path, const std::string& source) {
  ObjReader r(j, path, source);
  std::string schema;
  r.get("schema", schema);
  if (schema != "brisk.workload")
    r.fail("schema", schema.empty() ? "missing; a workload file starts {\"schema\": \"brisk.workload\", ...}"
                                    : "'" + schema + "' is not brisk.workload");
  int version = 0;
  r.get("version", version);
  if (version != 1)
    r.fail("version",
           version ? std::to_string(version) + " is not a version this Brisk reads (1)" : "missing");
  WorkloadSpec w;
  r.get("name", w.name);
  r.get("description", w.description);
  r.get("num_requests", w.num_requests);
  r.get("arrival", w.arrival);
  r.get("rate", w.rate);
  r.get("burstiness", w.burstiness);
  r.get("ramp_start_rate", w.ramp_start_rate);
  r.get("ramp_end_rate", w.ramp_end_rate);
  r.get("trace_times", w.trace_times);
  r.get("trace_path", w.trace_path);
  r.get("max_concurrency", w.max_concurrency);
  for (const char* k : {"prompt_len", "output_len"}) {
    std::string s;
    r.get(k, s);
    if (s.empty()) continue;
    try {
      (std::string(k) == "prompt_len" ? w.prompt_len : w.output_len) = LengthDist::parse(s);
    } catch (const Error& e) {
      r.fail(k, e.what());
    }
  }
  r.get("temperature", w.temperature);
  r.get("top_p", w.top_p);
  r.get("top_k", w.top_k);
  r.get("repetition_penalty", w.repetition_penalty);
  r.get("ignore_eos", w.ignore_eos);
  r.get("n", w.n);
  r.get("best_of", w.best_of);
  r.get("beam_width", w.beam_width);
  r.get("seed", w.seed);
  r.reject_unknown();
  validate_workload(w, path, source);
  return w;
}

// ---------------------------------------------------------------- results

namespace {

json model_json(const ModelInfo& m) {
  return {{"path", m.path},
          {"name", m.name},
          {"format", m.format},
          {"architecture", m.architecture},
          {"synthetic", m.synthetic},
          {"n_params", m.n_params},
          {"dim", m.dim},
          {"hidden_dim", m.hidden_dim},
          {"n_layers", m.n_layers},
          {"n_heads", m.n_heads},
          {"n_kv_heads", m.n_kv_heads},
          {"head_dim", m.head_dim},
          {"vocab_size", m.vocab_size},
          {"context_length", m.context_length},
          {"rope_theta", float_json(m.rope_theta)},
          {"norm_eps", float_json(m.norm_eps)},
          {"tied_embeddings", m.tied_embeddings},
          {"weight_bytes", m.weight_bytes},
          {"converted_to", m.converted_to},
          {"tokenizer", m.tokenizer},
          {"tokenizer_vocab_size", m.tokenizer_vocab_size}};
}

ModelInfo model_from(const json& j, const std::string& path, const std::string& source) {
  ObjReader r(j, path, source);
  ModelInfo m;
  r.get("path", m.path);
  r.get("name", m.name);
  r.get("format", m.format);
  r.get("architecture", m.architecture);
  r.get("synthetic", m.synthetic);
  r.get("n_params", m.n_params);
  r.get("dim", m.dim);
  r.get("hidden_dim", m.hidden_dim);
  r.get("n_layers", m.n_layers);
  r.get("n_heads", m.n_heads);
  r.get("n_kv_heads", m.n_kv_heads);
  r.get("head_dim", m.head_dim);
  r.get("vocab_size", m.vocab_size);
  r.get("context_length", m.context_length);
  r.get("rope_theta", m.rope_theta);
  r.get("norm_eps", m.norm_eps);
  r.get("tied_embeddings", m.tied_embeddings);
  r.get("weight_bytes", m.weight_bytes);
  r.get("converted_to", m.converted_to);
  r.get("tokenizer", m.tokenizer);
  r.get("tokenizer_vocab_size", m.tokenizer_vocab_size);
  return m;
}

SystemInfo system_from(const json& j, const std::string& path, const std::string& source) {
  ObjReader r(j, path, source);
  SystemInfo s;
  r.get("cpu_model", s.cpu_model);
  r.get("logical_cpus", s.logical_cpus);
  r.get("physical_cores", s.physical_cores);
  r.get("l1d_cache_bytes", s.l1d_cache_bytes);
  r.get("l2_cache_bytes", s.l2_cache_bytes);
  r.get("l3_cache_bytes", s.l3_cache_bytes);
  r.get("memory_bytes", s.memory_bytes);
  r.get("features", s.features);
  r.get("kernel_isa", s.kernel_isa);
  r.get("detected_isa", s.detected_isa);
  r.get("measured", s.measured);
  r.get("from_cache", s.from_cache);
  r.get("cache_path", s.cache_path);
  r.get("read_bandwidth_bytes_per_s", s.read_bandwidth_bytes_per_s);
  r.get("fma_peak_flops", s.fma_peak_flops);
  r.get("threads_used", s.threads_used);
  r.get("bandwidth_buffer_bytes", s.bandwidth_buffer_bytes);
  r.get("quick", s.quick);
  r.get("read_bandwidth_method", s.read_bandwidth_method);
  r.get("fma_peak_method", s.fma_peak_method);
  r.get("measured_at", s.measured_at);
  r.get("backend_used", s.backend_used);
  r.get("cuda_available", s.cuda_available);
  r.get("cuda_reason", s.cuda_reason);
  if (const json* bs = r.find("backends")) {
    if (!bs->is_array()) r.fail("backends", "expected an array");
    for (size_t i = 0; i < bs->size(); ++i) {
      ObjReader br((*bs)[i], r.name("backends") + "[" + std::to_string(i) + "]", source);
      BackendStatus b;
      br.get("name", b.name);
      br.get("available", b.available);
      br.get("reason", b.reason);
      br.get("device", b.device);
      s.backends.push_back(std::move(b));
    }
  }
  if (const json* gs = r.find("gpus")) {
    if (!gs->is_array()) r.fail("gpus", "expected an array");
    for (size_t i = 0; i < gs->size(); ++i) {
      ObjReader gr((*gs)[i], r.name("gpus") + "[" + std::to_string(i) + "]", source);
      GpuInfo g;
      gr.get("index", g.index);
      gr.get("name", g.name);
      gr.get("cc_major", g.cc_major);
      gr.get("cc_minor", g.cc_minor);
      gr.get("sm_count", g.sm_count);
      gr.get("memory_bytes", g.memory_bytes);
      gr.get("free_bytes", g.free_bytes);
      gr.get("driver_version", g.driver_version);
      gr.get("runtime_version", g.runtime_version);
      gr.get("pci_bus_id", g.pci_bus_id);
      gr.get("precisions", g.precisions);
      gr.get("precision_note", g.precision_note);
      gr.get("measured", g.measured);
      gr.get("measure_error", g.measure_error);
      gr.get("from_cache", g.from_cache);
      gr.get("bandwidth_bytes_per_s", g.bandwidth_bytes_per_s);
      gr.get("bandwidth_buffer_bytes", g.bandwidth_buffer_bytes);
      gr.get("f16_flops", g.f16_flops);
      gr.get("fp8_flops", g.fp8_flops);
      gr.get("bandwidth_method", g.bandwidth_method);
      gr.get("f16_method", g.f16_method);
      gr.get("fp8_method", g.fp8_method);
      gr.get("quick", g.quick);
      gr.get("measured_at", g.measured_at);
      s.gpus.push_back(std::move(g));
    }
  }
  return s;
}

Percentiles percentiles_from(ObjReader& parent, const std::string& key) {
  Percentiles p;
  const json* j = parent.find(key);
  if (!j) return p;
  ObjReader r(*j, parent.name(key), parent.source());
  r.get("mean", p.mean);
  r.get("p50", p.p50);
  r.get("p90", p.p90);
  r.get("p99", p.p99);
  r.get("max", p.max);
  r.get("count", p.count);
  return p;
}

FinishReason finish_reason_from(const ObjReader& r, const std::string& key, const std::string& s) {
  for (FinishReason f : {FinishReason::None, FinishReason::Length, FinishReason::Stop, FinishReason::Eos,
                         FinishReason::Abort, FinishReason::Error})
    if (s == finish_reason_name(f)) return f;
  r.fail(key, "'" + s + "' is not a finish reason");
}

RequestMetrics request_from(const json& j, const std::string& path, const std::string& source) {
  ObjReader r(j, path, source);
  RequestMetrics q;
  r.get("id", q.request_id);
  r.get("arrival", q.arrival);
  r.get("first_scheduled", q.first_scheduled);
  r.get("first_token", q.first_token);
  r.get("finished", q.finished);
  r.get("prompt_tokens", q.prompt_tokens);
  r.get("output_tokens", q.output_tokens);
  r.get("preemptions", q.preemptions);
  std::string reason = "none";
  r.get("finish_reason", reason);
  q.finish_reason = finish_reason_from(r, "finish_reason", reason);
  r.get("token_times", q.token_times);
  // One per token_times entry; older files have none (an entry is then one token).
  std::vector<double> counts;
  r.get("token_counts", counts);
  if (!counts.empty() && counts.size() != q.token_times.size())
    r.fail("token_counts", "has " + std::to_string(counts.size()) + " entries for " +
                               std::to_string(q.token_times.size()) + " token_times");
  for (double c : counts) {
    if (!(c >= 1) || c != std::floor(c)) r.fail("token_counts", "expected whole numbers >= 1");
    q.token_counts.push_back((int)c);
  }
  if (const json* c = r.find("prefill_chunks")) {
    if (!c->is_array()) r.fail("prefill_chunks", "expected an array");
    for (size_t i = 0; i < c->size(); ++i) {
      ObjReader cr((*c)[i], r.name("prefill_chunks") + "[" + std::to_string(i) + "]", source);
      RequestMetrics::Chunk ch;
      cr.get("start", ch.start);
      cr.get("end", ch.end);
      cr.get("tokens", ch.tokens);
      q.prefill_chunks.push_back(ch);
    }
  }
  r.get("detokenize_s", q.detokenize_s);
  return q;
}

StepMetrics step_from(const json& j, const std::string& path, const std::string& source) {
  ObjReader r(j, path, source);
  StepMetrics s;
  r.get("step", s.step);
  r.get("start", s.start);
  r.get("duration", s.duration);
  r.get("forward", s.forward);
  r.get("running", s.running);
  r.get("waiting", s.waiting);
  r.get("preempted", s.preempted);
  r.get("num_seqs", s.num_seqs);
  r.get("prefill_tokens", s.prefill_tokens);
  r.get("decode_tokens", s.decode_tokens);
  r.get("decode_seqs", s.decode_seqs);
  r.get("spec_proposed_tokens", s.spec_proposed_tokens);
  r.get("spec_accepted_tokens", s.spec_accepted_tokens);
  r.get("padding_tokens", s.padding_tokens);
  r.get("generated_tokens", s.generated_tokens);
  r.get("prefix_query_tokens", s.prefix_query_tokens);
  r.get("prefix_hit_tokens", s.prefix_hit_tokens);
  r.get("kv_blocks_used", s.kv_blocks_used);
  r.get("kv_blocks_total", s.kv_blocks_total);
  r.get("kv_slots_allocated", s.kv_slots_allocated);
  r.get("kv_slots_filled", s.kv_slots_filled);
  return s;
}

json slo_json(const Slo& s) { return {{"ttft_s", s.ttft_s}, {"tpot_s", s.tpot_s}, {"e2e_s", s.e2e_s}}; }

}  // namespace

json result_json(const BenchResult& r, bool with_series) {
  const BenchSummary& s = r.summary;
  json j;
  j["schema"] = "brisk.result";
  j["version"] = 1;
  j["label"] = r.label;
  json settings = json::array();
  for (const auto& [k, v] : r.settings) settings.push_back({{"field", k}, {"value", v}});
  j["settings"] = settings;
  j["repeat"] = r.repeat;
  j["matrix_name"] = r.matrix_name;
  j["created"] = r.created;
  j["error"] = r.error;
  j["brisk_version"] = r.brisk_version;
  j["commit"] = r.commit;
  // A run that failed before its model loaded has no model to describe: the
  // block is left out (config.model names what it tried to load), not written
  // as zeros a reader would take for a model with no layers.
  if (r.error.empty() || !r.model.architecture.empty() || r.model.n_params > 0)
    j["model"] = model_json(r.model);
  j["model_sha256"] = r.model_sha256;
  j["config"] = config_json(r.config);
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
                   {"decode_forward_s", f.decode_forward_s},
                   {"decode_tokens_per_s", f.decode_tokens_per_s},
                   {"decode_bytes_per_step", f.decode_bytes_per_step},
                   {"decode_bandwidth_fraction", f.decode_bandwidth_fraction},
                   {"prefill_steps", f.prefill_steps},
                   {"prefill_tokens_per_s", f.prefill_tokens_per_s},
                   {"prefill_fma_fraction", f.prefill_fma_fraction}};
  const QualityFigures& qf = r.quality;
  if (qf.measured)
    j["quality"] = {{"reference", qf.reference},
                    {"text", qf.text_path},
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
  j["workload"] = workload_json(r.workload);
  j["slo"] = slo_json(r.slo);
  j["summary"] = {{"duration_s", s.duration_s},
                  {"requests", s.requests},
                  {"finished", s.finished},
                  {"errors", s.errors},
                  {"prompt_tokens", s.prompt_tokens},
                  {"generation_tokens", s.generation_tokens},
                  {"prompt_tokens_per_s", s.prompt_tokens_per_s},
                  {"generation_tokens_per_s", s.generation_tokens_per_s},
                  {"requests_per_s", s.requests_per_s},
                  {"goodput_requests_per_s", s.goodput_requests_per_s},
                  {"goodput_fraction", s.goodput_fraction},
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
  return j;
}

BenchResult result_from(const json& j, const std::string& path, const std::string& source) {
  ObjReader r(j, path, source);
  std::string schema = "brisk.result";
  r.get("schema", schema);
  if (schema != "brisk.result") r.fail("schema", "'" + schema + "' is not brisk.result");
  int version = 1;
  r.get("version", version);
  if (version != 1) r.fail("version", std::to_string(version) + " is not a version this Brisk reads (1)");
  BenchResult b;
  r.get("label", b.label);
  if (const json* s = r.find("settings")) {
    if (!s->is_array()) r.fail("settings", "expected an array of {\"field\", \"value\"}");
    for (size_t i = 0; i < s->size(); ++i) {
      ObjReader sr((*s)[i], r.name("settings") + "[" + std::to_string(i) + "]", source);
      std::string k, v;
      sr.get("field", k);
      sr.get("value", v);
      b.settings.emplace_back(k, v);
    }
  }
  r.get("repeat", b.repeat);
  r.get("matrix_name", b.matrix_name);
  r.get("created", b.created);
  r.get("error", b.error);
  r.get("brisk_version", b.brisk_version);
  r.get("commit", b.commit);
  if (const json* m = r.find("model")) b.model = model_from(*m, r.name("model"), source);
  r.get("model_sha256", b.model_sha256);
  if (const json* c = r.find("config")) {
    // A result that does not name fp8_fast_accum was run before the option
    // existed, without fast accumulation (today's default is on).
    EngineConfig before;
    before.fp8_fast_accum = false;
    b.config = config_from(*c, r.name("config"), source, before);
  }
  if (const json* s = r.find("system")) b.system = system_from(*s, r.name("system"), source);
  if (const json* f = r.find("roofline")) {
    ObjReader fr(*f, r.name("roofline"), source);
    RooflineFigures& x = b.roofline;
    fr.get("measured", x.measured);
    fr.get("read_bandwidth_bytes_per_s", x.read_bandwidth_bytes_per_s);
    fr.get("fma_peak_flops", x.fma_peak_flops);
    fr.get("weight_bytes_per_step", x.weight_bytes_per_step);
    fr.get("kv_bytes_per_token", x.kv_bytes_per_token);
    fr.get("matmul_flops_per_token", x.matmul_flops_per_token);
    fr.get("decode_steps", x.decode_steps);
    fr.get("decode_step_s", x.decode_step_s);
    fr.get("decode_forward_s", x.decode_forward_s);
    fr.get("decode_tokens_per_s", x.decode_tokens_per_s);
    fr.get("decode_bytes_per_step", x.decode_bytes_per_step);
    fr.get("decode_bandwidth_fraction", x.decode_bandwidth_fraction);
    fr.get("prefill_steps", x.prefill_steps);
    fr.get("prefill_tokens_per_s", x.prefill_tokens_per_s);
    fr.get("prefill_fma_fraction", x.prefill_fma_fraction);
  }
  if (const json* q = r.find("quality")) {
    ObjReader qr(*q, r.name("quality"), source);
    QualityFigures& x = b.quality;
    x.measured = true;
    qr.get("reference", x.reference);
    qr.get("text", x.text_path);
    qr.get("prompts", x.prompts_path);
    qr.get("perplexity", x.perplexity);
    qr.get("baseline_perplexity", x.baseline_perplexity);
    qr.get("kl_mean", x.kl_mean);
    qr.get("kl_p99", x.kl_p99);
    qr.get("top1_agreement", x.top1_agreement);
    qr.get("tokens_scored", x.tokens_scored);
    qr.get("greedy_agreement", x.greedy_agreement);
    qr.get("mean_identical_prefix", x.mean_identical_prefix);
    qr.get("agreement_prompts", x.agreement_prompts);
    qr.get("agreement_tokens", x.agreement_tokens);
  }
  if (const json* w = r.find("workload")) {
    // A run's workload as it ran. Results written before a trace_path beside another arrival was
    // refused (a rate sweep over a trace workload kept the path its Poisson runs ignored) read without it.
    json wj = *w;
    if (wj.is_object()) {
      const auto arrival = wj.find("arrival");
      if (arrival == wj.end() || (arrival->is_string() && *arrival != "trace")) {
        wj.erase("trace_path");
        wj.erase("trace_times");
      }
    }
    b.workload = workload_from(wj, r.name("workload"), source);
  }
  if (const json* s = r.find("slo")) {
    ObjReader sr(*s, r.name("slo"), source);
    sr.get("ttft_s", b.slo.ttft_s);
    sr.get("tpot_s", b.slo.tpot_s);
    sr.get("e2e_s", b.slo.e2e_s);
  }
  if (const json* sj = r.find("summary")) {
    ObjReader sr(*sj, r.name("summary"), source);
    BenchSummary& s = b.summary;
    sr.get("duration_s", s.duration_s);
    sr.get("requests", s.requests);
    sr.get("finished", s.finished);
    sr.get("errors", s.errors);
    sr.get("prompt_tokens", s.prompt_tokens);
    sr.get("generation_tokens", s.generation_tokens);
    sr.get("prompt_tokens_per_s", s.prompt_tokens_per_s);
    sr.get("generation_tokens_per_s", s.generation_tokens_per_s);
    sr.get("requests_per_s", s.requests_per_s);
    sr.get("goodput_requests_per_s", s.goodput_requests_per_s);
    sr.get("goodput_fraction", s.goodput_fraction);
    s.ttft = percentiles_from(sr, "ttft_s");
    s.tpot = percentiles_from(sr, "tpot_s");
    s.itl = percentiles_from(sr, "itl_s");
    s.e2e = percentiles_from(sr, "e2e_s");
    s.queue = percentiles_from(sr, "queue_s");
    sr.get("kv_occupancy_mean", s.kv_occupancy_mean);
    sr.get("kv_occupancy_peak", s.kv_occupancy_peak);
    sr.get("kv_waste", s.kv_waste);
    sr.get("preemptions", s.preemptions);
    sr.get("padding_tokens", s.padding_tokens);
    sr.get("prefix_cache_hit_rate", s.prefix_cache_hit_rate);
    sr.get("spec_proposed_tokens", s.spec_proposed_tokens);
    sr.get("spec_accepted_tokens", s.spec_accepted_tokens);
    sr.get("spec_acceptance_rate", s.spec_acceptance_rate);
    sr.get("tokens_per_decode_step", s.tokens_per_decode_step);
    sr.get("mean_batch_size", s.mean_batch_size);
    sr.get("steps", s.steps);
  }
  if (const json* q = r.find("requests")) {
    if (!q->is_array()) r.fail("requests", "expected an array");
    for (size_t i = 0; i < q->size(); ++i)
      b.requests.push_back(request_from((*q)[i], r.name("requests") + "[" + std::to_string(i) + "]", source));
  }
  if (const json* s = r.find("steps")) {
    if (!s->is_array()) r.fail("steps", "expected an array");
    for (size_t i = 0; i < s->size(); ++i)
      b.steps.push_back(step_from((*s)[i], r.name("steps") + "[" + std::to_string(i) + "]", source));
  }
  return b;
}

// ---------------------------------------------------------------- misc

void refuse_directory(const std::string& path, const char* what) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw Error(path + ": is a directory, not a " + what);
}

std::string read_text_file(const std::string& path, const char* what) {
  refuse_directory(path, what);
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(path + ": cannot open " + what);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

namespace {

// Calls fn for every non-blank line of a JSONL file with a reader whose
// errors name "PATH:LINE"; the keys fn did not read are then rejected.
void for_each_jsonl_object(const std::string& path, const char* what,
                           const std::function<void(ObjReader&)>& fn) {
  refuse_directory(path, what);
  std::ifstream f(path);
  if (!f) throw Error(path + ": cannot open " + what);
  std::string line;
  for (int n = 1; std::getline(f, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(n);
    json j;
    try {
      j = json::parse(line);
    } catch (const json::exception& e) {
      throw Error(where + ": not a JSON object: " + e.what());
    }
    ObjReader r(j, "", where);
    fn(r);
    r.reject_unknown();
  }
}

// A line's own output length. 0 would read as "use output_len" (the meaning
// of leaving it out) and a negative one the same; both are refused so that a
// line never asks for a length it does not get.
int line_max_tokens(ObjReader& r) {
  const json* p = r.find("max_tokens");
  if (!p) return 0;
  int v = 0;
  r.get("max_tokens", v);
  if (v < 1 || v > 10000000)
    r.fail("max_tokens", p->dump() + " is not a token count in 1..10000000 (leave it out to use output_len)");
  return v;
}

}  // namespace

std::vector<DatasetLine> read_prompt_dataset(const std::string& path) {
  std::vector<DatasetLine> v;
  for_each_jsonl_object(path, "prompt file", [&](ObjReader& r) {
    DatasetLine d;
    if (!r.find("prompt"))
      r.fail("prompt", "missing (each line is {\"prompt\": \"...\", \"max_tokens\": N})");
    r.get("prompt", d.prompt);
    d.max_tokens = line_max_tokens(r);
    v.push_back(std::move(d));
  });
  if (v.empty()) throw Error(path + ": no prompts (one {\"prompt\": ...} object per line)");
  return v;
}

std::vector<TraceFileLine> read_trace(const std::string& path) {
  std::vector<TraceFileLine> v;
  for_each_jsonl_object(path, "trace file", [&](ObjReader& r) {
    TraceFileLine t;
    if (!r.find("timestamp")) r.fail("timestamp", "missing (seconds)");
    r.get("timestamp", t.timestamp);
    if (!(t.timestamp >= 0) || !std::isfinite(t.timestamp))
      r.fail("timestamp", "must be a time >= 0 in seconds");
    if (r.find("prompt")) {
      r.get("prompt", t.prompt);
      t.has_prompt = true;
    }
    t.max_tokens = line_max_tokens(r);
    v.push_back(std::move(t));
  });
  if (v.empty()) throw Error(path + ": no trace lines");
  return v;
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm g{};
  gmtime_r(&t, &g);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &g);
  return buf;
}

}  // namespace brisk::bench

namespace brisk {

std::string to_json(const BenchResult& r, bool with_series) {
  return bench::result_json(r, with_series).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

BenchResult bench_result_from_json(const std::string& text, const std::string& source) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(source + ": not valid JSON: " + e.what());
  }
  return bench::result_from(j, "", source);
}

std::string to_json(const WorkloadSpec& w) { return bench::workload_json(w).dump(2); }

std::string to_json(const EngineConfig& c) { return bench::config_json(c).dump(); }

WorkloadSpec workload_from_json(const std::string& text, const std::string& source) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(source + ": not valid JSON: " + e.what());
  }
  return bench::workload_from(j, "", source);
}

WorkloadSpec load_workload(const std::string& path) {
  return workload_from_json(bench::read_text_file(path, "workload file"), path);
}

std::string results_to_json(const std::vector<BenchResult>& runs) {
  nlohmann::json j = {{"schema", "brisk.results"}, {"version", 1}};
  nlohmann::json a = nlohmann::json::array();
  for (const auto& r : runs) a.push_back(bench::result_json(r, true));
  j["runs"] = std::move(a);
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::vector<BenchResult> results_from_json(const std::string& text, const std::string& source) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(source + ": not valid JSON: " + e.what());
  }
  if (!j.is_object()) throw Error(source + ": expected a JSON object (brisk.results or one brisk.result)");
  // One bare result (brisk-cli bench --json, older files) is a results file of one run.
  if (!j.contains("runs") && j.value("schema", std::string("brisk.result")) == "brisk.result")
    return {bench::result_from(j, "", source)};
  bench::ObjReader r(j, "", source);
  std::string schema;
  r.get("schema", schema);
  if (schema != "brisk.results") r.fail("schema", "'" + schema + "' is not brisk.results");
  int version = 0;
  r.get("version", version);
  if (version != 1) r.fail("version", std::to_string(version) + " is not a version this Brisk reads (1)");
  const nlohmann::json* runs = r.find("runs");
  if (!runs || !runs->is_array()) r.fail("runs", "expected an array of results");
  r.reject_unknown();
  std::vector<BenchResult> out;
  for (size_t i = 0; i < runs->size(); ++i)
    out.push_back(bench::result_from((*runs)[i], "runs[" + std::to_string(i) + "]", source));
  return out;
}

std::vector<BenchResult> load_results(const std::string& path) {
  return results_from_json(bench::read_text_file(path, "results file"), path);
}

}  // namespace brisk
