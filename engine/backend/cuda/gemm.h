// cuBLAS / cuBLASLt GEMMs of the CUDA backend (CUDA translation units only).
//
// Every GEMM is out[n, N] = x[n, K] * w[N, K]^T with row-major activations
// and weights. cuBLAS is column-major, so it computes the transpose:
// out^T (N x n, ld N) = op(w: K x N col-major, ld K)^T * (x^T: K x n, ld K),
// i.e. the "TN" layout, which is also the one cuBLASLt's FP8 and INT8 tensor
// core kernels require.
#pragma once
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <tuple>

namespace brisk::cudabe {

class Gemm {
 public:
  // `workspace` (bytes) is handed to cuBLAS and cuBLASLt so neither allocates
  // during a CUDA graph capture. fp8_fast_accum: FP8 GEMMs keep their
  // partial sums in the tensor cores' own accumulator over the whole K
  // instead of promoting them to F32 every few steps (faster on Hopper, less
  // exact: CUBLASLT_MATMUL_DESC_FAST_ACCUM).
  Gemm(cudaStream_t stream, void* workspace, size_t workspace_bytes, bool fp8_fast_accum);
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;

  // All F32, TF32 off: the F32 path must stay as close to the CPU as cuBLAS allows.
  void sgemm(float* out, const float* x, const float* w, int n, int N, int K);
  // x and w both F16 or both BF16 (type), out F32, F32 accumulate.
  void gemm_half(float* out, const void* x, const void* w, cudaDataType type, int n, int N, int K);
  // INT8 x INT8 -> INT32 [n, N] (cuBLASLt). False, having done nothing, when
  // cuBLASLt has no algorithm for the shape (the caller falls back).
  bool gemm_i8(int32_t* acc, const int8_t* x, const int8_t* w, int n, int N, int K);
  // E4M3 x E4M3 -> F32 [n, N] with unit scales (cuBLASLt, sm_89+); false as above.
  bool gemm_f8(float* acc, const uint8_t* x, const uint8_t* w, int n, int N, int K);
  // E4M3 x E4M3 -> F32 [n, N] with the scales applied by cuBLASLt itself
  // (outer-vector scaling: out[t, j] = acc * x_scales[t] * w_scales[j]), so no
  // rescale pass reads and writes the output again. False, having done
  // nothing, where this cuBLASLt or device has no such kernel (then
  // gemm_f8 and a rescale).
  bool gemm_f8_scaled(float* out, const uint8_t* x, const uint8_t* w, const float* x_scales,
                      const float* w_scales, int n, int N, int K);
  // How many GEMMs ran through gemm_f8_scaled (for benchmarks to say which path ran).
  int64_t f8_scaled_calls() const { return f8_scaled_calls_; }
  bool fp8_fast_accum() const { return fp8_fast_accum_; }

 private:
  struct LtPlan {
    bool ok = false;
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algo{};
  };
  // Descriptors and the heuristic's algorithm, made once per (kind, n, N, K).
  LtPlan& lt_plan(int kind, int n, int N, int K);

  cudaStream_t stream_;
  void* ws_;
  size_t ws_bytes_;
  cublasHandle_t blas_ = nullptr;
  cublasLtHandle_t lt_ = nullptr;
  std::map<std::tuple<int, int, int, int>, LtPlan> plans_;
  int64_t f8_scaled_calls_ = 0;
  bool fp8_fast_accum_ = false;
};

}  // namespace brisk::cudabe
