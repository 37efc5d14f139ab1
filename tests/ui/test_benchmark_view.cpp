// The Benchmark and Compare views on the built-in demo model: a workload
// and a two-configuration matrix set through the widgets run from the Run
// button, the Compare view opens with one row per configuration whose cells
// read exactly as format_field prints the stored results (the figures the
// CLI and the reports print), sorts, marks the best value, exports HTML;
// the results store lists, renames and deletes the saved file; Stop ends a
// longer matrix and the view runs again afterwards.
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFile>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QProgressBar>
#include <QPushButton>
#include <QSignalSpy>
#include <QSortFilterProxyModel>
#include <QSpinBox>
#include <QStandardPaths>
#include <QTableView>
#include <QTemporaryDir>
#include <QtTest>
#include <cmath>

#include "brisk/bench_matrix.h"
#include "ui/bench_runner.h"
#include "ui/benchmark_view.h"
#include "ui/compare_view.h"
#include "ui/engine_settings_panel.h"
#include "ui/main_window.h"
#include "ui/matrix_builder.h"
#include "ui/results_store.h"
#include "ui/results_table_model.h"
#include "ui/workload_editor.h"

namespace {
constexpr int kTimeoutMs = 60000;
}  // namespace

class TestBenchmarkView : public QObject {
  Q_OBJECT

 private:
  // A tiny workload (4 requests, prompts of 16 tokens, 8 output tokens) set
  // through the editor's widgets.
  void setTinyWorkload();
  // One axis through the builder's widgets, 1 repeat, no warm-up.
  void setMatrix(const QString& field, const QString& values);
  bool runToCompletion(QString* path);

  QTemporaryDir dir_;
  MainWindow* window_ = nullptr;
  BenchmarkView* bench_ = nullptr;
  CompareView* compare_ = nullptr;
  QString savedPath_;

 private Q_SLOTS:
  void initTestCase();
  void cleanupTestCase();
  void workloadEditorShowsArrivalFields();
  void workloadRoundTripsThroughJson();
  void matrixBuilderCountsRuns();
  void progressText();
  void twoConfigurationsCompare();
  void sortAndBestMark();
  void exportHtml();
  void resultsStoreRenameDelete();
  void stopEndsLongerMatrix();
  void matrixBuilderRefusesWhatAMatrixFileWould();
  void badPromptFileIsRefusedBeforeAnyRun();
  void matrixBuilderSweepsAgreeWithMatrixFiles();
  void storedResultsNameTheirModel();
  void matrixBuilderOffersEveryMatrixField();
  void newAxisShowsHintNotError();
  void matrixFilesLoadAndSave();
  void preRunErrorSaysNothingRan();
  void allFailedMatrixSaysSo();
  void runSaysWhichModel();
  void hiddenCudaKnobsDoNotBlockACpuMatrix();
};

void TestBenchmarkView::initTestCase() {
  QVERIFY(dir_.isValid());
  qputenv("BRISK_RESULTS_DIR", dir_.filePath(QStringLiteral("results")).toUtf8());
  QStandardPaths::setTestModeEnabled(true);
  window_ = new MainWindow(/*persistState=*/false);
  window_->resize(1280, 800);
  window_->show();
  QVERIFY(QTest::qWaitForWindowExposed(window_));
  bench_ = window_->benchmarkView();
  compare_ = window_->compareView();
  QVERIFY(bench_ && compare_);
  QCOMPARE(window_->resultsStore()->directory(), dir_.filePath(QStringLiteral("results")));
  window_->setCurrentView(MainWindow::View::Benchmark);
}

void TestBenchmarkView::cleanupTestCase() {
  delete window_;
  window_ = nullptr;
}

void TestBenchmarkView::setTinyWorkload() {
  WorkloadEditor* e = bench_->workloadEditor();
  e->arrivalCombo()->setCurrentIndex(e->arrivalCombo()->findData(QStringLiteral("all")));
  e->requestsSpin()->setValue(4);
  e->promptKindCombo()->setCurrentIndex(e->promptKindCombo()->findData(QStringLiteral("fixed")));
  e->promptASpin()->setValue(16);
  e->outputKindCombo()->setCurrentIndex(e->outputKindCombo()->findData(QStringLiteral("fixed")));
  e->outputASpin()->setValue(8);
}

void TestBenchmarkView::setMatrix(const QString& field, const QString& values) {
  MatrixBuilder* m = bench_->matrixBuilder();
  m->kindCombo()->setCurrentIndex(0);
  m->clearAxes();
  QTest::mouseClick(m->findChild<QPushButton*>(QStringLiteral("addAxis")), Qt::LeftButton);
  QCOMPARE(m->axisCount(), 1);
  m->axisFieldCombo(0)->setCurrentText(field);
  QTest::keyClicks(m->axisValuesEdit(0), values);
  m->repeatsSpin()->setValue(1);
  m->warmupSpin()->setValue(0);
}

bool TestBenchmarkView::runToCompletion(QString* path) {
  QSignalSpy completed(bench_, &BenchmarkView::matrixCompleted);
  QSignalSpy finished(bench_->runner(), &BenchRunner::finished);
  if (!bench_->runButton()->isEnabled()) {
    qWarning("Run is disabled: %s", qPrintable(bench_->runButton()->toolTip()));
    return false;
  }
  QTest::mouseClick(bench_->runButton(), Qt::LeftButton);
  if (!bench_->isRunning()) {
    qWarning("the matrix did not start: %s", qPrintable(bench_->messageText()));
    return false;
  }
  if (!QTest::qWaitFor([&] { return finished.count() > 0; }, kTimeoutMs)) return false;
  if (completed.count() != 1) {
    qWarning("the matrix did not complete: %s", qPrintable(bench_->messageText()));
    return false;
  }
  *path = completed.first().at(0).toString();
  return true;
}

