// The one-launch decode kernel's block work (kernels/cuda/decode_persistent.cuh)
// run on the CPU: the same source the GPU kernel instantiates, a thread per
// CUDA thread (a barrier for __syncthreads, an exchange through memory for
// the warp shuffles), the blocks of a phase one after another (what the
// grid barrier between phases guarantees). Against the reference ops
// composed as the model composes them — rmsnorm, the projections, RoPE and
// the KV write, paged attention, SwiGLU, the residual adds — over a
// shuffled block table, with the context split into partitions or not,
// grids smaller and larger than a phase's work, F16 and BF16 weights and
// F32, F16 and BF16 caches. So the phases' row assignment, the folded
// norm, the partition merge and the cache write are tested where there is
// no GPU (tests/gpu checks the kernel itself on a device).
#include <QtTest/QtTest>
#include <atomic>
#include <barrier>
#include <cmath>
#include <random>
#include <thread>
#include <vector>

#include "kernels/cuda/decode_persistent.cuh"
#include "kernels/reference/attention.h"
#include "kernels/reference/ops.h"
#include "kernels/support/emulated_block.h"
#include "kernels/support/paged_layout.h"

using namespace brisk;
namespace persist = brisk::cuda::persist;

namespace {

// The Block interface of decode_persistent.cuh for thread `t` of an emulated block.
struct EmulatedThread {
  int t;
  testing::EmulatedWarps<persist::kThreads>* blk;
  int tid() const { return t; }
  void sync() const { blk->sync(); }
  float shfl_xor(float v, int o) const { return blk->shfl_xor(t, v, o); }
  void fence() const {}
  uint32_t count_in(uint32_t* c) const { return (*c)++; }  // thread 0 only; blocks run one at a time
};

// Runs every layer's phases on `grid` emulated blocks, one block at a time,
// the last block first (a phase may not depend on its blocks' order: the
// block that writes the new token's K and V runs after those that read it).
// Each block keeps its shared memory, as on the GPU, but everything below
// the RoPE table is NaN again before each phase, as garbage would be: no
// phase may read what an earlier one left there.
template <DType WDT>
void run_emulated(const cuda::PersistentDecodeArgs& a) {
  const int G = a.plan.grid;
  testing::EmulatedWarps<persist::kThreads> blk;
  const size_t floats = a.plan.smem_bytes / sizeof(float);
  std::vector<std::vector<float>> smem(G, std::vector<float>(floats, NAN));
  struct Task {
    int layer, phase, block;  // phase -1: the prologue
  };
  std::vector<Task> tasks;
  for (int g = G - 1; g >= 0; --g) tasks.push_back({0, -1, g});
  for (int l = 0; l < a.n_layers; ++l)
    for (int p = 0; p < persist::kPhases; ++p)
      for (int g = G - 1; g >= 0; --g) tasks.push_back({l, p, g});
  size_t next = 0;  // advanced by the barrier's completion, which readies the next task's block
  auto advance = [&]() noexcept {
    if (++next < tasks.size() && tasks[next].phase >= 0) {
      std::vector<float>& m = smem[tasks[next].block];
      std::fill(m.begin(), m.begin() + a.plan.rope_at, NAN);
    }
  };
  std::barrier<decltype(advance)> step(persist::kThreads, advance);
  std::vector<std::thread> threads;
  for (int t = 0; t < persist::kThreads; ++t)
    threads.emplace_back([&, t] {
      const EmulatedThread b{t, &blk};
      for (const Task& k : tasks) {
        float* sm = smem[k.block].data();
        if (k.phase < 0)
          persist::prologue(b, a, sm, k.block);
        else
          persist::run_phase<WDT>(b, a, k.layer, k.phase, k.block, G, sm);
        step.arrive_and_wait();
      }
    });
  for (auto& th : threads) th.join();
}

std::vector<uint16_t> encode(DType dt, const std::vector<float>& f) {
  std::vector<uint16_t> out(f.size());
  for (size_t i = 0; i < f.size(); ++i) out[i] = dt == DType::F16 ? fp32_to_fp16(f[i]) : fp32_to_bf16(f[i]);
  return out;
}

// A cache of `slots` rows, as bytes of its dtype.
struct Cache {
  DType dt;
  std::vector<uint8_t> bytes;
  KvCacheView view(int nkv, int D) { return KvCacheView{bytes.data(), nullptr, dt, nkv, D}; }
};

struct Case {
  const char* name;
  DType wdt, kvdt;
  int dim, hidden, n_heads, n_kv_heads, head_dim, rot_dim, layers, context, block_size;
  int grid, min_chunk, max_splits;  // 0: as planned
  int wpr[4];                       // warps a row of each projection; 0: as planned
};

}  // namespace

