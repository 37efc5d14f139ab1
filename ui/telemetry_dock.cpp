#include "telemetry_dock.h"

#include <qcustomplot.h>

#include <QAction>
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QMessageBox>
#include <QSplitter>
#include <QStyle>
#include <QSvgGenerator>
#include <QToolBar>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>

#include "engine_controller.h"
#include "format.h"
#include "kv_block_map.h"

namespace {
enum Style { Line, Steps, Scatter, Impulse, Filled };

const QColor kBlue(0x4e, 0x79, 0xa7), kOrange(0xf2, 0x8e, 0x2b), kRed(0xe1, 0x57, 0x59),
    kGreen(0x59, 0xa1, 0x4f), kTeal(0x49, 0x98, 0x94), kGrey(0x8a, 0x8f, 0x98), kPurple(0xb0, 0x7a, 0xa1);

// A round upper bound for a value axis: 1, 2, 2.5, 5 × 10^k above v.
double niceCeil(double v) {
  if (v <= 0) return 1;
  const double p = std::pow(10.0, std::floor(std::log10(v)));
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (m * p >= v) return m * p;
  return 10 * p;
}
}  // namespace

struct TelemetryDock::Series {
  QString name;
  QCPGraph* graph = nullptr;
  QVector<QCPGraphData> pending;  // recorded, not plotted yet (paused)
};

