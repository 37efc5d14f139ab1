// Log-probabilities of generated tokens: consistent with greedy choice,
// normalised, sorted, and independent of batching.
#include <QtTest>
#include <cmath>
#include <filesystem>
#include <map>

#include "brisk/engine.h"
#include "sample/sampler.h"

using namespace brisk;

class TestLogprobs : public QObject {
  Q_OBJECT

  // One log-probability per new token, in every output.
  static std::vector<TokenLogprob> run(Engine& e, const std::string& prompt, SamplingParams p, bool* aligned) {
    e.add_request(prompt, p);
    std::vector<TokenLogprob> out;
    *aligned = true;
    while (e.has_unfinished())
      for (const auto& o : e.step()) {
        *aligned = *aligned && o.new_logprobs.size() == (p.logprobs >= 0 ? o.new_token_ids.size() : size_t(0));
        out.insert(out.end(), o.new_logprobs.begin(), o.new_logprobs.end());
      }
    return out;
  }
  static std::string model_path() {
    const std::string path = std::string(BRISK_SHARED_MODELS) + "/stories260K/stories260K.gguf";
    return std::filesystem::exists(path) ? path : "demo";  // real weights when present, else the demo model
  }

  // Runs one request to the end; returns its prompt logprobs (every event's,
  // concatenated) and how many events carried any.
  static std::vector<TokenLogprob> prompt_lps(Engine& e, const std::vector<int32_t>& ids, SamplingParams p,
                                              int* events_with = nullptr) {
    const uint64_t id = e.add_request(ids, p);
    std::vector<TokenLogprob> out;
    int with = 0;
    while (e.has_unfinished())
      for (const auto& o : e.step()) {
        if (o.request_id != id || o.prompt_logprobs.empty()) continue;
        ++with;
        out.insert(out.end(), o.prompt_logprobs.begin(), o.prompt_logprobs.end());
      }
    if (events_with) *events_with = with;
    return out;
  }

  static void compare(const std::vector<TokenLogprob>& a, const std::vector<TokenLogprob>& b, float tol) {
    QCOMPARE(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      QCOMPARE(a[i].token, b[i].token);
      if (std::abs(a[i].logprob - b[i].logprob) > tol)
        QFAIL(qPrintable(QString("position %1: logprob %2 vs %3").arg(i + 1).arg(a[i].logprob).arg(b[i].logprob)));
      QCOMPARE(a[i].top.size(), b[i].top.size());
      for (size_t j = 0; j < a[i].top.size(); ++j) QVERIFY(std::abs(a[i].top[j].second - b[i].top[j].second) <= tol);
    }
  }

 private slots:
  void handMadeRow() {
    const std::vector<float> l = {std::log(0.5f), std::log(0.25f), std::log(0.125f), std::log(0.125f)};
    const TokenLogprob t = token_logprobs(l.data(), 4, 2, 3);
    QVERIFY(std::abs(t.logprob - std::log(0.125f)) < 1e-6);
    QCOMPARE(t.top.size(), size_t(3));
    QCOMPARE(t.top[0].first, 0);
    QCOMPARE(t.top[1].first, 1);
    QCOMPARE(t.top[2].first, 2);  // tie with 3: the lower id first
    QVERIFY(std::abs(t.top[0].second - std::log(0.5f)) < 1e-6);
  }

