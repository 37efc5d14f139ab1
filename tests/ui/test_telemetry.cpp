// The telemetry dock and the KV block map on the built-in demo model: the
// controller's step and block-map signals, plots that fill while a request
// runs, a block map that shows the request's blocks and frees them, pause
// and resume, export to PNG/SVG/PDF, and the docs screenshot.
#include <qcustomplot.h>

#include <QApplication>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QHelpEvent>
#include <QImage>
#include <QLabel>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QToolTip>
#include <QtTest>
#include <algorithm>

#include "brisk/engine_config.h"
#include "brisk/sampling_params.h"
#include "ui/engine_controller.h"
#include "ui/kv_block_map.h"
#include "ui/telemetry_dock.h"

namespace {
constexpr int kLoadTimeoutMs = 60000;
constexpr int kGenerateTimeoutMs = 60000;

brisk::KvBlockState block(qint64 owner, int refcount, int filled) {
  brisk::KvBlockState b;
  b.owner = owner;
  b.refcount = refcount;
  b.filled = filled;
  return b;
}

double maxValue(const QVector<QPointF>& points) {
  double m = 0;
  for (const QPointF& p : points) m = std::max(m, p.y());
  return m;
}
}  // namespace

class TestTelemetry : public QObject {
  Q_OBJECT

 private:
  // A greedy request that runs for a while (ignore_eos).
  quint64 startLong(int maxTokens, const QString& prompt = QStringLiteral("Once upon a time"));
  bool waitIdle();

  EngineController* controller_ = nullptr;
  TelemetryDock* dock_ = nullptr;

 private Q_SLOTS:
  void initTestCase();
  void cleanupTestCase();
  void blockMapCountsOwnersAndTooltips();
  void blockMapPaintsStates();
  void blockMapSummarisesThousandsOfBlocks();
  void controllerEmitsStepsAndBlocks();
  void plotsFillWhileGenerating();
  void stopFreesBlocks();
  void pauseHoldsPlotsAndResumeCatchesUp();
  void savesPngSvgPdf();
  void narrowDockStacksPanels();
  void legendsLeaveDataUncovered();
  void clearEmptiesPlots();
  void oneBlockIsSingular();
  void screenshot();
};

void TestTelemetry::initTestCase() {
  QStandardPaths::setTestModeEnabled(true);
  controller_ = new EngineController;
  controller_->setMetricsIntervalMs(5);  // clamped
  QCOMPARE(controller_->metricsIntervalMs(), 10);
  controller_->setMetricsIntervalMs(50);  // 20 Hz: more polls while a request runs
  QCOMPARE(controller_->metricsIntervalMs(), 50);
  QCOMPARE(controller_->engineNow(), -1.0);
  QVERIFY(controller_->kvBlocks().isEmpty());

  dock_ = new TelemetryDock(controller_);
  dock_->resize(900, 700);
  dock_->show();
  QVERIFY(QTest::qWaitForWindowExposed(dock_));
  QVERIFY(dock_->blockMap());
  QCOMPARE(dock_->blockMap()->totalCount(), 0);
  for (const QString& name : dock_->seriesNames()) QCOMPARE(dock_->pointCount(name), 0);
  QCOMPARE(dock_->pointCount(QStringLiteral("no such series")), -1);

  QSignalSpy loaded(controller_, &EngineController::modelLoaded);
  QSignalSpy failed(controller_, &EngineController::loadFailed);
  QSignalSpy blocks(controller_, &EngineController::kvBlocksUpdated);
  controller_->loadModel(brisk::EngineConfig{});
  QTRY_VERIFY_WITH_TIMEOUT(loaded.count() + failed.count() > 0, kLoadTimeoutMs);
  if (!failed.isEmpty()) QFAIL(qPrintable("loading the demo model failed: " + failed.first().at(0).toString()));
  QVERIFY(controller_->engineNow() >= 0);
  // The first poll after loading publishes the (empty) block map.
  QTRY_VERIFY_WITH_TIMEOUT(blocks.count() > 0, 2000);
  const auto map = blocks.first().at(0).value<QVector<brisk::KvBlockState>>();
  QCOMPARE(map.size(), qsizetype(controller_->kvBlocksTotal()));
  QCOMPARE(dock_->blockMap()->totalCount(), int(controller_->kvBlocksTotal()));
  QCOMPARE(dock_->blockMap()->usedCount(), 0);
  QCOMPARE(dock_->blockMap()->blockSize(), controller_->engineConfig().block_size);
}

