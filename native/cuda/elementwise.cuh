// Element-wise CUDA kernels of the pact-cuda backend on float32 device arrays: unary maps and binary ops with
// NumPy broadcasting (the output's shape, and each input's strides with 0 along its broadcast dimensions). The
// launchers throw std::runtime_error when a launch fails; they do not synchronise.
#pragma once
#include <cstdint>

namespace pact::cuda {

// The order is the JS side's (src/backends/pact_cuda/kernels/elementwise.ts).
enum class UnaryOp : int32_t { kRelu, kNeg, kExp, kLog, kSqrt, kRsqrt, kSigmoid, kTanh, kAbs, kSquare, kCount };
enum class BinaryOp : int32_t { kAdd, kSub, kMul, kDiv, kMax, kMin, kSquaredDifference, kCount };

constexpr int kMaxBroadcastRank = 6;

struct BroadcastShape {
  int32_t rank;
  int64_t shape[kMaxBroadcastRank];
  int64_t aStrides[kMaxBroadcastRank];
  int64_t bStrides[kMaxBroadcastRank];
};

void unary(UnaryOp op, const float* x, float* y, int64_t n);
void binary(BinaryOp op, const float* a, const float* b, float* out, const BroadcastShape& shape);

}  // namespace pact::cuda
