// A randomized workload through the real brisk::Engine on the tiny synthetic
// model with a KV cache small enough that preemption is routine: random
// arrivals (some prompts too long for the context, some invalid), greedy
// and seeded sampling, stop tokens, random aborts. Checks the event stream
// (one finish per request, nothing after it, token counts within
// max_tokens), the metrics against what was observed, the per-step gauges
// against the configuration, and that everything drains to an empty cache.
#include <QTemporaryDir>
#include <QtTest>
#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "brisk/engine.h"
#include "brisk/model_tools.h"

using brisk::Engine;
using brisk::EngineConfig;
using brisk::FinishReason;
using brisk::RequestOutput;
using brisk::SamplingParams;
using brisk::SchedulerPolicy;

namespace {

// What the test knows about one request it added.
struct Expect {
  std::vector<int32_t> prompt;
  SamplingParams params;
  std::string reject_why;  // non-empty: must finish with Error naming this
  bool abort_sent = false;   // abort() called while it was live
  bool finished = false;
  FinishReason reason = FinishReason::None;
  std::vector<int32_t> tokens;  // accumulated from new_token_ids
  int events = 0;
};

struct Run {
  std::map<uint64_t, Expect> reqs;
  uint64_t added = 0, rejected = 0, aborted = 0;
  bool last_finish_in_step = false;
};

}  // namespace

class TestEngineStress : public QObject {
  Q_OBJECT

 private slots:
  void initTestCase() {
    QVERIFY(dir_.isValid());
    model_ = dir_.filePath("tiny.gguf").toStdString();
    brisk::SyntheticModelSpec spec;
    spec.shape = "tiny";
    spec.seed = 7;
    const brisk::ModelInfo info = brisk::make_synthetic_model_file(spec, model_);
    vocab_ = info.vocab_size;
    context_ = info.context_length;
    QVERIFY(vocab_ > 16);
  }

  void stress_data() {
    QTest::addColumn<int>("policy");
    QTest::addColumn<bool>("chunked");
    QTest::addColumn<int>("max_model_len");
    QTest::addColumn<uint64_t>("seed");
    QTest::addColumn<int>("steps");
    // Continuous with chunked prefill: the context is capped at 40 so some
    // of the 1..60-token prompts are rejected.
    QTest::newRow("continuous/chunked/seed1") << 0 << true << 40 << uint64_t(1) << 2000;
    QTest::newRow("continuous/chunked/seed2") << 0 << true << 0 << uint64_t(2) << 2000;
    // Without chunked prefill the context is one step's budget (32).
    QTest::newRow("continuous/whole/seed3") << 0 << false << 0 << uint64_t(3) << 2000;
    QTest::newRow("static/seed4") << 1 << true << 0 << uint64_t(4) << 2000;
  }

