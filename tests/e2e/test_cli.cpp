// brisk-cli end to end: runs the built binary (BRISK_CLI_PATH) with QProcess
// and checks exit codes (0 ok, 1 runtime error, 2 usage error), what it
// prints, and the files it writes. Every run has a 60 s limit.
#include <signal.h>

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QRegularExpression>
#include <QTemporaryDir>
#include <QtTest>
#include <vector>

#include "brisk/sysinfo.h"
#include "e2e/support/cli_run.h"

namespace {

QJsonObject parseObject(const QByteArray& bytes, QString* error) {
  QJsonParseError pe;
  const QJsonDocument d = QJsonDocument::fromJson(bytes, &pe);
  if (pe.error != QJsonParseError::NoError || !d.isObject()) {
    *error = QStringLiteral("not a JSON object (%1): %2")
                 .arg(pe.errorString(), QString::fromUtf8(bytes.left(500)));
    return {};
  }
  return d.object();
}

std::vector<int> ids(const QJsonValue& v) {
  std::vector<int> out;
  for (const QJsonValue& x : v.toArray()) out.push_back(x.toInt(-1));
  return out;
}

QString modelsDir() { return QStringLiteral(BRISK_SHARED_MODELS); }

// From /work/shared/models/stories260K/README.md (llama2.c run.c, greedy): the
// first 40 ids after BOS.
const std::vector<int> kStories260KGreedy40 = {
    403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337,
    410, 408, 419, 292, 411, 322, 265, 282, 295, 433, 426, 385, 328, 432, 358, 394, 261, 370, 432, 352};

}  // namespace

class TestCli : public QObject {
  Q_OBJECT

 private:
  QTemporaryDir dir_;
  QString path(const QString& name) const { return dir_.filePath(name); }

 private slots:
  void initTestCase() {
    QVERIFY(dir_.isValid());
    QVERIFY2(QFileInfo(QStringLiteral(BRISK_CLI_PATH)).isExecutable(),
             qPrintable(QStringLiteral("brisk-cli not built at %1").arg(BRISK_CLI_PATH)));
  }

  // ---------------- help and usage ----------------

  void topLevelHelp() {
    for (const QString& flag : {QStringLiteral("--help"), QStringLiteral("-h"), QStringLiteral("help")}) {
      RUN_CLI(r, flag);
      EXPECT_EXIT(r, 0);
      for (const char* cmd : {"info", "generate", "bench", "make-model"})
        EXPECT_IN(r.out, QLatin1String(cmd), r);
      EXPECT_IN(r.out, QStringLiteral("usage"), r);
    }
    RUN_CLI(none);  // no command at all: usage on stderr, exit 2
    EXPECT_EXIT(none, 2);
    EXPECT_IN(none.err, QStringLiteral("usage"), none);
  }

  void subcommandHelp_data() {
    QTest::addColumn<QString>("command");
    QTest::addColumn<QStringList>("flags");
    QTest::newRow("info") << "info" << QStringList{"--tokenizer", "--json", "--tensors", "--help"};
    QTest::newRow("generate") << "generate"
                              << QStringList{"-p, --prompt",
                                             "--prompts",
                                             "--out",
                                             "--json",
                                             "--no-bos",
                                             "--max-tokens",
                                             "--temperature",
                                             "--top-k",
                                             "--top-p",
                                             "--min-p",
                                             "--repetition-penalty",
                                             "--seed",
                                             "--stop",
                                             "--ignore-eos",
                                             "--tokenizer",
                                             "--threads",
                                             "--block-size",
                                             "--kv-blocks",
                                             "--kv-bytes",
                                             "--max-num-seqs",
                                             "--max-num-batched-tokens",
                                             "--max-model-len",
                                             "--policy"};
    QTest::newRow("make-model") << "make-model"
                                << QStringList{"--shape", "--dims", "--dtype", "--seed", "tiny"};
  }
  void subcommandHelp() {
    QFETCH(QString, command);
    QFETCH(QStringList, flags);
    for (const QString& h : {QStringLiteral("--help"), QStringLiteral("-h")}) {
      RUN_CLI(r, command, h);
      EXPECT_EXIT(r, 0);
      EXPECT_IN(r.out, QStringLiteral("usage: brisk-cli ") + command, r);
      for (const QString& f : flags) EXPECT_IN(r.out, f, r);
    }
  }

  // A crash leaves its stack on stderr (a run on a lent GPU is seldom repeatable) and still dies of
  // its signal. The signal comes from outside, mid-run, as an abort inside a library would.
  void fatalSignalPrintsStack() {
    QProcess p;
    p.start(QStringLiteral(BRISK_CLI_PATH), {QStringLiteral("bench"), QStringLiteral("demo"),
                                             QStringLiteral("--num-requests"), QStringLiteral("100000")});
    QVERIFY2(p.waitForStarted(10000), "cannot start brisk-cli");
    QByteArray err;
    // The run has begun (the handler is installed first thing in main) once it names its requests.
    for (int waited = 0; !err.contains("requests on demo") && waited < 60000; waited += 50) {
      p.waitForReadyRead(50);
      err += p.readAllStandardError();
    }
    QVERIFY2(err.contains("requests on demo"), err.constData());
    QCOMPARE(::kill((pid_t)p.processId(), SIGABRT), 0);
    QVERIFY(p.waitForFinished(30000));
    err += p.readAllStandardError();
    QCOMPARE(p.exitStatus(), QProcess::CrashExit);
    QCOMPARE(p.exitCode(), SIGABRT);  // QProcess reports the terminating signal here
    QVERIFY2(err.contains("brisk-cli: fatal signal 6 (ABRT); stack:"), err.constData());
    QVERIFY2(err.contains("(main+"), err.constData());  // the frames are named
  }

  void unknownCommand() {
    RUN_CLI(r, QStringLiteral("frobnicate"), QStringLiteral("demo"));
    EXPECT_EXIT(r, 2);
    EXPECT_IN(r.err, QStringLiteral("frobnicate"), r);
    EXPECT_IN(r.err, QStringLiteral("usage"), r);
  }

