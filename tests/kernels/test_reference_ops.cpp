// The reference ops against small cases whose answers are worked out by hand,
// and the scalar dtype conversions against their definitions.
#include <QtTest/QtTest>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/dtype.h"
#include "kernels/reference/ops.h"

using namespace brisk;

namespace {

bool close(float a, float b, float tol = 1e-6f) { return std::fabs(a - b) <= tol; }

QString vec_str(const float* v, int n) {
  QStringList parts;
  for (int i = 0; i < n; ++i) parts << QString::number(v[i], 'g', 9);
  return "[" + parts.join(", ") + "]";
}

#define EXPECT_VEC(got, want, n, tol)                                                                    \
  do {                                                                                                   \
    for (int i_ = 0; i_ < (n); ++i_)                                                                     \
      QVERIFY2(                                                                                          \
          close((got)[i_], (want)[i_], (tol)),                                                           \
          qPrintable(                                                                                    \
              QString("index %1: got %2, want %3").arg(i_).arg(vec_str(got, n)).arg(vec_str(want, n)))); \
  } while (0)

float bits_to_float(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

// The value an fp16 bit pattern denotes, straight from the IEEE definition.
double fp16_value(uint16_t h) {
  const int exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  const double sign = (h & 0x8000) ? -1.0 : 1.0;
  if (exp == 0) return sign * std::ldexp((double)mant, -24);
  return sign * std::ldexp((double)(1024 + mant), exp - 25);
}

}  // namespace

class TestReferenceOps : public QObject {
  Q_OBJECT

 private slots:
  void matmul_2x3_f32() {
    const float x[] = {1, 2, 3, 4, 5, 6};   // [2, 3]
    const float w[] = {1, 0, -1, 2, 1, 0};  // [2, 3]: rows are outputs
    float y[4];
    ref::matmul(y, x, w, DType::F32, 2, 2, 3);
    const float want[] = {-2, 4, -2, 13};
    EXPECT_VEC(y, want, 4, 0.0f);
  }

  void matmul_2x3_half_types() {
    // Small integers are exact in F16 and BF16, so the answer is unchanged.
    const float x[] = {1, 2, 3, 4, 5, 6};
    const float wf[] = {1, 0, -1, 2, 1, 0};
    uint16_t wh[6], wb[6];
    for (int i = 0; i < 6; ++i) {
      wh[i] = fp32_to_fp16(wf[i]);
      wb[i] = fp32_to_bf16(wf[i]);
    }
    const float want[] = {-2, 4, -2, 13};
    float y[4];
    ref::matmul(y, x, wh, DType::F16, 2, 2, 3);
    EXPECT_VEC(y, want, 4, 0.0f);
    ref::matmul(y, x, wb, DType::BF16, 2, 2, 3);
    EXPECT_VEC(y, want, 4, 0.0f);
  }

  void matmul_q8_0() {
    // Row 0: scale 0.5, q_i = i - 16, so w_i = (i - 16) / 2.
    // Row 1: scale 2, q_i = 1 for i < 4 else 0.
    BlockQ8_0 w[2];
    w[0].d = fp32_to_fp16(0.5f);
    w[1].d = fp32_to_fp16(2.0f);
    for (int i = 0; i < 32; ++i) {
      w[0].qs[i] = (int8_t)(i - 16);
      w[1].qs[i] = i < 4 ? 1 : 0;
    }
    std::vector<float> x(32, 1.0f);
    x[3] = 10.0f;
    float y[2];
    ref::matmul(y, x.data(), w, DType::Q8_0, 1, 2, 32);
    // Row 0: 0.5 * (sum(i - 16) + 9 * (3 - 16)) = 0.5 * (-16 - 117)
    // Row 1: 2 * (1 + 1 + 1 + 10)
    const float want[] = {-66.5f, 26.0f};
    EXPECT_VEC(y, want, 2, 0.0f);
  }

