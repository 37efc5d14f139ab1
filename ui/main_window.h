// The workbench window. Centre: tabs (Playground, A/B compare, Benchmark
// and Compare, which also exports reports; the last two share the results
// store). Docks: the model
// panel and the engine settings on the left, live telemetry on the right.
// Menus File/View/Engine/Help, a status bar (model, backend, precision, KV
// use) and QSettings persistence of the window, the playground, A/B and the
// engine settings.
#pragma once
#include <QElapsedTimer>
#include <QMainWindow>

#include "brisk/engine_config.h"
#include "brisk/metrics.h"
#include "brisk/model_info.h"
#include "brisk/sampling_params.h"
#include "generation_stats.h"
#include "metatypes.h"  // before moc sees the brisk types in signals

class ABSession;
class ABView;
class BenchmarkView;
class CompareView;
class EngineController;
class EngineSettingsPanel;
class ModelPanel;
class PlaygroundView;
class QAction;
class QDockWidget;
class QLabel;
class QMenu;
class QProgressBar;
class QPushButton;
class QTabWidget;
class ResultsStore;
class TelemetryDock;

class MainWindow : public QMainWindow {
  Q_OBJECT

 public:
  static constexpr int kMaxRecentModels = 8;
  // Below this width resetLayout() puts Telemetry in the left column's tabs.
  static constexpr int kNarrowWidth = 1200;
  // Reports: the Compare view, where reports are exported.
  enum class View { Playground, AB, Benchmark, Compare, Reports = Compare };

  // persistState: restore and save the window, playground, A/B and engine
  // settings and recent models with QSettings ("Brisk", "Brisk"); off for
  // scripted runs and tests.
  explicit MainWindow(bool persistState = true, QWidget* parent = nullptr);
  ~MainWindow() override;

  EngineController* controller() const { return controller_; }
  ModelPanel* modelPanel() const { return modelPanel_; }
  PlaygroundView* playground() const { return playground_; }
  ABView* abView() const { return abView_; }
  ABSession* abSession() const { return abSession_; }
  BenchmarkView* benchmarkView() const { return benchmark_; }
  CompareView* compareView() const { return compare_; }
  ResultsStore* resultsStore() const { return resultsStore_; }
  EngineSettingsPanel* engineSettings() const { return settingsPanel_; }
  TelemetryDock* telemetryDock() const { return telemetry_; }
  QDockWidget* modelDock() const { return modelDock_; }
  QDockWidget* settingsDock() const { return settingsDock_; }
  QTabWidget* tabs() const { return tabs_; }
  View currentView() const;
  quint64 currentRequest() const { return currentRequest_; }
  QStringList recentModels() const;  // model paths, most recent first
  QString kvUsageText() const;
  QString precisionText() const;
  // The engine settings a newly opened model gets: the Engine settings as
  // edited, applied or not.
  brisk::EngineConfig configFor(const QString& model, const QString& tokenizer = {}) const;
  QAction* action(const QString& objectName) const;

 public Q_SLOTS:
  // Loads exactly this configuration.
  void loadModel(const brisk::EngineConfig& config);
  // Loads a model path ("demo" included) with the engine settings as edited;
  // asks first when requests are running (they are stopped).
  void openModel(const QString& model, const QString& tokenizer = {});
  void loadDemoModel();
  void openModelFile();
  void openModelFolder();
  void reloadModel();
  void setCurrentView(MainWindow::View view);
  void showEngineSettings();
  // Docks where they start: model and settings left, telemetry right, sized
  // for the window's current width.
  void resetLayout();
  void showAbout();
  void showSystemInfo();  // Help ▸ System information
  void showShortcuts();

 protected:
  void closeEvent(QCloseEvent* event) override;
  void showEvent(QShowEvent* event) override;

 private:
  struct Recent {
    QString model, tokenizer;
  };

  static bool isWorkbench(View view);
  void showTelemetryFor(View view);
  void resetTelemetryPairs();
  void createViews();
  void createMenus();
  void createStatusBar();
  void readSettings();
  void writeSettings();
  QList<Recent> readRecent() const;
  void addRecent(const brisk::EngineConfig& config);
  void rebuildRecentMenu();
  void setLoading(bool loading, const QString& model = {});
  void showLoadError(const QString& error);
  void confirmReload(const brisk::EngineConfig& config);
  void runCurrent();
  void stopCurrent();

  void onModelLoaded(const brisk::ModelInfo& info);
  void onGenerateRequested(const QString& prompt, const brisk::SamplingParams& params);
  void onTokenReceived(quint64 id, const QString& text, double probability,
                       const TokenAlternatives& alternatives);
  void onRequestFinished(quint64 id, brisk::FinishReason reason, const GenerationStats& stats);
  void onMetricsUpdated(const brisk::MetricsSnapshot& snapshot);

  bool persist_;
  bool stateRestored_ = false;
  bool layoutDone_ = false;
  // The telemetry dock per pair of views: live (Playground, A/B) and
  // workbench (Benchmark, Compare; hidden there unless the user shows it).
  bool workbenchView_ = false;
  bool telemetryInLive_ = true;
  bool telemetryInWorkbench_ = false;
  bool settingsReload_ = false;  // the load in flight came from the settings panel
  QString startupNote_;          // said beside the first load's message (a saved backend missing here)
  EngineController* controller_;
  ABSession* abSession_;
  ResultsStore* resultsStore_;
  BenchmarkView* benchmark_ = nullptr;
  CompareView* compare_ = nullptr;
  QTabWidget* tabs_ = nullptr;
  PlaygroundView* playground_ = nullptr;
  ABView* abView_ = nullptr;
  ModelPanel* modelPanel_ = nullptr;
  EngineSettingsPanel* settingsPanel_ = nullptr;
  QDockWidget* modelDock_ = nullptr;
  QDockWidget* settingsDock_ = nullptr;
  TelemetryDock* telemetry_ = nullptr;
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