void TestBenchmarkView::workloadEditorShowsArrivalFields() {
  WorkloadEditor* e = bench_->workloadEditor();
  QComboBox* arrival = e->arrivalCombo();
  arrival->setCurrentIndex(arrival->findData(QStringLiteral("all")));
  QVERIFY(!e->isFieldShown(e->rateSpin()));
  arrival->setCurrentIndex(arrival->findData(QStringLiteral("poisson")));
  QVERIFY(e->isFieldShown(e->rateSpin()));
  QVERIFY(!e->isFieldShown(e->burstinessSpin()));
  arrival->setCurrentIndex(arrival->findData(QStringLiteral("gamma")));
  QVERIFY(e->isFieldShown(e->rateSpin()));
  QVERIFY(e->isFieldShown(e->burstinessSpin()));
  e->burstinessSpin()->setValue(0.5);
  QCOMPARE(e->workload().arrival, std::string("gamma"));
  QCOMPARE(e->workload().burstiness, 0.5);
  // A trace needs timestamps: the form says so instead of running.
  arrival->setCurrentIndex(arrival->findData(QStringLiteral("trace")));
  QVERIFY(!e->validationError().isEmpty());
  e->findChild<QLineEdit*>(QStringLiteral("traceTimes"))->setText(QStringLiteral("0, 0.5, 1.25"));
  QVERIFY2(e->validationError().isEmpty(), qPrintable(e->validationError()));
  QCOMPARE(e->workload().trace_times, (std::vector<double>{0, 0.5, 1.25}));

  // Built-in workloads fill the form.
  const auto names = brisk::builtin_workload_names();
  QVERIFY(!names.empty());
  QVERIFY(e->selectBuiltin(QString::fromStdString(names.back())));
  QCOMPARE(brisk::to_json(e->workload()), brisk::to_json(brisk::builtin_workload(names.back())));
  QCOMPARE(e->builtinCombo()->currentText(), QString::fromStdString(names.back()));
}

void TestBenchmarkView::workloadRoundTripsThroughJson() {
  WorkloadEditor* e = bench_->workloadEditor();
  brisk::WorkloadSpec w;
  w.name = "roundtrip";
  w.num_requests = 17;
  w.arrival = "ramp";
  w.ramp_start_rate = 2;
  w.ramp_end_rate = 9;
  w.max_concurrency = 3;
  w.prompt_len = brisk::LengthDist::parse("uniform:8:40");
  w.output_len = brisk::LengthDist::parse("normal:20:5");
  w.temperature = 0.7f;
  w.top_k = 40;
  w.seed = 12345678901ull;
  e->setWorkload(w);
  QCOMPARE(brisk::to_json(e->workload()), brisk::to_json(w));
  const QString path = dir_.filePath(QStringLiteral("w.json"));
  QVERIFY2(e->saveTo(path), qPrintable(e->errorString()));
  e->setWorkload(brisk::WorkloadSpec{});
  QVERIFY2(e->loadFrom(path), qPrintable(e->errorString()));
  QCOMPARE(brisk::to_json(e->workload()), brisk::to_json(w));
  QVERIFY(!e->loadFrom(dir_.filePath(QStringLiteral("missing.json"))));
  QVERIFY(e->errorString().contains(QStringLiteral("missing.json")));
}

void TestBenchmarkView::matrixBuilderCountsRuns() {
  setTinyWorkload();
  setMatrix(QStringLiteral("weight_dtype"), QStringLiteral("f32,f16"));
  MatrixBuilder* m = bench_->matrixBuilder();
  QCOMPARE(m->runCount(), 2);
  m->repeatsSpin()->setValue(3);
  QCOMPARE(m->runCount(), 6);
  QVERIFY(m->summaryText().startsWith(QStringLiteral("6 runs")));
  m->repeatsSpin()->setValue(1);
  // A bad value is named inline and Run is off until it is fixed.
  m->axisValuesEdit(0)->setText(QStringLiteral("f32, f99"));
  QCOMPARE(m->runCount(), -1);
  QVERIFY2(m->expansionError().contains(QStringLiteral("f99")), qPrintable(m->expansionError()));
  QVERIFY(!bench_->runButton()->isEnabled());
  m->axisValuesEdit(0)->setText(QStringLiteral("f32, f16"));
  QCOMPARE(m->runCount(), 2);
  QVERIFY(bench_->runButton()->isEnabled());
  // The matrix runs over the engine settings panel's configuration.
  QCOMPARE(m->spec().base.model, std::string("demo"));
}

void TestBenchmarkView::progressText() {
  brisk::MatrixProgress p;
  p.run = 2;
  p.runs = 8;
  p.label = "f16 · static";
  p.repeat = 0;
  p.phase = "running";
  p.eta_s = 35;
  QCOMPARE(BenchmarkView::progressText(p), QStringLiteral("run 3/8 · f16 · static r1 · ETA 0:35"));
  p.requests_total = 1;  // a one-request workload: "0/1 request"
  QCOMPARE(BenchmarkView::progressText(p),
           QStringLiteral("run 3/8 · f16 · static r1 · 0/1 request · ETA 0:35"));
  p.requests_total = 4;
  p.requests_done = 1;
  QCOMPARE(BenchmarkView::progressText(p),
           QStringLiteral("run 3/8 · f16 · static r1 · 1/4 requests · ETA 0:35"));
}

