// The CUDA backend: tensors are device buffers, ops are kernels/cuda launch
// functions and cuBLAS / cuBLASLt GEMMs, all enqueued on one stream.
//
// Memory: weights are uploaded once by weight(); alloc() and the workspace
// are placed while the model is constructed; a step allocates nothing
// (cuda_device_allocations() counts every cudaMalloc so tests can check).
// Host <-> device traffic per step is the uploads the model makes (token ids,
// positions, slots, attention metadata: through a pinned staging buffer,
// asynchronously) and the logits download, which synchronises.
//
// Errors: every CUDA call is checked and every launch followed by a check of
// the launch error, so a failure is a brisk::Error naming the op and shape.
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/graph_buckets.h"
#include "backend/cuda/memory_plan.h"
#include "backend/fused_decode.h"
#include "brisk/error.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/l2_prefetch.h"
#include "kernels/reference/attention.h"
#include "model/model_weights.h"

namespace brisk {

namespace {

std::atomic<int64_t> g_allocations{0}, g_captures{0}, g_replays{0}, g_fp8_scaled{0}, g_fp8_gemms{0},
    g_fused_rope{0}, g_conversions{0};

void check(cudaError_t e, const std::string& what) {
  if (e != cudaSuccess)
    throw Error("CUDA " + what + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
}

template <typename T>
T* ptr(const Tensor& t) {
  return static_cast<T*>(t.handle);
}

cuda::DeviceKvCache kv(const Tensor& c, int n_kv_heads, int head_dim) {
  return cuda::DeviceKvCache{c.handle, static_cast<float*>(c.scales), c.dtype, n_kv_heads, head_dim};
}

class CudaBackend final : public Backend, public WorkspaceReserver, public StepGraphs, public FusedDecode {
 public:
  explicit CudaBackend(const BackendOptions& opts) : opts_(opts) {
    probe_ = cuda_probe();
    if (!probe_.available) throw Error("backend 'cuda' is unavailable: " + probe_.reason);
    check(cudaSetDevice(0), "set device 0");
    check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "create stream");
    caps_.cc_major = probe_.cc_major;
    caps_.cc_minor = probe_.cc_minor;
    caps_.fp8 = probe_.fp8_supported;
    caps_.int8_activations = opts.int8_activations;
    cuda::set_dependent_launch(opts.dependent_launch);  // process-wide: the last backend made decides
    cuda::dependent_launch_active();                    // probes the device now, not inside a capture
    int l2 = 0;
    if (cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, 0) != cudaSuccess)
      cudaGetLastError();  // this query's error only (no L2 size: no prefetches)
    else if (l2 > 0)
      l2_bytes_ = (size_t)l2;
    blas_ws_ = device_alloc(kBlasWorkspaceBytes);
    gemm_ = std::make_unique<cudabe::Gemm>(stream_, blas_ws_, kBlasWorkspaceBytes, opts.fp8_fast_accum);
    grow_staging(1 << 20);
  }

  ~CudaBackend() override {
    // Nothing here may throw; after a sticky device error these calls fail,
    // and the process is going on without this backend anyway.
    if (capturing_) abort_capture();
    cudaStreamSynchronize(stream_);
    for (auto& [bucket, exec] : graphs_) cudaGraphExecDestroy(exec);
    gemm_.reset();
    for (void* p : buffers_) cudaFree(p);
    if (staging_) cudaFreeHost(staging_);
    if (stream_) cudaStreamDestroy(stream_);
    cudaGetLastError();
  }

  std::string name() const override { return "cuda"; }

  // ---- Memory ----

  Tensor weight(const WeightTensor& w) override {
    ++ops_;
    // Uploaded once per backend: a model re-planned on the same backend (the
    // perplexity scorer does) finds its weights already on the device. The
    // shape is part of the key because a caller's freed buffer can come back
    // at the same address.
    const auto key = std::make_tuple(w.data, (int)w.dtype, w.rows, w.cols);
    if (auto it = weights_.find(key); it != weights_.end()) return it->second;
    if (is_scaled(w.dtype) && !w.scales) throw Error("internal: weight " + w.name + " has no scales");
    const DType dt = device_weight_dtype(w.dtype, w.rows, caps_);
    Tensor t{nullptr, nullptr, dt, w.rows, w.cols};
    const size_t src_bytes = w.rows * row_bytes(w.dtype, w.cols);
    if (dt == w.dtype) {
      t.handle = device_alloc(src_bytes);
      copy_sync(t.handle, w.data, src_bytes, "upload weight " + w.name);
      if (is_scaled(dt)) {
        t.scales = device_alloc(w.rows * sizeof(float));
        copy_sync(t.scales, w.scales, w.rows * sizeof(float), "upload scales of " + w.name);
      }
    } else if (dt == DType::F32) {
      // A 1-D F16/BF16 vector (a norm weight): the norm kernels read F32.
      std::vector<float> f(w.rows * w.cols);
      const uint16_t* h = static_cast<const uint16_t*>(w.data);
      for (size_t i = 0; i < f.size(); ++i)
        f[i] = w.dtype == DType::F16 ? fp16_to_fp32(h[i]) : bf16_to_fp32(h[i]);
      t.handle = device_alloc(f.size() * sizeof(float));
      copy_sync(t.handle, f.data(), f.size() * sizeof(float), "upload weight " + w.name);
    } else {
      // F8_E4M3 on a device without FP8 tensor cores: dequantized to F16
      // once, here; the GEMMs then run it as an F16 weight.
      if (!fp8_note_) {
        std::fprintf(stderr,
                     "brisk: %s is sm_%d%d, without FP8 tensor cores: FP8 E4M3 weights run as F16 "
                     "(dequantized at load)\n",
                     probe_.name.c_str(), caps_.cc_major, caps_.cc_minor);
        fp8_note_ = true;
      }
      void* raw = device_alloc(src_bytes);
      void* sc = device_alloc(w.rows * sizeof(float));
      copy_sync(raw, w.data, src_bytes, "upload weight " + w.name);
      copy_sync(sc, w.scales, w.rows * sizeof(float), "upload scales of " + w.name);
      t.handle = device_alloc(w.rows * row_bytes(dt, w.cols));
      cuda::weight_to_half(ptr<uint16_t>(t), dt, raw, w.dtype, static_cast<float*>(sc), w.rows, w.cols,
                           stream_);
      launched("weight_to_half " + w.name);
      check(cudaStreamSynchronize(stream_), "convert weight " + w.name);
      device_free(raw);
      device_free(sc);
    }
    weights_[key] = t;
    return t;
  }

