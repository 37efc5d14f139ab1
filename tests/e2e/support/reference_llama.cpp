#include "e2e/support/reference_llama.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <stdexcept>
#include <utility>

namespace brisk_test {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the readers below reinterpret little-endian file bytes directly");

[[noreturn]] void Fail(const std::string& path, const std::string& what) {
  throw std::runtime_error(path + ": " + what);
}

std::vector<char> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Fail(path, "cannot open");
  return std::vector<char>(std::istreambuf_iterator<char>(in), {});
}

// Decodes an IEEE binary16 / bfloat16 bit pattern exactly (every value fits in a double).
double HalfToDouble(uint16_t h) {
  const int sign = h >> 15;
  const int exp = (h >> 10) & 0x1f;
  const int mant = h & 0x3ff;
  double v;
  if (exp == 0) {
    v = std::ldexp(mant, -24);
  } else if (exp == 31) {
    v = mant ? NAN : INFINITY;
  } else {
    v = std::ldexp(mant + 1024, exp - 25);
  }
  return sign ? -v : v;
}

double Bf16ToDouble(uint16_t b) {
  const uint32_t bits = uint32_t{b} << 16;
  return std::bit_cast<float>(bits);
}

// Rounds a double to the nearest (ties to even) value of a binary format with `mant_bits`
// stored mantissa bits and `exp_bits` exponent bits, and returns its bit pattern. Written
// arithmetically rather than with bit tricks so it shares nothing with the engine's
// converters.
uint32_t RoundToBinary(double v, int mant_bits, int exp_bits) {
  const uint32_t sign = std::signbit(v) ? 1u << (mant_bits + exp_bits) : 0u;
  const int bias = (1 << (exp_bits - 1)) - 1;
  const uint32_t exp_all_ones = (1u << exp_bits) - 1;
  const double a = std::fabs(v);
  if (std::isnan(a)) return sign | (exp_all_ones << mant_bits) | (1u << (mant_bits - 1));
  const uint32_t inf = sign | (exp_all_ones << mant_bits);
  if (std::isinf(a)) return inf;
  const int emin = 1 - bias;
  if (a < std::ldexp(1.0, emin)) {
    // Subnormal: units of 2^(emin - mant_bits); a result of 2^mant_bits units is the
    // smallest normal, which this same encoding expresses correctly.
    return sign | static_cast<uint32_t>(std::nearbyint(std::ldexp(a, mant_bits - emin)));
  }
  int e2;
  std::frexp(a, &e2);
  int exp = e2 - 1;  // a = 1.f * 2^exp
  double mant = std::nearbyint(std::ldexp(a, mant_bits - exp));
  if (mant == std::ldexp(1.0, mant_bits + 1)) {
    mant /= 2;
    ++exp;
  }
  if (exp > bias) return inf;
  const uint32_t frac = static_cast<uint32_t>(mant) - (1u << mant_bits);
  return sign | (static_cast<uint32_t>(exp + bias) << mant_bits) | frac;
}

uint16_t DoubleToHalf(double v) { return static_cast<uint16_t>(RoundToBinary(v, 10, 5)); }
uint16_t DoubleToBf16(double v) { return static_cast<uint16_t>(RoundToBinary(v, 7, 8)); }

// ---------------------------------------------------------------------------------------
// llama2.c

struct Cursor {
  const std::string& path;
  const std::vector<char>& bytes;
  size_t pos = 0;

  void Need(size_t n) const {
    if (n > bytes.size() || pos > bytes.size() - n) {
      Fail(path, "truncated at byte " + std::to_string(pos) + " (need " + std::to_string(n) +
                     " more bytes, file has " + std::to_string(bytes.size()) + ")");
    }
  }
  template <typename T>
  T Get() {
    Need(sizeof(T));
    T v;
    std::memcpy(&v, bytes.data() + pos, sizeof(T));
    pos += sizeof(T);
    return v;
  }
  std::vector<double> Floats(size_t n) {
    Need(n * 4);
    std::vector<double> out(n);
    for (size_t i = 0; i < n; ++i) {
      float f;
      std::memcpy(&f, bytes.data() + pos + 4 * i, 4);
      out[i] = f;
    }
    pos += n * 4;
    return out;
  }
  std::string String() {
    const uint64_t n = Get<uint64_t>();
    Need(n);
    std::string s(bytes.data() + pos, n);
    pos += n;
    return s;
  }
};

