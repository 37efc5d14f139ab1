#include "main_window.h"

#include <QAction>
#include <QActionGroup>
#include <QApplication>
#include <QCloseEvent>
#include <QDir>
#include <QDockWidget>
#include <QFileDialog>
#include <QFileInfo>
#include <QKeySequence>
#include <QLabel>
#include <QMenu>
#include <QMenuBar>
#include <QMessageBox>
#include <QProgressBar>
#include <QPushButton>
#include <QScrollArea>
#include <QSettings>
#include <QStatusBar>
#include <QTabWidget>
#include <QTimer>
#include <QVBoxLayout>
#include <algorithm>

#include "ab_session.h"
#include "ab_view.h"
#include "benchmark_view.h"
#include "brisk/sysinfo.h"
#include "compare_view.h"
#include "engine_controller.h"
#include "engine_settings_panel.h"
#include "format.h"
#include "matrix_builder.h"
#include "model_panel.h"
#include "playground_view.h"
#include "results_store.h"
#include "system_info_dialog.h"
#include "telemetry_dock.h"
#include "tokenizer_prompt.h"

namespace {
QSettings settings() { return QSettings(QStringLiteral("Brisk"), QStringLiteral("Brisk")); }

void writeParams(QSettings& s, const QString& group, const brisk::SamplingParams& p) {
  s.beginGroup(group);
  s.setValue(QStringLiteral("maxTokens"), p.max_tokens);
  s.setValue(QStringLiteral("temperature"), p.temperature);
  s.setValue(QStringLiteral("topK"), p.top_k);
  s.setValue(QStringLiteral("topP"), p.top_p);
  s.setValue(QStringLiteral("minP"), p.min_p);
  s.setValue(QStringLiteral("repetitionPenalty"), p.repetition_penalty);
  s.setValue(QStringLiteral("seed"), p.seed ? qlonglong(*p.seed) : qlonglong(-1));
  QStringList stops, ids;
  for (const auto& x : p.stop) stops << QString::fromStdString(x);
  for (int32_t id : p.stop_token_ids) ids << QString::number(id);
  s.setValue(QStringLiteral("stop"), stops);
  s.setValue(QStringLiteral("stopTokenIds"), ids);
  s.setValue(QStringLiteral("ignoreEos"), p.ignore_eos);
  s.endGroup();
}

brisk::SamplingParams readParams(QSettings& s, const QString& group, brisk::SamplingParams p) {
  s.beginGroup(group);
  p.max_tokens = s.value(QStringLiteral("maxTokens"), p.max_tokens).toInt();
  p.temperature = s.value(QStringLiteral("temperature"), p.temperature).toFloat();
  p.top_k = s.value(QStringLiteral("topK"), p.top_k).toInt();
  p.top_p = s.value(QStringLiteral("topP"), p.top_p).toFloat();
  p.min_p = s.value(QStringLiteral("minP"), p.min_p).toFloat();
  p.repetition_penalty = s.value(QStringLiteral("repetitionPenalty"), p.repetition_penalty).toFloat();
  const qlonglong seed = s.value(QStringLiteral("seed"), p.seed ? qlonglong(*p.seed) : -1).toLongLong();
  if (seed >= 0)
    p.seed = static_cast<uint64_t>(seed);
  else
    p.seed.reset();
  if (s.contains(QStringLiteral("stop"))) {
    p.stop.clear();
    for (const QString& x : s.value(QStringLiteral("stop")).toStringList())
      if (!x.isEmpty()) p.stop.push_back(x.toStdString());
  }
  if (s.contains(QStringLiteral("stopTokenIds"))) {
    p.stop_token_ids.clear();
    for (const QString& x : s.value(QStringLiteral("stopTokenIds")).toStringList())
      p.stop_token_ids.push_back(x.toInt());
  }
  p.ignore_eos = s.value(QStringLiteral("ignoreEos"), p.ignore_eos).toBool();
  s.endGroup();
  return p;
}

void writeEngine(QSettings& s, const brisk::EngineConfig& c) {
  s.beginGroup(QStringLiteral("engine"));
  s.setValue(QStringLiteral("backend"), QString::fromStdString(c.backend));
  s.setValue(QStringLiteral("blockSize"), c.block_size);
  s.setValue(QStringLiteral("numKvBlocks"), qlonglong(c.num_kv_blocks));
  s.setValue(QStringLiteral("kvCacheBytes"), qlonglong(c.kv_cache_bytes));
  s.setValue(QStringLiteral("policy"), QString::fromUtf8(brisk::policy_name(c.policy)));
  s.setValue(QStringLiteral("maxNumSeqs"), c.max_num_seqs);
  s.setValue(QStringLiteral("maxNumBatchedTokens"), c.max_num_batched_tokens);
  s.setValue(QStringLiteral("chunkedPrefill"), c.enable_chunked_prefill);
  s.setValue(QStringLiteral("maxModelLen"), c.max_model_len);
  s.setValue(QStringLiteral("threads"), c.threads);
  s.setValue(QStringLiteral("weightDtype"), QString::fromStdString(c.weight_dtype));
  s.setValue(QStringLiteral("int8Activations"), c.int8_activations);
  s.setValue(QStringLiteral("int8Fma"), c.int8_fma);
  s.setValue(QStringLiteral("fp8Fma"), c.fp8_fma);
  s.setValue(QStringLiteral("kvDtype"), QString::fromStdString(c.kv_dtype));
  s.setValue(QStringLiteral("prefixCaching"), c.enable_prefix_caching);
  s.setValue(QStringLiteral("cudaGraphs"), c.cuda_graphs);
  s.setValue(QStringLiteral("fusedDecode"), c.fused_decode);
  s.setValue(QStringLiteral("dependentLaunch"), c.dependent_launch);
  s.setValue(QStringLiteral("fusedRope"), c.fused_rope);
  s.setValue(QStringLiteral("splitMergeInKernel"), c.split_merge_in_kernel);
  s.setValue(QStringLiteral("l2Prefetch"), c.l2_prefetch);
  s.setValue(QStringLiteral("persistentDecode"), c.persistent_decode);
  s.setValue(QStringLiteral("fp8FastAccum"), c.fp8_fast_accum);
  s.setValue(QStringLiteral("gpuMemoryUtilization"), c.gpu_memory_utilization);
  s.endGroup();
}

brisk::EngineConfig readEngine(QSettings& s) {
  brisk::EngineConfig c;
  s.beginGroup(QStringLiteral("engine"));
  c.backend = s.value(QStringLiteral("backend"), QString::fromStdString(c.backend)).toString().toStdString();
  c.block_size = s.value(QStringLiteral("blockSize"), c.block_size).toInt();
  c.num_kv_blocks = s.value(QStringLiteral("numKvBlocks"), qlonglong(c.num_kv_blocks)).toLongLong();
  c.kv_cache_bytes = s.value(QStringLiteral("kvCacheBytes"), qlonglong(c.kv_cache_bytes)).toLongLong();
  c.policy = s.value(QStringLiteral("policy")).toString() == QLatin1String("static")
                 ? brisk::SchedulerPolicy::Static
                 : brisk::SchedulerPolicy::Continuous;
  c.max_num_seqs = s.value(QStringLiteral("maxNumSeqs"), c.max_num_seqs).toInt();
  c.max_num_batched_tokens = s.value(QStringLiteral("maxNumBatchedTokens"), c.max_num_batched_tokens).toInt();
  c.enable_chunked_prefill = s.value(QStringLiteral("chunkedPrefill"), c.enable_chunked_prefill).toBool();
  c.max_model_len = s.value(QStringLiteral("maxModelLen"), c.max_model_len).toInt();
  c.threads = s.value(QStringLiteral("threads"), c.threads).toInt();
  c.weight_dtype =
      s.value(QStringLiteral("weightDtype"), QString::fromStdString(c.weight_dtype)).toString().toStdString();
  c.int8_activations = s.value(QStringLiteral("int8Activations"), c.int8_activations).toBool();
  c.int8_fma = s.value(QStringLiteral("int8Fma"), c.int8_fma).toBool();
  c.fp8_fma = s.value(QStringLiteral("fp8Fma"), c.fp8_fma).toBool();
  c.kv_dtype =
      s.value(QStringLiteral("kvDtype"), QString::fromStdString(c.kv_dtype)).toString().toStdString();
  c.enable_prefix_caching = s.value(QStringLiteral("prefixCaching"), c.enable_prefix_caching).toBool();
  c.cuda_graphs = s.value(QStringLiteral("cudaGraphs"), c.cuda_graphs).toBool();
  c.fused_decode = s.value(QStringLiteral("fusedDecode"), c.fused_decode).toBool();
  c.dependent_launch = s.value(QStringLiteral("dependentLaunch"), c.dependent_launch).toBool();
  c.fused_rope = s.value(QStringLiteral("fusedRope"), c.fused_rope).toBool();
  c.split_merge_in_kernel = s.value(QStringLiteral("splitMergeInKernel"), c.split_merge_in_kernel).toBool();
  c.l2_prefetch = s.value(QStringLiteral("l2Prefetch"), c.l2_prefetch).toBool();
  c.persistent_decode = s.value(QStringLiteral("persistentDecode"), c.persistent_decode).toBool();
  c.fp8_fast_accum = s.value(QStringLiteral("fp8FastAccum"), c.fp8_fast_accum).toBool();
  c.gpu_memory_utilization =
      s.value(QStringLiteral("gpuMemoryUtilization"), c.gpu_memory_utilization).toDouble();
  s.endGroup();
  return c;
}
}  // namespace

