// AVX-512 matmul variants (contract in matmul_avx512.h).
//
// F32 / F16 / BF16 and the one-byte scaled types (I8, FP8 E4M3/E5M2): one
// canonical summation order for every M. (FP8 has a second one, through
// BF16 dot products, which the CPU backend prefers where VBMI is present:
// see "FP8 through BF16 dot products" below.)
// Each output y[m, n] is a dot product over k computed as
//   * K is cut into blocks of kKc;
//   * within a block, ONE 16-lane FMA chain over the full 16-element groups,
//     the last partial group folded in with a masked FMA (lanes past the end
//     keep their value);
//   * the 16 lanes are summed by a fixed tree (lane i + lane i+8, then +4,
//     +2, +1), the same tree whether one or sixteen accumulators are reduced
//     at once (reduce16 below computes exactly that tree for 16 vectors);
//   * block sums are added left to right.
// Weights are converted to F32 exactly (BF16/F16/one-byte codes -> F32 is
// lossless; a row scale multiplies the finished dot product), so the
// small-M path, which converts on the fly from the row-major weights, and the
// large-M path, which converts into a packed block first, feed identical
// values to identical chains: a row's result is bit-identical whatever M is.
//
// Why dot-product form (lanes run along k) rather than the broadcast form
// (lanes are 16 output columns): the decode path must read the [N, K]
// weights in address order to run at DRAM speed, and along k is how they
// lie; the broadcast form would need a 16x16 transpose per weight tile in
// that path. The cost in the GEMM is one horizontal tree per output per
// kKc block, done for 16 outputs at a time (about 3 shuffles+adds per
// output against kKc/16 = 32 FMAs), and a load of x and w per FMA group:
// a 4 x 6 tile issues 10 vector loads per 24 FMAs, which Zen 4 and Intel
// cores both sustain. On the 2-core Zen 4 development machine the prefill
// shapes (M = 512, N/K = 2048/5632) ran at 75-85% of the zmm FMA peak.
//
// Q8_0 has its own order with the block scale folded in once per 32 weights
// (see "Q8_0" below), again the same for every M.
//
// W8A8: activations are quantized per row exactly as ref::matmul_w8a8 does;
// the integer dot products are exact, so any order gives the reference bits.
#include "kernels/cpu/matmul_avx512.h"

#include "kernels/reference/ops.h"

// GCC 12's AVX-512 intrinsics (shuffle_f32x4, permutexvar, the reduce_*
// helpers) pass deliberately undefined registers as don't-care operands,
// which -Wuninitialized reports wherever they are inlined.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

namespace brisk::cpu::avx512 {
namespace {

// Per-thread scratch, grown on demand and kept for the thread's lifetime
// (defined outside the target region so no AVX-512 code leaks into library
// templates shared with other translation units).
struct Scratch {
  void* p = nullptr;
  size_t cap = 0;
  ~Scratch() { std::free(p); }
};

void* scratch(int slot, size_t bytes) {
  thread_local Scratch s[2];
  Scratch& b = s[slot];
  if (b.cap < bytes) {
    std::free(b.p);
    b.cap = (bytes + 4095) & ~(size_t)4095;
    b.p = std::aligned_alloc(64, b.cap);
  }
  return b.p;
}

// BF16 bits of every FP8 code without its sign (codes 0..127), split into
// the high and the low byte: the lookup tables of the BF16 dot-product path.
struct Fp8Bf16Table {
  alignas(64) uint8_t hi[128];
  alignas(64) uint8_t lo[128];
};

const Fp8Bf16Table& fp8_bf16_table(DType t) {
  auto make = [](DType type) {
    Fp8Bf16Table tab{};
    for (int c = 0; c < 128; ++c) {
      const float v = type == DType::F8_E4M3 ? fp8_e4m3_to_fp32((uint8_t)c) : fp8_e5m2_to_fp32((uint8_t)c);
      uint32_t u;
      std::memcpy(&u, &v, 4);
      // Every finite FP8 value is exact in BF16 (the top half of its F32);
      // NaN codes keep a NaN's top half.
      tab.hi[c] = (uint8_t)(u >> 24);
      tab.lo[c] = (uint8_t)(u >> 16);
    }
    return tab;
  };
  static const Fp8Bf16Table e4m3 = make(DType::F8_E4M3), e5m2 = make(DType::F8_E5M2);
  return t == DType::F8_E4M3 ? e4m3 : e5m2;
}

}  // namespace
}  // namespace brisk::cpu::avx512

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx512bf16,avx512vbmi,avx2,fma,f16c")
namespace brisk::cpu::avx512 {
namespace {

constexpr int64_t kKc = 512;  // k block of the canonical order (a multiple of 16)

// Roughly how many multiply-adds a pool chunk should hold before waking a
// worker pays off (same figure as simd::kMinWorkPerChunk).
constexpr int64_t kMinWorkPerChunk = 1 << 15;

inline __mmask16 tail_mask(int64_t n) { return (__mmask16)((1u << n) - 1); }

// 16 one-byte weights as F32, before their row scale.
//
// The FP8 codes go through F16, each byte placed in the high half of a word
// by ONE in-lane shuffle of the 16 bytes broadcast to both 128-bit lanes
// (the broadcast is part of the load); zero-extending to words and shifting
// took two ops, one of them cross-lane, and an E5M2 GEMV was bound by them.
inline __m256i high_bytes16(__m128i b) {
  const __m256i idx = _mm256_setr_epi8(-1, 0, -1, 1, -1, 2, -1, 3, -1, 4, -1, 5, -1, 6, -1, 7, -1, 8, -1, 9,
                                       -1, 10, -1, 11, -1, 12, -1, 13, -1, 14, -1, 15);
  return _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(b), idx);
}

// E4M3 comes out as value * 2^-8 (S.EEEE.MMM turned into the FP16
// S.0EEEE.MMM0000000: the byte in the high half, shifted right one place
// with its sign copied, the copy cleared; the caller scales by 2^8) and its NaN code (S.1111.111)
// as NaN, like the reference: the conversion skips those lanes, which keep
// the NaN of its merge source.
inline __m512 e4m3x16(__m128i b) {
  const __m256i h = _mm256_and_si256(_mm256_srai_epi16(high_bytes16(b), 1), _mm256_set1_epi16((short)0xBFFF));
  const __mmask16 num = _mm_cmpneq_epi8_mask(_mm_and_si128(b, _mm_set1_epi8(0x7f)), _mm_set1_epi8(0x7f));
  return _mm512_mask_cvtph_ps(_mm512_set1_ps(NAN), num, h);
}

template <DType WT>
inline __m512 bytes16(__m128i b) {
  if constexpr (WT == DType::I8) return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(b));
  if constexpr (WT == DType::F8_E5M2) return _mm512_cvtph_ps(high_bytes16(b));
  if constexpr (WT == DType::F8_E4M3) return e4m3x16(b);
}

template <DType WT>
constexpr bool one_byte() {
  return WT == DType::I8 || WT == DType::F8_E4M3 || WT == DType::F8_E5M2;
}

// 16 BF16 values (the low 256 bits of v) as F32: each word moved to the top
// half of its dword, the bottom half zeroed, by ONE masked word permute.
// Zero-extending and shifting took two ops, and the M = 1 loop issued about
// 45% more vector work per weight than with this (measured on Zen 4, where
// the F16 loop's single conversion had made BF16 the slower of the two).
inline __m512 bf16x16(__m256i v) {
  const __m512i idx = _mm512_set_epi16(15, 0, 14, 0, 13, 0, 12, 0, 11, 0, 10, 0, 9, 0, 8, 0, 7, 0, 6, 0, 5, 0,
                                       4, 0, 3, 0, 2, 0, 1, 0, 0, 0);
  return _mm512_castsi512_ps(_mm512_maskz_permutexvar_epi16(0xAAAAAAAA, idx, _mm512_castsi256_si512(v)));
}

// 16 weights at p (element pointer of type WT) as F32; masked lanes read as 0.
template <DType WT>
inline __m512 load16(const void* p) {
  if constexpr (one_byte<WT>()) return bytes16<WT>(_mm_loadu_si128((const __m128i*)p));
  if constexpr (WT == DType::F32) return _mm512_loadu_ps(p);
  if constexpr (WT == DType::F16) return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)p));
  if constexpr (WT == DType::BF16) return bf16x16(_mm256_loadu_si256((const __m256i*)p));
}

template <DType WT>
inline __m512 load16_tail(const void* p, __mmask16 m) {
  if constexpr (one_byte<WT>()) return bytes16<WT>(_mm_maskz_loadu_epi8(m, p));
  if constexpr (WT == DType::F32) return _mm512_maskz_loadu_ps(m, p);
  if constexpr (WT == DType::F16) return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
  if constexpr (WT == DType::BF16) return bf16x16(_mm256_maskz_loadu_epi16(m, p));
}

template <DType WT>
constexpr int64_t elem_bytes() {
  return WT == DType::F32 ? 4 : one_byte<WT>() ? 1 : 2;
}

// out[i] = tree sum of the 16 lanes of v[i], i < 16. The tree is the
// canonical one: t8[j] = v[j] + v[j+8], t4[j] = t8[j] + t8[j+4],
// t2[j] = t4[j] + t4[j+2], t1 = t2[0] + t2[1]. Reducing 16 vectors together
// only interleaves them between the levels; every addition is the same.
inline void reduce16(const __m512* v, float* out) {
  __m512 s1[8], s2[4], s3[2];
#pragma GCC unroll 16
  for (int i = 0; i < 8; ++i)  // blocks [a.t8 | b.t8]
    s1[i] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0x44),
                          _mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0xEE));
#pragma GCC unroll 16
  for (int i = 0; i < 4; ++i)  // 128-bit block j = t4 of input 4i + j
    s2[i] = _mm512_add_ps(_mm512_shuffle_f32x4(s1[2 * i], s1[2 * i + 1], 0x88),
                          _mm512_shuffle_f32x4(s1[2 * i], s1[2 * i + 1], 0xDD));
#pragma GCC unroll 16
  for (int i = 0; i < 2; ++i)  // block j = [t2 of 8i+j, t2 of 8i+4+j]
    s3[i] = _mm512_add_ps(_mm512_shuffle_ps(s2[2 * i], s2[2 * i + 1], 0x44),
                          _mm512_shuffle_ps(s2[2 * i], s2[2 * i + 1], 0xEE));
  // Block j = [t1 of j, 4+j, 8+j, 12+j]: lane l holds input 4 * (l % 4) + l / 4.
  const __m512 r =
      _mm512_add_ps(_mm512_shuffle_ps(s3[0], s3[1], 0x88), _mm512_shuffle_ps(s3[0], s3[1], 0xDD));
  const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  _mm512_storeu_ps(out, _mm512_permutexvar_ps(idx, r));
}

