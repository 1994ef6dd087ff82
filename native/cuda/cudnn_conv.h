// Dense NHWC convolutions of the pact-cuda backend through cuDNN, loaded at run time with PACT_CUDNN set: where
// libcudnn.so.9 loads and a device is present, the convolutions the backend hands it (src/backends/pact_cuda: the
// filter gradient, or all three with PACT_CUDNN=all) run cuDNN's fastest float32 algorithm without tensor cores
// (FMA math: the same accuracy as our own kernels; no TF32), chosen once per shape by cuDNN's Find (a benchmark, as
// PyTorch's cudnn.benchmark does). Elsewhere, and for shapes cuDNN cannot express (asymmetric padding: tfjs' 'same'
// with stride 2 on an even size), the caller runs our own kernels (masked_conv2d.cuh with every position active).
//
//   PACT_CUDNN=1 | filter    load cuDNN; the backend runs the filter gradient on it (on an H100, cuDNN's is 2x
//                            faster than ours, its forward and input gradient slower, and each of its calls costs
//                            40-100 us of host time against our 9-12 us: bench/README.md).
//   PACT_CUDNN=all           load cuDNN; the backend runs Conv2D and both gradients on it.
//   (unset)                  cuDNN is not loaded.
//   PACT_CUDNN_LIBRARY=path  the library to load (default libcudnn.so.9 on the loader's search path).
//   PACT_CUDNN_DEBUG=1       each shape's plan (cuDNN's Find results, the algorithm chosen) on stderr.
//
// Like the rest of the backend, for the JS thread only; kernels are queued on the null stream, in launch order.
#pragma once
#include <cstddef>
#include <string>

#include "cpu/masked_conv2d.h"

namespace pact::cuda {

struct CudnnStatus {
  bool available = false;
  size_t version = 0;    // cudnnGetVersion(): major * 10000 + minor * 100 + patch
  std::string library;   // what was loaded, or tried
  std::string reason;    // why cuDNN is not used, when it is not
};

// Loads cuDNN and creates its handle on the first call; later calls return the same answer.
const CudnnStatus& cudnnStatus();

// The dense convolution `which` (0: y = conv(x, filter), a = x, b = filter; 1: dx from a = dy, b = filter; 2:
// dfilter from a = x, b = dy), layouts as in cpu/masked_conv2d.h (filter HWIO). Returns false, having launched
// nothing, where cuDNN cannot run it (unavailable, asymmetric padding, sizes past int, or no FMA algorithm for the
// shape); throws std::runtime_error when a cuDNN call fails.
bool cudnnConv2d(const masked::ConvGeometry& g, int which, const float* a, const float* b, float* out);

}  // namespace pact::cuda
