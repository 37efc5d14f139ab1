// The Model panel's figures read as English: one layer, one block, one token.
#include <QLabel>
#include <QtTest>

#include "ui/model_panel.h"

class TestModelPanel : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void countsOfOneAreSingular();
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

QTEST_MAIN(TestModelPanel)
#include "test_model_panel.moc"
