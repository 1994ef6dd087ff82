// See sgd_momentum.h. CMake compiles this file with -ffp-contract=off: a fused multiply-add would round once where
// tfjs rounds twice.
#include "cpu/sgd_momentum.h"

namespace pact::optim {

void sgdMomentum(const float* value, const float* accumulation, const float* gradient, int64_t n, float negLearningRate,
                 float momentum, float* valueOut, float* accumulationOut) {
  // Memory-bound: threads only for arrays past a few L2-sized chunks.
#pragma omp parallel for simd schedule(static) if (n >= (int64_t{1} << 18))
  for (int64_t i = 0; i < n; ++i) {
    const float a = accumulation[i] * momentum + gradient[i];
    accumulationOut[i] = a;
    valueOut[i] = negLearningRate * a + value[i];
  }
}

}  // namespace pact::optim
