// N-API bindings of PACT's own kernels (cpu/halting_step.h, cpu/random.h). The caller allocates every output; every
// length, the mode and the scalar attributes are checked here again before a kernel runs, and so are the values a
// kernel cannot meaningfully take (NaN halting logits, noise outside [0, 1]).
#include <napi.h>

#include <cmath>
#include <string>

#include "binding/args.h"
#include "binding/halting_args.h"
#include "binding/registry.h"
#include "cpu/halting_step.h"
#include "cpu/random.h"

namespace {

using pact::FloatView;

constexpr int64_t kMaxPositions = int64_t{1} << 40;
constexpr int64_t kMaxChannels = int64_t{1} << 24;

bool isAbsent(const Napi::CallbackInfo& info, size_t i) {
  return i >= info.Length() || info[i].IsNull() || info[i].IsUndefined();
}

// A Float32Array of `expected` elements, or null/undefined when not `required` (a null view).
FloatView maybeFloatArg(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name, size_t expected,
                        bool required) {
  if (!required && isAbsent(info, i)) return {nullptr, 0};
  return pact::floatArgOfLength(info, i, fn, name, expected);
}

void requireNoNaN(const Napi::CallbackInfo& info, const char* fn, const char* name, FloatView v) {
  for (size_t i = 0; i < v.length; ++i) {
    if (std::isnan(v.data[i])) {
      pact::throwArg(info.Env(), fn, std::string(name) + " must not contain NaN (element " + std::to_string(i) + ")");
    }
  }
}

void requireUnitInterval(const Napi::CallbackInfo& info, const char* fn, const char* name, FloatView v) {
  for (size_t i = 0; i < v.length; ++i) {
    if (!(v.data[i] >= 0.0f && v.data[i] <= 1.0f)) {
      pact::throwArg(info.Env(), fn,
                     std::string(name) + " must hold U(0,1) draws in [0, 1], got " + std::to_string(v.data[i]) +
                         " at element " + std::to_string(i));
    }
  }
}


// haltingStep(sXi, sH, n, haltLogits | null, noise | null, output | null, u | null, positions, channels,
//             mode, iteration, last, temperature, delta, sXiOut, sHOut, nOut, activeOut, outputOut | null)
// haltLogits is required unless last; noise unless last or thresholded; output, u and outputOut go together.
Napi::Value haltingStep(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "haltingStep";
  const auto positions = static_cast<size_t>(pact::intArg(info, 7, fn, "positions", 0, kMaxPositions));
  const auto channels = static_cast<size_t>(pact::intArg(info, 8, fn, "channels", 0, kMaxChannels));
  const pact::HaltingStepConfig cfg = pact::haltingConfigArg(info, 9, fn);
  pact::checkedElementCount(info.Env(), fn, "u", {static_cast<int64_t>(positions), static_cast<int64_t>(channels)});
  const FloatView sXi = pact::floatArgOfLength(info, 0, fn, "sXi", positions);
  const FloatView sH = pact::floatArgOfLength(info, 1, fn, "sH", positions);
  const FloatView n = pact::floatArgOfLength(info, 2, fn, "n", positions);
  const FloatView haltLogits = maybeFloatArg(info, 3, fn, "haltLogits", positions, !cfg.last);
  const FloatView noise = maybeFloatArg(info, 4, fn, "noise", positions, pact::readsNoise(cfg));
  const bool accumulate = !isAbsent(info, 5);
  const FloatView output = maybeFloatArg(info, 5, fn, "output", positions * channels, false);
  const FloatView u = maybeFloatArg(info, 6, fn, "u", positions * channels, accumulate);
  const FloatView sXiOut = pact::floatArgOfLength(info, 14, fn, "sXiOut", positions);
  const FloatView sHOut = pact::floatArgOfLength(info, 15, fn, "sHOut", positions);
  const FloatView nOut = pact::floatArgOfLength(info, 16, fn, "nOut", positions);
  const FloatView activeOut = pact::floatArgOfLength(info, 17, fn, "activeOut", positions);
  const FloatView outputOut = maybeFloatArg(info, 18, fn, "outputOut", positions * channels, accumulate);
  if (!accumulate && (!isAbsent(info, 6) || !isAbsent(info, 18))) {
    pact::throwArg(info.Env(), fn, "u and outputOut must be null when output is null (no accumulator)");
  }
  pact::checkDisjoint(info, fn,
                      {pact::span("sXiOut", sXiOut), pact::span("sHOut", sHOut), pact::span("nOut", nOut),
                       pact::span("activeOut", activeOut), pact::span("outputOut", outputOut)},
                      {pact::span("sXi", sXi), pact::span("sH", sH), pact::span("n", n),
                       pact::span("haltLogits", haltLogits), pact::span("noise", noise), pact::span("output", output),
                       pact::span("u", u)});
  if (!cfg.last) requireNoNaN(info, fn, "haltLogits", haltLogits);
  if (pact::readsNoise(cfg)) requireUnitInterval(info, fn, "noise", noise);
  pact::haltingStep(sXi.data, sH.data, n.data, haltLogits.data, pact::readsNoise(cfg) ? noise.data : nullptr, output.data,
                    u.data, static_cast<int64_t>(positions), static_cast<int64_t>(channels), cfg, sXiOut.data,
                    sHOut.data, nOut.data, activeOut.data, outputOut.data);
  return info.Env().Undefined();
}

// haltingStepGrad(sXi, sH, haltLogits | null, noise | null, u | null, gSXi, gSH, gN, gActive, gOutput | null,
//                 positions, channels, mode, iteration, last, temperature, delta,
//                 gHaltLogits, gNoise, gSXiOut, gSHOut, gU | null); u, gOutput and gU go together.
Napi::Value haltingStepGrad(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "haltingStepGrad";
  const auto positions = static_cast<size_t>(pact::intArg(info, 10, fn, "positions", 0, kMaxPositions));
  const auto channels = static_cast<size_t>(pact::intArg(info, 11, fn, "channels", 0, kMaxChannels));
  const pact::HaltingStepConfig cfg = pact::haltingConfigArg(info, 12, fn);
  pact::checkedElementCount(info.Env(), fn, "u", {static_cast<int64_t>(positions), static_cast<int64_t>(channels)});
  const FloatView sXi = pact::floatArgOfLength(info, 0, fn, "sXi", positions);
  const FloatView sH = pact::floatArgOfLength(info, 1, fn, "sH", positions);
  const FloatView haltLogits = maybeFloatArg(info, 2, fn, "haltLogits", positions, !cfg.last);
  const FloatView noise = maybeFloatArg(info, 3, fn, "noise", positions, pact::readsNoise(cfg));
  const bool accumulate = !isAbsent(info, 4);
  const FloatView u = maybeFloatArg(info, 4, fn, "u", positions * channels, false);
  const FloatView gSXi = pact::floatArgOfLength(info, 5, fn, "gSXi", positions);
  const FloatView gSH = pact::floatArgOfLength(info, 6, fn, "gSH", positions);
  const FloatView gN = pact::floatArgOfLength(info, 7, fn, "gN", positions);
  const FloatView gActive = pact::floatArgOfLength(info, 8, fn, "gActive", positions);
  const FloatView gOutput = maybeFloatArg(info, 9, fn, "gOutput", positions * channels, accumulate);
  const FloatView gHaltLogits = pact::floatArgOfLength(info, 17, fn, "gHaltLogits", positions);
  const FloatView gNoise = pact::floatArgOfLength(info, 18, fn, "gNoise", positions);
  const FloatView gSXiOut = pact::floatArgOfLength(info, 19, fn, "gSXiOut", positions);
  const FloatView gSHOut = pact::floatArgOfLength(info, 20, fn, "gSHOut", positions);
  const FloatView gU = maybeFloatArg(info, 21, fn, "gU", positions * channels, accumulate);
  if (!accumulate && (!isAbsent(info, 9) || !isAbsent(info, 21))) {
    pact::throwArg(info.Env(), fn, "gOutput and gU must be null when u is null (no accumulator)");
  }
  pact::checkDisjoint(info, fn,
                      {pact::span("gHaltLogits", gHaltLogits), pact::span("gNoise", gNoise),
                       pact::span("gSXiOut", gSXiOut), pact::span("gSHOut", gSHOut), pact::span("gU", gU)},
                      {pact::span("sXi", sXi), pact::span("sH", sH), pact::span("haltLogits", haltLogits),
                       pact::span("noise", noise), pact::span("u", u), pact::span("gSXi", gSXi),
                       pact::span("gSH", gSH), pact::span("gN", gN), pact::span("gActive", gActive),
                       pact::span("gOutput", gOutput)});
  if (pact::readsNoise(cfg)) requireUnitInterval(info, fn, "noise", noise);
  pact::haltingStepGrad(sXi.data, sH.data, haltLogits.data, pact::readsNoise(cfg) ? noise.data : nullptr, u.data,
                        gSXi.data, gSH.data, gN.data, gActive.data, gOutput.data, static_cast<int64_t>(positions),
                        static_cast<int64_t>(channels), cfg, gHaltLogits.data, gNoise.data, gSXiOut.data, gSHOut.data,
                        gU.data);
  return info.Env().Undefined();
}

// uniformNoise(seedHigh, seedLow, out): out (a Float32Array) <- U(0, 1) draws of the 64-bit seed
// seedHigh * 2^32 + seedLow, each 32-bit half a whole number in [0, 2^32).
Napi::Value uniformNoise(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "uniformNoise";
  constexpr int64_t kHalf = (int64_t{1} << 32) - 1;
  const auto high = static_cast<uint64_t>(pact::intArg(info, 0, fn, "seedHigh", 0, kHalf));
  const auto low = static_cast<uint64_t>(pact::intArg(info, 1, fn, "seedLow", 0, kHalf));
  const FloatView out = pact::floatArg(info, 2, fn, "out");
  if (out.length > (size_t{1} << 32)) pact::throwArg(info.Env(), fn, "out must have at most 2^32 elements");
  pact::uniformNoise(static_cast<uint32_t>(high), static_cast<uint32_t>(low), static_cast<int64_t>(out.length),
                     out.data);
  return info.Env().Undefined();
}

}  // namespace

PACT_EXPORT("haltingStep", haltingStep);
PACT_EXPORT("haltingStepGrad", haltingStepGrad);
PACT_EXPORT("uniformNoise", uniformNoise);
