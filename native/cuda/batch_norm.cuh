// CUDA launchers of batch norm and the masked residual unit's element-wise kernels, on device pointers, with the
// math and layouts of cpu/batch_norm.h (training-mode batch norm and its gradient, rows = N*H*W of an NHWC tensor,
// channel fastest) and cpu/masked_residual_unit.h (batch norm + ReLU over the active rows of a mask [rows] only,
// written there and 0 elsewhere; the unit's u + c * a). pact-cuda runs them for src/ops' PactBatchNormTrain(Grad),
// PactMaskedBatchNormRelu(Grad, Inference), PactBatchNormReluInference and PactScaledResidualAdd(Grad): a batch
// norm is 3 + 3 kernels instead of the composite's two dozen tfjs ops.
//
// Kernels: per-channel sums (and the active-row count) in double over spans of rows (a block covers up to 32
// channels x 256/32+ rows that stride through its span), the spans combined per channel by one warp in a fixed
// order (the same result in every run), then one element-wise pass. Queued on the default stream without waiting;
// scratch from memory.cuh's Scratch. A mask may be null (every row active); NaN in it is inactive.
// Limits: channels >= 1, rows * channels < 2^62; training statistics of zero active rows are 0 (all outputs 0).
#pragma once
#include <cstdint>

namespace pact::cuda {

// cpu/batch_norm.h's batchNormTrain (mask null) or cpu/masked_residual_unit.h's maskedBatchNormRelu (mask given,
// relu true): statistics over the active rows, y at the active rows and 0 elsewhere.
void batchNormTrain(const float* x, const float* mask, const float* scale, const float* offset, int64_t rows,
                    int64_t channels, float epsilon, bool relu, float* y, float* mean, float* variance);

// Gradient of batchNormTrain given dy and the statistics outputs' gradients (dmean, dvariance: null for 0). y (the
// forward output) is read with relu only (may be null otherwise); dx is 0 at the inactive rows.
void batchNormTrainGrad(const float* dy, const float* dmean, const float* dvariance, const float* x,
                        const float* mask, const float* scale, const float* mean, const float* variance,
                        const float* y, int64_t rows, int64_t channels, float epsilon, bool relu, float* dx,
                        float* dscale, float* doffset);

// Evaluation: y = relu((x - mean) / sqrt(variance + epsilon) * scale + offset) at the active rows (every row when
// mask is null), 0 elsewhere.
void batchNormReluInference(const float* x, const float* mask, const float* scale, const float* offset,
                            const float* mean, const float* variance, int64_t rows, int64_t channels, float epsilon,
                            float* y);

// y = u + c * a[row]; and its gradient dc = dy * a[row], da[row] = <dy[row], c[row]>.
void scaledResidualAdd(const float* u, const float* c, const float* a, int64_t rows, int64_t channels, float* y);
void scaledResidualAddGrad(const float* dy, const float* c, const float* a, int64_t rows, int64_t channels, float* dc,
                           float* da);

}  // namespace pact::cuda
