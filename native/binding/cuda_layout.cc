// N-API functions of the pact-cuda backend's comparison, arg-reduction, data-movement and pooling kernels
// (cuda/elementwise.cuh, cuda/layout.cuh) on device buffers. As in cuda_tensors.cc, every id, code, shape and
// length is checked here before a kernel runs: a wrong call throws a JS Error naming the function.
#include <napi.h>

#include <string>
#include <vector>

#include "binding/args.h"
#include "binding/conv_args.h"
#include "binding/cuda_buffers.h"
#include "binding/registry.h"
#include "cuda/elementwise.cuh"
#include "cuda/layout.cuh"

namespace {

using namespace pact::cuda_binding;
using pact::cuda::CastType;

// cudaCompare(op, type, aId, aShape, bId, bShape, outId): out (bool) = op(a, b) with broadcasting, a and b of
// `type`.
Napi::Value cudaCompare(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "cudaCompare";
  using pact::cuda::kMaxBroadcastRank;
  const auto op = static_cast<pact::cuda::CompareOp>(
      pact::intArg(info, 0, fn, "op", 0, static_cast<int64_t>(pact::cuda::CompareOp::kCount) - 1));
  const CastType type = typeArg(info, 1, fn, "type");
  const std::vector<int64_t> aShape = pact::shapeArg(info, 3, fn, "aShape", kMaxBroadcastRank);
  const std::vector<int64_t> bShape = pact::shapeArg(info, 5, fn, "bShape", kMaxBroadcastRank);
  const void* a = deviceArray(info, 2, fn, "a", type, pact::shapeSize(info, fn, "aShape", aShape));
  const void* b = deviceArray(info, 4, fn, "b", type, pact::shapeSize(info, fn, "bShape", bShape));
  const pact::cuda::BroadcastShape s = broadcastArg(info, aShape, bShape, fn);
  auto* out = static_cast<uint8_t*>(deviceArray(info, 6, fn, "out", CastType::kBool, broadcastSize(s)));
  runLauncher(info.Env(), fn, [&] { pact::cuda::compare(op, type, a, b, out, s); });
  return info.Env().Undefined();
}

// cudaArgReduce(op, type, xId, outer, reduced, inner, outId): out (int32, [outer, inner]) = the first index of the
// maximum (op 0) or minimum (1) over r of x[o, r, i].
Napi::Value cudaArgReduce(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "cudaArgReduce";
  const auto op = static_cast<pact::cuda::ArgReduceOp>(
      pact::intArg(info, 0, fn, "op", 0, static_cast<int64_t>(pact::cuda::ArgReduceOp::kCount) - 1));
  const CastType type = typeArg(info, 1, fn, "type");
  const int64_t outer = pact::intArg(info, 3, fn, "outer", 0, kMaxBytes / 4);
  const int64_t reduced = pact::intArg(info, 4, fn, "reduced", 1, int64_t{1} << 31);
  const int64_t inner = pact::intArg(info, 5, fn, "inner", 0, kMaxBytes / 4);
  const void* x = deviceArray(info, 2, fn, "x", type, pact::elementCount(info, fn, {outer, reduced, inner}));
  auto* out =
      static_cast<int32_t*>(deviceArray(info, 6, fn, "out", CastType::kInt32, pact::elementCount(info, fn, {outer, inner})));
  runLauncher(info.Env(), fn, [&] { pact::cuda::argReduce(op, type, x, outer, reduced, inner, out); });
  return info.Env().Undefined();
}

// The largest element offset a strided walk of `shape` reaches from `offset` (strides >= 0), plus one.
// Bytes from the buffer's start to the end of the last element a walk of `shape` with `strides` (elements) from
// `offset` reaches, or SIZE_MAX when that overflows (the caller then rejects the copy).
size_t extentBytes(const std::vector<int64_t>& shape, const std::vector<int64_t>& strides, int64_t offset,
                   size_t elementBytes) {
  size_t last = static_cast<size_t>(offset), step = 0;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 0) return 0;
    if (__builtin_mul_overflow(static_cast<size_t>(shape[d] - 1), static_cast<size_t>(strides[d]), &step) ||
        __builtin_add_overflow(last, step, &last)) {
      return SIZE_MAX;
    }
  }
  size_t bytes = 0;
  return __builtin_mul_overflow(last + 1, elementBytes, &bytes) ? SIZE_MAX : bytes;
}

