// Bad input to the model loaders (GGUF, Hugging Face safetensors directories,
// llama2.c checkpoints) and to Engine::create: every case must throw
// brisk::Error whose message names the file and the field or tensor at fault,
// and must never crash, hang, or throw anything else.
//
// The valid inputs are made here (make_synthetic_model_file for GGUF; small
// config.json + safetensors and llama2.c files written byte by byte), then
// copies are corrupted. Fields are located by searching for their
// length-prefixed key or tensor name, never by hard-coded offsets.
#include <QByteArray>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QTemporaryDir>
#include <QtTest>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <typeinfo>
#include <vector>

#include "brisk/engine.h"
#include "brisk/error.h"
#include "brisk/model_tools.h"
#include "model/gguf.h"
#include "model/model_weights.h"

namespace {

using json = nlohmann::json;

// ---- running a load with a deadline ----

struct Outcome {
  enum Kind { Ok, BriskError, OtherException, Timeout };
  Kind kind = Ok;
  std::string message;
};

// Runs fn on its own thread so that a hang is reported instead of stalling
// the suite. fn must own everything it uses (capture by value): on a timeout
// the thread is left behind.
Outcome attempt(std::function<void()> fn, int timeout_ms = 30000) {
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    Outcome out;
  };
  auto st = std::make_shared<State>();
  std::thread([st, fn = std::move(fn)] {
    Outcome o;
    try {
      fn();
      o.kind = Outcome::Ok;
    } catch (const brisk::Error& e) {
      o.kind = Outcome::BriskError;
      o.message = e.what();
    } catch (const std::exception& e) {
      o.kind = Outcome::OtherException;
      o.message = std::string(typeid(e).name()) + ": " + e.what();
    } catch (...) {
      o.kind = Outcome::OtherException;
      o.message = "an exception not derived from std::exception";
    }
    std::lock_guard<std::mutex> lk(st->mu);
    st->out = std::move(o);
    st->done = true;
    st->cv.notify_all();
  }).detach();
  std::unique_lock<std::mutex> lk(st->mu);
  if (!st->cv.wait_for(lk, std::chrono::milliseconds(timeout_ms), [&] { return st->done; }))
    return {Outcome::Timeout, "no result after " + std::to_string(timeout_ms / 1000) + " s (hang)"};
  return st->out;
}

Outcome inspect(const QString& path, const QString& tokenizer = {}) {
  const std::string p = path.toStdString(), t = tokenizer.toStdString();
  return attempt([p, t] { (void)brisk::inspect_model(p, t); });
}

Outcome createEngine(const brisk::EngineConfig& cfg) {
  return attempt([cfg] { (void)brisk::Engine::create(cfg); }, 60000);
}

bool containsNoCase(const std::string& hay, const std::string& needle) {
  auto it = std::search(hay.begin(), hay.end(), needle.begin(), needle.end(), [](char a, char b) {
    return std::tolower((unsigned char)a) == std::tolower((unsigned char)b);
  });
  return it != hay.end();
}

// Empty when o is a brisk::Error whose message contains every needle
// (case-insensitive); otherwise what went wrong.
QString mismatch(const Outcome& o, const QStringList& needles) {
  switch (o.kind) {
    case Outcome::Ok:
      return QStringLiteral("loaded without error; expected a brisk::Error mentioning [%1]")
          .arg(needles.join(QStringLiteral(", ")));
    case Outcome::OtherException:
      return QStringLiteral("threw something other than brisk::Error: %1").arg(QString::fromStdString(o.message));
    case Outcome::Timeout:
      return QString::fromStdString(o.message);
    case Outcome::BriskError:
      break;
  }
  // Needles with a '/' are paths; the others must appear outside the paths
  // (a file named "truncated-3.gguf" must not satisfy "truncated").
  std::string rest = o.message;
  for (const QString& n : needles) {
    if (!n.contains(QLatin1Char('/'))) continue;
    const std::string path = n.toStdString();
    for (size_t at; (at = rest.find(path)) != std::string::npos;) rest.replace(at, path.size(), " ");
  }
  QStringList missing;
  for (const QString& n : needles)
    if (!containsNoCase(n.contains(QLatin1Char('/')) ? o.message : rest, n.toStdString())) missing << n;
  if (missing.isEmpty()) return {};
  return QStringLiteral("error message \"%1\" does not mention [%2]")
      .arg(QString::fromStdString(o.message), missing.join(QStringLiteral(", ")));
}

#define EXPECT_ERROR(outcome, ...)                                          \
  do {                                                                      \
    const Outcome o_ = (outcome);                                           \
    const QString why_ = mismatch(o_, QStringList{__VA_ARGS__});            \
    if (o_.kind == Outcome::BriskError) qInfo("  error: %s", o_.message.c_str()); \
    QVERIFY2(why_.isEmpty(), qPrintable(why_));                             \
  } while (0)

#define EXPECT_ERROR_LIST(outcome, list)                                    \
  do {                                                                      \
    const Outcome o_ = (outcome);                                           \
    const QString why_ = mismatch(o_, (list));                              \
    if (o_.kind == Outcome::BriskError) qInfo("  error: %s", o_.message.c_str()); \
    QVERIFY2(why_.isEmpty(), qPrintable(why_));                             \
  } while (0)

// ---- bytes ----

QByteArray readAll(const QString& path) {
  QFile f(path);
  if (!f.open(QIODevice::ReadOnly)) return {};
  return f.readAll();
}

bool writeAll(const QString& path, const QByteArray& bytes) {
  QFile f(path);
  if (!f.open(QIODevice::WriteOnly | QIODevice::Truncate)) return false;
  return f.write(bytes) == bytes.size();
}

template <typename T>
void put(QByteArray& b, qsizetype at, T v) {
  std::memcpy(b.data() + at, &v, sizeof(T));
}

template <typename T>
T get(const QByteArray& b, qsizetype at) {
  T v;
  std::memcpy(&v, b.constData() + at, sizeof(T));
  return v;
}

QByteArray le64(uint64_t v) { return QByteArray(reinterpret_cast<const char*>(&v), 8); }
QByteArray le32(uint32_t v) { return QByteArray(reinterpret_cast<const char*>(&v), 4); }

// Where the bytes of a GGUF string (a key or tensor name, u64 length first)
// start; -1 when absent or not unique.
qsizetype findName(const QByteArray& b, const QByteArray& name) {
  const QByteArray needle = le64((uint64_t)name.size()) + name;
  const qsizetype i = b.indexOf(needle);
  if (i < 0 || b.indexOf(needle, i + 1) >= 0) return -1;
  return i + 8;
}

// A GGUF field by a small locator language:
//   abs:N              byte N
//   keylen:KEY         the u64 length of KEY        kname:KEY   the key's bytes
//   type:KEY           KEY's u32 value type         value:KEY   KEY's scalar value
//   strlen:KEY         u64 length of a string value strbytes:KEY its bytes
//   arrtype:KEY        u32 element type of an array arrlen:KEY  its u64 length
//   tnamelen:T         u64 length of tensor name T  tname:T     the name's bytes
//   tndims:T           u32 dimension count          tdim:T:i    u64 dims[i]
//   ttype:T            u32 ggml type                toffset:T   u64 data offset
// -1 when the locator does not resolve.
qsizetype locate(const QByteArray& b, const QString& loc) {
  const QStringList parts = loc.split(QLatin1Char(':'));
  const QString kind = parts.value(0);
  const QByteArray name = parts.value(1).toUtf8();
  if (kind == QLatin1String("abs")) return parts.value(1).toLongLong();
  const qsizetype at = findName(b, name);
  if (at < 0) return -1;
  const qsizetype after = at + name.size();
  if (kind == QLatin1String("keylen") || kind == QLatin1String("tnamelen")) return at - 8;
  if (kind == QLatin1String("kname") || kind == QLatin1String("tname")) return at;
  if (kind == QLatin1String("type") || kind == QLatin1String("tndims")) return after;
  if (kind == QLatin1String("value") || kind == QLatin1String("strlen") || kind == QLatin1String("arrtype"))
    return after + 4;
  if (kind == QLatin1String("strbytes")) return after + 4 + 8;
  if (kind == QLatin1String("arrlen")) return after + 4 + 4;
  const uint32_t nd = get<uint32_t>(b, after);
  if (nd < 1 || nd > 4) return -1;
  if (kind == QLatin1String("tdim")) {
    const int i = parts.value(2).toInt();
    return i < (int)nd ? after + 4 + 8 * i : -1;
  }
  if (kind == QLatin1String("ttype")) return after + 4 + 8 * nd;
  if (kind == QLatin1String("toffset")) return after + 4 + 8 * nd + 4;
  return -1;
}

// ---- small Hugging Face directories ----

struct HfTensor {
  std::string name, dtype;
  std::vector<int64_t> shape;
};

struct HfModel {
  json config;
  std::vector<HfTensor> tensors;
  // Replaces whole header entries (after the valid ones are computed).
  std::map<std::string, json> header_override;
};

