// Model-file tools behind `brisk-cli info` and `brisk-cli make-model`.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "brisk/engine_config.h"
#include "brisk/model_info.h"

namespace brisk {

// Loads (memory-maps) a model and describes it without building an engine.
ModelInfo inspect_model(const std::string& path, const std::string& tokenizer = {});

// The tokenizer file the loader takes for a llama2.c checkpoint when none is
// given (tokN.model, tokenizer.model, tokN.bin or tokenizer.bin beside it, N
// the checkpoint's vocabulary size), or "" when there is none to find.
std::string llama2c_tokenizer_beside(const std::string& checkpoint);

struct SyntheticModelSpec {
  std::string shape = "demo";  // a name from synthetic_shapes(), or "custom" with the dims below
  int dim = 0, hidden_dim = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, vocab_size = 0, context_length = 0;
  std::string dtype = "f32";   // f32 | f16 | bf16
  uint64_t seed = 0;
};

struct ShapeDescription {
  std::string name, description;
  int dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, context_length;
};
std::vector<ShapeDescription> synthetic_shapes();

// Writes a Llama-shaped GGUF with seeded random weights and the demo
// vocabulary; returns what was written. Throws brisk::Error on bad specs.
ModelInfo make_synthetic_model_file(const SyntheticModelSpec& spec, const std::string& out_path);

// Loads cfg.model, converts its weights as cfg.weight_dtype (and
// quantize_embeddings, fp8_per_tensor_scale) say, and writes the result as a
// GGUF (scaled types with "<tensor>.scale" companions; see docs/CLI.md).
// Returns what was written. Throws brisk::Error naming the file or field.
ModelInfo quantize_model_file(const EngineConfig& cfg, const std::string& out_path);

}  // namespace brisk
