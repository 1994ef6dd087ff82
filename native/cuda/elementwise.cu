// Element-wise kernels (elementwise.cuh): grid-stride loops, one thread per output element.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "cuda/elementwise.cuh"
#include "cuda/launch.h"
#include "cuda/memory.cuh"

namespace pact::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 4096;

int blocksFor(int64_t items) { return gridStrideBlocks(items, kThreads, kMaxBlocks); }


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
    case UnaryOp::kStep: return x != x ? x : (x > 0.0f ? 1.0f : 0.0f);
    case UnaryOp::kSoftplus: {
      // tfjs-backend-cpu's thresholds: log(float32 epsilon) + 2.
      const float threshold = -13.942385f;
      if (x < threshold) return expf(x);
      if (x > -threshold) return x;
      return log1pf(expf(x));
    }
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
    case BinaryOp::kPow: return powf(a, b);
    default: return a;
  }
}

// Offsets of output element i in a and b under broadcasting.
__device__ inline void broadcastOffsets(const BroadcastShape& s, int64_t i, int64_t& ia, int64_t& ib) {
  int64_t rest = i;
  ia = 0;
  ib = 0;
  for (int d = s.rank - 1; d >= 0; --d) {
    const int64_t coord = rest % s.shape[d];
    rest /= s.shape[d];
    ia += coord * s.aStrides[d];
    ib += coord * s.bStrides[d];
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
    int64_t ia, ib;
    broadcastOffsets(s, i, ia, ib);
    out[i] = applyBinary(op, a[ia], b[ib]);
  }
}

__global__ void fillKernel(float* y, float value, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    y[i] = value;
  }
}

// Reductions. Acc: double for float32 (a float sum stops growing at 2^24 ones; tfjs-backend-cpu sums in doubles
// too), int64 for int32 (stored modulo 2^32, as tfjs' Int32Array does), int for bool. Max/min: a NaN seen anywhere
// wins, as in tfjs.
template <typename Acc>
__device__ inline Acc reduceInit(ReduceOp op, Acc lowest, Acc highest) {
  return op == ReduceOp::kMax ? lowest : op == ReduceOp::kMin ? highest : Acc(0);
}

template <typename Acc>
__device__ inline Acc reduceCombine(ReduceOp op, Acc acc, Acc v) {
  if (op == ReduceOp::kMax) return (v > acc || v != v) ? v : acc;
  if (op == ReduceOp::kMin) return (v < acc || v != v) ? v : acc;
  return acc + v;
}

template <typename T, typename Acc>
__device__ inline T reduceFinish(ReduceOp op, Acc acc, int64_t reduced) {
  if (op == ReduceOp::kMean) acc = acc / static_cast<Acc>(reduced);
  return static_cast<T>(acc);
}

// One thread per output element; consecutive threads read consecutive inner elements (coalesced when inner > 1).
// For many outputs or short reductions.
template <typename T, typename Acc>
__global__ void reduceKernel(ReduceOp op, const T* x, int64_t outer, int64_t reduced, int64_t inner, T* out,
                             Acc lowest, Acc highest) {
  const int64_t n = outer * inner;
  for (int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; j < n;
       j += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t o = j / inner, i = j % inner;
    const T* p = x + o * reduced * inner + i;
    Acc acc = reduceInit(op, lowest, highest);
    for (int64_t r = 0; r < reduced; ++r) acc = reduceCombine(op, acc, static_cast<Acc>(p[r * inner]));
    out[j] = reduceFinish<T>(op, acc, reduced);
  }
}

// Few outputs, long reductions (batch norm's per-channel sums over N*H*W, full sums): the reduced axis is split into
// gridDim.y spans of `span`; block (bx, s, o) covers `width` = min(inner, 32) consecutive inner elements (the lanes)
// times kThreads / width rows that stride through span s. Rows are combined in a fixed order, so the partial
// results partial[o, s, i] (and the sums made of them) are the same in every run.
template <typename T, typename Acc>
__global__ void reducePartialKernel(ReduceOp op, const T* x, int64_t reduced, int64_t inner, int64_t span,
                                    Acc* partial, Acc lowest, Acc highest) {
  __shared__ Acc rowsAcc[kThreads];
  const int width = inner < 32 ? static_cast<int>(inner) : 32;
  const int rows = kThreads / width;
  const int lane = threadIdx.x % width, row = threadIdx.x / width;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * width + lane, o = blockIdx.z, s = blockIdx.y;
  const int64_t end = (s + 1) * span < reduced ? (s + 1) * span : reduced;
  Acc acc = reduceInit(op, lowest, highest);
  if (row < rows && i < inner) {
    const T* p = x + o * reduced * inner + i;
    for (int64_t r = s * span + row; r < end; r += rows) acc = reduceCombine(op, acc, static_cast<Acc>(p[r * inner]));
  }
  rowsAcc[threadIdx.x] = acc;
  __syncthreads();
  if (row == 0 && i < inner) {
    for (int k = 1; k < rows; ++k) acc = reduceCombine(op, acc, rowsAcc[k * width + lane]);
    partial[(o * gridDim.y + s) * inner + i] = acc;
  }
}

