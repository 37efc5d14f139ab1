// cpu::matmul / cpu::embed / cpu::matmul_w8a8 for every weight dtype against
// the reference, on every ISA this machine has (set_isa lowers it: the
// portable path, AVX2, AVX-512), with pools of 1, 2 and 3 threads; batch
// invariance per ISA; quantize_rows / dequantize_rows; the FP8 codecs.
//
// Tolerances: float kernels may differ from the double-accumulating reference
// only by F32 rounding: |cpu - ref| <= 1e-4 * (|ref| + rms), rms being the root
// mean square of the whole reference output (elements that cancel to near
// zero are judged on the output's scale). The portable path is the reference
// split over threads, and W8A8 is integer arithmetic, so those must match the
// reference bit for bit.
#include <QtTest/QtTest>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "kernels/cpu/isa.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/thread_pool.h"
#include "kernels/dtype.h"
#include "kernels/quantize.h"
#include "kernels/reference/ops.h"

using namespace brisk;
using cpu::Isa;

namespace {

constexpr DType kAllWeightTypes[] = {DType::F32, DType::F16,     DType::BF16,   DType::Q8_0,
                                     DType::I8,  DType::F8_E4M3, DType::F8_E5M2};
constexpr DType kScaledTypes[] = {DType::I8, DType::F8_E4M3, DType::F8_E5M2};

std::vector<float> random_vec(std::mt19937& rng, size_t n, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// A weight matrix as the engine holds it: bytes of type t plus one scale per row.
struct Weights {
  std::vector<uint8_t> bytes;
  std::vector<float> scales;
};

Weights make_weights(const std::vector<float>& wf, DType t, int N, int K) {
  Weights w;
  w.bytes.resize(row_bytes(t, K) * N);
  w.scales.resize(N);
  quantize_rows(w.bytes.data(), w.scales.data(), wf.data(), t, N, K);
  return w;
}

// Each row gets its own magnitude, so wrong row scales cannot go unnoticed.
Weights random_weights(std::mt19937& rng, DType t, int N, int K) {
  auto wf = random_vec(rng, (size_t)N * K);
  for (int n = 0; n < N; ++n)
    for (int k = 0; k < K; ++k) wf[(size_t)n * K + k] *= 0.25f + (float)(n % 7);
  return make_weights(wf, t, N, K);
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, 4) == 0 || (std::isnan(a) && std::isnan(b)); }

QString first_difference(const float* got, const float* want, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (!same_bits(got[i], want[i]))
      return QString("element %1: %2 vs %3").arg(i).arg(got[i], 0, 'g', 9).arg(want[i], 0, 'g', 9);
  return {};
}

QString close_failure(const float* got, const float* want, size_t n, double rtol) {
  double ss = 0.0;
  for (size_t i = 0; i < n; ++i) ss += (double)want[i] * want[i];
  const double rms = std::sqrt(ss / std::max<size_t>(1, n));
  for (size_t i = 0; i < n; ++i) {
    const double err = std::fabs((double)got[i] - want[i]);
    if (!(err <= rtol * (std::fabs(want[i]) + rms)))
      return QString("element %1: cpu %2 ref %3 (err %4, rms %5)")
          .arg(i)
          .arg(got[i], 0, 'g', 9)
          .arg(want[i], 0, 'g', 9)
          .arg(err, 0, 'g', 3)
          .arg(rms, 0, 'g', 3);
  }
  return {};
}

// The ISAs this CPU can run, lowest first.
std::vector<Isa> available_isas() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512})
    if ((int)isa <= (int)cpu::detected_isa()) out.push_back(isa);
  return out;
}

// Round trip bounds of quantize_rows -> dequantize_rows for scaled dtypes:
// half a unit in the last place of the format at the value's binade.
double fp8_error_bound(DType t, float x, float scale) {
  const int mant = t == DType::F8_E4M3 ? 3 : 2;
  const double min_normal = t == DType::F8_E4M3 ? std::ldexp(1.0, -6) : std::ldexp(1.0, -14);
  const double v = std::fabs((double)x / scale);
  // Below the smallest normal the spacing is min_normal * 2^-mant.
  const double half_ulp = v < min_normal ? std::ldexp(min_normal, -mant - 1) : std::ldexp(v, -mant - 1);
  return half_ulp * scale * (1 + 1e-6) + std::fabs(x) * 1e-6;
}

}  // namespace

class TestMatmulDtypes : public QObject {
  Q_OBJECT

  std::vector<std::unique_ptr<ThreadPool>> pools_;
  Isa initial_isa_ = Isa::Scalar;

