// The one definition of the summary table's columns: the CLI table, the CSV,
// every report format and the GUI's Compare table read these, so the same
// stored result shows the same figures everywhere.
#include <cmath>
#include <cstdio>
#include <limits>

#include "brisk/bench_matrix.h"

namespace brisk {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// A failed run has no figures; a percentile over no values is not zero.
double ok(const BenchResult& r, double v) { return r.error.empty() ? v : kNaN; }
bool has_text(const BenchResult& r) { return r.quality.measured && !r.quality.text_path.empty(); }
double ms(const BenchResult& r, const Percentiles& p, double Percentiles::*m) {
  return ok(r, p.count > 0 ? p.*m * 1e3 : kNaN);
}

}  // namespace

const std::vector<SummaryField>& summary_fields() {
  using P = Percentiles;
  static const std::vector<SummaryField> fields = {
      {"generation_tokens_per_s", "Generation tok/s", "tok/s", true, 1,
       [](const BenchResult& r) { return ok(r, r.summary.generation_tokens_per_s); }},
      {"prompt_tokens_per_s", "Prompt tok/s", "tok/s", true, 1,
       [](const BenchResult& r) { return ok(r, r.summary.prompt_tokens_per_s); }},
      {"requests_per_s", "Requests/s", "req/s", true, 2,
       [](const BenchResult& r) { return ok(r, r.summary.requests_per_s); }},
      {"goodput_requests_per_s", "Goodput req/s", "req/s", true, 2,
       [](const BenchResult& r) { return ok(r, r.summary.goodput_requests_per_s); }},
      {"goodput_pct", "Goodput %", "%", true, 1,
       [](const BenchResult& r) { return ok(r, r.summary.goodput_fraction * 100); }},
      {"ttft_mean_ms", "TTFT mean ms", "ms", false, 1,
       [](const BenchResult& r) { return ms(r, r.summary.ttft, &P::mean); }},
      {"ttft_p50_ms", "TTFT p50 ms", "ms", false, 1,
       [](const BenchResult& r) { return ms(r, r.summary.ttft, &P::p50); }},
      {"ttft_p90_ms", "TTFT p90 ms", "ms", false, 1,
       [](const BenchResult& r) { return ms(r, r.summary.ttft, &P::p90); }},
      {"ttft_p99_ms", "TTFT p99 ms", "ms", false, 1,
       [](const BenchResult& r) { return ms(r, r.summary.ttft, &P::p99); }},
      {"tpot_mean_ms", "TPOT mean ms", "ms", false, 2,
       [](const BenchResult& r) { return ms(r, r.summary.tpot, &P::mean); }},
      {"tpot_p50_ms", "TPOT p50 ms", "ms", false, 2,
       [](const BenchResult& r) { return ms(r, r.summary.tpot, &P::p50); }},
      {"tpot_p90_ms", "TPOT p90 ms", "ms", false, 2,
       [](const BenchResult& r) { return ms(r, r.summary.tpot, &P::p90); }},
      {"tpot_p99_ms", "TPOT p99 ms", "ms", false, 2,
       [](const BenchResult& r) { return ms(r, r.summary.tpot, &P::p99); }},
      {"itl_p50_ms", "ITL p50 ms", "ms", false, 2,
       [](const BenchResult& r) { return ms(r, r.summary.itl, &P::p50); }},
      {"itl_p99_ms", "ITL p99 ms", "ms", false, 2,
       [](const BenchResult& r) { return ms(r, r.summary.itl, &P::p99); }},
      {"e2e_p50_ms", "E2E p50 ms", "ms", false, 1,
       [](const BenchResult& r) { return ms(r, r.summary.e2e, &P::p50); }},
      {"e2e_p99_ms", "E2E p99 ms", "ms", false, 1,
       [](const BenchResult& r) { return ms(r, r.summary.e2e, &P::p99); }},
      {"queue_p50_ms", "Queue p50 ms", "ms", false, 1,
       [](const BenchResult& r) { return ms(r, r.summary.queue, &P::p50); }},
      // Less of the cache for the same work leaves room for more sequences.
      {"kv_occupancy_mean_pct", "KV occupancy mean %", "%", false, 1,
       [](const BenchResult& r) { return ok(r, r.summary.kv_occupancy_mean * 100); }},
      {"kv_occupancy_peak_pct", "KV occupancy peak %", "%", false, 1,
       [](const BenchResult& r) { return ok(r, r.summary.kv_occupancy_peak * 100); }},
      {"preemptions", "Preemptions", "", false, 0,
       [](const BenchResult& r) { return ok(r, (double)r.summary.preemptions); }},
      {"prefix_hit_pct", "Prefix hit %", "%", true, 1,
       [](const BenchResult& r) { return ok(r, r.summary.prefix_cache_hit_rate * 100); }},
      {"spec_acceptance_pct", "Spec acceptance %", "%", true, 1,
       [](const BenchResult& r) { return ok(r, r.summary.spec_acceptance_rate * 100); }},
      {"mean_batch_size", "Mean batch size", "", true, 2,
       [](const BenchResult& r) { return ok(r, r.summary.mean_batch_size); }},
      {"decode_bandwidth_pct", "Decode % of bandwidth", "%", true, 1,
       [](const BenchResult& r) {
         const RooflineFigures& f = r.roofline;
         return ok(r, f.measured && f.decode_steps > 0 ? f.decode_bandwidth_fraction * 100 : kNaN);
       }},
      // Quality against the F32 reference (matrices with quality files):
      // shown, never ranked.
      {"perplexity", "Perplexity", "", false, 3,
       [](const BenchResult& r) { return ok(r, has_text(r) ? r.quality.perplexity : kNaN); }, false},
      {"perplexity_vs_f32_pct", "Perplexity vs F32 %", "%", false, 2,
       [](const BenchResult& r) {
         const QualityFigures& q = r.quality;
         return ok(r, has_text(r) && q.baseline_perplexity > 0
                          ? (q.perplexity / q.baseline_perplexity - 1) * 100
                          : kNaN);
       },
       false},
      {"kl_vs_f32", "KL vs F32 (mean)", "nats", false, 5,
       [](const BenchResult& r) { return ok(r, has_text(r) ? r.quality.kl_mean : kNaN); }, false},
      {"top1_vs_f32_pct", "Top-1 vs F32 %", "%", true, 2,
       [](const BenchResult& r) { return ok(r, has_text(r) ? r.quality.top1_agreement * 100 : kNaN); },
       false},
      {"greedy_agreement_pct", "Greedy agreement %", "%", true, 1,
       [](const BenchResult& r) {
         const QualityFigures& q = r.quality;
         return ok(r, q.measured && !q.prompts_path.empty() ? q.greedy_agreement * 100 : kNaN);
       },
       false},
  };
  return fields;
}

