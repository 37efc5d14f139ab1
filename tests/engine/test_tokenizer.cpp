// The tokenizer against the real vocabularies in shared/models: one vocabulary
// loaded from a sentencepiece .model, from GGUF metadata and from a llama2.c
// tokenizer.bin must encode and decode identically; streaming detokenization
// must match a full decode and never split a character; bad files and bad
// vocabularies must fail with messages that name what is wrong.
#include <QTemporaryDir>
#include <QtTest>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <variant>
#include <vector>

#include "brisk/error.h"
#include "tokenizer/tokenizer.h"

using brisk::StreamingDetokenizer;
using brisk::Tokenizer;
using brisk::Vocabulary;

namespace {

const std::string kModels = BRISK_SHARED_MODELS;
const std::string kLlamaModel = kModels + "/llama2-tokenizer/tokenizer.model";
const std::string kLlamaBin = kModels + "/llama2-tokenizer/tokenizer.bin";
const std::string kLlamaGguf = kModels + "/llama-2-tiny-random/llama-2-tiny-random.gguf";
const std::string kStoriesModel = kModels + "/stories260K/tok512.model";
const std::string kStoriesBin = kModels + "/stories260K/tok512.bin";
const std::string kStoriesGguf = kModels + "/stories260K/stories260K.gguf";

#define REQUIRE_FILE(path)                                                                   \
  do {                                                                                       \
    if (!std::filesystem::exists(path)) {                                                    \
      QSKIP(qPrintable(QString("missing test model %1").arg(QString::fromStdString(path)))); \
    }                                                                                        \
  } while (0)

// Runs `body`, which must throw brisk::Error whose message contains every
// string that follows it.
#define EXPECT_ERROR(body, ...)                                                                  \
  do {                                                                                           \
    std::string what_;                                                                           \
    try {                                                                                        \
      body;                                                                                      \
    } catch (const brisk::Error& e) {                                                            \
      what_ = e.what();                                                                          \
    }                                                                                            \
    QVERIFY2(!what_.empty(), "expected brisk::Error from " #body);                               \
    for (const std::string& n_ : std::vector<std::string>{__VA_ARGS__}) {                        \
      QVERIFY2(what_.find(n_) != std::string::npos,                                              \
               qPrintable(QString("error '%1' does not mention '%2'")                            \
                              .arg(QString::fromStdString(what_), QString::fromStdString(n_)))); \
    }                                                                                            \
  } while (0)

QString show(const std::string& s) {
  QString out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f) {
      out += QChar(c);
    } else {
      out += QString("\\x%1").arg(c, 2, 16, QChar('0'));
    }
  }
  return "\"" + out + "\"";
}

QString show(const std::vector<int32_t>& ids) {
  QStringList parts;
  for (int32_t id : ids) parts << QString::number(id);
  return "[" + parts.join(",") + "]";
}