void TestTelemetry::cleanupTestCase() {
  delete dock_;
  dock_ = nullptr;
  delete controller_;
  controller_ = nullptr;
}

quint64 TestTelemetry::startLong(int maxTokens, const QString& prompt) {
  brisk::SamplingParams p;
  p.max_tokens = maxTokens;
  p.temperature = 0.0f;
  p.ignore_eos = true;
  return controller_->generate(prompt, p);
}

bool TestTelemetry::waitIdle() {
  return QTest::qWaitFor([&] { return controller_->activeRequests() == 0; }, kGenerateTimeoutMs);
}

void TestTelemetry::blockMapCountsOwnersAndTooltips() {
  KvBlockMap map;
  map.resize(420, 160);
  QCOMPARE(map.totalCount(), 0);
  QCOMPARE(map.ownerAt(0), qint64(-1));
  map.setBlockSize(16);
  // free, request 7 (two full blocks and a partial one), a block shared by
  // requests 9 and 11 (a common prefix), request 11's own block, free.
  map.setBlocks({block(-1, 0, 0), block(7, 1, 16), block(7, 1, 16), block(7, 1, 5), block(9, 2, 16),
                 block(11, 1, 3), block(-1, 0, 0)});
  QCOMPARE(map.totalCount(), 7);
  QCOMPARE(map.usedCount(), 5);
  QCOMPARE(map.sharedCount(), 1);
  QCOMPARE(map.requestCount(), 3);
  QCOMPARE(map.ownerAt(0), qint64(-1));
  QCOMPARE(map.ownerAt(1), qint64(7));
  QCOMPARE(map.ownerAt(3), qint64(7));
  QCOMPARE(map.ownerAt(4), qint64(9));
  QCOMPARE(map.ownerAt(6), qint64(-1));
  QCOMPARE(map.ownerAt(-1), qint64(-1));
  QCOMPARE(map.ownerAt(7), qint64(-1));
  QCOMPARE(map.blocksPerCell(), 1);

  QVERIFY2(map.legendText().contains(QStringLiteral("5/7 blocks used")), qPrintable(map.legendText()));
  QVERIFY(map.legendText().startsWith(QStringLiteral("free · in use")));
  QVERIFY(map.legendText().contains(QStringLiteral("shared")));
  QVERIFY(map.legendText().contains(QStringLiteral("3 requests")));

  const QString free = map.toolTipForBlock(0);
  QVERIFY2(free.contains(QStringLiteral("Block 0")) && free.contains(QStringLiteral("free")), qPrintable(free));
  const QString partial = map.toolTipForBlock(3);
  QVERIFY2(partial.contains(QStringLiteral("Block 3")), qPrintable(partial));
  QVERIFY2(partial.contains(QStringLiteral("request 7")), qPrintable(partial));
  QVERIFY2(partial.contains(QStringLiteral("refcount 1")), qPrintable(partial));
  QVERIFY2(partial.contains(QStringLiteral("5/16")), qPrintable(partial));
  QVERIFY2(partial.contains(QStringLiteral("3 blocks")), qPrintable(partial));
  QVERIFY2(!partial.contains(QStringLiteral("shared")), qPrintable(partial));
  const QString shared = map.toolTipForBlock(4);
  QVERIFY2(shared.contains(QStringLiteral("request 9")), qPrintable(shared));
  QVERIFY2(shared.contains(QStringLiteral("refcount 2")) && shared.contains(QStringLiteral("shared")),
           qPrintable(shared));
  QVERIFY(map.toolTipForBlock(99).isEmpty());

  // Geometry: each block's square maps back to the block, in order.
  for (int b = 0; b < map.totalCount(); ++b) {
    const QRect r = map.blockRect(b);
    QVERIFY(!r.isEmpty());
    QVERIFY(r.width() >= KvBlockMap::kMinCell);
    QCOMPARE(map.blockAt(r.center()), b);
    if (b > 0) QVERIFY(r.left() > map.blockRect(b - 1).left() || r.top() > map.blockRect(b - 1).top());
  }
  QCOMPARE(map.blockAt(QPoint(-5, -5)), -1);

  // The tooltip the user sees on hover is the block's.
  map.show();
  QVERIFY(QTest::qWaitForWindowExposed(&map));
  const QPoint pos = map.blockRect(4).center();
  QHelpEvent help(QEvent::ToolTip, pos, map.mapToGlobal(pos));
  QApplication::sendEvent(&map, &help);
  QTRY_COMPARE(QToolTip::text(), map.toolTipForBlock(4));
  QToolTip::hideText();

  // Freed: everything back to free.
  map.setBlocks(QVector<brisk::KvBlockState>(7));
  QCOMPARE(map.usedCount(), 0);
  QCOMPARE(map.sharedCount(), 0);
  QCOMPARE(map.ownerAt(1), qint64(-1));
}