// A tiny Llama: dim 8, FFN 16, one layer, 2 heads, vocab 512 (so tok512.model
// fits when present), separate lm_head.
HfModel validHf() {
  HfModel m;
  m.config = {{"architectures", {"LlamaForCausalLM"}},
              {"model_type", "llama"},
              {"hidden_size", 8},
              {"intermediate_size", 16},
              {"num_hidden_layers", 1},
              {"num_attention_heads", 2},
              {"num_key_value_heads", 2},
              {"vocab_size", 512},
              {"max_position_embeddings", 64},
              {"rms_norm_eps", 1e-5},
              {"rope_theta", 10000.0},
              {"bos_token_id", 1},
              {"eos_token_id", 2},
              {"tie_word_embeddings", false}};
  const std::string p = "model.layers.0.";
  m.tensors = {{"model.embed_tokens.weight", "F32", {512, 8}},
               {"model.norm.weight", "F32", {8}},
               {"lm_head.weight", "F32", {512, 8}},
               {p + "input_layernorm.weight", "F32", {8}},
               {p + "self_attn.q_proj.weight", "F32", {8, 8}},
               {p + "self_attn.k_proj.weight", "F32", {8, 8}},
               {p + "self_attn.v_proj.weight", "F32", {8, 8}},
               {p + "self_attn.o_proj.weight", "F32", {8, 8}},
               {p + "post_attention_layernorm.weight", "F32", {8}},
               {p + "mlp.gate_proj.weight", "F32", {16, 8}},
               {p + "mlp.up_proj.weight", "F32", {16, 8}},
               {p + "mlp.down_proj.weight", "F32", {8, 16}}};
  return m;
}

// u64 LE header length + JSON header + data (random non-zero floats).
QByteArray safetensorsBytes(const HfModel& m) {
  json header = json::object();
  header["__metadata__"] = {{"format", "pt"}};
  QByteArray data;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-0.5f, 0.5f);
  for (const auto& t : m.tensors) {
    int64_t n = 1;
    for (auto d : t.shape) n *= d;
    const size_t es = t.dtype == "F32" ? 4 : 2;
    const uint64_t start = (uint64_t)data.size();
    for (int64_t i = 0; i < n; ++i) {
      float v = u(rng);
      if (v == 0) v = 0.25f;
      data.append(reinterpret_cast<const char*>(&v), (qsizetype)es);
    }
    header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {start, (uint64_t)data.size()}}};
  }
  for (const auto& [name, entry] : m.header_override) header[name] = entry;
  QByteArray h = QByteArray::fromStdString(header.dump());
  while (h.size() % 8) h.append(' ');
  return le64((uint64_t)h.size()) + h + data;
}

// The offsets a tensor got in safetensorsBytes(m).
std::pair<uint64_t, uint64_t> hfOffsets(const HfModel& m, const std::string& name) {
  uint64_t at = 0;
  for (const auto& t : m.tensors) {
    int64_t n = 1;
    for (auto d : t.shape) n *= d;
    const uint64_t bytes = (uint64_t)n * (t.dtype == "F32" ? 4 : 2);
    if (t.name == name) return {at, at + bytes};
    at += bytes;
  }
  return {0, 0};
}

uint64_t hfDataSize(const HfModel& m) {
  uint64_t at = 0;
  for (const auto& t : m.tensors) {
    int64_t n = 1;
    for (auto d : t.shape) n *= d;
    at += (uint64_t)n * (t.dtype == "F32" ? 4 : 2);
  }
  return at;
}

// ---- llama2.c checkpoints ----

struct L2cHeader {
  int32_t dim = 8, hidden_dim = 16, n_layers = 1, n_heads = 2, n_kv_heads = 2, vocab_size = 32, seq_len = 16;
};

QByteArray llama2cBytes(const L2cHeader& h) {
  const int64_t dim = h.dim, hid = h.hidden_dim, L = h.n_layers, V = std::abs((int64_t)h.vocab_size);
  const int64_t hs = dim / h.n_heads, kv = (int64_t)h.n_kv_heads * hs;
  const int64_t floats = V * dim + L * dim * 2 + L * dim * dim * 2 + L * kv * dim * 2 + L * hid * dim * 3 + dim +
                         (int64_t)h.seq_len * hs + (h.vocab_size > 0 ? 0 : V * dim);
  QByteArray b;
  for (int32_t v : {h.dim, h.hidden_dim, h.n_layers, h.n_heads, h.n_kv_heads, h.vocab_size, h.seq_len}) b += le32((uint32_t)v);
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-0.5f, 0.5f);
  for (int64_t i = 0; i < floats; ++i) {
    const float v = u(rng) + 0.01f;
    b.append(reinterpret_cast<const char*>(&v), 4);
  }
  return b;
}

}  // namespace

class TestModelLoading : public QObject {
  Q_OBJECT

 private:
  QTemporaryDir dir_;
  QString tinyPath_;
  QByteArray tiny_;
  std::map<std::string, std::pair<qsizetype, qsizetype>> tensorData_;  // name -> absolute [start, end)
  qsizetype dataStart_ = 0;
  int variant_ = 0;

  // A fresh file name in the temporary directory.
  QString fresh(const QString& stem, const QString& ext = QStringLiteral(".gguf")) {
    return dir_.filePath(QStringLiteral("%1-%2%3").arg(stem).arg(++variant_).arg(ext));
  }
  QString writeVariant(const QString& stem, const QByteArray& bytes, const QString& ext = QStringLiteral(".gguf")) {
    const QString p = fresh(stem, ext);
    if (!writeAll(p, bytes)) qFatal("cannot write %s", qPrintable(p));
    return p;
  }
  QString writeHfDir(const QString& stem, const HfModel& m, const std::function<void(QByteArray&)>& patch = {},
                     bool with_tokenizer = false) {
    const QString d = fresh(stem, QString());
    QDir().mkpath(d);
    writeAll(QDir(d).filePath(QStringLiteral("config.json")), QByteArray::fromStdString(m.config.dump(2)));
    QByteArray st = safetensorsBytes(m);
    if (patch) patch(st);
    writeAll(QDir(d).filePath(QStringLiteral("model.safetensors")), st);
    if (with_tokenizer) QFile::copy(sharedTok512Model(), QDir(d).filePath(QStringLiteral("tokenizer.model")));
    return d;
  }
  static QString sharedTok512Model() {
    return QDir(QStringLiteral(BRISK_SHARED_MODELS)).filePath(QStringLiteral("stories260K/tok512.model"));
  }
  QString hfSafetensors(const QString& d) { return QDir(d).filePath(QStringLiteral("model.safetensors")); }
  QString hfConfig(const QString& d) { return QDir(d).filePath(QStringLiteral("config.json")); }

 private slots:
  void initTestCase() {
    QVERIFY(dir_.isValid());
    tinyPath_ = dir_.filePath(QStringLiteral("tiny.gguf"));
    brisk::SyntheticModelSpec spec;
    spec.shape = "tiny";
    spec.seed = 3;
    const brisk::ModelInfo info = brisk::make_synthetic_model_file(spec, tinyPath_.toStdString());
    QCOMPARE(info.dim, 64);
    tiny_ = readAll(tinyPath_);
    QVERIFY(tiny_.size() > 100000);
    // The layout of the valid file, from the engine's own parser.
    const brisk::GgufFile g = brisk::GgufFile::open(tinyPath_.toStdString());
    QCOMPARE(g.version, 3u);
    QVERIFY(!g.tensors.empty());
    dataStart_ = (qsizetype)(g.tensors.front().data - g.file->data() - g.tensors.front().offset);
    for (const auto& t : g.tensors) {
      const qsizetype s = (qsizetype)(t.data - g.file->data());
      tensorData_[t.name] = {s, s + (qsizetype)t.bytes};
    }
    QCOMPARE(tensorData_.size(), size_t(21));  // embedding, 2 x 9 layer tensors, norm, classifier
  }

  // ---------------- GGUF ----------------

  void ggufValidTinyLoads() {
    const std::string p = tinyPath_.toStdString();
    auto result = std::make_shared<brisk::ModelInfo>();  // shared: outlives a timed-out attempt
    const Outcome o = attempt([p, result] { *result = brisk::inspect_model(p); });
    QVERIFY2(o.kind == Outcome::Ok, o.message.c_str());
    const brisk::ModelInfo& info = *result;
    QCOMPARE(info.format, std::string("gguf"));
    QCOMPARE(info.architecture, std::string("llama"));
    QCOMPARE(info.dim, 64);
    QCOMPARE(info.hidden_dim, 192);
    QCOMPARE(info.n_layers, 2);
    QCOMPARE(info.n_heads, 4);
    QCOMPARE(info.n_kv_heads, 2);
    QCOMPARE(info.vocab_size, 1024);
    QCOMPARE(info.context_length, 512);
    QVERIFY(info.synthetic);
    QCOMPARE((int)info.tensors.size(), 21);
    // A copy of the file at another path loads too (the tests below patch copies).
    const QString copy = writeVariant(QStringLiteral("copy"), tiny_);
    QVERIFY2(inspect(copy).kind == Outcome::Ok, "an unmodified copy must load");
  }

