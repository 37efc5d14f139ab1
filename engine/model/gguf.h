// GGUF v2/v3: reading (metadata + tensor index over a memory map) and writing.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kernels/dtype.h"
#include "model/mapped_file.h"

namespace brisk {

enum class GgufType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12
};

struct GgufValue {
  GgufType type = GgufType::U32;
  GgufType array_type = GgufType::U32;
  double number = 0;              // every scalar numeric/bool value
  std::string string;
  std::vector<double> numbers;    // numeric arrays
  std::vector<std::string> strings;  // string arrays
};

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> dims;  // ne0 (contiguous) first
  uint32_t ggml_type = 0;
  uint64_t offset = 0;        // relative to the data section
  const uint8_t* data = nullptr;
  uint64_t bytes = 0;
};

class GgufFile {
 public:
  // Parses and validates the whole index; throws brisk::Error naming the
  // file and the key or tensor at fault.
  static GgufFile open(const std::string& path);

  uint32_t version = 0;
  std::map<std::string, GgufValue> metadata;
  std::vector<GgufTensorInfo> tensors;
  std::shared_ptr<MappedFile> file;

  const GgufValue* find(const std::string& key) const;
  // Required scalar / string lookups; the error names the key.
  double number(const std::string& key) const;
  double number_or(const std::string& key, double fallback) const;
  std::string string_or(const std::string& key, const std::string& fallback) const;
  const GgufTensorInfo* tensor(const std::string& name) const;
};

// GGML type ids we read and write. I8 is GGML's; GGML has no FP8 type, so
// the two FP8 ids are Brisk's own (outside GGML's range). A tensor of a
// scaled type (I8, F8_*) has a companion F32 tensor "<name>.scale" with one
// scale per row: value = q * scale.
constexpr uint32_t kGgmlF32 = 0, kGgmlF16 = 1, kGgmlQ8_0 = 8, kGgmlI8 = 24, kGgmlBF16 = 30;
constexpr uint32_t kBriskF8E4M3 = 1000, kBriskF8E5M2 = 1001;
inline std::string scale_tensor_name(const std::string& name) { return name + ".scale"; }
bool ggml_type_to_dtype(uint32_t ggml_type, DType* out);
uint32_t dtype_to_ggml_type(DType t);

// Builds a GGUF v3 file: metadata in insertion order, tensors aligned to 32.
class GgufWriter {
 public:
  void add_string(const std::string& key, const std::string& v);
  void add_u32(const std::string& key, uint32_t v);
  void add_i32(const std::string& key, int32_t v);
  void add_f32(const std::string& key, float v);
  void add_bool(const std::string& key, bool v);
  void add_strings(const std::string& key, const std::vector<std::string>& v);
  void add_f32s(const std::string& key, const std::vector<float>& v);
  void add_i32s(const std::string& key, const std::vector<int32_t>& v);
  // rows x cols row-major; data must stay valid until write().
  // Scaled dtypes also need row_scales (rows floats), written as "<name>.scale".
  void add_tensor(const std::string& name, DType dtype, int64_t rows, int64_t cols, const void* data,
                  const float* row_scales = nullptr);
  void write(const std::string& path) const;  // throws brisk::Error

 private:
  struct Tensor {
    std::string name;
    DType dtype;
    int64_t rows, cols;
    const void* data;
  };
  std::string kv_;
  uint64_t n_kv_ = 0;
  std::vector<Tensor> tensors_;
};

}  // namespace brisk
