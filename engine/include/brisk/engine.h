// The synchronous engine: deterministic given a seed; step() does one
// iteration (schedule, one packed forward, sample, detokenize).
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "brisk/engine_config.h"
#include "brisk/error.h"
#include "brisk/metrics.h"
#include "brisk/model_info.h"
#include "brisk/request_output.h"
#include "brisk/sampling_params.h"

namespace brisk {

class EngineImpl;

// The KV cache's per-block view, for block maps: owner < 0 means free.
struct KvBlockState {
  int64_t owner = -1;  // request id of the (first) owner
  int refcount = 0;
  int filled = 0;      // token slots holding a token
};

class Engine {
 public:
  // Loads the model and sizes the cache. Throws brisk::Error (naming the
  // file, field or config value) on bad input.
  static std::unique_ptr<Engine> create(const EngineConfig& config);
  ~Engine();

  // Returns the request id. arrival is on the metrics clock (seconds since
  // the engine started); unset means now. A request that can never run
  // (empty or too long a prompt, invalid params) is not thrown: it finishes
  // with FinishReason::Error at the next step, so others keep flowing.
  uint64_t add_request(const std::string& prompt, const SamplingParams& params,
                       std::optional<uint64_t> request_id = {}, std::optional<double> arrival = {});
  uint64_t add_request(const std::vector<int32_t>& prompt_ids, const SamplingParams& params,
                       std::optional<uint64_t> request_id = {}, std::optional<double> arrival = {});
  void abort(uint64_t request_id);
  std::vector<RequestOutput> step();
  bool has_unfinished() const;

  std::vector<int32_t> encode(const std::string& text, bool add_bos = true) const;
  std::string decode(const std::vector<int32_t>& ids) const;

  const ModelInfo& model_info() const;
  const EngineConfig& config() const;
  double now() const;  // the metrics clock

  MetricsSnapshot metrics() const;
  const std::vector<StepMetrics>& step_history() const;
  // Finished requests, in finishing order.
  const std::vector<RequestMetrics>& finished_requests() const;
  std::vector<KvBlockState> kv_blocks() const;
  void reset_metrics();
  // The context a request may use: the model's, capped by max_model_len,
  // the KV cache size and (without chunked prefill) one step's token budget.
  int max_model_len() const;
  int64_t num_kv_blocks() const;
  // Bytes one token's K and V take in the cache, over all layers (scales included).
  double kv_bytes_per_token() const;

 private:
  explicit Engine(std::unique_ptr<EngineImpl> impl);
  std::unique_ptr<EngineImpl> impl_;
};

}  // namespace brisk
