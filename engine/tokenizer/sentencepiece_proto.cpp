// Just enough of the protobuf wire format to write (and read back) a
// sentencepiece ModelProto: Debian ships the sentencepiece library without its
// generated ModelProto header, so the few fields it needs are spelled out here.
#include <algorithm>
#include <bit>
#include <cstring>
#include <string>
#include <string_view>
#include <unordered_map>

#include "brisk/error.h"
#include "tokenizer/tokenizer.h"

namespace brisk {
namespace {

// Field numbers from sentencepiece_model.proto.
constexpr int kModelPieces = 1, kModelTrainerSpec = 2, kModelNormalizerSpec = 3;
constexpr int kPiecePiece = 1, kPieceScore = 2, kPieceType = 3;
constexpr int kTrainerModelType = 3, kTrainerVocabSize = 4, kTrainerByteFallback = 35,
              kTrainerUnkId = 40, kTrainerBosId = 41, kTrainerEosId = 42, kTrainerPadId = 43,
              kTrainerUnkPiece = 45, kTrainerBosPiece = 46, kTrainerEosPiece = 47;
constexpr int kNormName = 1, kNormAddDummyPrefix = 3, kNormRemoveExtraWhitespaces = 4,
              kNormEscapeWhitespaces = 5;
constexpr int kModelTypeBpe = 2;

enum WireType { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

class ProtoWriter {
 public:
  void varint(int field, uint64_t v) {
    tag(field, kVarint);
    raw_varint(v);
  }
  // int32 fields sign-extend to 64 bits, so -1 takes ten bytes.
  void int32(int field, int32_t v) { varint(field, static_cast<uint64_t>(int64_t{v})); }
  void boolean(int field, bool v) { varint(field, v ? 1 : 0); }
  void bytes(int field, std::string_view s) {
    tag(field, kLengthDelimited);
    raw_varint(s.size());
    out_.append(s);
  }
  void float32(int field, float f) {
    tag(field, kFixed32);
    const uint32_t u = std::bit_cast<uint32_t>(f);
    for (int i = 0; i < 4; ++i) out_.push_back(static_cast<char>((u >> (8 * i)) & 0xff));
  }
  std::string& str() { return out_; }

 private:
  void tag(int field, WireType type) { raw_varint((static_cast<uint64_t>(field) << 3) | type); }
  void raw_varint(uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }
  std::string out_;
};

// Reads the proto that sentencepiece itself re-serialised, so malformed input
// means a bug rather than a bad file; it still never reads out of bounds.
class ProtoReader {
 public:
  explicit ProtoReader(std::string_view data) : data_(data) {}
  bool done() const { return pos_ >= data_.size(); }

  // Reads the next field; returns false at the end of the message.
  bool next(int* field, int* type, uint64_t* number, std::string_view* bytes) {
    if (done()) return false;
    const uint64_t key = raw_varint();
    *field = static_cast<int>(key >> 3);
    *type = static_cast<int>(key & 7);
    switch (*type) {
      case kVarint:
        *number = raw_varint();
        break;
      case kFixed64:
        *number = fixed(8);
        break;
      case kFixed32:
        *number = fixed(4);
        break;
      case kLengthDelimited: {
        const uint64_t len = raw_varint();
        if (len > data_.size() - pos_)
          throw Error("sentencepiece proto: field overruns the message");
        *bytes = data_.substr(pos_, len);
        pos_ += len;
        break;
      }
      default:
        throw Error("sentencepiece proto: unsupported wire type " + std::to_string(*type));
    }
    return true;
  }

