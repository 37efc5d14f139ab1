#include "brisk/model_tools.h"

#include "brisk/error.h"
#include "model/synthetic_model.h"
#include "quant/quantize.h"

namespace brisk {

ModelInfo inspect_model(const std::string& path, const std::string& tokenizer) {
  return load_model(path, tokenizer).info;
}

std::vector<ShapeDescription> synthetic_shapes() {
  std::vector<ShapeDescription> v;
  for (const auto& s : model_shapes())
    v.push_back({s.name, s.description, s.dim, s.hidden_dim, s.n_layers, s.n_heads, s.n_kv_heads, s.vocab_size,
                 s.context_length});
  return v;
}

ModelInfo make_synthetic_model_file(const SyntheticModelSpec& spec, const std::string& out_path) {
  ModelShape shape;
  if (spec.shape == "custom") {
    shape = {"custom", spec.dim, spec.hidden_dim, spec.n_layers, spec.n_heads, spec.n_kv_heads,
             spec.vocab_size, spec.context_length, "custom"};
    if (shape.n_kv_heads == 0) shape.n_kv_heads = shape.n_heads;
    if (shape.vocab_size == 0) shape.vocab_size = 1024;
    if (shape.context_length == 0) shape.context_length = 2048;
    if (shape.n_heads <= 0 || shape.dim % shape.n_heads != 0)
      throw Error("make-model: dim " + std::to_string(shape.dim) + " is not divisible by heads " +
                  std::to_string(shape.n_heads));
  } else {
    const ModelShape* s = find_shape(spec.shape);
    if (!s) {
      std::string names;
      for (const auto& m : model_shapes()) names += (names.empty() ? "" : ", ") + m.name;
      throw Error("make-model: unknown shape '" + spec.shape + "' (known: " + names + ")");
    }
    shape = *s;
  }
  DType dt;
  if (spec.dtype == "f32") dt = DType::F32;
  else if (spec.dtype == "f16") dt = DType::F16;
  else if (spec.dtype == "bf16") dt = DType::BF16;
  else throw Error("make-model: dtype '" + spec.dtype + "' is not supported (f32, f16, bf16)");
  const int min_vocab = demo_tokenizer(0)->vocab_size();
  if (shape.vocab_size < min_vocab)
    throw Error("make-model: vocab " + std::to_string(shape.vocab_size) + " is smaller than the demo vocabulary (" +
                std::to_string(min_vocab) + " pieces)");
  LoadedModel m = make_synthetic_model(shape, dt, spec.seed);
  write_gguf(m, out_path);
  m.info.path = out_path;
  m.info.format = "gguf";
  return m.info;
}

ModelInfo quantize_model_file(const EngineConfig& cfg, const std::string& out_path) {
  if (cfg.weight_dtype == "auto") throw Error("quantize: give a target dtype (weight_dtype is 'auto')");
  if (const std::string e = cfg.validate(); !e.empty()) throw Error(e);
  LoadedModel m = load_model_for(cfg);
  write_gguf(m, out_path);
  m.info.path = out_path;
  m.info.format = "gguf";
  return m.info;
}

}  // namespace brisk
