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
  // Stop token ids: integers separated by commas or spaces. Returns the
  // valid ones; an entry that is no integer, is negative or (vocabSize > 0)
  // is not below vocabSize is left out and named in *error.
  static std::vector<int32_t> parseTokenIds(const QString& text, int vocabSize = 0, QString* error = nullptr);

  // The loaded model's vocabulary size: stop token ids must be below it (0: unknown).
  void setVocabularySize(int size);
  // What is wrong with the knobs now, naming the value ("Stop token ids: 'abc' is
  // not a token id (token ids of this model are 0 to 511)"); empty when params() is what the user typed.
  QString errorText() const { return error_; }

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
  void validate();  // marks the stop token ids field, sets error_

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
  QString stopIdsTip_;
  QString error_;
  int vocabSize_ = 0;
};