// acc[m][n] = the canonical 16-lane chain over k in [0, kn) between MR
// activation rows (stride ldx floats) and NR weight rows of type WT (stride
// ldw elements). Each weight vector is loaded (and converted) once for all
// MR rows.
template <DType WT, int MR, int NR>
inline void chain(const float* x, int64_t ldx, const void* w, int64_t ldw, int64_t kn,
                  __m512 (&acc)[MR][NR]) {
  const auto* wb = static_cast<const char*>(w);
  constexpr int64_t eb = elem_bytes<WT>();
#pragma GCC unroll 16
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 16
    for (int n = 0; n < NR; ++n) acc[m][n] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= kn; k += 16) {
    __m512 xv[MR];
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m) xv[m] = _mm512_loadu_ps(x + m * ldx + k);
#pragma GCC unroll 16
    for (int n = 0; n < NR; ++n) {
      const __m512 wv = load16<WT>(wb + (n * ldw + k) * eb);
#pragma GCC unroll 16
      for (int m = 0; m < MR; ++m) acc[m][n] = _mm512_fmadd_ps(xv[m], wv, acc[m][n]);
    }
  }
  if (k < kn) {
    const __mmask16 mk = tail_mask(kn - k);
    __m512 xv[MR];
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m) xv[m] = _mm512_maskz_loadu_ps(mk, x + m * ldx + k);
#pragma GCC unroll 16
    for (int n = 0; n < NR; ++n) {
      const __m512 wv = load16_tail<WT>(wb + (n * ldw + k) * eb, mk);
#pragma GCC unroll 16
      for (int m = 0; m < MR; ++m) acc[m][n] = _mm512_mask3_fmadd_ps(xv[m], wv, acc[m][n], mk);
    }
  }
}

// Reduces a tile's accumulators and writes (first block) or adds (later
// blocks) them into y[m * ldy + n].
template <int MR, int NR>
inline void finish(const __m512 (&acc)[MR][NR], float* y, int64_t ldy, bool first) {
  constexpr int kPad = (MR * NR + 15) / 16 * 16;
  // Copied out (rather than reduced in place) so acc never has its address
  // taken and stays in registers through the chain.
  __m512 flat[kPad];
#pragma GCC unroll 16
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 16
    for (int n = 0; n < NR; ++n) flat[m * NR + n] = acc[m][n];
#pragma GCC unroll 16
  for (int i = MR * NR; i < kPad; ++i) flat[i] = _mm512_setzero_ps();
  float out[kPad];
#pragma GCC unroll 4
  for (int i = 0; i < kPad; i += 16) reduce16(flat + i, out + i);
  for (int m = 0; m < MR; ++m)
    for (int n = 0; n < NR; ++n) {
      float& d = y[m * ldy + n];
      d = first ? out[m * NR + n] : d + out[m * NR + n];
    }
}

template <DType WT, int MR, int NR>
inline void tile(float* y, int64_t ldy, const float* x, int64_t ldx, const void* w, int64_t ldw, int64_t kn,
                 bool first) {
  __m512 acc[MR][NR];
  chain<WT, MR, NR>(x, ldx, w, ldw, kn, acc);
  finish<MR, NR>(acc, y, ldy, first);
}

// ---------------------------------------------------------------------------
// Small M (decode): weight rows straight from memory, converted on the fly.
// M > 1, and M = 1 with rows of a page or more: kGemvRows adjacent rows at a
// time, so one x vector load serves several chains. M = 1 with short rows:
// one row at a time (gemv_rows below).

constexpr int kGemvRows = 4;

// M = 1 with rows shorter than a 4 KiB page: rows one after another, each
// row's k blocks in order, so every thread reads its weights as ONE forward
// stream. Several rows side by side would put two or more streams in each
// page, which the prefetcher follows worse: brisk-kernel-bench matmul --M 1
// --N 5632 --K 2048 --threads 2 read INT8 weights at 26-32 GB/s this way
// against 20-23 with 16 rows interleaved, FP8 E4M3 at 25-26 against 17
// (streaming read 28-34). Rows of a page or more keep the interleaved tile
// (at K = 5632 it read INT8 at 25-31 GB/s, single rows at 15-17: the
// 22 KiB of x no longer stays in L1 next to the stream).
// Each block is one canonical chain; the finished chains wait in `pend` and
// are reduced 16 at a time (the tree costs about as much for one vector as
// for sixteen), then added to their rows in order.
constexpr int64_t kShortRow = 4096;  // bytes
// Finished block chains of single rows, reduced 16 at a time and added to
// their rows in the order they were pushed.
class PendingSums {
 public:
  explicit PendingSums(float* y) : y_(y) {}
  ~PendingSums() {
    if (np_ == 0) return;
    for (int i = np_; i < 16; ++i) pend_[i] = _mm512_setzero_ps();
    flush();
  }
  PendingSums(const PendingSums&) = delete;
  PendingSums& operator=(const PendingSums&) = delete;
  void push(__m512 acc, int64_t row, bool first) {
    pend_[np_] = acc;
    row_[np_] = row;
    first_[np_] = first;
    if (++np_ == 16) flush();
  }

 private:
  void flush() {
    float out[16];
    reduce16(pend_, out);
    for (int i = 0; i < np_; ++i) y_[row_[i]] = first_[i] ? out[i] : y_[row_[i]] + out[i];
    np_ = 0;
  }
  float* y_;
  __m512 pend_[16];
  int64_t row_[16];
  bool first_[16];
  int np_ = 0;
};

template <DType WT>
void gemv_rows(float* y, const float* x, const char* w, int64_t K, int64_t nn) {
  constexpr int64_t eb = elem_bytes<WT>();
  PendingSums sums(y);
  for (int64_t n = 0; n < nn; ++n) {
    const char* wr = w + n * K * eb;
    for (int64_t kb = 0; kb < K; kb += kKc) {
      __m512 acc[1][1];
      chain<WT, 1, 1>(x + kb, K, wr + kb * eb, K, std::min(kKc, K - kb), acc);
      sums.push(acc[0][0], n, kb == 0);
    }
  }
}

template <DType WT, int MR>
void gemv_range(float* y, const float* x, const void* w, int N, int K, int64_t n0, int64_t n1) {
  const auto* wb = static_cast<const char*>(w);
  constexpr int64_t eb = elem_bytes<WT>();
  int64_t n = n0;
  if (MR == 1 && K * eb < kShortRow) return gemv_rows<WT>(y + n0, x, wb + n0 * K * eb, K, n1 - n0);
  // Long one-byte rows: 16 rows in flight. From DRAM, more concurrent row
  // streams kept more loads outstanding while the core converts: INT8
  // N=2048,K=5632 read at 17 / 22 / 27 / 31 GB/s with 2 / 4 / 8 / 16 rows
  // (brisk-kernel-bench matmul --dtype int8 --M 1, 2 threads).
  constexpr int kRows = one_byte<WT>() && MR == 1 ? 4 * kGemvRows : kGemvRows;
  for (; n + kRows <= n1; n += kRows)
    for (int64_t kb = 0; kb < K; kb += kKc)
      tile<WT, MR, kRows>(y + n, N, x + kb, K, wb + (n * K + kb) * eb, K, std::min(kKc, K - kb), kb == 0);
  for (; n < n1; ++n)
    for (int64_t kb = 0; kb < K; kb += kKc)
      tile<WT, MR, 1>(y + n, N, x + kb, K, wb + (n * K + kb) * eb, K, std::min(kKc, K - kb), kb == 0);
}

// ---------------------------------------------------------------------------
// Large M (prefill): a block of kNb weight rows x kKc is converted to F32 into
// a per-thread buffer once, then every MR-row tile of x passes over it (x
// tile in L1, the packed block in L2). The row stride of the buffer is
// padded so that the NR rows a tile reads do not alias in the L1 sets.

constexpr int kTileM = 4, kTileN = 6;
constexpr int64_t kNb = 96;  // a multiple of kTileN; 96 x 528 floats = 198 KiB
constexpr int64_t kPackLd = kKc + 16;

template <int MR>
void gemm_tile_row(float* y, int64_t ldy, const float* x, int64_t ldx, const float* pw, int64_t nn,
                   int64_t kn, bool first) {
  int64_t n = 0;
  for (; n + kTileN <= nn; n += kTileN)
    tile<DType::F32, MR, kTileN>(y + n, ldy, x, ldx, pw + n * kPackLd, kPackLd, kn, first);
  switch (nn - n) {
    case 5:
      return tile<DType::F32, MR, 5>(y + n, ldy, x, ldx, pw + n * kPackLd, kPackLd, kn, first);
    case 4:
      return tile<DType::F32, MR, 4>(y + n, ldy, x, ldx, pw + n * kPackLd, kPackLd, kn, first);
    case 3:
      return tile<DType::F32, MR, 3>(y + n, ldy, x, ldx, pw + n * kPackLd, kPackLd, kn, first);
    case 2:
      return tile<DType::F32, MR, 2>(y + n, ldy, x, ldx, pw + n * kPackLd, kPackLd, kn, first);
    case 1:
      return tile<DType::F32, MR, 1>(y + n, ldy, x, ldx, pw + n * kPackLd, kPackLd, kn, first);
    default:
      return;
  }
}

template <DType WT>
void pack_rows(float* dst, const void* w, int64_t K, int64_t row0, int64_t nn, int64_t kb, int64_t kn) {
  const auto* wb = static_cast<const char*>(w);
  constexpr int64_t eb = elem_bytes<WT>();
  for (int64_t n = 0; n < nn; ++n) {
    const char* src = wb + ((row0 + n) * K + kb) * eb;
    float* d = dst + n * kPackLd;
    int64_t k = 0;
    for (; k + 16 <= kn; k += 16) _mm512_storeu_ps(d + k, load16<WT>(src + k * eb));
    if (k < kn)
      _mm512_mask_storeu_ps(d + k, tail_mask(kn - k), load16_tail<WT>(src + k * eb, tail_mask(kn - k)));
  }
}