  void embed_all_types() {
    const float table[] = {1, 2, 3, 4, 5, 6, 7, 8};  // [4, 2]
    uint16_t th[8], tb[8];
    for (int i = 0; i < 8; ++i) {
      th[i] = fp32_to_fp16(table[i]);
      tb[i] = fp32_to_bf16(table[i]);
    }
    const int32_t ids[] = {3, 0, 3};
    const float want[] = {7, 8, 1, 2, 7, 8};
    float y[6];
    ref::embed(y, table, DType::F32, ids, 3, 2);
    EXPECT_VEC(y, want, 6, 0.0f);
    ref::embed(y, th, DType::F16, ids, 3, 2);
    EXPECT_VEC(y, want, 6, 0.0f);
    ref::embed(y, tb, DType::BF16, ids, 3, 2);
    EXPECT_VEC(y, want, 6, 0.0f);

    BlockQ8_0 q[2];
    for (int r = 0; r < 2; ++r) {
      q[r].d = fp32_to_fp16(0.25f * (r + 1));
      for (int i = 0; i < 32; ++i) q[r].qs[i] = (int8_t)(i * (r ? -1 : 1));
    }
    const int32_t qids[] = {1};
    std::vector<float> yq(32);
    ref::embed(yq.data(), q, DType::Q8_0, qids, 1, 32);
    for (int i = 0; i < 32; ++i) QCOMPARE(yq[i], -0.5f * i);
  }

  void rmsnorm_1234() {
    const float x[] = {1, 2, 3, 4, 2, 2, 2, 2};
    const float w[] = {1, 1, 1, 2};
    float y[8];
    ref::rmsnorm(y, x, w, 2, 4, 0.0f);
    // mean(x^2) = 30 / 4 = 7.5; 1 / sqrt(7.5) = 0.365148372. Second row: rms 2.
    const float want[] = {0.365148372f, 0.730296743f, 1.095445115f, 2.921186973f, 1, 1, 1, 2};
    EXPECT_VEC(y, want, 8, 1e-6f);
  }

  void rmsnorm_eps() {
    const float x[] = {3, 4};  // mean(x^2) = 12.5; with eps 3.5 -> rms 4
    const float w[] = {1, 1};
    float y[2];
    ref::rmsnorm(y, x, w, 1, 2, 3.5f);
    const float want[] = {0.75f, 1.0f};
    EXPECT_VEC(y, want, 2, 1e-7f);
  }

  void rope_position_zero_is_identity() {
    std::vector<float> x(2 * 3 * 8);
    for (size_t i = 0; i < x.size(); ++i) x[i] = 0.1f * (float)i - 2.0f;
    const std::vector<float> before = x;
    const int32_t pos[] = {0, 0};
    ref::rope(x.data(), pos, 2, 3, 8, 8, 10000.0f);
    QCOMPARE(x, before);
  }

  void rope_known_positions() {
    // head_dim 6, rot_dim 4: pair 0 has freq 1, pair 1 has freq 10000^-0.5 = 0.01,
    // dims 4 and 5 are not rotated.
    float x[] = {1, 0, 0, 1, 5, 6,   // token at position 1
                 1, 0, 0, 1, 5, 6};  // token at position 2
    const int32_t pos[] = {1, 2};
    ref::rope(x, pos, 2, 1, 6, 4, 10000.0f);
    // clang-format off
    const float want[] = {
        0.540302306f,  0.841470985f,  // (cos 1, sin 1)
        -0.009999833f, 0.999950000f,  // (-sin 0.01, cos 0.01)
        5, 6,
        -0.416146837f, 0.909297427f,  // (cos 2, sin 2)
        -0.019998667f, 0.999800007f,  // (-sin 0.02, cos 0.02)
        5, 6};
    // clang-format on
    EXPECT_VEC(x, want, 12, 1e-6f);
  }

  void rope_rotates_each_head() {
    float x[] = {2, 0, 0, 3};  // two heads of dim 2
    const int32_t pos[] = {3};
    ref::rope(x, pos, 1, 2, 2, 2, 10000.0f);
    const float c = std::cos(3.0f), s = std::sin(3.0f);
    const float want[] = {2 * c, 2 * s, -3 * s, 3 * c};
    EXPECT_VEC(x, want, 4, 1e-6f);
  }

  void silu_mul_values() {
    const float g[] = {0, 1, -1, 2, -30};
    const float u[] = {5, 2, 2, 1, 1};
    float y[5];
    ref::silu_mul(y, g, u, 5);
    // silu(1) = 1 / (1 + e^-1) = 0.731058579; silu(-1) = -0.268941421;
    // silu(2) = 1.761594156; silu(-30) = -30 e^-30 / (1 + e^-30) ~ -2.8e-12
    const float want[] = {0, 1.462117157f, -0.537882842f, 1.761594156f, 0};
    EXPECT_VEC(y, want, 5, 1e-6f);
  }

