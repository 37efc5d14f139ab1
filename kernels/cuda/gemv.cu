// Weight-only GEMV for small batches: y[n, N] = x[n, K] * w[N, K]^T with n <= 8.
// Decode is bound by streaming the weights once, so each warp streams a row
// with 16-byte loads (two batches of four in flight), dequantizes in
// registers and multiplies against x held in shared memory (staged in K
// chunks so any K fits). Small N gives each row several warps (split K
// inside the block) to fill the device. The fused form takes the decode
// step's neighbours into the same launch: the RMSNorm before a projection
// (in the staging of x), the q/k/v projections sharing x (one launch), the
// residual add after one (accumulate), and SiLU(gate) * up (paired rows).
#include <algorithm>
#include <atomic>
#include <type_traits>

#include "kernels/cuda/common.cuh"

namespace brisk::cuda {
using namespace detail;

namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kUnroll = 4;
constexpr int kSmemFloats = 8192;  // 32 KiB of x per chunk
constexpr bool kUseStream = true;  // the streaming kernel where it applies (else the blocked one)

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

template <int E, int R>
__device__ __forceinline__ void dot_x(float (&acc)[R], const float* xs, int kc, int n, int k,
                                      const float* wv) {
#pragma unroll
  for (int m = 0; m < R; ++m) {
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

// Which weight (and row of it) global row r of a launch is: the weights'
// rows are concatenated, except for SwiGLU, where gate row j and up row j
// are rows 2j and 2j + 1 (one block holds both, so the epilogue can pair them).
__device__ __forceinline__ void locate_row(const GemvFused& a, int r, int& seg, int& j) {
  if (a.epilogue == GemvEpilogue::SwiGLU) {
    seg = r & 1;
    j = r >> 1;
    return;
  }
  seg = 0;
  j = r;
  while (seg + 1 < a.count && j >= a.w[seg].N) j -= a.w[seg++].N;
}

// Mode: 0 = 16-byte vector loads, 1 = Q8_0 blocks (one per lane), 2 = element loads (any shape).
template <DType DT, int kMode>
__global__ void __launch_bounds__(kThreads) gemv_kernel(GemvFused a, int rows, int kc, int wpr, size_t rb) {
  extern __shared__ float4 smem4[];
  float* xs = reinterpret_cast<float*>(smem4);
  grid_dependency_wait();
  allow_dependents();
  const int n = a.n, K = a.K;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int rows_per_block = kWarps / wpr;
  const int part = warp % wpr;
  const int r = blockIdx.x * rows_per_block + warp / wpr;
  const bool active = r < rows;
  int seg = 0, j = 0;
  if (active) locate_row(a, r, seg, j);
  const uint8_t* wrow = static_cast<const uint8_t*>(a.w[seg].w) + (int64_t)j * rb;
  float acc[kGemvMaxRows];
#pragma unroll
  for (int m = 0; m < kGemvMaxRows; ++m) acc[m] = 0.0f;

  // RMSNorm folded in: x * norm_w is staged, each thread sums the squares
  // of the x it stages, and the epilogue scales the dot products by the
  // rows' inverse RMS (h w = inv_rms * ((x * norm_w) w)), so the norm costs
  // no pass of its own and no launch.
  float ss[kGemvMaxRows];
#pragma unroll
  for (int m = 0; m < kGemvMaxRows; ++m) ss[m] = 0.0f;
  const bool vec_x = K % 4 == 0 && aligned16(a.x) && (!a.norm_w || aligned16(a.norm_w));

  constexpr int E = GemvVec<DT>::kElems;
  constexpr int kEsize = DT == DType::F32 ? 4 : (DT == DType::F16 || DT == DType::BF16) ? 2 : 1;
  for (int k0 = 0; k0 < K; k0 += kc) {
    const int len = min(kc, K - k0);
    // Mode 0 issues its first weight loads before staging x, so the two latencies overlap.
    const int iters = (len + 32 * E - 1) / (32 * E);
    const int step = kUnroll * wpr;
    const uint8_t* base = wrow + (int64_t)k0 * kEsize;
    uint4 cur[kUnroll];
    auto load = [&](uint4(&raw)[kUnroll], int it0) {
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int it = it0 + u * wpr;
        const int kk = it * 32 * E + lane * E;
        raw[u] = active && it < iters && kk < len
                     ? __ldg(reinterpret_cast<const uint4*>(base + (int64_t)kk * kEsize))
                     : make_uint4(0, 0, 0, 0);
      }
    };
    if constexpr (kMode == 0) load(cur, part);
    __syncthreads();  // the previous chunk is consumed
                      // Staging: 16-byte loads, all of a thread's issued before any is used.
#pragma unroll
    for (int m = 0; m < kGemvMaxRows; ++m) {
      if (m >= n) break;
      const float* xr = a.x + (int64_t)m * K + k0;
      if (vec_x) {
        constexpr int kPer = 4;
        for (int i0 = threadIdx.x; i0 < len / 4; i0 += kPer * kThreads) {
          float4 v[kPer], g[kPer];
#pragma unroll
          for (int u = 0; u < kPer; ++u) {
            const int i = i0 + u * kThreads;
            v[u] = i < len / 4 ? __ldg(reinterpret_cast<const float4*>(xr) + i) : make_float4(0, 0, 0, 0);
            g[u] = a.norm_w && i < len / 4 ? __ldg(reinterpret_cast<const float4*>(a.norm_w + k0) + i)
                                           : make_float4(1, 1, 1, 1);
          }
#pragma unroll
          for (int u = 0; u < kPer; ++u) {
            const int i = i0 + u * kThreads;
            if (i >= len / 4) break;
            ss[m] += v[u].x * v[u].x + v[u].y * v[u].y + v[u].z * v[u].z + v[u].w * v[u].w;
            reinterpret_cast<float4*>(xs + m * kc)[i] =
                make_float4(v[u].x * g[u].x, v[u].y * g[u].y, v[u].z * g[u].z, v[u].w * g[u].w);
          }
        }
      } else {
        for (int i = threadIdx.x; i < len; i += kThreads) {
          const float v = xr[i];
          ss[m] += v * v;
          xs[m * kc + i] = a.norm_w ? v * a.norm_w[k0 + i] : v;
        }
      }
    }
    __syncthreads();
    if (!active) continue;
    if constexpr (kMode == 0) {
      for (int it0 = part; it0 < iters; it0 += step) {
        uint4 nxt[kUnroll];
        load(nxt, it0 + step);  // the next batch is in flight while this one is used
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
          const int it = it0 + u * wpr;
          const int kk = it * 32 * E + lane * E;
          if (it < iters && kk < len) {
            float wv[E];
            decode16<DT>(cur[u], wv);
            dot_x<E>(acc, xs, kc, n, kk, wv);
          }
          cur[u] = nxt[u];
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
  for (int m = 0; m < kGemvMaxRows; ++m) {
    acc[m] = warp_sum(acc[m]);
    if (a.norm_w) ss[m] = warp_sum(ss[m]);
  }
  __syncthreads();
  float* red = xs;                             // [kWarps][kGemvMaxRows]
  float* red_ss = xs + kWarps * kGemvMaxRows;  // [kWarps][kGemvMaxRows]
  if (lane == 0)
#pragma unroll
    for (int m = 0; m < kGemvMaxRows; ++m) {
      red[warp * kGemvMaxRows + m] = acc[m];
      red_ss[warp * kGemvMaxRows + m] = ss[m];
    }
  __syncthreads();
  if (!active || part != 0 || lane >= n) return;
  const int m = lane;
  float inv = 1.0f;
  if (a.norm_w) {
    float t = 0.0f;
    for (int w = 0; w < kWarps; ++w) t += red_ss[w * kGemvMaxRows + m];
    inv = rsqrtf(t / K + a.eps);
  }
  auto row_sum = [&](int first_warp, int sg, int row) {
    float v = 0.0f;
    for (int p = 0; p < wpr; ++p) v += red[(first_warp + p) * kGemvMaxRows + m];
    if (is_scaled(DT)) v *= a.w[sg].row_scales[row];
    return v * inv;
  };
  const float v = row_sum(warp, seg, j);
  const GemvWeight& out = a.w[seg];
  float* y = out.y + (int64_t)m * out.N + j;
  switch (a.epilogue) {
    case GemvEpilogue::Store:
      *y = v;
      break;
    case GemvEpilogue::Accumulate:
      *y += v;
      break;
    case GemvEpilogue::SwiGLU:
      // The gate row's owner pairs it with the up row, held by the next warps of this block.
      if (seg == 0) *y = v / (1.0f + expf(-v)) * row_sum(warp + wpr, 1, j);
      break;
    case GemvEpilogue::RopeKv:  // streaming kernel only (gemv_rope_kv_write)
      break;
  }
}

// The streaming form (16-byte weight loads, all of x in shared memory):
// a grid of resident blocks whose warps each walk whole output rows, with
// the next batch of weight loads (the rest of the row, or the start of the
// warp's next row) issued before the current batch is used, so a
// multiprocessor always has its warps' loads in flight instead of waiting
// for a wave of small blocks to drain. A row is one weight row, or for
// SwiGLU the gate row and the up row of one output, or for the q/k/v
// projections with RoPE folded in the two rows of a rotation pair. x (times
// norm_w) is staged once per block; the norm's inverse RMS is one block
// reduction.
constexpr int kStreamBatch = 8;      // 16-byte loads per lane per batch
constexpr int kStreamPrefetch = 32;  // loads per lane of a warp's first row covered before the wait
// What a warp's row is: one weight row, SwiGLU's gate row j and up row j, or
// rows 2p and 2p + 1 of the concatenated q/k/v weights (a RoPE pair).
enum PairKind { kSingle = 0, kGateUp = 1, kRopePair = 2 };
// R is the most rows of x the instantiation takes: 1 (a single decode
// sequence, which needs a third of the registers and so fits more warps,
// and with them more loads in flight, on a multiprocessor) or R.
template <DType DT, int kPair, int R>
__global__ void __launch_bounds__(kThreads, R == 1 ? 3 : 1)
    gemv_stream_kernel(GemvFused a, GemvRope rp, int rows, int xstride, size_t rb) {
  extern __shared__ float4 smem4[];
  float* xs = reinterpret_cast<float*>(smem4);  // [n][xstride]
  __shared__ float red_ss[kWarps][R];
  __shared__ float inv_rms[R];
  constexpr int E = GemvVec<DT>::kElems;
  constexpr int kEsize = DT == DType::F32 ? 4 : (DT == DType::F16 || DT == DType::BF16) ? 2 : 1;
  const int n = a.n, K = a.K;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;

  const int iters = K / (32 * E);  // 16-byte loads per lane for one weight row
  const int per_row = kPair != kSingle ? 2 * iters : iters;
  const int stride = gridDim.x * kWarps;
  int r = blockIdx.x * kWarps + warp;
  // The weight row and column of step f of row r (for a pair, f >= iters is the second row).
  auto src = [&](int row, int f) -> const uint4* {
    int seg, j;
    if (kPair == kGateUp) {
      seg = f >= iters;
      j = row;
      if (seg) f -= iters;
    } else if (kPair == kRopePair) {
      const int second = f >= iters;
      if (second) f -= iters;
      locate_row(a, 2 * row + second, seg, j);
    } else {
      locate_row(a, row, seg, j);
    }
    return reinterpret_cast<const uint4*>(static_cast<const uint8_t*>(a.w[seg].w) + (int64_t)j * rb +
                                          ((int64_t)f * 32 * E + lane * E) * kEsize);
  };
  auto load = [&](uint4(&raw)[kStreamBatch], int row, int f0) {
#pragma unroll
    for (int u = 0; u < kStreamBatch; ++u)
      raw[u] = row < rows && f0 + u < per_row ? __ldg(src(row, f0 + u)) : make_uint4(0, 0, 0, 0);
  };
  // The weights depend on no earlier kernel: the first batch is loaded and
  // the rest of the first row prefetched into L2 before waiting for the
  // kernel that writes x (see grid_dependency_wait).
  uint4 cur[kStreamBatch];
  load(cur, r, 0);
  if (r < rows)
    for (int f = kStreamBatch; f < min(per_row, kStreamPrefetch); ++f) prefetch_l2(src(r, f));
  // A RoPE pair's angle for token `lane` (uploaded positions only): the
  // first row's before the wait, each next one while its loads are in
  // flight. Kept in shared memory (each lane reads back its own), not in
  // registers live across the streaming loop.
  __shared__ double2 angles[kPair == kRopePair ? kWarps : 1][R];
  auto angle = [&](int row) {
    if (kPair == kRopePair && row < rows && lane < n) {
      int seg, j;
      locate_row(a, 2 * row, seg, j);
      const int d = j % rp.head_dim;
      if (seg < 2 && d + 1 < rp.rot_dim)
        angles[warp][lane] = rope_angle(rp.pos[lane], d / 2, rp.rot_dim, rp.theta);
    }
  };
  angle(r);
  grid_dependency_wait();
  allow_dependents();

  // Stage x (times norm_w) and the squares' partial sums.
  float ss[R];
#pragma unroll
  for (int m = 0; m < R; ++m) {
    ss[m] = 0.0f;
    if (m >= n) continue;
    const float4* xr = reinterpret_cast<const float4*>(a.x + (int64_t)m * K);
    for (int i = threadIdx.x; i < K / 4; i += kThreads) {
      const float4 v = __ldg(xr + i);
      const float4 g =
          a.norm_w ? __ldg(reinterpret_cast<const float4*>(a.norm_w) + i) : make_float4(1, 1, 1, 1);
      ss[m] += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
      reinterpret_cast<float4*>(xs + m * xstride)[i] =
          make_float4(v.x * g.x, v.y * g.y, v.z * g.z, v.w * g.w);
    }
  }
  if (a.norm_w) {
#pragma unroll
    for (int m = 0; m < R; ++m) {
      const float t = warp_sum(ss[m]);
      if (lane == 0) red_ss[warp][m] = t;
    }
  }
  __syncthreads();
  if (a.norm_w && threadIdx.x < n) {
    float t = 0.0f;
    for (int w = 0; w < kWarps; ++w) t += red_ss[w][threadIdx.x];
    inv_rms[threadIdx.x] = rsqrtf(t / K + a.eps);
  }
  __syncthreads();

  float acc[R], acc2[R];
  while (r < rows) {
#pragma unroll
    for (int m = 0; m < R; ++m) acc[m] = acc2[m] = 0.0f;
    for (int f0 = 0; f0 < per_row; f0 += kStreamBatch) {
      // The next batch: the rest of this row, or the start of the warp's next one.
      const bool last = f0 + kStreamBatch >= per_row;
      uint4 nxt[kStreamBatch];
      load(nxt, last ? r + stride : r, last ? 0 : f0 + kStreamBatch);
#pragma unroll
      for (int u = 0; u < kStreamBatch; ++u) {
        const int f = f0 + u;
        if (f < per_row) {
          float wv[E];
          decode16<DT>(cur[u], wv);
          const bool second = kPair != kSingle && f >= iters;
          const int col = (second ? f - iters : f) * 32 * E + lane * E;
          if (second)
            dot_x<E>(acc2, xs, xstride, n, col, wv);
          else
            dot_x<E>(acc, xs, xstride, n, col, wv);
        }
        cur[u] = nxt[u];
      }
    }
    // Epilogue of row r: lane m < n writes output row m.
    int seg = 0, j = r;
    if (kPair == kSingle) locate_row(a, r, seg, j);
    if (kPair == kRopePair) locate_row(a, 2 * r, seg, j);
#pragma unroll
    for (int m = 0; m < R; ++m) {
      acc[m] = warp_sum(acc[m]);
      if (kPair != kSingle) acc2[m] = warp_sum(acc2[m]);
    }
    float v = 0.0f, u2 = 0.0f;
#pragma unroll
    for (int m = 0; m < R; ++m)
      if (lane == m) v = acc[m], u2 = acc2[m];
    if (lane < n) {
      const float inv = a.norm_w ? inv_rms[lane] : 1.0f;
      if (is_scaled(DT)) v *= a.w[seg].row_scales[j];
      v *= inv;
      const GemvWeight& out = a.w[seg];
      float* y = out.y + (int64_t)lane * out.N + j;
      if constexpr (kPair == kGateUp) {
        if (is_scaled(DT)) u2 *= a.w[1].row_scales[j];
        u2 *= inv;
        *y = v / (1.0f + expf(-v)) * u2;
      } else if constexpr (kPair == kRopePair) {
        // As gemv_fused then rope_kv_write: q rotated in place, k and v
        // stored as projected, the cache given k rotated and v as it is.
        if (is_scaled(DT)) u2 *= out.row_scales[j + 1];
        u2 *= inv;
        const int D = rp.head_dim, d = j % D;
        const bool rotate = seg < 2 && d + 1 < rp.rot_dim;
        float y0 = v, y1 = u2;
        const double2 cs = rotate ? angles[warp][lane] : make_double2(1.0, 0.0);
        if (seg == 0 && rotate) rope_rotate(y0, y1, cs);
        y[0] = y0;
        y[1] = y1;
        const int64_t slot = rp.kv_slots[lane];
        if (seg > 0 && slot >= 0) {
          if (seg == 1 && rotate) rope_rotate(y0, y1, cs);
          // A copy: a reference into kernel-parameter space would force the whole struct to the stack.
          const DeviceKvCache c = seg == 1 ? rp.k : rp.v;
          const int64_t at = (slot * c.n_kv_heads + j / D) * D + d;
          kv_store_unscaled(c, at, y0);
          kv_store_unscaled(c, at + 1, y1);
        }
      } else if (a.epilogue == GemvEpilogue::Accumulate) {
        *y += v;
      } else {
        *y = v;
      }
    }
    r += stride;
    angle(r);
  }
}

// Resident blocks per multiprocessor of a stream kernel at this shared memory, once per instantiation.
template <DType DT, int kPair, int R>
int stream_blocks_per_sm(size_t smem) {
  static int cached_smem = -1, cached = 1;
  if ((int)smem != cached_smem) {
    int b = 0;
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&b, gemv_stream_kernel<DT, kPair, R>, kThreads, smem) !=
        cudaSuccess)
      b = 1;
    cached = std::max(1, b);
    cached_smem = (int)smem;
  }
  return cached;
}

std::atomic<int> g_blocks_per_sm{0};  // set_gemv_blocks_per_sm

template <DType DT, int kPair, int R>
void launch_stream(const GemvFused& a, const GemvRope& rp, int out_rows, size_t smem, size_t rb,
                   cudaStream_t st) {
  int per_sm = stream_blocks_per_sm<DT, kPair, R>(smem);
  if (const int cap = g_blocks_per_sm.load(std::memory_order_relaxed); cap > 0)
    per_sm = std::min(per_sm, cap);
  const int blocks = std::min((out_rows + kWarps - 1) / kWarps, per_sm * sm_count());
  launch_dependent(gemv_stream_kernel<DT, kPair, R>, blocks, kThreads, smem, st, a, rp, out_rows, a.K, rb);
}

// The streaming kernel for this launch's pair kind and row count.
template <DType DT, int kPair>
void launch_stream_rows(const GemvFused& a, const GemvRope& rp, int out_rows, size_t smem, cudaStream_t st) {
  const size_t rb = row_bytes(DT, a.K);
  if (a.n == 1)
    launch_stream<DT, kPair, 1>(a, rp, out_rows, smem, rb, st);
  else
    launch_stream<DT, kPair, kGemvMaxRows>(a, rp, out_rows, smem, rb, st);
}

// Whether this launch's pointers allow the streaming kernel (its shape: gemv_streams).
bool stream_pointers_ok(const GemvFused& a) {
  bool ok = aligned16(a.x) && (!a.norm_w || aligned16(a.norm_w));
  for (int i = 0; i < a.count; ++i) ok = ok && aligned16(a.w[i].w);
  return ok;
}

__global__ void fill_nan_rows(float* y, int64_t count) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < count;
       i += (int64_t)gridDim.x * blockDim.x)
    y[i] = __uint_as_float(0x7fc00000u);
}

template <DType DT>
void launch(const GemvFused& a, Stream s) {
  constexpr int E = GemvVec<DT>::kElems;
  const int n = a.n, K = a.K;
  const size_t rb = row_bytes(DT, K);
  int rows = 0;
  for (int i = 0; i < a.count; ++i) rows += a.w[i].N;
  int kc = std::max(512, (kSmemFloats / n) & ~511);
  if (K < kc) kc = (K + 3) & ~3;
  // Warps per row: enough blocks for two per multiprocessor, and for SwiGLU
  // at least two rows per block (the gate/up pair).
  const int max_wpr = a.epilogue == GemvEpilogue::SwiGLU ? kWarps / 2 : kWarps;
  int wpr = 1;
  const int target = 2 * sm_count();
  while (wpr < max_wpr && (rows + kWarps / wpr - 1) / (kWarps / wpr) < target) wpr *= 2;
  const int rows_per_block = kWarps / wpr;
  const unsigned grid = (unsigned)((rows + rows_per_block - 1) / rows_per_block);
  const size_t smem = std::max<size_t>((size_t)n * kc, 2 * kWarps * kGemvMaxRows) * sizeof(float);
  cudaStream_t st = stream_of(s);
  if constexpr (DT == DType::Q8_0) {
    launch_dependent(gemv_kernel<DT, 1>, grid, kThreads, smem, st, a, rows, kc, wpr, rb);
  } else {
    bool vec = K % E == 0 && rb % 16 == 0;
    for (int i = 0; i < a.count; ++i) vec = vec && aligned16(a.w[i].w);
    // The streaming kernel when x fits the default shared memory whole and
    // rows are whole batches of 16-byte loads per lane.
    const size_t stream_smem = (size_t)n * K * sizeof(float);
    if (gemv_streams(DT, n, K) && stream_pointers_ok(a) && kUseStream) {
      if (a.epilogue == GemvEpilogue::SwiGLU)
        launch_stream_rows<DT, kGateUp>(a, GemvRope{}, a.w[0].N, stream_smem, st);
      else
        launch_stream_rows<DT, kSingle>(a, GemvRope{}, rows, stream_smem, st);
    } else if (vec)
      launch_dependent(gemv_kernel<DT, 0>, grid, kThreads, smem, st, a, rows, kc, wpr, rb);
    else
      launch_dependent(gemv_kernel<DT, 2>, grid, kThreads, smem, st, a, rows, kc, wpr, rb);
  }
}

bool fused_args_valid(const GemvFused& a) {
  if (a.count < 1 || a.count > kGemvMaxWeights) return false;
  if (a.epilogue == GemvEpilogue::RopeKv && a.count != 3) return false;
  if (a.epilogue == GemvEpilogue::SwiGLU && (a.count != 2 || a.w[0].N != a.w[1].N)) return false;
  for (int i = 0; i < a.count; ++i)
    if (!a.w[i].w || !a.w[i].y || a.w[i].N <= 0) return false;
  return true;
}

// Calls f(std::integral_constant<DType, dt>{}) for a weight dtype the GEMV takes; false for others.
template <class F>
bool with_weight_dtype(DType dt, F&& f) {
  switch (dt) {
    case DType::F32:
      return f(std::integral_constant<DType, DType::F32>{}), true;
    case DType::F16:
      return f(std::integral_constant<DType, DType::F16>{}), true;
    case DType::BF16:
      return f(std::integral_constant<DType, DType::BF16>{}), true;
    case DType::Q8_0:
      return f(std::integral_constant<DType, DType::Q8_0>{}), true;
    case DType::I8:
      return f(std::integral_constant<DType, DType::I8>{}), true;
    case DType::F8_E4M3:
      return f(std::integral_constant<DType, DType::F8_E4M3>{}), true;
    case DType::F8_E5M2:
      return f(std::integral_constant<DType, DType::F8_E5M2>{}), true;
    default:
      return false;
  }
}

// Rows m0 .. m0 + kGemvMaxRows of a launch's x and outputs.
GemvFused row_group(const GemvFused& args, int m0) {
  GemvFused a = args;
  a.n = std::min(kGemvMaxRows, args.n - m0);
  a.x = args.x + (int64_t)m0 * args.K;
  for (int i = 0; i < a.count; ++i) a.w[i].y = args.w[i].y + (int64_t)m0 * args.w[i].N;
  return a;
}

}  // namespace

