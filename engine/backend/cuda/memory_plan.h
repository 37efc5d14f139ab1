// Device memory planning for the CUDA backend. Host-only (no CUDA headers),
// built and unit-tested everywhere: which GEMM path each weight takes, what
// the weights occupy once uploaded, the workspace the forward needs at its
// planned limits, and how many KV blocks fit in what is left.
//
// Order of placement on the device: weights first, then the workspace, then
// the KV cache, so the KV pool is sized from what really remains.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/dtype.h"

namespace brisk {

struct ModelWeights;

// What the device offers that changes how weights are stored and multiplied.
struct DeviceCaps {
  int cc_major = 0, cc_minor = 0;
  bool fp8 = false;               // FP8 tensor cores (sm_89 and later)
  bool int8_activations = false;  // BackendOptions::int8_activations: W8A8 for I8 weights
};

// How the CUDA backend multiplies a batch of more than cuda::kGemvMaxRows
// rows by one weight [n_out, k] (smaller batches use the weight-only GEMV
// for every half and quantized dtype):
//   Sgemm:   F32 weights, cuBLAS SGEMM with TF32 off (so F32 greedy matches the CPU).
//   Half:    F16/BF16 weights, activations converted to the same type, cublasGemmEx, F32 accumulate.
//   LtInt8:  I8 weights with int8_activations: per-token INT8 activations, cuBLASLt INT8 x INT8 -> INT32.
//   LtFp8:   F8_E4M3 weights on an FP8 device: per-token E4M3 activations, cuBLASLt FP8 -> F32.
//   Dequant: everything else (I8 weight-only, F8_E5M2, Q8_0, and I8/E4M3 shapes cuBLASLt rejects):
//            the weight is dequantized to F16 into a planned scratch, then Half. The weight stays
//            stored at its own size; a batch this large is compute-bound, so one extra pass over
//            the weight costs little against n > 8 rows of work.
enum class GemmPath { Sgemm, Half, LtInt8, LtFp8, Dequant };
GemmPath gemm_path(DType stored, int64_t n_out, int64_t k, const DeviceCaps& caps);
const char* gemm_path_name(GemmPath p);

// The dtype a weight [rows, cols] is kept in on the device: as stored, except
// F8_E4M3 without FP8 tensor cores (sm_80) -> F16, dequantized once at load,
// and 1-D F16/BF16 vectors (norm weights) -> F32, converted once because the
// norm kernels read F32.
DType device_weight_dtype(DType stored, int64_t rows, const DeviceCaps& caps);
// Bytes of one weight on the device (data plus per-row scales of scaled dtypes).
int64_t device_weight_bytes(DType stored, int64_t rows, int64_t cols, const DeviceCaps& caps);
// Every distinct tensor of a model (a tied classifier counted once).
int64_t device_weights_bytes(const ModelWeights& w, const DeviceCaps& caps);

// One matmul weight as the forward uses it: the most rows it is multiplied with.
struct GemmUse {
  DType dtype = DType::F32;  // as stored by the loader
  int64_t n_out = 0, k = 0;
  int64_t max_rows = 0;
};
// The model's matmul weights (layers' projections with max_tokens rows, the
// classifier with max_logits_rows), one entry per distinct (dtype, shape, rows).
std::vector<GemmUse> model_gemms(const ModelWeights& w, int64_t max_tokens, int64_t max_logits_rows);

// Device workspace of one forward at its planned limits. Each buffer is
// reused by every op that needs it (ops run in order on one stream).
struct WorkspacePlan {
  int64_t act_bytes = 0;        // activations converted for a GEMM: F16/BF16 or INT8/FP8 [rows, k]
  int64_t act_scale_bytes = 0;  // per-token activation scales, F32 [rows]
  int64_t acc_bytes = 0;        // INT32/F32 accumulator [rows, n_out] of a cuBLASLt GEMM before rescale
  int64_t dequant_bytes = 0;    // one weight dequantized to F16 [n_out, k] (Dequant path)
  int64_t attention_bytes = 0;  // paged attention split partials
  int64_t attention_counter_bytes = 0;  // paged attention split counters (in-kernel merging), zeroed once
  int64_t blas_bytes = 0;  // cuBLAS / cuBLASLt workspace (fixed, so graph capture never allocates)
  int64_t total() const;
};
constexpr int64_t kBlasWorkspaceBytes = 32ll << 20;  // what cuBLAS recommends on Hopper
// Rounds every buffer up so each starts 256-byte aligned (cuBLASLt FP8/INT8 want 16).
int64_t align_up(int64_t bytes, int64_t to = 256);
// Attention's split partials are planned for the decode rows of one step
// (at most max_seqs), capped at kMaxSplitRows: past that many rows the
// device is full without splitting, and the kernel bounds its split count
// by the workspace it is given, so a larger batch just splits less.
constexpr int64_t kMaxSplitRows = 256;
WorkspacePlan plan_workspace(const std::vector<GemmUse>& gemms, int64_t max_decode_rows, int n_heads,
                             int head_dim, const DeviceCaps& caps);

// Implemented by backends that place device workspace up front (CUDA): the
// model calls it once from its constructor, after the weights and before the
// KV cache, so no step ever allocates. Other backends ignore it (the model
// finds it with dynamic_cast).
class WorkspaceReserver {
 public:
  virtual void reserve_workspace(const std::vector<GemmUse>& gemms, int64_t max_decode_rows, int n_heads,
                                 int head_dim) = 0;

 protected:
  ~WorkspaceReserver() = default;
};

// Held back from the KV pool for what is allocated outside the plan: CUDA
// graph executables, cuBLASLt internals, allocator granularity.
constexpr int64_t kDeviceReserveBytes = 256ll << 20;

// The inputs of KV sizing on a device. Exactly one source decides the count:
// num_kv_blocks if > 0, else kv_cache_bytes if > 0, else utilization x (free
// - weights - workspace - reserve).
struct KvBudget {
  std::string device;  // for messages, e.g. "NVIDIA H100 80GB HBM3"
  int64_t free_bytes = 0;
  int64_t weight_bytes = 0;
  int64_t workspace_bytes = 0;
  int64_t reserve_bytes = kDeviceReserveBytes;
  double utilization = 0.9;
  int64_t num_kv_blocks = 0;
  int64_t kv_cache_bytes = 0;
  int64_t bytes_per_block = 0;
  int block_size = 16;
  int64_t extra_blocks = 0;  // scratch blocks the model adds past the allocator's (padding rows)
};
// The number of KV blocks for the allocator. Throws Error naming the field
// (EngineConfig.num_kv_blocks / kv_cache_bytes / gpu_memory_utilization) and
// the figures when the weights, workspace and cache do not fit.
int64_t plan_kv_blocks(const KvBudget& b);

std::string format_bytes(int64_t bytes);  // "1.5 GiB", "320.0 MiB", "12 bytes"

}  // namespace brisk
