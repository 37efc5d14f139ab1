// The machine a run happens on, and its two measured ceilings: DRAM read
// bandwidth (what bounds decode, which streams every weight once per token)
// and FP32 FMA peak (what bounds prefill). Benchmarks and reports print each
// speed as a fraction of these, and embed this record so a reader knows the
// machine. Measuring takes about a second, so the ceilings are cached per
// (CPU model, threads, kernel ISA) in $XDG_CACHE_HOME/brisk/sysinfo.json
// (~/.cache/brisk/sysinfo.json when XDG_CACHE_HOME is unset).
//
// CUDA devices get the same treatment: a description (name, memory, SMs,
// compute capability, driver), the precisions Brisk runs natively there, and
// two measured ceilings (device bandwidth, which bounds decode; F16 and FP8
// matrix throughput, which bound prefill), cached per device and driver.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace brisk {

// One CUDA device.
struct GpuInfo {
  int index = 0;
  std::string name;
  int cc_major = 0, cc_minor = 0;  // compute capability: sm_<major><minor>
  int sm_count = 0;
  uint64_t memory_bytes = 0, free_bytes = 0;  // free: when described
  std::string driver_version;                 // the driver's CUDA version ("12.4")
  std::string runtime_version;                // the CUDA runtime Brisk was built with
  std::string pci_bus_id;
  // Weight precisions the CUDA backend runs with native GEMMs on this device
  // (EngineConfig::weight_dtype spelling), and what is missing and why.
  std::vector<std::string> precisions;
  std::string precision_note;

  // The ceilings; measured is false (figures 0) when unknown, measure_error
  // says why when measuring was tried and failed.
  bool measured = false;
  double bandwidth_bytes_per_s = 0;  // device-to-device copy, bytes read + written
  uint64_t bandwidth_buffer_bytes = 0;
  double f16_flops = 0;  // cuBLAS F16 GEMM, FP32 accumulate
  double fp8_flops = 0;  // cuBLASLt FP8 E4M3 GEMM; 0 where the device has none (fp8_method says so)
  std::string bandwidth_method, f16_method, fp8_method;
  std::string measure_error;
  bool quick = false;
  std::string measured_at;
  bool from_cache = false;
};

// A backend this build knows, available or not (the CPU always is).
struct BackendStatus {
  std::string name;  // "cpu", "cuda"
  bool available = false;
  std::string reason;  // why not, when unavailable
  std::string device;  // what it runs on
};
std::vector<BackendStatus> list_backends();
// What "auto" (or a name) resolves to on this machine: "cuda" when a CUDA
// device is available, else "cpu"; other names are returned as given.
std::string resolve_backend(const std::string& name);

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

  // Backends and CUDA devices (filled unless ProbeOptions::gpu is false).
  std::vector<BackendStatus> backends;
  bool cuda_available = false;
  std::string cuda_reason;  // why not, when unavailable: said once by every front end
  std::vector<GpuInfo> gpus;
  // Benchmarks: the backend the run used ("cpu" or "cuda"); empty elsewhere.
  std::string backend_used;
};

struct ProbeOptions {
  int threads = 0;         // 0 = physical cores
  bool measure = true;     // false: describe the machine; ceilings only if cached
  bool remeasure = false;  // measure even when a cached result exists (and replace it)
  bool quick = false;      // 64 MiB buffer, fewer repeats: fast but may overstate bandwidth on huge caches.
                           // Cached under its own key, so it never stands in for a full measurement.
  bool gpu = true;         // also describe (and per `measure`, measure) the CUDA devices
};

// Describes the machine and (per options) measures or recalls its ceilings.
// A cache that cannot be read or written is ignored: the result is then
// simply not remembered.
SystemInfo probe_system(const ProbeOptions& options);
SystemInfo probe_system(int threads = 0, bool measure = true);

// The cache file probe_system uses; empty when neither XDG_CACHE_HOME nor
// HOME is set.
std::string sysinfo_cache_path();

// The ceilings of the backend a run used: the first GPU's bandwidth and F16
// matrix throughput for "cuda" (when measured), the CPU's read bandwidth and
// FMA peak otherwise. False when they are unknown.
bool backend_ceilings(const SystemInfo& info, const std::string& backend, double* bandwidth_bytes_per_s,
                      double* peak_flops);

// One JSON object with every field above (field names as in the struct), for
// `brisk-cli sysinfo --json` and for embedding in benchmark results and reports.
std::string to_json(const SystemInfo& info, int indent = 2);

}  // namespace brisk