  Tensor alloc(DType dtype, int64_t rows, int64_t cols) override {
    ++ops_;
    const size_t bytes = rows * row_bytes(dtype, cols);
    Tensor t{device_alloc(bytes), nullptr, dtype, rows, cols};
    if (dtype == DType::I32) {
      // I32 tensors are what the model uploads every step (ids, positions,
      // slots, attention metadata): size the pinned staging for all of them,
      // and keep a host shadow of each so attention can size its launch
      // without reading the device.
      shadows_[t.handle].assign(rows * cols, 0);
      staged_bytes_ += align_up((int64_t)bytes, 64);
      if (staged_bytes_ > (int64_t)staging_bytes_) grow_staging(staged_bytes_);
    }
    return t;
  }

  void upload(Tensor dst, const void* src, int64_t rows) override {
    ++ops_;
    const size_t bytes = rows * row_bytes(dst.dtype, dst.cols);
    if (bytes == 0) return;
    if (capturing_) throw Error("internal: upload inside a CUDA graph capture");
    if (auto it = shadows_.find(dst.handle); it != shadows_.end()) {
      if (bytes > it->second.size() * sizeof(int32_t))
        throw Error("internal: upload of " + std::to_string(bytes) + " bytes into a tensor of " +
                    std::to_string(it->second.size() * sizeof(int32_t)));
      std::memcpy(it->second.data(), src, bytes);
    }
    const char* s = static_cast<const char*>(src);
    char* d = static_cast<char*>(dst.handle);
    for (size_t done = 0; done < bytes;) {
      const size_t chunk = std::min(bytes - done, staging_bytes_);
      if (staging_off_ + chunk > staging_bytes_) {
        // The ring is full: earlier copies out of it must finish first.
        check(cudaStreamSynchronize(stream_), "upload (staging wrap)");
        staging_off_ = 0;
      }
      std::memcpy(staging_ + staging_off_, s + done, chunk);
      check(cudaMemcpyAsync(d + done, staging_ + staging_off_, chunk, cudaMemcpyHostToDevice, stream_),
            "upload");
      staging_off_ += align_up((int64_t)chunk, 64);
      done += chunk;
    }
  }

  void download(void* dst, Tensor src, int64_t rows) override {
    const size_t bytes = rows * row_bytes(src.dtype, src.cols);
    if (capturing_) throw Error("internal: download inside a CUDA graph capture");
    check(cudaMemcpyAsync(dst, src.handle, bytes, cudaMemcpyDeviceToHost, stream_), "download");
    check(cudaStreamSynchronize(stream_), "download (synchronise)");
    staging_off_ = 0;  // every staged upload has been consumed
  }

  // ---- Ops ----

  void embed(Tensor out, Tensor table, Tensor ids, int n) override {
    cuda::embed(ptr<float>(out), table.handle, table.dtype, static_cast<const float*>(table.scales),
                ptr<int32_t>(ids), n, (int)table.cols, stream_);
    launched("embed", n, table.cols, table.dtype);
  }
  void rmsnorm(Tensor out, Tensor x, Tensor w, int n, float eps) override {
    cuda::rmsnorm(ptr<float>(out), ptr<float>(x), norm_weight(w), n, (int)x.cols, eps, stream_);
    launched("rmsnorm", n, x.cols);
  }
  void add_rmsnorm(Tensor x, Tensor residual, Tensor w, Tensor y, int n, float eps) override {
    cuda::add_rmsnorm(ptr<float>(x), ptr<float>(residual), norm_weight(w), ptr<float>(y), n, (int)x.cols, eps,
                      stream_);
    launched("add_rmsnorm", n, x.cols);
  }
  void silu_mul(Tensor out, Tensor g, Tensor u, int n) override {
    cuda::silu_mul(ptr<float>(out), ptr<float>(g), ptr<float>(u), (int64_t)n * g.cols, stream_);
    launched("silu_mul", n, g.cols);
  }
  void add(Tensor out, Tensor a, Tensor b, int n) override {
    cuda::add(ptr<float>(out), ptr<float>(a), ptr<float>(b), (int64_t)n * a.cols, stream_);
    launched("add", n, a.cols);
  }
  void gather_rows(Tensor out, Tensor x, Tensor rows, int n) override {
    cuda::gather_rows(ptr<float>(out), ptr<float>(x), ptr<int32_t>(rows), n, (int)x.cols, stream_);
    launched("gather_rows", n, x.cols);
  }
  void argmax_rows(Tensor out, Tensor x, int n, int cols) override {
    cuda::argmax_rows(ptr<int32_t>(out), ptr<float>(x), n, (int)x.cols, cols, stream_);
    launched("argmax_rows", n, x.cols);
  }
  void rope(Tensor x, Tensor pos, int n, int n_heads, int head_dim, int rot_dim, float theta) override {
    cuda::rope(ptr<float>(x), ptr<int32_t>(pos), n, n_heads, head_dim, rot_dim, theta, stream_);
    launched("rope", n, (int64_t)n_heads * head_dim);
  }

