#include "quant/quantize.h"

#include "brisk/error.h"

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
    case DType::F32:
      return "f32";
    case DType::F16:
      return "f16";
    case DType::BF16:
      return "bf16";
    case DType::Q8_0:
      return "q8_0";
    case DType::I8:
      return "int8";
    case DType::F8_E4M3:
      return "fp8-e4m3";
    case DType::F8_E5M2:
      return "fp8-e5m2";
    case DType::I32:
      break;
  }
  return "?";
}

void convert_weights(LoadedModel& model, const EngineConfig& cfg) {
  (void)model;
  if (cfg.weight_dtype == "auto") return;
  throw Error("EngineConfig.weight_dtype = '" + cfg.weight_dtype + "': conversion not implemented yet");
}

LoadedModel load_model_for(const EngineConfig& cfg) {
  LoadedModel m = load_model(cfg.model, cfg.tokenizer);
  convert_weights(m, cfg);
  return m;
}

}  // namespace brisk
