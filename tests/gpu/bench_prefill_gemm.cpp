// The prefill GEMMs of one layer, timed through the CUDA backend's own
// matmul (activation conversion or quantization, the GEMM, any rescale), per
// weight type, on the 1.1B shape by default:
//
//   gpu_bench_prefill_gemm [--tokens M] [--dims dim,hidden,n_heads,n_kv_heads] [--reps R]
//
// Prints one JSON object: per dtype the milliseconds of the layer's seven
// projections (q, k, v, o, gate, up, down) at M tokens, TFLOP/s, and the
// ratio to F16 (inputs shared as in the model: q/k/v one, gate/up one, o and
// down their own, so each is converted once); then "gemm_only": the same
// seven GEMMs alone (cuBLAS F16 and cuBLASLt FP8 E4M3 with its per-token and
// per-channel scales, on inputs already in those types), the tensor-core
// work without the conversion or quantization passes, FP8 twice (the second
// time with cuBLASLt's fast accumulation, --fp8-fast-accum); then
// "fp8_algo_sweep": every algorithm cuBLASLt offers for each FP8 GEMM timed,
// the heuristic's first choice against the fastest; then "gemm_matrix": the
// GEMMs alone again, all through cuBLASLt, F16 / FP8 / FP8 with fast
// accumulation × F32 or half-precision outputs × the seven projections
// separate or merged (q/k/v one, gate/up one), with FP8's ratio to F16 for
// each. It measures; it asserts nothing (run-gpu-checks.sh judges).
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/gemm.h"
#include "brisk/error.h"
#include "kernels/dtype.h"
#include "model/model_weights.h"
#include "tests/gpu/bench_support.h"

using namespace brisk;
using gpubench::HostWeight;
using gpubench::random_weight;

namespace {

struct Proj {
  const char* name;
  int N, K;
};

// One cuBLASLt GEMM out[M, N] = x[M, K] * w[N, K]^T in the backend's "TN"
// form: inputs F16, or FP8 E4M3 with per-token and per-channel scales
// (outer-vector scaling, optionally fast accumulation), output F32, F16 or
// BF16, and up to max_algos algorithms from the heuristic. ok is false
// where this cuBLASLt or device has none.
struct LtGemm {
  cublasLtHandle_t lt;
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  std::vector<cublasLtMatmulHeuristicResult_t> algos;
  bool ok = false;

  LtGemm(cublasLtHandle_t h, cudaDataType in, cudaDataType out_type, bool fast, const void* xs,
         const void* ws, int M, int N, int K, size_t blas_ws_bytes, int max_algos)
      : lt(h) {
    ok = cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F) == CUBLAS_STATUS_SUCCESS;
    auto set = [&](cublasLtMatmulDescAttributes_t attr, const void* v, size_t n) {
      ok = ok && cublasLtMatmulDescSetAttribute(desc, attr, v, n) == CUBLAS_STATUS_SUCCESS;
    };
    const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    set(CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta);
    set(CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb);
    if (in == CUDA_R_8F_E4M3) {
      const int32_t mode = CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F;
      const int8_t fast_flag = fast ? 1 : 0;
      set(CUBLASLT_MATMUL_DESC_FAST_ACCUM, &fast_flag, sizeof fast_flag);
      set(CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &mode, sizeof mode);
      set(CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &mode, sizeof mode);
      set(CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &ws, sizeof ws);
      set(CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &xs, sizeof xs);
    }
    cublasLtMatmulPreference_t pref = nullptr;
    ok = ok && cublasLtMatrixLayoutCreate(&a, in, K, N, K) == CUBLAS_STATUS_SUCCESS &&
         cublasLtMatrixLayoutCreate(&b, in, K, M, K) == CUBLAS_STATUS_SUCCESS &&
         cublasLtMatrixLayoutCreate(&c, out_type, N, M, N) == CUBLAS_STATUS_SUCCESS &&
         cublasLtMatmulPreferenceCreate(&pref) == CUBLAS_STATUS_SUCCESS;
    const uint64_t wsb = blas_ws_bytes;
    ok = ok && cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsb,
                                                    sizeof wsb) == CUBLAS_STATUS_SUCCESS;
    algos.resize(max_algos);
    int found = 0;
    ok = ok && cublasLtMatmulAlgoGetHeuristic(lt, desc, a, b, c, c, pref, max_algos, algos.data(), &found) ==
                   CUBLAS_STATUS_SUCCESS;
    algos.resize(ok ? found : 0);
    ok = ok && found > 0;
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
  }
  ~LtGemm() {
    for (cublasLtMatrixLayout_t l : {a, b, c})
      if (l) cublasLtMatrixLayoutDestroy(l);
    if (desc) cublasLtMatmulDescDestroy(desc);
  }
  LtGemm(const LtGemm&) = delete;
  LtGemm& operator=(const LtGemm&) = delete;
  bool run(size_t k, const void* w, const void* x, void* out, void* blas_ws, size_t blas_ws_bytes,
           cudaStream_t st) const {
    const float alpha = 1.0f, beta = 0.0f;
    return algos[k].state == CUBLAS_STATUS_SUCCESS &&
           cublasLtMatmul(lt, desc, &alpha, w, a, x, b, &beta, out, c, out, c, &algos[k].algo, blas_ws,
                          blas_ws_bytes, st) == CUBLAS_STATUS_SUCCESS;
  }
};

