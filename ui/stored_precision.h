// The precision each model file stores its weights in, as the loads of this
// process found it. A load that converts the weights (EngineConfig::
// weight_dtype) leaves the engine's ModelInfo with the converted types only,
// so EngineController records the file's own here (inspecting the file when
// the load converted it), and the settings panel's "As stored (…)" entry
// reads it back. Keyed by ModelInfo::path, with the file's size and
// modification time, so a file rewritten in place is not taken for the old one.
#pragma once
#include <QString>
#include <string>

class StoredPrecision {
 public:
  // fmt::weightPrecision of the model as the file holds it ("F32", "INT8 + F32").
  static void record(const std::string& path, const QString& precision);
  // Empty when no load of this process saw the file's own types.
  static QString lookup(const std::string& path);
};
