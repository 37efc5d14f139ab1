// `brisk-cli sysinfo` end to end: runs the built binary (BRISK_CLI_PATH)
// with its cache pointed at a temporary directory, and checks the JSON
// fields, the cache (hit, --remeasure, separate keys, corrupt file, HOME
// fallback), the text output and the usage errors, and the backends: cuda
// listed with its availability (and why not), said once in the text, and
// `generate --backend cuda` failing with that reason where no device exists.
// Every measuring run uses
// --quick (64 MiB, 2 repeats) so the suite stays fast; figures are checked
// for being positive and sane, never for speed.
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QProcessEnvironment>
#include <QTemporaryDir>
#include <QtTest>

#include "e2e/support/cli_run.h"

namespace {

// Every run leaves the kernel ISA to the CPU unless a test sets BRISK_ISA.
QMap<QString, QString> withIsaCleared(QMap<QString, QString> env) {
  if (!env.contains(QStringLiteral("BRISK_ISA"))) env.insert(QStringLiteral("BRISK_ISA"), QString());
  return env;
}

#define RUN_SYSINFO(var, env, ...)                                          \
  const CliRun var = runCli(QStringList{__VA_ARGS__}, withIsaCleared(env)); \
  CHECK_RAN(var)

// Parses stdout as one JSON object, failing the calling test otherwise.
#define PARSE_JSON(obj, run)                                                                                \
  QJsonObject obj;                                                                                          \
  {                                                                                                         \
    QJsonParseError pe;                                                                                     \
    const QJsonDocument d = QJsonDocument::fromJson((run).out, &pe);                                        \
    QVERIFY2(pe.error == QJsonParseError::NoError && d.isObject(),                                          \
             qPrintable(QStringLiteral("not a JSON object (%1): ").arg(pe.errorString()) + describe(run))); \
    obj = d.object();                                                                                       \
  }

}  // namespace

class TestCliSysinfo : public QObject {
  Q_OBJECT

  QTemporaryDir dir_;
  QMap<QString, QString> env_;  // XDG_CACHE_HOME = dir_

  QString cacheFile() const { return dir_.filePath(QStringLiteral("brisk/sysinfo.json")); }

 private slots:
  void initTestCase() {
    QVERIFY(dir_.isValid());
    env_[QStringLiteral("XDG_CACHE_HOME")] = dir_.path();
  }

  void jsonHasEveryField() {
    RUN_SYSINFO(r, env_, "sysinfo", "--json", "--quick");
    EXPECT_EXIT(r, 0);
    PARSE_JSON(j, r);
    for (const char* key : {"cpu_model",
                            "logical_cpus",
                            "physical_cores",
                            "l1d_cache_bytes",
                            "l2_cache_bytes",
                            "l3_cache_bytes",
                            "memory_bytes",
                            "features",
                            "kernel_isa",
                            "detected_isa",
                            "measured",
                            "read_bandwidth_bytes_per_s",
                            "fma_peak_flops",
                            "threads_used",
                            "bandwidth_buffer_bytes",
                            "quick",
                            "read_bandwidth_method",
                            "fma_peak_method",
                            "measured_at",
                            "from_cache",
                            "cache_path"})
      QVERIFY2(j.contains(QLatin1String(key)), key);
    QVERIFY(!j[QStringLiteral("cpu_model")].toString().isEmpty());
    QVERIFY(j[QStringLiteral("logical_cpus")].toInt() >= 1);
    QVERIFY(j[QStringLiteral("physical_cores")].toInt() >= 1);
    QVERIFY(j[QStringLiteral("memory_bytes")].toDouble() > 0);
    QVERIFY(j[QStringLiteral("features")].isArray());
    const QString isa = j[QStringLiteral("kernel_isa")].toString();
    QVERIFY2(isa == QLatin1String("scalar") || isa == QLatin1String("avx2") || isa == QLatin1String("avx512"),
             qPrintable(isa));
    QCOMPARE(j[QStringLiteral("detected_isa")].toString(), isa);  // BRISK_ISA is unset
    if (isa != QLatin1String("scalar"))
      QVERIFY(j[QStringLiteral("features")].toArray().contains(QStringLiteral("avx2")));
    QVERIFY(j[QStringLiteral("measured")].toBool());
    QVERIFY(j[QStringLiteral("quick")].toBool());
    QVERIFY(!j[QStringLiteral("from_cache")].toBool());
    const double bw = j[QStringLiteral("read_bandwidth_bytes_per_s")].toDouble();
    const double flops = j[QStringLiteral("fma_peak_flops")].toDouble();
    QVERIFY2(bw > 0.5e9 && bw < 2e12, qPrintable(QString::number(bw)));
    QVERIFY2(flops > 0.5e9 && flops < 1e15, qPrintable(QString::number(flops)));
    QCOMPARE(j[QStringLiteral("threads_used")].toInt(), j[QStringLiteral("physical_cores")].toInt());
    QCOMPARE(j[QStringLiteral("bandwidth_buffer_bytes")].toDouble(), 64.0 * 1024 * 1024);
    QVERIFY(!j[QStringLiteral("read_bandwidth_method")].toString().isEmpty());
    QVERIFY(!j[QStringLiteral("fma_peak_method")].toString().isEmpty());
    QVERIFY(j[QStringLiteral("measured_at")].toString().endsWith(QLatin1Char('Z')));
    QCOMPARE(QFileInfo(j[QStringLiteral("cache_path")].toString()).absoluteFilePath(),
             QFileInfo(cacheFile()).absoluteFilePath());
    QVERIFY(QFileInfo::exists(cacheFile()));
  }

