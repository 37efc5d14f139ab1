#include "model/llama_model.h"

#include <algorithm>

#include "backend/cuda/memory_plan.h"
#include "brisk/error.h"
#include "kernels/reference/attention.h"

namespace brisk {

int64_t LlamaModel::kv_bytes_per_block(const ModelConfig& c, int block_size, DType kv_dtype) {
  if (!kv_dtype_supported(kv_dtype))
    throw Error(std::string("KV cache dtype ") + dtype_name(kv_dtype) +
                ": not supported (f32, f16, bf16, fp8-e4m3, int8)");
  return 2LL * c.n_layers * block_size * (int64_t)kv_slot_bytes(kv_dtype, c.n_kv_heads, c.head_dim);
}

LlamaModel::LlamaModel(const LoadedModel& m, Backend& be, const ModelLimits& lim)
    : cfg_(m.config), limits_(lim), be_(be) {
  const ModelWeights& w = m.weights;
  // Weights first, then the workspace, then the KV cache: a device backend
  // places them in that order, so the cache gets what is really left.
  token_embd_ = be.weight(w.token_embd);
  output_norm_ = be.weight(w.output_norm);
  output_ = w.output.data ? be.weight(w.output) : token_embd_;
  for (const auto& lw : w.layers) {
    Layer l;
    l.attn_norm = be.weight(lw.attn_norm);
    l.wq = be.weight(lw.wq);
    l.wk = be.weight(lw.wk);
    l.wv = be.weight(lw.wv);
    l.wo = be.weight(lw.wo);
    l.ffn_norm = be.weight(lw.ffn_norm);
    l.w_gate = be.weight(lw.w_gate);
    l.w_up = be.weight(lw.w_up);
    l.w_down = be.weight(lw.w_down);
    layers_.push_back(l);
  }
  const int T = lim.max_tokens, S = lim.max_seqs;
  const int qd = cfg_.n_heads * cfg_.head_dim;
  x_ = be.alloc(DType::F32, T, cfg_.dim);
  h_ = be.alloc(DType::F32, T, cfg_.dim);
  tmp_ = be.alloc(DType::F32, T, cfg_.dim);
  q_ = be.alloc(DType::F32, T, qd);
  att_ = be.alloc(DType::F32, T, qd);
  k_ = be.alloc(DType::F32, T, cfg_.kv_dim());
  v_ = be.alloc(DType::F32, T, cfg_.kv_dim());
  gate_ = be.alloc(DType::F32, T, cfg_.hidden_dim);
  up_ = be.alloc(DType::F32, T, cfg_.hidden_dim);
  ids_ = be.alloc(DType::I32, T, 1);
  pos_ = be.alloc(DType::I32, T, 1);
  slots_ = be.alloc(DType::I32, T, 1);
  qstart_ = be.alloc(DType::I32, S + 1, 1);
  seqlens_ = be.alloc(DType::I32, S, 1);
  btables_ = be.alloc(DType::I32, S, lim.max_blocks_per_seq);
  const int L = std::max(lim.max_logits_rows, S);
  limits_.max_logits_rows = L;
  lrows_ = be.alloc(DType::I32, L, 1);
  argmax_ = be.alloc(DType::I32, L, 1);
  sel_ = be.alloc(DType::F32, L, cfg_.dim);
  logits_ = be.alloc(DType::F32, L, cfg_.vocab_size);
  if (auto* f = dynamic_cast<FusedDecode*>(&be); f && f->fused_decode_rows() > 0) {
    bool uniform = true;
    for (const Layer& l : layers_) {
      const DType d = l.wq.dtype;
      uniform = uniform && d != DType::F32 && l.wk.dtype == d && l.wv.dtype == d &&
                l.w_gate.dtype != DType::F32 && l.w_up.dtype == l.w_gate.dtype && l.wo.dtype != DType::F32 &&
                l.w_down.dtype != DType::F32;
    }
    if (uniform) fused_ = f;
  }
  if (auto* r = dynamic_cast<WorkspaceReserver*>(&be))
    r->reserve_workspace(model_gemms(w, T, L), S, cfg_.n_heads, cfg_.head_dim);
  int64_t blocks = lim.num_kv_blocks;
  if (auto* g = dynamic_cast<StepGraphs*>(&be); g && g->graphs_enabled()) {
    graphs_ = g;
    buckets_ = graph_buckets(std::min(S, T));
    scratch_block_ = (int32_t)blocks++;
  }
  const int64_t slots = blocks * lim.block_size;
  for (Layer& l : layers_) {
    l.k_cache = be.alloc_kv_cache(lim.kv_dtype, slots, cfg_.n_kv_heads, cfg_.head_dim);
    l.v_cache = be.alloc_kv_cache(lim.kv_dtype, slots, cfg_.n_kv_heads, cfg_.head_dim);
  }
  if (fused_) {
    const FusedDecode::DecodeShape sh{
        cfg_.dim,        cfg_.hidden_dim, cfg_.n_heads,
        cfg_.n_kv_heads, cfg_.head_dim,   cfg_.rope_dim,
        cfg_.rope_theta, cfg_.norm_eps,   lim.max_blocks_per_seq * lim.block_size};
    one_launch_ = fused_->plan_one_launch_decode(layers_.data(), (int)layers_.size(), sh);
  }
}

void LlamaModel::forward(const ForwardBatch& b, std::vector<float>& logits) {
  run_batch(b);
  logits_rows(b, logits);
}

void LlamaModel::forward_greedy(const ForwardBatch& b, int vocab, std::vector<int32_t>& ids) {
  run_batch(b);
  ids.resize(b.logits_rows.size());
  classify_rows(b, [&](int r0, int m) {
    be_.argmax_rows(argmax_, logits_, m, std::min(vocab, cfg_.vocab_size));
    be_.download(ids.data() + r0, argmax_, m);
  });
}

void LlamaModel::run_batch(const ForwardBatch& b) {
  const int n = b.num_tokens(), S = b.num_seqs(), nl = (int)b.logits_rows.size();
  if (n <= 0 || n > limits_.max_tokens || S > limits_.max_seqs || nl > n ||
      b.max_blocks_per_seq > limits_.max_blocks_per_seq)
    throw Error("internal: batch of " + std::to_string(n) + " tokens / " + std::to_string(S) +
                " sequences exceeds the planned limits");
  if (!forward_graph(b)) {
    upload_batch(b, b.max_blocks_per_seq);  // rows packed at this step's width
    Tensor bt = btables_;
    bt.cols = b.max_blocks_per_seq;
    run_layers(n, AttentionBatch{S, qstart_, seqlens_, bt, b.max_blocks_per_seq, limits_.block_size});
  }
}

void LlamaModel::upload_batch(const ForwardBatch& b, int bt_cols) {
  const int n = b.num_tokens(), S = b.num_seqs();
  be_.upload(ids_, b.token_ids.data(), n);
  be_.upload(pos_, b.positions.data(), n);
  be_.upload(slots_, b.slot_mapping.data(), n);
  be_.upload(qstart_, b.query_start.data(), S + 1);
  be_.upload(seqlens_, b.seq_lens.data(), S);
  Tensor bt = btables_;
  bt.cols = bt_cols;
  if (bt_cols > 0) be_.upload(bt, b.block_tables.data(), S);
}

bool LlamaModel::forward_graph(const ForwardBatch& b) {
  const int n = b.num_tokens(), S = b.num_seqs();
  if (!graphs_ || n != S) return false;
  for (int i = 0; i <= S; ++i)
    if (b.query_start[i] != i) return false;
  const int bucket = pick_bucket(buckets_, n);
  if (bucket == 0) return false;
  // The graph was captured for `bucket` rows at the full block-table width:
  // pad to both. A padding row decodes token 0 at position 0 of a context of
  // one token held in the scratch block; its output is never read.
  const int W = limits_.max_blocks_per_seq, bs = limits_.block_size;
  ForwardBatch& p = padded_;
  p.token_ids.assign(b.token_ids.begin(), b.token_ids.end());
  p.positions.assign(b.positions.begin(), b.positions.end());
  p.slot_mapping.assign(b.slot_mapping.begin(), b.slot_mapping.end());
  p.seq_lens.assign(b.seq_lens.begin(), b.seq_lens.end());
  p.token_ids.resize(bucket, 0);
  p.positions.resize(bucket, 0);
  p.slot_mapping.resize(bucket, scratch_block_ * bs);
  p.seq_lens.resize(bucket, 1);
  p.query_start.resize(bucket + 1);
  for (int i = 0; i <= bucket; ++i) p.query_start[i] = i;
  p.block_tables.assign((size_t)bucket * W, 0);
  for (int i = 0; i < S; ++i)
    std::copy_n(b.block_tables.begin() + (size_t)i * b.max_blocks_per_seq, b.max_blocks_per_seq,
                p.block_tables.begin() + (size_t)i * W);
  for (int i = S; i < bucket; ++i) p.block_tables[(size_t)i * W] = scratch_block_;
  p.max_blocks_per_seq = W;
  upload_batch(p, W);
  if (!graphs_->has_graph(bucket)) {
    graphs_->begin_capture();
    try {
      run_layers(bucket, AttentionBatch{bucket, qstart_, seqlens_, btables_, W, bs});
    } catch (...) {
      graphs_->abort_capture();
      throw;
    }
    graphs_->end_capture(bucket);
  }
  graphs_->replay(bucket);
  return true;
}

void LlamaModel::run_layers(int n, const AttentionBatch& ab) {
  if (fused_ && n <= fused_->fused_decode_rows()) return run_layers_fused(n, ab);
  Backend& be = be_;
  const ModelConfig& c = cfg_;
  be.embed(x_, token_embd_, ids_, n);
  // Each residual add is fused into the norm that follows it (the next
  // layer's attention norm, or this layer's FFN norm); the last layer's add
  // stands alone because the final norm runs only on the rows that sample.
  if (!layers_.empty()) be.rmsnorm(h_, x_, layers_.front().attn_norm, n, c.norm_eps);
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Layer& l = layers_[i];
    be.matmul(q_, h_, l.wq, n);
    be.matmul(k_, h_, l.wk, n);
    be.matmul(v_, h_, l.wv, n);
    be.rope_kv_write(q_, k_, v_, pos_, slots_, l.k_cache, l.v_cache, n, c.n_heads, c.n_kv_heads, c.head_dim,
                     c.rope_dim, c.rope_theta);
    be.attention(att_, q_, l.k_cache, l.v_cache, ab, c.n_heads, c.n_kv_heads, c.head_dim);
    be.matmul(tmp_, att_, l.wo, n);
    be.add_rmsnorm(x_, tmp_, l.ffn_norm, h_, n, c.norm_eps);
    be.matmul(gate_, h_, l.w_gate, n);
    be.matmul(up_, h_, l.w_up, n);
    be.silu_mul(gate_, gate_, up_, n);
    be.matmul(tmp_, gate_, l.w_down, n);
    if (i + 1 < layers_.size())
      be.add_rmsnorm(x_, tmp_, layers_[i + 1].attn_norm, h_, n, c.norm_eps);
    else
      be.add(x_, x_, tmp_, n);
  }
}

