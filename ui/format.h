// Text for numbers and model facts, shared by the window's widgets.
#pragma once
#include <QString>
#include <cstdint>

#include "brisk/engine_config.h"
#include "brisk/model_info.h"
#include "brisk/request_output.h"
#include "brisk/sampling_params.h"
#include "generation_stats.h"

namespace fmt {

QString count(int64_t n);         // 15.2 M, 260 K, 512
QString bytes(uint64_t n);        // 1.7 MiB
QString milliseconds(double ms);  // 12.3 ms, 1.25 s
QString finishReason(brisk::FinishReason r);
// A precision as the settings name it, from a tensor type or a config value:
// "I8" and "int8" -> "INT8", "F8_E4M3" and "fp8-e4m3" -> "FP8 E4M3", "f16" -> "F16".
QString precisionName(const std::string& dtype);
// The weights' storage precision: the type holding most of the tensor bytes
// ("F32", "F16", "Q8_0", "INT8"), "F16 + F32" style when a second one holds >= 10 %.
QString weightPrecision(const brisk::ModelInfo& info);
// The status bar's precision line: "weights FP8 E4M3 (F32 FMA) · KV F32", naming the A/B
// arithmetic the config asks for with one-byte weights (W8A8, or weights widened to F32 for FMAs).
QString precisionSummary(const brisk::ModelInfo& info, const brisk::EngineConfig& config);
// ModelInfo::name, or the file (folder) name when the model carries none.
QString modelName(const brisk::ModelInfo& info);
QString backendName(const std::string& backend);  // "cpu" -> "CPU"
// The backend a setting runs on: "cuda" -> "CUDA", "auto" -> "CPU (auto)" where no device exists.
QString backendUsed(const std::string& setting);
QString tokensPerSecond(double tps);  // "1234.5 tok/s", "— tok/s" when < 0
// One finished response: "8 tokens · TTFT 1.20 ms · 950.3 tok/s · finished: length".
QString generationSummary(const GenerationStats& stats);
// Sampling settings in one line: "greedy · 128 tokens", "T 0.80 · top-k 40 · top-p 0.95 · 128 tokens · seed
// 1"; within a setting, no-break spaces and hyphens (U+00A0, U+2011).
QString samplingSummary(const brisk::SamplingParams& params);

}  // namespace fmt
