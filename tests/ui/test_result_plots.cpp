// The comparison plots read right at the sizes reports use: rotated run
// labels end at their ticks and none is dropped at the widget's border; a
// sweep's repeats are shown, not silently averaged; more than ten runs stay
// distinguishable; slow gaps are judged per request; scatter markers fit
// their legend icons.
#include <qcustomplot.h>

#include <QFontMetrics>
#include <QImage>
#include <QSet>
#include <QTransform>
#include <QtTest>
#include <cmath>
#include <utility>

#include "brisk/bench_matrix.h"
#include "e2e/support/synthetic_results.h"
#include "ui/report/report_common.h"
#include "ui/report/result_plots.h"

using brisk::BenchResult;
using brisk::RequestMetrics;
using brisk::ui::ResultPlot;

namespace {

constexpr int kWidth = 900, kHeight = 500;

// `n` runs with long labels, as a rate sweep with repeats names them; or
// very long ones, as a matrix of several axes does.
std::vector<BenchResult> longLabelRuns(int n, bool veryLong = false) {
  std::vector<BenchResult> runs;
  for (int i = 0; i < n; ++i) {
    const int rate = 20 * (1 + i / 2);
    const std::string policy = i % 4 < 2 ? "static" : "continuous";
    const std::string label = veryLong ? "int8 weights · fp8 KV · " + policy + " · prefix cache"
                                       : std::to_string(rate) + " req/s · " + policy;
    runs.push_back(synthetic::makeRun(label + " r" + std::to_string(i % 2 + 1), {{"policy", policy}}, 0,
                                      1.0 + 0.05 * i, uint32_t(10 + i), 6));
  }
  return runs;
}

// Where QCustomPlot 2.1 puts an outside tick label of a bottom axis, as
// [left, right] in pixels (QCPAxisPainterPrivate::getTickLabelData,
// getTickLabelDrawOffset, placeTickLabel): the text's bounding box, rotated
// about its top-left corner, drawn at the tick's pixel plus an integer offset.
// A label whose span leaves the viewport is not drawn at all.
std::pair<double, double> tickLabelSpan(const QCPAxis* axis, double position, const QString& text) {
  QFont font = axis->tickLabelFont();
  if (font.pointSizeF() > 0) font.setPointSizeF(font.pointSizeF() + 0.05);
  QRect bounds = QFontMetrics(font).boundingRect(0, 0, 0, 0, Qt::TextDontClip | Qt::AlignHCenter, text);
  bounds.moveTopLeft(QPoint(0, 0));
  const double deg = axis->tickLabelRotation(), rad = deg / 180.0 * M_PI;
  QRect rotated = bounds;
  if (!qFuzzyIsNull(deg)) {
    QTransform t;
    t.rotate(deg);
    rotated = t.mapRect(bounds);
  }
  const double w = bounds.width(), h = bounds.height();
  int dx = 0;  // int, as QCustomPlot truncates it
  if (qFuzzyIsNull(deg))
    dx = int(-w / 2.0);
  else if (deg > 0)
    dx = int(std::sin(rad) * h / 2.0);
  else
    dx = int(-std::cos(-rad) * w - std::sin(-rad) * h / 2.0);
  const double left = position + dx + rotated.left();
  return {left, left + rotated.width()};
}

int countSlowGaps(QCustomPlot& plot) {
  int slow = 0;
  for (int i = 0; i < plot.itemCount(); ++i)
    if (auto* r = qobject_cast<QCPItemRect*>(plot.item(i)))
      if (r->brush().color() == QColor(0xe1, 0x57, 0x59)) ++slow;
  return slow;
}

// A request decoding from `start` with the given inter-token gaps (seconds).
RequestMetrics request(uint64_t id, double start, const std::vector<double>& gaps) {
  RequestMetrics q;
  q.request_id = id;
  q.arrival = start;
  q.first_scheduled = start;
  q.prefill_chunks.push_back({start, start + 0.002, 32});
  q.first_token = start + 0.002;
  double t = q.first_token;
  q.token_times.push_back(t);
  for (double g : gaps) q.token_times.push_back(t += g);
  q.finished = t + 0.0001;
  q.prompt_tokens = 32;
  q.output_tokens = int(q.token_times.size());
  return q;
}

QCPScatterStyle scatterOf(QCPAbstractPlottable* p) {
  if (auto* g = qobject_cast<QCPGraph*>(p)) return g->scatterStyle();
  if (auto* c = qobject_cast<QCPCurve*>(p)) return c->scatterStyle();
  return {};
}

// A rate sweep of two policies with two repeats per rate; the repeats differ.
std::vector<BenchResult> sweepWithRepeats() {
  std::vector<BenchResult> runs;
  uint32_t seed = 300;
  for (int rep = 0; rep < 2; ++rep)
    for (const char* policy : {"continuous", "static"})
      for (int rate : {2, 4, 8}) {
        const std::string rs = std::to_string(rate);
        runs.push_back(synthetic::makeRun(std::string(policy) + " · " + rs,
                                          {{"policy", policy}, {"rate", rs}}, rep,
                                          (rep ? 1.3 : 1.0) * (1.2 - 0.08 * rate), seed++, 8));
        runs.back().summary.generation_tokens_per_s *= rate / 2.0;
      }
  return runs;
}

}  // namespace

