#include "matrix_builder.h"

#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLabel>
#include <QLineEdit>
#include <QMenu>
#include <QPushButton>
#include <QSet>
#include <QSpinBox>
#include <QToolButton>
#include <QVBoxLayout>
#include <exception>

#include "brisk/error.h"
#include "brisk/sysinfo.h"

namespace {
QDoubleSpinBox* msSpin(QWidget* parent) {
  auto* s = new QDoubleSpinBox(parent);
  s->setRange(0, 1e7);
  s->setDecimals(3);  // a CUDA decode TPOT target is ~1 ms: whole milliseconds would round a file's 1.5 ms
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

// Every field a matrix can vary (engine/bench/matrix.cpp accepts the same
// set; tests/ui/test_benchmark_view.cpp holds the two equal), with the values
// its placeholder suggests (the first always valid) and whether they are a
// closed set the row's menu offers.
struct AxisFieldInfo {
  const char* field;
  const char* hint;
  bool closed;
};
const AxisFieldInfo kAxisFields[] = {
    {"weight_dtype", "f32, f16, bf16, int8, fp8-e4m3, fp8-e5m2, q8_0", true},
    {"kv_dtype", "f32, f16, bf16, fp8-e4m3, int8", true},
    {"policy", "static, continuous", true},
    {"max_num_seqs", "1, 8, 32", false},
    {"max_num_batched_tokens", "2048, 512, 256", false},
    {"block_size", "16, 8, 32", false},
    {"enable_prefix_caching", "true, false", true},
    {"enable_chunked_prefill", "true, false", true},
    {"speculative_tokens", "0, 2, 4", false},
    {"speculative_ngram", "4, 2, 3", false},
    {"int8_activations", "true, false", true},
    {"quantize_embeddings", "true, false", true},
    {"fp8_per_tensor_scale", "true, false", true},
    {"num_kv_blocks", "0, 256, 1024 (0 = from the budget)", false},
    {"kv_cache_bytes", "0, 67108864 (0 = automatic)", false},
    {"max_model_len", "0, 512, 2048 (0 = the model's)", false},
    {"threads", "1, 2, 4", false},
    {"backend", "auto, cpu, cuda", true},
    {"cuda_graphs", "true, false", true},
    {"fused_decode", "true, false", true},
    {"dependent_launch", "true, false", true},
    {"fused_rope", "true, false", true},
    {"fp8_fast_accum", "true, false", true},
    {"split_merge_in_kernel", "true, false", true},
    {"l2_prefetch", "true, false", true},
    {"persistent_decode", "true, false", true},
    {"huge_page_weights", "true, false", true},
    {"int8_fma", "true, false", true},
    {"fp8_fma", "true, false", true},
    {"gpu_memory_utilization", "0.9, 0.8, 0.5", false},
    {"model", "demo, /path/to/model.gguf", false},
    {"n", "1, 2, 4", false},
    {"best_of", "0, 2, 4", false},
    {"beam_width", "0, 2, 4", false},
    {"temperature", "0, 0.7, 1.0", false},
    {"top_p", "1, 0.9, 0.5", false},
    {"top_k", "0, 40", false},
    {"max_concurrency", "0, 4, 16 (0 = no cap)", false},
};

const AxisFieldInfo* fieldInfo(const QString& field) {
  for (const AxisFieldInfo& f : kAxisFields)
    if (field == QLatin1String(f.field)) return &f;
  return nullptr;
}
}  // namespace

QString MatrixBuilder::valuesHint(const QString& field) {
  const AxisFieldInfo* f = fieldInfo(field);
  return f ? QString::fromLatin1(f->hint) : QString();
}

QStringList MatrixBuilder::valueChoices(const QString& field) {
  const AxisFieldInfo* f = fieldInfo(field);
  if (!f || !f->closed) return {};
  QStringList out;
  for (const QString& v : QString::fromLatin1(f->hint).split(QLatin1Char(','))) out << v.trimmed();
  return out;
}

QStringList MatrixBuilder::axisFields() {
  QStringList out;
  for (const AxisFieldInfo& f : kAxisFields) out << QString::fromLatin1(f.field);
  return out;
}

MatrixBuilder::MatrixBuilder(QWidget* parent) : QWidget(parent) {
  setObjectName(QStringLiteral("matrixBuilder"));
  auto* outer = new QVBoxLayout(this);
  outer->setContentsMargins(0, 0, 0, 0);
  // Matrix files, as brisk-cli bench --matrix reads them.
  auto* files = new QHBoxLayout;
  auto* load = new QPushButton(tr("Load…"), this);
  load->setObjectName(QStringLiteral("loadMatrix"));
  load->setToolTip(tr("Load a matrix JSON file (schema brisk.matrix v1, as brisk-cli bench --matrix reads)"));
  auto* save = new QPushButton(tr("Save…"), this);
  save->setObjectName(QStringLiteral("saveMatrix"));
  save->setToolTip(tr("Save this matrix as JSON (schema brisk.matrix v1) for brisk-cli bench --matrix"));
  files->addStretch(1);
  files->addWidget(load);
  files->addWidget(save);
  outer->addLayout(files);
  fileError_ = new QLabel(this);
  fileError_->setObjectName(QStringLiteral("matrixFileError"));
  fileError_->setWordWrap(true);
  fileError_->setStyleSheet(QStringLiteral("color: #c0392b;"));
  fileError_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  fileError_->hide();
  outer->addWidget(fileError_);
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
  repeats_->setRange(1, 1000);  // as validate_matrix (a loaded file keeps its count)
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

  auto* baseBox = new QWidget(this);
  auto* bl = new QHBoxLayout(baseBox);
  bl->setContentsMargins(0, 0, 0, 0);
  base_ = new QLabel(tr("the engine settings"), baseBox);
  base_->setObjectName(QStringLiteral("matrixBase"));
  base_->setWordWrap(true);
  useEngine_ = new QPushButton(tr("Use engine settings"), baseBox);
  useEngine_->setObjectName(QStringLiteral("matrixUseEngineSettings"));
  useEngine_->setToolTip(
      tr("Drop the loaded file's base configuration: every run starts from the engine settings"));
  useEngine_->hide();
  bl->addWidget(base_, 1);
  bl->addWidget(useEngine_);
  form_->addRow(tr("Name"), name_);
  form_->addRow(tr("Base"), baseBox);
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
  connect(load, &QPushButton::clicked, this, &MatrixBuilder::openFile);
  connect(save, &QPushButton::clicked, this, &MatrixBuilder::saveAs);
  connect(useEngine_, &QPushButton::clicked, this, &MatrixBuilder::useEngineSettings);
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
  a.choices = new QToolButton(a.row);
  a.choices->setObjectName(QStringLiteral("axisChoices"));
  a.choices->setText(tr("Values"));
  a.choices->setPopupMode(QToolButton::InstantPopup);
  a.choices->setMenu(new QMenu(a.choices));
  a.choices->menu()->setToolTipsVisible(true);
  updateChoices(a);
  auto* remove = new QToolButton(a.row);
  remove->setText(QStringLiteral("✕"));
  remove->setToolTip(tr("Remove this axis"));
  l->addWidget(a.field);
  l->addWidget(a.values, 1);
  l->addWidget(a.choices);
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
  connect(combo, &QComboBox::currentTextChanged, this, [this, row](const QString& f) {
    for (AxisRow& r : axes_)
      if (r.row == row) {
        r.values->setPlaceholderText(valuesHint(f));
        updateChoices(r);
      }
    refresh();
  });
  // Typed by the user (not set by a file or a test's setText): from now on a
  // missing value is an error, not a hint.
  connect(edit, &QLineEdit::textEdited, this, [this, row] {
    for (AxisRow& r : axes_)
      if (r.row == row) r.touched = true;
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

void MatrixBuilder::updateChoices(AxisRow& a) {
  const QStringList choices = valueChoices(a.field->currentText());
  QMenu* menu = a.choices->menu();
  menu->clear();
  a.choices->setVisible(!choices.isEmpty());
  a.choices->setToolTip(tr("Add a %1 value").arg(a.field->currentText()));
  // Backends this machine cannot run are listed, disabled, with the reason.
  const std::vector<brisk::BackendStatus> backends = a.field->currentText() == QLatin1String("backend")
                                                         ? brisk::list_backends()
                                                         : std::vector<brisk::BackendStatus>{};
  QLineEdit* edit = a.values;
  QWidget* row = a.row;
  for (const QString& v : choices) {
    QAction* act = menu->addAction(v);
    for (const brisk::BackendStatus& b : backends)
      if (QString::fromStdString(b.name) == v && !b.available) {
        act->setEnabled(false);
        act->setText(tr("%1 (unavailable)").arg(v));
        act->setToolTip(tr("Unavailable: %1").arg(QString::fromStdString(b.reason)));
      }
    connect(act, &QAction::triggered, this, [this, edit, row, v] {
      QStringList vs = splitValues(edit->text());
      if (vs.contains(v)) return;
      vs << v;
      for (AxisRow& r : axes_)
        if (r.row == row) r.touched = true;
      edit->setText(vs.join(QStringLiteral(", ")));
    });
  }
}

brisk::EngineConfig MatrixBuilder::baseConfig() const {
  const brisk::EngineConfig settings = baseSource_ ? baseSource_() : brisk::EngineConfig{};
  if (!fileBase_) return settings;
  brisk::EngineConfig c = *fileBase_;
  // A file naming no model runs the window's, as brisk-cli bench --matrix runs its MODEL.
  if (!fileBaseNamesModel_) {
    c.model = settings.model;
    c.tokenizer = settings.tokenizer;
  }
  return c;
}

brisk::MatrixSpec MatrixBuilder::spec() const {
  // Errors read as a matrix file's do (validate_matrix): "matrix: field 'rates': why".
  auto bad = [](const std::string& field, const std::string& why) {
    throw brisk::Error("matrix: field '" + field + "': " + why);
  };
  brisk::MatrixSpec m;
  m.name = name_->text().trimmed().toStdString();
  m.kind = kind_->currentData().toString().toStdString();
  m.base = baseConfig();
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
  // A failed load or save is said until the next edit (errorString() keeps it).
  fileError_->hide();
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
  // spec() refuses the first axis without values first: a row just added,
  // not typed in yet, says what to type instead of showing an error.
  QString hint;
  if (!expansionError_.isEmpty())
    for (const AxisRow& a : std::as_const(axes_))
      if (splitValues(a.values->text()).isEmpty()) {
        if (!a.touched)
          hint = tr("Type the %1 values to compare, comma-separated: %2")
                     .arg(a.field->currentText(), valuesHint(a.field->currentText()));
        break;
      }
  showsError_ = !expansionError_.isEmpty() && hint.isEmpty();
  summary_->setText(hint.isEmpty() ? summaryText() : hint);
  summary_->setStyleSheet(showsError_ ? QStringLiteral("color: #c0392b;") : QString());
  if (fileBase_) {
    const brisk::EngineConfig c = baseConfig();
    base_->setText(tr("%1 · model: %2")
                       .arg(QFileInfo(baseFile_).fileName(),
                            c.model == "demo" ? tr("the demo model")
                                              : QFileInfo(QString::fromStdString(c.model)).fileName()));
    base_->setToolTip(baseFile_);
  } else {
    base_->setText(tr("the engine settings"));
    base_->setToolTip(tr("Every run starts from the Engine settings as edited"));
  }
  useEngine_->setVisible(fileBase_.has_value());
  Q_EMIT changed();
}

QString MatrixBuilder::statusText() const { return summary_->text(); }

QString MatrixBuilder::summaryText() const {
  if (!expansionError_.isEmpty()) return expansionError_;
  const int repeats = repeats_->value();
  return (runCount_ == 1 ? tr("1 run: ") : tr("%1 runs: ").arg(runCount_)) +
         (configurations_ == 1 ? tr("1 configuration") : tr("%1 configurations").arg(configurations_)) +
         (repeats > 1 ? tr(" × %1 repeats").arg(repeats) : QString());
}

void MatrixBuilder::revealErrors() {
  for (AxisRow& a : axes_) a.touched = true;
  refresh();
}

void MatrixBuilder::showFileError(const QString& error) {
  error_ = error;
  fileError_->setText(error);
  fileError_->setVisible(!error.isEmpty());
}

bool MatrixBuilder::saveTo(const QString& path) {
  std::string json;
  try {
    json = brisk::to_json(spec()) + "\n";
  } catch (const std::exception& e) {
    showFileError(tr("Not saved: %1").arg(QString::fromUtf8(e.what())));
    return false;
  }
  QFile f(path);
  if (!f.open(QIODevice::WriteOnly | QIODevice::Truncate) || f.write(json.data(), qint64(json.size())) < 0) {
    showFileError(tr("%1: %2").arg(path, f.errorString()));
    return false;
  }
  showFileError({});
  return true;
}

bool MatrixBuilder::loadFrom(const QString& path) {
  brisk::MatrixSpec m;
  try {
    m = brisk::load_matrix(path.toStdString());
  } catch (const std::exception& e) {
    showFileError(QString::fromUtf8(e.what()));
    return false;
  }
  // A field the builder has no row for would silently become another one.
  const QStringList fields = axisFields();
  for (size_t i = 0; i < m.axes.size(); ++i)
    if (!fields.contains(QString::fromStdString(m.axes[i].field))) {
      showFileError(
          tr("%1: field 'axes[%2].field': '%3' is not a field a matrix can vary (the Axes list names "
             "those that can)")
              .arg(path)
              .arg(i)
              .arg(QString::fromStdString(m.axes[i].field)));
      return false;
    }
  // Whether the file names its model (the CLI's MODEL fills it in otherwise).
  bool namesModel = false;
  QFile f(path);
  if (f.open(QIODevice::ReadOnly))
    namesModel = QJsonDocument::fromJson(f.readAll())
                     .object()
                     .value(QStringLiteral("base"))
                     .toObject()
                     .contains(QStringLiteral("model"));
  fileBase_ = m.base;
  fileBaseNamesModel_ = namesModel;
  baseFile_ = QFileInfo(path).absoluteFilePath();
  showFileError({});
  setSpec(m);
  return true;
}

void MatrixBuilder::useEngineSettings() {
  fileBase_.reset();
  fileBaseNamesModel_ = false;
  baseFile_.clear();
  refresh();
}

void MatrixBuilder::saveAs() {
  QString suggested = name_->text().trimmed();
  if (suggested.isEmpty()) suggested = QStringLiteral("matrix");
  const QString path = QFileDialog::getSaveFileName(
      this, tr("Save matrix"), suggested + QStringLiteral(".json"), tr("Matrix JSON (*.json)"));
  if (!path.isEmpty()) saveTo(path);
}

void MatrixBuilder::openFile() {
  const QString path =
      QFileDialog::getOpenFileName(this, tr("Load matrix"), {}, tr("Matrix JSON (*.json);;All files (*)"));
  if (!path.isEmpty()) loadFrom(path);
}
