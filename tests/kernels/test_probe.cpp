// The machine probes (kernels/cpu/probe): their inner loops do exactly the
// work they are credited with, on every ISA this CPU has, and the measured
// figures land in a sane range. Speeds are only checked against bounds no
// working machine falls outside (the box running this is shared and busy).
//
// Tolerances: stream_sum is integer arithmetic and must match exactly;
// fma_chains must match the closed form of its recurrence to 1e-4 relative
// (with a = 0.99 the recurrence contracts, so F32 rounding stays near 1e-6).
#include <QtTest/QtTest>
#include <algorithm>
#include <cmath>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "kernels/cpu/isa.h"
#include "kernels/cpu/probe.h"
#include "kernels/cpu/thread_pool.h"

using namespace brisk;
using brisk::cpu::Isa;

namespace {

std::vector<Isa> isas_here() {
  std::vector<Isa> v{Isa::Scalar};
  if ((int)cpu::detected_isa() >= (int)Isa::Avx2) v.push_back(Isa::Avx2);
  if (cpu::detected_isa() == Isa::Avx512) v.push_back(Isa::Avx512);
  return v;
}

// Puts the kernels back on the detected ISA however a test ends.
struct IsaGuard {
  Isa saved = cpu::active_isa();
  ~IsaGuard() { cpu::set_isa(saved); }
};

bool has(const std::vector<std::string>& v, const char* name) {
  return std::find(v.begin(), v.end(), name) != v.end();
}

}  // namespace

class TestProbe : public QObject {
  Q_OBJECT

 private slots:
  void streamSumReadsEveryElement() {
    std::mt19937 rng(7);
    std::uniform_int_distribution<uint32_t> dist(1, 0xffffffffu);
    for (size_t n : {size_t{0}, size_t{1}, size_t{7}, size_t{15}, size_t{17}, size_t{63}, size_t{64},
                     size_t{65}, size_t{1000}, size_t{100003}}) {
      std::vector<uint32_t> data(n + 1);
      for (auto& x : data) x = dist(rng);
      uint32_t want = 0;
      for (size_t i = 0; i < n; ++i) want += data[i];  // wraps mod 2^32, as stream_sum does
      for (Isa isa : isas_here()) {
        // Start one element in, so the vector loads are unaligned too.
        const uint32_t got = cpu::stream_sum(data.data() + 1, n, isa);
        uint32_t want_shifted = 0;
        for (size_t i = 1; i <= n; ++i) want_shifted += data[i];
        QVERIFY2(got == want_shifted, qPrintable(QStringLiteral("%1, n=%2: %3 != %4")
                                                     .arg(cpu::isa_name(isa))
                                                     .arg(n)
                                                     .arg(got)
                                                     .arg(want_shifted)));
        QCOMPARE(cpu::stream_sum(data.data(), n, isa), want);
      }
    }
  }

  void fmaChainsDoEveryStep() {
    const float a = 0.99f, b = 0.01f;
    for (Isa isa : isas_here()) {
      const int chains = cpu::fma_chains_per_thread(isa);
      const int lanes = isa == Isa::Scalar ? 1 : cpu::probe_vector_bits(isa) / 32;
      QVERIFY(chains >= 8);
      for (int64_t iters : {int64_t{0}, int64_t{1}, int64_t{7}, int64_t{8}, int64_t{300}}) {
        for (float x0 : {0.0f, 3.0f}) {
          // x_n = a^n (x_0 - f) + f, f = b / (1 - a): the recurrence's closed form.
          const double f = (double)b / (1.0 - (double)a), an = std::pow((double)a, (double)iters);
          double want = 0;
          for (int c = 0; c < chains; ++c)
            for (int l = 0; l < lanes; ++l) want += an * ((double)x0 + c + l / 64.0 - f) + f;
          const double got = cpu::fma_chains(iters, a, b, x0, isa);
          QVERIFY2(std::fabs(got - want) <= 1e-4 * std::fabs(want),
                   qPrintable(QStringLiteral("%1, iters=%2, x0=%3: %4 != %5")
                                  .arg(cpu::isa_name(isa))
                                  .arg(iters)
                                  .arg(x0)
                                  .arg(got, 0, 'g', 9)
                                  .arg(want, 0, 'g', 9)));
        }
      }
    }
  }

