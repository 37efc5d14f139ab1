#include "benchmark_view.h"

#include <qcustomplot.h>

#include <QDateTime>
#include <QFileInfo>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QListWidget>
#include <QProgressBar>
#include <QPushButton>
#include <QScrollArea>
#include <QScrollBar>
#include <QSplitter>
#include <QStyle>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>
#include <exception>

#include "bench_runner.h"
#include "format.h"
#include "matrix_builder.h"
#include "results_store.h"
#include "workload_editor.h"

namespace {
const QColor kBlue(0x4e, 0x79, 0xa7), kOrange(0xf2, 0x8e, 0x2b), kTeal(0x49, 0x98, 0x94),
    kGrey(0x8a, 0x8f, 0x98);
constexpr double kSampleSeconds = 0.1;    // finest spacing of plotted points
constexpr double kRateWindowSeconds = 1;  // tokens/s averaged over this

QString clock(double s) {
  const int total = int(std::lround(std::max(0.0, s)));
  if (total >= 3600)
    return QStringLiteral("%1:%2:%3")
        .arg(total / 3600)
        .arg(total / 60 % 60, 2, 10, QLatin1Char('0'))
        .arg(total % 60, 2, 10, QLatin1Char('0'));
  return QStringLiteral("%1:%2").arg(total / 60).arg(total % 60, 2, 10, QLatin1Char('0'));
}

const brisk::SummaryField* fieldByKey(const std::string& key) {
  for (const auto& f : brisk::summary_fields())
    if (f.key == key) return &f;
  return nullptr;
}

QString runsText(int n) { return fmt::quantity(n, QObject::tr("run"), QObject::tr("runs")); }

QString modelName(const std::string& model) {
  if (model == "demo") return QObject::tr("the demo model");
  const QString path = QString::fromStdString(model);
  const QString name = QFileInfo(path).fileName();
  return name.isEmpty() ? path : name;
}

double niceCeil(double v) {
  if (v <= 0) return 1;
  const double p = std::pow(10.0, std::floor(std::log10(v)));
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (m * p >= v) return m * p;
  return 10 * p;
}
}  // namespace