  void ggufTruncated_data() {
    QTest::addColumn<QString>("at");        // a locator (see locate()) or tdata:NAME / end
    QTest::addColumn<qint64>("delta");      // cut = locate(at) + delta
    QTest::addColumn<QStringList>("needles");
    const QStringList T{QStringLiteral("truncated")};
    QTest::newRow("empty file") << "abs:0" << qint64(0) << QStringList{};
    QTest::newRow("inside the magic") << "abs:0" << qint64(3) << QStringList{};
    QTest::newRow("inside the version") << "abs:4" << qint64(2) << (T + QStringList{"version"});
    QTest::newRow("inside the tensor count") << "abs:8" << qint64(5) << (T + QStringList{"tensor count"});
    QTest::newRow("inside the metadata count") << "abs:16" << qint64(3) << (T + QStringList{"metadata count"});
    QTest::newRow("inside key general.name") << "kname:general.name" << qint64(4) << T;
    QTest::newRow("inside value of general.architecture") << "strbytes:general.architecture" << qint64(2) << T;
    QTest::newRow("inside key llama.block_count") << "kname:llama.block_count" << qint64(5) << T;
    QTest::newRow("inside the tokens array") << "arrlen:tokenizer.ggml.tokens" << qint64(200)
                                             << QStringList{"tokenizer.ggml.tokens"};
    QTest::newRow("inside the tokens array length") << "arrlen:tokenizer.ggml.tokens" << qint64(3)
                                                    << (T + QStringList{"tokenizer.ggml.tokens"});
    QTest::newRow("inside the scores array") << "arrlen:tokenizer.ggml.scores" << qint64(8 + 400)
                                             << QStringList{"tokenizer.ggml.scores"};
    QTest::newRow("inside key tokenizer.ggml.eos_token_id") << "kname:tokenizer.ggml.eos_token_id" << qint64(10)
                                                            << T;
    QTest::newRow("inside value of tokenizer.ggml.eos_token_id") << "value:tokenizer.ggml.eos_token_id" << qint64(2)
                                                                 << (T + QStringList{"tokenizer.ggml.eos_token_id"});
    QTest::newRow("inside the first tensor name") << "tname:token_embd.weight" << qint64(3)
                                                  << (T + QStringList{"tensor #0"});
    QTest::newRow("inside dims of blk.1.attn_q.weight") << "tdim:blk.1.attn_q.weight:1" << qint64(4)
                                                        << (T + QStringList{"blk.1.attn_q.weight"});
    QTest::newRow("inside type of blk.0.ffn_up.weight") << "ttype:blk.0.ffn_up.weight" << qint64(1)
                                                        << (T + QStringList{"blk.0.ffn_up.weight"});
    QTest::newRow("inside offset of output.weight") << "toffset:output.weight" << qint64(6)
                                                    << (T + QStringList{"output.weight"});
    QTest::newRow("at the data section") << "tdata:token_embd.weight" << qint64(0)
                                         << (T + QStringList{"token_embd.weight"});
    QTest::newRow("inside data of blk.1.ffn_up.weight") << "tdata:blk.1.ffn_up.weight" << qint64(100)
                                                        << (T + QStringList{"blk.1.ffn_up.weight"});
    QTest::newRow("inside data of blk.0.attn_norm.weight") << "tdata:blk.0.attn_norm.weight" << qint64(4)
                                                           << (T + QStringList{"blk.0.attn_norm.weight"});
    QTest::newRow("last byte missing") << "end" << qint64(-1) << (T + QStringList{"output.weight"});
  }

  void ggufTruncated() {
    QFETCH(QString, at);
    QFETCH(qint64, delta);
    QFETCH(QStringList, needles);
    qsizetype base;
    if (at == QLatin1String("end")) {
      base = tiny_.size();
    } else if (at.startsWith(QLatin1String("tdata:"))) {
      const auto it = tensorData_.find(at.mid(6).toStdString());
      QVERIFY2(it != tensorData_.end(), qPrintable(at));
      base = it->second.first;
    } else {
      base = locate(tiny_, at);
    }
    QVERIFY2(base >= 0, qPrintable(QStringLiteral("cannot locate %1 in the tiny GGUF").arg(at)));
    const qsizetype cut = base + delta;
    QVERIFY(cut >= 0 && cut < tiny_.size());
    const QString p = writeVariant(QStringLiteral("truncated"), tiny_.left(cut));
    EXPECT_ERROR_LIST(inspect(p), QStringList{p} + needles);
  }

  // Every cut point through the index and a stride through the data: an
  // error naming the file, never a crash, a hang or a success.
  void ggufTruncationSweep() {
    std::vector<qsizetype> cuts;
    for (qsizetype c = 0; c < std::min<qsizetype>(dataStart_, 2048); ++c) cuts.push_back(c);
    for (qsizetype c = 2048; c < dataStart_; c += 97) cuts.push_back(c);
    for (qsizetype c = dataStart_; c < tiny_.size(); c += tiny_.size() / 61) cuts.push_back(c);
    cuts.push_back(tiny_.size() - 1);
    const QString p = dir_.filePath(QStringLiteral("sweep.gguf"));
    int failures = 0;
    for (qsizetype c : cuts) {
      QVERIFY(writeAll(p, tiny_.left(c)));
      const Outcome o = inspect(p);
      const QString why = mismatch(o, {p});
      if (!why.isEmpty()) {
        if (++failures <= 10) qWarning("cut at %lld: %s", (long long)c, qPrintable(why));
      }
      QVERIFY2(o.kind != Outcome::Timeout, "a truncated file made the loader hang");
    }
    QVERIFY2(failures == 0, qPrintable(QStringLiteral("%1 of %2 cut points misbehaved (first ones above)")
                                           .arg(failures).arg(cuts.size())));
  }

  void ggufWrongMagic() {
    QByteArray b = tiny_;
    b.replace(0, 4, "GGUX");
    const QString p = writeVariant(QStringLiteral("magic"), b);
    EXPECT_ERROR(inspect(p), p, "magic");
    // The GGUF parser itself, given the file directly.
    const std::string sp = p.toStdString();
    EXPECT_ERROR(attempt([sp] { (void)brisk::GgufFile::open(sp); }), p, "magic");
    // Random bytes without a known extension.
    const QString q = writeVariant(QStringLiteral("garbage"), QByteArray(4096, '\x5a'), QStringLiteral(".model-file"));
    EXPECT_ERROR(inspect(q), q, "format");
  }

  void ggufVersion_data() {
    QTest::addColumn<quint32>("version");
    QTest::newRow("v1") << 1u;
    QTest::newRow("v0") << 0u;
    QTest::newRow("v4") << 4u;
    QTest::newRow("v4294967295") << 4294967295u;
  }
  void ggufVersion() {
    QFETCH(quint32, version);
    QByteArray b = tiny_;
    put<uint32_t>(b, 4, version);
    const QString p = writeVariant(QStringLiteral("version"), b);
    EXPECT_ERROR(inspect(p), p, "version", QString::number(version));
  }

  // Same-length replacements of strings in place.
  void ggufStringPatches_data() {
    QTest::addColumn<QString>("at");
    QTest::addColumn<QByteArray>("replacement");
    QTest::addColumn<QStringList>("needles");
    QTest::newRow("unknown architecture llamx") << "strbytes:general.architecture" << QByteArray("llamx")
                                                << QStringList{"llamx", "general.architecture"};
    QTest::newRow("architecture key missing") << "kname:general.architecture" << QByteArray("general.architecturX")
                                              << QStringList{"general.architecture", "missing"};
    QTest::newRow("embedding_length key missing") << "kname:llama.embedding_length"
                                                  << QByteArray("llama.embedding_lengtX")
                                                  << QStringList{"llama.embedding_length", "missing"};
    QTest::newRow("unsupported tokenizer model") << "strbytes:tokenizer.ggml.model" << QByteArray("gpt2x")
                                                 << QStringList{"tokenizer.ggml.model", "gpt2x"};
    QTest::newRow("missing blk.0.attn_q.weight") << "tname:blk.0.attn_q.weight" << QByteArray("blk.0.attn_x.weight")
                                                 << QStringList{"blk.0.attn_q.weight", "missing"};
    QTest::newRow("missing token_embd.weight") << "tname:token_embd.weight" << QByteArray("token_embX.weight")
                                               << QStringList{"token_embd.weight", "missing"};
    QTest::newRow("missing output_norm.weight") << "tname:output_norm.weight" << QByteArray("output_norX.weight")
                                                << QStringList{"output_norm.weight", "missing"};
    QTest::newRow("missing blk.1.ffn_down.weight") << "tname:blk.1.ffn_down.weight"
                                                   << QByteArray("blk.1.ffn_dowX.weight")
                                                   << QStringList{"blk.1.ffn_down.weight", "missing"};
    QTest::newRow("layer 1 renamed to layer 7") << "tname:blk.1.attn_v.weight" << QByteArray("blk.7.attn_v.weight")
                                                << QStringList{"blk.1.attn_v.weight", "missing"};
  }
  void ggufStringPatches() {
    QFETCH(QString, at);
    QFETCH(QByteArray, replacement);
    QFETCH(QStringList, needles);
    QByteArray b = tiny_;
    const qsizetype i = locate(b, at);
    QVERIFY2(i >= 0, qPrintable(QStringLiteral("cannot locate %1").arg(at)));
    b.replace(i, replacement.size(), replacement);
    const QString p = writeVariant(QStringLiteral("strpatch"), b);
    EXPECT_ERROR_LIST(inspect(p), QStringList{p} + needles);
  }

