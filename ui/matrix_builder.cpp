#include "matrix_builder.h"

#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSet>
#include <QSpinBox>
#include <QToolButton>
#include <QVBoxLayout>
#include <exception>

#include "brisk/error.h"

namespace {
QDoubleSpinBox* msSpin(QWidget* parent) {
  auto* s = new QDoubleSpinBox(parent);
  s->setRange(0, 1e7);
  s->setDecimals(0);
  s->setSingleStep(50);
  s->setSuffix(QStringLiteral(" ms"));
  s->setSpecialValueText(QObject::tr("no limit"));
  return s;
}

QStringList splitValues(const QString& text) {
  QStringList out;
  for (const QString& v : text.split(QLatin1Char(','), Qt::SkipEmptyParts))
    if (!v.trimmed().isEmpty()) out << v.trimmed();
  return out;
}

// Hints for the values of each field, shown as the placeholder.
QString valuesHint(const QString& field) {
  if (field == QLatin1String("weight_dtype")) return QStringLiteral("f32, f16, bf16, int8, fp8-e4m3");
  if (field == QLatin1String("kv_dtype")) return QStringLiteral("f32, f16, fp8-e4m3, int8");
  if (field == QLatin1String("policy")) return QStringLiteral("static, continuous");
  if (field.startsWith(QLatin1String("enable_")) || field == QLatin1String("int8_activations"))
    return QStringLiteral("true, false");
  if (field == QLatin1String("temperature")) return QStringLiteral("0, 0.7, 1.0");
  return QStringLiteral("1, 8, 32");
}
}  // namespace

QStringList MatrixBuilder::axisFields() {
  return {QStringLiteral("weight_dtype"),
          QStringLiteral("kv_dtype"),
          QStringLiteral("policy"),
          QStringLiteral("max_num_seqs"),
          QStringLiteral("max_num_batched_tokens"),
          QStringLiteral("block_size"),
          QStringLiteral("enable_prefix_caching"),
          QStringLiteral("enable_chunked_prefill"),
          QStringLiteral("speculative_tokens"),
          QStringLiteral("int8_activations"),
          QStringLiteral("threads"),
          QStringLiteral("n"),
          QStringLiteral("best_of"),
          QStringLiteral("beam_width"),
          QStringLiteral("temperature")};
}

MatrixBuilder::MatrixBuilder(QWidget* parent) : QWidget(parent) {
  setObjectName(QStringLiteral("matrixBuilder"));
  auto* outer = new QVBoxLayout(this);
  outer->setContentsMargins(0, 0, 0, 0);
  form_ = new QFormLayout;
  form_->setFieldGrowthPolicy(QFormLayout::AllNonFixedFieldsGrow);
  outer->addLayout(form_);

  name_ = new QLineEdit(this);
  name_->setObjectName(QStringLiteral("matrixName"));
  name_->setPlaceholderText(tr("names the saved results (default: the workload and the time)"));
  kind_ = new QComboBox(this);
  kind_->setObjectName(QStringLiteral("matrixKind"));
  kind_->addItem(tr("Grid of configurations"), QStringLiteral("grid"));
  kind_->addItem(tr("Request-rate sweep"), QStringLiteral("rate_sweep"));
  kind_->addItem(tr("Concurrency sweep"), QStringLiteral("concurrency_sweep"));

  auto* axesBox = new QWidget(this);
  axesLayout_ = new QVBoxLayout(axesBox);
  axesLayout_->setContentsMargins(0, 0, 0, 0);
  axesLayout_->setSpacing(2);
  addAxis_ = new QPushButton(tr("Add axis"), axesBox);
  addAxis_->setObjectName(QStringLiteral("addAxis"));
  addAxis_->setToolTip(tr("Vary one more engine setting; the runs are every combination"));
  axesLayout_->addWidget(addAxis_, 0, Qt::AlignLeft);

  rates_ = new QLineEdit(this);
  rates_->setObjectName(QStringLiteral("sweepRates"));
  rates_->setPlaceholderText(tr("requests/s, comma-separated: 1, 2, 4, 8"));
  concurrencies_ = new QLineEdit(this);
  concurrencies_->setObjectName(QStringLiteral("sweepConcurrencies"));
  concurrencies_->setPlaceholderText(tr("requests in flight, comma-separated: 1, 4, 16 (0 = no cap)"));
  repeats_ = new QSpinBox(this);
  repeats_->setObjectName(QStringLiteral("repeats"));
  repeats_->setRange(1, 100);
  warmup_ = new QSpinBox(this);
  warmup_->setObjectName(QStringLiteral("warmupRequests"));
  warmup_->setRange(0, 1000);
  warmup_->setToolTip(tr("Untimed requests each run starts with"));
  sloTtft_ = msSpin(this);
  sloTtft_->setObjectName(QStringLiteral("sloTtft"));
  sloTpot_ = msSpin(this);
  sloTpot_->setObjectName(QStringLiteral("sloTpot"));
  sloE2e_ = msSpin(this);
  sloE2e_->setObjectName(QStringLiteral("sloE2e"));
  qualityText_ = new QLineEdit(this);
  qualityText_->setPlaceholderText(tr("text file: perplexity vs F32 for precision changes (optional)"));
  qualityPrompts_ = new QLineEdit(this);
  qualityPrompts_->setPlaceholderText(tr("prompt file: greedy agreement vs F32 (optional)"));

  form_->addRow(tr("Name"), name_);
  form_->addRow(tr("Kind"), kind_);
  form_->addRow(tr("Axes"), axesBox);
  form_->addRow(tr("Rates"), rates_);
  form_->addRow(tr("Concurrencies"), concurrencies_);
  form_->addRow(tr("Repeats"), repeats_);
  form_->addRow(tr("Warm-up requests"), warmup_);
  form_->addRow(tr("SLO: TTFT <"), sloTtft_);
  form_->addRow(tr("SLO: TPOT <"), sloTpot_);
  form_->addRow(tr("SLO: E2E <"), sloE2e_);
  form_->addRow(tr("Quality text"), qualityText_);
  form_->addRow(tr("Quality prompts"), qualityPrompts_);

  summary_ = new QLabel(this);
  summary_->setObjectName(QStringLiteral("matrixSummary"));
  summary_->setWordWrap(true);
  outer->addWidget(summary_);

  setSpec(brisk::MatrixSpec{});

  connect(addAxis_, &QPushButton::clicked, this, [this] { addAxis(); });
  connect(kind_, &QComboBox::currentIndexChanged, this, &MatrixBuilder::refresh);
  for (QLineEdit* e : {name_, rates_, concurrencies_, qualityText_, qualityPrompts_})
    connect(e, &QLineEdit::textChanged, this, &MatrixBuilder::refresh);
  for (QSpinBox* s : {repeats_, warmup_}) connect(s, &QSpinBox::valueChanged, this, &MatrixBuilder::refresh);
  for (QDoubleSpinBox* s : {sloTtft_, sloTpot_, sloE2e_})
    connect(s, &QDoubleSpinBox::valueChanged, this, &MatrixBuilder::refresh);
}