void TestBenchmarkView::twoConfigurationsCompare() {
  setTinyWorkload();
  setMatrix(QStringLiteral("weight_dtype"), QStringLiteral("f32,f16"));
  QCOMPARE(bench_->matrixBuilder()->runCount(), 2);
  QVERIFY(runToCompletion(&savedPath_));
  QVERIFY(QFile::exists(savedPath_));
  QCOMPARE(bench_->finishedList()->count(), 2);
  QVERIFY(bench_->livePointCount(QStringLiteral("KV occupancy")) > 0);
  QCOMPARE(bench_->progressBar()->value(), bench_->progressBar()->maximum());

  // The window opened the saved results in the Compare view.
  QCOMPARE(window_->currentView(), MainWindow::View::Compare);
  QCOMPARE(compare_->openPaths(), QStringList{savedPath_});
  ResultsTableModel* model = compare_->tableModel();
  QCOMPARE(model->rowCount(), 2);
  const QString label0 =
      model->index(0, ResultsTableModel::kLabelColumn).data(ResultsTableModel::ValueTextRole).toString();
  const QString label1 =
      model->index(1, ResultsTableModel::kLabelColumn).data(ResultsTableModel::ValueTextRole).toString();
  QVERIFY2(label0.contains(QStringLiteral("f32")), qPrintable(label0));
  QVERIFY2(label1.contains(QStringLiteral("f16")), qPrintable(label1));

  // Every cell reads exactly as format_field prints the stored result.
  const std::vector<brisk::BenchResult> stored = brisk::load_results(savedPath_.toStdString());
  QCOMPARE(int(stored.size()), 2);
  const auto& fields = brisk::summary_fields();
  for (int row = 0; row < 2; ++row) {
    QVERIFY2(stored[row].error.empty(), stored[row].error.c_str());
    QCOMPARE(
        model->index(row, ResultsTableModel::kLabelColumn).data(ResultsTableModel::ValueTextRole).toString(),
        QString::fromStdString(stored[row].label));
    for (size_t f = 0; f < fields.size(); ++f) {
      const QModelIndex cell = model->index(row, ResultsTableModel::kFirstFieldColumn + int(f));
      const QString expected =
          QString::fromStdString(brisk::format_field(fields[f], fields[f].value(stored[row])));
      QCOMPARE(cell.data(ResultsTableModel::ValueTextRole).toString(), expected);
      // The baseline (run 0) shows the value alone; others add the change in %.
      const QString shown = cell.data(Qt::DisplayRole).toString();
      if (row == 0)
        QCOMPARE(shown, expected);
      else
        QVERIFY2(shown.startsWith(expected), qPrintable(shown + " / " + expected));
    }
  }
  const int gen = ResultsTableModel::columnOf("generation_tokens_per_s");
  QVERIFY(gen > 0);
  const brisk::SummaryField& genField = *ResultsTableModel::fieldAt(gen);
  const QString genText = QString::fromStdString(brisk::format_field(genField, genField.value(stored[1])));
  QCOMPARE(model->index(1, gen).data(ResultsTableModel::ValueTextRole).toString(), genText);
  QVERIFY(genField.value(stored[0]) > 0 && genField.value(stored[1]) > 0);
  // Against the baseline: the delta in the text and in the tooltip.
  const double d = (genField.value(stored[1]) - genField.value(stored[0])) / genField.value(stored[0]) * 100;
  QCOMPARE(model->index(1, gen).data(ResultsTableModel::DeltaRole).toDouble(), d);
  QVERIFY(model->index(1, gen).data(Qt::DisplayRole).toString().endsWith(QStringLiteral("%)")));
  QVERIFY(model->index(1, gen).data(Qt::ToolTipRole).toString().contains(QStringLiteral("baseline")));
  compare_->setBaseline(-1);
  QCOMPARE(model->index(1, gen).data(Qt::DisplayRole).toString(), genText);
  compare_->setBaseline(0);

  // Selecting a row focuses the request timeline on that run.
  QTableView* table = compare_->table();
  table->selectRow(compare_->proxyModel()->mapFromSource(model->index(1, 0)).row());
  QCOMPARE(compare_->focusRun(), 1);
}

void TestBenchmarkView::sortAndBestMark() {
  ResultsTableModel* model = compare_->tableModel();
  QCOMPARE(model->rowCount(), 2);
  const int gen = ResultsTableModel::columnOf("generation_tokens_per_s");
  const double v0 = model->value(0, gen), v1 = model->value(1, gen);
  QVERIFY(std::isfinite(v0) && std::isfinite(v1));
  QSortFilterProxyModel* proxy = compare_->proxyModel();
  QTableView* table = compare_->table();
  table->sortByColumn(gen, Qt::DescendingOrder);
  QVERIFY(proxy->index(0, gen).data(ResultsTableModel::SortRole).toDouble() >=
          proxy->index(1, gen).data(ResultsTableModel::SortRole).toDouble());
  const int top = proxy->mapToSource(proxy->index(0, 0)).row();
  QCOMPARE(top, v0 >= v1 ? 0 : 1);
  table->sortByColumn(gen, Qt::AscendingOrder);
  QCOMPARE(proxy->mapToSource(proxy->index(0, 0)).row(), 1 - top);
  // Sorting by label orders the text.
  table->sortByColumn(ResultsTableModel::kLabelColumn, Qt::AscendingOrder);
  QVERIFY(proxy->index(0, 0).data(ResultsTableModel::SortRole).toString() <=
          proxy->index(1, 0).data(ResultsTableModel::SortRole).toString());

  // The higher generation tok/s is marked best (bold), the other is not;
  // values are compared as the cells show them (a tie there marks no best).
  auto shown = [&](int row, int column) {
    const brisk::SummaryField& f = brisk::summary_fields()[column - ResultsTableModel::kFirstFieldColumn];
    return std::strtod(brisk::format_field(f, model->value(row, column)).c_str(), nullptr);
  };
  if (shown(0, gen) == shown(1, gen)) {
    QVERIFY(!model->index(0, gen).data(ResultsTableModel::BestRole).toBool());
    QVERIFY(!model->index(1, gen).data(ResultsTableModel::BestRole).toBool());
    return;  // a tie as shown: neither is marked, as checked; the best-mark checks below need two values
  }
  const int best = shown(0, gen) > shown(1, gen) ? 0 : 1;
  QVERIFY(model->index(best, gen).data(ResultsTableModel::BestRole).toBool());
  QVERIFY(!model->index(1 - best, gen).data(ResultsTableModel::BestRole).toBool());
  QVERIFY(model->index(best, gen).data(Qt::FontRole).value<QFont>().bold());
  QVERIFY(!model->index(1 - best, gen).data(Qt::FontRole).value<QFont>().bold());
  // A lower-is-better column marks the lower value.
  const int ttft = ResultsTableModel::columnOf("ttft_p50_ms");
  if (ttft > 0 && shown(0, ttft) != shown(1, ttft)) {
    const int lower = shown(0, ttft) < shown(1, ttft) ? 0 : 1;
    QVERIFY(model->index(lower, ttft).data(ResultsTableModel::BestRole).toBool());
    QVERIFY(!model->index(1 - lower, ttft).data(ResultsTableModel::BestRole).toBool());
  } else if (ttft > 0) {
    QVERIFY(!model->index(0, ttft).data(ResultsTableModel::BestRole).toBool());
  }
}

void TestBenchmarkView::exportHtml() {
  QCOMPARE(compare_->runs().size(), size_t(2));
  const QString path = dir_.filePath(QStringLiteral("report.html"));
  QVERIFY2(compare_->exportTo(path), qPrintable(compare_->errorString()));
  QFile f(path);
  QVERIFY(f.open(QIODevice::ReadOnly));
  const QString html = QString::fromUtf8(f.readAll());
  for (const auto& r : compare_->runs())
    QVERIFY2(html.contains(QString::fromStdString(r.label).toHtmlEscaped()) ||
                 html.contains(QString::fromStdString(r.label)),
             r.label.c_str());
  // An unknown suffix is refused with a message naming the file.
  QVERIFY(!compare_->exportTo(dir_.filePath(QStringLiteral("report.xyz"))));
  QVERIFY(compare_->errorString().contains(QStringLiteral("report.xyz")));
}

