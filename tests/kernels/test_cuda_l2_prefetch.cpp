// Planning of the decode step's L2 weight prefetch
// (kernels/cuda/l2_prefetch_plan.cpp): which leading rows of which weights
// fit the budget. Host-only: runs everywhere, no device needed (the GPU
// suite checks that a decode with the prefetch gives the same tokens).
#include <QtTest/QtTest>
#include <random>
#include <vector>

#include "kernels/cuda/l2_prefetch.h"

using namespace brisk::cuda;

namespace {

// Distinct fake addresses, far apart (never dereferenced).
const void* at(uintptr_t mib) { return reinterpret_cast<const void*>(mib << 20); }

void expect_range(const PrefetchRange& r, const void* data, size_t bytes) {
  QCOMPARE(r.data, data);
  QCOMPARE(r.bytes, bytes);
}

// The plan worked out a row step at a time (the budget spent by subtraction,
// not divided): what plan_l2_prefetch must equal.
std::vector<PrefetchRange> stepwise_plan(const std::vector<PrefetchPart>& parts, size_t budget) {
  std::vector<PrefetchRange> out;
  size_t left = budget;
  for (size_t i = 0; i < parts.size();) {
    size_t end = i + 1;
    while (end < parts.size() && parts[end].group == parts[i].group) ++end;
    bool empty = false;
    size_t step = 0, reading = 0;
    for (size_t j = i; j < end; ++j) {
      empty = empty || !parts[j].data || parts[j].rows <= 0;
      step += parts[j].row_bytes;
      reading += parts[j].row_bytes > 0;
    }
    if (empty || step == 0) {
      i = end;
      continue;
    }
    int64_t taken = 0;
    bool cut = false;
    while (!cut) {
      bool all = true;
      for (size_t j = i; j < end; ++j) all = all && taken < parts[j].rows;
      if (!all) break;
      if (left < step)
        cut = true;
      else
        left -= step, ++taken;
    }
    if (taken > 0) {
      if (out.size() + reading > (size_t)kMaxPrefetchRanges) break;
      for (size_t j = i; j < end; ++j)
        if (parts[j].row_bytes > 0) out.push_back({parts[j].data, (size_t)taken * parts[j].row_bytes});
    }
    if (cut) break;
    i = end;
  }
  return out;
}

}  // namespace

class TestCudaL2Prefetch : public QObject {
  Q_OBJECT
 private slots:
  void everything_fits() {
    const PrefetchPart parts[] = {{at(1), 100, 10, 0}, {at(2), 64, 5, 1}, {at(3), 32, 5, 1}};
    const auto r = plan_l2_prefetch(parts, 3, 1 << 20);
    QCOMPARE(r.size(), size_t(3));
    expect_range(r[0], at(1), 1000);
    expect_range(r[1], at(2), 320);
    expect_range(r[2], at(3), 160);
  }

  void budget_ends_inside_a_single_weight() {
    const PrefetchPart parts[] = {{at(1), 100, 10, 0}, {at(2), 10, 5, 1}};
    // 350 bytes: three whole rows of the first weight, none of the next (the plan stops there).
    const auto r = plan_l2_prefetch(parts, 2, 350);
    QCOMPARE(r.size(), size_t(1));
    expect_range(r[0], at(1), 300);
  }

  void a_group_advances_row_by_row() {
    // wo whole (1000 bytes), then gate and up a row each at a time (8 + 8 bytes a step).
    const PrefetchPart parts[] = {{at(1), 100, 10, 0}, {at(2), 8, 50, 1}, {at(3), 8, 50, 1}};
    const auto r = plan_l2_prefetch(parts, 3, 1000 + 16 * 7 + 15);
    QCOMPARE(r.size(), size_t(3));
    expect_range(r[0], at(1), 1000);
    expect_range(r[1], at(2), 56);  // 7 rows of each: an 8th row pair does not fit in the 15 left
    expect_range(r[2], at(3), 56);
    // A group of parts with different row counts takes the fewest.
    const PrefetchPart uneven[] = {{at(4), 4, 3, 2}, {at(5), 4, 9, 2}};
    const auto u = plan_l2_prefetch(uneven, 2, 1 << 20);
    QCOMPARE(u.size(), size_t(2));
    expect_range(u[0], at(4), 12);
    expect_range(u[1], at(5), 12);
  }

