#include "cpu/dense_matmul.h"

#include <algorithm>
#include <limits>
#include <unordered_map>

namespace pact {

namespace {

constexpr size_t kMaxRank = 12;

std::string shapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ',';
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

// The shape padded with leading 1s to `rank`.
std::vector<int64_t> padded(const std::vector<int64_t>& shape, size_t rank) {
  std::vector<int64_t> out(rank - shape.size(), 1);
  out.insert(out.end(), shape.begin(), shape.end());
  return out;
}

}  // namespace

std::string checkMatMulShapes(const MatMulShapes& s, std::vector<int64_t>* out) {
  for (const auto* shape : {&s.a, &s.b}) {
    if (shape->size() < 2 || shape->size() > kMaxRank) {
      return "operands must have rank 2 to " + std::to_string(kMaxRank) + ", got " + shapeString(*shape);
    }
    for (int64_t d : *shape) {
      if (d < 1 || d > std::numeric_limits<int32_t>::max()) {
        return "dimensions must be positive 32-bit integers, got " + shapeString(*shape);
      }
    }
  }
  const size_t ra = s.a.size(), rb = s.b.size();
  const int64_t m = s.transposeA ? s.a[ra - 1] : s.a[ra - 2];
  const int64_t ka = s.transposeA ? s.a[ra - 2] : s.a[ra - 1];
  const int64_t kb = s.transposeB ? s.b[rb - 1] : s.b[rb - 2];
  const int64_t n = s.transposeB ? s.b[rb - 2] : s.b[rb - 1];
  if (ka != kb) {
    return "inner dimensions differ: a " + shapeString(s.a) + (s.transposeA ? " (transposed)" : "") + ", b " +
           shapeString(s.b) + (s.transposeB ? " (transposed)" : "");
  }
  const size_t rank = std::max(ra, rb);
  const auto pa = padded(s.a, rank), pb = padded(s.b, rank);
  out->assign(rank, 0);
  for (size_t i = 0; i + 2 < rank; ++i) {
    if (pa[i] != pb[i] && pa[i] != 1 && pb[i] != 1) {
      return "batch dimensions do not broadcast: a " + shapeString(s.a) + ", b " + shapeString(s.b);
    }
    (*out)[i] = std::max(pa[i], pb[i]);
  }
  (*out)[rank - 2] = m;
  (*out)[rank - 1] = n;
  return "";
}

#ifdef PACT_HAVE_DNNL

namespace {

using dnnl::memory;
constexpr auto kF32 = memory::data_type::f32;

// A row-major operand of stored shape `stored` seen as the logical matrix stack `logical` (the last two dimensions
// swapped when transposed).
memory::desc operandDesc(const std::vector<int64_t>& stored, bool transposed) {
  const size_t rank = stored.size();
  memory::dims strides(rank);
  int64_t stride = 1;
  for (size_t i = rank; i-- > 0;) {
    strides[i] = stride;
    stride *= stored[i];
  }
  memory::dims dims(stored.begin(), stored.end());
  if (transposed) {
    std::swap(dims[rank - 1], dims[rank - 2]);
    std::swap(strides[rank - 1], strides[rank - 2]);
  }
  return memory::desc(dims, kF32, strides);
}

struct MatMulEntry {
  dnnl::matmul primitive;
  memory a, b, bias, out;
};

}  // namespace

void batchMatMul(const MatMulShapes& s, const float* a, const float* b, const float* bias, const Epilogue& epilogue,
                 float* out) {
  static dnnl_ctx::PrimitiveCache<MatMulEntry> cache;
  std::vector<int64_t> outShape;
  checkMatMulShapes(s, &outShape);
  const size_t rank = outShape.size();
  const auto pa = padded(s.a, rank), pb = padded(s.b, rank);

  dnnl_ctx::Key key{static_cast<int64_t>(rank), s.transposeA, s.transposeB, bias != nullptr};
  key.insert(key.end(), pa.begin(), pa.end());
  key.insert(key.end(), pb.begin(), pb.end());
  dnnl_ctx::appendEpilogue(key, epilogue);

  std::lock_guard<std::mutex> lock(dnnl_ctx::mutex());
  MatMulEntry& e = cache.get(key, [&] {
    const auto aMd = operandDesc(pa, s.transposeA), bMd = operandDesc(pb, s.transposeB);
    const auto outMd = operandDesc(outShape, false);
    std::vector<int64_t> biasShape(rank, 1);
    biasShape[rank - 1] = outShape[rank - 1];
    const auto biasMd = operandDesc(biasShape, false);
    const auto desc =
        bias != nullptr ? dnnl::matmul::desc(aMd, bMd, biasMd, outMd) : dnnl::matmul::desc(aMd, bMd, outMd);
    const dnnl::matmul::primitive_desc pd(desc, dnnl_ctx::epilogueAttr(epilogue), dnnl_ctx::engine());
    return MatMulEntry{dnnl::matmul(pd), dnnl_ctx::unboundMemory(aMd), dnnl_ctx::unboundMemory(bMd),
                       dnnl_ctx::unboundMemory(biasMd), dnnl_ctx::unboundMemory(outMd)};
  });
  dnnl_ctx::bind(e.a, a);
  dnnl_ctx::bind(e.b, b);
  dnnl_ctx::bind(e.out, out);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, e.a}, {DNNL_ARG_WEIGHTS, e.b}, {DNNL_ARG_DST, e.out}};
  if (bias != nullptr) {
    dnnl_ctx::bind(e.bias, bias);
    args.emplace(DNNL_ARG_BIAS, e.bias);
  }
  e.primitive.execute(dnnl_ctx::stream(), args);
  dnnl_ctx::stream().wait();
}

#endif  // PACT_HAVE_DNNL

}  // namespace pact
