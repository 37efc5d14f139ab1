// Sentencepiece does all encoding and decoding. Vocabularies that are not
// stored as a sentencepiece .model (GGUF metadata, llama2.c tokenizer.bin) are
// converted into a sentencepiece ModelProto in memory and loaded from it, so
// one code path serves every format.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace brisk {

// sentencepiece's piece types, which GGUF's tokenizer.ggml.token_type reuses.
enum TokenType : int32_t {
  kTokenNormal = 1,
  kTokenUnknown = 2,
  kTokenControl = 3,
  kTokenUserDefined = 4,
  kTokenUnused = 5,
  kTokenByte = 6,
};

// A vocabulary as GGUF stores it (tokenizer.ggml.*), types as in TokenType.
struct Vocabulary {
  std::vector<std::string> pieces;  // '▁' (U+2581) marks a space, as in sentencepiece
  std::vector<float> scores;        // empty: all 0
  // Empty, or 0 for one id: inferred (unk_id unknown, bos/eos control,
  // <0xXX> byte, others normal). The unk_id piece is always UNKNOWN.
  std::vector<int32_t> types;
  // -1: none. unk_id -1 takes the piece typed UNKNOWN; sentencepiece needs one.
  int32_t unk_id = 0, bos_id = 1, eos_id = 2;
  bool add_space_prefix = true;  // sentencepiece add_dummy_prefix
  // Takes effect only when all 256 <0xXX> pieces exist; without it, byte
  // pieces load as UNUSED (sentencepiece accepts them only with fallback).
  bool byte_fallback = true;
  // sentencepiece's remove_extra_whitespaces (strip, collapse runs of spaces).
  // GGUF and llama2.c vocabularies never do; some .model files (tok512) do.
  bool remove_extra_whitespaces = false;
};

// Serialises a Vocabulary as a sentencepiece ModelProto (BPE, identity
// normaliser). Only the few fields sentencepiece needs are written. Throws
// brisk::Error, prefixed with origin, for a vocabulary sentencepiece would
// reject (duplicate or empty pieces, bad types or ids).
std::string build_sentencepiece_proto(const Vocabulary& v,
                                      const std::string& origin = "vocabulary");
// The pieces, scores, types and normaliser flags of a serialized ModelProto
// (unk/bos/eos ids are left at their defaults: sentencepiece finds them by name).
Vocabulary parse_sentencepiece_proto(std::string_view proto);
// The byte a "<0xXX>" piece stands for, or -1 for any other piece.
int byte_piece_value(std::string_view piece);

class Tokenizer {
 public:
  ~Tokenizer();
  // All loaders throw brisk::Error naming the file and what is wrong.
  static std::unique_ptr<Tokenizer> from_model_file(const std::string& path);
  static std::unique_ptr<Tokenizer> from_serialized_proto(const std::string& proto,
                                                          const std::string& origin);
  static std::unique_ptr<Tokenizer> from_vocabulary(const Vocabulary& v, const std::string& origin);
  // llama2.c tokenizer.bin: int32 max_token_length, then per token f32 score,
  // int32 length, bytes. Spaces are stored as ' ', BOS/EOS as "\n<s>\n"/"\n</s>\n".
  // The file does not record its size: vocab_size > 0 reads exactly that many
  // tokens (a shorter file is an error), 0 reads up to the end of the file.
  static std::unique_ptr<Tokenizer> from_llama2c_file(const std::string& path,
                                                      int32_t vocab_size = 0);

  std::vector<int32_t> encode(std::string_view text, bool add_bos) const;
  std::string decode(const std::vector<int32_t>& ids) const;
  // The text of one piece as bytes would be decoded in context ("▁" -> " ",
  // <0xXX> -> that byte, control tokens -> "").
  std::string piece(int32_t id) const;

  int32_t vocab_size() const;
  int32_t bos_id() const { return bos_; }
  int32_t eos_id() const { return eos_; }
  int32_t unk_id() const { return unk_; }
  bool is_control(int32_t id) const;
  const std::string& origin() const { return origin_; }
  // The vocabulary in use, with this tokenizer's unk/bos/eos ids (written out
  // by make-model into GGUF). from_vocabulary(vocabulary()) encodes and
  // decodes the same as this tokenizer, unless a .model file had a
  // non-identity normaliser.
  Vocabulary vocabulary() const;

 private:
  friend class StreamingDetokenizer;
  Tokenizer() = default;
  static std::unique_ptr<Tokenizer> load(const std::string& proto, const std::string& origin);
  // The text of ids where they follow some earlier text: unlike decode(), a
  // leading "▁" stays a space.
  std::string decode_continuation(const std::vector<int32_t>& ids) const;
  // The byte a byte-fallback token stands for, or -1 for any other token.
  int byte_value(int32_t id) const;

  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  int32_t bos_ = 1, eos_ = 2, unk_ = 0;
  std::string origin_;
  // A piece with non-empty text, decoded ahead of continuation ids so that
  // sentencepiece treats them as mid-text; -1 when the vocabulary has none.
  int32_t anchor_id_ = -1;
  std::string anchor_text_;
};

// Turns a stream of token ids into text chunks, never emitting a broken
// UTF-8 sequence: bytes of an incomplete character are held until the
// character completes (or flush() is called at the end). The chunks of every
// push() and the final flush() concatenate to decode(prompt + ids) minus
// decode(prompt) (for a prompt that does not end inside a character). Each
// push decodes a window of at most four ids (more only while nothing but
// spaces that sentencepiece strips at the start has been generated).
class StreamingDetokenizer {
 public:
  explicit StreamingDetokenizer(const Tokenizer& tok, std::vector<int32_t> prompt_ids = {});
  // Returns the new text this token completes (possibly empty).
  std::string push(int32_t id);
  // Remaining held bytes (invalid UTF-8 is replaced by U+FFFD).
  std::string flush();

 private:
  // Where the trailing bytes of an unfinished UTF-8 character begin in
  // pending_ (pending_.size() when there are none).
  size_t unfinished_tail() const;
  // Returns the text of pending_[0, count) and drops those ids.
  std::string take(size_t count);

  const Tokenizer& tok_;
  // Ids whose text is not emitted yet: the bytes of an incomplete character,
  // and, until the first text appears, every id since the start (they decide
  // whether sentencepiece strips the leading space).
  std::vector<int32_t> pending_;
  bool at_start_ = true;  // no text yet: pending_ is decoded as the start of a text
};

}  // namespace brisk
