#include "playground_view.h"

#include <QCheckBox>
#include <QDoubleSpinBox>
#include <QFontDatabase>
#include <QGridLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QKeySequence>
#include <QLabel>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QShortcut>
#include <QSpinBox>
#include <QSplitter>
#include <QTextCursor>
#include <QVBoxLayout>
#include <limits>

#include "format.h"

PlaygroundView::PlaygroundView(QWidget* parent) : QWidget(parent) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);

  // Prompt.
  auto* promptBox = new QWidget(this);
  auto* promptLayout = new QVBoxLayout(promptBox);
  promptLayout->setContentsMargins(0, 0, 0, 0);
  auto* promptLabel = new QLabel(tr("<b>Prompt</b>"), promptBox);
  prompt_ = new QPlainTextEdit(promptBox);
  prompt_->setObjectName(QStringLiteral("prompt"));
  prompt_->setPlaceholderText(tr("Type a prompt, then Generate (Ctrl+Return)"));
  prompt_->setTabChangesFocus(true);
  promptLabel->setBuddy(prompt_);
  promptLayout->addWidget(promptLabel);
  promptLayout->addWidget(prompt_);

  // Sampling knobs.
  auto* knobs = new QGroupBox(tr("Sampling"), promptBox);
  auto* grid = new QGridLayout(knobs);
  int column = 0;
  auto addKnob = [&](const QString& label, QWidget* w, const QString& tip) {
    auto* l = new QLabel(label, knobs);
    l->setBuddy(w);
    l->setToolTip(tip);
    w->setToolTip(tip);
    grid->addWidget(l, 0, column);
    grid->addWidget(w, 1, column);
    ++column;
  };
  maxTokens_ = new QSpinBox(knobs);
  maxTokens_->setObjectName(QStringLiteral("maxTokens"));
  maxTokens_->setRange(1, 1 << 20);
  maxTokens_->setValue(128);
  addKnob(tr("Max &tokens"), maxTokens_,
          tr("Most tokens to generate; generation also ends at end-of-sequence or the context limit"));
  temperature_ = new QDoubleSpinBox(knobs);
  temperature_->setObjectName(QStringLiteral("temperature"));
  temperature_->setRange(0.0, 5.0);
  temperature_->setDecimals(2);
  temperature_->setSingleStep(0.05);
  temperature_->setValue(0.8);
  temperature_->setSpecialValueText(tr("0 (greedy)"));
  addKnob(tr("T&emperature"), temperature_,
          tr("Divides the logits before sampling: higher is more random; 0 always takes the most likely token (greedy)"));
  topK_ = new QSpinBox(knobs);
  topK_->setObjectName(QStringLiteral("topK"));
  topK_->setRange(0, 1 << 20);
  topK_->setValue(40);
  topK_->setSpecialValueText(tr("off"));
  addKnob(tr("Top-&k"), topK_, tr("Sample only among the k most likely tokens; 0 turns it off"));
  topP_ = new QDoubleSpinBox(knobs);
  topP_->setObjectName(QStringLiteral("topP"));
  topP_->setRange(0.01, 1.0);
  topP_->setDecimals(2);
  topP_->setSingleStep(0.05);
  topP_->setValue(0.95);
  addKnob(tr("Top-&p"), topP_,
          tr("Nucleus sampling: sample among the fewest most likely tokens whose probabilities add up to p; 1 turns it off"));
  seed_ = new QSpinBox(knobs);
  seed_->setObjectName(QStringLiteral("seed"));
  seed_->setRange(-1, std::numeric_limits<int>::max());
  seed_->setValue(-1);
  seed_->setSpecialValueText(tr("auto"));
  addKnob(tr("&Seed"), seed_,
          tr("Random seed of this request: the same seed, prompt and settings give the same text; "
             "auto derives one from the engine seed and the request id"));
  ignoreEos_ = new QCheckBox(tr("Ignore EOS"), knobs);
  ignoreEos_->setObjectName(QStringLiteral("ignoreEos"));
  ignoreEos_->setToolTip(tr("Keep generating past the end-of-sequence token, up to Max tokens "
                            "(for timing runs of a fixed length)"));
  grid->addWidget(ignoreEos_, 1, column++);
  for (int c = 0; c < column; ++c) grid->setColumnStretch(c, 1);
  promptLayout->addWidget(knobs);

  // Buttons.
  auto* buttons = new QHBoxLayout;
  generate_ = new QPushButton(tr("Generate"), promptBox);
  generate_->setObjectName(QStringLiteral("generate"));
  generate_->setToolTip(tr("Generate a completion of the prompt (Ctrl+Return)"));
  generate_->setDefault(true);
  stop_ = new QPushButton(tr("Stop"), promptBox);
  stop_->setObjectName(QStringLiteral("stop"));
  stop_->setToolTip(tr("Stop the generation (Esc)"));
  buttons->addWidget(generate_);
  buttons->addWidget(stop_);
  buttons->addStretch(1);
  promptLayout->addLayout(buttons);

  // Output.
  auto* outputBox = new QWidget(this);
  auto* outputLayout = new QVBoxLayout(outputBox);
  outputLayout->setContentsMargins(0, 0, 0, 0);
  auto* outputLabel = new QLabel(tr("<b>Output</b>"), outputBox);
  output_ = new QPlainTextEdit(outputBox);
  output_->setObjectName(QStringLiteral("output"));
  output_->setReadOnly(true);
  output_->setPlaceholderText(tr("The completion streams here, token by token"));
  outputLabel->setBuddy(output_);
  status_ = new QLabel(outputBox);
  status_->setObjectName(QStringLiteral("generationStatus"));
  status_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  status_->setWordWrap(true);
  status_->setToolTip(tr("Generated tokens · time to first token · decode speed after the first token · why it stopped"));
  outputLayout->addWidget(outputLabel);
  outputLayout->addWidget(output_, 1);
  outputLayout->addWidget(status_);

  auto* split = new QSplitter(Qt::Vertical, this);
  split->setObjectName(QStringLiteral("playgroundSplitter"));
  split->setChildrenCollapsible(false);
  split->addWidget(promptBox);
  split->addWidget(outputBox);
  split->setStretchFactor(0, 1);
  split->setStretchFactor(1, 3);
  split->setSizes({260, 500});
  layout->addWidget(split);

  const QFont mono = QFontDatabase::systemFont(QFontDatabase::FixedFont);
  prompt_->setFont(mono);
  output_->setFont(mono);

  connect(generate_, &QPushButton::clicked, this, &PlaygroundView::requestGenerate);
  connect(stop_, &QPushButton::clicked, this, &PlaygroundView::stopRequested);
  for (auto key : {QKeySequence(Qt::CTRL | Qt::Key_Return), QKeySequence(Qt::CTRL | Qt::Key_Enter)}) {
    auto* sc = new QShortcut(key, this, this, &PlaygroundView::requestGenerate,
                             Qt::WidgetWithChildrenShortcut);
    Q_UNUSED(sc);
  }
  auto* esc = new QShortcut(QKeySequence(Qt::Key_Escape), this, this, [this] {
    if (generating_) Q_EMIT stopRequested();
  }, Qt::WidgetWithChildrenShortcut);
  Q_UNUSED(esc);

  updateButtons();
}