MainWindow::MainWindow(bool persistState, QWidget* parent)
    : QMainWindow(parent),
      persist_(persistState),
      controller_(new EngineController(this)),
      abSession_(new ABSession(controller_, this)),
      resultsStore_(new ResultsStore({}, this)) {
  setWindowTitle(QStringLiteral("Brisk"));
  setObjectName(QStringLiteral("mainWindow"));
  setDockNestingEnabled(true);
  setCorner(Qt::BottomLeftCorner, Qt::LeftDockWidgetArea);
  setCorner(Qt::BottomRightCorner, Qt::RightDockWidgetArea);

  createViews();
  createMenus();
  createStatusBar();

  connect(controller_, &EngineController::loadStarted, this,
          [this](const QString& model) { setLoading(true, model); });
  connect(controller_, &EngineController::modelLoaded, this, &MainWindow::onModelLoaded);
  connect(controller_, &EngineController::loadFailed, this, &MainWindow::showLoadError);
  connect(controller_, &EngineController::loadCancelled, this, [this] {
    setLoading(false);
    settingsReload_ = false;
    statusBar()->showMessage(tr("Loading cancelled"), 5000);
  });
  connect(controller_, &EngineController::tokenAlternativesReceived, this, &MainWindow::onTokenReceived);
  connect(controller_, &EngineController::requestFinished, this, &MainWindow::onRequestFinished);
  connect(controller_, &EngineController::metricsUpdated, this, &MainWindow::onMetricsUpdated);
  connect(playground_, &PlaygroundView::generateRequested, this, &MainWindow::onGenerateRequested);
  connect(playground_, &PlaygroundView::stopRequested, this, [this] {
    if (currentRequest_) controller_->stop(currentRequest_);
  });
  connect(settingsPanel_, &EngineSettingsPanel::reloadRequested, this, &MainWindow::confirmReload);
  // The matrix runs over the engine settings as edited, reload or not.
  // The CUDA knobs stay saved (hidden) while the CPU runs the model; a matrix
  // on the CPU records them at their defaults, as the CLI does, or its
  // checks would refuse settings the user cannot see.
  benchmark_->setBaseConfigSource([this] {
    brisk::EngineConfig c = settingsPanel_->config();
    if (brisk::resolve_backend(c.backend) == "cpu") brisk::reset_cuda_only_fields(c);
    return c;
  });
  // The matrix's base (and the model it names) follows the settings while the view shows.
  auto refreshMatrix = [this] {
    if (!benchmark_->isRunning()) benchmark_->matrixBuilder()->refresh();
  };
  connect(settingsPanel_, &EngineSettingsPanel::edited, this, refreshMatrix);
  connect(controller_, &EngineController::modelLoaded, this, refreshMatrix);
  connect(benchmark_, &BenchmarkView::runningChanged, playground_, &PlaygroundView::setBenchmarkRunning);
  connect(benchmark_, &BenchmarkView::matrixCompleted, this, [this](const QString& path) {
    compare_->openFiles({path});
    setCurrentView(View::Compare);
  });

  resize(1280, 800);
  if (persist_) readSettings();
  rebuildRecentMenu();
}

