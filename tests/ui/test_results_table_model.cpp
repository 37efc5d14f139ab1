// The Compare table's model: which run is the best of a column, and how a
// delta against the baseline reads. Values are compared at the precision the
// column shows them: two runs that both read 283.1 tok/s are tied.
#include <QBrush>
#include <QtTest>

#include "ui/results_table_model.h"

namespace {
brisk::BenchResult run(const char* label, double generation, double prompt) {
  brisk::BenchResult r;
  r.label = label;
  r.summary.generation_tokens_per_s = generation;
  r.summary.prompt_tokens_per_s = prompt;
  return r;
}
}  // namespace

class TestResultsTableModel : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void distinctValuesHaveABest();
  void tieAtTheShownPrecisionHasNoBest();
  void tiedLeadersAreBothBest();
  void zeroDeltaReadsAsNoChange();
};

void TestResultsTableModel::distinctValuesHaveABest() {
  ResultsTableModel m;
  m.setRuns({run("f32", 283.1, 364.7), run("int8", 290.4, 364.0)});
  const int gen = ResultsTableModel::columnOf("generation_tokens_per_s");
  const int prompt = ResultsTableModel::columnOf("prompt_tokens_per_s");
  QVERIFY(!m.data(m.index(0, gen), ResultsTableModel::BestRole).toBool());
  QVERIFY(m.data(m.index(1, gen), ResultsTableModel::BestRole).toBool());
  QVERIFY(m.data(m.index(0, prompt), ResultsTableModel::BestRole).toBool());
  QVERIFY(!m.data(m.index(1, prompt), ResultsTableModel::BestRole).toBool());
}

// f32 283.12 and int8 283.14 both show 283.1: neither is bold, neither tinted.
void TestResultsTableModel::tieAtTheShownPrecisionHasNoBest() {
  ResultsTableModel m;
  m.setRuns({run("f32", 283.12, 364.71), run("int8", 283.14, 364.69)});
  m.setBaseline(0);
  for (const char* key : {"generation_tokens_per_s", "prompt_tokens_per_s"}) {
    const int col = ResultsTableModel::columnOf(key);
    for (int row = 0; row < 2; ++row) {
      const QModelIndex i = m.index(row, col);
      QVERIFY2(!m.data(i, ResultsTableModel::BestRole).toBool(), qPrintable(m.data(i).toString()));
      QVERIFY(!m.data(i, Qt::BackgroundRole).isValid());
      QVERIFY(!m.data(i, Qt::FontRole).isValid());
    }
  }
}

// Two runs tied at the top of three: both are the best, the third is not.
void TestResultsTableModel::tiedLeadersAreBothBest() {
  ResultsTableModel m;
  m.setRuns({run("a", 283.12, 1), run("b", 283.14, 1), run("c", 250.0, 1)});
  const int gen = ResultsTableModel::columnOf("generation_tokens_per_s");
  QVERIFY(m.data(m.index(0, gen), ResultsTableModel::BestRole).toBool());
  QVERIFY(m.data(m.index(1, gen), ResultsTableModel::BestRole).toBool());
  QVERIFY(!m.data(m.index(2, gen), ResultsTableModel::BestRole).toBool());
}

// A change too small to show reads "±0.0%", never "-0.0%" or "+0.0%".
void TestResultsTableModel::zeroDeltaReadsAsNoChange() {
  ResultsTableModel m;
  m.setRuns({run("f32", 283.14, 364.7), run("int8", 283.12, 364.71)});
  m.setBaseline(0);
  const int gen = ResultsTableModel::columnOf("generation_tokens_per_s");
  const int prompt = ResultsTableModel::columnOf("prompt_tokens_per_s");
  QCOMPARE(m.data(m.index(1, gen)).toString(), QStringLiteral("283.1 (±0.0%)"));
  QCOMPARE(m.data(m.index(1, prompt)).toString(), QStringLiteral("364.7 (±0.0%)"));
}

QTEST_MAIN(TestResultsTableModel)
#include "test_results_table_model.moc"