template <DType WT>
void gemm_range(float* y, const float* x, const void* w, int M, int N, int K, int64_t n0, int64_t n1) {
  auto* packed = static_cast<float*>(scratch(0, sizeof(float) * kNb * kPackLd));
  for (int64_t nb = n0; nb < n1; nb += kNb) {
    const int64_t nn = std::min(n1, nb + kNb) - nb;
    for (int64_t kb = 0; kb < K; kb += kKc) {
      const int64_t kn = std::min(kKc, K - kb);
      pack_rows<WT>(packed, w, K, nb, nn, kb, kn);
      const bool first = kb == 0;
      for (int m0 = 0; m0 < M; m0 += kTileM) {
        float* yt = y + (int64_t)m0 * N + nb;
        const float* xt = x + (int64_t)m0 * K + kb;
        switch (std::min(kTileM, M - m0)) {
          case 4:
            gemm_tile_row<4>(yt, N, xt, K, packed, nn, kn, first);
            break;
          case 3:
            gemm_tile_row<3>(yt, N, xt, K, packed, nn, kn, first);
            break;
          case 2:
            gemm_tile_row<2>(yt, N, xt, K, packed, nn, kn, first);
            break;
          default:
            gemm_tile_row<1>(yt, N, xt, K, packed, nn, kn, first);
            break;
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Q8_0 (GGUF blocks: 32 int8 codes q sharing one F16 scale d; value q * d).
// Its canonical order, the same for every M: k blocks of kKc as above (kKc is
// a multiple of 32, so a Q8_0 block never straddles two), and within one, for
// each 32-weight block j and lane l < 16
//   t      = x[32j + l] * q[32j + l]
//   t      = fma(x[32j + 16 + l], q[32j + 16 + l], t)
//   acc[l] = fma(t, d_j, acc[l])
// then the same tree and left-to-right block sums. Scaling once per block
// instead of per weight (q * d is exact in F32, so that would also do) saves
// one of every eight vector ops per 32 weights, and the M = 1 loop is bound
// by those (each 16 weights need a sign extension and an int -> float
// conversion besides their FMA).
//
// The two paths feed the chain identical values: the small-M path reads the
// blocks in place, the large-M path first unpacks q to F32 (exact) and d to
// F32 into per-thread buffers.

struct Q8Raw {  // weight rows as stored: ld blocks per row
  const BlockQ8_0* b;
  int64_t ld;
  __m512 q16(int n, int64_t j, int half) const {
    return _mm512_cvtepi32_ps(
        _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i*)(b[n * ld + j].qs + 16 * half))));
  }
};

constexpr int64_t kQ8DLd = kKc / kQ8_0BlockSize;  // scales per row of a k block

// The scales of blocks [0, nb) (nb <= kQ8DLd) of row n as F32 into d: one
// conversion of 16 per row and k block, so that the chain takes each scale
// as a broadcast memory operand of its FMA. Converting each one where it is
// used took two more vector ops per 32 weights, and a 16-lane gather of the
// scales measured ~8% slower in the M = 1 loop than these scalar copies.
inline void q8_scales(const Q8Raw& src, int n, int64_t nb, float* d) {
  alignas(32) uint16_t h[kQ8DLd] = {};
  const BlockQ8_0* b = src.b + n * src.ld;
  for (int64_t j = 0; j < nb; ++j) h[j] = b[j].d;
  _mm512_storeu_ps(d, _mm512_cvtph_ps(_mm256_load_si256((const __m256i*)h)));
}

struct Q8Packed {  // q as F32 in rows of kPackLd
  const float* q;
  __m512 q16(int n, int64_t j, int half) const {
    return _mm512_loadu_ps(q + n * kPackLd + 32 * j + 16 * half);
  }
};

// acc[m][n] = the Q8_0 chain over blocks [0, nb) between MR activation rows
// (stride ldx) and NR weight rows of src, whose block scales are
// d[n * ldd + j].
template <int MR, int NR, class Src>
inline void chain_q8(const float* x, int64_t ldx, const Src& src, const float* d, int64_t ldd, int64_t nb,
                     __m512 (&acc)[MR][NR]) {
#pragma GCC unroll 16
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 16
    for (int n = 0; n < NR; ++n) acc[m][n] = _mm512_setzero_ps();
  for (int64_t j = 0; j < nb; ++j) {
    __m512 xl[MR], xh[MR];
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m) {
      xl[m] = _mm512_loadu_ps(x + m * ldx + 32 * j);
      xh[m] = _mm512_loadu_ps(x + m * ldx + 32 * j + 16);
    }
#pragma GCC unroll 16
    for (int n = 0; n < NR; ++n) {
      const __m512 wl = src.q16(n, j, 0), wh = src.q16(n, j, 1);
#pragma GCC unroll 16
      for (int m = 0; m < MR; ++m)
        acc[m][n] = _mm512_fmadd_ps(_mm512_fmadd_ps(xh[m], wh, _mm512_mul_ps(xl[m], wl)),
                                    _mm512_set1_ps(d[n * ldd + j]), acc[m][n]);
    }
  }
}

template <int MR, int NR, class Src>
inline void tile_q8(float* y, int64_t ldy, const float* x, int64_t ldx, const Src& src, const float* d,
                    int64_t ldd, int64_t nb, bool first) {
  __m512 acc[MR][NR];
  chain_q8<MR, NR>(x, ldx, src, d, ldd, nb, acc);
  finish<MR, NR>(acc, y, ldy, first);
}

template <int MR, int NR>
inline void tile_q8_raw(float* y, int64_t ldy, const float* x, int64_t ldx, const Q8Raw& src, int64_t nb,
                        bool first) {
  alignas(64) float d[NR * kQ8DLd];
#pragma GCC unroll 16
  for (int n = 0; n < NR; ++n) q8_scales(src, n, nb, d + n * kQ8DLd);
  tile_q8<MR, NR>(y, ldy, x, ldx, src, d, kQ8DLd, nb, first);
}

// M = 1 with short rows: one forward stream, as gemv_rows.
void q8_gemv_rows(float* y, const float* x, const BlockQ8_0* blocks, int64_t K, int64_t nn) {
  const int64_t ld = K / kQ8_0BlockSize;
  PendingSums sums(y);
  for (int64_t n = 0; n < nn; ++n)
    for (int64_t kb = 0; kb < K; kb += kKc) {
      const int64_t nb = std::min(kKc, K - kb) / kQ8_0BlockSize;
      const Q8Raw src{blocks + n * ld + kb / kQ8_0BlockSize, ld};
      alignas(64) float d[kQ8DLd];
      q8_scales(src, 0, nb, d);
      __m512 acc[1][1];
      chain_q8<1, 1>(x + kb, K, src, d, kQ8DLd, nb, acc);
      sums.push(acc[0][0], n, kb == 0);
    }
}

template <int MR>
void q8_gemv_range(float* y, const float* x, const void* w, int N, int K, int64_t n0, int64_t n1) {
  const auto* blocks = static_cast<const BlockQ8_0*>(w);
  const int64_t ld = K / kQ8_0BlockSize;
  if (MR == 1 && ld * (int64_t)sizeof(BlockQ8_0) < kShortRow)
    return q8_gemv_rows(y + n0, x, blocks + n0 * ld, K, n1 - n0);
  // Conversion-bound like the one-byte types: as many rows in flight.
  constexpr int kRows = MR == 1 ? 2 * kGemvRows : kGemvRows;
  int64_t n = n0;
  for (; n + kRows <= n1; n += kRows)
    for (int64_t kb = 0; kb < K; kb += kKc)
      tile_q8_raw<MR, kRows>(y + n, N, x + kb, K, Q8Raw{blocks + n * ld + kb / kQ8_0BlockSize, ld},
                             std::min(kKc, K - kb) / kQ8_0BlockSize, kb == 0);
  for (; n < n1; ++n)
    for (int64_t kb = 0; kb < K; kb += kKc)
      tile_q8_raw<MR, 1>(y + n, N, x + kb, K, Q8Raw{blocks + n * ld + kb / kQ8_0BlockSize, ld},
                         std::min(kKc, K - kb) / kQ8_0BlockSize, kb == 0);
}

constexpr int kQ8TileN = 4;  // 16 accumulators + 8 x vectors + q, q, d fill the 32 registers

template <int MR>
void q8_tile_row(float* y, int64_t ldy, const float* x, int64_t ldx, const float* pq, const float* pd,
                 int64_t nn, int64_t nb, bool first) {
  int64_t n = 0;
  auto src = [&](int64_t r) { return Q8Packed{pq + r * kPackLd}; };
  for (; n + kQ8TileN <= nn; n += kQ8TileN)
    tile_q8<MR, kQ8TileN>(y + n, ldy, x, ldx, src(n), pd + n * kQ8DLd, kQ8DLd, nb, first);
  switch (nn - n) {
    case 3:
      return tile_q8<MR, 3>(y + n, ldy, x, ldx, src(n), pd + n * kQ8DLd, kQ8DLd, nb, first);
    case 2:
      return tile_q8<MR, 2>(y + n, ldy, x, ldx, src(n), pd + n * kQ8DLd, kQ8DLd, nb, first);
    case 1:
      return tile_q8<MR, 1>(y + n, ldy, x, ldx, src(n), pd + n * kQ8DLd, kQ8DLd, nb, first);
    default:
      return;
  }
}

void q8_gemm_range(float* y, const float* x, const void* w, int M, int N, int K, int64_t n0, int64_t n1) {
  auto* pq = static_cast<float*>(scratch(0, sizeof(float) * kNb * (kPackLd + kQ8DLd)));
  float* pd = pq + kNb * kPackLd;
  const auto* blocks = static_cast<const BlockQ8_0*>(w);
  const int64_t ld = K / kQ8_0BlockSize;
  for (int64_t nb0 = n0; nb0 < n1; nb0 += kNb) {
    const int64_t nn = std::min(n1, nb0 + kNb) - nb0;
    for (int64_t kb = 0; kb < K; kb += kKc) {
      const int64_t nb = std::min(kKc, K - kb) / kQ8_0BlockSize;
      const Q8Raw raw{blocks + nb0 * ld + kb / kQ8_0BlockSize, ld};
      for (int n = 0; n < nn; ++n) {
        for (int64_t j = 0; j < nb; ++j) {
          _mm512_storeu_ps(pq + n * kPackLd + 32 * j, raw.q16(n, j, 0));
          _mm512_storeu_ps(pq + n * kPackLd + 32 * j + 16, raw.q16(n, j, 1));
        }
        q8_scales(raw, n, nb, pd + n * kQ8DLd);
      }
      const bool first = kb == 0;
      for (int m0 = 0; m0 < M; m0 += kTileM) {
        float* yt = y + (int64_t)m0 * N + nb0;
        const float* xt = x + (int64_t)m0 * K + kb;
        switch (std::min(kTileM, M - m0)) {
          case 4:
            q8_tile_row<4>(yt, N, xt, K, pq, pd, nn, nb, first);
            break;
          case 3:
            q8_tile_row<3>(yt, N, xt, K, pq, pd, nn, nb, first);
            break;
          case 2:
            q8_tile_row<2>(yt, N, xt, K, pq, pd, nn, nb, first);
            break;
          default:
            q8_tile_row<1>(yt, N, xt, K, pq, pd, nn, nb, first);
            break;
        }
      }
    }
  }
}

// Columns [n0, n1) of y times their rows' scales, times f.
inline void scale_columns(float* y, int M, int N, const float* row_scales, float f, int64_t n0, int64_t n1) {
  for (int m = 0; m < M; ++m)
    for (int64_t n = n0; n < n1; ++n) y[(int64_t)m * N + n] *= row_scales[n] * f;
}

// Scaled dtypes: each finished dot product times its row's scale (E4M3 also
// times 2^8, see e4m3x16) — one multiply, after every k block, on both paths.
template <DType WT>
void scale_columns(float* y, int M, int N, const float* row_scales, int64_t n0, int64_t n1) {
  if constexpr (one_byte<WT>())
    scale_columns(y, M, N, row_scales, WT == DType::F8_E4M3 ? 256.0f : 1.0f, n0, n1);
}

// Threads take contiguous groups of output columns (weight rows), so each
// streams its own slice of the weights and packs it once: range(n0, n1)
// computes columns [n0, n1).
template <class Range>
void over_column_groups(ThreadPool& pool, int M, int N, int K, Range&& range) {
  const int64_t group = M <= 4 ? 16 : kNb;
  const int64_t groups = (N + group - 1) / group;
  const int64_t grain = std::max<int64_t>(1, kMinWorkPerChunk / std::max<int64_t>(1, group * (int64_t)K * M));
  pool.parallel_for(
      groups, [&](int64_t g0, int64_t g1) { range(g0 * group, std::min<int64_t>(N, g1 * group)); }, grain);
}

template <DType WT>
void matmul_t(ThreadPool& pool, float* y, const float* x, const void* w, int M, int N, int K,
              const float* row_scales = nullptr) {
  over_column_groups(pool, M, N, K, [&](int64_t n0, int64_t n1) {
    if constexpr (WT == DType::Q8_0) {
      switch (M) {
        case 1:
          return q8_gemv_range<1>(y, x, w, N, K, n0, n1);
        case 2:
          return q8_gemv_range<2>(y, x, w, N, K, n0, n1);
        case 3:
          return q8_gemv_range<3>(y, x, w, N, K, n0, n1);
        case 4:
          return q8_gemv_range<4>(y, x, w, N, K, n0, n1);
        default:
          return q8_gemm_range(y, x, w, M, N, K, n0, n1);
      }
    } else {
      switch (M) {
        case 1:
          gemv_range<WT, 1>(y, x, w, N, K, n0, n1);
          break;
        case 2:
          gemv_range<WT, 2>(y, x, w, N, K, n0, n1);
          break;
        case 3:
          gemv_range<WT, 3>(y, x, w, N, K, n0, n1);
          break;
        case 4:
          gemv_range<WT, 4>(y, x, w, N, K, n0, n1);
          break;
        default:
          gemm_range<WT>(y, x, w, M, N, K, n0, n1);
          break;
      }
    }
    scale_columns<WT>(y, M, N, row_scales, n0, n1);
  });
}

// ---------------------------------------------------------------------------
// W8A8 with VNNI. vpdpbusd multiplies unsigned by signed bytes. The weights
// take the unsigned side as u = w + 128 (one xor per weight vector, shared by
// every activation row of a tile) and the quantized activations q the signed
// side, so sum u*q = sum w*q + 128 * sum q, and the correction 128 * sum q
// belongs to the activation row: computed once while quantizing, nothing
// extra per weight. (The other way round, activations offset to unsigned,
// needs sum w per weight row, an extra instruction per weight vector.)
// Intermediate sums may wrap in int32; the corrected result is the exact dot
// product whenever that fits int32 (|q*w| <= 127*128, so K up to 2^17), which
// wrap-around arithmetic preserves. Integer sums are exact in any order, so
// every M gets the reference bits.

constexpr int64_t kW8Pad = 64;

// Quantizes row x[0..K) into q (K rounded up to kW8Pad, zero padded) as
// ref::quantize_activation_row does. Returns the row scale amax / 127 (0 for
// an all-zero row) and sets *corr = 128 * sum q.
float quantize_row(const float* x, int64_t K, int8_t* q, int32_t* corr) {
  __m512 vmax = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) vmax = _mm512_max_ps(vmax, _mm512_abs_ps(_mm512_loadu_ps(x + k)));
  if (k < K) vmax = _mm512_max_ps(vmax, _mm512_abs_ps(_mm512_maskz_loadu_ps(tail_mask(K - k), x + k)));
  const float amax = _mm512_reduce_max_ps(vmax);
  const int64_t Kp = (K + kW8Pad - 1) / kW8Pad * kW8Pad;
  *corr = 0;
  if (!(amax > 0.0f)) {
    std::memset(q, 0, (size_t)Kp);
    return 0.0f;
  }
  std::memset(q + K, 0, (size_t)(Kp - K));  // the padding; [0, K) is written below
  const float inv = 127.0f / amax;
  const __m512 vinv = _mm512_set1_ps(inv);
  const __m512i lo = _mm512_set1_epi32(-127), hi = _mm512_set1_epi32(127);
  __m512i sum = _mm512_setzero_si512();
  // cvtps_epi32 rounds with MXCSR's mode, round-to-nearest-even by default,
  // which is what nearbyint does in the reference.
  auto q16 = [&](__m512 v) {
    const __m512i r = _mm512_min_epi32(_mm512_max_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(v, vinv)), lo), hi);
    sum = _mm512_add_epi32(sum, r);
    return _mm512_cvtepi32_epi8(r);
  };
  for (k = 0; k + 16 <= K; k += 16) _mm_storeu_si128((__m128i*)(q + k), q16(_mm512_loadu_ps(x + k)));
  if (k < K) {
    const __mmask16 mk = tail_mask(K - k);
    _mm_mask_storeu_epi8(q + k, mk, q16(_mm512_maskz_loadu_ps(mk, x + k)));
  }
  *corr = _mm512_reduce_add_epi32(sum) * 128;
  return amax / 127.0f;
}

