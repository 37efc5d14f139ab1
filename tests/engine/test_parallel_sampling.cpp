// Parallel sampling (n, best_of): the prompt is prefilled once and its KV
// blocks are shared by every sequence; sequence i must equal a lone request
// seeded seed + i, token for token (kernels are batch-invariant), and its
// cumulative log-probability must be the sum of that run's token logprobs.
#include <QtTest>
#include <map>

#include "brisk/engine.h"

namespace {

constexpr uint64_t kSeed = 1234;

brisk::EngineConfig demo_config() {
  brisk::EngineConfig c;
  c.model = "demo";
  c.threads = 2;
  c.block_size = 16;
  c.num_kv_blocks = 256;
  c.enable_prefix_caching = false;  // block counts below are the forks' alone
  return c;
}

std::vector<int32_t> prompt_ids() {
  // 41 tokens: two full blocks and a partial one.
  std::vector<int32_t> p = {1};
  uint32_t s = 99;
  for (int k = 0; k < 40; ++k) {
    s = s * 1664525u + 1013904223u;
    p.push_back(3 + (int32_t)(s >> 8) % 400);
  }
  return p;
}

brisk::SamplingParams sampled(int n, int best_of = 0) {
  brisk::SamplingParams p;
  p.temperature = 0.8f;
  p.max_tokens = 24;
  p.seed = kSeed;
  p.n = n;
  p.best_of = best_of;
  return p;
}

struct Lone {
  std::vector<int32_t> tokens;
  std::string text;
  double cum = 0;
  brisk::FinishReason reason = brisk::FinishReason::None;
};

Lone run_alone(brisk::Engine& e, const std::vector<int32_t>& prompt, uint64_t seed) {
  brisk::SamplingParams p = sampled(1);
  p.seed = seed;
  p.logprobs = 0;
  e.add_request(prompt, p);
  Lone l;
  while (e.has_unfinished())
    for (const auto& o : e.step()) {
      for (const auto& lp : o.new_logprobs) l.cum += lp.logprob;
      if (o.finished) {
        l.tokens = o.token_ids;
        l.text = o.text;
        l.reason = o.finish_reason;
      }
    }
  return l;
}

brisk::RequestOutput run_group(brisk::Engine& e, const std::vector<int32_t>& prompt,
                               const brisk::SamplingParams& p,
                               std::map<int, std::vector<int32_t>>* streamed = nullptr) {
  const uint64_t id = e.add_request(prompt, p);
  brisk::RequestOutput final;
  while (e.has_unfinished())
    for (const auto& o : e.step()) {
      if (o.request_id != id) continue;
      if (streamed) {
        auto& v = (*streamed)[o.seq_index];
        v.insert(v.end(), o.new_token_ids.begin(), o.new_token_ids.end());
      }
      if (o.finished) final = o;
    }
  return final;
}

void expect_all_free(brisk::Engine& e) {
  for (const auto& b : e.kv_blocks()) {
    QCOMPARE(b.owner, int64_t(-1));
    QCOMPARE(b.refcount, 0);
  }
}

}  // namespace

class ParallelSampling : public QObject {
  Q_OBJECT

  std::unique_ptr<brisk::Engine> e_;
  std::vector<Lone> lone_;  // seeds kSeed + 0..3

 private slots:
  void initTestCase() {
    e_ = brisk::Engine::create(demo_config());
    for (int i = 0; i < 4; ++i) lone_.push_back(run_alone(*e_, prompt_ids(), kSeed + i));
    // The seeds must actually give different samples, or the test proves little.
    QVERIFY(lone_[0].tokens != lone_[1].tokens && lone_[1].tokens != lone_[2].tokens);
  }

  void equalsSeparatelySeededRuns() {
    std::map<int, std::vector<int32_t>> streamed;
    const brisk::RequestOutput o = run_group(*e_, prompt_ids(), sampled(4), &streamed);
    QCOMPARE(o.finish_reason == brisk::FinishReason::Error, false);
    QCOMPARE((int)o.sequences.size(), 4);
    std::vector<bool> seen(4, false);
    for (const auto& s : o.sequences) {
      QVERIFY(s.index >= 0 && s.index < 4 && !seen[s.index]);
      seen[s.index] = true;
      QVERIFY2(s.token_ids == lone_[s.index].tokens, ("sequence " + std::to_string(s.index)).c_str());
      QCOMPARE(s.finish_reason, lone_[s.index].reason);
      // Both sum the same float log-probabilities in the same order.
      QVERIFY(std::fabs(s.cumulative_logprob - lone_[s.index].cum) < 1e-9);
      QCOMPARE(s.score, s.cumulative_logprob);
      QCOMPARE(streamed[s.index], s.token_ids);
      QCOMPARE(s.text, lone_[s.index].text);
    }
    for (size_t i = 1; i < o.sequences.size(); ++i)
      QVERIFY(o.sequences[i - 1].cumulative_logprob >= o.sequences[i].cumulative_logprob);
    QCOMPARE(o.token_ids, o.sequences[0].token_ids);
    QCOMPARE(o.text, o.sequences[0].text);
    expect_all_free(*e_);
  }

