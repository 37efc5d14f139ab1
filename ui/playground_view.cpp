#include "playground_view.h"

#include <QButtonGroup>
#include <QCheckBox>
#include <QComboBox>
#include <QFontDatabase>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QScrollBar>
#include <QSplitter>
#include <QStackedWidget>
#include <QTextBrowser>
#include <QTimer>
#include <QToolButton>
#include <QVBoxLayout>

#include "chat_transcript.h"
#include "format.h"
#include "sampling_form.h"
#include "token_view.h"

PlaygroundView::PlaygroundView(QWidget* parent) : QWidget(parent) {
  setObjectName(QStringLiteral("playground"));
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);

  // Mode bar: Completion | Chat, and the chat's options.
  auto* modeBar = new QHBoxLayout;
  modeGroup_ = new QButtonGroup(this);
  modeGroup_->setExclusive(true);
  auto modeButton = [&](const QString& text, const QString& name, const QString& tip, Mode m) {
    auto* b = new QToolButton(this);
    b->setText(text);
    b->setObjectName(name);
    b->setToolTip(tip);
    b->setCheckable(true);
    b->setToolButtonStyle(Qt::ToolButtonTextOnly);
    modeGroup_->addButton(b, int(m));
    modeBar->addWidget(b);
    return b;
  };
  modeButton(tr("Completion"), QStringLiteral("modeCompletion"),
             tr("The model continues the prompt"), Mode::Completion)
      ->setChecked(true);
  modeButton(tr("Chat"), QStringLiteral("modeChat"),
             tr("A conversation: each message is sent with the turns before it, in the model's "
                "chat format"),
             Mode::Chat);
  modeBar->addSpacing(12);

  chatOptions_ = new QWidget(this);
  auto* chatBar = new QHBoxLayout(chatOptions_);
  chatBar->setContentsMargins(0, 0, 0, 0);
  template_ = new QComboBox(chatOptions_);
  template_->setObjectName(QStringLiteral("chatTemplate"));
  // "Auto: Llama-2 [INST]" arrives with the model, after the first layout:
  // the combo grows to it (the system prompt beside it gives way).
  template_->setSizeAdjustPolicy(QComboBox::AdjustToContents);
  template_->addItem(tr("Auto"), int(TemplateChoice::Auto));
  template_->addItem(ChatTemplate::kindName(ChatTemplate::Kind::Llama2), int(TemplateChoice::Llama2));
  template_->addItem(ChatTemplate::kindName(ChatTemplate::Kind::Plain), int(TemplateChoice::Plain));
  template_->setToolTip(
      tr("How turns are written into the prompt. Llama-2: \"[INST] message [/INST] answer\"; "
         "Plain: \"User: message\\nAssistant: answer\" (stops at the next \"User:\"). Auto picks "
         "Llama-2 for Llama/Mistral models with the Llama-2 vocabulary, Plain otherwise."));
  auto* templateLabel = new QLabel(tr("&Format:"), chatOptions_);
  templateLabel->setBuddy(template_);
  auto* systemLabel = new QLabel(tr("S&ystem:"), chatOptions_);
  system_ = new QLineEdit(chatOptions_);
  system_->setObjectName(QStringLiteral("systemPrompt"));
  system_->setPlaceholderText(tr("System prompt (optional)"));
  system_->setToolTip(tr("Instructions placed before the first message"));
  system_->setClearButtonEnabled(true);
  clearChat_ = new QPushButton(tr("New chat"), chatOptions_);
  clearChat_->setObjectName(QStringLiteral("clearChat"));
  clearChat_->setToolTip(tr("Forget the conversation and start again"));
  chatBar->addWidget(templateLabel);
  chatBar->addWidget(template_);
  systemLabel->setBuddy(system_);
  chatBar->addWidget(systemLabel);
  chatBar->addWidget(system_, 1);
  chatBar->addWidget(clearChat_);

  showTokens_ = new QCheckBox(tr("Show tokens"), this);
  showTokens_->setObjectName(QStringLiteral("showTokens"));
  showTokens_->setToolTip(tr("Draw each generated token as a chip, tinted by its probability under the model (red: unlikely, green: certain)"));
  modeBar->addStretch(1);
  modeBar->addWidget(showTokens_);
  layout->addLayout(modeBar);
  layout->addWidget(chatOptions_);

  // Input.
  auto* inputBox = new QWidget(this);
  auto* inputLayout = new QVBoxLayout(inputBox);
  inputLayout->setContentsMargins(0, 0, 0, 0);
  inputLabel_ = new QLabel(inputBox);
  prompt_ = new QPlainTextEdit(inputBox);
  prompt_->setObjectName(QStringLiteral("prompt"));
  prompt_->setTabChangesFocus(true);
  prompt_->setMinimumHeight(48);
  inputLabel_->setBuddy(prompt_);
  inputLayout->addWidget(inputLabel_);
  inputLayout->addWidget(prompt_, 1);

  sampling_ = new SamplingForm(tr("Sampling"), 0, inputBox);
  sampling_->setObjectName(QStringLiteral("sampling"));
  inputLayout->addWidget(sampling_);

  auto* buttons = new QHBoxLayout;
  generate_ = new QPushButton(inputBox);
  generate_->setObjectName(QStringLiteral("generate"));
  generate_->setDefault(true);
  stop_ = new QPushButton(tr("Stop"), inputBox);
  stop_->setObjectName(QStringLiteral("stop"));
  stop_->setToolTip(tr("Stop the generation: the engine aborts the request (Esc)"));
  buttons->addWidget(generate_);
  buttons->addWidget(stop_);
  buttons->addStretch(1);
  inputLayout->addLayout(buttons);

  // Output.
  auto* outputBox = new QWidget(this);
  auto* outputLayout = new QVBoxLayout(outputBox);
  outputLayout->setContentsMargins(0, 0, 0, 0);
  outputLabel_ = new QLabel(outputBox);
  outputStack_ = new QStackedWidget(outputBox);
  output_ = new TokenView(outputStack_);
  output_->setObjectName(QStringLiteral("output"));
  output_->setPlaceholderText(tr("The completion streams here, token by token"));
  chatView_ = new QTextBrowser(outputStack_);
  chatView_->setObjectName(QStringLiteral("chatView"));
  chatView_->setOpenLinks(false);
  chatView_->setPlaceholderText(tr("The conversation appears here"));
  outputStack_->addWidget(output_);
  outputStack_->addWidget(chatView_);
  status_ = new QLabel(outputBox);
  status_->setObjectName(QStringLiteral("generationStatus"));
  status_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  status_->setWordWrap(true);
  status_->setToolTip(tr("Generated tokens · time to first token · decode speed after the first "
                         "token · why it stopped (measured by the engine)"));
  benchmarkWarning_ = new QLabel(
      tr("A benchmark is running: a generation here competes with it for the machine, and both sets of "
         "figures suffer."),
      outputBox);
  benchmarkWarning_->setObjectName(QStringLiteral("benchmarkWarning"));
  benchmarkWarning_->setWordWrap(true);
  benchmarkWarning_->setStyleSheet(QStringLiteral("color: #8a5a00;"));
  benchmarkWarning_->hide();
  outputLayout->addWidget(outputLabel_);
  outputLayout->addWidget(outputStack_, 1);
  outputLayout->addWidget(benchmarkWarning_);
  outputLayout->addWidget(status_);

  split_ = new QSplitter(Qt::Vertical, this);
  auto* split = split_;
  split->setObjectName(QStringLiteral("playgroundSplitter"));
  split->setChildrenCollapsible(false);
  split->addWidget(inputBox);
  split->addWidget(outputBox);
  split->setStretchFactor(0, 0);
  split->setStretchFactor(1, 1);
  layout->addWidget(split, 1);

  prompt_->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));

  transcript_ = new ChatTranscript(this);
  chatRender_ = new QTimer(this);
  chatRender_->setSingleShot(true);
  chatRender_->setInterval(30);  // coalesce streamed tokens into one re-render
  connect(chatRender_, &QTimer::timeout, this, &PlaygroundView::renderChat);
  connect(transcript_, &QAbstractItemModel::dataChanged, this, &PlaygroundView::scheduleChatRender);
  connect(transcript_, &QAbstractItemModel::rowsInserted, this, &PlaygroundView::scheduleChatRender);
  connect(transcript_, &QAbstractItemModel::rowsRemoved, this, &PlaygroundView::scheduleChatRender);
  connect(transcript_, &QAbstractItemModel::modelReset, this, &PlaygroundView::scheduleChatRender);

  connect(modeGroup_, &QButtonGroup::idClicked, this, [this](int id) { setMode(Mode(id)); });
  connect(generate_, &QPushButton::clicked, this, &PlaygroundView::requestGenerate);
  connect(stop_, &QPushButton::clicked, this, &PlaygroundView::stopRequested);
  connect(showTokens_, &QCheckBox::toggled, output_, &TokenView::setShowTokens);
  connect(clearChat_, &QPushButton::clicked, this, [this] {
    transcript_->clear();
    status_->clear();
  });

  updateModeWidgets();
  updateButtons();
}

