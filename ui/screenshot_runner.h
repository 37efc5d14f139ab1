// Scripted run of the window for README screenshots and the smoke test:
// wait for the model, optionally generate a completion of a prompt, grab
// the window into a PNG, then finish. A deadline bounds the whole run.
#pragma once
#include <QObject>
#include <QString>
#include <QTimer>

#include "brisk/request_output.h"
#include "generation_stats.h"

class MainWindow;

class ScreenshotRunner : public QObject {
  Q_OBJECT

 public:
  struct Options {
    QString screenshot;   // PNG to write; empty: none
    QString prompt;       // empty: grab right after loading
    int maxTokens = 0;    // > 0 overrides the playground's value
    int deadlineMs = 0;   // > 0: finish then, grabbing what is on screen
  };

  ScreenshotRunner(MainWindow* window, Options options, QObject* parent = nullptr);

  // Call before the model load starts.
  void start();

 Q_SIGNALS:
  // 0: everything happened; 1: the model did not load, the screenshot could
  // not be written or the deadline came first.
  void finished(int exitCode);

 private:
  void onLoaded();
  void onRequestFinished(quint64 id, brisk::FinishReason reason, const GenerationStats& stats);
  void finish(int exitCode, const QString& why);
  bool grab();

  MainWindow* window_;
  Options options_;
  QTimer deadline_;
  quint64 request_ = 0;
  bool done_ = false;
};
