// Elementwise float32 kernels.
//
// Binary ops: the two shapes are broadcast, then adjacent dims that broadcast the same way for both operands
// are merged, so every case becomes an odometer over outer dims around one contiguous inner loop whose operand
// strides are 0 or 1 (compile-time template arguments, so the inner loop vectorizes): same shape and scalar
// operands become a single flat loop, [N,H,W,C] op [C] a loop of rows of C, [3,1,5] op [1,4,1] rows of 5.
// Threading: parallelFor over output elements; each chunk finds its start in the odometer once.
// Cost: memory bound (8-12 bytes per element) for the AVX2-vectorized loops (add, sub, mul, div, squared
// difference, relu, relu6, step, clip, neg, abs, square, sqrt, rsqrt, reciprocal, AddN). Maximum, Minimum,
// LeakyRelu, Pow and the libm ops stay scalar (GCC does not if-convert their selects under -ftrapping-math, or
// calls libm per element); all are multithreaded, and none is on a ResNet training step's hot path.
//
// Semantics follow tfjs-backend-cpu, which computes in double and rounds to float: +, -, *, / and sqrt in float
// give the same result; SquaredDifference, Rsqrt, LeakyRelu and Pow compute in double for the same reason;
// exp, log, tanh, sigmoid, softplus use float libm (within an ulp or two of tfjs). NaN propagates as in
// Math.max/Math.min, and signed zeros follow them too.
#include "cpu/elementwise.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "cpu/threads.h"

