// brisk-cli on bad input files: every case exits with the documented status
// (1 for an input error, 0 only when everything ran) and names the file, the
// line where there is one, the field and the value. Nothing that would be
// ignored is accepted. Runs the built binary (BRISK_CLI_PATH) with QProcess.
#include <QDir>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>

#include "e2e/support/cli_run.h"

namespace {

// The JSON objects of a JSONL file, one per non-blank line; empty when unreadable.
QList<QJsonObject> jsonLines(const QString& path) {
  QFile f(path);
  QList<QJsonObject> rows;
  if (!f.open(QIODevice::ReadOnly)) return rows;
  for (const QByteArray& l : f.readAll().split('\n'))
    if (!l.trimmed().isEmpty()) rows << QJsonDocument::fromJson(l).object();
  return rows;
}

QString modelsDir() { return QStringLiteral(BRISK_SHARED_MODELS); }

}  // namespace

class TestCliInputs : public QObject {
  Q_OBJECT

 private:
  QTemporaryDir dir_;
  QString path(const QString& name) const { return dir_.filePath(name); }
  QString write(const QString& name, const QByteArray& text) const {
    QFile f(path(name));
    if (!f.open(QIODevice::WriteOnly)) qFatal("cannot write %s", qPrintable(path(name)));
    f.write(text);
    return path(name);
  }

 private slots:
  void initTestCase() {
    QVERIFY(dir_.isValid());
    QVERIFY2(QFileInfo(QStringLiteral(BRISK_CLI_PATH)).isExecutable(),
             qPrintable(QStringLiteral("brisk-cli not built at %1").arg(BRISK_CLI_PATH)));
  }

  // ---------------- bench --matrix ----------------

