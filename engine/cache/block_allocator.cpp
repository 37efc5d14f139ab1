#include "cache/block_allocator.h"

#include <stdexcept>
#include <string>

namespace brisk {

BlockAllocator::BlockAllocator(int64_t num_blocks, int block_size)
    : block_size_(block_size), refcounts_(num_blocks, 0) {
  free_.reserve(num_blocks);
  for (int64_t i = num_blocks - 1; i >= 0; --i) free_.push_back((int32_t)i);
}

int32_t BlockAllocator::allocate() {
  if (free_.empty()) return -1;
  const int32_t b = free_.back();
  free_.pop_back();
  refcounts_[b] = 1;
  return b;
}

void BlockAllocator::incref(int32_t b) {
  if (refcounts_.at(b) <= 0) throw std::logic_error("incref of free block " + std::to_string(b));
  refcounts_[b]++;
}

void BlockAllocator::decref(int32_t b) {
  if (refcounts_.at(b) <= 0) throw std::logic_error("double free of block " + std::to_string(b));
  if (--refcounts_[b] == 0) free_.push_back(b);
}

}  // namespace brisk