  void usageErrors_data() {
    QTest::addColumn<QStringList>("args");
    QTest::addColumn<QString>("needle");
    const QString out = QDir::temp().filePath(QStringLiteral("brisk-cli-never-written.gguf"));
    QTest::newRow("unknown flag") << QStringList{"generate", "demo", "-p", "x", "--bogus"} << "--bogus";
    QTest::newRow("unknown flag before the model")
        << QStringList{"generate", "--bogus", "demo", "-p", "x"} << "--bogus";
    QTest::newRow("--max-tokens abc")
        << QStringList{"generate", "demo", "-p", "x", "--max-tokens", "abc"} << "--max-tokens";
    QTest::newRow("--max-tokens 0") << QStringList{"generate", "demo", "-p", "x", "--max-tokens", "0"}
                                    << "--max-tokens";
    QTest::newRow("--max-tokens 8x") << QStringList{"generate", "demo", "-p", "x", "--max-tokens", "8x"}
                                     << "--max-tokens";
    QTest::newRow("--temperature -1")
        << QStringList{"generate", "demo", "-p", "x", "--temperature", "-1"} << "--temperature";
    QTest::newRow("--temperature nan")
        << QStringList{"generate", "demo", "-p", "x", "--temperature", "nan"} << "--temperature";
    QTest::newRow("--top-p 2") << QStringList{"generate", "demo", "-p", "x", "--top-p", "2"} << "--top-p";
    QTest::newRow("--top-p 0") << QStringList{"generate", "demo", "-p", "x", "--top-p", "0"} << "--top-p";
    QTest::newRow("--top-k -3") << QStringList{"generate", "demo", "-p", "x", "--top-k", "-3"} << "--top-k";
    QTest::newRow("--min-p 1.5") << QStringList{"generate", "demo", "-p", "x", "--min-p", "1.5"} << "--min-p";
    QTest::newRow("--seed x") << QStringList{"generate", "demo", "-p", "x", "--seed", "x"} << "--seed";
    QTest::newRow("--threads many") << QStringList{"generate", "demo", "-p", "x", "--threads", "many"}
                                    << "--threads";
    QTest::newRow("--policy fifo") << QStringList{"generate", "demo", "-p", "x", "--policy", "fifo"}
                                   << "--policy";
    QTest::newRow("--stop empty") << QStringList{"generate", "demo", "-p", "x", "--stop", ""} << "stop";
    QTest::newRow("switch given a value")
        << QStringList{"generate", "demo", "-p", "x", "--json=yes"} << "--json";
    QTest::newRow("flag given twice")
        << QStringList{"generate", "demo", "-p", "x", "--max-tokens", "5", "--max-tokens", "6"}
        << "--max-tokens";
    QTest::newRow("-p without a value") << QStringList{"generate", "demo", "-p"} << "--prompt";
    QTest::newRow("no prompt") << QStringList{"generate", "demo"} << "-p";
    QTest::newRow("both -p and --prompts")
        << QStringList{"generate", "demo", "-p", "x", "--prompts", "a.jsonl", "--out", "b.jsonl"}
        << "--prompts";
    QTest::newRow("--prompts without --out")
        << QStringList{"generate", "demo", "--prompts", "a.jsonl"} << "--out";
    QTest::newRow("--out with -p") << QStringList{"generate", "demo", "-p", "x", "--out", "o.jsonl"}
                                   << "--out";
    QTest::newRow("--logprobs without --json")
        << QStringList{"generate", "demo", "-p", "x", "--logprobs", "2"} << "--logprobs";
    QTest::newRow("--prompt-logprobs without --json")
        << QStringList{"generate", "demo", "-p", "x", "--prompt-logprobs", "2"} << "--prompt-logprobs";
    QTest::newRow("--quantize-embeddings without --dtype")
        << QStringList{"generate", "demo", "-p", "x", "--quantize-embeddings"} << "--quantize-embeddings";
    QTest::newRow("--fp8-per-tensor with int8")
        << QStringList{"generate", "demo", "-p", "x", "--dtype", "int8", "--fp8-per-tensor"}
        << "--fp8-per-tensor";
    QTest::newRow("quantize --fp8-per-tensor with f16")
        << QStringList{"quantize", "demo", out, "--dtype", "f16", "--fp8-per-tensor"} << "--fp8-per-tensor";
    QTest::newRow("--speculate with static batching")
        << QStringList{"generate", "demo", "-p", "x", "--speculate", "ngram:4", "--policy", "static"}
        << "--speculate";
    QTest::newRow("bench --compare with --speculate")
        << QStringList{"bench", "demo", "--compare", "--speculate", "ngram"} << "--compare";
    QTest::newRow("perplexity --kv-blocks")
        << QStringList{"perplexity", "demo", "--text", "t.txt", "--kv-blocks", "2"} << "--kv-blocks";
    QTest::newRow("--n past --beam-width")
        << QStringList{"generate", "demo", "-p", "x", "--beam-width", "2", "--n", "3"} << "flag --n:";
    QTest::newRow("perplexity --context past the model's")
        << QStringList{"perplexity", "demo",  "--text", BRISK_SOURCE_DIR "/resources/eval/stories.txt",
                       "--context",  "100000"}
        << "flag --context:";
    // CUDA-only flags with --backend cpu would change nothing: refused, the flag named.
    for (const QStringList& f : {QStringList{"--no-cuda-graphs"}, QStringList{"--no-fused-decode"},
                                 QStringList{"--no-dependent-launch"}, QStringList{"--fused-rope"},
                                 QStringList{"--split-merge-in-kernel"}, QStringList{"--l2-prefetch"},
                                 QStringList{"--persistent-decode"}, QStringList{"--no-fp8-fast-accum"},
                                 QStringList{"--gpu-memory-utilization", "0.5"}})
      QTest::newRow(qPrintable("generate --backend cpu " + f.join(' ')))
          << (QStringList{"generate", "demo", "-p", "x", "--backend", "cpu"} + f)
          << ("flag " + f[0] + ": applies to the CUDA backend only");
    QTest::newRow("bench --backend cpu --no-cuda-graphs")
        << QStringList{"bench", "demo", "--backend", "cpu", "--no-cuda-graphs"} << "flag --no-cuda-graphs";
    QTest::newRow("perplexity --backend cpu --fused-rope")
        << QStringList{"perplexity", "demo", "--text", "t.txt", "--backend", "cpu", "--fused-rope"}
        << "flag --fused-rope";
    QTest::newRow("generate without a model") << QStringList{"generate", "-p", "x"} << "MODEL";
    QTest::newRow("generate with two models")
        << QStringList{"generate", "demo", "demo", "-p", "x"} << "MODEL";
    QTest::newRow("info without a model") << QStringList{"info"} << "MODEL";
    QTest::newRow("info unknown flag") << QStringList{"info", "demo", "--bogus"} << "--bogus";
    QTest::newRow("make-model without OUT") << QStringList{"make-model", "--shape", "tiny"} << "OUT";
    QTest::newRow("make-model --dims x")
        << QStringList{"make-model", "--dims", "64,x,2,4,2", out} << "--dims";
    QTest::newRow("make-model --dims too few")
        << QStringList{"make-model", "--dims", "64,192", out} << "--dims";
    QTest::newRow("make-model --shape and --dims")
        << QStringList{"make-model", "--shape", "tiny", "--dims", "64,192,2,4,2", out} << "--dims";
    QTest::newRow("make-model --seed -1") << QStringList{"make-model", "--seed", "-1", out} << "--seed";
    QTest::newRow("make-model: unknown shape")
        << QStringList{"make-model", "--shape", "huge", out} << "flag --shape: 'huge'";
    QTest::newRow("make-model: unknown dtype")
        << QStringList{"make-model", "--shape", "tiny", "--dtype", "q4", out} << "flag --dtype: 'q4'";
    QTest::newRow("make-model: dims not divisible")
        << QStringList{"make-model", "--dims", "64,192,2,3,1", out} << "divisible";
    QTest::newRow("make-model: heads not divisible by KV heads")
        << QStringList{"make-model", "--dims", "64,192,2,4,3", out} << "KV heads";
  }
  void usageErrors() {
    QFETCH(QStringList, args);
    QFETCH(QString, needle);
    const CliRun r = runCli(args);
    QVERIFY2(!r.timed_out && !r.crashed && !r.failed_to_start, qPrintable(describe(r)));
    EXPECT_EXIT(r, 2);
    EXPECT_IN(r.err, needle, r);
    QVERIFY2(!QFileInfo::exists(QDir::temp().filePath(QStringLiteral("brisk-cli-never-written.gguf"))),
             "a usage error must not write the output file");
  }

  // ---------------- runtime errors: exit 1, the file named ----------------

  void runtimeErrors_data() {
    QTest::addColumn<QStringList>("args");
    QTest::addColumn<QStringList>("needles");
    const QString missing = QStringLiteral("/nonexistent/brisk/model.gguf");
    QTest::newRow("info: no such model") << QStringList{"info", missing} << QStringList{missing};
    QTest::newRow("generate: no such model")
        << QStringList{"generate", missing, "-p", "hi"} << QStringList{missing};
    QTest::newRow("generate: no such tokenizer")
        << QStringList{"generate", "demo", "-p", "hi", "--tokenizer", "/nonexistent/tok.model"}
        << QStringList{"/nonexistent/tok.model"};
    QTest::newRow("generate: no such prompts file")
        << QStringList{"generate", "demo", "--prompts", "/nonexistent/in.jsonl", "--out", "o.jsonl"}
        << QStringList{"/nonexistent/in.jsonl"};
    QTest::newRow("generate: max-model-len past the context")
        << QStringList{"generate", "demo", "-p", "hi", "--max-model-len", "100000"}
        << QStringList{"max_model_len"};
    QTest::newRow("bench: no such model")
        << QStringList{"bench", missing, "--num-requests", "2", "--warmup", "0"}
        << QStringList{missing, "failed"};
    QTest::newRow("bench --json: no such model")
        << QStringList{"bench", missing, "--num-requests", "2", "--warmup", "0", "--json"}
        << QStringList{missing, "failed"};
    QTest::newRow("make-model: unwritable OUT")
        << QStringList{"make-model", "--shape", "tiny", "/nonexistent/dir/out.gguf"}
        << QStringList{"/nonexistent/dir/out.gguf"};
  }
  void runtimeErrors() {
    QFETCH(QStringList, args);
    QFETCH(QStringList, needles);
    const CliRun r = runCli(args);
    QVERIFY2(!r.timed_out && !r.crashed && !r.failed_to_start, qPrintable(describe(r)));
    EXPECT_EXIT(r, 1);
    for (const QString& n : needles) EXPECT_IN(r.err, n, r);
  }

