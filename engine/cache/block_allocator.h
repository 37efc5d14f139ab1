// The KV cache as a pool of fixed-size blocks with reference counts.
// Blocks are shared copy-on-write between sequences (forks for parallel
// sampling and beam search), and full blocks can be published under a hash
// of their contents for prefix caching: when the last reference goes, such a
// block is not freed but parked, still findable by its hash, and reused
// least-recently-parked first only when no truly free block is left.
#pragma once
#include <cstdint>
#include <list>
#include <unordered_map>
#include <vector>

namespace brisk {

class BlockAllocator {
 public:
  BlockAllocator(int64_t num_blocks, int block_size);

  // -1 when no block is free or evictable. Evicting a parked block forgets its hash.
  int32_t allocate();
  void incref(int32_t block);
  // Drops one reference; at zero the block is free again (or parked, if published).
  void decref(int32_t block);

  // Prefix caching. publish: `block` (in use, full) holds the tokens whose
  // chained hash is `hash`; false (nothing changes) when another block
  // already holds that hash. lookup: the block for a hash, or -1. acquire: a
  // reference to a looked-up block, taking it back from the parked list if
  // it had none.
  bool publish(int32_t block, uint64_t hash);
  int32_t lookup(uint64_t hash) const;
  void acquire(int32_t block);

  int refcount(int32_t block) const { return refcounts_[block]; }
  int64_t num_blocks() const { return (int64_t)refcounts_.size(); }
  // Allocatable blocks: free ones and parked (cached, unreferenced) ones.
  int64_t num_free() const { return (int64_t)free_.size() + (int64_t)parked_.size(); }
  int64_t num_used() const { return num_blocks() - num_free(); }
  int64_t num_parked() const { return (int64_t)parked_.size(); }
  int64_t num_published() const { return (int64_t)by_hash_.size(); }
  int64_t evictions() const { return evictions_; }
  int block_size() const { return block_size_; }

 private:
  int block_size_;
  std::vector<int32_t> free_;  // LIFO: recently freed blocks are reused first
  std::vector<int> refcounts_;
  // Published blocks: hash -> block, and each block's hash (when published).
  std::unordered_map<uint64_t, int32_t> by_hash_;
  std::unordered_map<int32_t, uint64_t> hash_of_;
  // Parked blocks, oldest first, with each one's position for O(1) removal.
  std::list<int32_t> parked_;
  std::unordered_map<int32_t, std::list<int32_t>::iterator> parked_at_;
  int64_t evictions_ = 0;
};

}  // namespace brisk
