#include "kernels/quantize.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <thread>
#include <vector>

#include "kernels/cpu/isa.h"

namespace brisk {
namespace {

// Row blocks below this many elements are not worth a thread of their own.
constexpr int64_t kMinElemsPerThread = 1 << 20;

inline uint32_t bits_of(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

inline float float_of(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

// nearbyint for |v| < 2^22 in the default rounding mode (half to even): adding
// 1.5 * 2^23 leaves no fraction bits, so the FPU rounds; unlike a libm call
// this vectorises.
inline float round_even(float v) {
  constexpr float kMagic = 12582912.0f;
  return (v + kMagic) - kMagic;
}

// fp32_to_fp8_e4m3 / _e5m2 (kernels/dtype.cpp) with integer arithmetic instead of
// frexp/ldexp: a normal value's F32 bits, rebiased, are already the FP8 code
// followed by the mantissa bits to round away. Same results for every input
// (the test compares them on all ties and both subnormal ranges).
template <int M, int B>
inline uint8_t fp8_encode_fast(float f, uint8_t max_code, float max_finite) {
  const uint32_t b = bits_of(f);
  const uint32_t abs = b & 0x7fffffffu;
  if (abs > 0x7f800000u) return 0x7f;  // NaN
  const uint8_t sign = (uint8_t)((b >> 24) & 0x80);
  const float a = float_of(abs);
  if (a >= max_finite) return sign | max_code;
  constexpr uint32_t kMinNormalBits = (uint32_t)(127 + 1 - B) << 23;
  if (abs < kMinNormalBits)  // subnormal: multiples of 2^(1-B-M), exact scaling then rounding
    return sign | (uint8_t)round_even(a * (float)(1 << (B + M - 1)));
  constexpr int kDrop = 23 - M;
  const uint32_t r = abs - ((uint32_t)(127 - B) << 23);
  const uint32_t code = (r + ((1u << (kDrop - 1)) - 1) + ((r >> kDrop) & 1)) >> kDrop;
  return sign | (uint8_t)std::min<uint32_t>(code, max_code);
}

inline uint8_t e4m3(float f) { return fp8_encode_fast<3, 7>(f, 0x7e, kF8E4M3Max); }
inline uint8_t e5m2(float f) { return fp8_encode_fast<2, 15>(f, 0x7b, kF8E5M2Max); }

}  // namespace
}  // namespace brisk

// AVX2 versions of the row encoders below, bit-identical to them (the test
// compares both paths on every dtype): F32 division and rounding are exact
// IEEE operations in either form, and the FP8 code arithmetic is the same.
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
namespace brisk::quant_avx2 {
namespace {

inline __m256 abs8(__m256 v) { return _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff))); }

float abs_max(const float* x, int64_t n) {
  __m256 m0 = _mm256_setzero_ps(), m1 = m0;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    m0 = _mm256_max_ps(m0, abs8(_mm256_loadu_ps(x + i)));
    m1 = _mm256_max_ps(m1, abs8(_mm256_loadu_ps(x + i + 8)));
  }
  for (; i + 8 <= n; i += 8) m0 = _mm256_max_ps(m0, abs8(_mm256_loadu_ps(x + i)));
  float lanes[8];
  _mm256_storeu_ps(lanes, _mm256_max_ps(m0, m1));
  float m = 0.0f;
  for (float v : lanes) m = m > v ? m : v;
  for (; i < n; ++i) m = m > std::fabs(x[i]) ? m : std::fabs(x[i]);
  return m;
}

// 32 int32 codes in [0, 255] (or [-127, 127]) to 32 bytes, in order.
inline void store_codes(uint8_t* q, __m256i c0, __m256i c1, __m256i c2, __m256i c3, bool is_signed) {
  const __m256i p01 = _mm256_packs_epi32(c0, c1), p23 = _mm256_packs_epi32(c2, c3);
  const __m256i p = is_signed ? _mm256_packs_epi16(p01, p23) : _mm256_packus_epi16(p01, p23);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(q),
                      _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
}

