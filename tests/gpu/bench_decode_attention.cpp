// Single-sequence decode attention timed through the CUDA backend's own
// attention op, on the 1.1B shape by default (32 query heads, 4 KV heads,
// head_dim 64, 16-token blocks), for several context lengths and KV dtypes,
// beside a one-element add (the cost of a launch that does no work):
//
//   gpu_bench_decode_attention [--ctx 128,512,2048] [--kv f32,f16] [--reps R] [--heads H,KV,D]
//                              [--kernels auto,tiled,head,group] [--seqs 1,64] [--merge reduce,kernel]
//                              [--prefill 128,512 [--prefill-seqs 8]]
//
// --prefill adds prefill attention: --prefill-seqs prompts of each length,
// all rows of each prompt at once (causal, nothing cached before), through
// the tiled prefill kernel and the default (register-tiled for head_dim 64
// and 128), with TFLOP/s counting 4 * head_dim FLOPs per (query, key) pair
// the mask keeps. --prefill alone skips the decode rows (--seqs "").
//
// Prints one JSON object: per (split merge, decode kernel, kv dtype, sequences, context) the
// microseconds of one attention call in a stream of R back-to-back calls
// (the split count is the one an eager step uses; every sequence holds the
// context). The split merge: a reduce kernel after the attention kernel, or
// the attention kernel's last block of a row (a backend made with
// BackendOptions::split_merge_in_kernel).
// It measures; it asserts nothing.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/cuda/cuda_backend.h"
#include "brisk/error.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/dtype.h"
#include "quant/quantize.h"
#include "tests/gpu/bench_support.h"

using namespace brisk;
using gpubench::int_list;
using gpubench::str_list;
using gpubench::time_us;

