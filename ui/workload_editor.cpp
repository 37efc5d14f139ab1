#include "workload_editor.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QRegularExpressionValidator>
#include <QSpinBox>
#include <QToolButton>
#include <QVBoxLayout>
#include <exception>

#include "brisk/error.h"

namespace {
QDoubleSpinBox* doubleSpin(QWidget* parent, double lo, double hi, int decimals, double step,
                           const QString& suffix = {}) {
  auto* s = new QDoubleSpinBox(parent);
  s->setRange(lo, hi);
  s->setDecimals(decimals);
  s->setSingleStep(step);
  s->setSuffix(suffix);
  return s;
}

QSpinBox* intSpin(QWidget* parent, int lo, int hi, const QString& special = {}) {
  auto* s = new QSpinBox(parent);
  s->setRange(lo, hi);
  if (!special.isEmpty()) s->setSpecialValueText(special);
  return s;
}

const QStringList kArrivals{QStringLiteral("all"), QStringLiteral("poisson"), QStringLiteral("gamma"),
                            QStringLiteral("ramp"), QStringLiteral("trace")};
}  // namespace

WorkloadEditor::WorkloadEditor(QWidget* parent) : QWidget(parent) {
  setObjectName(QStringLiteral("workloadEditor"));
  auto* outer = new QVBoxLayout(this);
  outer->setContentsMargins(0, 0, 0, 0);

  auto* top = new QHBoxLayout;
  builtin_ = new QComboBox(this);
  builtin_->setObjectName(QStringLiteral("builtinWorkload"));
  builtin_->addItem(tr("Custom"), QString());
  for (const std::string& n : brisk::builtin_workload_names())
    builtin_->addItem(QString::fromStdString(n), QString::fromStdString(n));
  builtin_->setToolTip(tr("Start from a built-in workload"));
  auto* load = new QPushButton(tr("Load…"), this);
  load->setObjectName(QStringLiteral("loadWorkload"));
  load->setToolTip(tr("Load a workload JSON file"));
  auto* save = new QPushButton(tr("Save…"), this);
  save->setObjectName(QStringLiteral("saveWorkload"));
  save->setToolTip(tr("Save this workload as JSON (schema brisk.workload v1)"));
  top->addWidget(new QLabel(tr("Start from"), this));
  top->addWidget(builtin_, 1);
  top->addWidget(load);
  top->addWidget(save);
  outer->addLayout(top);

  form_ = new QFormLayout;
  form_->setFieldGrowthPolicy(QFormLayout::AllNonFixedFieldsGrow);
  outer->addLayout(form_);

  name_ = new QLineEdit(this);
  name_->setObjectName(QStringLiteral("workloadName"));
  description_ = new QLineEdit(this);
  requests_ = intSpin(this, 1, 1000000);
  requests_->setObjectName(QStringLiteral("numRequests"));
  arrival_ = new QComboBox(this);
  arrival_->setObjectName(QStringLiteral("arrival"));
  const QStringList arrivalNames{tr("All at once"), tr("Poisson"), tr("Gamma (bursty)"), tr("Linear ramp"),
                                 tr("Trace (timestamps)")};
  for (int i = 0; i < kArrivals.size(); ++i) arrival_->addItem(arrivalNames[i], kArrivals[i]);
  rate_ = doubleSpin(this, 0.001, 1e6, 3, 1, tr(" req/s"));
  rate_->setObjectName(QStringLiteral("rate"));
  burstiness_ = doubleSpin(this, 0.01, 100, 2, 0.1);
  burstiness_->setObjectName(QStringLiteral("burstiness"));
  burstiness_->setToolTip(tr("1 = Poisson; below 1 burstier, above 1 more regular"));
  rampStart_ = doubleSpin(this, 0.001, 1e6, 3, 1, tr(" req/s"));
  rampEnd_ = doubleSpin(this, 0.001, 1e6, 3, 1, tr(" req/s"));
  traceTimes_ = new QLineEdit(this);
  traceTimes_->setObjectName(QStringLiteral("traceTimes"));
  traceTimes_->setPlaceholderText(tr("seconds, comma-separated: 0, 0.5, 0.7, …"));
  tracePath_ = new QLineEdit(this);
  tracePath_->setPlaceholderText(tr("or a JSONL trace file: {\"timestamp\": s, …} per line"));
  maxConcurrency_ = intSpin(this, 0, 1000000, tr("no cap"));
  maxConcurrency_->setObjectName(QStringLiteral("maxConcurrency"));
  maxConcurrency_->setToolTip(tr("Requests in flight at once; later arrivals wait client-side"));
  QWidget* promptRow = makeDist(prompt_, /*allowFile=*/true);
  prompt_.kind->setObjectName(QStringLiteral("promptLenKind"));
  prompt_.a->setObjectName(QStringLiteral("promptLenA"));
  QWidget* outputRow = makeDist(output_, /*allowFile=*/false);
  output_.kind->setObjectName(QStringLiteral("outputLenKind"));
  output_.a->setObjectName(QStringLiteral("outputLenA"));
  temperature_ = doubleSpin(this, 0, 10, 2, 0.1);
  temperature_->setSpecialValueText(tr("0 (greedy)"));
  topP_ = doubleSpin(this, 0.01, 1, 2, 0.05);
  topK_ = intSpin(this, 0, 100000, tr("off"));
  repetition_ = doubleSpin(this, 0.01, 10, 2, 0.05);
  ignoreEos_ = new QCheckBox(tr("Outputs run to their drawn length (ignore EOS)"), this);
  n_ = intSpin(this, 1, 64);
  bestOf_ = intSpin(this, 0, 64, tr("off"));
  beam_ = intSpin(this, 0, 64, tr("off"));
  seed_ = new QLineEdit(this);
  seed_->setObjectName(QStringLiteral("workloadSeed"));
  seed_->setValidator(
      new QRegularExpressionValidator(QRegularExpression(QStringLiteral("\\d{1,19}")), seed_));

  form_->addRow(tr("Name"), name_);
  form_->addRow(tr("Description"), description_);
  form_->addRow(tr("Requests"), requests_);
  form_->addRow(tr("Arrival"), arrival_);
  form_->addRow(tr("Rate"), rate_);
  form_->addRow(tr("Burstiness"), burstiness_);
  form_->addRow(tr("Ramp from"), rampStart_);
  form_->addRow(tr("Ramp to"), rampEnd_);
  form_->addRow(tr("Timestamps"), traceTimes_);
  form_->addRow(tr("Trace file"), tracePath_);
  form_->addRow(tr("Max concurrency"), maxConcurrency_);
  form_->addRow(tr("Prompt length"), promptRow);
  form_->addRow(tr("Output length"), outputRow);
  form_->addRow(tr("Temperature"), temperature_);
  form_->addRow(tr("Top-p"), topP_);
  form_->addRow(tr("Top-k"), topK_);
  form_->addRow(tr("Repetition penalty"), repetition_);
  form_->addRow(QString(), ignoreEos_);
  form_->addRow(tr("Samples (n)"), n_);
  form_->addRow(tr("Best of"), bestOf_);
  form_->addRow(tr("Beam width"), beam_);
  form_->addRow(tr("Seed"), seed_);

  errorLabel_ = new QLabel(this);
  errorLabel_->setObjectName(QStringLiteral("workloadError"));
  errorLabel_->setWordWrap(true);
  errorLabel_->setStyleSheet(QStringLiteral("color: #c0392b;"));
  errorLabel_->hide();
  outer->addWidget(errorLabel_);

  setWorkload(brisk::WorkloadSpec{});

  connect(builtin_, &QComboBox::activated, this, [this](int i) {
    const QString name = builtin_->itemData(i).toString();
    if (!name.isEmpty()) selectBuiltin(name);
  });
  connect(load, &QPushButton::clicked, this, &WorkloadEditor::openFile);
  connect(save, &QPushButton::clicked, this, &WorkloadEditor::saveAs);
  for (QLineEdit* e : {name_, description_, traceTimes_, tracePath_, seed_})
    connect(e, &QLineEdit::textChanged, this, &WorkloadEditor::onEdited);
  for (QSpinBox* s : {requests_, maxConcurrency_, topK_, n_, bestOf_, beam_})
    connect(s, &QSpinBox::valueChanged, this, &WorkloadEditor::onEdited);
  for (QDoubleSpinBox* s : {rate_, burstiness_, rampStart_, rampEnd_, temperature_, topP_, repetition_})
    connect(s, &QDoubleSpinBox::valueChanged, this, &WorkloadEditor::onEdited);
  connect(arrival_, &QComboBox::currentIndexChanged, this, &WorkloadEditor::onEdited);
  connect(ignoreEos_, &QCheckBox::toggled, this, &WorkloadEditor::onEdited);
}

