// The KV cache in F32/F16/BF16/I8/F8_E4M3: cpu::kv_write and
// cpu::paged_attention against their ref:: oracles on every ISA path this CPU
// has (scalar, AVX2, AVX-512) and pools of 1, 2 and 3 threads, plus the
// quantization error each cache type adds to attention.
//
// Tolerances:
//  - kv_write: the CPU writes exactly the reference's bytes and scales (both
//    round to nearest even from the same F32 inputs), so they compare equal.
//  - paged_attention, cpu vs ref: both read the same cache and decode it to the
//    same F32 values, so they differ only by F32 (vs double) rounding of the
//    dot products and softmax: |cpu - ref| <= 1e-4 * (|ref| + rms(ref)) per
//    element, for every dtype.
//  - quantization, ref over the cache type vs ref over an F32 cache of the
//    same rows (uniform(-1, 1) queries, keys and values, so outputs lie in
//    [-1, 1]): the largest absolute error of an output stays below
//    quant_bound() (F16 1e-3, BF16 6e-3, I8 1.2e-2, F8_E4M3 8e-2; observed
//    2.4e-4, 2.0e-3, 4.2e-3, 3.8e-2, printed by the test).
#include <QtTest/QtTest>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/thread_pool.h"
#include "kernels/dtype.h"
#include "kernels/reference/attention.h"

using namespace brisk;

