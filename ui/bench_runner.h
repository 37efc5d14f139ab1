// Runs a benchmark matrix (brisk::run_matrix) on a worker thread and turns
// its callbacks into GUI-thread signals: progress at most every
// kProgressIntervalMs (and at each phase or run change, with the steps of
// the skipped reports merged in), each finished run, and the end.
#pragma once
#include <QObject>
#include <QString>
#include <memory>
#include <vector>

#include "brisk/bench_matrix.h"
#include "metatypes.h"  // before moc sees the brisk types in signals

class QThread;

class BenchRunner : public QObject {
  Q_OBJECT

 public:
  static constexpr int kProgressIntervalMs = 100;

  explicit BenchRunner(QObject* parent = nullptr);
  ~BenchRunner() override;  // stops a matrix in flight and waits for its thread

  bool isRunning() const { return job_ != nullptr; }
  // Whether the last matrix ended because stop() was called.
  bool wasStopped() const { return stopped_; }
  // The runs of the last matrix that finished (all of them, or those done
  // before a stop), in execution order.
  const std::vector<brisk::BenchResult>& results() const { return results_; }
  QString errorString() const { return error_; }

 public Q_SLOTS:
  // Checks the matrix (expand_matrix) and starts it on a worker thread;
  // false, with failed() emitted, when it is invalid or a matrix is already
  // running. The worker reads and checks every run's prompt datasets, traces
  // and quality files before the first run (run_matrix): a bad one ends the
  // matrix with failed() and no result, without blocking the window.
  bool start(const brisk::MatrixSpec& matrix, const brisk::WorkloadSpec& workload);
  // Ends the matrix after the engine's current step; the run in progress is dropped.
  void stop();

 Q_SIGNALS:
  void started(int runs);
  void progress(const brisk::MatrixProgress& progress);
  void resultReady(const brisk::BenchResult& result);
  void failed(const QString& error);
  void finished();

 private:
  struct Job;
  void onDone(const std::shared_ptr<Job>& job);

  std::shared_ptr<Job> job_;
  QThread* thread_ = nullptr;
  std::vector<brisk::BenchResult> results_;
  bool stopped_ = false;
  QString error_;
};
