// One SGD-momentum step over a variable in one pass, as tfjs' MomentumOptimizer computes it with four ops:
//   accumulation' = accumulation * momentum + gradient,   value' = (-learningRate) * accumulation' + value,
// every product and sum rounded to float32 on its own (sgd_momentum.cc is compiled without FMA contraction), so the
// result equals tfjs' bit for bit and a run may switch between the two, or resume from either's checkpoint.
#pragma once
#include <cstdint>

namespace pact::optim {

// Arrays of n floats; the outputs may not overlap the inputs.
void sgdMomentum(const float* value, const float* accumulation, const float* gradient, int64_t n, float negLearningRate,
                 float momentum, float* valueOut, float* accumulationOut);

}  // namespace pact::optim
