// Device description and the two measured ceilings of a CUDA device (see
// cuda_measure.h). Every CUDA, cuBLAS and cuBLASLt call is checked; a
// failure becomes DeviceMeasurement::error naming the call, never an
// exception, so sysinfo can always print what it has.
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "backend/cuda/cuda_measure.h"

namespace brisk::cuda {
namespace {

struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw Failure(std::string(what) + ": " + cudaGetErrorString(e));
}
void check(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS)
    throw Failure(std::string(what) + ": cuBLAS status " + std::to_string((int)s));
}

std::string version_string(int v) {  // 12040 -> "12.4"
  return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10);
}

// RAII owners, so an exception in the middle frees what was allocated.
struct DeviceBuffer {
  void* p = nullptr;
  explicit DeviceBuffer(size_t bytes) { check(cudaMalloc(&p, bytes), "cudaMalloc"); }
  ~DeviceBuffer() {
    if (p) cudaFree(p);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
};
struct Events {
  cudaEvent_t start = nullptr, stop = nullptr;
  Events() {
    check(cudaEventCreate(&start), "cudaEventCreate");
    check(cudaEventCreate(&stop), "cudaEventCreate");
  }
  ~Events() {
    if (start) cudaEventDestroy(start);
    if (stop) cudaEventDestroy(stop);
  }
  Events(const Events&) = delete;
  Events& operator=(const Events&) = delete;
};
struct Stream {
  cudaStream_t s = nullptr;
  Stream() { check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate"); }
  ~Stream() {
    if (s) cudaStreamDestroy(s);
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Seconds of each of `repeats` launches of `fn` on `stream`, after `warmup`
// untimed ones.
template <class Fn>
std::vector<double> time_each(cudaStream_t stream, int warmup, int repeats, Fn&& fn) {
  Events ev;
  for (int i = 0; i < warmup; ++i) fn();
  check(cudaStreamSynchronize(stream), "cudaStreamSynchronize (warm-up)");
  std::vector<double> out;
  for (int i = 0; i < repeats; ++i) {
    check(cudaEventRecord(ev.start, stream), "cudaEventRecord");
    fn();
    check(cudaEventRecord(ev.stop, stream), "cudaEventRecord");
    check(cudaEventSynchronize(ev.stop), "cudaEventSynchronize");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, ev.start, ev.stop), "cudaEventElapsedTime");
    out.push_back(ms / 1e3);
  }
  return out;
}

// Random, never-zero-heavy contents: tensor cores draw (and clock) very
// differently on zeros, which would overstate the throughput.
__global__ void fill_f16_kernel(unsigned short* p, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    uint32_t h = (uint32_t)i * 2654435761u;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    // Sign, exponent 13..14 (values in [2^-2, 2^0)), random mantissa: finite, no overflow in the sums.
    p[i] = (unsigned short)(((h & 1u) << 15) | ((13u + ((h >> 1) & 1u)) << 10) | ((h >> 2) & 0x3FFu));
  }
}
__global__ void fill_e4m3_kernel(unsigned char* p, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    uint32_t h = (uint32_t)i * 2654435761u;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    // Sign, exponent 5..6 (values in [2^-2, 2^0)), random mantissa; never the NaN pattern.
    p[i] = (unsigned char)(((h & 1u) << 7) | ((5u + ((h >> 1) & 1u)) << 3) | ((h >> 2) & 0x7u));
  }
}

void check_launch(const char* what) { check(cudaGetLastError(), what); }

void measure_bandwidth(DeviceMeasurement& m, cudaStream_t stream, uint64_t free_bytes, bool quick) {
  // Far beyond the L2 (50 MiB on H100), small enough to leave room: two buffers.
  uint64_t bytes = quick ? (uint64_t{256} << 20) : (uint64_t{1} << 30);
  bytes = std::min<uint64_t>(bytes, free_bytes / 4);
  bytes &= ~uint64_t{(1 << 20) - 1};
  if (bytes < (uint64_t{16} << 20))
    throw Failure("bandwidth: too little free device memory for a 16 MiB copy");
  DeviceBuffer a(bytes), b(bytes);
  check(cudaMemsetAsync(a.p, 1, bytes, stream), "cudaMemsetAsync");
  const int repeats = quick ? 5 : 11;
  const std::vector<double> t = time_each(stream, 2, repeats, [&] {
    check(cudaMemcpyAsync(b.p, a.p, bytes, cudaMemcpyDeviceToDevice, stream), "cudaMemcpyAsync");
  });
  const double s = median(t);
  if (!(s > 0)) throw Failure("bandwidth: the copy took no measurable time");
  m.bandwidth_bytes_per_s = 2.0 * (double)bytes / s;
  m.bandwidth_buffer_bytes = bytes;
  m.bandwidth_method = "device-to-device cudaMemcpyAsync of " + std::to_string(bytes >> 20) +
                       " MiB, bytes read + written, median of " + std::to_string(repeats) +
                       " copies timed with CUDA events after 2 warm-up copies";
}