  void matmul(Tensor out, Tensor x, Tensor w, int n) override {
    const int N = (int)w.rows, K = (int)w.cols;
    if (n <= 0) return;
    if (w.dtype == DType::F32) {
      gemm_->sgemm(ptr<float>(out), ptr<float>(x), ptr<float>(w), n, N, K);
      return launched("sgemm", n, N, DType::F32, K);
    }
    if (n <= cuda::kGemvMaxRows) {
      // Weight-only: a small batch is bound by reading the weight, and
      // keeping activations in F32 costs nothing there.
      cuda::gemv(ptr<float>(out), ptr<float>(x), w.handle, w.dtype, static_cast<const float*>(w.scales), n, N,
                 K, stream_);
      return launched("gemv", n, N, w.dtype, K);
    }
    switch (gemm_path(w.dtype, N, K, caps_)) {
      case GemmPath::Sgemm:  // F32, handled above
        break;
      case GemmPath::Half:
        return gemm_half(out, x, w.handle, w.dtype, n, N, K);
      case GemmPath::LtInt8: {
        int8_t* q = static_cast<int8_t*>(scratch(act_, (size_t)n * K, "activations"));
        float* xs = static_cast<float*>(scratch(act_scale_, (size_t)n * sizeof(float), "activation scales"));
        int32_t* acc = static_cast<int32_t*>(scratch(acc_, (size_t)n * N * 4, "accumulator"));
        if (!act_copy_.holds(x, n, K, ActivationCopy::kInt8, q, xs, ops_)) {
          ++g_conversions;
          cuda::quantize_rows_i8(q, xs, ptr<float>(x), n, K, stream_);
          launched("quantize_rows_i8", n, K);
        }
        if (!gemm_->gemm_i8(acc, q, ptr<int8_t>(w), n, N, K)) break;  // -> dequantize below
        cuda::rescale_i32(ptr<float>(out), acc, xs, static_cast<const float*>(w.scales), n, N, stream_);
        launched("rescale_i32", n, N);
        return converted(out, x, n, N, K, ActivationCopy::kInt8, q, xs);
      }
      case GemmPath::LtFp8: {
        uint8_t* q = static_cast<uint8_t*>(scratch(act_, (size_t)n * K, "activations"));
        float* xs = static_cast<float*>(scratch(act_scale_, (size_t)n * sizeof(float), "activation scales"));
        float* acc = static_cast<float*>(scratch(acc_, (size_t)n * N * 4, "accumulator"));
        if (!act_copy_.holds(x, n, K, ActivationCopy::kFp8, q, xs, ops_)) {
          ++g_conversions;
          cuda::quantize_rows_f8(q, xs, ptr<float>(x), n, K, stream_);
          launched("quantize_rows_f8", n, K);
        }
        if (gemm_->gemm_f8_scaled(ptr<float>(out), q, ptr<uint8_t>(w), xs,
                                  static_cast<const float*>(w.scales), n, N, K)) {
          ++g_fp8_scaled;
          ++g_fp8_gemms;
          return converted(out, x, n, N, K, ActivationCopy::kFp8, q, xs);
        }
        if (!gemm_->gemm_f8(acc, q, ptr<uint8_t>(w), n, N, K)) break;  // -> dequantize below
        ++g_fp8_gemms;
        cuda::rescale_f32(ptr<float>(out), acc, xs, static_cast<const float*>(w.scales), n, N, stream_);
        launched("rescale_f32", n, N);
        return converted(out, x, n, N, K, ActivationCopy::kFp8, q, xs);
      }
      case GemmPath::Dequant:
        break;
    }
    // Dequant: the weight to F16 in the planned scratch, then the F16 GEMM.
    uint16_t* d = static_cast<uint16_t*>(scratch(dequant_, (size_t)N * K * 2, "dequantized weight"));
    cuda::weight_to_half(d, DType::F16, w.handle, w.dtype, static_cast<const float*>(w.scales), N, K,
                         stream_);
    launched("weight_to_half", N, K, w.dtype);
    gemm_half(out, x, d, DType::F16, n, N, K);
  }

