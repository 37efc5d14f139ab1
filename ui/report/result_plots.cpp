#include "report/result_plots.h"

#include <qcustomplot.h>

#include <QFileInfo>
#include <QFontInfo>
#include <QHash>
#include <QTransform>
#include <algorithm>
#include <cmath>
#include <functional>
#include <map>

#include "report/report_common.h"

namespace brisk::ui {

namespace {

const QColor kInk(0x33, 0x37, 0x3d), kAxis(0x8a, 0x8f, 0x98), kGrid(0xe2, 0xe4, 0xe8);
const QColor kQueued(0xba, 0xb0, 0xac), kPrefill(0x4e, 0x79, 0xa7), kDecode(0x59, 0xa1, 0x4f),
    kSlow(0xe1, 0x57, 0x59);
// A failed run (the Compare view's red).
const QColor kFailed(0xc0, 0x39, 0x2b);
// Slow inter-token gaps in the request timeline: this many times the
// request's own median ITL. Not the run's: a request decoding in a full batch
// has a slower pace all along than one decoding alone, and that is its pace,
// not a stall.
constexpr double kSlowGapFactor = 3.0;
// Beyond this many requests the timeline's rows would be thinner than a pixel.
constexpr int kMaxTimelineRows = 400;

// Fonts in pixels: QCustomPlot measures text with the screen's metrics but
// draws on its own buffer, whose DPI differs offscreen and when exported.
QFont pixelFont(int px, bool bold = false) {
  QFont f;
  f.setPixelSize(px);
  f.setBold(bold);
  return f;
}

// A round upper bound for a value axis: v rounded up to a fifth of its
// decade (1519 -> 1600, 283 -> 300), so the data fills most of the plot.
double niceCeil(double v) {
  if (!(v > 0) || !std::isfinite(v)) return 1;
  const double step = std::pow(10.0, std::floor(std::log10(v))) / 5;
  return std::ceil(v / step * (1 - 1e-12)) * step;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct Frame {
  QCPAxisRect* rect = nullptr;
  QCPAxis* x = nullptr;
  QCPAxis* y = nullptr;
  QCPLegend* legend = nullptr;
};

// Rebuilds the plot's layout from scratch (title, axis rect, legend below
// it) so the same widget can show one plot after another.
Frame resetPlot(QCustomPlot* plot, const QString& title, const QString& xLabel, const QString& yLabel) {
  plot->clearItems();
  plot->clearPlottables();
  for (QCPBarsGroup* g : plot->findChildren<QCPBarsGroup*>(QString(), Qt::FindDirectChildrenOnly)) delete g;
  plot->plotLayout()->clear();  // deletes the old axis rects and legend
  plot->setBackground(Qt::white);
  plot->setAutoAddPlottableToLegend(false);
  plot->setAntialiasedElements(QCP::aePlottables | QCP::aeItems);

  auto* heading = new QCPTextElement(plot, title, pixelFont(17, true));
  heading->setTextColor(kInk);
  heading->setMargins(QMargins(0, 6, 0, 2));
  plot->plotLayout()->addElement(0, 0, heading);

  Frame f;
  f.rect = new QCPAxisRect(plot);
  plot->plotLayout()->addElement(1, 0, f.rect);
  f.x = f.rect->axis(QCPAxis::atBottom);
  f.y = f.rect->axis(QCPAxis::atLeft);
  plot->xAxis = f.x;
  plot->yAxis = f.y;
  plot->xAxis2 = f.rect->axis(QCPAxis::atTop);
  plot->yAxis2 = f.rect->axis(QCPAxis::atRight);
  f.x->setLabel(xLabel);
  f.y->setLabel(yLabel);
  for (QCPAxis* a : {f.x, f.y}) {
    a->setLabelFont(pixelFont(13));
    a->setLabelColor(kInk);
    a->setTickLabelFont(pixelFont(12));
    a->setTickLabelColor(kInk);
    a->grid()->setPen(QPen(kGrid, 1));
    a->grid()->setZeroLinePen(QPen(kGrid, 1));
    a->setBasePen(QPen(kAxis, 1));
    a->setTickPen(QPen(kAxis, 1));
    a->setSubTickPen(QPen(kAxis, 1));
  }

  // The legend sits centred below the axes (never over the data): spacers
  // either side take the width the legend does not need (see finish()).
  auto* legendRow = new QCPLayoutGrid;
  plot->plotLayout()->addElement(2, 0, legendRow);
  legendRow->addElement(0, 0, new QCPLayoutElement(plot));
  f.legend = new QCPLegend;
  legendRow->addElement(0, 1, f.legend);
  legendRow->addElement(0, 2, new QCPLayoutElement(plot));
  legendRow->setColumnSpacing(0);
  f.legend->setLayer(QStringLiteral("legend"));
  f.legend->setFont(pixelFont(12));
  f.legend->setTextColor(kInk);
  f.legend->setBorderPen(Qt::NoPen);
  f.legend->setBrush(Qt::NoBrush);
  f.legend->setIconSize(16, 10);
  f.legend->setFillOrder(QCPLayoutGrid::foColumnsFirst);
  f.legend->setWrap(4);
  f.legend->setColumnSpacing(18);
  f.legend->setRowSpacing(2);
  f.legend->setMargins(QMargins(8, 2, 8, 6));
  plot->legend = f.legend;
  plot->plotLayout()->setRowStretchFactor(0, 0.001);
  plot->plotLayout()->setRowStretchFactor(2, 0.001);
  plot->plotLayout()->setRowSpacing(0);
  return f;
}

QCPScatterStyle scatterStyleOf(const QCPAbstractPlottable* p) {
  if (auto* g = qobject_cast<const QCPGraph*>(p)) return g->scatterStyle();
  if (auto* c = qobject_cast<const QCPCurve*>(p)) return c->scatterStyle();
  return {};
}

// Drops an empty legend (it would leave a blank band) and centres a "no data"
// note when nothing was drawn.
void finish(QCustomPlot* plot, Frame& f, bool hasData, const QString& why = {}) {
  if (f.legend->itemCount() == 0) {
    plot->plotLayout()->remove(plot->plotLayout()->element(2, 0));  // deletes the legend, nulls plot->legend
    plot->plotLayout()->simplify();
    f.legend = nullptr;
  } else {
    f.legend->setWrap(f.legend->itemCount() <= 5 ? 5 : 4);
    f.legend->setFillOrder(QCPLayoutGrid::foColumnsFirst, true);  // re-flow to the new wrap
    // QCustomPlot clips a legend icon to its rectangle: make it hold the
    // largest scatter marker whole (its size, its pen, a pixel either side).
    QSize icon = f.legend->iconSize();
    for (int i = 0; i < f.legend->itemCount(); ++i)
      if (auto* item = qobject_cast<QCPPlottableLegendItem*>(f.legend->item(i))) {
        const QCPScatterStyle s = scatterStyleOf(item->plottable());
        if (s.isNone()) continue;
        const int need = int(std::ceil(s.size() + std::max(1.0, s.pen().widthF()))) + 2;
        icon = icon.expandedTo(QSize(need, need));
      }
    f.legend->setIconSize(icon);
    f.legend->setSizeConstraintRect(QCPLayoutElement::scrOuterRect);
    f.legend->setMaximumSize(f.legend->minimumOuterSizeHint());
  }
  if (!hasData) {
    auto* note = new QCPItemText(plot);
    note->setClipToAxisRect(false);
    note->position->setType(QCPItemPosition::ptAxisRectRatio);
    note->position->setAxisRect(f.rect);
    note->position->setCoords(0.5, 0.5);
    note->setPositionAlignment(Qt::AlignCenter);
    note->setText(why.isEmpty() ? QObject::tr("no data") : QObject::tr("no data: %1").arg(why));
    note->setFont(pixelFont(15));
    note->setColor(kAxis);
    f.x->setRange(0, 1);
    f.y->setRange(0, 1);
  }
}

// Why a plot of these runs may have nothing to draw.
QString noDataReason(const std::vector<BenchResult>& runs) {
  const bool allFailed = !runs.empty() && std::all_of(runs.begin(), runs.end(),
                                                      [](const BenchResult& r) { return !r.error.empty(); });
  return allFailed ? (runs.size() == 1 ? QObject::tr("the run failed") : QObject::tr("every run failed"))
                   : QString();
}

void addToLegend(QCPAbstractPlottable* p, Frame& f) { p->addToLegend(f.legend); }

// Run i's line: its colour, and past ten runs (where the palette repeats) a
// dashed or dotted style. Flat caps keep a dotted line's gaps open.
QPen runPen(int i, double width) {
  QPen pen(report_color(i), width, report_pen_style(i));
  if (pen.style() != Qt::SolidLine) pen.setCapStyle(Qt::FlatCap);
  return pen;
}

// Run i's marker shape, for the same reason.
QCPScatterStyle::ScatterShape runShape(int i) {
  const int band = std::max(0, i) / 10;
  return band == 0   ? QCPScatterStyle::ssDisc
         : band == 1 ? QCPScatterStyle::ssSquare
                     : QCPScatterStyle::ssDiamond;
}

// How far a bottom tick label reaches left of its tick, in pixels, by
// QCustomPlot's rule (QCPAxisPainterPrivate::getTickLabelData and
// getTickLabelDrawOffset): the text's bounding box, rotated about its
// top-left corner, drawn at an offset truncated to whole pixels.
double tickLabelLeftReach(const QFont& font, const QString& text, double degrees) {
  QRect box = QFontMetrics(font).boundingRect(0, 0, 0, 0, Qt::TextDontClip | Qt::AlignHCenter, text);
  box.moveTopLeft(QPoint(0, 0));
  const double w = box.width(), h = box.height(), rad = std::abs(degrees) * M_PI / 180;
  if (degrees == 0) return int(w / 2);
  QTransform t;
  t.rotate(degrees);
  const int offset =
      degrees < 0 ? int(-std::cos(rad) * w - std::sin(rad) * h / 2) : int(std::sin(rad) * h / 2);
  return -(offset + t.mapRect(box).left());
}

// Categories 1..n on the x axis labelled with the run names, tilted when
// they would not fit side by side. A tilted label ends at its tick (turned
// counter-clockwise, as matplotlib's ha='right'): turned the other way each
// one started at its tick and ran on under the next group, and the last ran
// past the widget's right border, where QCustomPlot drops a tick label
// rather than clip it. Ending at their ticks, the first labels reach left of
// the axis rect instead, so its left margin is made wide enough for them.
void runTicks(QCustomPlot* plot, Frame& f, const QStringList& labels) {
  QSharedPointer<QCPAxisTickerText> ticker(new QCPAxisTickerText);
  const QFont font = pixelFont(12);
  int longest = 0;
  for (int i = 0; i < labels.size(); ++i) {
    ticker->addTick(i + 1, labels[i]);
    longest = std::max(longest, int(QFontMetrics(font).horizontalAdvance(labels[i])));
  }
  f.x->setTicker(ticker);
  f.x->setSubTicks(false);
  f.x->setTickLength(0, 4);
  f.x->grid()->setVisible(false);
  const double lower = 0.4, span = labels.size() + 0.2;
  f.x->setRange(lower, lower + span);
  const int width = plot->width() > 200 ? plot->width() : 1000;
  const double slot = 0.85 * width / std::max<qsizetype>(1, labels.size());
  const double rotation = longest <= slot ? 0 : longest * 0.5 > slot ? -60 : -30;
  f.x->setTickLabelRotation(rotation);

  // Tick i sits at L + a (width - L - R) for a left margin L and right margin
  // R, a = (i + 1 - lower) / span; it must lie `reach` (plus a pixel or two
  // of rounding) right of the widget's left edge. Solved for L, per label.
  // (On the right a tilted label reaches half a line's slant past its tick,
  // an upright one half a slot: both stay well inside the last group.)
  const QMargins margins = f.rect->minimumMargins();
  double left = margins.left();
  for (int i = 0; i < labels.size(); ++i) {
    const double a = (i + 1 - lower) / span, reach = tickLabelLeftReach(font, labels[i], rotation) + 2;
    left = std::max(left, (reach - a * (width - margins.right())) / (1 - a));
  }
  f.rect->setMinimumMargins(QMargins(int(std::ceil(left)), margins.top(), margins.right(), margins.bottom()));
}

void valueRange(Frame& f, double maxValue) { f.y->setRange(0, niceCeil(maxValue * 1.08)); }

// Grouped bars: one series per name in `series`, one group per run.
bool drawGroupedBars(QCustomPlot* plot, Frame& f, const std::vector<BenchResult>& runs,
                     const QStringList& series, const std::vector<QColor>& colors,
                     const std::function<double(const BenchResult&, int)>& value) {
  const QStringList labels = run_labels(runs);
  auto* group = new QCPBarsGroup(plot);
  group->setSpacingType(QCPBarsGroup::stAbsolute);
  group->setSpacing(2);
  const double width = 0.8 / std::max<qsizetype>(1, series.size());
  double maxValue = 0;
  bool any = false;
  for (int s = 0; s < series.size(); ++s) {
    auto* bars = new QCPBars(f.x, f.y);
    bars->setName(series[s]);
    bars->setWidth(width);
    bars->setBrush(colors[s]);
    bars->setPen(QPen(colors[s].darker(115), 1));
    bars->setBarsGroup(group);
    QVector<double> keys, values;
    for (size_t i = 0; i < runs.size(); ++i) {
      const double v = runs[i].error.empty() ? value(runs[i], s) : NAN;
      if (!std::isfinite(v)) continue;
      keys << double(i + 1);
      values << v;
      maxValue = std::max(maxValue, v);
      any = any || v > 0;
    }
    bars->setData(keys, values, true);
    addToLegend(bars, f);
  }
  runTicks(plot, f, labels);
  valueRange(f, maxValue);
  // A failed run's slot says so, rather than stand empty: upright when the
  // slots are wide enough for the word, else turned along the slot.
  const int plotWidth = plot->width() > 200 ? plot->width() : 1000;
  const QFont font = pixelFont(12, true);
  const QString word = QObject::tr("failed");
  const bool turn = QFontMetrics(font).horizontalAdvance(word) + 6 >
                    0.85 * plotWidth / std::max<qsizetype>(1, labels.size());
  // (Every run failed: the plot's "no data" note says so instead.)
  const bool anyRan =
      std::any_of(runs.begin(), runs.end(), [](const BenchResult& r) { return r.error.empty(); });
  for (size_t i = 0; i < runs.size() && anyRan; ++i) {
    if (runs[i].error.empty()) continue;
    auto* mark = new QCPItemText(plot);
    mark->setClipToAxisRect(true);
    mark->position->setAxes(f.x, f.y);
    mark->position->setTypeX(QCPItemPosition::ptPlotCoords);
    mark->position->setTypeY(QCPItemPosition::ptAxisRectRatio);
    mark->position->setAxisRect(f.rect);
    mark->position->setCoords(double(i + 1), 0.97);
    mark->setPositionAlignment(turn ? (Qt::AlignLeft | Qt::AlignVCenter)
                                    : (Qt::AlignHCenter | Qt::AlignBottom));
    if (turn) mark->setRotation(-90);
    mark->setText(word);
    mark->setFont(font);
    mark->setColor(kFailed);
    mark->setSelectable(false);
  }
  return any;
}

// "rate=4" / "max_concurrency=8" keys removed: what makes a curve.
QString configurationKey(const BenchResult& r, double* swept, QString* sweptName) {
  QStringList parts;
  for (const auto& [k, v] : r.settings) {
    if (is_sweep_key(k)) {
      if (swept) {
        *swept = std::atof(v.c_str());
        // No cap (max_concurrency 0) is the far end of a concurrency sweep.
        if (k == "max_concurrency" && *swept == 0) *swept = HUGE_VAL;
      }
      if (sweptName) *sweptName = QString::fromStdString(k);
    } else {
      parts << QString::fromStdString(v);
    }
  }
  return parts.join(QStringLiteral(" · "));
}

void drawThroughputVsLatency(QCustomPlot* plot, Frame& f, const std::vector<BenchResult>& runs) {
  const QStringList labels = run_labels(runs);
  bool sweep = false;
  for (const BenchResult& r : runs)
    for (const auto& kv : r.settings) sweep = sweep || is_sweep_key(kv.first);
  double maxX = 0, maxY = 0;
  bool any = false;
  auto point = [](const BenchResult& r, double* x, double* y) {
    if (!r.error.empty() || r.summary.e2e.count == 0) return false;
    *x = r.summary.e2e.p50 * 1e3;
    *y = r.summary.generation_tokens_per_s;
    return std::isfinite(*x) && std::isfinite(*y);
  };
  if (sweep) {
    // One curve per configuration through the mean of each swept value's
    // repeats. The mean matches no run, so each repeat is drawn too, as a
    // dot of the curve's colour, and the legend says what the curve is.
    std::vector<QString> order;
    std::map<QString, std::map<double, std::vector<std::pair<double, double>>>> curves;
    QString sweptName;
    for (const BenchResult& r : runs) {
      double swept = 0, x, y;
      const QString key = configurationKey(r, &swept, &sweptName);
      if (!point(r, &x, &y)) continue;
      if (!curves.count(key)) order.push_back(key);
      curves[key][swept].push_back({x, y});
    }
    for (size_t c = 0; c < order.size(); ++c) {
      const QColor color = report_color(int(c));
      size_t fewest = SIZE_MAX, most = 0;
      for (const auto& [swept, points] : curves[order[c]]) {
        fewest = std::min(fewest, points.size());
        most = std::max(most, points.size());
      }
      QString name = order[c].isEmpty() ? QObject::tr("all runs") : order[c];
      if (most > 1)
        name += (fewest == most
                     ? QObject::tr(" (mean of %1 repeats; dots: each repeat)").arg(most)
                     : QObject::tr(" (mean of %1–%2 repeats; dots: each repeat)").arg(fewest).arg(most));
      auto* curve = new QCPCurve(f.x, f.y);
      curve->setName(name);
      curve->setPen(runPen(int(c), 2));
      curve->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, color, Qt::white, 8));
      QCPGraph* dots = nullptr;
      if (most > 1) {
        dots = new QCPGraph(f.x, f.y);
        dots->setName(name);
        dots->setLineStyle(QCPGraph::lsNone);
        dots->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, color, color, 5));
      }
      QVector<double> t, xs, ys;
      for (const auto& [swept, points] : curves[order[c]]) {
        double x = 0, y = 0;
        for (const auto& [px, py] : points) {
          x += px;
          y += py;
          if (dots) dots->addData(px, py);
          maxX = std::max(maxX, px);
          maxY = std::max(maxY, py);
        }
        x /= double(points.size());
        y /= double(points.size());
        t << t.size();
        xs << x;
        ys << y;
        maxX = std::max(maxX, x);
        maxY = std::max(maxY, y);
        any = true;
        auto* tag = new QCPItemText(plot);
        tag->position->setCoords(x, y);
        tag->setPositionAlignment(Qt::AlignLeft | Qt::AlignBottom);
        tag->setPadding(QMargins(5, 0, 0, 3));
        tag->setFont(pixelFont(11));
        tag->setColor(color.darker(130));
        tag->setText(sweptName == QLatin1String("rate") ? QObject::tr("%1/s").arg(swept)
                     : std::isinf(swept)                ? QObject::tr("no cap")
                                                        : QStringLiteral("%1").arg(swept));
      }
      curve->setData(t, xs, ys, true);
      addToLegend(curve, f);
    }
  } else {
    for (size_t i = 0; i < runs.size(); ++i) {
      double x, y;
      if (!point(runs[i], &x, &y)) continue;
      const QColor color = report_color(int(i));
      auto* g = new QCPGraph(f.x, f.y);
      g->setName(labels[int(i)]);
      g->setLineStyle(QCPGraph::lsNone);
      g->setScatterStyle(QCPScatterStyle(runShape(int(i)), color, color, 10));
      g->setData({x}, {y});
      addToLegend(g, f);
      maxX = std::max(maxX, x);
      maxY = std::max(maxY, y);
      any = true;
    }
  }
  f.x->setRange(0, niceCeil(maxX * 1.1));
  f.y->setRange(0, niceCeil(maxY * 1.1));
  finish(plot, f, any, noDataReason(runs));
}