  // Where the results go is checked before any run: a bad --out or --report
  // path used to fail after the whole benchmark, losing it.
  void benchChecksItsOutputsFirst_data() {
    QTest::addColumn<QStringList>("flags");
    QTest::addColumn<QString>("needle");
    QTest::newRow("unknown report suffix")
        << QStringList{"--report", path(QStringLiteral("r.xlsx"))} << ".xlsx";
    QTest::newRow("report path is a folder") << QStringList{"--report", dir_.path()} << "is a folder";
    QTest::newRow("--out in a missing folder") << QStringList{"--out", "/nonexistent/brisk/r.json"}
                                               << "the folder /nonexistent/brisk does not exist";
  }
  void benchChecksItsOutputsFirst() {
    QFETCH(QStringList, flags);
    QFETCH(QString, needle);
    const CliRun r = runCli(QStringList{"bench", "demo", "--num-requests", "2", "--warmup", "0"} + flags);
    QVERIFY2(!r.timed_out && !r.crashed && !r.failed_to_start, qPrintable(describe(r)));
    EXPECT_EXIT(r, 1);
    EXPECT_IN(r.err, needle, r);
    QVERIFY2(!r.err.contains("run 1/1"), qPrintable(describe(r)));  // nothing ran
  }

  // An existing file is written in place, even in a folder we may not write (/dev).
  void benchWritesToAnExistingFile() {
    RUN_CLI(r, QStringLiteral("bench"), QStringLiteral("demo"), QStringLiteral("--num-requests"),
            QStringLiteral("1"), QStringLiteral("--prompt-len"), QStringLiteral("fixed:4"),
            QStringLiteral("--output-len"), QStringLiteral("fixed:2"), QStringLiteral("--warmup"),
            QStringLiteral("0"), QStringLiteral("--out"), QStringLiteral("/dev/null"));
    EXPECT_EXIT(r, 0);
  }

  // A run whose every request ended in an error measured nothing: it fails the command.
  void benchWithEveryRequestFailedExitsOne() {
    // n = 4 sequences cannot fit max_num_seqs = 2: the engine refuses each request.
    RUN_CLI(r, QStringLiteral("bench"), QStringLiteral("demo"), QStringLiteral("--num-requests"),
            QStringLiteral("2"), QStringLiteral("--n"), QStringLiteral("4"), QStringLiteral("--temperature"),
            QStringLiteral("1"), QStringLiteral("--max-num-seqs"), QStringLiteral("2"),
            QStringLiteral("--prompt-len"), QStringLiteral("fixed:8"), QStringLiteral("--output-len"),
            QStringLiteral("fixed:4"), QStringLiteral("--warmup"), QStringLiteral("0"));
    EXPECT_EXIT(r, 1);
    EXPECT_IN(r.err, QStringLiteral("all 2 requests ended in an error"), r);
    EXPECT_IN(r.out, QStringLiteral("0/2"), r);  // the table still shows the run
  }