void MatrixBuilder::setBaseConfigSource(std::function<brisk::EngineConfig()> source) {
  baseSource_ = std::move(source);
  refresh();
}

void MatrixBuilder::setWorkload(const brisk::WorkloadSpec& workload) {
  workload_ = workload;
  refresh();
}

int MatrixBuilder::axisCount() const { return int(axes_.size()); }
QComboBox* MatrixBuilder::axisFieldCombo(int i) const {
  return i >= 0 && i < axes_.size() ? axes_[i].field : nullptr;
}
QLineEdit* MatrixBuilder::axisValuesEdit(int i) const {
  return i >= 0 && i < axes_.size() ? axes_[i].values : nullptr;
}

int MatrixBuilder::addAxis(const QString& field, const QString& values) {
  AxisRow a;
  a.row = new QWidget(this);
  auto* l = new QHBoxLayout(a.row);
  l->setContentsMargins(0, 0, 0, 0);
  a.field = new QComboBox(a.row);
  a.field->setObjectName(QStringLiteral("axisField"));
  a.field->addItems(axisFields());
  // A new row varies the first field not varied yet.
  QSet<QString> used;
  for (const AxisRow& r : std::as_const(axes_)) used.insert(r.field->currentText());
  QString pick = field;
  if (pick.isEmpty())
    for (const QString& f : axisFields())
      if (!used.contains(f)) {
        pick = f;
        break;
      }
  const int fi = a.field->findText(pick);
  if (fi >= 0) a.field->setCurrentIndex(fi);
  a.values = new QLineEdit(values, a.row);
  a.values->setObjectName(QStringLiteral("axisValues"));
  a.values->setPlaceholderText(valuesHint(a.field->currentText()));
  auto* remove = new QToolButton(a.row);
  remove->setText(QStringLiteral("✕"));
  remove->setToolTip(tr("Remove this axis"));
  l->addWidget(a.field);
  l->addWidget(a.values, 1);
  l->addWidget(remove);
  axesLayout_->insertWidget(axesLayout_->count() - 1, a.row);
  axes_.append(a);
  QWidget* row = a.row;
  connect(remove, &QToolButton::clicked, this, [this, row] {
    for (int i = 0; i < axes_.size(); ++i)
      if (axes_[i].row == row) return removeAxis(i);
  });
  QComboBox* combo = a.field;
  QLineEdit* edit = a.values;
  connect(combo, &QComboBox::currentTextChanged, this, [this, edit](const QString& f) {
    edit->setPlaceholderText(valuesHint(f));
    refresh();
  });
  connect(edit, &QLineEdit::textChanged, this, &MatrixBuilder::refresh);
  refresh();
  return int(axes_.size()) - 1;
}

void MatrixBuilder::removeAxis(int index) {
  if (index < 0 || index >= axes_.size()) return;
  delete axes_.takeAt(index).row;
  refresh();
}

void MatrixBuilder::clearAxes() {
  while (!axes_.isEmpty()) delete axes_.takeLast().row;
  refresh();
}

