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
// Exceptions: the forward (no bias, linear) and the filter gradient of convolutions to at most 2 output channels run
// native/cpu/narrow_conv.h's loops instead (oneDNN runs them almost as slowly as full-width layers); and stride-1 3x3
// 'same' convolutions from 16 channels with enough images run the masked convolution's kernels with every position
// active (Winograd F(4x4, 3x3) tiles, 0.45-1.0 of oneDNN's time per pass: denseConvByTiles). Those compute each output
// from its whole tile's inputs, so an infinite input makes NaN of every output of the 4x4 tiles that read it (16
// positions, all channels), where a direct sum gives +-Inf at the 9 positions whose windows hold it.
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

// The same three on oneDNN (or narrow_conv's loops) only, never the masked kernels: the masked convolution's own
// dense path (masked_conv2d.cc).
void conv2dForwardOnDnnl(const Conv2DGeometry& g, const float* x, const float* filter, const float* bias,
                         const Epilogue& epilogue, float* y);
void conv2dBackpropInputOnDnnl(const Conv2DGeometry& g, const float* dy, const float* filter, float* dx);
void conv2dBackpropFilterOnDnnl(const Conv2DGeometry& g, const float* x, const float* dy, float* dfilter);
#endif

// Whether the convolution's three passes run as the masked convolution's kernels with an all-active mask
// (masked::denseByTiles: Winograd F(4x4, 3x3) on every tile) instead of oneDNN's: no dilation and that geometry,
// unless the environment has PACT_CONV_TILES=0 (read at each call, so that a benchmark can time both in one process;
// pact-cpu's registration refuses values other than 0 and 1). The forward then adds its bias and applies its activation
// in place, with the elementwise kernels (cpu/elementwise.h).
bool denseConvByTiles(const Conv2DGeometry& g);

}  // namespace pact
