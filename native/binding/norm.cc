// N-API bindings of the batch-norm kernels (cpu/batch_norm.h). The caller allocates every output; each array's
// length is checked against rows and channels here before a kernel runs.
#include <napi.h>

#include <string>

#include "binding/args.h"
#include "binding/registry.h"
#include "cpu/batch_norm.h"

namespace {

using pact::FloatView;

constexpr int64_t kMaxRows = int64_t{1} << 40;
constexpr int64_t kMaxChannels = int64_t{1} << 24;

// rows * channels, the length of x and y; an Error when it is too large for the kernels' index arithmetic.
size_t sizeArg(const Napi::CallbackInfo& info, const char* fn, size_t rows, size_t channels) {
  return pact::checkedElementCount(info.Env(), fn, "x", {static_cast<int64_t>(rows), static_cast<int64_t>(channels)});
}

// A Float32Array of `expected` elements, or null/undefined (returns a null view).
FloatView optionalFloatArgOfLength(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name,
                                   size_t expected) {
  if (i < info.Length() && (info[i].IsNull() || info[i].IsUndefined())) return {nullptr, 0};
  return pact::floatArgOfLength(info, i, fn, name, expected);
}

// A per-channel parameter of FusedBatchNorm: `channels` elements or 1 (broadcast), or null when `optional`.
pact::ChannelParam channelParamArg(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name,
                                   size_t channels, bool optional) {
  if (optional && i < info.Length() && (info[i].IsNull() || info[i].IsUndefined())) return {nullptr, 0};
  const FloatView v = pact::floatArg(info, i, fn, name);
  if (v.length != channels && v.length != 1) {
    pact::throwArg(info.Env(), fn,
                   std::string(name) + " must have " + std::to_string(channels) +
                       " elements (the channels) or 1, got " + std::to_string(v.length));
  }
  return {v.data, v.length};
}

// batchNormTrain(x, scale, offset, rows, channels, epsilon, relu, y, mean, variance)
Napi::Value batchNormTrain(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "batchNormTrain";
  const auto rows = static_cast<size_t>(pact::intArg(info, 3, fn, "rows", 1, kMaxRows));
  const auto channels = static_cast<size_t>(pact::intArg(info, 4, fn, "channels", 1, kMaxChannels));
  const size_t size = sizeArg(info, fn, rows, channels);
  const FloatView x = pact::floatArgOfLength(info, 0, fn, "x", size);
  const FloatView scale = pact::floatArgOfLength(info, 1, fn, "scale", channels);
  const FloatView offset = pact::floatArgOfLength(info, 2, fn, "offset", channels);
  const double epsilon = pact::numberArg(info, 5, fn, "epsilon");
  if (!(epsilon > 0)) pact::throwArg(info.Env(), fn, "epsilon must be positive, got " + std::to_string(epsilon));
  const bool relu = pact::boolArg(info, 6, fn, "relu");
  const FloatView y = pact::floatArgOfLength(info, 7, fn, "y", size);
  const FloatView mean = pact::floatArgOfLength(info, 8, fn, "mean", channels);
  const FloatView variance = pact::floatArgOfLength(info, 9, fn, "variance", channels);
  pact::checkDisjoint(info, fn, {pact::span("y", y), pact::span("mean", mean), pact::span("variance", variance)},
                      {pact::span("x", x), pact::span("scale", scale), pact::span("offset", offset)});
  pact::batchNormTrain(x.data, scale.data, offset.data, rows, channels, static_cast<float>(epsilon), relu, y.data,
                       mean.data, variance.data);
  return info.Env().Undefined();
}

// batchNormTrainGrad(dy, dmean, dvariance, x, scale, mean, variance, y | null, rows, channels, epsilon, relu,
//                    dx, dscale, doffset); y is required when relu is true.
Napi::Value batchNormTrainGrad(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "batchNormTrainGrad";
  const auto rows = static_cast<size_t>(pact::intArg(info, 8, fn, "rows", 1, kMaxRows));
  const auto channels = static_cast<size_t>(pact::intArg(info, 9, fn, "channels", 1, kMaxChannels));
  const size_t size = sizeArg(info, fn, rows, channels);
  const FloatView dy = pact::floatArgOfLength(info, 0, fn, "dy", size);
  const FloatView dmean = pact::floatArgOfLength(info, 1, fn, "dmean", channels);
  const FloatView dvariance = pact::floatArgOfLength(info, 2, fn, "dvariance", channels);
  const FloatView x = pact::floatArgOfLength(info, 3, fn, "x", size);
  const FloatView scale = pact::floatArgOfLength(info, 4, fn, "scale", channels);
  const FloatView mean = pact::floatArgOfLength(info, 5, fn, "mean", channels);
  const FloatView variance = pact::floatArgOfLength(info, 6, fn, "variance", channels);
  const double epsilon = pact::numberArg(info, 10, fn, "epsilon");
  if (!(epsilon > 0)) pact::throwArg(info.Env(), fn, "epsilon must be positive, got " + std::to_string(epsilon));
  const bool relu = pact::boolArg(info, 11, fn, "relu");
  const FloatView y = optionalFloatArgOfLength(info, 7, fn, "y", size);
  if (relu && y.data == nullptr) pact::throwArg(info.Env(), fn, "y (the forward output) is required when relu is true");
  const FloatView dx = pact::floatArgOfLength(info, 12, fn, "dx", size);
  const FloatView dscale = pact::floatArgOfLength(info, 13, fn, "dscale", channels);
  const FloatView doffset = pact::floatArgOfLength(info, 14, fn, "doffset", channels);
  pact::checkDisjoint(info, fn, {pact::span("dx", dx), pact::span("dscale", dscale), pact::span("doffset", doffset)},
                      {pact::span("dy", dy), pact::span("dmean", dmean), pact::span("dvariance", dvariance),
                       pact::span("x", x), pact::span("scale", scale), pact::span("mean", mean),
                       pact::span("variance", variance), pact::span("y", y)});
  pact::batchNormTrainGrad(dy.data, dmean.data, dvariance.data, x.data, scale.data, mean.data, variance.data, y.data,
                           rows, channels, static_cast<float>(epsilon), relu, dx.data, dscale.data, doffset.data);
  return info.Env().Undefined();
}

// batchNormInference(x, rows, channels, mean, variance, scale | null, offset | null, epsilon, y)
Napi::Value batchNormInference(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "batchNormInference";
  const auto rows = static_cast<size_t>(pact::intArg(info, 1, fn, "rows", 0, kMaxRows));
  const auto channels = static_cast<size_t>(pact::intArg(info, 2, fn, "channels", 1, kMaxChannels));
  const size_t size = sizeArg(info, fn, rows, channels);
  const FloatView x = pact::floatArgOfLength(info, 0, fn, "x", size);
  const auto mean = channelParamArg(info, 3, fn, "mean", channels, false);
  const auto variance = channelParamArg(info, 4, fn, "variance", channels, false);
  const auto scale = channelParamArg(info, 5, fn, "scale", channels, true);
  const auto offset = channelParamArg(info, 6, fn, "offset", channels, true);
  const double epsilon = pact::numberArg(info, 7, fn, "epsilon");
  if (!(epsilon >= 0)) pact::throwArg(info.Env(), fn, "epsilon must be non-negative, got " + std::to_string(epsilon));
  const FloatView y = pact::floatArgOfLength(info, 8, fn, "y", size);
  const auto param = [](const char* name, const pact::ChannelParam& p) {
    return pact::Span{name, p.data, p.length * sizeof(float)};
  };
  pact::checkDisjoint(info, fn, {pact::span("y", y)},
                      {pact::span("x", x), param("mean", mean), param("variance", variance), param("scale", scale),
                       param("offset", offset)});
  pact::batchNormInference(x.data, rows, channels, mean, variance, scale, offset, static_cast<float>(epsilon), y.data);
  return info.Env().Undefined();
}

}  // namespace

PACT_EXPORT("batchNormTrain", batchNormTrain);
PACT_EXPORT("batchNormTrainGrad", batchNormTrainGrad);
PACT_EXPORT("batchNormInference", batchNormInference);
