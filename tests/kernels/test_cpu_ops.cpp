// Every cpu:: op against its ref:: oracle on random, never all-zero inputs,
// with pools of 1, 2 and 3 threads, plus the thread pool's own contract.
//
// Tolerances: outputs may differ from the double-accumulating reference only
// by F32 rounding. An element passes when |cpu - ref| <= rtol * (|ref| + rms),
// where rms is the root mean square of the whole reference output, so that
// elements that happen to cancel to near zero are judged on the output's scale.
#include <QtTest/QtTest>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <memory>
#include <mutex>
#include <numeric>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "kernels/cpu/ops.h"
#include "kernels/cpu/thread_pool.h"
#include "kernels/dtype.h"
#include "kernels/reference/ops.h"

using namespace brisk;

namespace {

std::vector<float> random_vec(std::mt19937& rng, size_t n, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// Weights of type t built from random values; both ops read the same bytes.
std::vector<uint8_t> quantize(const std::vector<float>& w, DType t, int N, int K) {
  std::vector<uint8_t> out(row_bytes(t, K) * N);
  switch (t) {
    case DType::F32:
      std::memcpy(out.data(), w.data(), out.size());
      break;
    case DType::F16:
    case DType::BF16: {
      auto* p = reinterpret_cast<uint16_t*>(out.data());
      for (size_t i = 0; i < w.size(); ++i) p[i] = t == DType::F16 ? fp32_to_fp16(w[i]) : fp32_to_bf16(w[i]);
      break;
    }
    case DType::Q8_0: {
      auto* blocks = reinterpret_cast<BlockQ8_0*>(out.data());
      for (size_t b = 0; b < w.size() / kQ8_0BlockSize; ++b) {
        const float* v = &w[b * kQ8_0BlockSize];
        float amax = 0.0f;
        for (int i = 0; i < kQ8_0BlockSize; ++i) amax = std::max(amax, std::fabs(v[i]));
        const float d = amax / 127.0f;
        blocks[b].d = fp32_to_fp16(d);
        for (int i = 0; i < kQ8_0BlockSize; ++i)
          blocks[b].qs[i] = (int8_t)std::lround(d > 0 ? v[i] / d : 0.0f);
      }
      break;
    }
    case DType::I32:
      break;
  }
  return out;
}

struct Mismatch {
  bool ok = true;
  QString what;
};

Mismatch compare(const float* got, const float* want, size_t n, double rtol) {
  double ss = 0.0;
  for (size_t i = 0; i < n; ++i) ss += (double)want[i] * want[i];
  const double rms = std::sqrt(ss / std::max<size_t>(1, n));
  for (size_t i = 0; i < n; ++i) {
    const double err = std::fabs((double)got[i] - want[i]);
    if (!(err <= rtol * (std::fabs(want[i]) + rms))) {
      return {false, QString("element %1: cpu %2 ref %3 (err %4, rms %5, rtol %6)")
                         .arg(i)
                         .arg(got[i], 0, 'g', 9)
                         .arg(want[i], 0, 'g', 9)
                         .arg(err, 0, 'g', 3)
                         .arg(rms, 0, 'g', 3)
                         .arg(rtol)};
    }
  }
  return {};
}

#define EXPECT_CLOSE(got, want, n, rtol, context)                             \
  do {                                                                        \
    const Mismatch m_ = compare((got), (want), (n), (rtol));                  \
    QVERIFY2(m_.ok, qPrintable(QString("%1: %2").arg(context).arg(m_.what))); \
  } while (0)

struct AttentionCase {
  int n_heads, n_kv_heads, head_dim, block_size;
  std::vector<std::pair<int, int>> seqs;  // (seq_len after this step, q_len)
};

}  // namespace

class TestCpuOps : public QObject {
  Q_OBJECT

  std::vector<std::unique_ptr<ThreadPool>> pools_;

  QString pool_name(const ThreadPool& p) const { return QString("%1 threads").arg(p.size()); }