  static QString where(DType t, Isa isa, int M, int N, int K, const ThreadPool& pool) {
    return QString("%1 on %2, M=%3 N=%4 K=%5, %6 threads")
        .arg(dtype_name(t))
        .arg(cpu::isa_name(isa))
        .arg(M)
        .arg(N)
        .arg(K)
        .arg(pool.size());
  }

  void check_matmul(std::mt19937& rng, DType t, int M, int N, int K) {
    const auto x = random_vec(rng, (size_t)M * K);
    const Weights w = random_weights(rng, t, N, K);
    std::vector<float> want((size_t)M * N), got(want.size());
    ref::matmul(want.data(), x.data(), w.bytes.data(), t, M, N, K, w.scales.data());
    for (Isa isa : available_isas()) {
      cpu::set_isa(isa);
      for (auto& pool : pools_) {
        std::fill(got.begin(), got.end(), NAN);
        cpu::matmul(*pool, got.data(), x.data(), w.bytes.data(), t, M, N, K, w.scales.data());
        const QString err = isa == Isa::Scalar ? first_difference(got.data(), want.data(), got.size())
                                               : close_failure(got.data(), want.data(), got.size(), 1e-4);
        QVERIFY2(err.isEmpty(), qPrintable(where(t, isa, M, N, K, *pool) + ": " + err));
      }
    }
  }

  void check_w8a8(const std::vector<float>& x, const std::vector<int8_t>& w, const std::vector<float>& scales,
                  int M, int N, int K) {
    std::vector<float> want((size_t)M * N), got(want.size());
    ref::matmul_w8a8(want.data(), x.data(), w.data(), scales.data(), M, N, K);
    for (Isa isa : available_isas()) {
      cpu::set_isa(isa);
      for (auto& pool : pools_) {
        std::fill(got.begin(), got.end(), NAN);
        cpu::matmul_w8a8(*pool, got.data(), x.data(), w.data(), scales.data(), M, N, K);
        const QString err = first_difference(got.data(), want.data(), got.size());
        QVERIFY2(err.isEmpty(), qPrintable("W8A8 " + where(DType::I8, isa, M, N, K, *pool) + ": " + err));
      }
    }
  }

 private slots:
  void initTestCase() {
    initial_isa_ = cpu::active_isa();
    for (int n : {1, 2, 3}) pools_.push_back(std::make_unique<ThreadPool>(n));
    qInfo("detected ISA: %s", cpu::isa_name(cpu::detected_isa()));
  }

  void cleanup() { cpu::set_isa(initial_isa_); }

  void matmul_matches_reference() {
    std::mt19937 rng(1);
    for (DType t : kAllWeightTypes) {
      // Odd N and K (not multiples of 8 or 16) where the dtype allows; K past
      // one and two k blocks (512) for the blocked and paired decode paths.
      const std::vector<int> Ks =
          t == DType::Q8_0 ? std::vector<int>{32, 96, 1056, 2080} : std::vector<int>{8, 31, 100, 1100, 2100};
      for (int M : {1, 2, 3, 4, 5, 7, 16, 33})
        for (int N : {1, 5, 37})
          for (int K : Ks) {
            if (M * K > 20000 && N > 5) continue;  // the large cases once per M is enough
            check_matmul(rng, t, M, N, K);
            if (QTest::currentTestFailed()) return;
          }
      check_matmul(rng, t, 33, 70, t == DType::Q8_0 ? 1056 : 1003);  // several row blocks of the GEMM path
      check_matmul(rng, t, 1, 301, 2048);
    }
  }

  // A row's result must not depend on the batch around it. Every row of a
  // 9-row product is recomputed inside batches of 1..8 rows at every position,
  // per ISA, and must match the 9-row result bit for bit.
  void matmul_is_batch_invariant() {
    std::mt19937 rng(2);
    for (Isa isa : available_isas()) {
      cpu::set_isa(isa);
      for (DType t : kAllWeightTypes)
        for (int K : {40, 544, 1100, 2100}) {
          const int Kt = t == DType::Q8_0 ? (K + 31) / 32 * 32 : K;
          const int N = 37, M = 9;
          const auto x = random_vec(rng, (size_t)M * Kt);
          const Weights w = random_weights(rng, t, N, Kt);
          std::vector<float> all((size_t)M * N);
          cpu::matmul(*pools_[1], all.data(), x.data(), w.bytes.data(), t, M, N, Kt, w.scales.data());
          for (auto& pool : pools_)
            for (int m_batch = 1; m_batch <= 8; ++m_batch)
              for (int first = 0; first + m_batch <= M; ++first) {
                std::vector<float> part((size_t)m_batch * N);
                cpu::matmul(*pool, part.data(), x.data() + (size_t)first * Kt, w.bytes.data(), t, m_batch, N,
                            Kt, w.scales.data());
                const QString err =
                    first_difference(part.data(), all.data() + (size_t)first * N, part.size());
                QVERIFY2(err.isEmpty(), qPrintable(QString("%1: rows %2.. in a batch of %3: %4")
                                                       .arg(where(t, isa, M, N, Kt, *pool))
                                                       .arg(first)
                                                       .arg(m_batch)
                                                       .arg(err)));
              }
        }
    }
  }