  void greedyTokensAreTheMostLikely() {
    const std::string path = std::string(BRISK_SHARED_MODELS) + "/stories260K/stories260K.gguf";
    EngineConfig cfg;
    cfg.threads = 2;
    if (std::filesystem::exists(path)) cfg.model = path;  // real weights when present, else the demo model
    auto e = Engine::create(cfg);
    SamplingParams p;
    p.max_tokens = 40;
    p.logprobs = 5;
    p.ignore_eos = true;
    bool aligned = false;
    const auto lps = run(*e, "Once upon a time", p, &aligned);
    QVERIFY(aligned);
    QCOMPARE((int)lps.size(), 40);
    for (const auto& t : lps) {
      QCOMPARE(t.top.size(), size_t(5));
      QCOMPARE(t.top[0].first, t.token);
      QCOMPARE(t.top[0].second, t.logprob);
      double mass = 0;
      for (size_t i = 0; i < t.top.size(); ++i) {
        QVERIFY(t.top[i].second <= 0);
        if (i) QVERIFY(t.top[i].second <= t.top[i - 1].second);
        mass += std::exp(t.top[i].second);
      }
      QVERIFY(mass <= 1.0 + 1e-5);
    }
    // Sampled tokens carry their own log-probability, which need not be the top one.
    p.temperature = 1.5f;
    p.seed = 3;
    p.logprobs = 0;
    const auto sampled = run(*e, "Once upon a time", p, &aligned);
    QVERIFY(aligned);
    QCOMPARE((int)sampled.size(), 40);
    for (const auto& t : sampled) QVERIFY(t.top.empty() && t.logprob <= 0);
  }

  // A step of plain greedy rows takes its tokens from the backend's argmax
  // (no logits copied back); asking for log-probabilities sends the same
  // rows through the logits and the host's argmax. Both give the same tokens,
  // batched, and with one sampled request beside them (a mixed step takes
  // the logits path for every row).
  void greedyOnTheBackendEqualsTheHostArgmax() {
    EngineConfig cfg;
    cfg.threads = 2;
    cfg.model = model_path();
    auto e = Engine::create(cfg);
    const std::vector<std::string> prompts = {"Once upon a time", "The cat", "Lily and Tom went", "A big red"};
    auto run_all = [&](int logprobs, bool with_sampled) {
      std::map<uint64_t, std::vector<int32_t>> toks;
      std::vector<uint64_t> ids;
      for (const auto& pr : prompts) {
        SamplingParams p;
        p.max_tokens = 24;
        p.ignore_eos = true;
        p.logprobs = logprobs;
        ids.push_back(e->add_request(pr, p));
      }
      if (with_sampled) {
        SamplingParams s;
        s.max_tokens = 8;
        s.temperature = 1.0f;
        s.seed = 5;
        e->add_request("Once", s);
      }
      while (e->has_unfinished())
        for (const auto& o : e->step()) toks[o.request_id].insert(toks[o.request_id].end(), o.new_token_ids.begin(), o.new_token_ids.end());
      std::vector<std::vector<int32_t>> out;
      for (uint64_t id : ids) out.push_back(toks[id]);
      return out;
    };
    const auto fast = run_all(-1, false), host = run_all(0, false), mixed = run_all(-1, true);
    for (size_t i = 0; i < prompts.size(); ++i) {
      QCOMPARE((int)fast[i].size(), 24);
      QCOMPARE(fast[i], host[i]);
      QCOMPARE(fast[i], mixed[i]);
    }
  }

  // Prompt logprobs are teacher-forced next-token log-probabilities: position
  // i equals the log-probability of prompt[i] when prompt[0..i) is the whole
  // prompt and that token is forced as the first generated one (logprobs are
  // taken before the logit bias, so forcing does not change them).
  void promptLogprobsEqualTeacherForcedRuns() {
    EngineConfig cfg;
    cfg.threads = 2;
    cfg.model = model_path();
    auto e = Engine::create(cfg);
    const auto ids = e->encode("Once upon a time there was a little girl named Lily.", true);
    QVERIFY(ids.size() >= 8);
    SamplingParams p;
    p.max_tokens = 2;
    p.prompt_logprobs = 3;
    int events = 0;
    const auto lps = prompt_lps(*e, ids, p, &events);
    QCOMPARE(events, 1);
    QCOMPARE(lps.size(), ids.size() - 1);
    for (size_t i = 1; i < ids.size(); ++i) {
      const TokenLogprob& t = lps[i - 1];
      QCOMPARE(t.token, ids[i]);
      QCOMPARE(t.top.size(), size_t(3));
      QVERIFY(t.logprob <= 0 && t.logprob <= t.top[0].second);
      SamplingParams f;
      f.max_tokens = 1;
      f.logprobs = 3;
      f.ignore_eos = true;
      f.logit_bias[ids[i]] = 100.0f;
      std::vector<int32_t> prefix(ids.begin(), ids.begin() + i);
      e->add_request(prefix, f);
      TokenLogprob forced;
      while (e->has_unfinished())
        for (const auto& o : e->step())
          if (!o.new_logprobs.empty()) forced = o.new_logprobs[0];
      QCOMPARE(forced.token, ids[i]);
      compare({t}, {forced}, 2e-4f);
    }
  }

