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

// The scalar attributes of a halting step, from arguments first..first+4: mode, iteration, last, temperature, delta.
pact::HaltingStepConfig haltingConfigArgs(const Napi::CallbackInfo& info, size_t first, const char* fn) {
  pact::HaltingStepConfig cfg{};
  cfg.mode = static_cast<pact::HaltingMode>(pact::intArg(info, first, fn, "mode", 0, 2));
  cfg.iteration = static_cast<int32_t>(pact::intArg(info, first + 1, fn, "iteration", 1, 1 << 20));
  cfg.last = pact::boolArg(info, first + 2, fn, "last");
  const double temperature = pact::numberArg(info, first + 3, fn, "temperature");
  const double delta = pact::numberArg(info, first + 4, fn, "delta");
  if (cfg.mode == pact::HaltingMode::kRelaxed && !(temperature > 0)) {
    pact::throwArg(info.Env(), fn, "temperature must be positive in relaxed mode, got " + std::to_string(temperature));
  }
  if (!(delta >= 0)) pact::throwArg(info.Env(), fn, "delta must be >= 0, got " + std::to_string(delta));
  cfg.temperature = static_cast<float>(temperature);
  cfg.delta = static_cast<float>(delta);
  return cfg;
}

bool readsNoise(const pact::HaltingStepConfig& cfg) { return !cfg.last && cfg.mode != pact::HaltingMode::kThresholded; }

