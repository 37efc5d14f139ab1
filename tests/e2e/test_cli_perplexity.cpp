// brisk-cli perplexity and agreement end to end: JSON fields, the
// --save-logits / --baseline-logits round trip, mismatched baselines, and
// usage errors (exit 2 naming the flag). Every run has a 60 s limit.
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

#include "e2e/support/cli_run.h"

namespace {


#define PARSE_JSON(obj, var)                                                     \
  QJsonParseError pe_##obj;                                                      \
  const QJsonDocument doc_##obj = QJsonDocument::fromJson((var).out, &pe_##obj); \
  QVERIFY2(pe_##obj.error == QJsonParseError::NoError && doc_##obj.isObject(),   \
           qPrintable(QStringLiteral("not a JSON object: ") + describe(var)));   \
  const QJsonObject obj = doc_##obj.object()

const QString kModel = QStringLiteral(BRISK_SHARED_MODELS "/stories260K/stories260K.gguf");
const QString kText = QStringLiteral(BRISK_SOURCE_DIR "/resources/eval/stories.txt");
const QString kPrompts = QStringLiteral(BRISK_SOURCE_DIR "/resources/eval/prompts.txt");

}  // namespace

class TestCliPerplexity : public QObject {
  Q_OBJECT

  QTemporaryDir dir_;
  QString path(const QString& name) const { return dir_.filePath(name); }

 private slots:
  void initTestCase() {
    QVERIFY(dir_.isValid());
    QVERIFY2(QFileInfo(QStringLiteral(BRISK_CLI_PATH)).isExecutable(),
             qPrintable(QStringLiteral("brisk-cli not built at %1").arg(BRISK_CLI_PATH)));
    QVERIFY2(QFileInfo::exists(kText), qPrintable(kText));
  }

  void usageErrors() {
    RUN_CLI(noText, QStringLiteral("perplexity"), QStringLiteral("demo"));
    EXPECT_EXIT(noText, 2);
    EXPECT_IN(noText.err, QStringLiteral("--text"), noText);
    RUN_CLI(badStride, QStringLiteral("perplexity"), QStringLiteral("demo"), QStringLiteral("--text"), kText,
            QStringLiteral("--context"), QStringLiteral("64"), QStringLiteral("--stride"),
            QStringLiteral("64"));
    EXPECT_EXIT(badStride, 2);
    EXPECT_IN(badStride.err, QStringLiteral("--stride"), badStride);
    RUN_CLI(noPrompts, QStringLiteral("agreement"), QStringLiteral("demo"));
    EXPECT_EXIT(noPrompts, 2);
    EXPECT_IN(noPrompts.err, QStringLiteral("--prompts"), noPrompts);
    RUN_CLI(missingFile, QStringLiteral("perplexity"), QStringLiteral("demo"), QStringLiteral("--text"),
            path(QStringLiteral("nope.txt")));
    EXPECT_EXIT(missingFile, 1);
    EXPECT_IN(missingFile.err, QStringLiteral("nope.txt"), missingFile);
    RUN_CLI(help, QStringLiteral("perplexity"), QStringLiteral("--help"));
    EXPECT_EXIT(help, 0);
    for (const char* flag : {"--text", "--context", "--stride", "--save-logits", "--baseline-logits",
                             "--dtype", "--kv-dtype", "--json"})
      EXPECT_IN(help.out, QLatin1String(flag), help);
  }