// Every algorithm cuBLASLt's heuristic offers (up to 16) for each of the
// seven FP8 GEMMs (per-token and per-channel scales), each timed alone: the
// heuristic's first choice summed over the GEMMs, and the fastest of each —
// whether choosing by measurement would move FP8 against F16.
struct AlgoSweep {
  double first_ms = 0, best_ms = 0;
  int timed = 0;
  bool complete = true;  // every GEMM had an algorithm that ran
};
AlgoSweep sweep_fp8_algos(const std::vector<Proj>& projs, int M, const void* x, const std::vector<void*>& w,
                          void* out, const void* xs, const void* ws, void* blas_ws, size_t blas_ws_bytes,
                          cudaStream_t st, int reps, bool fast) {
  AlgoSweep r;
  cublasLtHandle_t lt = nullptr;
  if (cublasLtCreate(&lt) != CUBLAS_STATUS_SUCCESS) return AlgoSweep{0, 0, 0, false};
  for (size_t i = 0; i < projs.size(); ++i) {
    const LtGemm g(lt, CUDA_R_8F_E4M3, CUDA_R_32F, fast, xs, ws, M, projs[i].N, projs[i].K, blas_ws_bytes,
                   16);
    double first = 0, best = 0;
    for (size_t k = 0; k < g.algos.size(); ++k) {
      auto run = [&] { return g.run(k, w[i], x, out, blas_ws, blas_ws_bytes, st); };
      if (!run() || cudaStreamSynchronize(st) != cudaSuccess) {
        cudaGetLastError();
        continue;
      }
      const auto t0 = std::chrono::steady_clock::now();
      bool all = true;
      for (int rr = 0; rr < reps; ++rr) all = all && run();
      if (cudaStreamSynchronize(st) != cudaSuccess || !all) {
        cudaGetLastError();
        continue;
      }
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / reps;
      ++r.timed;
      if (first == 0) first = ms;  // the heuristic's first choice (or the first that ran)
      if (best == 0 || ms < best) best = ms;
    }
    if (best == 0) r.complete = false;
    r.first_ms += first;
    r.best_ms += best;
  }
  cublasLtDestroy(lt);
  return r;
}

// Device buffers for timing GEMMs alone: an input of M x K (2 bytes an
// element: F16 or E4M3), an F32 output of M x N (the largest K and N of
// every list), unit per-token and per-channel scales, cuBLAS's workspace,
// a stream, and each GEMM of each list its own weights. Filled with 0x38:
// 0x3838 is 0.5 in F16 and 0x38 is 1.0 in E4M3, finite in either type.
struct GemmBuffers {
  static constexpr size_t kBlasWs = 64 << 20;
  void *x = nullptr, *out = nullptr, *xs = nullptr, *ws = nullptr, *blas_ws = nullptr;
  std::vector<std::vector<void*>> w;  // [list][GEMM]
  cudaStream_t st = nullptr;

