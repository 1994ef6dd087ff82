// CUDA launchers of the masked convolution. Same signatures as the C++ kernels of cpu/masked_conv2d.h (whose
// header states the layouts and the semantics: conv2d where mask > 0, exactly 0 elsewhere, gradients from the
// active positions only), on device pointers. They run on the default stream through PACT_LAUNCH, allocate their
// scratch (the active list, 4 bytes a position) with cudaMalloc, and throw std::runtime_error when a CUDA call
// fails. Plain CUDA (no tensor cores, no cp.async), so the simulation of native/cuda/sim runs them unchanged.
//
// Kernels and thread mapping (details at each kernel in masked_conv2d.cu):
//   compact      one thread per output position; active ones take a slot of the active list with atomicAdd
//                (the list's order varies between runs; every result below is independent of it except the
//                float summation order of the filter gradient).
//   forward      one block per 16 active positions, 256 threads = 16 positions x 16 output-channel lanes; the 16
//                im2col patch rows are staged through shared memory 64 elements of K = kH*kW*inC at a time, each
//                thread accumulates 4 output channels (lane + 16j) in registers, looping over channel blocks of
//                64 for wider layers. Blocks past the active count exit at once: the cost follows the active count.
//   backpropInput  one thread per dx element (gather form, grid-stride): sums dy*W over the <= kH*kW outputs
//                that read it, skipping inactive ones after one mask load. Cost O(dx size * kH*kW) mask checks
//                plus O(active work); no atomics, deterministic.
//   backpropFilter one thread per dfilter element (k, o) per chunk of 128 active positions (grid.y), summing
//                patch[p][k] * dy[p][o] over the chunk, then one atomicAdd into dfilter. Cost O(P*K*outC).
// Limits: batch*outH*outW < 2^31; no dilation.
#pragma once
#include <cstdint>

#include "cpu/masked_conv2d.h"

namespace pact::cuda {

void maskedConv2dForward(const masked::ConvGeometry& g, const float* x, const float* filter, const float* mask,
                         float* y);

void maskedConv2dBackpropInput(const masked::ConvGeometry& g, const float* dy, const float* filter,
                               const float* mask, float* dx);

void maskedConv2dBackpropFilter(const masked::ConvGeometry& g, const float* x, const float* dy, const float* mask,
                                float* dfilter);

}  // namespace pact::cuda
