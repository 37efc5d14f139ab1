#include "model/gguf.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "brisk/error.h"
#include "model/architecture.h"
#include "model/model_weights.h"

namespace brisk {

namespace {

size_t scalar_size(GgufType t) {
  switch (t) {
    case GgufType::U8: case GgufType::I8: case GgufType::BOOL: return 1;
    case GgufType::U16: case GgufType::I16: return 2;
    case GgufType::U32: case GgufType::I32: case GgufType::F32: return 4;
    case GgufType::U64: case GgufType::I64: case GgufType::F64: return 8;
    default: return 0;
  }
}

std::string read_string(ByteReader& r, const std::string& what) {
  const uint64_t n = r.read<uint64_t>(what + " length");
  if (n > r.remaining())
    r.fail("truncated or corrupt: " + what + " claims " + std::to_string(n) + " bytes but only " +
           std::to_string(r.remaining()) + " remain");
  return r.read_bytes((size_t)n, what);
}

double read_scalar(ByteReader& r, GgufType t, const std::string& what) {
  switch (t) {
    case GgufType::U8: return r.read<uint8_t>(what);
    case GgufType::I8: return r.read<int8_t>(what);
    case GgufType::U16: return r.read<uint16_t>(what);
    case GgufType::I16: return r.read<int16_t>(what);
    case GgufType::U32: return r.read<uint32_t>(what);
    case GgufType::I32: return r.read<int32_t>(what);
    case GgufType::F32: return r.read<float>(what);
    case GgufType::BOOL: return r.read<uint8_t>(what) ? 1 : 0;
    case GgufType::U64: return (double)r.read<uint64_t>(what);
    case GgufType::I64: return (double)r.read<int64_t>(what);
    case GgufType::F64: return r.read<double>(what);
    default: r.fail(what + " has unknown value type " + std::to_string((int)t));
  }
}

GgufValue read_value(ByteReader& r, GgufType t, const std::string& key) {
  GgufValue v;
  v.type = t;
  if (t == GgufType::STRING) {
    v.string = read_string(r, "metadata '" + key + "'");
  } else if (t == GgufType::ARRAY) {
    v.array_type = (GgufType)r.read<uint32_t>("metadata '" + key + "' array type");
    const uint64_t n = r.read<uint64_t>("metadata '" + key + "' array length");
    if (v.array_type == GgufType::STRING) {
      if (n > r.remaining() / 8) r.fail("metadata '" + key + "': array length " + std::to_string(n) + " is larger than the file");
      v.strings.reserve(n);
      for (uint64_t i = 0; i < n; ++i) v.strings.push_back(read_string(r, "metadata '" + key + "'[" + std::to_string(i) + "]"));
    } else {
      const size_t es = scalar_size(v.array_type);
      if (es == 0) r.fail("metadata '" + key + "' has unsupported array element type " + std::to_string((int)v.array_type));
      if (n > r.remaining() / es) r.fail("metadata '" + key + "': array length " + std::to_string(n) + " is larger than the file");
      if (n > (uint64_t(1) << 24)) r.fail("metadata '" + key + "': array length " + std::to_string(n) + " is absurd (more than 16M)");
      v.numbers.reserve(n);
      for (uint64_t i = 0; i < n; ++i) v.numbers.push_back(read_scalar(r, v.array_type, "metadata '" + key + "'"));
    }
  } else {
    v.number = read_scalar(r, t, "metadata '" + key + "'");
  }
  return v;
}

}  // namespace

bool ggml_type_to_dtype(uint32_t g, DType* out) {
  switch (g) {
    case kGgmlF32: *out = DType::F32; return true;
    case kGgmlF16: *out = DType::F16; return true;
    case kGgmlBF16: *out = DType::BF16; return true;
    case kGgmlQ8_0: *out = DType::Q8_0; return true;
    case kGgmlI8: *out = DType::I8; return true;
    case kBriskF8E4M3: *out = DType::F8_E4M3; return true;
    case kBriskF8E5M2: *out = DType::F8_E5M2; return true;
    default: return false;
  }
}

uint32_t dtype_to_ggml_type(DType t) {
  switch (t) {
    case DType::F32: return kGgmlF32;
    case DType::F16: return kGgmlF16;
    case DType::BF16: return kGgmlBF16;
    case DType::Q8_0: return kGgmlQ8_0;
    case DType::I8: return kGgmlI8;
    case DType::F8_E4M3: return kBriskF8E4M3;
    case DType::F8_E5M2: return kBriskF8E5M2;
    default: throw Error(std::string("GGUF cannot store dtype ") + dtype_name(t));
  }
}

GgufFile GgufFile::open(const std::string& path) {
  GgufFile g;
  g.file = MappedFile::open(path);
  ByteReader r(g.file->data(), g.file->size(), path);
  const std::string magic = r.read_bytes(4, "magic");
  if (magic != "GGUF") r.fail("not a GGUF file (wrong magic; expected 'GGUF')");
  g.version = r.read<uint32_t>("version");
  if (g.version != 2 && g.version != 3)
    r.fail("unsupported GGUF version " + std::to_string(g.version) + " (supported: 2, 3)");
  const uint64_t n_tensors = r.read<uint64_t>("tensor count");
  const uint64_t n_kv = r.read<uint64_t>("metadata count");
  // Each entry takes at least 12 (metadata) or 24 (tensor info) bytes.
  if (n_kv > r.remaining() / 12)
    r.fail("truncated or corrupt: metadata count " + std::to_string(n_kv) + " cannot fit in the " +
           std::to_string(r.remaining()) + " bytes that remain after the header");
  if (n_tensors > r.remaining() / 24)
    r.fail("truncated or corrupt: tensor count " + std::to_string(n_tensors) + " cannot fit in the " +
           std::to_string(r.remaining()) + " bytes that remain after the header");
  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key = read_string(r, "metadata key #" + std::to_string(i));
    const auto t = (GgufType)r.read<uint32_t>("metadata '" + key + "' type");
    g.metadata[key] = read_value(r, t, key);
  }
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo ti;
    ti.name = read_string(r, "tensor #" + std::to_string(i) + " name");
    const uint32_t nd = r.read<uint32_t>("tensor '" + ti.name + "' dimension count");
    if (nd == 0 || nd > 4) r.fail("tensor '" + ti.name + "' has " + std::to_string(nd) + " dimensions (expected 1..4)");
    for (uint32_t d = 0; d < nd; ++d) {
      const int64_t v = r.read<int64_t>("tensor '" + ti.name + "' dims");
      if (v <= 0 || v > (int64_t(1) << 40)) r.fail("tensor '" + ti.name + "' has absurd dimension " + std::to_string(v));
      ti.dims.push_back(v);
    }
    ti.ggml_type = r.read<uint32_t>("tensor '" + ti.name + "' type");
    ti.offset = r.read<uint64_t>("tensor '" + ti.name + "' offset");
    g.tensors.push_back(std::move(ti));
  }
  const uint64_t align = (uint64_t)g.number_or("general.alignment", 32);
  if (align == 0 || (align & (align - 1))) r.fail("general.alignment " + std::to_string(align) + " is not a power of two");
  const uint64_t data_start = (r.offset() + align - 1) / align * align;
  for (auto& ti : g.tensors) {
    DType dt;
    if (!ggml_type_to_dtype(ti.ggml_type, &dt))
      r.fail("tensor '" + ti.name + "' has unsupported type " + std::to_string(ti.ggml_type) +
             " (supported: F32, F16, BF16, Q8_0, I8, Brisk F8_E4M3/F8_E5M2)");
    int64_t n_elems = 1;
    for (auto d : ti.dims) {
      if (n_elems > (int64_t(1) << 40) / d) r.fail("tensor '" + ti.name + "' is absurdly large");
      n_elems *= d;
    }
    if (dt == DType::Q8_0 && ti.dims[0] % kQ8_0BlockSize != 0)
      r.fail("tensor '" + ti.name + "' is Q8_0 but its row length " + std::to_string(ti.dims[0]) + " is not a multiple of 32");
    ti.bytes = row_bytes(dt, ti.dims[0]) * (uint64_t)(n_elems / ti.dims[0]);
    if (ti.offset > g.file->size() || data_start + ti.offset > g.file->size() ||
        ti.bytes > g.file->size() - data_start - ti.offset)
      r.fail("truncated: tensor '" + ti.name + "' needs bytes [" + std::to_string(data_start + ti.offset) + ", " +
             std::to_string(data_start + ti.offset + ti.bytes) + ") but the file has " + std::to_string(g.file->size()));
    ti.data = g.file->data() + data_start + ti.offset;
  }
  return g;
}

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = metadata.find(key);
  return it == metadata.end() ? nullptr : &it->second;
}