  // ---- FusedDecode: the weight-only GEMV with its neighbours folded in ----
  int fused_decode_rows() const override { return opts_.fused_decode ? cuda::kGemvMaxRows : 0; }
  void norm_matmul(const Tensor* outs, const Tensor* ws, int count, Tensor x, Tensor norm_w, float eps,
                   int n) override {
    cuda::GemvFused a = fused_args(x, ws[0], n);
    a.norm_w = norm_weight(norm_w);
    a.eps = eps;
    if (count < 1 || count > cuda::kGemvMaxWeights)
      throw Error("internal: norm_matmul of " + std::to_string(count));
    for (int i = 0; i < count; ++i) a.w[i] = fused_weight(outs[i], ws[i], ws[0], x);
    a.count = count;
    cuda::gemv_fused(a, stream_);
    launched("norm_matmul", n, ws[0].rows, ws[0].dtype, ws[0].cols);
  }
  void norm_swiglu(Tensor out, Tensor x, Tensor norm_w, float eps, Tensor w_gate, Tensor w_up,
                   int n) override {
    if (w_gate.rows != w_up.rows) throw Error("internal: norm_swiglu with gate and up of different shapes");
    cuda::GemvFused a = fused_args(x, w_gate, n);
    a.norm_w = norm_weight(norm_w);
    a.eps = eps;
    a.w[0] = fused_weight(out, w_gate, w_gate, x);
    a.w[1] = fused_weight(out, w_up, w_gate, x);
    a.count = 2;
    a.epilogue = cuda::GemvEpilogue::SwiGLU;
    cuda::gemv_fused(a, stream_);
    launched("norm_swiglu", n, w_gate.rows, w_gate.dtype, w_gate.cols);
  }
  void matmul_add(Tensor x, Tensor in, Tensor w, int n) override {
    cuda::GemvFused a = fused_args(in, w, n);
    a.w[0] = fused_weight(x, w, w, in);
    a.count = 1;
    a.epilogue = cuda::GemvEpilogue::Accumulate;
    cuda::gemv_fused(a, stream_);
    launched("matmul_add", n, w.rows, w.dtype, w.cols);
  }
  bool norm_qkv_rope_kv_write(const Tensor* outs, const Tensor* ws, Tensor x, Tensor norm_w, float eps,
                              Tensor pos, Tensor slots, Tensor k_cache, Tensor v_cache, int n, int n_heads,
                              int n_kv_heads, int head_dim, int rot_dim, float theta) override {
    if (!opts_.fused_rope || ws[0].rows != (int64_t)n_heads * head_dim) return false;
    cuda::GemvFused a = fused_args(x, ws[0], n);
    a.norm_w = norm_weight(norm_w);
    a.eps = eps;
    for (int i = 0; i < 3; ++i) a.w[i] = fused_weight(outs[i], ws[i], ws[0], x);
    a.count = 3;
    cuda::GemvRope r;
    r.pos = ptr<int32_t>(pos);
    r.kv_slots = ptr<int32_t>(slots);
    r.head_dim = head_dim;
    r.rot_dim = rot_dim;
    r.theta = theta;
    r.k = kv(k_cache, n_kv_heads, head_dim);
    r.v = kv(v_cache, n_kv_heads, head_dim);
    if (!cuda::gemv_rope_kv_write(a, r, stream_)) return false;
    ++g_fused_rope;
    launched("norm_qkv_rope_kv_write", n, ws[0].rows, ws[0].dtype, ws[0].cols);
    return true;
  }

  void prefetch_weights(const Tensor* ws, const int* groups, int count) override {
    if (!opts_.l2_prefetch || l2_bytes_ == 0) return;
    cuda::PrefetchPart parts[cuda::kMaxPrefetchRanges];
    count = std::min(count, cuda::kMaxPrefetchRanges);
    for (int i = 0; i < count; ++i)
      parts[i] = cuda::PrefetchPart{ws[i].handle, row_bytes(ws[i].dtype, ws[i].cols), ws[i].rows, groups[i]};
    const std::vector<cuda::PrefetchRange> ranges =
        cuda::plan_l2_prefetch(parts, count, cuda::l2_prefetch_budget(l2_bytes_));
    if (ranges.empty()) return;
    cuda::l2_prefetch(ranges.data(), (int)ranges.size(), stream_);
    // Not launched(): that counts an op that writes, and this writes nothing.
    if (const std::string e = cuda::cuda_last_error(); !e.empty())
      throw Error("CUDA prefetch_weights [" + std::to_string(ranges.size()) + " ranges]: " + e);
  }

