#include "ab_view.h"

#include <QCheckBox>
#include <QComboBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QFontDatabase>
#include <QFrame>
#include <QGridLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QSplitter>
#include <QStandardItemModel>
#include <QVBoxLayout>

#include "backend_combo.h"
#include "brisk/sysinfo.h"
#include "engine_controller.h"
#include "format.h"
#include "sampling_form.h"
#include "token_view.h"
#include "tokenizer_prompt.h"

namespace {
const char* const kChoose = "\x01choose";
QString sideName(int side) { return side == ABSession::A ? QStringLiteral("A") : QStringLiteral("B"); }
}  // namespace

ABView::ABView(ABSession* session, QWidget* parent) : QWidget(parent), session_(session) {
  setObjectName(QStringLiteral("abView"));
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);

  // Prompt and buttons.
  auto* top = new QHBoxLayout;
  auto* promptCol = new QVBoxLayout;
  auto* promptLabel = new QLabel(tr("<b>Prompt</b> (both sides answer it)"), this);
  prompt_ = new QPlainTextEdit(this);
  prompt_->setObjectName(QStringLiteral("abPrompt"));
  prompt_->setPlaceholderText(tr("Type a prompt, then Run A/B (Ctrl+Return)"));
  prompt_->setTabChangesFocus(true);
  prompt_->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
  prompt_->setFixedHeight(prompt_->fontMetrics().lineSpacing() * 3 + 14);
  promptLabel->setBuddy(prompt_);
  promptCol->addWidget(promptLabel);
  promptCol->addWidget(prompt_);
  top->addLayout(promptCol, 1);
  auto* buttons = new QVBoxLayout;
  buttons->addStretch(1);
  preset_ = new QComboBox(this);
  preset_->setObjectName(QStringLiteral("abPreset"));
  preset_->addItem(tr("Presets…"));
  preset_->addItem(tr("Repetition: none vs penalty 1.3"));
  preset_->addItem(tr("Repetition: penalty 1.3 vs no-repeat 3-gram"));
  preset_->addItem(tr("Greedy vs sampling"));
  preset_->setToolTip(
      tr("Set both sides to a ready-made comparison (greedy, so the only difference "
         "is the knob under test); the prompt and max tokens are kept"));
  buttons->addWidget(preset_);
  run_ = new QPushButton(tr("Run A/B"), this);
  run_->setObjectName(QStringLiteral("abRun"));
  run_->setToolTip(tr("Send the prompt to both configurations at once (Ctrl+Return)"));
  stop_ = new QPushButton(tr("Stop"), this);
  stop_->setObjectName(QStringLiteral("abStop"));
  stop_->setToolTip(tr("Abort both requests (Esc)"));
  buttons->addWidget(run_);
  buttons->addWidget(stop_);
  top->addLayout(buttons);
  layout->addLayout(top);

  // The second engine.
  auto* second = new QGroupBox(tr("Second engine (for a side set to \"Second engine\")"), this);
  second->setObjectName(QStringLiteral("secondEngineBox"));
  auto* sl = new QGridLayout(second);
  sl->setVerticalSpacing(4);
  secondModel_ = new QComboBox(second);
  secondModel_->setObjectName(QStringLiteral("secondModel"));
  secondModel_->addItem(tr("Same model as the main engine"), QString());
  secondModel_->addItem(tr("Other model file…"), QString::fromLatin1(kChoose));
  secondModel_->setToolTip(tr("The model the second engine loads"));
  secondModel_->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
  secondModel_->setMinimumContentsLength(12);
  secondBackend_ = new QComboBox(second);
  secondBackend_->setObjectName(QStringLiteral("secondBackend"));
  fillBackendCombo(secondBackend_);
  secondBackend_->setToolTip(
      tr("The backend the second engine runs on (CPU against CUDA: an A/B of devices); "
         "an unavailable one is greyed out, its tooltip says why"));
  secondPolicy_ = new QComboBox(second);
  secondPolicy_->setObjectName(QStringLiteral("secondPolicy"));
  secondPolicy_->addItem(tr("Static batching"), int(brisk::SchedulerPolicy::Static));
  secondPolicy_->addItem(tr("Continuous batching"), int(brisk::SchedulerPolicy::Continuous));
  secondPolicy_->setToolTip(
      tr("Continuous: requests join and leave the batch at every step; "
         "static: a batch runs until all its members finish"));
  secondChunked_ = new QCheckBox(tr("Chunked prefill"), second);
  secondChunked_->setObjectName(QStringLiteral("secondChunked"));
  secondChunked_->setChecked(true);
  secondChunked_->setToolTip(tr("Split long prompts over several steps (continuous policy)"));
  secondSeqs_ = new QSpinBox(second);
  secondSeqs_->setObjectName(QStringLiteral("secondMaxSeqs"));
  secondSeqs_->setRange(1, 4096);
  secondSeqs_->setValue(32);
  secondSeqs_->setPrefix(tr("max seqs "));
  secondSeqs_->setToolTip(tr("Most sequences the second engine runs in one step"));
  loadSecond_ = new QPushButton(tr("Load"), second);
  loadSecond_->setObjectName(QStringLiteral("loadSecond"));
  loadSecond_->setToolTip(tr("Load the second engine with these settings (the rest as the main engine's)"));
  secondStatus_ = new QLabel(second);
  secondStatus_->setObjectName(QStringLiteral("secondStatus"));
  secondStatus_->setWordWrap(true);
  auto* modelLabel = new QLabel(tr("&Model:"), second);
  modelLabel->setBuddy(secondModel_);
  sl->addWidget(modelLabel, 0, 0);
  sl->addWidget(secondModel_, 0, 1, 1, 2);
  sl->addWidget(secondPolicy_, 0, 3);
  auto* backendLabel = new QLabel(tr("&Backend:"), second);
  backendLabel->setBuddy(secondBackend_);
  sl->addWidget(backendLabel, 1, 0);
  sl->addWidget(secondBackend_, 1, 1);
  sl->addWidget(secondChunked_, 2, 1);
  sl->addWidget(secondSeqs_, 2, 2);
  sl->addWidget(loadSecond_, 2, 3);
  sl->addWidget(secondStatus_, 3, 0, 1, 4);
  sl->setColumnStretch(1, 1);
  sl->setColumnStretch(2, 1);
  layout->addWidget(second);

  // The two sides.
  auto* split = new QSplitter(Qt::Horizontal, this);
  split->setObjectName(QStringLiteral("abSplitter"));
  split->setChildrenCollapsible(false);
  split->addWidget(makeSide(ABSession::A));
  split->addWidget(makeSide(ABSession::B));
  layout->addWidget(split, 1);

  divergence_ = new QLabel(this);
  divergence_->setObjectName(QStringLiteral("abDivergence"));
  divergence_->setWordWrap(true);
  divergence_->setToolTip(tr("Compares the two streams token by token"));
  message_ = new QLabel(this);
  message_->setObjectName(QStringLiteral("abMessage"));
  message_->setWordWrap(true);
  layout->addWidget(divergence_);
  layout->addWidget(message_);

  // Sensible contrast by default: greedy against sampled.
  ABSession::SideConfig a, b;
  a.params = SamplingForm::defaults();
  a.params.temperature = 0.0f;
  b.params = SamplingForm::defaults();
  b.params.seed = 1;
  setSideConfig(ABSession::A, a);
  setSideConfig(ABSession::B, b);

  connect(preset_, &QComboBox::activated, this, [this](int index) {
    applyPreset(Preset(index));
    preset_->setCurrentIndex(0);
  });
  connect(run_, &QPushButton::clicked, this, &ABView::requestRun);
  connect(stop_, &QPushButton::clicked, session_, &ABSession::stop);
  connect(loadSecond_, &QPushButton::clicked, this, &ABView::loadSecondEngine);
  connect(secondModel_, &QComboBox::activated, this, [this](int index) {
    if (secondModel_->itemData(index).toString() != QLatin1String(kChoose)) return;
    const QString path = QFileDialog::getOpenFileName(this, tr("Model for the second engine"), QString(),
                                                      tr("Models (*.gguf *.bin);;All files (*)"));
    if (path.isEmpty()) {
      secondModel_->setCurrentIndex(0);
      return;
    }
    QString tok;
    if (path.endsWith(QLatin1String(".bin"), Qt::CaseInsensitive)) tok = askLlama2cTokenizer(this, path);
    setSecondEngineModel(path, tok);
  });
  connect(secondPolicy_, &QComboBox::currentIndexChanged, this, [this] {
    secondChunked_->setEnabled(secondPolicy_->currentData().toInt() ==
                               int(brisk::SchedulerPolicy::Continuous));
  });
  secondChunked_->setEnabled(false);

  connect(session_, &ABSession::started, this, &ABView::onStarted);
  connect(session_, &ABSession::tokenReceived, this,
          [this](int side, int, const QString& text) { sides_[side].output->appendChunk(text); });
  connect(session_, &ABSession::sideFinished, this, &ABView::onFinishedSide);
  connect(session_, &ABSession::divergenceFound, this, &ABView::onDivergence);
  connect(session_, &ABSession::finished, this, &ABView::onFinished);
  for (EngineController* c : {session_->mainController(), session_->secondController()}) {
    connect(c, &EngineController::modelLoaded, this, [this] {
      updateSecondStatus();
      for (int side : {ABSession::A, ABSession::B}) updateVocabulary(side);
      updateButtons();
    });
    connect(c, &EngineController::loadStarted, this, [this] {
      updateSecondStatus();
      updateButtons();
    });
  }
  EngineController* sc = session_->secondController();
  connect(sc, &EngineController::loadFailed, this, [this](const QString& e) {
    secondError_ = e;
    updateSecondStatus();
    updateButtons();
  });
  connect(sc, &EngineController::loadCancelled, this, [this] { updateSecondStatus(); });

  updateSecondStatus();
  for (int side : {ABSession::A, ABSession::B}) updateVocabulary(side);
  updateButtons();
}

