// The engine settings panel in the window on the demo model: a change says
// it needs a reload, the reload asks first (a QMessageBox found and
// answered here), the engine reloads with the new configuration and the
// same model; a value the engine rejects shows its validation error and the
// old engine keeps running. The backend selector lists every backend this
// build knows (an unavailable one disabled, its tooltip the reason) and the
// CUDA knobs are enabled only when the selection runs on CUDA.
#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFileInfo>
#include <QLabel>
#include <QMessageBox>
#include <QPushButton>
#include <QSignalSpy>
#include <QSpinBox>
#include <QStandardItemModel>
#include <QStandardPaths>
#include <QStyleOptionComboBox>
#include <QtTest>

#include "brisk/sysinfo.h"
#include "ui/engine_controller.h"
#include "ui/engine_settings_panel.h"
#include "ui/format.h"
#include "ui/main_window.h"
#include "ui/playground_view.h"

namespace {
constexpr int kTimeoutMs = 60000;
}

class TestEngineSettings : public QObject {
  Q_OBJECT

 private:
  // The confirmation box, once it is up; answers it with `button`.
  bool answerConfirmation(QMessageBox::StandardButton button, QString* informative = nullptr);
  template <class T>
  T* field(const char* name) {
    return window_->engineSettings()->findChild<T*>(QString::fromLatin1(name));
  }

  MainWindow* window_ = nullptr;

 private Q_SLOTS:
  void initTestCase();
  void cleanupTestCase();
  void showsTheRunningConfiguration();
  void precisionSelectorsHoldWhatThisVersionHas();
  void backendSelectorListsEveryBackend();
  void cudaKnobsFollowTheBackend();
  void choicesFitTheirFieldsAt1280();
  void changeSaysItNeedsAReload();
  void cancelKeepsTheEngine();
  void reloadAppliesMaxNumSeqs();
  void reloadAppliesPolicyAndBudget();
  void rejectedValueShowsEngineError();
  void asStoredNamesTheFilesPrecision();
  void asStoredKnownWhenTheFirstLoadConverts();
  void w8a8SaysWhichPathRunsHere();
  void oneBlockIsSingular();
  void describeChanges();
  void checkboxesAreNamedByTheirRow();
};

void TestEngineSettings::initTestCase() {
  QStandardPaths::setTestModeEnabled(true);
  window_ = new MainWindow(/*persistState=*/false);
  window_->show();
  QVERIFY(QTest::qWaitForWindowExposed(window_));
  QSignalSpy loaded(window_->controller(), &EngineController::modelLoaded);
  window_->loadDemoModel();
  QTRY_VERIFY_WITH_TIMEOUT(loaded.count() > 0, kTimeoutMs);
  window_->showEngineSettings();
}

void TestEngineSettings::cleanupTestCase() {
  delete window_;
  window_ = nullptr;
}

bool TestEngineSettings::answerConfirmation(QMessageBox::StandardButton button, QString* informative) {
  QMessageBox* box = nullptr;
  if (!QTest::qWaitFor(
          [&] {
            box = window_->findChild<QMessageBox*>(QStringLiteral("reloadConfirmBox"));
            return box && box->isVisible();
          },
          5000))
    return false;
  if (informative) *informative = box->informativeText();
  QAbstractButton* b = box->button(button);
  if (!b) return false;
  QTest::mouseClick(b, Qt::LeftButton);
  return QTest::qWaitFor(
      [&] { return !window_->findChild<QMessageBox*>(QStringLiteral("reloadConfirmBox")); }, 5000);
}

