#include "kernels/dtype.h"

namespace brisk {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::Q8_0: return "Q8_0";
    case DType::I32: return "I32";
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

}  // namespace brisk