MainWindow::~MainWindow() = default;

void MainWindow::createViews() {
  tabs_ = new QTabWidget(this);
  tabs_->setObjectName(QStringLiteral("viewTabs"));
  tabs_->setDocumentMode(true);
  playground_ = new PlaygroundView(tabs_);
  abView_ = new ABView(abSession_, tabs_);
  benchmark_ = new BenchmarkView(resultsStore_, tabs_);
  benchmark_->setObjectName(QStringLiteral("benchmarkPage"));
  compare_ = new CompareView(resultsStore_, tabs_);
  compare_->setObjectName(QStringLiteral("comparePage"));
  tabs_->addTab(playground_, tr("&Playground"));
  tabs_->addTab(abView_, tr("A/&B compare"));
  tabs_->addTab(benchmark_, tr("Be&nchmark"));
  tabs_->addTab(compare_, tr("Co&mpare"));
  tabs_->setTabToolTip(0, tr("Prompt the model: completion or chat, streaming (Ctrl+1)"));
  tabs_->setTabToolTip(1, tr("Two configurations answer the same prompt side by side (Ctrl+2)"));
  tabs_->setTabToolTip(2, tr("Run a workload against a matrix of engine configurations (Ctrl+3)"));
  tabs_->setTabToolTip(3, tr("Compare stored benchmark results and export reports (Ctrl+4)"));
  auto* centre = new QWidget(this);
  auto* cl = new QVBoxLayout(centre);
  cl->setContentsMargins(6, 4, 6, 0);
  cl->addWidget(tabs_);
  setCentralWidget(centre);

  modelPanel_ = new ModelPanel;
  auto* modelScroll = new QScrollArea;
  modelScroll->setWidgetResizable(true);
  modelScroll->setFrameShape(QFrame::NoFrame);
  modelScroll->setWidget(modelPanel_);
  modelDock_ = new QDockWidget(tr("Model"), this);
  modelDock_->setObjectName(QStringLiteral("modelDock"));
  modelDock_->setWidget(modelScroll);
  addDockWidget(Qt::LeftDockWidgetArea, modelDock_);

  settingsPanel_ = new EngineSettingsPanel;
  settingsDock_ = new QDockWidget(tr("Engine settings"), this);
  settingsDock_->setObjectName(QStringLiteral("settingsDock"));
  settingsDock_->setWidget(settingsPanel_);
  addDockWidget(Qt::LeftDockWidgetArea, settingsDock_);
  tabifyDockWidget(modelDock_, settingsDock_);
  modelDock_->raise();

  telemetry_ = new TelemetryDock(controller_, this);
  // A tab of the left column until resetLayout() places it by the window's
  // width: three columns would hold the window at 1029 px or more before it
  // is shown, whatever size it is then given.
  tabifyDockWidget(settingsDock_, telemetry_);
  // Workaround until the dock wraps its block-map caption itself: unwrapped,
  // the caption alone makes the dock ~590 px wide at least, more than a
  // 1280-px window can give it. No-op if the label is not there.
  if (auto* caption = telemetry_->findChild<QLabel*>(QStringLiteral("kvBlockCaption")))
    caption->setWordWrap(true);
}