void TestEngineSettings::showsTheRunningConfiguration() {
  EngineSettingsPanel* panel = window_->engineSettings();
  EngineController* c = window_->controller();
  QVERIFY(panel->isVisible());
  QVERIFY(!panel->isDirty());
  QVERIFY(!panel->reloadButton()->isEnabled());
  QCOMPARE(field<QSpinBox>("settingsMaxSeqs")->value(), c->engineConfig().max_num_seqs);
  QCOMPARE(field<QSpinBox>("settingsMaxBatchedTokens")->value(), c->engineConfig().max_num_batched_tokens);
  QCOMPARE(field<QComboBox>("settingsBlockSize")->currentData().toInt(), c->engineConfig().block_size);
  QCOMPARE(field<QComboBox>("settingsBackend")->currentData().toString(),
           QString::fromStdString(c->engineConfig().backend));
  QCOMPARE(field<QCheckBox>("settingsCudaGraphs")->isChecked(), c->engineConfig().cuda_graphs);
  QCOMPARE(field<QCheckBox>("settingsDependentLaunch")->isChecked(), c->engineConfig().dependent_launch);
  QCOMPARE(field<QCheckBox>("settingsFusedRope")->isChecked(), c->engineConfig().fused_rope);
  QCOMPARE(field<QCheckBox>("settingsFp8FastAccum")->isChecked(), c->engineConfig().fp8_fast_accum);
  QCOMPARE(field<QCheckBox>("settingsSplitMerge")->isChecked(), c->engineConfig().split_merge_in_kernel);
  QCOMPARE(field<QCheckBox>("settingsL2Prefetch")->isChecked(), c->engineConfig().l2_prefetch);
  QCOMPARE(field<QCheckBox>("settingsPersistentDecode")->isChecked(), c->engineConfig().persistent_decode);
  QCOMPARE(field<QDoubleSpinBox>("settingsGpuMemoryUtilization")->value(),
           c->engineConfig().gpu_memory_utilization);
  QCOMPARE(panel->config().model, std::string("demo"));
}

void TestEngineSettings::precisionSelectorsHoldWhatThisVersionHas() {
  EngineSettingsPanel* panel = window_->engineSettings();
  auto* weights = field<QComboBox>("settingsWeightPrecision");
  auto* kv = field<QComboBox>("settingsKvPrecision");
  auto* prefix = field<QCheckBox>("settingsPrefixCaching");
  auto* backend = field<QComboBox>("settingsBackend");
  QCOMPARE(backend->count(), 1 + int(brisk::list_backends().size()));  // auto, then every backend
  // as stored, F32, F16, BF16, Q8_0 (and F32 FMA), INT8, INT8 F32 FMA, INT8 W8A8, FP8 E4M3 (and
  // F32 FMA), FP8 E5M2 (and F32 FMA)
  QCOMPARE(weights->count(), 13);
  QCOMPARE(weights->currentText(), QStringLiteral("As stored (F32)"));  // the demo model's weights
  QCOMPARE(kv->count(), 5);
  QCOMPARE(kv->currentText(), QStringLiteral("F32"));
  QVERIFY(prefix->isChecked());
  // The W8A8 entry is INT8 weights plus INT8 activations.
  weights->setCurrentIndex(weights->findText(QStringLiteral("INT8 W8A8")));
  kv->setCurrentIndex(kv->findText(QStringLiteral("FP8 E4M3")));
  prefix->setChecked(false);
  const brisk::EngineConfig c = panel->config();
  QCOMPARE(c.weight_dtype, std::string("int8"));
  QVERIFY(c.int8_activations);
  QCOMPARE(c.kv_dtype, std::string("fp8-e4m3"));
  QVERIFY(!c.enable_prefix_caching);
  QVERIFY(c.validate().empty());
  const QString note = field<QLabel>("settingsNote")->text();
  QVERIFY2(note.contains(QStringLiteral("weights auto → int8+w8a8")), qPrintable(note));
  QVERIFY2(note.contains(QStringLiteral("KV cache f32 → fp8-e4m3")), qPrintable(note));
  QVERIFY2(note.contains(QStringLiteral("prefix caching on → off")), qPrintable(note));
  panel->revert();
  QVERIFY(!panel->isDirty());
  QCOMPARE(panel->config().weight_dtype, std::string("auto"));
  QVERIFY(!panel->config().int8_activations);
  // The FMA entry is INT8 weights widened to F32 (the W8A24 A/B), and a
  // config holding it selects it again.
  weights->setCurrentIndex(weights->findText(QStringLiteral("INT8, F32 FMA")));
  const brisk::EngineConfig f = panel->config();
  QCOMPARE(f.weight_dtype, std::string("int8"));
  QVERIFY(f.int8_fma && !f.int8_activations);
  QVERIFY2(field<QLabel>("settingsNote")->text().contains(QStringLiteral("weights auto → int8+fma")),
           qPrintable(field<QLabel>("settingsNote")->text()));
  panel->revert();
  QVERIFY(!panel->config().int8_fma);
  panel->setConfig(f);
  QCOMPARE(weights->currentText(), QStringLiteral("INT8, F32 FMA"));
  // Q8_0's FMA entry is the same knob (the 16-bit integer dot-product A/B).
  weights->setCurrentIndex(weights->findText(QStringLiteral("Q8_0, F32 FMA")));
  const brisk::EngineConfig q8 = panel->config();
  QCOMPARE(q8.weight_dtype, std::string("q8_0"));
  QVERIFY(q8.int8_fma && !q8.fp8_fma && !q8.int8_activations);
  panel->setConfig(q8);
  QCOMPARE(weights->currentText(), QStringLiteral("Q8_0, F32 FMA"));
  // The FP8 FMA entries set fp8_fma (the BF16 dot-product A/B), not int8_fma.
  weights->setCurrentIndex(weights->findText(QStringLiteral("FP8 E4M3, F32 FMA")));
  const brisk::EngineConfig g = panel->config();
  QCOMPARE(g.weight_dtype, std::string("fp8-e4m3"));
  QVERIFY(g.fp8_fma && !g.int8_fma && !g.int8_activations);
  weights->setCurrentIndex(weights->findText(QStringLiteral("FP8 E4M3")));
  QVERIFY(!panel->config().fp8_fma);
  panel->setConfig(g);
  QCOMPARE(weights->currentText(), QStringLiteral("FP8 E4M3, F32 FMA"));
  // "As stored" keeps the knob the engine runs with (a model stored as FP8,
  // started with --fp8-fma): nothing in the menu would otherwise carry it.
  brisk::EngineConfig stored = g;
  stored.weight_dtype = "auto";
  panel->setConfig(stored);
  QVERIFY(weights->currentText().startsWith(QStringLiteral("As stored")));
  QVERIFY(panel->config().fp8_fma);
}