  // Two axes on one field ran "static · continuous" as continuous; "rates" in
  // a grid was ignored. Both are refused before anything runs.
  void matrixKeysThatWouldBeIgnored_data() {
    QTest::addColumn<QByteArray>("body");
    QTest::addColumn<QStringList>("needles");
    QTest::newRow("two axes on policy")
        << QByteArray(R"("axes": [{"field": "policy", "values": ["static", "continuous"]},
                                  {"field": "policy", "values": ["continuous"]}])")
        << QStringList{"axes[1].field", "'policy'", "axes[0]"};
    QTest::newRow("rates in a grid") << QByteArray(R"("kind": "grid", "rates": [1, 2])")
                                     << QStringList{"field 'rates'", "rate_sweep", "grid"};
    QTest::newRow("concurrencies in a rate_sweep")
        << QByteArray(R"("kind": "rate_sweep", "rates": [2], "concurrencies": [1, 4])")
        << QStringList{"field 'concurrencies'", "rate_sweep"};
  }
  void matrixKeysThatWouldBeIgnored() {
    QFETCH(QByteArray, body);
    QFETCH(QStringList, needles);
    const QString m =
        write(QStringLiteral("m-%1.json")
                  .arg(QString::fromUtf8(QTest::currentDataTag()))
                  .replace(QLatin1Char(' '), QLatin1Char('-')),
              R"({"schema": "brisk.matrix", "version": 1, "base": {"model": "demo"}, )" + body + "}");
    RUN_CLI(r, QStringLiteral("bench"), QStringLiteral("demo"), QStringLiteral("--matrix"), m,
            QStringLiteral("--num-requests"), QStringLiteral("1"), QStringLiteral("--warmup"),
            QStringLiteral("0"));
    EXPECT_EXIT(r, 1);
    EXPECT_IN(r.err, m, r);
    for (const QString& n : needles) EXPECT_IN(r.err, n, r);
    QVERIFY2(!r.err.contains("running"), qPrintable(describe(r)));  // refused before any run
  }

  // A prompt dataset or a trace with a bad line (or a trace too short for the
  // runs) is refused before any run starts, naming the file, line and field:
  // each run used to read it as it started, so the error came only after
  // the runs before it (a model load each) had spent their time, and --out
  // was then written with nothing but failed runs.
  void benchChecksEveryRunsFilesFirst_data() {
    QTest::addColumn<QByteArray>("workload");
    QTest::addColumn<QStringList>("needles");
    const QString dataset = write(QStringLiteral("ds-bad.jsonl"),
                                  "{\"prompt\": \"Once upon a time\"}\n"
                                  "{\"prompt\": \"hello\", \"id\": 7}\n");
    const QString trace = write(QStringLiteral("trace-bad.jsonl"),
                                "{\"timestamp\": 0}\n"
                                "{\"timestamp\": -1}\n");
    const QString shortTrace = write(QStringLiteral("trace-short.jsonl"), "{\"timestamp\": 0.5}\n");
    QTest::newRow("dataset: unknown key on line 2")
        << (R"("prompt_len": "file:)" + dataset.toUtf8() + R"(")")
        << QStringList{dataset + ":2", "field 'id'", "unknown field"};
    QTest::newRow("trace: negative timestamp on line 2")
        << (R"("arrival": "trace", "trace_path": ")" + trace.toUtf8() + R"(")")
        << QStringList{trace + ":2", "field 'timestamp'", ">= 0"};
    QTest::newRow("trace: fewer arrivals than requests")
        << (R"("arrival": "trace", "trace_path": ")" + shortTrace.toUtf8() + R"(")")
        << QStringList{shortTrace, "has 1 arrivals but num_requests is 2"};
  }
  void benchChecksEveryRunsFilesFirst() {
    QFETCH(QByteArray, workload);
    QFETCH(QStringList, needles);
    const QString key = QString::number(qHash(QByteArray(QTest::currentDataTag())));
    const QString w = write(QStringLiteral("w-%1.json").arg(key),
                            R"({"schema": "brisk.workload", "version": 1, "num_requests": 2, )"
                            R"("output_len": "fixed:2", )" +
                                workload + "}");
    const QString out = path(QStringLiteral("never-%1.json").arg(key));
    // --compare: two runs (continuous, then static) over one workload.
    RUN_CLI(r, QStringLiteral("bench"), QStringLiteral("demo"), QStringLiteral("--workload"), w,
            QStringLiteral("--compare"), QStringLiteral("--warmup"), QStringLiteral("0"),
            QStringLiteral("--out"), out);
    EXPECT_EXIT(r, 1);
    for (const QString& n : needles) EXPECT_IN(r.err, n, r);
    QVERIFY2(!r.err.contains("run 1/2"), qPrintable(describe(r)));  // refused before any run
    QVERIFY2(!QFileInfo::exists(out), qPrintable(describe(r)));     // nothing ran, nothing written
  }

  // The quality files, from the matrix file or the flags, are checked with
  // the other inputs before the first run: they were read in the first run's
  // quality phase, after its timed benchmark, so a missing or empty one
  // failed every run (and --out was written with nothing but failures).
  void benchChecksQualityFilesFirst_data() {
    QTest::addColumn<QByteArray>("matrixKeys");
    QTest::addColumn<QStringList>("flags");
    QTest::addColumn<QStringList>("needles");
    const QString missing = path(QStringLiteral("no-such-quality.txt"));
    const QString empty = write(QStringLiteral("empty-prompts.txt"), "\n  \n");
    const QString good = write(QStringLiteral("good-quality.txt"), "Once upon a time there was a dog.\n");
    QTest::newRow("matrix quality_text missing")
        << (R"("quality_text": ")" + missing.toUtf8() + R"(")") << QStringList{}
        << QStringList{missing, "cannot open quality text"};
    QTest::newRow("matrix quality_prompts a directory")
        << (R"("quality_prompts": ")" + dir_.path().toUtf8() + R"(")") << QStringList{}
        << QStringList{dir_.path(), "is a directory"};
    QTest::newRow("flag --quality-prompts empty")
        << QByteArray() << QStringList{QStringLiteral("--quality-prompts"), empty}
        << QStringList{empty, "no prompts"};
    QTest::newRow("flag --quality-text missing")
        << QByteArray() << QStringList{QStringLiteral("--quality-text"), missing}
        << QStringList{missing, "cannot open quality text"};
    // Without --matrix: a good text is not scored (two perplexity passes)
    // before the empty prompts file is found.
    QTest::newRow("no matrix: --quality-prompts empty")
        << QByteArray("-")
        << QStringList{QStringLiteral("--quality-text"), good, QStringLiteral("--quality-prompts"), empty}
        << QStringList{empty, "no prompts"};
  }
  void benchChecksQualityFilesFirst() {
    QFETCH(QByteArray, matrixKeys);
    QFETCH(QStringList, flags);
    QFETCH(QStringList, needles);
    const QString key = QString::number(qHash(QByteArray(QTest::currentDataTag())));
    const QString out = path(QStringLiteral("never-q-%1.json").arg(key));
    QStringList args{QStringLiteral("bench"),          QStringLiteral("demo"),
                     QStringLiteral("--num-requests"), QStringLiteral("2"),
                     QStringLiteral("--output-len"),   QStringLiteral("fixed:2"),
                     QStringLiteral("--warmup"),       QStringLiteral("0"),
                     QStringLiteral("--out"),          out};
    if (matrixKeys == "-") {
      args << QStringLiteral("--compare");
    } else {
      const QString m = write(QStringLiteral("mq-%1.json").arg(key),
                              R"({"schema": "brisk.matrix", "version": 1, "base": {"model": "demo"}, )"
                              R"("axes": [{"field": "weight_dtype", "values": ["f32", "f16"]}])" +
                                  (matrixKeys.isEmpty() ? QByteArray() : ", " + matrixKeys) + "}");
      args << QStringLiteral("--matrix") << m;
    }
    args << flags;
    const CliRun r = runCli(args);
    CHECK_RAN(r);
    EXPECT_EXIT(r, 1);
    for (const QString& n : needles) EXPECT_IN(r.err, n, r);
    QVERIFY2(!r.err.contains("run 1/2"), qPrintable(describe(r)));  // refused before any run
    QVERIFY2(!QFileInfo::exists(out), qPrintable(describe(r)));     // nothing ran, nothing written
  }

  // ---------------- generate --prompts ----------------

  // Every key of a line is a sampling field or an error naming FILE:LINE and
  // the key; numbers must be integers in range; a line the engine refuses
  // names its line, not the engine's request id.
  void generatePromptLinesAreStrict() {
    QByteArray text =
        R"({"prompt": "hello", "max_token": 5})"
        "\n"  // 1: typo
        R"({"prompt": "hello", "max_tokens": "5"})"
        "\n"  // 2: a string
        R"({"prompt": "hello", "max_tokens": 5.9})"
        "\n"  // 3: not an integer
        R"({"prompt": "hello", "seed": -1})"
        "\n"  // 4: would wrap
        R"({"prompt": "hello", "n": 2, "temperature": 0.8, "seed": 3})"
        "\n"  // 5: honoured
        R"({"prompt": "hello", "beam_width": 2, "n": 2})"
        "\n"  // 6: honoured
        R"({"prompt": "hello"})"
        "\n"  // 7: the flags
        R"({"prompt": "hello", "repetition_penalty": 3})"
        "\n"  // 8: honoured
        R"({"prompt": "hello", "max_tokens": 4.0, "stop_token_ids": [], "logit_bias": {"7": -100}})"
        "\n";                                                                       // 9
    text += "{\"prompt\": \"" + QByteArray("hello world ").repeated(40) + "\"}\n";  // 10: past the context
    const QString in = write(QStringLiteral("strict.jsonl"), text),
                  out = path(QStringLiteral("strict-out.jsonl"));
    RUN_CLI(r, QStringLiteral("generate"), QStringLiteral("demo"), QStringLiteral("--prompts"), in,
            QStringLiteral("--out"), out, QStringLiteral("--max-tokens"), QStringLiteral("12"),
            QStringLiteral("--ignore-eos"), QStringLiteral("--max-model-len"), QStringLiteral("48"));
    EXPECT_EXIT(r, 1);
    EXPECT_IN(r.err, QStringLiteral("10 prompts: 5 ok, 5 errors"), r);
    EXPECT_IN(r.err, QStringLiteral("first error: %1:1: field 'max_token': unknown field").arg(in), r);
    const QList<QJsonObject> rows = jsonLines(out);
    QCOMPARE(rows.size(), 10);
    auto error = [&](int line) { return rows[line - 1].value(QStringLiteral("error")).toString(); };
    auto expectError = [&](int line, const QStringList& needles) {
      const QString e = error(line);
      QVERIFY2(e.startsWith(QStringLiteral("%1:%2: ").arg(in).arg(line)),
               qPrintable(QStringLiteral("line %1: %2").arg(line).arg(e)));
      for (const QString& n : needles)
        QVERIFY2(e.contains(n), qPrintable(QStringLiteral("line %1 lacks '%2': %3").arg(line).arg(n, e)));
    };
    expectError(1, {"field 'max_token'", "unknown field", "max_tokens"});  // and lists the known keys
    expectError(2, {"field 'max_tokens'", "integer", "\"5\""});
    expectError(3, {"field 'max_tokens'", "integer", "5.9"});
    expectError(4, {"field 'seed'", "-1"});
    expectError(10, {"rejected", "does not fit the context"});
    QVERIFY2(!error(10).contains(QStringLiteral("request ")), qPrintable(error(10)));
    for (int line : {5, 6, 7, 8, 9})
      QVERIFY2(error(line).isEmpty(), qPrintable(QStringLiteral("line %1: %2").arg(line).arg(error(line))));
    // n and beam_width are per line: two sequences each, where the flags asked for one.
    QCOMPARE(rows[4].value(QStringLiteral("sequences")).toArray().size(), 2);
    QCOMPARE(rows[5].value(QStringLiteral("sequences")).toArray().size(), 2);
    QVERIFY(!rows[6].contains(QStringLiteral("sequences")));
    // repetition_penalty is applied (the same prompt, greedy, otherwise gives line 7's tokens).
    const QJsonArray plain = rows[6].value(QStringLiteral("token_ids")).toArray(),
                     penalised = rows[7].value(QStringLiteral("token_ids")).toArray();
    QCOMPARE(plain.size(), 12);
    QCOMPARE(penalised.size(), 12);
    QVERIFY2(plain != penalised, "repetition_penalty 3 changed nothing");
    QCOMPARE(rows[8].value(QStringLiteral("token_ids")).toArray().size(), 4);  // 4.0 is an integer
  }

  // A directory or an empty file is an input error (exit 1), not "0 prompts: 0 ok".
  void generatePromptsDirectoryOrEmpty() {
    const QString folder = path(QStringLiteral("a-folder"));
    QVERIFY(QDir().mkpath(folder));
    RUN_CLI(d, QStringLiteral("generate"), QStringLiteral("demo"), QStringLiteral("--prompts"), folder,
            QStringLiteral("--out"), path(QStringLiteral("d-out.jsonl")));
    EXPECT_EXIT(d, 1);
    EXPECT_IN(d.err, folder + QStringLiteral(": is a directory"), d);
    const QString empty = write(QStringLiteral("empty.jsonl"), "\n  \n");
    RUN_CLI(e, QStringLiteral("generate"), QStringLiteral("demo"), QStringLiteral("--prompts"), empty,
            QStringLiteral("--out"), path(QStringLiteral("e-out.jsonl")));
    EXPECT_EXIT(e, 1);
    EXPECT_IN(e.err, empty + QStringLiteral(": no prompts"), e);
  }

  // ---------------- files that are directories ----------------

  // perplexity said "1 token(s); at least 2 are needed", agreement "no prompts (one per line)".
  void directoriesAreNotTextFiles() {
    const QString model = QDir(modelsDir()).filePath(QStringLiteral("stories260K/stories260K.gguf"));
    if (!QFileInfo::exists(model)) QSKIP(qPrintable(QStringLiteral("model not found: %1").arg(model)));
    const QString folder = path(QStringLiteral("texts"));
    QVERIFY(QDir().mkpath(folder));
    RUN_CLI(p, QStringLiteral("perplexity"), model, QStringLiteral("--text"), folder);
    EXPECT_EXIT(p, 1);
    EXPECT_IN(p.err, folder + QStringLiteral(": is a directory"), p);
    RUN_CLI(a, QStringLiteral("agreement"), model, QStringLiteral("--prompts"), folder);
    EXPECT_EXIT(a, 1);
    EXPECT_IN(a.err, folder + QStringLiteral(": is a directory"), a);
  }
};

QTEST_GUILESS_MAIN(TestCliInputs)
#include "test_cli_inputs.moc"
