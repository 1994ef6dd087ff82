// N-API functions of the pact-cuda backend: device buffers addressed by id (create, write, read, free), memory
// statistics, and the kernels that run on buffers already on the device. Every id, op code, shape and length is
// checked here before anything touches device memory: a wrong call throws a JS Error naming the function.
#include <cuda_runtime.h>
#include <napi.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "binding/args.h"
#include "binding/conv_args.h"
#include "binding/cuda_buffers.h"
#include "binding/halting_args.h"
#include "binding/registry.h"
#include "cuda/batch_norm.cuh"
#include "cuda/cudnn_conv.h"
#include "cuda/device.h"
#include "cuda/elementwise.cuh"
#include "cuda/halting_step.cuh"
#include "cuda/masked_conv2d.cuh"
#include "cuda/memory.cuh"

namespace {

using namespace pact::cuda_binding;
using pact::cuda::BufferTable;

// cudaBufferCreate(bytes) -> id
Napi::Value cudaBufferCreate(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "cudaBufferCreate";
  const auto bytes = static_cast<size_t>(pact::intArg(info, 0, fn, "bytes", 0, kMaxBytes));
  requireDevice(info.Env(), fn);
  try {
    return Napi::Number::New(info.Env(), static_cast<double>(BufferTable::instance().create(bytes)));
  } catch (const std::runtime_error& e) {
    throw Napi::Error::New(info.Env(), std::string(fn) + ": " + e.what());
  }
}

// cudaBufferFree(id)
Napi::Value cudaBufferFree(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "cudaBufferFree";
  const auto id = static_cast<uint64_t>(pact::intArg(info, 0, fn, "id", 1, kMaxId));
  try {
    BufferTable::instance().destroy(id);
  } catch (const std::invalid_argument& e) {
    pact::throwArg(info.Env(), fn, std::string("id: ") + e.what());
  }
  return info.Env().Undefined();
}

// cudaBufferWrite(id, typedArray): the array's bytes must be the buffer's size. Small arrays are copied without
// waiting for queued kernels (memory.cuh's writeToDevice).
Napi::Value cudaBufferWrite(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "cudaBufferWrite";
  const BufferTable::Buffer& buffer = bufferArg(info, 0, fn, "id");
  Napi::TypedArray host = typedArrayArg(info, 1, fn, "values");
  if (host.ByteLength() != buffer.bytes) {
    pact::throwArg(info.Env(), fn, "values has " + std::to_string(host.ByteLength()) + " bytes, the buffer " +
                                       std::to_string(buffer.bytes));
  }
  if (buffer.bytes > 0) {
    const auto* src = static_cast<const uint8_t*>(host.ArrayBuffer().Data()) + host.ByteOffset();
    runLauncher(info.Env(), fn, [&] { pact::cuda::writeToDevice(buffer.data, src, buffer.bytes); });
  }
  return info.Env().Undefined();
}

// cudaBufferRead(id, typedArray): fills the array (of the buffer's size in bytes).
Napi::Value cudaBufferRead(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "cudaBufferRead";
  const BufferTable::Buffer& buffer = bufferArg(info, 0, fn, "id");
  Napi::TypedArray host = typedArrayArg(info, 1, fn, "out");
  if (host.ByteLength() != buffer.bytes) {
    pact::throwArg(info.Env(), fn, "out has " + std::to_string(host.ByteLength()) + " bytes, the buffer " +
                                       std::to_string(buffer.bytes));
  }
  if (buffer.bytes > 0) {
    auto* dst = static_cast<uint8_t*>(host.ArrayBuffer().Data()) + host.ByteOffset();
    check(info.Env(), cudaMemcpy(dst, buffer.data, buffer.bytes, cudaMemcpyDeviceToHost), fn, "cudaMemcpy");
  }
  return info.Env().Undefined();
}

// cudaSynchronize(): waits for every kernel launched so far (benchmarks time the device with it); a kernel's
// asynchronous error surfaces here as an Error.
Napi::Value cudaSynchronize(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "cudaSynchronize";
  requireDevice(info.Env(), fn);
  check(info.Env(), cudaDeviceSynchronize(), fn, "cudaDeviceSynchronize");
  return info.Env().Undefined();
}

// cudaMemoryInfo() -> { bytesInUse, bytesReserved, peakBytesInUse, buffers, deviceAllocations }
Napi::Value cudaMemoryInfo(const Napi::CallbackInfo& info) {
  const pact::cuda::MemoryStats s = BufferTable::instance().allocator().stats();
  auto out = Napi::Object::New(info.Env());
  out.Set("bytesInUse", static_cast<double>(s.bytesInUse));
  out.Set("bytesReserved", static_cast<double>(s.bytesReserved));
  out.Set("peakBytesInUse", static_cast<double>(s.peakBytesInUse));
  out.Set("buffers", static_cast<double>(s.buffers));
  out.Set("deviceAllocations", static_cast<double>(s.deviceAllocations));
  return out;
}

// cudaEmptyCache(): returns the allocator's cached blocks to the device.
Napi::Value cudaEmptyCache(const Napi::CallbackInfo& info) {
  BufferTable::instance().allocator().emptyCache();
  return info.Env().Undefined();
}

// cudaUnary(op, xId, yId, n): y = op(x) on n float32 values.
Napi::Value cudaUnary(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "cudaUnary";
  const auto op = static_cast<pact::cuda::UnaryOp>(
      pact::intArg(info, 0, fn, "op", 0, static_cast<int64_t>(pact::cuda::UnaryOp::kCount) - 1));
  const BufferTable::Buffer& x = bufferArg(info, 1, fn, "x");
  const BufferTable::Buffer& y = bufferArg(info, 2, fn, "y");
  const auto n = static_cast<size_t>(pact::intArg(info, 3, fn, "n", 0, kMaxBytes / 4));
  requireFloats(info, x, n, fn, "x");
  requireFloats(info, y, n, fn, "y");
  runLauncher(info.Env(), fn, [&] {
    pact::cuda::unary(op, static_cast<const float*>(x.data), static_cast<float*>(y.data), static_cast<int64_t>(n));
  });
  return info.Env().Undefined();
}

// cudaBinary(op, aId, aShape, bId, bShape, outId): out = op(a, b) with NumPy broadcasting; out holds the broadcast
// shape's float32 values.
Napi::Value cudaBinary(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "cudaBinary";
  using pact::cuda::kMaxBroadcastRank;
  const auto op = static_cast<pact::cuda::BinaryOp>(
      pact::intArg(info, 0, fn, "op", 0, static_cast<int64_t>(pact::cuda::BinaryOp::kCount) - 1));
  const BufferTable::Buffer& a = bufferArg(info, 1, fn, "a");
  const std::vector<int64_t> aShape = pact::shapeArg(info, 2, fn, "aShape", kMaxBroadcastRank);
  const BufferTable::Buffer& b = bufferArg(info, 3, fn, "b");
  const std::vector<int64_t> bShape = pact::shapeArg(info, 4, fn, "bShape", kMaxBroadcastRank);
  const BufferTable::Buffer& out = bufferArg(info, 5, fn, "out");
  requireFloats(info, a, pact::shapeSize(info, fn, "aShape", aShape), fn, "a");
  requireFloats(info, b, pact::shapeSize(info, fn, "bShape", bShape), fn, "b");
  const pact::cuda::BroadcastShape s = broadcastArg(info, aShape, bShape, fn);
  const size_t n = broadcastSize(s);
  requireFloats(info, out, n, fn, "out");
  runLauncher(info.Env(), fn, [&] {
    pact::cuda::binary(op, static_cast<const float*>(a.data), static_cast<const float*>(b.data),
                       static_cast<float*>(out.data), s);
  });
  return info.Env().Undefined();
}

// cudaFill(yId, value, n): n float32 values of y set to value.
Napi::Value cudaFill(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "cudaFill";
  const BufferTable::Buffer& y = bufferArg(info, 0, fn, "y");
  const double value = pact::numberArg(info, 1, fn, "value");
  const auto n = static_cast<size_t>(pact::intArg(info, 2, fn, "n", 0, kMaxBytes / 4));
  requireFloats(info, y, n, fn, "y");
  runLauncher(info.Env(), fn, [&] {
    pact::cuda::fill(static_cast<float*>(y.data), static_cast<float>(value), static_cast<int64_t>(n));
  });
  return info.Env().Undefined();
}

// cudaReduce(op, type, xId, outer, reduced, inner, outId): out[o, i] = op over r of x[o, r, i], x and out of
// `type` (codes in cuda/elementwise.cuh: ReduceOp, CastType).
Napi::Value cudaReduce(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "cudaReduce";
  const auto op = static_cast<pact::cuda::ReduceOp>(
      pact::intArg(info, 0, fn, "op", 0, static_cast<int64_t>(pact::cuda::ReduceOp::kCount) - 1));
  const pact::cuda::CastType type = typeArg(info, 1, fn, "type");
  const int64_t outer = pact::intArg(info, 3, fn, "outer", 0, kMaxBytes / 4);
  const int64_t reduced = pact::intArg(info, 4, fn, "reduced", 1, kMaxBytes / 4);
  const int64_t inner = pact::intArg(info, 5, fn, "inner", 0, kMaxBytes / 4);
  const void* x = deviceArray(info, 2, fn, "x", type, pact::elementCount(info, fn, {outer, reduced, inner}));
  void* out = deviceArray(info, 6, fn, "out", type, pact::elementCount(info, fn, {outer, inner}));
  runLauncher(info.Env(), fn, [&] { pact::cuda::reduce(op, type, x, outer, reduced, inner, out); });
  return info.Env().Undefined();
}

// cudaCast(xId, from, yId, to, n): n values converted; type codes in cuda/elementwise.cuh's CastType.
Napi::Value cudaCast(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "cudaCast";
  constexpr int64_t kTypes = static_cast<int64_t>(pact::cuda::CastType::kCount) - 1;
  const BufferTable::Buffer& x = bufferArg(info, 0, fn, "x");
  const auto from = static_cast<pact::cuda::CastType>(pact::intArg(info, 1, fn, "from", 0, kTypes));
  const BufferTable::Buffer& y = bufferArg(info, 2, fn, "y");
  const auto to = static_cast<pact::cuda::CastType>(pact::intArg(info, 3, fn, "to", 0, kTypes));
  const auto n = static_cast<size_t>(pact::intArg(info, 4, fn, "n", 0, kMaxBytes / 4));
  auto bytes = [](pact::cuda::CastType t) { return t == pact::cuda::CastType::kBool ? size_t{1} : size_t{4}; };
  if (x.bytes != n * bytes(from)) pact::throwArg(info.Env(), fn, "x holds " + std::to_string(x.bytes) + " bytes, not n values of its type");
  if (y.bytes != n * bytes(to)) pact::throwArg(info.Env(), fn, "y holds " + std::to_string(y.bytes) + " bytes, not n values of its type");
  runLauncher(info.Env(), fn, [&] { pact::cuda::cast(x.data, from, y.data, to, static_cast<int64_t>(n)); });
  return info.Env().Undefined();
}

// cudaBatchMatMul(aId, bId, cId, batch, batchA, batchB, M, N, K, transposeA, transposeB): see
// cuda/elementwise.cuh; batchA and batchB are the batch or 1.
Napi::Value cudaBatchMatMul(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "cudaBatchMatMul";
  constexpr int64_t kMaxDim = int64_t{1} << 31;
  const int64_t batch = pact::intArg(info, 3, fn, "batch", 0, 65535);
  const int64_t batchA = pact::intArg(info, 4, fn, "batchA", 0, 65535);
  const int64_t batchB = pact::intArg(info, 5, fn, "batchB", 0, 65535);
  const int64_t M = pact::intArg(info, 6, fn, "M", 0, kMaxDim);
  const int64_t N = pact::intArg(info, 7, fn, "N", 0, kMaxDim);
  const int64_t K = pact::intArg(info, 8, fn, "K", 0, kMaxDim);
  const bool transposeA = pact::boolArg(info, 9, fn, "transposeA");
  const bool transposeB = pact::boolArg(info, 10, fn, "transposeB");
  if ((batchA != batch && batchA != 1) || (batchB != batch && batchB != 1)) {
    pact::throwArg(info.Env(), fn, "batchA and batchB must each be the batch or 1");
  }
  if ((M + 15) / 16 > 65535) pact::throwArg(info.Env(), fn, "M must be below 16 * 65536");
  const float* a = deviceFloats(info, 0, fn, "a", pact::elementCount(info, fn, {batchA, M, K}), false);
  const float* b = deviceFloats(info, 1, fn, "b", pact::elementCount(info, fn, {batchB, K, N}), false);
  float* c = deviceFloats(info, 2, fn, "c", pact::elementCount(info, fn, {batch, M, N}), false);
  runLauncher(info.Env(), fn, [&] { pact::cuda::batchMatMul(a, b, c, batch, batchA, batchB, M, N, K, transposeA, transposeB); });
  return info.Env().Undefined();
}

constexpr int64_t kMaxPositions = int64_t{1} << 40;
constexpr int64_t kMaxChannels = int64_t{1} << 24;

// cudaHaltingStepDevice: cudaHaltingStep's arguments (native/binding/cuda_ops.cc) with buffer ids in place of the
// arrays, 0 for an absent one. Runs on the device buffers, no copy.
Napi::Value cudaHaltingStepDevice(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "cudaHaltingStepDevice";
  const auto positions = static_cast<size_t>(pact::intArg(info, 7, fn, "positions", 0, kMaxPositions));
  const auto channels = static_cast<size_t>(pact::intArg(info, 8, fn, "channels", 1, kMaxChannels));
  const pact::HaltingStepConfig cfg = pact::haltingConfigArg(info, 9, fn);
  const size_t pc = positions * channels;
  const float* sXi = deviceFloats(info, 0, fn, "sXi", positions, false);
  const float* sH = deviceFloats(info, 1, fn, "sH", positions, false);
  const float* n = deviceFloats(info, 2, fn, "n", positions, false);
  const float* haltLogits = deviceFloats(info, 3, fn, "haltLogits", positions, cfg.last);
  const float* noise = deviceFloats(info, 4, fn, "noise", positions, !pact::readsNoise(cfg));
  const float* output = deviceFloats(info, 5, fn, "output", pc, true);
  const float* u = deviceFloats(info, 6, fn, "u", pc, output == nullptr);
  float* sXiOut = deviceFloats(info, 14, fn, "sXiOut", positions, false);
  float* sHOut = deviceFloats(info, 15, fn, "sHOut", positions, false);
  float* nOut = deviceFloats(info, 16, fn, "nOut", positions, false);
  float* activeOut = deviceFloats(info, 17, fn, "activeOut", positions, false);
  float* outputOut = deviceFloats(info, 18, fn, "outputOut", pc, output == nullptr);
  if (output == nullptr && (u != nullptr || outputOut != nullptr)) {
    pact::throwArg(info.Env(), fn, "u and outputOut must be 0 when output is 0");
  }
  runLauncher(info.Env(), fn, [&] {
    pact::cuda::haltingStep(sXi, sH, n, haltLogits, noise, output, u, static_cast<int64_t>(positions),
                            static_cast<int64_t>(channels), cfg, sXiOut, sHOut, nOut, activeOut, outputOut);
  });
  return info.Env().Undefined();
}

// cudaHaltingStepGradDevice: cudaHaltingStepGrad's arguments with buffer ids, 0 for an absent one.
Napi::Value cudaHaltingStepGradDevice(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "cudaHaltingStepGradDevice";
  const auto positions = static_cast<size_t>(pact::intArg(info, 10, fn, "positions", 0, kMaxPositions));
  const auto channels = static_cast<size_t>(pact::intArg(info, 11, fn, "channels", 1, kMaxChannels));
  const pact::HaltingStepConfig cfg = pact::haltingConfigArg(info, 12, fn);
  const size_t pc = positions * channels;
  const float* sXi = deviceFloats(info, 0, fn, "sXi", positions, false);
  const float* sH = deviceFloats(info, 1, fn, "sH", positions, false);
  const float* haltLogits = deviceFloats(info, 2, fn, "haltLogits", positions, cfg.last);
  const float* noise = deviceFloats(info, 3, fn, "noise", positions, !pact::readsNoise(cfg));
  const float* u = deviceFloats(info, 4, fn, "u", pc, true);
  const float* gSXi = deviceFloats(info, 5, fn, "gSXi", positions, false);
  const float* gSH = deviceFloats(info, 6, fn, "gSH", positions, false);
  const float* gN = deviceFloats(info, 7, fn, "gN", positions, false);
  const float* gActive = deviceFloats(info, 8, fn, "gActive", positions, false);
  const float* gOutput = deviceFloats(info, 9, fn, "gOutput", pc, u == nullptr);
  float* gHaltLogits = deviceFloats(info, 17, fn, "gHaltLogits", positions, false);
  float* gNoise = deviceFloats(info, 18, fn, "gNoise", positions, false);
  float* gSXiOut = deviceFloats(info, 19, fn, "gSXiOut", positions, false);
  float* gSHOut = deviceFloats(info, 20, fn, "gSHOut", positions, false);
  float* gU = deviceFloats(info, 21, fn, "gU", pc, u == nullptr);
  if (u == nullptr && (gOutput != nullptr || gU != nullptr)) {
    pact::throwArg(info.Env(), fn, "gOutput and gU must be 0 when u is 0");
  }
  runLauncher(info.Env(), fn, [&] {
    pact::cuda::haltingStepGrad(sXi, sH, haltLogits, noise, u, gSXi, gSH, gN, gActive, gOutput,
                                static_cast<int64_t>(positions), static_cast<int64_t>(channels), cfg, gHaltLogits,
                                gNoise, gSXiOut, gSHOut, gU);
  });
  return info.Env().Undefined();
}

// A device convolution's arguments: geometry (0-3), which (4), then buffer ids a, b, [mask,] out from argument 5,
// each checked against the element count its role implies. which 0: forward (a = x, b = filter, out = y), 1:
// backprop input (dy, filter -> dx), 2: backprop filter (x, dy -> dfilter). With `hasMask`, id 0 is no mask.
struct DeviceConv {
  pact::masked::ConvGeometry g;
  int which;
  const float *a, *b, *mask;
  float* out;
};

DeviceConv deviceConvArgs(const Napi::CallbackInfo& info, const char* fn, bool hasMask) {
  DeviceConv c{pact::geometryArgs(info, fn), 0, nullptr, nullptr, nullptr, nullptr};
  const pact::masked::ConvGeometry& g = c.g;
  c.which = static_cast<int>(pact::intArg(info, 4, fn, "which (0 forward, 1 input grad, 2 filter grad)", 0, 2));
  const size_t counts[3] = {pact::elementCount(info, fn, {g.batch, g.inH, g.inW, g.inC}),
                            pact::elementCount(info, fn, {g.kH, g.kW, g.inC, g.outC}),
                            pact::elementCount(info, fn, {g.batch, g.outH, g.outW, g.outC})};
  constexpr int kX = 0, kFilter = 1, kY = 2;
  static constexpr int kOperands[3][3] = {{kX, kFilter, kY}, {kY, kFilter, kX}, {kX, kY, kFilter}};
  static constexpr const char* kNames[3][3] = {{"x", "filter", "y"}, {"dy", "filter", "dx"}, {"x", "dy", "dfilter"}};
  const int* operands = kOperands[c.which];
  c.a = deviceFloats(info, 5, fn, kNames[c.which][0], counts[operands[0]], false);
  c.b = deviceFloats(info, 6, fn, kNames[c.which][1], counts[operands[1]], false);
  if (hasMask) {
    c.mask = deviceFloats(info, 7, fn, "mask", pact::elementCount(info, fn, {g.batch, g.outH, g.outW}), true);
  }
  c.out = deviceFloats(info, hasMask ? 8 : 7, fn, kNames[c.which][2], counts[operands[2]], false);
  return c;
}

// cudaMaskedConv2dDevice(xShape, filterShape, strides, pads, which, aId, bId, maskId, outId): the masked
// convolution on device buffers (operands: DeviceConv). Semantics: cpu/masked_conv2d.h; maskId 0: every position
// active (the dense form).
Napi::Value cudaMaskedConv2dDevice(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "cudaMaskedConv2dDevice";
  const DeviceConv c = deviceConvArgs(info, fn, true);
  runLauncher(info.Env(), fn, [&] {
    if (c.which == 0) pact::cuda::maskedConv2dForward(c.g, c.a, c.b, c.mask, c.out);
    if (c.which == 1) pact::cuda::maskedConv2dBackpropInput(c.g, c.a, c.b, c.mask, c.out);
    if (c.which == 2) pact::cuda::maskedConv2dBackpropFilter(c.g, c.a, c.b, c.mask, c.out);
  });
  return info.Env().Undefined();
}

// cudaConv2dDense(xShape, filterShape, strides, pads, which, aId, bId, outId) -> boolean: the dense convolution
// `which` (operands as in cudaMaskedConv2dDevice, no mask) through cuDNN (cuda/cudnn_conv.h); false, with nothing
// launched, where cuDNN cannot run it: the caller then runs the masked kernels' dense form.
Napi::Value cudaConv2dDense(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "cudaConv2dDense";
  const DeviceConv c = deviceConvArgs(info, fn, false);
  bool ran = false;
  runLauncher(info.Env(), fn, [&] { ran = pact::cuda::cudnnConv2d(c.g, c.which, c.a, c.b, c.out); });
  return Napi::Boolean::New(info.Env(), ran);
}

// cudaCudnnStatus() -> {available, version, library, reason}: whether dense convolutions run on cuDNN (loaded on
// the first call), and why not.
Napi::Value cudaCudnnStatus(const Napi::CallbackInfo& info) {
  const pact::cuda::CudnnStatus& s = pact::cuda::cudnnStatus();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("available", s.available);
  o.Set("version", static_cast<double>(s.version));
  o.Set("library", s.library);
  o.Set("reason", s.reason);
  return o;
}

// cudaSgdMomentumDevice(n, learningRate, momentum, value, accumulation, gradient, valueOut, accumulationOut):
// buffer ids of n floats each (cuda/elementwise.cuh's sgdMomentum).
Napi::Value cudaSgdMomentumDevice(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "cudaSgdMomentumDevice";
  const auto n = static_cast<size_t>(pact::intArg(info, 0, fn, "n", 0, kMaxBytes / 4));
  const double learningRate = pact::numberArg(info, 1, fn, "learningRate");
  const double momentum = pact::numberArg(info, 2, fn, "momentum");
  if (!std::isfinite(learningRate) || !std::isfinite(momentum)) {
    pact::throwArg(info.Env(), fn, "learningRate and momentum must be finite");
  }
  const float* value = deviceFloats(info, 3, fn, "value", n, false);
  const float* accumulation = deviceFloats(info, 4, fn, "accumulation", n, false);
  const float* gradient = deviceFloats(info, 5, fn, "gradient", n, false);
  float* valueOut = deviceFloats(info, 6, fn, "valueOut", n, false);
  float* accumulationOut = deviceFloats(info, 7, fn, "accumulationOut", n, false);
  const float* inputs[] = {value, accumulation, gradient};
  for (const float* out : {static_cast<const float*>(valueOut), static_cast<const float*>(accumulationOut)}) {
    for (const float* in : inputs) {
      if (n > 0 && out == in) pact::throwArg(info.Env(), fn, "an output buffer is also an input");
    }
  }
  if (n > 0 && valueOut == accumulationOut) {
    pact::throwArg(info.Env(), fn, "valueOut and accumulationOut are one buffer");
  }
  runLauncher(info.Env(), fn, [&] {
    pact::cuda::sgdMomentum(value, accumulation, gradient, static_cast<int64_t>(n), -static_cast<float>(learningRate),
                            static_cast<float>(momentum), valueOut, accumulationOut);
  });
  return info.Env().Undefined();
}

// Rows and channels of the batch-norm bindings, with epsilon: rows * channels floats in every [rows, channels]
// buffer, channels in every per-channel one.
struct BatchNormArgs {
  size_t rows, channels;
  float epsilon;
  bool relu;
};

// Arguments 0 rows, 1 channels (rows * channels within the byte limit), 2 epsilon (positive, finite), and with
// `hasRelu` 3 relu.
std::pair<size_t, size_t> rowsAndChannelsArgs(const Napi::CallbackInfo& info, const char* fn) {
  const auto rows = static_cast<size_t>(pact::intArg(info, 0, fn, "rows", 0, kMaxBytes / 4));
  const auto channels = static_cast<size_t>(pact::intArg(info, 1, fn, "channels", 1, kMaxBytes / 4));
  if (rows * channels > static_cast<size_t>(kMaxBytes / 4)) pact::throwArg(info.Env(), fn, "rows * channels is too large");
  return {rows, channels};
}

BatchNormArgs batchNormArgs(const Napi::CallbackInfo& info, const char* fn, bool hasRelu = true) {
  const auto [rows, channels] = rowsAndChannelsArgs(info, fn);
  const double epsilon = pact::numberArg(info, 2, fn, "epsilon");
  if (!(epsilon > 0.0) || !std::isfinite(epsilon)) pact::throwArg(info.Env(), fn, "epsilon must be positive and finite");
  return {rows, channels, static_cast<float>(epsilon), hasRelu ? pact::boolArg(info, 3, fn, "relu") : true};
}

// cudaBatchNormTrainDevice(rows, channels, epsilon, relu, x, scale, offset, y, mean, variance): buffer ids.
Napi::Value cudaBatchNormTrainDevice(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "cudaBatchNormTrainDevice";
  const BatchNormArgs a = batchNormArgs(info, fn);
  const size_t n = a.rows * a.channels;
  const float* x = deviceFloats(info, 4, fn, "x", n, false);
  const float* scale = deviceFloats(info, 5, fn, "scale", a.channels, false);
  const float* offset = deviceFloats(info, 6, fn, "offset", a.channels, false);
  float* y = deviceFloats(info, 7, fn, "y", n, false);
  float* mean = deviceFloats(info, 8, fn, "mean", a.channels, false);
  float* variance = deviceFloats(info, 9, fn, "variance", a.channels, false);
  runLauncher(info.Env(), fn, [&] {
    pact::cuda::batchNormTrain(x, nullptr, scale, offset, static_cast<int64_t>(a.rows),
                               static_cast<int64_t>(a.channels), a.epsilon, a.relu, y, mean, variance);
  });
  return info.Env().Undefined();
}

// cudaBatchNormTrainGradDevice(rows, channels, epsilon, relu, dy, dmean, dvariance, x, scale, mean, variance, y,
// dx, dscale, doffset): buffer ids; y (the forward output) is read with relu only and may be 0 without it.
Napi::Value cudaBatchNormTrainGradDevice(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "cudaBatchNormTrainGradDevice";
  const BatchNormArgs a = batchNormArgs(info, fn);
  const size_t n = a.rows * a.channels, c = a.channels;
  const float* dy = deviceFloats(info, 4, fn, "dy", n, false);
  const float* dmean = deviceFloats(info, 5, fn, "dmean", c, false);
  const float* dvariance = deviceFloats(info, 6, fn, "dvariance", c, false);
  const float* x = deviceFloats(info, 7, fn, "x", n, false);
  const float* scale = deviceFloats(info, 8, fn, "scale", c, false);
  const float* mean = deviceFloats(info, 9, fn, "mean", c, false);
  const float* variance = deviceFloats(info, 10, fn, "variance", c, false);
  const float* y = deviceFloats(info, 11, fn, "y", n, !a.relu);
  float* dx = deviceFloats(info, 12, fn, "dx", n, false);
  float* dscale = deviceFloats(info, 13, fn, "dscale", c, false);
  float* doffset = deviceFloats(info, 14, fn, "doffset", c, false);
  runLauncher(info.Env(), fn, [&] {
    pact::cuda::batchNormTrainGrad(dy, dmean, dvariance, x, nullptr, scale, mean, variance, y,
                                   static_cast<int64_t>(a.rows), static_cast<int64_t>(a.channels), a.epsilon, a.relu,
                                   dx, dscale, doffset);
  });
  return info.Env().Undefined();
}

// The masked residual unit's kernels (cpu/masked_residual_unit.h) on device buffers; argument 0 rows, 1 channels,
// 2 epsilon (where there is one); the mask has rows floats.

// cudaMaskedBatchNormReluDevice(rows, channels, epsilon, x, mask, scale, offset, y, mean, variance)
Napi::Value cudaMaskedBatchNormReluDevice(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "cudaMaskedBatchNormReluDevice";
  const BatchNormArgs a = batchNormArgs(info, fn, false);
  const size_t n = a.rows * a.channels, c = a.channels;
  const float* x = deviceFloats(info, 3, fn, "x", n, false);
  const float* mask = deviceFloats(info, 4, fn, "mask", a.rows, false);
  const float* scale = deviceFloats(info, 5, fn, "scale", c, false);
  const float* offset = deviceFloats(info, 6, fn, "offset", c, false);
  float* y = deviceFloats(info, 7, fn, "y", n, false);
  float* mean = deviceFloats(info, 8, fn, "mean", c, false);
  float* variance = deviceFloats(info, 9, fn, "variance", c, false);
  runLauncher(info.Env(), fn, [&] {
    pact::cuda::batchNormTrain(x, mask, scale, offset, static_cast<int64_t>(a.rows), static_cast<int64_t>(c),
                               a.epsilon, true, y, mean, variance);
  });
  return info.Env().Undefined();
}

// cudaMaskedBatchNormReluGradDevice(rows, channels, epsilon, dy, x, mask, y, scale, mean, variance, dx, dscale,
// doffset)
Napi::Value cudaMaskedBatchNormReluGradDevice(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "cudaMaskedBatchNormReluGradDevice";
  const BatchNormArgs a = batchNormArgs(info, fn, false);
  const size_t n = a.rows * a.channels, c = a.channels;
  const float* dy = deviceFloats(info, 3, fn, "dy", n, false);
  const float* x = deviceFloats(info, 4, fn, "x", n, false);
  const float* mask = deviceFloats(info, 5, fn, "mask", a.rows, false);
  const float* y = deviceFloats(info, 6, fn, "y", n, false);
  const float* scale = deviceFloats(info, 7, fn, "scale", c, false);
  const float* mean = deviceFloats(info, 8, fn, "mean", c, false);
  const float* variance = deviceFloats(info, 9, fn, "variance", c, false);
  float* dx = deviceFloats(info, 10, fn, "dx", n, false);
  float* dscale = deviceFloats(info, 11, fn, "dscale", c, false);
  float* doffset = deviceFloats(info, 12, fn, "doffset", c, false);
  runLauncher(info.Env(), fn, [&] {
    pact::cuda::batchNormTrainGrad(dy, nullptr, nullptr, x, mask, scale, mean, variance, y,
                                   static_cast<int64_t>(a.rows), static_cast<int64_t>(c), a.epsilon, true, dx, dscale,
                                   doffset);
  });
  return info.Env().Undefined();
}

// cudaBatchNormReluInferenceDevice(rows, channels, epsilon, x, mask (0: every row), scale, offset, mean, variance, y)
Napi::Value cudaBatchNormReluInferenceDevice(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "cudaBatchNormReluInferenceDevice";
  const BatchNormArgs a = batchNormArgs(info, fn, false);
  const size_t n = a.rows * a.channels, c = a.channels;
  const float* x = deviceFloats(info, 3, fn, "x", n, false);
  const float* mask = deviceFloats(info, 4, fn, "mask", a.rows, true);
  const float* scale = deviceFloats(info, 5, fn, "scale", c, false);
  const float* offset = deviceFloats(info, 6, fn, "offset", c, false);
  const float* mean = deviceFloats(info, 7, fn, "mean", c, false);
  const float* variance = deviceFloats(info, 8, fn, "variance", c, false);
  float* y = deviceFloats(info, 9, fn, "y", n, false);
  runLauncher(info.Env(), fn, [&] {
    pact::cuda::batchNormReluInference(x, mask, scale, offset, mean, variance, static_cast<int64_t>(a.rows),
                                       static_cast<int64_t>(c), a.epsilon, y);
  });
  return info.Env().Undefined();
}

// cudaScaledResidualAddDevice(rows, channels, u, c, a, y): a has rows floats.
Napi::Value cudaScaledResidualAddDevice(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "cudaScaledResidualAddDevice";
  const auto [rows, channels] = rowsAndChannelsArgs(info, fn);
  const float* u = deviceFloats(info, 2, fn, "u", rows * channels, false);
  const float* c = deviceFloats(info, 3, fn, "c", rows * channels, false);
  const float* a = deviceFloats(info, 4, fn, "a", rows, false);
  float* y = deviceFloats(info, 5, fn, "y", rows * channels, false);
  runLauncher(info.Env(), fn, [&] {
    pact::cuda::scaledResidualAdd(u, c, a, static_cast<int64_t>(rows), static_cast<int64_t>(channels), y);
  });
  return info.Env().Undefined();
}

// cudaScaledResidualAddGradDevice(rows, channels, dy, c, a, dc, da)
Napi::Value cudaScaledResidualAddGradDevice(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "cudaScaledResidualAddGradDevice";
  const auto [rows, channels] = rowsAndChannelsArgs(info, fn);
  const float* dy = deviceFloats(info, 2, fn, "dy", rows * channels, false);
  const float* c = deviceFloats(info, 3, fn, "c", rows * channels, false);
  const float* a = deviceFloats(info, 4, fn, "a", rows, false);
  float* dc = deviceFloats(info, 5, fn, "dc", rows * channels, false);
  float* da = deviceFloats(info, 6, fn, "da", rows, false);
  runLauncher(info.Env(), fn, [&] {
    pact::cuda::scaledResidualAddGrad(dy, c, a, static_cast<int64_t>(rows), static_cast<int64_t>(channels), dc, da);
  });
  return info.Env().Undefined();
}

}  // namespace

