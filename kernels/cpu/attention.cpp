// The paged KV cache (F32/F16/BF16/I8/F8_E4M3): writes into it, the fused
// RoPE + cache write, and attention reading it through block tables.
#include "kernels/cpu/attention.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cpu/isa.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/simd.h"

namespace brisk::cpu::avx2 {
void kv_write(ThreadPool& pool, const KvCacheView& k, const KvCacheView& v, const float* k_rows,
              const float* v_rows, const int32_t* slots, int T);
void paged_attention(ThreadPool& pool, float* out, const float* q, const KvCacheView& k, const KvCacheView& v,
                     const PagedAttentionArgs& a);
void rope_kv_write(ThreadPool& pool, float* q, const float* k, const float* v, const int32_t* pos,
                   const int32_t* slots, int T, int n_heads, int rot_dim, float theta,
                   const KvCacheView& k_cache, const KvCacheView& v_cache);
}  // namespace brisk::cpu::avx2

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
namespace brisk::cpu::avx2 {
namespace {
using namespace simd;

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

// ---------------------------------------------------------------------------
// Encoding. Every encoder produces exactly the bytes of ref::kv_store_head.

// BF16 of 8 floats, nearest even, NaN kept NaN (as fp32_to_bf16).
inline __m128i bf16_x8(__m256 x) {
  const __m256i bits = _mm256_castps_si256(x);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
  __m256i r = _mm256_srli_epi32(_mm256_add_epi32(bits, _mm256_add_epi32(_mm256_set1_epi32(0x7fff), lsb)), 16);
  const __m256i abs = _mm256_and_si256(bits, _mm256_set1_epi32(0x7fffffff));
  const __m256i nan = _mm256_cmpgt_epi32(abs, _mm256_set1_epi32(0x7f800000));
  r = _mm256_blendv_epi8(r, _mm256_or_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(0x40)), nan);
  r = _mm256_and_si256(r, _mm256_set1_epi32(0xffff));
  return _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
}

// FP8 E4M3 codes of 8 floats in the low 8 bytes, as fp32_to_fp8_e4m3: nearest
// even, saturating to +-448, NaN -> 0x7f.
inline __m128i fp8_e4m3_x8(__m256 y) {
  const __m256i bits = _mm256_castps_si256(y);
  const __m256i sign = _mm256_and_si256(_mm256_srli_epi32(bits, 24), _mm256_set1_epi32(0x80));
  const __m256i abits = _mm256_and_si256(bits, _mm256_set1_epi32(0x7fffffff));
  // Normal codes: round the F32 significand to 3 bits (a carry bumps the
  // exponent), then rebias the exponent from 127 to 7.
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(abits, 20), _mm256_set1_epi32(1));
  const __m256i r = _mm256_add_epi32(abits, _mm256_add_epi32(_mm256_set1_epi32(0x7ffff), lsb));
  __m256i code = _mm256_sub_epi32(_mm256_srli_epi32(r, 20), _mm256_set1_epi32(120 << 3));
  code = _mm256_min_epi32(code, _mm256_set1_epi32(0x7e));
  // Below 2^-6 the codes are multiples of 2^-9 (8 is the smallest normal).
  const __m256i sub = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_castsi256_ps(abits), _mm256_set1_ps(512.0f)));
  code = _mm256_blendv_epi8(code, sub, _mm256_cmpgt_epi32(_mm256_set1_epi32(0x3c800000), abits));
  code = _mm256_or_si256(code, sign);
  code = _mm256_blendv_epi8(code, _mm256_set1_epi32(0x7f),
                            _mm256_cmpgt_epi32(abits, _mm256_set1_epi32(0x7f800000)));
  const __m128i p16 = _mm_packus_epi32(_mm256_castsi256_si128(code), _mm256_extracti128_si256(code, 1));
  return _mm_packus_epi16(p16, p16);
}

// I8 codes of 8 floats (already divided by the scale) in the low 8 bytes.
inline __m128i i8_x8(__m256 y) {
  __m256i q = _mm256_cvtps_epi32(y);  // nearest even under the default rounding mode
  q = _mm256_max_epi32(_mm256_min_epi32(q, _mm256_set1_epi32(127)), _mm256_set1_epi32(-127));
  const __m128i p16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
  return _mm_packs_epi16(p16, p16);
}

