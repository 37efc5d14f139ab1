// Prefix caching: full KV blocks are published under a chained hash of their
// tokens, reused by later requests with the same prefix, parked when their
// last user goes and evicted least-recently-parked first under pressure.
// Reuse must never change a token, and an evicted block must never be one in use.
#include <QtTest>
#include <map>
#include <random>

#include "brisk/engine.h"
#include "cache/kv_cache.h"

namespace {

std::vector<int32_t> tokens(uint32_t seed, int n) {
  std::vector<int32_t> v;
  for (int k = 0; k < n; ++k) {
    seed = seed * 1664525u + 1013904223u;
    v.push_back(3 + (int32_t)(seed >> 8) % 1000);
  }
  return v;
}

std::vector<int32_t> concat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

brisk::SamplingParams greedy(int max_tokens) {
  brisk::SamplingParams p;
  p.temperature = 0;
  p.max_tokens = max_tokens;
  p.ignore_eos = true;
  return p;
}

std::vector<int32_t> run_one(brisk::Engine& e, const std::vector<int32_t>& prompt, int max_tokens) {
  e.add_request(prompt, greedy(max_tokens));
  std::vector<int32_t> out;
  while (e.has_unfinished())
    for (const auto& o : e.step()) {
      if (o.finish_reason == brisk::FinishReason::Error) throw std::runtime_error(o.error);
      if (o.finished) out = o.token_ids;
    }
  return out;
}

brisk::EngineConfig demo_config(bool prefix_caching) {
  brisk::EngineConfig c;
  c.model = "demo";
  c.threads = 2;
  c.block_size = 16;
  c.num_kv_blocks = 256;
  c.enable_prefix_caching = prefix_caching;
  return c;
}

}  // namespace

class PrefixCache : public QObject {
  Q_OBJECT

 private slots:
  void allocatorParksPublishedBlocksAndEvictsOldestFirst() {
    brisk::BlockAllocator a(4, 16);
    const int32_t b0 = a.allocate(), b1 = a.allocate(), b2 = a.allocate();
    QVERIFY(a.publish(b0, 100));
    QVERIFY(a.publish(b1, 101));
    QVERIFY(!a.publish(b2, 100));  // that content is already published
    QCOMPARE(a.lookup(100), b0);
    a.decref(b1);  // parked first
    a.decref(b0);
    a.decref(b2);  // unpublished: plainly free
    QCOMPARE(a.num_parked(), int64_t(2));
    QCOMPARE(a.num_free(), int64_t(4));
    QCOMPARE(a.lookup(101), b1);  // still findable while parked
    // Free blocks go first; then the least recently parked (b1) is evicted.
    const int32_t x = a.allocate(), y = a.allocate();
    QVERIFY(x != b0 && x != b1 && y != b0 && y != b1);
    QCOMPARE(a.allocate(), b1);
    QCOMPARE(a.lookup(101), -1);
    QCOMPARE(a.evictions(), int64_t(1));
    // A parked block taken back is in use again and cannot be evicted.
    a.acquire(b0);
    QCOMPARE(a.refcount(b0), 1);
    QCOMPARE(a.allocate(), -1);
    QCOMPARE(a.lookup(100), b0);
  }

  void kvCacheMatchesWholeBlocksOfTheLongestPrefix() {
    brisk::KvCache c(16, 4);
    const std::vector<int32_t> p = tokens(7, 14);  // 3 full blocks + 2
    QVERIFY(c.append_slots(1, 14));
    c.commit_full_blocks(1, p, {}, 14);
    QCOMPARE((int)c.table(1)->hashes.size(), 3);
    const std::vector<int32_t> blocks = c.table(1)->blocks;
    // Same first 9 tokens, then different: two whole blocks match.
    std::vector<int32_t> q(p.begin(), p.begin() + 9);
    q.push_back(999);
    q.push_back(998);
    QCOMPARE(c.match_prefix(2, q, {}, (int64_t)q.size() - 1), int64_t(8));
    QCOMPARE(c.table(2)->blocks[0], blocks[0]);
    QCOMPARE(c.table(2)->blocks[1], blocks[1]);
    QCOMPARE(c.allocator().refcount(blocks[0]), 2);
    // At most max_tokens: with 7 allowed only one block can be reused.
    QCOMPARE(c.match_prefix(3, p, {}, 7), int64_t(4));
    // Hashes chain: the same tokens after a different first block never match.
    std::vector<int32_t> r = tokens(8, 4);
    r.insert(r.end(), p.begin() + 4, p.end());
    QCOMPARE(c.match_prefix(4, r, {}, (int64_t)r.size() - 1), int64_t(0));
    // Output tokens count as tokens: prompt 6 + output 6 == p's first 12.
    c.free(2);
    c.free(3);
    c.free(1);
    std::vector<int32_t> prompt(p.begin(), p.begin() + 6), output(p.begin() + 6, p.begin() + 13);
    QCOMPARE(c.match_prefix(5, prompt, output, 12), int64_t(12));
  }

