#include "cache/kv_cache.h"

#include <algorithm>
#include <stdexcept>

namespace brisk {

KvCache::KvCache(int64_t num_blocks, int block_size) : alloc_(num_blocks, block_size) {}

bool KvCache::append_slots(uint64_t seq, int64_t n) {
  BlockTable& t = tables_[seq];
  const int bs = block_size();
  const int64_t have = (int64_t)t.blocks.size();
  const int64_t need = blocks_needed(t.num_tokens + n);
  // Every existing block this append writes into must be private: a shared
  // one (after a fork) is replaced by a fresh block first. With reserve()
  // that can be any block past the filled ones, not only the last.
  std::vector<int64_t> shared;
  if (n > 0)
    for (int64_t i = t.num_tokens / bs; i < std::min(have, need); ++i)
      if (alloc_.refcount(t.blocks[i]) > 1) shared.push_back(i);
  const int64_t grow = std::max<int64_t>(need - have, 0);
  if (grow + (int64_t)shared.size() > alloc_.num_free()) {
    if (t.blocks.empty() && t.num_tokens == 0) tables_.erase(seq);
    return false;
  }
  for (int64_t i : shared) {
    const int32_t fresh = alloc_.allocate();
    if (i * bs < t.num_tokens) pending_copies_.emplace_back(t.blocks[i], fresh);  // holds tokens: copy them
    alloc_.decref(t.blocks[i]);
    t.blocks[i] = fresh;
  }
  for (int64_t i = 0; i < grow; ++i) t.blocks.push_back(alloc_.allocate());
  t.num_tokens += n;
  return true;
}

bool KvCache::reserve(uint64_t seq, int64_t tokens) {
  BlockTable& t = tables_[seq];
  const int64_t need = blocks_needed(tokens) - (int64_t)t.blocks.size();
  if (need > alloc_.num_free()) {
    if (t.blocks.empty() && t.num_tokens == 0) tables_.erase(seq);
    return false;
  }
  for (int64_t i = 0; i < need; ++i) t.blocks.push_back(alloc_.allocate());
  return true;
}

int32_t KvCache::slot(uint64_t seq, int64_t pos) const {
  const BlockTable& t = tables_.at(seq);
  return t.blocks.at(pos / block_size()) * block_size() + (int32_t)(pos % block_size());
}

void KvCache::free(uint64_t seq) {
  auto it = tables_.find(seq);
  if (it == tables_.end()) return;
  for (int32_t b : it->second.blocks) alloc_.decref(b);
  tables_.erase(it);
}

void KvCache::truncate(uint64_t seq, int64_t num_tokens) {
  auto it = tables_.find(seq);
  if (it == tables_.end()) return;
  BlockTable& t = it->second;
  if (num_tokens >= t.num_tokens) return;
  t.num_tokens = std::max<int64_t>(num_tokens, 0);
  const int64_t keep = blocks_needed(t.num_tokens);
  while ((int64_t)t.blocks.size() > keep) {
    alloc_.decref(t.blocks.back());
    t.blocks.pop_back();
  }
  // Only verified full blocks may stay published under this table's chain.
  if ((int64_t)t.hashes.size() > t.num_tokens / block_size()) t.hashes.resize(t.num_tokens / block_size());
}

void KvCache::fork(uint64_t parent, uint64_t child) {
  const BlockTable& p = tables_.at(parent);
  if (tables_.count(child)) throw std::logic_error("fork into an existing sequence");
  for (int32_t b : p.blocks) alloc_.incref(b);
  tables_[child] = p;
}

namespace {

// Token i of prompt ++ output, copied into `buf` for one block.
const int32_t* block_tokens(const std::vector<int32_t>& prompt, const std::vector<int32_t>& output,
                            int64_t first, int n, std::vector<int32_t>& buf) {
  buf.resize(n);
  for (int j = 0; j < n; ++j) {
    const int64_t i = first + j;
    buf[j] = i < (int64_t)prompt.size() ? prompt[i] : output[i - prompt.size()];
  }
  return buf.data();
}

}  // namespace

uint64_t KvCache::block_hash(uint64_t parent, const int32_t* tokens, int n, uint64_t adapter_id) {
  // FNV-1a over the parent key, the adapter id and the tokens, then a
  // murmur-style finaliser to spread the bits.
  uint64_t h = 0xcbf29ce484222325ull;
  auto mix = [&h](uint64_t v) {
    for (int b = 0; b < 8; ++b) {
      h ^= (v >> (8 * b)) & 0xff;
      h *= 0x100000001b3ull;
    }
  };
  mix(parent);
  mix(adapter_id);
  for (int i = 0; i < n; ++i) mix((uint32_t)tokens[i]);
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

int64_t KvCache::match_prefix(uint64_t seq, const std::vector<int32_t>& prompt,
                              const std::vector<int32_t>& output, int64_t max_tokens) {
  if (tables_.count(seq)) return 0;
  const int bs = block_size();
  std::vector<int32_t> buf;
  BlockTable t;
  uint64_t parent = 0;
  for (int64_t i = 0; (i + 1) * bs <= max_tokens; ++i) {
    const uint64_t h = block_hash(parent, block_tokens(prompt, output, i * bs, bs, buf), bs);
    const int32_t b = alloc_.lookup(h);
    if (b < 0) break;
    alloc_.acquire(b);
    t.blocks.push_back(b);
    t.hashes.push_back(h);
    parent = h;
  }
  if (t.blocks.empty()) return 0;
  t.num_tokens = (int64_t)t.blocks.size() * bs;
  const int64_t n = t.num_tokens;
  tables_[seq] = std::move(t);
  return n;
}

void KvCache::commit_full_blocks(uint64_t seq, const std::vector<int32_t>& prompt,
                                 const std::vector<int32_t>& output, int64_t num_computed) {
  auto it = tables_.find(seq);
  if (it == tables_.end()) return;
  BlockTable& t = it->second;
  const int bs = block_size();
  const int64_t full = std::min<int64_t>(num_computed / bs, (int64_t)t.blocks.size());
  std::vector<int32_t> buf;
  for (int64_t i = (int64_t)t.hashes.size(); i < full; ++i) {
    const uint64_t parent = i == 0 ? 0 : t.hashes[i - 1];
    const uint64_t h = block_hash(parent, block_tokens(prompt, output, i * bs, bs, buf), bs);
    alloc_.publish(t.blocks[i], h);  // false when an equal block is already published: keep that one
    t.hashes.push_back(h);
  }
}

const BlockTable* KvCache::table(uint64_t seq) const {
  auto it = tables_.find(seq);
  return it == tables_.end() ? nullptr : &it->second;
}

std::vector<std::pair<int32_t, int32_t>> KvCache::take_pending_copies() {
  return std::exchange(pending_copies_, {});
}

int64_t KvCache::slots_filled() const {
  // A block shared by several tables is filled up to the most any of them holds.
  std::unordered_map<int32_t, int64_t> filled;
  for (const auto& [seq, t] : tables_)
    for (size_t i = 0; i < t.blocks.size(); ++i) {
      const int64_t f = std::clamp<int64_t>(t.num_tokens - (int64_t)i * block_size(), 0, block_size());
      int64_t& cur = filled[t.blocks[i]];
      cur = std::max(cur, f);
    }
  int64_t sum = 0;
  for (const auto& [b, f] : filled) sum += f;
  return sum;
}

}  // namespace brisk