  void check_matmul(std::mt19937& rng, DType t, int M, int N, int K) {
    const auto x = random_vec(rng, (size_t)M * K);
    const auto wf = random_vec(rng, (size_t)N * K);
    const auto w = quantize(wf, t, N, K);
    std::vector<float> want((size_t)M * N), got((size_t)M * N);
    ref::matmul(want.data(), x.data(), w.data(), t, M, N, K);
    for (auto& pool : pools_) {
      std::fill(got.begin(), got.end(), NAN);
      cpu::matmul(*pool, got.data(), x.data(), w.data(), t, M, N, K);
      EXPECT_CLOSE(got.data(), want.data(), got.size(), 1e-4,
                   QString("matmul %1 M=%2 N=%3 K=%4, %5")
                       .arg(dtype_name(t))
                       .arg(M)
                       .arg(N)
                       .arg(K)
                       .arg(pool_name(*pool)));
    }
  }

  void check_attention(std::mt19937& rng, const AttentionCase& c, float scale) {
    const int num_seqs = (int)c.seqs.size();
    const int D = c.head_dim, kv_width = c.n_kv_heads * D, q_width = c.n_heads * D;
    std::vector<int32_t> query_start{0}, seq_lens;
    int max_blocks = 0, total_blocks = 0;
    for (auto [len, q_len] : c.seqs) {
      query_start.push_back(query_start.back() + q_len);
      seq_lens.push_back(len);
      const int blocks = (len + c.block_size - 1) / c.block_size;
      max_blocks = std::max(max_blocks, blocks);
      total_blocks += blocks;
    }
    max_blocks += 1;  // a spare column, as a real table has
    // More physical blocks than needed, handed out in shuffled order, so a
    // sequence's blocks are neither contiguous nor ascending.
    const int num_blocks = total_blocks + 5;
    std::vector<int32_t> ids(num_blocks);
    std::iota(ids.begin(), ids.end(), 0);
    std::shuffle(ids.begin(), ids.end(), rng);
    // Unused entries point far outside the cache, so reading one would show.
    std::vector<int32_t> tables((size_t)num_seqs * max_blocks, 1 << 20);
    int next = 0;
    for (int s = 0; s < num_seqs; ++s) {
      const int blocks = (c.seqs[s].first + c.block_size - 1) / c.block_size;
      for (int b = 0; b < blocks; ++b) tables[(size_t)s * max_blocks + b] = ids[next++];
    }
    const int num_slots = num_blocks * c.block_size;
    const auto kc = random_vec(rng, (size_t)num_slots * kv_width);
    const auto vc = random_vec(rng, (size_t)num_slots * kv_width);
    const int rows = query_start.back();
    const auto q = random_vec(rng, (size_t)rows * q_width);

    PagedAttentionArgs a;
    a.num_seqs = num_seqs;
    a.query_start = query_start.data();
    a.seq_lens = seq_lens.data();
    a.block_tables = tables.data();
    a.max_blocks_per_seq = max_blocks;
    a.block_size = c.block_size;
    a.n_heads = c.n_heads;
    a.n_kv_heads = c.n_kv_heads;
    a.head_dim = D;
    a.scale = scale;
    std::vector<float> want((size_t)rows * q_width), got(want.size());
    ref::paged_attention(want.data(), q.data(), kc.data(), vc.data(), a);
    for (auto& pool : pools_) {
      std::fill(got.begin(), got.end(), NAN);
      cpu::paged_attention(*pool, got.data(), q.data(), kc.data(), vc.data(), a);
      EXPECT_CLOSE(got.data(), want.data(), got.size(), 1e-4,
                   QString("attention heads %1/%2 head_dim %3 block_size %4 scale %5, %6")
                       .arg(c.n_heads)
                       .arg(c.n_kv_heads)
                       .arg(D)
                       .arg(c.block_size)
                       .arg(scale)
                       .arg(pool_name(*pool)));
    }
  }

 private slots:
  void initTestCase() {
    for (int n : {1, 2, 3}) pools_.push_back(std::make_unique<ThreadPool>(n));
  }

  void matmul_float_weights() {
    std::mt19937 rng(1);
    for (DType t : {DType::F32, DType::F16, DType::BF16})
      for (int M : {1, 3, 4, 7, 33})
        for (int N : {1, 5, 64, 257})
          for (int K : {8, 31, 64, 96}) check_matmul(rng, t, M, N, K);
  }

