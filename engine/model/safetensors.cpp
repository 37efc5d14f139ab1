// Hugging Face directories: config.json + model.safetensors (or shards
// listed in model.safetensors.index.json) + tokenizer.model.
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "brisk/error.h"
#include "model/architecture.h"
#include "model/model_weights.h"

namespace brisk {

namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

json read_json(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw Error(path + ": cannot open");
  try {
    return json::parse(f);
  } catch (const std::exception& e) {
    throw Error(path + ": invalid JSON: " + e.what());
  }
}

struct SafeTensor {
  std::string file;
  DType dtype;
  std::vector<int64_t> shape;
  const uint8_t* data;
  uint64_t bytes;
};

void index_safetensors(const std::shared_ptr<MappedFile>& f, std::map<std::string, SafeTensor>& out) {
  const std::string& path = f->path();
  ByteReader r(f->data(), f->size(), path);
  const uint64_t n = r.read<uint64_t>("safetensors header length");
  if (n > r.remaining() || n > (uint64_t(100) << 20))
    throw Error(path + ": safetensors header length " + std::to_string(n) + " exceeds the file (" +
                std::to_string(f->size()) + " bytes); truncated or not a safetensors file");
  json h;
  try {
    h = json::parse(r.read_bytes((size_t)n, "safetensors header"));
  } catch (const json::exception& e) {
    throw Error(path + ": safetensors header is not valid JSON: " + e.what());
  }
  if (!h.is_object()) throw Error(path + ": safetensors header is not a JSON object");
  const uint64_t data_start = 8 + n, data_size = f->size() - data_start;
  for (auto& [name, t] : h.items()) {
    if (name == "__metadata__") continue;
    SafeTensor st;
    st.file = path;
    try {
      const std::string dt = t.at("dtype").get<std::string>();
      size_t es;
      if (dt == "F32") st.dtype = DType::F32, es = 4;
      else if (dt == "F16") st.dtype = DType::F16, es = 2;
      else if (dt == "BF16") st.dtype = DType::BF16, es = 2;
      else throw Error(path + ": tensor '" + name + "' has unsupported dtype " + dt + " (supported: F32, F16, BF16)");
      st.shape = t.at("shape").get<std::vector<int64_t>>();
      const auto off = t.at("data_offsets").get<std::vector<uint64_t>>();
      if (off.size() != 2 || off[0] > off[1] || off[1] > data_size)
        throw Error(path + ": tensor '" + name + "' data_offsets lie outside the file (truncated?)");
      uint64_t elems = 1;
      for (auto d : st.shape) {
        if (d < 0 || d > (int64_t(1) << 40)) throw Error(path + ": tensor '" + name + "' has absurd shape");
        elems *= (uint64_t)d;
      }
      if (elems * es != off[1] - off[0])
        throw Error(path + ": tensor '" + name + "' shape does not match its byte range");
      st.data = f->data() + data_start + off[0];
      st.bytes = off[1] - off[0];
    } catch (const json::exception& e) {
      throw Error(path + ": tensor '" + name + "' entry is malformed: " + e.what());
    }
    out[name] = st;
  }
}

// config.json values that change the math of a Llama-family model. The model
// code implements plain RoPE, a SiLU-gated MLP and projections without
// biases; a checkpoint that needs anything else would load and generate
// wrong text without a word, so it is refused naming the field and value.
void refuse_unimplemented(const json& cfg, const std::string& cfg_path) {
  auto bad = [&](const char* field, const std::string& why) {
    throw Error(cfg_path + ": field '" + field + "' = " + cfg[field].dump() + ": " + why);
  };
  auto present = [&](const char* field) { return cfg.contains(field) && !cfg[field].is_null(); };
  if (present("rope_scaling")) {
    // transformers writes {"rope_type": "default"} for plain RoPE.
    const json& rs = cfg["rope_scaling"];
    const std::string type = !rs.is_object() ? ""
                             : rs.contains("rope_type") && rs["rope_type"].is_string()
                                 ? rs["rope_type"].get<std::string>()
                             : rs.contains("type") && rs["type"].is_string() ? rs["type"].get<std::string>()
                                                                             : "";
    const bool plain = type == "default" && (!rs.contains("factor") || rs["factor"] == 1);
    if (!plain) bad("rope_scaling", "RoPE scaling is not implemented (only plain RoPE: null or absent)");
  }
  if (present("hidden_act")) {
    // "swish" is transformers' other name for SiLU.
    if (!cfg["hidden_act"].is_string() || (cfg["hidden_act"] != "silu" && cfg["hidden_act"] != "swish"))
      bad("hidden_act", "not implemented (the MLP is SiLU-gated: \"silu\")");
  }
  for (const char* f : {"attention_bias", "mlp_bias"})
    if (present(f)) {
      if (!cfg[f].is_boolean()) bad(f, "is not true or false");
      if (cfg[f].get<bool>()) bad(f, "biases are not implemented (the projections have none)");
    }
  if (present("quantization_config"))
    bad("quantization_config",
        "quantized checkpoints are not supported (F32, F16 or BF16 weights; "
        "brisk-cli quantize converts them)");
}

}  // namespace