void TestTelemetry::blockMapPaintsStates() {
  KvBlockMap map;
  map.resize(420, 160);
  map.setBlockSize(16);
  map.setBlocks({block(-1, 0, 0), block(7, 1, 16), block(7, 1, 4), block(9, 2, 16)});
  const QImage img = map.grab().toImage();
  auto colorAt = [&](int b, double fy) {
    const QRect r = map.blockRect(b);
    const qreal dpr = img.devicePixelRatio();
    return img.pixelColor(QPoint(int((r.left() + 1) * dpr), int((r.top() + fy * r.height()) * dpr)));
  };
  QCOMPARE(colorAt(0, 0.5), KvBlockMap::freeColor());
  QCOMPARE(colorAt(1, 0.5), KvBlockMap::colorForRequest(7));
  // Partly filled: the full colour at the bottom, lighter at the top.
  QCOMPARE(colorAt(2, 0.95), KvBlockMap::colorForRequest(7));
  QVERIFY(colorAt(2, 0.1).lightness() > KvBlockMap::colorForRequest(7).lightness());
  // Shared: outlined darker than its owner's colour.
  QVERIFY(colorAt(3, 0.0).lightness() < KvBlockMap::colorForRequest(9).lightness());
  // Colours are stable per request and differ between neighbours.
  QCOMPARE(KvBlockMap::colorForRequest(7), KvBlockMap::colorForRequest(7));
  QVERIFY(KvBlockMap::colorForRequest(7) != KvBlockMap::colorForRequest(8));
  QVERIFY(KvBlockMap::colorForRequest(7) != KvBlockMap::freeColor());
}

void TestTelemetry::blockMapSummarisesThousandsOfBlocks() {
  KvBlockMap map;
  map.resize(900, 160);
  QVector<brisk::KvBlockState> blocks(4096);
  for (int i = 100; i < 164; ++i) blocks[i] = block(3, 1, 16);
  map.setBlocks(blocks);
  // 4096 blocks fit a 900 × 160 map one square each, squares of >= 3 px.
  QCOMPARE(map.blocksPerCell(), 1);
  QVERIFY(map.blockRect(0).width() >= KvBlockMap::kMinCell);
  QVERIFY(map.blockRect(4095).bottom() < map.height());
  QCOMPARE(map.blockAt(map.blockRect(120).center()), 120);
  QCOMPARE(map.usedCount(), 64);

  // Too many for 3 px squares: one square stands for several blocks.
  map.resize(300, 60);
  QVERIFY(map.blocksPerCell() > 1);
  QCOMPARE(map.blockRect(0).width(), KvBlockMap::kMinCell);
  QVERIFY(map.blockRect(4095).bottom() < map.height());
  QVERIFY(map.legendText().contains(QStringLiteral("1 square = %1 blocks").arg(map.blocksPerCell())));
  const QString tip = map.cellToolTip(120);
  QVERIFY2(tip.startsWith(QStringLiteral("Blocks ")) && tip.contains(QStringLiteral("requests 3")), qPrintable(tip));
  QCOMPARE(map.usedCount(), 64);  // counts never depend on the layout
}