QWidget* WorkloadEditor::makeDist(DistFields& d, bool allowFile) {
  d.row = new QWidget(this);
  auto* l = new QHBoxLayout(d.row);
  l->setContentsMargins(0, 0, 0, 0);
  d.kind = new QComboBox(d.row);
  d.kind->addItem(tr("Fixed"), QStringLiteral("fixed"));
  d.kind->addItem(tr("Uniform"), QStringLiteral("uniform"));
  d.kind->addItem(tr("Normal"), QStringLiteral("normal"));
  if (allowFile) d.kind->addItem(tr("From file"), QStringLiteral("file"));
  d.a = doubleSpin(d.row, 1, 1e6, 0, 16, tr(" tok"));
  d.b = doubleSpin(d.row, 0, 1e6, 0, 16, tr(" tok"));
  d.path = new QLineEdit(d.row);
  d.path->setPlaceholderText(tr("prompts.jsonl: {\"prompt\": …} per line"));
  l->addWidget(d.kind);
  l->addWidget(d.a, 1);
  l->addWidget(d.b, 1);
  l->addWidget(d.path, 2);
  if (allowFile) {
    auto* browse = new QToolButton(d.row);
    browse->setText(QStringLiteral("…"));
    browse->setToolTip(tr("Choose a JSONL prompt file"));
    l->addWidget(browse);
    connect(d.kind, &QComboBox::currentIndexChanged, browse,
            [browse, &d] { browse->setVisible(d.kind->currentData() == QLatin1String("file")); });
    browse->setVisible(false);
    connect(browse, &QToolButton::clicked, this, [this, &d] {
      const QString p =
          QFileDialog::getOpenFileName(this, tr("Prompt file"), {}, tr("JSONL (*.jsonl);;All files (*)"));
      if (!p.isEmpty()) d.path->setText(p);
    });
  }
  connect(d.kind, &QComboBox::currentIndexChanged, this, [this, &d] {
    updateDist(d);
    onEdited();
  });
  connect(d.a, &QDoubleSpinBox::valueChanged, this, &WorkloadEditor::onEdited);
  connect(d.b, &QDoubleSpinBox::valueChanged, this, &WorkloadEditor::onEdited);
  connect(d.path, &QLineEdit::textChanged, this, &WorkloadEditor::onEdited);
  return d.row;
}

