#include <string>

#include "backend/cuda/gemm.h"
#include "brisk/error.h"

namespace brisk::cudabe {

namespace {

void check(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS)
    throw Error(std::string("cuBLAS ") + what + ": " + cublasGetStatusName(s) + " (" +
                cublasGetStatusString(s) + ")");
}

std::string shape(int n, int N, int K) {
  return " [n=" + std::to_string(n) + ", N=" + std::to_string(N) + ", K=" + std::to_string(K) + "]";
}

enum Kind { kInt8 = 0, kFp8 = 1, kFp8Scaled = 2 };

}  // namespace

Gemm::Gemm(cudaStream_t stream, void* workspace, size_t workspace_bytes, bool fp8_fast_accum)
    : stream_(stream), ws_(workspace), ws_bytes_(workspace_bytes), fp8_fast_accum_(fp8_fast_accum) {
  check(cublasCreate(&blas_), "create");
  check(cublasSetStream(blas_, stream_), "set stream");
  check(cublasSetWorkspace(blas_, ws_, ws_bytes_), "set workspace");
  // CUBLAS_DEFAULT_MATH keeps SGEMM in true F32 (TF32 needs
  // CUBLAS_TF32_TENSOR_OP_MATH) while GemmEx on F16/BF16 inputs still uses
  // the tensor cores.
  check(cublasSetMathMode(blas_, CUBLAS_DEFAULT_MATH), "set math mode");
  check(cublasLtCreate(&lt_), "Lt create");
}

Gemm::~Gemm() {
  for (auto& [key, p] : plans_) {
    if (p.a) cublasLtMatrixLayoutDestroy(p.a);
    if (p.b) cublasLtMatrixLayoutDestroy(p.b);
    if (p.c) cublasLtMatrixLayoutDestroy(p.c);
    if (p.desc) cublasLtMatmulDescDestroy(p.desc);
  }
  if (lt_) cublasLtDestroy(lt_);
  if (blas_) cublasDestroy(blas_);
}

void Gemm::sgemm(float* out, const float* x, const float* w, int n, int N, int K) {
  const float alpha = 1.0f, beta = 0.0f;
  check(cublasSgemm(blas_, CUBLAS_OP_T, CUBLAS_OP_N, N, n, K, &alpha, w, K, x, K, &beta, out, N),
        ("sgemm" + shape(n, N, K)).c_str());
}

