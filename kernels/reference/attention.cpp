#include "kernels/reference/attention.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

namespace brisk {

bool kv_dtype_supported(DType t) {
  return t == DType::F32 || t == DType::F16 || t == DType::BF16 || t == DType::I8 || t == DType::F8_E4M3;
}

size_t kv_slot_bytes(DType t, int n_kv_heads, int head_dim) {
  if (!kv_dtype_supported(t)) throw std::invalid_argument(std::string("KV cache dtype ") + dtype_name(t));
  return row_bytes(t, (int64_t)n_kv_heads * head_dim) + (is_scaled(t) ? sizeof(float) * n_kv_heads : 0);
}

namespace ref {

void kv_store_head(const KvCacheView& c, int64_t slot, int head, const float* src) {
  const int D = c.head_dim;
  const int64_t at = slot * c.n_kv_heads * D + (int64_t)head * D;
  switch (c.dtype) {
    case DType::F32:
      for (int d = 0; d < D; ++d) static_cast<float*>(c.data)[at + d] = src[d];
      return;
    case DType::F16:
      for (int d = 0; d < D; ++d) static_cast<uint16_t*>(c.data)[at + d] = fp32_to_fp16(src[d]);
      return;
    case DType::BF16:
      for (int d = 0; d < D; ++d) static_cast<uint16_t*>(c.data)[at + d] = fp32_to_bf16(src[d]);
      return;
    case DType::I8:
    case DType::F8_E4M3: {
      float absmax = 0.0f;
      for (int d = 0; d < D; ++d) absmax = std::max(absmax, std::fabs(src[d]));
      const bool i8 = c.dtype == DType::I8;
      const float scale = absmax / (i8 ? kI8Max : kF8E4M3Max);
      c.scales[slot * c.n_kv_heads + head] = scale;
      for (int d = 0; d < D; ++d) {
        const float y = scale > 0.0f ? src[d] / scale : 0.0f;
        if (i8)
          static_cast<int8_t*>(c.data)[at + d] = (int8_t)std::clamp(std::nearbyint(y), -kI8Max, kI8Max);
        else
          static_cast<uint8_t*>(c.data)[at + d] = fp32_to_fp8_e4m3(y);
      }
      return;
    }
    default:
      throw std::invalid_argument(std::string("KV cache dtype ") + dtype_name(c.dtype));
  }
}

float kv_load(const KvCacheView& c, int64_t slot, int head, int d) {
  const int64_t at = slot * c.n_kv_heads * c.head_dim + (int64_t)head * c.head_dim + d;
  switch (c.dtype) {
    case DType::F32:
      return static_cast<const float*>(c.data)[at];
    case DType::F16:
      return fp16_to_fp32(static_cast<const uint16_t*>(c.data)[at]);
    case DType::BF16:
      return bf16_to_fp32(static_cast<const uint16_t*>(c.data)[at]);
    case DType::I8:
      return (float)static_cast<const int8_t*>(c.data)[at] * c.scales[slot * c.n_kv_heads + head];
    case DType::F8_E4M3:
      return fp8_e4m3_to_fp32(static_cast<const uint8_t*>(c.data)[at]) * c.scales[slot * c.n_kv_heads + head];
    default:
      return NAN;
  }
}

void kv_write(const KvCacheView& k, const KvCacheView& v, const float* k_rows, const float* v_rows,
              const int32_t* slots, int T) {
  const int64_t width = (int64_t)k.n_kv_heads * k.head_dim;
  for (int t = 0; t < T; ++t)
    for (int h = 0; h < k.n_kv_heads; ++h) {
      kv_store_head(k, slots[t], h, k_rows + t * width + (int64_t)h * k.head_dim);
      kv_store_head(v, slots[t], h, v_rows + t * width + (int64_t)h * v.head_dim);
    }
}

void paged_attention(float* out, const float* q, const KvCacheView& k, const KvCacheView& v,
                     const PagedAttentionArgs& a) {
  const int D = a.head_dim;
  const int64_t q_width = (int64_t)a.n_heads * D;
  const int group = a.n_heads / a.n_kv_heads;
  std::vector<double> scores, acc(D);
  for (int s = 0; s < a.num_seqs; ++s) {
    const int q_len = a.query_start[s + 1] - a.query_start[s];
    const int32_t* table = a.block_tables + (int64_t)s * a.max_blocks_per_seq;
    for (int j = 0; j < q_len; ++j) {
      const int64_t row = a.query_start[s] + j;
      const int p = a.seq_lens[s] - q_len + j;  // position of this query token
      for (int h = 0; h < a.n_heads; ++h) {
        const float* qh = q + row * q_width + (int64_t)h * D;
        const int kvh = h / group;
        scores.assign(p + 1, 0.0);
        double max_score = -INFINITY;
        for (int t = 0; t <= p; ++t) {
          const int64_t slot = (int64_t)table[t / a.block_size] * a.block_size + t % a.block_size;
          double dot = 0.0;
          for (int d = 0; d < D; ++d) dot += (double)qh[d] * kv_load(k, slot, kvh, d);
          scores[t] = a.scale * dot;
          max_score = std::max(max_score, scores[t]);
        }
        double denom = 0.0;
        for (int t = 0; t <= p; ++t) {
          scores[t] = std::exp(scores[t] - max_score);
          denom += scores[t];
        }
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int t = 0; t <= p; ++t) {
          const int64_t slot = (int64_t)table[t / a.block_size] * a.block_size + t % a.block_size;
          for (int d = 0; d < D; ++d) acc[d] += scores[t] * kv_load(v, slot, kvh, d);
        }
        float* oh = out + row * q_width + (int64_t)h * D;
        for (int d = 0; d < D; ++d) oh[d] = (float)(acc[d] / denom);
      }
    }
  }
}

void add_rmsnorm(float* x, const float* residual, const float* w, float* y, int M, int D, float eps) {
  for (int64_t i = 0; i < (int64_t)M * D; ++i) x[i] += residual[i];
  rmsnorm(y, x, w, M, D, eps);
}

void rope_kv_write(float* q, const float* k, const float* v, const int32_t* pos, const int32_t* slots, int T,
                   int n_heads, int rot_dim, float theta, const KvCacheView& k_cache,
                   const KvCacheView& v_cache) {
  const int D = k_cache.head_dim;
  std::vector<float> kr(k, k + (int64_t)T * k_cache.n_kv_heads * D);
  rope(q, pos, T, n_heads, D, rot_dim, theta);
  rope(kr.data(), pos, T, k_cache.n_kv_heads, D, rot_dim, theta);
  kv_write(k_cache, v_cache, kr.data(), v, slots, T);
}

}  // namespace ref
}  // namespace brisk