  GemmBuffers() = default;
  GemmBuffers(const GemmBuffers&) = delete;
  GemmBuffers& operator=(const GemmBuffers&) = delete;
  // Separate from the constructor so that the destructor frees what an
  // allocation that throws midway leaves.
  void alloc(const std::vector<const std::vector<Proj>*>& lists, int M) {
    auto ok = [](cudaError_t e) {
      if (e != cudaSuccess) throw Error(std::string("GEMM buffers: ") + cudaGetErrorString(e));
    };
    int maxN = 0, maxK = 0;
    for (const auto* list : lists)
      for (const Proj& p : *list) maxN = std::max(maxN, p.N), maxK = std::max(maxK, p.K);
    ok(cudaMalloc(&x, (size_t)M * maxK * 2));
    ok(cudaMalloc(&out, (size_t)M * maxN * 4));
    ok(cudaMalloc(&xs, (size_t)M * 4));
    ok(cudaMalloc(&ws, (size_t)maxN * 4));
    ok(cudaMalloc(&blas_ws, kBlasWs));
    ok(cudaMemset(x, 0x38, (size_t)M * maxK * 2));
    const std::vector<float> ones(std::max(M, maxN), 1.0f);
    ok(cudaMemcpy(xs, ones.data(), (size_t)M * 4, cudaMemcpyHostToDevice));
    ok(cudaMemcpy(ws, ones.data(), (size_t)maxN * 4, cudaMemcpyHostToDevice));
    for (const auto* list : lists) {
      w.emplace_back();
      for (const Proj& p : *list) {
        const size_t bytes = (size_t)p.N * p.K * 2;
        w.back().push_back(nullptr);
        ok(cudaMalloc(&w.back().back(), bytes));
        ok(cudaMemset(w.back().back(), 0x38, bytes));
      }
    }
    ok(cudaStreamCreate(&st));
  }
  ~GemmBuffers() {
    if (st) cudaStreamDestroy(st);
    for (void* p : {x, out, xs, ws, blas_ws}) cudaFree(p);
    for (const auto& list : w)
      for (void* p : list) cudaFree(p);
  }
  void sync() const {
    const cudaError_t e = cudaStreamSynchronize(st);
    if (e != cudaSuccess) throw Error(std::string("GEMM stream: ") + cudaGetErrorString(e));
  }
};

