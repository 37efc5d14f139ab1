// Block tables for every live sequence over one BlockAllocator: slot
// mapping for writes, fork (share all blocks) and copy-on-write before a
// write into a shared block, and the occupancy/waste accounting.
#pragma once
#include <cstdint>
#include <unordered_map>
#include <utility>
#include <vector>

#include "cache/block_allocator.h"

namespace brisk {

struct BlockTable {
  std::vector<int32_t> blocks;
  int64_t num_tokens = 0;  // tokens whose K/V the blocks hold (or will after this step)
  // Chained content hashes of the leading full, computed blocks (prefix caching).
  std::vector<uint64_t> hashes;
};

class KvCache {
 public:
  KvCache(int64_t num_blocks, int block_size);

  int block_size() const { return alloc_.block_size(); }
  int64_t blocks_needed(int64_t tokens) const { return (tokens + block_size() - 1) / block_size(); }

  // Makes room for `n` more tokens of sequence `seq` (creating its table on
  // first use). All or nothing: false, and no change, when blocks run out.
  // A shared last block is copied first (copy-on-write); the copies to make
  // on the device are appended to pending_copies().
  bool append_slots(uint64_t seq, int64_t n);
  // Reserves blocks for a total of `tokens` tokens without counting them as
  // filled (the static policy reserves a whole sequence up front).
  bool reserve(uint64_t seq, int64_t tokens);
  // Slot of token position `pos` of `seq`.
  int32_t slot(uint64_t seq, int64_t pos) const;
  void free(uint64_t seq);
  // Shrinks `seq` to its first `num_tokens` tokens (speculative decoding
  // rolls back rejected positions): trailing blocks no longer needed are
  // released, and block hashes past the remaining full blocks are dropped.
  void truncate(uint64_t seq, int64_t num_tokens);
  // The child shares every block of the parent (refcounts go up).
  void fork(uint64_t parent, uint64_t child);

  // Prefix caching. A full block is keyed by hash(parent block's key, its
  // tokens, adapter id): equal keys mean equal K/V, whatever sequence
  // computed them. match_prefix gives a sequence with no blocks yet the
  // longest run of published blocks matching its first tokens, at most
  // max_tokens of them (whole blocks), and returns how many tokens that
  // covers. commit_full_blocks publishes the sequence's blocks that
  // num_computed tokens have completely filled. Tokens are prompt then output.
  int64_t match_prefix(uint64_t seq, const std::vector<int32_t>& prompt, const std::vector<int32_t>& output,
                       int64_t max_tokens);
  void commit_full_blocks(uint64_t seq, const std::vector<int32_t>& prompt,
                          const std::vector<int32_t>& output, int64_t num_computed);
  static uint64_t block_hash(uint64_t parent, const int32_t* tokens, int n, uint64_t adapter_id = 0);

  const BlockTable* table(uint64_t seq) const;
  bool has(uint64_t seq) const { return tables_.count(seq) != 0; }
  std::vector<std::pair<int32_t, int32_t>> take_pending_copies();

  int64_t num_blocks() const { return alloc_.num_blocks(); }
  int64_t num_used() const { return alloc_.num_used(); }
  int64_t num_free() const { return alloc_.num_free(); }
  const BlockAllocator& allocator() const { return alloc_; }
  // Slots in allocated blocks, and slots holding a token (a shared block
  // counts once). Internal waste = allocated - filled.
  int64_t slots_allocated() const { return alloc_.num_used() * block_size(); }
  int64_t slots_filled() const;
  // Per-block owner (first table holding it), for the block map.
  const std::unordered_map<uint64_t, BlockTable>& tables() const { return tables_; }

 private:
  BlockAllocator alloc_;
  std::unordered_map<uint64_t, BlockTable> tables_;
  std::vector<std::pair<int32_t, int32_t>> pending_copies_;
};

}  // namespace brisk
