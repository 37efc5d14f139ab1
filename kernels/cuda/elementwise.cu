// Elementwise, normalisation, conversion and quantization kernels: memory-bound,
// so float4 accesses wherever the shape and alignment allow.
#include <climits>

#include "kernels/cuda/common.cuh"

namespace brisk::cuda {
using namespace detail;

namespace {

constexpr int kThreads = 256;

__global__ void add_kernel(float* out, const float* a, const float* b, int64_t count) {
  grid_dependency_wait();
  allow_dependents();
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < count;
       i += (int64_t)gridDim.x * blockDim.x)
    out[i] = a[i] + b[i];
}
__global__ void add4_kernel(float4* out, const float4* a, const float4* b, int64_t count4) {
  grid_dependency_wait();
  allow_dependents();
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < count4;
       i += (int64_t)gridDim.x * blockDim.x) {
    const float4 x = a[i], y = b[i];
    out[i] = make_float4(x.x + y.x, x.y + y.y, x.z + y.z, x.w + y.w);
  }
}

__device__ __forceinline__ float silu_mul1(float g, float u) { return g / (1.0f + expf(-g)) * u; }
__global__ void silu_mul_kernel(float* out, const float* gate, const float* up, int64_t count) {
  grid_dependency_wait();
  allow_dependents();
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < count;
       i += (int64_t)gridDim.x * blockDim.x)
    out[i] = silu_mul1(gate[i], up[i]);
}
__global__ void silu_mul4_kernel(float4* out, const float4* gate, const float4* up, int64_t count4) {
  grid_dependency_wait();
  allow_dependents();
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < count4;
       i += (int64_t)gridDim.x * blockDim.x) {
    const float4 g = gate[i], u = up[i];
    out[i] = make_float4(silu_mul1(g.x, u.x), silu_mul1(g.y, u.y), silu_mul1(g.z, u.z), silu_mul1(g.w, u.w));
  }
}

// One block per row; x += residual first when residual is given (add_rmsnorm).
template <bool kVec4>
__global__ void rmsnorm_kernel(float* y, float* x, const float* residual, const float* w, int cols,
                               float eps) {
  grid_dependency_wait();
  allow_dependents();
  __shared__ float red[32];
  const int64_t base = (int64_t)blockIdx.x * cols;
  float* xr = x + base;
  float ss = 0.0f;
  if (kVec4) {
    float4* x4 = reinterpret_cast<float4*>(xr);
    const float4* r4 = residual ? reinterpret_cast<const float4*>(residual + base) : nullptr;
    for (int i = threadIdx.x; i < cols / 4; i += blockDim.x) {
      float4 v = x4[i];
      if (r4) {
        const float4 r = r4[i];
        v = make_float4(v.x + r.x, v.y + r.y, v.z + r.z, v.w + r.w);
        x4[i] = v;
      }
      ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
    }
  } else {
    for (int i = threadIdx.x; i < cols; i += blockDim.x) {
      float v = xr[i];
      if (residual) {
        v += residual[base + i];
        xr[i] = v;
      }
      ss += v * v;
    }
  }
  ss = block_reduce<false>(ss, red);
  const float inv = rsqrtf(ss / cols + eps);
  // Each thread reads back only the elements it wrote, so no barrier is needed between the passes.
  if (kVec4) {
    const float4* x4 = reinterpret_cast<const float4*>(xr);
    const float4* w4 = reinterpret_cast<const float4*>(w);
    float4* y4 = reinterpret_cast<float4*>(y + base);
    for (int i = threadIdx.x; i < cols / 4; i += blockDim.x) {
      const float4 v = x4[i], g = w4[i];
      y4[i] = make_float4(v.x * inv * g.x, v.y * inv * g.y, v.z * inv * g.z, v.w * inv * g.w);
    }
  } else {
    for (int i = threadIdx.x; i < cols; i += blockDim.x) y[base + i] = xr[i] * inv * w[i];
  }
}

void launch_rmsnorm(float* y, float* x, const float* residual, const float* w, int n, int cols, float eps,
                    Stream s) {
  if (n <= 0 || cols <= 0) return;
  const bool v4 =
      cols % 4 == 0 && aligned16(y) && aligned16(x) && aligned16(w) && (!residual || aligned16(residual));
  const int threads = cols >= 4096 ? 512 : 256;
  if (v4)
    launch_dependent(rmsnorm_kernel<true>, n, threads, 0, stream_of(s), y, x, residual, w, cols, eps);
  else
    launch_dependent(rmsnorm_kernel<false>, n, threads, 0, stream_of(s), y, x, residual, w, cols, eps);
}

