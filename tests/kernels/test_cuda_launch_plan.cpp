// Host-side launch planning of the CUDA kernels (kernels/cuda/launch_plan.cpp):
// runs everywhere, no device needed.
#include <QtTest/QtTest>

#include "kernels/cuda/cuda_kernels.h"

using namespace brisk::cuda;

class TestCudaLaunchPlan : public QObject {
  Q_OBJECT
 private slots:
  void splits_stay_in_range_and_partitions_stay_long() {
    for (int sm : {1, 8, 46, 108, 132, 144})
      for (int len : {0, 1, 17, 255, 256, 511, 512, 1000, 3000, 4096, 32768, 131072})
        for (int seqs : {1, 2, 7, 64, 256})
          for (int kvh : {1, 4, 8, 32}) {
            const int s = attention_splits(len, seqs, kvh, sm);
            QVERIFY2(s >= 1 && s <= kMaxSplits, qPrintable(QString("splits %1").arg(s)));
            // Every partition holds at least kMinSplitTokens tokens.
            if (s > 1)
              QVERIFY2(len / s >= kMinSplitTokens, qPrintable(QString("len %1 splits %2").arg(len).arg(s)));
          }
  }

  void short_contexts_never_split() {
    for (int len : {1, kMinSplitTokens / 2, kMinSplitTokens, 2 * kMinSplitTokens - 1})
      QCOMPARE(attention_splits(len, 1, 1, 132), 1);
  }

  void splits_fill_the_device() {
    // Unless capped by the context length or kMaxSplits, blocks = seqs * kv_heads * splits cover every SM.
    for (int sm : {8, 46, 108, 132})
      for (int len : {1024, 3000, 8192, 65536})
        for (int seqs : {1, 3, 16})
          for (int kvh : {1, 4, 8}) {
            const int s = attention_splits(len, seqs, kvh, sm);
            const bool capped = s == kMaxSplits || s == std::max(1, len / kMinSplitTokens);
            if (!capped)
              QVERIFY2((long)s * seqs * kvh >= sm, qPrintable(QString("sm %1 len %2 seqs %3 kvh %4 -> %5")
                                                                  .arg(sm)
                                                                  .arg(len)
                                                                  .arg(seqs)
                                                                  .arg(kvh)
                                                                  .arg(s)));
          }
    // A single long sequence on one KV head splits as far as allowed.
    QCOMPARE(attention_splits(1 << 20, 1, 1, 132), kMaxSplits);
    // Enough sequences already fill the device: no split.
    QCOMPARE(attention_splits(8192, 256, 8, 132), 1);
  }

  void degenerate_inputs() {
    // Zero counts are treated as one (a valid plan, never a division by zero).
    QCOMPARE(attention_splits(4096, 0, 0, 0), attention_splits(4096, 1, 1, 1));
    QVERIFY(attention_splits(4096, 0, 0, 0) >= 1);
    QCOMPARE(attention_splits(-5, 1, 1, 132), 1);
  }

  void lane_kernels_by_batch() {
    using K = DecodeAttention;
    auto kernel = [](K want, bool vec, int D, int seqs, int heads, int kv) {
      return plan_decode_attention(want, vec, D, 512, seqs, heads, kv, 132).kernel;
    };
    // Auto: a block per query head while seqs * heads blocks fit the device twice, then per group.
    QCOMPARE(kernel(K::Auto, true, 64, 1, 32, 4), K::PerHead);
    QCOMPARE(kernel(K::Auto, true, 64, 8, 32, 4), K::PerHead);     // 256 blocks <= 264
    QCOMPARE(kernel(K::Auto, true, 64, 9, 32, 4), K::PerGroup);    // 288 > 264
    QCOMPARE(kernel(K::Auto, true, 128, 64, 32, 8), K::PerGroup);  // groups of 4
    QCOMPARE(kernel(K::Auto, true, 128, 64, 32, 16), K::PerHead);  // groups of 2: a block a head does less
    QCOMPARE(kernel(K::Auto, true, 128, 64, 32, 32), K::PerHead);  // no grouping at all
    QCOMPARE(kernel(K::Auto, true, 256, 64, 32, 8), K::Tiled);     // a group's rows do not fit shared memory
    QCOMPARE(kernel(K::Auto, true, 256, 64, 32, 32), K::PerHead);
    QCOMPARE(kernel(K::Auto, true, 256, 1, 32, 8), K::PerHead);
    QCOMPARE(kernel(K::Auto, true, 64, 0, 0, 0), K::PerHead);  // degenerate counts act as one
    // Rows without 16-byte loads: only the tiled kernel, whatever is asked.
    for (K want : {K::Auto, K::Tiled, K::PerHead, K::PerGroup})
      QCOMPARE(kernel(want, false, 64, 1, 32, 4), K::Tiled);
    // Forced, whatever the batch; a kernel that cannot take the shape falls back to Tiled.
    for (int seqs : {1, 64, 4096}) {
      QCOMPARE(kernel(K::PerHead, true, 64, seqs, 32, 4), K::PerHead);
      QCOMPARE(kernel(K::PerGroup, true, 64, seqs, 32, 4), K::PerGroup);
      QCOMPARE(kernel(K::Tiled, true, 64, seqs, 32, 4), K::Tiled);
    }
    QCOMPARE(kernel(K::PerGroup, true, 256, 1, 32, 4), K::Tiled);
    QCOMPARE(kernel(K::PerHead, true, 512, 1, 32, 4), K::Tiled);
  }