// out[i] = sum of the 16 int32 lanes of v[i], i < 16 (same shuffle tree as
// reduce16; for integers any order gives the same result).
inline __m512 as_ps(__m512i a) { return _mm512_castsi512_ps(a); }
inline __m512i as_si(__m512 a) { return _mm512_castps_si512(a); }

inline __m512i reduce16_epi32(const __m512i* v) {
  __m512i s1[8], s2[4], s3[2];
#pragma GCC unroll 16
  for (int i = 0; i < 8; ++i)
    s1[i] = _mm512_add_epi32(as_si(_mm512_shuffle_f32x4(as_ps(v[2 * i]), as_ps(v[2 * i + 1]), 0x44)),
                             as_si(_mm512_shuffle_f32x4(as_ps(v[2 * i]), as_ps(v[2 * i + 1]), 0xEE)));
#pragma GCC unroll 16
  for (int i = 0; i < 4; ++i)
    s2[i] = _mm512_add_epi32(as_si(_mm512_shuffle_f32x4(as_ps(s1[2 * i]), as_ps(s1[2 * i + 1]), 0x88)),
                             as_si(_mm512_shuffle_f32x4(as_ps(s1[2 * i]), as_ps(s1[2 * i + 1]), 0xDD)));
#pragma GCC unroll 16
  for (int i = 0; i < 2; ++i)
    s3[i] = _mm512_add_epi32(as_si(_mm512_shuffle_ps(as_ps(s2[2 * i]), as_ps(s2[2 * i + 1]), 0x44)),
                             as_si(_mm512_shuffle_ps(as_ps(s2[2 * i]), as_ps(s2[2 * i + 1]), 0xEE)));
  const __m512i r = _mm512_add_epi32(as_si(_mm512_shuffle_ps(as_ps(s3[0]), as_ps(s3[1]), 0x88)),
                                     as_si(_mm512_shuffle_ps(as_ps(s3[0]), as_ps(s3[1]), 0xDD)));
  const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  return _mm512_permutexvar_epi32(idx, r);
}

// Lane i of a tile's 16 results is (m, n) = (i / NR, i % NR).
template <int NR>
struct TileLanes {
  int32_t m[16], n[16];
  constexpr TileLanes() : m(), n() {
    for (int i = 0; i < 16; ++i) {
      m[i] = i / NR;
      n[i] = i % NR;
    }
  }
};
template <int NR>
constexpr TileLanes<NR> kTileLanes{};

// Quantized activations of one call: rows of ldq bytes, their scales and
// corrections.
struct W8Act {
  const int8_t* q;
  int64_t ldq;
  const float* xs;
  const int32_t* corr;
};

// Weight rows a tile prefetches into L2 along with its own k steps: the rows
// the next tile column will read, so the DRAM stream keeps going while this
// column is computed (without it the M = 16 case ran about 15% slower).
struct Prefetch {
  const int8_t* row = nullptr;
  int64_t stride = 0;
  int count = 0;
};

// The raw int32 sums sum_k (w[n, k] + 128) * q[m, k] of MR quantized rows
// (stride ldq, zero padded) against NR weight rows (K bytes each), reduced
// to 16 lanes: lane m * NR + n (lanes past MR * NR are 0). W8A8 takes its
// activation rows as the MR rows, W8A24 the three digit rows of one
// activation row.
template <int MR, int NR>
inline __m512i w8_dots(const int8_t* q, int64_t ldq, const int8_t* w, int64_t K, Prefetch pf = {}) {
  static_assert(MR * NR <= 16);
  __m512i acc[MR][NR];
#pragma GCC unroll 16
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 16
    for (int n = 0; n < NR; ++n) acc[m][n] = _mm512_setzero_si512();
  const __m512i flip = _mm512_set1_epi8((char)0x80);
  auto step = [&](int64_t k, __mmask64 mk) {
    for (int i = 0; i < pf.count; ++i) _mm_prefetch((const char*)pf.row + i * pf.stride + k, _MM_HINT_T1);
    __m512i wv[NR];
#pragma GCC unroll 16
    for (int n = 0; n < NR; ++n) wv[n] = _mm512_xor_si512(_mm512_maskz_loadu_epi8(mk, w + n * K + k), flip);
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m) {
      const __m512i qv = _mm512_loadu_si512(q + m * ldq + k);
#pragma GCC unroll 16
      for (int n = 0; n < NR; ++n) acc[m][n] = _mm512_dpbusd_epi32(acc[m][n], wv[n], qv);
    }
  };
  int64_t k = 0;
  for (; k + 64 <= K; k += 64) step(k, ~(__mmask64)0);
  // Past K the weights load as 0 (u = 128) and q is 0-padded: no contribution.
  if (k < K) step(k, ((__mmask64)1 << (K - k)) - 1);
  __m512i flat[16];
#pragma GCC unroll 16
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 16
    for (int n = 0; n < NR; ++n) flat[m * NR + n] = acc[m][n];
#pragma GCC unroll 16
  for (int i = MR * NR; i < 16; ++i) flat[i] = _mm512_setzero_si512();
  return reduce16_epi32(flat);
}

// y[m, n] for MR activation rows against NR weight rows (K bytes each).
template <int MR, int NR>
inline void w8_tile(float* y, int64_t ldy, const W8Act& a, int m0, const int8_t* w, int64_t K,
                    const float* rs, Prefetch pf = {}) {
  const __m512i raw = w8_dots<MR, NR>(a.q + m0 * a.ldq, a.ldq, w, K, pf);
  // y = ((float)(dot) * xs[m]) * rs[n], 0 for an all-zero activation row;
  // separate multiplies (no FMA), as the reference does.
  const __m512i lm = _mm512_loadu_si512(kTileLanes<NR>.m), ln = _mm512_loadu_si512(kTileLanes<NR>.n);
  const __mmask16 mm = (__mmask16)((1u << MR) - 1), mn = (__mmask16)((1u << NR) - 1);
  const __m512i corr = _mm512_permutexvar_epi32(lm, _mm512_maskz_loadu_epi32(mm, a.corr + m0));
  const __m512 xs = _mm512_permutexvar_ps(lm, _mm512_maskz_loadu_ps(mm, a.xs + m0));
  const __m512 scale = rs ? _mm512_permutexvar_ps(ln, _mm512_maskz_loadu_ps(mn, rs)) : _mm512_set1_ps(1.0f);
  const __m512i dot = _mm512_sub_epi32(raw, corr);
  const __m512 v = _mm512_maskz_mul_ps(_mm512_cmpneq_ps_mask(xs, _mm512_setzero_ps()),
                                       _mm512_mul_ps(_mm512_cvtepi32_ps(dot), xs), scale);
  float out[16];
  _mm512_storeu_ps(out, v);
  for (int m = 0; m < MR; ++m)
    for (int n = 0; n < NR; ++n) y[m * ldy + n] = out[m * NR + n];
}

