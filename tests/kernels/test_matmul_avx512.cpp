// The AVX-512 matmul variants (kernels/cpu/matmul_avx512.cpp), called
// directly, against the scalar reference, on random never-all-zero inputs
// with odd shapes and pools of 1, 2 and 3 threads.
//
// F32 / F16 / BF16 weights: outputs may differ from the double-accumulating
// reference only by F32 rounding; an element passes when
// |got - ref| <= 2e-5 * (|ref| + rms) with rms the root mean square of the
// whole reference output (K is at most 4200 here, so F32 accumulation error
// stays well inside that). On top of that the results must equal, bit for
// bit, a scalar model of the kernel's canonical summation order, and a row
// must give the same bits whether it is computed alone or inside any batch.
//
// One-byte weights (I8, FP8): the same tolerance and a bit-exact model (the
// float order over the decoded codes, then the row scale).
//
// Q8_0 weights: the same tolerance, and bit equality with a scalar model of
// the Q8_0 order (the block scale folded in once per 32 weights).
//
// FP8 through BF16 dot products (matmul_fp8_dpbf16): activations keep 16
// significant bits (each off by at most 2^-17 of itself), so the tolerance
// is 1e-4 (measured worst 2.3e-5 on these inputs), and bit equality with a scalar model of its order
// (activations split into two BF16, vdpbf16ps's odd-then-even rounded adds, two accumulators).
//
// W8A8 and W8A24: integer dot products, so the result must equal
// ref::matmul_w8a8 / ref::matmul_w8a24 exactly.
//
// Q8_0 W8A16 (matmul_q8_0_w16): its definition fixes the order (16 lanes per
// output over the whole row, a fixed tree), so the result must equal
// ref::matmul_q8_0_w16 bit for bit for every M; against the exact dot product
// its error is bounded by the activation rounding.
#include <QtTest/QtTest>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/cpu/isa.h"
#include "kernels/cpu/matmul_avx512.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/thread_pool.h"
#include "kernels/dtype.h"
#include "kernels/reference/ops.h"

using namespace brisk;

