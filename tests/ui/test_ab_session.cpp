// A/B compare on the built-in demo model: two configurations answer one
// prompt at once, each with its numbers; identical greedy settings agree
// token for token (also continuous against static batching on a second
// engine); different settings get their first differing token highlighted
// in both panes.
#include <QComboBox>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSignalSpy>
#include <QStandardItemModel>
#include <QStandardPaths>
#include <QtTest>

#include "brisk/sysinfo.h"
#include "ui/ab_session.h"
#include "ui/ab_view.h"
#include "ui/engine_controller.h"
#include "ui/main_window.h"
#include "ui/sampling_form.h"
#include "ui/token_view.h"

namespace {
constexpr int kTimeoutMs = 60000;

brisk::SamplingParams greedy(int maxTokens) {
  brisk::SamplingParams p = SamplingForm::defaults();
  p.temperature = 0;
  p.max_tokens = maxTokens;
  p.ignore_eos = true;
  return p;
}
}  // namespace

class TestABSession : public QObject {
  Q_OBJECT

 private:
  // Sets both sides, presses Run A/B and waits for both to finish.
  bool runAB(const ABSession::SideConfig& a, const ABSession::SideConfig& b, const QString& prompt);

  MainWindow* window_ = nullptr;

 private Q_SLOTS:
  void initTestCase();
  void cleanupTestCase();
  void firstDifference();
  void presetsSetBothSides();
  void runProducesTwoOutputs();
  void sameSettingsAgree();
  void divergenceIsHighlightedInBoth();
  void badStopTokenIdsAreRefused();
  void countsOfOneAreSingular();
  void stopEndsBothSides();
  void secondEngineStaticMatchesContinuous();
  void secondEngineOffersBackend();
};

void TestABSession::initTestCase() {
  QStandardPaths::setTestModeEnabled(true);
  window_ = new MainWindow(/*persistState=*/false);
  window_->show();
  QVERIFY(QTest::qWaitForWindowExposed(window_));
  QSignalSpy loaded(window_->controller(), &EngineController::modelLoaded);
  window_->loadDemoModel();
  QTRY_VERIFY_WITH_TIMEOUT(loaded.count() > 0, kTimeoutMs);
  window_->setCurrentView(MainWindow::View::AB);
}

void TestABSession::cleanupTestCase() {
  delete window_;
  window_ = nullptr;
}

bool TestABSession::runAB(const ABSession::SideConfig& a, const ABSession::SideConfig& b,
                          const QString& prompt) {
  ABView* view = window_->abView();
  view->setSideConfig(ABSession::A, a);
  view->setSideConfig(ABSession::B, b);
  view->setPrompt(prompt);
  QSignalSpy finished(view->session(), &ABSession::finished);
  if (!view->runButton()->isEnabled()) {
    qWarning("Run A/B is disabled: %s", qPrintable(view->runButton()->toolTip()));
    return false;
  }
  QTest::mouseClick(view->runButton(), Qt::LeftButton);
  if (!view->session()->isRunning()) return false;
  return QTest::qWaitFor([&] { return finished.count() > 0; }, kTimeoutMs);
}

void TestABSession::firstDifference() {
  const QStringList a{"a", "b", "c"}, b{"a", "b", "x", "y"};
  QCOMPARE(ABSession::firstDifference(a, b), 2);
  QCOMPARE(ABSession::firstDifference(a, b, 1), 2);
  QCOMPARE(ABSession::firstDifference(a, a), -1);
  QCOMPARE(ABSession::firstDifference(a, QStringList{"a"}), -1);  // a prefix is no difference
  QCOMPARE(ABSession::firstDifference({}, a), -1);
}

void TestABSession::presetsSetBothSides() {
  ABView* view = window_->abView();
  ABSession::SideConfig start{SamplingForm::defaults(), ABSession::EngineChoice::Second};
  start.params.max_tokens = 24;
  view->setSideConfig(ABSession::A, start);
  view->applyPreset(ABView::PenaltyVsNoRepeat);
  const ABSession::SideConfig a = view->sideConfig(ABSession::A), b = view->sideConfig(ABSession::B);
  QCOMPARE(a.params.temperature, 0.0f);  // greedy: only the knob under test differs
  QCOMPARE(b.params.temperature, 0.0f);
  QCOMPARE(a.params.repetition_penalty, 1.3f);
  QCOMPARE(a.params.no_repeat_ngram_size, 0);
  QCOMPARE(b.params.repetition_penalty, 1.0f);
  QCOMPARE(b.params.no_repeat_ngram_size, 3);
  QCOMPARE(a.params.max_tokens, 24);  // kept from side A
  QCOMPARE(b.params.max_tokens, 24);
  QVERIFY(a.engine == ABSession::EngineChoice::Main && b.engine == ABSession::EngineChoice::Main);
  view->applyPreset(ABView::RepetitionPenalty);
  QCOMPARE(view->sideConfig(ABSession::A).params.repetition_penalty, 1.0f);
  QCOMPARE(view->sideConfig(ABSession::B).params.repetition_penalty, 1.3f);
  QCOMPARE(view->sideConfig(ABSession::B).params.no_repeat_ngram_size, 0);
  // The preset runs: both sides produce their tokens.
  ABSession::SideConfig ra = view->sideConfig(ABSession::A), rb = view->sideConfig(ABSession::B);
  ra.params.ignore_eos = rb.params.ignore_eos = true;
  QVERIFY(runAB(ra, rb, QStringLiteral("the the the the the the")));
  QCOMPARE(view->session()->stats(ABSession::A).outputTokens, 24);
  QCOMPARE(view->session()->stats(ABSession::B).outputTokens, 24);
}