  void add_values() {
    const float a[] = {1, -2, 3.5f}, b[] = {0.5f, 2, -1};
    float y[3];
    ref::add(y, a, b, 3);
    const float want[] = {1.5f, 0, 2.5f};
    EXPECT_VEC(y, want, 3, 0.0f);
  }

  void kv_write_slots() {
    std::vector<float> kc(5 * 2, -1.0f), vc(5 * 2, -1.0f);
    const float k[] = {1, 2, 3, 4}, v[] = {5, 6, 7, 8};
    const int32_t slot_ids[] = {4, 1};
    ref::kv_write(kc.data(), vc.data(), k, v, slot_ids, 2, 2);
    const float want_k[] = {-1, -1, 3, 4, -1, -1, -1, -1, 1, 2};
    const float want_v[] = {-1, -1, 7, 8, -1, -1, -1, -1, 5, 6};
    EXPECT_VEC(kc.data(), want_k, 10, 0.0f);
    EXPECT_VEC(vc.data(), want_v, 10, 0.0f);
  }

  void attention_single_key_returns_v() {
    // Decode of a sequence holding one token, stored in block 2 (block_size 4 -> slot 8).
    std::vector<float> kc(12 * 3, 9.0f), vc(12 * 3, 9.0f);
    const float k0[] = {0.3f, -1.0f, 2.0f}, v0[] = {1.5f, -2.5f, 4.0f};
    std::memcpy(&kc[8 * 3], k0, sizeof k0);
    std::memcpy(&vc[8 * 3], v0, sizeof v0);
    const float q[] = {1, 2, 3};
    const int32_t qs[] = {0, 1}, lens[] = {1}, table[] = {2, 0};
    PagedAttentionArgs a;
    a.num_seqs = 1;
    a.query_start = qs;
    a.seq_lens = lens;
    a.block_tables = table;
    a.max_blocks_per_seq = 2;
    a.block_size = 4;
    a.n_heads = 1;
    a.n_kv_heads = 1;
    a.head_dim = 3;
    a.scale = 0.7f;
    float out[3];
    ref::paged_attention(out, q, kc.data(), vc.data(), a);
    EXPECT_VEC(out, v0, 3, 1e-7f);
  }

  void attention_causal_prefill_and_paging() {
    // One sequence, a prefill of 3 tokens, block_size 2, blocks {3, 1}: positions
    // 0 and 1 live in slot_ids 6 and 7, position 2 in slot 2. All keys are equal, so
    // each row averages the values it may see.
    const int slot_ids = 8, D = 2;
    std::vector<float> kc(slot_ids * D, 0.0f), vc(slot_ids * D, 100.0f);
    const float v[3][2] = {{1, 2}, {3, 4}, {8, -6}};
    const int where[3] = {6, 7, 2};
    for (int t = 0; t < 3; ++t) {
      kc[where[t] * D] = 1.0f;
      vc[where[t] * D] = v[t][0];
      vc[where[t] * D + 1] = v[t][1];
    }
    const float q[3 * D] = {1, 1, -2, 0.5f, 3, 3};
    const int32_t qs[] = {0, 3}, lens[] = {3}, table[] = {3, 1};
    PagedAttentionArgs a;
    a.num_seqs = 1;
    a.query_start = qs;
    a.seq_lens = lens;
    a.block_tables = table;
    a.max_blocks_per_seq = 2;
    a.block_size = 2;
    a.n_heads = 1;
    a.n_kv_heads = 1;
    a.head_dim = D;
    a.scale = 1.0f;
    float out[3 * D];
    ref::paged_attention(out, q, kc.data(), vc.data(), a);
    const float want[] = {1, 2, 2, 3, 4, 0};
    EXPECT_VEC(out, want, 6, 1e-6f);
  }