TelemetryDock::TelemetryDock(EngineController* controller, QWidget* parent)
    : QDockWidget(tr("Telemetry"), parent), controller_(controller) {
  setObjectName(QStringLiteral("telemetryDock"));
  setFeatures(QDockWidget::DockWidgetMovable | QDockWidget::DockWidgetFloatable |
              QDockWidget::DockWidgetClosable);

  auto* content = new QWidget(this);
  auto* layout = new QVBoxLayout(content);
  layout->setContentsMargins(4, 2, 4, 4);
  layout->setSpacing(2);

  // Toolbar: pause/resume, follow, clear, save, and a one-line summary.
  auto* bar = new QToolBar(content);
  bar->setObjectName(QStringLiteral("telemetryToolbar"));
  bar->setIconSize(QSize(16, 16));
  bar->setToolButtonStyle(Qt::ToolButtonTextBesideIcon);
  pauseAction_ = bar->addAction(style()->standardIcon(QStyle::SP_MediaPause), tr("Pause"));
  pauseAction_->setObjectName(QStringLiteral("telemetryPause"));
  pauseAction_->setCheckable(true);
  pauseAction_->setToolTip(tr("Freeze the plots and the block map; data keeps being recorded"));
  connect(pauseAction_, &QAction::toggled, this, &TelemetryDock::setPaused);
  followAction_ = bar->addAction(style()->standardIcon(QStyle::SP_MediaSeekForward), tr("Follow"));
  followAction_->setObjectName(QStringLiteral("telemetryFollow"));
  followAction_->setCheckable(true);
  followAction_->setChecked(true);
  followAction_->setToolTip(tr("Slide with the last %1 s (a drag or zoom stops following; "
                               "double-click a plot to follow again)")
                                .arg(kWindowSeconds));
  connect(followAction_, &QAction::toggled, this, &TelemetryDock::setFollowing);
  QAction* clearAction = bar->addAction(style()->standardIcon(QStyle::SP_DialogResetButton), tr("Clear"));
  clearAction->setObjectName(QStringLiteral("telemetryClear"));
  clearAction->setToolTip(tr("Forget every recorded point"));
  connect(clearAction, &QAction::triggered, this, &TelemetryDock::clear);
  QAction* saveAction = bar->addAction(style()->standardIcon(QStyle::SP_DialogSaveButton), tr("Save…"));
  saveAction->setObjectName(QStringLiteral("telemetrySave"));
  saveAction->setToolTip(tr("Save the plots as PNG, SVG or PDF"));
  connect(saveAction, &QAction::triggered, this, &TelemetryDock::savePlotsAs);
  auto* spacer = new QWidget(bar);
  spacer->setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Preferred);
  bar->addWidget(spacer);
  summary_ = new QLabel(bar);
  summary_->setObjectName(QStringLiteral("telemetrySummary"));
  summary_->setContentsMargins(0, 0, 6, 0);
  bar->addWidget(summary_);
  layout->addWidget(bar);

  // The plots: one QCustomPlot, four panels in a 2 × 2 grid, so one file
  // holds them all.
  plot_ = new QCustomPlot(content);
  plot_->setObjectName(QStringLiteral("telemetryPlot"));
  plot_->setMinimumSize(360, 260);
  plot_->setNoAntialiasingOnDrag(true);
  // Not the legend: antialiased legend items clip their descenders.
  plot_->setAntialiasedElements(QCP::aePlottables);
  plot_->plotLayout()->clear();
  // Panels fill rows first: two columns, or one when the dock is narrow.
  plot_->plotLayout()->setFillOrder(QCPLayoutGrid::foColumnsFirst, false);
  plot_->plotLayout()->setWrap(2);
  plot_->plotLayout()->setRowSpacing(2);
  plot_->plotLayout()->setColumnSpacing(8);
  plot_->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
  plot_->setAutoAddPlottableToLegend(false);  // each panel has its own legend

  // Tokens per second over the last second of steps: a short request plots
  // its tokens spread over that second, well under its own rate, so the
  // title says what is averaged.
  QCPAxisRect* throughput = addPanel(tr("Throughput (1 s average)"), tr("tokens/s"));
  QCPAxisRect* latency = addPanel(tr("Request latency"), tr("ms"));
  QCPAxisRect* kv = addPanel(tr("KV cache"), tr("blocks"));
  QCPAxisRect* sched = addPanel(tr("Scheduler"), tr("sequences"));
  auto* margins = new QCPMarginGroup(plot_);  // aligned axes, in one column or two
  for (QCPAxisRect* r : std::as_const(panels_)) r->setMarginGroup(QCP::msLeft | QCP::msRight, margins);
  plot_->installEventFilter(this);

  // The KV panel's right axis: the same range as a share of the cache.
  QCPAxis* pct = kv->axis(QCPAxis::atRight);
  pct->setVisible(true);
  pct->setLabel(tr("% of cache"));
  pct->setTickLabels(true);

  gen_ = &addSeries(QStringLiteral("generation tok/s"), throughput, kBlue, Line);
  prompt_ = &addSeries(QStringLiteral("prompt tok/s"), throughput, kOrange, Line);
  ttft_ = &addSeries(QStringLiteral("TTFT"), latency, kRed, Scatter);
  itl_ = &addSeries(QStringLiteral("ITL"), latency, kGreen, Scatter);
  kvUsed_ = &addSeries(QStringLiteral("KV used"), kv, kTeal, Filled);
  kvTotalSeries_ = &addSeries(QStringLiteral("KV total"), kv, kGrey, Line);
  running_ = &addSeries(QStringLiteral("running"), sched, kBlue, Steps);
  waiting_ = &addSeries(QStringLiteral("waiting"), sched, kOrange, Steps);
  preempted_ = &addSeries(QStringLiteral("preempted"), sched, kRed, Impulse);
  itl_->graph->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDiamond, kGreen, kGreen, 6));
  kvTotalSeries_->graph->setPen(QPen(kGrey, 1.2, Qt::DashLine));
  ttft_->graph->setName(tr("TTFT"));
  itl_->graph->setName(tr("ITL (mean)"));

  // One time axis for all: a drag or zoom on any panel moves all four and
  // stops following the live edge; a double-click follows again.
  for (QCPAxisRect* r : std::as_const(panels_)) {
    connect(r->axis(QCPAxis::atBottom), qOverload<const QCPRange&>(&QCPAxis::rangeChanged), this,
            [this, r](const QCPRange& range) {
              if (syncingAxes_) return;
              syncingAxes_ = true;
              for (QCPAxisRect* other : std::as_const(panels_))
                if (other != r) other->axis(QCPAxis::atBottom)->setRange(range);
              syncingAxes_ = false;
            });
  }
  connect(kv->axis(QCPAxis::atLeft), qOverload<const QCPRange&>(&QCPAxis::rangeChanged), this,
          [this, pct](const QCPRange& r) {
            const double total = kvTotal_ > 0 ? double(kvTotal_) : 1.0;
            pct->setRange(r.lower * 100.0 / total, r.upper * 100.0 / total);
          });
  connect(plot_, &QCustomPlot::mouseMove, this, [this](QMouseEvent* e) {
    if (e->buttons() & Qt::LeftButton) setFollowing(false);
  });
  connect(plot_, &QCustomPlot::mouseWheel, this, [this](QWheelEvent*) { setFollowing(false); });
  connect(plot_, &QCustomPlot::mouseDoubleClick, this, [this](QMouseEvent*) { setFollowing(true); });

  // The block map under the plots, in a splitter so either can grow.
  auto* blocks = new QWidget(content);
  auto* blocksLayout = new QVBoxLayout(blocks);
  blocksLayout->setContentsMargins(0, 4, 0, 0);
  blocksLayout->setSpacing(2);
  auto* caption = new QLabel(tr("<b>KV cache blocks</b> — one square per block, coloured by the request "
                                "that holds it; hover for details"),
                             blocks);
  caption->setObjectName(QStringLiteral("kvBlockCaption"));
  caption->setWordWrap(true);  // never what sets the dock's minimum width
  blockMap_ = new KvBlockMap(blocks);
  blocksLayout->addWidget(caption);
  blocksLayout->addWidget(blockMap_, 1);

  auto* split = new QSplitter(Qt::Vertical, content);
  split->setObjectName(QStringLiteral("telemetrySplitter"));
  split->addWidget(plot_);
  split->addWidget(blocks);
  split->setStretchFactor(0, 3);
  split->setStretchFactor(1, 1);
  split->setChildrenCollapsible(false);
  layout->addWidget(split, 1);
  setWidget(content);

  connect(controller_, &EngineController::modelLoaded, this, &TelemetryDock::onModelLoaded);
  connect(controller_, &EngineController::stepsAppended, this, &TelemetryDock::onSteps);
  connect(controller_, &EngineController::kvBlocksUpdated, this, &TelemetryDock::onKvBlocks);
  connect(controller_, &EngineController::metricsUpdated, this, &TelemetryDock::onMetrics);
  connect(controller_, &EngineController::requestFinished, this, &TelemetryDock::onRequestFinished);
  if (controller_->hasModel()) {
    kvTotal_ = controller_->kvBlocksTotal();
    blockMap_->setBlockSize(controller_->engineConfig().block_size);
    blockMap_->setBlocks(controller_->kvBlocks());
    lastT_ = controller_->engineNow();
  }
  refresh();
  updateSummary();
}

