// Beam search against a reference written apart from the engine
// (support/reference_beam_search), and against exhaustive search where the
// candidates are few enough to enumerate (all other tokens banned with
// logit_bias, so every continuation of the allowed tokens is scored).
#include <QtTest>
#include <cmath>
#include <map>

#include "brisk/engine.h"
#include "engine/support/reference_beam_search.h"

namespace {

brisk::EngineConfig demo_config() {
  brisk::EngineConfig c;
  c.model = "demo";
  c.threads = 2;
  c.block_size = 16;
  c.num_kv_blocks = 256;
  return c;
}

const std::vector<int32_t> kPrompt = {1,  40, 41, 42, 43, 44, 45, 46, 47, 48,
                                      49, 50, 51, 52, 53, 54, 55, 56, 57};

brisk::SamplingParams beam(int width, int max_tokens, int n = 0) {
  brisk::SamplingParams p;
  p.beam_width = width;
  p.n = n > 0 ? n : width;
  p.max_tokens = max_tokens;
  return p;
}

// Runs every request in one engine (so they share steps) and returns the final outputs.
std::vector<brisk::RequestOutput> run(brisk::Engine& e, const std::vector<brisk::SamplingParams>& ps,
                                      const std::vector<int32_t>& prompt = kPrompt,
                                      int* max_shared = nullptr) {
  std::map<uint64_t, size_t> index;
  for (size_t i = 0; i < ps.size(); ++i) index[e.add_request(prompt, ps[i])] = i;
  std::vector<brisk::RequestOutput> out(ps.size());
  int guard = 0;
  while (e.has_unfinished()) {
    for (auto& o : e.step()) {
      if (o.finish_reason == brisk::FinishReason::Error) throw std::runtime_error(o.error);
      if (o.finished) out[index.at(o.request_id)] = o;
    }
    if (max_shared)
      for (const auto& b : e.kv_blocks()) *max_shared = std::max(*max_shared, b.refcount);
    if (++guard > 1000) throw std::runtime_error("no end");
  }
  return out;
}

void expect_all_free(brisk::Engine& e) {
  for (const auto& b : e.kv_blocks()) QCOMPARE(b.owner, int64_t(-1));
}

}  // namespace

class BeamSearch : public QObject {
  Q_OBJECT

 private slots:
  void matchesReference_data() {
    QTest::addColumn<float>("penalty");
    QTest::addColumn<bool>("early");
    QTest::newRow("lp1") << 1.0f << false;
    QTest::newRow("lp0.5-early") << 0.5f << true;
    QTest::newRow("lp2") << 2.0f << false;
  }
  void matchesReference() {
    QFETCH(float, penalty);
    QFETCH(bool, early);
    auto e = brisk::Engine::create(demo_config());
    const int32_t eos = 2;
    std::vector<brisk::SamplingParams> ps;
    for (int len = 1; len <= 3; ++len)
      for (int w : {1, 2, 4}) {
        brisk::SamplingParams p = beam(w, len);
        p.length_penalty = penalty;
        p.early_stopping = early;
        ps.push_back(p);
      }
    int max_shared = 0;
    const auto got = run(*e, ps, kPrompt, &max_shared);
    QVERIFY2(max_shared > 1, "beams never shared a block");
    expect_all_free(*e);
    for (size_t i = 0; i < ps.size(); ++i) {
      reference::BeamOptions o;
      o.width = ps[i].beam_width;
      o.max_tokens = ps[i].max_tokens;
      o.length_penalty = penalty;
      o.early_stopping = early;
      o.eos = eos;
      const auto want = reference::beam_search(*e, kPrompt, o);
      const std::string what = "W=" + std::to_string(o.width) + " L=" + std::to_string(o.max_tokens);
      QCOMPARE(got[i].sequences.size(), want.size());
      for (size_t k = 0; k < want.size(); ++k) {
        QVERIFY2(got[i].sequences[k].token_ids == want[k].tokens,
                 (what + " beam " + std::to_string(k)).c_str());
        // Both add the same float log-probabilities; 1e-6 allows for order only.
        QVERIFY(std::fabs(got[i].sequences[k].cumulative_logprob - want[k].cum_logprob) < 1e-6);
        QVERIFY(std::fabs(got[i].sequences[k].score - want[k].score) < 1e-6);
        if (k) QVERIFY(got[i].sequences[k - 1].score >= got[i].sequences[k].score);
      }
      QCOMPARE(got[i].token_ids, got[i].sequences[0].token_ids);
    }
  }

