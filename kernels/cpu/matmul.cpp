// Matmul (GEMM/GEMV), W8A8 matmul and embedding lookup for every weight dtype:
// AVX2 kernels, and the dispatch between them, the AVX-512 variants
// (matmul_avx512.cpp) and the portable path (the reference split over threads).
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/cpu/isa.h"
#include "kernels/cpu/matmul_avx512.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/simd.h"

namespace brisk::cpu {
namespace {

// Per-thread scratch; a slot per concurrent use. Defined outside the AVX2
// region below so that no standard-library code gets instantiated for that ISA.
enum ScratchSlot { kPacked, kRowScales, kSlots };

float* scratch_f32(ScratchSlot slot, size_t n) {
  thread_local std::vector<float> v[kSlots];
  if (v[slot].size() < n) v[slot].resize(n);
  return v[slot].data();
}

int8_t* scratch_i8(size_t n) {
  thread_local std::vector<int8_t> v;
  if (v.size() < n) v.resize(n);
  return v.data();
}

}  // namespace
}  // namespace brisk::cpu

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
namespace brisk::cpu::avx2 {
namespace {
using namespace simd;

// ---------------------------------------------------------------------------
// Weight access. A "row pointer" points at the first element (or Q8_0 block)
// of the part of a weight row being processed; k indexes from there.
//
// Scaled dtypes (I8, F8_*) are converted to their code values q; the row scale
// multiplies each finished dot product once. F8_E4M3 codes convert through
// FP16 as q * 2^-8 (see e4m3_to_f16), so their scale is taken times 2^8:
// scaling every term of a sum by a power of two changes no rounding, so the
// result equals q-space arithmetic.

constexpr bool is_byte_type(DType t) { return t == DType::I8 || t == DType::F8_E4M3 || t == DType::F8_E5M2; }

template <DType WT>
constexpr float scale_factor() {
  return WT == DType::F8_E4M3 ? 256.0f : 1.0f;
}

template <DType WT>
inline const void* row_ptr(const void* w, int64_t row, int64_t K, int64_t k0) {
  if constexpr (WT == DType::F32) return static_cast<const float*>(w) + row * K + k0;
  if constexpr (WT == DType::F16 || WT == DType::BF16) return static_cast<const uint16_t*>(w) + row * K + k0;
  if constexpr (WT == DType::Q8_0) return static_cast<const BlockQ8_0*>(w) + (row * K + k0) / kQ8_0BlockSize;
  if constexpr (is_byte_type(WT)) return static_cast<const uint8_t*>(w) + row * K + k0;
}

inline const uint8_t* bytes(const void* row, int64_t k) { return static_cast<const uint8_t*>(row) + k; }

inline __m256 bf16x8_to_ps(const uint16_t* p) {
  const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}

inline __m256 q8x8_to_ps(const void* q) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(static_cast<const __m128i*>(q))));
}

// E5M2 is the top byte of an FP16 with the same value.
inline __m128i e5m2_to_f16(__m128i b) { return _mm_unpacklo_epi8(_mm_setzero_si128(), b); }

// E4M3 S.EEEE.MMM sign-extended to 16 bits and shifted left by 7 puts the sign
// at bit 15 and EEEE.MMM at bits 13..7 (bit 14, a copy of the sign, is
// cleared): an FP16 with exponent field 0EEEE (bias 15 instead of 7) and the
// same mantissa, i.e. the value times 2^-8, subnormals included. The NaN
// codes (S.1111.111) come out as +-480 * 2^-8; callers detect them apart.
inline __m128i e4m3_to_f16(__m128i b) {
  return _mm_and_si128(_mm_slli_epi16(_mm_cvtepi8_epi16(b), 7), _mm_set1_epi16((short)0xBFFF));
}