void TestBenchmarkView::resultsStoreRenameDelete() {
  ResultsStore* store = window_->resultsStore();
  QList<ResultsStore::Entry> entries = store->list();
  QCOMPARE(entries.size(), 1);
  QCOMPARE(entries.first().path, QFileInfo(savedPath_).absoluteFilePath());
  QCOMPARE(entries.first().runs, 2);
  QCOMPARE(compare_->storeList()->count(), 1);

  QVERIFY2(compare_->renameEntry(savedPath_, QStringLiteral("precision A-B")),
           qPrintable(compare_->errorString()));
  const QString renamed = dir_.filePath(QStringLiteral("results/precision A-B.json"));
  QVERIFY(QFile::exists(renamed));
  QVERIFY(!QFile::exists(savedPath_));
  entries = store->list();
  QCOMPARE(entries.size(), 1);
  QCOMPARE(entries.first().name, QStringLiteral("precision A-B"));
  QVERIFY(compare_->storeList()->item(0)->text().startsWith(QStringLiteral("precision A-B")));
  QCOMPARE(compare_->openPaths(), QStringList{QFileInfo(renamed).absoluteFilePath()});

  // Saved twice under one name: the second gets a free name.
  const std::vector<brisk::BenchResult> runs = compare_->runs();
  const QString second = store->save(runs, QStringLiteral("precision A-B"));
  QVERIFY(!second.isEmpty() && second != renamed);
  QCOMPARE(store->list().size(), 2);
  QCOMPARE(compare_->storeList()->count(), 2);
  // Reopened across sessions: two files selected together compare 4 runs.
  QVERIFY(compare_->openFiles({renamed, second}));
  QCOMPARE(compare_->tableModel()->rowCount(), 4);

  QVERIFY(compare_->deleteEntry(second));
  QVERIFY(!QFile::exists(second));
  QCOMPARE(store->list().size(), 1);
  QCOMPARE(compare_->tableModel()->rowCount(), 2);
  QVERIFY(compare_->deleteEntry(QFileInfo(renamed).absoluteFilePath()));
  QCOMPARE(store->list().size(), 0);
  QCOMPARE(compare_->storeList()->count(), 0);
  QCOMPARE(compare_->tableModel()->rowCount(), 0);
  QVERIFY(!compare_->exportButton()->isEnabled());
}

void TestBenchmarkView::stopEndsLongerMatrix() {
  window_->setCurrentView(MainWindow::View::Benchmark);
  WorkloadEditor* e = bench_->workloadEditor();
  setTinyWorkload();
  e->requestsSpin()->setValue(400);
  e->outputASpin()->setValue(256);
  setMatrix(QStringLiteral("policy"), QStringLiteral("static, continuous"));
  QSignalSpy progress(bench_->runner(), &BenchRunner::progress);
  QSignalSpy finished(bench_->runner(), &BenchRunner::finished);
  QSignalSpy completed(bench_, &BenchmarkView::matrixCompleted);
  QTest::mouseClick(bench_->runButton(), Qt::LeftButton);
  QVERIFY(bench_->isRunning());
  QVERIFY(!bench_->runButton()->isEnabled());
  QVERIFY(bench_->stopButton()->isEnabled());
  // Stop once the first run is generating.
  QTRY_VERIFY_WITH_TIMEOUT(
      !progress.isEmpty() && progress.last().at(0).value<brisk::MatrixProgress>().phase == "running",
      kTimeoutMs);
  QTest::mouseClick(bench_->stopButton(), Qt::LeftButton);
  QTRY_VERIFY_WITH_TIMEOUT(finished.count() == 1, kTimeoutMs);
  QVERIFY(bench_->runner()->wasStopped());
  QCOMPARE(completed.count(), 0);
  QVERIFY(!bench_->isRunning());
  QVERIFY(bench_->runButton()->isEnabled());
  QVERIFY(!bench_->stopButton()->isEnabled());
  QVERIFY2(bench_->progressBar()->text().contains(QStringLiteral("stopped")),
           qPrintable(bench_->progressBar()->text()));
  QCOMPARE(window_->currentView(), MainWindow::View::Benchmark);

  // Still usable: the tiny matrix runs to the end.
  setTinyWorkload();
  setMatrix(QStringLiteral("policy"), QStringLiteral("static, continuous"));
  QString path;
  QVERIFY(runToCompletion(&path));
  QCOMPARE(compare_->tableModel()->rowCount(), 2);
}

// The builder's matrix gets the checks a matrix file gets: two axes on one
// field (the run labelled "static · continuous" ran continuous) and a value
// listed twice are named in the builder, Run is off, and Run asked for
// anyway says why in the view and starts nothing.
void TestBenchmarkView::matrixBuilderRefusesWhatAMatrixFileWould() {
  window_->setCurrentView(MainWindow::View::Benchmark);
  setTinyWorkload();
  setMatrix(QStringLiteral("policy"), QStringLiteral("static, continuous"));
  MatrixBuilder* m = bench_->matrixBuilder();
  QCOMPARE(m->runCount(), 2);
  QTest::mouseClick(m->findChild<QPushButton*>(QStringLiteral("addAxis")), Qt::LeftButton);
  QCOMPARE(m->axisCount(), 2);
  m->axisFieldCombo(1)->setCurrentText(QStringLiteral("policy"));
  QCOMPARE(m->axisFieldCombo(1)->currentText(), QStringLiteral("policy"));
  QTest::keyClicks(m->axisValuesEdit(1), QStringLiteral("continuous"));
  QCOMPARE(m->runCount(), -1);
  const QString twice = m->expansionError();
  for (const char* want : {"axes[1].field", "'policy'", "already varied by axes[0]"})
    QVERIFY2(twice.contains(QLatin1String(want)), qPrintable(twice));
  QCOMPARE(m->findChild<QLabel*>(QStringLiteral("matrixSummary"))->text(), twice);
  QVERIFY(!bench_->runButton()->isEnabled());
  QCOMPARE(bench_->runButton()->toolTip(), twice);
  QSignalSpy started(bench_->runner(), &BenchRunner::started);
  bench_->requestRun();
  QVERIFY(!bench_->isRunning());
  QCOMPARE(started.count(), 0);
  QVERIFY2(bench_->messageText().contains(QStringLiteral("already varied by axes[0]")),
           qPrintable(bench_->messageText()));

  // One axis again, a value listed twice: the same configuration twice under one label.
  m->removeAxis(1);
  QCOMPARE(m->runCount(), 2);
  m->axisValuesEdit(0)->setText(QStringLiteral("static, continuous, static"));
  QCOMPARE(m->runCount(), -1);
  const QString dup = m->expansionError();
  for (const char* want : {"axes[0].values", "'static'", "listed twice"})
    QVERIFY2(dup.contains(QLatin1String(want)), qPrintable(dup));
  QVERIFY(!bench_->runButton()->isEnabled());
  m->axisValuesEdit(0)->setText(QStringLiteral("static, continuous"));
  QCOMPARE(m->runCount(), 2);
  QVERIFY(bench_->runButton()->isEnabled());
  QCOMPARE(started.count(), 0);
}

