// Weight-only GEMV for small batches: y[n, N] = x[n, K] * w[N, K]^T with n <= 8.
// Decode is bound by streaming the weights once, so each warp streams a row
// with 16-byte loads (four in flight), dequantizes in registers and multiplies
// against x held in shared memory (staged in K chunks so any K fits). Small N
// gives each row several warps (split K inside the block) to fill the device.
#include <algorithm>

#include "kernels/cuda/common.cuh"

namespace brisk::cuda {
using namespace detail;

namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kUnroll = 4;
constexpr int kSmemFloats = 8192;  // 32 KiB of x per chunk

template <DType DT>
struct GemvVec {
  static constexpr int kElems = DT == DType::F32 ? 4 : (DT == DType::F16 || DT == DType::BF16) ? 8 : 16;
};

// The 16 bytes at `raw` as kElems F32 values (codes for scaled types).
template <DType DT>
__device__ __forceinline__ void decode16(const uint4& raw, float* out) {
  const uint32_t wv[4] = {raw.x, raw.y, raw.z, raw.w};
  if constexpr (DT == DType::F32) {
#pragma unroll
    for (int i = 0; i < 4; ++i) out[i] = __uint_as_float(wv[i]);
  } else if constexpr (DT == DType::F16) {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&wv[i]));
      out[2 * i] = f.x;
      out[2 * i + 1] = f.y;
    }
  } else if constexpr (DT == DType::BF16) {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      out[2 * i] = __uint_as_float(wv[i] << 16);
      out[2 * i + 1] = __uint_as_float(wv[i] & 0xffff0000u);
    }
  } else {
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      const uint32_t b = (wv[i / 4] >> (8 * (i % 4))) & 0xffu;
      if constexpr (DT == DType::I8)
        out[i] = (float)(int8_t)b;
      else if constexpr (DT == DType::F8_E4M3)
        out[i] = f8e4m3_to_f32(b);
      else
        out[i] = f8e5m2_to_f32(b);
    }
  }
}

template <int E>
__device__ __forceinline__ void dot_x(float (&acc)[kGemvMaxRows], const float* xs, int kc, int n, int k,
                                      const float* wv) {
#pragma unroll
  for (int m = 0; m < kGemvMaxRows; ++m) {
    if (m >= n) break;
    const float4* x4 = reinterpret_cast<const float4*>(xs + m * kc + k);
    float a = 0.0f;
#pragma unroll
    for (int i = 0; i < E / 4; ++i) {
      const float4 xv = x4[i];
      a += xv.x * wv[4 * i] + xv.y * wv[4 * i + 1] + xv.z * wv[4 * i + 2] + xv.w * wv[4 * i + 3];
    }
    acc[m] += a;
  }
}

// Mode: 0 = 16-byte vector loads, 1 = Q8_0 blocks (one per lane), 2 = element loads (any shape).
template <DType DT, int kMode>
__global__ void __launch_bounds__(kThreads)
    gemv_kernel(float* y, const float* x, const void* w, const float* row_scales, int n, int N, int K, int kc,
                int wpr, size_t row_bytes_) {
  extern __shared__ float4 smem4[];
  float* xs = reinterpret_cast<float*>(smem4);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int rows_per_block = kWarps / wpr;
  const int part = warp % wpr;
  const int j = blockIdx.x * rows_per_block + warp / wpr;
  const bool active = j < N;
  const uint8_t* wrow = static_cast<const uint8_t*>(w) + (int64_t)(active ? j : 0) * row_bytes_;
  float acc[kGemvMaxRows];
#pragma unroll
  for (int m = 0; m < kGemvMaxRows; ++m) acc[m] = 0.0f;

  for (int k0 = 0; k0 < K; k0 += kc) {
    const int len = min(kc, K - k0);
    __syncthreads();  // the previous chunk is consumed
    for (int i = threadIdx.x; i < n * len; i += kThreads) {
      const int m = i / len, kk = i - m * len;
      xs[m * kc + kk] = x[(int64_t)m * K + k0 + kk];
    }
    __syncthreads();
    if (!active) continue;
    if constexpr (kMode == 0) {
      constexpr int E = GemvVec<DT>::kElems;
      constexpr int kEsize = DT == DType::F32 ? 4 : (DT == DType::F16 || DT == DType::BF16) ? 2 : 1;
      const int iters = (len + 32 * E - 1) / (32 * E);
      const uint8_t* base = wrow + (int64_t)k0 * kEsize;
      for (int it = part; it < iters; it += kUnroll * wpr) {
        uint4 raw[kUnroll];
        int kk[kUnroll];
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
          kk[u] = (it + u * wpr) * 32 * E + lane * E;
          raw[u] = kk[u] < len && it + u * wpr < iters
                       ? __ldg(reinterpret_cast<const uint4*>(base + (int64_t)kk[u] * kEsize))
                       : make_uint4(0, 0, 0, 0);
        }
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
          if (kk[u] >= len || it + u * wpr >= iters) continue;
          float wv[E];
          decode16<DT>(raw[u], wv);
          dot_x<E>(acc, xs, kc, n, kk[u], wv);
        }
      }
    } else if constexpr (kMode == 1) {
      // Q8_0: 34-byte blocks (2-byte aligned); the lane's block is read as 17 halfwords.
      const int nblocks = len / kQ8_0BlockSize;
      const uint16_t* blocks =
          reinterpret_cast<const uint16_t*>(wrow + (int64_t)(k0 / kQ8_0BlockSize) * sizeof(BlockQ8_0));
      for (int b = part * 32 + lane; b < nblocks; b += 32 * wpr) {
        const uint16_t* p = blocks + b * (sizeof(BlockQ8_0) / 2);
        uint16_t h[17];
#pragma unroll
        for (int i = 0; i < 17; ++i) h[i] = __ldg(p + i);
        const float d = f16_to_f32(h[0]);
        float wv[kQ8_0BlockSize];
#pragma unroll
        for (int i = 0; i < 16; ++i) {
          wv[2 * i] = (float)(int8_t)(h[1 + i] & 0xff);
          wv[2 * i + 1] = (float)(int8_t)(h[1 + i] >> 8);
        }
        float part_acc[kGemvMaxRows];
#pragma unroll
        for (int m = 0; m < kGemvMaxRows; ++m) part_acc[m] = 0.0f;
        dot_x<kQ8_0BlockSize>(part_acc, xs, kc, n, b * kQ8_0BlockSize, wv);
#pragma unroll
        for (int m = 0; m < kGemvMaxRows; ++m) acc[m] += d * part_acc[m];
      }
    } else {
      for (int kk = part * 32 + lane; kk < len; kk += 32 * wpr) {
        const float wvv = weight_elem(wrow, DT, k0 + kk);
#pragma unroll
        for (int m = 0; m < kGemvMaxRows; ++m)
          if (m < n) acc[m] += xs[m * kc + kk] * wvv;
      }
    }
  }

  // Lanes, then the warps of a row (through shared memory, after everyone is done with x).