void drawLatencyCdf(QCustomPlot* plot, Frame& f, const std::vector<BenchResult>& runs) {
  const QStringList labels = run_labels(runs);
  double maxX = 0;
  bool any = false;
  for (size_t i = 0; i < runs.size(); ++i) {
    std::vector<double> e2e;
    for (const RequestMetrics& q : runs[i].requests)
      if (q.finished >= 0) e2e.push_back(q.e2e() * 1e3);
    if (e2e.empty()) continue;
    std::sort(e2e.begin(), e2e.end());
    QVector<double> xs{e2e.front()}, ys{0};
    for (size_t k = 0; k < e2e.size(); ++k) {
      xs << e2e[k];
      ys << 100.0 * double(k + 1) / double(e2e.size());
    }
    auto* g = new QCPGraph(f.x, f.y);
    g->setName(labels[int(i)]);
    g->setLineStyle(QCPGraph::lsStepLeft);
    g->setPen(runPen(int(i), 2));
    g->setData(xs, ys, true);
    addToLegend(g, f);
    maxX = std::max(maxX, e2e.back());
    any = true;
  }
  f.x->setRange(0, niceCeil(maxX * 1.03));
  f.y->setRange(0, 102);
  QSharedPointer<QCPAxisTickerFixed> pct(new QCPAxisTickerFixed);
  pct->setTickStep(25);
  pct->setScaleStrategy(QCPAxisTickerFixed::ssNone);
  f.y->setTicker(pct);
  finish(plot, f, any, noDataReason(runs));
}

