// The machine a run happens on, and its two measured ceilings: DRAM read
// bandwidth (what bounds decode, which streams every weight once per token)
// and FP32 FMA peak (what bounds prefill). Benchmarks and reports print each
// speed as a fraction of these, and embed this record so a reader knows the
// machine. Measuring takes about a second, so the ceilings are cached per
// (CPU model, threads, kernel ISA) in $XDG_CACHE_HOME/brisk/sysinfo.json
// (~/.cache/brisk/sysinfo.json when XDG_CACHE_HOME is unset).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace brisk {

struct SystemInfo {
  // What the machine is (always filled).
  std::string cpu_model;
  int logical_cpus = 0;
  int physical_cores = 0;
  uint64_t l1d_cache_bytes = 0, l2_cache_bytes = 0, l3_cache_bytes = 0;  // per instance; 0 = unknown
  uint64_t memory_bytes = 0;
  std::vector<std::string> features;  // SIMD features, Linux /proc/cpuinfo spelling (avx2, avx512_vnni, ...)
  std::string kernel_isa;             // what the CPU kernels use now: "scalar", "avx2" or "avx512"
  std::string detected_isa;           // the widest the CPU supports (kernel_isa is lower under BRISK_ISA)

  // The ceilings. measured is false when they are unknown (probe_system with
  // measure = false and nothing cached); the figures are then 0.
  bool measured = false;
  double read_bandwidth_bytes_per_s = 0;
  double fma_peak_flops = 0;  // FP32, one FMA = 2 FLOP
  int threads_used = 0;       // threads both probes ran on
  uint64_t bandwidth_buffer_bytes = 0;
  bool quick = false;                 // measured with the small, fast probe (tests), not the full one
  std::string read_bandwidth_method;  // one line each: how the figure was measured
  std::string fma_peak_method;
  std::string measured_at;  // UTC, ISO 8601 (2024-05-01T12:00:00Z)
  bool from_cache = false;  // read from cache_path rather than measured by this call
  std::string cache_path;   // the cache file consulted; empty when there is no usable location
};

struct ProbeOptions {
  int threads = 0;         // 0 = physical cores
  bool measure = true;     // false: describe the machine; ceilings only if cached
  bool remeasure = false;  // measure even when a cached result exists (and replace it)
  bool quick = false;      // 64 MiB buffer, fewer repeats: fast but may overstate bandwidth on huge caches.
                           // Cached under its own key, so it never stands in for a full measurement.
};

// Describes the machine and (per options) measures or recalls its ceilings.
// A cache that cannot be read or written is ignored: the result is then
// simply not remembered.
SystemInfo probe_system(const ProbeOptions& options);
SystemInfo probe_system(int threads = 0, bool measure = true);

// The cache file probe_system uses; empty when neither XDG_CACHE_HOME nor
// HOME is set.
std::string sysinfo_cache_path();

// One JSON object with every field above (field names as in the struct), for
// `brisk-cli sysinfo --json` and for embedding in benchmark results and reports.
std::string to_json(const SystemInfo& info, int indent = 2);

}  // namespace brisk