TelemetryDock::~TelemetryDock() {
  for (Series* s : series_) delete s;
}

QCPAxisRect* TelemetryDock::addPanel(const QString& title, const QString& yLabel) {
  auto* cell = new QCPLayoutGrid;
  plot_->plotLayout()->addElement(cell);
  auto* heading = new QCPTextElement(plot_, title, QFont(font().family(), font().pointSize(), QFont::Bold));
  heading->setMargins(QMargins(0, 4, 0, 0));
  auto* rect = new QCPAxisRect(plot_);
  cell->addElement(0, 0, heading);
  cell->addElement(1, 0, rect);
  cell->setRowStretchFactor(0, 0.001);
  cell->setRowSpacing(0);

  rect->setRangeDrag(Qt::Horizontal);
  rect->setRangeZoom(Qt::Horizontal);
  QCPAxis* x = rect->axis(QCPAxis::atBottom);
  QCPAxis* y = rect->axis(QCPAxis::atLeft);
  x->setLabel(tr("time (s)"));
  y->setLabel(yLabel);
  y->setRange(0, 1);
  x->setRange(0, kWindowSeconds);
  for (QCPAxis* a : {x, y}) {
    a->grid()->setPen(QPen(QColor(0xe2, 0xe4, 0xe8), 1));
    a->setBasePen(QPen(kGrey, 1));
    a->setTickPen(QPen(kGrey, 1));
    a->setSubTickPen(QPen(kGrey, 1));
  }
  rect->axis(QCPAxis::atRight)->setBasePen(QPen(kGrey, 1));
  rect->axis(QCPAxis::atRight)->setTickPen(QPen(kGrey, 1));
  rect->axis(QCPAxis::atRight)->setSubTickPen(QPen(kGrey, 1));

  auto* legend = new QCPLegend;
  rect->insetLayout()->addElement(legend, Qt::AlignTop | Qt::AlignLeft);
  legend->setLayer(QStringLiteral("legend"));
  legend->setBrush(QColor(255, 255, 255, 215));
  legend->setBorderPen(QPen(QColor(0xc8, 0xcc, 0xd2)));
  legend->setIconSize(14, 8);
  legend->setRowSpacing(3);
  // In pixels: QCustomPlot sizes legend items with the screen's font metrics
  // but draws them on its buffer, whose DPI may differ (offscreen, export).
  QFont small = font();
  small.setPixelSize(std::max(9, int(std::lround(QFontInfo(font()).pixelSize() * 0.9))));
  legend->setFont(small);
  legend->setMargins(QMargins(6, 4, 6, 4));
  panels_.append(rect);
  return rect;
}