namespace {

constexpr double kRtol = 2e-5;
constexpr double kRtolDp = 1e-4;  // activations as two BF16 (see above)
constexpr int kKc = 512;          // the kernel's k block (see matmul_avx512.cpp)

std::vector<float> random_vec(std::mt19937& rng, size_t n, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// Weight bytes of type t from F32 values, and the exact F32 values they hold.
std::vector<uint8_t> encode(const std::vector<float>& w, DType t, std::vector<float>* exact) {
  exact->resize(w.size());
  if (t == DType::F32) {
    std::vector<uint8_t> out(w.size() * 4);
    std::memcpy(out.data(), w.data(), out.size());
    *exact = w;
    return out;
  }
  std::vector<uint8_t> out(w.size() * 2);
  auto* p = reinterpret_cast<uint16_t*>(out.data());
  for (size_t i = 0; i < w.size(); ++i) {
    p[i] = t == DType::F16 ? fp32_to_fp16(w[i]) : fp32_to_bf16(w[i]);
    (*exact)[i] = t == DType::F16 ? fp16_to_fp32(p[i]) : bf16_to_fp32(p[i]);
  }
  return out;
}

// The kernels' fixed tree over 16 lanes: lane i + lane i+8, then +4, +2, +1.
float lane_tree(const float* lane) {
  float t8[8], t4[4], t2[2];
  for (int i = 0; i < 8; ++i) t8[i] = lane[i] + lane[i + 8];
  for (int i = 0; i < 4; ++i) t4[i] = t8[i] + t8[i + 4];
  for (int i = 0; i < 2; ++i) t2[i] = t4[i] + t4[i + 2];
  return t2[0] + t2[1];
}

// Scalar model of the canonical order: per k block, 16 lanes each an FMA
// chain over the k = lane (mod 16) elements, then the fixed tree, block sums
// added left to right.
float canonical_dot(const float* x, const float* w, int K) {
  float y = 0.0f;
  for (int kb = 0; kb < K; kb += kKc) {
    const int kn = std::min(kKc, K - kb);
    float lane[16] = {};
    for (int k = 0; k < kn; ++k) lane[k % 16] = std::fma(x[kb + k], w[kb + k], lane[k % 16]);
    const float s = lane_tree(lane);
    y = kb == 0 ? s : y + s;
  }
  return y;
}

// Q8_0 weights: rows of K / 32 blocks, random codes (every row has a -128
// and a 127) and random F16 scales of either sign; *q and *d get the codes
// and the scales as F32.
std::vector<BlockQ8_0> random_q8_0(std::mt19937& rng, int N, int K, std::vector<float>* q,
                                   std::vector<float>* d) {
  std::uniform_int_distribution<int> code(-128, 127);
  std::uniform_real_distribution<float> scale(0.001f, 0.05f);
  const int nb = K / kQ8_0BlockSize;
  std::vector<BlockQ8_0> w((size_t)N * nb);
  q->resize((size_t)N * K);
  d->resize(w.size());
  for (size_t b = 0; b < w.size(); ++b) {
    w[b].d = fp32_to_fp16((rng() & 1 ? -1.0f : 1.0f) * scale(rng));
    (*d)[b] = fp16_to_fp32(w[b].d);
    for (int i = 0; i < kQ8_0BlockSize; ++i) {
      w[b].qs[i] = (int8_t)code(rng);
      (*q)[b * kQ8_0BlockSize + i] = w[b].qs[i];
    }
  }
  for (int n = 0; n < N; ++n) {
    w[(size_t)n * nb].qs[0] = -128;
    w[(size_t)n * nb].qs[1] = 127;
    (*q)[(size_t)n * K] = -128.0f;
    (*q)[(size_t)n * K + 1] = 127.0f;
  }
  return w;
}

// Scalar model of the Q8_0 canonical order (matmul_avx512.cpp): per k block,
// per 32-weight block j, lane l: t = x*q at 32j + l, t = fma(x, q, t) at
// 32j + 16 + l, acc[l] = fma(t, d_j, acc[l]); then the tree and the block
// sums as in canonical_dot. q and d: one row's codes and scales.
float canonical_dot_q8_0(const float* x, const float* q, const float* d, int K) {
  float y = 0.0f;
  for (int kb = 0; kb < K; kb += kKc) {
    const int kn = std::min(kKc, K - kb);
    float lane[16] = {};
    for (int j = kb / 32; j < (kb + kn) / 32; ++j)
      for (int l = 0; l < 16; ++l) {
        float t = x[32 * j + l] * q[32 * j + l];
        t = std::fma(x[32 * j + 16 + l], q[32 * j + 16 + l], t);
        lane[l] = std::fma(t, d[j], lane[l]);
      }
    const float s = lane_tree(lane);
    y = kb == 0 ? s : y + s;
  }
  return y;
}

// The FP8 codes of N x K random weights (no NaN / inf codes) and their
// values.
std::vector<uint8_t> random_fp8(std::mt19937& rng, DType t, size_t n, std::vector<float>* v) {
  std::vector<uint8_t> w(n);
  v->resize(n);
  for (size_t i = 0; i < n; ++i) {
    uint8_t b = (uint8_t)(rng() & 0xff);
    if (t == DType::F8_E4M3 && (b & 0x7f) == 0x7f) b ^= 1;     // not NaN
    if (t == DType::F8_E5M2 && (b & 0x7c) == 0x7c) b ^= 0x40;  // not inf / NaN
    w[i] = b;
    (*v)[i] = t == DType::F8_E4M3 ? fp8_e4m3_to_fp32(b) : fp8_e5m2_to_fp32(b);
  }
  return w;
}

// BF16 rounding as vcvtneps2bf16 does it: to nearest even, a denormal input
// as zero.
float bf16_round(float v) {
  if (std::fpclassify(v) == FP_SUBNORMAL) return std::copysign(0.0f, v);
  return bf16_to_fp32(fp32_to_bf16(v));
}

// One of vdpbf16ps's rounded adds: products of BF16 and FP8 values are exact
// in F32, and a denormal result is flushed to zero.
float dp_add(float acc, float a, float b) {
  const float r = std::fma(a, b, acc);
  return std::fpclassify(r) == FP_SUBNORMAL ? std::copysign(0.0f, r) : r;
}

// Scalar model of the BF16 dot-product order (matmul_avx512.cpp, "FP8
// through BF16 dot products"): per k block, groups of 64; the group's word
// 2j + e of vector v (W0, W1) is element 16 (i / 8) + 8 v + i % 8 with
// i = 2j + e, added into lane j odd word first; one accumulator takes the
// h products (W0 then W1, group by group), one the l products; lanes l + h;
// then the tree and the block sums as in canonical_dot.
float dpbf16_dot(const float* x, const float* w, int K) {
  float y = 0.0f;
  for (int kb = 0; kb < K; kb += kKc) {
    const int kn = std::min(kKc, K - kb);
    float acc[2][16] = {};
    for (int g = 0; g * 64 < kn; ++g)
      for (int v = 0; v < 2; ++v)
        for (int j = 0; j < 16; ++j)
          for (int e : {1, 0}) {
            const int i = 2 * j + e, pos = 64 * g + 16 * (i / 8) + 8 * v + i % 8;
            const float xv = pos < kn ? x[kb + pos] : 0.0f, wv = pos < kn ? w[kb + pos] : 0.0f;
            const float h = bf16_round(xv), l = std::isinf(h) ? 0.0f : bf16_round(xv - h);
            acc[0][j] = dp_add(acc[0][j], h, wv);
            acc[1][j] = dp_add(acc[1][j], l, wv);
          }
    float lane[16];
    for (int j = 0; j < 16; ++j) lane[j] = acc[1][j] + acc[0][j];
    const float s = lane_tree(lane);
    y = kb == 0 ? s : y + s;
  }
  return y;
}

QString first_mismatch(const float* got, const float* want, size_t n, double rtol) {
  double ss = 0.0;
  for (size_t i = 0; i < n; ++i) ss += (double)want[i] * want[i];
  const double rms = std::sqrt(ss / std::max<size_t>(1, n));
  for (size_t i = 0; i < n; ++i) {
    const double err = std::fabs((double)got[i] - want[i]);
    if (!(err <= rtol * (std::fabs(want[i]) + rms)))
      return QString("element %1: got %2 want %3 (err %4, rms %5)")
          .arg(i)
          .arg(got[i])
          .arg(want[i])
          .arg(err)
          .arg(rms);
  }
  return {};
}

QString first_bit_difference(const float* got, const float* want, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (std::memcmp(&got[i], &want[i], 4) != 0)
      return QString("element %1: %2 vs %3").arg(i).arg(got[i], 0, 'g', 9).arg(want[i], 0, 'g', 9);
  return {};
}

// INT8 weights with every value (-128 and 127 placed at the ends) and their
// row scales, for the integer paths.
std::vector<int8_t> random_i8_weights(std::mt19937& rng, int N, int K, std::vector<float>* scales) {
  std::uniform_int_distribution<int> byte(-128, 127);
  std::vector<int8_t> w((size_t)N * K);
  for (auto& v : w) v = (int8_t)byte(rng);
  w[0] = -128;
  w[w.size() - 1] = 127;
  *scales = random_vec(rng, N, 0.001f, 0.05f);
  return w;
}

// M activation rows of very different magnitudes (10^-2 .. 10^2), row 1
// all zero when M >= 3.
std::vector<float> scaled_rows(std::mt19937& rng, int M, int K) {
  auto x = random_vec(rng, (size_t)M * K);
  for (int m = 0; m < M; ++m)
    for (int k = 0; k < K; ++k) x[(size_t)m * K + k] *= std::pow(10.0f, (float)(m % 5) - 2.0f);
  if (M >= 3) std::fill(&x[(size_t)K], &x[(size_t)2 * K], 0.0f);
  return x;
}

struct Shape {
  int N, K;
};
// N and K off multiples of 16; K crosses the k block with a partial group.
// Rows shorter and longer than 4 KiB for every weight type: the M = 1 path
// reads short rows one after another and long rows several side by side.
const Shape kShapes[] = {{37, 75}, {101, 530}, {13, 1100}, {211, 19}, {9, 4200}};
const int kMs[] = {1, 2, 3, 4, 5, 7, 16, 33, 64};
const DType kFloatTypes[] = {DType::F32, DType::F16, DType::BF16};

// The exact outputs (in double) of M rows of x against N weight rows of
// values w (K each), times the row scales.
std::vector<double> exact_outputs(const std::vector<float>& x, const std::vector<float>& w,
                                  const std::vector<float>& scales, int M, int N, int K) {
  std::vector<double> out((size_t)M * N);
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) {
      double d = 0;
      for (int k = 0; k < K; ++k) d += (double)x[(size_t)m * K + k] * w[(size_t)n * K + k];
      out[(size_t)m * N + n] = d * scales[n];
    }
  return out;
}

double max_error(const std::vector<float>& got, const std::vector<double>& exact) {
  double e = 0;
  for (size_t i = 0; i < got.size(); ++i) e = std::max(e, std::fabs(got[i] - exact[i]));
  return e;
}

// M rows of outputs got (from x against one-byte weights w of type t, with
// values v and a scale per row): close to ref::matmul within rtol, and bit
// for bit dot(x row, v row, K) * scale, the kernel's order. Returns the
// first failure, or an empty string.
// "F8_E4M3 dpbf16 M=3 N=37 K=75 threads=2: " for failure messages.
QString where(DType t, const char* path, int M, const Shape& s, int threads) {
  return QString("%1%2 M=%3 N=%4 K=%5 threads=%6: ")
      .arg(dtype_name(t))
      .arg(path)
      .arg(M)
      .arg(s.N)
      .arg(s.K)
      .arg(threads);
}

template <class Dot>
QString check_scaled(const std::vector<float>& got, const std::vector<float>& x, const uint8_t* w, DType t,
                     const std::vector<float>& v, const std::vector<float>& scales, int M, const Shape& s,
                     double rtol, Dot&& dot) {
  std::vector<float> want(got.size()), model(got.size());
  ref::matmul(want.data(), x.data(), w, t, M, s.N, s.K, scales.data());
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < s.N; ++n)
      model[(size_t)m * s.N + n] = dot(&x[(size_t)m * s.K], &v[(size_t)n * s.K], s.K) * scales[n];
  if (QString close = first_mismatch(got.data(), want.data(), got.size(), rtol); !close.isEmpty())
    return close;
  if (QString bits = first_bit_difference(got.data(), model.data(), got.size()); !bits.isEmpty())
    return "order model: " + bits;
  return {};
}