void TestABSession::runProducesTwoOutputs() {
  ABView* view = window_->abView();
  ABSession* s = view->session();
  QSignalSpy tokens(s, &ABSession::tokenReceived);
  ABSession::SideConfig a{greedy(10), ABSession::EngineChoice::Main};
  ABSession::SideConfig b{SamplingForm::defaults(), ABSession::EngineChoice::Main};
  b.params.max_tokens = 12;
  b.params.ignore_eos = true;
  b.params.seed = 3;
  QVERIFY(runAB(a, b, QStringLiteral("Once upon a time")));
  QVERIFY(s->isFinished(ABSession::A) && s->isFinished(ABSession::B));
  QCOMPARE(s->stats(ABSession::A).outputTokens, 10);
  QCOMPARE(s->stats(ABSession::B).outputTokens, 12);
  // Both streamed at once: side B got tokens before side A finished, and the other way round.
  int firstB = -1, lastA = -1, firstA = -1, lastB = -1;
  for (int i = 0; i < tokens.count(); ++i) {
    const int side = tokens[i].at(0).toInt();
    if (side == ABSession::A) {
      if (firstA < 0) firstA = i;
      lastA = i;
    } else {
      if (firstB < 0) firstB = i;
      lastB = i;
    }
  }
  QVERIFY(firstA >= 0 && firstB >= 0);
  QVERIFY2(firstB < lastA && firstA < lastB, "the two sides did not stream at the same time");
  for (auto side : {ABSession::A, ABSession::B}) {
    QVERIFY(!s->text(side).isEmpty());
    QCOMPARE(view->output(side)->text(), s->text(side));
    QCOMPARE(view->output(side)->chunkCount(), int(s->chunks(side).size()));
    QVERIFY2(view->statsText(side).contains(QStringLiteral("TTFT")), qPrintable(view->statsText(side)));
    QVERIFY(view->statsText(side).contains(QStringLiteral("tok/s")));
    QVERIFY(view->statsText(side).contains(QStringLiteral("finished: length")));
    QVERIFY(s->stats(side).ttftMs >= 0);
    QVERIFY(s->stats(side).tokensPerSecond > 0);
  }
  QVERIFY(view->statsText(ABSession::A).startsWith(QStringLiteral("10 tokens")));
  QVERIFY(view->statsText(ABSession::B).startsWith(QStringLiteral("12 tokens")));
  QVERIFY(view->samplingSummary(ABSession::A).startsWith(QStringLiteral("greedy")));
  QVERIFY(view->runButton()->isEnabled());
  QVERIFY(!view->stopButton()->isEnabled());
}

void TestABSession::sameSettingsAgree() {
  ABView* view = window_->abView();
  const ABSession::SideConfig same{greedy(16), ABSession::EngineChoice::Main};
  QVERIFY(runAB(same, same, QStringLiteral("The quick brown fox")));
  ABSession* s = view->session();
  QCOMPARE(s->divergence(), -1);
  QCOMPARE(s->chunks(ABSession::A), s->chunks(ABSession::B));
  QCOMPARE(view->output(ABSession::A)->highlightedChunk(), -1);
  QVERIFY2(view->divergenceText().contains(QStringLiteral("identical")), qPrintable(view->divergenceText()));
  // Their speeds are the shared steps', and the view says so beside them.
  QVERIFY2(view->messageText().contains(QStringLiteral("same steps of one engine")),
           qPrintable(view->messageText()));
}

