#include "tokenizer/tokenizer.h"

#include <sentencepiece_processor.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <type_traits>

#include "brisk/error.h"

namespace brisk {
namespace {

static_assert(std::is_same_v<int, int32_t>, "sentencepiece ids are int");

constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81";  // U+2581 "▁"

std::string read_file(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw Error("cannot open " + std::string(what) + " '" + path + "'");
  const std::streamoff size = in.tellg();
  if (size < 0) throw Error("cannot read " + std::string(what) + " '" + path + "'");
  std::string data(static_cast<size_t>(size), '\0');
  in.seekg(0);
  if (!in.read(data.data(), size)) {
    throw Error("cannot read " + std::string(what) + " '" + path + "'");
  }
  return data;
}

std::string replace_all(std::string_view s, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(s.size());
  for (size_t pos = 0;;) {
    const size_t hit = s.find(from, pos);
    out.append(s.substr(pos, hit - pos));
    if (hit == std::string_view::npos) return out;
    out.append(to);
    pos = hit + from.size();
  }
}

template <typename T>
T load_le(const std::string& data, size_t offset) {
  static_assert(std::endian::native == std::endian::little, "llama2.c files are little-endian");
  T v;
  std::memcpy(&v, data.data() + offset, sizeof v);
  return v;
}

// How many bytes a UTF-8 sequence starting with `lead` has, or 0 when `lead`
// cannot start a multi-byte sequence. Deliberately looser than UTF-8 (C0, C1
// and F5..F7 count as leads): holding bytes back too long only delays them.
int utf8_sequence_length(int lead) {
  if (lead >= 0xC0 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF7) return 4;
  return 0;
}

}  // namespace

Tokenizer::~Tokenizer() = default;

std::unique_ptr<Tokenizer> Tokenizer::load(const std::string& proto, const std::string& origin) {
  auto sp = std::make_unique<sentencepiece::SentencePieceProcessor>();
  const auto status = sp->LoadFromSerializedProto(proto);
  if (!status.ok()) {
    const std::string why = status.ToString();
    if (proto.starts_with("GGUF")) {
      throw Error(origin + ": a GGUF file, not a sentencepiece model (load it as a model instead)");
    }
    if (why.find("ParseFromArray") != std::string::npos) {
      throw Error(origin + ": not a sentencepiece model (the bytes do not parse as a ModelProto)");
    }
    throw Error(origin + ": not a valid sentencepiece model (" + why + ")");
  }
  std::unique_ptr<Tokenizer> tok(new Tokenizer());
  tok->sp_ = std::move(sp);
  tok->origin_ = origin;
  tok->unk_ = tok->sp_->unk_id();
  tok->bos_ = tok->sp_->bos_id();
  tok->eos_ = tok->sp_->eos_id();

  // Any piece with visible text works as the anchor; one without a leading
  // "▁" decodes the same at the start of a text as anywhere else.
  const int n = tok->sp_->GetPieceSize();
  for (int id = 0; id < n; ++id) {
    if (tok->sp_->IsControl(id) || tok->sp_->IsUnknown(id) || tok->sp_->IsByte(id) ||
        tok->sp_->IsUnused(id)) {
      continue;
    }
    std::string text = tok->decode({id});
    if (text.empty()) continue;
    const bool spaced = tok->sp_->IdToPiece(id).starts_with(kSpaceSymbol);
    if (tok->anchor_id_ < 0 || !spaced) {
      tok->anchor_id_ = id;
      tok->anchor_text_ = std::move(text);
    }
    if (!spaced) break;
  }
  return tok;
}

std::unique_ptr<Tokenizer> Tokenizer::from_model_file(const std::string& path) {
  const std::string proto = read_file(path, "tokenizer model");
  if (proto.empty()) throw Error("tokenizer model '" + path + "' is empty");
  return load(proto, path);
}

std::unique_ptr<Tokenizer> Tokenizer::from_serialized_proto(const std::string& proto,
                                                            const std::string& origin) {
  return load(proto, origin);
}

std::unique_ptr<Tokenizer> Tokenizer::from_vocabulary(const Vocabulary& v, const std::string& origin) {
  auto tok = load(build_sentencepiece_proto(v, origin), origin);
  // sentencepiece reports bos/eos only when they are control pieces; the
  // vocabulary's word is final.
  tok->bos_ = v.bos_id;
  tok->eos_ = v.eos_id;
  return tok;
}

std::unique_ptr<Tokenizer> Tokenizer::from_llama2c_file(const std::string& path, int32_t vocab_size) {
  const std::string data = read_file(path, "llama2.c tokenizer");
  const size_t size = data.size();
  const std::string where = "llama2.c tokenizer '" + path + "'";
  if (size < 4) {
    throw Error(where + " has " + std::to_string(size) +
                " bytes, too few for its int32 max_token_length header");
  }
  const auto max_len = load_le<int32_t>(data, 0);
  if (max_len <= 0 || static_cast<size_t>(max_len) > size) {
    throw Error(where + ": header max_token_length " + std::to_string(max_len) +
                " is impossible for a file of " + std::to_string(size) + " bytes");
  }

  Vocabulary v;
  size_t off = 4;
  for (int32_t i = 0; vocab_size > 0 ? i < vocab_size : off < size; ++i) {
    const size_t start = off;
    auto token = [&] { return "token " + std::to_string(i) + " at byte offset " + std::to_string(start); };
    if (size - off < 8) {
      const std::string expected =
          vocab_size > 0 ? " (expected " + std::to_string(vocab_size) + " tokens)" : "";
      throw Error(where + " is truncated: " + token() + " needs an f32 score and an int32 length" +
                  " but the file ends at byte " + std::to_string(size) + expected);
    }
    const auto score = load_le<float>(data, off);
    const auto len = load_le<int32_t>(data, off + 4);
    if (!std::isfinite(score)) throw Error(where + ": " + token() + " has a non-finite score");
    if (len <= 0 || len > max_len) {
      throw Error(where + ": " + token() + " has length " + std::to_string(len) +
                  ", outside 1..max_token_length (" + std::to_string(max_len) + ")");
    }
    off += 8;
    if (static_cast<size_t>(len) > size - off) {
      throw Error(where + " is truncated: " + token() + " has " + std::to_string(len) +
                  " bytes but the file ends at byte " + std::to_string(size));
    }
    std::string_view text(data.data() + off, static_cast<size_t>(len));
    off += static_cast<size_t>(len);
    if (text == "\n<s>\n") {
      v.pieces.emplace_back("<s>");
    } else if (text == "\n</s>\n") {
      v.pieces.emplace_back("</s>");
    } else {
      v.pieces.push_back(replace_all(text, " ", kSpaceSymbol));
    }
    v.scores.push_back(score);
  }
  if (v.pieces.empty()) throw Error(where + " has no tokens after its header");

  // The file has no ids or types; llama2.c itself hard-codes BOS 1 and EOS 2.
  const auto n = static_cast<int32_t>(v.pieces.size());
  auto find = [&](std::string_view piece, int32_t fallback) {
    for (int32_t i = 0; i < n; ++i) {
      if (v.pieces[i] == piece) return i;
    }
    return fallback < n ? fallback : -1;
  };
  v.unk_id = find("<unk>", 0);
  v.bos_id = find("<s>", 1);
  v.eos_id = find("</s>", 2);
  return from_vocabulary(v, path);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_bos) const {
  std::vector<int> ids;
  const auto status = sp_->Encode(text, &ids);
  if (!status.ok()) throw Error(origin_ + ": cannot encode text (" + status.ToString() + ")");
  if (add_bos && bos_ >= 0) ids.insert(ids.begin(), bos_);
  return ids;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  const int32_t n = vocab_size();
  for (const int32_t id : ids) {
    if (id < 0 || id >= n) {
      throw Error(origin_ + ": cannot decode token id " + std::to_string(id) + " (vocabulary has " +
                  std::to_string(n) + " pieces)");
    }
  }
  std::string text;
  const auto status = sp_->Decode(ids, &text);
  if (!status.ok()) throw Error(origin_ + ": cannot decode ids (" + status.ToString() + ")");
  return text;
}

std::string Tokenizer::decode_continuation(const std::vector<int32_t>& ids) const {
  if (ids.empty()) return {};
  if (anchor_id_ < 0) return decode(ids);
  std::vector<int32_t> anchored;
  anchored.reserve(ids.size() + 1);
  anchored.push_back(anchor_id_);
  anchored.insert(anchored.end(), ids.begin(), ids.end());
  std::string text = decode(anchored);
  // A denormaliser could rewrite across the join; then the plain decode is
  // the best available.
  if (!text.starts_with(anchor_text_)) return decode(ids);
  return text.substr(anchor_text_.size());
}

std::string Tokenizer::piece(int32_t id) const {
  if (id < 0 || id >= vocab_size()) {
    throw Error(origin_ + ": no piece for token id " + std::to_string(id) + " (vocabulary has " +
                std::to_string(vocab_size()) + " pieces)");
  }
  if (sp_->IsControl(id) || sp_->IsUnknown(id)) return {};
  if (const int b = byte_value(id); b >= 0) return std::string(1, static_cast<char>(b));
  return replace_all(sp_->IdToPiece(id), kSpaceSymbol, " ");
}

int Tokenizer::byte_value(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return -1;  // sentencepiece CHECK-aborts on an unknown id
  return sp_->IsByte(id) ? byte_piece_value(sp_->IdToPiece(id)) : -1;
}

int32_t Tokenizer::vocab_size() const { return sp_->GetPieceSize(); }

bool Tokenizer::is_control(int32_t id) const { return id >= 0 && id < vocab_size() && sp_->IsControl(id); }

Vocabulary Tokenizer::vocabulary() const {
  Vocabulary v = parse_sentencepiece_proto(sp_->serialized_model_proto());
  v.unk_id = unk_;
  v.bos_id = bos_;
  v.eos_id = eos_;
  return v;
}

StreamingDetokenizer::StreamingDetokenizer(const Tokenizer& tok, std::vector<int32_t> prompt_ids)
    : tok_(tok) {
  // A prompt with visible text puts the output mid-text. One without (just
  // BOS, say) leaves it at the start, where sentencepiece strips the first
  // space; pieces like "▁" that decoded to nothing may still matter then.
  // (An invisible prompt has no byte tokens: even a broken one shows U+FFFD.)
  if (!prompt_ids.empty() && tok_.decode(prompt_ids).empty()) {
    for (const int32_t id : prompt_ids) {
      if (!tok_.is_control(id)) pending_.push_back(id);
    }
  } else {
    at_start_ = prompt_ids.empty();
  }
}

size_t StreamingDetokenizer::unfinished_tail() const {
  const size_t n = pending_.size();
  // A character has at most four bytes, so at most three can be waiting.
  for (size_t k = std::min<size_t>(3, n); k >= 1; --k) {
    const int lead = tok_.byte_value(pending_[n - k]);
    if (utf8_sequence_length(lead) <= static_cast<int>(k)) continue;
    bool continuation = true;
    for (size_t j = n - k + 1; j < n && continuation; ++j) {
      const int b = tok_.byte_value(pending_[j]);
      continuation = b >= 0x80 && b <= 0xBF;
    }
    if (continuation) return n - k;
  }
  return n;
}

std::string StreamingDetokenizer::take(size_t count) {
  if (count == 0) return {};
  const std::vector<int32_t> ids(pending_.begin(), pending_.begin() + count);
  std::string text = at_start_ ? tok_.decode(ids) : tok_.decode_continuation(ids);
  if (at_start_ && text.empty()) {
    // Still nothing visible: keep the ids that decide the leading space,
    // but control tokens never do, so they need not pile up.
    std::erase_if(pending_, [&](int32_t id) { return tok_.is_control(id); });
    return {};
  }
  at_start_ = false;
  pending_.erase(pending_.begin(), pending_.begin() + count);
  return text;
}

std::string StreamingDetokenizer::push(int32_t id) {
  if (id < 0 || id >= tok_.vocab_size()) {
    throw Error(tok_.origin() + ": cannot detokenize token id " + std::to_string(id) + " (vocabulary has " +
                std::to_string(tok_.vocab_size()) + " pieces)");
  }
  pending_.push_back(id);
  // Everything before an unfinished character decodes exactly as it will in
  // the full text: UTF-8 resynchronises at the character's lead byte.
  return take(unfinished_tail());
}

std::string StreamingDetokenizer::flush() { return take(pending_.size()); }

}  // namespace brisk
