// The KV cache as a pool of fixed-size blocks with reference counts.
// Blocks are shared copy-on-write between sequences (forks for parallel
// sampling, beam search and prefix caching build on this).
#pragma once
#include <cstdint>
#include <vector>

namespace brisk {

class BlockAllocator {
 public:
  BlockAllocator(int64_t num_blocks, int block_size);

  // -1 when no block is free.
  int32_t allocate();
  void incref(int32_t block);
  // Drops one reference; the block is free again when none remain.
  void decref(int32_t block);

  int refcount(int32_t block) const { return refcounts_[block]; }
  int64_t num_blocks() const { return (int64_t)refcounts_.size(); }
  int64_t num_free() const { return (int64_t)free_.size(); }
  int64_t num_used() const { return num_blocks() - num_free(); }
  int block_size() const { return block_size_; }

 private:
  int block_size_;
  std::vector<int32_t> free_;  // LIFO: recently freed blocks are reused first
  std::vector<int> refcounts_;
};

}  // namespace brisk
