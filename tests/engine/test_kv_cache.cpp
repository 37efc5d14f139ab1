// The paged KV cache: the block allocator (allocation, refcounts, double
// free), block tables (all-or-nothing growth, slot mapping across
// non-contiguous blocks), fork and copy-on-write, the waste accounting and
// the static policy's up-front reservation.
#include <QtTest>
#include <algorithm>
#include <cstdint>
#include <set>
#include <stdexcept>
#include <utility>
#include <vector>

#include "cache/block_allocator.h"
#include "cache/kv_cache.h"

using brisk::BlockAllocator;
using brisk::BlockTable;
using brisk::KvCache;

namespace {

std::vector<int32_t> blocks_of(const KvCache& c, uint64_t seq) {
  const BlockTable* t = c.table(seq);
  return t ? t->blocks : std::vector<int32_t>{};
}

int64_t tokens_of(const KvCache& c, uint64_t seq) {
  const BlockTable* t = c.table(seq);
  return t ? t->num_tokens : -1;
}

}  // namespace

class TestKvCache : public QObject {
  Q_OBJECT

 private slots:
  // ---- BlockAllocator ----

  void allocateUntilExhausted() {
    BlockAllocator a(5, 16);
    QCOMPARE(a.num_blocks(), int64_t(5));
    QCOMPARE(a.num_free(), int64_t(5));
    QCOMPARE(a.block_size(), 16);
    std::set<int32_t> got;
    for (int i = 0; i < 5; ++i) {
      const int32_t b = a.allocate();
      QVERIFY2(b >= 0 && b < 5, qPrintable(QString("block id %1 out of range").arg(b)));
      QCOMPARE(a.refcount(b), 1);
      got.insert(b);
      QCOMPARE(a.num_used(), int64_t(i + 1));
    }
    QCOMPARE(got.size(), size_t(5));  // all distinct
    QCOMPARE(a.num_free(), int64_t(0));
    QCOMPARE(a.allocate(), int32_t(-1));
    QCOMPARE(a.allocate(), int32_t(-1));  // stays exhausted, no state change
    QCOMPARE(a.num_used(), int64_t(5));
  }

  void decrefFrees() {
    BlockAllocator a(3, 4);
    const int32_t b0 = a.allocate();
    const int32_t b1 = a.allocate();
    const int32_t b2 = a.allocate();
    QCOMPARE(a.allocate(), int32_t(-1));
    a.decref(b1);
    QCOMPARE(a.refcount(b1), 0);
    QCOMPARE(a.num_free(), int64_t(1));
    // The freed block is handed out again.
    QCOMPARE(a.allocate(), b1);
    QCOMPARE(a.refcount(b1), 1);
    // incref keeps a block alive across one decref.
    a.incref(b0);
    QCOMPARE(a.refcount(b0), 2);
    a.decref(b0);
    QCOMPARE(a.refcount(b0), 1);
    QCOMPARE(a.num_free(), int64_t(0));
    a.decref(b0);
    QCOMPARE(a.num_free(), int64_t(1));
    a.decref(b1);
    a.decref(b2);
    QCOMPARE(a.num_free(), int64_t(3));
    QCOMPARE(a.num_used(), int64_t(0));
  }

  void doubleFreeThrows() {
    BlockAllocator a(2, 4);
    const int32_t b = a.allocate();
    a.decref(b);
    QVERIFY_THROWS_EXCEPTION(std::logic_error, a.decref(b));
    // The failed decref changed nothing: the block is free exactly once.
    QCOMPARE(a.num_free(), int64_t(2));
    QCOMPARE(a.refcount(b), 0);
    // Never-allocated blocks cannot be freed or shared either.
    const int32_t other = b == 0 ? 1 : 0;
    QVERIFY_THROWS_EXCEPTION(std::logic_error, a.decref(other));
    QVERIFY_THROWS_EXCEPTION(std::logic_error, a.incref(other));
    QCOMPARE(a.num_free(), int64_t(2));
    // The two blocks come back out, once each.
    std::set<int32_t> got{a.allocate(), a.allocate()};
    QCOMPARE(got, (std::set<int32_t>{0, 1}));
    QCOMPARE(a.allocate(), int32_t(-1));
  }

  // ---- KvCache ----