void TestEngineSettings::backendSelectorListsEveryBackend() {
  auto* backend = field<QComboBox>("settingsBackend");
  auto* model = qobject_cast<QStandardItemModel*>(backend->model());
  QVERIFY(model);
  QCOMPARE(backend->itemData(0).toString(), QStringLiteral("auto"));
  const QString resolved = QString::fromStdString(brisk::resolve_backend("auto")).toUpper();
  QVERIFY2(backend->itemText(0).contains(resolved), qPrintable(backend->itemText(0)));
  int cpu = -1, cuda = -1;
  for (const brisk::BackendStatus& b : brisk::list_backends()) {
    const int i = backend->findData(QString::fromStdString(b.name));
    QVERIFY2(i > 0, b.name.c_str());
    QCOMPARE(model->item(i)->isEnabled(), b.available);
    if (!b.available) {
      const QString tip = backend->itemData(i, Qt::ToolTipRole).toString();
      QVERIFY2(!b.reason.empty() && tip.contains(QString::fromStdString(b.reason)), qPrintable(tip));
    }
    if (b.name == "cpu") cpu = i;
    if (b.name == "cuda") cuda = i;
  }
  QVERIFY(cpu > 0);
  QVERIFY(model->item(cpu)->isEnabled());
  QVERIFY2(cuda > 0, "cuda is listed, available or not");
}