// Strict UTF-8 (no overlongs, surrogates or values past U+10FFFF).
bool valid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    int n = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      n = 1, cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2, cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;
    for (int k = 1; k <= n; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

// --- A minimal GGUF metadata reader (the engine's loader is not under test here).

using GgufValue = std::variant<int64_t, double, std::string, std::vector<int64_t>,
                               std::vector<double>, std::vector<std::string>>;

class GgufMetadata {
 public:
  explicit GgufMetadata(const std::string& path) : path_(path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail("cannot open");
    data_.assign(std::istreambuf_iterator<char>(in), {});
    if (take<uint32_t>() != 0x46554747) fail("no GGUF magic");
    const uint32_t version = take<uint32_t>();
    if (version != 2 && version != 3) fail("GGUF version " + std::to_string(version));
    take<uint64_t>();  // tensor count
    const uint64_t n_kv = take<uint64_t>();
    for (uint64_t i = 0; i < n_kv; ++i) {
      std::string key = string();
      values_[key] = value(take<uint32_t>());
    }
  }

  const GgufValue* find(const std::string& key) const {
    auto it = values_.find(key);
    return it == values_.end() ? nullptr : &it->second;
  }
  template <typename T>
  const T& get(const std::string& key) const {
    const GgufValue* v = find(key);
    if (!v || !std::holds_alternative<T>(*v)) fail("missing or mistyped key " + key);
    return std::get<T>(*v);
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error(path_ + ": " + what);
  }
  void need(uint64_t n) const {
    if (n > data_.size() - pos_) fail("truncated metadata at offset " + std::to_string(pos_));
  }
  template <typename T>
  T take() {
    need(sizeof(T));
    T v;
    std::memcpy(&v, data_.data() + pos_, sizeof v);
    pos_ += sizeof v;
    return v;
  }
  std::string string() {
    const uint64_t len = take<uint64_t>();
    need(len);
    std::string s(data_.data() + pos_, len);
    pos_ += len;
    return s;
  }
  // Integers and floats are widened; the tokenizer fields need no more.
  std::variant<int64_t, double, std::string> scalar(uint32_t type) {
    switch (type) {
      case 0:
        return int64_t{take<uint8_t>()};
      case 1:
        return int64_t{take<int8_t>()};
      case 2:
        return int64_t{take<uint16_t>()};
      case 3:
        return int64_t{take<int16_t>()};
      case 4:
        return int64_t{take<uint32_t>()};
      case 5:
        return int64_t{take<int32_t>()};
      case 6:
        return double{take<float>()};
      case 7:
        return int64_t{take<uint8_t>()};
      case 8:
        return string();
      case 10:
        return static_cast<int64_t>(take<uint64_t>());
      case 11:
        return take<int64_t>();
      case 12:
        return take<double>();
      default:
        fail("unknown value type " + std::to_string(type));
    }
  }
  GgufValue value(uint32_t type) {
    if (type != 9) {
      auto s = scalar(type);
      if (auto* i = std::get_if<int64_t>(&s)) return *i;
      if (auto* d = std::get_if<double>(&s)) return *d;
      return std::get<std::string>(s);
    }
    const uint32_t elem = take<uint32_t>();
    const uint64_t count = take<uint64_t>();
    need(count);  // every element has at least one byte
    if (elem == 8) {
      std::vector<std::string> out;
      for (uint64_t i = 0; i < count; ++i) out.push_back(string());
      return out;
    }
    if (elem == 6 || elem == 12) {
      std::vector<double> out;
      for (uint64_t i = 0; i < count; ++i) out.push_back(std::get<double>(scalar(elem)));
      return out;
    }
    std::vector<int64_t> out;
    for (uint64_t i = 0; i < count; ++i) out.push_back(std::get<int64_t>(scalar(elem)));
    return out;
  }

  std::string path_;
  std::vector<char> data_;
  uint64_t pos_ = 0;
  std::map<std::string, GgufValue> values_;
};

Vocabulary vocabulary_from_gguf(const std::string& path) {
  GgufMetadata g(path);
  Vocabulary v;
  v.pieces = g.get<std::vector<std::string>>("tokenizer.ggml.tokens");
  for (double s : g.get<std::vector<double>>("tokenizer.ggml.scores")) {
    v.scores.push_back(static_cast<float>(s));
  }
  for (int64_t t : g.get<std::vector<int64_t>>("tokenizer.ggml.token_type")) {
    v.types.push_back(static_cast<int32_t>(t));
  }
  v.unk_id = static_cast<int32_t>(g.get<int64_t>("tokenizer.ggml.unknown_token_id"));
  v.bos_id = static_cast<int32_t>(g.get<int64_t>("tokenizer.ggml.bos_token_id"));
  v.eos_id = static_cast<int32_t>(g.get<int64_t>("tokenizer.ggml.eos_token_id"));
  if (g.find("tokenizer.ggml.add_space_prefix")) {
    v.add_space_prefix = g.get<int64_t>("tokenizer.ggml.add_space_prefix") != 0;
  }
  return v;
}

std::vector<std::string> texts() {
  return {
      "Hello",
      "Hello world",
      "The quick brown fox jumps over the lazy dog.",
      "Once upon a time, there was a little girl named Lily. She loved to play outside.",
      "Wait... what?! (yes); no: \"quoted\" 'single' [x] {y} <z> @#$%^&*_+=-~`|\\/",
      "3.14159 2024-06-01 1,000,000 0x1F 42 007",
      "a  b   c    d",
      "\tindented\twith\ttabs\t",
      "line1\nline2\n\nline4\r\n",
      "   leading spaces",
      "trailing spaces   ",
      " ",
      "  ",
      "\n",
      "\t \n \t",
      "你好，世界！日本語のテキスト。한국어 텍스트",
      "I \xE2\x9D\xA4\xEF\xB8\x8F \xF0\x9F\xA6\x80 and \xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA9"
      "\xE2\x80\x8D\xF0\x9F\x91\xA7 \xF0\x9F\x8E\x89\xF0\x9F\x8E\x89",
      "e\xCC\x81 cafe\xCC\x81 n\xCC\x83 A\xCC\x8A",  // combining accents
      "Ünïcödé façade naïve résumé Ångström",
      "\x01\x02 control chars \x7f and rare ꙮ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𓀀",  // byte fallback
      "int main() {\n    return 0;\n}\n",
      "<s> literal </s> <unk> <0x41> tags",
      "",
  };
}

// sentencepiece's remove_extra_whitespaces strips and collapses spaces only.
bool has_extra_spaces(const std::string& s) {
  return s.find("  ") != std::string::npos || s.starts_with(' ') || s.ends_with(' ');
}

struct Named {
  std::string name;
  std::unique_ptr<Tokenizer> tok;
};

void expect_same_vocabulary(const Named& a, const Named& b) {
  QCOMPARE(b.tok->vocab_size(), a.tok->vocab_size());
  QCOMPARE(b.tok->bos_id(), a.tok->bos_id());
  QCOMPARE(b.tok->eos_id(), a.tok->eos_id());
  QCOMPARE(b.tok->unk_id(), a.tok->unk_id());
  const Vocabulary va = a.tok->vocabulary(), vb = b.tok->vocabulary();
  QCOMPARE(vb.byte_fallback, va.byte_fallback);
  QCOMPARE(vb.add_space_prefix, va.add_space_prefix);
  for (int32_t id = 0; id < a.tok->vocab_size(); ++id) {
    const QString where = QString("%1 vs %2, id %3")
                              .arg(QString::fromStdString(a.name), QString::fromStdString(b.name))
                              .arg(id);
    QVERIFY2(vb.pieces[id] == va.pieces[id], qPrintable(where + ": piece"));
    QVERIFY2(vb.scores[id] == va.scores[id], qPrintable(where + ": score"));
    QVERIFY2(vb.types[id] == va.types[id], qPrintable(where + ": type"));
    QVERIFY2(b.tok->piece(id) == a.tok->piece(id), qPrintable(where + ": piece()"));
    QVERIFY2(b.tok->is_control(id) == a.tok->is_control(id), qPrintable(where + ": control"));
  }
}

// Same ids and the same decoded text for every text `filter` accepts.
template <typename Filter>
void expect_same_coding(const Named& a, const Named& b, Filter filter) {
  int compared = 0;
  for (const std::string& text : texts()) {
    if (!filter(text)) continue;
    ++compared;
    for (bool bos : {false, true}) {
      const auto ia = a.tok->encode(text, bos), ib = b.tok->encode(text, bos);
      QVERIFY2(ia == ib, qPrintable(QString("%1 %2 gives %3, %4 gives %5")
                                        .arg(show(text), QString::fromStdString(a.name), show(ia),
                                             QString::fromStdString(b.name), show(ib))));
      const std::string da = a.tok->decode(ia), db = b.tok->decode(ib);
      QVERIFY2(da == db,
               qPrintable(QString("decode of %1: %2 vs %3").arg(show(text), show(da), show(db))));
    }
  }
  QVERIFY(compared >= 5);
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string le32(int32_t v) {
  std::string s(4, '\0');
  std::memcpy(s.data(), &v, 4);
  return s;
}

// A llama2.c tokenizer.bin for <unk>, <s>, </s>, the 256 bytes, " a" and "a".
std::string synthetic_llama2c_file() {
  std::vector<std::string> pieces = {"<unk>", "\n<s>\n", "\n</s>\n"};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    pieces.push_back(name);
  }
  pieces.push_back(" a");
  pieces.push_back("a");
  std::string out = le32(7);
  for (const std::string& p : pieces) {
    out += std::string(4, '\0');  // score 0.0f
    out += le32(static_cast<int32_t>(p.size())) + p;
  }
  return out;
}

int32_t id_of(const Tokenizer& tok, const std::string& piece) {
  const Vocabulary v = tok.vocabulary();
  for (size_t i = 0; i < v.pieces.size(); ++i) {
    if (v.pieces[i] == piece) return static_cast<int32_t>(i);
  }
  return -1;
}

// Streams `ids` after `prompt` and checks every chunk against the full decode.
void check_stream(const Tokenizer& tok, const std::vector<int32_t>& prompt,
                  const std::vector<int32_t>& ids) {
  StreamingDetokenizer detok(tok, prompt);
  std::string streamed;
  for (int32_t id : ids) {
    const std::string chunk = detok.push(id);
    QVERIFY2(valid_utf8(chunk),
             qPrintable("invalid UTF-8 chunk " + show(chunk) + " for ids " + show(ids)));
    streamed += chunk;
  }
  const std::string rest = detok.flush();
  QVERIFY2(valid_utf8(rest), qPrintable("invalid UTF-8 flush " + show(rest)));
  streamed += rest;

  std::vector<int32_t> all = prompt;
  all.insert(all.end(), ids.begin(), ids.end());
  const std::string head = tok.decode(prompt), full = tok.decode(all);
  QVERIFY2(full.starts_with(head), qPrintable("prompt text is not a prefix: " + show(head)));
  const std::string want = full.substr(head.size());
  QVERIFY2(streamed == want,
           qPrintable(QString("prompt %1 ids %2: streamed %3, decode gives %4")
                          .arg(show(prompt), show(ids), show(streamed), show(want))));
}

void check_random_streams(const Tokenizer& tok, uint32_t seed) {
  std::mt19937 rng(seed);
  const int32_t n = tok.vocab_size();
  std::vector<int32_t> byte_id(256, -1);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    byte_id[b] = id_of(tok, name);
    QVERIFY2(byte_id[b] >= 0, name);
  }
  const int32_t space = id_of(tok, "\xE2\x96\x81");
  const std::vector<std::string> chars = {"\xC3\xA9",         "\xE4\xB8\xAD", "\xF0\x9F\x98\x80",
                                          "\xF0\x93\x80\x80", "\xEA\x99\xAE", "\xD0\x96"};
  const std::vector<std::vector<int32_t>> prompts = {
      {},
      {tok.bos_id()},
      {tok.bos_id(), space},
      {space},
      tok.encode("Once upon a time", true),
      tok.encode("Hello", false),
      tok.encode("\xE4\xB8\xAD", true),
  };
  for (int round = 0; round < 300; ++round) {
    std::vector<int32_t> ids;
    const int events = 1 + static_cast<int>(rng() % 40);
    for (int e = 0; e < events; ++e) {
      switch (rng() % 8) {
        case 0:
        case 1:
          ids.push_back(static_cast<int32_t>(rng() % n));
          break;
        case 2:  // a multi-byte character split over byte tokens
        case 3:
          for (unsigned char c : chars[rng() % chars.size()]) ids.push_back(byte_id[c]);
          break;
        case 4:  // a stray byte: lone continuation, lead without its tail, ASCII
          ids.push_back(byte_id[rng() % 256]);
          break;
        case 5:
          ids.push_back(space);
          break;
        case 6: {
          static const int32_t specials[] = {0, 1, 2};
          ids.push_back(specials[rng() % 3]);
          break;
        }
        case 7: {
          const auto words = tok.encode(" the end", false);
          ids.insert(ids.end(), words.begin(), words.end());
          break;
        }
      }
    }
    check_stream(tok, prompts[round % prompts.size()], ids);
    if (QTest::currentTestFailed()) return;
  }
}

}  // namespace

