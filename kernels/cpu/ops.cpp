#include "kernels/cpu/ops.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace brisk::cpu {
namespace {

// Roughly how many multiply-adds a chunk handed to a pool thread should hold:
// below this, waking a worker costs more than it saves.
constexpr int64_t kMinWorkPerChunk = 1 << 15;

int64_t grain_for(int64_t work_per_item) {
  return std::max<int64_t>(1, kMinWorkPerChunk / std::max<int64_t>(1, work_per_item));
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float hmax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// exp(x) for 8 lanes, Cephes-style range reduction and polynomial (about 2 ulp).
// Inputs are clamped so the result stays finite above and flushes to 0 below.
inline __m256 exp256(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-88.37f)), _mm256_set1_ps(88.0f));
  __m256 fx = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f));
  fx = _mm256_floor_ps(fx);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
  __m256 y = _mm256_set1_ps(1.9875691500e-4f);
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507e-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073e-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894e-2f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459e-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201e-1f));
  y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

// ---------------------------------------------------------------------------
// Weight access. A "row pointer" points at the first element (or Q8_0 block)
// of the part of a weight row being processed; k indexes from there.

template <DType WT>
inline const void* row_ptr(const void* w, int64_t row, int64_t K, int64_t k0) {
  if constexpr (WT == DType::F32) return static_cast<const float*>(w) + row * K + k0;
  if constexpr (WT == DType::F16 || WT == DType::BF16) return static_cast<const uint16_t*>(w) + row * K + k0;
  if constexpr (WT == DType::Q8_0) return static_cast<const BlockQ8_0*>(w) + (row * K + k0) / kQ8_0BlockSize;
}

inline __m256 bf16x8_to_ps(const uint16_t* p) {
  const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}

inline __m256 q8x8_to_ps(const int8_t* q) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q))));
}

// Eight weights starting at k (k % 8 == 0), as F32. Q8_0 is scaled exactly as
// convert_row does, so both matmul paths see identical weights.
template <DType WT>
inline __m256 load8(const void* row, int64_t k) {
  if constexpr (WT == DType::Q8_0) {
    const BlockQ8_0& b = static_cast<const BlockQ8_0*>(row)[k / kQ8_0BlockSize];
    return _mm256_mul_ps(q8x8_to_ps(b.qs + k % kQ8_0BlockSize), _mm256_set1_ps(_cvtsh_ss(b.d)));
  }
  if constexpr (WT == DType::F32) return _mm256_loadu_ps(static_cast<const float*>(row) + k);
  if constexpr (WT == DType::F16)
    return _mm256_cvtph_ps(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(row) + k)));
  if constexpr (WT == DType::BF16) return bf16x8_to_ps(static_cast<const uint16_t*>(row) + k);
}

template <DType WT>
inline float load1(const void* row, int64_t k) {
  if constexpr (WT == DType::F32) return static_cast<const float*>(row)[k];
  if constexpr (WT == DType::F16) return _cvtsh_ss(static_cast<const uint16_t*>(row)[k]);
  if constexpr (WT == DType::BF16) return bf16_to_fp32(static_cast<const uint16_t*>(row)[k]);
  if constexpr (WT == DType::Q8_0) {
    const BlockQ8_0& b = static_cast<const BlockQ8_0*>(row)[k / kQ8_0BlockSize];
    return _cvtsh_ss(b.d) * (float)b.qs[k % kQ8_0BlockSize];
  }
}

// Converts n weights of a row (from a row pointer) to F32.
template <DType WT>
void convert_row(float* dst, const void* row, int64_t n) {
  int64_t k = 0;
  if constexpr (WT == DType::Q8_0) {
    const auto* blocks = static_cast<const BlockQ8_0*>(row);
    for (; k + kQ8_0BlockSize <= n; k += kQ8_0BlockSize) {
      const BlockQ8_0& b = blocks[k / kQ8_0BlockSize];
      const __m256 d = _mm256_set1_ps(_cvtsh_ss(b.d));
      for (int s = 0; s < 4; ++s)
        _mm256_storeu_ps(dst + k + 8 * s, _mm256_mul_ps(q8x8_to_ps(b.qs + 8 * s), d));
    }
  } else {
    for (; k + 8 <= n; k += 8) _mm256_storeu_ps(dst + k, load8<WT>(row, k));
  }
  for (; k < n; ++k) dst[k] = load1<WT>(row, k);
}

