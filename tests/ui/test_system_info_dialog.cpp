// Help ▸ System information: the window said nothing of the machine, the
// backends or CUDA's absence (only `brisk-cli sysinfo` did).
#include <QLabel>
#include <QPushButton>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QTextBrowser>
#include <QtTest>

#include "brisk/sysinfo.h"
#include "ui/main_window.h"
#include "ui/system_info_dialog.h"

class TestSystemInfoDialog : public QObject {
  Q_OBJECT
  QTemporaryDir cache_;

 private Q_SLOTS:
  void initTestCase() {
    QStandardPaths::setTestModeEnabled(true);
    // Measure caches the ceilings under XDG_CACHE_HOME: not in the user's cache.
    QVERIFY(cache_.isValid());
    qputenv("XDG_CACHE_HOME", cache_.path().toLocal8Bit());
  }
  void htmlNamesEveryPart();
  void unavailableCudaSaysWhy();
  void menuOpensTheDialogOnThisMachine();
};

// A GPU machine's record, as the fourth session's H100 gave it.
void TestSystemInfoDialog::htmlNamesEveryPart() {
  brisk::SystemInfo s;
  s.cpu_model = "Test CPU 9000";
  s.physical_cores = 1;
  s.logical_cpus = 2;
  s.memory_bytes = uint64_t(24) << 30;
  s.features = {"avx2", "fma"};
  s.kernel_isa = s.detected_isa = "avx2";
  s.measured = true;
  s.read_bandwidth_bytes_per_s = 21.5e9;
  s.fma_peak_flops = 98.3e9;
  s.threads_used = 2;
  s.measured_at = "2026-11-26T10:00:00Z";
  s.backends = {{"cpu", true, "", "Test CPU 9000"}, {"cuda", true, "", "NVIDIA H100 80GB HBM3"}};
  s.cuda_available = true;
  brisk::GpuInfo g;
  g.name = "NVIDIA H100 80GB HBM3";
  g.cc_major = 9;
  g.sm_count = 132;
  g.memory_bytes = uint64_t(80) << 30;
  g.free_bytes = uint64_t(79) << 30;
  g.driver_version = "13.0";
  g.runtime_version = "13.0";
  g.precisions = {"f16", "bf16", "int8", "fp8-e4m3"};
  g.measured = true;
  g.bandwidth_bytes_per_s = 2959e9;
  g.f16_flops = 741e12;
  g.fp8_flops = 1473e12;
  s.gpus = {g};
  QTextBrowser view;
  view.setHtml(systemInfoHtml(s));
  const QString text = view.toPlainText();
  for (const char* want :
       {"Test CPU 9000", "1 physical core, 2 logical CPUs", "24.0 GiB", "avx2 fma", "21.5 GB/s",
        "98.3 GFLOP/s", "on 2 threads", "NVIDIA H100 80GB HBM3", "sm_90", "132 SMs", "80.0 GiB", "CUDA 13.0",
        "fp8-e4m3", "2959.0 GB/s", "741.0 TFLOP/s", "1473.0 TFLOP/s (1.99× F16)"})
    QVERIFY2(text.contains(QString::fromUtf8(want)),
             qPrintable(QStringLiteral("no '%1' in:\n%2").arg(want, text)));
}

void TestSystemInfoDialog::unavailableCudaSaysWhy() {
  brisk::SystemInfo s;
  s.cpu_model = "Test CPU";
  s.backends = {{"cpu", true, "", "Test CPU"},
                {"cuda", false, "no NVIDIA driver installed (libcuda not found)", ""}};
  QTextBrowser view;
  view.setHtml(systemInfoHtml(s));
  const QString text = view.toPlainText();
  QVERIFY2(text.contains(QStringLiteral("unavailable: no NVIDIA driver installed (libcuda not found)")),
           qPrintable(text));
  QVERIFY2(text.contains(QStringLiteral("not measured")), qPrintable(text));
  QVERIFY2(!text.contains(QStringLiteral("GPU 0")), qPrintable(text));
}

// The real probe of this machine, from the Help menu; Measure fills the ceilings.
void TestSystemInfoDialog::menuOpensTheDialogOnThisMachine() {
  MainWindow w(/*persistState=*/false);
  w.show();
  QAction* action = w.action(QStringLiteral("actionSystemInfo"));
  QVERIFY(action);
  action->trigger();
  SystemInfoDialog* dialog = nullptr;
  QTRY_VERIFY((dialog = w.findChild<SystemInfoDialog*>()) && dialog->isVisible());
  QTRY_VERIFY_WITH_TIMEOUT(!dialog->busy() && !dialog->info().cpu_model.empty(), 30000);
  auto* text = dialog->findChild<QTextBrowser*>(QStringLiteral("systemInfoText"));
  QVERIFY(text);
  brisk::ProbeOptions o;
  o.measure = false;
  const brisk::SystemInfo here = brisk::probe_system(o);
  QVERIFY2(text->toPlainText().contains(QString::fromStdString(here.cpu_model)),
           qPrintable(text->toPlainText()));
  for (const brisk::BackendStatus& b : here.backends)
    if (!b.available)
      QVERIFY2(text->toPlainText().contains(QString::fromStdString(b.reason)),
               qPrintable(text->toPlainText()));
  action->trigger();  // a second click raises the same dialog
  QCOMPARE(w.findChildren<SystemInfoDialog*>().size(), 1);

  QSignalSpy probed(dialog, &SystemInfoDialog::probed);
  // Not while something else loads the machine: the figures would read low and be cached.
  dialog->setMeasureBlocker([] { return QStringLiteral("a benchmark is running"); });
  dialog->findChild<QPushButton*>(QStringLiteral("systemInfoMeasure"))->click();
  QVERIFY(!dialog->busy());
  QVERIFY2(dialog->findChild<QLabel*>(QStringLiteral("systemInfoStatus"))
               ->text()
               .contains(QStringLiteral("Not measured: a benchmark is running")),
           qPrintable(dialog->findChild<QLabel*>(QStringLiteral("systemInfoStatus"))->text()));
  QTest::qWait(50);
  QCOMPARE(probed.count(), 0);
  dialog->setMeasureBlocker({});
  dialog->close();  // hidden, not deleted: the window keeps it
  action->trigger();
  QCOMPARE(w.findChild<SystemInfoDialog*>(), dialog);
  dialog->findChild<QPushButton*>(QStringLiteral("systemInfoMeasure"))->click();
  QVERIFY(dialog->busy());
  QTRY_VERIFY_WITH_TIMEOUT(probed.count() == 1, 120000);
  QVERIFY(dialog->info().measured);
  QVERIFY2(text->toPlainText().contains(QStringLiteral("GB/s")), qPrintable(text->toPlainText()));
}

QTEST_MAIN(TestSystemInfoDialog)
#include "test_system_info_dialog.moc"
