// A/B matrices: one workload run against several engine configurations,
// each repeated, every result kept. The same code runs `brisk-cli bench
// --matrix`, the GUI's Benchmark view and (through the stored results)
// reports, so the three never disagree. No Qt.
#pragma once
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "brisk/benchmark.h"

namespace brisk {

// JSON schema "brisk.matrix" version 1 (docs/schemas/matrix.v1.schema.json,
// docs/WORKLOADS.md). kind:
//   "grid"              the cartesian product of `axes` over `base`;
//   "rate_sweep"        the workload's arrival made Poisson at each of `rates`
//                       (crossed with `axes`, if any);
//   "concurrency_sweep" the workload's max_concurrency set to each of
//                       `concurrencies` (crossed with `axes`, if any).
// An axis names an EngineConfig field as the JSON config uses it
// ("weight_dtype", "kv_dtype", "policy", "max_num_seqs", "block_size",
// "enable_prefix_caching", "speculative_tokens", "int8_activations",
// "max_num_batched_tokens", "enable_chunked_prefill", "threads") or a
// workload decoding field ("n", "best_of", "beam_width", "temperature"),
// with its values as strings ("f16", "static", "8", "true").
struct MatrixAxis {
  std::string field;
  std::vector<std::string> values;
};

struct MatrixSpec {
  std::string name;
  std::string kind = "grid";
  EngineConfig base;  // model, threads, KV size, ... shared by every run
  std::vector<MatrixAxis> axes;
  std::vector<double> rates;       // rate_sweep
  std::vector<int> concurrencies;  // concurrency_sweep
  int repeats = 1;
  int warmup_requests = 2;
  Slo slo;
  // Judge precision changes: perplexity on this text and greedy agreement on
  // these prompts against an F32 baseline, for runs whose weight_dtype or
  // kv_dtype is not f32/auto. Empty = not measured.
  std::string quality_text, quality_prompts;
};

MatrixSpec matrix_from_json(const std::string& text, const std::string& source);  // throws naming the field
// The checks a matrix file gets, on a MatrixSpec however it was made (the
// file reader and the GUI's matrix builder both call it; expand_matrix too):
// a known kind, a valid base, no two axes on one field, no value listed
// twice, no axis on what a concurrency sweep varies, rates and concurrencies
// only in their sweep kind and in range, repeats, warm-up and SLO in range.
// Throws brisk::Error "SOURCE: field 'axes[1].field': why".
void validate_matrix(const MatrixSpec& m, const std::string& source);
MatrixSpec load_matrix(const std::string& path);
std::string to_json(const MatrixSpec& m);

// One run of a matrix, before it runs.
struct MatrixRun {
  std::string label;  // the axis values joined by " · " ("base" when there are none)
  std::vector<std::pair<std::string, std::string>> settings;
  EngineConfig config;
  WorkloadSpec workload;
  int repeat = 0;
};
// Runs in execution order: every configuration's repeat 0, then repeat 1, ...
// (so a partial matrix still compares every configuration). Throws naming
// a bad axis field or value.
std::vector<MatrixRun> expand_matrix(const MatrixSpec& m, const WorkloadSpec& w);

// The files the runs' workloads read, prompt datasets (prompt_len
// file:PATH) and traces (trace_path), each read and checked once, before any
// run starts: a bad line fails the matrix at once, not after the runs before
// it spent their time. A trace must also hold an arrival for every request
// of each run. Throws brisk::Error naming the file, line and field, as the
// readers do. run_matrix replays from the result instead of reading again.
struct MatrixInputs {
  struct Files;
  std::shared_ptr<const Files> files;
};
MatrixInputs check_matrix_inputs(const std::vector<MatrixRun>& runs);
// One line where runs that resolve to the CPU set CUDA-only fields (a
// matrix base with backend "auto" on a machine without CUDA): run_matrix
// records them at their defaults, as the CLI does with such flags. Empty
// when there is nothing to say.
std::string cuda_only_fields_note(const std::vector<MatrixRun>& runs);
// The same, and m's quality files (quality_text, quality_prompts), read and
// checked as measure_quality reads them: a file that is missing, a directory,
// holds no text or no prompts fails here, not in the first run's quality
// phase after its timed benchmark.
MatrixInputs check_matrix_inputs(const MatrixSpec& m, const std::vector<MatrixRun>& runs);
// That check of the quality files alone (an empty path is not measured, not
// checked): for the CLI's --quality-text / --quality-prompts on one configuration.
void check_quality_files(const std::string& text_path, const std::string& prompts_path);

struct MatrixProgress {
  int run = 0, runs = 0;  // the current run (0-based) of all of them
  std::string label;
  int repeat = 0;
  std::string phase;  // "loading", "warmup", "running", "quality", "done"
  int requests_done = 0, requests_total = 0;
  double elapsed_s = 0;                // since the matrix started
  double eta_s = -1;                   // remaining, estimated from finished runs; -1 unknown
  double fraction = 0;                 // 0..1 of the whole matrix
  MetricsSnapshot live;                // the current run's engine, for live plots
  std::vector<StepMetrics> new_steps;  // steps since the previous report
};

// Runs every run one after another, each on a freshly built Engine (one
// model load per run, so no run inherits another's cache or warm state). `progress` is called from the
// calling thread about every 100 ms and at each phase change; `stop` set
// ends the matrix after the current step (the run in progress is dropped).
// `on_result` receives each finished run as soon as it is complete.
// Errors in one run (bad configuration, model that will not load) are
// recorded in that BenchResult's `error` and the matrix goes on. A bad
// matrix or input file throws before the first run: `inputs` is what
// check_matrix_inputs gave for these runs (null: run_matrix calls it); the
// quality files are checked then either way.
struct MatrixCallbacks {
  std::function<void(const MatrixProgress&)> progress;
  std::function<void(const BenchResult&)> on_result;
  const std::atomic<bool>* stop = nullptr;
};
std::vector<BenchResult> run_matrix(const MatrixSpec& m, const WorkloadSpec& w,
                                    const MatrixCallbacks& cb = {}, const MatrixInputs* inputs = nullptr);

// The same configuration at F32 weights and KV: what quality is measured against.
EngineConfig fp32_reference(const EngineConfig& c);
// One prompt per non-blank line, or JSONL lines with a string "prompt";
// brisk::Error naming the file (and line) otherwise.
std::vector<std::string> read_prompt_lines(const std::string& path);
// What cfg's precision costs against fp32_reference(cfg): perplexity and KL
// divergence on the text file (when text_path is set) and greedy agreement
// over agreement_tokens tokens of each prompt (when prompts_path is set).
QualityFigures measure_quality(const EngineConfig& cfg, const std::string& text_path,
                               const std::string& prompts_path, int agreement_tokens);

// A results file: {"schema": "brisk.results", "version": 1, "runs": [...]}
// (docs/schemas/results.v1.schema.json); each run is to_json(BenchResult).
std::string results_to_json(const std::vector<BenchResult>& runs);
std::vector<BenchResult> results_from_json(const std::string& text, const std::string& source);
std::vector<BenchResult> load_results(const std::string& path);  // a results file or one bare BenchResult

// The summary table every view shows (CLI table, CSV, HTML/PDF/Markdown
// reports, the GUI's Compare table): one definition of each column, so the
// same stored result reads the same everywhere.
struct SummaryField {
  std::string key;    // CSV header / JSON key: "generation_tokens_per_s"
  std::string label;  // "Generation tok/s"
  std::string unit;   // "tok/s", "ms", "%", ""
  bool higher_is_better = true;
  int decimals = 1;
  std::function<double(const BenchResult&)> value;  // NaN when not applicable
  // Whether "best of these runs" means anything: not for quality figures,
  // where a quantized run's perplexity a hair under F32's is noise, not a win.
  bool ranked = true;
};
const std::vector<SummaryField>& summary_fields();
std::string format_field(const SummaryField& f, double v);  // "-" for NaN
// CSV: header "run,label,repeat,<keys...>" then one row per run, values unformatted (full precision).
std::string summary_csv(const std::vector<BenchResult>& runs);

}  // namespace brisk