void drawKvOccupancy(QCustomPlot* plot, Frame& f, const std::vector<BenchResult>& runs) {
  const QStringList labels = run_labels(runs);
  double maxX = 0, maxY = 0;
  bool any = false;
  for (size_t i = 0; i < runs.size(); ++i) {
    const BenchResult& r = runs[i];
    if (r.steps.empty()) continue;
    double t0 = r.steps.front().start;
    for (const RequestMetrics& q : r.requests) t0 = std::min(t0, q.arrival);
    QVector<double> xs, ys;
    for (const StepMetrics& s : r.steps) {
      if (s.kv_blocks_total <= 0) continue;
      xs << s.start - t0;
      ys << 100.0 * double(s.kv_blocks_used) / double(s.kv_blocks_total);
    }
    if (xs.isEmpty()) continue;
    const StepMetrics& last = r.steps.back();
    if (last.kv_blocks_total > 0) {  // hold the last value to the end of its step
      xs << last.start + last.duration - t0;
      ys << ys.back();
    }
    auto* g = new QCPGraph(f.x, f.y);
    g->setName(labels[int(i)]);
    g->setLineStyle(QCPGraph::lsStepLeft);
    g->setPen(runPen(int(i), 1.6));
    g->setData(xs, ys, true);
    addToLegend(g, f);
    maxX = std::max(maxX, xs.back());
    maxY = std::max(maxY, *std::max_element(ys.begin(), ys.end()));
    any = true;
  }
  f.x->setRange(0, niceCeil(maxX * 1.02));
  // Scaled to the data: runs at 0.5-3% of a large cache drew flat lines on a
  // 0-100% axis. A cache that fills keeps the whole range, 25% apart.
  if (maxY > 50) {
    f.y->setRange(0, 102);
    QSharedPointer<QCPAxisTickerFixed> pct(new QCPAxisTickerFixed);
    pct->setTickStep(25);
    pct->setScaleStrategy(QCPAxisTickerFixed::ssNone);
    f.y->setTicker(pct);
  } else {
    valueRange(f, std::max(maxY, 1.0));
  }
  finish(plot, f, any, noDataReason(runs));
}

