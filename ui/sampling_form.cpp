#include "sampling_form.h"

#include <QCheckBox>
#include <QDoubleSpinBox>
#include <QGridLayout>
#include <QLabel>
#include <QLineEdit>
#include <QRegularExpression>
#include <QSpinBox>
#include <algorithm>
#include <limits>

SamplingForm::SamplingForm(const QString& title, int columns, QWidget* parent)
    : QGroupBox(title, parent), grid_(new QGridLayout(this)), columns_(std::max(0, columns)) {
  grid_->setVerticalSpacing(2);
  auto add = [&](const QString& label, QWidget* w, const QString& name, const QString& tip,
                 int span = 1) {
    w->setObjectName(name);
    w->setToolTip(tip);
    QWidget* l = nullptr;
    if (!label.isEmpty()) {
      auto* ql = new QLabel(label, this);
      ql->setBuddy(w);
      ql->setToolTip(tip);
      l = ql;
    }
    knobs_.push_back({l, w, span});
  };

  maxTokens_ = new QSpinBox(this);
  maxTokens_->setRange(1, 1 << 20);
  add(tr("Max &tokens"), maxTokens_, QStringLiteral("maxTokens"),
      tr("Most tokens to generate; generation also ends at end-of-sequence, a stop string or the "
         "context limit"));
  temperature_ = new QDoubleSpinBox(this);
  temperature_->setRange(0.0, 5.0);
  temperature_->setDecimals(2);
  temperature_->setSingleStep(0.05);
  temperature_->setSpecialValueText(tr("0 (greedy)"));
  add(tr("T&emperature"), temperature_, QStringLiteral("temperature"),
      tr("Divides the logits before sampling: higher is more random; 0 always takes the most "
         "likely token (greedy)"));
  topK_ = new QSpinBox(this);
  topK_->setRange(0, 1 << 20);
  topK_->setSpecialValueText(tr("off"));
  add(tr("Top-&k"), topK_, QStringLiteral("topK"),
      tr("Sample only among the k most likely tokens; 0 turns it off"));
  topP_ = new QDoubleSpinBox(this);
  topP_->setRange(0.01, 1.0);
  topP_->setDecimals(2);
  topP_->setSingleStep(0.05);
  add(tr("Top-&p"), topP_, QStringLiteral("topP"),
      tr("Nucleus sampling: sample among the fewest most likely tokens whose probabilities add up "
         "to p; 1 turns it off"));
  minP_ = new QDoubleSpinBox(this);
  minP_->setRange(0.0, 1.0);
  minP_->setDecimals(2);
  minP_->setSingleStep(0.01);
  minP_->setSpecialValueText(tr("off"));
  add(tr("&Min-p"), minP_, QStringLiteral("minP"),
      tr("Drop tokens less likely than min-p times the most likely token's probability; 0 turns "
         "it off"));
  repetition_ = new QDoubleSpinBox(this);
  repetition_->setRange(0.5, 3.0);
  repetition_->setDecimals(2);
  repetition_->setSingleStep(0.05);
  repetition_->setSpecialValueText(QString());
  add(tr("&Repetition penalty"), repetition_, QStringLiteral("repetitionPenalty"),
      tr("Above 1 makes tokens already in the prompt or the output less likely; 1 turns it off"));
  noRepeat_ = new QSpinBox(this);
  noRepeat_->setRange(0, 64);
  noRepeat_->setSpecialValueText(tr("off"));
  add(tr("&No-repeat n-gram"), noRepeat_, QStringLiteral("noRepeatNgram"),
      tr("Never produce an n-gram of this many tokens that already occurs in the prompt or the "
         "output; off allows repeats"));
  seed_ = new QSpinBox(this);
  seed_->setRange(-1, std::numeric_limits<int>::max());
  seed_->setSpecialValueText(tr("auto"));
  add(tr("&Seed"), seed_, QStringLiteral("seed"),
      tr("Random seed of this request: the same seed, prompt and settings give the same text; "
         "auto derives one from the engine seed and the request id"));
  stop_ = new QLineEdit(this);
  stop_->setPlaceholderText(tr("none"));
  stop_->setClearButtonEnabled(true);
  add(tr("Stop &strings"), stop_, QStringLiteral("stopStrings"),
      tr("Generation ends when the output contains one of these (it is not included). "
         "Comma-separated; escapes: \\n newline, \\t tab, \\s space, \\, comma, \\\\ backslash"),
      2);
  stopIds_ = new QLineEdit(this);
  stopIds_->setPlaceholderText(tr("none"));
  stopIds_->setClearButtonEnabled(true);
  add(tr("Stop token &ids"), stopIds_, QStringLiteral("stopTokenIds"),
      tr("Generation ends after one of these token ids (comma-separated)"));
  ignoreEos_ = new QCheckBox(tr("Ignore EOS"), this);
  add(QString(), ignoreEos_, QStringLiteral("ignoreEos"),
      tr("Keep generating past the end-of-sequence token, up to Max tokens (for timing runs of a "
         "fixed length)"));

  for (auto* s : findChildren<QAbstractSpinBox*>()) {
    s->setKeyboardTracking(false);
    s->setMinimumWidth(60);
  }
  connect(maxTokens_, &QSpinBox::valueChanged, this, &SamplingForm::changed);
  connect(temperature_, &QDoubleSpinBox::valueChanged, this, &SamplingForm::changed);
  connect(topK_, &QSpinBox::valueChanged, this, &SamplingForm::changed);
  connect(topP_, &QDoubleSpinBox::valueChanged, this, &SamplingForm::changed);
  connect(minP_, &QDoubleSpinBox::valueChanged, this, &SamplingForm::changed);
  connect(repetition_, &QDoubleSpinBox::valueChanged, this, &SamplingForm::changed);
  connect(seed_, &QSpinBox::valueChanged, this, &SamplingForm::changed);
  connect(noRepeat_, &QSpinBox::valueChanged, this, &SamplingForm::changed);
  connect(stop_, &QLineEdit::editingFinished, this, &SamplingForm::changed);
  connect(stopIds_, &QLineEdit::editingFinished, this, &SamplingForm::changed);
  stopIdsTip_ = stopIds_->toolTip();
  connect(stopIds_, &QLineEdit::textChanged, this, &SamplingForm::validate);
  connect(ignoreEos_, &QCheckBox::toggled, this, &SamplingForm::changed);

  setParams(defaults());
  relayout();
  if (columns_ == 0) {
    // Responsive: the form may be as narrow as three columns of its widest
    // knob. Without an explicit minimum the grid's current layout (five or
    // six columns when first shown wide) would be its minimum, and the
    // window's docks would be squeezed to make room for it.
    int knob = 0;
    for (const Knob& k : knobs_) {
      if (k.span != 1) continue;
      knob = std::max(knob, k.field->minimumSizeHint().width());
      if (k.label) knob = std::max(knob, k.label->minimumSizeHint().width());
    }
    const QMargins m = grid_->contentsMargins();
    setMinimumWidth(3 * knob + 2 * grid_->horizontalSpacing() + m.left() + m.right());
  }
}

