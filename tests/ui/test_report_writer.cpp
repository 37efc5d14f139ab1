// Reports: every comparison plot draws (realistic and empty data) with a
// title, labelled axes and a legend; the five formats are written; the HTML
// is self-contained and shows the same figures as format_field (what the CLI
// table and the GUI's Compare table show); the PDF is a multi-page PDF that
// pdftoppm renders; the CSV parses; the JSON re-imports to the same figures.
#include <qcustomplot.h>

#include <QApplication>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QImage>
#include <QProcess>
#include <QRegularExpression>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QtTest>
#include <cmath>

#include "brisk/bench_matrix.h"
#include "brisk/error.h"
#include "e2e/support/synthetic_results.h"
#include "ui/report/report_common.h"
#include "ui/report/report_writer.h"
#include "ui/report/result_plots.h"

using brisk::BenchResult;
using brisk::ui::ResultPlot;

namespace {

const ResultPlot kAllPlots[] = {
    ResultPlot::ThroughputBars, ResultPlot::LatencyCdf,          ResultPlot::TtftBars,
    ResultPlot::TpotBars,       ResultPlot::ThroughputVsLatency, ResultPlot::KvOccupancy,
    ResultPlot::RequestTimeline};

QString plotName(ResultPlot p) { return brisk::ui::result_plot_title(p); }

QCPTextElement* titleOf(QCustomPlot& plot) {
  for (int i = 0; i < plot.plotLayout()->elementCount(); ++i)
    if (auto* t = qobject_cast<QCPTextElement*>(plot.plotLayout()->elementAt(i))) return t;
  return nullptr;
}

bool hasNoDataNote(QCustomPlot& plot) {
  for (int i = 0; i < plot.itemCount(); ++i)
    if (auto* t = qobject_cast<QCPItemText*>(plot.item(i)))
      if (t->text().startsWith(QLatin1String("no data"))) return true;
  return false;
}

// Distinct colours in an image: a blank plot has a handful (background,
// grid, text); one with series and bars has many more.
int distinctColors(const QImage& image) {
  QSet<QRgb> seen;
  const QImage img = image.convertToFormat(QImage::Format_RGB32);
  for (int y = 0; y < img.height(); y += 3)
    for (int x = 0; x < img.width(); x += 3) seen.insert(img.pixel(x, y));
  return int(seen.size());
}

QByteArray readAll(const QString& path) {
  QFile f(path);
  return f.open(QIODevice::ReadOnly) ? f.readAll() : QByteArray();
}

// RFC 4180 fields of one CSV line.
QStringList csvFields(const QString& line) {
  QStringList out;
  QString cur;
  bool quoted = false;
  for (int i = 0; i < line.size(); ++i) {
    const QChar c = line[i];
    if (quoted) {
      if (c == QLatin1Char('"') && i + 1 < line.size() && line[i + 1] == QLatin1Char('"')) {
        cur += c;
        ++i;
      } else if (c == QLatin1Char('"')) {
        quoted = false;
      } else {
        cur += c;
      }
    } else if (c == QLatin1Char('"')) {
      quoted = true;
    } else if (c == QLatin1Char(',')) {
      out << cur;
      cur.clear();
    } else {
      cur += c;
    }
  }
  out << cur;
  return out;
}

}  // namespace

class TestReportWriter : public QObject {
  Q_OBJECT

 private:
  std::vector<BenchResult> runs_;

 private Q_SLOTS:
  void initTestCase() { runs_ = synthetic::matrix(); }

  void runLabelsNameRepeats() {
    const QStringList labels = brisk::ui::run_labels(runs_);
    QCOMPARE(labels.size(), int(runs_.size()));
    QCOMPARE(labels[0], QStringLiteral("f32 · continuous r1"));
    QCOMPARE(labels[4], QStringLiteral("f32 · continuous r2"));
    QCOMPARE(QSet<QString>(labels.begin(), labels.end()).size(), labels.size());
    std::vector<BenchResult> two{runs_[0], runs_[1]};
    two[1].label.clear();
    QCOMPARE(brisk::ui::run_labels(two),
             (QStringList{QStringLiteral("f32 · continuous"), QStringLiteral("run 2")}));
    // Two files' single runs, both labelled "base": the models tell them apart.
    std::vector<BenchResult> files{runs_[0], runs_[0]};
    files[0].label = files[1].label = "base";
    files[1].model.path = "/models/stories260K.gguf";
    QCOMPARE(brisk::ui::run_labels(files),
             (QStringList{QStringLiteral("demo · base"), QStringLiteral("stories260K · base")}));
    files[1].model.path = "demo";  // the same model twice: numbered, as before
    QCOMPARE(brisk::ui::run_labels(files),
             (QStringList{QStringLiteral("base (1)"), QStringLiteral("base (2)")}));
  }