QString PlaygroundView::prompt() const { return prompt_->toPlainText(); }

void PlaygroundView::setPrompt(const QString& prompt) { prompt_->setPlainText(prompt); }

brisk::SamplingParams PlaygroundView::params() const {
  brisk::SamplingParams p;
  p.max_tokens = maxTokens_->value();
  p.temperature = static_cast<float>(temperature_->value());
  p.top_k = topK_->value();
  p.top_p = static_cast<float>(topP_->value());
  if (seed_->value() >= 0) p.seed = static_cast<uint64_t>(seed_->value());
  p.ignore_eos = ignoreEos_->isChecked();
  return p;
}

void PlaygroundView::setParams(const brisk::SamplingParams& p) {
  maxTokens_->setValue(p.max_tokens);
  temperature_->setValue(p.temperature);
  topK_->setValue(p.top_k);
  topP_->setValue(p.top_p);
  seed_->setValue(p.seed && *p.seed <= static_cast<uint64_t>(std::numeric_limits<int>::max())
                      ? static_cast<int>(*p.seed)
                      : -1);
  ignoreEos_->setChecked(p.ignore_eos);
}

QString PlaygroundView::outputText() const { return output_->toPlainText(); }

QString PlaygroundView::statusText() const { return status_->text(); }

void PlaygroundView::setModelReady(bool ready) {
  ready_ = ready;
  updateButtons();
}

void PlaygroundView::setGenerating(bool generating) {
  generating_ = generating;
  if (generating) status_->setText(tr("Generating…"));
  updateButtons();
}

void PlaygroundView::updateButtons() {
  generate_->setEnabled(ready_ && !generating_);
  stop_->setEnabled(generating_);
}

void PlaygroundView::clearOutput() {
  output_->clear();
  status_->clear();
}

void PlaygroundView::appendText(const QString& text) {
  // Insert at the end without adding a paragraph (appendPlainText would).
  QTextCursor cursor(output_->document());
  cursor.movePosition(QTextCursor::End);
  cursor.insertText(text);
  output_->ensureCursorVisible();
  output_->moveCursor(QTextCursor::End);
}

void PlaygroundView::showFinished(const GenerationStats& s) {
  QString line = s.outputTokens == 1 ? tr("1 token") : tr("%1 tokens").arg(s.outputTokens);
  line += QStringLiteral(" · TTFT ") + fmt::milliseconds(s.ttftMs);
  line += QStringLiteral(" · ") +
          (s.tokensPerSecond >= 0 ? QString::number(s.tokensPerSecond, 'f', 1) : QStringLiteral("—")) +
          QStringLiteral(" tok/s");
  line += QStringLiteral(" · finished: ") + fmt::finishReason(s.finishReason);
  if (!s.error.isEmpty()) line += QStringLiteral(" — ") + s.error;
  status_->setText(line);
}

void PlaygroundView::showMessage(const QString& text) { status_->setText(text); }

void PlaygroundView::requestGenerate() {
  if (!ready_ || generating_) return;
  Q_EMIT generateRequested(prompt(), params());
}
