// Greedy-token agreement between two configurations of one model.
#include <algorithm>
#include <chrono>

#include "brisk/engine.h"
#include "brisk/error.h"
#include "brisk/quality.h"
#include "quant/perplexity.h"

namespace brisk {

namespace {

// Greedy continuations of every prompt, all run together; `which` names the
// configuration in errors.
std::vector<std::vector<int32_t>> generate_greedy(Engine& e, const std::vector<std::vector<int32_t>>& prompts,
                                                  int max_tokens, const std::string& which) {
  for (size_t i = 0; i < prompts.size(); ++i)
    if ((int64_t)prompts[i].size() + max_tokens > e.max_model_len())
      throw Error("prompt " + std::to_string(i) + ": " + std::to_string(prompts[i].size()) + " tokens + " +
                  std::to_string(max_tokens) + " to generate exceed the " + which +
                  " configuration's context of " + std::to_string(e.max_model_len()) + " tokens");
  SamplingParams p;
  p.temperature = 0;
  p.max_tokens = max_tokens;
  p.ignore_eos = true;  // every prompt yields max_tokens positions to compare
  std::vector<uint64_t> ids;
  for (const auto& ids_i : prompts) ids.push_back(e.add_request(ids_i, p));
  std::vector<std::vector<int32_t>> out(prompts.size());
  while (e.has_unfinished())
    for (const RequestOutput& o : e.step()) {
      if (!o.finished) continue;
      const size_t i = std::find(ids.begin(), ids.end(), o.request_id) - ids.begin();
      if (i == ids.size()) continue;
      if (o.finish_reason == FinishReason::Error) throw Error("prompt " + std::to_string(i) + ": " + o.error);
      out[i] = o.token_ids;
      if ((int)out[i].size() != max_tokens)
        throw Error("prompt " + std::to_string(i) + ": the " + which + " configuration generated " +
                    std::to_string(out[i].size()) + " tokens, not " + std::to_string(max_tokens) +
                    " (finished: " + finish_reason_name(o.finish_reason) + ")");
    }
  return out;
}

}  // namespace

AgreementResult greedy_agreement(const EngineConfig& baseline, const EngineConfig& test,
                                 const std::vector<std::string>& prompts, int max_tokens) {
  if (prompts.empty()) throw Error("greedy agreement: no prompts");
  if (max_tokens < 1)
    throw Error("greedy agreement: max_tokens = " + std::to_string(max_tokens) + ": must be >= 1");
  for (const EngineConfig* c : {&baseline, &test})
    if (const std::string e = c->validate(); !e.empty())
      throw Error((c == &baseline ? "baseline configuration: " : "test configuration: ") + e);
  const auto t0 = std::chrono::steady_clock::now();

  // One model in memory at a time: baseline engine, test engine, test scorer.
  std::vector<std::vector<int32_t>> prompt_ids, reference, free_run;
  int vocab = 0;
  {
    auto e = Engine::create(baseline);
    for (const std::string& s : prompts) prompt_ids.push_back(e->encode(s, true));
    vocab = e->model_info().vocab_size;
    reference = generate_greedy(*e, prompt_ids, max_tokens, "baseline");
  }
  {
    auto e = Engine::create(test);
    if (e->model_info().vocab_size != vocab || e->encode(prompts[0], true) != prompt_ids[0])
      throw Error("greedy agreement: the test configuration's model/tokenizer (" + test.model +
                  ") differs from the baseline's (" + baseline.model + ")");
    free_run = generate_greedy(*e, prompt_ids, max_tokens, "test");
  }

  AgreementResult r;
  r.prompts = (int)prompts.size();
  r.max_tokens = max_tokens;
  SequenceScorer scorer(test);
  int longest = 0;
  for (const auto& p : prompt_ids) longest = std::max(longest, (int)p.size() + max_tokens - 1);
  scorer.plan(longest);
  const int width = scorer.config().vocab_size;
  int64_t agreed = 0, matched = 0, prefix_sum = 0;
  std::vector<int32_t> seq;
  for (size_t i = 0; i < prompts.size(); ++i) {
    PromptAgreement pa;
    const int np = (int)prompt_ids[i].size();
    pa.prompt_tokens = np;
    // The baseline's sequence without its last token: row np - 1 + j predicts reference[j].
    seq = prompt_ids[i];
    seq.insert(seq.end(), reference[i].begin(), reference[i].end() - 1);
    const std::vector<float>& logits = scorer.run(seq.data(), (int)seq.size(), np - 1, (int)seq.size());
    for (int j = 0; j < max_tokens; ++j)
      pa.agreed += argmax(logits.data() + (size_t)j * width, width) == reference[i][j];
    while (pa.identical_prefix < max_tokens &&
           free_run[i][pa.identical_prefix] == reference[i][pa.identical_prefix])
      ++pa.identical_prefix;
    for (int j = 0; j < max_tokens; ++j) pa.matched += free_run[i][j] == reference[i][j];
    agreed += pa.agreed;
    matched += pa.matched;
    prefix_sum += pa.identical_prefix;
    r.per_prompt.push_back(pa);
  }
  r.positions = (int64_t)r.prompts * max_tokens;
  r.agreement = (double)agreed / r.positions;
  r.match_fraction = (double)matched / r.positions;
  r.mean_identical_prefix = (double)prefix_sum / r.prompts;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace brisk