TelemetryDock::Series& TelemetryDock::addSeries(const QString& name, QCPAxisRect* rect, const QColor& color,
                                                int style) {
  auto* s = new Series;
  s->name = name;
  s->graph = plot_->addGraph(rect->axis(QCPAxis::atBottom), rect->axis(QCPAxis::atLeft));
  s->graph->setName(name);
  s->graph->setPen(QPen(color, style == Impulse ? 2.0 : 1.6));
  switch (style) {
    case Steps: s->graph->setLineStyle(QCPGraph::lsStepLeft); break;
    case Scatter:
      s->graph->setLineStyle(QCPGraph::lsNone);
      s->graph->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, color, color.lighter(150), 6));
      break;
    case Impulse: s->graph->setLineStyle(QCPGraph::lsImpulse); break;
    case Filled: {
      QColor fill = color;
      fill.setAlpha(60);
      s->graph->setBrush(fill);
      break;
    }
    default: break;
  }
  // Each panel has its own legend (the first in its inset layout).
  auto* legend = qobject_cast<QCPLegend*>(rect->insetLayout()->elementAt(0));
  if (legend) s->graph->addToLegend(legend);
  series_.push_back(s);
  return *s;
}

TelemetryDock::Series* TelemetryDock::find(const QString& name) {
  for (Series* s : series_)
    if (s->name == name) return s;
  return nullptr;
}

const TelemetryDock::Series* TelemetryDock::find(const QString& name) const {
  for (const Series* s : series_)
    if (s->name == name) return s;
  return nullptr;
}

int TelemetryDock::pointCount(const QString& series) const {
  const Series* s = find(series);
  return s ? s->graph->dataCount() : -1;
}

int TelemetryDock::recordedCount(const QString& series) const {
  const Series* s = find(series);
  return s ? s->graph->dataCount() + int(s->pending.size()) : -1;
}

QVector<QPointF> TelemetryDock::points(const QString& series) const {
  QVector<QPointF> out;
  const Series* s = find(series);
  if (!s) return out;
  out.reserve(s->graph->dataCount());
  for (auto it = s->graph->data()->constBegin(); it != s->graph->data()->constEnd(); ++it)
    out.append(QPointF(it->key, it->value));
  return out;
}

