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
  const pact::FloatView x = pact::floatArgOfLength(info, 2, fn, "x", n);
  const pact::FloatView mask = pact::floatArgOfLength(info, 3, fn, "mask", static_cast<size_t>(s.rows));
  const pact::FloatView scale = pact::floatArgOfLength(info, 4, fn, "scale", c);
  const pact::FloatView offset = pact::floatArgOfLength(info, 5, fn, "offset", c);
  const float epsilon = epsilonArg(info, 6, fn);
  const pact::FloatView y = pact::floatArgOfLength(info, 7, fn, "y", n);
  const pact::FloatView mean = pact::floatArgOfLength(info, 8, fn, "mean", c);
  const pact::FloatView variance = pact::floatArgOfLength(info, 9, fn, "variance", c);
  for (const auto& [out, name] : {std::pair{y, "y"}, {mean, "mean"}, {variance, "variance"}}) {
    pact::checkNoOverlap(info, fn, out, name,
                         {{x.data, n}, {mask.data, mask.length}, {scale.data, c}, {offset.data, c}});
  }
  pact::masked::maskedBatchNormRelu(x.data, mask.data, s.rows, s.channels, scale.data, offset.data, epsilon, y.data,
                                    mean.data, variance.data);
  return info.Env().Undefined();
}

// maskedBatchNormReluInference(rows, channels, x, mask | null, scale, offset, mean, variance, epsilon, y)
Napi::Value maskedBatchNormReluInference(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "maskedBatchNormReluInference";
  const Sizes s = sizesArgs(info, fn);
  const size_t n = static_cast<size_t>(s.rows * s.channels), c = static_cast<size_t>(s.channels);
  const pact::FloatView x = pact::floatArgOfLength(info, 2, fn, "x", n);
  const pact::FloatView mask = info.Length() > 3 && info[3].IsNull()
                                   ? pact::FloatView{nullptr, 0}
                                   : pact::floatArgOfLength(info, 3, fn, "mask", static_cast<size_t>(s.rows));
  const pact::FloatView scale = pact::floatArgOfLength(info, 4, fn, "scale", c);
  const pact::FloatView offset = pact::floatArgOfLength(info, 5, fn, "offset", c);
  const pact::FloatView mean = pact::floatArgOfLength(info, 6, fn, "mean", c);
  const pact::FloatView variance = pact::floatArgOfLength(info, 7, fn, "variance", c);
  const float epsilon = epsilonArg(info, 8, fn);
  const pact::FloatView y = pact::floatArgOfLength(info, 9, fn, "y", n);
  pact::checkNoOverlap(info, fn, y, "y",
                       {{x.data, n}, {mask.data, mask.length}, {scale.data, c}, {offset.data, c}, {mean.data, c},
                        {variance.data, c}});
  pact::masked::maskedBatchNormReluInference(x.data, mask.data, s.rows, s.channels, scale.data, offset.data,
                                             mean.data, variance.data, epsilon, y.data);
  return info.Env().Undefined();
}

