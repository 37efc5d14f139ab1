#include "backend/cuda/memory_plan.h"

#include <algorithm>
#include <climits>
#include <cstdio>
#include <map>
#include <tuple>

#include "brisk/error.h"
#include "kernels/cuda/cuda_kernels.h"
#include "model/model_weights.h"

namespace brisk {

GemmPath gemm_path(DType dt, int64_t n_out, int64_t k, const DeviceCaps& caps) {
  switch (dt) {
    case DType::F32:
      return GemmPath::Sgemm;
    case DType::F16:
    case DType::BF16:
      return GemmPath::Half;
    case DType::I8:
      // cuBLASLt's INT8 kernels want TN with k a multiple of 4 (16 for the
      // tensor-core ones) and 16-byte aligned rows; other shapes dequantize.
      if (caps.int8_activations && k % 16 == 0 && n_out % 4 == 0) return GemmPath::LtInt8;
      return GemmPath::Dequant;
    case DType::F8_E4M3:
      if (!caps.fp8) return GemmPath::Half;  // stored as F16 on such a device
      // FP8 GEMMs: TN only, k and the leading dimensions multiples of 16.
      if (k % 16 == 0 && n_out % 16 == 0) return GemmPath::LtFp8;
      return GemmPath::Dequant;
    default:  // F8_E5M2, Q8_0: weight-only formats
      return GemmPath::Dequant;
  }
}

const char* gemm_path_name(GemmPath p) {
  switch (p) {
    case GemmPath::Sgemm:
      return "sgemm";
    case GemmPath::Half:
      return "half";
    case GemmPath::LtInt8:
      return "cublaslt-int8";
    case GemmPath::LtFp8:
      return "cublaslt-fp8";
    case GemmPath::Dequant:
      return "dequant-f16";
  }
  return "?";
}

DType device_weight_dtype(DType stored, int64_t rows, const DeviceCaps& caps) {
  if (stored == DType::F8_E4M3 && !caps.fp8) return DType::F16;
  if (rows == 1 && (stored == DType::F16 || stored == DType::BF16)) return DType::F32;
  return stored;
}

int64_t device_weight_bytes(DType stored, int64_t rows, int64_t cols, const DeviceCaps& caps) {
  const DType dt = device_weight_dtype(stored, rows, caps);
  return rows * (int64_t)row_bytes(dt, cols) + (is_scaled(dt) ? rows * (int64_t)sizeof(float) : 0);
}

namespace {

template <typename F>
void for_each_tensor(const ModelWeights& w, F f) {
  f(w.token_embd);
  f(w.output_norm);
  if (w.output.data && w.output.data != w.token_embd.data) f(w.output);
  for (const LayerWeights& l : w.layers)
    for (const LayerTensorSpec& s : kLayerTensors) f(l.*s.field);
}

}  // namespace

int64_t device_weights_bytes(const ModelWeights& w, const DeviceCaps& caps) {
  int64_t total = 0;
  for_each_tensor(w, [&](const WeightTensor& t) {
    if (t.data) total += align_up(device_weight_bytes(t.dtype, t.rows, t.cols, caps));
  });
  return total;
}

std::vector<GemmUse> model_gemms(const ModelWeights& w, int64_t max_tokens, int64_t max_logits_rows) {
  std::map<std::tuple<int, int64_t, int64_t, int64_t>, GemmUse> uses;
  auto add = [&](const WeightTensor& t, int64_t rows) {
    if (!t.data) return;
    uses[{(int)t.dtype, t.rows, t.cols, rows}] = GemmUse{t.dtype, t.rows, t.cols, rows};
  };
  for (const LayerWeights& l : w.layers)
    for (const WeightTensor* t : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down})
      add(*t, max_tokens);
  add(w.output.data ? w.output : w.token_embd, max_logits_rows);
  std::vector<GemmUse> out;
  for (auto& [key, u] : uses) out.push_back(u);
  return out;
}

int64_t align_up(int64_t bytes, int64_t to) { return (bytes + to - 1) / to * to; }

int64_t WorkspacePlan::total() const {
  return align_up(act_bytes) + align_up(act_scale_bytes) + align_up(acc_bytes) + align_up(dequant_bytes) +
         align_up(attention_bytes) + align_up(attention_counter_bytes) + align_up(blas_bytes);
}