void measure_f16(DeviceMeasurement& m, cudaStream_t stream, int n, int repeats) {
  const size_t elems = (size_t)n * n;
  DeviceBuffer a(elems * 2), b(elems * 2), c(elems * 2);
  fill_f16_kernel<<<1024, 256, 0, stream>>>((unsigned short*)a.p, elems);
  check_launch("fill_f16_kernel");
  fill_f16_kernel<<<1024, 256, 0, stream>>>((unsigned short*)b.p, elems);
  check_launch("fill_f16_kernel");
  cublasHandle_t h = nullptr;
  check(cublasCreate(&h), "cublasCreate");
  struct HandleGuard {
    cublasHandle_t h;
    ~HandleGuard() { cublasDestroy(h); }
  } guard{h};
  check(cublasSetStream(h, stream), "cublasSetStream");
  const float alpha = 1.0f, beta = 0.0f;
  const std::vector<double> t = time_each(stream, 2, repeats, [&] {
    check(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, n, n, n, &alpha, a.p, CUDA_R_16F, n, b.p, CUDA_R_16F, n,
                       &beta, c.p, CUDA_R_16F, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
          "cublasGemmEx (F16)");
  });
  const double s = median(t);
  if (!(s > 0)) throw Failure("F16 GEMM took no measurable time");
  m.f16_flops = 2.0 * n * (double)n * n / s;
  m.f16_method = "cublasGemmEx F16 x F16 -> F16, FP32 accumulate, " + std::to_string(n) + "^3, median of " +
                 std::to_string(repeats) + " after 2 warm-up GEMMs";
}

void measure_fp8(DeviceMeasurement& m, cudaStream_t stream, int n, int repeats) {
  const size_t elems = (size_t)n * n;
  DeviceBuffer a(elems), b(elems), d(elems * 2);
  fill_e4m3_kernel<<<1024, 256, 0, stream>>>((unsigned char*)a.p, elems);
  check_launch("fill_e4m3_kernel");
  fill_e4m3_kernel<<<1024, 256, 0, stream>>>((unsigned char*)b.p, elems);
  check_launch("fill_e4m3_kernel");
  const size_t workspace_bytes = size_t{32} << 20;
  DeviceBuffer workspace(workspace_bytes);

  cublasLtHandle_t lt = nullptr;
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, ld = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  struct Guard {
    cublasLtHandle_t& lt;
    cublasLtMatmulDesc_t& op;
    cublasLtMatrixLayout_t &la, &lb, &ld;
    cublasLtMatmulPreference_t& pref;
    ~Guard() {
      if (pref) cublasLtMatmulPreferenceDestroy(pref);
      if (ld) cublasLtMatrixLayoutDestroy(ld);
      if (lb) cublasLtMatrixLayoutDestroy(lb);
      if (la) cublasLtMatrixLayoutDestroy(la);
      if (op) cublasLtMatmulDescDestroy(op);
      if (lt) cublasLtDestroy(lt);
    }
  } guard{lt, op, la, lb, ld, pref};
  check(cublasLtCreate(&lt), "cublasLtCreate");
  check(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F), "cublasLtMatmulDescCreate");
  // FP8 kernels need the "TN" form: A transposed, B not (cuBLASLt's rule).
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  check(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta), "set TRANSA");
  check(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb), "set TRANSB");
  check(cublasLtMatrixLayoutCreate(&la, CUDA_R_8F_E4M3, n, n, n), "cublasLtMatrixLayoutCreate (A)");
  check(cublasLtMatrixLayoutCreate(&lb, CUDA_R_8F_E4M3, n, n, n), "cublasLtMatrixLayoutCreate (B)");
  // C and D BF16: an output type cuBLASLt supports for E4M3 inputs.
  check(cublasLtMatrixLayoutCreate(&ld, CUDA_R_16BF, n, n, n), "cublasLtMatrixLayoutCreate (D)");
  check(cublasLtMatmulPreferenceCreate(&pref), "cublasLtMatmulPreferenceCreate");
  check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace_bytes,
                                             sizeof workspace_bytes),
        "set MAX_WORKSPACE_BYTES");
  cublasLtMatmulHeuristicResult_t heur{};
  int found = 0;
  check(cublasLtMatmulAlgoGetHeuristic(lt, op, la, lb, ld, ld, pref, 1, &heur, &found),
        "cublasLtMatmulAlgoGetHeuristic (FP8)");
  if (found < 1) throw Failure("FP8 GEMM: cuBLASLt offers no algorithm for E4M3 x E4M3 -> BF16");
  const float alpha = 1.0f, beta = 0.0f;
  const std::vector<double> t = time_each(stream, 2, repeats, [&] {
    check(cublasLtMatmul(lt, op, &alpha, a.p, la, b.p, lb, &beta, d.p, ld, d.p, ld, &heur.algo, workspace.p,
                         workspace_bytes, stream),
          "cublasLtMatmul (FP8)");
  });
  const double s = median(t);
  if (!(s > 0)) throw Failure("FP8 GEMM took no measurable time");
  m.fp8_flops = 2.0 * n * (double)n * n / s;
  m.fp8_method = "cublasLtMatmul E4M3 x E4M3 -> BF16, FP32 accumulate, TN, " + std::to_string(n) +
                 "^3, median of " + std::to_string(repeats) + " after 2 warm-up GEMMs";
}

}  // namespace

