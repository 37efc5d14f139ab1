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

}  // namespace detail
}  // namespace brisk::cuda