class TestTokenizer : public QObject {
  Q_OBJECT

 private slots:
  void llama2KnownIds() {
    REQUIRE_FILE(kLlamaModel);
    auto tok = Tokenizer::from_model_file(kLlamaModel);
    QCOMPARE(tok->vocab_size(), 32000);
    QCOMPARE(tok->encode("Hello", false), std::vector<int32_t>({15043}));
    QCOMPARE(tok->encode("Hello", true), std::vector<int32_t>({1, 15043}));
    QCOMPARE(tok->bos_id(), 1);
    QCOMPARE(tok->eos_id(), 2);
    QCOMPARE(tok->unk_id(), 0);
    QCOMPARE(tok->piece(15043), std::string(" Hello"));
    QCOMPARE(tok->piece(13), std::string("\n"));  // <0x0A>
    QCOMPARE(tok->piece(1), std::string());
    QCOMPARE(tok->piece(0), std::string());
    QVERIFY(tok->is_control(1) && tok->is_control(2) && !tok->is_control(15043));
    QCOMPARE(tok->decode({1, 15043, 2}), std::string("Hello"));
    const Vocabulary v = tok->vocabulary();
    QVERIFY(v.add_space_prefix && v.byte_fallback && !v.remove_extra_whitespaces);
  }

  void llama2SourcesAgree() {
    REQUIRE_FILE(kLlamaModel);
    REQUIRE_FILE(kLlamaGguf);
    REQUIRE_FILE(kLlamaBin);
    Named model{"tokenizer.model", Tokenizer::from_model_file(kLlamaModel)};
    Named gguf{"gguf", Tokenizer::from_vocabulary(vocabulary_from_gguf(kLlamaGguf), kLlamaGguf)};
    Named bin{"tokenizer.bin", Tokenizer::from_llama2c_file(kLlamaBin)};
    QCOMPARE(bin.tok->origin(), kLlamaBin);
    expect_same_vocabulary(model, gguf);
    expect_same_vocabulary(model, bin);
    auto all = [](const std::string&) { return true; };
    expect_same_coding(model, gguf, all);
    expect_same_coding(model, bin, all);
    // Llama-2 keeps every space, so text survives a round trip exactly.
    for (const std::string& text : texts()) {
      QVERIFY2(gguf.tok->decode(gguf.tok->encode(text, true)) == text, qPrintable(show(text)));
    }
    // Byte fallback does happen in the set.
    bool saw_byte = false;
    for (const std::string& text : texts()) {
      for (int32_t id : model.tok->encode(text, false)) saw_byte |= id >= 3 && id < 259;
    }
    QVERIFY(saw_byte);
  }

