#include "brisk/engine.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <new>
#include <unordered_map>

#include "backend/backend.h"
#include "cache/kv_cache.h"
#include "metrics/metrics_recorder.h"
#include "model/llama_model.h"
#include "model/model_weights.h"
#include "runner/model_runner.h"
#include "quant/quantize.h"
#include "sample/sampler.h"
#include "sched/scheduler.h"

namespace brisk {

class EngineImpl {
 public:
  explicit EngineImpl(const EngineConfig& cfg);

  uint64_t add(std::vector<int32_t> ids, const SamplingParams& p, std::optional<uint64_t> id,
               std::optional<double> arrival, std::string reject);
  void abort(uint64_t id);
  std::vector<RequestOutput> step();
  double now() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }
  std::vector<KvBlockState> kv_blocks() const;

  EngineConfig cfg_;
  LoadedModel model_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<KvCache> cache_;
  std::unique_ptr<LlamaModel> llama_;
  std::unique_ptr<Scheduler> sched_;
  MetricsRecorder metrics_;
  std::unordered_map<uint64_t, std::unique_ptr<Request>> requests_;
  std::vector<RequestOutput> pending_;  // outputs produced outside step() (rejections, aborts)
  uint64_t next_id_ = 1;
  uint64_t steps_ = 0;
  int max_len_ = 0;
  double kv_bytes_per_token_ = 0;
  size_t max_stop_len_ = 0;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::unique_ptr<ModelRunner> runner_;
  std::vector<float> raw_row_;  // a copy of one logits row, for log-probabilities

 private:
  void finish(Request* r, FinishReason reason, RequestOutput& out, double t);
  RequestOutput process_token(Request* r, int32_t tok, double t);
};

EngineImpl::EngineImpl(const EngineConfig& cfg) : cfg_(cfg) {
  if (std::string e = cfg.validate(); !e.empty()) throw Error(e);
  model_ = load_model_for(cfg);
  const ModelConfig& mc = model_.config;
  max_len_ = mc.context_length;
  if (cfg.max_model_len > 0) {
    if (cfg.max_model_len > mc.context_length)
      throw Error("EngineConfig.max_model_len = " + std::to_string(cfg.max_model_len) +
                  ": exceeds the model's context length " + std::to_string(mc.context_length));
    max_len_ = cfg.max_model_len;
  }
  const DType kv_dtype = parse_dtype_name(cfg.kv_dtype, "EngineConfig.kv_dtype");
  const int64_t per_block = LlamaModel::kv_bytes_per_block(mc, cfg.block_size, kv_dtype);
  kv_bytes_per_token_ = (double)per_block / cfg.block_size;
  int64_t blocks = cfg.num_kv_blocks;
  if (blocks == 0 && cfg.kv_cache_bytes > 0) {
    blocks = std::min<int64_t>(cfg.kv_cache_bytes / per_block, INT32_MAX / cfg.block_size);
    if (blocks < 1)
      throw Error("EngineConfig.kv_cache_bytes = " + std::to_string(cfg.kv_cache_bytes) +
                  ": too small for one KV block of this model (" + std::to_string(per_block) + " bytes)");
  }
  if (blocks == 0) {
    const int64_t per_seq = (max_len_ + cfg.block_size - 1) / cfg.block_size;
    blocks = std::min<int64_t>(per_seq * cfg.max_num_seqs, std::max<int64_t>(per_seq, (int64_t(1) << 30) / per_block));
  }
  // One sequence must always fit alone (so preemption can never deadlock):
  // the usable context shrinks to what the cache (and, without chunked
  // prefill, one step's token budget) can hold.
  max_len_ = (int)std::min<int64_t>(max_len_, blocks * cfg.block_size);
  if (!cfg.enable_chunked_prefill || cfg.policy == SchedulerPolicy::Static)
    max_len_ = std::min(max_len_, cfg.max_num_batched_tokens);
  if (blocks * cfg.block_size < 2)
    throw Error(std::string("EngineConfig.") + (cfg.num_kv_blocks > 0 ? "num_kv_blocks" : "kv_cache_bytes") +
                ": the KV cache (" + std::to_string(blocks) + " blocks of " + std::to_string(cfg.block_size) +
                " tokens) is too small for one sequence");
  if (max_len_ < 2) {
    if (cfg.max_num_batched_tokens < 2)
      throw Error("EngineConfig.max_num_batched_tokens = " + std::to_string(cfg.max_num_batched_tokens) +
                  ": without chunked prefill a whole sequence must fit in one step's token budget");
    throw Error("EngineConfig.max_model_len / the model's context_length: a usable context of " +
                std::to_string(max_len_) + " token leaves no room to generate");
  }
  backend_ = make_cpu_backend(cfg.threads, cfg.int8_activations);
  cache_ = std::make_unique<KvCache>(blocks, cfg.block_size);
  ModelLimits lim;
  lim.max_tokens = cfg.max_num_batched_tokens;
  lim.max_seqs = cfg.max_num_seqs;
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
  if (requests_.count(rid)) throw Error("request id " + std::to_string(rid) + " is already in use");
  auto r = std::make_unique<Request>();
  r->id = rid;
  r->prompt_ids = std::move(ids);
  r->params = p;
  r->arrival = arrival ? *arrival : now();
  r->max_len = max_len_;
  const int n = (int)r->prompt_ids.size();
  if (reject.empty()) reject = p.validate();
  if (reject.empty() && n == 0) reject = "empty prompt";
  if (reject.empty() && n >= max_len_)
    reject = "prompt of " + std::to_string(n) + " tokens does not fit the context: at most " +
             std::to_string(max_len_ - 1) + " tokens (model context and KV cache size)";
  const int vocab = std::min(model_.config.vocab_size, model_.info.tokenizer_vocab_size);
  for (int32_t t : r->prompt_ids)
    if (reject.empty() && (t < 0 || t >= vocab))
      reject = "prompt token id " + std::to_string(t) + " is outside the vocabulary [0, " + std::to_string(vocab) + ")";
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
  // Unseeded requests still get a reproducible stream: engine seed + id.
  r->rng.seed(p.seed ? *p.seed : cfg_.seed * 0x9e3779b97f4a7c15ull + rid);
  r->detok = std::make_unique<StreamingDetokenizer>(*model_.tokenizer, r->prompt_ids);
  for (const auto& s : p.stop) max_stop_len_ = std::max(max_stop_len_, s.size());
  sched_->add(r.get());
  requests_[rid] = std::move(r);
  return rid;
}

