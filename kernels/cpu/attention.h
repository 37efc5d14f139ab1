// Multi-threaded CPU versions of kernels/reference/attention.h: the KV cache
// in F32/F16/BF16/I8/F8_E4M3 (layout and scales described by KvCacheView),
// paged attention over it, and the fused non-GEMM ops of a layer. Each runs
// AVX2 code when active_isa() allows it and portable code otherwise.
#pragma once
#include <cstdint>

#include "kernels/cpu/thread_pool.h"
#include "kernels/reference/attention.h"

namespace brisk::cpu {

// Converts (and for I8/F8_E4M3 quantizes) row t of k_rows and v_rows
// [T, n_kv_heads * head_dim] into slot slots[t]; the bytes and scales written
// are exactly those of ref::kv_write.
void kv_write(ThreadPool& pool, const KvCacheView& k, const KvCacheView& v, const float* k_rows,
              const float* v_rows, const int32_t* slots, int T);
// Decode and prefill (causal, variable length, GQA) through block tables,
// converting the cache on the fly; one-pass online softmax in F32.
void paged_attention(ThreadPool& pool, float* out, const float* q, const KvCacheView& k, const KvCacheView& v,
                     const PagedAttentionArgs& a);
// x[M, D] += residual; y = rmsnorm(x) * w, in one pass over each row.
void add_rmsnorm(ThreadPool& pool, float* x, const float* residual, const float* w, float* y, int M, int D,
                 float eps);
// RoPE on q (in place) and k, and the rotated k and v written into the caches
// in the same pass over each token (k is not modified).
void rope_kv_write(ThreadPool& pool, float* q, const float* k, const float* v, const int32_t* pos,
                   const int32_t* slots, int T, int n_heads, int rot_dim, float theta,
                   const KvCacheView& k_cache, const KvCacheView& v_cache);

}  // namespace brisk::cpu
