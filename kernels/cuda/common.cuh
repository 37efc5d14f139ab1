// Device helpers shared by the kernels/cuda/*.cu files: dtype conversions that
// match kernels/dtype.h bit for bit, element loads of every weight / KV dtype,
// and warp / block reductions.
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/cuda_kernels.h"
#include "kernels/dtype.h"

namespace brisk::cuda::detail {

inline cudaStream_t stream_of(Stream s) { return static_cast<cudaStream_t>(s); }
inline unsigned grid_1d(int64_t count, int threads, int64_t cap = 65535LL * 16) {
  const int64_t g = (count + threads - 1) / threads;
  return (unsigned)(g < 1 ? 1 : g > cap ? cap : g);
}
__host__ __device__ inline bool aligned16(const void* p) { return ((uintptr_t)p & 15) == 0; }

// The multiprocessor count of the current device, queried once per device.
int sm_count();

// ---- Programmatic dependent launch (sm_90+) ----
// Decode steps are chains of short kernels; launched with the programmatic
// stream-serialization attribute, a kernel starts while its predecessor is
// still running and does what depends on no earlier kernel (weight loads,
// L2 prefetches of the KV cache, tables built from uploaded metadata) before
// grid_dependency_wait(), which returns once the predecessor has finished
// and its writes are visible. The rule that keeps this correct: a kernel
// launched by launch_dependent() calls grid_dependency_wait() on every path
// (early exits included: the grid completing is what the next kernel waits
// for), and before it touches anything an earlier kernel writes or reads.
// Uploaded metadata (ids, positions, slots, block tables) is safe before the
// wait: the copies precede the whole chain. Without the attribute (older
// devices, or dependent launch switched off) the wait returns at once.
__device__ __forceinline__ void grid_dependency_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
// Lets the next kernel launch early (it still waits for this one to finish).
// Called right after the wait, so at most one grid waits ahead — except by
// a kernel that touches no memory another kernel writes or reads and waits
// on every path (the L2 prefetch, l2_prefetch.cu), which allows first so
// its successor is resident while it waits: two grids then wait ahead.
__device__ __forceinline__ void allow_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
__device__ __forceinline__ void prefetch_l2(const void* p) {
  asm volatile("prefetch.global.L2 [%0];" ::"l"(p));
}
// Whether launch_dependent() asks for early launch: on, set by
// set_dependent_launch(), on a device of compute capability 9.0+ running
// this library's sm_90 code (older code has no wait instruction).
bool dependent_launch();
template <typename... Params, typename... Args>
void launch_dependent(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t st,
                      Args... args) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = st;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = dependent_launch() ? 1 : 0;
  cudaLaunchKernelEx(&cfg, kernel, static_cast<Params>(args)...);  // errors: cuda_last_error()
}

// ---- Decoding (exact: every code maps to the value kernels/dtype.h gives) ----
__device__ __forceinline__ float f16_to_f32(uint16_t h) { return __half2float(__ushort_as_half(h)); }
__device__ __forceinline__ float bf16_to_f32(uint16_t h) { return __uint_as_float((uint32_t)h << 16); }
// E4M3's exponent and mantissa placed at the top of an F32's fields give the value
// times 2^-120 (subnormals land on F32 subnormals, which are exact without flush-to-zero).
__device__ __forceinline__ float f8e4m3_to_f32(uint32_t b) {
  const float v = __uint_as_float(((b & 0x80u) << 24) | ((b & 0x7fu) << 20)) * 0x1p120f;
  return (b & 0x7fu) == 0x7fu ? __uint_as_float(0x7fc00000u) : v;
}
// E5M2 is the top byte of an F16.
__device__ __forceinline__ float f8e5m2_to_f32(uint32_t b) {
  return __half2float(__ushort_as_half((unsigned short)((b & 0xffu) << 8)));
}