namespace {

const DType kTypes[] = {DType::F32, DType::F16, DType::BF16, DType::I8, DType::F8_E4M3};

double quant_bound(DType t) {
  switch (t) {
    case DType::F32:
      return 1e-6;
    case DType::F16:
      return 3e-3;
    case DType::BF16:
      return 2.5e-2;
    case DType::I8:
      return 2.5e-2;
    default:
      return 1e-1;  // F8_E4M3: 3 mantissa bits
  }
}

std::vector<float> random_vec(std::mt19937& rng, size_t n, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// The ISA paths this CPU can run, lowest first.
std::vector<cpu::Isa> isas() {
  std::vector<cpu::Isa> r;
  for (cpu::Isa i : {cpu::Isa::Scalar, cpu::Isa::Avx2, cpu::Isa::Avx512})
    if ((int)i <= (int)cpu::detected_isa()) r.push_back(i);
  return r;
}

// Restores the active ISA when a test returns (or fails).
struct IsaGuard {
  cpu::Isa saved = cpu::active_isa();
  ~IsaGuard() { cpu::set_isa(saved); }
};

// A cache of num_slots slots: data and scales, with a view onto them.
struct Cache {
  std::vector<uint8_t> data;
  std::vector<float> scales;
  KvCacheView view;
  Cache(DType t, int64_t num_slots, int n_kv_heads, int head_dim)
      : data(num_slots * row_bytes(t, (int64_t)n_kv_heads * head_dim)), scales(num_slots * n_kv_heads) {
    // Garbage, not zeros, so a slot the kernel forgets to write shows.
    for (size_t i = 0; i < data.size(); ++i) data[i] = (uint8_t)(i * 37 + 11);
    view = KvCacheView{data.data(), scales.data(), t, n_kv_heads, head_dim};
  }
};

struct Mismatch {
  bool ok = true;
  QString what;
};

Mismatch compare(const float* got, const float* want, size_t n, double rtol) {
  double ss = 0.0;
  for (size_t i = 0; i < n; ++i) ss += (double)want[i] * want[i];
  const double rms = std::sqrt(ss / std::max<size_t>(1, n));
  for (size_t i = 0; i < n; ++i) {
    const double err = std::fabs((double)got[i] - want[i]);
    if (!(err <= rtol * (std::fabs(want[i]) + rms)))
      return {false, QString("element %1: got %2 want %3 (err %4, rms %5, rtol %6)")
                         .arg(i)
                         .arg(got[i], 0, 'g', 9)
                         .arg(want[i], 0, 'g', 9)
                         .arg(err, 0, 'g', 3)
                         .arg(rms, 0, 'g', 3)
                         .arg(rtol)};
  }
  return {};
}

double max_abs_error(const std::vector<float>& got, const std::vector<float>& want) {
  double worst = 0.0;
  for (size_t i = 0; i < want.size(); ++i) worst = std::max(worst, std::fabs((double)got[i] - want[i]));
  return worst;
}

#define EXPECT_CLOSE(got, want, n, rtol, context)                             \
  do {                                                                        \
    const Mismatch m_ = compare((got), (want), (n), (rtol));                  \
    QVERIFY2(m_.ok, qPrintable(QString("%1: %2").arg(context).arg(m_.what))); \
  } while (0)

struct AttentionCase {
  int n_heads, n_kv_heads, head_dim, block_size;
  std::vector<std::pair<int, int>> seqs;  // (seq_len after this step, q_len)
};

// A packed batch with shuffled, non-contiguous block tables and the source
// rows of every slot (what kv_write was given).
struct Batch {
  std::vector<int32_t> query_start{0}, seq_lens, tables;
  int max_blocks = 0, num_slots = 0, rows = 0;
  std::vector<float> k_rows, v_rows, q;
  std::vector<int32_t> all_slots;
  PagedAttentionArgs args;

  Batch(std::mt19937& rng, const AttentionCase& c) {
    int total_blocks = 0;
    for (auto [len, q_len] : c.seqs) {
      query_start.push_back(query_start.back() + q_len);
      seq_lens.push_back(len);
      const int blocks = (len + c.block_size - 1) / c.block_size;
      max_blocks = std::max(max_blocks, blocks);
      total_blocks += blocks;
    }
    max_blocks += 1;  // a spare column, as a real table has
    const int num_blocks = total_blocks + 3;
    std::vector<int32_t> ids(num_blocks);
    std::iota(ids.begin(), ids.end(), 0);
    std::shuffle(ids.begin(), ids.end(), rng);
    // Unused entries point far outside the cache, so reading one would show.
    tables.assign(c.seqs.size() * max_blocks, 1 << 20);
    int next = 0;
    for (size_t s = 0; s < c.seqs.size(); ++s) {
      const int blocks = (c.seqs[s].first + c.block_size - 1) / c.block_size;
      for (int b = 0; b < blocks; ++b) tables[s * max_blocks + b] = ids[next++];
    }
    num_slots = num_blocks * c.block_size;
    const int kv_width = c.n_kv_heads * c.head_dim;
    k_rows = random_vec(rng, (size_t)num_slots * kv_width);
    v_rows = random_vec(rng, (size_t)num_slots * kv_width);
    all_slots.resize(num_slots);
    std::iota(all_slots.begin(), all_slots.end(), 0);
    rows = query_start.back();
    q = random_vec(rng, (size_t)rows * c.n_heads * c.head_dim);
    args.num_seqs = (int)c.seqs.size();
    args.query_start = query_start.data();
    args.seq_lens = seq_lens.data();
    args.block_tables = tables.data();
    args.max_blocks_per_seq = max_blocks;
    args.block_size = c.block_size;
    args.n_heads = c.n_heads;
    args.n_kv_heads = c.n_kv_heads;
    args.head_dim = c.head_dim;
    args.scale = 1.0f / std::sqrt((float)c.head_dim);
  }
};

QString describe(const AttentionCase& c, DType t) {
  QString seqs;
  for (auto [len, q_len] : c.seqs) seqs += QString(" %1/%2").arg(len).arg(q_len);
  return QString("%1 heads %2/%3 head_dim %4 block_size %5 (len/q_len:%6)")
      .arg(dtype_name(t))
      .arg(c.n_heads)
      .arg(c.n_kv_heads)
      .arg(c.head_dim)
      .arg(c.block_size)
      .arg(seqs);
}

}  // namespace

class TestKvCacheDtypes : public QObject {
  Q_OBJECT

  std::vector<std::unique_ptr<ThreadPool>> pools_;

