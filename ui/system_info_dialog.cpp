#include "system_info_dialog.h"

#include <QApplication>
#include <QClipboard>
#include <QDialogButtonBox>
#include <QLabel>
#include <QPointer>
#include <QPushButton>
#include <QTextBrowser>
#include <QThread>
#include <QVBoxLayout>

#include "format.h"

namespace {
QString esc(const std::string& s) { return QString::fromStdString(s).toHtmlEscaped(); }

QString row(const QString& name, const QString& value) {
  return QStringLiteral("<tr><td style='padding-right:12px'><b>%1</b></td><td>%2</td></tr>").arg(name, value);
}

QString joined(const std::vector<std::string>& v, const QString& none) {
  QStringList out;
  for (const std::string& x : v) out << esc(x);
  return out.isEmpty() ? none : out.join(QLatin1Char(' '));
}

// A measured figure with how it was measured under it, small.
QString figure(const QString& value, const std::string& method) {
  return QStringLiteral("%1<br><small>%2</small>").arg(value, esc(method));
}

QString measuredAt(const std::string& at, bool quick, bool cached) {
  QString s = esc(at);
  if (quick) s += QObject::tr(" with the quick probe (not a true ceiling)");
  if (cached) s += QObject::tr(" (cached)");
  return s;
}
}  // namespace

QString systemInfoHtml(const brisk::SystemInfo& s) {
  QString html = QStringLiteral("<h3>%1</h3><table>").arg(QObject::tr("CPU"));
  html += row(QObject::tr("Model"), s.cpu_model.empty() ? QObject::tr("unknown") : esc(s.cpu_model));
  html +=
      row(QObject::tr("Cores"),
          QStringLiteral("%1, %2").arg(
              fmt::quantity(s.physical_cores, QObject::tr("physical core"), QObject::tr("physical cores")),
              fmt::quantity(s.logical_cpus, QObject::tr("logical CPU"), QObject::tr("logical CPUs"))));
  if (s.l1d_cache_bytes || s.l2_cache_bytes || s.l3_cache_bytes)
    html += row(QObject::tr("Caches"), QObject::tr("L1d %1, L2 %2, L3 %3 (per instance)")
                                           .arg(fmt::bytes(s.l1d_cache_bytes), fmt::bytes(s.l2_cache_bytes),
                                                fmt::bytes(s.l3_cache_bytes)));
  html += row(QObject::tr("Memory"), s.memory_bytes ? fmt::bytes(s.memory_bytes) : QObject::tr("unknown"));
  html += row(QObject::tr("SIMD features"),
              joined(s.features, QObject::tr("none of the SIMD features Brisk uses")));
  QString isa = esc(s.kernel_isa);
  if (s.kernel_isa != s.detected_isa)
    isa += QObject::tr(" (lowered by BRISK_ISA; the CPU supports %1)").arg(esc(s.detected_isa));
  html += row(QObject::tr("Kernels"), isa);
  if (s.measured) {
    html += row(QObject::tr("Read bandwidth"),
                figure(QStringLiteral("%1 GB/s").arg(s.read_bandwidth_bytes_per_s / 1e9, 0, 'f', 1),
                       s.read_bandwidth_method));
    html +=
        row(QObject::tr("FMA peak"),
            figure(QStringLiteral("%1 GFLOP/s").arg(s.fma_peak_flops / 1e9, 0, 'f', 1), s.fma_peak_method));
    html += row(QObject::tr("Measured"),
                QObject::tr("%1 on %2")
                    .arg(measuredAt(s.measured_at, s.quick, s.from_cache),
                         fmt::quantity(s.threads_used, QObject::tr("thread"), QObject::tr("threads"))));
  } else {
    html += row(QObject::tr("Ceilings"), QObject::tr("not measured (Measure ceilings)"));
  }
  html += QStringLiteral("</table><h3>%1</h3><table>").arg(QObject::tr("Backends"));
  for (const brisk::BackendStatus& b : s.backends)
    html += row(fmt::backendName(b.name),
                b.available
                    ? QObject::tr("available: %1").arg(esc(b.device))
                    : QObject::tr("<span style='color:#b00020'>unavailable</span>: %1").arg(esc(b.reason)));
  html += row(QObject::tr("Auto"),
              QObject::tr("runs on %1").arg(fmt::backendName(brisk::resolve_backend("auto"))));
  html += QStringLiteral("</table>");
  for (const brisk::GpuInfo& g : s.gpus) {
    html += QStringLiteral("<h3>%1</h3><table>").arg(QObject::tr("GPU %1: %2").arg(g.index).arg(esc(g.name)));
    html += row(QObject::tr("Device"),
                QObject::tr("sm_%1%2, %3")
                    .arg(g.cc_major)
                    .arg(g.cc_minor)
                    .arg(fmt::quantity(g.sm_count, QObject::tr("SM"), QObject::tr("SMs"))));
    html += row(QObject::tr("Memory"),
                QObject::tr("%1 (%2 free)").arg(fmt::bytes(g.memory_bytes), fmt::bytes(g.free_bytes)));
    html += row(QObject::tr("Driver"),
                QObject::tr("CUDA %1 (runtime %2)%3")
                    .arg(esc(g.driver_version), esc(g.runtime_version),
                         g.pci_bus_id.empty() ? QString() : QObject::tr(", PCI %1").arg(esc(g.pci_bus_id))));
    QString precisions = joined(g.precisions, QObject::tr("none"));
    if (!g.precision_note.empty()) precisions = figure(precisions, g.precision_note);
    html += row(QObject::tr("Precisions"), precisions);
    if (g.measured) {
      html += row(QObject::tr("Device bandwidth"),
                  figure(QStringLiteral("%1 GB/s").arg(g.bandwidth_bytes_per_s / 1e9, 0, 'f', 1),
                         g.bandwidth_method));
      html += row(QObject::tr("F16 GEMM"),
                  figure(QStringLiteral("%1 TFLOP/s").arg(g.f16_flops / 1e12, 0, 'f', 1), g.f16_method));
      html +=
          row(QObject::tr("FP8 GEMM"),
              g.fp8_flops > 0 ? figure(QStringLiteral("%1 TFLOP/s (%2× F16)")
                                           .arg(g.fp8_flops / 1e12, 0, 'f', 1)
                                           .arg(g.f16_flops > 0 ? g.fp8_flops / g.f16_flops : 0.0, 0, 'f', 2),
                                       g.fp8_method)
                              : esc(g.fp8_method));
      html += row(QObject::tr("Measured"), measuredAt(g.measured_at, g.quick, g.from_cache));
    } else {
      html += row(QObject::tr("Ceilings"), g.measure_error.empty()
                                               ? QObject::tr("not measured (Measure ceilings)")
                                               : QObject::tr("not measured: %1").arg(esc(g.measure_error)));
    }
    html += QStringLiteral("</table>");
  }
  return html;
}

