// Paged attention (causal, variable length, grouped-query) over the KV cache in
// any of its dtypes, as ref::paged_attention.
//
// Decode rows (sequences with one query row) run FlashDecoding-style, split
// over context partitions, in one of three kernels (plan_decode_attention):
// the tiled one, a block per (sequence, KV head, partition) scoring all the
// query heads of its KV head against each key with lanes split over the head
// dimension (any shape), or the lane kernel, a lane per key, with a block per
// query head (few sequences) or per group of up to 8 heads (many). Each keeps
// an online softmax and either writes the output (the partition holds the
// whole context) or its partial (max, denominator, unnormalised sum) to the
// workspace, merged by the reduce kernel or, with in-kernel merging (lane
// kernels), by whichever of the row's blocks finishes last. Partitions past a sequence's end (graphs
// replay with the captured max_seq_len) write an empty partial, or nothing
// when the first partition holds the whole context.
//
// Prefill rows (sequences with more than one query row) run a tiled kernel: a
// block per (sequence, 32 query rows, head) walks 32-key tiles up to its last
// causal position with an online softmax, Q and the K/V tile in shared memory;
// for head_dim 64 and 128, its register-tiled form (64 x 64 tiles, 4 x 4 per
// thread) by default.
#include <algorithm>
#include <atomic>
#include <climits>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/prefill_tiles.cuh"

