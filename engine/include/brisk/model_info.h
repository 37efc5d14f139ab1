#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace brisk {

struct TensorInfo {
  std::string name;
  std::string dtype;  // "F32", "F16", "BF16", "Q8_0", "I8", "F8_E4M3", "F8_E5M2"
  std::vector<int64_t> shape;  // rows, cols (outer to inner)
  uint64_t bytes = 0;
};

// What a loaded model is: shown by `brisk-cli info`, the window and reports.
struct ModelInfo {
  std::string path;
  std::string format;        // "gguf", "safetensors", "llama2c", "demo"
  std::string architecture;  // "llama", "mistral"
  std::string name;
  bool synthetic = false;    // the built-in demo model: random weights, gibberish text
  int dim = 0, hidden_dim = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0;
  int vocab_size = 0, context_length = 0;
  float rope_theta = 10000.0f, norm_eps = 1e-5f;
  bool tied_embeddings = false;
  int64_t n_params = 0;
  uint64_t weight_bytes = 0;  // as the engine runs them (after any conversion), scales included
  std::string converted_to;   // set when the weights were converted at load (EngineConfig.weight_dtype)
  // A file brisk quantize wrote: what its weights were converted to there
  // ("int8 (per-channel scales)"); its own F32 widening is no unquantized reference.
  std::string file_conversion;
  std::string tokenizer;  // where the vocabulary came from
  // Tokens the tokenizer can decode; may be below vocab_size (padded
  // embeddings): ids from there up are never sampled.
  int tokenizer_vocab_size = 0;
  std::vector<TensorInfo> tensors;  // as the engine runs them
  // The file's own tensors when the load converted them (converted_to set);
  // empty otherwise, when `tensors` is what the file stores.
  std::vector<TensorInfo> stored_tensors;
};

}  // namespace brisk