QStringList TelemetryDock::seriesNames() const {
  QStringList names;
  for (const Series* s : series_) names << s->name;
  return names;
}

KvBlockMap* TelemetryDock::blockMap() const { return blockMap_; }
bool TelemetryDock::isPaused() const { return paused_; }
bool TelemetryDock::isFollowing() const { return following_; }
QCustomPlot* TelemetryDock::plot() const { return plot_; }
QString TelemetryDock::errorString() const { return error_; }

double TelemetryDock::now() const {
  const double t = controller_->hasModel() ? controller_->engineNow() : -1;
  return std::max(t, lastT_);
}

void TelemetryDock::record(Series& s, double t, double value) {
  s.pending.append(QCPGraphData(t, value));
  if (firstT_ < 0 || t < firstT_) firstT_ = t;
}

void TelemetryDock::sample(double t, int running, int waiting, qint64 kvUsed, qint64 kvTotal) {
  while (!rateWindow_.empty() && rateWindow_.front().end <= t - kRateWindowSeconds) {
    windowPrefill_ -= rateWindow_.front().prefill;
    windowDecode_ -= rateWindow_.front().decode;
    rateWindow_.pop_front();
  }
  if (rateWindow_.empty()) windowPrefill_ = windowDecode_ = 0;  // no drift
  record(*gen_, t, windowDecode_ / kRateWindowSeconds);
  record(*prompt_, t, windowPrefill_ / kRateWindowSeconds);
  record(*kvUsed_, t, double(kvUsed));
  record(*kvTotalSeries_, t, double(kvTotal));
  record(*running_, t, running);
  record(*waiting_, t, waiting);
  record(*preempted_, t, preemptedSinceSample_);
  preemptedSinceSample_ = 0;
  lastSampleT_ = t;
  lastT_ = std::max(lastT_, t);
}

void TelemetryDock::onModelLoaded() {
  // A new engine, a new clock: what was plotted belongs to the old one.
  rateWindow_.clear();
  windowPrefill_ = windowDecode_ = 0;
  lastSampleT_ = lastStepEnd_ = -1;
  lastT_ = 0;
  preemptedSinceSample_ = lastRunning_ = lastWaiting_ = 0;
  kvTotal_ = controller_->kvBlocksTotal();
  blockMap_->setBlockSize(controller_->engineConfig().block_size);
  clear();
}

void TelemetryDock::onSteps(const QVector<brisk::StepMetrics>& steps) {
  for (const brisk::StepMetrics& s : steps) {
    const double end = s.start + s.duration;
    // Tokens generated, not positions decoded (a speculative step verifies drafts it may reject).
    rateWindow_.push_back({end, s.prefill_tokens, s.generated_tokens});
    windowPrefill_ += s.prefill_tokens;
    windowDecode_ += s.generated_tokens;
    preemptedSinceSample_ += s.preempted;
    lastRunning_ = s.running;
    lastWaiting_ = s.waiting;
    lastStepEnd_ = end;
    if (s.kv_blocks_total > 0) kvTotal_ = s.kv_blocks_total;
    if (lastSampleT_ < 0 || end - lastSampleT_ >= kSampleSeconds)
      sample(end, s.running, s.waiting, s.kv_blocks_used, kvTotal_);
  }
}

void TelemetryDock::onKvBlocks(const QVector<brisk::KvBlockState>& blocks) {
  if (paused_) {
    heldBlocks_ = blocks;
    blocksHeld_ = true;
    return;
  }
  blockMap_->setBlocks(blocks);
}

