// 2-D convolution and its two gradients on oneDNN (present only in builds with PACT_HAVE_DNNL).
//
// Layout: x/dx NHWC, filter/dfilter HWIO (TensorFlow.js' layouts), y/dy NHWC, bias [outChannels], all float32 and
// dense. oneDNN picks its own blocked layout for the weights (format_tag::any); the filter is reordered from HWIO
// into it on every call (it changes every training step; the cost is one pass over the filter) and the filter
// gradient is reordered back. Activations stay NHWC, which oneDNN's JIT kernels take directly.
// Threading: oneDNN's OpenMP pool (cpu/threads.h). Cost: 2*N*outH*outW*outC*fH*fW*inC flops per call, at
// 58-90 GFLOP/s on the ResNet-CIFAR shapes on this project's 2-vCPU AVX2 machine (bench/README.md; the field
// notes' 330-460 were measured on AVX-512 cores); primitives are cached by geometry.
// Limits: geometry must pass checkConv2DGeometry (the binding checks it and every buffer length before calling).
// Exception: the forward (no bias, linear) and the filter gradient of convolutions to at most 2 output channels run
// native/cpu/narrow_conv.h's loops instead (oneDNN runs them almost as slowly as full-width layers).
#pragma once
#include <cstdint>
#include <string>

#include "cpu/dense_dnnl.h"

namespace pact {

// Dilations use tfjs' convention (1 = dense). Pads are the explicit top/left/bottom/right zero padding; the bottom
// and right pads may be larger than what the output reaches (tfjs' 'valid' with a stride that does not divide),
// and the output size may come from floor or ceil rounding (tfjs' dimRoundingMode).
struct Conv2DGeometry {
  int64_t batch, inHeight, inWidth, inChannels;
  int64_t outHeight, outWidth, outChannels;
  int64_t filterHeight, filterWidth;
  int64_t strideHeight, strideWidth;
  int64_t dilationHeight, dilationWidth;
  int64_t padTop, padLeft, padBottom, padRight;

  int64_t xSize() const { return batch * inHeight * inWidth * inChannels; }
  int64_t ySize() const { return batch * outHeight * outWidth * outChannels; }
  int64_t filterSize() const { return filterHeight * filterWidth * inChannels * outChannels; }
};

// "" when the geometry is consistent (positive sizes and strides, pads in [0, effective filter size), output size
// reachable from the padded input), else what is wrong.
std::string checkConv2DGeometry(const Conv2DGeometry& g);

#ifdef PACT_HAVE_DNNL
// y = activation(conv(x, filter) + bias); bias may be null.
void conv2dForward(const Conv2DGeometry& g, const float* x, const float* filter, const float* bias,
                   const Epilogue& epilogue, float* y);
// dx = the gradient of conv(x, filter) with respect to x, given dy.
void conv2dBackpropInput(const Conv2DGeometry& g, const float* dy, const float* filter, float* dx);
// dfilter = the gradient of conv(x, filter) with respect to filter, given dy.
void conv2dBackpropFilter(const Conv2DGeometry& g, const float* x, const float* dy, float* dfilter);
#endif

}  // namespace pact