  // cpu::kv_write writes the reference's bytes and scales on every path.
  void check_kv_write(const std::vector<float>& k, const std::vector<float>& v, int T, int n_kv_heads,
                      int head_dim, std::mt19937& rng, const QString& what) {
    IsaGuard guard;
    const int num_slots = T + 7;
    std::vector<int32_t> slot_ids(num_slots);
    std::iota(slot_ids.begin(), slot_ids.end(), 0);
    std::shuffle(slot_ids.begin(), slot_ids.end(), rng);
    slot_ids.resize(T);
    for (DType t : kTypes) {
      Cache want_k(t, num_slots, n_kv_heads, head_dim), want_v(t, num_slots, n_kv_heads, head_dim);
      ref::kv_write(want_k.view, want_v.view, k.data(), v.data(), slot_ids.data(), T);
      for (cpu::Isa isa : isas()) {
        cpu::set_isa(isa);
        for (auto& pool : pools_) {
          Cache got_k(t, num_slots, n_kv_heads, head_dim), got_v(t, num_slots, n_kv_heads, head_dim);
          cpu::kv_write(*pool, got_k.view, got_v.view, k.data(), v.data(), slot_ids.data(), T);
          const QString ctx = QString("%1 %2 head_dim %3 %4 %5 threads")
                                  .arg(what)
                                  .arg(dtype_name(t))
                                  .arg(head_dim)
                                  .arg(cpu::isa_name(isa))
                                  .arg(pool->size());
          for (size_t i = 0; i < want_k.data.size(); ++i)
            QVERIFY2(got_k.data[i] == want_k.data[i] && got_v.data[i] == want_v.data[i],
                     qPrintable(QString("%1: byte %2 differs (k %3/%4, v %5/%6)")
                                    .arg(ctx)
                                    .arg(i)
                                    .arg(got_k.data[i])
                                    .arg(want_k.data[i])
                                    .arg(got_v.data[i])
                                    .arg(want_v.data[i])));
          if (is_scaled(t))
            for (int s : slot_ids)
              for (int h = 0; h < n_kv_heads; ++h) {
                const size_t i = (size_t)s * n_kv_heads + h;
                QVERIFY2(got_k.scales[i] == want_k.scales[i] && got_v.scales[i] == want_v.scales[i],
                         qPrintable(ctx + QString(": scale of slot %1 head %2").arg(s).arg(h)));
              }
        }
      }
    }
  }

  void check_attention(std::mt19937& rng, const AttentionCase& c) {
    IsaGuard guard;
    Batch b(rng, c);
    const size_t out_n = (size_t)b.rows * c.n_heads * c.head_dim;
    std::vector<float> exact(out_n);
    for (DType t : kTypes) {
      Cache k(t, b.num_slots, c.n_kv_heads, c.head_dim), v(t, b.num_slots, c.n_kv_heads, c.head_dim);
      ref::kv_write(k.view, v.view, b.k_rows.data(), b.v_rows.data(), b.all_slots.data(), b.num_slots);
      std::vector<float> want(out_n), got(out_n);
      ref::paged_attention(want.data(), b.q.data(), k.view, v.view, b.args);
      if (t == DType::F32) exact = want;
      const double qerr = max_abs_error(want, exact);
      QVERIFY2(qerr <= quant_bound(t), qPrintable(QString("%1: quantization error %2 (bound %3)")
                                                      .arg(describe(c, t))
                                                      .arg(qerr)
                                                      .arg(quant_bound(t))));
      worst_quant_error_[(int)t] = std::max(worst_quant_error_[(int)t], qerr);
      for (cpu::Isa isa : isas()) {
        cpu::set_isa(isa);
        for (auto& pool : pools_) {
          std::fill(got.begin(), got.end(), NAN);
          cpu::paged_attention(*pool, got.data(), b.q.data(), k.view, v.view, b.args);
          EXPECT_CLOSE(
              got.data(), want.data(), out_n, 1e-4,
              QString("%1, %2, %3 threads").arg(describe(c, t)).arg(cpu::isa_name(isa)).arg(pool->size()));
        }
      }
    }
  }

