// Where a single-sequence decode token's time goes, op by op, on the 1.1B
// shape by default (dim 2048, FFN 5632, 32 heads, 4 KV heads of 64): each
// fused decode op of the CUDA backend timed in a stream of back-to-back
// calls that cycle through `--layers` distinct copies of the weights (so no
// weight is read from L2 twice, as in a real forward), and the whole stack
// of layers captured as one CUDA graph and replayed, with RoPE + KV write
// folded into the q/k/v projection and as a kernel of its own, and split
// attention merged by a reduce kernel and in the attention kernel:
//
//   gpu_bench_decode_layer [--dtype f16|bf16|int8|fp8-e4m3] [--kv f32|f16|bf16] [--ctx C] [--max-ctx M]
//                          [--layers L] [--reps R] [--dims dim,hidden,n_heads,n_kv_heads]
//                          [--gemv-blocks 0,1,2,3] [--prefetch-mb 0,16,25] [--persistent-blocks 0,1,2,3]
//                          [--profile-layer 1]
//
// The context is C tokens (default 256) in block tables sized for M (default
// 2048, the 1.1B shape's): a graph is captured for M, as the engine's are,
// so attention splits as it does there (for one sequence on the 1.1B heads,
// 8 partitions of 256 tokens: C <= 256 takes the whole-context shortcut but
// the merge still runs, as a no-op reduce launch or nothing in kernel).
//
// --gemv-blocks sweeps the streaming GEMV's resident blocks per
// multiprocessor (0: as many as fit, the default); each is run by a backend
// merging split attention in a reduce kernel and one merging it in kernel
// (BackendOptions::split_merge_in_kernel). --prefetch-mb times each stack
// with the L2 weight prefetch after every q/k/v projection
// (FusedDecode::prefetch_weights) at each budget in MiB (0: none; default
// 0, 8 (about wo alone on the 1.1B shape), 16 and half the device's L2,
// the engine's budget). --persistent-blocks times the whole stack as one
// persistent launch (FusedDecode::one_launch_decode, the engine's
// --persistent-decode) at each count of resident blocks per multiprocessor
// (0: as many as fit, up to 4; default 0, 1, 2, 3), with the microseconds
// of each of a layer's five phases, barrier included (block 0's clock as
// each barrier opens, averaged over the layers). Prints one JSON object:
// per setting, per op the microseconds of one call (and wo and down again
// with one layer's weights every call, read from L2), the bytes it must read
// and the rate; per stack the microseconds of a token's layers and that
// rate as a fraction of the device's copy bandwidth (measured here the
// way sysinfo does, bytes read + written). It measures; it asserts nothing.
//
// --profile-layer 1 is for a profiler (Nsight Compute with
// --profile-from-start off, tests/gpu/run-gpu-checks.sh): the stack runs
// once to warm up, then one layer's ops run once each between
// cudaProfilerStart and cudaProfilerStop, their weights not in L2 (the
// other layers' were read since), then the whole stack once as one
// persistent launch, and nothing is timed.
#include <cuda_profiler_api.h>
#include <cuda_runtime.h>

#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/graph_buckets.h"
#include "backend/fused_decode.h"
#include "brisk/error.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/l2_prefetch.h"
#include "kernels/dtype.h"
#include "model/model_weights.h"
#include "quant/quantize.h"
#include "tests/gpu/bench_support.h"

using namespace brisk;
using gpubench::HostWeight;
using gpubench::int_list;
using gpubench::random_weight;
using gpubench::time_us;

namespace {

using Layer = FusedDecode::DecodeLayer;

// Device-to-device copy rate of 1 GiB, bytes read + written (as sysinfo measures the device's bandwidth).
double copy_gb_per_s() {
  const size_t bytes = 1ull << 30;
  void *a = nullptr, *b = nullptr;
  if (cudaMalloc(&a, bytes) != cudaSuccess || cudaMalloc(&b, bytes) != cudaSuccess) {
    cudaFree(a);
    return 0.0;
  }
  cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice);
  cudaDeviceSynchronize();
  const int reps = 10;
  const auto t0 = std::chrono::steady_clock::now();
  for (int r = 0; r < reps; ++r) cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice);
  cudaDeviceSynchronize();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps;
  cudaFree(a);
  cudaFree(b);
  return 2.0 * bytes / s / 1e9;
}

