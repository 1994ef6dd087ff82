// 2-D convolutions with few output channels, and their filter gradient: PSACT's halting logits (a 3x3 convolution
// to 1 channel at every unit). oneDNN runs them almost as slowly as a full-width layer (128x32x32x16 -> 1 channel:
// 5.5 ms forward, 4.0 ms backprop-filter; 16 -> 16 channels: 5.5 and 6) although they do 1/16 of its FLOPs. These
// loops: 2.0 and 2.0 ms there, 3-5x faster than oneDNN at 16x16x32 and 8x8x64 (bench/narrow_conv.ts).
//
// Forward: per output, the window's dot products in AVX2 lanes (a filter row's kW taps are one contiguous dot when
// the dilation is 1), 4 outputs of a row at once where their windows lie inside the image. Backprop-filter: per tap
// and 8 input channels, the products of the input pixels and the dy values that see them over a whole image, in 4
// independent accumulators. Layouts as in dense_conv.h (x NHWC, filter/dfilter HWIO, y/dy NHWC), any strides,
// dilations and pads that checkConv2DGeometry accepts. Parallel over output rows (forward) and chunks of images
// (backprop-filter, partials summed in chunk order: results do not depend on timing). On AVX-512, one output
// channel with a 3x3 filter, stride 1 and 16-64 input channels (the halting logits) take kernels of their own:
// blocks of 16 outputs of a row summed together, the filter gradient's sums in registers over each image (4.5-5.7x
// and 3.3-3.8x oneDNN's speed at the stage shapes, bench/results/avx512/narrow_conv.md).
#pragma once
#include <cstdint>

#include "cpu/dense_conv.h"

namespace pact {

// Output channels up to which the dense forward and backprop-filter take these loops instead of oneDNN's
// primitives (bench/narrow_conv.ts: at 3 channels they win at 16x16x32 and 8x8x64 but not at 32x32x16; oneDNN's
// backprop-input is fast at every width and stays).
constexpr int64_t kNarrowConvMaxOutChannels = 2;

// Whether a dense convolution of this geometry takes these loops: outChannels <= kNarrowConvMaxOutChannels, or <= N
// where the environment has PACT_NARROW_CONV=N (0: oneDNN for every width; read at each call, so that a benchmark
// can time both in one process; a value that is not a whole number >= 0 means the default).
bool useNarrowConv(const Conv2DGeometry& g);

// y = conv(x, filter).
void narrowConv2dForward(const Conv2DGeometry& g, const float* x, const float* filter, float* y);
// dfilter = the gradient of conv(x, filter) with respect to filter, given dy.
void narrowConv2dBackpropFilter(const Conv2DGeometry& g, const float* x, const float* dy, float* dfilter);

}  // namespace pact
