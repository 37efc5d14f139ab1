// The fused non-GEMM ops (cpu::add_rmsnorm, cpu::rope_kv_write) against the
// unfused reference composition, and the element-wise ops on every ISA path
// this CPU has, with pools of 1, 2 and 3 threads.
//
// Tolerances:
//  - x after add_rmsnorm is a single F32 add: exact.
//  - y of add_rmsnorm, rmsnorm, rope'd q: F32 vs the double-accumulating
//    reference: |cpu - ref| <= 1e-5 * (|ref| + rms(ref)).
//  - silu_mul: 1e-5 likewise (F32 exp vs double exp); add: exact.
//  - rope_kv_write's cache: F32/F16/BF16 caches hold the rotated keys rounded
//    once, so decoded keys agree with the reference to 1e-5 plus one unit in
//    the last place of the type (2^-10 F16, 2^-7 BF16, relative); I8/F8_E4M3
//    keys may land one code apart where the rotation's F32 rounding straddles
//    a rounding boundary: within one code step (I8: scale; F8_E4M3: 2^-3
//    relative, or 2^-9 * scale near zero). Values are not rotated, so the V
//    cache is byte-identical.
//  - On the SIMD paths the fused ops are bit-identical to the unfused CPU ops
//    they replace (what keeps the model's F32 output unchanged).
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
#include "kernels/cpu/ops.h"
#include "kernels/cpu/thread_pool.h"
#include "kernels/dtype.h"
#include "kernels/reference/attention.h"
#include "kernels/reference/ops.h"

using namespace brisk;