__global__ void embed_kernel(float* y, const void* table, DType dt, const float* row_scales,
                             const int32_t* ids, int dim, size_t row_bytes_) {
  grid_dependency_wait();
  allow_dependents();
  const int t = blockIdx.x;
  const int64_t id = ids[t];
  const void* row = static_cast<const uint8_t*>(table) + id * (int64_t)row_bytes_;
  const bool scaled = is_scaled(dt);
  const float sc = scaled ? row_scales[id] : 1.0f;
  for (int d = threadIdx.x; d < dim; d += blockDim.x) {
    const float v = weight_elem(row, dt, d);
    y[(int64_t)t * dim + d] = scaled ? v * sc : v;
  }
}

__global__ void fill_nan_kernel(float* y, int64_t count) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < count;
       i += (int64_t)gridDim.x * blockDim.x)
    y[i] = __uint_as_float(0x7fc00000u);
}

__global__ void gather_rows_kernel(float* out, const float* x, const int32_t* rows, int cols) {
  grid_dependency_wait();
  allow_dependents();
  const float* src = x + (int64_t)rows[blockIdx.x] * cols;
  float* dst = out + (int64_t)blockIdx.x * cols;
  for (int i = threadIdx.x; i < cols; i += blockDim.x) dst[i] = src[i];
}
__global__ void gather_rows4_kernel(float4* out, const float4* x, const int32_t* rows, int cols4) {
  grid_dependency_wait();
  allow_dependents();
  const float4* src = x + (int64_t)rows[blockIdx.x] * cols4;
  float4* dst = out + (int64_t)blockIdx.x * cols4;
  for (int i = threadIdx.x; i < cols4; i += blockDim.x) dst[i] = src[i];
}

template <bool kBf16>
__global__ void f32_to_half_kernel(uint16_t* out, const float* x, int64_t count) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < count;
       i += (int64_t)gridDim.x * blockDim.x)
    out[i] = kBf16 ? f32_to_bf16_bits(x[i]) : f32_to_f16_bits(x[i]);
}
template <bool kBf16>
__global__ void f32_to_half4_kernel(uint2* out, const float4* x, int64_t count4) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < count4;
       i += (int64_t)gridDim.x * blockDim.x) {
    const float4 v = x[i];
    auto cv = [](float f) -> uint32_t { return kBf16 ? f32_to_bf16_bits(f) : f32_to_f16_bits(f); };
    out[i] = make_uint2(cv(v.x) | (cv(v.y) << 16), cv(v.z) | (cv(v.w) << 16));
  }
}
template <bool kBf16>
void launch_f32_to_half(uint16_t* out, const float* x, int64_t count, Stream s) {
  if (count <= 0) return;
  if (count % 4 == 0 && aligned16(x) && ((uintptr_t)out & 7) == 0)
    f32_to_half4_kernel<kBf16><<<grid_1d(count / 4, kThreads), kThreads, 0, stream_of(s)>>>(
        reinterpret_cast<uint2*>(out), reinterpret_cast<const float4*>(x), count / 4);
  else
    f32_to_half_kernel<kBf16><<<grid_1d(count, kThreads), kThreads, 0, stream_of(s)>>>(out, x, count);
}

__global__ void weight_to_half_kernel(uint16_t* out, bool bf16, const void* w, DType dt,
                                      const float* row_scales, int64_t rows, int64_t cols,
                                      size_t row_bytes_) {
  const int64_t total = rows * cols;
  const bool scaled = is_scaled(dt);
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
       i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t r = i / cols, c = i - r * cols;
    float v = weight_elem(static_cast<const uint8_t*>(w) + r * (int64_t)row_bytes_, dt, c);
    if (scaled) v *= row_scales[r];
    out[i] = bf16 ? f32_to_bf16_bits(v) : f32_to_f16_bits(v);
  }
}

