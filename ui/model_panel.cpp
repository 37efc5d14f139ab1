#include "model_panel.h"

#include <QFormLayout>
#include <QGroupBox>
#include <QLabel>
#include <QVBoxLayout>

#include "format.h"

ModelPanel::ModelPanel(QWidget* parent) : QWidget(parent) {
  auto* layout = new QVBoxLayout(this);

  placeholder_ = new QLabel(
      tr("<b>No model loaded</b><br><br>File ▸ Open model… loads a GGUF file, a llama2.c "
         "checkpoint or a Hugging Face folder.<br><br>File ▸ Load demo model loads the built-in "
         "demo model."),
      this);
  placeholder_->setObjectName(QStringLiteral("placeholder"));
  placeholder_->setWordWrap(true);
  placeholder_->setAlignment(Qt::AlignTop | Qt::AlignLeft);
  layout->addWidget(placeholder_);

  synthetic_ = new QLabel(tr("<b>Synthetic demo model:</b> random weights, its text is gibberish. "
                             "It exercises the engine end to end; open a real model for real text."),
                          this);
  synthetic_->setObjectName(QStringLiteral("syntheticNote"));
  synthetic_->setWordWrap(true);
  synthetic_->setStyleSheet(QStringLiteral(
      "QLabel { background: #fff4ce; color: #5c4400; border: 1px solid #e0c060;"
      " border-radius: 4px; padding: 6px; }"));
  layout->addWidget(synthetic_);

  box_ = new QGroupBox(tr("Model"), this);
  form_ = new QFormLayout(box_);
  form_->setRowWrapPolicy(QFormLayout::DontWrapRows);
  form_->setFieldGrowthPolicy(QFormLayout::AllNonFixedFieldsGrow);
  form_->setLabelAlignment(Qt::AlignRight | Qt::AlignTop);
  name_ = addRow(box_, form_, tr("Name"), QStringLiteral("modelName"), tr("The model's name (from its metadata or file name)"));
  QFont bold = name_->font();
  bold.setBold(true);
  name_->setFont(bold);
  path_ = addRow(box_, form_, tr("Path"), QStringLiteral("modelPath"), tr("Where the weights were read from"));
  format_ = addRow(box_, form_, tr("Format"), QStringLiteral("modelFormat"), tr("File format: gguf, safetensors, llama2c or demo"));
  architecture_ = addRow(box_, form_, tr("Architecture"), QStringLiteral("modelArchitecture"), tr("The architecture family"));
  dims_ = addRow(box_, form_, tr("Shape"), QStringLiteral("modelDims"), tr("Model width, feed-forward width and number of layers"));
  attention_ = addRow(box_, form_, tr("Attention"), QStringLiteral("modelAttention"),
                      tr("Query heads, key/value heads (fewer than query heads: grouped-query attention) and head size"));
  vocab_ = addRow(box_, form_, tr("Vocabulary"), QStringLiteral("modelVocab"), tr("Number of tokens in the vocabulary"));
  params_ = addRow(box_, form_, tr("Parameters"), QStringLiteral("modelParams"), tr("Number of weights"));
  bytes_ = addRow(box_, form_, tr("Weights"), QStringLiteral("modelBytes"), tr("Bytes of weights in memory"));
  precision_ = addRow(box_, form_, tr("Precision"), QStringLiteral("modelPrecision"),
                      tr("The type the file stores the weights in; when the load converted them (the Weights "
                         "setting), \"runs as\" names the type the engine computes with"));
  context_ = addRow(box_, form_, tr("Context"), QStringLiteral("modelContext"), tr("Longest sequence the model supports, in tokens"));
  tokenizer_ = addRow(box_, form_, tr("Tokenizer"), QStringLiteral("modelTokenizer"), tr("Where the vocabulary came from"));
  layout->addWidget(box_);

  engineBox_ = new QGroupBox(tr("Engine"), this);
  engineForm_ = new QFormLayout(engineBox_);
  engineForm_->setFieldGrowthPolicy(QFormLayout::AllNonFixedFieldsGrow);
  engineForm_->setLabelAlignment(Qt::AlignRight | Qt::AlignTop);
  backend_ = addRow(engineBox_, engineForm_, tr("Backend"), QStringLiteral("engineBackend"),
                    tr("The backend running the model and its CPU threads"));
  kvCache_ = addRow(engineBox_, engineForm_, tr("KV cache"), QStringLiteral("engineKvCache"),
                    tr("Paged KV cache: blocks × tokens per block"));
  scheduler_ = addRow(engineBox_, engineForm_, tr("Scheduler"), QStringLiteral("engineScheduler"),
                      tr("Continuous: requests join and leave the batch at every step; "
                         "static: a batch runs until all its members finish"));
  batch_ = addRow(engineBox_, engineForm_, tr("Batch"), QStringLiteral("engineBatch"),
                  tr("Most sequences and tokens in one step"));
  layout->addWidget(engineBox_);
  layout->addStretch(1);

  setMinimumWidth(260);
  clear();
}

