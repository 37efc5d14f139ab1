#include "screenshot_runner.h"

#include <QDir>
#include <QDockWidget>
#include <QFileInfo>
#include <QLineEdit>
#include <QPixmap>
#include <QCoreApplication>
#include <QCursor>
#include <QHelpEvent>
#include <QScreen>
#include <QTextCursor>
#include <QToolTip>
#include <QSpinBox>
#include <cstdio>

#include "ab_session.h"
#include <QCheckBox>

#include "ab_view.h"
#include "bench_runner.h"
#include "benchmark_view.h"
#include "engine_controller.h"
#include "main_window.h"
#include "matrix_builder.h"
#include "playground_view.h"
#include "sampling_form.h"
#include "telemetry_dock.h"
#include "token_view.h"
#include "workload_editor.h"

bool ScreenshotRunner::parseView(const QString& name, View* view) {
  static const QList<QPair<QString, View>> kViews{{QStringLiteral("playground"), View::Playground},
                                                  {QStringLiteral("chat"), View::Chat},
                                                  {QStringLiteral("ab"), View::AB},
                                                  {QStringLiteral("settings"), View::Settings},
                                                  {QStringLiteral("telemetry"), View::Telemetry},
                                                  {QStringLiteral("benchmark"), View::Benchmark},
                                                  {QStringLiteral("compare"), View::Compare},
                                                  {QStringLiteral("reports"), View::Compare},
                                                  {QStringLiteral("tokens"), View::Tokens}};
  for (const auto& [n, v] : kViews)
    if (name.compare(n, Qt::CaseInsensitive) == 0) {
      *view = v;
      return true;
    }
  return false;
}

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
  workload_.setInterval(250);
  connect(&workload_, &QTimer::timeout, this, &ScreenshotRunner::submitBurst);
}

void ScreenshotRunner::start() {
  EngineController* c = window_->controller();
  connect(c, &EngineController::modelLoaded, this, &ScreenshotRunner::onLoaded);
  connect(c, &EngineController::loadFailed, this,
          [this](const QString& error) { finish(1, QStringLiteral("could not load the model: ") + error); });
  connect(c, &EngineController::requestFinished, this, &ScreenshotRunner::onRequestFinished);
  connect(window_->abSession(), &ABSession::finished, this, [this] {
    if (options_.view != View::AB || done_) return;
    requestDone_ = true;
    maybeFinish();
  });
  if (options_.deadlineMs > 0) deadline_.start(options_.deadlineMs);
}