  void stopTokensEndBeams() {
    // The end-of-sequence token is rarely likely under the demo model, so a
    // likely token is made the stop token (stop_token_ids end beams as EOS
    // does): hypotheses of different lengths finish, and the length penalty
    // and early stopping decide, as in the reference.
    auto e = brisk::Engine::create(demo_config());
    const int32_t stop = reference::next_tokens(*e, {kPrompt}, 2)[0][1].first;
    std::vector<brisk::SamplingParams> ps;
    for (int w : {2, 3, 4})
      for (float lp : {1.0f, 0.3f, 2.0f})
        for (bool early : {false, true}) {
          brisk::SamplingParams p = beam(w, 6);
          p.ignore_eos = true;
          p.stop_token_ids = {stop};
          p.length_penalty = lp;
          p.early_stopping = early;
          ps.push_back(p);
        }
    const auto got = run(*e, ps);
    expect_all_free(*e);
    int stopped = 0;
    for (size_t i = 0; i < ps.size(); ++i) {
      reference::BeamOptions o;
      o.width = ps[i].beam_width;
      o.max_tokens = ps[i].max_tokens;
      o.length_penalty = ps[i].length_penalty;
      o.early_stopping = ps[i].early_stopping;
      o.eos = stop;
      const auto want = reference::beam_search(*e, kPrompt, o);
      const std::string what = "case " + std::to_string(i);
      QCOMPARE(got[i].sequences.size(), want.size());
      for (size_t k = 0; k < want.size(); ++k) {
        const auto& s = got[i].sequences[k];
        QVERIFY2(s.token_ids == want[k].tokens, (what + " beam " + std::to_string(k)).c_str());
        QVERIFY(std::fabs(s.score - want[k].score) < 1e-6);
        const bool ended = s.token_ids.back() == stop;
        QCOMPARE(s.finish_reason, ended ? brisk::FinishReason::Stop : brisk::FinishReason::Length);
        stopped += ended;
      }
    }
    QVERIFY2(stopped > 0, "no hypothesis ended on the stop token");
  }

  void exhaustiveOnFewTokens_data() {
    QTest::addColumn<int>("allowed");
    QTest::addColumn<int>("len");
    QTest::addColumn<int>("width");
    QTest::newRow("4 tokens, L=1") << 4 << 1 << 4;
    QTest::newRow("4 tokens, L=2") << 4 << 2 << 4;
    QTest::newRow("2 tokens, L=3") << 2 << 3 << 4;
    QTest::newRow("3 tokens, L=3, W=9") << 3 << 3 << 9;
  }
  void exhaustiveOnFewTokens() {
    // With W >= allowed^(L-1) beam search keeps every prefix, so it must
    // find the best of all allowed^L continuations.
    QFETCH(int, allowed);
    QFETCH(int, len);
    QFETCH(int, width);
    auto e = brisk::Engine::create(demo_config());
    const int vocab = e->model_info().vocab_size;
    std::vector<int32_t> tokens;
    for (int i = 0; i < allowed; ++i) tokens.push_back(100 + 37 * i);
    brisk::SamplingParams p = beam(width, len, 1);
    p.ignore_eos = true;
    for (int t = 0; t < vocab; ++t)
      if (std::find(tokens.begin(), tokens.end(), t) == tokens.end()) p.logit_bias[t] = -100.0f;
    const auto got = run(*e, {p});
    QCOMPARE((int)got[0].sequences.size(), 1);

    // Every continuation's log-probability under the distribution renormalised
    // over the allowed tokens (what the -100 bans leave, to within e^-100).
    std::vector<std::vector<int32_t>> seqs = {{}};
    std::vector<double> cums = {0};
    for (int step = 0; step < len; ++step) {
      std::vector<std::vector<int32_t>> next;
      std::vector<double> next_cum;
      for (size_t s = 0; s < seqs.size(); ++s) {
        std::vector<int32_t> ctx = kPrompt;
        ctx.insert(ctx.end(), seqs[s].begin(), seqs[s].end());
        const auto lp = reference::token_logprobs(*e, ctx, tokens);
        double mx = -1e30, sum = 0;
        for (float v : lp) mx = std::max(mx, (double)v);
        for (float v : lp) sum += std::exp(v - mx);
        const double lse = mx + std::log(sum);
        for (int t = 0; t < allowed; ++t) {
          next.push_back(seqs[s]);
          next.back().push_back(tokens[t]);
          next_cum.push_back(cums[s] + lp[t] - lse);
        }
      }
      seqs = next;
      cums = next_cum;
    }
    size_t best = 0, second = 1;
    if (cums[second] > cums[best]) std::swap(best, second);
    for (size_t s = 2; s < seqs.size(); ++s) {
      if (cums[s] > cums[best]) {
        second = best;
        best = s;
      } else if (cums[s] > cums[second]) {
        second = s;
      }
    }
    if (seqs.size() > 1) QVERIFY2(cums[best] - cums[second] > 1e-4, "a near tie: pick other tokens");
    QCOMPARE(got[0].sequences[0].token_ids, seqs[best]);
    QVERIFY(std::fabs(got[0].sequences[0].cumulative_logprob - cums[best]) < 1e-4);
    expect_all_free(*e);
  }

