#include "kernels/cpu/isa.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace brisk::cpu {
namespace {

Isa detect() {
  __builtin_cpu_init();
  const bool avx2 =
      __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  if (!avx2) return Isa::Scalar;
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
                      __builtin_cpu_supports("avx512bf16");
  return avx512 ? Isa::Avx512 : Isa::Avx2;
}

Isa initial() {
  Isa isa = detected_isa();
  if (const char* env = std::getenv("BRISK_ISA")) {
    Isa want = isa;
    if (!std::strcmp(env, "scalar")) want = Isa::Scalar;
    if (!std::strcmp(env, "avx2")) want = Isa::Avx2;
    if (!std::strcmp(env, "avx512")) want = Isa::Avx512;
    if ((int)want < (int)isa) isa = want;
  }
  return isa;
}

std::atomic<int>& active() {
  static std::atomic<int> a{(int)initial()};
  return a;
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar:
      return "scalar";
    case Isa::Avx2:
      return "avx2";
    case Isa::Avx512:
      return "avx512";
  }
  return "?";
}

Isa detected_isa() {
  static const Isa d = detect();
  return d;
}

Isa active_isa() { return (Isa)active().load(std::memory_order_relaxed); }

Isa set_isa(Isa requested) {
  const Isa isa = (int)requested < (int)detected_isa() ? requested : detected_isa();
  active().store((int)isa);
  return isa;
}

}  // namespace brisk::cpu
