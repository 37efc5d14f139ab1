// CUDA kernels: plain launch functions over device pointers and shapes, one
// per op, each the device twin of the kernels/reference function of the same
// name (same layouts, same dtypes, same meaning; tested against it). Every
// function enqueues on `stream` and returns without synchronising; launch
// errors are reported by cuda_check_last() (the backend calls it), so a
// launch function never throws from inside a CUDA graph capture.
//
// This header is plain C++ (no CUDA headers), so host code that only plans
// launches compiles without nvcc. cudaStream_t is passed as void*.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "kernels/dtype.h"

namespace brisk::cuda {

using Stream = void*;  // cudaStream_t

// A KV cache on the device: the layout of KvCacheView (kernels/reference/attention.h):
// data [slots, n_kv_heads * head_dim] of dtype (F32, F16, BF16, I8, F8_E4M3),
// scales [slots, n_kv_heads] F32 for I8 / F8_E4M3 (nullptr otherwise).
struct DeviceKvCache {
  void* data = nullptr;
  float* scales = nullptr;
  DType dtype = DType::F32;
  int n_kv_heads = 0;
  int head_dim = 0;
};

// Device pointers of the per-step attention metadata (as PagedAttentionArgs).
struct DevicePagedArgs {
  int num_seqs = 0;
  int num_query_rows = 0;                 // query_start[num_seqs] (host copy, for grid sizing)
  int max_query_len = 0;                  // longest query of the batch (host copy): 1 = pure decode
  int max_seq_len = 0;                    // longest context (host copy): decides the split count
  const int32_t* query_start = nullptr;   // [num_seqs + 1]
  const int32_t* seq_lens = nullptr;      // [num_seqs]
  const int32_t* block_tables = nullptr;  // [num_seqs, max_blocks_per_seq]
  int max_blocks_per_seq = 0;
  int block_size = 16;
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;  // <= 256
  float scale = 1.0f;
};

// ---- Elementwise and normalisation (activations are F32 [n, cols]) ----
// y[t] = table[ids[t]] as F32; table F32/F16/BF16/I8/F8_E4M3/F8_E5M2 (scaled: * row_scales[id]) or Q8_0.
void embed(float* y, const void* table, DType dt, const float* row_scales, const int32_t* ids, int n, int dim,
           Stream s);
// w is F32 [cols].
void rmsnorm(float* y, const float* x, const float* w, int n, int cols, float eps, Stream s);
// x += residual; y = rmsnorm(x) * w.
void add_rmsnorm(float* x, const float* residual, const float* w, float* y, int n, int cols, float eps,
                 Stream s);
void silu_mul(float* out, const float* gate, const float* up, int64_t count, Stream s);
void add(float* out, const float* a, const float* b, int64_t count, Stream s);
// out[i] = x[rows[i]] (rows of `cols` floats).
void gather_rows(float* out, const float* x, const int32_t* rows, int n, int cols, Stream s);
// out[i] = the first index of the largest value among the first `cols` of row i of x [n, stride],
// as ref::argmax_rows.
void argmax_rows(int32_t* out, const float* x, int n, int stride, int cols, Stream s);
// F32 -> F16 / BF16 conversion of activations for the cuBLAS GEMMs (count elements).
void f32_to_f16(uint16_t* out, const float* x, int64_t count, Stream s);
void f32_to_bf16(uint16_t* out, const float* x, int64_t count, Stream s);
// Weight conversion at load (on device): any weight dtype [rows, cols] -> F16 or BF16 (scaled and Q8_0
// dequantized), so cuBLAS runs them.
void weight_to_half(uint16_t* out, DType out_dt, const void* w, DType dt, const float* row_scales,
                    int64_t rows, int64_t cols, Stream s);
// Per-token dynamic INT8 quantization for W8A8: q[t, k] = round(x[t, k] / scale[t]),
// scale[t] = max|x[t, :]| / 127 (0 for an all-zero row).
void quantize_rows_i8(int8_t* q, float* scale, const float* x, int n, int cols, Stream s);
// Per-token dynamic FP8 E4M3 quantization (scale = max|x| / 448), for the FP8 GEMM.
void quantize_rows_f8(uint8_t* q, float* scale, const float* x, int n, int cols, Stream s);
// y[t, j] = acc[t, j] * xs[t] * ws[j] (the INT32 / F32 accumulator of a W8A8 or FP8 GEMM rescaled).
void rescale_i32(float* y, const int32_t* acc, const float* xs, const float* ws, int n, int N, Stream s);
void rescale_f32(float* y, const float* acc, const float* xs, const float* ws, int n, int N, Stream s);

// ---- Weight-only GEMV for small batches (n <= 8): weights dequantized in registers ----
// y[n, N] = x[n, K] * w[N, K]^T, w I8 / F8_E4M3 / F8_E5M2 (with row_scales), F16, BF16 or Q8_0.
void gemv(float* y, const float* x, const void* w, DType dt, const float* row_scales, int n, int N, int K,
          Stream s);
constexpr int kGemvMaxRows = 8;

// The fused form, for a decode step's projections (n <= 8 rows per launch,
// more rows in groups): y_i[n, N_i] = h[n, K] * w_i[N_i, K]^T for up to
// kGemvMaxWeights weights of one dtype sharing the input, where
// h = rmsnorm(x) * norm_w when norm_w is given (else h = x). The epilogue
// stores, accumulates (y += h w^T, a residual add), or for SwiGLU (w[0] the
// gate, w[1] the up projection, equal N) writes silu(h w_0^T) * (h w_1^T) to
// w[0].y.
constexpr int kGemvMaxWeights = 3;
struct GemvWeight {
  const void* w = nullptr;
  const float* row_scales = nullptr;  // scaled dtypes
  float* y = nullptr;
  int N = 0;
};
enum class GemvEpilogue { Store, Accumulate, SwiGLU, RopeKv };
struct GemvFused {
  const float* x = nullptr;
  int n = 0, K = 0;
  DType dt = DType::F32;
  const float* norm_w = nullptr;
  float eps = 0.0f;
  GemvWeight w[kGemvMaxWeights];
  int count = 0;
  GemvEpilogue epilogue = GemvEpilogue::Store;
};
void gemv_fused(const GemvFused& a, Stream s);

// The q/k/v projections of a decode step with RoPE and the KV cache write in
// their epilogue: exactly gemv_fused(a) of the three weights (w[0] q, w[1] k,
// w[2] v) followed by rope_kv_write, in one launch. Each warp streams a
// rotation pair (rows 2p and 2p + 1 of one weight), so it holds both values
// a rotation needs; q is rotated in a.w[0].y, k and v are stored there as
// projected and encoded into the caches (k rotated; nothing for a negative
// slot). Only where the streaming GEMV runs and the caches are unscaled
// (gemv_rope_foldable): otherwise false, having done nothing.
struct GemvRope {
  const int32_t* pos = nullptr;       // [n]
  const int32_t* kv_slots = nullptr;  // [n] (not `slots`: a Qt macro in Qt code including this)
  int head_dim = 0, rot_dim = 0;
  float theta = 10000.0f;
  DeviceKvCache k, v;
};
bool gemv_rope_kv_write(const GemvFused& a, const GemvRope& r, Stream s);

// Resident blocks per multiprocessor of the streaming GEMV: 0 (the default)
// as many as fit, else at most this many (benchmarks sweep it: fewer blocks
// leave room for the next kernel's blocks to start early). Process-wide.
void set_gemv_blocks_per_sm(int blocks);

// ---- GEMV planning (host-only, unit-tested without a device) ----
// The streaming GEMV's x is staged whole in shared memory, under the default 48 KiB with its static part
// (the norm's partial sums and, folding RoPE, each warp's angles: up to 1.3 KiB).
constexpr size_t kGemvStreamSmemBytes = 46 * 1024;
// Whether the streaming GEMV takes rows of K weights of `dt` for n rows of x
// (per launch: at most kGemvMaxRows) — every lane's loads whole 16-byte
// vectors, x whole in shared memory; pointer alignment is checked at launch.
bool gemv_streams(DType dt, int n, int K);
// Whether gemv_rope_kv_write can run this shape: a streaming GEMV, whole
// heads of an even head_dim <= 256 in every weight (n_rows[i] rows), rot_dim <=
// head_dim, and caches of F32, F16 or BF16 (a scaled cache needs a whole
// head's maximum before it encodes anything).
bool gemv_rope_foldable(DType dt, int n, int K, const int (&n_rows)[3], int head_dim, int rot_dim,
                        DType k_cache, DType v_cache);

// ---- RoPE and the KV cache ----
void rope(float* x, const int32_t* pos, int n, int n_heads, int head_dim, int rot_dim, float theta, Stream s);
// As ref::kv_write.
void kv_write(const DeviceKvCache& k, const DeviceKvCache& v, const float* k_rows, const float* v_rows,
              const int32_t* slots, int n, Stream s);
// As ref::rope_kv_write: q rotated in place; k rotated into the cache (k itself left unrotated), v copied.
void rope_kv_write(float* q, const float* k, const float* v, const int32_t* pos, const int32_t* slots, int n,
                   int n_heads, int rot_dim, float theta, const DeviceKvCache& kc, const DeviceKvCache& vc,
                   Stream s);
// Whole blocks src -> dst (pairs as 2*count int32 on the device: src0, dst0, src1, dst1, ...), scales too.
void copy_blocks(const DeviceKvCache& c, const int32_t* pairs, int count, int block_size, Stream s);

// ---- Paged attention (causal, variable length, grouped-query), as ref::paged_attention ----
// Decode rows (query length 1) split the context over `splits` partitions
// (FlashDecoding) when the context is long; prefill rows are tiled with an
// online softmax. `workspace` holds the split partials: attention_workspace_bytes().
// With `split_counters` (attention_split_counters() of them, zeroed once
// after allocation; every call leaves them zero) the decode kernel merges a
// split context's partitions itself: each block that wrote its partials
// counts itself in, and the one that completes its row's count merges the
// row, with the reduce kernel's arithmetic but without its launch. Without
// them, or with too few for the batch, the reduce kernel merges. They
// belong to one stream: calls on two streams need two sets.
void paged_attention(float* out, const float* q, const DeviceKvCache& k, const DeviceKvCache& v,
                     const DevicePagedArgs& a, void* workspace, size_t workspace_bytes, Stream s,
                     uint32_t* split_counters = nullptr, size_t split_counter_count = 0);

// ---- Launch planning (host-only, unit-tested without a device) ----
// How many partitions a decode row's context is split into, given the
// number of (seq, kv-head) work items and the multiprocessor count: enough
// blocks to fill the device, partitions of at least kMinSplitTokens tokens.
constexpr int kMinSplitTokens = 32;  // short contexts split too: one block per KV head starves the device
constexpr int kMaxSplits = 32;
int attention_splits(int max_seq_len, int num_seqs, int n_kv_heads, int sm_count);

// Which kernel runs the decode rows. Tiled: a block per (sequence, KV
// head) scoring its query group against each key with lanes split over the
// head dimension (any head_dim, any alignment). Lane kernels (rows that
// allow 16-byte loads): a lane per key, no shuffles to score it, a far
// shorter chain after the wait; PerHead gives each query head a block
// (n_heads blocks a sequence: few sequences), PerGroup gives up to 8 heads
// of one KV head a block (K and V read once per group: many sequences,
// head_dim <= 128). Auto: PerHead while a block per query head and sequence
// fits the device twice or a KV head has under 4 query heads, else
// PerGroup, else Tiled. Forcing (tests,
// benchmarks; process-wide) falls back to Tiled where a kernel cannot run.
enum class DecodeAttention { Auto, Tiled, PerHead, PerGroup };
void set_decode_attention(DecodeAttention kind);
struct DecodePlan {
  DecodeAttention kernel = DecodeAttention::Tiled;
  int splits = 1;
};
// The lane kernels split into partitions of at least kLaneSplitTokens (one
// pass of their 256 lanes); Tiled into partitions of kMinSplitTokens.
constexpr int kLaneSplitTokens = 256;
constexpr int kLaneGroupHeads = 8;  // heads per PerGroup block
DecodePlan plan_decode_attention(DecodeAttention want, bool vector_rows, int head_dim, int max_seq_len,
                                 int num_seqs, int n_heads, int n_kv_heads, int sm_count);
// Bytes of workspace paged_attention needs for up to `max_rows` query rows.
size_t attention_workspace_bytes(int max_rows, int n_heads, int head_dim, int max_splits = kMaxSplits);
// How many split counters in-kernel merging needs for up to `max_rows` query rows (one per sequence and
// decode block row, which is at most one per query head).
size_t attention_split_counters(int max_rows, int n_heads);
// Decode attention launches (or graph captures) that merged their splits in kernel, since the start.
int64_t split_merge_in_kernel_launches();
// Which kernel runs the prefill rows. Auto: the register-tiled kernel (64
// query rows x 64 keys a block, 4 x 4 a thread) for head_dim 64 and 128 with
// a 16-byte aligned output, the tiled one (32 x 32, a score a thread) for
// other head sizes. Tiled forces
// the tiled kernel (tests, benchmarks; process-wide).
enum class PrefillAttention { Auto, Tiled };
void set_prefill_attention(PrefillAttention kind);
// Prefill attention launches that ran the register-tiled kernel, since the start.
int64_t register_tiled_prefill_launches();

// ---- One-launch decode of a single sequence (a persistent kernel) ----
// A decode step of one sequence is ~6 short kernels a layer, each losing a
// few microseconds to its launch, ramp and tail: on an H100 a 1.1B layer
// took 53 us against 30 us for its bytes (docs/BENCHMARKS.md). This runs
// every layer in one launch of as many blocks as stay resident together
// (a cooperative launch), its phases separated by grid-wide barriers:
// norm + q/k/v; RoPE + KV write + attention (split over the context, the
// last partition of a head merging it); wo + residual; norm + gate/up +
// SwiGLU; down + residual. Each block prefetches the weight rows of its
// next piece of work into L2 before it reaches a barrier or starts a
// piece, so the memory never waits on a barrier. Weights F16 or BF16
// (rows of whole 16-byte vectors), caches F32, F16 or BF16. The block's
// work is written once for this kernel and a CPU emulation
// (kernels/cuda/decode_persistent.cuh, tests/kernels/test_cuda_decode_persistent_emulated.cpp).
struct PersistentLayer {
  const void *wq = nullptr, *wk = nullptr, *wv = nullptr, *wo = nullptr;  // [N, K] of the weight dtype
  const void *w_gate = nullptr, *w_up = nullptr, *w_down = nullptr;
  const float *attn_norm = nullptr, *ffn_norm = nullptr;  // F32 [dim]
  void *k_cache = nullptr, *v_cache = nullptr;            // [slots, n_kv_heads * head_dim] of the KV dtype
};
// The launch's shape, planned on the host (plan_persistent_decode).
struct PersistentPlan {
  int grid = 0;               // blocks, all resident at once
  int wpr[4] = {1, 1, 1, 1};  // warps per row of the q/k/v, wo, gate/up (a row pair) and down projections
  int max_splits = 1;         // attention partitions of a head, at most
  int min_chunk = 64;         // keys of a partition, at least
  int red_at = 0;             // floats of shared memory before the reduction scratch
  int rope_at = 0;            // floats before the step's RoPE angles (kept through every phase)
  size_t smem_bytes = 0;
};
struct PersistentDecodeArgs {
  float* x = nullptr;                       // [dim]: the residual stream, in place through every layer
  const PersistentLayer* layers = nullptr;  // [n_layers], in device memory
  int n_layers = 0;
  DType wdt = DType::F16, kv_dt = DType::F16;
  int dim = 0, hidden = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0, rot_dim = 0;
  float theta = 10000.0f, eps = 1e-5f, scale = 1.0f;
  // The step's metadata (uploaded before the launch): position, cache slot
  // and context length of the one token, and its sequence's block table.
  const int32_t *pos = nullptr, *slot = nullptr, *seq_len = nullptr, *block_table = nullptr;
  int block_size = 16;
  // Workspace: q [n_heads * head_dim], k and v [n_kv_heads * head_dim],
  // att [n_heads * head_dim], h [hidden]; split partials
  // [n_heads][max_splits][head_dim + 2]; a counter per head and the
  // barrier's word, zero before the first launch (each leaves the counters so).
  float *q = nullptr, *k = nullptr, *v = nullptr, *att = nullptr, *h = nullptr, *partials = nullptr;
  uint32_t *counters = nullptr, *barrier = nullptr;
  PersistentPlan plan;
  // Benchmarks: where block 0 writes the device's clock (ns) as the launch
  // starts and as each phase's barrier opens, [1 + n_layers * 5]; null: no trace.
  uint64_t* trace = nullptr;
};
// Whether the kernel takes this model ("" if so, else why not).
std::string persistent_decode_unsupported(DType wdt, DType kv_dt, int dim, int hidden, int n_heads,
                                          int n_kv_heads, int head_dim, int rot_dim);
// The launch for `blocks_per_sm` resident blocks on `sm_count`
// multiprocessors, for contexts up to max_context tokens: warps per row
// chosen so each projection's rows fill the grid's rounds evenly, splits
// so a head's partitions fill the grid and fit their scores in shared memory.
constexpr int kPersistentMaxChunk = 1024;  // keys of one attention partition, at most
PersistentPlan plan_persistent_decode(int dim, int hidden, int n_heads, int n_kv_heads, int head_dim,
                                      int max_context, int sm_count, int blocks_per_sm);
// Warps per row for `rows` rows (pairs) of `row_vectors` 16-byte vectors on `grid` blocks of 8 warps.
int persistent_warps_per_row(int rows, int row_vectors, int grid);
size_t persistent_partials_floats(const PersistentPlan& p, int n_heads, int head_dim);
// Resident blocks per multiprocessor of the kernel with this much shared
// memory (a device query; 0 without a device). Process-wide cap for
// benchmarks: set_persistent_blocks_per_sm (0 = as many as fit, at most 4).
int persistent_blocks_per_sm(DType wdt, size_t smem_bytes);
void set_persistent_blocks_per_sm(int blocks);
// Benchmarks: every launch from now on traces its phases into this device
// buffer (PersistentDecodeArgs::trace; null: none). Process-wide.
void set_persistent_trace(uint64_t* device_buffer);
// Enqueues the step (a cooperative launch; capturable). False, having
// enqueued nothing, where the device cannot hold the planned grid at once
// now (another context holds multiprocessors: MPS, a partitioned device);
// other errors: cuda_last_error().
bool persistent_decode(const PersistentDecodeArgs& a, Stream s);
// Launches (or graph captures) so far.
int64_t persistent_decode_launches();

// ---- Programmatic dependent launch ----
// The decode-path kernels launch early and overlap their predecessor's tail
// (Hopper and later; see common.cuh). On by default; off is the A/B knob.
// Process-wide: the backend sets it from its options.
void set_dependent_launch(bool on);
// Whether it is in effect on the current device (on, and the device and this build support it).
bool dependent_launch_active();

// ---- Errors ----
// The last launch error as text ("" when none); clears it.
std::string cuda_last_error();

}  // namespace brisk::cuda
