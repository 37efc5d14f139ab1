// The one-launch decode kernel (cuda_kernels.h, "One-launch decode"; the
// block's work: decode_persistent.cuh).
#include <algorithm>
#include <atomic>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/decode_persistent.cuh"

namespace brisk::cuda {
using namespace detail;

namespace {

std::atomic<int64_t> g_launches{0};
std::atomic<int> g_blocks_per_sm{0};
std::atomic<uint64_t*> g_trace{nullptr};

struct CudaBlock {
  __device__ int tid() const { return threadIdx.x; }
  __device__ void sync() const { __syncthreads(); }
  __device__ float shfl_xor(float v, int o) const { return __shfl_xor_sync(0xffffffffu, v, o); }
  __device__ void fence() const { __threadfence(); }
  __device__ uint32_t count_in(uint32_t* c) const { return atomicAdd(c, 1u); }
};

__device__ __forceinline__ uint64_t globaltimer_ns() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

// Every block of the grid arrives before any leaves (the grid is resident
// as a whole: a cooperative launch). One atomic add a block on one word,
// as cooperative groups' grid sync: block 0 adds 2^31 - (n - 1), every
// other block 1, so the n adds together flip the top bit and leave the
// rest of the word as it was; a block leaves once the bit differs from
// what its own add saw. Nothing to reset: the word carries over to the
// next barrier and the next launch. The fences make what each block wrote
// before arriving visible to every block after it leaves. (The first
// version, a count the last arrival reset and a generation word it then
// advanced, put three dependent atomics on every barrier's critical path.)
__device__ __forceinline__ void grid_barrier(uint32_t* barrier, uint32_t nblocks) {
  __syncthreads();
  if (threadIdx.x == 0) {
    __threadfence();
    const uint32_t old = atomicAdd(barrier, persist::barrier_add(blockIdx.x, nblocks));
    volatile uint32_t* word = barrier;
    // A grid that cannot all be resident would wait forever: after two
    // seconds, fail the launch with a message instead of hanging the device.
    uint64_t t0 = 0;
    for (uint32_t spins = 0; !persist::barrier_open(old, *word); ++spins) {
      if ((spins & 1023) == 0) {
        const uint64_t now = globaltimer_ns();
        if (spins == 0) {
          t0 = now;
        } else if (now - t0 > 2000000000ull) {
          printf("brisk: persistent decode: block %d waited 2 s at a grid barrier (%u blocks)\n", blockIdx.x,
                 nblocks);
          __trap();
        }
      }
    }
    __threadfence();
  }
  __syncthreads();
}

template <DType WDT>
__global__ void __launch_bounds__(persist::kThreads, 2) persistent_decode_kernel(PersistentDecodeArgs a) {
  extern __shared__ float4 smem4[];
  float* sm = reinterpret_cast<float*>(smem4);
  const CudaBlock b;
  const bool tracer = a.trace && blockIdx.x == 0 && threadIdx.x == 0;
  persist::prologue(b, a, sm, blockIdx.x);
  if (tracer) a.trace[0] = globaltimer_ns();
  for (int l = 0; l < a.n_layers; ++l)
    for (int p = 0; p < persist::kPhases; ++p) {
      persist::run_phase<WDT>(b, a, l, p, blockIdx.x, gridDim.x, sm);
      if (l + 1 < a.n_layers || p + 1 < persist::kPhases) grid_barrier(a.barrier, gridDim.x);
      if (tracer) a.trace[1 + l * persist::kPhases + p] = globaltimer_ns();  // the last: block 0's own end
    }
}

template <DType WDT>
void* kernel_of() {
  return reinterpret_cast<void*>(&persistent_decode_kernel<WDT>);
}
void* kernel_for(DType wdt) {
  return wdt == DType::BF16 ? kernel_of<DType::BF16>() : kernel_of<DType::F16>();
}

}  // namespace

void set_persistent_blocks_per_sm(int blocks) { g_blocks_per_sm.store(std::max(0, blocks)); }
void set_persistent_trace(uint64_t* device_buffer) { g_trace.store(device_buffer); }

int persistent_blocks_per_sm(DType wdt, size_t smem_bytes) {
  const void* k = kernel_for(wdt);
  if (smem_bytes > 48 * 1024 &&
      cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem_bytes) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  int n = 0;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, k, persist::kThreads, smem_bytes) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  // Up to 4: more blocks keep more loads in flight but make every barrier longer.
  const int cap = g_blocks_per_sm.load();
  return std::min(n, cap > 0 ? cap : 4);
}

bool persistent_decode(const PersistentDecodeArgs& a, Stream s) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3((unsigned)a.plan.grid);
  cfg.blockDim = dim3(persist::kThreads);
  cfg.dynamicSmemBytes = a.plan.smem_bytes;
  cfg.stream = stream_of(s);
  // Cooperative: the launch fails rather than run a grid that cannot be resident at once (the barrier
  // would never open). Without dependent launch: the embedding before it has finished when it starts.
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeCooperative;
  attr[0].val.cooperative = 1;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  ++g_launches;
  PersistentDecodeArgs args = a;
  if (uint64_t* t = g_trace.load()) args.trace = t;
  const cudaError_t e = a.wdt == DType::BF16
                            ? cudaLaunchKernelEx(&cfg, persistent_decode_kernel<DType::BF16>, args)
                            : cudaLaunchKernelEx(&cfg, persistent_decode_kernel<DType::F16>, args);
  if (e == cudaErrorCooperativeLaunchTooLarge) {
    cudaGetLastError();  // not sticky: this launch's only
    --g_launches;
    return false;
  }
  return true;
}

int64_t persistent_decode_launches() { return g_launches.load(); }

}  // namespace brisk::cuda
