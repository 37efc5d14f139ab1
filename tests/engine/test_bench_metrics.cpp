// The benchmark's figures on a hand-built timeline: every number summarize()
// and summary_fields() produce is worked out by hand below and checked.
//
// Percentiles (engine/metrics percentiles()): nearest rank over the sorted
// values v[0..n-1], p_q = v[ceil(q * n) - 1]; always an observed value.
// Negative values (TPOT of a one-token request) are left out.
#include <QtTest>
#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "brisk/bench_matrix.h"
#include "metrics/metrics_recorder.h"

using namespace brisk;

namespace {

// Times below are multiples of 1/16 s, exact in binary; divisions (means,
// rates) are compared to 1e-12.
bool near(double a, double b) { return std::abs(a - b) <= 1e-12 * std::max(1.0, std::abs(b)); }
#define CHECK_NEAR(a, b) \
  QVERIFY2(near((a), (b)), qPrintable(QString("%1 = %2, want %3").arg(#a).arg(a, 0, 'g', 17).arg(b)))

RequestMetrics req(uint64_t id, double arrival, double scheduled, std::vector<double> tokens, int prompt,
                   int preemptions = 0) {
  RequestMetrics r;
  r.request_id = id;
  r.arrival = arrival;
  r.first_scheduled = scheduled;
  r.token_times = tokens;
  r.first_token = tokens.empty() ? -1 : tokens.front();
  r.finished = tokens.empty() ? scheduled : tokens.back();
  r.prompt_tokens = prompt;
  r.output_tokens = (int)tokens.size();
  r.preemptions = preemptions;
  r.finish_reason = FinishReason::Length;
  return r;
}

StepMetrics step(int used, int seqs, int alloc, int filled) {
  StepMetrics s;
  s.kv_blocks_used = used;
  s.kv_blocks_total = 8;
  s.num_seqs = seqs;
  s.kv_slots_allocated = alloc;
  s.kv_slots_filled = filled;
  return s;
}

// The timeline (seconds):
//   R1 arrives 0,    scheduled 0.5,  tokens 1.0 1.25 1.5 1.75          prompt 10
//      TTFT 1.0  TPOT (1.75-1.0)/3 = 0.25    E2E 1.75  queue 0.5   ITL .25 .25 .25
//   R2 arrives 1.0,  scheduled 1.0,  tokens 1.5 2.0 3.0                prompt 20, 1 preemption
//      TTFT 0.5  TPOT (3.0-1.5)/2 = 0.75     E2E 2.0   queue 0     ITL .5 1.0
//   R3 arrives 2.0,  scheduled 2.25, token 4.0                         prompt 30
//      TTFT 2.0  TPOT none (one token)       E2E 2.0   queue 0.25
//   R4 arrives 2.25, scheduled 3.0,  tokens 3.25 3.5 3.75 4.0 4.5      prompt 40
//      TTFT 1.0  TPOT (4.5-3.25)/4 = 0.3125  E2E 2.25  queue 0.75  ITL .25 .25 .25 .5
//   R5 arrives 3.0 and fails (FinishReason::Error): in no figure but the error count.
// Duration 5 s.
std::vector<RequestMetrics> timeline() {
  std::vector<RequestMetrics> v = {req(1, 0, 0.5, {1.0, 1.25, 1.5, 1.75}, 10),
                                   req(2, 1.0, 1.0, {1.5, 2.0, 3.0}, 20, 1), req(3, 2.0, 2.25, {4.0}, 30),
                                   req(4, 2.25, 3.0, {3.25, 3.5, 3.75, 4.0, 4.5}, 40),
                                   req(5, 3.0, -1, {}, 50)};
  v[4].finish_reason = FinishReason::Error;
  v[4].finished = 3.0;
  return v;
}

// Four steps over an 8-block cache:
//   used 2 4 6 2   -> occupancy .25 .5 .75 .25: mean 1.75/4 = 0.4375, peak 0.75
//   seqs 1 2 3 1   -> mean batch 7/4 = 1.75
//   slots allocated 32 64 96 32 (224), filled 20 50 90 32: waste (12+14+6+0)/224 = 1/7
//   prefix lookups 40 tokens, 10 found -> hit rate 0.25
//   drafts proposed 8, accepted 6 -> 0.75; decode seqs 2 + 3 = 5 -> (5 + 6) / 5 = 2.2 tokens per decode step
std::vector<StepMetrics> steps() {
  std::vector<StepMetrics> s = {step(2, 1, 32, 20), step(4, 2, 64, 50), step(6, 3, 96, 90),
                                step(2, 1, 32, 32)};
  s[0].prefix_query_tokens = 40;
  s[0].prefix_hit_tokens = 10;
  s[1].decode_seqs = 2;
  s[2].decode_seqs = 3;
  s[1].spec_proposed_tokens = 8;
  s[1].spec_accepted_tokens = 6;
  return s;
}

}  // namespace

class TestBenchMetrics : public QObject {
  Q_OBJECT

 private slots:
  void percentilesAreNearestRank() {
    // 1..10: p50 = v[ceil(5)-1] = v[4] = 5, p90 = v[ceil(9)-1] = 9, p99 = v[ceil(9.9)-1] = v[9] = 10.
    const Percentiles p = percentiles({10, 9, 8, 7, 6, 5, 4, 3, 2, 1, -1});
    QCOMPARE(p.count, 10);
    QCOMPARE(p.mean, 5.5);
    QCOMPARE(p.p50, 5.0);
    QCOMPARE(p.p90, 9.0);
    QCOMPARE(p.p99, 10.0);
    QCOMPARE(p.max, 10.0);
    QCOMPARE(percentiles({}).count, 0);
  }

  void summaryOfAHandBuiltTimeline() {
    const BenchSummary s = summarize(timeline(), steps(), 5.0);
    QCOMPARE(s.requests, 5);
    QCOMPARE(s.finished, 4);
    QCOMPARE(s.errors, 1);
    QCOMPARE(s.prompt_tokens, uint64_t(100));     // 10 + 20 + 30 + 40
    QCOMPARE(s.generation_tokens, uint64_t(13));  // 4 + 3 + 1 + 5
    CHECK_NEAR(s.prompt_tokens_per_s, 20.0);      // 100 / 5
    CHECK_NEAR(s.generation_tokens_per_s, 2.6);   // 13 / 5
    CHECK_NEAR(s.requests_per_s, 0.8);            // 4 / 5
    // TTFT 1.0 .5 2.0 1.0, sorted .5 1 1 2: mean 4.5/4; p50 = v[1]; p90 = p99 = v[3].
    QCOMPARE(s.ttft.count, 4);
    CHECK_NEAR(s.ttft.mean, 1.125);
    CHECK_NEAR(s.ttft.p50, 1.0);
    CHECK_NEAR(s.ttft.p90, 2.0);
    CHECK_NEAR(s.ttft.p99, 2.0);
    CHECK_NEAR(s.ttft.max, 2.0);
    // TPOT .25 .75 .3125 (R3 has none), sorted .25 .3125 .75: mean 1.3125/3; p50 = v[ceil(1.5)-1] = v[1].
    QCOMPARE(s.tpot.count, 3);
    CHECK_NEAR(s.tpot.mean, 0.4375);
    CHECK_NEAR(s.tpot.p50, 0.3125);
    CHECK_NEAR(s.tpot.p90, 0.75);
    CHECK_NEAR(s.tpot.p99, 0.75);
    // ITL: six .25, two .5, one 1.0: mean 3.5/9; p50 = v[ceil(4.5)-1] = v[4] = .25; p90 = v[ceil(8.1)-1] =
    // v[8] = 1.
    QCOMPARE(s.itl.count, 9);
    CHECK_NEAR(s.itl.mean, 3.5 / 9);
    CHECK_NEAR(s.itl.p50, 0.25);
    CHECK_NEAR(s.itl.p90, 1.0);
    CHECK_NEAR(s.itl.p99, 1.0);
    // E2E 1.75 2 2 2.25: mean 8/4; p50 = v[1] = 2; p90 = v[3] = 2.25.
    CHECK_NEAR(s.e2e.mean, 2.0);
    CHECK_NEAR(s.e2e.p50, 2.0);
    CHECK_NEAR(s.e2e.p90, 2.25);
    CHECK_NEAR(s.e2e.p99, 2.25);
    // Queue .5 0 .25 .75, sorted 0 .25 .5 .75: mean 1.5/4; p50 = v[1]; p90 = v[3].
    CHECK_NEAR(s.queue.mean, 0.375);
    CHECK_NEAR(s.queue.p50, 0.25);
    CHECK_NEAR(s.queue.p90, 0.75);
    // No SLO: every finished request is good.
    CHECK_NEAR(s.goodput_requests_per_s, 0.8);
    CHECK_NEAR(s.goodput_fraction, 1.0);
    // Steps.
    CHECK_NEAR(s.kv_occupancy_mean, 0.4375);
    CHECK_NEAR(s.kv_occupancy_peak, 0.75);
    CHECK_NEAR(s.mean_batch_size, 1.75);
    CHECK_NEAR(s.kv_waste, 1.0 / 7);
    CHECK_NEAR(s.prefix_cache_hit_rate, 0.25);
    CHECK_NEAR(s.spec_acceptance_rate, 0.75);
    CHECK_NEAR(s.tokens_per_decode_step, 2.2);
    QCOMPARE(s.preemptions, uint64_t(1));
    QCOMPARE(s.steps, uint64_t(4));
  }

  void goodputUnderSlos() {
    // TTFT <= 1 s and TPOT <= 0.5 s: R1 (1.0, .25) and R4 (1.0, .3125) pass; R2 (TPOT .75)
    // and R3 (TTFT 2) fail. 2 good / 5 s = 0.4 req/s; 2 of 4 finished = 0.5.
    BenchSummary s = summarize(timeline(), steps(), 5.0, Slo{1.0, 0.5, 0});
    CHECK_NEAR(s.goodput_requests_per_s, 0.4);
    CHECK_NEAR(s.goodput_fraction, 0.5);
    // E2E <= 1.9 s: only R1 (1.75). 1 / 5 = 0.2 req/s, 1/4.
    s = summarize(timeline(), steps(), 5.0, Slo{0, 0, 1.9});
    CHECK_NEAR(s.goodput_requests_per_s, 0.2);
    CHECK_NEAR(s.goodput_fraction, 0.25);
    // TPOT <= 0.3 s: R1 (.25) passes; R3 has one token, so no TPOT to miss; R2 (.75), R4 (.3125) fail.
    s = summarize(timeline(), steps(), 5.0, Slo{0, 0.3, 0});
    CHECK_NEAR(s.goodput_requests_per_s, 0.4);
    CHECK_NEAR(s.goodput_fraction, 0.5);
  }

  // Tokens that one step gives a request arrive together; they are one
  // entry of its timeline, not zero-length gaps. Two requests share three
  // steps (ending 1.0, 1.5, 2.5 s):
  //   P samples 3 sequences side by side: 3, 3, then 2 tokens (one ended).
  //     Each sequence waits .5 then 1.0 s a token: TPOT 1.5 / 2 = .75 s.
  //   S is one sequence decoding speculatively: 1 token (prefill), 3 (two
  //     drafts accepted + the model's own), 1: 5 tokens in 1.5 s, TPOT
  //     1.5 / 4 = .375 s; its gaps are the same .5 and 1.0 s.
  void aStepsTokensAreOneEntry() {
    MetricsRecorder rec;
    rec.on_add(1, 0, 8);
    rec.on_add(2, 0, 8);
    const std::vector<std::pair<double, std::vector<int>>> steps = {
        {1.0, {1, 1, 1, 2}}, {1.5, {2, 1, 2, 1, 1, 2}}, {2.5, {1, 2, 1}}};
    for (const auto& [t, ids] : steps) {
      for (int id : ids) rec.on_token(id, t);
      StepMetrics sm;
      sm.start = t - 0.25;
      sm.duration = 0.25;
      rec.on_step(sm);
    }
    rec.on_finish(1, 2.5, FinishReason::Length, 8);
    rec.on_finish(2, 2.5, FinishReason::Length, 5);
    const RequestMetrics& p = rec.finished()[0];
    const RequestMetrics& sp = rec.finished()[1];
    QCOMPARE(p.token_times, (std::vector<double>{1.0, 1.5, 2.5}));
    QCOMPARE(sp.token_times, (std::vector<double>{1.0, 1.5, 2.5}));
    CHECK_NEAR(p.tpot(), 0.75);
    CHECK_NEAR(sp.tpot(), 0.375);
    QCOMPARE(p.token_counts, (std::vector<int>{3, 3, 2}));
    QCOMPARE(sp.token_counts, (std::vector<int>{1, 3, 1}));
    QCOMPARE(p.sequences(), 3);
    QCOMPARE(sp.sequences(), 1);
    // Decode rate, sequences together: tokens after the first step's / 1.5 s.
    CHECK_NEAR(p.decode_tokens_per_s(), 5 / 1.5);
    CHECK_NEAR(sp.decode_tokens_per_s(), 4 / 1.5);
    // Each step's tokens, over both requests.
    QCOMPARE(rec.steps()[0].generated_tokens, 4);
    QCOMPARE(rec.steps()[1].generated_tokens, 6);
    QCOMPARE(rec.steps()[2].generated_tokens, 3);

    // ITL .5 1 .5 1: p50 = v[ceil(2)-1] = .5; TPOT .375 .75; 13 tokens.
    const MetricsSnapshot live = rec.snapshot(2.5);
    QCOMPARE(live.generation_tokens, uint64_t(13));
    CHECK_NEAR(live.generation_tokens_per_s, 13 / 2.5);  // the window is the 2.5 s since start
    QCOMPARE(live.itl.count, 4);
    CHECK_NEAR(live.itl.p50, 0.5);
    CHECK_NEAR(live.itl.mean, 0.75);
    CHECK_NEAR(live.tpot.mean, 0.5625);
    const BenchSummary s = summarize(rec.finished(), rec.steps(), 2.5);
    QCOMPARE(s.generation_tokens, uint64_t(13));
    QCOMPARE(s.itl.count, 4);
    CHECK_NEAR(s.itl.p50, 0.5);
    CHECK_NEAR(s.tpot.p50, 0.375);
    CHECK_NEAR(s.tpot.max, 0.75);
    const auto j = nlohmann::json::parse(to_json(p));
    QCOMPARE(j["token_counts"].get<std::vector<int>>(), (std::vector<int>{3, 3, 2}));
    CHECK_NEAR(j["tpot_s"].get<double>(), 0.75);
  }

  // Results files written before token_counts (per request) and
  // generated_tokens (per step) were stored still load, with the figures
  // they were saved with: the summary, every summary column, the roofline.
  // The run is aStepsTokensAreOneEntry's (3 parallel sequences, accepted
  // drafts), so the stripped keys held counts other than 1: figures worked
  // out again from the stripped series would differ.
  void resultsWithoutTokenCountsReadTheSame() {
    MetricsRecorder rec;
    rec.on_add(1, 0, 8);
    rec.on_add(2, 0, 8);
    const std::vector<std::pair<double, std::vector<int>>> steps = {
        {1.0, {1, 1, 1, 2}}, {1.5, {2, 1, 2, 1, 1, 2}}, {2.5, {1, 2, 1}}};
    for (const auto& [t, ids] : steps) {
      for (int id : ids) rec.on_token(id, t);
      StepMetrics sm;
      sm.start = t - 0.25;
      sm.duration = 0.25;
      sm.prefill_tokens = t == 1.0 ? 16 : 0;
      sm.decode_tokens = t == 1.0 ? 0 : 4;
      sm.decode_seqs = t == 1.0 ? 0 : 4;
      sm.kv_slots_filled = 20;
      rec.on_step(sm);
    }
    rec.on_finish(1, 2.5, FinishReason::Length, 8);
    rec.on_finish(2, 2.5, FinishReason::Length, 5);
    BenchResult r;
    r.label = "before token_counts";
    r.config.backend = "cpu";
    r.model.weight_bytes = 1000;
    r.requests = rec.finished();
    r.steps = rec.steps();
    r.summary = summarize(r.requests, r.steps, 2.5);
    SystemInfo sys;
    sys.measured = true;
    sys.read_bandwidth_bytes_per_s = 1e5;
    sys.fma_peak_flops = 1e9;
    compute_roofline(r, sys, 10);
    // What the stripped keys carried: TPOT .375 and .75 need the counts, and
    // decode tok/s counts the 9 tokens of the two decode steps (0.5 s).
    CHECK_NEAR(r.summary.tpot.p50, 0.375);
    CHECK_NEAR(r.summary.tpot.max, 0.75);
    CHECK_NEAR(r.summary.generation_tokens_per_s, 13 / 2.5);
    CHECK_NEAR(r.roofline.decode_tokens_per_s, 18.0);

    auto strip = [](nlohmann::json& run) {
      size_t n = 0;
      for (auto& q : run["requests"]) n += q.erase("token_counts");
      for (auto& s : run["steps"]) n += s.erase("generated_tokens");
      return n;
    };
    nlohmann::json file = nlohmann::json::parse(results_to_json({r}));
    QCOMPARE(strip(file["runs"][0]), r.requests.size() + r.steps.size());
    nlohmann::json bare = nlohmann::json::parse(to_json(r));
    QCOMPARE(strip(bare), r.requests.size() + r.steps.size());
    std::vector<BenchResult> loaded;
    try {
      loaded = results_from_json(file.dump(), "old-results.json");
      QCOMPARE(loaded.size(), size_t(1));
      loaded.push_back(bench_result_from_json(bare.dump(), "old-result.json"));
    } catch (const Error& e) {
      QFAIL(qPrintable(QString("an older results file does not load: ") + e.what()));
    }
    for (const BenchResult& b : loaded) {
      const BenchSummary& s = b.summary;
      for (auto [got, want] :
           {std::pair{s.tpot, r.summary.tpot}, {s.itl, r.summary.itl}, {s.ttft, r.summary.ttft}}) {
        QCOMPARE(got.count, want.count);
        for (double Percentiles::*f :
             {&Percentiles::mean, &Percentiles::p50, &Percentiles::p90, &Percentiles::p99, &Percentiles::max})
          QCOMPARE(got.*f, want.*f);
      }
      QCOMPARE(s.generation_tokens, r.summary.generation_tokens);
      QCOMPARE(s.generation_tokens_per_s, r.summary.generation_tokens_per_s);
      QCOMPARE(s.prompt_tokens_per_s, r.summary.prompt_tokens_per_s);
      QCOMPARE(s.tokens_per_decode_step, r.summary.tokens_per_decode_step);
      QCOMPARE(b.roofline.decode_tokens_per_s, r.roofline.decode_tokens_per_s);
      QCOMPARE(b.roofline.decode_bandwidth_fraction, r.roofline.decode_bandwidth_fraction);
      for (const SummaryField& f : summary_fields()) {
        const double got = f.value(b), want = f.value(r);
        QVERIFY2(got == want || (std::isnan(got) && std::isnan(want)),
                 qPrintable(QString("%1: %2, saved %3").arg(f.key.c_str()).arg(got).arg(want)));
      }
      QCOMPARE(summary_csv({b}), summary_csv({r}));
      // The series read as such a file's: an entry is one token, a step's tokens unknown.
      QCOMPARE(b.requests.size(), r.requests.size());
      QCOMPARE(b.requests[0].token_times, r.requests[0].token_times);
      QVERIFY(b.requests[0].token_counts.empty());
      QCOMPARE(b.requests[0].tokens_at(1), 1);
      QCOMPARE(b.steps.size(), r.steps.size());
      QCOMPARE(b.steps[1].generated_tokens, 0);
      QCOMPARE(b.steps[1].decode_tokens, 4);
    }
  }

  // Pure decode steps of a speculating sequence (1 + 4 drafts verified a
  // step) over a 1000-byte model with 10-byte KV rows: a step that accepts
  // 2 drafts generates 3 tokens, one that rejects all generates 1. Decode
  // tok/s counts those 4 tokens over 0.5 s, not the 10 positions verified;
  // bytes per step (weights + KV filled) do not depend on tokens at all.
  void decodeRateCountsGeneratedTokens() {
    MetricsRecorder rec;
    rec.on_add(1, 0, 8);
    rec.on_token(1, 0.25);
    StepMetrics prefill;
    prefill.duration = 0.25;
    prefill.prefill_tokens = 8;
    rec.on_step(prefill);
    for (int accepted : {2, 0}) {
      StepMetrics sm;
      sm.start = rec.steps().size() * 0.25;
      sm.duration = 0.25;
      for (int k = 0; k <= accepted; ++k) rec.on_token(1, sm.start + sm.duration);
      sm.decode_seqs = 1;
      sm.decode_tokens = 5;
      sm.spec_proposed_tokens = 4;
      sm.spec_accepted_tokens = accepted;
      sm.kv_slots_filled = 10;
      rec.on_step(sm);
    }
    BenchResult r;
    r.config.backend = "cpu";
    r.model.weight_bytes = 1000;
    r.steps = rec.steps();
    SystemInfo sys;
    sys.measured = true;
    sys.read_bandwidth_bytes_per_s = 1e5;
    sys.fma_peak_flops = 1e9;
    compute_roofline(r, sys, 10);
    QCOMPARE(r.roofline.decode_steps, 2);
    CHECK_NEAR(r.roofline.decode_tokens_per_s, 8.0);          // 4 / 0.5
    CHECK_NEAR(r.roofline.decode_bytes_per_step, 1100.0);     // 1000 + 10 x 10
    CHECK_NEAR(r.roofline.decode_bandwidth_fraction, 0.044);  // 2200 B / 0.5 s / 1e5 B/s
  }

  void summaryFieldsReadTheSameFigures() {
    BenchResult r;
    r.label = "f16, \"static\"";
    r.repeat = 1;
    r.requests = timeline();
    r.steps = steps();
    r.summary = summarize(r.requests, r.steps, 5.0, Slo{1.0, 0.5, 0});
    auto value = [&](const std::string& key) {
      for (const SummaryField& f : summary_fields())
        if (f.key == key) return f.value(r);
      qFatal("no field %s", key.c_str());
    };
    // The columns, in order.
    std::vector<std::string> keys;
    for (const SummaryField& f : summary_fields()) keys.push_back(f.key);
    const std::vector<std::string> want = {"generation_tokens_per_s",
                                           "prompt_tokens_per_s",
                                           "requests_per_s",
                                           "goodput_requests_per_s",
                                           "goodput_pct",
                                           "ttft_mean_ms",
                                           "ttft_p50_ms",
                                           "ttft_p90_ms",
                                           "ttft_p99_ms",
                                           "tpot_mean_ms",
                                           "tpot_p50_ms",
                                           "tpot_p90_ms",
                                           "tpot_p99_ms",
                                           "itl_p50_ms",
                                           "itl_p99_ms",
                                           "e2e_p50_ms",
                                           "e2e_p99_ms",
                                           "queue_p50_ms",
                                           "kv_occupancy_mean_pct",
                                           "kv_occupancy_peak_pct",
                                           "preemptions",
                                           "prefix_hit_pct",
                                           "spec_acceptance_pct",
                                           "mean_batch_size",
                                           "decode_bandwidth_pct",
                                           "perplexity",
                                           "perplexity_vs_f32_pct",
                                           "kl_vs_f32",
                                           "top1_vs_f32_pct",
                                           "greedy_agreement_pct"};
    QCOMPARE(keys, want);
    CHECK_NEAR(value("generation_tokens_per_s"), 2.6);
    CHECK_NEAR(value("goodput_requests_per_s"), 0.4);
    CHECK_NEAR(value("goodput_pct"), 50.0);
    CHECK_NEAR(value("ttft_mean_ms"), 1125.0);
    CHECK_NEAR(value("tpot_p50_ms"), 312.5);
    CHECK_NEAR(value("itl_p99_ms"), 1000.0);
    CHECK_NEAR(value("e2e_p99_ms"), 2250.0);
    CHECK_NEAR(value("queue_p50_ms"), 250.0);
    CHECK_NEAR(value("kv_occupancy_peak_pct"), 75.0);
    CHECK_NEAR(value("preemptions"), 1.0);
    CHECK_NEAR(value("prefix_hit_pct"), 25.0);
    CHECK_NEAR(value("spec_acceptance_pct"), 75.0);
    CHECK_NEAR(value("mean_batch_size"), 1.75);
    // Not measured: the machine's ceilings, perplexity, agreement.
    QVERIFY(std::isnan(value("decode_bandwidth_pct")));
    QVERIFY(std::isnan(value("perplexity")));
    QVERIFY(std::isnan(value("greedy_agreement_pct")));
    const SummaryField& ttft = summary_fields()[5];
    QCOMPARE(format_field(ttft, 1125.0), std::string("1125.0"));
    QCOMPARE(format_field(ttft, std::nan("")), std::string("-"));
    r.quality.measured = true;
    r.quality.text_path = "t.txt";
    r.quality.perplexity = 12.5;
    r.quality.baseline_perplexity = 12.0;
    r.quality.kl_mean = 0.0042;
    r.quality.top1_agreement = 0.97;
    CHECK_NEAR(value("perplexity"), 12.5);
    CHECK_NEAR(value("perplexity_vs_f32_pct"), 100.0 * (12.5 / 12.0 - 1));
    CHECK_NEAR(value("kl_vs_f32"), 0.0042);
    CHECK_NEAR(value("top1_vs_f32_pct"), 97.0);
    QVERIFY(std::isnan(value("greedy_agreement_pct")));  // no prompts were scored
    // Quality is shown, never ranked (a quantized perplexity a hair under F32's is noise); speed is.
    for (const SummaryField& f : summary_fields()) {
      const bool quality = f.key == "perplexity" || f.key == "perplexity_vs_f32_pct" ||
                           f.key == "kl_vs_f32" || f.key == "top1_vs_f32_pct" ||
                           f.key == "greedy_agreement_pct";
      QVERIFY2(f.ranked != quality, f.key.c_str());
    }

    // CSV: header, one row, values at full precision, NaN empty, the label quoted.
    std::istringstream csv(summary_csv({r}));
    std::string header, row, extra;
    std::getline(csv, header);
    std::getline(csv, row);
    QVERIFY(!std::getline(csv, extra));
    std::string want_header = "run,label,repeat";
    for (const auto& k : want) want_header += "," + k;
    want_header += ",status,error";  // after the figures, so they keep their columns
    QCOMPARE(header, want_header);
    QVERIFY2(row.rfind("0,\"f16, \"\"static\"\"\",1,2.6000000000000001,20,", 0) == 0, row.c_str());
    QVERIFY2(row.find(",1125,") != std::string::npos, row.c_str());
    // mean batch, decode % (empty), perplexity, vs F32, KL, top-1, agreement (empty), status, error (empty)
    const std::string tail = ",1.75,,12.5,4.1666666666666741,0.0041999999999999997,97,,ok,";
    QVERIFY2(row.size() > tail.size() && row.substr(row.size() - tail.size()) == tail, row.c_str());

    // A failed run shows no figures, and its row says why (quoted where the reason has a comma).
    r.error = "model did not load: bad, truncated";
    QVERIFY(std::isnan(value("generation_tokens_per_s")));
    std::istringstream failed(summary_csv({r}));
    std::getline(failed, header);
    std::getline(failed, row);
    const std::string why = ",failed,\"model did not load: bad, truncated\"";
    QVERIFY2(row.size() > why.size() && row.substr(row.size() - why.size()) == why, row.c_str());
  }
};

QTEST_APPLESS_MAIN(TestBenchMetrics)
#include "test_bench_metrics.moc"