// The integer paths' edge rows (scaled_rows plus rows 3 and 4 made
// non-finite): rows 3-4 must be NaN on both sides (then zeroed, so the bit
// comparison covers the rest) and row 1, all zero, must give 0. Returns the
// first failure, or an empty string.
QString check_edge_rows(std::vector<float>& got, std::vector<float>& want, int M, int N) {
  for (int m = 3; m < std::min(M, 5); ++m)
    for (int n = 0; n < N; ++n) {
      const size_t i = (size_t)m * N + n;
      if (!std::isnan(got[i])) return QString("row %1: a non-finite row must give NaN").arg(m);
      if (!std::isnan(want[i])) return QString("row %1: reference: NaN expected").arg(m);
      got[i] = want[i] = 0.0f;
    }
  if (M >= 3)
    for (int n = 0; n < N; ++n)
      if (got[(size_t)N + n] != 0.0f) return QString("row 1 (all zero) gave %1").arg(got[(size_t)N + n]);
  return {};
}

}  // namespace

class TestMatmulAvx512 : public QObject {
  Q_OBJECT

 private slots:
  void initTestCase() {
    if (cpu::detected_isa() < cpu::Isa::Avx512)
      QSKIP("this CPU lacks AVX-512 F/BW/VL/VNNI/BF16: the AVX-512 matmul variants cannot run here");
  }

  // Every float dtype, every M, odd shapes, 1-3 threads: close to the
  // reference and bit-equal to the canonical-order model.
  void float_weights_match_reference() {
    std::mt19937 rng(1234);
    for (int threads : {1, 2, 3}) {
      ThreadPool pool(threads);
      for (const Shape& s : kShapes) {
        for (DType t : kFloatTypes) {
          std::vector<float> exact;
          const auto w = encode(random_vec(rng, (size_t)s.N * s.K), t, &exact);
          for (int M : kMs) {
            const auto x = random_vec(rng, (size_t)M * s.K);
            std::vector<float> got((size_t)M * s.N, NAN), want((size_t)M * s.N), model((size_t)M * s.N);
            QVERIFY(cpu::avx512::matmul(pool, got.data(), x.data(), w.data(), t, M, s.N, s.K, nullptr));
            ref::matmul(want.data(), x.data(), w.data(), t, M, s.N, s.K);
            for (int m = 0; m < M; ++m)
              for (int n = 0; n < s.N; ++n)
                model[(size_t)m * s.N + n] = canonical_dot(&x[(size_t)m * s.K], &exact[(size_t)n * s.K], s.K);
            const QString ctx = QString("%1 M=%2 N=%3 K=%4 threads=%5: ")
                                    .arg(dtype_name(t))
                                    .arg(M)
                                    .arg(s.N)
                                    .arg(s.K)
                                    .arg(threads);
            const QString close = first_mismatch(got.data(), want.data(), got.size(), kRtol);
            QVERIFY2(close.isEmpty(), qPrintable(ctx + close));
            const QString bits = first_bit_difference(got.data(), model.data(), got.size());
            QVERIFY2(bits.isEmpty(), qPrintable(ctx + "canonical order: " + bits));
          }
        }
      }
    }
  }

  // A row's result does not depend on the batch it is computed in: 64 rows
  // at once (large-M path), in batches of 5, 3 and 2, and alone (small-M
  // path) give the same bits.
  void float_weights_batch_invariant() {
    std::mt19937 rng(99);
    ThreadPool pool(2);
    const int M = 64;
    for (const Shape& s : {Shape{300, 1100}, Shape{53, 77}, Shape{20, 4200}}) {
      for (DType t : kFloatTypes) {
        std::vector<float> exact;
        const auto w = encode(random_vec(rng, (size_t)s.N * s.K), t, &exact);
        const auto x = random_vec(rng, (size_t)M * s.K);
        std::vector<float> all((size_t)M * s.N);
        QVERIFY(cpu::avx512::matmul(pool, all.data(), x.data(), w.data(), t, M, s.N, s.K, nullptr));
        for (int batch : {33, 5, 4, 3, 2, 1}) {
          std::vector<float> part((size_t)M * s.N, NAN);
          for (int m0 = 0; m0 < M; m0 += batch) {
            const int mb = std::min(batch, M - m0);
            QVERIFY(cpu::avx512::matmul(pool, &part[(size_t)m0 * s.N], &x[(size_t)m0 * s.K], w.data(), t, mb,
                                        s.N, s.K, nullptr));
          }
          const QString diff = first_bit_difference(part.data(), all.data(), all.size());
          QVERIFY2(
              diff.isEmpty(),
              qPrintable(
                  QString("%1 N=%2 K=%3 batch %4 vs 64: ").arg(dtype_name(t)).arg(s.N).arg(s.K).arg(batch) +
                  diff));
        }
      }
    }
  }

