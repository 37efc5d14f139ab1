// The schedulers, driven directly with fake requests (no model): the step
// loop of the engine is simulated (num_computed += n, sampled rows get a
// fake token, requests finish at max_tokens or max_len, Scheduler::remove).
// Targeted cases check the token budget, max_num_seqs, chunked prefill,
// preemption and the static policy; a randomized stress test checks the
// scheduler/cache invariants at every step for both policies, chunked
// prefill on and off, under random arrivals and aborts with a KV cache
// small enough that preemption is routine.
#include <QtTest>
#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "brisk/engine_config.h"
#include "cache/kv_cache.h"
#include "sched/request.h"
#include "sched/scheduler.h"

using brisk::ContinuousScheduler;
using brisk::EngineConfig;
using brisk::KvCache;
using brisk::Request;
using brisk::RequestStatus;
using brisk::Scheduler;
using brisk::SchedulerOutput;
using brisk::SchedulerPolicy;
using brisk::ScheduledSeq;
using brisk::StaticScheduler;

namespace {

constexpr int32_t kFakeToken = 7;

// The engine's loop around a scheduler, with every invariant checked at
// every step. Failures are reported as text (err) so loops can stop early.
class Sim {
 public:
  Sim(const EngineConfig& cfg, int64_t blocks, int block_size, int context = 1 << 20)
      : cfg_(cfg), cache_(blocks, block_size) {
    // As the engine does: one sequence must fit alone in the cache (and,
    // without chunked prefill or with the static policy, in one step).
    max_len_ = (int)std::min<int64_t>(context, blocks * block_size);
    if (!cfg.enable_chunked_prefill || cfg.policy == SchedulerPolicy::Static)
      max_len_ = std::min(max_len_, cfg.max_num_batched_tokens);
    if (cfg.policy == SchedulerPolicy::Static)
      sched_ = std::make_unique<StaticScheduler>(cfg, cache_);
    else
      sched_ = std::make_unique<ContinuousScheduler>(cfg, cache_);
  }

  Request* add(int prompt_len, int max_tokens) {
    auto r = std::make_unique<Request>();
    r->id = next_id_++;
    r->prompt_ids.assign(prompt_len, 1);
    for (int i = 0; i < prompt_len; ++i) r->prompt_ids[i] = 3 + i % 100;
    r->params.max_tokens = max_tokens;
    r->max_len = max_len_;
    Request* p = r.get();
    reqs_.push_back(std::move(r));
    sched_->add(p);
    finished_count_[p->id] = 0;
    return p;
  }

  // The engine's abort: remove wherever it is.
  void abort(Request* r) {
    sched_->remove(r);
    finish(r, true);
  }

