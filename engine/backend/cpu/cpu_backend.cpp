// The CPU backend: tensors are host pointers, ops are kernels/cpu calls on
// one persistent thread pool.
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/huge_page_buffer.h"
#include "brisk/error.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/ops.h"
#include "model/model_weights.h"

namespace brisk {

namespace {

template <typename T>
T* ptr(const Tensor& t) {
  return static_cast<T*>(t.handle);
}

KvCacheView kv_view(const Tensor& cache, int n_kv_heads, int head_dim) {
  return KvCacheView{cache.handle, static_cast<float*>(cache.scales), cache.dtype, n_kv_heads, head_dim};
}

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(const BackendOptions& o)
      : pool_(o.threads),
        w8a8_(o.int8_activations),
        w8a24_(!o.int8_activations && !o.int8_fma),
        q8_w16_(!o.int8_fma),
        fp8_dpbf16_(!o.fp8_fma) {
    // At most half the memory available now goes to copies, so a second
    // engine on the same model (A/B) or a model near the machine's size
    // keeps reading its weights in place from the file mapping instead.
    if (o.huge_page_weights && HugePageBuffer::available())
      huge_budget_ = HugePageBuffer::memory_available() / 2;
  }
  std::string name() const override { return "cpu"; }

  // A weight of at least a huge page is copied into huge pages (while the
  // budget lasts); smaller ones, and the rest, are used in place.
  Tensor weight(const WeightTensor& w) override {
    const size_t bytes = w.rows * row_bytes(w.dtype, w.cols);
    void* data = const_cast<void*>(w.data);
    if (bytes >= HugePageBuffer::kHugePage && huge_used_ + (int64_t)bytes <= huge_budget_) {
      HugePageBuffer buf(bytes);
      std::memcpy(buf.data(), w.data, bytes);
      data = buf.data();
      huge_used_ += (int64_t)bytes;
      huge_.push_back(std::move(buf));
    }
    return Tensor{data, const_cast<float*>(w.scales), w.dtype, w.rows, w.cols};
  }
  Tensor alloc(DType dtype, int64_t rows, int64_t cols) override {
    const size_t bytes = rows * row_bytes(dtype, cols);
    auto buf = std::unique_ptr<uint8_t[]>(new uint8_t[bytes]());
    Tensor t{buf.get(), nullptr, dtype, rows, cols};
    buffers_.push_back(std::move(buf));
    return t;
  }
  void upload(Tensor dst, const void* src, int64_t rows) override {
    std::memcpy(dst.handle, src, rows * row_bytes(dst.dtype, dst.cols));
  }
  void download(void* dst, Tensor src, int64_t rows) override {
    std::memcpy(dst, src.handle, rows * row_bytes(src.dtype, src.cols));
  }
  void embed(Tensor out, Tensor table, Tensor ids, int n) override {
    cpu::embed(pool_, ptr<float>(out), table.handle, table.dtype, ptr<int32_t>(ids), n, (int)table.cols,
               static_cast<const float*>(table.scales));
  }
  void rmsnorm(Tensor out, Tensor x, Tensor w, int n, float eps) override {
    cpu::rmsnorm(pool_, ptr<float>(out), ptr<float>(x), norm_weight(w), n, (int)x.cols, eps);
  }
  void matmul(Tensor out, Tensor x, Tensor w, int n) override {
    if (w8a8_ && w.dtype == DType::I8)
      return cpu::matmul_w8a8(pool_, ptr<float>(out), ptr<float>(x), static_cast<const int8_t*>(w.handle),
                              static_cast<const float*>(w.scales), n, (int)w.rows, (int)w.cols);
    // W8A24 where the CPU has AVX-512 VNNI; elsewhere (or with int8_fma) the
    // weights are widened to F32.
    if (w8a24_ && w.dtype == DType::I8 &&
        cpu::matmul_w8a24(pool_, ptr<float>(out), ptr<float>(x), static_cast<const int8_t*>(w.handle),
                          static_cast<const float*>(w.scales), n, (int)w.rows, (int)w.cols))
      return;
    // Q8_0: 16-bit integer dot products where the CPU has AVX-512; elsewhere
    // (or with int8_fma) the weights are widened to F32.
    if (q8_w16_ && w.dtype == DType::Q8_0 &&
        cpu::matmul_q8_0_w16(pool_, ptr<float>(out), ptr<float>(x), w.handle, n, (int)w.rows, (int)w.cols))
      return;
    // FP8: BF16 dot products where the CPU has AVX-512 BF16 and VBMI;
    // elsewhere (or with fp8_fma) the weights are widened to F32.
    if (fp8_dpbf16_ && (w.dtype == DType::F8_E4M3 || w.dtype == DType::F8_E5M2) &&
        cpu::matmul_fp8_dpbf16(pool_, ptr<float>(out), ptr<float>(x), static_cast<const uint8_t*>(w.handle),
                               w.dtype, static_cast<const float*>(w.scales), n, (int)w.rows, (int)w.cols))
      return;
    cpu::matmul(pool_, ptr<float>(out), ptr<float>(x), w.handle, w.dtype, n, (int)w.rows, (int)w.cols,
                static_cast<const float*>(w.scales));
  }
  void rope(Tensor x, Tensor pos, int n, int n_heads, int head_dim, int rot_dim, float theta) override {
    cpu::rope(pool_, ptr<float>(x), ptr<int32_t>(pos), n, n_heads, head_dim, rot_dim, theta);
  }
  void kv_write(Tensor kc, Tensor vc, Tensor k, Tensor v, Tensor slots, int n, int n_kv_heads,
                int head_dim) override {
    cpu::kv_write(pool_, kv_view(kc, n_kv_heads, head_dim), kv_view(vc, n_kv_heads, head_dim), ptr<float>(k),
                  ptr<float>(v), ptr<int32_t>(slots), n);
  }
  void rope_kv_write(Tensor q, Tensor k, Tensor v, Tensor pos, Tensor slots, Tensor kc, Tensor vc, int n,
                     int n_heads, int n_kv_heads, int head_dim, int rot_dim, float theta) override {
    cpu::rope_kv_write(pool_, ptr<float>(q), ptr<float>(k), ptr<float>(v), ptr<int32_t>(pos),
                       ptr<int32_t>(slots), n, n_heads, rot_dim, theta, kv_view(kc, n_kv_heads, head_dim),
                       kv_view(vc, n_kv_heads, head_dim));
  }
  void attention(Tensor out, Tensor q, Tensor kc, Tensor vc, const AttentionBatch& b, int n_heads,
                 int n_kv_heads, int head_dim) override {
    PagedAttentionArgs a;
    a.num_seqs = b.num_seqs;
    a.query_start = ptr<int32_t>(b.query_start);
    a.seq_lens = ptr<int32_t>(b.seq_lens);
    a.block_tables = ptr<int32_t>(b.block_tables);
    a.max_blocks_per_seq = b.max_blocks_per_seq;
    a.block_size = b.block_size;
    a.n_heads = n_heads;
    a.n_kv_heads = n_kv_heads;
    a.head_dim = head_dim;
    a.scale = 1.0f / std::sqrt((float)head_dim);
    cpu::paged_attention(pool_, ptr<float>(out), ptr<float>(q), kv_view(kc, n_kv_heads, head_dim),
                         kv_view(vc, n_kv_heads, head_dim), a);
  }
  void add_rmsnorm(Tensor x, Tensor residual, Tensor w, Tensor y, int n, float eps) override {
    cpu::add_rmsnorm(pool_, ptr<float>(x), ptr<float>(residual), norm_weight(w), ptr<float>(y), n,
                     (int)x.cols, eps);
  }
  void silu_mul(Tensor out, Tensor g, Tensor u, int n) override {
    cpu::silu_mul(pool_, ptr<float>(out), ptr<float>(g), ptr<float>(u), (int64_t)n * g.cols);
  }
  void add(Tensor out, Tensor a, Tensor b, int n) override {
    cpu::add(pool_, ptr<float>(out), ptr<float>(a), ptr<float>(b), (int64_t)n * a.cols);
  }
  void gather_rows(Tensor out, Tensor x, Tensor rows, int n) override {
    const int32_t* r = ptr<int32_t>(rows);
    for (int i = 0; i < n; ++i)
      std::memcpy(ptr<float>(out) + (int64_t)i * x.cols, ptr<float>(x) + (int64_t)r[i] * x.cols, x.cols * 4);
  }
  void argmax_rows(Tensor out, Tensor x, int n, int cols) override {
    cpu::argmax_rows(pool_, ptr<int32_t>(out), ptr<float>(x), n, (int)x.cols, cols);
  }
  void copy_blocks(Tensor cache, const std::vector<std::pair<int32_t, int32_t>>& pairs, int block_size,
                   int n_kv_heads) override {
    const size_t bytes = (size_t)block_size * row_bytes(cache.dtype, cache.cols);
    const size_t scale_floats = (size_t)block_size * n_kv_heads;
    float* scales = static_cast<float*>(cache.scales);
    for (auto [src, dst] : pairs) {
      std::memcpy(ptr<uint8_t>(cache) + dst * bytes, ptr<uint8_t>(cache) + src * bytes, bytes);
      if (scales)
        std::memcpy(scales + dst * scale_floats, scales + src * scale_floats, scale_floats * sizeof(float));
    }
  }

