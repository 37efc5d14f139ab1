#include "cli/report_output.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "brisk/error.h"

#ifdef BRISK_CLI_WITH_UI
#include <QApplication>
#include <memory>
#include <utility>

#include "report/report_writer.h"
#endif

namespace brisk::cli {

namespace {

std::string suffix_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  const size_t dot = path.find_last_of('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
  std::string s = path.substr(dot + 1);
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return s;
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) throw Error(path + ": cannot write the report (" + std::strerror(errno) + ")");
  f << text;
  f.flush();
  if (!f) throw Error(path + ": write failed");
}

bool known_report_suffix(const std::string& s) {
  return s == "json" || s == "csv" || s == "html" || s == "htm" || s == "pdf" || s == "md" || s == "markdown";
}

}  // namespace

void check_output_path(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (path.empty()) throw Error("an output path is empty");
  if (fs::is_directory(path, ec)) throw Error(path + ": is a folder, not a file");
  // An existing file is written in place (/dev/stdout, a file made for it in
  // a folder we may not write): it only has to be writable itself.
  if (fs::exists(path, ec)) {
    if (::access(path.c_str(), W_OK) != 0)
      throw Error(path + ": cannot write it (" + std::strerror(errno) + ")");
    return;
  }
  const fs::path parent = fs::path(path).has_parent_path() ? fs::path(path).parent_path() : fs::path(".");
  if (!fs::is_directory(parent, ec))
    throw Error(path + ": the folder " + parent.string() + " does not exist");
  if (::access(parent.c_str(), W_OK) != 0)
    throw Error(path + ": cannot write in " + parent.string() + " (" + std::strerror(errno) + ")");
}

void check_report_path(const std::string& path) {
  check_output_path(path);
  const std::string suffix = suffix_of(path);
  if (suffix.empty())
    throw Error(path + ": no suffix to name the report format (use .html, .pdf, .md, .json or .csv)");
  if (!known_report_suffix(suffix))
    throw Error(path + ": unknown report format '." + suffix + "' (use .html, .pdf, .md, .json or .csv)");
#ifndef BRISK_CLI_WITH_UI
  if (suffix != "json" && suffix != "csv")
    throw Error(path + ": ." + suffix +
                " reports draw plots with Qt, and this brisk-cli was built without the UI " +
                "(BRISK_WITH_UI=OFF); write .json or .csv, or rebuild with -DBRISK_WITH_UI=ON");
#endif
}

void write_report_file(const std::vector<BenchResult>& runs, const std::string& path, int baseline,
                       const std::string& title) {
  if (runs.empty()) throw Error(path + ": no runs to report");
  if (baseline < 0 || baseline >= int(runs.size()))
    throw Error(path + ": baseline run " + std::to_string(baseline + 1) + " does not exist (there are " +
                std::to_string(runs.size()) + " runs)");
  const std::string suffix = suffix_of(path);
  // JSON and CSV come straight from the engine, so they work without Qt.
  // With the newline the bench's --out file ends in: a results file re-exported is the same bytes.
  if (suffix == "json") return write_text(path, results_to_json(runs) + "\n");
  if (suffix == "csv") return write_text(path, summary_csv(runs));
  if (!known_report_suffix(suffix))
    throw Error(path + ": unknown report format '." + suffix + "' (use .html, .pdf, .md, .json or .csv)");
#ifdef BRISK_CLI_WITH_UI
  // The plots are QCustomPlot widgets: they need a QApplication, which a
  // headless command gets on the offscreen platform (no display needed).
  std::unique_ptr<QApplication> app;
  if (!QCoreApplication::instance()) {
    qputenv("QT_QPA_PLATFORM", "offscreen");
    // Headless sessions often lack XDG_RUNTIME_DIR; Qt's note about it is
    // noise in a command's output.
    static QtMessageHandler previous = nullptr;
    static bool filtered = false;
    if (!std::exchange(filtered, true))
      previous =
          qInstallMessageHandler([](QtMsgType type, const QMessageLogContext& ctx, const QString& msg) {
            if (msg.startsWith(QLatin1String("QStandardPaths: "))) return;
            if (previous) previous(type, ctx, msg);
          });
    static int argc = 1;
    static char name[] = "brisk-cli";
    static char* argv[] = {name, nullptr};
    app = std::make_unique<QApplication>(argc, argv);
  }
  ui::ReportOptions options;
  options.baseline = baseline;
  if (!title.empty()) options.title = QString::fromStdString(title);
  const QString qpath = QString::fromStdString(path);
  ui::write_report(runs, qpath, ui::report_format_for(qpath), options);
#else
  (void)title;
  throw Error(path + ": ." + suffix +
              " reports draw plots with Qt, and this brisk-cli was built without the UI (BRISK_WITH_UI=OFF); "
              "write .json or .csv, or rebuild with -DBRISK_WITH_UI=ON");
#endif
}

}  // namespace brisk::cli