inline __m256i e4m3x16_to_f16(__m128i b) {
  return _mm256_and_si256(_mm256_slli_epi16(_mm256_cvtepi8_epi16(b), 7), _mm256_set1_epi16((short)0xBFFF));
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
  if constexpr (WT == DType::I8) return q8x8_to_ps(bytes(row, k));
  if constexpr (WT == DType::F8_E5M2)
    return _mm256_cvtph_ps(e5m2_to_f16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(bytes(row, k)))));
  if constexpr (WT == DType::F8_E4M3)
    return _mm256_cvtph_ps(e4m3_to_f16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(bytes(row, k)))));
}

// Sixteen weights starting at k (k % 16 == 0): load8(k), load8(k + 8).
template <DType WT>
inline void load16(const void* row, int64_t k, __m256& w0, __m256& w1) {
  if constexpr (WT == DType::F8_E5M2 || WT == DType::F8_E4M3) {
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes(row, k)));
    if constexpr (WT == DType::F8_E5M2) {
      w0 = _mm256_cvtph_ps(e5m2_to_f16(b));
      w1 = _mm256_cvtph_ps(_mm_unpackhi_epi8(_mm_setzero_si128(), b));
    } else {
      const __m256i h = e4m3x16_to_f16(b);
      w0 = _mm256_cvtph_ps(_mm256_castsi256_si128(h));
      w1 = _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1));
    }
  } else {
    w0 = load8<WT>(row, k);
    w1 = load8<WT>(row, k + 8);
  }
}

// Thirty-two weights starting at k (k % 32 == 0): load8 at k, k + 8, k + 16,
// k + 24. For E4M3, also folds the codes into nan_seen (see track_nan).
template <DType WT>
inline void load32(const void* row, int64_t k, __m256 (&w)[4], __m256i& nan_seen) {
  if constexpr (WT == DType::F8_E5M2 || WT == DType::F8_E4M3) {
    const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bytes(row, k)));
    // In-lane unpacks: lo holds bytes 0-7 | 16-23, hi bytes 8-15 | 24-31, each as b << 8.
    __m256i lo = _mm256_unpacklo_epi8(_mm256_setzero_si256(), b);
    __m256i hi = _mm256_unpackhi_epi8(_mm256_setzero_si256(), b);
    if constexpr (WT == DType::F8_E4M3) {
      // (b << 8) >> 1 arithmetic is e4m3_to_f16's (sign-extended b) << 7.
      const __m256i mask = _mm256_set1_epi16((short)0xBFFF);
      lo = _mm256_and_si256(_mm256_srai_epi16(lo, 1), mask);
      hi = _mm256_and_si256(_mm256_srai_epi16(hi, 1), mask);
      nan_seen = _mm256_max_epu8(nan_seen, _mm256_and_si256(b, _mm256_set1_epi8(0x7f)));
    }
    w[0] = _mm256_cvtph_ps(_mm256_castsi256_si128(lo));
    w[1] = _mm256_cvtph_ps(_mm256_castsi256_si128(hi));
    w[2] = _mm256_cvtph_ps(_mm256_extracti128_si256(lo, 1));
    w[3] = _mm256_cvtph_ps(_mm256_extracti128_si256(hi, 1));
  } else if constexpr (WT == DType::I8) {
    // One 32-byte load, not four 8-byte ones: with two streams in flight
    // (dot_row_paired) the narrow loads ran at half speed from DRAM.
    const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bytes(row, k)));
    const __m128i lo = _mm256_castsi256_si128(b), hi = _mm256_extracti128_si256(b, 1);
    w[0] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo));
    w[1] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_unpackhi_epi64(lo, lo)));
    w[2] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi));
    w[3] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_unpackhi_epi64(hi, hi)));
  } else {
    for (int g = 0; g < 4; ++g) w[g] = load8<WT>(row, k + 8 * g);
  }
}

// E4M3 NaN detection alongside load8/load16: folds the low 7 bits of n codes
// into a running byte-wise maximum; a NaN code was seen iff it reaches 0x7f.
template <DType WT, int n>
inline void track_nan(__m128i& seen, const void* row, int64_t k) {
  if constexpr (WT == DType::F8_E4M3) {
    const auto* p = reinterpret_cast<const __m128i*>(bytes(row, k));
    const __m128i b = n == 16 ? _mm_loadu_si128(p) : _mm_loadl_epi64(p);
    seen = _mm_max_epu8(seen, _mm_and_si128(b, _mm_set1_epi8(0x7f)));
  }
}

