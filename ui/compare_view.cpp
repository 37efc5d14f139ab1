#include "compare_view.h"

#include <qcustomplot.h>

#include <QComboBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QInputDialog>
#include <QItemSelectionModel>
#include <QLabel>
#include <QListWidget>
#include <QLocale>
#include <QMessageBox>
#include <QPushButton>
#include <QScrollBar>
#include <QSortFilterProxyModel>
#include <QSplitter>
#include <QTabWidget>
#include <QTableView>
#include <QVBoxLayout>
#include <algorithm>
#include <exception>

#include "report/report_common.h"
#include "report/report_writer.h"
#include "results_store.h"
#include "results_table_model.h"

namespace {
constexpr int kPathRole = Qt::UserRole + 1;

const brisk::ui::ResultPlot kPlots[] = {brisk::ui::ResultPlot::ThroughputBars,
                                        brisk::ui::ResultPlot::LatencyCdf,
                                        brisk::ui::ResultPlot::TtftBars,
                                        brisk::ui::ResultPlot::TpotBars,
                                        brisk::ui::ResultPlot::ThroughputVsLatency,
                                        brisk::ui::ResultPlot::KvOccupancy,
                                        brisk::ui::ResultPlot::RequestTimeline};
QString runsText(int n) { return n == 1 ? QObject::tr("1 run") : QObject::tr("%1 runs").arg(n); }
}  // namespace

