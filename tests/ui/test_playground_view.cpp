// The playground on its own (no window): what it refuses to send, and what
// its status line and conversation say when a request ends. MainWindow's
// wiring to the engine is covered by test_main_window; here the view gets
// the finished-request record directly, and one case runs the demo engine
// for the engine's own error text.
#include <QComboBox>
#include <QLabel>
#include <QLineEdit>
#include <QSignalSpy>
#include <QStyleOptionComboBox>
#include <QtTest>

#include "ui/chat_transcript.h"
#include "ui/engine_controller.h"
#include "ui/playground_view.h"
#include "ui/sampling_form.h"

namespace {
constexpr int kTimeoutMs = 60000;

brisk::ModelInfo storiesInfo() {
  brisk::ModelInfo info;
  info.path = "/models/stories260K.bin";
  info.format = "llama2c";
  info.architecture = "llama";
  info.name = "stories260K";
  info.vocab_size = 512;
  info.tokenizer_vocab_size = 512;
  info.context_length = 512;
  return info;
}

GenerationStats finished(int prompt, int output, brisk::FinishReason reason, const QString& error = {}) {
  GenerationStats s;
  s.promptTokens = prompt;
  s.outputTokens = output;
  s.finishReason = reason;
  s.error = error;
  if (output > 0) s.ttftMs = 1.5;
  if (output > 1) s.tokensPerSecond = 100;
  return s;
}
}  // namespace

class TestPlaygroundView : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void stopTokenIdsRejectBadEntries();
  void contextFullIsSaid();
  void failedChatTurnShowsTheError();
  void formatComboShowsItsWholeText();
  void kvBudgetErrorCountsOneBlock();
  void generationBesideABenchmarkSaysSo();
};

// A benchmark running in the window takes the same CPU: the playground warns
// while it runs, and a generation that overlapped it says so beside its
// figures (its speed is not the engine's alone); one that did not, does not.
void TestPlaygroundView::generationBesideABenchmarkSaysSo() {
  PlaygroundView view;
  view.setModel(storiesInfo());
  view.setModelReady(true);
  auto* warning = view.findChild<QLabel*>(QStringLiteral("benchmarkWarning"));
  QVERIFY(warning);
  QVERIFY(warning->isHidden());
  view.setGenerating(true);
  view.setBenchmarkRunning(true);  // starts during the generation
  QVERIFY(!warning->isHidden());
  view.setBenchmarkRunning(false);  // and ends before it
  QVERIFY(warning->isHidden());
  view.setGenerating(false);
  view.showFinished(finished(5, 20, brisk::FinishReason::Length));
  QVERIFY2(view.statusText().contains(QLatin1String("beside a benchmark")), qPrintable(view.statusText()));

  view.setGenerating(true);  // the next one, alone
  view.setGenerating(false);
  view.showFinished(finished(5, 20, brisk::FinishReason::Length));
  QVERIFY2(!view.statusText().contains(QLatin1String("benchmark")), qPrintable(view.statusText()));

  view.setBenchmarkRunning(true);  // running before it starts
  view.setGenerating(true);
  view.setGenerating(false);
  view.showFinished(finished(5, 20, brisk::FinishReason::Stop));
  QVERIFY(view.statusText().contains(QLatin1String("beside a benchmark")));
}

// "abc, 99999" on a 512-token vocabulary: nothing is sent, and the message
// names both bad entries; a valid list goes through.
void TestPlaygroundView::stopTokenIdsRejectBadEntries() {
  PlaygroundView view;
  view.setModel(storiesInfo());
  view.setModelReady(true);
  view.setPrompt(QStringLiteral("Once upon a time"));
  auto* ids = view.findChild<QLineEdit*>(QStringLiteral("stopTokenIds"));
  QVERIFY(ids);
  QSignalSpy requested(&view, &PlaygroundView::generateRequested);
  for (const QString& bad : {QStringLiteral("abc, 99999"), QStringLiteral("-3"), QStringLiteral("512")}) {
    ids->setText(bad);
    Q_EMIT ids->editingFinished();
    view.requestGenerate();
    QCOMPARE(requested.count(), 0);
    QVERIFY(!view.isGenerating());
    const QString status = view.statusText();
    for (const QString& part : bad.split(QStringLiteral(", ")))
      QVERIFY2(status.contains(QLatin1Char('\'') + part + QLatin1Char('\'')), qPrintable(status));
  }
  QVERIFY2(view.statusText().contains(QStringLiteral("512")), qPrintable(view.statusText()));
  ids->setText(QStringLiteral("2, 511"));
  Q_EMIT ids->editingFinished();
  view.requestGenerate();
  QCOMPARE(requested.count(), 1);
  QCOMPARE(requested.first().at(1).value<brisk::SamplingParams>().stop_token_ids,
           (std::vector<int32_t>{2, 511}));
}

// A request that stopped at the context limit, short of its max tokens,
// says so; one that reached its max tokens reads plain "length".
void TestPlaygroundView::contextFullIsSaid() {
  PlaygroundView view;
  view.setModel(storiesInfo());
  view.setModelReady(true);
  view.setPrompt(QStringLiteral("Once"));
  brisk::SamplingParams p = view.params();
  p.max_tokens = 2000;
  p.ignore_eos = true;
  view.setParams(p);
  view.requestGenerate();
  view.setGenerating(true);
  view.setGenerating(false);
  view.showFinished(finished(5, 507, brisk::FinishReason::Length));
  QVERIFY2(view.statusText().contains(QStringLiteral("finished: length — the context is full (512 tokens)")),
           qPrintable(view.statusText()));

  p.max_tokens = 20;
  view.setParams(p);
  view.requestGenerate();
  view.setGenerating(true);
  view.setGenerating(false);
  view.showFinished(finished(5, 20, brisk::FinishReason::Length));
  QVERIFY2(view.statusText().endsWith(QStringLiteral("finished: length")), qPrintable(view.statusText()));
}