brisk::MatrixSpec MatrixBuilder::spec() const {
  // Errors read as a matrix file's do (validate_matrix): "matrix: field 'rates': why".
  auto bad = [](const std::string& field, const std::string& why) {
    throw brisk::Error("matrix: field '" + field + "': " + why);
  };
  brisk::MatrixSpec m;
  m.name = name_->text().trimmed().toStdString();
  m.kind = kind_->currentData().toString().toStdString();
  if (baseSource_) m.base = baseSource_();
  for (const AxisRow& a : axes_) {
    brisk::MatrixAxis axis;
    axis.field = a.field->currentText().toStdString();
    for (const QString& v : splitValues(a.values->text())) axis.values.push_back(v.toStdString());
    if (axis.values.empty())
      bad("axes[" + std::to_string(m.axes.size()) + "].values", "give at least one " + axis.field + " value");
    m.axes.push_back(std::move(axis));
  }
  // Only what does not parse is refused here; the ranges (a rate > 0, a
  // concurrency >= 0 where 0 = no cap) are validate_matrix's, as in a file.
  if (m.kind == "rate_sweep") {
    for (const QString& v : splitValues(rates_->text())) {
      bool ok = false;
      const double r = v.toDouble(&ok);
      if (!ok) bad("rates", "'" + v.toStdString() + "' is not a rate (requests/s)");
      m.rates.push_back(r);
    }
  } else if (m.kind == "concurrency_sweep") {
    for (const QString& v : splitValues(concurrencies_->text())) {
      bool ok = false;
      const int c = v.toInt(&ok);
      if (!ok) bad("concurrencies", "'" + v.toStdString() + "' is not a request count >= 0 (0 = no cap)");
      m.concurrencies.push_back(c);
    }
  }
  m.repeats = repeats_->value();
  m.warmup_requests = warmup_->value();
  m.slo.ttft_s = sloTtft_->value() / 1000.0;
  m.slo.tpot_s = sloTpot_->value() / 1000.0;
  m.slo.e2e_s = sloE2e_->value() / 1000.0;
  m.quality_text = qualityText_->text().trimmed().toStdString();
  m.quality_prompts = qualityPrompts_->text().trimmed().toStdString();
  // What a matrix file would be refused for (two axes on one field, a value twice, ...), refused here too.
  brisk::validate_matrix(m, "matrix");
  return m;
}

void MatrixBuilder::setSpec(const brisk::MatrixSpec& m) {
  name_->setText(QString::fromStdString(m.name));
  const int k = kind_->findData(QString::fromStdString(m.kind));
  kind_->setCurrentIndex(k < 0 ? 0 : k);
  while (!axes_.isEmpty()) delete axes_.takeLast().row;
  for (const brisk::MatrixAxis& a : m.axes) {
    QStringList vs;
    for (const std::string& v : a.values) vs << QString::fromStdString(v);
    addAxis(QString::fromStdString(a.field), vs.join(QStringLiteral(", ")));
  }
  QStringList rs, cs;
  for (double r : m.rates) rs << QString::number(r, 'g', 8);
  for (int c : m.concurrencies) cs << QString::number(c);
  rates_->setText(rs.join(QStringLiteral(", ")));
  concurrencies_->setText(cs.join(QStringLiteral(", ")));
  repeats_->setValue(m.repeats);
  warmup_->setValue(m.warmup_requests);
  sloTtft_->setValue(m.slo.ttft_s * 1000.0);
  sloTpot_->setValue(m.slo.tpot_s * 1000.0);
  sloE2e_->setValue(m.slo.e2e_s * 1000.0);
  qualityText_->setText(QString::fromStdString(m.quality_text));
  qualityPrompts_->setText(QString::fromStdString(m.quality_prompts));
  refresh();
}

void MatrixBuilder::updateVisibility() {
  const QString k = kind_->currentData().toString();
  form_->setRowVisible(rates_, k == QLatin1String("rate_sweep"));
  form_->setRowVisible(concurrencies_, k == QLatin1String("concurrency_sweep"));
}

void MatrixBuilder::refresh() {
  updateVisibility();
  runCount_ = -1;
  expansionError_.clear();
  configurations_ = 0;
  try {
    const brisk::MatrixSpec m = spec();
    runCount_ = int(brisk::expand_matrix(m, workload_).size());
    configurations_ = m.repeats > 0 ? runCount_ / m.repeats : runCount_;
  } catch (const std::exception& e) {
    expansionError_ = QString::fromUtf8(e.what());
  }
  summary_->setText(summaryText());
  summary_->setStyleSheet(expansionError_.isEmpty() ? QString() : QStringLiteral("color: #c0392b;"));
  Q_EMIT changed();
}

QString MatrixBuilder::summaryText() const {
  if (!expansionError_.isEmpty()) return expansionError_;
  const int repeats = repeats_->value();
  return (runCount_ == 1 ? tr("1 run: ") : tr("%1 runs: ").arg(runCount_)) +
         (configurations_ == 1 ? tr("1 configuration") : tr("%1 configurations").arg(configurations_)) +
         (repeats > 1 ? tr(" × %1 repeats").arg(repeats) : QString());
}