// As run_layers, with each norm folded into the projections after it and
// each residual add into the projection before it: x_ holds the residual
// stream throughout, and no normalised copy (h_) is written.
void LlamaModel::run_layers_fused(int n, const AttentionBatch& ab) {
  Backend& be = be_;
  FusedDecode& f = *fused_;
  const ModelConfig& c = cfg_;
  be.embed(x_, token_embd_, ids_, n);
  if (one_launch_ && n == 1 && f.one_launch_decode(x_, q_, k_, v_, att_, gate_, pos_, slots_, ab)) return;
  for (const Layer& l : layers_) {
    const Tensor qkv_out[3] = {q_, k_, v_}, qkv_w[3] = {l.wq, l.wk, l.wv};
    const bool folded =
        f.norm_qkv_rope_kv_write(qkv_out, qkv_w, x_, l.attn_norm, c.norm_eps, pos_, slots_, l.k_cache,
                                 l.v_cache, n, c.n_heads, c.n_kv_heads, c.head_dim, c.rope_dim, c.rope_theta);
    if (!folded) f.norm_matmul(qkv_out, qkv_w, 3, x_, l.attn_norm, c.norm_eps, n);
    // What is read after RoPE and attention: wo, then gate and up (a row of each per output).
    const Tensor next[3] = {l.wo, l.w_gate, l.w_up};
    const int groups[3] = {0, 1, 1};
    f.prefetch_weights(next, groups, 3);
    if (!folded)
      be.rope_kv_write(q_, k_, v_, pos_, slots_, l.k_cache, l.v_cache, n, c.n_heads, c.n_kv_heads, c.head_dim,
                       c.rope_dim, c.rope_theta);
    be.attention(att_, q_, l.k_cache, l.v_cache, ab, c.n_heads, c.n_kv_heads, c.head_dim);
    f.matmul_add(x_, att_, l.wo, n);
    f.norm_swiglu(gate_, x_, l.ffn_norm, c.norm_eps, l.w_gate, l.w_up, n);
    f.matmul_add(x_, gate_, l.w_down, n);
  }
}

