// CUDA launchers of the masked convolution. Same signatures as the C++ kernels of cpu/masked_conv2d.h (whose
// header states the layouts and the semantics: conv2d where mask > 0, exactly 0 elsewhere, gradients from the
// active positions only), on device pointers. They queue their kernels on the default stream through PACT_LAUNCH
// without waiting, take their scratch (active lists, partial sums, the flipped filter) from the caching allocator
// (memory.cuh's Scratch), and throw std::runtime_error when a CUDA call fails. Plain CUDA in FP32 (no tensor cores,
// no cp.async), so the simulation of native/cuda/sim runs them unchanged.
//
// Kernels and thread mapping (details at each kernel in masked_conv2d.cu):
//   compact      one thread per output position; active ones take a slot of the active list with atomicAdd
//                (the list's order varies between runs; results do not depend on it, except the float summation
//                order of the filter gradient's spans).
//   forward      a GEMM over the active list (implicit im2col): a block computes 64-256 active positions x 16, 32
//                or 64 output channels (the width that fits outC), 4x4 outputs a thread, K = kH*kW*inC staged in
//                shared memory 16 at a time. Blocks past the active count exit at once: the cost follows the
//                active count.
//   backpropInput  stride 1: the forward kernel on dy (masked on load) with the filter rotated and its channels
//                swapped, padded by k - 1 - pad, over the input positions some active output reads (the dilated
//                mask). Other strides: one thread per dx element summing dy*W over the outputs that read it.
//   backpropFilter a GEMM over the active list: blocks of 64-256 rows of K x 16-64 channels, each over one span of
//                the list (about 1024 blocks in all), into per-span partial sums that a second kernel adds in
//                order (no atomics).
// A null mask is the dense convolution (every position active): no compaction, and the output is written whole, so
// it is not zeroed first; pact-cuda's Conv2D and both gradients run this way where cuDNN does not.
// Limits: batch*outH*outW and batch*inH*inW < 2^31; no dilation.
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