  // One engine step: schedule, check, advance, sample, finish.
  // Returns false (with err()) on the first violated invariant.
  bool step() {
    const std::vector<Request*> running_before = sched_->running();
    const std::set<Request*> running_before_set(running_before.begin(), running_before.end());
    const bool had_work = !sched_->empty();
    last_ = sched_->schedule();
    const SchedulerOutput& out = last_;
    ++steps_;
    total_preemptions_ += out.preempted.size();

    // ---- the step's record ----
    int64_t sum = 0, prefill = 0, decode = 0;
    std::set<Request*> scheduled;
    for (const ScheduledSeq& s : out.seqs) {
      Request* r = s.req;
      sum += s.num_tokens;
      if (!scheduled.insert(r).second) return fail("request " + id(r) + " scheduled twice in one step");
      if (s.num_tokens <= 0) return fail("request " + id(r) + " scheduled with " + std::to_string(s.num_tokens) + " tokens");
      if (s.start != r->num_computed)
        return fail("request " + id(r) + " starts at " + std::to_string(s.start) + " but has " +
                    std::to_string(r->num_computed) + " computed");
      if (s.start + s.num_tokens > r->num_tokens()) return fail("request " + id(r) + " scheduled past its tokens");
      if (s.samples != (s.start + s.num_tokens == r->num_tokens()))
        return fail("request " + id(r) + ": samples flag disagrees with reaching the end of its tokens");
      if (r->status != RequestStatus::Running) return fail("scheduled request " + id(r) + " is not Running");
      if (std::find(sched_->running().begin(), sched_->running().end(), r) == sched_->running().end())
        return fail("scheduled request " + id(r) + " is not in running()");
      const brisk::BlockTable* t = cache_.table(r->id);
      if (!t) return fail("scheduled request " + id(r) + " has no block table");
      if (t->num_tokens != s.start + s.num_tokens)
        return fail("request " + id(r) + ": table holds " + std::to_string(t->num_tokens) + " tokens, step computes up to " +
                    std::to_string(s.start + s.num_tokens));
      if ((int64_t)t->blocks.size() * cache_.block_size() < t->num_tokens)
        return fail("request " + id(r) + ": blocks too few for its tokens");
      const bool is_decode = s.num_tokens == 1 && s.start >= (int64_t)r->prompt_ids.size();
      (is_decode ? decode : prefill) += s.num_tokens;
      if (!cfg_.enable_chunked_prefill || cfg_.policy == SchedulerPolicy::Static) {
        // Whole prompts (or whole recomputes) only.
        if (!s.samples) return fail("request " + id(r) + " got a partial prefill without chunked prefill");
      }
      if (cfg_.policy == SchedulerPolicy::Static && !running_before.empty() && !running_before_set.count(r))
        return fail("static policy: request " + id(r) + " joined a running batch");
      if (r->num_computed == 0 && s.num_tokens > 0) prefill_starts_[r->id].push_back(s.num_tokens);
    }
    if (sum != out.num_tokens) return fail("num_tokens " + std::to_string(out.num_tokens) + " != sum " + std::to_string(sum));
    if (sum > cfg_.max_num_batched_tokens)
      return fail("token budget exceeded: " + std::to_string(sum) + " > " + std::to_string(cfg_.max_num_batched_tokens));
    if (out.prefill_tokens != prefill || out.decode_tokens != decode)
      return fail("prefill/decode split " + std::to_string(out.prefill_tokens) + "/" + std::to_string(out.decode_tokens) +
                  ", expected " + std::to_string(prefill) + "/" + std::to_string(decode));
    if ((int)out.seqs.size() > cfg_.max_num_seqs) return fail("more than max_num_seqs sequences in one step");
    if ((int)sched_->running().size() > cfg_.max_num_seqs) return fail("more than max_num_seqs running");
    if (had_work && out.seqs.empty())
      return fail("no progress: the scheduler holds " + std::to_string(sched_->num_waiting()) + " waiting and " +
                  std::to_string(sched_->num_running()) + " running requests but scheduled nothing");

    // ---- preemption: the newest running first, back at the head of waiting ----
    if (!out.preempted.empty()) {
      if (cfg_.policy == SchedulerPolicy::Static) return fail("static policy preempted");
      for (size_t k = 0; k < out.preempted.size(); ++k) {
        Request* v = out.preempted[k];
        if (k >= running_before.size() || running_before[running_before.size() - 1 - k] != v)
          return fail("preempted request " + id(v) + " was not the newest running one");
        if (scheduled.count(v)) return fail("preempted request " + id(v) + " was also scheduled");
        if (cache_.has(v->id)) return fail("preempted request " + id(v) + " still has blocks");
        if (v->num_computed != 0) return fail("preempted request " + id(v) + " keeps num_computed");
        if (v->status != RequestStatus::Waiting) return fail("preempted request " + id(v) + " is not Waiting");
        // Later victims (older) end up in front of earlier ones.
        const size_t at = out.preempted.size() - 1 - k;
        if (sched_->waiting().size() <= at || sched_->waiting()[at] != v)
          return fail("preempted request " + id(v) + " is not at the head of the waiting queue");
      }
      // A step that preempted admits nobody.
      for (Request* r : sched_->running())
        if (!running_before_set.count(r)) return fail("request " + id(r) + " admitted in a step that preempted");
    }

    // ---- the static policy's padding ----
    if (cfg_.policy == SchedulerPolicy::Static) {
      if (running_before.empty()) batch_size_ = (int)sched_->running().size();
      int64_t longest = 0;
      for (Request* r : sched_->running())
        if (r->num_computed == 0) longest = std::max<int64_t>(longest, r->num_tokens());
      int expected = 0;
      for (const ScheduledSeq& s : out.seqs)
        if (s.start == 0) expected += (int)(longest - s.num_tokens);
      if (!out.seqs.empty()) expected += batch_size_ - (int)sched_->running().size();
      if (out.padding_tokens != expected)
        return fail("padding_tokens " + std::to_string(out.padding_tokens) + ", expected " + std::to_string(expected));
      padding_total_ += out.padding_tokens;
    } else if (out.padding_tokens != 0) {
      return fail("continuous policy reported padding");
    }

    // ---- the engine: advance, sample, finish ----
    for (const ScheduledSeq& s : out.seqs) {
      Request* r = s.req;
      r->num_computed += s.num_tokens;
      if (!s.samples) continue;
      r->output_ids.push_back(kFakeToken);
      if ((int)r->output_ids.size() >= r->params.max_tokens || r->num_tokens() >= r->max_len) {
        sched_->remove(r);
        finish(r, false);
      }
    }
    return check_state();
  }

