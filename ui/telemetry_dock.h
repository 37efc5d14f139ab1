// Live engine telemetry (QCustomPlot): throughput, request latency, KV
// occupancy and scheduler queues over time, plus the KV block map. Fed only
// by EngineController signals; never calls the engine.
#pragma once
#include <QDockWidget>
#include <QString>

class EngineController;
class KvBlockMap;

class TelemetryDock : public QDockWidget {
  Q_OBJECT

 public:
  explicit TelemetryDock(EngineController* controller, QWidget* parent = nullptr);

  // For tests and scripts: points held by a named series ("generation tok/s",
  // "prompt tok/s", "TTFT", "ITL", "KV used", "running", "waiting",
  // "preempted"), and the block map widget.
  int pointCount(const QString& series) const;
  KvBlockMap* blockMap() const;
  bool isPaused() const;

 public Q_SLOTS:
  void setPaused(bool paused);
  // Saves every plot into one file; the format follows the extension
  // (.png, .svg, .pdf). Returns false (and says why in errorString()) on failure.
  bool savePlots(const QString& path);
  void clear();

 public:
  QString errorString() const;
};