// A filled rectangle in plot coordinates spanning [x0, x1] on row `row`.
void segment(QCustomPlot* plot, const Frame& f, double x0, double x1, double row, double half,
             const QColor& color) {
  auto* rect = new QCPItemRect(plot);
  rect->setClipAxisRect(f.rect);
  rect->topLeft->setAxes(f.x, f.y);
  rect->bottomRight->setAxes(f.x, f.y);
  rect->topLeft->setCoords(x0, row - half);
  rect->bottomRight->setCoords(x1, row + half);
  rect->setBrush(color);
  // A cosmetic pen in the fill colour keeps millisecond segments at least a
  // pixel wide in a run that lasts seconds.
  rect->setPen(QPen(color, 1));
  rect->setAntialiased(false);
}

void drawTimeline(QCustomPlot* plot, Frame& f, const std::vector<BenchResult>& runs, int focus) {
  // Legend entries for the four colours: empty bars carry the swatches.
  const std::pair<QString, QColor> keys[] = {
      {QObject::tr("queued"), kQueued},
      {QObject::tr("prefill chunk"), kPrefill},
      {QObject::tr("decode"), kDecode},
      {QObject::tr("slow gap (> %1× the request's median ITL)").arg(kSlowGapFactor), kSlow}};
  bool any = false;
  if (!runs.empty()) {
    focus = std::clamp(focus, 0, int(runs.size()) - 1);
    const BenchResult& r = runs[focus];
    std::vector<const RequestMetrics*> reqs;
    for (const RequestMetrics& q : r.requests) reqs.push_back(&q);
    std::stable_sort(reqs.begin(), reqs.end(), [](const RequestMetrics* a, const RequestMetrics* b) {
      return a->arrival < b->arrival;
    });
    if (int(reqs.size()) > kMaxTimelineRows) reqs.resize(kMaxTimelineRows);
    double t0 = reqs.empty() ? 0 : reqs.front()->arrival;
    if (!r.steps.empty()) t0 = std::min(t0, r.steps.front().start);
    const double half = reqs.size() > 60 ? 0.5 : 0.36;
    double maxX = 0;
    for (size_t i = 0; i < reqs.size(); ++i) {
      const RequestMetrics& q = *reqs[i];
      const double row = double(i + 1);
      double end = q.finished >= 0 ? q.finished : (q.token_times.empty() ? -1 : q.token_times.back());
      if (q.first_scheduled > q.arrival)
        segment(plot, f, q.arrival - t0, q.first_scheduled - t0, row, half, kQueued);
      for (const RequestMetrics::Chunk& c : q.prefill_chunks)
        segment(plot, f, c.start - t0, c.end - t0, row, half, kPrefill);
      if (q.first_token >= 0 && end > q.first_token)
        segment(plot, f, q.first_token - t0, end - t0, row, half, kDecode);
      std::vector<double> gaps;
      for (size_t k = 1; k < q.token_times.size(); ++k)
        gaps.push_back(q.token_times[k] - q.token_times[k - 1]);
      const double slow = kSlowGapFactor * median(gaps);
      if (slow > 0)
        for (size_t k = 1; k < q.token_times.size(); ++k)
          if (q.token_times[k] - q.token_times[k - 1] > slow)
            segment(plot, f, q.token_times[k - 1] - t0, q.token_times[k] - t0, row, half, kSlow);
      maxX = std::max({maxX, end - t0, q.first_scheduled - t0});
      for (const RequestMetrics::Chunk& c : q.prefill_chunks) maxX = std::max(maxX, c.end - t0);
      any = true;
    }
    const int rows = int(reqs.size());
    f.y->setRangeReversed(true);
    f.y->setRange(0.4, std::max(1, rows) + 0.6);
    QSharedPointer<QCPAxisTickerFixed> ticker(new QCPAxisTickerFixed);
    ticker->setTickStep(1);
    ticker->setScaleStrategy(QCPAxisTickerFixed::ssMultiples);
    ticker->setTickCount(std::clamp(rows, 1, 12));
    f.y->setTicker(ticker);
    f.y->setSubTicks(false);
    f.y->grid()->setVisible(false);
    f.x->setRange(0, niceCeil(maxX * 1.02));
    if (any) {
      QString heading =
          result_plot_title(ResultPlot::RequestTimeline) + QStringLiteral(" — ") + run_labels(runs)[focus];
      if (int(r.requests.size()) > rows)
        heading += QObject::tr(" (first %1 of %2 requests)").arg(rows).arg(r.requests.size());
      if (auto* title = qobject_cast<QCPTextElement*>(plot->plotLayout()->element(0, 0)))
        title->setText(heading);
    }
  }
  if (any)
    for (const auto& [name, color] : keys) {
      auto* swatch = new QCPBars(f.x, f.y);
      swatch->setName(name);
      swatch->setBrush(color);
      swatch->setPen(QPen(color, 1));
      addToLegend(swatch, f);
    }
  const bool focusFailed =
      !runs.empty() && !runs[size_t(std::clamp(focus, 0, int(runs.size()) - 1))].error.empty();
  finish(plot, f, any, focusFailed ? QObject::tr("the run failed") : QString());
}

}  // namespace

