// Weights in transparent huge pages: the buffer itself (alignment, moves),
// and the CPU backend's copies — large weights copied (where the kernel
// grants huge pages), small ones used in place, and the same results bit
// for bit either way.
#include <QtTest>
#include <cstring>
#include <random>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/huge_page_buffer.h"
#include "model/model_weights.h"

using namespace brisk;

class TestHugePageBuffer : public QObject {
  Q_OBJECT

  static WeightTensor tensor(const std::vector<float>& v, int64_t rows, int64_t cols) {
    WeightTensor w;
    w.name = "w";
    w.data = v.data();
    w.dtype = DType::F32;
    w.rows = rows;
    w.cols = cols;
    return w;
  }

 private slots:
  void alignedWritableAndMovable() {
    HugePageBuffer a(3u << 20);
    QCOMPARE(a.size(), size_t(3u << 20));
    QVERIFY(a.data() != nullptr);
    QCOMPARE((uintptr_t)a.data() % HugePageBuffer::kHugePage, uintptr_t(0));
    std::memset(a.data(), 0x5a, a.size());
    void* p = a.data();
    HugePageBuffer b(std::move(a));
    QCOMPARE(b.data(), p);
    QVERIFY(a.data() == nullptr);
    QCOMPARE(static_cast<unsigned char*>(b.data())[b.size() - 1], (unsigned char)0x5a);
    HugePageBuffer c(0);
    c = std::move(b);
    QCOMPARE(c.data(), p);
    QVERIFY(HugePageBuffer::memory_available() > 0);
  }

  void largeWeightsAreCopiedAndGiveTheSameResults() {
    const int N = 1024, K = 1024, M = 3;  // 4 MiB of F32: at least one huge page
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> u(-1, 1);
    std::vector<float> big((size_t)N * K), small(64 * 64), x((size_t)M * K);
    for (float& f : big) f = u(rng);
    for (float& f : small) f = u(rng);
    for (float& f : x) f = u(rng);
    auto on = make_cpu_backend(2, false, true), off = make_cpu_backend(2, false, false);
    const Tensor won = on->weight(tensor(big, N, K)), woff = off->weight(tensor(big, N, K));
    QCOMPARE(woff.handle, (void*)big.data());  // off: in place
    if (HugePageBuffer::available()) {
      QVERIFY2(won.handle != big.data(), "with huge pages granted, a 4 MiB weight is copied");
      QCOMPARE((uintptr_t)won.handle % HugePageBuffer::kHugePage, uintptr_t(0));
      QVERIFY(std::memcmp(won.handle, big.data(), big.size() * sizeof(float)) == 0);
    } else {
      QCOMPARE(won.handle, (void*)big.data());  // no huge pages: nothing gained by a copy
    }
    QCOMPARE(on->weight(tensor(small, 64, 64)).handle, (void*)small.data());  // under a huge page: in place

    std::vector<float> yon((size_t)M * N), yoff((size_t)M * N);
    for (auto* pair : {&on, &off}) {
      Backend& be = **pair;
      const Tensor w = pair == &on ? won : woff;
      Tensor tx = be.alloc(DType::F32, M, K), ty = be.alloc(DType::F32, M, N);
      be.upload(tx, x.data(), M);
      be.matmul(ty, tx, w, M);
      be.download(pair == &on ? yon.data() : yoff.data(), ty, M);
    }
    QVERIFY(std::memcmp(yon.data(), yoff.data(), yon.size() * sizeof(float)) == 0);
  }
};

QTEST_APPLESS_MAIN(TestHugePageBuffer)
#include "test_huge_page_buffer.moc"
