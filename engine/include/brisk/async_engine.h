// Runs an Engine's step loop on its own thread. add/abort are thread-safe
// and never block on a step; outputs are delivered per request through the
// callback, on the engine thread.
#pragma once
#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "brisk/engine.h"

namespace brisk {

class AsyncEngine {
 public:
  using Callback = std::function<void(const RequestOutput&)>;

  explicit AsyncEngine(std::unique_ptr<Engine> engine);
  ~AsyncEngine();  // stops the loop; unfinished requests are aborted

  // Returns the id at once; the request joins the next step.
  uint64_t add_request(const std::string& prompt, const SamplingParams& params, Callback on_output);
  uint64_t add_request(const std::vector<int32_t>& prompt_ids, const SamplingParams& params,
                       Callback on_output);
  // Several text requests that join the same step: none can produce a
  // token before all are in (an A/B run's two sides start together). Ids in
  // order.
  struct NewRequest {
    std::string prompt;
    SamplingParams params;
    Callback on_output;
  };
  std::vector<uint64_t> add_requests(std::vector<NewRequest> requests);
  void abort(uint64_t request_id);

  // Thread-safe copies of the engine's state, updated after every step.
  MetricsSnapshot metrics() const;
  std::vector<KvBlockState> kv_blocks() const;
  std::vector<StepMetrics> steps_since(uint64_t step) const;
  const ModelInfo& model_info() const { return engine_->model_info(); }
  const EngineConfig& config() const { return engine_->config(); }
  int max_model_len() const { return engine_->max_model_len(); }
  int64_t num_kv_blocks() const { return engine_->num_kv_blocks(); }
  // The tokenizer is immutable once loaded, so decoding is safe from any thread.
  std::string decode(const std::vector<int32_t>& ids) const { return engine_->decode(ids); }
  // Waits until no request is left (for tools and tests).
  void wait_idle();

 private:
  struct Pending;
  void loop();

  std::unique_ptr<Engine> engine_;
  mutable std::mutex mu_;
  std::condition_variable cv_, idle_cv_;
  std::vector<std::unique_ptr<Pending>> inbox_;
  std::vector<uint64_t> aborts_;
  std::atomic<uint64_t> next_id_{1};
  bool stop_ = false;
  bool busy_ = false;
  double last_publish_ = -1;  // engine clock of the last published snapshot
  MetricsSnapshot snapshot_;
  std::vector<KvBlockState> blocks_;
  std::vector<StepMetrics> steps_;
  std::thread thread_;
};

}  // namespace brisk