void TestTelemetry::controllerEmitsStepsAndBlocks() {
  QVERIFY(controller_->hasModel());
  QSignalSpy steps(controller_, &EngineController::stepsAppended);
  QSignalSpy blocks(controller_, &EngineController::kvBlocksUpdated);
  QSignalSpy metrics(controller_, &EngineController::metricsUpdated);
  QSignalSpy finished(controller_, &EngineController::requestFinished);
  const quint64 id = startLong(800, QStringLiteral("The quick brown fox"));
  QVERIFY(id != 0);
  QTRY_VERIFY_WITH_TIMEOUT(finished.count() > 0, kGenerateTimeoutMs);
  QTRY_VERIFY_WITH_TIMEOUT(!blocks.isEmpty() && blocks.last().at(0).value<QVector<brisk::KvBlockState>>().size() > 0 &&
                               std::all_of(controller_->kvBlocks().cbegin(), controller_->kvBlocks().cend(),
                                           [](const brisk::KvBlockState& b) { return b.owner < 0; }),
                           2000);
  QVERIFY(metrics.count() > 0);

  // Every step exactly once, in order, with the request's tokens.
  QVERIFY(!steps.isEmpty());
  qint64 expected = -1;
  int decode = 0, prefill = 0;
  for (const auto& args : steps) {
    const auto v = args.at(0).value<QVector<brisk::StepMetrics>>();
    QVERIFY(!v.isEmpty());
    for (const brisk::StepMetrics& s : v) {
      if (expected >= 0) QCOMPARE(qint64(s.step), expected);
      expected = qint64(s.step) + 1;
      QVERIFY(s.start >= 0 && s.duration >= 0);
      QVERIFY(s.start + s.duration <= controller_->engineNow());
      decode += s.decode_tokens;
      prefill += s.prefill_tokens;
    }
  }
  const auto stats = finished.first().at(2).value<GenerationStats>();
  QCOMPARE(stats.outputTokens, 800);
  QVERIFY(prefill >= stats.promptTokens);
  // The first token comes out of the prefill step.
  QVERIFY2(decode >= 798 && decode <= 800, qPrintable(QString::number(decode)));

  // While it ran, some block map showed the request, under its own id.
  bool sawOwner = false;
  for (const auto& args : blocks) {
    const auto v = args.at(0).value<QVector<brisk::KvBlockState>>();
    QCOMPARE(v.size(), qsizetype(controller_->kvBlocksTotal()));
    for (const auto& b : v) {
      if (b.owner < 0) continue;
      QCOMPARE(quint64(b.owner), id);
      sawOwner = true;
    }
  }
  QVERIFY2(sawOwner, "no block map showed the request's blocks");
  // Nothing changes when idle: no new block maps, no steps.
  blocks.clear();
  steps.clear();
  QTest::qWait(300);
  QCOMPARE(blocks.count(), 0);
  QCOMPARE(steps.count(), 0);
}