  void attention_softmax_weights_and_gqa() {
    // Decode row at position 1 (seq_len 2). Key 1 scores ln 3 higher than key 0,
    // so the weights are 1/4 and 3/4. Two query heads share the one KV head;
    // head 1's query is zero, so it weighs both keys equally.
    const int D = 2;
    std::vector<float> kc(2 * D), vc(2 * D);
    const float l3 = std::log(3.0f);
    kc = {0, 0, l3, 0};
    vc = {4, 8, 0, -4};
    const float q[] = {1, 0, 0, 0};
    const int32_t qs[] = {0, 1}, lens[] = {2}, table[] = {0};
    PagedAttentionArgs a;
    a.num_seqs = 1;
    a.query_start = qs;
    a.seq_lens = lens;
    a.block_tables = table;
    a.max_blocks_per_seq = 1;
    a.block_size = 2;
    a.n_heads = 2;
    a.n_kv_heads = 1;
    a.head_dim = D;
    a.scale = 1.0f;
    float out[4];
    ref::paged_attention(out, q, kc.data(), vc.data(), a);
    const float want[] = {1, -1, 2, 2};
    EXPECT_VEC(out, want, 4, 1e-6f);
  }

  void fp16_decodes_by_definition() {
    for (uint32_t h = 0; h < 65536; ++h) {
      if (((h >> 10) & 0x1f) == 0x1f) continue;
      const float f = fp16_to_fp32((uint16_t)h);
      QVERIFY2((double)f == fp16_value((uint16_t)h), qPrintable(QString::number(h, 16)));
    }
    QVERIFY(std::isinf(fp16_to_fp32(0x7c00)) && fp16_to_fp32(0x7c00) > 0);
    QVERIFY(std::isinf(fp16_to_fp32(0xfc00)) && fp16_to_fp32(0xfc00) < 0);
    QVERIFY(std::isnan(fp16_to_fp32(0x7e00)));
    QCOMPARE(fp16_to_fp32(0x3c00), 1.0f);
    QCOMPARE(fp16_to_fp32(0xc000), -2.0f);
    QCOMPARE(fp16_to_fp32(0x7bff), 65504.0f);
    QCOMPARE(fp16_to_fp32(0x0001), std::ldexp(1.0f, -24));
  }

  void fp16_round_trips() {
    for (uint32_t h = 0; h < 65536; ++h) {
      if (((h >> 10) & 0x1f) == 0x1f) continue;  // inf and NaN checked separately
      QCOMPARE(fp32_to_fp16(fp16_to_fp32((uint16_t)h)), (uint16_t)h);
    }
    QCOMPARE(fp32_to_fp16(fp16_to_fp32(0x7c00)), (uint16_t)0x7c00);
    QCOMPARE(fp32_to_fp16(fp16_to_fp32(0xfc00)), (uint16_t)0xfc00);
    const uint16_t nan = fp32_to_fp16(fp16_to_fp32(0x7e00));
    QVERIFY(((nan >> 10) & 0x1f) == 0x1f && (nan & 0x3ff) != 0);
  }

  void bf16_round_trips() {
    for (uint32_t h = 0; h < 65536; ++h) {
      const float f = bf16_to_fp32((uint16_t)h);
      if (std::isnan(f)) {
        QVERIFY(std::isnan(bf16_to_fp32(fp32_to_bf16(f))));
        continue;
      }
      QCOMPARE(fp32_to_bf16(f), (uint16_t)h);
    }
  }

