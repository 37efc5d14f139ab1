// Engine settings: backend (with the CUDA knobs: graphs, GPU memory
// utilization), weight and KV-cache precision, KV block size and budget,
// batch limits, chunked prefill, scheduling policy, threads.
// Every one needs the model reloaded: the panel says what changed and asks
// for the reload (reloadRequested); MainWindow confirms and reloads. The
// engine's verdict comes back as setApplied (loaded) or showError (rejected).
#pragma once
#include <QStringList>
#include <QWidget>

#include "brisk/engine_config.h"
#include "brisk/model_info.h"
#include "metatypes.h"  // before moc sees the brisk types in signals

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QFormLayout;
class QLabel;
class QPushButton;
class QSpinBox;

class EngineSettingsPanel : public QWidget {
  Q_OBJECT

 public:
  explicit EngineSettingsPanel(QWidget* parent = nullptr);

  // The configuration the widgets describe: the applied one (model,
  // tokenizer, seed kept) with the edited knobs.
  brisk::EngineConfig config() const;
  const brisk::EngineConfig& applied() const { return applied_; }
  bool isDirty() const;
  // What differs from the applied configuration, one line per setting.
  QStringList changes() const;
  static QStringList describeChanges(const brisk::EngineConfig& from, const brisk::EngineConfig& to);
  QString errorText() const;
  QPushButton* reloadButton() const { return reload_; }
  QPushButton* revertButton() const { return revert_; }

 public Q_SLOTS:
  // The configuration the engine runs (after a load), its cache size and model.
  void setApplied(const brisk::EngineConfig& config, int64_t kvBlocks, const brisk::ModelInfo& info);
  // Before any model: the configuration the next load will use.
  void setConfig(const brisk::EngineConfig& config);
  // The engine rejected the configuration (EngineConfig::validate() or the
  // KV budget check); the edited values stay for fixing.
  void showError(const QString& error);
  void revert();
  // Same as the Reload button: emits reloadRequested when something changed.
  void requestReload();

 Q_SIGNALS:
  void reloadRequested(const brisk::EngineConfig& config);
  // config() may have changed (an edit, a load, a revert).
  void edited();

 private:
  void showConfig(const brisk::EngineConfig& c);
  void onEdited();
  void updateBudgetWidgets();
  // The backend the selection resolves to ("auto" is CUDA when a device is available).
  QString selectedBackend() const;

  brisk::EngineConfig applied_;
  bool loading_ = false;
  QComboBox* backend_;
  QCheckBox* cudaGraphs_;
  QCheckBox* fusedDecode_;
  QCheckBox* dependentLaunch_;
  QCheckBox* fusedRope_;
  QCheckBox* splitMerge_;
  QCheckBox* l2Prefetch_;
  QCheckBox* persistentDecode_;
  QCheckBox* fp8FastAccum_;
  QDoubleSpinBox* gpuMemory_;
  QFormLayout* form_ = nullptr;
  QComboBox* weights_;
  QComboBox* kvPrecision_;
  QComboBox* blockSize_;
  QComboBox* budgetMode_;
  QSpinBox* budget_;
  QSpinBox* maxSeqs_;
  QSpinBox* maxTokens_;
  QCheckBox* chunked_;
  QCheckBox* prefixCache_;
  QComboBox* policy_;
  QSpinBox* threads_;
  QSpinBox* maxLen_;
  QLabel* current_;
  QLabel* note_;
  QLabel* error_;
  QPushButton* reload_;
  QPushButton* revert_;
};