BenchmarkView::BenchmarkView(ResultsStore* store, QWidget* parent)
    : QWidget(parent), store_(store), runner_(new BenchRunner(this)) {
  setObjectName(QStringLiteral("benchmarkView"));
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 4, 0, 0);
  auto* bar = new QHBoxLayout;
  layout->addLayout(bar);
  auto* split = new QSplitter(Qt::Horizontal, this);
  split->setObjectName(QStringLiteral("benchmarkSplitter"));

  // Left: what to run.
  auto* scroll = new QScrollArea(split);
  scroll->setWidgetResizable(true);
  scroll->setFrameShape(QFrame::NoFrame);
  auto* setup = new QWidget(scroll);
  auto* setupLayout = new QVBoxLayout(setup);
  setupLayout->setContentsMargins(0, 0, 6, 0);
  auto* workloadBox = new QGroupBox(tr("Workload"), setup);
  auto* wl = new QVBoxLayout(workloadBox);
  workload_ = new WorkloadEditor(workloadBox);
  wl->addWidget(workload_);
  auto* matrixBox = new QGroupBox(tr("Matrix (over the engine settings)"), setup);
  auto* ml = new QVBoxLayout(matrixBox);
  matrix_ = new MatrixBuilder(matrixBox);
  ml->addWidget(matrix_);
  // The matrix first: it is short and says how many runs Run starts.
  setupLayout->addWidget(matrixBox);
  setupLayout->addWidget(workloadBox);
  setupLayout->addStretch(1);
  scroll->setWidget(setup);
  scroll->setMinimumWidth(260);  // the editors scroll: the tab must fit beside both docks at 1280 px

  // Right: run it and watch it.
  auto* right = new QWidget(split);
  auto* rl = new QVBoxLayout(right);
  rl->setContentsMargins(6, 0, 0, 0);
  run_ = new QPushButton(style()->standardIcon(QStyle::SP_MediaPlay), tr("Run matrix"), this);
  run_->setObjectName(QStringLiteral("benchRun"));
  stop_ = new QPushButton(style()->standardIcon(QStyle::SP_MediaStop), tr("Stop"), this);
  stop_->setObjectName(QStringLiteral("benchStop"));
  stop_->setEnabled(false);
  stop_->setToolTip(tr("End the matrix after the current engine step; finished runs are kept"));
  progress_ = new QProgressBar(this);
  progress_->setObjectName(QStringLiteral("benchProgress"));
  progress_->setRange(0, 1000);
  progress_->setValue(0);
  progress_->setTextVisible(true);
  progress_->setFormat(tr("idle"));
  bar->addWidget(run_);
  bar->addWidget(stop_);
  bar->addWidget(progress_, 1);
  message_ = new QLabel(this);
  message_->setObjectName(QStringLiteral("benchMessage"));
  message_->setWordWrap(true);
  message_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  message_->setTextFormat(Qt::PlainText);
  // Which model the runs load: the engine settings' (the demo model until
  // another is opened), a loaded matrix file's, or a model axis's.
  model_ = new QLabel(this);
  model_->setObjectName(QStringLiteral("benchModel"));
  model_->setWordWrap(true);
  layout->addWidget(model_);
  layout->addWidget(message_);
  layout->addWidget(split, 1);

  liveTitle_ = new QLabel(tr("<b>Current run</b>"), right);
  liveTitle_->setObjectName(QStringLiteral("benchLiveTitle"));
  plot_ = new QCustomPlot(right);
  plot_->setObjectName(QStringLiteral("benchLivePlot"));
  plot_->setMinimumSize(240, 260);
  plot_->setAntialiasedElements(QCP::aePlottables);
  plot_->setAutoAddPlottableToLegend(false);
  plot_->plotLayout()->clear();
  plot_->plotLayout()->setRowSpacing(2);
  rateRect_ = addPanel(tr("Throughput of the current run"), tr("tokens/s"));
  kvRect_ = addPanel(tr("KV cache occupancy of the current run"), tr("occupancy (%)"));
  auto* margins = new QCPMarginGroup(plot_);
  rateRect_->setMarginGroup(QCP::msLeft | QCP::msRight, margins);
  kvRect_->setMarginGroup(QCP::msLeft | QCP::msRight, margins);
  gen_ = addGraph(rateRect_, tr("generation tok/s"), kBlue);
  prompt_ = addGraph(rateRect_, tr("prompt tok/s"), kOrange);
  kv_ = addGraph(kvRect_, tr("KV occupancy"), kTeal);
  kv_->setBrush(QColor(kTeal.red(), kTeal.green(), kTeal.blue(), 60));

  auto* finishedBox = new QGroupBox(tr("Finished runs"), right);
  auto* fl = new QVBoxLayout(finishedBox);
  finished_ = new QListWidget(finishedBox);
  finished_->setObjectName(QStringLiteral("benchFinished"));
  finished_->setWordWrap(true);
  finished_->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
  fl->addWidget(finished_);

  auto* vsplit = new QSplitter(Qt::Vertical, right);
  vsplit->addWidget(plot_);
  vsplit->addWidget(finishedBox);
  vsplit->setStretchFactor(0, 3);
  vsplit->setStretchFactor(1, 1);
  vsplit->setChildrenCollapsible(false);
  rl->addWidget(liveTitle_);
  rl->addWidget(vsplit, 1);

  split->addWidget(scroll);
  split->addWidget(right);
  split->setStretchFactor(0, 1);
  split->setStretchFactor(1, 1);
  split->setChildrenCollapsible(false);

  connect(run_, &QPushButton::clicked, this, &BenchmarkView::requestRun);
  connect(stop_, &QPushButton::clicked, this, &BenchmarkView::requestStop);
  connect(workload_, &WorkloadEditor::changed, this, [this] {
    try {
      matrix_->setWorkload(workload_->workload());
    } catch (const std::exception&) {
      updateRunEnabled();
    }
  });
  connect(matrix_, &MatrixBuilder::changed, this, &BenchmarkView::updateRunEnabled);
  connect(runner_, &BenchRunner::started, this, &BenchmarkView::onStarted);
  connect(runner_, &BenchRunner::progress, this, &BenchmarkView::onProgress);
  connect(runner_, &BenchRunner::resultReady, this, &BenchmarkView::onResult);
  connect(runner_, &BenchRunner::failed, this, &BenchmarkView::onFailed);
  connect(runner_, &BenchRunner::finished, this, &BenchmarkView::onFinished);

  // A small, quick default: the first built-in workload, the engine settings as they are.
  const auto names = brisk::builtin_workload_names();
  if (!names.empty()) workload_->selectBuiltin(QString::fromStdString(names.front()));
  try {
    matrix_->setWorkload(workload_->workload());
  } catch (const std::exception&) {
  }
  updateRunEnabled();
}

