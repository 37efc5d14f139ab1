// `brisk-cli report`: stored results in, every report format out; bad input
// is exit 1 with a message naming the file. Results are hand-built (exact
// figures) and, once, measured by `brisk-cli bench` on the demo model.
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QProcess>
#include <QRegularExpression>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QtTest>
#include <cmath>

#include "brisk/bench_matrix.h"
#include "support/cli_run.h"
#include "support/synthetic_results.h"

namespace {

QByteArray readAll(const QString& path) {
  QFile f(path);
  return f.open(QIODevice::ReadOnly) ? f.readAll() : QByteArray();
}

bool writeAll(const QString& path, const QByteArray& bytes) {
  QFile f(path);
  return f.open(QIODevice::WriteOnly | QIODevice::Truncate) && f.write(bytes) == bytes.size();
}

}  // namespace

class TestCliReport : public QObject {
  Q_OBJECT

 private:
  QTemporaryDir dir_;
  QString results_;  // a stored results file: precision × policy, 2 repeats

  // Checks the five formats for `inputs` and returns the CSV's lines.
  void checkAllFormats(const QStringList& inputs, int runs, const QString& stem);

 private Q_SLOTS:
  void initTestCase() {
    QVERIFY(dir_.isValid());
    if (qEnvironmentVariableIsSet("BRISK_KEEP_TEST_FILES")) {
      dir_.setAutoRemove(false);
      qInfo("keeping %s", qPrintable(dir_.path()));
    }
    const auto runs = synthetic::matrix();
    const auto sweep = synthetic::rateSweep();
    results_ = dir_.filePath(QStringLiteral("matrix.json"));
    QVERIFY(writeAll(results_, QByteArray::fromStdString(brisk::results_to_json(runs))));
    QVERIFY(writeAll(dir_.filePath(QStringLiteral("sweep.json")),
                     QByteArray::fromStdString(brisk::results_to_json(sweep))));
  }

  void writesEveryFormat() { checkAllFormats({results_}, 8, QStringLiteral("matrix")); }

  void concatenatesFiles() {
    const QString out = dir_.filePath(QStringLiteral("both.csv"));
    RUN_CLI(r, QStringLiteral("report"), results_, dir_.filePath(QStringLiteral("sweep.json")),
            QStringLiteral("--out"), out, QStringLiteral("--baseline"), QStringLiteral("3"));
    EXPECT_EXIT(r, 0);
    EXPECT_IN(r.out, QStringLiteral("14 runs from 2 files"), r);
    const QStringList lines = QString::fromUtf8(readAll(out)).split(QLatin1Char('\n'), Qt::SkipEmptyParts);
    QCOMPARE(lines.size(), 14 + 1);
  }

  void missingFileIsExitOneNamingIt() {
    const QString missing = dir_.filePath(QStringLiteral("no-such-results.json"));
    RUN_CLI(r, QStringLiteral("report"), results_, missing, QStringLiteral("--out"),
            dir_.filePath(QStringLiteral("x.html")));
    EXPECT_EXIT(r, 1);
    EXPECT_IN(r.err, missing, r);
    QVERIFY(!QFileInfo::exists(dir_.filePath(QStringLiteral("x.html"))));
  }

  void badFileIsExitOneNamingIt() {
    const QString bad = dir_.filePath(QStringLiteral("truncated.json"));
    QVERIFY(writeAll(bad, readAll(results_).left(300)));
    RUN_CLI(r, QStringLiteral("report"), bad, QStringLiteral("--out"),
            dir_.filePath(QStringLiteral("y.csv")));
    EXPECT_EXIT(r, 1);
    EXPECT_IN(r.err, bad, r);
    const QString notResults = dir_.filePath(QStringLiteral("other.json"));
    QVERIFY(writeAll(notResults, "{\"schema\": \"brisk.workload\", \"version\": 1}"));
    RUN_CLI(r2, QStringLiteral("report"), notResults, QStringLiteral("--out"),
            dir_.filePath(QStringLiteral("y.csv")));
    EXPECT_EXIT(r2, 1);
    EXPECT_IN(r2.err, notResults, r2);
  }

