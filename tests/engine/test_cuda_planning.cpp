// The host-side planning of the CUDA backend, which runs everywhere: GEMM
// path per weight, device weight sizes, workspace, KV sizing (and its error
// text when memory is short), graph buckets, the backend registry on a
// machine without a device, and the model's graph path (padding to a
// bucket, a scratch KV block, replay of recorded steps) driven through a
// recording wrapper of the CPU backend, so it is exercised without a GPU.
#include <QtTest>
#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/graph_buckets.h"
#include "backend/cuda/memory_plan.h"
#include "brisk/engine.h"
#include "brisk/error.h"
#include "kernels/cuda/cuda_kernels.h"
#include "model/llama_model.h"
#include "model/synthetic_model.h"

using namespace brisk;

namespace {

bool throws_with(const std::function<void()>& f, const std::vector<std::string>& parts, std::string* msg) {
  try {
    f();
  } catch (const Error& e) {
    *msg = e.what();
    for (const std::string& p : parts)
      if (msg->find(p) == std::string::npos) return false;
    return true;
  }
  *msg = "(no error)";
  return false;
}

// The CPU backend behind a StepGraphs that records ops between
// begin_capture and end_capture (running nothing) and replays the recording:
// what a CUDA graph does, so the model's padded decode path can be checked
// on the CPU. Replays re-read the uploaded buffers, as a graph does.
class RecordingBackend final : public Backend, public StepGraphs {
 public:
  RecordingBackend() : cpu_(make_cpu_backend(1)) {}
  std::string name() const override { return "recording-cpu"; }
  Tensor weight(const WeightTensor& w) override { return cpu_->weight(w); }
  Tensor alloc(DType dt, int64_t r, int64_t c) override { return cpu_->alloc(dt, r, c); }
  void upload(Tensor d, const void* s, int64_t r) override {
    if (recording_) throw Error("upload during capture");
    cpu_->upload(d, s, r);
  }
  void download(void* d, Tensor s, int64_t r) override {
    if (recording_) throw Error("download during capture");
    cpu_->download(d, s, r);
  }
  void embed(Tensor o, Tensor t, Tensor i, int n) override {
    op([=, this] { cpu_->embed(o, t, i, n); });
  }
  void rmsnorm(Tensor o, Tensor x, Tensor w, int n, float e) override {
    op([=, this] { cpu_->rmsnorm(o, x, w, n, e); });
  }
  void matmul(Tensor o, Tensor x, Tensor w, int n) override {
    op([=, this] { cpu_->matmul(o, x, w, n); });
  }
  void rope(Tensor x, Tensor p, int n, int h, int d, int r, float t) override {
    op([=, this] { cpu_->rope(x, p, n, h, d, r, t); });
  }
  Tensor alloc_kv_cache(DType dt, int64_t s, int h, int d) override {
    slots_ = s;
    return cpu_->alloc_kv_cache(dt, s, h, d);
  }
  void kv_write(Tensor kc, Tensor vc, Tensor k, Tensor v, Tensor s, int n, int h, int d) override {
    op([=, this] { cpu_->kv_write(kc, vc, k, v, s, n, h, d); });
  }
  void rope_kv_write(Tensor q, Tensor k, Tensor v, Tensor p, Tensor s, Tensor kc, Tensor vc, int n, int nh,
                     int nkv, int hd, int rd, float t) override {
    op([=, this] { cpu_->rope_kv_write(q, k, v, p, s, kc, vc, n, nh, nkv, hd, rd, t); });
  }
  void attention(Tensor o, Tensor q, Tensor kc, Tensor vc, const AttentionBatch& b, int nh, int nkv,
                 int hd) override {
    AttentionBatch copy = b;
    op([=, this] { cpu_->attention(o, q, kc, vc, copy, nh, nkv, hd); });
  }
  void add_rmsnorm(Tensor x, Tensor r, Tensor w, Tensor y, int n, float e) override {
    op([=, this] { cpu_->add_rmsnorm(x, r, w, y, n, e); });
  }
  void silu_mul(Tensor o, Tensor g, Tensor u, int n) override {
    op([=, this] { cpu_->silu_mul(o, g, u, n); });
  }
  void add(Tensor o, Tensor a, Tensor b, int n) override {
    op([=, this] { cpu_->add(o, a, b, n); });
  }
  void gather_rows(Tensor o, Tensor x, Tensor r, int n) override {
    op([=, this] { cpu_->gather_rows(o, x, r, n); });
  }
  void argmax_rows(Tensor o, Tensor x, int n, int cols) override {
    op([=, this] { cpu_->argmax_rows(o, x, n, cols); });
  }
  void copy_blocks(Tensor c, const std::vector<std::pair<int32_t, int32_t>>& p, int bs, int h) override {
    cpu_->copy_blocks(c, p, bs, h);
  }

