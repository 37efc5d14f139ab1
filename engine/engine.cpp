#include "brisk/engine.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <new>
#include <unordered_map>

#include "backend/backend.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/memory_plan.h"
#include "cache/kv_cache.h"
#include "metrics/metrics_recorder.h"
#include "model/llama_model.h"
#include "model/model_weights.h"
#include "quant/quantize.h"
#include "runner/model_runner.h"
#include "sample/beam_search.h"
#include "sample/sampler.h"
#include "sched/scheduler.h"
#include "spec/ngram_proposer.h"

namespace brisk {

// A request as the caller sees it. It runs as one or more sequences (each a
// Request: its own row in the batch, KV block table and scheduler entry,
// keyed by an internal sequence id; the first keeps the public id). Parallel
// samples and beams are forked from the sequence that prefilled the prompt,
// so the prompt's KV blocks are computed once and shared (copy-on-write).
// The scheduler sees only sequences: a preempted one frees its own blocks
// and recomputes alone, which is exact (kernels are batch-invariant), and
// the group meanwhile goes on with the others (beams wait for it: a step
// of beam search needs every live beam's next-token distribution).
struct Group {
  uint64_t id = 0;
  SamplingParams params;
  std::vector<int32_t> prompt_ids;
  int width = 1;  // sequences it runs: best_of, or beam_width
  bool beam = false;
  bool forked = false;  // parallel sampling: the prompt is done and the sequences exist
  uint64_t seed = 0;
  std::vector<Request*> live;        // beams: in beam order
  std::vector<SequenceOutput> done;  // parallel sampling: finished sequences
  std::unique_ptr<BeamHypotheses> hyps;
  // Beams whose logits are in this round: their best next tokens.
  std::unordered_map<uint64_t, std::vector<std::pair<int32_t, float>>> beam_top;
  int beam_len = 0;  // tokens every live beam has generated
  int tokens = 0;    // generated over all sequences
  // SamplingParams::prompt_logprobs: prompt tokens 1.. scored so far, and
  // whether they went out (with the request's first event once complete).
  std::vector<TokenLogprob> prompt_logprobs;
  bool prompt_logprobs_sent = false;
  bool single() const { return width == 1 && !beam; }
};

class EngineImpl {
 public:
  explicit EngineImpl(const EngineConfig& cfg);

  uint64_t add(std::vector<int32_t> ids, const SamplingParams& p, std::optional<uint64_t> id,
               std::optional<double> arrival, std::string reject);
  void abort(uint64_t id);
  std::vector<RequestOutput> step();
  bool greedy_only(const SchedulerOutput& so) const;
  double now() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  std::vector<KvBlockState> kv_blocks() const;

  EngineConfig cfg_;
  LoadedModel model_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<KvCache> cache_;
  std::unique_ptr<LlamaModel> llama_;
  std::unique_ptr<Scheduler> sched_;
  MetricsRecorder metrics_;
  std::unordered_map<uint64_t, std::unique_ptr<Group>> groups_;      // by request id
  std::unordered_map<uint64_t, std::unique_ptr<Request>> requests_;  // every live sequence, by sequence id
  std::vector<RequestOutput> pending_;  // outputs produced outside step() (rejections, aborts)
  uint64_t next_id_ = 1;
  uint64_t next_seq_id_ = ~0ull;  // forked sequences count down from the top of the id space
  uint64_t steps_ = 0;
  int max_len_ = 0;
  std::string max_len_limit_;  // what set max_len_, for the message that refuses a longer prompt
  double kv_bytes_per_token_ = 0;
  size_t max_stop_len_ = 0;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::unique_ptr<ModelRunner> runner_;
  std::vector<float> raw_row_;    // a copy of one logits row, for log-probabilities
  std::vector<float> no_logits_;  // the logits of a greedy-only step: none
  std::vector<float> work_row_;   // a copy the sampler may edit, when one row feeds several sequences