constexpr int kW8TileM = 4;

// M = 1 (decode): one weight row at a time, a single forward stream the
// hardware prefetcher follows at full bandwidth (several rows side by side
// measured slower), with four accumulators to cover the vpdpbusd latency.
void w8_gemv(float* y, const W8Act& a, const int8_t* w, int64_t K, const float* rs, int64_t nn) {
  const __m512i flip = _mm512_set1_epi8((char)0x80);
  const float xs = a.xs[0];
  for (int64_t n = 0; n < nn; ++n) {
    const int8_t* wr = w + n * K;
    __m512i acc[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(),
                      _mm512_setzero_si512()};
    int64_t k = 0;
    for (; k + 256 <= K; k += 256)
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j)
        acc[j] = _mm512_dpbusd_epi32(acc[j], _mm512_xor_si512(_mm512_loadu_si512(wr + k + 64 * j), flip),
                                     _mm512_loadu_si512(a.q + k + 64 * j));
    for (; k < K; k += 64) {
      const __mmask64 mk = K - k >= 64 ? ~(__mmask64)0 : ((__mmask64)1 << (K - k)) - 1;
      acc[0] = _mm512_dpbusd_epi32(acc[0], _mm512_xor_si512(_mm512_maskz_loadu_epi8(mk, wr + k), flip),
                                   _mm512_loadu_si512(a.q + k));
    }
    const __m512i sum = _mm512_add_epi32(_mm512_add_epi32(acc[0], acc[1]), _mm512_add_epi32(acc[2], acc[3]));
    const auto dot = (int32_t)((uint32_t)_mm512_reduce_add_epi32(sum) - (uint32_t)a.corr[0]);
    y[n] = xs == 0.0f ? 0.0f : ((float)dot * xs) * (rs ? rs[n] : 1.0f);
  }
}

// NR weight rows (16 KiB for NR = 4 at K = 4096) stay in L1 while every m
// tile passes over them; the activations (M x K bytes) stream from L2.
// next: the NR rows after these (prefetched, shared out between the m
// tiles), or nullptr.
template <int NR>
void w8_column(float* y, int64_t N, const W8Act& a, int M, const int8_t* w, int64_t K, const float* rs,
               const int8_t* next) {
  const int tiles = (M + kW8TileM - 1) / kW8TileM;
  for (int m0 = 0, t = 0; m0 < M; m0 += kW8TileM, ++t) {
    float* yt = y + (int64_t)m0 * N;
    Prefetch pf;
    if (next && t < NR) {  // tile t takes rows t, t + tiles, ...
      pf.row = next + t * K;
      pf.stride = tiles * K;
      pf.count = (NR - t + tiles - 1) / tiles;
    }
    switch (std::min(kW8TileM, M - m0)) {
      case 4:
        w8_tile<4, NR>(yt, N, a, m0, w, K, rs, pf);
        break;
      case 3:
        w8_tile<3, NR>(yt, N, a, m0, w, K, rs, pf);
        break;
      case 2:
        w8_tile<2, NR>(yt, N, a, m0, w, K, rs, pf);
        break;
      default:
        w8_tile<1, NR>(yt, N, a, m0, w, K, rs, pf);
        break;
    }
  }
}

// Output columns [n0, n1). The weights are read in place: the u = w + 128
// flip is one xor per loaded vector, cheaper than flipping a block into a
// packed copy first (which measured ~20% slower at M = 16).
void w8_range(float* y, const W8Act& a, const int8_t* w, const float* rs, int M, int N, int64_t K, int64_t n0,
              int64_t n1) {
  if (M == 1) return w8_gemv(y + n0, a, w + n0 * K, K, rs ? rs + n0 : nullptr, n1 - n0);
  int64_t n = n0;
  for (; n + 4 <= n1; n += 4)
    w8_column<4>(y + n, N, a, M, w + n * K, K, rs ? rs + n : nullptr,
                 n + 8 <= n1 ? w + (n + 4) * K : nullptr);
  for (; n < n1; ++n) w8_column<1>(y + n, N, a, M, w + n * K, K, rs ? rs + n : nullptr, nullptr);
}

// ---------------------------------------------------------------------------
// W8A24 (ref::matmul_w8a24): F32 activations rounded to 24-bit integers per
// row and split into three signed bytes h, d, l (q = 65536 h + 256 d + l),
// each a row of the same layout W8A8 uses, so a weight vector meets the
// three digit rows with three vpdpbusd and the weights are never widened to
// F32. The widening (two conversions per 16 weights) was what held
// single-sequence INT8 decode at ~66% of the bandwidth; with three integer
// dot products per 64 weights it ran at ~79% (docs/BENCHMARKS.md). The three
// int32 digit sums are combined in int64, exactly the reference's dot.

constexpr int kDigits = 3;

struct A24Act {
  const int8_t* q;  // digit rows: row m, digit j at q + (m * kDigits + j) * ldq
  int64_t ldq;
  const float* xs;
  const int32_t* corr;  // 128 * sum of each digit row, same indexing
};

// Quantizes x[0..K) into the kDigits rows at q (stride ldq, zero padded to
// a multiple of kW8Pad); returns xs and sets corr[0..kDigits).
// The largest |x| of a row and whether every value is finite: the scan that
// the integer-activation paths (W8A24, Q8_0 W8A16) start each row with.
struct RowAbsMax {
  float amax;
  bool finite;
};
inline RowAbsMax row_abs_max(const float* x, int64_t K) {
  __m512 vmax = _mm512_setzero_ps();
  __mmask16 bad = 0;
  const __m512 big = _mm512_set1_ps(3.4028234663852886e38f);
  auto scan = [&](__m512 v) {
    const __m512 a = _mm512_abs_ps(v);
    bad |= _mm512_cmp_ps_mask(a, big, _CMP_NLE_UQ);  // inf or NaN
    vmax = _mm512_max_ps(vmax, a);
  };
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) scan(_mm512_loadu_ps(x + k));
  if (k < K) scan(_mm512_maskz_loadu_ps(tail_mask(K - k), x + k));
  return {_mm512_reduce_max_ps(vmax), bad == 0};
}

float quantize_row24(const float* x, int64_t K, int8_t* q, int64_t ldq, int32_t* corr) {
  const RowAbsMax r = row_abs_max(x, K);
  const bool bad = !r.finite;
  const float amax = r.amax;
  const int64_t Kp = (K + kW8Pad - 1) / kW8Pad * kW8Pad;
  const bool zero = bad || !(amax > 0.0f);  // all digits 0
  for (int j = 0; j < kDigits; ++j) {
    // The padding, or the whole row when no digit is written below.
    std::memset(q + j * ldq + (zero ? 0 : K), 0, (size_t)(zero ? Kp : Kp - K));
    corr[j] = 0;
  }
  if (bad) return NAN;
  if (zero) return 0.0f;
  const __m512 vinv = _mm512_set1_ps((float)ref::kA24Max / amax);
  const __m512i lo = _mm512_set1_epi32(-ref::kA24Max), hi = _mm512_set1_epi32(ref::kA24Max);
  const __m512i c128 = _mm512_set1_epi32(128), c255 = _mm512_set1_epi32(255);
  __m512i sum[kDigits] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
  // The low signed byte of v: ((v + 128) mod 256) - 128.
  auto low = [&](__m512i v) {
    return _mm512_sub_epi32(_mm512_and_si512(_mm512_add_epi32(v, c128), c255), c128);
  };
  // cvtps_epi32 rounds with MXCSR's mode, round-to-nearest-even by default,
  // which is what nearbyint does in the reference.
  auto digits = [&](__m512 v, __m128i* out) {
    const __m512i r = _mm512_min_epi32(_mm512_max_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(v, vinv)), lo), hi);
    const __m512i l = low(r);
    const __m512i r1 = _mm512_srai_epi32(_mm512_sub_epi32(r, l), 8);
    const __m512i d = low(r1);
    const __m512i h = _mm512_srai_epi32(_mm512_sub_epi32(r1, d), 8);
    const __m512i dg[kDigits] = {h, d, l};
    for (int j = 0; j < kDigits; ++j) {
      sum[j] = _mm512_add_epi32(sum[j], dg[j]);
      out[j] = _mm512_cvtepi32_epi8(dg[j]);
    }
  };
  __m128i out[kDigits];
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
    digits(_mm512_loadu_ps(x + k), out);
    for (int j = 0; j < kDigits; ++j) _mm_storeu_si128((__m128i*)(q + j * ldq + k), out[j]);
  }
  if (k < K) {
    const __mmask16 mk = tail_mask(K - k);
    digits(_mm512_maskz_loadu_ps(mk, x + k), out);
    for (int j = 0; j < kDigits; ++j) _mm_mask_storeu_epi8(q + j * ldq + k, mk, out[j]);
  }
  for (int j = 0; j < kDigits; ++j) corr[j] = _mm512_reduce_add_epi32(sum[j]) * 128;
  return amax / (float)ref::kA24Max;
}

// The exact dot from the three corrected digit sums (each the true digit dot
// product modulo 2^32, which fits int32), then the reference's two multiplies.
inline float a24_output(const int32_t* raw, const int32_t* corr, float xs, float rs) {
  int64_t dot = 0;
  for (int j = 0; j < kDigits; ++j) dot = dot * 256 + (int32_t)((uint32_t)raw[j] - (uint32_t)corr[j]);
  return xs == 0.0f ? 0.0f : ((float)dot * xs) * rs;
}

// M = 1: R weight rows at a time, two 64-byte steps per iteration so that
// 6R independent chains cover the vpdpbusd latency (with three, a row ran at
// ~80% of this rate in cache). R = 1, one forward stream as in w8_gemv,
// measured best from DRAM (R = 2 and 4 read 16-26 GB/s where R = 1 read
// 24-29 at N=5632,K=2048).
template <int R>
void a24_gemv(float* y, const A24Act& a, const int8_t* w, int64_t K, const float* rs, int64_t nn) {
  const __m512i flip = _mm512_set1_epi8((char)0x80);
  int64_t n = 0;
  for (; n + R <= nn; n += R) {
    const int8_t* wr = w + n * K;
    __m512i acc[R][2][kDigits];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
      for (int i = 0; i < 2 * kDigits; ++i) acc[r][i / kDigits][i % kDigits] = _mm512_setzero_si512();
    auto step = [&](int64_t k, __mmask64 mk, int s) {
      __m512i u[R];
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) u[r] = _mm512_xor_si512(_mm512_maskz_loadu_epi8(mk, wr + r * K + k), flip);
#pragma GCC unroll 16
      for (int j = 0; j < kDigits; ++j) {
        const __m512i qv = _mm512_loadu_si512(a.q + j * a.ldq + k);
#pragma GCC unroll 16
        for (int r = 0; r < R; ++r) acc[r][s][j] = _mm512_dpbusd_epi32(acc[r][s][j], u[r], qv);
      }
    };
    int64_t k = 0;
    for (; k + 128 <= K; k += 128) {
      step(k, ~(__mmask64)0, 0);
      step(k + 64, ~(__mmask64)0, 1);
    }
    // Past K the weights load as 0 (u = 128) against zero padding.
    for (; k < K; k += 64) step(k, K - k >= 64 ? ~(__mmask64)0 : ((__mmask64)1 << (K - k)) - 1, 0);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      int32_t raw[kDigits];
#pragma GCC unroll 16
      for (int j = 0; j < kDigits; ++j)
        raw[j] = _mm512_reduce_add_epi32(_mm512_add_epi32(acc[r][0][j], acc[r][1][j]));
      y[n + r] = a24_output(raw, a.corr, a.xs[0], rs[n + r]);
    }
  }
  if constexpr (R > 1) a24_gemv<1>(y + n, a, w + n * K, K, rs + n, nn - n);
}

