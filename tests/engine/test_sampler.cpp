// The sampler on hand-made logits: greedy, temperature, top-k/top-p/min-p
// filtering, repetition penalty, and seeded reproducibility.
#include <QtTest>
#include <cmath>
#include <map>
#include <random>

#include "sample/sampler.h"

using brisk::SamplingParams;

namespace {

std::map<int32_t, int> histogram(std::vector<float> logits, const SamplingParams& p, int draws, uint64_t seed = 1) {
  std::mt19937_64 rng(seed);
  std::map<int32_t, int> h;
  for (int i = 0; i < draws; ++i) {
    std::vector<float> l = logits;
    h[brisk::sample_token(l.data(), (int)l.size(), p, rng, {}, {})]++;
  }
  return h;
}

}  // namespace

class TestSampler : public QObject {
  Q_OBJECT

 private slots:
  void greedyPicksTheArgmaxAndBreaksTiesLow() {
    SamplingParams p;
    std::mt19937_64 rng(0);
    std::vector<float> l = {0.1f, 2.0f, -1.0f, 2.0f};
    QCOMPARE(brisk::sample_token(l.data(), 4, p, rng, {}, {}), 1);
  }

  // The vectorised argmax against a plain scan on random rows: every
  // length around the 16-lane width, ties, -inf and NaN entries.
  void argmaxMatchesAScan() {
    auto scan = [](const float* x, int n) {
      int best = 0;
      for (int i = 1; i < n; ++i)
        if (x[i] > x[best]) best = i;
      return best;
    };
    std::mt19937 rng(11);
    std::uniform_int_distribution<int> small(-3, 3);  // few distinct values: many ties
    std::uniform_real_distribution<float> u(-10.0f, 10.0f);
    int cases = 0;
    for (int n : {1, 2, 15, 16, 17, 31, 33, 100, 32000}) {
      for (int trial = 0; trial < 40; ++trial) {
        std::vector<float> x(n);
        for (float& v : x) v = trial % 2 ? (float)small(rng) : u(rng);
        if (trial % 5 == 1) x[rng() % n] = NAN;
        if (trial % 5 == 2) x[rng() % n] = -INFINITY;
        if (trial % 7 == 3) std::fill(x.begin(), x.end(), -INFINITY);
        if (trial % 11 == 4) x[0] = NAN;
        QCOMPARE(brisk::argmax(x.data(), n), scan(x.data(), n));
        ++cases;
      }
    }
    QCOMPARE(cases, 9 * 40);
  }

  void temperatureSamplingFollowsTheSoftmax() {
    SamplingParams p;
    p.temperature = 1.0f;
    const std::vector<float> l = {std::log(0.5f), std::log(0.3f), std::log(0.2f)};
    const auto h = histogram(l, p, 20000);
    QVERIFY(std::abs(h.at(0) / 20000.0 - 0.5) < 0.02);
    QVERIFY(std::abs(h.at(1) / 20000.0 - 0.3) < 0.02);
    QVERIFY(std::abs(h.at(2) / 20000.0 - 0.2) < 0.02);
    // A low temperature sharpens the distribution.
    p.temperature = 0.25f;
    QVERIFY(histogram(l, p, 5000).at(0) > 4000);
  }

  void topKTopPAndMinPCutTheTail() {
    const std::vector<float> l = {std::log(0.4f), std::log(0.3f), std::log(0.2f), std::log(0.1f)};
    SamplingParams p;
    p.temperature = 1.0f;
    p.top_k = 2;
    auto h = histogram(l, p, 5000);
    QCOMPARE(h.size(), size_t(2));
    QVERIFY(h.count(0) && h.count(1));
    p.top_k = 0;
    p.top_p = 0.65f;  // 0.4 + 0.3 >= 0.65: two tokens
    h = histogram(l, p, 5000);
    QCOMPARE(h.size(), size_t(2));
    p.top_p = 1.0f;
    p.min_p = 0.6f;  // keep p >= 0.24: tokens 0 and 1
    h = histogram(l, p, 5000);
    QCOMPARE(h.size(), size_t(2));
    QVERIFY(std::abs(h.at(0) / 5000.0 - 4.0 / 7.0) < 0.03);  // renormalised over the survivors
  }

  void repetitionPenaltyDiscouragesSeenTokens() {
    SamplingParams p;
    p.repetition_penalty = 4.0f;
    std::mt19937_64 rng(0);
    std::vector<float> l = {1.0f, 3.0f, 2.0f, -1.0f};
    // Token 1 was seen: 3/4 < 2, so token 2 wins; token 3's negative logit grows more negative.
    QCOMPARE(brisk::sample_token(l.data(), 4, p, rng, {1}, {3}), 2);
    QCOMPARE(l[3], -4.0f);
  }

  void logitBiasAndNoRepeatNgram() {
    SamplingParams p;
    std::mt19937_64 rng(0);
    std::vector<float> l = {0.0f, 5.0f, 1.0f, 2.0f};
    p.logit_bias = {{1, -100.0f}};
    QCOMPARE(brisk::sample_token(l.data(), 4, p, rng, {}, {}), 3);  // token 1 banned in practice
    p.logit_bias.clear();
    p.no_repeat_ngram_size = 3;
    // History ... 1 3 1 | ... 1 3: the trigram "1 3 1" exists, so 1 may not follow "1 3".
    l = {0.0f, 5.0f, 1.0f, 2.0f};
    QCOMPARE(brisk::sample_token(l.data(), 4, p, rng, {1, 3, 1}, {2, 1, 3}), 3);
    QCOMPARE(l[1], -INFINITY);
    // No earlier occurrence of the suffix: nothing is banned.
    l = {0.0f, 5.0f, 1.0f, 2.0f};
    QCOMPARE(brisk::sample_token(l.data(), 4, p, rng, {1, 3, 1}, {2, 2}), 1);
    p.no_repeat_ngram_size = -1;
    QVERIFY(p.validate().find("no_repeat_ngram_size") != std::string::npos);
  }

  void theSameSeedGivesTheSameTokens() {
    SamplingParams p;
    p.temperature = 0.9f;
    p.top_p = 0.9f;
    std::vector<float> base(257);
    for (size_t i = 0; i < base.size(); ++i) base[i] = std::sin((float)i * 0.37f) * 3;
    auto run = [&](uint64_t seed) {
      std::mt19937_64 rng(seed);
      std::vector<int32_t> out;
      for (int i = 0; i < 64; ++i) {
        std::vector<float> l = base;
        out.push_back(brisk::sample_token(l.data(), (int)l.size(), p, rng, {}, out));
      }
      return out;
    };
    QCOMPARE(run(7), run(7));
    QVERIFY(run(7) != run(8));
  }
};

QTEST_APPLESS_MAIN(TestSampler)
#include "test_sampler.moc"