QWidget* ABView::makeSide(ABSession::Side side) {
  auto* w = new QWidget(this);
  auto* l = new QVBoxLayout(w);
  l->setContentsMargins(0, 0, 0, 0);
  SidePane& p = sides_[side];
  auto* header = new QHBoxLayout;
  auto* name = new QLabel(QStringLiteral("<b>%1</b>").arg(sideName(side)), w);
  name->setStyleSheet(
      QStringLiteral("QLabel { color: white; background: %1; border-radius: 3px; padding: 1px 8px; }")
          .arg(side == ABSession::A ? QStringLiteral("#1a5fb4") : QStringLiteral("#c64600")));
  p.engine = new QComboBox(w);
  p.engine->setObjectName(QStringLiteral("engine%1").arg(sideName(side)));
  p.engine->addItem(tr("Main engine"), int(ABSession::EngineChoice::Main));
  p.engine->addItem(tr("Second engine"), int(ABSession::EngineChoice::Second));
  p.engine->setToolTip(tr("Which engine answers for side %1").arg(sideName(side)));
  connect(p.engine, &QComboBox::currentIndexChanged, this, [this, side] {
    updateVocabulary(side);
    updateButtons();
  });
  header->addWidget(name);
  header->addWidget(p.engine);
  header->addStretch(1);
  l->addLayout(header);

  // Sampling: a one-line summary; the whole form in a popup.
  auto* samplingRow = new QHBoxLayout;
  p.summary = new QLabel(w);
  p.summary->setObjectName(QStringLiteral("samplingSummary%1").arg(sideName(side)));
  p.summary->setWordWrap(true);
  p.summary->setToolTip(tr("Side %1's sampling settings").arg(sideName(side)));
  p.edit = new QPushButton(tr("Sampling…"), w);
  p.edit->setObjectName(QStringLiteral("editSampling%1").arg(sideName(side)));
  p.edit->setToolTip(tr("Edit every sampling setting of side %1").arg(sideName(side)));
  samplingRow->addWidget(p.summary, 1);
  samplingRow->addWidget(p.edit, 0, Qt::AlignTop);
  l->addLayout(samplingRow);
  p.popup = new QFrame(w, Qt::Popup);
  p.popup->setObjectName(QStringLiteral("samplingPopup%1").arg(sideName(side)));
  static_cast<QFrame*>(p.popup)->setFrameShape(QFrame::StyledPanel);
  auto* pl = new QVBoxLayout(p.popup);
  pl->setContentsMargins(4, 4, 4, 4);
  p.sampling = new SamplingForm(tr("Sampling %1").arg(sideName(side)), 4, p.popup);
  p.sampling->setObjectName(QStringLiteral("sampling%1").arg(sideName(side)));
  pl->addWidget(p.sampling);
  connect(p.sampling, &SamplingForm::changed, this, [this, side] { updateSummary(side); });
  connect(p.edit, &QPushButton::clicked, this, [this, side] {
    SidePane& sp = sides_[side];
    sp.popup->adjustSize();
    QPoint at = sp.edit->mapToGlobal(QPoint(sp.edit->width(), sp.edit->height()));
    at.rx() -= sp.popup->width();
    sp.popup->move(at);
    sp.popup->show();
  });

  p.output = new TokenView(w);
  p.output->setObjectName(QStringLiteral("output%1").arg(sideName(side)));
  p.output->setPlaceholderText(tr("Side %1's answer streams here").arg(sideName(side)));
  l->addWidget(p.output, 1);
  p.stats = new QLabel(w);
  p.stats->setObjectName(QStringLiteral("stats%1").arg(sideName(side)));
  p.stats->setWordWrap(true);
  p.stats->setTextInteractionFlags(Qt::TextSelectableByMouse);
  p.stats->setToolTip(
      tr("Generated tokens · time to first token · decode speed · why it stopped "
         "(measured by the engine)"));
  l->addWidget(p.stats);
  return w;
}

