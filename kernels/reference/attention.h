// The KV cache in every storage type, the paged attention that reads it, and
// the fused non-GEMM ops of a layer: scalar, obviously-correct versions (the
// oracle for kernels/cpu/attention.h).
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/dtype.h"
#include "kernels/reference/ops.h"

namespace brisk {

// One layer's K (or V) cache: [num_slots, n_kv_heads * head_dim] elements of
// `dtype`, row-major, slot = block * block_size + offset (as the F32 cache of
// kernels/reference/ops.h).
//   F32, F16, BF16: the values themselves (F16/BF16 rounded to nearest even);
//     `scales` is unused.
//   I8, F8_E4M3: each (slot, KV head) row of head_dim values carries one F32
//     scale in scales[slot * n_kv_heads + head], and value = code * scale.
//     The scale maps the row's absolute maximum onto the type's largest code:
//     I8 scale = absmax / 127, code = round_to_nearest_even(x / scale) in
//     [-127, 127]; F8_E4M3 scale = absmax / 448, code = fp32_to_fp8_e4m3(x /
//     scale). A row of zeros has scale 0 and zero codes.
// Per-row scales (instead of per tensor) let a cache be written one token at
// a time and keep an outlier token from flattening every other token.
struct KvCacheView {
  void* data = nullptr;
  float* scales = nullptr;  // [num_slots, n_kv_heads]; I8 and F8_E4M3 only
  DType dtype = DType::F32;
  int n_kv_heads = 0;
  int head_dim = 0;
};

// The storage types a KV cache may have: F32, F16, BF16, I8, F8_E4M3.
bool kv_dtype_supported(DType t);
// Bytes one slot of a cache takes, data and scales together.
size_t kv_slot_bytes(DType t, int n_kv_heads, int head_dim);

namespace ref {

// Encodes `src` (head_dim values) as row (slot, head) of the cache.
void kv_store_head(const KvCacheView& c, int64_t slot, int head, const float* src);
// Value d of row (slot, head), decoded to F32 (code * scale for scaled types).
float kv_load(const KvCacheView& c, int64_t slot, int head, int d);

// Writes row t of k_rows and v_rows [T, n_kv_heads * head_dim] to slot slots[t].
void kv_write(const KvCacheView& k, const KvCacheView& v, const float* k_rows, const float* v_rows,
              const int32_t* slots, int T);
// As ref::paged_attention over F32 caches, reading each cached value through
// kv_load. out and q are [total_query_rows, n_heads * head_dim].
void paged_attention(float* out, const float* q, const KvCacheView& k, const KvCacheView& v,
                     const PagedAttentionArgs& a);

// x[M, D] += residual, then y = rmsnorm(x) * w (x keeps the sum).
void add_rmsnorm(float* x, const float* residual, const float* w, float* y, int M, int D, float eps);
// RoPE on q [T, n_heads * head_dim] (in place) and on a copy of k [T,
// n_kv_heads * head_dim]; the rotated k and v are written to slot slots[t] of
// the caches. k itself is left as it was.
void rope_kv_write(float* q, const float* k, const float* v, const int32_t* pos, const int32_t* slots, int T,
                   int n_heads, int rot_dim, float theta, const KvCacheView& k_cache,
                   const KvCacheView& v_cache);

}  // namespace ref
}  // namespace brisk