template <DType KT>
void store_head(const KvCacheView& c, int64_t slot, int head, const float* src) {
  const int D = c.head_dim;
  const int64_t at = (slot * c.n_kv_heads + head) * D;
  int d = 0;
  if constexpr (KT == DType::F32) {
    std::memcpy(static_cast<float*>(c.data) + at, src, sizeof(float) * D);
    return;
  } else if constexpr (KT == DType::F16 || KT == DType::BF16) {
    uint16_t* dst = static_cast<uint16_t*>(c.data) + at;
    for (; d + 8 <= D; d += 8) {
      const __m256 x = _mm256_loadu_ps(src + d);
      const __m128i h = KT == DType::F16 ? _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT) : bf16_x8(x);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + d), h);
    }
    for (; d < D; ++d) dst[d] = KT == DType::F16 ? fp32_to_fp16(src[d]) : fp32_to_bf16(src[d]);
  } else {
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 mv = _mm256_setzero_ps();
    for (; d + 8 <= D; d += 8) mv = _mm256_max_ps(mv, _mm256_and_ps(abs_mask, _mm256_loadu_ps(src + d)));
    float absmax = hmax(mv);
    for (; d < D; ++d) absmax = std::max(absmax, std::fabs(src[d]));
    const float scale = absmax / (KT == DType::I8 ? kI8Max : kF8E4M3Max);
    c.scales[slot * c.n_kv_heads + head] = scale;
    uint8_t* dst = static_cast<uint8_t*>(c.data) + at;
    if (!(scale > 0.0f)) {
      std::memset(dst, 0, D);
      return;
    }
    // Divide (not multiply by a reciprocal) so the codes are the reference's.
    const __m256 sv = _mm256_set1_ps(scale);
    for (d = 0; d + 8 <= D; d += 8) {
      const __m256 y = _mm256_div_ps(_mm256_loadu_ps(src + d), sv);
      _mm_storel_epi64(reinterpret_cast<__m128i*>(dst + d), KT == DType::I8 ? i8_x8(y) : fp8_e4m3_x8(y));
    }
    for (; d < D; ++d) {
      const float y = src[d] / scale;
      dst[d] = KT == DType::I8 ? (uint8_t)(int8_t)std::clamp(std::nearbyint(y), -kI8Max, kI8Max)
                               : fp32_to_fp8_e4m3(y);
    }
  }
}

using StoreHead = void (*)(const KvCacheView&, int64_t, int, const float*);

StoreHead store_head_for(DType t) {
  switch (t) {
    case DType::F32:
      return store_head<DType::F32>;
    case DType::F16:
      return store_head<DType::F16>;
    case DType::BF16:
      return store_head<DType::BF16>;
    case DType::I8:
      return store_head<DType::I8>;
    case DType::F8_E4M3:
      return store_head<DType::F8_E4M3>;
    default:
      throw std::invalid_argument(std::string("KV cache dtype ") + dtype_name(t));
  }
}

// ---------------------------------------------------------------------------
// Decoding: row (slot, head) as F32, exactly ref::kv_load's values.

// E4M3 -> F16 is a shift (same mantissa width plus 7, exponent bias 15 vs 7:
// the F16 is the value / 256), so F16C converts FP8 subnormals exactly.
inline __m256 fp8_e4m3_x8_div256(const uint8_t* p) {
  const __m128i b = _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  const __m128i mag = _mm_slli_epi16(_mm_and_si128(b, _mm_set1_epi16(0x7f)), 7);
  const __m128i sign = _mm_slli_epi16(_mm_and_si128(b, _mm_set1_epi16(0x80)), 8);
  return _mm256_cvtph_ps(_mm_or_si128(mag, sign));
}

template <DType KT>
inline void load_head(float* dst, const KvCacheView& c, int64_t slot, int head) {
  const int D = c.head_dim;
  const int64_t at = (slot * c.n_kv_heads + head) * D;
  int d = 0;
  if constexpr (KT == DType::F16) {
    const uint16_t* src = static_cast<const uint16_t*>(c.data) + at;
    for (; d + 8 <= D; d += 8)
      _mm256_storeu_ps(dst + d, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + d))));
    for (; d < D; ++d) dst[d] = _cvtsh_ss(src[d]);
  } else if constexpr (KT == DType::BF16) {
    const uint16_t* src = static_cast<const uint16_t*>(c.data) + at;
    for (; d + 8 <= D; d += 8) {
      const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + d)));
      _mm256_storeu_ps(dst + d, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
    }
    for (; d < D; ++d) dst[d] = bf16_to_fp32(src[d]);
  } else if constexpr (KT == DType::I8) {
    const int8_t* src = static_cast<const int8_t*>(c.data) + at;
    const float scale = c.scales[slot * c.n_kv_heads + head];
    const __m256 sv = _mm256_set1_ps(scale);
    for (; d + 8 <= D; d += 8) {
      const __m256i w = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(src + d)));
      _mm256_storeu_ps(dst + d, _mm256_mul_ps(_mm256_cvtepi32_ps(w), sv));
    }
    for (; d < D; ++d) dst[d] = (float)src[d] * scale;
  } else if constexpr (KT == DType::F8_E4M3) {
    const uint8_t* src = static_cast<const uint8_t*>(c.data) + at;
    const float scale = c.scales[slot * c.n_kv_heads + head];
    // (v / 256) * (256 * scale) rounds once, like v * scale: both products
    // by 256 are exact.
    const __m256 sv = _mm256_set1_ps(256.0f * scale);
    for (; d + 8 <= D; d += 8) _mm256_storeu_ps(dst + d, _mm256_mul_ps(fp8_e4m3_x8_div256(src + d), sv));
    for (; d < D; ++d) dst[d] = fp8_e4m3_to_fp32(src[d]) * scale;
  }
}

