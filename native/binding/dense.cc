// N-API layer of the dense kernels (cpu/dense_conv.h, cpu/dense_matmul.h). Exported only when the addon is built
// with oneDNN: without it these functions are absent and the TS kernels fall back to tfjs' JS kernels.
//
//   conv2dForward(geometry, x, filter, bias | null, y, activation, leakyreluAlpha)
//   conv2dBackpropInput(geometry, dy, filter, dx)
//   conv2dBackpropFilter(geometry, x, dy, dfilter)
//   conv2dByTiles(geometry): whether those three run the masked convolution's Winograd tiles (the forward's bias and
//     activation then in place after them) rather than oneDNN's kernels (cpu/dense_conv.h, denseConvByTiles)
//   batchMatMul(aShape, a, bShape, b, transposeA, transposeB, bias | null, out, activation, leakyreluAlpha)
//
// geometry is [batch, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels, filterHeight, filterWidth,
// strideHeight, strideWidth, dilationHeight, dilationWidth, padTop, padLeft, padBottom, padRight]. Every buffer
// length is checked against it, and outputs must not overlap inputs.
#ifdef PACT_HAVE_DNNL
#include <string>

#include "binding/args.h"
#include "binding/registry.h"
#include "cpu/dense_conv.h"
#include "cpu/dense_matmul.h"

namespace {

using pact::FloatView;

constexpr size_t kGeometryLength = 17;

pact::Conv2DGeometry geometryArg(const Napi::CallbackInfo& info, size_t i, const char* fn) {
  const auto v = pact::shapeArg(info, i, fn, "geometry", kGeometryLength);
  if (v.size() != kGeometryLength) {
    pact::throwArg(info.Env(), fn, "geometry must have " + std::to_string(kGeometryLength) + " entries, got " +
                                       std::to_string(v.size()));
  }
  const pact::Conv2DGeometry g{v[0], v[1], v[2],  v[3],  v[4],  v[5],  v[6],  v[7], v[8],
                               v[9], v[10], v[11], v[12], v[13], v[14], v[15], v[16]};
  const std::string problem = pact::checkConv2DGeometry(g);
  if (!problem.empty()) pact::throwArg(info.Env(), fn, "geometry: " + problem);
  return g;
}

// A Float32Array of `expected` elements, or null/undefined (nullptr).
const float* optionalFloatArg(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name,
                              size_t expected) {
  if (i < info.Length() && (info[i].IsNull() || info[i].IsUndefined())) return nullptr;
  return pact::floatArgOfLength(info, i, fn, name, expected).data;
}

pact::Epilogue epilogueArg(const Napi::CallbackInfo& info, size_t i, const char* fn) {
  if (i >= info.Length() || !info[i].IsString()) pact::throwArg(info.Env(), fn, "activation must be a string");
  const std::string name = info[i].As<Napi::String>().Utf8Value();
  const auto activation = pact::parseActivation(name);
  if (!activation) {
    pact::throwArg(info.Env(), fn,
                   "activation must be one of linear, relu, relu6, leakyrelu, elu, sigmoid, got '" + name + "'");
  }
  return {*activation, static_cast<float>(pact::numberArg(info, i + 1, fn, "leakyreluAlpha"))};
}

// oneDNN reports an unsupported configuration with dnnl::error: turn it into a JS Error naming the function.
template <typename F>
Napi::Value runDnnl(const Napi::CallbackInfo& info, const char* fn, F&& body) {
  try {
    body();
  } catch (const dnnl::error& e) {
    pact::throwArg(info.Env(), fn, std::string("oneDNN failed: ") + e.what());
  }
  return info.Env().Undefined();
}

Napi::Value conv2dForward(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "conv2dForward";
  const auto g = geometryArg(info, 0, fn);
  const FloatView x = pact::floatArgOfLength(info, 1, fn, "x", g.xSize());
  const FloatView filter = pact::floatArgOfLength(info, 2, fn, "filter", g.filterSize());
  const float* bias = optionalFloatArg(info, 3, fn, "bias", g.outChannels);
  const FloatView y = pact::floatArgOfLength(info, 4, fn, "y", g.ySize());
  const pact::Epilogue epilogue = epilogueArg(info, 5, fn);
  pact::checkNoOverlap(info, fn, y, "y", {{x.data, x.length}, {filter.data, filter.length}, {bias, g.outChannels}});
  return runDnnl(info, fn, [&] { pact::conv2dForward(g, x.data, filter.data, bias, epilogue, y.data); });
}

Napi::Value conv2dBackpropInput(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "conv2dBackpropInput";
  const auto g = geometryArg(info, 0, fn);
  const FloatView dy = pact::floatArgOfLength(info, 1, fn, "dy", g.ySize());
  const FloatView filter = pact::floatArgOfLength(info, 2, fn, "filter", g.filterSize());
  const FloatView dx = pact::floatArgOfLength(info, 3, fn, "dx", g.xSize());
  pact::checkNoOverlap(info, fn, dx, "dx", {{dy.data, dy.length}, {filter.data, filter.length}});
  return runDnnl(info, fn, [&] { pact::conv2dBackpropInput(g, dy.data, filter.data, dx.data); });
}

Napi::Value conv2dBackpropFilter(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "conv2dBackpropFilter";
  const auto g = geometryArg(info, 0, fn);
  const FloatView x = pact::floatArgOfLength(info, 1, fn, "x", g.xSize());
  const FloatView dy = pact::floatArgOfLength(info, 2, fn, "dy", g.ySize());
  const FloatView dfilter = pact::floatArgOfLength(info, 3, fn, "dfilter", g.filterSize());
  pact::checkNoOverlap(info, fn, dfilter, "dfilter", {{x.data, x.length}, {dy.data, dy.length}});
  return runDnnl(info, fn, [&] { pact::conv2dBackpropFilter(g, x.data, dy.data, dfilter.data); });
}

Napi::Value conv2dByTiles(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), pact::denseConvByTiles(geometryArg(info, 0, "conv2dByTiles")));
}

