#include "screenshot_runner.h"

#include <QDir>
#include <QFileInfo>
#include <QPixmap>
#include <cstdio>

#include "engine_controller.h"
#include "main_window.h"
#include "playground_view.h"

ScreenshotRunner::ScreenshotRunner(MainWindow* window, Options options, QObject* parent)
    : QObject(parent), window_(window), options_(std::move(options)) {
  deadline_.setSingleShot(true);
  connect(&deadline_, &QTimer::timeout, this, [this] {
    if (options_.screenshot.isEmpty()) {
      finish(0, {});  // plain --quit-after-ms: nothing was asked to finish
      return;
    }
    grab();
    finish(1, QStringLiteral("the deadline (--quit-after-ms %1) came before the run finished")
                  .arg(options_.deadlineMs));
  });
}

void ScreenshotRunner::start() {
  EngineController* c = window_->controller();
  connect(c, &EngineController::modelLoaded, this, &ScreenshotRunner::onLoaded);
  connect(c, &EngineController::loadFailed, this,
          [this](const QString& error) { finish(1, QStringLiteral("could not load the model: ") + error); });
  connect(c, &EngineController::requestFinished, this, &ScreenshotRunner::onRequestFinished);
  if (options_.deadlineMs > 0) deadline_.start(options_.deadlineMs);
}

void ScreenshotRunner::onLoaded() {
  if (done_) return;
  if (options_.prompt.isEmpty()) {
    if (options_.screenshot.isEmpty()) return;  // wait for the deadline, if any
    // Let the window lay out the model panel before grabbing.
    QTimer::singleShot(200, this, [this] { finish(grab() ? 0 : 1, {}); });
    return;
  }
  PlaygroundView* view = window_->playground();
  view->setPrompt(options_.prompt);
  if (options_.maxTokens > 0) {
    brisk::SamplingParams p = view->params();
    p.max_tokens = options_.maxTokens;
    view->setParams(p);
  }
  view->requestGenerate();
  request_ = window_->currentRequest();
  if (!request_) finish(1, QStringLiteral("the playground did not start a request"));
}

void ScreenshotRunner::onRequestFinished(quint64 id, brisk::FinishReason reason,
                                         const GenerationStats& stats) {
  if (done_ || id != request_) return;
  if (reason == brisk::FinishReason::Error) {
    grab();
    finish(1, QStringLiteral("generation failed: ") + stats.error);
    return;
  }
  if (options_.screenshot.isEmpty()) {
    finish(0, {});
    return;
  }
  // One more metrics tick so the status bar shows the final numbers.
  QTimer::singleShot(150, this, [this] { finish(grab() ? 0 : 1, {}); });
}

bool ScreenshotRunner::grab() {
  if (options_.screenshot.isEmpty()) return true;
  QDir().mkpath(QFileInfo(options_.screenshot).absolutePath());
  const QPixmap shot = window_->grab();
  if (shot.isNull() || !shot.save(options_.screenshot, "PNG")) {
    std::fprintf(stderr, "brisk: could not write the screenshot %s\n",
                 options_.screenshot.toLocal8Bit().constData());
    return false;
  }
  std::fprintf(stderr, "brisk: wrote %s (%dx%d)\n", options_.screenshot.toLocal8Bit().constData(),
               shot.width(), shot.height());
  return true;
}

void ScreenshotRunner::finish(int exitCode, const QString& why) {
  if (done_) return;
  done_ = true;
  deadline_.stop();
  if (!why.isEmpty()) std::fprintf(stderr, "brisk: %s\n", why.toLocal8Bit().constData());
  Q_EMIT finished(exitCode);
}