// One block per row. I8 follows ref::quantize_activation_row exactly (x * (127 / amax), nearest even);
// F8 follows the KV cache rule (x / scale, scale = amax / 448, kernels/dtype.h rounding).
__device__ __forceinline__ uint32_t quantize4(bool f8, float4 v, float sc, float inv) {
  const float e[4] = {v.x, v.y, v.z, v.w};
  uint32_t out = 0;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    uint32_t b;
    if (f8)
      b = f32_to_f8e4m3(sc > 0.0f ? __fdiv_rn(e[i], sc) : 0.0f);
    else
      b = (uint8_t)(int8_t)fminf(fmaxf(rintf(__fmul_rn(e[i], inv)), -127.0f), 127.0f);
    out |= b << (8 * i);
  }
  return out;
}
// The row held in registers (16-byte loads, read once): rows of up to
// kQuantVec * 4 * threads values whose length is a multiple of 4.
constexpr int kQuantThreads = 256, kQuantVec = 8;
template <bool kF8>
__global__ void __launch_bounds__(kQuantThreads)
    quantize_rows_vec_kernel(void* q, float* scale, const float* x, int cols) {
  __shared__ float red[32];
  const float4* xr = reinterpret_cast<const float4*>(x + (int64_t)blockIdx.x * cols);
  const int c4 = cols / 4;
  float4 v[kQuantVec];
  float amax = 0.0f;
#pragma unroll
  for (int u = 0; u < kQuantVec; ++u) {
    const int i = threadIdx.x + u * kQuantThreads;
    v[u] = i < c4 ? xr[i] : make_float4(0, 0, 0, 0);
    amax = fmaxf(amax, fmaxf(fmaxf(fabsf(v[u].x), fabsf(v[u].y)), fmaxf(fabsf(v[u].z), fabsf(v[u].w))));
  }
  amax = block_reduce<true>(amax, red);
  const float sc = kF8 ? amax / kF8E4M3Max : (amax > 0.0f ? __fdiv_rn(amax, 127.0f) : 0.0f);
  const float inv = !kF8 && amax > 0.0f ? __fdiv_rn(127.0f, amax) : 0.0f;
  uint32_t* qr = reinterpret_cast<uint32_t*>(static_cast<uint8_t*>(q) + (int64_t)blockIdx.x * cols);
#pragma unroll
  for (int u = 0; u < kQuantVec; ++u) {
    const int i = threadIdx.x + u * kQuantThreads;
    if (i < c4) qr[i] = quantize4(kF8, v[u], sc, inv);
  }
  if (threadIdx.x == 0) scale[blockIdx.x] = sc;
}

template <bool kF8>
__global__ void quantize_rows_kernel(void* q, float* scale, const float* x, int cols) {
  __shared__ float red[32];
  const float* xr = x + (int64_t)blockIdx.x * cols;
  float amax = 0.0f;
  for (int i = threadIdx.x; i < cols; i += blockDim.x) amax = fmaxf(amax, fabsf(xr[i]));
  amax = block_reduce<true>(amax, red);
  if (kF8) {
    const float sc = amax / kF8E4M3Max;
    uint8_t* qr = static_cast<uint8_t*>(q) + (int64_t)blockIdx.x * cols;
    for (int i = threadIdx.x; i < cols; i += blockDim.x)
      qr[i] = f32_to_f8e4m3(sc > 0.0f ? __fdiv_rn(xr[i], sc) : 0.0f);
    if (threadIdx.x == 0) scale[blockIdx.x] = sc;
  } else {
    int8_t* qr = static_cast<int8_t*>(q) + (int64_t)blockIdx.x * cols;
    const float inv = amax > 0.0f ? __fdiv_rn(127.0f, amax) : 0.0f;
    for (int i = threadIdx.x; i < cols; i += blockDim.x)
      qr[i] = (int8_t)fminf(fmaxf(rintf(__fmul_rn(xr[i], inv)), -127.0f), 127.0f);
    if (threadIdx.x == 0) scale[blockIdx.x] = amax > 0.0f ? __fdiv_rn(amax, 127.0f) : 0.0f;
  }
}

template <typename Acc>
__global__ void rescale_kernel(float* y, const Acc* acc, const float* xs, const float* ws, int n, int N) {
  const int64_t total = (int64_t)n * N;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
       i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t t = i / N, j = i - t * N;
    y[i] = __fmul_rn(__fmul_rn((float)acc[i], xs[t]), ws[j]);
  }
}

