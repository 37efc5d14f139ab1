#include "sched/scheduler.h"

#include <algorithm>

namespace brisk {

Scheduler::Scheduler(const EngineConfig& cfg, KvCache& cache) : cfg_(cfg), cache_(cache) {}

void Scheduler::add(Request* r) {
  r->status = RequestStatus::Waiting;
  waiting_.push_back(r);
}

void Scheduler::add_forked(Request* parent, Request* child) {
  child->status = RequestStatus::Running;
  auto it = std::find(running_.begin(), running_.end(), parent);
  if (it == running_.end()) return add(child);
  while (it != running_.end() && (*it)->group_id == parent->group_id) ++it;
  running_.insert(it, child);
}

int Scheduler::seats_running() const {
  int n = 0;
  for (const Request* r : running_) n += r->seats;
  return n;
}

void Scheduler::remove(Request* r) {
  running_.erase(std::remove(running_.begin(), running_.end(), r), running_.end());
  waiting_.erase(std::remove(waiting_.begin(), waiting_.end(), r), waiting_.end());
  cache_.free(r->id);
}

void Scheduler::preempt(Request* r) {
  cache_.free(r->id);
  r->num_computed = 0;
  r->status = RequestStatus::Waiting;
  r->preemptions++;
  running_.erase(std::remove(running_.begin(), running_.end(), r), running_.end());
  waiting_.push_front(r);
}

namespace {

void count(SchedulerOutput& out, const ScheduledSeq& s) {
  out.seqs.push_back(s);
  out.num_tokens += s.num_tokens;
  // A decode computes exactly the newest generated token (plus its draft
  // when speculating); everything else (prompt chunks, recompute after
  // preemption) is prefill work.
  const bool decode = s.num_tokens - s.num_draft == 1 && s.start >= (int64_t)s.req->prompt_ids.size();
  (decode ? out.decode_tokens : out.prefill_tokens) += (int)s.num_tokens;
  out.decode_seqs += decode;
  out.proposed_tokens += (int)s.num_draft;
}

}  // namespace

SchedulerOutput ContinuousScheduler::schedule() {
  SchedulerOutput out;
  int64_t budget = cfg_.max_num_batched_tokens;

  // Running sequences first, oldest first. When blocks run out, the newest
  // running sequence is preempted (recompute) until the older one fits.
  for (size_t i = 0; i < running_.size() && budget > 0;) {
    Request* r = running_[i];
    const int64_t n = std::min<int64_t>(r->num_tokens() - r->num_computed, budget);
    if (n == 0) {  // a beam whose logits are in, waiting for its siblings' to choose
      ++i;
      continue;
    }
    // A decode with a draft verifies it in the same forward when budget and
    // blocks allow; otherwise the draft is dropped and it decodes plainly.
    int64_t draft = 0;
    if (n == 1 && !r->draft.empty()) {
      draft = std::min<int64_t>((int64_t)r->draft.size(), budget - 1);
      if (draft > 0 && !cache_.append_slots(r->id, 1 + draft)) draft = 0;
      r->draft.resize(draft);
      if (draft > 0) {
        count(out, {r, r->num_computed, 1 + draft, true, draft});
        budget -= 1 + draft;
        ++i;
        continue;
      }
    }
    bool ok = true;
    while (!cache_.append_slots(r->id, n)) {
      Request* victim = running_.back();
      preempt(victim);
      out.preempted.push_back(victim);
      if (victim == r) {
        ok = false;
        break;
      }
    }
    if (!ok) break;
    count(out, {r, r->num_computed, n, r->num_computed + n == r->num_tokens()});
    budget -= n;
    ++i;
  }

  // Then new (or preempted) requests join, in arrival order, unless this
  // step had to preempt: then memory is short and joining would thrash.
  // A small watermark of free blocks is kept so that the running sequences
  // can grow next step without preempting the newcomer at once.
  const int64_t watermark = std::max<int64_t>(1, cache_.num_blocks() / 100);
  int seats = seats_running();
  while (out.preempted.empty() && !waiting_.empty() && budget > 0) {
    Request* r = waiting_.front();
    if (seats + r->seats > cfg_.max_num_seqs) break;
    // The longest cached prefix is taken first (at least the last token is
    // always computed: it produces the logits), and given back if the
    // request cannot be admitted after all.
    int64_t cached = 0;
    if (cfg_.enable_prefix_caching && r->num_computed == 0 && !cache_.has(r->id) && r->params.prompt_logprobs < 0)
      cached = r->num_computed =
          cache_.match_prefix(r->id, r->prompt_ids, r->output_ids, r->num_tokens() - 1);
    auto give_back = [&] {
      if (cached == 0) return;
      cache_.free(r->id);
      r->num_computed = 0;
    };
    int64_t n = r->num_tokens() - r->num_computed;
    if (n > budget) {
      if (!cfg_.enable_chunked_prefill) {
        give_back();
        break;
      }
      n = budget;
    }
    // Judge the whole remaining prompt, not this chunk: admitting a prompt
    // that cannot fit beside the running ones only gets it preempted again.
    // (Beams waiting for their siblings are running but scheduled nothing:
    // then this step has no other work and the newcomer must not wait.)
    if (!out.seqs.empty() &&
        cache_.num_free() - (cache_.blocks_needed(r->num_tokens()) - cache_.blocks_needed(cached)) <
            watermark) {
      give_back();
      break;
    }
    if (!cache_.append_slots(r->id, n)) {
      give_back();
      break;
    }
    if (cfg_.enable_prefix_caching) {
      out.prefix_query_tokens += r->num_tokens();
      out.prefix_hit_tokens += cached;
    }
    waiting_.pop_front();
    r->status = RequestStatus::Running;
    running_.push_back(r);
    seats += r->seats;
    count(out, {r, r->num_computed, n, r->num_computed + n == r->num_tokens()});
    budget -= n;
  }
  return out;
}

SchedulerOutput StaticScheduler::schedule() {
  SchedulerOutput out;
  if (running_.empty()) {
    // Form the next batch; each member's whole KV (prompt + max_tokens) is
    // reserved now, as static-batching engines allocate per sequence.
    batch_size_ = 0;
    while (!waiting_.empty() && (int)running_.size() < cfg_.max_num_seqs) {
      Request* r = waiting_.front();
      const int64_t total =
          std::min<int64_t>((int64_t)r->prompt_ids.size() + r->params.max_tokens, r->max_len);
      if (!cache_.reserve(r->id, std::max<int64_t>(total, r->num_tokens()))) break;
      waiting_.pop_front();
      r->status = RequestStatus::Running;
      running_.push_back(r);
      batch_size_++;
    }
  }
  int64_t budget = cfg_.max_num_batched_tokens;
  int64_t longest_prompt = 0;
  for (Request* r : running_)
    if (r->num_computed == 0) longest_prompt = std::max<int64_t>(longest_prompt, r->num_tokens());
  for (Request* r : running_) {
    const int64_t n = r->num_tokens() - r->num_computed;
    if (n > budget) continue;       // whole prompts only; it runs next step
    cache_.append_slots(r->id, n);  // within the reservation: cannot fail
    count(out, {r, r->num_computed, n, true});
    if (r->num_computed == 0) out.padding_tokens += (int)(longest_prompt - n);
    budget -= n;
  }
  // Finished members keep their row in the batch until it completes: that
  // work is done (padding_seqs) and wasted (padding_tokens).
  if (!out.seqs.empty()) {
    out.padding_seqs = retired_;
    out.padding_tokens += (int)retired_.size();
  }
  return out;
}

void StaticScheduler::remove(Request* r) {
  const bool member = std::find(running_.begin(), running_.end(), r) != running_.end();
  if (!member) return Scheduler::remove(r);
  running_.erase(std::remove(running_.begin(), running_.end(), r), running_.end());
  const BlockTable* t = cache_.table(r->id);
  retired_.emplace_back(r->id, t ? std::max<int64_t>(t->num_tokens, 1) : 1);
  if (running_.empty()) {
    for (const auto& [id, len] : retired_) cache_.free(id);
    retired_.clear();
  }
}

}  // namespace brisk
