// The engine's greedy tokens against an independent double-precision
// forward pass (tests/e2e/support/reference_llama.*, which shares no code
// with the engine), on real weights, alone and batched; and the same weights
// loaded from different formats give identical tokens.
#include <QTemporaryDir>
#include <QtTest>
#include <filesystem>

#include "brisk/engine.h"
#include "brisk/model_tools.h"
#include "support/reference_llama.h"

namespace {

const std::string kModels = BRISK_SHARED_MODELS;

const std::vector<std::string> kPrompts = {
    "Once upon a time",
    "The little dog",
    "Lily and Ben went to the park. They",
    "One day, a big bird",
    "Tom had a red ball. He",
};

bool exists(const std::string& p) { return std::filesystem::exists(p); }

brisk::EngineConfig config(const std::string& model, const std::string& tok = {}) {
  brisk::EngineConfig c;
  c.model = model;
  c.tokenizer = tok;
  c.threads = 2;
  return c;
}

brisk::SamplingParams greedy_params(int n) {
  brisk::SamplingParams p;
  p.temperature = 0;
  p.max_tokens = n;
  p.ignore_eos = true;
  return p;
}

// Runs every prompt through one engine at once (continuous batching) and
// returns the generated ids per prompt.
std::vector<std::vector<int32_t>> run_batched(brisk::Engine& e, const std::vector<std::vector<int32_t>>& prompts,
                                              int n) {
  std::map<uint64_t, size_t> index;
  for (size_t i = 0; i < prompts.size(); ++i) index[e.add_request(prompts[i], greedy_params(n))] = i;
  std::vector<std::vector<int32_t>> out(prompts.size());
  while (e.has_unfinished())
    for (const auto& o : e.step())
      if (o.finished) out[index.at(o.request_id)] = o.token_ids;
  return out;
}

std::vector<int32_t> run_alone(brisk::Engine& e, const std::vector<int32_t>& prompt, int n) {
  return run_batched(e, {prompt}, n)[0];
}

// Compares engine tokens with the oracle; a divergence is only tolerated at
// a near-tie of the oracle's top two logits (float32 vs double rounding).
void compare(const std::vector<int32_t>& got, const std::vector<int>& want, const std::vector<double>& gaps,
             const std::string& what) {
  QCOMPARE((int)got.size(), (int)want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    if (got[i] == want[i]) continue;
    QVERIFY2(gaps[i] < 1e-4, (what + ": token " + std::to_string(i) + " differs (" + std::to_string(got[i]) +
                              " vs reference " + std::to_string(want[i]) + ") with top-2 logit gap " +
                              std::to_string(gaps[i]))
                                 .c_str());
    qWarning("%s: diverged at token %zu at a near-tie (gap %.2g); later tokens not compared", what.c_str(), i,
             gaps[i]);
    return;
  }
}

}  // namespace

class GreedyMatchesReference : public QObject {
  Q_OBJECT

 private:
  void check_model(const std::string& model, const std::string& tok, const brisk_test::RefModel& ref) {
    constexpr int kTokens = 200;
    auto engine = brisk::Engine::create(config(model, tok));
    std::vector<std::vector<int32_t>> prompts;
    std::vector<std::vector<int>> want;
    std::vector<std::vector<double>> gaps(kPrompts.size());
    for (size_t i = 0; i < kPrompts.size(); ++i) {
      prompts.push_back(engine->encode(kPrompts[i], true));
      want.push_back(brisk_test::greedy(ref, std::vector<int>(prompts[i].begin(), prompts[i].end()), kTokens, &gaps[i]));
    }
    const auto batched = run_batched(*engine, prompts, kTokens);
    for (size_t i = 0; i < kPrompts.size(); ++i) {
      compare(run_alone(*engine, prompts[i], kTokens), want[i], gaps[i], model + " alone: '" + kPrompts[i] + "'");
      compare(batched[i], want[i], gaps[i], model + " batched: '" + kPrompts[i] + "'");
    }
  }

 private slots:
  void stories260kGgufMatchesReference() {
    const std::string path = kModels + "/stories260K/stories260K.gguf";
    if (!exists(path)) QSKIP(("model not available: " + path).c_str());
    check_model(path, {}, brisk_test::load_gguf(path));
  }

  void stories260kLlama2cMatchesReference() {
    const std::string path = kModels + "/stories260K/stories260K.bin";
    const std::string tok = kModels + "/stories260K/tok512.bin";
    if (!exists(path) || !exists(tok)) QSKIP(("model not available: " + path).c_str());
    check_model(path, tok, brisk_test::load_llama2c(path));
  }