// One block per row: each thread keeps the best (value, index) of its
// stride, preferring the lower index on a tie; NaN never compares greater,
// so it is never kept. Then a warp and a block reduction of the pairs.
__device__ __forceinline__ void better(float& v, int& i, float v2, int i2) {
  if (v2 > v || (v2 == v && i2 < i)) v = v2, i = i2;
}
template <bool kVec4>
__global__ void __launch_bounds__(1024)
    argmax_rows_kernel(int32_t* out, const float* x, int stride, int cols) {
  grid_dependency_wait();
  allow_dependents();
  __shared__ float sv[32];
  __shared__ int si[32];
  const float* r = x + (int64_t)blockIdx.x * stride;
  float v = -INFINITY;
  int idx = INT_MAX;
  if (kVec4) {
    // A vocabulary row is 128 KB or more: four 16-byte loads per thread in
    // flight before any comparison, so the row streams instead of waiting
    // on one load at a time.
    const float4* r4 = reinterpret_cast<const float4*>(r);
    const int c4 = cols / 4;
    for (int c0 = threadIdx.x; c0 < c4; c0 += 4 * blockDim.x) {
      float4 q[4];
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        const int c = c0 + u * blockDim.x;
        q[u] = c < c4 ? r4[c] : make_float4(0, 0, 0, 0);
      }
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        if (c0 + u * (int)blockDim.x >= c4) break;
        const int c = 4 * (c0 + u * blockDim.x);
        better(v, idx, q[u].x, c);
        better(v, idx, q[u].y, c + 1);
        better(v, idx, q[u].z, c + 2);
        better(v, idx, q[u].w, c + 3);
      }
    }
  } else {
    for (int c = threadIdx.x; c < cols; c += blockDim.x) better(v, idx, r[c], c);
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1)
    better(v, idx, __shfl_xor_sync(0xffffffffu, v, o), __shfl_xor_sync(0xffffffffu, idx, o));
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  if (lane == 0) sv[warp] = v, si[warp] = idx;
  __syncthreads();
  if (warp == 0) {
    v = lane < nw ? sv[lane] : -INFINITY;
    idx = lane < nw ? si[lane] : INT_MAX;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
      better(v, idx, __shfl_xor_sync(0xffffffffu, v, o), __shfl_xor_sync(0xffffffffu, idx, o));
    // A row of NaN and -inf keeps no value above -inf: index 0, as the reference's scan from column 0 gives;
    // so does a NaN in column 0 (nothing compares greater than it there).
    if (lane == 0) out[blockIdx.x] = idx == INT_MAX || isnan(r[0]) ? 0 : idx;
  }
}

}  // namespace

void embed(float* y, const void* table, DType dt, const float* row_scales, const int32_t* ids, int n, int dim,
           Stream s) {
  if (n <= 0 || dim <= 0) return;
  if (!weight_usable(dt, row_scales)) {  // as the reference: NaN makes misuse visible
    fill_nan_kernel<<<grid_1d((int64_t)n * dim, kThreads), kThreads, 0, stream_of(s)>>>(y, (int64_t)n * dim);
    return;
  }
  launch_dependent(embed_kernel, n, dim >= 1024 ? 256 : 128, 0, stream_of(s), y, table, dt, row_scales, ids,
                   dim, row_bytes(dt, dim));
}

void rmsnorm(float* y, const float* x, const float* w, int n, int cols, float eps, Stream s) {
  launch_rmsnorm(y, const_cast<float*>(x), nullptr, w, n, cols, eps, s);
}

void add_rmsnorm(float* x, const float* residual, const float* w, float* y, int n, int cols, float eps,
                 Stream s) {
  launch_rmsnorm(y, x, residual, w, n, cols, eps, s);
}

void silu_mul(float* out, const float* gate, const float* up, int64_t count, Stream s) {
  if (count <= 0) return;
  if (count % 4 == 0 && aligned16(out) && aligned16(gate) && aligned16(up))
    launch_dependent(silu_mul4_kernel, grid_1d(count / 4, kThreads), kThreads, 0, stream_of(s),
                     reinterpret_cast<float4*>(out), reinterpret_cast<const float4*>(gate),
                     reinterpret_cast<const float4*>(up), count / 4);
  else
    launch_dependent(silu_mul_kernel, grid_1d(count, kThreads), kThreads, 0, stream_of(s), out, gate, up,
                     count);
}

