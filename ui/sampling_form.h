// Every sampling knob the engine supports (brisk::SamplingParams), with
// defaults and tooltips. Used by the playground and by each side of A/B.
#pragma once
#include <QGroupBox>
#include <QString>
#include <string>
#include <vector>

#include "brisk/sampling_params.h"

class QCheckBox;
class QDoubleSpinBox;
class QGridLayout;
class QLineEdit;
class QSpinBox;

class SamplingForm : public QGroupBox {
  Q_OBJECT

 public:
  // columns: knobs per row (label above field); 0: as many as the width allows.
  explicit SamplingForm(const QString& title, int columns, QWidget* parent = nullptr);

  // The defaults shown in a fresh form (temperature 0.8, top-k 40, top-p
  // 0.95, 128 tokens; min-p and repetition penalty off; seed auto).
  static brisk::SamplingParams defaults();

  brisk::SamplingParams params() const;
  void setParams(const brisk::SamplingParams& params);
  // Puts the knobs in `columns` per row (0: follow the width).
  void setColumns(int columns);
  int columnsShown() const { return shown_; }

  // Stop strings are typed as one line: comma-separated, with \n \t \s (space)
  // \, and \\ escapes; whitespace around each is trimmed.
  static std::vector<std::string> parseStopStrings(const QString& text);
  static QString formatStopStrings(const std::vector<std::string>& stops);
  // Stop token ids: integers separated by commas or spaces; others are ignored.
  static std::vector<int32_t> parseTokenIds(const QString& text);

 Q_SIGNALS:
  void changed();

 private:
  struct Knob {
    QWidget* label;
    QWidget* field;
    int span;
  };
  void relayout();
  int columnsFor(int width) const;
  void resizeEvent(QResizeEvent* event) override;

  QGridLayout* grid_;
  int columns_;     // asked for (0: auto)
  int shown_ = 0;   // in the grid now
  std::vector<Knob> knobs_;
  QSpinBox* maxTokens_;
  QDoubleSpinBox* temperature_;
  QSpinBox* topK_;
  QDoubleSpinBox* topP_;
  QDoubleSpinBox* minP_;
  QDoubleSpinBox* repetition_;
  QSpinBox* noRepeat_;
  QSpinBox* seed_;
  QLineEdit* stop_;
  QLineEdit* stopIds_;
  QCheckBox* ignoreEos_;
};