double GgufFile::number(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) throw Error(file->path() + ": missing metadata key '" + key + "'");
  if (v->type == GgufType::STRING || v->type == GgufType::ARRAY)
    throw Error(file->path() + ": metadata key '" + key + "' is not a number");
  return v->number;
}

double GgufFile::number_or(const std::string& key, double fallback) const {
  return find(key) ? number(key) : fallback;
}

std::string GgufFile::string_or(const std::string& key, const std::string& fallback) const {
  const GgufValue* v = find(key);
  if (!v) return fallback;
  if (v->type != GgufType::STRING) throw Error(file->path() + ": metadata key '" + key + "' is not a string");
  return v->string;
}

const GgufTensorInfo* GgufFile::tensor(const std::string& name) const {
  for (const auto& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

// ---- the llama model from a GGUF file ----

LoadedModel load_gguf_model(const std::string& path) {
  GgufFile g = GgufFile::open(path);
  LoadedModel m;
  const std::string arch = g.string_or("general.architecture", "");
  if (arch.empty()) throw Error(path + ": missing metadata key 'general.architecture'");
  const Architecture* a = find_architecture(arch);
  if (!a) throw Error(path + ": unknown architecture '" + arch + "' in general.architecture (supported: " + known_architectures() + ")");
  ModelConfig& c = m.config;
  c.architecture = arch;
  auto key = [&](const char* k) { return arch + "." + k; };
  auto int_key = [&](const std::string& k) {
    const double v = g.number(k);
    if (v < 0 || v > 1e9) throw Error(path + ": metadata '" + k + "' = " + std::to_string(v) + " is out of range");
    return (int)v;
  };
  c.dim = int_key(key("embedding_length"));
  c.hidden_dim = int_key(key("feed_forward_length"));
  c.n_layers = int_key(key("block_count"));
  c.n_heads = int_key(key("attention.head_count"));
  c.n_kv_heads = g.find(key("attention.head_count_kv")) ? int_key(key("attention.head_count_kv")) : c.n_heads;
  c.context_length = int_key(key("context_length"));
  c.norm_eps = (float)g.number_or(key("attention.layer_norm_rms_epsilon"), a->default_norm_eps);
  c.rope_theta = (float)g.number_or(key("rope.freq_base"), a->default_rope_theta);
  if (c.n_heads > 0) c.head_dim = c.dim / c.n_heads;
  c.rope_dim = g.find(key("rope.dimension_count")) ? int_key(key("rope.dimension_count")) : c.head_dim;
  // The model code rotates by plain RoPE. A scaled one (linear, YaRN, Llama
  // 3.1's frequency factors) turns every position differently: loading it
  // anyway would generate wrong text without a word.
  const std::string scaling = g.string_or(key("rope.scaling.type"), "none");
  if (scaling != "none" && scaling != "linear")
    throw Error(path + ": metadata '" + key("rope.scaling.type") + "' = '" + scaling +
                "': RoPE scaling is not implemented (only plain RoPE: none)");
  for (const char* k : {"rope.scaling.factor", "rope.scale_linear"}) {
    const double f = g.number_or(key(k), 1);
    if (f != 1 && f != 0)  // 0 is llama.cpp's "not set"
      throw Error(path + ": metadata '" + key(k) + "' = " + std::to_string(f) +
                  ": RoPE scaling is not implemented (only plain RoPE: factor 1)");
  }
  if (g.tensor("rope_freqs.weight"))
    throw Error(path +
                ": tensor 'rope_freqs.weight' (RoPE frequency factors) is not implemented (only plain RoPE)");
  // Nor does it add biases: a bias tensor would be left out of every product.
  for (const GgufTensorInfo& t : g.tensors)
    if (t.name.size() > 5 && t.name.compare(t.name.size() - 5, 5, ".bias") == 0)
      throw Error(path + ": tensor '" + t.name +
                  "': biases are not implemented (Llama-family projections have none)");

  // Tokenizer from the metadata.
  const GgufValue* toks = g.find("tokenizer.ggml.tokens");
  if (toks) {
    const std::string tm = g.string_or("tokenizer.ggml.model", "llama");
    if (tm != "llama")
      throw Error(path + ": tokenizer.ggml.model '" + tm + "' is not supported (only sentencepiece 'llama' vocabularies)");
    Vocabulary v;
    v.pieces = toks->strings;
    if (const GgufValue* s = g.find("tokenizer.ggml.scores")) v.scores.assign(s->numbers.begin(), s->numbers.end());
    else v.scores.assign(v.pieces.size(), 0.0f);  // scores are optional in GGUF
    if (const GgufValue* t = g.find("tokenizer.ggml.token_type")) v.types.assign(t->numbers.begin(), t->numbers.end());
    if (v.scores.size() != v.pieces.size() || (!v.types.empty() && v.types.size() != v.pieces.size()))
      throw Error(path + ": tokenizer.ggml.scores/token_type length does not match tokenizer.ggml.tokens (" +
                  std::to_string(v.pieces.size()) + " tokens)");
    v.unk_id = (int32_t)g.number_or("tokenizer.ggml.unknown_token_id", 0);
    v.bos_id = (int32_t)g.number_or("tokenizer.ggml.bos_token_id", 1);
    v.eos_id = (int32_t)g.number_or("tokenizer.ggml.eos_token_id", 2);
    v.add_space_prefix = g.number_or("tokenizer.ggml.add_space_prefix", 1) != 0;
    m.tokenizer = Tokenizer::from_vocabulary(v, path + " (tokenizer.ggml.*)");
  }
  c.bos_id = (int32_t)g.number_or("tokenizer.ggml.bos_token_id", 1);
  c.eos_id = (int32_t)g.number_or("tokenizer.ggml.eos_token_id", 2);

  const GgufTensorInfo* emb = g.tensor("token_embd.weight");
  if (!emb) throw Error(path + ": missing tensor 'token_embd.weight'");
  if (emb->dims.size() != 2) throw Error(path + ": tensor 'token_embd.weight' is not 2-D");
  c.vocab_size = (int)emb->dims[1];
  c.check(path);

  auto get = [&](const std::string& name, bool required = true) -> WeightTensor {
    WeightTensor w;
    w.name = name;
    const GgufTensorInfo* t = g.tensor(name);
    if (!t) {
      if (required) throw Error(path + ": missing tensor '" + name + "'");
      return w;
    }
    ggml_type_to_dtype(t->ggml_type, &w.dtype);
    w.data = t->data;
    w.cols = t->dims[0];
    w.rows = 1;
    for (size_t i = 1; i < t->dims.size(); ++i) w.rows *= t->dims[i];
    if (t->dims.size() == 1) w.rows = 1;
    if (is_scaled(w.dtype)) {
      const std::string sn = scale_tensor_name(name);
      const GgufTensorInfo* s = g.tensor(sn);
      if (!s) throw Error(path + ": tensor '" + name + "' is " + dtype_name(w.dtype) + " but its scales '" + sn + "' are missing");
      if (s->ggml_type != kGgmlF32 || s->dims.size() != 1 || s->dims[0] != w.rows)
        throw Error(path + ": tensor '" + sn + "' must be F32 with " + std::to_string(w.rows) + " elements");
      w.scales = reinterpret_cast<const float*>(s->data);
    }
    return w;
  };
  ModelWeights& w = m.weights;
  w.files.push_back(g.file);
  w.token_embd = get("token_embd.weight");
  w.output_norm = get("output_norm.weight");
  w.output = get("output.weight", false);
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    LayerWeights lw;
    for (const LayerTensorSpec& t : kLayerTensors) lw.*t.field = get(p + t.gguf);
    w.layers.push_back(lw);
  }
  describe(m, path, "gguf");
  m.info.name = g.string_or("general.name", "");
  m.info.synthetic = g.number_or("brisk.synthetic", 0) != 0;
  m.info.file_conversion = g.string_or("brisk.converted_to", "");
  return m;
}

// ---- writer ----

namespace {
void put_u32(std::string& s, uint32_t v) { s.append(reinterpret_cast<const char*>(&v), 4); }
void put_u64(std::string& s, uint64_t v) { s.append(reinterpret_cast<const char*>(&v), 8); }
void put_str(std::string& s, const std::string& v) {
  put_u64(s, v.size());
  s += v;
}
}  // namespace

void GgufWriter::add_string(const std::string& k, const std::string& v) {
  put_str(kv_, k); put_u32(kv_, (uint32_t)GgufType::STRING); put_str(kv_, v); n_kv_++;
}
void GgufWriter::add_u32(const std::string& k, uint32_t v) {
  put_str(kv_, k); put_u32(kv_, (uint32_t)GgufType::U32); put_u32(kv_, v); n_kv_++;
}
void GgufWriter::add_i32(const std::string& k, int32_t v) {
  put_str(kv_, k); put_u32(kv_, (uint32_t)GgufType::I32); put_u32(kv_, (uint32_t)v); n_kv_++;
}
void GgufWriter::add_f32(const std::string& k, float v) {
  uint32_t b; std::memcpy(&b, &v, 4);
  put_str(kv_, k); put_u32(kv_, (uint32_t)GgufType::F32); put_u32(kv_, b); n_kv_++;
}
void GgufWriter::add_bool(const std::string& k, bool v) {
  put_str(kv_, k); put_u32(kv_, (uint32_t)GgufType::BOOL); kv_.push_back(v ? 1 : 0); n_kv_++;
}
void GgufWriter::add_strings(const std::string& k, const std::vector<std::string>& v) {
  put_str(kv_, k); put_u32(kv_, (uint32_t)GgufType::ARRAY); put_u32(kv_, (uint32_t)GgufType::STRING);
  put_u64(kv_, v.size());
  for (const auto& s : v) put_str(kv_, s);
  n_kv_++;
}
void GgufWriter::add_f32s(const std::string& k, const std::vector<float>& v) {
  put_str(kv_, k); put_u32(kv_, (uint32_t)GgufType::ARRAY); put_u32(kv_, (uint32_t)GgufType::F32);
  put_u64(kv_, v.size());
  kv_.append(reinterpret_cast<const char*>(v.data()), v.size() * 4);
  n_kv_++;
}
void GgufWriter::add_i32s(const std::string& k, const std::vector<int32_t>& v) {
  put_str(kv_, k); put_u32(kv_, (uint32_t)GgufType::ARRAY); put_u32(kv_, (uint32_t)GgufType::I32);
  put_u64(kv_, v.size());
  kv_.append(reinterpret_cast<const char*>(v.data()), v.size() * 4);
  n_kv_++;
}
void GgufWriter::add_tensor(const std::string& name, DType dtype, int64_t rows, int64_t cols, const void* data,
                            const float* row_scales) {
  if (is_scaled(dtype) && !row_scales) throw Error("GGUF tensor '" + name + "': " + dtype_name(dtype) + " needs row scales");
  tensors_.push_back({name, dtype, rows, cols, data});
  if (is_scaled(dtype)) tensors_.push_back({scale_tensor_name(name), DType::F32, 1, rows, row_scales});
}

void GgufWriter::write(const std::string& path) const {
  constexpr uint64_t kAlign = 32;
  std::string head = "GGUF";
  put_u32(head, 3);
  put_u64(head, tensors_.size());
  put_u64(head, n_kv_);
  head += kv_;
  uint64_t offset = 0;
  std::vector<uint64_t> offsets;
  for (const auto& t : tensors_) {
    put_str(head, t.name);
    const bool vec = t.rows == 1;
    put_u32(head, vec ? 1 : 2);
    put_u64(head, (uint64_t)t.cols);
    if (!vec) put_u64(head, (uint64_t)t.rows);
    put_u32(head, dtype_to_ggml_type(t.dtype));
    put_u64(head, offset);
    offsets.push_back(offset);
    offset += (t.rows * row_bytes(t.dtype, t.cols) + kAlign - 1) / kAlign * kAlign;
  }
  head.resize((head.size() + kAlign - 1) / kAlign * kAlign, '\0');
  // Written beside the destination, then renamed over it: the tensors may be
  // mapped from the file being replaced (quantize IN IN), and a failed write
  // must not leave a truncated model where a good one was. A symbolic link is
  // written through (the file it names is replaced, the link stays), and a
  // file replaced keeps its permissions, as writing it in place would.
  namespace fs = std::filesystem;
  std::error_code ec;
  std::string dest = path;
  // Followed link by link, so a link to a file not written yet names that file.
  for (int hops = 0; hops < 40 && fs::is_symlink(dest, ec); ++hops) {
    const fs::path target = fs::read_symlink(dest, ec);
    if (ec) break;
    dest =
        (target.is_absolute() ? target : fs::path(dest).parent_path() / target).lexically_normal().string();
  }
  const fs::file_status old_status = fs::status(dest, ec);
  const std::string tmp = dest + ".tmp-" + std::to_string(::getpid());
  const std::string named = dest == path ? path : path + " (a link to " + dest + ")";
  std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
  if (!f) throw Error(named + ": cannot open for writing (" + std::strerror(errno) + ")");
  f.write(head.data(), (std::streamsize)head.size());
  const std::string pad(kAlign, '\0');
  for (const auto& t : tensors_) {
    const uint64_t n = t.rows * row_bytes(t.dtype, t.cols);
    f.write(static_cast<const char*>(t.data), (std::streamsize)n);
    f.write(pad.data(), (std::streamsize)((kAlign - n % kAlign) % kAlign));
  }
  f.close();
  if (!f) {
    const std::string why = std::strerror(errno);
    std::remove(tmp.c_str());
    throw Error(named + ": write failed (" + why + ")");
  }
  if (fs::is_regular_file(old_status)) fs::permissions(tmp, old_status.permissions(), ec);
  if (std::rename(tmp.c_str(), dest.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    std::remove(tmp.c_str());
    throw Error(named + ": cannot replace it with the written file (" + why + ")");
  }
}

}  // namespace brisk