  void secondRunReadsTheCache() {
    RUN_SYSINFO(a, env_, "sysinfo", "--json", "--quick");
    EXPECT_EXIT(a, 0);
    PARSE_JSON(ja, a);
    RUN_SYSINFO(b, env_, "sysinfo", "--json", "--quick");
    EXPECT_EXIT(b, 0);
    PARSE_JSON(jb, b);
    QVERIFY(jb[QStringLiteral("from_cache")].toBool());
    QCOMPARE(jb[QStringLiteral("read_bandwidth_bytes_per_s")].toDouble(),
             ja[QStringLiteral("read_bandwidth_bytes_per_s")].toDouble());
    QCOMPARE(jb[QStringLiteral("fma_peak_flops")].toDouble(),
             ja[QStringLiteral("fma_peak_flops")].toDouble());
    QCOMPARE(jb[QStringLiteral("measured_at")].toString(), ja[QStringLiteral("measured_at")].toString());

    RUN_SYSINFO(c, env_, "sysinfo", "--json", "--quick", "--remeasure");
    EXPECT_EXIT(c, 0);
    PARSE_JSON(jc, c);
    QVERIFY(!jc[QStringLiteral("from_cache")].toBool());
    QVERIFY(jc[QStringLiteral("measured")].toBool());
  }

  void cacheIsKeyedByThreadsAndIsa() {
    RUN_SYSINFO(warm, env_, "sysinfo", "--json", "--quick");
    EXPECT_EXIT(warm, 0);
    // Another thread count is another entry: measured, not read.
    RUN_SYSINFO(t, env_, "sysinfo", "--json", "--quick", "--threads", "1");
    EXPECT_EXIT(t, 0);
    PARSE_JSON(jt, t);
    QCOMPARE(jt[QStringLiteral("threads_used")].toInt(), 1);
    if (jt[QStringLiteral("physical_cores")].toInt() != 1)
      QVERIFY(!jt[QStringLiteral("from_cache")].toBool());

    // So is another kernel ISA, and BRISK_ISA shows in kernel_isa.
    QMap<QString, QString> env = env_;
    env[QStringLiteral("BRISK_ISA")] = QStringLiteral("scalar");
    RUN_SYSINFO(s, env, "sysinfo", "--json", "--quick");
    EXPECT_EXIT(s, 0);
    PARSE_JSON(js, s);
    QCOMPARE(js[QStringLiteral("kernel_isa")].toString(), QStringLiteral("scalar"));
    if (js[QStringLiteral("detected_isa")].toString() != QLatin1String("scalar"))
      QVERIFY(!js[QStringLiteral("from_cache")].toBool());
    QVERIFY(js[QStringLiteral("fma_peak_flops")].toDouble() > 0);
  }

  void corruptCacheIsReplaced() {
    QTemporaryDir d;
    QVERIFY(QDir().mkpath(d.filePath(QStringLiteral("brisk"))));
    const QString path = d.filePath(QStringLiteral("brisk/sysinfo.json"));
    {
      QFile f(path);
      QVERIFY(f.open(QIODevice::WriteOnly));
      f.write("{\"version\": 1, \"entries\": {\"x\": trunc");
    }
    QMap<QString, QString> env;
    env[QStringLiteral("XDG_CACHE_HOME")] = d.path();
    RUN_SYSINFO(r, env, "sysinfo", "--json", "--quick");
    EXPECT_EXIT(r, 0);
    PARSE_JSON(j, r);
    QVERIFY(!j[QStringLiteral("from_cache")].toBool());
    QFile f(path);
    QVERIFY(f.open(QIODevice::ReadOnly));
    QJsonParseError pe;
    const QJsonDocument doc = QJsonDocument::fromJson(f.readAll(), &pe);
    QVERIFY2(pe.error == QJsonParseError::NoError, qPrintable(pe.errorString()));
    QCOMPARE(doc.object()[QStringLiteral("version")].toInt(), 1);
    QCOMPARE(doc.object()[QStringLiteral("entries")].toObject().size(), 1);
  }