  void bandwidthIsSane() {
    IsaGuard guard;
    for (int threads : {1, 2}) {
      ThreadPool pool(threads);
      for (Isa isa : isas_here()) {
        cpu::set_isa(isa);
        // 16 MiB keeps the test quick; it may be served partly from cache,
        // hence the generous upper bound.
        const double bw = cpu::measure_read_bandwidth(pool, size_t{16} << 20, 3);
        QVERIFY2(bw >= 0.5e9 && bw <= 2e12, qPrintable(QStringLiteral("%1 threads, %2: %3 bytes/s")
                                                           .arg(threads)
                                                           .arg(cpu::isa_name(isa))
                                                           .arg(bw, 0, 'g', 4)));
      }
    }
    // A request below one block still reads one whole block.
    ThreadPool pool(1);
    QVERIFY(cpu::measure_read_bandwidth(pool, 100, 1) > 0);
  }

  void fmaPeakIsSane() {
    IsaGuard guard;
    for (int threads : {1, 2}) {
      ThreadPool pool(threads);
      for (Isa isa : isas_here()) {
        cpu::set_isa(isa);
        const double flops = cpu::measure_fma_peak(pool, 2);
        // No core does less than 0.5 GFLOP/s or more than 1 TFLOP/s in FP32.
        QVERIFY2(flops >= 0.5e9 && flops <= threads * 1e12,
                 qPrintable(QStringLiteral("%1 threads, %2: %3 FLOP/s")
                                .arg(threads)
                                .arg(cpu::isa_name(isa))
                                .arg(flops, 0, 'g', 4)));
      }
    }
  }

  void featuresAgreeWithIsa() {
    const std::vector<std::string> f = cpu::cpu_features();
    const std::set<std::string> known{"sse4_2",      "avx",         "avx2",     "fma",      "f16c",
                                      "avx512f",     "avx512bw",    "avx512vl", "avx512dq", "avx512_vnni",
                                      "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_int8",
                                      "amx_bf16",    "avx512vbmi"};
    QCOMPARE(std::set<std::string>(f.begin(), f.end()).size(), f.size());  // no duplicates
    for (const auto& name : f) QVERIFY2(known.count(name), name.c_str());
    if ((int)cpu::detected_isa() >= (int)Isa::Avx2) {
      QVERIFY(has(f, "avx2"));
      QVERIFY(has(f, "fma"));
      QVERIFY(has(f, "f16c"));
    }
    if (cpu::detected_isa() == Isa::Avx512)
      for (const char* name : {"avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16"})
        QVERIFY2(has(f, name), name);
    // The reverse: the kernels pick the widest ISA whose features are all present.
    if (has(f, "avx2") && has(f, "fma") && has(f, "f16c"))
      QVERIFY((int)cpu::detected_isa() >= (int)Isa::Avx2);
  }

  void describeCpu() {
    const cpu::CpuDescription d = cpu::describe_cpu();
    QVERIFY(!d.model.empty());
    QVERIFY(d.logical_cpus >= 1);
    QVERIFY(d.physical_cores >= 1);
    QCOMPARE(d.physical_cores, ThreadPool::physical_cores());
    QVERIFY(d.features == cpu::cpu_features());
#ifdef __linux__
    QVERIFY(d.model != "unknown");
    QVERIFY(d.memory_bytes >= (uint64_t{64} << 20));
#endif
  }
};

QTEST_APPLESS_MAIN(TestProbe)
#include "test_probe.moc"
