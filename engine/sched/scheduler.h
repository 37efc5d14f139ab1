// Decides, every step, which sequences run and how many tokens each
// contributes. Its output is a plain record; the runner executes it.
#pragma once
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "brisk/engine_config.h"
#include "cache/kv_cache.h"
#include "sched/request.h"

namespace brisk {

struct ScheduledSeq {
  Request* req;
  int64_t start;       // first position computed this step (= num_computed before)
  int64_t num_tokens;  // tokens computed this step
  bool samples;        // reaches the end of its tokens: produces logits
  // Speculative decoding: the last num_draft of num_tokens are the
  // request's draft; every one of the 1 + num_draft rows produces logits.
  int64_t num_draft = 0;
  // Prompt log-probabilities: rows for positions [prompt_logits_from,
  // + prompt_logits_count) of this chunk also produce logits, ahead of the
  // sampling row(s). Set by the engine, not the scheduler.
  int64_t prompt_logits_from = 0, prompt_logits_count = 0;
};

struct SchedulerOutput {
  std::vector<ScheduledSeq> seqs;
  std::vector<Request*> preempted;
  int64_t num_tokens = 0;
  int prefill_tokens = 0, decode_tokens = 0;
  int decode_seqs = 0;      // sequences decoding (speculatively or not)
  int proposed_tokens = 0;  // draft tokens scheduled for verification
  int padding_tokens = 0;   // static policy: slots of finished members and prompt padding
  // Prefix caching: prompt (+ output, after preemption) tokens of admitted
  // requests looked up, and how many of them were found cached.
  int64_t prefix_query_tokens = 0, prefix_hit_tokens = 0;
  // Static policy: finished members keep their row in a fixed-shape batch
  // until the whole batch is done; each costs one decode row over its
  // context (sequence id, context length) and produces nothing.
  std::vector<std::pair<uint64_t, int64_t>> padding_seqs;
  bool empty() const { return seqs.empty(); }
};

class Scheduler {
 public:
  Scheduler(const EngineConfig& cfg, KvCache& cache);
  virtual ~Scheduler() = default;

  void add(Request* r);  // joins the waiting queue
  // A sequence forked from `parent` (its KV table already shares the
  // parent's blocks) runs from now on, right after the parent's group.
  void add_forked(Request* parent, Request* child);
  // Removes a finished or aborted request wherever it is and frees its blocks.
  virtual void remove(Request* r);
  virtual SchedulerOutput schedule() = 0;

  size_t num_waiting() const { return waiting_.size(); }
  size_t num_running() const { return running_.size(); }
  int seats_running() const;
  bool empty() const { return waiting_.empty() && running_.empty(); }
  const std::deque<Request*>& waiting() const { return waiting_; }
  const std::vector<Request*>& running() const { return running_; }

 protected:
  // Frees the victim's blocks and puts it back at the head of the waiting
  // queue; it will recompute its prompt and generated tokens.
  void preempt(Request* r);

  EngineConfig cfg_;
  KvCache& cache_;
  std::deque<Request*> waiting_;
  std::vector<Request*> running_;  // in admission order: the last is the first victim
};

// Iteration-level batching: requests join and leave at every step.
class ContinuousScheduler final : public Scheduler {
 public:
  using Scheduler::Scheduler;
  SchedulerOutput schedule() override;
};

// The baseline: a batch is formed from the queue when the previous one has
// completely finished, with the KV for prompt + max_tokens reserved up front,
// and runs until every member finishes.
class StaticScheduler final : public Scheduler {
 public:
  using Scheduler::Scheduler;
  SchedulerOutput schedule() override;
  // A finished member keeps its KV blocks (its row still runs as padding)
  // until the last member finishes; then the whole batch is released.
  void remove(Request* r) override;
  const std::vector<std::pair<uint64_t, int64_t>>& retired() const { return retired_; }

 private:
  int batch_size_ = 0;                                 // members of the current batch
  std::vector<std::pair<uint64_t, int64_t>> retired_;  // finished members: id, context length
};

}  // namespace brisk