// printf into a string.
void appendf(std::string& out, const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  out += buf;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dtype = "f16", kv = "f32";
  int ctx = 256, max_ctx = 2048, layers = 22, reps = 2000, profile_layer = 0;
  std::vector<int> dims = {2048, 5632, 32, 4}, gemv_blocks = {0}, prefetch_mb,
                   persistent_blocks = {0, 1, 2, 3};
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--dtype")
      dtype = v;
    else if (a == "--kv")
      kv = v;
    else if (a == "--ctx")
      ctx = std::stoi(v);
    else if (a == "--max-ctx")
      max_ctx = std::stoi(v);
    else if (a == "--layers")
      layers = std::stoi(v);
    else if (a == "--reps")
      reps = std::stoi(v);
    else if (a == "--dims")
      dims = int_list(v);
    else if (a == "--gemv-blocks")
      gemv_blocks = int_list(v);
    else if (a == "--prefetch-mb")
      prefetch_mb = int_list(v);
    else if (a == "--persistent-blocks")
      persistent_blocks = int_list(v);
    else if (a == "--profile-layer")
      profile_layer = std::stoi(v);
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  if (dims.size() != 4 || ctx < 1 || max_ctx < ctx || layers < 1 || reps < 1 || gemv_blocks.empty()) {
    std::fprintf(stderr,
                 "--dims takes dim,hidden,n_heads,n_kv_heads; --ctx, --layers, --reps are >= 1; "
                 "--max-ctx >= --ctx\n");
    return 2;
  }
  const int dim = dims[0], hidden = dims[1], nh = dims[2], nkv = dims[3], D = dim / nh, block = 16;
  const float eps = 1e-5f, theta = 10000.0f;
  std::printf(
      "{\"dtype\": \"%s\", \"kv\": \"%s\", \"dims\": [%d, %d, %d, %d], \"ctx\": %d, \"max_ctx\": %d, "
      "\"layers\": %d, \"reps\": %d",
      dtype.c_str(), kv.c_str(), dim, hidden, nh, nkv, ctx, max_ctx, layers, reps);
  std::string out;      // the settings array, printed whole (or an error instead)
  std::string one_out;  // the one-launch stacks
  try {
    const DType wdt = parse_dtype_name(dtype, "--dtype"), kdt = parse_dtype_name(kv, "--kv");
    const double copy_bw = copy_gb_per_s();
    if (prefetch_mb.empty()) {
      int l2 = 0;
      cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, 0);
      prefetch_mb = {0, 8, 16};
      const int half = (int)(cuda::l2_prefetch_budget((size_t)std::max(0, l2)) >> 20);
      if (half > 16) prefetch_mb.push_back(half);
    }
    for (int& mb : prefetch_mb) mb = std::max(0, mb);  // a negative budget is none
    std::vector<std::pair<bool, int>> stack_settings;  // (RoPE folded, prefetch MiB)
    for (bool fold : {true, false})
      for (int mb : prefetch_mb) stack_settings.push_back({fold, mb});
    std::printf(", \"copy_gb_per_s\": %.1f", copy_bw);
    std::fflush(stdout);
    bool first_setting = true;
    // A backend per split merge (a backend option); the weights are uploaded to each.
    for (bool merge_in_kernel : {false, true}) {
      BackendOptions opts;
      opts.fused_rope = true;  // the folded op is timed beside the separate ones
      opts.split_merge_in_kernel = merge_in_kernel;
      opts.l2_prefetch = true;        // prefetch_weights runs where a stack calls it
      opts.persistent_decode = true;  // planned below, run only where timed
      std::unique_ptr<Backend> be = make_backend("cuda", opts);
      auto* fused = dynamic_cast<FusedDecode*>(be.get());
      auto* graphs = dynamic_cast<StepGraphs*>(be.get());
      if (!fused || !graphs) throw Error("the CUDA backend offers no fused decode ops or graphs");

      // One layer's host weights, uploaded from `layers` starting points: distinct device copies.
      std::mt19937 rng(5);
      const int c = layers;
      const HostWeight hq = random_weight(rng, wdt, dim, dim, c),
                       hk = random_weight(rng, wdt, nkv * D, dim, c),
                       hv = random_weight(rng, wdt, nkv * D, dim, c),
                       ho = random_weight(rng, wdt, dim, dim, c),
                       hg = random_weight(rng, wdt, hidden, dim, c),
                       hu = random_weight(rng, wdt, hidden, dim, c),
                       hd = random_weight(rng, wdt, dim, hidden, c),
                       hn = random_weight(rng, DType::F32, 1, dim, c);
      const int max_blocks = (max_ctx + block - 1) / block;
      std::vector<Layer> L(layers);
      const int64_t allocs0 = cuda_device_allocations();
      for (int i = 0; i < layers; ++i) {
        Layer& l = L[i];
        l.attn_norm = be->weight(hn.tensor(DType::F32, 1, dim, i, "attn_norm"));
        l.ffn_norm = be->weight(hn.tensor(DType::F32, 1, dim, i, "ffn_norm"));
        l.wq = be->weight(hq.tensor(wdt, dim, dim, i, "wq"));
        l.wk = be->weight(hk.tensor(wdt, nkv * D, dim, i, "wk"));
        l.wv = be->weight(hv.tensor(wdt, nkv * D, dim, i, "wv"));
        l.wo = be->weight(ho.tensor(wdt, dim, dim, i, "wo"));
        l.w_gate = be->weight(hg.tensor(wdt, hidden, dim, i, "w_gate"));
        l.w_up = be->weight(hu.tensor(wdt, hidden, dim, i, "w_up"));
        l.w_down = be->weight(hd.tensor(wdt, dim, hidden, i, "w_down"));
        if (i > 0 && (l.wq.handle == L[0].wq.handle || l.w_down.handle == L[0].w_down.handle))
          throw Error("bench: the backend returned one device copy for two layers' weights");
        l.k_cache = be->alloc_kv_cache(kdt, (int64_t)max_blocks * block, nkv, D);
        l.v_cache = be->alloc_kv_cache(kdt, (int64_t)max_blocks * block, nkv, D);
      }
      if (!merge_in_kernel)  // one backend's: the second's is the same
        std::printf(", \"device_allocations\": %lld", (long long)(cuda_device_allocations() - allocs0));
      Tensor x = be->alloc(DType::F32, 1, dim), q = be->alloc(DType::F32, 1, dim),
             k = be->alloc(DType::F32, 1, nkv * D), v = be->alloc(DType::F32, 1, nkv * D),
             att = be->alloc(DType::F32, 1, dim), gate = be->alloc(DType::F32, 1, hidden);
      Tensor pos = be->alloc(DType::I32, 1, 1), slots = be->alloc(DType::I32, 1, 1),
             qs = be->alloc(DType::I32, 1, 2), sl = be->alloc(DType::I32, 1, 1),
             bt = be->alloc(DType::I32, 1, max_blocks);
      std::vector<float> hx(hidden);
      std::uniform_real_distribution<float> u(-1.0f, 1.0f);
      for (float& f : hx) f = u(rng);
      for (Tensor t : {x, q, att}) be->upload(t, hx.data(), 1);
      be->upload(gate, hx.data(), 1);
      be->upload(k, hx.data(), 1);
      be->upload(v, hx.data(), 1);
      const int32_t p = ctx - 1, s = ctx - 1, qstart[2] = {0, 1}, len = ctx;
      std::vector<int32_t> table(max_blocks);
      for (int i = 0; i < max_blocks; ++i) table[i] = i;
      be->upload(pos, &p, 1);
      be->upload(slots, &s, 1);
      be->upload(qs, qstart, 1);
      be->upload(sl, &len, 1);
      be->upload(bt, table.data(), 1);
      const AttentionBatch ab{1, qs, sl, bt, max_blocks, block};

      float probe = 0;
      Tensor one = x;
      one.cols = 1;
      auto sync = [&] { be->download(&probe, one, 1); };
      const double wb = row_bytes(wdt, 1);  // bytes per weight (scales are noise)
      const double qkv_bytes = (double)(dim + 2 * nkv * D) * dim * wb, wo_bytes = (double)dim * dim * wb,
                   ffn_bytes = 2.0 * hidden * dim * wb, down_bytes = (double)dim * hidden * wb,
                   kv_bytes = 2.0 * ctx * nkv * D * row_bytes(kdt, 1);
      const double layer_bytes = qkv_bytes + wo_bytes + ffn_bytes + down_bytes + kv_bytes;

      Tensor qkv_out[3] = {q, k, v};
      auto qkv = [&](int i) {
        const Layer& l = L[i % layers];
        const Tensor w[3] = {l.wq, l.wk, l.wv};
        fused->norm_matmul(qkv_out, w, 3, x, l.attn_norm, eps, 1);
      };
      auto rope = [&](int i) {
        const Layer& l = L[i % layers];
        be->rope_kv_write(q, k, v, pos, slots, l.k_cache, l.v_cache, 1, nh, nkv, D, D, theta);
      };
      bool folds = true;
      auto qkv_rope = [&](int i) {
        const Layer& l = L[i % layers];
        const Tensor w[3] = {l.wq, l.wk, l.wv};
        if (!fused->norm_qkv_rope_kv_write(qkv_out, w, x, l.attn_norm, eps, pos, slots, l.k_cache, l.v_cache,
                                           1, nh, nkv, D, D, theta)) {
          folds = false;
          qkv(i);
          rope(i);
        }
      };
      auto attention = [&](int i) {
        const Layer& l = L[i % layers];
        be->attention(att, q, l.k_cache, l.v_cache, ab, nh, nkv, D);
      };
      auto prefetch = [&](int i) {
        const Layer& l = L[i % layers];
        const Tensor next[3] = {l.wo, l.w_gate, l.w_up};
        const int groups[3] = {0, 1, 1};
        fused->prefetch_weights(next, groups, 3);
      };
      auto wo = [&](int i) { fused->matmul_add(x, att, L[i % layers].wo, 1); };
      auto ffn = [&](int i) {
        const Layer& l = L[i % layers];
        fused->norm_swiglu(gate, x, l.ffn_norm, eps, l.w_gate, l.w_up, 1);
      };
      auto down = [&](int i) { fused->matmul_add(x, gate, L[i % layers].w_down, 1); };
      Tensor a1 = q, o1 = att;
      a1.cols = o1.cols = 1;
      auto empty = [&](int) { be->add(o1, a1, a1, 1); };
      // The whole stack as one launch, planned for the resident blocks `per_sm` (0: as many as fit).
      int one_resident = 0;
      auto plan_one = [&](int per_sm) {
        cuda::set_persistent_blocks_per_sm(per_sm);
        const FusedDecode::DecodeShape sh{dim, hidden, nh, nkv, D, D, theta, eps, max_blocks * block};
        const bool ok = fused->plan_one_launch_decode(L.data(), layers, sh);
        // What the plan got (the cap, or fewer where the kernel's registers or shared memory allow fewer).
        const size_t smem =
            cuda::plan_persistent_decode(dim, hidden, nh, nkv, D, max_blocks * block, 1, 1).smem_bytes;
        one_resident = cuda::persistent_blocks_per_sm(wdt, smem);
        cuda::set_persistent_blocks_per_sm(0);
        return ok;
      };
      auto one_launch = [&] {
        if (!fused->one_launch_decode(x, q, k, v, att, gate, pos, slots, ab))
          throw Error("bench: one_launch_decode declined after planning");
      };

      if (profile_layer) {  // one layer's kernels for a profiler, then stop
        for (int i = 0; i < layers; ++i) {
          qkv(i);
          rope(i);
          attention(i);
          wo(i);
          ffn(i);
          down(i);
        }
        sync();
        cudaProfilerStart();
        cuda::set_l2_prefetch_budget(0);  // half the L2, as the engine
        qkv(0);
        prefetch(0);  // its own time only: the profiler flushes L2 before each kernel
        rope(0);
        attention(0);
        wo(0);
        ffn(0);
        down(0);
        const bool one = plan_one(0);
        if (one) one_launch();
        sync();
        cudaProfilerStop();
        std::printf(
            ", \"profiled\": \"q/k/v + norm, L2 prefetch, rope + kv write, attention, wo + residual, "
            "gate/up + norm + swiglu, down + residual: layer 0 of %d; %s\"}\n",
            layers, one ? "then all layers as one persistent launch" : "(one launch declined: see stderr)");
        return 0;
      }

      struct Op {
        const char* name;
        std::function<void(int)> run;
        double bytes;
      };
      const Op ops[] = {{"empty launch", empty, 0.0},
                        {"q/k/v + norm", qkv, qkv_bytes},
                        {"rope + kv write", rope, 0.0},
                        {"q/k/v + norm + rope + kv write (folded)", qkv_rope, qkv_bytes},
                        {"attention", attention, kv_bytes},
                        {"wo + residual", wo, wo_bytes},
                        {"gate/up + norm + swiglu", ffn, ffn_bytes},
                        {"down + residual", down, down_bytes},
                        // One layer's weights every call, so they come from L2: what a GEMV takes
                        // when the prefetch has landed (the most it can save on wo).
                        {"wo + residual, weights in L2", [&](int) { wo(0); }, wo_bytes},
                        {"down + residual, weights in L2", [&](int) { down(0); }, down_bytes}};
      int bucket = 1 << 20;  // graph keys no model uses
      // Microseconds of a whole stack launched op by op, and captured as one graph and replayed.
      auto eager_and_graph = [&](const std::function<void()>& stack) {
        const double eager_us = time_us(
            std::max(1, reps / layers), [&](int) { stack(); }, sync);
        const int key = bucket++;
        graphs->begin_capture();
        try {
          stack();
        } catch (...) {
          graphs->abort_capture();
          throw;
        }
        graphs->end_capture(key);
        const double graph_us = time_us(
            std::max(1, reps / layers), [&](int) { graphs->replay(key); }, sync);
        return std::pair<double, double>{eager_us, graph_us};
      };
      for (int blocks : gemv_blocks) {
        cuda::set_gemv_blocks_per_sm(blocks);
        appendf(out, "%s\n  {\"split_merge\": \"%s\", \"gemv_blocks_per_sm\": %d, \"ops\": [",
                first_setting ? "" : ",", merge_in_kernel ? "in kernel" : "reduce kernel", blocks);
        first_setting = false;
        bool first = true;
        for (const Op& op : ops) {
          const double us = time_us(reps, op.run, sync);
          appendf(out, "%s\n    {\"op\": \"%s\", \"us_per_call\": %.2f, \"bytes\": %.0f, \"gb_per_s\": %.1f}",
                  first ? "" : ",", op.name, us, op.bytes, op.bytes > 0 ? op.bytes / (us * 1e-6) / 1e9 : 0.0);
          first = false;
        }
        appendf(out, "\n  ], \"stacks\": [");
        first = true;
        for (const auto& [fold, mb] : stack_settings) {
          cuda::set_l2_prefetch_budget((size_t)std::max(0, mb) << 20);
          auto stack = [&] {
            for (int i = 0; i < layers; ++i) {
              if (fold) {
                qkv_rope(i);
                if (mb != 0) prefetch(i);
              } else {
                qkv(i);
                if (mb != 0) prefetch(i);
                rope(i);
              }
              attention(i);
              wo(i);
              ffn(i);
              down(i);
            }
          };
          const auto [eager_us, graph_us] = eager_and_graph(stack);
          const double gbps = layers * layer_bytes / (graph_us * 1e-6) / 1e9;
          appendf(out,
                  "%s\n    {\"rope\": \"%s\", \"l2_prefetch_mb\": %d, \"eager_us\": %.1f, "
                  "\"graph_us\": %.1f, \"bytes\": %.0f, \"gb_per_s\": %.1f, \"bandwidth_fraction\": %.3f}",
                  first ? "" : ",", fold ? (folds ? "folded" : "folded (refused: separate)") : "separate", mb,
                  eager_us, graph_us, layers * layer_bytes, gbps, copy_bw > 0 ? gbps / copy_bw : 0.0);
          first = false;
        }
        appendf(out, "\n  ]}");
      }
      // One backend's (the split merge is the kernel's own either way).
      for (int per_sm : merge_in_kernel ? std::vector<int>{} : persistent_blocks) {
        if (!plan_one(per_sm)) {
          appendf(one_out, "%s\n  {\"blocks_per_sm\": %d, \"declined\": true}", one_out.empty() ? "" : ",",
                  per_sm);
          continue;
        }
        const auto [eager_us, graph_us] = eager_and_graph(one_launch);
        const double gbps = layers * layer_bytes / (graph_us * 1e-6) / 1e9;
        // Where the launch's time goes: block 0's clock at each barrier, averaged over the layers.
        std::string phases;
        {
          const int stamps = 1 + layers * 5;
          uint64_t* dtrace = nullptr;
          if (cudaMalloc(&dtrace, stamps * sizeof(uint64_t)) != cudaSuccess)
            throw Error("bench: cannot allocate the phase trace");
          cuda::set_persistent_trace(dtrace);
          for (int r = 0; r < 3; ++r) one_launch();  // the last one's trace is kept
          cuda::set_persistent_trace(nullptr);
          sync();
          std::vector<uint64_t> t(stamps);
          cudaMemcpy(t.data(), dtrace, stamps * sizeof(uint64_t), cudaMemcpyDeviceToHost);
          cudaFree(dtrace);
          double sum[5] = {};
          for (int l = 0; l < layers; ++l)
            for (int ph = 0; ph < 5; ++ph) sum[ph] += (double)(t[1 + l * 5 + ph] - t[l * 5 + ph]) * 1e-3;
          appendf(phases, "\"phase_us\": [%.2f, %.2f, %.2f, %.2f, %.2f], \"traced_us\": %.1f",
                  sum[0] / layers, sum[1] / layers, sum[2] / layers, sum[3] / layers, sum[4] / layers,
                  (double)(t[stamps - 1] - t[0]) * 1e-3);
        }
        appendf(one_out,
                "%s\n  {\"blocks_per_sm\": %d, \"resident_blocks_per_sm\": %d, \"eager_us\": %.1f, "
                "\"graph_us\": %.1f, \"gb_per_s\": %.1f, \"bandwidth_fraction\": %.3f, %s}",
                one_out.empty() ? "" : ",", per_sm, one_resident, eager_us, graph_us, gbps,
                copy_bw > 0 ? gbps / copy_bw : 0.0, phases.c_str());
      }
    }
    cuda::set_gemv_blocks_per_sm(0);
    cuda::set_l2_prefetch_budget(0);
    std::printf(", \"settings\": [%s\n], \"one_launch\": [%s\n]", out.c_str(), one_out.c_str());
  } catch (const std::exception& e) {
    std::string msg = e.what();
    for (char& c : msg)
      if (c == '"' || c == '\\' || (unsigned char)c < 0x20) c = ' ';
    std::printf(", \"error\": \"%s\"", msg.c_str());
  }
  std::printf("}\n");
  return 0;
}