void MainWindow::createMenus() {
  QMenu* file = menuBar()->addMenu(tr("&File"));
  QAction* open = file->addAction(tr("&Open model…"), this, &MainWindow::openModelFile);
  open->setObjectName(QStringLiteral("actionOpen"));
  open->setShortcut(QKeySequence::Open);
  open->setStatusTip(tr("Load a GGUF file or a llama2.c checkpoint"));
  QAction* folder = file->addAction(tr("Open &Hugging Face folder…"), this, &MainWindow::openModelFolder);
  folder->setObjectName(QStringLiteral("actionOpenFolder"));
  folder->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_O));
  folder->setStatusTip(tr("Load a folder holding config.json and safetensors weights"));
  QAction* demo = file->addAction(tr("Load &demo model"), this, &MainWindow::loadDemoModel);
  demo->setObjectName(QStringLiteral("actionDemo"));
  demo->setStatusTip(tr("Load the built-in synthetic model (random weights)"));
  recentMenu_ = file->addMenu(tr("&Recent models"));
  recentMenu_->setObjectName(QStringLiteral("recentMenu"));
  file->addSeparator();
  QAction* savePlots = file->addAction(tr("&Save telemetry plots…"), telemetry_, &TelemetryDock::savePlotsAs);
  savePlots->setObjectName(QStringLiteral("actionSavePlots"));
  savePlots->setShortcut(QKeySequence::Save);
  savePlots->setStatusTip(tr("Write the telemetry plots as PNG, SVG or PDF"));
  file->addSeparator();
  QAction* quit = file->addAction(tr("&Quit"), this, &QWidget::close);
  quit->setObjectName(QStringLiteral("actionQuit"));
  quit->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_Q));
  quit->setMenuRole(QAction::QuitRole);

  QMenu* view = menuBar()->addMenu(tr("&View"));
  auto* views = new QActionGroup(this);
  const QStringList names{tr("&Playground"), tr("&A/B compare"), tr("&Benchmark"),
                          tr("&Compare and reports")};
  const QStringList ids{QStringLiteral("actionViewPlayground"), QStringLiteral("actionViewAB"),
                        QStringLiteral("actionViewBenchmark"), QStringLiteral("actionViewReports")};
  for (int i = 0; i < names.size(); ++i) {
    QAction* a = view->addAction(names[i]);
    a->setObjectName(ids[i]);
    a->setCheckable(true);
    a->setChecked(i == 0);
    a->setShortcut(QKeySequence(Qt::CTRL | (Qt::Key_1 + i)));
    views->addAction(a);
    connect(a, &QAction::triggered, this, [this, i] { tabs_->setCurrentIndex(i); });
  }
  connect(tabs_, &QTabWidget::currentChanged, this, [this, views](int i) {
    if (i >= 0 && i < views->actions().size()) views->actions()[i]->setChecked(true);
    showTelemetryFor(View(i));
  });
  view->addSeparator();
  QAction* modelToggle = modelDock_->toggleViewAction();
  modelToggle->setObjectName(QStringLiteral("actionToggleModel"));
  modelToggle->setText(tr("&Model panel"));
  modelToggle->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_M));
  view->addAction(modelToggle);
  QAction* settingsToggle = settingsDock_->toggleViewAction();
  settingsToggle->setObjectName(QStringLiteral("actionToggleSettings"));
  settingsToggle->setText(tr("&Engine settings"));
  view->addAction(settingsToggle);
  QAction* telemetryToggle = telemetry_->toggleViewAction();
  telemetryToggle->setObjectName(QStringLiteral("actionToggleTelemetry"));
  telemetryToggle->setText(tr("&Telemetry"));
  telemetryToggle->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_T));
  telemetryToggle->setStatusTip(tr("Show or hide the live telemetry dock"));
  view->addAction(telemetryToggle);
  QAction* pause = view->addAction(tr("&Pause telemetry"));
  pause->setObjectName(QStringLiteral("actionPauseTelemetry"));
  pause->setCheckable(true);
  pause->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_P));
  connect(pause, &QAction::toggled, telemetry_, &TelemetryDock::setPaused);
  connect(telemetry_, &TelemetryDock::pausedChanged, pause, &QAction::setChecked);
  QAction* clear = view->addAction(tr("&Clear telemetry"), telemetry_, &TelemetryDock::clear);
  clear->setObjectName(QStringLiteral("actionClearTelemetry"));
  view->addSeparator();
  QAction* reset = view->addAction(tr("Reset &layout"), this, &MainWindow::resetLayout);
  reset->setObjectName(QStringLiteral("actionResetLayout"));

  QMenu* engine = menuBar()->addMenu(tr("&Engine"));
  QAction* run = engine->addAction(tr("&Generate"), this, &MainWindow::runCurrent);
  run->setObjectName(QStringLiteral("actionGenerate"));
  run->setShortcuts({QKeySequence(Qt::CTRL | Qt::Key_Return), QKeySequence(Qt::CTRL | Qt::Key_Enter)});
  run->setStatusTip(tr("Generate in the playground, or run both sides in A/B compare"));
  QAction* stop = engine->addAction(tr("&Stop"), this, &MainWindow::stopCurrent);
  stop->setObjectName(QStringLiteral("actionStop"));
  stop->setShortcut(QKeySequence(Qt::Key_Escape));
  stop->setStatusTip(tr("Abort the running request(s) of the current view"));
  engine->addSeparator();
  QAction* settingsAction = engine->addAction(tr("Engine &settings…"), this, &MainWindow::showEngineSettings);
  settingsAction->setObjectName(QStringLiteral("actionEngineSettings"));
  settingsAction->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_Comma));
  QAction* reload = engine->addAction(tr("&Reload model"), this, &MainWindow::reloadModel);
  reload->setObjectName(QStringLiteral("actionReload"));
  reload->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_R));
  reload->setStatusTip(tr("Load the current model again with the engine settings it runs with"));
  QAction* cancel = engine->addAction(tr("&Cancel loading"), controller_, &EngineController::cancelLoad);
  cancel->setObjectName(QStringLiteral("actionCancelLoad"));
  QAction* second = engine->addAction(tr("Load second &engine (A/B)"), abView_, &ABView::loadSecondEngine);
  second->setObjectName(QStringLiteral("actionLoadSecond"));
  second->setStatusTip(tr("Load the A/B view's second engine configuration"));
  connect(engine, &QMenu::aboutToShow, this, [this, cancel, reload] {
    cancel->setEnabled(controller_->isLoading());
    reload->setEnabled(controller_->hasModel() && !controller_->isLoading());
  });

  QMenu* help = menuBar()->addMenu(tr("&Help"));
  QAction* keys = help->addAction(tr("&Keyboard shortcuts"), this, &MainWindow::showShortcuts);
  keys->setObjectName(QStringLiteral("actionShortcuts"));
  keys->setShortcut(QKeySequence::HelpContents);
  QAction* sys = help->addAction(tr("&System information"), this, &MainWindow::showSystemInfo);
  sys->setObjectName(QStringLiteral("actionSystemInfo"));
  sys->setStatusTip(tr("This machine, its measured ceilings, the backends and each CUDA device"));
  QAction* about = help->addAction(tr("&About Brisk"), this, &MainWindow::showAbout);
  about->setObjectName(QStringLiteral("actionAbout"));
  about->setMenuRole(QAction::AboutRole);
  help->addAction(tr("About &Qt"), qApp, &QApplication::aboutQt);
}

QAction* MainWindow::action(const QString& objectName) const {
  for (QAction* a : findChildren<QAction*>())
    if (a->objectName() == objectName) return a;
  for (QDockWidget* d : {modelDock_, settingsDock_, static_cast<QDockWidget*>(telemetry_)})
    if (d->toggleViewAction()->objectName() == objectName) return d->toggleViewAction();
  return nullptr;
}