DeviceList describe_devices() {
  DeviceList l;
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    l.reason = std::string("no usable CUDA device: ") + cudaGetErrorString(e);
    cudaGetLastError();  // clear it, so later calls do not report it again
    return l;
  }
  if (count == 0) {
    l.reason = "no CUDA device found";
    return l;
  }
  // Free memory needs each device's context; the caller's current device is put back after.
  int previous = 0;
  const bool restore = cudaGetDevice(&previous) == cudaSuccess;
  int driver = 0, runtime = 0;
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, i) != cudaSuccess) {
      cudaGetLastError();
      continue;
    }
    DeviceDescription d;
    d.index = i;
    d.name = p.name;
    d.cc_major = p.major;
    d.cc_minor = p.minor;
    d.sm_count = p.multiProcessorCount;
    d.total_bytes = p.totalGlobalMem;
    d.memory_bus_bits = p.memoryBusWidth;
    d.driver_version = version_string(driver);
    d.runtime_version = version_string(runtime);
    char bus[32] = {0};
    if (cudaDeviceGetPCIBusId(bus, sizeof bus, i) == cudaSuccess) d.pci_bus_id = bus;
    size_t free_b = 0, total_b = 0;
    if (cudaSetDevice(i) == cudaSuccess && cudaMemGetInfo(&free_b, &total_b) == cudaSuccess)
      d.free_bytes = free_b;
    else
      cudaGetLastError();
    l.devices.push_back(std::move(d));
  }
  if (restore) cudaSetDevice(previous);
  if (l.devices.empty()) {
    l.reason = "cudaGetDeviceProperties failed on every device";
    return l;
  }
  l.available = true;
  return l;
}

DeviceMeasurement measure_device(int index, bool quick) {
  DeviceMeasurement m;
  int previous = 0;
  const bool restore = cudaGetDevice(&previous) == cudaSuccess;
  try {
    check(cudaSetDevice(index), "cudaSetDevice");
    cudaDeviceProp p{};
    check(cudaGetDeviceProperties(&p, index), "cudaGetDeviceProperties");
    size_t free_b = 0, total_b = 0;
    check(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");
    Stream stream;
    measure_bandwidth(m, stream.s, free_b, quick);
    const int n = quick ? 4096 : 8192;
    const int repeats = quick ? 3 : 7;
    // Three n x n operands must fit beside whatever else lives there.
    if ((uint64_t)n * n * 2 * 3 > free_b / 2) throw Failure("GEMM: too little free device memory");
    measure_f16(m, stream.s, n, repeats);
    if (p.major * 10 + p.minor >= 89) {
      try {
        measure_fp8(m, stream.s, n, repeats);
      } catch (const Failure& f) {
        // The bandwidth and F16 figures stand; FP8 says what went wrong.
        m.fp8_flops = 0;
        m.fp8_method = std::string("not measured: ") + f.what();
        cudaGetLastError();
      }
    } else {
      m.fp8_method = "not available: FP8 E4M3 tensor cores need sm_89 or newer; this device is sm_" +
                     std::to_string(p.major) + std::to_string(p.minor);
    }
    check(cudaStreamSynchronize(stream.s), "cudaStreamSynchronize");
    m.ok = true;
  } catch (const Failure& f) {
    m.ok = false;
    m.error = f.what();
    cudaGetLastError();
  }
  if (restore) cudaSetDevice(previous);
  return m;
}

}  // namespace brisk::cuda