void add(float* out, const float* a, const float* b, int64_t count, Stream s) {
  if (count <= 0) return;
  if (count % 4 == 0 && aligned16(out) && aligned16(a) && aligned16(b))
    launch_dependent(add4_kernel, grid_1d(count / 4, kThreads), kThreads, 0, stream_of(s),
                     reinterpret_cast<float4*>(out), reinterpret_cast<const float4*>(a),
                     reinterpret_cast<const float4*>(b), count / 4);
  else
    launch_dependent(add_kernel, grid_1d(count, kThreads), kThreads, 0, stream_of(s), out, a, b, count);
}

void gather_rows(float* out, const float* x, const int32_t* rows, int n, int cols, Stream s) {
  if (n <= 0 || cols <= 0) return;
  if (cols % 4 == 0 && aligned16(out) && aligned16(x))
    launch_dependent(gather_rows4_kernel, n, 128, 0, stream_of(s), reinterpret_cast<float4*>(out),
                     reinterpret_cast<const float4*>(x), rows, cols / 4);
  else
    launch_dependent(gather_rows_kernel, n, 128, 0, stream_of(s), out, x, rows, cols);
}

void f32_to_f16(uint16_t* out, const float* x, int64_t count, Stream s) {
  launch_f32_to_half<false>(out, x, count, s);
}
void f32_to_bf16(uint16_t* out, const float* x, int64_t count, Stream s) {
  launch_f32_to_half<true>(out, x, count, s);
}

void weight_to_half(uint16_t* out, DType out_dt, const void* w, DType dt, const float* row_scales,
                    int64_t rows, int64_t cols, Stream s) {
  if (rows <= 0 || cols <= 0 || (out_dt != DType::F16 && out_dt != DType::BF16)) return;
  // An unusable source type converts NaN (all ones: a NaN in both F16 and BF16).
  if (!weight_usable(dt, row_scales)) {
    cudaMemsetAsync(out, 0xff, (size_t)(rows * cols) * 2, stream_of(s));
    return;
  }
  weight_to_half_kernel<<<grid_1d(rows * cols, kThreads), kThreads, 0, stream_of(s)>>>(
      out, out_dt == DType::BF16, w, dt, row_scales, rows, cols, row_bytes(dt, cols));
}

static bool quantize_vec_ok(const void* q, const float* x, int cols) {
  return cols % 4 == 0 && cols <= kQuantVec * 4 * kQuantThreads && aligned16(x) && ((uintptr_t)q & 3) == 0;
}

void quantize_rows_i8(int8_t* q, float* scale, const float* x, int n, int cols, Stream s) {
  if (n <= 0 || cols <= 0) return;
  if (quantize_vec_ok(q, x, cols))
    quantize_rows_vec_kernel<false><<<n, kQuantThreads, 0, stream_of(s)>>>(q, scale, x, cols);
  else
    quantize_rows_kernel<false><<<n, 256, 0, stream_of(s)>>>(q, scale, x, cols);
}
void quantize_rows_f8(uint8_t* q, float* scale, const float* x, int n, int cols, Stream s) {
  if (n <= 0 || cols <= 0) return;
  if (quantize_vec_ok(q, x, cols))
    quantize_rows_vec_kernel<true><<<n, kQuantThreads, 0, stream_of(s)>>>(q, scale, x, cols);
  else
    quantize_rows_kernel<true><<<n, 256, 0, stream_of(s)>>>(q, scale, x, cols);
}

void rescale_i32(float* y, const int32_t* acc, const float* xs, const float* ws, int n, int N, Stream s) {
  if (n <= 0 || N <= 0) return;
  rescale_kernel<int32_t>
      <<<grid_1d((int64_t)n * N, kThreads), kThreads, 0, stream_of(s)>>>(y, acc, xs, ws, n, N);
}
void rescale_f32(float* y, const float* acc, const float* xs, const float* ws, int n, int N, Stream s) {
  if (n <= 0 || N <= 0) return;
  rescale_kernel<float>
      <<<grid_1d((int64_t)n * N, kThreads), kThreads, 0, stream_of(s)>>>(y, acc, xs, ws, n, N);
}

void argmax_rows(int32_t* out, const float* x, int n, int stride, int cols, Stream s) {
  if (n <= 0 || cols <= 0) return;
  if (cols % 4 == 0 && stride % 4 == 0 && aligned16(x))
    launch_dependent(argmax_rows_kernel<true>, n, 1024, 0, stream_of(s), out, x, stride, cols);
  else
    launch_dependent(argmax_rows_kernel<false>, n, 1024, 0, stream_of(s), out, x, stride, cols);
}

}  // namespace brisk::cuda