void MainWindow::createStatusBar() {
  QStatusBar* bar = statusBar();
  loadingLabel_ = new QLabel(bar);
  loadingBar_ = new QProgressBar(bar);
  loadingBar_->setObjectName(QStringLiteral("loadingBar"));
  loadingBar_->setRange(0, 0);  // indeterminate: Engine::create reports no progress
  loadingBar_->setMaximumWidth(160);
  loadingBar_->setMaximumHeight(16);
  loadingBar_->setTextVisible(false);
  cancelLoad_ = new QPushButton(tr("Cancel"), bar);
  cancelLoad_->setObjectName(QStringLiteral("cancelLoad"));
  cancelLoad_->setToolTip(tr("Stop waiting for this model; the current one stays loaded"));
  connect(cancelLoad_, &QPushButton::clicked, controller_, &EngineController::cancelLoad);
  bar->addWidget(loadingLabel_);
  bar->addWidget(loadingBar_);
  bar->addWidget(cancelLoad_);

  auto permanent = [bar](const QString& name, const QString& tip) {
    auto* l = new QLabel(bar);
    l->setObjectName(name);
    l->setToolTip(tip);
    l->setContentsMargins(6, 0, 6, 0);
    bar->addPermanentWidget(l);
    return l;
  };
  modelLabel_ = permanent(QStringLiteral("statusModel"), tr("The loaded model"));
  backendLabel_ = permanent(QStringLiteral("statusBackend"), tr("The backend running the model"));
  precisionLabel_ = permanent(QStringLiteral("statusPrecision"),
                              tr("Storage precision of the weights and of the KV cache"));
  kvLabel_ =
      permanent(QStringLiteral("statusKv"), tr("KV-cache blocks in use / total (updated 10 times a second)"));
  modelLabel_->setText(tr("No model"));
  kvLabel_->setText(tr("KV —"));
  setLoading(false);
}

void MainWindow::setLoading(bool loading, const QString& model) {
  if (loading) {
    loadTimer_.start();
    const QString shown = model == QLatin1String("demo") ? tr("the demo model") : QFileInfo(model).fileName();
    loadingLabel_->setText(tr("Loading %1…").arg(shown.isEmpty() ? model : shown));
  }
  loadingLabel_->setVisible(loading);
  loadingBar_->setVisible(loading);
  cancelLoad_->setVisible(loading);
}

brisk::EngineConfig MainWindow::configFor(const QString& model, const QString& tokenizer) const {
  // The settings as edited: loading a model is a reload, and edits not yet
  // applied would otherwise be dropped silently when the panel shows the new
  // engine (the benchmark's base configuration follows the same rule).
  brisk::EngineConfig config = settingsPanel_->config();
  config.model = model.isEmpty() ? std::string("demo") : model.toStdString();
  config.tokenizer = tokenizer.toStdString();
  return config;
}

void MainWindow::loadModel(const brisk::EngineConfig& config) {
  settingsReload_ = false;
  controller_->loadModel(config);
}

void MainWindow::openModel(const QString& model, const QString& tokenizer) {
  const brisk::EngineConfig config = configFor(model, tokenizer);
  const int running = controller_->activeRequests();
  if (running == 0) {
    loadModel(config);
    return;
  }
  // As Engine ▸ Reload does: replacing the engine stops what it is running.
  const QString shown = model == QLatin1String("demo") ? tr("the demo model") : QFileInfo(model).fileName();
  auto* box = new QMessageBox(QMessageBox::Question, tr("Open another model?"),
                              tr("Open %1?").arg(shown.isEmpty() ? model : shown),
                              QMessageBox::Yes | QMessageBox::Cancel, this);
  box->setObjectName(QStringLiteral("replaceModelConfirmBox"));
  box->setAttribute(Qt::WA_DeleteOnClose);
  box->setInformativeText(running == 1 ? tr("The running request will be stopped.")
                                       : tr("The %1 running requests will be stopped.").arg(running));
  box->setDefaultButton(QMessageBox::Yes);
  box->button(QMessageBox::Yes)->setText(tr("Open"));
  connect(box, &QMessageBox::buttonClicked, this, [this, box, config](QAbstractButton* b) {
    if (box->standardButton(b) == QMessageBox::Yes) loadModel(config);
  });
  box->open();
}

void MainWindow::loadDemoModel() { openModel(QStringLiteral("demo")); }

void MainWindow::reloadModel() {
  if (controller_->hasModel()) loadModel(controller_->engineConfig());
}

void MainWindow::openModelFile() {
  QSettings s = settings();
  const QString dir = s.value(QStringLiteral("lastDir"), QDir::homePath()).toString();
  const QString path = QFileDialog::getOpenFileName(
      this, tr("Open model"), dir,
      tr("Models (*.gguf *.bin);;GGUF files (*.gguf);;llama2.c checkpoints (*.bin);;All files (*)"));
  if (path.isEmpty()) return;
  if (persist_) s.setValue(QStringLiteral("lastDir"), QFileInfo(path).absolutePath());
  QString tok;
  // llama2.c checkpoints carry no vocabulary (see askLlama2cTokenizer).
  if (path.endsWith(QLatin1String(".bin"), Qt::CaseInsensitive)) tok = askLlama2cTokenizer(this, path);
  openModel(path, tok);
}

void MainWindow::openModelFolder() {
  QSettings s = settings();
  const QString dir = s.value(QStringLiteral("lastDir"), QDir::homePath()).toString();
  const QString path = QFileDialog::getExistingDirectory(this, tr("Open Hugging Face folder"), dir);
  if (path.isEmpty()) return;
  if (persist_) s.setValue(QStringLiteral("lastDir"), QFileInfo(path).absolutePath());
  openModel(path);
}

MainWindow::View MainWindow::currentView() const { return View(tabs_->currentIndex()); }

void MainWindow::setCurrentView(View view) { tabs_->setCurrentIndex(int(view)); }

void MainWindow::showEngineSettings() {
  settingsDock_->show();
  settingsDock_->raise();
  settingsPanel_->setFocus();
}