// A prompt dataset with a bad line is refused when Run is pressed, naming
// the file, line and key, before any run starts (each run used to read it
// as it started, failing one after another); fixed, the matrix runs.
void TestBenchmarkView::badPromptFileIsRefusedBeforeAnyRun() {
  window_->setCurrentView(MainWindow::View::Benchmark);
  setTinyWorkload();
  setMatrix(QStringLiteral("policy"), QStringLiteral("static, continuous"));
  const QString prompts = dir_.filePath(QStringLiteral("prompts.jsonl"));
  auto writePrompts = [&](const QByteArray& text) {
    QFile f(prompts);
    QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
    f.write(text);
  };
  writePrompts("{\"prompt\": \"Once upon a time\"}\n{\"prompt\": \"The dog\", \"output\": \"ran\"}\n");
  WorkloadEditor* e = bench_->workloadEditor();
  brisk::WorkloadSpec w = e->workload();
  w.prompt_len = brisk::LengthDist::parse("file:" + prompts.toStdString());
  w.ignore_eos = true;  // every output runs to its length: 8, or the line's max_tokens
  e->setWorkload(w);
  QCOMPARE(e->workload().prompt_len.path, prompts.toStdString());
  QVERIFY2(bench_->runButton()->isEnabled(), qPrintable(bench_->runButton()->toolTip()));
  QSignalSpy results(bench_->runner(), &BenchRunner::resultReady);
  QSignalSpy failed(bench_->runner(), &BenchRunner::failed);
  QTest::mouseClick(bench_->runButton(), Qt::LeftButton);
  // Read on the worker (a large dataset must not freeze the window), before any run.
  QTRY_VERIFY_WITH_TIMEOUT(!bench_->isRunning(), 30000);
  QCOMPARE(failed.count(), 1);
  const QString msg = bench_->messageText();
  for (const QString& want : {prompts + QStringLiteral(":2"), QStringLiteral("field 'output'")})
    QVERIFY2(msg.contains(want), qPrintable(msg));
  QVERIFY(bench_->runButton()->isEnabled());  // fix the file and run again
  QTest::qWait(50);
  QCOMPARE(results.count(), 0);

  writePrompts("{\"prompt\": \"Once upon a time\"}\n{\"prompt\": \"The dog\", \"max_tokens\": 3}\n");
  QString path;
  QVERIFY(runToCompletion(&path));
  const std::vector<brisk::BenchResult> stored = brisk::load_results(path.toStdString());
  QCOMPARE(int(stored.size()), 2);
  for (const brisk::BenchResult& r : stored) {
    QVERIFY2(r.error.empty(), r.error.c_str());
    QCOMPARE(r.workload.prompt_len.path, prompts.toStdString());
    QCOMPARE(int(r.requests.size()), 4);
    // The dataset's lines, cycled: the second and fourth ask for 3 tokens.
    std::vector<int> outputs;
    for (const brisk::RequestMetrics& q : r.requests) outputs.push_back(q.output_tokens);
    std::sort(outputs.begin(), outputs.end());
    QCOMPARE(outputs, (std::vector<int>{3, 3, 8, 8}));
  }
}

// A concurrency of 0 is "no cap" in a matrix file and in the runs (labelled
// "no cap"); the builder refused it as not "> 0". The builder's own errors
// name the field as a matrix file's do ("matrix: field 'rates': ..."), not
// "matrix.rates: ...".
void TestBenchmarkView::matrixBuilderSweepsAgreeWithMatrixFiles() {
  MatrixBuilder b;
  brisk::WorkloadSpec w;
  w.num_requests = 2;
  b.setWorkload(w);
  b.kindCombo()->setCurrentIndex(b.kindCombo()->findData(QStringLiteral("concurrency_sweep")));
  auto* conc = b.findChild<QLineEdit*>(QStringLiteral("sweepConcurrencies"));
  QVERIFY(conc);
  conc->setText(QStringLiteral("1, 0"));
  QVERIFY2(b.runCount() == 2, qPrintable(b.expansionError()));
  QCOMPARE(b.spec().concurrencies, (std::vector<int>{1, 0}));
  const std::vector<brisk::MatrixRun> runs = brisk::expand_matrix(b.spec(), w);
  QCOMPARE(runs[1].label, std::string("no cap"));
  QCOMPARE(runs[1].workload.max_concurrency, 0);
  b.setSpec(b.spec());
  QCOMPARE(conc->text(), QStringLiteral("1, 0"));
  auto expectError = [&](std::initializer_list<const char*> wants) {
    QCOMPARE(b.runCount(), -1);
    for (const char* want : wants)
      QVERIFY2(b.expansionError().contains(QLatin1String(want)), qPrintable(b.expansionError()));
  };
  conc->setText(QStringLiteral("1, x"));
  expectError({"matrix: field 'concurrencies'", "'x'"});
  conc->setText(QStringLiteral("4, -2"));
  expectError({"matrix: field 'concurrencies'", "-2"});
  conc->clear();
  expectError({"matrix: field 'concurrencies'"});
  b.kindCombo()->setCurrentIndex(b.kindCombo()->findData(QStringLiteral("rate_sweep")));
  auto* rates = b.findChild<QLineEdit*>(QStringLiteral("sweepRates"));
  QVERIFY(rates);
  rates->setText(QStringLiteral("2, fast"));
  expectError({"matrix: field 'rates'", "'fast'"});
  rates->setText(QStringLiteral("2, 0"));
  expectError({"matrix: field 'rates'", "0"});
  rates->clear();
  expectError({"matrix: field 'rates'"});
  rates->setText(QStringLiteral("2"));
  QCOMPARE(b.runCount(), 1);
  b.addAxis(QStringLiteral("policy"), QString());
  expectError({"matrix: field 'axes[0].values'"});
}