// Only rows that sample go through the final norm and the classifier, a
// planned number at a time: prompt log-probabilities can ask for every row
// of a prefill chunk without a [max_tokens, vocab] buffer.
template <class Take>
void LlamaModel::classify_rows(const ForwardBatch& b, Take take) {
  Backend& be = be_;
  const ModelConfig& c = cfg_;
  const int nl = (int)b.logits_rows.size();
  for (int r0 = 0; r0 < nl; r0 += limits_.max_logits_rows) {
    const int m = std::min(limits_.max_logits_rows, nl - r0);
    be.upload(lrows_, b.logits_rows.data() + r0, m);
    be.gather_rows(sel_, x_, lrows_, m);
    be.rmsnorm(sel_, sel_, output_norm_, m, c.norm_eps);
    be.matmul(logits_, sel_, output_, m);
    take(r0, m);
  }
}

void LlamaModel::logits_rows(const ForwardBatch& b, std::vector<float>& logits) {
  const int V = cfg_.vocab_size;
  logits.resize(b.logits_rows.size() * (size_t)V);
  classify_rows(b, [&](int r0, int m) { be_.download(logits.data() + (size_t)r0 * V, logits_, m); });
}

void LlamaModel::copy_kv_blocks(const std::vector<std::pair<int32_t, int32_t>>& pairs) {
  if (pairs.empty()) return;
  for (Layer& l : layers_) {
    be_.copy_blocks(l.k_cache, pairs, limits_.block_size, cfg_.n_kv_heads);
    be_.copy_blocks(l.v_cache, pairs, limits_.block_size, cfg_.n_kv_heads);
  }
}

}  // namespace brisk
