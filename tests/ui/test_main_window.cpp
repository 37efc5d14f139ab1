// The window end to end on the built-in demo model: load through the
// EngineController, stream a greedy completion into the playground, survive
// a failed load, cancel a load, stop a request, and the scripted screenshot run.
#include <QFileInfo>
#include <QImage>
#include <QLabel>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QtTest>

#include "brisk/model_info.h"
#include "ui/engine_controller.h"
#include "ui/main_window.h"
#include "ui/model_panel.h"
#include "ui/playground_view.h"
#include "ui/screenshot_runner.h"

namespace {
constexpr int kLoadTimeoutMs = 60000;
constexpr int kGenerateTimeoutMs = 60000;
}  // namespace

class TestMainWindow : public QObject {
  Q_OBJECT

 private:
  struct Run {
    quint64 id = 0;
    QString streamed;  // concatenation of tokenReceived chunks
    int chunks = 0;
    brisk::FinishReason reason = brisk::FinishReason::None;
    GenerationStats stats;
  };
  // Generates through the playground (as a click on Generate does) and
  // waits for the request to finish.
  Run generate(const QString& prompt, int maxTokens, bool ignoreEos = true);

  MainWindow* window_ = nullptr;
  brisk::ModelInfo demoInfo_;

 private Q_SLOTS:
  void initTestCase();
  void cleanupTestCase();
  void loadsDemoModel();
  void streamsGreedyCompletion();
  void greedyIsDeterministic();
  void ctrlReturnGenerates();
  void failedLoadKeepsPreviousModel();
  void cancelledLoadIsDiscarded();
  void stopAbortsRequest();
  void loadsRealModel();
  void screenshotRun();
};

void TestMainWindow::initTestCase() {
  QStandardPaths::setTestModeEnabled(true);  // never touch the user's settings
  window_ = new MainWindow(/*persistState=*/false);
  window_->show();
  QVERIFY(QTest::qWaitForWindowExposed(window_));
  QVERIFY(!window_->playground()->generateButton()->isEnabled());  // no model yet
}

void TestMainWindow::cleanupTestCase() {
  delete window_;
  window_ = nullptr;
}

TestMainWindow::Run TestMainWindow::generate(const QString& prompt, int maxTokens, bool ignoreEos) {
  Run run;
  PlaygroundView* view = window_->playground();
  EngineController* c = window_->controller();
  QSignalSpy tokens(c, &EngineController::tokenReceived);
  QSignalSpy finished(c, &EngineController::requestFinished);

  view->setPrompt(prompt);
  brisk::SamplingParams p = view->params();
  p.max_tokens = maxTokens;
  p.temperature = 0.0f;
  p.ignore_eos = ignoreEos;
  view->setParams(p);
  if (!view->generateButton()->isEnabled()) {
    qWarning("Generate is disabled");
    return run;
  }
  QTest::mouseClick(view->generateButton(), Qt::LeftButton);
  run.id = window_->currentRequest();
  if (run.id == 0) {
    qWarning("clicking Generate started no request");
    return run;
  }
  if (!QTest::qWaitFor([&] { return finished.count() > 0; }, kGenerateTimeoutMs)) {
    qWarning("request %llu did not finish within %d ms", run.id, kGenerateTimeoutMs);
    return run;
  }
  for (const auto& args : tokens) {
    if (args.at(0).value<quint64>() != run.id) continue;
    run.streamed += args.at(1).toString();
    ++run.chunks;
  }
  const auto& args = finished.first();
  if (args.at(0).value<quint64>() != run.id) qWarning("a different request finished");
  run.reason = args.at(1).value<brisk::FinishReason>();
  run.stats = args.at(2).value<GenerationStats>();
  return run;
}

