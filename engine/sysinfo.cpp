#include "brisk/sysinfo.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "backend/backend.h"
#include "backend/cuda/cuda_measure.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/probe.h"
#include "kernels/cpu/thread_pool.h"

namespace brisk {
namespace {

using nlohmann::json;

// Bump when a probe changes what it measures, so older cached figures are
// no longer taken for current ones.
constexpr int kCacheVersion = 1;
// A bandwidth pass over 1 GiB takes tens of milliseconds; an FMA run a few,
// so the FMA probe affords more tries at a run no other process interrupts.
constexpr int kFullReadRepeats = 5, kFullFmaRepeats = 10, kQuickRepeats = 2;
constexpr uint64_t kQuickBytes = uint64_t{64} << 20;

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm g{};
  gmtime_r(&t, &g);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &g);
  return buf;
}

std::string mib(uint64_t bytes) {
  std::ostringstream o;
  o << (bytes >> 20) << " MiB";
  return o.str();
}

// Large enough that the last-level cache serves a negligible part of it,
// small enough to leave most of the machine's memory alone.
uint64_t full_buffer_bytes(const SystemInfo& s) {
  uint64_t bytes = std::max<uint64_t>(cpu::kDefaultReadBytes, 16 * s.l3_cache_bytes);
  if (s.memory_bytes > 0) bytes = std::min(bytes, s.memory_bytes / 4);
  return std::max<uint64_t>(bytes, kQuickBytes);
}

std::string cache_key(const SystemInfo& s, int threads, bool quick) {
  return s.cpu_model + "|threads=" + std::to_string(threads) + "|isa=" + s.kernel_isa +
         (quick ? "|quick" : "");
}

// The whole cache file, or an empty object when it is missing, unreadable,
// from another version of the probes, or not ours.
json read_cache(const std::string& path) {
  std::ifstream in(path);
  if (!in) return json::object();
  try {
    json j = json::parse(in);
    if (j.is_object() && j.value("version", 0) == kCacheVersion && j.contains("entries") &&
        j["entries"].is_object())
      return j;
  } catch (const json::exception&) {
  }
  return json::object();
}

json entry_json(const SystemInfo& s) {
  return {{"read_bandwidth_bytes_per_s", s.read_bandwidth_bytes_per_s},
          {"fma_peak_flops", s.fma_peak_flops},
          {"threads_used", s.threads_used},
          {"bandwidth_buffer_bytes", s.bandwidth_buffer_bytes},
          {"quick", s.quick},
          {"read_bandwidth_method", s.read_bandwidth_method},
          {"fma_peak_method", s.fma_peak_method},
          {"measured_at", s.measured_at}};
}

// Fills the measured fields from a cache entry; false (s untouched) when
// the entry is malformed or its figures are not positive.
bool load_entry(const json& e, SystemInfo& s) {
  try {
    SystemInfo t = s;
    t.read_bandwidth_bytes_per_s = e.at("read_bandwidth_bytes_per_s").get<double>();
    t.fma_peak_flops = e.at("fma_peak_flops").get<double>();
    t.threads_used = e.at("threads_used").get<int>();
    t.bandwidth_buffer_bytes = e.at("bandwidth_buffer_bytes").get<uint64_t>();
    t.quick = e.at("quick").get<bool>();
    t.read_bandwidth_method = e.at("read_bandwidth_method").get<std::string>();
    t.fma_peak_method = e.at("fma_peak_method").get<std::string>();
    t.measured_at = e.at("measured_at").get<std::string>();
    if (!(t.read_bandwidth_bytes_per_s > 0) || !(t.fma_peak_flops > 0) || t.threads_used <= 0) return false;
    t.measured = true;
    t.from_cache = true;
    s = std::move(t);
    return true;
  } catch (const json::exception&) {
    return false;
  }
}

// Best effort: a read-only home or a full disk only means the next run
// measures again. Written to a temporary and renamed, so a concurrent
// reader never sees half a file.
void write_cache(const std::string& path, const std::string& key, const json& entry) {
  if (path.empty()) return;
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  json all = read_cache(path);
  if (all.empty()) all = {{"version", kCacheVersion}, {"entries", json::object()}};
  all["entries"][key] = entry;
  static std::atomic<int> serial{0};  // two threads of one process must not share a temporary
  const std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(serial++);
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return;
    out << all.dump(2) << "\n";
    if (!out) {
      out.close();
      fs::remove(tmp, ec);
      return;
    }
  }
  fs::rename(tmp, path, ec);
  if (ec) fs::remove(tmp, ec);
}

