// The CUDA register-tiled prefill attention block
// (kernels/cuda/prefill_tiles.cuh) run on the CPU: the same source the GPU
// kernel instantiates, with a thread per CUDA thread, a barrier for
// __syncthreads and an exchange through memory for the warp shuffles.
// Against ref::paged_attention on prompts that span several 64-row query
// tiles and 64-key tiles, after cached context, with GQA and scaled caches,
// so the tiling, masking and online softmax are tested where there is no
// GPU (the GPU suite checks the same kernel on a device).
#include <QtTest/QtTest>
#include <barrier>
#include <cmath>
#include <numeric>
#include <random>
#include <thread>
#include <vector>

#include "kernels/cuda/prefill_tiles.cuh"
#include "kernels/reference/attention.h"
#include "kernels/support/emulated_block.h"
#include "kernels/support/paged_layout.h"

using namespace brisk;
namespace tiles = brisk::cuda::tiles;

namespace {

// What one emulated block's threads share: its barriers and shuffle slots,
// the key table and the dynamic shared memory.
struct EmulatedBlock {
  testing::EmulatedWarps<tiles::kThreads> warps;
  tiles::TileKeys keys;
  std::vector<tiles::vec4> smem;
  // Shared memory starts as garbage on the GPU: NaN and wild slots here, so a read before a write shows.
  explicit EmulatedBlock(int D) : smem((tiles::smem_floats(D) + 3) / 4, tiles::vec4{NAN, NAN, NAN, NAN}) {
    for (int i = 0; i < tiles::kK; ++i) {
      keys.slot[i] = -7777777;
      keys.kscale[i] = keys.vscale[i] = NAN;
    }
  }
};

// The Block interface of prefill_tile_block for thread `t` of an emulated block.
struct EmulatedThread {
  int t;
  EmulatedBlock* blk;
  int tid() const { return t; }
  void sync() const { blk->warps.sync(); }
  float shfl_xor(float v, int o) const { return blk->warps.shfl_xor(t, v, o); }
};

// F32 caches [slot][kv_head][D], optionally stored as codes with a scale per (slot, kv_head).
struct HostKv {
  const float *k, *v, *k_scales, *v_scales;
  int n_kv_heads, head_dim;
  float value(bool is_v, int64_t slot, int kvh, int d) const {
    return (is_v ? v : k)[(slot * n_kv_heads + kvh) * head_dim + d];
  }
  float scale(bool is_v, int64_t slot, int kvh) const {
    const float* s = is_v ? v_scales : k_scales;
    return s ? s[slot * n_kv_heads + kvh] : 1.0f;
  }
};

template <int J>
void run_blocks(const HostKv& kv, float* out, const float* q, const cuda::DevicePagedArgs& a) {
  const int query_tiles = (a.max_query_len + tiles::kQ - 1) / tiles::kQ;
  for (int s = 0; s < a.num_seqs; ++s)
    for (int h = 0; h < a.n_heads; ++h)
      for (int qt = 0; qt < query_tiles; ++qt) {
        EmulatedBlock blk(J * 64);
        std::vector<std::thread> threads;
        for (int t = 0; t < tiles::kThreads; ++t)
          threads.emplace_back([&, t] {
            EmulatedThread b{t, &blk};
            tiles::prefill_tile_block<J>(b, kv, out, q, a, s, h, qt,
                                         reinterpret_cast<float*>(blk.smem.data()), blk.keys);
          });
        for (std::thread& th : threads) th.join();
      }
}

struct Case {
  const char* name;
  int n_heads, n_kv_heads, head_dim, block_size;
  std::vector<int> q_lens, ctx;  // per sequence: rows this step, context including them
  bool scaled;
};

}  // namespace

