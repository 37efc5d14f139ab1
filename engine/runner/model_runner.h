// Executes one scheduled step: packs every scheduled token into one flat,
// padding-free batch (token ids, positions, slot mapping, block tables,
// context lengths, which rows produce logits), applies pending KV block
// copies, and runs the model's forward. It decides nothing.
#pragma once
#include <vector>

#include "cache/kv_cache.h"
#include "model/llama_model.h"
#include "runner/forward_batch.h"
#include "sched/scheduler.h"

namespace brisk {

class ModelRunner {
 public:
  ModelRunner(LlamaModel& model, KvCache& cache) : model_(model), cache_(cache) { batch_.clear(); }
  // Logits [rows, vocab] in the order of so.seqs: per sequence, its
  // prompt_logits_count prompt rows, then one row if it samples (1 +
  // num_draft for a speculative one).
  std::vector<float>& execute(const SchedulerOutput& so);  // the sampler may edit the logits in place
  // The same step for plain greedy sampling: each logits row reduced to its
  // argmax (among the first `vocab` ids) on the backend, same order.
  const std::vector<int32_t>& execute_greedy(const SchedulerOutput& so, int vocab);
  const ForwardBatch& last_batch() const { return batch_; }

 private:
  void pack(const SchedulerOutput& so);
  void add_padding_rows(const std::vector<std::pair<uint64_t, int64_t>>& seqs);

  LlamaModel& model_;
  KvCache& cache_;
  ForwardBatch batch_;
  std::vector<float> logits_;
  std::vector<int32_t> greedy_ids_;
};

}  // namespace brisk