void TestMainWindow::loadsDemoModel() {
  EngineController* c = window_->controller();
  QSignalSpy loaded(c, &EngineController::modelLoaded);
  QSignalSpy failed(c, &EngineController::loadFailed);
  QSignalSpy metrics(c, &EngineController::metricsUpdated);
  window_->loadDemoModel();
  QVERIFY(c->isLoading());
  QTRY_VERIFY_WITH_TIMEOUT(loaded.count() + failed.count() > 0, kLoadTimeoutMs);
  if (!failed.isEmpty()) QFAIL(qPrintable("loading the demo model failed: " + failed.first().at(0).toString()));
  QCOMPARE(loaded.count(), 1);
  QVERIFY(!c->isLoading());
  QVERIFY(c->hasModel());

  demoInfo_ = loaded.first().at(0).value<brisk::ModelInfo>();
  QVERIFY(demoInfo_.synthetic);
  QVERIFY(!demoInfo_.name.empty());
  QCOMPARE(demoInfo_.format, std::string("demo"));

  ModelPanel* panel = window_->modelPanel();
  QCOMPARE(panel->modelName(), QString::fromStdString(demoInfo_.name));
  QVERIFY(panel->syntheticNoteShown());
  auto* note = panel->findChild<QLabel*>(QStringLiteral("syntheticNote"));
  QVERIFY(note);
  QVERIFY(note->isVisible());
  QVERIFY(note->text().contains(QStringLiteral("gibberish")));
  QVERIFY(window_->windowTitle().contains(QString::fromStdString(demoInfo_.name)));
  QVERIFY(window_->playground()->generateButton()->isEnabled());

  // The 10 Hz metrics poll reaches the status bar.
  QTRY_VERIFY_WITH_TIMEOUT(metrics.count() > 0, 2000);
  const auto snap = metrics.last().at(0).value<brisk::MetricsSnapshot>();
  QVERIFY(snap.kv_blocks_total > 0);
  QTRY_COMPARE(window_->kvUsageText(), QStringLiteral("KV %1/%2 blocks")
                                           .arg(snap.kv_blocks_used)
                                           .arg(snap.kv_blocks_total));
}

void TestMainWindow::streamsGreedyCompletion() {
  QVERIFY(window_->controller()->hasModel());
  const Run run = generate(QStringLiteral("Once upon a time"), 8);
  QVERIFY(run.id != 0);
  QVERIFY2(run.chunks > 0, "tokenReceived never fired");
  QCOMPARE(run.reason, brisk::FinishReason::Length);
  QCOMPARE(run.stats.outputTokens, 8);
  QVERIFY(run.stats.promptTokens > 0);
  QVERIFY(run.stats.ttftMs >= 0);
  QVERIFY(run.stats.e2eMs >= run.stats.ttftMs);
  QVERIFY(run.stats.tokensPerSecond > 0);

  PlaygroundView* view = window_->playground();
  QCOMPARE(view->outputText(), run.streamed);
  QVERIFY(!view->outputText().isEmpty());
  QVERIFY2(view->statusText().startsWith(QStringLiteral("8 tokens · TTFT ")), qPrintable(view->statusText()));
  QVERIFY2(view->statusText().endsWith(QStringLiteral("finished: ") +
                                       QString::fromUtf8(brisk::finish_reason_name(brisk::FinishReason::Length))),
           qPrintable(view->statusText()));
  QVERIFY(view->generateButton()->isEnabled());
  QVERIFY(!view->stopButton()->isEnabled());
  QCOMPARE(window_->currentRequest(), quint64(0));
  QCOMPARE(window_->controller()->activeRequests(), 0);
}

void TestMainWindow::greedyIsDeterministic() {
  const Run a = generate(QStringLiteral("The quick brown fox"), 12);
  const Run b = generate(QStringLiteral("The quick brown fox"), 12);
  QVERIFY(a.id != 0 && b.id != 0);
  QVERIFY(a.id != b.id);
  QCOMPARE(a.stats.outputTokens, 12);
  QCOMPARE(b.streamed, a.streamed);
}

