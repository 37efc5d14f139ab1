#include "kernels/cpu/probe.h"

#include <immintrin.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <memory>
#include <thread>

#ifdef __linux__
#include <sys/mman.h>
#endif

// ---- AVX-512 loops (compiled for AVX-512F only; callers check the CPU) ----
#pragma GCC push_options
#pragma GCC target("avx512f")
namespace brisk::cpu {
namespace {

uint32_t stream_sum_avx512(const uint32_t* p, size_t n) {
  // Integer adds (1-cycle latency) with four accumulators keep the loop far
  // from any dependency limit, so only the loads set the pace.
  __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    s0 = _mm512_add_epi32(s0, _mm512_loadu_si512(p + i));
    s1 = _mm512_add_epi32(s1, _mm512_loadu_si512(p + i + 16));
    s2 = _mm512_add_epi32(s2, _mm512_loadu_si512(p + i + 32));
    s3 = _mm512_add_epi32(s3, _mm512_loadu_si512(p + i + 48));
  }
  for (; i + 16 <= n; i += 16) s0 = _mm512_add_epi32(s0, _mm512_loadu_si512(p + i));
  // Through memory rather than _mm512_reduce_add_*, whose GCC 12 header
  // trips -Wuninitialized; this runs once per call.
  alignas(64) uint32_t lanes[16];
  _mm512_store_si512(lanes, _mm512_add_epi32(_mm512_add_epi32(s0, s1), _mm512_add_epi32(s2, s3)));
  uint32_t s = 0;
  for (uint32_t v : lanes) s += v;
  for (; i < n; ++i) s += p[i];
  return s;
}

// 16 chains: enough to cover FMA latency (4 cycles) times two 512-bit FMA
// ports on the widest cores, and still leaves registers for a and b.
#define BRISK_CHAINS_16(X) \
  X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)

float fma_chains_avx512(int64_t iters, float a, float b, float x0) {
  const __m512 va = _mm512_set1_ps(a), vb = _mm512_set1_ps(b);
  const __m512 base = _mm512_add_ps(
      _mm512_set1_ps(x0), _mm512_mul_ps(_mm512_set_ps(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                        _mm512_set1_ps(1.0f / 64)));
#define BRISK_INIT(c) __m512 acc##c = _mm512_add_ps(base, _mm512_set1_ps((float)c));
  BRISK_CHAINS_16(BRISK_INIT)
#undef BRISK_INIT
  for (int64_t i = 0; i < iters; ++i) {
#define BRISK_STEP(c) acc##c = _mm512_fmadd_ps(acc##c, va, vb);
    BRISK_CHAINS_16(BRISK_STEP)
#undef BRISK_STEP
  }
  __m512 s = _mm512_setzero_ps();
#define BRISK_SUM(c) s = _mm512_add_ps(s, acc##c);
  BRISK_CHAINS_16(BRISK_SUM)
#undef BRISK_SUM
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, s);
  float total = 0;
  for (float v : lanes) total += v;
  return total;
}

}  // namespace
}  // namespace brisk::cpu
#pragma GCC pop_options

// ---- AVX2 loops ----
#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace brisk::cpu {
namespace {

uint32_t stream_sum_avx2(const uint32_t* p, size_t n) {
  __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm256_add_epi32(s0, _mm256_loadu_si256((const __m256i*)(p + i)));
    s1 = _mm256_add_epi32(s1, _mm256_loadu_si256((const __m256i*)(p + i + 8)));
    s2 = _mm256_add_epi32(s2, _mm256_loadu_si256((const __m256i*)(p + i + 16)));
    s3 = _mm256_add_epi32(s3, _mm256_loadu_si256((const __m256i*)(p + i + 24)));
  }
  for (; i + 8 <= n; i += 8) s0 = _mm256_add_epi32(s0, _mm256_loadu_si256((const __m256i*)(p + i)));
  const __m256i t = _mm256_add_epi32(_mm256_add_epi32(s0, s1), _mm256_add_epi32(s2, s3));
  __m128i h = _mm_add_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
  h = _mm_add_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(1, 0, 3, 2)));
  h = _mm_add_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(2, 3, 0, 1)));
  uint32_t s = (uint32_t)_mm_cvtsi128_si32(h);
  for (; i < n; ++i) s += p[i];
  return s;
}

// 12 chains cover latency 5 times two FMA ports (Haswell and later) and,
// with a and b, fit the 16 ymm registers without spilling.
#define BRISK_CHAINS_12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