// Query rows [i0, i1) of the item list (row, KV head), for one cache dtype.
// F32 caches are read in place; the others are decoded a key block at a time
// into scratch (once per block, shared by all query heads of the group).
template <DType KT>
void attend(float* out, const float* q, const KvCacheView& k, const KvCacheView& v,
            const PagedAttentionArgs& a, const int32_t* row_seq, int64_t items, int64_t i0, int64_t i1) {
  constexpr int kKeyBlock = 64;
  const int D = a.head_dim;
  const int group = a.n_heads / a.n_kv_heads;
  const int64_t q_width = (int64_t)a.n_heads * D;
  const int64_t kv_width = (int64_t)a.n_kv_heads * D;
  // Keys are processed in blocks: scores for a block first, then one rescale
  // of the running sums per block instead of per key.
  thread_local std::vector<float> buf;
  thread_local std::vector<const float*> rows;
  const size_t decoded = KT == DType::F32 ? 0 : 2 * (size_t)kKeyBlock * D;
  buf.resize((size_t)group * (kKeyBlock + D + 2) + decoded);
  rows.resize(2 * kKeyBlock);
  float* scores = buf.data();                 // [group][kKeyBlock]
  float* acc = scores + group * kKeyBlock;    // [group][D]
  float* run_max = acc + (int64_t)group * D;  // [group]
  float* run_sum = run_max + group;           // [group]
  float* kdec = run_sum + group;              // [kKeyBlock][D] (decoded keys)
  float* vdec = kdec + (int64_t)kKeyBlock * D;
  const float** krow = rows.data();
  const float** vrow = krow + kKeyBlock;
  const float* k_cache = static_cast<const float*>(k.data);
  const float* v_cache = static_cast<const float*>(v.data);
  for (int64_t i = i0; i < i1; ++i) {
    // Later rows of a prefill attend to more keys; handing them out first
    // lets the short ones fill in at the end and balances threads.
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
        if constexpr (KT == DType::F32) {
          const int64_t off = slot * kv_width + (int64_t)kvh * D;
          krow[j] = k_cache + off;
          vrow[j] = v_cache + off;
        } else {
          load_head<KT>(kdec + (int64_t)j * D, k, slot, kvh);
          load_head<KT>(vdec + (int64_t)j * D, v, slot, kvh);
          krow[j] = kdec + (int64_t)j * D;
          vrow[j] = vdec + (int64_t)j * D;
        }
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
}

}  // namespace

void kv_write(ThreadPool& pool, const KvCacheView& k, const KvCacheView& v, const float* k_rows,
              const float* v_rows, const int32_t* slots, int T) {
  const StoreHead store_k = store_head_for(k.dtype), store_v = store_head_for(v.dtype);
  const int D = k.head_dim;
  const int64_t width = (int64_t)k.n_kv_heads * D;
  pool.parallel_for(
      T,
      [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t)
          for (int h = 0; h < k.n_kv_heads; ++h) {
            store_k(k, slots[t], h, k_rows + t * width + (int64_t)h * D);
            store_v(v, slots[t], h, v_rows + t * width + (int64_t)h * D);
          }
      },
      grain_for(2 * width));
}

