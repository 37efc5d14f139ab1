// The paged KV cache: writes into it and attention reading it through block tables.
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
namespace {
using namespace simd;

// The 8 sums of a[0..7] packed into one vector: [sum(a0), ..., sum(a7)].
inline __m256 hsum8(const __m256 (&a)[8]) {
  const __m256 t0 = _mm256_hadd_ps(a[0], a[1]), t1 = _mm256_hadd_ps(a[2], a[3]);
  const __m256 t2 = _mm256_hadd_ps(a[4], a[5]), t3 = _mm256_hadd_ps(a[6], a[7]);
  const __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
  return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

// Dot products of q with 8 rows: eight independent FMA chains hide the FMA
// latency that a single dot product of a short head would be bound by.
inline __m256 dot_x8(const float* q, const float* const* k, int n) {
  __m256 acc[8];
  for (int j = 0; j < 8; ++j) acc[j] = _mm256_setzero_ps();
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 qv = _mm256_loadu_ps(q + i);
    for (int j = 0; j < 8; ++j) acc[j] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k[j] + i), acc[j]);
  }
  __m256 sums = hsum8(acc);
  if (i < n) {
    alignas(32) float tail[8];
    for (int j = 0; j < 8; ++j) {
      float t = 0.0f;
      for (int ii = i; ii < n; ++ii) t += q[ii] * k[j][ii];
      tail[j] = t;
    }
    sums = _mm256_add_ps(sums, _mm256_load_ps(tail));
  }
  return sums;
}

// acc[0..n) += sum_j p[j] * v[j][0..n) over nv rows, keeping a 64-wide slice
// of acc in registers while it sweeps the rows.
inline void accumulate_rows(float* acc, const float* p, const float* const* v, int nv, int n) {
  int d = 0;
  for (; d + 64 <= n; d += 64) {
    __m256 a[8];
    for (int c = 0; c < 8; ++c) a[c] = _mm256_loadu_ps(acc + d + 8 * c);
    for (int j = 0; j < nv; ++j) {
      const __m256 pj = _mm256_set1_ps(p[j]);
      for (int c = 0; c < 8; ++c) a[c] = _mm256_fmadd_ps(pj, _mm256_loadu_ps(v[j] + d + 8 * c), a[c]);
    }
    for (int c = 0; c < 8; ++c) _mm256_storeu_ps(acc + d + 8 * c, a[c]);
  }
  for (; d + 8 <= n; d += 8) {
    __m256 a = _mm256_loadu_ps(acc + d);
    for (int j = 0; j < nv; ++j) a = _mm256_fmadd_ps(_mm256_set1_ps(p[j]), _mm256_loadu_ps(v[j] + d), a);
    _mm256_storeu_ps(acc + d, a);
  }
  for (; d < n; ++d) {
    float a = acc[d];
    for (int j = 0; j < nv; ++j) a += p[j] * v[j][d];
    acc[d] = a;
  }
}
}  // namespace

void kv_write(ThreadPool& pool, float* k_cache, float* v_cache, const float* k, const float* v,
              const int32_t* slots, int T, int kv_width) {
  pool.parallel_for(
      T,
      [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) {
          const int64_t slot = slots[t];
          std::memcpy(k_cache + slot * kv_width, k + t * kv_width, sizeof(float) * kv_width);
          std::memcpy(v_cache + slot * kv_width, v + t * kv_width, sizeof(float) * kv_width);
        }
      },
      grain_for(2 * (int64_t)kv_width));
}

