// Writes benchmark results in the report format the path's suffix names
// (.json .csv .md .html .pdf). JSON and CSV need nothing beyond the engine;
// the others render plots through Qt (ui/report) and are unavailable in a
// build without BRISK_WITH_UI (a clear error says so).
#pragma once
#include <string>
#include <vector>

#include "brisk/bench_matrix.h"

namespace brisk::cli {

// Before any work: throws brisk::Error naming the path when no file could be
// written there (a missing or read-only folder, a folder in its place).
void check_output_path(const std::string& path);
// check_output_path, and a suffix this build can write.
void check_report_path(const std::string& path);

// Throws brisk::Error naming the path on failure. An empty title keeps the
// report writer's default.
void write_report_file(const std::vector<BenchResult>& runs, const std::string& path, int baseline = 0,
                       const std::string& title = "");

}  // namespace brisk::cli