// ---------------------------------------------------------------------------
// Matmul, small M (decode).

// Software prefetch distance along the weight stream, used when M > 1: the
// core then spends longer per cache line and the hardware prefetcher alone
// fell behind (M = 4 ran ~25% faster from DRAM with it; 2 KiB measured best
// of 0.5-4 KiB). M = 1 already streams at DRAM bandwidth without it.
constexpr int64_t kPrefetchBytes = 2048;

template <DType WT>
constexpr int64_t elem_bytes() {
  return WT == DType::F32 ? 4 : 2;
}

// Every dot product of both matmul paths sums in one canonical order, so a
// row's result does not depend on how many rows share the batch (batched
// generation then equals generation alone, bit for bit): K is cut into
// blocks of kKc; within a block two 8-lane FMA chains take alternate groups
// of 8, then (c0 + c1), a horizontal sum, the scalar tail; block sums are
// added left to right. Two chains per row also keep enough FMAs in flight
// for the decode path to run at memory speed.
constexpr int64_t kKc = 512;  // a multiple of 32 (Q8_0 blocks)

// out[m] = x[m, 0..K) . w[0..K) for MR <= 4 activation rows against one
// weight row. Callers walk the weights one row at a time, strictly in address
// order: a single sequential stream, which the hardware prefetchers follow at
// full DRAM bandwidth (reading several weight rows side by side measured
// 20-50% slower). Each weight vector is converted once for all MR rows.
template <DType WT, int MR>
inline void dot_rows(const float* x, int64_t ldx, const void* wr, int64_t K, float (&out)[MR]) {
  for (int m = 0; m < MR; ++m) out[m] = 0.0f;
  for (int64_t kb = 0; kb < K; kb += kKc) {
    const int64_t kn = std::min(kKc, K - kb);
    __m256 acc[MR][2];
    for (int m = 0; m < MR; ++m) acc[m][0] = acc[m][1] = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 16 <= kn; k += 16) {
      if constexpr (MR > 1)
        _mm_prefetch(static_cast<const char*>(wr) + ((kb + k) * elem_bytes<WT>() + kPrefetchBytes), _MM_HINT_T0);
      const __m256 w0 = load8<WT>(wr, kb + k), w1 = load8<WT>(wr, kb + k + 8);
      for (int m = 0; m < MR; ++m) {
        const float* xm = x + m * ldx + kb + k;
        acc[m][0] = _mm256_fmadd_ps(_mm256_loadu_ps(xm), w0, acc[m][0]);
        acc[m][1] = _mm256_fmadd_ps(_mm256_loadu_ps(xm + 8), w1, acc[m][1]);
      }
    }
    if (k + 8 <= kn) {
      const __m256 w0 = load8<WT>(wr, kb + k);
      for (int m = 0; m < MR; ++m) acc[m][0] = _mm256_fmadd_ps(_mm256_loadu_ps(x + m * ldx + kb + k), w0, acc[m][0]);
      k += 8;
    }
    for (int m = 0; m < MR; ++m) {
      float s = hsum(_mm256_add_ps(acc[m][0], acc[m][1]));
      // Explicit fma: the compiler may not contract one path and not the other.
      for (int64_t kk = k; kk < kn; ++kk) s = std::fma(x[m * ldx + kb + kk], load1<WT>(wr, kb + kk), s);
      out[m] = kb == 0 ? s : out[m] + s;
    }
  }
}

template <DType WT, int MR>
void matmul_small_m(float* y, const float* x, const void* w, int N, int K, int64_t n0, int64_t n1) {
  for (int64_t n = n0; n < n1; ++n) {
    float out[MR];
    dot_rows<WT, MR>(x, K, row_ptr<WT>(w, n, K, 0), K, out);
    for (int m = 0; m < MR; ++m) y[m * (int64_t)N + n] = out[m];
  }
}