  // Every FP8 code (NaN aside) through each ISA's conversion, against the
  // scalar codec: one weight row per code position, so each code meets x.
  void matmul_fp8_every_code() {
    std::mt19937 rng(3);
    for (DType t : {DType::F8_E4M3, DType::F8_E5M2}) {
      std::vector<uint8_t> codes;
      for (int c = 0; c < 256; ++c) {
        const float v = t == DType::F8_E4M3 ? fp8_e4m3_to_fp32((uint8_t)c) : fp8_e5m2_to_fp32((uint8_t)c);
        if (std::isfinite(v)) codes.push_back((uint8_t)c);
      }
      const int K = (int)codes.size(), N = 7;
      std::vector<uint8_t> w((size_t)N * K);
      for (int n = 0; n < N; ++n)  // rotate the codes so each meets different x
        for (int k = 0; k < K; ++k) w[(size_t)n * K + k] = codes[(k + 37 * n) % K];
      const std::vector<float> scales{1.0f, 0.5f, 3.0f, 1e-3f, 0.0625f, 7.0f, 1.0f};
      for (int M : {1, 2, 5}) {
        const auto x = random_vec(rng, (size_t)M * K);
        std::vector<float> want((size_t)M * N), got(want.size());
        ref::matmul(want.data(), x.data(), w.data(), t, M, N, K, scales.data());
        for (Isa isa : available_isas()) {
          cpu::set_isa(isa);
          cpu::matmul(*pools_[0], got.data(), x.data(), w.data(), t, M, N, K, scales.data());
          const QString err = close_failure(got.data(), want.data(), got.size(), 1e-4);
          QVERIFY2(err.isEmpty(), qPrintable(where(t, isa, M, N, K, *pools_[0]) + ": " + err));
        }
      }
    }
  }

  // An E4M3 NaN code makes its output NaN on every path, as in the reference
  // (the SIMD conversion alone would read it as 480).
  void matmul_e4m3_nan_propagates() {
    std::mt19937 rng(4);
    for (int K : {16, 40, 1100, 2100}) {
      const int N = 6;
      std::vector<float> wf = random_vec(rng, (size_t)N * K);
      Weights w = make_weights(wf, DType::F8_E4M3, N, K);
      w.bytes[(size_t)1 * K + K / 2] = 0x7f;  // row 1: NaN in the middle
      w.bytes[(size_t)4 * K + K - 1] = 0xff;  // row 4: NaN in the tail
      for (int M : {1, 3, 6}) {
        const auto x = random_vec(rng, (size_t)M * K);
        std::vector<float> want((size_t)M * N), got(want.size());
        ref::matmul(want.data(), x.data(), w.bytes.data(), DType::F8_E4M3, M, N, K, w.scales.data());
        for (Isa isa : available_isas()) {
          cpu::set_isa(isa);
          cpu::matmul(*pools_[1], got.data(), x.data(), w.bytes.data(), DType::F8_E4M3, M, N, K,
                      w.scales.data());
          for (int m = 0; m < M; ++m)
            for (int n = 0; n < N; ++n) {
              const float g = got[(size_t)m * N + n], r = want[(size_t)m * N + n];
              QVERIFY2(std::isnan(g) == std::isnan(r),
                       qPrintable(QString("%1: y[%2, %3] = %4, ref %5")
                                      .arg(where(DType::F8_E4M3, isa, M, N, K, *pools_[1]))
                                      .arg(m)
                                      .arg(n)
                                      .arg(g)
                                      .arg(r)));
            }
        }
      }
    }
  }

