// The one way every launcher starts a kernel, so that the same launcher compiles for the GPU (nvcc) and for the
// CPU simulation of the CUDA execution model (native/cuda/sim, issue 9), and no kernel has two copies.
// Under nvcc it is `kernel<<<grid, block, sharedBytes, stream>>>(args...)`; in the simulation build
// (PACT_CUDA_SIM) it runs the kernel on host threads and returns when it has finished. Either way a launch the
// device refuses sets cudaGetLastError() and runs nothing. A kernel that is a template-id with several
// arguments goes in parentheses: PACT_LAUNCH((tiled<16, 16>), ...).
#pragma once
#include <cuda_runtime.h>

#ifdef PACT_CUDA_SIM
#define PACT_LAUNCH(kernel, grid, block, sharedBytes, stream, ...) \
  ::pact::sim::launch(kernel, (grid), (block), (sharedBytes), (stream) __VA_OPT__(, ) __VA_ARGS__)
#else
#define PACT_LAUNCH(kernel, grid, block, sharedBytes, stream, ...) \
  kernel<<<(grid), (block), (sharedBytes), (stream)>>>(__VA_ARGS__)
#endif