  void everyPlotDrawsRealisticData_data() {
    QTest::addColumn<int>("kind");
    for (ResultPlot p : kAllPlots) QTest::newRow(qPrintable(plotName(p))) << int(p);
  }
  void everyPlotDrawsRealisticData() {
    QFETCH(int, kind);
    const auto p = ResultPlot(kind);
    QCustomPlot plot;
    plot.resize(1280, 600);
    brisk::ui::draw_result_plot(&plot, p, runs_, 1);
    QCPTextElement* title = titleOf(plot);
    QVERIFY2(title && title->text().startsWith(plotName(p)), "the plot has its title");
    QVERIFY(plot.xAxis && plot.yAxis);
    QVERIFY2(!plot.xAxis->label().isEmpty() && !plot.yAxis->label().isEmpty(), "both axes are labelled");
    if (p != ResultPlot::ThroughputBars && p != ResultPlot::TtftBars && p != ResultPlot::TpotBars &&
        p != ResultPlot::RequestTimeline)
      QVERIFY2(plot.xAxis->label().contains(QLatin1String("(ms)")) ||
                   plot.xAxis->label().contains(QLatin1String("(s)")),
               qPrintable(QStringLiteral("x axis has a unit: ") + plot.xAxis->label()));
    QVERIFY2(plot.yAxis->label().contains(QLatin1Char('(')),
             qPrintable(QStringLiteral("y axis has a unit: ") + plot.yAxis->label()));
    QVERIFY2(plot.legend && plot.legend->visible() && plot.legend->itemCount() >= 2,
             "a visible legend naming the series");
    QVERIFY2(!hasNoDataNote(plot), "realistic data is drawn, not 'no data'");
    QVERIFY(plot.plottableCount() + plot.itemCount() > 0);
    const QImage image = plot.toPixmap(1280, 600).toImage();
    QVERIFY2(distinctColors(image) > 12, "the picture has content");
  }

  void legendsNameRunsAndSeries() {
    QCustomPlot plot;
    plot.resize(1280, 600);
    const QStringList labels = brisk::ui::run_labels(runs_);
    brisk::ui::draw_result_plot(&plot, ResultPlot::LatencyCdf, runs_);
    QCOMPARE(plot.legend->itemCount(), int(runs_.size()));
    for (int i = 0; i < plot.legend->itemCount(); ++i) {
      auto* item = qobject_cast<QCPPlottableLegendItem*>(plot.legend->item(i));
      QVERIFY(item);
      QCOMPARE(item->plottable()->name(), labels[i]);
    }
    brisk::ui::draw_result_plot(&plot, ResultPlot::TtftBars, runs_);
    QCOMPARE(plot.legend->itemCount(), 3);  // p50, p90, p99
    QCOMPARE(plot.yAxis->label(), QStringLiteral("TTFT (ms)"));
    // Bars sit at the run positions with the run names on the ticks.
    auto* bars = qobject_cast<QCPBars*>(plot.plottable(0));
    QVERIFY(bars);
    QCOMPARE(bars->data()->size(), int(runs_.size()));
    QCOMPARE(bars->data()->at(0)->value, runs_[0].summary.ttft.p50 * 1e3);
    brisk::ui::draw_result_plot(&plot, ResultPlot::RequestTimeline, runs_, 2);
    QVERIFY(titleOf(plot)->text().contains(labels[2]));
    QStringList names;
    for (int i = 0; i < plot.legend->itemCount(); ++i)
      names << qobject_cast<QCPPlottableLegendItem*>(plot.legend->item(i))->plottable()->name();
    QCOMPARE(names.size(), 4);
    QVERIFY(names.join(QLatin1Char(',')).contains(QLatin1String("slow gap")));
    // The synthetic runs have slow gaps (6× a step): some red rectangles exist.
    int slow = 0;
    for (int i = 0; i < plot.itemCount(); ++i)
      if (auto* r = qobject_cast<QCPItemRect*>(plot.item(i)))
        if (r->brush().color() == QColor(0xe1, 0x57, 0x59)) ++slow;
    QVERIFY2(slow > 0, "slow inter-token gaps are marked");
  }

  void sweepDrawsOneCurvePerConfiguration() {
    const auto sweep = synthetic::rateSweep();
    QCustomPlot plot;
    plot.resize(1280, 600);
    brisk::ui::draw_result_plot(&plot, ResultPlot::ThroughputVsLatency, sweep);
    QCOMPARE(plot.plottableCount(), 2);  // continuous, static
    for (int i = 0; i < 2; ++i) {
      auto* curve = qobject_cast<QCPCurve*>(plot.plottable(i));
      QVERIFY(curve);
      QCOMPARE(curve->data()->size(), 3);  // rates 2, 4, 8
    }
    QCOMPARE(plot.plottable(0)->name(), QStringLiteral("continuous"));
    // Not a sweep: one point per run.
    brisk::ui::draw_result_plot(&plot, ResultPlot::ThroughputVsLatency, runs_);
    QCOMPARE(plot.plottableCount(), int(runs_.size()));
  }

