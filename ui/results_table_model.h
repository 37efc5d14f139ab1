// The Compare view's results table: a row per run, columns "Run" (label),
// "Repeat" and then brisk::summary_fields(), so a cell reads exactly as the
// CLI table, the CSV and the reports print the same stored result
// (format_field). Against a baseline row, other rows show the change in %
// after the value: "12.3 (+4.1%)", "12.3 (±0.0%)" when the change is too small
// to show. The best value of each column (by higher_is_better) is bold on a
// tint. Values are compared as the column shows them (format_field's
// decimals): runs that read the same are tied, and every run tied for the
// best is marked, unless no run reads worse (all equal: nothing stands out).
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
  std::vector<std::vector<bool>> best_;      // [field][row]: among the best of its column
  int baseline_ = -1;
};
