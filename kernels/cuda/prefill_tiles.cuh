// The register-tiled prefill attention block, written once for the GPU and
// for a CPU emulation (tests/kernels/test_cuda_prefill_emulated.cpp runs
// this same code with a thread per CUDA thread, so its tiling, masking and
// online softmax are tested on machines without a GPU).
//
// A block takes 64 query rows of one head of one sequence and walks 64-key
// tiles up to the last causal position, each of its 256 threads scoring 4
// query rows x 4 keys and accumulating 4 rows x 4 (or 8) head dimensions,
// so each 16-byte shared-memory load feeds 8 FMAs instead of the tiled
// kernel's one. Q and K sit transposed (dimension-major) in shared memory,
// the probabilities key-major, so every operand a thread reads is 4
// consecutive floats. The 16 threads of a row group are a half-warp: a
// row's max and sum are four shuffles. Head dimensions 64 (J = 1) and 128
// (J = 2).
#pragma once
#include <cassert>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/cuda/cuda_kernels.h"

#ifdef __CUDACC__
#define BRISK_HD __device__ __forceinline__
#define BRISK_UNROLL _Pragma("unroll")
#else
#define BRISK_HD inline
#define BRISK_UNROLL
#endif

namespace brisk::cuda::tiles {

// Four consecutive floats of shared memory: one 16-byte load or store on
// the GPU; through memcpy on the CPU (no type punning).
#ifdef __CUDACC__
using vec4 = float4;
__device__ __forceinline__ vec4 load4(const float* p) { return *reinterpret_cast<const float4*>(p); }
__device__ __forceinline__ void store4(float* p, vec4 v) { *reinterpret_cast<float4*>(p) = v; }
#else
struct alignas(16) vec4 {
  float x, y, z, w;
};
// The GPU's 16-byte accesses fault unless aligned: the emulation insists on it too.
inline vec4 load4(const float* p) {
  assert(((uintptr_t)p & 15) == 0);
  vec4 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store4(float* p, vec4 v) {
  assert(((uintptr_t)p & 15) == 0);
  std::memcpy(p, &v, sizeof v);
}
#endif

constexpr int kQ = 64, kK = 64, kThreads = 256;
constexpr int kPad = 4;  // keeps rows 16-byte aligned and shifts banks

// Dynamic shared memory of a block: Q [D][kQ + kPad], K [D][kK + kPad]
// then V [kK][D + kPad] in the same space, probabilities [kK][kQ + kPad].
constexpr size_t smem_floats(int D) {
  const size_t q = (size_t)D * (kQ + kPad), k = (size_t)D * (kK + kPad), v = (size_t)kK * (D + kPad);
  return q + (k > v ? k : v) + (size_t)kK * (kQ + kPad);
}
// Static shared memory beside it: each key's cache slot and K and V scales.
struct TileKeys {
  int64_t slot[kK];
  float kscale[kK], vscale[kK];
};

BRISK_HD int imin(int a, int b) { return a < b ? a : b; }

// One block (sequence s, head h, query tile qt) of thread `b.tid()`.
// Block: tid(), sync() (a block barrier), shfl_xor(v, o) (within a warp).
// Kv: value(is_v, slot, kv_head, d) (the code as float) and
// scale(is_v, slot, kv_head) (1 for unscaled caches).
template <int J, class Block, class Kv>
BRISK_HD void prefill_tile_block(Block& b, const Kv& kvr, float* out, const float* q,
                                 const DevicePagedArgs& a, int s, int h, int qt, float* smem,
                                 TileKeys& keys) {
  constexpr int D = J * 64, QS = kQ + kPad, KS = kK + kPad, VS = D + kPad, PS = kQ + kPad;
  constexpr int KVN = D * KS > kK * VS ? D * KS : kK * VS;
  const int row0 = a.query_start[s];
  const int q_len = a.query_start[s + 1] - row0;
  const int j0 = qt * kQ;
  if (q_len < 2 || j0 >= q_len) return;  // decode rows: the decode kernel
  float* qs = smem;                      // [D][QS]: q times the scale, transposed
  float* kv = qs + D * QS;               // K as [D][KS], then V as [kK][VS]
  float* ps = kv + KVN;                  // [kK][PS]: probabilities, key-major
  const int tid = b.tid();
  const int seq_len = a.seq_lens[s];
  const int kvh = h / (a.n_heads / a.n_kv_heads);
  const int nq = imin(kQ, q_len - j0);
  const int pos0 = seq_len - q_len + j0;
  const int kv_end = imin(seq_len, pos0 + nq);  // causal: keys up to the tile's last position
  const int64_t q_width = (int64_t)a.n_heads * D;
  const int32_t* table = a.block_tables + (int64_t)s * a.max_blocks_per_seq;
  const int ty = tid / 16, tx = tid % 16;  // rows ty*4.., keys (and dimensions) tx*4..

  for (int i = tid; i < kQ * D; i += kThreads) {
    const int r = i / D, d = i - r * D;
    qs[d * QS + r] = r < nq ? q[(int64_t)(row0 + j0 + r) * q_width + (int64_t)h * D + d] * a.scale : 0.0f;
  }
  float m[4], l[4], acc[4][4 * J];
  BRISK_UNROLL
  for (int i = 0; i < 4; ++i) {
    m[i] = -INFINITY;
    l[i] = 0.0f;
    BRISK_UNROLL
    for (int e = 0; e < 4 * J; ++e) acc[i][e] = 0.0f;
  }

  for (int kb = 0; kb < kv_end; kb += kK) {
    b.sync();  // the previous tile's V and probabilities are consumed
    if (tid < kK) {
      const int t = kb + tid;
      const int64_t slot =
          t < kv_end ? (int64_t)table[t / a.block_size] * a.block_size + t % a.block_size : -1;
      keys.slot[tid] = slot;
      keys.kscale[tid] = slot >= 0 ? kvr.scale(false, slot, kvh) : 1.0f;
      keys.vscale[tid] = slot >= 0 ? kvr.scale(true, slot, kvh) : 1.0f;
    }
    b.sync();
    for (int i = tid; i < kK * D; i += kThreads) {
      const int c = i / D, d = i - c * D;
      const int64_t slot = keys.slot[c];
      kv[d * KS + c] = slot >= 0 ? kvr.value(false, slot, kvh, d) * keys.kscale[c] : 0.0f;
    }
    b.sync();
    float sc[4][4];
    BRISK_UNROLL
    for (int i = 0; i < 4; ++i) {
      BRISK_UNROLL
      for (int j = 0; j < 4; ++j) sc[i][j] = 0.0f;
    }
#ifdef __CUDACC__
#pragma unroll 8
#endif
    for (int d = 0; d < D; ++d) {
      const vec4 qv = load4(qs + d * QS + ty * 4);
      const vec4 k4 = load4(kv + d * KS + tx * 4);
      const float qa[4] = {qv.x, qv.y, qv.z, qv.w}, ka[4] = {k4.x, k4.y, k4.z, k4.w};
      BRISK_UNROLL
      for (int i = 0; i < 4; ++i) {
        BRISK_UNROLL
        for (int j = 0; j < 4; ++j) sc[i][j] = fmaf(qa[i], ka[j], sc[i][j]);
      }
    }
    float pr[4][4];
    BRISK_UNROLL
    for (int i = 0; i < 4; ++i) {
      const int my_pos = pos0 + ty * 4 + i;
      float mx = -INFINITY;
      BRISK_UNROLL
      for (int j = 0; j < 4; ++j) {
        const int t = kb + tx * 4 + j;
        if (!(t < kv_end && t <= my_pos)) sc[i][j] = -INFINITY;
        mx = fmaxf(mx, sc[i][j]);
      }
      BRISK_UNROLL
      for (int o = 1; o < 16; o <<= 1) mx = fmaxf(mx, b.shfl_xor(mx, o));
      const float m_new = fmaxf(m[i], mx);
      const float alpha = m_new == -INFINITY ? 1.0f : expf(m[i] - m_new);
      float sum = 0.0f;
      BRISK_UNROLL
      for (int j = 0; j < 4; ++j) {
        pr[i][j] = sc[i][j] == -INFINITY ? 0.0f : expf(sc[i][j] - m_new);
        sum += pr[i][j];
      }
      BRISK_UNROLL
      for (int o = 1; o < 16; o <<= 1) sum += b.shfl_xor(sum, o);
      l[i] = l[i] * alpha + sum;
      m[i] = m_new;
      BRISK_UNROLL
      for (int e = 0; e < 4 * J; ++e) acc[i][e] *= alpha;
    }
    BRISK_UNROLL
    for (int j = 0; j < 4; ++j)
      store4(ps + (tx * 4 + j) * PS + ty * 4, vec4{pr[0][j], pr[1][j], pr[2][j], pr[3][j]});
    b.sync();  // K consumed: its space takes V
    for (int i = tid; i < kK * D; i += kThreads) {
      const int c = i / D, d = i - c * D;
      const int64_t slot = keys.slot[c];
      kv[c * VS + d] = slot >= 0 ? kvr.value(true, slot, kvh, d) * keys.vscale[c] : 0.0f;
    }
    b.sync();
    const int kn = imin(kK, kv_end - kb);  // keys past the end have probability 0: skipped
    for (int c = 0; c < kn; ++c) {
      const vec4 pv = load4(ps + c * PS + ty * 4);
      const float pa[4] = {pv.x, pv.y, pv.z, pv.w};
      BRISK_UNROLL
      for (int jj = 0; jj < J; ++jj) {
        const vec4 v4 = load4(kv + c * VS + jj * 64 + tx * 4);
        const float va[4] = {v4.x, v4.y, v4.z, v4.w};
        BRISK_UNROLL
        for (int i = 0; i < 4; ++i) {
          BRISK_UNROLL
          for (int e = 0; e < 4; ++e) acc[i][jj * 4 + e] = fmaf(pa[i], va[e], acc[i][jj * 4 + e]);
        }
      }
    }
  }
  BRISK_UNROLL
  for (int i = 0; i < 4; ++i) {
    const int r = ty * 4 + i;
    if (r >= nq) continue;
    const float inv = l[i] != 0.0f ? 1.0f / l[i] : 0.0f;
    float* o = out + (int64_t)(row0 + j0 + r) * q_width + (int64_t)h * D;
    BRISK_UNROLL
    for (int jj = 0; jj < J; ++jj)
      store4(o + jj * 64 + tx * 4, vec4{acc[i][jj * 4] * inv, acc[i][jj * 4 + 1] * inv,
                                        acc[i][jj * 4 + 2] * inv, acc[i][jj * 4 + 3] * inv});
  }
}

}  // namespace brisk::cuda::tiles

#undef BRISK_HD
#undef BRISK_UNROLL
