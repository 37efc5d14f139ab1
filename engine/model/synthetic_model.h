// Llama-shaped models with seeded random weights: the built-in demo model
// (used whenever no model is given) and `brisk-cli make-model`. Their text
// is gibberish; they exist so every feature and benchmark runs on a fresh
// machine with no model on disk.
#pragma once
#include <string>
#include <vector>

#include "model/model_weights.h"

namespace brisk {

struct ModelShape {
  std::string name;
  int dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, context_length;
  std::string description;
  bool tied = false;  // classifier shares the token embedding
};

const std::vector<ModelShape>& model_shapes();
const ModelShape* find_shape(const std::string& name);  // nullptr when unknown

// The demo vocabulary: sentencepiece BPE trained at build time on
// resources/demo/corpus.txt. Larger vocabularies are padded with pieces
// joined from two existing ones, so a random model's output still reads as
// (gibberish) text.
std::unique_ptr<Tokenizer> demo_tokenizer(int vocab_size);

// dtype: F32, F16 or BF16 for the matrices (norms stay F32).
LoadedModel make_synthetic_model(const ModelShape& shape, DType dtype, uint64_t seed);

// Writes any loaded model as GGUF v3 (tensors as stored, tokenizer embedded).
void write_gguf(const LoadedModel& m, const std::string& path);

}  // namespace brisk