QCPAxisRect* BenchmarkView::addPanel(const QString& title, const QString& yLabel) {
  const int row = plot_->plotLayout()->rowCount();
  auto* heading = new QCPTextElement(plot_, title, QFont(font().family(), font().pointSize(), QFont::Bold));
  heading->setMargins(QMargins(0, 4, 0, 0));
  auto* rect = new QCPAxisRect(plot_);
  plot_->plotLayout()->addElement(row, 0, heading);
  plot_->plotLayout()->addElement(row + 1, 0, rect);
  plot_->plotLayout()->setRowStretchFactor(row, 0.001);
  QCPAxis* x = rect->axis(QCPAxis::atBottom);
  QCPAxis* y = rect->axis(QCPAxis::atLeft);
  x->setLabel(tr("time in run (s)"));
  y->setLabel(yLabel);
  x->setRange(0, 5);
  y->setRange(0, 1);
  for (QCPAxis* a : {x, y}) {
    a->grid()->setPen(QPen(QColor(0xe2, 0xe4, 0xe8), 1));
    a->setBasePen(QPen(kGrey, 1));
    a->setTickPen(QPen(kGrey, 1));
    a->setSubTickPen(QPen(kGrey, 1));
  }
  auto* legend = new QCPLegend;
  rect->insetLayout()->addElement(legend, Qt::AlignTop | Qt::AlignRight);
  legend->setLayer(QStringLiteral("legend"));
  legend->setBrush(QColor(255, 255, 255, 215));
  legend->setBorderPen(QPen(QColor(0xc8, 0xcc, 0xd2)));
  legend->setIconSize(14, 8);
  QFont small = font();
  small.setPixelSize(std::max(9, int(std::lround(QFontInfo(font()).pixelSize() * 0.9))));
  legend->setFont(small);
  legend->setMargins(QMargins(6, 4, 6, 4));
  return rect;
}

QCPGraph* BenchmarkView::addGraph(QCPAxisRect* rect, const QString& name, const QColor& color) {
  QCPGraph* g = plot_->addGraph(rect->axis(QCPAxis::atBottom), rect->axis(QCPAxis::atLeft));
  g->setName(name);
  g->setPen(QPen(color, 1.6));
  if (auto* legend = qobject_cast<QCPLegend*>(rect->insetLayout()->elementAt(0))) g->addToLegend(legend);
  return g;
}

void BenchmarkView::setBaseConfigSource(std::function<brisk::EngineConfig()> source) {
  matrix_->setBaseConfigSource(std::move(source));
}

bool BenchmarkView::isRunning() const { return runner_->isRunning(); }

QString BenchmarkView::messageText() const { return message_->text(); }

int BenchmarkView::livePointCount(const QString& series) const {
  for (QCPGraph* g : {gen_, prompt_, kv_})
    if (g->name() == series) return g->data()->size();
  return -1;
}

void BenchmarkView::showMessage(const QString& text, bool error) {
  message_->setText(text);
  message_->setStyleSheet(error ? QStringLiteral("color: #c0392b;") : QString());
}

void BenchmarkView::updateRunEnabled() {
  const bool running = runner_->isRunning();
  QString why;
  const QString wlError = workload_->validationError();
  if (running)
    why = tr("A matrix is running");
  else if (!wlError.isEmpty())
    why = wlError;
  else if (matrix_->runCount() <= 0)
    why = matrix_->showsError() ? matrix_->expansionError() : matrix_->statusText();
  if (specErrorShown_ && why.isEmpty()) {
    specErrorShown_ = false;
    showMessage(QString());
  }
  const QString models = modelText();
  model_->setText(models.contains(QLatin1String(", ")) ? tr("Models: %1").arg(models)
                  : models == modelName("demo") ? tr("Model: %1 (built-in, random weights)").arg(models)
                                                : tr("Model: %1").arg(models));
  model_->setToolTip(QString::fromStdString(matrix_->baseConfig().model) == QLatin1String("demo")
                         ? tr("The built-in synthetic model (random weights: its text is gibberish). Open a "
                              "model (File ▸ Open model…) to benchmark it instead.")
                         : QString::fromStdString(matrix_->baseConfig().model));
  run_->setEnabled(why.isEmpty());
  run_->setToolTip(
      why.isEmpty() ? tr("Run %1 one after another on %2").arg(runsText(matrix_->runCount()), models) : why);
  stop_->setEnabled(running);
}