  // One-byte weights (I8, FP8 E4M3/E5M2 with a scale per row), every finite
  // code, every M, 1-2 threads: close to the reference and bit-equal to the
  // canonical order over the decoded codes times the row scale (E4M3 runs on
  // code * 2^-8 and scales by 2^8 more, which gives the same bits).
  void one_byte_weights_match_reference() {
    std::mt19937 rng(555);
    for (int threads : {1, 2}) {
      ThreadPool pool(threads);
      for (const Shape& s : kShapes) {
        for (DType t : {DType::I8, DType::F8_E4M3, DType::F8_E5M2}) {
          std::vector<uint8_t> w((size_t)s.N * s.K);
          std::vector<float> v(w.size());
          for (size_t i = 0; i < w.size(); ++i) {
            uint8_t b = (uint8_t)(rng() & 0xff);
            if (t == DType::F8_E4M3 && (b & 0x7f) == 0x7f) b ^= 1;     // not NaN
            if (t == DType::F8_E5M2 && (b & 0x7c) == 0x7c) b ^= 0x40;  // not inf / NaN
            w[i] = b;
            v[i] = t == DType::I8        ? (float)(int8_t)b
                   : t == DType::F8_E4M3 ? fp8_e4m3_to_fp32(b)
                                         : fp8_e5m2_to_fp32(b);
          }
          const auto scales = random_vec(rng, s.N, 0.001f, 0.05f);
          for (int M : kMs) {
            const auto x = random_vec(rng, (size_t)M * s.K);
            std::vector<float> got((size_t)M * s.N, NAN);
            QVERIFY(cpu::avx512::matmul(pool, got.data(), x.data(), w.data(), t, M, s.N, s.K, scales.data()));
            const QString e = check_scaled(got, x, w.data(), t, v, scales, M, s, kRtol, canonical_dot);
            QVERIFY2(e.isEmpty(), qPrintable(where(t, "", M, s, threads) + e));
          }
        }
      }
    }
  }

  // An E4M3 NaN code (S.1111.111) makes its output column NaN on both paths,
  // as in the reference, through the F32-widening kernel and (where the CPU
  // has VBMI) the BF16 dot-product one; other columns stay finite.
  void e4m3_nan_code_gives_nan() {
    std::mt19937 rng(8);
    ThreadPool pool(2);
    const int N = 11, K = 530;
    std::vector<uint8_t> w((size_t)N * K);
    for (auto& b : w) b = (uint8_t)(rng() & 0x3f);
    w[(size_t)3 * K + 17] = 0x7f;
    w[(size_t)5 * K + 520] = 0xff;  // in the partial group of the second k block
    const std::vector<float> scales(N, 0.01f);
    for (bool dp : {false, true}) {
      for (int M : {1, 3, 7}) {
        const auto x = random_vec(rng, (size_t)M * K);
        std::vector<float> y((size_t)M * N, 0.0f);
        const bool ran = dp ? cpu::avx512::matmul_fp8_dpbf16(pool, y.data(), x.data(), w.data(),
                                                             DType::F8_E4M3, scales.data(), M, N, K)
                            : cpu::avx512::matmul(pool, y.data(), x.data(), w.data(), DType::F8_E4M3, M, N, K,
                                                  scales.data());
        if (dp && !ran) break;  // no VBMI: fp8_dpbf16_matches_reference says so
        QVERIFY(ran);
        for (int m = 0; m < M; ++m)
          for (int n = 0; n < N; ++n)
            QVERIFY2(std::isnan(y[(size_t)m * N + n]) == (n == 3 || n == 5),
                     qPrintable(QString("%1 M=%2 m=%3 n=%4: %5")
                                    .arg(dp ? "dpbf16" : "fma")
                                    .arg(M)
                                    .arg(m)
                                    .arg(n)
                                    .arg(y[(size_t)m * N + n])));
      }
    }
  }

  // Q8_0, every M, K multiples of 32 (crossing the k block with a partial
  // one), 1-3 threads: close to the reference and bit-equal to the Q8_0
  // canonical-order model.
  void q8_0_matches_reference() {
    std::mt19937 rng(4321);
    const Shape shapes[] = {{37, 96}, {101, 544}, {13, 1120}, {211, 32}, {19, 2048}, {9, 4096}};
    for (int threads : {1, 2, 3}) {
      ThreadPool pool(threads);
      for (const Shape& s : shapes) {
        std::vector<float> q, d;
        const auto w = random_q8_0(rng, s.N, s.K, &q, &d);
        for (int M : kMs) {
          const auto x = random_vec(rng, (size_t)M * s.K);
          std::vector<float> got((size_t)M * s.N, NAN), want((size_t)M * s.N), model((size_t)M * s.N);
          QVERIFY(
              cpu::avx512::matmul(pool, got.data(), x.data(), w.data(), DType::Q8_0, M, s.N, s.K, nullptr));
          ref::matmul(want.data(), x.data(), w.data(), DType::Q8_0, M, s.N, s.K);
          for (int m = 0; m < M; ++m)
            for (int n = 0; n < s.N; ++n)
              model[(size_t)m * s.N + n] = canonical_dot_q8_0(&x[(size_t)m * s.K], &q[(size_t)n * s.K],
                                                              &d[(size_t)n * (s.K / kQ8_0BlockSize)], s.K);
          const QString ctx =
              QString("Q8_0 M=%1 N=%2 K=%3 threads=%4: ").arg(M).arg(s.N).arg(s.K).arg(threads);
          const QString close = first_mismatch(got.data(), want.data(), got.size(), kRtol);
          QVERIFY2(close.isEmpty(), qPrintable(ctx + close));
          const QString bits = first_bit_difference(got.data(), model.data(), got.size());
          QVERIFY2(bits.isEmpty(), qPrintable(ctx + "canonical order: " + bits));
        }
      }
    }
  }

