// Every launch function of kernels/cuda/cuda_kernels.h against its
// kernels/reference twin on random inputs (odd sizes, GQA ratios 1/2/4/8/12,
// block sizes 8/16/32, contexts crossing block boundaries and long ones that
// split, mixed prefill + decode batches, every KV and weight dtype). Outputs
// are poisoned (NaN, or a code the kernel never writes) before each run, so an
// element the kernel skips fails the comparison. Each test function collects
// every failing case (shape, dtype, max error, first bad index) and reports
// them all, so one GPU run is enough to see everything that is wrong.
//
// Tolerances:
//  - exact (bit for bit): add, gather_rows, argmax_rows, embed, f32_to_f16/bf16,
//    weight_to_half, quantize_rows_i8 (ref::quantize_activation_row),
//    quantize_rows_f8 (the F8 KV rule of ref::kv_store_head), rescale_*,
//    kv_write (cache bytes and scales), copy_blocks.
//  - silu_mul, rmsnorm, add_rmsnorm: |d| <= 2e-5 * (1 + |ref|) (F32 vs double).
//  - rope: |d| <= 2e-6 * (1 + |ref|) (both compute the angles in double).
//  - rope_kv_write: q as rope; the cache decoded through ref::kv_load within
//    one code step of the reference's (a rotated value one F32 ulp away may
//    round to the neighbouring code): F32 1e-5, F16 1e-3, BF16 8e-3 relative,
//    I8 1.01 * scale, F8_E4M3 0.07 relative (+ scale).
//  - gemv: |d| <= 2e-5 * sum_k |x_k w_k| + 1e-6 (F32 accumulation vs double).
//  - gemv_fused: 3e-5 * sum_k |h_k w_k| + 1e-5, where h is the normalised x
//    (the GPU's inverse RMS is an F32 sum in another order); SwiGLU scales
//    that by how far silu(g) * u moves with g and u.
//  - gemv_rope_kv_write: exact against gemv_fused then rope_kv_write on the
//    same device (the same sums in the same order, the same angle code),
//    also where the pairs outnumber the resident warps (grid-stride loop).
//  - paged_attention: GPU and reference read the same cache bytes, so only
//    F32 vs double rounding differs: |d| <= 1e-4 * (1 + |ref|) for every dtype.
//    Split partitions merged inside the decode kernel: exact against the
//    reduce kernel's merge, and every split counter back at zero.
#include <QtTest/QtTest>
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/dtype.h"
#include "kernels/reference/attention.h"
#include "kernels/reference/ops.h"
#include "kernels/support/paged_layout.h"

#ifdef BRISK_HAVE_CUDA
#include <cuda_runtime.h>

#include "kernels/cuda/cuda_kernels.h"
#endif

using namespace brisk;

#ifdef BRISK_HAVE_CUDA
namespace {

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}
void sync(const char* what) {
  const std::string launch = cuda::cuda_last_error();
  if (!launch.empty()) throw std::runtime_error(std::string(what) + " launch: " + launch);
  check(cudaDeviceSynchronize(), what);
}

struct Buf {
  void* p = nullptr;
  size_t bytes = 0;
  explicit Buf(size_t n) : bytes(n) { check(cudaMalloc(&p, std::max<size_t>(n, 16)), "cudaMalloc"); }
  template <class T>
  explicit Buf(const std::vector<T>& v) : Buf(v.size() * sizeof(T)) {
    check(cudaMemcpy(p, v.data(), bytes, cudaMemcpyHostToDevice), "upload");
  }
  ~Buf() { cudaFree(p); }
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
  template <class T>
  T* as() const {
    return static_cast<T*>(p);
  }
  void poison(int byte = 0xff) { check(cudaMemset(p, byte, bytes), "poison"); }  // 0xff: NaN as F32/F16
  template <class T>
  std::vector<T> get() const {
    std::vector<T> v(bytes / sizeof(T));
    check(cudaMemcpy(v.data(), p, bytes, cudaMemcpyDeviceToHost), "download");
    return v;
  }
};

// Failures of one test function, reported together.
struct Report {
  QStringList fails;
  int cases = 0;
  void fail(const QString& s) { fails << s; }
  QString text() const {
    return QString("%1 of %2 cases failed:\n  ").arg(fails.size()).arg(cases) + fails.join("\n  ");
  }
};

// got vs ref with |d| <= atol + rtol * |ref|; a NaN in got (a skipped or poisoned element) always fails.
void compare(Report& r, const QString& what, const float* got, const float* ref, size_t n, double atol,
             double rtol, const std::vector<double>* mag = nullptr, double mag_tol = 0.0) {
  ++r.cases;
  double worst = 0.0, worst_excess = -1.0;
  size_t bad = 0, first = n, wi = 0;
  for (size_t i = 0; i < n; ++i) {
    const double d = std::fabs((double)got[i] - ref[i]);
    const double tol = atol + rtol * std::fabs(ref[i]) + (mag ? mag_tol * (*mag)[i] : 0.0);
    const bool ok = std::isfinite(got[i]) == std::isfinite(ref[i]) && (!std::isfinite(ref[i]) || d <= tol);
    if (std::isfinite(d) && d > worst) worst = d;
    if (!ok) {
      ++bad;
      if (first == n) first = i;
      const double ex = std::isfinite(d) ? d / tol : 1e300;
      if (ex > worst_excess) worst_excess = ex, wi = i;
    }
  }
  if (bad)
    r.fail(
        QString(
            "%1: %2/%3 elements off; max abs err %4; first bad [%5] got %6 ref %7; worst [%8] got %9 ref %10")
            .arg(what)
            .arg(bad)
            .arg(n)
            .arg(worst, 0, 'g', 4)
            .arg(first)
            .arg(got[first], 0, 'g', 9)
            .arg(ref[first], 0, 'g', 9)
            .arg(wi)
            .arg(got[wi], 0, 'g', 9)
            .arg(ref[wi], 0, 'g', 9));
}

template <class T>
void compare_exact(Report& r, const QString& what, const std::vector<T>& got, const std::vector<T>& ref) {
  ++r.cases;
  if (got.size() != ref.size()) return r.fail(what + ": size mismatch");
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < got.size(); ++i)
    if (std::memcmp(&got[i], &ref[i], sizeof(T)) != 0 && !bad++) first = i;
  if (bad)
    r.fail(QString("%1: %2/%3 elements differ; first [%4] got %5 ref %6")
               .arg(what)
               .arg(bad)
               .arg(got.size())
               .arg(first)
               .arg((double)got[first], 0, 'g', 9)
               .arg((double)ref[first], 0, 'g', 9));
}