CompareView::CompareView(ResultsStore* store, QWidget* parent) : QWidget(parent), store_(store) {
  setObjectName(QStringLiteral("compareView"));
  auto* layout = new QHBoxLayout(this);
  layout->setContentsMargins(0, 4, 0, 0);
  auto* split = new QSplitter(Qt::Horizontal, this);
  split->setObjectName(QStringLiteral("compareSplitter"));
  layout->addWidget(split);

  // Left: the store.
  auto* left = new QWidget(split);
  auto* ll = new QVBoxLayout(left);
  ll->setContentsMargins(0, 0, 4, 0);
  auto* storeTitle = new QLabel(tr("<b>Stored results</b>"), left);
  storeTitle->setToolTip(store_->directory());
  list_ = new QListWidget(left);
  list_->setObjectName(QStringLiteral("resultsList"));
  list_->setSelectionMode(QAbstractItemView::ExtendedSelection);
  list_->setToolTip(tr("Select one or more results to compare them (Ctrl/Shift-click)"));
  auto* buttons = new QHBoxLayout;
  rename_ = new QPushButton(tr("Rename…"), left);
  rename_->setObjectName(QStringLiteral("renameResult"));
  delete_ = new QPushButton(tr("Delete…"), left);
  delete_->setObjectName(QStringLiteral("deleteResult"));
  auto* refresh = new QPushButton(tr("Refresh"), left);
  buttons->addWidget(rename_);
  buttons->addWidget(delete_);
  buttons->addWidget(refresh);
  ll->addWidget(storeTitle);
  ll->addWidget(list_, 1);
  ll->addLayout(buttons);

  // Right: the table and the plots.
  auto* right = new QWidget(split);
  auto* rl = new QVBoxLayout(right);
  rl->setContentsMargins(4, 0, 0, 0);
  auto* bar = new QHBoxLayout;
  baseline_ = new QComboBox(right);
  baseline_->setObjectName(QStringLiteral("baselineCombo"));
  baseline_->setToolTip(tr("The run the other runs' changes (%) are measured against"));
  baseline_->setSizeAdjustPolicy(QComboBox::AdjustToContents);
  export_ = new QPushButton(tr("Export…"), right);
  export_->setObjectName(QStringLiteral("exportReport"));
  export_->setToolTip(tr("Write these runs as HTML, PDF, Markdown, JSON or CSV"));
  message_ = new QLabel(right);
  message_->setObjectName(QStringLiteral("compareMessage"));
  message_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  bar->addWidget(new QLabel(tr("Baseline"), right));
  bar->addWidget(baseline_);
  bar->addWidget(message_, 1);
  bar->addWidget(export_);
  rl->addLayout(bar);

  model_ = new ResultsTableModel(this);
  proxy_ = new QSortFilterProxyModel(this);
  proxy_->setSourceModel(model_);
  proxy_->setSortRole(ResultsTableModel::SortRole);
  table_ = new QTableView(right);
  table_->setObjectName(QStringLiteral("resultsTable"));
  table_->setModel(proxy_);
  table_->setSortingEnabled(true);
  table_->sortByColumn(-1, Qt::AscendingOrder);  // execution order until a header is clicked
  table_->setSelectionBehavior(QAbstractItemView::SelectRows);
  table_->setSelectionMode(QAbstractItemView::SingleSelection);
  table_->setAlternatingRowColors(true);
  table_->verticalHeader()->setDefaultSectionSize(table_->fontMetrics().height() + 8);
  table_->horizontalHeader()->setSectionResizeMode(QHeaderView::Interactive);
  table_->horizontalHeader()->setStretchLastSection(false);
  table_->setWordWrap(false);

  tabs_ = new QTabWidget(right);
  tabs_->setObjectName(QStringLiteral("comparePlots"));
  tabs_->setDocumentMode(true);
  for (brisk::ui::ResultPlot p : kPlots) {
    auto* plot = new QCustomPlot(tabs_);
    plot->setObjectName(QStringLiteral("comparePlot%1").arg(int(p)));
    plot->setMinimumSize(240, 220);
    plots_.append({p, plot});
    tabs_->addTab(plot, brisk::ui::result_plot_title(p));
  }

  auto* vsplit = new QSplitter(Qt::Vertical, right);
  vsplit->addWidget(table_);
  vsplit->addWidget(tabs_);
  vsplit->setStretchFactor(0, 2);
  vsplit->setStretchFactor(1, 3);
  vsplit->setChildrenCollapsible(false);
  rl->addWidget(vsplit, 1);

  split->addWidget(left);
  split->addWidget(right);
  split->setStretchFactor(0, 1);
  split->setStretchFactor(1, 4);
  split->setChildrenCollapsible(false);

  connect(list_, &QListWidget::itemSelectionChanged, this, [this] {
    rename_->setEnabled(selectedPaths().size() == 1);
    delete_->setEnabled(!selectedPaths().isEmpty());
    if (!syncingList_) openSelected();
  });
  connect(rename_, &QPushButton::clicked, this, &CompareView::renameSelected);
  connect(delete_, &QPushButton::clicked, this, &CompareView::deleteSelected);
  connect(refresh, &QPushButton::clicked, this, &CompareView::refreshStore);
  connect(export_, &QPushButton::clicked, this, &CompareView::exportReport);
  connect(baseline_, &QComboBox::currentIndexChanged, this, [this](int i) {
    model_->setBaseline(baseline_->itemData(i).isValid() ? baseline_->itemData(i).toInt() : -1);
  });
  connect(table_->selectionModel(), &QItemSelectionModel::currentRowChanged, this,
          [this](const QModelIndex& current) {
            if (!current.isValid()) return;
            const int row = proxy_->mapToSource(current).row();
            if (row == focus_) return;
            focus_ = row;
            redrawTimeline();
          });
  connect(store_, &ResultsStore::changed, this, &CompareView::refreshStore);

  rename_->setEnabled(false);
  delete_->setEnabled(false);
  export_->setEnabled(false);
  refreshStore();
  redrawPlots();
}

const std::vector<brisk::BenchResult>& CompareView::runs() const { return model_->runs(); }

QCustomPlot* CompareView::plot(brisk::ui::ResultPlot p) const {
  for (const auto& [kind, plot] : plots_)
    if (kind == p) return plot;
  return nullptr;
}

void CompareView::showMessage(const QString& text, bool error) {
  message_->setText(text);
  message_->setStyleSheet(error ? QStringLiteral("color: #c0392b;") : QString());
}

QStringList CompareView::selectedPaths() const {
  QStringList paths;
  for (QListWidgetItem* item : list_->selectedItems()) paths << item->data(kPathRole).toString();
  return paths;
}