  // Numeric fields overwritten in place: wrong shapes, absurd dimensions,
  // unsupported types, absurd lengths and counts.
  void ggufFieldPatches_data() {
    QTest::addColumn<QString>("at");
    QTest::addColumn<int>("width");  // 4 or 8 bytes
    QTest::addColumn<quint64>("value");
    QTest::addColumn<QStringList>("needles");
    const quint64 huge = quint64(1) << 60;
    // wrong shapes (the bytes still fit in the file)
    QTest::newRow("shape: blk.1.attn_k.weight rows 32->16") << "tdim:blk.1.attn_k.weight:1" << 8 << quint64(16)
                                                             << QStringList{"blk.1.attn_k.weight", "shape"};
    QTest::newRow("shape: token_embd.weight cols 64->32") << "tdim:token_embd.weight:0" << 8 << quint64(32)
                                                           << QStringList{"token_embd.weight", "shape"};
    QTest::newRow("shape: output_norm.weight 64->63") << "tdim:output_norm.weight:0" << 8 << quint64(63)
                                                       << QStringList{"output_norm.weight", "shape"};
    QTest::newRow("shape: blk.0.ffn_gate.weight rows 192->191") << "tdim:blk.0.ffn_gate.weight:1" << 8
                                                                 << quint64(191)
                                                                 << QStringList{"blk.0.ffn_gate.weight", "shape"};
    QTest::newRow("shape: output.weight rows 1024->1000") << "tdim:output.weight:1" << 8 << quint64(1000)
                                                           << QStringList{"output.weight", "shape"};
    QTest::newRow("shape: blk.0.attn_q.weight 2-D -> 1-D") << "tndims:blk.0.attn_q.weight" << 4 << quint64(1)
                                                            << QStringList{};  // the index desynchronises
    // absurd dimensions
    QTest::newRow("absurd: embedding_length 1e9") << "value:llama.embedding_length" << 4 << quint64(1000000000)
                                                  << QStringList{"embedding", "1000000000"};
    QTest::newRow("absurd: embedding_length 2^32-1") << "value:llama.embedding_length" << 4 << quint64(4294967295u)
                                                     << QStringList{"llama.embedding_length"};
    QTest::newRow("absurd: embedding_length 0") << "value:llama.embedding_length" << 4 << quint64(0)
                                                << QStringList{"embedding"};
    QTest::newRow("absurd: block_count 1000000") << "value:llama.block_count" << 4 << quint64(1000000)
                                                 << QStringList{"block count"};
    QTest::newRow("absurd: head_count 0") << "value:llama.attention.head_count" << 4 << quint64(0)
                                          << QStringList{"n_heads"};
    QTest::newRow("absurd: head_count 3 (64 % 3 != 0)") << "value:llama.attention.head_count" << 4 << quint64(3)
                                                        << QStringList{"n_heads"};
    QTest::newRow("absurd: head_count_kv 3") << "value:llama.attention.head_count_kv" << 4 << quint64(3)
                                             << QStringList{"n_kv_heads"};
    QTest::newRow("absurd: context_length 0") << "value:llama.context_length" << 4 << quint64(0)
                                              << QStringList{"context_length"};
    QTest::newRow("absurd: feed_forward_length 2^31") << "value:llama.feed_forward_length" << 4 << quint64(1u << 31)
                                                      << QStringList{"feed_forward_length"};
    QTest::newRow("absurd: rope dimension_count 1000") << "value:llama.rope.dimension_count" << 4 << quint64(1000)
                                                       << QStringList{"rope"};
    QTest::newRow("absurd: token_embd dim 2^50") << "tdim:token_embd.weight:1" << 8 << (quint64(1) << 50)
                                                 << QStringList{"token_embd.weight", "dimension"};
    QTest::newRow("absurd: token_embd dim -1") << "tdim:token_embd.weight:1" << 8 << ~quint64(0)
                                               << QStringList{"token_embd.weight", "dimension"};
    QTest::newRow("absurd: token_embd dim 2^30 (past the file)") << "tdim:token_embd.weight:1" << 8
                                                                 << (quint64(1) << 30)
                                                                 << QStringList{"token_embd.weight"};
    QTest::newRow("absurd: blk.0.ffn_up.weight dim 0") << "tdim:blk.0.ffn_up.weight:0" << 8 << quint64(0)
                                                       << QStringList{"blk.0.ffn_up.weight", "dimension"};
    QTest::newRow("absurd: 5 dimensions") << "tndims:blk.0.attn_k.weight" << 4 << quint64(5)
                                          << QStringList{"blk.0.attn_k.weight", "dimensions"};
    QTest::newRow("absurd: 0 dimensions") << "tndims:blk.0.attn_k.weight" << 4 << quint64(0)
                                          << QStringList{"blk.0.attn_k.weight", "dimensions"};
    QTest::newRow("absurd: output.weight offset 2^62") << "toffset:output.weight" << 8 << (quint64(1) << 62)
                                                       << QStringList{"output.weight"};
    QTest::newRow("absurd: output.weight offset 2^64-1") << "toffset:output.weight" << 8 << ~quint64(0)
                                                         << QStringList{"output.weight"};
    // unsupported tensor types
    QTest::newRow("type: blk.0.attn_q.weight Q4_0") << "ttype:blk.0.attn_q.weight" << 4 << quint64(2)
                                                    << QStringList{"blk.0.attn_q.weight", "type 2"};
    QTest::newRow("type: token_embd.weight Q4_K") << "ttype:token_embd.weight" << 4 << quint64(12)
                                                  << QStringList{"token_embd.weight", "type 12"};
    QTest::newRow("type: output.weight 9999") << "ttype:output.weight" << 4 << quint64(9999)
                                              << QStringList{"output.weight", "type 9999"};
    QTest::newRow("type: norm as Q8_0") << "ttype:blk.0.attn_norm.weight" << 4 << quint64(8)
                                        << QStringList{"blk.0.attn_norm.weight"};
    // absurd lengths and counts
    QTest::newRow("length: general.name string 2^60") << "strlen:general.name" << 8 << huge
                                                      << QStringList{"general.name"};
    QTest::newRow("length: tokens array 2^60") << "arrlen:tokenizer.ggml.tokens" << 8 << huge
                                               << QStringList{"tokenizer.ggml.tokens"};
    QTest::newRow("length: scores array 2^60") << "arrlen:tokenizer.ggml.scores" << 8 << huge
                                               << QStringList{"tokenizer.ggml.scores"};
    QTest::newRow("length: token_type array 2^64-1") << "arrlen:tokenizer.ggml.token_type" << 8 << ~quint64(0)
                                                     << QStringList{"tokenizer.ggml.token_type"};
    QTest::newRow("length: key llama.block_count 2^60") << "keylen:llama.block_count" << 8 << huge
                                                        << QStringList{"metadata key"};
    QTest::newRow("length: tensor name 2^60") << "tnamelen:blk.0.attn_q.weight" << 8 << huge
                                              << QStringList{"tensor #"};
    QTest::newRow("count: tensors 2^60") << "abs:8" << 8 << huge << QStringList{"tensor count"};
    QTest::newRow("count: metadata 2^60") << "abs:16" << 8 << huge << QStringList{"metadata count"};
    QTest::newRow("count: metadata 0 (index desynchronises)") << "abs:16" << 8 << quint64(0) << QStringList{};
    QTest::newRow("length: tokens array 1023 (desynchronises)") << "arrlen:tokenizer.ggml.tokens" << 8
                                                                << quint64(1023) << QStringList{};
    // bad value and element types
    QTest::newRow("value type 99 for general.alignment") << "type:general.alignment" << 4 << quint64(99)
                                                         << QStringList{"general.alignment", "type"};
    QTest::newRow("array element type 99 for scores") << "arrtype:tokenizer.ggml.scores" << 4 << quint64(99)
                                                      << QStringList{"tokenizer.ggml.scores", "type"};
    QTest::newRow("array of arrays for scores") << "arrtype:tokenizer.ggml.scores" << 4 << quint64(9)
                                                << QStringList{"tokenizer.ggml.scores", "type"};
    QTest::newRow("general.alignment 3") << "value:general.alignment" << 4 << quint64(3)
                                         << QStringList{"general.alignment"};
    QTest::newRow("general.alignment 0") << "value:general.alignment" << 4 << quint64(0)
                                         << QStringList{"general.alignment"};
    QTest::newRow("general.alignment 2^31 (data past the file)") << "value:general.alignment" << 4
                                                                 << quint64(1u << 31)
                                                                 << QStringList{"token_embd.weight"};
    QTest::newRow("bos id outside the vocabulary") << "value:tokenizer.ggml.bos_token_id" << 4 << quint64(5000)
                                                   << QStringList{"bos", "5000"};
  }
  void ggufFieldPatches() {
    QFETCH(QString, at);
    QFETCH(int, width);
    QFETCH(quint64, value);
    QFETCH(QStringList, needles);
    QByteArray b = tiny_;
    const qsizetype i = locate(b, at);
    QVERIFY2(i >= 0 && i + width <= b.size(), qPrintable(QStringLiteral("cannot locate %1").arg(at)));
    if (width == 4)
      put<uint32_t>(b, i, (uint32_t)value);
    else
      put<uint64_t>(b, i, value);
    const QString p = writeVariant(QStringLiteral("field"), b);
    EXPECT_ERROR_LIST(inspect(p), QStringList{p} + needles);
  }

  // Random byte changes anywhere in the index: the load either succeeds
  // (a harmless change, e.g. inside a vocabulary piece) or throws
  // brisk::Error naming the file; nothing else.
  void ggufHeaderFuzz() {
    std::mt19937_64 rng(20240607);
    const QString p = dir_.filePath(QStringLiteral("fuzz.gguf"));
    int ok = 0, errors = 0;
    QStringList bad;
    for (int iter = 0; iter < 300; ++iter) {
      QByteArray b = tiny_;
      const int n = 1 + (int)(rng() % 4);
      QString what;
      for (int k = 0; k < n; ++k) {
        const qsizetype at = (qsizetype)(rng() % (uint64_t)dataStart_);
        const char v = (char)(rng() % 3 == 0 ? 0xff : rng() & 0xff);
        what += QStringLiteral(" [%1]=0x%2").arg(at).arg((uint8_t)v, 2, 16, QLatin1Char('0'));
        b[at] = v;
      }
      QVERIFY(writeAll(p, b));
      const Outcome o = inspect(p);
      if (o.kind == Outcome::Ok) {
        ++ok;
      } else if (mismatch(o, {p}).isEmpty()) {
        ++errors;
      } else {
        bad << QStringLiteral("iteration %1,%2: %3").arg(iter).arg(what, mismatch(o, {p}));
        QVERIFY2(o.kind != Outcome::Timeout, qPrintable(bad.last()));
      }
    }
    qInfo("fuzz: %d loaded, %d clean errors, %d misbehaved", ok, errors, (int)bad.size());
    QVERIFY2(bad.isEmpty(), qPrintable(bad.mid(0, 5).join(QLatin1Char('\n'))));
  }