  void storiesKnownIds() {
    REQUIRE_FILE(kStoriesModel);
    const std::vector<int32_t> want = {403, 407, 261, 378, 432, 383, 286, 261,
                                       376, 298, 315, 421, 395, 317, 426};
    const std::string text = "Once upon a time, there was a little girl named Lily.";
    auto model = Tokenizer::from_model_file(kStoriesModel);
    QCOMPARE(model->vocab_size(), 512);
    QCOMPARE(model->encode(text, false), want);
    QCOMPARE(model->decode(want), text);
    if (std::filesystem::exists(kStoriesBin)) {
      QCOMPARE(Tokenizer::from_llama2c_file(kStoriesBin)->encode(text, false), want);
      QCOMPARE(Tokenizer::from_llama2c_file(kStoriesBin, 512)->encode(text, false), want);
    }
  }

  void storiesSourcesAgree() {
    REQUIRE_FILE(kStoriesModel);
    REQUIRE_FILE(kStoriesGguf);
    REQUIRE_FILE(kStoriesBin);
    Named model{"tok512.model", Tokenizer::from_model_file(kStoriesModel)};
    Named gguf{"gguf",
               Tokenizer::from_vocabulary(vocabulary_from_gguf(kStoriesGguf), kStoriesGguf)};
    Named bin{"tok512.bin", Tokenizer::from_llama2c_file(kStoriesBin)};
    expect_same_vocabulary(model, gguf);
    expect_same_vocabulary(model, bin);
    // tok512.model leaves remove_extra_whitespaces at its default (true), which
    // GGUF and llama2.c cannot express; everywhere else the three agree.
    QVERIFY(model.tok->vocabulary().remove_extra_whitespaces);
    QVERIFY(!gguf.tok->vocabulary().remove_extra_whitespaces);
    auto plain = [](const std::string& s) { return !has_extra_spaces(s); };
    expect_same_coding(model, gguf, plain);
    expect_same_coding(model, bin, plain);
    expect_same_coding(gguf, bin, [](const std::string&) { return true; });
    QVERIFY(model.tok->encode("a  b", false) != gguf.tok->encode("a  b", false));
  }