// Returns how many leading values it did (a multiple of 32).
int64_t quantize_i8(uint8_t* q, const float* x, int64_t n, float scale) {
  const __m256 s = _mm256_set1_ps(scale), lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
  auto code = [&](int64_t i) {
    const __m256 v = _mm256_round_ps(_mm256_div_ps(_mm256_loadu_ps(x + i), s),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    return _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(v, lo), hi));
  };
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) store_codes(q + i, code(i), code(i + 8), code(i + 16), code(i + 24), true);
  return i;
}

// fp8_encode_fast on 8 lanes.
template <int M, int B>
inline __m256i fp8_codes(__m256 f, int max_code, float max_finite) {
  constexpr int kDrop = 23 - M;
  const __m256i b = _mm256_castps_si256(f);
  const __m256i abs = _mm256_and_si256(b, _mm256_set1_epi32(0x7fffffff));
  const __m256 a = _mm256_castsi256_ps(abs);
  const __m256i sign = _mm256_and_si256(_mm256_srli_epi32(b, 24), _mm256_set1_epi32(0x80));
  const __m256i r = _mm256_sub_epi32(abs, _mm256_set1_epi32((127 - B) << 23));
  const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(r, kDrop), _mm256_set1_epi32(1));
  __m256i code = _mm256_srli_epi32(
      _mm256_add_epi32(_mm256_add_epi32(r, _mm256_set1_epi32((1 << (kDrop - 1)) - 1)), odd), kDrop);
  code = _mm256_min_epu32(code, _mm256_set1_epi32(max_code));
  const __m256i sub_code = _mm256_cvtps_epi32(_mm256_mul_ps(a, _mm256_set1_ps((float)(1 << (B + M - 1)))));
  const __m256i is_sub = _mm256_cmpgt_epi32(_mm256_set1_epi32((127 + 1 - B) << 23), abs);
  code = _mm256_blendv_epi8(code, sub_code, is_sub);
  const __m256 sat = _mm256_cmp_ps(a, _mm256_set1_ps(max_finite), _CMP_GE_OQ);
  code = _mm256_blendv_epi8(code, _mm256_set1_epi32(max_code), _mm256_castps_si256(sat));
  code = _mm256_or_si256(code, sign);
  const __m256i is_nan = _mm256_cmpgt_epi32(abs, _mm256_set1_epi32(0x7f800000));
  return _mm256_blendv_epi8(code, _mm256_set1_epi32(0x7f), is_nan);
}

template <int M, int B>
int64_t quantize_fp8(uint8_t* q, const float* x, int64_t n, float scale, int max_code, float max_finite) {
  const __m256 s = _mm256_set1_ps(scale);
  auto code = [&](int64_t i) {
    return fp8_codes<M, B>(_mm256_div_ps(_mm256_loadu_ps(x + i), s), max_code, max_finite);
  };
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) store_codes(q + i, code(i), code(i + 8), code(i + 16), code(i + 24), false);
  return i;
}

int64_t to_f16(uint16_t* q, const float* x, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  return i;
}

// One Q8_0 block of 32 values: q = roundf(x * id), half away from zero, done
// as trunc plus a step away from zero when the dropped fraction is >= 1/2
// (both exact for |x * id| <= 127).
void q8_0_block(int8_t* q, const float* x, float id) {
  const __m256 vid = _mm256_set1_ps(id), half = _mm256_set1_ps(0.5f);
  __m256i c[4];
  for (int g = 0; g < 4; ++g) {
    const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + 8 * g), vid);
    const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 up = _mm256_cmp_ps(abs8(_mm256_sub_ps(v, t)), half, _CMP_GE_OQ);
    const __m256 step =
        _mm256_or_ps(_mm256_and_ps(v, _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u))),
                     _mm256_set1_ps(1.0f));  // +-1 with v's sign
    c[g] = _mm256_cvtps_epi32(_mm256_add_ps(t, _mm256_and_ps(up, step)));
  }
  store_codes(reinterpret_cast<uint8_t*>(q), c[0], c[1], c[2], c[3], true);
}

}  // namespace
}  // namespace brisk::quant_avx2
#pragma GCC pop_options

