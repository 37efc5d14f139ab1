// Workloads are data: their JSON round-trips, bad files are errors naming the
// source and field, each arrival process has the statistics it promises, and
// the built-in workloads load.
#include <QtTest>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "bench/bench_json.h"
#include "brisk/benchmark.h"

using namespace brisk;

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

#define EXPECT_ERROR(call, ...)                                                \
  do {                                                                         \
    const std::string msg = error_of([&] { (void)(call); });                   \
    for (const char* want : {__VA_ARGS__})                                     \
      QVERIFY2(msg.find(want) != std::string::npos,                            \
               qPrintable(QString("'%1' lacks '%2'").arg(msg.c_str(), want))); \
  } while (0)

std::vector<double> gaps(const std::vector<WorkloadRequest>& w) {
  std::vector<double> g;
  for (size_t i = 1; i < w.size(); ++i) g.push_back(w[i].arrival - w[i - 1].arrival);
  return g;
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / v.size();
}

double cv2(const std::vector<double>& v) {
  const double m = mean(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return s / (v.size() - 1) / (m * m);
}

}  // namespace

class TestWorkload : public QObject {
  Q_OBJECT

  std::unique_ptr<Engine> engine_;
  QTemporaryDir dir_;

  std::string write(const char* name, const std::string& text) {
    const std::string path = dir_.filePath(name).toStdString();
    std::ofstream(path) << text;
    return path;
  }

  // Many requests with one-token prompts: cheap to build, enough for statistics.
  WorkloadSpec many(const char* arrival, int n) {
    WorkloadSpec s;
    s.num_requests = n;
    s.arrival = arrival;
    s.prompt_len = LengthDist::parse("fixed:1");
    s.output_len = LengthDist::parse("fixed:1");
    s.seed = 7;
    return s;
  }

 private slots:
  void initTestCase() {
    EngineConfig cfg;
    cfg.threads = 2;
    engine_ = Engine::create(cfg);
  }

  void jsonRoundTrips() {
    WorkloadSpec w;
    w.name = "rt";
    w.description = "every field set";
    w.num_requests = 17;
    w.arrival = "gamma";
    w.rate = 3.5;
    w.burstiness = 0.25;
    w.ramp_start_rate = 2;
    w.ramp_end_rate = 9;
    w.max_concurrency = 4;
    w.prompt_len = LengthDist::parse("normal:64:16");
    w.output_len = LengthDist::parse("uniform:3:9");
    w.temperature = 0.7f;
    w.top_p = 0.9f;
    w.top_k = 40;
    w.repetition_penalty = 1.1f;
    w.ignore_eos = false;
    w.n = 2;
    w.best_of = 3;
    w.beam_width = 0;
    w.seed = 123456789012345ull;
    const std::string text = to_json(w);
    const WorkloadSpec back = workload_from_json(text, "rt.json");
    QCOMPARE(to_json(back), text);
    QCOMPARE(back.arrival, std::string("gamma"));
    QCOMPARE(back.burstiness, 0.25);
    // Trace times, which go with arrival "trace" only.
    WorkloadSpec t;
    t.num_requests = 2;
    t.arrival = "trace";
    t.trace_times = {0.5, 1.25};
    QCOMPARE(workload_from_json(to_json(t), "t.json").trace_times, t.trace_times);
    QCOMPARE(back.top_p, 0.9f);
    QCOMPARE(back.repetition_penalty, 1.1f);
    QCOMPARE(back.seed, w.seed);
    QCOMPARE(back.prompt_len.to_string(), std::string("normal:64:16"));
    // Floats are written as the decimal that reads back to them.
    QCOMPARE(nlohmann::json::parse(text)["top_p"].dump(), std::string("0.9"));
    // A file on disk reads the same.
    QCOMPARE(to_json(load_workload(write("w.json", text))), text);
    // Omitted fields take their defaults.
    const WorkloadSpec d = workload_from_json(R"({"schema": "brisk.workload", "version": 1})", "min.json");
    QCOMPARE(d.num_requests, WorkloadSpec{}.num_requests);
    QCOMPARE(d.arrival, std::string("all"));
  }

