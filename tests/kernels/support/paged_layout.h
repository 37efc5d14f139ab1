// A batch's paged KV layout for the attention tests (the CPU emulation of
// the CUDA prefill block and the GPU kernel tests): query offsets, context
// lengths and block tables whose blocks are handed out in a shuffled order,
// so the table indirection matters.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "kernels/reference/attention.h"

namespace brisk::testing {

struct PagedLayout {
  std::vector<int32_t> query_start, seq_lens, tables;  // [S + 1], [S], [S][max_blocks]
  int block_size = 16, max_blocks = 0, max_query_len = 0, max_seq_len = 0;
  int num_blocks = 0;  // in the pool: every sequence's blocks and the spares
  int num_slots() const { return num_blocks * block_size; }
  int num_seqs() const { return (int)seq_lens.size(); }
  int rows() const { return query_start.back(); }
  int32_t slot(int s, int t) const {
    return tables[(size_t)s * max_blocks + t / block_size] * block_size + t % block_size;
  }
  // ref::paged_attention's arguments over this layout (host pointers into it), scale 1 / sqrt(head_dim).
  PagedAttentionArgs reference_args(int n_heads, int n_kv_heads, int head_dim) const {
    PagedAttentionArgs ra;
    ra.num_seqs = num_seqs();
    ra.query_start = query_start.data();
    ra.seq_lens = seq_lens.data();
    ra.block_tables = tables.data();
    ra.max_blocks_per_seq = max_blocks;
    ra.block_size = block_size;
    ra.n_heads = n_heads;
    ra.n_kv_heads = n_kv_heads;
    ra.head_dim = head_dim;
    ra.scale = 1.0f / std::sqrt((float)head_dim);
    return ra;
  }
};

// q_lens[s] query rows ending sequence s's context of ctx[s] tokens; a pool of
// the blocks they need plus `spare` blocks no sequence holds.
inline PagedLayout make_paged_layout(const std::vector<int>& q_lens, const std::vector<int>& ctx,
                                     int block_size, int spare, std::mt19937& rng) {
  PagedLayout p;
  const int S = (int)q_lens.size();
  p.block_size = block_size;
  p.query_start.assign(S + 1, 0);
  p.seq_lens.assign(S, 0);
  int total = 0;
  for (int s = 0; s < S; ++s) {
    p.query_start[s + 1] = p.query_start[s] + q_lens[s];
    p.seq_lens[s] = ctx[s];
    p.max_blocks = std::max(p.max_blocks, (ctx[s] + block_size - 1) / block_size);
    total += (ctx[s] + block_size - 1) / block_size;
    p.max_query_len = std::max(p.max_query_len, q_lens[s]);
    p.max_seq_len = std::max(p.max_seq_len, ctx[s]);
  }
  std::vector<int32_t> perm(total + spare);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  p.num_blocks = (int)perm.size();
  p.tables.assign((size_t)S * p.max_blocks, 0);
  int next = 0;
  for (int s = 0; s < S; ++s)
    for (int b = 0; b < (ctx[s] + block_size - 1) / block_size; ++b)
      p.tables[(size_t)s * p.max_blocks + b] = perm[next++];
  return p;
}

}  // namespace brisk::testing