  void matmul_without_scales_is_nan() {
    const int M = 2, N = 3, K = 32;
    std::vector<float> x(M * K, 1.0f), y(M * N, 0.0f);
    std::vector<uint8_t> w(N * K, 1);
    for (DType t : kScaledTypes) {
      ThreadPool& pool = *pools_[0];
      cpu::matmul(pool, y.data(), x.data(), w.data(), t, M, N, K);
      for (float v : y) QVERIFY(std::isnan(v));
      ref::matmul(y.data(), x.data(), w.data(), t, M, N, K);
      for (float v : y) QVERIFY(std::isnan(v));
    }
  }

  void embed_matches_reference() {
    std::mt19937 rng(5);
    const int vocab = 50;
    for (DType t : kAllWeightTypes)
      for (int D : {13, 32, 96, 4096}) {
        if (t == DType::Q8_0 && D % 32) continue;
        const Weights table = random_weights(rng, t, vocab, D);
        std::uniform_int_distribution<int32_t> id(0, vocab - 1);
        for (int T : {1, 5, 40}) {
          std::vector<int32_t> ids(T);
          for (auto& i : ids) i = id(rng);
          std::vector<float> want((size_t)T * D), got(want.size());
          ref::embed(want.data(), table.bytes.data(), t, ids.data(), T, D, table.scales.data());
          for (Isa isa : available_isas()) {
            cpu::set_isa(isa);
            for (auto& pool : pools_) {
              std::fill(got.begin(), got.end(), NAN);
              cpu::embed(*pool, got.data(), table.bytes.data(), t, ids.data(), T, D, table.scales.data());
              // Conversions are exact and the scale is one multiply, so rows are identical.
              const QString err = first_difference(got.data(), want.data(), got.size());
              QVERIFY2(err.isEmpty(), qPrintable(QString("embed %1 on %2 D=%3 T=%4, %5 threads: %6")
                                                     .arg(dtype_name(t))
                                                     .arg(cpu::isa_name(isa))
                                                     .arg(D)
                                                     .arg(T)
                                                     .arg(pool->size())
                                                     .arg(err)));
            }
          }
        }
      }
  }

  // All 256 codes, NaN included, through each ISA's embed (the exhaustive
  // check of the SIMD FP8 conversions: signs, subnormals, NaN).
  void embed_every_fp8_code() {
    for (DType t : {DType::F8_E4M3, DType::F8_E5M2}) {
      const int D = 256 + 5;  // a tail past the vector width too
      std::vector<uint8_t> table(2 * D);
      for (int d = 0; d < D; ++d) {
        table[d] = (uint8_t)d;
        table[D + d] = (uint8_t)(255 - d % 256);
      }
      const std::vector<float> scales{1.0f, 0.37f};
      const std::vector<int32_t> ids{0, 1, 0};
      std::vector<float> want(3 * D), got(3 * D);
      ref::embed(want.data(), table.data(), t, ids.data(), 3, D, scales.data());
      for (Isa isa : available_isas()) {
        cpu::set_isa(isa);
        cpu::embed(*pools_[0], got.data(), table.data(), t, ids.data(), 3, D, scales.data());
        const QString err = first_difference(got.data(), want.data(), got.size());
        QVERIFY2(err.isEmpty(),
                 qPrintable(QString("%1 on %2: %3").arg(dtype_name(t)).arg(cpu::isa_name(isa)).arg(err)));
      }
    }
  }

  void w8a8_matches_reference_exactly() {
    std::mt19937 rng(6);
    std::uniform_int_distribution<int> q(-127, 127);
    for (int M : {1, 2, 3, 4, 5, 7, 16, 33})
      for (int N : {1, 5, 37})
        for (int K : {8, 31, 32, 100, 1100}) {
          auto x = random_vec(rng, (size_t)M * K, -3.0f, 3.0f);
          if (M > 2) std::fill(x.begin() + K, x.begin() + 2 * K, 0.0f);  // an all-zero row gives zeros
          if (M > 3)  // exact ties: amax 127 makes inv 1, so x * inv = j + 0.5
            for (int k = 0; k < K; ++k)
              x[3 * (size_t)K + k] = k == 0 ? 127.0f : (float)((k * 7) % 254 - 127) + 0.5f;
          std::vector<int8_t> w((size_t)N * K);
          for (auto& v : w) v = (int8_t)q(rng);
          const auto scales = random_vec(rng, N, 0.001f, 0.1f);
          check_w8a8(x, w, scales, M, N, K);
          if (QTest::currentTestFailed()) return;
        }
    // A larger product for the blocked paths and every thread.
    const int M = 40, N = 300, K = 2048;
    const auto x = random_vec(rng, (size_t)M * K);
    std::vector<int8_t> w((size_t)N * K);
    for (auto& v : w) v = (int8_t)q(rng);
    check_w8a8(x, w, random_vec(rng, N, 0.001f, 0.1f), M, N, K);
  }

