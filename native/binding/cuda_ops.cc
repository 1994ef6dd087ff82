// N-API functions that run a CUDA launcher on host Float32Arrays: allocate device buffers (cudaMalloc), copy the
// inputs in, launch, copy the outputs back, free. They exist in pact.node when CUDA was compiled, where they throw
// "CUDA unavailable: <reason>" without a usable GPU, and in pact_sim.node, where the same launchers run on the
// CPU simulation of the device (native/cuda/sim). Every length is checked here before anything is allocated.
// These are for tests and for the pact-cuda backend's first steps: a real backend keeps tensors on the device
// instead of copying them on every call.
#include <cuda_runtime.h>
#include <napi.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "binding/args.h"
#include "binding/conv_args.h"
#include "binding/halting_args.h"
#include "binding/registry.h"
#include "cuda/device.h"
#include "cuda/halting_step.cuh"
#include "cuda/masked_conv2d.cuh"

namespace {

using pact::FloatView;

constexpr int64_t kMaxPositions = int64_t{1} << 40;
constexpr int64_t kMaxChannels = int64_t{1} << 24;

// A Float32Array of `expected` elements, or null/undefined (a null view) where `allowNull`.
FloatView maybeFloatArgOfLength(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name,
                                size_t expected, bool allowNull) {
  if (allowNull && i < info.Length() && (info[i].IsNull() || info[i].IsUndefined())) return {nullptr, 0};
  return pact::floatArgOfLength(info, i, fn, name, expected);
}

// The device buffers of one call: inputs are copied in when added, outputs copied back by `finish`, everything
// freed when the call ends, thrown or not.
class DeviceCall {
 public:
  DeviceCall(const Napi::Env& env, const char* fn) : env_(env), fn_(fn) {
    const pact::cuda::DeviceStatus status = pact::cuda::deviceStatus();
    if (status.deviceCount == 0) throw Napi::Error::New(env, std::string(fn) + ": CUDA unavailable: " + status.reason);
  }
  DeviceCall(const DeviceCall&) = delete;
  DeviceCall& operator=(const DeviceCall&) = delete;
  ~DeviceCall() {
    for (float* p : buffers_) cudaFree(p);
  }

  const float* in(FloatView host) {
    if (host.data == nullptr) return nullptr;
    float* d = allocate(host.length);
    check(cudaMemcpy(d, host.data, host.length * sizeof(float), cudaMemcpyHostToDevice), "cudaMemcpy to the device");
    return d;
  }

  float* out(FloatView host) {
    if (host.data == nullptr) return nullptr;
    float* d = allocate(host.length);
    outputs_.push_back({d, host});
    return d;
  }

  // Runs `launcher` (which throws std::runtime_error on a failed launch), waits, and copies the outputs back.
  template <typename F>
  void run(F&& launcher) {
    try {
      launcher();
    } catch (const std::runtime_error& e) {
      throw Napi::Error::New(env_, std::string(fn_) + ": " + e.what());
    }
    check(cudaDeviceSynchronize(), "the kernel");
    for (const auto& [device, host] : outputs_) {
      check(cudaMemcpy(host.data, device, host.length * sizeof(float), cudaMemcpyDeviceToHost),
            "cudaMemcpy to the host");
    }
  }

 private:
  struct Output {
    float* device;
    FloatView host;
  };

  float* allocate(size_t n) {
    void* p = nullptr;
    check(cudaMalloc(&p, n * sizeof(float)), "cudaMalloc");
    buffers_.push_back(static_cast<float*>(p));
    return static_cast<float*>(p);
  }

  void check(cudaError_t err, const char* what) {
    if (err != cudaSuccess) {
      cudaGetLastError();
      throw Napi::Error::New(env_, std::string(fn_) + ": " + what + " failed: " + cudaGetErrorString(err));
    }
  }

