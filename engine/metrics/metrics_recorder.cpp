#include "metrics/metrics_recorder.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <utility>

#include "metrics/metrics_json.h"

namespace brisk {

double RequestMetrics::tpot() const {
  if (token_times.size() < 2) return -1;
  int64_t tokens = (int64_t)token_times.size();  // parallel sampling: one per sequence an entry
  if (sequences() == 1) {
    tokens = 0;
    for (size_t i = 0; i < token_times.size(); ++i) tokens += tokens_at(i);
  }
  return (token_times.back() - token_times.front()) / (double)(tokens - 1);
}

double RequestMetrics::decode_tokens_per_s() const {
  if (token_times.size() < 2 || token_times.back() <= token_times.front()) return -1;
  return (output_tokens - tokens_at(0)) / (token_times.back() - token_times.front());
}

Percentiles percentiles(std::vector<double> v) {
  Percentiles p;
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return !(x >= 0); }), v.end());
  p.count = (int)v.size();
  if (v.empty()) return p;
  std::sort(v.begin(), v.end());
  double sum = 0;
  for (double x : v) sum += x;
  p.mean = sum / v.size();
  // Nearest-rank percentiles: always a value that was observed.
  auto at = [&](double q) {
    return v[std::min(v.size() - 1, (size_t)std::ceil(q * v.size()) - (q > 0 ? 1 : 0))];
  };
  p.p50 = at(0.50);
  p.p90 = at(0.90);
  p.p99 = at(0.99);
  p.max = v.back();
  return p;
}

void MetricsRecorder::on_add(uint64_t id, double arrival, int prompt_tokens) {
  RequestMetrics& r = live_[id];
  r.request_id = id;
  r.arrival = arrival;
  r.prompt_tokens = prompt_tokens;
  added_++;
}

void MetricsRecorder::on_scheduled(uint64_t id, double t) {
  auto it = live_.find(id);
  if (it != live_.end() && it->second.first_scheduled < 0) it->second.first_scheduled = t;
}

void MetricsRecorder::on_token(uint64_t id, double t) {
  auto it = live_.find(id);
  if (it == live_.end()) return;
  RequestMetrics& r = it->second;
  if (r.first_token < 0) r.first_token = t;
  // Tokens of one step (sibling sequences, accepted drafts) are one entry.
  if (advanced_.insert(id).second) {
    r.token_times.push_back(t);
    r.token_counts.push_back(1);
  } else {
    r.token_counts.back()++;
  }
  generation_tokens_++;
  step_tokens_++;
}

void MetricsRecorder::on_prefill_chunk(uint64_t id, double start, double end, int tokens) {
  auto it = live_.find(id);
  if (it != live_.end()) it->second.prefill_chunks.push_back({start, end, tokens});
}

void MetricsRecorder::on_detokenize(uint64_t id, double seconds) {
  auto it = live_.find(id);
  if (it != live_.end()) it->second.detokenize_s += seconds;
}

void MetricsRecorder::on_preempt(uint64_t id) {
  auto it = live_.find(id);
  if (it != live_.end()) it->second.preemptions++;
  preemptions_++;
}

RequestTimings MetricsRecorder::on_finish(uint64_t id, double t, FinishReason reason, int output_tokens) {
  auto it = live_.find(id);
  if (it == live_.end()) return {};
  RequestMetrics r = std::move(it->second);
  live_.erase(it);
  r.finished = t;
  r.finish_reason = reason;
  r.output_tokens = output_tokens;
  if (reason == FinishReason::Error) rejected_++;
  if (reason == FinishReason::Abort) aborted_++;
  const RequestTimings timings{r.arrival,     r.first_scheduled,
                               r.first_token, r.token_times.empty() ? -1 : r.token_times.back(),
                               r.finished,    r.preemptions};
  finished_.push_back(std::move(r));
  return timings;
}

void MetricsRecorder::on_step(const StepMetrics& s) {
  steps_.push_back(s);
  steps_.back().generated_tokens = std::exchange(step_tokens_, 0);
  advanced_.clear();
  prompt_tokens_ += s.prefill_tokens;  // includes prompts recomputed after preemption
  prefix_query_tokens_ += s.prefix_query_tokens;
  prefix_hit_tokens_ += s.prefix_hit_tokens;
  spec_proposed_ += s.spec_proposed_tokens;
  spec_accepted_ += s.spec_accepted_tokens;
  decode_seq_steps_ += s.decode_seqs;
}

