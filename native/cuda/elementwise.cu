// Element-wise kernels (elementwise.cuh): grid-stride loops, one thread per output element.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "cuda/elementwise.cuh"
#include "cuda/launch.h"

namespace pact::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 4096;

int blocksFor(int64_t items) {
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>((items + kThreads - 1) / kThreads, kMaxBlocks)));
}

void checkLaunch(const char* kernel) {
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) throw std::runtime_error(std::string(kernel) + ": launch failed: " + cudaGetErrorString(err));
}

__device__ inline float applyUnary(UnaryOp op, float x) {
  switch (op) {
    case UnaryOp::kRelu: return x < 0.0f ? 0.0f : x;
    case UnaryOp::kNeg: return -x;
    case UnaryOp::kExp: return expf(x);
    case UnaryOp::kLog: return logf(x);
    case UnaryOp::kSqrt: return sqrtf(x);
    case UnaryOp::kRsqrt: return rsqrtf(x);
    case UnaryOp::kSigmoid: return 1.0f / (1.0f + expf(-x));
    case UnaryOp::kTanh: return tanhf(x);
    case UnaryOp::kAbs: return fabsf(x);
    case UnaryOp::kSquare: return x * x;
    default: return x;
  }
}

__device__ inline float applyBinary(BinaryOp op, float a, float b) {
  switch (op) {
    case BinaryOp::kAdd: return a + b;
    case BinaryOp::kSub: return a - b;
    case BinaryOp::kMul: return a * b;
    case BinaryOp::kDiv: return a / b;
    // NaN wins, as in tfjs-backend-cpu's Math.max / Math.min.
    case BinaryOp::kMax: return (a != a || b != b) ? a + b : (a > b ? a : b);
    case BinaryOp::kMin: return (a != a || b != b) ? a + b : (a < b ? a : b);
    case BinaryOp::kSquaredDifference: return (a - b) * (a - b);
    default: return a;
  }
}

__global__ void unaryKernel(UnaryOp op, const float* x, float* y, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    y[i] = applyUnary(op, x[i]);
  }
}

__global__ void binaryKernel(BinaryOp op, const float* a, const float* b, float* out, BroadcastShape s, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t rest = i, ia = 0, ib = 0;
    for (int d = s.rank - 1; d >= 0; --d) {
      const int64_t coord = rest % s.shape[d];
      rest /= s.shape[d];
      ia += coord * s.aStrides[d];
      ib += coord * s.bStrides[d];
    }
    out[i] = applyBinary(op, a[ia], b[ib]);
  }
}

}  // namespace

void unary(UnaryOp op, const float* x, float* y, int64_t n) {
  if (n == 0) return;
  PACT_LAUNCH(unaryKernel, blocksFor(n), kThreads, 0, nullptr, op, x, y, n);
  checkLaunch("unaryKernel");
}

void binary(BinaryOp op, const float* a, const float* b, float* out, const BroadcastShape& shape) {
  int64_t n = 1;
  for (int d = 0; d < shape.rank; ++d) n *= shape.shape[d];
  if (n == 0) return;
  PACT_LAUNCH(binaryKernel, blocksFor(n), kThreads, 0, nullptr, op, a, b, out, shape, n);
  checkLaunch("binaryKernel");
}

}  // namespace pact::cuda