// The Compare view's stored-results list showed a file's name, time and run
// count only: runs of the same workload on two models looked the same. Each
// entry names its model(s) as the window does (fmt::modelName).
void TestBenchmarkView::storedResultsNameTheirModel() {
  QTemporaryDir dir;
  QVERIFY(dir.isValid());
  ResultsStore store(dir.path());
  CompareView view(&store);
  brisk::BenchResult r;
  r.label = "base";
  r.model.path = "/models/stories260K.gguf";
  r.model.name = "llama";  // a converter's default: the architecture names no model
  r.model.architecture = "llama";
  QVERIFY(!store.save({r}, QStringLiteral("chat")).isEmpty());
  brisk::BenchResult other = r;
  other.model.path = "/models/tinyllama.gguf";
  other.model.name = "TinyLlama 1.1B";
  brisk::BenchResult failed;  // never loaded: its configuration names the file
  failed.label = "int8";
  failed.config.model = "/models/missing-q8.gguf";
  failed.error = "cannot open";
  QVERIFY(!store.save({other, failed}, QStringLiteral("chat")).isEmpty());
  QCOMPARE(view.storeList()->count(), 2);
  QStringList lines;
  for (int i = 0; i < view.storeList()->count(); ++i)
    lines << view.storeList()->item(i)->text().section(QLatin1Char('\n'), 1);
  lines.sort();
  QVERIFY2(lines[0].startsWith(QStringLiteral("TinyLlama 1.1B, missing-q8 · ")) &&
               lines[0].endsWith(QStringLiteral(" · 2 runs")),
           qPrintable(lines[0]));
  QVERIFY2(
      lines[1].startsWith(QStringLiteral("stories260K · ")) && lines[1].endsWith(QStringLiteral(" · 1 run")),
      qPrintable(lines[1]));
  const QList<ResultsStore::Entry> entries = store.list();
  QCOMPARE(entries.size(), 2);
  QStringList models;
  for (const ResultsStore::Entry& e : entries) models << e.models.join(QStringLiteral("|"));
  models.sort();
  QCOMPARE(models, (QStringList{QStringLiteral("TinyLlama 1.1B|missing-q8"), QStringLiteral("stories260K")}));
}

namespace {
// The fields brisk::expand_matrix accepts, as its error for an unknown one lists them.
QStringList engineAxisFields() {
  brisk::MatrixSpec m;
  m.axes.push_back({"no_such_field", {"1"}});
  try {
    brisk::expand_matrix(m, brisk::WorkloadSpec{});
  } catch (const std::exception& e) {
    const QString msg = QString::fromUtf8(e.what());
    const int open = msg.lastIndexOf(QLatin1Char('(')), close = msg.lastIndexOf(QLatin1Char(')'));
    if (open >= 0 && close > open) return msg.mid(open + 1, close - open - 1).split(QStringLiteral(", "));
  }
  return {};
}
QLabel* summaryLabel(MatrixBuilder* m) { return m->findChild<QLabel*>(QStringLiteral("matrixSummary")); }
bool looksRed(QWidget* w) { return w->styleSheet().contains(QStringLiteral("#c0392b")); }
}  // namespace

// The builder offers every field a matrix file may vary (README: "axes over
// any engine setting"), each with a hint whose first value the engine takes.
void TestBenchmarkView::matrixBuilderOffersEveryMatrixField() {
  const QStringList engine = engineAxisFields();
  QVERIFY2(engine.size() > 20, qPrintable(engine.join(QLatin1Char(' '))));
  const QStringList offered = MatrixBuilder::axisFields();
  QCOMPARE(QSet<QString>(offered.begin(), offered.end()).size(), offered.size());  // no field twice
  QStringList missing, unknown;
  for (const QString& f : engine)
    if (!offered.contains(f)) missing << f;
  for (const QString& f : offered)
    if (!engine.contains(f)) unknown << f;
  QVERIFY2(missing.isEmpty(),
           qPrintable(QStringLiteral("not offered: ") + missing.join(QStringLiteral(", "))));
  QVERIFY2(unknown.isEmpty(),
           qPrintable(QStringLiteral("not accepted: ") + unknown.join(QStringLiteral(", "))));

  setTinyWorkload();
  MatrixBuilder* m = bench_->matrixBuilder();
  m->kindCombo()->setCurrentIndex(0);
  m->repeatsSpin()->setValue(1);
  for (const QString& f : offered) {
    m->clearAxes();
    QCOMPARE(m->addAxis(f), 0);
    QCOMPARE(m->axisFieldCombo(0)->currentText(), f);
    const QString hint = m->axisValuesEdit(0)->placeholderText();
    QVERIFY2(!hint.isEmpty(), qPrintable(f));
    const QString first = hint.section(QLatin1Char(','), 0, 0).trimmed();
    m->axisValuesEdit(0)->setText(first);
    QVERIFY2(m->runCount() == 1,
             qPrintable(f + QStringLiteral(" = ") + first + QStringLiteral(": ") + m->expansionError()));
  }
  m->clearAxes();
  m->addAxis(QStringLiteral("backend"));
  QVERIFY2(m->axisValuesEdit(0)->placeholderText().contains(QStringLiteral("auto, cpu, cuda")),
           qPrintable(m->axisValuesEdit(0)->placeholderText()));
  for (const QString& f :
       {QStringLiteral("cuda_graphs"), QStringLiteral("fused_rope"), QStringLiteral("l2_prefetch"),
        QStringLiteral("persistent_decode"), QStringLiteral("int8_fma")}) {
    m->clearAxes();
    m->addAxis(f);
    QCOMPARE(m->axisValuesEdit(0)->placeholderText(), QStringLiteral("true, false"));
  }
  m->clearAxes();
}

// A new axis row says what to type, not an error in red, until the user has
// edited its values or tries to run.
void TestBenchmarkView::newAxisShowsHintNotError() {
  MatrixBuilder* m = bench_->matrixBuilder();
  m->clearAxes();
  m->kindCombo()->setCurrentIndex(0);
  QTest::mouseClick(m->findChild<QPushButton*>(QStringLiteral("addAxis")), Qt::LeftButton);
  QCOMPARE(m->axisCount(), 1);
  QLabel* summary = summaryLabel(m);
  QVERIFY(summary);
  QVERIFY(!summary->text().isEmpty());
  QVERIFY2(!looksRed(summary), qPrintable(summary->text()));
  QVERIFY2(!summary->text().contains(QStringLiteral("give at least one")), qPrintable(summary->text()));
  QVERIFY(!bench_->runButton()->isEnabled());  // still nothing to run
  QCOMPARE(bench_->runButton()->toolTip(), summary->text());
  // Typed, then erased: now it is an error.
  QTest::keyClicks(m->axisValuesEdit(0), QStringLiteral("f"));
  QTest::keyClick(m->axisValuesEdit(0), Qt::Key_Backspace);
  QVERIFY2(looksRed(summary), qPrintable(summary->text()));
  // A fresh row again, and Run asked for (Ctrl+R): the error shows.
  m->clearAxes();
  m->addAxis();
  QVERIFY(!looksRed(summary));
  bench_->requestRun();
  QVERIFY(!bench_->isRunning());
  QVERIFY2(looksRed(summary), qPrintable(summary->text()));
  QVERIFY2(!bench_->messageText().isEmpty(), "Run said nothing");
  m->clearAxes();
}