  Napi::Env env_;
  const char* fn_;
  std::vector<float*> buffers_;
  std::vector<Output> outputs_;
};


// cudaHaltingStep(sXi, sH, n, haltLogits | null, noise | null, output | null, u | null, positions, channels,
//                 mode, iteration, last, temperature, delta, sXiOut, sHOut, nOut, activeOut, outputOut | null)
// Layout and math: cpu/halting_step.h. haltLogits may be null only when last, noise only when it is not read;
// output, u and outputOut are all null (no accumulator) or all [positions, channels].
Napi::Value cudaHaltingStep(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "cudaHaltingStep";
  const auto positions = static_cast<size_t>(pact::intArg(info, 7, fn, "positions", 0, kMaxPositions));
  const auto channels = static_cast<size_t>(pact::intArg(info, 8, fn, "channels", 1, kMaxChannels));
  const pact::HaltingStepConfig cfg = pact::haltingConfigArg(info, 9, fn);
  const FloatView sXi = pact::floatArgOfLength(info, 0, fn, "sXi", positions);
  const FloatView sH = pact::floatArgOfLength(info, 1, fn, "sH", positions);
  const FloatView n = pact::floatArgOfLength(info, 2, fn, "n", positions);
  const FloatView haltLogits = maybeFloatArgOfLength(info, 3, fn, "haltLogits", positions, cfg.last);
  const FloatView noise = maybeFloatArgOfLength(info, 4, fn, "noise", positions, !pact::readsNoise(cfg));
  const FloatView output = maybeFloatArgOfLength(info, 5, fn, "output", positions * channels, true);
  const bool accumulate = output.data != nullptr;
  const FloatView u = maybeFloatArgOfLength(info, 6, fn, "u", positions * channels, !accumulate);
  if (!accumulate && u.data != nullptr) pact::throwArg(info.Env(), fn, "u must be null when output is null");
  const FloatView sXiOut = pact::floatArgOfLength(info, 14, fn, "sXiOut", positions);
  const FloatView sHOut = pact::floatArgOfLength(info, 15, fn, "sHOut", positions);
  const FloatView nOut = pact::floatArgOfLength(info, 16, fn, "nOut", positions);
  const FloatView activeOut = pact::floatArgOfLength(info, 17, fn, "activeOut", positions);
  const FloatView outputOut = maybeFloatArgOfLength(info, 18, fn, "outputOut", positions * channels, !accumulate);
  if (!accumulate && outputOut.data != nullptr) {
    pact::throwArg(info.Env(), fn, "outputOut must be null when output is null");
  }

  DeviceCall call(info.Env(), fn);
  const float *dSXi = call.in(sXi), *dSH = call.in(sH), *dN = call.in(n), *dX = call.in(haltLogits),
              *dNoise = call.in(noise), *dOutput = call.in(output), *dU = call.in(u);
  float *dSXiOut = call.out(sXiOut), *dSHOut = call.out(sHOut), *dNOut = call.out(nOut),
        *dActiveOut = call.out(activeOut), *dOutputOut = call.out(outputOut);
  call.run([&] {
    pact::cuda::haltingStep(dSXi, dSH, dN, dX, dNoise, dOutput, dU, static_cast<int64_t>(positions),
                            static_cast<int64_t>(channels), cfg, dSXiOut, dSHOut, dNOut, dActiveOut, dOutputOut);
  });
  return info.Env().Undefined();
}

// cudaHaltingStepGrad(sXi, sH, haltLogits | null, noise | null, u | null, gSXi, gSH, gN, gActive, gOutput | null,
//                     positions, channels, mode, iteration, last, temperature, delta,
//                     gHaltLogits, gNoise, gSXiOut, gSHOut, gU | null)
// u, gOutput and gU are all null (no accumulator) or all [positions, channels].
Napi::Value cudaHaltingStepGrad(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "cudaHaltingStepGrad";
  const auto positions = static_cast<size_t>(pact::intArg(info, 10, fn, "positions", 0, kMaxPositions));
  const auto channels = static_cast<size_t>(pact::intArg(info, 11, fn, "channels", 1, kMaxChannels));
  const pact::HaltingStepConfig cfg = pact::haltingConfigArg(info, 12, fn);
  const FloatView sXi = pact::floatArgOfLength(info, 0, fn, "sXi", positions);
  const FloatView sH = pact::floatArgOfLength(info, 1, fn, "sH", positions);
  const FloatView haltLogits = maybeFloatArgOfLength(info, 2, fn, "haltLogits", positions, cfg.last);
  const FloatView noise = maybeFloatArgOfLength(info, 3, fn, "noise", positions, !pact::readsNoise(cfg));
  const FloatView u = maybeFloatArgOfLength(info, 4, fn, "u", positions * channels, true);
  const bool accumulate = u.data != nullptr;
  const FloatView gSXi = pact::floatArgOfLength(info, 5, fn, "gSXi", positions);
  const FloatView gSH = pact::floatArgOfLength(info, 6, fn, "gSH", positions);
  const FloatView gN = pact::floatArgOfLength(info, 7, fn, "gN", positions);
  const FloatView gActive = pact::floatArgOfLength(info, 8, fn, "gActive", positions);
  const FloatView gOutput = maybeFloatArgOfLength(info, 9, fn, "gOutput", positions * channels, !accumulate);
  const FloatView gHaltLogits = pact::floatArgOfLength(info, 17, fn, "gHaltLogits", positions);
  const FloatView gNoise = pact::floatArgOfLength(info, 18, fn, "gNoise", positions);
  const FloatView gSXiOut = pact::floatArgOfLength(info, 19, fn, "gSXiOut", positions);
  const FloatView gSHOut = pact::floatArgOfLength(info, 20, fn, "gSHOut", positions);
  const FloatView gU = maybeFloatArgOfLength(info, 21, fn, "gU", positions * channels, !accumulate);
  if (!accumulate && (gOutput.data != nullptr || gU.data != nullptr)) {
    pact::throwArg(info.Env(), fn, "gOutput and gU must be null when u is null");
  }

  DeviceCall call(info.Env(), fn);
  const float *dSXi = call.in(sXi), *dSH = call.in(sH), *dX = call.in(haltLogits), *dNoise = call.in(noise),
              *dU = call.in(u), *dGSXi = call.in(gSXi), *dGSH = call.in(gSH), *dGN = call.in(gN),
              *dGActive = call.in(gActive), *dGOutput = call.in(gOutput);
  float *dGX = call.out(gHaltLogits), *dGNoise = call.out(gNoise), *dGSXiOut = call.out(gSXiOut),
        *dGSHOut = call.out(gSHOut), *dGU = call.out(gU);
  call.run([&] {
    pact::cuda::haltingStepGrad(dSXi, dSH, dX, dNoise, dU, dGSXi, dGSH, dGN, dGActive, dGOutput,
                                static_cast<int64_t>(positions), static_cast<int64_t>(channels), cfg, dGX, dGNoise,
                                dGSXiOut, dGSHOut, dGU);
  });
  return info.Env().Undefined();
}

using MaskedLauncher = void (*)(const pact::masked::ConvGeometry&, const float*, const float*, const float*, float*);

// The three masked-convolution functions share one shape: geometry, two arrays (a, b), the mask (null: dense), the
// output.
Napi::Value runMaskedConv(const Napi::CallbackInfo& info, const char* fn, MaskedLauncher launcher, const char* aName,
                          const char* bName, const char* outName, int aDims, int bDims, int outDims) {
  const pact::masked::ConvGeometry g = pact::geometryArgs(info, fn);
  const size_t counts[3] = {pact::elementCount(info, fn, {g.batch, g.inH, g.inW, g.inC}),
                            pact::elementCount(info, fn, {g.kH, g.kW, g.inC, g.outC}),
                            pact::elementCount(info, fn, {g.batch, g.outH, g.outW, g.outC})};
  const FloatView a = pact::floatArgOfLength(info, 4, fn, aName, counts[aDims]);
  const FloatView b = pact::floatArgOfLength(info, 5, fn, bName, counts[bDims]);
  // A null mask: the dense convolution (every position active).
  const bool dense = info.Length() > 6 && info[6].IsNull();
  const size_t positions = pact::elementCount(info, fn, {g.batch, g.outH, g.outW});
  const FloatView mask = dense ? FloatView{} : pact::floatArgOfLength(info, 6, fn, "mask", positions);
  const FloatView out = pact::floatArgOfLength(info, 7, fn, outName, counts[outDims]);
  DeviceCall call(info.Env(), fn);
  const float *dA = call.in(a), *dB = call.in(b), *dMask = call.in(mask);
  float* dOut = call.out(out);
  call.run([&] { launcher(g, dA, dB, dMask, dOut); });
  return info.Env().Undefined();
}

constexpr int kX = 0, kFilter = 1, kY = 2;

// cudaMaskedConv2d(xShape, filterShape, strides, pads, x, filter, mask, y): cpu/masked_conv2d.h's semantics.
Napi::Value cudaMaskedConv2d(const Napi::CallbackInfo& info) {
  return runMaskedConv(info, "cudaMaskedConv2d", pact::cuda::maskedConv2dForward, "x", "filter", "y", kX, kFilter, kY);
}

// cudaMaskedConv2dBackpropInput(xShape, filterShape, strides, pads, dy, filter, mask, dx)
Napi::Value cudaMaskedConv2dBackpropInput(const Napi::CallbackInfo& info) {
  return runMaskedConv(info, "cudaMaskedConv2dBackpropInput", pact::cuda::maskedConv2dBackpropInput, "dy", "filter",
                       "dx", kY, kFilter, kX);
}

// cudaMaskedConv2dBackpropFilter(xShape, filterShape, strides, pads, x, dy, mask, dfilter)
Napi::Value cudaMaskedConv2dBackpropFilter(const Napi::CallbackInfo& info) {
  return runMaskedConv(info, "cudaMaskedConv2dBackpropFilter", pact::cuda::maskedConv2dBackpropFilter, "x", "dy",
                       "dfilter", kX, kY, kFilter);
}

}  // namespace

PACT_EXPORT("cudaMaskedConv2d", cudaMaskedConv2d);
PACT_EXPORT("cudaMaskedConv2dBackpropInput", cudaMaskedConv2dBackpropInput);
PACT_EXPORT("cudaMaskedConv2dBackpropFilter", cudaMaskedConv2dBackpropFilter);
PACT_EXPORT("cudaHaltingStep", cudaHaltingStep);
PACT_EXPORT("cudaHaltingStepGrad", cudaHaltingStepGrad);