void CompareView::refreshStore() {
  syncingList_ = true;
  list_->clear();
  const QLocale locale;
  for (const ResultsStore::Entry& e : store_->list()) {
    QString detail = e.runs < 0 ? tr("unreadable") : runsText(e.runs);
    // The model first: runs of one workload on two models otherwise read the same.
    QString models = e.models.mid(0, 2).join(QStringLiteral(", "));
    if (e.models.size() > 2) models += tr(" +%1 more").arg(e.models.size() - 2);
    if (!models.isEmpty()) models += QStringLiteral(" · ");
    auto* item =
        new QListWidgetItem(QStringLiteral("%1\n%2%3 · %4")
                                .arg(e.name, models, locale.toString(e.date, QLocale::ShortFormat), detail),
                            list_);
    item->setData(kPathRole, e.path);
    QString tip = e.path;
    if (e.models.size() > 2)
      tip += QLatin1Char('\n') + tr("Models: %1").arg(e.models.join(QStringLiteral(", ")));
    if (!e.labels.isEmpty()) tip += QLatin1Char('\n') + e.labels.join(QStringLiteral("\n"));
    if (!e.error.isEmpty()) {
      tip += QLatin1Char('\n') + e.error;
      item->setForeground(QColor(0xc0, 0x39, 0x2b));
    }
    item->setToolTip(tip);
    if (openPaths_.contains(e.path)) item->setSelected(true);
  }
  syncingList_ = false;
  rename_->setEnabled(selectedPaths().size() == 1);
  delete_->setEnabled(!selectedPaths().isEmpty());
}

void CompareView::openSelected() {
  const QStringList paths = selectedPaths();
  if (paths == openPaths_) return;
  std::vector<brisk::BenchResult> all;
  QStringList opened;
  QStringList errors;
  for (const QString& p : paths) {
    try {
      std::vector<brisk::BenchResult> runs = store_->load(p);
      all.insert(all.end(), std::make_move_iterator(runs.begin()), std::make_move_iterator(runs.end()));
      opened << p;
    } catch (const std::exception& e) {
      errors << QString::fromUtf8(e.what());
    }
  }
  openPaths_ = opened;
  setRuns(std::move(all));
  if (!errors.isEmpty()) showMessage(errors.join(QStringLiteral("; ")), true);
}

bool CompareView::openFiles(const QStringList& paths) {
  refreshStore();
  syncingList_ = true;
  list_->clearSelection();
  for (int i = 0; i < list_->count(); ++i)
    if (paths.contains(list_->item(i)->data(kPathRole).toString())) list_->item(i)->setSelected(true);
  syncingList_ = false;
  // Files outside the store open too; the list shows only the store.
  std::vector<brisk::BenchResult> all;
  QStringList opened;
  for (const QString& p : paths) {
    try {
      std::vector<brisk::BenchResult> runs = store_->load(p);
      all.insert(all.end(), std::make_move_iterator(runs.begin()), std::make_move_iterator(runs.end()));
      opened << p;
    } catch (const std::exception& e) {
      error_ = QString::fromUtf8(e.what());
      showMessage(error_, true);
      return false;
    }
  }
  openPaths_ = opened;
  setRuns(std::move(all));
  rename_->setEnabled(selectedPaths().size() == 1);
  delete_->setEnabled(!selectedPaths().isEmpty());
  return true;
}

void CompareView::setRuns(std::vector<brisk::BenchResult> runs) {
  model_->setRuns(std::move(runs));
  const auto& rs = model_->runs();
  {
    const QSignalBlocker block(baseline_);
    baseline_->clear();
    baseline_->addItem(tr("None"));
    // Named as the plots and reports name the runs ("r1" only among repeats).
    const QStringList labels = brisk::ui::run_labels(rs);
    for (size_t i = 0; i < rs.size(); ++i) baseline_->addItem(labels[int(i)], int(i));
    baseline_->setCurrentIndex(rs.empty() ? 0 : 1);
  }
  model_->setBaseline(rs.empty() ? -1 : 0);
  table_->resizeColumnsToContents();
  focus_ = 0;
  table_->clearSelection();
  fitTable();
  export_->setEnabled(!rs.empty());
  showMessage(rs.empty() ? tr("Select stored results on the left to compare them")
                         : runsText(int(rs.size())));
  redrawPlots();
  Q_EMIT runsChanged();
}

void CompareView::fitTable() {
  // A few runs need a few rows: the plots get the rest of the height.
  auto* split = qobject_cast<QSplitter*>(table_->parentWidget());
  if (!split) return;
  const int total = split->height();
  const int rows = std::max(2, model_->rowCount());
  const int want = table_->horizontalHeader()->sizeHint().height() +
                   rows * table_->verticalHeader()->defaultSectionSize() +
                   table_->horizontalScrollBar()->sizeHint().height() + 2 * table_->frameWidth() + 2;
  const int h = std::clamp(want, 80, std::max(80, total * 45 / 100));
  split->setSizes({h, std::max(1, total - h)});
}

