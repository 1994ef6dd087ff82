// The one way every launcher starts a kernel, so that the same launcher compiles for the GPU (nvcc) and for the
// CPU simulation of the CUDA execution model (native/cuda/sim, issue 9), and no kernel has two copies.
// Under nvcc it is `kernel<<<grid, block, sharedBytes, stream>>>(args...)`; in the simulation build
// (PACT_CUDA_SIM) it runs the kernel on host threads and returns when it has finished. Either way a launch the
// device refuses sets cudaGetLastError() and runs nothing. A kernel that is a template-id with several
// arguments goes in parentheses: PACT_LAUNCH((tiled<16, 16>), ...).
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

#ifdef PACT_CUDA_SIM
#define PACT_LAUNCH(kernel, grid, block, sharedBytes, stream, ...) \
  ::pact::sim::launch(kernel, (grid), (block), (sharedBytes), (stream) __VA_OPT__(, ) __VA_ARGS__)
#else
#define PACT_LAUNCH(kernel, grid, block, sharedBytes, stream, ...) \
  kernel<<<(grid), (block), (sharedBytes), (stream)>>>(__VA_ARGS__)
#endif

namespace pact::cuda {

// Blocks of `threads` threads for a grid-stride loop over `items`: enough for one item per thread, at least 1, at
// most `maxBlocks`.
inline int gridStrideBlocks(int64_t items, int threads, int64_t maxBlocks) {
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>((items + threads - 1) / threads, maxBlocks)));
}

// Throws std::runtime_error naming `kernel` when the last launch failed.
inline void checkLaunch(const char* kernel) {
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) throw std::runtime_error(std::string(kernel) + ": launch failed: " + cudaGetErrorString(err));
}

}  // namespace pact::cuda