  void nothing_past_a_group_the_budget_cut() {
    // The second group is cut; the third, tiny, would fit in what is left but is not planned:
    // the kernels read in this order, so bytes for the third would only push out the second's.
    const PrefetchPart parts[] = {{at(1), 100, 2, 0}, {at(2), 100, 10, 1}, {at(3), 1, 1, 2}};
    const auto r = plan_l2_prefetch(parts, 3, 450);
    QCOMPARE(r.size(), size_t(2));
    expect_range(r[0], at(1), 200);
    expect_range(r[1], at(2), 200);
  }

  void empty_parts_and_budgets() {
    const PrefetchPart parts[] = {
        {nullptr, 100, 10, 0}, {at(2), 100, 0, 1}, {at(3), 0, 10, 2}, {at(4), 10, 3, 3}};
    // Parts with no data, no rows or no row bytes are skipped, not the end of the plan.
    const auto r = plan_l2_prefetch(parts, 4, 1 << 20);
    QCOMPARE(r.size(), size_t(1));
    expect_range(r[0], at(4), 30);
    QVERIFY(plan_l2_prefetch(parts + 3, 1, 0).empty());
    QVERIFY(plan_l2_prefetch(parts + 3, 1, 9).empty());  // not one row
    QVERIFY(plan_l2_prefetch(parts, 0, 1 << 20).empty());
  }

  void an_empty_part_skips_its_group() {
    // up has no data: gate and up are skipped together (a warp reads both), and planning goes on.
    const PrefetchPart parts[] = {
        {at(1), 10, 2, 0}, {at(2), 10, 5, 1}, {nullptr, 10, 5, 1}, {at(4), 10, 3, 2}};
    const auto r = plan_l2_prefetch(parts, 4, 1 << 20);
    QCOMPARE(r.size(), size_t(2));
    expect_range(r[0], at(1), 20);
    expect_range(r[1], at(4), 30);
  }

  void a_budget_past_any_size() {
    // left / step far above 2^63 rows: all of it, no wrap to nothing.
    const PrefetchPart parts[] = {{at(1), 1, 1000, 0}, {at(2), 1, 7, 1}};
    const auto r = plan_l2_prefetch(parts, 2, SIZE_MAX);
    QCOMPARE(r.size(), size_t(2));
    expect_range(r[0], at(1), 1000);
    expect_range(r[1], at(2), 7);
  }

  void a_group_is_never_split_by_the_range_limit() {
    std::vector<PrefetchPart> parts;
    for (int i = 0; i < kMaxPrefetchRanges - 1; ++i) parts.push_back({at(1 + i), 16, 4, i});
    parts.push_back({at(50), 16, 4, 100});  // a pair: one slot left, so neither is planned
    parts.push_back({at(51), 16, 4, 100});
    const auto r = plan_l2_prefetch(parts.data(), (int)parts.size(), 1 << 20);
    QCOMPARE(r.size(), size_t(kMaxPrefetchRanges - 1));
    for (const PrefetchRange& x : r) QVERIFY(x.data != at(50) && x.data != at(51));
  }

  void the_demo_model_in_the_gpu_test() {
    // tests/gpu/test_cuda_backend.cpp's small budget on the built-in demo model (dim 256, FFN 768,
    // F16): wo whole (256 rows of 512 bytes) and 100 of the 768 gate/up row pairs, the 101st cut.
    const PrefetchPart parts[] = {{at(1), 512, 256, 0}, {at(2), 512, 768, 1}, {at(3), 512, 768, 1}};
    const auto r = plan_l2_prefetch(parts, 3, (128 << 10) + 100 * 1024 + 512);
    QCOMPARE(r.size(), size_t(3));
    expect_range(r[0], at(1), 128 << 10);
    expect_range(r[1], at(2), 100 * 512);
    expect_range(r[2], at(3), 100 * 512);
  }

