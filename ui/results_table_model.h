// The Compare view's results table: a row per run, columns "Run" (label),
// "Repeat" and then brisk::summary_fields(), so a cell reads exactly as the
// CLI table, the CSV and the reports print the same stored result
// (format_field). Against a baseline row, other rows show the change in %
// after the value: "12.3 (+4.1%)". The best value of each column (by
// higher_is_better, among two or more distinct values) is bold on a tint.
#pragma once
#include <QAbstractTableModel>
#include <vector>

#include "brisk/bench_matrix.h"

class ResultsTableModel : public QAbstractTableModel {
  Q_OBJECT

 public:
  enum Role {
    SortRole = Qt::UserRole + 1,  // the raw value (double; NaN sorts first); text for the label
    ValueTextRole,                // format_field's text alone, without the delta
    DeltaRole,                    // change vs the baseline in % (double), invalid when none
    BestRole,                     // bool: the best value of its column
  };
  static constexpr int kLabelColumn = 0, kRepeatColumn = 1, kFirstFieldColumn = 2;

  explicit ResultsTableModel(QObject* parent = nullptr);

  void setRuns(std::vector<brisk::BenchResult> runs);
  const std::vector<brisk::BenchResult>& runs() const { return runs_; }
  // -1: no baseline (no deltas).
  void setBaseline(int row);
  int baseline() const { return baseline_; }
  // The column of a summary field by key ("generation_tokens_per_s"), -1 if none.
  static int columnOf(const std::string& key);
  // The summary field of a column, nullptr for the label and repeat columns.
  static const brisk::SummaryField* fieldAt(int column);
  double value(int row, int column) const;  // NaN when not applicable
  double delta(int row, int column) const;  // % vs the baseline, NaN when none

  int rowCount(const QModelIndex& parent = {}) const override;
  int columnCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

 private:
  void computeBest();

  std::vector<brisk::BenchResult> runs_;
  std::vector<std::vector<double>> values_;  // [row][field]
  std::vector<int> best_;                    // per field: the best row, -1 when none
  int baseline_ = -1;
};