QString PlaygroundView::prompt() const { return prompt_->toPlainText(); }

void PlaygroundView::setPrompt(const QString& prompt) { prompt_->setPlainText(prompt); }

brisk::SamplingParams PlaygroundView::params() const { return sampling_->params(); }

void PlaygroundView::setParams(const brisk::SamplingParams& p) { sampling_->setParams(p); }

QString PlaygroundView::outputText() const {
  if (mode_ == Mode::Completion) return output_->text();
  const auto& m = transcript_->messages();
  for (auto it = m.rbegin(); it != m.rend(); ++it)
    if (it->role == ChatMessage::Role::Assistant) return it->text;
  return {};
}

QString PlaygroundView::statusText() const { return status_->text(); }

PlaygroundView::TemplateChoice PlaygroundView::templateChoice() const {
  return TemplateChoice(template_->currentData().toInt());
}

void PlaygroundView::setTemplateChoice(TemplateChoice choice) {
  template_->setCurrentIndex(template_->findData(int(choice)));
}

ChatTemplate PlaygroundView::chatTemplate() const {
  switch (templateChoice()) {
    case TemplateChoice::Llama2: return ChatTemplate(ChatTemplate::Kind::Llama2);
    case TemplateChoice::Plain: return ChatTemplate(ChatTemplate::Kind::Plain);
    case TemplateChoice::Auto: break;
  }
  return ChatTemplate(hasModel_ ? ChatTemplate::detect(model_) : ChatTemplate::Kind::Plain);
}

