#include "cpu/dense_conv.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <optional>
#include <unordered_map>
#include <vector>

#include "cpu/elementwise.h"
#include "cpu/masked_conv2d.h"
#include "cpu/narrow_conv.h"

namespace pact {

namespace {

int64_t effectiveFilterSize(int64_t filter, int64_t dilation) { return (filter - 1) * dilation + 1; }

std::string checkAxis(const char* axis, int64_t in, int64_t out, int64_t filter, int64_t stride, int64_t dilation,
                      int64_t padLow, int64_t padHigh) {
  const std::string a(axis);
  if (stride < 1) return a + " stride must be positive, got " + std::to_string(stride);
  if (dilation < 1) return a + " dilation must be positive, got " + std::to_string(dilation);
  const int64_t reach = effectiveFilterSize(filter, dilation);
  if (padLow >= reach || padHigh >= reach) {
    return a + " pads must be in [0, " + std::to_string(reach) + ") (the dilated filter size), got " +
           std::to_string(padLow) + " and " + std::to_string(padHigh);
  }
  const int64_t span = in + padLow + padHigh - reach;
  if (span < 0) return a + " padded input " + std::to_string(in + padLow + padHigh) + " is smaller than the filter";
  const int64_t floorOut = span / stride + 1;
  const int64_t ceilOut = (span + stride - 1) / stride + 1;
  if (out < floorOut || out > ceilOut) {
    return a + " output size must be " + std::to_string(floorOut) +
           (ceilOut != floorOut ? " or " + std::to_string(ceilOut) : std::string()) + ", got " + std::to_string(out);
  }
  return "";
}

}  // namespace

std::string checkConv2DGeometry(const Conv2DGeometry& g) {
  constexpr int64_t kMaxDim = std::numeric_limits<int32_t>::max();
  for (int64_t d : {g.batch, g.inHeight, g.inWidth, g.inChannels, g.outHeight, g.outWidth, g.outChannels,
                    g.filterHeight, g.filterWidth}) {
    if (d < 1 || d > kMaxDim) return "sizes must be positive 32-bit integers, got " + std::to_string(d);
  }
  for (int64_t p : {g.padTop, g.padLeft, g.padBottom, g.padRight}) {
    if (p < 0) return "pads must be non-negative, got " + std::to_string(p);
  }
  // Each tensor's element count (xSize, ySize, filterSize) must not overflow the kernels' int64 index arithmetic.
  constexpr int64_t kMaxElements = int64_t{1} << 48;
  const auto tooLarge = [&](std::initializer_list<int64_t> dims) {
    int64_t n = 1;
    for (int64_t d : dims) {
      if (__builtin_mul_overflow(n, d, &n) || n > kMaxElements) return true;
    }
    return false;
  };
  if (tooLarge({g.batch, g.inHeight, g.inWidth, g.inChannels}) ||
      tooLarge({g.batch, g.outHeight, g.outWidth, g.outChannels}) ||
      tooLarge({g.filterHeight, g.filterWidth, g.inChannels, g.outChannels})) {
    return "x, y and the filter must each have at most 2^48 elements";
  }
  std::string e = checkAxis("height", g.inHeight, g.outHeight, g.filterHeight, g.strideHeight, g.dilationHeight,
                            g.padTop, g.padBottom);
  if (e.empty()) {
    e = checkAxis("width", g.inWidth, g.outWidth, g.filterWidth, g.strideWidth, g.dilationWidth, g.padLeft,
                  g.padRight);
  }
  return e;
}

#ifdef PACT_HAVE_DNNL

namespace {

using dnnl::memory;
using Tag = memory::format_tag;
constexpr auto kF32 = memory::data_type::f32;

// oneDNN's geometry: dilation counts the gaps (tfjs' - 1), and the high-side pad is the one that makes the output
// size exact, (out - 1) * stride + reach - in - padLow: above the given pad under ceil rounding, below it when the
// last rows of padding are never reached, and negative (down to 1 - stride, which oneDNN allows) when input rows are
// never reached (tfjs' 'valid', or a 1x1 stride-2 shortcut on an even size).
// oneDNN 2.6's jit_1x1 backward-weights kernel computes wrong filter gradients with a negative pad on 2 threads
// (measured: 1x1, stride 2, 8x8x3 -> 4x4x5), so the filter gradient crops instead (cropUnreached): x becomes a dense
// copy of the reached rows and columns with pad 0 (a strided view as the primitive's input would select oneDNN's
// slow reference kernel). Forward and backprop-input keep the negative pads (checked on random shapes).
struct DnnlGeometry {
  memory::dims strides, dilates, padLow, padHigh;
  memory::desc x, y, filterAny, filterHwio, bias;
  std::optional<memory::desc> xView;  // when cropped: the reached part of the caller's x buffer
};

DnnlGeometry dnnlGeometry(const Conv2DGeometry& g, bool cropUnreached) {
  auto padHigh = [](int64_t in, int64_t out, int64_t filter, int64_t stride, int64_t dilation, int64_t padLow) {
    return (out - 1) * stride + effectiveFilterSize(filter, dilation) - in - padLow;
  };
  int64_t padBottom = padHigh(g.inHeight, g.outHeight, g.filterHeight, g.strideHeight, g.dilationHeight, g.padTop);
  int64_t padRight = padHigh(g.inWidth, g.outWidth, g.filterWidth, g.strideWidth, g.dilationWidth, g.padLeft);
  memory::dims xDims{g.batch, g.inChannels, g.inHeight, g.inWidth};
  std::optional<memory::desc> xView;
  if (cropUnreached && (padBottom < 0 || padRight < 0)) {
    xDims[2] += std::min<int64_t>(padBottom, 0);
    xDims[3] += std::min<int64_t>(padRight, 0);
    padBottom = std::max<int64_t>(padBottom, 0);
    padRight = std::max<int64_t>(padRight, 0);
    xView = memory::desc(xDims, kF32, {g.inHeight * g.inWidth * g.inChannels, 1, g.inWidth * g.inChannels,
                                       g.inChannels});
  }
  const memory::dims filterDims{g.outChannels, g.inChannels, g.filterHeight, g.filterWidth};
  return {
      {g.strideHeight, g.strideWidth},
      {g.dilationHeight - 1, g.dilationWidth - 1},
      {g.padTop, g.padLeft},
      {padBottom, padRight},
      memory::desc(xDims, kF32, Tag::nhwc),
      memory::desc({g.batch, g.outChannels, g.outHeight, g.outWidth}, kF32, Tag::nhwc),
      memory::desc(filterDims, kF32, Tag::any),
      memory::desc(filterDims, kF32, Tag::hwio),
      memory::desc({g.outChannels}, kF32, Tag::a),
      xView,
  };
}

// Everything a cached primitive depends on; `kind` tells forward, backprop-input and backprop-filter apart.
dnnl_ctx::Key geometryKey(int64_t kind, const DnnlGeometry& d, const Conv2DGeometry& g) {
  return {kind,          g.batch,         g.inHeight,     g.inWidth,     g.inChannels,   g.outHeight,
          g.outWidth,    g.outChannels,   g.filterHeight, g.filterWidth, g.strideHeight, g.strideWidth,
          d.dilates[0],  d.dilates[1],    d.padLow[0],    d.padLow[1],   d.padHigh[0],   d.padHigh[1]};
}

dnnl::convolution_forward::primitive_desc forwardPd(const DnnlGeometry& d, bool withBias,
                                                    const dnnl::primitive_attr& attr = {}) {
  using Conv = dnnl::convolution_forward;
  const auto prop = dnnl::prop_kind::forward_training;
  const auto alg = dnnl::algorithm::convolution_direct;
  const Conv::desc desc = withBias ? Conv::desc(prop, alg, d.x, d.filterAny, d.bias, d.y, d.strides, d.dilates,
                                                d.padLow, d.padHigh)
                                   : Conv::desc(prop, alg, d.x, d.filterAny, d.y, d.strides, d.dilates, d.padLow,
                                                d.padHigh);
  return Conv::primitive_desc(desc, attr, dnnl_ctx::engine());
}

// The filter in the layout a primitive wants: the user's HWIO buffer itself (internal is then the same memory
// object), or a buffer of ours plus the reorder between them.
struct FilterBuffer {
  memory user;
  memory internal;
  std::optional<dnnl::reorder> reorder;