inline bool saw_nan(__m128i seen) {
  return _mm_movemask_epi8(_mm_cmpeq_epi8(seen, _mm_set1_epi8(0x7f))) != 0;
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
  if constexpr (WT == DType::I8) return (float)(int8_t)*bytes(row, k);
  if constexpr (WT == DType::F8_E5M2) return fp8_e5m2_to_fp32(*bytes(row, k));
  if constexpr (WT == DType::F8_E4M3) return fp8_e4m3_to_fp32(*bytes(row, k)) * (1.0f / 256.0f);
}

// Converts n weights of a row (from a row pointer) to F32, exactly as
// load8/load1 see them, except that E4M3 NaN codes become NaN here.
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
  } else if constexpr (WT == DType::F8_E4M3) {
    for (; k + 8 <= n; k += 8) {
      const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(bytes(row, k)));
      const __m128i is_nan = _mm_cmpeq_epi8(_mm_and_si128(b, _mm_set1_epi8(0x7f)), _mm_set1_epi8(0x7f));
      const __m256 v = _mm256_cvtph_ps(e4m3_to_f16(b));
      _mm256_storeu_ps(dst + k, _mm256_blendv_ps(v, _mm256_set1_ps(NAN),
                                                 _mm256_castsi256_ps(_mm256_cvtepi8_epi32(is_nan))));
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
  return WT == DType::F32 ? 4 : is_byte_type(WT) ? 1 : 2;
}

// Every dot product of both matmul paths sums in one canonical order, so a
// row's result does not depend on how many rows share the batch (batched
// generation then equals generation alone, bit for bit): K is cut into
// blocks of kKc; within a block two 8-lane FMA chains take alternate groups
// of 8, then (c0 + c1), a horizontal sum, the scalar tail; block sums are
// added left to right; a scaled dtype's row scale multiplies the total.
// Two chains per row also keep enough FMAs in flight for the decode path to
// run at memory speed.
constexpr int64_t kKc = 512;  // a multiple of 32 (Q8_0 blocks)

// s[m] = x[m, kb..kb+kn) . w[kb..kb+kn) for MR <= 4 activation rows: one k
// block of the canonical order. Folds E4M3 NaN codes into nan_seen.
template <DType WT, int MR>
inline void block_sums(const float* x, int64_t ldx, const void* wr, int64_t kb, int64_t kn, __m128i& nan_seen,
                       float (&s)[MR]) {
  __m256 acc[MR][2];
  for (int m = 0; m < MR; ++m) acc[m][0] = acc[m][1] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= kn; k += 16) {
    if constexpr (MR > 1)
      _mm_prefetch(static_cast<const char*>(wr) + ((kb + k) * elem_bytes<WT>() + kPrefetchBytes),
                   _MM_HINT_T0);
    __m256 w0, w1;
    load16<WT>(wr, kb + k, w0, w1);
    track_nan<WT, 16>(nan_seen, wr, kb + k);
    for (int m = 0; m < MR; ++m) {
      const float* xm = x + m * ldx + kb + k;
      acc[m][0] = _mm256_fmadd_ps(_mm256_loadu_ps(xm), w0, acc[m][0]);
      acc[m][1] = _mm256_fmadd_ps(_mm256_loadu_ps(xm + 8), w1, acc[m][1]);
    }
  }
  if (k + 8 <= kn) {
    const __m256 w0 = load8<WT>(wr, kb + k);
    track_nan<WT, 8>(nan_seen, wr, kb + k);
    for (int m = 0; m < MR; ++m)
      acc[m][0] = _mm256_fmadd_ps(_mm256_loadu_ps(x + m * ldx + kb + k), w0, acc[m][0]);
    k += 8;
  }
  for (int m = 0; m < MR; ++m) {
    float v = hsum(_mm256_add_ps(acc[m][0], acc[m][1]));
    // Explicit fma: the compiler may not contract one path and not the other.
    for (int64_t kk = k; kk < kn; ++kk) v = std::fma(x[m * ldx + kb + kk], load1<WT>(wr, kb + kk), v);
    s[m] = v;
  }
}

