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
  const int32_t* query_start = nullptr;   // [num_seqs + 1]
  const int32_t* seq_lens = nullptr;      // [num_seqs]
  const int32_t* block_tables = nullptr;  // [num_seqs, max_blocks_per_seq]
  int max_blocks_per_seq = 0;
  int block_size = 16;
  int n_heads = 0;
  int n_kv_heads = 0;  // n_heads % n_kv_heads == 0 (grouped-query attention)
  int head_dim = 0;
  float scale = 1.0f;  // usually 1/sqrt(head_dim)
};

namespace ref {

// row_scales: one F32 per weight row, required for the scaled dtypes (I8, F8_*), ignored otherwise.
// For a scaled dtype y[m, n] = (float)(scale[n] * sum_k x[m, k] * q[n, k]) (double sums), i.e. the
// scale multiplies the finished dot product, as the SIMD kernels do. A scaled dtype without
// row_scales, or a dtype that is not a weight type (I32), yields NaN everywhere.
void matmul(float* y, const float* x, const void* w, DType wt, int M, int N, int K,
            const float* row_scales = nullptr);
// The same over output columns [n0, n1) only (y keeps its [M, N] layout): the portable CPU path
// splits a matmul over threads with this, so its results equal matmul's bit for bit.
void matmul_cols(float* y, const float* x, const void* w, DType wt, int M, int N, int K,
                 const float* row_scales, int n0, int n1);
// y[t, :] = row ids[t] of table [vocab, D] (any weight dtype), as F32; a scaled dtype gives
// q * row_scales[ids[t]] (one F32 multiply).
void embed(float* y, const void* table, DType wt, const int32_t* ids, int T, int D,
           const float* row_scales = nullptr);

// W8A8: INT8 weights [N, K] (one F32 scale per row) times activations quantized to INT8 on the
// fly, one scale per activation row (x must be finite). The definition, which every CPU variant reproduces
// bit for bit (the dot product is integer, so it can):
//   amax = max_k |x[m, k]|; if amax == 0 the row's outputs are all 0. Otherwise
//   inv = 127.0f / amax (F32), q[k] = (int8) nearbyint(x[m, k] * inv) (F32 multiply, round half to
//   even, clamped to [-127, 127]), xs = amax / 127.0f (F32),
//   dot = sum_k q[k] * w[n, k] (exact, int32; any int8 weight including -128),
//   y[m, n] = ((float)dot * xs) * row_scales[n] (two F32 multiplies, in that order).
void matmul_w8a8(float* y, const float* x, const int8_t* w, const float* row_scales, int M, int N, int K);
// The same over output columns [n0, n1) (y keeps its [M, N] layout).
void matmul_w8a8_cols(float* y, const float* x, const int8_t* w, const float* row_scales, int M, int N, int K,
                      int n0, int n1);
// The activation side of W8A8 for one row of K values: q[0..K) and the row's scale xs (0 when the
// row is all zero, and then q is all 0).
void quantize_activation_row(int8_t* q, float* xs, const float* x, int K);
// W8A24: INT8 weights [N, K] (one F32 scale per row) times F32 activations in integer arithmetic.
// Each activation row is rounded to 24-bit integers against its largest |x| (the rounding error is
// at most 0.5 / 8355711 of that, about F32's own epsilon) and split into three signed bytes, so the
// products are three INT8 x INT8 dot products (VNNI) instead of a widening of every weight to F32.
// The definition, which every CPU variant reproduces bit for bit:
//   amax = max_k |x[m, k]|; if some x[m, k] is not finite the row's outputs are all NaN; if
//   amax == 0 they are all 0. Otherwise inv = kA24Max / amax (F32),
//   q[k] = (int32) nearbyint(x[m, k] * inv) (F32 multiply, round half to even, clamped to
//   +-kA24Max), xs = amax / kA24Max (F32), q[k] = 65536 h[k] + 256 d[k] + l[k] with every digit in
//   [-128, 127] (l = ((q + 128) mod 256) - 128, then d the same of (q - l) / 256, h the rest),
//   dot = sum_k q[k] * w[n, k] (exact, int64),
//   y[m, n] = ((float)dot * xs) * row_scales[n] (int64 -> F32 rounding to nearest even, then two F32
//   multiplies in that order). K is below 2^17.
constexpr int32_t kA24Max = 127 * (65536 + 256 + 1);  // 8355711: every digit of it is 127
void matmul_w8a24(float* y, const float* x, const int8_t* w, const float* row_scales, int M, int N, int K);
void matmul_w8a24_cols(float* y, const float* x, const int8_t* w, const float* row_scales, int M, int N,
                       int K, int n0, int n1);
// The activation side of W8A24 for one row: q[0..K) as above (all 0 for a zero or non-finite row)
// and xs (0 for a zero row, NaN for a non-finite one).
void quantize_activation_row24(int32_t* q, float* xs, const float* x, int K);
// Q8_0 W8A16: GGUF Q8_0 blocks [N, K / 32] times activations rounded to 16-bit integers, so each
// block is one 16-bit integer dot product (AVX-512 vpmaddwd) instead of a widening of every
// weight to F32. The definition, which the AVX-512 variant reproduces bit for bit (CPUs without
// AVX-512 widen Q8_0 to F32 instead, as cpu::matmul):
//   amax = max_k |x[m, k]|; if some x[m, k] is not finite the row's outputs are all NaN.
//   inv = kA16Max / amax (F32); if it is not finite (amax 0, or below ~1e-34) q is all 0 and
//   xs = 0. Otherwise
//   q[k] = (int16) nearbyint(x[m, k] * inv) (F32 multiply, half to even, clamped to +-kA16Max),
//   xs = amax / kA16Max (F32).
//   Sixteen F32 lanes, zero, then for each block b of row n in order and each lane l < 16:
//   p = w_b[2l] * q[32b + 2l] + w_b[2l + 1] * q[32b + 2l + 1] (exact in int32 and in F32),
//   acc[l] = fmaf((float)p, d_b, acc[l]) with d_b the block's F16 scale as F32.
//   s = ((acc[0..7] + acc[8..15]) lane-wise, then [0..3] + [4..7], [0..1] + [2..3], [0] + [1]),
//   y[m, n] = s * xs.
// The rounding (at most 0.5 / 32767 of the row's largest value) is far below Q8_0's own 1/254 of
// each block's largest weight. K is a multiple of 32.
constexpr int32_t kA16Max = 32767;
void matmul_q8_0_w16(float* y, const float* x, const BlockQ8_0* w, int M, int N, int K);
// The activation side for one row: q[0..K) as above (all 0 for a zero or non-finite row) and xs
// (0 for a zero row, NaN for a non-finite one).
void quantize_activation_row16(int16_t* q, float* xs, const float* x, int K);
void rmsnorm(float* y, const float* x, const float* w, int M, int D, float eps);
// In place on x [T, n_heads * head_dim]; rotates the first rot_dim dims of each head.
void rope(float* x, const int32_t* pos, int T, int n_heads, int head_dim, int rot_dim, float theta);
void silu_mul(float* y, const float* gate, const float* up, int64_t n);
void add(float* y, const float* a, const float* b, int64_t n);
// out[m] = the first index of the largest value among the first N columns
// of row m of x [M, stride]: a scan from column 0 keeping the best with `>`,
// so NaNs are never chosen (unless x[m, 0] is one: then 0). Greedy
// sampling on the backend.
void argmax_rows(int32_t* out, const float* x, int M, int stride, int N);
// Writes row t of k and v [T, kv_width] to slot slots[t] of the caches.
void kv_write(float* k_cache, float* v_cache, const float* k, const float* v, const int32_t* slots, int T,
              int kv_width);
// out and q are [total_query_rows, n_heads * head_dim].
void paged_attention(float* out, const float* q, const float* k_cache, const float* v_cache,
                     const PagedAttentionArgs& a);

}  // namespace ref
}  // namespace brisk