// Matrix files load into the builder and save from it, in the format the CLI
// reads (brisk::load_matrix); a file's base wins over the engine settings, as
// with brisk-cli bench --matrix, and one naming no model runs the window's.
void TestBenchmarkView::matrixFilesLoadAndSave() {
  MatrixBuilder* m = bench_->matrixBuilder();
  QVERIFY(m->findChild<QPushButton*>(QStringLiteral("loadMatrix")));
  QVERIFY(m->findChild<QPushButton*>(QStringLiteral("saveMatrix")));
  setTinyWorkload();
  setMatrix(QStringLiteral("policy"), QStringLiteral("static, continuous"));
  m->repeatsSpin()->setValue(2);
  m->nameEdit()->setText(QStringLiteral("saved matrix"));
  const brisk::MatrixSpec before = m->spec();
  const QString path = dir_.filePath(QStringLiteral("m.json"));
  bool ok = false;
  QVERIFY(QMetaObject::invokeMethod(m, "saveTo", Q_RETURN_ARG(bool, ok), Q_ARG(QString, path)));
  QVERIFY(ok);
  QCOMPARE(brisk::to_json(brisk::load_matrix(path.toStdString())), brisk::to_json(before));

  const QString other = dir_.filePath(QStringLiteral("other.json"));
  {
    QFile f(other);
    QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
    f.write(R"({"schema": "brisk.matrix", "version": 1, "name": "from file",
      "base": {"model": "demo", "threads": 1, "max_num_seqs": 3},
      "axes": [{"field": "max_num_batched_tokens", "values": [64, 128]}, {"field": "top_k", "values": ["0", "40"]}],
      "repeats": 1, "warmup_requests": 0})");
  }
  // What the widgets hold is what the file said: more repeats than 100, an SLO under a millisecond's step.
  const QString exact = dir_.filePath(QStringLiteral("exact.json"));
  {
    QFile f(exact);
    QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
    f.write(R"({"schema": "brisk.matrix", "version": 1, "name": "exact", "base": {"model": "demo"},
      "axes": [{"field": "policy", "values": ["static", "continuous"]}], "repeats": 300,
      "warmup_requests": 0, "slo": {"tpot_s": 0.0015, "ttft_s": 0.25}})");
  }
  QVERIFY(QMetaObject::invokeMethod(m, "loadFrom", Q_RETURN_ARG(bool, ok), Q_ARG(QString, exact)));
  QVERIFY2(ok, qPrintable(m->expansionError()));
  QCOMPARE(m->spec().repeats, 300);
  QCOMPARE(m->spec().slo.tpot_s, 0.0015);
  QCOMPARE(m->spec().slo.ttft_s, 0.25);
  QVERIFY(QMetaObject::invokeMethod(m, "loadFrom", Q_RETURN_ARG(bool, ok), Q_ARG(QString, other)));
  QVERIFY2(ok, qPrintable(m->expansionError()));
  QCOMPARE(m->axisCount(), 2);
  QCOMPARE(m->axisFieldCombo(1)->currentText(), QStringLiteral("top_k"));
  QCOMPARE(m->runCount(), 4);
  QCOMPARE(m->nameEdit()->text(), QStringLiteral("from file"));
  QCOMPARE(m->spec().base.max_num_seqs, 3);
  QCOMPARE(m->spec().base.threads, 1);
  QCOMPARE(brisk::to_json(m->spec()), brisk::to_json(brisk::load_matrix(other.toStdString())));
  // Saved again, it reads back the same.
  const QString again = dir_.filePath(QStringLiteral("again.json"));
  QVERIFY(QMetaObject::invokeMethod(m, "saveTo", Q_RETURN_ARG(bool, ok), Q_ARG(QString, again)));
  QVERIFY(ok);
  QCOMPARE(brisk::to_json(brisk::load_matrix(again.toStdString())), brisk::to_json(m->spec()));

  // No model in the file: the window's (the engine settings') model runs.
  const QString noModel = dir_.filePath(QStringLiteral("nomodel.json"));
  {
    QFile f(noModel);
    QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
    f.write(
        R"({"schema": "brisk.matrix", "version": 1, "base": {"model": "/elsewhere/x.gguf", "max_num_seqs": 5}})");
  }
  QVERIFY(QMetaObject::invokeMethod(m, "loadFrom", Q_RETURN_ARG(bool, ok), Q_ARG(QString, noModel)));
  QVERIFY(ok);
  QCOMPARE(m->spec().base.model, std::string("/elsewhere/x.gguf"));
  {
    QFile f(noModel);
    QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
    f.write(R"({"schema": "brisk.matrix", "version": 1, "base": {"max_num_seqs": 5}})");
  }
  QVERIFY(QMetaObject::invokeMethod(m, "loadFrom", Q_RETURN_ARG(bool, ok), Q_ARG(QString, noModel)));
  QVERIFY(ok);
  QCOMPARE(m->spec().base.max_num_seqs, 5);
  QCOMPARE(m->spec().base.model, window_->engineSettings()->config().model);

  // A bad file is refused naming it and the field; the builder keeps what it had.
  const QString bad = dir_.filePath(QStringLiteral("bad.json"));
  {
    QFile f(bad);
    QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
    f.write(
        R"({"schema": "brisk.matrix", "version": 1, "axes": [{"field": "polcy", "values": ["static"]}]})");
  }
  QVERIFY(QMetaObject::invokeMethod(m, "loadFrom", Q_RETURN_ARG(bool, ok), Q_ARG(QString, bad)));
  QVERIFY(!ok);
  const QString err = m->errorString();
  QVERIFY2(err.contains(QStringLiteral("bad.json")), qPrintable(err));
  QCOMPARE(m->spec().base.max_num_seqs, 5);

  // Back to the engine settings as the base.
  QVERIFY(QMetaObject::invokeMethod(m, "useEngineSettings"));
  QCOMPARE(m->spec().base.max_num_seqs, window_->engineSettings()->config().max_num_seqs);
  m->clearAxes();
  m->nameEdit()->clear();
}