brisk::SamplingParams SamplingForm::defaults() {
  brisk::SamplingParams p;
  p.max_tokens = 128;
  p.temperature = 0.8f;
  p.top_k = 40;
  p.top_p = 0.95f;
  p.min_p = 0.0f;
  p.repetition_penalty = 1.0f;
  return p;
}

void SamplingForm::setColumns(int columns) {
  columns_ = std::max(0, columns);
  relayout();
}

int SamplingForm::columnsFor(int width) const {
  if (columns_ > 0) return columns_;
  // About 135 px per knob; 3 to 6 per row.
  return std::clamp(width / 135, 3, 6);
}

void SamplingForm::resizeEvent(QResizeEvent* event) {
  QGroupBox::resizeEvent(event);
  if (columns_ == 0 && columnsFor(width()) != shown_) relayout();
}

void SamplingForm::relayout() {
  for (const Knob& k : knobs_) {
    if (k.label) grid_->removeWidget(k.label);
    grid_->removeWidget(k.field);
  }
  for (int c = 0; c < grid_->columnCount(); ++c) grid_->setColumnStretch(c, 0);
  const int columns = columnsFor(width());
  shown_ = columns;
  int row = 0, col = 0;
  for (const Knob& k : knobs_) {
    const int span = std::min(k.span, columns);
    if (col + span > columns) {
      col = 0;
      row += 2;
    }
    if (k.label) grid_->addWidget(k.label, row, col, 1, span);
    grid_->addWidget(k.field, row + 1, col, 1, span, k.label ? Qt::Alignment() : Qt::AlignBottom);
    col += span;
  }
  for (int c = 0; c < columns; ++c) grid_->setColumnStretch(c, 1);
}

brisk::SamplingParams SamplingForm::params() const {
  brisk::SamplingParams p;
  p.max_tokens = maxTokens_->value();
  p.temperature = static_cast<float>(temperature_->value());
  p.top_k = topK_->value();
  p.top_p = static_cast<float>(topP_->value());
  p.min_p = static_cast<float>(minP_->value());
  p.repetition_penalty = static_cast<float>(repetition_->value());
  p.no_repeat_ngram_size = noRepeat_->value();
  if (seed_->value() >= 0) p.seed = static_cast<uint64_t>(seed_->value());
  p.stop = parseStopStrings(stop_->text());
  p.stop_token_ids = parseTokenIds(stopIds_->text());
  p.ignore_eos = ignoreEos_->isChecked();
  return p;
}

