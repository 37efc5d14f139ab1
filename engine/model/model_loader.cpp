#include <filesystem>

#include "brisk/error.h"
#include "model/synthetic_model.h"
#include "model/model_weights.h"

namespace brisk {

namespace fs = std::filesystem;

void ModelConfig::check(const std::string& origin) const {
  auto bad = [&](const std::string& field, int64_t v, const std::string& why) {
    throw Error(origin + ": " + field + " = " + std::to_string(v) + " " + why);
  };
  if (dim <= 0 || dim > 65536) bad("dim (embedding length)", dim, "is absurd (expected 1..65536)");
  if (hidden_dim <= 0 || hidden_dim > 262144) bad("hidden_dim (feed-forward length)", hidden_dim, "is absurd");
  if (n_layers <= 0 || n_layers > 1024) bad("n_layers (block count)", n_layers, "is absurd (expected 1..1024)");
  if (n_heads <= 0 || n_heads > 1024) bad("n_heads", n_heads, "is absurd");
  if (n_kv_heads <= 0 || n_kv_heads > n_heads || n_heads % n_kv_heads != 0)
    bad("n_kv_heads", n_kv_heads, "must divide n_heads = " + std::to_string(n_heads));
  if (head_dim <= 0 || head_dim % 2 != 0 || head_dim > 1024) bad("head_dim", head_dim, "must be even and positive");
  if (head_dim * n_heads != dim && head_dim == dim / n_heads)
    bad("dim", dim, "is not divisible by n_heads = " + std::to_string(n_heads));
  if (rope_dim <= 0 || rope_dim > head_dim || rope_dim % 2 != 0)
    bad("rope dimension count", rope_dim, "must be even and at most head_dim = " + std::to_string(head_dim));
  if (vocab_size <= 0 || vocab_size > 10000000) bad("vocab_size", vocab_size, "is absurd");
  if (context_length <= 0 || context_length > (1 << 24)) bad("context_length", context_length, "is absurd");
  if (!(norm_eps > 0 && norm_eps < 1)) throw Error(origin + ": rms norm epsilon " + std::to_string(norm_eps) + " is absurd");
  if (!(rope_theta > 0)) throw Error(origin + ": rope theta " + std::to_string(rope_theta) + " must be positive");
}

void expect_shape(const std::string& origin, const WeightTensor& t, int64_t rows, int64_t cols) {
  if (t.rows != rows || t.cols != cols)
    throw Error(origin + ": tensor '" + t.name + "' has shape [" + std::to_string(t.rows) + ", " +
                std::to_string(t.cols) + "], expected [" + std::to_string(rows) + ", " + std::to_string(cols) + "]");
}

void describe(LoadedModel& m, const std::string& path, const std::string& format) {
  const ModelConfig& c = m.config;
  ModelWeights& w = m.weights;
  const int64_t kv = c.kv_dim(), q = (int64_t)c.n_heads * c.head_dim;
  expect_shape(path, w.token_embd, c.vocab_size, c.dim);
  expect_shape(path, w.output_norm, 1, c.dim);
  if (w.output.data) expect_shape(path, w.output, c.vocab_size, c.dim);
  for (const auto& l : w.layers) {
    expect_shape(path, l.attn_norm, 1, c.dim);
    expect_shape(path, l.wq, q, c.dim);
    expect_shape(path, l.wk, kv, c.dim);
    expect_shape(path, l.wv, kv, c.dim);
    expect_shape(path, l.wo, c.dim, q);
    expect_shape(path, l.ffn_norm, 1, c.dim);
    expect_shape(path, l.w_gate, c.hidden_dim, c.dim);
    expect_shape(path, l.w_up, c.hidden_dim, c.dim);
    expect_shape(path, l.w_down, c.dim, c.hidden_dim);
    for (const WeightTensor* n : {&l.attn_norm, &l.ffn_norm})
      if (n->dtype != DType::F32 && n->dtype != DType::F16 && n->dtype != DType::BF16)
        throw Error(path + ": norm tensor '" + n->name + "' must be F32, F16 or BF16");
  }
  ModelInfo& i = m.info;
  i.path = path;
  i.format = format;
  i.architecture = c.architecture;
  i.dim = c.dim;
  i.hidden_dim = c.hidden_dim;
  i.n_layers = c.n_layers;
  i.n_heads = c.n_heads;
  i.n_kv_heads = c.n_kv_heads;
  i.head_dim = c.head_dim;
  i.vocab_size = c.vocab_size;
  i.context_length = c.context_length;
  i.rope_theta = c.rope_theta;
  i.norm_eps = c.norm_eps;
  i.tied_embeddings = w.output.data == nullptr;
  i.tensors.clear();
  i.n_params = 0;
  i.weight_bytes = 0;
  auto add = [&](const WeightTensor& t) {
    if (!t.data) return;
    i.tensors.push_back({t.name, dtype_name(t.dtype), {t.rows, t.cols}, t.bytes()});
    i.n_params += t.rows * t.cols;
    i.weight_bytes += t.bytes();
  };
  add(w.token_embd);
  for (const auto& l : w.layers)
    for (const LayerTensorSpec& t : kLayerTensors) add(l.*t.field);
  add(w.output_norm);
  add(w.output);
  if (m.tokenizer) i.tokenizer = m.tokenizer->origin();
}

LoadedModel load_model(const std::string& path, const std::string& tokenizer_path) {
  LoadedModel m;
  if (path.empty() || path == "demo") {
    m = make_synthetic_model(*find_shape("demo"), DType::F32, 0);
    m.info.path = "demo";
  } else if (fs::is_directory(path)) {
    m = load_hf_model(path);
  } else if (!fs::exists(path)) {
    throw Error(path + ": no such file or directory");
  } else {
    // Sniff the format from the first bytes, not the extension.
    auto f = MappedFile::open(path);
    if (f->size() >= 4 && std::memcmp(f->data(), "GGUF", 4) == 0) {
      m = load_gguf_model(path);
    } else if (path.size() > 4 && path.substr(path.size() - 4) == ".bin") {
      m = load_llama2c_model(path);
    } else if (path.size() > 12 && path.substr(path.size() - 12) == ".safetensors") {
      m = load_hf_model(fs::path(path).parent_path().string());
    } else {
      throw Error(path + ": unrecognised model format (wrong magic: expected a GGUF file, a llama2.c .bin, "
                         "or a Hugging Face directory)");
    }
  }
  if (!tokenizer_path.empty()) {
    const bool sp_model = tokenizer_path.size() > 6 && tokenizer_path.substr(tokenizer_path.size() - 6) == ".model";
    m.tokenizer = sp_model ? Tokenizer::from_model_file(tokenizer_path) : Tokenizer::from_llama2c_file(tokenizer_path, m.config.vocab_size);
    m.info.tokenizer = m.tokenizer->origin();
  }
  if (!m.tokenizer)
    throw Error(path + ": no tokenizer found (the file has no vocabulary and none lies beside it); pass --tokenizer FILE");
  if (m.tokenizer->vocab_size() > m.config.vocab_size)
    throw Error(m.tokenizer->origin() + ": the tokenizer has " + std::to_string(m.tokenizer->vocab_size()) +
                " tokens but the model's vocab_size is " + std::to_string(m.config.vocab_size));
  m.info.tokenizer_vocab_size = m.tokenizer->vocab_size();
  m.config.bos_id = m.tokenizer->bos_id();
  m.config.eos_id = m.tokenizer->eos_id();
  return m;
}

}  // namespace brisk