void TestABSession::divergenceIsHighlightedInBoth() {
  ABView* view = window_->abView();
  ABSession* s = view->session();
  // Greedy against very hot sampling: they part within a few tokens.
  ABSession::SideConfig a{greedy(24), ABSession::EngineChoice::Main};
  ABSession::SideConfig b{greedy(24), ABSession::EngineChoice::Main};
  b.params.temperature = 3.0f;
  b.params.top_k = 0;
  b.params.top_p = 1.0f;
  b.params.seed = 7;
  QSignalSpy found(s, &ABSession::divergenceFound);
  QVERIFY(runAB(a, b, QStringLiteral("Once upon a time")));
  const int d = s->divergence();
  QVERIFY2(d >= 0, "hot sampling never left the greedy path");
  QCOMPARE(found.count(), 1);
  QCOMPARE(found.first().at(0).toInt(), d);
  QCOMPARE(s->chunks(ABSession::A).mid(0, d), s->chunks(ABSession::B).mid(0, d));
  QVERIFY(s->chunks(ABSession::A)[d] != s->chunks(ABSession::B)[d]);
  for (auto side : {ABSession::A, ABSession::B}) {
    TokenView* out = view->output(side);
    QCOMPARE(out->highlightedChunk(), d);
    QVERIFY2(out->chunkHighlighted(d), "the differing token is not highlighted on screen");
    if (d > 0) QVERIFY(!out->chunkHighlighted(d - 1));
    if (d + 1 < out->chunkCount()) QVERIFY(!out->chunkHighlighted(d + 1));
  }
  QVERIFY(view->divergenceText().contains(QStringLiteral("token %1").arg(d + 1)));
}

// A side's stop token ids are checked against its engine's vocabulary (the
// form had none, so an id past it passed), and Run A/B refuses while either
// side's form is invalid, naming the side and the value (it ran, sending
// only the valid ids), as the Playground does.
void TestABSession::badStopTokenIdsAreRefused() {
  ABView* view = window_->abView();
  ABSession* s = view->session();
  const int vocab = window_->controller()->modelInfo().vocab_size;
  QVERIFY(vocab > 0);
  const ABSession::SideConfig same{greedy(4), ABSession::EngineChoice::Main};
  view->setSideConfig(ABSession::A, same);
  view->setSideConfig(ABSession::B, same);
  view->setPrompt(QStringLiteral("Once upon a time"));
  auto* ids = view->samplingForm(ABSession::B)->findChild<QLineEdit*>(QStringLiteral("stopTokenIds"));
  QVERIFY(ids);
  auto* message = view->findChild<QLabel*>(QStringLiteral("abMessage"));
  QVERIFY(message);
  QSignalSpy started(s, &ABSession::started);
  const QString pastVocab = QString::number(vocab + 5);
  for (const QString& bad : {QStringLiteral("abc"), pastVocab}) {
    ids->setText(QStringLiteral("2, ") + bad);
    const QString error = view->samplingForm(ABSession::B)->errorText();
    QVERIFY2(error.contains(bad), qPrintable(bad + QStringLiteral(": '") + error + QLatin1Char('\'')));
    QVERIFY2(error.contains(QString::number(vocab - 1)), qPrintable(error));  // the model's range
    QTest::mouseClick(view->runButton(), Qt::LeftButton);
    QVERIFY(!s->isRunning());
    QCOMPARE(started.count(), 0);
    QVERIFY2(message->text().contains(QStringLiteral("B")) && message->text().contains(error),
             qPrintable(message->text()));
  }
  ids->setText(QStringLiteral("2"));
  QVERIFY(view->samplingForm(ABSession::B)->errorText().isEmpty());
  QSignalSpy finished(s, &ABSession::finished);
  QTest::mouseClick(view->runButton(), Qt::LeftButton);
  QCOMPARE(started.count(), 1);
  QTRY_VERIFY_WITH_TIMEOUT(finished.count() > 0, kTimeoutMs);
  ids->clear();
}

// "(1 tokens)" and "first 1 tokens" read as counts of one.
void TestABSession::countsOfOneAreSingular() {
  ABView* view = window_->abView();
  const ABSession::SideConfig one{greedy(1), ABSession::EngineChoice::Main};
  QVERIFY(runAB(one, one, QStringLiteral("Once upon a time")));
  QVERIFY2(view->divergenceText().contains(QStringLiteral("(1 token)")), qPrintable(view->divergenceText()));
  const ABSession::SideConfig two{greedy(2), ABSession::EngineChoice::Main};
  QVERIFY(runAB(one, two, QStringLiteral("Once upon a time")));
  QVERIFY2(view->divergenceText().contains(QStringLiteral("first 1 token;")),
           qPrintable(view->divergenceText()));
  QVERIFY(runAB(two, two, QStringLiteral("Once upon a time")));
  QVERIFY2(view->divergenceText().contains(QStringLiteral("(2 tokens)")), qPrintable(view->divergenceText()));
}