void WorkloadEditor::updateDist(DistFields& d) {
  const QString k = d.kind->currentData().toString();
  d.a->setVisible(k != QLatin1String("file"));
  d.b->setVisible(k == QLatin1String("uniform") || k == QLatin1String("normal"));
  d.path->setVisible(k == QLatin1String("file"));
  if (k == QLatin1String("uniform")) {
    d.a->setPrefix(tr("min "));
    d.b->setPrefix(tr("max "));
  } else if (k == QLatin1String("normal")) {
    d.a->setPrefix(tr("mean "));
    d.b->setPrefix(tr("std "));
  } else {
    d.a->setPrefix({});
  }
}

void WorkloadEditor::showDist(const DistFields& d, const brisk::LengthDist& dist) {
  int i = d.kind->findData(QString::fromStdString(dist.kind));
  d.kind->setCurrentIndex(i < 0 ? 0 : i);
  d.a->setValue(dist.a);
  d.b->setValue(dist.b);
  d.path->setText(QString::fromStdString(dist.path));
}

brisk::LengthDist WorkloadEditor::readDist(const DistFields& d) const {
  brisk::LengthDist dist;
  dist.kind = d.kind->currentData().toString().toStdString();
  dist.a = d.a->value();
  dist.b = dist.kind == "uniform" || dist.kind == "normal" ? d.b->value() : 0;
  if (dist.kind == "file") dist.path = d.path->text().trimmed().toStdString();
  return dist;
}