WorkspacePlan plan_workspace(const std::vector<GemmUse>& gemms, int64_t max_decode_rows, int n_heads,
                             int head_dim, const DeviceCaps& caps) {
  WorkspacePlan p;
  for (const GemmUse& g : gemms) {
    // Batches up to kGemvMaxRows rows take the GEMV, which needs nothing.
    if (g.max_rows <= cuda::kGemvMaxRows) continue;
    const GemmPath path = gemm_path(g.dtype, g.n_out, g.k, caps);
    switch (path) {
      case GemmPath::Sgemm:
        break;
      case GemmPath::Half:
        p.act_bytes = std::max(p.act_bytes, g.max_rows * g.k * 2);
        break;
      case GemmPath::Dequant:
        p.act_bytes = std::max(p.act_bytes, g.max_rows * g.k * 2);
        p.dequant_bytes = std::max(p.dequant_bytes, g.n_out * g.k * 2);
        break;
      case GemmPath::LtInt8:
      case GemmPath::LtFp8:
        p.act_bytes = std::max(p.act_bytes, g.max_rows * g.k);
        p.act_scale_bytes = std::max(p.act_scale_bytes, g.max_rows * (int64_t)sizeof(float));
        p.acc_bytes = std::max(p.acc_bytes, g.max_rows * g.n_out * 4);
        // A shape cuBLASLt turns down at run time falls back to Dequant:
        // keep room for it so that fallback never allocates mid-step.
        p.dequant_bytes = std::max(p.dequant_bytes, g.n_out * g.k * 2);
        p.act_bytes = std::max(p.act_bytes, g.max_rows * g.k * 2);
        break;
    }
  }
  if (max_decode_rows > 0 && n_heads > 0) {
    const int rows = (int)std::min(max_decode_rows, kMaxSplitRows);
    p.attention_bytes = (int64_t)cuda::attention_workspace_bytes(rows, n_heads, head_dim);
    p.attention_counter_bytes = (int64_t)(cuda::attention_split_counters(rows, n_heads) * sizeof(uint32_t));
  }
  p.blas_bytes = kBlasWorkspaceBytes;
  return p;
}

std::string format_bytes(int64_t bytes) {
  char buf[64];
  const double b = (double)bytes;
  if (bytes >= (1ll << 30))
    std::snprintf(buf, sizeof buf, "%.2f GiB", b / (1ll << 30));
  else if (bytes >= (1ll << 20))
    std::snprintf(buf, sizeof buf, "%.1f MiB", b / (1ll << 20));
  else if (bytes >= (1ll << 10))
    std::snprintf(buf, sizeof buf, "%.1f KiB", b / (1ll << 10));
  else
    std::snprintf(buf, sizeof buf, "%lld bytes", (long long)bytes);
  return buf;
}

int64_t plan_kv_blocks(const KvBudget& b) {
  if (b.bytes_per_block <= 0 || b.block_size <= 0)
    throw Error("internal: KV planning needs a positive block size and bytes per block");
  const std::string on = b.device.empty() ? std::string("the CUDA device") : b.device;
  const int64_t fixed = b.weight_bytes + b.workspace_bytes + b.reserve_bytes;
  const std::string placed = "the weights (" + format_bytes(b.weight_bytes) + "), the workspace (" +
                             format_bytes(b.workspace_bytes) + ") and a reserve of " +
                             format_bytes(b.reserve_bytes);
  if (fixed > b.free_bytes)
    throw Error("model does not fit on " + on + ": " + placed + " need " + format_bytes(fixed) +
                " but only " + format_bytes(b.free_bytes) +
                " is free (try a narrower weight_dtype or a smaller " + "max_num_batched_tokens)");
  const int64_t left = b.free_bytes - fixed;
  const int64_t max_blocks = INT32_MAX / b.block_size - b.extra_blocks;
  auto need = [&](int64_t blocks) { return (blocks + b.extra_blocks) * b.bytes_per_block; };
  if (b.num_kv_blocks > 0) {
    if (need(b.num_kv_blocks) > left)
      throw Error("EngineConfig.num_kv_blocks = " + std::to_string(b.num_kv_blocks) +
                  ": the KV cache needs " + format_bytes(need(b.num_kv_blocks)) + " but " + on + " has " +
                  format_bytes(left) + " free after " + placed);
    return b.num_kv_blocks;
  }
  if (b.kv_cache_bytes > 0) {
    const int64_t blocks = std::min<int64_t>(b.kv_cache_bytes / b.bytes_per_block, max_blocks);
    if (blocks < 1)
      throw Error("EngineConfig.kv_cache_bytes = " + std::to_string(b.kv_cache_bytes) +
                  ": too small for one KV block of this model (" + std::to_string(b.bytes_per_block) +
                  " bytes)");
    if (need(blocks) > left)
      throw Error("EngineConfig.kv_cache_bytes = " + std::to_string(b.kv_cache_bytes) +
                  ": the KV cache needs " + format_bytes(need(blocks)) + " but " + on + " has " +
                  format_bytes(left) + " free after " + placed);
    return blocks;
  }
  const int64_t budget = (int64_t)((double)left * b.utilization);
  const int64_t blocks = std::min<int64_t>(budget / b.bytes_per_block - b.extra_blocks, max_blocks);
  if (blocks < 1) {
    char util[32];
    std::snprintf(util, sizeof util, "%g", b.utilization);
    throw Error(std::string("EngineConfig.gpu_memory_utilization = ") + util + ": " + util + " x " +
                format_bytes(left) + " free on " + on + " after " + placed + " is " + format_bytes(budget) +
                ", less than one KV block of this model (" + format_bytes(b.bytes_per_block) +
                (b.extra_blocks ? " plus " + std::to_string(b.extra_blocks) + " scratch blocks" : "") +
                "); free device memory or lower max_num_batched_tokens");
  }
  return blocks;
}

}  // namespace brisk
