// Element-wise CUDA kernels of the pact-cuda backend on float32 device arrays: unary maps and binary ops with
// NumPy broadcasting (the output's shape, and each input's strides with 0 along its broadcast dimensions). The
// launchers throw std::runtime_error when a launch fails; they do not synchronise.
#pragma once
#include <cstdint>

namespace pact::cuda {

// The order is the JS side's (src/backends/pact_cuda/kernels/elementwise.ts).
// kStep: tfjs' Step with alpha 0 (1 where x > 0, NaN stays NaN). kSoftplus: tfjs' (exp(x) below log(eps) + 2, x
// above its negation, log1p(exp(x)) between).
enum class UnaryOp : int32_t {
  kRelu, kNeg, kExp, kLog, kSqrt, kRsqrt, kSigmoid, kTanh, kAbs, kSquare, kStep, kSoftplus, kCount
};
enum class BinaryOp : int32_t { kAdd, kSub, kMul, kDiv, kMax, kMin, kSquaredDifference, kPow, kCount };

constexpr int kMaxBroadcastRank = 6;

struct BroadcastShape {
  int32_t rank;
  int64_t shape[kMaxBroadcastRank];
  int64_t aStrides[kMaxBroadcastRank];
  int64_t bStrides[kMaxBroadcastRank];
};

// Reductions over the middle axis of x viewed as [outer, reduced, inner]: out[o, i] = op over r of x[o, r, i].
enum class ReduceOp : int32_t { kSum, kMean, kMax, kMin, kCount };

// Element types of device tensors: float32, int32, bool (one byte, 0 or 1).
enum class CastType : int32_t { kFloat32, kInt32, kBool, kCount };

// Comparisons and logical ops with broadcasting; the output is bool (one byte, 0 or 1). NaN compares false
// (NotEqual: true), as in JavaScript.
enum class CompareOp : int32_t {
  kEqual, kNotEqual, kLess, kLessEqual, kGreater, kGreaterEqual, kLogicalAnd, kLogicalOr, kCount
};

// ArgMax / ArgMin over the middle axis of [outer, reduced, inner]: the first index of the extreme (as tfjs'),
// int32 output [outer, inner].
enum class ArgReduceOp : int32_t { kArgMax, kArgMin, kCount };

void unary(UnaryOp op, const float* x, float* y, int64_t n);
// Batched row-major products: c[b] = op(a[b]) * op(bm[b]) with op a transpose where requested; a and bm broadcast
// over the batch when their batch is 1. a [batchA, M, K] (or [batchA, K, M] transposed), bm [batchB, K, N] (or
// [batchB, N, K]), c [batch, M, N]. Shared-memory tiles of 16x16.
void batchMatMul(const float* a, const float* bm, float* c, int64_t batch, int64_t batchA, int64_t batchB, int64_t M,
                 int64_t N, int64_t K, bool transposeA, bool transposeB);
void fill(float* y, float value, int64_t n);
// x and out of `type`: float32 (every op), int32 (sum with int32 wrap-around, max, min; mean truncates toward
// zero), bool (max = any, min = all).
void reduce(ReduceOp op, CastType type, const void* x, int64_t outer, int64_t reduced, int64_t inner, void* out);
void argReduce(ArgReduceOp op, CastType type, const void* x, int64_t outer, int64_t reduced, int64_t inner,
               int32_t* out);
// out = op(a, b) for a and b of `type` (the same for both), broadcast as `shape` says.
void compare(CompareOp op, CastType type, const void* a, const void* b, uint8_t* out, const BroadcastShape& shape);
// y[i] = x[i] converted (to bool: x != 0; float32 to int32: truncation toward zero, as tfjs' Cast).
void cast(const void* x, CastType from, void* y, CastType to, int64_t n);
void binary(BinaryOp op, const float* a, const float* b, float* out, const BroadcastShape& shape);

// One SGD-momentum step (cpu/sgd_momentum.h, whose rounding it keeps: __fmul_rn/__fadd_rn, never contracted into a
// fused multiply-add): accumulationOut = accumulation * momentum + gradient, valueOut = negLearningRate *
// accumulationOut + value, over n floats.
void sgdMomentum(const float* value, const float* accumulation, const float* gradient, int64_t n, float negLearningRate,
                 float momentum, float* valueOut, float* accumulationOut);

}  // namespace pact::cuda
