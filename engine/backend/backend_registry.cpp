// The backend registry: which backends this build and machine offer, and
// the one factory the engine, the perplexity scorer and the front ends use.
// Without nvcc the CUDA entry points are defined here, so every build links
// the same API and says, once, why CUDA is unavailable.
#include <cstdio>

#include "backend/backend.h"
#include "backend/cuda/cuda_backend.h"
#include "brisk/engine_config.h"
#include "brisk/error.h"
#include "kernels/cpu/probe.h"

namespace brisk {

std::string CudaProbe::describe() const {
  if (!available) return reason;
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s (sm_%d%d, %.1f GiB)", name.c_str(), cc_major, cc_minor,
                (double)total_bytes / (1ll << 30));
  return buf;
}

#ifndef BRISK_HAVE_CUDA
CudaProbe cuda_probe() {
  CudaProbe p;
  p.reason = "built without CUDA (nvcc not found when Brisk was built)";
  return p;
}
std::unique_ptr<Backend> make_cuda_backend(const BackendOptions&) {
  throw Error("backend 'cuda' is unavailable: " + cuda_probe().reason);
}
int64_t cuda_device_allocations() { return 0; }
bool cuda_dependent_launch_active() { return false; }
int64_t cuda_graph_captures() { return 0; }
int64_t cuda_graph_replays() { return 0; }
int64_t cuda_fp8_scaled_gemms() { return 0; }
int64_t cuda_fused_rope_launches() { return 0; }
int64_t cuda_fp8_gemms() { return 0; }
int64_t cuda_activation_conversions() { return 0; }
void cuda_force_decode_attention(const std::string&) {}
int64_t cuda_split_merge_in_kernel_launches() { return 0; }
int64_t cuda_l2_prefetch_launches() { return 0; }
int64_t cuda_persistent_decode_launches() { return 0; }
#endif

std::vector<BackendInfo> backend_infos() {
  std::vector<BackendInfo> out;
  out.push_back({"cpu", true, "", cpu::describe_cpu().model});
  const CudaProbe p = cuda_probe();
  out.push_back({"cuda", p.available, p.available ? "" : p.reason, p.available ? p.describe() : ""});
  return out;
}

std::vector<std::string> available_backends() {
  std::vector<std::string> names;
  for (const BackendInfo& b : backend_infos())
    if (b.available) names.push_back(b.name);
  return names;
}

std::unique_ptr<Backend> make_backend(const std::string& name, const BackendOptions& opts) {
  if (name == "cpu") return make_cpu_backend(opts);
  if (name == "cuda") return make_cuda_backend(opts);  // throws with the reason when unavailable
  if (name == "auto") {
    if (cuda_probe().available) return make_cuda_backend(opts);
    return make_cpu_backend(opts);
  }
  throw Error("backend '" + name + "': unknown (one of auto, cpu, cuda)");
}

std::unique_ptr<Backend> make_backend(const EngineConfig& cfg) {
  // Named fields: a knob added to BackendOptions cannot shift the others.
  return make_backend(cfg.backend, BackendOptions{.threads = cfg.threads,
                                                  .int8_activations = cfg.int8_activations,
                                                  .cuda_graphs = cfg.cuda_graphs,
                                                  .fused_decode = cfg.fused_decode,
                                                  .huge_page_weights = cfg.huge_page_weights,
                                                  .int8_fma = cfg.int8_fma,
                                                  .dependent_launch = cfg.dependent_launch,
                                                  .fp8_fma = cfg.fp8_fma,
                                                  .fused_rope = cfg.fused_rope,
                                                  .fp8_fast_accum = cfg.fp8_fast_accum,
                                                  .split_merge_in_kernel = cfg.split_merge_in_kernel,
                                                  .l2_prefetch = cfg.l2_prefetch,
                                                  .persistent_decode = cfg.persistent_decode});
}

}  // namespace brisk