  // Long run labels get columns wide enough to stay apart.
  void benchTableColumnsFitTheirLabels() {
    const QString matrix = path(QStringLiteral("long-labels.json"));
    QFile f(matrix);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write(R"({"schema": "brisk.matrix", "version": 1, "name": "long", "kind": "grid", "repeats": 1,
      "warmup_requests": 0, "base": {"threads": 1, "max_num_seqs": 2},
      "axes": [{"field": "weight_dtype", "values": ["f32", "f16"]},
               {"field": "kv_dtype", "values": ["bf16"]},
               {"field": "policy", "values": ["continuous"]}]})");
    f.close();
    RUN_CLI(r, QStringLiteral("bench"), QStringLiteral("demo"), QStringLiteral("--matrix"), matrix,
            QStringLiteral("--num-requests"), QStringLiteral("2"), QStringLiteral("--prompt-len"),
            QStringLiteral("fixed:8"), QStringLiteral("--output-len"), QStringLiteral("fixed:2"),
            QStringLiteral("--no-limits"));
    EXPECT_EXIT(r, 0);
    const QString header = QString::fromUtf8(r.out.split('\n').value(0));
    QVERIFY2(header.contains(QStringLiteral("  f32 · bf16 · continuous  ")), qPrintable(header));
    QVERIFY2(header.endsWith(QStringLiteral("  f16 · bf16 · continuous")), qPrintable(header));
  }

  // ---------------- backends ----------------

  // Whether this machine can run --backend cuda (asked the way a user would).
  bool cudaRuns() {
    const CliRun g = runCli({QStringLiteral("generate"), QStringLiteral("demo"), QStringLiteral("-p"),
                             QStringLiteral("x"), QStringLiteral("--max-tokens"), QStringLiteral("1"),
                             QStringLiteral("--backend"), QStringLiteral("cuda")});
    return g.code == 0;
  }
  // The reason brisk-cli gives for CUDA being unavailable ("CUDA: unavailable — REASON").
  QString cudaReason() {
    const CliRun s = runCli({QStringLiteral("sysinfo"), QStringLiteral("--json"), QStringLiteral("--quick")});
    QString err;
    return parseObject(s.out, &err).value(QStringLiteral("cuda_reason")).toString();
  }

  // bench on a backend this machine lacks: refused before anything runs, the
  // reason said once, exit 1 (as generate does). It used to load, fail, print
  // the reason several times, "N requests on ..." and a table of "-".
  void benchRefusesAnUnavailableBackendUpfront() {
    if (cudaRuns()) QSKIP("a CUDA device is available here: nothing to refuse");
    const QString reason = cudaReason();
    QVERIFY(!reason.isEmpty());
    const QStringList common{QStringLiteral("--num-requests"), QStringLiteral("2"),
                             QStringLiteral("--prompt-len"),   QStringLiteral("fixed:4"),
                             QStringLiteral("--output-len"),   QStringLiteral("fixed:2"),
                             QStringLiteral("--warmup"),       QStringLiteral("0")};
    const QString matrix = path(QStringLiteral("cuda-axis.json"));
    QFile f(matrix);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write(R"({"schema": "brisk.matrix", "version": 1, "name": "backends", "kind": "grid",
      "axes": [{"field": "backend", "values": ["cpu", "cuda"]},
               {"field": "policy", "values": ["continuous", "static"]}]})");
    f.close();
    for (const QStringList& extra :
         {QStringList{"--backend", "cuda"}, QStringList{"--backend", "cuda", "--compare"},
          QStringList{"--backend", "cuda", "--json"}, QStringList{"--matrix", matrix}}) {
      const CliRun r = runCli(QStringList{QStringLiteral("bench"), QStringLiteral("demo")} + common + extra);
      CHECK_RAN(r);
      EXPECT_EXIT(r, 1);
      QVERIFY2(QString::fromUtf8(r.err).count(reason) == 1, qPrintable(describe(r)));
      EXPECT_IN(r.err, QStringLiteral("backend 'cuda' is unavailable"), r);
      QVERIFY2(!r.err.contains("requests on"), qPrintable(describe(r)));  // nothing started
      QVERIFY2(r.out.isEmpty(), qPrintable(describe(r)));                 // no table of "-"
      if (extra.contains(QStringLiteral("--matrix"))) {
        EXPECT_IN(r.err, QStringLiteral("cuda · continuous"), r);
        EXPECT_IN(r.err, QStringLiteral("cuda · static"), r);
        QVERIFY2(!r.err.contains("cpu · continuous"), qPrintable(describe(r)));
      }
    }
  }

  // With --backend auto where that is the CPU, CUDA-only flags are ignored
  // with one warning line (the same command runs on a GPU machine).
  void cudaOnlyFlagsWithAutoOnTheCpuWarn() {
    if (cudaRuns()) QSKIP("a CUDA device is available here: auto runs on it");
    RUN_CLI(r, QStringLiteral("generate"), QStringLiteral("demo"), QStringLiteral("-p"), QStringLiteral("x"),
            QStringLiteral("--max-tokens"), QStringLiteral("2"), QStringLiteral("--no-cuda-graphs"),
            QStringLiteral("--fused-rope"));
    EXPECT_EXIT(r, 0);
    const QStringList warnings =
        QString::fromUtf8(r.err).split(QLatin1Char('\n')).filter(QStringLiteral("ignored"));
    QVERIFY2(warnings.size() == 1, qPrintable(describe(r)));
    for (const char* want : {"warning", "--no-cuda-graphs", "--fused-rope", "CUDA backend only", "CPU"})
      QVERIFY2(warnings[0].contains(QLatin1String(want)), qPrintable(describe(r)));
    // A bench records what ran: the ignored settings are not in its config.
    RUN_CLI(b, QStringLiteral("bench"), QStringLiteral("demo"), QStringLiteral("--num-requests"),
            QStringLiteral("1"), QStringLiteral("--prompt-len"), QStringLiteral("fixed:4"),
            QStringLiteral("--output-len"), QStringLiteral("fixed:2"), QStringLiteral("--warmup"),
            QStringLiteral("0"), QStringLiteral("--no-limits"), QStringLiteral("--no-cuda-graphs"),
            QStringLiteral("--json"));
    EXPECT_EXIT(b, 0);
    EXPECT_IN(b.err, QStringLiteral("--no-cuda-graphs ignored"), b);
    QString err;
    const QJsonObject o = parseObject(b.out, &err);
    QVERIFY2(err.isEmpty(), qPrintable(err));
    QCOMPARE(o[QStringLiteral("config")].toObject()[QStringLiteral("cuda_graphs")].toBool(false), true);
  }

  // A matrix varying a CUDA-only field where every run runs on the CPU is an
  // A/B of identical runs: refused, the field named, nothing run.
  void matrixOfCudaOnlyFieldOnTheCpuIsRefused() {
    const QString matrix = path(QStringLiteral("cpu-graphs.json"));
    QFile f(matrix);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write(R"({"schema": "brisk.matrix", "version": 1, "name": "graphs", "kind": "grid",
      "base": {"backend": "cpu"}, "axes": [{"field": "cuda_graphs", "values": [true, false]}]})");
    f.close();
    RUN_CLI(r, QStringLiteral("bench"), QStringLiteral("demo"), QStringLiteral("--matrix"), matrix,
            QStringLiteral("--num-requests"), QStringLiteral("1"), QStringLiteral("--warmup"),
            QStringLiteral("0"));
    QVERIFY2(r.code == 1 || r.code == 2, qPrintable(describe(r)));
    EXPECT_IN(r.err, QStringLiteral("cuda_graphs"), r);
    EXPECT_IN(r.err, QStringLiteral("CUDA backend only"), r);
    QVERIFY2(!r.err.contains("run 1/"), qPrintable(describe(r)));
    QVERIFY2(r.out.isEmpty(), qPrintable(describe(r)));
  }

  // generate says which backend ran: on the summary line and in --json.
  void generateNamesItsBackend() {
    if (cudaRuns()) QSKIP("a CUDA device is available here: auto runs on it");
    RUN_CLI(r, QStringLiteral("generate"), QStringLiteral("demo"), QStringLiteral("-p"), QStringLiteral("x"),
            QStringLiteral("--max-tokens"), QStringLiteral("2"));
    EXPECT_EXIT(r, 0);
    EXPECT_IN(r.err, QStringLiteral(" · CPU (auto)]"), r);
    RUN_CLI(c, QStringLiteral("generate"), QStringLiteral("demo"), QStringLiteral("-p"), QStringLiteral("x"),
            QStringLiteral("--max-tokens"), QStringLiteral("2"), QStringLiteral("--backend"),
            QStringLiteral("cpu"));
    EXPECT_EXIT(c, 0);
    EXPECT_IN(c.err, QStringLiteral(" · CPU]"), c);
    RUN_CLI(j, QStringLiteral("generate"), QStringLiteral("demo"), QStringLiteral("-p"), QStringLiteral("x"),
            QStringLiteral("--max-tokens"), QStringLiteral("2"), QStringLiteral("--json"));
    EXPECT_EXIT(j, 0);
    QString err;
    const QJsonObject o = parseObject(j.out, &err);
    QVERIFY2(err.isEmpty(), qPrintable(err));
    QCOMPARE(o[QStringLiteral("backend_used")].toString(), QStringLiteral("cpu"));
    QCOMPARE(o[QStringLiteral("backend")].toString(), QStringLiteral("auto"));
  }

  // The bench table has a backend row; a failed run still records this
  // machine (not a zeroed one) and no model; and the closing "N of M runs
  // failed" line follows the table even with stdout and stderr in one pipe.
  void benchTableBackendAndAFailedRun() {
    const QString matrix = path(QStringLiteral("one-fails.json"));
    QFile f(matrix);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write(R"({"schema": "brisk.matrix", "version": 1, "name": "one fails", "kind": "grid",
      "warmup_requests": 0, "base": {"threads": 1},
      "axes": [{"field": "model", "values": ["demo", "/nonexistent/brisk/model.gguf"]}]})");
    f.close();
    const QString out = path(QStringLiteral("one-fails-results.json"));
    const QStringList args{QStringLiteral("bench"),
                           QStringLiteral("--matrix"),
                           matrix,
                           QStringLiteral("--num-requests"),
                           QStringLiteral("2"),
                           QStringLiteral("--prompt-len"),
                           QStringLiteral("fixed:4"),
                           QStringLiteral("--output-len"),
                           QStringLiteral("fixed:2"),
                           QStringLiteral("--no-limits"),
                           QStringLiteral("--out"),
                           out};
    // Both streams into one pipe, as `brisk-cli bench ... 2>&1 | less` does.
    const CliRun r = runProgram(QStringLiteral("/bin/sh"),
                                QStringList{QStringLiteral("-c"), QStringLiteral("exec \"$0\" \"$@\" 2>&1"),
                                            QStringLiteral(BRISK_CLI_PATH)} +
                                    args);
    CHECK_RAN(r);
    EXPECT_EXIT(r, 1);
    const QString all = QString::fromUtf8(r.out);
    const int table_end = all.indexOf(QStringLiteral("prefill tok/s"));
    const int failed = all.indexOf(QStringLiteral("1 of 2 runs failed"));
    QVERIFY2(table_end >= 0 && failed >= 0, qPrintable(describe(r)));
    QVERIFY2(failed > table_end, qPrintable(describe(r)));
    const QStringList backend_row =
        all.split(QLatin1Char('\n')).filter(QRegularExpression(QStringLiteral("^backend ")));
    const QString autoRuns = brisk::resolve_backend("auto") == "cuda" ? QStringLiteral("CUDA (auto)")
                                                                      : QStringLiteral("CPU (auto)");
    QVERIFY2(backend_row.size() == 1 && backend_row[0].contains(autoRuns), qPrintable(describe(r)));
    // The failed run's stored machine is this one, its model absent.
    QFile results(out);
    QVERIFY(results.open(QIODevice::ReadOnly));
    QString err;
    const QJsonArray runs = parseObject(results.readAll(), &err)[QStringLiteral("runs")].toArray();
    QVERIFY2(err.isEmpty() && runs.size() == 2, qPrintable(err));
    const QJsonObject ok = runs[0].toObject(), bad = runs[1].toObject();
    QVERIFY(!bad[QStringLiteral("error")].toString().isEmpty());
    QVERIFY(!bad.contains(QStringLiteral("model")));
    const QJsonObject a = ok[QStringLiteral("system")].toObject(),
                      b = bad[QStringLiteral("system")].toObject();
    QVERIFY(!b[QStringLiteral("cpu_model")].toString().isEmpty());
    for (const char* k : {"cpu_model", "physical_cores", "logical_cpus", "kernel_isa", "cuda_reason",
                          "backends", "backend_used"})
      QVERIFY2(a[QLatin1String(k)] == b[QLatin1String(k)], k);
  }

  // A bad engine setting is refused with the setting named (exit 1 or 2).
  void badEngineSetting() {
    RUN_CLI(r, QStringLiteral("generate"), QStringLiteral("demo"), QStringLiteral("-p"), QStringLiteral("x"),
            QStringLiteral("--block-size"), QStringLiteral("3"));
    QVERIFY2(r.code == 1 || r.code == 2, qPrintable(describe(r)));
    QVERIFY2(r.err.contains("block_size") || r.err.contains("--block-size"), qPrintable(describe(r)));
  }

  // A corrupt model file: exit 1, the path and the reason on stderr.
  void corruptModelFile() {
    const QString good = path(QStringLiteral("for-corruption.gguf"));
    RUN_CLI(mk, QStringLiteral("make-model"), QStringLiteral("--shape"), QStringLiteral("tiny"), good);
    EXPECT_EXIT(mk, 0);
    QFile f(good);
    QVERIFY(f.open(QIODevice::ReadOnly));
    const QByteArray bytes = f.readAll();
    f.close();
    const QString bad = path(QStringLiteral("truncated.gguf"));
    QFile g(bad);
    QVERIFY(g.open(QIODevice::WriteOnly));
    g.write(bytes.left(bytes.size() / 2));
    g.close();
    RUN_CLI(info, QStringLiteral("info"), bad);
    EXPECT_EXIT(info, 1);
    EXPECT_IN(info.err, bad, info);
    EXPECT_IN(info.err, QStringLiteral("truncated"), info);
    RUN_CLI(gen, QStringLiteral("generate"), bad, QStringLiteral("-p"), QStringLiteral("hi"));
    EXPECT_EXIT(gen, 1);
    EXPECT_IN(gen.err, bad, gen);
  }

  // A config.json with a field of the wrong JSON type: exit 1 naming the
  // file, not an abort from an uncaught exception.
  void malformedHfConfigDoesNotCrash_data() {
    QTest::addColumn<QByteArray>("config");
    QTest::newRow("architectures [42]") << QByteArray(R"({"architectures": [42], "hidden_size": 8})");
    QTest::newRow("rms_norm_eps a string")
        << QByteArray(R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 8, "intermediate_size": 16,
            "num_hidden_layers": 1, "num_attention_heads": 2, "vocab_size": 32, "rms_norm_eps": "small"})");
  }
  void malformedHfConfigDoesNotCrash() {
    QFETCH(QByteArray, config);
    const QString d = path(
        QStringLiteral("hf-bad-%1").arg(QTest::currentDataTag()).replace(QLatin1Char(' '), QLatin1Char('-')));
    QVERIFY(QDir().mkpath(d));
    QFile f(QDir(d).filePath(QStringLiteral("config.json")));
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write(config);
    f.close();
    RUN_CLI(r, QStringLiteral("info"), d);
    EXPECT_EXIT(r, 1);
    EXPECT_IN(r.err, QStringLiteral("config.json"), r);
  }

  // Bytes that are not UTF-8 in the prompt: no abort. Either it runs (and
  // --json prints valid JSON) or it is refused with a message.
  void invalidUtf8Prompt() {
    const CliRun r = runProgram(QStringLiteral("/bin/sh"),
                                {QStringLiteral("-c"),
                                 QStringLiteral("exec \"$0\" generate demo -p \"$(printf 'abc\\377\\376')\" "
                                                "--max-tokens 2 --json"),
                                 QStringLiteral(BRISK_CLI_PATH)});
    QVERIFY2(!r.timed_out && !r.failed_to_start, qPrintable(describe(r)));
    QVERIFY2(!r.crashed && r.code != 134, qPrintable(QStringLiteral("aborted: ") + describe(r)));
    QVERIFY2(r.code == 0 || r.code == 1 || r.code == 2, qPrintable(describe(r)));
    if (r.code == 0) {
      QString err;
      parseObject(r.out, &err);
      QVERIFY2(err.isEmpty(), qPrintable(err));
    } else {
      QVERIFY2(!r.err.trimmed().isEmpty(), qPrintable(describe(r)));
    }
  }

  void promptTooLong() {
    QString prompt;
    for (int i = 0; i < 60; ++i) prompt += QStringLiteral("hello world ");
    RUN_CLI(r, QStringLiteral("generate"), QStringLiteral("demo"), QStringLiteral("-p"), prompt,
            QStringLiteral("--max-model-len"), QStringLiteral("16"));
    EXPECT_EXIT(r, 1);
    EXPECT_IN(r.err, QStringLiteral("context"), r);
  }

  void unwritableOut() {
    const QString in = path(QStringLiteral("one.jsonl"));
    QFile f(in);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write("{\"prompt\": \"a\"}\n");
    f.close();
    RUN_CLI(r, QStringLiteral("generate"), QStringLiteral("demo"), QStringLiteral("--prompts"), in,
            QStringLiteral("--out"), QStringLiteral("/nonexistent/dir/out.jsonl"),
            QStringLiteral("--max-tokens"), QStringLiteral("2"));
    EXPECT_EXIT(r, 1);
    EXPECT_IN(r.err, QStringLiteral("/nonexistent/dir/out.jsonl"), r);
  }

  // ---------------- make-model and info ----------------

  void makeModelThenInfo() {
    const QString out = path(QStringLiteral("tiny.gguf"));
    RUN_CLI(mk, QStringLiteral("make-model"), QStringLiteral("--shape"), QStringLiteral("tiny"), out);
    EXPECT_EXIT(mk, 0);
    EXPECT_IN(mk.out, out, mk);
    QVERIFY(QFileInfo(out).size() > 100000);

    RUN_CLI(js, QStringLiteral("info"), out, QStringLiteral("--json"));
    EXPECT_EXIT(js, 0);
    QString err;
    const QJsonObject o = parseObject(js.out, &err);
    QVERIFY2(err.isEmpty(), qPrintable(err));
    QCOMPARE(o.value(QStringLiteral("dim")).toInt(), 64);
    QCOMPARE(o.value(QStringLiteral("n_layers")).toInt(), 2);
    QCOMPARE(o.value(QStringLiteral("hidden_dim")).toInt(), 192);
    QCOMPARE(o.value(QStringLiteral("n_heads")).toInt(), 4);
    QCOMPARE(o.value(QStringLiteral("n_kv_heads")).toInt(), 2);
    QCOMPARE(o.value(QStringLiteral("vocab_size")).toInt(), 1024);
    QCOMPARE(o.value(QStringLiteral("context_length")).toInt(), 512);
    QCOMPARE(o.value(QStringLiteral("synthetic")).toBool(false), true);
    QCOMPARE(o.value(QStringLiteral("format")).toString(), QStringLiteral("gguf"));
    QCOMPARE(o.value(QStringLiteral("architecture")).toString(), QStringLiteral("llama"));
    QCOMPARE(o.value(QStringLiteral("path")).toString(), out);
    QCOMPARE(o.value(QStringLiteral("tensors")).toArray().size(), 21);
    QVERIFY(o.value(QStringLiteral("n_params")).toDouble() > 0);

    RUN_CLI(txt, QStringLiteral("info"), out, QStringLiteral("--tensors"));
    EXPECT_EXIT(txt, 0);
    EXPECT_IN(txt.out, QStringLiteral("SYNTHETIC"), txt);
    EXPECT_IN(txt.out, QStringLiteral("dim 64"), txt);
    EXPECT_IN(txt.out, QStringLiteral("layers 2"), txt);
    EXPECT_IN(txt.out, QStringLiteral("blk.1.ffn_down.weight"), txt);

    // The written model generates.
    RUN_CLI(gen, QStringLiteral("generate"), out, QStringLiteral("-p"), QStringLiteral("hello"),
            QStringLiteral("--max-tokens"), QStringLiteral("4"), QStringLiteral("--ignore-eos"),
            QStringLiteral("--json"));
    EXPECT_EXIT(gen, 0);
    const QJsonObject g = parseObject(gen.out, &err);
    QVERIFY2(err.isEmpty(), qPrintable(err));
    QCOMPARE(g.value(QStringLiteral("token_ids")).toArray().size(), 4);
  }

  // quantize IN IN: the tensors are read from the file being replaced, so it
  // is written beside it and renamed over it (it used to be truncated).
  void quantizeInPlace() {
    const QString model = path(QStringLiteral("inplace.gguf"));
    RUN_CLI(mk, QStringLiteral("make-model"), QStringLiteral("--shape"), QStringLiteral("tiny"), model);
    EXPECT_EXIT(mk, 0);
    RUN_CLI(q, QStringLiteral("quantize"), model, model, QStringLiteral("--dtype"), QStringLiteral("int8"));
    EXPECT_EXIT(q, 0);
    RUN_CLI(js, QStringLiteral("info"), model, QStringLiteral("--json"));
    EXPECT_EXIT(js, 0);
    QString err;
    const QJsonObject o = parseObject(js.out, &err);
    QVERIFY2(err.isEmpty(), qPrintable(err));
    int i8 = 0;
    for (const QJsonValue& t : o.value(QStringLiteral("tensors")).toArray())
      i8 += t.toObject().value(QStringLiteral("dtype")).toString() == QLatin1String("I8");
    QCOMPARE(i8, 14);  // 2 layers x 7 projections
    // The file says what quantize made of it, and agreement says its F32 baseline is no unquantized one.
    QCOMPARE(o.value(QStringLiteral("file_conversion")).toString(),
             QStringLiteral("int8 (per-channel scales)"));
    RUN_CLI(txt, QStringLiteral("info"), model);
    EXPECT_IN(txt.out, QStringLiteral("by brisk quantize: int8 (per-channel scales)"), txt);
    const QString prompts = path(QStringLiteral("agree.txt"));
    QFile pf(prompts);
    QVERIFY(pf.open(QIODevice::WriteOnly));
    pf.write("hello\n");
    pf.close();
    RUN_CLI(ag, QStringLiteral("agreement"), model, QStringLiteral("--prompts"), prompts,
            QStringLiteral("--max-tokens"), QStringLiteral("4"));
    EXPECT_EXIT(ag, 0);
    EXPECT_IN(ag.out, QStringLiteral("stores quantized weights (int8 (per-channel scales))"), ag);
    RUN_CLI(gen, QStringLiteral("generate"), model, QStringLiteral("-p"), QStringLiteral("hello"),
            QStringLiteral("--max-tokens"), QStringLiteral("3"), QStringLiteral("--ignore-eos"));
    EXPECT_EXIT(gen, 0);
    // A destination that cannot be replaced (a folder): an error naming it, no file left behind.
    const QString folder = path(QStringLiteral("a-folder.gguf"));
    QVERIFY(QDir().mkpath(folder));
    RUN_CLI(bad, QStringLiteral("quantize"), model, folder, QStringLiteral("--dtype"), QStringLiteral("f16"));
    EXPECT_EXIT(bad, 1);
    EXPECT_IN(bad.err, folder, bad);
    QCOMPARE(QDir(QFileInfo(folder).absolutePath())
                 .entryList({QStringLiteral("a-folder.gguf.tmp-*")}, QDir::Files)
                 .size(),
             0);
  }

  // A destination that is a symbolic link is written through it (the link
  // stays a link), and a file replaced keeps its permissions, as `cp` and
  // writing in place would; the rename used to replace both.
  void quantizeThroughLinkKeepsPermissions() {
    const QString model = path(QStringLiteral("linked-src.gguf"));
    RUN_CLI(mk, QStringLiteral("make-model"), QStringLiteral("--shape"), QStringLiteral("tiny"), model);
    EXPECT_EXIT(mk, 0);
    const QString target = path(QStringLiteral("linked-target.gguf"));
    QVERIFY(QFile::copy(model, target));
    const QFileDevice::Permissions perms =
        QFileDevice::ReadOwner | QFileDevice::WriteOwner | QFileDevice::ReadGroup;  // 0640
    QVERIFY(QFile::setPermissions(target, perms));
    const QString link = path(QStringLiteral("linked.gguf"));
    QVERIFY(QFile::link(target, link));
    RUN_CLI(q, QStringLiteral("quantize"), model, link, QStringLiteral("--dtype"), QStringLiteral("int8"));
    EXPECT_EXIT(q, 0);
    QVERIFY2(QFileInfo(link).isSymLink(), "the link was replaced by a file");
    QCOMPARE(QFileInfo(link).symLinkTarget(), QFileInfo(target).absoluteFilePath());
    QCOMPARE(QFile::permissions(target) & 0x7077, perms & 0x7077);  // owner, group and other bits
    RUN_CLI(js, QStringLiteral("info"), target, QStringLiteral("--json"));
    EXPECT_EXIT(js, 0);
    QString err;
    const QJsonObject o = parseObject(js.out, &err);
    QVERIFY2(err.isEmpty(), qPrintable(err));
    QCOMPARE(o.value(QStringLiteral("file_conversion")).toString(),
             QStringLiteral("int8 (per-channel scales)"));
    QCOMPARE(QDir(QFileInfo(target).absolutePath())
                 .entryList({QStringLiteral("linked*.tmp-*")}, QDir::Files)
                 .size(),
             0);

    // A link to a file not written yet (relative, through a second link): the file is created, the links
    // stay.
    QVERIFY(QDir().mkpath(path(QStringLiteral("out"))));
    const QString inner = path(QStringLiteral("out/inner.gguf")), outer = path(QStringLiteral("outer.gguf"));
    QVERIFY(QFile::link(QStringLiteral("new.gguf"), inner));  // out/inner.gguf -> new.gguf (in out/)
    QVERIFY(QFile::link(QStringLiteral("out/inner.gguf"), outer));
    QVERIFY(!QFileInfo::exists(path(QStringLiteral("out/new.gguf"))));
    RUN_CLI(q2, QStringLiteral("quantize"), model, outer, QStringLiteral("--dtype"), QStringLiteral("f16"));
    EXPECT_EXIT(q2, 0);
    QVERIFY(QFileInfo(outer).isSymLink());
    QVERIFY(QFileInfo(inner).isSymLink());
    QVERIFY(QFileInfo(path(QStringLiteral("out/new.gguf"))).isFile());
    RUN_CLI(js2, QStringLiteral("info"), outer);
    EXPECT_EXIT(js2, 0);
  }

  void makeModelCustomDims() {
    const QString out = path(QStringLiteral("custom.gguf"));
    RUN_CLI(mk, QStringLiteral("make-model"), QStringLiteral("--dims"),
            QStringLiteral("32,64,1,4,2,2048,128"), QStringLiteral("--dtype"), QStringLiteral("f16"), out);
    EXPECT_EXIT(mk, 0);
    RUN_CLI(js, QStringLiteral("info"), out, QStringLiteral("--json"));
    EXPECT_EXIT(js, 0);
    QString err;
    const QJsonObject o = parseObject(js.out, &err);
    QVERIFY2(err.isEmpty(), qPrintable(err));
    QCOMPARE(o.value(QStringLiteral("dim")).toInt(), 32);
    QCOMPARE(o.value(QStringLiteral("n_layers")).toInt(), 1);
    QCOMPARE(o.value(QStringLiteral("vocab_size")).toInt(), 2048);
    QCOMPARE(o.value(QStringLiteral("context_length")).toInt(), 128);
    bool has_f16 = false;
    for (const QJsonValue& t : o.value(QStringLiteral("tensors")).toArray())
      has_f16 |= t.toObject().value(QStringLiteral("dtype")).toString() == QStringLiteral("F16");
    QVERIFY2(has_f16, "--dtype f16 wrote no F16 tensor");
  }

  // make-model must not write a file that cannot be loaded: a vocabulary
  // smaller than the demo tokenizer's is refused up front (exit 1, naming the
  // vocabulary), or the written model loads.
  void makeModelSmallVocab() {
    const QString out = path(QStringLiteral("small-vocab.gguf"));
    RUN_CLI(mk, QStringLiteral("make-model"), QStringLiteral("--dims"), QStringLiteral("32,64,1,4,2,600,128"),
            out);
    if (mk.code != 0) {
      EXPECT_EXIT(mk, 1);
      EXPECT_IN(mk.err, QStringLiteral("vocab"), mk);
      return;
    }
    RUN_CLI(info, QStringLiteral("info"), out);
    QVERIFY2(info.code == 0,
             qPrintable(QStringLiteral("make-model wrote a model that does not load: ") + describe(info)));
  }

  void infoDemo() {
    RUN_CLI(r, QStringLiteral("info"), QStringLiteral("demo"));
    EXPECT_EXIT(r, 0);
    EXPECT_IN(r.out, QStringLiteral("SYNTHETIC"), r);
    RUN_CLI(js, QStringLiteral("info"), QStringLiteral("demo"), QStringLiteral("--json"));
    EXPECT_EXIT(js, 0);
    QString err;
    const QJsonObject o = parseObject(js.out, &err);
    QVERIFY2(err.isEmpty(), qPrintable(err));
    QCOMPARE(o.value(QStringLiteral("synthetic")).toBool(false), true);
    QCOMPARE(o.value(QStringLiteral("dim")).toInt(), 256);
  }

  // ---------------- generate ----------------

  void generateJson() {
    RUN_CLI(r, QStringLiteral("generate"), QStringLiteral("demo"), QStringLiteral("-p"),
            QStringLiteral("hello"), QStringLiteral("--max-tokens"), QStringLiteral("8"),
            QStringLiteral("--json"));
    EXPECT_EXIT(r, 0);
    QString err;
    const QJsonObject o = parseObject(r.out, &err);
    QVERIFY2(err.isEmpty(), qPrintable(err));
    QCOMPARE(o.value(QStringLiteral("token_ids")).toArray().size(), 8);
    QCOMPARE(o.value(QStringLiteral("finish_reason")).toString(), QStringLiteral("length"));
    QCOMPARE(o.value(QStringLiteral("prompt")).toString(), QStringLiteral("hello"));
    QCOMPARE(o.value(QStringLiteral("synthetic")).toBool(false), true);
    QVERIFY(o.value(QStringLiteral("text")).isString());
    QVERIFY(!o.value(QStringLiteral("prompt_token_ids")).toArray().isEmpty());
    const QJsonObject t = o.value(QStringLiteral("timings")).toObject();
    QVERIFY2(!t.isEmpty(), qPrintable(QString::fromUtf8(r.out)));
    QCOMPARE(t.value(QStringLiteral("output_tokens")).toInt(), 8);
    QVERIFY(t.value(QStringLiteral("prompt_tokens")).toInt() > 0);
    QVERIFY(t.value(QStringLiteral("ttft_s")).toDouble(-1) >= 0);
    QVERIFY(t.value(QStringLiteral("e2e_s")).toDouble(-1) > 0);
    QVERIFY(t.value(QStringLiteral("e2e_s")).toDouble() >= t.value(QStringLiteral("ttft_s")).toDouble());
  }

  // --logprobs and --prompt-logprobs in --json: one entry per generated
  // token and per prompt token after the first, each with its top-k.
  void generateLogprobsJson() {
    RUN_CLI(r, QStringLiteral("generate"), QStringLiteral("demo"), QStringLiteral("-p"),
            QStringLiteral("Once upon a time"), QStringLiteral("--max-tokens"), QStringLiteral("3"),
            QStringLiteral("--json"), QStringLiteral("--logprobs"), QStringLiteral("2"),
            QStringLiteral("--prompt-logprobs"), QStringLiteral("4"));
    EXPECT_EXIT(r, 0);
    QString err;
    const QJsonObject o = parseObject(r.out, &err);
    QVERIFY2(err.isEmpty(), qPrintable(err));
    const QJsonArray gen = o.value(QStringLiteral("logprobs")).toArray();
    const QJsonArray ids = o.value(QStringLiteral("token_ids")).toArray();
    QCOMPARE(gen.size(), 3);
    for (int i = 0; i < gen.size(); ++i) {
      const QJsonObject t = gen[i].toObject();
      QCOMPARE(t.value(QStringLiteral("token")).toInt(), ids[i].toInt());
      QVERIFY(t.value(QStringLiteral("logprob")).toDouble(1) <= 0);
      QCOMPARE(t.value(QStringLiteral("top")).toArray().size(), 2);
    }
    const QJsonArray prompt_ids = o.value(QStringLiteral("prompt_token_ids")).toArray();
    const QJsonArray pl = o.value(QStringLiteral("prompt_logprobs")).toArray();
    QCOMPARE(pl.size(), prompt_ids.size() - 1);
    for (int i = 0; i < pl.size(); ++i) {
      const QJsonObject t = pl[i].toObject();
      QCOMPARE(t.value(QStringLiteral("token")).toInt(), prompt_ids[i + 1].toInt());
      const QJsonArray top = t.value(QStringLiteral("top")).toArray();
      QCOMPARE(top.size(), 4);
      QVERIFY(t.value(QStringLiteral("logprob")).toDouble(1) <=
              top[0].toObject().value(QStringLiteral("logprob")).toDouble());
      QVERIFY(top[0].toObject().value(QStringLiteral("text")).isString());
    }
    RUN_CLI(bad, QStringLiteral("generate"), QStringLiteral("demo"), QStringLiteral("-p"),
            QStringLiteral("x"), QStringLiteral("--prompt-logprobs"), QStringLiteral("21"));
    QVERIFY(bad.code != 0);
    QVERIFY2(bad.err.contains("prompt_logprobs") || bad.err.contains("prompt-logprobs"), qPrintable(bad.err));
  }

  void generateStreaming() {
    RUN_CLI(r, QStringLiteral("generate"), QStringLiteral("demo"), QStringLiteral("-p"),
            QStringLiteral("hello"), QStringLiteral("--max-tokens"), QStringLiteral("8"));
    EXPECT_EXIT(r, 0);
    EXPECT_IN(r.err, QStringLiteral("synthetic"), r);
    EXPECT_IN(r.err, QStringLiteral("8 generated tokens"), r);
    QVERIFY2(!r.out.trimmed().isEmpty(), qPrintable(describe(r)));
  }

  void generateSeeds() {
    auto sample = [&](const QString& seed, std::vector<int>* out) {
      const CliRun r =
          runCli({QStringLiteral("generate"), QStringLiteral("demo"), QStringLiteral("-p"),
                  QStringLiteral("Once upon a time"), QStringLiteral("--max-tokens"), QStringLiteral("16"),
                  QStringLiteral("--temperature"), QStringLiteral("0.8"), QStringLiteral("--seed"), seed,
                  QStringLiteral("--ignore-eos"), QStringLiteral("--json")});
      if (r.timed_out || r.crashed || r.code != 0) return describe(r);
      QString err;
      const QJsonObject o = parseObject(r.out, &err);
      *out = ids(o.value(QStringLiteral("token_ids")));
      return err;
    };
    std::vector<int> a, b, c;
    QString err = sample(QStringLiteral("5"), &a);
    QVERIFY2(err.isEmpty(), qPrintable(err));
    err = sample(QStringLiteral("5"), &b);
    QVERIFY2(err.isEmpty(), qPrintable(err));
    err = sample(QStringLiteral("6"), &c);
    QVERIFY2(err.isEmpty(), qPrintable(err));
    QCOMPARE((int)a.size(), 16);
    QVERIFY2(a == b, "the same seed gave different tokens");
    QVERIFY2(a != c, "seeds 5 and 6 gave the same 16 sampled tokens");
  }

  void generatePromptsFile() {
    const QString in = path(QStringLiteral("in.jsonl")), out = path(QStringLiteral("out.jsonl"));
    QFile f(in);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write(
        "{\"prompt\": \"hello\", \"id\": \"first\"}\n"
        "{\"prompt\": \"the cat sat\", \"max_tokens\": 3}\n"
        "{\"prompt\": \"broken\", \"max_tokens\": \n"
        "{\"prompt\": \"once upon a time\", \"temperature\": 0.7, \"seed\": 9}\n"
        "{\"prompt\": \"last one\"}\n"
        "\n");
    f.close();
    RUN_CLI(r, QStringLiteral("generate"), QStringLiteral("demo"), QStringLiteral("--prompts"), in,
            QStringLiteral("--out"), out, QStringLiteral("--max-tokens"), QStringLiteral("6"),
            QStringLiteral("--ignore-eos"));
    EXPECT_EXIT(r, 1);  // because of the malformed line
    EXPECT_IN(r.err, QStringLiteral("5 prompts: 4 ok, 1 errors"), r);
    QFile o(out);
    QVERIFY2(o.open(QIODevice::ReadOnly), qPrintable(QStringLiteral("no %1: ").arg(out) + describe(r)));
    const QList<QByteArray> lines = o.readAll().split('\n');
    QList<QJsonObject> rows;
    for (const QByteArray& l : lines) {
      if (l.trimmed().isEmpty()) continue;
      QString err;
      rows << parseObject(l, &err);
      QVERIFY2(err.isEmpty(), qPrintable(err));
    }
    QCOMPARE(rows.size(), 5);
    const QStringList prompts{"hello", "the cat sat", "", "once upon a time", "last one"};
    for (int i = 0; i < 5; ++i) {
      if (i != 2) QCOMPARE(rows[i].value(QStringLiteral("prompt")).toString(), prompts[i]);
      const QJsonValue id = rows[i].value(QStringLiteral("id"));
      if (i == 0)
        QCOMPARE(id.toString(), QStringLiteral("first"));
      else
        QCOMPARE(id.toInt(-1), i + 1);  // default id: the line number
    }
    // The malformed line: an error naming the file and line 3, no tokens.
    const QString e = rows[2].value(QStringLiteral("error")).toString();
    QVERIFY2(e.contains(in + QStringLiteral(":3")), qPrintable(QStringLiteral("error was: ") + e));
    QVERIFY(!rows[2].contains(QStringLiteral("token_ids")));
    // The others ran; the max_tokens 3 line stopped at 3.
    QCOMPARE(rows[1].value(QStringLiteral("token_ids")).toArray().size(), 3);
    for (int i : {0, 3, 4}) {
      QVERIFY2(!rows[i].contains(QStringLiteral("error")),
               qPrintable(rows[i].value(QStringLiteral("error")).toString()));
      QCOMPARE(rows[i].value(QStringLiteral("token_ids")).toArray().size(), 6);
      QCOMPARE(rows[i].value(QStringLiteral("finish_reason")).toString(), QStringLiteral("length"));
      QVERIFY(!rows[i].value(QStringLiteral("timings")).toObject().isEmpty());
    }
  }

  // Per-line sampling values the engine refuses: an error on that line
  // naming the field; the other lines still run.
  void generatePromptsFileBadParams() {
    const QString in = path(QStringLiteral("bad-params.jsonl")),
                  out = path(QStringLiteral("bad-params-out.jsonl"));
    QFile f(in);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write(
        "{\"prompt\": \"a\", \"temperature\": -1}\n"
        "{\"prompt\": \"b\", \"max_tokens\": 0}\n"
        "{\"prompt\": \"c\", \"max_tokens\": \"five\"}\n"
        "{\"prompt\": \"d\"}\n");
    // A line that parses but the engine refuses (past --max-model-len): an error too, not a finished one.
    f.write("{\"prompt\": \"" + QByteArray("hello world ").repeated(40) + "\"}\n");
    f.close();
    RUN_CLI(r, QStringLiteral("generate"), QStringLiteral("demo"), QStringLiteral("--prompts"), in,
            QStringLiteral("--out"), out, QStringLiteral("--max-tokens"), QStringLiteral("3"),
            QStringLiteral("--ignore-eos"), QStringLiteral("--max-model-len"), QStringLiteral("32"));
    EXPECT_EXIT(r, 1);
    EXPECT_IN(r.err, QStringLiteral("5 prompts: 1 ok, 4 errors"), r);
    QFile o(out);
    QVERIFY(o.open(QIODevice::ReadOnly));
    QList<QJsonObject> rows;
    for (const QByteArray& l : o.readAll().split('\n')) {
      if (l.trimmed().isEmpty()) continue;
      QString err;
      rows << parseObject(l, &err);
      QVERIFY2(err.isEmpty(), qPrintable(err));
    }
    QCOMPARE(rows.size(), 5);
    QVERIFY2(rows[0].value(QStringLiteral("error")).toString().contains(QStringLiteral("temperature")),
             qPrintable(rows[0].value(QStringLiteral("error")).toString()));
    QVERIFY2(rows[1].value(QStringLiteral("error")).toString().contains(QStringLiteral("max_tokens")),
             qPrintable(rows[1].value(QStringLiteral("error")).toString()));
    QVERIFY2(rows[2].value(QStringLiteral("error")).toString().contains(in + QStringLiteral(":3")),
             qPrintable(rows[2].value(QStringLiteral("error")).toString()));
    QVERIFY(!rows[3].contains(QStringLiteral("error")));
    QCOMPARE(rows[3].value(QStringLiteral("token_ids")).toArray().size(), 3);
    QVERIFY2(rows[4]
                 .value(QStringLiteral("error"))
                 .toString()
                 .contains(QStringLiteral("does not fit the context")),
             qPrintable(rows[4].value(QStringLiteral("error")).toString()));
  }

  void generatePromptsFileAllGood() {
    const QString in = path(QStringLiteral("good.jsonl")), out = path(QStringLiteral("good-out.jsonl"));
    QFile f(in);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write("{\"prompt\": \"a\"}\n{\"prompt\": \"b\", \"max_tokens\": 2}\n");
    f.close();
    RUN_CLI(r, QStringLiteral("generate"), QStringLiteral("demo"), QStringLiteral("--prompts"), in,
            QStringLiteral("--out"), out, QStringLiteral("--max-tokens"), QStringLiteral("4"),
            QStringLiteral("--ignore-eos"));
    EXPECT_EXIT(r, 0);
    QFile o(out);
    QVERIFY(o.open(QIODevice::ReadOnly));
    QCOMPARE(o.readAll().count('\n'), 2);
  }

  // ---------------- a real checkpoint ----------------

  void generateStories260K_data() {
    QTest::addColumn<QString>("model");
    QTest::addColumn<QString>("tokenizer");
    QTest::newRow("llama2.c .bin") << "stories260K/stories260K.bin"
                                   << "stories260K/tok512.bin";
    QTest::newRow("gguf") << "stories260K/stories260K.gguf"
                          << "";
  }
  void generateStories260K() {
    QFETCH(QString, model);
    QFETCH(QString, tokenizer);
    const QString m = QDir(modelsDir()).filePath(model);
    const QString t = tokenizer.isEmpty() ? QString() : QDir(modelsDir()).filePath(tokenizer);
    if (!QFileInfo::exists(m)) QSKIP(qPrintable(QStringLiteral("model not found: %1").arg(m)));
    if (!t.isEmpty() && !QFileInfo::exists(t))
      QSKIP(qPrintable(QStringLiteral("tokenizer not found: %1").arg(t)));
    QStringList args{QStringLiteral("generate"),     m,
                     QStringLiteral("-p"),           QString(),
                     QStringLiteral("--max-tokens"), QStringLiteral("40")};
    if (!t.isEmpty()) args << QStringLiteral("--tokenizer") << t;
    const CliRun r = runCli(args);
    QVERIFY2(!r.timed_out && !r.crashed && !r.failed_to_start, qPrintable(describe(r)));
    EXPECT_EXIT(r, 0);
    QVERIFY2(r.out.startsWith("Once upon a time, there was a little girl named Lily."),
             qPrintable(describe(r)));
    QVERIFY2(!r.err.contains("synthetic"), "a trained checkpoint is not synthetic");
    // The same run as JSON: the greedy ids of llama2.c's run.c.
    const CliRun j = runCli(args << QStringLiteral("--json"));
    QVERIFY2(!j.timed_out && !j.crashed && j.code == 0, qPrintable(describe(j)));
    QString err;
    const QJsonObject o = parseObject(j.out, &err);
    QVERIFY2(err.isEmpty(), qPrintable(err));
    QCOMPARE(ids(o.value(QStringLiteral("token_ids"))), kStories260KGreedy40);
    QCOMPARE(o.value(QStringLiteral("synthetic")).toBool(true), false);
  }
};

QTEST_GUILESS_MAIN(TestCli)
#include "test_cli.moc"
