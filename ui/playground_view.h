// Right panel: a prompt, the sampling knobs, Generate/Stop, and the
// completion streaming in. It only emits requests and shows what it is told.
#pragma once
#include <QString>
#include <QWidget>

#include "brisk/sampling_params.h"
#include "generation_stats.h"

class QCheckBox;
class QDoubleSpinBox;
class QLabel;
class QPlainTextEdit;
class QPushButton;
class QSpinBox;

class PlaygroundView : public QWidget {
  Q_OBJECT

 public:
  explicit PlaygroundView(QWidget* parent = nullptr);

  QString prompt() const;
  void setPrompt(const QString& prompt);
  // The knobs as SamplingParams (seed -1 in the box = unset).
  brisk::SamplingParams params() const;
  void setParams(const brisk::SamplingParams& params);
  QString outputText() const;
  QString statusText() const;
  bool isGenerating() const { return generating_; }

  QPushButton* generateButton() const { return generate_; }
  QPushButton* stopButton() const { return stop_; }
  QPlainTextEdit* outputEdit() const { return output_; }

 public Q_SLOTS:
  void setModelReady(bool ready);
  void setGenerating(bool generating);
  void clearOutput();
  void appendText(const QString& text);
  void showFinished(const GenerationStats& stats);
  void showMessage(const QString& text);
  // Same as pressing Generate: emits generateRequested when allowed.
  void requestGenerate();

 Q_SIGNALS:
  void generateRequested(const QString& prompt, const brisk::SamplingParams& params);
  void stopRequested();

 private:
  void updateButtons();

  QPlainTextEdit* prompt_;
  QSpinBox* maxTokens_;
  QDoubleSpinBox* temperature_;
  QSpinBox* topK_;
  QDoubleSpinBox* topP_;
  QSpinBox* seed_;
  QCheckBox* ignoreEos_;
  QPushButton* generate_;
  QPushButton* stop_;
  QPlainTextEdit* output_;
  QLabel* status_;
  bool ready_ = false;
  bool generating_ = false;
};
