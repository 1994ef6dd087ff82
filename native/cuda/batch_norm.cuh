// CUDA launchers of training-mode batch norm and its gradient: the same math, layout and signatures as
// cpu/batch_norm.h's batchNormTrain / batchNormTrainGrad (rows = N*H*W of an NHWC tensor, channel fastest), on
// device pointers. pact-cuda runs them for PactBatchNormTrain(Grad) (src/ops/batch_norm_train.ts), so a training
// step's batch norms are 3 + 3 kernels each instead of the composite's two dozen tfjs ops, whose gradients (Sum's
// and Mean's) build a full-size array of ones on the host every time.
//
// Kernels: per-channel sums in double over spans of rows (a block covers up to 32 channels x 256/32+ rows that
// stride through its span), the spans combined per channel by one warp in a fixed order (the same result in every
// run), then one element-wise pass. Queued on the default stream without waiting; scratch from memory.cuh's
// Scratch. Limits: rows >= 1, channels >= 1, rows * channels < 2^62.
#pragma once
#include <cstdint>

namespace pact::cuda {

void batchNormTrain(const float* x, const float* scale, const float* offset, int64_t rows, int64_t channels,
                    float epsilon, bool relu, float* y, float* mean, float* variance);

// y is read only with `relu` (may be null otherwise).
void batchNormTrainGrad(const float* dy, const float* dmean, const float* dvariance, const float* x,
                        const float* scale, const float* mean, const float* variance, const float* y, int64_t rows,
                        int64_t channels, float epsilon, bool relu, float* dx, float* dscale, float* doffset);

}  // namespace pact::cuda