  // Invariants that hold between steps.
  bool check_state() {
    const auto& running = sched_->running();
    const auto& waiting = sched_->waiting();
    std::set<Request*> rs(running.begin(), running.end()), ws(waiting.begin(), waiting.end());
    if (rs.size() != running.size()) return fail("a request is in running() twice");
    if (ws.size() != waiting.size()) return fail("a request is in waiting() twice");
    for (Request* r : running) {
      if (ws.count(r)) return fail("request " + id(r) + " is both waiting and running");
      if (r->status != RequestStatus::Running) return fail("running request " + id(r) + " has another status");
      if (done(r)) return fail("finished request " + id(r) + " is still running");
      const brisk::BlockTable* t = cache_.table(r->id);
      if (!t) return fail("running request " + id(r) + " has no block table");
      if (t->num_tokens != r->num_computed)
        return fail("running request " + id(r) + ": table holds " + std::to_string(t->num_tokens) + " tokens, computed " +
                    std::to_string(r->num_computed));
      if (cfg_.policy == SchedulerPolicy::Continuous && (int64_t)t->blocks.size() != cache_.blocks_needed(t->num_tokens))
        return fail("running request " + id(r) + " holds " + std::to_string(t->blocks.size()) + " blocks for " +
                    std::to_string(t->num_tokens) + " tokens");
      if (r->num_tokens() > r->max_len) return fail("request " + id(r) + " grew past max_len");
    }
    for (Request* r : waiting) {
      if (r->status != RequestStatus::Waiting) return fail("waiting request " + id(r) + " has another status");
      if (done(r)) return fail("finished request " + id(r) + " is still waiting");
      if (cache_.has(r->id)) return fail("waiting request " + id(r) + " holds blocks");
      if (r->num_computed != 0) return fail("waiting request " + id(r) + " has num_computed " + std::to_string(r->num_computed));
    }
    // The cache: every table belongs to a running request, and the used
    // blocks are exactly those of the live tables (nothing is shared here).
    std::set<int32_t> distinct;
    int64_t per_table = 0;
    for (const auto& [seq, t] : cache_.tables()) {
      bool live = std::any_of(running.begin(), running.end(), [&](Request* r) { return r->id == seq; });
      // The static policy keeps a finished member's blocks until its batch is done.
      if (auto* st = dynamic_cast<StaticScheduler*>(sched_.get()))
        live = live || std::any_of(st->retired().begin(), st->retired().end(), [&](auto& p) { return p.first == seq; });
      if (!live) return fail("block table of request " + std::to_string(seq) + " belongs to no running or batch member");
      distinct.insert(t.blocks.begin(), t.blocks.end());
      per_table += (int64_t)t.blocks.size();
      for (int32_t b : t.blocks)
        if (cache_.allocator().refcount(b) != 1) return fail("block " + std::to_string(b) + " has refcount != 1");
    }
    if (cache_.num_used() != (int64_t)distinct.size())
      return fail("num_used " + std::to_string(cache_.num_used()) + " != distinct blocks " + std::to_string(distinct.size()));
    if (cache_.num_used() != per_table)
      return fail("num_used " + std::to_string(cache_.num_used()) + " != sum of table sizes " + std::to_string(per_table));
    if (cache_.num_used() + cache_.num_free() != cache_.num_blocks()) return fail("used + free != total");
    if (!cache_.take_pending_copies().empty()) return fail("copy-on-write without any fork");
    return true;
  }

  // At the end: all requests finished exactly once, the cache is empty.
  bool check_drained() {
    if (!sched_->empty()) return fail("scheduler not empty at the end");
    for (const auto& r : reqs_)
      if (finished_count_[r->id] != 1)
        return fail("request " + id(r.get()) + " finished " + std::to_string(finished_count_[r->id]) + " times");
    if (cache_.num_used() != 0) return fail(std::to_string(cache_.num_used()) + " blocks still used at the end");
    if (!cache_.tables().empty()) return fail("block tables left at the end");
    if (cache_.slots_allocated() != 0 || cache_.slots_filled() != 0) return fail("slots accounted at the end");
    return true;
  }