class TestCudaDecodePersistentEmulated : public QObject {
  Q_OBJECT
 private slots:
  void matchesReference_data() {
    QTest::addColumn<int>("which");
    QTest::newRow("F16, F16 cache, 37 tokens in 5 partitions, grid 3") << 0;
    QTest::newRow("BF16, F32 cache, partial RoPE, one partition, grid 40") << 1;
    QTest::newRow("F16, BF16 cache, MHA, wide rows split over warps, grid 2") << 2;
    QTest::newRow("F16, F16 cache, 1500 tokens (partitions over 1024 keys forced), grid 5") << 3;
    QTest::newRow("F16, F32 cache, the first token of a sequence, grid 7") << 4;
    QTest::newRow("BF16, F16 cache, head_dim 6, a last group of rows part-filled, 1-8 warps a row") << 5;
  }
  void matchesReference() {
    QFETCH(int, which);
    // clang-format off
    const Case cases[] = {
        {"split", DType::F16, DType::F16, 64, 96, 4, 2, 16, 16, 2, 37, 8, 3, 8, 8, {}},
        {"one partition", DType::BF16, DType::F32, 64, 160, 8, 2, 8, 4, 2, 21, 4, 40, 0, 0, {}},
        {"wide", DType::F16, DType::BF16, 512, 1024, 4, 4, 128, 128, 1, 70, 16, 2, 16, 4, {4, 8, 2, 8}},
        {"long", DType::F16, DType::F16, 32, 64, 2, 1, 16, 16, 1, 1500, 16, 5, 0, 1, {}},
        {"first token", DType::F16, DType::F32, 64, 96, 4, 2, 16, 16, 2, 1, 8, 7, 8, 8, {}},
        {"ragged", DType::BF16, DType::F16, 48, 72, 4, 1, 6, 6, 2, 50, 16, 3, 8, 4, {1, 2, 4, 8}},
    };
    // clang-format on
    const Case& c = cases[which];
    QCOMPARE(cuda::persistent_decode_unsupported(c.wdt, c.kvdt, c.dim, c.hidden, c.n_heads, c.n_kv_heads,
                                                 c.head_dim, c.rot_dim),
             std::string());
    std::mt19937 rng(101 + which);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    const int D = c.head_dim, H = c.n_heads, nkv = c.n_kv_heads, qd = H * D, kvd = nkv * D;
    const int L = c.context;
    const testing::PagedLayout lay = testing::make_paged_layout({1}, {L}, c.block_size, 2, rng);
    const int nslots = lay.num_slots();
    const int32_t pos = L - 1, slot = lay.slot(0, L - 1);

    // Weights as the kernel reads them (F16 / BF16) and as F32 for the reference.
    struct LayerData {
      std::vector<uint16_t> wq, wk, wv, wo, wg, wu, wd;
      std::vector<float> attn_norm, ffn_norm;
      Cache k, v;
    };
    auto rand_w = [&](int rows, int cols) {
      std::vector<float> f((size_t)rows * cols);
      for (float& x : f) x = u(rng) / std::sqrt((float)cols) * 2.0f;
      return encode(c.wdt, f);
    };
    const size_t esz = c.kvdt == DType::F32 ? 4 : 2;
    std::vector<LayerData> layers(c.layers);
    for (LayerData& l : layers) {
      l.wq = rand_w(qd, c.dim);
      l.wk = rand_w(kvd, c.dim);
      l.wv = rand_w(kvd, c.dim);
      l.wo = rand_w(c.dim, qd);
      l.wg = rand_w(c.hidden, c.dim);
      l.wu = rand_w(c.hidden, c.dim);
      l.wd = rand_w(c.dim, c.hidden);
      for (int i = 0; i < c.dim; ++i) {
        l.attn_norm.push_back(0.5f + u(rng) * 0.25f + 0.5f);
        l.ffn_norm.push_back(0.5f + u(rng) * 0.25f + 0.5f);
      }
      // The context before the new token, already cached; the rest of the pool NaN.
      l.k = Cache{c.kvdt, std::vector<uint8_t>((size_t)nslots * kvd * esz)};
      l.v = Cache{c.kvdt, std::vector<uint8_t>((size_t)nslots * kvd * esz)};
      std::vector<float> nan(kvd, NAN), row(kvd);
      for (int s = 0; s < nslots; ++s)
        for (int h = 0; h < nkv; ++h) {
          ref::kv_store_head(l.k.view(nkv, D), s, h, nan.data());
          ref::kv_store_head(l.v.view(nkv, D), s, h, nan.data());
        }
      for (int t = 0; t + 1 < L; ++t)
        for (int h = 0; h < nkv; ++h) {
          for (int d = 0; d < D; ++d) row[d] = u(rng) * 2.0f;
          ref::kv_store_head(l.k.view(nkv, D), lay.slot(0, t), h, row.data());
          for (int d = 0; d < D; ++d) row[d] = u(rng);
          ref::kv_store_head(l.v.view(nkv, D), lay.slot(0, t), h, row.data());
        }
    }
    std::vector<float> x0(c.dim);
    for (float& f : x0) f = u(rng);
    const float eps = 1e-5f, theta = 10000.0f;

    // The reference: the model's decode step, op by op, on copies of the caches.
    std::vector<LayerData> ref_layers = layers;
    std::vector<float> x = x0, h(c.dim), q(qd), k(kvd), v(kvd), att(qd), tmp(c.dim), g(c.hidden),
                       up(c.hidden), hb(c.hidden);
    const PagedAttentionArgs ra = lay.reference_args(H, nkv, D);
    for (LayerData& l : ref_layers) {
      ref::rmsnorm(h.data(), x.data(), l.attn_norm.data(), 1, c.dim, eps);
      ref::matmul(q.data(), h.data(), l.wq.data(), c.wdt, 1, qd, c.dim);
      ref::matmul(k.data(), h.data(), l.wk.data(), c.wdt, 1, kvd, c.dim);
      ref::matmul(v.data(), h.data(), l.wv.data(), c.wdt, 1, kvd, c.dim);
      ref::rope_kv_write(q.data(), k.data(), v.data(), &pos, &slot, 1, H, c.rot_dim, theta, l.k.view(nkv, D),
                         l.v.view(nkv, D));
      ref::paged_attention(att.data(), q.data(), l.k.view(nkv, D), l.v.view(nkv, D), ra);
      ref::matmul(tmp.data(), att.data(), l.wo.data(), c.wdt, 1, c.dim, qd);
      ref::add(x.data(), x.data(), tmp.data(), c.dim);
      ref::rmsnorm(h.data(), x.data(), l.ffn_norm.data(), 1, c.dim, eps);
      ref::matmul(g.data(), h.data(), l.wg.data(), c.wdt, 1, c.hidden, c.dim);
      ref::matmul(up.data(), h.data(), l.wu.data(), c.wdt, 1, c.hidden, c.dim);
      ref::silu_mul(hb.data(), g.data(), up.data(), c.hidden);
      ref::matmul(tmp.data(), hb.data(), l.wd.data(), c.wdt, 1, c.dim, c.hidden);
      ref::add(x.data(), x.data(), tmp.data(), c.dim);
    }

    // The emulated kernel.
    cuda::PersistentDecodeArgs a;
    a.plan =
        cuda::plan_persistent_decode(c.dim, c.hidden, H, nkv, D, lay.max_blocks * c.block_size, c.grid, 1);
    QCOMPARE(a.plan.grid, c.grid);
    if (c.min_chunk) a.plan.min_chunk = c.min_chunk;
    if (c.max_splits) a.plan.max_splits = c.max_splits;  // "long": 1, which the 1024-key limit must overrule
    for (int i = 0; i < 4; ++i)
      if (c.wpr[i]) a.plan.wpr[i] = c.wpr[i];
    std::vector<cuda::PersistentLayer> pl(c.layers);
    for (int i = 0; i < c.layers; ++i) {
      LayerData& l = layers[i];
      pl[i] = cuda::PersistentLayer{l.wq.data(),       l.wk.data(),      l.wv.data(),     l.wo.data(),
                                    l.wg.data(),       l.wu.data(),      l.wd.data(),     l.attn_norm.data(),
                                    l.ffn_norm.data(), l.k.bytes.data(), l.v.bytes.data()};
    }
    int splits = 0, chunk = 0;
    persist::attention_split(a.plan, L, splits, chunk);
    // Partials sized for the split this context takes (the plan's maximum may be smaller, case "long").
    const int max_splits = std::max(a.plan.max_splits, splits);
    a.plan.max_splits = max_splits;
    std::vector<float> xk = x0, wq_(qd, NAN), wk_(kvd, NAN), wv_(kvd, NAN), watt(qd, NAN), wh(c.hidden, NAN),
                       partials((size_t)H * max_splits * (D + 2), NAN);
    std::vector<uint32_t> counters(H, 0), barrier(2, 0);
    a.x = xk.data();
    a.layers = pl.data();
    a.n_layers = c.layers;
    a.wdt = c.wdt;
    a.kv_dt = c.kvdt;
    a.dim = c.dim;
    a.hidden = c.hidden;
    a.n_heads = H;
    a.n_kv_heads = nkv;
    a.head_dim = D;
    a.rot_dim = c.rot_dim;
    a.theta = theta;
    a.eps = eps;
    a.scale = 1.0f / std::sqrt((float)D);
    a.pos = &pos;
    a.slot = &slot;
    a.seq_len = &L;
    a.block_table = lay.tables.data();
    a.block_size = c.block_size;
    a.q = wq_.data();
    a.k = wk_.data();
    a.v = wv_.data();
    a.att = watt.data();
    a.h = wh.data();
    a.partials = partials.data();
    a.counters = counters.data();
    a.barrier = barrier.data();
    if (c.wdt == DType::BF16)
      run_emulated<DType::BF16>(a);
    else
      run_emulated<DType::F16>(a);

    std::printf("%s: %d partition(s) of %d keys, grid %d, warps a row %d/%d/%d/%d\n", c.name, splits, chunk,
                a.plan.grid, a.plan.wpr[0], a.plan.wpr[1], a.plan.wpr[2], a.plan.wpr[3]);
    if (which == 0 || which == 2) QVERIFY2(splits > 1, "the case meant to split did not");
    if (which == 3) QVERIFY(splits == 2 && chunk <= cuda::kPersistentMaxChunk);
    // The residual stream after every layer.
    double worst = 0.0;
    for (int i = 0; i < c.dim; ++i) {
      const double e = std::fabs(xk[i] - x[i]) / (1e-3 + std::fabs(x[i]));
      worst = std::max(worst, e);
      if (!(e < 2e-3))
        QFAIL(qPrintable(QString("%1: x[%2] = %3, reference %4").arg(c.name).arg(i).arg(xk[i]).arg(x[i])));
    }
    // The new token's K and V in every layer's cache (the rest untouched).
    for (int i = 0; i < c.layers; ++i)
      for (int hh = 0; hh < nkv; ++hh)
        for (int d = 0; d < D; ++d)
          for (int s = 0; s < nslots; ++s)
            for (int kvv = 0; kvv < 2; ++kvv) {
              const float got =
                  ref::kv_load(kvv ? layers[i].v.view(nkv, D) : layers[i].k.view(nkv, D), s, hh, d);
              const float want =
                  ref::kv_load(kvv ? ref_layers[i].v.view(nkv, D) : ref_layers[i].k.view(nkv, D), s, hh, d);
              if (std::isnan(want)) {
                QVERIFY2(std::isnan(got), "a slot outside the context was written");
                continue;
              }
              if (!(std::fabs(got - want) <= 5e-3f * (1.0f + std::fabs(want))))
                QFAIL(qPrintable(QString("%1: layer %2 %3 cache, slot %4 head %5 dim %6: %7, reference %8")
                                     .arg(c.name)
                                     .arg(i)
                                     .arg(kvv ? "V" : "K")
                                     .arg(s)
                                     .arg(hh)
                                     .arg(d)
                                     .arg(got)
                                     .arg(want)));
            }
    // Every counter back at zero for the next launch; the barrier words untouched (the GPU's own).
    for (int hh = 0; hh < H; ++hh) QCOMPARE(counters[hh], 0u);
    std::printf("%s: worst relative error of x %.2e\n", c.name, worst);
  }

