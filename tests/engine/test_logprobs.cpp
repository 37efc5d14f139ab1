// Log-probabilities of generated tokens: consistent with greedy choice,
// normalised, sorted, and independent of batching.
#include <QtTest>
#include <cmath>
#include <filesystem>

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

  void outOfRangeIsRejected() {
    SamplingParams p;
    p.logprobs = 21;
    QVERIFY(p.validate().find("logprobs") != std::string::npos);
  }
};

QTEST_APPLESS_MAIN(TestLogprobs)
#include "test_logprobs.moc"