void measure(SystemInfo& s, int threads, bool quick) {
  const cpu::Isa isa = cpu::active_isa();
  const int bits = cpu::probe_vector_bits(isa);
  const int read_repeats = quick ? kQuickRepeats : kFullReadRepeats;
  const int fma_repeats = quick ? kQuickRepeats : kFullFmaRepeats;
  const uint64_t bytes = quick ? kQuickBytes : full_buffer_bytes(s);
  ThreadPool pool(threads);
  s.threads_used = pool.size();
  s.bandwidth_buffer_bytes = bytes;
  s.read_bandwidth_bytes_per_s = cpu::measure_read_bandwidth(pool, bytes, read_repeats);
  s.fma_peak_flops = cpu::measure_fma_peak(pool, fma_repeats);
  s.quick = quick;
  s.measured = s.read_bandwidth_bytes_per_s > 0 && s.fma_peak_flops > 0;
  s.measured_at = utc_now();
  s.from_cache = false;
  std::ostringstream r, f;
  r << "every thread streams its share of a " << mib(bytes) << " buffer";
  if (s.l3_cache_bytes) r << " (L3 " << mib(s.l3_cache_bytes) << ")";
  r << " with " << bits << "-bit loads (" << cpu::isa_name(isa) << "), " << s.threads_used
    << " threads, best of " << read_repeats << " passes";
  f << "FP32, " << cpu::fma_chains_per_thread(isa) << " independent " << bits
    << "-bit FMA chains per thread (" << cpu::isa_name(isa) << "), " << s.threads_used
    << " threads, 2 FLOP per lane per FMA, best of " << fma_repeats << " runs after a warm-up";
  s.read_bandwidth_method = r.str();
  s.fma_peak_method = f.str();
}

// ---------------------------------------------------------------- CUDA devices

// The device, the driver and the probe size: a new driver (or another card
// model) is measured afresh.
std::string gpu_cache_key(const GpuInfo& g, bool quick) {
  return "cuda|" + g.name + "|sm_" + std::to_string(g.cc_major) + std::to_string(g.cc_minor) +
         "|driver=" + g.driver_version + (quick ? "|quick" : "");
}

json gpu_entry_json(const GpuInfo& g) {
  return {{"bandwidth_bytes_per_s", g.bandwidth_bytes_per_s},
          {"bandwidth_buffer_bytes", g.bandwidth_buffer_bytes},
          {"f16_flops", g.f16_flops},
          {"fp8_flops", g.fp8_flops},
          {"bandwidth_method", g.bandwidth_method},
          {"f16_method", g.f16_method},
          {"fp8_method", g.fp8_method},
          {"quick", g.quick},
          {"measured_at", g.measured_at}};
}

bool load_gpu_entry(const json& e, GpuInfo& g) {
  try {
    GpuInfo t = g;
    t.bandwidth_bytes_per_s = e.at("bandwidth_bytes_per_s").get<double>();
    t.bandwidth_buffer_bytes = e.at("bandwidth_buffer_bytes").get<uint64_t>();
    t.f16_flops = e.at("f16_flops").get<double>();
    t.fp8_flops = e.at("fp8_flops").get<double>();
    t.bandwidth_method = e.at("bandwidth_method").get<std::string>();
    t.f16_method = e.at("f16_method").get<std::string>();
    t.fp8_method = e.at("fp8_method").get<std::string>();
    t.quick = e.at("quick").get<bool>();
    t.measured_at = e.at("measured_at").get<std::string>();
    if (!(t.bandwidth_bytes_per_s > 0) || !(t.f16_flops > 0) || t.fp8_flops < 0) return false;
    t.measured = true;
    t.from_cache = true;
    g = std::move(t);
    return true;
  } catch (const json::exception&) {
    return false;
  }
}

