#include "kernels/cpu/thread_pool.h"

#include <algorithm>
#include <chrono>
#include <exception>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <utility>

#ifdef __linux__
#include <sched.h>
#endif

namespace brisk {
namespace {

// Set while a thread runs a chunk of some pool's job, so that a parallel_for
// issued from inside a chunk runs inline instead of deadlocking on the pool.
thread_local bool tl_in_job = false;

struct InJob {
  bool saved = tl_in_job;
  InJob() { tl_in_job = true; }
  ~InJob() { tl_in_job = saved; }
};

int cores_from_sysfs() {
  namespace fs = std::filesystem;
  std::set<std::string> cores;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/sys/devices/system/cpu", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() < 4 || name.compare(0, 3, "cpu") != 0 ||
        !std::all_of(name.begin() + 3, name.end(), [](char c) { return c >= '0' && c <= '9'; }))
      continue;
    // SMT siblings share one list, so each distinct list is one physical core.
    std::ifstream in(entry.path() / "topology" / "thread_siblings_list");
    std::string list;
    if (in && std::getline(in, list) && !list.empty()) cores.insert(list);
  }
  return (int)cores.size();
}

int cores_from_cpuinfo() {
  std::ifstream in("/proc/cpuinfo");
  if (!in) return 0;
  std::set<std::pair<std::string, std::string>> cores;
  std::string line, physical = "0";
  auto value = [](const std::string& l) {
    const size_t colon = l.find(':');
    if (colon == std::string::npos) return std::string();
    size_t b = l.find_first_not_of(" \t", colon + 1);
    return b == std::string::npos ? std::string() : l.substr(b);
  };
  while (std::getline(in, line)) {
    if (line.rfind("physical id", 0) == 0) physical = value(line);
    if (line.rfind("core id", 0) == 0) cores.insert({physical, value(line)});
  }
  return (int)cores.size();
}

// How long a worker polls for the next job, and the caller for the last
// chunk, before sleeping on a condition variable.
constexpr auto kSpin = std::chrono::microseconds(200);

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Polls `done` until it holds or kSpin has passed; true when it held.
template <class Done>
bool spin_until(Done done) {
  const auto until = std::chrono::steady_clock::now() + kSpin;
  for (int i = 0;; ++i) {
    if (done()) return true;
    cpu_relax();
    if ((i & 63) == 63 && std::chrono::steady_clock::now() >= until) return done();
  }
}

int allowed_cpus() {
#ifdef __linux__
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return CPU_COUNT(&set);
#endif
  return 0;
}

}  // namespace

int ThreadPool::physical_cores() {
  static const int cached = [] {
    int n = cores_from_sysfs();
    if (n <= 0) n = cores_from_cpuinfo();
    if (n <= 0) n = (int)std::thread::hardware_concurrency();
    // A container or taskset may grant fewer CPUs than the machine has cores.
    const int allowed = allowed_cpus();
    if (allowed > 0) n = std::min(n, allowed);
    return std::max(1, n);
  }();
  return cached;
}

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads > 0 ? n_threads : physical_cores()) {
  workers_.reserve(n_threads_ - 1);
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
  }
  cv_work_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::worker(int /*index*/) {
  uint64_t seen = 0;
  for (;;) {
    auto ready = [&] { return stop_.load(std::memory_order_acquire) || generation_.load(std::memory_order_acquire) != seen; };
    if (!spin_until(ready)) {
      std::unique_lock<std::mutex> lock(mu_);
      sleeping_.fetch_add(1);
      cv_work_.wait(lock, ready);
      sleeping_.fetch_sub(1);
    }
    if (stop_.load(std::memory_order_acquire)) return;
    seen = generation_.load(std::memory_order_acquire);  // the job's fields were written before this
    {
      InJob in_job;
      const int64_t n = job_n_, chunk = job_chunk_;
      for (int64_t b = next_.fetch_add(chunk); b < n; b = next_.fetch_add(chunk))
        (*job_)(b, std::min(n, b + chunk));
    }
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      // The caller may be asleep on cv_done_: take mu_ so the notify cannot
      // fall between its predicate check and its wait.
      std::lock_guard<std::mutex> lock(mu_);
      cv_done_.notify_one();
    }
  }
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  if (n_threads_ == 1 || n < 2 * grain || tl_in_job) {
    fn(0, n);
    return;
  }
  std::lock_guard<std::mutex> call(call_mu_);
  // A few chunks per thread so a thread slowed by other load on the machine
  // does not hold everyone up, while keeping per-chunk overhead negligible.
  const int64_t target = (n + 4 * n_threads_ - 1) / (4 * n_threads_);
  const int64_t chunk = std::max(grain, target);
  job_ = &fn;
  job_n_ = n;
  job_chunk_ = chunk;
  next_.store(0);
  pending_.store((int)workers_.size(), std::memory_order_relaxed);
  {
    // Under mu_, so a worker about to sleep either sees the new generation
    // in its predicate or is already counted in sleeping_ and notified.
    std::lock_guard<std::mutex> lock(mu_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  if (sleeping_.load() > 0) cv_work_.notify_all();

  std::exception_ptr error;
  {
    InJob in_job;
    try {
      for (int64_t b = next_.fetch_add(chunk); b < n; b = next_.fetch_add(chunk))
        fn(b, std::min(n, b + chunk));
    } catch (...) {
      error = std::current_exception();
      next_.store(n);  // let the workers stop claiming chunks
    }
  }
  // Workers read job_ until they decrement pending_, so fn must outlive this wait.
  auto done = [&] { return pending_.load(std::memory_order_acquire) == 0; };
  if (!spin_until(done)) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_done_.wait(lock, done);
  }
  job_ = nullptr;
  if (error) std::rethrow_exception(error);
}

}  // namespace brisk
