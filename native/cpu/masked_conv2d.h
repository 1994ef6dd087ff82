// Masked (sparse) 2-D convolution: conv2d(x, filter) computed only at the output positions whose mask is > 0,
// exactly 0 elsewhere, and its two gradients computed only from those positions.
//
// Layouts: x NHWC [batch, inH, inW, inC], filter HWIO [kH, kW, inC, outC], mask [batch, outH, outW] (active where
// > 0; NaN is inactive), y/dy NHWC [batch, outH, outW, outC]. No dilation. Raw pointers and sizes only; the N-API
// layer (native/binding/masked_conv2d.cc) checks lengths, and `maskedConv2dGeometryError` checks the geometry.
#pragma once
#include <cstdint>
#include <string>

namespace pact::masked {

struct ConvGeometry {
  int64_t batch, inH, inW, inC;
  int64_t kH, kW, outC;
  int64_t strideH, strideW;
  int64_t padTop, padBottom, padLeft, padRight;
  int64_t outH, outW;  // derived by `makeConvGeometry`
};

// Fills outH/outW from the rest (floor((in + pads - k) / stride) + 1, 0 when the window does not fit). Inline, with
// the check below, so that the CUDA bindings (built without this directory's .cc files in the simulation) share them.
inline ConvGeometry makeConvGeometry(int64_t batch, int64_t inH, int64_t inW, int64_t inC, int64_t kH, int64_t kW,
                                     int64_t outC, int64_t strideH, int64_t strideW, int64_t padTop,
                                     int64_t padBottom, int64_t padLeft, int64_t padRight) {
  ConvGeometry g{batch, inH, inW, inC, kH, kW, outC, strideH, strideW, padTop, padBottom, padLeft, padRight, 0, 0};
  if (strideH > 0 && strideW > 0) {
    const int64_t spanH = inH + padTop + padBottom - kH, spanW = inW + padLeft + padRight - kW;
    g.outH = spanH >= 0 ? spanH / strideH + 1 : 0;
    g.outW = spanW >= 0 ? spanW / strideW + 1 : 0;
  }
  return g;
}

// Empty when the geometry is usable, otherwise what is wrong (for an Error message).
inline std::string maskedConv2dGeometryError(const ConvGeometry& g) {
  if (g.batch < 1 || g.inH < 1 || g.inW < 1 || g.inC < 1) return "x must have a positive shape [batch, h, w, c]";
  if (g.kH < 1 || g.kW < 1 || g.outC < 1) return "filter must have a positive shape [kH, kW, inC, outC]";
  if (g.strideH < 1 || g.strideW < 1) return "strides must be positive";
  if (g.padTop < 0 || g.padBottom < 0 || g.padLeft < 0 || g.padRight < 0) return "pads must be non-negative";
  if (g.outH < 1 || g.outW < 1) return "the filter does not fit in the padded input";
  return "";
}

// Which algorithm runs: the sparse path (direct kernels or gather-GEMM-scatter, with Winograd F(2x2, 3x3) on fully
// active 2x2 tiles where they hold most active positions, see masked_winograd.h), the sparse path without Winograd,
// oneDNN's dense convolution followed by masking, or the choice made from the active fraction (`kAuto`, the default;
// see masked_conv2d.cc for the thresholds).
enum class MaskedAlgo { kAuto = 0, kSparse = 1, kDense = 2, kSparseDirect = 3 };

// y = conv2d(x, filter) where mask > 0, 0 elsewhere. Writes every element of y, except with `outputZeroed` (the
// caller's promise that y is all zeros already, e.g. a fresh array): then the sparse path writes the active rows
// only and skips a pass over the whole output. Returns the number of active positions.
int64_t maskedConv2dForward(const ConvGeometry& g, const float* x, const float* filter, const float* mask, float* y,
                         MaskedAlgo algo = MaskedAlgo::kAuto, bool outputZeroed = false);

// dx = conv2d's input gradient of dy * [mask > 0]. Writes every element of dx (`outputZeroed`: as above). Returns
// the number of active positions when the sparse path ran (dx is then exactly 0 outside their windows, whatever the
// values of dy and filter), -1 when the dense one did (0 * inf there is NaN).
int64_t maskedConv2dBackpropInput(const ConvGeometry& g, const float* dy, const float* filter, const float* mask,
                               float* dx, MaskedAlgo algo = MaskedAlgo::kAuto, bool outputZeroed = false);

// dfilter = conv2d's filter gradient of dy * [mask > 0]. Writes every element of dfilter.
void maskedConv2dBackpropFilter(const ConvGeometry& g, const float* x, const float* dy, const float* mask,
                                float* dfilter, MaskedAlgo algo = MaskedAlgo::kAuto);

// Whether a dense convolution of geometry g (every output position active) is faster as the masked kernels above
// with an all-active mask than as oneDNN's direct convolution: where they then take F(4x4, 3x3) on every 4x4 tile in
// all three passes: stride-1 3x3 'same' convolutions with at least 16 channels in and out (multiples of the vector
// width) and 8x8 outputs, and enough images and tiles for every thread (measurements in masked_conv2d.cc).
bool denseByTiles(const ConvGeometry& g);

// out[b, y, x] = 1 where some mask[b, y', x'] > 0 with |y' - y| <= radius and |x' - x| <= radius, else 0: the
// outputs of a stride-1 'same' (2*radius+1)^2 convolution that an active set of the next one reads. mask and out are
// [batch, h, w]. Separable (a row pass, then a column pass): O(batch*h*w) whatever the radius. Returns the number of
// ones in out.
int64_t dilateMask(const float* mask, int64_t batch, int64_t h, int64_t w, int64_t radius, float* out);

}  // namespace pact::masked