void TestMainWindow::ctrlReturnGenerates() {
  PlaygroundView* view = window_->playground();
  QSignalSpy requested(view, &PlaygroundView::generateRequested);
  QSignalSpy finished(window_->controller(), &EngineController::requestFinished);
  auto* prompt = view->findChild<QPlainTextEdit*>(QStringLiteral("prompt"));
  QVERIFY(prompt);
  window_->activateWindow();
  prompt->setFocus();
  QTRY_VERIFY(prompt->hasFocus());
  const QString before = prompt->toPlainText();
  QTest::keyClick(prompt, Qt::Key_Return, Qt::ControlModifier);
  QCOMPARE(requested.count(), 1);
  QCOMPARE(prompt->toPlainText(), before);  // the shortcut, not a newline
  QTRY_VERIFY_WITH_TIMEOUT(finished.count() > 0, kGenerateTimeoutMs);
}

void TestMainWindow::failedLoadKeepsPreviousModel() {
  EngineController* c = window_->controller();
  const QString missing = QStringLiteral("/nonexistent/brisk-ui-test/no-such-model.gguf");
  QSignalSpy loaded(c, &EngineController::modelLoaded);
  QSignalSpy failed(c, &EngineController::loadFailed);
  brisk::EngineConfig config;
  config.model = missing.toStdString();
  window_->loadModel(config);
  QTRY_VERIFY_WITH_TIMEOUT(failed.count() + loaded.count() > 0, kLoadTimeoutMs);
  QCOMPARE(loaded.count(), 0);
  QCOMPARE(failed.count(), 1);
  const QString error = failed.first().at(0).toString();
  QVERIFY2(error.contains(missing), qPrintable("the error does not name the path: " + error));

  // The error is shown without blocking, and the demo model is still there.
  QTRY_VERIFY(window_->findChild<QMessageBox*>(QStringLiteral("loadErrorBox")));
  auto* box = window_->findChild<QMessageBox*>(QStringLiteral("loadErrorBox"));
  QVERIFY(box->text().contains(missing));
  box->accept();

  QVERIFY(c->hasModel());
  QCOMPARE(c->modelInfo().name, demoInfo_.name);
  QCOMPARE(window_->modelPanel()->modelName(), QString::fromStdString(demoInfo_.name));
  const Run run = generate(QStringLiteral("Once upon a time"), 8);
  QCOMPARE(run.stats.outputTokens, 8);
  QCOMPARE(window_->playground()->outputText(), run.streamed);
}

void TestMainWindow::cancelledLoadIsDiscarded() {
  EngineController* c = window_->controller();
  QSignalSpy loaded(c, &EngineController::modelLoaded);
  QSignalSpy cancelled(c, &EngineController::loadCancelled);
  window_->loadDemoModel();
  QVERIFY(c->isLoading());
  auto* cancel = window_->findChild<QPushButton*>(QStringLiteral("cancelLoad"));
  QVERIFY(cancel);
  QVERIFY(cancel->isVisible());
  QTest::mouseClick(cancel, Qt::LeftButton);
  QCOMPARE(cancelled.count(), 1);
  QVERIFY(!c->isLoading());
  QVERIFY(!cancel->isVisible());
  // The worker finishes in its own time; its engine is dropped.
  QTRY_COMPARE_WITH_TIMEOUT(c->loadsInFlight(), 0, kLoadTimeoutMs);
  QTest::qWait(50);
  QCOMPARE(loaded.count(), 0);
  QVERIFY(c->hasModel());
  QCOMPARE(generate(QStringLiteral("Hello"), 4).stats.outputTokens, 4);
}