void CheckDims(const std::string& path, const RefDims& d) {
  if (d.dim <= 0 || d.hidden_dim <= 0 || d.n_layers <= 0 || d.n_heads <= 0 ||
      d.n_kv_heads <= 0 || d.vocab_size <= 0 || d.dim % d.n_heads != 0 ||
      d.n_heads % d.n_kv_heads != 0 || d.head_size() % 2 != 0) {
    Fail(path, "implausible dimensions dim=" + std::to_string(d.dim) +
                   " hidden=" + std::to_string(d.hidden_dim) +
                   " layers=" + std::to_string(d.n_layers) +
                   " heads=" + std::to_string(d.n_heads) + "/" + std::to_string(d.n_kv_heads) +
                   " vocab=" + std::to_string(d.vocab_size));
  }
}

// ---------------------------------------------------------------------------------------
// GGUF

enum GgufType : uint32_t {
  kU8 = 0, kI8, kU16, kI16, kU32, kI32, kF32, kBool, kString, kArray, kU64, kI64, kF64
};

struct GgufValue {
  bool is_string = false;
  double number = 0;
  std::string text;
};

double ReadGgufNumber(Cursor& c, uint32_t type) {
  switch (type) {
    case kU8: return c.Get<uint8_t>();
    case kI8: return c.Get<int8_t>();
    case kU16: return c.Get<uint16_t>();
    case kI16: return c.Get<int16_t>();
    case kU32: return c.Get<uint32_t>();
    case kI32: return c.Get<int32_t>();
    case kF32: return c.Get<float>();
    case kBool: return c.Get<uint8_t>();
    case kU64: return static_cast<double>(c.Get<uint64_t>());
    case kI64: return static_cast<double>(c.Get<int64_t>());
    case kF64: return c.Get<double>();
    default: Fail(c.path, "unknown GGUF value type " + std::to_string(type));
  }
}

void SkipGgufValue(Cursor& c, uint32_t type) {
  if (type == kString) {
    c.String();
  } else if (type == kArray) {
    const uint32_t item_type = c.Get<uint32_t>();
    const uint64_t n = c.Get<uint64_t>();
    for (uint64_t i = 0; i < n; ++i) SkipGgufValue(c, item_type);
  } else {
    ReadGgufNumber(c, type);
  }
}

struct GgufTensor {
  std::vector<uint64_t> ne;
  uint32_t type = 0;
  uint64_t offset = 0;
};

struct GgufFile {
  std::string path;
  std::vector<char> bytes;
  std::map<std::string, GgufValue> kv;  // Scalars and strings only; arrays are skipped.
  std::map<std::string, GgufTensor> tensors;
  size_t data_start = 0;

  bool Has(const std::string& key) const { return kv.count(key) != 0; }
  double Number(const std::string& key) const {
    auto it = kv.find(key);
    if (it == kv.end() || it->second.is_string) Fail(path, "missing numeric key " + key);
    return it->second.number;
  }
  double Number(const std::string& key, double fallback) const {
    return Has(key) ? Number(key) : fallback;
  }