  void errorsNameTheSourceAndField() {
    const std::string head = R"({"schema": "brisk.workload", "version": 1, )";
    EXPECT_ERROR(workload_from_json(head + R"("rte": 3})", "a.json"), "a.json", "rte", "unknown field");
    EXPECT_ERROR(workload_from_json(R"({"schema": "brisk.workload", "version": 2})", "b.json"), "b.json",
                 "version", "2");
    EXPECT_ERROR(workload_from_json(R"({"version": 1})", "c.json"), "c.json", "schema");
    EXPECT_ERROR(workload_from_json(head + R"("arrival": "weibull"})", "d.json"), "d.json", "arrival",
                 "weibull");
    EXPECT_ERROR(workload_from_json(head + R"("prompt_len": "uniform:9:4"})", "e.json"), "e.json",
                 "prompt_len", "uniform:9:4");
    EXPECT_ERROR(workload_from_json(head + R"("rate": "fast", "arrival": "poisson"})", "f.json"), "f.json",
                 "rate", "number");
    EXPECT_ERROR(workload_from_json(head + R"("arrival": "poisson", "rate": 0})", "g.json"), "g.json",
                 "rate");
    EXPECT_ERROR(workload_from_json(head + R"("num_requests": 2.5})", "h.json"), "h.json", "num_requests",
                 "integer");
    EXPECT_ERROR(workload_from_json(head + R"("arrival": "trace"})", "i.json"), "i.json", "trace_times");
    EXPECT_ERROR(workload_from_json(head + R"("top_p": 1.5})", "j.json"), "j.json", "top_p");
    EXPECT_ERROR(workload_from_json(head + R"("output_len": "file:x.jsonl"})", "k.json"), "k.json",
                 "output_len");
    EXPECT_ERROR(workload_from_json("{not json", "l.json"), "l.json", "JSON");
    EXPECT_ERROR(load_workload("/nonexistent/w.json"), "/nonexistent/w.json");
    EXPECT_ERROR(builtin_workload("nope"), "nope", "chat");
  }

  // A trace file beside another arrival was ignored without a word: the
  // requests arrived all at once (or Poisson) and the file was never read.
  void traceFileNeedsTraceArrival() {
    const std::string head = R"({"schema": "brisk.workload", "version": 1, )";
    const std::string trace = write("t-arrival.jsonl", "{\"timestamp\": 0}\n{\"timestamp\": 1}\n");
    const std::string path = nlohmann::json(trace).dump();
    EXPECT_ERROR(workload_from_json(
                     head + "\"arrival\": \"poisson\", \"rate\": 2, \"trace_path\": " + path + "}", "p.json"),
                 "p.json", "field 'trace_path'", "'poisson'", "'trace'");
    EXPECT_ERROR(workload_from_json(head + "\"num_requests\": 2, \"trace_path\": " + path + "}", "a.json"),
                 "a.json", "field 'trace_path'", "'all'");
    // Times given inline were ignored alike.
    EXPECT_ERROR(workload_from_json(head + "\"arrival\": \"poisson\", \"rate\": 2, \"trace_times\": [0, 1]}",
                                    "t.json"),
                 "t.json", "field 'trace_times'", "'poisson'", "'trace'");
    WorkloadSpec s = many("all", 2);
    s.trace_path = trace;
    EXPECT_ERROR(make_workload(s, *engine_), "trace_path", "'all'");
    s.arrival = "trace";
    QCOMPARE(make_workload(s, *engine_)[1].arrival, 1.0);  // the file replayed
    // An empty path is no trace.
    s.trace_path.clear();
    s.arrival = "all";
    QCOMPARE(make_workload(s, *engine_)[1].arrival, 0.0);
  }