QString result_plot_title(ResultPlot p) {
  switch (p) {
    case ResultPlot::ThroughputBars:
      return QObject::tr("Throughput per run");
    case ResultPlot::LatencyCdf:
      return QObject::tr("End-to-end latency (CDF)");
    case ResultPlot::TtftBars:
      return QObject::tr("Time to first token (TTFT) percentiles");
    case ResultPlot::TpotBars:
      return QObject::tr("Time per output token (TPOT) percentiles");
    case ResultPlot::ThroughputVsLatency:
      return QObject::tr("Throughput vs latency");
    case ResultPlot::KvOccupancy:
      return QObject::tr("KV cache occupancy over time");
    case ResultPlot::RequestTimeline:
      return QObject::tr("Request timeline");
  }
  return {};
}

void draw_result_plot(QCustomPlot* plot, ResultPlot p, const std::vector<BenchResult>& runs, int focus) {
  const QString title = result_plot_title(p);
  switch (p) {
    case ResultPlot::ThroughputBars: {
      Frame f = resetPlot(plot, title, QObject::tr("run"), QObject::tr("throughput (tokens/s)"));
      const bool any =
          drawGroupedBars(plot, f, runs, {QObject::tr("generation tok/s"), QObject::tr("prompt tok/s")},
                          {report_color(0), report_color(1)}, [](const BenchResult& r, int s) {
                            return s == 0 ? r.summary.generation_tokens_per_s : r.summary.prompt_tokens_per_s;
                          });
      finish(plot, f, any, noDataReason(runs));
      break;
    }
    case ResultPlot::TtftBars:
    case ResultPlot::TpotBars: {
      const bool ttft = p == ResultPlot::TtftBars;
      Frame f = resetPlot(plot, title, QObject::tr("run"),
                          ttft ? QObject::tr("TTFT (ms)") : QObject::tr("TPOT (ms)"));
      const bool any = drawGroupedBars(
          plot, f, runs, {QStringLiteral("p50"), QStringLiteral("p90"), QStringLiteral("p99")},
          {report_color(0), report_color(1), report_color(2)}, [ttft](const BenchResult& r, int s) {
            const Percentiles& q = ttft ? r.summary.ttft : r.summary.tpot;
            if (q.count == 0) return double(NAN);
            return 1e3 * (s == 0 ? q.p50 : s == 1 ? q.p90 : q.p99);
          });
      finish(plot, f, any, noDataReason(runs));
      break;
    }
    case ResultPlot::LatencyCdf: {
      Frame f = resetPlot(plot, title, QObject::tr("end-to-end latency (ms)"),
                          QObject::tr("requests finished (%)"));
      drawLatencyCdf(plot, f, runs);
      break;
    }
    case ResultPlot::ThroughputVsLatency: {
      Frame f = resetPlot(plot, title, QObject::tr("p50 end-to-end latency (ms)"),
                          QObject::tr("generation throughput (tokens/s)"));
      drawThroughputVsLatency(plot, f, runs);
      break;
    }
    case ResultPlot::KvOccupancy: {
      Frame f =
          resetPlot(plot, title, QObject::tr("time since start (s)"), QObject::tr("KV blocks used (%)"));
      drawKvOccupancy(plot, f, runs);
      break;
    }
    case ResultPlot::RequestTimeline: {
      Frame f =
          resetPlot(plot, title, QObject::tr("time since start (s)"), QObject::tr("request (by arrival, #)"));
      drawTimeline(plot, f, runs, focus);
      break;
    }
  }
  plot->replot(QCustomPlot::rpQueuedReplot);
}

