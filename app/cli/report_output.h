// Writes benchmark results in the report format the path's suffix names
// (.json .csv .md .html .pdf). JSON and CSV need nothing beyond the engine;
// the others render plots through Qt (ui/report) and are unavailable in a
// build without BRISK_WITH_UI (a clear error says so).
#pragma once
#include <string>
#include <vector>

#include "brisk/bench_matrix.h"

namespace brisk::cli {

// Throws brisk::Error naming the path on failure. An empty title keeps the
// report writer's default.
void write_report_file(const std::vector<BenchResult>& runs, const std::string& path, int baseline = 0,
                       const std::string& title = "");

}  // namespace brisk::cli