void SamplingForm::setParams(const brisk::SamplingParams& p) {
  const QSignalBlocker block(this);
  maxTokens_->setValue(p.max_tokens);
  temperature_->setValue(p.temperature);
  topK_->setValue(p.top_k);
  topP_->setValue(p.top_p);
  minP_->setValue(p.min_p);
  repetition_->setValue(p.repetition_penalty);
  noRepeat_->setValue(p.no_repeat_ngram_size);
  seed_->setValue(p.seed && *p.seed <= static_cast<uint64_t>(std::numeric_limits<int>::max())
                      ? static_cast<int>(*p.seed)
                      : -1);
  stop_->setText(formatStopStrings(p.stop));
  QStringList ids;
  for (int32_t id : p.stop_token_ids) ids.append(QString::number(id));
  stopIds_->setText(ids.join(QStringLiteral(", ")));
  ignoreEos_->setChecked(p.ignore_eos);
}

std::vector<std::string> SamplingForm::parseStopStrings(const QString& text) {
  // Escaped whitespace is held as private-use characters while the typed
  // whitespace around each string is trimmed.
  const QChar kSpace(0xE000), kNewline(0xE001), kTab(0xE002);
  std::vector<std::string> out;
  QString cur;
  auto flush = [&] {
    QString s = cur.trimmed();
    s.replace(kSpace, QLatin1Char(' ')).replace(kNewline, QLatin1Char('\n')).replace(kTab, QLatin1Char('\t'));
    if (!s.isEmpty()) out.push_back(s.toStdString());
    cur.clear();
  };
  for (qsizetype i = 0; i < text.size(); ++i) {
    const QChar c = text[i];
    if (c == QLatin1Char('\\') && i + 1 < text.size()) {
      const QChar n = text[++i];
      if (n == QLatin1Char('n')) cur += kNewline;
      else if (n == QLatin1Char('t')) cur += kTab;
      else if (n == QLatin1Char('s')) cur += kSpace;
      else cur += n;  // \, \\ and anything else: the character itself
    } else if (c == QLatin1Char(',')) {
      flush();
    } else {
      cur += c;
    }
  }
  flush();
  return out;
}

QString SamplingForm::formatStopStrings(const std::vector<std::string>& stops) {
  QStringList parts;
  for (const std::string& s : stops) {
    QString q;
    const QString in = QString::fromStdString(s);
    for (qsizetype i = 0; i < in.size(); ++i) {
      const QChar c = in[i];
      const bool edge = i == 0 || i == in.size() - 1;
      if (c == QLatin1Char('\n')) q += QStringLiteral("\\n");
      else if (c == QLatin1Char('\t')) q += QStringLiteral("\\t");
      else if (c == QLatin1Char('\\')) q += QStringLiteral("\\\\");
      else if (c == QLatin1Char(',')) q += QStringLiteral("\\,");
      else if (c == QLatin1Char(' ') && edge) q += QStringLiteral("\\s");  // survives trimming
      else q += c;
    }
    parts.append(q);
  }
  return parts.join(QStringLiteral(", "));
}

std::vector<int32_t> SamplingForm::parseTokenIds(const QString& text, int vocabSize, QString* error) {
  std::vector<int32_t> out;
  QStringList bad;
  static const QRegularExpression sep(QStringLiteral("[,\\s]+"));
  for (const QString& part : text.split(sep, Qt::SkipEmptyParts)) {
    bool ok = false;
    const int v = part.toInt(&ok);
    if (ok && v >= 0 && (vocabSize <= 0 || v < vocabSize))
      out.push_back(v);
    else
      bad << QLatin1Char('\'') + part + QLatin1Char('\'');
  }
  if (error) {
    error->clear();
    if (!bad.isEmpty()) {
      const QString range = vocabSize > 0 ? tr("token ids of this model are 0 to %1").arg(vocabSize - 1)
                                          : tr("token ids are integers from 0");
      *error = (bad.size() == 1 ? tr("Stop token ids: %1 is not a token id (%2)")
                                : tr("Stop token ids: %1 are not token ids (%2)"))
                   .arg(bad.join(QStringLiteral(", ")), range);
    }
  }
  return out;
}

void SamplingForm::setVocabularySize(int size) {
  vocabSize_ = std::max(0, size);
  validate();
}

void SamplingForm::validate() {
  parseTokenIds(stopIds_->text(), vocabSize_, &error_);
  stopIds_->setStyleSheet(error_.isEmpty() ? QString()
                                           : QStringLiteral("QLineEdit { border: 1px solid #c0392b;"
                                                            " background: #fde7e9; }"));
  stopIds_->setToolTip(error_.isEmpty() ? stopIdsTip_ : stopIdsTip_ + QStringLiteral("\n\n") + error_);
}
