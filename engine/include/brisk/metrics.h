// Every number Brisk shows comes from here. Times are seconds on one
// monotonic clock (std::chrono::steady_clock), relative to the engine's start.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "brisk/request_output.h"

namespace brisk {

struct RequestMetrics {
  uint64_t request_id = 0;
  double arrival = 0;          // when add_request was called (or the given arrival time)
  double first_scheduled = -1; // first step that ran any of its tokens
  double first_token = -1;
  double finished = -1;
  // When the request's output advanced: one entry per engine step that gave
  // it tokens, and how many (token_counts, as long; their sum is the tokens
  // generated). A step's tokens arrive together: under parallel sampling
  // each live sequence adds one, a speculative decode adds 1 + its accepted
  // drafts, a beam search step one. Gaps between entries are what a
  // sequence waits for its next token; siblings and accepted drafts are no
  // zero-length gaps. Without counts (a hand-built record, an older
  // results file) an entry is one token.
  std::vector<double> token_times;
  std::vector<int> token_counts;
  // Where the time went: each step that computed prompt tokens of this
  // request (a chunk; several with chunked prefill or after preemption),
  // and the total time spent turning its tokens into text.
  struct Chunk {
    double start = 0, end = 0;
    int tokens = 0;
  };
  std::vector<Chunk> prefill_chunks;
  double detokenize_s = 0;
  int prompt_tokens = 0;
  int output_tokens = 0;
  int preemptions = 0;
  FinishReason finish_reason = FinishReason::None;

  double ttft() const { return first_token >= 0 ? first_token - arrival : -1; }
  double e2e() const { return finished >= 0 ? finished - arrival : -1; }
  double queue_time() const { return first_scheduled >= 0 ? first_scheduled - arrival : -1; }
  int tokens_at(size_t i) const { return token_counts.size() == token_times.size() ? token_counts[i] : 1; }
  // Sequences sampled side by side (n/best_of; else 1): each one's first
  // token comes out of the step that completes the prompt, the first entry.
  int sequences() const { return token_times.empty() ? 0 : tokens_at(0); }
  // Time per output token after the first, per sequence, as if each were a
  // request of its own: with parallel sampling every live sequence gains
  // one token an entry, so (last entry - first) / (entries - 1); a lone
  // sequence gains every token of its entries (accepted drafts too), so
  // (last - first) / (tokens - 1). Beam search: one token a beam step.
  // -1 with fewer than two.
  double tpot() const;
  // The request's decode rate, its sequences together: output tokens after
  // the first step's / (last entry - first); -1 with no decode steps.
  double decode_tokens_per_s() const;
};

struct StepMetrics {
  uint64_t step = 0;
  double start = 0, duration = 0;
  double forward = 0;  // of duration: the model's forward (runner execute); the rest is host work
  int running = 0, waiting = 0;
  int preempted = 0;           // sequences preempted in this step
  int num_seqs = 0;            // sequences with tokens in this step
  int prefill_tokens = 0, decode_tokens = 0;  // decode_tokens include speculative drafts
  int decode_seqs = 0;  // sequences decoding (one token, plus a draft when speculating)
  // Speculative decoding: draft tokens verified, and those accepted.
  int spec_proposed_tokens = 0, spec_accepted_tokens = 0;
  int padding_tokens = 0;      // static policy: slots of finished members (wasted work)
  // Tokens the step gave its requests (set by the metrics recorder, which
  // sees them): first tokens out of prefill rows, one per decoding sequence
  // plus its accepted drafts (rejected drafts are verified, not generated),
  // one per beam search request.
  int generated_tokens = 0;
  int64_t prefix_query_tokens = 0, prefix_hit_tokens = 0;  // prefix cache lookups of admitted requests
  int64_t kv_blocks_used = 0, kv_blocks_total = 0;
  int64_t kv_slots_allocated = 0, kv_slots_filled = 0;  // waste = allocated - filled
};

struct Percentiles {
  double mean = 0, p50 = 0, p90 = 0, p99 = 0, max = 0;
  int count = 0;
};
Percentiles percentiles(std::vector<double> values);

// A cheap copy of the live state, fit to read at 20 Hz while the engine runs.
struct MetricsSnapshot {
  double now = 0;
  uint64_t steps = 0;
  // Rolling over the last `window` seconds.
  double window = 5.0;
  double prompt_tokens_per_s = 0, generation_tokens_per_s = 0, requests_per_s = 0;
  // Totals since start (or since the last reset).
  uint64_t requests_added = 0, requests_finished = 0, requests_rejected = 0, requests_aborted = 0;
  uint64_t prompt_tokens = 0, generation_tokens = 0, preemptions = 0;
  // Prefix cache: tokens looked up / found, and the hit rate (found / looked up).
  uint64_t prefix_query_tokens = 0, prefix_hit_tokens = 0;
  double prefix_cache_hit_rate = 0;
  // Speculative decoding: draft tokens proposed / accepted, the acceptance
  // rate (accepted / proposed), and tokens generated per sequence decode
  // step ((decode steps + accepted) / decode steps; 1 without speculation).
  uint64_t spec_proposed_tokens = 0, spec_accepted_tokens = 0, decode_seq_steps = 0;
  double spec_acceptance_rate = 0, tokens_per_decode_step = 0;
  // Latency over finished requests (all since reset).
  Percentiles ttft, tpot, itl, e2e;
  // Gauges from the last step.
  int running = 0, waiting = 0, batch_size = 0;
  int64_t kv_blocks_used = 0, kv_blocks_total = 0;
  double kv_waste_fraction = 0;  // (allocated - filled) / allocated slots
};

std::string to_json(const MetricsSnapshot& s);
std::string to_json(const RequestMetrics& r);
std::string to_json(const StepMetrics& s);

}  // namespace brisk