  void appendSlotsAllOrNothing() {
    KvCache c(4, 16);  // 64 slots
    QVERIFY(c.append_slots(1, 20));  // 2 blocks
    QCOMPARE(c.num_used(), int64_t(2));
    QCOMPARE(tokens_of(c, 1), int64_t(20));
    const std::vector<int32_t> before = blocks_of(c, 1);

    // 20 + 45 = 65 tokens need 5 blocks; only 2 more exist.
    QVERIFY(!c.append_slots(1, 45));
    QCOMPARE(c.num_used(), int64_t(2));
    QCOMPARE(c.num_free(), int64_t(2));
    QCOMPARE(tokens_of(c, 1), int64_t(20));
    QCOMPARE(blocks_of(c, 1), before);

    // A new sequence that does not fit leaves no (empty) table behind.
    QVERIFY(!c.append_slots(2, 33));  // 3 blocks
    QVERIFY(!c.has(2));
    QCOMPARE(c.num_used(), int64_t(2));

    // Exactly filling the cache works; then one more token fails.
    QVERIFY(c.append_slots(1, 44));  // 64 tokens, 4 blocks
    QCOMPARE(c.num_used(), int64_t(4));
    QCOMPARE(tokens_of(c, 1), int64_t(64));
    QVERIFY(!c.append_slots(1, 1));
    QCOMPARE(tokens_of(c, 1), int64_t(64));
    QCOMPARE(blocks_of(c, 1).size(), size_t(4));
    QVERIFY(!c.append_slots(3, 1));
    QVERIFY(!c.has(3));

    c.free(1);
    QVERIFY(!c.has(1));
    QCOMPARE(c.num_free(), int64_t(4));
    c.free(1);  // freeing an unknown sequence is a no-op
    QCOMPARE(c.num_free(), int64_t(4));
    QVERIFY(c.take_pending_copies().empty());
  }

  void appendWithinLastBlockAllocatesNothing() {
    KvCache c(4, 8);
    QVERIFY(c.append_slots(1, 3));
    QCOMPARE(c.num_used(), int64_t(1));
    for (int i = 0; i < 5; ++i) QVERIFY(c.append_slots(1, 1));  // 8 tokens: still one block
    QCOMPARE(c.num_used(), int64_t(1));
    QVERIFY(c.append_slots(1, 1));  // 9th token opens a second block
    QCOMPARE(c.num_used(), int64_t(2));
    QCOMPARE(c.blocks_needed(0), int64_t(0));
    QCOMPARE(c.blocks_needed(1), int64_t(1));
    QCOMPARE(c.blocks_needed(8), int64_t(1));
    QCOMPARE(c.blocks_needed(9), int64_t(2));
  }

  void slotMappingAcrossNonContiguousBlocks() {
    const int bs = 4;
    KvCache c(8, bs);
    // Interleave two sequences so each gets non-contiguous blocks.
    QVERIFY(c.append_slots(1, 4));
    QVERIFY(c.append_slots(2, 4));
    QVERIFY(c.append_slots(1, 4));
    QVERIFY(c.append_slots(2, 2));
    QVERIFY(c.append_slots(1, 3));  // seq 1: 11 tokens, 3 blocks
    const std::vector<int32_t> b1 = blocks_of(c, 1);
    const std::vector<int32_t> b2 = blocks_of(c, 2);
    QCOMPARE(b1.size(), size_t(3));
    QCOMPARE(b2.size(), size_t(2));
    bool contiguous = true;
    for (size_t i = 1; i < b1.size(); ++i) contiguous &= b1[i] == b1[i - 1] + 1;
    QVERIFY2(!contiguous, "the interleaving should have given seq 1 non-contiguous blocks");
    std::set<int32_t> all(b1.begin(), b1.end());
    all.insert(b2.begin(), b2.end());
    QCOMPARE(all.size(), size_t(5));  // no block shared

    std::set<int32_t> seen;
    for (int64_t pos = 0; pos < 11; ++pos) {
      const int32_t s = c.slot(1, pos);
      QCOMPARE(s, b1[pos / bs] * bs + (int32_t)(pos % bs));
      seen.insert(s);
    }
    for (int64_t pos = 0; pos < 6; ++pos) {
      const int32_t s = c.slot(2, pos);
      QCOMPARE(s, b2[pos / bs] * bs + (int32_t)(pos % bs));
      QVERIFY2(!seen.count(s), "two sequences map a position to the same slot");
      seen.insert(s);
    }
    // Hand-checked: with a LIFO allocator starting at block 0, seq 1 holds
    // blocks 0, 2, 4 and seq 2 holds 1, 3.
    QCOMPARE(b1, (std::vector<int32_t>{0, 2, 4}));
    QCOMPARE(b2, (std::vector<int32_t>{1, 3}));
    QCOMPARE(c.slot(1, 0), 0);
    QCOMPARE(c.slot(1, 4), 8);
    QCOMPARE(c.slot(1, 10), 18);
    QCOMPARE(c.slot(2, 5), 13);
    // A position beyond the blocks, or an unknown sequence, throws.
    QVERIFY_THROWS_EXCEPTION(std::out_of_range, c.slot(1, 12));
    QVERIFY_THROWS_EXCEPTION(std::out_of_range, c.slot(99, 0));

    // Reuse after free: freed blocks come back in a different order, and
    // the mapping follows the table, not allocation order.
    c.free(1);
    QVERIFY(c.append_slots(3, 12));
    const std::vector<int32_t> b3 = blocks_of(c, 3);
    QCOMPARE(b3.size(), size_t(3));
    for (int64_t pos = 0; pos < 12; ++pos) QCOMPARE(c.slot(3, pos), b3[pos / bs] * bs + (int32_t)(pos % bs));
  }

