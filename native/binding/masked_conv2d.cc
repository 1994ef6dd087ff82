// N-API bindings of the masked convolution (native/cpu/masked_conv2d.h). Every function takes the geometry first,
// (xShape [B,H,W,C], filterShape [kH,kW,C,outC], strides [sH,sW], pads [top,bottom,left,right]), then its arrays,
// then the output array to fill and the algorithm (0 auto, 1 sparse, 2 dense, 3 sparse without Winograd). Shapes and
// every array's length are checked here again, so a wrong call throws a JS Error and never reaches the kernel.
#include <napi.h>

#include <string>
#include <vector>

#include "binding/args.h"
#include "binding/conv_args.h"
#include "binding/registry.h"
#include "cpu/mask_rows.h"
#include "cpu/masked_conv2d.h"

namespace {

using pact::masked::ConvGeometry;
using pact::masked::MaskedAlgo;
using pact::elementCount;
using pact::geometryArgs;
using pact::shapeOfRank;

size_t xCount(const Napi::CallbackInfo& info, const char* fn, const ConvGeometry& g) {
  return elementCount(info, fn, {g.batch, g.inH, g.inW, g.inC});
}
size_t filterCount(const Napi::CallbackInfo& info, const char* fn, const ConvGeometry& g) {
  return elementCount(info, fn, {g.kH, g.kW, g.inC, g.outC});
}
size_t yCount(const Napi::CallbackInfo& info, const char* fn, const ConvGeometry& g) {
  return elementCount(info, fn, {g.batch, g.outH, g.outW, g.outC});
}

size_t maskCount(const ConvGeometry& g) { return static_cast<size_t>(g.batch * g.outH * g.outW); }

const float* maskArg(const Napi::CallbackInfo& info, size_t i, const char* fn, const ConvGeometry& g) {
  const pact::FloatView m = pact::floatArg(info, i, fn, "mask");
  const size_t expected = elementCount(info, fn, {g.batch, g.outH, g.outW});
  if (m.length != expected) {
    pact::throwArg(info.Env(), fn,
                   "mask must have shape [" + std::to_string(g.batch) + "," + std::to_string(g.outH) + "," +
                       std::to_string(g.outW) + "] (the output's batch, height, width: " + std::to_string(expected) +
                       " elements), got " + std::to_string(m.length) + " elements");
  }
  return m.data;
}

MaskedAlgo algoArg(const Napi::CallbackInfo& info, size_t i, const char* fn) {
  return static_cast<MaskedAlgo>(
      pact::intArg(info, i, fn, "algo (0 auto, 1 sparse, 2 dense, 3 sparse without Winograd)", 0, 3));
}

// The optional last argument: true when the caller's output array is all zeros (a fresh array); default false.
bool outputZeroedArg(const Napi::CallbackInfo& info, size_t i, const char* fn) {
  return i < info.Length() && !info[i].IsUndefined() && pact::boolArg(info, i, fn, "outputZeroed");
}

// maskedConv2d(xShape, filterShape, strides, pads, x, filter, mask, y, algo, outputZeroed?): the active count
Napi::Value maskedConv2d(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "maskedConv2d";
  const ConvGeometry g = geometryArgs(info, fn);
  const pact::FloatView x = pact::floatArgOfLength(info, 4, fn, "x", xCount(info, fn, g));
  const pact::FloatView filter = pact::floatArgOfLength(info, 5, fn, "filter", filterCount(info, fn, g));
  const float* mask = maskArg(info, 6, fn, g);
  const pact::FloatView y = pact::floatArgOfLength(info, 7, fn, "y", yCount(info, fn, g));
  pact::checkNoOverlap(info, fn, y, "y", {{x.data, x.length}, {filter.data, filter.length}, {mask, maskCount(g)}});
  const int64_t active = pact::masked::maskedConv2dForward(g, x.data, filter.data, mask, y.data, algoArg(info, 8, fn),
                                                           outputZeroedArg(info, 9, fn));
  return Napi::Number::New(info.Env(), static_cast<double>(active));
}

// maskedConv2dBackpropInput(xShape, filterShape, strides, pads, dy, filter, mask, dx, algo, outputZeroed?): the
// active count when the sparse path ran (dx then exactly 0 outside the active windows), -1 after the dense one
Napi::Value maskedConv2dBackpropInput(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "maskedConv2dBackpropInput";
  const ConvGeometry g = geometryArgs(info, fn);
  const pact::FloatView dy = pact::floatArgOfLength(info, 4, fn, "dy", yCount(info, fn, g));
  const pact::FloatView filter = pact::floatArgOfLength(info, 5, fn, "filter", filterCount(info, fn, g));
  const float* mask = maskArg(info, 6, fn, g);
  const pact::FloatView dx = pact::floatArgOfLength(info, 7, fn, "dx", xCount(info, fn, g));
  pact::checkNoOverlap(info, fn, dx, "dx", {{dy.data, dy.length}, {filter.data, filter.length}, {mask, maskCount(g)}});
  const int64_t active = pact::masked::maskedConv2dBackpropInput(g, dy.data, filter.data, mask, dx.data,
                                                                 algoArg(info, 8, fn), outputZeroedArg(info, 9, fn));
  return Napi::Number::New(info.Env(), static_cast<double>(active));
}

// maskedConv2dBackpropFilter(xShape, filterShape, strides, pads, x, dy, mask, dfilter, algo)
Napi::Value maskedConv2dBackpropFilter(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "maskedConv2dBackpropFilter";
  const ConvGeometry g = geometryArgs(info, fn);
  const pact::FloatView x = pact::floatArgOfLength(info, 4, fn, "x", xCount(info, fn, g));
  const pact::FloatView dy = pact::floatArgOfLength(info, 5, fn, "dy", yCount(info, fn, g));
  const float* mask = maskArg(info, 6, fn, g);
  const pact::FloatView dfilter = pact::floatArgOfLength(info, 7, fn, "dfilter", filterCount(info, fn, g));
  pact::checkNoOverlap(info, fn, dfilter, "dfilter", {{x.data, x.length}, {dy.data, dy.length}, {mask, maskCount(g)}});
  pact::masked::maskedConv2dBackpropFilter(g, x.data, dy.data, mask, dfilter.data, algoArg(info, 8, fn));
  return info.Env().Undefined();
}

// dilateMask(maskShape [B,H,W], mask, radius, out): the number of ones in out
Napi::Value dilateMask(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "dilateMask";
  const auto s = shapeOfRank(info, 0, fn, "maskShape", 3, "[batch, height, width]");
  const size_t n = elementCount(info, fn, {s[0], s[1], s[2]});
  const float* mask = pact::floatArgOfLength(info, 1, fn, "mask", n).data;
  const int64_t radius = pact::intArg(info, 2, fn, "radius", 0, 1 << 20);
  const pact::FloatView out = pact::floatArgOfLength(info, 3, fn, "out", n);
  pact::checkDisjoint(info, fn, {pact::span("out", out)}, {pact::Span{"mask", mask, n * sizeof(float)}});
  const int64_t ones = pact::masked::dilateMask(mask, s[0], s[1], s[2], radius, out.data);
  return Napi::Number::New(info.Env(), static_cast<double>(ones));
}

// packActive(mask, bits): bits [ceil(mask.length / 32)] <- mask > 0 packed (bit i % 32 of bits[i / 32]); returns the
// active count.
Napi::Value packActive(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "packActive";
  const pact::FloatView mask = pact::floatArg(info, 0, fn, "mask");
  const pact::IntView bits = pact::int32Arg(info, 1, fn, "bits");
  const size_t words = (mask.length + 31) / 32;
  if (bits.length != words) {
    pact::throwArg(info.Env(), fn,
                   "bits must have " + std::to_string(words) + " elements (one per 32 mask values), got " +
                       std::to_string(bits.length));
  }
  pact::checkDisjoint(info, fn, {pact::span("bits", bits)}, {pact::span("mask", mask)});
  const int64_t count = pact::masked::packActive(mask.data, static_cast<int64_t>(mask.length),
                                                 reinterpret_cast<uint32_t*>(bits.data));
  return Napi::Number::New(info.Env(), static_cast<double>(count));
}

// zeroActiveRows(bits, rowLength, data): data [rows, rowLength] set to 0 at the rows whose bit is set in bits
// (packActive's layout, [ceil(rows / 32)]).
Napi::Value zeroActiveRows(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "zeroActiveRows";
  const pact::IntView bits = pact::int32Arg(info, 0, fn, "bits");
  const int64_t rowLength = pact::intArg(info, 1, fn, "rowLength", 1, int64_t{1} << 32);
  const pact::FloatView data = pact::floatArg(info, 2, fn, "data");
  const auto rows = static_cast<int64_t>(data.length) / rowLength;
  if (static_cast<int64_t>(data.length) % rowLength != 0) {
    pact::throwArg(info.Env(), fn,
                   "data must hold whole rows of rowLength (" + std::to_string(rowLength) + ") values, got " +
                       std::to_string(data.length));
  }
  if (bits.length != static_cast<size_t>((rows + 31) / 32)) {
    pact::throwArg(info.Env(), fn,
                   "bits must have " + std::to_string((rows + 31) / 32) + " elements (one per 32 rows of data), got " +
                       std::to_string(bits.length));
  }
  pact::checkDisjoint(info, fn, {pact::span("data", data)}, {pact::span("bits", bits)});
  pact::masked::zeroActiveRows(reinterpret_cast<const uint32_t*>(bits.data), rows, rowLength, data.data);
  return info.Env().Undefined();
}

}  // namespace

PACT_EXPORT("dilateMask", dilateMask);
PACT_EXPORT("packActive", packActive);
PACT_EXPORT("zeroActiveRows", zeroActiveRows);
PACT_EXPORT("maskedConv2d", maskedConv2d);
PACT_EXPORT("maskedConv2dBackpropInput", maskedConv2dBackpropInput);
PACT_EXPORT("maskedConv2dBackpropFilter", maskedConv2dBackpropFilter);
