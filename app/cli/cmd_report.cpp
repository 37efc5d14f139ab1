// brisk-cli report: a report from stored results (brisk-cli bench --out, the
// GUI's results store), in the format the --out suffix names.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "brisk/bench_matrix.h"
#include "brisk/error.h"
#include "cli/common.h"
#include "cli/report_output.h"

namespace brisk::cli {

namespace {

// A results file's runs; a directory stands for every *.json file in it.
std::vector<BenchResult> load_input(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error(path + ": no such file");
  if (fs::is_directory(path, ec)) {
    std::vector<std::string> files;
    for (const auto& e : fs::directory_iterator(path, ec))
      if (e.is_regular_file() && e.path().extension() == ".json") files.push_back(e.path().string());
    if (ec) throw Error(path + ": cannot list the directory: " + ec.message());
    if (files.empty()) throw Error(path + ": no .json results files in this directory");
    std::sort(files.begin(), files.end());
    std::vector<BenchResult> runs;
    for (const auto& f : files) {
      auto more = load_input(f);
      runs.insert(runs.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
    }
    return runs;
  }
  try {
    return load_results(path);
  } catch (const Error& e) {
    const std::string what = e.what();
    if (what.find(path) != std::string::npos) throw;
    throw Error(path + ": " + what);
  }
}

}  // namespace

int cmd_report(const std::vector<std::string>& argv) {
  Args a("report", "RESULTS.json... --out PATH [flags]",
         "Build a report from stored benchmark results (files written by `brisk-cli bench --out`, the GUI's\n"
         "results store, or an earlier `report --out x.json`). The runs of every file are concatenated in\n"
         "the order given; a directory stands for all its *.json files. The --out suffix picks the format:\n"
         ".html (one self-contained file, plots embedded), .pdf (A4 landscape), .md (PNG plots in\n"
         "NAME_files/ beside it), .json (the runs, re-importable) or .csv (the summary table).");
  a.flag("--out", "PATH", "the report to write (.html .pdf .md .json .csv)");
  a.flag("--baseline", "N", "the run (1-based, in input order) that deltas are computed against", "1");
  a.flag("--title", "TEXT", "the report's title", "Brisk benchmark report");
  if (!a.parse(argv)) return 0;
  if (a.positional().empty()) throw UsageError("report needs at least one results file (see --help)");
  if (!a.has("--out")) throw UsageError("report needs --out PATH (.html, .pdf, .md, .json or .csv)");
  const std::string out = a.str("--out");
  check_report_path(out);

  std::vector<BenchResult> runs;
  for (const auto& path : a.positional()) {
    auto more = load_input(path);
    if (more.empty()) throw Error(path + ": the file holds no runs");
    runs.insert(runs.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
  }
  const long long baseline = a.integer("--baseline", 1, 1000000);
  if (baseline > (long long)runs.size())
    throw UsageError("--baseline " + std::to_string(baseline) + " is past the last run (there are " +
                     std::to_string(runs.size()) + ")");
  write_report_file(runs, out, int(baseline - 1), a.str("--title"));
  std::printf("wrote %s (%zu run%s from %zu file%s)\n", out.c_str(), runs.size(), runs.size() == 1 ? "" : "s",
              a.positional().size(), a.positional().size() == 1 ? "" : "s");
  return 0;
}

}  // namespace brisk::cli