  void badFlagsAreUsageErrors() {
    RUN_CLI(noOut, QStringLiteral("report"), results_);
    EXPECT_EXIT(noOut, 2);
    EXPECT_IN(noOut.err, QStringLiteral("--out"), noOut);
    RUN_CLI(noInput, QStringLiteral("report"), QStringLiteral("--out"),
            dir_.filePath(QStringLiteral("z.html")));
    EXPECT_EXIT(noInput, 2);
    RUN_CLI(badBase, QStringLiteral("report"), results_, QStringLiteral("--out"),
            dir_.filePath(QStringLiteral("z.html")), QStringLiteral("--baseline"), QStringLiteral("9"));
    EXPECT_EXIT(badBase, 2);
    EXPECT_IN(badBase.err, QStringLiteral("--baseline"), badBase);
    RUN_CLI(badFormat, QStringLiteral("report"), results_, QStringLiteral("--out"),
            dir_.filePath(QStringLiteral("z.docx")));
    EXPECT_EXIT(badFormat, 1);
    EXPECT_IN(badFormat.err, QStringLiteral("z.docx"), badFormat);
  }

  // The issue's end-to-end check: a real matrix (precision × policy, 2
  // repeats: 8 runs) on the demo model, headless, with the report written by
  // bench itself; its results file validates against the schema and feeds
  // every report format.
  void realMatrixOnDemoModel() {
    const QString workload = dir_.filePath(QStringLiteral("w.json"));
    const QString matrix = dir_.filePath(QStringLiteral("m.json"));
    QVERIFY(writeAll(workload, R"({"schema": "brisk.workload", "version": 1, "name": "tiny",
      "num_requests": 4, "arrival": "all",
      "prompt_len": "fixed:16", "output_len": "fixed:8", "seed": 1})"));
    QVERIFY(writeAll(matrix, R"({"schema": "brisk.matrix", "version": 1, "name": "precision x policy",
      "kind": "grid", "repeats": 2, "warmup_requests": 1, "base": {"threads": 1, "max_num_seqs": 4},
      "axes": [{"field": "weight_dtype", "values": ["f32", "int8"]},
               {"field": "policy", "values": ["continuous", "static"]}]})"));
    const QString out = dir_.filePath(QStringLiteral("real.json"));
    const QString pdf = dir_.filePath(QStringLiteral("real-bench.pdf"));
    const CliRun bench =
        runCli({QStringLiteral("bench"), QStringLiteral("demo"), QStringLiteral("--workload"), workload,
                QStringLiteral("--matrix"), matrix, QStringLiteral("--no-limits"), QStringLiteral("--out"),
                out, QStringLiteral("--report"), pdf},
               300000);
    CHECK_RAN(bench);
    EXPECT_EXIT(bench, 0);
    const auto runs = brisk::load_results(out.toStdString());
    QCOMPARE(int(runs.size()), 8);
    for (const auto& r : runs) {
      QVERIFY2(r.error.empty(), r.error.c_str());
      QCOMPARE(r.summary.finished, 4);
    }
    if (QProcess::execute(QStringLiteral("/usr/bin/python3"),
                          {QStringLiteral("-c"), QStringLiteral("import jsonschema")}) == 0) {
      QProcess p;
      p.start(QStringLiteral("/usr/bin/python3"),
              {QStringLiteral("-c"),
               QStringLiteral("import json, sys, jsonschema\n"
                              "jsonschema.Draft202012Validator(json.load(open(sys.argv[1]))).validate(json."
                              "load(open(sys.argv[2])))\n"),
               QStringLiteral(BRISK_SOURCE_DIR "/docs/schemas/results.v1.schema.json"), out});
      QVERIFY(p.waitForFinished(60000));
      QVERIFY2(p.exitCode() == 0, p.readAllStandardError().constData());
    } else {
      qWarning("/usr/bin/python3 lacks jsonschema: the schema check of the real matrix is not run");
    }
    const QByteArray pdfBytes = readAll(pdf);
    const bool noUi = bench.err.contains("BRISK_WITH_UI=OFF");
    if (!noUi) QVERIFY2(pdfBytes.startsWith("%PDF-"), qPrintable(describe(bench)));
    checkAllFormats({out}, 8, QStringLiteral("real"));
  }