  // Reads a tensor expected to be [rows, cols] (ne0 = cols) or, with rows == 0, a vector.
  std::vector<double> Tensor(const std::string& name, uint64_t rows, uint64_t cols) const {
    auto it = tensors.find(name);
    if (it == tensors.end()) Fail(path, "missing tensor " + name);
    const GgufTensor& t = it->second;
    const std::vector<uint64_t> want =
        rows == 0 ? std::vector<uint64_t>{cols} : std::vector<uint64_t>{cols, rows};
    if (t.ne != want) {
      std::string got;
      for (uint64_t d : t.ne) got += " " + std::to_string(d);
      Fail(path, "tensor " + name + " has ne [" + got + " ], expected ne0=" +
                     std::to_string(cols) + " ne1=" + std::to_string(rows));
    }
    const size_t n = static_cast<size_t>(cols * (rows == 0 ? 1 : rows));
    size_t elem;
    switch (t.type) {
      case 0: elem = 4; break;
      case 1: case 30: elem = 2; break;
      default:
        Fail(path, "tensor " + name + " has unsupported ggml type " + std::to_string(t.type));
    }
    const size_t begin = data_start + t.offset;
    if (begin > bytes.size() || n * elem > bytes.size() - begin) {
      Fail(path, "tensor " + name + " data runs past the end of the file");
    }
    const char* p = bytes.data() + begin;
    std::vector<double> out(n);
    for (size_t i = 0; i < n; ++i) {
      if (t.type == 0) {
        float f;
        std::memcpy(&f, p + 4 * i, 4);
        out[i] = f;
      } else {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        out[i] = t.type == 1 ? HalfToDouble(h) : Bf16ToDouble(h);
      }
    }
    return out;
  }
};

GgufFile ParseGguf(const std::string& path) {
  GgufFile f;
  f.path = path;
  f.bytes = ReadFile(path);
  Cursor c{path, f.bytes};
  c.Need(4);
  if (std::memcmp(f.bytes.data(), "GGUF", 4) != 0) Fail(path, "not a GGUF file (bad magic)");
  c.pos = 4;
  const uint32_t version = c.Get<uint32_t>();
  if (version != 2 && version != 3) {
    Fail(path, "unsupported GGUF version " + std::to_string(version) + " (need 2 or 3)");
  }
  const uint64_t n_tensors = c.Get<uint64_t>();
  const uint64_t n_kv = c.Get<uint64_t>();
  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key = c.String();
    const uint32_t type = c.Get<uint32_t>();
    if (type == kArray) {
      SkipGgufValue(c, type);
      continue;
    }
    GgufValue v;
    if (type == kString) {
      v.is_string = true;
      v.text = c.String();
    } else {
      v.number = ReadGgufNumber(c, type);
    }
    f.kv[std::move(key)] = std::move(v);
  }
  for (uint64_t i = 0; i < n_tensors; ++i) {
    std::string name = c.String();
    GgufTensor t;
    const uint32_t n_dims = c.Get<uint32_t>();
    if (n_dims == 0 || n_dims > 4) Fail(path, "tensor " + name + " has bad n_dims");
    for (uint32_t d = 0; d < n_dims; ++d) t.ne.push_back(c.Get<uint64_t>());
    t.type = c.Get<uint32_t>();
    t.offset = c.Get<uint64_t>();
    f.tensors[std::move(name)] = std::move(t);
  }
  const uint64_t alignment = static_cast<uint64_t>(f.Number("general.alignment", 32));
  if (alignment == 0) Fail(path, "general.alignment is 0");
  f.data_start = static_cast<size_t>((c.pos + alignment - 1) / alignment * alignment);
  return f;
}

// ---------------------------------------------------------------------------------------
// Forward pass

void RmsNorm(const std::vector<double>& x, const std::vector<double>& w, double eps,
             std::vector<double>& out) {
  double ss = 0;
  for (double v : x) ss += v * v;
  const double scale = 1.0 / std::sqrt(ss / static_cast<double>(x.size()) + eps);
  out.resize(x.size());
  for (size_t i = 0; i < x.size(); ++i) out[i] = x[i] * scale * w[i];
}

std::vector<double> MatVec(const std::vector<double>& w, const std::vector<double>& x,
                           size_t rows) {
  const size_t cols = x.size();
  std::vector<double> out(rows);
  for (size_t r = 0; r < rows; ++r) {
    const double* row = w.data() + r * cols;
    double acc = 0;
    for (size_t c = 0; c < cols; ++c) acc += row[c] * x[c];
    out[r] = acc;
  }
  return out;
}

