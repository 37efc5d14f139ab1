// Quality measurement (brisk/quality.h): the strided window plan scores every
// token once, perplexity matches NLL computed by hand from an independent
// token-by-token forward, a run compared with its own saved log-probabilities
// has KL 0 and full agreement, mismatched baselines are rejected naming the
// file, and greedy agreement of a configuration with itself is 1.
#include <QTemporaryDir>
#include <QtTest>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <sstream>

#include "brisk/error.h"
#include "brisk/quality.h"
#include "kernels/cpu/isa.h"
#include "model/llama_model.h"
#include "model/model_weights.h"
#include "quant/perplexity.h"

using namespace brisk;

namespace {

const std::string kStories = std::string(BRISK_SHARED_MODELS) + "/stories260K/stories260K.gguf";
const std::string kEvalText = std::string(BRISK_SOURCE_DIR) + "/resources/eval/stories.txt";
const std::string kShort = "Once upon a time, there was a little girl named Lily. She loved to play outside.";

std::string read_text(const std::string& path) {
  std::ifstream f(path);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

EngineConfig stories_config() {
  EngineConfig c;
  c.model = kStories;
  c.threads = 2;
  return c;
}

// The message of the brisk::Error `fn` throws, or "" when it throws none.
template <class F>
std::string error_of(F&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// NLL of tokens [first, end) of one window, computed without the code under
// test: the window's tokens go through the model one at a time (decode
// steps reading the paged KV cache), and each next token's log-probability
// comes from a log-sum-exp written out here.
double window_nll_by_hand(const LoadedModel& m, Backend& be, const std::vector<int32_t>& tokens,
                          int64_t begin, int64_t end, int64_t first) {
  ModelLimits lim;
  lim.max_tokens = 1;
  lim.max_seqs = 1;
  lim.block_size = 16;
  lim.max_blocks_per_seq = (int)((end - begin + 15) / 16);
  lim.num_kv_blocks = lim.max_blocks_per_seq;
  LlamaModel model(m, be, lim);
  const int vocab = m.config.vocab_size;
  double nll = 0;
  std::vector<float> logits;
  for (int64_t p = 0; p < end - begin - 1; ++p) {
    ForwardBatch b;
    b.clear();
    b.token_ids = {tokens[begin + p]};
    b.positions = {(int32_t)p};
    b.slot_mapping = {(int32_t)p};
    b.query_start.push_back(1);
    b.seq_lens = {(int32_t)p + 1};
    b.max_blocks_per_seq = (int)(p / 16 + 1);
    b.block_tables.resize(b.max_blocks_per_seq);
    std::iota(b.block_tables.begin(), b.block_tables.end(), 0);
    b.logits_rows = {0};
    model.forward(b, logits);
    const int64_t target = begin + p + 1;
    if (target < first) continue;
    double mx = logits[0];
    for (int i = 1; i < vocab; ++i) mx = std::max(mx, (double)logits[i]);
    double sum = 0;
    for (int i = 0; i < vocab; ++i) sum += std::exp(logits[i] - mx);
    nll += -(logits[tokens[target]] - mx - std::log(sum));
  }
  return nll;
}

// The first 3000 characters of the eval text scored (256-token windows) by
// each of others against baseline's saved log-probabilities.
std::vector<PerplexityResult> against_baseline(const EngineConfig& baseline,
                                               const std::vector<EngineConfig>& others) {
  QTemporaryDir dir;
  const std::string file = dir.filePath(QStringLiteral("baseline.lp")).toStdString();
  const std::string text = read_text(kEvalText).substr(0, 3000);
  PerplexityOptions o;
  o.context = 256;
  o.save_logits_path = file;
  evaluate_perplexity(baseline, text, o);
  o.save_logits_path.clear();
  o.baseline_logits_path = file;
  std::vector<PerplexityResult> out;
  for (const EngineConfig& c : others) out.push_back(evaluate_perplexity(c, text, o));
  return out;
}

}  // namespace

class TestPerplexity : public QObject {
  Q_OBJECT

  static bool haveStories() { return std::filesystem::exists(kStories); }

 private slots:
  void windowPlanScoresEveryTokenOnce() {
    for (int64_t n : {2, 3, 7, 16, 100, 511, 512, 513, 1000, 3744})
      for (int context : {2, 3, 16, 100, 512})
        for (int stride : {1, context / 2, context - 1}) {
          if (stride < 1) continue;
          const auto w = plan_windows(n, context, stride);
          const QString what = QStringLiteral("n %1 context %2 stride %3").arg(n).arg(context).arg(stride);
          QVERIFY2(!w.empty(), qPrintable(what));
          int64_t next = 1;  // every token but the first, in order, once
          for (size_t i = 0; i < w.size(); ++i) {
            QVERIFY2(w[i].begin == (int64_t)i * stride, qPrintable(what));
            QVERIFY2(w[i].end - w[i].begin <= context && w[i].end <= n, qPrintable(what));
            QVERIFY2(w[i].first_scored == next && w[i].first_scored > w[i].begin, qPrintable(what));
            QVERIFY2(w[i].end > w[i].first_scored, qPrintable(what));
            next = w[i].end;
          }
          QVERIFY2(next == n, qPrintable(what));
        }
    // Hugging Face's example shape: windows every stride, later ones score only their tail.
    const auto w = plan_windows(10, 4, 2);
    QCOMPARE((int)w.size(), 4);
    QCOMPARE(w[1].begin, int64_t(2));
    QCOMPARE(w[1].end, int64_t(6));
    QCOMPARE(w[1].first_scored, int64_t(4));
    QCOMPARE(w[3].end, int64_t(10));
  }

  void perplexityOfEvalTextIsLow() {
    if (!haveStories()) QSKIP(qPrintable(QString::fromStdString("stories260K not found at " + kStories)));
    const std::string text = read_text(kEvalText);
    QVERIFY2(text.size() > 4000, kEvalText.c_str());
    const PerplexityResult r = evaluate_perplexity(stories_config(), text);
    QVERIFY(std::isfinite(r.perplexity));
    // A trained 512-token model on in-domain prose: a few nats per token at
    // most (uniform guessing would be 512). Measured: about 4.3.
    QVERIFY2(r.perplexity > 1.5 && r.perplexity < 20, qPrintable(QString::number(r.perplexity)));
    QVERIFY(std::abs(std::log(r.perplexity) - r.mean_nll) < 1e-9);
    QVERIFY(r.tokens > 2000);
    QCOMPARE(r.tokens_scored, r.tokens - 1);
    QCOMPARE(r.context, 512);
    QCOMPARE(r.stride, 256);
    QCOMPARE(r.windows, (int)plan_windows(r.tokens, 512, 256).size());
    QVERIFY(r.tokens_evaluated > r.tokens);  // windows overlap
    QVERIFY(!r.has_baseline);
  }

  void matchesHandComputedNll() {
    if (!haveStories()) QSKIP(qPrintable(QString::fromStdString("stories260K not found at " + kStories)));
    const LoadedModel m = load_model(kStories);
    auto be = make_cpu_backend(2);
    const std::vector<int32_t> tokens = m.tokenizer->encode(kShort, true);
    const int64_t n = (int64_t)tokens.size();
    QVERIFY(n > 16);
    // One window over the whole text, then overlapping windows: the windows
    // are laid out here as Hugging Face's loop does, not with plan_windows.
    for (const auto& [context, stride] : std::vector<std::pair<int, int>>{{64, 32}, {8, 4}, {8, 7}, {5, 1}}) {
      double nll = 0;
      int64_t scored = 0, prev_end = 0;
      for (int64_t begin = 0; prev_end < n; begin += stride) {
        const int64_t end = std::min<int64_t>(begin + context, n);
        const int64_t first = std::max(prev_end, begin + 1);
        nll += window_nll_by_hand(m, *be, tokens, begin, end, first);
        scored += end - first;
        prev_end = end;
      }
      QCOMPARE(scored, n - 1);
      PerplexityOptions o;
      o.context = context;
      o.stride = stride;
      const PerplexityResult r = evaluate_perplexity(stories_config(), kShort, o);
      QCOMPARE(r.tokens, n);
      QCOMPARE(r.tokens_scored, n - 1);
      // F32 throughout; prefill (this code) vs decode steps (by hand) differ
      // only in summation order.
      const double want = nll / (double)(n - 1);
      QVERIFY2(std::abs(r.mean_nll - want) < 1e-4 * std::max(1.0, want),
               qPrintable(QStringLiteral("context %1 stride %2: %3 vs by hand %4")
                              .arg(context)
                              .arg(stride)
                              .arg(r.mean_nll, 0, 'g', 10)
                              .arg(want, 0, 'g', 10)));
    }
  }

  void selfBaselineHasZeroKl() {
    if (!haveStories()) QSKIP(qPrintable(QString::fromStdString("stories260K not found at " + kStories)));
    QTemporaryDir dir;
    const std::string file = dir.filePath(QStringLiteral("base.lp")).toStdString();
    const std::string text = read_text(kEvalText).substr(0, 3000);
    PerplexityOptions o;
    o.context = 256;
    o.save_logits_path = file;
    const PerplexityResult saved = evaluate_perplexity(stories_config(), text, o);
    // Header + one record (argmax + F16 row) per scored position.
    QCOMPARE((int64_t)std::filesystem::file_size(file), int64_t(56 + saved.tokens_scored * (4 + 2 * 512)));
    o.save_logits_path.clear();
    o.baseline_logits_path = file;
    const PerplexityResult r = evaluate_perplexity(stories_config(), text, o);
    QVERIFY(r.has_baseline);
    QVERIFY2(r.kl_mean <= 1e-6 && r.kl_p99 <= 1e-6 && r.kl_max <= 1e-6,
             qPrintable(QString::number(r.kl_max)));
    QCOMPARE(r.top1_agreement, 1.0);
    QVERIFY(r.rms_dp <= 1e-6);
    QVERIFY(std::abs(r.baseline_perplexity - saved.perplexity) < 1e-9 * saved.perplexity);
    QCOMPARE(r.perplexity, saved.perplexity);

    // A lower precision is measurably different but close: BF16 weights.
    EngineConfig bf16 = stories_config();
    bf16.weight_dtype = "bf16";
    const PerplexityResult q = evaluate_perplexity(bf16, text, o);
    QVERIFY2(q.kl_mean > 0 && q.kl_mean < 0.05, qPrintable(QString::number(q.kl_mean)));
    QVERIFY(q.kl_max >= q.kl_p99 && q.kl_p99 >= 0);
    QVERIFY(q.top1_agreement > 0.9 && q.top1_agreement <= 1.0);
    // The KV cache precision reaches the scorer's forward pass too.
    EngineConfig kv8 = stories_config();
    kv8.kv_dtype = "int8";
    const PerplexityResult k = evaluate_perplexity(kv8, text, o);
    QVERIFY2(k.kl_mean > 0 && k.kl_mean < 0.05, qPrintable(QString::number(k.kl_mean)));
  }

  // INT8 weights: the default W8A24 path (activations as 24-bit integers,
  // VNNI) against the F32-activation FMA path as the baseline is nearly
  // identical, far closer than W8A8 is; on a CPU with AVX-512 VNNI it is a
  // different computation (non-zero KL), elsewhere the same one.
  void int8With24BitActivationsMatchesF32Activations() {
    if (!haveStories()) QSKIP(qPrintable(QString::fromStdString("stories260K not found at " + kStories)));
    EngineConfig fma = stories_config();
    fma.weight_dtype = "int8";
    fma.int8_fma = true;
    EngineConfig a24 = fma;
    a24.int8_fma = false;
    EngineConfig a8 = fma;
    a8.int8_activations = true;
    const std::vector<PerplexityResult> rs = against_baseline(fma, {a24, a8});
    const PerplexityResult &r = rs[0], &r8 = rs[1];
    qInfo(
        "vs INT8 with F32 activations: W8A24 KL mean %.3g p99 %.3g top-1 %.5f; W8A8 KL mean %.3g top-1 %.5f",
        r.kl_mean, r.kl_p99, r.top1_agreement, r8.kl_mean, r8.top1_agreement);
    QVERIFY2(r.kl_mean < 1e-6 && r.kl_max < 1e-4, qPrintable(QString::number(r.kl_max)));
    QVERIFY(r.top1_agreement >= 0.999);
    QVERIFY2(r8.kl_mean > 10 * r.kl_mean, qPrintable(QString("%1 vs %2").arg(r8.kl_mean).arg(r.kl_mean)));
    if (cpu::active_isa() == cpu::Isa::Avx512) QVERIFY2(r.kl_max > 0, "W8A24 did not run");
  }

  // FP8 weights: the default BF16 dot-product path (activations as two BF16)
  // against the F32-activation FMA path as the baseline is nearly identical;
  // on a CPU with AVX-512 BF16 + VBMI it is a different computation (non-zero
  // KL), elsewhere the same one.
  void fp8WithBf16DotProductsMatchesF32Activations() {
    if (!haveStories()) QSKIP(qPrintable(QString::fromStdString("stories260K not found at " + kStories)));
    EngineConfig fma = stories_config();
    fma.weight_dtype = "fp8-e4m3";
    fma.fp8_fma = true;
    EngineConfig dp = fma;
    dp.fp8_fma = false;
    const PerplexityResult r = against_baseline(fma, {dp})[0];
    qInfo("vs FP8 E4M3 with F32 activations: BF16 dot products KL mean %.3g p99 %.3g max %.3g top-1 %.5f",
          r.kl_mean, r.kl_p99, r.kl_max, r.top1_agreement);
    QVERIFY2(r.kl_mean < 1e-6 && r.kl_max < 1e-4, qPrintable(QString::number(r.kl_max)));
    QVERIFY(r.top1_agreement >= 0.999);
    if (cpu::active_isa() == cpu::Isa::Avx512 && __builtin_cpu_supports("avx512vbmi"))
      QVERIFY2(r.kl_max > 0, "the BF16 dot-product path did not run");
  }

  void mismatchedBaselineIsRejected() {
    if (!haveStories()) QSKIP(qPrintable(QString::fromStdString("stories260K not found at " + kStories)));
    QTemporaryDir dir;
    const std::string file = dir.filePath(QStringLiteral("short.lp")).toStdString();
    PerplexityOptions o;
    o.save_logits_path = file;
    evaluate_perplexity(stories_config(), kShort, o);
    o.save_logits_path.clear();
    o.baseline_logits_path = file;
    // Different text.
    std::string e = error_of([&] { evaluate_perplexity(stories_config(), kShort + " The end.", o); });
    QVERIFY2(e.find(file) != std::string::npos && e.find("different token sequence") != std::string::npos,
             e.c_str());
    // Same text, different window settings.
    o.context = 8;
    e = error_of([&] { evaluate_perplexity(stories_config(), kShort, o); });
    QVERIFY2(e.find(file) != std::string::npos && e.find("context") != std::string::npos, e.c_str());
    o.context = 0;
    // Not a log-probability file, a truncated one, a missing one.
    const std::string junk = dir.filePath(QStringLiteral("junk.lp")).toStdString();
    std::ofstream(junk) << "definitely not log-probabilities, but long enough to hold a header";
    o.baseline_logits_path = junk;
    e = error_of([&] { evaluate_perplexity(stories_config(), kShort, o); });
    QVERIFY2(e.find(junk) != std::string::npos, e.c_str());
    std::filesystem::resize_file(file, std::filesystem::file_size(file) - 100);
    o.baseline_logits_path = file;
    e = error_of([&] { evaluate_perplexity(stories_config(), kShort, o); });
    QVERIFY2(e.find(file) != std::string::npos && e.find("truncated") != std::string::npos, e.c_str());
    o.baseline_logits_path = file + ".missing";
    e = error_of([&] { evaluate_perplexity(stories_config(), kShort, o); });
    QVERIFY2(e.find(file + ".missing") != std::string::npos, e.c_str());
    // Saving over the baseline being read would destroy it.
    o.baseline_logits_path = file;
    o.save_logits_path = file;
    e = error_of([&] { evaluate_perplexity(stories_config(), kShort, o); });
    QVERIFY2(e.find("save_logits_path") != std::string::npos, e.c_str());
  }

  void badOptionsNameTheField() {
    EngineConfig demo;  // the built-in model: no files needed
    demo.threads = 2;
    PerplexityOptions o;
    o.context = 1;
    std::string e = error_of([&] { evaluate_perplexity(demo, kShort, o); });
    QVERIFY2(e.find("PerplexityOptions.context") != std::string::npos, e.c_str());
    o.context = 16;
    o.stride = 16;
    e = error_of([&] { evaluate_perplexity(demo, kShort, o); });
    QVERIFY2(e.find("PerplexityOptions.stride") != std::string::npos, e.c_str());
    o = {};
    o.context = 1 << 20;
    e = error_of([&] { evaluate_perplexity(demo, kShort, o); });
    QVERIFY2(e.find("PerplexityOptions.context") != std::string::npos, e.c_str());
    o = {};
    o.add_bos = false;
    e = error_of([&] { evaluate_perplexity(demo, "", o); });
    QVERIFY2(e.find("at least 2") != std::string::npos, e.c_str());
  }

  void runsOnDemoModel() {
    EngineConfig demo;
    demo.threads = 2;
    PerplexityOptions o;
    o.context = 32;
    const PerplexityResult r = evaluate_perplexity(demo, kShort + " " + kShort, o);
    QVERIFY(std::isfinite(r.perplexity) && r.perplexity > 1);
    QCOMPARE(r.tokens_scored, r.tokens - 1);
    QCOMPARE(r.stride, 16);
    QVERIFY(r.windows > 1);
  }

  void greedyAgreementWithItselfIsOne() {
    if (!haveStories()) QSKIP(qPrintable(QString::fromStdString("stories260K not found at " + kStories)));
    const std::vector<std::string> prompts = {"Once upon a time", "The little dog was very happy because",
                                              "Tom and Sue went to the park."};
    const AgreementResult r = greedy_agreement(stories_config(), stories_config(), prompts, 40);
    QCOMPARE(r.prompts, 3);
    QCOMPARE(r.positions, int64_t(120));
    QCOMPARE(r.agreement, 1.0);
    QCOMPARE(r.match_fraction, 1.0);
    QCOMPARE(r.mean_identical_prefix, 40.0);
    QCOMPARE((int)r.per_prompt.size(), 3);
    for (const PromptAgreement& p : r.per_prompt) {
      QCOMPARE(p.agreed, 40);
      QCOMPARE(p.identical_prefix, 40);
      QVERIFY(p.prompt_tokens > 1);
    }
    // F16 weights round each weight by at most 2^-11 relative: the greedy
    // path barely moves.
    EngineConfig f16 = stories_config();
    f16.weight_dtype = "f16";
    const AgreementResult h = greedy_agreement(stories_config(), f16, prompts, 40);
    QVERIFY2(h.agreement >= 0.9, qPrintable(QString::number(h.agreement)));
    QVERIFY(h.match_fraction >= 0 && h.match_fraction <= 1);
    QVERIFY(h.mean_identical_prefix >= 0 && h.mean_identical_prefix <= 40);
  }

  void agreementErrorsNameTheCause() {
    EngineConfig demo;
    demo.threads = 2;
    QVERIFY(error_of([&] { greedy_agreement(demo, demo, {}, 8); }).find("no prompts") != std::string::npos);
    demo.max_model_len = 16;
    const std::string e = error_of([&] { greedy_agreement(demo, demo, {"a", "b c d e f g h i j k"}, 12); });
    QVERIFY2(e.find("prompt 1") != std::string::npos && e.find("context") != std::string::npos, e.c_str());
  }
};

QTEST_GUILESS_MAIN(TestPerplexity)
#include "test_perplexity.moc"
