// Speculative decoding by prompt lookup must not change a single greedy
// token: with --speculate ngram:4 every greedy request produces exactly the
// plain greedy output (penalties, stop strings, stop token ids and
// max_tokens included), alone and batched beside sampled requests, whose
// output must not change either; rejected drafts leave no KV blocks behind.
#include <QtTest>
#include <filesystem>
#include <map>

#include "brisk/benchmark.h"
#include "brisk/engine.h"
#include "cache/kv_cache.h"
#include "spec/ngram_proposer.h"

namespace {

using brisk::SamplingParams;

struct Req {
  std::vector<int32_t> prompt;
  SamplingParams params;
};

struct Result {
  std::vector<int32_t> tokens;
  std::string text;
  brisk::FinishReason reason = brisk::FinishReason::None;
  std::vector<bool> accepted;  // per output token: came from an accepted draft
  std::string streamed;        // new_text of every event, concatenated
  std::vector<int32_t> streamed_ids;
};

// Runs the requests, adding two every other step (arrivals land mid-decode);
// `batched` false runs them one at a time.
std::vector<Result> run(brisk::Engine& e, const std::vector<Req>& reqs, bool batched) {
  std::vector<Result> out(reqs.size());
  std::map<uint64_t, size_t> index;
  size_t next = 0;
  int step = 0;
  while (next < reqs.size() || e.has_unfinished()) {
    if (batched ? step % 2 == 0 : !e.has_unfinished())
      for (int k = 0; k < (batched ? 2 : 1) && next < reqs.size(); ++k, ++next)
        index[e.add_request(reqs[next].prompt, reqs[next].params)] = next;
    ++step;
    for (const auto& o : e.step()) {
      if (o.finish_reason == brisk::FinishReason::Error) qFatal("%s", o.error.c_str());
      Result& r = out[index.at(o.request_id)];
      if (reqs[index.at(o.request_id)].params.n == 1) {  // n > 1 streams each sequence's tokens
        for (size_t j = 0; j < o.new_token_ids.size(); ++j)
          r.accepted.push_back(j + 1 < o.new_token_ids.size());
        r.streamed += o.new_text;
        r.streamed_ids.insert(r.streamed_ids.end(), o.new_token_ids.begin(), o.new_token_ids.end());
      }
      if (o.finished) {
        r.tokens = o.token_ids;
        r.text = o.text;
        r.reason = o.finish_reason;
      }
    }
    // Alone, the running sequence's K/V covers exactly its tokens but the
    // newest: rejected drafts were rolled back.
    if (!batched && e.has_unfinished() && !e.step_history().empty()) {
      const Result& r = out[next - 1];
      if (reqs[next - 1].params.n == 1 && !r.streamed_ids.empty() &&
          e.step_history().back().kv_slots_filled !=
              (int64_t)(reqs[next - 1].prompt.size() + r.streamed_ids.size() - 1))
        qFatal("request %zu: %lld KV slots filled for %zu tokens", next - 1,
               (long long)e.step_history().back().kv_slots_filled,
               reqs[next - 1].prompt.size() + r.streamed_ids.size());
    }
    if (step > 200000) qFatal("engine does not finish");
  }
  return out;
}

brisk::EngineConfig config(const std::string& model, int spec) {
  brisk::EngineConfig c;
  c.model = model;
  c.threads = 2;
  c.max_num_seqs = 8;
  c.max_num_batched_tokens = 256;
  c.speculative_tokens = spec;
  return c;
}

std::vector<int32_t> lcg_tokens(uint32_t seed, int len, int vocab) {
  std::vector<int32_t> p;
  for (int k = 0; k < len; ++k) {
    seed = seed * 1664525u + 1013904223u;
    p.push_back(3 + (int32_t)((seed >> 8) % (uint32_t)(vocab - 3)));
  }
  return p;
}

}  // namespace

class Speculative : public QObject {
  Q_OBJECT