void WorkloadEditor::updateVisibility() {
  const QString a = arrival_->currentData().toString();
  form_->setRowVisible(rate_, a == QLatin1String("poisson") || a == QLatin1String("gamma"));
  form_->setRowVisible(burstiness_, a == QLatin1String("gamma"));
  form_->setRowVisible(rampStart_, a == QLatin1String("ramp"));
  form_->setRowVisible(rampEnd_, a == QLatin1String("ramp"));
  form_->setRowVisible(traceTimes_, a == QLatin1String("trace"));
  form_->setRowVisible(tracePath_, a == QLatin1String("trace"));
  rate_->setPrefix(a == QLatin1String("gamma") ? tr("mean ") : QString());
  updateDist(prompt_);
  updateDist(output_);
}

bool WorkloadEditor::isFieldShown(QWidget* field) const { return field && form_->isRowVisible(field); }

void WorkloadEditor::setWorkload(const brisk::WorkloadSpec& w) {
  updating_ = true;
  name_->setText(QString::fromStdString(w.name));
  description_->setText(QString::fromStdString(w.description));
  requests_->setValue(w.num_requests);
  const int ai = arrival_->findData(QString::fromStdString(w.arrival));
  arrival_->setCurrentIndex(ai < 0 ? 0 : ai);
  rate_->setValue(w.rate);
  burstiness_->setValue(w.burstiness);
  rampStart_->setValue(w.ramp_start_rate);
  rampEnd_->setValue(w.ramp_end_rate);
  QStringList times;
  for (double t : w.trace_times) times << QString::number(t, 'g', 10);
  traceTimes_->setText(times.join(QStringLiteral(", ")));
  tracePath_->setText(QString::fromStdString(w.trace_path));
  maxConcurrency_->setValue(w.max_concurrency);
  showDist(prompt_, w.prompt_len);
  showDist(output_, w.output_len);
  temperature_->setValue(w.temperature);
  topP_->setValue(w.top_p);
  topK_->setValue(w.top_k);
  repetition_->setValue(w.repetition_penalty);
  ignoreEos_->setChecked(w.ignore_eos);
  n_->setValue(w.n);
  bestOf_->setValue(w.best_of);
  beam_->setValue(w.beam_width);
  seed_->setText(QString::number(w.seed));
  updating_ = false;
  onEdited();
}