// Interleaved-pair RoPE, llama2.c run.c semantics: each head rotates (x[2i], x[2i+1]).
void Rope(std::vector<double>& v, int head_size, int pos, double theta) {
  for (size_t h = 0; h < v.size() / head_size; ++h) {
    double* x = v.data() + h * head_size;
    for (int i = 0; i < head_size / 2; ++i) {
      const double freq = std::pow(theta, -2.0 * i / head_size);
      const double angle = pos * freq;
      const double c = std::cos(angle), s = std::sin(angle);
      const double x0 = x[2 * i], x1 = x[2 * i + 1];
      x[2 * i] = x0 * c - x1 * s;
      x[2 * i + 1] = x0 * s + x1 * c;
    }
  }
}

// ---------------------------------------------------------------------------------------
// Hugging Face writer

struct HfTensor {
  std::string name;
  std::vector<size_t> shape;
  const std::vector<double>* data;
  std::vector<double> permuted;  // Holds q_proj/k_proj in HF row order.
};

std::vector<double> PermuteToHf(const std::vector<double>& w, int head_size, int cols) {
  std::vector<double> out(w.size());
  const size_t rows = w.size() / cols;
  for (size_t r = 0; r < rows; ++r) {
    const size_t dst = static_cast<size_t>(hf_rope_row(static_cast<int>(r), head_size));
    std::copy_n(w.begin() + r * cols, cols, out.begin() + dst * cols);
  }
  return out;
}

std::string EncodeData(const std::vector<double>& v, const std::string& dtype) {
  std::string out;
  if (dtype == "F32") {
    out.resize(v.size() * 4);
    for (size_t i = 0; i < v.size(); ++i) {
      const float f = static_cast<float>(v[i]);
      std::memcpy(out.data() + 4 * i, &f, 4);
    }
  } else {
    out.resize(v.size() * 2);
    for (size_t i = 0; i < v.size(); ++i) {
      const uint16_t h = dtype == "F16" ? DoubleToHalf(v[i]) : DoubleToBf16(v[i]);
      std::memcpy(out.data() + 2 * i, &h, 2);
    }
  }
  return out;
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    if (ch == '"' || ch == '\\') out += '\\';
    out += ch;
  }
  return out + "\"";
}

// Shortest text that reads back as exactly `v`, so a loader parsing config.json sees the
// oracle's own eps and theta, bit for bit.
std::string JsonNumber(double v) {
  char buf[64];
  const auto result = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, result.ptr);
}

void WriteFile(const std::filesystem::path& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  if (!out) Fail(path.string(), "write failed");
}

// Returns the safetensors data size written.
size_t WriteSafetensors(const std::filesystem::path& path, const std::vector<HfTensor*>& ts,
                        const std::string& dtype) {
  std::ostringstream header;
  std::string data;
  header << "{\"__metadata__\":{\"format\":\"pt\"}";
  for (const HfTensor* t : ts) {
    const std::string bytes = EncodeData(*t->data, dtype);
    header << "," << JsonString(t->name) << ":{\"dtype\":\"" << dtype << "\",\"shape\":[";
    for (size_t i = 0; i < t->shape.size(); ++i) header << (i ? "," : "") << t->shape[i];
    header << "],\"data_offsets\":[" << data.size() << "," << data.size() + bytes.size()
           << "]}";
    data += bytes;
  }
  header << "}";
  std::string h = header.str();
  // Pad the header with spaces, as the reference writer does, so data starts 8-aligned.
  while ((8 + h.size()) % 8 != 0) h += ' ';
  const uint64_t n = h.size();
  std::string file(8, '\0');
  std::memcpy(file.data(), &n, 8);
  WriteFile(path, file + h + data);
  return data.size();
}

}  // namespace

int hf_rope_row(int row, int head_size) {
  const int h = row / head_size, within = row % head_size;
  const int i = within / 2, j = within % 2;
  return h * head_size + j * (head_size / 2) + i;
}