void rope_kv_write(ThreadPool& pool, float* q, const float* k, const float* v, const int32_t* pos,
                   const int32_t* slots, int T, int n_heads, int rot_dim, float theta,
                   const KvCacheView& k_cache, const KvCacheView& v_cache) {
  const StoreHead store_k = store_head_for(k_cache.dtype), store_v = store_head_for(v_cache.dtype);
  const int D = k_cache.head_dim, n_kv = k_cache.n_kv_heads;
  const int64_t kv_width = (int64_t)n_kv * D;
  const int pairs = rot_dim / 2;
  // Grown once and reused: no allocation on the per-step path. (A local
  // reference, so the pool's threads read the caller's buffer, not their own.)
  thread_local std::vector<double> freq_buf;
  std::vector<double>& freq = freq_buf;
  freq.resize(pairs);
  for (int i = 0; i < pairs; ++i) freq[i] = std::pow((double)theta, -2.0 * i / rot_dim);
  pool.parallel_for(
      T,
      [&](int64_t t0, int64_t t1) {
        thread_local std::vector<float> buf;
        buf.resize(2 * (size_t)pairs + D);
        float* cs = buf.data();
        float* kr = cs + 2 * pairs;  // one rotated key head
        const auto rotate = [&](float* x) {
          for (int i = 0; i < pairs; ++i) {
            const float a = x[2 * i], b = x[2 * i + 1], c = cs[2 * i], s = cs[2 * i + 1];
            x[2 * i] = a * c - b * s;
            x[2 * i + 1] = a * s + b * c;
          }
        };
        for (int64_t t = t0; t < t1; ++t) {
          // Angles in double, as cpu::rope: pos * freq reaches thousands of
          // radians, where a float angle would already be off by ~1e-4.
          for (int i = 0; i < pairs; ++i) {
            const double angle = pos[t] * freq[i];
            cs[2 * i] = (float)std::cos(angle);
            cs[2 * i + 1] = (float)std::sin(angle);
          }
          for (int h = 0; h < n_heads; ++h) rotate(q + (t * n_heads + h) * D);
          for (int h = 0; h < n_kv; ++h) {
            std::memcpy(kr, k + t * kv_width + (int64_t)h * D, sizeof(float) * D);
            rotate(kr);
            store_k(k_cache, slots[t], h, kr);
            store_v(v_cache, slots[t], h, v + t * kv_width + (int64_t)h * D);
          }
        }
      },
      grain_for((int64_t)(n_heads + n_kv) * rot_dim + 2 * kv_width + 16 * pairs));
}

void paged_attention(ThreadPool& pool, float* out, const float* q, const KvCacheView& k, const KvCacheView& v,
                     const PagedAttentionArgs& a) {
  const int total_rows = a.query_start[a.num_seqs];
  if (total_rows <= 0) return;
  const int64_t q_width = (int64_t)a.n_heads * a.head_dim;
  // Reused across calls (no per-step allocation); a local reference so the
  // pool's threads read the caller's buffer, not their own thread_local.
  thread_local std::vector<int32_t> row_seq_buf;
  std::vector<int32_t>& row_seq = row_seq_buf;
  row_seq.resize(total_rows);
  int64_t work = 0;  // multiply-adds, to decide whether threads are worth waking
  for (int s = 0; s < a.num_seqs; ++s) {
    for (int r = a.query_start[s]; r < a.query_start[s + 1]; ++r) row_seq[r] = s;
    const int64_t q_len = a.query_start[s + 1] - a.query_start[s];
    work += q_len * (a.seq_lens[s] - (q_len - 1) / 2) * 2 * q_width;
  }
  // One work item is a query row and a KV head with all the query heads that
  // share it, so each key and value row is read (and decoded) once per group.
  const int64_t items = (int64_t)total_rows * a.n_kv_heads;
  const int64_t grain = work < kMinWorkPerChunk ? items : 1;
  auto run = [&](auto fn) {
    pool.parallel_for(
        items, [&](int64_t i0, int64_t i1) { fn(out, q, k, v, a, row_seq.data(), items, i0, i1); }, grain);
  };
  switch (k.dtype) {
    case DType::F32:
      return run(attend<DType::F32>);
    case DType::F16:
      return run(attend<DType::F16>);
    case DType::BF16:
      return run(attend<DType::BF16>);
    case DType::I8:
      return run(attend<DType::I8>);
    case DType::F8_E4M3:
      return run(attend<DType::F8_E4M3>);
    default:
      throw std::invalid_argument(std::string("KV cache dtype ") + dtype_name(k.dtype));
  }
}

}  // namespace brisk::cpu::avx2
#pragma GCC pop_options