  void vocabularyRoundTrip() {
    for (const std::string& path : {kLlamaModel, kStoriesModel}) {
      REQUIRE_FILE(path);
      auto model = Tokenizer::from_model_file(path);
      const Vocabulary v = model->vocabulary();
      Named a{path, std::move(model)};
      Named b{"from_vocabulary", Tokenizer::from_vocabulary(v, "round trip")};
      expect_same_vocabulary(a, b);
      expect_same_coding(a, b, [](const std::string&) { return true; });

      const Vocabulary w = brisk::parse_sentencepiece_proto(brisk::build_sentencepiece_proto(v));
      QVERIFY(w.pieces == v.pieces && w.scores == v.scores && w.types == v.types);
      QCOMPARE(w.add_space_prefix, v.add_space_prefix);
      QCOMPARE(w.remove_extra_whitespaces, v.remove_extra_whitespaces);
      QCOMPARE(w.byte_fallback, v.byte_fallback);
    }
  }

  void smallVocabularyInference() {
    // Types left empty are inferred; padding pieces with unique names are fine.
    Vocabulary v;
    v.pieces = {"<unk>", "<s>", "</s>"};
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", b);
      v.pieces.push_back(name);
    }
    const int32_t space = 259, a = 260, sp_a = 262;
    for (const char* p : {"\xE2\x96\x81", "a", "b",
                          "\xE2\x96\x81"
                          "a",
                          "ab", "<unused_0>", "<unused_1>"}) {
      v.pieces.push_back(p);
    }
    v.scores.assign(v.pieces.size(), 0.0f);
    v.scores[space] = -1, v.scores[a] = -2, v.scores[a + 1] = -3, v.scores[sp_a] = -1.5f;
    v.scores[sp_a + 1] = -1;
    auto tok = Tokenizer::from_vocabulary(v, "small");
    const Vocabulary got = tok->vocabulary();
    QVERIFY(got.byte_fallback);
    QCOMPARE(got.types[0], 2);
    QCOMPARE(got.types[1], 3);
    QCOMPARE(got.types[2], 3);
    for (int b = 0; b < 256; ++b) QCOMPARE(got.types[3 + b], 6);
    for (size_t i = space; i < got.types.size(); ++i) QCOMPARE(got.types[i], 1);
    QCOMPARE(tok->encode("a\n", true), std::vector<int32_t>({1, sp_a, 3 + 0x0A}));
    QCOMPARE(tok->encode("\xE4\xB8\xAD", false),
             std::vector<int32_t>({space, 3 + 0xE4, 3 + 0xB8, 3 + 0xAD}));
    QCOMPARE(tok->decode({sp_a, a, 3 + 0x0A, sp_a}), std::string("aa\n a"));
    QCOMPARE(tok->piece(sp_a), std::string(" a"));
    QCOMPARE(tok->piece(3 + 0xE4), std::string("\xE4"));

