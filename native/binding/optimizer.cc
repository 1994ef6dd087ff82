// N-API binding of the fused SGD-momentum step (native/cpu/sgd_momentum.h).
#include <napi.h>

#include <cmath>

#include "binding/args.h"
#include "binding/registry.h"
#include "cpu/sgd_momentum.h"

namespace {

// sgdMomentum(value, accumulation, gradient, learningRate, momentum, valueOut, accumulationOut): Float32Arrays of
// one length; learningRate and momentum finite.
Napi::Value sgdMomentum(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "sgdMomentum";
  const pact::FloatView value = pact::floatArg(info, 0, fn, "value");
  const size_t n = value.length;
  const pact::FloatView accumulation = pact::floatArgOfLength(info, 1, fn, "accumulation", n);
  const pact::FloatView gradient = pact::floatArgOfLength(info, 2, fn, "gradient", n);
  const double learningRate = pact::numberArg(info, 3, fn, "learningRate");
  const double momentum = pact::numberArg(info, 4, fn, "momentum");
  if (!std::isfinite(learningRate) || !std::isfinite(momentum)) {
    pact::throwArg(info.Env(), fn, "learningRate and momentum must be finite");
  }
  const pact::FloatView valueOut = pact::floatArgOfLength(info, 5, fn, "valueOut", n);
  const pact::FloatView accumulationOut = pact::floatArgOfLength(info, 6, fn, "accumulationOut", n);
  pact::checkDisjoint(info, fn, {pact::span("valueOut", valueOut), pact::span("accumulationOut", accumulationOut)},
                      {pact::span("value", value), pact::span("accumulation", accumulation),
                       pact::span("gradient", gradient)});
  pact::optim::sgdMomentum(value.data, accumulation.data, gradient.data, static_cast<int64_t>(n),
                           -static_cast<float>(learningRate), static_cast<float>(momentum), valueOut.data,
                           accumulationOut.data);
  return info.Env().Undefined();
}

}  // namespace

PACT_EXPORT("sgdMomentum", sgdMomentum);