void TestABSession::stopEndsBothSides() {
  ABView* view = window_->abView();
  ABSession* s = view->session();
  EngineController* c = window_->controller();
  const ABSession::SideConfig longRun{greedy(100000), ABSession::EngineChoice::Main};
  view->setSideConfig(ABSession::A, longRun);
  view->setSideConfig(ABSession::B, longRun);
  QSignalSpy tokens(s, &ABSession::tokenReceived);
  QSignalSpy finished(s, &ABSession::finished);
  QTest::mouseClick(view->runButton(), Qt::LeftButton);
  QTRY_VERIFY_WITH_TIMEOUT(tokens.count() >= 4, kTimeoutMs);
  QVERIFY(view->stopButton()->isEnabled());
  QTest::mouseClick(view->stopButton(), Qt::LeftButton);
  QTRY_VERIFY_WITH_TIMEOUT(finished.count() > 0, kTimeoutMs);
  QCOMPARE(s->stats(ABSession::A).finishReason, brisk::FinishReason::Abort);
  QCOMPARE(s->stats(ABSession::B).finishReason, brisk::FinishReason::Abort);
  QCOMPARE(c->activeRequests(), 0);
}

void TestABSession::secondEngineStaticMatchesContinuous() {
  ABView* view = window_->abView();
  ABSession* s = view->session();
  EngineController* second = s->secondController();
  QVERIFY(second != window_->controller());
  QVERIFY(!second->hasModel());
  // Side B on the second engine, not loaded yet: Run says why.
  const ABSession::SideConfig a{greedy(20), ABSession::EngineChoice::Main};
  const ABSession::SideConfig b{greedy(20), ABSession::EngineChoice::Second};
  view->setSideConfig(ABSession::A, a);
  view->setSideConfig(ABSession::B, b);
  QVERIFY(!view->runButton()->isEnabled());
  QVERIFY(view->runButton()->toolTip().contains(QStringLiteral("second engine")));

  view->setSecondEngineOverrides(brisk::SchedulerPolicy::Static, false, 4);
  QSignalSpy loaded(second, &EngineController::modelLoaded);
  QTest::mouseClick(view->loadSecondButton(), Qt::LeftButton);
  QTRY_VERIFY_WITH_TIMEOUT(loaded.count() > 0, kTimeoutMs);
  QCOMPARE(second->engineConfig().policy, brisk::SchedulerPolicy::Static);
  QCOMPARE(second->engineConfig().max_num_seqs, 4);
  QCOMPARE(second->engineConfig().model, window_->controller()->engineConfig().model);
  QVERIFY(view->secondEngineStatus().contains(QStringLiteral("static")));
  QVERIFY(window_->controller()->engineConfig().policy == brisk::SchedulerPolicy::Continuous);

  // Continuous (main) against static (second): the same greedy tokens.
  QVERIFY(runAB(a, b, QStringLiteral("Once upon a time")));
  QCOMPARE(s->stats(ABSession::A).outputTokens, 20);
  QCOMPARE(s->stats(ABSession::B).outputTokens, 20);
  QCOMPARE(s->text(ABSession::B), s->text(ABSession::A));
  QCOMPARE(s->divergence(), -1);
  QVERIFY2(view->messageText().contains(QStringLiteral("two engines ran at the same time")),
           qPrintable(view->messageText()));
}

// The second engine's backend: Auto, CPU and CUDA, a backend this machine
// cannot run listed but disabled with the reason (as the engine settings'
// Backend combo says it), and the choice reaches the second engine's config.
void TestABSession::secondEngineOffersBackend() {
  ABView* view = window_->abView();
  auto* combo = view->findChild<QComboBox*>(QStringLiteral("secondBackend"));
  QVERIFY2(combo, "no backend choice in the Second engine box");
  QCOMPARE(combo->itemData(0).toString(), QStringLiteral("auto"));
  QVERIFY(combo->findData(QStringLiteral("cpu")) > 0);
  auto* model = qobject_cast<QStandardItemModel*>(combo->model());
  QVERIFY(model);
  for (const brisk::BackendStatus& b : brisk::list_backends()) {
    const int i = combo->findData(QString::fromStdString(b.name));
    QVERIFY2(i >= 0, b.name.c_str());
    QCOMPARE(model->item(i)->isEnabled(), b.available);
    if (!b.available)
      QVERIFY2(combo->itemData(i, Qt::ToolTipRole).toString().contains(QString::fromStdString(b.reason)),
               qPrintable(combo->itemData(i, Qt::ToolTipRole).toString()));
  }
  combo->setCurrentIndex(combo->findData(QStringLiteral("cpu")));
  QCOMPARE(view->secondEngineConfig().backend, std::string("cpu"));
  combo->setCurrentIndex(0);
  QCOMPARE(view->secondEngineConfig().backend, std::string("auto"));
}

QTEST_MAIN(TestABSession)
#include "test_ab_session.moc"
