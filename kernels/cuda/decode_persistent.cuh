// The work of one block of the one-launch decode kernel (cuda_kernels.h,
// "One-launch decode"), written once for the GPU (decode_persistent.cu)
// and for a CPU emulation (tests/kernels/test_cuda_decode_persistent_emulated.cpp
// runs this same code with a thread per CUDA thread and the blocks of a
// phase one after another, which is what the grid barrier between phases
// guarantees on the device).
//
// Phases of a layer, each a grid-stride loop over its pieces of work:
//   0: h = rmsnorm(x) * attn_norm; q, k, v = h Wq^T, h Wk^T, h Wv^T
//   1: RoPE on q and k; k, v into the cache; attention over the context
//   2: x += att Wo^T
//   3: h = rmsnorm(x) * ffn_norm; hbuf = silu(h Wgate^T) * (h Wup^T)
//   4: x += hbuf Wdown^T
// A projection's piece is a group of rows (8 / wpr rows, wpr warps a row);
// every block stages the whole input vector in shared memory. The norm is
// folded as in the fused GEMV: x * norm_w is staged and the dot products
// are scaled by the inverse RMS. Attention's piece is one partition of one
// query head's context; its block rotates its q, its KV head's new k, and
// scores the current position from those (the cache write of that
// position, by the first block of the KV head, may not have landed yet).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/cuda/cuda_kernels.h"

#ifdef __CUDACC__
#include "kernels/cuda/common.cuh"
#define BRISK_PD __device__ __forceinline__
#define BRISK_PD_UNROLL _Pragma("unroll")
#else
#include "kernels/dtype.h"
#define BRISK_PD inline
#define BRISK_PD_UNROLL
#endif

