// Continuous batching, chunked prefill and preemption must not change a
// single greedy token: 32 prompts with different lengths and max_tokens,
// submitted at staggered steps into a KV cache small enough to force
// preemptions, produce exactly what each prompt produces alone.
#include <QtTest>
#include <map>

#include "brisk/engine.h"

namespace {

std::vector<int32_t> make_prompt(int i) {
  // Varied lengths (3..~190 tokens) and contents, from a fixed LCG.
  uint32_t s = 1234u + 977u * i;
  const int len = 3 + (i * 37) % 190;
  std::vector<int32_t> p = {1};
  for (int k = 0; k < len; ++k) {
    s = s * 1664525u + 1013904223u;
    p.push_back(3 + (int32_t)(s >> 8) % 1000);
  }
  return p;
}

brisk::SamplingParams params_for(int i) {
  brisk::SamplingParams p;
  p.temperature = 0;
  p.max_tokens = 4 + (i * 13) % 60;
  p.ignore_eos = true;
  return p;
}

std::vector<int32_t> alone(brisk::Engine& e, int i) {
  e.add_request(make_prompt(i), params_for(i));
  std::vector<int32_t> out;
  while (e.has_unfinished())
    for (const auto& o : e.step())
      if (o.finished) out = o.token_ids;
  return out;
}

}  // namespace

class BatchedEqualsAlone : public QObject {
  Q_OBJECT

  static constexpr int kRequests = 32;
  std::vector<std::vector<int32_t>> expected_;

  // What each request produces alone on an engine made from cfg (one
  // sequence at a time).
  static std::vector<std::vector<int32_t>> alone_outputs(brisk::EngineConfig cfg) {
    cfg.max_num_seqs = 1;
    auto e = brisk::Engine::create(cfg);
    std::vector<std::vector<int32_t>> out;
    for (int i = 0; i < kRequests; ++i) out.push_back(alone(*e, i));
    return out;
  }

  void run_batched(brisk::EngineConfig cfg, bool expect_preemptions) {
    auto e = brisk::Engine::create(cfg);
    std::map<uint64_t, int> index;
    std::map<int, std::vector<int32_t>> got;
    int next = 0, step = 0;
    while (next < kRequests || e->has_unfinished()) {
      // Two new requests every third step: arrivals land mid-prefill and mid-decode.
      if (step++ % 3 == 0)
        for (int k = 0; k < 2 && next < kRequests; ++k, ++next)
          index[e->add_request(make_prompt(next), params_for(next))] = next;
      for (const auto& o : e->step()) {
        QVERIFY2(o.finish_reason != brisk::FinishReason::Error, o.error.c_str());
        if (o.finished) {
          QVERIFY(!got.count(index.at(o.request_id)));
          got[index.at(o.request_id)] = o.token_ids;
        }
      }
      QVERIFY(step < 100000);
    }
    QCOMPARE((int)got.size(), kRequests);
    for (int i = 0; i < kRequests; ++i)
      QVERIFY2(got[i] == expected_[i], ("request " + std::to_string(i)).c_str());
    const auto m = e->metrics();
    if (expect_preemptions) QVERIFY2(m.preemptions > 0, "the KV budget was meant to force preemptions");
    int chunked = 0;
    for (const auto& s : e->step_history()) {
      QVERIFY(s.prefill_tokens + s.decode_tokens <= cfg.max_num_batched_tokens);
      QVERIFY(s.num_seqs <= cfg.max_num_seqs);
      chunked += s.prefill_tokens > 0 && s.decode_tokens > 0;
    }
    if (cfg.policy == brisk::SchedulerPolicy::Continuous)
      QVERIFY2(chunked > 0, "prefill and decode never shared a step");
    for (const auto& b : e->kv_blocks()) QCOMPARE(b.owner, int64_t(-1));
  }

 private slots:
  void initTestCase() {
    brisk::EngineConfig cfg;  // the built-in demo model
    cfg.threads = 2;
    expected_ = alone_outputs(cfg);
    QCOMPARE((int)expected_[5].size(), params_for(5).max_tokens);
  }

  void continuousChunkedWithPreemption() {
    brisk::EngineConfig cfg;
    cfg.threads = 2;
    cfg.max_num_seqs = 16;
    cfg.max_num_batched_tokens = 64;  // long prompts are split over several steps
    cfg.enable_chunked_prefill = true;
    cfg.num_kv_blocks = 30;  // 480 token slots for up to 16 sequences of up to ~250
    run_batched(cfg, true);
  }

  void continuousWithoutChunking() {
    brisk::EngineConfig cfg;
    cfg.threads = 2;
    cfg.max_num_seqs = 8;
    cfg.max_num_batched_tokens = 512;
    cfg.enable_chunked_prefill = false;
    cfg.num_kv_blocks = 40;
    run_batched(cfg, true);
  }

  // The one-byte weight paths keep one summation order for every batch
  // size too (FP8: BF16 dot products where the CPU has them, else the F32
  // widening; INT8: W8A24 or the F32 widening; Q8_0: W8A16 or the F32
  // widening), so quantized weights change the tokens but not whether
  // batching changes them.
  void quantizedWeightsContinuous() {
    for (const char* dtype : {"fp8-e4m3", "int8", "q8_0"}) {
      brisk::EngineConfig cfg;
      cfg.threads = 2;
      cfg.weight_dtype = dtype;
      const auto f32 = expected_;
      expected_ = alone_outputs(cfg);
      QVERIFY2(expected_ != f32, dtype);  // the weights really are quantized
      cfg.max_num_seqs = 16;
      cfg.max_num_batched_tokens = 64;
      cfg.enable_chunked_prefill = true;
      cfg.num_kv_blocks = 30;
      run_batched(cfg, true);
      expected_ = f32;
      if (QTest::currentTestFailed()) QFAIL(dtype);
    }
  }

  void staticPolicy() {
    brisk::EngineConfig cfg;
    cfg.threads = 2;
    cfg.policy = brisk::SchedulerPolicy::Static;
    cfg.max_num_seqs = 8;
    cfg.max_num_batched_tokens = 1024;
    cfg.num_kv_blocks = 64;
    run_batched(cfg, false);
  }
};

QTEST_APPLESS_MAIN(BatchedEqualsAlone)
#include "test_batched_equals_alone.moc"
