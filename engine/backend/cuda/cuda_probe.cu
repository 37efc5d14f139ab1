// Whether a CUDA device can be used, and what it is. A machine without a
// driver, with a driver older than the runtime, or without a device is
// normal: the probe says which, in words, and never throws.
#include <cuda_runtime.h>

#include <mutex>

#include "backend/cuda/cuda_backend.h"

namespace brisk {

namespace {

std::string why(cudaError_t e) {
  switch (e) {
    case cudaErrorNoDevice:
      return "no CUDA device found";
    case cudaErrorInsufficientDriver: {
      int drv = 0, rt = 0;
      cudaDriverGetVersion(&drv);
      cudaRuntimeGetVersion(&rt);
      if (drv == 0) return "no NVIDIA driver installed (libcuda not found)";
      return "the NVIDIA driver (CUDA " + std::to_string(drv / 1000) + "." + std::to_string(drv % 1000 / 10) +
             ") is older than the CUDA runtime Brisk was built with (" + std::to_string(rt / 1000) + "." +
             std::to_string(rt % 1000 / 10) + ")";
    }
    default:
      return std::string("CUDA initialisation failed: ") + cudaGetErrorName(e) + " (" +
             cudaGetErrorString(e) + ")";
  }
}

CudaProbe probe_once() {
  CudaProbe p;
  cudaDriverGetVersion(&p.driver_version);
  cudaRuntimeGetVersion(&p.runtime_version);
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    p.reason = e != cudaSuccess ? why(e) : "no CUDA device found";
    cudaGetLastError();  // the probe's failure must not look like a later launch's
    return p;
  }
  cudaDeviceProp prop{};
  if ((e = cudaGetDeviceProperties(&prop, 0)) != cudaSuccess) {
    p.reason = why(e);
    cudaGetLastError();
    return p;
  }
  p.name = prop.name;
  p.cc_major = prop.major;
  p.cc_minor = prop.minor;
  p.sm_count = prop.multiProcessorCount;
  p.total_bytes = (int64_t)prop.totalGlobalMem;
  p.fp8_supported = prop.major * 10 + prop.minor >= 89;
  if (prop.major < 8) {
    p.reason = p.name + " is sm_" + std::to_string(prop.major) + std::to_string(prop.minor) +
               ": the CUDA backend needs sm_80 or newer";
    return p;
  }
  p.available = true;
  return p;
}

}  // namespace

CudaProbe cuda_probe() {
  static std::once_flag once;
  static CudaProbe cached;
  std::call_once(once, [] { cached = probe_once(); });
  CudaProbe p = cached;
  if (p.available) {
    size_t free_b = 0, total_b = 0;
    if (cudaSetDevice(0) == cudaSuccess && cudaMemGetInfo(&free_b, &total_b) == cudaSuccess)
      p.free_bytes = (int64_t)free_b;
    else
      cudaGetLastError();
  }
  return p;
}

}  // namespace brisk