void CompareView::resizeEvent(QResizeEvent* e) {
  QWidget::resizeEvent(e);
  fitTable();
}

void CompareView::setBaseline(int run) {
  const int i = baseline_->findData(run);
  baseline_->setCurrentIndex(i < 0 ? 0 : i);
}

void CompareView::redrawPlots() {
  for (const auto& [kind, plot] : plots_) {
    try {
      brisk::ui::draw_result_plot(plot, kind, model_->runs(),
                                  kind == brisk::ui::ResultPlot::RequestTimeline ? focus_ : 0);
    } catch (const std::exception& e) {
      plot->clearPlottables();
      showMessage(QString::fromUtf8(e.what()), true);
    }
    plot->replot(QCustomPlot::rpQueuedReplot);
  }
}

void CompareView::redrawTimeline() {
  QCustomPlot* p = plot(brisk::ui::ResultPlot::RequestTimeline);
  try {
    brisk::ui::draw_result_plot(p, brisk::ui::ResultPlot::RequestTimeline, model_->runs(), focus_);
  } catch (const std::exception& e) {
    showMessage(QString::fromUtf8(e.what()), true);
  }
  p->replot(QCustomPlot::rpQueuedReplot);
}

bool CompareView::exportTo(const QString& path) {
  error_.clear();
  if (model_->runs().empty()) {
    error_ = tr("Open some results first");
    return false;
  }
  try {
    brisk::ui::ReportOptions options;
    options.baseline = std::max(0, model_->baseline());
    brisk::ui::write_report(model_->runs(), path, brisk::ui::report_format_for(path), options);
  } catch (const std::exception& e) {
    error_ = QString::fromUtf8(e.what());
    showMessage(error_, true);
    return false;
  }
  showMessage(tr("Exported %1").arg(QFileInfo(path).fileName()));
  return true;
}

void CompareView::exportReport() {
  QString suggested = openPaths_.size() == 1 ? QFileInfo(openPaths_.first()).completeBaseName()
                                             : QStringLiteral("brisk-report");
  const QString path = QFileDialog::getSaveFileName(
      this, tr("Export report"), suggested + QStringLiteral(".html"),
      tr("HTML report (*.html);;PDF report (*.pdf);;Markdown with PNG plots (*.md);;"
         "JSON results, re-importable (*.json);;CSV summary table (*.csv)"));
  if (path.isEmpty()) return;
  if (!exportTo(path)) QMessageBox::warning(this, tr("Export failed"), error_);
}

bool CompareView::renameEntry(const QString& path, const QString& newName) {
  QString error;
  const QString target = store_->rename(path, newName, &error);
  if (target.isEmpty()) {
    error_ = error;
    showMessage(error, true);
    return false;
  }
  const int i = openPaths_.indexOf(path);
  if (i >= 0) openPaths_[i] = target;
  refreshStore();
  return true;
}

bool CompareView::deleteEntry(const QString& path) {
  QString error;
  if (!store_->remove(path, &error)) {
    error_ = error;
    showMessage(error, true);
    return false;
  }
  if (openPaths_.contains(path)) {
    openPaths_.removeAll(path);
    // What stays open is what the other selected files hold.
    const QStringList rest = openPaths_;
    openPaths_.clear();
    openFiles(rest);
  } else {
    refreshStore();
  }
  return true;
}

void CompareView::renameSelected() {
  const QStringList paths = selectedPaths();
  if (paths.size() != 1) return;
  bool ok = false;
  const QString name = QInputDialog::getText(this, tr("Rename results"), tr("Name"), QLineEdit::Normal,
                                             QFileInfo(paths.first()).completeBaseName(), &ok);
  if (ok && !name.trimmed().isEmpty()) renameEntry(paths.first(), name);
}

void CompareView::deleteSelected() {
  const QStringList paths = selectedPaths();
  if (paths.isEmpty()) return;
  if (QMessageBox::question(this, tr("Delete results"),
                            paths.size() == 1
                                ? tr("Delete the stored result %1? This cannot be undone.")
                                      .arg(QFileInfo(paths.first()).completeBaseName())
                                : tr("Delete %1 stored results? This cannot be undone.").arg(paths.size())) !=
      QMessageBox::Yes)
    return;
  for (const QString& p : paths) deleteEntry(p);
}