void TelemetryDock::onMetrics(const brisk::MetricsSnapshot& m) {
  // Idle (or inside a long step): sample at the poll rate so the rates fall
  // back to zero and the gauges show the engine at rest.
  const double t = controller_->engineNow();
  constexpr double kIdle = 0.2;
  if (t - std::max(lastStepEnd_, 0.0) >= kIdle && (lastSampleT_ < 0 || t - lastSampleT_ >= kIdle)) {
    if (m.kv_blocks_total > 0) kvTotal_ = m.kv_blocks_total;
    const bool idle = controller_->activeRequests() == 0;
    sample(t, idle ? 0 : lastRunning_, idle ? 0 : lastWaiting_, m.kv_blocks_used, kvTotal_);
  }
  refresh();
}

void TelemetryDock::onRequestFinished(quint64, brisk::FinishReason, const GenerationStats& stats) {
  if (!controller_->hasModel()) return;
  const double t = now();
  if (stats.ttftMs >= 0) record(*ttft_, t, stats.ttftMs);
  if (stats.tokensPerSecond > 0) record(*itl_, t, 1000.0 / stats.tokensPerSecond);
}

void TelemetryDock::refresh() {
  const double t = now();
  const double keepAfter = std::max(lastT_, t) - kKeepSeconds;
  for (Series* s : series_) {
    // Bounded even while paused: what falls out of the 10 minutes goes.
    if (!s->pending.isEmpty() && s->pending.front().key < keepAfter) {
      const auto first = std::lower_bound(s->pending.begin(), s->pending.end(), keepAfter,
                                          [](const QCPGraphData& d, double k) { return d.key < k; });
      s->pending.erase(s->pending.begin(), first);
    }
  }
  if (paused_) return;
  for (Series* s : series_) {
    if (!s->pending.isEmpty()) {
      s->graph->data()->add(s->pending, /*alreadySorted=*/true);
      s->pending.clear();
    }
    s->graph->data()->removeBefore(keepAfter);
  }
  if (following_) {
    // The last 60 s; until that much is recorded, from the first point
    // (but at least 5 s), so a fresh dock is not mostly empty.
    double lower = t - kWindowSeconds, upper = t;
    if (firstT_ >= 0) lower = std::max(lower, std::min(firstT_, t - kMinSpanSeconds));
    if (lower < 0) {  // the engine clock starts at 0: grow from there
      lower = 0;
      upper = std::max(t, kMinSpanSeconds);
    }
    syncingAxes_ = true;
    for (QCPAxisRect* r : std::as_const(panels_)) r->axis(QCPAxis::atBottom)->setRange(lower, upper);
    syncingAxes_ = false;
  }
  rescaleValueAxes();
  updateSummary();
  if (plot_->isVisible()) plot_->replot(QCustomPlot::rpQueuedReplot);
}

double TelemetryDock::legendShare(QCPAxisRect* rect) const {
  const auto* legend = qobject_cast<QCPLegend*>(rect->insetLayout()->elementAt(0));
  const int height = rect->height();
  if (!legend || height <= 0) return 0.35;  // not laid out yet: a typical share
  // The last layout's legend, or its size hint before the first replot; the
  // extra pixels clear a scatter point's radius.
  const QRect box = legend->outerRect();
  const int bottom = box.isEmpty() ? legend->minimumOuterSizeHint().height() : box.bottom() - rect->top();
  return std::clamp((bottom + 6.0) / height, 0.1, 0.6);
}

