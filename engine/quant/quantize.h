// Load-time weight conversion: a loaded model's matmul weights rewritten into
// another dtype (F32/F16/BF16/Q8_0, or INT8/FP8 with one scale per output
// channel), so one checkpoint can be run, and compared, at every precision.
#pragma once
#include <string>

#include "brisk/engine_config.h"
#include "kernels/dtype.h"
#include "model/model_weights.h"

namespace brisk {

// "f32" -> F32, "int8" -> I8, "fp8-e4m3" -> F8_E4M3, ...; throws brisk::Error
// naming `field` for an unknown name. "auto" is not a dtype (callers check it).
DType parse_dtype_name(const std::string& name, const std::string& field);
// The inverse, in the same spelling ("int8", "fp8-e4m3", ...).
std::string dtype_option_name(DType t);

// Converts the weights of `model` as cfg.weight_dtype / quantize_embeddings /
// fp8_per_tensor_scale say; a no-op for "auto". New buffers are owned by
// model.weights.buffers; model.info reports the new dtype and size.
void convert_weights(LoadedModel& model, const EngineConfig& cfg);

// load_model + convert_weights: what the engine, perplexity and quantize use.
LoadedModel load_model_for(const EngineConfig& cfg);

}  // namespace brisk
