// Matrices: expansion order and labels, a real (small) matrix on the demo
// model with progress, stop and a failing run, results files that re-import
// exactly, and the JSON files valid against docs/schemas.
#include <QtTest>
#include <atomic>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "bench/bench_json.h"
#include "brisk/bench_matrix.h"

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

WorkloadSpec tiny() {
  WorkloadSpec w;
  w.name = "tiny";
  w.num_requests = 4;
  w.prompt_len = LengthDist::parse("uniform:6:12");
  w.output_len = LengthDist::parse("fixed:4");
  w.seed = 3;
  return w;
}

std::vector<std::string> labels(const std::vector<MatrixRun>& runs) {
  std::vector<std::string> v;
  for (const auto& r : runs) v.push_back(r.label + " r" + std::to_string(r.repeat));
  return v;
}

}  // namespace

class TestBenchMatrix : public QObject {
  Q_OBJECT

  QTemporaryDir dir_;
  std::vector<BenchResult> results_;  // from the real run, for the round trips

  MatrixSpec demo_matrix() {
    MatrixSpec m;
    m.name = "demo precision";
    m.base.threads = 2;
    m.base.max_num_seqs = 4;
    m.axes = {{"weight_dtype", {"f32", "f16"}}};
    m.repeats = 2;
    m.warmup_requests = 1;
    m.slo.ttft_s = 10;
    return m;
  }

  std::string write(const char* name, const std::string& text) {
    const std::string path = dir_.filePath(name).toStdString();
    std::ofstream(path) << text;
    return path;
  }

 private slots:
  void gridExpandsInExecutionOrder() {
    MatrixSpec m;
    m.axes = {{"weight_dtype", {"f32", "f16"}}, {"policy", {"continuous", "static"}}};
    m.repeats = 2;
    const auto runs = expand_matrix(m, tiny());
    // Every configuration's repeat 0 first, then repeat 1; the last axis varies fastest.
    QCOMPARE(labels(runs),
             (std::vector<std::string>{"f32 · continuous r0", "f32 · static r0", "f16 · continuous r0",
                                       "f16 · static r0", "f32 · continuous r1", "f32 · static r1",
                                       "f16 · continuous r1", "f16 · static r1"}));
    QCOMPARE(runs[1].settings, (std::vector<std::pair<std::string, std::string>>{{"weight_dtype", "f32"},
                                                                                 {"policy", "static"}}));
    QCOMPARE(runs[1].config.policy, SchedulerPolicy::Static);
    QCOMPARE(runs[2].config.weight_dtype, std::string("f16"));
    QCOMPARE(runs[2].workload.num_requests, 4);
    // No axes: one run called "base".
    QCOMPARE(labels(expand_matrix(MatrixSpec{}, tiny())), std::vector<std::string>{"base r0"});
    // Workload decoding fields vary the workload, not the engine.
    m.axes = {{"n", {"1", "2"}}, {"temperature", {"0.5"}}};
    m.repeats = 1;
    const auto dec = expand_matrix(m, tiny());
    QCOMPARE(dec[1].workload.n, 2);
    QCOMPARE(dec[1].workload.temperature, 0.5f);
    QCOMPARE(dec[1].label, std::string("2 · 0.5"));
  }

  void sweepsSetTheWorkload() {
    MatrixSpec m;
    m.kind = "rate_sweep";
    m.rates = {2, 8};
    m.axes = {{"policy", {"continuous", "static"}}};
    const auto r = expand_matrix(m, tiny());
    QCOMPARE(labels(r), (std::vector<std::string>{"2 req/s · continuous r0", "2 req/s · static r0",
                                                  "8 req/s · continuous r0", "8 req/s · static r0"}));
    QCOMPARE(r[3].workload.arrival, std::string("poisson"));
    QCOMPARE(r[3].workload.rate, 8.0);
    QCOMPARE(r[0].settings[0], (std::pair<std::string, std::string>{"rate", "2"}));
    m = {};
    m.kind = "concurrency_sweep";
    m.concurrencies = {1, 4, 0};
    const auto c = expand_matrix(m, tiny());
    QCOMPARE(labels(c), (std::vector<std::string>{"1 concurrent r0", "4 concurrent r0", "no cap r0"}));
    QCOMPARE(c[1].workload.max_concurrency, 4);
    QCOMPARE(c[1].workload.arrival, std::string("all"));  // the workload's own arrival stays
  }

  // A rate sweep makes a trace workload's arrivals Poisson: its runs drop the
  // trace file (a trace_path beside another arrival is refused), and results
  // written when they kept it still read.
  void rateSweepOverATraceDropsTheTrace() {
    MatrixSpec m;
    m.kind = "rate_sweep";
    m.rates = {2};
    WorkloadSpec w = tiny();
    w.arrival = "trace";
    w.trace_path = write("sweep-trace.jsonl", "{\"timestamp\": 0}\n");
    const auto r = expand_matrix(m, w);
    QCOMPARE(r.size(), size_t(1));
    QCOMPARE(r[0].workload.arrival, std::string("poisson"));
    QCOMPARE(r[0].workload.trace_path, std::string());
    nlohmann::json old = nlohmann::json::parse(results_to_json({BenchResult{}}));
    old["runs"][0]["workload"]["arrival"] = "poisson";
    old["runs"][0]["workload"]["rate"] = 2;
    old["runs"][0]["workload"]["trace_path"] = w.trace_path;
    const auto back = results_from_json(old.dump(), "old.json");
    QCOMPARE(back.size(), size_t(1));
    QCOMPARE(back[0].workload.arrival, std::string("poisson"));
    QCOMPARE(back[0].workload.trace_path, std::string());
    // The same for a trace given as times: the sweep's runs drop them, old results still read.
    w.trace_path.clear();
    w.trace_times = {0, 0.5};
    const auto timed = expand_matrix(m, w);
    QCOMPARE(timed.size(), size_t(1));
    QVERIFY(timed[0].workload.trace_times.empty());
    old["runs"][0]["workload"]["trace_path"] = "";
    old["runs"][0]["workload"]["trace_times"] = {0, 0.5};
    QVERIFY(results_from_json(old.dump(), "old.json")[0].workload.trace_times.empty());
    // A workload file with the same is refused (test_workload), so is a results file's trace run without one.
    old["runs"][0]["workload"]["arrival"] = "trace";
    old["runs"][0]["workload"]["trace_path"] = "";
    EXPECT_ERROR(results_from_json(old.dump(), "old.json"), "old.json", "trace");
  }