QString PlaygroundView::systemPrompt() const { return system_->text(); }

void PlaygroundView::setSystemPrompt(const QString& text) { system_->setText(text); }

bool PlaygroundView::showTokens() const { return showTokens_->isChecked(); }

void PlaygroundView::setShowTokens(bool show) { showTokens_->setChecked(show); }

void PlaygroundView::setMode(Mode mode) {
  if (generating_) {  // the running request belongs to the current mode
    modeGroup_->button(int(mode_))->setChecked(true);
    return;
  }
  const bool changed = mode != mode_;
  mode_ = mode;
  modeGroup_->button(int(mode))->setChecked(true);
  updateModeWidgets();
  updateButtons();
  if (changed) Q_EMIT modeChanged(mode);
}

void PlaygroundView::updateModeWidgets() {
  const bool chat = mode_ == Mode::Chat;
  chatOptions_->setVisible(chat);
  showTokens_->setVisible(!chat);
  outputStack_->setCurrentIndex(chat ? 1 : 0);
  inputLabel_->setText(chat ? tr("<b>Message</b>") : tr("<b>Prompt</b>"));
  outputLabel_->setText(chat ? tr("<b>Conversation</b>") : tr("<b>Output</b>"));
  prompt_->setPlaceholderText(chat ? tr("Type a message, then Send (Ctrl+Return)")
                                   : tr("Type a prompt, then Generate (Ctrl+Return)"));
  generate_->setText(chat ? tr("Send") : tr("Generate"));
  generate_->setToolTip(chat ? tr("Send the message; the answer streams into the conversation "
                                  "(Ctrl+Return)")
                             : tr("Generate a completion of the prompt (Ctrl+Return)"));
}

void PlaygroundView::setModel(const brisk::ModelInfo& info) {
  model_ = info;
  hasModel_ = true;
  sampling_->setVocabularySize(info.vocab_size);
  const auto kind = ChatTemplate::detect(info);
  template_->setItemText(template_->findData(int(TemplateChoice::Auto)),
                         tr("Auto: %1").arg(ChatTemplate::kindName(kind)));
}

void PlaygroundView::setModelReady(bool ready) {
  ready_ = ready;
  updateButtons();
}

void PlaygroundView::setGenerating(bool generating) {
  generating_ = generating;
  if (generating) {
    status_->setText(tr("Generating…"));
    sharedWithBenchmark_ = benchmarkRunning_;
  }
  updateButtons();
}

void PlaygroundView::setBenchmarkRunning(bool running) {
  benchmarkRunning_ = running;
  benchmarkWarning_->setVisible(running);
  if (running && generating_) sharedWithBenchmark_ = true;
}

void PlaygroundView::updateButtons() {
  generate_->setEnabled(ready_ && !generating_);
  stop_->setEnabled(generating_);
  clearChat_->setEnabled(!generating_);
  for (QAbstractButton* b : modeGroup_->buttons()) b->setEnabled(!generating_);
}

void PlaygroundView::clearOutput() {
  if (mode_ == Mode::Chat) transcript_->clear();
  else output_->clearChunks();
  status_->clear();
}

void PlaygroundView::appendText(const QString& text, double probability, const TokenAlternatives& alternatives) {
  if (mode_ == Mode::Chat) transcript_->appendToLast(text);
  else output_->appendChunk(text, probability, alternatives);
}