  // A prompt dataset (prompt_len file:X.jsonl) and a trace are read alike:
  // unknown keys, and a max_tokens that is not a count >= 1, are errors
  // naming FILE:LINE, the field and the value (the dataset reader took "foo",
  // 0 and -2 without a word; a trace line with 0 ran with output_len).
  void datasetAndTraceLinesValidateAlike() {
    const std::string ds =
        write("ds.jsonl", "{\"prompt\": \"a b\", \"max_tokens\": 3}\n\n{\"prompt\": \"c\"}\n");
    const auto d = bench::read_prompt_dataset(ds);
    QCOMPARE((int)d.size(), 2);
    QCOMPARE(d[0].prompt, std::string("a b"));
    QCOMPARE(d[0].max_tokens, 3);
    QCOMPARE(d[1].max_tokens, 0);  // absent: output_len decides
    const std::string tr =
        write("tr.jsonl", "{\"timestamp\": 1, \"max_tokens\": 2}\n{\"timestamp\": 2.5, \"prompt\": \"x\"}\n");
    const auto t = bench::read_trace(tr);
    QCOMPARE((int)t.size(), 2);
    QCOMPARE(t[0].max_tokens, 2);
    QVERIFY(!t[0].has_prompt && t[1].has_prompt);
    QCOMPARE(t[1].timestamp, 2.5);
    struct Bad {
      const char* name;
      const char* keys;  // after the line's required key
      std::vector<const char*> needles;
    };
    const std::vector<Bad> bad = {
        {"foo", R"("foo": 1)", {"field 'foo'", "unknown field"}},
        {"zero", R"("max_tokens": 0)", {"field 'max_tokens'", "0 is not a token count"}},
        {"negative", R"("max_tokens": -2)", {"field 'max_tokens'", "-2"}},
        {"fraction", R"("max_tokens": 5.9)", {"field 'max_tokens'", "integer", "5.9"}},
        {"string", R"("max_tokens": "5")", {"field 'max_tokens'", "\"5\""}},
    };
    for (const Bad& b : bad) {
      const std::string dname = std::string("ds-") + b.name + ".jsonl",
                        tname = std::string("tr-") + b.name + ".jsonl";
      const std::string dp =
          write(dname.c_str(), "{\"prompt\": \"ok\"}\n{\"prompt\": \"a\", " + std::string(b.keys) + "}\n");
      const std::string tp =
          write(tname.c_str(), "{\"timestamp\": 0}\n{\"timestamp\": 1, " + std::string(b.keys) + "}\n");
      for (const auto& [path, msg] : {std::pair{dp, error_of([&] { bench::read_prompt_dataset(dp); })},
                                      std::pair{tp, error_of([&] { bench::read_trace(tp); })}}) {
        QVERIFY2(msg.find(path + ":2: ") != std::string::npos, qPrintable(QString::fromStdString(msg)));
        for (const char* want : b.needles)
          QVERIFY2(msg.find(want) != std::string::npos,
                   qPrintable(QString("'%1' lacks '%2'").arg(msg.c_str(), want)));
      }
    }
    EXPECT_ERROR(bench::read_prompt_dataset(write("np.jsonl", "{\"max_tokens\": 4}\n")), "np.jsonl:1",
                 "prompt");
    EXPECT_ERROR(bench::read_prompt_dataset(write("empty.jsonl", "\n")), "empty.jsonl", "no prompts");
    EXPECT_ERROR(bench::read_trace(write("empty-trace.jsonl", "")), "empty-trace.jsonl", "no trace lines");
    // A directory is not an empty file.
    const std::string dir = dir_.path().toStdString();
    const char* folder = dir.c_str();
    EXPECT_ERROR(bench::read_prompt_dataset(folder), folder, "is a directory");
    EXPECT_ERROR(bench::read_trace(folder), folder, "is a directory");
    EXPECT_ERROR(load_workload(folder), folder, "is a directory");
  }

