#include "results_table_model.h"

#include <QBrush>
#include <QColor>
#include <QFont>
#include <cmath>
#include <cstdlib>
#include <limits>

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

QString signedPercent(double d) {
  const QString shown = QString::number(std::abs(d), 'f', 1);
  // No sign on a change that rounds away: "+0.0%" would read as better, "-0.0%" as worse.
  if (shown == QLatin1String("0.0")) return QStringLiteral("±0.0%");
  return QStringLiteral("%1%2%").arg(d > 0 ? QStringLiteral("+") : QStringLiteral("-"), shown);
}
}  // namespace

ResultsTableModel::ResultsTableModel(QObject* parent) : QAbstractTableModel(parent) {}

void ResultsTableModel::setRuns(std::vector<brisk::BenchResult> runs) {
  beginResetModel();
  runs_ = std::move(runs);
  const auto& fields = brisk::summary_fields();
  values_.assign(runs_.size(), std::vector<double>(fields.size(), kNaN));
  for (size_t r = 0; r < runs_.size(); ++r)
    for (size_t f = 0; f < fields.size(); ++f)
      if (runs_[r].error.empty() && fields[f].value) values_[r][f] = fields[f].value(runs_[r]);
  if (baseline_ >= int(runs_.size())) baseline_ = runs_.empty() ? -1 : 0;
  computeBest();
  endResetModel();
}

void ResultsTableModel::setBaseline(int row) {
  if (row < -1 || row >= int(runs_.size())) row = -1;
  if (row == baseline_) return;
  baseline_ = row;
  if (!runs_.empty()) Q_EMIT dataChanged(index(0, 0), index(rowCount() - 1, columnCount() - 1));
}

void ResultsTableModel::computeBest() {
  const auto& fields = brisk::summary_fields();
  best_.assign(fields.size(), std::vector<bool>(runs_.size(), false));
  for (size_t f = 0; f < fields.size(); ++f) {
    if (!fields[f].ranked) continue;
    // Each value as the cell shows it: 283.12 and 283.14 both read 283.1, a tie.
    std::vector<double> shown(runs_.size(), kNaN);
    for (size_t r = 0; r < runs_.size(); ++r)
      if (std::isfinite(values_[r][f]))
        shown[r] = std::strtod(brisk::format_field(fields[f], values_[r][f]).c_str(), nullptr);
    double best = kNaN;
    for (double v : shown)
      if (std::isfinite(v) && (!std::isfinite(best) || (fields[f].higher_is_better ? v > best : v < best)))
        best = v;
    // Every run tied for the best is marked (each is as good as the table can
    // tell), but only when some run reads worse: one run, or all equal,
    // and nothing stands out.
    bool worse = false;
    for (double v : shown) worse = worse || (std::isfinite(v) && v != best);
    if (!worse) continue;
    for (size_t r = 0; r < runs_.size(); ++r) best_[f][r] = shown[r] == best;
  }
}

int ResultsTableModel::columnOf(const std::string& key) {
  const auto& fields = brisk::summary_fields();
  for (size_t f = 0; f < fields.size(); ++f)
    if (fields[f].key == key) return kFirstFieldColumn + int(f);
  return -1;
}

const brisk::SummaryField* ResultsTableModel::fieldAt(int column) {
  const auto& fields = brisk::summary_fields();
  const int f = column - kFirstFieldColumn;
  return f >= 0 && f < int(fields.size()) ? &fields[f] : nullptr;
}

double ResultsTableModel::value(int row, int column) const {
  const int f = column - kFirstFieldColumn;
  if (row < 0 || row >= int(runs_.size())) return kNaN;
  if (column == kRepeatColumn) return runs_[row].repeat;
  if (f < 0 || f >= int(values_[row].size())) return kNaN;
  return values_[row][f];
}

double ResultsTableModel::delta(int row, int column) const {
  if (baseline_ < 0 || row == baseline_ || !fieldAt(column)) return kNaN;
  const double v = value(row, column), b = value(baseline_, column);
  if (!std::isfinite(v) || !std::isfinite(b) || b == 0) return kNaN;
  return (v - b) / std::abs(b) * 100.0;
}

int ResultsTableModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : int(runs_.size());
}

int ResultsTableModel::columnCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : kFirstFieldColumn + int(brisk::summary_fields().size());
}

