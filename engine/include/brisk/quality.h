// What a precision costs in quality: perplexity of a text (Hugging Face's
// strided sliding window), the KL divergence of every scored position's
// token distribution against a saved baseline run (as llama.cpp's
// perplexity --kl-divergence-base), and greedy-token agreement with a
// baseline configuration.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "brisk/engine_config.h"
#include "brisk/error.h"

namespace brisk {

struct PerplexityOptions {
  int context = 0;  // window length in tokens; 0 = min(512, the model's usable context)
  int stride = 0;   // window start advance; 0 = context / 2. Must be < context
  // Write this run's per-position log-softmax (the scored positions) here.
  std::string save_logits_path;
  // Compare against a file written by save_logits_path: same text, tokenizer,
  // vocabulary, context and stride, or brisk::Error naming the file.
  std::string baseline_logits_path;
  int threads = -1;  // -1 = EngineConfig::threads
  bool add_bos = true;
};

struct PerplexityResult {
  double perplexity = 0;         // exp(mean_nll)
  double mean_nll = 0;           // natural log, per scored token
  int64_t tokens = 0;            // tokens of the text (with BOS)
  int64_t tokens_scored = 0;     // tokens - 1: every token but the first, once
  int64_t tokens_evaluated = 0;  // tokens run through the model (windows overlap)
  int windows = 0;
  int context = 0, stride = 0;
  double seconds = 0;       // forward passes and scoring, not loading
  double tokens_per_s = 0;  // tokens_evaluated / seconds
  // Against the baseline (has_baseline). KL(baseline || this) per scored
  // position, in nats; top1_agreement: fraction of scored positions whose
  // argmax equals the baseline's; rms_dp: RMS over positions of
  // p_this(correct token) - p_baseline(correct token).
  bool has_baseline = false;
  double kl_mean = 0, kl_p99 = 0, kl_max = 0;
  double top1_agreement = 0;
  double rms_dp = 0;
  double baseline_perplexity = 0;  // of the baseline run, from its file
};

// Tokenizes `text`, slides the window over it and scores every token after
// the first exactly once: the first window scores all its tokens but the
// first, each later window only those the previous one did not reach. Each
// window is a fresh sequence (positions from 0). Throws brisk::Error for a
// bad config, options (naming the field), text too short, or a bad file.
PerplexityResult evaluate_perplexity(const EngineConfig& config, const std::string& text,
                                     const PerplexityOptions& options = {});

struct PromptAgreement {
  int prompt_tokens = 0;
  int agreed = 0;            // teacher-forced positions where test argmax == baseline token
  int identical_prefix = 0;  // free-running: leading tokens identical to the baseline's
  int matched = 0;           // free-running: positions with the same token
};

struct AgreementResult {
  int prompts = 0;
  int max_tokens = 0;
  int64_t positions = 0;  // prompts * max_tokens
  // Teacher-forced: the test configuration reads the baseline's greedy
  // sequence; the fraction of positions where its argmax is the baseline's
  // next token. The robust "greedy tokens identical to the FP32 run".
  double agreement = 0;
  // Free-running: the test configuration generates greedily on its own.
  double mean_identical_prefix = 0;  // tokens, averaged over prompts
  double match_fraction = 0;         // position-wise, over all positions
  double seconds = 0;
  std::vector<PromptAgreement> per_prompt;
};

// Generates max_tokens greedily per prompt (with BOS, EOS ignored) with
// `baseline`, then scores `test` against those sequences, teacher-forced and
// free-running. Both configurations must use the same model/tokenizer.
// Throws brisk::Error for bad configs, an empty prompt list, or a prompt
// (named by its index) whose prompt + max_tokens does not fit the context.
AgreementResult greedy_agreement(const EngineConfig& baseline, const EngineConfig& test,
                                 const std::vector<std::string>& prompts, int max_tokens);

}  // namespace brisk
