// Matmul (GEMM/GEMV) and embedding lookup for every weight dtype.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/cpu/ops.h"
#include "kernels/cpu/simd.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
namespace brisk::cpu {
namespace {
using namespace simd;

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
        _mm_prefetch(static_cast<const char*>(wr) + ((kb + k) * elem_bytes<WT>() + kPrefetchBytes),
                     _MM_HINT_T0);
      const __m256 w0 = load8<WT>(wr, kb + k), w1 = load8<WT>(wr, kb + k + 8);
      for (int m = 0; m < MR; ++m) {
        const float* xm = x + m * ldx + kb + k;
        acc[m][0] = _mm256_fmadd_ps(_mm256_loadu_ps(xm), w0, acc[m][0]);
        acc[m][1] = _mm256_fmadd_ps(_mm256_loadu_ps(xm + 8), w1, acc[m][1]);
      }
    }
    if (k + 8 <= kn) {
      const __m256 w0 = load8<WT>(wr, kb + k);
      for (int m = 0; m < MR; ++m)
        acc[m][0] = _mm256_fmadd_ps(_mm256_loadu_ps(x + m * ldx + kb + k), w0, acc[m][0]);
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
}  // namespace

void matmul(ThreadPool& pool, float* y, const float* x, const void* w, DType wt, int M, int N, int K,
            const float* row_scales) {
  (void)row_scales;
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

void embed(ThreadPool& pool, float* y, const void* table, DType wt, const int32_t* ids, int T, int D,
           const float* row_scales) {
  (void)row_scales;
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

}  // namespace brisk::cpu
#pragma GCC pop_options