// out[m] = x[m, 0..K) . w[0..K) for MR <= 4 activation rows against one
// weight row. Callers walk the weights one row at a time, strictly in address
// order: a single sequential stream, which the hardware prefetchers follow at
// full DRAM bandwidth (reading several weight rows side by side measured
// 20-50% slower). Each weight vector is converted once for all MR rows.
// Returns whether the row holds an E4M3 NaN code (the caller then writes NaN).
template <DType WT, int MR>
inline bool dot_rows(const float* x, int64_t ldx, const void* wr, int64_t K, float (&out)[MR]) {
  __m128i nan_seen = _mm_setzero_si128();
  for (int64_t kb = 0; kb < K; kb += kKc) {
    float s[MR];
    block_sums<WT, MR>(x, ldx, wr, kb, std::min(kKc, K - kb), nan_seen, s);
    for (int m = 0; m < MR; ++m) out[m] = kb == 0 ? s[m] : out[m] + s[m];
  }
  if (K <= 0)
    for (int m = 0; m < MR; ++m) out[m] = 0.0f;
  return WT == DType::F8_E4M3 && saw_nan(nan_seen);
}

// dot_rows for one activation row, two whole k blocks at a time: the two
// blocks' four chains are independent, where one block's two chains leave the
// core waiting on FMA latency (one-byte weights arrive fast enough for that to
// be the limit). Same sums in the same order, so the same result.
template <DType WT>
inline bool dot_row_paired(const float* x, const void* wr, int64_t K, float& out) {
  __m128i nan_seen = _mm_setzero_si128();
  out = 0.0f;
  int64_t kb = 0;
  for (; kb + 2 * kKc <= K; kb += 2 * kKc) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, b0 = a0, b1 = a0;
    __m256i seen = _mm256_setzero_si256();
    const float* xa = x + kb;
    const float* xb = xa + kKc;
    for (int64_t k = 0; k < kKc; k += 32) {
      __m256 wa[4], wb[4];
      load32<WT>(wr, kb + k, wa, seen);
      load32<WT>(wr, kb + kKc + k, wb, seen);
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(xa + k), wa[0], a0);
      a1 = _mm256_fmadd_ps(_mm256_loadu_ps(xa + k + 8), wa[1], a1);
      b0 = _mm256_fmadd_ps(_mm256_loadu_ps(xb + k), wb[0], b0);
      b1 = _mm256_fmadd_ps(_mm256_loadu_ps(xb + k + 8), wb[1], b1);
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(xa + k + 16), wa[2], a0);
      a1 = _mm256_fmadd_ps(_mm256_loadu_ps(xa + k + 24), wa[3], a1);
      b0 = _mm256_fmadd_ps(_mm256_loadu_ps(xb + k + 16), wb[2], b0);
      b1 = _mm256_fmadd_ps(_mm256_loadu_ps(xb + k + 24), wb[3], b1);
    }
    nan_seen =
        _mm_max_epu8(nan_seen, _mm_max_epu8(_mm256_castsi256_si128(seen), _mm256_extracti128_si256(seen, 1)));
    const float sa = hsum(_mm256_add_ps(a0, a1)), sb = hsum(_mm256_add_ps(b0, b1));
    out = kb == 0 ? sa : out + sa;
    out = out + sb;
  }
  for (; kb < K; kb += kKc) {
    float s[1];
    block_sums<WT, 1>(x, 0, wr, kb, std::min(kKc, K - kb), nan_seen, s);
    out = kb == 0 ? s[0] : out + s[0];
  }
  return WT == DType::F8_E4M3 && saw_nan(nan_seen);
}

