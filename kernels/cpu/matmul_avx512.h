// AVX-512 variants of the matmul kernels (kernels/cpu/matmul_avx512.cpp),
// called by kernels/cpu/matmul.cpp when active_isa() == Isa::Avx512.
#pragma once
#include <cstdint>

#include "kernels/cpu/thread_pool.h"
#include "kernels/dtype.h"

namespace brisk::cpu::avx512 {

// Same contract as cpu::matmul. Returns false, touching nothing, for a dtype
// this ISA has no variant of (the caller then runs the AVX2 one). A dtype it
// does handle is handled for every M with one summation order, so results
// stay independent of how many rows share a call.
bool matmul(ThreadPool& pool, float* y, const float* x, const void* w, DType wt, int M, int N, int K,
            const float* row_scales);

// W8A8 (same contract as cpu::matmul_w8a8): AVX-512 VNNI dot products.
// Returns false when it cannot run.
bool matmul_w8a8(ThreadPool& pool, float* y, const float* x, const int8_t* w, const float* row_scales, int M,
                 int N, int K);

// W8A24 (same contract as cpu::matmul_w8a24): three AVX-512 VNNI dot
// products per weight vector. Returns false when it cannot run.
bool matmul_w8a24(ThreadPool& pool, float* y, const float* x, const int8_t* w, const float* row_scales, int M,
                  int N, int K);

// FP8 weights (E4M3 / E5M2, a scale per row) through BF16 dot products:
// activations carried as two BF16 each (16 significant bits), the codes
// mapped to BF16 by table lookups, vdpbf16ps (order in matmul_avx512.cpp).
// Returns false, touching nothing, for another dtype, without row scales,
// or on a CPU without AVX-512 VBMI; the caller has checked the rest of the
// ISA (cpu::matmul_fp8_dpbf16 runs it only when active_isa() is AVX-512,
// which includes BF16).
bool matmul_fp8_dpbf16(ThreadPool& pool, float* y, const float* x, const uint8_t* w, DType wt,
                       const float* row_scales, int M, int N, int K);

// Q8_0 W8A16 (same contract as cpu::matmul_q8_0_w16): activations as 16-bit
// integers, vpmaddwd per block. Returns false, touching nothing, when K is
// not a multiple of 32.
bool matmul_q8_0_w16(ThreadPool& pool, float* y, const float* x, const void* w, int M, int N, int K);

}  // namespace brisk::cpu::avx512