void ABView::applyPreset(Preset preset) {
  if (preset == NoPreset) return;
  brisk::SamplingParams a = sides_[ABSession::A].sampling->params();
  a.repetition_penalty = 1.0f;
  a.no_repeat_ngram_size = 0;
  a.temperature = 0.0f;
  brisk::SamplingParams b = a;
  switch (preset) {
    case RepetitionPenalty:
      b.repetition_penalty = 1.3f;
      break;
    case PenaltyVsNoRepeat:
      a.repetition_penalty = 1.3f;
      b.no_repeat_ngram_size = 3;
      break;
    case GreedyVsSampling:
      b.temperature = 0.8f;
      b.top_p = 0.95f;
      if (!b.seed) b.seed = 1;
      break;
    case NoPreset:
      break;
  }
  setSideConfig(ABSession::A, {a, ABSession::EngineChoice::Main});
  setSideConfig(ABSession::B, {b, ABSession::EngineChoice::Main});
}

QString ABView::prompt() const { return prompt_->toPlainText(); }
void ABView::setPrompt(const QString& prompt) { prompt_->setPlainText(prompt); }

ABSession::SideConfig ABView::sideConfig(ABSession::Side side) const {
  ABSession::SideConfig c;
  c.params = sides_[side].sampling->params();
  c.engine = ABSession::EngineChoice(sides_[side].engine->currentData().toInt());
  return c;
}

