#include "engine_settings_panel.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QPushButton>
#include <QScrollArea>
#include <QSpinBox>
#include <QStandardItemModel>
#include <QThread>
#include <QVBoxLayout>
#include <cmath>

#include "backend_combo.h"
#include "brisk/sysinfo.h"
#include "format.h"

namespace {
enum BudgetMode { Auto, Blocks, MiB };
constexpr int64_t kMiB = 1024 * 1024;
// Weight precisions the menu offers: the EngineConfig value, and for INT8
// and FP8 which arithmetic goes with it: "" the default (INT8: W8A24 on
// AVX-512 VNNI; FP8: BF16 dot products on AVX-512 BF16 + VBMI), "+w8a8" INT8
// activations (AVX-512 VNNI or AVX2 integer dot products, whichever the CPU
// has: the INT8 entries' tooltips say which runs here), "+fma" weights
// widened to F32 (int8_fma / fp8_fma).
struct WeightChoice {
  const char* label;
  const char* dtype;
  const char* suffix;
};
const WeightChoice kWeightChoices[] = {
    {"As stored", "auto", ""},
    {"F32", "f32", ""},
    {"F16", "f16", ""},
    {"BF16", "bf16", ""},
    {"Q8_0 (GGUF)", "q8_0", ""},
    {"Q8_0, F32 FMA", "q8_0", "+fma"},
    {"INT8 per channel", "int8", ""},
    {"INT8, F32 FMA", "int8", "+fma"},
    {"INT8 W8A8", "int8", "+w8a8"},
    {"FP8 E4M3", "fp8-e4m3", ""},
    {"FP8 E4M3, F32 FMA", "fp8-e4m3", "+fma"},
    {"FP8 E5M2", "fp8-e5m2", ""},
    {"FP8 E5M2, F32 FMA", "fp8-e5m2", "+fma"},
};
const std::pair<const char*, const char*> kKvChoices[] = {
    {"F32", "f32"}, {"F16", "f16"}, {"BF16", "bf16"}, {"FP8 E4M3", "fp8-e4m3"}, {"INT8", "int8"}};

QString weightKey(const brisk::EngineConfig& c) {
  const bool fp8 = c.weight_dtype.rfind("fp8", 0) == 0;
  return QString::fromStdString(c.weight_dtype) + (c.int8_activations ? QStringLiteral("+w8a8")
                                                   : fp8 ? (c.fp8_fma ? QStringLiteral("+fma") : QString())
                                                   : c.int8_fma ? QStringLiteral("+fma")
                                                                : QString());
}
}  // namespace

