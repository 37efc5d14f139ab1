// Row-wise and element-wise ops: norms, RoPE, activations, residual adds.
// AVX2 code sits in the target region below; the public entry points at the
// end fall back to the reference (split over threads) on the scalar ISA.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/simd.h"
#include "kernels/reference/attention.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
namespace brisk::cpu::avx2 {
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
  // Grown once and reused: no allocation on the per-step path. (A local
  // reference, so the pool's threads read the caller's buffer, not their own.)
  thread_local std::vector<double> freq_buf;
  std::vector<double>& freq = freq_buf;
  freq.resize(pairs);
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

// The sum of squares accumulates exactly as simd::dot(x, x) does, so the
// fused op gives the same bits as add() followed by rmsnorm().
void add_rmsnorm(ThreadPool& pool, float* x, const float* residual, const float* w, float* y, int M, int D,
                 float eps) {
  pool.parallel_for(
      M,
      [&](int64_t m0, int64_t m1) {
        for (int64_t m = m0; m < m1; ++m) {
          float* xr = x + m * D;
          const float* rr = residual + m * D;
          float* yr = y + m * D;
          __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
          int d = 0;
          for (; d + 16 <= D; d += 16) {
            const __m256 a = _mm256_add_ps(_mm256_loadu_ps(xr + d), _mm256_loadu_ps(rr + d));
            const __m256 b = _mm256_add_ps(_mm256_loadu_ps(xr + d + 8), _mm256_loadu_ps(rr + d + 8));
            _mm256_storeu_ps(xr + d, a);
            _mm256_storeu_ps(xr + d + 8, b);
            acc0 = _mm256_fmadd_ps(a, a, acc0);
            acc1 = _mm256_fmadd_ps(b, b, acc1);
          }
          for (; d + 8 <= D; d += 8) {
            const __m256 a = _mm256_add_ps(_mm256_loadu_ps(xr + d), _mm256_loadu_ps(rr + d));
            _mm256_storeu_ps(xr + d, a);
            acc0 = _mm256_fmadd_ps(a, a, acc0);
          }
          float ss = hsum(_mm256_add_ps(acc0, acc1));
          for (; d < D; ++d) {
            xr[d] += rr[d];
            ss += xr[d] * xr[d];
          }
          // The row is still in L1: scaling it is not a second pass over memory.
          const float inv = 1.0f / std::sqrt(ss / (float)D + eps);
          const __m256 iv = _mm256_set1_ps(inv);
          d = 0;
          for (; d + 8 <= D; d += 8)
            _mm256_storeu_ps(
                yr + d, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(xr + d), iv), _mm256_loadu_ps(w + d)));
          for (; d < D; ++d) yr[d] = xr[d] * inv * w[d];
        }
      },
      grain_for(3 * (int64_t)D));
}

}  // namespace brisk::cpu::avx2
#pragma GCC pop_options

// Dispatch, compiled for the baseline ISA.
namespace brisk::cpu {
namespace {
bool use_avx2() { return active_isa() != Isa::Scalar; }
}  // namespace

void rmsnorm(ThreadPool& pool, float* y, const float* x, const float* w, int M, int D, float eps) {
  if (use_avx2()) return avx2::rmsnorm(pool, y, x, w, M, D, eps);
  pool.parallel_for(
      M, [&](int64_t m0, int64_t m1) { ref::rmsnorm(y + m0 * D, x + m0 * D, w, (int)(m1 - m0), D, eps); });
}

void add_rmsnorm(ThreadPool& pool, float* x, const float* residual, const float* w, float* y, int M, int D,
                 float eps) {
  if (use_avx2()) return avx2::add_rmsnorm(pool, x, residual, w, y, M, D, eps);
  pool.parallel_for(M, [&](int64_t m0, int64_t m1) {
    ref::add_rmsnorm(x + m0 * D, residual + m0 * D, w, y + m0 * D, (int)(m1 - m0), D, eps);
  });
}

void rope(ThreadPool& pool, float* x, const int32_t* pos, int T, int n_heads, int head_dim, int rot_dim,
          float theta) {
  if (use_avx2()) return avx2::rope(pool, x, pos, T, n_heads, head_dim, rot_dim, theta);
  const int64_t width = (int64_t)n_heads * head_dim;
  pool.parallel_for(T, [&](int64_t t0, int64_t t1) {
    ref::rope(x + t0 * width, pos + t0, (int)(t1 - t0), n_heads, head_dim, rot_dim, theta);
  });
}

void silu_mul(ThreadPool& pool, float* y, const float* gate, const float* up, int64_t n) {
  if (use_avx2()) return avx2::silu_mul(pool, y, gate, up, n);
  pool.parallel_for(
      n, [&](int64_t i0, int64_t i1) { ref::silu_mul(y + i0, gate + i0, up + i0, i1 - i0); }, 1024);
}

void add(ThreadPool& pool, float* y, const float* a, const float* b, int64_t n) {
  if (use_avx2()) return avx2::add(pool, y, a, b, n);
  pool.parallel_for(
      n, [&](int64_t i0, int64_t i1) { ref::add(y + i0, a + i0, b + i0, i1 - i0); }, 1024);
}

// A scan comparing against x[best] is a chain of dependent loads (~50 us
// for a 32000-entry row); independent lanes of maxima vectorise (a
// `v > m ? v : m` is one MAXPS, which never picks a NaN), and the second
// pass only compares.
int32_t argmax(const float* x, int n) {
  if (n <= 0 || std::isnan(x[0])) return 0;
  constexpr int kLanes = 16;
  float lane[kLanes];
  for (int l = 0; l < kLanes; ++l) lane[l] = x[0];
  int i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) lane[l] = x[i + l] > lane[l] ? x[i + l] : lane[l];
  float m = lane[0];
  for (int l = 1; l < kLanes; ++l) m = lane[l] > m ? lane[l] : m;
  for (; i < n; ++i) m = x[i] > m ? x[i] : m;
  for (int j = 0; j < n; ++j)
    if (x[j] == m) return j;
  return 0;
}

void argmax_rows(ThreadPool& pool, int32_t* out, const float* x, int M, int stride, int N) {
  pool.parallel_for(
      M,
      [&](int64_t m0, int64_t m1) {
        for (int64_t m = m0; m < m1; ++m) out[m] = argmax(x + m * stride, N);
      },
      1);
}

}  // namespace brisk::cpu
