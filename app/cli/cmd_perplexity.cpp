// brisk-cli perplexity and agreement: the quality half of judging a precision.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "brisk/bench_matrix.h"
#include "brisk/error.h"
#include "brisk/model_tools.h"
#include "brisk/quality.h"
#include "cli/common.h"

namespace brisk::cli {

namespace {

using json = nlohmann::json;

std::string dtypes(const EngineConfig& c) {
  std::string s = "weights " + c.weight_dtype + ", kv " + c.kv_dtype;
  if (c.int8_activations) s += ", w8a8";
  if (c.quantize_embeddings) s += ", embeddings quantized";
  if (c.fp8_per_tensor_scale) s += ", fp8 per-tensor";
  return s;
}

// A file that already stores quantized matrices (brisk quantize wrote it, or
// Q8_0 / INT8 / FP8 tensors): its "F32 baseline" is those weights widened,
// so agreement with it measures the run's arithmetic, not what quantizing
// cost. Empty when the file holds float weights.
std::string quantized_file_note(const EngineConfig& c) {
  const ModelInfo m = inspect_model(c.model, c.tokenizer);
  std::string stored = m.file_conversion;
  for (const TensorInfo& t : m.tensors)
    if (stored.empty() && (t.dtype == "I8" || t.dtype == "Q8_0" || t.dtype.rfind("F8", 0) == 0)) stored = t.dtype;
  if (stored.empty()) return "";
  return c.model + " stores quantized weights (" + stored +
         "): the F32 baseline is those weights widened, so these figures measure this configuration's "
         "arithmetic, not what quantizing cost; run the unquantized model with --dtype for that";
}

}  // namespace

int cmd_perplexity(const std::vector<std::string>& argv) {
  Args a("perplexity",
         "MODEL --text FILE [--context N] [--stride N] [--save-logits FILE] [--baseline-logits FILE]",
         "Perplexity of a text file under the model, with a sliding window (Hugging Face's strided\n"
         "perplexity: windows of --context tokens every --stride tokens, each scoring only the tokens\n"
         "the previous one did not). --save-logits writes every scored position's log-probabilities;\n"
         "--baseline-logits compares this run with such a file (same model, text, --context, --stride):\n"
         "KL divergence per token and top-1 agreement. Typical use: save with --dtype f32, then run\n"
         "each lower precision against that file.");
  a.flag("--text", "FILE", "the text to score (UTF-8)");
  a.flag("--context", "N", "window length in tokens (0 = min(512, the model's context))", "0");
  a.flag("--stride", "N", "window start advance, less than --context (0 = context / 2)", "0");
  a.flag("--save-logits", "FILE", "write this run's log-probabilities (F16) for a later --baseline-logits");
  a.flag("--baseline-logits", "FILE", "compare against a file written by --save-logits");
  a.flag("--no-bos", "", "do not prepend the beginning-of-sequence token");
  a.flag("--json", "", "print one JSON object");
  add_engine_flags(a);
  if (!a.parse(argv)) return 0;
  if (a.positional().size() != 1) throw UsageError("perplexity takes exactly one MODEL (see --help)");
  if (!a.has("--text")) throw UsageError("missing --text FILE (the text to score)");
  // Windows are scored one at a time, each a fresh sequence in a KV cache
  // sized to it: the scheduler's and the cache size's flags change nothing.
  for (const char* f :
       {"--kv-blocks", "--kv-bytes", "--gpu-memory-utilization", "--max-num-seqs", "--max-num-batched-tokens",
        "--no-chunked-prefill", "--no-prefix-cache", "--policy", "--speculate", "--engine-seed"})
    if (a.has(f))
      throw UsageError(std::string("flag ") + f +
                       ": does not apply to perplexity (one window at a time, in a KV cache sized to it)");
  const EngineConfig cfg = engine_config_from(a, a.positional()[0]);
  PerplexityOptions o;
  o.context = (int)a.integer("--context", 0, 1 << 24);
  o.stride = (int)a.integer("--stride", 0, 1 << 24);
  if (o.context == 1) throw UsageError("flag --context: 1 leaves nothing to score (0 = automatic, or >= 2)");
  if (o.context > 0 && o.stride >= o.context)
    throw UsageError("flag --stride: " + std::to_string(o.stride) + " must be less than --context " +
                     std::to_string(o.context));
  o.save_logits_path = a.str("--save-logits");
  o.baseline_logits_path = a.str("--baseline-logits");
  o.add_bos = !a.has("--no-bos");
  const std::string text_path = a.str("--text");
  const std::string text = read_file(text_path);
  PerplexityResult r;
  try {
    r = evaluate_perplexity(cfg, text, o);
  } catch (const Error& e) {
    // The engine cannot know the file's name; put it where the user looks.
    const std::string m = e.what(), prefix = "perplexity text: ";
    if (m.rfind(prefix, 0) == 0) throw Error(text_path + ": " + m.substr(prefix.size()));
    // Window sizes past this model's context are bad flags, known only once the model is read.
    if (m.rfind("PerplexityOptions.", 0) == 0)
      throw_usage_naming_flag(m, "PerplexityOptions", {{"context", "--context"}, {"stride", "--stride"}});
    throw;
  }

  if (a.has("--json")) {
    json j = {{"model", cfg.model},
              {"config", config_json(cfg)},
              {"text", text_path},
              {"tokens", r.tokens},
              {"tokens_scored", r.tokens_scored},
              {"tokens_evaluated", r.tokens_evaluated},
              {"windows", r.windows},
              {"context", r.context},
              {"stride", r.stride},
              {"perplexity", r.perplexity},
              {"mean_nll", r.mean_nll},
              {"seconds", r.seconds},
              {"tokens_per_s", r.tokens_per_s},
              {"saved_logits", o.save_logits_path.empty() ? json() : json(o.save_logits_path)},
              {"baseline", json()}};
    if (r.has_baseline)
      j["baseline"] = {{"path", o.baseline_logits_path},
                       {"perplexity", r.baseline_perplexity},
                       {"kl_mean", r.kl_mean},
                       {"kl_p99", r.kl_p99},
                       {"kl_max", r.kl_max},
                       {"top1_agreement", r.top1_agreement},
                       {"rms_dp", r.rms_dp}};
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::printf("model:      %s (%s)\n", cfg.model.c_str(), dtypes(cfg).c_str());
  std::printf("text:       %s: %lld tokens, %lld scored in %d windows of %d (stride %d)\n", text_path.c_str(),
              (long long)r.tokens, (long long)r.tokens_scored, r.windows, r.context, r.stride);
  std::printf("perplexity: %.4f  (mean NLL %.4f nats/token)\n", r.perplexity, r.mean_nll);
  std::printf("speed:      %lld tokens evaluated in %.2f s = %.0f tokens/s\n", (long long)r.tokens_evaluated,
              r.seconds, r.tokens_per_s);
  if (!o.save_logits_path.empty()) std::printf("saved:      %s\n", o.save_logits_path.c_str());
  if (r.has_baseline) {
    std::printf("baseline:   %s (perplexity %.4f, %+.4f)\n", o.baseline_logits_path.c_str(),
                r.baseline_perplexity, r.perplexity - r.baseline_perplexity);
    std::printf("KL divergence (baseline || this), nats/token: mean %.6f  p99 %.6f  max %.6f\n", r.kl_mean,
                r.kl_p99, r.kl_max);
    std::printf("top-1 agreement: %.2f %%   RMS dp(correct token): %.5f\n", 100 * r.top1_agreement, r.rms_dp);
  }
  return 0;
}

int cmd_agreement(const std::vector<std::string>& argv) {
  Args a("agreement", "MODEL --prompts FILE [--max-tokens N] [engine flags]",
         "Greedy-token agreement of the configuration the flags give (--dtype, --kv-dtype, --w8a8, ...)\n"
         "with the same model at FP32 weights and FP32 KV cache. The baseline generates --max-tokens\n"
         "greedily per prompt (ignoring EOS); 'agreement' is the fraction of those positions where the\n"
         "test configuration, reading the baseline's sequence, picks the same token. The free-running\n"
         "figures compare the test configuration's own greedy output with the baseline's.\n"
         "FILE: one prompt per line, or JSONL lines {\"prompt\": ...}.");
  a.flag("--prompts", "FILE", "one prompt per line (or JSONL with a \"prompt\" field)");
  a.flag("--max-tokens", "N", "tokens generated per prompt", "200");
  a.flag("--json", "", "print one JSON object");
  add_engine_flags(a);
  if (!a.parse(argv)) return 0;
  if (a.positional().size() != 1) throw UsageError("agreement takes exactly one MODEL (see --help)");
  if (!a.has("--prompts")) throw UsageError("missing --prompts FILE (one prompt per line)");
  const int max_tokens = (int)a.integer("--max-tokens", 1, 1 << 20);
  const EngineConfig test = engine_config_from(a, a.positional()[0]);
  const EngineConfig base = fp32_reference(test);
  const std::vector<std::string> prompts = read_prompt_lines(a.str("--prompts"));
  const AgreementResult r = greedy_agreement(base, test, prompts, max_tokens);
  const std::string note = quantized_file_note(test);

  if (a.has("--json")) {
    json per = json::array();
    for (const PromptAgreement& p : r.per_prompt)
      per.push_back({{"prompt_tokens", p.prompt_tokens},
                     {"agreement", (double)p.agreed / r.max_tokens},
                     {"identical_prefix", p.identical_prefix},
                     {"match_fraction", (double)p.matched / r.max_tokens}});
    const json j = {{"model", test.model},
                    {"baseline", config_json(base)},
                    {"config", config_json(test)},
                    {"prompts", r.prompts},
                    {"max_tokens", r.max_tokens},
                    {"positions", r.positions},
                    {"agreement", r.agreement},
                    {"mean_identical_prefix", r.mean_identical_prefix},
                    {"match_fraction", r.match_fraction},
                    {"seconds", r.seconds},
                    {"baseline_note", note.empty() ? json() : json(note)},
                    {"per_prompt", per}};
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::printf("model:     %s\n", test.model.c_str());
  std::printf("baseline:  %s\n", dtypes(base).c_str());
  std::printf("test:      %s\n", dtypes(test).c_str());
  std::printf("prompts:   %d x %d greedy tokens = %lld positions\n", r.prompts, r.max_tokens,
              (long long)r.positions);
  std::printf("agreement (teacher-forced): %.2f %%\n", 100 * r.agreement);
  std::printf("free-running: mean identical prefix %.1f tokens, position-wise match %.2f %%\n",
              r.mean_identical_prefix, 100 * r.match_fraction);
  std::printf("time:      %.2f s\n", r.seconds);
  if (!note.empty()) std::printf("note:      %s\n", note.c_str());
  return 0;
}

}  // namespace brisk::cli
