// One persistent pool of worker threads; ops split their work with
// parallel_for instead of creating threads per op. Between jobs a worker
// spins for a short while before it sleeps, and the caller spins before it
// waits for the last chunk: a decode step issues hundreds of small ops back
// to back, and a sleep/wake pair through the kernel per op (tens of
// microseconds on a virtual machine) cost more than the ops' memory traffic.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace brisk {

class ThreadPool {
 public:
  // n_threads <= 0 means the number of physical cores.
  explicit ThreadPool(int n_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }
  // Calls fn(begin, end) over disjoint chunks covering [0, n), on all threads
  // (the caller is one of them); returns when every chunk is done.
  // Chunks are at least `grain` long.
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain = 1);

  static int physical_cores();

 private:
  void worker(int index);

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex call_mu_;  // serialises parallel_for calls made from different threads
  std::mutex mu_;       // guards the sleeps (the condition variables' predicates)
  std::condition_variable cv_work_, cv_done_;
  const std::function<void(int64_t, int64_t)>* job_ = nullptr;
  int64_t job_n_ = 0, job_chunk_ = 0;
  std::atomic<int64_t> next_{0};  // start of the next unclaimed chunk of the current job
  std::atomic<int> pending_{0};   // workers not yet done with the current job
  std::atomic<uint64_t> generation_{0};  // bumped (release) once a job's fields are written
  std::atomic<int> sleeping_{0};         // workers blocked on cv_work_ (only they need a notify)
  std::atomic<bool> stop_{false};
};

}  // namespace brisk