  void poissonMeanGapIsOneOverRate() {
    WorkloadSpec s = many("poisson", 4001);
    s.rate = 10;
    const auto w = make_workload(s, *engine_);
    // 4000 exponential gaps: the mean's standard error is 0.1 / sqrt(4000) = 1.6 ms;
    // 5 ms (about 3 standard errors) is the tolerance. CV^2 of an exponential is 1.
    const auto g = gaps(w);
    QVERIFY2(std::abs(mean(g) - 0.1) < 0.005, qPrintable(QString::number(mean(g))));
    QVERIFY2(std::abs(cv2(g) - 1) < 0.15, qPrintable(QString::number(cv2(g))));
    for (double x : g) QVERIFY(x >= 0);
  }

  void gammaBurstinessSetsTheVariance() {
    // Gamma gaps with shape k: mean 1/rate, CV^2 = 1/k. With k = 0.25 the
    // sample variance converges slowly (excess kurtosis 6/k = 24): over 20000
    // gaps its relative standard error is sqrt(26/20000) = 3.6%; tolerance 15%.
    for (double k : {0.25, 1.0, 4.0}) {
      WorkloadSpec s = many("gamma", 20001);
      s.rate = 10;
      s.burstiness = k;
      const auto g = gaps(make_workload(s, *engine_));
      QVERIFY2(std::abs(mean(g) - 0.1) < 0.1 * 0.05, qPrintable(QString("k %1 mean %2").arg(k).arg(mean(g))));
      QVERIFY2(std::abs(cv2(g) * k - 1) < 0.15, qPrintable(QString("k %1 cv2 %2").arg(k).arg(cv2(g))));
    }
  }

  void rampRisesLinearly() {
    WorkloadSpec s = many("ramp", 11);
    s.ramp_start_rate = 2;
    s.ramp_end_rate = 12;
    const auto w = make_workload(s, *engine_);
    QCOMPARE(w[0].arrival, 0.0);
    // Rate before request i: 2 + 10 * i / 10 = 2 + i requests/s, so gap i is 1 / (2 + i).
    const auto g = gaps(w);
    for (size_t i = 0; i < g.size(); ++i) {
      QVERIFY2(std::abs(g[i] - 1.0 / (3 + i)) < 1e-12, qPrintable(QString("gap %1 = %2").arg(i).arg(g[i])));
      if (i > 0) QVERIFY(g[i] < g[i - 1]);  // the instantaneous rate only rises
    }
    // A falling ramp spaces requests out instead.
    std::swap(s.ramp_start_rate, s.ramp_end_rate);
    const auto f = gaps(make_workload(s, *engine_));
    for (size_t i = 1; i < f.size(); ++i) QVERIFY(f[i] > f[i - 1]);
  }

  void traceIsReplayedExactly() {
    WorkloadSpec s = many("trace", 4);
    s.trace_times = {5.0, 5.5, 7.25, 6.0};
    auto w = make_workload(s, *engine_);
    // The trace's clock starts at its earliest arrival; order is the trace's.
    const std::vector<double> want = {0, 0.5, 2.25, 1.0};
    for (int i = 0; i < 4; ++i) QCOMPARE(w[i].arrival, want[i]);
    s.num_requests = 5;
    EXPECT_ERROR(make_workload(s, *engine_), "num_requests");

    // A JSONL trace with prompts and output lengths.
    s.trace_times.clear();
    s.num_requests = 3;
    s.trace_path = write("trace.jsonl",
                         "{\"timestamp\": 100.5, \"prompt\": \"Once upon a time\", \"max_tokens\": 5}\n"
                         "\n"
                         "{\"timestamp\": 101}\n"
                         "{\"timestamp\": 103.25, \"max_tokens\": 2}\n");
    w = make_workload(s, *engine_);
    QCOMPARE(w[0].arrival, 0.0);
    QCOMPARE(w[1].arrival, 0.5);
    QCOMPARE(w[2].arrival, 2.75);
    QCOMPARE(w[0].prompt_ids, engine_->encode("Once upon a time", true));
    QCOMPARE(w[0].params.max_tokens, 5);
    QCOMPARE(w[1].params.max_tokens, 1);  // from output_len
    QCOMPARE(w[2].params.max_tokens, 2);
    s.trace_path = write("bad.jsonl", "{\"timestamp\": 1}\n{\"time\": 2}\n");
    EXPECT_ERROR(make_workload(s, *engine_), "bad.jsonl:2", "timestamp");
  }