 private:
  uint64_t raw_varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (done()) throw Error("sentencepiece proto: truncated varint");
      const auto b = static_cast<uint8_t>(data_[pos_++]);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (b < 0x80) return v;
    }
    throw Error("sentencepiece proto: varint longer than 10 bytes");
  }
  uint64_t fixed(int n) {
    if (data_.size() - pos_ < static_cast<size_t>(n)) throw Error("sentencepiece proto: truncated");
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= uint64_t{static_cast<uint8_t>(data_[pos_ + i])} << (8 * i);
    pos_ += n;
    return v;
  }
  std::string_view data_;
  size_t pos_ = 0;
};

std::string quoted(std::string_view piece) {
  std::string q = "'";
  for (char c : piece) {
    if (c == '\n') {
      q += "\\n";
    } else if (static_cast<uint8_t>(c) < 0x20) {
      static const char kHex[] = "0123456789ABCDEF";
      q += "\\x";
      q += kHex[static_cast<uint8_t>(c) >> 4];
      q += kHex[c & 0xf];
    } else {
      q += c;
    }
  }
  return q + "'";
}

// Checks every rule sentencepiece would enforce on load, so a bad vocabulary
// gets a message naming the id and piece instead of sentencepiece's terse one,
// and returns the resolved token types.
std::vector<int32_t> resolve_types(const Vocabulary& v, const std::string& origin,
                                   int32_t* unk_id) {
  const auto n = static_cast<int64_t>(v.pieces.size());
  if (n == 0) throw Error(origin + ": the vocabulary has no pieces");
  if (n > INT32_MAX) throw Error(origin + ": the vocabulary has too many pieces");
  if (!v.scores.empty() && static_cast<int64_t>(v.scores.size()) != n) {
    throw Error(origin + ": " + std::to_string(v.scores.size()) + " scores for " +
                std::to_string(n) + " pieces");
  }
  if (!v.types.empty() && static_cast<int64_t>(v.types.size()) != n) {
    throw Error(origin + ": " + std::to_string(v.types.size()) + " token types for " +
                std::to_string(n) + " pieces");
  }
  auto check_id = [&](const char* name, int32_t id) {
    if (id < -1 || id >= n) {
      throw Error(origin + ": " + name + " " + std::to_string(id) + " is outside the vocabulary (" +
                  std::to_string(n) + " pieces)");
    }
  };
  check_id("unk_id", v.unk_id);
  check_id("bos_id", v.bos_id);
  check_id("eos_id", v.eos_id);

  *unk_id = v.unk_id;
  if (*unk_id < 0) {
    // A GGUF without tokenizer.ggml.unknown_token_id still marks its unknown piece.
    for (int32_t i = 0; i < n && !v.types.empty(); ++i) {
      if (v.types[i] == kTokenUnknown) {
        *unk_id = i;
        break;
      }
    }
    if (*unk_id < 0) {
      throw Error(origin +
                  ": the vocabulary has no unknown piece (unk_id -1 and no piece of type "
                  "UNKNOWN); sentencepiece needs one");
    }
  }

  std::vector<int32_t> types(n);
  std::unordered_map<std::string_view, int32_t> seen;
  seen.reserve(n);
  for (int32_t i = 0; i < n; ++i) {
    const std::string& p = v.pieces[i];
    if (p.empty()) throw Error(origin + ": piece " + std::to_string(i) + " is empty");
    if (auto [it, fresh] = seen.emplace(p, i); !fresh) {
      throw Error(origin + ": duplicate piece " + quoted(p) + " at id " + std::to_string(i) +
                  " (first at id " + std::to_string(it->second) +
                  "); sentencepiece needs unique pieces");
    }
    int32_t t = v.types.empty() ? 0 : v.types[i];
    if (t < 0 || t > kTokenByte) {
      throw Error(origin + ": piece " + quoted(p) + " (id " + std::to_string(i) +
                  ") has token type " + std::to_string(t) + ", expected 1..6");
    }
    if (i == *unk_id) {
      t = kTokenUnknown;
    } else if (t == kTokenUnknown) {
      throw Error(origin + ": piece " + quoted(p) + " (id " + std::to_string(i) +
                  ") has type UNKNOWN but unk_id is " + std::to_string(*unk_id) +
                  "; sentencepiece allows one unknown piece");
    } else if (t == 0) {  // no type given (GGUF LLAMA_TOKEN_TYPE_UNDEFINED): infer it
      t = (i == v.bos_id || i == v.eos_id) ? kTokenControl
          : byte_piece_value(p) >= 0       ? kTokenByte
                                           : kTokenNormal;
    }
    if (t == kTokenByte && byte_piece_value(p) < 0) {
      throw Error(origin + ": piece " + quoted(p) + " (id " + std::to_string(i) +
                  ") has type BYTE but is not of the form <0xXX>");
    }
    types[i] = t;
  }
  return types;
}

}  // namespace