  bool graphs_enabled() const override { return true; }
  bool has_graph(int bucket) const override { return graphs_.count(bucket) > 0; }
  void begin_capture() override {
    recording_ = true;
    tape_.clear();
  }
  void end_capture(int bucket) override {
    recording_ = false;
    graphs_[bucket] = std::move(tape_);
    ++captures;
  }
  void abort_capture() noexcept override { recording_ = false; }
  void replay(int bucket) override {
    for (auto& f : graphs_.at(bucket)) f();
    ++replays;
  }

  int captures = 0, replays = 0;
  int64_t slots_ = 0;

 private:
  void op(std::function<void()> f) {
    if (recording_)
      tape_.push_back(std::move(f));
    else
      f();
  }
  std::unique_ptr<Backend> cpu_;
  bool recording_ = false;
  std::vector<std::function<void()>> tape_;
  std::map<int, std::vector<std::function<void()>>> graphs_;
};

// One sequence's state for hand-driven batches: blocks [4 i, 4 i + 4).
struct Seq {
  int index;
  std::vector<int32_t> tokens;
};

ForwardBatch make_batch(const std::vector<Seq>& seqs, int bs, bool prefill) {
  ForwardBatch b;
  b.clear();
  b.max_blocks_per_seq = 4;
  for (const Seq& s : seqs) {
    const int len = (int)s.tokens.size();
    const int from = prefill ? 0 : len - 1;
    for (int p = from; p < len; ++p) {
      b.token_ids.push_back(s.tokens[p]);
      b.positions.push_back(p);
      b.slot_mapping.push_back((s.index * 4 + p / bs) * bs + p % bs);
    }
    b.query_start.push_back((int32_t)b.token_ids.size());
    b.seq_lens.push_back(len);
    for (int j = 0; j < 4; ++j) b.block_tables.push_back(s.index * 4 + j);
    b.logits_rows.push_back((int32_t)b.token_ids.size() - 1);
  }
  return b;
}

int argmax(const float* x, int n) {
  int best = 0;
  for (int i = 1; i < n; ++i)
    if (x[i] > x[best]) best = i;
  return best;
}

}  // namespace

class TestCudaPlanning : public QObject {
  Q_OBJECT

 private slots:
  void gemmPathPerDtype() {
    DeviceCaps h100{9, 0, true, false}, a100{8, 0, false, false}, w8a8{9, 0, true, true};
    QCOMPARE(gemm_path(DType::F32, 256, 256, h100), GemmPath::Sgemm);
    QCOMPARE(gemm_path(DType::F16, 256, 256, h100), GemmPath::Half);
    QCOMPARE(gemm_path(DType::BF16, 256, 100, h100), GemmPath::Half);
    QCOMPARE(gemm_path(DType::I8, 256, 256, h100), GemmPath::Dequant);  // weight-only unless W8A8
    QCOMPARE(gemm_path(DType::I8, 256, 256, w8a8), GemmPath::LtInt8);
    QCOMPARE(gemm_path(DType::I8, 256, 100, w8a8), GemmPath::Dequant);  // K not a multiple of 16
    QCOMPARE(gemm_path(DType::F8_E4M3, 256, 256, h100), GemmPath::LtFp8);
    QCOMPARE(gemm_path(DType::F8_E4M3, 130, 256, h100), GemmPath::Dequant);  // N not a multiple of 16
    QCOMPARE(gemm_path(DType::F8_E4M3, 256, 256, a100), GemmPath::Half);     // F16 copy made at load
    QCOMPARE(gemm_path(DType::F8_E5M2, 256, 256, h100), GemmPath::Dequant);
    QCOMPARE(gemm_path(DType::Q8_0, 256, 256, h100), GemmPath::Dequant);
  }