void MainWindow::resetLayout() {
  for (QDockWidget* d : {modelDock_, settingsDock_, static_cast<QDockWidget*>(telemetry_)}) {
    d->setFloating(false);
    d->show();
  }
  addDockWidget(Qt::LeftDockWidgetArea, modelDock_);
  addDockWidget(Qt::LeftDockWidgetArea, settingsDock_);
  tabifyDockWidget(modelDock_, settingsDock_);
  const int w = width();
  if (w < kNarrowWidth) {
    // Three columns do not fit: the playground's sampling grid, the
    // telemetry plots and the settings' labels each need ~370 px, and
    // squeezed they cut every settings control off. Telemetry becomes a
    // third tab of the left column.
    tabifyDockWidget(settingsDock_, telemetry_);
    modelDock_->raise();
    resizeDocks({modelDock_}, {std::clamp(w * 38 / 100, 380, 440)}, Qt::Horizontal);
    resetTelemetryPairs();
    layoutDone_ = true;
    return;
  }
  addDockWidget(Qt::RightDockWidgetArea, telemetry_);
  modelDock_->raise();
  // Wide enough at 1280 for the settings' longest choice ("FP8 E4M3, F32 FMA")
  // beside their longest label (a CUDA knob's).
  const int left = std::clamp(w * 24 / 100, 300, 400);
  const int right = std::clamp(w * 36 / 100, 420, 720);
  resizeDocks({modelDock_, telemetry_}, {left, right}, Qt::Horizontal);
  resetTelemetryPairs();
  layoutDone_ = true;
}

void MainWindow::resetTelemetryPairs() {
  // The start's rule again: shown with the live views, not in the workbench.
  telemetryInLive_ = true;
  telemetryInWorkbench_ = false;
  telemetry_->setVisible(!workbenchView_);
}

bool MainWindow::isWorkbench(View view) { return view == View::Benchmark || view == View::Compare; }

void MainWindow::showTelemetryFor(View view) {
  // The live telemetry follows the window's engine; Benchmark and Compare
  // carry their own plots of other engines' runs, and beside them it only
  // takes their width (at 1280 px the Compare table showed three columns).
  // Each pair of views keeps the dock as the user last left it there.
  const bool workbench = isWorkbench(view);
  if (workbench == workbenchView_) return;
  (workbenchView_ ? telemetryInWorkbench_ : telemetryInLive_) = !telemetry_->isHidden();
  workbenchView_ = workbench;
  telemetry_->setVisible(workbench ? telemetryInWorkbench_ : telemetryInLive_);
}

void MainWindow::showEvent(QShowEvent* event) {
  QMainWindow::showEvent(event);
  if (layoutDone_ || stateRestored_) return;
  layoutDone_ = true;
  // Once the window has its final size.
  QTimer::singleShot(0, this, &MainWindow::resetLayout);
}

void MainWindow::runCurrent() {
  switch (currentView()) {
    case View::Playground:
      playground_->requestGenerate();
      break;
    case View::AB:
      abView_->requestRun();
      break;
    case View::Benchmark:
      benchmark_->requestRun();
      break;
    default:
      break;
  }
}

void MainWindow::stopCurrent() {
  switch (currentView()) {
    case View::Playground:
      if (currentRequest_) controller_->stop(currentRequest_);
      break;
    case View::AB:
      abSession_->stop();
      break;
    case View::Benchmark:
      benchmark_->requestStop();
      break;
    default:
      break;
  }
}

void MainWindow::showAbout() {
  QMessageBox::about(this, tr("About Brisk"),
                     tr("<h3>Brisk %1</h3>"
                        "<p>A desktop LLM inference workbench: an in-process engine with a paged KV cache "
                        "and continuous batching, and a window that shows what it is doing.</p>"
                        "<p>Models stay on your disk; Brisk never needs the network.</p>")
                         .arg(QStringLiteral(BRISK_VERSION)));
}

void MainWindow::showSystemInfo() {
  // One at a time: a second click raises the open one (its measurement may be running).
  // Kept once made (closing hides it): a measurement in flight is never waited for on the GUI thread.
  auto* dialog = findChild<SystemInfoDialog*>(QString(), Qt::FindDirectChildrenOnly);
  if (!dialog) {
    dialog = new SystemInfoDialog(this);
    dialog->setMeasureBlocker([this] {
      if (benchmark_->isRunning()) return tr("a benchmark is running (its load would lower the figures)");
      if (controller_->activeRequests() > 0)
        return tr("a generation is running (its load would lower the figures)");
      return QString();
    });
  }
  dialog->show();
  dialog->raise();
  dialog->activateWindow();
}

void MainWindow::showShortcuts() {
  QString rows;
  const QStringList ids{QStringLiteral("actionOpen"),           QStringLiteral("actionOpenFolder"),
                        QStringLiteral("actionSavePlots"),      QStringLiteral("actionQuit"),
                        QStringLiteral("actionViewPlayground"), QStringLiteral("actionViewAB"),
                        QStringLiteral("actionViewBenchmark"),  QStringLiteral("actionViewReports"),
                        QStringLiteral("actionToggleModel"),    QStringLiteral("actionToggleTelemetry"),
                        QStringLiteral("actionPauseTelemetry"), QStringLiteral("actionGenerate"),
                        QStringLiteral("actionStop"),           QStringLiteral("actionEngineSettings"),
                        QStringLiteral("actionReload"),         QStringLiteral("actionShortcuts")};
  for (const QString& id : ids) {
    QAction* a = action(id);
    if (!a || a->shortcut().isEmpty()) continue;
    rows += QStringLiteral("<tr><td><b>%1</b></td><td>&nbsp;&nbsp;%2</td></tr>")
                .arg(a->shortcut().toString(QKeySequence::NativeText).toHtmlEscaped(),
                     a->text().remove(QLatin1Char('&')).toHtmlEscaped());
  }
  auto* box = new QMessageBox(QMessageBox::Information, tr("Keyboard shortcuts"),
                              QStringLiteral("<table>%1</table>").arg(rows), QMessageBox::Close, this);
  box->setObjectName(QStringLiteral("shortcutsBox"));
  box->setAttribute(Qt::WA_DeleteOnClose);
  box->open();
}

void MainWindow::showLoadError(const QString& error) {
  setLoading(false);
  if (settingsReload_) {
    settingsPanel_->showError(error);
    showEngineSettings();
  }
  settingsReload_ = false;
  statusBar()->showMessage(tr("Could not load the model"), 8000);
  // Modeless: the window stays usable beside it (a running request keeps
  // streaming, another model can be opened).
  auto* box =
      new QMessageBox(QMessageBox::Critical, tr("Could not load the model"), error, QMessageBox::Ok, this);
  box->setObjectName(QStringLiteral("loadErrorBox"));
  box->setAttribute(Qt::WA_DeleteOnClose);
  if (controller_->hasModel())
    box->setInformativeText(tr("%1 stays loaded.").arg(fmt::modelName(controller_->modelInfo())));
  box->setWindowModality(Qt::NonModal);
  box->show();
}

