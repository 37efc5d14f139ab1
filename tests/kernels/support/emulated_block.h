// What the threads of a CUDA block share when the CPU emulations of the
// CUDA kernels (tests/kernels/test_cuda_*_emulated.cpp) run a thread per
// CUDA thread: a barrier for __syncthreads, and a barrier and an exchange
// slot per warp for the shuffles.
#pragma once
#include <barrier>
#include <deque>

namespace brisk::testing {

template <int kThreads>
struct EmulatedWarps {
  std::barrier<> block{kThreads};
  std::deque<std::barrier<>> warps;
  float exchange[kThreads / 32][32] = {};
  EmulatedWarps() {
    for (int w = 0; w < kThreads / 32; ++w) warps.emplace_back(32);
  }
  void sync() { block.arrive_and_wait(); }
  // __shfl_xor_sync over the full warp, for thread t.
  float shfl_xor(int t, float v, int o) {
    const int w = t / 32, lane = t % 32;
    exchange[w][lane] = v;
    warps[w].arrive_and_wait();
    const float got = exchange[w][lane ^ o];
    warps[w].arrive_and_wait();  // every lane has read before the next write
    return got;
  }
};

}  // namespace brisk::testing
