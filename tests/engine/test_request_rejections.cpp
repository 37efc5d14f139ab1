// A request the engine cannot serve finishes at once with an error that
// names what refused it (the setting that capped the context, the value at
// fault), and the requests beside it still run.
#include <QtTest>

#include "brisk/engine.h"

namespace {

struct Outcome {
  std::string error;
  brisk::FinishReason reason = brisk::FinishReason::None;
  int tokens = 0;
};

// Runs `bad` beside a good request; returns the bad one's outcome and checks the good one finished.
Outcome run_beside_good(brisk::Engine& e, const std::string& bad_prompt, const brisk::SamplingParams& bad) {
  brisk::SamplingParams good;
  good.max_tokens = 4;
  good.ignore_eos = true;
  e.add_request("a", good);
  const uint64_t bid = e.add_request(bad_prompt, bad);
  Outcome o, g;
  while (e.has_unfinished())
    for (const auto& out : e.step()) {
      if (!out.finished) continue;
      Outcome& t = out.request_id == bid ? o : g;
      t.error = out.error;
      t.reason = out.finish_reason;
      t.tokens = (int)out.token_ids.size();
    }
  if (g.reason != brisk::FinishReason::Length || g.tokens != 4)
    o.error += " [the good request beside it did not finish: " + g.error + "]";
  return o;
}

std::string long_prompt(int words) {
  std::string s;
  for (int i = 0; i < words; ++i) s += "hello world ";
  return s;
}

}  // namespace

class TestRequestRejections : public QObject {
  Q_OBJECT

 private slots:
  // The message names the limit that set the usable context, not a generic one.
  void promptPastTheContextNamesTheLimit_data() {
    QTest::addColumn<QString>("limit");
    QTest::addColumn<QString>("needle");
    QTest::newRow("max_model_len") << "max_model_len"
                                   << "EngineConfig.max_model_len = 16";
    QTest::newRow("KV cache") << "kv"
                              << "the KV cache: 2 blocks of 16 tokens";
    QTest::newRow("one step without chunked prefill") << "step"
                                                      << "EngineConfig.max_num_batched_tokens = 24";
  }
  void promptPastTheContextNamesTheLimit() {
    QFETCH(QString, limit);
    QFETCH(QString, needle);
    brisk::EngineConfig cfg;  // the demo model
    cfg.threads = 1;
    if (limit == "max_model_len") cfg.max_model_len = 16;
    if (limit == "kv") cfg.num_kv_blocks = 2, cfg.max_num_seqs = 2;
    if (limit == "step")
      cfg.enable_chunked_prefill = false, cfg.max_num_batched_tokens = 24, cfg.max_num_seqs = 4;
    auto e = brisk::Engine::create(cfg);
    brisk::SamplingParams p;
    p.max_tokens = 4;
    const Outcome o = run_beside_good(*e, long_prompt(60), p);
    QCOMPARE(o.reason, brisk::FinishReason::Error);
    QVERIFY2(o.error.find("does not fit the context") != std::string::npos, o.error.c_str());
    QVERIFY2(o.error.find(needle.toStdString()) != std::string::npos, o.error.c_str());
    QCOMPARE(o.tokens, 0);
  }

  // A bias on a token id the model cannot produce is refused, not ignored.
  void logitBiasOutsideTheVocabulary() {
    brisk::EngineConfig cfg;
    cfg.threads = 1;
    auto e = brisk::Engine::create(cfg);
    // The ids the engine samples from: the model's rows that the tokenizer can decode.
    const int vocab = std::min(e->model_info().vocab_size, e->model_info().tokenizer_vocab_size);
    brisk::SamplingParams p;
    p.max_tokens = 4;
    p.logit_bias = {{3, 1.0f}, {vocab, 2.0f}};
    const Outcome o = run_beside_good(*e, "a", p);
    QCOMPARE(o.reason, brisk::FinishReason::Error);
    QVERIFY2(
        o.error.find("SamplingParams.logit_bias: token id " + std::to_string(vocab) +
                     " is outside the vocabulary [0, " + std::to_string(vocab) + ")") != std::string::npos,
        o.error.c_str());
    // The first id past the vocabulary is refused (above); the last one is a valid target.
    p.logit_bias = {{vocab - 1, 100.0f}};
    p.ignore_eos = true;
    const Outcome ok = run_beside_good(*e, "a", p);
    QVERIFY2(ok.error.empty(), ok.error.c_str());
    QCOMPARE(ok.tokens, 4);
  }
};

QTEST_APPLESS_MAIN(TestRequestRejections)
#include "test_request_rejections.moc"