  void deviceWeightSizes() {
    DeviceCaps h100{9, 0, true, false}, a100{8, 0, false, false};
    QCOMPARE(device_weight_dtype(DType::F8_E4M3, 64, a100), DType::F16);
    QCOMPARE(device_weight_dtype(DType::F8_E4M3, 64, h100), DType::F8_E4M3);
    QCOMPARE(device_weight_dtype(DType::F16, 1, h100), DType::F32);  // norm weights
    QCOMPARE(device_weight_dtype(DType::F16, 2, h100), DType::F16);
    QCOMPARE(device_weight_bytes(DType::I8, 10, 64, h100), 10 * 64 + 10 * 4);
    QCOMPARE(device_weight_bytes(DType::F8_E4M3, 10, 64, a100), 10 * 64 * 2);
    QCOMPARE(device_weight_bytes(DType::Q8_0, 3, 64, h100), 3 * 2 * 34);
    QCOMPARE(device_weight_bytes(DType::BF16, 1, 64, h100), 64 * 4);
  }

  void workspaceFromShapeAndLimits() {
    const DeviceCaps h100{9, 0, true, false}, w8a8{9, 0, true, true};
    // Batches within the GEMV's rows need no GEMM workspace.
    WorkspacePlan p = plan_workspace({{DType::F16, 512, 256, cuda::kGemvMaxRows}}, 0, 0, 0, h100);
    QCOMPARE(p.act_bytes, 0);
    QCOMPARE(p.blas_bytes, kBlasWorkspaceBytes);
    p = plan_workspace({{DType::F16, 512, 256, 100}, {DType::F32, 4096, 4096, 2048}}, 0, 0, 0, h100);
    QCOMPARE(p.act_bytes, 100 * 256 * 2);
    QCOMPARE(p.acc_bytes, 0);
    QCOMPARE(p.dequant_bytes, 0);
    p = plan_workspace({{DType::I8, 512, 256, 100}, {DType::Q8_0, 1024, 64, 20}}, 32, 8, 64, w8a8);
    QCOMPARE(p.act_bytes, 100 * 256 * 2);  // room for the dequantizing fallback
    QCOMPARE(p.act_scale_bytes, 100 * 4);
    QCOMPARE(p.acc_bytes, 100 * 512 * 4);
    QCOMPARE(p.dequant_bytes, 512 * 256 * 2);  // the larger of the two weights
    QCOMPARE(p.attention_bytes, (int64_t)cuda::attention_workspace_bytes(32, 8, 64));
    QCOMPARE(p.attention_counter_bytes, 32 * 8 * 4);  // a counter per (row, head)
    // Attention partials and counters are capped at kMaxSplitRows rows.
    p = plan_workspace({}, 4096, 8, 64, h100);
    QCOMPARE(p.attention_bytes, (int64_t)cuda::attention_workspace_bytes((int)kMaxSplitRows, 8, 64));
    QCOMPARE(p.attention_counter_bytes, kMaxSplitRows * 8 * 4);
    QVERIFY(p.total() >= p.attention_bytes + p.attention_counter_bytes + p.blas_bytes);
    p = plan_workspace({}, 0, 8, 64, h100);  // no decode rows: neither
    QCOMPARE(p.attention_bytes, 0);
    QCOMPARE(p.attention_counter_bytes, 0);
  }

  void modelGemmsOfTheDemoModel() {
    const LoadedModel m = make_synthetic_model(*find_shape("demo"), DType::F16, 1);
    const auto g = model_gemms(m.weights, 2048, 32);
    bool classifier = false;
    for (const GemmUse& u : g) {
      QCOMPARE(u.dtype, DType::F16);
      if (u.n_out == m.config.vocab_size) {
        QCOMPARE(u.max_rows, 32);
        classifier = true;
      } else {
        QCOMPARE(u.max_rows, 2048);
      }
    }
    QVERIFY(classifier);
    QVERIFY(g.size() >= 3 && g.size() <= 8);  // distinct shapes only
    const DeviceCaps h100{9, 0, true, false};
    QVERIFY(device_weights_bytes(m.weights, h100) >= (int64_t)m.weights.token_embd.bytes());
  }

