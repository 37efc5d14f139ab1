#include "kernels/dtype.h"

#include <algorithm>
#include <cmath>

namespace brisk {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::Q8_0: return "Q8_0";
    case DType::I32: return "I32";
    case DType::I8: return "I8";
    case DType::F8_E4M3: return "F8_E4M3";
    case DType::F8_E5M2: return "F8_E5M2";
  }
  return "?";
}

size_t row_bytes(DType t, int64_t n) {
  switch (t) {
    case DType::F32:
    case DType::I32: return (size_t)n * 4;
    case DType::F16:
    case DType::BF16: return (size_t)n * 2;
    case DType::Q8_0: return (size_t)(n / kQ8_0BlockSize) * sizeof(BlockQ8_0);
    case DType::I8:
    case DType::F8_E4M3:
    case DType::F8_E5M2: return (size_t)n;
  }
  return 0;
}

uint16_t fp32_to_fp16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000;
  const uint32_t absx = x & 0x7fffffff;
  if (absx >= 0x7f800000) return (uint16_t)(sign | 0x7c00 | (absx > 0x7f800000 ? 0x200 : 0));
  if (absx >= 0x477ff000) return (uint16_t)(sign | 0x7c00);  // overflow -> inf
  if (absx < 0x38800000) {                                 // subnormal or zero in half
    if (absx < 0x33000000) return (uint16_t)sign;
    const uint32_t e = absx >> 23;
    uint32_t m = (absx & 0x7fffff) | 0x800000;
    // value = m * 2^(e-150); a half subnormal unit is 2^-24, so q = m >> (126 - e)
    const uint32_t s = 126 - e;  // right shift amount
    uint32_t q = m >> s;
    const uint32_t rem = m & ((1u << s) - 1);
    const uint32_t halfway = 1u << (s - 1);
    if (rem > halfway || (rem == halfway && (q & 1))) q++;
    return (uint16_t)(sign | q);
  }
  uint32_t h = ((absx >> 13) - (112u << 10));
  const uint32_t rem = absx & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
  return (uint16_t)(sign | h);
}

namespace {

// An 8-bit float with E exponent bits, M mantissa bits and bias B.
// E4M3 has no infinities (only S.1111.111 is NaN); E5M2 is IEEE-like.
template <int E, int M, int B>
float fp8_decode(uint8_t b) {
  const float sign = (b & 0x80) ? -1.0f : 1.0f;
  const int e = (b >> M) & ((1 << E) - 1), m = b & ((1 << M) - 1);
  if (E == 4 && e == 15 && m == 7) return NAN;
  if (E == 5 && e == 31) return m ? NAN : sign * INFINITY;
  if (e == 0) return sign * std::ldexp((float)m, 1 - B - M);
  return sign * std::ldexp((float)((1 << M) | m), e - B - M);
}

template <int E, int M, int B>
uint8_t fp8_encode(float f, float max_finite, uint8_t max_code) {
  if (std::isnan(f)) return 0x7f;
  const uint8_t sign = std::signbit(f) ? 0x80 : 0;
  const float a = std::fabs(f);
  if (a >= max_finite) return sign | max_code;
  const float min_normal = std::ldexp(1.0f, 1 - B);
  if (a < min_normal) {  // subnormal: multiples of 2^(1-B-M); q == 1<<M lands on the smallest normal
    const int q = (int)std::nearbyint(std::ldexp(a, B + M - 1));
    return sign | (uint8_t)q;
  }
  int exp;
  const float frac = std::frexp(a, &exp);  // a = frac * 2^exp, frac in [0.5, 1)
  // Round the significand to M bits (nearest even); a carry bumps the exponent.
  int q = (int)std::nearbyint(std::ldexp(frac, M + 1));  // in [2^M, 2^(M+1)]
  if (q == (1 << (M + 1))) {
    q >>= 1;
    ++exp;
  }
  const int e = exp - 1 + B;
  const int code = (e << M) | (q & ((1 << M) - 1));
  return sign | (uint8_t)std::min(code, (int)max_code);
}

}  // namespace

float fp8_e4m3_to_fp32(uint8_t b) { return fp8_decode<4, 3, 7>(b); }
float fp8_e5m2_to_fp32(uint8_t b) { return fp8_decode<5, 2, 15>(b); }
uint8_t fp32_to_fp8_e4m3(float f) { return fp8_encode<4, 3, 7>(f, kF8E4M3Max, 0x7e); }
uint8_t fp32_to_fp8_e5m2(float f) { return fp8_encode<5, 2, 15>(f, kF8E5M2Max, 0x7b); }

}  // namespace brisk