// ---------------------------------------------------------------------------
// Matmul, larger M (prefill): weights are converted to F32 one L2-sized block
// at a time ([nb_max rows, kc_max]) and every 2-row tile of x passes over the
// block, so each weight is read from memory and converted once per call.
// The micro-kernel computes MR x NR dot products between MR activation rows
// (stride ldx) and NR packed weight rows (stride ldw) over k in [0, kn).

constexpr int kTileM = 2;

// NR so that the MR x NR x 2 accumulators plus the weight and x vectors fit
// the 16 ymm registers.
template <int MR>
constexpr int weight_rows_per_tile() {
  return MR == 1 ? 4 : 3;
}

// The canonical order (see kKc) over one k block of packed F32 weights.
template <int MR, int NR>
inline void micro_kernel(const float* x, int64_t ldx, const float* w, int64_t ldw, int64_t kn,
                         float (&out)[MR][NR]) {
  __m256 acc[MR][NR][2];
  for (int m = 0; m < MR; ++m)
    for (int n = 0; n < NR; ++n) acc[m][n][0] = acc[m][n][1] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= kn; k += 16) {
    for (int g = 0; g < 2; ++g) {
      __m256 wv[NR];
      for (int n = 0; n < NR; ++n) wv[n] = _mm256_loadu_ps(w + n * ldw + k + 8 * g);
      for (int m = 0; m < MR; ++m) {
        const __m256 xv = _mm256_loadu_ps(x + m * ldx + k + 8 * g);
        for (int n = 0; n < NR; ++n) acc[m][n][g] = _mm256_fmadd_ps(xv, wv[n], acc[m][n][g]);
      }
    }
  }
  if (k + 8 <= kn) {
    __m256 wv[NR];
    for (int n = 0; n < NR; ++n) wv[n] = _mm256_loadu_ps(w + n * ldw + k);
    for (int m = 0; m < MR; ++m) {
      const __m256 xv = _mm256_loadu_ps(x + m * ldx + k);
      for (int n = 0; n < NR; ++n) acc[m][n][0] = _mm256_fmadd_ps(xv, wv[n], acc[m][n][0]);
    }
    k += 8;
  }
  for (int m = 0; m < MR; ++m) {
    for (int n = 0; n < NR; ++n) {
      float s = hsum(_mm256_add_ps(acc[m][n][0], acc[m][n][1]));
      for (int64_t kk = k; kk < kn; ++kk) s = std::fma(x[m * ldx + kk], w[n * ldw + kk], s);
      out[m][n] = s;
    }
  }
}

// y[0..MR, 0..nn) (+)= x-tile * packed-block^T for one k block.
template <int MR>
void tile_rows(float* y, int64_t ldy, const float* x, int64_t ldx, const float* w, int64_t ldw, int64_t nn,
               int64_t kn, bool accumulate) {
  auto store = [&](int64_t n, int m, float v) {
    float& dst = y[m * ldy + n];
    dst = accumulate ? dst + v : v;
  };
  constexpr int NR = weight_rows_per_tile<MR>();
  int64_t n = 0;
  for (; n + NR <= nn; n += NR) {
    float out[MR][NR];
    micro_kernel<MR, NR>(x, ldx, w + n * ldw, ldw, kn, out);
    for (int m = 0; m < MR; ++m)
      for (int j = 0; j < NR; ++j) store(n + j, m, out[m][j]);
  }
  for (; n < nn; ++n) {
    float out[MR][1];
    micro_kernel<MR, 1>(x, ldx, w + n * ldw, ldw, kn, out);
    for (int m = 0; m < MR; ++m) store(n, m, out[m][0]);
  }
}