void MetricsRecorder::reset() {
  finished_.clear();
  steps_.clear();
  added_ = rejected_ = aborted_ = preemptions_ = prompt_tokens_ = generation_tokens_ = 0;
  prefix_query_tokens_ = prefix_hit_tokens_ = 0;
  spec_proposed_ = spec_accepted_ = decode_seq_steps_ = 0;
  // A step that threw after some tokens must not merge them into the next.
  advanced_.clear();
  step_tokens_ = 0;
}

MetricsSnapshot MetricsRecorder::snapshot(double now) const {
  MetricsSnapshot s;
  s.now = now;
  s.steps = steps_.size();
  s.requests_added = added_;
  s.requests_rejected = rejected_;
  s.requests_aborted = aborted_;
  s.prompt_tokens = prompt_tokens_;
  s.generation_tokens = generation_tokens_;
  s.preemptions = preemptions_;
  s.prefix_query_tokens = prefix_query_tokens_;
  s.prefix_hit_tokens = prefix_hit_tokens_;
  s.prefix_cache_hit_rate = prefix_query_tokens_ ? (double)prefix_hit_tokens_ / prefix_query_tokens_ : 0;
  s.spec_proposed_tokens = spec_proposed_;
  s.spec_accepted_tokens = spec_accepted_;
  s.decode_seq_steps = decode_seq_steps_;
  s.spec_acceptance_rate = spec_proposed_ ? (double)spec_accepted_ / spec_proposed_ : 0;
  s.tokens_per_decode_step =
      decode_seq_steps_ ? (double)(decode_seq_steps_ + spec_accepted_) / decode_seq_steps_ : 0;
  // Rolling rates over the last `window` seconds of steps.
  double pt = 0;
  for (auto it = steps_.rbegin(); it != steps_.rend() && it->start >= now - s.window; ++it)
    pt += it->prefill_tokens;
  // Generated tokens are counted from token times, not decode rows: a
  // request's first token comes out of a prefill row.
  const double window = std::min(s.window, std::max(now, 1e-9));
  s.prompt_tokens_per_s = pt / window;
  uint64_t fin_in_window = 0, gen_in_window = 0;
  std::vector<double> ttft, tpot, itl, e2e;
  for (const auto& r : finished_) {
    if (r.finish_reason != FinishReason::Error) s.requests_finished++;
    if (r.finished >= now - s.window) fin_in_window++;
    ttft.push_back(r.ttft());
    tpot.push_back(r.tpot());
    e2e.push_back(r.e2e());
    for (size_t i = 1; i < r.token_times.size(); ++i) itl.push_back(r.token_times[i] - r.token_times[i - 1]);
    for (size_t i = 0; i < r.token_times.size(); ++i)
      if (r.token_times[i] >= now - s.window) gen_in_window += r.tokens_at(i);
  }
  for (const auto& [id, r] : live_)
    for (size_t i = r.token_times.size(); i > 0 && r.token_times[i - 1] >= now - s.window; --i)
      gen_in_window += r.tokens_at(i - 1);
  s.generation_tokens_per_s = gen_in_window / window;
  s.requests_per_s = fin_in_window / window;
  s.ttft = percentiles(std::move(ttft));
  s.tpot = percentiles(std::move(tpot));
  s.itl = percentiles(std::move(itl));
  s.e2e = percentiles(std::move(e2e));
  if (!steps_.empty()) {
    const StepMetrics& last = steps_.back();
    s.running = last.running;
    s.waiting = last.waiting;
    s.batch_size = last.num_seqs;
    s.kv_blocks_used = last.kv_blocks_used;
    s.kv_blocks_total = last.kv_blocks_total;
    s.kv_waste_fraction =
        last.kv_slots_allocated > 0
            ? (double)(last.kv_slots_allocated - last.kv_slots_filled) / last.kv_slots_allocated
            : 0;
  }
  return s;
}

nlohmann::json percentiles_json(const Percentiles& p) {
  return {{"mean", p.mean}, {"p50", p.p50}, {"p90", p.p90},
          {"p99", p.p99},   {"max", p.max}, {"count", p.count}};
}