  void forkSharesBlocks() {
    KvCache c(6, 4);
    QVERIFY(c.append_slots(1, 10));  // 3 blocks, last one half full
    const std::vector<int32_t> pb = blocks_of(c, 1);
    c.fork(1, 2);
    QCOMPARE(blocks_of(c, 2), pb);
    QCOMPARE(tokens_of(c, 2), int64_t(10));
    for (int32_t b : pb) QCOMPARE(c.allocator().refcount(b), 2);
    QCOMPARE(c.num_used(), int64_t(3));  // nothing new allocated
    for (int64_t pos = 0; pos < 10; ++pos) QCOMPARE(c.slot(2, pos), c.slot(1, pos));

    QVERIFY_THROWS_EXCEPTION(std::logic_error, c.fork(1, 2));  // child exists
    QVERIFY_THROWS_EXCEPTION(std::out_of_range, c.fork(42, 43));  // no parent
    QVERIFY(!c.has(43));

    // Freeing the parent keeps the child's blocks alive.
    c.free(1);
    QVERIFY(!c.has(1));
    QCOMPARE(c.num_used(), int64_t(3));
    for (int32_t b : pb) QCOMPARE(c.allocator().refcount(b), 1);
    QCOMPARE(blocks_of(c, 2), pb);
    c.free(2);
    QCOMPARE(c.num_used(), int64_t(0));
    for (int32_t b : pb) QCOMPARE(c.allocator().refcount(b), 0);
  }

  void copyOnWriteOfPartlyFilledBlock() {
    KvCache c(8, 4);
    QVERIFY(c.append_slots(1, 6));  // blocks [A, B], B holds 2 of 4
    const std::vector<int32_t> pb = blocks_of(c, 1);
    const int32_t A = pb[0], B = pb[1];
    c.fork(1, 2);
    QCOMPARE(c.num_used(), int64_t(2));
    QVERIFY(c.take_pending_copies().empty());

    // The child writes position 6, inside the shared block B: it gets a
    // private copy first.
    QVERIFY(c.append_slots(2, 1));
    const std::vector<int32_t> cb = blocks_of(c, 2);
    QCOMPARE(cb.size(), size_t(2));
    QCOMPARE(cb[0], A);  // the full block stays shared
    const int32_t B2 = cb[1];
    QVERIFY(B2 != B && B2 != A);
    const auto copies = c.take_pending_copies();
    QCOMPARE(copies.size(), size_t(1));
    QCOMPARE(copies[0], std::make_pair(B, B2));
    QVERIFY(c.take_pending_copies().empty());  // taken once
    // The parent is untouched.
    QCOMPARE(blocks_of(c, 1), pb);
    QCOMPARE(tokens_of(c, 1), int64_t(6));
    QCOMPARE(tokens_of(c, 2), int64_t(7));
    QCOMPARE(c.allocator().refcount(A), 2);
    QCOMPARE(c.allocator().refcount(B), 1);
    QCOMPARE(c.allocator().refcount(B2), 1);
    QCOMPARE(c.num_used(), int64_t(3));
    // The child's new position maps into its copy, the parent's into B.
    QCOMPARE(c.slot(2, 6), B2 * 4 + 2);
    QCOMPARE(c.slot(2, 5), B2 * 4 + 1);
    QCOMPARE(c.slot(1, 5), B * 4 + 1);

    // Now B is private to the parent: its append writes in place.
    QVERIFY(c.append_slots(1, 1));
    QVERIFY(c.take_pending_copies().empty());
    QCOMPARE(blocks_of(c, 1), pb);
    QCOMPARE(c.num_used(), int64_t(3));
    // And the child's further appends need no copy either.
    QVERIFY(c.append_slots(2, 1));
    QVERIFY(c.take_pending_copies().empty());
    QCOMPARE(blocks_of(c, 2), cb);
  }