  double worst_quant_error_[8] = {};

 private slots:
  void initTestCase() {
    for (int n : {1, 2, 3}) pools_.push_back(std::make_unique<ThreadPool>(n));
    QString names;
    for (cpu::Isa i : isas()) names += QString(" ") + cpu::isa_name(i);
    qInfo("ISA paths tested:%s", qPrintable(names));
  }

  void slot_bytes_count_scales() {
    QCOMPARE(kv_slot_bytes(DType::F32, 4, 64), size_t(4 * 64 * 4));
    QCOMPARE(kv_slot_bytes(DType::F16, 4, 64), size_t(4 * 64 * 2));
    QCOMPARE(kv_slot_bytes(DType::BF16, 4, 64), size_t(4 * 64 * 2));
    QCOMPARE(kv_slot_bytes(DType::I8, 4, 64), size_t(4 * 64 + 4 * 4));
    QCOMPARE(kv_slot_bytes(DType::F8_E4M3, 4, 64), size_t(4 * 64 + 4 * 4));
    QVERIFY(!kv_dtype_supported(DType::Q8_0));
    QVERIFY(!kv_dtype_supported(DType::F8_E5M2));
  }

  void reference_codes() {
    // One head of 4 values: absmax 2 -> I8 scale 2/127, FP8 scale 2/448.
    const float row[4] = {2.0f, -1.0f, 0.5f, 0.0f};
    std::vector<int8_t> i8(4);
    std::vector<uint8_t> f8(4);
    float s_i8 = 0, s_f8 = 0;
    ref::kv_store_head(KvCacheView{i8.data(), &s_i8, DType::I8, 1, 4}, 0, 0, row);
    ref::kv_store_head(KvCacheView{f8.data(), &s_f8, DType::F8_E4M3, 1, 4}, 0, 0, row);
    QCOMPARE(s_i8, 2.0f / 127.0f);
    QCOMPARE(s_f8, 2.0f / 448.0f);
    // -1 / (2/127) = -63.5 -> -64 (ties to even); 0.5 -> 31.75 -> 32.
    QCOMPARE(std::vector<int>(i8.begin(), i8.end()), (std::vector<int>{127, -64, 32, 0}));
    QCOMPARE(fp8_e4m3_to_fp32(f8[0]), 448.0f);
    QCOMPARE(fp8_e4m3_to_fp32(f8[1]), -224.0f);
    QCOMPARE(fp8_e4m3_to_fp32(f8[2]), 112.0f);
    QCOMPARE(f8[3], uint8_t(0));
    QCOMPARE(ref::kv_load(KvCacheView{i8.data(), &s_i8, DType::I8, 1, 4}, 0, 0, 1), -64.0f * s_i8);
    // A zero row gets scale 0 and decodes to zeros.
    const float zero[4] = {};
    ref::kv_store_head(KvCacheView{i8.data(), &s_i8, DType::I8, 1, 4}, 0, 0, zero);
    QCOMPARE(s_i8, 0.0f);
    QCOMPARE(ref::kv_load(KvCacheView{i8.data(), &s_i8, DType::I8, 1, 4}, 0, 0, 2), 0.0f);
  }

  void kv_write_random_rows() {
    std::mt19937 rng(21);
    for (int head_dim : {8, 36, 64, 80})
      for (int n_kv_heads : {1, 4}) {
        const int T = 29;
        auto k = random_vec(rng, (size_t)T * n_kv_heads * head_dim);
        auto v = random_vec(rng, k.size());
        // One all-zero head (scale 0), and rows spanning many magnitudes so
        // the FP8 subnormal codes and the F16 subnormals are exercised.
        std::fill(k.begin() + head_dim, k.begin() + 2 * head_dim, 0.0f);
        std::uniform_real_distribution<float> e(-12.0f, 0.0f);
        for (size_t i = 3 * head_dim; i < 6 * (size_t)head_dim && i < k.size(); ++i)
          k[i] *= std::exp2(e(rng)), v[i] *= std::exp2(2 * e(rng));
        check_kv_write(k, v, T, n_kv_heads, head_dim, rng, "random rows");
      }
  }