 private:
  void finish(Group* g, FinishReason reason, RequestOutput& out, double t);
  RequestOutput process_token(Request* r, int32_t tok, double t, FinishReason& reason);
  Request* new_sequence(Group* g, const Request& from, int index);
  void drop_sequence(Request* r);
  void sample_group(Group* g, Request* r, const float* logits, int vocab, double t,
                    std::vector<RequestOutput>& out);
  void beam_logits(Group* g, Request* r, const float* logits, int vocab);
  void beam_advance(Group* g, double t, std::vector<RequestOutput>& out);
  void propose_drafts();
  int verify_draft(Group* g, Request* r, const ScheduledSeq& s, float* logits, int vocab, double t,
                   std::vector<RequestOutput>& out);
  RequestOutput group_result(Group* g, FinishReason reason);
  void attach_prompt_logprobs(Group* g, RequestOutput& out);
};

namespace {

// "1 block", "2 blocks": a count with its noun.
std::string count_of(int64_t n, const char* noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

// KV blocks on a CUDA device: what is free now (the backend exists, nothing
// of the model is placed yet), less the weights as they will be stored and
// the workspace planned for these limits (the same plan the backend
// reserves), then num_kv_blocks, kv_cache_bytes or gpu_memory_utilization.
int64_t device_kv_blocks(const EngineConfig& cfg, const LoadedModel& m, int64_t per_block) {
  const CudaProbe p = cuda_probe();
  DeviceCaps caps;
  caps.cc_major = p.cc_major;
  caps.cc_minor = p.cc_minor;
  caps.fp8 = p.fp8_supported;
  caps.int8_activations = cfg.int8_activations;
  const bool is_static = cfg.policy == SchedulerPolicy::Static;
  const int64_t max_tokens = cfg.max_num_batched_tokens + (is_static ? cfg.max_num_seqs : 0);
  const int64_t max_seqs = cfg.max_num_seqs * (is_static ? 2 : 1);
  const int64_t max_logits =
      std::max<int64_t>((int64_t)cfg.max_num_seqs * (1 + cfg.speculative_tokens), max_seqs);
  const WorkspacePlan ws = plan_workspace(model_gemms(m.weights, max_tokens, max_logits), max_seqs,
                                          m.config.n_heads, m.config.head_dim, caps);
  KvBudget b;
  b.device = p.name;
  b.free_bytes = p.free_bytes;
  b.weight_bytes = device_weights_bytes(m.weights, caps);
  b.workspace_bytes = ws.total() - align_up(ws.blas_bytes);  // the backend holds that one already
  b.utilization = cfg.gpu_memory_utilization;
  b.num_kv_blocks = cfg.num_kv_blocks;
  b.kv_cache_bytes = cfg.kv_cache_bytes;
  b.bytes_per_block = per_block;
  b.block_size = cfg.block_size;
  // Scratch blocks the model adds: static batching's padding rows, and one
  // for the padding rows of captured decode graphs.
  b.extra_blocks =
      (is_static ? (cfg.max_num_seqs + cfg.block_size - 1) / cfg.block_size : 0) + (cfg.cuda_graphs ? 1 : 0);
  return plan_kv_blocks(b);
}

}  // namespace

EngineImpl::EngineImpl(const EngineConfig& cfg) : cfg_(cfg) {
  if (std::string e = cfg.validate(); !e.empty()) throw Error(e);
  model_ = load_model_for(cfg);
  const ModelConfig& mc = model_.config;
  max_len_ = mc.context_length;
  max_len_limit_ = "the model's context length";
  if (cfg.max_model_len > 0) {
    if (cfg.max_model_len > mc.context_length)
      throw Error("EngineConfig.max_model_len = " + std::to_string(cfg.max_model_len) +
                  ": exceeds the model's context length " + std::to_string(mc.context_length));
    max_len_ = cfg.max_model_len;
    max_len_limit_ = "EngineConfig.max_model_len = " + std::to_string(cfg.max_model_len);
  }
  const DType kv_dtype = parse_dtype_name(cfg.kv_dtype, "EngineConfig.kv_dtype");
  const int64_t per_block = LlamaModel::kv_bytes_per_block(mc, cfg.block_size, kv_dtype);
  kv_bytes_per_token_ = (double)per_block / cfg.block_size;
  // The backend first: on a device the KV pool is sized from the memory left
  // once the weights and the workspace are placed.
  backend_ = make_backend(cfg);
  int64_t blocks = cfg.num_kv_blocks;
  if (backend_->name() == "cuda") {
    blocks = device_kv_blocks(cfg, model_, per_block);
  } else {
    if (blocks == 0 && cfg.kv_cache_bytes > 0) {
      blocks = std::min<int64_t>(cfg.kv_cache_bytes / per_block, INT32_MAX / cfg.block_size);
      if (blocks < 1)
        throw Error("EngineConfig.kv_cache_bytes = " + std::to_string(cfg.kv_cache_bytes) +
                    ": too small for one KV block of this model (" + std::to_string(per_block) + " bytes)");
    }
    if (blocks == 0) {
      const int64_t per_seq = (max_len_ + cfg.block_size - 1) / cfg.block_size;
      blocks = std::min<int64_t>(per_seq * cfg.max_num_seqs,
                                 std::max<int64_t>(per_seq, (int64_t(1) << 30) / per_block));
    }
  }
  // One sequence must always fit alone (so preemption can never deadlock):
  // the usable context shrinks to what the cache (and, without chunked
  // prefill, one step's token budget) can hold.
  if (blocks * cfg.block_size < max_len_) {
    max_len_ = (int)(blocks * cfg.block_size);
    max_len_limit_ =
        "the KV cache: " + count_of(blocks, "block") + " of " + count_of(cfg.block_size, "token");
  }
  if ((!cfg.enable_chunked_prefill || cfg.policy == SchedulerPolicy::Static) &&
      cfg.max_num_batched_tokens < max_len_) {
    max_len_ = cfg.max_num_batched_tokens;
    max_len_limit_ =
        "EngineConfig.max_num_batched_tokens = " + std::to_string(cfg.max_num_batched_tokens) +
        ", one step's tokens, as a prompt is not split " +
        (cfg.policy == SchedulerPolicy::Static ? "under static batching" : "without chunked prefill");
  }
  if (blocks * cfg.block_size < 2)
    throw Error(std::string("EngineConfig.") + (cfg.num_kv_blocks > 0 ? "num_kv_blocks" : "kv_cache_bytes") +
                ": the KV cache (" + count_of(blocks, "block") + " of " + count_of(cfg.block_size, "token") +
                ") is too small for one sequence");
  if (max_len_ < 2) {
    if (cfg.max_num_batched_tokens < 2)
      throw Error("EngineConfig.max_num_batched_tokens = " + std::to_string(cfg.max_num_batched_tokens) +
                  ": without chunked prefill a whole sequence must fit in one step's token budget");
    throw Error("EngineConfig.max_model_len / the model's context_length: a usable context of " +
                std::to_string(max_len_) + " token leaves no room to generate");
  }
  cache_ = std::make_unique<KvCache>(blocks, cfg.block_size);
  ModelLimits lim;
  lim.max_tokens = cfg.max_num_batched_tokens;
  lim.max_seqs = cfg.max_num_seqs;
  lim.max_logits_rows = cfg.max_num_seqs * (1 + cfg.speculative_tokens);
  lim.max_blocks_per_seq = (max_len_ + cfg.block_size - 1) / cfg.block_size;
  lim.num_kv_blocks = blocks;
  lim.block_size = cfg.block_size;
  lim.kv_dtype = kv_dtype;
  if (cfg.policy == SchedulerPolicy::Static) {
    // Padding rows of finished members need somewhere to write their K/V:
    // scratch blocks past the allocator's, never handed to a sequence.
    lim.max_tokens += cfg.max_num_seqs;
    lim.max_seqs *= 2;
    lim.num_kv_blocks += (cfg.max_num_seqs + cfg.block_size - 1) / cfg.block_size;
  }
  try {
    llama_ = std::make_unique<LlamaModel>(model_, *backend_, lim);
  } catch (const std::bad_alloc&) {
    throw Error(std::string("EngineConfig.") + (cfg.num_kv_blocks > 0 ? "num_kv_blocks" : "kv_cache_bytes") +
                ": cannot allocate a KV cache of " + std::to_string(blocks) + " blocks (" +
                std::to_string(blocks * per_block / (1 << 20)) + " MiB)");
  }
  if (cfg.policy == SchedulerPolicy::Static)
    sched_ = std::make_unique<StaticScheduler>(cfg, *cache_);
  else
    sched_ = std::make_unique<ContinuousScheduler>(cfg, *cache_);
  runner_ = std::make_unique<ModelRunner>(*llama_, *cache_);
}

uint64_t EngineImpl::add(std::vector<int32_t> ids, const SamplingParams& p, std::optional<uint64_t> id,
                         std::optional<double> arrival, std::string reject) {
  const uint64_t rid = id ? *id : next_id_++;
  if (id) next_id_ = std::max(next_id_, *id + 1);
  if (groups_.count(rid) || requests_.count(rid))
    throw Error("request id " + std::to_string(rid) + " is already in use");
  auto r = std::make_unique<Request>();
  r->id = r->group_id = rid;
  r->prompt_ids = std::move(ids);
  r->params = p;
  r->arrival = arrival ? *arrival : now();
  r->max_len = max_len_;
  const int n = (int)r->prompt_ids.size();
  if (reject.empty()) reject = p.validate();
  if (reject.empty() && p.num_sequences() > cfg_.max_num_seqs)
    reject = std::string("SamplingParams.") +
             (p.beam_width > 0 ? "beam_width"
              : p.best_of > 0  ? "best_of"
                               : "n") +
             " = " + std::to_string(p.num_sequences()) + ": more sequences than EngineConfig.max_num_seqs (" +
             std::to_string(cfg_.max_num_seqs) + ")";
  if (reject.empty() && (p.num_sequences() > 1 || p.beam_width > 0) && cfg_.policy == SchedulerPolicy::Static)
    reject =
        "SamplingParams.n / best_of / beam_width: several sequences per request need the continuous "
        "scheduler";
  // Beams wait for each other every step, so all of them must fit in the
  // cache at their longest at once; otherwise preemption could never let
  // the group finish. Refuse such a request up front instead of stalling.
  if (reject.empty() && p.beam_width > 0) {
    // The last sampled token is never fed back, so its K/V is never stored.
    const int64_t longest = std::min<int64_t>((int64_t)n + p.max_tokens - 1, max_len_);
    const int64_t shared = n / cache_->block_size();  // the prompt's full blocks, shared by every beam
    const int64_t need =
        shared + (int64_t)p.beam_width * cache_->blocks_needed(longest - shared * cache_->block_size());
    if (need > cache_->num_blocks())
      reject = "SamplingParams.beam_width = " + std::to_string(p.beam_width) + ": " +
               std::to_string(p.beam_width) + " beams of up to " + std::to_string(longest) + " tokens need " +
               std::to_string(need) + " KV blocks, the cache has " + std::to_string(cache_->num_blocks());
  }
  if (reject.empty() && n == 0) reject = "empty prompt";
  if (reject.empty() && n >= max_len_)
    reject = "prompt of " + std::to_string(n) + " tokens does not fit the context: at most " +
             std::to_string(max_len_ - 1) + " tokens (set by " + max_len_limit_ + ")";
  const int vocab = std::min(model_.config.vocab_size, model_.info.tokenizer_vocab_size);
  for (int32_t t : r->prompt_ids)
    if (reject.empty() && (t < 0 || t >= vocab))
      reject = "prompt token id " + std::to_string(t) + " is outside the vocabulary [0, " +
               std::to_string(vocab) + ")";
  // A bias on an id the model cannot produce would be silently ignored (a typo'd id does nothing).
  for (const auto& [t, bias] : p.logit_bias)
    if (reject.empty() && t >= vocab)
      reject = "SamplingParams.logit_bias: token id " + std::to_string(t) +
               " is outside the vocabulary [0, " + std::to_string(vocab) + ")";
  metrics_.on_add(rid, r->arrival, n);
  if (!reject.empty()) {
    RequestOutput out;
    out.request_id = rid;
    out.prompt_tokens = n;
    out.finished = true;
    out.finish_reason = FinishReason::Error;
    out.error = "request " + std::to_string(rid) + " rejected: " + reject;
    out.timings = metrics_.on_finish(rid, now(), FinishReason::Error, 0);
    pending_.push_back(std::move(out));
    return rid;
  }
  auto g = std::make_unique<Group>();
  g->id = rid;
  g->params = p;
  g->prompt_ids = r->prompt_ids;
  g->width = p.num_sequences();
  g->beam = p.beam_width > 0;
  // Unseeded requests still get a reproducible stream: engine seed + id.
  g->seed = p.seed ? *p.seed : cfg_.seed * 0x9e3779b97f4a7c15ull + rid;
  if (g->beam) {
    const int max_new = std::min<int>(p.max_tokens, max_len_ - n);
    g->hyps = std::make_unique<BeamHypotheses>(p.beam_width, p.length_penalty, p.early_stopping, max_new);
  }
  r->seats = g->width;
  r->rng.seed(g->seed);
  r->detok = std::make_unique<StreamingDetokenizer>(*model_.tokenizer, r->prompt_ids);
  for (const auto& s : p.stop) max_stop_len_ = std::max(max_stop_len_, s.size());
  g->live.push_back(r.get());
  sched_->add(r.get());
  requests_[rid] = std::move(r);
  groups_[rid] = std::move(g);
  return rid;
}

void EngineImpl::abort(uint64_t id) {
  auto it = groups_.find(id);
  if (it == groups_.end()) return;
  Group* g = it->second.get();
  RequestOutput out;
  if (g->single()) {
    Request* r = g->live.front();
    out.request_id = id;
    out.token_ids = r->output_ids;
    out.text = r->text;
    out.prompt_tokens = (int)r->prompt_ids.size();
  } else {
    out = group_result(g, FinishReason::Abort);
  }
  finish(g, FinishReason::Abort, out, now());
  pending_.push_back(std::move(out));
}

// Ends the request: every sequence still live is dropped (blocks freed).
void EngineImpl::finish(Group* g, FinishReason reason, RequestOutput& out, double t) {
  attach_prompt_logprobs(g, out);
  out.finished = true;
  out.finish_reason = reason;
  for (Request* r : std::vector<Request*>(g->live)) drop_sequence(r);
  g->live.clear();
  // Output tokens: what was generated, every sampled sequence's with
  // parallel sampling (best_of ones not returned too); with beam search the
  // returned sequences' tokens, so tok/s is the rate of tokens delivered (a
  // beam step extends every live beam, most of them dropped later).
  int tokens = out.sequences.empty() ? (int)out.token_ids.size() : g->tokens;
  if (g->beam) {
    tokens = 0;
    for (const SequenceOutput& so : out.sequences) tokens += (int)so.token_ids.size();
  }
  out.timings = metrics_.on_finish(g->id, t, reason, tokens);
  groups_.erase(g->id);  // g is dangling from here on
}

void EngineImpl::attach_prompt_logprobs(Group* g, RequestOutput& out) {
  if (g->params.prompt_logprobs < 0 || g->prompt_logprobs_sent) return;
  if (g->prompt_logprobs.size() + 1 < g->prompt_ids.size()) return;  // not all computed yet
  out.prompt_logprobs = std::move(g->prompt_logprobs);
  g->prompt_logprobs_sent = true;
}

void EngineImpl::drop_sequence(Request* r) {
  sched_->remove(r);
  requests_.erase(r->id);
}

// A new sequence of `g` that continues `from` (same prompt and output so
// far); the caller gives it KV blocks (fork) or lets it recompute.
Request* EngineImpl::new_sequence(Group* g, const Request& from, int index) {
  uint64_t sid = next_seq_id_--;
  while (requests_.count(sid) || groups_.count(sid)) sid = next_seq_id_--;
  auto c = std::make_unique<Request>();
  c->id = sid;
  c->group_id = g->id;
  c->seq_index = index;
  c->prompt_ids = from.prompt_ids;
  c->output_ids = from.output_ids;
  c->params = from.params;
  c->arrival = from.arrival;
  c->max_len = from.max_len;
  c->cum_logprob = from.cum_logprob;
  c->rng.seed(g->seed + (uint64_t)index);
  c->detok = std::make_unique<StreamingDetokenizer>(*model_.tokenizer, c->prompt_ids);
  Request* raw = c.get();
  requests_[sid] = std::move(c);
  return raw;
}

// The n best sequences (or beams) as the final output; for an abort, the
// sequences still running are included as they stand.
RequestOutput EngineImpl::group_result(Group* g, FinishReason reason) {
  RequestOutput out;
  out.request_id = g->id;
  out.prompt_tokens = (int)g->prompt_ids.size();
  std::vector<SequenceOutput> all = g->beam ? g->hyps->sorted() : g->done;
  if (reason == FinishReason::Abort)
    for (Request* r : g->live) {
      SequenceOutput so;
      so.index = r->seq_index;
      so.token_ids = r->output_ids;
      so.cumulative_logprob = so.score = r->cum_logprob;
      so.finish_reason = FinishReason::Abort;
      if (!g->beam) so.text = r->text;
      all.push_back(std::move(so));
    }
  if (!g->beam)  // beams are already in score order
    std::stable_sort(all.begin(), all.end(), [](const SequenceOutput& a, const SequenceOutput& b) {
      return a.score > b.score || (a.score == b.score && a.index < b.index);
    });
  if ((int)all.size() > g->params.n) all.resize(g->params.n);
  if (g->beam) {
    // Beams are ranked; their text is decoded whole, without the stop token.
    for (size_t i = 0; i < all.size(); ++i) {
      SequenceOutput& so = all[i];
      so.index = (int)i;
      std::vector<int32_t> ids = so.token_ids;
      if (!ids.empty() && (so.finish_reason == FinishReason::Eos || so.finish_reason == FinishReason::Stop))
        ids.pop_back();
      StreamingDetokenizer d(*model_.tokenizer, g->prompt_ids);
      for (int32_t t : ids) so.text += d.push(t);
      so.text += d.flush();
    }
  }
  if (!all.empty()) {
    out.token_ids = all.front().token_ids;
    out.text = all.front().text;
  }
  out.sequences = std::move(all);
  return out;
}

// Appends the token and decides whether the sequence stops; out.finished is
// left to the caller (a sequence's end is its request's only when alone).
RequestOutput EngineImpl::process_token(Request* r, int32_t tok, double t, FinishReason& reason) {
  RequestOutput out;
  out.request_id = r->group_id;
  out.seq_index = r->seq_index;
  out.prompt_tokens = (int)r->prompt_ids.size();
  r->output_ids.push_back(tok);
  metrics_.on_token(r->group_id, t);
  attach_prompt_logprobs(groups_.at(r->group_id).get(), out);
  const SamplingParams& p = r->params;
  reason = FinishReason::None;
  const bool eos = tok == model_.config.eos_id && !p.ignore_eos;
  if (eos) {
    reason = FinishReason::Eos;
  } else if (std::find(p.stop_token_ids.begin(), p.stop_token_ids.end(), tok) != p.stop_token_ids.end()) {
    reason = FinishReason::Stop;
  } else {
    const auto d0 = std::chrono::steady_clock::now();
    r->text += r->detok->push(tok);
    metrics_.on_detokenize(r->group_id,
                           std::chrono::duration<double>(std::chrono::steady_clock::now() - d0).count());
    // Look for a stop string in the part that could newly contain one.
    size_t stop_at = std::string::npos;
    for (const auto& s : p.stop) {
      const size_t from = r->text_emitted > s.size() ? r->text_emitted - s.size() : 0;
      const size_t pos = r->text.find(s, from);
      if (pos != std::string::npos) stop_at = std::min(stop_at, pos);
    }
    if (stop_at != std::string::npos) {
      r->text.resize(stop_at);
      reason = FinishReason::Stop;
    } else if ((int)r->output_ids.size() >= p.max_tokens || r->num_tokens() >= r->max_len) {
      reason = FinishReason::Length;
    }
  }
  if (reason != FinishReason::None && reason != FinishReason::Stop) r->text += r->detok->flush();
  // Hold back a possible prefix of a stop string until it is decided, but
  // never split a UTF-8 character.
  size_t emit_to = r->text.size();
  if (reason == FinishReason::None && !p.stop.empty()) {
    size_t hold = 0;
    for (const auto& s : p.stop) hold = std::max(hold, s.size() - 1);
    emit_to = r->text.size() > hold ? r->text.size() - hold : 0;
    while (emit_to > 0 && emit_to < r->text.size() && ((unsigned char)r->text[emit_to] & 0xC0) == 0x80)
      --emit_to;
  }
  emit_to = std::max(emit_to, std::min(r->text_emitted, r->text.size()));
  out.new_token_ids = {tok};
  out.new_text = r->text.substr(std::min(r->text_emitted, r->text.size()),
                                emit_to - std::min(r->text_emitted, r->text.size()));
  r->text_emitted = emit_to;
  out.token_ids = r->output_ids;
  out.text = r->text.substr(0, emit_to);
  return out;
}

// Parallel sampling. The step that completes the prompt forks the other
// best_of - 1 sequences from it (sharing its blocks); each samples its first
// token from this same row with its own generator (seed + index), exactly
// as a lone request with that seed would.
void EngineImpl::sample_group(Group* g, Request* r, const float* logits, int vocab, double t,
                              std::vector<RequestOutput>& outputs) {
  std::vector<Request*> seqs = {r};
  if (!g->forked) {
    g->forked = true;
    r->seats = 1;
    for (int i = 1; i < g->width; ++i) {
      Request* c = new_sequence(g, *r, i);
      c->num_computed = r->num_computed;
      cache_->fork(r->id, c->id);
      sched_->add_forked(r, c);
      g->live.push_back(c);
      seqs.push_back(c);
    }
  }
  raw_row_.assign(logits, logits + vocab);
  for (Request* q : seqs) {
    work_row_ = raw_row_;
    const int32_t tok =
        sample_token(work_row_.data(), vocab, q->params, q->rng, q->prompt_ids, q->output_ids);
    TokenLogprob lp = token_logprobs(raw_row_.data(), vocab, tok, std::max(q->params.logprobs, 0));
    q->cum_logprob += lp.logprob;
    g->tokens++;
    FinishReason reason;
    RequestOutput out = process_token(q, tok, t, reason);
    if (q->params.logprobs >= 0) out.new_logprobs.push_back(std::move(lp));
    outputs.push_back(std::move(out));
    if (reason == FinishReason::None) continue;
    SequenceOutput so;
    so.index = q->seq_index;
    so.token_ids = q->output_ids;
    so.text = q->text;
    so.cumulative_logprob = so.score = q->cum_logprob;
    so.finish_reason = reason;
    g->done.push_back(std::move(so));
    g->live.erase(std::find(g->live.begin(), g->live.end(), q));
    drop_sequence(q);
  }
  if (g->live.empty()) {
    RequestOutput out = group_result(g, FinishReason::None);
    const FinishReason reason = out.sequences.front().finish_reason;
    finish(g, reason, out, t);
    outputs.push_back(std::move(out));
  }
}

// Beam search: a beam's logits are kept (as its 2W best next tokens under
// the processed, temperature-free distribution) until every live beam's are in.
void EngineImpl::beam_logits(Group* g, Request* r, const float* logits, int vocab) {
  work_row_.assign(logits, logits + vocab);
  SamplingParams p = r->params;
  p.temperature = 0;
  apply_logits_processors(work_row_.data(), vocab, p, r->prompt_ids, r->output_ids);
  g->beam_top[r->id] = token_logprobs(work_row_.data(), vocab, 0, 2 * p.beam_width).top;
}

void EngineImpl::beam_advance(Group* g, double t, std::vector<RequestOutput>& outputs) {
  const SamplingParams& p = g->params;
  const int W = p.beam_width;
  std::vector<BeamInput> in;
  for (Request* b : g->live) in.push_back({b->cum_logprob, g->beam_len, std::move(g->beam_top.at(b->id))});
  g->beam_top.clear();
  const int32_t eos = model_.config.eos_id;
  auto stop_reason = [&](int32_t tok) {
    if (tok == eos && !p.ignore_eos) return FinishReason::Eos;
    if (std::find(p.stop_token_ids.begin(), p.stop_token_ids.end(), tok) != p.stop_token_ids.end())
      return FinishReason::Stop;
    return FinishReason::None;
  };
  const int max_new = std::min<int>(p.max_tokens, max_len_ - (int)g->prompt_ids.size());
  const BeamStep st = beam_step(in, W, max_new, stop_reason);
  metrics_.on_token(g->id, t);
  g->beam_len++;
  g->tokens = g->beam_len;
  for (const BeamChoice& c : st.finished) {
    SequenceOutput h;
    h.token_ids = g->live[c.beam]->output_ids;
    h.token_ids.push_back(c.token);
    h.cumulative_logprob = c.cum_logprob;
    h.score = g->hyps->score(c.cum_logprob, (int)h.token_ids.size());
    h.finish_reason = c.reason;
    g->hyps->add(std::move(h));
  }
  // A beam's first surviving candidate takes the beam over; any further one
  // is a new sequence forked from it (its blocks shared until written).
  std::vector<Request*> old = g->live, next;
  std::vector<bool> kept(old.size(), false);
  for (const BeamChoice& c : st.live) {
    Request* b = old[c.beam];
    Request* q = b;
    if (kept[c.beam]) {
      Request* from = b;
      q = new_sequence(g, *from, 0);
      q->output_ids.pop_back();  // `from` already took its own token
      if (cache_->has(from->id)) {
        q->num_computed = from->num_computed;
        cache_->fork(from->id, q->id);
        sched_->add_forked(from, q);
      } else {
        sched_->add(q);  // `from` was preempted: recompute
      }
    }
    kept[c.beam] = true;
    q->output_ids.push_back(c.token);
    q->cum_logprob = c.cum_logprob;
    next.push_back(q);
  }
  for (size_t i = 0; i < old.size(); ++i)
    if (!kept[i]) drop_sequence(old[i]);
  g->live = next;
  for (size_t i = 0; i < next.size(); ++i) {
    next[i]->seq_index = (int)i;
    next[i]->seats = i == 0 ? W - (int)next.size() + 1 : 1;
  }
  const bool done = next.empty() || g->hyps->done(next.front()->cum_logprob, g->beam_len);
  if (!done) return;
  RequestOutput out = group_result(g, FinishReason::None);
  const FinishReason reason =
      out.sequences.empty() ? FinishReason::Length : out.sequences.front().finish_reason;
  finish(g, reason, out, t);
  outputs.push_back(std::move(out));
}

// Prompt lookup for every running sequence about to decode. Only greedy
// single-sequence requests speculate: their output is fixed by the logits,
// so verification can reproduce it exactly; a sampled token's draw would
// depend on how many rows were verified.
void EngineImpl::propose_drafts() {
  for (Request* r : sched_->running()) {
    r->draft.clear();
    const SamplingParams& p = r->params;
    if (p.temperature > 0 || r->num_tokens() - r->num_computed != 1 || !cache_->has(r->id)) continue;
    if (!groups_.at(r->group_id)->single()) continue;
    // One token beyond the accepted ones is always emitted: propose no
    // more than max_tokens and the context can still take.
    const int64_t room = std::min<int64_t>((int64_t)p.max_tokens - (int64_t)r->output_ids.size(),
                                           (int64_t)r->max_len - r->num_tokens()) -
                         1;
    const int k = (int)std::min<int64_t>(cfg_.speculative_tokens, room);
    if (k > 0) r->draft = propose_ngram(r->prompt_ids, r->output_ids, cfg_.speculative_ngram, k);
  }
}

// Checks a speculative decode's draft against the model: row j holds the
// logits after the newest token and j draft tokens. Each position is sampled
// (greedy, with every logits processor) exactly as a plain decode would,
// its token processed before the next position is looked at; drafts are
// accepted while they match, and the first mismatch (or the token after a
// fully accepted draft) is the model's own. Rejected positions' K/V are
// rolled back. The tokens form one output event. Returns drafts accepted.
int EngineImpl::verify_draft(Group* g, Request* r, const ScheduledSeq& s, float* logits, int vocab, double t,
                             std::vector<RequestOutput>& outputs) {
  const std::vector<int32_t> draft = std::exchange(r->draft, {});
  const int V = model_.config.vocab_size;
  const int k = (int)s.num_draft;
  int accepted = 0;
  std::optional<RequestOutput> merged;
  FinishReason reason = FinishReason::None;
  for (int j = 0; j <= k && reason == FinishReason::None; ++j) {
    float* row_logits = logits + (size_t)j * V;
    if (r->params.logprobs >= 0) raw_row_.assign(row_logits, row_logits + vocab);
    const int32_t tok = sample_token(row_logits, vocab, r->params, r->rng, r->prompt_ids, r->output_ids);
    RequestOutput o = process_token(r, tok, t, reason);
    if (r->params.logprobs >= 0)
      o.new_logprobs.push_back(token_logprobs(raw_row_.data(), vocab, tok, r->params.logprobs));
    if (!merged) {
      merged = std::move(o);
    } else {
      merged->new_token_ids.push_back(tok);
      merged->new_text += o.new_text;
      for (auto& lp : o.new_logprobs) merged->new_logprobs.push_back(std::move(lp));
      merged->token_ids = std::move(o.token_ids);
      merged->text = std::move(o.text);
    }
    if (j == k || tok != draft[j]) break;
    ++accepted;
  }
  outputs.push_back(std::move(*merged));
  if (reason != FinishReason::None) {
    finish(g, reason, outputs.back(), t);  // r is gone with its blocks
    return accepted;
  }
  // Valid K/V: the newest token and the accepted drafts.
  r->num_computed = s.start + 1 + accepted;
  cache_->truncate(r->id, r->num_computed);
  if (cfg_.enable_prefix_caching)
    cache_->commit_full_blocks(r->id, r->prompt_ids, r->output_ids, r->num_computed);
  return accepted;
}

// Whether every row this step samples is a lone sequence decoding greedily
// with nothing that reads or edits its logits (bias, penalties, n-gram bans,
// log-probabilities, drafts to verify, siblings or beams to rank).
bool EngineImpl::greedy_only(const SchedulerOutput& so) const {
  for (const ScheduledSeq& s : so.seqs) {
    if (s.prompt_logits_count > 0 || s.num_draft > 0) return false;
    if (!s.samples) continue;
    const Request* r = s.req;
    const SamplingParams& p = r->params;
    if (p.temperature > 0.0f || !p.logit_bias.empty() || p.repetition_penalty != 1.0f ||
        p.no_repeat_ngram_size > 0 || p.logprobs >= 0 || !groups_.at(r->group_id)->single())
      return false;
  }
  return true;
}

std::vector<RequestOutput> EngineImpl::step() {
  std::vector<RequestOutput> outputs = std::exchange(pending_, {});
  const double t0 = now();
  if (cfg_.speculative_tokens > 0 && cfg_.policy == SchedulerPolicy::Continuous) propose_drafts();
  SchedulerOutput so = sched_->schedule();
  for (Request* v : so.preempted) metrics_.on_preempt(v->group_id);
  if (so.empty()) return outputs;

  for (ScheduledSeq& s : so.seqs) {
    metrics_.on_scheduled(s.req->group_id, t0);
    // Prompt log-probabilities: the rows of prompt positions not scored yet
    // (a recompute after preemption scores nothing twice). Position p's row
    // scores prompt token p + 1.
    const Request* r = s.req;
    if (r->params.prompt_logprobs >= 0 && r->id == r->group_id) {
      const int64_t done = (int64_t)groups_.at(r->group_id)->prompt_logprobs.size();
      const int64_t from = std::max(s.start, done);
      const int64_t to = std::min<int64_t>(s.start + s.num_tokens, (int64_t)r->prompt_ids.size() - 1);
      if (to > from) {
        s.prompt_logits_from = from;
        s.prompt_logits_count = to - from;
      }
    }
  }
  // A step whose every sampling row is plain greedy gets token ids from
  // the backend instead of logits (a device copies back 4 bytes a row, not
  // the vocabulary, and the host scans nothing).
  const int V = model_.config.vocab_size;
  const int vocab_limit = std::min(V, model_.info.tokenizer_vocab_size);
  const bool greedy = greedy_only(so);
  std::vector<float>& logits = greedy ? no_logits_ : runner_->execute(so);
  const std::vector<int32_t>* greedy_ids = greedy ? &runner_->execute_greedy(so, vocab_limit) : nullptr;
  const double t1 = now();
  for (const ScheduledSeq& s : so.seqs)
    if (!(s.num_tokens - s.num_draft == 1 && s.start >= (int64_t)s.req->prompt_ids.size()))
      metrics_.on_prefill_chunk(s.req->group_id, t0, t1, (int)s.num_tokens);

  StepMetrics sm;
  sm.step = steps_++;
  sm.start = t0;
  sm.forward = t1 - t0;
  sm.preempted = (int)so.preempted.size();
  sm.num_seqs = (int)so.seqs.size();
  sm.prefill_tokens = so.prefill_tokens;
  sm.decode_tokens = so.decode_tokens;
  sm.decode_seqs = so.decode_seqs;
  sm.spec_proposed_tokens = so.proposed_tokens;
  sm.padding_tokens = so.padding_tokens;
  sm.prefix_query_tokens = so.prefix_query_tokens;
  sm.prefix_hit_tokens = so.prefix_hit_tokens;

  int row = 0;
  std::vector<Group*> beam_groups;
  for (const ScheduledSeq& s : so.seqs) {
    Request* r = s.req;
    if (s.prompt_logits_count > 0) {
      Group* g = groups_.at(r->group_id).get();
      const int vocab = std::min(V, model_.info.tokenizer_vocab_size);
      for (int64_t j = 0; j < s.prompt_logits_count; ++j) {
        const int64_t pos = s.prompt_logits_from + j;
        g->prompt_logprobs.push_back(token_logprobs(logits.data() + (size_t)row++ * V, vocab,
                                                    r->prompt_ids[pos + 1], r->params.prompt_logprobs));
      }
    }
    if (s.num_draft > 0) {
      float* rows = logits.data() + (size_t)row * V;
      row += 1 + (int)s.num_draft;
      sm.spec_accepted_tokens += verify_draft(groups_.at(r->group_id).get(), r, s, rows,
                                              std::min(V, model_.info.tokenizer_vocab_size), t1, outputs);
      continue;
    }
    r->num_computed += s.num_tokens;
    if (cfg_.enable_prefix_caching)
      cache_->commit_full_blocks(r->id, r->prompt_ids, r->output_ids, r->num_computed);
    if (!s.samples) continue;
    // Ids past the tokenizer's vocabulary (padded embeddings) are never sampled.
    const int vocab = vocab_limit;
    const int my_row = row++;
    if (greedy_ids) {
      FinishReason reason;
      outputs.push_back(process_token(r, (*greedy_ids)[my_row], t1, reason));
      if (reason != FinishReason::None) finish(groups_.at(r->group_id).get(), reason, outputs.back(), t1);
      continue;
    }
    float* row_logits = logits.data() + (size_t)my_row * V;
    Group* g = groups_.at(r->group_id).get();
    if (g->beam) {
      beam_logits(g, r, row_logits, vocab);
      if (std::find(beam_groups.begin(), beam_groups.end(), g) == beam_groups.end()) beam_groups.push_back(g);
      continue;
    }
    if (!g->single()) {
      sample_group(g, r, row_logits, vocab, t1, outputs);
      continue;
    }
    // The sampler edits the row in place; log-probabilities want it raw.
    if (r->params.logprobs >= 0) raw_row_.assign(row_logits, row_logits + vocab);
    const int32_t tok = sample_token(row_logits, vocab, r->params, r->rng, r->prompt_ids, r->output_ids);
    std::optional<TokenLogprob> lp;
    if (r->params.logprobs >= 0) lp = token_logprobs(raw_row_.data(), vocab, tok, r->params.logprobs);
    FinishReason reason;
    outputs.push_back(process_token(r, tok, t1, reason));
    if (lp) outputs.back().new_logprobs.push_back(std::move(*lp));
    if (reason != FinishReason::None) finish(g, reason, outputs.back(), t1);
  }
  for (Group* g : beam_groups)
    if (g->beam_top.size() == g->live.size()) beam_advance(g, t1, outputs);
  sm.duration = now() - t0;
  sm.running = (int)sched_->num_running();
  sm.waiting = (int)sched_->num_waiting();
  sm.kv_blocks_used = cache_->num_used();
  sm.kv_blocks_total = cache_->num_blocks();
  sm.kv_slots_allocated = cache_->slots_allocated();
  sm.kv_slots_filled = cache_->slots_filled();
  metrics_.on_step(sm);
  return outputs;
}

std::vector<KvBlockState> EngineImpl::kv_blocks() const {
  std::vector<KvBlockState> v(cache_->num_blocks());
  const int bs = cache_->block_size();
  for (const auto& [seq, t] : cache_->tables()) {
    // Owners are request ids: a forked sequence counts as its request.
    auto it = requests_.find(seq);
    const int64_t owner = (int64_t)(it != requests_.end() ? it->second->group_id : seq);
    for (size_t i = 0; i < t.blocks.size(); ++i) {
      KvBlockState& b = v[t.blocks[i]];
      if (b.owner < 0 || owner < b.owner) b.owner = owner;
      b.refcount = cache_->allocator().refcount(t.blocks[i]);
      b.filled = std::max<int>(b.filled, (int)std::clamp<int64_t>(t.num_tokens - (int64_t)i * bs, 0, bs));
    }
  }
  return v;
}

// ---- Engine facade ----

Engine::Engine(std::unique_ptr<EngineImpl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() = default;

std::unique_ptr<Engine> Engine::create(const EngineConfig& config) {
  return std::unique_ptr<Engine>(new Engine(std::make_unique<EngineImpl>(config)));
}

uint64_t Engine::add_request(const std::string& prompt, const SamplingParams& params,
                             std::optional<uint64_t> id, std::optional<double> arrival) {
  return impl_->add(impl_->model_.tokenizer->encode(prompt, true), params, id, arrival, {});
}

uint64_t Engine::add_request(const std::vector<int32_t>& ids, const SamplingParams& params,
                             std::optional<uint64_t> id, std::optional<double> arrival) {
  return impl_->add(ids, params, id, arrival, {});
}

void Engine::abort(uint64_t id) { impl_->abort(id); }
std::vector<RequestOutput> Engine::step() { return impl_->step(); }
bool Engine::has_unfinished() const { return !impl_->groups_.empty() || !impl_->pending_.empty(); }
std::vector<int32_t> Engine::encode(const std::string& text, bool add_bos) const {
  return impl_->model_.tokenizer->encode(text, add_bos);
}
std::string Engine::decode(const std::vector<int32_t>& ids) const {
  return impl_->model_.tokenizer->decode(ids);
}
const ModelInfo& Engine::model_info() const { return impl_->model_.info; }
const EngineConfig& Engine::config() const { return impl_->cfg_; }
double Engine::now() const { return impl_->now(); }
MetricsSnapshot Engine::metrics() const {
  MetricsSnapshot s = impl_->metrics_.snapshot(impl_->now());
  // Gauges are read live, so they are right before the first step and after
  // an abort that leaves nothing to schedule.
  s.kv_blocks_used = impl_->cache_->num_used();
  s.kv_blocks_total = impl_->cache_->num_blocks();
  s.running = (int)impl_->sched_->num_running();
  s.waiting = (int)impl_->sched_->num_waiting();
  return s;
}
const std::vector<StepMetrics>& Engine::step_history() const { return impl_->metrics_.steps(); }
const std::vector<RequestMetrics>& Engine::finished_requests() const { return impl_->metrics_.finished(); }
std::vector<KvBlockState> Engine::kv_blocks() const { return impl_->kv_blocks(); }
void Engine::reset_metrics() { impl_->metrics_.reset(); }
int Engine::max_model_len() const { return impl_->max_len_; }
int64_t Engine::num_kv_blocks() const { return impl_->cache_->num_blocks(); }
double Engine::kv_bytes_per_token() const { return impl_->kv_bytes_per_token_; }

}  // namespace brisk