// out[o, i] from the `spans` partial results of reducePartialKernel: one warp per output (grid-stride over warps),
// lane l combining spans l, l + 32, ... in order, then the lanes in a fixed shuffle tree, so the result is the same
// in every run. (One thread per output would wait for `spans` dependent loads in a row.)
template <typename T, typename Acc>
__global__ void reduceSpansKernel(ReduceOp op, const Acc* partial, int64_t outer, int64_t spans, int64_t inner,
                                  int64_t reduced, T* out, Acc lowest, Acc highest) {
  const int lane = threadIdx.x % 32;
  const int64_t n = outer * inner, warps = gridDim.x * static_cast<int64_t>(blockDim.x) / 32;
  for (int64_t j = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) / 32; j < n; j += warps) {
    const int64_t o = j / inner, i = j % inner;
    Acc acc = reduceInit(op, lowest, highest);
    for (int64_t s = lane; s < spans; s += 32) acc = reduceCombine(op, acc, partial[(o * spans + s) * inner + i]);
    for (int d = 16; d > 0; d /= 2) acc = reduceCombine(op, acc, __shfl_down_sync(0xffffffffu, acc, d));
    if (lane == 0) out[j] = reduceFinish<T>(op, acc, reduced);
  }
}

// Splits the reduced axis when there are fewer outputs than this and at least kSplitMinReduced reduced elements;
// then aims at about kSplitBlocks blocks in all.
constexpr int64_t kSplitMaxOutputs = 8192;
constexpr int64_t kSplitMinReduced = 512;
constexpr int64_t kSplitBlocks = 1024;
constexpr int64_t kMaxGridYZ = 65535;

template <typename T, typename Acc>
void reduceTyped(ReduceOp op, const void* xv, int64_t outer, int64_t reduced, int64_t inner, void* outv, Acc lowest,
                 Acc highest) {
  const T* x = static_cast<const T*>(xv);
  T* out = static_cast<T*>(outv);
  const int64_t n = outer * inner;
  if (n >= kSplitMaxOutputs || reduced < kSplitMinReduced || outer > kMaxGridYZ) {
    PACT_LAUNCH((reduceKernel<T, Acc>), blocksFor(n), kThreads, 0, nullptr, op, x, outer, reduced, inner, out, lowest,
                highest);
    checkLaunch("reduceKernel");
    return;
  }
  const int64_t width = std::min<int64_t>(inner, 32), rows = kThreads / width;
  const int64_t laneBlocks = (inner + width - 1) / width;
  const int64_t wanted = std::max<int64_t>(1, kSplitBlocks / (laneBlocks * outer));
  const int64_t spans = std::min({wanted, (reduced + rows - 1) / rows, kMaxGridYZ});
  const int64_t span = (reduced + spans - 1) / spans;
  const int64_t used = (reduced + span - 1) / span;  // spans that hold elements (rounding may leave fewer)
  Scratch partial(sizeof(Acc) * static_cast<size_t>(outer * used * inner));
  const dim3 grid(static_cast<unsigned>(laneBlocks), static_cast<unsigned>(used), static_cast<unsigned>(outer));
  PACT_LAUNCH((reducePartialKernel<T, Acc>), grid, kThreads, 0, nullptr, op, x, reduced, inner, span,
              partial.as<Acc>(), lowest, highest);
  checkLaunch("reducePartialKernel");
  PACT_LAUNCH((reduceSpansKernel<T, Acc>), blocksFor(32 * n), kThreads, 0, nullptr, op, partial.as<Acc>(), outer,
              used, inner, reduced, out, lowest, highest);
  checkLaunch("reduceSpansKernel");
}

// The first index of the extreme, starting from element 0 (a NaN there stays the answer, as in tfjs).
template <typename T>
__global__ void argReduceKernel(ArgReduceOp op, const T* x, int64_t outer, int64_t reduced, int64_t inner,
                                int32_t* out) {
  const int64_t n = outer * inner;
  for (int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; j < n;
       j += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t o = j / inner, i = j % inner;
    const T* p = x + o * reduced * inner + i;
    T best = p[0];
    int32_t at = 0;
    for (int64_t r = 1; r < reduced; ++r) {
      const T v = p[r * inner];
      if (op == ArgReduceOp::kArgMax ? v > best : v < best) {
        best = v;
        at = static_cast<int32_t>(r);
      }
    }
    out[j] = at;
  }
}