template <DType WT, int MR>
void matmul_small_m(float* y, const float* x, const void* w, int N, int K, const float* scales, int64_t n0,
                    int64_t n1) {
  for (int64_t n = n0; n < n1; ++n) {
    float out[MR];
    bool nan;
    if constexpr (MR == 1 && is_byte_type(WT))
      nan = dot_row_paired<WT>(x, row_ptr<WT>(w, n, K, 0), K, out[0]);
    else
      nan = dot_rows<WT, MR>(x, K, row_ptr<WT>(w, n, K, 0), K, out);
    if constexpr (is_byte_type(WT)) {
      const float s = scales[n] * scale_factor<WT>();
      for (int m = 0; m < MR; ++m) out[m] = nan ? NAN : out[m] * s;
    }
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
void matmul_large_m(float* y, const float* x, const void* w, int M, int N, int K, const float* scales,
                    int64_t n0, int64_t n1) {
  constexpr int64_t kc_max = kKc, nb_max = 64;
  float* packed = scratch_f32(kPacked, (size_t)(nb_max * kc_max));
  for (int64_t nb = n0; nb < n1; nb += nb_max) {
    const int64_t nn = std::min(n1, nb + nb_max) - nb;
    for (int64_t kb = 0; kb < K; kb += kc_max) {
      const int64_t kn = std::min<int64_t>(kc_max, K - kb);
      for (int64_t n = 0; n < nn; ++n) convert_row<WT>(packed + n * kn, row_ptr<WT>(w, nb + n, K, kb), kn);
      for (int m0 = 0; m0 < M; m0 += kTileM) {
        float* yt = y + (int64_t)m0 * N + nb;
        const float* xt = x + (int64_t)m0 * K + kb;
        const bool acc = kb > 0;
        switch (std::min(kTileM, M - m0)) {
          case 2:
            tile_rows<2>(yt, N, xt, K, packed, kn, nn, kn, acc);
            break;
          default:
            tile_rows<1>(yt, N, xt, K, packed, kn, nn, kn, acc);
            break;
        }
      }
    }
    if constexpr (is_byte_type(WT)) {
      for (int64_t n = nb; n < nb + nn; ++n) {
        const float s = scales[n] * scale_factor<WT>();
        for (int m = 0; m < M; ++m) y[(int64_t)m * N + n] *= s;
      }
    }
  }
}

// Output columns [n0, n1) of y = x * W^T.
template <DType WT>
void matmul_range(float* y, const float* x, const void* w, int M, int N, int K, const float* scales,
                  int64_t n0, int64_t n1) {
  switch (M) {
    case 1:
      return matmul_small_m<WT, 1>(y, x, w, N, K, scales, n0, n1);
    case 2:
      return matmul_small_m<WT, 2>(y, x, w, N, K, scales, n0, n1);
    case 3:
      return matmul_small_m<WT, 3>(y, x, w, N, K, scales, n0, n1);
    case 4:
      return matmul_small_m<WT, 4>(y, x, w, N, K, scales, n0, n1);
    default:
      return matmul_large_m<WT>(y, x, w, M, N, K, scales, n0, n1);
  }
}

// Threads split the output columns in groups of 4 weight rows, so every
// thread streams its own contiguous slice of the weights.
constexpr int64_t kGroup = 4;

template <DType WT>
void matmul_t(ThreadPool& pool, float* y, const float* x, const void* w, int M, int N, int K,
              const float* scales) {
  const int64_t groups = (N + kGroup - 1) / kGroup;
  pool.parallel_for(
      groups,
      [&](int64_t g0, int64_t g1) {
        matmul_range<WT>(y, x, w, M, N, K, scales, g0 * kGroup, std::min<int64_t>(N, g1 * kGroup));
      },
      grain_for(kGroup * (int64_t)K * M));
}

template <DType WT>
void embed_t(ThreadPool& pool, float* y, const void* table, const int32_t* ids, int T, int D,
             const float* scales) {
  pool.parallel_for(
      T,
      [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) {
          float* yt = y + t * D;
          convert_row<WT>(yt, row_ptr<WT>(table, ids[t], D, 0), D);
          if constexpr (is_byte_type(WT)) {
            // One rounding, as the reference's q * scale: the E4M3 factor 2^8 is exact.
            const __m256 s = _mm256_set1_ps(scales[ids[t]] * scale_factor<WT>());
            int64_t d = 0;
            for (; d + 8 <= D; d += 8) _mm256_storeu_ps(yt + d, _mm256_mul_ps(_mm256_loadu_ps(yt + d), s));
            for (; d < D; ++d) yt[d] *= _mm256_cvtss_f32(s);
          }
        }
      },
      grain_for(D));
}

// ---------------------------------------------------------------------------
// W8A8. Activations are quantized per row exactly as ref::quantize_activation_row
// (F32 multiply, round half to even, clamp); the dot products are exact int32,
// so every variant and every batch size gives the reference's bits.

void quantize_x_row(int8_t* q, float* xs, const float* x, int K) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256 vmax = _mm256_setzero_ps();
  int k = 0;
  for (; k + 8 <= K; k += 8) vmax = _mm256_max_ps(vmax, _mm256_and_ps(_mm256_loadu_ps(x + k), abs_mask));
  float amax = hmax(vmax);
  for (; k < K; ++k) amax = std::max(amax, std::fabs(x[k]));
  if (amax == 0.0f) {
    std::memset(q, 0, K);
    *xs = 0.0f;
    return;
  }
  const float inv = 127.0f / amax;
  const __m256 vinv = _mm256_set1_ps(inv), lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
  auto q8 = [&](int k0) {
    const __m256 v = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + k0), vinv),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    return _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(v, lo), hi));
  };
  for (k = 0; k + 32 <= K; k += 32) {
    // packs interleave the 128-bit lanes; the permute puts the 32 bytes back in order.
    const __m256i p01 = _mm256_packs_epi32(q8(k), q8(k + 8)),
                  p23 = _mm256_packs_epi32(q8(k + 16), q8(k + 24));
    const __m256i p =
        _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p01, p23), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + k), p);
  }
  for (; k < K; ++k) q[k] = (int8_t)std::clamp(std::nearbyint(x[k] * inv), -127.0f, 127.0f);
  *xs = amax / 127.0f;
}