  void bestOfReturnsTheBest() {
    const brisk::RequestOutput o = run_group(*e_, prompt_ids(), sampled(2, 4));
    QCOMPARE((int)o.sequences.size(), 2);
    std::vector<int> order = {0, 1, 2, 3};
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return lone_[a].cum > lone_[b].cum; });
    for (int k = 0; k < 2; ++k) {
      QCOMPARE(o.sequences[k].index, order[k]);
      QVERIFY(o.sequences[k].token_ids == lone_[order[k]].tokens);
    }
    QVERIFY(o.sequences[0].cumulative_logprob >= o.sequences[1].cumulative_logprob);
    QCOMPARE(o.token_ids, o.sequences[0].token_ids);
    expect_all_free(*e_);
  }

  // Timings are per sequence, as if each were a request of its own: a step
  // that gives each of 4 sequences a token is one entry of the request's
  // timeline (4 tokens), and the gap to the next such step is what every
  // sequence waits, not 0 for three of them. Token counts stay whole.
  void timingsArePerSequence() {
    auto e = brisk::Engine::create(demo_config());
    const uint64_t id = e->add_request(prompt_ids(), sampled(3, 4));
    std::vector<int> per_step;  // the request's tokens in each step that gave it any
    while (e->has_unfinished()) {
      int n = 0;
      for (const auto& o : e->step())
        if (o.request_id == id) n += (int)o.new_token_ids.size();
      if (n > 0) per_step.push_back(n);
    }
    QCOMPARE(per_step.front(), 4);  // every sequence's first token comes from the prompt's step
    int total = 0;
    for (int n : per_step) total += n;
    const brisk::RequestMetrics& m = e->finished_requests().back();
    QCOMPARE(m.request_id, id);
    QCOMPARE(m.output_tokens, total);  // tok/s still counts every sampled token
    QCOMPARE(m.token_times.size(), per_step.size());
    for (size_t i = 1; i < m.token_times.size(); ++i) QVERIFY(m.token_times[i] > m.token_times[i - 1]);
    // Each step adds a token to every live sequence: the longest has one per entry.
    QCOMPARE(m.tpot(), (m.token_times.back() - m.token_times.front()) / (double)(per_step.size() - 1));
    const brisk::MetricsSnapshot snap = e->metrics();
    QCOMPARE(snap.generation_tokens, (uint64_t)total);
    QCOMPARE(snap.itl.count, (int)per_step.size() - 1);
    QVERIFY(snap.itl.p50 > 0);
    QCOMPARE(m.token_counts, per_step);
    QCOMPARE(m.sequences(), 4);
    int stepped = 0;
    for (const brisk::StepMetrics& st : e->step_history()) stepped += st.generated_tokens;
    QCOMPARE(stepped, total);
  }

  void promptBlocksAreShared() {
    const std::vector<int32_t> prompt = prompt_ids();
    const int full = (int)prompt.size() / 16;
    brisk::SamplingParams p = sampled(4);
    p.ignore_eos = true;
    p.max_tokens = 20;
    int64_t single_peak = 0, group_peak = 0;
    {
      auto e = brisk::Engine::create(demo_config());
      brisk::SamplingParams one = p;
      one.n = 1;
      e->add_request(prompt, one);
      while (e->has_unfinished()) {
        e->step();
        single_peak = std::max(single_peak, e->metrics().kv_blocks_used);
      }
    }
    auto e = brisk::Engine::create(demo_config());
    const uint64_t id = e->add_request(prompt, p);
    int steps_shared = 0;
    while (e->has_unfinished()) {
      for (const auto& o : e->step()) QVERIFY(o.finish_reason != brisk::FinishReason::Error);
      group_peak = std::max(group_peak, e->metrics().kv_blocks_used);
      if (!e->has_unfinished()) break;
      // Every full prompt block is held once, by all four sequences.
      int shared = 0;
      for (const auto& b : e->kv_blocks())
        if (b.refcount == 4) {
          QCOMPARE(b.owner, (int64_t)id);
          ++shared;
        }
      QVERIFY2(shared >= full, ("step with " + std::to_string(shared) + " blocks shared by 4").c_str());
      ++steps_shared;
    }
    QVERIFY(steps_shared >= 10);
    QVERIFY2(group_peak < 4 * single_peak,
             (std::to_string(group_peak) + " blocks vs " + std::to_string(single_peak) + " alone").c_str());
    // Four sequences of 41 + 20 tokens, prompt blocks shared: 2 + 4 * 2 blocks.
    QCOMPARE(group_peak, int64_t(full + 4 * 2));
    expect_all_free(*e);
  }

  void abortFreesEverything() {
    auto e = brisk::Engine::create(demo_config());
    const uint64_t id = e->add_request(prompt_ids(), sampled(4));
    for (int i = 0; i < 3; ++i) e->step();
    QVERIFY(e->metrics().kv_blocks_used > 0);
    e->abort(id);
    bool aborted = false;
    for (const auto& o : e->step())
      if (o.request_id == id && o.finished) {
        aborted = o.finish_reason == brisk::FinishReason::Abort;
        QCOMPARE((int)o.sequences.size(), 4);
      }
    QVERIFY(aborted);
    QVERIFY(!e->has_unfinished());
    QCOMPARE(e->metrics().kv_blocks_used, int64_t(0));
    expect_all_free(*e);
  }

  void alongsideOtherRequests() {
    // A greedy request, a seeded single one and two groups share steps; a
    // small cache forces preemptions of some sequences on the way.
    brisk::EngineConfig cfg = demo_config();
    cfg.num_kv_blocks = 14;
    cfg.max_num_seqs = 8;
    auto e = brisk::Engine::create(cfg);
    const std::vector<int32_t> prompt = prompt_ids();
    std::vector<int32_t> other = {1, 50, 60, 70, 80, 90};
    brisk::SamplingParams greedy;
    greedy.max_tokens = 30;
    brisk::SamplingParams three = sampled(3);
    three.seed = kSeed;
    const uint64_t a = e->add_request(other, greedy);
    const uint64_t b = e->add_request(prompt, three);
    const uint64_t c = e->add_request(prompt, sampled(1));
    const uint64_t d = e->add_request(other, sampled(2));
    std::map<uint64_t, brisk::RequestOutput> got;
    while (e->has_unfinished())
      for (const auto& o : e->step()) {
        QVERIFY2(o.finish_reason != brisk::FinishReason::Error, o.error.c_str());
        if (o.finished) got[o.request_id] = o;
      }
    QCOMPARE((int)got.size(), 4);
    auto solo = brisk::Engine::create(demo_config());
    {
      brisk::RequestOutput g = run_group(*solo, other, greedy);
      QCOMPARE(got[a].token_ids, g.token_ids);
      QVERIFY(got[a].sequences.empty());
    }
    QCOMPARE((int)got[b].sequences.size(), 3);
    for (const auto& s : got[b].sequences) QVERIFY(s.token_ids == lone_[s.index].tokens);
    QCOMPARE(got[c].token_ids, lone_[0].tokens);
    QCOMPARE((int)got[d].sequences.size(), 2);
    for (const auto& s : got[d].sequences)
      QCOMPARE(s.token_ids, run_alone(*solo, other, kSeed + s.index).tokens);
    expect_all_free(*e);
  }

  void badParamsAreNamed() {
    auto check = [&](brisk::SamplingParams p, const char* field) {
      const uint64_t id = e_->add_request(prompt_ids(), p);
      bool named = false;
      while (e_->has_unfinished())
        for (const auto& o : e_->step())
          if (o.request_id == id)
            named = o.finish_reason == brisk::FinishReason::Error && o.error.find(field) != std::string::npos;
      QVERIFY2(named, field);
    };
    brisk::SamplingParams p;
    p.n = 0;
    check(p, "SamplingParams.n");
    p.n = 3;
    p.best_of = 2;
    check(p, "SamplingParams.best_of");
    p = {};
    p.beam_width = 2;
    p.n = 3;
    check(p, "SamplingParams.n");
    p = {};
    p.n = 65;
    check(p, "SamplingParams.n");
    p = {};
    p.best_of = 40;  // over the engine's max_num_seqs (32)
    check(p, "max_num_seqs");
  }
};

QTEST_APPLESS_MAIN(ParallelSampling)
#include "test_parallel_sampling.moc"