void ABView::setSideConfig(ABSession::Side side, const ABSession::SideConfig& config) {
  sides_[side].sampling->setParams(config.params);
  updateSummary(side);
  sides_[side].engine->setCurrentIndex(sides_[side].engine->findData(int(config.engine)));
}

brisk::EngineConfig ABView::secondEngineConfig() const {
  EngineController* main = session_->mainController();
  brisk::EngineConfig c = main->hasModel() ? main->engineConfig() : brisk::EngineConfig{};
  const QStringList chosen = secondModel_->currentData().toStringList();
  if (!chosen.isEmpty() && !chosen.first().isEmpty()) {
    c.model = chosen.first().toStdString();
    c.tokenizer = chosen.value(1).toStdString();
  }
  c.backend = secondBackend_->currentData().toString().toStdString();
  c.policy = brisk::SchedulerPolicy(secondPolicy_->currentData().toInt());
  c.enable_chunked_prefill = secondChunked_->isChecked();
  c.max_num_seqs = secondSeqs_->value();
  c.max_num_batched_tokens = std::max(c.max_num_batched_tokens, c.max_num_seqs);
  return c;
}

void ABView::setSecondEngineOverrides(brisk::SchedulerPolicy policy, bool chunkedPrefill, int maxSeqs) {
  secondPolicy_->setCurrentIndex(secondPolicy_->findData(int(policy)));
  secondChunked_->setChecked(chunkedPrefill);
  secondSeqs_->setValue(maxSeqs);
}