template <DType WT>
void matmul_large_m(float* y, const float* x, const void* w, int M, int N, int K, int64_t n0, int64_t n1) {
  constexpr int64_t kc_max = kKc, nb_max = 64;
  thread_local std::vector<float> packed;
  packed.resize((size_t)(nb_max * kc_max));
  for (int64_t nb = n0; nb < n1; nb += nb_max) {
    const int64_t nn = std::min(n1, nb + nb_max) - nb;
    for (int64_t kb = 0; kb < K; kb += kc_max) {
      const int64_t kn = std::min<int64_t>(kc_max, K - kb);
      for (int64_t n = 0; n < nn; ++n)
        convert_row<WT>(packed.data() + n * kn, row_ptr<WT>(w, nb + n, K, kb), kn);
      for (int m0 = 0; m0 < M; m0 += kTileM) {
        float* yt = y + (int64_t)m0 * N + nb;
        const float* xt = x + (int64_t)m0 * K + kb;
        const bool acc = kb > 0;
        switch (std::min(kTileM, M - m0)) {
          case 2:
            tile_rows<2>(yt, N, xt, K, packed.data(), kn, nn, kn, acc);
            break;
          default:
            tile_rows<1>(yt, N, xt, K, packed.data(), kn, nn, kn, acc);
            break;
        }
      }
    }
  }
}

// Output columns [n0, n1) of y = x * W^T.
template <DType WT>
void matmul_range(float* y, const float* x, const void* w, int M, int N, int K, int64_t n0, int64_t n1) {
  switch (M) {
    case 1:
      return matmul_small_m<WT, 1>(y, x, w, N, K, n0, n1);
    case 2:
      return matmul_small_m<WT, 2>(y, x, w, N, K, n0, n1);
    case 3:
      return matmul_small_m<WT, 3>(y, x, w, N, K, n0, n1);
    case 4:
      return matmul_small_m<WT, 4>(y, x, w, N, K, n0, n1);
    default:
      return matmul_large_m<WT>(y, x, w, M, N, K, n0, n1);
  }
}

template <DType WT>
void matmul_t(ThreadPool& pool, float* y, const float* x, const void* w, int M, int N, int K) {
  // Threads split the output columns in groups of 4 weight rows, so every
  // thread streams its own contiguous slice of the weights.
  constexpr int64_t kGroup = 4;
  const int64_t groups = (N + kGroup - 1) / kGroup;
  pool.parallel_for(
      groups,
      [&](int64_t g0, int64_t g1) {
        matmul_range<WT>(y, x, w, M, N, K, g0 * kGroup, std::min<int64_t>(N, g1 * kGroup));
      },
      grain_for(kGroup * (int64_t)K * M));
}

template <DType WT>
void embed_t(ThreadPool& pool, float* y, const void* table, const int32_t* ids, int T, int D) {
  pool.parallel_for(
      T,
      [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) convert_row<WT>(y + t * D, row_ptr<WT>(table, ids[t], D, 0), D);
      },
      grain_for(D));
}

inline float dot(const float* a, const float* b, int n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
  }
  for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
  float s = hsum(_mm256_add_ps(acc0, acc1));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

// The 8 sums of a[0..7] packed into one vector: [sum(a0), ..., sum(a7)].
inline __m256 hsum8(const __m256 (&a)[8]) {
  const __m256 t0 = _mm256_hadd_ps(a[0], a[1]), t1 = _mm256_hadd_ps(a[2], a[3]);
  const __m256 t2 = _mm256_hadd_ps(a[4], a[5]), t3 = _mm256_hadd_ps(a[6], a[7]);
  const __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
  return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

// Dot products of q with 8 rows: eight independent FMA chains hide the FMA
// latency that a single dot product of a short head would be bound by.
inline __m256 dot_x8(const float* q, const float* const* k, int n) {
  __m256 acc[8];
  for (int j = 0; j < 8; ++j) acc[j] = _mm256_setzero_ps();
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 qv = _mm256_loadu_ps(q + i);
    for (int j = 0; j < 8; ++j) acc[j] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k[j] + i), acc[j]);
  }
  __m256 sums = hsum8(acc);
  if (i < n) {
    alignas(32) float tail[8];
    for (int j = 0; j < 8; ++j) {
      float t = 0.0f;
      for (int ii = i; ii < n; ++ii) t += q[ii] * k[j][ii];
      tail[j] = t;
    }
    sums = _mm256_add_ps(sums, _mm256_load_ps(tail));
  }
  return sums;
}