brisk::WorkloadSpec WorkloadEditor::workload() const {
  brisk::WorkloadSpec w;
  w.name = name_->text().trimmed().toStdString();
  w.description = description_->text().trimmed().toStdString();
  w.num_requests = requests_->value();
  w.arrival = arrival_->currentData().toString().toStdString();
  w.rate = rate_->value();
  w.burstiness = burstiness_->value();
  w.ramp_start_rate = rampStart_->value();
  w.ramp_end_rate = rampEnd_->value();
  if (w.arrival == "trace") {
    for (const QString& part : traceTimes_->text().split(QLatin1Char(','), Qt::SkipEmptyParts)) {
      bool ok = false;
      const double t = part.trimmed().toDouble(&ok);
      if (!ok || t < 0)
        throw brisk::Error("workload.trace_times: '" + part.trimmed().toStdString() +
                           "' is not a time in seconds >= 0");
      w.trace_times.push_back(t);
    }
    w.trace_path = tracePath_->text().trimmed().toStdString();
    if (w.trace_times.empty() && w.trace_path.empty())
      throw brisk::Error("workload.trace_times: a trace needs timestamps or a trace file");
  }
  w.max_concurrency = maxConcurrency_->value();
  w.prompt_len = readDist(prompt_);
  w.output_len = readDist(output_);
  if (w.prompt_len.kind == "file" && w.prompt_len.path.empty())
    throw brisk::Error("workload.prompt_len: choose the prompt file");
  w.temperature = float(temperature_->value());
  w.top_p = float(topP_->value());
  w.top_k = topK_->value();
  w.repetition_penalty = float(repetition_->value());
  w.ignore_eos = ignoreEos_->isChecked();
  w.n = n_->value();
  w.best_of = bestOf_->value();
  w.beam_width = beam_->value();
  w.seed = seed_->text().toULongLong();
  return w;
}

QString WorkloadEditor::validationError() const {
  try {
    workload();
    return {};
  } catch (const std::exception& e) {
    return QString::fromUtf8(e.what());
  }
}

bool WorkloadEditor::selectBuiltin(const QString& name) {
  try {
    setWorkload(brisk::builtin_workload(name.toStdString()));
  } catch (const std::exception& e) {
    error_ = QString::fromUtf8(e.what());
    return false;
  }
  const int i = builtin_->findData(name);
  builtin_->setCurrentIndex(i < 0 ? 0 : i);
  return true;
}

void WorkloadEditor::onEdited() {
  if (updating_) return;
  updateVisibility();
  // A hand edit leaves the built-in workload; the combo says so.
  if (!sender() || sender() != builtin_) {
    if (builtin_->currentIndex() > 0) {
      const QString selected = builtin_->currentData().toString();
      bool same = false;
      try {
        same = brisk::to_json(workload()) == brisk::to_json(brisk::builtin_workload(selected.toStdString()));
      } catch (const std::exception&) {
      }
      if (!same) builtin_->setCurrentIndex(0);
    }
  }
  const QString err = validationError();
  errorLabel_->setText(err);
  errorLabel_->setVisible(!err.isEmpty());
  Q_EMIT changed();
}

bool WorkloadEditor::saveTo(const QString& path) {
  std::string json;
  try {
    json = brisk::to_json(workload());
  } catch (const std::exception& e) {
    error_ = QString::fromUtf8(e.what());
    return false;
  }
  QFile f(path);
  if (!f.open(QIODevice::WriteOnly | QIODevice::Truncate) || f.write(json.data(), qint64(json.size())) < 0) {
    error_ = tr("%1: %2").arg(path, f.errorString());
    return false;
  }
  return true;
}

bool WorkloadEditor::loadFrom(const QString& path) {
  try {
    const brisk::WorkloadSpec w = brisk::load_workload(path.toStdString());
    builtin_->setCurrentIndex(0);
    setWorkload(w);
  } catch (const std::exception& e) {
    error_ = QString::fromUtf8(e.what());
    errorLabel_->setText(error_);
    errorLabel_->show();
    return false;
  }
  return true;
}

void WorkloadEditor::saveAs() {
  QString suggested = name_->text().trimmed();
  if (suggested.isEmpty()) suggested = QStringLiteral("workload");
  const QString path = QFileDialog::getSaveFileName(
      this, tr("Save workload"), suggested + QStringLiteral(".json"), tr("Workload JSON (*.json)"));
  if (path.isEmpty()) return;
  if (!saveTo(path)) {
    errorLabel_->setText(error_);
    errorLabel_->show();
  }
}

void WorkloadEditor::openFile() {
  const QString path = QFileDialog::getOpenFileName(this, tr("Load workload"), {},
                                                    tr("Workload JSON (*.json);;All files (*)"));
  if (!path.isEmpty()) loadFrom(path);
}
