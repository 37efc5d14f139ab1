#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>

#include "brisk/error.h"
#include "cli/common.h"

namespace brisk::cli {

namespace {

using json = nlohmann::json;

json timings_json(const RequestMetrics& m) {
  const double decode = m.token_times.size() > 1 ? m.token_times.back() - m.token_times.front() : 0;
  return {{"prompt_tokens", m.prompt_tokens},
          {"output_tokens", m.output_tokens},
          {"queue_s", m.queue_time()},
          {"ttft_s", m.ttft()},
          {"tpot_s", m.tpot()},
          {"e2e_s", m.e2e()},
          {"decode_tokens_per_s", decode > 0 ? (m.token_times.size() - 1) / decode : 0.0}};
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

// Reads a prompts JSONL file: one object per line with "prompt" and
// optional per-request sampling overrides. A bad line becomes an error
// result for that line; the others still run.
struct PromptLine {
  int line;
  json id;
  std::string prompt;
  SamplingParams params;
  std::string error;
};

std::vector<PromptLine> read_prompts(const std::string& path, const SamplingParams& defaults) {
  std::ifstream f(path);
  if (!f) throw Error(path + ": cannot open");
  std::vector<PromptLine> out;
  std::string s;
  int n = 0;
  while (std::getline(f, s)) {
    ++n;
    if (s.find_first_not_of(" \t\r") == std::string::npos) continue;
    PromptLine p{n, n, "", defaults, ""};
    try {
      const json j = json::parse(s);
      if (!j.is_object() || !j.contains("prompt") || !j["prompt"].is_string())
        throw Error("needs an object with a string field \"prompt\"");
      p.prompt = j["prompt"];
      if (j.contains("id")) p.id = j["id"];
      p.params.max_tokens = j.value("max_tokens", defaults.max_tokens);
      p.params.temperature = j.value("temperature", defaults.temperature);
      p.params.top_k = j.value("top_k", defaults.top_k);
      p.params.top_p = j.value("top_p", defaults.top_p);
      p.params.min_p = j.value("min_p", defaults.min_p);
      p.params.logprobs = j.value("logprobs", defaults.logprobs);
      p.params.prompt_logprobs = j.value("prompt_logprobs", defaults.prompt_logprobs);
      if (const std::string e = p.params.validate(); !e.empty()) throw Error(e);
      if (j.contains("seed")) p.params.seed = j["seed"].get<uint64_t>();
      if (j.contains("stop")) p.params.stop = j["stop"].get<std::vector<std::string>>();
    } catch (const std::exception& e) {
      p.error = path + ":" + std::to_string(n) + ": " + e.what();
    }
    out.push_back(std::move(p));
  }
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
  auto engine = Engine::create(cfg);
  const bool bos = !a.has("--no-bos");

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
        std::fprintf(stderr, "[%d prompt + %d generated tokens, TTFT %.1f ms, %.1f tokens/s, finished: %s]\n",
                     m->prompt_tokens, m->output_tokens, m->ttft() * 1e3,
                     timings_json(*m)["decode_tokens_per_s"].get<double>(),
                     finish_reason_name(last.finish_reason));
    }
    return 0;
  }

  std::vector<PromptLine> lines = read_prompts(a.str("--prompts"), params);
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
        j["error"] = o.error;
        ++errors;
      }
      if (const RequestMetrics* m = find_metrics(*engine, o.request_id)) j["timings"] = timings_json(*m);
      if (lines[i].params.logprobs >= 0 && !several)
        j["logprobs"] = logprobs_json(*engine, lps[o.request_id]);
      if (lines[i].params.prompt_logprobs >= 0)
        j["prompt_logprobs"] = logprobs_json(*engine, prompt_lps[o.request_id]);
      if (several) j["sequences"] = sequences_json(o.sequences);
    }
    out << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  }
  // A line the engine refused is an error, not a finished request.
  std::fprintf(stderr, "%zu prompts: %zu ok, %d errors -> %s\n", lines.size(), lines.size() - errors, errors,
               a.str("--out").c_str());
  return errors ? 1 : 0;
}

}  // namespace brisk::cli