  // The definition covers every int8 weight, -128 included (pre-quantized
  // checkpoints may hold it even though quantize_rows never writes it).
  void w8a8_full_int8_range() {
    std::mt19937 rng(7);
    std::uniform_int_distribution<int> q(-128, 127);
    for (int M : {1, 4, 9})
      for (int K : {64, 100}) {
        const int N = 9;
        const auto x = random_vec(rng, (size_t)M * K);
        std::vector<int8_t> w((size_t)N * K);
        for (auto& v : w) v = (int8_t)q(rng);
        std::fill(w.begin(), w.begin() + K, (int8_t)-128);  // a whole row of -128
        check_w8a8(x, w, random_vec(rng, N, 0.01f, 1.0f), M, N, K);
        if (QTest::currentTestFailed()) return;
      }
  }

  // W8A8 approximates the F32 product (a sanity check of the definition, not
  // of the kernels): per-row INT8 activations lose about 1/254 of amax per term.
  void w8a8_approximates_float_product() {
    std::mt19937 rng(8);
    const int M = 3, N = 20, K = 512;
    const auto x = random_vec(rng, (size_t)M * K);
    const Weights w = random_weights(rng, DType::I8, N, K);
    std::vector<float> exact((size_t)M * N), got(exact.size());
    ref::matmul(exact.data(), x.data(), w.bytes.data(), DType::I8, M, N, K, w.scales.data());
    cpu::matmul_w8a8(*pools_[0], got.data(), x.data(), reinterpret_cast<const int8_t*>(w.bytes.data()),
                     w.scales.data(), M, N, K);
    const QString err = close_failure(got.data(), exact.data(), got.size(), 0.05);
    QVERIFY2(err.isEmpty(), qPrintable(err));
  }

  void quantize_round_trip() {
    std::mt19937 rng(9);
    const int rows = 23, cols = 96;
    for (DType t : kAllWeightTypes)
      for (bool per_tensor : {false, true}) {
        auto src = random_vec(rng, (size_t)rows * cols, -2.0f, 2.0f);
        for (int r = 0; r < rows; ++r)  // rows of very different magnitude
          for (int c = 0; c < cols; ++c) src[(size_t)r * cols + c] *= std::ldexp(1.0f, r % 9 - 4);
        std::fill(src.begin() + 5 * cols, src.begin() + 6 * cols, 0.0f);  // an all-zero row
        std::vector<uint8_t> q(row_bytes(t, cols) * rows);
        std::vector<float> scales(rows, -1.0f), back((size_t)rows * cols);
        quantize_rows(q.data(), scales.data(), src.data(), t, rows, cols, per_tensor);
        dequantize_rows(back.data(), q.data(), scales.data(), t, rows, cols);
        const QString ctx = QString("%1%2").arg(dtype_name(t)).arg(per_tensor ? " per tensor" : "");
        float amax_all = 0.0f;
        for (float v : src) amax_all = std::max(amax_all, std::fabs(v));
        for (int r = 0; r < rows; ++r) {
          const float* x = &src[(size_t)r * cols];
          float amax = 0.0f;
          for (int c = 0; c < cols; ++c) amax = std::max(amax, std::fabs(x[c]));
          const float s = scales[r];
          QVERIFY2(s > 0.0f && std::isfinite(s), qPrintable(ctx + QString(" row %1 scale %2").arg(r).arg(s)));
          if (is_scaled(t)) {
            const float fmax = t == DType::I8 ? kI8Max : t == DType::F8_E4M3 ? kF8E4M3Max : kF8E5M2Max;
            const float a = per_tensor ? amax_all : amax;
            QVERIFY(s == (a > 0.0f ? a / fmax : 1.0f));
            if (per_tensor) QVERIFY(s == scales[0]);
          } else {
            QVERIFY(s == 1.0f);
          }
          for (int c = 0; c < cols; ++c) {
            const float v = x[c], d = back[(size_t)r * cols + c];
            double bound = 0.0;
            switch (t) {
              case DType::F32:
                bound = 0.0;
                break;
              case DType::F16:
                QVERIFY(d == fp16_to_fp32(fp32_to_fp16(v)));
                continue;
              case DType::BF16:
                QVERIFY(d == bf16_to_fp32(fp32_to_bf16(v)));
                continue;
              case DType::Q8_0: {
                // Half a step of the block scale, plus the F16 rounding of that scale times |q| <= 127.
                const float* blk = x + c / 32 * 32;
                float bmax = 0.0f;
                for (int i = 0; i < 32; ++i) bmax = std::max(bmax, std::fabs(blk[i]));
                const double dq = bmax / 127.0;
                bound = 0.5 * dq * (1 + 1e-6) + 127.0 * dq * std::ldexp(1.0, -11) + 1e-7 * std::fabs(v);
                break;
              }
              case DType::I8:
                bound = 0.5 * s * (1 + 1e-5) + 1e-7 * std::fabs(v);
                break;
              case DType::F8_E4M3:
              case DType::F8_E5M2:
                bound = fp8_error_bound(t, v, s);
                break;
              case DType::I32:
                break;
            }
            QVERIFY2(std::fabs((double)d - v) <= bound,
                     qPrintable(ctx + QString(" [%1, %2]: %3 -> %4 (bound %5, scale %6)")
                                          .arg(r)
                                          .arg(c)
                                          .arg(v, 0, 'g', 9)
                                          .arg(d, 0, 'g', 9)
                                          .arg(bound)
                                          .arg(s)));
          }
        }
        // The all-zero row stays zero.
        if (!per_tensor)
          for (int c = 0; c < cols; ++c) QVERIFY(back[5 * cols + c] == 0.0f);
      }
  }

