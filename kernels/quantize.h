// F32 weight matrices to and from every weight dtype, row by row. The engine
// calls this at load time on whole models, so it runs on several threads.
#pragma once
#include <cstdint>

#include "kernels/cpu/thread_pool.h"
#include "kernels/dtype.h"

namespace brisk {

// Writes src [rows, cols] F32 into dst (rows * row_bytes(t, cols) bytes) as type t:
//   F32 (copy), F16 / BF16 (round to nearest even);
//   Q8_0 (cols % 32 == 0), as GGUF does it: d = amax / 127 per block of 32, stored as F16;
//     q = roundf(x * (1 / d)) (half away from zero);
//   I8: scale = amax / 127, q = nearbyint(x / scale) (half to even);
//   F8_E4M3: scale = amax / 448, F8_E5M2: scale = amax / 57344, q = fp32_to_fp8_*(x / scale).
// For the scaled dtypes row_scales[r] receives row r's scale (value = q * scale); amax is the
// row's, or with per_tensor the whole matrix's (every row then gets the same scale). An all-zero
// row (or matrix) gets scale 1 and q = 0. For the other dtypes row_scales may be null; when given,
// every entry is set to 1. src must be finite.
void quantize_rows(void* dst, float* row_scales, const float* src, DType t, int64_t rows, int64_t cols,
                   bool per_tensor = false);
// The same on the threads of `pool`.
void quantize_rows(ThreadPool& pool, void* dst, float* row_scales, const float* src, DType t, int64_t rows,
                   int64_t cols, bool per_tensor = false);

// The inverse: dst [rows, cols] F32 from src of type t. Scaled dtypes give q * row_scales[r] (one
// F32 multiply, as ref::embed); row_scales is ignored for the others.
void dequantize_rows(float* dst, const void* src, const float* row_scales, DType t, int64_t rows,
                     int64_t cols);

}  // namespace brisk
