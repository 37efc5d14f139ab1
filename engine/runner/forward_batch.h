#pragma once
#include <cstdint>
#include <vector>

namespace brisk {

// One packed, padding-free batch: every token of every scheduled sequence,
// laid end to end. Prefill chunks and decode tokens mix freely.
struct ForwardBatch {
  std::vector<int32_t> token_ids;     // [T]
  std::vector<int32_t> positions;     // [T]
  std::vector<int32_t> slot_mapping;  // [T] KV slot each token's K/V is written to
  std::vector<int32_t> query_start;   // [S + 1] row range of each sequence
  std::vector<int32_t> seq_lens;      // [S] context length after this step
  std::vector<int32_t> block_tables;  // [S, max_blocks_per_seq], padded with 0
  int max_blocks_per_seq = 0;
  std::vector<int32_t> logits_rows;   // rows that produce logits (a sequence's last token when it samples)
  int num_tokens() const { return (int)token_ids.size(); }
  int num_seqs() const { return (int)seq_lens.size(); }
  void clear() {
    token_ids.clear();
    positions.clear();
    slot_mapping.clear();
    query_start.assign(1, 0);
    seq_lens.clear();
    block_tables.clear();
    logits_rows.clear();
    max_blocks_per_seq = 0;
  }
};

}  // namespace brisk