namespace brisk::cuda::persist {

constexpr int kThreads = 256, kWarps = kThreads / 32;
constexpr int kUnroll = 4;  // 16-byte loads in flight per lane (per row)
constexpr int kPhases = 5;
constexpr int kRedFloats =
    64;                       // reduction scratch: [0, 2 * kWarps) sums, [32, 64) block reductions, 63 a flag
constexpr int kVecElems = 8;  // F16 / BF16 weights per 16-byte vector
constexpr int kMaxHeadDim = 256;

// ---- Loads that differ between the GPU and the emulation ----
#ifdef __CUDACC__
using Vec16 = uint4;
// Weights are never written by the kernel: the read-only path.
__device__ __forceinline__ Vec16 ld_w(const Vec16* p) { return __ldg(p); }
// Activations are written by other blocks of the same launch: loads that
// skip the (incoherent) L1 and read L2, where the barrier made them visible.
__device__ __forceinline__ float ld_act(const float* p) { return __ldcg(p); }
__device__ __forceinline__ float4 ld_act4(const float* p) {
  return __ldcg(reinterpret_cast<const float4*>(p));
}
__device__ __forceinline__ void prefetch(const void* p) { detail::prefetch_l2(p); }
__device__ __forceinline__ float half_to_f32(uint16_t h) { return detail::f16_to_f32(h); }
__device__ __forceinline__ uint16_t f32_to_half(float f) { return detail::f32_to_f16_bits(f); }
__device__ __forceinline__ uint16_t f32_to_bfloat(float f) { return detail::f32_to_bf16_bits(f); }
__device__ __forceinline__ float exp_f(float x) { return expf(x); }
__device__ __forceinline__ float max_f(float a, float b) { return fmaxf(a, b); }
__device__ __forceinline__ float rsqrt_f(float x) { return rsqrtf(x); }
__device__ __forceinline__ float bits_f32(uint32_t u) { return __uint_as_float(u); }
__device__ __forceinline__ void half2_f32(uint32_t w, float& lo, float& hi) {
  const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&w));
  lo = f.x;
  hi = f.y;
}
// RoPE as every other kernel rotates (common.cuh): angles and products in double.
using Angle = double2;
__device__ __forceinline__ Angle rope_angle(int pos, int p, int rot_dim, float theta) {
  return detail::rope_angle(pos, p, rot_dim, theta);
}
__device__ __forceinline__ void rotate_pair(float& a, float& b, Angle cs) { detail::rope_rotate(a, b, cs); }
#else
struct Vec16 {
  uint32_t x, y, z, w;
};
inline Vec16 ld_w(const Vec16* p) {
  Vec16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline float ld_act(const float* p) { return *p; }
struct F4 {
  float x, y, z, w;
};
inline F4 ld_act4(const float* p) { return F4{p[0], p[1], p[2], p[3]}; }
inline void prefetch(const void*) {}
inline float half_to_f32(uint16_t h) { return fp16_to_fp32(h); }
inline uint16_t f32_to_half(float f) { return fp32_to_fp16(f); }
inline uint16_t f32_to_bfloat(float f) { return fp32_to_bf16(f); }
inline float exp_f(float x) { return std::exp(x); }
inline float max_f(float a, float b) { return std::fmax(a, b); }
inline float rsqrt_f(float x) { return 1.0f / std::sqrt(x); }
inline float bits_f32(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline void half2_f32(uint32_t w, float& lo, float& hi) {
  lo = fp16_to_fp32((uint16_t)(w & 0xffffu));
  hi = fp16_to_fp32((uint16_t)(w >> 16));
}
struct Angle {
  double x, y;  // cos, sin
};
inline Angle rope_angle(int pos, int p, int rot_dim, float theta) {
  const double freq = std::pow((double)theta, -2.0 * p / rot_dim), ang = pos * freq;
  return Angle{std::cos(ang), std::sin(ang)};
}
inline void rotate_pair(float& a, float& b, Angle cs) {
  const double x = a, y = b;
  a = (float)(x * cs.x - y * cs.y);
  b = (float)(x * cs.y + y * cs.x);
}
#endif

// The 8 weights of a 16-byte vector as F32.
template <DType WDT>
BRISK_PD void decode8(const Vec16& raw, float* out) {
  const uint32_t wv[4] = {raw.x, raw.y, raw.z, raw.w};
  BRISK_PD_UNROLL
  for (int i = 0; i < 4; ++i) {
    if constexpr (WDT == DType::F16) {
      half2_f32(wv[i], out[2 * i], out[2 * i + 1]);
    } else {  // BF16
      out[2 * i] = bits_f32(wv[i] << 16);
      out[2 * i + 1] = bits_f32(wv[i] & 0xffff0000u);
    }
  }
}

// Element `at` of an unscaled cache (F32, F16, BF16).
BRISK_PD float kv_get(const void* data, DType dt, int64_t at) {
  if (dt == DType::F32) return ld_act(static_cast<const float*>(data) + at);
  const uint16_t h = static_cast<const uint16_t*>(data)[at];
  return dt == DType::F16 ? half_to_f32(h) : bits_f32((uint32_t)h << 16);
}
// x as the cache stores it (what a later read of the cache gives).
BRISK_PD float kv_round(DType dt, float x) {
  if (dt == DType::F32) return x;
  return dt == DType::F16 ? half_to_f32(f32_to_half(x)) : bits_f32((uint32_t)f32_to_bfloat(x) << 16);
}
BRISK_PD void kv_put(void* data, DType dt, int64_t at, float x) {
  if (dt == DType::F32)
    static_cast<float*>(data)[at] = x;
  else
    static_cast<uint16_t*>(data)[at] = dt == DType::F16 ? f32_to_half(x) : f32_to_bfloat(x);
}

// ---- The grid barrier's arithmetic (decode_persistent.cu runs it on one word) ----
// Each of n blocks adds barrier_add(block, n) once per barrier: together
// 2^31, which flips the top bit and leaves the rest of the word as it was.
// A block may leave once barrier_open(what its add returned, the word now).
BRISK_PD uint32_t barrier_add(int block, uint32_t nblocks) {
  return block == 0 ? 0x80000000u - (nblocks - 1) : 1u;
}
BRISK_PD bool barrier_open(uint32_t old, uint32_t now) { return ((old ^ now) & 0x80000000u) != 0; }

// ---- Block reductions ----
// Block: tid(), sync(), shfl_xor(v, o); fence() (this thread's writes
// visible device-wide before what follows); count_in(counter) (thread 0:
// an atomic increment returning the old value).
template <class B>
BRISK_PD float warp_sum(const B& b, float v) {
  for (int o = 16; o > 0; o >>= 1) v += b.shfl_xor(v, o);
  return v;
}
template <class B>
BRISK_PD float warp_max(const B& b, float v) {
  for (int o = 16; o > 0; o >>= 1) v = max_f(v, b.shfl_xor(v, o));
  return v;
}
// Every thread gets the block's sum (kMax: maximum); uses red[32, 64).
template <bool kMax, class B>
BRISK_PD float block_reduce(const B& b, float v, float* red) {
  const int lane = b.tid() & 31, warp = b.tid() >> 5;
  v = kMax ? warp_max(b, v) : warp_sum(b, v);
  b.sync();  // red may still be read by a previous reduction
  if (lane == 0) red[32 + warp] = v;
  b.sync();
  v = lane < kWarps ? red[32 + lane] : (kMax ? -INFINITY : 0.0f);
  v = kMax ? warp_max(b, v) : warp_sum(b, v);
  b.sync();  // every warp has read red before anyone writes it again
  return v;
}

// ---- Projections ----

// Row r (pair r: which = 0 gate, 1 up) of phase p's weights.
BRISK_PD const Vec16* weight_row(const PersistentDecodeArgs& a, const PersistentLayer& l, int phase, int r,
                                 int which) {
  const int esize = 2;
  const int nq = a.n_heads * a.head_dim, nkv = a.n_kv_heads * a.head_dim;
  const uint8_t* w = nullptr;
  int64_t row = r, K = a.dim;
  switch (phase) {
    case 0:
      if (r < nq) {
        w = static_cast<const uint8_t*>(l.wq);
      } else if (r < nq + nkv) {
        w = static_cast<const uint8_t*>(l.wk);
        row -= nq;
      } else {
        w = static_cast<const uint8_t*>(l.wv);
        row -= nq + nkv;
      }
      break;
    case 2:
      w = static_cast<const uint8_t*>(l.wo);
      K = (int64_t)a.n_heads * a.head_dim;
      break;
    case 3:
      w = static_cast<const uint8_t*>(which ? l.w_up : l.w_gate);
      break;
    default:
      w = static_cast<const uint8_t*>(l.w_down);
      K = a.hidden;
      break;
  }
  return reinterpret_cast<const Vec16*>(w + row * K * esize);
}
// Rows (pairs) of projection phase p, and the length of its input.
BRISK_PD int phase_rows(const PersistentDecodeArgs& a, int phase) {
  switch (phase) {
    case 0:
      return (a.n_heads + 2 * a.n_kv_heads) * a.head_dim;
    case 3:
      return a.hidden;
    default:
      return a.dim;
  }
}
BRISK_PD int phase_k(const PersistentDecodeArgs& a, int phase) {
  return phase == 2 ? a.n_heads * a.head_dim : phase == 4 ? a.hidden : a.dim;
}
BRISK_PD int phase_wpr(const PersistentDecodeArgs& a, int phase) {
  return a.plan.wpr[phase == 0 ? 0 : phase - 1];
}

// Prefetches into L2 the weight rows of group g of projection phase p.
template <class B>
BRISK_PD void prefetch_group(const B& b, const PersistentDecodeArgs& a, const PersistentLayer& l, int phase,
                             int g) {
  const int rows = phase_rows(a, phase), rpb = kWarps / phase_wpr(a, phase);
  const int r0 = g * rpb;
  if (r0 >= rows) return;
  const int n = rows - r0 < rpb ? rows - r0 : rpb;
  const int ways = phase == 3 ? 2 : 1;
  const int lines = (phase_k(a, phase) * 2 + 127) / 128;  // 128-byte lines of a row
  for (int i = b.tid(); i < n * ways * lines; i += kThreads) {
    const int line = i % lines, rw = i / lines;
    prefetch(reinterpret_cast<const uint8_t*>(weight_row(a, l, phase, r0 + rw / ways, rw % ways)) +
             line * 128);
  }
}

// Stages src [K] (times norm_w where given) in xs; returns the inverse RMS
// of src with a norm, 1 without.
template <class B>
BRISK_PD float stage(const B& b, float* xs, const float* src, const float* norm_w, int K, float eps,
                     float* red) {
  float ss = 0.0f;
  for (int i = b.tid(); i < K / 4; i += kThreads) {
    const auto v = ld_act4(src + 4 * i);
    float g[4] = {1.0f, 1.0f, 1.0f, 1.0f};
    if (norm_w) {
      BRISK_PD_UNROLL
      for (int e = 0; e < 4; ++e) g[e] = norm_w[4 * i + e];
      ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
    }
    xs[4 * i] = v.x * g[0];
    xs[4 * i + 1] = v.y * g[1];
    xs[4 * i + 2] = v.z * g[2];
    xs[4 * i + 3] = v.w * g[3];
  }
  if (!norm_w) {
    b.sync();
    return 1.0f;
  }
  ss = block_reduce<false>(b, ss, red);  // its barriers also publish xs
  return rsqrt_f(ss / K + eps);
}

// The rows of projection phase p: a group of 8 / wpr rows at a time, wpr
// warps a row (interleaved 16-byte vectors), the next group's rows
// prefetched as this one starts. out(r, dot) or, for pairs, out(r, gate, up).
template <DType WDT, bool kPair, class B, class Out>
BRISK_PD void project(const B& b, const PersistentDecodeArgs& a, const PersistentLayer& l, int phase,
                      const float* xs, int block, int nblocks, float* red, Out out) {
  const int rows = phase_rows(a, phase), wpr = phase_wpr(a, phase), rpb = kWarps / wpr;
  const int nvec = phase_k(a, phase) / kVecElems;
  const int groups = (rows + rpb - 1) / rpb;
  const int warp = b.tid() >> 5, lane = b.tid() & 31, part = warp % wpr;
  for (int g = block; g < groups; g += nblocks) {
    if (g + nblocks < groups) prefetch_group(b, a, l, phase, g + nblocks);
    const int r = g * rpb + warp / wpr;
    float acc0 = 0.0f, acc1 = 0.0f;
    if (r < rows) {
      const Vec16* w0 = weight_row(a, l, phase, r, 0);
      const Vec16* w1 = kPair ? weight_row(a, l, phase, r, 1) : w0;
      for (int v0 = part * 32 + lane; v0 < nvec; v0 += 32 * wpr * kUnroll) {
        Vec16 c0[kUnroll], c1[kUnroll];
        BRISK_PD_UNROLL
        for (int u = 0; u < kUnroll; ++u) {
          const int v = v0 + u * 32 * wpr;
          if (v < nvec) {
            c0[u] = ld_w(w0 + v);
            if (kPair) c1[u] = ld_w(w1 + v);
          }
        }
        BRISK_PD_UNROLL
        for (int u = 0; u < kUnroll; ++u) {
          const int v = v0 + u * 32 * wpr;
          if (v >= nvec) break;
          const float* xv = xs + v * kVecElems;
          float f[kVecElems];
          decode8<WDT>(c0[u], f);
          BRISK_PD_UNROLL
          for (int e = 0; e < kVecElems; ++e) acc0 += f[e] * xv[e];
          if (kPair) {
            decode8<WDT>(c1[u], f);
            BRISK_PD_UNROLL
            for (int e = 0; e < kVecElems; ++e) acc1 += f[e] * xv[e];
          }
        }
      }
    }
    acc0 = warp_sum(b, acc0);
    if (kPair) acc1 = warp_sum(b, acc1);
    if (wpr == 1) {
      if (lane == 0 && r < rows) out(r, acc0, acc1);
      continue;
    }
    if (lane == 0) {
      red[warp] = acc0;
      red[kWarps + warp] = acc1;
    }
    b.sync();
    if (part == 0 && lane == 0 && r < rows) {
      float s0 = 0.0f, s1 = 0.0f;
      for (int i = 0; i < wpr; ++i) {
        s0 += red[warp + i];
        s1 += red[kWarps + warp + i];
      }
      out(r, s0, s1);
    }
    b.sync();  // red is free for the next group
  }
}

// ---- Attention ----

// The RoPE angles of the step's position, pair by pair: computed once a
// launch by every block (prologue) into shared memory no phase reuses.
// The prologue also prefetches the block's first q/k/v rows.
BRISK_PD const Angle* rope_table(const PersistentDecodeArgs& a, float* sm) {
  return reinterpret_cast<const Angle*>(sm + a.plan.rope_at);
}
template <class B>
BRISK_PD void prologue(const B& b, const PersistentDecodeArgs& a, float* sm, int block) {
  Angle* cs = reinterpret_cast<Angle*>(sm + a.plan.rope_at);
  const int pos = a.pos[0];
  for (int pr = b.tid(); 2 * pr + 1 < a.rot_dim; pr += kThreads)
    cs[pr] = rope_angle(pos, pr, a.rot_dim, a.theta);
  prefetch_group(b, a, a.layers[0], 0, block);  // the first layer's first q/k/v rows
  b.sync();
}

// Partitions of a context of `len` tokens: enough to fill the grid with the
// heads' pieces, each at least min_chunk keys and at most kPersistentMaxChunk.
BRISK_PD void attention_split(const PersistentPlan& p, int len, int& splits, int& chunk) {
  int s = (len + p.min_chunk - 1) / p.min_chunk;
  if (s > p.max_splits) s = p.max_splits;
  const int need = (len + kPersistentMaxChunk - 1) / kPersistentMaxChunk;
  if (s < need) s = need;
  if (s < 1) s = 1;
  chunk = (len + s - 1) / s;
  splits = (len + chunk - 1) / chunk;  // no empty partition
}

// The values of cache KT per 16-byte vector.
template <DType KT>
constexpr int kKvVec = KT == DType::F32 ? 4 : 8;
// The vector at element `at` (a multiple of kKvVec) of cache KT as F32.
// The cached rows were written by earlier launches: the read-only path.
template <DType KT>
BRISK_PD void kv_vec(const void* data, int64_t at, float* out) {
  const Vec16 raw = ld_w(
      reinterpret_cast<const Vec16*>(static_cast<const uint8_t*>(data) + at * (KT == DType::F32 ? 4 : 2)));
  if constexpr (KT == DType::F32) {
    out[0] = bits_f32(raw.x);
    out[1] = bits_f32(raw.y);
    out[2] = bits_f32(raw.z);
    out[3] = bits_f32(raw.w);
  } else {
    decode8<KT>(raw, out);  // F16 and BF16 decode as the weights do
  }
}

// Decodes partition s of head h: writes att (one partition) or its partial
// (m, l, o[head_dim]); the last partition of the head to finish merges.
// Where a head's row is whole 16-byte vectors, keys and values are read a
// vector at a time: a key per thread (its vectors all in flight), and for
// the values head_dim / kKvVec threads a key, so a block covers many keys
// at once; else an element at a time.
template <DType KT, class B>
BRISK_PD void attention_piece(const B& b, const PersistentDecodeArgs& a, const PersistentLayer& l, int h,
                              int s, int splits, int chunk, int len, float* sm, float* red) {
  constexpr int VW = kKvVec<KT>;
  const int D = a.head_dim, group = a.n_heads / a.n_kv_heads, kvh = h / group, tid = b.tid();
  const bool vec = D % VW == 0;
  const int64_t slot = a.slot[0];
  float* qs = sm;
  float* kn = qs + kMaxHeadDim;
  float* vn = kn + kMaxHeadDim;
  float* p = vn + kMaxHeadDim;
  float* accs = p + kPersistentMaxChunk;  // [groups][D], at most kThreads * 8 floats
  int32_t* key_slot = reinterpret_cast<int32_t*>(accs + kThreads * 8);  // the partition's keys' cache slots
  for (int i = tid; i < D; i += kThreads) {
    qs[i] = ld_act(a.q + h * D + i);
    kn[i] = ld_act(a.k + kvh * D + i);
    vn[i] = ld_act(a.v + kvh * D + i);
  }
  b.sync();
  const Angle* cs = rope_table(a, sm);
  for (int pr = tid; 2 * pr + 1 < a.rot_dim; pr += kThreads) {
    rotate_pair(qs[2 * pr], qs[2 * pr + 1], cs[pr]);
    rotate_pair(kn[2 * pr], kn[2 * pr + 1], cs[pr]);
  }
  b.sync();
  // One block per KV head writes the new position; every block scores it
  // from its own copy, rounded as the cache holds it.
  const bool writer = h % group == 0 && s == 0 && slot >= 0;
  for (int i = tid; i < D; i += kThreads) {
    if (writer) {
      const int64_t at = (slot * a.n_kv_heads + kvh) * D + i;
      kv_put(l.k_cache, KT, at, kn[i]);
      kv_put(l.v_cache, KT, at, vn[i]);
    }
    kn[i] = kv_round(KT, kn[i]);
    vn[i] = kv_round(KT, vn[i]);
  }
  b.sync();
  const int t0 = s * chunk, n = len - t0 < chunk ? len - t0 : chunk;
  // The slots of the partition's keys, resolved once for the scores and the values.
  for (int j = tid; j < n; j += kThreads) {
    const int t = t0 + j;
    key_slot[j] = a.block_table[t / a.block_size] * a.block_size + t % a.block_size;
  }
  b.sync();
  auto row_of = [&](int j) -> int64_t {  // element offset of key t0 + j's row for this KV head
    return ((int64_t)key_slot[j] * a.n_kv_heads + kvh) * D;
  };
  // Scores, a key per thread.
  float mx = -INFINITY;
  for (int j = tid; j < n; j += kThreads) {
    const int t = t0 + j;
    float dot = 0.0f;
    if (t == len - 1) {
      for (int d = 0; d < D; ++d) dot += qs[d] * kn[d];
    } else if (vec) {
      const int64_t at = row_of(j);
#ifdef __CUDACC__
#pragma unroll 8
#endif
      for (int d0 = 0; d0 < D; d0 += VW) {
        float kv[VW];
        kv_vec<KT>(l.k_cache, at + d0, kv);
        BRISK_PD_UNROLL
        for (int e = 0; e < VW; ++e) dot += qs[d0 + e] * kv[e];
      }
    } else {
      const int64_t at = row_of(j);
      for (int d = 0; d < D; ++d) dot += qs[d] * kv_get(l.k_cache, KT, at + d);
    }
    p[j] = dot * a.scale;
    mx = max_f(mx, p[j]);
  }
  const float m = block_reduce<true>(b, mx, red);
  float sum = 0.0f;
  for (int j = tid; j < n; j += kThreads) {
    p[j] = exp_f(p[j] - m);
    sum += p[j];
  }
  const float lsum = block_reduce<false>(b, sum, red);  // its barriers publish p
  // Values: group g of threads sums keys g, g + ng, ... over the head's dimensions.
  int ng = 0;
  if (vec) {
    const int tpk = D / VW;  // threads a key, a vector each
    ng = kThreads / tpk;
    const int g = tid / tpk, c = tid % tpk;
    if (g < ng) {
      float acc[VW];
      BRISK_PD_UNROLL
      for (int e = 0; e < VW; ++e) acc[e] = 0.0f;
      // Four keys' loads in flight before their products.
      for (int j0 = g; j0 < n; j0 += 4 * ng) {
        float val[4][VW];
        BRISK_PD_UNROLL
        for (int u = 0; u < 4; ++u) {
          const int j = j0 + u * ng;
          if (j >= n) break;
          if (t0 + j == len - 1) {
            BRISK_PD_UNROLL
            for (int e = 0; e < VW; ++e) val[u][e] = vn[c * VW + e];
          } else {
            kv_vec<KT>(l.v_cache, row_of(j) + c * VW, val[u]);
          }
        }
        BRISK_PD_UNROLL
        for (int u = 0; u < 4; ++u) {
          const int j = j0 + u * ng;
          if (j >= n) break;
          BRISK_PD_UNROLL
          for (int e = 0; e < VW; ++e) acc[e] += p[j] * val[u][e];
        }
      }
      BRISK_PD_UNROLL
      for (int e = 0; e < VW; ++e) accs[g * D + c * VW + e] = acc[e];
    }
  } else {
    ng = kThreads / D > 0 ? kThreads / D : 1;
    for (int idx = tid; idx < ng * D; idx += kThreads) {
      const int d = idx % D, g = idx / D;
      float acc = 0.0f;
      for (int j = g; j < n; j += ng) {
        const int t = t0 + j;
        acc += p[j] * (t == len - 1 ? vn[d] : kv_get(l.v_cache, KT, row_of(j) + d));
      }
      accs[idx] = acc;
    }
  }
  b.sync();
  const int stride = D + 2;
  float* part = a.partials + ((int64_t)h * a.plan.max_splits + s) * stride;
  for (int d = tid; d < D; d += kThreads) {
    float o = 0.0f;
    for (int g = 0; g < ng; ++g) o += accs[g * D + d];
    if (splits == 1)
      a.att[h * D + d] = o / lsum;
    else
      part[2 + d] = o;
  }
  if (splits == 1) {
    b.sync();  // smem is reused by the next piece
    return;
  }
  if (tid == 0) {
    part[0] = m;
    part[1] = lsum;
  }
  // The last partition of the head to count itself in merges them all.
  b.fence();  // each thread's partials, before the count
  b.sync();
  if (tid == 0) {
    red[63] = b.count_in(a.counters + h) == (uint32_t)(splits - 1) ? 1.0f : 0.0f;
    b.fence();  // the others' partials, after it (the barrier passes this on to the block)
  }
  b.sync();
  if (red[63] != 0.0f) {
    const float* base = a.partials + (int64_t)h * a.plan.max_splits * stride;
    float M = -INFINITY;
    for (int i = 0; i < splits; ++i) M = max_f(M, ld_act(base + i * stride));
    for (int d = tid; d < D; d += kThreads) {
      float num = 0.0f, den = 0.0f;
      for (int i = 0; i < splits; ++i) {
        const float w = exp_f(ld_act(base + i * stride) - M);
        den += w * ld_act(base + i * stride + 1);
        num += w * ld_act(base + i * stride + 2 + d);
      }
      a.att[h * D + d] = num / den;
    }
    if (tid == 0) a.counters[h] = 0;  // for the next layer, past a barrier
  }
  b.sync();
}

// ---- A phase ----

// Which projection's first rows a block prefetches once it is done with
// phase p of layer l: the first one whose rows are not on their way yet.
// After q/k/v, wo (read across attention); after attention, gate/up; after
// wo, none (gate/up's are, and down's would be pushed out of L2 by
// gate/up's 46 MB on the 1.1B shape); after gate/up, down; after down, the
// next layer's q/k/v. False: none.
BRISK_PD bool next_projection(int l, int p, int& nl, int& np) {
  nl = p == 4 ? l + 1 : l;
  np = p == 0 ? 2 : p == 1 ? 3 : p == 3 ? 4 : 0;
  return p != 2;
}

template <DType WDT, class B>
BRISK_PD void run_phase(const B& b, const PersistentDecodeArgs& a, int layer, int phase, int block,
                        int nblocks, float* sm) {
  const PersistentLayer l = a.layers[layer];  // in registers, not reloaded from the table at every use
  float* red = sm + a.plan.red_at;
  switch (phase) {
    case 0: {
      const float inv = stage(b, sm, a.x, l.attn_norm, a.dim, a.eps, red);
      const int nq = a.n_heads * a.head_dim, nkv = a.n_kv_heads * a.head_dim;
      project<WDT, false>(b, a, l, 0, sm, block, nblocks, red, [&](int r, float s, float) {
        float* dst = r < nq ? a.q + r : r < nq + nkv ? a.k + (r - nq) : a.v + (r - nq - nkv);
        *dst = s * inv;
      });
      break;
    }
    case 1: {
      const int len = a.seq_len[0];
      int splits = 1, chunk = 1;
      attention_split(a.plan, len, splits, chunk);
      for (int item = block; item < a.n_heads * splits; item += nblocks) {
        const int h = item / splits, sp = item % splits;
        if (a.kv_dt == DType::F32)
          attention_piece<DType::F32>(b, a, l, h, sp, splits, chunk, len, sm, red);
        else if (a.kv_dt == DType::BF16)
          attention_piece<DType::BF16>(b, a, l, h, sp, splits, chunk, len, sm, red);
        else
          attention_piece<DType::F16>(b, a, l, h, sp, splits, chunk, len, sm, red);
      }
      break;
    }
    case 2:
      stage(b, sm, a.att, nullptr, a.n_heads * a.head_dim, a.eps, red);
      project<WDT, false>(b, a, l, 2, sm, block, nblocks, red,
                          [&](int r, float s, float) { a.x[r] = ld_act(a.x + r) + s; });
      break;
    case 3: {
      const float inv = stage(b, sm, a.x, l.ffn_norm, a.dim, a.eps, red);
      project<WDT, true>(b, a, l, 3, sm, block, nblocks, red, [&](int r, float g, float u) {
        g *= inv;
        a.h[r] = g / (1.0f + exp_f(-g)) * (u * inv);
      });
      break;
    }
    default:
      stage(b, sm, a.h, nullptr, a.hidden, a.eps, red);
      project<WDT, false>(b, a, l, 4, sm, block, nblocks, red,
                          [&](int r, float s, float) { a.x[r] = ld_act(a.x + r) + s; });
      break;
  }
  // This block's first rows of a projection to come, into L2 before the barrier.
  int nl = 0, np = 0;
  if (next_projection(layer, phase, nl, np) && nl < a.n_layers) prefetch_group(b, a, a.layers[nl], np, block);
}

}  // namespace brisk::cuda::persist
