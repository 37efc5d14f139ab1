#include "model/synthetic_model.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>

#include "brisk/error.h"
#include "model/gguf.h"

extern const unsigned char brisk_demo_tokenizer_model[];
extern const unsigned long brisk_demo_tokenizer_model_size;

namespace brisk {

const std::vector<ModelShape>& model_shapes() {
  static const std::vector<ModelShape> shapes = {
      {"demo", 256, 768, 4, 8, 4, 1024, 2048, "built-in demo: 3.7M parameters"},
      {"tiny", 64, 192, 2, 4, 2, 1024, 512, "for fast tests: 0.2M parameters"},
      {"110m", 768, 2048, 12, 12, 12, 32000, 1024, "llama2.c stories110M shape: 110M parameters, tied classifier",
       true},
      {"1.1b", 2048, 5632, 22, 32, 4, 32000, 2048, "TinyLlama 1.1B shape: 1.1B parameters"},
  };
  return shapes;
}

const ModelShape* find_shape(const std::string& name) {
  for (const auto& s : model_shapes())
    if (s.name == name) return &s;
  return nullptr;
}

std::unique_ptr<Tokenizer> demo_tokenizer(int vocab_size) {
  const std::string proto(reinterpret_cast<const char*>(brisk_demo_tokenizer_model), brisk_demo_tokenizer_model_size);
  auto tok = Tokenizer::from_serialized_proto(proto, "built-in demo vocabulary");
  if (tok->vocab_size() >= vocab_size) return tok;
  Vocabulary v = tok->vocabulary();
  std::vector<size_t> normal;
  for (size_t i = 0; i < v.pieces.size(); ++i)
    if (v.types[i] == 1) normal.push_back(i);
  std::unordered_set<std::string> seen(v.pieces.begin(), v.pieces.end());
  float score = *std::min_element(v.scores.begin(), v.scores.end());
  uint64_t s = 0x5eed;
  while ((int)v.pieces.size() < vocab_size) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    const std::string& a = v.pieces[normal[(s >> 33) % normal.size()]];
    const std::string& b = v.pieces[normal[(s >> 13) % normal.size()]];
    std::string joined = a + (b.rfind("\xe2\x96\x81", 0) == 0 ? b.substr(3) : b);  // no '▁' inside a piece
    if (!seen.insert(joined).second) continue;
    v.pieces.push_back(joined);
    v.scores.push_back(score -= 1.0f);  // merged last: encoding of common text barely changes
    v.types.push_back(1);
  }
  return Tokenizer::from_vocabulary(v, "built-in demo vocabulary (padded to " + std::to_string(vocab_size) + ")");
}