namespace brisk {
namespace {

bool use_avx2() { return cpu::active_isa() != cpu::Isa::Scalar; }

float abs_max(const float* x, int64_t n) {
  if (use_avx2()) return quant_avx2::abs_max(x, n);
  float m = 0.0f;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, std::fabs(x[i]));
  return m;
}

float format_max(DType t) {
  switch (t) {
    case DType::I8:
      return kI8Max;
    case DType::F8_E4M3:
      return kF8E4M3Max;
    case DType::F8_E5M2:
      return kF8E5M2Max;
    default:
      return 1.0f;
  }
}

void quantize_q8_0_row(BlockQ8_0* out, const float* x, int64_t cols) {
  for (int64_t b = 0; b < cols / kQ8_0BlockSize; ++b) {
    const float* v = x + b * kQ8_0BlockSize;
    const float d = abs_max(v, kQ8_0BlockSize) / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;  // ggml multiplies by the reciprocal
    out[b].d = fp32_to_fp16(d);
    if (use_avx2()) {
      quant_avx2::q8_0_block(out[b].qs, v, id);
      continue;
    }
    for (int i = 0; i < kQ8_0BlockSize; ++i) out[b].qs[i] = (int8_t)std::round(v[i] * id);
  }
}

// Rows [r0, r1). amax_all >= 0 is the per-tensor maximum; < 0 means per row.
void quantize_range(void* dst, float* row_scales, const float* src, DType t, int64_t cols, int64_t r0,
                    int64_t r1, float amax_all) {
  const size_t rb = row_bytes(t, cols);
  for (int64_t r = r0; r < r1; ++r) {
    const float* x = src + r * cols;
    void* out = static_cast<uint8_t*>(dst) + r * rb;
    if (!is_scaled(t)) {
      if (row_scales) row_scales[r] = 1.0f;
      switch (t) {
        case DType::F32:
          std::memcpy(out, x, rb);
          break;
        case DType::F16: {
          auto* h = static_cast<uint16_t*>(out);
          for (int64_t k = use_avx2() ? quant_avx2::to_f16(h, x, cols) : 0; k < cols; ++k)
            h[k] = fp32_to_fp16(x[k]);
          break;
        }
        case DType::BF16:
          for (int64_t k = 0; k < cols; ++k) static_cast<uint16_t*>(out)[k] = fp32_to_bf16(x[k]);
          break;
        case DType::Q8_0:
          quantize_q8_0_row(static_cast<BlockQ8_0*>(out), x, cols);
          break;
        default:
          break;
      }
      continue;
    }
    const float amax = amax_all >= 0.0f ? amax_all : abs_max(x, cols);
    const float scale = amax > 0.0f ? amax / format_max(t) : 1.0f;
    row_scales[r] = scale;
    auto* q = static_cast<uint8_t*>(out);
    if (amax == 0.0f) {
      std::memset(q, 0, cols);
      continue;
    }
    // Division, not multiplication by 1/scale: the definition the tests check.
    const bool simd = use_avx2();
    switch (t) {
      case DType::I8:
        for (int64_t k = simd ? quant_avx2::quantize_i8(q, x, cols, scale) : 0; k < cols; ++k)
          q[k] = (uint8_t)(int8_t)std::clamp(round_even(x[k] / scale), -127.0f, 127.0f);
        break;
      case DType::F8_E4M3:
        for (int64_t k = simd ? quant_avx2::quantize_fp8<3, 7>(q, x, cols, scale, 0x7e, kF8E4M3Max) : 0;
             k < cols; ++k)
          q[k] = e4m3(x[k] / scale);
        break;
      case DType::F8_E5M2:
        for (int64_t k = simd ? quant_avx2::quantize_fp8<2, 15>(q, x, cols, scale, 0x7b, kF8E5M2Max) : 0;
             k < cols; ++k)
          q[k] = e5m2(x[k] / scale);
        break;
      default:
        break;
    }
  }
}

// Runs fn(r0, r1) over row chunks, on the pool when given, else on plain threads.
template <class Fn>
void for_rows(ThreadPool* pool, int64_t rows, int64_t cols, const Fn& fn) {
  const int64_t grain = std::max<int64_t>(1, kMinElemsPerThread / std::max<int64_t>(1, cols));
  if (pool) {
    pool->parallel_for(
        rows, [&](int64_t r0, int64_t r1) { fn(r0, r1); }, grain);
    return;
  }
  const int64_t hw = std::max(1u, std::thread::hardware_concurrency());
  const int64_t n = std::clamp<int64_t>(rows / grain, 1, hw);
  if (n == 1) return fn(0, rows);
  std::vector<std::thread> threads;
  for (int64_t i = 1; i < n; ++i) threads.emplace_back([&, i] { fn(rows * i / n, rows * (i + 1) / n); });
  fn(0, rows / n);
  for (auto& th : threads) th.join();
}

void quantize_impl(ThreadPool* pool, void* dst, float* row_scales, const float* src, DType t, int64_t rows,
                   int64_t cols, bool per_tensor) {
  float amax_all = -1.0f;
  if (per_tensor && is_scaled(t)) {
    std::vector<float> partial(rows, 0.0f);
    for_rows(pool, rows, cols, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) partial[r] = abs_max(src + r * cols, cols);
    });
    amax_all = rows > 0 ? *std::max_element(partial.begin(), partial.end()) : 0.0f;
  }
  for_rows(pool, rows, cols,
           [&](int64_t r0, int64_t r1) { quantize_range(dst, row_scales, src, t, cols, r0, r1, amax_all); });
}

}  // namespace