// ---- Encoding (ports of kernels/dtype.cpp, same rounding and saturation) ----
__device__ __forceinline__ uint16_t f32_to_f16_bits(float f) {
  const uint32_t x = __float_as_uint(f);
  const uint32_t sign = (x >> 16) & 0x8000;
  const uint32_t absx = x & 0x7fffffff;
  if (absx >= 0x7f800000) return (uint16_t)(sign | 0x7c00 | (absx > 0x7f800000 ? 0x200 : 0));
  if (absx >= 0x477ff000) return (uint16_t)(sign | 0x7c00);
  if (absx < 0x38800000) {
    if (absx < 0x33000000) return (uint16_t)sign;
    const uint32_t e = absx >> 23;
    const uint32_t m = (absx & 0x7fffff) | 0x800000;
    const uint32_t s = 126 - e;
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
__device__ __forceinline__ uint16_t f32_to_bf16_bits(float f) {
  uint32_t bits = __float_as_uint(f);
  if ((bits & 0x7fffffff) > 0x7f800000) return (uint16_t)((bits >> 16) | 0x40);
  bits += 0x7fff + ((bits >> 16) & 1);
  return (uint16_t)(bits >> 16);
}
// fp8_encode<4, 3, 7> of kernels/dtype.cpp: nearest even, saturating, NaN -> 0x7f.
// Normal values round their 23-bit mantissa to 3 bits in the integer bits
// (adding 2^19 - 1 plus the kept lowest bit is round-half-even, and a carry
// moves into the exponent as it should); subnormals are multiples of 2^-9.
__device__ __forceinline__ uint8_t f32_to_f8e4m3(float f) {
  if (isnan(f)) return 0x7f;
  const uint32_t bits = __float_as_uint(f);
  const uint8_t sign = (bits >> 24) & 0x80;
  const float a = fabsf(f);
  if (a >= 448.0f) return sign | 0x7e;
  if (a < 0x1p-6f) return sign | (uint8_t)(int)rintf(a * 512.0f);
  const uint32_t ab = bits & 0x7fffffffu;
  const uint32_t r = ab + 0x7ffffu + ((ab >> 20) & 1u);
  const int code = (int)(((r >> 23) - 127 + 7) << 3) | (int)((r >> 20) & 7u);
  return sign | (uint8_t)min(code, 0x7e);
}

// ---- RoPE and KV cache stores shared by the RoPE/KV-write kernel and the folded q/k/v GEMV ----
// cos/sin of rotation pair p at position `pos`, exactly as ref::rope computes them (in double).
__device__ __forceinline__ double2 rope_angle(int pos, int p, int rot_dim, float theta) {
  const double freq = pow((double)theta, -2.0 * p / rot_dim);
  double sn, cn;
  sincos(pos * freq, &sn, &cn);
  return make_double2(cn, sn);
}
// Rounded products and sums, never contracted into FMAs: every kernel that
// rotates (the RoPE/KV-write kernel, the folded q/k/v GEMV) gets the same bits.
__device__ __forceinline__ void rope_rotate(float& a, float& b, double2 cs) {
  const double x = a, y = b;
  a = (float)__dsub_rn(__dmul_rn(x, cs.x), __dmul_rn(y, cs.y));
  b = (float)__dadd_rn(__dmul_rn(x, cs.y), __dmul_rn(y, cs.x));
}
// Element `at` of an unscaled KV cache (F32, F16, BF16), encoded as ref::kv_store_head does.
__device__ __forceinline__ void kv_store_unscaled(const DeviceKvCache& c, int64_t at, float x) {
  switch (c.dtype) {
    case DType::F32:
      static_cast<float*>(c.data)[at] = x;
      break;
    case DType::F16:
      static_cast<uint16_t*>(c.data)[at] = f32_to_f16_bits(x);
      break;
    case DType::BF16:
      static_cast<uint16_t*>(c.data)[at] = f32_to_bf16_bits(x);
      break;
    default:
      break;
  }
}

// Element k of a row of weights as F32; scaled dtypes give the code (callers apply the row scale).
__device__ __forceinline__ float weight_elem(const void* row, DType dt, int64_t k) {
  switch (dt) {
    case DType::F32:
      return static_cast<const float*>(row)[k];
    case DType::F16:
      return f16_to_f32(static_cast<const uint16_t*>(row)[k]);
    case DType::BF16:
      return bf16_to_f32(static_cast<const uint16_t*>(row)[k]);
    case DType::Q8_0: {
      const auto* b = static_cast<const uint8_t*>(row) + (k / kQ8_0BlockSize) * sizeof(BlockQ8_0);
      const uint16_t d = (uint16_t)(b[0] | (b[1] << 8));
      return f16_to_f32(d) * (float)(int8_t)b[2 + k % kQ8_0BlockSize];
    }
    case DType::I8:
      return (float)static_cast<const int8_t*>(row)[k];
    case DType::F8_E4M3:
      return f8e4m3_to_f32(static_cast<const uint8_t*>(row)[k]);
    case DType::F8_E5M2:
      return f8e5m2_to_f32(static_cast<const uint8_t*>(row)[k]);
    default:
      return __uint_as_float(0x7fc00000u);
  }
}
// A weight type the kernels can read (with row scales where the type needs them); as ref::usable.
inline bool weight_usable(DType dt, const float* row_scales) {
  return dt != DType::I32 && (!is_scaled(dt) || row_scales != nullptr);
}

// ---- Reductions ----
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
// Every thread of the block gets the result; `red` holds >= 32 floats. Blocks of a multiple of 32 threads.
template <bool kMax>
__device__ __forceinline__ float block_reduce(float v, float* red) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
  v = kMax ? warp_max(v) : warp_sum(v);
  __syncthreads();  // `red` may still be read by a previous reduction
  if (lane == 0) red[warp] = v;
  __syncthreads();
  v = lane < nw ? red[lane] : (kMax ? 0.0f : 0.0f);
  if (warp == 0) {
    v = kMax ? warp_max(v) : warp_sum(v);
    if (lane == 0) red[0] = v;
  }
  __syncthreads();
  return red[0];
}

}  // namespace brisk::cuda::detail