  void homeFallback() {
    QTemporaryDir home;
    QMap<QString, QString> env;
    env[QStringLiteral("XDG_CACHE_HOME")] = QString();  // removed
    env[QStringLiteral("HOME")] = home.path();
    RUN_SYSINFO(r, env, "sysinfo", "--json", "--quick");
    EXPECT_EXIT(r, 0);
    PARSE_JSON(j, r);
    QCOMPARE(QFileInfo(j[QStringLiteral("cache_path")].toString()).absoluteFilePath(),
             QFileInfo(home.filePath(QStringLiteral(".cache/brisk/sysinfo.json"))).absoluteFilePath());
    QVERIFY(QFileInfo::exists(home.filePath(QStringLiteral(".cache/brisk/sysinfo.json"))));
  }

  void textOutput() {
    RUN_SYSINFO(r, env_, "sysinfo", "--quick");
    EXPECT_EXIT(r, 0);
    for (const char* needle : {"cpu ", "cores", "features", "kernel isa", "memory", "read bw", "GB/s",
                               "fma peak", "GFLOP/s", "measured"})
      EXPECT_IN(r.out, QLatin1String(needle), r);
  }

  void backendsAreListed() {
    RUN_SYSINFO(r, env_, "sysinfo", "--json", "--quick");
    EXPECT_EXIT(r, 0);
    PARSE_JSON(j, r);
    QVERIFY(j[QStringLiteral("backends")].isArray());
    QVERIFY(j[QStringLiteral("gpus")].isArray());
    QJsonObject cpu, cuda;
    for (const QJsonValue& v : j[QStringLiteral("backends")].toArray()) {
      const QJsonObject b = v.toObject();
      if (b[QStringLiteral("name")] == QLatin1String("cpu")) cpu = b;
      if (b[QStringLiteral("name")] == QLatin1String("cuda")) cuda = b;
    }
    QVERIFY2(!cpu.isEmpty(), qPrintable(describe(r)));
    QVERIFY(cpu[QStringLiteral("available")].toBool());
    QVERIFY2(!cuda.isEmpty(), qPrintable(describe(r)));  // listed even in a build without nvcc
    QVERIFY(cuda[QStringLiteral("available")].isBool());
    const bool available = j[QStringLiteral("cuda_available")].toBool();
    if (!available) {
      // Why not, once for the whole record and in the backend list.
      QVERIFY2(!j[QStringLiteral("cuda_reason")].toString().isEmpty(), qPrintable(describe(r)));
      if (!cuda[QStringLiteral("available")].toBool())
        QVERIFY2(!cuda[QStringLiteral("reason")].toString().isEmpty(), qPrintable(describe(r)));
      QVERIFY(j[QStringLiteral("gpus")].toArray().isEmpty());
      return;
    }
    // A device: every GPU field is there, and the precisions say FP8 by compute capability.
    QVERIFY(!j[QStringLiteral("gpus")].toArray().isEmpty());
    for (const QJsonValue& v : j[QStringLiteral("gpus")].toArray()) {
      const QJsonObject g = v.toObject();
      for (const char* key : {"name", "cc_major", "cc_minor", "sm_count", "memory_bytes", "driver_version",
                              "precisions", "measured", "bandwidth_bytes_per_s", "f16_flops", "fp8_flops"})
        QVERIFY2(g.contains(QLatin1String(key)), key);
      QVERIFY(g[QStringLiteral("sm_count")].toInt() > 0);
      const int cc = g[QStringLiteral("cc_major")].toInt() * 10 + g[QStringLiteral("cc_minor")].toInt();
      const bool fp8 = g[QStringLiteral("precisions")].toArray().contains(QStringLiteral("fp8-e4m3"));
      QCOMPARE(fp8, cc >= 89);
      if (!fp8) QVERIFY(g[QStringLiteral("precision_note")].toString().contains(QStringLiteral("FP8")));
      if (g[QStringLiteral("measured")].toBool()) {
        QVERIFY(g[QStringLiteral("bandwidth_bytes_per_s")].toDouble() > 1e9);
        QVERIFY(g[QStringLiteral("f16_flops")].toDouble() > 1e12);
      }
    }
  }

