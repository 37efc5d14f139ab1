// A/B view: one prompt, two configurations side by side (sampling settings
// and which engine: the main one or a second engine configuration), both
// streaming at once, their numbers under each, and the first token where
// they differ highlighted in both panes. Drives an ABSession.
#pragma once
#include <QWidget>

#include "ab_session.h"
#include "brisk/engine_config.h"
#include "brisk/model_info.h"
#include "metatypes.h"  // before moc sees the brisk types in signals

class QCheckBox;
class QComboBox;
class QLabel;
class QPlainTextEdit;
class QPushButton;
class QSpinBox;
class SamplingForm;
class TokenView;

class ABView : public QWidget {
  Q_OBJECT

 public:
  explicit ABView(ABSession* session, QWidget* parent = nullptr);

  ABSession* session() const { return session_; }
  QString prompt() const;
  void setPrompt(const QString& prompt);
  // Ready-made comparisons for the A/B pair (the "Presets…" menu).
  enum Preset { NoPreset, RepetitionPenalty, PenaltyVsNoRepeat, GreedyVsSampling };
  void applyPreset(Preset preset);
  ABSession::SideConfig sideConfig(ABSession::Side side) const;
  void setSideConfig(ABSession::Side side, const ABSession::SideConfig& config);
  // The second engine's configuration: the main engine's, with the
  // overrides chosen here (model, backend, scheduling policy, chunked prefill, max sequences).
  brisk::EngineConfig secondEngineConfig() const;
  void setSecondEngineOverrides(brisk::SchedulerPolicy policy, bool chunkedPrefill, int maxSeqs);
  // "auto", "cpu" or "cuda"; false (nothing changed) for one this machine cannot run.
  bool setSecondEngineBackend(const QString& backend);
  void setSecondEngineModel(const QString& path, const QString& tokenizer = {});  // empty: the main model

  QPushButton* runButton() const { return run_; }
  QPushButton* stopButton() const { return stop_; }
  QPushButton* loadSecondButton() const { return loadSecond_; }
  TokenView* output(ABSession::Side side) const { return sides_[side].output; }
  QString statsText(ABSession::Side side) const;
  SamplingForm* samplingForm(ABSession::Side side) const { return sides_[side].sampling; }
  QString samplingSummary(ABSession::Side side) const;
  QString divergenceText() const;
  QString messageText() const;
  QString secondEngineStatus() const;

 public Q_SLOTS:
  // Same as pressing Run A/B.
  void requestRun();
  void loadSecondEngine();

 private:
  struct SidePane {
    QComboBox* engine = nullptr;
    QLabel* summary = nullptr;
    QPushButton* edit = nullptr;
    QWidget* popup = nullptr;  // holds the sampling form
    SamplingForm* sampling = nullptr;
    TokenView* output = nullptr;
    QLabel* stats = nullptr;
  };

  QWidget* makeSide(ABSession::Side side);
  void updateButtons();
  void updateSummary(int side);
  // Gives side's form the vocabulary size of the engine that answers for it (0: none loaded).
  void updateVocabulary(int side);
  void updateSecondStatus();
  void onStarted();
  void onFinishedSide(int side, const GenerationStats& stats);
  void onDivergence(int index);
  void onFinished();

  ABSession* session_;
  QPlainTextEdit* prompt_;
  QComboBox* preset_;
  QPushButton* run_;
  QPushButton* stop_;
  QLabel* message_;
  bool sameEngine_ = true;  // the last run's sides shared one engine
  QComboBox* secondModel_;
  QComboBox* secondBackend_;
  QComboBox* secondPolicy_;
  QCheckBox* secondChunked_;
  QSpinBox* secondSeqs_;
  QPushButton* loadSecond_;
  QLabel* secondStatus_;
  QString secondError_;
  SidePane sides_[2];
  QLabel* divergence_;
};