RefModel load_llama2c(const std::string& path) {
  const std::vector<char> bytes = ReadFile(path);
  Cursor c{path, bytes};
  RefModel m;
  RefDims& d = m.dims;
  d.dim = c.Get<int32_t>();
  d.hidden_dim = c.Get<int32_t>();
  d.n_layers = c.Get<int32_t>();
  d.n_heads = c.Get<int32_t>();
  d.n_kv_heads = c.Get<int32_t>();
  const int32_t vocab = c.Get<int32_t>();
  d.seq_len = c.Get<int32_t>();
  m.tied_classifier = vocab > 0;
  d.vocab_size = std::abs(vocab);
  CheckDims(path, d);

  const size_t dim = d.dim, hidden = d.hidden_dim, kv = d.kv_dim(), L = d.n_layers;
  const size_t vocab_n = d.vocab_size, freq = static_cast<size_t>(d.seq_len) * d.head_size();
  const size_t expected_floats = vocab_n * dim + L * (2 * dim + 2 * dim * dim + 2 * kv * dim +
                                                      3 * hidden * dim) +
                                 dim + freq + (m.tied_classifier ? 0 : vocab_n * dim);
  if (bytes.size() != 28 + 4 * expected_floats) {
    Fail(path, "size " + std::to_string(bytes.size()) + " does not match the header (expected " +
                   std::to_string(28 + 4 * expected_floats) + " bytes)");
  }

  m.token_embedding = c.Floats(vocab_n * dim);
  m.layers.resize(L);
  // llama2.c stores each tensor kind for all layers together.
  for (auto& l : m.layers) l.rms_att = c.Floats(dim);
  for (auto& l : m.layers) l.wq = c.Floats(dim * dim);
  for (auto& l : m.layers) l.wk = c.Floats(kv * dim);
  for (auto& l : m.layers) l.wv = c.Floats(kv * dim);
  for (auto& l : m.layers) l.wo = c.Floats(dim * dim);
  for (auto& l : m.layers) l.rms_ffn = c.Floats(dim);
  for (auto& l : m.layers) l.w1 = c.Floats(hidden * dim);
  for (auto& l : m.layers) l.w2 = c.Floats(dim * hidden);
  for (auto& l : m.layers) l.w3 = c.Floats(hidden * dim);
  m.rms_final = c.Floats(dim);
  c.pos += freq * 4;  // freq_cis_real and freq_cis_imag: RoPE is recomputed instead.
  m.wcls = m.tied_classifier ? m.token_embedding : c.Floats(vocab_n * dim);
  return m;
}

