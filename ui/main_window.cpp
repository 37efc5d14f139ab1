#include "main_window.h"

#include <QAction>
#include <QApplication>
#include <QCloseEvent>
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QKeySequence>
#include <QLabel>
#include <QMenu>
#include <QMenuBar>
#include <QMessageBox>
#include <QProgressBar>
#include <QPushButton>
#include <QSettings>
#include <QSplitter>
#include <QStatusBar>

#include "engine_controller.h"
#include "format.h"
#include "model_panel.h"
#include "playground_view.h"

namespace {
QSettings settings() { return QSettings(QStringLiteral("Brisk"), QStringLiteral("Brisk")); }
}  // namespace

MainWindow::MainWindow(bool persistState, QWidget* parent)
    : QMainWindow(parent), persist_(persistState), controller_(new EngineController(this)) {
  setWindowTitle(QStringLiteral("Brisk"));
  setObjectName(QStringLiteral("mainWindow"));

  splitter_ = new QSplitter(Qt::Horizontal, this);
  splitter_->setObjectName(QStringLiteral("mainSplitter"));
  modelPanel_ = new ModelPanel(splitter_);
  playground_ = new PlaygroundView(splitter_);
  splitter_->addWidget(modelPanel_);
  splitter_->addWidget(playground_);
  splitter_->setStretchFactor(0, 0);
  splitter_->setStretchFactor(1, 1);
  splitter_->setChildrenCollapsible(false);
  splitter_->setSizes({350, 930});
  splitter_->setContentsMargins(6, 6, 6, 0);
  setCentralWidget(splitter_);

  createMenus();
  createStatusBar();

  connect(controller_, &EngineController::loadStarted, this,
          [this](const QString& model) { setLoading(true, model); });
  connect(controller_, &EngineController::modelLoaded, this, &MainWindow::onModelLoaded);
  connect(controller_, &EngineController::loadFailed, this, &MainWindow::showLoadError);
  connect(controller_, &EngineController::loadCancelled, this, [this] {
    setLoading(false);
    statusBar()->showMessage(tr("Loading cancelled"), 5000);
  });
  connect(controller_, &EngineController::tokenReceived, this, &MainWindow::onTokenReceived);
  connect(controller_, &EngineController::requestFinished, this, &MainWindow::onRequestFinished);
  connect(controller_, &EngineController::metricsUpdated, this, &MainWindow::onMetricsUpdated);
  connect(playground_, &PlaygroundView::generateRequested, this, &MainWindow::onGenerateRequested);
  connect(playground_, &PlaygroundView::stopRequested, this, [this] {
    if (currentRequest_) controller_->stop(currentRequest_);
  });

  resize(1280, 800);
  if (persist_) readSettings();
  rebuildRecentMenu();
}

MainWindow::~MainWindow() = default;

void MainWindow::createMenus() {
  QMenu* file = menuBar()->addMenu(tr("&File"));
  QAction* open = file->addAction(tr("&Open model…"), this, &MainWindow::openModelFile);
  open->setShortcut(QKeySequence::Open);
  open->setStatusTip(tr("Load a GGUF file or a llama2.c checkpoint"));
  QAction* folder = file->addAction(tr("Open &Hugging Face folder…"), this, &MainWindow::openModelFolder);
  folder->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_O));
  folder->setStatusTip(tr("Load a folder holding config.json and safetensors weights"));
  QAction* demo = file->addAction(tr("Load &demo model"), this, &MainWindow::loadDemoModel);
  demo->setStatusTip(tr("Load the built-in synthetic model (random weights)"));
  recentMenu_ = file->addMenu(tr("&Recent models"));
  recentMenu_->setObjectName(QStringLiteral("recentMenu"));
  file->addSeparator();
  QAction* quit = file->addAction(tr("&Quit"), this, &QWidget::close);
  quit->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_Q));
  quit->setMenuRole(QAction::QuitRole);

  QMenu* help = menuBar()->addMenu(tr("&Help"));
  QAction* about = help->addAction(tr("&About Brisk"), this, &MainWindow::showAbout);
  about->setMenuRole(QAction::AboutRole);
  help->addAction(tr("About &Qt"), qApp, &QApplication::aboutQt);
}