  void samplingAndPromptsFromTheSpec() {
    WorkloadSpec s = many("all", 4);
    s.temperature = 0.8f;
    s.top_p = 0.85f;
    s.top_k = 12;
    s.repetition_penalty = 1.2f;
    s.prompt_len.kind = "file";
    s.prompt_len.path = write(
        "prompts.jsonl", "{\"prompt\": \"hello there\", \"max_tokens\": 3}\n{\"prompt\": \"a b c d\"}\n");
    s.output_len = LengthDist::parse("fixed:6");
    const auto w = make_workload(s, *engine_);
    QCOMPARE((int)w.size(), 4);
    for (const auto& r : w) {
      QCOMPARE(r.arrival, 0.0);
      QCOMPARE(r.params.temperature, 0.8f);
      QCOMPARE(r.params.top_p, 0.85f);
      QCOMPARE(r.params.top_k, 12);
      QCOMPARE(r.params.repetition_penalty, 1.2f);
    }
    QCOMPARE(w[0].prompt_ids, engine_->encode("hello there", true));
    QCOMPARE(w[2].prompt_ids, w[0].prompt_ids);  // the file is cycled
    QCOMPARE(w[0].params.max_tokens, 3);
    QCOMPARE(w[1].params.max_tokens, 6);
  }

  void concurrencyCapHoldsRequestsClientSide() {
    WorkloadSpec s;
    s.num_requests = 6;
    s.arrival = "all";
    s.max_concurrency = 2;
    s.prompt_len = LengthDist::parse("fixed:8");
    s.output_len = LengthDist::parse("fixed:6");
    const auto w = make_workload(s, *engine_);
    const BenchResult r = run_benchmark(*engine_, s, w, 0);
    QCOMPARE(r.summary.finished, 6);
    for (const StepMetrics& st : r.steps)
      QVERIFY2(st.running + st.waiting <= 2,
               qPrintable(
                   QString("step %1: %2 running, %3 waiting").arg(st.step).arg(st.running).arg(st.waiting)));
    // Queue time counts from the arrival, not from when the cap let the request in:
    // every request arrived at 0, and the last ones waited for two to finish.
    double longest_queue = 0;
    for (const auto& q : r.requests) {
      QCOMPARE(q.arrival, 0.0);
      longest_queue = std::max(longest_queue, q.queue_time());
    }
    const auto first_done = std::min_element(r.requests.begin(), r.requests.end(),
                                             [](auto& a, auto& b) { return a.finished < b.finished; });
    QVERIFY(longest_queue >= first_done->finished);
  }

  void builtinsLoadAndValidate() {
    const std::vector<std::string> names = builtin_workload_names();
    QCOMPARE(names, (std::vector<std::string>{"burst", "chat", "mixed", "summarize"}));
    for (const std::string& n : names) {
      const WorkloadSpec w = builtin_workload(n);
      QCOMPARE(w.name, n);
      QVERIFY(!w.description.empty());
      QCOMPARE(to_json(workload_from_json(to_json(w), n)), to_json(w));
      const auto reqs = make_workload(w, *engine_);
      QCOMPARE((int)reqs.size(), w.num_requests);
      for (const auto& r : reqs)
        QVERIFY((int)r.prompt_ids.size() + r.params.max_tokens <= engine_->max_model_len());
    }
    QCOMPARE(builtin_workload("burst").arrival, std::string("gamma"));
    QCOMPARE(builtin_workload("burst").burstiness, 0.25);
    // The built-ins are also the files in resources/, which must match what was embedded.
    for (const std::string& n : names) {
      const std::string path = std::string(BRISK_SOURCE_DIR) + "/resources/workloads/" + n + ".json";
      QCOMPARE(to_json(load_workload(path)), to_json(builtin_workload(n)));
    }
  }
};

QTEST_APPLESS_MAIN(TestWorkload)
#include "test_workload.moc"