float fma_chains_avx2(int64_t iters, float a, float b, float x0) {
  const __m256 va = _mm256_set1_ps(a), vb = _mm256_set1_ps(b);
  const __m256 base = _mm256_add_ps(
      _mm256_set1_ps(x0), _mm256_mul_ps(_mm256_set_ps(7, 6, 5, 4, 3, 2, 1, 0), _mm256_set1_ps(1.0f / 64)));
#define BRISK_INIT(c) __m256 acc##c = _mm256_add_ps(base, _mm256_set1_ps((float)c));
  BRISK_CHAINS_12(BRISK_INIT)
#undef BRISK_INIT
  for (int64_t i = 0; i < iters; ++i) {
#define BRISK_STEP(c) acc##c = _mm256_fmadd_ps(acc##c, va, vb);
    BRISK_CHAINS_12(BRISK_STEP)
#undef BRISK_STEP
  }
  __m256 s = _mm256_setzero_ps();
#define BRISK_SUM(c) s = _mm256_add_ps(s, acc##c);
  BRISK_CHAINS_12(BRISK_SUM)
#undef BRISK_SUM
  __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
  h = _mm_add_ps(h, _mm_movehl_ps(h, h));
  h = _mm_add_ss(h, _mm_movehdup_ps(h));
  return _mm_cvtss_f32(h);
}

}  // namespace
}  // namespace brisk::cpu
#pragma GCC pop_options

namespace brisk::cpu {
namespace {

constexpr int kScalarChains = 8;

uint32_t stream_sum_scalar(const uint32_t* p, size_t n) {
  uint32_t s = 0;
  for (size_t i = 0; i < n; ++i) s += p[i];
  return s;
}

float fma_chains_scalar(int64_t iters, float a, float b, float x0) {
  float c[kScalarChains];
  for (int k = 0; k < kScalarChains; ++k) c[k] = x0 + (float)k;
  for (int64_t i = 0; i < iters; ++i)
    for (int k = 0; k < kScalarChains; ++k) c[k] = c[k] * a + b;
  float s = 0;
  for (int k = 0; k < kScalarChains; ++k) s += c[k];
  return s;
}

// Stops the optimizer from treating the probes' results as dead, and their
// parameters as constants it could fold into the loops.
volatile uint32_t g_stream_sink;
volatile float g_fma_sink;
volatile float g_fma_a = 0.9999f, g_fma_b = 1e-4f;  // acc -> 1: no overflow, no denormals

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Reads the first line of a small sysfs/procfs file; empty when absent.
std::string read_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (in) std::getline(in, line);
  return line;
}

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return {};
  const size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// sysfs cache sizes look like "32K", "1024K" or "32768K" (sometimes "M").
uint64_t parse_size(const std::string& s) {
  char* end = nullptr;
  const unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (end == s.c_str()) return 0;
  switch (*end) {
    case 'K':
    case 'k':
      return v << 10;
    case 'M':
    case 'm':
      return v << 20;
    case 'G':
    case 'g':
      return v << 30;
    default:
      return v;
  }
}

}  // namespace

int probe_vector_bits(Isa isa) {
  switch (isa) {
    case Isa::Avx512:
      return 512;
    case Isa::Avx2:
      return 256;
    case Isa::Scalar:
      break;
  }
  return 32;
}

int fma_chains_per_thread(Isa isa) {
  switch (isa) {
    case Isa::Avx512:
      return 16;
    case Isa::Avx2:
      return 12;
    case Isa::Scalar:
      break;
  }
  return kScalarChains;
}

uint32_t stream_sum(const uint32_t* data, size_t n, Isa isa) {
  switch (isa) {
    case Isa::Avx512:
      return stream_sum_avx512(data, n);
    case Isa::Avx2:
      return stream_sum_avx2(data, n);
    case Isa::Scalar:
      break;
  }
  return stream_sum_scalar(data, n);
}

float fma_chains(int64_t iters, float a, float b, float x0, Isa isa) {
  switch (isa) {
    case Isa::Avx512:
      return fma_chains_avx512(iters, a, b, x0);
    case Isa::Avx2:
      return fma_chains_avx2(iters, a, b, x0);
    case Isa::Scalar:
      break;
  }
  return fma_chains_scalar(iters, a, b, x0);
}

double measure_read_bandwidth(ThreadPool& pool, size_t bytes, int repeats) {
  const Isa isa = active_isa();
  constexpr size_t kBlock = 64 << 10;  // the unit of work handed to threads
  constexpr size_t kWordsPerBlock = kBlock / sizeof(uint32_t);
  constexpr size_t kHugePage = 2 << 20;
  const int64_t n_blocks = (int64_t)std::max<size_t>(1, bytes / kBlock);
  const size_t total = (size_t)n_blocks * kBlock;
  const size_t alloc = (total + kHugePage - 1) / kHugePage * kHugePage;
  std::unique_ptr<uint32_t, decltype(&std::free)> buf((uint32_t*)std::aligned_alloc(kHugePage, alloc),
                                                      &std::free);
  if (!buf) return 0;
#ifdef __linux__
  // Huge pages take TLB misses out of the measurement: the figure is meant
  // to be the DRAM ceiling, not the cost of 4 KiB page walks.
  madvise(buf.get(), alloc, MADV_HUGEPAGE);
#endif
  uint32_t* p = buf.get();
  // Filling faults every page in before timing, on the threads that read it.
  pool.parallel_for(n_blocks, [&](int64_t b, int64_t e) {
    for (size_t i = (size_t)b * kWordsPerBlock; i < (size_t)e * kWordsPerBlock; ++i)
      p[i] = (uint32_t)(i * 2654435761u) | 1u;
  });
  std::vector<uint32_t> partial((size_t)n_blocks, 0);
  double best = std::numeric_limits<double>::infinity();
  for (int r = 0; r < std::max(1, repeats); ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    pool.parallel_for(n_blocks, [&](int64_t b, int64_t e) {
      partial[(size_t)b] = stream_sum(p + (size_t)b * kWordsPerBlock, (size_t)(e - b) * kWordsPerBlock, isa);
    });
    best = std::min(best, seconds_since(t0));
  }
  uint32_t s = 0;
  for (uint32_t v : partial) s += v;
  g_stream_sink = s;
  return best > 0 ? (double)total / best : 0;
}