  // A request's output tokens are those of the sequences it returns, not
  // one per beam step: here the best hypothesis is one stop token long, and
  // the search goes on (no live beam is yet provably worse) long after.
  void outputTokensAreTheReturnedSequence() {
    auto e = brisk::Engine::create(demo_config());
    const int32_t stop = reference::next_tokens(*e, {kPrompt}, 1)[0][0].first;
    brisk::SamplingParams p = beam(2, 24, 1);
    p.ignore_eos = true;
    p.stop_token_ids = {stop};
    p.logit_bias = {{stop, 10.0f}};
    const auto got = run(*e, {p});
    int returned = 0;
    for (const auto& s : got[0].sequences) returned += (int)s.token_ids.size();
    QCOMPARE(got[0].token_ids, std::vector<int32_t>{stop});
    const brisk::RequestMetrics& m = e->finished_requests().back();
    QVERIFY2((int)m.token_times.size() > returned,
             "the search ended with its best sequence: nothing to tell apart");
    QCOMPARE(m.output_tokens, returned);
  }

  void deterministicAndFreesBlocks() {
    auto e = brisk::Engine::create(demo_config());
    brisk::SamplingParams p = beam(4, 12, 4);
    p.length_penalty = 0.7f;
    const auto a = run(*e, {p});
    expect_all_free(*e);
    const auto b = run(*e, {p});
    QCOMPARE(a[0].sequences.size(), b[0].sequences.size());
    for (size_t k = 0; k < a[0].sequences.size(); ++k) {
      QCOMPARE(a[0].sequences[k].token_ids, b[0].sequences[k].token_ids);
      QCOMPARE(a[0].sequences[k].score, b[0].sequences[k].score);
      QCOMPARE(a[0].sequences[k].index, (int)k);
    }
    expect_all_free(*e);
  }

  void abortFreesBlocks() {
    auto e = brisk::Engine::create(demo_config());
    const uint64_t id = e->add_request(kPrompt, beam(4, 20));
    for (int i = 0; i < 4; ++i) e->step();
    e->abort(id);
    bool aborted = false;
    for (const auto& o : e->step())
      aborted |= o.request_id == id && o.finish_reason == brisk::FinishReason::Abort;
    QVERIFY(aborted);
    QVERIFY(!e->has_unfinished());
    expect_all_free(*e);
  }

  void survivesPreemption() {
    // A cache too small for every beam at once: beams get preempted and
    // recompute; the result must not change.
    brisk::EngineConfig small = demo_config();
    small.num_kv_blocks = 12;
    small.enable_prefix_caching = false;
    auto e = brisk::Engine::create(small);
    auto big = brisk::Engine::create(demo_config());
    brisk::SamplingParams p = beam(4, 30, 2);
    p.ignore_eos = true;
    std::vector<int32_t> other = {1, 9, 8, 7, 6, 5, 4, 3};
    brisk::SamplingParams greedy;
    greedy.max_tokens = 40;
    greedy.ignore_eos = true;
    const auto got = run(*e, {p, greedy, p});
    const auto want = run(*big, {p});
    QVERIFY(e->metrics().preemptions > 0);
    for (int i : {0, 2}) {
      QCOMPARE(got[i].sequences.size(), want[0].sequences.size());
      for (size_t k = 0; k < want[0].sequences.size(); ++k)
        QCOMPARE(got[i].sequences[k].token_ids, want[0].sequences[k].token_ids);
    }
    expect_all_free(*e);
  }

  void beamsThatCannotAllFitAreRefusedNotStalled() {
    // 8 beams of up to 19 + 63 tokens need 1 + 8 x 5 blocks of 16; the cache has 12.
    brisk::EngineConfig small = demo_config();
    small.num_kv_blocks = 12;
    auto e = brisk::Engine::create(small);
    brisk::SamplingParams p = beam(8, 64, 1);
    p.ignore_eos = true;
    e->add_request(kPrompt, p);
    brisk::SamplingParams greedy;
    greedy.max_tokens = 8;
    e->add_request(kPrompt, greedy);
    int errors = 0, finished = 0;
    for (int step = 0; e->has_unfinished(); ++step) {
      QVERIFY2(step < 1000, "the engine stalled");
      for (const auto& o : e->step()) {
        if (o.finish_reason == brisk::FinishReason::Error) {
          ++errors;
          QVERIFY2(o.error.find("SamplingParams.beam_width = 8") != std::string::npos, o.error.c_str());
          QVERIFY2(o.error.find("KV blocks") != std::string::npos, o.error.c_str());
        } else if (o.finished) {
          ++finished;
          QCOMPARE((int)o.token_ids.size(), 8);  // the other request still runs
        }
      }
    }
    QCOMPARE(errors, 1);
    QCOMPARE(finished, 1);
  }
};

QTEST_APPLESS_MAIN(BeamSearch)
#include "test_beam_search.moc"