  bool done(const Request* r) const { return finished_count_.at(r->id) > 0; }
  std::vector<Request*> live() const {
    std::vector<Request*> v;
    for (const auto& r : reqs_)
      if (!done(r.get())) v.push_back(r.get());
    return v;
  }

  const std::string& err() const { return err_; }
  Scheduler& sched() { return *sched_; }
  KvCache& cache() { return cache_; }
  const SchedulerOutput& last() const { return last_; }
  int max_len() const { return max_len_; }
  uint64_t steps() const { return steps_; }
  uint64_t preemptions() const { return total_preemptions_; }
  int64_t padding_total() const { return padding_total_; }
  int aborted() const { return aborted_; }
  int completed() const { return completed_; }
  // The num_tokens of every scheduled seq that started at position 0.
  const std::vector<int64_t>& prefill_starts(const Request* r) { return prefill_starts_[r->id]; }

 private:
  void finish(Request* r, bool aborted) {
    r->status = RequestStatus::Finished;
    finished_count_[r->id]++;
    (aborted ? aborted_ : completed_)++;
  }
  bool fail(const std::string& m) {
    if (err_.empty()) err_ = "step " + std::to_string(steps_) + ": " + m;
    return false;
  }
  static std::string id(const Request* r) { return std::to_string(r->id); }

  EngineConfig cfg_;
  KvCache cache_;
  std::unique_ptr<Scheduler> sched_;
  std::vector<std::unique_ptr<Request>> reqs_;
  std::map<uint64_t, int> finished_count_;
  std::map<uint64_t, std::vector<int64_t>> prefill_starts_;
  SchedulerOutput last_;
  uint64_t next_id_ = 1;
  int max_len_ = 0;
  uint64_t steps_ = 0, total_preemptions_ = 0;
  int64_t padding_total_ = 0;
  int batch_size_ = 0;
  int aborted_ = 0, completed_ = 0;
  std::string err_;
};

EngineConfig config(SchedulerPolicy policy, int budget, int max_seqs, bool chunked) {
  EngineConfig c;
  c.policy = policy;
  c.max_num_batched_tokens = budget;
  c.max_num_seqs = max_seqs;
  c.enable_chunked_prefill = chunked;
  return c;
}

const ScheduledSeq* find(const SchedulerOutput& out, const Request* r) {
  for (const ScheduledSeq& s : out.seqs)
    if (s.req == r) return &s;
  return nullptr;
}

#define STEP(sim) QVERIFY2((sim).step(), qPrintable(QString::fromStdString((sim).err())))

}  // namespace

class TestScheduler : public QObject {
  Q_OBJECT

 private slots:
  void tokenBudgetAndMaxSeqs() {
    for (bool chunked : {true, false}) {
      Sim sim(config(SchedulerPolicy::Continuous, 16, 4, chunked), 256, 16);
      std::vector<Request*> rs;
      for (int i = 0; i < 10; ++i) rs.push_back(sim.add(6, 8));
      int max_seqs_seen = 0;
      while (!sim.sched().empty()) {
        STEP(sim);
        QVERIFY(sim.last().num_tokens <= 16);
        QVERIFY(sim.sched().num_running() <= 4);
        max_seqs_seen = std::max(max_seqs_seen, (int)sim.last().seqs.size());
        QVERIFY(sim.steps() < 1000);
      }
      QVERIFY2(sim.check_drained(), qPrintable(QString::fromStdString(sim.err())));
      QCOMPARE(max_seqs_seen, 4);  // the cap was reached, never passed
      for (Request* r : rs) QCOMPARE((int)r->output_ids.size(), 8);
      QCOMPARE(sim.preemptions(), uint64_t(0));
    }
  }

