// Shared by the plots and the report writer so a run carries one name and
// one colour in every picture and table of a report.
#pragma once
#include <QColor>
#include <QString>
#include <QStringList>
#include <vector>

#include "brisk/bench_matrix.h"

namespace brisk::ui {

// One name per run: the run's label ("run N" when it has none), with " r#"
// (repeat, 1-based) added when the label occurs more than once, and " (N)"
// if that still leaves two runs with one name.
QStringList run_labels(const std::vector<BenchResult>& runs);

// The report palette (Tableau 10): run i gets report_color(i).
QColor report_color(int i);

// Settings keys a sweep varies; runs differing only in these form one curve.
bool is_sweep_key(const std::string& key);

}  // namespace brisk::ui