void TestEngineSettings::cudaKnobsFollowTheBackend() {
  EngineSettingsPanel* panel = window_->engineSettings();
  auto* backend = field<QComboBox>("settingsBackend");
  auto* graphs = field<QCheckBox>("settingsCudaGraphs");
  auto* dependent = field<QCheckBox>("settingsDependentLaunch");
  auto* fused = field<QCheckBox>("settingsFusedDecode");
  auto* rope = field<QCheckBox>("settingsFusedRope");
  auto* fast = field<QCheckBox>("settingsFp8FastAccum");
  auto* merge = field<QCheckBox>("settingsSplitMerge");
  auto* prefetch = field<QCheckBox>("settingsL2Prefetch");
  auto* persistent = field<QCheckBox>("settingsPersistentDecode");
  auto* memory = field<QDoubleSpinBox>("settingsGpuMemoryUtilization");
  backend->setCurrentIndex(backend->findData(QStringLiteral("cpu")));
  // On the CPU the CUDA rows are hidden, not greyed with a checked "On".
  for (QWidget* w : std::initializer_list<QWidget*>{graphs, dependent, fused, rope, fast, merge, prefetch,
                                                    persistent, memory})
    QVERIFY2(!w->isVisibleTo(panel), qPrintable(w->objectName()));
  QVERIFY(field<QComboBox>("settingsWeightPrecision")->isVisibleTo(panel));
  QVERIFY(!graphs->isEnabled());
  QVERIFY(!dependent->isEnabled());
  QVERIFY(!rope->isEnabled());
  QVERIFY(!fast->isEnabled());
  QVERIFY(!merge->isEnabled());
  QVERIFY(!prefetch->isEnabled());
  QVERIFY(!persistent->isEnabled());
  QVERIFY(!memory->isEnabled());
  // Selected programmatically (the user cannot pick it where it is unavailable): the knobs come on.
  backend->setCurrentIndex(backend->findData(QStringLiteral("cuda")));
  for (QWidget* w : std::initializer_list<QWidget*>{graphs, dependent, fused, rope, fast, merge, prefetch,
                                                    persistent, memory})
    QVERIFY2(w->isVisibleTo(panel), qPrintable(w->objectName()));
  QVERIFY(graphs->isEnabled());
  QVERIFY(dependent->isEnabled());
  QVERIFY(memory->isEnabled());
  // The RoPE fold, the L2 prefetch and the persistent decode kernel are part of fused decode: they follow
  // that box.
  QVERIFY(fused->isChecked());
  QVERIFY(rope->isEnabled());
  QVERIFY(prefetch->isEnabled());
  QVERIFY(persistent->isEnabled());
  fused->setChecked(false);
  QVERIFY(!rope->isEnabled());
  QVERIFY(!prefetch->isEnabled());
  QVERIFY(!persistent->isEnabled());
  fused->setChecked(true);
  QVERIFY(rope->isEnabled());
  QVERIFY(prefetch->isEnabled());
  QVERIFY(persistent->isEnabled());
  rope->setChecked(true);
  QVERIFY(fast->isEnabled());
  QVERIFY(fast->isChecked());  // on by default (measured on an H100)
  fast->setChecked(false);
  QVERIFY(merge->isEnabled());
  merge->setChecked(true);
  QVERIFY(!prefetch->isChecked());  // off by default (not yet measured)
  prefetch->setChecked(true);
  QVERIFY(!persistent->isChecked());  // off by default (not yet measured)
  persistent->setChecked(true);
  graphs->setChecked(false);
  dependent->setChecked(false);
  memory->setValue(0.5);
  const brisk::EngineConfig c = panel->config();
  QCOMPARE(c.backend, std::string("cuda"));
  QVERIFY(!c.cuda_graphs);
  QVERIFY(!c.dependent_launch);
  QVERIFY(c.fused_rope);
  QVERIFY(c.fused_decode);
  QVERIFY(!c.fp8_fast_accum);
  QVERIFY(c.split_merge_in_kernel);
  QVERIFY(c.l2_prefetch);
  QVERIFY(c.persistent_decode);
  QCOMPARE(c.gpu_memory_utilization, 0.5);
  QVERIFY(c.validate().empty());
  const QString note = field<QLabel>("settingsNote")->text();
  QVERIFY2(note.contains(QStringLiteral("CUDA graphs on → off")), qPrintable(note));
  QVERIFY2(note.contains(QStringLiteral("dependent launch on → off")), qPrintable(note));
  QVERIFY2(note.contains(QStringLiteral("fused RoPE off → on")), qPrintable(note));
  QVERIFY2(note.contains(QStringLiteral("FP8 fast accumulation on → off")), qPrintable(note));
  QVERIFY2(note.contains(QStringLiteral("split merge in kernel off → on")), qPrintable(note));
  QVERIFY2(note.contains(QStringLiteral("L2 weight prefetch off → on")), qPrintable(note));
  QVERIFY2(note.contains(QStringLiteral("persistent decode off → on")), qPrintable(note));
  QVERIFY2(note.contains(QStringLiteral("GPU memory utilization 0.90 → 0.50")), qPrintable(note));
  // An explicit KV budget leaves nothing for the utilization to size.
  auto* mode = field<QComboBox>("settingsBudgetMode");
  mode->setCurrentIndex(mode->findText(QStringLiteral("Blocks")));
  QVERIFY(!memory->isEnabled());
  QVERIFY(graphs->isEnabled());
  panel->revert();
  QVERIFY(!panel->isDirty());
  QCOMPARE(panel->config().backend, window_->controller()->engineConfig().backend);
  QCOMPARE(graphs->isEnabled(), brisk::resolve_backend(panel->config().backend) == "cuda");
}