  void chunkedPrefillSplitsLongPromptWhileDecoding() {
    Sim sim(config(SchedulerPolicy::Continuous, 16, 4, true), 64, 16);
    Request* a = sim.add(4, 50);
    STEP(sim);  // a's prompt
    QCOMPARE(sim.last().seqs.size(), size_t(1));
    QCOMPARE(sim.last().seqs[0].num_tokens, int64_t(4));
    QCOMPARE(sim.last().prefill_tokens, 4);
    STEP(sim);  // a decodes
    QCOMPARE(sim.last().decode_tokens, 1);
    QCOMPARE(sim.last().prefill_tokens, 0);

    Request* b = sim.add(40, 3);
    // 40 prompt tokens with 15 of the 16-token budget left after a's decode:
    // 15 + 15 + 10, a decoding alongside in each of those steps.
    const int64_t chunks[] = {15, 15, 10};
    int64_t done = 0;
    for (int64_t chunk : chunks) {
      const size_t a_out = a->output_ids.size();
      STEP(sim);
      const ScheduledSeq* sa = find(sim.last(), a);
      const ScheduledSeq* sb = find(sim.last(), b);
      QVERIFY2(sa, "the decode must keep running while the long prompt is prefilled");
      QVERIFY(sb);
      QCOMPARE(sa->num_tokens, int64_t(1));
      QVERIFY(sa->samples);
      QCOMPARE(a->output_ids.size(), a_out + 1);
      QCOMPARE(sb->start, done);
      QCOMPARE(sb->num_tokens, chunk);
      done += chunk;
      QCOMPARE(sb->samples, done == 40);
      QCOMPARE(sim.last().num_tokens, int64_t(16 - (chunk == 10 ? 5 : 0)));
      QCOMPARE(sim.last().decode_tokens, 1);
      QCOMPARE(sim.last().prefill_tokens, (int)chunk);
      QCOMPARE(b->output_ids.size(), size_t(done == 40 ? 1 : 0));
    }
    QCOMPARE(b->num_computed, int64_t(40));
    STEP(sim);  // both decode now
    QCOMPARE(sim.last().decode_tokens, 2);
    while (!sim.sched().empty()) STEP(sim);
    QVERIFY2(sim.check_drained(), qPrintable(QString::fromStdString(sim.err())));
    QCOMPARE(a->output_ids.size(), size_t(50));
    QCOMPARE(b->output_ids.size(), size_t(3));
  }

  void chunkedPrefillAlone() {
    // A prompt longer than the budget, alone, is spread over steps too.
    Sim sim(config(SchedulerPolicy::Continuous, 8, 2, true), 32, 4);
    Request* a = sim.add(30, 2);
    std::vector<int64_t> got;
    while (a->output_ids.empty()) {
      STEP(sim);
      got.push_back(sim.last().seqs.at(0).num_tokens);
    }
    QCOMPARE(got, (std::vector<int64_t>{8, 8, 8, 6}));
    while (!sim.sched().empty()) STEP(sim);
    QVERIFY2(sim.check_drained(), qPrintable(QString::fromStdString(sim.err())));
  }

  void noChunkingSchedulesWholePrompt() {
    Sim sim(config(SchedulerPolicy::Continuous, 32, 4, false), 64, 16);
    Request* a = sim.add(4, 60);
    STEP(sim);
    STEP(sim);  // a decodes
    Request* b = sim.add(20, 2);
    STEP(sim);
    const ScheduledSeq* sb = find(sim.last(), b);
    QVERIFY(sb);
    QCOMPARE(sb->num_tokens, int64_t(20));  // whole, in one step, with a's decode
    QVERIFY(sb->samples);
    QVERIFY(find(sim.last(), a));
    // c's 31 tokens do not fit next to a's and b's decodes (32 - 2 = 30
    // left): c must wait for room for its whole prompt rather than be split ...
    Request* c = sim.add(31, 2);
    Request* d = sim.add(30, 2);
    STEP(sim);  // a and b decode (b finishes); c does not fit in the 30 left
    QVERIFY(!find(sim.last(), c));
    QCOMPARE(c->num_computed, int64_t(0));
    // ... and d, which would fit, does not overtake it (FCFS).
    QVERIFY(!find(sim.last(), d));
    while (!sim.sched().empty()) {
      STEP(sim);
      if (const ScheduledSeq* sc = find(sim.last(), c); sc && sc->start == 0) {
        QCOMPARE(sc->num_tokens, int64_t(31));
        QVERIFY(sc->samples);
      }
      QVERIFY(sim.steps() < 1000);
    }
    QVERIFY2(sim.check_drained(), qPrintable(QString::fromStdString(sim.err())));
    QCOMPARE(sim.prefill_starts(c), (std::vector<int64_t>{31}));
    QCOMPARE(sim.prefill_starts(d), (std::vector<int64_t>{30}));
    // a asked for 60 tokens but the context (capped at one step's budget
    // without chunked prefill) ends at 32.
    QCOMPARE(sim.max_len(), 32);
    QCOMPARE(a->num_tokens(), int64_t(32));
    QCOMPARE(b->output_ids.size(), size_t(2));
  }