  // The quantizer's codes are exactly the definitions: nearbyint(x / scale)
  // for I8, the scalar FP8 encoder of x / scale, GGUF's Q8_0; on every ISA
  // (quantize_rows has scalar and AVX2 encoders). Row 0 holds exact ties: 127
  // leads each block of 32, so I8 and Q8_0 scales are 1 and x.5 values tie.
  void quantize_codes_follow_definition() {
    std::mt19937 rng(10);
    const int rows = 40, cols = 256 + 32 + 8 + 3;  // tails after the 32-wide SIMD loops
    auto src = random_vec(rng, (size_t)rows * cols, -5.0f, 5.0f);
    for (int k = 0; k < cols; ++k) src[k] = k % 32 == 0 ? 127.0f : (float)((k * 7) % 254 - 127) + 0.5f;
    // Row 1: amax 381 makes the I8 scale 3 (an inexact reciprocal), and every x / scale an exact tie.
    for (int k = 0; k < cols; ++k)
      src[cols + k] = k == 0 ? 381.0f : ((float)((k * 5) % 254 - 127) + 0.5f) * 3.0f;
    const int q8_cols = 256;  // Q8_0 rows are whole blocks
    for (Isa isa : available_isas()) {
      cpu::set_isa(isa);
      for (DType t : kScaledTypes) {
        std::vector<uint8_t> q(row_bytes(t, cols) * rows);
        std::vector<float> scales(rows);
        quantize_rows(q.data(), scales.data(), src.data(), t, rows, cols);
        if (t == DType::I8) QVERIFY(scales[0] == 1.0f && scales[1] == 3.0f);
        for (size_t i = 0; i < src.size(); ++i) {
          const float v = src[i] / scales[i / cols];
          const uint8_t want = t == DType::I8        ? (uint8_t)(int8_t)std::nearbyint(v)
                               : t == DType::F8_E4M3 ? fp32_to_fp8_e4m3(v)
                                                     : fp32_to_fp8_e5m2(v);
          QVERIFY2(q[i] == want, qPrintable(QString("%1 on %2, element %3: %4 -> %5, want %6")
                                                .arg(dtype_name(t))
                                                .arg(cpu::isa_name(isa))
                                                .arg(i)
                                                .arg(src[i])
                                                .arg(q[i])
                                                .arg(want)));
        }
      }
      std::vector<float> q8_src((size_t)rows * q8_cols);
      for (int r = 0; r < rows; ++r)
        std::copy_n(src.begin() + (size_t)r * cols, q8_cols, q8_src.begin() + (size_t)r * q8_cols);
      std::vector<BlockQ8_0> blocks(q8_src.size() / 32);
      quantize_rows(blocks.data(), nullptr, q8_src.data(), DType::Q8_0, rows, q8_cols);
      for (size_t b = 0; b < blocks.size(); ++b) {
        const float* v = &q8_src[b * 32];
        float amax = 0.0f;
        for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(v[i]));
        const float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
        QCOMPARE(blocks[b].d, fp32_to_fp16(d));
        for (int i = 0; i < 32; ++i)
          QVERIFY2(blocks[b].qs[i] == (int8_t)std::round(v[i] * id),
                   qPrintable(QString("Q8_0 on %1, block %2 [%3]: %4 -> %5")
                                  .arg(cpu::isa_name(isa))
                                  .arg(b)
                                  .arg(i)
                                  .arg(v[i])
                                  .arg(blocks[b].qs[i])));
      }
    }
  }

  // With amax equal to the format's maximum the scale is exactly 1, so the
  // quantizer's codes must be the scalar encoder's on every input: a sweep
  // over F32 bit patterns covering both subnormal ranges, every tie between
  // neighbouring codes, and the values one F32 ulp either side of each tie.
  void quantize_fp8_matches_scalar_encoder() {
    for (DType t : {DType::F8_E4M3, DType::F8_E5M2}) {
      const float fmax = t == DType::F8_E4M3 ? kF8E4M3Max : kF8E5M2Max;
      auto decode = [t](int c) {
        return t == DType::F8_E4M3 ? fp8_e4m3_to_fp32((uint8_t)c) : fp8_e5m2_to_fp32((uint8_t)c);
      };
      auto encode = [t](float f) { return t == DType::F8_E4M3 ? fp32_to_fp8_e4m3(f) : fp32_to_fp8_e5m2(f); };
      std::vector<float> vals;
      for (int c = 0; c < 0x7f; ++c) {
        const float a = decode(c), b = decode(c + 1);
        if (!std::isfinite(a) || !std::isfinite(b)) continue;
        const float mid = (a + b) / 2;
        for (float v : {a, mid, std::nextafter(mid, 0.0f), std::nextafter(mid, INFINITY)})
          for (float s : {1.0f, -1.0f}) vals.push_back(s * v);
      }
      uint32_t lo_bits, hi_bits;
      const float lo = std::ldexp(1.0f, -24), hi = fmax;
      std::memcpy(&lo_bits, &lo, 4);
      std::memcpy(&hi_bits, &hi, 4);
      for (uint32_t b = lo_bits; b < hi_bits; b += 997) {
        float f;
        std::memcpy(&f, &b, 4);
        vals.push_back(f);
        vals.push_back(-f);
      }
      const int cols = 1024;
      const int rows = (int)((vals.size() + cols - 2) / (cols - 1));
      std::vector<float> src((size_t)rows * cols, 0.0f);
      for (int r = 0; r < rows; ++r) src[(size_t)r * cols] = fmax;  // pins every scale to 1
      for (size_t i = 0; i < vals.size(); ++i) src[(i / (cols - 1)) * cols + 1 + i % (cols - 1)] = vals[i];
      for (Isa isa : available_isas()) {
        cpu::set_isa(isa);
        std::vector<uint8_t> q(src.size());
        std::vector<float> scales(rows);
        quantize_rows(q.data(), scales.data(), src.data(), t, rows, cols);
        for (int r = 0; r < rows; ++r) QVERIFY(scales[r] == 1.0f);
        for (size_t i = 0; i < src.size(); ++i)
          QVERIFY2(q[i] == encode(src[i]), qPrintable(QString("%1 on %2: %3 -> %4, scalar encoder %5")
                                                          .arg(dtype_name(t))
                                                          .arg(cpu::isa_name(isa))
                                                          .arg(src[i], 0, 'g', 9)
                                                          .arg(q[i])
                                                          .arg(encode(src[i]))));
      }
    }
  }

  // Threads (pool or plain) only split rows, and the scalar and SIMD encoders
  // agree: the bytes and scales are the same every way.
  void quantize_threads_and_isas_agree() {
    std::mt19937 rng(11);
    const int rows = 64, cols = (1 << 15) + 40;  // 2M values: enough for every thread
    auto src = random_vec(rng, (size_t)rows * cols);
    for (int r = 0; r < rows; ++r)  // magnitudes from subnormal FP8 codes up
      for (int c = 0; c < cols; c += 3) src[(size_t)r * cols + c] *= std::ldexp(1.0f, -(c % 29));
    for (DType t : kAllWeightTypes)
      for (bool per_tensor : {false, true}) {
        cpu::set_isa(Isa::Scalar);
        std::vector<uint8_t> want(row_bytes(t, cols) * rows);
        std::vector<float> want_scales(rows);
        quantize_rows(want.data(), want_scales.data(), src.data(), t, rows, cols, per_tensor);
        for (Isa isa : available_isas()) {
          cpu::set_isa(isa);
          std::vector<uint8_t> a(want.size()), b(want.size());
          std::vector<float> sa(rows), sb(rows);
          quantize_rows(a.data(), sa.data(), src.data(), t, rows, cols, per_tensor);
          quantize_rows(*pools_[2], b.data(), sb.data(), src.data(), t, rows, cols, per_tensor);
          const QString ctx = QString("%1 on %2%3")
                                  .arg(dtype_name(t))
                                  .arg(cpu::isa_name(isa))
                                  .arg(per_tensor ? " per tensor" : "");
          QVERIFY2(a == want && sa == want_scales, qPrintable(ctx));
          QVERIFY2(b == want && sb == want_scales, qPrintable(ctx + ", pool"));
        }
      }
  }

  void fp8_codec_round_trip() {
    for (int c = 0; c < 256; ++c) {
      const float e4 = fp8_e4m3_to_fp32((uint8_t)c), e5 = fp8_e5m2_to_fp32((uint8_t)c);
      if ((c & 0x7f) == 0x7f) {
        QVERIFY(std::isnan(e4));
      } else {
        QVERIFY(std::isfinite(e4));
        QCOMPARE((int)fp32_to_fp8_e4m3(e4), c);
      }
      if ((c & 0x7c) == 0x7c) {
        QVERIFY(!std::isfinite(e5));  // exponent 31: inf (mantissa 0) or NaN
        QCOMPARE(std::isnan(e5), (c & 3) != 0);
      } else {
        QCOMPARE((int)fp32_to_fp8_e5m2(e5), c);
      }
    }
    QCOMPARE(fp8_e4m3_to_fp32(0x7e), 448.0f);
    QCOMPARE(fp8_e5m2_to_fp32(0x7b), 57344.0f);
    QCOMPARE(fp8_e4m3_to_fp32(0x01), std::ldexp(1.0f, -9));  // smallest subnormals
    QCOMPARE(fp8_e5m2_to_fp32(0x01), std::ldexp(1.0f, -16));
  }

  void fp8_codec_rounds_to_nearest_even() {
    struct Format {
      float (*decode)(uint8_t);
      uint8_t (*encode)(float);
      int max_code;
    };
    for (Format f :
         {Format{fp8_e4m3_to_fp32, fp32_to_fp8_e4m3, 0x7e}, Format{fp8_e5m2_to_fp32, fp32_to_fp8_e5m2, 0x7b}})
      for (int c = 0; c < f.max_code; ++c) {
        const float a = f.decode((uint8_t)c), b = f.decode((uint8_t)(c + 1));
        const float mid = (a + b) / 2;  // exact in F32
        const int even = (c % 2 == 0) ? c : c + 1;
        QCOMPARE((int)f.encode(mid), even);
        QCOMPARE((int)f.encode(-mid), even | 0x80);
        QCOMPARE((int)f.encode(std::nextafter(mid, 0.0f)), c);
        QCOMPARE((int)f.encode(std::nextafter(mid, INFINITY)), c + 1);
      }
  }

  void fp8_codec_saturates_and_keeps_nan() {
    QCOMPARE((int)fp32_to_fp8_e4m3(1e9f), 0x7e);
    QCOMPARE((int)fp32_to_fp8_e4m3(-1e9f), 0xfe);
    QCOMPARE((int)fp32_to_fp8_e4m3(INFINITY), 0x7e);
    QCOMPARE((int)fp32_to_fp8_e4m3(464.0f), 0x7e);
    QCOMPARE((int)fp32_to_fp8_e5m2(1e9f), 0x7b);
    QCOMPARE((int)fp32_to_fp8_e5m2(-INFINITY), 0xfb);
    QCOMPARE((int)fp32_to_fp8_e5m2(61440.0f), 0x7b);
    QVERIFY(std::isfinite(fp8_e4m3_to_fp32(fp32_to_fp8_e4m3(1e30f))));
    QVERIFY(std::isfinite(fp8_e5m2_to_fp32(fp32_to_fp8_e5m2(1e30f))));
    QVERIFY(std::isnan(fp8_e4m3_to_fp32(fp32_to_fp8_e4m3(NAN))));
    QVERIFY(std::isnan(fp8_e5m2_to_fp32(fp32_to_fp8_e5m2(NAN))));
    QCOMPARE((int)fp32_to_fp8_e4m3(-0.0f), 0x80);
    QCOMPARE((int)fp32_to_fp8_e4m3(std::ldexp(1.0f, -11)), 0);  // below half the smallest subnormal
  }
};

QTEST_APPLESS_MAIN(TestMatmulDtypes)
#include "test_matmul_dtypes.moc"