#pragma unroll
  for (int m = 0; m < kGemvMaxRows; ++m) acc[m] = warp_sum(acc[m]);
  __syncthreads();
  float* red = xs;  // [kWarps][kGemvMaxRows]
  if (lane == 0)
#pragma unroll
    for (int m = 0; m < kGemvMaxRows; ++m) red[warp * kGemvMaxRows + m] = acc[m];
  __syncthreads();
  if (active && part == 0 && lane < n) {
    float v = 0.0f;
    for (int p = 0; p < wpr; ++p) v += red[(warp + p) * kGemvMaxRows + lane];
    if (is_scaled(DT)) v *= row_scales[j];
    y[(int64_t)lane * N + j] = v;
  }
}

__global__ void fill_nan_rows(float* y, int64_t count) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < count;
       i += (int64_t)gridDim.x * blockDim.x)
    y[i] = __uint_as_float(0x7fc00000u);
}

template <DType DT>
void launch(float* y, const float* x, const void* w, const float* row_scales, int n, int N, int K, Stream s) {
  constexpr int E = GemvVec<DT>::kElems;
  const size_t rb = row_bytes(DT, K);
  int kc = std::max(512, (kSmemFloats / n) & ~511);
  if (K < kc) kc = (K + 3) & ~3;
  int wpr = 1;
  const int target = 2 * sm_count();
  while (wpr < kWarps && (N + kWarps / wpr - 1) / (kWarps / wpr) < target) wpr *= 2;
  const int rows_per_block = kWarps / wpr;
  const unsigned grid = (unsigned)((N + rows_per_block - 1) / rows_per_block);
  const size_t smem = std::max<size_t>((size_t)n * kc, kWarps * kGemvMaxRows) * sizeof(float);
  cudaStream_t st = stream_of(s);
  if constexpr (DT == DType::Q8_0) {
    gemv_kernel<DT, 1><<<grid, kThreads, smem, st>>>(y, x, w, row_scales, n, N, K, kc, wpr, rb);
  } else {
    const bool vec = K % E == 0 && aligned16(w) && (rb % 16 == 0);
    if (vec)
      gemv_kernel<DT, 0><<<grid, kThreads, smem, st>>>(y, x, w, row_scales, n, N, K, kc, wpr, rb);
    else
      gemv_kernel<DT, 2><<<grid, kThreads, smem, st>>>(y, x, w, row_scales, n, N, K, kc, wpr, rb);
  }
}

}  // namespace

void gemv(float* y, const float* x, const void* w, DType dt, const float* row_scales, int n, int N, int K,
          Stream s) {
  if (n <= 0 || N <= 0) return;
  if (!weight_usable(dt, row_scales) || (dt == DType::Q8_0 && K % kQ8_0BlockSize != 0)) {
    fill_nan_rows<<<grid_1d((int64_t)n * N, 256), 256, 0, stream_of(s)>>>(y, (int64_t)n * N);
    return;
  }
  // More rows than one launch takes: consecutive groups of kGemvMaxRows.
  for (int m0 = 0; m0 < n; m0 += kGemvMaxRows) {
    const int nn = std::min(kGemvMaxRows, n - m0);
    float* yy = y + (int64_t)m0 * N;
    const float* xx = x + (int64_t)m0 * K;
    switch (dt) {
      case DType::F32:
        launch<DType::F32>(yy, xx, w, row_scales, nn, N, K, s);
        break;
      case DType::F16:
        launch<DType::F16>(yy, xx, w, row_scales, nn, N, K, s);
        break;
      case DType::BF16:
        launch<DType::BF16>(yy, xx, w, row_scales, nn, N, K, s);
        break;
      case DType::Q8_0:
        launch<DType::Q8_0>(yy, xx, w, row_scales, nn, N, K, s);
        break;
      case DType::I8:
        launch<DType::I8>(yy, xx, w, row_scales, nn, N, K, s);
        break;
      case DType::F8_E4M3:
        launch<DType::F8_E4M3>(yy, xx, w, row_scales, nn, N, K, s);
        break;
      case DType::F8_E5M2:
        launch<DType::F8_E5M2>(yy, xx, w, row_scales, nn, N, K, s);
        break;
      default:
        break;
    }
  }
}

}  // namespace brisk::cuda
