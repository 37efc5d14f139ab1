// The Benchmark view: a workload (WorkloadEditor) × a matrix of engine
// configurations (MatrixBuilder, over the window's engine settings), Run
// and Stop, a progress bar with the current run and the ETA, live plots of
// the current run (generation and prompt tokens/s, KV occupancy over time)
// and the runs finished so far; the model the runs load is named above them.
// Failed runs are counted on the bar and their reasons listed, never read as
// "done". A matrix that completes is saved to the
// results store and announced with matrixCompleted (the window opens it in
// the Compare view); a stopped one saves the runs that finished.
#pragma once
#include <QString>
#include <QWidget>
#include <deque>
#include <functional>
#include <vector>

#include "brisk/bench_matrix.h"
#include "metatypes.h"  // before moc sees the brisk types in signals

class BenchRunner;
class MatrixBuilder;
class QCPAxisRect;
class QCPGraph;
class QCustomPlot;
class QLabel;
class QListWidget;
class QProgressBar;
class QPushButton;
class ResultsStore;
class WorkloadEditor;

class BenchmarkView : public QWidget {
  Q_OBJECT

 public:
  explicit BenchmarkView(ResultsStore* store, QWidget* parent = nullptr);

  // Where the base engine configuration comes from (the engine settings panel).
  void setBaseConfigSource(std::function<brisk::EngineConfig()> source);

  WorkloadEditor* workloadEditor() const { return workload_; }
  MatrixBuilder* matrixBuilder() const { return matrix_; }
  BenchRunner* runner() const { return runner_; }
  QPushButton* runButton() const { return run_; }
  QPushButton* stopButton() const { return stop_; }
  QProgressBar* progressBar() const { return progress_; }
  QCustomPlot* livePlot() const { return plot_; }
  QListWidget* finishedList() const { return finished_; }
  QString messageText() const;
  bool isRunning() const;
  // Points in the live plots' series ("generation tok/s", "prompt tok/s",
  // "KV occupancy"); -1 for an unknown name.
  int livePointCount(const QString& series) const;
  // The results file the last matrix was saved to (empty: none yet).
  QString lastSavedPath() const { return lastSaved_; }
  // The model(s) the matrix runs, as the view names them: "the demo model", "model.gguf".
  QString modelText() const;
  // "run 3/8 · f16 · static r1 · ETA 0:35"
  static QString progressText(const brisk::MatrixProgress& p);

 public Q_SLOTS:
  void requestRun();
  void requestStop();

 Q_SIGNALS:
  void runningChanged(bool running);
  // A matrix ran to its end, not every run failed, and its results were saved to `path`.
  void matrixCompleted(const QString& path);

 private:
  QCPAxisRect* addPanel(const QString& title, const QString& yLabel);
  QCPGraph* addGraph(QCPAxisRect* rect, const QString& name, const QColor& color);
  void updateRunEnabled();
  void resetLive();
  void plotSteps(const std::vector<brisk::StepMetrics>& steps);
  void onStarted(int runs);
  void onProgress(const brisk::MatrixProgress& p);
  void onResult(const brisk::BenchResult& r);
  void onFinished();
  void onFailed(const QString& error);
  void showMessage(const QString& text, bool error = false);
  // How the last matrix ended, as the bar shows it: "done", "partial" (some
  // runs failed), "failed" (every run, or before the first), "stopped", "" idle/running.
  void setOutcome(const QString& outcome);
  void showEvent(QShowEvent* event) override;

  ResultsStore* store_;
  BenchRunner* runner_;
  WorkloadEditor* workload_;
  MatrixBuilder* matrix_;
  QPushButton* run_;
  QPushButton* stop_;
  QProgressBar* progress_;
  QLabel* message_;
  QLabel* model_;
  bool specErrorShown_ = false;  // message_ holds why the matrix could not start
  QCustomPlot* plot_;
  QCPAxisRect* rateRect_ = nullptr;
  QCPAxisRect* kvRect_ = nullptr;
  QCPGraph* gen_ = nullptr;
  QCPGraph* prompt_ = nullptr;
  QCPGraph* kv_ = nullptr;
  QLabel* liveTitle_;
  QListWidget* finished_;
  QString lastSaved_;
  QString runName_;

  // Live-plot state of the current run (its engine's clock).
  struct StepSample {
    double end;
    int prefill, decode;
  };
  int liveRun_ = -1;
  double t0_ = -1, lastSampleT_ = -1;
  std::deque<StepSample> window_;
  double windowPrefill_ = 0, windowDecode_ = 0;
};