  void preemptsNewestAndResumes() {
    // 6 blocks of 4 tokens; three 4-token prompts take a block each and a
    // second block at their 5th token; at the 9th the cache is short.
    Sim sim(config(SchedulerPolicy::Continuous, 64, 4, true), 6, 4);
    QCOMPARE(sim.max_len(), 24);
    Request* a = sim.add(4, 16);
    Request* b = sim.add(4, 16);
    Request* c = sim.add(4, 16);
    STEP(sim);
    QCOMPARE(sim.last().seqs.size(), size_t(3));
    QCOMPARE(sim.cache().num_used(), int64_t(3));
    for (int i = 0; i < 4; ++i) {
      STEP(sim);
      QVERIFY(sim.last().preempted.empty());
    }
    QCOMPARE(sim.cache().num_used(), int64_t(6));
    QCOMPARE(c->num_computed, int64_t(8));
    const std::vector<int32_t> c_out_before = c->output_ids;

    STEP(sim);  // a needs a third block: c, the newest, is preempted
    QCOMPARE(sim.last().preempted.size(), size_t(1));
    QCOMPARE(sim.last().preempted[0], c);
    QVERIFY(!sim.cache().has(c->id));
    QCOMPARE(c->num_computed, int64_t(0));
    QCOMPARE(c->preemptions, 1);
    QCOMPARE(c->status, RequestStatus::Waiting);
    QCOMPARE(sim.sched().waiting().front(), c);
    QCOMPARE(c->output_ids, c_out_before);  // generated tokens are kept, to recompute
    QVERIFY(find(sim.last(), a));
    QVERIFY(find(sim.last(), b));
    QVERIFY(!find(sim.last(), c));
    QCOMPARE(a->preemptions, 0);
    QCOMPARE(b->preemptions, 0);

    // Run to the end: c (and b, when a grows further) come back and finish.
    bool c_resumed = false;
    while (!sim.sched().empty()) {
      STEP(sim);
      if (const ScheduledSeq* sc = find(sim.last(), c); sc && sc->start == 0 && c->preemptions > 0) {
        // The recompute covers the prompt and everything generated so far.
        QCOMPARE(sc->num_tokens, (int64_t)(c->prompt_ids.size() + c->output_ids.size() - (sc->samples ? 1 : 0)));
        c_resumed = true;
      }
      QVERIFY(sim.steps() < 1000);
    }
    QVERIFY(c_resumed);
    QVERIFY2(sim.check_drained(), qPrintable(QString::fromStdString(sim.err())));
    for (Request* r : {a, b, c}) QCOMPARE(r->output_ids.size(), size_t(16));
    QVERIFY(sim.preemptions() >= 1);
    QCOMPARE(a->preemptions, 0);  // the oldest is never the victim
  }

  void longPromptNotAdmittedOnlyToBePreempted() {
    // A decodes with a small, growing footprint; W's 34-token prompt needs 9
    // of the 10 blocks, so W cannot run next to A. Admitting a first chunk
    // of W anyway only for A's growth (or W's next chunk) to preempt it
    // wastes the prefill work, over and over, until A finishes.
    Sim sim(config(SchedulerPolicy::Continuous, 16, 4, true), 10, 4);
    Request* a = sim.add(4, 30);
    STEP(sim);
    Request* w = sim.add(34, 2);
    int64_t prefill = 4, w_prefill = 0;
    std::vector<int64_t> w_chunks;
    while (!sim.sched().empty()) {
      STEP(sim);
      prefill += sim.last().prefill_tokens;
      if (const ScheduledSeq* sw = find(sim.last(), w)) {
        w_prefill += sw->num_tokens;
        w_chunks.push_back(sw->num_tokens);
      }
      QVERIFY(sim.steps() < 1000);
    }
    QVERIFY2(sim.check_drained(), qPrintable(QString::fromStdString(sim.err())));
    QCOMPARE(a->output_ids.size(), size_t(30));
    QString chunks;
    for (int64_t c : w_chunks) chunks += QString::number(c) + " ";
    QVERIFY2(w->preemptions == 0,
             qPrintable(QString("W was preempted %1 times; it computed %2 tokens for a 34-token prompt and 1 decode "
                                "(per step: %3); prefill over the whole run: %4 tokens for 38 prompt tokens")
                            .arg(w->preemptions).arg(w_prefill).arg(chunks).arg(prefill)));
    QCOMPARE(prefill, int64_t(4 + 34));
  }