QString BenchmarkView::modelText() const {
  QStringList models;
  for (int i = 0; i < matrix_->axisCount(); ++i)
    if (matrix_->axisFieldCombo(i)->currentText() == QLatin1String("model"))
      for (const QString& v : matrix_->axisValuesEdit(i)->text().split(QLatin1Char(','), Qt::SkipEmptyParts))
        if (!v.trimmed().isEmpty()) models << modelName(v.trimmed().toStdString());
  if (models.isEmpty()) models << modelName(matrix_->baseConfig().model);
  models.removeDuplicates();
  return models.join(QStringLiteral(", "));
}

void BenchmarkView::setOutcome(const QString& outcome) {
  progress_->setProperty("outcome", outcome);
  // A failure must not look like a finished bar: red for failed, amber for some runs failed.
  const auto style = [](const char* border, const char* chunk) {
    return QStringLiteral(
               "QProgressBar { border: 1px solid %1; border-radius: 3px; text-align: center; "
               "color: #000; } QProgressBar::chunk { background-color: %2; }")
        .arg(QLatin1String(border), QLatin1String(chunk));
  };
  if (outcome == QLatin1String("failed"))
    progress_->setStyleSheet(style("#c0392b", "#f2b8b1"));
  else if (outcome == QLatin1String("partial"))
    progress_->setStyleSheet(style("#d68910", "#f8d7a8"));
  else
    progress_->setStyleSheet(QString());
}

void BenchmarkView::showEvent(QShowEvent* event) {
  QWidget::showEvent(event);
  // The engine settings (the base, its model) may have changed while the view was hidden.
  if (!runner_->isRunning()) matrix_->refresh();
}

QString BenchmarkView::progressText(const brisk::MatrixProgress& p) {
  QString text = tr("run %1/%2").arg(p.run + 1).arg(p.runs);
  if (!p.label.empty())
    text += QStringLiteral(" · %1 r%2").arg(QString::fromStdString(p.label)).arg(p.repeat + 1);
  if (!p.phase.empty() && p.phase != "running")
    text += QStringLiteral(" · ") + QString::fromStdString(p.phase);
  else if (p.requests_total > 0)
    text += tr(" · %1/%2")
                .arg(p.requests_done)
                .arg(fmt::quantity(p.requests_total, tr("request"), tr("requests")));
  if (p.eta_s >= 0) text += tr(" · ETA %1").arg(clock(p.eta_s));
  return text;
}

void BenchmarkView::requestRun() {
  if (runner_->isRunning()) return;
  brisk::MatrixSpec m;
  brisk::WorkloadSpec w;
  try {
    w = workload_->workload();
    m = matrix_->spec();
  } catch (const std::exception& e) {
    matrix_->revealErrors();  // a new axis's missing values are an error now
    showMessage(QString::fromUtf8(e.what()), true);
    specErrorShown_ = true;  // cleared once the matrix is fixed
    return;
  }
  const QString stamp = QDateTime::currentDateTime().toString(QStringLiteral("yyyy-MM-dd HH.mm.ss"));
  runName_ = m.name.empty() ? QStringLiteral("%1 %2").arg(
                                  w.name.empty() ? tr("benchmark") : QString::fromStdString(w.name), stamp)
                            : QString::fromStdString(m.name);
  if (m.name.empty()) m.name = runName_.toStdString();
  finished_->clear();
  resetLive();
  if (!runner_->start(m, w)) return;  // failed() said why
}

void BenchmarkView::requestStop() {
  if (!runner_->isRunning()) return;
  runner_->stop();
  stop_->setEnabled(false);
  progress_->setFormat(progress_->format() + tr(" · stopping…"));
}