  FilterBuffer(const memory::desc& userMd, const memory::desc& internalMd, bool toInternal)
      : user(dnnl_ctx::unboundMemory(userMd)), internal(user) {
    if (internalMd != userMd) {
      internal = memory(internalMd, dnnl_ctx::engine());
      reorder = toInternal ? dnnl::reorder(user, internal) : dnnl::reorder(internal, user);
    }
  }

  void userToInternal() {
    if (reorder) reorder->execute(dnnl_ctx::stream(), user, internal);
  }
  void internalToUser() {
    if (reorder) reorder->execute(dnnl_ctx::stream(), internal, user);
  }
};

struct ForwardEntry {
  dnnl::convolution_forward primitive;
  memory x, bias, y;
  FilterBuffer filter;
};

struct BackpropInputEntry {
  dnnl::convolution_backward_data primitive;
  memory dy, dx;
  FilterBuffer filter;
};

struct BackpropFilterEntry {
  dnnl::convolution_backward_weights primitive;
  memory x, dy;
  FilterBuffer dfilter;
  memory xView;  // cropped geometry: the caller's buffer, copied by crop into x
  std::optional<dnnl::reorder> crop;
};

}  // namespace

void conv2dForwardOnDnnl(const Conv2DGeometry& g, const float* x, const float* filter, const float* bias,
                         const Epilogue& epilogue, float* y) {
  if (useNarrowConv(g) && bias == nullptr && epilogue.activation == Activation::kLinear) {
    return narrowConv2dForward(g, x, filter, y);
  }
  static dnnl_ctx::PrimitiveCache<ForwardEntry> cache;
  const DnnlGeometry d = dnnlGeometry(g, false);
  dnnl_ctx::Key key = geometryKey(0, d, g);
  key.push_back(bias != nullptr);
  dnnl_ctx::appendEpilogue(key, epilogue);

  std::lock_guard<std::mutex> lock(dnnl_ctx::mutex());
  ForwardEntry& e = cache.get(key, [&] {
    const auto pd = forwardPd(d, bias != nullptr, dnnl_ctx::epilogueAttr(epilogue));
    return ForwardEntry{dnnl::convolution_forward(pd), dnnl_ctx::unboundMemory(d.x), dnnl_ctx::unboundMemory(d.bias),
                        dnnl_ctx::unboundMemory(d.y), FilterBuffer(d.filterHwio, pd.weights_desc(), true)};
  });
  dnnl_ctx::bind(e.x, x);
  dnnl_ctx::bind(e.filter.user, filter);
  dnnl_ctx::bind(e.y, y);
  auto& stream = dnnl_ctx::stream();
  e.filter.userToInternal();
  std::unordered_map<int, memory> args{
      {DNNL_ARG_SRC, e.x}, {DNNL_ARG_WEIGHTS, e.filter.internal}, {DNNL_ARG_DST, e.y}};
  if (bias != nullptr) {
    dnnl_ctx::bind(e.bias, bias);
    args.emplace(DNNL_ARG_BIAS, e.bias);
  }
  e.primitive.execute(stream, args);
  stream.wait();
}

void conv2dBackpropInputOnDnnl(const Conv2DGeometry& g, const float* dy, const float* filter, float* dx) {
  static dnnl_ctx::PrimitiveCache<BackpropInputEntry> cache;
  const DnnlGeometry d = dnnlGeometry(g, false);

  std::lock_guard<std::mutex> lock(dnnl_ctx::mutex());
  BackpropInputEntry& e = cache.get(geometryKey(1, d, g), [&] {
    using Bwd = dnnl::convolution_backward_data;
    const Bwd::desc desc(dnnl::algorithm::convolution_direct, d.x, d.filterAny, d.y, d.strides, d.dilates, d.padLow,
                         d.padHigh);
    const Bwd::primitive_desc pd(desc, dnnl_ctx::engine(), forwardPd(d, false));
    return BackpropInputEntry{Bwd(pd), dnnl_ctx::unboundMemory(d.y), dnnl_ctx::unboundMemory(d.x),
                              FilterBuffer(d.filterHwio, pd.weights_desc(), true)};
  });
  dnnl_ctx::bind(e.dy, dy);
  dnnl_ctx::bind(e.filter.user, filter);
  dnnl_ctx::bind(e.dx, dx);
  auto& stream = dnnl_ctx::stream();
  e.filter.userToInternal();
  e.primitive.execute(stream, {{DNNL_ARG_DIFF_DST, e.dy}, {DNNL_ARG_WEIGHTS, e.filter.internal},
                               {DNNL_ARG_DIFF_SRC, e.dx}});
  stream.wait();
}

void conv2dBackpropFilterOnDnnl(const Conv2DGeometry& g, const float* x, const float* dy, float* dfilter) {
  if (useNarrowConv(g)) return narrowConv2dBackpropFilter(g, x, dy, dfilter);
  static dnnl_ctx::PrimitiveCache<BackpropFilterEntry> cache;
  const DnnlGeometry d = dnnlGeometry(g, true);

  std::lock_guard<std::mutex> lock(dnnl_ctx::mutex());
  BackpropFilterEntry& e = cache.get(geometryKey(2, d, g), [&] {
    using Bwd = dnnl::convolution_backward_weights;
    const Bwd::desc desc(dnnl::algorithm::convolution_direct, d.x, d.filterAny, d.y, d.strides, d.dilates, d.padLow,
                         d.padHigh);
    const Bwd::primitive_desc pd(desc, dnnl_ctx::engine(), forwardPd(d, false));
    BackpropFilterEntry entry{Bwd(pd), dnnl_ctx::unboundMemory(d.x), dnnl_ctx::unboundMemory(d.y),
                              FilterBuffer(d.filterHwio, pd.diff_weights_desc(), false), {}, std::nullopt};
    if (d.xView) {
      entry.x = memory(d.x, dnnl_ctx::engine());
      entry.xView = dnnl_ctx::unboundMemory(*d.xView);
      entry.crop = dnnl::reorder(entry.xView, entry.x);
    }
    return entry;
  });
  auto& stream = dnnl_ctx::stream();
  if (e.crop) {
    dnnl_ctx::bind(e.xView, x);
    e.crop->execute(stream, e.xView, e.x);
  } else {
    dnnl_ctx::bind(e.x, x);
  }
  dnnl_ctx::bind(e.dy, dy);
  dnnl_ctx::bind(e.dfilter.user, dfilter);
  e.primitive.execute(stream, {{DNNL_ARG_SRC, e.x}, {DNNL_ARG_DIFF_DST, e.dy},
                               {DNNL_ARG_DIFF_WEIGHTS, e.dfilter.internal}});
  e.dfilter.internalToUser();
  stream.wait();
}

#endif  // PACT_HAVE_DNNL

namespace {

masked::ConvGeometry maskedGeometry(const Conv2DGeometry& g) {
  return masked::makeConvGeometry(g.batch, g.inHeight, g.inWidth, g.inChannels, g.filterHeight, g.filterWidth,
                                  g.outChannels, g.strideHeight, g.strideWidth, g.padTop, g.padBottom, g.padLeft,
                                  g.padRight);
}

// An all-active mask of the geometry's output positions: this thread's, grown as needed (the bindings run on the JS
// thread).
const float* allActive(const masked::ConvGeometry& m) {
  thread_local std::vector<float> ones;
  const auto n = static_cast<size_t>(m.batch * m.outH * m.outW);
  if (ones.size() < n) ones.assign(n, 1.0f);
  return ones.data();
}

// The masked kernels' geometry of g where its three passes take the tiles (see denseConvByTiles), else nothing.
std::optional<masked::ConvGeometry> tilesGeometry(const Conv2DGeometry& g) {
  const char* setting = std::getenv("PACT_CONV_TILES");
  if (setting != nullptr && std::strcmp(setting, "0") == 0) return std::nullopt;
  if (g.dilationHeight != 1 || g.dilationWidth != 1) return std::nullopt;
  const masked::ConvGeometry m = maskedGeometry(g);
  // The masked geometry derives its output size; tfjs' ceil rounding may make another.
  if (m.outH != g.outHeight || m.outW != g.outWidth || !masked::denseByTiles(m)) return std::nullopt;
  return m;
}

}  // namespace

bool denseConvByTiles(const Conv2DGeometry& g) { return tilesGeometry(g).has_value(); }

#ifdef PACT_HAVE_DNNL

namespace {

// The forward's bias and activation, in place on the tiles' output (oneDNN fuses them as post-ops): the elementwise
// kernels' add and activations, the same float operations.
void applyEpilogue(const Conv2DGeometry& g, const float* bias, const Epilogue& e, float* y) {
  using elementwise::UnaryOp;
  const int64_t rows = g.batch * g.outHeight * g.outWidth, n = rows * g.outChannels;
  if (bias != nullptr) {
    elementwise::binary(elementwise::BinaryOp::Add, y, {rows, g.outChannels}, bias, {g.outChannels}, y);
  }
  const auto unary = [&](UnaryOp op, double p0 = 0, double p1 = 0) {
    elementwise::unary(op, y, y, static_cast<size_t>(n), p0, p1);
  };
  switch (e.activation) {
    case Activation::kLinear: return;
    case Activation::kRelu: return unary(UnaryOp::Relu);
    case Activation::kRelu6: return unary(UnaryOp::Relu6);
    case Activation::kLeakyRelu: return unary(UnaryOp::LeakyRelu, e.alpha);
    case Activation::kElu: return unary(UnaryOp::Elu);
    case Activation::kSigmoid: return unary(UnaryOp::Sigmoid);
  }
}

}  // namespace

void conv2dForward(const Conv2DGeometry& g, const float* x, const float* filter, const float* bias,
                   const Epilogue& epilogue, float* y) {
  if (const auto m = tilesGeometry(g)) {
    masked::maskedConv2dForward(*m, x, filter, allActive(*m), y);
    applyEpilogue(g, bias, epilogue, y);
    return;
  }
  conv2dForwardOnDnnl(g, x, filter, bias, epilogue, y);
}

void conv2dBackpropInput(const Conv2DGeometry& g, const float* dy, const float* filter, float* dx) {
  if (const auto m = tilesGeometry(g)) {
    masked::maskedConv2dBackpropInput(*m, dy, filter, allActive(*m), dx);
    return;
  }
  conv2dBackpropInputOnDnnl(g, dy, filter, dx);
}

void conv2dBackpropFilter(const Conv2DGeometry& g, const float* x, const float* dy, float* dfilter) {
  if (const auto m = tilesGeometry(g)) {
    masked::maskedConv2dBackpropFilter(*m, x, dy, allActive(*m), dfilter);
    return;
  }
  conv2dBackpropFilterOnDnnl(g, x, dy, dfilter);
}

#endif  // PACT_HAVE_DNNL

}  // namespace pact