  void badAxesAreNamed() {
    MatrixSpec m;
    m.axes = {{"weight_dtyp", {"f16"}}};
    EXPECT_ERROR(expand_matrix(m, tiny()), "weight_dtyp", "weight_dtype");  // and lists the known fields
    m.axes = {{"weight_dtype", {"f16", "f17"}}};
    EXPECT_ERROR(expand_matrix(m, tiny()), "weight_dtype", "f17");
    m.axes = {{"max_num_seqs", {"lots"}}};
    EXPECT_ERROR(expand_matrix(m, tiny()), "max_num_seqs", "lots");
    m.axes = {{"policy", {"fifo"}}};
    EXPECT_ERROR(expand_matrix(m, tiny()), "policy", "fifo");
    m.axes = {{"backend", {"cpu", "tpu"}}};
    EXPECT_ERROR(expand_matrix(m, tiny()), "backend", "tpu");
    // The CUDA knobs are axes like any other (graphs on/off is an A/B).
    m.axes = {{"backend", {"cpu", "cuda"}}, {"cuda_graphs", {"true", "false"}}};
    const auto cuda = expand_matrix(m, tiny());
    QCOMPARE((int)cuda.size(), 4);
    QCOMPARE(cuda[2].config.backend, std::string("cuda"));
    QCOMPARE(cuda[3].config.cuda_graphs, false);
    m.axes = {{"dependent_launch", {"true", "false"}}};
    const auto dependent = expand_matrix(m, tiny());
    QCOMPARE((int)dependent.size(), 2);
    QVERIFY(dependent[0].config.dependent_launch && !dependent[1].config.dependent_launch);
    m.axes = {{"best_of", {"2"}}};  // best_of below n = 1 is fine; below n = 3 is not
    WorkloadSpec w = tiny();
    w.n = 3;
    EXPECT_ERROR(expand_matrix(m, w), "best_of");
    m = {};
    m.kind = "rate_sweep";
    EXPECT_ERROR(expand_matrix(m, tiny()), "rates");
  }