  // The planner: warps a row that fill the grid's rounds, partitions within limits.
  void plan() {
    // The 1.1B shape on an H100 (132 multiprocessors, 2 blocks each).
    const cuda::PersistentPlan p = cuda::plan_persistent_decode(2048, 5632, 32, 4, 64, 2048, 132, 2);
    QCOMPARE(p.grid, 264);
    for (int i = 0; i < 4; ++i) QVERIFY(p.wpr[i] >= 1 && p.wpr[i] <= 8 && (p.wpr[i] & (p.wpr[i] - 1)) == 0);
    // q/k/v: 2560 rows; 1 warp a row makes 320 groups of 8 (2 rounds, 61% full): more warps a row.
    QVERIFY(p.wpr[0] > 1);
    auto fill = [&](int rows, int wpr) {
      const int groups = (rows + 8 / wpr - 1) / (8 / wpr);
      const int rounds = (groups + p.grid - 1) / p.grid;
      return (double)groups / (rounds * p.grid);
    };
    QVERIFY(fill(2560, p.wpr[0]) >= 0.9);
    QVERIFY(fill(2048, p.wpr[1]) >= 0.9);
    QVERIFY(fill(5632, p.wpr[2]) >= 0.9);
    QVERIFY(fill(2048, p.wpr[3]) >= 0.9);
    QCOMPARE(p.max_splits, 8);  // 264 blocks / 32 heads
    QVERIFY(p.smem_bytes >= 5632 * sizeof(float) && p.smem_bytes <= 48 * 1024);
    // A long context needs partitions of at most 1024 keys, however small the grid.
    QCOMPARE(cuda::plan_persistent_decode(2048, 5632, 32, 4, 64, 8192, 4, 1).max_splits, 8);
    QCOMPARE(cuda::plan_persistent_decode(2048, 5632, 32, 4, 64, 8193, 4, 1).max_splits, 9);
    // Short rows: never more warps than a row has 16-byte loads for every lane.
    QCOMPARE(cuda::persistent_warps_per_row(1000, 8, 100), 1);
    QCOMPARE(cuda::persistent_warps_per_row(800, 256, 100), 1);   // 100 groups: one full round
    QCOMPARE(cuda::persistent_warps_per_row(1000, 256, 100), 4);  // 125 groups at 1 (62%), 500 at 4 (100%)
    QCOMPARE(cuda::persistent_warps_per_row(1000, 64, 100), 2);   // 8 warps would leave lanes without a load
  }