  // Q8_0 rows give the same bits alone (small-M path, reading the blocks in
  // place) as in batches of 2-5, 33 and 64 (packed path); and cpu::matmul
  // dispatches to this variant.
  void q8_0_batch_invariant() {
    std::mt19937 rng(77);
    ThreadPool pool(2);
    const int M = 64;
    for (const Shape& s : {Shape{300, 1088}, Shape{53, 96}, Shape{20, 4096}}) {
      std::vector<float> q, d;
      const auto w = random_q8_0(rng, s.N, s.K, &q, &d);
      const auto x = random_vec(rng, (size_t)M * s.K);
      std::vector<float> all((size_t)M * s.N);
      QVERIFY(cpu::avx512::matmul(pool, all.data(), x.data(), w.data(), DType::Q8_0, M, s.N, s.K, nullptr));
      for (int batch : {33, 5, 4, 3, 2, 1}) {
        std::vector<float> part((size_t)M * s.N, NAN);
        for (int m0 = 0; m0 < M; m0 += batch) {
          const int mb = std::min(batch, M - m0);
          QVERIFY(cpu::avx512::matmul(pool, &part[(size_t)m0 * s.N], &x[(size_t)m0 * s.K], w.data(),
                                      DType::Q8_0, mb, s.N, s.K, nullptr));
        }
        const QString diff = first_bit_difference(part.data(), all.data(), all.size());
        QVERIFY2(diff.isEmpty(),
                 qPrintable(QString("Q8_0 N=%1 K=%2 batch %3 vs 64: ").arg(s.N).arg(s.K).arg(batch) + diff));
      }
      QCOMPARE(cpu::set_isa(cpu::Isa::Avx512), cpu::Isa::Avx512);
      std::vector<float> via((size_t)M * s.N, NAN);
      cpu::matmul(pool, via.data(), x.data(), w.data(), DType::Q8_0, M, s.N, s.K);
      const QString diff = first_bit_difference(via.data(), all.data(), all.size());
      QVERIFY2(diff.isEmpty(), qPrintable("Q8_0 via cpu::matmul: " + diff));
    }
  }

  // An empty sum (K = 0) is 0 on both paths.
  void empty_k_gives_zero() {
    ThreadPool pool(2);
    const float x = 1.0f;
    const uint16_t w = 0;
    for (int M : {1, 7}) {
      std::vector<float> y((size_t)M * 5, NAN);
      QVERIFY(cpu::avx512::matmul(pool, y.data(), &x, &w, DType::BF16, M, 5, 0, nullptr));
      for (float v : y) QCOMPARE(v, 0.0f);
      std::fill(y.begin(), y.end(), NAN);
      const float scales[5] = {1, 1, 1, 1, 1};
      QVERIFY(
          cpu::avx512::matmul_w8a8(pool, y.data(), &x, reinterpret_cast<const int8_t*>(&w), scales, M, 5, 0));
      for (float v : y) QCOMPARE(v, 0.0f);
    }
  }

  // Dtypes without an AVX-512 variant are declined, leaving y untouched.
  void unsupported_dtype_declined() {
    ThreadPool pool(1);
    std::vector<float> x(16, 1.0f), y(4, 7.0f);
    std::vector<uint8_t> w(64 * 16, 1);
    QVERIFY(!cpu::avx512::matmul(pool, y.data(), x.data(), w.data(), DType::I32, 1, 4, 16, nullptr));
    QCOMPARE(y[0], 7.0f);
    // A Q8_0 row must be whole blocks of 32.
    QVERIFY(!cpu::avx512::matmul(pool, y.data(), x.data(), w.data(), DType::Q8_0, 1, 4, 16, nullptr));
    QCOMPARE(y[0], 7.0f);
  }

  // W8A8 equals the reference bit for bit: odd shapes, K tails that are not
  // multiples of 64, every int8 weight value (-128 included), an all-zero
  // activation row, and rows with very different magnitudes.
  void w8a8_equals_reference() {
    std::mt19937 rng(7);
    for (int threads : {1, 2, 3}) {
      ThreadPool pool(threads);
      for (const Shape& s :
           {Shape{37, 75}, Shape{101, 530}, Shape{13, 1100}, Shape{211, 19}, Shape{64, 256}}) {
        std::vector<float> scales;
        const auto w = random_i8_weights(rng, s.N, s.K, &scales);
        for (int M : kMs) {
          auto x = scaled_rows(rng, M, s.K);
          std::vector<float> got((size_t)M * s.N, NAN), want((size_t)M * s.N);
          QVERIFY(cpu::avx512::matmul_w8a8(pool, got.data(), x.data(), w.data(), scales.data(), M, s.N, s.K));
          ref::matmul_w8a8(want.data(), x.data(), w.data(), scales.data(), M, s.N, s.K);
          const QString diff = first_bit_difference(got.data(), want.data(), got.size());
          QVERIFY2(diff.isEmpty(),
                   qPrintable(QString("M=%1 N=%2 K=%3 threads=%4: ").arg(M).arg(s.N).arg(s.K).arg(threads) +
                              diff));
        }
      }
    }
  }

  // W8A24: bit-equal to ref::matmul_w8a24 for every M and thread count,
  // with every int8 weight value, rows of very different magnitudes, an
  // all-zero row, a row holding +-amax itself (every digit +-127), and rows
  // with a NaN or an infinity (all outputs NaN).
  void w8a24_equals_reference() {
    std::mt19937 rng(24);
    for (int threads : {1, 2, 3}) {
      ThreadPool pool(threads);
      for (const Shape& s : {Shape{37, 75}, Shape{101, 530}, Shape{13, 1100}, Shape{211, 19}, Shape{64, 256},
                             Shape{9, 4200}}) {
        std::vector<float> scales;
        const auto w = random_i8_weights(rng, s.N, s.K, &scales);
        for (int M : kMs) {
          auto x = scaled_rows(rng, M, s.K);
          if (M >= 4) {  // row 2: +-amax present; row 3: a NaN
            x[(size_t)2 * s.K] = 3.0f;
            x[(size_t)2 * s.K + s.K - 1] = -3.0f;
            x[(size_t)3 * s.K + s.K / 2] = NAN;
          }
          if (M >= 5) x[(size_t)4 * s.K] = -INFINITY;  // row 4: an infinity
          std::vector<float> got((size_t)M * s.N, 1.0f), want((size_t)M * s.N);
          QVERIFY(
              cpu::avx512::matmul_w8a24(pool, got.data(), x.data(), w.data(), scales.data(), M, s.N, s.K));
          ref::matmul_w8a24(want.data(), x.data(), w.data(), scales.data(), M, s.N, s.K);
          const QString ctx = QString("M=%1 N=%2 K=%3 threads=%4: ").arg(M).arg(s.N).arg(s.K).arg(threads);
          const QString rows = check_edge_rows(got, want, M, s.N);
          QVERIFY2(rows.isEmpty(), qPrintable(ctx + rows));
          const QString diff = first_bit_difference(got.data(), want.data(), got.size());
          QVERIFY2(diff.isEmpty(), qPrintable(ctx + diff));
        }
      }
    }
  }

