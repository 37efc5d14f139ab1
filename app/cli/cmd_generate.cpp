#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <set>

#include "brisk/error.h"
#include "brisk/sysinfo.h"
#include "cli/common.h"

namespace brisk::cli {

namespace {

using json = nlohmann::json;

json timings_json(const RequestMetrics& m) {
  return {{"prompt_tokens", m.prompt_tokens},
          {"output_tokens", m.output_tokens},
          {"queue_s", m.queue_time()},
          {"ttft_s", m.ttft()},
          {"tpot_s", m.tpot()},
          {"e2e_s", m.e2e()},
          {"decode_tokens_per_s", std::max(0.0, m.decode_tokens_per_s())}};
}

json logprobs_json(const Engine& e, const std::vector<TokenLogprob>& lps) {
  json out = json::array();
  for (const TokenLogprob& t : lps) {
    json top = json::array();
    for (const auto& [id, lp] : t.top)
      top.push_back({{"token", id}, {"text", e.decode({id})}, {"logprob", lp}});
    out.push_back({{"token", t.token}, {"text", e.decode({t.token})}, {"logprob", t.logprob}, {"top", top}});
  }
  return out;
}

json sequences_json(const std::vector<SequenceOutput>& seqs) {
  json out = json::array();
  for (const SequenceOutput& s : seqs)
    out.push_back({{"index", s.index},
                   {"text", s.text},
                   {"token_ids", s.token_ids},
                   {"cumulative_logprob", s.cumulative_logprob},
                   {"score", s.score},
                   {"finish_reason", finish_reason_name(s.finish_reason)}});
  return out;
}

const RequestMetrics* find_metrics(const Engine& e, uint64_t id) {
  for (const auto& m : e.finished_requests())
    if (m.request_id == id) return &m;
  return nullptr;
}

// Reads a prompts JSONL file: one object per line with "prompt", an optional
// "id" and optional per-request overrides of the sampling flags, each under
// its SamplingParams name. A bad line becomes an error result for that line,
// naming FILE:LINE, the field and the value; the others still run. A key
// that is not one of these is an error too: a typo ("max_token") would
// otherwise run with the flag's value and look like it had worked.
struct PromptLine {
  int line;
  json id;
  std::string prompt;
  SamplingParams params;
  std::string error;
};

constexpr const char* kLineKeys[] = {"prompt",
                                     "id",
                                     "max_tokens",
                                     "temperature",
                                     "top_k",
                                     "top_p",
                                     "min_p",
                                     "repetition_penalty",
                                     "no_repeat_ngram_size",
                                     "seed",
                                     "stop",
                                     "stop_token_ids",
                                     "ignore_eos",
                                     "logit_bias",
                                     "logprobs",
                                     "prompt_logprobs",
                                     "n",
                                     "best_of",
                                     "beam_width",
                                     "length_penalty",
                                     "early_stopping"};

// One line's object. Integers may be written 5 or 5.0, never 5.9 or "5", and
// must fit their field (a seed of -1 would otherwise wrap to 2^64 - 1).
class LineReader {
 public:
  LineReader(const json& j, std::string where) : j_(j), where_(std::move(where)) {}