void MainWindow::createStatusBar() {
  QStatusBar* bar = statusBar();
  loadingLabel_ = new QLabel(bar);
  loadingBar_ = new QProgressBar(bar);
  loadingBar_->setObjectName(QStringLiteral("loadingBar"));
  loadingBar_->setRange(0, 0);  // indeterminate
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
  precisionLabel_ = permanent(QStringLiteral("statusPrecision"), tr("Storage precision of the weights"));
  kvLabel_ = permanent(QStringLiteral("statusKv"),
                       tr("KV-cache blocks in use / total (updated 10 times a second)"));
  modelLabel_->setText(tr("No model"));
  kvLabel_->setText(tr("KV —"));
  setLoading(false);
}

void MainWindow::setLoading(bool loading, const QString& model) {
  if (loading) {
    loadTimer_.start();
    const QString shown = model == QLatin1String("demo") ? tr("the demo model")
                                                         : QFileInfo(model).fileName();
    loadingLabel_->setText(tr("Loading %1…").arg(shown.isEmpty() ? model : shown));
  }
  loadingLabel_->setVisible(loading);
  loadingBar_->setVisible(loading);
  cancelLoad_->setVisible(loading);
}

void MainWindow::loadModel(const brisk::EngineConfig& config) { controller_->loadModel(config); }

void MainWindow::loadDemoModel() { loadModel(brisk::EngineConfig{}); }

void MainWindow::openModelFile() {
  QSettings s = settings();
  const QString dir = s.value(QStringLiteral("lastDir"), QDir::homePath()).toString();
  const QString path = QFileDialog::getOpenFileName(
      this, tr("Open model"), dir,
      tr("Models (*.gguf *.bin);;GGUF files (*.gguf);;llama2.c checkpoints (*.bin);;All files (*)"));
  if (path.isEmpty()) return;
  if (persist_) s.setValue(QStringLiteral("lastDir"), QFileInfo(path).absolutePath());
  brisk::EngineConfig config;
  config.model = path.toStdString();
  if (path.endsWith(QLatin1String(".bin"), Qt::CaseInsensitive)) {
    // llama2.c checkpoints carry no vocabulary.
    const QString tok = QFileDialog::getOpenFileName(
        this, tr("Tokenizer for %1 (Cancel: none)").arg(QFileInfo(path).fileName()),
        QFileInfo(path).absolutePath(),
        tr("Tokenizers (*.model *.bin);;All files (*)"));
    config.tokenizer = tok.toStdString();
  }
  loadModel(config);
}

void MainWindow::openModelFolder() {
  QSettings s = settings();
  const QString dir = s.value(QStringLiteral("lastDir"), QDir::homePath()).toString();
  const QString path = QFileDialog::getExistingDirectory(this, tr("Open Hugging Face folder"), dir);
  if (path.isEmpty()) return;
  if (persist_) s.setValue(QStringLiteral("lastDir"), QFileInfo(path).absolutePath());
  brisk::EngineConfig config;
  config.model = path.toStdString();
  loadModel(config);
}

void MainWindow::showAbout() {
  QMessageBox::about(
      this, tr("About Brisk"),
      tr("<h3>Brisk %1</h3>"
         "<p>A desktop LLM inference workbench: an in-process engine with a paged KV cache "
         "and continuous batching, and a window that shows what it is doing.</p>"
         "<p>Models stay on your disk; Brisk never needs the network.</p>")
          .arg(QStringLiteral(BRISK_VERSION)));
}

void MainWindow::showLoadError(const QString& error) {
  setLoading(false);
  statusBar()->showMessage(tr("Could not load the model"), 8000);
  // Non-blocking (open, not exec): the window stays usable behind it.
  auto* box = new QMessageBox(QMessageBox::Critical, tr("Could not load the model"), error,
                              QMessageBox::Ok, this);
  box->setObjectName(QStringLiteral("loadErrorBox"));
  box->setAttribute(Qt::WA_DeleteOnClose);
  if (controller_->hasModel())
    box->setInformativeText(tr("%1 stays loaded.").arg(fmt::modelName(controller_->modelInfo())));
  box->open();
}