  // The 24-bit activations cost about what F32 arithmetic does: against the
  // exact dot product (double), with a 40x outlier in every row, W8A24's
  // largest error is within 10x the F32-activation kernel's (measured: 6.2e-4
  // vs 1.1e-4, outputs of rms ~100), W8A8's some 10^5x larger (52; checked
  // too, so the test notices if the 24-bit path loses precision).
  void w8a24_is_as_close_as_f32() {
    std::mt19937 rng(2424);
    ThreadPool pool(2);
    const int M = 8, N = 64, K = 2048;
    std::vector<int8_t> w((size_t)N * K);
    for (auto& b : w) b = (int8_t)(rng() & 0xff);
    const auto scales = random_vec(rng, N, 0.001f, 0.05f);
    auto x = random_vec(rng, (size_t)M * K);
    for (int m = 0; m < M; ++m) x[(size_t)m * K + m] = 40.0f;  // an outlier per row, as residual streams have
    std::vector<float> fma((size_t)M * N), a24((size_t)M * N), a8((size_t)M * N);
    QVERIFY(cpu::avx512::matmul(pool, fma.data(), x.data(), w.data(), DType::I8, M, N, K, scales.data()));
    QVERIFY(cpu::avx512::matmul_w8a24(pool, a24.data(), x.data(), w.data(), scales.data(), M, N, K));
    QVERIFY(cpu::avx512::matmul_w8a8(pool, a8.data(), x.data(), w.data(), scales.data(), M, N, K));
    const auto exact = exact_outputs(x, std::vector<float>(w.begin(), w.end()), scales, M, N, K);
    const double e_fma = max_error(fma, exact), e24 = max_error(a24, exact), e8 = max_error(a8, exact);
    qInfo("max |error| vs the exact dot: F32 FMA %.3g, W8A24 %.3g, W8A8 %.3g", e_fma, e24, e8);
    QVERIFY2(e24 <= 10 * e_fma, qPrintable(QString("W8A24 %1 vs F32 %2").arg(e24).arg(e_fma)));
    QVERIFY2(e8 > 1000 * e_fma, qPrintable(QString("W8A8 %1 vs F32 %2").arg(e8).arg(e_fma)));
  }

  // Q8_0 W8A16: bit-equal to ref::matmul_q8_0_w16 for every M (past one
  // 64-row group too) and thread count, rows of very different magnitudes,
  // an all-zero row, a row holding +-amax, a NaN row, an infinite row, and a
  // row whose scaled values fall on halves (rounded to even). Since the
  // reference computes each row alone, a row gives the same bits in any batch.
  void q8_0_w16_equals_reference() {
    std::mt19937 rng(1616);
    const Shape shapes[] = {{37, 96}, {101, 544}, {13, 1120}, {211, 32}, {19, 2048}, {9, 5632}};
    for (int threads : {1, 2, 3}) {
      ThreadPool pool(threads);
      for (const Shape& s : shapes) {
        std::vector<float> q, d;
        const auto w = random_q8_0(rng, s.N, s.K, &q, &d);
        for (int M : {1, 2, 3, 4, 5, 7, 16, 33, 64, 70}) {
          auto x = scaled_rows(rng, M, s.K);
          if (M >= 4) {  // row 2: +-amax present; row 3: a NaN
            x[(size_t)2 * s.K] = 3.0f;
            x[(size_t)2 * s.K + s.K - 1] = -3.0f;
            x[(size_t)3 * s.K + s.K / 2] = NAN;
          }
          if (M >= 5) x[(size_t)4 * s.K] = -INFINITY;  // row 4: an infinity
          if (M >= 6) {  // row 5: amax 32767, so x * inv = x, and the halves must round to even
            float* r = &x[(size_t)5 * s.K];
            for (int k = 0; k < s.K; ++k) r[k] = (float)((k % 9) - 4) + 0.5f;
            r[0] = 32767.0f;
          }
          if (M >= 7) {  // row 6: so small that 32767 / amax overflows: a zero row, as the reference says
            float* r = &x[(size_t)6 * s.K];
            for (int k = 0; k < s.K; ++k) r[k] = (k % 3 - 1) * 1e-36f;
          }
          std::vector<float> got((size_t)M * s.N, 1.0f), want((size_t)M * s.N);
          QVERIFY(cpu::avx512::matmul_q8_0_w16(pool, got.data(), x.data(), w.data(), M, s.N, s.K));
          ref::matmul_q8_0_w16(want.data(), x.data(), w.data(), M, s.N, s.K);
          const QString ctx = QString("M=%1 N=%2 K=%3 threads=%4: ").arg(M).arg(s.N).arg(s.K).arg(threads);
          const QString rows = check_edge_rows(got, want, M, s.N);
          QVERIFY2(rows.isEmpty(), qPrintable(ctx + rows));
          if (M >= 7)
            for (int n = 0; n < s.N; ++n) QCOMPARE(got[(size_t)6 * s.N + n], 0.0f);
          const QString diff = first_bit_difference(got.data(), want.data(), got.size());
          QVERIFY2(diff.isEmpty(), qPrintable(ctx + diff));
        }
      }
    }
  }

  // The single-row path (one decode sequence) on its own edge rows: zero,
  // NaN, infinite, too small for the scale, and half-way values.
  void q8_0_w16_single_row_edges() {
    std::mt19937 rng(1618);
    ThreadPool pool(2);
    const int N = 21, K = 96;
    std::vector<float> q, d;
    const auto w = random_q8_0(rng, N, K, &q, &d);
    for (int c = 0; c < 5; ++c) {
      std::vector<float> x = random_vec(rng, K);
      if (c == 0) std::fill(x.begin(), x.end(), 0.0f);
      if (c == 1) x[7] = NAN;
      if (c == 2) x[K - 1] = INFINITY;
      if (c == 3)
        for (int k = 0; k < K; ++k) x[k] = (k % 3 - 1) * 1e-36f;
      if (c == 4) {
        for (int k = 0; k < K; ++k) x[k] = (float)((k % 7) - 3) + 0.5f;
        x[0] = -32767.0f;
      }
      std::vector<float> got(N, 1.0f), want(N);
      QVERIFY(cpu::avx512::matmul_q8_0_w16(pool, got.data(), x.data(), w.data(), 1, N, K));
      ref::matmul_q8_0_w16(want.data(), x.data(), w.data(), 1, N, K);
      for (int n = 0; n < N; ++n) {
        if (c == 1 || c == 2) {
          QVERIFY2(std::isnan(got[n]) && std::isnan(want[n]),
                   qPrintable(QString("case %1: NaN expected").arg(c)));
        } else if (c == 0 || c == 3) {
          QCOMPARE(got[n], 0.0f);
          QCOMPARE(want[n], 0.0f);
        }
      }
      if (c == 4) {
        const QString diff = first_bit_difference(got.data(), want.data(), got.size());
        QVERIFY2(diff.isEmpty(), qPrintable("half-way row: " + diff));
      }
    }
  }