  bool plan_one_launch_decode(const DecodeLayer* layers, int n_layers, const DecodeShape& sh) override {
    if (!opts_.persistent_decode || n_layers <= 0) return false;
    const DType wdt = layers[0].wq.dtype, kvdt = layers[0].k_cache.dtype;
    std::string why = cuda::persistent_decode_unsupported(wdt, kvdt, sh.dim, sh.hidden, sh.n_heads,
                                                          sh.n_kv_heads, sh.head_dim, sh.rot_dim);
    for (int i = 0; i < n_layers && why.empty(); ++i) {
      const DecodeLayer& l = layers[i];
      for (const Tensor* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down})
        if (w->dtype != wdt) why = "layer " + std::to_string(i) + " mixes weight dtypes";
      if (l.k_cache.dtype != kvdt || l.v_cache.dtype != kvdt)
        why = "layer " + std::to_string(i) + " mixes KV cache dtypes";
    }
    cuda::PersistentPlan plan;
    if (why.empty()) {
      // Shared memory does not depend on the grid: plan once for it, then for the blocks that fit.
      const size_t smem = cuda::plan_persistent_decode(sh.dim, sh.hidden, sh.n_heads, sh.n_kv_heads,
                                                       sh.head_dim, sh.max_context, probe_.sm_count, 1)
                              .smem_bytes;
      const int per_sm = cuda::persistent_blocks_per_sm(wdt, smem);
      if (per_sm <= 0)
        why = "no block of " + std::to_string(smem) + " bytes of shared memory fits a multiprocessor";
      else
        plan = cuda::plan_persistent_decode(sh.dim, sh.hidden, sh.n_heads, sh.n_kv_heads, sh.head_dim,
                                            sh.max_context, probe_.sm_count, per_sm);
    }
    if (!why.empty()) {
      std::fprintf(stderr, "brisk: one-launch decode is off for this model: %s\n", why.c_str());
      return false;
    }
    std::vector<cuda::PersistentLayer> table(n_layers);
    for (int i = 0; i < n_layers; ++i) {
      const DecodeLayer& l = layers[i];
      table[i] = cuda::PersistentLayer{l.wq.handle,
                                       l.wk.handle,
                                       l.wv.handle,
                                       l.wo.handle,
                                       l.w_gate.handle,
                                       l.w_up.handle,
                                       l.w_down.handle,
                                       norm_weight(l.attn_norm),
                                       norm_weight(l.ffn_norm),
                                       l.k_cache.handle,
                                       l.v_cache.handle};
    }
    one_.args = cuda::PersistentDecodeArgs{};
    cuda::PersistentDecodeArgs& a = one_.args;
    void* t = device_alloc(table.size() * sizeof(cuda::PersistentLayer));
    copy_sync(t, table.data(), table.size() * sizeof(cuda::PersistentLayer), "upload the layer table");
    a.layers = static_cast<const cuda::PersistentLayer*>(t);
    a.n_layers = n_layers;
    a.wdt = wdt;
    a.kv_dt = kvdt;
    a.dim = sh.dim;
    a.hidden = sh.hidden;
    a.n_heads = sh.n_heads;
    a.n_kv_heads = sh.n_kv_heads;
    a.head_dim = sh.head_dim;
    a.rot_dim = sh.rot_dim;
    a.theta = sh.theta;
    a.eps = sh.eps;
    a.scale = 1.0f / std::sqrt((float)sh.head_dim);
    a.plan = plan;
    // Zeroed by device_alloc: the counters and the barrier start (and every launch leaves them) at zero.
    a.partials = static_cast<float*>(
        device_alloc(cuda::persistent_partials_floats(plan, sh.n_heads, sh.head_dim) * sizeof(float)));
    a.counters = static_cast<uint32_t*>(device_alloc(sh.n_heads * sizeof(uint32_t)));
    // A line of its own: every block polls it, and the merges' atomics hit the counters.
    a.barrier = static_cast<uint32_t*>(device_alloc(sizeof(uint32_t)));
    check(cudaStreamSynchronize(stream_), "plan one-launch decode");
    one_.planned = true;
    return true;
  }
  bool one_launch_decode(Tensor x, Tensor q, Tensor k, Tensor v, Tensor att, Tensor h, Tensor pos,
                         Tensor slots, const AttentionBatch& ab) override {
    if (!one_.planned || ab.num_seqs != 1) return false;
    cuda::PersistentDecodeArgs a = one_.args;
    a.x = ptr<float>(x);
    a.q = ptr<float>(q);
    a.k = ptr<float>(k);
    a.v = ptr<float>(v);
    a.att = ptr<float>(att);
    a.h = ptr<float>(h);
    a.pos = ptr<int32_t>(pos);
    a.slot = ptr<int32_t>(slots);
    a.seq_len = ptr<int32_t>(ab.seq_lens);
    a.block_table = ptr<int32_t>(ab.block_tables);
    a.block_size = ab.block_size;
    if (!cuda::persistent_decode(a, stream_)) {
      // The grid no longer fits the device at once: the fused kernels from now on.
      std::fprintf(
          stderr,
          "brisk: one-launch decode is off from now on: the device cannot hold its %d blocks at once\n",
          a.plan.grid);
      one_.planned = false;
      return false;
    }
    launched("one_launch_decode", 1, a.dim, a.wdt, a.n_layers);
    return true;
  }

  void kv_write(Tensor kc, Tensor vc, Tensor k, Tensor v, Tensor slots, int n, int n_kv_heads,
                int head_dim) override {
    cuda::kv_write(kv(kc, n_kv_heads, head_dim), kv(vc, n_kv_heads, head_dim), ptr<float>(k), ptr<float>(v),
                   ptr<int32_t>(slots), n, stream_);
    launched("kv_write", n, (int64_t)n_kv_heads * head_dim, kc.dtype);
  }
  void rope_kv_write(Tensor q, Tensor k, Tensor v, Tensor pos, Tensor slots, Tensor kc, Tensor vc, int n,
                     int n_heads, int n_kv_heads, int head_dim, int rot_dim, float theta) override {
    cuda::rope_kv_write(ptr<float>(q), ptr<float>(k), ptr<float>(v), ptr<int32_t>(pos), ptr<int32_t>(slots),
                        n, n_heads, rot_dim, theta, kv(kc, n_kv_heads, head_dim),
                        kv(vc, n_kv_heads, head_dim), stream_);
    launched("rope_kv_write", n, (int64_t)n_heads * head_dim, kc.dtype);
  }

