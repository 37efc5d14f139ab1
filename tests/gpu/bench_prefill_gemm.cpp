// The prefill GEMMs of one layer, timed through the CUDA backend's own
// matmul (activation conversion or quantization, the GEMM, any rescale), per
// weight type, on the 1.1B shape by default:
//
//   gpu_bench_prefill_gemm [--tokens M] [--dims dim,hidden,n_heads,n_kv_heads] [--reps R]
//
// Prints one JSON object: per dtype the milliseconds of the layer's seven
// projections (q, k, v, o, gate, up, down) at M tokens, TFLOP/s, and the
// ratio to F16. It measures; it asserts nothing (run-gpu-checks.sh judges).
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/cuda/cuda_backend.h"
#include "brisk/error.h"
#include "kernels/dtype.h"
#include "model/model_weights.h"

using namespace brisk;

namespace {

struct Proj {
  const char* name;
  int N, K;
};

// Random weights of `dt` [N, K] (finite codes; unit-range values), with row scales where the type has them.
struct HostWeight {
  std::vector<uint8_t> bytes;
  std::vector<float> scales;
  WeightTensor tensor(DType dt, int N, int K) const {
    WeightTensor t;
    t.name = "bench";
    t.data = bytes.data();
    t.dtype = dt;
    t.rows = N;
    t.cols = K;
    t.scales = scales.empty() ? nullptr : scales.data();
    return t;
  }
};
HostWeight random_weight(std::mt19937& rng, DType dt, int N, int K) {
  HostWeight w;
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  const size_t n = (size_t)N * K;
  w.bytes.resize(row_bytes(dt, K) * N);
  if (is_scaled(dt)) w.scales.assign(N, 0.01f);
  for (size_t i = 0; i < n; ++i) {
    const float v = u(rng);
    switch (dt) {
      case DType::F16:
        reinterpret_cast<uint16_t*>(w.bytes.data())[i] = fp32_to_fp16(v);
        break;
      case DType::BF16:
        reinterpret_cast<uint16_t*>(w.bytes.data())[i] = fp32_to_bf16(v);
        break;
      case DType::F8_E4M3:
        w.bytes[i] = fp32_to_fp8_e4m3(v * 400.0f);
        break;
      case DType::I8:
        w.bytes[i] = (uint8_t)(int8_t)(v * 127.0f);
        break;
      default:
        throw Error("bench: unsupported dtype");
    }
  }
  return w;
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
  const Proj projs[] = {{"q", dim, dim},       {"k", kv, dim},         {"v", kv, dim},       {"o", dim, dim},
                        {"gate", hidden, dim}, {"up", hidden, dim},    {"down", dim, hidden}};
  double flops = 0;
  for (const Proj& p : projs) flops += 2.0 * M * p.N * p.K;

  struct Variant {
    const char* name;
    DType dt;
    bool w8a8;
  };
  const Variant variants[] = {{"f16", DType::F16, false},
                              {"bf16", DType::BF16, false},
                              {"fp8-e4m3", DType::F8_E4M3, false},
                              {"int8-w8a8", DType::I8, true}};
  std::printf("{\"tokens\": %d, \"dims\": [%d, %d, %d, %d], \"gflop_per_layer\": %.2f, \"results\": [", M, dim,
              hidden, n_heads, n_kv_heads, flops / 1e9);
  double f16_ms = 0;
  bool first = true;
  std::mt19937 rng(7);
  for (const Variant& v : variants) {
    try {
      BackendOptions o;
      o.int8_activations = v.w8a8;
      std::unique_ptr<Backend> be = make_backend("cuda", o);
      std::vector<HostWeight> hw;
      std::vector<Tensor> w;
      for (const Proj& p : projs) {
        hw.push_back(random_weight(rng, v.dt, p.N, p.K));
        w.push_back(be->weight(hw.back().tensor(v.dt, p.N, p.K)));
      }
      Tensor x = be->alloc(DType::F32, M, hidden), out = be->alloc(DType::F32, M, hidden);
      std::vector<float> hx((size_t)M * hidden);
      std::uniform_real_distribution<float> u(-1.0f, 1.0f);
      for (float& f : hx) f = u(rng);
      be->upload(x, hx.data(), M);
      float probe = 0;
      Tensor one = out;
      one.cols = 1;
      auto layer = [&] {
        for (size_t i = 0; i < w.size(); ++i) {
          Tensor xi = x, oi = out;
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
      std::printf("%s\n  {\"dtype\": \"%s\", \"ms_per_layer\": %.4f, \"tflops\": %.1f, \"vs_f16\": %.3f, "
                  "\"fp8_scaled_gemms\": %lld}",
                  first ? "" : ",", v.name, ms, flops / (ms * 1e-3) / 1e12, f16_ms > 0 ? f16_ms / ms : 0.0,
                  (long long)(cuda_fp8_scaled_gemms() - scaled0));
    } catch (const std::exception& e) {
      std::printf("%s\n  {\"dtype\": \"%s\", \"error\": \"%s\"}", first ? "" : ",", v.name, e.what());
    }
    first = false;
    std::fflush(stdout);
  }
  std::printf("\n]}\n");
  return 0;
}