  // The grid barrier's protocol (its arithmetic is the kernel's own; the
  // word an atomic): std::threads as blocks, each counting itself into the
  // round before the barrier and checking after it that every block has,
  // over many rounds and two launches' worth of the same word (which is
  // never reset). A block that left early would see a short count.
  void gridBarrierProtocol() {
    for (uint32_t n : {1u, 2u, 7u, 33u}) {
      std::atomic<uint32_t> word{0};
      constexpr int kRounds = 300;
      std::vector<std::atomic<int>> arrived(2 * kRounds);
      std::atomic<int> early{0};
      for (int launch = 0; launch < 2; ++launch) {
        std::vector<std::thread> blocks;
        for (uint32_t blk = 0; blk < n; ++blk)
          blocks.emplace_back([&, blk] {
            for (int r = 0; r < kRounds; ++r) {
              const int round = launch * kRounds + r;
              arrived[round].fetch_add(1);
              const uint32_t old = word.fetch_add(persist::barrier_add((int)blk, n));
              while (!persist::barrier_open(old, word.load())) std::this_thread::yield();
              if (arrived[round].load() != (int)n) early.fetch_add(1);
            }
          });
        for (auto& t : blocks) t.join();
      }
      QCOMPARE(early.load(), 0);
      QCOMPARE(word.load() & 0x7fffffffu, 0u);  // every barrier left the low bits as they were
    }
  }

  void unsupported() {
    QVERIFY(cuda::persistent_decode_unsupported(DType::I8, DType::F16, 64, 96, 4, 2, 16, 16).find("I8") !=
            std::string::npos);
    QVERIFY(cuda::persistent_decode_unsupported(DType::F16, DType::F8_E4M3, 64, 96, 4, 2, 16, 16)
                .find("KV cache") != std::string::npos);
    QVERIFY(cuda::persistent_decode_unsupported(DType::F16, DType::F16, 64, 172, 8, 4, 8, 8).find("172") !=
            std::string::npos);  // stories260K's FFN
    QVERIFY(!cuda::persistent_decode_unsupported(DType::F16, DType::F16, 64, 96, 4, 2, 512, 16).empty());
    QVERIFY(cuda::persistent_decode_unsupported(DType::F16, DType::F16, 2048, 5632, 32, 4, 64, 64).empty());
  }
};

QTEST_APPLESS_MAIN(TestCudaDecodePersistentEmulated)
#include "test_cuda_decode_persistent_emulated.moc"