// acc[0..n) += sum_j p[j] * v[j][0..n) over nv rows, keeping a 64-wide slice
// of acc in registers while it sweeps the rows.
inline void accumulate_rows(float* acc, const float* p, const float* const* v, int nv, int n) {
  int d = 0;
  for (; d + 64 <= n; d += 64) {
    __m256 a[8];
    for (int c = 0; c < 8; ++c) a[c] = _mm256_loadu_ps(acc + d + 8 * c);
    for (int j = 0; j < nv; ++j) {
      const __m256 pj = _mm256_set1_ps(p[j]);
      for (int c = 0; c < 8; ++c) a[c] = _mm256_fmadd_ps(pj, _mm256_loadu_ps(v[j] + d + 8 * c), a[c]);
    }
    for (int c = 0; c < 8; ++c) _mm256_storeu_ps(acc + d + 8 * c, a[c]);
  }
  for (; d + 8 <= n; d += 8) {
    __m256 a = _mm256_loadu_ps(acc + d);
    for (int j = 0; j < nv; ++j) a = _mm256_fmadd_ps(_mm256_set1_ps(p[j]), _mm256_loadu_ps(v[j] + d), a);
    _mm256_storeu_ps(acc + d, a);
  }
  for (; d < n; ++d) {
    float a = acc[d];
    for (int j = 0; j < nv; ++j) a += p[j] * v[j][d];
    acc[d] = a;
  }
}
}  // namespace

void matmul(ThreadPool& pool, float* y, const float* x, const void* w, DType wt, int M, int N, int K) {
  switch (wt) {
    case DType::F32:
      return matmul_t<DType::F32>(pool, y, x, w, M, N, K);
    case DType::F16:
      return matmul_t<DType::F16>(pool, y, x, w, M, N, K);
    case DType::BF16:
      return matmul_t<DType::BF16>(pool, y, x, w, M, N, K);
    case DType::Q8_0:
      return matmul_t<DType::Q8_0>(pool, y, x, w, M, N, K);
    case DType::I32:
      break;
  }
  std::fill(y, y + (int64_t)M * N, NAN);  // not a weight type; make misuse visible
}

void embed(ThreadPool& pool, float* y, const void* table, DType wt, const int32_t* ids, int T, int D) {
  switch (wt) {
    case DType::F32:
      return embed_t<DType::F32>(pool, y, table, ids, T, D);
    case DType::F16:
      return embed_t<DType::F16>(pool, y, table, ids, T, D);
    case DType::BF16:
      return embed_t<DType::BF16>(pool, y, table, ids, T, D);
    case DType::Q8_0:
      return embed_t<DType::Q8_0>(pool, y, table, ids, T, D);
    case DType::I32:
      break;
  }
  std::fill(y, y + (int64_t)T * D, NAN);
}

void rmsnorm(ThreadPool& pool, float* y, const float* x, const float* w, int M, int D, float eps) {
  pool.parallel_for(
      M,
      [&](int64_t m0, int64_t m1) {
        for (int64_t m = m0; m < m1; ++m) {
          const float* xr = x + m * D;
          float* yr = y + m * D;
          const float inv = 1.0f / std::sqrt(dot(xr, xr, D) / (float)D + eps);
          const __m256 iv = _mm256_set1_ps(inv);
          int d = 0;
          for (; d + 8 <= D; d += 8)
            _mm256_storeu_ps(
                yr + d, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(xr + d), iv), _mm256_loadu_ps(w + d)));
          for (; d < D; ++d) yr[d] = xr[d] * inv * w[d];
        }
      },
      grain_for(2 * (int64_t)D));
}

void rope(ThreadPool& pool, float* x, const int32_t* pos, int T, int n_heads, int head_dim, int rot_dim,
          float theta) {
  const int pairs = rot_dim / 2;
  std::vector<double> freq(pairs);
  for (int i = 0; i < pairs; ++i) freq[i] = std::pow((double)theta, -2.0 * i / rot_dim);
  pool.parallel_for(
      T,
      [&](int64_t t0, int64_t t1) {
        thread_local std::vector<float> cs;
        cs.resize(2 * (size_t)pairs);
        for (int64_t t = t0; t < t1; ++t) {
          // Angles in double: pos * freq reaches thousands of radians, where a
          // float angle would already be off by ~1e-4.
          for (int i = 0; i < pairs; ++i) {
            const double angle = pos[t] * freq[i];
            cs[2 * i] = (float)std::cos(angle);
            cs[2 * i + 1] = (float)std::sin(angle);
          }
          for (int h = 0; h < n_heads; ++h) {
            float* v = x + (t * n_heads + h) * head_dim;
            for (int i = 0; i < pairs; ++i) {
              const float a = v[2 * i], b = v[2 * i + 1], c = cs[2 * i], s = cs[2 * i + 1];
              v[2 * i] = a * c - b * s;
              v[2 * i + 1] = a * s + b * c;
            }
          }
        }
      },
      grain_for((int64_t)n_heads * rot_dim + 16 * pairs));
}