 private:
  // Norm weights may be stored F16/BF16; the norm kernel wants F32, so
  // convert those (tiny) vectors once and keep them.
  const float* norm_weight(const Tensor& w) {
    if (w.dtype == DType::F32) return ptr<float>(w);
    // Keyed by storage and type: a freed weight's address may come back as
    // another weight (tests build and drop weights one after another).
    for (auto& [key, buf] : converted_)
      if (key.first == w.handle && key.second == w.dtype && (int64_t)buf.size() == w.cols) return buf.data();
    std::vector<float> f(w.cols);
    for (int64_t i = 0; i < w.cols; ++i) {
      const uint16_t h = ptr<uint16_t>(w)[i];
      f[i] = w.dtype == DType::F16 ? fp16_to_fp32(h) : bf16_to_fp32(h);
    }
    converted_.emplace_back(std::make_pair(w.handle, w.dtype), std::move(f));
    return converted_.back().second.data();
  }

  ThreadPool pool_;
  bool w8a8_ = false;
  bool w8a24_ = true;
  bool q8_w16_ = true;
  bool fp8_dpbf16_ = true;
  std::vector<std::unique_ptr<uint8_t[]>> buffers_;
  std::vector<HugePageBuffer> huge_;  // weights copied into huge pages
  int64_t huge_budget_ = 0, huge_used_ = 0;
  std::vector<std::pair<std::pair<void*, DType>, std::vector<float>>> converted_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(const BackendOptions& opts) {
  return std::make_unique<CpuBackend>(opts);
}

std::unique_ptr<Backend> make_cpu_backend(int threads, bool int8_activations, bool huge_page_weights) {
  BackendOptions o;
  o.threads = threads;
  o.int8_activations = int8_activations;
  o.huge_page_weights = huge_page_weights;
  return make_cpu_backend(o);
}

}  // namespace brisk