  // 20 greedy requests over the model: quoted passages (repeated text and
  // repeated token runs) where drafts get accepted, random prompts where
  // they mostly do not, and every logits processor.
  std::vector<Req> greedy_requests(brisk::Engine& e) {
    const int vocab = e.model_info().tokenizer_vocab_size;
    const std::vector<std::string> texts = {
        "Once upon a time, there was a little girl named Lily. She loved to play outside. Once upon a time, "
        "there was a little girl named Lily. She loved",
        "The cat sat on the mat. The dog sat on the log. The cat sat on the mat. The dog sat",
        "Tom and Sue went to the park. They saw a big tree. Tom said, \"Let's climb the tree!\" Sue said, "
        "\"Let's climb",
        "One day, a bird flew to the window. The bird sang a song. The bird sang a song. The bird",
        "Lily was happy. Lily was happy. Lily was happy. Lily was"};
    std::vector<Req> v;
    for (int i = 0; i < 20; ++i) {
      Req r;
      if (i < 10) {
        r.prompt = e.encode(texts[i % texts.size()]);
      } else if (i < 15) {
        std::vector<int32_t> unit = lcg_tokens(77u * i, 3 + i % 5, vocab);
        r.prompt = {1};
        for (int k = 0; k < 6; ++k) r.prompt.insert(r.prompt.end(), unit.begin(), unit.end());
      } else {
        r.prompt = lcg_tokens(1000u + i, 5 + 7 * i % 40, vocab);
        r.prompt.insert(r.prompt.begin(), 1);
      }
      r.params.temperature = 0;
      r.params.max_tokens = 9 + (i * 17) % 70;  // odd lengths cut runs of drafts short
      r.params.ignore_eos = i % 3 != 0;
      if (i == 5) r.params.repetition_penalty = 1.3f;
      if (i == 6) r.params.no_repeat_ngram_size = 3;
      if (i == 7) r.params.logit_bias = {{r.prompt.back(), -5.0f}, {13, 2.0f}};
      if (i == 8) r.params.logprobs = 2;
      v.push_back(r);
    }
    return v;
  }

  std::vector<Req> sampled_requests(brisk::Engine& e) {
    std::vector<Req> v;
    for (int i = 0; i < 4; ++i) {
      Req r;
      r.prompt = e.encode("The cat sat on the mat. The cat sat on the mat. The cat");
      r.params.temperature = 0.7f + 0.1f * i;
      r.params.top_p = 0.9f;
      r.params.seed = 42 + i;
      r.params.max_tokens = 30;
      if (i == 3) r.params.n = 2;
      v.push_back(r);
    }
    return v;
  }

  static void check_free(brisk::Engine& e) {
    for (const auto& b : e.kv_blocks()) QCOMPARE(b.owner, int64_t(-1));
  }

  static void compare(const std::vector<Result>& got, const std::vector<Result>& want, const char* what) {
    QCOMPARE(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      const std::string msg = std::string(what) + ": request " + std::to_string(i);
      QVERIFY2(got[i].tokens == want[i].tokens, msg.c_str());
      QVERIFY2(got[i].text == want[i].text, msg.c_str());
      QVERIFY2(got[i].reason == want[i].reason, msg.c_str());
      if (!got[i].streamed_ids.empty()) {
        QVERIFY2(got[i].streamed_ids == got[i].tokens, msg.c_str());
        QVERIFY2(got[i].streamed == got[i].text, msg.c_str());
      }
    }
  }