// Every choice reads whole in its closed combo box in a 1280 × 800 window,
// with the CUDA rows (whose labels are the widest) shown and hidden.
void TestEngineSettings::choicesFitTheirFieldsAt1280() {
  const QSize before = window_->size();
  window_->resize(1280, 800);
  window_->resetLayout();
  auto* backend = field<QComboBox>("settingsBackend");
  const int original = backend->currentIndex();
  QStringList cut;
  for (const char* b : {"cpu", "cuda"}) {
    backend->setCurrentIndex(backend->findData(QString::fromLatin1(b)));
    QCoreApplication::processEvents();
    for (const char* name :
         {"settingsBackend", "settingsWeightPrecision", "settingsKvPrecision", "settingsPolicy"}) {
      auto* combo = field<QComboBox>(name);
      QStyleOptionComboBox opt;
      opt.initFrom(combo);
      const QRect text =
          combo->style()->subControlRect(QStyle::CC_ComboBox, &opt, QStyle::SC_ComboBoxEditField, combo);
      for (int i = 0; i < combo->count(); ++i) {
        const int need = combo->fontMetrics().horizontalAdvance(combo->itemText(i));
        if (need > text.width())
          cut << QStringLiteral("backend %1: '%2' needs %3 px of %4's %5")
                     .arg(QLatin1String(b), combo->itemText(i))
                     .arg(need)
                     .arg(QLatin1String(name))
                     .arg(text.width());
      }
    }
  }
  QVERIFY2(cut.isEmpty(), qPrintable(cut.join(QStringLiteral("; "))));
  backend->setCurrentIndex(original);
  window_->resize(before);
  window_->resetLayout();
}

void TestEngineSettings::changeSaysItNeedsAReload() {
  EngineSettingsPanel* panel = window_->engineSettings();
  auto* seqs = field<QSpinBox>("settingsMaxSeqs");
  auto* note = field<QLabel>("settingsNote");
  const int before = seqs->value();
  seqs->setValue(before + 1);
  QVERIFY(panel->isDirty());
  QVERIFY(note->isVisible());
  QVERIFY2(note->text().contains(QStringLiteral("reload")), qPrintable(note->text()));
  QVERIFY(note->text().contains(QStringLiteral("max sequences %1 → %2").arg(before).arg(before + 1)));
  QVERIFY(panel->reloadButton()->isEnabled());
  QTest::mouseClick(panel->revertButton(), Qt::LeftButton);
  QCOMPARE(seqs->value(), before);
  QVERIFY(!panel->isDirty());
  QVERIFY(!note->isVisible());
}

void TestEngineSettings::cancelKeepsTheEngine() {
  EngineController* c = window_->controller();
  QSignalSpy started(c, &EngineController::loadStarted);
  field<QSpinBox>("settingsMaxSeqs")->setValue(3);
  QTest::mouseClick(window_->engineSettings()->reloadButton(), Qt::LeftButton);
  QVERIFY(answerConfirmation(QMessageBox::Cancel));
  QTest::qWait(50);
  QCOMPARE(started.count(), 0);
  QVERIFY(window_->engineSettings()->isDirty());  // the edit stays for later
  window_->engineSettings()->revert();
}