void silu_mul(ThreadPool& pool, float* y, const float* gate, const float* up, int64_t n) {
  pool.parallel_for(
      n,
      [&](int64_t i0, int64_t i1) {
        const __m256 one = _mm256_set1_ps(1.0f);
        int64_t i = i0;
        for (; i + 8 <= i1; i += 8) {
          const __m256 g = _mm256_loadu_ps(gate + i);
          const __m256 e = exp256(_mm256_sub_ps(_mm256_setzero_ps(), g));
          const __m256 s = _mm256_div_ps(g, _mm256_add_ps(one, e));
          _mm256_storeu_ps(y + i, _mm256_mul_ps(s, _mm256_loadu_ps(up + i)));
        }
        for (; i < i1; ++i) y[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
      },
      grain_for(16));
}

void add(ThreadPool& pool, float* y, const float* a, const float* b, int64_t n) {
  pool.parallel_for(
      n,
      [&](int64_t i0, int64_t i1) {
        int64_t i = i0;
        for (; i + 8 <= i1; i += 8)
          _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
        for (; i < i1; ++i) y[i] = a[i] + b[i];
      },
      grain_for(1));
}

void kv_write(ThreadPool& pool, float* k_cache, float* v_cache, const float* k, const float* v,
              const int32_t* slots, int T, int kv_width) {
  pool.parallel_for(
      T,
      [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) {
          const int64_t slot = slots[t];
          std::memcpy(k_cache + slot * kv_width, k + t * kv_width, sizeof(float) * kv_width);
          std::memcpy(v_cache + slot * kv_width, v + t * kv_width, sizeof(float) * kv_width);
        }
      },
      grain_for(2 * (int64_t)kv_width));
}