std::vector<float> uniform(std::mt19937& rng, size_t n, float lo, float hi) {
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

const DType kKvTypes[] = {DType::F32, DType::F16, DType::BF16, DType::I8, DType::F8_E4M3};
const DType kWeightTypes[] = {DType::F32, DType::F16,     DType::BF16,   DType::Q8_0,
                              DType::I8,  DType::F8_E4M3, DType::F8_E5M2};

// Random weights [rows, cols] of type dt (finite codes only) and positive row scales.
struct Weights {
  std::vector<uint8_t> bytes;
  std::vector<float> scales;
};
Weights random_weights(std::mt19937& rng, DType dt, int rows, int cols) {
  Weights w;
  w.bytes.resize(row_bytes(dt, cols) * rows);
  w.scales = uniform(rng, rows, 0.001f, 0.05f);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::uniform_int_distribution<int> byte(0, 255);
  const size_t n = (size_t)rows * cols;
  switch (dt) {
    case DType::F32:
      for (size_t i = 0; i < n; ++i) reinterpret_cast<float*>(w.bytes.data())[i] = u(rng);
      break;
    case DType::F16:
    case DType::BF16:
      for (size_t i = 0; i < n; ++i)
        reinterpret_cast<uint16_t*>(w.bytes.data())[i] =
            dt == DType::F16 ? fp32_to_fp16(u(rng)) : fp32_to_bf16(u(rng));
      break;
    case DType::Q8_0:
      for (size_t b = 0; b < n / kQ8_0BlockSize; ++b) {
        BlockQ8_0 blk;
        blk.d = fp32_to_fp16(0.002f + 0.02f * (u(rng) + 1.0f));
        for (auto& q : blk.qs) q = (int8_t)(byte(rng) - 128);
        std::memcpy(w.bytes.data() + b * sizeof(BlockQ8_0), &blk, sizeof(blk));
      }
      break;
    default:  // one-byte codes; no NaN / inf codes
      for (size_t i = 0; i < n; ++i) {
        uint8_t b;
        do b = (uint8_t)byte(rng);
        while ((dt == DType::F8_E4M3 && (b & 0x7f) == 0x7f) || (dt == DType::F8_E5M2 && (b & 0x7c) == 0x7c));
        w.bytes[i] = b;
      }
  }
  return w;
}

// The weights as F32 (scales applied), through the reference.
std::vector<float> dequant(const Weights& w, DType dt, int rows, int cols) {
  std::vector<int32_t> ids(rows);
  std::iota(ids.begin(), ids.end(), 0);
  std::vector<float> out((size_t)rows * cols);
  ref::embed(out.data(), w.bytes.data(), dt, ids.data(), rows, cols, w.scales.data());
  return out;
}

// A KV cache on the host (the reference's view) and its device twin.
struct HostCache {
  std::vector<uint8_t> data;
  std::vector<float> scales;
  KvCacheView view;
  HostCache(DType dt, int nslots, int nkv, int D)
      : data(row_bytes(dt, (int64_t)nkv * D) * nslots), scales((size_t)nslots * nkv, 0.0f) {
    view = KvCacheView{data.data(), scales.data(), dt, nkv, D};
  }
};
struct DevCache {
  Buf data, scales;
  cuda::DeviceKvCache c;
  explicit DevCache(const HostCache& h) : data(h.data), scales(h.scales) {
    c = cuda::DeviceKvCache{data.p, is_scaled(h.view.dtype) ? scales.as<float>() : nullptr, h.view.dtype,
                            h.view.n_kv_heads, h.view.head_dim};
  }
};

QString kv_name(DType dt) { return dtype_name(dt); }

// The fused GEMV's arguments for x [n, K] and weights of dt, through the
// RMSNorm with weights `norm` when one is given; weights, outputs and the
// epilogue are the caller's.
cuda::GemvFused gemv_args(const Buf& x, int n, int K, DType dt, const Buf* norm = nullptr, float eps = 0.0f) {
  cuda::GemvFused a;
  a.x = x.as<float>();
  a.n = n;
  a.K = K;
  a.dt = dt;
  if (norm) {
    a.norm_w = norm->as<float>();
    a.eps = eps;
  }
  return a;
}

}  // namespace
#endif

class TestCudaKernels : public QObject {
  Q_OBJECT
 private slots:
  void initTestCase() {
#ifndef BRISK_HAVE_CUDA
    QSKIP("built without CUDA (nvcc not found at configure time, or BRISK_WITH_CUDA=OFF)");
#else
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) QSKIP(qPrintable(QString("no CUDA device: %1").arg(cudaGetErrorString(e))));
    if (n == 0) QSKIP("no CUDA device: cudaGetDeviceCount returned 0");
    cudaDeviceProp prop{};
    cudaGetDeviceProperties(&prop, 0);
    qInfo("device: %s, sm_%d%d, %d SMs", prop.name, prop.major, prop.minor, prop.multiProcessorCount);
#endif
  }