void TestEngineSettings::reloadAppliesMaxNumSeqs() {
  EngineController* c = window_->controller();
  EngineSettingsPanel* panel = window_->engineSettings();
  const std::string model = c->engineConfig().model;
  const int want = c->engineConfig().max_num_seqs == 7 ? 9 : 7;
  QSignalSpy loaded(c, &EngineController::modelLoaded);
  QSignalSpy failed(c, &EngineController::loadFailed);
  field<QSpinBox>("settingsMaxSeqs")->setValue(want);
  QTest::mouseClick(panel->reloadButton(), Qt::LeftButton);
  QString informative;
  QVERIFY(answerConfirmation(QMessageBox::Yes, &informative));
  QVERIFY2(informative.contains(QStringLiteral("max sequences")), qPrintable(informative));
  QTRY_VERIFY_WITH_TIMEOUT(loaded.count() + failed.count() > 0, kTimeoutMs);
  if (!failed.isEmpty()) QFAIL(qPrintable(failed.first().at(0).toString()));
  QCOMPARE(c->engineConfig().max_num_seqs, want);
  QCOMPARE(c->engineConfig().model, model);  // the same model, reloaded
  QVERIFY(!panel->isDirty());
  QCOMPARE(panel->applied().max_num_seqs, want);
  // And it runs.
  PlaygroundView* view = window_->playground();
  QSignalSpy finished(c, &EngineController::requestFinished);
  brisk::SamplingParams p = view->params();
  p.max_tokens = 4;
  view->setParams(p);
  view->setPrompt(QStringLiteral("Hello"));
  view->requestGenerate();
  QTRY_VERIFY_WITH_TIMEOUT(finished.count() > 0, kTimeoutMs);
  QCOMPARE(finished.first().at(2).value<GenerationStats>().outputTokens, 4);
}

void TestEngineSettings::reloadAppliesPolicyAndBudget() {
  EngineController* c = window_->controller();
  EngineSettingsPanel* panel = window_->engineSettings();
  QSignalSpy loaded(c, &EngineController::modelLoaded);
  auto* policy = field<QComboBox>("settingsPolicy");
  policy->setCurrentIndex(policy->findData(int(brisk::SchedulerPolicy::Static)));
  auto* mode = field<QComboBox>("settingsBudgetMode");
  mode->setCurrentIndex(mode->findText(QStringLiteral("Blocks")));
  field<QSpinBox>("settingsBudget")->setValue(512);
  auto* block = field<QComboBox>("settingsBlockSize");
  block->setCurrentIndex(block->findData(32));
  QCOMPARE(panel->changes().size(), 3);
  panel->requestReload();
  QVERIFY(answerConfirmation(QMessageBox::Yes));
  QTRY_VERIFY_WITH_TIMEOUT(loaded.count() > 0, kTimeoutMs);
  QCOMPARE(c->engineConfig().policy, brisk::SchedulerPolicy::Static);
  QCOMPARE(c->engineConfig().num_kv_blocks, int64_t(512));
  QCOMPARE(c->engineConfig().block_size, 32);
  QVERIFY(c->kvBlocksTotal() >= 512);
  QVERIFY(!panel->isDirty());
}

void TestEngineSettings::rejectedValueShowsEngineError() {
  EngineController* c = window_->controller();
  EngineSettingsPanel* panel = window_->engineSettings();
  const brisk::EngineConfig before = c->engineConfig();
  QSignalSpy loaded(c, &EngineController::modelLoaded);
  QSignalSpy failed(c, &EngineController::loadFailed);
  // Each value is in range; together they break EngineConfig::validate().
  field<QSpinBox>("settingsMaxSeqs")->setValue(64);
  field<QSpinBox>("settingsMaxBatchedTokens")->setValue(16);
  panel->requestReload();
  QVERIFY(answerConfirmation(QMessageBox::Yes));
  QTRY_VERIFY_WITH_TIMEOUT(failed.count() > 0 || loaded.count() > 0, kTimeoutMs);
  QCOMPARE(loaded.count(), 0);
  const QString error = failed.first().at(0).toString();
  QVERIFY2(error.contains(QStringLiteral("max_num_batched_tokens")), qPrintable(error));
  // The panel shows the engine's words and keeps the edit for fixing.
  QVERIFY2(panel->errorText().contains(error), qPrintable(panel->errorText()));
  QVERIFY(field<QLabel>("settingsError")->isVisible());
  QVERIFY(panel->isDirty());
  // The error box is modeless: found and closed, the window goes on.
  QTRY_VERIFY(window_->findChild<QMessageBox*>(QStringLiteral("loadErrorBox")));
  window_->findChild<QMessageBox*>(QStringLiteral("loadErrorBox"))->accept();
  QVERIFY(c->hasModel());
  QCOMPARE(c->engineConfig().max_num_seqs, before.max_num_seqs);
  QCOMPARE(c->engineConfig().max_num_batched_tokens, before.max_num_batched_tokens);

  // Fixing it: the reload goes through and the error goes away.
  field<QSpinBox>("settingsMaxBatchedTokens")->setValue(128);
  panel->requestReload();
  QVERIFY(answerConfirmation(QMessageBox::Yes));
  QTRY_VERIFY_WITH_TIMEOUT(loaded.count() > 0, kTimeoutMs);
  QCOMPARE(c->engineConfig().max_num_seqs, 64);
  QCOMPARE(c->engineConfig().max_num_batched_tokens, 128);
  QVERIFY(panel->errorText().isEmpty());
}

