// Fused small-batch ops for a decode step, implemented by backends where a
// launch costs more than the arithmetic it carries (CUDA). Each is exactly
// a composition of Backend ops, which is what other backends run (the model
// finds this with dynamic_cast, as StepGraphs). Folding the norms, the
// residual adds and SwiGLU into the projections takes a layer from twelve
// launches to seven; RoPE and the KV cache write folded into the q/k/v
// projection makes it six. prefetch_weights fills the memory's idle time
// during attention with the weights read after it; one_launch_decode runs
// a single sequence's whole layer stack as one launch.
#pragma once
#include "backend/backend.h"

namespace brisk {

class FusedDecode {
 public:
  // The most rows the fused ops take in one call (0: switched off).
  virtual int fused_decode_rows() const = 0;
  // outs[i][n, N_i] = (rmsnorm(x) * norm_w) * ws[i]^T for i < count (<= 3, one dtype).
  virtual void norm_matmul(const Tensor* outs, const Tensor* ws, int count, Tensor x, Tensor norm_w,
                           float eps, int n) = 0;
  // out = silu(h * w_gate^T) * (h * w_up^T), h = rmsnorm(x) * norm_w.
  virtual void norm_swiglu(Tensor out, Tensor x, Tensor norm_w, float eps, Tensor w_gate, Tensor w_up,
                           int n) = 0;
  // x += in * w^T (a projection with the residual add after it).
  virtual void matmul_add(Tensor x, Tensor in, Tensor w, int n) = 0;
  // norm_matmul of outs/ws = {q, k, v} then Backend::rope_kv_write of them,
  // in one op. False, having done nothing, where the backend cannot fold
  // this shape or cache dtype (the caller runs the two ops).
  virtual bool norm_qkv_rope_kv_write(const Tensor* outs, const Tensor* ws, Tensor x, Tensor norm_w,
                                      float eps, Tensor pos, Tensor slots, Tensor k_cache, Tensor v_cache,
                                      int n, int n_heads, int n_kv_heads, int head_dim, int rot_dim,
                                      float theta) = 0;
  // A hint, given once a layer's q/k/v projection is enqueued: start moving
  // ws (in this order; neighbours with the same group id advance together,
  // a row of each at a time) from device memory into the device's cache,
  // for the projections after RoPE and attention, which read almost nothing
  // and would leave the memory idle. Changes no value; does nothing where
  // the backend's option is off.
  virtual void prefetch_weights(const Tensor* ws, const int* groups, int count) = 0;

  // One sequence's decode step through every layer in one launch (CUDA's
  // persistent kernel): exactly the layers of run_layers_fused, x updated in
  // place, q/k/v/att/h used as workspace (row 0). plan_one_launch_decode is
  // called once, outside any graph capture, with every layer; false where
  // the option is off or the model does not qualify (then one_launch_decode
  // is never called).
  struct DecodeLayer {
    Tensor attn_norm, wq, wk, wv, wo, ffn_norm, w_gate, w_up, w_down, k_cache, v_cache;
  };
  struct DecodeShape {
    int dim, hidden, n_heads, n_kv_heads, head_dim, rot_dim;
    float theta, eps;
    int max_context;  // tokens a block table can address
  };
  virtual bool plan_one_launch_decode(const DecodeLayer* layers, int n_layers, const DecodeShape& shape) = 0;
  // False, having done nothing, unless planned and the batch is one sequence of one query row.
  virtual bool one_launch_decode(Tensor x, Tensor q, Tensor k, Tensor v, Tensor att, Tensor h, Tensor pos,
                                 Tensor slots, const AttentionBatch& ab) = 0;

 protected:
  ~FusedDecode() = default;
};

}  // namespace brisk