// maskedBatchNormReluGrad(rows, channels, dy, x, mask, y, scale, mean, variance, epsilon, dx, dscale, doffset)
Napi::Value maskedBatchNormReluGrad(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "maskedBatchNormReluGrad";
  const Sizes s = sizesArgs(info, fn);
  const size_t n = static_cast<size_t>(s.rows * s.channels), c = static_cast<size_t>(s.channels);
  const pact::FloatView dy = pact::floatArgOfLength(info, 2, fn, "dy", n);
  const pact::FloatView x = pact::floatArgOfLength(info, 3, fn, "x", n);
  const pact::FloatView mask = pact::floatArgOfLength(info, 4, fn, "mask", static_cast<size_t>(s.rows));
  const pact::FloatView y = pact::floatArgOfLength(info, 5, fn, "y", n);
  const pact::FloatView scale = pact::floatArgOfLength(info, 6, fn, "scale", c);
  const pact::FloatView mean = pact::floatArgOfLength(info, 7, fn, "mean", c);
  const pact::FloatView variance = pact::floatArgOfLength(info, 8, fn, "variance", c);
  const float epsilon = epsilonArg(info, 9, fn);
  const pact::FloatView dx = pact::floatArgOfLength(info, 10, fn, "dx", n);
  const pact::FloatView dscale = pact::floatArgOfLength(info, 11, fn, "dscale", c);
  const pact::FloatView doffset = pact::floatArgOfLength(info, 12, fn, "doffset", c);
  for (const auto& [out, name] : {std::pair{dx, "dx"}, {dscale, "dscale"}, {doffset, "doffset"}}) {
    pact::checkNoOverlap(info, fn, out, name,
                         {{dy.data, n}, {x.data, n}, {mask.data, mask.length}, {y.data, n}, {scale.data, c},
                          {mean.data, c}, {variance.data, c}});
  }
  pact::checkNoOverlap(info, fn, dscale, "dscale", {{dx.data, n}, {doffset.data, c}});
  pact::checkNoOverlap(info, fn, doffset, "doffset", {{dx.data, n}});
  pact::masked::maskedBatchNormReluGrad(dy.data, x.data, mask.data, y.data, s.rows, s.channels, scale.data, mean.data,
                                        variance.data, epsilon, dx.data, dscale.data, doffset.data);
  return info.Env().Undefined();
}

// scaledResidualAdd(rows, channels, u, c, a, y)
Napi::Value scaledResidualAdd(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "scaledResidualAdd";
  const Sizes s = sizesArgs(info, fn);
  const size_t n = static_cast<size_t>(s.rows * s.channels), rows = static_cast<size_t>(s.rows);
  const pact::FloatView u = pact::floatArgOfLength(info, 2, fn, "u", n);
  const pact::FloatView c = pact::floatArgOfLength(info, 3, fn, "c", n);
  const pact::FloatView a = pact::floatArgOfLength(info, 4, fn, "a", rows);
  const pact::FloatView y = pact::floatArgOfLength(info, 5, fn, "y", n);
  pact::checkNoOverlap(info, fn, y, "y", {{u.data, n}, {c.data, n}, {a.data, rows}});
  pact::masked::scaledResidualAdd(u.data, c.data, a.data, s.rows, s.channels, y.data);
  return info.Env().Undefined();
}

// scaledResidualAddGrad(rows, channels, dy, c, a, dc, da)
Napi::Value scaledResidualAddGrad(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "scaledResidualAddGrad";
  const Sizes s = sizesArgs(info, fn);
  const size_t n = static_cast<size_t>(s.rows * s.channels), rows = static_cast<size_t>(s.rows);
  const pact::FloatView dy = pact::floatArgOfLength(info, 2, fn, "dy", n);
  const pact::FloatView c = pact::floatArgOfLength(info, 3, fn, "c", n);
  const pact::FloatView a = pact::floatArgOfLength(info, 4, fn, "a", rows);
  const pact::FloatView dc = pact::floatArgOfLength(info, 5, fn, "dc", n);
  const pact::FloatView da = pact::floatArgOfLength(info, 6, fn, "da", rows);
  for (const auto& [out, name] : {std::pair{dc, "dc"}, {da, "da"}}) {
    pact::checkNoOverlap(info, fn, out, name, {{dy.data, n}, {c.data, n}, {a.data, rows}});
  }
  pact::checkNoOverlap(info, fn, da, "da", {{dc.data, n}});
  pact::masked::scaledResidualAddGrad(dy.data, c.data, a.data, s.rows, s.channels, dc.data, da.data);
  return info.Env().Undefined();
}

}  // namespace

PACT_EXPORT("maskedBatchNormRelu", maskedBatchNormRelu);
PACT_EXPORT("scaledResidualAdd", scaledResidualAdd);
PACT_EXPORT("scaledResidualAddGrad", scaledResidualAddGrad);
PACT_EXPORT("maskedBatchNormReluInference", maskedBatchNormReluInference);
PACT_EXPORT("maskedBatchNormReluGrad", maskedBatchNormReluGrad);