  // RoPE scaling and biases in GGUF metadata/tensors: the model code has
  // neither, and the loader used to ignore them (wrong text, no word). The
  // tiny model is rewritten with the extra keys or tensors.
  void ggufRopeScalingAndBiasesAreRefused_data() {
    QTest::addColumn<QString>("extra");
    QTest::addColumn<QStringList>("needles");  // empty: loads
    QTest::newRow("scaling.type yarn")
        << "type:yarn" << QStringList{"llama.rope.scaling.type", "yarn", "not implemented"};
    QTest::newRow("linear, factor 2")
        << "type:linear,factor:2" << QStringList{"llama.rope.scaling.factor", "2"};
    QTest::newRow("scale_linear 4") << "scale_linear:4" << QStringList{"llama.rope.scale_linear", "4"};
    QTest::newRow("rope_freqs.weight") << "tensor:rope_freqs.weight" << QStringList{"rope_freqs.weight"};
    QTest::newRow("blk.0.attn_q.bias")
        << "tensor:blk.0.attn_q.bias" << QStringList{"blk.0.attn_q.bias", "bias"};
    QTest::newRow("type none, factor 1: plain") << "type:none,factor:1" << QStringList{};
    QTest::newRow("linear, factor 0 (llama.cpp: unset)") << "type:linear,factor:0" << QStringList{};
  }
  void ggufRopeScalingAndBiasesAreRefused() {
    QFETCH(QString, extra);
    QFETCH(QStringList, needles);
    const brisk::LoadedModel m = brisk::load_gguf_model(tinyPath_.toStdString());
    const brisk::ModelConfig& c = m.config;
    brisk::GgufWriter g;
    g.add_string("general.architecture", "llama");
    g.add_u32("llama.context_length", c.context_length);
    g.add_u32("llama.embedding_length", c.dim);
    g.add_u32("llama.feed_forward_length", c.hidden_dim);
    g.add_u32("llama.block_count", c.n_layers);
    g.add_u32("llama.attention.head_count", c.n_heads);
    g.add_u32("llama.attention.head_count_kv", c.n_kv_heads);
    std::vector<float> small(c.dim, 0.5f);
    for (const QString& e : extra.split(QLatin1Char(','))) {
      const QString k = e.section(QLatin1Char(':'), 0, 0), v = e.section(QLatin1Char(':'), 1);
      if (k == QLatin1String("type"))
        g.add_string("llama.rope.scaling.type", v.toStdString());
      else if (k == QLatin1String("factor"))
        g.add_f32("llama.rope.scaling.factor", v.toFloat());
      else if (k == QLatin1String("scale_linear"))
        g.add_f32("llama.rope.scale_linear", v.toFloat());
      else if (k == QLatin1String("tensor"))
        g.add_tensor(v.toStdString(), brisk::DType::F32, 1, c.dim, small.data());
      else
        QFAIL("unknown extra");
    }
    const brisk::ModelWeights& w = m.weights;
    auto put = [&](const std::string& name, const brisk::WeightTensor& t) {
      if (t.data) g.add_tensor(name, t.dtype, t.rows, t.cols, t.data, t.scales);
    };
    put("token_embd.weight", w.token_embd);
    for (size_t l = 0; l < w.layers.size(); ++l)
      for (const brisk::LayerTensorSpec& t : brisk::kLayerTensors)
        put("blk." + std::to_string(l) + "." + t.gguf, w.layers[l].*t.field);
    put("output_norm.weight", w.output_norm);
    put("output.weight", w.output);
    const QString p = fresh(QStringLiteral("rope"));
    g.write(p.toStdString());
    const std::string sp = p.toStdString();
    const Outcome o = attempt([sp] { (void)brisk::load_gguf_model(sp); });
    if (needles.isEmpty())
      QVERIFY2(o.kind == Outcome::Ok, o.message.c_str());
    else
      EXPECT_ERROR_LIST(o, QStringList{p} + needles);
  }

  void ggufThroughEngineCreate() {
    QByteArray b = tiny_;
    const qsizetype i = locate(b, QStringLiteral("strbytes:general.architecture"));
    QVERIFY(i >= 0);
    b.replace(i, 5, "llamx");
    const QString p = writeVariant(QStringLiteral("engine-arch"), b);
    brisk::EngineConfig cfg;
    cfg.model = p.toStdString();
    cfg.threads = 1;
    EXPECT_ERROR(createEngine(cfg), p, "llamx");
    const QString t = writeVariant(QStringLiteral("engine-trunc"), tiny_.left(tiny_.size() / 2));
    cfg.model = t.toStdString();
    EXPECT_ERROR(createEngine(cfg), t, "truncated");
  }

  // ---------------- paths that are not model files ----------------

  void notAModel() {
    EXPECT_ERROR(inspect(QStringLiteral("/nonexistent/dir/model.gguf")), "/nonexistent/dir/model.gguf");
    const QString empty_dir = fresh(QStringLiteral("empty-dir"), QString());
    QVERIFY(QDir().mkpath(empty_dir));
    EXPECT_ERROR(inspect(empty_dir), empty_dir, "config.json");
    EXPECT_ERROR(inspect(QStringLiteral("/dev/null")), "/dev/null");
  }

  // A named pipe must not block the loader forever waiting for a writer.
  void namedPipeDoesNotHang() {
    const QString fifo = fresh(QStringLiteral("pipe"), QStringLiteral(".gguf"));
    QVERIFY(::mkfifo(QFile::encodeName(fifo).constData(), 0600) == 0);
    const std::string p = fifo.toStdString();
    const Outcome o = attempt([p] { (void)brisk::inspect_model(p); }, 5000);
    // Release a loader blocked in open() (a reader waits, so this succeeds).
    const int w = ::open(p.c_str(), O_WRONLY | O_NONBLOCK);
    if (w >= 0) ::close(w);
    EXPECT_ERROR(o, fifo);
  }

  // ---------------- Hugging Face directories ----------------

  void hfValidLoads() {
    const QString d = writeHfDir(QStringLiteral("hf-valid"), validHf());
    const std::string sd = d.toStdString();
    auto shape = std::make_shared<std::pair<int, int>>();  // dim, layers
    const Outcome o = attempt([sd, shape] {
      brisk::LoadedModel m = brisk::load_hf_model(sd);
      *shape = {m.config.dim, (int)m.weights.layers.size()};
    });
    QVERIFY2(o.kind == Outcome::Ok, o.message.c_str());
    QCOMPARE(shape->first, 8);
    QCOMPARE(shape->second, 1);
    // Without a tokenizer the full load says so, naming the directory.
    EXPECT_ERROR(inspect(d), d, "tokenizer");
    if (!QFileInfo::exists(sharedTok512Model()))
      QSKIP(qPrintable(QStringLiteral("full HF load needs %1").arg(sharedTok512Model())));
    const QString dt = writeHfDir(QStringLiteral("hf-valid-tok"), validHf(), {}, true);
    auto result = std::make_shared<brisk::ModelInfo>();
    const std::string sdt = dt.toStdString();
    const Outcome o2 = attempt([sdt, result] { *result = brisk::inspect_model(sdt); });
    QVERIFY2(o2.kind == Outcome::Ok, o2.message.c_str());
    const brisk::ModelInfo& info = *result;
    QCOMPARE(info.format, std::string("safetensors"));
    QCOMPARE(info.dim, 8);
    QCOMPARE(info.vocab_size, 512);
    // The safetensors file path itself also selects the directory.
    const Outcome o3 = inspect(hfSafetensors(dt));
    QVERIFY2(o3.kind == Outcome::Ok, o3.message.c_str());
  }

