// Edits a brisk::WorkloadSpec: every field, the arrival process with the
// fields its kind needs (rate; mean rate and burstiness; ramp start/end;
// trace timestamps or file), the prompt and output length distributions,
// the per-request sampling and decoding, seed and concurrency cap. Starts
// from a built-in workload (the combo) and saves/loads the workload JSON.
#pragma once
#include <QString>
#include <QWidget>

#include "brisk/benchmark.h"

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QFormLayout;
class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QPushButton;
class QSpinBox;

class WorkloadEditor : public QWidget {
  Q_OBJECT

 public:
  explicit WorkloadEditor(QWidget* parent = nullptr);

  // The workload the form describes; throws brisk::Error naming the field
  // when a value does not parse (trace timestamps, a length file missing).
  brisk::WorkloadSpec workload() const;
  // Empty when workload() would succeed.
  QString validationError() const;
  void setWorkload(const brisk::WorkloadSpec& w);
  // Fills the form from a built-in workload; false for an unknown name.
  bool selectBuiltin(const QString& name);

  // Write/read the workload JSON; false, with errorString(), on failure.
  bool saveTo(const QString& path);
  bool loadFrom(const QString& path);
  QString errorString() const { return error_; }

  QComboBox* builtinCombo() const { return builtin_; }
  QSpinBox* requestsSpin() const { return requests_; }
  QComboBox* arrivalCombo() const { return arrival_; }
  QComboBox* promptKindCombo() const { return prompt_.kind; }
  QDoubleSpinBox* promptASpin() const { return prompt_.a; }
  QComboBox* outputKindCombo() const { return output_.kind; }
  QDoubleSpinBox* outputASpin() const { return output_.a; }
  // Whether a row of the form (by its field widget) is shown for the current choices.
  bool isFieldShown(QWidget* field) const;
  QDoubleSpinBox* rateSpin() const { return rate_; }
  QDoubleSpinBox* burstinessSpin() const { return burstiness_; }

 public Q_SLOTS:
  void saveAs();    // asks for a file (QFileDialog)
  void openFile();  // asks for a file (QFileDialog)

 Q_SIGNALS:
  void changed();

 private:
  struct DistFields {
    QComboBox* kind = nullptr;
    QDoubleSpinBox* a = nullptr;
    QDoubleSpinBox* b = nullptr;
    QLineEdit* path = nullptr;
    QWidget* row = nullptr;
  };
  QWidget* makeDist(DistFields& d, bool allowFile);
  void showDist(const DistFields& d, const brisk::LengthDist& dist);
  brisk::LengthDist readDist(const DistFields& d) const;
  void updateVisibility();
  void updateDist(DistFields& d);
  void onEdited();

  QFormLayout* form_ = nullptr;
  QComboBox* builtin_;
  QLineEdit* name_;
  QLineEdit* description_;
  QSpinBox* requests_;
  QComboBox* arrival_;
  QDoubleSpinBox* rate_;
  QDoubleSpinBox* burstiness_;
  QDoubleSpinBox* rampStart_;
  QDoubleSpinBox* rampEnd_;
  QLineEdit* traceTimes_;
  QLineEdit* tracePath_;
  QSpinBox* maxConcurrency_;
  DistFields prompt_, output_;
  QDoubleSpinBox* temperature_;
  QDoubleSpinBox* topP_;
  QSpinBox* topK_;
  QDoubleSpinBox* repetition_;
  QCheckBox* ignoreEos_;
  QSpinBox* n_;
  QSpinBox* bestOf_;
  QSpinBox* beam_;
  QLineEdit* seed_;
  QLabel* errorLabel_;
  QString error_;
  bool updating_ = false;
};
