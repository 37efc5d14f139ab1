// Element types the kernels understand, and scalar conversions between them.
// Plain C++: no engine headers here (kernels depend on nothing).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace brisk {

// Storage types of weights and of the KV cache. Activations are F32.
// I8, F8_E4M3 and F8_E5M2 are scaled types: a weight matrix of them carries
// one F32 scale per row (per output channel; a per-tensor scale is the same
// value in every row), and a KV cache one per (slot, KV head); the value is
// q * scale.
enum class DType : int32_t { F32 = 0, F16 = 1, BF16 = 2, Q8_0 = 3, I32 = 4, I8 = 5, F8_E4M3 = 6, F8_E5M2 = 7 };

const char* dtype_name(DType t);
constexpr bool is_scaled(DType t) { return t == DType::I8 || t == DType::F8_E4M3 || t == DType::F8_E5M2; }

// Largest finite magnitudes: a scale maps a row's absolute maximum onto these.
constexpr float kI8Max = 127.0f;
constexpr float kF8E4M3Max = 448.0f;
constexpr float kF8E5M2Max = 57344.0f;
// OCP FP8 formats. Encoding rounds to nearest even and saturates to the
// largest finite value (never produces inf); NaN encodes as NaN.
float fp8_e4m3_to_fp32(uint8_t b);
float fp8_e5m2_to_fp32(uint8_t b);
uint8_t fp32_to_fp8_e4m3(float f);
uint8_t fp32_to_fp8_e5m2(float f);

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
