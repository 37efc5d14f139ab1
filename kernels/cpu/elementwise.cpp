// Row-wise and element-wise ops: norms, RoPE, activations, residual adds.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/cpu/ops.h"
#include "kernels/cpu/simd.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
namespace brisk::cpu {
using namespace simd;

void rmsnorm(ThreadPool& pool, float* y, const float* x, const float* w, int M, int D, float eps) {
  pool.parallel_for(
      M,
      [&](int64_t m0, int64_t m1) {
        for (int64_t m = m0; m < m1; ++m) {
          const float* xr = x + m * D;
          float* yr = y + m * D;
          const float inv = 1.0f / std::sqrt(dot(xr, xr, D) / (float)D + eps);
          const __m256 iv = _mm256_set1_ps(inv);
          int d = 0;
          for (; d + 8 <= D; d += 8)
            _mm256_storeu_ps(
                yr + d, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(xr + d), iv), _mm256_loadu_ps(w + d)));
          for (; d < D; ++d) yr[d] = xr[d] * inv * w[d];
        }
      },
      grain_for(2 * (int64_t)D));
}

void rope(ThreadPool& pool, float* x, const int32_t* pos, int T, int n_heads, int head_dim, int rot_dim,
          float theta) {
  const int pairs = rot_dim / 2;
  std::vector<double> freq(pairs);
  for (int i = 0; i < pairs; ++i) freq[i] = std::pow((double)theta, -2.0 * i / rot_dim);
  pool.parallel_for(
      T,
      [&](int64_t t0, int64_t t1) {
        thread_local std::vector<float> cs;
        cs.resize(2 * (size_t)pairs);
        for (int64_t t = t0; t < t1; ++t) {
          // Angles in double: pos * freq reaches thousands of radians, where a
          // float angle would already be off by ~1e-4.
          for (int i = 0; i < pairs; ++i) {
            const double angle = pos[t] * freq[i];
            cs[2 * i] = (float)std::cos(angle);
            cs[2 * i + 1] = (float)std::sin(angle);
          }
          for (int h = 0; h < n_heads; ++h) {
            float* v = x + (t * n_heads + h) * head_dim;
            for (int i = 0; i < pairs; ++i) {
              const float a = v[2 * i], b = v[2 * i + 1], c = cs[2 * i], s = cs[2 * i + 1];
              v[2 * i] = a * c - b * s;
              v[2 * i + 1] = a * s + b * c;
            }
          }
        }
      },
      grain_for((int64_t)n_heads * rot_dim + 16 * pairs));
}

void silu_mul(ThreadPool& pool, float* y, const float* gate, const float* up, int64_t n) {
  pool.parallel_for(
      n,
      [&](int64_t i0, int64_t i1) {
        const __m256 one = _mm256_set1_ps(1.0f);
        int64_t i = i0;
        for (; i + 8 <= i1; i += 8) {
          const __m256 g = _mm256_loadu_ps(gate + i);
          const __m256 e = exp256(_mm256_sub_ps(_mm256_setzero_ps(), g));
          const __m256 s = _mm256_div_ps(g, _mm256_add_ps(one, e));
          _mm256_storeu_ps(y + i, _mm256_mul_ps(s, _mm256_loadu_ps(up + i)));
        }
        for (; i < i1; ++i) y[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
      },
      grain_for(16));
}

void add(ThreadPool& pool, float* y, const float* a, const float* b, int64_t n) {
  pool.parallel_for(
      n,
      [&](int64_t i0, int64_t i1) {
        int64_t i = i0;
        for (; i + 8 <= i1; i += 8)
          _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
        for (; i < i1; ++i) y[i] = a[i] + b[i];
      },
      grain_for(1));
}

}  // namespace brisk::cpu
#pragma GCC pop_options