void EngineImpl::abort(uint64_t id) {
  auto it = requests_.find(id);
  if (it == requests_.end()) return;
  Request* r = it->second.get();
  RequestOutput out;
  out.request_id = id;
  out.token_ids = r->output_ids;
  out.text = r->text;
  out.prompt_tokens = (int)r->prompt_ids.size();
  finish(r, FinishReason::Abort, out, now());
  pending_.push_back(std::move(out));
}

void EngineImpl::finish(Request* r, FinishReason reason, RequestOutput& out, double t) {
  out.finished = true;
  out.finish_reason = reason;
  sched_->remove(r);
  out.timings = metrics_.on_finish(r->id, t, reason, (int)r->output_ids.size());
  requests_.erase(r->id);  // r is dangling from here on
}

RequestOutput EngineImpl::process_token(Request* r, int32_t tok, double t) {
  RequestOutput out;
  out.request_id = r->id;
  out.prompt_tokens = (int)r->prompt_ids.size();
  r->output_ids.push_back(tok);
  metrics_.on_token(r->id, t);
  const SamplingParams& p = r->params;
  FinishReason reason = FinishReason::None;
  const bool eos = tok == model_.config.eos_id && !p.ignore_eos;
  if (eos) {
    reason = FinishReason::Eos;
  } else if (std::find(p.stop_token_ids.begin(), p.stop_token_ids.end(), tok) != p.stop_token_ids.end()) {
    reason = FinishReason::Stop;
  } else {
    r->text += r->detok->push(tok);
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
    while (emit_to > 0 && emit_to < r->text.size() && ((unsigned char)r->text[emit_to] & 0xC0) == 0x80) --emit_to;
  }
  emit_to = std::max(emit_to, std::min(r->text_emitted, r->text.size()));
  out.new_token_ids = {tok};
  out.new_text = r->text.substr(std::min(r->text_emitted, r->text.size()), emit_to - std::min(r->text_emitted, r->text.size()));
  r->text_emitted = emit_to;
  out.token_ids = r->output_ids;
  out.text = r->text.substr(0, emit_to);
  if (reason != FinishReason::None) finish(r, reason, out, t);
  return out;
}