    v.add_space_prefix = false;
    auto bare = Tokenizer::from_vocabulary(v, "bare");
    QCOMPARE(bare->encode("a a", false), std::vector<int32_t>({a, sp_a}));
    QCOMPARE(bare->decode({sp_a}), std::string(" a"));

    // Without all 256 byte pieces sentencepiece cannot fall back: the load
    // still succeeds, unknown characters become <unk>.
    v.pieces.erase(v.pieces.begin() + 3 + 0x80, v.pieces.begin() + 3 + 0x100);
    v.scores.resize(v.pieces.size());
    auto partial = Tokenizer::from_vocabulary(v, "partial");
    QVERIFY(!partial->vocabulary().byte_fallback);
    QCOMPARE(partial->vocabulary().types[3 + 0x41], 5);
    QCOMPARE(partial->encode("\xE4\xB8\xAD", false), std::vector<int32_t>({0}));
  }

  void streamingFollowsPrompt() {
    REQUIRE_FILE(kLlamaModel);
    auto tok = Tokenizer::from_model_file(kLlamaModel);
    const int32_t world = id_of(*tok, "\xE2\x96\x81world");
    QVERIFY(world > 0);
    {
      StreamingDetokenizer d(*tok, tok->encode("Hello", true));
      QCOMPARE(d.push(world), std::string(" world"));
      QCOMPARE(d.flush(), std::string());
    }
    {
      StreamingDetokenizer d(*tok, {tok->bos_id()});
      QCOMPARE(d.push(world), std::string("world"));
    }
    {
      // "中" as three byte tokens: nothing until the character is whole.
      StreamingDetokenizer d(*tok, tok->encode("Hi", true));
      QCOMPARE(d.push(id_of(*tok, "<0xE4>")), std::string());
      QCOMPARE(d.push(id_of(*tok, "<0xB8>")), std::string());
      QCOMPARE(d.push(id_of(*tok, "<0xAD>")), std::string("\xE4\xB8\xAD"));
      QCOMPARE(d.push(id_of(*tok, "<0xE4>")), std::string());
      QCOMPARE(d.flush(), std::string("\xEF\xBF\xBD"));  // U+FFFD for the lone lead byte
    }
    {
      // A sequence of lone lead bytes is not held back indefinitely.
      StreamingDetokenizer d(*tok, tok->encode("Hi", true));
      std::string out;
      for (int i = 0; i < 10; ++i) out += d.push(id_of(*tok, "<0xF0>"));
      QVERIFY(out.size() >= 9 * 3);
    }
    EXPECT_ERROR(StreamingDetokenizer(*tok).push(32000), "32000");
  }

  void streamingMatchesDecode_data() {
    QTest::addColumn<QString>("path");
    QTest::newRow("llama2 .model") << QString::fromStdString(kLlamaModel);
    QTest::newRow("llama2 .bin") << QString::fromStdString(kLlamaBin);
    QTest::newRow("stories .model") << QString::fromStdString(kStoriesModel);
    QTest::newRow("stories .bin") << QString::fromStdString(kStoriesBin);
  }
  void streamingMatchesDecode() {
    QFETCH(QString, path);
    const std::string p = path.toStdString();
    REQUIRE_FILE(p);
    auto tok =
        p.ends_with(".model") ? Tokenizer::from_model_file(p) : Tokenizer::from_llama2c_file(p);
    check_random_streams(*tok, 1234);
    if (QTest::currentTestFailed()) return;
    // Real text, streamed token by token.
    for (const std::string& text : texts()) {
      check_stream(*tok, {}, tok->encode(text, true));
      check_stream(*tok, tok->encode("Prompt:", true), tok->encode(text, false));
      if (QTest::currentTestFailed()) return;
    }
  }

  void truncatedLlama2cFile() {
    // The real tok512.bin when present, else a small file in the same layout.
    const bool real = std::filesystem::exists(kStoriesBin);
    const std::string good = real ? read_file(kStoriesBin) : synthetic_llama2c_file();
    const int32_t count = real ? 512 : 3 + 256 + 2;
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const std::string base = dir.path().toStdString();

    const std::string whole = base + "/whole_tok512.bin";
    write_file(whole, good);
    QCOMPARE(Tokenizer::from_llama2c_file(whole)->vocab_size(), count);

    const std::string cut = base + "/cut_tok512.bin";
    write_file(cut, good.substr(0, good.size() - 3));
    EXPECT_ERROR(Tokenizer::from_llama2c_file(cut), "cut_tok512.bin", "truncated",
                 "token " + std::to_string(count - 1));

    const std::string tiny = base + "/tiny_tok512.bin";
    write_file(tiny, good.substr(0, 2));
    EXPECT_ERROR(Tokenizer::from_llama2c_file(tiny), "tiny_tok512.bin", "max_token_length");

    // Cut at a token boundary: only the expected count can tell.
    const std::string boundary = base + "/boundary_tok512.bin";
    write_file(boundary, good.substr(0, 4 + 8 + 5));  // header + "<unk>"
    QCOMPARE(Tokenizer::from_llama2c_file(boundary)->vocab_size(), 1);
    EXPECT_ERROR(Tokenizer::from_llama2c_file(boundary, count), "boundary_tok512.bin", "truncated",
                 "expected " + std::to_string(count));

    // A huge length must be refused before anything is allocated for it.
    const std::string huge = base + "/huge_tok512.bin";
    write_file(huge, le32(8) + std::string(4, '\0') + le32(1000000000) + "abc");
    EXPECT_ERROR(Tokenizer::from_llama2c_file(huge), "huge_tok512.bin", "1000000000");
    const std::string header = base + "/header_tok512.bin";
    write_file(header, le32(1000000000) + good.substr(4));
    EXPECT_ERROR(Tokenizer::from_llama2c_file(header), "header_tok512.bin", "1000000000");

    EXPECT_ERROR(Tokenizer::from_llama2c_file(base + "/absent.bin"), "absent.bin");
  }

  void garbageModelFile() {
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const std::string base = dir.path().toStdString();
    const std::string garbage = base + "/garbage.model";
    std::mt19937 rng(7);
    std::string bytes(4096, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    write_file(garbage, bytes);
    EXPECT_ERROR(Tokenizer::from_model_file(garbage), "garbage.model");

    const std::string text = base + "/text.model";
    write_file(text, "this is not a sentencepiece model\n");
    EXPECT_ERROR(Tokenizer::from_model_file(text), "text.model");

    const std::string empty = base + "/empty.model";
    write_file(empty, "");
    EXPECT_ERROR(Tokenizer::from_model_file(empty), "empty.model", "empty");

    EXPECT_ERROR(Tokenizer::from_model_file(base + "/absent.model"), "absent.model");

    if (std::filesystem::exists(kStoriesModel)) {
      const std::string good = read_file(kStoriesModel);
      const std::string cut = base + "/cut.model";
      write_file(cut, good.substr(0, good.size() / 2));
      EXPECT_ERROR(Tokenizer::from_model_file(cut), "cut.model");
    }
  }

  void badVocabularies() {
    Vocabulary v;
    v.pieces = {"<unk>", "<s>", "</s>", "a", "b", "<unused_0>", "a"};
    EXPECT_ERROR(Tokenizer::from_vocabulary(v, "dup.gguf"), "dup.gguf", "duplicate piece 'a'",
                 "id 6", "id 3");

    v.pieces = {"<unk>", "<s>", "</s>", "a", ""};
    EXPECT_ERROR(Tokenizer::from_vocabulary(v, "empty.gguf"), "empty.gguf", "piece 4");

    v.pieces = {"<unk>", "<s>", "</s>", "a", "b"};
    v.types = {2, 3, 3, 1, 9};
    EXPECT_ERROR(Tokenizer::from_vocabulary(v, "type.gguf"), "type.gguf", "'b'", "9");
    v.types = {2, 3, 3, 6, 1};
    EXPECT_ERROR(Tokenizer::from_vocabulary(v, "byte.gguf"), "byte.gguf", "'a'", "BYTE");
    v.types = {2, 3, 3, 2, 1};
    EXPECT_ERROR(Tokenizer::from_vocabulary(v, "unk.gguf"), "unk.gguf", "'a'", "UNKNOWN");
    v.types = {2, 3, 3, 1};
    EXPECT_ERROR(Tokenizer::from_vocabulary(v, "types.gguf"), "types.gguf", "4 token types");

    v.types.clear();
    v.scores = {0, 0};
    EXPECT_ERROR(Tokenizer::from_vocabulary(v, "scores.gguf"), "scores.gguf", "2 scores");
    v.scores.clear();
    v.eos_id = 5;
    EXPECT_ERROR(Tokenizer::from_vocabulary(v, "eos.gguf"), "eos.gguf", "eos_id 5");
    v.eos_id = -1;
    v.unk_id = -1;
    EXPECT_ERROR(Tokenizer::from_vocabulary(v, "nounk.gguf"), "nounk.gguf", "unknown");
    v.types = {2, 3, 1, 1, 1};
    auto tok = Tokenizer::from_vocabulary(v, "ok.gguf");  // unk found by type, no eos
    QCOMPARE(tok->unk_id(), 0);
    QCOMPARE(tok->eos_id(), -1);
    EXPECT_ERROR(tok->decode({7}), "ok.gguf", "7");
    EXPECT_ERROR(tok->piece(-1), "ok.gguf", "-1");

    EXPECT_ERROR(Tokenizer::from_vocabulary(Vocabulary{}, "none.gguf"), "none.gguf");
  }
};

QTEST_APPLESS_MAIN(TestTokenizer)
#include "test_tokenizer.moc"
