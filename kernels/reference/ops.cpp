#include "kernels/reference/ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/reference/attention.h"

namespace brisk::ref {
namespace {

// Element k of row `row` of a [rows, K] matrix stored as `wt`, as F32. Scaled
// dtypes give the unscaled code value q (callers apply the row's scale).
float weight_at(const void* w, DType wt, int64_t row, int64_t K, int64_t k) {
  switch (wt) {
    case DType::F32:
      return static_cast<const float*>(w)[row * K + k];
    case DType::F16:
      return fp16_to_fp32(static_cast<const uint16_t*>(w)[row * K + k]);
    case DType::BF16:
      return bf16_to_fp32(static_cast<const uint16_t*>(w)[row * K + k]);
    case DType::Q8_0: {
      const auto* blocks = static_cast<const BlockQ8_0*>(w) + row * (K / kQ8_0BlockSize);
      const BlockQ8_0& b = blocks[k / kQ8_0BlockSize];
      return fp16_to_fp32(b.d) * (float)b.qs[k % kQ8_0BlockSize];
    }
    case DType::I8:
      return (float)static_cast<const int8_t*>(w)[row * K + k];
    case DType::F8_E4M3:
      return fp8_e4m3_to_fp32(static_cast<const uint8_t*>(w)[row * K + k]);
    case DType::F8_E5M2:
      return fp8_e5m2_to_fp32(static_cast<const uint8_t*>(w)[row * K + k]);
    case DType::I32:
      break;
  }
  return NAN;  // not a weight type; NaN makes misuse visible in every output
}

bool usable(DType wt, const float* row_scales) { return wt != DType::I32 && (!is_scaled(wt) || row_scales); }

}  // namespace

void matmul_cols(float* y, const float* x, const void* w, DType wt, int M, int N, int K,
                 const float* row_scales, int n0, int n1) {
  const bool ok = usable(wt, row_scales);
  for (int m = 0; m < M; ++m) {
    for (int n = n0; n < n1; ++n) {
      double acc = 0.0;
      for (int k = 0; k < K; ++k) acc += (double)x[(int64_t)m * K + k] * weight_at(w, wt, n, K, k);
      if (is_scaled(wt) && ok) acc *= row_scales[n];
      y[(int64_t)m * N + n] = ok ? (float)acc : NAN;
    }
  }
}

void matmul(float* y, const float* x, const void* w, DType wt, int M, int N, int K, const float* row_scales) {
  matmul_cols(y, x, w, wt, M, N, K, row_scales, 0, N);
}

void embed(float* y, const void* table, DType wt, const int32_t* ids, int T, int D, const float* row_scales) {
  const bool ok = usable(wt, row_scales);
  for (int t = 0; t < T; ++t)
    for (int d = 0; d < D; ++d) {
      const float v = weight_at(table, wt, ids[t], D, d);
      y[(int64_t)t * D + d] = !ok ? NAN : is_scaled(wt) ? v * row_scales[ids[t]] : v;
    }
}

void quantize_activation_row(int8_t* q, float* xs, const float* x, int K) {
  float amax = 0.0f;
  for (int k = 0; k < K; ++k) amax = std::max(amax, std::fabs(x[k]));
  if (amax == 0.0f) {
    std::fill(q, q + K, (int8_t)0);
    *xs = 0.0f;
    return;
  }
  const float inv = 127.0f / amax;
  for (int k = 0; k < K; ++k) q[k] = (int8_t)std::clamp(std::nearbyint(x[k] * inv), -127.0f, 127.0f);
  *xs = amax / 127.0f;
}

void matmul_w8a8_cols(float* y, const float* x, const int8_t* w, const float* row_scales, int M, int N, int K,
                      int n0, int n1) {
  std::vector<int8_t> q(K);
  for (int m = 0; m < M; ++m) {
    float xs;
    quantize_activation_row(q.data(), &xs, x + (int64_t)m * K, K);
    for (int n = n0; n < n1; ++n) {
      int32_t dot = 0;
      for (int k = 0; k < K; ++k) dot += (int32_t)q[k] * w[(int64_t)n * K + k];
      y[(int64_t)m * N + n] = xs == 0.0f ? 0.0f : ((float)dot * xs) * row_scales[n];
    }
  }
}

void matmul_w8a8(float* y, const float* x, const int8_t* w, const float* row_scales, int M, int N, int K) {
  matmul_w8a8_cols(y, x, w, row_scales, M, N, K, 0, N);
}

void quantize_activation_row24(int32_t* q, float* xs, const float* x, int K) {
  float amax = 0.0f;
  bool finite = true;
  for (int k = 0; k < K; ++k) {
    finite = finite && std::isfinite(x[k]);
    amax = std::max(amax, std::fabs(x[k]));
  }
  if (!finite || amax == 0.0f) {
    std::fill(q, q + K, 0);
    *xs = finite ? 0.0f : NAN;
    return;
  }
  const float inv = (float)kA24Max / amax;
  for (int k = 0; k < K; ++k)
    q[k] = (int32_t)std::clamp(std::nearbyint(x[k] * inv), -(float)kA24Max, (float)kA24Max);
  *xs = amax / (float)kA24Max;
}

void matmul_w8a24_cols(float* y, const float* x, const int8_t* w, const float* row_scales, int M, int N,
                       int K, int n0, int n1) {
  std::vector<int32_t> q(K);
  for (int m = 0; m < M; ++m) {
    float xs;
    quantize_activation_row24(q.data(), &xs, x + (int64_t)m * K, K);
    for (int n = n0; n < n1; ++n) {
      int64_t dot = 0;
      for (int k = 0; k < K; ++k) dot += (int64_t)q[k] * w[(int64_t)n * K + k];
      y[(int64_t)m * N + n] = xs == 0.0f ? 0.0f : ((float)dot * xs) * row_scales[n];
    }
  }
}

void matmul_w8a24(float* y, const float* x, const int8_t* w, const float* row_scales, int M, int N, int K) {
  matmul_w8a24_cols(y, x, w, row_scales, M, N, K, 0, N);
}

void quantize_activation_row16(int16_t* q, float* xs, const float* x, int K) {
  float amax = 0.0f;
  bool finite = true;
  for (int k = 0; k < K; ++k) {
    finite = finite && std::isfinite(x[k]);
    amax = std::max(amax, std::fabs(x[k]));
  }
  const float inv = (float)kA16Max / amax;
  if (!finite || !std::isfinite(inv)) {  // a zero row, or one so small (< ~1e-34) that inv overflows
    std::fill(q, q + K, (int16_t)0);
    *xs = finite ? 0.0f : NAN;
    return;
  }
  for (int k = 0; k < K; ++k)
    q[k] = (int16_t)std::clamp(std::nearbyint(x[k] * inv), -(float)kA16Max, (float)kA16Max);
  *xs = amax / (float)kA16Max;
}

void matmul_q8_0_w16(float* y, const float* x, const BlockQ8_0* w, int M, int N, int K) {
  const int nb = K / kQ8_0BlockSize;
  std::vector<int16_t> q(K);
  for (int m = 0; m < M; ++m) {
    float xs;
    quantize_activation_row16(q.data(), &xs, x + (int64_t)m * K, K);
    for (int n = 0; n < N; ++n) {
      float acc[16] = {};
      for (int b = 0; b < nb; ++b) {
        const BlockQ8_0& blk = w[(int64_t)n * nb + b];
        const float d = fp16_to_fp32(blk.d);
        const int16_t* qb = q.data() + 32 * b;
        for (int l = 0; l < 16; ++l) {
          const int32_t p = (int32_t)blk.qs[2 * l] * qb[2 * l] + (int32_t)blk.qs[2 * l + 1] * qb[2 * l + 1];
          acc[l] = std::fma((float)p, d, acc[l]);
        }
      }
      for (int w8 = 8; w8 >= 1; w8 /= 2)  // the fixed tree: halves added lane-wise
        for (int l = 0; l < w8; ++l) acc[l] = acc[l] + acc[l + w8];
      y[(int64_t)m * N + n] = acc[0] * xs;
    }
  }
}

void rmsnorm(float* y, const float* x, const float* w, int M, int D, float eps) {
  for (int m = 0; m < M; ++m) {
    const float* xr = x + (int64_t)m * D;
    double ss = 0.0;
    for (int d = 0; d < D; ++d) ss += (double)xr[d] * xr[d];
    const double inv = 1.0 / std::sqrt(ss / D + eps);
    for (int d = 0; d < D; ++d) y[(int64_t)m * D + d] = (float)(xr[d] * inv * w[d]);
  }
}

void rope(float* x, const int32_t* pos, int T, int n_heads, int head_dim, int rot_dim, float theta) {
  for (int t = 0; t < T; ++t) {
    for (int h = 0; h < n_heads; ++h) {
      float* v = x + ((int64_t)t * n_heads + h) * head_dim;
      for (int i = 0; i < rot_dim / 2; ++i) {
        const double freq = std::pow((double)theta, -2.0 * i / rot_dim);
        const double angle = pos[t] * freq;
        const double c = std::cos(angle), s = std::sin(angle);
        const double a = v[2 * i], b = v[2 * i + 1];
        v[2 * i] = (float)(a * c - b * s);
        v[2 * i + 1] = (float)(a * s + b * c);
      }
    }
  }
}

void silu_mul(float* y, const float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double g = gate[i];
    y[i] = (float)(g / (1.0 + std::exp(-g)) * up[i]);
  }
}

void add(float* y, const float* a, const float* b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}

void argmax_rows(int32_t* out, const float* x, int M, int stride, int N) {
  for (int m = 0; m < M; ++m) {
    const float* r = x + (int64_t)m * stride;
    int32_t best = 0;
    for (int i = 1; i < N; ++i)
      if (r[i] > r[best]) best = i;
    out[m] = best;
  }
}

// The F32 cache: the KvCacheView versions (kernels/reference/attention.h) with no scales.
void kv_write(float* k_cache, float* v_cache, const float* k, const float* v, const int32_t* slots, int T,
              int kv_width) {
  const KvCacheView kc{k_cache, nullptr, DType::F32, 1, kv_width},
      vc{v_cache, nullptr, DType::F32, 1, kv_width};
  kv_write(kc, vc, k, v, slots, T);
}

void paged_attention(float* out, const float* q, const float* k_cache, const float* v_cache,
                     const PagedAttentionArgs& a) {
  auto view = [&](const float* c) {
    return KvCacheView{const_cast<float*>(c), nullptr, DType::F32, a.n_kv_heads, a.head_dim};
  };
  paged_attention(out, q, view(k_cache), view(v_cache), a);
}

}  // namespace brisk::ref