// The seven GEMMs alone, F16 and FP8 E4M3 (scaled) through the backend's
// Gemm, on inputs already in those types (b.w[0] holds their weights).
void gemm_only(const std::vector<Proj>& projs, int M, int reps, double flops, const GemmBuffers& b) {
  const size_t P = projs.size();
  void *x = b.x, *out = b.out, *xs = b.xs, *ws = b.ws, *blas_ws = b.blas_ws;
  const std::vector<void*>& w = b.w[0];
  const size_t kBlasWs = GemmBuffers::kBlasWs;
  cudaStream_t st = b.st;
  try {
    cudabe::Gemm g(st, blas_ws, kBlasWs, /*fp8_fast_accum=*/false), fast_g(st, blas_ws, kBlasWs, true);
    bool scaled = true, fast_scaled = true;
    auto f16 = [&] {
      for (size_t i = 0; i < P; ++i)
        g.gemm_half(static_cast<float*>(out), x, w[i], CUDA_R_16F, M, projs[i].N, projs[i].K);
    };
    // A GEMM cuBLASLt has no FP8 algorithm for is an error here, never a time for work not done.
    auto fp8_with = [&](cudabe::Gemm& gg, bool& all_scaled) {
      for (size_t i = 0; i < P; ++i) {
        const auto* xi = static_cast<const uint8_t*>(x);
        const auto* wi = static_cast<const uint8_t*>(w[i]);
        if (!gg.gemm_f8_scaled(static_cast<float*>(out), xi, wi, static_cast<const float*>(xs),
                               static_cast<const float*>(ws), M, projs[i].N, projs[i].K)) {
          all_scaled = false;
          if (!gg.gemm_f8(static_cast<float*>(out), xi, wi, M, projs[i].N, projs[i].K))
            throw Error(std::string("no cuBLASLt FP8 algorithm for ") + projs[i].name +
                        (gg.fp8_fast_accum() ? " with fast accumulation" : ""));
        }
      }
    };
    auto fp8 = [&] { fp8_with(g, scaled); };
    auto fp8_fast = [&] { fp8_with(fast_g, fast_scaled); };
    auto time_ms = [&](auto&& run) {
      run();
      b.sync();
      const auto t0 = std::chrono::steady_clock::now();
      for (int r = 0; r < reps; ++r) run();
      b.sync();
      return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / reps;
    };
    const double f16_ms = time_ms(f16), fp8_ms = time_ms(fp8), fast_ms = time_ms(fp8_fast);
    const AlgoSweep sw = sweep_fp8_algos(projs, M, x, w, out, xs, ws, blas_ws, kBlasWs, st, reps, false),
                    swf = sweep_fp8_algos(projs, M, x, w, out, xs, ws, blas_ws, kBlasWs, st, reps, true);
    std::printf(
        ",\n \"gemm_only\": {\"f16_ms\": %.4f, \"fp8_ms\": %.4f, \"f16_tflops\": %.1f, "
        "\"fp8_tflops\": %.1f, \"fp8_vs_f16\": %.3f, \"fp8_fast_accum_ms\": %.4f, "
        "\"fp8_fast_accum_tflops\": %.1f, \"fp8_fast_accum_vs_f16\": %.3f, \"fp8_scaled\": %s, "
        "\"fp8_fast_accum_scaled\": %s}",
        f16_ms, fp8_ms, flops / (f16_ms * 1e-3) / 1e12, flops / (fp8_ms * 1e-3) / 1e12, f16_ms / fp8_ms,
        fast_ms, flops / (fast_ms * 1e-3) / 1e12, f16_ms / fast_ms, scaled ? "true" : "false",
        fast_scaled ? "true" : "false");
    std::printf(
        ",\n \"fp8_algo_sweep\": {\"heuristic_ms\": %.4f, \"best_ms\": %.4f, \"best_vs_f16\": %.3f, "
        "\"fast_accum_heuristic_ms\": %.4f, \"fast_accum_best_ms\": %.4f, \"fast_accum_best_vs_f16\": %.3f, "
        "\"algorithms_timed\": %d, \"complete\": %s}",
        sw.first_ms, sw.best_ms, sw.best_ms > 0 ? f16_ms / sw.best_ms : 0.0, swf.first_ms, swf.best_ms,
        swf.best_ms > 0 ? f16_ms / swf.best_ms : 0.0, sw.timed + swf.timed,
        sw.complete && swf.complete ? "true" : "false");
  } catch (const std::exception& e) {
    std::printf(",\n \"gemm_only\": {\"error\": \"%s\"}", e.what());
  }
}

