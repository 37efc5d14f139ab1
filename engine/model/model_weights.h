// A loaded model as data: its shape, and where each weight's bytes are
// (inside a memory map, or in a buffer when the format needed conversion).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "brisk/model_info.h"
#include "kernels/dtype.h"
#include "model/mapped_file.h"
#include "tokenizer/tokenizer.h"

namespace brisk {

struct ModelConfig {
  std::string architecture = "llama";
  int dim = 0, hidden_dim = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0;
  int head_dim = 0, rope_dim = 0;
  int vocab_size = 0, context_length = 0;
  float norm_eps = 1e-5f, rope_theta = 10000.0f;
  int32_t bos_id = 1, eos_id = 2;
  int kv_dim() const { return n_kv_heads * head_dim; }
  // Throws brisk::Error naming `origin` and the field when a value is absurd.
  void check(const std::string& origin) const;
};

struct WeightTensor {
  std::string name;
  const void* data = nullptr;
  DType dtype = DType::F32;
  int64_t rows = 0, cols = 0;  // rows x cols row-major (cols = the contiguous dim)
  const float* scales = nullptr;  // scaled dtypes (I8, F8_*): one F32 per row, value = q * scale
  size_t bytes() const { return rows * row_bytes(dtype, cols) + (is_scaled(dtype) ? rows * sizeof(float) : 0); }
};

struct LayerWeights {
  WeightTensor attn_norm, wq, wk, wv, wo, ffn_norm, w_gate, w_up, w_down;
};

// Every per-layer tensor with its name in GGUF (after "blk.N.") and in
// Hugging Face checkpoints (after "model.layers.N."): one table, so loaders
// and writers never disagree.
struct LayerTensorSpec {
  WeightTensor LayerWeights::*field;
  const char* gguf;
  const char* hf;
};
inline constexpr LayerTensorSpec kLayerTensors[] = {
    {&LayerWeights::attn_norm, "attn_norm.weight", "input_layernorm.weight"},
    {&LayerWeights::wq, "attn_q.weight", "self_attn.q_proj.weight"},
    {&LayerWeights::wk, "attn_k.weight", "self_attn.k_proj.weight"},
    {&LayerWeights::wv, "attn_v.weight", "self_attn.v_proj.weight"},
    {&LayerWeights::wo, "attn_output.weight", "self_attn.o_proj.weight"},
    {&LayerWeights::ffn_norm, "ffn_norm.weight", "post_attention_layernorm.weight"},
    {&LayerWeights::w_gate, "ffn_gate.weight", "mlp.gate_proj.weight"},
    {&LayerWeights::w_up, "ffn_up.weight", "mlp.up_proj.weight"},
    {&LayerWeights::w_down, "ffn_down.weight", "mlp.down_proj.weight"},
};

struct ModelWeights {
  WeightTensor token_embd, output_norm, output;
  std::vector<LayerWeights> layers;
  // Keep-alive for the bytes the tensors point into.
  std::vector<std::shared_ptr<MappedFile>> files;
  std::vector<std::shared_ptr<std::vector<uint8_t>>> buffers;
};

struct LoadedModel {
  ModelConfig config;
  ModelWeights weights;
  std::unique_ptr<Tokenizer> tokenizer;
  ModelInfo info;
};

// path: a .gguf file, a Hugging Face directory (config.json + safetensors),
// a llama2.c .bin, or "demo". tokenizer_path overrides the tokenizer.
// Throws brisk::Error naming the file and the field or tensor at fault.
LoadedModel load_model(const std::string& path, const std::string& tokenizer_path = {});

// Format loaders (model/gguf.cpp, model/safetensors.cpp, model/llama2c.cpp).
LoadedModel load_gguf_model(const std::string& path);
LoadedModel load_hf_model(const std::string& dir);
LoadedModel load_llama2c_model(const std::string& path);

// Checks a tensor's dtype/shape against what the config expects; fills ModelInfo.
void expect_shape(const std::string& origin, const WeightTensor& t, int64_t rows, int64_t cols);
// Fills info (shape, tensors, parameter count) from config + weights.
void describe(LoadedModel& m, const std::string& path, const std::string& format);

}  // namespace brisk