void TestMainWindow::stopAbortsRequest() {
  EngineController* c = window_->controller();
  PlaygroundView* view = window_->playground();
  QSignalSpy tokens(c, &EngineController::tokenReceived);
  QSignalSpy finished(c, &EngineController::requestFinished);
  view->setPrompt(QStringLiteral("Once upon a time"));
  brisk::SamplingParams p = view->params();
  p.max_tokens = 1 << 20;  // far past the context: only Stop (or the context limit) ends it
  p.ignore_eos = true;
  view->setParams(p);
  QTest::mouseClick(view->generateButton(), Qt::LeftButton);
  const quint64 id = window_->currentRequest();
  QVERIFY(id != 0);
  QVERIFY(view->stopButton()->isEnabled());
  QTRY_VERIFY_WITH_TIMEOUT(tokens.count() > 0 || finished.count() > 0, kGenerateTimeoutMs);
  if (finished.isEmpty()) QTest::mouseClick(view->stopButton(), Qt::LeftButton);
  QTRY_VERIFY_WITH_TIMEOUT(finished.count() > 0, kGenerateTimeoutMs);
  const auto reason = finished.first().at(1).value<brisk::FinishReason>();
  const auto stats = finished.first().at(2).value<GenerationStats>();
  // A tiny context could end it first; otherwise Stop did.
  QVERIFY2(reason == brisk::FinishReason::Abort || reason == brisk::FinishReason::Length,
           brisk::finish_reason_name(reason));
  if (reason == brisk::FinishReason::Abort) QVERIFY(stats.outputTokens < demoInfo_.context_length);
  QTRY_VERIFY(view->generateButton()->isEnabled());
  QCOMPARE(window_->currentRequest(), quint64(0));
}

void TestMainWindow::loadsRealModel() {
  const QString dir = QStringLiteral(BRISK_SHARED_MODELS "/stories260K");
  const QString bin = dir + QStringLiteral("/stories260K.bin");
  const QString tok = dir + QStringLiteral("/tok512.model");
  if (!QFileInfo::exists(bin) || !QFileInfo::exists(tok))
    QSKIP(qPrintable("needs " + bin + " and " + tok));
  EngineController* c = window_->controller();
  QSignalSpy loaded(c, &EngineController::modelLoaded);
  QSignalSpy failed(c, &EngineController::loadFailed);
  brisk::EngineConfig config;
  config.model = bin.toStdString();
  config.tokenizer = tok.toStdString();
  window_->loadModel(config);
  QTRY_VERIFY_WITH_TIMEOUT(loaded.count() + failed.count() > 0, kLoadTimeoutMs);
  if (!failed.isEmpty()) QFAIL(qPrintable(failed.first().at(0).toString()));
  const auto info = loaded.first().at(0).value<brisk::ModelInfo>();
  QVERIFY(!info.synthetic);
  QVERIFY(!window_->modelPanel()->syntheticNoteShown());
  QVERIFY(!window_->modelPanel()->modelName().isEmpty());  // a name even when the file has none
  const Run run = generate(QStringLiteral("Once upon a time"), 16);
  QCOMPARE(run.stats.outputTokens, 16);
  QCOMPARE(window_->playground()->outputText(), run.streamed);
}

void TestMainWindow::screenshotRun() {
  QTemporaryDir dir;
  QVERIFY(dir.isValid());
  const QString png = dir.filePath(QStringLiteral("shot.png"));
  MainWindow w(/*persistState=*/false);
  w.show();
  ScreenshotRunner::Options o;
  o.screenshot = png;
  o.prompt = QStringLiteral("Once upon a time");
  o.maxTokens = 8;
  o.deadlineMs = kLoadTimeoutMs + kGenerateTimeoutMs;
  ScreenshotRunner runner(&w, o);
  QSignalSpy done(&runner, &ScreenshotRunner::finished);
  runner.start();
  w.loadDemoModel();
  QTRY_VERIFY_WITH_TIMEOUT(done.count() > 0, o.deadlineMs + 5000);
  QCOMPARE(done.first().at(0).toInt(), 0);
  QImage image(png);
  QVERIFY(!image.isNull());
  QCOMPARE(image.size(), w.size() * w.devicePixelRatio());
  QVERIFY(!w.playground()->outputText().isEmpty());
}

QTEST_MAIN(TestMainWindow)
#include "test_main_window.moc"
