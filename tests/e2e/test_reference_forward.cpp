// Validates the test-side oracle (e2e/support/reference_llama) against published reference
// outputs, before any engine test trusts it: greedy ids from llama2.c run.c for the real
// checkpoints, and an exact round trip through the Hugging Face directory writer.
#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>
#include <qfloat16.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "e2e/support/reference_llama.h"

namespace {

// From /work/shared/models/stories260K/README.md: `run stories260K.bin -z tok512.bin -t 0
// -n 256` (llama2.c @ 350e04fe), greedy ids after BOS.
const std::vector<int> kStories260KGreedy256 = {
    403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396,
    267, 337, 410, 408, 419, 292, 411, 322, 265, 282, 295, 433, 426, 385, 328, 432, 358, 394,
    261, 370, 432, 352, 266, 268, 388, 426, 338, 391, 266, 267, 337, 335, 312, 432, 398, 312,
    286, 267, 414, 270, 333, 415, 426, 13,  438, 310, 439, 419, 357, 336, 432, 313, 438, 310,
    432, 278, 316, 439, 419, 298, 414, 267, 265, 282, 295, 433, 426, 436, 317, 286, 296, 418,
    269, 279, 292, 416, 439, 413, 409, 416, 327, 263, 415, 294, 267, 400, 426, 338, 336, 432,
    313, 442, 391, 267, 337, 335, 364, 420, 268, 388, 432, 398, 359, 280, 303, 439, 413, 272,
    417, 264, 312, 426, 436, 13,  438, 310, 286, 296, 418, 269, 279, 292, 416, 439, 413, 409,
    416, 327, 263, 415, 294, 267, 400, 426, 338, 336, 432, 313, 442, 439, 423, 262, 304, 420,
    422, 432, 317, 426, 359, 279, 292, 416, 439, 413, 409, 416, 327, 263, 415, 294, 267, 400,
    426, 436, 13,  438, 310, 279, 292, 416, 439, 413, 391, 267, 281, 421, 427, 311, 357, 432,
    384, 358, 336, 432, 313, 442, 439, 423, 262, 304, 420, 422, 432, 357, 426, 359, 279, 292,
    416, 439, 413, 409, 416, 327, 263, 415, 294, 267, 400, 426, 436, 320, 285, 357, 336, 432,
    313, 455, 289, 439, 413, 263, 304, 420, 422, 432, 317, 426, 410, 448, 411, 280, 303, 281,
    421, 427, 364, 426};

// From /work/shared/models/llama-2-tiny-random/README.md: run.c on the GGUF converted to
// llama2.c layout, `-t 0 -n 32`, greedy ids after BOS.
const std::vector<int> kTinyRandomGreedy32 = {
    31102, 18247, 4847,  634,   20459, 5601,  29710, 4660,  29509, 31364, 28253,
    12321, 12681, 14340, 1189,  30070, 29182, 9645,  20945, 16138, 2451,  19209,
    19982, 8317,  15492, 19741, 8021,  29710, 4660,  29448, 3870,  13706};

QString ModelPath(const char* relative) {
  return QDir(QStringLiteral(BRISK_SHARED_MODELS)).filePath(QString::fromUtf8(relative));
}

#define REQUIRE_MODEL(var, relative)                                                     \
  const QString var = ModelPath(relative);                                               \
  if (!QFileInfo::exists(var)) {                                                         \
    QSKIP(qPrintable(QStringLiteral("model not available: %1").arg(var)));               \
  }

QString Ids(const std::vector<int>& ids) {
  QStringList parts;
  for (int id : ids) parts << QString::number(id);
  return parts.join(',');
}

// Runs greedy and reports the time and the smallest top-1/top-2 gap.
std::vector<int> TimedGreedy(const brisk_test::RefModel& m, int n, std::vector<double>* gaps) {
  QElapsedTimer timer;
  timer.start();
  std::vector<int> ids = brisk_test::greedy(m, {m.dims.bos_id}, n, gaps);
  const auto min_gap = std::min_element(gaps->begin(), gaps->end());
  qInfo("greedy %d tokens in %.1f ms; smallest top1-top2 gap %.3g at step %d", n,
        timer.nsecsElapsed() / 1e6, *min_gap, static_cast<int>(min_gap - gaps->begin()));
  return ids;
}

// ---- A deliberately small safetensors reader: shares nothing with the oracle's writer.

struct StTensor {
  QString dtype;
  std::vector<qint64> shape;
  std::vector<double> values;
  std::vector<uint32_t> raw;  // The stored bit patterns, for exact rounding checks.
};

std::map<QString, StTensor> ReadSafetensors(const QString& path) {
  std::map<QString, StTensor> out;
  QFile file(path);
  if (!file.open(QIODevice::ReadOnly)) {
    qWarning("cannot open %s", qPrintable(path));
    return out;
  }
  const QByteArray bytes = file.readAll();
  quint64 n = 0;
  std::memcpy(&n, bytes.constData(), 8);
  const QJsonObject header =
      QJsonDocument::fromJson(bytes.mid(8, static_cast<qsizetype>(n))).object();
  const char* data = bytes.constData() + 8 + n;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == QLatin1String("__metadata__")) continue;
    const QJsonObject o = it.value().toObject();
    StTensor t;
    t.dtype = o.value("dtype").toString();
    for (const QJsonValue& d : o.value("shape").toArray()) t.shape.push_back(d.toInteger());
    const QJsonArray offsets = o.value("data_offsets").toArray();
    const qint64 begin = offsets.at(0).toInteger(), end = offsets.at(1).toInteger();
    const int elem = t.dtype == QLatin1String("F32") ? 4 : 2;
    for (qint64 p = begin; p < end; p += elem) {
      if (elem == 4) {
        float f;
        std::memcpy(&f, data + p, 4);
        uint32_t u;
        std::memcpy(&u, data + p, 4);
        t.values.push_back(f);
        t.raw.push_back(u);
      } else {
        uint16_t h;
        std::memcpy(&h, data + p, 2);
        t.raw.push_back(h);
        if (t.dtype == QLatin1String("F16")) {
          t.values.push_back(static_cast<float>(std::bit_cast<qfloat16>(h)));
        } else {
          const uint32_t u = uint32_t{h} << 16;
          float f;
          std::memcpy(&f, &u, 4);
          t.values.push_back(f);
        }
      }
    }
    out[it.key()] = std::move(t);
  }
  return out;
}

