// Builds a brisk::MatrixSpec over a base engine configuration (the window's
// engine settings): the kind (grid, request-rate sweep, concurrency sweep),
// the axes as rows (an EngineConfig or decoding field and comma-separated
// values), the sweep's rates or concurrencies, repeats, warm-up requests and
// the goodput SLO. Shows how many runs the matrix expands to, or why it
// does not expand, as it is edited.
#pragma once
#include <QString>
#include <QStringList>
#include <QWidget>
#include <functional>

#include "brisk/bench_matrix.h"

class QComboBox;
class QDoubleSpinBox;
class QFormLayout;
class QLabel;
class QLineEdit;
class QPushButton;
class QSpinBox;
class QVBoxLayout;

class MatrixBuilder : public QWidget {
  Q_OBJECT

 public:
  explicit MatrixBuilder(QWidget* parent = nullptr);

  // The fields an axis can vary, as MatrixAxis names them.
  static QStringList axisFields();

  // Where the base configuration comes from (read at each spec()).
  void setBaseConfigSource(std::function<brisk::EngineConfig()> source);
  // The workload the run count is computed for.
  void setWorkload(const brisk::WorkloadSpec& workload);

  // Throws brisk::Error naming the field when a value does not parse or the
  // matrix fails the checks a matrix file gets (brisk::validate_matrix).
  brisk::MatrixSpec spec() const;
  void setSpec(const brisk::MatrixSpec& spec);
  // The runs spec() expands to over the workload; -1 (and expansionError())
  // when it does not.
  int runCount() const { return runCount_; }
  QString expansionError() const { return expansionError_; }
  QString summaryText() const;

  int axisCount() const;
  // Adds a row; returns its index.
  int addAxis(const QString& field = {}, const QString& values = {});
  void removeAxis(int index);
  void clearAxes();
  QComboBox* axisFieldCombo(int index) const;
  QLineEdit* axisValuesEdit(int index) const;

  QComboBox* kindCombo() const { return kind_; }
  QSpinBox* repeatsSpin() const { return repeats_; }
  QSpinBox* warmupSpin() const { return warmup_; }
  QLineEdit* nameEdit() const { return name_; }

 public Q_SLOTS:
  // Recomputes the expansion (the base configuration may have changed).
  void refresh();

 Q_SIGNALS:
  void changed();

 private:
  struct AxisRow {
    QWidget* row;
    QComboBox* field;
    QLineEdit* values;
  };
  void updateVisibility();

  std::function<brisk::EngineConfig()> baseSource_;
  brisk::WorkloadSpec workload_;
  QFormLayout* form_;
  QLineEdit* name_;
  QComboBox* kind_;
  QVBoxLayout* axesLayout_;
  QList<AxisRow> axes_;
  QPushButton* addAxis_;
  QLineEdit* rates_;
  QLineEdit* concurrencies_;
  QSpinBox* repeats_;
  QSpinBox* warmup_;
  QDoubleSpinBox* sloTtft_;
  QDoubleSpinBox* sloTpot_;
  QDoubleSpinBox* sloE2e_;
  QLineEdit* qualityText_;
  QLineEdit* qualityPrompts_;
  QLabel* summary_;
  int runCount_ = -1;
  QString expansionError_;
  int configurations_ = 0;
};
