// Batched matrix product on oneDNN (present only in builds with PACT_HAVE_DNNL): tfjs' BatchMatMul and
// _FusedMatMul.
//
// Layout: a is [...batchA, M, K] (or [...batchA, K, M] with transposeA), b is [...batchB, K, N] (or
// [...batchB, N, K] with transposeB), row-major float32; out is [...batch, M, N] where batch is the broadcast of
// batchA and batchB (numpy rules, the shorter one padded with leading 1s); bias has N elements (added to every
// row). The transposes and the broadcast are expressed as strides of oneDNN memory descriptors: nothing is copied.
// Threading: oneDNN's OpenMP pool. Cost: 2*batch*M*N*K flops; primitives are cached by shape.
// Limits: at most 12 dimensions (oneDNN's limit); every dimension positive.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "cpu/dense_dnnl.h"

namespace pact {

struct MatMulShapes {
  std::vector<int64_t> a, b;  // as given
  bool transposeA = false, transposeB = false;
};

// "" and the output shape in *out when the shapes are compatible, else what is wrong.
std::string checkMatMulShapes(const MatMulShapes& s, std::vector<int64_t>* out);

#ifdef PACT_HAVE_DNNL
// out = activation(op(a) * op(b) + bias), bias may be null. The shapes must have passed checkMatMulShapes.
void batchMatMul(const MatMulShapes& s, const float* a, const float* b, const float* bias, const Epilogue& epilogue,
                 float* out);
#endif

}  // namespace pact