  void emptyDataDrawsNoDataNote_data() { everyPlotDrawsRealisticData_data(); }
  void emptyDataDrawsNoDataNote() {
    QFETCH(int, kind);
    const auto p = ResultPlot(kind);
    BenchResult blank;  // no requests, no steps
    blank.label = "empty";
    BenchResult failed = runs_[0];
    failed.error = "model did not load";
    failed.requests.clear();
    failed.steps.clear();
    for (const std::vector<BenchResult>& runs : {std::vector<BenchResult>{}, std::vector<BenchResult>{blank},
                                                 std::vector<BenchResult>{failed, blank}}) {
      QCustomPlot plot;
      plot.resize(800, 400);
      brisk::ui::draw_result_plot(&plot, p, runs, 5);  // focus out of range too
      QVERIFY(titleOf(plot) && !titleOf(plot)->text().isEmpty());
      QVERIFY(!plot.xAxis->label().isEmpty() && !plot.yAxis->label().isEmpty());
      QVERIFY2(hasNoDataNote(plot), "an empty plot says so");
      QVERIFY(!plot.toPixmap(800, 400).isNull());
    }
    // Drawing again on the same widget replaces the previous plot.
    QCustomPlot plot;
    brisk::ui::draw_result_plot(&plot, p, runs_);
    brisk::ui::draw_result_plot(&plot, p, {});
    QVERIFY(hasNoDataNote(plot));
    QCOMPARE(plot.axisRectCount(), 1);
  }

  void formatFromSuffix() {
    using brisk::ui::ReportFormat;
    QCOMPARE(brisk::ui::report_format_for(QStringLiteral("a/b.HTML")), ReportFormat::Html);
    QCOMPARE(brisk::ui::report_format_for(QStringLiteral("b.htm")), ReportFormat::Html);
    QCOMPARE(brisk::ui::report_format_for(QStringLiteral("b.pdf")), ReportFormat::Pdf);
    QCOMPARE(brisk::ui::report_format_for(QStringLiteral("b.md")), ReportFormat::Markdown);
    QCOMPARE(brisk::ui::report_format_for(QStringLiteral("b.json")), ReportFormat::Json);
    QCOMPARE(brisk::ui::report_format_for(QStringLiteral("b.csv")), ReportFormat::Csv);
    try {
      brisk::ui::report_format_for(QStringLiteral("out/report.docx"));
      QFAIL("a .docx report was accepted");
    } catch (const brisk::Error& e) {
      QVERIFY2(QString::fromUtf8(e.what()).contains(QLatin1String("out/report.docx")), e.what());
    }
  }