  void attention(Tensor out, Tensor q, Tensor kc, Tensor vc, const AttentionBatch& b, int n_heads,
                 int n_kv_heads, int head_dim) override {
    const int S = b.num_seqs;
    if (S <= 0) return;
    // The launch is sized from host copies of what the model uploaded.
    const std::vector<int32_t>& qs = shadow(b.query_start, S + 1, "query_start");
    const std::vector<int32_t>& sl = shadow(b.seq_lens, S, "seq_lens");
    cuda::DevicePagedArgs a;
    a.num_seqs = S;
    a.num_query_rows = qs[S];
    for (int i = 0; i < S; ++i) {
      a.max_query_len = std::max(a.max_query_len, qs[i + 1] - qs[i]);
      a.max_seq_len = std::max(a.max_seq_len, sl[i]);
    }
    // A captured graph replays with other context lengths: its split count
    // must hold for the longest context the block table can address.
    if (capturing_) a.max_seq_len = b.max_blocks_per_seq * b.block_size;
    a.query_start = ptr<int32_t>(b.query_start);
    a.seq_lens = ptr<int32_t>(b.seq_lens);
    a.block_tables = ptr<int32_t>(b.block_tables);
    a.max_blocks_per_seq = b.max_blocks_per_seq;
    a.block_size = b.block_size;
    a.n_heads = n_heads;
    a.n_kv_heads = n_kv_heads;
    a.head_dim = head_dim;
    a.scale = 1.0f / std::sqrt((float)head_dim);
    // The kernel splits as far as the workspace it is given allows. Planned
    // (by a model): never more than the plan, so no step allocates. Ops
    // driven directly: grown to what this call can use.
    const int rows = std::max(a.num_query_rows, 1);
    size_t ws_bytes = cuda::attention_workspace_bytes(rows, n_heads, head_dim);
    void* ws = within_plan(attention_, ws_bytes, "attention workspace");
    // Split counters for in-kernel merging: zeroed when allocated (device_alloc), left zero by every call.
    size_t counter_bytes =
        opts_.split_merge_in_kernel ? cuda::attention_split_counters(rows, n_heads) * sizeof(uint32_t) : 0;
    auto* counters =
        static_cast<uint32_t*>(within_plan(attention_counters_, counter_bytes, "attention split counters"));
    cuda::paged_attention(ptr<float>(out), ptr<float>(q), kv(kc, n_kv_heads, head_dim),
                          kv(vc, n_kv_heads, head_dim), a, ws, ws_bytes, stream_, counters,
                          counter_bytes / sizeof(uint32_t));
    launched("paged_attention", a.num_query_rows, (int64_t)n_heads * head_dim, kc.dtype);
  }

  void copy_blocks(Tensor cache, const std::vector<std::pair<int32_t, int32_t>>& pairs, int block_size,
                   int n_kv_heads) override {
    ++ops_;
    // Device-to-device copies of whole blocks: no pair list to upload, so
    // copy-on-write needs no per-step buffer.
    const size_t bytes = (size_t)block_size * row_bytes(cache.dtype, cache.cols);
    const size_t scale_bytes = (size_t)block_size * n_kv_heads * sizeof(float);
    for (auto [src, dst] : pairs) {
      check(cudaMemcpyAsync(ptr<char>(cache) + dst * bytes, ptr<char>(cache) + src * bytes, bytes,
                            cudaMemcpyDeviceToDevice, stream_),
            "copy_blocks");
      if (cache.scales)
        check(cudaMemcpyAsync(static_cast<char*>(cache.scales) + dst * scale_bytes,
                              static_cast<char*>(cache.scales) + src * scale_bytes, scale_bytes,
                              cudaMemcpyDeviceToDevice, stream_),
              "copy_blocks (scales)");
    }
  }

  // ---- WorkspaceReserver ----

  void reserve_workspace(const std::vector<GemmUse>& gemms, int64_t max_decode_rows, int n_heads,
                         int head_dim) override {
    const WorkspacePlan p = plan_workspace(gemms, max_decode_rows, n_heads, head_dim, caps_);
    reserved_ = true;
    scratch(act_, p.act_bytes, "activations");
    scratch(act_scale_, p.act_scale_bytes, "activation scales");
    scratch(acc_, p.acc_bytes, "accumulator");
    scratch(dequant_, p.dequant_bytes, "dequantized weight");
    scratch(attention_, p.attention_bytes, "attention workspace");
    if (opts_.split_merge_in_kernel)
      scratch(attention_counters_, p.attention_counter_bytes, "attention split counters");
  }

  // ---- StepGraphs ----