QJsonObject ReadJson(const QString& path) {
  QFile file(path);
  if (!file.open(QIODevice::ReadOnly)) return {};
  return QJsonDocument::fromJson(file.readAll()).object();
}

// Every tensor of an HF directory, following the index when the checkpoint is sharded.
std::map<QString, StTensor> ReadHfDirectory(const QString& dir) {
  const QDir d(dir);
  if (QFileInfo::exists(d.filePath("model.safetensors"))) {
    return ReadSafetensors(d.filePath("model.safetensors"));
  }
  const QJsonObject map =
      ReadJson(d.filePath("model.safetensors.index.json")).value("weight_map").toObject();
  std::map<QString, StTensor> all;
  QStringList files;
  for (const QJsonValue& v : map) {
    if (!files.contains(v.toString())) files << v.toString();
  }
  for (const QString& f : files) {
    for (auto& [name, t] : ReadSafetensors(d.filePath(f))) {
      if (map.value(name).toString() != f) {
        qWarning("%s is in %s but the index maps it elsewhere", qPrintable(name),
                 qPrintable(f));
        continue;
      }
      all[name] = std::move(t);
    }
  }
  if (static_cast<qsizetype>(all.size()) != map.size()) {
    qWarning("index lists %lld tensors, shards hold %zu", static_cast<long long>(map.size()),
             all.size());
  }
  return all;
}

// The oracle's tensors by HF name, in the oracle's own (interleaved RoPE) row order.
std::map<QString, const std::vector<double>*> HfNames(const brisk_test::RefModel& m) {
  std::map<QString, const std::vector<double>*> names;
  names["model.embed_tokens.weight"] = &m.token_embedding;
  names["model.norm.weight"] = &m.rms_final;
  if (!m.tied_classifier) names["lm_head.weight"] = &m.wcls;
  for (int i = 0; i < m.dims.n_layers; ++i) {
    const brisk_test::RefLayer& l = m.layers[i];
    const QString p = QStringLiteral("model.layers.%1.").arg(i);
    names[p + "self_attn.q_proj.weight"] = &l.wq;
    names[p + "self_attn.k_proj.weight"] = &l.wk;
    names[p + "self_attn.v_proj.weight"] = &l.wv;
    names[p + "self_attn.o_proj.weight"] = &l.wo;
    names[p + "mlp.gate_proj.weight"] = &l.w1;
    names[p + "mlp.up_proj.weight"] = &l.w3;
    names[p + "mlp.down_proj.weight"] = &l.w2;
    names[p + "input_layernorm.weight"] = &l.rms_att;
    names[p + "post_attention_layernorm.weight"] = &l.rms_ffn;
  }
  return names;
}