EngineSettingsPanel::EngineSettingsPanel(QWidget* parent) : QWidget(parent) {
  setObjectName(QStringLiteral("engineSettings"));
  auto* outer = new QVBoxLayout(this);
  outer->setContentsMargins(0, 0, 0, 0);
  auto* scroll = new QScrollArea(this);
  scroll->setWidgetResizable(true);
  scroll->setFrameShape(QFrame::NoFrame);
  scroll->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
  auto* body = new QWidget(scroll);
  auto* layout = new QVBoxLayout(body);
  auto* form = new QFormLayout;
  form_ = form;
  form->setFieldGrowthPolicy(QFormLayout::AllNonFixedFieldsGrow);
  form->setLabelAlignment(Qt::AlignRight | Qt::AlignVCenter);
  form->setRowWrapPolicy(QFormLayout::DontWrapRows);

  auto row = [&](const QString& label, QWidget* field, const QString& name, const QString& tip) {
    field->setObjectName(name);
    field->setToolTip(tip);
    auto* l = new QLabel(label, body);
    l->setBuddy(field);
    l->setToolTip(tip);
    // A checkbox carries no text of its own ("☐ On" read as on): the row's label names it.
    if (qobject_cast<QCheckBox*>(field))
      field->setAccessibleName(QString(label).remove(QLatin1Char('&')).remove(QLatin1Char(':')));
    form->addRow(l, field);
  };
  auto spin = [&](int lo, int hi) {
    auto* s = new QSpinBox(body);
    s->setRange(lo, hi);
    s->setKeyboardTracking(false);
    return s;
  };

  backend_ = new QComboBox(body);
  fillBackendCombo(backend_);
  row(tr("&Backend:"), backend_, QStringLiteral("settingsBackend"),
      tr("The backend that runs the model. Auto picks CUDA when a device is available, else the CPU. "
         "An unavailable backend is greyed out; its tooltip says why."));
  cudaGraphs_ = new QCheckBox(body);
  row(tr("CUDA &graphs:"), cudaGraphs_, QStringLiteral("settingsCudaGraphs"),
      tr("CUDA: replay each decode step from a graph captured per batch size instead of launching every "
         "kernel (an A/B knob: off shows the launch overhead)"));
  fusedDecode_ = new QCheckBox(body);
  row(tr("&Fused decode:"), fusedDecode_, QStringLiteral("settingsFusedDecode"),
      tr("CUDA: fold each RMSNorm, residual add and SwiGLU of a decode step into the GEMV beside it "
         "(an A/B knob: off runs them as kernels of their own)"));
  dependentLaunch_ = new QCheckBox(body);
  row(tr("&Dependent launch:"), dependentLaunch_, QStringLiteral("settingsDependentLaunch"),
      tr("CUDA (Hopper and later): start each decode kernel while the one before it finishes, loading its "
         "weights before it waits for its input (an A/B knob: off starts each kernel only after the last)"));
  fusedRope_ = new QCheckBox(body);
  row(tr("Fused &RoPE:"), fusedRope_, QStringLiteral("settingsFusedRope"),
      tr("CUDA, with fused decode: rotate q and k and write the KV cache (F32, F16 or BF16) in the q/k/v "
         "projection's epilogue (an A/B knob, off by default: no faster on an H100; off runs them as a "
         "kernel "
         "of their own)"));
  splitMerge_ = new QCheckBox(body);
  row(tr("In-kernel &merge:"), splitMerge_, QStringLiteral("settingsSplitMerge"),
      tr("CUDA: decode attention split over a long context merges its partitions in the attention kernel "
         "(an A/B knob, off by default: no faster on an H100; off merges them in a reduce kernel launched "
         "after it)"));
  l2Prefetch_ = new QCheckBox(body);
  row(tr("L2 weight &prefetch:"), l2Prefetch_, QStringLiteral("settingsL2Prefetch"),
      tr("CUDA, with fused decode: after each layer's q/k/v projection, a small kernel prefetches the "
         "weights read next (wo, then the first rows of gate and up, up to half the GPU's L2 cache) into L2 "
         "while RoPE and attention run. A hint: the arithmetic is unchanged (an A/B knob, off by default "
         "until measured on a GPU)"));
  persistentDecode_ = new QCheckBox(body);
  row(tr("&One-launch decode:"), persistentDecode_, QStringLiteral("settingsPersistentDecode"),
      tr("CUDA, with fused decode: a decode step of one sequence (F16 or BF16 weights, F32/F16/BF16 KV "
         "cache) runs all of its layers in one persistent kernel launch: every multiprocessor stays resident "
         "and the phases of a layer (q/k/v projection, RoPE + KV write + attention, wo, gate/up + SwiGLU, "
         "down) are separated by grid-wide barriers instead of kernel boundaries, each block prefetching its "
         "next phase's weight rows into L2 before it waits. The same arithmetic up to summation order (an "
         "A/B knob, off by default until measured on a GPU)"));
  fp8FastAccum_ = new QCheckBox(body);
  row(tr("FP8 fast &accum.:"), fp8FastAccum_, QStringLiteral("settingsFp8FastAccum"),
      tr("CUDA, FP8 weights: GEMMs keep their partial sums in the tensor cores' own precision over the whole "
         "row instead of promoting them to F32 every few steps (on by default: on an H100 the prefill GEMMs "
         "ran 1.56x F16 with it, 1.38x without, for a relative error of 0.0250 against 0.0246)"));
  gpuMemory_ = new QDoubleSpinBox(body);
  gpuMemory_->setRange(0.05, 1.0);
  gpuMemory_->setSingleStep(0.05);
  gpuMemory_->setDecimals(2);
  gpuMemory_->setKeyboardTracking(false);
  row(tr("GPU &memory:"), gpuMemory_, QStringLiteral("settingsGpuMemoryUtilization"),
      tr("CUDA, KV budget Auto: the fraction of the device memory left free after the weights and "
         "workspace that the KV cache takes"));
  weights_ = new QComboBox(body);
  for (const WeightChoice& w : kWeightChoices)
    weights_->addItem(tr(w.label), QString::fromUtf8(w.dtype) + QString::fromUtf8(w.suffix));
  {
    // The INT8 entries run different code on different CPUs: each says which runs here.
    brisk::ProbeOptions probe;
    probe.measure = false;
    probe.gpu = false;
    const std::string isa = brisk::probe_system(probe).kernel_isa;
    weights_->setItemData(weights_->findData(QStringLiteral("int8")),
                          tr("INT8 weights, one scale per output channel. On this CPU: %1. On CUDA: "
                             "weights dequantized for the GEMMs.")
                              .arg(fmt::int8CpuPath(isa)),
                          Qt::ToolTipRole);
    weights_->setItemData(weights_->findData(QStringLiteral("int8+w8a8")),
                          tr("INT8 weights and INT8 activations (quantized per token). On this CPU: %1. "
                             "On CUDA: cuBLASLt INT8 GEMMs where the shapes allow.")
                              .arg(fmt::w8a8CpuPath(isa)),
                          Qt::ToolTipRole);
  }
  row(tr("&Weights:"), weights_, QStringLiteral("settingsWeightPrecision"),
      tr("Precision of the weight matrices. 'As stored' runs the file's own types; the others convert "
         "at load (INT8 and FP8 with one scale per output channel). INT8 on a CPU with AVX-512 VNNI "
         "rounds each activation row to 24-bit integers and uses integer dot products (about F32's "
         "error); 'F32 FMA' widens the weights to F32 instead; W8A8 quantizes activations to 8 bits "
         "per token (integer dot products with AVX-512 VNNI or AVX2). Embeddings and the classifier "
         "stay as stored. "
         "docs/BENCHMARKS.md lists each precision's speed and quality."));
  kvPrecision_ = new QComboBox(body);
  for (const auto& [label, dtype] : kKvChoices) kvPrecision_->addItem(tr(label), QString::fromUtf8(dtype));
  row(tr("KV &cache:"), kvPrecision_, QStringLiteral("settingsKvPrecision"),
      tr("Precision of the cached keys and values (FP8 and INT8 with one scale per token and head): "
         "lower precision fits more tokens in the same KV budget"));
  blockSize_ = new QComboBox(body);
  for (int b = 1; b <= 1024; b *= 2) blockSize_->addItem(fmt::quantity(b, tr("token"), tr("tokens")), b);
  row(tr("Block si&ze:"), blockSize_, QStringLiteral("settingsBlockSize"),
      tr("Tokens per KV-cache block (the paging unit): small blocks waste less memory, large "
         "ones mean shorter block tables"));

  auto* budgetRow = new QWidget(body);
  auto* bl = new QHBoxLayout(budgetRow);
  bl->setContentsMargins(0, 0, 0, 0);
  budgetMode_ = new QComboBox(budgetRow);
  budgetMode_->setObjectName(QStringLiteral("settingsBudgetMode"));
  budgetMode_->addItem(tr("Auto"), Auto);
  budgetMode_->addItem(tr("Blocks"), Blocks);
  budgetMode_->addItem(tr("MiB"), MiB);
  budget_ = spin(1, 1 << 30);
  budget_->setObjectName(QStringLiteral("settingsBudget"));
  bl->addWidget(budgetMode_);
  bl->addWidget(budget_, 1);
  row(tr("KV b&udget:"), budgetRow, QStringLiteral("settingsBudgetRow"),
      tr("Size of the KV cache: a number of blocks, or MiB of memory. Auto: enough for Max "
         "sequences full-context sequences, at most 1 GiB."));
  budgetMode_->setToolTip(budgetRow->toolTip());
  budget_->setToolTip(budgetRow->toolTip());

  maxSeqs_ = spin(1, 4096);
  row(tr("Max &sequences:"), maxSeqs_, QStringLiteral("settingsMaxSeqs"),
      tr("Most sequences in one engine step (the batch size limit)"));
  maxTokens_ = spin(1, 1 << 20);
  row(tr("Max batched &tokens:"), maxTokens_, QStringLiteral("settingsMaxBatchedTokens"),
      tr("Most tokens (prompt and generated) in one engine step; at least Max sequences"));
  chunked_ = new QCheckBox(body);
  row(tr("C&hunked prefill:"), chunked_, QStringLiteral("settingsChunkedPrefill"),
      tr("Chunked prefill: a long prompt is processed over several steps so running sequences "
         "keep decoding meanwhile (continuous policy)"));
  prefixCache_ = new QCheckBox(body);
  row(tr("Prefi&x caching:"), prefixCache_, QStringLiteral("settingsPrefixCaching"),
      tr("Reuse the cached KV blocks of the longest earlier prompt prefix instead of recomputing it "
         "(continuous policy)"));
  policy_ = new QComboBox(body);
  policy_->addItem(tr("Continuous"), int(brisk::SchedulerPolicy::Continuous));
  policy_->addItem(tr("Static"), int(brisk::SchedulerPolicy::Static));
  row(tr("Schedu&ling:"), policy_, QStringLiteral("settingsPolicy"),
      tr("Continuous: requests join and leave the batch at every step. Static: a batch runs "
         "until all its members finish (the A/B baseline)."));
  threads_ = spin(0, 1024);
  threads_->setSpecialValueText(tr("auto (%1)").arg(QThread::idealThreadCount()));
  row(tr("Th&reads:"), threads_, QStringLiteral("settingsThreads"),
      tr("CPU threads for the kernels; auto uses the physical cores"));
  maxLen_ = spin(0, 1 << 24);
  maxLen_->setSpecialValueText(tr("the model's"));
  row(tr("Max conte&xt:"), maxLen_, QStringLiteral("settingsMaxModelLen"),
      tr("Longest sequence (prompt and output) a request may use, in tokens; the model's "
         "context length by default"));
  layout->addLayout(form);

  current_ = new QLabel(body);
  current_->setObjectName(QStringLiteral("settingsCurrent"));
  current_->setWordWrap(true);
  layout->addWidget(current_);

  note_ = new QLabel(body);
  note_->setObjectName(QStringLiteral("settingsNote"));
  note_->setWordWrap(true);
  note_->setStyleSheet(
      QStringLiteral("QLabel { background: #fff4ce; color: #5c4400; border: 1px solid #e0c060;"
                     " border-radius: 4px; padding: 6px; }"));
  layout->addWidget(note_);
  error_ = new QLabel(body);
  error_->setObjectName(QStringLiteral("settingsError"));
  error_->setWordWrap(true);
  error_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  error_->setTextFormat(Qt::PlainText);
  error_->setStyleSheet(
      QStringLiteral("QLabel { background: #fde7e9; color: #8a1020; border: 1px solid #e8a0a8;"
                     " border-radius: 4px; padding: 6px; }"));
  layout->addWidget(error_);

  auto* buttons = new QHBoxLayout;
  reload_ = new QPushButton(tr("Reload with these settings…"), body);
  reload_->setObjectName(QStringLiteral("settingsReload"));
  reload_->setToolTip(tr("Reload the current model with the settings above (asks first)"));
  revert_ = new QPushButton(tr("Revert"), body);
  revert_->setObjectName(QStringLiteral("settingsRevert"));
  revert_->setToolTip(tr("Back to the settings the engine runs with"));
  buttons->addWidget(reload_);
  buttons->addWidget(revert_);
  buttons->addStretch(1);
  layout->addLayout(buttons);
  layout->addStretch(1);
  scroll->setWidget(body);
  outer->addWidget(scroll);

  // Narrow docks: the fields shrink with the panel instead of clipping it.
  for (QWidget* w :
       std::initializer_list<QWidget*>{backend_, weights_, kvPrecision_, blockSize_, policy_, budget_,
                                       maxSeqs_, maxTokens_, threads_, maxLen_, gpuMemory_})
    w->setMinimumWidth(64);
  budgetMode_->setMinimumWidth(56);
  for (QComboBox* c : {backend_, weights_, kvPrecision_, blockSize_, policy_})
    connect(c, &QComboBox::currentIndexChanged, this, &EngineSettingsPanel::onEdited);
  connect(budgetMode_, &QComboBox::currentIndexChanged, this, [this] {
    updateBudgetWidgets();
    onEdited();
  });
  for (QSpinBox* s : {budget_, maxSeqs_, maxTokens_, threads_, maxLen_})
    connect(s, &QSpinBox::valueChanged, this, &EngineSettingsPanel::onEdited);
  // "1 block", "2 blocks": the suffix follows the value (also while a config is shown).
  connect(budget_, &QSpinBox::valueChanged, this, &EngineSettingsPanel::updateBudgetWidgets);
  connect(chunked_, &QCheckBox::toggled, this, &EngineSettingsPanel::onEdited);
  connect(cudaGraphs_, &QCheckBox::toggled, this, &EngineSettingsPanel::onEdited);
  connect(fusedDecode_, &QCheckBox::toggled, this, &EngineSettingsPanel::onEdited);
  connect(dependentLaunch_, &QCheckBox::toggled, this, &EngineSettingsPanel::onEdited);
  connect(fusedRope_, &QCheckBox::toggled, this, &EngineSettingsPanel::onEdited);
  connect(splitMerge_, &QCheckBox::toggled, this, &EngineSettingsPanel::onEdited);
  connect(l2Prefetch_, &QCheckBox::toggled, this, &EngineSettingsPanel::onEdited);
  connect(persistentDecode_, &QCheckBox::toggled, this, &EngineSettingsPanel::onEdited);
  connect(fp8FastAccum_, &QCheckBox::toggled, this, &EngineSettingsPanel::onEdited);
  connect(fusedDecode_, &QCheckBox::toggled, this, &EngineSettingsPanel::updateBudgetWidgets);
  connect(gpuMemory_, &QDoubleSpinBox::valueChanged, this, &EngineSettingsPanel::onEdited);
  connect(prefixCache_, &QCheckBox::toggled, this, &EngineSettingsPanel::onEdited);
  connect(reload_, &QPushButton::clicked, this, &EngineSettingsPanel::requestReload);
  connect(revert_, &QPushButton::clicked, this, &EngineSettingsPanel::revert);

  setConfig(brisk::EngineConfig{});
}

