// Scripted run of the window for README screenshots and smoke tests: wait
// for the model, show a view, optionally run the prompt there (playground
// completion or chat, A/B on both sides, or a short workload that feeds the
// telemetry dock), grab the window into a PNG, then finish. A deadline
// bounds the whole run.
#pragma once
#include <QObject>
#include <QString>
#include <QTimer>

#include "brisk/request_output.h"
#include "generation_stats.h"
#include "metatypes.h"  // before moc sees the brisk types in signals

class MainWindow;

class ScreenshotRunner : public QObject {
  Q_OBJECT

 public:
  enum class View { Playground, Chat, AB, Settings, Telemetry, Benchmark, Compare, Tokens, Reports = Compare };
  struct Options {
    QString screenshot;   // PNG to write; empty: none
    QString prompt;       // empty: grab right after loading
    int maxTokens = 0;    // > 0 overrides the view's value
    int deadlineMs = 0;   // > 0: finish then, grabbing what is on screen
    View view = View::Playground;
    int workloadMs = 6000;  // Telemetry: how long the workload runs before the grab
  };
  // "playground", "chat", "ab", "settings", "telemetry", "benchmark"
  // (a two-configuration matrix on the loaded model, grabbed while its last
  // run is half done), "compare" or "reports" (the same matrix, grabbed in
  // the Compare view once it finished), "tokens"; false for others.
  static bool parseView(const QString& name, View* view);

  ScreenshotRunner(MainWindow* window, Options options, QObject* parent = nullptr);

  // Call before the model load starts.
  void start();

 Q_SIGNALS:
  // 0: everything happened; 1: the model did not load, the screenshot could
  // not be written or the deadline came first.
  void finished(int exitCode);

 private:
  void onLoaded();
  void startMatrix();
  void onRequestFinished(quint64 id, brisk::FinishReason reason, const GenerationStats& stats);
  void submitWorkloadRequest(int maxTokens);
  void submitBurst();
  void maybeFinish();
  void finish(int exitCode, const QString& why);
  bool grab();
  void showTokenHover();

  MainWindow* window_;
  Options options_;
  QTimer deadline_;
  QTimer workload_;
  quint64 request_ = 0;
  bool requestDone_ = false;
  bool workloadDone_ = true;
  bool hoverShown_ = false;  // Tokens: a chip's tooltip is up; grab the screen
  bool grabBusy_ = false;  // Telemetry: grab while the last requests run
  int workloadCount_ = 0;
  bool loaded_ = false;
  bool done_ = false;
};