// What the CUDA backend runs natively on a device of this compute capability.
void fill_precisions(GpuInfo& g) {
  const int cc = g.cc_major * 10 + g.cc_minor;
  g.precisions = {"f32", "f16", "bf16", "int8"};
  if (cc >= 89) {
    g.precisions.push_back("fp8-e4m3");
    g.precision_note.clear();
  } else {
    g.precision_note =
        "no FP8 on sm_" + std::to_string(g.cc_major) + std::to_string(g.cc_minor) +
        ": FP8 E4M3 tensor cores need sm_89 or newer (Ada, Hopper); fp8 weights run dequantized";
  }
}

void probe_gpus(SystemInfo& s, const ProbeOptions& o) {
  for (const BackendInfo& b : backend_infos())
    s.backends.push_back({b.name, b.available, b.reason, b.device});
  const cuda::DeviceList l = cuda::describe_devices();
  s.cuda_available = l.available;
  s.cuda_reason = l.reason;
  // The backend registry's word wins: it is what make_backend acts on.
  for (const BackendStatus& b : s.backends)
    if (b.name == "cuda") {
      s.cuda_available = b.available && l.available;
      if (!b.available && !b.reason.empty()) s.cuda_reason = b.reason;
      if (b.available && !l.available) s.cuda_reason = l.reason;
    }
  if (!l.available) return;
  json all = s.cache_path.empty() ? json::object() : read_cache(s.cache_path);
  for (const cuda::DeviceDescription& d : l.devices) {
    GpuInfo g;
    g.index = d.index;
    g.name = d.name;
    g.cc_major = d.cc_major;
    g.cc_minor = d.cc_minor;
    g.sm_count = d.sm_count;
    g.memory_bytes = d.total_bytes;
    g.free_bytes = d.free_bytes;
    g.driver_version = d.driver_version;
    g.runtime_version = d.runtime_version;
    g.pci_bus_id = d.pci_bus_id;
    fill_precisions(g);
    const std::string key = gpu_cache_key(g, o.quick);
    if (!o.remeasure && all.contains("entries") && all["entries"].contains(key) &&
        load_gpu_entry(all["entries"][key], g)) {
      s.gpus.push_back(std::move(g));
      continue;
    }
    if (o.measure) {
      const cuda::DeviceMeasurement m = cuda::measure_device(d.index, o.quick);
      g.quick = o.quick;
      g.measured_at = utc_now();
      if (m.ok) {
        g.measured = true;
        g.bandwidth_bytes_per_s = m.bandwidth_bytes_per_s;
        g.bandwidth_buffer_bytes = m.bandwidth_buffer_bytes;
        g.f16_flops = m.f16_flops;
        g.fp8_flops = m.fp8_flops;
        g.bandwidth_method = m.bandwidth_method;
        g.f16_method = m.f16_method;
        g.fp8_method = m.fp8_method;
        write_cache(s.cache_path, key, gpu_entry_json(g));
      } else {
        g.measure_error = m.error;
      }
    }
    s.gpus.push_back(std::move(g));
  }
}

json gpu_json(const GpuInfo& g) {
  json j = {{"index", g.index},
            {"name", g.name},
            {"compute_capability", std::to_string(g.cc_major) + "." + std::to_string(g.cc_minor)},
            {"cc_major", g.cc_major},
            {"cc_minor", g.cc_minor},
            {"sm_count", g.sm_count},
            {"memory_bytes", g.memory_bytes},
            {"free_bytes", g.free_bytes},
            {"driver_version", g.driver_version},
            {"runtime_version", g.runtime_version},
            {"pci_bus_id", g.pci_bus_id},
            {"precisions", g.precisions},
            {"precision_note", g.precision_note},
            {"measured", g.measured},
            {"measure_error", g.measure_error},
            {"from_cache", g.from_cache}};
  const json e = gpu_entry_json(g);
  for (const auto& [k, v] : e.items()) j[k] = v;
  return j;
}

}  // namespace

std::string sysinfo_cache_path() {
  namespace fs = std::filesystem;
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  // The XDG spec says a relative value is invalid and must be ignored.
  if (xdg && *xdg && fs::path(xdg).is_absolute()) return (fs::path(xdg) / "brisk" / "sysinfo.json").string();
  const char* home = std::getenv("HOME");
  if (home && *home) return (fs::path(home) / ".cache" / "brisk" / "sysinfo.json").string();
  return {};
}