// One activation row (its three digit rows) against NR weight rows.
template <int NR>
inline void a24_tile(float* y, const A24Act& a, int m, const int8_t* w, int64_t K, const float* rs) {
  static_assert(kDigits == 3);
  // Lane j * NR + n: digit j of weight row n.
  alignas(64) int32_t raw[16];
  _mm512_store_si512(raw, w8_dots<kDigits, NR>(a.q + (int64_t)m * kDigits * a.ldq, a.ldq, w, K));
  for (int n = 0; n < NR; ++n) {
    const int32_t digits[kDigits] = {raw[n], raw[NR + n], raw[2 * NR + n]};
    y[n] = a24_output(digits, a.corr + (int64_t)m * kDigits, a.xs[m], rs[n]);
  }
}

constexpr int kA24TileN = 4;

// Output columns [n0, n1): kA24TileN weight rows (16 KiB at K = 4096) stay
// in L1 while every activation row passes over them.
void a24_range(float* y, const A24Act& a, const int8_t* w, const float* rs, int M, int N, int64_t K,
               int64_t n0, int64_t n1) {
  if (M == 1) return a24_gemv<1>(y + n0, a, w + n0 * K, K, rs + n0, n1 - n0);
  int64_t n = n0;
  for (; n + kA24TileN <= n1; n += kA24TileN)
    for (int m = 0; m < M; ++m) a24_tile<kA24TileN>(y + (int64_t)m * N + n, a, m, w + n * K, K, rs + n);
  for (; n < n1; ++n)
    for (int m = 0; m < M; ++m) a24_tile<1>(y + (int64_t)m * N + n, a, m, w + n * K, K, rs + n);
}

// The integer paths' threading: output columns in groups of 16 weight rows,
// chunks of at least kMinWorkPerChunk (work_per_row: vector work of one
// weight row); range(n0, n1) computes columns [n0, n1).
template <class Range>
void over_row_groups(ThreadPool& pool, int N, int64_t work_per_row, Range&& range) {
  constexpr int64_t group = 16;
  const int64_t groups = (N + group - 1) / group;
  const int64_t grain = std::max<int64_t>(1, kMinWorkPerChunk / std::max<int64_t>(1, group * work_per_row));
  pool.parallel_for(
      groups, [&](int64_t g0, int64_t g1) { range(g0 * group, std::min<int64_t>(N, g1 * group)); }, grain);
}

// ---------------------------------------------------------------------------
// FP8 through BF16 dot products (CPUs with AVX-512 BF16 and VBMI).
//
// Widening FP8 codes to F32 costs four to six vector ops per 16 weights
// ahead of each FMA, and kept single-sequence FP8 decode compute-bound
// (63-65% of the bandwidth, docs/BENCHMARKS.md). Every FP8 value is exact in
// BF16: one vpermi2b per output byte maps 64 codes to the BF16 high bytes
// (sign ORed back in) and one to the low bytes, two in-lane unpacks pair
// them into 2 x 32 BF16 words, and vdpbf16ps multiplies 32 of them by 32
// BF16 activations in one instruction. The activations keep 16 significant
// bits as two BF16 each, x = h + l with h = bf16(x), l = bf16(x - h) (both
// rounded to nearest even, denormals as zero; l = 0 where h is infinite), so
// each weight vector meets two activation vectors. A BF16 x FP8 product is
// exact in F32; only the accumulation rounds. Two differences from the F32
// path at the edges of the range: an activation within half a BF16 step of
// the F32 maximum (|x| > 3.39e38) counts as infinite, and an E5M2 infinity
// code (which quantization never writes) gives NaN, not inf, wherever its
// activation is exact in BF16 (l = 0 meets inf).
//
// The order, the same for every M (tests/kernels/test_matmul_avx512.cpp
// models it in scalar code): K is cut into blocks of kKc; within a block,
// groups of 64 weights, the last one zero padded. Of a group's weights, W0
// holds those at 16 L + i and W1 those at 16 L + 8 + i (L < 4, i < 8: the
// unpack order, word 2 j and 2 j + 1 in F32 lane j), and the activation
// parts are stored in the same order. Two accumulators per output take,
// group by group, Ah += h.W0 then Ah += h.W1, and Al += l.W0 then
// Al += l.W1, one vdpbf16ps each (lane j adds its odd word's product, then
// its even word's, each rounded, a denormal result flushed to zero); the
// small parts keep their own sum so their bits are not lost against the
// large one's. At the end of a block the lanes are Al + Ah, then the
// canonical tree, the block sums added left to right, and the finished dot
// product times the row scale. (Four accumulators, h and l by W0 and W1,
// needed 16 registers for a 2 x 2 GEMM tile; with two the 2 x 4 tile keeps
// each activation vector in a register for four weight rows and the prefill
// shape runs as fast as the F32 GEMM, 104-108 GFLOP/s on one core.)

constexpr int64_t kDpGroup = 64;                 // weights per group
constexpr int64_t kDpPartWords = 2 * 32;         // one activation part of a group: W0 order, then W1 order
constexpr int64_t kDpXWords = 2 * kDpPartWords;  // h, then l

// The split activations of one call: row m's group g at
// xp + m * ldxp + g * kDpXWords, as [h W0 | h W1 | l W0 | l W1], 32 words each.
struct DpAct {
  const uint16_t* xp;
  int64_t ldxp;
};

// Splits x[0..K) into out (ceil(K / 64) groups, zero padded).
void split_bf16(const float* x, int64_t K, uint16_t* out) {
  const int64_t groups = (K + kDpGroup - 1) / kDpGroup;
  for (int64_t g = 0; g < groups; ++g) {
    uint16_t* o = out + g * kDpXWords;
    for (int L = 0; L < 4; ++L) {
      const int64_t k = g * kDpGroup + 16 * L;
      const int64_t n = std::clamp<int64_t>(K - k, 0, 16);
      const __m512 v = _mm512_maskz_loadu_ps(tail_mask(n), x + std::min(k, K));
      const __m256i h = (__m256i)_mm512_cvtneps_pbh(v);
      const __m512 hf = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
      // Where h is infinite (x is, or rounds past the largest BF16) l is 0,
      // not inf - inf: an infinite activation gives infinite products.
      const __mmask16 finite = _mm512_cmp_ps_mask(_mm512_abs_ps(hf), _mm512_set1_ps(INFINITY), _CMP_NEQ_UQ);
      const __m256i l = (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_sub_ps(finite, v, hf));
      // Elements 16 L + 0..7 go to W0 order, 16 L + 8..15 to W1 order.
      _mm_storeu_si128((__m128i*)(o + 8 * L), _mm256_castsi256_si128(h));
      _mm_storeu_si128((__m128i*)(o + 32 + 8 * L), _mm256_extracti128_si256(h, 1));
      _mm_storeu_si128((__m128i*)(o + 64 + 8 * L), _mm256_castsi256_si128(l));
      _mm_storeu_si128((__m128i*)(o + 96 + 8 * L), _mm256_extracti128_si256(l, 1));
    }
  }
}

struct Fp8Lut {
  __m512i h0, h1, l0, l1;
  explicit Fp8Lut(DType t) {
    const Fp8Bf16Table& tab = fp8_bf16_table(t);
    h0 = _mm512_load_si512(tab.hi);
    h1 = _mm512_load_si512(tab.hi + 64);
    l0 = _mm512_load_si512(tab.lo);
    l1 = _mm512_load_si512(tab.lo + 64);
  }
  // 64 FP8 codes as BF16 words in W0 and W1 order.
  void words(__m512i b, __m512i& w0, __m512i& w1) const {
    // vpermi2b indexes with the low seven bits; the sign bit is ORed back in.
    const __m512i hi =
        _mm512_ternarylogic_epi32(_mm512_permutex2var_epi8(h0, b, h1), b, _mm512_set1_epi8((char)0x80), 0xF8);
    const __m512i lo = _mm512_permutex2var_epi8(l0, b, l1);
    w0 = _mm512_unpacklo_epi8(lo, hi);
    w1 = _mm512_unpackhi_epi8(lo, hi);
  }
};

// Weights straight from the [N, K] code rows: converted as they are read.
struct DpRaw {
  const uint8_t* w;  // row 0 of the tile, at the block's first weight
  int64_t ldw;       // bytes per row
  const Fp8Lut* lut;
  void words(int n, int64_t g, int64_t valid, __m512i& w0, __m512i& w1) const {
    const uint8_t* p = w + n * ldw + g * kDpGroup;
    const __m512i b =
        valid >= kDpGroup ? _mm512_loadu_si512(p) : _mm512_maskz_loadu_epi8(((__mmask64)1 << valid) - 1, p);
    lut->words(b, w0, w1);
  }
};

// Weights converted once into a packed block: row n's group g at
// w + n * ld + g * 64, W0 then W1.
constexpr int64_t kDpPackLd = kKc + 32;  // words; the pad keeps a tile's rows off the same L1 sets

struct DpPacked {
  const uint16_t* w;
  void words(int n, int64_t g, int64_t, __m512i& w0, __m512i& w1) const {
    const uint16_t* p = w + n * kDpPackLd + g * kDpGroup;
    w0 = _mm512_loadu_si512(p);
    w1 = _mm512_loadu_si512(p + 32);
  }
};

inline __m512 dp(__m512 acc, __m512i x, __m512i w) { return _mm512_dpbf16_ps(acc, (__m512bh)x, (__m512bh)w); }
inline __m512 dp(__m512 acc, const uint16_t* x, __m512i w) { return dp(acc, _mm512_loadu_si512(x), w); }