void MainWindow::onModelLoaded(const brisk::ModelInfo& info) {
  setLoading(false);
  const QString name = fmt::modelName(info);
  modelPanel_->showModel(info);
  modelPanel_->showEngine(controller_->engineConfig(), controller_->kvBlocksTotal());
  playground_->setModelReady(true);
  setWindowTitle(tr("%1 — Brisk").arg(name));
  modelLabel_->setText(name);
  modelLabel_->setToolTip(QString::fromStdString(info.path));
  backendLabel_->setText(fmt::backendName(controller_->engineConfig().backend));
  precisionLabel_->setText(tr("weights %1").arg(fmt::weightPrecision(info)));
  statusBar()->showMessage(
      tr("Loaded %1 in %2").arg(name, fmt::milliseconds(double(loadTimer_.elapsed()))), 5000);
  addRecent(controller_->engineConfig());
}

void MainWindow::onGenerateRequested(const QString& prompt, const brisk::SamplingParams& params) {
  if (currentRequest_) return;
  playground_->clearOutput();
  const quint64 id = controller_->generate(prompt, params);
  if (!id) {
    playground_->showMessage(tr("Load a model first"));
    return;
  }
  currentRequest_ = id;
  playground_->setGenerating(true);
}

void MainWindow::onTokenReceived(quint64 id, const QString& text) {
  if (id == currentRequest_) playground_->appendText(text);
}

void MainWindow::onRequestFinished(quint64 id, brisk::FinishReason, const GenerationStats& stats) {
  if (id != currentRequest_) return;
  currentRequest_ = 0;
  playground_->setGenerating(false);
  playground_->showFinished(stats);
}

void MainWindow::onMetricsUpdated(const brisk::MetricsSnapshot& m) {
  kvLabel_->setText(tr("KV %1/%2 blocks").arg(m.kv_blocks_used).arg(m.kv_blocks_total));
}

QString MainWindow::kvUsageText() const { return kvLabel_->text(); }

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
    connect(a, &QAction::triggered, this, [this, r] {
      brisk::EngineConfig config;
      config.model = r.model.toStdString();
      config.tokenizer = r.tokenizer.toStdString();
      loadModel(config);
    });
  }
  recentMenu_->setEnabled(!list.isEmpty());
}

void MainWindow::readSettings() {
  QSettings s = settings();
  restoreGeometry(s.value(QStringLiteral("window/geometry")).toByteArray());
  restoreState(s.value(QStringLiteral("window/state")).toByteArray());
  const QByteArray split = s.value(QStringLiteral("window/splitter")).toByteArray();
  if (!split.isEmpty()) splitter_->restoreState(split);

  s.beginGroup(QStringLiteral("playground"));
  if (s.contains(QStringLiteral("prompt"))) playground_->setPrompt(s.value(QStringLiteral("prompt")).toString());
  brisk::SamplingParams p = playground_->params();
  p.max_tokens = s.value(QStringLiteral("maxTokens"), p.max_tokens).toInt();
  p.temperature = s.value(QStringLiteral("temperature"), p.temperature).toFloat();
  p.top_k = s.value(QStringLiteral("topK"), p.top_k).toInt();
  p.top_p = s.value(QStringLiteral("topP"), p.top_p).toFloat();
  const qlonglong seed = s.value(QStringLiteral("seed"), -1).toLongLong();
  if (seed >= 0) p.seed = static_cast<uint64_t>(seed); else p.seed.reset();
  p.ignore_eos = s.value(QStringLiteral("ignoreEos"), p.ignore_eos).toBool();
  playground_->setParams(p);
  s.endGroup();
}

void MainWindow::writeSettings() {
  QSettings s = settings();
  s.setValue(QStringLiteral("window/geometry"), saveGeometry());
  s.setValue(QStringLiteral("window/state"), saveState());
  s.setValue(QStringLiteral("window/splitter"), splitter_->saveState());
  s.beginGroup(QStringLiteral("playground"));
  const brisk::SamplingParams p = playground_->params();
  s.setValue(QStringLiteral("prompt"), playground_->prompt());
  s.setValue(QStringLiteral("maxTokens"), p.max_tokens);
  s.setValue(QStringLiteral("temperature"), p.temperature);
  s.setValue(QStringLiteral("topK"), p.top_k);
  s.setValue(QStringLiteral("topP"), p.top_p);
  s.setValue(QStringLiteral("seed"), p.seed ? qlonglong(*p.seed) : qlonglong(-1));
  s.setValue(QStringLiteral("ignoreEos"), p.ignore_eos);
  s.endGroup();
}

void MainWindow::closeEvent(QCloseEvent* event) {
  if (persist_) writeSettings();
  event->accept();
}
