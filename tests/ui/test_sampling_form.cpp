// SamplingForm: every engine sampling knob round-trips through the widgets;
// the stop-string and token-id syntax; the one-line summary.
#include <QLineEdit>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTextLayout>
#include <QtTest>

#include "ui/format.h"
#include "ui/sampling_form.h"

class TestSamplingForm : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void defaultsAreSensibleAndValid();
  void everyKnobRoundTrips();
  void everyKnobHasATooltip();
  void stopStringSyntax();
  void tokenIds();
  void summary();
  void columnsFollowWidth();
};

void TestSamplingForm::defaultsAreSensibleAndValid() {
  SamplingForm form(QStringLiteral("Sampling"), 6);
  const brisk::SamplingParams p = form.params();
  QVERIFY(p.validate().empty());
  QCOMPARE(p.max_tokens, 128);
  QCOMPARE(p.temperature, 0.8f);
  QCOMPARE(p.top_k, 40);
  QCOMPARE(p.top_p, 0.95f);
  QCOMPARE(p.min_p, 0.0f);
  QCOMPARE(p.repetition_penalty, 1.0f);
  QVERIFY(!p.seed);
  QVERIFY(p.stop.empty());
  QVERIFY(!p.ignore_eos);
}

void TestSamplingForm::everyKnobRoundTrips() {
  SamplingForm form(QStringLiteral("Sampling"), 4);
  QSignalSpy changed(&form, &SamplingForm::changed);
  brisk::SamplingParams p;
  p.max_tokens = 77;
  p.temperature = 1.25f;
  p.top_k = 7;
  p.top_p = 0.5f;
  p.min_p = 0.05f;
  p.repetition_penalty = 1.3f;
  p.seed = 1234;
  p.stop = {"\n\n", "The end", " x,y "};
  p.stop_token_ids = {2, 13};
  p.ignore_eos = true;
  form.setParams(p);
  QCOMPARE(changed.count(), 0);  // programmatic: no change signal
  const brisk::SamplingParams q = form.params();
  QCOMPARE(q.max_tokens, 77);
  QCOMPARE(q.temperature, 1.25f);
  QCOMPARE(q.top_k, 7);
  QCOMPARE(q.top_p, 0.5f);
  QCOMPARE(q.min_p, 0.05f);
  QCOMPARE(q.repetition_penalty, 1.3f);
  QCOMPARE(q.seed.value_or(0), uint64_t(1234));
  QCOMPARE(q.stop, p.stop);
  QCOMPARE(q.stop_token_ids, p.stop_token_ids);
  QVERIFY(q.ignore_eos);
  QVERIFY(q.validate().empty());
  // A user edit says so.
  form.findChild<QSpinBox*>(QStringLiteral("topK"))->setValue(9);
  QCOMPARE(changed.count(), 1);
}

void TestSamplingForm::everyKnobHasATooltip() {
  SamplingForm form(QStringLiteral("Sampling"), 6);
  for (const char* name : {"maxTokens", "temperature", "topK", "topP", "minP", "repetitionPenalty", "seed",
                           "stopStrings", "stopTokenIds", "ignoreEos"}) {
    QWidget* w = form.findChild<QWidget*>(QString::fromLatin1(name));
    QVERIFY2(w, name);
    QVERIFY2(w->toolTip().size() > 20, name);
  }
}

void TestSamplingForm::stopStringSyntax() {
  using V = std::vector<std::string>;
  QCOMPARE(SamplingForm::parseStopStrings(QString()), V{});
  QCOMPARE(SamplingForm::parseStopStrings(QStringLiteral("User:, The end")), (V{"User:", "The end"}));
  QCOMPARE(SamplingForm::parseStopStrings(QStringLiteral("\\n\\nUser:,a\\,b, \\sx\\s ,\\\\")),
           (V{"\n\nUser:", "a,b", " x ", "\\"}));
  QCOMPARE(SamplingForm::parseStopStrings(QStringLiteral(" , ,\\t")), V{"\t"});
  const V tricky{"\n", " lead", "trail ", "a,b", "back\\slash", "tab\there"};
  QCOMPARE(SamplingForm::parseStopStrings(SamplingForm::formatStopStrings(tricky)), tricky);
}

void TestSamplingForm::tokenIds() {
  QCOMPARE(SamplingForm::parseTokenIds(QStringLiteral("2, 13 29,x,-4")), (std::vector<int32_t>{2, 13, 29}));
  QVERIFY(SamplingForm::parseTokenIds(QString()).empty());
}

void TestSamplingForm::summary() {
  // Read with plain spaces and hyphens; within a setting they are no-break ones.
  auto plain = [](QString s) {
    return s.replace(QChar(0x00a0), QLatin1Char(' ')).replace(QChar(0x2011), QLatin1Char('-'));
  };
  brisk::SamplingParams p;
  p.max_tokens = 64;
  QCOMPARE(plain(fmt::samplingSummary(p)), QStringLiteral("greedy · 64 tokens"));
  p = SamplingForm::defaults();
  p.seed = 1;
  p.stop = {"x"};
  p.ignore_eos = true;
  const QString summary = fmt::samplingSummary(p);
  QCOMPARE(plain(summary),
           QStringLiteral("T 0.80 · top-k 40 · top-p 0.95 · 128 tokens · seed 1 · 1 stop · ignore EOS"));
  // A wrapped line can break only between settings: the one place is beside each " · ".
  for (const QString& part : summary.split(QStringLiteral(" · ")))
    QVERIFY2(!part.contains(QLatin1Char(' ')) && !part.contains(QLatin1Char('-')), qPrintable(plain(part)));
  // Laid out at any width, each wrapped line starts at a setting.
  const QFont font = QApplication::font();
  const QFontMetricsF fm(font);
  for (int chars = 8; chars < plain(summary).size(); chars += 3) {
    QTextLayout layout(summary, font);
    QTextOption option;
    option.setWrapMode(QTextOption::WordWrap);
    layout.setTextOption(option);
    layout.beginLayout();
    for (QTextLine line = layout.createLine(); line.isValid(); line = layout.createLine()) {
      line.setLineWidth(fm.horizontalAdvance(plain(summary).left(chars)));
      const int start = line.textStart();
      QVERIFY2(start == 0 || summary.at(start) == QChar(0x00b7) ||
                   summary.mid(start - 2, 2) == QStringLiteral("· "),
               qPrintable(QStringLiteral("%1 characters wide: a line starts at '%2'")
                              .arg(chars)
                              .arg(plain(summary.mid(start)))));
    }
    layout.endLayout();
  }
}

void TestSamplingForm::columnsFollowWidth() {
  SamplingForm form(QStringLiteral("Sampling"), 0);
  form.resize(420, 300);
  form.show();
  QVERIFY(QTest::qWaitForWindowExposed(&form));
  QCOMPARE(form.columnsShown(), 3);
  form.resize(1000, 200);
  QTRY_COMPARE(form.columnsShown(), 6);
  form.setColumns(2);
  QCOMPARE(form.columnsShown(), 2);
}

QTEST_MAIN(TestSamplingForm)
#include "test_sampling_form.moc"