  void lane_splits_hold_a_pass_each() {
    for (DecodeAttention k : {DecodeAttention::PerHead, DecodeAttention::PerGroup})
      for (int sm : {1, 46, 132})
        for (int len : {0, 1, 255, 256, 511, 512, 2048, 3000, 32768})
          for (int seqs : {1, 3, 8, 64})
            for (int heads : {8, 32}) {
              const DecodePlan p = plan_decode_attention(k, true, 64, len, seqs, heads, 4, sm);
              QCOMPARE(p.kernel, k);
              QVERIFY(p.splits >= 1 && p.splits <= kMaxSplits);
              if (p.splits > 1)
                QVERIFY2(len / p.splits >= kLaneSplitTokens,
                         qPrintable(QString("len %1 -> %2").arg(len).arg(p.splits)));
              const long blocks_per_split =
                  (long)seqs * (k == DecodeAttention::PerHead ? heads : 4 * ((heads / 4 + 7) / 8));
              const bool capped = p.splits == kMaxSplits || p.splits == std::max(1, len / kLaneSplitTokens);
              if (!capped) QVERIFY(p.splits * blocks_per_split >= sm);
            }
    // One sequence of the 1.1B shape (32 heads, 4 KV heads) on 132 SMs: no
    // split up to 511 tokens; a graph captured for 2048 tokens splits 8 ways
    // (its short replays then take the whole-context path).
    auto splits = [](DecodeAttention k, int len, int seqs) {
      return plan_decode_attention(k, true, 64, len, seqs, 32, 4, 132).splits;
    };
    QCOMPARE(splits(DecodeAttention::Auto, 130, 1), 1);
    QCOMPARE(splits(DecodeAttention::Auto, 2048, 1), 8);
    QCOMPARE(splits(DecodeAttention::Auto, 1 << 20, 1), 9);  // 264 blocks wanted / 32 a split
    QCOMPARE(splits(DecodeAttention::Auto, 2048, 64), 2);    // per group: 256 blocks a split
    QCOMPARE(splits(DecodeAttention::Tiled, 2048, 1), attention_splits(2048, 1, 4, 132));
  }

  void workspace_covers_worst_case() {
    for (int rows : {1, 7, 64, 256})
      for (int heads : {1, 8, 32})
        for (int d : {64, 80, 128, 256}) {
          const size_t need = (size_t)rows * heads * kMaxSplits * (d + 2) * sizeof(float);
          QVERIFY(attention_workspace_bytes(rows, heads, d) >= need);
          // Any split count the planner may pick fits the planned workspace.
          for (int len : {4096, 1 << 20}) {
            const int s = attention_splits(len, rows, 1, 132);
            QVERIFY(s == 1 ||
                    attention_workspace_bytes(rows, heads, d) >= (size_t)rows * heads * s * (d + 2) * 4);
          }
        }
    QCOMPARE(attention_workspace_bytes(64, 32, 128, 1), (size_t)0);  // no splits, no partials
    QCOMPARE(attention_workspace_bytes(0, 32, 128), (size_t)0);
    // In-kernel merging counts partitions per (sequence, block row): at most a row's heads.
    QCOMPARE(attention_split_counters(64, 32), (size_t)64 * 32);
    QCOMPARE(attention_split_counters(0, 32), (size_t)0);
    QCOMPARE(attention_split_counters(64, 0), (size_t)0);
  }

