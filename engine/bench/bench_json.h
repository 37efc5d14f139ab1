// JSON plumbing shared by the benchmark's files (workloads, matrices,
// results): one place that writes each object and one strict reader whose
// errors name the source and the dotted field path.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "brisk/bench_matrix.h"
#include "brisk/benchmark.h"

namespace brisk::bench {

using nlohmann::json;

// A float as the shortest decimal that reads back as the same float, so
// files say 0.9 and not 0.8999999761581421.
double float_json(float v);

[[noreturn]] void fail(const std::string& source, const std::string& field, const std::string& why);

// Reads one JSON object, remembering which keys were read so that a strict
// caller can reject the rest as unknown fields.
class ObjReader {
 public:
  ObjReader(const json& j, std::string path, const std::string& source);
  std::string name(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }
  const std::string& source() const { return source_; }
  // nullptr when absent or null.
  const json* find(const std::string& key);
  void get(const std::string& key, double& v);
  void get(const std::string& key, float& v);
  void get(const std::string& key, int& v);
  void get(const std::string& key, int64_t& v);
  void get(const std::string& key, uint64_t& v);
  void get(const std::string& key, bool& v);
  void get(const std::string& key, std::string& v);
  void get(const std::string& key, std::vector<double>& v);
  void get(const std::string& key, std::vector<std::string>& v);
  [[noreturn]] void fail(const std::string& key, const std::string& why) const;
  void reject_unknown() const;

 private:
  const json& j_;
  std::string path_;
  const std::string& source_;
  std::set<std::string> seen_;
};

json config_json(const EngineConfig& c);
// Strict: unknown keys are errors. Starts from `base` (defaults when omitted).
EngineConfig config_from(const json& j, const std::string& path, const std::string& source,
                         EngineConfig base = {});
// Throws naming the field when the config does not validate.
void validate_config(const EngineConfig& c, const std::string& path, const std::string& source);

json workload_json(const WorkloadSpec& w);
WorkloadSpec workload_from(const json& j, const std::string& path, const std::string& source);
// Throws brisk::Error "source: field 'path.x': why" on a nonsense spec.
void validate_workload(const WorkloadSpec& w, const std::string& path, const std::string& source);

json result_json(const BenchResult& r, bool with_series);
BenchResult result_from(const json& j, const std::string& path, const std::string& source);

std::string read_text_file(const std::string& path, const char* what);
// Throws "PATH: is a directory, not a WHAT": an ifstream opens a directory and
// reads nothing, which every reader would report as an empty file.
void refuse_directory(const std::string& path, const char* what);

// The JSONL files of a workload, read strictly and alike: blank lines are
// skipped, every other line is one object, unknown keys are errors, and
// max_tokens (optional: 0 here means absent, so output_len decides) is an
// integer >= 1. Errors name "PATH:LINE", the field and the value.
// A prompt dataset (prompt_len "file:PATH.jsonl"): {"prompt": ..., "max_tokens": N}.
struct DatasetLine {
  std::string prompt;
  int max_tokens = 0;
};
std::vector<DatasetLine> read_prompt_dataset(const std::string& path);
// A trace (trace_path): {"timestamp": S, "prompt": ..., "max_tokens": N}; prompt optional.
struct TraceFileLine {
  double timestamp = 0;
  std::string prompt;
  bool has_prompt = false;
  int max_tokens = 0;
};
std::vector<TraceFileLine> read_trace(const std::string& path);
// A workload's files, read: its prompt dataset (prompt_len file:PATH) and,
// for arrival "trace", its trace file (trace_path); null where it names none.
struct WorkloadFiles {
  std::shared_ptr<const std::vector<DatasetLine>> dataset;
  std::shared_ptr<const std::vector<TraceFileLine>> trace;
};
// Throws "TRACE has N arrivals but num_requests is M" when a trace is short.
void check_trace_length(const WorkloadSpec& w, size_t arrivals);
// make_workload over files already read; a file w names that `files` lacks is read here.
std::vector<WorkloadRequest> make_workload(const WorkloadSpec& w, const Engine& engine,
                                           const WorkloadFiles& files);
std::string utc_now();
// Hex SHA-256 of a file, streamed (brisk::Error naming the file if unreadable).
std::string sha256_file(const std::string& path);
std::string sha256_hex(const std::string& bytes);

}  // namespace brisk::bench