  void jsonFieldsAndRoundTrip() {
    if (!QFileInfo::exists(kModel)) QSKIP(qPrintable(QStringLiteral("model not found: %1").arg(kModel)));
    const QString base = path(QStringLiteral("base.lp"));
    RUN_CLI(saved, QStringLiteral("perplexity"), kModel, QStringLiteral("--text"), kText,
            QStringLiteral("--threads"), QStringLiteral("2"), QStringLiteral("--save-logits"), base,
            QStringLiteral("--json"));
    EXPECT_EXIT(saved, 0);
    PARSE_JSON(s, saved);
    for (const char* f :
         {"model", "config", "text", "tokens", "tokens_scored", "tokens_evaluated", "windows", "context",
          "stride", "perplexity", "mean_nll", "seconds", "tokens_per_s", "saved_logits", "baseline"})
      QVERIFY2(s.contains(QLatin1String(f)), f);
    const double ppl = s[QStringLiteral("perplexity")].toDouble();
    QVERIFY2(ppl > 1.5 && ppl < 20, qPrintable(describe(saved)));
    QCOMPARE(s[QStringLiteral("tokens_scored")].toInteger(), s[QStringLiteral("tokens")].toInteger() - 1);
    QCOMPARE(s[QStringLiteral("context")].toInt(), 512);
    QCOMPARE(s[QStringLiteral("stride")].toInt(), 256);
    QVERIFY(s[QStringLiteral("tokens_per_s")].toDouble() > 0);
    QVERIFY(s[QStringLiteral("baseline")].isNull());
    QCOMPARE(s[QStringLiteral("config")].toObject()[QStringLiteral("weight_dtype")].toString(),
             QStringLiteral("auto"));
    QCOMPARE(QFileInfo(base).size(), 56 + s[QStringLiteral("tokens_scored")].toInteger() * (4 + 2 * 512));

    RUN_CLI(again, QStringLiteral("perplexity"), kModel, QStringLiteral("--text"), kText,
            QStringLiteral("--threads"), QStringLiteral("2"), QStringLiteral("--baseline-logits"), base,
            QStringLiteral("--json"));
    EXPECT_EXIT(again, 0);
    PARSE_JSON(a, again);
    const QJsonObject b = a[QStringLiteral("baseline")].toObject();
    for (const char* f : {"path", "perplexity", "kl_mean", "kl_p99", "kl_max", "top1_agreement", "rms_dp"})
      QVERIFY2(b.contains(QLatin1String(f)), f);
    QVERIFY2(b[QStringLiteral("kl_mean")].toDouble() <= 1e-6, qPrintable(describe(again)));
    QVERIFY2(b[QStringLiteral("kl_max")].toDouble() <= 1e-6, qPrintable(describe(again)));
    QCOMPARE(b[QStringLiteral("top1_agreement")].toDouble(), 1.0);
    QVERIFY(std::abs(b[QStringLiteral("perplexity")].toDouble() - ppl) < 1e-6 * ppl);

    // The human-readable form prints the same figures.
    RUN_CLI(text, QStringLiteral("perplexity"), kModel, QStringLiteral("--text"), kText,
            QStringLiteral("--threads"), QStringLiteral("2"), QStringLiteral("--baseline-logits"), base,
            QStringLiteral("--dtype"), QStringLiteral("bf16"));
    EXPECT_EXIT(text, 0);
    for (const char* w : {"perplexity:", "tokens/s", "KL divergence", "top-1 agreement"})
      EXPECT_IN(text.out, QLatin1String(w), text);

    // Other window settings than the baseline's: rejected, naming the file.
    RUN_CLI(mismatch, QStringLiteral("perplexity"), kModel, QStringLiteral("--text"), kText,
            QStringLiteral("--threads"), QStringLiteral("2"), QStringLiteral("--context"),
            QStringLiteral("128"), QStringLiteral("--baseline-logits"), base);
    EXPECT_EXIT(mismatch, 1);
    EXPECT_IN(mismatch.err, base, mismatch);
    EXPECT_IN(mismatch.err, QStringLiteral("context"), mismatch);
  }

  void agreementJson() {
    if (!QFileInfo::exists(kModel)) QSKIP(qPrintable(QStringLiteral("model not found: %1").arg(kModel)));
    RUN_CLI(r, QStringLiteral("agreement"), kModel, QStringLiteral("--prompts"), kPrompts,
            QStringLiteral("--max-tokens"), QStringLiteral("24"), QStringLiteral("--threads"),
            QStringLiteral("2"), QStringLiteral("--json"));
    EXPECT_EXIT(r, 0);
    PARSE_JSON(j, r);
    for (const char* f : {"model", "baseline", "config", "prompts", "max_tokens", "positions", "agreement",
                          "mean_identical_prefix", "match_fraction", "seconds", "per_prompt"})
      QVERIFY2(j.contains(QLatin1String(f)), f);
    QCOMPARE(j[QStringLiteral("max_tokens")].toInt(), 24);
    QCOMPARE(j[QStringLiteral("positions")].toInt(), j[QStringLiteral("prompts")].toInt() * 24);
    QCOMPARE(j[QStringLiteral("per_prompt")].toArray().size(), j[QStringLiteral("prompts")].toInt());
    QCOMPARE(j[QStringLiteral("baseline")].toObject()[QStringLiteral("weight_dtype")].toString(),
             QStringLiteral("f32"));
    // The model is stored in F32, so "auto" is the baseline itself.
    QCOMPARE(j[QStringLiteral("agreement")].toDouble(), 1.0);
    QCOMPARE(j[QStringLiteral("mean_identical_prefix")].toDouble(), 24.0);
  }
};

QTEST_GUILESS_MAIN(TestCliPerplexity)
#include "test_cli_perplexity.moc"