  // Measured results from `brisk-cli bench` (two runs on the demo model).
  void reportsMeasuredBenchResults() {
    const QString out = dir_.filePath(QStringLiteral("bench.json"));
    const CliRun bench =
        runCli({QStringLiteral("bench"), QStringLiteral("demo"), QStringLiteral("--num-requests"),
                QStringLiteral("4"), QStringLiteral("--prompt-len"), QStringLiteral("fixed:16"),
                QStringLiteral("--output-len"), QStringLiteral("fixed:8"), QStringLiteral("--warmup"),
                QStringLiteral("0"), QStringLiteral("--compare"), QStringLiteral("--no-limits"),
                QStringLiteral("--threads"), QStringLiteral("1"), QStringLiteral("--out"), out},
               120000);
    CHECK_RAN(bench);
    EXPECT_EXIT(bench, 0);
    // Re-exported as JSON, the bench's own results file comes back as the same bytes (docs/WORKLOADS.md):
    // it used to lose the file's trailing newline.
    const QString again = dir_.filePath(QStringLiteral("bench-again.json"));
    const CliRun report = runCli({QStringLiteral("report"), out, QStringLiteral("--out"), again});
    CHECK_RAN(report);
    EXPECT_EXIT(report, 0);
    QVERIFY(readAll(out).endsWith("}\n"));
    QCOMPARE(readAll(again), readAll(out));
    checkAllFormats({out}, 2, QStringLiteral("bench"));
  }
};

