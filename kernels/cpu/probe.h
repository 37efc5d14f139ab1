// The machine's two ceilings, measured: how fast all cores together can
// stream memory (the roofline for decode, which reads every weight once per
// token) and how many FP32 FLOP/s the vector units sustain (the roofline for
// prefill). Benchmarks divide what they measured by these, so the probes are
// written to reach the hardware limit, not to resemble a kernel. Plus a
// description of the CPU (model, cores, caches, ISA features, memory), read
// from /proc and /sys where the platform has them.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cpu/isa.h"
#include "kernels/cpu/thread_pool.h"

namespace brisk::cpu {

struct CpuDescription {
  std::string model;  // /proc/cpuinfo "model name"; "unknown" when absent
  int logical_cpus = 0;
  int physical_cores = 0;
  // Per-instance sizes from sysfs (cpu0's caches); 0 when unknown.
  uint64_t l1d_cache_bytes = 0, l2_cache_bytes = 0, l3_cache_bytes = 0;
  uint64_t memory_bytes = 0;  // /proc/meminfo MemTotal; 0 when unknown
  std::vector<std::string> features;
};

CpuDescription describe_cpu();

// SIMD features this CPU (and OS) supports, in Linux /proc/cpuinfo spelling:
// sse4_2 avx avx2 fma f16c avx512f avx512bw avx512vl avx512dq avx512_vnni
// avx512_bf16 avx512_fp16 avx_vnni amx_tile amx_int8 amx_bf16 (those present).
std::vector<std::string> cpu_features();

// 1 GiB: far larger than any last-level cache the probe is likely to meet,
// so the measurement is of DRAM, not of cache.
constexpr size_t kDefaultReadBytes = size_t{1} << 30;

// Best of `repeats` passes of all pool threads reading `bytes` (rounded down
// to whole 64 KiB blocks, at least one) with the widest loads active_isa()
// allows, in bytes/s. The buffer is filled (and so faulted in) before timing.
double measure_read_bandwidth(ThreadPool& pool, size_t bytes = kDefaultReadBytes, int repeats = 5);

// Best of `repeats` runs of independent FP32 FMA chains on every pool thread,
// on the widest vector ISA active_isa() allows (a warm-up run first), in
// FLOP/s (one FMA = 2 FLOP). Takes well under 0.5 s.
double measure_fma_peak(ThreadPool& pool, int repeats = 5);

// How the two probes work on `isa`, for the line that says how each figure
// was measured: vector width in bits (32 for the scalar path) and the number
// of independent FMA chains per thread.
int probe_vector_bits(Isa isa);
int fma_chains_per_thread(Isa isa);

// The probes' inner loops, exposed so tests can check they touch every
// element and do every FMA. The sum is modulo 2^32; `isa` must not exceed
// detected_isa().
uint32_t stream_sum(const uint32_t* data, size_t n, Isa isa);
// Runs `iters` steps of acc = acc * a + b on fma_chains_per_thread(isa)
// vectors whose lane l of chain c starts at x0 + c + l / 64; returns the sum
// of every lane of every chain at the end.
float fma_chains(int64_t iters, float a, float b, float x0, Isa isa);

}  // namespace brisk::cpu