std::string format_field(const SummaryField& f, double v) {
  if (std::isnan(v)) return "-";
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", f.decimals, v);
  return b;
}

namespace {

std::string csv_cell(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string o = "\"";
  for (char c : s) o += c == '"' ? std::string("\"\"") : std::string(1, c);
  return o + "\"";
}

}  // namespace

std::string summary_csv(const std::vector<BenchResult>& runs) {
  std::string out = "run,label,repeat";
  for (const SummaryField& f : summary_fields()) out += "," + f.key;
  // Last, so the figures keep their columns: a failed run's figures are
  // empty, and these say why.
  out += ",status,error\n";
  for (size_t i = 0; i < runs.size(); ++i) {
    out += std::to_string(i) + "," + csv_cell(runs[i].label) + "," + std::to_string(runs[i].repeat);
    for (const SummaryField& f : summary_fields()) {
      const double v = f.value(runs[i]);
      out += ",";
      // Full precision, so a re-read CSV gives back the stored double; empty when not applicable.
      if (!std::isnan(v)) {
        char b[64];
        std::snprintf(b, sizeof b, "%.17g", v);
        out += b;
      }
    }
    out += runs[i].error.empty() ? ",ok," : ",failed," + csv_cell(runs[i].error);
    out += "\n";
  }
  return out;
}

}  // namespace brisk