  // Against the exact dot product (double) of the F32 activations and the
  // dequantized weights, the 16-bit activations add at most half a step
  // (xs / 2) per weight, times its |value|: every output must be within that
  // bound plus F32's own rounding (kRtol), with a 40x outlier in each row.
  // An 8-bit rounding would break the bound; measured worst errors: W8A16
  // 0.115, the F32 path 5.5e-5, on outputs of rms 121.
  void q8_0_w16_error_is_bounded() {
    std::mt19937 rng(1617);
    ThreadPool pool(2);
    const int M = 8, N = 64, K = 2048, nb = K / kQ8_0BlockSize;
    std::vector<float> q, d;
    const auto w = random_q8_0(rng, N, K, &q, &d);
    auto x = random_vec(rng, (size_t)M * K);
    for (int m = 0; m < M; ++m) x[(size_t)m * K + m] = 40.0f;  // an outlier per row, as residual streams have
    std::vector<float> v((size_t)N * K);
    for (int n = 0; n < N; ++n)
      for (int k = 0; k < K; ++k) v[(size_t)n * K + k] = q[(size_t)n * K + k] * d[(size_t)n * nb + k / 32];
    const auto exact = exact_outputs(x, v, std::vector<float>(N, 1.0f), M, N, K);
    std::vector<float> fma((size_t)M * N), w16((size_t)M * N);
    QVERIFY(cpu::avx512::matmul(pool, fma.data(), x.data(), w.data(), DType::Q8_0, M, N, K, nullptr));
    QVERIFY(cpu::avx512::matmul_q8_0_w16(pool, w16.data(), x.data(), w.data(), M, N, K));
    double rms = 0;
    for (double e : exact) rms += e * e;
    rms = std::sqrt(rms / exact.size());
    for (int m = 0; m < M; ++m) {
      float amax = 0;
      for (int k = 0; k < K; ++k) amax = std::max(amax, std::fabs(x[(size_t)m * K + k]));
      const double half_step = 0.5 * amax / ref::kA16Max;
      for (int n = 0; n < N; ++n) {
        double l1 = 0;
        for (int k = 0; k < K; ++k) l1 += std::fabs(v[(size_t)n * K + k]);
        const size_t i = (size_t)m * N + n;
        const double bound = half_step * l1 + kRtol * (std::fabs(exact[i]) + rms);
        QVERIFY2(
            std::fabs(w16[i] - exact[i]) <= bound,
            qPrintable(
                QString("m=%1 n=%2: |%3 - %4| > %5").arg(m).arg(n).arg(w16[i]).arg(exact[i]).arg(bound)));
      }
    }
    qInfo("max |error| vs the exact dot: F32 FMA %.3g, W8A16 %.3g (outputs rms %.3g)", max_error(fma, exact),
          max_error(w16, exact), rms);
  }

  // FP8 through BF16 dot products, every M, odd shapes, 1-3 threads: close
  // to the reference and bit-equal to the scalar model of its order (so a
  // row gives the same bits alone and in any batch).
  void fp8_dpbf16_matches_reference() {
    std::mt19937 rng(808);
    // kShapes, plus K a multiple of the 64-weight group and K = 4096 (the
    // first eight-row M = 1 case) with fewer rows than the tile.
    std::vector<Shape> shapes(std::begin(kShapes), std::end(kShapes));
    shapes.insert(shapes.end(), {{7, 64}, {19, 1024}, {5, 4096}});
    for (int threads : {1, 2, 3}) {
      ThreadPool pool(threads);
      for (const Shape& s : shapes) {
        for (DType t : {DType::F8_E4M3, DType::F8_E5M2}) {
          std::vector<float> v;
          const auto w = random_fp8(rng, t, (size_t)s.N * s.K, &v);
          const auto scales = random_vec(rng, s.N, 0.001f, 0.05f);
          for (int M : kMs) {
            const auto x = scaled_rows(rng, M, s.K);
            std::vector<float> got((size_t)M * s.N, NAN);
            if (!cpu::avx512::matmul_fp8_dpbf16(pool, got.data(), x.data(), w.data(), t, scales.data(), M,
                                                s.N, s.K))
              QSKIP("this CPU lacks AVX-512 VBMI: the BF16 dot-product FP8 path cannot run here");
            const QString e = check_scaled(got, x, w.data(), t, v, scales, M, s, kRtolDp, dpbf16_dot);
            QVERIFY2(e.isEmpty(), qPrintable(where(t, " dpbf16", M, s, threads) + e));
          }
        }
      }
    }
  }

  // Two BF16 per activation keep 16 significant bits: against the exact dot
  // product, with a 40x outlier in every row, the error stays within 10x
  // the F32-FMA path's (measured 7.7e-4 vs 2.6e-4, outputs of rms 154), far
  // below what rounding the weights to FP8 costs.
  void fp8_dpbf16_is_close_to_f32() {
    std::mt19937 rng(4848);
    ThreadPool pool(2);
    const int M = 8, N = 64, K = 2048;
    std::vector<float> v;
    const auto w = random_fp8(rng, DType::F8_E4M3, (size_t)N * K, &v);
    const auto scales = random_vec(rng, N, 0.001f, 0.05f);
    auto x = random_vec(rng, (size_t)M * K);
    for (int m = 0; m < M; ++m) x[(size_t)m * K + m] = 40.0f;
    std::vector<float> fma((size_t)M * N), dp((size_t)M * N);
    QVERIFY(
        cpu::avx512::matmul(pool, fma.data(), x.data(), w.data(), DType::F8_E4M3, M, N, K, scales.data()));
    if (!cpu::avx512::matmul_fp8_dpbf16(pool, dp.data(), x.data(), w.data(), DType::F8_E4M3, scales.data(), M,
                                        N, K))
      QSKIP("this CPU lacks AVX-512 VBMI: the BF16 dot-product FP8 path cannot run here");
    const auto exact = exact_outputs(x, v, scales, M, N, K);
    const double e_fma = max_error(fma, exact), e_dp = max_error(dp, exact);
    double rms = 0;
    for (double e : exact) rms += e * e;
    rms = std::sqrt(rms / (M * N));
    qInfo("max |error| vs the exact dot (output rms %.3g): F32 FMA %.3g, BF16 dot products %.3g", rms, e_fma,
          e_dp);
    QVERIFY2(e_dp <= 10 * e_fma, qPrintable(QString("dpbf16 %1 vs F32 %2").arg(e_dp).arg(e_fma)));
    QVERIFY2(e_dp <= 1e-4 * rms, qPrintable(QString("dpbf16 %1, rms %2").arg(e_dp).arg(rms)));
  }