inline int32_t hsum_epi32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

// dot[m] = q[m, 0..K) . w[0..K) for MR <= 4 quantized rows (stride ldq). The
// unsigned operand of maddubs is |w| (128 fits in a u8, so -128 is fine) and
// the signed one is q with w's sign (|q| <= 127, so negating never
// overflows); a pair of products is at most 2 * 128 * 127 < 2^15.
template <int MR>
inline void dot_w8a8(const int8_t* q, int64_t ldq, const int8_t* w, int K, int32_t (&dot)[MR]) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i acc[MR];
  for (int m = 0; m < MR; ++m) acc[m] = _mm256_setzero_si256();
  int k = 0;
  for (; k + 32 <= K; k += 32) {
    if constexpr (MR > 1) _mm_prefetch(reinterpret_cast<const char*>(w + k) + kPrefetchBytes, _MM_HINT_T0);
    const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + k));
    const __m256i aw = _mm256_abs_epi8(wv);
    for (int m = 0; m < MR; ++m) {
      const __m256i qv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + m * ldq + k));
      const __m256i p = _mm256_maddubs_epi16(aw, _mm256_sign_epi8(qv, wv));
      acc[m] = _mm256_add_epi32(acc[m], _mm256_madd_epi16(p, ones));
    }
  }
  for (int m = 0; m < MR; ++m) {
    int32_t s = hsum_epi32(acc[m]);
    for (int kk = k; kk < K; ++kk) s += (int32_t)q[m * ldq + kk] * w[kk];
    dot[m] = s;
  }
}

template <int MR>
void w8a8_rows(float* y, int N, const int8_t* q, int64_t ldq, const float* xs, const int8_t* w,
               const float* rs, int K, int64_t n0, int64_t n1) {
  for (int64_t n = n0; n < n1; ++n) {
    int32_t dot[MR];
    dot_w8a8<MR>(q, ldq, w + n * K, K, dot);
    for (int m = 0; m < MR; ++m)
      y[m * (int64_t)N + n] = xs[m] == 0.0f ? 0.0f : ((float)dot[m] * xs[m]) * rs[n];
  }
}

