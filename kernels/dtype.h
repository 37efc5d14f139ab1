// Element types the kernels understand, and scalar conversions between them.
// Plain C++: no engine headers here (kernels depend on nothing).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace brisk {

// Weight storage types. Activations are always F32 in this version.
enum class DType : int32_t { F32 = 0, F16 = 1, BF16 = 2, Q8_0 = 3, I32 = 4 };

const char* dtype_name(DType t);

// GGUF Q8_0: 32 weights share one F16 scale; 34 bytes per block.
constexpr int kQ8_0BlockSize = 32;
struct BlockQ8_0 {
  uint16_t d;  // F16 scale
  int8_t qs[kQ8_0BlockSize];
};
static_assert(sizeof(BlockQ8_0) == 34);

// Bytes for a row of `n` elements of type t (Q8_0 requires n % 32 == 0).
size_t row_bytes(DType t, int64_t n);

inline float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: renormalise
      exp = 127 - 15 + 1;
      while ((mant & 0x400) == 0) {
        mant <<= 1;
        exp--;
      }
      mant &= 0x3ff;
      bits = sign | (exp << 23) | (mant << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t fp32_to_fp16(float f);  // round to nearest even

inline float bf16_to_fp32(uint16_t h) {
  uint32_t bits = (uint32_t)h << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline uint16_t fp32_to_bf16(float f) {  // round to nearest even
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffff) > 0x7f800000) return (uint16_t)((bits >> 16) | 0x40);  // NaN
  bits += 0x7fff + ((bits >> 16) & 1);
  return (uint16_t)(bits >> 16);
}

}  // namespace brisk
