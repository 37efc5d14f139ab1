// CUDA graphs for decode steps, the host-only part (built and unit-tested
// everywhere): which batch sizes get a captured graph, which one a batch
// uses, and the interface the model drives capture and replay through.
//
// A decode step (every row a query of length 1) is padded up to the
// smallest bucket that holds it; padding rows read one scratch KV block and
// are never sampled. Buckets are dense where batches are small (a graph
// saves most there: launch overhead dominates) and every 8 rows above, as
// vLLM does, so padding wastes at most 7 rows of compute.
#pragma once
#include <vector>

namespace brisk {

// 1, 2, 4, 8, then every 8 up to 256, then every 32; the largest is always
// max_rows itself. Empty when max_rows < 1.
std::vector<int> graph_buckets(int max_rows);
// The smallest bucket >= n, or 0 when n is above the largest (the step runs eagerly).
int pick_bucket(const std::vector<int>& buckets, int n);

// Implemented by backends that can record one step's work and replay it
// (CUDA graphs). The model finds it with dynamic_cast; on other backends, or
// when disabled (BackendOptions::cuda_graphs), every step runs eagerly.
class StepGraphs {
 public:
  virtual bool graphs_enabled() const = 0;
  virtual bool has_graph(int bucket) const = 0;
  // Ops issued between begin_capture and end_capture are recorded, not run.
  virtual void begin_capture() = 0;
  virtual void end_capture(int bucket) = 0;
  // After a failed op inside a capture: ends it and drops what was recorded.
  virtual void abort_capture() noexcept = 0;
  virtual void replay(int bucket) = 0;

 protected:
  ~StepGraphs() = default;
};

}  // namespace brisk