  void copyOnWriteSpanningBlocks() {
    // A multi-token append into a shared partial block copies it and adds
    // the new blocks, all or nothing.
    KvCache c(5, 4);
    QVERIFY(c.append_slots(1, 6));  // [A, B]
    c.fork(1, 2);
    QCOMPARE(c.num_free(), int64_t(3));
    // 6 + 10 = 16 tokens = 4 blocks: 2 new + 1 copy = 3 free blocks needed.
    // Ask for one more token than fits: needs 4, have 3.
    QVERIFY(!c.append_slots(2, 11));
    QCOMPARE(c.num_free(), int64_t(3));
    QCOMPARE(blocks_of(c, 2), blocks_of(c, 1));
    QCOMPARE(tokens_of(c, 2), int64_t(6));
    QVERIFY(c.take_pending_copies().empty());
    QVERIFY(c.append_slots(2, 10));
    QCOMPARE(c.num_free(), int64_t(0));
    QCOMPARE(blocks_of(c, 2).size(), size_t(4));
    QCOMPARE(c.take_pending_copies().size(), size_t(1));
    QCOMPARE(blocks_of(c, 1).size(), size_t(2));
  }

  void copyOnWriteForkedChildFreedParent() {
    // When the parent is gone, the child owns the block alone: no copy.
    KvCache c(4, 4);
    QVERIFY(c.append_slots(1, 5));
    c.fork(1, 2);
    c.free(1);
    const std::vector<int32_t> cb = blocks_of(c, 2);
    QVERIFY(c.append_slots(2, 1));
    QVERIFY(c.take_pending_copies().empty());
    QCOMPARE(blocks_of(c, 2), cb);
    QCOMPARE(c.num_used(), int64_t(2));
  }

  void noCopyWhenLastBlockFull() {
    KvCache c(6, 4);
    QVERIFY(c.append_slots(1, 8));  // two full blocks
    const std::vector<int32_t> pb = blocks_of(c, 1);
    c.fork(1, 2);
    QVERIFY(c.append_slots(2, 1));  // position 8 opens a fresh block
    QVERIFY(c.take_pending_copies().empty());
    const std::vector<int32_t> cb = blocks_of(c, 2);
    QCOMPARE(cb.size(), size_t(3));
    QCOMPARE(cb[0], pb[0]);
    QCOMPARE(cb[1], pb[1]);
    QVERIFY(cb[2] != pb[0] && cb[2] != pb[1]);
    QCOMPARE(c.allocator().refcount(pb[0]), 2);
    QCOMPARE(c.allocator().refcount(pb[1]), 2);
    QCOMPARE(c.allocator().refcount(cb[2]), 1);
    QCOMPARE(c.num_used(), int64_t(3));
    QCOMPARE(blocks_of(c, 1), pb);
    // The parent's own next token also opens its own fresh block.
    QVERIFY(c.append_slots(1, 1));
    QVERIFY(c.take_pending_copies().empty());
    QCOMPARE(c.num_used(), int64_t(4));
    QVERIFY(blocks_of(c, 1)[2] != cb[2]);
  }

  void wasteAccounting() {
    KvCache c(16, 16);
    QCOMPARE(c.slots_allocated(), int64_t(0));
    QCOMPARE(c.slots_filled(), int64_t(0));
    QVERIFY(c.append_slots(1, 1));   // 1 block
    QVERIFY(c.append_slots(2, 16));  // 1 block
    QVERIFY(c.append_slots(3, 17));  // 2 blocks
    QVERIFY(c.append_slots(4, 40));  // 3 blocks
    QCOMPARE(c.num_used(), int64_t(7));
    QCOMPARE(c.slots_allocated(), int64_t((1 + 1 + 2 + 3) * 16));  // 112
    QCOMPARE(c.slots_filled(), int64_t(1 + 16 + 17 + 40));          // 74

    // A fork shares every block: nothing new allocated, nothing counted twice.
    c.fork(4, 5);
    QCOMPARE(c.slots_allocated(), int64_t(112));
    QCOMPARE(c.slots_filled(), int64_t(74));
    // The child's copy-on-write of its 8/16 last block adds one block
    // (16 slots) holding 8 + 1 tokens.
    QVERIFY(c.append_slots(5, 1));
    QCOMPARE(c.slots_allocated(), int64_t(128));
    QCOMPARE(c.slots_filled(), int64_t(74 + 9));

    c.free(3);
    QCOMPARE(c.slots_allocated(), int64_t(96));
    QCOMPARE(c.slots_filled(), int64_t(83 - 17));
    c.free(1);
    c.free(2);
    c.free(4);
    c.free(5);
    QCOMPARE(c.slots_allocated(), int64_t(0));
    QCOMPARE(c.slots_filled(), int64_t(0));
  }

