// Stop strings, stop token ids and max_tokens: where generation ends, what
// text is returned, and that streamed chunks never leak a stop string.
#include <QtTest>
#include <filesystem>

#include "brisk/engine.h"

namespace {

struct Result {
  std::string streamed, text;
  std::vector<int32_t> ids;
  brisk::FinishReason reason = brisk::FinishReason::None;
};

Result run(brisk::Engine& e, const std::string& prompt, const brisk::SamplingParams& p) {
  e.add_request(prompt, p);
  Result r;
  while (e.has_unfinished())
    for (const auto& o : e.step()) {
      r.streamed += o.new_text;
      if (o.finished) {
        r.text = o.text;
        r.ids = o.token_ids;
        r.reason = o.finish_reason;
      }
    }
  return r;
}

}  // namespace

class TestStopConditions : public QObject {
  Q_OBJECT

 private slots:
  void stopStringOnARealModel() {
    const std::string path = std::string(BRISK_SHARED_MODELS) + "/stories260K/stories260K.gguf";
    if (!std::filesystem::exists(path)) QSKIP(("model not available: " + path).c_str());
    brisk::EngineConfig cfg;
    cfg.model = path;
    cfg.threads = 2;
    auto e = brisk::Engine::create(cfg);
    brisk::SamplingParams p;
    p.max_tokens = 100;
    const Result full = run(*e, "Once upon a time", p);
    QVERIFY(full.text.rfind(", there was a little girl named Lily.", 0) == 0);
    p.stop = {"Lily", "never appears"};
    const Result cut = run(*e, "Once upon a time", p);
    QCOMPARE(cut.reason, brisk::FinishReason::Stop);
    QCOMPARE(cut.text, std::string(", there was a little girl named "));
    QCOMPARE(cut.streamed, cut.text);  // the held-back "Li" was never streamed
    QVERIFY(cut.ids.size() < full.ids.size());
  }

  void stopTokenAndMaxTokens() {
    brisk::EngineConfig cfg;  // demo model
    cfg.threads = 2;
    auto e = brisk::Engine::create(cfg);
    brisk::SamplingParams p;
    p.max_tokens = 40;
    p.ignore_eos = true;
    const Result full = run(*e, "The cache", p);
    QCOMPARE((int)full.ids.size(), 40);
    QCOMPARE(full.reason, brisk::FinishReason::Length);
    QCOMPARE(full.streamed, full.text);
    // Stop at the first occurrence of the 11th token.
    const int32_t stop_id = full.ids[10];
    const size_t first = std::find(full.ids.begin(), full.ids.end(), stop_id) - full.ids.begin();
    p.stop_token_ids = {stop_id};
    const Result cut = run(*e, "The cache", p);
    QCOMPARE(cut.reason, brisk::FinishReason::Stop);
    QCOMPARE(cut.ids.size(), first + 1);
    QCOMPARE(cut.streamed, cut.text);
    // A stop string taken from the middle of the full text.
    p.stop_token_ids.clear();
    const std::string needle = full.text.substr(full.text.size() / 2, 3);
    p.stop = {needle};
    const Result by_text = run(*e, "The cache", p);
    QCOMPARE(by_text.reason, brisk::FinishReason::Stop);
    QCOMPARE(by_text.text, full.text.substr(0, full.text.find(needle)));
    QCOMPARE(by_text.streamed, by_text.text);
  }
};

QTEST_APPLESS_MAIN(TestStopConditions)
#include "test_stop_conditions.moc"