  [[noreturn]] void fail(const std::string& key, const std::string& why) const {
    throw Error(where_ + ": field '" + key + "': " + why);
  }
  const json* find(const char* key) {
    seen_.insert(key);
    const auto it = j_.find(key);
    return it == j_.end() || it->is_null() ? nullptr : &*it;
  }
  // Any non-negative whole number up to 2^64 - 1 (a seed is a uint64).
  std::optional<uint64_t> whole(const json& v) const {
    if (v.is_number_unsigned()) return v.get<uint64_t>();
    if (v.is_number_integer() && v.get<int64_t>() >= 0) return (uint64_t)v.get<int64_t>();
    if (v.is_number_float()) {
      const double d = v.get<double>();
      if (d >= 0 && d < 18446744073709551616.0 && d == std::floor(d)) return (uint64_t)d;
    }
    return std::nullopt;
  }
  int64_t integer_value(const char* key, const json& v, int64_t lo, int64_t hi) const {
    bool ok = false;
    int64_t x = 0;
    if (v.is_number_unsigned()) {
      ok = v.get<uint64_t>() <= (uint64_t)hi;
      x = ok ? (int64_t)v.get<uint64_t>() : 0;
    } else if (v.is_number_integer()) {
      x = v.get<int64_t>();
      ok = true;
    } else if (v.is_number_float()) {
      const double d = v.get<double>();
      ok = d == std::floor(d) && d >= (double)lo && d <= (double)hi;
      x = ok ? (int64_t)d : 0;
    }
    if (!ok || x < lo || x > hi)
      fail(key,
           "expected an integer in " + std::to_string(lo) + ".." + std::to_string(hi) + ", got " + v.dump());
    return x;
  }
  template <typename T>
  void integer(const char* key, T& out, int64_t lo, int64_t hi) {
    if (const json* v = find(key)) out = (T)integer_value(key, *v, lo, hi);
  }
  void number(const char* key, float& out) {
    if (const json* v = find(key)) {
      if (!v->is_number()) fail(key, "expected a number, got " + v->dump());
      out = v->get<float>();
    }
  }
  void boolean(const char* key, bool& out) {
    if (const json* v = find(key)) {
      if (!v->is_boolean()) fail(key, "expected true or false, got " + v->dump());
      out = v->get<bool>();
    }
  }
  void reject_unknown() const {
    for (const auto& [k, v] : j_.items())
      if (!seen_.count(k)) {
        std::string known;
        for (const char* n : kLineKeys) known += (known.empty() ? "" : ", ") + std::string(n);
        fail(k, "unknown field (a line may set " + known + ")");
      }
  }

