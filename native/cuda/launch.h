// The one way every launcher starts a kernel, so that the same launcher compiles for the GPU (nvcc) and for the
// CPU simulation of the CUDA execution model (see native/cuda/sim/, issue 9), and no kernel has two copies.
#pragma once
#include <cuda_runtime.h>

#define PACT_LAUNCH(kernel, grid, block, sharedBytes, stream, ...) \
  kernel<<<(grid), (block), (sharedBytes), (stream)>>>(__VA_ARGS__)
