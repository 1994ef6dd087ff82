// Device-buffer arguments of the pact-cuda bindings (cuda_tensors.cc, cuda_layout.cc): buffer ids looked up in
// the BufferTable and checked against the element count and type the call implies, broadcast shapes, and a
// launcher wrapper that turns launch and kernel failures into JS Errors naming the function.
#pragma once
#include <cuda_runtime.h>
#include <napi.h>

#include <algorithm>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "binding/args.h"
#include "cuda/device.h"
#include "cuda/elementwise.cuh"
#include "cuda/memory.cuh"

namespace pact::cuda_binding {

using pact::cuda::BufferTable;

constexpr int64_t kMaxBytes = int64_t{1} << 40;
constexpr int64_t kMaxId = int64_t{1} << 53;  // BufferTable's ids: JavaScript numbers, exact to 2^53

inline void requireDevice(const Napi::Env& env, const char* fn) {
  const pact::cuda::DeviceStatus status = pact::cuda::deviceStatus();
  if (status.deviceCount == 0) throw Napi::Error::New(env, std::string(fn) + ": CUDA unavailable: " + status.reason);
}

inline const BufferTable::Buffer& bufferArg(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  const auto id = static_cast<uint64_t>(pact::intArg(info, i, fn, name, 1, kMaxId));
  try {
    return BufferTable::instance().get(id);
  } catch (const std::invalid_argument& e) {
    pact::throwArg(info.Env(), fn, std::string(name) + ": " + e.what());
  }
}

inline Napi::TypedArray typedArrayArg(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  if (i >= info.Length() || !info[i].IsTypedArray()) pact::throwArg(info.Env(), fn, std::string(name) + " must be a TypedArray");
  return info[i].As<Napi::TypedArray>();
}

inline void check(const Napi::Env& env, cudaError_t err, const char* fn, const char* what) {
  if (err != cudaSuccess) {
    cudaGetLastError();
    throw Napi::Error::New(env, std::string(fn) + ": " + what + " failed: " + cudaGetErrorString(err));
  }
}

// The float32 element count of a buffer that must hold `expected` of them.
inline void requireFloats(const Napi::CallbackInfo& info, const BufferTable::Buffer& b, size_t expected, const char* fn,
                   const char* name) {
  if (b.bytes != expected * sizeof(float)) {
    pact::throwArg(info.Env(), fn, std::string(name) + " holds " + std::to_string(b.bytes) + " bytes, expected " +
                                       std::to_string(expected) + " float32 values");
  }
}

// Whether every kernel is waited for (PACT_CUDA_SYNC=1, read once): for debugging, so that a kernel's fault is
// reported by the call that launched it.
inline bool syncEveryKernel() {
  static const bool sync = [] {
    const char* v = std::getenv("PACT_CUDA_SYNC");
    return v != nullptr && std::string(v) != "0" && std::string(v) != "";
  }();
  return sync;
}

// Runs a launcher (which throws std::runtime_error on a failed launch). Kernels run asynchronously, in launch order
// on the null stream, as in PyTorch: the host goes on queueing work, and a fault while a kernel runs is reported
// by the next call that waits for the device (a read, cudaSynchronize, or every call with PACT_CUDA_SYNC=1).
template <typename F>
inline void runLauncher(const Napi::Env& env, const char* fn, F&& launcher) {
  try {
    launcher();
  } catch (const std::runtime_error& e) {
    throw Napi::Error::New(env, std::string(fn) + ": " + e.what());
  }
  if (syncEveryKernel()) check(env, cudaDeviceSynchronize(), fn, "the kernel");
}

// The device array of buffer argument i, which must hold `expected` float32 values; nullptr for id 0 where
// `allowNull` (an absent optional input or output).
inline float* deviceFloats(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name, size_t expected,
                    bool allowNull) {
  if (allowNull && i < info.Length() && info[i].IsNumber() && info[i].As<Napi::Number>().DoubleValue() == 0) {
    return nullptr;
  }
  const BufferTable::Buffer& b = bufferArg(info, i, fn, name);
  requireFloats(info, b, expected, fn, name);
  return static_cast<float*>(b.data);
}

// A CastType code (float32 0, int32 1, bool 2) at argument i.
inline pact::cuda::CastType typeArg(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  return static_cast<pact::cuda::CastType>(
      pact::intArg(info, i, fn, name, 0, static_cast<int64_t>(pact::cuda::CastType::kCount) - 1));
}

inline size_t bytesOf(pact::cuda::CastType type) { return type == pact::cuda::CastType::kBool ? 1 : 4; }

// The device array of buffer argument i, which must hold `expected` elements of `type`.
inline void* deviceArray(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name,
                         pact::cuda::CastType type, size_t expected) {
  const BufferTable::Buffer& b = bufferArg(info, i, fn, name);
  if (b.bytes != expected * bytesOf(type)) {
    pact::throwArg(info.Env(), fn, std::string(name) + " holds " + std::to_string(b.bytes) + " bytes, expected " +
                                       std::to_string(expected) + " values of " + std::to_string(bytesOf(type)) +
                                       " bytes");
  }
  return b.data;
}

// NumPy broadcasting of aShape and bShape: the output's shape and each input's strides (0 where broadcast).
inline pact::cuda::BroadcastShape broadcastArg(const Napi::CallbackInfo& info, const std::vector<int64_t>& aShape,
                                               const std::vector<int64_t>& bShape, const char* fn) {
  pact::cuda::BroadcastShape s{};
  s.rank = static_cast<int32_t>(std::max(aShape.size(), bShape.size()));
  int64_t aStride = 1, bStride = 1;
  for (int d = s.rank - 1; d >= 0; --d) {
    const int ad = d - (s.rank - static_cast<int>(aShape.size()));
    const int bd = d - (s.rank - static_cast<int>(bShape.size()));
    const int64_t da = ad >= 0 ? aShape[ad] : 1;
    const int64_t db = bd >= 0 ? bShape[bd] : 1;
    if (da != db && da != 1 && db != 1) {
      pact::throwArg(info.Env(), fn, "aShape and bShape do not broadcast: dimension " + std::to_string(d) + " is " +
                                         std::to_string(da) + " vs " + std::to_string(db));
    }
    s.shape[d] = da == 1 ? db : da;
    s.aStrides[d] = da == 1 ? 0 : aStride;
    s.bStrides[d] = db == 1 ? 0 : bStride;
    aStride *= da;
    bStride *= db;
  }
  return s;
}

inline size_t broadcastSize(const pact::cuda::BroadcastShape& s) {
  size_t n = 1;
  for (int d = 0; d < s.rank; ++d) n *= static_cast<size_t>(s.shape[d]);
  return n;
}

}  // namespace pact::cuda_binding