bool ABView::setSecondEngineBackend(const QString& backend) {
  const int i = secondBackend_->findData(backend);
  auto* model = qobject_cast<QStandardItemModel*>(secondBackend_->model());
  if (i < 0 || (model && !model->item(i)->isEnabled())) return false;
  secondBackend_->setCurrentIndex(i);
  return true;
}

void ABView::setSecondEngineModel(const QString& path, const QString& tokenizer) {
  if (path.isEmpty()) {
    secondModel_->setCurrentIndex(0);
    return;
  }
  const QStringList data{path, tokenizer};
  int i = secondModel_->findData(data);
  if (i < 0) {
    i = secondModel_->count() - 1;  // before "Other model file…"
    secondModel_->insertItem(i, QFileInfo(path).fileName(), data);
    secondModel_->setItemData(i, path, Qt::ToolTipRole);
  }
  secondModel_->setCurrentIndex(i);
}

void ABView::loadSecondEngine() {
  secondError_.clear();
  session_->loadSecondEngine(secondEngineConfig());
}

void ABView::updateSecondStatus() {
  EngineController* c = session_->secondController();
  QString text;
  if (c->isLoading()) {
    text = tr("Loading…");
  } else if (!secondError_.isEmpty()) {
    text = QStringLiteral("<span style=\"color:#b00020\">%1</span>")
               .arg(tr("Could not load: %1").arg(secondError_.toHtmlEscaped()));
  } else if (c->hasModel()) {
    const brisk::EngineConfig& cfg = c->engineConfig();
    text = tr("Loaded: %1 · %2 · %3 · %4")
               .arg(fmt::modelName(c->modelInfo()), fmt::backendUsed(cfg.backend),
                    QString::fromUtf8(brisk::policy_name(cfg.policy)),
                    fmt::quantity(cfg.max_num_seqs, tr("seq"), tr("seqs")));
  } else {
    text = tr("Not loaded");
  }
  secondStatus_->setText(text);
  secondStatus_->setToolTip(c->hasModel() ? QString::fromStdString(c->modelInfo().path) : secondError_);
}

QString ABView::secondEngineStatus() const { return secondStatus_->text(); }

void ABView::updateButtons() {
  const QString why = session_->whyNotRunnable(sideConfig(ABSession::A), sideConfig(ABSession::B));
  run_->setEnabled(why.isEmpty());
  run_->setToolTip(why.isEmpty() ? tr("Send the prompt to both configurations at once (Ctrl+Return)") : why);
  stop_->setEnabled(session_->isRunning());
  loadSecond_->setEnabled(!session_->secondController()->isLoading());
  for (const SidePane& p : sides_) p.engine->setEnabled(!session_->isRunning());
}