void MainWindow::confirmReload(const brisk::EngineConfig& config) {
  const QStringList changes = EngineSettingsPanel::describeChanges(settingsPanel_->applied(), config);
  const QString model = controller_->hasModel()  ? fmt::modelName(controller_->modelInfo())
                        : config.model == "demo" ? tr("the demo model")
                                                 : QString::fromStdString(config.model);
  auto* box = new QMessageBox(QMessageBox::Question, tr("Reload the model?"),
                              tr("Reload %1 with the new engine settings?").arg(model),
                              QMessageBox::Yes | QMessageBox::Cancel, this);
  box->setObjectName(QStringLiteral("reloadConfirmBox"));
  box->setAttribute(Qt::WA_DeleteOnClose);
  box->setInformativeText((controller_->hasModel()
                               ? tr("Changed: %1.\n\nRunning requests are stopped. If the "
                                    "engine rejects a value, the current model stays loaded.")
                               : tr("Changed: %1."))
                              .arg(changes.join(QStringLiteral("; "))));
  box->setDefaultButton(QMessageBox::Yes);
  box->button(QMessageBox::Yes)->setText(tr("Reload"));
  connect(box, &QMessageBox::buttonClicked, this, [this, box, config](QAbstractButton* b) {
    if (box->standardButton(b) != QMessageBox::Yes) return;
    settingsReload_ = true;
    controller_->loadModel(config);
  });
  box->open();
}

void MainWindow::onModelLoaded(const brisk::ModelInfo& info) {
  setLoading(false);
  settingsReload_ = false;
  const QString name = fmt::modelName(info);
  const brisk::EngineConfig& config = controller_->engineConfig();
  modelPanel_->showModel(info);
  modelPanel_->showEngine(config, controller_->kvBlocksTotal());
  settingsPanel_->setApplied(config, controller_->kvBlocksTotal(), info);
  playground_->setModel(info);
  playground_->setModelReady(true);
  setWindowTitle(tr("%1 — Brisk").arg(name));
  modelLabel_->setText(name);
  modelLabel_->setToolTip(QString::fromStdString(info.path));
  backendLabel_->setText(
      fmt::backendUsed(config.backend));  // the backend that runs the model, "auto" resolved
  precisionLabel_->setText(fmt::precisionSummary(info, config));
  const QString loadedIn = tr("Loaded %1 in %2").arg(name, fmt::milliseconds(double(loadTimer_.elapsed())));
  if (config.backend != "auto") startupNote_.clear();  // a backend chosen since (brisk --backend) runs
  if (startupNote_.isEmpty()) {
    statusBar()->showMessage(loadedIn, 5000);
  } else {
    statusBar()->showMessage(tr("%1 · %2").arg(loadedIn, startupNote_), 20000);
    startupNote_.clear();
  }
  addRecent(config);
  if (persist_) {
    QSettings s = settings();
    writeEngine(s, config);
  }
}

void MainWindow::onGenerateRequested(const QString& prompt, const brisk::SamplingParams& params) {
  if (currentRequest_) return;
  const quint64 id = controller_->generate(prompt, params);
  if (!id) {
    playground_->requestRejected(tr("Load a model first"));
    return;
  }
  currentRequest_ = id;
  playground_->setGenerating(true);
}

void MainWindow::onTokenReceived(quint64 id, const QString& text, double probability,
                                 const TokenAlternatives& alternatives) {
  if (id == currentRequest_) playground_->appendText(text, probability, alternatives);
}

void MainWindow::onRequestFinished(quint64 id, brisk::FinishReason, const GenerationStats& stats) {
  if (id != currentRequest_) return;
  currentRequest_ = 0;
  playground_->setGenerating(false);
  playground_->showFinished(stats);
}

void MainWindow::onMetricsUpdated(const brisk::MetricsSnapshot& m) {
  kvLabel_->setText(
      tr("KV %1/%2").arg(m.kv_blocks_used).arg(fmt::quantity(m.kv_blocks_total, tr("block"), tr("blocks"))));
}

QString MainWindow::kvUsageText() const { return kvLabel_->text(); }

QString MainWindow::precisionText() const { return precisionLabel_->text(); }

QList<MainWindow::Recent> MainWindow::readRecent() const {
  QList<Recent> list;
  if (!persist_) return list;
  QSettings s = settings();
  const int n = s.beginReadArray(QStringLiteral("recentModels"));
  for (int i = 0; i < n; ++i) {
    s.setArrayIndex(i);
    Recent r{s.value(QStringLiteral("model")).toString(), s.value(QStringLiteral("tokenizer")).toString()};
    if (!r.model.isEmpty()) list.append(r);
  }
  s.endArray();
  return list;
}

QStringList MainWindow::recentModels() const {
  QStringList paths;
  for (const Recent& r : readRecent()) paths.append(r.model);
  return paths;
}

void MainWindow::addRecent(const brisk::EngineConfig& config) {
  if (!persist_ || config.model == "demo") return;
  Recent entry{QFileInfo(QString::fromStdString(config.model)).absoluteFilePath(),
               QString::fromStdString(config.tokenizer)};
  QList<Recent> list = readRecent();
  list.removeIf([&](const Recent& r) { return r.model == entry.model; });
  list.prepend(entry);
  while (list.size() > kMaxRecentModels) list.removeLast();
  QSettings s = settings();
  s.beginWriteArray(QStringLiteral("recentModels"), int(list.size()));
  for (int i = 0; i < list.size(); ++i) {
    s.setArrayIndex(i);
    s.setValue(QStringLiteral("model"), list[i].model);
    s.setValue(QStringLiteral("tokenizer"), list[i].tokenizer);
  }
  s.endArray();
  rebuildRecentMenu();
}