namespace pact::elementwise {

namespace {

constexpr size_t kGrain = 32768;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

struct AddOp {
  static float apply(float a, float b) { return a + b; }
};
struct SubOp {
  static float apply(float a, float b) { return a - b; }
};
struct MulOp {
  static float apply(float a, float b) { return a * b; }
};
struct DivOp {
  static float apply(float a, float b) { return a / b; }
};
// Math.max: NaN when either is NaN (the unordered case falls to a + b), +0 over -0 (equal zeros add to +0
// unless both are -0).
struct MaximumOp {
  static float apply(float a, float b) { return a > b ? a : (a < b ? b : (a == b ? (a == 0 ? a + b : a) : a + b)); }
};
// Math.min: as Maximum, and -0 under +0 (-(-a + -b) is -0 unless both are +0).
struct MinimumOp {
  static float apply(float a, float b) {
    return a < b ? a : (a > b ? b : (a == b ? (a == 0 ? -((-a) + (-b)) : a) : a + b));
  }
};
struct SquaredDifferenceOp {
  static float apply(float a, float b) {
    const double d = static_cast<double>(a) - static_cast<double>(b);
    return static_cast<float>(d * d);
  }
};
// C's pow(1, NaN) and pow(-1, ±inf) are 1; JS's Math.pow gives NaN for both.
struct PowOp {
  static float apply(float a, float b) {
    if (std::isnan(b) || (std::isinf(b) && std::fabs(a) == 1.0f)) return kNaN;
    return static_cast<float>(std::pow(static_cast<double>(a), static_cast<double>(b)));
  }
};

struct Plan {
  int rank = 0;
  int64_t dims[kMaxRank] = {};
  int64_t sa[kMaxRank] = {};
  int64_t sb[kMaxRank] = {};
};

// Element strides of `shape` right-aligned into `rank` dims, 0 where it has size 1 (broadcast).
void broadcastStrides(const std::vector<int64_t>& shape, size_t rank, int64_t* strides) {
  int64_t stride = 1;
  for (size_t i = rank; i-- > 0;) {
    const size_t lead = rank - shape.size();
    const int64_t d = i >= lead ? shape[i - lead] : 1;
    strides[i] = d == 1 ? 0 : stride;
    stride *= d;
  }
}

// Drops size-1 output dims and merges a dim into the previous one when both operands walk them as one
// (contiguously, or both broadcast).
Plan collapse(const std::vector<int64_t>& outShape, const std::vector<int64_t>& aShape,
              const std::vector<int64_t>& bShape) {
  const size_t rank = outShape.size();
  int64_t sa[kMaxRank];
  int64_t sb[kMaxRank];
  broadcastStrides(aShape, rank, sa);
  broadcastStrides(bShape, rank, sb);
  Plan p;
  for (size_t i = 0; i < rank; ++i) {
    const int64_t d = outShape[i];
    if (d == 1) continue;
    const int last = p.rank - 1;
    if (last >= 0 && p.sa[last] == sa[i] * d && p.sb[last] == sb[i] * d) {
      p.dims[last] *= d;
      p.sa[last] = sa[i];
      p.sb[last] = sb[i];
    } else {
      p.dims[p.rank] = d;
      p.sa[p.rank] = sa[i];
      p.sb[p.rank] = sb[i];
      ++p.rank;
    }
  }
  if (p.rank == 0) {
    p.rank = 1;
    p.dims[0] = 1;
  }
  return p;
}

// One contiguous run of the innermost dim; SA/SB are the operands' strides there (0 or 1).
template <typename Op, int SA, int SB>
inline void innerRun(const float* __restrict a, const float* __restrict b, float* __restrict out, int64_t len) {
  for (int64_t k = 0; k < len; ++k) out[k] = Op::apply(a[k * SA], b[k * SB]);
}

template <typename Op, int SA, int SB>
void runChunk(const Plan& p, const float* a, const float* b, float* out, int64_t begin, int64_t end) {
  const int last = p.rank - 1;
  const int64_t inner = p.dims[last];
  int64_t row = begin / inner;
  int64_t col = begin % inner;
  int64_t idx[kMaxRank] = {};
  int64_t offA = 0;
  int64_t offB = 0;
  for (int d = last - 1; d >= 0; --d) {
    idx[d] = row % p.dims[d];
    row /= p.dims[d];
    offA += idx[d] * p.sa[d];
    offB += idx[d] * p.sb[d];
  }
  for (int64_t i = begin; i < end;) {
    const int64_t len = std::min(inner - col, end - i);
    innerRun<Op, SA, SB>(a + offA + col * SA, b + offB + col * SB, out + i, len);
    i += len;
    col = 0;
    for (int d = last - 1; d >= 0; --d) {
      if (++idx[d] < p.dims[d]) {
        offA += p.sa[d];
        offB += p.sb[d];
        break;
      }
      offA -= (p.dims[d] - 1) * p.sa[d];
      offB -= (p.dims[d] - 1) * p.sb[d];
      idx[d] = 0;
    }
  }
}

template <typename Op>
void runBinary(const Plan& p, const float* a, const float* b, float* out, int64_t n) {
  const int innerA = static_cast<int>(p.sa[p.rank - 1]);
  const int innerB = static_cast<int>(p.sb[p.rank - 1]);
  parallelFor(static_cast<size_t>(n), kGrain, [&](size_t begin, size_t end) {
    const auto b0 = static_cast<int64_t>(begin);
    const auto e0 = static_cast<int64_t>(end);
    if (innerA == 1 && innerB == 1) {
      runChunk<Op, 1, 1>(p, a, b, out, b0, e0);
    } else if (innerA == 1) {
      runChunk<Op, 1, 0>(p, a, b, out, b0, e0);
    } else if (innerB == 1) {
      runChunk<Op, 0, 1>(p, a, b, out, b0, e0);
    } else {
      runChunk<Op, 0, 0>(p, a, b, out, b0, e0);
    }
  });
}

struct ReluOp {
  static float apply(float x, float, float) { return x <= 0.0f ? 0.0f : x; }
};
struct Relu6Op {
  static float apply(float x, float, float) {
    const float r = x <= 0.0f ? 0.0f : x;
    return r >= 6.0f ? 6.0f : r;
  }
};
struct NegOp {
  static float apply(float x, float, float) { return -x; }
};
struct SquareOp {
  static float apply(float x, float, float) { return x * x; }
};
struct SqrtOp {
  static float apply(float x, float, float) { return std::sqrt(x); }
};
struct RsqrtOp {
  static float apply(float x, float, float) { return static_cast<float>(1.0 / std::sqrt(static_cast<double>(x))); }
};
struct ExpOp {
  static float apply(float x, float, float) { return std::exp(x); }
};
struct LogOp {
  static float apply(float x, float, float) { return std::log(x); }
};
struct SigmoidOp {
  static float apply(float x, float, float) { return 1.0f / (1.0f + std::exp(-x)); }
};
struct TanhOp {
  static float apply(float x, float, float) { return std::tanh(x); }
};
struct AbsOp {
  static float apply(float x, float, float) { return std::fabs(x); }
};
struct ReciprocalOp {
  static float apply(float x, float, float) { return 1.0f / x; }
};
struct StepOp {
  static float apply(float x, float alpha, float) { return x > 0.0f ? 1.0f : (x != x ? x : alpha); }
};
struct EluOp {
  static float apply(float x, float, float) { return x >= 0.0f ? x : std::expm1(x); }
};
struct ClipByValueOp {
  static float apply(float x, float lo, float hi) { return x > hi ? hi : (x < lo ? lo : x); }
};
// tfjs' thresholds: log(float epsilon) + 2, beyond which softplus(x) is x or exp(x) within float precision.
struct SoftplusOp {
  static float apply(float x, float, float) {
    constexpr float kThreshold = -13.942385152878742f;
    return x < kThreshold ? std::exp(x) : (x > -kThreshold ? x : std::log1p(std::exp(x)));
  }
};

template <typename Op>
void runUnary(const float* x, float* out, size_t n, float p0, float p1) {
  parallelFor(n, kGrain, [&](size_t begin, size_t end) {
    const float* __restrict src = x;
    float* __restrict dst = out;
    for (size_t i = begin; i < end; ++i) dst[i] = Op::apply(src[i], p0, p1);
  });
}

// alpha * x in double as tfjs does (alpha is a JS number, not a float).
void runLeakyRelu(const float* x, float* out, size_t n, double alpha) {
  parallelFor(n, kGrain, [&](size_t begin, size_t end) {
    const float* __restrict src = x;
    float* __restrict dst = out;
    for (size_t i = begin; i < end; ++i) {
      const float v = src[i];
      dst[i] = v < 0.0f ? static_cast<float>(alpha * static_cast<double>(v)) : v;
    }
  });
}

}  // namespace

bool parseBinaryOp(std::string_view name, BinaryOp* op) {
  static constexpr std::pair<std::string_view, BinaryOp> kNames[] = {
      {"add", BinaryOp::Add},         {"sub", BinaryOp::Sub},
      {"mul", BinaryOp::Mul},         {"div", BinaryOp::Div},
      {"maximum", BinaryOp::Maximum}, {"minimum", BinaryOp::Minimum},
      {"squaredDifference", BinaryOp::SquaredDifference}, {"pow", BinaryOp::Pow},
  };
  for (const auto& [n, o] : kNames) {
    if (n == name) {
      *op = o;
      return true;
    }
  }
  return false;
}

bool parseUnaryOp(std::string_view name, UnaryOp* op) {
  static constexpr std::pair<std::string_view, UnaryOp> kNames[] = {
      {"relu", UnaryOp::Relu},       {"relu6", UnaryOp::Relu6},
      {"neg", UnaryOp::Neg},         {"square", UnaryOp::Square},
      {"sqrt", UnaryOp::Sqrt},       {"rsqrt", UnaryOp::Rsqrt},
      {"exp", UnaryOp::Exp},         {"log", UnaryOp::Log},
      {"sigmoid", UnaryOp::Sigmoid}, {"tanh", UnaryOp::Tanh},
      {"abs", UnaryOp::Abs},         {"reciprocal", UnaryOp::Reciprocal},
      {"step", UnaryOp::Step},       {"leakyRelu", UnaryOp::LeakyRelu},
      {"elu", UnaryOp::Elu},         {"clipByValue", UnaryOp::ClipByValue},
      {"softplus", UnaryOp::Softplus},
  };
  for (const auto& [n, o] : kNames) {
    if (n == name) {
      *op = o;
      return true;
    }
  }
  return false;
}

bool broadcastShape(const std::vector<int64_t>& a, const std::vector<int64_t>& b, std::vector<int64_t>* out) {
  const size_t rank = std::max(a.size(), b.size());
  out->assign(rank, 1);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t da = i < a.size() ? a[a.size() - 1 - i] : 1;
    const int64_t db = i < b.size() ? b[b.size() - 1 - i] : 1;
    if (da != db && da != 1 && db != 1) return false;
    (*out)[rank - 1 - i] = da == 1 ? db : da;
  }
  return true;
}