  // Two requests sharing a 200-token prefix: the second computes only what it
  // does not share, and its output equals an uncached run's.
  void secondRequestComputesOnlyTheUnsharedTokens() {
    const std::vector<int32_t> prefix = concat({1}, tokens(42, 200));  // BOS + 200
    const std::vector<int32_t> a = concat(prefix, tokens(43, 20)), b = concat(prefix, tokens(44, 30));
    auto off = brisk::Engine::create(demo_config(false));
    const std::vector<int32_t> want_b = run_one(*off, b, 24);

    auto on = brisk::Engine::create(demo_config(true));
    run_one(*on, a, 16);
    on->reset_metrics();
    const std::vector<int32_t> got_b = run_one(*on, b, 24);
    QCOMPARE(got_b, want_b);
    int64_t prefill = 0;
    for (const auto& s : on->step_history()) prefill += s.prefill_tokens;
    const int64_t shared_blocks = (int64_t)prefix.size() / 16;  // 201 tokens: 12 whole blocks
    QCOMPARE(prefill, (int64_t)b.size() - shared_blocks * 16);
    const auto m = on->metrics();
    QCOMPARE(m.prefix_hit_tokens, uint64_t(shared_blocks * 16));
    QCOMPARE(m.prefix_query_tokens, uint64_t(b.size()));
    QVERIFY(m.prefix_cache_hit_rate > 0.7);
  }

  // Many requests over a few shared prefixes, staggered, in a cache small
  // enough to force eviction and preemption: every output equals the uncached
  // run, and no block held by a live sequence is ever handed out again.
  void randomizedPressureNeverEvictsABlockInUse() {
    std::mt19937 rng(5);
    std::vector<std::vector<int32_t>> prefixes;
    for (int i = 0; i < 4; ++i) prefixes.push_back(concat({1}, tokens(100 + i, 20 + 25 * i)));
    struct Job {
      std::vector<int32_t> prompt;
      int max_tokens;
    };
    std::vector<Job> jobs;
    for (int i = 0; i < 40; ++i)
      jobs.push_back({concat(prefixes[rng() % 4], tokens(1000 + i, 1 + rng() % 40)), 2 + (int)(rng() % 30)});

    auto off = brisk::Engine::create(demo_config(false));
    std::vector<std::vector<int32_t>> want;
    for (const Job& j : jobs) want.push_back(run_one(*off, j.prompt, j.max_tokens));

    brisk::EngineConfig cfg = demo_config(true);
    cfg.num_kv_blocks = 24;  // 384 slots for up to ~170-token sequences, several at once
    cfg.max_num_seqs = 8;
    cfg.max_num_batched_tokens = 96;
    auto e = brisk::Engine::create(cfg);
    std::map<uint64_t, int> index;
    std::map<int, std::vector<int32_t>> got;
    int next = 0, step = 0;
    while (next < (int)jobs.size() || e->has_unfinished()) {
      ++step;
      if (next < (int)jobs.size()) {  // one arrival per step
        index[e->add_request(jobs[next].prompt, greedy(jobs[next].max_tokens))] = next;
        ++next;
      }
      for (const auto& o : e->step()) {
        QVERIFY2(o.finish_reason != brisk::FinishReason::Error, o.error.c_str());
        if (o.finished) got[index.at(o.request_id)] = o.token_ids;
      }
      // Every block a live sequence owns is referenced (never parked or free).
      for (const auto& b : e->kv_blocks())
        if (b.owner >= 0) QVERIFY2(b.refcount >= 1, "a live sequence holds an unreferenced block");
      QVERIFY(step < 20000);
    }
    QCOMPARE((int)got.size(), (int)jobs.size());
    for (size_t i = 0; i < jobs.size(); ++i) QVERIFY2(got[(int)i] == want[i], ("job " + std::to_string(i)).c_str());
    const auto m = e->metrics();
    QVERIFY2(m.prefix_cache_hit_rate > 0.2, std::to_string(m.prefix_cache_hit_rate).c_str());
    QVERIFY2(m.preemptions > 0, "the cache was meant to be small enough to preempt");
  }
};

QTEST_GUILESS_MAIN(PrefixCache)
#include "test_prefix_cache.moc"
