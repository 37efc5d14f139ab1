// RoPE and the KV cache writes. The rotation angles are computed per token
// in double (as ref::rope) and shared by the heads of a block; each warp
// encodes one (token, KV head) row, so the row's absmax scale is a warp
// reduction.
#include <algorithm>

#include "kernels/cuda/common.cuh"

namespace brisk::cuda {
using namespace detail;

namespace {

constexpr int kThreads = 128;
constexpr int kMaxPairs = 128;  // head_dim <= 256

// The angle table of a token at `pos` (pairs 0 .. rot_dim / 2), shared by the heads of a block.
__device__ void rope_table(double2* cs, int pos, int rot_dim, float theta) {
  for (int i = threadIdx.x; i < rot_dim / 2; i += blockDim.x) cs[i] = rope_angle(pos, i, rot_dim, theta);
}

// Rotates the first rot_dim dims of every head of one row in place.
__device__ void rope_row(float* row, int n_heads, int head_dim, int rot_dim, const double2* cs) {
  const int half = rot_dim / 2;
  for (int i = threadIdx.x; i < n_heads * half; i += blockDim.x) {
    const int h = i / half, p = i - h * half;
    float* v = row + (int64_t)h * head_dim + 2 * p;
    float a = v[0], b = v[1];
    rope_rotate(a, b, cs[p]);
    v[0] = a;
    v[1] = b;
  }
}

__global__ void rope_kernel(float* x, const int32_t* pos, int n_heads, int head_dim, int rot_dim,
                            float theta) {
  __shared__ double2 cs[kMaxPairs];
  rope_table(cs, pos[blockIdx.x], rot_dim, theta);
  __syncthreads();
  rope_row(x + (int64_t)blockIdx.x * n_heads * head_dim, n_heads, head_dim, rot_dim, cs);
}

// Encodes one head row held by a warp (lane owns pairs lane + 32 j: elements 2p, 2p+1) into the cache,
// as ref::kv_store_head.
__device__ void store_head(const DeviceKvCache& c, int64_t slot, int head, const float (&v)[4][2], int D) {
  const int lane = threadIdx.x & 31;
  const int64_t at = (slot * c.n_kv_heads + head) * D;
  float scale = 0.0f;
  if (c.dtype == DType::I8 || c.dtype == DType::F8_E4M3) {
    float amax = 0.0f;
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int d = 2 * (lane + 32 * j) + e;
        if (d < D) amax = fmaxf(amax, fabsf(v[j][e]));
      }
    amax = warp_max(amax);
    scale = __fdiv_rn(amax, c.dtype == DType::I8 ? kI8Max : kF8E4M3Max);
    if (lane == 0) c.scales[slot * c.n_kv_heads + head] = scale;
  }
#pragma unroll
  for (int j = 0; j < 4; ++j)
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      const int d = 2 * (lane + 32 * j) + e;
      if (d >= D) continue;
      const float x = v[j][e];
      switch (c.dtype) {
        case DType::I8: {
          const float y = scale > 0.0f ? __fdiv_rn(x, scale) : 0.0f;
          static_cast<int8_t*>(c.data)[at + d] = (int8_t)fminf(fmaxf(rintf(y), -kI8Max), kI8Max);
          break;
        }
        case DType::F8_E4M3: {
          const float y = scale > 0.0f ? __fdiv_rn(x, scale) : 0.0f;
          static_cast<uint8_t*>(c.data)[at + d] = f32_to_f8e4m3(y);
          break;
        }
        default:
          kv_store_unscaled(c, at + d, x);
          break;
      }
    }
}

