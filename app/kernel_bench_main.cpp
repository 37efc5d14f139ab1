// brisk-kernel-bench: times the CPU matmul kernels per weight dtype against a
// plain streaming read of the same number of bytes, the bound a memory-bound
// GEMV can reach. The ISA comes from BRISK_ISA (scalar|avx2|avx512).
//
//   brisk-kernel-bench matmul --dtype int8 --M 1 --N 5632 --K 2048 [--w8a8|--w8a24|--dpbf16|--w16] [--threads
//   N]
//   [--iters N]
//                             [--copies N]  (weight copies cycled through; default: >= 512 MiB in all)
//   brisk-kernel-bench stream --bytes N [--threads N] [--iters N]
//   brisk-kernel-bench quantize --dtype D --rows R --cols C [--per-tensor] [--threads N]  (quantize_rows
//   speed)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/huge_page_buffer.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/thread_pool.h"
#include "kernels/dtype.h"
#include "kernels/quantize.h"

using namespace brisk;

namespace {

// Weights cycle through copies totalling at least this much, so every call
// reads them from DRAM as a model's successive layers do (L3 here is 32 MiB).
constexpr size_t kMinWorkingSet = size_t(512) << 20;

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int usage() {
  std::fprintf(
      stderr,
      "usage: brisk-kernel-bench matmul --dtype f32|f16|bf16|q8_0|int8|fp8-e4m3|fp8-e5m2 --M 1 --N 5632 "
      "--K 2048 [--w8a8|--w8a24|--dpbf16|--w16] [--threads N] [--iters N] [--copies N]\n"
      "       brisk-kernel-bench stream --bytes N [--threads N] [--iters N]\n"
      "ISA: BRISK_ISA=scalar|avx2|avx512 (default: the best this CPU has)\n");
  return 2;
}

bool parse_dtype(const std::string& s, DType* t) {
  static const std::map<std::string, DType> names = {
      {"f32", DType::F32}, {"f16", DType::F16},          {"bf16", DType::BF16},        {"q8_0", DType::Q8_0},
      {"int8", DType::I8}, {"fp8-e4m3", DType::F8_E4M3}, {"fp8-e5m2", DType::F8_E5M2},
  };
  const auto it = names.find(s);
  if (it == names.end()) return false;
  *t = it->second;
  return true;
}

struct Args {
  std::map<std::string, std::string> values;
  bool flag(const std::string& k) const { return values.count(k) > 0; }
  long long num(const std::string& k, long long def) const {
    const auto it = values.find(k);
    return it == values.end() ? def : std::atoll(it->second.c_str());
  }
  std::string str(const std::string& k, const std::string& def) const {
    const auto it = values.find(k);
    return it == values.end() ? def : it->second;
  }
};

// Reads `bytes` of buf split over the pool's threads; returns seconds.
uint64_t g_sink = 0;
double stream_once(ThreadPool& pool, const uint64_t* buf, size_t words) {
  const double t0 = now_s();
  std::vector<uint64_t> partial(pool.size() * 8, 0);
  const int64_t chunk_words = 1 << 16;
  const int64_t chunks = (int64_t)((words + chunk_words - 1) / chunk_words);
  pool.parallel_for(
      chunks,
      [&](int64_t c0, int64_t c1) {
        const size_t b = (size_t)c0 * chunk_words, e = std::min(words, (size_t)c1 * chunk_words);
        uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        size_t i = b;
        for (; i + 4 <= e; i += 4) {
          a0 ^= buf[i];
          a1 ^= buf[i + 1];
          a2 ^= buf[i + 2];
          a3 ^= buf[i + 3];
        }
        for (; i < e; ++i) a0 ^= buf[i];
        __atomic_fetch_xor(&g_sink, a0 ^ a1 ^ a2 ^ a3, __ATOMIC_RELAXED);
      },
      1);
  return now_s() - t0;
}

int run_stream(const Args& a, ThreadPool& pool) {
  const size_t bytes = (size_t)a.num("--bytes", 256ll << 20);
  const int iters = (int)a.num("--iters", 20);
  // Several buffers so that a small --bytes still comes from DRAM.
  const size_t words = std::max<size_t>(1, bytes / 8);
  const size_t copies = std::max<size_t>(1, (kMinWorkingSet + bytes - 1) / bytes);
  std::vector<HugePageBuffer> mem;
  std::vector<uint64_t*> bufs;
  mem.reserve(copies);
  for (size_t c = 0; c < copies; ++c) {
    mem.emplace_back(words * 8);
    bufs.push_back(static_cast<uint64_t*>(mem.back().data()));
    for (size_t i = 0; i < words; ++i) bufs[c][i] = i * 0x9e3779b97f4a7c15ull + c;
  }
  for (auto* b : bufs) stream_once(pool, b, words);  // touch every page first
  double total = 0.0, best = 1e30;
  for (int it = 0; it < iters; ++it) {
    const double s = stream_once(pool, bufs[it % copies], words);
    total += s;
    best = std::min(best, s);
  }
  const double mean = total / iters;
  std::printf("stream: %zu bytes, %d threads, %zu copies\n", words * 8, pool.size(), copies);
  std::printf("  time/call %.3f ms (best %.3f ms)\n", mean * 1e3, best * 1e3);
  std::printf("  read GB/s %.2f (best %.2f)\n", words * 8 / mean / 1e9, words * 8 / best / 1e9);
  return 0;
}

int run_matmul(const Args& a, ThreadPool& pool) {
  DType t;
  const std::string dtype = a.str("--dtype", "f32");
  const bool w8a8 = a.flag("--w8a8"), w8a24 = a.flag("--w8a24"), dpbf16 = a.flag("--dpbf16"),
             w16 = a.flag("--w16");
  if (!parse_dtype(dtype, &t)) {
    std::fprintf(stderr, "unknown --dtype '%s'\n", dtype.c_str());
    return usage();
  }
  if ((w8a8 || w8a24) && t != DType::I8) {
    std::fprintf(stderr, "--w8a8 and --w8a24 need --dtype int8 (got '%s')\n", dtype.c_str());
    return 2;
  }
  if (w16 && t != DType::Q8_0) {
    std::fprintf(stderr, "--w16 needs --dtype q8_0 (got '%s')\n", dtype.c_str());
    return 2;
  }
  if (dpbf16 && t != DType::F8_E4M3 && t != DType::F8_E5M2) {
    std::fprintf(stderr, "--dpbf16 needs --dtype fp8-e4m3 or fp8-e5m2 (got '%s')\n", dtype.c_str());
    return 2;
  }
  const int M = (int)a.num("--M", 1), N = (int)a.num("--N", 5632), K = (int)a.num("--K", 2048);
  const int iters = (int)a.num("--iters", 20);
  if (M <= 0 || N <= 0 || K <= 0 || iters <= 0 || (t == DType::Q8_0 && K % kQ8_0BlockSize)) {
    std::fprintf(stderr, "bad shape M=%d N=%d K=%d (Q8_0 needs K %% 32 == 0)\n", M, N, K);
    return 2;
  }
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> wf((size_t)N * K), x((size_t)M * K), y((size_t)M * N);
  for (auto& v : wf) v = dist(rng);
  for (auto& v : x) v = dist(rng);
  const size_t wbytes = row_bytes(t, K) * N;
  // --copies 1 keeps a small matrix in cache: the kernel's compute rate alone.
  const size_t copies =
      (size_t)a.num("--copies", (long long)std::max<size_t>(1, (kMinWorkingSet + wbytes - 1) / wbytes));
  std::vector<HugePageBuffer> w;
  w.reserve(copies);
  for (size_t c = 0; c < copies; ++c) w.emplace_back(wbytes);
  std::vector<float> scales(N);
  for (auto& c : w) quantize_rows(pool, c.data(), scales.data(), wf.data(), t, N, K);
  auto call = [&](size_t c) {
    if (w8a24) {
      if (!cpu::matmul_w8a24(pool, y.data(), x.data(), static_cast<const int8_t*>(w[c].data()), scales.data(),
                             M, N, K)) {
        std::fprintf(stderr, "--w8a24 needs AVX-512 VNNI\n");
        std::exit(2);
      }
    } else if (dpbf16) {
      if (!cpu::matmul_fp8_dpbf16(pool, y.data(), x.data(), static_cast<const uint8_t*>(w[c].data()), t,
                                  scales.data(), M, N, K)) {
        std::fprintf(stderr, "--dpbf16 needs AVX-512 BF16 and VBMI\n");
        std::exit(2);
      }
    } else if (w16) {
      if (!cpu::matmul_q8_0_w16(pool, y.data(), x.data(), w[c].data(), M, N, K)) {
        std::fprintf(stderr, "--w16 needs AVX-512 and K a multiple of 32\n");
        std::exit(2);
      }
    } else if (w8a8)
      cpu::matmul_w8a8(pool, y.data(), x.data(), static_cast<const int8_t*>(w[c].data()), scales.data(), M, N,
                       K);
    else
      cpu::matmul(pool, y.data(), x.data(), w[c].data(), t, M, N, K, scales.data());
  };
  for (size_t c = 0; c < copies; ++c) call(c);  // warm up: pages, thread-local buffers
  double total = 0.0, best = 1e30;
  for (int it = 0; it < iters; ++it) {
    const double t0 = now_s();
    call(it % copies);
    const double s = now_s() - t0;
    total += s;
    best = std::min(best, s);
  }
  const double mean = total / iters;
  const double flops = 2.0 * M * N * (double)K;
  std::printf("matmul %s%s on %s: M=%d N=%d K=%d, %d threads, %zu weight copies (%.1f MiB each)\n",
              dtype.c_str(),
              w8a8     ? " w8a8"
              : w8a24  ? " w8a24"
              : dpbf16 ? " dpbf16"
              : w16    ? " w16"
                       : "",
              cpu::isa_name(cpu::active_isa()), M, N, K, pool.size(), copies, wbytes / 1048576.0);
  std::printf("  time/call %.3f ms (best %.3f ms)\n", mean * 1e3, best * 1e3);
  std::printf("  weight GB/s %.2f (best %.2f)\n", wbytes / mean / 1e9, wbytes / best / 1e9);
  std::printf("  GFLOP/s %.2f (best %.2f)\n", flops / mean / 1e9, flops / best / 1e9);
  return 0;
}

int run_quantize(const Args& a, ThreadPool& pool) {
  DType t;
  const std::string dtype = a.str("--dtype", "int8");
  if (!parse_dtype(dtype, &t)) {
    std::fprintf(stderr, "unknown --dtype '%s'\n", dtype.c_str());
    return usage();
  }
  const int64_t rows = a.num("--rows", 5632), cols = a.num("--cols", 2048);
  const int iters = (int)a.num("--iters", 5);
  const bool per_tensor = a.flag("--per-tensor");
  if (rows <= 0 || cols <= 0 || (t == DType::Q8_0 && cols % kQ8_0BlockSize)) {
    std::fprintf(stderr, "bad shape rows=%lld cols=%lld\n", (long long)rows, (long long)cols);
    return 2;
  }
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> src((size_t)(rows * cols)), scales(rows);
  for (auto& v : src) v = dist(rng);
  std::vector<uint8_t> dst(row_bytes(t, cols) * rows);
  double best = 1e30;
  for (int it = 0; it < iters; ++it) {
    const double t0 = now_s();
    quantize_rows(pool, dst.data(), scales.data(), src.data(), t, rows, cols, per_tensor);
    best = std::min(best, now_s() - t0);
  }
  std::printf("quantize_rows %s%s: %lld x %lld, %d threads: best %.3f ms, %.2f G values/s\n", dtype.c_str(),
              per_tensor ? " per-tensor" : "", (long long)rows, (long long)cols, pool.size(), best * 1e3,
              rows * cols / best / 1e9);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  const std::string cmd = argv[1];
  Args a;
  for (int i = 2; i < argc; ++i) {
    const std::string k = argv[i];
    if (k.rfind("--", 0) != 0) {
      std::fprintf(stderr, "unexpected argument '%s'\n", k.c_str());
      return usage();
    }
    if (k == "--w8a8" || k == "--w8a24" || k == "--dpbf16" || k == "--w16" || k == "--per-tensor") {
      a.values[k] = "1";
    } else if (i + 1 < argc) {
      a.values[k] = argv[++i];
    } else {
      std::fprintf(stderr, "%s needs a value\n", k.c_str());
      return usage();
    }
  }
  ThreadPool pool((int)a.num("--threads", 0));
  if (cmd == "matmul") return run_matmul(a, pool);
  if (cmd == "stream") return run_stream(a, pool);
  if (cmd == "quantize") return run_quantize(a, pool);
  return usage();
}