std::string to_json(const MetricsSnapshot& s) {
  nlohmann::json j = {{"now", s.now},
                      {"steps", s.steps},
                      {"window_s", s.window},
                      {"prompt_tokens_per_s", s.prompt_tokens_per_s},
                      {"generation_tokens_per_s", s.generation_tokens_per_s},
                      {"requests_per_s", s.requests_per_s},
                      {"requests_added", s.requests_added},
                      {"requests_finished", s.requests_finished},
                      {"requests_rejected", s.requests_rejected},
                      {"requests_aborted", s.requests_aborted},
                      {"prompt_tokens", s.prompt_tokens},
                      {"generation_tokens", s.generation_tokens},
                      {"preemptions", s.preemptions},
                      {"prefix_query_tokens", s.prefix_query_tokens},
                      {"prefix_hit_tokens", s.prefix_hit_tokens},
                      {"prefix_cache_hit_rate", s.prefix_cache_hit_rate},
                      {"spec_proposed_tokens", s.spec_proposed_tokens},
                      {"spec_accepted_tokens", s.spec_accepted_tokens},
                      {"spec_acceptance_rate", s.spec_acceptance_rate},
                      {"decode_seq_steps", s.decode_seq_steps},
                      {"tokens_per_decode_step", s.tokens_per_decode_step},
                      {"ttft_s", percentiles_json(s.ttft)},
                      {"tpot_s", percentiles_json(s.tpot)},
                      {"itl_s", percentiles_json(s.itl)},
                      {"e2e_s", percentiles_json(s.e2e)},
                      {"running", s.running},
                      {"waiting", s.waiting},
                      {"batch_size", s.batch_size},
                      {"kv_blocks_used", s.kv_blocks_used},
                      {"kv_blocks_total", s.kv_blocks_total},
                      {"kv_waste_fraction", s.kv_waste_fraction}};
  return j.dump();
}

nlohmann::json request_json(const RequestMetrics& r) {
  nlohmann::json chunks = nlohmann::json::array();
  for (const auto& c : r.prefill_chunks)
    chunks.push_back({{"start", c.start}, {"end", c.end}, {"tokens", c.tokens}});
  return {{"id", r.request_id},
          {"arrival", r.arrival},
          {"first_scheduled", r.first_scheduled},
          {"first_token", r.first_token},
          {"finished", r.finished},
          {"prompt_tokens", r.prompt_tokens},
          {"output_tokens", r.output_tokens},
          {"preemptions", r.preemptions},
          {"finish_reason", finish_reason_name(r.finish_reason)},
          {"ttft_s", r.ttft()},
          {"tpot_s", r.tpot()},
          {"e2e_s", r.e2e()},
          {"queue_s", r.queue_time()},
          {"token_times", r.token_times},
          {"token_counts", r.token_counts},
          {"prefill_chunks", chunks},
          {"detokenize_s", r.detokenize_s}};
}

nlohmann::json step_json(const StepMetrics& s) {
  return {{"step", s.step},
          {"start", s.start},
          {"duration", s.duration},
          {"forward", s.forward},
          {"running", s.running},
          {"waiting", s.waiting},
          {"preempted", s.preempted},
          {"num_seqs", s.num_seqs},
          {"prefill_tokens", s.prefill_tokens},
          {"decode_tokens", s.decode_tokens},
          {"decode_seqs", s.decode_seqs},
          {"spec_proposed_tokens", s.spec_proposed_tokens},
          {"spec_accepted_tokens", s.spec_accepted_tokens},
          {"padding_tokens", s.padding_tokens},
          {"generated_tokens", s.generated_tokens},
          {"prefix_query_tokens", s.prefix_query_tokens},
          {"prefix_hit_tokens", s.prefix_hit_tokens},
          {"kv_blocks_used", s.kv_blocks_used},
          {"kv_blocks_total", s.kv_blocks_total},
          {"kv_slots_allocated", s.kv_slots_allocated},
          {"kv_slots_filled", s.kv_slots_filled}};
}

std::string to_json(const RequestMetrics& r) { return request_json(r).dump(); }
std::string to_json(const StepMetrics& s) { return step_json(s).dump(); }

}  // namespace brisk