// Grid (token, group): each warp takes one head row of the token, a q head
// (rotated in place) or a K or V head (encoded into the cache, K rotated),
// so a single decode token still spreads over several blocks. Each block
// computes the token's angle table. A negative slot (a padding row) writes
// nothing to the cache.
__global__ void kv_store_kernel(float* q, const float* k, const float* v, const int32_t* pos,
                                const int32_t* slots, int n_heads, int rot_dim, float theta, DeviceKvCache kc,
                                DeviceKvCache vc) {
  __shared__ double2 cs[kMaxPairs];
  const int t = blockIdx.x;
  const int D = kc.head_dim, nkv = kc.n_kv_heads;
  const bool use_rope = pos != nullptr;
  // The angles need only the uploaded positions: computed before the wait for the q/k/v projection.
  if (use_rope) rope_table(cs, pos[t], rot_dim, theta);
  grid_dependency_wait();
  allow_dependents();
  if (use_rope) __syncthreads();
  const int64_t slot = slots[t];
  const int nq = use_rope && q ? n_heads : 0;
  const int lane = threadIdx.x & 31, nw = blockDim.x >> 5;
  for (int u = blockIdx.y * nw + (threadIdx.x >> 5); u < nq + 2 * nkv; u += gridDim.y * nw) {
    if (u < nq) {
      float* row = q + ((int64_t)t * n_heads + u) * D;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int p = lane + 32 * j;
        if (2 * p + 1 >= rot_dim) continue;
        float a = row[2 * p], b = row[2 * p + 1];
        rope_rotate(a, b, cs[p]);
        row[2 * p] = a;
        row[2 * p + 1] = b;
      }
      continue;
    }
    if (slot < 0) continue;
    const int r = u - nq;
    const bool is_k = r < nkv;
    const int head = is_k ? r : r - nkv;
    const float* src = (is_k ? k : v) + ((int64_t)t * nkv + head) * D;
    float vals[4][2];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int p = lane + 32 * j;
      vals[j][0] = 2 * p < D ? src[2 * p] : 0.0f;
      vals[j][1] = 2 * p + 1 < D ? src[2 * p + 1] : 0.0f;
      if (is_k && use_rope && 2 * p + 1 < rot_dim) rope_rotate(vals[j][0], vals[j][1], cs[p]);
    }
    store_head(is_k ? kc : vc, slot, head, vals, D);
  }
}

dim3 kv_store_grid(int n, int n_q_rows, int n_kv_heads) {
  const int rows = n_q_rows + 2 * n_kv_heads, per_block = kThreads / 32;
  return dim3((unsigned)n, (unsigned)std::max(1, (rows + per_block - 1) / per_block));
}

__global__ void copy_blocks_kernel(uint8_t* data, float* scales, const int32_t* pairs, size_t block_bytes,
                                   int block_scales, bool vec16) {
  const int64_t src = pairs[2 * blockIdx.x], dst = pairs[2 * blockIdx.x + 1];
  if (vec16) {
    const uint4* s4 = reinterpret_cast<const uint4*>(data + src * block_bytes);
    uint4* d4 = reinterpret_cast<uint4*>(data + dst * block_bytes);
    for (size_t i = threadIdx.x; i < block_bytes / 16; i += blockDim.x) d4[i] = s4[i];
  } else {
    for (size_t i = threadIdx.x; i < block_bytes; i += blockDim.x)
      data[dst * block_bytes + i] = data[src * block_bytes + i];
  }
  if (scales)
    for (int i = threadIdx.x; i < block_scales; i += blockDim.x)
      scales[dst * block_scales + i] = scales[src * block_scales + i];
}

}  // namespace

void rope(float* x, const int32_t* pos, int n, int n_heads, int head_dim, int rot_dim, float theta,
          Stream s) {
  if (n <= 0 || rot_dim < 2 || rot_dim > 2 * kMaxPairs) return;
  rope_kernel<<<n, kThreads, 0, stream_of(s)>>>(x, pos, n_heads, head_dim, rot_dim, theta);
}

void kv_write(const DeviceKvCache& k, const DeviceKvCache& v, const float* k_rows, const float* v_rows,
              const int32_t* slots, int n, Stream s) {
  if (n <= 0 || k.head_dim > 2 * kMaxPairs) return;
  launch_dependent(kv_store_kernel, kv_store_grid(n, 0, k.n_kv_heads), kThreads, 0, stream_of(s), nullptr,
                   k_rows, v_rows, nullptr, slots, 0, 0, 0.0f, k, v);
}

void rope_kv_write(float* q, const float* k, const float* v, const int32_t* pos, const int32_t* slots, int n,
                   int n_heads, int rot_dim, float theta, const DeviceKvCache& kc, const DeviceKvCache& vc,
                   Stream s) {
  if (n <= 0 || rot_dim > 2 * kMaxPairs || kc.head_dim > 2 * kMaxPairs) return;
  launch_dependent(kv_store_kernel, kv_store_grid(n, q ? n_heads : 0, kc.n_kv_heads), kThreads, 0,
                   stream_of(s), q, k, v, pos, slots, n_heads, rot_dim, theta, kc, vc);
}

void copy_blocks(const DeviceKvCache& c, const int32_t* pairs, int count, int block_size, Stream s) {
  if (count <= 0) return;
  const size_t block_bytes = row_bytes(c.dtype, (int64_t)c.n_kv_heads * c.head_dim) * block_size;
  const bool scaled = c.dtype == DType::I8 || c.dtype == DType::F8_E4M3;
  copy_blocks_kernel<<<count, 256, 0, stream_of(s)>>>(
      static_cast<uint8_t*>(c.data), scaled ? c.scales : nullptr, pairs, block_bytes,
      block_size * c.n_kv_heads, block_bytes % 16 == 0 && aligned16(c.data));
}

}  // namespace brisk::cuda
