// Left panel: what the loaded model is (ModelInfo), or how to load one.
#pragma once
#include <QWidget>

#include "brisk/engine_config.h"
#include "brisk/model_info.h"

class QFormLayout;
class QGroupBox;
class QLabel;

class ModelPanel : public QWidget {
  Q_OBJECT

 public:
  explicit ModelPanel(QWidget* parent = nullptr);

  // Child labels have object names ("modelName", "modelPath", "syntheticNote", ...)
  // so tests and style sheets can find them.
  QString modelName() const;
  bool syntheticNoteShown() const;

 public Q_SLOTS:
  void showModel(const brisk::ModelInfo& info);
  // How the engine runs it: backend, KV cache, scheduler.
  void showEngine(const brisk::EngineConfig& config, int64_t kvBlocks);
  void clear();

 private:
  QLabel* addRow(QGroupBox* box, QFormLayout* form, const QString& label, const QString& objectName,
                 const QString& toolTip);

  QLabel* placeholder_;
  QGroupBox* box_;
  QFormLayout* form_;
  QLabel* synthetic_;
  QLabel *name_, *path_, *format_, *architecture_, *dims_, *attention_, *vocab_, *params_,
      *bytes_, *precision_, *context_, *tokenizer_;
  QGroupBox* engineBox_;
  QFormLayout* engineForm_;
  QLabel *backend_, *kvCache_, *scheduler_, *batch_;
};