// One k block (kn weights from group g0 of the activation rows) of MR
// activation rows against NR weight rows, reduced into y (first: write,
// else add).
template <int MR, int NR, class Src>
inline void dp_tile(float* y, int64_t ldy, const DpAct& a, int m0, int64_t g0, const Src& src, int64_t kn,
                    bool first) {
  __m512 acc[MR][NR][2];
#pragma GCC unroll 16
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 16
    for (int n = 0; n < NR; ++n) acc[m][n][0] = acc[m][n][1] = _mm512_setzero_ps();
  const int64_t groups = (kn + kDpGroup - 1) / kDpGroup;
  for (int64_t g = 0; g < groups; ++g) {
    __m512i w0[NR], w1[NR];
#pragma GCC unroll 16
    for (int n = 0; n < NR; ++n) src.words(n, g, kn - g * kDpGroup, w0[n], w1[n]);
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m) {
      const uint16_t* x = a.xp + (m0 + m) * a.ldxp + (g0 + g) * kDpXWords;
      // One part's two vectors at a time, held for every weight row (with
      // all four live the compiler reloaded them for each row instead).
#pragma GCC unroll 2
      for (int p = 0; p < 2; ++p) {
        const __m512i xa = _mm512_loadu_si512(x + 64 * p), xb = _mm512_loadu_si512(x + 64 * p + 32);
#pragma GCC unroll 16
        for (int n = 0; n < NR; ++n) acc[m][n][p] = dp(dp(acc[m][n][p], xa, w0[n]), xb, w1[n]);
      }
    }
  }
  __m512 sum[MR][NR];
#pragma GCC unroll 16
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 16
    for (int n = 0; n < NR; ++n) sum[m][n] = _mm512_add_ps(acc[m][n][1], acc[m][n][0]);
  finish<MR, NR>(sum, y, ldy, first);
}

// M = 1: one weight row after another, each row's blocks in order (one
// forward stream per thread, as gemv_rows); the finished block lanes are
// reduced 16 at a time.
void dp_gemv(float* y, const DpAct& a, const uint8_t* w, int64_t K, const Fp8Lut& lut, int64_t nn) {
  PendingSums sums(y);
  for (int64_t n = 0; n < nn; ++n) {
    const uint8_t* wr = w + n * K;
    for (int64_t kb = 0; kb < K; kb += kKc) {
      const int64_t kn = std::min(kKc, K - kb);
      const DpRaw src{wr + kb, K, &lut};
      __m512 acc[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
      const uint16_t* x = a.xp + (kb / kDpGroup) * kDpXWords;
      const int64_t groups = (kn + kDpGroup - 1) / kDpGroup;
      for (int64_t g = 0; g < groups; ++g, x += kDpXWords) {
        __m512i w0, w1;
        src.words(0, g, kn - g * kDpGroup, w0, w1);
        acc[0] = dp(dp(acc[0], x, w0), x + 32, w1);
        acc[1] = dp(dp(acc[1], x + 64, w0), x + 96, w1);
      }
      sums.push(_mm512_add_ps(acc[1], acc[0]), n, kb == 0);
    }
  }
}

// 2 <= M <= 4 (batched decode): NR weight rows converted once for all M
// activation rows; 2 * M * NR accumulators.
template <int MR>
void dp_small_range(float* y, const DpAct& a, const uint8_t* w, int N, int64_t K, const Fp8Lut& lut,
                    int64_t n0, int64_t n1) {
  constexpr int NR = MR == 2 ? 4 : MR == 3 ? 3 : 2;
  int64_t n = n0;
  for (; n + NR <= n1; n += NR)
    for (int64_t kb = 0; kb < K; kb += kKc)
      dp_tile<MR, NR>(y + n, N, a, 0, kb / kDpGroup, DpRaw{w + n * K + kb, K, &lut}, std::min(kKc, K - kb),
                      kb == 0);
  for (; n < n1; ++n)
    for (int64_t kb = 0; kb < K; kb += kKc)
      dp_tile<MR, 1>(y + n, N, a, 0, kb / kDpGroup, DpRaw{w + n * K + kb, K, &lut}, std::min(kKc, K - kb),
                     kb == 0);
}

// M = 1 with rows of a page or more: eight rows side by side, so each
// activation vector is loaded once per eight weight vectors. One row at a
// time read N = 2048, K = 5632 at 18-20 GB/s from DRAM, eight at 24-30
// (four: 20-25; brisk-kernel-bench matmul --dtype fp8-e4m3 --dpbf16 --M 1
// --threads 2): the 22 KiB of split activations no longer stay in L1 beside
// a single stream, as with the F32 path's long rows.
void dp_long_rows(float* y, const DpAct& a, const uint8_t* w, int N, int64_t K, const Fp8Lut& lut, int64_t n0,
                  int64_t n1) {
  constexpr int NR = 8;
  int64_t n = n0;
  for (; n + NR <= n1; n += NR)
    for (int64_t kb = 0; kb < K; kb += kKc)
      dp_tile<1, NR>(y + n, N, a, 0, kb / kDpGroup, DpRaw{w + n * K + kb, K, &lut}, std::min(kKc, K - kb),
                     kb == 0);
  for (; n < n1; ++n)
    for (int64_t kb = 0; kb < K; kb += kKc)
      dp_tile<1, 1>(y + n, N, a, 0, kb / kDpGroup, DpRaw{w + n * K + kb, K, &lut}, std::min(kKc, K - kb),
                    kb == 0);
}

constexpr int kDpTileM = 2, kDpTileN = 4;  // 16 accumulators, 8 weight vectors, 2 activation vectors

template <int MR>
void dp_tile_row(float* y, int64_t ldy, const DpAct& a, int m0, int64_t g0, const uint16_t* pw, int64_t nn,
                 int64_t kn, bool first) {
  int64_t n = 0;
  for (; n + kDpTileN <= nn; n += kDpTileN)
    dp_tile<MR, kDpTileN>(y + n, ldy, a, m0, g0, DpPacked{pw + n * kDpPackLd}, kn, first);
  static_assert(kDpTileN == 4);
  switch (nn - n) {
    case 3:
      return dp_tile<MR, 3>(y + n, ldy, a, m0, g0, DpPacked{pw + n * kDpPackLd}, kn, first);
    case 2:
      return dp_tile<MR, 2>(y + n, ldy, a, m0, g0, DpPacked{pw + n * kDpPackLd}, kn, first);
    case 1:
      return dp_tile<MR, 1>(y + n, ldy, a, m0, g0, DpPacked{pw + n * kDpPackLd}, kn, first);
    default:
      return;
  }
}

// M > 4 (prefill, larger batches): blocks of kNb rows x kKc converted into a
// per-thread packed buffer once, then every pair of activation rows passes
// over them.
void dp_gemm_range(float* y, const DpAct& a, const uint8_t* w, int M, int N, int64_t K, const Fp8Lut& lut,
                   int64_t n0, int64_t n1) {
  auto* packed = static_cast<uint16_t*>(scratch(0, sizeof(uint16_t) * kNb * kDpPackLd));
  for (int64_t nb = n0; nb < n1; nb += kNb) {
    const int64_t nn = std::min(n1, nb + kNb) - nb;
    for (int64_t kb = 0; kb < K; kb += kKc) {
      const int64_t kn = std::min(kKc, K - kb);
      const int64_t groups = (kn + kDpGroup - 1) / kDpGroup;
      const DpRaw raw{w + nb * K + kb, K, &lut};
      for (int n = 0; n < nn; ++n)
        for (int64_t g = 0; g < groups; ++g) {
          __m512i w0, w1;
          raw.words(n, g, kn - g * kDpGroup, w0, w1);
          _mm512_storeu_si512(packed + n * kDpPackLd + g * kDpGroup, w0);
          _mm512_storeu_si512(packed + n * kDpPackLd + g * kDpGroup + 32, w1);
        }
      const bool first = kb == 0;
      for (int m0 = 0; m0 < M; m0 += kDpTileM) {
        float* yt = y + (int64_t)m0 * N + nb;
        static_assert(kDpTileM == 2);
        if (M - m0 >= 2)
          dp_tile_row<2>(yt, N, a, m0, kb / kDpGroup, packed, nn, kn, first);
        else
          dp_tile_row<1>(yt, N, a, m0, kb / kDpGroup, packed, nn, kn, first);
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Q8_0 through 16-bit integer dot products (ref::matmul_q8_0_w16, bit for bit).
//
// Activations are rounded to 16-bit integers per row; a block's 32 weights
// are sign-extended to 16 bits in one instruction and multiplied and
// pair-summed by vpmaddwd (sixteen exact int32 lanes), converted, and
// accumulated lane-wise with the block's scale in one FMA: about 5 vector
// ops per block where widening to F32 takes 9. Every output keeps its own
// 16-lane accumulator over the whole row, in block order, and ends with the
// fixed tree of q16_sum, so the bits never depend on M, the tile or the
// thread split. Tiles are up to 4 activation rows by 4 weight rows; one
// activation row reads the weight rows one after another (a single forward
// stream: 8 side by side halved the rate from memory); for many rows the
// activations are taken 64 rows at a time so they stay in L2 while the
// weights pass once per such group.

constexpr int kQ16Rows = 64;  // activation rows per pass over the weights (prefill)

// The fixed tree of ref::matmul_q8_0_w16: lanes l + 8, then l + 4, l + 2, l + 1.
inline float q16_sum(__m512 v) {
  const __m256 a = _mm256_add_ps(_mm512_castps512_ps256(v),
                                 _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
  const __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  const __m128 c = _mm_add_ps(b, _mm_movehl_ps(b, b));
  return _mm_cvtss_f32(_mm_add_ss(c, _mm_movehdup_ps(c)));
}

// One row's activations as in ref::quantize_activation_row16 (K a multiple of 32).
float quantize_row16(const float* x, int64_t K, int16_t* q) {
  const RowAbsMax r = row_abs_max(x, K);
  const float amax = r.amax;
  const float inv_s = (float)ref::kA16Max / amax;
  if (!r.finite || !std::isfinite(inv_s)) {  // a zero row, or one too small for inv (ref's rule)
    std::memset(q, 0, sizeof(int16_t) * K);
    return r.finite ? 0.0f : NAN;
  }
  const __m512 inv = _mm512_set1_ps(inv_s);
  const __m512 lim = _mm512_set1_ps((float)ref::kA16Max);
  for (int64_t k = 0; k < K; k += 16) {
    // Round half to even (the default rounding mode), as nearbyint; the clamp only catches amax's own
    // rounding up.
    __m512 v = _mm512_roundscale_ps(_mm512_mul_ps(_mm512_loadu_ps(x + k), inv), _MM_FROUND_TO_NEAREST_INT);
    v = _mm512_min_ps(_mm512_max_ps(v, _mm512_sub_ps(_mm512_setzero_ps(), lim)), lim);
    _mm256_storeu_si256((__m256i*)(q + k), _mm512_cvtsepi32_epi16(_mm512_cvtps_epi32(v)));
  }
  return amax / (float)ref::kA16Max;
}

struct Q16Act {
  const int16_t* q;  // [M, K]
  const float* xs;   // [M]
};

// y[m, n] for rows m0..m0+MR and weight rows n0..n0+NR over the whole row (nb blocks).
template <int MR, int NR>
inline void q16_tile(float* y, int64_t N, const Q16Act& a, int64_t K, const BlockQ8_0* w, int64_t m0,
                     int64_t n0) {
  const int64_t nb = K / kQ8_0BlockSize;
  __m512 acc[MR][NR];
#pragma GCC unroll 8
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 8
    for (int n = 0; n < NR; ++n) acc[m][n] = _mm512_setzero_ps();
  for (int64_t j0 = 0; j0 < nb; j0 += 16) {
    const int64_t jn = std::min<int64_t>(16, nb - j0);
    // The scales of the next 16 blocks of each weight row, converted once.
    alignas(64) float d[NR][16];
#pragma GCC unroll 8
    for (int n = 0; n < NR; ++n) {
      alignas(32) uint16_t h[16] = {};
      const BlockQ8_0* b = w + (n0 + n) * nb + j0;
      for (int64_t j = 0; j < jn; ++j) h[j] = b[j].d;
      _mm512_store_ps(d[n], _mm512_cvtph_ps(_mm256_load_si256((const __m256i*)h)));
    }
    for (int64_t j = 0; j < jn; ++j) {
      __m512i xv[MR];
#pragma GCC unroll 8
      for (int m = 0; m < MR; ++m) xv[m] = _mm512_loadu_si512(a.q + (m0 + m) * K + 32 * (j0 + j));
#pragma GCC unroll 8
      for (int n = 0; n < NR; ++n) {
        const __m512i wv =
            _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i*)w[(n0 + n) * nb + j0 + j].qs));
        const __m512 dv = _mm512_set1_ps(d[n][j]);
#pragma GCC unroll 8
        for (int m = 0; m < MR; ++m)
          acc[m][n] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_madd_epi16(wv, xv[m])), dv, acc[m][n]);
      }
    }
  }
#pragma GCC unroll 8
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 8
    for (int n = 0; n < NR; ++n) y[(m0 + m) * N + n0 + n] = q16_sum(acc[m][n]) * a.xs[m0 + m];
}

// Rows m0..m0+MR against weight rows [n0, n1), NR at a time (the rest one by one).
template <int MR, int NR>
void q16_rows(float* y, int64_t N, const Q16Act& a, int64_t K, const BlockQ8_0* w, int64_t m0, int64_t n0,
              int64_t n1) {
  int64_t n = n0;
  for (; n + NR <= n1; n += NR) q16_tile<MR, NR>(y, N, a, K, w, m0, n);
  for (; n < n1; ++n) q16_tile<MR, 1>(y, N, a, K, w, m0, n);
}

void q16_range(float* y, const Q16Act& a, const BlockQ8_0* w, int M, int64_t N, int64_t K, int64_t n0,
               int64_t n1) {
  if (M == 1) return q16_rows<1, 1>(y, N, a, K, w, 0, n0, n1);
  for (int64_t mb = 0; mb < M; mb += kQ16Rows) {
    const int64_t me = std::min<int64_t>(M, mb + kQ16Rows);
    // Four weight rows at a time against every row of the group, so the four stay in L1.
    for (int64_t n = n0; n < n1; n += 4) {
      const int64_t ne = std::min(n1, n + 4);
      int64_t m = mb;
      for (; m + 4 <= me; m += 4) q16_rows<4, 4>(y, N, a, K, w, m, n, ne);
      switch (me - m) {
        case 3:
          q16_rows<3, 4>(y, N, a, K, w, m, n, ne);
          break;
        case 2:
          q16_rows<2, 4>(y, N, a, K, w, m, n, ne);
          break;
        case 1:
          q16_rows<1, 4>(y, N, a, K, w, m, n, ne);
          break;
        default:
          break;
      }
    }
  }
}

}  // namespace