  void badInputIsAnErrorNamingThePath() {
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("r.html"));
    for (auto call :
         {std::function<void()>([&] { brisk::ui::write_report({}, path, brisk::ui::ReportFormat::Html); }),
          std::function<void()>([&] {
            brisk::ui::ReportOptions o;
            o.baseline = 99;
            brisk::ui::write_report(runs_, path, brisk::ui::ReportFormat::Html, o);
          }),
          std::function<void()>([&] {
            brisk::ui::write_report(runs_, dir.filePath(QStringLiteral("no/such/dir/r.html")),
                                    brisk::ui::ReportFormat::Html);
          })}) {
      try {
        call();
        QFAIL("bad input was accepted");
      } catch (const brisk::Error& e) {
        QVERIFY2(QString::fromUtf8(e.what()).contains(QLatin1String("r.html")), e.what());
      }
    }
  }

  void htmlIsSelfContainedWithTheSameFigures() {
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("report.html"));
    brisk::ui::ReportOptions o;
    o.title = QStringLiteral("Precision × policy");
    o.baseline = 1;
    brisk::ui::write_report(runs_, path, brisk::ui::ReportFormat::Html, o);
    const QString html = QString::fromUtf8(readAll(path));
    QVERIFY(html.startsWith(QLatin1String("<!DOCTYPE html>")));
    QVERIFY(html.contains(QStringLiteral("Precision × policy")));

    // Nothing outside the file: every src/href is a data: URI or an #anchor, no url().
    static const QRegularExpression ref(QStringLiteral("(?:src|href)\\s*=\\s*[\"\x27]?([^\"\x27\\s>]*)"),
                                        QRegularExpression::CaseInsensitiveOption);
    int images = 0;
    for (auto it = ref.globalMatch(html); it.hasNext();) {
      const QString target = it.next().captured(1);
      QVERIFY2(target.startsWith(QLatin1String("data:")) || target.startsWith(QLatin1Char('#')),
               qPrintable(QStringLiteral("external reference: ") + target.left(80)));
      if (target.startsWith(QLatin1String("data:image/png;base64,"))) ++images;
    }
    QVERIFY2(images >= 6, qPrintable(QStringLiteral("%1 embedded plots").arg(images)));
    QVERIFY(!html.contains(
        QRegularExpression(QStringLiteral("url\\s*\\("), QRegularExpression::CaseInsensitiveOption)));
    QVERIFY(!html.contains(QLatin1String("@import")));
    QVERIFY(!html.contains(QLatin1String("http://")) && !html.contains(QLatin1String("https://")));
    // The embedded PNGs decode.
    static const QRegularExpression png(QStringLiteral("data:image/png;base64,([A-Za-z0-9+/=]+)"));
    const auto first = png.match(html);
    QVERIFY(first.hasMatch());
    QImage img;
    QVERIFY(img.loadFromData(QByteArray::fromBase64(first.captured(1).toLatin1()), "PNG"));
    QVERIFY(img.width() >= 1000);

    for (const QString& label : brisk::ui::run_labels(runs_))
      QVERIFY2(html.contains(label.toHtmlEscaped()), qPrintable(label));
    // The same figures the CLI table and the Compare view show.
    for (const BenchResult& r : runs_)
      for (const brisk::SummaryField& f : brisk::summary_fields()) {
        const QString figure = QString::fromStdString(brisk::format_field(f, f.value(r))).toHtmlEscaped();
        QVERIFY2(html.contains(QStringLiteral(">") + figure + QStringLiteral("<")),
                 qPrintable(QStringLiteral("%1 = %2 missing").arg(QString::fromStdString(f.key), figure)));
      }
    for (const char* section : {"id=\"summary\"", "id=\"plots\"", "id=\"configuration\"", "id=\"machine\"",
                                "id=\"model\"", "id=\"brisk\"", "id=\"workload\""})
      QVERIFY2(html.contains(QLatin1String(section)), section);
    QVERIFY(html.contains(QLatin1String("Test CPU @ 3.0GHz")));
    QVERIFY(html.contains(QLatin1String("12.5 GB/s")));
    QVERIFY(html.contains(QLatin1String("0123abc")));
    QVERIFY(html.contains(QLatin1String("baseline")));
    QVERIFY2(html.contains(QRegularExpression(QStringLiteral("[+-]\\d+\\.\\d%"))),
             "deltas against the baseline");
    QVERIFY2(html.contains(QLatin1String("<b class=\"best\">")), "the best value per figure is bold");
  }

  // A failed run and a lone run still make complete reports.
  void failedAndSingleRunsReport() {
    QTemporaryDir dir;
    std::vector<BenchResult> runs{runs_[0], runs_[1]};
    runs[1].error = "int8 weights: model did not load";
    runs[1].requests.clear();
    runs[1].steps.clear();
    runs[1].summary = {};
    const QString html = dir.filePath(QStringLiteral("failed.html"));
    brisk::ui::write_report(runs, html, brisk::ui::ReportFormat::Html);
    const QString text = QString::fromUtf8(readAll(html));
    QVERIFY(text.contains(QStringLiteral("int8 weights: model did not load")));
    QVERIFY(text.contains(QLatin1String(">failed</td>")));  // its figures read "failed"
    brisk::ui::write_report(runs, dir.filePath(QStringLiteral("failed.pdf")), brisk::ui::ReportFormat::Pdf);
    QVERIFY(readAll(dir.filePath(QStringLiteral("failed.pdf"))).startsWith("%PDF-"));

    const std::vector<BenchResult> one{runs_[2]};
    brisk::ui::write_report(one, dir.filePath(QStringLiteral("one.md")), brisk::ui::ReportFormat::Markdown);
    const QString md = QString::fromUtf8(readAll(dir.filePath(QStringLiteral("one.md"))));
    QVERIFY(md.contains(QLatin1String("one_files/request-timeline.png")));
    QVERIFY(!md.contains(QRegularExpression(QStringLiteral("\\*\\*[0-9]"))));  // nothing to be best against
  }

  // The header names every build, model and machine the runs came from, not
  // only the baseline's; notes explain figures that would mislead alone.
  void headerAndNotesCoverEveryRun() {
    QTemporaryDir dir;
    const QString same = dir.filePath(QStringLiteral("same.md"));
    brisk::ui::write_report(runs_, same, brisk::ui::ReportFormat::Markdown);
    const QString one = QString::fromUtf8(readAll(same));
    QVERIFY2(one.contains(QStringLiteral("Model demo · Test CPU @ 3.0GHz · 2 cores")),
             qPrintable(one.left(400)));
    QVERIFY(one.contains(QLatin1String("(commit 0123abc)")));
    QVERIFY(!one.contains(QLatin1String("differ")));
    QVERIFY(one.contains(QLatin1String("| Requests/s |")));  // not "Requests/s (req/s)"
    QVERIFY(!one.contains(QLatin1String("above 100")));

    std::vector<BenchResult> runs{runs_[0], runs_[1]};
    runs[1].model.path = "/models/other.gguf";
    runs[1].system.cpu_model = "Other CPU";
    runs[1].system.physical_cores = 32;
    runs[1].commit = "fedcba9";
    runs[0].roofline.measured = true;  // a model that fits in cache: above the DRAM ceiling
    runs[0].roofline.decode_steps = 10;
    runs[0].roofline.decode_bandwidth_fraction = 1.26;
    for (const auto& [name, format] :
         {std::pair{QStringLiteral("mixed.md"), brisk::ui::ReportFormat::Markdown},
          std::pair{QStringLiteral("mixed.html"), brisk::ui::ReportFormat::Html}}) {
      const QString path = dir.filePath(name);
      brisk::ui::ReportOptions o;
      o.baseline = 1;
      brisk::ui::write_report(runs, path, format, o);
      const QString text = QString::fromUtf8(readAll(path));
      for (const char* want :
           {"Models demo, /models/other.gguf", "machines differ", "Test CPU @ 3.0GHz · 2 cores",
            "Other CPU · 32 cores", "builds differ", "0123abc", "fedcba9", "above 100", "not ranked"})
        QVERIFY2(text.contains(QString::fromUtf8(want)), qPrintable(name + QStringLiteral(": no ") + want));
    }
  }

  // The Model section names a model as the window does, and the
  // Configuration section leaves out the settings of a backend no run used.
  void modelNameAndBackendSettingsAsRun() {
    QTemporaryDir dir;
    std::vector<BenchResult> runs{runs_[0], runs_[1]};
    for (BenchResult& r : runs) {
      r.model.path = "/models/stories260K.gguf";
      r.model.name = "llama";  // a converter's default: the architecture
      r.system.backend_used = "cpu";
    }
    const QString path = dir.filePath(QStringLiteral("cpu.md"));
    brisk::ui::write_report(runs, path, brisk::ui::ReportFormat::Markdown);
    QString text = QString::fromUtf8(readAll(path));
    QVERIFY2(text.contains(QLatin1String("stories260K (stored name: llama)")), qPrintable(text));
    for (const char* gone : {"cuda_graphs", "fused_decode", "gpu_memory_utilization", "split_merge_in_kernel",
                             "l2_prefetch", "persistent_decode"})
      QVERIFY2(!text.contains(QLatin1String(gone)), gone);
    for (const char* kept : {"huge_page_weights", "int8_fma", "kv_dtype"})
      QVERIFY2(text.contains(QLatin1String(kept)), kept);

    runs[1].system.backend_used = "cuda";  // one run on each: every setting counts
    brisk::ui::write_report(runs, path, brisk::ui::ReportFormat::Markdown);
    text = QString::fromUtf8(readAll(path));
    for (const char* kept : {"cuda_graphs", "l2_prefetch", "persistent_decode", "huge_page_weights"})
      QVERIFY2(text.contains(QLatin1String(kept)), kept);
    runs[0].system.backend_used = "cuda";
    brisk::ui::write_report(runs, path, brisk::ui::ReportFormat::Markdown);
    text = QString::fromUtf8(readAll(path));
    QVERIFY(text.contains(QLatin1String("cuda_graphs")));
    QVERIFY(!text.contains(QLatin1String("huge_page_weights")));
  }

  // Counts of one are singular: a one-layer, one-head model measured on one
  // thread of a one-core machine read "1 layers", "1 heads", "1 threads", "1 cores".
  void countsOfOneAreSingular() {
    QTemporaryDir dir;
    std::vector<BenchResult> runs{runs_[0]};
    runs[0].model.n_layers = 1;
    runs[0].model.n_heads = 1;
    runs[0].model.n_kv_heads = 1;
    runs[0].system.physical_cores = 1;
    runs[0].system.measured = true;
    runs[0].system.threads_used = 1;
    const QString path = dir.filePath(QStringLiteral("one.md"));
    brisk::ui::write_report(runs, path, brisk::ui::ReportFormat::Markdown);
    const QString text = QString::fromUtf8(readAll(path));
    for (const char* want : {"1 layer,", "1 head (1 KV)", "on 1 thread", "· 1 core"})
      QVERIFY2(text.contains(QString::fromUtf8(want)), want);
    for (const char* gone : {"1 layers", "1 heads", "1 threads", "1 cores"})
      QVERIFY2(!text.contains(QString::fromUtf8(gone)), gone);
    runs[0].model.n_layers = 2;
    runs[0].system.threads_used = 4;
    brisk::ui::write_report(runs, path, brisk::ui::ReportFormat::Markdown);
    const QString more = QString::fromUtf8(readAll(path));
    for (const char* want : {"2 layers,", "on 4 threads"})
      QVERIFY2(more.contains(QString::fromUtf8(want)), want);
  }

  // A failed run in the form older builds wrote it: an empty system block
  // (no CPU, 0 cores) and a model that never loaded (every figure 0), named
  // only by its configuration.
  static BenchResult failedRun(const BenchResult& from, const std::string& label, const std::string& why) {
    BenchResult r = from;
    r.label = label;
    r.error = why;
    r.requests.clear();
    r.steps.clear();
    r.summary = {};
    r.roofline = {};
    r.quality = {};
    r.system = {};
    r.model = {};
    r.model_sha256.clear();
    r.config.model = "/models/stories260K.gguf";
    r.config.backend = "cuda";
    return r;
  }

  // A failed run with no machine recorded is no machine of its own, and a
  // model that never loaded shows "not loaded" / "-", never zeros.
  void failedRunsAreNoMachineAndNoZeroModel() {
    QTemporaryDir dir;
    const std::string why = "backend 'cuda' is unavailable: no NVIDIA driver installed (libcuda not found)";
    std::vector<BenchResult> runs{runs_[0], failedRun(runs_[1], "cuda · continuous", why)};
    for (const auto& [name, format] :
         {std::pair{QStringLiteral("old.md"), brisk::ui::ReportFormat::Markdown},
          std::pair{QStringLiteral("old.html"), brisk::ui::ReportFormat::Html}}) {
      const QString path = dir.filePath(name);
      brisk::ui::write_report(runs, path, format);
      const QString text = QString::fromUtf8(readAll(path));
      QVERIFY2(text.contains(QStringLiteral("Test CPU @ 3.0GHz · 2 cores")), qPrintable(name));
      for (const char* gone : {"machines differ", "unknown CPU", "0 cores", "0 physical, 0 logical",
                               "not measured", "dim 0", "hidden 0", "0 layers", "head dim 0", "0 / 0"})
        QVERIFY2(!text.contains(QString::fromUtf8(gone)), qPrintable(name + QStringLiteral(": ") + gone));
      for (const char* want : {"not recorded (the run failed)", "not loaded (the run failed)",
                               "/models/stories260K.gguf", "stories260K"})
        QVERIFY2(text.contains(QString::fromUtf8(want)), qPrintable(name + QStringLiteral(": no ") + want));
    }
    // A failed run's unknowns are no difference between the runs.
    const QString html = QString::fromUtf8(readAll(dir.filePath(QStringLiteral("old.html"))));
    QVERIFY(html.contains(QLatin1String("<tr><td class=\"k\">cores</td>")));
    QVERIFY(html.contains(QLatin1String("<tr><td class=\"k\">parameters</td>")));
    QVERIFY(html.contains(QLatin1String("<tr class=\"diff\"><td class=\"k\">backend</td>")));
    // Markdown rows: the failed run's parameters and shape read "-", not 0.
    const QString md = QString::fromUtf8(readAll(dir.filePath(QStringLiteral("old.md"))));
    QVERIFY2(md.contains(QLatin1String("| parameters | 7.0 M | - |")), qPrintable(md));
    QVERIFY(md.contains(QLatin1String("| vocabulary / context | 512 / 256 | - |")));
    QVERIFY(md.contains(QRegularExpression(QStringLiteral("\\| cores \\| 2 physical, 4 logical \\| - \\|"))));

    // Newer builds record the machine of a failed run: it is the same machine.
    runs[1].system = runs_[0].system;
    runs[1].system.measured = false;
    const QString path = dir.filePath(QStringLiteral("new.md"));
    brisk::ui::write_report(runs, path, brisk::ui::ReportFormat::Markdown);
    QString text = QString::fromUtf8(readAll(path));
    QVERIFY(text.contains(QStringLiteral("Test CPU @ 3.0GHz · 2 cores")));
    QVERIFY(!text.contains(QLatin1String("differ")));
    QVERIFY(!text.contains(QLatin1String("not recorded")));
    QVERIFY(text.contains(QLatin1String("not loaded (the run failed)")));

    // Every run failed and none recorded a machine: the header says so.
    std::vector<BenchResult> none{failedRun(runs_[0], "a", why), failedRun(runs_[1], "b", why)};
    brisk::ui::write_report(none, path, brisk::ui::ReportFormat::Markdown);
    text = QString::fromUtf8(readAll(path));
    QVERIFY2(text.contains(QLatin1String("machine not recorded")), qPrintable(text.left(600)));
    QVERIFY(text.contains(QLatin1String("No plots: every run failed")));
    QVERIFY(!text.contains(QLatin1String("![")));  // no empty plots
    QVERIFY(!text.contains(QLatin1String("0 cores")) && !text.contains(QLatin1String("unknown CPU")));
  }

  // Failed runs are marked in every format: one line per reason near the
  // top naming the runs, "failed" in the summary and the throughput plot, a
  // note over the plots, status and error columns in the CSV; the JSON stays
  // the results themselves.
  void failedRunsAreMarkedInEveryFormat() {
    QTemporaryDir dir;
    const std::string cuda = "backend 'cuda' is unavailable: no NVIDIA driver installed (libcuda not found)";
    const std::string oom = "KV cache budget too small for one sequence";
    std::vector<BenchResult> runs{runs_[0], runs_[1], failedRun(runs_[2], "cuda · continuous", cuda),
                                  failedRun(runs_[3], "cuda · static", cuda),
                                  failedRun(runs_[3], "tiny kv", oom)};
    const QString cudaLine = QStringLiteral(
        "2 of 5 runs failed (cuda · continuous, cuda · static): backend 'cuda' is unavailable: no NVIDIA "
        "driver installed (libcuda not found)");
    const QString oomLine = QStringLiteral("1 of 5 runs failed (tiny kv): ") + QString::fromStdString(oom);

    const QString mdPath = dir.filePath(QStringLiteral("f.md"));
    brisk::ui::write_report(runs, mdPath, brisk::ui::ReportFormat::Markdown);
    const QString md = QString::fromUtf8(readAll(mdPath));
    const qsizetype summaryAt = md.indexOf(QLatin1String("## Summary"));
    QVERIFY2(md.indexOf(cudaLine) >= 0 && md.indexOf(cudaLine) < summaryAt, qPrintable(md.left(900)));
    QVERIFY(md.indexOf(oomLine) >= 0 && md.indexOf(oomLine) < summaryAt);
    QVERIFY(md.contains(QStringLiteral("| cuda · continuous (failed) |")));
    QVERIFY(md.contains(QLatin1String("| Generation tok/s |")));
    QVERIFY2(md.contains(
                 QRegularExpression(QStringLiteral("\\| Generation tok/s \\|[^\\n]*\\| failed \\| failed \\| "
                                                   "failed \\|\\n"))),
             qPrintable(md));
    QVERIFY(
        md.contains(QStringLiteral("Not in the plots: 3 runs that failed (cuda · continuous, cuda · static, "
                                   "tiny kv)")));

    const QString htmlPath = dir.filePath(QStringLiteral("f.html"));
    brisk::ui::write_report(runs, htmlPath, brisk::ui::ReportFormat::Html);
    const QString html = QString::fromUtf8(readAll(htmlPath));
    QVERIFY(html.contains(QLatin1String("class=\"failures\"")));
    QVERIFY(html.indexOf(cudaLine.toHtmlEscaped()) >= 0 &&
            html.indexOf(cudaLine.toHtmlEscaped()) < html.indexOf(QLatin1String("id=\"summary\"")));
    QVERIFY(html.contains(QStringLiteral("<td class=\"failed\" title=\"%1\">failed</td>")
                              .arg(QString::fromStdString(oom).toHtmlEscaped())));
    QVERIFY(html.contains(QLatin1String("<span class=\"d failed\">failed</span>")));

    const QString pdfPath = dir.filePath(QStringLiteral("f.pdf"));
    brisk::ui::write_report(runs, pdfPath, brisk::ui::ReportFormat::Pdf);
    QVERIFY(readAll(pdfPath).startsWith("%PDF-"));
    const QString pdftotext = QStandardPaths::findExecutable(QStringLiteral("pdftotext"));
    if (!pdftotext.isEmpty()) {
      QProcess p;
      p.start(pdftotext, {QStringLiteral("-f"), QStringLiteral("1"), QStringLiteral("-l"),
                          QStringLiteral("1"), pdfPath, QStringLiteral("-")});
      QVERIFY(p.waitForFinished(30000));
      const QString page1 = QString::fromUtf8(p.readAllStandardOutput()).simplified();
      QVERIFY2(page1.contains(QLatin1String("2 of 5 runs failed")), qPrintable(page1));
      QVERIFY(page1.contains(QLatin1String("1 of 5 runs failed (tiny kv)")));
      QVERIFY2(page1.count(QLatin1String("failed")) > 3 * 10, "the failed runs' figures read \"failed\"");
    }

    // The throughput plot marks the failed runs' slots.
    QCustomPlot plot;
    plot.resize(1100, 520);
    brisk::ui::draw_result_plot(&plot, ResultPlot::ThroughputBars, runs);
    int marks = 0;
    for (int i = 0; i < plot.itemCount(); ++i)
      if (auto* t = qobject_cast<QCPItemText*>(plot.item(i)); t && t->text() == QLatin1String("failed")) {
        ++marks;
        QVERIFY(t->position->key() >= 3 && t->position->key() <= 5);
      }
    QCOMPARE(marks, 3);
    const std::vector<BenchResult> allFailed{runs[2], runs[3]};
    brisk::ui::draw_result_plot(&plot, ResultPlot::ThroughputBars, allFailed);
    bool said = false;
    for (int i = 0; i < plot.itemCount(); ++i)
      if (auto* t = qobject_cast<QCPItemText*>(plot.item(i)))
        said = said || t->text() == QLatin1String("no data: every run failed");
    QVERIFY(said);

    const QString csvPath = dir.filePath(QStringLiteral("f.csv"));
    brisk::ui::write_report(runs, csvPath, brisk::ui::ReportFormat::Csv);
    const QStringList lines =
        QString::fromUtf8(readAll(csvPath)).split(QLatin1Char('\n'), Qt::SkipEmptyParts);
    QCOMPARE(lines.size(), 6);
    const QStringList header = csvFields(lines[0]);
    const qsizetype status = header.indexOf(QStringLiteral("status")),
                    error = header.indexOf(QStringLiteral("error"));
    QVERIFY(status > 0 && error > 0);
    QCOMPARE(csvFields(lines[1])[status], QStringLiteral("ok"));
    QCOMPARE(csvFields(lines[1])[error], QString());
    QCOMPARE(csvFields(lines[3])[status], QStringLiteral("failed"));
    QCOMPARE(csvFields(lines[3])[error], QString::fromStdString(cuda));
    QCOMPARE(csvFields(lines[5])[error], QString::fromStdString(oom));
    for (const QString& line : lines) QCOMPARE(csvFields(line).size(), header.size());

    const QString jsonPath = dir.filePath(QStringLiteral("f.json"));
    brisk::ui::write_report(runs, jsonPath, brisk::ui::ReportFormat::Json);
    QCOMPARE(readAll(jsonPath),
             QByteArray::fromStdString(brisk::results_to_json(runs) + "\n"));  // as bench --out writes it
  }

  // A failed baseline: no changes against it, and the note says why.
  void failedBaselineHasNoDeltas() {
    QTemporaryDir dir;
    std::vector<BenchResult> runs{failedRun(runs_[0], "cuda", "no device"), runs_[1], runs_[2]};
    const QString path = dir.filePath(QStringLiteral("b.md"));
    brisk::ui::write_report(runs, path, brisk::ui::ReportFormat::Markdown);
    const QString md = QString::fromUtf8(readAll(path));
    QVERIFY(md.contains(QLatin1String("The baseline run failed")));
    QVERIFY(!md.contains(QRegularExpression(QStringLiteral("\\([+-]\\d+\\.\\d%\\)"))));
  }

  void pdfIsMultiPageAndRenders() {
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("report.pdf"));
    brisk::ui::write_report(runs_, path, brisk::ui::ReportFormat::Pdf);
    const QByteArray pdf = readAll(path);
    QVERIFY(pdf.startsWith("%PDF-"));
    const int pages = int(pdf.count("/Type /Page\n") + pdf.count("/Type /Page ") + pdf.count("/Type /Page>") +
                          pdf.count("/Type /Page/"));
    QVERIFY2(pages >= 2, qPrintable(QStringLiteral("%1 pages").arg(pages)));
    const QString pdftoppm = QStandardPaths::findExecutable(QStringLiteral("pdftoppm"));
    if (pdftoppm.isEmpty())
      QSKIP("pdftoppm (poppler-utils) is not installed: cannot check that page 1 renders");
    QProcess p;
    p.setWorkingDirectory(dir.path());
    p.start(pdftoppm,
            {QStringLiteral("-png"), QStringLiteral("-r"), QStringLiteral("60"), QStringLiteral("-f"),
             QStringLiteral("1"), QStringLiteral("-l"), QStringLiteral("1"), path, QStringLiteral("page")});
    QVERIFY(p.waitForFinished(30000));
    QCOMPARE(p.exitCode(), 0);
    const QStringList pngs = QDir(dir.path()).entryList({QStringLiteral("page*.png")});
    QCOMPARE(pngs.size(), 1);
    QImage page(dir.filePath(pngs[0]));
    QVERIFY(!page.isNull());
    QVERIFY2(page.width() > page.height(), "A4 landscape");
    QVERIFY2(distinctColors(page) > 3, "page 1 has content");
  }

  void markdownHasPlotsBesideIt() {
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("report.md"));
    brisk::ui::write_report(runs_, path, brisk::ui::ReportFormat::Markdown);
    const QString md = QString::fromUtf8(readAll(path));
    QVERIFY(md.startsWith(QLatin1String("# ")));
    static const QRegularExpression image(QStringLiteral("!\\[[^\\]]*\\]\\(([^)]+)\\)"));
    int n = 0;
    for (auto it = image.globalMatch(md); it.hasNext(); ++n) {
      const QString rel = it.next().captured(1);
      QVERIFY2(!QFileInfo(rel).isAbsolute(), qPrintable(rel));
      QVERIFY2(!QImage(dir.filePath(rel)).isNull(), qPrintable(QStringLiteral("plot image missing: ") + rel));
    }
    QVERIFY2(n >= 6, qPrintable(QStringLiteral("%1 plots").arg(n)));
    QVERIFY(md.contains(QLatin1String("|---|")));
    const brisk::SummaryField& f = brisk::summary_fields().front();
    QVERIFY(md.contains(QString::fromStdString(brisk::format_field(f, f.value(runs_[3])))));
  }

  void csvParses() {
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("summary.csv"));
    brisk::ui::write_report(runs_, path, brisk::ui::ReportFormat::Csv);
    const QStringList lines = QString::fromUtf8(readAll(path)).split(QLatin1Char('\n'), Qt::SkipEmptyParts);
    QCOMPARE(lines.size(), int(runs_.size()) + 1);
    const int columns = 3 + int(brisk::summary_fields().size()) + 2;  // ..., status, error
    const QStringList header = csvFields(lines[0]);
    QCOMPARE(header.size(), columns);
    QCOMPARE(header[3], QString::fromStdString(brisk::summary_fields()[0].key));
    QCOMPARE(header.mid(columns - 2), (QStringList{QStringLiteral("status"), QStringLiteral("error")}));
    for (int i = 1; i < lines.size(); ++i) {
      const QStringList row = csvFields(lines[i]);
      QCOMPARE(row.size(), columns);
      bool ok = false;
      const double v = row[3].toDouble(&ok);
      QVERIFY(ok);
      QCOMPARE(v, runs_[size_t(i - 1)].summary.generation_tokens_per_s);
    }
  }

  void jsonReimportsToTheSameFigures() {
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("runs.json"));
    brisk::ui::write_report(runs_, path, brisk::ui::ReportFormat::Json);
    const auto back = brisk::results_from_json(readAll(path).toStdString(), path.toStdString());
    QCOMPARE(back.size(), runs_.size());
    for (size_t i = 0; i < runs_.size(); ++i) {
      QCOMPARE(QString::fromStdString(back[i].label), QString::fromStdString(runs_[i].label));
      QCOMPARE(back[i].requests.size(), runs_[i].requests.size());
      for (const brisk::SummaryField& f : brisk::summary_fields()) {
        const double a = f.value(runs_[i]), b = f.value(back[i]);
        QVERIFY2((std::isnan(a) && std::isnan(b)) || a == b || std::fabs(a - b) <= 1e-9 * std::fabs(a),
                 qPrintable(QStringLiteral("%1: %2 vs %3").arg(QString::fromStdString(f.key)).arg(a).arg(b)));
      }
    }
  }
};

QTEST_MAIN(TestReportWriter)
#include "test_report_writer.moc"
