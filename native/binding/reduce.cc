// N-API wrappers of the reductions: unwrap, check every length, shape and axis again, call the kernel.
//   reduce(op, x, shape, axes, out)   out has the product of the dims not in axes
//   argMax(x, shape, axis, out)       out (Int32Array) has the product of the other dims
#include <string>

#include "binding/args.h"
#include "binding/registry.h"
#include "cpu/reduce.h"

namespace {

constexpr size_t kMaxRank = 8;

std::vector<bool> axesArg(const Napi::CallbackInfo& info, size_t i, const char* fn, size_t rank) {
  const auto axes = pact::shapeArg(info, i, fn, "axes", kMaxRank);
  std::vector<bool> reduced(rank, false);
  for (int64_t a : axes) {
    if (a >= static_cast<int64_t>(rank)) {
      pact::throwArg(info.Env(), fn,
                     "axes must hold distinct axes in [0, " + std::to_string(rank) + "), got " + std::to_string(a));
    }
    if (reduced[a]) pact::throwArg(info.Env(), fn, "axes must be distinct, got " + std::to_string(a) + " twice");
    reduced[a] = true;
  }
  return reduced;
}

Napi::Value reduce(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "reduce";
  if (info.Length() < 1 || !info[0].IsString()) pact::throwArg(info.Env(), fn, "op must be a string");
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  pact::reduce::ReduceOp op;
  if (!pact::reduce::parseReduceOp(name, &op)) pact::throwArg(info.Env(), fn, "unknown op '" + name + "'");
  const auto shape = pact::shapeArg(info, 2, fn, "shape", kMaxRank);
  const auto x = pact::floatArgOfLength(info, 1, fn, "x", pact::shapeSize(info, fn, "shape", shape));
  const auto reduced = axesArg(info, 3, fn, shape.size());
  size_t outSize = 1;
  size_t reduceSize = 1;
  for (size_t i = 0; i < shape.size(); ++i) (reduced[i] ? reduceSize : outSize) *= static_cast<size_t>(shape[i]);
  const auto out = pact::floatArgOfLength(info, 4, fn, "out", outSize);
  if (outSize > 0 && reduceSize == 0) pact::throwArg(info.Env(), fn, "cannot reduce over an empty axis");
  pact::checkDisjoint(info, fn, {pact::span("out", out)}, {pact::span("x", x)});
  pact::reduce::reduce(op, x.data, shape, reduced, out.data);
  return info.Env().Undefined();
}

Napi::Value argMax(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "argMax";
  const auto shape = pact::shapeArg(info, 1, fn, "shape", kMaxRank);
  const auto x = pact::floatArgOfLength(info, 0, fn, "x", pact::shapeSize(info, fn, "shape", shape));
  if (shape.empty()) pact::throwArg(info.Env(), fn, "shape must have rank >= 1");
  const auto axis = static_cast<size_t>(pact::intArg(info, 2, fn, "axis", 0, static_cast<int64_t>(shape.size()) - 1));
  int64_t outer = 1;
  int64_t inner = 1;
  for (size_t i = 0; i < axis; ++i) outer *= shape[i];
  for (size_t i = axis + 1; i < shape.size(); ++i) inner *= shape[i];
  const auto out = pact::int32Arg(info, 3, fn, "out");
  if (out.length != static_cast<size_t>(outer * inner)) {
    pact::throwArg(info.Env(), fn,
                   "out must have " + std::to_string(outer * inner) + " elements, got " + std::to_string(out.length));
  }
  pact::checkDisjoint(info, fn, {pact::span("out", out)}, {pact::span("x", x)});
  if (outer * inner > 0 && shape[axis] == 0) pact::throwArg(info.Env(), fn, "cannot reduce over an empty axis");
  if (outer * inner > 0) pact::reduce::argMax(x.data, outer, shape[axis], inner, out.data);
  return info.Env().Undefined();
}

}  // namespace

PACT_EXPORT("reduce", reduce);
PACT_EXPORT("argMax", argMax);