namespace brisk::cuda {
using namespace detail;

namespace {

struct AttnParams {
  float* out;
  const float* q;
  DeviceKvCache k, v;
  DevicePagedArgs a;
  float* ws;       // split partials, [rows, n_heads, splits, head_dim + 2]
  int splits;      // context partitions of a decode row
  int part;        // tokens per partition
  int head_tiles;  // blocks per KV head (groups larger than the kernel's MAXG)
  // In-kernel split merge: a count per (sequence, grid.y) of the partitions
  // done, zero between calls (merge_if_last); nullptr: the reduce kernel merges.
  uint32_t* counters;
};

template <DType KT>
constexpr int kv_esize() {
  return KT == DType::F32 ? 4 : (KT == DType::F16 || KT == DType::BF16) ? 2 : 1;
}
constexpr bool kv_scaled(DType t) { return t == DType::I8 || t == DType::F8_E4M3; }

template <DType KT>
__device__ __forceinline__ float kv_elem(const void* data, int64_t at) {
  if constexpr (KT == DType::F32) return static_cast<const float*>(data)[at];
  if constexpr (KT == DType::F16) return f16_to_f32(static_cast<const uint16_t*>(data)[at]);
  if constexpr (KT == DType::BF16) return bf16_to_f32(static_cast<const uint16_t*>(data)[at]);
  if constexpr (KT == DType::I8) return (float)static_cast<const int8_t*>(data)[at];
  if constexpr (KT == DType::F8_E4M3) return f8e4m3_to_f32(static_cast<const uint8_t*>(data)[at]);
  return 0.0f;
}

// E consecutive cache elements from `at` (codes for the scaled types): one 16-byte load (8 bytes for the
// one-byte types, which keeps the per-lane register tile the same size), or one element when E == 1.
template <DType KT, int E>
__device__ __forceinline__ void load_kv(const void* data, int64_t at, float (&out)[E]) {
  if constexpr (E == 1) {
    out[0] = kv_elem<KT>(data, at);
  } else if constexpr (KT == DType::F32) {
    const float4 v = *reinterpret_cast<const float4*>(static_cast<const float*>(data) + at);
    out[0] = v.x, out[1] = v.y, out[2] = v.z, out[3] = v.w;
  } else if constexpr (KT == DType::F16 || KT == DType::BF16) {
    const uint4 raw = *reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(data) + at);
    const uint32_t w[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      if constexpr (KT == DType::F16) {
        out[2 * i] = f16_to_f32((uint16_t)(w[i] & 0xffff));
        out[2 * i + 1] = f16_to_f32((uint16_t)(w[i] >> 16));
      } else {
        out[2 * i] = __uint_as_float(w[i] << 16);
        out[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
      }
    }
  } else {
    const uint2 raw = *reinterpret_cast<const uint2*>(static_cast<const uint8_t*>(data) + at);
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const uint32_t b = ((i < 4 ? raw.x : raw.y) >> (8 * (i % 4))) & 0xffu;
      if constexpr (KT == DType::I8)
        out[i] = (float)(int8_t)b;
      else
        out[i] = f8e4m3_to_f32(b);
    }
  }
}

__device__ __forceinline__ int64_t slot_of(const int32_t* table, int block_size, int t) {
  return (int64_t)table[t / block_size] * block_size + t % block_size;
}

// Whether the first partition holds the whole context: its block then
// writes the output itself, the other partitions are empty and write
// nothing, and the reduce kernel passes the row by. A graph captured for
// long contexts replays short ones this way without a reduce.
__device__ __forceinline__ bool whole_context(const AttnParams& p, int seq_len) { return seq_len <= p.part; }

__device__ __forceinline__ float* partial(const AttnParams& p, int row, int h, int split) {
  return p.ws + (((int64_t)row * p.a.n_heads + h) * p.splits + split) * (p.a.head_dim + 2);
}

// What merging a decode row's partitions reads and writes, by value: a
// function that is not inlined takes it without a copy of the kernel's
// parameters.
struct SplitMerge {
  float* out;
  const float* ws;
  uint32_t* counters;
  int n_heads, head_dim, splits;
};
__device__ __forceinline__ SplitMerge split_merge(const AttnParams& p) {
  return {p.out, p.ws, p.counters, p.a.n_heads, p.a.head_dim, p.splits};
}
// partial() of the merge's arguments.
__device__ __forceinline__ const float* merge_partial(const SplitMerge& m, int row, int h, int split) {
  return m.ws + (((int64_t)row * m.n_heads + h) * m.splits + split) * (m.head_dim + 2);
}

// The merge of head h's partitions of a decode row: out = sum_i exp(m_i -
// M) acc_i / sum_i exp(m_i - M) l_i. First a warp loads every partition's
// (max, denominator), a lane each, and computes its weight exp(m_i - M)
// once; the output elements then only read the partial sums, whose loads
// are independent. Loads go through L2 (ld.cg): with the merge in the
// attention kernel the partials are written by other blocks of it. The
// roundings are explicit (no contraction decided by the compiler), so the
// reduce kernel and the in-kernel merge give the same bits.
__device__ __forceinline__ void merge_weights(const SplitMerge& mg, int row, int h, float* w, float* L) {
  const int i = threadIdx.x & 31;
  float m = -INFINITY, l = 0.0f;
  if (i < mg.splits) {
    const float* e = merge_partial(mg, row, h, i);
    l = __ldcg(e + 1);
    m = l != 0.0f ? __ldcg(e) : -INFINITY;
  }
  const float M = warp_max(m);
  const float wi = l != 0.0f ? expf(m - M) : 0.0f;  // empty partials weigh nothing and are never read
  const float sum = warp_sum(__fmul_rn(l, wi));
  w[i] = wi;  // kMaxSplits == 32: a lane each
  if (i == 0) *L = sum;
}
__device__ __forceinline__ float merge_value(const SplitMerge& mg, int row, int h, int d, const float* w,
                                             float L) {
  float v = 0.0f;
#pragma unroll 4
  for (int i = 0; i < mg.splits; ++i)
    if (w[i] > 0.0f) v = __fmaf_rn(__ldcg(merge_partial(mg, row, h, i) + 2 + d), w[i], v);
  return L != 0.0f ? __fdiv_rn(v, L) : 0.0f;
}
static_assert(kMaxSplits == 32, "merge_weights gives each partition a lane of one warp");

// In-kernel split merge (p.counters; the lane kernels' MERGE
// instantiations): a decode block that wrote its partials for heads
// h0..h0+nh-1 counts itself in, and the block that completes its row's
// count merges those heads, the reduce kernel's work without its launch.
// That block resets the count to zero for the next call. Called by every
// thread of the block. Not inlined, as a kernel has two call sites (its
// empty and its full partitions). Kernels without MERGE hold none of this
// code: compiled in, it cost the large instantiations registers and
// spills whether it ran or not.
constexpr int kMergeHeads = 8;  // most heads a decode block holds (its MAXG or HPB)
__device__ __noinline__ void merge_if_last(SplitMerge p, int s, int row, int h0, int nh) {
  __shared__ float w[kMergeHeads][kMaxSplits];
  __shared__ float L[kMergeHeads];
  __shared__ bool last;
  __threadfence();  // this thread's partials reach L2 before the block counts in
  __syncthreads();
  if (threadIdx.x == 0) {
    __threadfence();
    uint32_t* count = p.counters + (int64_t)s * gridDim.y + blockIdx.y;
    last = atomicAdd(count, 1u) == (uint32_t)p.splits - 1;
    if (last) atomicExch(count, 0u);
    __threadfence();  // the other partitions' partials are read after their counts
  }
  __syncthreads();
  if (!last) return;
  const int warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  for (int g = warp; g < nh; g += warps) merge_weights(p, row, h0 + g, w[g], &L[g]);
  __syncthreads();
  const int D = p.head_dim;
  float* o = p.out + (int64_t)row * p.n_heads * D + (int64_t)h0 * D;
  for (int i = threadIdx.x; i < nh * D; i += blockDim.x) {
    const int g = i / D;
    o[i] = merge_value(p, row, h0 + g, i - g * D, w[g], L[g]);
  }
}

// A decode block whose partition holds no tokens (heads h0..h0+nh): an
// empty partial (max -inf, denominator 0) where the row is split, zeros
// from the first partition of an empty context, else nothing.
__device__ __forceinline__ void empty_partition(const AttnParams& p, int row, int h0, int nh, int split,
                                                bool whole) {
  const int D = p.a.head_dim;
  if (!whole) {
    if (threadIdx.x < nh) {
      float* e = partial(p, row, h0 + threadIdx.x, split);
      e[0] = -INFINITY;
      e[1] = 0.0f;
    }
  } else if (split == 0) {  // an empty context (seq_len 0): nothing to attend to
    for (int i = threadIdx.x; i < nh * D; i += blockDim.x)
      p.out[(int64_t)row * p.a.n_heads * D + (int64_t)h0 * D + i] = 0.0f;
  }
}

constexpr int kDecThreads = 128;
constexpr int kDecWarps = kDecThreads / 32;
constexpr int kTile = 256;  // tokens per online-softmax step
constexpr int kUnroll = 4;  // keys loaded per lane before the math (loads in flight)
constexpr int kMaxHeadDim = 256;

template <DType KT, int MAXG, bool VEC>
__global__ void __launch_bounds__(kDecThreads) decode_kernel(AttnParams p) {
  constexpr int E = !VEC ? 1 : KT == DType::F32 ? 4 : 8;
  constexpr int MAXCPL = !VEC ? kMaxHeadDim / 32 : KT == DType::F32 ? 2 : 1;
  constexpr bool kScaled = kv_scaled(KT);
  __shared__ float sc[MAXG][kTile];
  __shared__ float red[kDecWarps][MAXG][kMaxHeadDim];
  __shared__ float s_alpha[MAXG], s_m[MAXG], s_l[MAXG];

  const DevicePagedArgs& a = p.a;
  const int s = blockIdx.x;
  const int row = a.query_start[s];
  const bool decode_row = a.query_start[s + 1] - row == 1;  // prefill rows: the prefill kernel
  const int seq_len = a.seq_lens[s];
  const int D = a.head_dim, nkv = a.n_kv_heads;
  const int G = a.n_heads / nkv;
  const int kvh = blockIdx.y / p.head_tiles;
  const int g0 = (blockIdx.y % p.head_tiles) * MAXG;
  const int nh = min(MAXG, G - g0);
  const int h0 = kvh * G + g0;
  const int split = blockIdx.z;
  const int t0 = split * p.part;
  const int t1 = split == p.splits - 1 ? seq_len : min(seq_len, t0 + p.part);
  const bool whole = whole_context(p, seq_len);
  const int64_t q_width = (int64_t)a.n_heads * D;
  const int32_t* table = a.block_tables + (int64_t)s * a.max_blocks_per_seq;

  // Before the wait (the metadata is uploaded, not computed): the slots of
  // the first tile's tokens go to shared memory, so the K and V loads after
  // it do not wait on a block-table load, and their rows are prefetched
  // into L2 (q comes from the kernel before, so the loads themselves must
  // wait). The newest token's row is being written by that kernel; a
  // prefetch only moves lines into L2, the point of coherence, so it is
  // read correctly after the wait.
  __shared__ int64_t s_slot[kTile];
  auto fill_slots = [&](int tb, int tn) {
    for (int i = threadIdx.x; i < tn; i += kDecThreads) {
      const int64_t slot = slot_of(table, a.block_size, tb + i);
      s_slot[i] = slot;
      // Every 128-byte line the row touches (a row need not start on a line).
      const int64_t off = (slot * nkv + kvh) * D * kv_esize<KT>();
      const int64_t first = off & ~int64_t{127}, last = (off + D * kv_esize<KT>() - 1) & ~int64_t{127};
      for (int64_t l = first; l <= last; l += 128) {
        prefetch_l2(static_cast<const uint8_t*>(p.k.data) + l);
        prefetch_l2(static_cast<const uint8_t*>(p.v.data) + l);
      }
    }
  };
  if (decode_row && t0 < t1) fill_slots(t0, min(kTile, t1 - t0));
  grid_dependency_wait();
  allow_dependents();
  if (!decode_row) return;

  if (t0 >= t1) return empty_partition(p, row, h0, nh, split, whole);

  __syncthreads();      // s_slot of the first tile (the exits above are block-uniform)
  const int C = D / E;  // chunks of E elements per head row
  int TPT = 1;          // lanes per token: a power of two, so a token's lanes are an aligned shuffle group
  while (TPT < C && TPT < 32) TPT <<= 1;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int li = lane & (TPT - 1);
  const int TPI = kDecWarps * (32 / TPT);  // tokens per block iteration
  const int my = warp * (32 / TPT) + lane / TPT;

  float qr[MAXG][MAXCPL][E], acc[MAXG][MAXCPL][E];
#pragma unroll
  for (int g = 0; g < MAXG; ++g)
#pragma unroll
    for (int c = 0; c < MAXCPL; ++c)
#pragma unroll
      for (int e = 0; e < E; ++e) {
        const int chunk = li + TPT * c;
        qr[g][c][e] = g < nh && chunk < C ? p.q[row * q_width + (int64_t)(h0 + g) * D + chunk * E + e] : 0.0f;
        acc[g][c][e] = 0.0f;
      }
  if (threadIdx.x < MAXG) {
    s_m[threadIdx.x] = -INFINITY;
    s_l[threadIdx.x] = 0.0f;
  }

  for (int tb = t0; tb < t1; tb += kTile) {
    const int tn = min(kTile, t1 - tb);
    if (tb != t0) {  // the previous tile's readers are past the barrier that ends it
      fill_slots(tb, tn);
      __syncthreads();
    }
    // Scores of this tile, scaled, into sc (-inf past the end).
    for (int i0 = 0; i0 < tn; i0 += TPI * kUnroll) {  // tn is block-uniform: every lane loops alike
      float kv[kUnroll][MAXCPL][E];
      float ks[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int i = i0 + u * TPI + my;
        const bool valid = i < tn;
        const int64_t slot = valid ? s_slot[i] : 0;
        const int64_t base = (slot * nkv + kvh) * D;
        ks[u] = kScaled && valid ? p.k.scales[slot * nkv + kvh] : 1.0f;
#pragma unroll
        for (int c = 0; c < MAXCPL; ++c) {
          const int chunk = li + TPT * c;
          if (valid && chunk < C)
            load_kv<KT, E>(p.k.data, base + chunk * E, kv[u][c]);
          else
#pragma unroll
            for (int e = 0; e < E; ++e) kv[u][c][e] = 0.0f;
        }
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int i = i0 + u * TPI + my;
#pragma unroll
        for (int g = 0; g < MAXG; ++g) {
          if (g >= nh) break;
          float dot = 0.0f;
#pragma unroll
          for (int c = 0; c < MAXCPL; ++c)
#pragma unroll
            for (int e = 0; e < E; ++e) dot += qr[g][c][e] * kv[u][c][e];
          for (int o = TPT >> 1; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
          if (li == 0 && i < kTile) sc[g][i] = i < tn ? dot * ks[u] * a.scale : -INFINITY;
        }
      }
    }
    __syncthreads();
    // Online softmax step: one warp per head.
    for (int g = warp; g < nh; g += kDecWarps) {
      float mx = -INFINITY;
      for (int i = lane; i < tn; i += 32) mx = fmaxf(mx, sc[g][i]);
      mx = warp_max(mx);
      const float m_old = s_m[g], m_new = fmaxf(m_old, mx);
      float sum = 0.0f;
      for (int i = lane; i < tn; i += 32) {  // the value loop reads only the first tn
        const float pv = expf(sc[g][i] - m_new);
        sc[g][i] = pv;
        sum += pv;
      }
      sum = warp_sum(sum);
      if (lane == 0) {
        const float alpha = expf(m_old - m_new);  // 0 on the first tile (m_old = -inf)
        s_alpha[g] = alpha;
        s_m[g] = m_new;
        s_l[g] = s_l[g] * alpha + sum;
      }
    }
    __syncthreads();
    // Values: acc = acc * alpha + sum_t p_t * v_t.
#pragma unroll
    for (int g = 0; g < MAXG; ++g) {
      const float al = g < nh ? s_alpha[g] : 0.0f;
#pragma unroll
      for (int c = 0; c < MAXCPL; ++c)
#pragma unroll
        for (int e = 0; e < E; ++e) acc[g][c][e] *= al;
    }
    for (int i0 = 0; i0 < tn; i0 += TPI * kUnroll) {  // tn is block-uniform: every lane loops alike
      float vv[kUnroll][MAXCPL][E];
      float vs[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int i = i0 + u * TPI + my;
        const bool valid = i < tn;
        const int64_t slot = valid ? s_slot[i] : 0;
        const int64_t base = (slot * nkv + kvh) * D;
        vs[u] = kScaled && valid ? p.v.scales[slot * nkv + kvh] : 1.0f;
#pragma unroll
        for (int c = 0; c < MAXCPL; ++c) {
          const int chunk = li + TPT * c;
          if (valid && chunk < C)
            load_kv<KT, E>(p.v.data, base + chunk * E, vv[u][c]);
          else
#pragma unroll
            for (int e = 0; e < E; ++e) vv[u][c][e] = 0.0f;
        }
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int i = i0 + u * TPI + my;
        if (i >= tn) continue;
#pragma unroll
        for (int g = 0; g < MAXG; ++g) {
          if (g >= nh) break;
          const float pw = sc[g][i] * vs[u];
#pragma unroll
          for (int c = 0; c < MAXCPL; ++c)
#pragma unroll
            for (int e = 0; e < E; ++e) acc[g][c][e] += pw * vv[u][c][e];
        }
      }
    }
    __syncthreads();  // sc is rewritten by the next tile
  }

  // Sum the token groups of each warp, then the warps.
#pragma unroll
  for (int g = 0; g < MAXG; ++g)
#pragma unroll
    for (int c = 0; c < MAXCPL; ++c)
#pragma unroll
      for (int e = 0; e < E; ++e)
        for (int o = TPT; o < 32; o <<= 1) acc[g][c][e] += __shfl_xor_sync(0xffffffffu, acc[g][c][e], o);
  if (lane < TPT) {
#pragma unroll
    for (int g = 0; g < MAXG; ++g) {
      if (g >= nh) break;
#pragma unroll
      for (int c = 0; c < MAXCPL; ++c)
#pragma unroll
        for (int e = 0; e < E; ++e) {
          const int d = (li + TPT * c) * E + e;
          if (li + TPT * c < C) red[warp][g][d] = acc[g][c][e];
        }
    }
  }
  __syncthreads();
  for (int i = threadIdx.x; i < nh * D; i += kDecThreads) {
    const int g = i / D, d = i - g * D;
    float v = 0.0f;
#pragma unroll
    for (int w = 0; w < kDecWarps; ++w) v += red[w][g][d];
    if (whole) {
      const float l = s_l[g];
      p.out[row * q_width + (int64_t)(h0 + g) * D + d] = l != 0.0f ? v / l : 0.0f;
    } else {
      float* e = partial(p, row, h0 + g, split);
      e[2 + d] = v;
      if (d == 0) {
        e[0] = s_m[g];
        e[1] = s_l[g];
      }
    }
  }
}

// Decode rows with a lane per key: a block per (sequence, HPB query heads
// of one KV head, partition). Each lane scores its own key against the
// block's heads with no shuffles (the queries in shared memory, the key
// row in registers), each warp keeps an online softmax per head over its
// 32 keys a pass, and lanes own head dimensions for the values (the
// weights passed from the lane that scored the key). HPB = 1 gives a
// sequence n_heads blocks and the shortest chain after the wait, for few
// sequences (K and V are then read once per query head, from L2 for all
// but the first); HPB = 8 reads K and V once per group of up to 8 heads,
// for many sequences. Keys older than the newest token were written by
// earlier steps, so with rows of up to 64 dimensions a lane loads its key
// before the wait; the newest key (written by the kernel just before) is
// loaded after it.
constexpr int kLaneThreads = 256;
constexpr int kLaneWarps = kLaneThreads / 32;

template <DType KT, int DPL, int HPB, bool MERGE>
__global__ void __launch_bounds__(kLaneThreads) decode_lane_kernel(AttnParams p) {
  static_assert(HPB <= kMergeHeads, "merge_if_last merges at most kMergeHeads heads a block");
  constexpr int E = KT == DType::F32 ? 4 : 8;  // elements per load (the caller checks alignment and D % E)
  constexpr int KC = 32 * DPL / E;             // chunks of the longest row this instantiation takes
  constexpr int DMAX = 32 * DPL;
  constexpr bool kPreload = DPL <= 2;  // the key row fits in registers
  constexpr bool kScaled = kv_scaled(KT);
  __shared__ float s_q[HPB][DMAX];
  __shared__ int64_t s_slot[kLaneThreads];
  __shared__ float s_acc[kLaneWarps][HPB][DMAX];
  __shared__ float s_wm[kLaneWarps][HPB], s_wl[kLaneWarps][HPB];

  const DevicePagedArgs& a = p.a;
  const int s = blockIdx.x, split = blockIdx.z;
  const int row = a.query_start[s];
  const bool decode_row = a.query_start[s + 1] - row == 1;
  const int seq_len = a.seq_lens[s];
  const int D = a.head_dim, nkv = a.n_kv_heads, C = D / E;
  const int G = a.n_heads / nkv;
  const int kvh = blockIdx.y / p.head_tiles;
  const int g0 = (blockIdx.y % p.head_tiles) * HPB;
  const int nh = min(HPB, G - g0);
  const int h0 = kvh * G + g0;
  const int t0 = split * p.part;
  const int t1 = split == p.splits - 1 ? seq_len : min(seq_len, t0 + p.part);
  const bool whole = whole_context(p, seq_len);
  const int64_t q_width = (int64_t)a.n_heads * D;
  const int32_t* table = a.block_tables + (int64_t)s * a.max_blocks_per_seq;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;

  auto load_key = [&](int64_t slot, float(&kk)[KC][E]) {
    const int64_t base = (slot * nkv + kvh) * D;
#pragma unroll
    for (int c = 0; c < KC; ++c) {
      if (c < C)
        load_kv<KT, E>(p.k.data, base + c * E, kk[c]);
      else
#pragma unroll
        for (int e = 0; e < E; ++e) kk[c][e] = 0.0f;
    }
  };

  // Before the wait: the first pass's slots, its V rows prefetched into L2,
  // and (short rows) the keys of every token but the newest.
  const int tok0 = t0 + threadIdx.x;
  int64_t slot0 = 0;
  float kk[kPreload ? KC : 1][E];
  bool have_key = false;
  if (decode_row && tok0 < t1) {
    slot0 = slot_of(table, a.block_size, tok0);
    const int64_t off = (slot0 * nkv + kvh) * D * kv_esize<KT>();
    const int64_t first = off & ~int64_t{127}, last = (off + D * kv_esize<KT>() - 1) & ~int64_t{127};
    for (int64_t l = first; l <= last; l += 128) prefetch_l2(static_cast<const uint8_t*>(p.v.data) + l);
    if constexpr (kPreload) {
      // Rows of whole 32-byte sectors only: a sector an older key shares
      // with the newest row, which the kernel before is writing, must not
      // be cached before the wait.
      if (tok0 < seq_len - 1 && D * kv_esize<KT>() % 32 == 0) {
        load_key(slot0, kk);
        have_key = true;
      }
    }
  }
  s_slot[threadIdx.x] = slot0;
  grid_dependency_wait();
  allow_dependents();
  if (!decode_row) return;
  if (t0 >= t1) {
    empty_partition(p, row, h0, nh, split, whole);
    if constexpr (MERGE)
      if (!whole) merge_if_last(split_merge(p), s, row, h0, nh);
    return;
  }
  for (int i = threadIdx.x; i < HPB * DMAX; i += kLaneThreads) {  // zeros past D: the unrolled dots read them
    const int g = i / DMAX, d = i - g * DMAX;
    s_q[g][d] = g < nh && d < D ? p.q[row * q_width + (int64_t)(h0 + g) * D + d] : 0.0f;
  }
  __syncthreads();

  float m[HPB], l[HPB], acc[HPB][DPL];
#pragma unroll
  for (int g = 0; g < HPB; ++g) {
    m[g] = -INFINITY;
    l[g] = 0.0f;
#pragma unroll
    for (int j = 0; j < DPL; ++j) acc[g][j] = 0.0f;
  }
  for (int pb = t0; pb < t1; pb += kLaneThreads) {
    if (pb != t0) {  // the next pass's slots (block-uniform branch)
      __syncthreads();
      const int t = pb + threadIdx.x;
      s_slot[threadIdx.x] = t < t1 ? slot_of(table, a.block_size, t) : 0;
      __syncthreads();
    }
    const int nw = min(32, t1 - (pb + warp * 32));  // this warp's keys in the pass (warp-uniform)
    if (nw <= 0) continue;
    const bool valid = lane < nw;
    const int64_t my_slot = s_slot[warp * 32 + lane];
    // The key's scores.
    float dot[HPB];
#pragma unroll
    for (int g = 0; g < HPB; ++g) dot[g] = 0.0f;
    if (valid) {
      if constexpr (kPreload) {
        if (!(have_key && pb == t0)) load_key(my_slot, kk);
#pragma unroll
        for (int c = 0; c < KC; ++c)
#pragma unroll
          for (int g = 0; g < HPB; ++g)
#pragma unroll
            for (int e = 0; e < E; ++e) dot[g] += s_q[g][c * E + e] * kk[c][e];  // zero past D and nh
      } else {
        const int64_t base = (my_slot * nkv + kvh) * D;
#pragma unroll 4
        for (int c = 0; c < C; ++c) {
          float k1[E];
          load_kv<KT, E>(p.k.data, base + c * E, k1);
#pragma unroll
          for (int g = 0; g < HPB; ++g)
#pragma unroll
            for (int e = 0; e < E; ++e) dot[g] += s_q[g][c * E + e] * k1[e];
        }
      }
    }
    const float kscale = (valid && kScaled ? p.k.scales[my_slot * nkv + kvh] : 1.0f) * a.scale;
    const float vscale = valid && kScaled ? p.v.scales[my_slot * nkv + kvh] : 1.0f;
    float pw[HPB];
#pragma unroll
    for (int g = 0; g < HPB; ++g) {
      pw[g] = 0.0f;
      if (g >= nh) continue;
      const float sc = valid ? dot[g] * kscale : -INFINITY;
      const float m_new = fmaxf(m[g], warp_max(sc));
      const float pv = valid ? expf(sc - m_new) : 0.0f;
      const float alpha = expf(m[g] - m_new);  // 0 on the warp's first keys (m = -inf)
      l[g] = l[g] * alpha + warp_sum(pv);
      m[g] = m_new;
      pw[g] = pv * vscale;
#pragma unroll
      for (int j = 0; j < DPL; ++j) acc[g][j] *= alpha;
    }
    // Values: lane owns dimensions lane + 32 j; the weights come from the lane that scored the key.
#pragma unroll
    for (int t8 = 0; t8 < 32; t8 += 8) {
      float vv[8][DPL];
#pragma unroll
      for (int u = 0; u < 8; ++u) {
        const int t = t8 + u;
        const int64_t base = (s_slot[warp * 32 + t] * nkv + kvh) * D;
#pragma unroll
        for (int j = 0; j < DPL; ++j) {
          const int d = lane + 32 * j;
          vv[u][j] = t < nw && d < D ? kv_elem<KT>(p.v.data, base + d) : 0.0f;
        }
      }
#pragma unroll
      for (int u = 0; u < 8; ++u)
#pragma unroll
        for (int g = 0; g < HPB; ++g) {
          const float pt = __shfl_sync(0xffffffffu, pw[g], t8 + u);
#pragma unroll
          for (int j = 0; j < DPL; ++j) acc[g][j] += pt * vv[u][j];
        }
    }
  }

  // Merge the warps' softmax states, per head.
#pragma unroll
  for (int g = 0; g < HPB; ++g) {
    if (lane == 0) {
      s_wm[warp][g] = m[g];
      s_wl[warp][g] = l[g];
    }
#pragma unroll
    for (int j = 0; j < DPL; ++j)
      if (lane + 32 * j < D) s_acc[warp][g][lane + 32 * j] = acc[g][j];
  }
  __syncthreads();
  for (int i = threadIdx.x; i < nh * D; i += kLaneThreads) {
    const int g = i / D, d = i - g * D;
    float M = -INFINITY;
#pragma unroll
    for (int w = 0; w < kLaneWarps; ++w) M = fmaxf(M, s_wl[w][g] != 0.0f ? s_wm[w][g] : -INFINITY);
    float L = 0.0f, v = 0.0f;
#pragma unroll
    for (int w = 0; w < kLaneWarps; ++w) {
      if (s_wl[w][g] == 0.0f) continue;  // a warp that saw no keys (a NaN sum is kept: it spreads)
      const float wt = expf(s_wm[w][g] - M);
      L += s_wl[w][g] * wt;
      v += s_acc[w][g][d] * wt;
    }
    if (whole) {
      p.out[row * q_width + (int64_t)(h0 + g) * D + d] = L != 0.0f ? v / L : 0.0f;
    } else {
      float* e = partial(p, row, h0 + g, split);
      e[2 + d] = v;
      if (d == 0) {
        e[0] = M;
        e[1] = L;
      }
    }
  }
  if constexpr (MERGE)
    if (!whole) merge_if_last(split_merge(p), s, row, h0, nh);
}

// Merges the partitions of each decode row, a block per (sequence, head)
// (without in-kernel merging).
__global__ void reduce_kernel(AttnParams p) {
  grid_dependency_wait();
  allow_dependents();
  const DevicePagedArgs& a = p.a;
  const int s = blockIdx.x, h = blockIdx.y;
  const int row = a.query_start[s];
  if (a.query_start[s + 1] - row != 1 || whole_context(p, a.seq_lens[s])) return;
  __shared__ float w[kMaxSplits];
  __shared__ float L;
  const SplitMerge m = split_merge(p);
  if (threadIdx.x < 32) merge_weights(m, row, h, w, &L);
  __syncthreads();
  const int D = a.head_dim;
  float* o = p.out + (int64_t)row * a.n_heads * D + (int64_t)h * D;
  for (int d = threadIdx.x; d < D; d += blockDim.x) o[d] = merge_value(m, row, h, d, w, L);
}

constexpr int kPQ = 32;  // query rows per prefill block
constexpr int kPK = 32;  // keys per tile
constexpr int kPThreads = 256;
constexpr int kPCols = kPThreads / kPQ;  // threads per query row

size_t prefill_smem_bytes(int D) {
  return ((size_t)(kPQ + kPK) * (D + 1) + (size_t)kPQ * (kPK + 1)) * sizeof(float);
}

template <DType KT>
__global__ void __launch_bounds__(kPThreads) prefill_kernel(AttnParams p) {
  constexpr bool kScaled = kv_scaled(KT);
  extern __shared__ float4 smem4[];
  __shared__ int64_t slots[kPK];
  __shared__ float kscale[kPK];
  const DevicePagedArgs& a = p.a;
  const int s = blockIdx.z, h = blockIdx.y;
  const int row0 = a.query_start[s];
  const int q_len = a.query_start[s + 1] - row0;
  const int j0 = blockIdx.x * kPQ;
  if (q_len < 2 || j0 >= q_len) return;  // decode rows: the decode kernel
  const int D = a.head_dim, stride = D + 1;
  float* qs = reinterpret_cast<float*>(smem4);
  float* kv = qs + kPQ * stride;
  float* ps = kv + kPK * stride;
  const int seq_len = a.seq_lens[s];
  const int kvh = h / (a.n_heads / a.n_kv_heads);
  const int nq = min(kPQ, q_len - j0);
  const int pos0 = seq_len - q_len + j0;
  const int kv_end = min(seq_len, pos0 + nq);  // causal: keys up to the tile's last position
  const int64_t q_width = (int64_t)a.n_heads * D;
  const int32_t* table = a.block_tables + (int64_t)s * a.max_blocks_per_seq;

  for (int i = threadIdx.x; i < kPQ * D; i += kPThreads) {
    const int r = i / D, d = i - r * D;
    qs[r * stride + d] = r < nq ? p.q[(row0 + j0 + r) * q_width + (int64_t)h * D + d] * a.scale : 0.0f;
  }
  const int r = threadIdx.x / kPCols, cg = threadIdx.x % kPCols;
  const int my_pos = pos0 + r;
  float m = -INFINITY, l = 0.0f;
  float acc[kMaxHeadDim / kPCols];
#pragma unroll
  for (int j = 0; j < kMaxHeadDim / kPCols; ++j) acc[j] = 0.0f;

  for (int kb = 0; kb < kv_end; kb += kPK) {
    __syncthreads();  // the previous tile's V (and, first time, nothing) is consumed
    if (threadIdx.x < kPK) {
      const int t = kb + threadIdx.x;
      const int64_t slot = t < kv_end ? slot_of(table, a.block_size, t) : -1;
      slots[threadIdx.x] = slot;
      kscale[threadIdx.x] = kScaled && slot >= 0 ? p.k.scales[slot * a.n_kv_heads + kvh] : 1.0f;
    }
    __syncthreads();
    for (int i = threadIdx.x; i < kPK * D; i += kPThreads) {
      const int c = i / D, d = i - c * D;
      const int64_t slot = slots[c];
      kv[c * stride + d] =
          slot >= 0 ? kv_elem<KT>(p.k.data, (slot * a.n_kv_heads + kvh) * D + d) * kscale[c] : 0.0f;
    }
    __syncthreads();
    float sv[kPK / kPCols];
#pragma unroll
    for (int i = 0; i < kPK / kPCols; ++i) sv[i] = 0.0f;
    for (int d = 0; d < D; ++d) {  // one q load serves all of the thread's keys
      const float qv = qs[r * stride + d];
#pragma unroll
      for (int i = 0; i < kPK / kPCols; ++i) sv[i] += qv * kv[(cg + kPCols * i) * stride + d];
    }
    float mx = -INFINITY;
#pragma unroll
    for (int i = 0; i < kPK / kPCols; ++i) {
      const int t = kb + cg + kPCols * i;
      sv[i] = t < kv_end && t <= my_pos ? sv[i] : -INFINITY;
      mx = fmaxf(mx, sv[i]);
    }
#pragma unroll
    for (int o = 1; o < kPCols; o <<= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    const float m_new = fmaxf(m, mx);
    const float alpha = m_new == -INFINITY ? 1.0f : expf(m - m_new);
    float sum = 0.0f;
#pragma unroll
    for (int i = 0; i < kPK / kPCols; ++i) {
      const float pv = sv[i] == -INFINITY ? 0.0f : expf(sv[i] - m_new);
      ps[r * (kPK + 1) + cg + kPCols * i] = pv;
      sum += pv;
    }
#pragma unroll
    for (int o = 1; o < kPCols; o <<= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    l = l * alpha + sum;
    m = m_new;
#pragma unroll
    for (int j = 0; j < kMaxHeadDim / kPCols; ++j) acc[j] *= alpha;
    if (threadIdx.x < kPK) {
      const int64_t slot = slots[threadIdx.x];
      kscale[threadIdx.x] = kScaled && slot >= 0 ? p.v.scales[slot * a.n_kv_heads + kvh] : 1.0f;
    }
    __syncthreads();  // K consumed; V's scales in place
    for (int i = threadIdx.x; i < kPK * D; i += kPThreads) {
      const int c = i / D, d = i - c * D;
      const int64_t slot = slots[c];
      kv[c * stride + d] =
          slot >= 0 ? kv_elem<KT>(p.v.data, (slot * a.n_kv_heads + kvh) * D + d) * kscale[c] : 0.0f;
    }
    __syncthreads();
    for (int c = 0; c < kPK; ++c) {
      const float pc = ps[r * (kPK + 1) + c];
#pragma unroll
      for (int j = 0; j < kMaxHeadDim / kPCols; ++j) {
        const int d = cg + kPCols * j;
        if (d < D) acc[j] += pc * kv[c * stride + d];
      }
    }
  }
  if (r < nq) {
    float* o = p.out + (row0 + j0 + r) * q_width + (int64_t)h * D;
#pragma unroll
    for (int j = 0; j < kMaxHeadDim / kPCols; ++j) {
      const int d = cg + kPCols * j;
      if (d < D) o[d] = l != 0.0f ? acc[j] / l : 0.0f;
    }
  }
}

// The register-tiled prefill kernel (kernels/cuda/prefill_tiles.cuh, where
// the block's work is written once for this kernel and a CPU emulation):
// head_dim 64 (J = 1) and 128 (J = 2), a block per (64 query rows, head,
// sequence).
struct CudaBlock {
  __device__ int tid() const { return threadIdx.x; }
  __device__ void sync() const { __syncthreads(); }
  __device__ float shfl_xor(float v, int o) const { return __shfl_xor_sync(0xffffffffu, v, o); }
};
// The K and V caches by value: a reference into kernel-parameter space would
// put the parameters on the stack.
template <DType KT>
struct CacheReader {
  const void *k, *v;
  const float *k_scales, *v_scales;
  int n_kv_heads, head_dim;
  __device__ float value(bool is_v, int64_t slot, int kvh, int d) const {
    return kv_elem<KT>(is_v ? v : k, (slot * n_kv_heads + kvh) * head_dim + d);
  }
  __device__ float scale(bool is_v, int64_t slot, int kvh) const {
    if constexpr (!kv_scaled(KT)) return 1.0f;
    return (is_v ? v_scales : k_scales)[slot * n_kv_heads + kvh];
  }
};

size_t prefill4_smem_bytes(int D) { return tiles::smem_floats(D) * sizeof(float); }

template <DType KT, int J>
__global__ void __launch_bounds__(tiles::kThreads) prefill4_kernel(AttnParams p) {
  extern __shared__ float4 smem4[];
  __shared__ tiles::TileKeys keys;
  CudaBlock b;
  const DevicePagedArgs a = p.a;
  const CacheReader<KT> kv{p.k.data, p.v.data, p.k.scales, p.v.scales, a.n_kv_heads, a.head_dim};
  tiles::prefill_tile_block<J>(b, kv, p.out, p.q, a, blockIdx.z, blockIdx.y, blockIdx.x,
                               reinterpret_cast<float*>(smem4), keys);
}

bool kv_dtype_ok(DType t) {
  return t == DType::F32 || t == DType::F16 || t == DType::BF16 || t == DType::I8 || t == DType::F8_E4M3;
}

__global__ void fill_nan(float* y, int64_t count) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < count;
       i += (int64_t)gridDim.x * blockDim.x)
    y[i] = __uint_as_float(0x7fc00000u);
}

template <DType KT, int MAXG>
void launch_decode(const AttnParams& p, bool vec, dim3 grid, cudaStream_t st) {
  if (vec)
    launch_dependent(decode_kernel<KT, MAXG, true>, grid, kDecThreads, 0, st, p);
  else
    launch_dependent(decode_kernel<KT, MAXG, false>, grid, kDecThreads, 0, st, p);
}

template <DType KT, int DPL, int HPB>
void launch_lane(const AttnParams& q, dim3 grid, cudaStream_t st) {
  if (q.counters)
    launch_dependent(decode_lane_kernel<KT, DPL, HPB, true>, grid, kLaneThreads, 0, st, q);
  else
    launch_dependent(decode_lane_kernel<KT, DPL, HPB, false>, grid, kLaneThreads, 0, st, q);
}

template <DType KT, int HPB>
void launch_lanes(const AttnParams& p, cudaStream_t st) {
  const DevicePagedArgs& a = p.a;
  AttnParams q = p;
  q.head_tiles = (a.n_heads / a.n_kv_heads + HPB - 1) / HPB;
  const dim3 grid(a.num_seqs, a.n_kv_heads * q.head_tiles, p.splits);
  if (a.head_dim <= 64)
    launch_lane<KT, 2, HPB>(q, grid, st);
  else if (a.head_dim <= 128)
    launch_lane<KT, 4, HPB>(q, grid, st);
  else if constexpr (HPB == 1)
    launch_lane<KT, 8, HPB>(q, grid, st);
}

// Rows the vector loads can take: whole 16-byte (one-byte types: 8-byte) chunks from aligned caches.
bool vector_loads(DType t, const AttnParams& p) {
  const int E = t == DType::F32 ? 4 : 8;
  return p.a.head_dim % E == 0 && aligned16(p.k.data) && aligned16(p.v.data);
}

template <DType KT>
void launch_tiled(const AttnParams& p, cudaStream_t st) {
  const DevicePagedArgs& a = p.a;
  const int G = a.n_heads / a.n_kv_heads;
  const bool vec = vector_loads(KT, p);
  const int maxg = G <= 1 ? 1 : G <= 2 ? 2 : G <= 4 ? 4 : 8;
  AttnParams q = p;
  q.head_tiles = (G + maxg - 1) / maxg;
  const dim3 grid(a.num_seqs, a.n_kv_heads * q.head_tiles, q.splits);
  switch (maxg) {
    case 1:
      launch_decode<KT, 1>(q, vec, grid, st);
      break;
    case 2:
      launch_decode<KT, 2>(q, vec, grid, st);
      break;
    case 4:
      launch_decode<KT, 4>(q, vec, grid, st);
      break;
    default:
      launch_decode<KT, 8>(q, vec, grid, st);
      break;
  }
}

std::atomic<PrefillAttention> g_prefill_attention{PrefillAttention::Auto};
std::atomic<int64_t> g_register_tiled_prefills{0};

template <DType KT, int J>
void launch_prefill4(const AttnParams& p, cudaStream_t st) {
  const DevicePagedArgs& a = p.a;
  const size_t smem = prefill4_smem_bytes(J * 64);
  if (smem > 48 * 1024)
    cudaFuncSetAttribute(prefill4_kernel<KT, J>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
  const dim3 grid((a.max_query_len + tiles::kQ - 1) / tiles::kQ, a.n_heads, a.num_seqs);
  prefill4_kernel<KT, J><<<grid, tiles::kThreads, smem, st>>>(p);
  g_register_tiled_prefills.fetch_add(1, std::memory_order_relaxed);
}

template <DType KT>
void launch_prefill(const AttnParams& p, cudaStream_t st) {
  const DevicePagedArgs& a = p.a;
  // The register-tiled kernel stores 16 bytes at a time: rows of 64 or 128 floats from an aligned output.
  if (g_prefill_attention.load(std::memory_order_relaxed) == PrefillAttention::Auto &&
      (a.head_dim == 64 || a.head_dim == 128) && aligned16(p.out)) {
    if (a.head_dim == 64)
      launch_prefill4<KT, 1>(p, st);
    else
      launch_prefill4<KT, 2>(p, st);
    return;
  }
  const size_t smem = prefill_smem_bytes(a.head_dim);
  if (smem > 48 * 1024)
    cudaFuncSetAttribute(prefill_kernel<KT>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
  const dim3 pgrid((a.max_query_len + kPQ - 1) / kPQ, a.n_heads, a.num_seqs);
  prefill_kernel<KT><<<pgrid, kPThreads, smem, st>>>(p);
}

template <DType KT>
void launch_all(const AttnParams& p, DecodeAttention kernel, cudaStream_t st) {
  const DevicePagedArgs& a = p.a;
  if (kernel == DecodeAttention::PerHead)
    launch_lanes<KT, 1>(p, st);
  else if (kernel == DecodeAttention::PerGroup)
    launch_lanes<KT, kLaneGroupHeads>(p, st);
  else
    launch_tiled<KT>(p, st);
  if (p.splits > 1 && !p.counters)
    launch_dependent(reduce_kernel, dim3(a.num_seqs, a.n_heads), std::min(256, (a.head_dim + 31) / 32 * 32),
                     0, st, p);
  if (a.max_query_len > 1) launch_prefill<KT>(p, st);
}

std::atomic<DecodeAttention> g_decode_attention{DecodeAttention::Auto};
std::atomic<int64_t> g_in_kernel_merges{0};

}  // namespace

void set_decode_attention(DecodeAttention kind) { g_decode_attention.store(kind, std::memory_order_relaxed); }
void set_prefill_attention(PrefillAttention kind) {
  g_prefill_attention.store(kind, std::memory_order_relaxed);
}
int64_t register_tiled_prefill_launches() {
  return g_register_tiled_prefills.load(std::memory_order_relaxed);
}
int64_t split_merge_in_kernel_launches() { return g_in_kernel_merges.load(std::memory_order_relaxed); }

void paged_attention(float* out, const float* q, const DeviceKvCache& k, const DeviceKvCache& v,
                     const DevicePagedArgs& a, void* workspace, size_t workspace_bytes, Stream s,
                     uint32_t* split_counters, size_t split_counter_count) {
  if (a.num_seqs <= 0 || a.num_query_rows <= 0) return;
  cudaStream_t st = stream_of(s);
  const bool ok = a.head_dim > 0 && a.head_dim <= kMaxHeadDim && a.n_heads > 0 && a.n_kv_heads > 0 &&
                  a.n_heads % a.n_kv_heads == 0 && k.dtype == v.dtype && kv_dtype_ok(k.dtype) &&
                  (!kv_scaled(k.dtype) || (k.scales && v.scales));
  if (!ok) {  // unsupported shapes make every output NaN rather than leave stale values
    const int64_t count = (int64_t)a.num_query_rows * a.n_heads * std::max(a.head_dim, 0);
    if (count > 0) fill_nan<<<grid_1d(count, 256), 256, 0, st>>>(out, count);
    return;
  }
  AttnParams p{out, q, k, v, a, static_cast<float*>(workspace), 1, INT_MAX, 1, nullptr};
  const DecodePlan plan =
      plan_decode_attention(g_decode_attention.load(std::memory_order_relaxed), vector_loads(k.dtype, p),
                            a.head_dim, a.max_seq_len, a.num_seqs, a.n_heads, a.n_kv_heads, sm_count());
  int splits = plan.splits;
  // The workspace bounds the split count (it is planned for the batch limits; never overrun it).
  const size_t per_split = (size_t)a.num_query_rows * a.n_heads * (a.head_dim + 2) * sizeof(float);
  if (!workspace) splits = 1;
  splits = (int)std::min<size_t>((size_t)splits, workspace_bytes / per_split);
  if (splits > 1) {
    p.splits = splits;
    p.part = (a.max_seq_len + splits - 1) / splits;
    // The lane kernels merge in kernel (the tiled one, for shapes they cannot take, keeps the reduce
    // kernel); their block row index is below n_heads.
    if (split_counters && plan.kernel != DecodeAttention::Tiled &&
        (size_t)a.num_seqs * a.n_heads <= split_counter_count) {
      p.counters = split_counters;
      g_in_kernel_merges.fetch_add(1, std::memory_order_relaxed);
    }
  }
  switch (k.dtype) {
    case DType::F32:
      launch_all<DType::F32>(p, plan.kernel, st);
      break;
    case DType::F16:
      launch_all<DType::F16>(p, plan.kernel, st);
      break;
    case DType::BF16:
      launch_all<DType::BF16>(p, plan.kernel, st);
      break;
    case DType::I8:
      launch_all<DType::I8>(p, plan.kernel, st);
      break;
    case DType::F8_E4M3:
      launch_all<DType::F8_E4M3>(p, plan.kernel, st);
      break;
    default:
      break;
  }
}

}  // namespace brisk::cuda
