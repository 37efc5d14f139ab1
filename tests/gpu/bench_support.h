// Helpers shared by the GPU benchmarks (tests/gpu/bench_*.cpp): random host
// weights of any weight dtype, and comma-separated option lists.
#pragma once
#include <chrono>
#include <cstdint>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "brisk/error.h"
#include "kernels/dtype.h"
#include "model/model_weights.h"

namespace brisk::gpubench {

// Random codes of `dt` [rows, cols] (finite, unit range; F8 E4M3 spread over
// its range), with row scales where the type has them, and (copies - 1) x 64
// bytes of zeros after them: copy l starts 64 * l bytes in. The CUDA backend
// uploads a weight once per host address, so distinct starts give distinct
// device copies.
struct HostWeight {
  std::vector<uint8_t> bytes;
  std::vector<float> scales;
  WeightTensor tensor(DType dt, int64_t rows, int64_t cols, int copy = 0, const char* name = "bench") const {
    WeightTensor t;
    t.name = name;
    t.data = bytes.data() + 64 * (size_t)copy;
    t.dtype = dt;
    t.rows = rows;
    t.cols = cols;
    t.scales = scales.empty() ? nullptr : scales.data();
    return t;
  }
};

inline HostWeight random_weight(std::mt19937& rng, DType dt, int64_t rows, int64_t cols, int copies = 1) {
  HostWeight w;
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  w.bytes.resize(row_bytes(dt, cols) * rows + 64 * (size_t)(copies - 1));
  if (is_scaled(dt)) w.scales.assign(rows, 0.01f);
  const size_t n = (size_t)rows * cols;
  for (size_t i = 0; i < n; ++i) {
    const float v = u(rng);
    switch (dt) {
      case DType::F32:
        reinterpret_cast<float*>(w.bytes.data())[i] = v;
        break;
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
        throw Error(std::string("bench: unsupported weight dtype ") + dtype_name(dt));
    }
  }
  return w;
}

// Microseconds per call of op(i) for i = 0 .. reps - 1 issued back to back
// (after one untimed call), ended by one synchronising sync().
template <class Op, class Sync>
double time_us(int reps, Op op, Sync sync) {
  op(0);
  sync();
  const auto t0 = std::chrono::steady_clock::now();
  for (int r = 0; r < reps; ++r) op(r);
  sync();
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / reps;
}

inline std::vector<int> int_list(const std::string& s) {
  std::vector<int> out;
  std::stringstream ss(s);
  for (std::string t; std::getline(ss, t, ',');) out.push_back(std::stoi(t));
  return out;
}

inline std::vector<std::string> str_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string t; std::getline(ss, t, ',');) out.push_back(t);
  return out;
}

}  // namespace brisk::gpubench