PACT_EXPORT("cudaBufferCreate", cudaBufferCreate);
PACT_EXPORT("cudaBufferFree", cudaBufferFree);
PACT_EXPORT("cudaBufferWrite", cudaBufferWrite);
PACT_EXPORT("cudaBufferRead", cudaBufferRead);
PACT_EXPORT("cudaMemoryInfo", cudaMemoryInfo);
PACT_EXPORT("cudaSynchronize", cudaSynchronize);
PACT_EXPORT("cudaEmptyCache", cudaEmptyCache);
PACT_EXPORT("cudaUnary", cudaUnary);
PACT_EXPORT("cudaBinary", cudaBinary);
PACT_EXPORT("cudaFill", cudaFill);
PACT_EXPORT("cudaReduce", cudaReduce);
PACT_EXPORT("cudaCast", cudaCast);
PACT_EXPORT("cudaBatchMatMul", cudaBatchMatMul);
PACT_EXPORT("cudaHaltingStepDevice", cudaHaltingStepDevice);
PACT_EXPORT("cudaHaltingStepGradDevice", cudaHaltingStepGradDevice);
PACT_EXPORT("cudaMaskedConv2dDevice", cudaMaskedConv2dDevice);
PACT_EXPORT("cudaConv2dDense", cudaConv2dDense);
PACT_EXPORT("cudaSgdMomentumDevice", cudaSgdMomentumDevice);
PACT_EXPORT("cudaCudnnStatus", cudaCudnnStatus);
PACT_EXPORT("cudaBatchNormTrainDevice", cudaBatchNormTrainDevice);
PACT_EXPORT("cudaBatchNormTrainGradDevice", cudaBatchNormTrainGradDevice);
PACT_EXPORT("cudaMaskedBatchNormReluDevice", cudaMaskedBatchNormReluDevice);
PACT_EXPORT("cudaMaskedBatchNormReluGradDevice", cudaMaskedBatchNormReluGradDevice);
PACT_EXPORT("cudaBatchNormReluInferenceDevice", cudaBatchNormReluInferenceDevice);
PACT_EXPORT("cudaScaledResidualAddDevice", cudaScaledResidualAddDevice);
PACT_EXPORT("cudaScaledResidualAddGradDevice", cudaScaledResidualAddGradDevice);
