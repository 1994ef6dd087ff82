// N-API wrappers of the elementwise kernels: unwrap, check every length and shape again, call the kernel.
//   binaryOp(op, a, aShape, b, bShape, out)  out has the broadcast shape's size
//   unaryOp(op, x, out, p0, p1)              out has x's length; p0/p1: alpha or clip bounds (else ignored)
//   addN(inputs, out)                        every input has out's length
#include <string>

#include "binding/args.h"
#include "binding/registry.h"
#include "cpu/elementwise.h"

namespace {

namespace ew = pact::elementwise;

std::string shapeString(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(s[i]);
  }
  return out + "]";
}

std::string stringArg(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  if (i >= info.Length() || !info[i].IsString()) {
    pact::throwArg(info.Env(), fn, std::string(name) + " must be a string");
  }
  return info[i].As<Napi::String>().Utf8Value();
}

Napi::Value binaryOp(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "binaryOp";
  const std::string name = stringArg(info, 0, fn, "op");
  ew::BinaryOp op;
  if (!ew::parseBinaryOp(name, &op)) pact::throwArg(info.Env(), fn, "unknown op '" + name + "'");
  const auto aShape = pact::shapeArg(info, 2, fn, "aShape", ew::kMaxRank);
  const auto a = pact::floatArgOfLength(info, 1, fn, "a", pact::shapeSize(info, fn, "aShape", aShape));
  const auto bShape = pact::shapeArg(info, 4, fn, "bShape", ew::kMaxRank);
  const auto b = pact::floatArgOfLength(info, 3, fn, "b", pact::shapeSize(info, fn, "bShape", bShape));
  std::vector<int64_t> outShape;
  if (!ew::broadcastShape(aShape, bShape, &outShape)) {
    pact::throwArg(info.Env(), fn,
                   "shapes " + shapeString(aShape) + " and " + shapeString(bShape) + " cannot be broadcast");
  }
  const auto out = pact::floatArgOfLength(info, 5, fn, "out", pact::shapeSize(info, fn, "outShape", outShape));
  pact::checkDisjoint(info, fn, {pact::span("out", out)}, {pact::span("a", a), pact::span("b", b)});
  ew::binary(op, a.data, aShape, b.data, bShape, out.data);
  return info.Env().Undefined();
}

Napi::Value unaryOp(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "unaryOp";
  const std::string name = stringArg(info, 0, fn, "op");
  ew::UnaryOp op;
  if (!ew::parseUnaryOp(name, &op)) pact::throwArg(info.Env(), fn, "unknown op '" + name + "'");
  const auto x = pact::floatArg(info, 1, fn, "x");
  const auto out = pact::floatArgOfLength(info, 2, fn, "out", x.length);
  const double p0 = pact::numberArg(info, 3, fn, "p0");
  const double p1 = pact::numberArg(info, 4, fn, "p1");
  pact::checkDisjoint(info, fn, {pact::span("out", out)}, {pact::span("x", x)});
  ew::unary(op, x.data, out.data, x.length, p0, p1);
  return info.Env().Undefined();
}

Napi::Value addN(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "addN";
  if (info.Length() < 1 || !info[0].IsArray()) pact::throwArg(info.Env(), fn, "inputs must be an array");
  const auto list = info[0].As<Napi::Array>();
  if (list.Length() == 0) pact::throwArg(info.Env(), fn, "inputs must hold at least one array");
  const auto out = pact::floatArg(info, 1, fn, "out");
  std::vector<const float*> inputs(list.Length());
  for (uint32_t k = 0; k < list.Length(); ++k) {
    Napi::Value v = list[k];
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
      pact::throwArg(info.Env(), fn, "inputs[" + std::to_string(k) + "] must be a Float32Array");
    }
    auto a = v.As<Napi::Float32Array>();
    if (a.ElementLength() != out.length) {
      pact::throwArg(info.Env(), fn,
                     "inputs[" + std::to_string(k) + "] must have " + std::to_string(out.length) +
                         " elements (out's), got " + std::to_string(a.ElementLength()));
    }
    inputs[k] = a.Data();
    const std::string name = "inputs[" + std::to_string(k) + "]";
    pact::checkDisjoint(info, fn, {pact::span("out", out)}, {pact::Span{name.c_str(), a.Data(), out.length * 4}});
  }
  ew::addN(inputs.data(), inputs.size(), out.data, out.length);
  return info.Env().Undefined();
}

}  // namespace

PACT_EXPORT("binaryOp", binaryOp);
PACT_EXPORT("unaryOp", unaryOp);
PACT_EXPORT("addN", addN);
