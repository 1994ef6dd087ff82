// Batch normalisation over the rows of a row-major [rows, channels] matrix: an NHWC tensor with rows = N*H*W.
//
// Layout: x, y, dy, dx are `rows * channels` floats, channel fastest; per-channel vectors have `channels` floats.
// Threading: pact::parallelFor over blocks of rows; each block keeps its own per-channel partial sums in double
// (so the statistics are accurate to ~1e-7 relative however many rows there are), reduced serially afterwards.
// Cost: memory-bound. Training forward reads x twice and writes y once; the gradient reads dy and x (and y with
// ReLU) twice and writes dx once; inference reads x once and writes y once.
// Limits: channels >= 1; rows >= 1 for the training kernels (the statistics of zero rows are undefined).
#pragma once
#include <cstddef>

namespace pact {

// Training-mode batch norm: mean and biased variance over the rows, y = (x - mean) / sqrt(variance + epsilon)
// * scale + offset, then max(y, 0) when `relu`.
void batchNormTrain(const float* x, const float* scale, const float* offset, size_t rows, size_t channels,
                    float epsilon, bool relu, float* y, float* mean, float* variance);

// Gradient of batchNormTrain with respect to x, scale and offset, given the gradients of all three outputs
// (dy, dmean, dvariance). With `relu`, y is the forward output and dy is zeroed where y <= 0; otherwise y is
// not read (may be null).
void batchNormTrainGrad(const float* dy, const float* dmean, const float* dvariance, const float* x,
                        const float* scale, const float* mean, const float* variance, const float* y, size_t rows,
                        size_t channels, float epsilon, bool relu, float* dx, float* dscale, float* doffset);

// Inference batch norm (tfjs' FusedBatchNorm): y = (x - mean) * scale / sqrt(variance + epsilon) + offset.
// Each of mean, variance, scale, offset has `channels` elements or 1 (broadcast); scale/offset may be null
// (1 and 0).
struct ChannelParam {
  const float* data;
  size_t length;
};
void batchNormInference(const float* x, size_t rows, size_t channels, ChannelParam mean, ChannelParam variance,
                        ChannelParam scale, ChannelParam offset, float epsilon, float* y);

}  // namespace pact
