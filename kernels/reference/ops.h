// Scalar, obviously-correct versions of every op: the oracle for tests.
// Layout conventions shared by reference/ and cpu/:
//   activations are row-major F32 [rows, cols];
//   a weight matrix W is [N, K] row-major (one row per output), of DType wt;
//   matmul computes y[M, N] = x[M, K] * W^T.
//   RoPE rotates adjacent pairs (x[2i], x[2i+1]) of each head (GGUF/llama2.c
//   layout; the loader permutes HF weights into it).
//   The KV cache of one layer is [num_slots, kv_width] F32 with
//   kv_width = n_kv_heads * head_dim and slot = block * block_size + offset.
#pragma once
#include <cstdint>

#include "kernels/dtype.h"

namespace brisk {

// Describes one packed batch for paged attention. Sequence s owns query rows
// [query_start[s], query_start[s+1]); its context after this step holds
// seq_lens[s] tokens, so query row j of s sits at position
// seq_lens[s] - q_len + j and attends causally to keys 0..that position.
struct PagedAttentionArgs {
  int num_seqs = 0;
  const int32_t* query_start = nullptr;  // [num_seqs + 1]
  const int32_t* seq_lens = nullptr;     // [num_seqs]
  const int32_t* block_tables = nullptr; // [num_seqs, max_blocks_per_seq]
  int max_blocks_per_seq = 0;
  int block_size = 16;
  int n_heads = 0;
  int n_kv_heads = 0;  // n_heads % n_kv_heads == 0 (grouped-query attention)
  int head_dim = 0;
  float scale = 1.0f;  // usually 1/sqrt(head_dim)
};

namespace ref {

// row_scales: one F32 per weight row, required for the scaled dtypes (I8, F8_*), ignored otherwise.
void matmul(float* y, const float* x, const void* w, DType wt, int M, int N, int K,
            const float* row_scales = nullptr);
// y[t, :] = row ids[t] of table [vocab, D] (any weight dtype), as F32.
void embed(float* y, const void* table, DType wt, const int32_t* ids, int T, int D, const float* row_scales = nullptr);
void rmsnorm(float* y, const float* x, const float* w, int M, int D, float eps);
// In place on x [T, n_heads * head_dim]; rotates the first rot_dim dims of each head.
void rope(float* x, const int32_t* pos, int T, int n_heads, int head_dim, int rot_dim, float theta);
void silu_mul(float* y, const float* gate, const float* up, int64_t n);
void add(float* y, const float* a, const float* b, int64_t n);
// Writes row t of k and v [T, kv_width] to slot slots[t] of the caches.
void kv_write(float* k_cache, float* v_cache, const float* k, const float* v, const int32_t* slots,
              int T, int kv_width);
// out and q are [total_query_rows, n_heads * head_dim].
void paged_attention(float* out, const float* q, const float* k_cache, const float* v_cache,
                     const PagedAttentionArgs& a);

}  // namespace ref
}  // namespace brisk