// The layer's GEMMs alone (cuBLASLt, inputs already in their types) by
// input type, output type and grouping: F16, FP8 E4M3 (scaled) and FP8 with
// fast accumulation; F32 outputs (what the engine writes: its activations
// are F32) or half outputs (F16 for F16 inputs, BF16 for FP8, as engines
// with half-precision activations write); the seven projections separate
// (as the engine runs them) or merged (q/k/v one GEMM, gate/up one, as
// engines that fuse those weights run them). The F32 output is the same
// bytes for both input types, so it weighs more in FP8's shorter time, and
// k and v (N = 256 on the 1.1B shape) are small GEMMs: this says which of
// the two holds FP8 under 1.5x F16, if either.
void gemm_matrix(const std::vector<Proj>& separate, const std::vector<Proj>& merged, int M, int reps,
                 double flops, const GemmBuffers& b) {
  const void *x = b.x, *xs = b.xs, *ws = b.ws;
  void *out = b.out, *blas_ws = b.blas_ws;
  const std::vector<void*>&w_sep = b.w[0], &w_mer = b.w[1];
  const size_t kBlasWs = GemmBuffers::kBlasWs;
  cudaStream_t st = b.st;
  cublasLtHandle_t lt = nullptr;
  try {
    if (cublasLtCreate(&lt) != CUBLAS_STATUS_SUCCESS) throw Error("gemm_matrix: cublasLtCreate failed");

    struct Input {
      const char* name;
      cudaDataType type, half_out;
      bool fast;
    };
    const Input inputs[] = {{"f16", CUDA_R_16F, CUDA_R_16F, false},
                            {"fp8-e4m3", CUDA_R_8F_E4M3, CUDA_R_16BF, false},
                            {"fp8-e4m3-fast-accum", CUDA_R_8F_E4M3, CUDA_R_16BF, true}};
    // ms[input][half][merged]; 0 where cuBLASLt had no algorithm. The JSON
    // is printed whole at the end, so an error midway leaves it well formed.
    double ms[3][2][2] = {};
    std::string rows;
    char buf[256];
    for (int in = 0; in < 3; ++in)
      for (int half = 0; half < 2; ++half)
        for (int mer = 0; mer < 2; ++mer) {
          const std::vector<Proj>& projs = mer ? merged : separate;
          const std::vector<void*>& w = mer ? w_mer : w_sep;
          const cudaDataType ot = half ? inputs[in].half_out : CUDA_R_32F;
          std::vector<std::unique_ptr<LtGemm>> g;
          std::string missing;
          for (const Proj& p : projs) {
            g.push_back(std::make_unique<LtGemm>(lt, inputs[in].type, ot, inputs[in].fast, xs, ws, M, p.N,
                                                 p.K, kBlasWs, 1));
            if (!g.back()->ok && missing.empty()) missing = p.name;
          }
          const char* out_name = ot == CUDA_R_32F ? "f32" : ot == CUDA_R_16F ? "f16" : "bf16";
          std::snprintf(buf, sizeof buf, "%s\n   {\"in\": \"%s\", \"out\": \"%s\", \"projections\": \"%s\", ",
                        rows.empty() ? "" : ",", inputs[in].name, out_name, mer ? "merged" : "separate");
          rows += buf;
          if (!missing.empty()) {
            rows += "\"error\": \"no cuBLASLt algorithm for " + missing + "\"}";
            continue;
          }
          auto layer = [&] {
            bool all = true;
            for (size_t i = 0; i < g.size(); ++i)
              all = g[i]->run(0, w[i], x, out, blas_ws, kBlasWs, st) && all;
            return all;
          };
          const bool ran = layer();
          b.sync();
          if (!ran) {
            rows += "\"error\": \"cublasLtMatmul failed\"}";
            continue;
          }
          const auto t0 = std::chrono::steady_clock::now();
          for (int r = 0; r < reps; ++r) layer();
          b.sync();
          const double t =
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / reps;
          ms[in][half][mer] = t;
          std::snprintf(buf, sizeof buf, "\"ms\": %.4f, \"tflops\": %.1f}", t, flops / (t * 1e-3) / 1e12);
          rows += buf;
        }
    std::string json = "\"rows\": [" + rows + "]";
    // FP8 against F16 with the same outputs and grouping.
    for (int in = 1; in < 3; ++in) {
      auto ratio = [&](int half, int mer) {
        return ms[in][half][mer] > 0 && ms[0][half][mer] > 0 ? ms[0][half][mer] / ms[in][half][mer] : 0.0;
      };
      std::snprintf(buf, sizeof buf,
                    ",\n  \"%s_vs_f16\": {\"f32_out_separate\": %.3f, \"f32_out_merged\": %.3f, "
                    "\"half_out_separate\": %.3f, \"half_out_merged\": %.3f}",
                    inputs[in].name, ratio(0, 0), ratio(0, 1), ratio(1, 0), ratio(1, 1));
      json += buf;
    }
    std::printf(",\n \"gemm_matrix\": {%s}", json.c_str());
  } catch (const std::exception& e) {
    std::printf(",\n \"gemm_matrix\": {\"error\": \"%s\"}", e.what());
  }
  if (lt) cublasLtDestroy(lt);
}

}  // namespace

