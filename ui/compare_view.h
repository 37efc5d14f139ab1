// The Compare view. Left: the results store (newest first); selecting one
// or more entries opens their runs together, so runs from different
// sessions compare side by side; entries can be renamed and deleted.
// Right: the results table (sortable, best per column marked, deltas
// against the chosen baseline run), a tab per comparison plot
// (brisk::ui::ResultPlot; the request timeline follows the selected table
// row) and Export… (HTML, PDF, Markdown, JSON, CSV through write_report).
#pragma once
#include <QString>
#include <QStringList>
#include <QWidget>
#include <vector>

#include "brisk/bench_matrix.h"
#include "report/result_plots.h"

class QComboBox;
class QCustomPlot;
class QLabel;
class QListWidget;
class QPushButton;
class QSortFilterProxyModel;
class QTabWidget;
class QTableView;
class ResultsStore;
class ResultsTableModel;

class CompareView : public QWidget {
  Q_OBJECT

 public:
  explicit CompareView(ResultsStore* store, QWidget* parent = nullptr);

  const std::vector<brisk::BenchResult>& runs() const;
  QStringList openPaths() const { return openPaths_; }
  ResultsTableModel* tableModel() const { return model_; }
  QSortFilterProxyModel* proxyModel() const { return proxy_; }
  QTableView* table() const { return table_; }
  QListWidget* storeList() const { return list_; }
  QComboBox* baselineCombo() const { return baseline_; }
  QTabWidget* plotTabs() const { return tabs_; }
  QCustomPlot* plot(brisk::ui::ResultPlot p) const;
  QPushButton* exportButton() const { return export_; }
  // The run the request timeline shows (a row of runs()).
  int focusRun() const { return focus_; }
  QString errorString() const { return error_; }

  // Writes a report of the open runs; the format follows the suffix (.html,
  // .pdf, .md, .json, .csv). False, with errorString(), on failure.
  bool exportTo(const QString& path);
  // Opens stored results files together (and selects them in the list).
  bool openFiles(const QStringList& paths);
  void setRuns(std::vector<brisk::BenchResult> runs);
  // -1: no baseline.
  void setBaseline(int run);
  // The store's entry operations, without the dialogs.
  bool renameEntry(const QString& path, const QString& newName);
  bool deleteEntry(const QString& path);

 public Q_SLOTS:
  void refreshStore();
  void exportReport();    // asks for a file (QFileDialog)
  void renameSelected();  // asks for the name (QInputDialog)
  void deleteSelected();  // asks to confirm (QMessageBox)

 Q_SIGNALS:
  void runsChanged();

 protected:
  void resizeEvent(QResizeEvent* e) override;

 private:
  void fitTable();
  void openSelected();
  void redrawPlots();
  void redrawTimeline();
  void showMessage(const QString& text, bool error = false);
  QStringList selectedPaths() const;

  ResultsStore* store_;
  QListWidget* list_;
  QPushButton* rename_;
  QPushButton* delete_;
  ResultsTableModel* model_;
  QSortFilterProxyModel* proxy_;
  QTableView* table_;
  QComboBox* baseline_;
  QTabWidget* tabs_;
  QList<QPair<brisk::ui::ResultPlot, QCustomPlot*>> plots_;
  QPushButton* export_;
  QLabel* message_;
  QStringList openPaths_;
  QString error_;
  int focus_ = 0;
  bool syncingList_ = false;
};