Napi::Value batchMatMul(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "batchMatMul";
  pact::MatMulShapes s;
  s.a = pact::shapeArg(info, 0, fn, "aShape", 12);
  const FloatView a = pact::floatArgOfLength(info, 1, fn, "a", pact::shapeSize(info, fn, "aShape", s.a));
  s.b = pact::shapeArg(info, 2, fn, "bShape", 12);
  const FloatView b = pact::floatArgOfLength(info, 3, fn, "b", pact::shapeSize(info, fn, "bShape", s.b));
  s.transposeA = pact::boolArg(info, 4, fn, "transposeA");
  s.transposeB = pact::boolArg(info, 5, fn, "transposeB");
  std::vector<int64_t> outShape;
  const std::string problem = pact::checkMatMulShapes(s, &outShape);
  if (!problem.empty()) pact::throwArg(info.Env(), fn, problem);
  const size_t n = static_cast<size_t>(outShape.back());
  const float* bias = optionalFloatArg(info, 6, fn, "bias", n);
  const FloatView out = pact::floatArgOfLength(info, 7, fn, "out", pact::shapeSize(info, fn, "outShape", outShape));
  const pact::Epilogue epilogue = epilogueArg(info, 8, fn);
  pact::checkNoOverlap(info, fn, out, "out", {{a.data, a.length}, {b.data, b.length}, {bias, n}});
  return runDnnl(info, fn, [&] { pact::batchMatMul(s, a.data, b.data, bias, epilogue, out.data); });
}

}  // namespace

PACT_EXPORT("conv2dForward", conv2dForward);
PACT_EXPORT("conv2dBackpropInput", conv2dBackpropInput);
PACT_EXPORT("conv2dBackpropFilter", conv2dBackpropFilter);
PACT_EXPORT("conv2dByTiles", conv2dByTiles);
PACT_EXPORT("batchMatMul", batchMatMul);

#endif  // PACT_HAVE_DNNL