void BenchmarkView::resetLive() {
  for (QCPGraph* g : {gen_, prompt_, kv_}) g->data()->clear();
  window_.clear();
  windowPrefill_ = windowDecode_ = 0;
  t0_ = lastSampleT_ = -1;
  for (QCPAxisRect* r : {rateRect_, kvRect_}) r->axis(QCPAxis::atBottom)->setRange(0, 1);
  for (QCPAxisRect* r : {rateRect_, kvRect_}) r->axis(QCPAxis::atLeft)->setRange(0, 1);
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

void BenchmarkView::onStarted(int runs) {
  specErrorShown_ = false;
  showMessage(tr("Running %1 on %2…").arg(runsText(runs), modelText()));
  setOutcome(QString());
  progress_->setValue(0);
  progress_->setFormat(tr("run 1/%1 · loading").arg(runs));
  liveRun_ = -1;
  updateRunEnabled();
  Q_EMIT runningChanged(true);
}

void BenchmarkView::onProgress(const brisk::MatrixProgress& p) {
  progress_->setValue(int(std::lround(std::clamp(p.fraction, 0.0, 1.0) * 1000)));
  QString text = progressText(p);
  if (!stop_->isEnabled() && runner_->isRunning()) text += tr(" · stopping…");
  progress_->setFormat(text);
  if (p.run != liveRun_) {
    liveRun_ = p.run;
    resetLive();
    liveTitle_->setText(tr("<b>Current run:</b> %1 r%2")
                            .arg(QString::fromStdString(p.label).toHtmlEscaped())
                            .arg(p.repeat + 1));
  }
  if (!p.new_steps.empty()) plotSteps(p.new_steps);
}

void BenchmarkView::plotSteps(const std::vector<brisk::StepMetrics>& steps) {
  // Rates over a rolling window of the run's steps, sampled at most every
  // kSampleSeconds of engine time.
  for (const brisk::StepMetrics& s : steps) {
    const double end = s.start + s.duration;
    if (t0_ < 0) t0_ = s.start;
    // Tokens generated, not positions decoded: a speculative step verifies
    // drafts it may reject, as the summary's figures count it.
    window_.push_back({end, s.prefill_tokens, s.generated_tokens});
    windowPrefill_ += s.prefill_tokens;
    windowDecode_ += s.generated_tokens;
    while (!window_.empty() && window_.front().end < end - kRateWindowSeconds) {
      windowPrefill_ -= window_.front().prefill;
      windowDecode_ -= window_.front().decode;
      window_.pop_front();
    }
    if (lastSampleT_ >= 0 && end - lastSampleT_ < kSampleSeconds && &s != &steps.back()) continue;
    lastSampleT_ = end;
    const double span = std::max(std::min(kRateWindowSeconds, end - t0_), 1e-3);
    const double x = end - t0_;
    gen_->addData(x, windowDecode_ / span);
    prompt_->addData(x, windowPrefill_ / span);
    if (s.kv_blocks_total > 0) kv_->addData(x, 100.0 * double(s.kv_blocks_used) / double(s.kv_blocks_total));
  }
  double xmax = 0, ymax = 0;
  for (QCPGraph* g : {gen_, prompt_}) {
    bool found = false;
    const QCPRange kr = g->data()->keyRange(found);
    if (found) xmax = std::max(xmax, kr.upper);
    const QCPRange vr = g->data()->valueRange(found);
    if (found) ymax = std::max(ymax, vr.upper);
  }
  for (QCPAxisRect* r : {rateRect_, kvRect_})
    r->axis(QCPAxis::atBottom)->setRange(0, std::max(xmax > 1 ? 1.0 : 0.1, xmax * 1.05));
  rateRect_->axis(QCPAxis::atLeft)->setRange(0, niceCeil(ymax * 1.1));
  bool found = false;
  const QCPRange kvr = kv_->data()->valueRange(found);
  kvRect_->axis(QCPAxis::atLeft)->setRange(0, found ? std::min(100.0, niceCeil(kvr.upper * 1.1)) : 1.0);
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

void BenchmarkView::onResult(const brisk::BenchResult& r) {
  // The finished run's full step series replaces what the progress reports
  // carried (a short run can end between two of them).
  if (r.error.empty() && !r.steps.empty()) {
    resetLive();
    plotSteps(r.steps);
  }
  QString text = QStringLiteral("%1 r%2").arg(QString::fromStdString(r.label)).arg(r.repeat + 1);
  if (!r.error.empty()) {
    text += tr(" — failed: %1").arg(QString::fromStdString(r.error));
  } else {
    QStringList parts;
    for (const char* key : {"generation_tokens_per_s", "ttft_p50_ms", "tpot_p50_ms"})
      if (const brisk::SummaryField* f = fieldByKey(key))
        parts << QStringLiteral("%1 %2").arg(QString::fromStdString(f->label),
                                             QString::fromStdString(brisk::format_field(*f, f->value(r))));
    if (!parts.isEmpty()) text += QStringLiteral(" — ") + parts.join(QStringLiteral(" · "));
  }
  auto* item = new QListWidgetItem(text, finished_);
  if (!r.error.empty()) item->setForeground(QColor(0xc0, 0x39, 0x2b));
  finished_->scrollToBottom();
}

void BenchmarkView::onFailed(const QString& error) {
  // run_matrix (and the runner's start) refuse before the first run: a bad
  // input file, a backend this machine does not have.
  const bool says = error.contains(QLatin1String("nothing was run"), Qt::CaseInsensitive);
  showMessage(says ? error : tr("Nothing was run: %1").arg(error), true);
  progress_->setValue(progress_->maximum());
  progress_->setFormat(tr("failed · nothing was run"));
  setOutcome(QStringLiteral("failed"));
}

void BenchmarkView::onFinished() {
  const std::vector<brisk::BenchResult>& runs = runner_->results();
  const bool stopped = runner_->wasStopped();
  const bool failed = !runner_->errorString().isEmpty();
  updateRunEnabled();
  if (failed) {  // onFailed said why; nothing ran
    Q_EMIT runningChanged(false);
    return;
  }
  const int total = int(runs.size());
  int failures = 0;
  QStringList reasons;  // each distinct one once, in order
  for (const brisk::BenchResult& r : runs)
    if (!r.error.empty()) {
      ++failures;
      const QString why = QString::fromStdString(r.error);
      if (!reasons.contains(why)) reasons << why;
    }
  const bool allFailed = total > 0 && failures == total;
  // "2 of 2 runs failed"
  const QString failedText = tr("%1 of %2 failed").arg(failures).arg(runsText(total));
  progress_->setValue(stopped ? progress_->value() : 1000);
  if (stopped)
    progress_->setFormat(tr("stopped · %1 finished").arg(runsText(total)) +
                         (failures > 0 ? QStringLiteral(" · ") + failedText : QString()));
  else if (allFailed)
    progress_->setFormat(failedText);
  else
    progress_->setFormat(tr("done · %1").arg(failures > 0 ? failedText : runsText(total)));
  setOutcome(allFailed      ? QStringLiteral("failed")
             : failures > 0 ? QStringLiteral("partial")
             : stopped      ? QStringLiteral("stopped")
                            : QStringLiteral("done"));
  const QString failureText =
      failures > 0 ? failedText + QLatin1Char(':') + QLatin1Char('\n') + reasons.join(QLatin1Char('\n'))
                   : QString();
  QString saved;
  if (!runs.empty()) {
    QString error;
    saved = store_->save(runs, stopped ? runName_ + tr(" (stopped)") : runName_, &error);
    if (saved.isEmpty()) {
      showMessage((failureText.isEmpty() ? QString() : failureText + QLatin1Char('\n')) +
                      tr("Could not save the results: %1").arg(error),
                  true);
    } else {
      lastSaved_ = saved;
      const QString name = QFileInfo(saved).completeBaseName();
      if (failures > 0)
        showMessage(failureText + QLatin1Char('\n') +
                        (allFailed ? tr("The failed runs were kept in the results store as %1").arg(name)
                                   : tr("Kept in the results store as %1").arg(name)),
                    true);
      else
        showMessage(tr("%1 saved to the results store as %2").arg(runsText(total), name));
    }
  } else {
    showMessage(stopped ? tr("Stopped before any run finished") : tr("No run finished"));
  }
  Q_EMIT runningChanged(false);
  // Nothing to compare when every run failed.
  if (!saved.isEmpty() && !stopped && !allFailed) Q_EMIT matrixCompleted(saved);
}