  bool graphs_enabled() const override { return opts_.cuda_graphs; }
  bool has_graph(int bucket) const override { return graphs_.count(bucket) > 0; }
  void begin_capture() override {
    ++ops_;
    // Thread-local mode: another engine's thread may use CUDA meanwhile.
    check(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), "begin graph capture");
    capturing_ = true;
  }
  void end_capture(int bucket) override {
    ++ops_;
    capturing_ = false;
    cudaGraph_t g = nullptr;
    check(cudaStreamEndCapture(stream_, &g), "end graph capture (bucket " + std::to_string(bucket) + ")");
    cudaGraphExec_t exec = nullptr;
    const cudaError_t e = cudaGraphInstantiate(&exec, g, 0);
    cudaGraphDestroy(g);
    check(e, "instantiate graph (bucket " + std::to_string(bucket) + ")");
    graphs_[bucket] = exec;
    ++g_captures;
  }
  void abort_capture() noexcept override {
    ++ops_;
    if (!capturing_) return;
    capturing_ = false;
    cudaGraph_t g = nullptr;
    cudaStreamEndCapture(stream_, &g);
    if (g) cudaGraphDestroy(g);
    cudaGetLastError();
  }
  void replay(int bucket) override {
    ++ops_;
    auto it = graphs_.find(bucket);
    if (it == graphs_.end()) throw Error("internal: no CUDA graph for bucket " + std::to_string(bucket));
    check(cudaGraphLaunch(it->second, stream_), "graph launch (bucket " + std::to_string(bucket) + ")");
    ++g_replays;
  }

 private:
  struct Scratch {
    void* p = nullptr;
    size_t bytes = 0;
  };

  void* device_alloc(size_t bytes) {
    if (capturing_) throw Error("internal: device allocation inside a CUDA graph capture");
    void* p = nullptr;
    const size_t n = std::max<size_t>(bytes, 256);
    const cudaError_t e = cudaMalloc(&p, n);
    if (e != cudaSuccess) {
      cudaGetLastError();  // out of memory is not sticky: clear it
      size_t free_b = 0, total_b = 0;
      cudaMemGetInfo(&free_b, &total_b);
      throw Error("CUDA out of memory: cannot allocate " + format_bytes((int64_t)n) + " on " + probe_.name +
                  " (" + format_bytes((int64_t)free_b) + " free of " + format_bytes((int64_t)total_b) + ")");
    }
    ++g_allocations;
    buffers_.push_back(p);
    check(cudaMemsetAsync(p, 0, n, stream_), "zero a new buffer");
    return p;
  }
  void device_free(void* p) {
    auto it = std::find(buffers_.begin(), buffers_.end(), p);
    if (it != buffers_.end()) buffers_.erase(it);
    check(cudaStreamSynchronize(stream_), "free");
    check(cudaFree(p), "free");
  }
  // What an op may use of a planned buffer: with a model's plan, never more
  // than planned (`bytes` is cut to it: no step allocates); ops driven
  // directly grow it to what they ask. nullptr (and `bytes` 0) for none.
  void* within_plan(Scratch& s, size_t& bytes, const char* what) {
    if (reserved_) bytes = std::min(bytes, s.bytes);
    return bytes ? scratch(s, bytes, what) : nullptr;
  }
  // A planned workspace buffer; grows (outside a capture) when an op needs
  // more than planned, which only happens when ops are driven directly
  // rather than by a model that reserved its workspace.
  void* scratch(Scratch& s, size_t bytes, const char* what) {
    if (bytes <= s.bytes) return s.p;
    ++ops_;  // a scratch that grows loses what it held
    if (capturing_)
      throw Error(std::string("internal: the ") + what + " (" + format_bytes((int64_t)bytes) +
                  ") was not planned before a CUDA graph capture");
    if (s.p) device_free(s.p);
    s.p = nullptr;
    s.bytes = 0;
    s.p = device_alloc(align_up((int64_t)bytes));
    s.bytes = align_up((int64_t)bytes);
    return s.p;
  }
  void grow_staging(int64_t bytes) {
    if (staging_) {
      check(cudaStreamSynchronize(stream_), "staging");
      cudaFreeHost(staging_);
      staging_ = nullptr;
      staging_bytes_ = 0;
    }
    void* p = nullptr;
    check(cudaHostAlloc(&p, bytes, cudaHostAllocDefault), "pinned staging of " + format_bytes(bytes));
    ++g_allocations;
    staging_ = static_cast<char*>(p);
    staging_bytes_ = bytes;
    staging_off_ = 0;
  }
  void copy_sync(void* dst, const void* src, size_t bytes, const std::string& what) {
    check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_), what);
    check(cudaStreamSynchronize(stream_), what);
  }
  const std::vector<int32_t>& shadow(const Tensor& t, int count, const char* what) {
    auto it = shadows_.find(t.handle);
    if (it == shadows_.end() || (int)it->second.size() < count)
      throw Error(std::string("internal: attention's ") + what + " must be an uploaded I32 tensor");
    return it->second;
  }
  cuda::GemvFused fused_args(Tensor x, Tensor w, int n) {
    if (n < 1 || n > cuda::kGemvMaxRows || x.cols != w.cols)
      throw Error("internal: a fused decode op of " + std::to_string(n) + " rows, x [" +
                  std::to_string(x.cols) + "] and w [" + std::to_string(w.rows) + ", " +
                  std::to_string(w.cols) + "]");
    cuda::GemvFused a;
    a.x = ptr<float>(x);
    a.n = n;
    a.K = (int)w.cols;
    a.dt = w.dtype;
    return a;
  }
  // The weights of one fused launch share the first one's dtype and input width.
  cuda::GemvWeight fused_weight(Tensor out, Tensor w, Tensor first, Tensor x) {
    if (w.dtype != first.dtype || w.cols != x.cols || out.cols != w.rows)
      throw Error(std::string("internal: fused decode weights must share a dtype and width: ") +
                  dtype_name(w.dtype) + " [" + std::to_string(w.rows) + ", " + std::to_string(w.cols) +
                  "] beside " + dtype_name(first.dtype) + " [" + std::to_string(first.rows) + ", " +
                  std::to_string(first.cols) + "]");
    return cuda::GemvWeight{w.handle, static_cast<const float*>(w.scales), ptr<float>(out), (int)w.rows};
  }
  const float* norm_weight(const Tensor& w) {
    if (w.dtype != DType::F32)
      throw Error(std::string("internal: a norm weight on the CUDA backend must be 1-D (converted to F32 at "
                              "upload), got ") +
                  dtype_name(w.dtype) + " [" + std::to_string(w.rows) + ", " + std::to_string(w.cols) + "]");
    return ptr<float>(w);
  }
  void gemm_half(Tensor out, Tensor x, const void* w, DType dt, int n, int N, int K) {
    uint16_t* h = static_cast<uint16_t*>(scratch(act_, (size_t)n * K * 2, "activations"));
    const int kind = dt == DType::BF16 ? ActivationCopy::kBf16 : ActivationCopy::kF16;
    if (!act_copy_.holds(x, n, K, kind, h, nullptr, ops_)) {
      ++g_conversions;
      if (dt == DType::BF16)
        cuda::f32_to_bf16(h, ptr<float>(x), (int64_t)n * K, stream_);
      else
        cuda::f32_to_f16(h, ptr<float>(x), (int64_t)n * K, stream_);
      launched("f32_to_half", n, K);
    }
    gemm_->gemm_half(ptr<float>(out), h, w, dt == DType::BF16 ? CUDA_R_16BF : CUDA_R_16F, n, N, K);
    converted(out, x, n, N, K, kind, h, nullptr);
  }

  // Consecutive GEMMs on the same activations (a layer's q, k and v; gate
  // and up) convert or quantize them once: the copy in act_ (and its
  // scales) is reused while nothing else has run since it was made. ops_
  // counts everything that may write device memory or change what a
  // pointer holds — every launch (launched()), upload, allocation, block
  // copy and graph capture or replay — so a copy made at ops_ == at is
  // still what x converts to. A matmul whose output overlaps its input
  // leaves no copy behind.
  struct ActivationCopy {
    enum Kind { kNone = -1, kF16 = 0, kBf16 = 1, kInt8 = 2, kFp8 = 3 };
    const void* x = nullptr;
    int n = 0, K = 0, kind = kNone;
    const void* data = nullptr;
    const void* scales = nullptr;
    uint64_t at = 0;
    bool holds(const Tensor& t, int rows, int cols, int k, const void* d, const void* sc,
               uint64_t now) const {
      return kind == k && at == now && x == t.handle && n == rows && K == cols && data == d && scales == sc;
    }
  };
  void converted(Tensor out, Tensor x, int n, int N, int K, int kind, const void* data, const void* scales) {
    const char* o = static_cast<const char*>(out.handle);
    const char* i = static_cast<const char*>(x.handle);
    const bool overlap = o < i + (size_t)n * K * sizeof(float) && i < o + (size_t)n * N * sizeof(float);
    act_copy_ = overlap ? ActivationCopy{} : ActivationCopy{x.handle, n, K, kind, data, scales, ops_};
  }
  // After every launch: a launch error names the op and the shape.
  void launched(const std::string& op, int64_t rows = 0, int64_t cols = 0, DType dt = DType::F32,
                int64_t k = 0) {
    ++ops_;
    const std::string e = cuda::cuda_last_error();
    if (e.empty()) return;
    throw Error("CUDA " + op + " [" + std::to_string(rows) + " x " + std::to_string(cols) +
                (k ? ", K=" + std::to_string(k) : std::string()) + ", " + dtype_name(dt) + "]: " + e);
  }

  BackendOptions opts_;
  uint64_t ops_ = 1;  // see ActivationCopy
  ActivationCopy act_copy_;
  CudaProbe probe_;
  DeviceCaps caps_;
  cudaStream_t stream_ = nullptr;
  size_t l2_bytes_ = 0;  // the device's L2 cache (0: unknown, no prefetches)
  // The one-launch decode's fixed arguments (layer table, plan, partials, counters), once planned.
  struct OneLaunch {
    bool planned = false;
    cuda::PersistentDecodeArgs args;
  } one_;
  std::unique_ptr<cudabe::Gemm> gemm_;
  void* blas_ws_ = nullptr;
  std::vector<void*> buffers_;
  std::map<std::tuple<const void*, int, int64_t, int64_t>, Tensor> weights_;
  std::unordered_map<const void*, std::vector<int32_t>> shadows_;
  char* staging_ = nullptr;
  size_t staging_bytes_ = 0, staging_off_ = 0;
  int64_t staged_bytes_ = 0;
  Scratch act_, act_scale_, acc_, dequant_, attention_, attention_counters_;
  std::unordered_map<int, cudaGraphExec_t> graphs_;
  bool capturing_ = false;
  bool reserved_ = false;  // a model planned the workspace: ops stay within it
  bool fp8_note_ = false;
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(const BackendOptions& opts) {
  return std::make_unique<CudaBackend>(opts);
}