// An error before the first run (here a prompt dataset that is not there)
// ends the matrix saying so and that nothing ran, not as a finished matrix.
void TestBenchmarkView::preRunErrorSaysNothingRan() {
  setTinyWorkload();
  setMatrix(QStringLiteral("policy"), QStringLiteral("static, continuous"));
  WorkloadEditor* e = bench_->workloadEditor();
  brisk::WorkloadSpec w = e->workload();
  const QString missing = dir_.filePath(QStringLiteral("no-such-prompts.jsonl"));
  w.prompt_len = brisk::LengthDist::parse("file:" + missing.toStdString());
  e->setWorkload(w);
  QVERIFY2(bench_->runButton()->isEnabled(), qPrintable(bench_->runButton()->toolTip()));
  QSignalSpy finished(bench_->runner(), &BenchRunner::finished);
  QTest::mouseClick(bench_->runButton(), Qt::LeftButton);
  QTRY_VERIFY_WITH_TIMEOUT(finished.count() > 0, 30000);
  QVERIFY2(bench_->messageText().contains(missing), qPrintable(bench_->messageText()));
  QVERIFY2(bench_->messageText().contains(QStringLiteral("nothing was run"), Qt::CaseInsensitive),
           qPrintable(bench_->messageText()));
  QVERIFY2(bench_->progressBar()->format().contains(QStringLiteral("nothing was run")),
           qPrintable(bench_->progressBar()->format()));
  QCOMPARE(bench_->progressBar()->property("outcome").toString(), QStringLiteral("failed"));
  setTinyWorkload();
  w = e->workload();
  w.prompt_len = brisk::LengthDist::parse("fixed:16");
  e->setWorkload(w);
}

// Every run failing is no success: the done line counts the failures and
// gives each distinct reason, and the bar does not read as done.
void TestBenchmarkView::allFailedMatrixSaysSo() {
  setTinyWorkload();
  const QString a = dir_.filePath(QStringLiteral("missing-a.gguf")),
                b = dir_.filePath(QStringLiteral("missing-b.gguf"));
  setMatrix(QStringLiteral("model"), a + QStringLiteral(", ") + b);
  QVERIFY2(bench_->runButton()->isEnabled(), qPrintable(bench_->runButton()->toolTip()));
  QSignalSpy finished(bench_->runner(), &BenchRunner::finished);
  QSignalSpy completed(bench_, &BenchmarkView::matrixCompleted);
  QTest::mouseClick(bench_->runButton(), Qt::LeftButton);
  QTRY_VERIFY_WITH_TIMEOUT(finished.count() > 0, kTimeoutMs);
  const QString format = bench_->progressBar()->format();
  QVERIFY2(format.contains(QStringLiteral("2 of 2 runs failed")), qPrintable(format));
  QVERIFY2(!format.startsWith(QStringLiteral("done")), qPrintable(format));
  QCOMPARE(bench_->progressBar()->property("outcome").toString(), QStringLiteral("failed"));
  const QString msg = bench_->messageText();
  QVERIFY2(msg.contains(QStringLiteral("2 of 2 runs failed:")), qPrintable(msg));
  QVERIFY2(msg.contains(QStringLiteral("missing-a.gguf")) && msg.contains(QStringLiteral("missing-b.gguf")),
           qPrintable(msg));
  QVERIFY2(!msg.contains(QStringLiteral("2 runs saved")), qPrintable(msg));
  QCOMPARE(completed.count(), 0);  // nothing to compare
  bench_->matrixBuilder()->clearAxes();
}

// Run names the model the matrix runs (the engine settings' model: the demo
// model when nothing else was opened), so it never runs one unannounced.
void TestBenchmarkView::runSaysWhichModel() {
  setTinyWorkload();
  setMatrix(QStringLiteral("policy"), QStringLiteral("static, continuous"));
  auto* label = bench_->findChild<QLabel*>(QStringLiteral("benchModel"));
  QVERIFY2(label, "no label naming the model");
  const std::string model = bench_->matrixBuilder()->spec().base.model;
  const QString want =
      model == "demo" ? QStringLiteral("demo model") : QFileInfo(QString::fromStdString(model)).fileName();
  QVERIFY2(label->text().contains(want), qPrintable(label->text()));
  QVERIFY2(bench_->runButton()->toolTip().contains(want), qPrintable(bench_->runButton()->toolTip()));
  // A model axis: the label says the runs' models.
  setMatrix(QStringLiteral("model"), QStringLiteral("demo, /x/other.gguf"));
  QVERIFY2(label->text().contains(QStringLiteral("other.gguf")), qPrintable(label->text()));
  bench_->matrixBuilder()->clearAxes();
}

// The CUDA knobs are saved with the engine settings and hidden while the CPU
// runs the model; a matrix on backend "cpu" refuses them set (they would
// change nothing). The window's base leaves them at their defaults on the
// CPU, and the builder follows a settings edit while the view shows.
void TestBenchmarkView::hiddenCudaKnobsDoNotBlockACpuMatrix() {
  window_->setCurrentView(MainWindow::View::Benchmark);
  EngineSettingsPanel* panel = window_->engineSettings();
  const brisk::EngineConfig saved = panel->config();
  setTinyWorkload();
  setMatrix(QStringLiteral("policy"), QStringLiteral("static, continuous"));
  MatrixBuilder* m = bench_->matrixBuilder();
  QCOMPARE(m->runCount(), 2);
  brisk::EngineConfig c = saved;
  c.backend = "cpu";
  c.fused_rope = true;
  c.l2_prefetch = true;
  c.persistent_decode = true;
  c.cuda_graphs = false;
  panel->setConfig(c);
  QCOMPARE(panel->config().backend, std::string("cpu"));
  QCOMPARE(panel->config().fused_rope, true);  // kept in the settings
  QCOMPARE(panel->config().l2_prefetch, true);
  QCOMPARE(panel->config().persistent_decode, true);
  m->refresh();
  QCOMPARE(m->runCount(), 2);
  QVERIFY2(m->expansionError().isEmpty(), qPrintable(m->expansionError()));
  QVERIFY2(bench_->runButton()->isEnabled(), qPrintable(bench_->runButton()->toolTip()));
  // The builder follows a settings edit while the view shows: the model line names the settings' model.
  auto* line = bench_->findChild<QLabel*>(QStringLiteral("benchModel"));
  QVERIFY(line);
  c.model = dir_.filePath(QStringLiteral("no-such-model.gguf")).toStdString();
  panel->setConfig(c);
  QVERIFY2(line->text().contains(QStringLiteral("no-such-model.gguf")), qPrintable(line->text()));
  panel->setConfig(saved);
}

QTEST_MAIN(TestBenchmarkView)
#include "test_benchmark_view.moc"