void TelemetryDock::rescaleValueAxes() {
  for (QCPAxisRect* r : std::as_const(panels_)) {
    const QCPRange keys = r->axis(QCPAxis::atBottom)->range();
    double top = 0;
    for (QCPGraph* g : r->graphs()) {
      if (g == kvTotalSeries_->graph) continue;  // the total shows once the used part nears it
      bool found = false;
      const QCPRange v = g->getValueRange(found, QCP::sdBoth, keys);
      if (found) top = std::max(top, v.upper);
    }
    // The legend sits in the top-left corner, where a fresh run draws its
    // first points: the data stays below the legend's bottom edge.
    double upper = niceCeil(std::max(top / (1.0 - legendShare(r)), r == panels_[2]   ? 8.0
                                                                   : r == panels_[3] ? 2.0
                                                                                     : 1.0));
    if (r == panels_[2] && kvTotal_ > 0) {
      upper = std::min(upper, double(kvTotal_) * 1.08);
      // The total's legend entry only while its line is in view.
      auto* legend = qobject_cast<QCPLegend*>(r->insetLayout()->elementAt(0));
      QCPGraph* total = kvTotalSeries_->graph;
      const bool inView = double(kvTotal_) <= upper;
      if (legend && inView && !legend->hasItemWithPlottable(total)) total->addToLegend(legend);
      if (legend && !inView && legend->hasItemWithPlottable(total)) total->removeFromLegend(legend);
    }
    r->axis(QCPAxis::atLeft)->setRange(0, upper);
  }
  // The % axis follows the block axis. Recompute it here as well: the cache
  // size may become known after the block range was last set.
  if (panels_.size() > 2) {
    const QCPRange r = panels_[2]->axis(QCPAxis::atLeft)->range();
    const double total = kvTotal_ > 0 ? double(kvTotal_) : 1.0;
    panels_[2]->axis(QCPAxis::atRight)->setRange(r.lower * 100.0 / total, r.upper * 100.0 / total);
  }
}

void TelemetryDock::updateSummary() {
  auto last = [](const Series* s) { return s->graph->dataCount() ? (s->graph->data()->constEnd() - 1)->value : 0.0; };
  QString text = tr("%1 tok/s (last 1 s) · KV %2/%3 · %4 running · %5 waiting")
                     .arg(last(gen_), 0, 'f', 0)
                     .arg(last(kvUsed_), 0, 'f', 0)
                     .arg(fmt::quantity(kvTotal_, tr("block"), tr("blocks")))
                     .arg(last(running_), 0, 'f', 0)
                     .arg(last(waiting_), 0, 'f', 0);
  if (paused_) text = tr("Paused · ") + text;
  summary_->setText(text);
}

void TelemetryDock::setPaused(bool paused) {
  if (paused == paused_) return;
  paused_ = paused;
  {
    const QSignalBlocker block(pauseAction_);
    pauseAction_->setChecked(paused);
  }
  pauseAction_->setText(paused ? tr("Resume") : tr("Pause"));
  pauseAction_->setIcon(style()->standardIcon(paused ? QStyle::SP_MediaPlay : QStyle::SP_MediaPause));
  if (!paused) {
    if (blocksHeld_) blockMap_->setBlocks(heldBlocks_);
    heldBlocks_.clear();
    blocksHeld_ = false;
    refresh();  // catch up at once
  } else {
    updateSummary();
  }
  Q_EMIT pausedChanged(paused);
}

void TelemetryDock::setFollowing(bool following) {
  if (following == following_) return;
  following_ = following;
  {
    const QSignalBlocker block(followAction_);
    followAction_->setChecked(following);
  }
  if (following && !paused_) refresh();
}