void EngineSettingsPanel::showConfig(const brisk::EngineConfig& c) {
  loading_ = true;
  backend_->setCurrentIndex(std::max(0, backend_->findData(QString::fromStdString(c.backend))));
  cudaGraphs_->setChecked(c.cuda_graphs);
  fusedDecode_->setChecked(c.fused_decode);
  dependentLaunch_->setChecked(c.dependent_launch);
  fusedRope_->setChecked(c.fused_rope);
  splitMerge_->setChecked(c.split_merge_in_kernel);
  l2Prefetch_->setChecked(c.l2_prefetch);
  persistentDecode_->setChecked(c.persistent_decode);
  fp8FastAccum_->setChecked(c.fp8_fast_accum);
  gpuMemory_->setValue(c.gpu_memory_utilization);
  int bi = blockSize_->findData(c.block_size);
  if (bi < 0) {
    blockSize_->addItem(fmt::quantity(c.block_size, tr("token"), tr("tokens")), c.block_size);
    bi = blockSize_->count() - 1;
  }
  blockSize_->setCurrentIndex(bi);
  if (c.num_kv_blocks > 0) {
    budgetMode_->setCurrentIndex(budgetMode_->findData(Blocks));
    budget_->setValue(int(std::min<int64_t>(c.num_kv_blocks, budget_->maximum())));
  } else if (c.kv_cache_bytes > 0) {
    budgetMode_->setCurrentIndex(budgetMode_->findData(MiB));
    budget_->setValue(int(std::max<int64_t>(1, (c.kv_cache_bytes + kMiB - 1) / kMiB)));
  } else {
    budgetMode_->setCurrentIndex(budgetMode_->findData(Auto));
  }
  maxSeqs_->setValue(c.max_num_seqs);
  maxTokens_->setValue(c.max_num_batched_tokens);
  chunked_->setChecked(c.enable_chunked_prefill);
  prefixCache_->setChecked(c.enable_prefix_caching);
  weights_->setCurrentIndex(std::max(0, weights_->findData(weightKey(c))));
  kvPrecision_->setCurrentIndex(std::max(0, kvPrecision_->findData(QString::fromStdString(c.kv_dtype))));
  policy_->setCurrentIndex(policy_->findData(int(c.policy)));
  threads_->setValue(c.threads);
  maxLen_->setValue(c.max_model_len);
  updateBudgetWidgets();
  loading_ = false;
}

