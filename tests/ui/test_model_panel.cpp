// The Model panel's figures read as English: one layer, one block, one token.
#include <QLabel>
#include <QtTest>

#include "ui/model_panel.h"

class TestModelPanel : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void countsOfOneAreSingular();
  void precisionIsWhatTheFileStores();
};

void TestModelPanel::countsOfOneAreSingular() {
  ModelPanel panel;
  brisk::ModelInfo info;
  info.path = "/models/tiny.gguf";
  info.architecture = "llama";
  info.dim = 8;
  info.hidden_dim = 32;
  info.n_layers = 1;
  info.n_heads = 2;
  info.n_kv_heads = 2;
  info.head_dim = 4;
  info.vocab_size = 32000;
  info.context_length = 4096;
  panel.showModel(info);
  const QString dims = panel.findChild<QLabel*>(QStringLiteral("modelDims"))->text();
  QVERIFY2(dims.endsWith(QStringLiteral("· 1 layer")), qPrintable(dims));
  info.n_heads = info.n_kv_heads = 1;
  panel.showModel(info);
  const QString attention = panel.findChild<QLabel*>(QStringLiteral("modelAttention"))->text();
  QVERIFY2(attention.startsWith(QStringLiteral("1 head · 1 KV head ·")), qPrintable(attention));
  info.n_heads = info.n_kv_heads = 2;
  info.n_layers = 2;
  panel.showModel(info);
  QVERIFY(
      panel.findChild<QLabel*>(QStringLiteral("modelDims"))->text().endsWith(QStringLiteral("· 2 layers")));
  brisk::EngineConfig config;
  config.block_size = 1;
  config.max_num_seqs = 1;
  config.max_num_batched_tokens = 1;
  config.threads = 1;
  panel.showEngine(config, 1);
  const QString texts = [&] {
    QStringList t;
    for (QLabel* l : panel.findChildren<QLabel*>()) t << l->text();
    return t.join(QLatin1Char('\n'));
  }();
  QVERIFY2(!texts.contains(QStringLiteral("1 blocks")) && !texts.contains(QStringLiteral("1 tokens")) &&
               !texts.contains(QStringLiteral("1 seqs")) && !texts.contains(QStringLiteral("1 threads")),
           qPrintable(texts));
}

// The Precision row said what the engine converted the weights to, under a
// tooltip "Storage type of the weights": it now names what the file stores
// and, when the load converted it, what it runs as.
void TestModelPanel::precisionIsWhatTheFileStores() {
  ModelPanel panel;
  auto* precision = panel.findChild<QLabel*>(QStringLiteral("modelPrecision"));
  QVERIFY(precision);
  brisk::ModelInfo info;
  info.path = "/models/precision-test.gguf";  // no such file: the path is its key
  info.architecture = "llama";
  info.tensors = {{"w", "F32", {4, 4}, 64}};
  panel.showModel(info);
  QCOMPARE(precision->text(), QStringLiteral("F32"));  // as loaded: stored = run
  // The load converted it to INT8: the info holds the converted types, and the file's own beside them.
  info.converted_to = "int8";
  info.stored_tensors = info.tensors;
  info.tensors = {{"w", "I8", {4, 4}, 16}, {"norm", "F32", {2}, 8}};
  panel.showModel(info);
  QCOMPARE(precision->text(), QStringLiteral("F32 (runs as INT8 + F32)"));
  QVERIFY2(precision->toolTip().contains(QStringLiteral("file")) &&
               precision->toolTip().contains(QStringLiteral("runs as")),
           qPrintable(precision->toolTip()));
}

QTEST_MAIN(TestModelPanel)
#include "test_model_panel.moc"
