// Elementwise float32 kernels of pact-cpu: binary ops with numpy broadcasting, unary ops, AddN.
// Plain functions on raw pointers and shapes (no N-API types); the binding checks lengths first.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace pact::elementwise {

// The largest rank a binary op accepts (tfjs ops go up to rank 6; broadcasting collapses dims first anyway).
inline constexpr size_t kMaxRank = 8;

enum class BinaryOp { Add, Sub, Mul, Div, Maximum, Minimum, SquaredDifference, Pow };

enum class UnaryOp {
  Relu,
  Relu6,
  Neg,
  Square,
  Sqrt,
  Rsqrt,
  Exp,
  Log,
  Sigmoid,
  Tanh,
  Abs,
  Reciprocal,
  Step,         // p0 = alpha (the value for x <= 0)
  LeakyRelu,    // p0 = alpha
  Elu,
  ClipByValue,  // p0 = min, p1 = max
  Softplus,
};

// Parse the op names the binding receives ("add", "relu", ...); false when unknown.
bool parseBinaryOp(std::string_view name, BinaryOp* op);
bool parseUnaryOp(std::string_view name, UnaryOp* op);

// numpy/tfjs broadcast shape of a and b; false when they are incompatible.
bool broadcastShape(const std::vector<int64_t>& a, const std::vector<int64_t>& b, std::vector<int64_t>* out);

// out = op(a, b) with broadcasting. `a` holds size(aShape) floats, `b` size(bShape), `out` the broadcast size
// (ranks at most kMaxRank; the shapes must be compatible: the binding checks both).
void binary(BinaryOp op, const float* a, const std::vector<int64_t>& aShape, const float* b,
            const std::vector<int64_t>& bShape, float* out);

// out[i] = op(x[i]) for n elements; p0/p1 are the op's attributes (alpha, clip bounds), ignored otherwise.
void unary(UnaryOp op, const float* x, float* out, size_t n, double p0, double p1);

// out = inputs[0] + inputs[1] + ... (in that order, rounding to float after each add as tfjs does).
void addN(const float* const* inputs, size_t count, float* out, size_t n);

}  // namespace pact::elementwise