// The "As stored" entry names what the file holds, not what the loaded
// engine converted it to: after a reload as INT8 W8A8 the demo model (F32)
// is still stored as F32.
void TestEngineSettings::asStoredNamesTheFilesPrecision() {
  EngineController* c = window_->controller();
  EngineSettingsPanel* panel = window_->engineSettings();
  auto* weights = field<QComboBox>("settingsWeightPrecision");
  QSignalSpy loaded(c, &EngineController::modelLoaded);
  weights->setCurrentIndex(weights->findData(QStringLiteral("int8+w8a8")));
  panel->requestReload();
  QVERIFY(answerConfirmation(QMessageBox::Yes));
  QTRY_VERIFY_WITH_TIMEOUT(loaded.count() > 0, kTimeoutMs);
  QVERIFY(c->engineConfig().int8_activations);
  QCOMPARE(weights->itemText(0), QStringLiteral("As stored (F32)"));
  // Back to the file's own weights for the cases after this one.
  weights->setCurrentIndex(0);
  panel->requestReload();
  QVERIFY(answerConfirmation(QMessageBox::Yes));
  QTRY_VERIFY_WITH_TIMEOUT(loaded.count() > 1, kTimeoutMs);
  QCOMPARE(weights->itemText(0), QStringLiteral("As stored (F32)"));
}

// A model whose first load in this process already converts (the weights
// setting is remembered across sessions) still names its stored precision.
void TestEngineSettings::asStoredKnownWhenTheFirstLoadConverts() {
  const QString path = QStringLiteral(BRISK_SHARED_MODELS "/stories260K/stories260K.gguf");
  if (!QFileInfo::exists(path)) QSKIP(qPrintable(QStringLiteral("no %1").arg(path)));
  EngineController c;
  QSignalSpy loaded(&c, &EngineController::modelLoaded);
  QSignalSpy failed(&c, &EngineController::loadFailed);
  brisk::EngineConfig config;
  config.model = path.toStdString();
  config.weight_dtype = "int8";
  config.threads = 1;
  c.loadModel(config);
  QTRY_VERIFY_WITH_TIMEOUT(loaded.count() + failed.count() > 0, kTimeoutMs);
  if (!failed.isEmpty()) QFAIL(qPrintable(failed.first().at(0).toString()));
  EngineSettingsPanel panel;
  panel.setApplied(c.engineConfig(), c.kvBlocksTotal(), c.modelInfo());
  auto* weights = panel.findChild<QComboBox*>(QStringLiteral("settingsWeightPrecision"));
  QCOMPARE(weights->itemText(0), QStringLiteral("As stored (F32)"));
}