int main(int argc, char** argv) {
  int M = 8192, reps = 10;
  int dim = 2048, hidden = 5632, n_heads = 32, n_kv_heads = 4;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--tokens")
      M = std::stoi(argv[i + 1]);
    else if (a == "--reps")
      reps = std::stoi(argv[i + 1]);
    else if (a == "--dims")
      std::sscanf(argv[i + 1], "%d,%d,%d,%d", &dim, &hidden, &n_heads, &n_kv_heads);
  }
  const int hd = dim / n_heads, kv = n_kv_heads * hd;
  const Proj projs[] = {{"q", dim, dim},       {"k", kv, dim},      {"v", kv, dim},       {"o", dim, dim},
                        {"gate", hidden, dim}, {"up", hidden, dim}, {"down", dim, hidden}};
  double flops = 0;
  for (const Proj& p : projs) flops += 2.0 * M * p.N * p.K;

  struct Variant {
    const char* name;
    DType dt;
    bool w8a8;
    bool fast = false;
  };
  const Variant variants[] = {{"f16", DType::F16, false},
                              {"bf16", DType::BF16, false},
                              {"fp8-e4m3", DType::F8_E4M3, false},
                              {"fp8-e4m3-fast-accum", DType::F8_E4M3, false, true},
                              {"int8-w8a8", DType::I8, true}};
  std::printf("{\"tokens\": %d, \"dims\": [%d, %d, %d, %d], \"gflop_per_layer\": %.2f, \"results\": [", M,
              dim, hidden, n_heads, n_kv_heads, flops / 1e9);
  double f16_ms = 0;
  bool first = true;
  std::mt19937 rng(7);
  for (const Variant& v : variants) {
    try {
      BackendOptions o;
      o.int8_activations = v.w8a8;
      o.fp8_fast_accum = v.fast;
      std::unique_ptr<Backend> be = make_backend("cuda", o);
      std::vector<HostWeight> hw;
      std::vector<Tensor> w;
      for (const Proj& p : projs) {
        hw.push_back(random_weight(rng, v.dt, p.N, p.K));
        w.push_back(be->weight(hw.back().tensor(v.dt, p.N, p.K)));
      }
      // The model's inputs: q, k and v share the normalised x, gate and up
      // share the FFN's, o and down have their own; the backend converts or
      // quantizes an input once for the GEMMs that share it back to back.
      Tensor xs[4], out = be->alloc(DType::F32, M, hidden);
      std::vector<float> hx((size_t)M * hidden);
      std::uniform_real_distribution<float> u(-1.0f, 1.0f);
      for (float& f : hx) f = u(rng);
      for (Tensor& t : xs) {
        t = be->alloc(DType::F32, M, hidden);
        be->upload(t, hx.data(), M);
      }
      const int input_of[7] = {0, 0, 0, 1, 2, 2, 3};  // q k v o gate up down
      float probe = 0;
      Tensor one = out;
      one.cols = 1;
      auto layer = [&] {
        for (size_t i = 0; i < w.size(); ++i) {
          Tensor xi = xs[input_of[i]], oi = out;
          xi.cols = projs[i].K;
          oi.cols = projs[i].N;
          be->matmul(oi, xi, w[i], M);
        }
      };
      const int64_t scaled0 = cuda_fp8_scaled_gemms();
      layer();  // plans, workspace, heuristics
      be->download(&probe, one, 1);
      const auto t0 = std::chrono::steady_clock::now();
      for (int r = 0; r < reps; ++r) layer();
      be->download(&probe, one, 1);
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / reps;
      if (v.dt == DType::F16) f16_ms = ms;
      std::printf(
          "%s\n  {\"dtype\": \"%s\", \"ms_per_layer\": %.4f, \"tflops\": %.1f, \"vs_f16\": %.3f, "
          "\"fp8_scaled_gemms\": %lld}",
          first ? "" : ",", v.name, ms, flops / (ms * 1e-3) / 1e12, f16_ms > 0 ? f16_ms / ms : 0.0,
          (long long)(cuda_fp8_scaled_gemms() - scaled0));
    } catch (const std::exception& e) {
      std::printf("%s\n  {\"dtype\": \"%s\", \"error\": \"%s\"}", first ? "" : ",", v.name, e.what());
    }
    first = false;
    std::fflush(stdout);
  }
  std::printf("\n]");
  const std::vector<Proj> separate(std::begin(projs), std::end(projs));
  const std::vector<Proj> merged = {
      {"qkv", dim + 2 * kv, dim}, {"o", dim, dim}, {"gate_up", 2 * hidden, dim}, {"down", dim, hidden}};
  GemmBuffers bufs;
  try {
    bufs.alloc({&separate, &merged}, M);
    gemm_only(separate, M, reps, flops, bufs);
    gemm_matrix(separate, merged, M, reps, flops, bufs);
  } catch (const std::exception& e) {
    std::printf(",\n \"gemm_only\": {\"error\": \"%s\"},\n \"gemm_matrix\": {\"error\": \"%s\"}", e.what(),
                e.what());
  }
  std::printf("}\n");
  return 0;
}