double measure_fma_peak(ThreadPool& pool, int repeats) {
  const Isa isa = active_isa();
  // One unit is a few milliseconds of FMAs: long next to waking a worker,
  // short enough that four units per thread let a thread slowed by other
  // load on the machine hand work to the others.
  constexpr int64_t kIters = 1 << 19;
  const int64_t units = 4 * (int64_t)pool.size();
  const float a = g_fma_a, b = g_fma_b;
  std::vector<float> out((size_t)units, 0.0f);
  const auto run = [&] {
    const auto t0 = std::chrono::steady_clock::now();
    pool.parallel_for(units, [&](int64_t lo, int64_t hi) {
      for (int64_t u = lo; u < hi; ++u) out[(size_t)u] = fma_chains(kIters, a, b, (float)(u % 7), isa);
    });
    return seconds_since(t0);
  };
  run();  // warm-up: clocks settle, AVX-512 power licence taken, workers awake
  double best = std::numeric_limits<double>::infinity();
  for (int r = 0; r < std::max(1, repeats); ++r) best = std::min(best, run());
  float s = 0;
  for (float v : out) s += v;
  g_fma_sink = s;
  const int lanes = isa == Isa::Scalar ? 1 : probe_vector_bits(isa) / 32;
  const double flops = 2.0 * (double)units * (double)kIters * fma_chains_per_thread(isa) * lanes;
  return best > 0 ? flops / best : 0;
}

std::vector<std::string> cpu_features() {
  __builtin_cpu_init();
  std::vector<std::string> f;
  // __builtin_cpu_supports needs literal names; the list keeps Linux's.
#define BRISK_FEATURE(gcc_name, linux_name) \
  if (__builtin_cpu_supports(gcc_name)) f.push_back(linux_name);
  BRISK_FEATURE("sse4.2", "sse4_2")
  BRISK_FEATURE("avx", "avx")
  BRISK_FEATURE("avx2", "avx2")
  BRISK_FEATURE("fma", "fma")
  BRISK_FEATURE("f16c", "f16c")
  BRISK_FEATURE("avx512f", "avx512f")
  BRISK_FEATURE("avx512bw", "avx512bw")
  BRISK_FEATURE("avx512vl", "avx512vl")
  BRISK_FEATURE("avx512dq", "avx512dq")
  BRISK_FEATURE("avx512vnni", "avx512_vnni")
  BRISK_FEATURE("avx512bf16", "avx512_bf16")
  BRISK_FEATURE("avx512vbmi", "avx512vbmi")  // with BF16: FP8 weights as BF16 dot products
  BRISK_FEATURE("avx512fp16", "avx512_fp16")
  BRISK_FEATURE("avxvnni", "avx_vnni")
  BRISK_FEATURE("amx-tile", "amx_tile")
  BRISK_FEATURE("amx-int8", "amx_int8")
  BRISK_FEATURE("amx-bf16", "amx_bf16")
#undef BRISK_FEATURE
  return f;
}

CpuDescription describe_cpu() {
  CpuDescription d;
  {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (in && std::getline(in, line)) {
      if (line.rfind("model name", 0) != 0) continue;
      const size_t colon = line.find(':');
      if (colon != std::string::npos) d.model = trim(line.substr(colon + 1));
      break;
    }
  }
  if (d.model.empty()) d.model = "unknown";
  const long online = sysconf(_SC_NPROCESSORS_ONLN);
  d.logical_cpus = online > 0 ? (int)online : (int)std::thread::hardware_concurrency();
  d.physical_cores = ThreadPool::physical_cores();
  for (int i = 0; i < 16; ++i) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/";
    const std::string level = read_line(dir + "level");
    if (level.empty()) break;
    const std::string type = read_line(dir + "type");
    const uint64_t size = parse_size(read_line(dir + "size"));
    if (level == "1" && type == "Data") d.l1d_cache_bytes = size;
    if (level == "2" && type != "Instruction") d.l2_cache_bytes = size;
    if (level == "3" && type != "Instruction") d.l3_cache_bytes = size;
  }
  {
    std::ifstream in("/proc/meminfo");
    std::string line;
    while (in && std::getline(in, line)) {
      if (line.rfind("MemTotal:", 0) != 0) continue;
      d.memory_bytes = (uint64_t)std::strtoull(line.c_str() + 9, nullptr, 10) * 1024;  // the file says kB
      break;
    }
  }
  d.features = cpu_features();
  return d;
}

}  // namespace brisk::cpu
