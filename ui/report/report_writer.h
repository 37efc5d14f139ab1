// Reports: a selection of stored benchmark runs written as a self-contained
// HTML page (plots embedded as PNG data URIs), a PDF (QPdfWriter, several
// pages), Markdown with PNG plots beside it, the re-importable JSON results
// file, or the summary CSV. The tables come from brisk::summary_fields()
// and the plots from ResultPlots, exactly as the Compare view shows them.
#pragma once
#include <QString>
#include <vector>

#include "brisk/bench_matrix.h"

namespace brisk::ui {

enum class ReportFormat { Html, Pdf, Markdown, Json, Csv };

// From the file suffix (.html/.htm, .pdf, .md, .json, .csv); throws
// brisk::Error naming the path otherwise.
ReportFormat report_format_for(const QString& path);

struct ReportOptions {
  QString title = QStringLiteral("Brisk benchmark report");
  int baseline = 0;  // run index the deltas are against
};

// Writes the report; throws brisk::Error naming the path on failure.
// Needs a QApplication (the plots are QCustomPlot widgets; any platform,
// offscreen included) for every format but JSON and CSV.
void write_report(const std::vector<BenchResult>& runs, const QString& path, ReportFormat format,
                  const ReportOptions& options = {});

}  // namespace brisk::ui