void paged_attention(ThreadPool& pool, float* out, const float* q, const float* k_cache, const float* v_cache,
                     const PagedAttentionArgs& a) {
  const int D = a.head_dim;
  const int group = a.n_heads / a.n_kv_heads;
  const int64_t q_width = (int64_t)a.n_heads * D;
  const int64_t kv_width = (int64_t)a.n_kv_heads * D;
  const int total_rows = a.query_start[a.num_seqs];
  if (total_rows <= 0) return;

  std::vector<int32_t> row_seq(total_rows);
  int64_t work = 0;  // multiply-adds, to decide whether threads are worth waking
  for (int s = 0; s < a.num_seqs; ++s) {
    for (int r = a.query_start[s]; r < a.query_start[s + 1]; ++r) row_seq[r] = s;
    const int64_t q_len = a.query_start[s + 1] - a.query_start[s];
    work += q_len * (a.seq_lens[s] - (q_len - 1) / 2) * 2 * q_width;
  }
  // One work item is a query row and a KV head with all the query heads that
  // share it, so each key and value row is read once per group.
  const int64_t items = (int64_t)total_rows * a.n_kv_heads;
  const int64_t grain = work < kMinWorkPerChunk ? items : 1;

  pool.parallel_for(
      items,
      [&](int64_t i0, int64_t i1) {
        // Keys are processed in blocks: scores for a block first, then one
        // rescale of the running sums per block instead of per key.
        constexpr int kKeyBlock = 64;
        thread_local std::vector<float> buf;
        thread_local std::vector<const float*> rows;
        buf.resize((size_t)group * (kKeyBlock + D + 2));
        rows.resize(2 * kKeyBlock);
        float* scores = buf.data();                 // [group][kKeyBlock]
        float* acc = scores + group * kKeyBlock;    // [group][D]
        float* run_max = acc + (int64_t)group * D;  // [group]
        float* run_sum = run_max + group;           // [group]
        const float** krow = rows.data();
        const float** vrow = krow + kKeyBlock;
        for (int64_t i = i0; i < i1; ++i) {
          // Later rows of a prefill attend to more keys; handing them out
          // first lets the short ones fill in at the end and balances threads.
          const int64_t item = items - 1 - i;
          const int64_t row = item / a.n_kv_heads;
          const int kvh = (int)(item % a.n_kv_heads);
          const int s = row_seq[row];
          const int q_len = a.query_start[s + 1] - a.query_start[s];
          const int n_keys = a.seq_lens[s] - q_len + (int)(row - a.query_start[s]) + 1;
          const int32_t* table = a.block_tables + (int64_t)s * a.max_blocks_per_seq;
          const float* qg = q + row * q_width + (int64_t)kvh * group * D;
          std::fill(acc, acc + (int64_t)group * D, 0.0f);
          std::fill(run_max, run_max + group, -INFINITY);
          std::fill(run_sum, run_sum + group, 0.0f);

          for (int t0 = 0; t0 < n_keys; t0 += kKeyBlock) {
            const int nt = std::min(kKeyBlock, n_keys - t0);
            for (int j = 0; j < nt; ++j) {
              const int t = t0 + j;
              const int64_t slot = (int64_t)table[t / a.block_size] * a.block_size + t % a.block_size;
              const int64_t off = slot * kv_width + (int64_t)kvh * D;
              krow[j] = k_cache + off;
              vrow[j] = v_cache + off;
            }
            const __m256 scale = _mm256_set1_ps(a.scale);
            int j = 0;
            for (; j + 8 <= nt; j += 8)
              for (int g = 0; g < group; ++g)
                _mm256_storeu_ps(scores + g * kKeyBlock + j,
                                 _mm256_mul_ps(scale, dot_x8(qg + (int64_t)g * D, krow + j, D)));
            for (; j < nt; ++j)
              for (int g = 0; g < group; ++g)
                scores[g * kKeyBlock + j] = a.scale * dot(qg + (int64_t)g * D, krow[j], D);

            for (int g = 0; g < group; ++g) {
              float* sg = scores + g * kKeyBlock;
              __m256 mv = _mm256_set1_ps(-INFINITY);
              j = 0;
              for (; j + 8 <= nt; j += 8) mv = _mm256_max_ps(mv, _mm256_loadu_ps(sg + j));
              float block_max = hmax(mv);
              for (; j < nt; ++j) block_max = std::max(block_max, sg[j]);
              const float new_max = std::max(run_max[g], block_max);
              // exp(-inf) = 0 on the first block, when acc and run_sum are 0 anyway.
              const float correction = std::exp(run_max[g] - new_max);
              run_max[g] = new_max;
              const __m256 mx = _mm256_set1_ps(new_max);
              __m256 sv = _mm256_setzero_ps();
              j = 0;
              for (; j + 8 <= nt; j += 8) {
                const __m256 p = exp256(_mm256_sub_ps(_mm256_loadu_ps(sg + j), mx));
                _mm256_storeu_ps(sg + j, p);
                sv = _mm256_add_ps(sv, p);
              }
              float block_sum = hsum(sv);
              for (; j < nt; ++j) {
                sg[j] = std::exp(sg[j] - new_max);
                block_sum += sg[j];
              }
              run_sum[g] = run_sum[g] * correction + block_sum;
              float* ag = acc + (int64_t)g * D;
              if (correction != 1.0f)
                for (int d = 0; d < D; ++d) ag[d] *= correction;
              accumulate_rows(ag, sg, vrow, nt, D);
            }
          }
          for (int g = 0; g < group; ++g) {
            float* og = out + row * q_width + ((int64_t)kvh * group + g) * D;
            const float inv = 1.0f / run_sum[g];
            for (int d = 0; d < D; ++d) og[d] = acc[(int64_t)g * D + d] * inv;
          }
        }
      },
      grain);
}

}  // namespace brisk::cpu
#pragma GCC pop_options