void TestTelemetry::plotsFillWhileGenerating() {
  QVERIFY(waitIdle());
  dock_->clear();
  QCOMPARE(dock_->pointCount(QStringLiteral("generation tok/s")), 0);
  QSignalSpy finished(controller_, &EngineController::requestFinished);
  const quint64 id = startLong(1200);
  QVERIFY(id != 0);
  KvBlockMap* map = dock_->blockMap();

  // The block map shows the request's blocks while it runs.
  QTRY_VERIFY_WITH_TIMEOUT(map->usedCount() > 0 || !finished.isEmpty(), kGenerateTimeoutMs);
  QVERIFY2(finished.isEmpty(), "the request finished before the block map showed it");
  QVERIFY(map->usedCount() > 0);
  int owned = 0;
  for (int b = 0; b < map->totalCount(); ++b) {
    const qint64 owner = map->ownerAt(b);
    QVERIFY(owner == -1 || quint64(owner) == id);
    owned += owner >= 0;
  }
  QCOMPARE(owned, map->usedCount());
  QVERIFY(map->legendText().contains(QStringLiteral("%1/%2 blocks used").arg(map->usedCount()).arg(map->totalCount())));

  // The series receive points while it runs.
  QTRY_VERIFY_WITH_TIMEOUT(maxValue(dock_->points(QStringLiteral("generation tok/s"))) > 0 || !finished.isEmpty(),
                           kGenerateTimeoutMs);
  QVERIFY2(finished.isEmpty() || maxValue(dock_->points(QStringLiteral("generation tok/s"))) > 0,
           "no tokens/s point while the request ran");
  QVERIFY(dock_->pointCount(QStringLiteral("KV used")) > 0);
  QVERIFY(dock_->pointCount(QStringLiteral("running")) > 0);
  QVERIFY(dock_->pointCount(QStringLiteral("waiting")) > 0);

  QTRY_VERIFY_WITH_TIMEOUT(!finished.isEmpty(), kGenerateTimeoutMs);
  QCOMPARE(finished.first().at(0).value<quint64>(), id);
  // All blocks free again once it is over.
  QTRY_COMPARE_WITH_TIMEOUT(map->usedCount(), 0, 2000);
  for (int b = 0; b < map->totalCount(); ++b) QCOMPARE(map->ownerAt(b), qint64(-1));

  // The run is on the plots: rates > 0, KV used > 0, one sequence running.
  QTRY_VERIFY(dock_->pointCount(QStringLiteral("TTFT")) == 1);
  QCOMPARE(dock_->pointCount(QStringLiteral("ITL")), 1);
  const auto stats = finished.first().at(2).value<GenerationStats>();
  QCOMPARE(dock_->points(QStringLiteral("TTFT")).first().y(), stats.ttftMs);
  QVERIFY(qAbs(dock_->points(QStringLiteral("ITL")).first().y() - 1000.0 / stats.tokensPerSecond) < 1e-6);
  QVERIFY(maxValue(dock_->points(QStringLiteral("generation tok/s"))) > 0);
  QVERIFY(maxValue(dock_->points(QStringLiteral("prompt tok/s"))) > 0);
  QVERIFY(maxValue(dock_->points(QStringLiteral("KV used"))) >= 1200.0 / 16 / 2);
  QCOMPARE(maxValue(dock_->points(QStringLiteral("running"))), 1.0);
  QCOMPARE(maxValue(dock_->points(QStringLiteral("KV total"))), double(controller_->kvBlocksTotal()));
  // Points are in time order, on the engine clock.
  const auto gen = dock_->points(QStringLiteral("generation tok/s"));
  for (int i = 1; i < gen.size(); ++i) QVERIFY(gen[i].x() >= gen[i - 1].x());
  QVERIFY(gen.last().x() <= controller_->engineNow());

  // Idle again: the rate falls back to 0 within the 1 s window, gauges to 0.
  QTRY_VERIFY_WITH_TIMEOUT(dock_->points(QStringLiteral("generation tok/s")).last().y() == 0, 3000);
  QTRY_VERIFY_WITH_TIMEOUT(dock_->points(QStringLiteral("running")).last().y() == 0, 3000);
  QTRY_VERIFY_WITH_TIMEOUT(dock_->points(QStringLiteral("KV used")).last().y() == 0, 3000);

  // The view follows the live edge.
  QVERIFY(dock_->isFollowing());
  const QCPRange x = dock_->plot()->axisRect(0)->axis(QCPAxis::atBottom)->range();
  QVERIFY(x.upper >= gen.last().x());
  QVERIFY(x.size() <= TelemetryDock::kWindowSeconds + 1e-9);
  QVERIFY(x.size() >= TelemetryDock::kMinSpanSeconds - 1e-9);
}

// Each panel's legend sits in its top-left corner, where a fresh run draws
// its first points (the view starts at the first point). The value axes
// leave room above the data for it, at the size the window gives the dock.
void TestTelemetry::legendsLeaveDataUncovered() {
  QVERIFY(waitIdle());
  const QSize before = dock_->size();
  dock_->resize(460, 560);
  dock_->clear();
  QSignalSpy finished(controller_, &EngineController::requestFinished);
  QVERIFY(startLong(600) != 0);
  QTRY_VERIFY_WITH_TIMEOUT(!finished.isEmpty(), kGenerateTimeoutMs);
  QTRY_VERIFY_WITH_TIMEOUT(dock_->points(QStringLiteral("running")).size() > 2, 3000);
  QCustomPlot* plot = dock_->plot();
  plot->replot();
  int checked = 0;
  for (int i = 0; i < plot->axisRectCount(); ++i) {
    QCPAxisRect* rect = plot->axisRect(i);
    auto* legend = qobject_cast<QCPLegend*>(rect->insetLayout()->elementAt(0));
    QVERIFY(legend);
    const QRect covered = legend->outerRect();
    QVERIFY(!covered.isEmpty());
    for (QCPGraph* g : rect->graphs()) {
      if (!legend->hasItemWithPlottable(g)) continue;  // KV total: in the legend only when in view
      const QCPRange keys = rect->axis(QCPAxis::atBottom)->range();
      for (auto it = g->data()->constBegin(); it != g->data()->constEnd(); ++it) {
        if (!keys.contains(it->key) || it->value <= 0) continue;
        const QPointF px = g->coordsToPixels(it->key, it->value);
        QVERIFY2(!covered.contains(px.toPoint()),
                 qPrintable(QStringLiteral("%1 at (%2 s, %3) is drawn under its panel's legend")
                                .arg(g->name())
                                .arg(it->key)
                                .arg(it->value)));
        ++checked;
      }
    }
  }
  QVERIFY(checked > 10);
  dock_->resize(before);
}

