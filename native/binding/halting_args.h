// The halting step's scalar attributes as N-API arguments, shared by the CPU and CUDA bindings.
#pragma once
#include <napi.h>

#include <cmath>
#include <string>

#include "binding/args.h"
#include "cpu/halting_step.h"

namespace pact {

// The scalar attributes at info[first .. first+4]: mode, iteration, last, temperature, delta.
inline HaltingStepConfig haltingConfigArg(const Napi::CallbackInfo& info, size_t first, const char* fn) {
  HaltingStepConfig cfg{};
  cfg.mode = static_cast<HaltingMode>(intArg(info, first, fn, "mode (0 relaxed, 1 discrete, 2 thresholded)", 0, 2));
  cfg.iteration = static_cast<int32_t>(intArg(info, first + 1, fn, "iteration", 1, 1 << 30));
  cfg.last = boolArg(info, first + 2, fn, "last");
  const double temperature = numberArg(info, first + 3, fn, "temperature");
  if (cfg.mode == HaltingMode::kRelaxed && !(temperature > 0 && std::isfinite(temperature))) {
    throwArg(info.Env(), fn, "temperature must be a positive finite number, got " + std::to_string(temperature));
  }
  const double delta = numberArg(info, first + 4, fn, "delta");
  if (!(delta >= 0 && delta < 1)) {
    throwArg(info.Env(), fn, "delta must be in [0, 1), got " + std::to_string(delta));
  }
  cfg.temperature = static_cast<float>(temperature);
  cfg.delta = static_cast<float>(delta);
  return cfg;
}

inline bool readsNoise(const HaltingStepConfig& cfg) { return !cfg.last && cfg.mode != HaltingMode::kThresholded; }

}  // namespace pact