  void fp32_to_fp16_rounding() {
    const float u = std::ldexp(1.0f, -11);  // half an fp16 ulp at 1.0
    QCOMPARE(fp32_to_fp16(1.0f), (uint16_t)0x3c00);
    QCOMPARE(fp32_to_fp16(1.0f + u), (uint16_t)0x3c00);      // tie -> even
    QCOMPARE(fp32_to_fp16(1.0f + 3 * u), (uint16_t)0x3c02);  // tie -> even (up)
    QCOMPARE(fp32_to_fp16(1.0f + u + std::ldexp(1.0f, -20)), (uint16_t)0x3c01);
    QCOMPARE(fp32_to_fp16(1.0f + u - std::ldexp(1.0f, -20)), (uint16_t)0x3c00);
    QCOMPARE(fp32_to_fp16(-2.0f), (uint16_t)0xc000);
    QCOMPARE(fp32_to_fp16(0.1f), (uint16_t)0x2e66);  // 0.0999755859375
    QCOMPARE(fp32_to_fp16(1.0f / 3.0f), (uint16_t)0x3555);
    QCOMPARE(fp32_to_fp16(65504.0f), (uint16_t)0x7bff);
    QCOMPARE(fp32_to_fp16(65519.0f), (uint16_t)0x7bff);  // below the tie with 65536
    QCOMPARE(fp32_to_fp16(65520.0f), (uint16_t)0x7c00);  // tie rounds to even = inf
    QCOMPARE(fp32_to_fp16(1e6f), (uint16_t)0x7c00);
    QCOMPARE(fp32_to_fp16(-1e6f), (uint16_t)0xfc00);
    // Subnormals: the unit is 2^-24.
    QCOMPARE(fp32_to_fp16(std::ldexp(1.0f, -24)), (uint16_t)0x0001);
    QCOMPARE(fp32_to_fp16(std::ldexp(1.0f, -25)), (uint16_t)0x0000);     // tie -> even 0
    QCOMPARE(fp32_to_fp16(std::ldexp(1.5f, -25)), (uint16_t)0x0001);     // above tie
    QCOMPARE(fp32_to_fp16(std::ldexp(3.0f, -25)), (uint16_t)0x0002);     // tie -> even 2
    QCOMPARE(fp32_to_fp16(std::ldexp(1023.5f, -24)), (uint16_t)0x0400);  // tie -> normal
    QCOMPARE(fp32_to_fp16(1e-10f), (uint16_t)0x0000);
    QCOMPARE(fp32_to_fp16(-1e-10f), (uint16_t)0x8000);
    QCOMPARE(fp32_to_fp16(-0.0f), (uint16_t)0x8000);
    QCOMPARE(fp32_to_fp16(INFINITY), (uint16_t)0x7c00);
    const uint16_t nan = fp32_to_fp16(NAN);
    QVERIFY(((nan >> 10) & 0x1f) == 0x1f && (nan & 0x3ff) != 0);
  }

  void fp32_to_fp16_is_nearest() {
    // For random finite floats in the fp16 range, no other fp16 value is closer.
    std::mt19937 rng(7);
    std::uniform_int_distribution<uint32_t> mantissa(0, 0x7fffff);
    std::uniform_int_distribution<int> exponent(-28, 15);  // subnormal half .. near 65504
    for (int i = 0; i < 200000; ++i) {
      const uint32_t sign = (i & 1) ? 0x80000000u : 0u;
      const float f = bits_to_float(sign | (uint32_t)(exponent(rng) + 127) << 23 | mantissa(rng));
      if (!std::isfinite(f) || std::fabs(f) > 65504.0f) continue;
      const uint16_t h = fp32_to_fp16(f);
      const double err = std::fabs(fp16_value(h) - f);
      const uint16_t mag = h & 0x7fff;
      for (int delta : {-1, 1}) {
        const int other = (int)mag + delta;
        if (other < 0 || other > 0x7bff) continue;
        const double other_err = std::fabs(fp16_value((uint16_t)((h & 0x8000) | other)) - f);
        QVERIFY2(err < other_err || (err == other_err && (h & 1) == 0),
                 qPrintable(QString("%1 -> %2").arg((double)f, 0, 'g', 10).arg(h, 0, 16)));
      }
    }
  }

  void fp32_to_bf16_rounding() {
    const float u = std::ldexp(1.0f, -8);  // half a bf16 ulp at 1.0
    QCOMPARE(fp32_to_bf16(1.0f + u), (uint16_t)0x3f80);
    QCOMPARE(fp32_to_bf16(1.0f + 3 * u), (uint16_t)0x3f82);
    QCOMPARE(fp32_to_bf16(1.0f + u + std::ldexp(1.0f, -16)), (uint16_t)0x3f81);
    QCOMPARE(fp32_to_bf16(-3.0f), (uint16_t)0xc040);
    QVERIFY(std::isnan(bf16_to_fp32(fp32_to_bf16(NAN))));
  }

  void row_bytes_per_type() {
    QCOMPARE(row_bytes(DType::F32, 10), (size_t)40);
    QCOMPARE(row_bytes(DType::F16, 10), (size_t)20);
    QCOMPARE(row_bytes(DType::BF16, 10), (size_t)20);
    QCOMPARE(row_bytes(DType::Q8_0, 64), (size_t)68);
  }
};

QTEST_APPLESS_MAIN(TestReferenceOps)
#include "test_reference_ops.moc"