// The W8A8 entry claims no instruction set this CPU lacks, and its tooltip
// says which code runs it here.
void TestEngineSettings::w8a8SaysWhichPathRunsHere() {
  brisk::ProbeOptions o;
  o.measure = false;
  o.gpu = false;
  const brisk::SystemInfo sys = brisk::probe_system(o);
  auto* weights = field<QComboBox>("settingsWeightPrecision");
  const int i = weights->findData(QStringLiteral("int8+w8a8"));
  QVERIFY(i >= 0);
  const QString label = weights->itemText(i);
  const QString tip = weights->itemData(i, Qt::ToolTipRole).toString();
  if (sys.kernel_isa != "avx512") QVERIFY2(!label.contains(QStringLiteral("VNNI")), qPrintable(label));
  if (sys.kernel_isa == "avx2")
    QVERIFY2(tip.contains(QStringLiteral("AVX2")) && tip.contains(QStringLiteral("no AVX-512 VNNI")),
             qPrintable(tip));
  else if (sys.kernel_isa == "avx512")
    QVERIFY2(tip.contains(QStringLiteral("AVX-512 VNNI")), qPrintable(tip));
  else
    QVERIFY2(tip.contains(QStringLiteral("scalar")), qPrintable(tip));
}

void TestEngineSettings::oneBlockIsSingular() {
  EngineSettingsPanel* panel = window_->engineSettings();
  auto* mode = field<QComboBox>("settingsBudgetMode");
  auto* budget = field<QSpinBox>("settingsBudget");
  mode->setCurrentIndex(mode->findText(QStringLiteral("Blocks")));
  budget->setValue(1);
  QCOMPARE(budget->text(), QStringLiteral("1 block"));
  budget->setValue(2);
  QCOMPARE(budget->text(), QStringLiteral("2 blocks"));
  panel->revert();
  brisk::EngineConfig a, b;
  b.num_kv_blocks = 1;
  QCOMPARE(EngineSettingsPanel::describeChanges(a, b),
           QStringList{QStringLiteral("KV budget auto → 1 block")});
}

void TestEngineSettings::describeChanges() {
  brisk::EngineConfig a, b;
  QVERIFY(EngineSettingsPanel::describeChanges(a, b).isEmpty());
  b.kv_cache_bytes = 64 << 20;
  b.threads = 2;
  b.enable_chunked_prefill = false;
  QCOMPARE(EngineSettingsPanel::describeChanges(a, b),
           (QStringList{QStringLiteral("KV budget auto → 64.0 MiB"),
                        QStringLiteral("chunked prefill on → off"), QStringLiteral("threads auto → 2")}));
  brisk::EngineConfig c;
  c.backend = "cuda";
  c.cuda_graphs = false;
  c.gpu_memory_utilization = 0.8;
  QCOMPARE(EngineSettingsPanel::describeChanges(a, c),
           (QStringList{QStringLiteral("backend %1 → CUDA").arg(fmt::backendName("auto")),
                        QStringLiteral("CUDA graphs on → off"),
                        QStringLiteral("GPU memory utilization 0.90 → 0.80")}));
  c = a;
  c.gpu_memory_utilization = 0.901;  // below the spin box's precision: no change
  QVERIFY(EngineSettingsPanel::describeChanges(a, c).isEmpty());
  // "auto" reads as the combo says it ("Auto (CPU)"), not "AUTO".
  c = a;
  c.backend = "cpu";
  QCOMPARE(EngineSettingsPanel::describeChanges(a, c),
           QStringList{QStringLiteral("backend Auto (%1) → CPU")
                           .arg(QString::fromStdString(brisk::resolve_backend("auto")).toUpper())});
}

// An unticked box read "☐ On": the boxes carry no text, their row's label
// names them (for screen readers too).
void TestEngineSettings::checkboxesAreNamedByTheirRow() {
  for (const char* name :
       {"settingsCudaGraphs", "settingsFusedDecode", "settingsChunkedPrefill", "settingsPrefixCaching"}) {
    auto* box = field<QCheckBox>(name);
    QVERIFY2(box, name);
    QVERIFY2(box->text().isEmpty(), qPrintable(box->text()));
    QVERIFY2(!box->accessibleName().isEmpty() && !box->accessibleName().contains(QLatin1Char('&')),
             qPrintable(box->accessibleName()));
  }
  QCOMPARE(field<QCheckBox>("settingsCudaGraphs")->accessibleName(), QStringLiteral("CUDA graphs"));
}

QTEST_MAIN(TestEngineSettings)
#include "test_engine_settings.moc"
