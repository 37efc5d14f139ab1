#include "quant/perplexity.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <numeric>

#include "brisk/error.h"
#include "brisk/quality.h"
#include "quant/quantize.h"

namespace brisk {

std::vector<PerplexityWindow> plan_windows(int64_t n_tokens, int context, int stride) {
  if (context < 2 || stride < 1 || stride >= context)
    throw Error("internal: perplexity window plan needs 1 <= stride < context, got context " +
                std::to_string(context) + ", stride " + std::to_string(stride));
  std::vector<PerplexityWindow> out;
  int64_t prev_end = 0;
  for (int64_t begin = 0; prev_end < n_tokens; begin += stride) {
    const int64_t end = std::min<int64_t>(begin + context, n_tokens);
    // Token t is predicted by row t - 1, so a window cannot score its own first token.
    out.push_back({begin, end, std::max(prev_end, begin + 1)});
    prev_end = end;
  }
  return out;
}

SequenceScorer::SequenceScorer(const EngineConfig& cfg) : cfg_(cfg) {
  if (const std::string e = cfg.validate(); !e.empty()) throw Error(e);
  model_ = load_model_for(cfg);
  backend_ = make_backend(cfg);
}

int SequenceScorer::usable_context() const {
  const int ctx = model_.config.context_length;
  return cfg_.max_model_len > 0 ? std::min(ctx, cfg_.max_model_len) : ctx;
}

void SequenceScorer::plan(int max_len) {
  ModelLimits lim;
  lim.kv_dtype = parse_dtype_name(cfg_.kv_dtype, "EngineConfig.kv_dtype");
  lim.block_size = cfg_.block_size;
  lim.max_tokens = max_len;
  // Every position of a window may need logits, and the model sizes its
  // logits buffer by sequences.
  lim.max_seqs = max_len;
  lim.max_blocks_per_seq = (max_len + lim.block_size - 1) / lim.block_size;
  lim.num_kv_blocks = lim.max_blocks_per_seq;
  llama_.reset();  // free the old cache before planning the new one
  llama_ = std::make_unique<LlamaModel>(model_, *backend_, lim);
  max_len_ = max_len;
}

const std::vector<float>& SequenceScorer::run(const int32_t* tokens, int n, int first_row, int last_row) {
  if (!llama_ || n > max_len_ || n < 1 || first_row < 0 || last_row > n || first_row >= last_row)
    throw Error("internal: SequenceScorer::run(" + std::to_string(n) + " tokens, rows " +
                std::to_string(first_row) + ".." + std::to_string(last_row) + ") outside the plan of " +
                std::to_string(max_len_));
  const int bs = cfg_.block_size;
  const int nb = (n + bs - 1) / bs;
  ForwardBatch& b = batch_;
  b.clear();
  b.token_ids.assign(tokens, tokens + n);
  b.positions.resize(n);
  std::iota(b.positions.begin(), b.positions.end(), 0);
  // Blocks 0..nb-1 in order: slot i holds position i.
  b.slot_mapping = b.positions;
  b.query_start.push_back(n);
  b.seq_lens.push_back(n);
  b.block_tables.resize(nb);
  std::iota(b.block_tables.begin(), b.block_tables.end(), 0);
  b.max_blocks_per_seq = nb;
  b.logits_rows.resize(last_row - first_row);
  std::iota(b.logits_rows.begin(), b.logits_rows.end(), first_row);
  llama_->forward(b, logits_);
  // A NaN would otherwise pass silently through max() and comparisons into
  // "KL 0, agreement 0" instead of pointing at the broken precision path.
  const int vocab = model_.config.vocab_size;
  for (size_t i = 0; i < logits_.size(); ++i)
    if (!std::isfinite(logits_[i]))
      throw Error("the forward pass produced a non-finite logit at position " +
                  std::to_string(first_row + (int)(i / vocab)) + " (weight_dtype '" + cfg_.weight_dtype +
                  "', kv_dtype '" + cfg_.kv_dtype + "', backend " + backend_->name() + ")");
  return logits_;
}

void log_softmax(const float* logits, int n, std::vector<double>& out) {
  out.resize(n);
  double mx = -INFINITY;
  for (int i = 0; i < n; ++i) mx = std::max(mx, (double)logits[i]);
  double sum = 0;
  for (int i = 0; i < n; ++i) sum += std::exp((double)logits[i] - mx);
  const double lse = mx + std::log(sum);
  for (int i = 0; i < n; ++i) out[i] = (double)logits[i] - lse;
}

uint64_t logprob_file_hash(const std::vector<int32_t>& tokens, int context, int stride, int vocab) {
  uint64_t h = 0xcbf29ce484222325ull;
  auto mix = [&h](uint32_t v) {
    for (int i = 0; i < 4; ++i) {
      h ^= (v >> (8 * i)) & 0xff;
      h *= 0x100000001b3ull;
    }
  };
  for (int32_t t : tokens) mix((uint32_t)t);
  mix((uint32_t)context);
  mix((uint32_t)stride);
  mix((uint32_t)vocab);
  return h;
}

namespace {

constexpr char kMagic[8] = {'B', 'R', 'I', 'S', 'K', 'L', 'P', '\0'};
constexpr uint32_t kVersion = 1;
constexpr size_t kHeaderBytes = 56;
constexpr std::streamoff kNllOffset = 48;
// F16's largest finite value is 65504; -inf would turn a KL into NaN.
constexpr double kMinLogprob = -60000;

template <class T>
void put(std::string& s, T v) {
  s.append(reinterpret_cast<const char*>(&v), sizeof v);
}
template <class T>
T get(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

uint64_t record_bytes(uint32_t vocab) { return 4 + 2ull * vocab; }

// A stored (or about to be stored) F16 row as a normalised log-distribution:
// rounding moved each value a little, renormalising keeps the KL a true
// divergence between distributions (>= 0, second order in the rounding).
void renormalise(const std::vector<uint16_t>& f16, std::vector<double>& out) {
  const size_t n = f16.size();
  out.resize(n);
  double mx = -INFINITY;
  for (size_t i = 0; i < n; ++i) {
    out[i] = fp16_to_fp32(f16[i]);
    mx = std::max(mx, out[i]);
  }
  double sum = 0;
  for (size_t i = 0; i < n; ++i) sum += std::exp(out[i] - mx);
  const double lse = mx + std::log(sum);
  for (size_t i = 0; i < n; ++i) out[i] -= lse;
}

}  // namespace

LogprobWriter::LogprobWriter(const std::string& path, const LogprobFileHeader& h)
    : path_(path), f_(path, std::ios::binary | std::ios::trunc), expected_(h.n_positions) {
  if (!f_) throw Error(path + ": cannot open for writing");
  std::string s(kMagic, sizeof kMagic);
  put(s, kVersion);
  put(s, h.vocab_size);
  put(s, h.n_positions);
  put(s, h.n_tokens);
  put(s, h.context);
  put(s, h.stride);
  put(s, h.hash);
  put(s, 0.0);
  f_.write(s.data(), (std::streamsize)s.size());
  if (!f_) throw Error(path + ": write failed");
}

LogprobWriter::~LogprobWriter() {
  if (finished_) return;
  f_.close();
  std::error_code ec;
  std::filesystem::remove(path_, ec);
}

void LogprobWriter::write(int32_t top, const std::vector<uint16_t>& row) {
  const uint32_t t = (uint32_t)top;
  f_.write(reinterpret_cast<const char*>(&t), 4);
  f_.write(reinterpret_cast<const char*>(row.data()), (std::streamsize)(row.size() * 2));
  ++written_;
}

void LogprobWriter::finish(double nll_sum) {
  if (written_ != expected_)
    throw Error(path_ + ": internal: " + std::to_string(written_) + " records written, header says " +
                std::to_string(expected_));
  f_.seekp(kNllOffset);
  f_.write(reinterpret_cast<const char*>(&nll_sum), sizeof nll_sum);
  f_.close();
  if (!f_) throw Error(path_ + ": write failed (disk full?)");
  finished_ = true;
}

LogprobReader::LogprobReader(const std::string& path, const LogprobFileHeader& expect)
    : path_(path), f_(path, std::ios::binary) {
  if (!f_) throw Error(path + ": cannot open the baseline log-probability file");
  char b[kHeaderBytes];
  f_.read(b, sizeof b);
  if (!f_ || std::memcmp(b, kMagic, sizeof kMagic) != 0)
    throw Error(path + ": not a Brisk log-probability file (written by perplexity --save-logits)");
  const uint32_t version = get<uint32_t>(b + 8);
  if (version != kVersion)
    throw Error(path + ": format version " + std::to_string(version) + ", this build reads version " +
                std::to_string(kVersion));
  h_.vocab_size = get<uint32_t>(b + 12);
  h_.n_positions = get<uint64_t>(b + 16);
  h_.n_tokens = get<uint64_t>(b + 24);
  h_.context = get<uint32_t>(b + 32);
  h_.stride = get<uint32_t>(b + 36);
  h_.hash = get<uint64_t>(b + 40);
  h_.nll_sum = get<double>(b + 48);
  if (h_.vocab_size != expect.vocab_size)
    throw Error(path + ": vocab_size " + std::to_string(h_.vocab_size) + ", this model has " +
                std::to_string(expect.vocab_size) + " (a different model family)");
  if (h_.context != expect.context || h_.stride != expect.stride)
    throw Error(path + ": made with context " + std::to_string(h_.context) + ", stride " +
                std::to_string(h_.stride) + "; this run uses context " + std::to_string(expect.context) +
                ", stride " + std::to_string(expect.stride) + " (pass the same --context/--stride)");
  if (h_.n_tokens != expect.n_tokens || h_.hash != expect.hash)
    throw Error(path + ": made from a different token sequence (" + std::to_string(h_.n_tokens) +
                " tokens; this text has " + std::to_string(expect.n_tokens) +
                "): a different text or tokenizer");
  if (h_.n_positions != expect.n_positions)
    throw Error(path + ": header says " + std::to_string(h_.n_positions) + " positions, expected " +
                std::to_string(expect.n_positions) + " (corrupt file)");
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(path, ec);
  const uint64_t want = kHeaderBytes + h_.n_positions * record_bytes(h_.vocab_size);
  if (ec || size != want)
    throw Error(path + ": " + std::to_string(size) + " bytes, the header implies " + std::to_string(want) +
                " (truncated or corrupt)");
}

void LogprobReader::read(int32_t& top, std::vector<uint16_t>& row) {
  uint32_t t = 0;
  row.resize(h_.vocab_size);
  f_.read(reinterpret_cast<char*>(&t), 4);
  f_.read(reinterpret_cast<char*>(row.data()), (std::streamsize)(row.size() * 2));
  if (!f_) throw Error(path_ + ": read failed (truncated?)");
  if (t >= h_.vocab_size)
    throw Error(path_ + ": argmax " + std::to_string(t) + " outside the vocabulary (corrupt)");
  top = (int32_t)t;
}

PerplexityResult evaluate_perplexity(const EngineConfig& config, const std::string& text,
                                     const PerplexityOptions& opt) {
  EngineConfig cfg = config;
  if (opt.threads >= 0) cfg.threads = opt.threads;
  if (!opt.save_logits_path.empty() && !opt.baseline_logits_path.empty()) {
    std::error_code ec;
    if (opt.save_logits_path == opt.baseline_logits_path ||
        std::filesystem::equivalent(opt.save_logits_path, opt.baseline_logits_path, ec))
      throw Error("PerplexityOptions.save_logits_path = '" + opt.save_logits_path +
                  "': the same file as baseline_logits_path (it would be overwritten while read)");
  }
  SequenceScorer scorer(cfg);
  const int usable = scorer.usable_context();
  const int vocab = scorer.config().vocab_size;
  const std::vector<int32_t> tokens = scorer.tokenizer().encode(text, opt.add_bos);
  const int64_t n = (int64_t)tokens.size();
  if (n < 2)
    throw Error("perplexity text: " + std::to_string(n) + " token(s); at least 2 are needed to score one");
  for (int32_t t : tokens)
    if (t < 0 || t >= vocab)
      throw Error("perplexity text: token id " + std::to_string(t) +
                  " is outside the model's vocabulary [0, " + std::to_string(vocab) +
                  ") (tokenizer and model disagree)");

  PerplexityResult r;
  if (opt.context < 0 || opt.context == 1 || opt.context > usable)
    throw Error("PerplexityOptions.context = " + std::to_string(opt.context) +
                ": must be 0 (automatic) or 2.." + std::to_string(usable) + " (the model's usable context)");
  r.context = opt.context > 0 ? opt.context : std::min(512, usable);
  if (opt.stride < 0 || (opt.stride > 0 && opt.stride >= r.context))
    throw Error("PerplexityOptions.stride = " + std::to_string(opt.stride) +
                ": must be 0 (context / 2) or 1.." + std::to_string(r.context - 1) +
                " (less than the context, so windows overlap)");
  r.stride = opt.stride > 0 ? opt.stride : std::max(1, r.context / 2);
  const std::vector<PerplexityWindow> windows = plan_windows(n, r.context, r.stride);

  LogprobFileHeader hdr;
  hdr.vocab_size = (uint32_t)vocab;
  hdr.n_positions = (uint64_t)(n - 1);
  hdr.n_tokens = (uint64_t)n;
  hdr.context = (uint32_t)r.context;
  hdr.stride = (uint32_t)r.stride;
  hdr.hash = logprob_file_hash(tokens, r.context, r.stride, vocab);
  std::unique_ptr<LogprobReader> baseline;
  if (!opt.baseline_logits_path.empty())
    baseline = std::make_unique<LogprobReader>(opt.baseline_logits_path, hdr);
  std::unique_ptr<LogprobWriter> writer;
  if (!opt.save_logits_path.empty()) writer = std::make_unique<LogprobWriter>(opt.save_logits_path, hdr);

  scorer.plan((int)std::min<int64_t>(r.context, n));
  const auto t0 = std::chrono::steady_clock::now();
  double nll_sum = 0;
  std::vector<double> lp, lq, lb;
  std::vector<uint16_t> q16(vocab), b16;
  std::vector<double> kls;
  int64_t agree = 0;
  double dp2 = 0;
  for (const PerplexityWindow& w : windows) {
    const int len = (int)(w.end - w.begin);
    const int first_row = (int)(w.first_scored - 1 - w.begin), last_row = len - 1;
    const std::vector<float>& logits = scorer.run(tokens.data() + w.begin, len, first_row, last_row);
    for (int row = first_row; row < last_row; ++row) {
      const float* l = logits.data() + (size_t)(row - first_row) * vocab;
      const int32_t target = tokens[w.begin + row + 1];
      log_softmax(l, vocab, lp);
      nll_sum -= lp[target];
      if (!writer && !baseline) continue;
      const int32_t top = argmax(l, vocab);
      for (int i = 0; i < vocab; ++i) q16[i] = fp32_to_fp16((float)std::max(lp[i], kMinLogprob));
      if (writer) writer->write(top, q16);
      if (!baseline) continue;
      int32_t btop = 0;
      baseline->read(btop, b16);
      renormalise(q16, lq);
      renormalise(b16, lb);
      double kl = 0;
      for (int i = 0; i < vocab; ++i) {
        const double pb = std::exp(lb[i]);
        if (pb > 0) kl += pb * (lb[i] - lq[i]);
      }
      kls.push_back(std::max(0.0, kl));  // a true divergence; below 0 only by summation rounding
      agree += top == btop;
      const double dp = std::exp(lq[target]) - std::exp(lb[target]);
      dp2 += dp * dp;
    }
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (writer) writer->finish(nll_sum);

  r.tokens = n;
  r.tokens_scored = n - 1;
  r.windows = (int)windows.size();
  for (const PerplexityWindow& w : windows) r.tokens_evaluated += w.end - w.begin;
  r.tokens_per_s = r.seconds > 0 ? r.tokens_evaluated / r.seconds : 0;
  r.mean_nll = nll_sum / (double)r.tokens_scored;
  r.perplexity = std::exp(r.mean_nll);
  if (baseline) {
    r.has_baseline = true;
    const double m = (double)kls.size();
    r.kl_mean = std::accumulate(kls.begin(), kls.end(), 0.0) / m;
    std::sort(kls.begin(), kls.end());
    r.kl_max = kls.back();
    r.kl_p99 = kls[(size_t)std::ceil(0.99 * m) - 1];  // nearest rank
    r.top1_agreement = agree / m;
    r.rms_dp = std::sqrt(dp2 / m);
    r.baseline_perplexity = std::exp(baseline->header().nll_sum / m);
  }
  return r;
}

}  // namespace brisk