  void check_model(const std::string& model, bool expect_accepts) {
    auto plain = brisk::Engine::create(config(model, 0));
    auto spec = brisk::Engine::create(config(model, 4));
    std::vector<Req> reqs = greedy_requests(*plain);

    const std::vector<Result> want = run(*plain, reqs, false);
    const std::vector<Result> got = run(*spec, reqs, false);
    compare(got, want, "alone");
    check_free(*spec);
    const auto m = spec->metrics();
    QVERIFY(m.spec_proposed_tokens > 0);
    QVERIFY(m.spec_accepted_tokens <= m.spec_proposed_tokens);
    if (expect_accepts) {
      QVERIFY2(m.spec_accepted_tokens > 0, "repetitive prompts never had a draft accepted");
      QVERIFY(m.tokens_per_decode_step > 1.0);
    }
    QCOMPARE(plain->metrics().spec_proposed_tokens, uint64_t(0));
    QCOMPARE(plain->metrics().tokens_per_decode_step, 1.0);

    // Stops inside an accepted run: a stop token id, a stop string and a
    // max_tokens landing on a token that the spec run took from a draft.
    std::vector<Req> stops;
    for (size_t i = 0; i < got.size() && stops.size() < 9; ++i) {
      const Result& r = got[i];
      for (size_t pos = 1; pos < r.tokens.size() && stops.size() < 9; ++pos) {
        if (!r.accepted[pos] || !r.accepted[pos - 1]) continue;
        const int32_t tok = r.tokens[pos];
        Req q = reqs[i];
        if (stops.size() % 3 == 0) {
          if (std::find(r.tokens.begin(), r.tokens.begin() + pos, tok) != r.tokens.begin() + pos) continue;
          q.params.stop_token_ids = {tok};
          q.params.ignore_eos = true;
        } else if (stops.size() % 3 == 1) {
          const std::string piece =
              spec->decode(std::vector<int32_t>(r.tokens.begin(), r.tokens.begin() + pos + 1))
                  .substr(
                      spec->decode(std::vector<int32_t>(r.tokens.begin(), r.tokens.begin() + pos)).size());
          if (piece.size() < 2 || r.text.find(piece) < r.text.size() - 64) continue;
          q.params.stop = {piece};
        } else {
          q.params.max_tokens = (int)pos + 1;
        }
        stops.push_back(q);
        pos += 8;
      }
    }
    if (expect_accepts) QVERIFY2(stops.size() >= 3, "too few accepted runs to place stops in");
    const std::vector<Result> want_stops = run(*plain, stops, false);
    compare(run(*spec, stops, false), want_stops, "stops");
    for (const Result& r : want_stops) QVERIFY(r.reason != brisk::FinishReason::None);
    check_free(*spec);

    // Batched beside sampled requests (and a parallel-sampling one): the
    // greedy ones are unchanged, the sampled ones equal a spec-off run.
    std::vector<Req> mixed = reqs;
    std::vector<Req> sampled = sampled_requests(*plain);
    for (size_t k = 0; k < sampled.size(); ++k) mixed.insert(mixed.begin() + 3 + 5 * k, sampled[k]);
    const std::vector<Result> want_mixed = run(*plain, mixed, true);
    const std::vector<Result> got_mixed = run(*spec, mixed, true);
    compare(got_mixed, want_mixed, "batched");
    check_free(*spec);
  }

  // The roofline's decode tok/s counts the tokens pure decode steps gave
  // their requests (accepted drafts and the model's own token), not the
  // positions they verified: a rejected draft is work, not output.
  void check_decode_rate(const std::string& model) {
    auto e = brisk::Engine::create(config(model, 4));
    std::vector<Req> reqs = greedy_requests(*e);
    for (const Req& r : reqs) e->add_request(r.prompt, r.params);
    std::vector<int> tokens;  // per step, every request's new tokens
    while (e->has_unfinished()) {
      int n = 0;
      for (const auto& o : e->step()) n += (int)o.new_token_ids.size();
      tokens.push_back(n);
    }
    brisk::BenchResult r;
    r.config = e->config();
    r.model = e->model_info();
    r.steps = e->step_history();
    QCOMPARE(r.steps.size(), tokens.size());
    double generated = 0, verified = 0, seconds = 0;
    for (size_t i = 0; i < r.steps.size(); ++i) {
      const brisk::StepMetrics& st = r.steps[i];
      if (st.decode_tokens == 0 || st.prefill_tokens > 0) continue;
      generated += tokens[i];
      verified += st.decode_tokens;
      seconds += st.duration;
    }
    QVERIFY2(verified > generated, "no draft was rejected in a pure decode step: nothing to tell apart");
    brisk::compute_roofline(r, brisk::SystemInfo{}, e->kv_bytes_per_token());
    const double want = generated / seconds;
    QVERIFY2(std::abs(r.roofline.decode_tokens_per_s - want) <= 1e-9 * want,
             qPrintable(QString("decode tok/s %1, want %2 (verified positions: %3)")
                            .arg(r.roofline.decode_tokens_per_s)
                            .arg(want)
                            .arg(verified / seconds)));
    for (size_t i = 0; i < r.steps.size(); ++i) QCOMPARE(r.steps[i].generated_tokens, tokens[i]);
  }