  // The llama2.c reference run (README of the model): 256 greedy tokens from
  // BOS, and the same from the GGUF and the .bin.
  void stories260kBinAndGgufGiveIdenticalTokens() {
    const std::string gguf = kModels + "/stories260K/stories260K.gguf";
    const std::string bin = kModels + "/stories260K/stories260K.bin";
    const std::string tok = kModels + "/stories260K/tok512.model";
    if (!exists(gguf) || !exists(bin) || !exists(tok)) QSKIP(("model not available: " + gguf).c_str());
    auto a = brisk::Engine::create(config(gguf));
    auto b = brisk::Engine::create(config(bin, tok));
    for (const auto& text : kPrompts) {
      const auto ids = a->encode(text, true);
      QCOMPARE(b->encode(text, true), ids);
      QCOMPARE(run_alone(*a, ids, 256), run_alone(*b, ids, 256));
    }
    const auto from_bos = run_alone(*b, {1}, 256);
    const std::vector<int32_t> head = {403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426};
    QCOMPARE(std::vector<int32_t>(from_bos.begin(), from_bos.begin() + head.size()), head);
    QCOMPARE(a->decode(std::vector<int32_t>(from_bos.begin(), from_bos.begin() + 15)),
             std::string("Once upon a time, there was a little girl named Lily."));
  }

  // F16 weights, Llama-2 vocabulary. The README's reference ids come with a
  // warning: the top-2 gap at step 23 is 5.3e-4, so compare with the oracle's
  // gaps rather than demanding exact equality past a near-tie.
  void tinyRandomF16MatchesReference() {
    const std::string path = kModels + "/llama-2-tiny-random/llama-2-tiny-random.gguf";
    if (!exists(path)) QSKIP(("model not available: " + path).c_str());
    const auto ref = brisk_test::load_gguf(path);
    std::vector<double> gaps;
    const auto want = brisk_test::greedy(ref, {1}, 32, &gaps);
    const std::vector<int> readme = {31102, 18247, 4847,  634,   20459, 5601,  29710, 4660,  29509, 31364, 28253,
                                     12321, 12681, 14340, 1189,  30070, 29182, 9645,  20945, 16138, 2451,  19209,
                                     19982, 8317,  15492, 19741, 8021,  29710, 4660,  29448, 3870,  13706};
    QCOMPARE(want, readme);
    auto engine = brisk::Engine::create(config(path));
    compare(run_alone(*engine, {1}, 32), want, gaps, "llama-2-tiny-random");
  }

  // make-model GGUF vs the same weights written as a Hugging Face directory
  // (rotate-half q/k rows, single file and sharded): identical greedy tokens.
  void ggufAndSafetensorsGiveIdenticalTokens() {
    QTemporaryDir dir;
    for (const std::string dtype : {"f32", "f16"}) {
      const std::string gguf = dir.filePath(QString::fromStdString("tiny-" + dtype + ".gguf")).toStdString();
      brisk::SyntheticModelSpec spec;
      spec.shape = "tiny";
      spec.dtype = dtype;
      spec.seed = 7;
      brisk::make_synthetic_model_file(spec, gguf);
      const auto ref = brisk_test::load_gguf(gguf);
      auto a = brisk::Engine::create(config(gguf));
      for (bool sharded : {false, true}) {
        const std::string hf = dir.filePath(QString::fromStdString("hf-" + dtype + (sharded ? "-sharded" : ""))).toStdString();
        std::filesystem::create_directories(hf);
        brisk_test::write_hf_directory(ref, hf, dtype == "f32" ? "F32" : "F16", sharded);
        std::filesystem::copy_file(BRISK_DEMO_TOKENIZER_MODEL, hf + "/tokenizer.model");
        auto b = brisk::Engine::create(config(hf));
        QCOMPARE(b->model_info().format, std::string("safetensors"));
        for (const auto& text : kPrompts) {
          const auto ids = a->encode(text, true);
          QCOMPARE(b->encode(text, true), ids);
          const auto ta = run_alone(*a, ids, 64);
          QCOMPARE(run_alone(*b, ids, 64), ta);
          std::vector<double> gaps;
          compare(ta, brisk_test::greedy(ref, std::vector<int>(ids.begin(), ids.end()), 64, &gaps), gaps,
                  "synthetic " + dtype);
        }
      }
    }
  }
};

QTEST_APPLESS_MAIN(GreedyMatchesReference)
#include "test_greedy_matches_reference.moc"
