// Text for numbers and model facts, shared by the window's widgets.
#pragma once
#include <QString>
#include <cstdint>

#include "brisk/model_info.h"
#include "brisk/request_output.h"

namespace fmt {

QString count(int64_t n);             // 15.2 M, 260 K, 512
QString bytes(uint64_t n);            // 1.7 MiB
QString milliseconds(double ms);      // 12.3 ms, 1.25 s
QString finishReason(brisk::FinishReason r);
// The weights' storage precision: the dtype holding most of the tensor bytes
// ("F32", "F16", "Q8_0"), "F16 + F32" style when a second one holds >= 10 %.
QString weightPrecision(const brisk::ModelInfo& info);
// ModelInfo::name, or the file (folder) name when the model carries none.
QString modelName(const brisk::ModelInfo& info);
QString backendName(const std::string& backend);  // "cpu" -> "CPU"

}  // namespace fmt
