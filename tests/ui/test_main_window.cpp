// The window end to end on the built-in demo model: load through the
// EngineController, stream a greedy completion into the playground, chat,
// survive a failed and a corrupted load, cancel a load, stop a request (and
// the engine ends up with nothing running), menus, docks and placeholder
// pages, and the scripted screenshot runs.
#include <QAction>
#include <QComboBox>
#include <QDockWidget>
#include <QFile>
#include <QFileInfo>
#include <QImage>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSettings>
#include <QSignalSpy>
#include <QSpinBox>
#include <QStandardPaths>
#include <QStatusBar>
#include <QTabWidget>
#include <QTemporaryDir>
#include <QTextBrowser>
#include <QtTest>

#include "brisk/model_info.h"
#include "brisk/sysinfo.h"
#include "ui/ab_view.h"
#include "ui/benchmark_view.h"
#include "ui/chat_template.h"
#include "ui/chat_transcript.h"
#include "ui/engine_controller.h"
#include "ui/engine_settings_panel.h"
#include "ui/format.h"
#include "ui/main_window.h"
#include "ui/model_panel.h"
#include "ui/playground_view.h"
#include "ui/screenshot_runner.h"
#include "ui/telemetry_dock.h"
#include "ui/token_view.h"

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
  void showTokensDrawsChips();
  void chatModeBuildsPromptAndStreams();
  void menusShortcutsAndDocks();
  void placeholderPagesSayWhatComes();
  void failedLoadKeepsPreviousModel();
  void corruptedModelShowsErrorAndStaysUsable();
  void cancelledLoadIsDiscarded();
  void stopAbortsRequest();
  void stopMidStreamLeavesNothingRunning();
  void loadsRealModel();
  void screenshotRun();
  void screenshotRunAbView();
  void settingsPersist();
  void precisionSummaryNamesTheArithmetic();
  void modelNameFallsBackToTheFile();
  void openModelAppliesEditedSettings();
  void openModelWhileGeneratingAsksFirst();
  void narrowWindowTabsTelemetry();
  void telemetryDockFollowsTheView();
  void savedUnavailableBackendFallsBackToAuto();
  void cudaSettingsPersist();
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
  if (!failed.isEmpty())
    QFAIL(qPrintable("loading the demo model failed: " + failed.first().at(0).toString()));
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
  QTRY_COMPARE(window_->kvUsageText(),
               QStringLiteral("KV %1/%2 blocks").arg(snap.kv_blocks_used).arg(snap.kv_blocks_total));
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
  QVERIFY2(
      view->statusText().endsWith(QStringLiteral("finished: ") +
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

void TestMainWindow::showTokensDrawsChips() {
  PlaygroundView* view = window_->playground();
  view->setShowTokens(false);
  const Run run = generate(QStringLiteral("Once upon a time"), 6);
  QCOMPARE(run.stats.outputTokens, 6);
  TokenView* out = view->outputView();
  QCOMPARE(out->chunkCount(), run.chunks);
  QCOMPARE(out->chunks().join(QString()), run.streamed);
  QVERIFY(!out->chunkHasChipBackground(0));
  view->setShowTokens(true);  // re-renders the same chunks as chips
  QCOMPARE(out->text(), run.streamed);
  for (int i = 0; i < out->chunkCount(); ++i)
    if (!out->chunks()[i].trimmed().isEmpty())
      QVERIFY2(out->chunkHasChipBackground(i), qPrintable(QString::number(i)));
  view->setShowTokens(false);
  QVERIFY(!out->chunkHasChipBackground(0));
}

void TestMainWindow::chatModeBuildsPromptAndStreams() {
  PlaygroundView* view = window_->playground();
  EngineController* c = window_->controller();
  view->setMode(PlaygroundView::Mode::Chat);
  view->clearOutput();
  QCOMPARE(view->generateButton()->text(), QStringLiteral("Send"));
  // The demo model has no chat format of its own: Auto means the plain one.
  QCOMPARE(view->chatTemplate().kind(), ChatTemplate::Kind::Plain);
  brisk::SamplingParams p = view->params();
  p.temperature = 0;
  p.max_tokens = 6;
  p.ignore_eos = true;
  view->setParams(p);

  for (const QString& message : {QStringLiteral("Hello there"), QStringLiteral("Tell me more")}) {
    QSignalSpy tokens(c, &EngineController::tokenReceived);
    QSignalSpy finished(c, &EngineController::requestFinished);
    view->setPrompt(message);
    QTest::mouseClick(view->generateButton(), Qt::LeftButton);
    QVERIFY(window_->currentRequest() != 0);
    QVERIFY(view->prompt().isEmpty());  // the message moved into the conversation
    QTRY_VERIFY_WITH_TIMEOUT(finished.count() > 0, kGenerateTimeoutMs);
    QString streamed;
    for (const auto& args : tokens) streamed += args.at(1).toString();
    QCOMPARE(view->outputText(), streamed);
  }
  const QList<ChatMessage>& m = view->transcript()->messages();
  QCOMPARE(m.size(), 4);
  QCOMPARE(m[0].role, ChatMessage::Role::User);
  QCOMPARE(m[0].text, QStringLiteral("Hello there"));
  QCOMPARE(m[1].role, ChatMessage::Role::Assistant);
  QCOMPARE(m[2].text, QStringLiteral("Tell me more"));
  // The second prompt carries the whole conversation in the plain format.
  QCOMPARE(view->lastSentPrompt(), ChatTemplate(ChatTemplate::Kind::Plain).build(m.mid(0, 3)));
  QVERIFY(view->lastSentPrompt().startsWith(QStringLiteral("User: Hello there\nAssistant: ")));
  QVERIFY(view->lastSentPrompt().endsWith(QStringLiteral("User: Tell me more\nAssistant:")));
  // The conversation is on screen.
  auto* chatView = view->findChild<QTextBrowser*>(QStringLiteral("chatView"));
  QVERIFY(chatView);
  QTRY_VERIFY(chatView->toPlainText().contains(QStringLiteral("Tell me more")));
  QVERIFY(chatView->isVisible());

  view->setMode(PlaygroundView::Mode::Completion);
  QCOMPARE(view->generateButton()->text(), QStringLiteral("Generate"));
  QVERIFY(view->outputView()->isVisible());
}

void TestMainWindow::menusShortcutsAndDocks() {
  QStringList menus;
  for (QAction* a : window_->menuBar()->actions()) menus << a->text().remove(QLatin1Char('&'));
  QCOMPARE(menus, (QStringList{"File", "View", "Engine", "Help"}));
  auto shortcut = [&](const char* id) {
    QAction* a = window_->action(QString::fromLatin1(id));
    return a ? a->shortcut() : QKeySequence();
  };
  QCOMPARE(shortcut("actionOpen"), QKeySequence(QKeySequence::Open));
  QCOMPARE(shortcut("actionGenerate"), QKeySequence(Qt::CTRL | Qt::Key_Return));
  QCOMPARE(shortcut("actionStop"), QKeySequence(Qt::Key_Escape));
  QCOMPARE(shortcut("actionViewAB"), QKeySequence(Qt::CTRL | Qt::Key_2));
  QCOMPARE(shortcut("actionToggleTelemetry"), QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_T));
  QCOMPARE(shortcut("actionEngineSettings"), QKeySequence(Qt::CTRL | Qt::Key_Comma));

  // Ctrl+2 / Ctrl+1 switch views.
  window_->activateWindow();
  QTest::keyClick(window_, Qt::Key_2, Qt::ControlModifier);
  QCOMPARE(window_->currentView(), MainWindow::View::AB);
  QVERIFY(window_->abView()->isVisible());
  QTest::keyClick(window_, Qt::Key_1, Qt::ControlModifier);
  QCOMPARE(window_->currentView(), MainWindow::View::Playground);

  // The telemetry dock lives in the window, on the right, and View toggles it.
  TelemetryDock* dock = window_->telemetryDock();
  QVERIFY(dock);
  QCOMPARE(dock->parentWidget(), window_);
  QCOMPARE(window_->dockWidgetArea(dock), Qt::RightDockWidgetArea);
  QVERIFY(dock->isVisible());
  QAction* toggle = window_->action(QStringLiteral("actionToggleTelemetry"));
  QVERIFY(toggle && toggle->isChecked());
  toggle->trigger();
  QVERIFY(!dock->isVisible());
  toggle->trigger();
  QVERIFY(dock->isVisible());
  QCOMPARE(window_->dockWidgetArea(window_->modelDock()), Qt::LeftDockWidgetArea);
  QCOMPARE(window_->dockWidgetArea(window_->settingsDock()), Qt::LeftDockWidgetArea);
  window_->action(QStringLiteral("actionEngineSettings"))->trigger();
  QVERIFY(window_->engineSettings()->isVisible());
  window_->modelDock()->raise();

  // The status bar names the precision of the weights and of the KV cache.
  QVERIFY2(window_->precisionText().startsWith(QStringLiteral("weights F32")),
           qPrintable(window_->precisionText()));
  QVERIFY(window_->precisionText().endsWith(QStringLiteral("KV F32")));
}

void TestMainWindow::placeholderPagesSayWhatComes() {
  // The Benchmark and Compare pages are the real views now.
  QTabWidget* tabs = window_->tabs();
  QCOMPARE(tabs->count(), 4);
  QCOMPARE(tabs->indexOf(tabs->findChild<QWidget*>(QStringLiteral("benchmarkPage"))), 2);
  QCOMPARE(tabs->indexOf(tabs->findChild<QWidget*>(QStringLiteral("comparePage"))), 3);
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

void TestMainWindow::corruptedModelShowsErrorAndStaysUsable() {
  QTemporaryDir dir;
  QVERIFY(dir.isValid());
  const QString path = dir.filePath(QStringLiteral("corrupted.gguf"));
  {
    QFile f(path);
    QVERIFY(f.open(QIODevice::WriteOnly));
    QByteArray garbage(4096, '\0');
    for (int i = 0; i < garbage.size(); ++i) garbage[i] = char((i * 131 + 7) ^ (i >> 3));
    f.write(garbage);
  }
  EngineController* c = window_->controller();
  QSignalSpy loaded(c, &EngineController::modelLoaded);
  QSignalSpy failed(c, &EngineController::loadFailed);
  window_->openModel(path);
  QVERIFY(c->isLoading());
  QTRY_VERIFY_WITH_TIMEOUT(failed.count() + loaded.count() > 0, kLoadTimeoutMs);
  QCOMPARE(loaded.count(), 0);
  const QString error = failed.first().at(0).toString();
  QVERIFY2(error.contains(QStringLiteral("corrupted.gguf")),
           qPrintable("the error does not name the file: " + error));

  // A non-modal error box: the test (and the user) carry on beside it.
  QTRY_VERIFY(window_->findChild<QMessageBox*>(QStringLiteral("loadErrorBox")));
  auto* box = window_->findChild<QMessageBox*>(QStringLiteral("loadErrorBox"));
  QVERIFY(box->isVisible());
  QCOMPARE(box->windowModality(), Qt::NonModal);
  QCOMPARE(box->text(), error);
  QVERIFY(!window_->findChild<QPushButton*>(QStringLiteral("cancelLoad"))->isVisible());
  // Still usable while the box is open.
  const Run run = generate(QStringLiteral("Once upon a time"), 5);
  QCOMPARE(run.stats.outputTokens, 5);
  box->accept();
  QTRY_VERIFY(!window_->findChild<QMessageBox*>(QStringLiteral("loadErrorBox")));
  QCOMPARE(c->modelInfo().name, demoInfo_.name);
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

void TestMainWindow::stopMidStreamLeavesNothingRunning() {
  EngineController* c = window_->controller();
  PlaygroundView* view = window_->playground();
  QSignalSpy tokens(c, &EngineController::tokenReceived);
  QSignalSpy finished(c, &EngineController::requestFinished);
  view->setPrompt(QStringLiteral("Once upon a time"));
  brisk::SamplingParams p = view->params();
  p.max_tokens = 100000;
  p.ignore_eos = true;
  view->setParams(p);
  QSignalSpy metrics(c, &EngineController::metricsUpdated);
  // Mid-stream: at the third token, press Esc (Engine ▸ Stop) in the prompt.
  // The demo model is fast, so this happens inside the token handler rather
  // than after a polling wait that could outlast the whole context.
  auto* prompt = view->findChild<QPlainTextEdit*>(QStringLiteral("prompt"));
  window_->activateWindow();
  prompt->setFocus();
  quint64 id = 0;
  bool runningWhenStopped = false;
  // On a loaded machine the engine can fill the demo model's whole context
  // before the queued Stop reaches it (the request then ends by length,
  // which says nothing about Stop): try again, a few times at most. A Stop
  // that never works still fails below.
  for (int attempt = 0; attempt < 5; ++attempt) {
    finished.clear();
    int seen = 0;
    runningWhenStopped = false;
    const auto conn = connect(c, &EngineController::tokenReceived, this, [&](quint64, const QString&) {
      if (++seen != 3) return;
      runningWhenStopped = c->activeRequests() == 1;
      QTest::keyClick(prompt, Qt::Key_Escape);
    });
    QTest::mouseClick(view->generateButton(), Qt::LeftButton);
    id = window_->currentRequest();
    QVERIFY(id != 0);
    QTRY_VERIFY_WITH_TIMEOUT(finished.count() > 0, kGenerateTimeoutMs);
    disconnect(conn);
    if (finished.first().at(1).value<brisk::FinishReason>() != brisk::FinishReason::Length) break;
    QTRY_VERIFY(view->generateButton()->isEnabled());
    prompt->setFocus();
  }
  QVERIFY(runningWhenStopped);
  QCOMPARE(finished.first().at(0).value<quint64>(), id);
  QCOMPARE(finished.first().at(1).value<brisk::FinishReason>(), brisk::FinishReason::Abort);
  const auto stats = finished.first().at(2).value<GenerationStats>();
  QVERIFY(stats.outputTokens >= 3);
  QVERIFY(view->statusText().contains(QStringLiteral("finished: abort")));
  QVERIFY(view->generateButton()->isEnabled());
  QVERIFY(!view->stopButton()->isEnabled());
  // The engine itself has let go: the KV blocks are free (the status bar says
  // so) and its next snapshots show nothing running.
  QTRY_VERIFY_WITH_TIMEOUT(window_->kvUsageText().startsWith(QStringLiteral("KV 0/")), 2000);
  auto lastSnapshot = [&] { return metrics.last().at(0).value<brisk::MetricsSnapshot>(); };
  QTRY_VERIFY_WITH_TIMEOUT(metrics.count() >= 3, 2000);
  QTRY_VERIFY2_WITH_TIMEOUT(
      lastSnapshot().running == 0 && lastSnapshot().waiting == 0,
      qPrintable(QStringLiteral("after the abort the engine's snapshot still shows running %1, waiting %2, "
                                "%3 KV blocks used")
                     .arg(lastSnapshot().running)
                     .arg(lastSnapshot().waiting)
                     .arg(lastSnapshot().kv_blocks_used)),
      2000);
  QCOMPARE(c->activeRequests(), 0);
  const int after = tokens.count();
  QTest::qWait(200);
  QCOMPARE(tokens.count(), after);  // no token after the abort
}

void TestMainWindow::loadsRealModel() {
  const QString dir = QStringLiteral(BRISK_SHARED_MODELS "/stories260K");
  const QString bin = dir + QStringLiteral("/stories260K.bin");
  const QString tok = dir + QStringLiteral("/tok512.model");
  if (!QFileInfo::exists(bin) || !QFileInfo::exists(tok)) QSKIP(qPrintable("needs " + bin + " and " + tok));
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

void TestMainWindow::screenshotRunAbView() {
  QTemporaryDir dir;
  QVERIFY(dir.isValid());
  const QString png = dir.filePath(QStringLiteral("ab.png"));
  MainWindow w(/*persistState=*/false);
  w.resize(1280, 800);
  w.show();
  ScreenshotRunner::Options o;
  o.screenshot = png;
  o.prompt = QStringLiteral("Once upon a time");
  o.maxTokens = 8;
  o.deadlineMs = kLoadTimeoutMs + kGenerateTimeoutMs;
  QVERIFY(ScreenshotRunner::parseView(QStringLiteral("ab"), &o.view));
  ScreenshotRunner runner(&w, o);
  QSignalSpy done(&runner, &ScreenshotRunner::finished);
  runner.start();
  w.loadDemoModel();
  QTRY_VERIFY_WITH_TIMEOUT(done.count() > 0, o.deadlineMs + 5000);
  QCOMPARE(done.first().at(0).toInt(), 0);
  QCOMPARE(w.currentView(), MainWindow::View::AB);
  QVERIFY(!w.abView()->output(ABSession::A)->text().isEmpty());
  QVERIFY(!w.abView()->output(ABSession::B)->text().isEmpty());
  QImage image(png);
  QVERIFY(!image.isNull());
  QCOMPARE(image.size(), QSize(1280, 800) * w.devicePixelRatio());
  ScreenshotRunner::View v;
  QVERIFY(!ScreenshotRunner::parseView(QStringLiteral("nonsense"), &v));
}

// The status bar says which arithmetic one-byte weights run with when the
// config picks an A/B variant, and only for the weights it applies to.
void TestMainWindow::modelNameFallsBackToTheFile() {
  brisk::ModelInfo info;
  info.path = "/models/stories260K.gguf";
  info.architecture = "llama";
  info.name = "TinyStories 260K";
  QCOMPARE(fmt::modelName(info), QStringLiteral("TinyStories 260K"));
  info.name = "llama";  // a converter's default: the architecture, not a model
  QCOMPARE(fmt::modelName(info), QStringLiteral("stories260K"));
  info.name.clear();
  QCOMPARE(fmt::modelName(info), QStringLiteral("stories260K"));
}

void TestMainWindow::precisionSummaryNamesTheArithmetic() {
  auto info_of = [](const char* dtype) {
    brisk::ModelInfo info;
    info.tensors = {{"blk.0.ffn_up.weight", dtype, {8, 8}, 1000}, {"output.weight", "F32", {8, 8}, 50}};
    return info;
  };
  brisk::EngineConfig c;
  // Named as the settings name them: the tensor type I8 and the KV setting int8 both read INT8.
  QCOMPARE(fmt::precisionSummary(info_of("F8_E4M3"), c), QStringLiteral("weights FP8 E4M3 · KV F32"));
  c.kv_dtype = "fp8-e4m3";
  QCOMPARE(fmt::precisionSummary(info_of("F8_E5M2"), c), QStringLiteral("weights FP8 E5M2 · KV FP8 E4M3"));
  c.kv_dtype = "bf16";
  QCOMPARE(fmt::precisionSummary(info_of("F16"), c), QStringLiteral("weights F16 · KV BF16"));
  c.fp8_fma = true;
  c.kv_dtype = "int8";
  QCOMPARE(fmt::precisionSummary(info_of("F8_E4M3"), c),
           QStringLiteral("weights FP8 E4M3 (F32 FMA) · KV INT8"));
  QCOMPARE(fmt::precisionSummary(info_of("I8"), c),
           QStringLiteral("weights INT8 · KV INT8"));  // not for INT8
  c.fp8_fma = false;
  c.int8_fma = true;
  QCOMPARE(fmt::precisionSummary(info_of("I8"), c), QStringLiteral("weights INT8 (F32 FMA) · KV INT8"));
  QCOMPARE(fmt::precisionSummary(info_of("Q8_0"), c), QStringLiteral("weights Q8_0 (F32 FMA) · KV INT8"));
  c.int8_activations = true;
  QCOMPARE(fmt::precisionSummary(info_of("I8"), c), QStringLiteral("weights INT8 (W8A8) · KV INT8"));
  QCOMPARE(fmt::precisionSummary(info_of("F16"), c), QStringLiteral("weights F16 · KV INT8"));
  // A small model whose F32 embeddings outweigh its INT8 matrices: the label still goes beside I8.
  brisk::ModelInfo small;
  small.tensors = {{"blk.0.ffn_up.weight", "I8", {8, 8}, 400}, {"token_embd.weight", "F32", {8, 8}, 600}};
  QCOMPARE(fmt::precisionSummary(small, c), QStringLiteral("weights F32 + INT8 (W8A8) · KV INT8"));
  c.int8_activations = false;
  QCOMPARE(fmt::precisionSummary(small, c), QStringLiteral("weights F32 + INT8 (F32 FMA) · KV INT8"));
}

void TestMainWindow::settingsPersist() {
  // QStandardPaths test mode (initTestCase) keeps this away from the user's settings.
  QSettings(QStringLiteral("Brisk"), QStringLiteral("Brisk")).clear();
  brisk::EngineConfig engine;
  engine.max_num_seqs = 5;
  engine.policy = brisk::SchedulerPolicy::Static;
  engine.num_kv_blocks = 300;
  engine.weight_dtype = "fp8-e4m3";
  engine.fp8_fma = true;  // an A/B knob, kept like the rest
  brisk::SamplingParams p;
  p.max_tokens = 42;
  p.temperature = 0.3f;
  p.top_k = 5;
  p.top_p = 0.7f;
  p.min_p = 0.02f;
  p.repetition_penalty = 1.2f;
  p.seed = 99;
  p.stop = {"\nUser:", "END"};
  p.stop_token_ids = {2};
  p.ignore_eos = true;
  {
    MainWindow w(/*persistState=*/true);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    w.playground()->setPrompt(QStringLiteral("remember me"));
    w.playground()->setParams(p);
    w.playground()->setMode(PlaygroundView::Mode::Chat);
    w.playground()->setSystemPrompt(QStringLiteral("Be brief."));
    w.playground()->setTemplateChoice(PlaygroundView::TemplateChoice::Llama2);
    w.abView()->setPrompt(QStringLiteral("ab prompt"));
    ABSession::SideConfig b = w.abView()->sideConfig(ABSession::B);
    b.engine = ABSession::EngineChoice::Second;
    b.params.max_tokens = 33;
    w.abView()->setSideConfig(ABSession::B, b);
    w.engineSettings()->setConfig(engine);
    w.setCurrentView(MainWindow::View::AB);
    w.telemetryDock()->hide();
    QVERIFY(w.close());
  }
  MainWindow w(/*persistState=*/true);
  w.show();
  QVERIFY(QTest::qWaitForWindowExposed(&w));
  QCOMPARE(w.playground()->prompt(), QStringLiteral("remember me"));
  const brisk::SamplingParams q = w.playground()->params();
  QCOMPARE(q.max_tokens, 42);
  QCOMPARE(q.temperature, 0.3f);
  QCOMPARE(q.top_k, 5);
  QCOMPARE(q.top_p, 0.7f);
  QCOMPARE(q.min_p, 0.02f);
  QCOMPARE(q.repetition_penalty, 1.2f);
  QCOMPARE(q.seed.value_or(0), uint64_t(99));
  QCOMPARE(q.stop, p.stop);
  QCOMPARE(q.stop_token_ids, p.stop_token_ids);
  QVERIFY(q.ignore_eos);
  QCOMPARE(w.playground()->mode(), PlaygroundView::Mode::Chat);
  QCOMPARE(w.playground()->systemPrompt(), QStringLiteral("Be brief."));
  QCOMPARE(w.playground()->templateChoice(), PlaygroundView::TemplateChoice::Llama2);
  QCOMPARE(w.abView()->prompt(), QStringLiteral("ab prompt"));
  QCOMPARE(w.abView()->sideConfig(ABSession::B).engine, ABSession::EngineChoice::Second);
  QCOMPARE(w.abView()->sideConfig(ABSession::B).params.max_tokens, 33);
  QCOMPARE(w.currentView(), MainWindow::View::AB);
  QVERIFY(!w.telemetryDock()->isVisible());  // the dock layout came back too
  // New models open with the last engine settings.
  const brisk::EngineConfig c = w.configFor(QStringLiteral("/some/model.gguf"));
  QCOMPARE(c.model, std::string("/some/model.gguf"));
  QCOMPARE(c.max_num_seqs, 5);
  QCOMPARE(c.policy, brisk::SchedulerPolicy::Static);
  QCOMPARE(c.num_kv_blocks, int64_t(300));
  QCOMPARE(c.weight_dtype, std::string("fp8-e4m3"));
  QVERIFY(c.fp8_fma && !c.int8_fma);

  // A model that loads goes to the top of the recent list (the demo model does not).
  const QString real = QStringLiteral(BRISK_SHARED_MODELS "/stories260K/stories260K.gguf");
  if (QFileInfo::exists(real)) {
    QSignalSpy loaded(w.controller(), &EngineController::modelLoaded);
    w.openModel(real);
    QTRY_VERIFY_WITH_TIMEOUT(loaded.count() > 0, kLoadTimeoutMs);
    QCOMPARE(w.controller()->engineConfig().max_num_seqs, 5);
    QCOMPARE(w.recentModels().value(0), QFileInfo(real).absoluteFilePath());
  }
  QSettings(QStringLiteral("Brisk"), QStringLiteral("Brisk")).clear();
}

// Opening a model is a reload: the Engine settings as edited, not yet
// applied, are what it loads with (they used to be dropped silently, the
// panel then showing the old applied values).
void TestMainWindow::openModelAppliesEditedSettings() {
  MainWindow w(/*persistState=*/false);
  w.show();
  QSignalSpy loaded(w.controller(), &EngineController::modelLoaded);
  w.loadDemoModel();
  QTRY_VERIFY_WITH_TIMEOUT(loaded.count() == 1, kLoadTimeoutMs);
  auto* seqs = w.engineSettings()->findChild<QSpinBox*>(QStringLiteral("settingsMaxSeqs"));
  QVERIFY(seqs);
  QVERIFY(seqs->value() != 7);
  seqs->setValue(7);
  QVERIFY(w.engineSettings()->isDirty());
  QCOMPARE(w.configFor(QStringLiteral("demo")).max_num_seqs, 7);
  w.openModel(QStringLiteral("demo"));
  QTRY_VERIFY_WITH_TIMEOUT(loaded.count() == 2, kLoadTimeoutMs);
  QCOMPARE(w.controller()->engineConfig().max_num_seqs, 7);
  QCOMPARE(seqs->value(), 7);
  QVERIFY(!w.engineSettings()->isDirty());
}

// Replacing the model stops what the engine runs: as Engine ▸ Reload does,
// File ▸ Open asks first, and Cancel leaves the request running.
void TestMainWindow::openModelWhileGeneratingAsksFirst() {
  MainWindow w(/*persistState=*/false);
  w.show();
  EngineController* c = w.controller();
  QSignalSpy loaded(c, &EngineController::modelLoaded);
  QSignalSpy finished(c, &EngineController::requestFinished);
  w.loadDemoModel();
  QTRY_VERIFY_WITH_TIMEOUT(loaded.count() == 1, kLoadTimeoutMs);
  brisk::SamplingParams p = w.playground()->params();
  p.max_tokens = 1 << 20;  // runs until the context is full: long enough to be stopped
  p.ignore_eos = true;
  w.playground()->setParams(p);
  w.playground()->setPrompt(QStringLiteral("hello"));
  QTest::mouseClick(w.playground()->generateButton(), Qt::LeftButton);
  QVERIFY(w.currentRequest() != 0);
  QCOMPARE(c->activeRequests(), 1);

  auto confirm = [&] { return w.findChild<QMessageBox*>(QStringLiteral("replaceModelConfirmBox")); };
  // (The request runs until the demo's context is full, far longer than
  // the few milliseconds these checks take.)
  w.openModel(QStringLiteral("demo"));
  QMessageBox* box = confirm();
  QVERIFY(box);
  QVERIFY(box->informativeText().contains(QStringLiteral("running request will be stopped")));
  QTest::mouseClick(box->button(QMessageBox::Cancel), Qt::LeftButton);
  QVERIFY(!box->isVisible());
  QCOMPARE(loaded.count(), 1);
  QCOMPARE(c->activeRequests(), 1);  // still running
  QCOMPARE(finished.count(), 0);
  QTRY_VERIFY(!confirm());  // closed boxes are deleted

  w.openModel(QStringLiteral("demo"));
  box = confirm();
  QVERIFY(box);
  QTest::mouseClick(box->button(QMessageBox::Yes), Qt::LeftButton);
  QTRY_VERIFY_WITH_TIMEOUT(loaded.count() == 2, kLoadTimeoutMs);
  QTRY_COMPARE(finished.count(), 1);
  QCOMPARE(finished.first().at(1).value<brisk::FinishReason>(), brisk::FinishReason::Abort);
  QCOMPARE(c->activeRequests(), 0);

  // With nothing running it loads without asking.
  w.openModel(QStringLiteral("demo"));
  QTRY_VERIFY_WITH_TIMEOUT(loaded.count() == 3, kLoadTimeoutMs);
  QVERIFY(!confirm());
}

// At 1024x700 three columns do not fit: the settings dock was squeezed to
// ~130 px (every control cut off) and the window could not shrink below
// 1029 px. Telemetry now joins the left column's tabs.
void TestMainWindow::narrowWindowTabsTelemetry() {
  MainWindow w(/*persistState=*/false);
  w.resize(1024, 700);
  w.show();
  QVERIFY(QTest::qWaitForWindowExposed(&w));
  QTRY_VERIFY(w.tabifiedDockWidgets(w.settingsDock()).contains(w.telemetryDock()));
  QString mins;
  for (int i = 0; i < w.tabs()->count(); ++i)
    mins += QStringLiteral(" %1:%2")
                .arg(w.tabs()->tabText(i))
                .arg(w.tabs()->widget(i)->minimumSizeHint().width());
  QVERIFY2(
      w.width() <= 1024,
      qPrintable(QStringLiteral("width %1 (minimum %2); pages' minimum widths%3; telemetry %4, settings %5, "
                                "model %6, status bar %7, menu bar %8, centre %9")
                     .arg(w.width())
                     .arg(w.minimumSizeHint().width())
                     .arg(mins)
                     .arg(w.telemetryDock()->minimumSizeHint().width())
                     .arg(w.settingsDock()->minimumSizeHint().width())
                     .arg(w.modelDock()->minimumSizeHint().width())
                     .arg(w.statusBar()->minimumSizeHint().width())
                     .arg(w.menuBar()->minimumSizeHint().width())
                     .arg(w.centralWidget()->minimumSizeHint().width())));
  w.showEngineSettings();
  QTRY_VERIFY(w.settingsDock()->isVisible());
  // Every settings control is shown whole: the dock is as wide as the form needs.
  QWidget* form = w.engineSettings();
  QVERIFY2(w.settingsDock()->width() >= form->minimumSizeHint().width(),
           qPrintable(QStringLiteral("dock %1 < form %2")
                          .arg(w.settingsDock()->width())
                          .arg(form->minimumSizeHint().width())));
  auto* weights = w.engineSettings()->findChild<QComboBox*>(QStringLiteral("settingsWeightPrecision"));
  QVERIFY(weights);
  QVERIFY2(weights->width() >= 150, qPrintable(QString::number(weights->width())));

  // Wide again, Reset layout puts Telemetry back on the right.
  w.resize(1600, 900);
  QTRY_COMPARE(w.width(), 1600);
  w.resetLayout();
  QVERIFY(!w.tabifiedDockWidgets(w.settingsDock()).contains(w.telemetryDock()));
  QCOMPARE(w.dockWidgetArea(w.telemetryDock()), Qt::RightDockWidgetArea);
}

// Benchmark and Compare carry their own plots: the live telemetry dock is
// hidden there unless the user shows it, and each pair of views keeps the
// dock as the user left it.
void TestMainWindow::telemetryDockFollowsTheView() {
  MainWindow w(/*persistState=*/false);
  w.show();
  QVERIFY(QTest::qWaitForWindowExposed(&w));
  TelemetryDock* t = w.telemetryDock();
  QAction* toggle = w.action(QStringLiteral("actionToggleTelemetry"));
  QVERIFY(toggle);
  QTRY_VERIFY(t->isVisible());
  const int playgroundWidth = w.tabs()->width();
  w.setCurrentView(MainWindow::View::Compare);
  QTRY_VERIFY(!t->isVisible());
  QTRY_VERIFY(w.tabs()->width() > playgroundWidth + 300);  // Compare gets the dock's width
  w.setCurrentView(MainWindow::View::Benchmark);
  QVERIFY(!t->isVisible());
  toggle->trigger();  // shown on purpose in the workbench
  QTRY_VERIFY(t->isVisible());
  w.setCurrentView(MainWindow::View::Playground);
  QVERIFY(t->isVisible());
  toggle->trigger();  // hidden on purpose in the playground
  QTRY_VERIFY(!t->isVisible());
  w.setCurrentView(MainWindow::View::Compare);
  QTRY_VERIFY(t->isVisible());
  w.setCurrentView(MainWindow::View::AB);
  QTRY_VERIFY(!t->isVisible());
  // Reset layout brings the start's rule back, whichever view it is done in.
  w.setCurrentView(MainWindow::View::Compare);
  QTRY_VERIFY(t->isVisible());  // as left there
  w.resetLayout();
  QTRY_VERIFY(!t->isVisible());
  w.setCurrentView(MainWindow::View::Playground);
  QTRY_VERIFY(t->isVisible());

  // The playground hears when a benchmark runs (it warns; see test_playground_view).
  auto* warning = w.playground()->findChild<QLabel*>(QStringLiteral("benchmarkWarning"));
  QVERIFY(warning && warning->isHidden());
  Q_EMIT w.benchmarkView()->runningChanged(true);
  QVERIFY(!warning->isHidden());
  Q_EMIT w.benchmarkView()->runningChanged(false);
  QVERIFY(warning->isHidden());
}

// Settings saved with backend=cuda (on a GPU machine, or a synced home) on a
// machine where CUDA cannot run: every load failed, the demo included, and
// nothing said to change the backend. The window falls back to Auto and
// says so once, beside the first load.
void TestMainWindow::savedUnavailableBackendFallsBackToAuto() {
  bool cudaMissing = false;
  QString reason;
  for (const brisk::BackendStatus& b : brisk::list_backends())
    if (b.name == "cuda" && !b.available) {
      cudaMissing = true;
      reason = QString::fromStdString(b.reason);
    }
  if (!cudaMissing) QSKIP("CUDA is available on this machine (or not built): nothing to fall back from");
  {
    QSettings s(QStringLiteral("Brisk"), QStringLiteral("Brisk"));  // test mode: not the user's
    s.clear();
    s.setValue(QStringLiteral("engine/backend"), QStringLiteral("cuda"));
    s.setValue(QStringLiteral("engine/maxNumSeqs"), 7);
  }
  MainWindow w(/*persistState=*/true);
  QCOMPARE(w.engineSettings()->config().backend, std::string("auto"));
  QCOMPARE(w.engineSettings()->config().max_num_seqs, 7);  // the rest of the saved settings stay
  QSignalSpy loaded(w.controller(), &EngineController::modelLoaded);
  QSignalSpy failed(w.controller(), &EngineController::loadFailed);
  w.show();
  w.openModel(QStringLiteral("demo"));
  QTRY_VERIFY_WITH_TIMEOUT(loaded.count() + failed.count() > 0, kLoadTimeoutMs);
  QCOMPARE(failed.count(), 0);
  const QString message = w.statusBar()->currentMessage();
  QVERIFY2(message.contains(QStringLiteral("CUDA")) && message.contains(reason), qPrintable(message));
  w.openModel(QStringLiteral("demo"));  // said once
  QTRY_VERIFY_WITH_TIMEOUT(loaded.count() == 2, kLoadTimeoutMs);
  QVERIFY2(!w.statusBar()->currentMessage().contains(reason), qPrintable(w.statusBar()->currentMessage()));
  QSettings(QStringLiteral("Brisk"), QStringLiteral("Brisk")).clear();
}

// The CUDA A/B knobs were not saved: chosen on a GPU machine, they were
// lost on restart.
void TestMainWindow::cudaSettingsPersist() {
  QSettings(QStringLiteral("Brisk"), QStringLiteral("Brisk")).clear();  // test mode: not the user's
  brisk::EngineConfig c;
  c.model = "demo";
  c.cuda_graphs = false;
  c.fused_decode = false;
  c.dependent_launch = false;
  c.fused_rope = true;
  c.split_merge_in_kernel = true;
  c.l2_prefetch = true;
  c.persistent_decode = true;
  c.fp8_fast_accum = false;  // each knob away from its default
  c.gpu_memory_utilization = 0.55;
  {
    MainWindow w(/*persistState=*/true);
    QSignalSpy loaded(w.controller(), &EngineController::modelLoaded);
    w.controller()->loadModel(c);  // a load saves the settings it ran with
    QTRY_VERIFY_WITH_TIMEOUT(loaded.count() > 0, kLoadTimeoutMs);
  }
  MainWindow again(/*persistState=*/true);
  const brisk::EngineConfig r = again.engineSettings()->config();
  QCOMPARE(r.cuda_graphs, false);
  QCOMPARE(r.fused_decode, false);
  QCOMPARE(r.dependent_launch, false);
  QCOMPARE(r.fused_rope, true);
  QCOMPARE(r.split_merge_in_kernel, true);
  QCOMPARE(r.l2_prefetch, true);
  QCOMPARE(r.persistent_decode, true);
  QCOMPARE(r.fp8_fast_accum, false);
  QCOMPARE(r.gpu_memory_utilization, 0.55);
  QSettings(QStringLiteral("Brisk"), QStringLiteral("Brisk")).clear();
}

QTEST_MAIN(TestMainWindow)
#include "test_main_window.moc"
