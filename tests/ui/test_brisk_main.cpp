// The window's command line (app/brisk_main.cpp), run as a user runs it:
// the built binary (BRISK_APP_PATH) under QProcess, offscreen.
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

#include "brisk/sysinfo.h"

namespace {
struct Run {
  int code = -1;
  QString out, err;
};

Run runApp(const QStringList& args) {
  QProcess p;
  QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
  env.insert(QStringLiteral("QT_QPA_PLATFORM"), QStringLiteral("offscreen"));
  p.setProcessEnvironment(env);
  p.start(QStringLiteral(BRISK_APP_PATH), args);
  Run r;
  if (!p.waitForFinished(120000)) {
    p.kill();
    p.waitForFinished();
    r.err = QStringLiteral("timed out");
    return r;
  }
  r.code = p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1;
  r.out = QString::fromLocal8Bit(p.readAllStandardOutput());
  r.err = QString::fromLocal8Bit(p.readAllStandardError());
  return r;
}
}  // namespace

class TestBriskMain : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void helpNamesTheBackendOption();
  void badBackendIsRefusedByName();
  void backendOptionChoosesTheBackend();
};

// The CLI had --backend and the window had none: a CPU run on a GPU machine
// (or the reverse) needed a trip through the settings first.
void TestBriskMain::helpNamesTheBackendOption() {
  const Run r = runApp({QStringLiteral("--help")});
  QCOMPARE(r.code, 0);
  QVERIFY2(r.out.contains(QStringLiteral("--backend")), qPrintable(r.out));
}

void TestBriskMain::badBackendIsRefusedByName() {
  const Run r = runApp({QStringLiteral("--backend"), QStringLiteral("gpu")});
  QCOMPARE(r.code, 2);
  QVERIFY2(r.err.contains(QStringLiteral("backend")) && r.err.contains(QStringLiteral("'gpu'")),
           qPrintable(r.err));
}

// --backend cpu runs the demo; --backend cuda on a machine without CUDA
// fails the load with the reason, as the CLI does.
void TestBriskMain::backendOptionChoosesTheBackend() {
  QTemporaryDir dir;
  QVERIFY(dir.isValid());
  const QString shot = dir.filePath(QStringLiteral("cpu.png"));
  const Run cpu = runApp({QStringLiteral("--backend"), QStringLiteral("cpu"), QStringLiteral("--screenshot"),
                          shot, QStringLiteral("--quit-after-ms"), QStringLiteral("60000")});
  QVERIFY2(cpu.code == 0, qPrintable(cpu.err));
  QVERIFY(QFileInfo::exists(shot));

  std::string reason;
  for (const brisk::BackendStatus& b : brisk::list_backends())
    if (b.name == "cuda" && !b.available) reason = b.reason;
  if (reason.empty()) QSKIP("CUDA is available here (or not built): the unavailable case cannot be shown");
  const Run cuda = runApp({QStringLiteral("--backend"), QStringLiteral("cuda"),
                           QStringLiteral("--screenshot"), dir.filePath(QStringLiteral("cuda.png")),
                           QStringLiteral("--quit-after-ms"), QStringLiteral("60000")});
  QVERIFY2(cuda.code != 0, qPrintable(cuda.err));
  QVERIFY2(cuda.err.contains(QString::fromStdString(reason)), qPrintable(cuda.err));
}

QTEST_MAIN(TestBriskMain)
#include "test_brisk_main.moc"