std::vector<RequestOutput> EngineImpl::step() {
  std::vector<RequestOutput> outputs = std::exchange(pending_, {});
  const double t0 = now();
  SchedulerOutput so = sched_->schedule();
  for (Request* v : so.preempted) metrics_.on_preempt(v->id);
  if (so.empty()) return outputs;

  for (const ScheduledSeq& s : so.seqs) metrics_.on_scheduled(s.req->id, t0);
  std::vector<float>& logits = runner_->execute(so);
  const double t1 = now();

  StepMetrics sm;
  sm.step = steps_++;
  sm.start = t0;
  sm.preempted = (int)so.preempted.size();
  sm.num_seqs = (int)so.seqs.size();
  sm.prefill_tokens = so.prefill_tokens;
  sm.decode_tokens = so.decode_tokens;
  sm.padding_tokens = so.padding_tokens;
  sm.prefix_query_tokens = so.prefix_query_tokens;
  sm.prefix_hit_tokens = so.prefix_hit_tokens;

  const int V = model_.config.vocab_size;
  int row = 0;
  for (const ScheduledSeq& s : so.seqs) {
    Request* r = s.req;
    r->num_computed += s.num_tokens;
    if (cfg_.enable_prefix_caching) cache_->commit_full_blocks(r->id, r->prompt_ids, r->output_ids, r->num_computed);
    if (!s.samples) continue;
    // Ids past the tokenizer's vocabulary (padded embeddings) are never sampled.
    const int vocab = std::min(V, model_.info.tokenizer_vocab_size);
    float* row_logits = logits.data() + (size_t)row++ * V;
    // The sampler edits the row in place; log-probabilities want it raw.
    if (r->params.logprobs >= 0) raw_row_.assign(row_logits, row_logits + vocab);
    const int32_t tok = sample_token(row_logits, vocab, r->params, r->rng, r->prompt_ids, r->output_ids);
    std::optional<TokenLogprob> lp;
    if (r->params.logprobs >= 0) lp = token_logprobs(raw_row_.data(), vocab, tok, r->params.logprobs);
    outputs.push_back(process_token(r, tok, t1));
    if (lp) outputs.back().new_logprobs.push_back(std::move(*lp));
  }
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
  for (const auto& [seq, t] : cache_->tables())
    for (size_t i = 0; i < t.blocks.size(); ++i) {
      KvBlockState& b = v[t.blocks[i]];
      if (b.owner < 0 || (int64_t)seq < b.owner) b.owner = (int64_t)seq;
      b.refcount = cache_->allocator().refcount(t.blocks[i]);
      b.filled = std::max<int>(b.filled, (int)std::clamp<int64_t>(t.num_tokens - (int64_t)i * bs, 0, bs));
    }
  return v;
}

// ---- Engine facade ----

Engine::Engine(std::unique_ptr<EngineImpl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() = default;

std::unique_ptr<Engine> Engine::create(const EngineConfig& config) {
  return std::unique_ptr<Engine>(new Engine(std::make_unique<EngineImpl>(config)));
}

uint64_t Engine::add_request(const std::string& prompt, const SamplingParams& params, std::optional<uint64_t> id,
                             std::optional<double> arrival) {
  return impl_->add(impl_->model_.tokenizer->encode(prompt, true), params, id, arrival, {});
}

uint64_t Engine::add_request(const std::vector<int32_t>& ids, const SamplingParams& params,
                             std::optional<uint64_t> id, std::optional<double> arrival) {
  return impl_->add(ids, params, id, arrival, {});
}

void Engine::abort(uint64_t id) { impl_->abort(id); }
std::vector<RequestOutput> Engine::step() { return impl_->step(); }
bool Engine::has_unfinished() const { return !impl_->requests_.empty() || !impl_->pending_.empty(); }
std::vector<int32_t> Engine::encode(const std::string& text, bool add_bos) const {
  return impl_->model_.tokenizer->encode(text, add_bos);
}
std::string Engine::decode(const std::vector<int32_t>& ids) const { return impl_->model_.tokenizer->decode(ids); }
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