void TestCliReport::checkAllFormats(const QStringList& inputs, int runs, const QString& stem) {
  bool withUi = true;
  for (const char* suffix : {"json", "csv", "html", "md", "pdf"}) {
    const QString out = dir_.filePath(stem + QLatin1Char('.') + QLatin1String(suffix));
    QStringList args{QStringLiteral("report")};
    args << inputs << QStringLiteral("--out") << out << QStringLiteral("--title")
         << QStringLiteral("CLI report");
    const CliRun r = runCli(args, 120000);
    CHECK_RAN(r);
    // A brisk-cli built without the UI writes JSON and CSV only, and says why.
    if (r.code == 1 && QString::fromUtf8(r.err).contains(QLatin1String("BRISK_WITH_UI=OFF"))) {
      QVERIFY(QByteArray("html md pdf").contains(suffix));
      withUi = false;
      continue;
    }
    EXPECT_EXIT(r, 0);
    QVERIFY2(QFileInfo(out).size() > 0, qPrintable(out));
  }
  // JSON: re-imports to the same runs.
  const auto back = brisk::load_results(dir_.filePath(stem + QStringLiteral(".json")).toStdString());
  QCOMPARE(int(back.size()), runs);
  const auto orig = brisk::load_results(inputs.front().toStdString());
  for (const brisk::SummaryField& f : brisk::summary_fields()) {
    const double a = f.value(orig[0]), b = f.value(back[0]);
    QVERIFY2((std::isnan(a) && std::isnan(b)) || a == b, f.key.c_str());
  }
  // CSV: a header and one row per run, 3 + fields + status and error columns (labels carry no
  // commas here, and every run finished: status ok, no error).
  const QStringList lines = QString::fromUtf8(readAll(dir_.filePath(stem + QStringLiteral(".csv"))))
                                .split(QLatin1Char('\n'), Qt::SkipEmptyParts);
  QCOMPARE(lines.size(), runs + 1);
  for (const QString& line : lines)
    QCOMPARE(line.count(QLatin1Char(',')) + 1, 5 + int(brisk::summary_fields().size()));
  QVERIFY2(lines.front().endsWith(QLatin1String(",status,error")), qPrintable(lines.front()));
  for (int i = 1; i < lines.size(); ++i)
    QVERIFY2(lines[i].endsWith(QLatin1String(",ok,")), qPrintable(lines[i]));
  if (!withUi) QSKIP("brisk-cli was built without the UI: HTML, Markdown and PDF reports are not available");
  // HTML: self-contained, titled, with every run and the same figures as format_field.
  const QString html = QString::fromUtf8(readAll(dir_.filePath(stem + QStringLiteral(".html"))));
  QVERIFY(html.contains(QLatin1String("<h1>CLI report</h1>")));
  static const QRegularExpression ref(QStringLiteral("(?:src|href)\\s*=\\s*[\"\x27]?([^\"\x27\\s>]*)"));
  for (auto it = ref.globalMatch(html); it.hasNext();) {
    const QString target = it.next().captured(1);
    QVERIFY2(target.startsWith(QLatin1String("data:")) || target.startsWith(QLatin1Char('#')),
             qPrintable(target.left(80)));
  }
  for (const brisk::SummaryField& f : brisk::summary_fields()) {
    const QString figure = QString::fromStdString(brisk::format_field(f, f.value(orig[0]))).toHtmlEscaped();
    QVERIFY2(html.contains(QLatin1Char('>') + figure + QLatin1Char('<')), qPrintable(figure));
  }
  // Markdown: the plots beside it.
  const QString md = QString::fromUtf8(readAll(dir_.filePath(stem + QStringLiteral(".md"))));
  QVERIFY(md.startsWith(QLatin1String("# CLI report")));
  const QStringList plots =
      QDir(dir_.filePath(stem + QStringLiteral("_files"))).entryList({QStringLiteral("*.png")});
  QVERIFY(!plots.isEmpty());
  for (const QString& png : plots)
    QVERIFY2(md.contains(stem + QStringLiteral("_files/") + png), qPrintable(png));
  // PDF: several pages, page 1 renders.
  const QByteArray pdf = readAll(dir_.filePath(stem + QStringLiteral(".pdf")));
  QVERIFY(pdf.startsWith("%PDF-"));
  const QString pdfinfo = QStandardPaths::findExecutable(QStringLiteral("pdfinfo"));
  const QString pdftoppm = QStandardPaths::findExecutable(QStringLiteral("pdftoppm"));
  if (pdfinfo.isEmpty() || pdftoppm.isEmpty())
    QSKIP("poppler-utils (pdfinfo, pdftoppm) is not installed: cannot check the PDF's pages");
  const CliRun info = runProgram(pdfinfo, {dir_.filePath(stem + QStringLiteral(".pdf"))});
  CHECK_RAN(info);
  static const QRegularExpression pagesRe(QStringLiteral("Pages:\\s+(\\d+)"));
  const auto m = pagesRe.match(QString::fromUtf8(info.out));
  QVERIFY2(m.hasMatch() && m.captured(1).toInt() >= 2, qPrintable(describe(info)));
  const CliRun ppm = runProgram(pdftoppm, {QStringLiteral("-png"), QStringLiteral("-r"), QStringLiteral("50"),
                                           QStringLiteral("-f"), QStringLiteral("1"), QStringLiteral("-l"),
                                           QStringLiteral("1"), dir_.filePath(stem + QStringLiteral(".pdf")),
                                           dir_.filePath(stem + QStringLiteral("-page"))});
  CHECK_RAN(ppm);
  EXPECT_EXIT(ppm, 0);
  const QStringList pngs = QDir(dir_.path()).entryList({stem + QStringLiteral("-page*.png")});
  QCOMPARE(pngs.size(), 1);
  QVERIFY(readAll(dir_.filePath(pngs[0])).startsWith("\x89PNG\r\n\x1a\n"));
}

QTEST_GUILESS_MAIN(TestCliReport)
#include "test_cli_report.moc"