void TelemetryDock::clear() {
  firstT_ = -1;
  for (Series* s : series_) {
    s->graph->data()->clear();
    s->pending.clear();
  }
  refresh();
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

bool TelemetryDock::eventFilter(QObject* watched, QEvent* e) {
  if (watched == plot_ && e->type() == QEvent::Resize) {
    // One column where the dock is narrow, unless that leaves each panel too
    // short to read (a small window's left column): then two, short and narrow.
    const int w = plot_->width(), h = plot_->height();
    const int columns = w >= kTwoColumnWidth || h / 4 < kMinPanelHeight ? 2 : 1;
    QCPLayoutGrid* grid = plot_->plotLayout();
    if (grid->columnCount() != columns) {
      grid->setWrap(columns);
      grid->setFillOrder(QCPLayoutGrid::foColumnsFirst, /*rearrange=*/true);
      grid->simplify();
    }
    // As many ticks as the panels have room for: at the default five, the
    // labels of a 50-px axis ran into each other.
    const int rows = int(panels_.size()) / columns;
    const int panelH = h / std::max(1, rows) - 60;  // the heading and the time axis
    const int panelW = w / columns - 70;            // the value axis and its label
    for (QCPAxisRect* r : panels_) {
      r->axis(QCPAxis::atLeft)->ticker()->setTickCount(std::clamp(panelH / 28, 2, 5));
      r->axis(QCPAxis::atRight)->ticker()->setTickCount(std::clamp(panelH / 28, 2, 5));
      r->axis(QCPAxis::atBottom)->ticker()->setTickCount(std::clamp(panelW / 40, 2, 6));
    }
    plot_->replot(QCustomPlot::rpQueuedReplot);
  }
  return QDockWidget::eventFilter(watched, e);
}

void TelemetryDock::showEvent(QShowEvent* e) {
  QDockWidget::showEvent(e);
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

bool TelemetryDock::savePlots(const QString& path) {
  error_.clear();
  const QString ext = QFileInfo(path).suffix().toLower();
  if (ext != QLatin1String("png") && ext != QLatin1String("svg") && ext != QLatin1String("pdf")) {
    error_ = tr("%1: unsupported format \"%2\" (use .png, .svg or .pdf)").arg(path, ext);
    return false;
  }
  // What is on screen, at least 1200 × 900 so a hidden dock exports well too.
  const int w = std::max(plot_->width(), 1200), h = std::max(plot_->height(), 900);
  bool ok = false;
  if (ext == QLatin1String("png")) {
    ok = plot_->savePng(path, w, h);
  } else if (ext == QLatin1String("pdf")) {
    ok = plot_->savePdf(path, w, h, QCP::epAllowCosmetic, QStringLiteral("Brisk"), tr("Brisk telemetry"));
  } else {
    QFile probe(path);
    if (!probe.open(QIODevice::WriteOnly)) {
      error_ = tr("%1: cannot write: %2").arg(path, probe.errorString());
      return false;
    }
    probe.close();
    QSvgGenerator svg;
    svg.setFileName(path);
    svg.setSize(QSize(w, h));
    svg.setViewBox(QRect(0, 0, w, h));
    svg.setTitle(tr("Brisk telemetry"));
    svg.setDescription(tr("Throughput, request latency, KV cache and scheduler queues"));
    QCPPainter painter;
    if (painter.begin(&svg)) {
      plot_->toPainter(&painter, w, h);
      ok = painter.end();
    }
  }
  if (!ok || QFileInfo(path).size() == 0) {
    if (error_.isEmpty()) error_ = tr("%1: could not write the %2 file").arg(path, ext.toUpper());
    return false;
  }
  return true;
}

void TelemetryDock::savePlotsAs() {
  auto* dialog = new QFileDialog(this, tr("Save telemetry plots"),
                                 QDir::home().filePath(QStringLiteral("brisk-telemetry.png")),
                                 tr("PNG image (*.png);;SVG image (*.svg);;PDF document (*.pdf)"));
  dialog->setObjectName(QStringLiteral("telemetrySaveDialog"));
  dialog->setAcceptMode(QFileDialog::AcceptSave);
  dialog->setDefaultSuffix(QStringLiteral("png"));
  dialog->setAttribute(Qt::WA_DeleteOnClose);
  connect(dialog, &QFileDialog::filterSelected, dialog, [dialog](const QString& filter) {
    const int star = filter.indexOf(QLatin1String("*."));
    if (star >= 0) dialog->setDefaultSuffix(filter.mid(star + 2, 3));
  });
  connect(dialog, &QFileDialog::fileSelected, this, [this](const QString& path) {
    if (savePlots(path)) return;
    auto* box = new QMessageBox(QMessageBox::Warning, tr("Could not save the plots"), error_, QMessageBox::Ok, this);
    box->setAttribute(Qt::WA_DeleteOnClose);
    box->open();
  });
  dialog->open();
}
