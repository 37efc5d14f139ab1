// The benchmark engine: workloads are deterministic data, a run replays them
// and its summary agrees with the per-request records.
#include <QtTest>
#include <nlohmann/json.hpp>

#include "brisk/benchmark.h"

using namespace brisk;

class TestBenchmark : public QObject {
  Q_OBJECT

  std::unique_ptr<Engine> engine_;

 private slots:
  void initTestCase() {
    EngineConfig cfg;
    cfg.threads = 2;
    cfg.max_num_seqs = 8;
    engine_ = Engine::create(cfg);
  }

  void lengthDistributionsParseAndReject() {
    QCOMPARE(LengthDist::parse("fixed:12").a, 12.0);
    const LengthDist u = LengthDist::parse("uniform:4:9");
    QCOMPARE(u.kind, std::string("uniform"));
    QCOMPARE(u.b, 9.0);
    QCOMPARE(LengthDist::parse("normal:64:16").to_string(), std::string("normal:64:16"));
    for (const char* bad :
         {"", "fixed", "fixed:x", "uniform:9:4", "normal:5:-1", "gamma:1:2", "fixed:0", "uniform:1:1e12"}) {
      try {
        LengthDist::parse(bad);
        QFAIL(qPrintable(QString("accepted '%1'").arg(bad)));
      } catch (const Error& e) {
        QVERIFY2(std::string(e.what()).find(bad) != std::string::npos, e.what());
      }
    }
  }

  void workloadsAreDeterministicAndWithinBounds() {
    WorkloadSpec spec;
    spec.num_requests = 40;
    spec.arrival = "poisson";
    spec.rate = 10;
    spec.prompt_len = LengthDist::parse("uniform:5:30");
    spec.output_len = LengthDist::parse("uniform:2:9");
    spec.seed = 11;
    const auto a = make_workload(spec, *engine_), b = make_workload(spec, *engine_);
    QCOMPARE((int)a.size(), 40);
    double last = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      QCOMPARE(a[i].prompt_ids, b[i].prompt_ids);
      QCOMPARE(a[i].arrival, b[i].arrival);
      QVERIFY(a[i].arrival >= last);  // Poisson arrivals only move forward
      last = a[i].arrival;
      QVERIFY(a[i].prompt_ids.size() >= 5 && a[i].prompt_ids.size() <= 30);
      QVERIFY(a[i].params.max_tokens >= 2 && a[i].params.max_tokens <= 9);
      QCOMPARE(a[i].prompt_ids[0], 1);  // BOS
      // The rest stand for text: decodable ids, none of unk/bos/eos.
      const int vocab =
          std::min(engine_->model_info().vocab_size, engine_->model_info().tokenizer_vocab_size);
      for (size_t k = 1; k < a[i].prompt_ids.size(); ++k)
        QVERIFY2(a[i].prompt_ids[k] >= 3 && a[i].prompt_ids[k] < vocab,
                 qPrintable(QString::number(a[i].prompt_ids[k])));
    }
    // Mean inter-arrival near 1/rate (40 samples: loose bound).
    QVERIFY(last / 40 > 0.03 && last / 40 < 0.3);
    spec.seed = 12;
    QVERIFY(make_workload(spec, *engine_)[0].prompt_ids != a[0].prompt_ids);
  }

  void aRunReportsWhatItRan() {
    WorkloadSpec spec;
    spec.num_requests = 12;
    spec.prompt_len = LengthDist::parse("uniform:8:40");
    spec.output_len = LengthDist::parse("uniform:3:12");
    const auto w = make_workload(spec, *engine_);
    const BenchResult r = run_benchmark(*engine_, spec, w, 1);
    const BenchSummary& s = r.summary;
    QCOMPARE(s.requests, 12);
    QCOMPARE(s.finished, 12);
    QCOMPARE(s.errors, 0);
    uint64_t want_out = 0, want_prompt = 0;
    for (const auto& q : w) {
      want_out += q.params.max_tokens;  // outputs ignore EOS: exactly max_tokens each
      want_prompt += q.prompt_ids.size();
    }
    QCOMPARE(s.generation_tokens, want_out);
    QCOMPARE(s.prompt_tokens, want_prompt);
    QCOMPARE(s.ttft.count, 12);
    QVERIFY(s.ttft.p50 <= s.ttft.p99 && s.ttft.p99 <= s.ttft.max);
    QVERIFY(s.duration_s > 0);
    QVERIFY(std::abs(s.generation_tokens_per_s - want_out / s.duration_s) <
            1e-6 * s.generation_tokens_per_s + 1e-9);
    QVERIFY(s.kv_waste >= 0 && s.kv_waste < 1);
    QCOMPARE(s.steps, (uint64_t)r.steps.size());
    for (const auto& q : r.requests)
      QVERIFY(q.arrival >= 0 && q.finished >= q.first_token && q.first_token >= q.arrival);
    const auto j = nlohmann::json::parse(to_json(r));
    QCOMPARE(j["summary"]["finished"].get<int>(), 12);
    QCOMPARE(j["requests"].size(), size_t(12));
    QCOMPARE(j["steps"].size(), r.steps.size());
    QCOMPARE(j["workload"]["prompt_len"].get<std::string>(), std::string("uniform:8:40"));
    QVERIFY(!j["commit"].get<std::string>().empty());
  }
};

QTEST_APPLESS_MAIN(TestBenchmark)
#include "test_benchmark.moc"