// A chat turn the engine failed: the error is the status line, no empty
// assistant turn stays in the conversation (nor in the next prompt), and
// the message is back in the input for another try.
void TestPlaygroundView::failedChatTurnShowsTheError() {
  PlaygroundView view;
  view.setModel(storiesInfo());
  view.setModelReady(true);
  view.setMode(PlaygroundView::Mode::Chat);
  view.setTemplateChoice(PlaygroundView::TemplateChoice::Plain);
  view.setPrompt(QStringLiteral("Once upon a time"));
  view.requestGenerate();
  view.setGenerating(true);
  view.appendText(QStringLiteral("There was a cat."));
  view.setGenerating(false);
  view.showFinished(finished(10, 5, brisk::FinishReason::Eos));
  QCOMPARE(view.transcript()->messages().size(), 2);

  view.setPrompt(QStringLiteral("Hello"));
  view.requestGenerate();
  view.setGenerating(true);
  view.setGenerating(false);
  const QString error = QStringLiteral("request 2 rejected: prompt of 122 tokens does not fit the context");
  view.showFinished(finished(0, 0, brisk::FinishReason::Error, error));
  QVERIFY2(view.statusText().contains(error), qPrintable(view.statusText()));
  QVERIFY2(!view.statusText().contains(QStringLiteral("0 tokens")), qPrintable(view.statusText()));
  QVERIFY2(!view.statusText().contains(QStringLiteral("TTFT")), qPrintable(view.statusText()));
  const auto& messages = view.transcript()->messages();
  QCOMPARE(messages.size(), 2);  // the first exchange only
  QCOMPARE(messages.last().text, QStringLiteral("There was a cat."));
  QCOMPARE(view.prompt(), QStringLiteral("Hello"));

  // The next turn carries no empty assistant turn.
  QSignalSpy requested(&view, &PlaygroundView::generateRequested);
  view.requestGenerate();
  QCOMPARE(requested.count(), 1);
  const QString sent = requested.first().at(0).toString();
  QCOMPARE(sent.count(QStringLiteral("Assistant:")), 2);  // the answered turn and the open one
  QCOMPARE(sent.count(QStringLiteral("User: Hello")), 1);
}

// At the playground's width in a 1280x800 window the Format combo shows its
// whole text once the model picks the Auto template ("Auto: Llama-2").
void TestPlaygroundView::formatComboShowsItsWholeText() {
  PlaygroundView view;
  view.resize(950, 700);
  view.setMode(PlaygroundView::Mode::Chat);
  view.show();
  QVERIFY(QTest::qWaitForWindowExposed(&view));
  brisk::ModelInfo info = storiesInfo();
  info.vocab_size = 32000;  // the Llama-2 vocabulary: Auto picks Llama-2
  info.name = "LLaMA v2";
  view.setModel(info);
  QCoreApplication::processEvents();
  auto* combo = view.findChild<QComboBox*>(QStringLiteral("chatTemplate"));
  QVERIFY(combo);
  QVERIFY2(combo->currentText().contains(QStringLiteral("Llama-2")), qPrintable(combo->currentText()));
  QStyleOptionComboBox opt;
  opt.initFrom(combo);
  const QRect text =
      combo->style()->subControlRect(QStyle::CC_ComboBox, &opt, QStyle::SC_ComboBoxEditField, combo);
  for (int i = 0; i < combo->count(); ++i) {
    const int need = combo->fontMetrics().horizontalAdvance(combo->itemText(i));
    QVERIFY2(
        need <= text.width(),
        qPrintable(
            QStringLiteral("'%1' needs %2 px of %3").arg(combo->itemText(i)).arg(need).arg(text.width())));
  }
}

// The engine's words for a one-block KV cache count one block.
void TestPlaygroundView::kvBudgetErrorCountsOneBlock() {
  EngineController c;
  QSignalSpy loaded(&c, &EngineController::modelLoaded);
  QSignalSpy failed(&c, &EngineController::loadFailed);
  brisk::EngineConfig config;
  config.model = "demo";
  config.num_kv_blocks = 1;
  config.block_size = 16;
  config.threads = 1;
  c.loadModel(config);
  QTRY_VERIFY_WITH_TIMEOUT(loaded.count() + failed.count() > 0, kTimeoutMs);
  if (!failed.isEmpty()) QFAIL(qPrintable(failed.first().at(0).toString()));
  QSignalSpy done(&c, &EngineController::requestFinished);
  brisk::SamplingParams p;
  p.max_tokens = 4;
  c.generate(QStringLiteral("one two three four five six seven eight nine ten eleven twelve thirteen "
                            "fourteen fifteen sixteen seventeen eighteen nineteen twenty"),
             p);
  QTRY_VERIFY_WITH_TIMEOUT(done.count() > 0, kTimeoutMs);
  const GenerationStats s = done.first().at(2).value<GenerationStats>();
  QCOMPARE(s.finishReason, brisk::FinishReason::Error);
  QVERIFY2(s.error.contains(QStringLiteral("1 block of 16 tokens")), qPrintable(s.error));
}

QTEST_MAIN(TestPlaygroundView)
#include "test_playground_view.moc"