void EngineSettingsPanel::setConfig(const brisk::EngineConfig& config) {
  applied_ = config;
  showConfig(config);
  current_->setText(tr("No model loaded yet: these settings apply to the next load."));
  error_->clear();
  error_->hide();
  onEdited();
}

void EngineSettingsPanel::setApplied(const brisk::EngineConfig& config, int64_t kvBlocks,
                                     const brisk::ModelInfo& info) {
  applied_ = config;
  showConfig(config);
  // What the file stores, not what a conversion at load made of it. The label
  // names the type holding most bytes (short enough for a narrow dock); the tooltip all.
  const QString stored = fmt::storedPrecision(info);
  const QString main = stored.section(QStringLiteral(" + "), 0, 0);
  weights_->setItemText(0, info.tensors.empty() ? tr("As stored") : tr("As stored (%1)").arg(main));
  weights_->setItemData(
      0, info.tensors.empty() ? tr("The file's own types") : tr("The file's own types: %1").arg(stored),
      Qt::ToolTipRole);
  current_->setText(tr("<b>%1</b> runs with %2 × %3 (%4 of cache), %5 scheduling.")
                        .arg(fmt::modelName(info).toHtmlEscaped())
                        .arg(fmt::quantity(kvBlocks, tr("KV block"), tr("KV blocks")))
                        .arg(fmt::quantity(config.block_size, tr("token"), tr("tokens")))
                        .arg(fmt::quantity(kvBlocks * config.block_size, tr("token"), tr("tokens")))
                        .arg(QString::fromUtf8(brisk::policy_name(config.policy))));
  error_->clear();
  error_->hide();
  onEdited();
}

