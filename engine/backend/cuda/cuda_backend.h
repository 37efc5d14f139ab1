// The CUDA backend's entry points. Plain C++ (no CUDA headers): the
// registry, the engine and the tests include it in every build; a build
// without nvcc defines these in backend/backend_registry.cpp (the probe
// says why CUDA is unavailable, the factory throws).
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "backend/backend.h"

namespace brisk {

// What the machine offers: whether a CUDA device can be used, and if not why.
// Device fields describe device 0 (the one the backend uses).
struct CudaProbe {
  bool available = false;
  std::string reason;  // why not, when unavailable
  std::string name;    // "NVIDIA H100 80GB HBM3"
  int cc_major = 0, cc_minor = 0;
  int sm_count = 0;
  int64_t total_bytes = 0;
  int64_t free_bytes = 0;        // at the time of the call
  int driver_version = 0;        // as cudaDriverGetVersion: 12040 = 12.4
  int runtime_version = 0;       // as cudaRuntimeGetVersion
  bool fp8_supported = false;    // FP8 tensor cores: sm_89 and later
  std::string describe() const;  // "NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB)", or the reason
};
// Probes once (cached; free_bytes is re-read on every call).
CudaProbe cuda_probe();

// Throws Error naming the reason when CUDA is unavailable.
std::unique_ptr<Backend> make_cuda_backend(const BackendOptions& opts);

// cudaMalloc / cudaHostAlloc calls made by every CUDA backend so far (0
// without CUDA). Only construction (weights, workspace, KV cache) allocates:
// tests read it around steps to check that no step does.
int64_t cuda_device_allocations();
// Graph captures and replays so far (tests check that graphs run, and how often).
int64_t cuda_graph_captures();
int64_t cuda_graph_replays();
// FP8 GEMMs whose scales cuBLASLt applied (outer-vector scaling), not a rescale pass.
int64_t cuda_fp8_scaled_gemms();
// q/k/v projections that ran with RoPE and the KV write in their epilogue
// (FusedDecode::norm_qkv_rope_kv_write).
int64_t cuda_fused_rope_launches();
// FP8 GEMMs run by cuBLASLt (scaled by it or rescaled after), and activation
// conversions / quantizations made for GEMMs (a shared input counts once).
int64_t cuda_fp8_gemms();
int64_t cuda_activation_conversions();
// Whether decode kernels launch with programmatic dependent launch now: the
// last backend made asked for it, and the device (sm_90+) and build support it.
bool cuda_dependent_launch_active();

// Kernel switches for tests and benchmarks, process-wide (kernels/cuda/cuda_kernels.h says what each
// does; without CUDA they do nothing). The decode attention kernel: "auto", "tiled", "per-head" or
// "per-group" (Error otherwise).
void cuda_force_decode_attention(const std::string& kernel);
// Decode attention launches (or graph captures) that merged a split context in the attention kernel
// (BackendOptions::split_merge_in_kernel).
int64_t cuda_split_merge_in_kernel_launches();
// Weight prefetches into L2 launched (or captured) so far (BackendOptions::l2_prefetch).
int64_t cuda_l2_prefetch_launches();
// Decode steps that ran their layers in one persistent launch (BackendOptions::persistent_decode),
// launched or captured so far.
int64_t cuda_persistent_decode_launches();

}  // namespace brisk