int byte_piece_value(std::string_view p) {
  // sentencepiece spells byte pieces with upper-case hex only.
  auto hex = [](char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
  };
  if (p.size() != 6 || p.substr(0, 3) != "<0x" || p[5] != '>') return -1;
  const int hi = hex(p[3]), lo = hex(p[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

std::string build_sentencepiece_proto(const Vocabulary& v, const std::string& origin) {
  int32_t unk_id = 0;
  std::vector<int32_t> types = resolve_types(v, origin, &unk_id);
  const auto n = static_cast<int32_t>(v.pieces.size());

  // sentencepiece accepts byte pieces only with byte fallback, and byte
  // fallback only when every byte has its piece. Otherwise the byte pieces
  // stay, as unused pieces, so that the vocabulary still loads.
  std::vector<bool> has_byte(256, false);
  for (int32_t i = 0; i < n; ++i) {
    if (types[i] == kTokenByte) has_byte[byte_piece_value(v.pieces[i])] = true;
  }
  const bool byte_fallback =
      v.byte_fallback && std::find(has_byte.begin(), has_byte.end(), false) == has_byte.end();
  if (!byte_fallback) {
    std::replace(types.begin(), types.end(), int32_t{kTokenByte}, int32_t{kTokenUnused});
  }

  ProtoWriter model;
  model.str().reserve(n * 24);
  for (int32_t i = 0; i < n; ++i) {
    ProtoWriter piece;
    piece.bytes(kPiecePiece, v.pieces[i]);
    piece.float32(kPieceScore, v.scores.empty() ? 0.0f : v.scores[i]);
    piece.varint(kPieceType, types[i]);
    model.bytes(kModelPieces, piece.str());
  }

  ProtoWriter trainer;
  trainer.varint(kTrainerModelType, kModelTypeBpe);
  trainer.int32(kTrainerVocabSize, n);
  trainer.boolean(kTrainerByteFallback, byte_fallback);
  trainer.int32(kTrainerUnkId, unk_id);
  trainer.int32(kTrainerBosId, v.bos_id);
  trainer.int32(kTrainerEosId, v.eos_id);
  trainer.int32(kTrainerPadId, -1);
  // sentencepiece finds unk/bos/eos by piece name, not by id.
  trainer.bytes(kTrainerUnkPiece, v.pieces[unk_id]);
  if (v.bos_id >= 0) trainer.bytes(kTrainerBosPiece, v.pieces[v.bos_id]);
  if (v.eos_id >= 0) trainer.bytes(kTrainerEosPiece, v.pieces[v.eos_id]);
  model.bytes(kModelTrainerSpec, trainer.str());

  ProtoWriter normalizer;
  normalizer.bytes(kNormName, "identity");
  normalizer.boolean(kNormAddDummyPrefix, v.add_space_prefix);
  normalizer.boolean(kNormRemoveExtraWhitespaces, v.remove_extra_whitespaces);
  normalizer.boolean(kNormEscapeWhitespaces, true);
  model.bytes(kModelNormalizerSpec, normalizer.str());
  return std::move(model.str());
}

Vocabulary parse_sentencepiece_proto(std::string_view proto) {
  Vocabulary v;
  // Proto2 defaults for fields the file may leave out.
  v.add_space_prefix = true;
  v.remove_extra_whitespaces = true;
  v.byte_fallback = false;
  int field = 0, type = 0;
  uint64_t number = 0;
  std::string_view bytes;
  ProtoReader model(proto);
  while (model.next(&field, &type, &number, &bytes)) {
    if (type != kLengthDelimited) continue;
    ProtoReader sub(bytes);
    if (field == kModelPieces) {
      std::string piece;
      float score = 0;
      int32_t piece_type = kTokenNormal;
      while (sub.next(&field, &type, &number, &bytes)) {
        if (field == kPiecePiece && type == kLengthDelimited) piece = bytes;
        if (field == kPieceScore && type == kFixed32) {
          score = std::bit_cast<float>(static_cast<uint32_t>(number));
        }
        if (field == kPieceType && type == kVarint) piece_type = static_cast<int32_t>(number);
      }
      v.pieces.push_back(std::move(piece));
      v.scores.push_back(score);
      v.types.push_back(piece_type);
    } else if (field == kModelTrainerSpec) {
      while (sub.next(&field, &type, &number, &bytes)) {
        if (field == kTrainerByteFallback && type == kVarint) v.byte_fallback = number != 0;
      }
    } else if (field == kModelNormalizerSpec) {
      while (sub.next(&field, &type, &number, &bytes)) {
        if (type != kVarint) continue;
        if (field == kNormAddDummyPrefix) v.add_space_prefix = number != 0;
        if (field == kNormRemoveExtraWhitespaces) v.remove_extra_whitespaces = number != 0;
      }
    }
  }
  return v;
}

}  // namespace brisk
