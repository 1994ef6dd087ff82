// N-API bindings of the masked batch norm + ReLU (native/cpu/masked_residual_unit.h). Sizes first (rows, channels),
// then the arrays, each checked against them, then the outputs to fill.
#include <napi.h>

#include <cmath>

#include "binding/args.h"
#include "binding/registry.h"
#include "cpu/masked_residual_unit.h"

namespace {

constexpr int64_t kMaxElements = int64_t{1} << 40;

struct Sizes {
  int64_t rows, channels;
};

Sizes sizesArgs(const Napi::CallbackInfo& info, const char* fn) {
  const int64_t rows = pact::intArg(info, 0, fn, "rows", 0, kMaxElements);
  const int64_t channels = pact::intArg(info, 1, fn, "channels", 1, kMaxElements);
  if (rows > kMaxElements / channels) pact::throwArg(info.Env(), fn, "rows * channels is too large");
  return {rows, channels};
}

float epsilonArg(const Napi::CallbackInfo& info, size_t i, const char* fn) {
  const double e = pact::numberArg(info, i, fn, "epsilon");
  if (!(e > 0) || !std::isfinite(e)) pact::throwArg(info.Env(), fn, "epsilon must be positive and finite");
  return static_cast<float>(e);
}

// maskedBatchNormRelu(rows, channels, x, mask, scale, offset, epsilon, y, mean, variance)
Napi::Value maskedBatchNormRelu(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "maskedBatchNormRelu";
  const Sizes s = sizesArgs(info, fn);
  const size_t n = static_cast<size_t>(s.rows * s.channels), c = static_cast<size_t>(s.channels);
  const float* x = pact::floatArgOfLength(info, 2, fn, "x", n).data;
  const float* mask = pact::floatArgOfLength(info, 3, fn, "mask", static_cast<size_t>(s.rows)).data;
  const float* scale = pact::floatArgOfLength(info, 4, fn, "scale", c).data;
  const float* offset = pact::floatArgOfLength(info, 5, fn, "offset", c).data;
  const float epsilon = epsilonArg(info, 6, fn);
  float* y = pact::floatArgOfLength(info, 7, fn, "y", n).data;
  float* mean = pact::floatArgOfLength(info, 8, fn, "mean", c).data;
  float* variance = pact::floatArgOfLength(info, 9, fn, "variance", c).data;
  pact::masked::maskedBatchNormRelu(x, mask, s.rows, s.channels, scale, offset, epsilon, y, mean, variance);
  return info.Env().Undefined();
}

// maskedBatchNormReluGrad(rows, channels, dy, x, mask, y, scale, mean, variance, epsilon, dx, dscale, doffset)
Napi::Value maskedBatchNormReluGrad(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "maskedBatchNormReluGrad";
  const Sizes s = sizesArgs(info, fn);
  const size_t n = static_cast<size_t>(s.rows * s.channels), c = static_cast<size_t>(s.channels);
  const float* dy = pact::floatArgOfLength(info, 2, fn, "dy", n).data;
  const float* x = pact::floatArgOfLength(info, 3, fn, "x", n).data;
  const float* mask = pact::floatArgOfLength(info, 4, fn, "mask", static_cast<size_t>(s.rows)).data;
  const float* y = pact::floatArgOfLength(info, 5, fn, "y", n).data;
  const float* scale = pact::floatArgOfLength(info, 6, fn, "scale", c).data;
  const float* mean = pact::floatArgOfLength(info, 7, fn, "mean", c).data;
  const float* variance = pact::floatArgOfLength(info, 8, fn, "variance", c).data;
  const float epsilon = epsilonArg(info, 9, fn);
  float* dx = pact::floatArgOfLength(info, 10, fn, "dx", n).data;
  float* dscale = pact::floatArgOfLength(info, 11, fn, "dscale", c).data;
  float* doffset = pact::floatArgOfLength(info, 12, fn, "doffset", c).data;
  pact::masked::maskedBatchNormReluGrad(dy, x, mask, y, s.rows, s.channels, scale, mean, variance, epsilon, dx, dscale,
                                        doffset);
  return info.Env().Undefined();
}

}  // namespace

PACT_EXPORT("maskedBatchNormRelu", maskedBatchNormRelu);
PACT_EXPORT("maskedBatchNormReluGrad", maskedBatchNormReluGrad);