// Undoes the HF rotate-half permutation with the index formula written out independently:
// HF row h*hs + j*(hs/2) + i holds interleaved row h*hs + 2*i + j.
std::vector<double> UnpermuteFromHf(const std::vector<double>& hf, int head_size, int cols) {
  std::vector<double> out(hf.size());
  const int rows = static_cast<int>(hf.size()) / cols;
  for (int h = 0; h < rows / head_size; ++h) {
    for (int i = 0; i < head_size / 2; ++i) {
      for (int j = 0; j < 2; ++j) {
        const int src = h * head_size + j * (head_size / 2) + i;
        const int dst = h * head_size + 2 * i + j;
        std::copy_n(hf.begin() + src * cols, cols, out.begin() + dst * cols);
      }
    }
  }
  return out;
}

bool IsRopeProjection(const QString& name) {
  return name.endsWith("q_proj.weight") || name.endsWith("k_proj.weight");
}

}  // namespace

class TestReferenceForward : public QObject {
  Q_OBJECT

 private slots:
  void stories260KBinMatchesRunC() {
    REQUIRE_MODEL(path, "stories260K/stories260K.bin");
    const brisk_test::RefModel m = brisk_test::load_llama2c(path.toStdString());
    QCOMPARE(m.dims.dim, 64);
    QCOMPARE(m.dims.n_kv_heads, 4);
    QVERIFY(m.tied_classifier);
    std::vector<double> gaps;
    const std::vector<int> ids = TimedGreedy(m, 256, &gaps);
    QCOMPARE(Ids(ids), Ids(kStories260KGreedy256));
    // The README's independent python forward reports 0.0042 at step 185.
    const auto min_gap = std::min_element(gaps.begin(), gaps.end());
    QCOMPARE(min_gap - gaps.begin(), 185);
    QVERIFY(std::fabs(*min_gap - 0.0042) < 0.00005);
  }

  void stories260KGgufMatchesRunC() {
    REQUIRE_MODEL(gguf_path, "stories260K/stories260K.gguf");
    const brisk_test::RefModel m = brisk_test::load_gguf(gguf_path.toStdString());
    QCOMPARE(m.dims.n_layers, 5);
    QCOMPARE(m.dims.n_heads, 8);
    QCOMPARE(m.dims.vocab_size, 512);
    QCOMPARE(m.dims.hidden_dim, 172);
    std::vector<double> gaps;
    QCOMPARE(Ids(TimedGreedy(m, 256, &gaps)), Ids(kStories260KGreedy256));

    // The README says the GGUF holds the .bin's weights byte for byte; confirm that both
    // readers agree, which pins down the GGUF reader's row-major (ne0 fastest) reading.
    const QString bin_path = ModelPath("stories260K/stories260K.bin");
    if (!QFileInfo::exists(bin_path)) return;
    const brisk_test::RefModel b = brisk_test::load_llama2c(bin_path.toStdString());
    QVERIFY(m.token_embedding == b.token_embedding);
    QVERIFY(m.wcls == b.wcls);
    QVERIFY(m.rms_final == b.rms_final);
    for (int i = 0; i < 5; ++i) {
      const brisk_test::RefLayer &x = m.layers[i], &y = b.layers[i];
      QVERIFY(x.wq == y.wq && x.wk == y.wk && x.wv == y.wv && x.wo == y.wo);
      QVERIFY(x.w1 == y.w1 && x.w2 == y.w2 && x.w3 == y.w3);
      QVERIFY(x.rms_att == y.rms_att && x.rms_ffn == y.rms_ffn);
    }
  }

  void tinyRandomGgufMatchesRunC() {
    REQUIRE_MODEL(path, "llama-2-tiny-random/llama-2-tiny-random.gguf");
    const brisk_test::RefModel m = brisk_test::load_gguf(path.toStdString());
    QCOMPARE(m.source_dtype, std::string("F16"));
    QCOMPARE(m.dims.dim, 8);
    QCOMPARE(m.dims.vocab_size, 32000);
    QVERIFY(!m.tied_classifier);
    std::vector<double> gaps;
    const std::vector<int> ids = TimedGreedy(m, 32, &gaps);
    // The README warns of a 5.3e-4 gap at step 23, small enough that a float32 engine
    // could legitimately diverge there. In double the oracle sits far from that edge
    // (float32 rounding of these tiny logits is ~1e-7) and agrees with run.c on all 32.
    QCOMPARE(Ids(ids), Ids(kTinyRandomGreedy32));
    const auto min_gap = std::min_element(gaps.begin(), gaps.end());
    QCOMPARE(min_gap - gaps.begin(), 23);
    QVERIFY(std::fabs(*min_gap - 5.3e-4) < 0.05e-4);
  }