QVariant ResultsTableModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || index.row() >= int(runs_.size())) return {};
  const int row = index.row(), col = index.column();
  const brisk::BenchResult& run = runs_[row];
  const QString label = QString::fromStdString(run.label);

  if (col == kLabelColumn) {
    switch (role) {
      case Qt::DisplayRole:
        return row == baseline_ ? tr("%1 (baseline)").arg(label) : label;
      case ValueTextRole:
      case SortRole:
        return label;
      case Qt::ToolTipRole: {
        QString tip = label;
        if (!run.matrix_name.empty()) tip += tr("\nmatrix: %1").arg(QString::fromStdString(run.matrix_name));
        if (!run.created.empty()) tip += tr("\nfinished: %1").arg(QString::fromStdString(run.created));
        if (!run.error.empty()) tip += tr("\nfailed: %1").arg(QString::fromStdString(run.error));
        return tip;
      }
      case Qt::ForegroundRole:
        return run.error.empty() ? QVariant() : QVariant(QBrush(QColor(0xc0, 0x39, 0x2b)));
      case Qt::FontRole:
        if (row == baseline_) {
          QFont f;
          f.setItalic(true);
          return f;
        }
        return {};
      default:
        return {};
    }
  }
  if (col == kRepeatColumn) {
    switch (role) {
      case Qt::DisplayRole:
      case ValueTextRole:
        return QString::number(run.repeat + 1);  // counted from 1, as the run labels ("… r1") are
      case SortRole:
        return run.repeat;
      case Qt::TextAlignmentRole:
        return int(Qt::AlignRight | Qt::AlignVCenter);
      default:
        return {};
    }
  }
  const brisk::SummaryField* field = fieldAt(col);
  if (!field) return {};
  const int f = col - kFirstFieldColumn;
  const double v = values_[row][f];
  const double d = delta(row, col);
  const bool best = best_[f][row];
  const QString text = QString::fromStdString(brisk::format_field(*field, v));
  switch (role) {
    case Qt::DisplayRole:
      return std::isfinite(d) ? QStringLiteral("%1 (%2)").arg(text, signedPercent(d)) : text;
    case ValueTextRole:
      return text;
    case SortRole:
      return std::isfinite(v) ? v : -std::numeric_limits<double>::infinity();
    case DeltaRole:
      return std::isfinite(d) ? QVariant(d) : QVariant();
    case BestRole:
      return best;
    case Qt::TextAlignmentRole:
      return int(Qt::AlignRight | Qt::AlignVCenter);
    case Qt::FontRole:
      if (best) {
        QFont font;
        font.setBold(true);
        return font;
      }
      return {};
    case Qt::BackgroundRole:
      return best ? QVariant(QBrush(QColor(0xd8, 0xf0, 0xd2))) : QVariant();
    case Qt::ToolTipRole: {
      QString tip = QStringLiteral("%1: %2").arg(QString::fromStdString(field->label), text);
      if (!field->unit.empty() && !text.endsWith(QString::fromStdString(field->unit)) && std::isfinite(v))
        tip += QLatin1Char(' ') + QString::fromStdString(field->unit);
      if (std::isfinite(d))
        tip += tr("\n%1 vs the baseline %2 (%3)")
                   .arg(signedPercent(d), QString::fromStdString(runs_[baseline_].label),
                        QString::fromStdString(brisk::format_field(*field, values_[baseline_][f])));
      if (best)
        tip += field->higher_is_better ? tr("\nBest of these runs (higher is better)")
                                       : tr("\nBest of these runs (lower is better)");
      return tip;
    }
    default:
      return {};
  }
}

QVariant ResultsTableModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (orientation != Qt::Horizontal) {
    if (role == Qt::DisplayRole) return section + 1;
    return {};
  }
  if (section == kLabelColumn) return role == Qt::DisplayRole ? QVariant(tr("Run")) : QVariant();
  if (section == kRepeatColumn) return role == Qt::DisplayRole ? QVariant(tr("Repeat")) : QVariant();
  const brisk::SummaryField* field = fieldAt(section);
  if (!field) return {};
  const QString label = QString::fromStdString(field->label);
  const QString unit = QString::fromStdString(field->unit);
  switch (role) {
    case Qt::DisplayRole:
      return label;  // as the CLI table and the reports head it
    case Qt::ToolTipRole:
      return tr("%1%2 — %3 is better")
          .arg(QString::fromStdString(field->key), unit.isEmpty() ? QString() : tr(", in %1").arg(unit),
               field->higher_is_better ? tr("higher") : tr("lower"));
    default:
      return {};
  }
}