  void at_most_the_kernel_argument_ranges() {
    std::vector<PrefetchPart> parts;
    for (int i = 0; i < kMaxPrefetchRanges + 3; ++i) parts.push_back({at(1 + i), 16, 4, i});
    const auto r = plan_l2_prefetch(parts.data(), (int)parts.size(), 1 << 20);
    QCOMPARE(r.size(), size_t(kMaxPrefetchRanges));
    for (int i = 0; i < kMaxPrefetchRanges; ++i) expect_range(r[i], at(1 + i), 64);
  }

  void random_plans_stay_inside_their_parts_and_budget() {
    std::mt19937 rng(11);
    for (int trial = 0; trial < 2000; ++trial) {
      const int count = 1 + (int)(rng() % 6);
      std::vector<PrefetchPart> parts;
      int group = 0;
      for (int i = 0; i < count; ++i) {
        if (i > 0 && rng() % 2) ++group;
        parts.push_back({at(1 + i), 1 + rng() % 300, (int64_t)(rng() % 40), group});
      }
      const size_t budget = rng() % 20000;
      const auto r = plan_l2_prefetch(parts.data(), count, budget);
      // Exactly the rows a step at a time gives: as many as fit, none past a cut group.
      const auto want = stepwise_plan(parts, budget);
      QCOMPARE(r.size(), want.size());
      for (size_t i = 0; i < r.size(); ++i) expect_range(r[i], want[i].data, want[i].bytes);
      size_t total = 0;
      size_t next = 0;  // ranges come in part order, each at its part's start
      for (const PrefetchRange& x : r) {
        while (next < parts.size() && parts[next].data != x.data) ++next;
        QVERIFY2(next < parts.size(), "a range that starts at no part, or out of order");
        const PrefetchPart& p = parts[next];
        QVERIFY(x.bytes > 0);
        QCOMPARE(x.bytes % p.row_bytes, size_t(0));
        QVERIFY(x.bytes <= p.row_bytes * (size_t)p.rows);
        // A part of a group takes as many rows as its neighbours in the plan.
        for (const PrefetchRange& y : r)
          for (const PrefetchPart& q : parts)
            if (q.data == y.data && q.group == p.group)
              QCOMPARE(y.bytes / q.row_bytes, x.bytes / p.row_bytes);
        total += x.bytes;
      }
      QVERIFY(total <= budget);
    }
  }

  void the_1_1b_layer_on_an_h100() {
    // 50 MiB of L2: a 25 MiB budget takes wo (2048 rows of 4 KiB, F16) whole, then
    // 2176 rows each of gate and up (8 KiB a pair) of their 5632.
    QCOMPARE(l2_prefetch_budget(50u << 20), size_t(25u << 20));
    const PrefetchPart parts[] = {{at(1), 4096, 2048, 0}, {at(100), 4096, 5632, 1}, {at(200), 4096, 5632, 1}};
    const auto r = plan_l2_prefetch(parts, 3, l2_prefetch_budget(50u << 20));
    QCOMPARE(r.size(), size_t(3));
    expect_range(r[0], at(1), 2048 * 4096);
    expect_range(r[1], at(100), 2176 * 4096);
    expect_range(r[2], at(200), 2176 * 4096);
  }

  void the_budget_override() {
    set_l2_prefetch_budget(8u << 20);
    QCOMPARE(l2_prefetch_budget(50u << 20), size_t(8u << 20));
    set_l2_prefetch_budget(0);
    QCOMPARE(l2_prefetch_budget(40u << 20), size_t(20u << 20));
  }
};

QTEST_APPLESS_MAIN(TestCudaL2Prefetch)
#include "test_cuda_l2_prefetch.moc"