  void hfDirectoryRoundTripsExactly_data() {
    QTest::addColumn<QString>("model");
    QTest::addColumn<QString>("dtype");
    QTest::addColumn<bool>("sharded");
    QTest::newRow("stories260K F32") << "stories260K/stories260K.bin" << "F32" << false;
    QTest::newRow("stories260K F32 sharded") << "stories260K/stories260K.bin" << "F32" << true;
    QTest::newRow("stories260K F16 sharded") << "stories260K/stories260K.bin" << "F16" << true;
    QTest::newRow("stories260K BF16") << "stories260K/stories260K.bin" << "BF16" << false;
    QTest::newRow("tiny-random F16 sharded")
        << "llama-2-tiny-random/llama-2-tiny-random.gguf" << "F16" << true;
  }

  void hfDirectoryRoundTripsExactly() {
    QFETCH(QString, model);
    QFETCH(QString, dtype);
    QFETCH(bool, sharded);
    REQUIRE_MODEL(path, model.toUtf8().constData());
    const brisk_test::RefModel m = path.endsWith(".gguf")
                                       ? brisk_test::load_gguf(path.toStdString())
                                       : brisk_test::load_llama2c(path.toStdString());
    QTemporaryDir tmp;
    QVERIFY(tmp.isValid());
    brisk_test::write_hf_directory(m, tmp.path().toStdString(), dtype.toStdString(), sharded);

    const QDir dir(tmp.path());
    QCOMPARE(QFileInfo::exists(dir.filePath("model.safetensors")), !sharded);
    QCOMPARE(QFileInfo::exists(dir.filePath("model.safetensors.index.json")), sharded);
    QCOMPARE(QFileInfo::exists(dir.filePath("model-00002-of-00002.safetensors")), sharded);

    const QJsonObject config = ReadJson(dir.filePath("config.json"));
    QCOMPARE(config.value("architectures").toArray().at(0).toString(),
             QStringLiteral("LlamaForCausalLM"));
    QCOMPARE(config.value("model_type").toString(), QStringLiteral("llama"));
    QCOMPARE(config.value("hidden_size").toInt(), m.dims.dim);
    QCOMPARE(config.value("intermediate_size").toInt(), m.dims.hidden_dim);
    QCOMPARE(config.value("num_hidden_layers").toInt(), m.dims.n_layers);
    QCOMPARE(config.value("num_attention_heads").toInt(), m.dims.n_heads);
    QCOMPARE(config.value("num_key_value_heads").toInt(), m.dims.n_kv_heads);
    QCOMPARE(config.value("vocab_size").toInt(), m.dims.vocab_size);
    QCOMPARE(config.value("rms_norm_eps").toDouble(), m.dims.rms_eps);
    QCOMPARE(config.value("rope_theta").toDouble(), m.dims.rope_theta);
    QCOMPARE(config.value("tie_word_embeddings").toBool(), m.tied_classifier);
    QCOMPARE(config.value("torch_dtype").toString(),
             dtype == "F32" ? QStringLiteral("float32")
                            : dtype == "F16" ? QStringLiteral("float16")
                                             : QStringLiteral("bfloat16"));

    const std::map<QString, StTensor> stored = ReadHfDirectory(tmp.path());
    const auto expected = HfNames(m);
    QCOMPARE(stored.size(), expected.size());
    const int hs = m.dims.head_size();
    for (const auto& [name, original] : expected) {
      const auto it = stored.find(name);
      QVERIFY2(it != stored.end(), qPrintable("missing " + name));
      const StTensor& t = it->second;
      QCOMPARE(t.dtype, dtype);
      qint64 count = 1;
      for (qint64 d : t.shape) count *= d;
      QCOMPARE(count, static_cast<qint64>(original->size()));
      QCOMPARE(t.shape.size(), name.endsWith("norm.weight") ? size_t{1} : size_t{2});
      const int cols = static_cast<int>(t.shape.back());
      std::vector<double> values = t.values;
      std::vector<uint32_t> raw(t.raw.begin(), t.raw.end());
      if (IsRopeProjection(name)) {
        values = UnpermuteFromHf(values, hs, cols);
        std::vector<double> raw_d(raw.begin(), raw.end());
        raw_d = UnpermuteFromHf(raw_d, hs, cols);
        raw.assign(raw_d.begin(), raw_d.end());
      }
      for (size_t i = 0; i < original->size(); ++i) {
        const double want = (*original)[i];
        // The sources are float32 (stories260K) or float16 (tiny-random), so F32 is exact
        // everywhere and F16 exact for tiny-random. Otherwise check round-to-nearest-even
        // against conversions the oracle did not write: Qt's qfloat16, and the classic
        // float32 -> bfloat16 bit formula (no NaNs in these weights).
        const float f = static_cast<float>(want);
        bool ok;
        if (dtype == "F32" || m.source_dtype == "F16") {
          ok = values[i] == want;
        } else if (dtype == "F16") {
          ok = raw[i] == std::bit_cast<uint16_t>(qfloat16(f));
        } else {
          uint32_t u;
          std::memcpy(&u, &f, 4);
          ok = raw[i] == ((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
        }
        if (!ok) {
          QFAIL(qPrintable(QStringLiteral("%1[%2]: stored %3 (bits %4), original %5")
                               .arg(name)
                               .arg(i)
                               .arg(values[i], 0, 'g', 17)
                               .arg(raw[i], 0, 16)
                               .arg(want, 0, 'g', 17)));
        }
      }
    }
  }

  // The permutation must be the one HF uses, not merely self-consistent: HF's rotate-half
  // RoPE applied to the stored q_proj rows must give the oracle's interleaved-RoPE query,
  // row for row, at any position.
  void hfPermutationMatchesRotateHalfRope() {
    REQUIRE_MODEL(path, "stories260K/stories260K.bin");
    const brisk_test::RefModel m = brisk_test::load_llama2c(path.toStdString());
    QTemporaryDir tmp;
    QVERIFY(tmp.isValid());
    brisk_test::write_hf_directory(m, tmp.path().toStdString(), "F32", false);
    const std::map<QString, StTensor> stored = ReadHfDirectory(tmp.path());
    const std::vector<double>& hf_q =
        stored.at(QStringLiteral("model.layers.2.self_attn.q_proj.weight")).values;
    const std::vector<double>& wq = m.layers[2].wq;
    const int dim = m.dims.dim, hs = m.dims.head_size();
    std::vector<double> x(dim);
    for (int i = 0; i < dim; ++i) x[i] = std::sin(0.7 * i + 0.3);
    for (int pos : {0, 1, 17, 300}) {
      std::vector<double> qi(dim), qh(dim);
      for (int r = 0; r < dim; ++r) {
        for (int c = 0; c < dim; ++c) {
          qi[r] += wq[r * dim + c] * x[c];
          qh[r] += hf_q[r * dim + c] * x[c];
        }
      }
      std::vector<double> ri(dim), rh(dim);
      for (int h = 0; h < dim / hs; ++h) {
        for (int i = 0; i < hs / 2; ++i) {
          const double angle = pos * std::pow(10000.0, -2.0 * i / hs);
          const double c = std::cos(angle), s = std::sin(angle);
          const int a = h * hs + 2 * i, b = a + 1;  // Interleaved pair.
          ri[a] = qi[a] * c - qi[b] * s;
          ri[b] = qi[a] * s + qi[b] * c;
          const int lo = h * hs + i, hi = lo + hs / 2;  // Rotate-half pair.
          rh[lo] = qh[lo] * c - qh[hi] * s;
          rh[hi] = qh[hi] * c + qh[lo] * s;
        }
      }
      for (int r = 0; r < dim; ++r) {
        const int hf_row = (r / hs) * hs + (r % 2) * (hs / 2) + (r % hs) / 2;
        QCOMPARE(brisk_test::hf_rope_row(r, hs), hf_row);
        QVERIFY(std::fabs(rh[hf_row] - ri[r]) < 1e-12);
      }
    }
  }

  void forwardRewindsTheCache() {
    REQUIRE_MODEL(path, "stories260K/stories260K.bin");
    const brisk_test::RefModel m = brisk_test::load_llama2c(path.toStdString());
    brisk_test::RefState state;
    brisk_test::forward(m, state, 1, 0);
    brisk_test::forward(m, state, 403, 1);
    const std::vector<double> first = brisk_test::forward(m, state, 407, 2);
    brisk_test::forward(m, state, 5, 3);
    QCOMPARE(state.length, 4);
    QVERIFY(brisk_test::forward(m, state, 407, 2) == first);
    QCOMPARE(state.length, 3);
  }
};

QTEST_APPLESS_MAIN(TestReferenceForward)
#include "test_reference_forward.moc"