void TestTelemetry::stopFreesBlocks() {
  QVERIFY(waitIdle());
  QSignalSpy finished(controller_, &EngineController::requestFinished);
  const quint64 id = startLong(1800);
  QTRY_VERIFY_WITH_TIMEOUT(dock_->blockMap()->usedCount() > 0 || !finished.isEmpty(), kGenerateTimeoutMs);
  QVERIFY2(finished.isEmpty(), "the request finished before the block map showed it");
  controller_->stop(id);
  QTRY_VERIFY_WITH_TIMEOUT(!finished.isEmpty(), kGenerateTimeoutMs);
  QCOMPARE(finished.first().at(1).value<brisk::FinishReason>(), brisk::FinishReason::Abort);
  QTRY_COMPARE_WITH_TIMEOUT(dock_->blockMap()->usedCount(), 0, 2000);
}

void TestTelemetry::pauseHoldsPlotsAndResumeCatchesUp() {
  QVERIFY(waitIdle());
  QSignalSpy finished(controller_, &EngineController::requestFinished);
  QSignalSpy steps(controller_, &EngineController::stepsAppended);
  const quint64 id = startLong(1800);
  QVERIFY(id != 0);
  QTRY_VERIFY_WITH_TIMEOUT(steps.count() > 0, kGenerateTimeoutMs);

  dock_->setPaused(true);
  QVERIFY(dock_->isPaused());
  const QStringList names = {QStringLiteral("generation tok/s"), QStringLiteral("KV used"), QStringLiteral("running")};
  QMap<QString, int> plotted;
  for (const QString& n : names) plotted[n] = dock_->pointCount(n);
  const int mapUsed = dock_->blockMap()->usedCount();
  steps.clear();
  // Data keeps arriving while paused; the plots and the block map hold still.
  QTRY_VERIFY_WITH_TIMEOUT(steps.count() >= 3, kGenerateTimeoutMs);
  QTest::qWait(300);
  for (const QString& n : names) {
    QCOMPARE(dock_->pointCount(n), plotted[n]);
    QVERIFY2(dock_->recordedCount(n) > plotted[n], qPrintable(n));
  }
  if (finished.isEmpty()) QCOMPARE(dock_->blockMap()->usedCount(), mapUsed);

  // Resume: everything recorded meanwhile is plotted at once.
  QMap<QString, int> recorded;
  for (const QString& n : names) recorded[n] = dock_->recordedCount(n);
  dock_->setPaused(false);
  QVERIFY(!dock_->isPaused());
  for (const QString& n : names) {
    QVERIFY(dock_->pointCount(n) >= recorded[n]);
    QCOMPARE(dock_->pointCount(n), dock_->recordedCount(n));
  }

  controller_->stop(id);
  QTRY_VERIFY_WITH_TIMEOUT(!finished.isEmpty(), kGenerateTimeoutMs);
  QTRY_COMPARE_WITH_TIMEOUT(dock_->blockMap()->usedCount(), 0, 2000);
}