  // The BF16 dot-product path at the edges: an infinite activation gives an
  // infinite product, and codes with the sign bit set decode negative. (NaN
  // codes: e4m3_nan_code_gives_nan.)
  void fp8_dpbf16_inf_and_sign() {
    ThreadPool pool(2);
    if (!__builtin_cpu_supports("avx512vbmi"))
      QSKIP("this CPU lacks AVX-512 VBMI: the BF16 dot-product FP8 path cannot run here");
    // An infinite activation gives infinite products (l is 0, not inf - inf).
    for (float inf : {INFINITY, -INFINITY}) {
      const uint8_t code = 0x38;  // 1.0 in E4M3
      const float s1 = 1.0f;
      float y1 = 0.0f;
      QVERIFY(cpu::avx512::matmul_fp8_dpbf16(pool, &y1, &inf, &code, DType::F8_E4M3, &s1, 1, 1, 1));
      QCOMPARE(y1, inf);
    }
    // One weight, one activation: the sign bit decodes as negative.
    for (DType t : {DType::F8_E4M3, DType::F8_E5M2}) {
      const uint8_t code = 0xC0;  // -2 in E4M3, -2 in E5M2
      const float x1 = 1.5f, s1 = 1.0f;
      float y1 = 0.0f;
      QVERIFY(cpu::avx512::matmul_fp8_dpbf16(pool, &y1, &x1, &code, t, &s1, 1, 1, 1));
      const float want = x1 * (t == DType::F8_E4M3 ? fp8_e4m3_to_fp32(code) : fp8_e5m2_to_fp32(code));
      QCOMPARE(y1, want);
      QVERIFY(want < 0);
    }
  }

  // cpu::matmul and cpu::matmul_w8a8 run these variants when the active ISA
  // is AVX-512: same bits as calling them directly.
  void dispatch_uses_avx512() {
    QCOMPARE(cpu::set_isa(cpu::Isa::Avx512), cpu::Isa::Avx512);
    std::mt19937 rng(5);
    ThreadPool pool(2);
    const int N = 45, K = 600;
    for (int M : {1, 3, 16}) {
      const auto x = random_vec(rng, (size_t)M * K);
      for (DType t : kFloatTypes) {
        std::vector<float> exact;
        const auto w = encode(random_vec(rng, (size_t)N * K), t, &exact);
        std::vector<float> direct((size_t)M * N), via((size_t)M * N, NAN);
        QVERIFY(cpu::avx512::matmul(pool, direct.data(), x.data(), w.data(), t, M, N, K, nullptr));
        cpu::matmul(pool, via.data(), x.data(), w.data(), t, M, N, K);
        const QString diff = first_bit_difference(via.data(), direct.data(), via.size());
        QVERIFY2(diff.isEmpty(), qPrintable(QString("%1 M=%2: ").arg(dtype_name(t)).arg(M) + diff));
      }
      std::vector<int8_t> w((size_t)N * K);
      for (size_t i = 0; i < w.size(); ++i) w[i] = (int8_t)(rng() & 0xff);
      const auto scales = random_vec(rng, N, 0.001f, 0.05f);
      std::vector<float> direct((size_t)M * N), via((size_t)M * N, NAN);
      QVERIFY(cpu::avx512::matmul_w8a8(pool, direct.data(), x.data(), w.data(), scales.data(), M, N, K));
      cpu::matmul_w8a8(pool, via.data(), x.data(), w.data(), scales.data(), M, N, K);
      const QString diff = first_bit_difference(via.data(), direct.data(), via.size());
      QVERIFY2(diff.isEmpty(), qPrintable(QString("W8A8 M=%1: ").arg(M) + diff));
      std::vector<float> direct24((size_t)M * N), via24((size_t)M * N, NAN);
      QVERIFY(cpu::avx512::matmul_w8a24(pool, direct24.data(), x.data(), w.data(), scales.data(), M, N, K));
      QVERIFY(cpu::matmul_w8a24(pool, via24.data(), x.data(), w.data(), scales.data(), M, N, K));
      const QString diff24 = first_bit_difference(via24.data(), direct24.data(), via24.size());
      QVERIFY2(diff24.isEmpty(), qPrintable(QString("W8A24 M=%1: ").arg(M) + diff24));
      std::vector<float> qv, dv;
      const auto wq = random_q8_0(rng, N, 608, &qv, &dv);
      const auto xq = random_vec(rng, (size_t)M * 608);
      std::vector<float> direct16((size_t)M * N), via16((size_t)M * N, NAN);
      QVERIFY(cpu::avx512::matmul_q8_0_w16(pool, direct16.data(), xq.data(), wq.data(), M, N, 608));
      QVERIFY(cpu::matmul_q8_0_w16(pool, via16.data(), xq.data(), wq.data(), M, N, 608));
      const QString diff16 = first_bit_difference(via16.data(), direct16.data(), via16.size());
      QVERIFY2(diff16.isEmpty(), qPrintable(QString("Q8_0 W8A16 M=%1: ").arg(M) + diff16));
    }
  }

  // Half-way cases of the activation rounding: x * (127 / amax) landing on
  // .5 must round to even, as nearbyint does.
  void w8a8_rounds_half_to_even() {
    ThreadPool pool(1);
    const int K = 70, N = 3;
    std::vector<float> x(K);
    for (int k = 0; k < K; ++k) x[k] = (float)((k % 9) - 4) * 0.5f;  // amax 2 -> inv 63.5: many exact halves
    x[5] = 2.0f;
    std::vector<int8_t> w((size_t)N * K);
    for (size_t i = 0; i < w.size(); ++i) w[i] = (int8_t)((int)(i * 37 % 255) - 127);
    const std::vector<float> scales = {1.0f, 0.5f, 0.25f};
    std::vector<float> got(N), want(N);
    QVERIFY(cpu::avx512::matmul_w8a8(pool, got.data(), x.data(), w.data(), scales.data(), 1, N, K));
    ref::matmul_w8a8(want.data(), x.data(), w.data(), scales.data(), 1, N, K);
    const QString diff = first_bit_difference(got.data(), want.data(), N);
    QVERIFY2(diff.isEmpty(), qPrintable(diff));
  }
};

QTEST_APPLESS_MAIN(TestMatmulAvx512)
#include "test_matmul_avx512.moc"