// Dispatch, compiled for the baseline ISA: the portable path is the reference
// split over threads, so nothing here may be built with AVX2.
namespace brisk::cpu {
namespace {

bool use_avx2() { return active_isa() != Isa::Scalar; }

void check_caches(const KvCacheView& k, const KvCacheView& v) {
  for (const KvCacheView* c : {&k, &v})
    if (!kv_dtype_supported(c->dtype))
      throw std::invalid_argument(std::string("KV cache dtype ") + dtype_name(c->dtype) +
                                  ": not one of F32, F16, BF16, I8, F8_E4M3");
  if (k.dtype != v.dtype || k.n_kv_heads != v.n_kv_heads || k.head_dim != v.head_dim)
    throw std::invalid_argument("K and V caches differ in dtype or shape");
}

}  // namespace

void kv_write(ThreadPool& pool, const KvCacheView& k, const KvCacheView& v, const float* k_rows,
              const float* v_rows, const int32_t* slots, int T) {
  check_caches(k, v);
  if (use_avx2()) return avx2::kv_write(pool, k, v, k_rows, v_rows, slots, T);
  const int64_t width = (int64_t)k.n_kv_heads * k.head_dim;
  pool.parallel_for(T, [&](int64_t t0, int64_t t1) {
    ref::kv_write(k, v, k_rows + t0 * width, v_rows + t0 * width, slots + t0, (int)(t1 - t0));
  });
}

void paged_attention(ThreadPool& pool, float* out, const float* q, const KvCacheView& k, const KvCacheView& v,
                     const PagedAttentionArgs& a) {
  check_caches(k, v);
  if (use_avx2()) return avx2::paged_attention(pool, out, q, k, v, a);
  const int total_rows = a.query_start[a.num_seqs];
  if (total_rows <= 0) return;
  // Reused across calls (no per-step allocation); a local reference so the
  // pool's threads read the caller's buffer, not their own thread_local.
  thread_local std::vector<int32_t> row_seq_buf;
  std::vector<int32_t>& row_seq = row_seq_buf;
  row_seq.resize(total_rows);
  for (int s = 0; s < a.num_seqs; ++s)
    for (int r = a.query_start[s]; r < a.query_start[s + 1]; ++r) row_seq[r] = s;
  const int64_t q_width = (int64_t)a.n_heads * a.head_dim;
  // Query row j of a sequence attends to keys 0..seq_len - q_len + j: the same
  // as the last row of a one-row sequence that long, so rows run independently.
  pool.parallel_for(total_rows, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int s = row_seq[r];
      const int q_len = a.query_start[s + 1] - a.query_start[s];
      const int32_t qs[2] = {0, 1};
      const int32_t len = a.seq_lens[s] - q_len + (int)(r - a.query_start[s]) + 1;
      PagedAttentionArgs one = a;
      one.num_seqs = 1;
      one.query_start = qs;
      one.seq_lens = &len;
      one.block_tables = a.block_tables + (int64_t)s * a.max_blocks_per_seq;
      ref::paged_attention(out + r * q_width, q + r * q_width, k, v, one);
    }
  });
}

void rope_kv_write(ThreadPool& pool, float* q, const float* k, const float* v, const int32_t* pos,
                   const int32_t* slots, int T, int n_heads, int rot_dim, float theta,
                   const KvCacheView& k_cache, const KvCacheView& v_cache) {
  check_caches(k_cache, v_cache);
  if (use_avx2())
    return avx2::rope_kv_write(pool, q, k, v, pos, slots, T, n_heads, rot_dim, theta, k_cache, v_cache);
  const int64_t q_width = (int64_t)n_heads * k_cache.head_dim;
  const int64_t kv_width = (int64_t)k_cache.n_kv_heads * k_cache.head_dim;
  pool.parallel_for(T, [&](int64_t t0, int64_t t1) {
    ref::rope_kv_write(q + t0 * q_width, k + t0 * kv_width, v + t0 * kv_width, pos + t0, slots + t0,
                       (int)(t1 - t0), n_heads, rot_dim, theta, k_cache, v_cache);
  });
}

// The F32-only entry points of kernels/cpu/ops.h.
void kv_write(ThreadPool& pool, float* k_cache, float* v_cache, const float* k, const float* v,
              const int32_t* slots, int T, int kv_width) {
  kv_write(pool, KvCacheView{k_cache, nullptr, DType::F32, 1, kv_width},
           KvCacheView{v_cache, nullptr, DType::F32, 1, kv_width}, k, v, slots, T);
}

void paged_attention(ThreadPool& pool, float* out, const float* q, const float* k_cache, const float* v_cache,
                     const PagedAttentionArgs& a) {
  paged_attention(pool, out, q,
                  KvCacheView{const_cast<float*>(k_cache), nullptr, DType::F32, a.n_kv_heads, a.head_dim},
                  KvCacheView{const_cast<float*>(v_cache), nullptr, DType::F32, a.n_kv_heads, a.head_dim}, a);
}

}  // namespace brisk::cpu
