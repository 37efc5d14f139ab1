#include "backend/backend.h"

#include <string>

#include "brisk/error.h"
#include "kernels/reference/attention.h"

namespace brisk {

Tensor Backend::alloc_kv_cache(DType dtype, int64_t slots, int n_kv_heads, int head_dim) {
  if (!kv_dtype_supported(dtype))
    throw Error(std::string("KV cache dtype ") + dtype_name(dtype) + ": not supported (f32, f16, bf16, fp8-e4m3, int8)");
  Tensor t = alloc(dtype, slots, (int64_t)n_kv_heads * head_dim);
  if (is_scaled(dtype)) t.scales = alloc(DType::F32, slots, n_kv_heads).handle;
  return t;
}

}  // namespace brisk