// cudaStridedCopy(elementBytes, srcId, dstId, shape, srcStrides, srcOffset, dstStrides, dstOffset): see
// cuda/layout.cuh; every element either walk reaches must lie inside its buffer.
Napi::Value cudaStridedCopy(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "cudaStridedCopy";
  using pact::cuda::kMaxCopyRank;
  const int elementBytes = static_cast<int>(pact::intArg(info, 0, fn, "elementBytes", 1, 4));
  if (elementBytes != 1 && elementBytes != 4) pact::throwArg(info.Env(), fn, "elementBytes must be 1 or 4");
  const BufferTable::Buffer& src = bufferArg(info, 1, fn, "src");
  const BufferTable::Buffer& dst = bufferArg(info, 2, fn, "dst");
  const std::vector<int64_t> shape = pact::shapeArg(info, 3, fn, "shape", kMaxCopyRank);
  const std::vector<int64_t> srcStrides = pact::shapeArg(info, 4, fn, "srcStrides", kMaxCopyRank);
  const int64_t srcOffset = pact::intArg(info, 5, fn, "srcOffset", 0, kMaxBytes);
  const std::vector<int64_t> dstStrides = pact::shapeArg(info, 6, fn, "dstStrides", kMaxCopyRank);
  const int64_t dstOffset = pact::intArg(info, 7, fn, "dstOffset", 0, kMaxBytes);
  if (srcStrides.size() != shape.size() || dstStrides.size() != shape.size()) {
    pact::throwArg(info.Env(), fn, "srcStrides and dstStrides must have one entry per dimension of shape");
  }
  pact::shapeSize(info, fn, "shape", shape);
  const size_t bytes = static_cast<size_t>(elementBytes);
  if (extentBytes(shape, srcStrides, srcOffset, bytes) > src.bytes) {
    pact::throwArg(info.Env(), fn, "the copy reads past the end of src (" + std::to_string(src.bytes) + " bytes)");
  }
  if (extentBytes(shape, dstStrides, dstOffset, bytes) > dst.bytes) {
    pact::throwArg(info.Env(), fn, "the copy writes past the end of dst (" + std::to_string(dst.bytes) + " bytes)");
  }
  pact::cuda::CopyShape s{};
  s.rank = static_cast<int32_t>(shape.size());
  for (size_t d = 0; d < shape.size(); ++d) {
    s.shape[d] = shape[d];
    s.srcStrides[d] = srcStrides[d];
    s.dstStrides[d] = dstStrides[d];
  }
  s.srcOffset = srcOffset;
  s.dstOffset = dstOffset;
  runLauncher(info.Env(), fn, [&] { pact::cuda::stridedCopy(src.data, dst.data, elementBytes, s); });
  return info.Env().Undefined();
}

// cudaOneHot(indicesId, n, depth, on, off, asFloat, outId): out [n, depth] float32 (asFloat) or int32.
Napi::Value cudaOneHot(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "cudaOneHot";
  const int64_t n = pact::intArg(info, 1, fn, "n", 0, kMaxBytes / 4);
  const int64_t depth = pact::intArg(info, 2, fn, "depth", 0, int64_t{1} << 31);
  const double on = pact::numberArg(info, 3, fn, "on");
  const double off = pact::numberArg(info, 4, fn, "off");
  const bool asFloat = pact::boolArg(info, 5, fn, "asFloat");
  const auto* indices = static_cast<const int32_t*>(deviceArray(info, 0, fn, "indices", CastType::kInt32, n));
  void* out = deviceArray(info, 6, fn, "out", asFloat ? CastType::kFloat32 : CastType::kInt32,
                          pact::elementCount(info, fn, {n, depth}));
  runLauncher(info.Env(), fn, [&] { pact::cuda::oneHot(indices, n, depth, on, off, asFloat, out); });
  return info.Env().Undefined();
}