#ifdef BRISK_HAVE_CUDA
  void elementwise() {
    Report r;
    std::mt19937 rng(1);
    try {
      for (int64_t count : {1, 7, 1003, 4096, 65539}) {
        const auto a = uniform(rng, count, -6, 6), b = uniform(rng, count, -3, 3);
        Buf da(a), db(b), out(count * 4);
        std::vector<float> ref(count);
        out.poison();
        cuda::add(out.as<float>(), da.as<float>(), db.as<float>(), count, nullptr);
        sync("add");
        ref::add(ref.data(), a.data(), b.data(), count);
        compare_exact(r, QString("add count=%1").arg(count), out.get<float>(), ref);
        out.poison();
        cuda::silu_mul(out.as<float>(), da.as<float>(), db.as<float>(), count, nullptr);
        sync("silu_mul");
        ref::silu_mul(ref.data(), a.data(), b.data(), count);
        compare(r, QString("silu_mul count=%1").arg(count), out.get<float>().data(), ref.data(), count, 2e-5,
                2e-5);
        // Offset by one float: the unaligned (scalar) path.
        if (count > 1) {
          out.poison();
          cuda::add(out.as<float>() + 1, da.as<float>() + 1, db.as<float>() + 1, count - 1, nullptr);
          sync("add unaligned");
          ref::add(ref.data() + 1, a.data() + 1, b.data() + 1, count - 1);
          const auto got = out.get<float>();
          compare(r, QString("add unaligned count=%1").arg(count - 1), got.data() + 1, ref.data() + 1,
                  count - 1, 0, 0);
        }
      }
      for (int cols : {1, 3, 33, 64, 1001, 4096, 5120})
        for (int n : {1, 3, 17}) {
          const auto x = uniform(rng, (size_t)n * cols, -2, 2), res = uniform(rng, (size_t)n * cols, -1, 1),
                     w = uniform(rng, cols, 0.5f, 1.5f);
          Buf dx(x), dres(res), dw(w), dy((size_t)n * cols * 4);
          std::vector<float> y((size_t)n * cols);
          const QString shape = QString("n=%1 cols=%2").arg(n).arg(cols);
          dy.poison();
          cuda::rmsnorm(dy.as<float>(), dx.as<float>(), dw.as<float>(), n, cols, 1e-5f, nullptr);
          sync("rmsnorm");
          ref::rmsnorm(y.data(), x.data(), w.data(), n, cols, 1e-5f);
          compare(r, "rmsnorm " + shape, dy.get<float>().data(), y.data(), y.size(), 2e-5, 2e-5);
          dy.poison();
          cuda::add_rmsnorm(dx.as<float>(), dres.as<float>(), dw.as<float>(), dy.as<float>(), n, cols, 1e-5f,
                            nullptr);
          sync("add_rmsnorm");
          auto xs = x;
          ref::add_rmsnorm(xs.data(), res.data(), w.data(), y.data(), n, cols, 1e-5f);
          compare_exact(r, "add_rmsnorm sum " + shape, dx.get<float>(), xs);
          compare(r, "add_rmsnorm " + shape, dy.get<float>().data(), y.data(), y.size(), 2e-5, 2e-5);
        }
      for (int cols : {3, 64, 1001}) {
        const int rows = 9, n = 6;
        const auto x = uniform(rng, (size_t)rows * cols, -1, 1);
        const std::vector<int32_t> idx = {8, 0, 3, 3, 7, 1};
        Buf dx(x), di(idx), out((size_t)n * cols * 4);
        out.poison();
        cuda::gather_rows(out.as<float>(), dx.as<float>(), di.as<int32_t>(), n, cols, nullptr);
        sync("gather_rows");
        std::vector<float> ref((size_t)n * cols);
        for (int i = 0; i < n; ++i)
          std::copy_n(x.begin() + (size_t)idx[i] * cols, cols, ref.begin() + (size_t)i * cols);
        compare_exact(r, QString("gather_rows cols=%1").arg(cols), out.get<float>(), ref);
      }
      {  // Conversions over every magnitude F16/BF16 cover: normals, subnormals, overflow, specials.
        std::vector<float> x = {0.0f,   -0.0f, 1.0f,          65504.0f,      65520.0f, 1e6f,
                                -1e-8f, 6e-8f, 3e-8f,         1e-40f,        INFINITY, -INFINITY,
                                NAN,    0.1f,  1.0009765625f, 1.00146484375f};
        std::uniform_int_distribution<uint32_t> bits(0, 0xffffffffu);
        while (x.size() < 10008) {
          const uint32_t b = bits(rng);
          float f;
          std::memcpy(&f, &b, 4);
          x.push_back(f);
        }
        Buf dx(x), out(x.size() * 2);
        for (bool bf : {false, true})
          for (size_t count : {x.size(), x.size() - 1}) {  // the float4 path and the scalar one
            out.poison(0x55);
            (bf ? cuda::f32_to_bf16 : cuda::f32_to_f16)(out.as<uint16_t>(), dx.as<float>(), (int64_t)count,
                                                        nullptr);
            sync("f32_to_half");
            std::vector<uint16_t> ref(x.size(), 0x5555);
            for (size_t i = 0; i < count; ++i) ref[i] = bf ? fp32_to_bf16(x[i]) : fp32_to_fp16(x[i]);
            compare_exact(r, QString("%1 count=%2").arg(bf ? "f32_to_bf16" : "f32_to_f16").arg(count),
                          out.get<uint16_t>(), ref);
          }
      }
      for (int cols : {1, 33, 4096})
        for (int n : {1, 5}) {
          auto x = uniform(rng, (size_t)n * cols, -3, 3);
          if (n > 1) std::fill_n(x.begin() + cols, cols, 0.0f);  // an all-zero row: scale 0, codes 0
          Buf dx(x), q8((size_t)n * cols), sc(n * 4);
          q8.poison(0x80);  // -128: never produced (codes are clamped to +-127)
          sc.poison();
          cuda::quantize_rows_i8(q8.as<int8_t>(), sc.as<float>(), dx.as<float>(), n, cols, nullptr);
          sync("quantize_rows_i8");
          std::vector<int8_t> rq((size_t)n * cols);
          std::vector<float> rs(n);
          for (int t = 0; t < n; ++t)
            ref::quantize_activation_row(rq.data() + (size_t)t * cols, &rs[t], x.data() + (size_t)t * cols,
                                         cols);
          const QString shape = QString("n=%1 cols=%2").arg(n).arg(cols);
          compare_exact(r, "quantize_rows_i8 codes " + shape, q8.get<int8_t>(), rq);
          compare_exact(r, "quantize_rows_i8 scales " + shape, sc.get<float>(), rs);
          q8.poison(0x7f);  // the E4M3 NaN code: never produced from finite input
          sc.poison();
          cuda::quantize_rows_f8(q8.as<uint8_t>(), sc.as<float>(), dx.as<float>(), n, cols, nullptr);
          sync("quantize_rows_f8");
          std::vector<uint8_t> fq((size_t)n * cols);
          for (int t = 0; t < n; ++t)
            ref::kv_store_head(
                KvCacheView{fq.data() + (size_t)t * cols, rs.data() + t, DType::F8_E4M3, 1, cols}, 0, 0,
                x.data() + (size_t)t * cols);
          compare_exact(r, "quantize_rows_f8 codes " + shape, q8.get<uint8_t>(), fq);
          compare_exact(r, "quantize_rows_f8 scales " + shape, sc.get<float>(), rs);
        }
      {
        const int n = 5, N = 1001;
        std::vector<int32_t> acc((size_t)n * N);
        std::uniform_int_distribution<int32_t> ai(-2000000, 2000000);
        for (auto& v : acc) v = ai(rng);
        const auto accf = uniform(rng, (size_t)n * N, -500, 500), xs = uniform(rng, n, 0.001f, 0.1f),
                   ws = uniform(rng, N, 0.001f, 0.1f);
        Buf da(acc), daf(accf), dxs(xs), dws(ws), y((size_t)n * N * 4);
        std::vector<float> ref((size_t)n * N), reff((size_t)n * N);
        for (int t = 0; t < n; ++t)
          for (int j = 0; j < N; ++j) {
            ref[(size_t)t * N + j] = ((float)acc[(size_t)t * N + j] * xs[t]) * ws[j];
            reff[(size_t)t * N + j] = (accf[(size_t)t * N + j] * xs[t]) * ws[j];
          }
        y.poison();
        cuda::rescale_i32(y.as<float>(), da.as<int32_t>(), dxs.as<float>(), dws.as<float>(), n, N, nullptr);
        sync("rescale_i32");
        compare_exact(r, "rescale_i32", y.get<float>(), ref);
        y.poison();
        cuda::rescale_f32(y.as<float>(), daf.as<float>(), dxs.as<float>(), dws.as<float>(), n, N, nullptr);
        sync("rescale_f32");
        compare_exact(r, "rescale_f32", y.get<float>(), reff);
      }
    } catch (const std::exception& e) {
      r.fail(QString("CUDA error: %1").arg(e.what()));
    }
    QVERIFY2(r.fails.isEmpty(), qPrintable(r.text()));
  }

  void embed_and_weight_to_half() {
    Report r;
    std::mt19937 rng(2);
    try {
      for (DType dt : kWeightTypes)
        for (int dim : {32, 96, 100, 4096}) {
          if (dt == DType::Q8_0 && dim % kQ8_0BlockSize) continue;
          const int vocab = 37, n = 9;
          const Weights w = random_weights(rng, dt, vocab, dim);
          const std::vector<int32_t> ids = {0, 36, 5, 5, 17, 1, 35, 20, 9};
          Buf dw(w.bytes), ds(w.scales), di(ids), y((size_t)n * dim * 4);
          const QString shape = QString("%1 dim=%2").arg(dtype_name(dt)).arg(dim);
          y.poison();
          cuda::embed(y.as<float>(), dw.p, dt, ds.as<float>(), di.as<int32_t>(), n, dim, nullptr);
          sync("embed");
          std::vector<float> ref((size_t)n * dim);
          ref::embed(ref.data(), w.bytes.data(), dt, ids.data(), n, dim, w.scales.data());
          compare_exact(r, "embed " + shape, y.get<float>(), ref);
          const auto all = dequant(w, dt, vocab, dim);
          for (DType out_dt : {DType::F16, DType::BF16}) {
            Buf h((size_t)vocab * dim * 2);
            h.poison(0x55);
            cuda::weight_to_half(h.as<uint16_t>(), out_dt, dw.p, dt, ds.as<float>(), vocab, dim, nullptr);
            sync("weight_to_half");
            std::vector<uint16_t> rh(all.size());
            for (size_t i = 0; i < all.size(); ++i)
              rh[i] = out_dt == DType::F16 ? fp32_to_fp16(all[i]) : fp32_to_bf16(all[i]);
            compare_exact(r, QString("weight_to_half %1 -> %2").arg(shape, dtype_name(out_dt)),
                          h.get<uint16_t>(), rh);
          }
        }
    } catch (const std::exception& e) {
      r.fail(QString("CUDA error: %1").arg(e.what()));
    }
    QVERIFY2(r.fails.isEmpty(), qPrintable(r.text()));
  }

  void gemv() {
    Report r;
    std::mt19937 rng(3);
    struct Shape {
      int N, K;
    };
    const Shape shapes[] = {{1, 32},     {33, 96},    {257, 1024}, {100, 4160},
                            {513, 2048}, {64, 11008}, {17, 999},   { 50, 1000 }};
    try {
      for (DType dt : kWeightTypes)
        for (const Shape& sh : shapes) {
          if (dt == DType::Q8_0 && sh.K % kQ8_0BlockSize) continue;
          const Weights w = random_weights(rng, dt, sh.N, sh.K);
          const auto wf = dequant(w, dt, sh.N, sh.K);
          Buf dw(w.bytes), ds(w.scales);
          for (int n : {1, 2, 5, 8, 11}) {
            const auto x = uniform(rng, (size_t)n * sh.K, -1, 1);
            Buf dx(x), y((size_t)n * sh.N * 4);
            y.poison();
            cuda::gemv(y.as<float>(), dx.as<float>(), dw.p, dt, ds.as<float>(), n, sh.N, sh.K, nullptr);
            sync("gemv");
            std::vector<float> ref((size_t)n * sh.N);
            ref::matmul(ref.data(), x.data(), w.bytes.data(), dt, n, sh.N, sh.K, w.scales.data());
            std::vector<double> mag(ref.size(), 0.0);
            for (int m = 0; m < n; ++m)
              for (int j = 0; j < sh.N; ++j) {
                double s = 0;
                for (int k = 0; k < sh.K; ++k)
                  s += std::fabs((double)x[(size_t)m * sh.K + k] * wf[(size_t)j * sh.K + k]);
                mag[(size_t)m * sh.N + j] = s;
              }
            compare(r, QString("gemv %1 n=%2 N=%3 K=%4").arg(dtype_name(dt)).arg(n).arg(sh.N).arg(sh.K),
                    y.get<float>().data(), ref.data(), ref.size(), 1e-6, 0.0, &mag, 2e-5);
          }
        }
    } catch (const std::exception& e) {
      r.fail(QString("CUDA error: %1").arg(e.what()));
    }
    QVERIFY2(r.fails.isEmpty(), qPrintable(r.text()));
  }

  // Greedy sampling on the device: against ref::argmax_rows with a stride
  // past the columns scanned, ties, -inf rows and NaNs (also in column 0).
  void argmax_rows() {
    Report r;
    std::mt19937 rng(5);
    std::uniform_int_distribution<int> small(-2, 2);
    std::uniform_real_distribution<float> u(-5.0f, 5.0f);
    try {
      for (int N : {1, 31, 256, 257, 4100, 32000})
        for (int M : {1, 9})
          for (bool vec : {false, true}) {
            // vec: a stride and column count that are multiples of 4 (the 16-byte load path)
            const int stride = vec ? (N + 3) / 4 * 4 + 4 : N + 3;
            std::vector<float> x((size_t)M * stride);
            for (size_t i = 0; i < x.size(); ++i) x[i] = (i % 3 == 0) ? (float)small(rng) : u(rng);
            for (int m = 0; m < M; ++m) {
              float* row = x.data() + (size_t)m * stride;
              if (m % 3 == 1) row[rng() % N] = NAN;
              if (m % 4 == 2) std::fill(row, row + N, -INFINITY);
              if (m == 8) row[0] = NAN;
              if (m == 7) std::fill(row, row + N, NAN);
              row[N] = 1e30f;  // past the columns scanned
            }
            std::vector<int32_t> ref(M);
            ref::argmax_rows(ref.data(), x.data(), M, stride, N);
            Buf dx(x), out((size_t)M * 4);
            out.poison();
            cuda::argmax_rows(out.as<int32_t>(), dx.as<float>(), M, stride, N, nullptr);
            sync("argmax_rows");
            compare_exact(r, QString("argmax_rows M=%1 N=%2 stride %3").arg(M).arg(N).arg(stride),
                          out.get<int32_t>(), ref);
          }
    } catch (const std::exception& e) {
      r.fail(QString("CUDA error: %1").arg(e.what()));
    }
    QVERIFY2(r.fails.isEmpty(), qPrintable(r.text()));
  }

  // The fused decode GEMV: RMSNorm in the staging of x, up to three weights
  // in one launch, and the accumulate / SwiGLU epilogues, against the
  // reference ops composed (rmsnorm, matmul, add, silu_mul).
  void gemv_fused() {
    Report r;
    std::mt19937 rng(4);
    struct Shape {
      int K, N0, N1, N2;
    };
    const Shape shapes[] = {{96, 40, 8, 8}, {1000, 64, 16, 16}, {2048, 256, 64, 64}, { 4160, 33, 7, 7 }};
    const float eps = 1e-5f;
    // |h_k w_k| summed: the scale of a dot product's rounding error.
    auto magnitude = [](const std::vector<float>& h, const std::vector<float>& wf, int n, int N, int K) {
      std::vector<double> mag((size_t)n * N, 0.0);
      for (int m = 0; m < n; ++m)
        for (int j = 0; j < N; ++j) {
          double s = 0;
          for (int k = 0; k < K; ++k) s += std::fabs((double)h[(size_t)m * K + k] * wf[(size_t)j * K + k]);
          mag[(size_t)m * N + j] = s;
        }
      return mag;
    };
    try {
      for (DType dt : kWeightTypes)
        for (const Shape& sh : shapes) {
          if (dt == DType::Q8_0 && sh.K % kQ8_0BlockSize) continue;
          const int K = sh.K, Ns[3] = {sh.N0, sh.N1, sh.N2};
          Weights w[3];
          std::vector<float> wf[3];
          for (int i = 0; i < 3; ++i) {
            w[i] = random_weights(rng, dt, Ns[i], K);
            wf[i] = dequant(w[i], dt, Ns[i], K);
          }
          // SwiGLU pairs w[0] with a second weight of its shape.
          const Weights wu = random_weights(rng, dt, sh.N0, K);
          const auto wuf = dequant(wu, dt, sh.N0, K);
          Buf dw0(w[0].bytes), dw1(w[1].bytes), dw2(w[2].bytes), ds0(w[0].scales), ds1(w[1].scales),
              ds2(w[2].scales), dwu(wu.bytes), dsu(wu.scales);
          const Buf* dws[3] = {&dw0, &dw1, &dw2};
          const Buf* dss[3] = {&ds0, &ds1, &ds2};
          const auto norm = uniform(rng, K, 0.5f, 1.5f);
          Buf dnorm(norm);
          for (int n : {1, 3, 8, 11}) {
            const QString tag = QString("%1 n=%2 K=%3 N=%4/%5/%6")
                                    .arg(dtype_name(dt))
                                    .arg(n)
                                    .arg(K)
                                    .arg(sh.N0)
                                    .arg(sh.N1)
                                    .arg(sh.N2);
            const auto x = uniform(rng, (size_t)n * K, -2, 2);
            std::vector<float> h((size_t)n * K);
            ref::rmsnorm(h.data(), x.data(), norm.data(), n, K, eps);
            Buf dx(x);

            // Norm + three weights, stored.
            {
              Buf y0((size_t)n * Ns[0] * 4), y1((size_t)n * Ns[1] * 4), y2((size_t)n * Ns[2] * 4);
              const Buf* ys[3] = {&y0, &y1, &y2};
              cuda::GemvFused a = gemv_args(dx, n, K, dt, &dnorm, eps);
              a.count = 3;
              for (int i = 0; i < 3; ++i) {
                const_cast<Buf*>(ys[i])->poison();
                a.w[i] = cuda::GemvWeight{dws[i]->p, dss[i]->as<float>(), ys[i]->as<float>(), Ns[i]};
              }
              cuda::gemv_fused(a, nullptr);
              sync("gemv_fused norm x3");
              for (int i = 0; i < 3; ++i) {
                std::vector<float> ref((size_t)n * Ns[i]);
                ref::matmul(ref.data(), h.data(), w[i].bytes.data(), dt, n, Ns[i], K, w[i].scales.data());
                const auto mag = magnitude(h, wf[i], n, Ns[i], K);
                compare(r, QString("norm_matmul[%1] ").arg(i) + tag, ys[i]->get<float>().data(), ref.data(),
                        ref.size(), 1e-5, 0.0, &mag, 3e-5);
              }
            }
            // Accumulate (a residual add), no norm.
            {
              const auto y0 = uniform(rng, (size_t)n * Ns[0], -3, 3);
              Buf y(y0);
              cuda::GemvFused a = gemv_args(dx, n, K, dt);
              a.count = 1;
              a.epilogue = cuda::GemvEpilogue::Accumulate;
              a.w[0] = cuda::GemvWeight{dw0.p, ds0.as<float>(), y.as<float>(), Ns[0]};
              cuda::gemv_fused(a, nullptr);
              sync("gemv_fused accumulate");
              std::vector<float> prod((size_t)n * Ns[0]), ref(prod.size());
              ref::matmul(prod.data(), x.data(), w[0].bytes.data(), dt, n, Ns[0], K, w[0].scales.data());
              ref::add(ref.data(), y0.data(), prod.data(), (int64_t)ref.size());
              const auto mag = magnitude(x, wf[0], n, Ns[0], K);
              compare(r, "matmul_add " + tag, y.get<float>().data(), ref.data(), ref.size(), 1e-5, 1e-6, &mag,
                      3e-5);
            }
            // Norm + SwiGLU.
            {
              Buf y((size_t)n * Ns[0] * 4);
              y.poison();
              cuda::GemvFused a = gemv_args(dx, n, K, dt, &dnorm, eps);
              a.count = 2;
              a.epilogue = cuda::GemvEpilogue::SwiGLU;
              a.w[0] = cuda::GemvWeight{dw0.p, ds0.as<float>(), y.as<float>(), Ns[0]};
              a.w[1] = cuda::GemvWeight{dwu.p, dsu.as<float>(), y.as<float>(), Ns[0]};
              cuda::gemv_fused(a, nullptr);
              sync("gemv_fused swiglu");
              std::vector<float> g((size_t)n * Ns[0]), u(g.size()), ref(g.size());
              ref::matmul(g.data(), h.data(), w[0].bytes.data(), dt, n, Ns[0], K, w[0].scales.data());
              ref::matmul(u.data(), h.data(), wu.bytes.data(), dt, n, Ns[0], K, wu.scales.data());
              ref::silu_mul(ref.data(), g.data(), u.data(), (int64_t)ref.size());
              // silu(g) * u moves by about |u| per unit of g (|silu'| <= 1.1) and by |silu(g)| per unit of u.
              const auto mg = magnitude(h, wf[0], n, Ns[0], K), mu = magnitude(h, wuf, n, Ns[0], K);
              std::vector<double> mag(ref.size());
              for (size_t i = 0; i < mag.size(); ++i)
                mag[i] = 1.1 * mg[i] * std::fabs(u[i]) + mu[i] * (std::fabs(g[i]) + 1.0);
              compare(r, "norm_swiglu " + tag, y.get<float>().data(), ref.data(), ref.size(), 1e-5, 1e-5,
                      &mag, 3e-5);
            }
          }
        }
    } catch (const std::exception& e) {
      r.fail(QString("CUDA error: %1").arg(e.what()));
    }
    QVERIFY2(r.fails.isEmpty(), qPrintable(r.text()));
  }

  // The q/k/v GEMV with RoPE and the KV write in its epilogue against the
  // two launches it replaces (gemv_fused, then rope_kv_write) on the same
  // device: the same sums in the same order, so q, k, v and the cache bytes
  // must be identical. Shapes: head_dim 64 fully rotated and 80 with 64
  // rotated, GQA 1 and 4, n 1/3/8/11 (11: two row groups), one padding row
  // (slot -1) that must leave the cache alone. Scaled caches and shapes the
  // streaming kernel cannot take are refused (false, nothing written).
  void gemv_rope_kv_write() {
    Report r;
    std::mt19937 rng(11);
    const int K = 1024;  // whole 16-byte batches per lane for every vector weight type
    const float eps = 1e-5f, theta = 10000.0f;
    try {
      for (DType dt : kWeightTypes) {
        if (dt == DType::Q8_0) continue;
        for (DType kv : {DType::F32, DType::F16, DType::BF16})
          // (head_dim, KV heads, query heads, GEMV blocks per SM): the last has more rotation pairs
          // (1536) than one block per multiprocessor has warps, so warps walk the grid-stride loop
          // (the next pair's loads issued and its angle computed while the current pair finishes).
          for (const auto& shape : std::initializer_list<std::array<int, 4>>{
                   {64, 4, 4, 0}, {64, 1, 4, 0}, {80, 4, 4, 0}, {80, 1, 4, 0}, {
                     64,
                     8,
                     32,
                     1
                   }}) {
            {
              const auto [D, nkv, nh, blocks_per_sm] = shape;
              cuda::set_gemv_blocks_per_sm(blocks_per_sm);
              const int rot = D == 80 ? 64 : D, nslots = 48;
              const int Ns[3] = {nh * D, nkv * D, nkv * D};
              Weights w[3];
              for (int i = 0; i < 3; ++i) w[i] = random_weights(rng, dt, Ns[i], K);
              Buf dw0(w[0].bytes), dw1(w[1].bytes), dw2(w[2].bytes), ds0(w[0].scales), ds1(w[1].scales),
                  ds2(w[2].scales);
              const Buf* dws[3] = {&dw0, &dw1, &dw2};
              const Buf* dss[3] = {&ds0, &ds1, &ds2};
              const auto norm = uniform(rng, K, 0.5f, 1.5f);
              Buf dnorm(norm);
              for (int n : {1, 3, 8, 11}) {
                const QString tag = QString("%1 kv %2 D=%3 rot=%4 nh=%5 nkv=%6 n=%7 blocks/SM %8")
                                        .arg(dtype_name(dt))
                                        .arg(kv_name(kv))
                                        .arg(D)
                                        .arg(rot)
                                        .arg(nh)
                                        .arg(nkv)
                                        .arg(n)
                                        .arg(blocks_per_sm);
                const auto x = uniform(rng, (size_t)n * K, -2, 2);
                std::vector<int32_t> pos(n), slot(n);
                for (int t = 0; t < n; ++t) {
                  pos[t] = 7 + 131 * t;
                  slot[t] = (5 + 13 * t) % nslots;
                }
                if (n > 1) slot[1] = -1;
                Buf dx(x), dpos(pos), dslot(slot);
                HostCache hk(kv, nslots, nkv, D), hv(kv, nslots, nkv, D);
                std::fill(hk.data.begin(), hk.data.end(), 0xab);
                std::fill(hv.data.begin(), hv.data.end(), 0xcd);
                DevCache fk(hk), fv(hv), sk(hk), sv(hv);  // folded, separate
                Buf fy0((size_t)n * Ns[0] * 4), fy1((size_t)n * Ns[1] * 4), fy2((size_t)n * Ns[2] * 4);
                Buf sy0((size_t)n * Ns[0] * 4), sy1((size_t)n * Ns[1] * 4), sy2((size_t)n * Ns[2] * 4);
                const Buf* fys[3] = {&fy0, &fy1, &fy2};
                const Buf* sys[3] = {&sy0, &sy1, &sy2};
                auto args = [&](const Buf* const* ys) {
                  cuda::GemvFused a = gemv_args(dx, n, K, dt, &dnorm, eps);
                  a.count = 3;
                  for (int i = 0; i < 3; ++i) {
                    const_cast<Buf*>(ys[i])->poison();
                    a.w[i] = cuda::GemvWeight{dws[i]->p, dss[i]->as<float>(), ys[i]->as<float>(), Ns[i]};
                  }
                  return a;
                };
                cuda::GemvRope rp;
                rp.pos = dpos.as<int32_t>();
                rp.kv_slots = dslot.as<int32_t>();
                rp.head_dim = D;
                rp.rot_dim = rot;
                rp.theta = theta;
                rp.k = fk.c;
                rp.v = fv.c;
                ++r.cases;
                if (!cuda::gemv_rope_kv_write(args(fys), rp, nullptr)) {
                  r.fail("gemv_rope_kv_write refused " + tag);
                  continue;
                }
                sync("gemv_rope_kv_write");
                cuda::gemv_fused(args(sys), nullptr);
                cuda::rope_kv_write(sy0.as<float>(), sy1.as<float>(), sy2.as<float>(), dpos.as<int32_t>(),
                                    dslot.as<int32_t>(), n, nh, rot, theta, sk.c, sv.c, nullptr);
                sync("gemv_fused + rope_kv_write");
                const char* names[3] = {"q", "k", "v"};
                for (int i = 0; i < 3; ++i)
                  compare_exact(r, QString("folded %1 ").arg(names[i]) + tag, fys[i]->get<float>(),
                                sys[i]->get<float>());
                compare_exact(r, "folded K cache " + tag, fk.data.get<uint8_t>(), sk.data.get<uint8_t>());
                compare_exact(r, "folded V cache " + tag, fv.data.get<uint8_t>(), sv.data.get<uint8_t>());
                // The padding row's slot was never written: the background is intact outside real slots.
                auto kc = fk.data.get<uint8_t>();
                const size_t rowb = row_bytes(kv, (int64_t)nkv * D);
                size_t touched = 0;
                for (int s2 = 0; s2 < nslots; ++s2) {
                  const bool real = std::find(slot.begin(), slot.end(), s2) != slot.end();
                  bool differs = false;
                  for (size_t b = 0; b < rowb; ++b) differs = differs || kc[s2 * rowb + b] != 0xab;
                  touched += differs;
                  ++r.cases;
                  if (differs && !real)
                    r.fail(QString("folded K cache slot %1 written (no row has it) ").arg(s2) + tag);
                }
                ++r.cases;
                const size_t want = std::count_if(slot.begin(), slot.end(), [](int v) { return v >= 0; });
                if (touched != want)
                  r.fail(QString("folded K cache: %1 slots written, %2 expected ").arg(touched).arg(want) +
                         tag);
              }
            }
          }
      }
      cuda::set_gemv_blocks_per_sm(0);
      // Refusals: a scaled cache, Q8_0 weights, K the streaming kernel cannot take; nothing is written.
      {
        const int D = 64, nkv = 2, nh = 4, n = 2;
        for (int which = 0; which < 3; ++which) {
          const DType dt = which == 1 ? DType::Q8_0 : DType::F16;
          const DType kv = which == 0 ? DType::I8 : DType::F16;
          const int Kr = which == 2 ? 320 : 1024;
          const int Ns[3] = {nh * D, nkv * D, nkv * D};
          Weights w[3];
          for (int i = 0; i < 3; ++i) w[i] = random_weights(rng, dt, Ns[i], Kr);
          Buf dw0(w[0].bytes), dw1(w[1].bytes), dw2(w[2].bytes), ds(w[0].scales);
          const auto x = uniform(rng, (size_t)n * Kr, -2, 2);
          const std::vector<int32_t> pos = {3, 4}, slot = {0, 1};
          Buf dx(x), dpos(pos), dslot(slot);
          HostCache hk(kv, 8, nkv, D), hv(kv, 8, nkv, D);
          std::fill(hk.data.begin(), hk.data.end(), 0xab);
          DevCache dk(hk), dv(hv);
          Buf y0((size_t)n * Ns[0] * 4), y1((size_t)n * Ns[1] * 4), y2((size_t)n * Ns[2] * 4);
          y0.poison();
          cuda::GemvFused a = gemv_args(dx, n, Kr, dt);
          a.count = 3;
          a.w[0] = cuda::GemvWeight{dw0.p, ds.as<float>(), y0.as<float>(), Ns[0]};
          a.w[1] = cuda::GemvWeight{dw1.p, ds.as<float>(), y1.as<float>(), Ns[1]};
          a.w[2] = cuda::GemvWeight{dw2.p, ds.as<float>(), y2.as<float>(), Ns[2]};
          cuda::GemvRope rp;
          rp.pos = dpos.as<int32_t>();
          rp.kv_slots = dslot.as<int32_t>();
          rp.head_dim = D;
          rp.rot_dim = D;
          rp.k = dk.c;
          rp.v = dv.c;
          const QString tag =
              QString("refusal %1 weights, %2 cache, K=%3").arg(dtype_name(dt)).arg(kv_name(kv)).arg(Kr);
          ++r.cases;
          if (cuda::gemv_rope_kv_write(a, rp, nullptr)) r.fail(tag + ": accepted");
          sync("gemv_rope_kv_write refusal");
          const auto got = y0.get<uint32_t>();
          ++r.cases;
          if (std::any_of(got.begin(), got.end(), [](uint32_t v) { return v != 0xffffffffu; }))
            r.fail(tag + ": q written");
          compare_exact(r, tag + ": K cache untouched", dk.data.get<uint8_t>(), hk.data);
        }
      }
    } catch (const std::exception& e) {
      r.fail(QString("CUDA error: %1").arg(e.what()));
    }
    cuda::set_gemv_blocks_per_sm(0);
    QVERIFY2(r.fails.isEmpty(), qPrintable(r.text()));
  }

  void rope_and_kv_cache() {
    Report r;
    std::mt19937 rng(4);
    try {
      const int T = 7;
      std::vector<int32_t> pos = {0, 1, 2, 17, 255, 1000, 3999};
      Buf dpos(pos);
      for (int D : {36, 64, 80, 128, 256})
        for (int rot : {D, D / 2})
          for (float theta : {10000.0f, 500000.0f}) {
            const int nh = 5;
            const auto x = uniform(rng, (size_t)T * nh * D, -2, 2);
            Buf dx(x);
            cuda::rope(dx.as<float>(), dpos.as<int32_t>(), T, nh, D, rot, theta, nullptr);
            sync("rope");
            auto ref = x;
            ref::rope(ref.data(), pos.data(), T, nh, D, rot, theta);
            compare(r, QString("rope D=%1 rot=%2 theta=%3").arg(D).arg(rot).arg(theta),
                    dx.get<float>().data(), ref.data(), ref.size(), 2e-6, 2e-6);
          }
      for (DType dt : kKvTypes)
        for (int D : {36, 64, 80, 128, 256})
          for (int nkv : {1, 4}) {
            const int nslots = 64, nh = nkv * 2;
            const std::vector<int32_t> slot = {5, 63, 0, 17, 16, 40, 41};
            const auto k = uniform(rng, (size_t)T * nkv * D, -2, 2),
                       v = uniform(rng, (size_t)T * nkv * D, -2, 2),
                       q = uniform(rng, (size_t)T * nh * D, -2, 2);
            HostCache hk(dt, nslots, nkv, D), hv(dt, nslots, nkv, D);
            std::fill(hk.data.begin(), hk.data.end(), 0xab);  // the same background on both sides
            std::fill(hv.data.begin(), hv.data.end(), 0xcd);
            std::fill(hk.scales.begin(), hk.scales.end(), -7.0f);
            std::fill(hv.scales.begin(), hv.scales.end(), -9.0f);
            DevCache dk(hk), dv(hv);
            Buf dkr(k), dvr(v), dslot(slot), dq(q);
            const QString shape = QString("%1 D=%2 nkv=%3").arg(kv_name(dt)).arg(D).arg(nkv);
            cuda::kv_write(dk.c, dv.c, dkr.as<float>(), dvr.as<float>(), dslot.as<int32_t>(), T, nullptr);
            sync("kv_write");
            {
              HostCache rk = hk, rv = hv;
              rk.view.data = rk.data.data(), rk.view.scales = rk.scales.data();
              rv.view.data = rv.data.data(), rv.view.scales = rv.scales.data();
              ref::kv_write(rk.view, rv.view, k.data(), v.data(), slot.data(), T);
              compare_exact(r, "kv_write K bytes " + shape, dk.data.get<uint8_t>(), rk.data);
              compare_exact(r, "kv_write V bytes " + shape, dv.data.get<uint8_t>(), rv.data);
              if (is_scaled(dt)) {
                compare_exact(r, "kv_write K scales " + shape, dk.scales.get<float>(), rk.scales);
                compare_exact(r, "kv_write V scales " + shape, dv.scales.get<float>(), rv.scales);
              }
            }
            // rope_kv_write into fresh caches.
            DevCache ek(hk), ev(hv);
            const int rot = D == 80 ? 64 : D;
            cuda::rope_kv_write(dq.as<float>(), dkr.as<float>(), dvr.as<float>(), dpos.as<int32_t>(),
                                dslot.as<int32_t>(), T, nh, rot, 10000.0f, ek.c, ev.c, nullptr);
            sync("rope_kv_write");
            HostCache rk = hk, rv = hv;
            rk.view.data = rk.data.data(), rk.view.scales = rk.scales.data();
            rv.view.data = rv.data.data(), rv.view.scales = rv.scales.data();
            auto rq = q;
            ref::rope_kv_write(rq.data(), k.data(), v.data(), pos.data(), slot.data(), T, nh, rot, 10000.0f,
                               rk.view, rv.view);
            compare(r, "rope_kv_write q " + shape, dq.get<float>().data(), rq.data(), rq.size(), 2e-6, 2e-6);
            compare_exact(r, "rope_kv_write k input untouched " + shape, dkr.get<float>(), k);
            for (int which = 0; which < 2; ++which) {
              HostCache got = which ? hv : hk;
              got.data = (which ? ev : ek).data.get<uint8_t>();
              got.scales = (which ? ev : ek).scales.get<float>();
              got.view.data = got.data.data(), got.view.scales = got.scales.data();
              const KvCacheView& rview = which ? rv.view : rk.view;
              std::vector<float> a, b, tolv;
              for (int t = 0; t < T; ++t)
                for (int h = 0; h < nkv; ++h)
                  for (int d = 0; d < D; ++d) {
                    a.push_back(ref::kv_load(got.view, slot[t], h, d));
                    b.push_back(ref::kv_load(rview, slot[t], h, d));
                  }
              const double rel = dt == DType::F32       ? 1e-5
                                 : dt == DType::F16     ? 1e-3
                                 : dt == DType::BF16    ? 8e-3
                                 : dt == DType::F8_E4M3 ? 0.07
                                                        : 0.0;
              double atol = 1e-6;
              if (is_scaled(dt)) atol += 1.01 * *std::max_element(rview.scales, rview.scales + nslots * nkv);
              compare(r, QString("rope_kv_write %1 cache ").arg(which ? "V" : "K") + shape, a.data(),
                      b.data(), a.size(), atol, rel);
            }
          }
      for (DType dt : kKvTypes) {  // copy_blocks: whole blocks, scales too
        const int bs = 16, nblocks = 8, nkv = 2, D = 40;
        HostCache h(dt, nblocks * bs, nkv, D);
        std::uniform_int_distribution<int> byte(0, 255);
        for (auto& b : h.data) b = (uint8_t)byte(rng);
        h.scales = uniform(rng, h.scales.size(), 0.0f, 1.0f);
        h.view.scales = h.scales.data();
        DevCache dc(h);
        const std::vector<int32_t> pairs = {2, 5, 0, 7, 3, 1};
        Buf dp(pairs);
        cuda::copy_blocks(dc.c, dp.as<int32_t>(), 3, bs, nullptr);
        sync("copy_blocks");
        auto ref = h.data;
        auto rs = h.scales;
        const size_t bb = row_bytes(dt, nkv * D) * bs;
        for (int i = 0; i < 3; ++i) {
          std::memcpy(ref.data() + pairs[2 * i + 1] * bb, h.data.data() + pairs[2 * i] * bb, bb);
          if (is_scaled(dt))
            std::copy_n(h.scales.begin() + pairs[2 * i] * bs * nkv, bs * nkv,
                        rs.begin() + pairs[2 * i + 1] * bs * nkv);
        }
        compare_exact(r, QString("copy_blocks %1 data").arg(kv_name(dt)), dc.data.get<uint8_t>(), ref);
        compare_exact(r, QString("copy_blocks %1 scales").arg(kv_name(dt)), dc.scales.get<float>(), rs);
      }
    } catch (const std::exception& e) {
      r.fail(QString("CUDA error: %1").arg(e.what()));
    }
    QVERIFY2(r.fails.isEmpty(), qPrintable(r.text()));
  }

  void paged_attention() {
    Report r;
    std::mt19937 rng(5);
    struct Case {
      const char* name;
      int n_heads, n_kv_heads, head_dim, block_size;
      std::vector<int> q_lens, ctx;  // per sequence
      int max_seq_len_extra = 0;     // captured max above the batch's (CUDA graph replay)
      bool workspace = true;
    };
    // clang-format off
    const std::vector<Case> cases = {
        {"decode G=1", 8, 8, 64, 16, {1, 1, 1, 1}, {1, 16, 17, 300}},
        {"decode G=2 long", 8, 4, 128, 16, {1, 1, 1}, {3000, 33, 1000}},
        {"decode G=4 bs8", 16, 4, 128, 8, {1, 1}, {257, 3000}},
        {"decode G=8 bs32", 32, 4, 128, 32, {1, 1, 1}, {3000, 31, 512}},
        {"decode G=12 D80", 12, 1, 80, 16, {1, 1}, {1500, 2}},
        {"decode D36 odd", 4, 2, 36, 16, {1, 1}, {700, 15}},
        {"decode D256", 8, 2, 256, 16, {1}, {1100}},
        {"decode replay max", 8, 2, 64, 16, {1, 1, 1}, {100, 1, 600}, 3500},
        {"decode no workspace", 8, 2, 128, 16, {1}, {3000}, 0, false},
        {"decode 1.1B shape replay", 32, 4, 64, 16, {1, 1}, {130, 513}, 1500},
        {"decode D32 passes", 4, 1, 32, 16, {1, 1, 1}, {256, 257, 1030}},
        {"prefill", 8, 2, 64, 16, {37, 2}, {37, 2}},
        {"mixed", 16, 4, 128, 16, {37, 1, 50, 1, 2, 65}, {37, 3000, 300, 1, 2, 65}},
        {"mixed G=8 bs8 D80", 8, 1, 80, 8, {1, 33, 1}, {1030, 100, 40}},
        {"prefill G=1 bs32", 4, 4, 64, 32, {100, 3}, {100, 40}},
        {"prefill D256 chunked", 4, 2, 256, 16, {40, 1}, {70, 900}},
        // Several 64-row query tiles, a chunk after 256 cached tokens, contexts ending mid-tile.
        // (Sized for the CPU reference: 32 heads at 812 tokens took it over a minute across the passes.)
        {"prefill chunked tiles", 8, 2, 64, 16, {150, 70, 1}, {406, 70, 77}},
        {"prefill D128 G=2", 8, 4, 128, 16, {200, 65}, {200, 129}},
    };
    // clang-format on
    // Every case through each decode kernel (where one cannot take a shape, Tiled runs it). The
    // prefill rows run the tiled prefill kernel with the tiled decode kernel, and the default
    // (register-tiled where head_dim is 64 or 128) with the lane kernels.
    const std::pair<cuda::DecodeAttention, const char*> kernels[] = {
        {cuda::DecodeAttention::Tiled, "tiled"},
        {cuda::DecodeAttention::PerHead, "per head"},
        {cuda::DecodeAttention::PerGroup, "per group"},
    };
    // Launches that merged in kernel, per decode kernel: the long cases split under every kernel, so
    // each lane kernel must have taken the in-kernel path (not fallen back to the reduce kernel
    // unseen); the tiled kernel always keeps the reduce kernel.
    std::map<std::string, int64_t> merged, register_tiled;
    try {
      for (const auto& [kernel, kernel_name] : kernels)
        for (const Case& c : cases)
          for (DType dt : kKvTypes) {
            cuda::set_decode_attention(kernel);
            cuda::set_prefill_attention(kernel == cuda::DecodeAttention::Tiled
                                            ? cuda::PrefillAttention::Tiled
                                            : cuda::PrefillAttention::Auto);
            const int S = (int)c.q_lens.size(), D = c.head_dim, nkv = c.n_kv_heads;
            const testing::PagedLayout lay =
                testing::make_paged_layout(c.q_lens, c.ctx, c.block_size, 5, rng);
            const std::vector<int32_t>&qs = lay.query_start, &lens = lay.seq_lens, &tables = lay.tables;
            const int max_blocks = lay.max_blocks, max_q = lay.max_query_len, max_len = lay.max_seq_len,
                      bs = c.block_size, nslots = lay.num_slots();
            HostCache hk(dt, nslots, nkv, D), hv(dt, nslots, nkv, D);
            for (int s = 0; s < S; ++s) {
              const int L = c.ctx[s];
              const auto k = uniform(rng, (size_t)L * nkv * D, -1, 1),
                         v = uniform(rng, (size_t)L * nkv * D, -1, 1);
              std::vector<int32_t> sl(L);
              for (int t = 0; t < L; ++t) sl[t] = lay.slot(s, t);
              ref::kv_write(hk.view, hv.view, k.data(), v.data(), sl.data(), L);
            }
            const int rows = qs[S];
            const auto q = uniform(rng, (size_t)rows * c.n_heads * D, -3, 3);
            const PagedAttentionArgs ra = lay.reference_args(c.n_heads, nkv, D);
            std::vector<float> ref((size_t)rows * c.n_heads * D);
            ref::paged_attention(ref.data(), q.data(), hk.view, hv.view, ra);

            DevCache dk(hk), dv(hv);
            Buf dq(q), dqs(qs), dlens(lens), dtab(tables), out(ref.size() * 4);
            cuda::DevicePagedArgs da;
            da.num_seqs = S;
            da.num_query_rows = rows;
            da.max_query_len = max_q;
            da.max_seq_len = max_len + c.max_seq_len_extra;
            da.query_start = dqs.as<int32_t>();
            da.seq_lens = dlens.as<int32_t>();
            da.block_tables = dtab.as<int32_t>();
            da.max_blocks_per_seq = max_blocks;
            da.block_size = bs;
            da.n_heads = c.n_heads;
            da.n_kv_heads = nkv;
            da.head_dim = D;
            da.scale = ra.scale;
            const size_t ws_bytes = c.workspace ? cuda::attention_workspace_bytes(rows, c.n_heads, D) : 0;
            const size_t n_counters = cuda::attention_split_counters(rows, c.n_heads);
            Buf ws(ws_bytes), counters(n_counters * sizeof(uint32_t));
            counters.poison(0);
            const QString name = QString("paged_attention %1 %2, %3 (heads %4/%5 D=%6 bs=%7)")
                                     .arg(c.name, kv_name(dt), kernel_name)
                                     .arg(c.n_heads)
                                     .arg(nkv)
                                     .arg(D)
                                     .arg(bs);
            // The partitions merged by the reduce kernel, then by the decode kernel itself: the
            // same bits, and the split counters back at zero for the next call.
            std::vector<float> by_reduce;
            for (const bool in_kernel : {false, true}) {
              ws.poison();  // NaN partials: an unwritten (empty) partition must never be read
              out.poison();
              const int64_t launches0 = cuda::split_merge_in_kernel_launches();
              const int64_t prefills0 = cuda::register_tiled_prefill_launches();
              cuda::paged_attention(out.as<float>(), dq.as<float>(), dk.c, dv.c, da,
                                    c.workspace ? ws.p : nullptr, ws_bytes, nullptr,
                                    in_kernel ? counters.as<uint32_t>() : nullptr, n_counters);
              sync("paged_attention");
              merged[kernel_name] += cuda::split_merge_in_kernel_launches() - launches0;
              register_tiled[kernel_name] += cuda::register_tiled_prefill_launches() - prefills0;
              const std::vector<float> got = out.get<float>();
              if (!in_kernel) {
                compare(r, name, got.data(), ref.data(), ref.size(), 1e-4, 1e-4);
                by_reduce = got;
              } else {
                // Against the reference first: should the bit-for-bit check below fail, this says
                // whether the merge is wrong or only rounds differently (the two kernels are
                // compiled apart, so a contraction decided differently would show there alone).
                compare(r, name + ", merged in kernel", got.data(), ref.data(), ref.size(), 1e-4, 1e-4);
                compare_exact(r, name + ", merged in kernel vs by the reduce kernel", got, by_reduce);
                compare_exact(r, name + ", split counters after the merge", counters.get<uint32_t>(),
                              std::vector<uint32_t>(n_counters, 0));
              }
            }
          }
    } catch (const std::exception& e) {
      r.fail(QString("CUDA error: %1").arg(e.what()));
    }
    for (const auto& [kernel, kernel_name] : kernels) {
      ++r.cases;
      std::printf("paged_attention %s: %lld launches merged in kernel\n", kernel_name,
                  (long long)merged[kernel_name]);
      const bool lanes = kernel != cuda::DecodeAttention::Tiled;
      if (lanes && merged[kernel_name] == 0)
        r.fail(QString("%1: no launch merged its splits in kernel").arg(kernel_name));
      if (!lanes && merged[kernel_name] != 0)
        r.fail(QString("%1: merged in kernel (it keeps the reduce kernel)").arg(kernel_name));
      // The prefill cases with head_dim 64 or 128 ran the register-tiled kernel, except when forced off.
      ++r.cases;
      std::printf("paged_attention %s: %lld register-tiled prefill launches\n", kernel_name,
                  (long long)register_tiled[kernel_name]);
      if (lanes && register_tiled[kernel_name] == 0)
        r.fail(QString("%1: the register-tiled prefill kernel never ran").arg(kernel_name));
      if (!lanes && register_tiled[kernel_name] != 0)
        r.fail(QString("%1: the register-tiled prefill kernel ran while forced off").arg(kernel_name));
    }
    cuda::set_decode_attention(cuda::DecodeAttention::Auto);
    cuda::set_prefill_attention(cuda::PrefillAttention::Auto);
    QVERIFY2(r.fails.isEmpty(), qPrintable(r.text()));
  }
#endif
};

QTEST_APPLESS_MAIN(TestCudaKernels)
#include "test_cuda_kernels.moc"
