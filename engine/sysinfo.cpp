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
  if (!o.remeasure && !s.cache_path.empty()) {
    const json all = read_cache(s.cache_path);
    if (all.contains("entries") && all["entries"].contains(key) && load_entry(all["entries"][key], s))
      return s;
  }
  if (!o.measure) return s;
  measure(s, threads, o.quick);
  if (s.measured) write_cache(s.cache_path, key, entry_json(s));
  return s;
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
  return j.dump(indent, ' ', false, json::error_handler_t::replace);
}

}  // namespace brisk