void quantize_rows(void* dst, float* row_scales, const float* src, DType t, int64_t rows, int64_t cols,
                   bool per_tensor) {
  quantize_impl(nullptr, dst, row_scales, src, t, rows, cols, per_tensor);
}

void quantize_rows(ThreadPool& pool, void* dst, float* row_scales, const float* src, DType t, int64_t rows,
                   int64_t cols, bool per_tensor) {
  quantize_impl(&pool, dst, row_scales, src, t, rows, cols, per_tensor);
}

void dequantize_rows(float* dst, const void* src, const float* row_scales, DType t, int64_t rows,
                     int64_t cols) {
  const size_t rb = row_bytes(t, cols);
  for (int64_t r = 0; r < rows; ++r) {
    const auto* in = static_cast<const uint8_t*>(src) + r * rb;
    float* y = dst + r * cols;
    const float s = is_scaled(t) ? row_scales[r] : 1.0f;
    for (int64_t k = 0; k < cols; ++k) {
      switch (t) {
        case DType::F32:
          y[k] = reinterpret_cast<const float*>(in)[k];
          break;
        case DType::F16:
          y[k] = fp16_to_fp32(reinterpret_cast<const uint16_t*>(in)[k]);
          break;
        case DType::BF16:
          y[k] = bf16_to_fp32(reinterpret_cast<const uint16_t*>(in)[k]);
          break;
        case DType::Q8_0: {
          const BlockQ8_0& b = reinterpret_cast<const BlockQ8_0*>(in)[k / kQ8_0BlockSize];
          y[k] = fp16_to_fp32(b.d) * (float)b.qs[k % kQ8_0BlockSize];
          break;
        }
        case DType::I8:
          y[k] = (float)(int8_t)in[k] * s;
          break;
        case DType::F8_E4M3:
          y[k] = fp8_e4m3_to_fp32(in[k]) * s;
          break;
        case DType::F8_E5M2:
          y[k] = fp8_e5m2_to_fp32(in[k]) * s;
          break;
        case DType::I32:
          y[k] = NAN;
          break;
      }
    }
  }
}

}  // namespace brisk