RefModel load_gguf(const std::string& path) {
  const GgufFile f = ParseGguf(path);
  std::string arch = "llama";
  if (auto it = f.kv.find("general.architecture"); it != f.kv.end() && it->second.is_string) {
    arch = it->second.text;
  }
  if (arch != "llama") Fail(path, "unsupported architecture " + arch);

  RefModel m;
  RefDims& d = m.dims;
  d.dim = static_cast<int>(f.Number("llama.embedding_length"));
  d.hidden_dim = static_cast<int>(f.Number("llama.feed_forward_length"));
  d.n_layers = static_cast<int>(f.Number("llama.block_count"));
  d.n_heads = static_cast<int>(f.Number("llama.attention.head_count"));
  d.n_kv_heads = static_cast<int>(f.Number("llama.attention.head_count_kv", d.n_heads));
  d.rms_eps = f.Number("llama.attention.layer_norm_rms_epsilon", 1e-5);
  d.rope_theta = f.Number("llama.rope.freq_base", 10000.0);
  d.seq_len = static_cast<int>(f.Number("llama.context_length", 0));
  d.bos_id = static_cast<int>(f.Number("tokenizer.ggml.bos_token_id", 1));
  d.eos_id = static_cast<int>(f.Number("tokenizer.ggml.eos_token_id", 2));
  auto embd = f.tensors.find("token_embd.weight");
  if (embd == f.tensors.end() || embd->second.ne.size() != 2) {
    Fail(path, "missing or malformed token_embd.weight");
  }
  d.vocab_size = static_cast<int>(embd->second.ne[1]);
  CheckDims(path, d);
  if (f.Has("llama.rope.dimension_count") &&
      f.Number("llama.rope.dimension_count") != d.head_size()) {
    Fail(path, "partial rotary embeddings (rope.dimension_count != head_size) are not supported");
  }
  const uint32_t type = embd->second.type;
  m.source_dtype = type == 1 ? "F16" : type == 30 ? "BF16" : "F32";
  if (auto it = f.tensors.find("blk.0.attn_q.weight"); it != f.tensors.end()) {
    const uint32_t t = it->second.type;
    m.source_dtype = t == 1 ? "F16" : t == 30 ? "BF16" : "F32";
  }

  const uint64_t dim = d.dim, hidden = d.hidden_dim, kv = d.kv_dim();
  const uint64_t vocab = d.vocab_size;
  m.token_embedding = f.Tensor("token_embd.weight", vocab, dim);
  m.layers.resize(d.n_layers);
  for (int i = 0; i < d.n_layers; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    RefLayer& l = m.layers[i];
    l.rms_att = f.Tensor(p + "attn_norm.weight", 0, dim);
    l.wq = f.Tensor(p + "attn_q.weight", dim, dim);
    l.wk = f.Tensor(p + "attn_k.weight", kv, dim);
    l.wv = f.Tensor(p + "attn_v.weight", kv, dim);
    l.wo = f.Tensor(p + "attn_output.weight", dim, dim);
    l.rms_ffn = f.Tensor(p + "ffn_norm.weight", 0, dim);
    l.w1 = f.Tensor(p + "ffn_gate.weight", hidden, dim);
    l.w2 = f.Tensor(p + "ffn_down.weight", dim, hidden);
    l.w3 = f.Tensor(p + "ffn_up.weight", hidden, dim);
  }
  m.rms_final = f.Tensor("output_norm.weight", 0, dim);
  m.tied_classifier = f.tensors.count("output.weight") == 0;
  m.wcls = m.tied_classifier ? m.token_embedding : f.Tensor("output.weight", vocab, dim);
  return m;
}

std::vector<double> forward(const RefModel& m, RefState& state, int token, int pos) {
  const RefDims& d = m.dims;
  if (token < 0 || token >= d.vocab_size) {
    throw std::out_of_range("token " + std::to_string(token) + " outside the vocabulary");
  }
  if (pos < 0 || pos > state.length) {
    throw std::out_of_range("pos " + std::to_string(pos) + " but only " +
                            std::to_string(state.length) + " positions are cached");
  }
  const size_t dim = d.dim, kv_dim = d.kv_dim(), hs = d.head_size();
  const int group = d.n_heads / d.n_kv_heads;
  state.key_cache.resize(d.n_layers);
  state.value_cache.resize(d.n_layers);

  std::vector<double> x(m.token_embedding.begin() + token * dim,
                        m.token_embedding.begin() + (token + 1) * dim);
  std::vector<double> h;
  for (int li = 0; li < d.n_layers; ++li) {
    const RefLayer& l = m.layers[li];
    RmsNorm(x, l.rms_att, d.rms_eps, h);
    std::vector<double> q = MatVec(l.wq, h, dim);
    std::vector<double> k = MatVec(l.wk, h, kv_dim);
    std::vector<double> v = MatVec(l.wv, h, kv_dim);
    Rope(q, static_cast<int>(hs), pos, d.rope_theta);
    Rope(k, static_cast<int>(hs), pos, d.rope_theta);

    std::vector<double>& kc = state.key_cache[li];
    std::vector<double>& vc = state.value_cache[li];
    kc.resize(pos * kv_dim);
    vc.resize(pos * kv_dim);
    kc.insert(kc.end(), k.begin(), k.end());
    vc.insert(vc.end(), v.begin(), v.end());

    std::vector<double> att(dim, 0.0);
    std::vector<double> scores(pos + 1);
    for (int head = 0; head < d.n_heads; ++head) {
      const double* qh = q.data() + head * hs;
      const size_t kv_off = static_cast<size_t>(head / group) * hs;
      double max_score = -INFINITY;
      for (int t = 0; t <= pos; ++t) {
        const double* kt = kc.data() + t * kv_dim + kv_off;
        double s = 0;
        for (size_t i = 0; i < hs; ++i) s += qh[i] * kt[i];
        scores[t] = s / std::sqrt(static_cast<double>(hs));
        max_score = std::max(max_score, scores[t]);
      }
      double sum = 0;
      for (double& s : scores) sum += (s = std::exp(s - max_score));
      double* out = att.data() + head * hs;
      for (int t = 0; t <= pos; ++t) {
        const double* vt = vc.data() + t * kv_dim + kv_off;
        const double w = scores[t] / sum;
        for (size_t i = 0; i < hs; ++i) out[i] += w * vt[i];
      }
    }
    const std::vector<double> o = MatVec(l.wo, att, dim);
    for (size_t i = 0; i < dim; ++i) x[i] += o[i];

    RmsNorm(x, l.rms_ffn, d.rms_eps, h);
    std::vector<double> gate = MatVec(l.w1, h, d.hidden_dim);
    const std::vector<double> up = MatVec(l.w3, h, d.hidden_dim);
    for (int i = 0; i < d.hidden_dim; ++i) {
      gate[i] = gate[i] / (1.0 + std::exp(-gate[i])) * up[i];
    }
    const std::vector<double> down = MatVec(l.w2, gate, dim);
    for (size_t i = 0; i < dim; ++i) x[i] += down[i];
  }
  state.length = pos + 1;
  RmsNorm(x, m.rms_final, d.rms_eps, h);
  return MatVec(m.wcls, h, d.vocab_size);
}