  void hfConfigErrors_data() {
    QTest::addColumn<QString>("mutation");
    QTest::addColumn<QStringList>("needles");
    QTest::newRow("unknown architecture") << "arch" << QStringList{"GPTFooForCausalLM", "architectures"};
    QTest::newRow("unknown model_type") << "model_type" << QStringList{"gptfoo", "model_type"};
    QTest::newRow("no architectures nor model_type") << "no_arch" << QStringList{"architectures"};
    QTest::newRow("not JSON") << "not_json" << QStringList{"JSON"};
    QTest::newRow("empty file") << "empty" << QStringList{"JSON"};
    QTest::newRow("JSON array, not an object") << "array" << QStringList{"architectures"};
    QTest::newRow("missing hidden_size") << "no_hidden" << QStringList{"hidden_size"};
    QTest::newRow("missing num_hidden_layers") << "no_layers" << QStringList{"num_hidden_layers"};
    QTest::newRow("hidden_size a string") << "hidden_str" << QStringList{"hidden_size"};
    QTest::newRow("hidden_size negative") << "hidden_neg" << QStringList{"hidden_size"};
    QTest::newRow("hidden_size 2^40") << "hidden_huge" << QStringList{"hidden_size"};
    QTest::newRow("num_attention_heads 3") << "heads3" << QStringList{"n_heads"};
    QTest::newRow("vocab_size 0") << "vocab0" << QStringList{"vocab_size"};
    QTest::newRow("architectures holds a number") << "arch_number" << QStringList{"architectures"};
    QTest::newRow("model_type a number") << "model_type_number" << QStringList{"model_type"};
    QTest::newRow("rms_norm_eps a string") << "eps_str" << QStringList{"rms_norm_eps"};
    QTest::newRow("eos_token_id array of strings") << "eos_strs" << QStringList{"eos_token_id"};
    QTest::newRow("tie_word_embeddings a string") << "tie_str" << QStringList{"tie_word_embeddings"};
    // Values the model code does not implement: they loaded and generated wrong text without a word.
    QTest::newRow("rope_scaling linear x2")
        << "rope_linear" << QStringList{"rope_scaling", "linear", "not implemented"};
    QTest::newRow("rope_scaling llama3") << "rope_llama3" << QStringList{"rope_scaling", "llama3"};
    QTest::newRow("rope_scaling default with factor 4")
        << "rope_default_x4" << QStringList{"rope_scaling", "4"};
    QTest::newRow("hidden_act gelu") << "gelu" << QStringList{"hidden_act", "gelu", "silu"};
    QTest::newRow("hidden_act a number") << "act_number" << QStringList{"hidden_act", "3"};
    QTest::newRow("attention_bias true") << "attn_bias" << QStringList{"attention_bias", "true", "bias"};
    QTest::newRow("mlp_bias true") << "mlp_bias" << QStringList{"mlp_bias", "true"};
    QTest::newRow("attention_bias a string") << "attn_bias_str" << QStringList{"attention_bias", "\"no\""};
    QTest::newRow("quantization_config") << "quant" << QStringList{"quantization_config", "gptq"};
    QTest::newRow("sliding_window 0") << "window0" << QStringList{"sliding_window", "0"};
    QTest::newRow("sliding_window a string") << "window_str" << QStringList{"sliding_window"};
  }
  void hfConfigErrors() {
    QFETCH(QString, mutation);
    QFETCH(QStringList, needles);
    HfModel m = validHf();
    json& c = m.config;
    QByteArray raw;  // when set, written as config.json instead of c
    if (mutation == "arch") c["architectures"] = {"GPTFooForCausalLM"};
    else if (mutation == "model_type") c.erase("architectures"), c["model_type"] = "gptfoo";
    else if (mutation == "no_arch") c.erase("architectures"), c.erase("model_type");
    else if (mutation == "not_json") raw = "{\"hidden_size\": 8, architectures: [LlamaForCausalLM";
    else if (mutation == "empty") raw = " ";
    else if (mutation == "array") raw = "[1, 2, 3]";
    else if (mutation == "no_hidden") c.erase("hidden_size");
    else if (mutation == "no_layers") c.erase("num_hidden_layers");
    else if (mutation == "hidden_str") c["hidden_size"] = "eight";
    else if (mutation == "hidden_neg") c["hidden_size"] = -8;
    else if (mutation == "hidden_huge") c["hidden_size"] = int64_t(1) << 40;
    else if (mutation == "heads3") c["num_attention_heads"] = 3, c["num_key_value_heads"] = 3;
    else if (mutation == "vocab0") c["vocab_size"] = 0;
    else if (mutation == "arch_number") c["architectures"] = {42};
    else if (mutation == "model_type_number") c.erase("architectures"), c["model_type"] = 7;
    else if (mutation == "eps_str") c["rms_norm_eps"] = "small";
    else if (mutation == "eos_strs") c["eos_token_id"] = {"</s>"};
    else if (mutation == "tie_str") c["tie_word_embeddings"] = "yes";
    else if (mutation == "rope_linear")
      c["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
    else if (mutation == "rope_llama3")
      c["rope_scaling"] = {
          {"rope_type", "llama3"}, {"factor", 8.0}, {"original_max_position_embeddings", 8192}};
    else if (mutation == "rope_default_x4")
      c["rope_scaling"] = {{"rope_type", "default"}, {"factor", 4}};
    else if (mutation == "gelu")
      c["hidden_act"] = "gelu";
    else if (mutation == "act_number")
      c["hidden_act"] = 3;
    else if (mutation == "attn_bias")
      c["attention_bias"] = true;
    else if (mutation == "mlp_bias")
      c["mlp_bias"] = true;
    else if (mutation == "attn_bias_str")
      c["attention_bias"] = "no";
    else if (mutation == "quant")
      c["quantization_config"] = {{"quant_method", "gptq"}, {"bits", 4}};
    else if (mutation == "window0")
      c["sliding_window"] = 0;
    else if (mutation == "window_str")
      c["sliding_window"] = "4096";
    else QFAIL("unknown mutation");
    const QString d = writeHfDir(QStringLiteral("hf-config"), m);
    if (!raw.isEmpty()) QVERIFY(writeAll(hfConfig(d), raw));
    EXPECT_ERROR_LIST(inspect(d), QStringList{hfConfig(d)} + needles);
  }

  // The values that mean what the model code does load: plain RoPE written
  // either way, SiLU, no biases, and a sliding window longer than the
  // context. A shorter window caps the context (full attention equals it up
  // to the window).
  void hfConfigValuesThatMatchTheModelCodeLoad() {
    HfModel m = validHf();
    m.config["rope_scaling"] = nullptr;
    m.config["hidden_act"] = "silu";
    m.config["attention_bias"] = false;
    m.config["mlp_bias"] = false;
    m.config["sliding_window"] = nullptr;
    m.config["quantization_config"] = nullptr;
    HfModel d = m;
    d.config["rope_scaling"] = {{"rope_type", "default"}};
    d.config["hidden_act"] = "swish";
    d.config["sliding_window"] = 4096;
    HfModel w = m;
    w.config["sliding_window"] = 32;
    const std::vector<std::pair<HfModel, int>> cases = {{m, 64}, {d, 64}, {w, 32}};
    for (const auto& [variant, context] : cases) {
      const std::string dir = writeHfDir(QStringLiteral("hf-plain"), variant).toStdString();
      auto ctx = std::make_shared<int>(0);
      const Outcome o = attempt([dir, ctx] { *ctx = brisk::load_hf_model(dir).config.context_length; });
      QVERIFY2(o.kind == Outcome::Ok, o.message.c_str());
      QCOMPARE(*ctx, context);
    }
  }

  // Tied embeddings: the embedding table is the classifier (as in
  // transformers). A stored lm_head.weight that equals it changes nothing;
  // one that differs is a wrong config or checkpoint, refused (it used to be
  // used silently, where transformers ignores it).
  void hfTiedEmbeddings() {
    auto load_tied = [&](const HfModel& m, const QString& stem) {
      const std::string dir = writeHfDir(stem, m).toStdString();
      auto tied = std::make_shared<bool>(false);
      const Outcome o =
          attempt([dir, tied] { *tied = brisk::load_hf_model(dir).weights.output.data == nullptr; });
      return std::pair{o, *tied};
    };
    HfModel m = validHf();
    m.config["tie_word_embeddings"] = true;
    m.tensors.erase(std::remove_if(m.tensors.begin(), m.tensors.end(),
                                   [](const HfTensor& t) { return t.name == "lm_head.weight"; }),
                    m.tensors.end());
    auto [absent, absent_tied] = load_tied(m, QStringLiteral("hf-tied"));
    QVERIFY2(absent.kind == Outcome::Ok, absent.message.c_str());
    QVERIFY(absent_tied);
    HfModel copy = validHf();
    copy.config["tie_word_embeddings"] = true;
    const auto [ea, eb] = hfOffsets(copy, "model.embed_tokens.weight");
    copy.header_override["lm_head.weight"] = {
        {"dtype", "F32"}, {"shape", {512, 8}}, {"data_offsets", {ea, eb}}};
    auto [same, same_tied] = load_tied(copy, QStringLiteral("hf-tied-copy"));
    QVERIFY2(same.kind == Outcome::Ok, same.message.c_str());
    QVERIFY(same_tied);
    HfModel differs = validHf();
    differs.config["tie_word_embeddings"] = true;
    const QString d = writeHfDir(QStringLiteral("hf-tied-differs"), differs);
    EXPECT_ERROR(inspect(d), hfConfig(d), "tie_word_embeddings", "lm_head.weight", "differs");
  }

  void hfSafetensorsErrors_data() {
    QTest::addColumn<QString>("mutation");
    QTest::addColumn<QString>("where");  // "st": the safetensors path, "dir": the directory
    QTest::addColumn<QStringList>("needles");
    const QString q = QStringLiteral("model.layers.0.self_attn.q_proj.weight");
    const QString up = QStringLiteral("model.layers.0.mlp.up_proj.weight");
    QTest::newRow("no model.safetensors") << "missing_file" << "st" << QStringList{};
    QTest::newRow("header length exceeds the file") << "hlen_past" << "st" << QStringList{"header length"};
    QTest::newRow("header length 2^63") << "hlen_huge" << "st" << QStringList{"header length"};
    QTest::newRow("file of 3 bytes") << "tiny_file" << "st" << QStringList{"header length"};
    QTest::newRow("header not JSON") << "header_garbage" << "st" << QStringList{"JSON"};
    QTest::newRow("header a JSON array") << "header_array" << "st" << QStringList{"object"};
    QTest::newRow("data_offsets past the end") << "offsets_past" << "st" << QStringList{up, "data_offsets"};
    QTest::newRow("data_offsets reversed") << "offsets_reversed" << "st" << QStringList{up, "data_offsets"};
    QTest::newRow("data_offsets with 3 entries") << "offsets_three" << "st" << QStringList{up, "data_offsets"};
    QTest::newRow("data_offsets 2^64-1") << "offsets_huge" << "st" << QStringList{up, "data_offsets"};
    QTest::newRow("unsupported dtype I64") << "dtype_i64" << "st" << QStringList{up, "I64"};
    QTest::newRow("dtype missing") << "dtype_missing" << "st" << QStringList{up, "dtype"};
    QTest::newRow("shape does not match the byte range") << "shape_bytes" << "st" << QStringList{up, "shape"};
    QTest::newRow("negative shape") << "shape_negative" << "st" << QStringList{up, "shape"};
    QTest::newRow("shape 2^32 x 2^32 with no bytes") << "shape_overflow" << "dir" << QStringList{up};
    QTest::newRow("truncated data") << "truncated_data" << "st" << QStringList{"data_offsets"};
    QTest::newRow("missing tensor model.norm.weight") << "missing_norm" << "dir"
                                                      << QStringList{"model.norm.weight", "missing"};
    QTest::newRow("missing lm_head without tied embeddings") << "missing_lm_head" << "dir"
                                                             << QStringList{"lm_head.weight"};
    QTest::newRow("q_proj of the wrong shape") << "q_shape" << "dir" << QStringList{q, "shape"};
    QTest::newRow("3-D q_proj") << "q_3d" << "st" << QStringList{q};
    QTest::newRow("embedding too narrow") << "embed_shape" << "dir"
                                          << QStringList{"model.embed_tokens.weight", "shape"};
    QTest::newRow("a q_proj bias (not in the model code)")
        << "q_bias"
        << "st" << QStringList{"model.layers.0.self_attn.q_proj.bias", "not implemented"};
  }
  void hfSafetensorsErrors() {
    QFETCH(QString, mutation);
    QFETCH(QString, where);
    QFETCH(QStringList, needles);
    HfModel m = validHf();
    const std::string up = "model.layers.0.mlp.up_proj.weight", q = "model.layers.0.self_attn.q_proj.weight";
    const auto [ua, ub] = hfOffsets(m, up);
    std::function<void(QByteArray&)> patch;
    bool remove_file = false;
    auto set_tensor = [&](const std::string& name, const std::vector<int64_t>& shape) {
      for (auto& t : m.tensors)
        if (t.name == name) t.shape = shape;
    };
    auto entry = [&](const std::string& dtype, json shape, json offsets) {
      return json{{"dtype", dtype}, {"shape", shape}, {"data_offsets", offsets}};
    };
    if (mutation == "missing_file") remove_file = true;
    else if (mutation == "hlen_past") patch = [](QByteArray& b) { put<uint64_t>(b, 0, (uint64_t)b.size() + 100); };
    else if (mutation == "hlen_huge") patch = [](QByteArray& b) { put<uint64_t>(b, 0, uint64_t(1) << 63); };
    else if (mutation == "tiny_file") patch = [](QByteArray& b) { b.truncate(3); };
    else if (mutation == "header_garbage")
      patch = [](QByteArray& b) {
        const uint64_t n = get<uint64_t>(b, 0);
        for (uint64_t i = 8; i < 8 + n; ++i) b[(qsizetype)i] = 'x';
      };
    else if (mutation == "header_array")
      patch = [](QByteArray& b) {
        const uint64_t n = get<uint64_t>(b, 0);
        b[8] = '[';
        for (uint64_t i = 9; i < 8 + n - 1; ++i) b[(qsizetype)i] = ' ';
        b[(qsizetype)(8 + n - 1)] = ']';
      };
    else if (mutation == "offsets_past") m.header_override[up] = entry("F32", {16, 8}, {ua, hfDataSize(m) + 64});
    else if (mutation == "offsets_reversed") m.header_override[up] = entry("F32", {16, 8}, {ub, ua});
    else if (mutation == "offsets_three") m.header_override[up] = entry("F32", {16, 8}, {ua, ub, ub});
    else if (mutation == "offsets_huge") m.header_override[up] = entry("F32", {16, 8}, {ua, ~uint64_t(0)});
    else if (mutation == "dtype_i64") m.header_override[up] = entry("I64", {16, 4}, {ua, ub});
    else if (mutation == "dtype_missing") m.header_override[up] = json{{"shape", {16, 8}}, {"data_offsets", {ua, ub}}};
    else if (mutation == "shape_bytes") m.header_override[up] = entry("F32", {16, 9}, {ua, ub});
    else if (mutation == "shape_negative") m.header_override[up] = entry("F32", {-16, -8}, {ua, ub});
    else if (mutation == "shape_overflow")
      m.header_override[up] = entry("F32", {int64_t(1) << 32, int64_t(1) << 32}, {ua, ua});
    else if (mutation == "truncated_data") patch = [](QByteArray& b) { b.truncate(b.size() - 1000); };
    else if (mutation == "missing_norm")
      m.tensors.erase(std::remove_if(m.tensors.begin(), m.tensors.end(),
                                     [](const HfTensor& t) { return t.name == "model.norm.weight"; }),
                      m.tensors.end());
    else if (mutation == "missing_lm_head")
      m.tensors.erase(std::remove_if(m.tensors.begin(), m.tensors.end(),
                                     [](const HfTensor& t) { return t.name == "lm_head.weight"; }),
                      m.tensors.end());
    else if (mutation == "q_shape") set_tensor(q, {4, 16});
    else if (mutation == "q_3d") set_tensor(q, {2, 4, 8});
    else if (mutation == "embed_shape") set_tensor("model.embed_tokens.weight", {1024, 4});
    else if (mutation == "q_bias")
      m.tensors.push_back({"model.layers.0.self_attn.q_proj.bias", "F32", {8}});
    else QFAIL("unknown mutation");
    const QString d = writeHfDir(QStringLiteral("hf-st"), m, patch);
    if (remove_file) QVERIFY(QFile::remove(hfSafetensors(d)));
    const QString file = where == QLatin1String("st") ? hfSafetensors(d) : d;
    EXPECT_ERROR_LIST(inspect(d), QStringList{file} + needles);
  }

  void hfShardIndexErrors_data() {
    QTest::addColumn<QByteArray>("index");
    QTest::addColumn<QStringList>("needles");
    QTest::newRow("shard file missing") << QByteArray(R"({"weight_map": {"model.norm.weight": "missing-00001.safetensors"}})")
                                        << QStringList{"missing-00001.safetensors"};
    QTest::newRow("index not JSON") << QByteArray("{weight_map") << QStringList{"model.safetensors.index.json", "JSON"};
    QTest::newRow("no weight_map") << QByteArray(R"({"metadata": {}})")
                                   << QStringList{"model.safetensors.index.json", "weight_map"};
    QTest::newRow("weight_map value a number") << QByteArray(R"({"weight_map": {"model.norm.weight": 5}})")
                                               << QStringList{"model.safetensors.index.json", "weight_map"};
  }
  void hfShardIndexErrors() {
    QFETCH(QByteArray, index);
    QFETCH(QStringList, needles);
    const QString d = writeHfDir(QStringLiteral("hf-index"), validHf());
    QVERIFY(writeAll(QDir(d).filePath(QStringLiteral("model.safetensors.index.json")), index));
    EXPECT_ERROR_LIST(inspect(d), QStringList{d} + needles);
  }

  // ---------------- llama2.c checkpoints ----------------

  void llama2cValidLoads() {
    const QString p = writeVariant(QStringLiteral("l2c-valid"), llama2cBytes({}), QStringLiteral(".bin"));
    const std::string sp = p.toStdString();
    auto shape = std::make_shared<std::pair<int, int>>();  // dim, vocab
    const Outcome o = attempt([sp, shape] {
      brisk::LoadedModel m = brisk::load_llama2c_model(sp);
      *shape = {m.config.dim, m.config.vocab_size};
    });
    QVERIFY2(o.kind == Outcome::Ok, o.message.c_str());
    QCOMPARE(shape->first, 8);
    QCOMPARE(shape->second, 32);
    // No tokenizer beside it: the full load says to pass one.
    EXPECT_ERROR(inspect(p), p, "tokenizer");
  }

  void llama2cErrors_data() {
    QTest::addColumn<int>("dim");
    QTest::addColumn<int>("hidden");
    QTest::addColumn<int>("layers");
    QTest::addColumn<int>("heads");
    QTest::addColumn<int>("kv_heads");
    QTest::addColumn<int>("vocab");
    QTest::addColumn<int>("seq_len");
    QTest::addColumn<qint64>("cut");  // -1: keep the valid body size for a {8,16,1,2,2,32,16} model
    QTest::addColumn<QStringList>("needles");
    const QStringList T{QStringLiteral("truncated")};
    QTest::newRow("empty file") << 8 << 16 << 1 << 2 << 2 << 32 << 16 << qint64(0) << (T + QStringList{"dim"});
    QTest::newRow("cut inside the header") << 8 << 16 << 1 << 2 << 2 << 32 << 16 << qint64(10)
                                           << (T + QStringList{"n_layers"});
    QTest::newRow("header only") << 8 << 16 << 1 << 2 << 2 << 32 << 16 << qint64(28) << T;
    QTest::newRow("cut in the middle") << 8 << 16 << 1 << 2 << 2 << 32 << 16 << qint64(1500) << T;
    QTest::newRow("last float missing") << 8 << 16 << 1 << 2 << 2 << 32 << 16 << qint64(-4) << T;
    QTest::newRow("negative dim") << -8 << 16 << 1 << 2 << 2 << 32 << 16 << qint64(-1) << QStringList{"dim", "-8"};
    QTest::newRow("absurd dim") << (1 << 30) << 16 << 1 << 2 << 2 << 32 << 16 << qint64(-1)
                                << QStringList{"dim", "1073741824"};
    QTest::newRow("zero hidden_dim") << 8 << 0 << 1 << 2 << 2 << 32 << 16 << qint64(-1) << QStringList{"hidden_dim"};
    QTest::newRow("negative n_layers") << 8 << 16 << -1 << 2 << 2 << 32 << 16 << qint64(-1)
                                       << QStringList{"n_layers"};
    QTest::newRow("absurd n_layers") << 8 << 16 << 1000000 << 2 << 2 << 32 << 16 << qint64(-1)
                                     << QStringList{"n_layers"};
    QTest::newRow("zero n_heads") << 8 << 16 << 1 << 0 << 2 << 32 << 16 << qint64(-1) << QStringList{"n_heads"};
    QTest::newRow("n_kv_heads 3 of 2") << 8 << 16 << 1 << 2 << 3 << 32 << 16 << qint64(-1)
                                       << QStringList{"n_kv_heads"};
    QTest::newRow("vocab INT32_MIN") << 8 << 16 << 1 << 2 << 2 << INT_MIN << 16 << qint64(-1)
                                     << QStringList{"vocab_size"};
    QTest::newRow("vocab 0") << 8 << 16 << 1 << 2 << 2 << 0 << 16 << qint64(-1) << QStringList{"vocab_size"};
    QTest::newRow("negative seq_len") << 8 << 16 << 1 << 2 << 2 << 32 << -5 << qint64(-1)
                                      << QStringList{"context_length"};
    QTest::newRow("unshared classifier missing (vocab -32)") << 8 << 16 << 1 << 2 << 2 << -32 << 16 << qint64(-1)
                                                             << T;
    QTest::newRow("largest plausible shape, tiny file") << 65536 << 262144 << 1024 << 1024 << 1024 << 10000000
                                                        << (1 << 24) << qint64(-1) << T;
  }
  void llama2cErrors() {
    QFETCH(int, dim);
    QFETCH(int, hidden);
    QFETCH(int, layers);
    QFETCH(int, heads);
    QFETCH(int, kv_heads);
    QFETCH(int, vocab);
    QFETCH(int, seq_len);
    QFETCH(qint64, cut);
    QFETCH(QStringList, needles);
    QByteArray b = llama2cBytes({});
    if (cut >= 0) b.truncate((qsizetype)cut);
    else if (cut < -1) b.truncate(b.size() + (qsizetype)cut);
    const int32_t h[7] = {dim, hidden, layers, heads, kv_heads, vocab, seq_len};
    for (int i = 0; i < 7 && 4 * i + 4 <= b.size(); ++i) put<int32_t>(b, 4 * i, h[i]);
    const QString p = writeVariant(QStringLiteral("l2c"), b, QStringLiteral(".bin"));
    EXPECT_ERROR_LIST(inspect(p), QStringList{p} + needles);
  }

  void llama2cBadTokenizer() {
    const QString p = writeVariant(QStringLiteral("l2c-tok"), llama2cBytes({}), QStringLiteral(".bin"));
    EXPECT_ERROR(inspect(p, QStringLiteral("/nonexistent/tok.bin")), "/nonexistent/tok.bin");
    const QString junk = writeVariant(QStringLiteral("junk-tok"), QByteArray("\x01\x00", 2), QStringLiteral(".bin"));
    EXPECT_ERROR(inspect(p, junk), junk);
  }

  // What the loader takes beside a checkpoint when no tokenizer is given, as
  // the window asks it before offering a file dialog: tokN.model first (N the
  // checkpoint's vocabulary), then tokenizer.model, tokN.bin, tokenizer.bin.
  void llama2cTokenizerBeside() {
    QTemporaryDir d;
    QVERIFY(d.isValid());
    const QString ckpt = d.filePath(QStringLiteral("model.bin"));
    QVERIFY(writeAll(ckpt, llama2cBytes({})));  // vocabulary 32
    QCOMPARE(brisk::llama2c_tokenizer_beside(ckpt.toStdString()), std::string());
    QVERIFY(writeAll(d.filePath(QStringLiteral("tokenizer.bin")), "x"));
    QCOMPARE(brisk::llama2c_tokenizer_beside(ckpt.toStdString()),
             d.filePath(QStringLiteral("tokenizer.bin")).toStdString());
    QVERIFY(writeAll(d.filePath(QStringLiteral("tok512.model")), "x"));  // another vocabulary's: not taken
    QVERIFY(writeAll(d.filePath(QStringLiteral("tok32.bin")), "x"));
    QCOMPARE(brisk::llama2c_tokenizer_beside(ckpt.toStdString()),
             d.filePath(QStringLiteral("tok32.bin")).toStdString());
    QVERIFY(QDir().mkpath(d.filePath(QStringLiteral("tokenizer.model"))));  // a folder is no tokenizer
    QCOMPARE(brisk::llama2c_tokenizer_beside(ckpt.toStdString()),
             d.filePath(QStringLiteral("tok32.bin")).toStdString());
    QVERIFY(writeAll(d.filePath(QStringLiteral("tok32.model")), "x"));
    QCOMPARE(brisk::llama2c_tokenizer_beside(ckpt.toStdString()),
             d.filePath(QStringLiteral("tok32.model")).toStdString());
    // A negative vocabulary (an unshared classifier) names the same files.
    L2cHeader unshared;
    unshared.vocab_size = -32;
    const QString ckpt2 = d.filePath(QStringLiteral("unshared.bin"));
    QVERIFY(writeAll(ckpt2, llama2cBytes(unshared)));
    QCOMPARE(brisk::llama2c_tokenizer_beside(ckpt2.toStdString()),
             d.filePath(QStringLiteral("tok32.model")).toStdString());
    // Not a checkpoint (too short to hold a header): nothing to find.
    const QString shortFile = d.filePath(QStringLiteral("short.bin"));
    QVERIFY(writeAll(shortFile, "abc"));
    QCOMPARE(brisk::llama2c_tokenizer_beside(shortFile.toStdString()), std::string());
  }

  // ---------------- Engine::create ----------------

  void engineValidTiny() {
    brisk::EngineConfig cfg;
    cfg.model = tinyPath_.toStdString();
    cfg.threads = 1;
    auto out = std::make_shared<std::vector<int32_t>>();
    const Outcome o = attempt([cfg, out] {
      auto e = brisk::Engine::create(cfg);
      brisk::SamplingParams sp;
      sp.max_tokens = 4;
      sp.ignore_eos = true;
      e->add_request("hello", sp);
      while (e->has_unfinished())
        for (const auto& r : e->step())
          if (r.finished) *out = r.token_ids;
    }, 60000);
    QVERIFY2(o.kind == Outcome::Ok, o.message.c_str());
    QCOMPARE((int)out->size(), 4);
  }

  void engineConfigErrors_data() {
    QTest::addColumn<QString>("field");
    QTest::addColumn<QStringList>("needles");
    QTest::newRow("block_size 3") << "block_size=3" << QStringList{"block_size", "3"};
    QTest::newRow("block_size 0") << "block_size=0" << QStringList{"block_size"};
    QTest::newRow("block_size 2048") << "block_size=2048" << QStringList{"block_size"};
    QTest::newRow("max_num_seqs 0") << "max_num_seqs=0" << QStringList{"max_num_seqs"};
    QTest::newRow("max_num_batched_tokens 0") << "max_num_batched_tokens=0" << QStringList{"max_num_batched_tokens"};
    QTest::newRow("max_num_batched_tokens below max_num_seqs") << "max_num_batched_tokens=4"
                                                               << QStringList{"max_num_batched_tokens"};
    QTest::newRow("num_kv_blocks -1") << "num_kv_blocks=-1" << QStringList{"num_kv_blocks"};
    QTest::newRow("kv_cache_bytes -5") << "kv_cache_bytes=-5" << QStringList{"kv_cache_bytes"};
    QTest::newRow("kv_cache_bytes 1") << "kv_cache_bytes=1" << QStringList{"kv_cache_bytes"};
    QTest::newRow("num_kv_blocks 1 of block_size 1") << "tiny_blocks" << QStringList{"num_kv_blocks"};
    QTest::newRow("static policy, 1-token batches") << "static_one_token" << QStringList{"max_num_batched_tokens"};
    QTest::newRow("max_model_len past the context") << "max_model_len=100000" << QStringList{"max_model_len", "512"};
    QTest::newRow("max_model_len -1") << "max_model_len=-1" << QStringList{"max_model_len"};
    QTest::newRow("backend cuda9") << "backend=cuda9" << QStringList{"backend", "cuda9"};
    QTest::newRow("threads -1") << "threads=-1" << QStringList{"threads"};
    QTest::newRow("int8_activations on F32 weights (auto)")
        << "int8_activations" << QStringList{"int8_activations", "int8 weights", "F32"};
    QTest::newRow("model empty") << "model=" << QStringList{"model"};
    QTest::newRow("model missing") << "model=/nonexistent/m.gguf" << QStringList{"/nonexistent/m.gguf"};
    QTest::newRow("tokenizer missing") << "tokenizer=/nonexistent/t.model" << QStringList{"/nonexistent/t.model"};
  }
  void engineConfigErrors() {
    QFETCH(QString, field);
    QFETCH(QStringList, needles);
    brisk::EngineConfig cfg;
    cfg.model = tinyPath_.toStdString();
    cfg.threads = 1;
    const QString key = field.section(QLatin1Char('='), 0, 0), val = field.section(QLatin1Char('='), 1);
    if (key == "block_size") cfg.block_size = val.toInt();
    else if (key == "max_num_seqs") cfg.max_num_seqs = val.toInt();
    else if (key == "max_num_batched_tokens") cfg.max_num_batched_tokens = val.toInt(), cfg.max_num_seqs = 8;
    else if (key == "num_kv_blocks") cfg.num_kv_blocks = val.toLongLong();
    else if (key == "kv_cache_bytes") cfg.kv_cache_bytes = val.toLongLong();
    else if (key == "tiny_blocks") cfg.num_kv_blocks = 1, cfg.block_size = 1;
    else if (key == "static_one_token")
      cfg.policy = brisk::SchedulerPolicy::Static, cfg.max_num_batched_tokens = 1, cfg.max_num_seqs = 1;
    else if (key == "max_model_len") cfg.max_model_len = val.toInt();
    else if (key == "backend") cfg.backend = val.toStdString();
    else if (key == "threads") cfg.threads = val.toInt();
    else if (key == "model") cfg.model = val.toStdString();
    else if (key == "tokenizer") cfg.tokenizer = val.toStdString();
    else if (key == "int8_activations") cfg.int8_activations = true;
    else QFAIL("unknown field");
    if (key == "max_num_batched_tokens" && val == "0") cfg.max_num_seqs = 32;
    EXPECT_ERROR_LIST(createEngine(cfg), needles);
  }
};

QTEST_APPLESS_MAIN(TestModelLoading)
#include "test_model_loading.moc"