  void matrixJsonRoundTripsAndRejectsUnknowns() {
    const std::string text = R"({
      "schema": "brisk.matrix", "version": 1, "name": "ab", "kind": "grid",
      "base": {"model": "demo", "threads": 2, "max_num_seqs": 8, "kv_dtype": "f16"},
      "axes": [{"field": "weight_dtype", "values": ["f32", "int8"]}, {"field": "max_num_seqs", "values": [1, 8]},
               {"field": "enable_prefix_caching", "values": [true, false]}],
      "repeats": 2, "warmup_requests": 1, "slo": {"ttft_s": 1, "tpot_s": 0.1},
      "quality_text": "q.txt"})";
    const MatrixSpec m = matrix_from_json(text, "ab.json");
    QCOMPARE(m.base.kv_dtype, std::string("f16"));
    QCOMPARE(m.base.max_num_seqs, 8);
    QCOMPARE(m.axes[1].values, (std::vector<std::string>{"1", "8"}));
    QCOMPARE(m.axes[2].values, (std::vector<std::string>{"true", "false"}));
    QCOMPARE(m.slo.tpot_s, 0.1);
    QCOMPARE(to_json(matrix_from_json(to_json(m), "x")), to_json(m));
    QCOMPARE(to_json(load_matrix(write("m.json", to_json(m)))), to_json(m));
    QCOMPARE((int)expand_matrix(m, tiny()).size(), 16);
    const std::string head = R"({"schema": "brisk.matrix", "version": 1, )";
    EXPECT_ERROR(matrix_from_json(head + R"("axis": []})", "u.json"), "u.json", "axis", "unknown field");
    EXPECT_ERROR(matrix_from_json(head + R"("base": {"max_num_seq": 4}})", "b.json"), "b.json",
                 "base.max_num_seq");
    EXPECT_ERROR(matrix_from_json(head + R"("base": {"max_num_seqs": 0}})", "c.json"), "c.json",
                 "base.max_num_seqs");
    EXPECT_ERROR(matrix_from_json(head + R"("kind": "zigzag"})", "k.json"), "k.json", "kind", "zigzag");
    EXPECT_ERROR(matrix_from_json(head + R"("axes": [{"field": "policy", "values": []}]})", "v.json"),
                 "v.json", "axes[0].values");
    EXPECT_ERROR(matrix_from_json(R"({"schema": "brisk.matrix", "version": 3})", "w.json"), "w.json",
                 "version");
  }

  // Matrix keys that would be ignored are refused, naming the file, the key
  // and the value: two axes on one field (the run labelled "static ·
  // continuous" ran continuous), a value listed twice, a sweep's list in a
  // matrix of another kind, and an axis on what the sweep varies.
  void matrixKeysThatWouldBeIgnoredAreRefused() {
    const std::string head = R"({"schema": "brisk.matrix", "version": 1, )";
    EXPECT_ERROR(matrix_from_json(head + R"("axes": [{"field": "policy", "values": ["static", "continuous"]},
                                                    {"field": "policy", "values": ["continuous"]}]})",
                                  "twice.json"),
                 "twice.json", "axes[1].field", "'policy'", "axes[0]");
    EXPECT_ERROR(
        matrix_from_json(head + R"("axes": [{"field": "max_num_seqs", "values": [8, "8"]}]})", "dup.json"),
        "dup.json", "axes[0].values", "'8'", "twice");
    EXPECT_ERROR(matrix_from_json(head + R"("kind": "grid", "rates": [1, 2]})", "grid.json"), "grid.json",
                 "field 'rates'", "grid");
    EXPECT_ERROR(matrix_from_json(head + R"("rates": [1, 2]})", "default.json"), "default.json",
                 "field 'rates'");
    EXPECT_ERROR(
        matrix_from_json(head + R"("kind": "rate_sweep", "rates": [1], "concurrencies": [2]})", "r.json"),
        "r.json", "field 'concurrencies'", "rate_sweep");
    EXPECT_ERROR(matrix_from_json(
                     head + R"("kind": "concurrency_sweep", "concurrencies": [1], "rates": [2]})", "c.json"),
                 "c.json", "field 'rates'", "concurrency_sweep");
    EXPECT_ERROR(matrix_from_json(head + R"("kind": "concurrency_sweep", "concurrencies": [1, 4],
                                            "axes": [{"field": "max_concurrency", "values": [2]}]})",
                                  "cc.json"),
                 "cc.json", "axes[0].field", "max_concurrency", "concurrencies");
    // What to_json writes (empty lists of the other kinds) still reads back.
    MatrixSpec s;
    s.kind = "rate_sweep";
    s.rates = {1, 4};
    s.axes = {{"policy", {"continuous", "static"}}, {"max_concurrency", {"2", "0"}}};
    QCOMPARE(to_json(matrix_from_json(to_json(s), "s.json")), to_json(s));
    s = {};
    s.kind = "concurrency_sweep";
    s.concurrencies = {1, 0};
    QCOMPARE(to_json(matrix_from_json(to_json(s), "s.json")), to_json(s));
  }

  // A directory where a file is expected: an ifstream opens it and reads
  // nothing, which read as "no prompts (one per line)".
  void directoriesAreNotFiles() {
    const std::string dir = dir_.path().toStdString();
    const char* folder = dir.c_str();
    EXPECT_ERROR(read_prompt_lines(folder), folder, "is a directory");
    EXPECT_ERROR(load_matrix(folder), folder, "is a directory");
    EXPECT_ERROR(load_results(folder), folder, "is a directory");
  }

  void aRealMatrixRunsOnTheDemoModel() {
    std::vector<MatrixProgress> progress;
    std::vector<std::string> finished;
    MatrixCallbacks cb;
    cb.progress = [&](const MatrixProgress& p) { progress.push_back(p); };
    cb.on_result = [&](const BenchResult& r) { finished.push_back(r.label); };
    results_ = run_matrix(demo_matrix(), tiny(), cb);
    QCOMPARE((int)results_.size(), 4);
    QCOMPARE(finished, (std::vector<std::string>{"f32", "f16", "f32", "f16"}));
    for (size_t i = 0; i < results_.size(); ++i) {
      const BenchResult& r = results_[i];
      QVERIFY2(r.error.empty(), r.error.c_str());
      QCOMPARE(r.repeat, (int)i / 2);
      QCOMPARE(r.matrix_name, std::string("demo precision"));
      QCOMPARE(r.config.weight_dtype, std::string(i % 2 ? "f16" : "f32"));
      QCOMPARE(r.summary.finished, 4);
      QCOMPARE(r.summary.goodput_fraction, 1.0);  // a 10 s TTFT target is met by every request
      QCOMPARE(r.slo.ttft_s, 10.0);
      QVERIFY(!r.created.empty() && r.created.back() == 'Z');
      QCOMPARE(r.model_sha256, std::string());  // the demo model has no file
      QCOMPARE(r.model.format, std::string("demo"));
      QVERIFY(!r.steps.empty());
      for (const RequestMetrics& q : r.requests) {
        QCOMPARE((int)q.token_times.size(), 4);
        QVERIFY(!q.prefill_chunks.empty());  // the timeline's prefill, per chunk
        QVERIFY(q.prefill_chunks.front().start >= q.arrival);
      }
    }
    // Progress: every run reported, fraction never falls and ends at 1, live steps arrive.
    QVERIFY(progress.size() >= 8);
    double last = 0;
    size_t live_steps = 0;
    std::set<std::string> phases;
    for (const MatrixProgress& p : progress) {
      QVERIFY2(p.fraction >= last - 1e-12, qPrintable(QString("%1 after %2").arg(p.fraction).arg(last)));
      last = p.fraction;
      QCOMPARE(p.runs, 4);
      live_steps += p.new_steps.size();
      phases.insert(p.phase);
    }
    QCOMPARE(progress.back().fraction, 1.0);
    QCOMPARE(progress.back().phase, std::string("done"));
    QCOMPARE(progress.back().eta_s, 0.0);
    QVERIFY(phases.count("loading") && phases.count("warmup") && phases.count("running") &&
            phases.count("done"));
    QVERIFY(live_steps > 0);
  }

  void resultsRoundTripExactly() {
    QVERIFY(!results_.empty());
    // One result, then a results file: to_json(from_json(x)) == x.
    const std::string one = to_json(results_[0]);
    QCOMPARE(to_json(bench_result_from_json(one, "one.json")), one);
    const std::string all = results_to_json(results_);
    const auto back = results_from_json(all, "all.json");
    QCOMPARE(back.size(), results_.size());
    QCOMPARE(results_to_json(back), all);
    QCOMPARE(back[1].label, std::string("f16"));
    QCOMPARE(back[1].settings, results_[1].settings);
    QCOMPARE(back[0].requests[0].token_times, results_[0].requests[0].token_times);
    QCOMPARE(back[0].requests[0].prefill_chunks.size(), results_[0].requests[0].prefill_chunks.size());
    QCOMPARE(summary_csv(back), summary_csv(results_));  // same figures from the stored copy
    // FP8 fast accumulation is on by default now; a result written before the
    // option existed (no such key) ran without it and must read so.
    QVERIFY(bench_result_from_json(one, "one.json").config.fp8_fast_accum);
    nlohmann::json old = nlohmann::json::parse(one);
    QVERIFY(old["config"].erase("fp8_fast_accum") == 1);
    QVERIFY(!bench_result_from_json(old.dump(), "old.json").config.fp8_fast_accum);
    // The L2 weight prefetch round-trips; a result written before it existed ran without it.
    BenchResult prefetch = results_[0];
    prefetch.config.l2_prefetch = true;
    QVERIFY(bench_result_from_json(to_json(prefetch), "prefetch.json").config.l2_prefetch);
    nlohmann::json before = nlohmann::json::parse(to_json(prefetch));
    QVERIFY(before["config"].erase("l2_prefetch") == 1);
    QVERIFY(!bench_result_from_json(before.dump(), "before.json").config.l2_prefetch);
    // So does the persistent decode kernel.
    BenchResult persistent = results_[0];
    persistent.config.persistent_decode = true;
    QVERIFY(bench_result_from_json(to_json(persistent), "persistent.json").config.persistent_decode);
    nlohmann::json older = nlohmann::json::parse(to_json(persistent));
    QVERIFY(older["config"].erase("persistent_decode") == 1);
    QVERIFY(!bench_result_from_json(older.dump(), "older.json").config.persistent_decode);
    // load_results reads a results file and a bare result.
    QCOMPARE((int)load_results(write("all.json", all)).size(), 4);
    QCOMPARE(results_to_json(load_results(write("one.json", one))), results_to_json({results_[0]}));
    EXPECT_ERROR(results_from_json(R"({"schema": "brisk.results", "version": 9, "runs": []})", "r.json"),
                 "r.json", "version");
    EXPECT_ERROR(results_from_json(
                     R"({"schema": "brisk.results", "version": 1, "runs": [{"summary": {"finished": "x"}}]})",
                     "s.json"),
                 "s.json", "runs[0].summary.finished");
  }

  void stopEndsTheMatrixAndFailuresAreKept() {
    // Stop during the second run: the first is kept, the second dropped.
    std::atomic<bool> stop{false};
    MatrixCallbacks cb;
    cb.stop = &stop;
    cb.progress = [&](const MatrixProgress& p) {
      if (p.run == 1 && p.phase == "running") stop = true;
    };
    const auto stopped = run_matrix(demo_matrix(), tiny(), cb);
    QCOMPARE((int)stopped.size(), 1);
    QVERIFY(stopped[0].error.empty());

    // A run that cannot load its model is recorded with the error; the matrix goes on.
    MatrixSpec m = demo_matrix();
    m.repeats = 1;
    m.axes = {{"model", {"/nonexistent/model.gguf", "demo"}}};
    const auto r = run_matrix(m, tiny());
    QCOMPARE((int)r.size(), 2);
    QVERIFY2(r[0].error.find("/nonexistent/model.gguf") != std::string::npos, r[0].error.c_str());
    QCOMPARE(r[0].label, std::string("/nonexistent/model.gguf"));
    QVERIFY(r[1].error.empty());
    QCOMPARE(r[1].summary.finished, 4);
    // A failed run survives a round trip, error and all.
    QCOMPARE(results_from_json(results_to_json(r), "f.json")[0].error, r[0].error);
  }

  // A run that fails before its model loads still records the machine it ran
  // on (described as a finished run's is), and no model: its results used to
  // carry a zeroed system block ("unknown CPU · 0 cores") and a zeroed model.
  // A base setting a CUDA-only field, on the CPU (backend auto without a
  // device): let through with one warning line, and the runs record the
  // field at its default, as the CLI's flags are (it had recorded
  // cuda_graphs false for runs it changed nothing in).
  void cpuRunsRecordCudaOnlyFieldsAtDefaults() {
    if (resolve_backend("auto") != "cpu") QSKIP("auto runs on CUDA here: the fields mean something");
    MatrixSpec m;
    m.base.model = "demo";
    m.base.threads = 1;
    m.base.cuda_graphs = false;
    m.base.fused_rope = true;
    m.warmup_requests = 0;
    WorkloadSpec w = tiny();
    w.num_requests = 1;
    const std::string note = cuda_only_fields_note(expand_matrix(m, w));
    QVERIFY2(note.find("cuda_graphs, fused_rope apply to the CUDA backend only") != std::string::npos,
             note.c_str());
    const auto r = run_matrix(m, w);
    QCOMPARE((int)r.size(), 1);
    QVERIFY2(r[0].error.empty(), r[0].error.c_str());
    QCOMPARE(r[0].config.cuda_graphs, true);
    QCOMPARE(r[0].config.fused_rope, false);
    m.base.cuda_graphs = true;
    m.base.fused_rope = false;
    QVERIFY(cuda_only_fields_note(expand_matrix(m, w)).empty());
  }

  void failedRunRecordsTheMachineAndNoModel() {
    MatrixSpec m;
    m.base.model = "/nonexistent/model.gguf";
    m.base.threads = 1;
    m.warmup_requests = 0;
    const auto r = run_matrix(m, tiny());
    QCOMPARE((int)r.size(), 1);
    QVERIFY(!r[0].error.empty());
    ProbeOptions po;
    po.threads = 1;
    po.measure = false;
    const SystemInfo here = probe_system(po);
    QVERIFY(!here.cpu_model.empty());
    QCOMPARE(r[0].system.cpu_model, here.cpu_model);
    QCOMPARE(r[0].system.physical_cores, here.physical_cores);
    QVERIFY(r[0].system.physical_cores > 0);
    QCOMPARE(r[0].system.kernel_isa, here.kernel_isa);
    QCOMPARE(r[0].system.cuda_available, here.cuda_available);
    QCOMPARE(r[0].system.cuda_reason, here.cuda_reason);
    QCOMPARE(r[0].system.backends.size(), here.backends.size());
    QVERIFY(!r[0].system.backends.empty());
    QCOMPARE(r[0].system.backend_used, resolve_backend("auto"));
    // The model never loaded: left default (the contract reports rely on), and not written.
    QVERIFY(r[0].model.architecture.empty());
    QCOMPARE(r[0].model.n_params, (uint64_t)0);
    const nlohmann::json j = nlohmann::json::parse(to_json(r[0]));
    QVERIFY2(!j.contains("model"), j.dump().c_str());
    QCOMPARE(j["system"]["cpu_model"].get<std::string>(), here.cpu_model);
    QCOMPARE(j["config"]["model"].get<std::string>(), std::string("/nonexistent/model.gguf"));
    // It reads back (no model block) and re-exports as the same bytes.
    const std::string text = results_to_json(r);
    const auto back = results_from_json(text, "f.json");
    QVERIFY(back[0].model.architecture.empty());
    QCOMPARE(back[0].system.cpu_model, here.cpu_model);
    QCOMPARE(results_to_json(back), text);
    // Files written before this hold a zeroed model and system there: still read, as "not loaded".
    nlohmann::json old = nlohmann::json::parse(text);
    old["runs"][0]["model"] = {{"path", ""},
                               {"name", ""},
                               {"format", ""},
                               {"architecture", ""},
                               {"synthetic", false},
                               {"n_params", 0},
                               {"dim", 0},
                               {"hidden_dim", 0},
                               {"n_layers", 0},
                               {"n_heads", 0},
                               {"n_kv_heads", 0},
                               {"head_dim", 0},
                               {"vocab_size", 0},
                               {"context_length", 0},
                               {"rope_theta", 10000.0},
                               {"norm_eps", 1e-5},
                               {"tied_embeddings", false},
                               {"weight_bytes", 0},
                               {"converted_to", ""},
                               {"tokenizer", ""},
                               {"tokenizer_vocab_size", 0}};
    old["runs"][0]["system"] = nlohmann::json::parse(to_json(SystemInfo{}));
    const auto old_runs = results_from_json(old.dump(2), "old.json");
    QCOMPARE((int)old_runs.size(), 1);
    QVERIFY(old_runs[0].model.architecture.empty());
    QCOMPARE(old_runs[0].model.n_params, (uint64_t)0);
    QCOMPARE(old_runs[0].error, r[0].error);
  }

  // A run on a backend this machine lacks is refused before anything runs,
  // once, with the reason and the runs that ask for it: each such run used
  // to load, fail and say the reason again, between runs that did run.
  void unavailableBackendIsRefusedBeforeAnyRun() {
    std::string reason;
    for (const BackendStatus& b : list_backends())
      if (b.name == "cuda") {
        if (b.available) QSKIP("a CUDA device is available here: nothing to refuse");
        reason = b.reason;
      }
    QVERIFY(!reason.empty());
    MatrixSpec m;
    m.warmup_requests = 0;
    m.axes = {{"backend", {"cpu", "cuda"}}, {"weight_dtype", {"f32", "f16"}}};
    const auto runs = expand_matrix(m, tiny());
    const std::string msg = error_of([&] { (void)check_matrix_inputs(m, runs); });
    for (const std::string& want : {std::string("backend 'cuda' is unavailable"), reason,
                                    std::string("cuda · f32"), std::string("cuda · f16")})
      QVERIFY2(msg.find(want) != std::string::npos, (msg + " lacks " + want).c_str());
    QVERIFY2(msg.find("cpu · f32") == std::string::npos, msg.c_str());  // the CPU runs do not ask for it
    // run_matrix (the window's path) refuses the same way, before its first run.
    int progress = 0, results = 0;
    MatrixCallbacks cb;
    cb.progress = [&](const MatrixProgress&) { ++progress; };
    cb.on_result = [&](const BenchResult&) { ++results; };
    EXPECT_ERROR(run_matrix(m, tiny(), cb), "backend 'cuda' is unavailable");
    QCOMPARE(progress, 0);
    QCOMPARE(results, 0);
    // One configuration: the reason, no list of runs.
    MatrixSpec one;
    one.base.backend = "cuda";
    const std::string single = error_of([&] { (void)check_matrix_inputs(one, expand_matrix(one, tiny())); });
    QVERIFY2(single.find(reason) != std::string::npos, single.c_str());
    QVERIFY2(single.find("base") == std::string::npos, single.c_str());
    // auto runs on the CPU: accepted.
    MatrixSpec autom;
    autom.axes = {{"weight_dtype", {"f32", "f16"}}};
    (void)check_matrix_inputs(autom, expand_matrix(autom, tiny()));
  }

  // A CUDA-only field varied (or set) where every run runs on the CPU is an
  // A/B of identical runs under two labels: refused, the field named. With
  // backend "cpu" that is the matrix's own fault (validate_matrix); with
  // "auto" it depends on the machine (check_matrix_inputs).
  void cudaOnlyFieldsOnTheCpuAreRefused() {
    MatrixSpec m;
    m.base.backend = "cpu";
    m.axes = {{"cuda_graphs", {"true", "false"}}};
    EXPECT_ERROR(validate_matrix(m, "m.json"), "m.json", "axes[0].field", "cuda_graphs", "CUDA backend only");
    EXPECT_ERROR(expand_matrix(m, tiny()), "cuda_graphs", "CUDA backend only");
    for (const char* f :
         {"fused_decode", "dependent_launch", "fused_rope", "fp8_fast_accum", "split_merge_in_kernel",
          "l2_prefetch", "persistent_decode", "gpu_memory_utilization"}) {
      m.axes = {{"weight_dtype", {"f32", "f16"}},
                {f,
                 {f == std::string("gpu_memory_utilization") ? "0.5" : "true",
                  f == std::string("gpu_memory_utilization") ? "0.8" : "false"}}};
      EXPECT_ERROR(validate_matrix(m, "m.json"), "axes[1].field", f);
    }
    m.axes = {{"backend", {"cpu"}}, {"dependent_launch", {"true", "false"}}};
    m.base.backend = "auto";
    EXPECT_ERROR(validate_matrix(m, "m.json"), "axes[1].field", "dependent_launch");
    // Set in the base of an all-CPU matrix: it would change nothing.
    m = {};
    m.base.backend = "cpu";
    m.base.fused_rope = true;
    EXPECT_ERROR(validate_matrix(m, "m.json"), "base.fused_rope", "CUDA backend only");
    m.base.fused_rope = false;
    m.base.l2_prefetch = true;
    EXPECT_ERROR(validate_matrix(m, "m.json"), "base.l2_prefetch", "CUDA backend only");
    m.base.l2_prefetch = false;
    m.base.persistent_decode = true;
    EXPECT_ERROR(validate_matrix(m, "m.json"), "base.persistent_decode", "CUDA backend only");
    m.base.persistent_decode = false;
    m.base.gpu_memory_utilization = 0.5;
    EXPECT_ERROR(validate_matrix(m, "m.json"), "base.gpu_memory_utilization");
    // A backend axis with CUDA in it is an A/B that means something; so is auto (the machine decides).
    m = {};
    m.axes = {{"backend", {"cpu", "cuda"}}, {"cuda_graphs", {"true", "false"}}};
    validate_matrix(m, "m.json");
    m.axes = {{"backend", {"cpu", "cuda"}}, {"l2_prefetch", {"true", "false"}}};
    const auto ab = expand_matrix(m, tiny());
    QCOMPARE((int)ab.size(), 4);
    QCOMPARE(ab[2].config.l2_prefetch, true);  // the last axis varies fastest
    QCOMPARE(ab[3].config.l2_prefetch, false);
    m.axes = {{"backend", {"cpu", "cuda"}}, {"persistent_decode", {"true", "false"}}};
    const auto persistent = expand_matrix(m, tiny());
    QCOMPARE((int)persistent.size(), 4);
    QCOMPARE(persistent[2].config.persistent_decode, true);
    QCOMPARE(persistent[3].config.persistent_decode, false);
    m.axes = {{"cuda_graphs", {"true", "false"}}};
    validate_matrix(m, "m.json");
    const auto runs = expand_matrix(m, tiny());
    const bool cuda = resolve_backend("auto") == "cuda";
    const std::string msg = error_of([&] { (void)check_matrix_inputs(m, runs); });
    if (cuda) {
      QCOMPARE(msg, std::string("(no error)"));
    } else {
      for (const char* want : {"cuda_graphs", "CUDA backend only", "'auto'"})
        QVERIFY2(msg.find(want) != std::string::npos, (msg + " lacks " + want).c_str());
      // Set in an auto base it is let through (the same matrix means something on a GPU machine).
      m.axes = {{"weight_dtype", {"f32", "f16"}}};
      m.base.fp8_fast_accum = false;  // away from its default
      (void)check_matrix_inputs(m, expand_matrix(m, tiny()));
    }
  }

  // A bad prompt dataset or trace fails the matrix before its first run
  // (no model loaded, no progress), naming the file, line and field: every
  // run used to read it as it started and fail after the runs before it.
  void badInputFilesFailBeforeAnyRun() {
    MatrixSpec m = demo_matrix();
    m.repeats = 1;
    const std::string dataset =
        write("bad-dataset.jsonl", "{\"prompt\": \"Once\"}\n\n{\"prompt\": \"x\", \"id\": 3}\n");
    const std::string trace =
        write("bad-trace.jsonl", "{\"timestamp\": 0}\n{\"timestamp\": 1, \"max_tokens\": 0}\n");
    WorkloadSpec from_file = tiny();
    from_file.prompt_len = LengthDist::parse("file:" + dataset);
    WorkloadSpec traced = tiny();
    traced.num_requests = 2;
    traced.arrival = "trace";
    traced.trace_path = trace;
    WorkloadSpec too_short = traced;
    too_short.trace_path = write("short-trace.jsonl", "{\"timestamp\": 0}\n");
    const std::vector<std::pair<WorkloadSpec, std::vector<std::string>>> cases = {
        {from_file, {dataset + ":3", "field 'id'", "unknown field"}},
        {traced, {trace + ":2", "field 'max_tokens'", "0"}},
        {too_short, {too_short.trace_path, "has 1 arrivals but num_requests is 2"}}};
    for (const auto& [w, needles] : cases) {
      int reports = 0;
      MatrixCallbacks cb;
      cb.progress = [&](const MatrixProgress&) { ++reports; };
      std::vector<BenchResult> results;
      const std::string msg = error_of([&] { results = run_matrix(m, w, cb); });
      for (const std::string& n : needles)
        QVERIFY2(msg.find(n) != std::string::npos,
                 qPrintable(QString("'%1' lacks '%2'").arg(msg.c_str(), n.c_str())));
      QCOMPARE(reports, 0);
      QVERIFY(results.empty());
    }
  }

  // check_matrix_inputs reads the files of every run, not the first's: a
  // bad file only a later run names is found. What it read is what
  // run_matrix replays: the file is not read again when the runs start.
  void inputsOfEveryRunAreReadBeforeTheFirst() {
    const std::string good = write("good.jsonl", "{\"prompt\": \"Once upon a time\", \"max_tokens\": 3}\n");
    const std::string bad = write("bad-second.jsonl", "{\"prompt\": \"x\"}\n{\"prompt\": 5}\n");
    MatrixSpec m = demo_matrix();
    m.repeats = 1;
    m.warmup_requests = 0;
    WorkloadSpec w = tiny();
    w.prompt_len = LengthDist::parse("file:" + good);
    std::vector<MatrixRun> runs = expand_matrix(m, w);
    QCOMPARE(runs.size(), size_t(2));
    runs[1].workload.prompt_len = LengthDist::parse("file:" + bad);
    const std::string line2 = bad + ":2";
    EXPECT_ERROR(check_matrix_inputs(runs), line2.c_str(), "field 'prompt'");
    runs[1].workload.arrival = "trace";
    runs[1].workload.prompt_len = runs[0].workload.prompt_len;
    runs[1].workload.trace_path = write("one-arrival.jsonl", "{\"timestamp\": 3}\n");
    EXPECT_ERROR(check_matrix_inputs(runs), "one-arrival.jsonl has 1 arrivals but num_requests is 4");
    runs[1] = runs[0];
    const MatrixInputs inputs = check_matrix_inputs(runs);
    write("good.jsonl", "no longer JSON\n");
    const auto r = run_matrix(m, w, {}, &inputs);
    QCOMPARE(r.size(), size_t(2));
    for (const BenchResult& x : r) {
      QVERIFY2(x.error.empty(), x.error.c_str());
      QCOMPARE(x.requests.size(), size_t(4));
      for (const RequestMetrics& q : x.requests) QCOMPARE(q.output_tokens, 3);  // the line's max_tokens
    }
    // Without inputs run_matrix reads them itself, before its first run.
    EXPECT_ERROR(run_matrix(m, w), "good.jsonl:1", "not a JSON object");
  }

  // The quality files are checked with the other inputs, before the first
  // run: they were read in the first run's quality phase, after its timed
  // benchmark, so a missing, empty or directory file cost every run.
  void qualityFilesAreCheckedBeforeTheFirstRun() {
    MatrixSpec m = demo_matrix();
    m.repeats = 1;
    m.warmup_requests = 0;
    const std::vector<MatrixRun> runs = expand_matrix(m, tiny());
    const std::string missing = dir_.filePath("no-such-quality.txt").toStdString();
    const std::string empty = write("empty-quality.txt", " \n\t\n");
    const std::string good = write("good-prompts.txt", "Once upon a time\n");
    const std::string badJson = write("bad-prompts.jsonl", "Once upon a time\n{\"prompt\": 5}\n");
    const std::string folder = dir_.path().toStdString();
    m.quality_text = missing;
    EXPECT_ERROR(check_matrix_inputs(m, runs), missing.c_str(), "cannot open quality text");
    m.quality_text = empty;
    EXPECT_ERROR(check_matrix_inputs(m, runs), empty.c_str(), "empty");
    m.quality_text = folder;
    EXPECT_ERROR(check_matrix_inputs(m, runs), folder.c_str(), "is a directory");
    m.quality_text.clear();
    m.quality_prompts = empty;
    EXPECT_ERROR(check_matrix_inputs(m, runs), empty.c_str(), "no prompts");
    m.quality_prompts = badJson;
    const std::string line2 = badJson + ":2";
    EXPECT_ERROR(check_matrix_inputs(m, runs), line2.c_str(), "\"prompt\"");
    m.quality_prompts = folder;
    EXPECT_ERROR(check_matrix_inputs(m, runs), folder.c_str(), "is a directory");
    m.quality_prompts = good;
    check_matrix_inputs(m, runs);  // good files pass
    // run_matrix checks them before its first run: no run, no result.
    m.quality_prompts = missing;
    int results = 0;
    MatrixCallbacks cb;
    cb.on_result = [&](const BenchResult&) { ++results; };
    EXPECT_ERROR(run_matrix(m, tiny(), cb), missing.c_str());
    QCOMPARE(results, 0);
    // So does it with inputs checked without the spec (the runs only).
    const MatrixInputs runsOnly = check_matrix_inputs(runs);
    EXPECT_ERROR(run_matrix(m, tiny(), cb, &runsOnly), missing.c_str());
    QCOMPARE(results, 0);
  }

  // validate_matrix is the matrix file's check, on a MatrixSpec made without
  // a file (the GUI's builder); expand_matrix applies it too.
  void matrixSpecsGetTheFileChecks() {
    MatrixSpec m;
    validate_matrix(m, "built");  // the defaults pass
    m.axes = {{"policy", {"static", "continuous"}}, {"policy", {"continuous"}}};
    EXPECT_ERROR(validate_matrix(m, "built"), "built: field 'axes[1].field'", "'policy'", "axes[0]");
    EXPECT_ERROR(expand_matrix(m, tiny()), "field 'axes[1].field'", "'policy'");
    m.axes = {{"max_num_seqs", {"8", "4", "8"}}};
    EXPECT_ERROR(validate_matrix(m, "built"), "field 'axes[0].values'", "'8'", "listed twice");
    m.axes = {{"policy", {}}};
    EXPECT_ERROR(validate_matrix(m, "built"), "field 'axes[0].values'");
    m = {};
    m.rates = {1, 2};
    EXPECT_ERROR(validate_matrix(m, "built"), "field 'rates'", "grid");
    m = {};
    m.kind = "rate_sweep";
    m.rates = {4, -1};
    EXPECT_ERROR(validate_matrix(m, "built"), "field 'rates'", "-1");
    m = {};
    m.kind = "concurrency_sweep";
    m.concurrencies = {1, 4};
    m.axes = {{"max_concurrency", {"2"}}};
    EXPECT_ERROR(validate_matrix(m, "built"), "field 'axes[0].field'", "concurrencies");
    m = {};
    m.repeats = 0;
    EXPECT_ERROR(validate_matrix(m, "built"), "field 'repeats'");
    m = {};
    m.slo.tpot_s = -0.5;
    EXPECT_ERROR(validate_matrix(m, "built"), "field 'slo.tpot_s'");
    m = {};
    m.base.max_num_seqs = 0;
    EXPECT_ERROR(validate_matrix(m, "built"), "field 'base.max_num_seqs'");
  }

  void qualityCoversTheReferenceRun() {
    // With quality files, the F32 run is scored too: its perplexity is the
    // reference the INT8 run is compared with, and against itself it shows
    // what the comparison gives when nothing differs.
    MatrixSpec m = demo_matrix();
    m.axes = {{"weight_dtype", {"f32", "int8"}}};
    m.repeats = 1;
    m.quality_text = write("q.txt",
                           "Once upon a time there was a little girl who liked to play in the park. "
                           "One day she found a red ball under a tree and took it home.");
    m.quality_prompts = write("p.txt", "Once upon a time\nThe little dog\n");
    const auto r = run_matrix(m, tiny());
    QCOMPARE((int)r.size(), 2);
    for (const BenchResult& x : r) {
      QVERIFY2(x.error.empty(), x.error.c_str());
      QVERIFY(x.quality.measured);
    }
    const QualityFigures& f32 = r[0].quality;
    const QualityFigures& i8 = r[1].quality;
    QVERIFY(f32.reference);
    QVERIFY(!i8.reference);
    QVERIFY(f32.perplexity > 1);
    QCOMPARE(f32.perplexity, f32.baseline_perplexity);
    QCOMPARE(i8.baseline_perplexity, f32.perplexity);
    QVERIFY(f32.kl_mean < 1e-9);
    QCOMPARE(f32.top1_agreement, 1.0);
    QCOMPARE(f32.greedy_agreement, 1.0);
    QCOMPARE(f32.agreement_prompts, 2);
    QVERIFY(i8.kl_mean > 0);
    // The flag survives a results file.
    QVERIFY(bench_result_from_json(to_json(r[0]), "r.json").quality.reference);
    QVERIFY(!bench_result_from_json(to_json(r[1]), "r.json").quality.reference);
  }

  void modelFilesAreHashed() {
    // FIPS 180-4 test vectors, then a real model file hashed by run_matrix (streamed).
    QCOMPARE(bench::sha256_hex(""),
             std::string("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    QCOMPARE(bench::sha256_hex("abc"),
             std::string("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    QCOMPARE(bench::sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
             std::string("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
    QCOMPARE(bench::sha256_hex(std::string(1000000, 'a')),
             std::string("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"));
    const std::string model = std::string(BRISK_SHARED_MODELS) + "/stories260K/stories260K.gguf";
    if (!QFile::exists(QString::fromStdString(model)))
      QSKIP(qPrintable("no " + QString::fromStdString(model)));
    MatrixSpec m = demo_matrix();
    m.base.model = model;
    m.axes.clear();
    m.repeats = 1;
    const auto r = run_matrix(m, tiny());
    QCOMPARE((int)r.size(), 1);
    QVERIFY2(r[0].error.empty(), r[0].error.c_str());
    QCOMPARE(r[0].model_sha256, bench::sha256_file(model));
    QCOMPARE(r[0].model_sha256.size(), size_t(64));
  }

  void filesValidateAgainstTheSchemas() {
    if (QProcess::execute("/usr/bin/python3", {"-c", "import jsonschema"}) != 0)
      QSKIP("/usr/bin/python3 lacks jsonschema (apt install python3-jsonschema): schema validation not run");
    QVERIFY(!results_.empty());
    const std::string schemas = std::string(BRISK_SOURCE_DIR) + "/docs/schemas/";
    MatrixSpec m = demo_matrix();
    m.kind = "rate_sweep";
    m.rates = {1, 4};
    m.concurrencies = {2};
    std::vector<BenchResult> with_failure = results_;
    with_failure.push_back({});
    with_failure.back().error = "demo failure";
    struct Case {
      std::string schema, file;
      bool valid;
    };
    std::vector<Case> cases = {
        {"results", write("results.json", results_to_json(with_failure)), true},
        {"workload", write("workload.json", to_json(tiny())), true},
        {"matrix", write("matrix.json", to_json(m)), true},
        // The schemas do reject: a wrong constant, an unknown workload field.
        {"results", write("bad_results.json", R"({"schema": "brisk.results", "version": 2, "runs": []})"),
         false},
        {"workload", write("bad_workload.json", R"({"schema": "brisk.workload", "version": 1, "rte": 1})"),
         false},
    };
    for (const std::string& n : builtin_workload_names())
      cases.push_back(
          {"workload", std::string(BRISK_SOURCE_DIR) + "/resources/workloads/" + n + ".json", true});
    const char* script =
        "import json, sys, jsonschema\n"
        "schema = json.load(open(sys.argv[1]))\n"
        "jsonschema.Draft202012Validator.check_schema(schema)\n"
        "jsonschema.Draft202012Validator(schema).validate(json.load(open(sys.argv[2])))\n";
    for (const Case& c : cases) {
      QProcess p;
      p.start("/usr/bin/python3",
              {"-c", script, QString::fromStdString(schemas + c.schema + ".v1.schema.json"),
               QString::fromStdString(c.file)});
      QVERIFY(p.waitForFinished(60000));
      const QString err = QString::fromUtf8(p.readAllStandardError()).right(1500);
      QVERIFY2((p.exitCode() == 0) == c.valid, qPrintable(QString::fromStdString(c.file) + ": " + err));
    }
  }
};

QTEST_GUILESS_MAIN(TestBenchMatrix)
#include "test_bench_matrix.moc"