void TestTelemetry::savesPngSvgPdf() {
  QTemporaryDir dir;
  QVERIFY(dir.isValid());
  for (const char* ext : {"png", "svg", "pdf"}) {
    const QString path = dir.filePath(QStringLiteral("telemetry.") + QLatin1String(ext));
    QVERIFY2(dock_->savePlots(path), qPrintable(dock_->errorString()));
    QVERIFY2(QFileInfo(path).size() > 1000, qPrintable(path));
  }
  const QImage png(dir.filePath(QStringLiteral("telemetry.png")));
  QVERIFY(!png.isNull());
  QVERIFY(png.width() >= 1200 && png.height() >= 900);
  QFile svg(dir.filePath(QStringLiteral("telemetry.svg")));
  QVERIFY(svg.open(QIODevice::ReadOnly));
  const QByteArray svgText = svg.readAll();
  QVERIFY(svgText.contains("<svg"));
  QVERIFY(svgText.contains("tokens/s"));
  QFile pdf(dir.filePath(QStringLiteral("telemetry.pdf")));
  QVERIFY(pdf.open(QIODevice::ReadOnly));
  QVERIFY(pdf.read(5) == "%PDF-");

  QVERIFY(!dock_->savePlots(dir.filePath(QStringLiteral("telemetry.bmp"))));
  QVERIFY(dock_->errorString().contains(QStringLiteral("bmp")));
  QVERIFY(!dock_->savePlots(QStringLiteral("/nonexistent/brisk-telemetry/plots.png")));
  QVERIFY(!dock_->errorString().isEmpty());
  QVERIFY(!dock_->savePlots(QStringLiteral("/nonexistent/brisk-telemetry/plots.svg")));
  QVERIFY(!dock_->errorString().isEmpty());
}

void TestTelemetry::narrowDockStacksPanels() {
  QCPLayoutGrid* grid = dock_->plot()->plotLayout();
  QCOMPARE(grid->columnCount(), 2);
  QCOMPARE(grid->rowCount(), 2);
  const QSize before = dock_->size();
  dock_->resize(420, 900);
  QTRY_COMPARE(grid->columnCount(), 1);
  QCOMPARE(grid->rowCount(), 4);
  // In order: throughput, latency, KV cache, scheduler, top to bottom.
  QCOMPARE(grid->elementCount(), 4);
  auto panelTop = [&](const QString& yLabel) {
    for (QCPAxisRect* r : dock_->plot()->axisRects())
      if (r->axis(QCPAxis::atLeft)->label() == yLabel) return r->outerRect().top();
    return -1;
  };
  dock_->plot()->replot();
  const QStringList order = {QStringLiteral("tokens/s"), QStringLiteral("ms"), QStringLiteral("blocks"),
                             QStringLiteral("sequences")};
  for (int i = 1; i < order.size(); ++i)
    QVERIFY2(panelTop(order[i]) > panelTop(order[i - 1]), qPrintable(order[i]));
  // Narrow and short (the left column of a 1024x700 window): four stacked
  // panels would be ~60 px tall each, so two columns, with fewer ticks on
  // the short value axes so their labels do not run together.
  auto valueTicks = [&] {
    for (QCPAxisRect* r : dock_->plot()->axisRects())
      if (r->axis(QCPAxis::atLeft)->label() == QStringLiteral("tokens/s"))
        return r->axis(QCPAxis::atLeft)->ticker()->tickCount();
    return -1;
  };
  const int tallTicks = valueTicks();
  dock_->resize(380, 420);
  QTRY_COMPARE(grid->columnCount(), 2);
  QCOMPARE(grid->rowCount(), 2);
  QVERIFY2(valueTicks() < tallTicks,
           qPrintable(QStringLiteral("%1 ticks, %2 when tall").arg(valueTicks()).arg(tallTicks)));
  dock_->resize(before);
  QTRY_COMPARE(grid->columnCount(), 2);
  QCOMPARE(grid->rowCount(), 2);
  dock_->plot()->replot();
  QCOMPARE(panelTop(QStringLiteral("ms")), panelTop(QStringLiteral("tokens/s")));
  QVERIFY(panelTop(QStringLiteral("blocks")) > panelTop(QStringLiteral("tokens/s")));
  QCOMPARE(panelTop(QStringLiteral("sequences")), panelTop(QStringLiteral("blocks")));
}

void TestTelemetry::clearEmptiesPlots() {
  QVERIFY(dock_->pointCount(QStringLiteral("KV used")) > 0);
  dock_->clear();
  for (const QString& name : dock_->seriesNames()) {
    QCOMPARE(dock_->pointCount(name), 0);
    QCOMPARE(dock_->recordedCount(name), 0);
  }
  // Recording goes on (idle samples).
  QTRY_VERIFY_WITH_TIMEOUT(dock_->pointCount(QStringLiteral("KV used")) > 0, 2000);
}