template <typename T>
__global__ void compareKernel(CompareOp op, const T* a, const T* b, uint8_t* out, BroadcastShape s, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t ia, ib;
    broadcastOffsets(s, i, ia, ib);
    const T x = a[ia], y = b[ib];
    bool r = false;
    switch (op) {
      case CompareOp::kEqual: r = x == y; break;
      case CompareOp::kNotEqual: r = x != y; break;
      case CompareOp::kLess: r = x < y; break;
      case CompareOp::kLessEqual: r = x <= y; break;
      case CompareOp::kGreater: r = x > y; break;
      case CompareOp::kGreaterEqual: r = x >= y; break;
      case CompareOp::kLogicalAnd: r = x != T(0) && y != T(0); break;
      case CompareOp::kLogicalOr: r = x != T(0) || y != T(0); break;
      default: break;
    }
    out[i] = r ? 1 : 0;
  }
}

__device__ inline float loadAsFloat(const void* x, CastType t, int64_t i) {
  if (t == CastType::kFloat32) return static_cast<const float*>(x)[i];
  if (t == CastType::kInt32) return static_cast<float>(static_cast<const int32_t*>(x)[i]);
  return static_cast<float>(static_cast<const uint8_t*>(x)[i]);
}

// float -> int32 as tfjs-backend-cpu's Int32Array does it (JavaScript's ToInt32): NaN and infinities give 0, other
// values are truncated toward zero and wrapped modulo 2^32. A plain static_cast is undefined outside int32's range
// (x86 gives INT32_MIN, a GPU saturates).
__device__ inline int32_t toInt32(float v) {
  if (!(v - v == 0.0f)) return 0;  // NaN or infinite
  const double wrapped = fmod(trunc(static_cast<double>(v)), 4294967296.0);  // in (-2^32, 2^32), exact
  return static_cast<int32_t>(static_cast<uint32_t>(static_cast<int64_t>(wrapped)));
}

__global__ void castKernel(const void* x, CastType from, void* y, CastType to, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    if (from == CastType::kInt32 && to == CastType::kInt32) {
      static_cast<int32_t*>(y)[i] = static_cast<const int32_t*>(x)[i];
      continue;
    }
    const float v = loadAsFloat(x, from, i);
    if (to == CastType::kFloat32) static_cast<float*>(y)[i] = v;
    else if (to == CastType::kInt32) static_cast<int32_t*>(y)[i] = toInt32(v);
    else static_cast<uint8_t*>(y)[i] = v != 0.0f ? 1 : 0;
  }
}

constexpr int kTile = 16;

// One 16x16 tile of c per block; each thread one element, K walked in tiles staged through shared memory.
__global__ void batchMatMulKernel(const float* a, const float* bm, float* c, int64_t batchA, int64_t batchB,
                                  int64_t M, int64_t N, int64_t K, bool transposeA, bool transposeB) {
  __shared__ float as[kTile][kTile];
  __shared__ float bs[kTile][kTile + 1];
  const int64_t batch = blockIdx.z;
  const float* A = a + (batchA == 1 ? 0 : batch) * M * K;
  const float* B = bm + (batchB == 1 ? 0 : batch) * K * N;
  const int64_t row = blockIdx.y * static_cast<int64_t>(kTile) + threadIdx.y;
  const int64_t col = blockIdx.x * static_cast<int64_t>(kTile) + threadIdx.x;
  float acc = 0.0f;
  for (int64_t k0 = 0; k0 < K; k0 += kTile) {
    const int64_t ka = k0 + threadIdx.x, kb = k0 + threadIdx.y;
    as[threadIdx.y][threadIdx.x] =
        row < M && ka < K ? (transposeA ? A[ka * M + row] : A[row * K + ka]) : 0.0f;
    bs[threadIdx.y][threadIdx.x] =
        kb < K && col < N ? (transposeB ? B[col * K + kb] : B[kb * N + col]) : 0.0f;
    __syncthreads();
    for (int k = 0; k < kTile; ++k) acc += as[threadIdx.y][k] * bs[k][threadIdx.x];
    __syncthreads();
  }
  if (row < M && col < N) c[(batch * M + row) * N + col] = acc;
}

}  // namespace

