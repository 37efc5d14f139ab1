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

  // Hovering a chip lists the model's likeliest tokens there with their probabilities.
  void hoverListsAlternatives() {
    TokenView v;
    v.setShowTokens(true);
    v.appendChunk(" cat", 0.25, {{7, " dog", 0.5}, {9, " cat", 0.25}, {3, "\n", 0.125}});
    v.appendChunk("!", 0.5);
    v.flush();
    QCOMPARE(v.chunkAlternatives(0).size(), 3);
    QCOMPARE(v.chunkAlternatives(1).size(), 0);
    const QString tip = v.chunkToolTip(0);
    QVERIFY2(tip.contains("␣dog") && tip.contains("0.500") && tip.contains("↵") && tip.contains("0.125"),
             qPrintable(tip));
    QVERIFY(tip.indexOf("␣dog") < tip.indexOf("␣cat</code></td>"));  // most likely first
    QVERIFY(!v.chunkToolTip(1).contains("<table"));
    // What is on screen carries the same tooltip.
    QTextCursor c(v.document());
    c.setPosition(2);
    QCOMPARE(c.charFormat().toolTip(), tip);
    v.clearChunks();
    QCOMPARE(v.chunkAlternatives(0).size(), 0);
  }

  void controllerDeliversProbabilities() {
    EngineController c;
    QSignalSpy loaded(&c, &EngineController::modelLoaded);
    c.loadModel(brisk::EngineConfig{});
    QTRY_VERIFY_WITH_TIMEOUT(loaded.count() > 0, 60000);
    QSignalSpy chunks(&c, &EngineController::tokenProbabilityReceived);
    QSignalSpy alts(&c, &EngineController::tokenAlternativesReceived);
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
    QCOMPARE(alts.count(), chunks.count());
    for (const auto& args : alts) {
      const double prob = args.at(2).toDouble();
      const auto list = args.at(3).value<TokenAlternatives>();
      QCOMPARE(list.size(), EngineController::kTokenAlternatives);
      double last = 1.0;
      bool chosenListed = false;
      for (const TokenAlternative& a : list) {
        QVERIFY(a.probability <= last + 1e-9);
        last = a.probability;
        chosenListed = chosenListed || std::abs(a.probability - prob) < 1e-9;
      }
      // Greedy: the chosen token is the likeliest one.
      QVERIFY2(std::abs(list[0].probability - prob) < 1e-9, qPrintable(QString::number(prob)));
      QVERIFY(chosenListed);
    }
  }
};

QTEST_MAIN(TestTokenProbability)
#include "test_token_probability.moc"