namespace {

// One backend's attention operands: q (random, seeded) and out for `rows`
// query rows of `seqs` sequences, query_start as given, seq_lens (uploaded
// by the caller) and a block table of `blocks` blocks a sequence, each its
// own, in a shuffled order as a long-running pool hands them out.
struct AttentionInputs {
  Backend* be;
  Tensor q, out, qs, sl, bt;
  int blocks;
  float probe = 0;
  AttentionInputs(Backend& b, int seqs, int rows, int blocks_per_seq, int width, unsigned seed,
                  const std::vector<int32_t>& qstart)
      : be(&b), blocks(blocks_per_seq) {
    q = b.alloc(DType::F32, rows, width);
    out = b.alloc(DType::F32, rows, width);
    qs = b.alloc(DType::I32, 1, seqs + 1);
    sl = b.alloc(DType::I32, 1, seqs);
    bt = b.alloc(DType::I32, seqs, blocks);
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::vector<float> hq((size_t)rows * width);
    for (float& f : hq) f = u(rng);
    b.upload(q, hq.data(), rows);
    std::vector<int32_t> table((size_t)seqs * blocks);
    for (size_t i = 0; i < table.size(); ++i) table[i] = (int32_t)i;
    std::shuffle(table.begin(), table.end(), rng);
    b.upload(bt, table.data(), seqs);
    b.upload(qs, qstart.data(), 1);
  }
  AttentionBatch batch(int num_seqs, int block_size) const {
    return AttentionBatch{num_seqs, qs, sl, bt, blocks, block_size};
  }
  // Waits for the stream: a one-float download.
  void sync() {
    Tensor one = out;
    one.cols = 1;
    be->download(&probe, one, 1);
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> ctxs = {128, 512, 2048};
  std::vector<std::string> kvs = {"f32", "f16"};
  std::vector<std::string> kernels = {"auto", "tiled", "head", "group"};
  std::vector<int> seqs = {1, 64};
  std::vector<std::string> merges = {"reduce", "kernel"};
  std::vector<int> heads = {32, 4, 64};
  std::vector<int> prefill;
  int prefill_seqs = 8;
  int reps = 2000;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--ctx")
      ctxs = int_list(v);
    else if (a == "--kv")
      kvs = str_list(v);
    else if (a == "--reps")
      reps = std::stoi(v);
    else if (a == "--heads")
      heads = int_list(v);
    else if (a == "--kernels")
      kernels = str_list(v);
    else if (a == "--seqs")
      seqs = int_list(v);
    else if (a == "--merge")
      merges = str_list(v);
    else if (a == "--prefill")
      prefill = int_list(v);
    else if (a == "--prefill-seqs")
      prefill_seqs = std::stoi(v);
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  if (heads.size() != 3 || ctxs.empty() || (seqs.empty() && prefill.empty()) || reps < 1 ||
      prefill_seqs < 1) {
    std::fprintf(stderr,
                 "--heads takes n_heads,n_kv_heads,head_dim; --ctx and --reps must be given values\n");
    return 2;
  }
  const int n_heads = heads[0], n_kv = heads[1], D = heads[2], block = 16;
  int max_ctx = 0;
  for (int c : ctxs) max_ctx = std::max(max_ctx, c);
  const int max_blocks = (max_ctx + block - 1) / block;
  int max_seqs = 1;
  for (int n : seqs) max_seqs = std::max(max_seqs, n);
  std::printf("{\"heads\": [%d, %d, %d], \"block_size\": %d, \"reps\": %d, \"results\": [", n_heads, n_kv, D,
              block, reps);
  bool first = true;
  try {
    for (const std::string& merge : merges) {
      if (merge != "reduce" && merge != "kernel")
        throw Error("--merge: unknown split merge '" + merge + "' (reduce, kernel)");
      BackendOptions opts;
      opts.split_merge_in_kernel = merge == "kernel";
      std::unique_ptr<Backend> be = make_backend("cuda", opts);
      std::vector<int32_t> qstart(max_seqs + 1);
      for (int i = 0; i <= max_seqs; ++i) qstart[i] = i;
      AttentionInputs in(*be, max_seqs, max_seqs, max_blocks, n_heads * D, 3, qstart);
      const Tensor q = in.q, out = in.out;
      auto sync = [&] { in.sync(); };
      // A launch that does no work: one element added.
      Tensor a1 = q, o1 = out;
      a1.cols = o1.cols = 1;
      const double launch_us = time_us(
          reps, [&](int) { be->add(o1, a1, a1, 1); }, sync);
      for (const std::string& kernel : kernels)
        for (const std::string& kv : kvs) {
          const cuda::DecodeAttention which = kernel == "tiled"   ? cuda::DecodeAttention::Tiled
                                              : kernel == "head"  ? cuda::DecodeAttention::PerHead
                                              : kernel == "group" ? cuda::DecodeAttention::PerGroup
                                                                  : cuda::DecodeAttention::Auto;
          if (which == cuda::DecodeAttention::Auto && kernel != "auto")
            throw Error("--kernels: unknown decode kernel '" + kernel + "' (auto, tiled, head, group)");
          cuda::set_decode_attention(which);
          const DType dt = parse_dtype_name(kv, "--kv");
          const int64_t slots = (int64_t)max_seqs * max_blocks * block;
          Tensor kc = be->alloc_kv_cache(dt, slots, n_kv, D), vc = be->alloc_kv_cache(dt, slots, n_kv, D);
          for (int n : seqs)
            for (int c : ctxs) {
              const std::vector<int32_t> lens(max_seqs, c);
              be->upload(in.sl, lens.data(), 1);
              const AttentionBatch b = in.batch(n, block);
              const double us = time_us(
                  reps, [&](int) { be->attention(out, q, kc, vc, b, n_heads, n_kv, D); }, sync);
              const double kv_bytes = 2.0 * n * c * n_kv * D * row_bytes(dt, 1);
              std::printf(
                  "%s\n  {\"merge\": \"%s\", \"kernel\": \"%s\", \"kv\": \"%s\", \"seqs\": %d, \"ctx\": %d, "
                  "\"us_per_call\": %.2f, \"kv_gb_per_s\": %.1f, \"empty_launch_us\": %.2f}",
                  first ? "" : ",", merge.c_str(), kernel.c_str(), kv.c_str(), n, c, us,
                  kv_bytes / (us * 1e-6) / 1e9, launch_us);
              first = false;
              std::fflush(stdout);
            }
        }
    }
    // Prefill: prefill_seqs prompts of P tokens, each row of each prompt a query, through each prefill
    // kernel.
    for (const int P : prefill) {
      if (P < 2) throw Error("--prefill: prompts of at least 2 tokens");
      std::unique_ptr<Backend> be = make_backend("cuda", BackendOptions{});
      const int S = prefill_seqs, rows = S * P, blocks = (P + block - 1) / block;
      std::vector<int32_t> qstart(S + 1), lens(S, P);
      for (int i = 0; i <= S; ++i) qstart[i] = i * P;
      AttentionInputs in(*be, S, rows, blocks, n_heads * D, 4, qstart);
      be->upload(in.sl, lens.data(), 1);
      const Tensor q = in.q, out = in.out;
      auto sync = [&] { in.sync(); };
      const double flops = 4.0 * D * n_heads * S * ((double)P * (P + 1) / 2);
      for (const std::string& kv : kvs) {
        const DType dt = parse_dtype_name(kv, "--kv");
        const int64_t slots = (int64_t)S * blocks * block;
        Tensor kc = be->alloc_kv_cache(dt, slots, n_kv, D), vc = be->alloc_kv_cache(dt, slots, n_kv, D);
        for (const cuda::PrefillAttention which :
             {cuda::PrefillAttention::Tiled, cuda::PrefillAttention::Auto}) {
          cuda::set_prefill_attention(which);
          const int64_t tiled4_before = cuda::register_tiled_prefill_launches();
          const AttentionBatch b = in.batch(S, block);
          const int prefill_reps = std::max(3, reps / 100);
          const double us = time_us(
              prefill_reps, [&](int) { be->attention(out, q, kc, vc, b, n_heads, n_kv, D); }, sync);
          const bool tiled4 = cuda::register_tiled_prefill_launches() > tiled4_before;
          std::printf(
              "%s\n  {\"prefill\": true, \"kernel\": \"%s\", \"kv\": \"%s\", \"seqs\": %d, \"prompt\": %d, "
              "\"us_per_call\": %.2f, \"tflops\": %.2f}",
              first ? "" : ",", tiled4 ? "register-tiled" : "tiled", kv.c_str(), S, P, us,
              flops / (us * 1e-6) / 1e12);
          first = false;
          std::fflush(stdout);
        }
      }
    }
  } catch (const std::exception& e) {
    std::printf("%s\n  {\"error\": \"%s\"}", first ? "" : ",", e.what());
  }
  cuda::set_decode_attention(cuda::DecodeAttention::Auto);
  cuda::set_prefill_attention(cuda::PrefillAttention::Auto);
  std::printf("\n]}\n");
  return 0;
}
