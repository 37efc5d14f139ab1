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

QString count(int64_t n);  // 15.2 M, 260 K, 512
// n and the noun that goes with it: quantity(1, "block", "blocks") -> "1 block", (2, ...) -> "2 blocks".
QString quantity(int64_t n, const QString& singular, const QString& plural);
QString bytes(uint64_t n);        // 1.7 MiB
QString milliseconds(double ms);  // 12.3 ms, 1.25 s
QString finishReason(brisk::FinishReason r);
// A precision as the settings name it, from a tensor type or a config value:
// "I8" and "int8" -> "INT8", "F8_E4M3" and "fp8-e4m3" -> "FP8 E4M3", "f16" -> "F16".
QString precisionName(const std::string& dtype);
// The weights' storage precision: the type holding most of the tensor bytes
// ("F32", "F16", "Q8_0", "INT8"), "F16 + F32" style when a second one holds >= 10 %.
QString weightPrecision(const brisk::ModelInfo& info);
// The same for the file's own tensors: differs from weightPrecision where the
// load converted the weights (EngineConfig::weight_dtype).
QString storedPrecision(const brisk::ModelInfo& info);
// The status bar's precision line: "weights FP8 E4M3 (F32 FMA) · KV F32", naming the A/B
// arithmetic the config asks for with one-byte weights (W8A8, or weights widened to F32 for FMAs).
QString precisionSummary(const brisk::ModelInfo& info, const brisk::EngineConfig& config);
// ModelInfo::name, or the file (folder) name when the model carries none.
QString modelName(const brisk::ModelInfo& info);
QString backendName(const std::string& backend);  // "cpu" -> "CPU", "auto" -> "Auto (CPU)" where no GPU
// The backend a setting runs on: "cuda" -> "CUDA", "auto" -> "CPU (auto)" where no device exists.
QString backendUsed(const std::string& setting);
QString tokensPerSecond(double tps);  // "1234.5 tok/s", "— tok/s" when < 0
// One finished response: "8 tokens · TTFT 1.20 ms · 950.3 tok/s · finished: length"; with
// maxTokens > 0, a request that stopped for length short of maxTokens (prompt and
// output filled the context) says so: "… · finished: length — the context is full (512 tokens)".
// A request that failed before its first token is its error alone: "Error: <the engine's message>".
QString generationSummary(const GenerationStats& stats, int maxTokens = 0);
// The code that runs INT8 weights with INT8 activations (W8A8) on a CPU whose
// kernels use `kernelIsa` (SystemInfo::kernel_isa: "avx512", "avx2", "scalar").
QString w8a8CpuPath(const std::string& kernelIsa);
// The same for INT8 weights with F32 activations (the default INT8 arithmetic).
QString int8CpuPath(const std::string& kernelIsa);
// Sampling settings in one line: "greedy · 128 tokens", "T 0.80 · top-k 40 · top-p 0.95 · 128 tokens · seed
// 1"; within a setting, no-break spaces and hyphens (U+00A0, U+2011).
QString samplingSummary(const brisk::SamplingParams& params);

}  // namespace fmt