// A standalone dock after ~3 s of four requests on the demo model, with a
// 512-block cache so the block map's squares are large enough to read.
// Writes docs/screenshots/telemetry-dock.png when BRISK_UPDATE_SCREENSHOTS
// is set, a temporary file otherwise.
// A KV cache of one block reads "KV 0/1 block", not "0/1 blocks".
void TestTelemetry::oneBlockIsSingular() {
  EngineController controller;
  TelemetryDock dock(&controller);
  dock.show();
  auto* summary = dock.findChild<QLabel*>(QStringLiteral("telemetrySummary"));
  QVERIFY(summary);
  QSignalSpy loaded(&controller, &EngineController::modelLoaded);
  QSignalSpy failed(&controller, &EngineController::loadFailed);
  brisk::EngineConfig cfg;
  cfg.num_kv_blocks = 1;
  controller.loadModel(cfg);
  QTRY_VERIFY_WITH_TIMEOUT(loaded.count() + failed.count() > 0, kLoadTimeoutMs);
  if (!failed.isEmpty()) QFAIL(qPrintable(failed.first().at(0).toString()));
  QCOMPARE(controller.kvBlocksTotal(), qint64(1));
  QTRY_VERIFY2_WITH_TIMEOUT(summary->text().contains(QStringLiteral("KV 0/1 block ·")),
                            qPrintable(summary->text()), 5000);
  QVERIFY2(!summary->text().contains(QStringLiteral("blocks")), qPrintable(summary->text()));
  QVERIFY2(summary->text().contains(QStringLiteral("0 running")), qPrintable(summary->text()));
}

void TestTelemetry::screenshot() {
  EngineController controller;
  QSignalSpy loaded(&controller, &EngineController::modelLoaded);
  QSignalSpy failed(&controller, &EngineController::loadFailed);
  brisk::EngineConfig config;
  config.num_kv_blocks = 512;
  controller.loadModel(config);
  QTRY_VERIFY_WITH_TIMEOUT(loaded.count() + failed.count() > 0, kLoadTimeoutMs);
  QVERIFY(failed.isEmpty());

  TelemetryDock dock(&controller);
  dock.setWindowTitle(QStringLiteral("Telemetry — Brisk"));
  dock.resize(900, 700);
  dock.show();
  QVERIFY(QTest::qWaitForWindowExposed(&dock));
  QTest::qWait(1000);  // a little idle time before the requests arrive

  const QStringList prompts = {QStringLiteral("Once upon a time"), QStringLiteral("The quick brown fox"),
                               QStringLiteral("In a hole in the ground there lived"),
                               QStringLiteral("It was a bright cold day in April")};
  const int lengths[] = {300, 800, 1500, 1900};
  QSignalSpy finished(&controller, &EngineController::requestFinished);
  QList<quint64> ids;
  for (int i = 0; i < 4; ++i) {
    brisk::SamplingParams p;
    p.max_tokens = lengths[i];
    p.ignore_eos = true;
    ids << controller.generate(prompts[i], p);
    QVERIFY(ids.last() != 0);
    QTest::qWait(250);
  }
  // Grab once the two short requests are done (their latencies plotted,
  // their blocks freed between the others') and two still run: about 3 s
  // on a desktop CPU.
  QTRY_VERIFY_WITH_TIMEOUT(finished.count() >= 2, kGenerateTimeoutMs);
  QTest::qWait(400);
  QVERIFY(dock.pointCount(QStringLiteral("generation tok/s")) > 0);
  QVERIFY(dock.pointCount(QStringLiteral("TTFT")) >= 2);

  QTemporaryDir dir;
  const bool update = qEnvironmentVariableIsSet("BRISK_UPDATE_SCREENSHOTS");
  const QString path = update ? QStringLiteral(BRISK_SOURCE_DIR "/docs/screenshots/telemetry-dock.png")
                              : dir.filePath(QStringLiteral("telemetry-dock.png"));
  if (update) QDir().mkpath(QFileInfo(path).absolutePath());
  QVERIFY(dock.grab().save(path));
  QVERIFY(QFileInfo(path).size() > 0);
  if (update) qInfo("wrote %s", qPrintable(path));

  for (quint64 id : std::as_const(ids)) controller.stop(id);
  QTRY_COMPARE_WITH_TIMEOUT(controller.activeRequests(), 0, kGenerateTimeoutMs);
}

QTEST_MAIN(TestTelemetry)
#include "test_telemetry.moc"