  // Chunked prefill (the prompt scored over several steps), a prefix already
  // in the cache, and a batch of other requests change nothing.
  void promptLogprobsIndependentOfChunkingCachingAndBatching() {
    EngineConfig cfg;
    cfg.threads = 2;
    cfg.model = model_path();
    auto whole = Engine::create(cfg);
    const auto ids = whole->encode(
        "Once upon a time there was a little girl named Lily. She loved to play outside in the park with her "
        "friends and her big red ball.",
        true);
    SamplingParams p;
    p.max_tokens = 3;
    p.prompt_logprobs = 5;
    const auto ref = prompt_lps(*whole, ids, p);
    QCOMPARE(ref.size(), ids.size() - 1);

    EngineConfig chunked = cfg;
    chunked.max_num_batched_tokens = 7;
    chunked.max_num_seqs = 4;
    auto c = Engine::create(chunked);
    int events = 0;
    compare(prompt_lps(*c, ids, p, &events), ref, 2e-4f);
    QCOMPARE(events, 1);

    // The same prompt again: its blocks are now cached, yet every position is
    // still scored (a prompt_logprobs request computes its whole prompt).
    SamplingParams plain;
    plain.max_tokens = 3;
    prompt_lps(*whole, ids, plain);
    compare(prompt_lps(*whole, ids, p), ref, 2e-4f);

    // Alongside other requests.
    for (int i = 0; i < 3; ++i) whole->add_request("One day", plain);
    compare(prompt_lps(*whole, ids, p), ref, 2e-4f);
  }

  // n = 4 and beam search: the group's prompt is scored once, delivered once.
  void promptLogprobsOncePerGroup() {
    EngineConfig cfg;
    cfg.threads = 2;
    cfg.model = model_path();
    auto e = Engine::create(cfg);
    const auto ids = e->encode("Once upon a time there was a cat", true);
    SamplingParams p;
    p.max_tokens = 4;
    p.prompt_logprobs = 1;
    const auto ref = prompt_lps(*e, ids, p);
    for (int variant = 0; variant < 2; ++variant) {
      SamplingParams q = p;
      if (variant == 0) {
        q.n = 4;
        q.temperature = 1.0f;
        q.seed = 7;
      } else {
        q.beam_width = 3;
      }
      int events = 0;
      compare(prompt_lps(*e, ids, q, &events), ref, 2e-4f);
      QCOMPARE(events, 1);
    }
  }

  void promptLogprobsOutOfRangeIsRejected() {
    SamplingParams p;
    p.prompt_logprobs = 21;
    QVERIFY(p.validate().find("prompt_logprobs") != std::string::npos);
    p.prompt_logprobs = -2;
    QVERIFY(p.validate().find("prompt_logprobs") != std::string::npos);
  }

  void outOfRangeIsRejected() {
    SamplingParams p;
    p.logprobs = 21;
    QVERIFY(p.validate().find("logprobs") != std::string::npos);
  }
};

QTEST_APPLESS_MAIN(TestLogprobs)
#include "test_logprobs.moc"
