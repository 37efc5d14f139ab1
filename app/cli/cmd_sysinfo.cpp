#include <cstdio>
#include <iostream>
#include <string>

#include "brisk/sysinfo.h"
#include "cli/common.h"

namespace brisk::cli {
namespace {

std::string bytes_str(uint64_t b) {
  char buf[32];
  if (b >= (uint64_t{1} << 30))
    std::snprintf(buf, sizeof buf, "%.1f GiB", b / 1073741824.0);
  else if (b >= (uint64_t{1} << 20))
    std::snprintf(buf, sizeof buf, "%llu MiB", (unsigned long long)(b >> 20));
  else
    std::snprintf(buf, sizeof buf, "%llu KiB", (unsigned long long)(b >> 10));
  return buf;
}

}  // namespace

int cmd_sysinfo(const std::vector<std::string>& argv) {
  Args a(
      "sysinfo", "[flags]",
      "Describe this machine (CPU, cores, caches, SIMD features, the kernels' ISA, memory) and its two\n"
      "ceilings: DRAM read bandwidth and FP32 FMA peak, measured on all threads. Benchmarks report speeds\n"
      "as fractions of these. Measurements are cached per CPU model, thread count and ISA in\n"
      "$XDG_CACHE_HOME/brisk/sysinfo.json (default ~/.cache/brisk/sysinfo.json).");
  a.flag("--threads", "N", "threads to measure with; 0 = physical cores", "0");
  a.flag("--json", "", "print one JSON object");
  a.flag("--remeasure", "", "measure even if a cached result exists, and replace it");
  a.flag("--quick", "", "small, fast measurement (64 MiB buffer, 2 repeats) for tests; not a true ceiling");
  if (!a.parse(argv)) return 0;
  if (!a.positional().empty())
    throw UsageError("sysinfo takes no arguments, got '" + a.positional()[0] + "' (see --help)");
  ProbeOptions o;
  o.threads = (int)a.integer("--threads", 0, 4096);
  o.remeasure = a.has("--remeasure");
  o.quick = a.has("--quick");

  if (!o.remeasure) {
    ProbeOptions peek = o;
    peek.measure = false;
    if (!probe_system(peek).measured) std::fputs("measuring read bandwidth and FMA peak...\n", stderr);
  } else {
    std::fputs("measuring read bandwidth and FMA peak...\n", stderr);
  }
  const SystemInfo s = probe_system(o);

  if (a.has("--json")) {
    std::cout << to_json(s) << "\n";
    return 0;
  }
  std::printf("cpu           %s\n", s.cpu_model.c_str());
  std::printf("cores         %d physical, %d logical CPUs\n", s.physical_cores, s.logical_cpus);
  if (s.l1d_cache_bytes || s.l2_cache_bytes || s.l3_cache_bytes)
    std::printf("caches        L1d %s, L2 %s, L3 %s (per instance)\n", bytes_str(s.l1d_cache_bytes).c_str(),
                bytes_str(s.l2_cache_bytes).c_str(), bytes_str(s.l3_cache_bytes).c_str());
  std::printf("memory        %s\n", s.memory_bytes ? bytes_str(s.memory_bytes).c_str() : "unknown");
  std::string features;
  for (const auto& f : s.features) features += (features.empty() ? "" : " ") + f;
  std::printf("features      %s\n",
              features.empty() ? "(none of the SIMD features Brisk uses)" : features.c_str());
  std::printf("kernel isa    %s", s.kernel_isa.c_str());
  if (s.kernel_isa != s.detected_isa)
    std::printf(" (lowered by BRISK_ISA; the CPU supports %s)", s.detected_isa.c_str());
  std::printf("\n");
  if (!s.measured) {
    std::printf("ceilings      not measured\n");
    return 0;
  }
  std::printf("read bw       %.1f GB/s\n", s.read_bandwidth_bytes_per_s / 1e9);
  std::printf("              %s\n", s.read_bandwidth_method.c_str());
  std::printf("fma peak      %.1f GFLOP/s\n", s.fma_peak_flops / 1e9);
  std::printf("              %s\n", s.fma_peak_method.c_str());
  std::printf("measured      %s on %d threads%s\n", s.measured_at.c_str(), s.threads_used,
              s.quick ? " with the quick probe (not a true ceiling)" : "");
  if (s.from_cache)
    std::printf("              read from %s (--remeasure to measure again)\n", s.cache_path.c_str());
  else if (!s.cache_path.empty())
    std::printf("              cache: %s\n", s.cache_path.c_str());
  return 0;
}

}  // namespace brisk::cli