// cudaHaltingStep(sXi, sH, n, haltLogits | null, noise | null, output | null, u | null, positions, channels,
//                 mode, iteration, last, temperature, delta, sXiOut, sHOut, nOut, activeOut, outputOut | null)
// Layout and math: cpu/halting_step.h. haltLogits may be null only when last, noise only when it is not read;
// output, u and outputOut are all null (no accumulator) or all [positions, channels].
Napi::Value cudaHaltingStep(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "cudaHaltingStep";
  const auto positions = static_cast<size_t>(pact::intArg(info, 7, fn, "positions", 0, kMaxPositions));
  const auto channels = static_cast<size_t>(pact::intArg(info, 8, fn, "channels", 1, kMaxChannels));
  const pact::HaltingStepConfig cfg = haltingConfigArgs(info, 9, fn);
  const FloatView sXi = pact::floatArgOfLength(info, 0, fn, "sXi", positions);
  const FloatView sH = pact::floatArgOfLength(info, 1, fn, "sH", positions);
  const FloatView n = pact::floatArgOfLength(info, 2, fn, "n", positions);
  const FloatView haltLogits = maybeFloatArgOfLength(info, 3, fn, "haltLogits", positions, cfg.last);
  const FloatView noise = maybeFloatArgOfLength(info, 4, fn, "noise", positions, !readsNoise(cfg));
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
  const pact::HaltingStepConfig cfg = haltingConfigArgs(info, 12, fn);
  const FloatView sXi = pact::floatArgOfLength(info, 0, fn, "sXi", positions);
  const FloatView sH = pact::floatArgOfLength(info, 1, fn, "sH", positions);
  const FloatView haltLogits = maybeFloatArgOfLength(info, 2, fn, "haltLogits", positions, cfg.last);
  const FloatView noise = maybeFloatArgOfLength(info, 3, fn, "noise", positions, !readsNoise(cfg));
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

// The geometry (xShape [B,H,W,C], filterShape [kH,kW,C,outC], strides [sH,sW], pads [top,bottom,left,right]) at
// info[0..3], with the checks and messages of masked::maskedConv2dGeometryError. That function and
// makeConvGeometry live in cpu/masked_conv2d.cc beside the OpenMP/oneDNN kernels, which pact_sim.node cannot
// link, hence this twin (to go once they move to a header of their own).
pact::masked::ConvGeometry convGeometryArgs(const Napi::CallbackInfo& info, const char* fn) {
  const char* names[4] = {"xShape", "filterShape", "strides", "pads"};
  const size_t ranks[4] = {4, 4, 2, 4};
  std::vector<int64_t> s[4];
  for (size_t i = 0; i < 4; ++i) {
    s[i] = pact::shapeArg(info, i, fn, names[i]);
    if (s[i].size() != ranks[i]) {
      pact::throwArg(info.Env(), fn, std::string(names[i]) + " must have " + std::to_string(ranks[i]) + " entries");
    }
    for (int64_t d : s[i]) {
      if (d > (int64_t{1} << 31)) pact::throwArg(info.Env(), fn, std::string(names[i]) + " has an entry above 2^31");
    }
  }
  const auto &x = s[0], &f = s[1], &st = s[2], &p = s[3];
  if (f[2] != x[3]) {
    pact::throwArg(info.Env(), fn,
                   "filterShape[2] (" + std::to_string(f[2]) + ") must equal the input channels xShape[3] (" +
                       std::to_string(x[3]) + ")");
  }
  pact::masked::ConvGeometry g{x[0], x[1], x[2], x[3], f[0], f[1], f[3], st[0], st[1], p[0], p[1], p[2], p[3], 0, 0};
  if (g.batch < 1 || g.inH < 1 || g.inW < 1 || g.inC < 1) pact::throwArg(info.Env(), fn, "x must have a positive shape");
  if (g.kH < 1 || g.kW < 1 || g.outC < 1) pact::throwArg(info.Env(), fn, "filter must have a positive shape");
  if (g.strideH < 1 || g.strideW < 1) pact::throwArg(info.Env(), fn, "strides must be positive");
  if (g.padTop < 0 || g.padBottom < 0 || g.padLeft < 0 || g.padRight < 0) {
    pact::throwArg(info.Env(), fn, "pads must be non-negative");
  }
  const int64_t spanH = g.inH + g.padTop + g.padBottom - g.kH, spanW = g.inW + g.padLeft + g.padRight - g.kW;
  if (spanH < 0 || spanW < 0) pact::throwArg(info.Env(), fn, "the filter does not fit in the padded input");
  g.outH = spanH / g.strideH + 1;
  g.outW = spanW / g.strideW + 1;
  if (g.batch * g.outH * g.outW >= (int64_t{1} << 31)) pact::throwArg(info.Env(), fn, "batch*outH*outW must be < 2^31");
  return g;
}

size_t countOf(const Napi::CallbackInfo& info, const char* fn, std::initializer_list<int64_t> dims) {
  size_t n = 1;
  for (int64_t d : dims) {
    if (__builtin_mul_overflow(n, static_cast<size_t>(d), &n)) pact::throwArg(info.Env(), fn, "tensor too large");
  }
  return n;
}

using MaskedLauncher = void (*)(const pact::masked::ConvGeometry&, const float*, const float*, const float*, float*);

// The three masked-convolution functions share one shape: geometry, two arrays (a, b), the mask, the output.
Napi::Value runMaskedConv(const Napi::CallbackInfo& info, const char* fn, MaskedLauncher launcher, const char* aName,
                          const char* bName, const char* outName, int aDims, int bDims, int outDims) {
  const pact::masked::ConvGeometry g = convGeometryArgs(info, fn);
  const size_t counts[3] = {countOf(info, fn, {g.batch, g.inH, g.inW, g.inC}),
                            countOf(info, fn, {g.kH, g.kW, g.inC, g.outC}),
                            countOf(info, fn, {g.batch, g.outH, g.outW, g.outC})};
  const FloatView a = pact::floatArgOfLength(info, 4, fn, aName, counts[aDims]);
  const FloatView b = pact::floatArgOfLength(info, 5, fn, bName, counts[bDims]);
  const FloatView mask = pact::floatArgOfLength(info, 6, fn, "mask", countOf(info, fn, {g.batch, g.outH, g.outW}));
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