  void staticBatching() {
    Sim sim(config(SchedulerPolicy::Static, 64, 3, true), 64, 4);
    Request* a = sim.add(3, 2);
    Request* b = sim.add(6, 5);
    Request* c = sim.add(9, 8);
    Request* d = sim.add(5, 3);  // beyond max_num_seqs: the next batch
    STEP(sim);
    QCOMPARE(sim.sched().num_running(), size_t(3));
    QCOMPARE(sim.last().seqs.size(), size_t(3));
    // Prompt padding to the longest prompt of the batch: (9-3) + (9-6).
    QCOMPARE(sim.last().padding_tokens, 9);
    // KV for prompt + max_tokens reserved up front: 5/4, 11/4, 17/4 blocks.
    QCOMPARE(sim.cache().num_used(), int64_t(2 + 3 + 5));
    QCOMPARE(d->status, RequestStatus::Waiting);

    Request* e = sim.add(2, 1);  // arrives while the batch runs
    std::vector<int> padding;
    while (!(a->status == RequestStatus::Finished && b->status == RequestStatus::Finished &&
             c->status == RequestStatus::Finished)) {
      const size_t finished_before = (a->status == RequestStatus::Finished) + (b->status == RequestStatus::Finished);
      STEP(sim);
      QVERIFY2(!find(sim.last(), d) && !find(sim.last(), e), "a request joined a running static batch");
      QCOMPARE(sim.last().padding_seqs.size(), finished_before);  // their rows still run
      QCOMPARE(d->status, RequestStatus::Waiting);
      QCOMPARE(e->status, RequestStatus::Waiting);
      // Finished members keep their blocks (their rows still run as padding)
      // until the whole batch is done; then everything is released at once.
      const bool all_done = a->status == RequestStatus::Finished && b->status == RequestStatus::Finished &&
                            c->status == RequestStatus::Finished;
      QCOMPARE(sim.cache().num_used(), int64_t(all_done ? 0 : 2 + 3 + 5));

      padding.push_back(sim.last().padding_tokens);
    }
    // Steps 2..8: a finished after step 2, b after step 5; each finished
    // member is one wasted slot per step until the batch completes.
    QCOMPARE(padding, (std::vector<int>{0, 1, 1, 1, 2, 2, 2}));
    QCOMPARE(sim.steps(), uint64_t(8));
    STEP(sim);  // the next batch forms: d and e together
    QVERIFY(find(sim.last(), d));
    QVERIFY(find(sim.last(), e));
    QCOMPARE(sim.last().padding_tokens, 5 - 2);
    while (!sim.sched().empty()) STEP(sim);
    QVERIFY2(sim.check_drained(), qPrintable(QString::fromStdString(sim.err())));
    QCOMPARE(sim.preemptions(), uint64_t(0));
    for (Request* r : {a, b, c, d, e}) QCOMPARE((int)r->output_ids.size(), r->params.max_tokens);
  }

  void staticBatchLimitedByKv() {
    // The batch takes only the members whose whole reservation fits.
    Sim sim(config(SchedulerPolicy::Static, 32, 8, true), 8, 4);
    Request* a = sim.add(8, 8);   // 4 blocks
    Request* b = sim.add(4, 8);   // 3 blocks
    Request* c = sim.add(2, 6);   // 2 blocks: does not fit next to a and b
    Request* d = sim.add(1, 1);   // 1 block: would fit, but the queue is FCFS
    STEP(sim);
    QCOMPARE(sim.sched().num_running(), size_t(2));
    QVERIFY(find(sim.last(), a) && find(sim.last(), b));
    QCOMPARE(c->status, RequestStatus::Waiting);
    QCOMPARE(d->status, RequestStatus::Waiting);
    QCOMPARE(sim.cache().num_used(), int64_t(7));
    while (!sim.sched().empty()) STEP(sim);
    QVERIFY2(sim.check_drained(), qPrintable(QString::fromStdString(sim.err())));
  }

  void removeAnywhere() {
    for (SchedulerPolicy p : {SchedulerPolicy::Continuous, SchedulerPolicy::Static}) {
      Sim sim(config(p, 16, 4, true), 16, 4);
      Request* a = sim.add(5, 10);
      Request* b = sim.add(5, 10);
      Request* c = sim.add(5, 10);
      STEP(sim);
      STEP(sim);
      Request* w = sim.add(3, 3);
      sim.abort(b);  // running
      sim.abort(w);  // waiting
      // Continuous frees at once; static keeps a member's blocks until its batch is done.
      QCOMPARE(sim.cache().has(b->id), p == SchedulerPolicy::Static);
      QVERIFY2(sim.check_state(), qPrintable(QString::fromStdString(sim.err())));
      while (!sim.sched().empty()) STEP(sim);
      QVERIFY2(sim.check_drained(), qPrintable(QString::fromStdString(sim.err())));
      QCOMPARE(a->output_ids.size(), size_t(10));
      QCOMPARE(c->output_ids.size(), size_t(10));
      QCOMPARE(sim.aborted(), 2);
    }
  }