void Gemm::gemm_half(float* out, const void* x, const void* w, cudaDataType type, int n, int N, int K) {
  const float alpha = 1.0f, beta = 0.0f;
  check(cublasGemmEx(blas_, CUBLAS_OP_T, CUBLAS_OP_N, N, n, K, &alpha, w, type, K, x, type, K, &beta, out,
                     CUDA_R_32F, N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
        ("gemm_ex" + shape(n, N, K)).c_str());
}

Gemm::LtPlan& Gemm::lt_plan(int kind, int n, int N, int K) {
  auto key = std::make_tuple(kind, n, N, K);
  auto it = plans_.find(key);
  if (it != plans_.end()) return it->second;
  LtPlan& p = plans_[key];
  const cudaDataType in = kind == kInt8 ? CUDA_R_8I : CUDA_R_8F_E4M3;
  const char* names[] = {"Lt int8", "Lt fp8", "Lt fp8 scaled"};
  const cudaDataType acc = kind == kInt8 ? CUDA_R_32I : CUDA_R_32F;
  const cublasComputeType_t compute = kind == kInt8 ? CUBLAS_COMPUTE_32I : CUBLAS_COMPUTE_32F;
  const std::string what = std::string(names[kind]) + shape(n, N, K);
  check(cublasLtMatmulDescCreate(&p.desc, compute, acc), what.c_str());
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  check(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta), what.c_str());
  check(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb), what.c_str());
  cublasStatus_t st = CUBLAS_STATUS_SUCCESS;
  if (kind != kInt8 && fp8_fast_accum_) {
    const int8_t fast = 1;
    st = cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_FAST_ACCUM, &fast, sizeof fast);
  }
  if (kind == kFp8Scaled && st == CUBLAS_STATUS_SUCCESS) {
    // A (the weight) scaled per output row, B (the activations) per token.
    // An older cuBLASLt rejects the attribute: that is "no plan", not an error.
    const int32_t mode = CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F;
    st = cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &mode, sizeof mode);
    if (st == CUBLAS_STATUS_SUCCESS)
      st = cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &mode, sizeof mode);
    // The heuristic needs the pointers' presence, not their values; gemm_f8_scaled sets the real ones.
    static const float kDummy = 1.0f;
    const void* dummy = &kDummy;
    if (st == CUBLAS_STATUS_SUCCESS)
      st = cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &dummy, sizeof dummy);
    if (st == CUBLAS_STATUS_SUCCESS)
      st = cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &dummy, sizeof dummy);
  }
  // A = w stored K x N (ld K), B = x stored K x n (ld K), C = D = out N x n (ld N).
  check(cublasLtMatrixLayoutCreate(&p.a, in, K, N, K), what.c_str());
  check(cublasLtMatrixLayoutCreate(&p.b, in, K, n, K), what.c_str());
  check(cublasLtMatrixLayoutCreate(&p.c, acc, N, n, N), what.c_str());
  cublasLtMatmulPreference_t pref = nullptr;
  check(cublasLtMatmulPreferenceCreate(&pref), what.c_str());
  const uint64_t ws = ws_bytes_;
  if (st == CUBLAS_STATUS_SUCCESS)
    st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
  cublasLtMatmulHeuristicResult_t res{};
  int found = 0;
  if (st == CUBLAS_STATUS_SUCCESS)
    st = cublasLtMatmulAlgoGetHeuristic(lt_, p.desc, p.a, p.b, p.c, p.c, pref, 1, &res, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  // No algorithm (or "not supported") is an answer, not an error: the caller
  // dequantizes instead, for this shape from now on.
  p.ok = st == CUBLAS_STATUS_SUCCESS && found > 0 && res.state == CUBLAS_STATUS_SUCCESS;
  if (p.ok) p.algo = res.algo;
  return p;
}

bool Gemm::gemm_i8(int32_t* acc, const int8_t* x, const int8_t* w, int n, int N, int K) {
  LtPlan& p = lt_plan(kInt8, n, N, K);
  if (!p.ok) return false;
  const int32_t alpha = 1, beta = 0;
  check(cublasLtMatmul(lt_, p.desc, &alpha, w, p.a, x, p.b, &beta, acc, p.c, acc, p.c, &p.algo, ws_,
                       ws_bytes_, stream_),
        ("Lt int8 matmul" + shape(n, N, K)).c_str());
  return true;
}

bool Gemm::gemm_f8(float* acc, const uint8_t* x, const uint8_t* w, int n, int N, int K) {
  LtPlan& p = lt_plan(kFp8, n, N, K);
  if (!p.ok) return false;
  const float alpha = 1.0f, beta = 0.0f;
  check(cublasLtMatmul(lt_, p.desc, &alpha, w, p.a, x, p.b, &beta, acc, p.c, acc, p.c, &p.algo, ws_,
                       ws_bytes_, stream_),
        ("Lt fp8 matmul" + shape(n, N, K)).c_str());
  return true;
}

bool Gemm::gemm_f8_scaled(float* out, const uint8_t* x, const uint8_t* w, const float* x_scales,
                          const float* w_scales, int n, int N, int K) {
  LtPlan& p = lt_plan(kFp8Scaled, n, N, K);
  if (!p.ok) return false;
  const std::string what = "Lt fp8 scaled matmul" + shape(n, N, K);
  check(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &w_scales,
                                       sizeof w_scales),
        what.c_str());
  check(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &x_scales,
                                       sizeof x_scales),
        what.c_str());
  const float alpha = 1.0f, beta = 0.0f;
  check(cublasLtMatmul(lt_, p.desc, &alpha, w, p.a, x, p.b, &beta, out, p.c, out, p.c, &p.algo, ws_,
                       ws_bytes_, stream_),
        what.c_str());
  ++f8_scaled_calls_;
  return true;
}

}  // namespace brisk::cudabe
