// Argument unwrapping of the convolution geometry shared by the CPU and CUDA masked-convolution bindings: the
// shapes (xShape [B,H,W,C], filterShape [kH,kW,C,outC], strides [sH,sW], pads [top,bottom,left,right]) at
// info[0..3], checked with masked::maskedConv2dGeometryError, and overflow-checked element counts.
#pragma once
#include <napi.h>

#include <initializer_list>
#include <string>
#include <vector>

#include "binding/args.h"
#include "cpu/masked_conv2d.h"

namespace pact {

inline std::string shapeText(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(s[i]);
  }
  out += ']';
  return out;
}

inline std::vector<int64_t> shapeOfRank(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name,
                                 size_t rank, const char* meaning) {
  std::vector<int64_t> s = shapeArg(info, i, fn, name);
  if (s.size() != rank) {
    throwArg(info.Env(), fn,
                   std::string(name) + " must have " + std::to_string(rank) + " entries " + meaning + ", got " +
                       shapeText(s));
  }
  for (int64_t d : s) {
    if (d > (int64_t{1} << 31)) throwArg(info.Env(), fn, std::string(name) + " has an entry above 2^31");
  }
  return s;
}

// Element count of a tensor of these dimensions, or an Error when it is too large (checkedElementCount).
inline size_t elementCount(const Napi::CallbackInfo& info, const char* fn, std::initializer_list<int64_t> dims) {
  return checkedElementCount(info.Env(), fn, "tensor", dims);
}

inline masked::ConvGeometry geometryArgs(const Napi::CallbackInfo& info, const char* fn) {
  const auto x = shapeOfRank(info, 0, fn, "xShape", 4, "[batch, height, width, inChannels]");
  const auto f = shapeOfRank(info, 1, fn, "filterShape", 4, "[kH, kW, inChannels, outChannels]");
  const auto s = shapeOfRank(info, 2, fn, "strides", 2, "[strideH, strideW]");
  const auto p = shapeOfRank(info, 3, fn, "pads", 4, "[top, bottom, left, right]");
  if (f[2] != x[3]) {
    throwArg(info.Env(), fn,
                   "filterShape[2] (" + std::to_string(f[2]) + ") must equal the input channels xShape[3] (" +
                       std::to_string(x[3]) + ")");
  }
  const masked::ConvGeometry g =
      masked::makeConvGeometry(x[0], x[1], x[2], x[3], f[0], f[1], f[3], s[0], s[1], p[0], p[1], p[2], p[3]);
  const std::string error = masked::maskedConv2dGeometryError(g);
  if (!error.empty()) throwArg(info.Env(), fn, error);
  return g;
}

}  // namespace pact
