// The workbench window: menus, the model panel, the playground and a status
// bar with the model, backend, weight precision and live KV-cache use.
#pragma once
#include <QElapsedTimer>
#include <QMainWindow>

#include "brisk/engine_config.h"
#include "brisk/metrics.h"
#include "brisk/model_info.h"
#include "brisk/sampling_params.h"
#include "generation_stats.h"

class EngineController;
class ModelPanel;
class PlaygroundView;
class QLabel;
class QMenu;
class QProgressBar;
class QPushButton;
class QSettings;
class QSplitter;

class MainWindow : public QMainWindow {
  Q_OBJECT

 public:
  static constexpr int kMaxRecentModels = 8;

  // persistState: restore and save geometry, playground settings and recent
  // models with QSettings ("Brisk", "Brisk"); off for scripted runs.
  explicit MainWindow(bool persistState = true, QWidget* parent = nullptr);
  ~MainWindow() override;

  EngineController* controller() const { return controller_; }
  ModelPanel* modelPanel() const { return modelPanel_; }
  PlaygroundView* playground() const { return playground_; }
  quint64 currentRequest() const { return currentRequest_; }
  QStringList recentModels() const;  // model paths, most recent first
  QString kvUsageText() const;

 public Q_SLOTS:
  void loadModel(const brisk::EngineConfig& config);
  void loadDemoModel();
  void openModelFile();
  void openModelFolder();
  void showAbout();

 protected:
  void closeEvent(QCloseEvent* event) override;

 private:
  struct Recent {
    QString model, tokenizer;
  };

  void createMenus();
  void createStatusBar();
  void readSettings();
  void writeSettings();
  QList<Recent> readRecent() const;
  void addRecent(const brisk::EngineConfig& config);
  void rebuildRecentMenu();
  void setLoading(bool loading, const QString& model = {});
  void showLoadError(const QString& error);

  void onModelLoaded(const brisk::ModelInfo& info);
  void onGenerateRequested(const QString& prompt, const brisk::SamplingParams& params);
  void onTokenReceived(quint64 id, const QString& text);
  void onRequestFinished(quint64 id, brisk::FinishReason reason, const GenerationStats& stats);
  void onMetricsUpdated(const brisk::MetricsSnapshot& snapshot);

  bool persist_;
  EngineController* controller_;
  QSplitter* splitter_;
  ModelPanel* modelPanel_;
  PlaygroundView* playground_;
  QMenu* recentMenu_ = nullptr;
  QLabel* loadingLabel_ = nullptr;
  QProgressBar* loadingBar_ = nullptr;
  QPushButton* cancelLoad_ = nullptr;
  QLabel* modelLabel_ = nullptr;
  QLabel* backendLabel_ = nullptr;
  QLabel* precisionLabel_ = nullptr;
  QLabel* kvLabel_ = nullptr;
  quint64 currentRequest_ = 0;
  QElapsedTimer loadTimer_;
};