void paged_attention(ThreadPool& pool, float* out, const float* q, const float* k_cache, const float* v_cache,
                     const PagedAttentionArgs& a) {
  const int D = a.head_dim;
  const int group = a.n_heads / a.n_kv_heads;
  const int64_t q_width = (int64_t)a.n_heads * D;
  const int64_t kv_width = (int64_t)a.n_kv_heads * D;
  const int total_rows = a.query_start[a.num_seqs];
  if (total_rows <= 0) return;

  std::vector<int32_t> row_seq(total_rows);
  int64_t work = 0;  // multiply-adds, to decide whether threads are worth waking
  for (int s = 0; s < a.num_seqs; ++s) {
    for (int r = a.query_start[s]; r < a.query_start[s + 1]; ++r) row_seq[r] = s;
    const int64_t q_len = a.query_start[s + 1] - a.query_start[s];
    work += q_len * (a.seq_lens[s] - (q_len - 1) / 2) * 2 * q_width;
  }
  // One work item is a query row and a KV head with all the query heads that
  // share it, so each key and value row is read once per group.
  const int64_t items = (int64_t)total_rows * a.n_kv_heads;
  const int64_t grain = work < kMinWorkPerChunk ? items : 1;

  pool.parallel_for(
      items,
      [&](int64_t i0, int64_t i1) {
        // Keys are processed in blocks: scores for a block first, then one
        // rescale of the running sums per block instead of per key.
        constexpr int kKeyBlock = 64;
        thread_local std::vector<float> buf;
        thread_local std::vector<const float*> rows;
        buf.resize((size_t)group * (kKeyBlock + D + 2));
        rows.resize(2 * kKeyBlock);
        float* scores = buf.data();                 // [group][kKeyBlock]
        float* acc = scores + group * kKeyBlock;    // [group][D]
        float* run_max = acc + (int64_t)group * D;  // [group]
        float* run_sum = run_max + group;           // [group]
        const float** krow = rows.data();
        const float** vrow = krow + kKeyBlock;
        for (int64_t i = i0; i < i1; ++i) {
          // Later rows of a prefill attend to more keys; handing them out
          // first lets the short ones fill in at the end and balances threads.
          const int64_t item = items - 1 - i;
          const int64_t row = item / a.n_kv_heads;
          const int kvh = (int)(item % a.n_kv_heads);
          const int s = row_seq[row];
          const int q_len = a.query_start[s + 1] - a.query_start[s];
          const int n_keys = a.seq_lens[s] - q_len + (int)(row - a.query_start[s]) + 1;
          const int32_t* table = a.block_tables + (int64_t)s * a.max_blocks_per_seq;
          const float* qg = q + row * q_width + (int64_t)kvh * group * D;
          std::fill(acc, acc + (int64_t)group * D, 0.0f);
          std::fill(run_max, run_max + group, -INFINITY);
          std::fill(run_sum, run_sum + group, 0.0f);

          for (int t0 = 0; t0 < n_keys; t0 += kKeyBlock) {
            const int nt = std::min(kKeyBlock, n_keys - t0);
            for (int j = 0; j < nt; ++j) {
              const int t = t0 + j;
              const int64_t slot = (int64_t)table[t / a.block_size] * a.block_size + t % a.block_size;
              const int64_t off = slot * kv_width + (int64_t)kvh * D;
              krow[j] = k_cache + off;
              vrow[j] = v_cache + off;
            }
            const __m256 scale = _mm256_set1_ps(a.scale);
            int j = 0;
            for (; j + 8 <= nt; j += 8)
              for (int g = 0; g < group; ++g)
                _mm256_storeu_ps(scores + g * kKeyBlock + j,
                                 _mm256_mul_ps(scale, dot_x8(qg + (int64_t)g * D, krow + j, D)));
            for (; j < nt; ++j)
              for (int g = 0; g < group; ++g)
                scores[g * kKeyBlock + j] = a.scale * dot(qg + (int64_t)g * D, krow[j], D);

            for (int g = 0; g < group; ++g) {
              float* sg = scores + g * kKeyBlock;
              __m256 mv = _mm256_set1_ps(-INFINITY);
              j = 0;
              for (; j + 8 <= nt; j += 8) mv = _mm256_max_ps(mv, _mm256_loadu_ps(sg + j));
              float block_max = hmax(mv);
              for (; j < nt; ++j) block_max = std::max(block_max, sg[j]);
              const float new_max = std::max(run_max[g], block_max);
              // exp(-inf) = 0 on the first block, when acc and run_sum are 0 anyway.
              const float correction = std::exp(run_max[g] - new_max);
              run_max[g] = new_max;
              const __m256 mx = _mm256_set1_ps(new_max);
              __m256 sv = _mm256_setzero_ps();
              j = 0;
              for (; j + 8 <= nt; j += 8) {
                const __m256 p = exp256(_mm256_sub_ps(_mm256_loadu_ps(sg + j), mx));
                _mm256_storeu_ps(sg + j, p);
                sv = _mm256_add_ps(sv, p);
              }
              float block_sum = hsum(sv);
              for (; j < nt; ++j) {
                sg[j] = std::exp(sg[j] - new_max);
                block_sum += sg[j];
              }
              run_sum[g] = run_sum[g] * correction + block_sum;
              float* ag = acc + (int64_t)g * D;
              if (correction != 1.0f)
                for (int d = 0; d < D; ++d) ag[d] *= correction;
              accumulate_rows(ag, sg, vrow, nt, D);
            }
          }
          for (int g = 0; g < group; ++g) {
            float* og = out + row * q_width + ((int64_t)kvh * group + g) * D;
            const float inv = 1.0f / run_sum[g];
            for (int d = 0; d < D; ++d) og[d] = acc[(int64_t)g * D + d] * inv;
          }
        }
      },
      grain);
}

}  // namespace brisk::cpu
