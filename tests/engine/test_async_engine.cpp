// AsyncEngine: the step loop on its own thread, a thread-safe inbox,
// per-request streaming callbacks, aborts, and shutdown with work left.
#include <QtTest>
#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "brisk/async_engine.h"

namespace {

brisk::SamplingParams greedy(int n) {
  brisk::SamplingParams p;
  p.max_tokens = n;
  p.ignore_eos = true;
  return p;
}

struct Stream {
  std::string text;
  std::vector<int32_t> ids;
  int finishes = 0;
  brisk::RequestOutput last;
};

}  // namespace

class TestAsyncEngine : public QObject {
  Q_OBJECT

 private slots:
  void streamsFromManyThreadsAndMatchesTheSyncEngine() {
    brisk::EngineConfig cfg;
    cfg.threads = 2;
    auto sync = brisk::Engine::create(cfg);
    const std::vector<std::string> prompts = {
        "The cache", "Once upon a time", "A batch of",      "Tokens per second",
        "Hello",     "Paged attention",  "Static batching", "The scheduler"};
    std::vector<std::vector<int32_t>> expected;
    for (const auto& p : prompts) {
      sync->add_request(p, greedy(24));
      while (sync->has_unfinished())
        for (const auto& o : sync->step())
          if (o.finished) expected.push_back(o.token_ids);
    }

    brisk::AsyncEngine engine(brisk::Engine::create(cfg));
    std::mutex mu;
    std::map<size_t, Stream> streams;
    std::vector<std::thread> callers;
    for (size_t i = 0; i < prompts.size(); ++i)
      callers.emplace_back([&, i] {
        engine.add_request(prompts[i], greedy(24), [&, i](const brisk::RequestOutput& o) {
          std::lock_guard<std::mutex> lk(mu);
          Stream& s = streams[i];
          QVERIFY(s.finishes == 0);  // nothing after the final output
          s.text += o.new_text;
          s.ids.insert(s.ids.end(), o.new_token_ids.begin(), o.new_token_ids.end());
          if (o.finished) {
            s.finishes++;
            s.last = o;
          }
        });
      });
    for (auto& t : callers) t.join();
    engine.wait_idle();
    std::lock_guard<std::mutex> lk(mu);
    QCOMPARE(streams.size(), prompts.size());
    for (size_t i = 0; i < prompts.size(); ++i) {
      const Stream& s = streams[i];
      QCOMPARE(s.finishes, 1);
      QCOMPARE(s.ids, expected[i]);       // batched on a thread == alone, synchronously
      QCOMPARE(s.last.token_ids, s.ids);  // streamed chunks add up to the whole
      QCOMPARE(s.text, s.last.text);
      QVERIFY(s.last.timings.ttft() > 0);
    }
    const auto m = engine.metrics();
    QCOMPARE(m.requests_added, uint64_t(prompts.size()));
    QCOMPARE(m.requests_finished, uint64_t(prompts.size()));
    QVERIFY(m.kv_blocks_total > 0);
    QCOMPARE(m.kv_blocks_used, int64_t(0));
    QVERIFY(!engine.steps_since(0).empty());
  }

  void abortStopsARequestAndOthersContinue() {
    brisk::EngineConfig cfg;
    cfg.threads = 2;
    brisk::AsyncEngine engine(brisk::Engine::create(cfg));
    std::atomic<int> long_tokens{0};
    std::atomic<int> reason{-1}, other_reason{-1};
    std::atomic<int> other_tokens{0};
    const uint64_t id = engine.add_request("abort me", greedy(100000), [&](const brisk::RequestOutput& o) {
      long_tokens += (int)o.new_token_ids.size();
      if (o.finished) reason = (int)o.finish_reason;
    });
    engine.add_request("keep going", greedy(64), [&](const brisk::RequestOutput& o) {
      other_tokens += (int)o.new_token_ids.size();
      if (o.finished) other_reason = (int)o.finish_reason;
    });
    QTRY_VERIFY_WITH_TIMEOUT(long_tokens > 5, 20000);
    engine.abort(id);
    engine.wait_idle();
    QCOMPARE(reason.load(), (int)brisk::FinishReason::Abort);
    QCOMPARE(other_reason.load(), (int)brisk::FinishReason::Length);
    QCOMPARE(other_tokens.load(), 64);
    QVERIFY(long_tokens < 100000);
    QCOMPARE(engine.metrics().requests_aborted, uint64_t(1));
  }

  // add_requests: the requests join the same step, so each one's first
  // token comes before either's second (one after the other, the loop could
  // finish the first before the second arrives).
  void requestsAddedTogetherStartTogether() {
    brisk::EngineConfig cfg;
    cfg.threads = 2;
    brisk::AsyncEngine engine(brisk::Engine::create(cfg));
    for (int round = 0; round < 5; ++round) {
      std::mutex mu;
      std::vector<int> order;  // request index per delivered token
      std::vector<brisk::AsyncEngine::NewRequest> reqs;
      for (int r = 0; r < 2; ++r)
        reqs.push_back({r == 0 ? "side a" : "side b", greedy(6), [&, r](const brisk::RequestOutput& o) {
                          std::lock_guard<std::mutex> lk(mu);
                          for (size_t i = 0; i < o.new_token_ids.size(); ++i) order.push_back(r);
                        }});
      const std::vector<uint64_t> ids = engine.add_requests(std::move(reqs));
      QCOMPARE(ids.size(), size_t(2));
      QVERIFY(ids[1] > ids[0]);
      engine.wait_idle();
      QCOMPARE(order.size(), size_t(12));
      const auto second_a = std::find(std::find(order.begin(), order.end(), 0) + 1, order.end(), 0);
      const auto first_b = std::find(order.begin(), order.end(), 1);
      QVERIFY2(first_b < second_a, "request b's first token came after request a's second");
    }
  }

  void rejectedRequestReportsAnErrorAndTheLoopContinues() {
    brisk::EngineConfig cfg;
    cfg.threads = 2;
    cfg.max_model_len = 64;
    brisk::AsyncEngine engine(brisk::Engine::create(cfg));
    std::string error;
    std::atomic<int> ok{0};
    std::vector<int32_t> too_long(200, 5);
    engine.add_request(too_long, greedy(4), [&](const brisk::RequestOutput& o) {
      if (o.finished) error = o.error;
    });
    engine.add_request("fine", greedy(4), [&](const brisk::RequestOutput& o) {
      if (o.finished) ok = (int)o.token_ids.size();
    });
    engine.wait_idle();
    QVERIFY2(error.find("200 tokens") != std::string::npos, error.c_str());
    QCOMPARE(ok.load(), 4);
  }

  void shutdownWithWorkLeftAbortsIt() {
    std::atomic<int> finished{0}, aborted{0};
    {
      brisk::EngineConfig cfg;
      cfg.threads = 2;
      brisk::AsyncEngine engine(brisk::Engine::create(cfg));
      for (int i = 0; i < 4; ++i)
        engine.add_request("never ends", greedy(1000000), [&](const brisk::RequestOutput& o) {
          if (o.finished) {
            finished++;
            aborted += o.finish_reason == brisk::FinishReason::Abort;
          }
        });
      QTest::qWait(200);
    }  // destructor: stops the loop, tells every owner
    QCOMPARE(finished.load(), 4);
    QCOMPARE(aborted.load(), 4);
  }
};

QTEST_GUILESS_MAIN(TestAsyncEngine)
#include "test_async_engine.moc"