  void stress() {
    QFETCH(int, policy);
    QFETCH(bool, chunked);
    QFETCH(int, max_model_len);
    QFETCH(uint64_t, seed);
    QFETCH(int, steps);

    EngineConfig cfg;
    cfg.model = model_;
    cfg.num_kv_blocks = 24;
    cfg.block_size = 4;
    cfg.max_num_seqs = 8;
    cfg.max_num_batched_tokens = 32;
    cfg.enable_chunked_prefill = chunked;
    cfg.policy = policy ? SchedulerPolicy::Static : SchedulerPolicy::Continuous;
    cfg.max_model_len = max_model_len;
    cfg.threads = 1;
    cfg.seed = seed;
    std::unique_ptr<Engine> engine = Engine::create(cfg);
    QVERIFY(engine);
    int expect_len = std::min<int>(context_, 24 * 4);
    if (max_model_len > 0) expect_len = std::min(expect_len, max_model_len);
    if (!chunked || policy) expect_len = std::min(expect_len, 32);
    QCOMPARE(engine->max_model_len(), expect_len);
    QCOMPARE(engine->num_kv_blocks(), int64_t(24));
    const int max_len = engine->max_model_len();

    std::mt19937_64 rng(seed * 1000003);
    auto uni = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
    auto chance = [&](double p) { return std::uniform_real_distribution<double>(0, 1)(rng) < p; };

    Run run;
    std::vector<uint64_t> ids;  // every id ever handed out
    std::string failure;

    auto check_outputs = [&](const std::vector<RequestOutput>& outs, bool in_step) {
      std::set<uint64_t> seen_this_step;
      for (const RequestOutput& o : outs) {
        auto it = run.reqs.find(o.request_id);
        if (it == run.reqs.end()) return "output for unknown request " + std::to_string(o.request_id);
        Expect& e = it->second;
        const std::string rid = "request " + std::to_string(o.request_id);
        if (e.finished) return rid + ": output after it finished";
        if (!seen_this_step.insert(o.request_id).second) return rid + ": two outputs in one step";
        e.events++;
        if (o.prompt_tokens != (int)e.prompt.size())
          return rid + ": prompt_tokens " + std::to_string(o.prompt_tokens) + " != " + std::to_string(e.prompt.size());
        e.tokens.insert(e.tokens.end(), o.new_token_ids.begin(), o.new_token_ids.end());
        if (o.token_ids != e.tokens) return rid + ": token_ids is not the concatenation of new_token_ids";
        if ((int)e.tokens.size() > e.params.max_tokens)
          return rid + ": " + std::to_string(e.tokens.size()) + " tokens > max_tokens " + std::to_string(e.params.max_tokens);
        if (e.reject_why.empty() && (int)(e.prompt.size() + e.tokens.size()) > max_len)
          return rid + ": grew past the context: " + std::to_string(e.prompt.size()) + " prompt + " +
                 std::to_string(e.tokens.size()) + " generated tokens > max_model_len " + std::to_string(max_len) +
                 (o.finished ? " (finished: " + std::string(brisk::finish_reason_name(o.finish_reason)) + ")" : "");
        for (int32_t t : o.new_token_ids)
          if (t < 0 || t >= vocab_) return rid + ": token id " + std::to_string(t) + " outside the vocabulary";
        if (!o.finished) {
          if (o.finish_reason != FinishReason::None) return rid + ": finish reason on an unfinished output";
          if (o.new_token_ids.size() != 1) return rid + ": an unfinished output without exactly one new token";
          if (!e.reject_why.empty()) return rid + ": a rejected request produced tokens";
          continue;
        }
        e.finished = true;
        e.reason = o.finish_reason;
        if (!e.reject_why.empty()) {
          if (o.finish_reason != FinishReason::Error) return rid + ": rejected request did not finish with Error";
          if (o.error.find(e.reject_why) == std::string::npos)
            return rid + ": error '" + o.error + "' does not say '" + e.reject_why + "'";
          if (!o.token_ids.empty()) return rid + ": a rejected request has tokens";
          continue;
        }
        if (!o.error.empty() && o.finish_reason != FinishReason::Error) return rid + ": error text on a non-error finish";
        switch (o.finish_reason) {
          case FinishReason::Length:
            if ((int)e.tokens.size() != e.params.max_tokens && (int)(e.prompt.size() + e.tokens.size()) < max_len)
              return rid + ": finished by length with " + std::to_string(e.tokens.size()) + " of " +
                     std::to_string(e.params.max_tokens) + " tokens and room left";
            break;
          case FinishReason::Stop: {
            if (e.tokens.empty()) return rid + ": stop without a token";
            const auto& st = e.params.stop_token_ids;
            if (std::find(st.begin(), st.end(), e.tokens.back()) == st.end()) return rid + ": stop on a token not asked for";
            break;
          }
          case FinishReason::Eos:
            if (e.tokens.empty() || e.params.ignore_eos) return rid + ": eos finish without eos";
            break;
          case FinishReason::Abort:
            if (!e.abort_sent) return rid + ": aborted without abort()";
            if (in_step && !o.new_token_ids.empty()) return rid + ": the abort event carries new tokens";
            break;
          default:
            return rid + ": unexpected finish reason " + std::string(brisk::finish_reason_name(o.finish_reason)) +
                   " (" + o.error + ")";
        }
        if (o.finish_reason != FinishReason::Abort && e.abort_sent)
          return rid + ": abort() was called while it was live, yet it finished by " +
                 std::string(brisk::finish_reason_name(o.finish_reason));
        if (in_step) run.last_finish_in_step = o.finish_reason != FinishReason::Abort;
      }
      return std::string();
    };

    auto add_random = [&]() {
      Expect e;
      const int kind = uni(0, 99);
      int len = uni(1, 60);
      if (kind < 3) len = 0;
      e.prompt.resize(len);
      for (int& t : e.prompt) t = uni(3, vocab_ - 1);
      e.params.max_tokens = chance(0.3) ? uni(1, 64) : uni(1, 8);
      if (chance(0.5)) {
        e.params.temperature = 0.8f;
        e.params.top_k = chance(0.5) ? 40 : 0;
        e.params.top_p = chance(0.5) ? 0.9f : 1.0f;
        if (chance(0.5)) e.params.seed = rng();
      }
      if (chance(0.2)) e.params.stop_token_ids = {uni(3, vocab_ - 1), uni(3, vocab_ - 1), uni(3, vocab_ - 1)};
      if (chance(0.1)) e.params.ignore_eos = true;
      const bool bad_token = kind >= 3 && kind < 5;
      if (bad_token) e.prompt[uni(0, len - 1)] = vocab_ + uni(0, 5);
      if (kind >= 5 && kind < 7) e.params.max_tokens = 0;
      // The engine checks, in order: the parameters, an empty prompt, the
      // length, the token ids.
      if (e.params.max_tokens < 1)
        e.reject_why = "SamplingParams.max_tokens = 0: must be at least 1";
      else if (len == 0)
        e.reject_why = "empty prompt";
      else if (len >= max_len)
        e.reject_why = "prompt of " + std::to_string(len) + " tokens does not fit the context: at most " +
                       std::to_string(max_len - 1) + " tokens";
      else if (bad_token)
        e.reject_why = "is outside the vocabulary [0, " + std::to_string(vocab_) + ")";
      const uint64_t id = engine->add_request(e.prompt, e.params);
      if (run.reqs.count(id)) {
        failure = "request id " + std::to_string(id) + " handed out twice";
        return;
      }
      run.added++;
      if (!e.reject_why.empty()) run.rejected++;
      ids.push_back(id);
      run.reqs[id] = std::move(e);
    };

    const int64_t total_blocks = engine->num_kv_blocks();
    int step = 0;
    for (;; ++step) {
      const bool arriving = step < steps;
      if (!arriving && !engine->has_unfinished()) break;
      if (step > steps + 20000) {
        // Describe the stuck state before failing.
        int live = 0;
        for (const auto& [id, e] : run.reqs) live += !e.finished;
        const auto& h = engine->step_history();
        QString last;
        for (size_t i = h.size() > 6 ? h.size() - 6 : 0; i < h.size(); ++i)
          last += QString(" [step %1: seqs %2 prefill %3 decode %4 preempted %5 running %6 waiting %7 kv %8/%9]")
                      .arg(h[i].step).arg(h[i].num_seqs).arg(h[i].prefill_tokens).arg(h[i].decode_tokens)
                      .arg(h[i].preempted).arg(h[i].running).arg(h[i].waiting).arg(h[i].kv_blocks_used)
                      .arg(h[i].kv_blocks_total);
        QFAIL(qPrintable(QString("the engine did not drain: %1 requests unfinished after %2 steps (%3 recorded, %4 "
                                 "preemptions); last steps:%5")
                             .arg(live).arg(step).arg(h.size()).arg(engine->metrics().preemptions).arg(last)));
      }
      if (arriving && chance(0.5)) {
        const int n = chance(0.1) ? uni(2, 6) : 1;
        for (int i = 0; i < n && failure.empty(); ++i) add_random();
        QVERIFY2(failure.empty(), failure.c_str());
      }
      if (arriving && chance(0.05) && !ids.empty()) {
        // Mostly a live request (waiting or running); sometimes any id ever
        // handed out: the finished and rejected ones must be ignored.
        std::vector<uint64_t> live_ids;
        for (uint64_t i : ids)
          if (!run.reqs[i].finished && run.reqs[i].reject_why.empty() && !run.reqs[i].abort_sent) live_ids.push_back(i);
        const std::vector<uint64_t>& pool = !live_ids.empty() && chance(0.8) ? live_ids : ids;
        const uint64_t id = pool[uni(0, (int)pool.size() - 1)];
        Expect& e = run.reqs[id];
        const bool live = !e.finished && e.reject_why.empty() && !e.abort_sent;
        engine->abort(id);
        if (live) {
          e.abort_sent = true;
          run.aborted++;
        }
      }
      if (arriving && chance(0.005)) engine->abort(1u << 30);  // never handed out
      const std::vector<RequestOutput> outs = engine->step();
      failure = check_outputs(outs, true);
      QVERIFY2(failure.empty(), qPrintable(QString("step %1: %2").arg(step).arg(QString::fromStdString(failure))));
    }

    // Every request finished exactly once.
    std::map<FinishReason, int> reasons;
    for (const auto& [id, e] : run.reqs) {
      QVERIFY2(e.finished, qPrintable(QString("request %1 never finished").arg(id)));
      reasons[e.reason]++;
    }
    QCOMPARE(uint64_t(reasons[FinishReason::Error]), run.rejected);
    QCOMPARE(uint64_t(reasons[FinishReason::Abort]), run.aborted);
    QVERIFY(run.rejected > 0);
    QVERIFY(run.aborted > 0);
    QVERIFY(reasons[FinishReason::Length] > 0);

    // The metrics agree with what was seen.
    const brisk::MetricsSnapshot m = engine->metrics();
    QCOMPARE(m.requests_added, run.added);
    QCOMPARE(m.requests_rejected, run.rejected);
    QCOMPARE(m.requests_aborted, run.aborted);
    QCOMPARE(m.requests_finished, run.added - run.rejected);
    QCOMPARE(uint64_t(engine->finished_requests().size()), run.added);
    std::set<uint64_t> finished_ids;
    uint64_t generated = 0;
    for (const brisk::RequestMetrics& r : engine->finished_requests()) {
      QVERIFY2(finished_ids.insert(r.request_id).second, "a request is in finished_requests() twice");
      const Expect& e = run.reqs.at(r.request_id);
      QCOMPARE(r.finish_reason, e.reason);
      QCOMPARE(r.output_tokens, (int)e.tokens.size());
      QCOMPARE(r.prompt_tokens, (int)e.prompt.size());
      QCOMPARE((int)r.token_times.size(), (int)e.tokens.size());
      generated += e.tokens.size();
    }

    // The per-step gauges stay within the configuration.
    const auto& hist = engine->step_history();
    QVERIFY(!hist.empty());
    uint64_t preempted = 0, prompt_tokens = 0, decode_tokens = 0;
    for (const brisk::StepMetrics& s : hist) {
      QCOMPARE(s.kv_blocks_total, total_blocks);
      QVERIFY2(s.kv_blocks_used >= 0 && s.kv_blocks_used <= s.kv_blocks_total,
               qPrintable(QString("step %1: %2 of %3 blocks used").arg(s.step).arg(s.kv_blocks_used).arg(s.kv_blocks_total)));
      QVERIFY2(s.prefill_tokens + s.decode_tokens <= cfg.max_num_batched_tokens,
               qPrintable(QString("step %1: %2 + %3 tokens > budget").arg(s.step).arg(s.prefill_tokens).arg(s.decode_tokens)));
      QVERIFY(s.prefill_tokens + s.decode_tokens > 0);
      QVERIFY(s.num_seqs >= 1 && s.num_seqs <= cfg.max_num_seqs);
      QVERIFY(s.running <= cfg.max_num_seqs);
      QVERIFY(s.kv_slots_filled <= s.kv_slots_allocated);
      QCOMPARE(s.kv_slots_allocated, s.kv_blocks_used * cfg.block_size);
      if (!policy) QCOMPARE(s.padding_tokens, 0);
      preempted += s.preempted;
      prompt_tokens += s.prefill_tokens;
      decode_tokens += s.decode_tokens;
    }
    QVERIFY(m.preemptions >= preempted);
    QCOMPARE(m.prompt_tokens, prompt_tokens);
    // Every generated token counts, including each request's first, which
    // comes out of a prefill row; decode rows alone are fewer.
    QCOMPARE(m.generation_tokens, generated);
    QVERIFY(decode_tokens <= generated);
    if (policy) QCOMPARE(m.preemptions, uint64_t(0));

    // Drained: nothing left, every block free.
    QVERIFY(!engine->has_unfinished());
    if (run.last_finish_in_step) QCOMPARE(hist.back().kv_blocks_used, int64_t(0));
    const std::vector<brisk::KvBlockState> blocks = engine->kv_blocks();
    QCOMPARE((int64_t)blocks.size(), total_blocks);
    for (const brisk::KvBlockState& b : blocks) {
      QCOMPARE(b.owner, int64_t(-1));
      QCOMPARE(b.refcount, 0);
    }
    QVERIFY(engine->step().empty());
    QVERIFY(!engine->has_unfinished());

    // Batching, chunking and preemption are invisible in the results: each
    // request that ran to its end, replayed alone (same id, so the same
    // derived seed) on a fresh engine, produces exactly the same tokens.
    // (This relies on the CPU backend computing a row the same way whatever
    // else is in the batch, which it does: the ops are row-independent.)
    int replayed = 0, replayed_preempted = 0;
    {
      std::map<uint64_t, int> preemptions;
      for (const brisk::RequestMetrics& r : engine->finished_requests()) preemptions[r.request_id] = r.preemptions;
      std::unique_ptr<Engine> solo = Engine::create(cfg);
      for (const auto& [id, e] : run.reqs) {
        if (!e.reject_why.empty() || e.abort_sent) continue;
        solo->add_request(e.prompt, e.params, id);
        std::vector<int32_t> toks;
        FinishReason reason = FinishReason::None;
        while (solo->has_unfinished())
          for (const RequestOutput& o : solo->step()) {
            toks = o.token_ids;
            reason = o.finish_reason;
          }
        if (toks != e.tokens || reason != e.reason) {
          size_t k = 0;
          while (k < toks.size() && k < e.tokens.size() && toks[k] == e.tokens[k]) ++k;
          QFAIL(qPrintable(QString("request %1 (prompt %2 tokens, %3, %4 preemptions): %5 tokens under load, %6 "
                                   "alone, first difference at token %7; finish %8 vs %9")
                               .arg(id).arg(e.prompt.size())
                               .arg(e.params.temperature == 0 ? "greedy" : "sampled")
                               .arg(preemptions[id]).arg(e.tokens.size()).arg(toks.size()).arg(k)
                               .arg(brisk::finish_reason_name(e.reason)).arg(brisk::finish_reason_name(reason))));
        }
        replayed++;
        replayed_preempted += preemptions[id] > 0;
      }
    }
    QVERIFY(replayed > 0);
    replayed_preempted_ += replayed_preempted;

    qInfo("%s: %llu requests (%llu rejected, %llu aborted), %d steps, %llu preemptions, %llu tokens generated; "
          "finishes: length %d stop %d eos %d; %d replayed alone identically (%d of them preempted under load)",
          QTest::currentDataTag(), (unsigned long long)run.added, (unsigned long long)run.rejected,
          (unsigned long long)run.aborted, step, (unsigned long long)m.preemptions, (unsigned long long)generated,
          reasons[FinishReason::Length], reasons[FinishReason::Stop], reasons[FinishReason::Eos], replayed,
          replayed_preempted);
    total_preemptions_ += m.preemptions;
  }

  void stressCoveredPreemption() {
    QVERIFY2(total_preemptions_ > 0, "no run preempted: the KV cache is not small enough to test preemption");
    QVERIFY2(replayed_preempted_ > 0, "no preempted request was replayed alone");
  }

 private:
  QTemporaryDir dir_;
  std::string model_;
  int vocab_ = 0, context_ = 0;
  uint64_t total_preemptions_ = 0;
  int replayed_preempted_ = 0;
};

QTEST_APPLESS_MAIN(TestEngineStress)
#include "test_engine_stress.moc"