// ---- shared with the report writer ----

QStringList run_labels(const std::vector<BenchResult>& runs) {
  QStringList base;
  for (size_t i = 0; i < runs.size(); ++i)
    base << (runs[i].label.empty() ? QObject::tr("run %1").arg(i + 1)
                                   : QString::fromStdString(runs[i].label));
  // Files compared side by side often share a label ("base", a single
  // bench's): where runs of one label ran different models, the model
  // tells them apart ("stories260K · base"), not a number.
  auto modelName = [](const BenchResult& r) {
    const std::string& m = r.model.path.empty() ? r.config.model : r.model.path;
    const QString stem = QFileInfo(QString::fromStdString(m)).completeBaseName();
    return stem.isEmpty() ? QString::fromStdString(m) : stem;
  };
  const QStringList plain = base;
  for (size_t i = 0; i < runs.size(); ++i)
    for (size_t j = 0; j < runs.size(); ++j)
      if (plain[int(j)] == plain[int(i)] && modelName(runs[j]) != modelName(runs[i])) {
        base[int(i)] = modelName(runs[i]) + QStringLiteral(" · ") + plain[int(i)];
        break;
      }
  QStringList out;
  // Repeats of one label are numbered r1, r2...; runs that are not repeats
  // of each other (the same repeat number) are numbered (1), (2) below.
  for (size_t i = 0; i < runs.size(); ++i) {
    bool repeats = false;
    for (size_t j = 0; j < runs.size(); ++j)
      repeats = repeats || (base[int(j)] == base[int(i)] && runs[j].repeat != runs[i].repeat);
    out << (repeats ? QStringLiteral("%1 r%2").arg(base[int(i)]).arg(runs[i].repeat + 1) : base[int(i)]);
  }
  const QStringList named = out;
  for (int i = 0; i < out.size(); ++i)
    if (named.count(named[i]) > 1) out[i] += QStringLiteral(" (%1)").arg(i + 1);
  return out;
}

QColor report_color(int i) {
  static const QColor kPalette[] = {
      {0x4e, 0x79, 0xa7}, {0xf2, 0x8e, 0x2b}, {0xe1, 0x57, 0x59}, {0x76, 0xb7, 0xb2}, {0x59, 0xa1, 0x4f},
      {0xed, 0xc9, 0x48}, {0xb0, 0x7a, 0xa1}, {0xff, 0x9d, 0xa7}, {0x9c, 0x75, 0x5f}, {0xba, 0xb0, 0xac}};
  return kPalette[((i % 10) + 10) % 10];
}

Qt::PenStyle report_pen_style(int i) {
  const int band = std::max(0, i) / 10;
  return band == 0 ? Qt::SolidLine : band == 1 ? Qt::DashLine : Qt::DotLine;
}

bool is_sweep_key(const std::string& key) { return key == "rate" || key == "max_concurrency"; }

}  // namespace brisk::ui