void EngineSettingsPanel::updateBudgetWidgets() {
  const int mode = budgetMode_->currentData().toInt();
  // Auto takes no number: the field is hidden rather than showing a value that means nothing.
  budget_->setEnabled(mode != Auto);
  budget_->setVisible(mode != Auto);
  budget_->setSuffix(mode == MiB                               ? tr(" MiB")
                     : mode == Blocks && budget_->value() == 1 ? tr(" block")
                     : mode == Blocks                          ? tr(" blocks")
                                                               : QString());
  if (mode == Auto) budget_->setSpecialValueText(QString());
  const bool continuous = policy_->currentData().toInt() == int(brisk::SchedulerPolicy::Continuous);
  chunked_->setEnabled(continuous);
  prefixCache_->setEnabled(continuous);
  const bool cuda = selectedBackend() == QLatin1String("cuda");
  // The CUDA knobs are rows of their own only where CUDA runs: greyed, their
  // checked boxes read "On" beside a CPU backend they do not touch.
  for (QWidget* w :
       std::initializer_list<QWidget*>{cudaGraphs_, fusedDecode_, dependentLaunch_, fusedRope_, splitMerge_,
                                       l2Prefetch_, persistentDecode_, fp8FastAccum_, gpuMemory_})
    form_->setRowVisible(w, cuda);
  cudaGraphs_->setEnabled(cuda);
  fusedDecode_->setEnabled(cuda);
  dependentLaunch_->setEnabled(cuda);
  fusedRope_->setEnabled(cuda && fusedDecode_->isChecked());
  splitMerge_->setEnabled(cuda);
  l2Prefetch_->setEnabled(cuda && fusedDecode_->isChecked());
  persistentDecode_->setEnabled(cuda && fusedDecode_->isChecked());
  fp8FastAccum_->setEnabled(cuda);
  gpuMemory_->setEnabled(cuda && mode == Auto);
}