void PlaygroundView::showFinished(const GenerationStats& s) {
  QString summary = fmt::generationSummary(s, lastMaxTokens_);
  // Its speed is not this engine's alone: say so beside the figures.
  if (sharedWithBenchmark_) summary += tr(" · ran beside a benchmark");
  sharedWithBenchmark_ = false;
  status_->setText(summary);
  if (mode_ == Mode::Chat) {
    // A turn that failed (or was stopped) before its first token leaves no
    // "(no text)" answer behind to be sent with the next turn: the message
    // goes back to the input, as when the request was refused outright.
    const auto& m = transcript_->messages();
    const bool failed =
        s.finishReason == brisk::FinishReason::Error || s.finishReason == brisk::FinishReason::Abort;
    if (failed && m.size() >= 2 && m.last().role == ChatMessage::Role::Assistant && m.last().text.isEmpty() &&
        m[m.size() - 2].role == ChatMessage::Role::User) {
      transcript_->removeLast();
      const QString message = transcript_->messages().last().text;
      transcript_->removeLast();
      if (prompt_->toPlainText().trimmed().isEmpty()) prompt_->setPlainText(message);
    }
    renderChat();  // the last tokens, now
  }
}

void PlaygroundView::showMessage(const QString& text) { status_->setText(text); }

void PlaygroundView::requestRejected(const QString& why) {
  if (mode_ == Mode::Chat && !transcript_->messages().isEmpty()) {
    // Drop the empty assistant turn and give the message back.
    transcript_->removeLast();
    if (!transcript_->messages().isEmpty()) {
      const ChatMessage user = transcript_->messages().last();
      transcript_->removeLast();
      prompt_->setPlainText(user.text);
    }
  }
  status_->setText(why);
}

void PlaygroundView::requestGenerate() {
  if (!ready_ || generating_) return;
  const QString invalid = sampling_->errorText();
  if (!invalid.isEmpty()) {  // the field is marked; nothing is sent until it is fixed
    status_->setText(tr("%1 — fix it to generate.").arg(invalid));
    return;
  }
  brisk::SamplingParams p = params();
  lastMaxTokens_ = p.max_tokens;
  if (mode_ == Mode::Completion) {
    output_->clearChunks();
    status_->clear();
    lastSent_ = prompt();
    Q_EMIT generateRequested(lastSent_, p);
    return;
  }
  const QString message = prompt().trimmed();
  if (message.isEmpty()) {
    status_->setText(tr("Type a message first"));
    return;
  }
  const ChatTemplate tmpl = chatTemplate();
  transcript_->addMessage(ChatMessage::Role::User, message);
  lastSent_ = tmpl.build(transcript_->messages(), systemPrompt());
  transcript_->addMessage(ChatMessage::Role::Assistant, QString());
  for (const QString& s : tmpl.stopStrings()) p.stop.push_back(s.toStdString());
  prompt_->clear();
  status_->clear();
  Q_EMIT generateRequested(lastSent_, p);
}

void PlaygroundView::scheduleChatRender() {
  if (!chatRender_->isActive()) chatRender_->start();
}

void PlaygroundView::renderChat() {
  chatRender_->stop();
  QScrollBar* bar = chatView_->verticalScrollBar();
  const bool atBottom = bar->value() >= bar->maximum() - 4;
  QString html;
  const auto& messages = transcript_->messages();
  for (int i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    const bool user = m.role == ChatMessage::Role::User;
    QString text = m.text.toHtmlEscaped();
    text.replace(QLatin1Char('\n'), QStringLiteral("<br>"));
    if (text.isEmpty() && !user)
      text = generating_ && i == messages.size() - 1 ? QStringLiteral("…") : tr("<i>(no text)</i>");
    html += QStringLiteral(
                "<table width=\"100%\" cellspacing=\"0\" cellpadding=\"6\" style=\"margin-bottom:6px\">"
                "<tr><td style=\"background-color:%1\"><b style=\"color:%2\">%3</b><br>"
                "<span style=\"font-family:monospace\">%4</span></td></tr></table>")
                .arg(user ? QStringLiteral("#eef3fb") : QStringLiteral("#f6f6f4"),
                     user ? QStringLiteral("#1a5fb4") : QStringLiteral("#26734d"),
                     user ? tr("User") : tr("Assistant"), text);
  }
  chatView_->setHtml(html);
  if (atBottom) bar->setValue(bar->maximum());
}

void PlaygroundView::showEvent(QShowEvent* event) {
  QWidget::showEvent(event);
  if (sized_) return;
  sized_ = true;
  // The prompt gets about five lines; the output the rest.
  QWidget* input = split_->widget(0);
  const int promptHeight = prompt_->fontMetrics().lineSpacing() * 5 + 12;
  const int inputHeight =
      input->minimumSizeHint().height() - prompt_->minimumHeight() + std::max(promptHeight, prompt_->minimumHeight());
  const int total = split_->height();
  split_->setSizes({inputHeight, std::max(100, total - inputHeight)});
}