void gemv_fused(const GemvFused& args, Stream s) {
  if (args.n <= 0 || args.K <= 0 || args.epilogue == GemvEpilogue::RopeKv || !fused_args_valid(args)) return;
  const DType dt = args.dt;
  bool usable = !(dt == DType::Q8_0 && args.K % kQ8_0BlockSize != 0);
  for (int i = 0; i < args.count; ++i) usable = usable && weight_usable(dt, args.w[i].row_scales);
  if (!usable) {
    // As the reference: an unusable weight gives NaN, never a silent zero.
    for (int i = 0; i < (args.epilogue == GemvEpilogue::SwiGLU ? 1 : args.count); ++i) {
      const int64_t count = (int64_t)args.n * args.w[i].N;
      fill_nan_rows<<<grid_1d(count, 256), 256, 0, stream_of(s)>>>(args.w[i].y, count);
    }
    return;
  }
  // More rows than one launch takes: consecutive groups of kGemvMaxRows.
  for (int m0 = 0; m0 < args.n; m0 += kGemvMaxRows) {
    const GemvFused a = row_group(args, m0);
    with_weight_dtype(dt, [&](auto d) { launch<decltype(d)::value>(a, s); });
  }
}

bool gemv_rope_kv_write(const GemvFused& args, const GemvRope& rp, Stream s) {
  GemvFused a = args;
  a.epilogue = GemvEpilogue::RopeKv;
  if (a.n <= 0 || a.K <= 0 || !fused_args_valid(a) || !stream_pointers_ok(a) || !rp.pos || !rp.kv_slots ||
      !kUseStream)
    return false;
  const int n_rows[3] = {a.w[0].N, a.w[1].N, a.w[2].N};
  if (!gemv_rope_foldable(a.dt, a.n, a.K, n_rows, rp.head_dim, rp.rot_dim, rp.k.dtype, rp.v.dtype) ||
      rp.k.head_dim != rp.head_dim || rp.v.head_dim != rp.head_dim ||
      rp.k.n_kv_heads * rp.head_dim != n_rows[1] || rp.v.n_kv_heads * rp.head_dim != n_rows[2])
    return false;
  // An unusable weight is the unfused path's to report (as NaN).
  for (int i = 0; i < a.count; ++i)
    if (!weight_usable(a.dt, a.w[i].row_scales)) return false;
  const int pairs = (n_rows[0] + n_rows[1] + n_rows[2]) / 2;
  for (int m0 = 0; m0 < a.n; m0 += kGemvMaxRows) {
    const GemvFused g = row_group(a, m0);
    GemvRope r = rp;
    r.pos += m0;
    r.kv_slots += m0;
    const size_t smem = (size_t)g.n * g.K * sizeof(float);
    with_weight_dtype(a.dt, [&](auto d) {
      constexpr DType DT = decltype(d)::value;
      if constexpr (DT != DType::Q8_0) launch_stream_rows<DT, kRopePair>(g, r, pairs, smem, stream_of(s));
    });
  }
  return true;
}

void set_gemv_blocks_per_sm(int blocks) {
  g_blocks_per_sm.store(std::max(0, blocks), std::memory_order_relaxed);
}

void gemv(float* y, const float* x, const void* w, DType dt, const float* row_scales, int n, int N, int K,
          Stream s) {
  if (n <= 0 || N <= 0) return;
  GemvFused a;
  a.x = x;
  a.n = n;
  a.K = K;
  a.dt = dt;
  a.w[0] = GemvWeight{w, row_scales, y, N};
  a.count = 1;
  gemv_fused(a, s);
}

}  // namespace brisk::cuda
