#include "format.h"

#include <QFileInfo>
#include <QLocale>
#include <QStringList>
#include <algorithm>
#include <map>

#include "brisk/sysinfo.h"

namespace fmt {

QString count(int64_t n) {
  const double v = static_cast<double>(n);
  if (n < 1000) return QString::number(n);
  if (n < 1000000) return QString::number(v / 1e3, 'f', 1) + " K";
  if (n < 1000000000) return QString::number(v / 1e6, 'f', 1) + " M";
  return QString::number(v / 1e9, 'f', 2) + " B";
}

QString quantity(int64_t n, const QString& singular, const QString& plural) {
  return QStringLiteral("%1 %2").arg(n).arg(n == 1 ? singular : plural);
}

QString bytes(uint64_t n) {
  return QLocale::c().formattedDataSize(static_cast<qint64>(n), 1, QLocale::DataSizeIecFormat);
}

QString milliseconds(double ms) {
  if (ms < 0) return QStringLiteral("—");
  if (ms < 10) return QString::number(ms, 'f', 2) + " ms";
  if (ms < 1000) return QString::number(ms, 'f', 1) + " ms";
  return QString::number(ms / 1000.0, 'f', 2) + " s";
}

QString finishReason(brisk::FinishReason r) { return QString::fromUtf8(brisk::finish_reason_name(r)); }

QString precisionName(const std::string& dtype) {
  const QString upper = QString::fromStdString(dtype).toUpper();
  if (upper == QLatin1String("I8")) return QStringLiteral("INT8");
  // "F8_E4M3" (a tensor's type) and "FP8-E4M3" (a config value) alike.
  for (const char* f : {"E4M3", "E5M2"})
    if (upper == QLatin1String("F8_") + QLatin1String(f) || upper == QLatin1String("FP8-") + QLatin1String(f))
      return QStringLiteral("FP8 ") + QLatin1String(f);
  return upper;
}

namespace {
QString precisionOf(const std::vector<brisk::TensorInfo>& tensors) {
  std::map<std::string, uint64_t> by_dtype;
  uint64_t total = 0;
  for (const auto& t : tensors) {
    by_dtype[t.dtype] += t.bytes;
    total += t.bytes;
  }
  if (total == 0) return QStringLiteral("—");
  std::vector<std::pair<std::string, uint64_t>> sorted(by_dtype.begin(), by_dtype.end());
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  QString text = precisionName(sorted[0].first);
  if (sorted.size() > 1 && sorted[1].second * 10 >= total) text += " + " + precisionName(sorted[1].first);
  return text;
}
}  // namespace

QString weightPrecision(const brisk::ModelInfo& info) { return precisionOf(info.tensors); }

QString storedPrecision(const brisk::ModelInfo& info) {
  return precisionOf(info.stored_tensors.empty() ? info.tensors : info.stored_tensors);
}

QString precisionSummary(const brisk::ModelInfo& info, const brisk::EngineConfig& config) {
  // The arithmetic of one-byte weights goes beside their type, wherever it
  // comes in the list: a small model's F32 embeddings can outweigh its INT8
  // matrices ("F32 + I8 (W8A8)").
  QStringList parts = weightPrecision(info).split(QStringLiteral(" + "));
  for (QString& w : parts) {
    if (w == QLatin1String("INT8") && config.int8_activations)
      w += QStringLiteral(" (W8A8)");
    else if (((w == QLatin1String("INT8") || w == QLatin1String("Q8_0")) && config.int8_fma) ||
             (w.startsWith(QLatin1String("FP8")) && config.fp8_fma))
      w += QStringLiteral(" (F32 FMA)");
  }
  return QStringLiteral("weights %1 · KV %2")
      .arg(parts.join(QStringLiteral(" + ")), precisionName(config.kv_dtype));
}

QString modelName(const brisk::ModelInfo& info) {
  // Converters often leave general.name as the architecture ("llama"), which
  // names no model: the file says more then.
  if (!info.name.empty() && info.name != info.architecture) return QString::fromStdString(info.name);
  QFileInfo fi(QString::fromStdString(info.path));
  QString name = fi.isDir() ? fi.fileName() : fi.completeBaseName();
  if (name.isEmpty()) name = QString::fromStdString(info.path);
  return name.isEmpty() ? QStringLiteral("unnamed model") : name;
}

QString backendName(const std::string& backend) {
  if (backend == "auto")  // as the settings' combo says it: "Auto (CPU)"
    return QStringLiteral("Auto (%1)").arg(QString::fromStdString(brisk::resolve_backend("auto")).toUpper());
  return QString::fromStdString(backend).toUpper();
}

QString backendUsed(const std::string& setting) {
  const QString used = backendName(brisk::resolve_backend(setting));
  return setting == "auto" ? QStringLiteral("%1 (auto)").arg(used) : used;
}

QString tokensPerSecond(double tps) {
  return (tps >= 0 ? QString::number(tps, 'f', 1) : QStringLiteral("—")) + QStringLiteral(" tok/s");
}

QString generationSummary(const GenerationStats& s, int maxTokens) {
  // Nothing was generated: no counts or timings to show, only why.
  if (s.finishReason == brisk::FinishReason::Error && s.outputTokens == 0 && !s.error.isEmpty())
    return QStringLiteral("Error: ") + s.error;
  QString line = quantity(s.outputTokens, QStringLiteral("token"), QStringLiteral("tokens"));
  line += QStringLiteral(" · TTFT ") + milliseconds(s.ttftMs);
  line += QStringLiteral(" · ") + tokensPerSecond(s.tokensPerSecond);
  line += QStringLiteral(" · finished: ") + finishReason(s.finishReason);
  // The engine ends a request for length at its max tokens or when prompt
  // and output reach the usable context (the model's, max_model_len or what
  // the KV cache holds): short of max tokens, it was the context.
  if (s.finishReason == brisk::FinishReason::Length && maxTokens > 0 && s.outputTokens < maxTokens)
    line += QStringLiteral(" — the context is full (%1)")
                .arg(quantity(s.promptTokens + s.outputTokens, QStringLiteral("token"),
                              QStringLiteral("tokens")));
  if (!s.error.isEmpty()) line += QStringLiteral(" — ") + s.error;
  return line;
}

QString w8a8CpuPath(const std::string& isa) {
  if (isa == "avx512") return QStringLiteral("AVX-512 VNNI integer dot products");
  if (isa == "avx2") return QStringLiteral("AVX2 integer dot products (this CPU has no AVX-512 VNNI)");
  return QStringLiteral("the scalar reference code (no AVX2 kernels here)");
}

QString int8CpuPath(const std::string& isa) {
  if (isa == "avx512")
    return QStringLiteral("activations rounded to 24-bit integers, AVX-512 VNNI dot products");
  if (isa == "avx2")
    return QStringLiteral("weights widened to F32 for AVX2 FMAs (this CPU has no AVX-512 VNNI)");
  return QStringLiteral("weights widened to F32 in the scalar reference code");
}

QString samplingSummary(const brisk::SamplingParams& p) {
  QStringList parts;
  if (p.temperature <= 0) {
    parts << QStringLiteral("greedy");
  } else {
    parts << QStringLiteral("T %1").arg(p.temperature, 0, 'f', 2);
    if (p.top_k > 0) parts << QStringLiteral("top-k %1").arg(p.top_k);
    if (p.top_p < 1) parts << QStringLiteral("top-p %1").arg(p.top_p, 0, 'f', 2);
    if (p.min_p > 0) parts << QStringLiteral("min-p %1").arg(p.min_p, 0, 'f', 2);
  }
  if (p.repetition_penalty != 1.0f)
    parts << QStringLiteral("repetition %1").arg(p.repetition_penalty, 0, 'f', 2);
  if (p.no_repeat_ngram_size > 0) parts << QStringLiteral("no-repeat %1-gram").arg(p.no_repeat_ngram_size);
  parts << quantity(p.max_tokens, QStringLiteral("token"), QStringLiteral("tokens"));
  if (p.temperature > 0)
    parts << (p.seed ? QStringLiteral("seed %1").arg(*p.seed) : QStringLiteral("seed auto"));
  if (!p.stop.empty() || !p.stop_token_ids.empty())
    parts << QStringLiteral("%1 stop").arg(p.stop.size() + p.stop_token_ids.size());
  if (p.ignore_eos) parts << QStringLiteral("ignore EOS");
  // A wrapped line breaks between settings, never inside one ("top-p" / "0.95").
  for (QString& part : parts)
    part.replace(QLatin1Char(' '), QChar(0x00a0)).replace(QLatin1Char('-'), QChar(0x2011));
  return parts.join(QStringLiteral(" · "));
}

}  // namespace fmt
