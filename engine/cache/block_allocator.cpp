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
  int32_t b;
  if (!free_.empty()) {
    b = free_.back();
    free_.pop_back();
  } else if (!parked_.empty()) {
    b = parked_.front();  // least recently parked
    parked_.pop_front();
    parked_at_.erase(b);
    by_hash_.erase(hash_of_.at(b));
    hash_of_.erase(b);
    evictions_++;
  } else {
    return -1;
  }
  refcounts_[b] = 1;
  return b;
}

void BlockAllocator::incref(int32_t b) {
  if (refcounts_.at(b) <= 0) throw std::logic_error("incref of free block " + std::to_string(b));
  refcounts_[b]++;
}

void BlockAllocator::decref(int32_t b) {
  if (refcounts_.at(b) <= 0) throw std::logic_error("double free of block " + std::to_string(b));
  if (--refcounts_[b] > 0) return;
  if (hash_of_.count(b)) {
    parked_.push_back(b);
    parked_at_[b] = std::prev(parked_.end());
  } else {
    free_.push_back(b);
  }
}

bool BlockAllocator::publish(int32_t b, uint64_t hash) {
  if (refcounts_.at(b) <= 0) throw std::logic_error("publish of free block " + std::to_string(b));
  if (by_hash_.count(hash) || hash_of_.count(b)) return false;
  by_hash_[hash] = b;
  hash_of_[b] = hash;
  return true;
}

int32_t BlockAllocator::lookup(uint64_t hash) const {
  auto it = by_hash_.find(hash);
  return it == by_hash_.end() ? -1 : it->second;
}

void BlockAllocator::acquire(int32_t b) {
  if (refcounts_.at(b) > 0) {
    refcounts_[b]++;
    return;
  }
  auto it = parked_at_.find(b);
  if (it == parked_at_.end()) throw std::logic_error("acquire of unpublished free block " + std::to_string(b));
  parked_.erase(it->second);
  parked_at_.erase(it);
  refcounts_[b] = 1;
}

}  // namespace brisk
