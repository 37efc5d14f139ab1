#include "quant/quantize.h"

#include <numeric>
#include <vector>

#include "brisk/error.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/thread_pool.h"
#include "kernels/quantize.h"

namespace brisk {

DType parse_dtype_name(const std::string& name, const std::string& field) {
  if (name == "f32") return DType::F32;
  if (name == "f16") return DType::F16;
  if (name == "bf16") return DType::BF16;
  if (name == "q8_0") return DType::Q8_0;
  if (name == "int8") return DType::I8;
  if (name == "fp8-e4m3") return DType::F8_E4M3;
  if (name == "fp8-e5m2") return DType::F8_E5M2;
  throw Error(field + " = '" + name + "': unknown dtype (f32, f16, bf16, q8_0, int8, fp8-e4m3, fp8-e5m2)");
}

std::string dtype_option_name(DType t) {
  switch (t) {
    case DType::F32: return "f32";
    case DType::F16: return "f16";
    case DType::BF16: return "bf16";
    case DType::Q8_0: return "q8_0";
    case DType::I8: return "int8";
    case DType::F8_E4M3: return "fp8-e4m3";
    case DType::F8_E5M2: return "fp8-e5m2";
    case DType::I32: break;
  }
  return "?";
}

namespace {

// Rewrites one weight into `to`: rows are decoded to F32 (whatever they were
// stored as) and quantized again. The new bytes, with the scales after them,
// live in a buffer the model keeps.
void convert_tensor(WeightTensor& w, DType to, bool per_tensor, ThreadPool& pool, ModelWeights& owner) {
  if (!w.data || (w.dtype == to && !(is_scaled(to) && per_tensor))) return;
  if (to == DType::Q8_0 && w.cols % kQ8_0BlockSize != 0)
    throw Error("EngineConfig.weight_dtype = 'q8_0': tensor '" + w.name + "' has rows of " +
                std::to_string(w.cols) + " elements, not a multiple of 32");
  std::vector<float> f32((size_t)(w.rows * w.cols));
  std::vector<int32_t> ids((size_t)w.rows);
  std::iota(ids.begin(), ids.end(), 0);
  cpu::embed(pool, f32.data(), w.data, w.dtype, ids.data(), (int)w.rows, (int)w.cols, w.scales);
  const size_t data_bytes = (size_t)w.rows * row_bytes(to, w.cols);
  const size_t scale_off = (data_bytes + 63) / 64 * 64;
  auto buf = std::make_shared<std::vector<uint8_t>>(scale_off + (is_scaled(to) ? w.rows * sizeof(float) : 0));
  float* scales = is_scaled(to) ? reinterpret_cast<float*>(buf->data() + scale_off) : nullptr;
  quantize_rows(pool, buf->data(), scales, f32.data(), to, w.rows, w.cols, per_tensor);
  w.data = buf->data();
  w.dtype = to;
  w.scales = scales;
  owner.buffers.push_back(std::move(buf));
}

}  // namespace

void convert_weights(LoadedModel& m, const EngineConfig& cfg) {
  if (cfg.weight_dtype == "auto") return;
  const DType to = parse_dtype_name(cfg.weight_dtype, "EngineConfig.weight_dtype");
  const bool per_tensor = cfg.fp8_per_tensor_scale && (to == DType::F8_E4M3 || to == DType::F8_E5M2);
  ThreadPool pool(cfg.threads);
  ModelWeights& w = m.weights;
  for (LayerWeights& l : w.layers)
    for (WeightTensor* t : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down})
      convert_tensor(*t, to, per_tensor, pool, w);
  if (cfg.quantize_embeddings) {
    convert_tensor(w.token_embd, to, per_tensor, pool, w);
    convert_tensor(w.output, to, per_tensor, pool, w);
  }
  // The shape checks already passed; describe() refreshes the per-tensor
  // dtypes and byte counts the info reports.
  const std::string name = m.info.name;
  const bool synthetic = m.info.synthetic;
  std::vector<TensorInfo> stored = std::move(m.info.tensors);
  describe(m, m.info.path, m.info.format);
  m.info.stored_tensors = std::move(stored);
  m.info.name = name;
  m.info.synthetic = synthetic;
  m.info.converted_to = dtype_option_name(to) + (per_tensor ? " (per-tensor scale)" : is_scaled(to) ? " (per-channel scales)" : "") +
                        (cfg.quantize_embeddings ? ", embeddings too" : "");
}

LoadedModel load_model_for(const EngineConfig& cfg) {
  LoadedModel m = load_model(cfg.model, cfg.tokenizer);
  convert_weights(m, cfg);
  // W8A8 multiplies INT8 weights by INT8 activations. validate() can only
  // refuse a named weight type; with "auto" the file decides, and on any
  // other weights the switch would label a run it never changed.
  if (cfg.int8_activations && !m.weights.layers.empty()) {
    bool any_i8 = false;
    for (const LayerWeights& l : m.weights.layers)
      for (const LayerTensorSpec& t : kLayerTensors) any_i8 = any_i8 || (l.*t.field).dtype == DType::I8;
    if (!any_i8)
      throw Error("EngineConfig.int8_activations = true: needs int8 weights, and " + cfg.model + " holds " +
                  dtype_name(m.weights.layers.front().wq.dtype) +
                  " weights (weight_dtype int8 converts them at load)");
  }
  return m;
}

}  // namespace brisk