namespace {

std::vector<float> random_vec(std::mt19937& rng, size_t n, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

std::vector<cpu::Isa> isas() {
  std::vector<cpu::Isa> r;
  for (cpu::Isa i : {cpu::Isa::Scalar, cpu::Isa::Avx2, cpu::Isa::Avx512})
    if ((int)i <= (int)cpu::detected_isa()) r.push_back(i);
  return r;
}

struct IsaGuard {
  cpu::Isa saved = cpu::active_isa();
  ~IsaGuard() { cpu::set_isa(saved); }
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

#define EXPECT_CLOSE(got, want, n, rtol, context)                             \
  do {                                                                        \
    const Mismatch m_ = compare((got), (want), (n), (rtol));                  \
    QVERIFY2(m_.ok, qPrintable(QString("%1: %2").arg(context).arg(m_.what))); \
  } while (0)

struct Cache {
  std::vector<uint8_t> data;
  std::vector<float> scales;
  KvCacheView view;
  Cache(DType t, int64_t num_slots, int n_kv_heads, int head_dim)
      : data(num_slots * row_bytes(t, (int64_t)n_kv_heads * head_dim)), scales(num_slots * n_kv_heads) {
    view = KvCacheView{data.data(), scales.data(), t, n_kv_heads, head_dim};
  }
};

// Largest difference allowed between two decodings of keys that were
// rotated with different F32 rounding (see the header).
double key_tolerance(const KvCacheView& c, int64_t slot, int head, float want) {
  const double a = std::fabs(want);
  switch (c.dtype) {
    case DType::F32:
      return 1e-5 * (a + 1.0);
    case DType::F16:
      return 1e-5 * (a + 1.0) + a * std::ldexp(1.0, -10);
    case DType::BF16:
      return 1e-5 * (a + 1.0) + a * std::ldexp(1.0, -7);
    case DType::I8:
      return 1.0001 * c.scales[slot * c.n_kv_heads + head];
    default: {
      const double s = c.scales[slot * c.n_kv_heads + head];
      return a * 0.125 + s * std::ldexp(1.0, -9) + 1e-6;
    }
  }
}

}  // namespace

class TestFusedOps : public QObject {
  Q_OBJECT

  std::vector<std::unique_ptr<ThreadPool>> pools_;

  QString where(cpu::Isa isa, const ThreadPool& p) const {
    return QString("%1, %2 threads").arg(cpu::isa_name(isa)).arg(p.size());
  }

 private slots:
  void initTestCase() {
    for (int n : {1, 2, 3}) pools_.push_back(std::make_unique<ThreadPool>(n));
  }

  void add_rmsnorm_matches_composition() {
    IsaGuard guard;
    std::mt19937 rng(31);
    for (int M : {1, 3, 7, 40})
      for (int D : {8, 13, 64, 96, 260}) {
        const auto x0 = random_vec(rng, (size_t)M * D), r = random_vec(rng, x0.size());
        const auto w = random_vec(rng, D, 0.5f, 1.5f);
        std::vector<float> want_x(x0.size()), want_y(x0.size());
        ref::add(want_x.data(), x0.data(), r.data(), (int64_t)M * D);
        ref::rmsnorm(want_y.data(), want_x.data(), w.data(), M, D, 1e-5f);
        for (cpu::Isa isa : isas()) {
          cpu::set_isa(isa);
          for (auto& pool : pools_) {
            std::vector<float> x = x0, y(x0.size(), NAN);
            cpu::add_rmsnorm(*pool, x.data(), r.data(), w.data(), y.data(), M, D, 1e-5f);
            const QString ctx = QString("add_rmsnorm M=%1 D=%2 %3").arg(M).arg(D).arg(where(isa, *pool));
            QVERIFY2(x == want_x, qPrintable(ctx + ": x"));
            EXPECT_CLOSE(y.data(), want_y.data(), y.size(), 1e-5, ctx);
            if (isa == cpu::Isa::Scalar) continue;
            // Bit-identical to the unfused SIMD ops.
            std::vector<float> ux = x0, uy(x0.size());
            cpu::add(*pool, ux.data(), ux.data(), r.data(), (int64_t)M * D);
            cpu::rmsnorm(*pool, uy.data(), ux.data(), w.data(), M, D, 1e-5f);
            QVERIFY2(uy == y, qPrintable(ctx + ": differs from add + rmsnorm"));
          }
        }
      }
  }

  void rope_kv_write_matches_composition() {
    IsaGuard guard;
    std::mt19937 rng(32);
    struct Shape {
      int n_heads, n_kv_heads, head_dim, rot_dim;
    };
    for (const Shape sh :
         {Shape{8, 8, 32, 32}, Shape{8, 2, 64, 64}, Shape{4, 1, 80, 40}, Shape{16, 2, 36, 36}})
      for (DType t : {DType::F32, DType::F16, DType::BF16, DType::I8, DType::F8_E4M3}) {
        const int T = 19, num_slots = 40;
        const int qw = sh.n_heads * sh.head_dim, kw = sh.n_kv_heads * sh.head_dim;
        const auto q0 = random_vec(rng, (size_t)T * qw);
        const auto k = random_vec(rng, (size_t)T * kw), v = random_vec(rng, (size_t)T * kw);
        std::vector<int32_t> pos(T), slot_ids(num_slots);
        for (int i = 0; i < T; ++i) pos[i] = 3 * i + (i % 2) * 997;  // small and large angles
        std::iota(slot_ids.begin(), slot_ids.end(), 0);
        std::shuffle(slot_ids.begin(), slot_ids.end(), rng);
        slot_ids.resize(T);
        // Unfused reference: rope q, rope a copy of k, write k and v.
        std::vector<float> want_q = q0, kr = k;
        ref::rope(want_q.data(), pos.data(), T, sh.n_heads, sh.head_dim, sh.rot_dim, 10000.0f);
        ref::rope(kr.data(), pos.data(), T, sh.n_kv_heads, sh.head_dim, sh.rot_dim, 10000.0f);
        Cache want_k(t, num_slots, sh.n_kv_heads, sh.head_dim),
            want_v(t, num_slots, sh.n_kv_heads, sh.head_dim);
        ref::kv_write(want_k.view, want_v.view, kr.data(), v.data(), slot_ids.data(), T);
        for (cpu::Isa isa : isas()) {
          cpu::set_isa(isa);
          for (auto& pool : pools_) {
            const QString ctx = QString("rope_kv_write %1 heads %2/%3 head_dim %4 rot %5 %6")
                                    .arg(dtype_name(t))
                                    .arg(sh.n_heads)
                                    .arg(sh.n_kv_heads)
                                    .arg(sh.head_dim)
                                    .arg(sh.rot_dim)
                                    .arg(where(isa, *pool));
            std::vector<float> q = q0;
            Cache got_k(t, num_slots, sh.n_kv_heads, sh.head_dim),
                got_v(t, num_slots, sh.n_kv_heads, sh.head_dim);
            const std::vector<float> k_before = k;
            cpu::rope_kv_write(*pool, q.data(), k.data(), v.data(), pos.data(), slot_ids.data(), T,
                               sh.n_heads, sh.rot_dim, 10000.0f, got_k.view, got_v.view);
            QVERIFY2(k == k_before, qPrintable(ctx + ": k was modified"));
            EXPECT_CLOSE(q.data(), want_q.data(), q.size(), 1e-5, ctx + " q");
            QVERIFY2(got_v.data == want_v.data && got_v.scales == want_v.scales,
                     qPrintable(ctx + ": V cache"));
            for (int i = 0; i < T; ++i)
              for (int h = 0; h < sh.n_kv_heads; ++h)
                for (int d = 0; d < sh.head_dim; ++d) {
                  const float g = ref::kv_load(got_k.view, slot_ids[i], h, d);
                  const float w = ref::kv_load(want_k.view, slot_ids[i], h, d);
                  const double tol = key_tolerance(want_k.view, slot_ids[i], h, w);
                  QVERIFY2(std::fabs((double)g - w) <= tol,
                           qPrintable(QString("%1: key of token %2 head %3 dim %4: "
                                              "got %5 want %6 (tolerance %7)")
                                          .arg(ctx)
                                          .arg(i)
                                          .arg(h)
                                          .arg(d)
                                          .arg(g)
                                          .arg(w)
                                          .arg(tol)));
                }
            if (isa == cpu::Isa::Scalar) continue;
            // Bit-identical to cpu::rope on q and k followed by cpu::kv_write.
            std::vector<float> uq = q0, uk = k;
            cpu::rope(*pool, uq.data(), pos.data(), T, sh.n_heads, sh.head_dim, sh.rot_dim, 10000.0f);
            cpu::rope(*pool, uk.data(), pos.data(), T, sh.n_kv_heads, sh.head_dim, sh.rot_dim, 10000.0f);
            Cache uk_c(t, num_slots, sh.n_kv_heads, sh.head_dim),
                uv_c(t, num_slots, sh.n_kv_heads, sh.head_dim);
            cpu::kv_write(*pool, uk_c.view, uv_c.view, uk.data(), v.data(), slot_ids.data(), T);
            QVERIFY2(uq == q, qPrintable(ctx + ": q differs from cpu::rope"));
            QVERIFY2(uk_c.data == got_k.data && uk_c.scales == got_k.scales,
                     qPrintable(ctx + ": K cache differs from cpu::rope + cpu::kv_write"));
          }
        }
      }
  }

  void elementwise_ops_on_every_isa() {
    IsaGuard guard;
    std::mt19937 rng(33);
    const int M = 9, D = 72;
    const auto x = random_vec(rng, (size_t)M * D), b = random_vec(rng, x.size());
    const auto w = random_vec(rng, D, 0.5f, 1.5f);
    const auto gate = random_vec(rng, x.size(), -6.0f, 6.0f);
    std::vector<int32_t> pos(M);
    for (int i = 0; i < M; ++i) pos[i] = 17 * i;
    std::vector<float> want_norm(x.size()), want_silu(x.size()), want_add(x.size()), want_rope = x;
    ref::rmsnorm(want_norm.data(), x.data(), w.data(), M, D, 1e-6f);
    ref::silu_mul(want_silu.data(), gate.data(), b.data(), (int64_t)x.size());
    ref::add(want_add.data(), x.data(), b.data(), (int64_t)x.size());
    ref::rope(want_rope.data(), pos.data(), M, 3, 24, 16, 500000.0f);
    for (cpu::Isa isa : isas()) {
      cpu::set_isa(isa);
      for (auto& pool : pools_) {
        const QString ctx = where(isa, *pool);
        std::vector<float> y(x.size(), NAN);
        cpu::rmsnorm(*pool, y.data(), x.data(), w.data(), M, D, 1e-6f);
        EXPECT_CLOSE(y.data(), want_norm.data(), y.size(), 1e-5, "rmsnorm " + ctx);
        cpu::silu_mul(*pool, y.data(), gate.data(), b.data(), (int64_t)x.size());
        EXPECT_CLOSE(y.data(), want_silu.data(), y.size(), 1e-5, "silu_mul " + ctx);
        cpu::add(*pool, y.data(), x.data(), b.data(), (int64_t)x.size());
        QVERIFY2(y == want_add, qPrintable("add " + ctx));
        y = x;
        cpu::rope(*pool, y.data(), pos.data(), M, 3, 24, 16, 500000.0f);
        EXPECT_CLOSE(y.data(), want_rope.data(), y.size(), 1e-5, "rope " + ctx);
      }
    }
  }
};

QTEST_APPLESS_MAIN(TestFusedOps)
#include "test_fused_ops.moc"
