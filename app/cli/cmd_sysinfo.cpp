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

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& x : v) out += (out.empty() ? "" : " ") + x;
  return out;
}

// The backends and the CUDA devices; CUDA's absence is said once, with its reason.
void print_gpus(const SystemInfo& s) {
  std::string backends;
  for (const BackendStatus& b : s.backends)
    backends += (backends.empty() ? "" : ", ") + b.name + (b.available ? " (available)" : " (unavailable)");
  std::printf("backends      %s\n", backends.c_str());
  if (!s.cuda_available) {
    std::printf("CUDA: unavailable — %s\n", s.cuda_reason.c_str());
    return;
  }
  for (const GpuInfo& g : s.gpus) {
    std::printf("gpu %-9d %s, sm_%d%d, %d SMs, %s (%s free)\n", g.index, g.name.c_str(), g.cc_major,
                g.cc_minor, g.sm_count, bytes_str(g.memory_bytes).c_str(), bytes_str(g.free_bytes).c_str());
    std::printf("  driver      CUDA %s (runtime %s)%s%s\n", g.driver_version.c_str(),
                g.runtime_version.c_str(), g.pci_bus_id.empty() ? "" : ", PCI ", g.pci_bus_id.c_str());
    std::printf("  precisions  %s\n", join(g.precisions).c_str());
    if (!g.precision_note.empty()) std::printf("              %s\n", g.precision_note.c_str());
    if (!g.measured) {
      if (g.measure_error.empty())
        std::printf("  ceilings    not measured\n");
      else
        std::printf("  ceilings    not measured: %s\n", g.measure_error.c_str());
      continue;
    }
    std::printf("  device bw   %.1f GB/s\n", g.bandwidth_bytes_per_s / 1e9);
    std::printf("              %s\n", g.bandwidth_method.c_str());
    std::printf("  f16 gemm    %.1f TFLOP/s\n", g.f16_flops / 1e12);
    std::printf("              %s\n", g.f16_method.c_str());
    if (g.fp8_flops > 0)
      std::printf("  fp8 gemm    %.1f TFLOP/s (%.2fx F16)\n              %s\n", g.fp8_flops / 1e12,
                  g.fp8_flops / g.f16_flops, g.fp8_method.c_str());
    else
      std::printf("  fp8 gemm    %s\n", g.fp8_method.c_str());
    std::printf("  measured    %s%s%s\n", g.measured_at.c_str(), g.quick ? " with the quick probe" : "",
                g.from_cache ? " (cached)" : "");
  }
}

}  // namespace

int cmd_sysinfo(const std::vector<std::string>& argv) {
  Args a(
      "sysinfo", "[flags]",
      "Describe this machine (CPU, cores, caches, SIMD features, the kernels' ISA, memory) and its two\n"
      "ceilings: DRAM read bandwidth and FP32 FMA peak, measured on all threads. Benchmarks report speeds\n"
      "as fractions of these. Measurements are cached per CPU model, thread count and ISA in\n"
      "$XDG_CACHE_HOME/brisk/sysinfo.json (default ~/.cache/brisk/sysinfo.json).\n"
      "Then the backends (cpu, cuda: available or why not) and each CUDA device: name, memory, SMs, compute\n"
      "capability, driver, the precisions it runs natively, and its measured device bandwidth and F16/FP8\n"
      "GEMM throughput (cached the same way, per device and driver).");
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
    const SystemInfo known = probe_system(peek);
    if (!known.measured) std::fputs("measuring read bandwidth and FMA peak...\n", stderr);
    for (const GpuInfo& g : known.gpus)
      if (!g.measured) std::fprintf(stderr, "measuring GPU %d (%s)...\n", g.index, g.name.c_str());
  } else {
    std::fputs("measuring read bandwidth and FMA peak (and every CUDA device)...\n", stderr);
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
    print_gpus(s);
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
  print_gpus(s);
  return 0;
}

}  // namespace brisk::cli