  void kv_write_rounding_edges() {
    // Heads whose absmax is 127 (I8) or 448 (FP8) have scale exactly 1, so the
    // codes are the rounding of the values themselves: feed ties and their
    // neighbours for every code, and a sweep over F32 bit patterns.
    std::mt19937 rng(22);
    const int head_dim = 64;
    std::vector<float> vals;
    for (int c = 0; c < 0x7e; ++c) {
      const float lo = fp8_e4m3_to_fp32((uint8_t)c), hi = fp8_e4m3_to_fp32((uint8_t)(c + 1));
      const float mid = 0.5f * (lo + hi);
      for (float x : {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e9f), lo, hi}) {
        vals.push_back(x);
        vals.push_back(-x);
      }
    }
    for (uint32_t bits = 0x38000000; bits < 0x43e00000; bits += 0x1f3d3) {
      float f;
      std::memcpy(&f, &bits, 4);
      vals.push_back(f);
    }
    for (int i = -127; i < 127; ++i)
      for (float x : {i + 0.5f, std::nextafter(i + 0.5f, -1e9f), std::nextafter(i + 0.5f, 1e9f)})
        vals.push_back(x);
    // F16/BF16 ties come for free in the sweep above; FP8 wants absmax 448.
    for (float absmax : {448.0f, 127.0f}) {
      std::vector<float> rows;
      for (size_t i = 0; i < vals.size(); i += head_dim - 1) {
        rows.push_back(absmax);
        for (int d = 1; d < head_dim; ++d) {
          const float x = i + d - 1 < vals.size() ? vals[i + d - 1] : 1.0f;
          rows.push_back(std::clamp(x, -absmax, absmax));
        }
      }
      const int T = (int)(rows.size() / head_dim);
      check_kv_write(rows, rows, T, 1, head_dim, rng, QString("edges (absmax %1)").arg(absmax));
    }
  }

  void attention_matches_reference() {
    std::mt19937 rng(23);
    // GQA ratios 1/2/4/8, block sizes 8/16/32, head_dim 32/36/40/64/80;
    // decode rows (q_len 1) mixed with whole and chunked prefills, lengths
    // crossing cache blocks and the kernel's 64-key blocks.
    const std::vector<AttentionCase> cases = {
        {4, 4, 32, 8, {{1, 1}, {9, 9}, {17, 3}, {40, 1}}},
        {8, 4, 64, 16, {{33, 1}, {16, 16}, {70, 2}}},
        {8, 2, 80, 32, {{70, 5}, {1, 1}, {65, 1}}},
        {16, 2, 40, 16, {{100, 1}, {31, 31}}},
        {4, 1, 36, 8, {{41, 4}, {8, 1}}},
        {8, 1, 64, 32, {{200, 1}, {130, 7}}},
    };
    for (const auto& c : cases) check_attention(rng, c);
    QString worst;
    for (DType t : kTypes)
      worst += QString(" %1 %2").arg(dtype_name(t)).arg(worst_quant_error_[(int)t], 0, 'g', 3);
    qInfo("largest quantization error (absolute):%s", qPrintable(worst));
  }

  void mismatched_caches_are_rejected() {
    ThreadPool pool(1);
    float kd[8] = {}, vd[8] = {}, rows[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    const int32_t slot = 0;
    KvCacheView k{kd, nullptr, DType::F32, 1, 8}, v{vd, nullptr, DType::F16, 1, 8};
    QVERIFY_THROWS_EXCEPTION(std::invalid_argument, cpu::kv_write(pool, k, v, rows, rows, &slot, 1));
    v.dtype = DType::Q8_0;
    k.dtype = DType::Q8_0;
    QVERIFY_THROWS_EXCEPTION(std::invalid_argument, cpu::kv_write(pool, k, v, rows, rows, &slot, 1));
  }
};

QTEST_APPLESS_MAIN(TestKvCacheDtypes)
#include "test_kv_cache_dtypes.moc"