void w8a8_range(float* y, const int8_t* q, const float* xs, const int8_t* w, const float* rs, int M, int N,
                int K, int64_t n0, int64_t n1) {
  // Weight rows in blocks that stay in L2 while every group of 4 activation
  // rows passes over them.
  const int64_t nb_max = std::max<int64_t>(4, (256 << 10) / std::max(1, K));
  for (int64_t nb = n0; nb < n1; nb += nb_max) {
    const int64_t ne = std::min(n1, nb + nb_max);
    for (int m0 = 0; m0 < M; m0 += 4) {
      float* ym = y + (int64_t)m0 * N;
      const int8_t* qm = q + (int64_t)m0 * K;
      switch (std::min(4, M - m0)) {
        case 4:
          w8a8_rows<4>(ym, N, qm, K, xs + m0, w, rs, K, nb, ne);
          break;
        case 3:
          w8a8_rows<3>(ym, N, qm, K, xs + m0, w, rs, K, nb, ne);
          break;
        case 2:
          w8a8_rows<2>(ym, N, qm, K, xs + m0, w, rs, K, nb, ne);
          break;
        default:
          w8a8_rows<1>(ym, N, qm, K, xs + m0, w, rs, K, nb, ne);
          break;
      }
    }
  }
}

}  // namespace

void matmul(ThreadPool& pool, float* y, const float* x, const void* w, DType wt, int M, int N, int K,
            const float* row_scales) {
  switch (wt) {
    case DType::F32:
      return matmul_t<DType::F32>(pool, y, x, w, M, N, K, row_scales);
    case DType::F16:
      return matmul_t<DType::F16>(pool, y, x, w, M, N, K, row_scales);
    case DType::BF16:
      return matmul_t<DType::BF16>(pool, y, x, w, M, N, K, row_scales);
    case DType::Q8_0:
      return matmul_t<DType::Q8_0>(pool, y, x, w, M, N, K, row_scales);
    case DType::I8:
      return matmul_t<DType::I8>(pool, y, x, w, M, N, K, row_scales);
    case DType::F8_E4M3:
      return matmul_t<DType::F8_E4M3>(pool, y, x, w, M, N, K, row_scales);
    case DType::F8_E5M2:
      return matmul_t<DType::F8_E5M2>(pool, y, x, w, M, N, K, row_scales);
    case DType::I32:
      break;
  }
}

void embed(ThreadPool& pool, float* y, const void* table, DType wt, const int32_t* ids, int T, int D,
           const float* row_scales) {
  switch (wt) {
    case DType::F32:
      return embed_t<DType::F32>(pool, y, table, ids, T, D, row_scales);
    case DType::F16:
      return embed_t<DType::F16>(pool, y, table, ids, T, D, row_scales);
    case DType::BF16:
      return embed_t<DType::BF16>(pool, y, table, ids, T, D, row_scales);
    case DType::Q8_0:
      return embed_t<DType::Q8_0>(pool, y, table, ids, T, D, row_scales);
    case DType::I8:
      return embed_t<DType::I8>(pool, y, table, ids, T, D, row_scales);
    case DType::F8_E4M3:
      return embed_t<DType::F8_E4M3>(pool, y, table, ids, T, D, row_scales);
    case DType::F8_E5M2:
      return embed_t<DType::F8_E5M2>(pool, y, table, ids, T, D, row_scales);
    case DType::I32:
      break;
  }
}

void matmul_w8a8(ThreadPool& pool, float* y, const float* x, const int8_t* w, const float* row_scales, int M,
                 int N, int K, int8_t* q, float* xs) {
  pool.parallel_for(
      M,
      [&](int64_t m0, int64_t m1) {
        for (int64_t m = m0; m < m1; ++m) quantize_x_row(q + m * K, xs + m, x + m * K, K);
      },
      grain_for(K));
  const int64_t groups = (N + kGroup - 1) / kGroup;
  pool.parallel_for(
      groups,
      [&](int64_t g0, int64_t g1) {
        w8a8_range(y, q, xs, w, row_scales, M, N, K, g0 * kGroup, std::min<int64_t>(N, g1 * kGroup));
      },
      grain_for(kGroup * (int64_t)K * M));
}

}  // namespace brisk::cpu::avx2
#pragma GCC pop_options