QString EngineSettingsPanel::selectedBackend() const {
  return QString::fromStdString(brisk::resolve_backend(backend_->currentData().toString().toStdString()));
}

brisk::EngineConfig EngineSettingsPanel::config() const {
  brisk::EngineConfig c = applied_;
  c.backend = backend_->currentData().toString().toStdString();
  c.cuda_graphs = cudaGraphs_->isChecked();
  c.fused_decode = fusedDecode_->isChecked();
  c.dependent_launch = dependentLaunch_->isChecked();
  c.fused_rope = fusedRope_->isChecked();
  c.split_merge_in_kernel = splitMerge_->isChecked();
  c.l2_prefetch = l2Prefetch_->isChecked();
  c.persistent_decode = persistentDecode_->isChecked();
  c.fp8_fast_accum = fp8FastAccum_->isChecked();
  c.gpu_memory_utilization = gpuMemory_->value();
  c.block_size = blockSize_->currentData().toInt();
  c.num_kv_blocks = 0;
  c.kv_cache_bytes = 0;
  switch (budgetMode_->currentData().toInt()) {
    case Blocks:
      c.num_kv_blocks = budget_->value();
      break;
    case MiB:
      c.kv_cache_bytes = int64_t(budget_->value()) * kMiB;
      break;
    default:
      break;
  }
  c.max_num_seqs = maxSeqs_->value();
  c.max_num_batched_tokens = maxTokens_->value();
  c.enable_chunked_prefill = chunked_->isChecked();
  c.enable_prefix_caching = prefixCache_->isChecked();
  {
    QString w = weights_->currentData().toString();
    c.int8_activations = w.endsWith(QStringLiteral("+w8a8"));
    const bool fma = w.endsWith(QStringLiteral("+fma"));
    if (c.int8_activations) w.chop(5);
    if (fma) w.chop(4);
    // "As stored" has no FMA entries: it keeps the arithmetic the engine
    // runs with (e.g. brisk --fp8-fma on a model stored as FP8).
    if (w != QLatin1String("auto")) {
      c.fp8_fma = fma && w.startsWith(QStringLiteral("fp8"));
      c.int8_fma = fma && !c.fp8_fma;
    }
    c.weight_dtype = w.toStdString();
  }
  c.kv_dtype = kvPrecision_->currentData().toString().toStdString();
  c.policy = brisk::SchedulerPolicy(policy_->currentData().toInt());
  c.threads = threads_->value();
  c.max_model_len = maxLen_->value();
  return c;
}