// The pooling geometry at info[i]: [batch, inH, inW, channels, outH, outW, filterH, filterW, strideH, strideW,
// padTop, padLeft], each window overlapping the input.
pact::cuda::PoolGeometry poolGeometryArg(const Napi::CallbackInfo& info, size_t i, const char* fn) {
  const std::vector<int64_t> v = pact::shapeArg(info, i, fn, "geometry", 12);
  if (v.size() != 12) {
    pact::throwArg(info.Env(), fn,
                   "geometry must be [batch, inH, inW, channels, outH, outW, filterH, filterW, strideH, strideW, "
                   "padTop, padLeft]");
  }
  for (int64_t d : v) {
    if (d > (int64_t{1} << 31)) pact::throwArg(info.Env(), fn, "geometry has an entry above 2^31");
  }
  const pact::cuda::PoolGeometry g{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11]};
  if (g.filterH < 1 || g.filterW < 1 || g.strideH < 1 || g.strideW < 1) {
    pact::throwArg(info.Env(), fn, "filter and stride sizes must be >= 1");
  }
  return g;
}

// cudaPool2d(op, geometry, xId, yId): op 0 max, 1 average (cuda/layout.cuh).
Napi::Value cudaPool2d(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "cudaPool2d";
  const auto op = static_cast<pact::cuda::PoolOp>(
      pact::intArg(info, 0, fn, "op", 0, static_cast<int64_t>(pact::cuda::PoolOp::kCount) - 1));
  const pact::cuda::PoolGeometry g = poolGeometryArg(info, 1, fn);
  const float* x = deviceFloats(info, 2, fn, "x", pact::elementCount(info, fn, {g.batch, g.inH, g.inW, g.channels}), false);
  float* y = deviceFloats(info, 3, fn, "y", pact::elementCount(info, fn, {g.batch, g.outH, g.outW, g.channels}), false);
  runLauncher(info.Env(), fn, [&] { pact::cuda::pool2d(op, g, x, y); });
  return info.Env().Undefined();
}

// cudaPool2dGrad(op, geometry, xId, dyId, dxId): the gradient of cudaPool2d (x is read by max only).
Napi::Value cudaPool2dGrad(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "cudaPool2dGrad";
  const auto op = static_cast<pact::cuda::PoolOp>(
      pact::intArg(info, 0, fn, "op", 0, static_cast<int64_t>(pact::cuda::PoolOp::kCount) - 1));
  const pact::cuda::PoolGeometry g = poolGeometryArg(info, 1, fn);
  const size_t inCount = pact::elementCount(info, fn, {g.batch, g.inH, g.inW, g.channels});
  const float* x = deviceFloats(info, 2, fn, "x", inCount, false);
  const float* dy = deviceFloats(info, 3, fn, "dy", pact::elementCount(info, fn, {g.batch, g.outH, g.outW, g.channels}), false);
  float* dx = deviceFloats(info, 4, fn, "dx", inCount, false);
  runLauncher(info.Env(), fn, [&] { pact::cuda::pool2dGrad(op, g, x, dy, dx); });
  return info.Env().Undefined();
}

}  // namespace

PACT_EXPORT("cudaCompare", cudaCompare);
PACT_EXPORT("cudaArgReduce", cudaArgReduce);
PACT_EXPORT("cudaStridedCopy", cudaStridedCopy);
PACT_EXPORT("cudaOneHot", cudaOneHot);
PACT_EXPORT("cudaPool2d", cudaPool2d);
PACT_EXPORT("cudaPool2dGrad", cudaPool2dGrad);