class TestCudaPrefillEmulated : public QObject {
  Q_OBJECT
 private slots:
  void matchesReference_data() {
    QTest::addColumn<int>("which");
    QTest::newRow("D64 GQA, three query tiles after 50 cached, a decode row") << 0;
    QTest::newRow("D64 scaled cache") << 1;
    QTest::newRow("D128, block 32, 64- and 65-row prompts") << 2;
  }
  void matchesReference() {
    QFETCH(int, which);
    // clang-format off
    const Case cases[] = {
        {"d64", 4, 2, 64, 16, {150, 70, 1, 2}, {200, 70, 40, 2}, false},
        {"d64 scaled", 4, 2, 64, 16, {150, 70, 1, 2}, {200, 70, 40, 2}, true},
        {"d128", 2, 1, 128, 32, {130, 64, 65}, {300, 64, 65}, false},
    };
    // clang-format on
    const Case& c = cases[which];
    std::mt19937 rng(11 + which);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f), us(0.5f, 2.0f);
    const int S = (int)c.q_lens.size(), D = c.head_dim, nkv = c.n_kv_heads;
    const testing::PagedLayout lay = testing::make_paged_layout(c.q_lens, c.ctx, c.block_size, 3, rng);
    const std::vector<int32_t>&qs = lay.query_start, &lens = lay.seq_lens, &tables = lay.tables;
    const size_t nslots = lay.num_slots(), row = (size_t)nkv * D;
    std::vector<float> k(nslots * row), v(nslots * row);
    for (float& f : k) f = u(rng);
    for (float& f : v) f = u(rng);
    // A scaled cache holds value / scale; the block multiplies the scale back.
    std::vector<float> kc = k, vc = v, ksc, vsc;
    if (c.scaled) {
      ksc.resize(nslots * nkv);
      vsc.resize(nslots * nkv);
      for (float& f : ksc) f = us(rng);
      for (float& f : vsc) f = us(rng);
      for (size_t i = 0; i < k.size(); ++i) {
        kc[i] = k[i] / ksc[i / D];
        vc[i] = v[i] / vsc[i / D];
        k[i] = kc[i] * ksc[i / D];  // the reference sees exactly what the block reconstructs
        v[i] = vc[i] * vsc[i / D];
      }
    }
    const int rows = qs[S];
    std::vector<float> q((size_t)rows * c.n_heads * D);
    for (float& f : q) f = u(rng) * 3.0f;

    const PagedAttentionArgs ra = lay.reference_args(c.n_heads, nkv, D);
    const KvCacheView kview{reinterpret_cast<uint8_t*>(k.data()), nullptr, DType::F32, nkv, D},
        vview{reinterpret_cast<uint8_t*>(v.data()), nullptr, DType::F32, nkv, D};
    std::vector<float> want((size_t)rows * c.n_heads * D);
    ref::paged_attention(want.data(), q.data(), kview, vview, ra);

    cuda::DevicePagedArgs a;
    a.num_seqs = S;
    a.num_query_rows = rows;
    a.max_query_len = lay.max_query_len;
    a.query_start = qs.data();
    a.seq_lens = lens.data();
    a.block_tables = tables.data();
    a.max_blocks_per_seq = lay.max_blocks;
    a.block_size = c.block_size;
    a.n_heads = c.n_heads;
    a.n_kv_heads = nkv;
    a.head_dim = D;
    a.scale = ra.scale;
    // A prefill row left unwritten fails; a write past the end lands in the guard.
    const size_t guard = 256;
    std::vector<float> got(want.size() + guard, NAN);
    const HostKv kv{kc.data(), vc.data(), c.scaled ? ksc.data() : nullptr, c.scaled ? vsc.data() : nullptr,
                    nkv,       D};
    if (D == 64)
      run_blocks<1>(kv, got.data(), q.data(), a);
    else
      run_blocks<2>(kv, got.data(), q.data(), a);

    // Prefill rows (two or more query rows) only: decode rows are the decode kernel's.
    int checked = 0;
    for (int s = 0; s < S; ++s) {
      if (c.q_lens[s] < 2) continue;
      for (int r = qs[s]; r < qs[s + 1]; ++r)
        for (int i = 0; i < c.n_heads * D; ++i) {
          const size_t at = (size_t)r * c.n_heads * D + i;
          const float g = got[at], w = want[at];
          if (!(std::fabs(g - w) <= 1e-4f + 1e-4f * std::fabs(w)))
            QFAIL(qPrintable(QString("%1: sequence %2, row %3, head %4, dim %5: %6, reference %7")
                                 .arg(c.name)
                                 .arg(s)
                                 .arg(r - qs[s])
                                 .arg(i / D)
                                 .arg(i % D)
                                 .arg(g)
                                 .arg(w)));
          ++checked;
        }
    }
    QVERIFY(checked > 0);
    // Decode rows, and the guard past the end, are left as they were.
    for (int s = 0; s < S; ++s)
      if (c.q_lens[s] == 1)
        for (int i = 0; i < c.n_heads * D; ++i) QVERIFY(std::isnan(got[(size_t)qs[s] * c.n_heads * D + i]));
    for (size_t i = want.size(); i < got.size(); ++i) QVERIFY(std::isnan(got[i]));
  }
};

QTEST_APPLESS_MAIN(TestCudaPrefillEmulated)
#include "test_cuda_prefill_emulated.moc"
