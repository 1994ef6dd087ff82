// Batch norm + ReLU of a masked residual unit (src/ops/masked_residual_unit.ts): training-mode batch norm whose
// statistics are taken over the active rows only, then ReLU, written at the active rows and 0 elsewhere.
//
// Layout: x, y, dy, dx [rows, channels] (NHWC flattened), mask [rows] (active where > 0; NaN is inactive),
// scale, offset, mean, variance (biased, over the active rows), dscale, doffset [channels]. With no active row the
// statistics are 0 and every output is 0.
// Threading: pact::parallelFor over active rows, one partial sum per chunk, summed in a fixed order.
// Cost: O(rows) to scan the mask and clear the outputs, plus O(activeRows * channels) arithmetic (three passes
// forward, one in evaluation, two backward).
#pragma once
#include <cstdint>

namespace pact::masked {

void maskedBatchNormRelu(const float* x, const float* mask, int64_t rows, int64_t channels, const float* scale,
                         const float* offset, float epsilon, float* y, float* mean, float* variance);

// Evaluation: the same with given statistics (the moving averages), y = relu((x - mean) / sqrt(variance + epsilon)
// * scale + offset) at the active rows, 0 elsewhere; one pass over the active rows. A null mask makes every row
// active (the dense ResNet's evaluation batch norm + ReLU in one pass instead of two).
void maskedBatchNormReluInference(const float* x, const float* mask, int64_t rows, int64_t channels,
                                  const float* scale, const float* offset, const float* mean, const float* variance,
                                  float epsilon, float* y);

// The gradient w.r.t. x, scale and offset given dy (the statistics outputs carry no gradient: they feed moving
// averages only). y is the forward output (its sign is ReLU's gate).
void maskedBatchNormReluGrad(const float* dy, const float* x, const float* mask, const float* y, int64_t rows,
                             int64_t channels, const float* scale, const float* mean, const float* variance,
                             float epsilon, float* dx, float* dscale, float* doffset);

// The unit's output y = u + c * a, a one value per row ([rows]) scaling that row of c (the masked unit's u + f(u)·a
// in one pass instead of a product and a sum), and its gradient w.r.t. c and a: dc = dy * a, da[r] = <dy[r], c[r]>
// (one pass over dy and c; the gradient w.r.t. u is dy itself).
void scaledResidualAdd(const float* u, const float* c, const float* a, int64_t rows, int64_t channels, float* y);
void scaledResidualAddGrad(const float* dy, const float* c, const float* a, int64_t rows, int64_t channels,
                           float* dc, float* da);

}  // namespace pact::masked