void batchMatMul(const float* a, const float* bm, float* c, int64_t batch, int64_t batchA, int64_t batchB, int64_t M,
                 int64_t N, int64_t K, bool transposeA, bool transposeB) {
  if (batch == 0 || M == 0 || N == 0) return;
  const dim3 grid(static_cast<unsigned>((N + kTile - 1) / kTile), static_cast<unsigned>((M + kTile - 1) / kTile),
                  static_cast<unsigned>(batch));
  PACT_LAUNCH(batchMatMulKernel, grid, dim3(kTile, kTile), 0, nullptr, a, bm, c, batchA, batchB, M, N, K, transposeA,
              transposeB);
  checkLaunch("batchMatMulKernel");
}

void fill(float* y, float value, int64_t n) {
  if (n == 0) return;
  PACT_LAUNCH(fillKernel, blocksFor(n), kThreads, 0, nullptr, y, value, n);
  checkLaunch("fillKernel");
}

void reduce(ReduceOp op, CastType type, const void* x, int64_t outer, int64_t reduced, int64_t inner, void* out) {
  if (outer * inner == 0) return;
  if (type == CastType::kFloat32) {
    reduceTyped<float, double>(op, x, outer, reduced, inner, out, -INFINITY, INFINITY);
  } else if (type == CastType::kInt32) {
    reduceTyped<int32_t, int64_t>(op, x, outer, reduced, inner, out, int64_t{INT32_MIN}, int64_t{INT32_MAX});
  } else {
    reduceTyped<uint8_t, int>(op, x, outer, reduced, inner, out, 0, 1);
  }
}

void argReduce(ArgReduceOp op, CastType type, const void* x, int64_t outer, int64_t reduced, int64_t inner,
               int32_t* out) {
  const int64_t n = outer * inner;
  if (n == 0 || reduced == 0) return;
  const int blocks = blocksFor(n);
  if (type == CastType::kFloat32) {
    PACT_LAUNCH(argReduceKernel<float>, blocks, kThreads, 0, nullptr, op, static_cast<const float*>(x), outer, reduced,
                inner, out);
  } else if (type == CastType::kInt32) {
    PACT_LAUNCH(argReduceKernel<int32_t>, blocks, kThreads, 0, nullptr, op, static_cast<const int32_t*>(x), outer,
                reduced, inner, out);
  } else {
    PACT_LAUNCH(argReduceKernel<uint8_t>, blocks, kThreads, 0, nullptr, op, static_cast<const uint8_t*>(x), outer,
                reduced, inner, out);
  }
  checkLaunch("argReduceKernel");
}

void compare(CompareOp op, CastType type, const void* a, const void* b, uint8_t* out, const BroadcastShape& shape) {
  int64_t n = 1;
  for (int d = 0; d < shape.rank; ++d) n *= shape.shape[d];
  if (n == 0) return;
  const int blocks = blocksFor(n);
  if (type == CastType::kFloat32) {
    PACT_LAUNCH(compareKernel<float>, blocks, kThreads, 0, nullptr, op, static_cast<const float*>(a),
                static_cast<const float*>(b), out, shape, n);
  } else if (type == CastType::kInt32) {
    PACT_LAUNCH(compareKernel<int32_t>, blocks, kThreads, 0, nullptr, op, static_cast<const int32_t*>(a),
                static_cast<const int32_t*>(b), out, shape, n);
  } else {
    PACT_LAUNCH(compareKernel<uint8_t>, blocks, kThreads, 0, nullptr, op, static_cast<const uint8_t*>(a),
                static_cast<const uint8_t*>(b), out, shape, n);
  }
  checkLaunch("compareKernel");
}

void cast(const void* x, CastType from, void* y, CastType to, int64_t n) {
  if (n == 0) return;
  PACT_LAUNCH(castKernel, blocksFor(n), kThreads, 0, nullptr, x, from, y, to, n);
  checkLaunch("castKernel");
}

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

namespace {

__global__ void sgdMomentumKernel(const float* value, const float* accumulation, const float* gradient, int64_t n,
                                  float negLearningRate, float momentum, float* valueOut, float* accumulationOut) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float a = __fadd_rn(__fmul_rn(accumulation[i], momentum), gradient[i]);
    accumulationOut[i] = a;
    valueOut[i] = __fadd_rn(__fmul_rn(negLearningRate, a), value[i]);
  }
}

}  // namespace

void sgdMomentum(const float* value, const float* accumulation, const float* gradient, int64_t n, float negLearningRate,
                 float momentum, float* valueOut, float* accumulationOut) {
  if (n == 0) return;
  PACT_LAUNCH(sgdMomentumKernel, blocksFor(n), kThreads, 0, nullptr, value, accumulation, gradient, n,
              negLearningRate, momentum, valueOut, accumulationOut);
  checkLaunch("sgdMomentumKernel");
}

}  // namespace pact::cuda
