// Launch errors, and the device facts launches are planned from.
#include <atomic>

#include "kernels/cuda/common.cuh"

namespace brisk::cuda {

std::string cuda_last_error() {
  const cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? std::string() : std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
}

namespace detail {

int sm_count() {
  // Per device, queried once: launch functions run on every step (and inside graph captures).
  constexpr int kMaxDevices = 64;
  static std::atomic<int> cache[kMaxDevices] = {};
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= kMaxDevices) return 1;
  int n = cache[dev].load(std::memory_order_relaxed);
  if (n > 0) return n;
  if (cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || n <= 0) n = 1;
  cache[dev].store(n, std::memory_order_relaxed);
  return n;
}

namespace {
std::atomic<bool> g_dependent_launch{true};
__global__ void arch_probe_kernel() {}
}  // namespace

bool dependent_launch() {
  if (!g_dependent_launch.load(std::memory_order_relaxed)) return false;
  // Per device, once: the code that runs was compiled for compute_90 or
  // later, so it holds the wait instruction (ptxVersion, not binaryVersion:
  // an sm_80-only build runs on Hopper as JIT-compiled compute_80 code,
  // whose binaryVersion is 90 but which has no wait). Compute capability
  // 9.0+ follows. The backend primes this outside any graph capture.
  constexpr int kMaxDevices = 64;
  static std::atomic<int> cache[kMaxDevices] = {};  // 0 unknown, 1 no, 2 yes
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= kMaxDevices) return false;
  int c = cache[dev].load(std::memory_order_relaxed);
  if (c == 0) {
    cudaFuncAttributes fa = {};
    const cudaError_t e = cudaFuncGetAttributes(&fa, arch_probe_kernel);
    if (e != cudaSuccess) cudaGetLastError();  // this call's own error only: an earlier one stays reported
    c = e == cudaSuccess && fa.ptxVersion >= 90 ? 2 : 1;
    cache[dev].store(c, std::memory_order_relaxed);
  }
  return c == 2;
}

}  // namespace detail

void set_dependent_launch(bool on) { detail::g_dependent_launch.store(on, std::memory_order_relaxed); }
bool dependent_launch_active() { return detail::dependent_launch(); }

}  // namespace brisk::cuda