// ---------------------------------------------------------------------------
// Dispatch (baseline code: runs on any x86-64).

namespace brisk::cpu {
namespace {

bool usable(DType wt, const float* row_scales) { return wt != DType::I32 && (!is_scaled(wt) || row_scales); }

// The portable path: the reference, split over the pool by output columns.
void matmul_portable(ThreadPool& pool, float* y, const float* x, const void* w, DType wt, int M, int N, int K,
                     const float* row_scales) {
  pool.parallel_for(
      N,
      [&](int64_t n0, int64_t n1) { ref::matmul_cols(y, x, w, wt, M, N, K, row_scales, (int)n0, (int)n1); },
      simd::grain_for((int64_t)K * M));
}

}  // namespace

void matmul(ThreadPool& pool, float* y, const float* x, const void* w, DType wt, int M, int N, int K,
            const float* row_scales) {
  if (!usable(wt, row_scales)) {
    std::fill(y, y + (int64_t)M * N, NAN);  // make misuse visible
    return;
  }
  const Isa isa = active_isa();
  if (isa == Isa::Scalar) return matmul_portable(pool, y, x, w, wt, M, N, K, row_scales);
  if (isa == Isa::Avx512 && avx512::matmul(pool, y, x, w, wt, M, N, K, row_scales)) return;
  avx2::matmul(pool, y, x, w, wt, M, N, K, row_scales);
}

void embed(ThreadPool& pool, float* y, const void* table, DType wt, const int32_t* ids, int T, int D,
           const float* row_scales) {
  if (!usable(wt, row_scales)) {
    std::fill(y, y + (int64_t)T * D, NAN);
    return;
  }
  if (active_isa() == Isa::Scalar) {
    pool.parallel_for(
        T,
        [&](int64_t t0, int64_t t1) {
          ref::embed(y + t0 * D, table, wt, ids + t0, (int)(t1 - t0), D, row_scales);
        },
        simd::grain_for(D));
    return;
  }
  avx2::embed(pool, y, table, wt, ids, T, D, row_scales);
}

void matmul_w8a8(ThreadPool& pool, float* y, const float* x, const int8_t* w, const float* row_scales, int M,
                 int N, int K) {
  const Isa isa = active_isa();
  if (isa == Isa::Scalar) {
    pool.parallel_for(
        N,
        [&](int64_t n0, int64_t n1) {
          ref::matmul_w8a8_cols(y, x, w, row_scales, M, N, K, (int)n0, (int)n1);
        },
        simd::grain_for((int64_t)K * M));
    return;
  }
  if (isa == Isa::Avx512 && avx512::matmul_w8a8(pool, y, x, w, row_scales, M, N, K)) return;
  avx2::matmul_w8a8(pool, y, x, w, row_scales, M, N, K, scratch_i8((size_t)M * K),
                    scratch_f32(kRowScales, (size_t)M));
}

bool matmul_w8a24(ThreadPool& pool, float* y, const float* x, const int8_t* w, const float* row_scales, int M,
                  int N, int K) {
  return active_isa() == Isa::Avx512 && avx512::matmul_w8a24(pool, y, x, w, row_scales, M, N, K);
}

bool matmul_fp8_dpbf16(ThreadPool& pool, float* y, const float* x, const uint8_t* w, DType wt,
                       const float* row_scales, int M, int N, int K) {
  return active_isa() == Isa::Avx512 && avx512::matmul_fp8_dpbf16(pool, y, x, w, wt, row_scales, M, N, K);
}

bool matmul_q8_0_w16(ThreadPool& pool, float* y, const float* x, const void* w, int M, int N, int K) {
  return active_isa() == Isa::Avx512 && avx512::matmul_q8_0_w16(pool, y, x, w, M, N, K);
}

}  // namespace brisk::cpu
