// Live engine telemetry (QCustomPlot): throughput, request latency, KV
// occupancy and scheduler queues over time, plus the KV block map. Fed only
// by EngineController signals; never calls the engine.
//
// Points are sampled from the engine's steps (at most every 50 ms of engine
// time, rates over a rolling 1 s window) and, while the engine is idle, at
// the poll rate so the lines fall back to zero. The x axis is the engine
// clock in seconds; a new model starts a new clock, so loading one clears
// the plots. The view slides over the last 60 s unless paused or moved by
// the user (drag/wheel: horizontal pan/zoom; double-click or Follow: back
// to the live edge). Points older than 10 minutes are dropped.
#pragma once
#include <QDockWidget>
#include <QPointF>
#include <QString>
#include <QStringList>
#include <QVector>
#include <deque>

#include "brisk/engine.h"
#include "brisk/metrics.h"
#include "generation_stats.h"

class EngineController;
class KvBlockMap;
class QAction;
class QCPAxisRect;
class QCPGraph;
class QCustomPlot;
class QLabel;

class TelemetryDock : public QDockWidget {
  Q_OBJECT

 public:
  static constexpr double kWindowSeconds = 60;    // the sliding view
  static constexpr double kMinSpanSeconds = 5;    // until 60 s are recorded, the view grows from this
  static constexpr double kKeepSeconds = 600;     // older points are dropped
  static constexpr double kSampleSeconds = 0.05;  // finest spacing of step samples
  static constexpr double kRateWindowSeconds = 1; // tokens/s are averaged over this
  static constexpr int kTwoColumnWidth = 420;     // narrower plots stack the panels in one column,
  static constexpr int kMinPanelHeight = 110;     // unless a quarter of the height is less than this

  explicit TelemetryDock(EngineController* controller, QWidget* parent = nullptr);
  ~TelemetryDock() override;

  // For tests and scripts: points held by a named series ("generation tok/s",
  // "prompt tok/s", "TTFT", "ITL", "KV used", "running", "waiting",
  // "preempted"), and the block map widget.
  int pointCount(const QString& series) const;
  KvBlockMap* blockMap() const;
  bool isPaused() const;

  // pointCount counts the points plotted; recordedCount adds those recorded
  // while paused and not plotted yet. -1 for an unknown series.
  int recordedCount(const QString& series) const;
  QStringList seriesNames() const;  // the names above plus "KV total"
  // The plotted points of a series as (time s, value); empty if unknown.
  QVector<QPointF> points(const QString& series) const;
  // Whether the view follows the live edge (off after a drag or zoom).
  bool isFollowing() const;
  QCustomPlot* plot() const;

 public Q_SLOTS:
  void setPaused(bool paused);
  void setFollowing(bool following);
  // Saves every plot into one file; the format follows the extension
  // (.png, .svg, .pdf). Returns false (and says why in errorString()) on failure.
  bool savePlots(const QString& path);
  // Asks for a file name (non-blocking dialog) and saves the plots there.
  void savePlotsAs();
  void clear();

 Q_SIGNALS:
  void pausedChanged(bool paused);

 public:
  QString errorString() const;

 protected:
  void showEvent(QShowEvent* e) override;
  bool eventFilter(QObject* watched, QEvent* e) override;  // the plot's resizes

 private:
  struct Series;
  struct StepSample {
    double end;
    int prefill, decode;
  };

  QCPAxisRect* addPanel(const QString& title, const QString& yLabel);
  Series& addSeries(const QString& name, QCPAxisRect* rect, const QColor& color, int style);
  Series* find(const QString& name);
  const Series* find(const QString& name) const;
  void record(Series& s, double t, double value);
  void sample(double t, int running, int waiting, qint64 kvUsed, qint64 kvTotal);

  void onModelLoaded();
  void onSteps(const QVector<brisk::StepMetrics>& steps);
  void onKvBlocks(const QVector<brisk::KvBlockState>& blocks);
  void onMetrics(const brisk::MetricsSnapshot& snapshot);
  void onRequestFinished(quint64 id, brisk::FinishReason reason, const GenerationStats& stats);
  // Moves recorded points into the plots, slides and rescales, and queues a
  // replot; a no-op while paused.
  void refresh();
  void rescaleValueAxes();
  // The share of a panel's height, from its top, that its legend covers.
  double legendShare(QCPAxisRect* rect) const;
  void updateSummary();
  double now() const;

  EngineController* controller_;
  QCustomPlot* plot_ = nullptr;
  KvBlockMap* blockMap_ = nullptr;
  QLabel* summary_ = nullptr;
  QAction* pauseAction_ = nullptr;
  QAction* followAction_ = nullptr;
  QVector<QCPAxisRect*> panels_;  // throughput, latency, KV, scheduler
  std::vector<Series*> series_;
  Series *gen_, *prompt_, *ttft_, *itl_, *kvUsed_, *kvTotalSeries_, *running_, *waiting_, *preempted_;

  bool paused_ = false;
  bool following_ = true;
  bool syncingAxes_ = false;
  QString error_;

  // Sampling state (engine clock).
  std::deque<StepSample> rateWindow_;
  double windowPrefill_ = 0, windowDecode_ = 0;
  double lastSampleT_ = -1, lastStepEnd_ = -1, lastT_ = 0;
  double firstT_ = -1;  // the first point since the last clear
  int preemptedSinceSample_ = 0;
  int lastRunning_ = 0, lastWaiting_ = 0;
  qint64 kvTotal_ = 0;
  QVector<brisk::KvBlockState> heldBlocks_;  // the latest map, shown on resume
  bool blocksHeld_ = false;
};
