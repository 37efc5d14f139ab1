// Multi-threaded CPU versions of the reference ops (same signatures and
// layouts as kernels/reference/ops.h, plus the pool that runs them).
#pragma once
#include <cstdint>

#include "kernels/cpu/thread_pool.h"
#include "kernels/reference/ops.h"

namespace brisk::cpu {

// matmul, embed and matmul_w8a8 run the active ISA's kernels (kernels/cpu/isa.h): an AVX-512 variant
// where one exists, else AVX2; on Isa::Scalar, the reference split over the threads. Within one ISA a
// row's result does not depend on M or on the thread count, bit for bit.
void matmul(ThreadPool& pool, float* y, const float* x, const void* w, DType wt, int M, int N, int K,
            const float* row_scales = nullptr);
void embed(ThreadPool& pool, float* y, const void* table, DType wt, const int32_t* ids, int T, int D,
           const float* row_scales = nullptr);
// ref::matmul_w8a8 (INT8 weights, activations quantized per row on the fly), bit for bit.
void matmul_w8a8(ThreadPool& pool, float* y, const float* x, const int8_t* w, const float* row_scales, int M,
                 int N, int K);
// ref::matmul_w8a24 (INT8 weights times F32 activations in integer arithmetic), bit for bit, where
// the CPU has AVX-512 VNNI. Returns false, touching nothing, elsewhere; the caller then runs matmul.
bool matmul_w8a24(ThreadPool& pool, float* y, const float* x, const int8_t* w, const float* row_scales, int M,
                  int N, int K);
// FP8 weights through BF16 dot products (avx512::matmul_fp8_dpbf16: activations as two BF16 each)
// where the CPU has AVX-512 BF16 and VBMI; one order for every M, as matmul. Returns false, touching
// nothing, elsewhere or for another dtype; the caller then runs matmul.
bool matmul_fp8_dpbf16(ThreadPool& pool, float* y, const float* x, const uint8_t* w, DType wt,
                       const float* row_scales, int M, int N, int K);
// ref::matmul_q8_0_w16 (Q8_0 blocks times activations rounded to 16-bit integers), bit for bit,
// where the CPU has AVX-512; one order for every M. Returns false, touching nothing, elsewhere or
// when K is not a multiple of 32; the caller then runs matmul.
bool matmul_q8_0_w16(ThreadPool& pool, float* y, const float* x, const void* w, int M, int N, int K);
void rmsnorm(ThreadPool& pool, float* y, const float* x, const float* w, int M, int D, float eps);
void rope(ThreadPool& pool, float* x, const int32_t* pos, int T, int n_heads, int head_dim, int rot_dim,
          float theta);
void silu_mul(ThreadPool& pool, float* y, const float* gate, const float* up, int64_t n);
void add(ThreadPool& pool, float* y, const float* a, const float* b, int64_t n);
// As ref::argmax_rows; argmax is one row (no pool).
int32_t argmax(const float* x, int n);
void argmax_rows(ThreadPool& pool, int32_t* out, const float* x, int M, int stride, int N);
void kv_write(ThreadPool& pool, float* k_cache, float* v_cache, const float* k, const float* v,
              const int32_t* slots, int T, int kv_width);
void paged_attention(ThreadPool& pool, float* out, const float* q, const float* k_cache, const float* v_cache,
                     const PagedAttentionArgs& a);

}  // namespace brisk::cpu
