#include "runner/model_runner.h"

#include <algorithm>

namespace brisk {

std::vector<float>& ModelRunner::execute(const SchedulerOutput& so) {
  model_.copy_kv_blocks(cache_.take_pending_copies());
  pack(so);
  model_.forward(batch_, logits_);
  return logits_;
}

const std::vector<int32_t>& ModelRunner::execute_greedy(const SchedulerOutput& so, int vocab) {
  model_.copy_kv_blocks(cache_.take_pending_copies());
  pack(so);
  model_.forward_greedy(batch_, vocab, greedy_ids_);
  return greedy_ids_;
}

void ModelRunner::pack(const SchedulerOutput& so) {
  ForwardBatch& b = batch_;
  b.clear();
  for (const ScheduledSeq& s : so.seqs) {
    const BlockTable* t = cache_.table(s.req->id);
    b.max_blocks_per_seq = std::max(b.max_blocks_per_seq, (int)t->blocks.size());
  }
  b.block_tables.assign((size_t)so.seqs.size() * b.max_blocks_per_seq, 0);
  for (size_t i = 0; i < so.seqs.size(); ++i) {
    const ScheduledSeq& s = so.seqs[i];
    Request* r = s.req;
    for (int64_t pos = s.start; pos < s.start + s.num_tokens; ++pos) {
      b.token_ids.push_back(r->token_at(pos));
      b.positions.push_back((int32_t)pos);
      b.slot_mapping.push_back(cache_.slot(r->id, pos));
    }
    for (int64_t j = 0; j < s.prompt_logits_count; ++j)
      b.logits_rows.push_back((int32_t)(b.query_start.back() + (s.prompt_logits_from - s.start) + j));
    b.query_start.push_back((int32_t)b.token_ids.size());
    b.seq_lens.push_back((int32_t)(s.start + s.num_tokens));
    const BlockTable* t = cache_.table(r->id);
    std::copy(t->blocks.begin(), t->blocks.end(), b.block_tables.begin() + i * b.max_blocks_per_seq);
    // A speculative decode needs the model's next token after each of its
    // 1 + num_draft positions.
    if (s.samples)
      for (int64_t j = s.num_draft; j >= 0; --j)
        b.logits_rows.push_back((int32_t)(b.token_ids.size() - 1 - j));
  }
  add_padding_rows(so.padding_seqs);
}

// A padding row re-reads a finished member's context, as its row in a
// fixed-shape batch would, and writes its (unused) K/V to a scratch slot
// past the allocator's blocks; it produces no logits.
void ModelRunner::add_padding_rows(const std::vector<std::pair<uint64_t, int64_t>>& seqs) {
  if (seqs.empty()) return;
  ForwardBatch& b = batch_;
  const int bs = cache_.block_size();
  int width = b.max_blocks_per_seq;
  for (const auto& [id, len] : seqs) width = std::max(width, (int)cache_.table(id)->blocks.size());
  if (width != b.max_blocks_per_seq) {  // re-pack the rows built so far at the new width
    std::vector<int32_t> wide(b.seq_lens.size() * width, 0);
    for (size_t r = 0; r < b.seq_lens.size(); ++r)
      std::copy_n(b.block_tables.begin() + r * b.max_blocks_per_seq, b.max_blocks_per_seq,
                  wide.begin() + r * width);
    b.block_tables = std::move(wide);
    b.max_blocks_per_seq = width;
  }
  for (size_t i = 0; i < seqs.size(); ++i) {
    const auto& [id, len] = seqs[i];
    const BlockTable* t = cache_.table(id);
    b.token_ids.push_back(0);
    b.positions.push_back((int32_t)len - 1);
    b.slot_mapping.push_back((int32_t)((cache_.num_blocks() + (int64_t)i / bs) * bs + (int64_t)i % bs));
    b.query_start.push_back((int32_t)b.token_ids.size());
    b.seq_lens.push_back((int32_t)len);
    const size_t at = b.block_tables.size();
    b.block_tables.resize(at + width, 0);
    std::copy(t->blocks.begin(), t->blocks.end(), b.block_tables.begin() + at);
  }
}

}  // namespace brisk