LoadedModel load_hf_model_checked(const std::string& dir);

// nlohmann's type errors (a field of the wrong JSON type) become errors that
// name the directory; everything else passes through.
LoadedModel load_hf_model(const std::string& dir) {
  try {
    return load_hf_model_checked(dir);
  } catch (const json::exception& e) {
    throw Error(dir + ": config.json or the shard index has a field of the wrong type: " + e.what());
  }
}

LoadedModel load_hf_model_checked(const std::string& dir) {
  const std::string cfg_path = (fs::path(dir) / "config.json").string();
  if (!fs::exists(cfg_path)) throw Error(dir + ": not a model directory (no config.json)");
  const json cfg = read_json(cfg_path);
  LoadedModel m;
  ModelConfig& c = m.config;
  const Architecture* a = nullptr;
  if (cfg.contains("architectures") && cfg["architectures"].is_array() && !cfg["architectures"].empty()) {
    if (!cfg["architectures"][0].is_string()) throw Error(cfg_path + ": field 'architectures' must hold strings");
    const std::string cls = cfg["architectures"][0].get<std::string>();
    a = find_architecture_by_hf_class(cls);
    if (!a) throw Error(cfg_path + ": unknown architecture '" + cls + "' in field 'architectures' (supported: " + known_architectures() + ")");
  } else if (cfg.contains("model_type")) {
    if (!cfg["model_type"].is_string()) throw Error(cfg_path + ": field 'model_type' is not a string");
    const std::string mt = cfg["model_type"].get<std::string>();
    a = find_architecture(mt);
    if (!a) throw Error(cfg_path + ": unknown architecture '" + mt + "' in field 'model_type' (supported: " + known_architectures() + ")");
  } else {
    throw Error(cfg_path + ": missing field 'architectures'");
  }
  c.architecture = a->name;
  auto number = [&](const char* k, float fallback) {
    if (!cfg.contains(k) || cfg[k].is_null()) return fallback;
    if (!cfg[k].is_number()) throw Error(cfg_path + ": field '" + std::string(k) + "' is not a number");
    return cfg[k].get<float>();
  };
  auto get_int = [&](const char* k, int fallback, bool required) {
    if (!cfg.contains(k) || cfg[k].is_null()) {
      if (required) throw Error(cfg_path + ": missing field '" + k + "'");
      return fallback;
    }
    if (!cfg[k].is_number_integer()) throw Error(cfg_path + ": field '" + k + "' is not an integer");
    const int64_t v = cfg[k].get<int64_t>();
    if (v < 0 || v > 1000000000) throw Error(cfg_path + ": field '" + k + "' = " + std::to_string(v) + " is out of range");
    return (int)v;
  };
  c.dim = get_int("hidden_size", 0, true);
  c.hidden_dim = get_int("intermediate_size", 0, true);
  c.n_layers = get_int("num_hidden_layers", 0, true);
  c.n_heads = get_int("num_attention_heads", 0, true);
  c.n_kv_heads = get_int("num_key_value_heads", c.n_heads, false);
  c.vocab_size = get_int("vocab_size", 0, true);
  c.context_length = get_int("max_position_embeddings", 2048, false);
  c.bos_id = get_int("bos_token_id", 1, false);
  if (cfg.contains("eos_token_id") && cfg["eos_token_id"].is_array()) {
    // Several EOS ids: the first one ends generation.
    if (cfg["eos_token_id"].empty() || !cfg["eos_token_id"][0].is_number_integer())
      throw Error(cfg_path + ": field 'eos_token_id' must be an integer or a list of integers");
    c.eos_id = cfg["eos_token_id"][0].get<int>();
  } else {
    c.eos_id = get_int("eos_token_id", 2, false);
  }
  c.norm_eps = number("rms_norm_eps", a->default_norm_eps);
  c.rope_theta = number("rope_theta", a->default_rope_theta);
  if (c.n_heads > 0) c.head_dim = cfg.contains("head_dim") ? get_int("head_dim", 0, true) : c.dim / c.n_heads;
  c.rope_dim = c.head_dim;
  refuse_unimplemented(cfg, cfg_path);
  // Mistral attends to the last sliding_window positions only. Up to that
  // length full attention is the same, so the context stops there.
  if (cfg.contains("sliding_window") && !cfg["sliding_window"].is_null()) {
    const int window = get_int("sliding_window", 0, true);
    if (window < 1)
      throw Error(cfg_path + ": field 'sliding_window' = " + std::to_string(window) +
                  " must be >= 1 (or null)");
    c.context_length = std::min(c.context_length, window);
  }
  c.check(cfg_path);
  if (cfg.contains("tie_word_embeddings") && !cfg["tie_word_embeddings"].is_boolean())
    throw Error(cfg_path + ": field 'tie_word_embeddings' is not true or false");
  const bool tied = cfg.value("tie_word_embeddings", false);

  // Weights.
  std::map<std::string, SafeTensor> tensors;
  ModelWeights& w = m.weights;
  const fs::path index = fs::path(dir) / "model.safetensors.index.json";
  std::vector<std::string> files;
  if (fs::exists(index)) {
    const json j = read_json(index.string());
    if (!j.contains("weight_map") || !j["weight_map"].is_object())
      throw Error(index.string() + ": missing field 'weight_map'");
    for (auto& [name, file] : j["weight_map"].items()) {
      if (!file.is_string())
        throw Error(index.string() + ": field 'weight_map' entry '" + name + "' is not a file name");
      const std::string p = (fs::path(dir) / file.get<std::string>()).string();
      if (std::find(files.begin(), files.end(), p) == files.end()) files.push_back(p);
    }
  } else {
    files.push_back((fs::path(dir) / "model.safetensors").string());
  }
  for (const auto& p : files) {
    auto f = MappedFile::open(p);
    w.files.push_back(f);
    index_safetensors(f, tensors);
  }

  auto get = [&](const std::string& name, bool required = true) -> WeightTensor {
    WeightTensor t;
    t.name = name;
    auto it = tensors.find(name);
    if (it == tensors.end()) {
      if (required) throw Error(dir + ": missing tensor '" + name + "'");
      return t;
    }
    const SafeTensor& s = it->second;
    if (s.shape.empty() || s.shape.size() > 2) throw Error(s.file + ": tensor '" + name + "' must be 1-D or 2-D");
    t.dtype = s.dtype;
    t.data = s.data;
    t.rows = s.shape.size() == 2 ? s.shape[0] : 1;
    t.cols = s.shape.back();
    return t;
  };
  // HF rotates halves of each head (rotate_half); GGUF/llama2.c rotate
  // adjacent pairs. Permute q/k rows into the adjacent-pair layout so one
  // attention kernel serves both: interleaved row 2i+j = HF row j*hs/2 + i.
  auto unpermute = [&](WeightTensor t, int heads) {
    const int64_t hs = c.head_dim;
    if (t.rows != (int64_t)heads * hs) return t;  // shape error reported by expect_shape
    const size_t rb = row_bytes(t.dtype, t.cols);
    auto buf = std::make_shared<std::vector<uint8_t>>(t.rows * rb);
    const uint8_t* src = static_cast<const uint8_t*>(t.data);
    for (int h = 0; h < heads; ++h)
      for (int64_t i = 0; i < hs / 2; ++i)
        for (int j = 0; j < 2; ++j)
          std::memcpy(buf->data() + (h * hs + 2 * i + j) * rb, src + (h * hs + j * (hs / 2) + i) * rb, rb);
    w.buffers.push_back(buf);
    t.data = buf->data();
    return t;
  };
  // A bias tensor would be left out of every product (a config may not say attention_bias).
  for (const auto& [name, t] : tensors)
    if (name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0)
      throw Error(t.file + ": tensor '" + name + "': biases are not implemented (the projections have none)");
  w.token_embd = get("model.embed_tokens.weight");
  w.output_norm = get("model.norm.weight");
  w.output = get("lm_head.weight", !tied);
  // Tied, transformers takes the embedding table as the classifier and
  // ignores a stored lm_head.weight. A copy of the table changes nothing;
  // a different one means the config or the checkpoint is wrong.
  if (tied && w.output.data) {
    const WeightTensor& e = w.token_embd;
    const bool same = e.dtype == w.output.dtype && e.rows == w.output.rows && e.cols == w.output.cols &&
                      std::memcmp(e.data, w.output.data, e.bytes()) == 0;
    if (!same)
      throw Error(cfg_path +
                  ": field 'tie_word_embeddings' = true, but lm_head.weight differs from "
                  "model.embed_tokens.weight (transformers would ignore it; set it false to use it)");
    w.output = WeightTensor{};
  }
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    LayerWeights lw;
    for (const LayerTensorSpec& t : kLayerTensors) lw.*t.field = get(p + t.hf);
    lw.wq = unpermute(lw.wq, c.n_heads);
    lw.wk = unpermute(lw.wk, c.n_kv_heads);
    w.layers.push_back(lw);
  }
  const fs::path tok = fs::path(dir) / "tokenizer.model";
  if (fs::exists(tok)) m.tokenizer = Tokenizer::from_model_file(tok.string());
  describe(m, dir, "safetensors");
  if (cfg.contains("_name_or_path") && cfg["_name_or_path"].is_string()) m.info.name = cfg["_name_or_path"];
  return m;
}

}  // namespace brisk