int64_t cuda_device_allocations() { return g_allocations.load(); }
bool cuda_dependent_launch_active() { return cuda::dependent_launch_active(); }
int64_t cuda_graph_captures() { return g_captures.load(); }
int64_t cuda_graph_replays() { return g_replays.load(); }
int64_t cuda_fp8_scaled_gemms() { return g_fp8_scaled.load(); }
int64_t cuda_fused_rope_launches() { return g_fused_rope.load(); }
int64_t cuda_fp8_gemms() { return g_fp8_gemms.load(); }
int64_t cuda_activation_conversions() { return g_conversions.load(); }
void cuda_force_decode_attention(const std::string& kernel) {
  using K = cuda::DecodeAttention;
  static const std::pair<const char*, K> kinds[] = {
      {"auto", K::Auto}, {"tiled", K::Tiled}, {"per-head", K::PerHead}, {"per-group", K::PerGroup}};
  for (const auto& [name, k] : kinds)
    if (kernel == name) return cuda::set_decode_attention(k);
  throw Error("unknown decode attention kernel '" + kernel + "' (auto, tiled, per-head, per-group)");
}
int64_t cuda_split_merge_in_kernel_launches() { return cuda::split_merge_in_kernel_launches(); }
int64_t cuda_l2_prefetch_launches() { return cuda::l2_prefetch_launches(); }
int64_t cuda_persistent_decode_launches() { return cuda::persistent_decode_launches(); }

}  // namespace brisk
