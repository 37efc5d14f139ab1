// Builds a brisk::MatrixSpec over a base engine configuration (the window's
// engine settings): the kind (grid, request-rate sweep, concurrency sweep),
// the axes as rows (an EngineConfig or decoding field and comma-separated
// values), the sweep's rates or concurrencies, repeats, warm-up requests and
// the goodput SLO. Shows how many runs the matrix expands to, or why it
// does not expand, as it is edited. Loads and saves matrix files (the
// format brisk-cli bench --matrix reads); a loaded file's base configuration
// replaces the engine settings until "Use engine settings".
#pragma once
#include <QString>
#include <QStringList>
#include <QWidget>
#include <functional>
#include <optional>

#include "brisk/bench_matrix.h"

class QComboBox;
class QDoubleSpinBox;
class QFormLayout;
class QLabel;
class QLineEdit;
class QPushButton;
class QSpinBox;
class QToolButton;
class QVBoxLayout;

class MatrixBuilder : public QWidget {
  Q_OBJECT

 public:
  explicit MatrixBuilder(QWidget* parent = nullptr);

  // The fields an axis can vary, as MatrixAxis names them: every field a
  // matrix file may vary (brisk::expand_matrix; the tests hold the two equal).
  static QStringList axisFields();
  // The values shown as a field's placeholder ("auto, cpu, cuda"); the first is always valid.
  static QString valuesHint(const QString& field);
  // The values a field takes from a closed set (dtypes, policy, backend,
  // true/false), offered in the row's menu; empty for numbers and paths.
  static QStringList valueChoices(const QString& field);

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
  // Whether the summary shows expansionError() as an error: not for a new
  // axis whose values the user has not typed yet (it shows what to type).
  bool showsError() const { return showsError_; }
  // What the summary line says: the run count, the error, or what to type.
  QString statusText() const;
  // The base configuration spec() uses: the loaded file's, or the engine settings'.
  brisk::EngineConfig baseConfig() const;
  // The matrix file the base comes from (empty: the engine settings).
  QString baseFile() const { return baseFile_; }
  QString errorString() const { return error_; }

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
  // Shows what is missing as an error (Run was asked for).
  void revealErrors();
  // Writes spec() as a matrix file / reads one (brisk::to_json, brisk::load_matrix);
  // false with errorString() (also shown under the form) on failure.
  bool saveTo(const QString& path);
  bool loadFrom(const QString& path);
  // Drops a loaded file's base: the engine settings are the base again.
  void useEngineSettings();
  void saveAs();    // asks for a file
  void openFile();  // asks for a file

 Q_SIGNALS:
  void changed();

 private:
  struct AxisRow {
    QWidget* row;
    QComboBox* field;
    QLineEdit* values;
    QToolButton* choices;
    bool touched = false;  // the user edited the values
  };
  void updateVisibility();
  void updateChoices(AxisRow& row);
  void showFileError(const QString& error);

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
  QLabel* base_;
  QPushButton* useEngine_;
  QLabel* fileError_;
  std::optional<brisk::EngineConfig> fileBase_;
  bool fileBaseNamesModel_ = false;
  QString baseFile_;
  QString error_;
  bool showsError_ = false;
  int runCount_ = -1;
  QString expansionError_;
  int configurations_ = 0;
};