namespace {

// SplitMix64: fast, seedable, identical on every platform.
struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  float uniform() { return (float)((next() >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f; }
};

}  // namespace

LoadedModel make_synthetic_model(const ModelShape& s, DType dtype, uint64_t seed) {
  if (dtype != DType::F32 && dtype != DType::F16 && dtype != DType::BF16)
    throw Error(std::string("make-model: dtype ") + dtype_name(dtype) + " is not supported (f32, f16, bf16)");
  LoadedModel m;
  ModelConfig& c = m.config;
  c.architecture = "llama";
  c.dim = s.dim;
  c.hidden_dim = s.hidden_dim;
  c.n_layers = s.n_layers;
  c.n_heads = s.n_heads;
  c.n_kv_heads = s.n_kv_heads;
  c.head_dim = s.dim / s.n_heads;
  c.rope_dim = c.head_dim;
  c.vocab_size = s.vocab_size;
  c.context_length = s.context_length;
  c.check("shape '" + s.name + "'");
  Rng rng{seed * 0x2545f4914f6cdd1dull + 1};
  ModelWeights& w = m.weights;
  // Uniform weights scaled by 1/sqrt(fan_in) keep activations O(1) through
  // the layers, so logits are varied rather than saturated or flat.
  auto make = [&](const std::string& name, int64_t rows, int64_t cols, bool norm) {
    WeightTensor t;
    t.name = name;
    t.rows = rows;
    t.cols = cols;
    t.dtype = norm ? DType::F32 : dtype;
    auto buf = std::make_shared<std::vector<uint8_t>>(t.bytes());
    const float scale = norm ? 0.0f : std::sqrt(3.0f / (float)cols);
    const int64_t n = rows * cols;
    for (int64_t i = 0; i < n; ++i) {
      const float v = norm ? 1.0f + 0.1f * rng.uniform() : scale * rng.uniform();
      if (t.dtype == DType::F32) reinterpret_cast<float*>(buf->data())[i] = v;
      else if (t.dtype == DType::F16) reinterpret_cast<uint16_t*>(buf->data())[i] = fp32_to_fp16(v);
      else reinterpret_cast<uint16_t*>(buf->data())[i] = fp32_to_bf16(v);
    }
    t.data = buf->data();
    w.buffers.push_back(buf);
    return t;
  };
  const int64_t q = (int64_t)c.n_heads * c.head_dim, kv = c.kv_dim();
  w.token_embd = make("token_embd.weight", c.vocab_size, c.dim, false);
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    LayerWeights lw;
    lw.attn_norm = make(p + "attn_norm.weight", 1, c.dim, true);
    lw.wq = make(p + "attn_q.weight", q, c.dim, false);
    lw.wk = make(p + "attn_k.weight", kv, c.dim, false);
    lw.wv = make(p + "attn_v.weight", kv, c.dim, false);
    lw.wo = make(p + "attn_output.weight", c.dim, q, false);
    lw.ffn_norm = make(p + "ffn_norm.weight", 1, c.dim, true);
    lw.w_gate = make(p + "ffn_gate.weight", c.hidden_dim, c.dim, false);
    lw.w_up = make(p + "ffn_up.weight", c.hidden_dim, c.dim, false);
    lw.w_down = make(p + "ffn_down.weight", c.dim, c.hidden_dim, false);
    w.layers.push_back(lw);
  }
  w.output_norm = make("output_norm.weight", 1, c.dim, true);
  if (!s.tied) w.output = make("output.weight", c.vocab_size, c.dim, false);
  m.tokenizer = demo_tokenizer(c.vocab_size);
  describe(m, "demo:" + s.name, "demo");
  m.info.name = "Brisk synthetic " + s.name + " (random weights, seed " + std::to_string(seed) + ")";
  m.info.synthetic = true;
  return m;
}

void write_gguf(const LoadedModel& m, const std::string& path) {
  const ModelConfig& c = m.config;
  GgufWriter g;
  const std::string a = c.architecture;
  g.add_string("general.architecture", a);
  g.add_string("general.name", m.info.name.empty() ? "brisk model" : m.info.name);
  g.add_u32("general.alignment", 32);
  g.add_bool("brisk.synthetic", m.info.synthetic);
  if (!m.info.converted_to.empty()) g.add_string("brisk.converted_to", m.info.converted_to);
  g.add_u32(a + ".context_length", c.context_length);
  g.add_u32(a + ".embedding_length", c.dim);
  g.add_u32(a + ".feed_forward_length", c.hidden_dim);
  g.add_u32(a + ".block_count", c.n_layers);
  g.add_u32(a + ".attention.head_count", c.n_heads);
  g.add_u32(a + ".attention.head_count_kv", c.n_kv_heads);
  g.add_u32(a + ".rope.dimension_count", c.rope_dim);
  g.add_f32(a + ".rope.freq_base", c.rope_theta);
  g.add_f32(a + ".attention.layer_norm_rms_epsilon", c.norm_eps);
  if (m.tokenizer) {
    const Vocabulary v = m.tokenizer->vocabulary();
    g.add_string("tokenizer.ggml.model", "llama");
    g.add_strings("tokenizer.ggml.tokens", v.pieces);
    g.add_f32s("tokenizer.ggml.scores", v.scores);
    g.add_i32s("tokenizer.ggml.token_type", v.types);
    g.add_u32("tokenizer.ggml.bos_token_id", v.bos_id);
    g.add_u32("tokenizer.ggml.eos_token_id", v.eos_id);
    g.add_u32("tokenizer.ggml.unknown_token_id", v.unk_id);
    g.add_bool("tokenizer.ggml.add_space_prefix", v.add_space_prefix);
  }
  const ModelWeights& w = m.weights;
  auto put = [&](const std::string& name, const WeightTensor& t) {
    if (t.data) g.add_tensor(name, t.dtype, t.rows, t.cols, t.data, t.scales);
  };
  put("token_embd.weight", w.token_embd);
  for (size_t l = 0; l < w.layers.size(); ++l) {
    const LayerWeights& lw = w.layers[l];
    const std::string p = "blk." + std::to_string(l) + ".";
    for (const LayerTensorSpec& t : kLayerTensors) put(p + t.gguf, lw.*t.field);
  }
  put("output_norm.weight", w.output_norm);
  put("output.weight", w.output);
  g.write(path);
}

}  // namespace brisk
