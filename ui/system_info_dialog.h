// Help ▸ System information: what `brisk-cli sysinfo` prints, in the window.
// The machine (CPU, cores, caches, memory, SIMD features, the kernels' ISA),
// its measured ceilings (read bandwidth, FMA peak) when known, the backends
// (available, or why not) and each CUDA device (name, memory, SMs, driver,
// native precisions, device bandwidth and F16/FP8 GEMM throughput).
// Describing is quick; measuring takes seconds, so it runs on a worker
// thread when asked for, and is cached as the CLI caches it.
#pragma once
#include <QDialog>
#include <QString>
#include <functional>

#include "brisk/sysinfo.h"

class QLabel;
class QPushButton;
class QTextBrowser;

// The record as one HTML page (tables); pure, for the dialog and its tests.
QString systemInfoHtml(const brisk::SystemInfo& info);

class SystemInfoDialog : public QDialog {
  Q_OBJECT
 public:
  explicit SystemInfoDialog(QWidget* parent = nullptr);
  ~SystemInfoDialog() override;

  // What the dialog shows now (empty until the first probe has answered).
  const brisk::SystemInfo& info() const { return info_; }
  bool busy() const { return busy_; }
  // Why measuring would give wrong figures now ("a benchmark is running"),
  // or empty: a measurement under load reads low and is cached for every
  // later report, so Measure refuses while this says something.
  void setMeasureBlocker(std::function<QString()> blocker) { blocker_ = std::move(blocker); }

 public Q_SLOTS:
  void measure();  // measure (or recall) the ceilings of the CPU and every CUDA device

 Q_SIGNALS:
  void probed();  // info() changed

 private:
  void probe(bool measure);
  void display(const brisk::SystemInfo& info);

  brisk::SystemInfo info_;
  bool busy_ = false;
  QTextBrowser* text_;
  QLabel* status_;
  QPushButton* measure_;
  QPushButton* copy_;
  QThread* worker_ = nullptr;
  std::function<QString()> blocker_;
};