bool matmul_fp8_dpbf16(ThreadPool& pool, float* y, const float* x, const uint8_t* w, DType wt,
                       const float* row_scales, int M, int N, int K) {
  static const bool has_vbmi = __builtin_cpu_supports("avx512vbmi");
  if (!has_vbmi || (wt != DType::F8_E4M3 && wt != DType::F8_E5M2) || !row_scales) return false;
  if (K == 0) {
    for (int64_t i = 0; i < (int64_t)M * N; ++i) y[i] = 0.0f;
    return true;
  }
  const int64_t ldxp = (K + kDpGroup - 1) / kDpGroup * kDpXWords;
  auto* xp = static_cast<uint16_t*>(scratch(1, sizeof(uint16_t) * (size_t)(M * ldxp)));
  auto split = [&](int64_t m0, int64_t m1) {
    for (int64_t m = m0; m < m1; ++m) split_bf16(x + m * K, K, xp + m * ldxp);
  };
  // Large M (prefill) splits on every thread; a few decode rows are not
  // worth waking the pool.
  if (M <= 4)
    split(0, M);
  else
    pool.parallel_for(M, split, std::max<int64_t>(1, kMinWorkPerChunk / std::max(1, K)));
  const DpAct act{xp, ldxp};
  const Fp8Lut lut(wt);
  over_column_groups(pool, M, N, K, [&](int64_t n0, int64_t n1) {
    switch (M) {
      case 1:
        if (K >= kShortRow)
          dp_long_rows(y, act, w, N, K, lut, n0, n1);
        else
          dp_gemv(y + n0, act, w + n0 * K, K, lut, n1 - n0);
        break;
      case 2:
        dp_small_range<2>(y, act, w, N, K, lut, n0, n1);
        break;
      case 3:
        dp_small_range<3>(y, act, w, N, K, lut, n0, n1);
        break;
      case 4:
        dp_small_range<4>(y, act, w, N, K, lut, n0, n1);
        break;
      default:
        dp_gemm_range(y, act, w, M, N, K, lut, n0, n1);
        break;
    }
    scale_columns(y, M, N, row_scales, 1.0f, n0, n1);
  });
  return true;
}

bool matmul_q8_0_w16(ThreadPool& pool, float* y, const float* x, const void* w, int M, int N, int K) {
  if (K % kQ8_0BlockSize != 0) return false;
  if (K == 0) {
    for (int64_t i = 0; i < (int64_t)M * N; ++i) y[i] = 0.0f;
    return true;
  }
  auto* q =
      static_cast<int16_t*>(scratch(1, sizeof(int16_t) * (size_t)M * K + sizeof(float) * (size_t)M + 64));
  auto* xs = reinterpret_cast<float*>(q + (size_t)M * K);
  auto quantize = [&](int64_t m0, int64_t m1) {
    for (int64_t m = m0; m < m1; ++m) xs[m] = quantize_row16(x + m * K, K, q + m * K);
  };
  // Large M (prefill) quantizes on every thread; a few decode rows are not
  // worth waking the pool.
  if (M <= 4)
    quantize(0, M);
  else
    pool.parallel_for(M, quantize, std::max<int64_t>(1, kMinWorkPerChunk / std::max(1, K)));
  const Q16Act act{q, xs};
  const auto* blocks = static_cast<const BlockQ8_0*>(w);
  over_row_groups(pool, N, (int64_t)K * M / 8,
                  [&](int64_t n0, int64_t n1) { q16_range(y, act, blocks, M, N, K, n0, n1); });
  return true;
}

bool matmul(ThreadPool& pool, float* y, const float* x, const void* w, DType wt, int M, int N, int K,
            const float* row_scales) {
  if (wt != DType::F32 && wt != DType::F16 && wt != DType::BF16 && wt != DType::Q8_0 && !is_scaled(wt))
    return false;
  if (wt == DType::Q8_0 && K % kQ8_0BlockSize != 0) return false;  // not a valid Q8_0 row
  if (is_scaled(wt) && !row_scales) return false;                  // the caller's reference path reports it
  if (K == 0) {  // the k loops would write nothing: an empty sum is 0
    for (int64_t i = 0; i < (int64_t)M * N; ++i) y[i] = 0.0f;
    return true;
  }
  switch (wt) {
    case DType::F32:
      matmul_t<DType::F32>(pool, y, x, w, M, N, K);
      return true;
    case DType::F16:
      matmul_t<DType::F16>(pool, y, x, w, M, N, K);
      return true;
    case DType::BF16:
      matmul_t<DType::BF16>(pool, y, x, w, M, N, K);
      return true;
    case DType::Q8_0:
      matmul_t<DType::Q8_0>(pool, y, x, w, M, N, K);
      return true;
    case DType::I8:
      matmul_t<DType::I8>(pool, y, x, w, M, N, K, row_scales);
      return true;
    case DType::F8_E4M3:
      matmul_t<DType::F8_E4M3>(pool, y, x, w, M, N, K, row_scales);
      return true;
    case DType::F8_E5M2:
      matmul_t<DType::F8_E5M2>(pool, y, x, w, M, N, K, row_scales);
      return true;
    default:
      return false;
  }
}

bool matmul_w8a8(ThreadPool& pool, float* y, const float* x, const int8_t* w, const float* row_scales, int M,
                 int N, int K) {
  if (K > (1 << 17)) return false;  // the int32 dot product could overflow
  // One spare cache line per row so the rows of a tile do not share L1 sets
  // when K is a multiple of 2 KiB.
  const int64_t ldq = (K + kW8Pad - 1) / kW8Pad * kW8Pad + 64;
  // Quantized activations live in the calling thread's scratch, which the
  // pool's workers only read while this call runs.
  auto* buf = static_cast<int8_t*>(scratch(1, (size_t)(M * ldq + 8 * M + 64)));
  auto* xs = reinterpret_cast<float*>(buf + M * ldq);
  auto* corr = reinterpret_cast<int32_t*>(xs + M);
  for (int m = 0; m < M; ++m) xs[m] = quantize_row(x + (int64_t)m * K, K, buf + m * ldq, &corr[m]);
  const W8Act act{buf, ldq, xs, corr};
  over_row_groups(pool, N, (int64_t)K * M / 4,
                  [&](int64_t n0, int64_t n1) { w8_range(y, act, w, row_scales, M, N, K, n0, n1); });
  return true;
}

bool matmul_w8a24(ThreadPool& pool, float* y, const float* x, const int8_t* w, const float* row_scales, int M,
                  int N, int K) {
  if (K >= (1 << 17)) return false;  // a digit's int32 dot product (or its correction) could overflow
  const int64_t ldq = (K + kW8Pad - 1) / kW8Pad * kW8Pad + 64;
  const int64_t rows = (int64_t)M * kDigits;
  auto* buf = static_cast<int8_t*>(scratch(1, (size_t)(rows * ldq + 4 * M + 4 * rows + 64)));
  auto* xs = reinterpret_cast<float*>(buf + rows * ldq);
  auto* corr = reinterpret_cast<int32_t*>(xs + M);
  auto quantize = [&](int64_t m0, int64_t m1) {
    for (int64_t m = m0; m < m1; ++m)
      xs[m] = quantize_row24(x + m * K, K, buf + m * kDigits * ldq, ldq, corr + m * kDigits);
  };
  // Large M (prefill) quantizes on every thread; a few decode rows are not
  // worth waking the pool.
  if (M <= 4)
    quantize(0, M);
  else
    pool.parallel_for(M, quantize, std::max<int64_t>(1, kMinWorkPerChunk / std::max(1, K)));
  const A24Act act{buf, ldq, xs, corr};
  over_row_groups(pool, N, (int64_t)K * M * kDigits / 4,
                  [&](int64_t n0, int64_t n1) { a24_range(y, act, w, row_scales, M, N, K, n0, n1); });
  return true;
}

}  // namespace brisk::cpu::avx512
#pragma GCC pop_options
#pragma GCC diagnostic pop