void ABView::requestRun() {
  const auto a = sideConfig(ABSession::A), b = sideConfig(ABSession::B);
  const QString why = session_->whyNotRunnable(a, b);
  if (!why.isEmpty()) {
    message_->setText(why);
    return;
  }
  // A form's bad value is marked there; nothing is sent until it is fixed (params() leaves it out).
  for (int side : {ABSession::A, ABSession::B}) {
    const QString invalid = sides_[side].sampling->errorText();
    if (!invalid.isEmpty()) {
      message_->setText(tr("Side %1: %2 — fix it to run.").arg(sideName(side), invalid));
      return;
    }
  }
  sameEngine_ = a.engine == b.engine;
  session_->run(prompt(), a, b);
}

void ABView::onStarted() {
  for (SidePane& p : sides_) {
    p.output->clearChunks();
    p.stats->setText(tr("Generating…"));
  }
  divergence_->clear();
  message_->clear();
  updateButtons();
}

void ABView::onFinishedSide(int side, const GenerationStats& stats) {
  sides_[side].stats->setText(fmt::generationSummary(stats));
}

void ABView::onDivergence(int index) {
  for (SidePane& p : sides_) p.output->setHighlightedChunk(index);
  divergence_->setText(tr("The outputs first differ at token %1 (highlighted in both).").arg(index + 1));
}

void ABView::onFinished() {
  // The speeds beside each side are no A/B of speed: one engine runs both
  // requests in the same steps, and two engines run at once on the same
  // cores. Said where the figures are read.
  // Only beside figures that are there: not after Stop or an error.
  bool ran = true;
  for (auto side : {ABSession::A, ABSession::B}) {
    const brisk::FinishReason r = session_->stats(side).finishReason;
    ran = ran && (r == brisk::FinishReason::Length || r == brisk::FinishReason::Stop ||
                  r == brisk::FinishReason::Eos);
  }
  if (ran) {
    auto deviceOf = [this](const EngineController* c) {
      return c && c->hasModel() && brisk::resolve_backend(c->engineConfig().backend) == "cuda" ? tr("GPU")
                                                                                               : tr("CPU");
    };
    const QString device = deviceOf(session_->mainController());
    const bool mixed = !sameEngine_ && device != deviceOf(session_->secondController());
    message_->setText(mixed ? tr("The two engines ran at the same time, one on the CPU and one on the GPU: "
                                 "each may have slowed the other. The Benchmark tab compares speed.")
                      : sameEngine_
                          ? tr("Both sides ran in the same steps of one engine: their speeds are those "
                               "steps', not each setting's. The Benchmark tab compares speed.")
                          : tr("The two engines ran at the same time on the same %1: each slowed the "
                               "other. The Benchmark tab compares speed.")
                                .arg(device));
  }
  if (session_->divergence() < 0) {
    const int a = int(session_->chunks(ABSession::A).size());
    const int b = int(session_->chunks(ABSession::B).size());
    const QString tokens = fmt::quantity(std::min(a, b), tr("token"), tr("tokens"));
    divergence_->setText(a == b ? tr("The outputs are identical (%1).").arg(tokens)
                                : tr("The outputs agree on their first %1; %2 goes on longer.")
                                      .arg(tokens, a > b ? QStringLiteral("A") : QStringLiteral("B")));
  }
  updateButtons();
}

QString ABView::statsText(ABSession::Side side) const { return sides_[side].stats->text(); }

QString ABView::messageText() const { return message_->text(); }

void ABView::updateVocabulary(int side) {
  EngineController* c =
      session_->controllerFor(ABSession::EngineChoice(sides_[side].engine->currentData().toInt()));
  sides_[side].sampling->setVocabularySize(c && c->hasModel() ? c->modelInfo().vocab_size : 0);
}

void ABView::updateSummary(int side) {
  sides_[side].summary->setText(fmt::samplingSummary(sides_[side].sampling->params()));
}

QString ABView::samplingSummary(ABSession::Side side) const { return sides_[side].summary->text(); }

QString ABView::divergenceText() const { return divergence_->text(); }