 private slots:
  void decodeRateCountsGeneratedTokens() {
    check_decode_rate("demo");
    if (QTest::currentTestFailed()) return;
    const std::string path = std::string(BRISK_SHARED_MODELS) + "/stories260K/stories260K.gguf";
    if (std::filesystem::exists(path)) check_decode_rate(path);
  }

  void proposer() {
    using brisk::propose_ngram;
    // "a b c d a b" -> the last "a b" occurred at 0: propose "c d a b".
    QCOMPARE(propose_ngram({1, 2, 3, 4}, {1, 2}, 3, 4), (std::vector<int32_t>{3, 4, 1, 2}));
    QCOMPARE(propose_ngram({1, 2, 3, 4}, {1, 2}, 3, 2), (std::vector<int32_t>{3, 4}));
    // The most recent occurrence wins; a longer n-gram is preferred.
    QCOMPARE(propose_ngram({5, 1, 7, 9, 1, 8}, {9, 1}, 2, 1), (std::vector<int32_t>{8}));
    QCOMPARE(propose_ngram({5, 1, 7, 2, 1, 8}, {9, 1}, 2, 1), (std::vector<int32_t>{8}));
    // Overlapping runs continue themselves; nothing recurs: nothing to propose.
    QCOMPARE(propose_ngram({4, 4, 4}, {}, 3, 3), (std::vector<int32_t>{4}));
    QVERIFY(propose_ngram({1, 2, 3}, {4}, 3, 4).empty());
    QVERIFY(propose_ngram({1, 2, 1}, {}, 3, 0).empty());
  }

  void truncateFreesBlocks() {
    brisk::KvCache c(8, 4);
    QVERIFY(c.append_slots(1, 10));  // 3 blocks
    c.fork(1, 2);                    // shared with a sibling
    QVERIFY(c.append_slots(1, 5));   // block 2 copied on write, one more: 5 used
    QCOMPARE(c.num_used(), int64_t(5));
    c.truncate(1, 11);
    QCOMPARE(c.table(1)->num_tokens, int64_t(11));
    QCOMPARE(c.num_used(), int64_t(4));
    c.truncate(1, 4);  // back into the blocks still shared with the sibling
    QCOMPARE(c.table(1)->blocks.size(), size_t(1));
    QCOMPARE(c.num_used(), int64_t(3));
    QVERIFY(c.append_slots(1, 1));  // writes into a shared block: copy-on-write again
    QVERIFY(c.table(1)->blocks[1] != c.table(2)->blocks[1]);
    c.free(1);
    c.free(2);
    QCOMPARE(c.num_used(), int64_t(0));
  }

  void configValidation() {
    brisk::EngineConfig c;
    c.speculative_tokens = -1;
    QVERIFY(c.validate().find("speculative_tokens") != std::string::npos);
    c.speculative_tokens = 4;
    c.speculative_ngram = 0;
    QVERIFY(c.validate().find("speculative_ngram") != std::string::npos);
    c.speculative_ngram = 3;
    QVERIFY(c.validate().empty());
    c.policy = brisk::SchedulerPolicy::Static;  // never proposes drafts: refused, not ignored
    QVERIFY2(
        c.validate().find("speculative_tokens = 4: speculative decoding needs the continuous scheduler") !=
            std::string::npos,
        c.validate().c_str());
    c.speculative_tokens = 0;
    QVERIFY(c.validate().empty());
  }

  void demoModel() { check_model("demo", false); }

  void stories260K() {
    const std::string path = std::string(BRISK_SHARED_MODELS) + "/stories260K/stories260K.gguf";
    if (!std::filesystem::exists(path)) QSKIP(("stories260K not found at " + path).c_str());
    check_model(path, true);
  }
};

QTEST_APPLESS_MAIN(Speculative)
#include "test_speculative.moc"