  void stress_data() {
    QTest::addColumn<int>("policy");
    QTest::addColumn<bool>("chunked");
    QTest::addColumn<uint64_t>("seed");
    for (int policy : {0, 1})
      for (bool chunked : {true, false})
        for (uint64_t seed : {1ull, 2ull, 3ull, 20240601ull}) {
          const std::string name = std::string(policy ? "static" : "continuous") + (chunked ? "/chunked" : "/whole") +
                                   "/seed" + std::to_string(seed);
          QTest::newRow(name.c_str()) << policy << chunked << seed;
        }
  }

  void stress() {
    QFETCH(int, policy);
    QFETCH(bool, chunked);
    QFETCH(uint64_t, seed);
    std::mt19937_64 rng(seed);
    auto uni = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
    auto chance = [&](double p) { return std::uniform_real_distribution<double>(0, 1)(rng) < p; };

    // A small cache (preemption is routine) and a small budget.
    const int block_size = 4 << uni(0, 1);
    const int blocks = uni(10, 24);
    const int max_seqs = uni(2, 8);
    const int budget = uni(std::max(max_seqs, 16), 48);
    const SchedulerPolicy pol = policy ? SchedulerPolicy::Static : SchedulerPolicy::Continuous;
    Sim sim(config(pol, budget, max_seqs, chunked), blocks, block_size);
    QVERIFY(sim.max_len() >= 2);

    const int arrival_steps = 3000;
    int added = 0;
    while (sim.steps() < (uint64_t)arrival_steps || !sim.sched().empty()) {
      if (sim.steps() < (uint64_t)arrival_steps) {
        // Bursty arrivals.
        if (chance(0.25)) {
          const int n = chance(0.1) ? uni(2, 6) : 1;
          for (int i = 0; i < n; ++i) {
            const int prompt = chance(0.2) ? uni(1, sim.max_len() - 1) : uni(1, std::min(12, sim.max_len() - 1));
            const int max_tokens = chance(0.2) ? uni(1, 80) : uni(1, 12);
            sim.add(prompt, max_tokens);
            ++added;
          }
        }
        // Aborts of random live requests (waiting or running).
        if (chance(0.03)) {
          std::vector<Request*> live = sim.live();
          if (!live.empty()) sim.abort(live[uni(0, (int)live.size() - 1)]);
          QVERIFY2(sim.check_state(), qPrintable(QString::fromStdString(sim.err())));
        }
      }
      QVERIFY2(sim.step(), qPrintable(QString::fromStdString(sim.err())));
      QVERIFY2(sim.steps() < 200000, "the workload did not drain");
    }
    QVERIFY2(sim.check_drained(), qPrintable(QString::fromStdString(sim.err())));
    QCOMPARE(sim.completed() + sim.aborted(), added);
    QVERIFY(sim.completed() > 0);
    QVERIFY(sim.aborted() > 0);
    const std::string key = std::string(policy ? "static" : "continuous") + (chunked ? "/chunked" : "/whole");
    preemptions_[key] += sim.preemptions();
    steps_[key] += sim.steps();
    if (pol == SchedulerPolicy::Static) {
      QCOMPARE(sim.preemptions(), uint64_t(0));
      padding_ += sim.padding_total();
    }
    qInfo("%s seed %llu: %d requests (%d aborted), %llu steps, %llu preemptions, blocks %d x %d, budget %d, seqs %d",
          key.c_str(), (unsigned long long)seed, added, sim.aborted(), (unsigned long long)sim.steps(),
          (unsigned long long)sim.preemptions(), blocks, block_size, budget, max_seqs);
  }

  // Proves the stress test exercised preemption (and static padding).
  void stressCoveredPreemption() {
    QVERIFY2(preemptions_["continuous/chunked"] > 0, "no preemption in the chunked continuous stress runs");
    QVERIFY2(preemptions_["continuous/whole"] > 0, "no preemption in the unchunked continuous stress runs");
    QVERIFY(padding_ > 0);
    for (const auto& [k, s] : steps_) QVERIFY2(s >= 4 * 3000, k.c_str());
  }

 private:
  std::map<std::string, uint64_t> preemptions_, steps_;
  int64_t padding_ = 0;
};

QTEST_APPLESS_MAIN(TestScheduler)
#include "test_scheduler.moc"