std::vector<int> greedy(const RefModel& m, const std::vector<int>& prompt_ids, int n_new,
                        std::vector<double>* top_gaps) {
  if (prompt_ids.empty()) throw std::invalid_argument("greedy needs a non-empty prompt");
  if (top_gaps) top_gaps->clear();
  RefState state;
  std::vector<double> logits;
  int pos = 0;
  for (int id : prompt_ids) logits = forward(m, state, id, pos++);
  std::vector<int> out;
  for (int n = 0; n < n_new; ++n) {
    int best = 0;
    for (int i = 1; i < static_cast<int>(logits.size()); ++i) {
      if (logits[i] > logits[best]) best = i;
    }
    if (top_gaps) {
      double second = -INFINITY;
      for (int i = 0; i < static_cast<int>(logits.size()); ++i) {
        if (i != best) second = std::max(second, logits[i]);
      }
      top_gaps->push_back(logits[best] - second);
    }
    out.push_back(best);
    if (n + 1 < n_new) logits = forward(m, state, best, pos++);
  }
  return out;
}

void write_hf_directory(const RefModel& m, const std::string& dir, const std::string& dtype,
                        bool sharded) {
  if (dtype != "F32" && dtype != "F16" && dtype != "BF16") {
    throw std::invalid_argument("write_hf_directory: dtype must be F32, F16 or BF16, not " +
                                dtype);
  }
  const RefDims& d = m.dims;
  namespace fs = std::filesystem;
  const fs::path root(dir);
  fs::create_directories(root);

  const size_t dim = d.dim, hidden = d.hidden_dim, kv = d.kv_dim();
  const size_t vocab = d.vocab_size;
  std::vector<HfTensor> tensors;
  tensors.reserve(2 + 9 * d.n_layers + 2);
  tensors.push_back({"model.embed_tokens.weight", {vocab, dim}, &m.token_embedding, {}});
  for (int i = 0; i < d.n_layers; ++i) {
    const RefLayer& l = m.layers[i];
    const std::string p = "model.layers." + std::to_string(i) + ".";
    HfTensor q{p + "self_attn.q_proj.weight", {dim, dim}, nullptr,
               PermuteToHf(l.wq, d.head_size(), d.dim)};
    HfTensor k{p + "self_attn.k_proj.weight", {kv, dim}, nullptr,
               PermuteToHf(l.wk, d.head_size(), d.dim)};
    tensors.push_back(std::move(q));
    tensors.push_back(std::move(k));
    tensors.push_back({p + "self_attn.v_proj.weight", {kv, dim}, &l.wv, {}});
    tensors.push_back({p + "self_attn.o_proj.weight", {dim, dim}, &l.wo, {}});
    tensors.push_back({p + "mlp.gate_proj.weight", {hidden, dim}, &l.w1, {}});
    tensors.push_back({p + "mlp.up_proj.weight", {hidden, dim}, &l.w3, {}});
    tensors.push_back({p + "mlp.down_proj.weight", {dim, hidden}, &l.w2, {}});
    tensors.push_back({p + "input_layernorm.weight", {dim}, &l.rms_att, {}});
    tensors.push_back({p + "post_attention_layernorm.weight", {dim}, &l.rms_ffn, {}});
  }
  tensors.push_back({"model.norm.weight", {dim}, &m.rms_final, {}});
  if (!m.tied_classifier) tensors.push_back({"lm_head.weight", {vocab, dim}, &m.wcls, {}});
  // Point permuted tensors at their own storage only now: the vector no longer reallocates.
  for (HfTensor& t : tensors) {
    if (!t.data) t.data = &t.permuted;
  }

  const char* torch_dtype =
      dtype == "F32" ? "float32" : dtype == "F16" ? "float16" : "bfloat16";
  std::ostringstream config;
  config << "{\n"
         << "  \"architectures\": [\"LlamaForCausalLM\"],\n"
         << "  \"model_type\": \"llama\",\n"
         << "  \"hidden_act\": \"silu\",\n"
         << "  \"hidden_size\": " << d.dim << ",\n"
         << "  \"intermediate_size\": " << d.hidden_dim << ",\n"
         << "  \"num_hidden_layers\": " << d.n_layers << ",\n"
         << "  \"num_attention_heads\": " << d.n_heads << ",\n"
         << "  \"num_key_value_heads\": " << d.n_kv_heads << ",\n"
         << "  \"vocab_size\": " << d.vocab_size << ",\n"
         << "  \"rms_norm_eps\": " << JsonNumber(d.rms_eps) << ",\n"
         << "  \"rope_theta\": " << JsonNumber(d.rope_theta) << ",\n"
         << "  \"max_position_embeddings\": " << d.seq_len << ",\n"
         << "  \"tie_word_embeddings\": " << (m.tied_classifier ? "true" : "false") << ",\n"
         << "  \"bos_token_id\": " << d.bos_id << ",\n"
         << "  \"eos_token_id\": " << d.eos_id << ",\n"
         << "  \"torch_dtype\": \"" << torch_dtype << "\"\n"
         << "}\n";
  WriteFile(root / "config.json", config.str());

  std::vector<HfTensor*> all;
  for (HfTensor& t : tensors) all.push_back(&t);
  if (!sharded) {
    fs::remove(root / "model.safetensors.index.json");
    WriteSafetensors(root / "model.safetensors", all, dtype);
    return;
  }
  // Split in the middle of the layer stack, as real checkpoints split wherever a size
  // limit falls, so a loader must really consult the weight map.
  const size_t split = 1 + 9 * static_cast<size_t>((d.n_layers + 1) / 2);
  const std::vector<HfTensor*> first(all.begin(), all.begin() + split);
  const std::vector<HfTensor*> second(all.begin() + split, all.end());
  const std::string names[2] = {"model-00001-of-00002.safetensors",
                                "model-00002-of-00002.safetensors"};
  fs::remove(root / "model.safetensors");
  size_t total = WriteSafetensors(root / names[0], first, dtype);
  total += WriteSafetensors(root / names[1], second, dtype);
  std::ostringstream index;
  index << "{\n  \"metadata\": {\"total_size\": " << total << "},\n  \"weight_map\": {";
  for (size_t i = 0; i < all.size(); ++i) {
    index << (i ? "," : "") << "\n    " << JsonString(all[i]->name) << ": \""
          << names[i < split ? 0 : 1] << "\"";
  }
  index << "\n  }\n}\n";
  WriteFile(root / "model.safetensors.index.json", index.str());
}

}  // namespace brisk_test