  void wasteAccountingSharedPartialBlock() {
    // A shared, partly filled block counts once, filled up to the larger
    // holder; the parent growing in place is seen through the child.
    KvCache c(8, 16);
    QVERIFY(c.append_slots(1, 20));
    c.fork(1, 2);
    QCOMPARE(c.slots_allocated(), int64_t(32));
    QCOMPARE(c.slots_filled(), int64_t(20));
    QVERIFY(c.append_slots(1, 3));  // parent copies (the block is shared)
    QCOMPARE(c.take_pending_copies().size(), size_t(1));
    QCOMPARE(c.slots_allocated(), int64_t(48));
    QCOMPARE(c.slots_filled(), int64_t(16 + 4 + 7));
  }

  void reserveForStaticBatching() {
    KvCache c(10, 4);
    // Reserve a whole sequence (prompt + max_tokens) up front.
    QVERIFY(c.reserve(1, 18));  // 5 blocks
    QCOMPARE(c.num_used(), int64_t(5));
    QCOMPARE(tokens_of(c, 1), int64_t(0));  // reserved, not filled
    QCOMPARE(c.slots_allocated(), int64_t(20));
    QCOMPARE(c.slots_filled(), int64_t(0));
    const std::vector<int32_t> reserved = blocks_of(c, 1);

    // Appends within the reservation allocate nothing.
    QVERIFY(c.append_slots(1, 7));  // prompt
    for (int i = 0; i < 11; ++i) QVERIFY(c.append_slots(1, 1));  // decode to 18
    QCOMPARE(tokens_of(c, 1), int64_t(18));
    QCOMPARE(blocks_of(c, 1), reserved);
    QCOMPARE(c.num_used(), int64_t(5));
    QCOMPARE(c.slots_filled(), int64_t(18));
    for (int64_t pos = 0; pos < 18; ++pos) QCOMPARE(c.slot(1, pos), reserved[pos / 4] * 4 + (int32_t)(pos % 4));

    // A reservation that does not fit changes nothing and leaves no table.
    QVERIFY(!c.reserve(2, 21));  // 6 blocks, 5 free
    QVERIFY(!c.has(2));
    QCOMPARE(c.num_free(), int64_t(5));
    QVERIFY(c.reserve(2, 20));  // exactly 5
    QCOMPARE(c.num_free(), int64_t(0));
    // Reserving no more than is held is a no-op that succeeds.
    QVERIFY(c.reserve(2, 8));
    QCOMPARE(blocks_of(c, 2).size(), size_t(5));
    // Growing a reservation past the cache fails without change.
    QVERIFY(!c.reserve(2, 24));
    QCOMPARE(blocks_of(c, 2).size(), size_t(5));
    c.free(1);
    c.free(2);
    QCOMPARE(c.num_free(), int64_t(10));
  }

  void copyOnWriteAfterReserve() {
    // A reserved table has blocks past its tokens; after a fork, the block
    // the child writes next is not the last one. Whatever block receives
    // the write must be private to the writer: the parent's KV must never
    // be overwritten through a shared slot.
    KvCache c(8, 4);
    QVERIFY(c.reserve(1, 12));      // blocks [X, Y, Z]
    QVERIFY(c.append_slots(1, 6));  // 6 tokens: Y holds 2, Z is empty
    c.fork(1, 2);
    QVERIFY(c.append_slots(2, 1));  // the child writes position 6, inside Y
    for (int64_t pos = 0; pos < 6; ++pos) QCOMPARE(c.slot(2, pos) % 4, c.slot(1, pos) % 4);
    QVERIFY2(c.slot(2, 6) != c.slot(1, 6),
             qPrintable(QString("child and parent map position 6 to the same slot %1: the child's write lands in the "
                                "parent's KV (copy-on-write looked at the last reserved block, not the one written)")
                            .arg(c.slot(2, 6))));
    const auto copies = c.take_pending_copies();
    QCOMPARE(copies.size(), size_t(1));
    QCOMPARE(copies[0].first, blocks_of(c, 1)[1]);  // Y, the block holding positions 4 and 5
    QCOMPARE(c.allocator().refcount(blocks_of(c, 1)[1]), 1);
  }
};

QTEST_APPLESS_MAIN(TestKvCache)
#include "test_kv_cache.moc"