  void kvBlocksFromUtilization() {
    KvBudget b;
    b.device = "Test GPU";
    b.free_bytes = 10ll << 30;
    b.weight_bytes = 2ll << 30;
    b.workspace_bytes = 1ll << 30;
    b.reserve_bytes = 1ll << 30;
    b.utilization = 0.5;
    b.bytes_per_block = 1 << 20;
    b.extra_blocks = 2;
    QCOMPARE(plan_kv_blocks(b), (int64_t)(3 * 1024 - 2));  // (10 - 2 - 1 - 1) GiB x 0.5 / 1 MiB
    b.num_kv_blocks = 100;
    QCOMPARE(plan_kv_blocks(b), 100);
    b.num_kv_blocks = 0;
    b.kv_cache_bytes = 50ll << 20;
    QCOMPARE(plan_kv_blocks(b), 50);
  }

  void kvBlocksErrorsNameFieldAndFigures() {
    KvBudget b;
    b.device = "Test GPU";
    b.free_bytes = 4ll << 30;
    b.weight_bytes = 2ll << 30;
    b.workspace_bytes = 512ll << 20;
    b.reserve_bytes = 256ll << 20;
    b.bytes_per_block = 1 << 20;
    std::string msg;
    b.num_kv_blocks = 2000;
    QVERIFY2(throws_with(
                 [&] { plan_kv_blocks(b); },
                 {"EngineConfig.num_kv_blocks = 2000", "Test GPU", "1.95 GiB", "1.25 GiB", "2.00 GiB"}, &msg),
             msg.c_str());
    b.num_kv_blocks = 0;
    b.kv_cache_bytes = 3ll << 30;
    QVERIFY2(throws_with([&] { plan_kv_blocks(b); }, {"EngineConfig.kv_cache_bytes = 3221225472", "1.25 GiB"},
                         &msg),
             msg.c_str());
    b.kv_cache_bytes = 0;
    b.utilization = 0.0001;
    QVERIFY2(throws_with(
                 [&] { plan_kv_blocks(b); },
                 {"EngineConfig.gpu_memory_utilization = 0.0001", "less than one KV block", "1.0 MiB"}, &msg),
             msg.c_str());
    b.utilization = 0.9;
    b.weight_bytes = 5ll << 30;
    QVERIFY2(throws_with([&] { plan_kv_blocks(b); }, {"does not fit", "5.00 GiB", "4.00 GiB is free"}, &msg),
             msg.c_str());
  }

  void graphBuckets() {
    QCOMPARE(graph_buckets(32), (std::vector<int>{1, 2, 4, 8, 16, 24, 32}));
    QCOMPARE(graph_buckets(1), (std::vector<int>{1}));
    QCOMPARE(graph_buckets(3), (std::vector<int>{1, 2, 3}));
    QCOMPARE(graph_buckets(12), (std::vector<int>{1, 2, 4, 8, 12}));
    QVERIFY(graph_buckets(0).empty());
    const auto big = graph_buckets(300);
    QCOMPARE(big.back(), 300);
    QCOMPARE(big[big.size() - 2], 288);
    QVERIFY(std::is_sorted(big.begin(), big.end()));
    const auto b32 = graph_buckets(32);
    QCOMPARE(pick_bucket(b32, 1), 1);
    QCOMPARE(pick_bucket(b32, 3), 4);
    QCOMPARE(pick_bucket(b32, 9), 16);
    QCOMPARE(pick_bucket(b32, 32), 32);
    QCOMPARE(pick_bucket(b32, 33), 0);
    QCOMPARE(pick_bucket(b32, 0), 0);
  }

