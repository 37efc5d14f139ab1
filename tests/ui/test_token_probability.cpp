// Token chips coloured by the engine's probability: the controller delivers
// each chunk with its token's probability, the view keeps and shows it.
#include <QSignalSpy>
#include <QtTest>

#include "engine_controller.h"
#include "token_view.h"

class TestTokenProbability : public QObject {
  Q_OBJECT

 private slots:
  void viewKeepsProbabilitiesAndTintsChips() {
    TokenView v;
    v.setShowTokens(true);
    v.appendChunk("a", 0.9);
    v.appendChunk("b", 0.05);
    v.appendChunk("c");  // unknown
    v.flush();
    QCOMPARE(v.chunkProbability(0), 0.9);
    QCOMPARE(v.chunkProbability(1), 0.05);
    QCOMPARE(v.chunkProbability(2), -1.0);
    QVERIFY(v.chunkHasChipBackground(0) && v.chunkHasChipBackground(1) && v.chunkHasChipBackground(2));
    QCOMPARE(v.text(), QString("abc"));
    v.clearChunks();
    QCOMPARE(v.chunkProbability(0), -1.0);
  }

  void controllerDeliversProbabilities() {
    EngineController c;
    QSignalSpy loaded(&c, &EngineController::modelLoaded);
    c.loadModel(brisk::EngineConfig{});
    QTRY_VERIFY_WITH_TIMEOUT(loaded.count() > 0, 60000);
    QSignalSpy chunks(&c, &EngineController::tokenProbabilityReceived);
    QSignalSpy done(&c, &EngineController::requestFinished);
    brisk::SamplingParams p;
    p.max_tokens = 16;
    p.ignore_eos = true;
    c.generate("The cache", p);
    QTRY_VERIFY_WITH_TIMEOUT(done.count() > 0, 60000);
    QVERIFY(chunks.count() > 0);
    for (const auto& args : chunks) {
      const double prob = args.at(2).toDouble();
      QVERIFY2(prob > 0 && prob <= 1.0, qPrintable(QString::number(prob)));
    }
  }
};

QTEST_MAIN(TestTokenProbability)
#include "test_token_probability.moc"