QStringList EngineSettingsPanel::describeChanges(const brisk::EngineConfig& a, const brisk::EngineConfig& b) {
  QStringList out;
  auto budget = [](const brisk::EngineConfig& c) {
    if (c.num_kv_blocks > 0) return fmt::quantity(c.num_kv_blocks, tr("block"), tr("blocks"));
    if (c.kv_cache_bytes > 0) return fmt::bytes(uint64_t(c.kv_cache_bytes));
    return tr("auto");
  };
  auto yesNo = [](bool v) { return v ? tr("on") : tr("off"); };
  auto orAuto = [](int v, const QString& zero) { return v > 0 ? QString::number(v) : zero; };
  if (a.backend != b.backend)
    out << tr("backend %1 → %2").arg(fmt::backendName(a.backend), fmt::backendName(b.backend));
  if (a.cuda_graphs != b.cuda_graphs)
    out << tr("CUDA graphs %1 → %2").arg(yesNo(a.cuda_graphs), yesNo(b.cuda_graphs));
  if (a.fused_decode != b.fused_decode)
    out << tr("fused decode %1 → %2").arg(yesNo(a.fused_decode), yesNo(b.fused_decode));
  if (a.dependent_launch != b.dependent_launch)
    out << tr("dependent launch %1 → %2").arg(yesNo(a.dependent_launch), yesNo(b.dependent_launch));
  if (a.fused_rope != b.fused_rope)
    out << tr("fused RoPE %1 → %2").arg(yesNo(a.fused_rope), yesNo(b.fused_rope));
  if (a.split_merge_in_kernel != b.split_merge_in_kernel)
    out << tr("split merge in kernel %1 → %2")
               .arg(yesNo(a.split_merge_in_kernel), yesNo(b.split_merge_in_kernel));
  if (a.l2_prefetch != b.l2_prefetch)
    out << tr("L2 weight prefetch %1 → %2").arg(yesNo(a.l2_prefetch), yesNo(b.l2_prefetch));
  if (a.persistent_decode != b.persistent_decode)
    out << tr("persistent decode %1 → %2").arg(yesNo(a.persistent_decode), yesNo(b.persistent_decode));
  if (a.fp8_fast_accum != b.fp8_fast_accum)
    out << tr("FP8 fast accumulation %1 → %2").arg(yesNo(a.fp8_fast_accum), yesNo(b.fp8_fast_accum));
  // The spin box holds two decimals: finer differences are not edits.
  if (std::lround(a.gpu_memory_utilization * 100) != std::lround(b.gpu_memory_utilization * 100))
    out << tr("GPU memory utilization %1 → %2")
               .arg(a.gpu_memory_utilization, 0, 'f', 2)
               .arg(b.gpu_memory_utilization, 0, 'f', 2);
  if (a.block_size != b.block_size) out << tr("block size %1 → %2").arg(a.block_size).arg(b.block_size);
  if (a.num_kv_blocks != b.num_kv_blocks || a.kv_cache_bytes != b.kv_cache_bytes)
    out << tr("KV budget %1 → %2").arg(budget(a), budget(b));
  if (a.max_num_seqs != b.max_num_seqs)
    out << tr("max sequences %1 → %2").arg(a.max_num_seqs).arg(b.max_num_seqs);
  if (a.max_num_batched_tokens != b.max_num_batched_tokens)
    out << tr("max batched tokens %1 → %2").arg(a.max_num_batched_tokens).arg(b.max_num_batched_tokens);
  if (a.enable_chunked_prefill != b.enable_chunked_prefill)
    out << tr("chunked prefill %1 → %2")
               .arg(yesNo(a.enable_chunked_prefill), yesNo(b.enable_chunked_prefill));
  if (weightKey(a) != weightKey(b)) out << tr("weights %1 → %2").arg(weightKey(a), weightKey(b));
  if (a.kv_dtype != b.kv_dtype)
    out << tr("KV cache %1 → %2").arg(QString::fromStdString(a.kv_dtype), QString::fromStdString(b.kv_dtype));
  if (a.enable_prefix_caching != b.enable_prefix_caching)
    out << tr("prefix caching %1 → %2").arg(yesNo(a.enable_prefix_caching), yesNo(b.enable_prefix_caching));
  if (a.policy != b.policy)
    out << tr("scheduling %1 → %2")
               .arg(QString::fromUtf8(brisk::policy_name(a.policy)),
                    QString::fromUtf8(brisk::policy_name(b.policy)));
  if (a.threads != b.threads)
    out << tr("threads %1 → %2").arg(orAuto(a.threads, tr("auto")), orAuto(b.threads, tr("auto")));
  if (a.max_model_len != b.max_model_len)
    out << tr("max context %1 → %2")
               .arg(orAuto(a.max_model_len, tr("the model's")), orAuto(b.max_model_len, tr("the model's")));
  return out;
}

QStringList EngineSettingsPanel::changes() const { return describeChanges(applied_, config()); }

bool EngineSettingsPanel::isDirty() const { return !changes().isEmpty(); }

QString EngineSettingsPanel::errorText() const { return error_->isHidden() ? QString() : error_->text(); }

void EngineSettingsPanel::onEdited() {
  if (loading_) return;
  updateBudgetWidgets();
  const QStringList c = changes();
  if (c.isEmpty()) {
    note_->hide();
  } else {
    note_->setText(tr("<b>Changed:</b> %1.<br>These settings take effect when the model is "
                      "reloaded: press Reload.")
                       .arg(c.join(QStringLiteral("; ")).toHtmlEscaped()));
    note_->show();
  }
  reload_->setEnabled(!c.isEmpty());
  revert_->setEnabled(!c.isEmpty());
  Q_EMIT edited();
}

void EngineSettingsPanel::showError(const QString& error) {
  error_->setText(tr("The engine rejected these settings: %1").arg(error));
  error_->show();
}

void EngineSettingsPanel::revert() {
  showConfig(applied_);
  error_->hide();
  onEdited();
}

void EngineSettingsPanel::requestReload() {
  if (!isDirty()) return;
  Q_EMIT reloadRequested(config());
}