  void registryWithoutDevice() {
    const CudaProbe p = cuda_probe();
    if (p.available) QSKIP(("a CUDA device is present (" + p.describe() + "): covered by tests/gpu").c_str());
    QVERIFY(!p.reason.empty());
#ifndef BRISK_HAVE_CUDA
    QCOMPARE(QString::fromStdString(p.reason),
             QString("built without CUDA (nvcc not found when Brisk was built)"));
#endif
    const auto infos = backend_infos();
    QCOMPARE((int)infos.size(), 2);
    QCOMPARE(QString::fromStdString(infos[0].name), QString("cpu"));
    QVERIFY(infos[0].available);
    QCOMPARE(QString::fromStdString(infos[1].name), QString("cuda"));
    QVERIFY(!infos[1].available);
    QCOMPARE(infos[1].reason, p.reason);
    QCOMPARE(available_backends(), (std::vector<std::string>{"cpu"}));
    std::string msg;
    QVERIFY2(throws_with([] { make_backend("cuda", {}); }, {"cuda", p.reason}, &msg), msg.c_str());
    QVERIFY2(throws_with([] { make_backend("tpu", {}); }, {"tpu", "auto, cpu, cuda"}, &msg), msg.c_str());
    QCOMPARE(QString::fromStdString(make_backend("auto", {}).get()->name()), QString("cpu"));
    QCOMPARE(QString::fromStdString(make_backend("cpu", {}).get()->name()), QString("cpu"));
    // Through the engine: a clear error for "cuda", the CPU for "auto".
    EngineConfig cfg;
    cfg.threads = 1;
    cfg.backend = "cuda";
    QVERIFY2(throws_with([&] { Engine::create(cfg); }, {"cuda", p.reason}, &msg), msg.c_str());
    cfg.backend = "auto";
    auto e = Engine::create(cfg);
    QVERIFY(e->num_kv_blocks() > 0);
    QCOMPARE(cuda_device_allocations(), 0);
  }

  // The model's graph path, on the CPU: decode steps padded to a bucket and
  // replayed from a recording give the logits of plain eager steps.
  void paddedGraphStepsMatchEager() {
    const LoadedModel m = make_synthetic_model(*find_shape("demo"), DType::F32, 7);
    const int bs = 16, V = m.config.vocab_size;
    ModelLimits lim;
    lim.max_tokens = 64;
    lim.max_seqs = 8;
    lim.max_blocks_per_seq = 4;
    lim.num_kv_blocks = 32;
    lim.block_size = bs;
    auto cpu = make_cpu_backend(1);
    RecordingBackend rec;
    LlamaModel eager(m, *cpu, lim), graphed(m, rec, lim);
    QCOMPARE(rec.slots_, (lim.num_kv_blocks + 1) * bs);  // one scratch block for padding rows
    std::vector<Seq> seqs;
    for (int i = 0; i < 5; ++i) seqs.push_back({i, {1, 10 + i, 20 + 3 * i, 7}});
    std::vector<float> a, b;
    std::string diff;
    auto step = [&](const std::vector<Seq>& batch, bool prefill) {
      const ForwardBatch fb = make_batch(batch, bs, prefill);
      eager.forward(fb, a);
      graphed.forward(fb, b);
      if (a.size() != b.size()) return diff = "logits sizes differ", false;
      for (size_t i = 0; i < a.size(); ++i)
        if (std::abs(a[i] - b[i]) > 1e-5f * (1 + std::abs(a[i])))
          return diff = "logit " + std::to_string(i) + ": eager " + std::to_string(a[i]) + ", graphed " +
                        std::to_string(b[i]),
                 false;
      return true;
    };
    QVERIFY2(step(seqs, true), diff.c_str());  // prefill: eager on both
    QCOMPARE(rec.captures, 0);
    // Decode: 5 rows -> bucket 8 (3 padding rows), 2 rows -> bucket 2, then
    // 5 again (a replay). A sequence left out of a step decodes its last
    // token again next time, rewriting the same K/V.
    for (int round = 0; round < 6; ++round) {
      std::vector<int> pick = round % 3 == 1 ? std::vector<int>{1, 3} : std::vector<int>{0, 1, 2, 3, 4};
      std::vector<Seq> batch;
      for (int i : pick) batch.push_back(seqs[i]);
      QVERIFY2(step(batch, false), ("round " + std::to_string(round) + ": " + diff).c_str());
      for (size_t r = 0; r < pick.size(); ++r) seqs[pick[r]].tokens.push_back(argmax(a.data() + r * V, V));
    }
    QCOMPARE(rec.captures, 2);  // buckets 8 and 2, captured once each
    QCOMPARE(rec.replays, 6);
  }
};

QTEST_GUILESS_MAIN(TestCudaPlanning)
#include "test_cuda_planning.moc"