QLabel* ModelPanel::addRow(QGroupBox* box, QFormLayout* form, const QString& label,
                           const QString& objectName, const QString& toolTip) {
  auto* value = new QLabel(box);
  value->setObjectName(objectName);
  value->setWordWrap(true);
  value->setTextInteractionFlags(Qt::TextSelectableByMouse);
  value->setToolTip(toolTip);
  auto* caption = new QLabel(label + QLatin1Char(':'), box);
  caption->setToolTip(toolTip);
  form->addRow(caption, value);
  return value;
}

QString ModelPanel::modelName() const { return name_->text(); }

bool ModelPanel::syntheticNoteShown() const { return !synthetic_->isHidden(); }

void ModelPanel::clear() {
  placeholder_->show();
  synthetic_->hide();
  box_->hide();
  engineBox_->hide();
  for (QLabel* l : {name_, path_, format_, architecture_, dims_, attention_, vocab_, params_,
                    bytes_, precision_, context_, tokenizer_, backend_, kvCache_, scheduler_, batch_})
    l->clear();
}

void ModelPanel::showModel(const brisk::ModelInfo& info) {
  auto q = [](const std::string& s) {
    return s.empty() ? QStringLiteral("—") : QString::fromStdString(s);
  };
  placeholder_->hide();
  box_->show();
  synthetic_->setVisible(info.synthetic);

  name_->setText(fmt::modelName(info));
  // Break long paths anywhere after a separator so the panel stays narrow.
  QString path = q(info.path);
  path_->setText(path.replace(QLatin1Char('/'), QStringLiteral("/\u200b")));
  path_->setToolTip(q(info.path));  // the label holds break hints; the tooltip the real path
  path_->setTextInteractionFlags(Qt::NoTextInteraction);
  format_->setText(q(info.format));
  architecture_->setText(q(info.architecture));
  dims_->setText(tr("dim %1 · ffn %2 · %3")
                     .arg(info.dim)
                     .arg(info.hidden_dim)
                     .arg(fmt::quantity(info.n_layers, tr("layer"), tr("layers"))));
  attention_->setText(tr("%1 · %2 · head dim %3")
                          .arg(fmt::quantity(info.n_heads, tr("head"), tr("heads")),
                               fmt::quantity(info.n_kv_heads, tr("KV head"), tr("KV heads")))
                          .arg(info.head_dim));
  vocab_->setText(QString::number(info.vocab_size));
  params_->setText(fmt::count(info.n_params));
  bytes_->setText(fmt::bytes(info.weight_bytes));
  // What the file stores, and beside it what the engine runs when the load converted it.
  const QString runs = fmt::weightPrecision(info), stored = fmt::storedPrecision(info);
  precision_->setText(stored == runs ? runs : tr("%1 (runs as %2)").arg(stored, runs));
  context_->setText(fmt::quantity(info.context_length, tr("token"), tr("tokens")));
  QString tok = q(info.tokenizer);
  tokenizer_->setText(tok.replace(QLatin1Char('/'), QStringLiteral("/\u200b")));
}

void ModelPanel::showEngine(const brisk::EngineConfig& config, int64_t kvBlocks) {
  engineBox_->show();
  backend_->setText(tr("%1 · %2")
                        .arg(fmt::backendUsed(config.backend))
                        .arg(config.threads > 0 ? fmt::quantity(config.threads, tr("thread"), tr("threads"))
                                                : tr("threads: auto")));
  kvCache_->setText(tr("%1 × %2")
                        .arg(fmt::quantity(kvBlocks, tr("block"), tr("blocks")))
                        .arg(fmt::quantity(config.block_size, tr("token"), tr("tokens"))));
  QString sched = QString::fromUtf8(brisk::policy_name(config.policy));
  if (config.policy == brisk::SchedulerPolicy::Continuous)
    sched += config.enable_chunked_prefill ? tr(" · chunked prefill") : tr(" · whole prefill");
  scheduler_->setText(sched);
  batch_->setText(tr("%1 · %2")
                      .arg(fmt::quantity(config.max_num_seqs, tr("seq"), tr("seqs")))
                      .arg(fmt::quantity(config.max_num_batched_tokens, tr("token"), tr("tokens"))));
}