void MainWindow::rebuildRecentMenu() {
  recentMenu_->clear();
  const QList<Recent> list = readRecent();
  for (int i = 0; i < list.size(); ++i) {
    const Recent r = list[i];
    QString label = QFileInfo(r.model).fileName();
    if (label.isEmpty()) label = r.model;
    QAction* a = recentMenu_->addAction(QStringLiteral("&%1 %2").arg(i + 1).arg(label));
    a->setToolTip(r.model);
    a->setStatusTip(r.model);
    connect(a, &QAction::triggered, this, [this, r] { openModel(r.model, r.tokenizer); });
  }
  recentMenu_->setEnabled(!list.isEmpty());
}

void MainWindow::readSettings() {
  QSettings s = settings();
  restoreGeometry(s.value(QStringLiteral("window/geometry")).toByteArray());
  const QByteArray state = s.value(QStringLiteral("window/state")).toByteArray();
  stateRestored_ = !state.isEmpty() && restoreState(state);
  // The dock as saved belongs to the saved view's pair; the other pair's is remembered.
  const int view = s.value(QStringLiteral("window/view"), 0).toInt();
  workbenchView_ = isWorkbench(View(view));
  if (s.contains(QStringLiteral("window/telemetryWorkbench"))) {
    telemetryInLive_ = s.value(QStringLiteral("window/telemetryLive"), true).toBool();
    telemetryInWorkbench_ = s.value(QStringLiteral("window/telemetryWorkbench"), false).toBool();
  } else if (stateRestored_ && !workbenchView_) {
    telemetryInLive_ = !telemetry_->isHidden();  // a layout saved before the pairs: the user's choice
  }
  if (stateRestored_) telemetry_->setVisible(workbenchView_ ? telemetryInWorkbench_ : telemetryInLive_);
  tabs_->setCurrentIndex(view);

  s.beginGroup(QStringLiteral("playground"));
  if (s.contains(QStringLiteral("prompt")))
    playground_->setPrompt(s.value(QStringLiteral("prompt")).toString());
  playground_->setMode(s.value(QStringLiteral("mode")).toString() == QLatin1String("chat")
                           ? PlaygroundView::Mode::Chat
                           : PlaygroundView::Mode::Completion);
  playground_->setTemplateChoice(
      PlaygroundView::TemplateChoice(s.value(QStringLiteral("template"), 0).toInt()));
  playground_->setSystemPrompt(s.value(QStringLiteral("system")).toString());
  playground_->setShowTokens(s.value(QStringLiteral("showTokens"), false).toBool());
  s.endGroup();
  playground_->setParams(readParams(s, QStringLiteral("playground"), playground_->params()));

  if (s.contains(QStringLiteral("ab/prompt")))
    abView_->setPrompt(s.value(QStringLiteral("ab/prompt")).toString());
  for (int side : {ABSession::A, ABSession::B}) {
    const QString g = side == ABSession::A ? QStringLiteral("ab/A") : QStringLiteral("ab/B");
    ABSession::SideConfig c = abView_->sideConfig(ABSession::Side(side));
    c.params = readParams(s, g, c.params);
    c.engine = s.value(g + QStringLiteral("/engine")).toString() == QLatin1String("second")
                   ? ABSession::EngineChoice::Second
                   : ABSession::EngineChoice::Main;
    abView_->setSideConfig(ABSession::Side(side), c);
  }

  if (s.childGroups().contains(QStringLiteral("engine"))) {
    brisk::EngineConfig engine = readEngine(s);
    // Settings saved on (or synced from) a machine with a GPU: here the
    // backend cannot run, and every load would fail on it. Auto runs the
    // same model on what this machine has; the first load says why once.
    if (engine.backend != "auto") {
      for (const brisk::BackendStatus& b : brisk::list_backends())
        if (b.name == engine.backend && !b.available) {
          startupNote_ = tr("the saved backend %1 is unavailable here (%2): running on %3")
                             .arg(fmt::backendName(engine.backend), QString::fromStdString(b.reason),
                                  fmt::backendUsed("auto"));
          engine.backend = "auto";
        }
    }
    settingsPanel_->setConfig(engine);
  }
}

void MainWindow::writeSettings() {
  QSettings s = settings();
  s.setValue(QStringLiteral("window/geometry"), saveGeometry());
  s.setValue(QStringLiteral("window/state"), saveState());
  s.setValue(QStringLiteral("window/view"), tabs_->currentIndex());
  (workbenchView_ ? telemetryInWorkbench_ : telemetryInLive_) = !telemetry_->isHidden();
  s.setValue(QStringLiteral("window/telemetryLive"), telemetryInLive_);
  s.setValue(QStringLiteral("window/telemetryWorkbench"), telemetryInWorkbench_);
  s.beginGroup(QStringLiteral("playground"));
  s.setValue(QStringLiteral("prompt"), playground_->prompt());
  s.setValue(QStringLiteral("mode"), playground_->mode() == PlaygroundView::Mode::Chat
                                         ? QStringLiteral("chat")
                                         : QStringLiteral("completion"));
  s.setValue(QStringLiteral("template"), int(playground_->templateChoice()));
  s.setValue(QStringLiteral("system"), playground_->systemPrompt());
  s.setValue(QStringLiteral("showTokens"), playground_->showTokens());
  s.endGroup();
  writeParams(s, QStringLiteral("playground"), playground_->params());
  s.setValue(QStringLiteral("ab/prompt"), abView_->prompt());
  for (int side : {ABSession::A, ABSession::B}) {
    const QString g = side == ABSession::A ? QStringLiteral("ab/A") : QStringLiteral("ab/B");
    const ABSession::SideConfig c = abView_->sideConfig(ABSession::Side(side));
    writeParams(s, g, c.params);
    s.setValue(g + QStringLiteral("/engine"), c.engine == ABSession::EngineChoice::Second
                                                  ? QStringLiteral("second")
                                                  : QStringLiteral("main"));
  }
  writeEngine(s, settingsPanel_->applied());
}

void MainWindow::closeEvent(QCloseEvent* event) {
  if (persist_) writeSettings();
  event->accept();
}