  void textSaysCudaOnce() {
    RUN_SYSINFO(j, env_, "sysinfo", "--json", "--quick");
    EXPECT_EXIT(j, 0);
    PARSE_JSON(o, j);
    RUN_SYSINFO(r, env_, "sysinfo", "--quick");
    EXPECT_EXIT(r, 0);
    const QString out = QString::fromUtf8(r.out);
    EXPECT_IN(r.out, QStringLiteral("backends"), r);
    if (o[QStringLiteral("cuda_available")].toBool()) {
      EXPECT_IN(r.out, QStringLiteral("gpu 0"), r);
      EXPECT_IN(r.out, QStringLiteral("precisions"), r);
      return;
    }
    const QString line = QStringLiteral("CUDA: unavailable — ") + o[QStringLiteral("cuda_reason")].toString();
    QVERIFY2(out.count(QStringLiteral("CUDA: unavailable")) == 1, qPrintable(describe(r)));
    EXPECT_IN(r.out, line, r);
  }

  void cudaWithoutDeviceFailsWithTheReason() {
    RUN_SYSINFO(j, env_, "sysinfo", "--json", "--quick");
    EXPECT_EXIT(j, 0);
    PARSE_JSON(o, j);
    if (o[QStringLiteral("cuda_available")].toBool()) QSKIP("a CUDA device is available here");
    QString reason;
    for (const QJsonValue& v : o[QStringLiteral("backends")].toArray())
      if (v.toObject()[QStringLiteral("name")] == QLatin1String("cuda"))
        reason = v.toObject()[QStringLiteral("reason")].toString();
    if (reason.isEmpty()) reason = o[QStringLiteral("cuda_reason")].toString();
    RUN_CLI(r, "generate", "demo", "-p", "Hello", "--max-tokens", "2", "--backend", "cuda");
    QVERIFY2(r.code != 0, qPrintable(describe(r)));
    EXPECT_IN(r.err, QStringLiteral("cuda"), r);
    EXPECT_IN(r.err, reason, r);
    // And auto runs on the CPU.
    RUN_CLI(a, "generate", "demo", "-p", "Hello", "--max-tokens", "2", "--backend", "auto");
    EXPECT_EXIT(a, 0);
  }

  void backendFlagErrors() {
    {
      RUN_CLI(r, "generate", "demo", "-p", "Hello", "--max-tokens", "2", "--backend", "bogus");
      EXPECT_EXIT(r, 2);
      EXPECT_IN(r.err, QStringLiteral("--backend"), r);
      EXPECT_IN(r.err, QStringLiteral("bogus"), r);
    }
    {
      RUN_CLI(r, "generate", "demo", "-p", "Hello", "--max-tokens", "2", "--gpu-memory-utilization", "1.5");
      EXPECT_EXIT(r, 2);
      EXPECT_IN(r.err, QStringLiteral("--gpu-memory-utilization"), r);
    }
    {
      RUN_CLI(r, "generate", "--help");
      EXPECT_EXIT(r, 0);
      for (const char* f : {"--backend", "--gpu-memory-utilization", "--no-cuda-graphs"})
        EXPECT_IN(r.out, QLatin1String(f), r);
    }
  }

  void usageErrors() {
    {
      RUN_SYSINFO(r, env_, "sysinfo", "--bogus");
      EXPECT_EXIT(r, 2);
      EXPECT_IN(r.err, QStringLiteral("--bogus"), r);
    }
    {
      RUN_SYSINFO(r, env_, "sysinfo", "--threads", "-3");
      EXPECT_EXIT(r, 2);
      EXPECT_IN(r.err, QStringLiteral("--threads"), r);
    }
    {
      RUN_SYSINFO(r, env_, "sysinfo", "--threads", "many");
      EXPECT_EXIT(r, 2);
      EXPECT_IN(r.err, QStringLiteral("--threads"), r);
    }
    {
      RUN_SYSINFO(r, env_, "sysinfo", "extra");
      EXPECT_EXIT(r, 2);
      EXPECT_IN(r.err, QStringLiteral("extra"), r);
    }
    {
      RUN_SYSINFO(r, env_, "--help");
      EXPECT_EXIT(r, 0);
      EXPECT_IN(r.out, QStringLiteral("sysinfo"), r);
    }
    {
      RUN_SYSINFO(r, env_, "sysinfo", "--help");
      EXPECT_EXIT(r, 0);
      EXPECT_IN(r.out, QStringLiteral("--remeasure"), r);
    }
  }
};

QTEST_GUILESS_MAIN(TestCliSysinfo)
#include "test_cli_sysinfo.moc"