SystemInfoDialog::SystemInfoDialog(QWidget* parent) : QDialog(parent) {
  setObjectName(QStringLiteral("systemInfoDialog"));
  setWindowTitle(tr("System information"));
  auto* layout = new QVBoxLayout(this);
  text_ = new QTextBrowser(this);
  text_->setObjectName(QStringLiteral("systemInfoText"));
  text_->setOpenLinks(false);
  layout->addWidget(text_);
  status_ = new QLabel(this);
  status_->setObjectName(QStringLiteral("systemInfoStatus"));
  status_->setWordWrap(true);
  layout->addWidget(status_);
  auto* buttons = new QDialogButtonBox(QDialogButtonBox::Close, this);
  measure_ = buttons->addButton(tr("&Measure ceilings"), QDialogButtonBox::ActionRole);
  measure_->setObjectName(QStringLiteral("systemInfoMeasure"));
  measure_->setToolTip(
      tr("Measure the CPU's read bandwidth and FMA peak and each CUDA device's bandwidth and GEMM "
         "throughput (a few seconds; cached per machine as brisk-cli sysinfo caches them)"));
  copy_ = buttons->addButton(tr("&Copy"), QDialogButtonBox::ActionRole);
  copy_->setObjectName(QStringLiteral("systemInfoCopy"));
  copy_->setToolTip(tr("Copy the text, for a bug report or a note beside a benchmark"));
  layout->addWidget(buttons);
  connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
  connect(measure_, &QPushButton::clicked, this, &SystemInfoDialog::measure);
  connect(copy_, &QPushButton::clicked, this,
          [this] { QApplication::clipboard()->setText(text_->toPlainText()); });
  resize(640, 600);
  probe(false);
}

SystemInfoDialog::~SystemInfoDialog() {
  // The window keeps the dialog (closing hides it), so this runs when the
  // window goes: a measurement in flight finishes, its answer is dropped.
  if (worker_) {
    worker_->wait();
    delete worker_;
  }
}

void SystemInfoDialog::measure() {
  if (busy_) return;
  if (const QString why = blocker_ ? blocker_() : QString(); !why.isEmpty()) {
    status_->setText(tr("Not measured: %1. Measure again when it has finished.").arg(why));
    return;
  }
  probe(true);
}

void SystemInfoDialog::probe(bool measure) {
  if (busy_) return;
  busy_ = true;
  measure_->setEnabled(false);
  status_->setText(measure ? tr("Measuring: a few seconds…") : tr("Describing this machine…"));
  if (worker_) {
    worker_->wait();
    delete worker_;
  }
  QPointer<SystemInfoDialog> self(this);
  worker_ = QThread::create([self, measure] {
    brisk::ProbeOptions o;
    o.measure = measure;
    const brisk::SystemInfo info = brisk::probe_system(o);
    QMetaObject::invokeMethod(
        qApp,
        [self, info] {
          if (self) self->display(info);
        },
        Qt::QueuedConnection);
  });
  worker_->start();
}

void SystemInfoDialog::display(const brisk::SystemInfo& info) {
  info_ = info;
  busy_ = false;
  text_->setHtml(systemInfoHtml(info));
  measure_->setEnabled(true);
  status_->setText(info.measured ? QString() : tr("The ceilings are not measured yet on this machine."));
  Q_EMIT probed();
}
