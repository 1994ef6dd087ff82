// Data-movement and pooling CUDA kernels of the pact-cuda backend: a strided copy (Transpose, Slice, Concat, Pack,
// Unpack, Tile are all one or a few of these), OneHot, and NHWC max/average pooling with their gradients, computed
// as tfjs-backend-cpu computes them (the reference of the tests). Launchers throw std::runtime_error when a
// launch fails; they do not synchronise.
#pragma once
#include <cstdint>

namespace pact::cuda {

constexpr int kMaxCopyRank = 8;

// dst[dstOffset + sum_d c_d dstStrides[d]] = src[srcOffset + sum_d c_d srcStrides[d]] for every coordinate c of
// `shape`; strides and offsets in elements (a source stride may be 0: broadcast).
struct CopyShape {
  int32_t rank;
  int64_t shape[kMaxCopyRank];
  int64_t srcStrides[kMaxCopyRank];
  int64_t dstStrides[kMaxCopyRank];
  int64_t srcOffset;
  int64_t dstOffset;
};

// elementBytes: 1 (bool) or 4 (float32, int32).
void stridedCopy(const void* src, void* dst, int elementBytes, const CopyShape& shape);

// out[i, j] = (indices[i] == j) ? on : off, out [n, depth] of 4-byte elements: float32 when `asFloat`, else
// int32 (on and off converted). An index outside [0, depth) gives a row of `off`.
void oneHot(const int32_t* indices, int64_t n, int64_t depth, double on, double off, bool asFloat, void* out);

// NHWC pooling geometry (tfjs' Conv2DInfo with dilation 1): x [batch, inH, inW, channels], y [batch, outH, outW,
// channels]; window corner of output (r, c) at (r strideH - padTop, c strideW - padLeft).
struct PoolGeometry {
  int64_t batch, inH, inW, channels, outH, outW;
  int64_t filterH, filterW, strideH, strideW, padTop, padLeft;
};

enum class PoolOp : int32_t { kMax, kAvg, kCount };

// Max: the largest in-bounds value (NaN ignored; -inf for an empty window). Avg: the mean over in-bounds values.
void pool2d(PoolOp op, const PoolGeometry& g, const float* x, float* y);
// dx from dy. Max: each window's dy goes to the first position of its maximum (row-major in the window, strict
// >), recomputed from x. Avg: dx = sum of dy / (filterH filterW) over the windows that contain the position (tfjs
// divides by the full window here, even where the forward's count was smaller).
void pool2dGrad(PoolOp op, const PoolGeometry& g, const float* x, const float* dy, float* dx);

}  // namespace pact::cuda