 private:
  const json& j_;
  std::string where_;
  std::set<std::string> seen_;
};

void read_line(const json& j, const std::string& where, PromptLine& p) {
  if (!j.is_object()) throw Error(where + ": expected a JSON object with a string field \"prompt\"");
  LineReader r(j, where);
  const json* prompt = r.find("prompt");
  if (!prompt || !prompt->is_string()) r.fail("prompt", "needs a string (the prompt text)");
  p.prompt = prompt->get<std::string>();
  if (const json* id = r.find("id")) p.id = *id;
  SamplingParams& sp = p.params;
  r.integer("max_tokens", sp.max_tokens, 1, 1 << 24);
  r.number("temperature", sp.temperature);
  r.integer("top_k", sp.top_k, 0, 1 << 24);
  r.number("top_p", sp.top_p);
  r.number("min_p", sp.min_p);
  r.number("repetition_penalty", sp.repetition_penalty);
  r.integer("no_repeat_ngram_size", sp.no_repeat_ngram_size, 0, 1 << 20);
  if (const json* v = r.find("seed")) {
    const auto s = r.whole(*v);
    if (!s) r.fail("seed", "expected an integer in 0..18446744073709551615, got " + v->dump());
    sp.seed = *s;
  }
  if (const json* v = r.find("stop")) {
    // A string or a list of strings, as the OpenAI API takes it.
    sp.stop.clear();
    if (v->is_string()) {
      sp.stop.push_back(v->get<std::string>());
    } else {
      if (!v->is_array()) r.fail("stop", "expected a string or an array of strings, got " + v->dump());
      for (const json& x : *v) {
        if (!x.is_string()) r.fail("stop", "expected an array of strings, got " + x.dump());
        sp.stop.push_back(x.get<std::string>());
      }
    }
  }
  if (const json* v = r.find("stop_token_ids")) {
    if (!v->is_array()) r.fail("stop_token_ids", "expected an array of token ids, got " + v->dump());
    sp.stop_token_ids.clear();
    for (const json& x : *v)
      sp.stop_token_ids.push_back((int32_t)r.integer_value("stop_token_ids", x, 0, INT32_MAX));
  }
  r.boolean("ignore_eos", sp.ignore_eos);
  if (const json* v = r.find("logit_bias")) {
    // {"TOKEN_ID": BIAS, ...}, as the OpenAI API takes it.
    if (!v->is_object()) r.fail("logit_bias", "expected an object {\"TOKEN_ID\": BIAS}, got " + v->dump());
    sp.logit_bias.clear();
    for (const auto& [k, b] : v->items()) {
      size_t used = 0;
      long long id = -1;
      try {
        id = std::stoll(k, &used);
      } catch (const std::exception&) {
      }
      if (used != k.size() || id < 0 || id > INT32_MAX)
        r.fail("logit_bias", "key '" + k + "' is not a token id (a non-negative integer)");
      if (!b.is_number()) r.fail("logit_bias", "the bias of token " + k + " is not a number: " + b.dump());
      sp.logit_bias[(int32_t)id] = b.get<float>();
    }
  }
  r.integer("logprobs", sp.logprobs, -1, 20);
  r.integer("prompt_logprobs", sp.prompt_logprobs, -1, 20);
  r.integer("n", sp.n, 1, 64);
  r.integer("best_of", sp.best_of, 0, 64);
  r.integer("beam_width", sp.beam_width, 0, 64);
  r.number("length_penalty", sp.length_penalty);
  r.boolean("early_stopping", sp.early_stopping);
  r.reject_unknown();
  // validate() says "SamplingParams.FIELD = VALUE: why" (a line's value, or a flag's it combines with).
  if (std::string e = sp.validate(); !e.empty()) {
    const std::string prefix = "SamplingParams.";
    if (e.rfind(prefix, 0) == 0)
      e = "field '" + e.substr(prefix.size(), e.find(' ') - prefix.size()) + "'" + e.substr(e.find(' '));
    throw Error(where + ": " + e);
  }
}

std::vector<PromptLine> read_prompts(const std::string& path, const SamplingParams& defaults) {
  refuse_directory(path, "prompts file (JSONL, one {\"prompt\": ...} object per line)");
  std::ifstream f(path);
  if (!f) throw Error(path + ": cannot open");
  std::vector<PromptLine> out;
  std::string s;
  int n = 0;
  while (std::getline(f, s)) {
    ++n;
    if (s.find_first_not_of(" \t\r") == std::string::npos) continue;
    PromptLine p{n, n, "", defaults, ""};
    const std::string where = path + ":" + std::to_string(n);
    try {
      json j;
      try {
        j = json::parse(s);
      } catch (const json::exception& e) {
        throw Error(where + ": not valid JSON: " + e.what());
      }
      read_line(j, where, p);
    } catch (const Error& e) {
      p.error = e.what();
    }
    out.push_back(std::move(p));
  }
  // Nothing to run is not a success: "0 prompts: 0 ok" would hide a wrong path.
  if (out.empty()) throw Error(path + ": no prompts (one {\"prompt\": ...} object per line)");
  return out;
}

}  // namespace

int cmd_generate(const std::vector<std::string>& argv) {
  Args a("generate", "MODEL (-p PROMPT | --prompts FILE.jsonl --out FILE.jsonl) [flags]",
         "Generate text. With -p the text streams to stdout as it is produced; with --prompts every\n"
         "line of the JSONL file is one request, all run together (continuous batching), and one result\n"
         "line per input line is written to --out in input order.\n"
         "MODEL is a .gguf file, a Hugging Face directory, a llama2.c .bin, or 'demo'.");
  a.flag("--prompt", "TEXT", "the prompt");
  a.alias("-p", "--prompt");
  a.flag("--prompts", "FILE.jsonl", "one {\"prompt\": ...} object per line");
  a.flag("--out", "FILE.jsonl", "where --prompts results go");
  a.flag("--json", "", "print one JSON object with token ids, text and timings instead of streaming");
  a.flag("--no-bos", "", "do not prepend the beginning-of-sequence token");
  add_sampling_flags(a);
  a.flag("--n", "N", "sequences to return: parallel samples sharing the prompt's KV blocks (seeds S..S+N-1)",
         "1");
  a.flag("--best-of", "M",
         "sample M sequences and return the N with the highest cumulative log-probability (0 = N)", "0");
  a.flag("--beam-width", "W", "beam search with W beams (temperature ignored); returns the N best; 0 = off",
         "0");
  a.flag("--length-penalty", "L", "beam search: a finished beam scores cumulative log-probability / length^L",
         "1");
  a.flag("--early-stopping", "", "beam search: stop as soon as W hypotheses have finished");
  add_engine_flags(a);
  if (!a.parse(argv)) return 0;
  if (a.positional().size() != 1) throw UsageError("generate takes exactly one MODEL (see --help)");
  if (a.has("--prompt") == a.has("--prompts"))
    throw UsageError("give either -p PROMPT or --prompts FILE.jsonl");
  if (a.has("--prompts") && !a.has("--out")) throw UsageError("--prompts needs --out FILE.jsonl");
  // Flags that would change nothing are refused rather than ignored.
  if (a.has("--out") && !a.has("--prompts"))
    throw UsageError("--out is where --prompts results go; with -p, use --json");
  if (a.has("--prompt") && !a.has("--json"))
    for (const char* f : {"--logprobs", "--prompt-logprobs"})
      if (a.has(f)) throw UsageError(std::string(f) + " needs --json (or --prompts) to be shown");
  SamplingParams params = sampling_from(a);
  params.n = (int)a.integer("--n", 1, 64);
  params.best_of = (int)a.integer("--best-of", 0, 64);
  params.beam_width = (int)a.integer("--beam-width", 0, 64);
  params.length_penalty = (float)a.number("--length-penalty", -10, 10);
  params.early_stopping = a.has("--early-stopping");
  // Several sequences are printed whole at the end, not interleaved as they stream.
  const bool several = params.n > 1 || params.best_of > 1 || params.beam_width > 0;
  if (std::string e = params.validate(); !e.empty())
    throw_usage_naming_flag(e, "SamplingParams",
                            {{"max_tokens", "--max-tokens"},
                             {"temperature", "--temperature"},
                             {"top_k", "--top-k"},
                             {"top_p", "--top-p"},
                             {"min_p", "--min-p"},
                             {"repetition_penalty", "--repetition-penalty"},
                             {"no_repeat_ngram_size", "--no-repeat-ngram-size"},
                             {"logit_bias", "--logit-bias"},
                             {"logprobs", "--logprobs"},
                             {"prompt_logprobs", "--prompt-logprobs"},
                             {"stop", "--stop"},
                             {"n", "--n"},
                             {"best_of", "--best-of"},
                             {"beam_width", "--beam-width"},
                             {"length_penalty", "--length-penalty"}});
  const EngineConfig cfg = engine_config_from(a, a.positional()[0]);
  // Read before the model loads: a wrong path fails at once.
  std::vector<PromptLine> lines;
  if (a.has("--prompts")) lines = read_prompts(a.str("--prompts"), params);
  auto engine = Engine::create(cfg);
  const bool bos = !a.has("--no-bos");
  // What ran the model ("cpu", "cuda"): what --backend asked for, "auto" resolved on this machine.
  const std::string backend_used = resolve_backend(cfg.backend);
  std::string backend_label = backend_used == "cuda" ? "CUDA" : backend_used == "cpu" ? "CPU" : backend_used;
  if (cfg.backend == "auto") backend_label += " (auto)";

  if (a.has("--prompt")) {
    const std::string prompt = a.str("--prompt");
    const std::vector<int32_t> ids = engine->encode(prompt, bos);
    const bool as_json = a.has("--json");
    if (!as_json && engine->model_info().synthetic)
      std::fprintf(stderr, "[synthetic demo model: random weights, the text is gibberish]\n");
    const uint64_t id = engine->add_request(ids, params);
    RequestOutput last;
    std::vector<TokenLogprob> lps, prompt_lps;
    while (engine->has_unfinished()) {
      for (const RequestOutput& o : engine->step()) {
        if (!several) lps.insert(lps.end(), o.new_logprobs.begin(), o.new_logprobs.end());
        prompt_lps.insert(prompt_lps.end(), o.prompt_logprobs.begin(), o.prompt_logprobs.end());
        if (!as_json && !several) {
          std::fwrite(o.new_text.data(), 1, o.new_text.size(), stdout);
          std::fflush(stdout);
        }
        if (o.finished) last = o;
      }
    }
    if (last.finish_reason == FinishReason::Error) {
      if (as_json)
        std::cout << json{{"prompt", prompt},
                          {"prompt_token_ids", ids},
                          {"finish_reason", "error"},
                          {"error", last.error}}
                         .dump(2, ' ', false, json::error_handler_t::replace)
                  << "\n";
      std::fprintf(stderr, "error: %s\n", last.error.c_str());
      return 1;
    }
    const RequestMetrics* m = find_metrics(*engine, id);
    if (as_json) {
      json j = {{"model", engine->model_info().path},
                {"synthetic", engine->model_info().synthetic},
                {"backend", cfg.backend},
                {"backend_used", backend_used},
                {"prompt", prompt},
                {"prompt_token_ids", ids},
                {"token_ids", last.token_ids},
                {"text", last.text},
                {"finish_reason", finish_reason_name(last.finish_reason)},
                {"timings", m ? timings_json(*m) : json()}};
      if (params.logprobs >= 0 && !several) j["logprobs"] = logprobs_json(*engine, lps);
      if (params.prompt_logprobs >= 0) j["prompt_logprobs"] = logprobs_json(*engine, prompt_lps);
      if (several) j["sequences"] = sequences_json(last.sequences);
      std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    } else {
      if (several)
        for (const SequenceOutput& s : last.sequences)
          std::printf("--- sequence %d (cumulative logprob %.4f, score %.4f, finished: %s)\n%s\n", s.index,
                      s.cumulative_logprob, s.score, finish_reason_name(s.finish_reason), s.text.c_str());
      else
        std::printf("\n");
      std::fflush(stdout);  // the summary on stderr comes after the text
      if (m)
        std::fprintf(stderr,
                     "[%d prompt + %d generated tokens, TTFT %.1f ms, %.1f tokens/s, finished: %s · %s]\n",
                     m->prompt_tokens, m->output_tokens, m->ttft() * 1e3,
                     timings_json(*m)["decode_tokens_per_s"].get<double>(),
                     finish_reason_name(last.finish_reason), backend_label.c_str());
    }
    return 0;
  }

  std::ofstream out(a.str("--out"));  // opened first: fail before any work
  if (!out) throw Error(a.str("--out") + ": cannot open for writing");
  std::map<uint64_t, size_t> by_request;
  std::vector<RequestOutput> results(lines.size());
  std::map<uint64_t, std::vector<TokenLogprob>> lps, prompt_lps;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (!lines[i].error.empty()) continue;
    const uint64_t id = engine->add_request(engine->encode(lines[i].prompt, bos), lines[i].params);
    by_request[id] = i;
  }
  while (engine->has_unfinished()) {
    for (const RequestOutput& o : engine->step()) {
      auto& v = lps[o.request_id];
      v.insert(v.end(), o.new_logprobs.begin(), o.new_logprobs.end());
      auto& pv = prompt_lps[o.request_id];
      pv.insert(pv.end(), o.prompt_logprobs.begin(), o.prompt_logprobs.end());
      if (o.finished) results[by_request.at(o.request_id)] = o;
    }
  }
  int errors = 0;
  std::string first_error;
  for (const auto& [id, i] : by_request) results[i].request_id = id;
  for (size_t i = 0; i < lines.size(); ++i) {
    json j = {{"id", lines[i].id}, {"prompt", lines[i].prompt}};
    if (!lines[i].error.empty()) {
      j["error"] = lines[i].error;
      ++errors;
    } else {
      const RequestOutput& o = results[i];
      j["text"] = o.text;
      j["token_ids"] = o.token_ids;
      j["finish_reason"] = finish_reason_name(o.finish_reason);
      if (o.finish_reason == FinishReason::Error) {
        // The engine names its own request id ("request 5 rejected: ..."),
        // which is not the line; name the line as the reading errors do.
        std::string e = o.error;
        const std::string engine_id = "request " + std::to_string(o.request_id) + " ";
        if (e.rfind(engine_id, 0) == 0) e = e.substr(engine_id.size());
        j["error"] = a.str("--prompts") + ":" + std::to_string(lines[i].line) + ": " + e;
        ++errors;
      }
      if (const RequestMetrics* m = find_metrics(*engine, o.request_id)) j["timings"] = timings_json(*m);
      // A line may ask for several sequences (n, best_of, beam_width) where the flags did not.
      const SamplingParams& lp = lines[i].params;
      const bool line_several = lp.n > 1 || lp.best_of > 1 || lp.beam_width > 0;
      if (lp.logprobs >= 0 && !line_several) j["logprobs"] = logprobs_json(*engine, lps[o.request_id]);
      if (lp.prompt_logprobs >= 0) j["prompt_logprobs"] = logprobs_json(*engine, prompt_lps[o.request_id]);
      if (line_several) j["sequences"] = sequences_json(o.sequences);
    }
    if (first_error.empty() && j.contains("error")) first_error = j["error"];
    out << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  }
  // A line the engine refused is an error, not a finished request.
  std::fprintf(stderr, "%zu prompts: %zu ok, %d errors -> %s · %s\n", lines.size(), lines.size() - errors,
               errors, a.str("--out").c_str(), backend_label.c_str());
  if (!first_error.empty()) std::fprintf(stderr, "first error: %s\n", first_error.c_str());
  return errors ? 1 : 0;
}

}  // namespace brisk::cli
