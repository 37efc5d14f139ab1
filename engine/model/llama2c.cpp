// llama2.c checkpoints: a 7-int header, then F32 weights stacked per layer.
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "brisk/error.h"
#include "brisk/model_tools.h"
#include "model/model_weights.h"

namespace brisk {

namespace {

// llama2.c keeps the vocabulary in a separate tokenizer file: the first of
// the usual names that lies beside the checkpoint, or "".
std::string tokenizer_beside(const std::string& checkpoint, int64_t vocab) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(checkpoint).parent_path();
  for (const std::string& name : {"tok" + std::to_string(vocab) + ".model", std::string("tokenizer.model"),
                                  "tok" + std::to_string(vocab) + ".bin", std::string("tokenizer.bin")}) {
    const fs::path cand = dir / name;
    std::error_code ec;
    if (fs::is_regular_file(cand, ec) && !fs::equivalent(cand, checkpoint, ec)) return cand.string();
  }
  return "";
}

}  // namespace

LoadedModel load_llama2c_model(const std::string& path) {
  auto file = MappedFile::open(path);
  ByteReader r(file->data(), file->size(), path);
  int32_t h[7];
  const char* names[7] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"};
  for (int i = 0; i < 7; ++i) h[i] = r.read<int32_t>(std::string("header field ") + names[i]);
  LoadedModel m;
  ModelConfig& c = m.config;
  c.architecture = "llama";
  c.dim = h[0];
  c.hidden_dim = h[1];
  c.n_layers = h[2];
  c.n_heads = h[3];
  c.n_kv_heads = h[4];
  const bool shared = h[5] > 0;
  c.vocab_size = h[5] == INT32_MIN ? 0 : std::abs(h[5]);
  c.context_length = h[6];
  if (c.n_heads > 0) c.head_dim = c.dim / c.n_heads;
  c.rope_dim = c.head_dim;
  c.check(path);

  const int64_t dim = c.dim, hid = c.hidden_dim, L = c.n_layers, kv = c.kv_dim(), V = c.vocab_size;
  const int64_t floats = V * dim + L * dim * 2 + L * dim * dim * 2 + L * kv * dim * 2 + L * hid * dim * 3 +
                         dim + (int64_t)c.context_length * c.head_dim + (shared ? 0 : V * dim);
  const uint64_t need = 28 + (uint64_t)floats * 4;
  if (file->size() < need)
    throw Error(path + ": truncated llama2.c checkpoint: the header (dim " + std::to_string(dim) + ", layers " +
                std::to_string(L) + ", vocab " + std::to_string(V) + ") needs " + std::to_string(need) +
                " bytes but the file has " + std::to_string(file->size()));

  const float* p = reinterpret_cast<const float*>(file->data() + 28);
  auto take = [&](const std::string& name, int64_t rows, int64_t cols) {
    WeightTensor t;
    t.name = name;
    t.data = p;
    t.rows = rows;
    t.cols = cols;
    p += rows * cols;
    return t;
  };
  ModelWeights& w = m.weights;
  w.files.push_back(file);
  w.layers.resize(L);
  w.token_embd = take("token_embedding_table", V, dim);
  for (int l = 0; l < L; ++l) w.layers[l].attn_norm = take("rms_att_weight[" + std::to_string(l) + "]", 1, dim);
  for (int l = 0; l < L; ++l) w.layers[l].wq = take("wq[" + std::to_string(l) + "]", dim, dim);
  for (int l = 0; l < L; ++l) w.layers[l].wk = take("wk[" + std::to_string(l) + "]", kv, dim);
  for (int l = 0; l < L; ++l) w.layers[l].wv = take("wv[" + std::to_string(l) + "]", kv, dim);
  for (int l = 0; l < L; ++l) w.layers[l].wo = take("wo[" + std::to_string(l) + "]", dim, dim);
  for (int l = 0; l < L; ++l) w.layers[l].ffn_norm = take("rms_ffn_weight[" + std::to_string(l) + "]", 1, dim);
  for (int l = 0; l < L; ++l) w.layers[l].w_gate = take("w1[" + std::to_string(l) + "]", hid, dim);
  for (int l = 0; l < L; ++l) w.layers[l].w_down = take("w2[" + std::to_string(l) + "]", dim, hid);
  for (int l = 0; l < L; ++l) w.layers[l].w_up = take("w3[" + std::to_string(l) + "]", hid, dim);
  w.output_norm = take("rms_final_weight", 1, dim);
  p += (int64_t)c.context_length * c.head_dim;  // freq_cis_real + freq_cis_imag: RoPE is computed, not read
  if (!shared) w.output = take("wcls", V, dim);

  namespace fs = std::filesystem;
  if (const std::string tok = tokenizer_beside(path, V); !tok.empty())
    m.tokenizer = fs::path(tok).extension() == ".model" ? Tokenizer::from_model_file(tok)
                                                        : Tokenizer::from_llama2c_file(tok, (int32_t)V);
  describe(m, path, "llama2c");
  m.info.name = fs::path(path).stem().string();
  return m;
}

std::string llama2c_tokenizer_beside(const std::string& checkpoint) {
  std::ifstream f(checkpoint, std::ios::binary);
  int32_t h[7];
  if (!f.read(reinterpret_cast<char*>(h), sizeof h) || h[5] == INT32_MIN) return "";
  return tokenizer_beside(checkpoint, std::abs(h[5]));
}

}  // namespace brisk
