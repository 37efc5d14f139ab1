#include "report/report_writer.h"

#include <qcustomplot.h>

#include <QApplication>
#include <QBuffer>
#include <QDateTime>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QPageLayout>
#include <QPageSize>
#include <QPainter>
#include <QPdfWriter>
#include <QPixmap>
#include <QUrl>
#include <algorithm>
#include <cmath>
#include <functional>

#include "brisk/error.h"
#include "format.h"
#include "report/report_common.h"
#include "report/result_plots.h"

namespace brisk::ui {

namespace {

// Plot images: drawn at this logical size, stored at twice the pixels so
// they stay sharp in a browser on a high-DPI screen. The PDF's are smaller
// in logical pixels, so their text stays legible at two plots to an A4 page.
struct PlotSize {
  int width, height;
  double scale;
};
constexpr PlotSize kScreenPlot{1100, 520, 2.0}, kPdfPlot{860, 400, 2.5};
// Runs per table in the PDF before the columns continue in another table.
constexpr int kPdfRunsPerTable = 8;
// Per-run key/value tables (configuration, model, ...) carry longer values.
constexpr int kPdfRunsPerKeyTable = 5;
// A failed run's name and cells (the window's Compare view uses the same red).
const QColor kFailedInk(0xc0, 0x39, 0x2b);

QString qs(const std::string& s) { return QString::fromStdString(s); }
QString esc(const QString& s) { return s.toHtmlEscaped(); }

[[noreturn]] void fail(const QString& path, const QString& why) {
  throw Error(QStringLiteral("%1: %2").arg(path, why).toStdString());
}

void writeFile(const QString& path, const QByteArray& bytes) {
  QFile f(path);
  if (!f.open(QIODevice::WriteOnly | QIODevice::Truncate))
    fail(path, QStringLiteral("cannot write: ") + f.errorString());
  if (f.write(bytes) != bytes.size()) fail(path, QStringLiteral("write failed: ") + f.errorString());
  if (!f.flush()) fail(path, QStringLiteral("write failed: ") + f.errorString());
}

// A failed run may carry no machine: files written before the engine
// recorded one for a failed run have an empty system block (no CPU, 0 cores),
// which describes no machine at all.
bool systemRecorded(const SystemInfo& s) {
  return !s.cpu_model.empty() || s.physical_cores > 0 || s.logical_cpus > 0;
}

// A run that failed before its model loaded has an empty (older files: zeroed)
// model block: its shape, size and format are unknown, not zero.
bool modelLoaded(const ModelInfo& m) {
  return !m.architecture.empty() || !m.format.empty() || m.n_params > 0 || m.dim > 0 || m.synthetic;
}

// Run names, briefly: the first few and how many more.
QString someRuns(const QStringList& names, int most = 4) {
  if (names.size() <= most + 1) return names.join(QStringLiteral(", "));
  return QObject::tr("%1 and %2 more")
      .arg(names.mid(0, most).join(QStringLiteral(", ")))
      .arg(names.size() - most);
}

// One line per distinct reason the runs failed: "2 of 8 runs failed (a, b):
// backend 'cuda' is unavailable: ...". Empty when every run succeeded.
QStringList failureLines(const std::vector<BenchResult>& runs) {
  const QStringList labels = run_labels(runs);
  QStringList reasons;
  std::vector<QStringList> who;
  for (size_t i = 0; i < runs.size(); ++i) {
    if (runs[i].error.empty()) continue;
    const QString why = QString::fromStdString(runs[i].error);
    qsizetype k = reasons.indexOf(why);
    if (k < 0) {
      k = reasons.size();
      reasons << why;
      who.emplace_back();
    }
    who[size_t(k)] << labels[int(i)];
  }
  QStringList out;
  for (qsizetype k = 0; k < reasons.size(); ++k)
    out << QObject::tr("%1 of %2 failed (%3): %4")
               .arg(who[size_t(k)].size())
               .arg(fmt::quantity(int64_t(runs.size()), QObject::tr("run"), QObject::tr("runs")),
                    someRuns(who[size_t(k)]), reasons[k]);
  return out;
}

// The runs that failed, by name: none of the plots can show them.
QStringList failedRuns(const std::vector<BenchResult>& runs) {
  const QStringList labels = run_labels(runs);
  QStringList out;
  for (size_t i = 0; i < runs.size(); ++i)
    if (!runs[i].error.empty()) out << labels[int(i)];
  return out;
}

QString plotsNote(const std::vector<BenchResult>& runs) {
  const QStringList failed = failedRuns(runs);
  if (failed.isEmpty()) return {};
  if (failed.size() == int(runs.size()))
    return failed.size() == 1 ? QObject::tr("No plots: the run failed, so it measured nothing.")
                              : QObject::tr("No plots: every run failed, so none measured anything.");
  return QObject::tr("Not in the plots: %1 that failed (%2), which measured nothing.")
      .arg(fmt::quantity(failed.size(), QObject::tr("run"), QObject::tr("runs")), someRuns(failed));
}

// ---- the summary table ----

struct Cell {
  QString text;     // format_field(): the figure every view shows
  QString delta;    // "+12.3%" against the baseline; empty for the baseline or when undefined
  int verdict = 0;  // +1 better than the baseline, -1 worse
  bool best = false;
  bool failed = false;  // the run failed: it has no figures
};

struct Summary {
  QStringList runs;                      // run_labels()
  QStringList columns;                   // "Generation tok/s", "TTFT p50 (ms)"
  std::vector<std::vector<Cell>> cells;  // [run][field]
};

QString columnName(const SummaryField& f) {
  const QString label = qs(f.label), unit = qs(f.unit);
  // "Requests/s" already says its unit; "(req/s)" after it only repeats it.
  const bool said =
      label.contains(unit) || (unit.endsWith(QLatin1String("/s")) && label.endsWith(QLatin1String("/s")));
  return unit.isEmpty() || said ? label : QStringLiteral("%1 (%2)").arg(label, unit);
}

Summary buildSummary(const std::vector<BenchResult>& runs, int baseline) {
  Summary s;
  s.runs = run_labels(runs);
  const auto& fields = summary_fields();
  s.cells.assign(runs.size(), std::vector<Cell>(fields.size()));
  for (size_t c = 0; c < fields.size(); ++c) {
    const SummaryField& f = fields[c];
    s.columns << columnName(f);
    std::vector<double> v(runs.size());
    double best = NAN;
    int finite = 0;
    for (size_t r = 0; r < runs.size(); ++r) {
      v[r] = f.value(runs[r]);
      s.cells[r][c].text = qs(format_field(f, v[r]));
      if (!runs[r].error.empty()) {
        s.cells[r][c].text = QObject::tr("failed");
        s.cells[r][c].failed = true;
      }
      if (!std::isfinite(v[r]) || !runs[r].error.empty()) continue;
      ++finite;
      if (std::isnan(best) || (f.higher_is_better ? v[r] > best : v[r] < best)) best = v[r];
    }
    // All equal (no preemptions anywhere, 100% goodput everywhere): nothing is best.
    bool differ = false;
    for (size_t r = 0; r < runs.size(); ++r)
      if (std::isfinite(v[r]) && runs[r].error.empty() && format_field(f, v[r]) != format_field(f, best))
        differ = true;
    if (!differ) finite = 0;
    const double base = v[baseline];
    for (size_t r = 0; r < runs.size(); ++r) {
      Cell& cell = s.cells[r][c];
      cell.best = f.ranked && finite > 1 && std::isfinite(v[r]) && runs[r].error.empty() &&
                  format_field(f, v[r]) == format_field(f, best);
      if (int(r) == baseline || !std::isfinite(v[r]) || !std::isfinite(base) || base == 0 ||
          !runs[r].error.empty() || !runs[size_t(baseline)].error.empty())
        continue;
      if (cell.text == s.cells[size_t(baseline)][c].text)
        continue;  // shows the same figure: no change to report
      const double d = (v[r] - base) / std::fabs(base) * 100.0;
      cell.delta = QString::asprintf("%+.1f%%", d);
      if (f.ranked && std::fabs(d) >= 0.05) cell.verdict = (d > 0) == f.higher_is_better ? 1 : -1;
    }
  }
  return s;
}

// ---- key/value sections: configuration, machine, model, build, workload ----

struct Section {
  QString title, anchor;
  QStringList keys;
  std::vector<QStringList> values;  // [key][run]
  bool perRun = true;               // false: every run has the same values (one column)
};

QString jsonText(const QJsonValue& v) {
  switch (v.type()) {
    case QJsonValue::Bool:
      return v.toBool() ? QStringLiteral("true") : QStringLiteral("false");
    case QJsonValue::Double:
      return QString::number(v.toDouble(), 'g', 12);
    case QJsonValue::String:
      return v.toString().isEmpty() ? QStringLiteral("-") : v.toString();
    case QJsonValue::Array: {
      QStringList parts;
      for (const QJsonValue& e : v.toArray()) parts << jsonText(e);
      return parts.isEmpty() ? QStringLiteral("-") : parts.join(QStringLiteral(", "));
    }
    case QJsonValue::Object:
      return QString::fromUtf8(QJsonDocument(v.toObject()).toJson(QJsonDocument::Compact));
    default:
      return QStringLiteral("-");
  }
}

// Adds every key of each run's `object` (first-seen order) to `s`.
void addJsonRows(Section& s, const std::vector<QJsonObject>& objects, const QString& prefix = {}) {
  QStringList keys;
  for (const QJsonObject& o : objects)
    for (const QString& k : o.keys())
      if (!keys.contains(k)) keys << k;
  for (const QString& k : keys) {
    QStringList row;
    for (const QJsonObject& o : objects) row << (o.contains(k) ? jsonText(o.value(k)) : QStringLiteral("-"));
    s.keys << prefix + k;
    s.values.push_back(row);
  }
}

void addRow(Section& s, const QString& key, const std::vector<BenchResult>& runs,
            const std::function<QString(const BenchResult&)>& value) {
  QStringList row;
  for (const BenchResult& r : runs) row << value(r);
  s.keys << key;
  s.values.push_back(row);
}

void finishSection(Section& s) {
  s.perRun = false;
  for (const QStringList& row : s.values)
    if (row.size() > 1 && row.count(row.front()) != row.size()) s.perRun = true;
}

QJsonObject resultObject(const BenchResult& r, const char* key) {
  // The stored result's own JSON, so the report lists exactly the fields a
  // results file carries.
  const QJsonDocument doc = QJsonDocument::fromJson(QByteArray::fromStdString(to_json(r, false)));
  return doc.object().value(QLatin1String(key)).toObject();
}

QString bytesText(double b) {
  if (b <= 0) return QStringLiteral("-");
  if (b >= 1073741824.0) return QString::asprintf("%.2f GiB", b / 1073741824.0);
  if (b >= 1048576.0) return QString::asprintf("%.1f MiB", b / 1048576.0);
  return QString::asprintf("%.0f KiB", b / 1024.0);
}

std::vector<Section> buildSections(const std::vector<BenchResult>& runs) {
  std::vector<Section> out;
  const QString none = QStringLiteral("-");
  auto orNone = [&](const std::string& s) { return s.empty() ? none : qs(s); };

  Section config{QObject::tr("Configuration"), QStringLiteral("configuration"), {}, {}, true};
  addRow(config, QStringLiteral("label"), runs, [&](const BenchResult& r) { return orNone(r.label); });
  addRow(config, QStringLiteral("settings"), runs, [&](const BenchResult& r) {
    QStringList parts;
    for (const auto& [k, v] : r.settings) parts << qs(k) + QLatin1Char('=') + qs(v);
    return parts.isEmpty() ? none : parts.join(QStringLiteral(", "));
  });
  addRow(config, QStringLiteral("repeat"), runs,
         [](const BenchResult& r) { return QString::number(r.repeat + 1); });
  addRow(config, QStringLiteral("matrix"), runs, [&](const BenchResult& r) { return orNone(r.matrix_name); });
  addRow(config, QStringLiteral("finished at"), runs,
         [&](const BenchResult& r) { return orNone(r.created); });
  addRow(config, QStringLiteral("SLO"), runs, [&](const BenchResult& r) {
    QStringList parts;
    if (r.slo.ttft_s > 0) parts << QStringLiteral("TTFT < %1 ms").arg(r.slo.ttft_s * 1e3);
    if (r.slo.tpot_s > 0) parts << QStringLiteral("TPOT < %1 ms").arg(r.slo.tpot_s * 1e3);
    if (r.slo.e2e_s > 0) parts << QStringLiteral("E2E < %1 ms").arg(r.slo.e2e_s * 1e3);
    return parts.isEmpty() ? QObject::tr("none") : parts.join(QStringLiteral(", "));
  });
  addRow(config, QStringLiteral("error"), runs, [&](const BenchResult& r) { return orNone(r.error); });
  // Settings of a backend no run used change nothing: "cuda_graphs true" on
  // a CPU run reads as if graphs ran. Results files keep every field.
  const auto used = [&](const char* backend) {
    return std::any_of(runs.begin(), runs.end(), [&](const BenchResult& r) {
      const std::string& b = r.system.backend_used.empty() ? r.config.backend : r.system.backend_used;
      return b == backend || b == "auto";  // an older file that does not say: either may have run
    });
  };
  QStringList unused;
  if (!used("cuda"))
    unused << QStringLiteral("gpu_memory_utilization") << QStringLiteral("cuda_graphs")
           << QStringLiteral("fused_decode") << QStringLiteral("dependent_launch")
           << QStringLiteral("fused_rope") << QStringLiteral("fp8_fast_accum")
           << QStringLiteral("split_merge_in_kernel") << QStringLiteral("l2_prefetch")
           << QStringLiteral("persistent_decode");
  if (!used("cpu"))
    unused << QStringLiteral("huge_page_weights") << QStringLiteral("int8_fma") << QStringLiteral("fp8_fma");
  std::vector<QJsonObject> configs;
  for (const BenchResult& r : runs) {
    QJsonObject o = resultObject(r, "config");
    for (const QString& k : unused) o.remove(k);
    configs.push_back(o);
  }
  addJsonRows(config, configs);
  config.perRun = true;
  out.push_back(config);

  Section machine{QObject::tr("Machine"), QStringLiteral("machine"), {}, {}, true};
  // A run with no machine recorded (a failed run in an older file) says so
  // once, under CPU; its other rows are "-", never "0 cores" or "not measured".
  const auto recorded = [&](const std::function<QString(const BenchResult&)>& value) {
    return [value, none](const BenchResult& r) { return systemRecorded(r.system) ? value(r) : none; };
  };
  addRow(machine, QObject::tr("CPU"), runs, [&](const BenchResult& r) {
    if (!systemRecorded(r.system))
      return r.error.empty() ? QObject::tr("not recorded") : QObject::tr("not recorded (the run failed)");
    return orNone(r.system.cpu_model);
  });
  addRow(
      machine, QObject::tr("cores"), runs, recorded([](const BenchResult& r) {
        return QObject::tr("%1 physical, %2 logical").arg(r.system.physical_cores).arg(r.system.logical_cpus);
      }));
  addRow(machine, QObject::tr("memory"), runs,
         [](const BenchResult& r) { return bytesText(double(r.system.memory_bytes)); });
  addRow(machine, QObject::tr("SIMD features"), runs, [&](const BenchResult& r) {
    QStringList f;
    for (const auto& s : r.system.features) f << qs(s);
    return f.isEmpty() ? none : f.join(QLatin1Char(' '));
  });
  addRow(machine, QObject::tr("kernel ISA"), runs,
         [&](const BenchResult& r) { return orNone(r.system.kernel_isa); });
  addRow(machine, QObject::tr("read bandwidth"), runs, recorded([](const BenchResult& r) {
           return r.system.measured
                      ? QString::asprintf("%.1f GB/s", r.system.read_bandwidth_bytes_per_s / 1e9)
                      : QObject::tr("not measured");
         }));
  addRow(machine, QObject::tr("FP32 FMA peak"), runs, recorded([](const BenchResult& r) {
           return r.system.measured ? QString::asprintf("%.1f GFLOP/s", r.system.fma_peak_flops / 1e9)
                                    : QObject::tr("not measured");
         }));
  addRow(machine, QObject::tr("ceilings measured"), runs, [&](const BenchResult& r) {
    if (!r.system.measured) return none;
    return QObject::tr("%1 on %2%3")
        .arg(orNone(r.system.measured_at),
             fmt::quantity(r.system.threads_used, QObject::tr("thread"), QObject::tr("threads")),
             r.system.quick ? QObject::tr(" (quick probe)") : QString());
  });
  // The backend the run used, and the GPU when it was CUDA (its ceilings are then the roofline's).
  addRow(machine, QObject::tr("backend"), runs, [&](const BenchResult& r) {
    return orNone(r.system.backend_used.empty() ? r.config.backend : r.system.backend_used);
  });
  addRow(machine, QObject::tr("GPU"), runs, [&](const BenchResult& r) {
    if (r.system.gpus.empty())
      return r.system.cuda_reason.empty() ? none : QObject::tr("none (%1)").arg(qs(r.system.cuda_reason));
    const brisk::GpuInfo& g = r.system.gpus[0];
    return QStringLiteral("%1, sm_%2%3, %4, %5, driver CUDA %6")
        .arg(qs(g.name))
        .arg(g.cc_major)
        .arg(g.cc_minor)
        .arg(fmt::quantity(g.sm_count, QStringLiteral("SM"), QStringLiteral("SMs")),
             bytesText(double(g.memory_bytes)), qs(g.driver_version));
  });
  addRow(machine, QObject::tr("GPU ceilings"), runs, [&](const BenchResult& r) {
    if (r.system.gpus.empty() || !r.system.gpus[0].measured) return none;
    const brisk::GpuInfo& g = r.system.gpus[0];
    QString s = QString::asprintf("%.0f GB/s, F16 GEMM %.0f TFLOP/s", g.bandwidth_bytes_per_s / 1e9,
                                  g.f16_flops / 1e12);
    if (g.fp8_flops > 0) s += QString::asprintf(", FP8 GEMM %.0f TFLOP/s", g.fp8_flops / 1e12);
    return s;
  });
  finishSection(machine);
  out.push_back(machine);

  Section model{QObject::tr("Model"), QStringLiteral("model"), {}, {}, true};
  addRow(model, QObject::tr("path"), runs,
         [&](const BenchResult& r) { return orNone(r.model.path.empty() ? r.config.model : r.model.path); });
  addRow(model, QObject::tr("sha256"), runs, [&](const BenchResult& r) {
    return r.model_sha256.empty() ? (r.model.synthetic ? QObject::tr("built-in demo model") : none)
                                  : qs(r.model_sha256);
  });
  // A model that never loaded (the run failed first) has no format, shape or
  // size: "not loaded" once, "-" below it, never zeros.
  addRow(model, QObject::tr("format / architecture"), runs, [&](const BenchResult& r) {
    if (!modelLoaded(r.model)) return r.error.empty() ? none : QObject::tr("not loaded (the run failed)");
    return QStringLiteral("%1 / %2").arg(orNone(r.model.format), orNone(r.model.architecture));
  });
  const auto loaded = [&](const std::function<QString(const BenchResult&)>& value) {
    return [value, none](const BenchResult& r) { return modelLoaded(r.model) ? value(r) : none; };
  };
  // Named as the window names it: a converter's default general.name ("llama")
  // names no model, so the file's name is shown, with the stored one beside it.
  addRow(model, QObject::tr("name"), runs, [&](const BenchResult& r) {
    if (r.model.path.empty() && r.model.name.empty())  // failed before loading: named by its configuration
      return r.config.model.empty() ? none : QFileInfo(qs(r.config.model)).completeBaseName();
    const QString shown = fmt::modelName(r.model);
    return r.model.name.empty() || shown == qs(r.model.name)
               ? shown
               : QObject::tr("%1 (stored name: %2)").arg(shown, qs(r.model.name));
  });
  addRow(model, QObject::tr("parameters"), runs, loaded([](const BenchResult& r) {
           return r.model.n_params >= 1e9   ? QString::asprintf("%.2f B", r.model.n_params / 1e9)
                  : r.model.n_params >= 1e6 ? QString::asprintf("%.1f M", r.model.n_params / 1e6)
                                            : QString::number(r.model.n_params);
         }));
  addRow(model, QObject::tr("shape"), runs, loaded([](const BenchResult& r) {
           const ModelInfo& m = r.model;
           return QObject::tr("dim %1, hidden %2, %3, %4 (%5 KV), head dim %6")
               .arg(m.dim)
               .arg(m.hidden_dim)
               .arg(fmt::quantity(m.n_layers, QObject::tr("layer"), QObject::tr("layers")),
                    fmt::quantity(m.n_heads, QObject::tr("head"), QObject::tr("heads")))
               .arg(m.n_kv_heads)
               .arg(m.head_dim);
         }));
  addRow(model, QObject::tr("vocabulary / context"), runs, loaded([](const BenchResult& r) {
           return QStringLiteral("%1 / %2").arg(r.model.vocab_size).arg(r.model.context_length);
         }));
  addRow(model, QObject::tr("weights as run"), runs, [&](const BenchResult& r) {
    return bytesText(double(r.model.weight_bytes)) +
           (r.model.converted_to.empty() ? QString()
                                         : QObject::tr(" (converted to %1)").arg(qs(r.model.converted_to)));
  });
  finishSection(model);
  out.push_back(model);

  Section build{QObject::tr("Brisk"), QStringLiteral("brisk"), {}, {}, true};
  addRow(build, QObject::tr("version"), runs, [&](const BenchResult& r) { return orNone(r.brisk_version); });
  addRow(build, QObject::tr("commit"), runs, [&](const BenchResult& r) { return orNone(r.commit); });
  finishSection(build);
  out.push_back(build);

  Section workload{QObject::tr("Workload"), QStringLiteral("workload"), {}, {}, true};
  std::vector<QJsonObject> workloads;
  for (const BenchResult& r : runs) {
    QJsonObject o = QJsonDocument::fromJson(QByteArray::fromStdString(to_json(r.workload))).object();
    o.remove(QStringLiteral("schema"));
    o.remove(QStringLiteral("version"));
    workloads.push_back(o);
  }
  addJsonRows(workload, workloads);
  finishSection(workload);
  out.push_back(workload);
  return out;
}

// ---- plots ----

struct RenderedPlot {
  ResultPlot kind;
  QString title, stem;  // stem: file name without suffix (Markdown)
  QImage image;
};

std::vector<ResultPlot> plotsFor(const std::vector<BenchResult>& runs, int baseline) {
  // Every run failed: there is nothing to draw (plotsNote() says so).
  if (std::all_of(runs.begin(), runs.end(), [](const BenchResult& r) { return !r.error.empty(); })) return {};
  std::vector<ResultPlot> out{ResultPlot::ThroughputBars, ResultPlot::LatencyCdf, ResultPlot::TtftBars,
                              ResultPlot::TpotBars};
  bool sweep = false, kv = false;
  for (const BenchResult& r : runs) {
    for (const auto& kvp : r.settings) sweep = sweep || is_sweep_key(kvp.first);
    for (const StepMetrics& s : r.steps) kv = kv || s.kv_blocks_total > 0;
  }
  if (sweep || runs.size() > 1) out.push_back(ResultPlot::ThroughputVsLatency);
  if (kv) out.push_back(ResultPlot::KvOccupancy);
  if (!runs[baseline].requests.empty()) out.push_back(ResultPlot::RequestTimeline);
  return out;
}

QString plotStem(ResultPlot p) {
  switch (p) {
    case ResultPlot::ThroughputBars:
      return QStringLiteral("throughput");
    case ResultPlot::LatencyCdf:
      return QStringLiteral("latency-cdf");
    case ResultPlot::TtftBars:
      return QStringLiteral("ttft");
    case ResultPlot::TpotBars:
      return QStringLiteral("tpot");
    case ResultPlot::ThroughputVsLatency:
      return QStringLiteral("throughput-vs-latency");
    case ResultPlot::KvOccupancy:
      return QStringLiteral("kv-occupancy");
    case ResultPlot::RequestTimeline:
      return QStringLiteral("request-timeline");
  }
  return QStringLiteral("plot");
}

std::vector<RenderedPlot> renderPlots(const std::vector<BenchResult>& runs, int baseline,
                                      const PlotSize& size) {
  std::vector<RenderedPlot> out;
  // Never shown: QCustomPlot renders into a pixmap of the asked size.
  QCustomPlot plot;
  plot.resize(size.width, size.height);
  for (ResultPlot p : plotsFor(runs, baseline)) {
    draw_result_plot(&plot, p, runs, baseline);
    RenderedPlot r{p, result_plot_title(p), plotStem(p), {}};
    if (p == ResultPlot::RequestTimeline)
      if (auto* t = qobject_cast<QCPTextElement*>(plot.plotLayout()->element(0, 0))) r.title = t->text();
    r.image = plot.toPixmap(size.width, size.height, size.scale).toImage();
    out.push_back(std::move(r));
  }
  return out;
}

QByteArray pngBytes(const QImage& image) {
  QByteArray bytes;
  QBuffer buffer(&bytes);
  buffer.open(QIODevice::WriteOnly);
  image.save(&buffer, "PNG");
  return bytes;
}

QString runsText(size_t n) { return fmt::quantity(int64_t(n), QObject::tr("run"), QObject::tr("runs")); }

QString generatedAt() {
  return QDateTime::currentDateTimeUtc().toString(QStringLiteral("yyyy-MM-dd HH:mm 'UTC'"));
}

// The different values `of` takes over the runs, in run order.
QStringList distinct(const std::vector<BenchResult>& runs,
                     const std::function<QString(const BenchResult&)>& of) {
  QStringList out;
  for (const BenchResult& r : runs)
    if (const QString v = of(r); !out.contains(v)) out << v;
  return out;
}

// What built the runs, and where they ran: every value the runs have, not
// only the baseline's (a report may compare files from two machines).
QString versionLine(const std::vector<BenchResult>& runs) {
  const QStringList builds = distinct(runs, [](const BenchResult& b) {
    QString v =
        QObject::tr("Brisk %1").arg(b.brisk_version.empty() ? QStringLiteral("?") : qs(b.brisk_version));
    if (!b.commit.empty()) v += QObject::tr(" (commit %1)").arg(qs(b.commit));
    return v;
  });
  return builds.size() == 1 ? builds.front()
                            : QObject::tr("builds differ: %1").arg(builds.join(QStringLiteral(", ")));
}

QString machineLine(const std::vector<BenchResult>& runs) {
  const QStringList models = distinct(
      runs, [](const BenchResult& b) { return qs(b.model.path.empty() ? b.config.model : b.model.path); });
  // A run with no machine recorded (failed, older file) is no machine of its own.
  QStringList machines;
  for (const BenchResult& b : runs) {
    if (!systemRecorded(b.system)) continue;
    const QString m = QObject::tr("%1 · %2").arg(
        b.system.cpu_model.empty() ? QObject::tr("unknown CPU") : qs(b.system.cpu_model),
        fmt::quantity(b.system.physical_cores, QObject::tr("core"), QObject::tr("cores")));
    if (!machines.contains(m)) machines << m;
  }
  if (machines.isEmpty()) machines << QObject::tr("machine not recorded");
  return QObject::tr("%1 %2 · %3")
      .arg(models.size() == 1 ? QObject::tr("Model") : QObject::tr("Models"),
           models.join(QStringLiteral(", ")),
           machines.size() == 1
               ? machines.front()
               : QObject::tr("machines differ: %1").arg(machines.join(QStringLiteral("; "))));
}

// Under the summary table, in every format.
QString summaryNote(const std::vector<BenchResult>& runs, const Summary& sum, int baseline, bool markdown) {
  QString note = markdown
                     ? QObject::tr(
                           "Best value per row in **bold**; changes in parentheses are against the "
                           "baseline run, %1.")
                     : QObject::tr("Best value per row in bold; changes are against the baseline run, %1.");
  note = note.arg(sum.runs[baseline]);
  if (!runs[size_t(baseline)].error.empty())
    note += QObject::tr(" The baseline run failed: there are no changes to show.");
  note += QObject::tr(" Quality figures (perplexity, KL, agreement) are not ranked.");
  for (const SummaryField& f : summary_fields())
    if (f.key == "decode_bandwidth_pct" &&
        std::any_of(runs.begin(), runs.end(), [&f](const BenchResult& r) { return f.value(r) > 100; })) {
      note += QObject::tr(
          " Decode % of bandwidth above 100: the weights fit in the CPU's caches, so memory "
          "bandwidth is not what bounds that run.");
      break;
    }
  return note;
}

// ---- HTML ----

const char* kCss = R"CSS(
body{font-family:-apple-system,"Segoe UI","DejaVu Sans",Helvetica,Arial,sans-serif;color:#24292f;margin:0;background:#fff}
main{max-width:1180px;margin:0 auto;padding:24px 28px 48px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:32px 0 10px;padding-bottom:4px;border-bottom:1px solid #d8dee4}
.meta{color:#57606a;margin:0 0 14px}nav a{margin-right:14px;color:#0969da;text-decoration:none}
.scroll{overflow-x:auto}table{border-collapse:collapse;font-size:13px;margin:6px 0}
th,td{border:1px solid #d8dee4;padding:4px 8px;text-align:right;vertical-align:top;white-space:nowrap}
th{background:#f3f5f7;font-weight:600}td.k,th.k{text-align:left}td.wrap{white-space:normal;text-align:left;max-width:520px;word-break:break-all}
td.basecol,th.basecol{background:#fbf8e8}tr.diff td.k{border-left:3px solid #f28e2b}
b.best{color:#0b5d1e}.d{display:block;font-size:11px;color:#6e7781}.d.up{color:#1a7f37}.d.down{color:#cf222e}
figure{margin:18px 0}figure img{width:100%;max-width:1100px;border:1px solid #eaeef2}
figcaption{color:#57606a;font-size:13px}.note{color:#57606a;font-size:13px}
.failures{border-left:4px solid #cf222e;background:#fff5f5;padding:6px 12px;margin:0 0 14px}
.failures p{margin:4px 0;color:#82071e}td.failed,th.failed,.d.failed{color:#cf222e}
)CSS";

// What a failed run shows where it recorded nothing.
bool unknownOfFailedRun(const QString& cell, const BenchResult& r) {
  return !r.error.empty() &&
         (cell == QLatin1String("-") || cell == QObject::tr("not recorded (the run failed)") ||
          cell == QObject::tr("not loaded (the run failed)"));
}

QString htmlSection(const Section& s, const QStringList& runs, const std::vector<BenchResult>& results) {
  QString h =
      QStringLiteral("<h2 id=\"%1\">%2</h2>\n<div class=\"scroll\"><table>\n").arg(s.anchor, esc(s.title));
  if (s.perRun) {
    h += QStringLiteral("<tr><th class=\"k\"></th>");
    for (int r = 0; r < runs.size(); ++r)
      h += QStringLiteral("<th%1>%2</th>")
               .arg(results[size_t(r)].error.empty() ? QString() : QStringLiteral(" class=\"failed\""),
                    esc(runs[r]));
    h += QStringLiteral("</tr>\n");
  }
  for (int k = 0; k < s.keys.size(); ++k) {
    const QStringList& row = s.values[size_t(k)];
    // Marked when the runs differ; a failed run's unknown ("-") is no difference.
    QStringList known;
    for (int r = 0; r < row.size(); ++r)
      if (!unknownOfFailedRun(row[r], results[size_t(r)]) && !known.contains(row[r])) known << row[r];
    const bool diff = s.perRun && known.size() > 1;
    h += QStringLiteral("<tr%1><td class=\"k\">%2</td>")
             .arg(diff ? QStringLiteral(" class=\"diff\"") : QString(), esc(s.keys[k]));
    for (int r = 0; r < (s.perRun ? row.size() : 1); ++r)
      h += QStringLiteral("<td class=\"%1\">%2</td>")
               .arg(s.perRun ? QStringLiteral("k") : QStringLiteral("wrap"), esc(row[r]));
    h += QStringLiteral("</tr>\n");
  }
  return h + QStringLiteral("</table></div>\n");
}

QByteArray buildHtml(const std::vector<BenchResult>& runs, const ReportOptions& o, const Summary& sum,
                     const std::vector<RenderedPlot>& plots, const std::vector<Section>& sections) {
  QString h;
  h += QStringLiteral(
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
  h += QStringLiteral("<title>%1</title>\n<style>%2</style></head>\n<body><main>\n")
           .arg(esc(o.title), QString::fromLatin1(kCss));
  h += QStringLiteral("<h1>%1</h1>\n<p class=\"meta\">%2 · %3 · %4<br>%5</p>\n")
           .arg(esc(o.title), esc(QObject::tr("Generated %1").arg(generatedAt())), esc(runsText(runs.size())),
                esc(versionLine(runs)), esc(machineLine(runs)));
  if (const QStringList failures = failureLines(runs); !failures.isEmpty()) {
    h += QStringLiteral("<div class=\"failures\">");
    for (const QString& line : failures) h += QStringLiteral("<p>%1</p>").arg(esc(line));
    h += QStringLiteral("</div>\n");
  }
  h += QStringLiteral("<nav><a href=\"#summary\">Summary</a><a href=\"#plots\">Plots</a>");
  for (const Section& s : sections) h += QStringLiteral("<a href=\"#%1\">%2</a>").arg(s.anchor, esc(s.title));
  h += QStringLiteral("</nav>\n");

  // One row per figure and a column per run: two dozen figure columns would
  // not fit a page, a handful of runs does.
  h += QStringLiteral(
           "<h2 id=\"summary\">Summary</h2>\n<p class=\"note\">%1</p>\n<div class=\"scroll\"><table>\n")
           .arg(esc(summaryNote(runs, sum, o.baseline, false)));
  h += QStringLiteral("<tr><th class=\"k\">figure</th>");
  for (size_t r = 0; r < runs.size(); ++r) {
    const bool failed = !runs[r].error.empty();
    QString attrs;
    if (int(r) == o.baseline || failed)
      attrs = QStringLiteral(" class=\"%1\"")
                  .arg(QStringList{int(r) == o.baseline ? QStringLiteral("basecol") : QString(),
                                   failed ? QStringLiteral("failed") : QString()}
                           .join(QLatin1Char(' '))
                           .trimmed());
    if (failed) attrs += QStringLiteral(" title=\"%1\"").arg(esc(qs(runs[r].error)));
    h += QStringLiteral("<th%1>%2%3%4</th>")
             .arg(attrs, esc(sum.runs[int(r)]),
                  int(r) == o.baseline ? QStringLiteral("<span class=\"d\">baseline</span>") : QString(),
                  failed ? QStringLiteral("<span class=\"d failed\">failed</span>") : QString());
  }
  h += QStringLiteral("</tr>\n");
  for (int c = 0; c < sum.columns.size(); ++c) {
    h += QStringLiteral("<tr><td class=\"k\">%1</td>").arg(esc(sum.columns[c]));
    for (size_t r = 0; r < runs.size(); ++r) {
      const Cell& cell = sum.cells[r][size_t(c)];
      QString v = esc(cell.text);
      if (cell.best) v = QStringLiteral("<b class=\"best\">%1</b>").arg(v);
      if (!cell.delta.isEmpty())
        v += QStringLiteral("<span class=\"d%1\">%2</span>")
                 .arg(cell.verdict > 0   ? QStringLiteral(" up")
                      : cell.verdict < 0 ? QStringLiteral(" down")
                                         : QString(),
                      esc(cell.delta));
      if (cell.failed) {
        h += QStringLiteral("<td class=\"failed%1\" title=\"%2\">%3</td>")
                 .arg(int(r) == o.baseline ? QStringLiteral(" basecol") : QString(), esc(qs(runs[r].error)),
                      v);
        continue;
      }
      h += QStringLiteral("<td%1>%2</td>")
               .arg(int(r) == o.baseline ? QStringLiteral(" class=\"basecol\"") : QString(), v);
    }
    h += QStringLiteral("</tr>\n");
  }
  h += QStringLiteral("</table></div>\n");

  h += QStringLiteral("<h2 id=\"plots\">Plots</h2>\n");
  if (const QString note = plotsNote(runs); !note.isEmpty())
    h += QStringLiteral("<p class=\"note\">%1</p>\n").arg(esc(note));
  for (const RenderedPlot& p : plots)
    h += QStringLiteral(
             "<figure id=\"plot-%1\"><img alt=\"%2\" src=\"data:image/png;base64,%3\">"
             "<figcaption>%2</figcaption></figure>\n")
             .arg(p.stem, esc(p.title), QString::fromLatin1(pngBytes(p.image).toBase64()));

  for (const Section& s : sections) h += htmlSection(s, sum.runs, runs);
  h += QStringLiteral("</main></body></html>\n");
  return h.toUtf8();
}

// ---- Markdown ----

QString mdCell(QString s) {
  return s.replace(QLatin1Char('|'), QStringLiteral("\\|")).replace(QLatin1Char('\n'), QLatin1Char(' '));
}

QString mdTable(const QStringList& header, const std::vector<QStringList>& rows) {
  QString m = QStringLiteral("|");
  for (const QString& c : header) m += QLatin1Char(' ') + mdCell(c) + QStringLiteral(" |");
  m += QStringLiteral("\n|");
  for (int i = 0; i < header.size(); ++i) m += i < 1 ? QStringLiteral("---|") : QStringLiteral("---:|");
  m += QLatin1Char('\n');
  for (const QStringList& row : rows) {
    m += QLatin1Char('|');
    for (const QString& c : row) m += QLatin1Char(' ') + mdCell(c) + QStringLiteral(" |");
    m += QLatin1Char('\n');
  }
  return m;
}

void writeMarkdown(const std::vector<BenchResult>& runs, const QString& path, const ReportOptions& o,
                   const Summary& sum, const std::vector<RenderedPlot>& plots,
                   const std::vector<Section>& sections) {
  const QFileInfo info(path);
  const QString folder = info.completeBaseName() + QStringLiteral("_files");
  QDir dir = info.absoluteDir();
  if (!dir.exists(folder) && !dir.mkpath(folder))
    fail(dir.filePath(folder), QStringLiteral("cannot create the folder"));

  QString m = QStringLiteral("# %1\n\n%2 · %3 · %4  \n%5\n\n")
                  .arg(o.title, QObject::tr("Generated %1").arg(generatedAt()), runsText(runs.size()),
                       versionLine(runs), machineLine(runs));
  // Failed runs, one quoted line per reason, before any table.
  if (const QStringList failures = failureLines(runs); !failures.isEmpty())
    m += QStringLiteral("> %1\n\n").arg(failures.join(QStringLiteral("  \n> ")));
  m += QStringLiteral("## Summary\n\n%1\n\n").arg(summaryNote(runs, sum, o.baseline, true));
  QStringList header{QObject::tr("figure")};
  for (size_t r = 0; r < runs.size(); ++r)
    header << sum.runs[int(r)] + (int(r) == o.baseline ? QObject::tr(" (baseline)") : QString()) +
                  (runs[r].error.empty() ? QString() : QObject::tr(" (failed)"));
  std::vector<QStringList> rows;
  for (int c = 0; c < sum.columns.size(); ++c) {
    QStringList row{sum.columns[c]};
    for (size_t r = 0; r < runs.size(); ++r) {
      const Cell& cell = sum.cells[r][size_t(c)];
      QString v = cell.best ? QStringLiteral("**%1**").arg(cell.text) : cell.text;
      if (!cell.delta.isEmpty()) v += QStringLiteral(" (%1)").arg(cell.delta);
      row << v;
    }
    rows.push_back(row);
  }
  m += mdTable(header, rows) + QLatin1Char('\n');

  m += QStringLiteral("## Plots\n\n");
  if (const QString note = plotsNote(runs); !note.isEmpty()) m += note + QStringLiteral("\n\n");
  for (const RenderedPlot& p : plots) {
    const QString file = p.stem + QStringLiteral(".png");
    const QString target = dir.filePath(folder + QLatin1Char('/') + file);
    if (!p.image.save(target, "PNG")) fail(target, QStringLiteral("cannot write the plot image"));
    m += QStringLiteral("![%1](%2/%3)\n\n")
             .arg(p.title, QString::fromLatin1(QUrl::toPercentEncoding(folder)), file);
  }

  for (const Section& s : sections) {
    m += QStringLiteral("## %1\n\n").arg(s.title);
    QStringList h{QObject::tr("field")};
    if (s.perRun)
      h += sum.runs;
    else
      h << QObject::tr("value");
    std::vector<QStringList> body;
    for (int k = 0; k < s.keys.size(); ++k) {
      QStringList row{s.keys[k]};
      row += s.perRun ? s.values[size_t(k)] : QStringList{s.values[size_t(k)].front()};
      body.push_back(row);
    }
    m += mdTable(h, body) + QLatin1Char('\n');
  }
  writeFile(path, m.toUtf8());
}

// ---- PDF ----

class PdfReport {
 public:
  PdfReport(const QString& path, const QString& title) : path_(path), writer_(path) {
    writer_.setPageSize(QPageSize(QPageSize::A4));
    writer_.setPageOrientation(QPageLayout::Landscape);
    writer_.setPageMargins(QMarginsF(12, 12, 12, 14), QPageLayout::Millimeter);
    writer_.setResolution(150);
    writer_.setTitle(title);
    writer_.setCreator(QStringLiteral("Brisk"));
    if (!painter_.begin(&writer_)) fail(path, QStringLiteral("cannot write the PDF"));
    const QRect paint = writer_.pageLayout().paintRectPixels(writer_.resolution());
    area_ = QRectF(0, 0, paint.width(), paint.height());
    footerFont_ = font(7.5);
    footer_ = title;
    y_ = 0;
  }
  ~PdfReport() {
    if (painter_.isActive()) painter_.end();
  }

  QFont font(double pt, bool bold = false) const {
    QFont f(QStringLiteral("DejaVu Sans"));
    f.setPointSizeF(pt);
    f.setBold(bold);
    return f;
  }
  double width() const { return area_.width(); }
  // Measured on the PDF itself: its resolution is not the screen's.
  QFontMetricsF metrics(const QFont& f) const { return QFontMetricsF(f, &writer_); }

  void newPage() {
    drawFooter();
    writer_.newPage();
    ++page_;
    y_ = 0;
  }
  void ensure(double h) {
    if (y_ > 0 && y_ + h > area_.height() - footerHeight()) newPage();
  }
  void text(const QString& s, const QFont& f, const QColor& color = QColor(0x24, 0x29, 0x2f),
            double after = 0.35) {
    painter_.setFont(f);
    const QRectF box = painter_.boundingRect(QRectF(0, 0, width(), 1e6), Qt::TextWordWrap, s);
    ensure(box.height());
    painter_.setPen(color);
    painter_.drawText(QRectF(0, y_, width(), box.height()), Qt::TextWordWrap, s);
    y_ += box.height() + metrics(f).height() * after;
  }
  void heading(const QString& s) {
    const QFontMetricsF fm = metrics(font(13, true));
    ensure(fm.height() * 7);  // never alone at the foot of a page
    y_ += fm.height() * 0.4;
    text(s, font(13, true), QColor(0x24, 0x29, 0x2f), 0.3);
  }

  // A table: header row, then rows; `bold` marks cells (same shape as rows).
  // Continues on the next page (header repeated) when it does not fit.
  // wrap: long values (paths, hashes, settings) take up to three lines;
  // otherwise every row is one line and a value too long is elided.
  // failedColumns: columns (by index) of runs that failed, their headers
  // drawn in red, and their cells too where failedCells.
  void table(const QStringList& header, const std::vector<QStringList>& rows,
             const std::vector<std::vector<bool>>& bold = {}, bool wrapCells = false,
             const std::vector<bool>& failedColumns = {}, bool failedCells = true) {
    const auto failedColumn = [&](int c) {
      return size_t(c) < failedColumns.size() && failedColumns[size_t(c)];
    };
    const double pt = header.size() > 7 ? 7.8 : 8.5;  // eight runs across A4 need the smaller type
    const QFont body = font(pt), strong = font(pt, true);
    const QFontMetricsF fm = metrics(body), fmb = metrics(strong);
    const double pad = fm.height() * 0.35, rowH = fm.height() * 1.4;
    const int cols = int(header.size());
    // Columns as wide as their widest cell; the first (the names) at most 30%
    // of the page, the others shrunk alike when they do not fit.
    std::vector<double> w(size_t(cols), 0);
    for (int c = 0; c < cols; ++c) {
      for (const QStringList& r : rows)
        if (c < r.size()) w[size_t(c)] = std::max(w[size_t(c)], fmb.horizontalAdvance(r[c]));
      w[size_t(c)] += 2 * pad;
    }
    w[0] = std::min(std::max(w[0], fmb.horizontalAdvance(header[0]) + 2 * pad), width() * 0.3);
    // Room to spare goes to the run columns, so their headers fit in two
    // lines; never narrower than a header's longest word.
    const double room = width() - w[0];
    std::vector<double> least(size_t(cols), 0), want(size_t(cols), 0);
    double sumLeast = 0, sumWant = 0;
    for (int c = 1; c < cols; ++c) {
      double longestWord = 0;
      for (const QString& word : header[c].split(QLatin1Char(' ')))
        longestWord = std::max(longestWord, fmb.horizontalAdvance(word));
      least[size_t(c)] = std::max(w[size_t(c)], longestWord + 2 * pad);
      want[size_t(c)] = std::max(least[size_t(c)], fmb.horizontalAdvance(header[c]) / 1.7 + 2 * pad);
      // Words break where they break: widen until the header does take two lines.
      painter_.setFont(strong);
      while (want[size_t(c)] < fmb.horizontalAdvance(header[c]) + 2 * pad &&
             painter_.boundingRect(QRectF(0, 0, want[size_t(c)] - 2 * pad, 1e6), Qt::TextWordWrap, header[c])
                     .height() > fmb.height() * 2.5)
        want[size_t(c)] *= 1.05;
      sumLeast += least[size_t(c)];
      sumWant += want[size_t(c)];
    }
    for (int c = 1; c < cols; ++c) {
      const size_t i = size_t(c);
      if (sumWant <= room)
        w[i] = want[i];
      else if (sumLeast <= room)
        w[i] = least[i] + (room - sumLeast) * (want[i] - least[i]) / (sumWant - sumLeast);
      else
        w[i] = least[i] * room / sumLeast;
    }
    double tableWidth = 0;
    for (double cw : w) tableWidth += cw;
    double headH = fmb.height() * 2;
    painter_.setFont(strong);
    for (int c = 0; c < cols; ++c)
      headH = std::max(headH,
                       std::min(fmb.height() * 3, painter_
                                                      .boundingRect(QRectF(0, 0, w[size_t(c)] - 2 * pad, 1e6),
                                                                    Qt::TextWordWrap, header[c])
                                                      .height()));
    headH += pad * 2;

    const int align = wrapCells ? Qt::AlignLeft : Qt::AlignRight;
    auto drawHeader = [&]() {
      painter_.fillRect(QRectF(0, y_, tableWidth, headH), QColor(0xf0, 0xf2, 0xf5));
      painter_.setFont(strong);
      painter_.setPen(QColor(0x24, 0x29, 0x2f));
      double x = 0;
      for (int c = 0; c < cols; ++c) {
        const QRectF cell(x + pad, y_ + pad, w[size_t(c)] - 2 * pad, headH - 2 * pad);
        painter_.setPen(failedColumn(c) ? kFailedInk : QColor(0x24, 0x29, 0x2f));
        painter_.drawText(cell, Qt::AlignBottom | Qt::TextWordWrap | (c == 0 ? Qt::AlignLeft : align),
                          header[c]);
        x += w[size_t(c)];
      }
      y_ += headH;
    };
    // A long value (a path, a hash, the settings) wraps onto up to three lines.
    // Words wrap; a single word wider than its cell (a hash) breaks anywhere.
    auto wrapFor = [&](const QString& text, double width) {
      if (!wrapCells) return 0;
      for (const QString& word : text.split(QLatin1Char(' ')))
        if (fmb.horizontalAdvance(word) > width) return int(Qt::TextWrapAnywhere);
      return int(Qt::TextWordWrap);
    };
    auto heightOf = [&](const QStringList& cells) {
      double h = rowH;
      if (!wrapCells) return h;
      painter_.setFont(strong);
      for (int c = 0; c < cols && c < cells.size(); ++c) {
        const double cw = w[size_t(c)] - 2 * pad;
        const QRectF box = painter_.boundingRect(QRectF(0, 0, cw, 1e6), wrapFor(cells[c], cw), cells[c]);
        h = std::max(h, std::min(box.height(), fm.height() * 3) + rowH - fm.height());
      }
      return h;
    };
    auto drawRow = [&](const QStringList& cells, const std::vector<bool>* b, double h) {
      double x = 0;
      for (int c = 0; c < cols; ++c) {
        const bool isBold = b && size_t(c) < b->size() && (*b)[size_t(c)];
        painter_.setFont(isBold ? strong : body);
        painter_.setPen(isBold                           ? QColor(0x0b, 0x5d, 0x1e)
                        : failedCells && failedColumn(c) ? kFailedInk
                                                         : QColor(0x24, 0x29, 0x2f));
        const QRectF cell(x + pad, y_, w[size_t(c)] - 2 * pad, h);
        QString s = c < cells.size() ? cells[c] : QString();
        if (!wrapCells) s = (isBold ? fmb : fm).elidedText(s, Qt::ElideRight, cell.width());
        painter_.save();
        painter_.setClipRect(cell);
        painter_.drawText(cell,
                          Qt::AlignVCenter | wrapFor(s, cell.width()) | (c == 0 ? Qt::AlignLeft : align), s);
        painter_.restore();
        x += w[size_t(c)];
      }
      painter_.setPen(QPen(QColor(0xd8, 0xde, 0xe4), 1));
      painter_.drawLine(QPointF(0, y_ + h), QPointF(tableWidth, y_ + h));
      y_ += h;
    };
    ensure(headH + rowH * 3);
    drawHeader();
    for (size_t r = 0; r < rows.size(); ++r) {
      const double h = heightOf(rows[r]);
      if (y_ + h > area_.height() - footerHeight()) {
        newPage();
        drawHeader();
      }
      drawRow(rows[r], r < bold.size() ? &bold[r] : nullptr, h);
    }
    y_ += rowH * 0.6;
  }

  void image(const QImage& img, double maxHeight) {
    const double scale = std::min(width() / img.width(), maxHeight / img.height());
    const QSizeF size(img.width() * scale, img.height() * scale);
    painter_.setRenderHint(QPainter::SmoothPixmapTransform);
    painter_.drawImage(QRectF((width() - size.width()) / 2, y_, size.width(), size.height()), img);
    y_ += size.height() + 12;
  }
  double remaining() const { return area_.height() - footerHeight() - y_; }
  double pageHeight() const { return area_.height() - footerHeight(); }

  void finish() {
    drawFooter();
    if (!painter_.end()) fail(path_, QStringLiteral("cannot write the PDF"));
  }

 private:
  double footerHeight() const { return metrics(footerFont_).height() * 1.8; }
  void drawFooter() {
    painter_.setFont(footerFont_);
    painter_.setPen(QColor(0x6e, 0x77, 0x81));
    const double h = metrics(footerFont_).height();
    const QRectF r(0, area_.height() - h, width(), h);
    painter_.drawText(r, Qt::AlignLeft | Qt::AlignVCenter, footer_);
    painter_.drawText(r, Qt::AlignRight | Qt::AlignVCenter, QObject::tr("page %1").arg(page_));
  }

  QString path_;
  QPdfWriter writer_;
  QPainter painter_;
  QRectF area_;
  QFont footerFont_;
  QString footer_;
  double y_ = 0;
  int page_ = 1;
};

// Runs per table, balanced: 9 runs are tables of 5 and 4, not 8 and 1.
size_t runsPerTable(size_t runs, size_t most = kPdfRunsPerTable) {
  const size_t tables = (runs + most - 1) / most;
  return std::max<size_t>(1, (runs + tables - 1) / std::max<size_t>(1, tables));
}

void writePdf(const std::vector<BenchResult>& runs, const QString& path, const ReportOptions& o,
              const Summary& sum, const std::vector<RenderedPlot>& plots,
              const std::vector<Section>& sections) {
  PdfReport pdf(path, o.title);
  pdf.text(o.title, pdf.font(20, true), QColor(0x24, 0x29, 0x2f), 0.2);
  pdf.text(QStringLiteral("%1 · %2 · %3")
               .arg(QObject::tr("Generated %1").arg(generatedAt()), runsText(runs.size()), versionLine(runs)),
           pdf.font(9.5), QColor(0x57, 0x60, 0x6a), 0.2);
  const QStringList failures = failureLines(runs);
  pdf.text(machineLine(runs), pdf.font(9.5), QColor(0x57, 0x60, 0x6a), failures.isEmpty() ? 0.6 : 0.3);
  for (int i = 0; i < failures.size(); ++i)
    pdf.text(failures[i], pdf.font(8.5), kFailedInk, i + 1 == failures.size() ? 0.6 : 0.1);

  // Summary: one row per figure, a column per run (A4 has no room for two
  // dozen figure columns), in groups of runs.
  pdf.heading(QObject::tr("Summary"));
  pdf.text(summaryNote(runs, sum, o.baseline, false), pdf.font(8.5), QColor(0x57, 0x60, 0x6a));
  const size_t perTable = runsPerTable(runs.size());
  for (size_t first = 0; first < runs.size(); first += perTable) {
    const size_t last = std::min(runs.size(), first + perTable);
    QStringList header{QObject::tr("figure")};
    std::vector<bool> failedColumns{false};
    for (size_t r = first; r < last; ++r) {
      // A failed run's name is red and each of its cells reads "failed": a
      // "(failed)" after the name too would take a third header line.
      header << sum.runs[int(r)] + (int(r) == o.baseline ? QObject::tr(" (baseline)") : QString());
      failedColumns.push_back(!runs[r].error.empty());
    }
    std::vector<QStringList> rows;
    std::vector<std::vector<bool>> bold;
    const bool anyRan =
        std::any_of(runs.begin(), runs.end(), [](const BenchResult& r) { return r.error.empty(); });
    for (int c = 0; c < sum.columns.size(); ++c) {
      // A figure no run has (no quality measured, ...) would only take room on
      // page 1; failed runs have none of them. (Every run failed: one row says so.)
      if (anyRan ? std::all_of(sum.cells.begin(), sum.cells.end(),
                               [c](const std::vector<Cell>& run) {
                                 return run[size_t(c)].failed || run[size_t(c)].text == QLatin1String("-");
                               })
                 : c > 0)
        continue;
      QStringList row{sum.columns[c]};
      std::vector<bool> brow{false};
      for (size_t r = first; r < last; ++r) {
        const Cell& cell = sum.cells[r][size_t(c)];
        row << (cell.delta.isEmpty() ? cell.text : QStringLiteral("%1 (%2)").arg(cell.text, cell.delta));
        brow.push_back(cell.best);
      }
      rows.push_back(row);
      bold.push_back(brow);
    }
    pdf.table(header, rows, bold, false, failedColumns);
  }

  // Plots, two to a page.
  const QString plotNote = plotsNote(runs);
  const double noteHeight = plotNote.isEmpty() ? 0 : pdf.metrics(pdf.font(8.5)).height() * 1.4;
  if (plots.empty() && !plotNote.isEmpty()) {
    pdf.heading(QObject::tr("Plots"));
    pdf.text(plotNote, pdf.font(8.5), QColor(0x57, 0x60, 0x6a));
  }
  for (size_t i = 0; i < plots.size(); ++i) {
    if (i % 2 == 0) {
      pdf.newPage();
      if (i == 0) {
        pdf.heading(QObject::tr("Plots"));
        if (!plotNote.isEmpty()) pdf.text(plotNote, pdf.font(8.5), QColor(0x57, 0x60, 0x6a));
      }
    }
    pdf.image(plots[i].image, (pdf.pageHeight() - (i < 2 ? 70 + noteHeight : 0)) / 2 - 14);
  }

  // Configuration, machine, model, build and workload.
  pdf.newPage();
  for (const Section& s : sections) {
    pdf.heading(s.title);
    if (!s.perRun) {
      std::vector<QStringList> rows;
      for (int k = 0; k < s.keys.size(); ++k) rows.push_back({s.keys[k], s.values[size_t(k)].front()});
      pdf.table({QObject::tr("field"), QObject::tr("value")}, rows, {}, true);
      continue;
    }
    const size_t perKeyTable = runsPerTable(runs.size(), kPdfRunsPerKeyTable);
    for (size_t first = 0; first < runs.size(); first += perKeyTable) {
      const size_t last = std::min(runs.size(), first + perKeyTable);
      QStringList header{QObject::tr("field")};
      std::vector<bool> failedColumns{false};
      for (size_t r = first; r < last; ++r) {
        header << sum.runs[int(r)];
        failedColumns.push_back(!runs[r].error.empty());
      }
      std::vector<QStringList> rows;
      for (int k = 0; k < s.keys.size(); ++k) {
        QStringList row{s.keys[k]};
        for (size_t r = first; r < last; ++r) row << s.values[size_t(k)][int(r)];
        rows.push_back(row);
      }
      pdf.table(header, rows, {}, true, failedColumns, false);  // what it was set to is no failure
    }
  }
  pdf.finish();
}

}  // namespace

ReportFormat report_format_for(const QString& path) {
  const QString suffix = QFileInfo(path).suffix().toLower();
  if (suffix == QLatin1String("html") || suffix == QLatin1String("htm")) return ReportFormat::Html;
  if (suffix == QLatin1String("pdf")) return ReportFormat::Pdf;
  if (suffix == QLatin1String("md") || suffix == QLatin1String("markdown")) return ReportFormat::Markdown;
  if (suffix == QLatin1String("json")) return ReportFormat::Json;
  if (suffix == QLatin1String("csv")) return ReportFormat::Csv;
  fail(path, QStringLiteral("unknown report format '.%1' (use .html, .pdf, .md, .json or .csv)").arg(suffix));
}

void write_report(const std::vector<BenchResult>& runs, const QString& path, ReportFormat format,
                  const ReportOptions& options) {
  if (runs.empty()) fail(path, QStringLiteral("no runs to report"));
  if (options.baseline < 0 || options.baseline >= int(runs.size()))
    fail(path, QStringLiteral("baseline run %1 does not exist (there are %2 runs)")
                   .arg(options.baseline + 1)
                   .arg(runs.size()));
  // The results file byte for byte (bench --out writes it so: with a final newline).
  if (format == ReportFormat::Json)
    return writeFile(path, QByteArray::fromStdString(results_to_json(runs) + "\n"));
  if (format == ReportFormat::Csv) return writeFile(path, QByteArray::fromStdString(summary_csv(runs)));
  // The plots are QCustomPlot widgets, which need a QApplication (offscreen will do).
  if (!qobject_cast<QApplication*>(QCoreApplication::instance()))
    fail(path, QStringLiteral(
                   "writing plots needs a QApplication (run with QT_QPA_PLATFORM=offscreen if headless)"));

  const Summary sum = buildSummary(runs, options.baseline);
  const std::vector<Section> sections = buildSections(runs);
  const std::vector<RenderedPlot> plots =
      renderPlots(runs, options.baseline, format == ReportFormat::Pdf ? kPdfPlot : kScreenPlot);
  switch (format) {
    case ReportFormat::Html:
      writeFile(path, buildHtml(runs, options, sum, plots, sections));
      break;
    case ReportFormat::Markdown:
      writeMarkdown(runs, path, options, sum, plots, sections);
      break;
    case ReportFormat::Pdf:
      writePdf(runs, path, options, sum, plots, sections);
      break;
    default:
      break;
  }
}

}  // namespace brisk::ui
