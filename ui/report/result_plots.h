// The comparison plots, drawn into a QCustomPlot: used live by the Compare
// view and rendered to PNG by the report writer, so both show one picture.
// Every plot gets a title, axis labels with units and a legend.
#pragma once
#include <QString>
#include <Qt>
#include <vector>

#include "brisk/bench_matrix.h"

class QCustomPlot;

namespace brisk::ui {

enum class ResultPlot {
  ThroughputBars,       // generation and prompt tok/s per run
  LatencyCdf,           // E2E latency CDF per run
  TtftBars,             // TTFT p50/p90/p99 per run
  TpotBars,             // TPOT p50/p90/p99 per run
  ThroughputVsLatency,  // sweeps: one point per rate / concurrency, a curve per configuration
  KvOccupancy,          // KV blocks used / total over time, per run
  RequestTimeline,      // one run: a row per request, queued / prefill chunks / decode, slow gaps marked
};

QString result_plot_title(ResultPlot p);
// Clears `plot` and draws `p` for `runs` (RequestTimeline draws runs[focus]).
void draw_result_plot(QCustomPlot* plot, ResultPlot p, const std::vector<BenchResult>& runs, int focus = 0);

// The line style of run i's per-run lines: report_color() repeats after ten
// runs, so runs 10..19 are dashed and 20 on dotted, and no two runs of a plot
// look alike until the 31st.
Qt::PenStyle report_pen_style(int i);

}  // namespace brisk::ui