SystemInfo probe_system(const ProbeOptions& o) {
  const cpu::CpuDescription d = cpu::describe_cpu();
  SystemInfo s;
  s.cpu_model = d.model;
  s.logical_cpus = d.logical_cpus;
  s.physical_cores = d.physical_cores;
  s.l1d_cache_bytes = d.l1d_cache_bytes;
  s.l2_cache_bytes = d.l2_cache_bytes;
  s.l3_cache_bytes = d.l3_cache_bytes;
  s.memory_bytes = d.memory_bytes;
  s.features = d.features;
  s.kernel_isa = cpu::isa_name(cpu::active_isa());
  s.detected_isa = cpu::isa_name(cpu::detected_isa());
  s.cache_path = sysinfo_cache_path();

  const int threads = o.threads > 0 ? o.threads : ThreadPool::physical_cores();
  const std::string key = cache_key(s, threads, o.quick);
  bool cached = false;
  if (!o.remeasure && !s.cache_path.empty()) {
    const json all = read_cache(s.cache_path);
    cached = all.contains("entries") && all["entries"].contains(key) && load_entry(all["entries"][key], s);
  }
  if (!cached && o.measure) {
    measure(s, threads, o.quick);
    if (s.measured) write_cache(s.cache_path, key, entry_json(s));
  }
  if (o.gpu) probe_gpus(s, o);
  return s;
}

std::vector<BackendStatus> list_backends() {
  std::vector<BackendStatus> out;
  for (const BackendInfo& b : backend_infos()) out.push_back({b.name, b.available, b.reason, b.device});
  return out;
}

std::string resolve_backend(const std::string& name) {
  if (name != "auto") return name;
  for (const std::string& b : available_backends())
    if (b == "cuda") return "cuda";
  return "cpu";
}

bool backend_ceilings(const SystemInfo& s, const std::string& backend, double* bandwidth, double* flops) {
  double bw = 0, fl = 0;
  if (backend == "cuda") {
    if (!s.gpus.empty() && s.gpus[0].measured) bw = s.gpus[0].bandwidth_bytes_per_s, fl = s.gpus[0].f16_flops;
  } else if (s.measured) {
    bw = s.read_bandwidth_bytes_per_s, fl = s.fma_peak_flops;
  }
  if (bandwidth) *bandwidth = bw;
  if (flops) *flops = fl;
  return bw > 0 && fl > 0;
}

SystemInfo probe_system(int threads, bool measure) {
  ProbeOptions o;
  o.threads = threads;
  o.measure = measure;
  return probe_system(o);
}

std::string to_json(const SystemInfo& s, int indent) {
  json j = {{"cpu_model", s.cpu_model},
            {"logical_cpus", s.logical_cpus},
            {"physical_cores", s.physical_cores},
            {"l1d_cache_bytes", s.l1d_cache_bytes},
            {"l2_cache_bytes", s.l2_cache_bytes},
            {"l3_cache_bytes", s.l3_cache_bytes},
            {"memory_bytes", s.memory_bytes},
            {"features", s.features},
            {"kernel_isa", s.kernel_isa},
            {"detected_isa", s.detected_isa},
            {"measured", s.measured},
            {"from_cache", s.from_cache},
            {"cache_path", s.cache_path}};
  const json measured = entry_json(s);  // named: items() would dangle on a temporary
  for (const auto& [k, v] : measured.items()) j[k] = v;
  json backends = json::array();
  for (const BackendStatus& b : s.backends)
    backends.push_back(
        {{"name", b.name}, {"available", b.available}, {"reason", b.reason}, {"device", b.device}});
  j["backends"] = backends;
  j["cuda_available"] = s.cuda_available;
  j["cuda_reason"] = s.cuda_reason;
  json gpus = json::array();
  for (const GpuInfo& g : s.gpus) gpus.push_back(gpu_json(g));
  j["gpus"] = gpus;
  if (!s.backend_used.empty()) j["backend_used"] = s.backend_used;
  return j.dump(indent, ' ', false, json::error_handler_t::replace);
}

}  // namespace brisk