  // The streaming GEMV: every lane's loads are whole 16-byte vectors (32
  // lanes x 16 bytes of weights per step) and x fits shared memory whole.
  void gemv_streams_by_dtype_and_width() {
    using brisk::DType;
    QVERIFY(gemv_streams(DType::F16, 1, 2048));  // the 1.1B shape
    QVERIFY(gemv_streams(DType::F16, 8, 1024));  // 32 KiB of x
    QVERIFY(gemv_streams(DType::F32, 1, 128));   // 4 weights a load
    QVERIFY(!gemv_streams(DType::F32, 1, 192));
    QVERIFY(gemv_streams(DType::BF16, 1, 256));  // 8 a load
    QVERIFY(!gemv_streams(DType::BF16, 1, 384));
    QVERIFY(gemv_streams(DType::I8, 1, 512));  // 16 a load
    QVERIFY(!gemv_streams(DType::I8, 1, 256));
    QVERIFY(gemv_streams(DType::F8_E4M3, 2, 5632 - 5632 % 512));
    QVERIFY(!gemv_streams(DType::Q8_0, 1, 2048));  // 34-byte blocks: the blocked kernel
    QVERIFY(!gemv_streams(DType::I32, 1, 2048));
    // x whole in shared memory: 8 rows of 2048 F32 are 64 KiB, over the budget; 5 rows fit.
    QVERIFY(!gemv_streams(DType::F16, 8, 2048));
    QVERIFY(gemv_streams(DType::F16, 5, 2048));
    // Over kGemvMaxRows rows run in groups of that many: the group decides.
    QCOMPARE(gemv_streams(DType::F16, 11, 1024), gemv_streams(DType::F16, 8, 1024));
    QVERIFY(!gemv_streams(DType::F16, 0, 2048));
    QVERIFY(!gemv_streams(DType::F16, 1, 0));
  }

  void rope_fold_needs_whole_heads_and_unscaled_caches() {
    using brisk::DType;
    const int llama[3] = {2048, 256, 256};  // 32 heads, 4 KV heads of 64
    QVERIFY(gemv_rope_foldable(DType::F16, 1, 2048, llama, 64, 64, DType::F32, DType::F32));
    QVERIFY(gemv_rope_foldable(DType::BF16, 4, 2048, llama, 64, 64, DType::F16, DType::BF16));
    QVERIFY(
        gemv_rope_foldable(DType::F16, 1, 2048, llama, 64, 32, DType::F16, DType::F16));  // partial rotation
    QVERIFY(gemv_rope_foldable(DType::F16, 1, 2048, llama, 64, 0, DType::F16, DType::F16));  // none rotated
    // A scaled cache needs a whole head's maximum before it encodes anything.
    QVERIFY(!gemv_rope_foldable(DType::F16, 1, 2048, llama, 64, 64, DType::I8, DType::F32));
    QVERIFY(!gemv_rope_foldable(DType::F16, 1, 2048, llama, 64, 64, DType::F32, DType::F8_E4M3));
    // Only where the streaming kernel runs.
    QVERIFY(!gemv_rope_foldable(DType::Q8_0, 1, 2048, llama, 64, 64, DType::F32, DType::F32));
    QVERIFY(!gemv_rope_foldable(DType::F16, 8, 2048, llama, 64, 64, DType::F32, DType::F32));
    // Rotation pairs stay inside a head, and heads inside a weight.
    QVERIFY(!gemv_rope_foldable(DType::F16, 1, 2048, llama, 63, 62, DType::F32, DType::F32));
    const int ragged[3] = {2048, 256, 250};
    QVERIFY(!gemv_rope_foldable(DType::F16, 1, 2048, ragged, 64, 64, DType::F32, DType::F32));
    QVERIFY(!gemv_rope_foldable(DType::F16, 1, 2048, llama, 64, 66, DType::F32, DType::F32));
    const int wide[3] = {4 * 320, 320, 320};  // head_dim 320: over rope_kv_write's 256
    QVERIFY(!gemv_rope_foldable(DType::F16, 1, 2048, wide, 320, 320, DType::F32, DType::F32));
    const int empty[3] = {2048, 0, 0};
    QVERIFY(!gemv_rope_foldable(DType::F16, 1, 2048, empty, 64, 64, DType::F32, DType::F32));
  }
};

QTEST_APPLESS_MAIN(TestCudaLaunchPlan)
#include "test_cuda_launch_plan.moc"
