// What run_matrix needs from a single run beyond run_benchmark's public
// signature: a periodic look at the engine (live plots, progress) and a way
// to stop early.
#pragma once
#include <atomic>
#include <functional>

#include "brisk/benchmark.h"

namespace brisk::bench {

struct RunHooks {
  // Called about every `interval_s` while the timed part runs, and once when
  // the warm-up ends; `done` finished requests of `total`.
  std::function<void(const Engine&, int done, int total)> tick;
  std::function<void()> warmup_done;
  double interval_s = 0.1;
  const std::atomic<bool>* stop = nullptr;  // set: abandon the run (returns with stopped = true)
};

BenchResult run_benchmark_hooked(Engine& engine, const WorkloadSpec& spec,
                                 const std::vector<WorkloadRequest>& w, int warmup, const RunHooks& hooks,
                                 bool* stopped);

}  // namespace brisk::bench