void ScreenshotRunner::onLoaded() {
  if (done_ || loaded_) return;
  loaded_ = true;
  switch (options_.view) {
    case View::Playground: window_->setCurrentView(MainWindow::View::Playground); break;
    case View::Chat:
      window_->setCurrentView(MainWindow::View::Playground);
      window_->playground()->setMode(PlaygroundView::Mode::Chat);
      break;
    case View::AB: window_->setCurrentView(MainWindow::View::AB); break;
    case View::Settings:
      window_->setCurrentView(MainWindow::View::Playground);
      window_->showEngineSettings();
      break;
    case View::Telemetry:
      window_->setCurrentView(MainWindow::View::Playground);
      window_->telemetryDock()->raise();  // a tab of the left column in a narrow window
      break;
    case View::Benchmark: window_->setCurrentView(MainWindow::View::Benchmark); break;
    case View::Compare: window_->setCurrentView(MainWindow::View::Benchmark); break;
    case View::Tokens:  // the playground with token chips, tinted by probability
      window_->setCurrentView(MainWindow::View::Playground);
      if (auto* box = window_->findChild<QCheckBox*>(QStringLiteral("showTokens"))) box->setChecked(true);
      break;
  }
  if (options_.view == View::Benchmark || options_.view == View::Compare) {
    // The views carry their own plots: the docks would only squeeze them.
    for (QDockWidget* d : {window_->modelDock(), window_->settingsDock(),
                           static_cast<QDockWidget*>(window_->telemetryDock())})
      d->hide();
    startMatrix();
    return;
  }
  if (options_.prompt.isEmpty()) {
    if (options_.screenshot.isEmpty()) return;  // wait for the deadline, if any
    // Let the window lay out the panels before grabbing.
    QTimer::singleShot(300, this, [this] { finish(grab() ? 0 : 1, {}); });
    return;
  }
  if (options_.view == View::AB) {
    ABView* ab = window_->abView();
    ab->setPrompt(options_.prompt);
    if (options_.maxTokens > 0)
      for (auto side : {ABSession::A, ABSession::B}) {
        ABSession::SideConfig c = ab->sideConfig(side);
        c.params.max_tokens = options_.maxTokens;
        ab->setSideConfig(side, c);
      }
    ab->requestRun();
    if (!window_->abSession()->isRunning()) finish(1, QStringLiteral("the A/B view did not start a run"));
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
  if (!request_) {
    finish(1, QStringLiteral("the playground did not start a request"));
    return;
  }
  if (options_.view == View::Telemetry) {
    // A short workload beside the playground's request, so the plots and the
    // block map show the engine busy with several requests.
    workloadDone_ = false;
    submitBurst();
    workload_.start();
    QTimer::singleShot(options_.workloadMs, this, [this] {
      workload_.stop();
      // End on a busy engine: long requests still running when the window
      // is grabbed fill the block map.
      for (int i = 0; i < 6; ++i) submitWorkloadRequest(1500);
      QTimer::singleShot(150, this, [this] {
        workloadDone_ = true;
        grabBusy_ = true;
        maybeFinish();
      });
    });
  }
}

void ScreenshotRunner::startMatrix() {
  // Two configurations of the loaded model on a short Poisson workload:
  // long enough for the live plots to draw, short enough for a scripted run.
  BenchmarkView* bench = window_->benchmarkView();
  brisk::WorkloadSpec w;
  w.name = "screenshot";
  w.num_requests = 24;
  w.arrival = "poisson";
  w.rate = 12;
  w.prompt_len = brisk::LengthDist::parse("uniform:16:96");
  w.output_len = brisk::LengthDist::parse("uniform:32:128");
  w.seed = 7;
  bench->workloadEditor()->setWorkload(w);
  MatrixBuilder* m = bench->matrixBuilder();
  m->clearAxes();
  m->addAxis(QStringLiteral("policy"), QStringLiteral("static, continuous"));
  m->repeatsSpin()->setValue(1);
  m->warmupSpin()->setValue(2);
  m->nameEdit()->setText(QStringLiteral("static vs continuous"));
  connect(bench->runner(), &BenchRunner::progress, this, [this](const brisk::MatrixProgress& p) {
    if (done_ || options_.view != View::Benchmark) return;
    // Mid-run: the last run half done, its plots and the first run's row showing.
    if (p.run == p.runs - 1 && p.phase == "running" && p.requests_total > 0 &&
        p.requests_done * 2 >= p.requests_total)
      finish(grab() ? 0 : 1, {});
  });
  connect(bench, &BenchmarkView::matrixCompleted, this, [this] {
    if (done_) return;
    // The window has opened the results in the Compare view.
    QTimer::singleShot(600, this, [this] { finish(grab() ? 0 : 1, {}); });
  });
  connect(bench->runner(), &BenchRunner::finished, this, [this, bench] {
    if (!done_ && bench->runner()->wasStopped())
      finish(1, QStringLiteral("the matrix was stopped"));
    else if (!done_ && !bench->runner()->errorString().isEmpty())
      finish(1, QStringLiteral("the matrix failed: ") + bench->runner()->errorString());
  });
  bench->requestRun();
  if (!bench->isRunning())
    finish(1, QStringLiteral("the Benchmark view did not start: ") + bench->messageText());
}

void ScreenshotRunner::submitWorkloadRequest(int maxTokens) {
  brisk::SamplingParams p = SamplingForm::defaults();
  p.max_tokens = maxTokens;
  p.ignore_eos = true;
  p.seed = uint64_t(++workloadCount_);
  window_->controller()->generate(options_.prompt, p);
}

void ScreenshotRunner::submitBurst() {
  // A few requests of different lengths at once, every tick: the scheduler
  // batches them, so the plots show several running sequences.
  static const int kLengths[] = {160, 320, 96, 256, 192, 448, 128, 384};
  const int n = 2 + workloadCount_ % 3;
  for (int i = 0; i < n; ++i) submitWorkloadRequest(kLengths[(workloadCount_ + i) % 8]);
}

void ScreenshotRunner::onRequestFinished(quint64 id, brisk::FinishReason reason,
                                         const GenerationStats& stats) {
  if (done_ || id != request_) return;
  if (reason == brisk::FinishReason::Error) {
    grab();
    finish(1, QStringLiteral("generation failed: ") + stats.error);
    return;
  }
  requestDone_ = true;
  maybeFinish();
}

void ScreenshotRunner::maybeFinish() {
  if (done_ || !requestDone_ || !workloadDone_) return;
  if (options_.screenshot.isEmpty()) {
    finish(0, {});
    return;
  }
  if (grabBusy_) {
    finish(grab() ? 0 : 1, {});
    return;
  }
  if (options_.view == View::Tokens) showTokenHover();
  // A few metrics ticks so the status bar and the telemetry show the final numbers.
  QTimer::singleShot(options_.view == View::Tokens ? 800 : 400, this, [this] { finish(grab() ? 0 : 1, {}); });
}

void ScreenshotRunner::showTokenHover() {
  // Hover the chip where the model hesitated most (the lowest probability
  // among the first lines), as a user would to see the alternatives.
  auto* playground = window_->findChild<PlaygroundView*>();
  TokenView* view = playground ? playground->outputView() : nullptr;
  if (!view) return;
  view->flush();
  int pick = -1;
  for (int i = 0; i < std::min(view->chunkCount(), 24); ++i)
    if (!view->chunkAlternatives(i).isEmpty() &&
        (pick < 0 || view->chunkProbability(i) < view->chunkProbability(pick)))
      pick = i;
  if (pick < 0) return;
  int pos = 0;
  for (int i = 0; i < pick; ++i) pos += int(view->chunks()[i].size());
  QTextCursor c(view->document());
  c.setPosition(pos + 1);
  const QRect r = view->cursorRect(c);
  // Put the pointer on the chip and ask the view for its tooltip, as a hover does.
  const QPoint at = r.center() + QPoint(2, 0);
  QCursor::setPos(view->viewport()->mapToGlobal(at));
  QHelpEvent help(QEvent::ToolTip, at, view->viewport()->mapToGlobal(at));
  QCoreApplication::sendEvent(view->viewport(), &help);
  if (!QToolTip::isVisible())
    QToolTip::showText(view->viewport()->mapToGlobal(at), view->chunkToolTip(pick), view->viewport());
  hoverShown_ = QToolTip::isVisible();
  std::fprintf(stderr, "brisk: hovering token %d (tooltip %s)\n", pick + 1, hoverShown_ ? "shown" : "not shown");
}

bool ScreenshotRunner::grab() {
  if (options_.screenshot.isEmpty()) return true;
  QDir().mkpath(QFileInfo(options_.screenshot).absolutePath());
  // A tooltip is a window of its own: take it from the screen with the window.
  const QPixmap shot = hoverShown_ ? window_->screen()->grabWindow(0, window_->frameGeometry().x(),
                                                                   window_->frameGeometry().y(), window_->width(),
                                                                   window_->height())
                                   : window_->grab();
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
  workload_.stop();
  if (!why.isEmpty()) std::fprintf(stderr, "brisk: %s\n", why.toLocal8Bit().constData());
  Q_EMIT finished(exitCode);
}