  void matmul_q8_0() {
    std::mt19937 rng(2);
    for (int M : {1, 3, 4, 7, 33})
      for (int N : {1, 5, 64, 257})
        for (int K : {32, 64, 96}) check_matmul(rng, DType::Q8_0, M, N, K);
  }

  void matmul_large_shapes() {
    // Exercise the k- and n-blocking of the batched path (K beyond one k
    // block, N beyond one row block), and a GEMV big enough to use every thread.
    std::mt19937 rng(3);
    for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0}) {
      const int K_odd = t == DType::Q8_0 ? 1056 : 1003;
      check_matmul(rng, t, 33, 70, K_odd);
      check_matmul(rng, t, 6, 130, K_odd);
      check_matmul(rng, t, 1, 1000, 1024);
      check_matmul(rng, t, 2, 301, 512);
    }
  }

  // A row's result must not depend on the batch around it: the engine's
  // "batched equals alone" guarantee rests on this. Every row of a 9-row
  // product is recomputed inside batches of 1..8 rows, at every position,
  // on every pool, and must match bit for bit.
  void matmul_is_batch_invariant() {
    std::mt19937 rng(4);
    for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0})
      for (int K : {32, 40, 544, 1100}) {
        if (t == DType::Q8_0 && K % 32) continue;
        const int N = 37, M = 9;
        const auto x = random_vec(rng, (size_t)M * K);
        const auto w = quantize(random_vec(rng, (size_t)N * K), t, N, K);
        std::vector<float> all((size_t)M * N);
        cpu::matmul(*pools_[1], all.data(), x.data(), w.data(), t, M, N, K);
        for (auto& pool : pools_)
          for (int m_batch = 1; m_batch <= 8; ++m_batch)
            for (int first = 0; first + m_batch <= M; ++first) {
              std::vector<float> part((size_t)m_batch * N);
              cpu::matmul(*pool, part.data(), x.data() + (size_t)first * K, w.data(), t, m_batch, N, K);
              for (size_t i = 0; i < part.size(); ++i)
                if (std::memcmp(&part[i], &all[(size_t)first * N + i], 4) != 0)
                  QFAIL(qPrintable(QString("%1 K=%2: row %3 differs in a batch of %4 (%5 vs %6)")
                                       .arg(dtype_name(t)).arg(K).arg(first + (int)i / N).arg(m_batch)
                                       .arg(part[i], 0, 'g', 9).arg(all[(size_t)first * N + i], 0, 'g', 9)));
            }
      }
  }

  void embed_matches() {
    std::mt19937 rng(4);
    const int vocab = 50;
    for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0}) {
      for (int D : {32, 96, 4096}) {
        const auto table = quantize(random_vec(rng, (size_t)vocab * D), t, vocab, D);
        std::uniform_int_distribution<int32_t> id(0, vocab - 1);
        for (int T : {1, 5, 40}) {
          std::vector<int32_t> ids(T);
          for (auto& i : ids) i = id(rng);
          std::vector<float> want((size_t)T * D), got(want.size());
          ref::embed(want.data(), table.data(), t, ids.data(), T, D);
          for (auto& pool : pools_) {
            std::fill(got.begin(), got.end(), NAN);
            cpu::embed(*pool, got.data(), table.data(), t, ids.data(), T, D);
            // Conversions are exact, so the rows must be identical.
            QVERIFY2(got == want, qPrintable(QString("embed %1 D=%2 T=%3, %4")
                                                 .arg(dtype_name(t))
                                                 .arg(D)
                                                 .arg(T)
                                                 .arg(pool_name(*pool))));
          }
        }
      }
    }
    // Odd widths for the float types (Q8_0 rows are whole blocks).
    for (DType t : {DType::F32, DType::F16, DType::BF16}) {
      const int D = 13;
      const auto table = quantize(random_vec(rng, (size_t)vocab * D), t, vocab, D);
      const std::vector<int32_t> ids{0, 49, 7};
      std::vector<float> want(3 * D), got(3 * D);
      ref::embed(want.data(), table.data(), t, ids.data(), 3, D);
      cpu::embed(*pools_[1], got.data(), table.data(), t, ids.data(), 3, D);
      QCOMPARE(got, want);
    }
  }

  void rmsnorm_matches() {
    std::mt19937 rng(5);
    for (int M : {1, 3, 33})
      for (int D : {1, 7, 64, 4099}) {
        const auto x = random_vec(rng, (size_t)M * D, -3.0f, 3.0f);
        const auto w = random_vec(rng, D, 0.5f, 1.5f);
        std::vector<float> want(x.size()), got(x.size());
        ref::rmsnorm(want.data(), x.data(), w.data(), M, D, 1e-5f);
        for (auto& pool : pools_) {
          cpu::rmsnorm(*pool, got.data(), x.data(), w.data(), M, D, 1e-5f);
          EXPECT_CLOSE(got.data(), want.data(), got.size(), 1e-5,
                       QString("rmsnorm M=%1 D=%2, %3").arg(M).arg(D).arg(pool_name(*pool)));
        }
      }
  }

  void rope_matches() {
    std::mt19937 rng(6);
    std::uniform_int_distribution<int32_t> position(0, 8000);
    struct Shape {
      int head_dim, rot_dim;
    };
    for (Shape s : {Shape{8, 8}, Shape{64, 64}, Shape{64, 32}, Shape{6, 4}, Shape{128, 128}})
      for (int T : {1, 7, 40})
        for (float theta : {10000.0f, 1000000.0f}) {
          const int n_heads = 3;
          std::vector<int32_t> pos(T);
          for (auto& p : pos) p = position(rng);
          pos[0] = 0;
          const auto x = random_vec(rng, (size_t)T * n_heads * s.head_dim);
          std::vector<float> want = x;
          ref::rope(want.data(), pos.data(), T, n_heads, s.head_dim, s.rot_dim, theta);
          for (auto& pool : pools_) {
            std::vector<float> got = x;
            cpu::rope(*pool, got.data(), pos.data(), T, n_heads, s.head_dim, s.rot_dim, theta);
            EXPECT_CLOSE(got.data(), want.data(), got.size(), 1e-5,
                         QString("rope T=%1 head_dim %2 rot_dim %3 theta %4, %5")
                             .arg(T)
                             .arg(s.head_dim)
                             .arg(s.rot_dim)
                             .arg(theta)
                             .arg(pool_name(*pool)));
          }
        }
  }

  void silu_mul_matches() {
    std::mt19937 rng(7);
    for (int64_t n : {1, 7, 8, 1000, 100003}) {
      auto g = random_vec(rng, n, -20.0f, 20.0f);
      const auto u = random_vec(rng, n, -2.0f, 2.0f);
      if (n >= 8) {  // saturated tails of the sigmoid
        g[0] = -100.0f;
        g[1] = 100.0f;
        g[2] = -87.0f;
        g[3] = 0.0f;
      }
      std::vector<float> want(n), got(n);
      ref::silu_mul(want.data(), g.data(), u.data(), n);
      for (auto& pool : pools_) {
        cpu::silu_mul(*pool, got.data(), g.data(), u.data(), n);
        for (int64_t i = 0; i < n; ++i) {
          const double err = std::fabs((double)got[i] - want[i]);
          QVERIFY2(err <= 1e-5 * std::fabs(want[i]) + 1e-6,
                   qPrintable(QString("silu_mul n=%1 i=%2 g=%3: cpu %4 ref %5, %6")
                                  .arg(n)
                                  .arg(i)
                                  .arg(g[i])
                                  .arg(got[i])
                                  .arg(want[i])
                                  .arg(pool_name(*pool))));
        }
      }
    }
  }

  void add_matches() {
    std::mt19937 rng(8);
    for (int64_t n : {1, 9, 100003}) {
      const auto a = random_vec(rng, n), b = random_vec(rng, n);
      std::vector<float> want(n), got(n);
      ref::add(want.data(), a.data(), b.data(), n);
      for (auto& pool : pools_) {
        cpu::add(*pool, got.data(), a.data(), b.data(), n);
        QCOMPARE(got, want);
      }
      // In place, as the residual stream uses it.
      std::vector<float> inplace = a;
      cpu::add(*pools_[2], inplace.data(), inplace.data(), b.data(), n);
      QCOMPARE(inplace, want);
    }
  }

  void kv_write_matches() {
    std::mt19937 rng(9);
    for (int kv_width : {4, 128, 1024}) {
      const int num_slots = 300, T = 37;
      std::vector<int32_t> slot_ids(num_slots);
      std::iota(slot_ids.begin(), slot_ids.end(), 0);
      std::shuffle(slot_ids.begin(), slot_ids.end(), rng);
      slot_ids.resize(T);
      const auto k = random_vec(rng, (size_t)T * kv_width), v = random_vec(rng, k.size());
      const auto k0 = random_vec(rng, (size_t)num_slots * kv_width), v0 = random_vec(rng, k0.size());
      std::vector<float> want_k = k0, want_v = v0;
      ref::kv_write(want_k.data(), want_v.data(), k.data(), v.data(), slot_ids.data(), T, kv_width);
      for (auto& pool : pools_) {
        std::vector<float> got_k = k0, got_v = v0;
        cpu::kv_write(*pool, got_k.data(), got_v.data(), k.data(), v.data(), slot_ids.data(), T, kv_width);
        QVERIFY(got_k == want_k);
        QVERIFY(got_v == want_v);
      }
    }
  }

  void paged_attention_matches() {
    std::mt19937 rng(10);
    // Decode rows (q_len 1) mixed with whole and chunked prefills; lengths cross
    // block boundaries and the 64-key blocks the CPU kernel works in.
    const std::vector<std::pair<int, int>> mixed = {{1, 1},  {17, 1}, {40, 40}, {150, 5},
                                                    {33, 1}, {9, 9},  {130, 1}, {64, 64}};
    for (auto [n_heads, n_kv_heads] : {std::pair{8, 2}, std::pair{4, 4}, std::pair{8, 1}})
      for (int head_dim : {4, 8, 64})
        for (int block_size : {1, 4, 16}) {
          const AttentionCase c{n_heads, n_kv_heads, head_dim, block_size, mixed};
          check_attention(rng, c, 1.0f / std::sqrt((float)head_dim));
        }
    // A peaked softmax (large scale) and a long decode.
    check_attention(rng, {8, 2, 64, 16, {{5, 5}, {70, 3}}}, 2.0f);
    check_attention(rng, {4, 2, 8, 4, {{1000, 1}, {2, 2}}}, 0.35f);
  }

  void thread_pool_covers_each_index_once() {
    for (int threads : {1, 2, 3, 5}) {
      ThreadPool pool(threads);
      QCOMPARE(pool.size(), threads);
      for (int64_t n : {0, 1, 2, 3, 5, 7, 16, 100, 1000, 12345})
        for (int64_t grain : {1, 2, 3, 7, 64, 1000}) {
          std::vector<std::atomic<int>> hits(n);
          std::mutex mu;
          std::vector<std::pair<int64_t, int64_t>> chunks;
          pool.parallel_for(
              n,
              [&](int64_t b, int64_t e) {
                for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1);
                std::lock_guard<std::mutex> lock(mu);
                chunks.emplace_back(b, e);
              },
              grain);
          for (int64_t i = 0; i < n; ++i)
            QVERIFY2(hits[i].load() == 1, qPrintable(QString("threads %1 n %2 grain %3 index %4 "
                                                             "hit %5 times")
                                                         .arg(threads)
                                                         .arg(n)
                                                         .arg(grain)
                                                         .arg(i)
                                                         .arg(hits[i].load())));
          for (auto [b, e] : chunks) {
            QVERIFY(b < e);
            // Only the chunk that ends the range may be shorter than grain.
            QVERIFY2(e - b >= grain || e == n,
                     qPrintable(QString("chunk [%1, %2) shorter than grain %3").arg(b).arg(e).arg(grain)));
          }
        }
    }
  }

  void thread_pool_repeated_and_nested_calls() {
    ThreadPool pool(3);
    std::vector<int64_t> sums(2000);
    for (int rep = 0; rep < 2000; ++rep) {
      std::atomic<int64_t> sum{0};
      pool.parallel_for(
          64 + rep % 7,
          [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) sum += i;
          },
          1);
      sums[rep] = sum.load();
    }
    for (int rep = 0; rep < 2000; ++rep) {
      const int64_t n = 64 + rep % 7;
      QCOMPARE(sums[rep], n * (n - 1) / 2);
    }
    // A parallel_for issued from inside a chunk runs inline rather than deadlocking.
    std::atomic<int64_t> total{0};
    pool.parallel_for(
        8,
        [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i)
            pool.parallel_for(
                10, [&](int64_t b2, int64_t e2) { total += e2 - b2; }, 1);
        },
        1);
    QCOMPARE(total.load(), (int64_t)80);
  }

  // Jobs back to back (workers still spinning), after pauses longer than the
  // spin (workers asleep, woken through the condition variable), and from
  // two caller threads at once: every index runs exactly once each time.
  void thread_pool_spinning_and_sleeping_workers() {
    ThreadPool pool(3);
    std::vector<std::atomic<int>> hits(997);
    auto job = [&](int rep) {
      pool.parallel_for(
          (int64_t)hits.size(), [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1);
          },
          1);
      if (rep % 97 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));  // past the spin
    };
    for (int rep = 0; rep < 600; ++rep) job(rep);
    for (auto& h : hits) QCOMPARE(h.load(), 600);
    std::thread other([&] {
      for (int rep = 0; rep < 300; ++rep) job(rep);
    });
    for (int rep = 0; rep < 300; ++rep) job(rep + 1);
    other.join();
    for (auto& h : hits) QCOMPARE(h.load(), 1200);
  }

  void thread_pool_uses_its_threads() {
    ThreadPool pool(3);
    std::mutex mu;
    std::set<std::thread::id> seen;
    pool.parallel_for(
        48,
        [&](int64_t, int64_t) {
          std::this_thread::sleep_for(std::chrono::milliseconds(2));
          std::lock_guard<std::mutex> lock(mu);
          seen.insert(std::this_thread::get_id());
        },
        1);
    QVERIFY(!seen.empty() && (int)seen.size() <= 3);
    QVERIFY(seen.count(std::this_thread::get_id()) == 1);  // the caller takes part
  }

  // Greedy sampling's argmax: rows of a wider buffer (a stride past the
  // columns scanned), every length around the 16-lane width, ties, -inf,
  // NaN (also in column 0), against the reference's scan.
  void argmax_rows() {
    std::mt19937 rng(9);
    std::uniform_int_distribution<int> small(-2, 2);
    std::uniform_real_distribution<float> u(-5.0f, 5.0f);
    for (int N : {1, 15, 16, 17, 50, 32000})
      for (int M : {1, 7}) {
        const int stride = N + 5;
        std::vector<float> x((size_t)M * stride);
        for (size_t i = 0; i < x.size(); ++i) x[i] = (i % 3 == 0) ? (float)small(rng) : u(rng);
        for (int m = 0; m < M; ++m) {
          float* r = x.data() + (size_t)m * stride;
          if (m % 3 == 1) r[rng() % N] = NAN;
          if (m % 4 == 2) std::fill(r, r + N, -INFINITY);
          if (m == 6) r[0] = NAN;
          r[N] = 1e30f;  // past the columns scanned: never the answer
        }
        std::vector<int32_t> ref(M), got(M, -1);
        ref::argmax_rows(ref.data(), x.data(), M, stride, N);
        for (auto& pool : pools_) {
          std::fill(got.begin(), got.end(), -1);
          cpu::argmax_rows(*pool, got.data(), x.data(), M, stride, N);
          QCOMPARE(got, ref);
        }
      }
  }

  void thread_pool_default_size() {
    QVERIFY(ThreadPool::physical_cores() >= 1);
    ThreadPool pool(0);
    QCOMPARE(pool.size(), ThreadPool::physical_cores());
  }
};

QTEST_APPLESS_MAIN(TestCpuOps)
#include "test_cpu_ops.moc"