class TestResultPlots : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  // Rotated run labels end at their ticks (matplotlib's ha='right'), and
  // QCustomPlot drops none of them for touching the widget's border.
  void rotatedRunLabelsStayInside_data() {
    QTest::addColumn<int>("runs");
    QTest::addColumn<int>("plotKind");
    QTest::addColumn<int>("width");
    QTest::addColumn<bool>("veryLong");
    QTest::newRow("8 runs, throughput") << 8 << int(ResultPlot::ThroughputBars) << 600 << false;
    QTest::newRow("12 runs, throughput") << 12 << int(ResultPlot::ThroughputBars) << kWidth << false;
    QTest::newRow("12 runs, TTFT") << 12 << int(ResultPlot::TtftBars) << kWidth << false;
    QTest::newRow("12 runs, 1280 px (less tilted)") << 12 << int(ResultPlot::ThroughputBars) << 1280 << false;
    QTest::newRow("20 runs, throughput (steeper)")
        << 20 << int(ResultPlot::ThroughputBars) << kWidth << false;
    // The first labels reach far left of the axes: the left margin grows.
    QTest::newRow("4 runs, very long labels") << 4 << int(ResultPlot::ThroughputBars) << kWidth << true;
  }
  void rotatedRunLabelsStayInside() {
    QFETCH(int, runs);
    QFETCH(int, plotKind);
    QFETCH(int, width);
    QFETCH(bool, veryLong);
    const auto data = longLabelRuns(runs, veryLong);
    QCustomPlot plot;
    plot.resize(width, kHeight);
    const QRect viewport(0, 0, plot.width(), kHeight);
    brisk::ui::draw_result_plot(&plot, ResultPlot(plotKind), data);
    const QImage image = plot.toPixmap(viewport.width(), viewport.height()).toImage();
    QCPAxis* x = plot.xAxis;
    QCOMPARE(x->axisRect()->outerRect().width(), viewport.width());  // laid out at this size
    QVERIFY2(
        x->tickLabelRotation() < 0,
        qPrintable(QStringLiteral("rotation %1: labels end at their ticks").arg(x->tickLabelRotation())));
    const QVector<double> ticks = x->tickVector();
    const QVector<QString> labels = x->tickVectorLabels();
    QCOMPARE(ticks.size(), runs);
    for (int i = 0; i < ticks.size(); ++i) {
      const double at = x->coordToPixel(ticks[i]);
      const auto [left, right] = tickLabelSpan(x, at, labels[i]);
      QVERIFY2(left >= viewport.left() && right <= viewport.right(),
               qPrintable(QStringLiteral("label %1 '%2' spans %3..%4 px, outside 0..%5")
                              .arg(i + 1)
                              .arg(labels[i])
                              .arg(left)
                              .arg(right)
                              .arg(viewport.right())));
      // Its end sits at its tick: the label lies left of it, give or take
      // half a line's slant.
      QVERIFY2(right <= at + 12 && right >= at - 2,
               qPrintable(QStringLiteral("label %1 ends at %2, tick at %3").arg(i + 1).arg(right).arg(at)));
    }
    // And the first and last are really drawn: ink just below-left of their ticks.
    const int axisY = x->axisRect()->bottom();
    for (double tick : {ticks.front(), ticks.back()}) {
      const int tickX = int(x->coordToPixel(tick));
      int ink = 0;
      for (int py = axisY + 3; py < axisY + 26; ++py)
        for (int px = tickX - 12; px <= tickX + 2; ++px)
          if (qGray(image.pixel(px, py)) < 140) ++ink;
      QVERIFY2(ink > 3, qPrintable(QStringLiteral("the label of run %1 is drawn").arg(tick)));
    }
  }

  // Repeats of a swept value: the curve is their mean and each repeat is a
  // dot of the curve's colour; the legend says so.
  void sweepShowsEachRepeat() {
    const auto runs = sweepWithRepeats();
    QCustomPlot plot;
    plot.resize(kWidth, kHeight);
    brisk::ui::draw_result_plot(&plot, ResultPlot::ThroughputVsLatency, runs);
    plot.toPixmap(kWidth, kHeight);
    QStringList legendNames;
    for (int i = 0; i < plot.legend->itemCount(); ++i)
      legendNames << qobject_cast<QCPPlottableLegendItem*>(plot.legend->item(i))->plottable()->name();
    QCOMPARE(legendNames.size(), 2);  // one entry per configuration
    for (const QString& name : legendNames)
      QVERIFY2(name.contains(QLatin1String("mean of 2 repeats")), qPrintable(name));
    QVERIFY(legendNames[0].startsWith(QLatin1String("continuous")));
    for (const BenchResult& r : runs) {
      const double x = r.summary.e2e.p50 * 1e3, y = r.summary.generation_tokens_per_s;
      bool found = false;
      for (int i = 0; i < plot.plottableCount() && !found; ++i) {
        auto* g = qobject_cast<QCPGraph*>(plot.plottable(i));
        if (!g || g->lineStyle() != QCPGraph::lsNone || g->scatterStyle().isNone()) continue;
        for (auto it = g->data()->constBegin(); it != g->data()->constEnd(); ++it)
          if (it->key == x && it->value == y) found = true;
      }
      QVERIFY2(found, qPrintable(QStringLiteral("%1 r%2: (%3 ms, %4 tok/s) is drawn as a dot")
                                     .arg(QString::fromStdString(r.label))
                                     .arg(r.repeat + 1)
                                     .arg(x)
                                     .arg(y)));
    }
    // The curves still go through the means, one point per rate.
    auto* curve = qobject_cast<QCPCurve*>(plot.plottable(0));
    QVERIFY(curve);
    QCOMPARE(curve->data()->size(), 3);
    const double meanX = (runs[0].summary.e2e.p50 + runs[6].summary.e2e.p50) * 1e3 / 2;
    QVERIFY(std::fabs(curve->data()->at(0)->key - meanX) < 1e-9 * meanX);
    // Dots share their curve's colour.
    for (int i = 0; i < plot.plottableCount(); ++i)
      if (auto* g = qobject_cast<QCPGraph*>(plot.plottable(i))) {
        bool sameColour = false;
        for (int j = 0; j < plot.plottableCount(); ++j)
          if (auto* c = qobject_cast<QCPCurve*>(plot.plottable(j)))
            sameColour = sameColour || c->pen().color() == g->scatterStyle().brush().color();
        QVERIFY2(sameColour, "repeat dots have their curve's colour");
      }
  }

  // Past ten runs the palette repeats; the line style does not.
  void moreThanTenRunsStayDistinct() {
    QCOMPARE(brisk::ui::report_pen_style(0), Qt::SolidLine);
    QCOMPARE(brisk::ui::report_pen_style(9), Qt::SolidLine);
    QCOMPARE(brisk::ui::report_pen_style(10), Qt::DashLine);
    QCOMPARE(brisk::ui::report_pen_style(19), Qt::DashLine);
    QCOMPARE(brisk::ui::report_pen_style(20), Qt::DotLine);
    const auto runs = longLabelRuns(12);
    QCustomPlot plot;
    plot.resize(kWidth, kHeight);
    for (ResultPlot p : {ResultPlot::LatencyCdf, ResultPlot::KvOccupancy}) {
      brisk::ui::draw_result_plot(&plot, p, runs);
      QSet<QPair<QRgb, int>> looks;
      int graphs = 0;
      for (int i = 0; i < plot.plottableCount(); ++i)
        if (auto* g = qobject_cast<QCPGraph*>(plot.plottable(i))) {
          ++graphs;
          looks.insert({g->pen().color().rgb(), int(g->pen().style())});
        }
      QCOMPARE(graphs, 12);
      QVERIFY2(looks.size() == graphs, qPrintable(brisk::ui::result_plot_title(p) +
                                                  QStringLiteral(": two runs share colour and line")));
    }
    // Not a sweep: one marker per run, told apart by colour and shape.
    brisk::ui::draw_result_plot(&plot, ResultPlot::ThroughputVsLatency, runs);
    QSet<QPair<QRgb, int>> looks;
    for (int i = 0; i < plot.plottableCount(); ++i)
      looks.insert(
          {scatterOf(plot.plottable(i)).brush().color().rgb(), int(scatterOf(plot.plottable(i)).shape())});
    QCOMPARE(plot.plottableCount(), 12);
    QCOMPARE(int(looks.size()), 12);
  }

  // A batched request decodes slower than a lone one all along: that is its
  // pace, not a stall. Only a gap slow for its own request is marked.
  void slowGapsAreJudgedPerRequest() {
    BenchResult r;
    r.label = "batched";
    // Lone requests decode a token in 0.26 ms; the batched one in 0.85 ms.
    r.requests.push_back(request(1, 0.000, std::vector<double>(40, 0.00026)));
    r.requests.push_back(request(2, 0.001, std::vector<double>(40, 0.00026)));
    r.requests.push_back(request(3, 0.002, std::vector<double>(30, 0.00085)));
    QCustomPlot plot;
    plot.resize(kWidth, kHeight);
    brisk::ui::draw_result_plot(&plot, ResultPlot::RequestTimeline, {r});
    QCOMPARE(countSlowGaps(plot), 0);
    QStringList names;
    for (int i = 0; i < plot.legend->itemCount(); ++i)
      names << qobject_cast<QCPPlottableLegendItem*>(plot.legend->item(i))->plottable()->name();
    QVERIFY2(names.contains(QStringLiteral("slow gap (> 3× the request's median ITL)")),
             qPrintable(names.join(QStringLiteral(", "))));

    // One 5 ms stall among 0.3 ms gaps is marked, once.
    std::vector<double> gaps(30, 0.0003);
    gaps[12] = 0.005;
    r.requests.push_back(request(4, 0.003, gaps));
    brisk::ui::draw_result_plot(&plot, ResultPlot::RequestTimeline, {r});
    QCOMPARE(countSlowGaps(plot), 1);
  }

  // Scatter markers are drawn whole in the legend: QCustomPlot clips an icon
  // to its rectangle, so a 10 px disc in a 10 px-high icon loses its edges.
  void scatterMarkersFitTheirLegendIcons() {
    QCustomPlot plot;
    plot.resize(kWidth, kHeight);
    for (const auto& runs : {longLabelRuns(4), sweepWithRepeats(), synthetic::rateSweep()}) {
      brisk::ui::draw_result_plot(&plot, ResultPlot::ThroughputVsLatency, runs);
      QVERIFY(plot.legend && plot.legend->itemCount() > 0);
      const QSize icon = plot.legend->iconSize();
      int markers = 0;
      for (int i = 0; i < plot.legend->itemCount(); ++i) {
        auto* item = qobject_cast<QCPPlottableLegendItem*>(plot.legend->item(i));
        QVERIFY(item);
        const QCPScatterStyle s = scatterOf(item->plottable());
        if (s.isNone()) continue;
        ++markers;
        QVERIFY2(icon.width() >= s.size() + 2 && icon.height() >= s.size() + 2,
                 qPrintable(QStringLiteral("a %1 px marker in a %2x%3 icon")
                                .arg(s.size())
                                .arg(icon.width())
                                .arg(icon.height())));
      }
      QVERIFY(markers > 0);
    }
  }

  // The KV plot's value axis follows the data: a few percent of a large
  // cache was a flat line on 0-100%; a cache that fills keeps the whole range.
  void kvOccupancyAxisFollowsTheData() {
    QCustomPlot plot;
    plot.resize(kWidth, kHeight);
    std::vector<BenchResult> runs = longLabelRuns(2);
    double most = 0;
    for (BenchResult& r : runs)
      for (brisk::StepMetrics& s : r.steps) {
        s.kv_blocks_total = 2000;  // 64 blocks at most: 3.2%
        most = std::max(most, 100.0 * double(s.kv_blocks_used) / 2000);
      }
    QVERIFY(most > 0.5 && most < 5);
    brisk::ui::draw_result_plot(&plot, ResultPlot::KvOccupancy, runs);
    const QCPRange low = plot.axisRect()->axis(QCPAxis::atLeft)->range();
    QVERIFY2(low.upper >= most && low.upper <= 2.5 * most, qPrintable(QString::number(low.upper)));
    for (BenchResult& r : runs)
      for (brisk::StepMetrics& s : r.steps) s.kv_blocks_total = 64;  // up to full
    brisk::ui::draw_result_plot(&plot, ResultPlot::KvOccupancy, runs);
    QCOMPARE(plot.axisRect()->axis(QCPAxis::atLeft)->range().upper, 102.0);
  }
};

QTEST_MAIN(TestResultPlots)
#include "test_result_plots.moc"