void binary(BinaryOp op, const float* a, const std::vector<int64_t>& aShape, const float* b,
            const std::vector<int64_t>& bShape, float* out) {
  std::vector<int64_t> outShape;
  if (!broadcastShape(aShape, bShape, &outShape)) return;
  int64_t n = 1;
  for (int64_t d : outShape) n *= d;
  if (n == 0) return;
  const Plan p = collapse(outShape, aShape, bShape);
  switch (op) {
    case BinaryOp::Add: return runBinary<AddOp>(p, a, b, out, n);
    case BinaryOp::Sub: return runBinary<SubOp>(p, a, b, out, n);
    case BinaryOp::Mul: return runBinary<MulOp>(p, a, b, out, n);
    case BinaryOp::Div: return runBinary<DivOp>(p, a, b, out, n);
    case BinaryOp::Maximum: return runBinary<MaximumOp>(p, a, b, out, n);
    case BinaryOp::Minimum: return runBinary<MinimumOp>(p, a, b, out, n);
    case BinaryOp::SquaredDifference: return runBinary<SquaredDifferenceOp>(p, a, b, out, n);
    case BinaryOp::Pow: return runBinary<PowOp>(p, a, b, out, n);
  }
}

void unary(UnaryOp op, const float* x, float* out, size_t n, double p0, double p1) {
  const auto f0 = static_cast<float>(p0);
  const auto f1 = static_cast<float>(p1);
  switch (op) {
    case UnaryOp::Relu: return runUnary<ReluOp>(x, out, n, f0, f1);
    case UnaryOp::Relu6: return runUnary<Relu6Op>(x, out, n, f0, f1);
    case UnaryOp::Neg: return runUnary<NegOp>(x, out, n, f0, f1);
    case UnaryOp::Square: return runUnary<SquareOp>(x, out, n, f0, f1);
    case UnaryOp::Sqrt: return runUnary<SqrtOp>(x, out, n, f0, f1);
    case UnaryOp::Rsqrt: return runUnary<RsqrtOp>(x, out, n, f0, f1);
    case UnaryOp::Exp: return runUnary<ExpOp>(x, out, n, f0, f1);
    case UnaryOp::Log: return runUnary<LogOp>(x, out, n, f0, f1);
    case UnaryOp::Sigmoid: return runUnary<SigmoidOp>(x, out, n, f0, f1);
    case UnaryOp::Tanh: return runUnary<TanhOp>(x, out, n, f0, f1);
    case UnaryOp::Abs: return runUnary<AbsOp>(x, out, n, f0, f1);
    case UnaryOp::Reciprocal: return runUnary<ReciprocalOp>(x, out, n, f0, f1);
    case UnaryOp::Step: return runUnary<StepOp>(x, out, n, f0, f1);
    case UnaryOp::LeakyRelu: return runLeakyRelu(x, out, n, p0);
    case UnaryOp::Elu: return runUnary<EluOp>(x, out, n, f0, f1);
    case UnaryOp::ClipByValue: return runUnary<ClipByValueOp>(x, out, n, f0, f1);
    case UnaryOp::Softplus: return runUnary<SoftplusOp>(x, out, n, f0, f1);
  }
}

void addN(const float* const* inputs, size_t count, float* out, size_t n) {
  // Blocks keep the running sum in L1 while each input streams through it.
  constexpr size_t kBlock = 4096;
  parallelFor(n, kGrain, [&](size_t begin, size_t end) {
    for (size_t b0 = begin; b0 < end; b0 += kBlock) {
      const size_t b1 = std::min(end, b0 + kBlock);
      float* __restrict dst = out;
      const float* __restrict first = inputs[0];
      for (size_t i = b0; i < b1; ++i) dst[i] = 0.0f + first[i];  // 0 + -0 is +0, as in tfjs' zero-filled sum
      for (size_t k = 1; k < count; ++k) {
        const float* __restrict src = inputs[k];
        for (size_t i = b0; i < b1; ++i) dst[i] += src[i];
      }
    }
  });
}

}  // namespace pact::elementwise
