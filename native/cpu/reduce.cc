// Reductions over an axis set of a contiguous float32 tensor.
//
// The shape is first collapsed: size-1 dims dropped, adjacent dims with the same kept/reduced status merged.
// Then:
//   [R] or [K, R]  row reduction (trailing axes): parallel over rows, or over chunks of the one row with
//                  per-thread partials; 8 independent lanes per row so the loop vectorizes.
//   [K1, R, K2]    column reduction (leading or middle axes kept last, e.g. per-channel sums over N,H,W in
//                  NHWC, K1 = 1): parallel over K1 when it has enough work, else over chunks of R, each chunk
//                  accumulating a K2 vector that is merged in chunk order.
//   anything else  one output at a time, an odometer over the reduced dims (strided, slower, still parallel).
// Sum, Mean and Prod accumulate in double (tfjs-backend-cpu does too); Max and Min in float, NaN winning as in
// tfjs. Mean is the double sum divided by the count (tfjs divides each element first: within float rounding).
// Cost: one pass over x, memory bound for the first two layouts.
#include "cpu/reduce.h"

#include <algorithm>
#include <cmath>

#include "cpu/threads.h"

namespace pact::reduce {

namespace {

constexpr size_t kGrain = 32768;
constexpr int kLanes = 8;

struct SumAcc {
  using Acc = double;
  static Acc init(float) { return 0.0; }
  static Acc add(Acc a, float v) { return a + static_cast<double>(v); }
  static Acc merge(Acc a, Acc b) { return a + b; }
  static float finish(Acc a, double) { return static_cast<float>(a); }
};
struct MeanAcc : SumAcc {
  static float finish(Acc a, double count) { return static_cast<float>(a / count); }
};
struct ProdAcc {
  using Acc = double;
  static Acc init(float) { return 1.0; }
  static Acc add(Acc a, float v) { return a * static_cast<double>(v); }
  static Acc merge(Acc a, Acc b) { return a * b; }
  static float finish(Acc a, double) { return static_cast<float>(a); }
};
// Starts from an element of the input (max is idempotent); a NaN, once taken, is never replaced.
struct MaxAcc {
  using Acc = float;
  static Acc init(float first) { return first; }
  static Acc add(Acc a, float v) { return (v > a || v != v) ? v : a; }
  static Acc merge(Acc a, Acc b) { return add(a, b); }
  static float finish(Acc a, double) { return a; }
};
struct MinAcc {
  using Acc = float;
  static Acc init(float first) { return first; }
  static Acc add(Acc a, float v) { return (v < a || v != v) ? v : a; }
  static Acc merge(Acc a, Acc b) { return add(a, b); }
  static float finish(Acc a, double) { return a; }
};

// The unfinished accumulation of x[0..n), n >= 1.
template <typename P>
typename P::Acc rowPartial(const float* __restrict x, int64_t n) {
  using Acc = typename P::Acc;
  Acc lanes[kLanes];
  for (int j = 0; j < kLanes; ++j) lanes[j] = P::init(x[0]);
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) lanes[j] = P::add(lanes[j], x[i + j]);
  }
  Acc acc = lanes[0];
  for (int j = 1; j < kLanes; ++j) acc = P::merge(acc, lanes[j]);
  for (; i < n; ++i) acc = P::add(acc, x[i]);
  return acc;
}

template <typename P>
void rows(const float* x, int64_t k, int64_t r, float* out) {
  using Acc = typename P::Acc;
  const auto count = static_cast<double>(r);
  if (k == 1) {
    const int chunks = std::max(1, std::min(numThreads(), static_cast<int>(r / static_cast<int64_t>(kGrain))));
    std::vector<Acc> partial(chunks);
    parallelFor(static_cast<size_t>(chunks), 1, [&](size_t begin, size_t end) {
      for (size_t c = begin; c < end; ++c) {
        const int64_t b = r * static_cast<int64_t>(c) / chunks;
        const int64_t e = r * static_cast<int64_t>(c + 1) / chunks;
        partial[c] = rowPartial<P>(x + b, e - b);
      }
    });
    Acc acc = partial[0];
    for (int c = 1; c < chunks; ++c) acc = P::merge(acc, partial[c]);
    out[0] = P::finish(acc, count);
    return;
  }
  const size_t grain = std::max<size_t>(1, kGrain / static_cast<size_t>(r));
  parallelFor(static_cast<size_t>(k), grain, [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) out[i] = P::finish(rowPartial<P>(x + i * r, r), count);
  });
}

// acc[0..k2) op= x[r0..r1) rows of k2; acc starts from row r0 itself.
template <typename P>
void columnPartial(const float* x, int64_t r0, int64_t r1, int64_t k2, typename P::Acc* __restrict acc) {
  const float* __restrict first = x + r0 * k2;
  for (int64_t j = 0; j < k2; ++j) acc[j] = P::add(P::init(first[j]), first[j]);
  for (int64_t i = r0 + 1; i < r1; ++i) {
    const float* __restrict row = x + i * k2;
    for (int64_t j = 0; j < k2; ++j) acc[j] = P::add(acc[j], row[j]);
  }
}

template <typename P>
void columns(const float* x, int64_t k1, int64_t r, int64_t k2, float* out) {
  using Acc = typename P::Acc;
  const auto count = static_cast<double>(r);
  const int threads = numThreads();
  const int64_t slice = r * k2;
  if (k1 >= threads && k1 * slice >= static_cast<int64_t>(2 * kGrain)) {
    parallelFor(static_cast<size_t>(k1), 1, [&](size_t begin, size_t end) {
      std::vector<Acc> acc(k2);
      for (size_t i = begin; i < end; ++i) {
        columnPartial<P>(x + i * slice, 0, r, k2, acc.data());
        for (int64_t j = 0; j < k2; ++j) out[i * k2 + j] = P::finish(acc[j], count);
      }
    });
    return;
  }
  const int chunks = std::max(1, std::min<int>({threads, static_cast<int>(r),
                                                static_cast<int>(slice / static_cast<int64_t>(kGrain))}));
  std::vector<Acc> partial(static_cast<size_t>(chunks) * k2);
  for (int64_t i = 0; i < k1; ++i) {
    const float* xs = x + i * slice;
    parallelFor(static_cast<size_t>(chunks), 1, [&](size_t begin, size_t end) {
      for (size_t c = begin; c < end; ++c) {
        columnPartial<P>(xs, r * static_cast<int64_t>(c) / chunks, r * static_cast<int64_t>(c + 1) / chunks, k2,
                         partial.data() + c * k2);
      }
    });
    for (int64_t j = 0; j < k2; ++j) {
      Acc acc = partial[j];
      for (int c = 1; c < chunks; ++c) acc = P::merge(acc, partial[c * k2 + j]);
      out[i * k2 + j] = P::finish(acc, count);
    }
  }
}

struct Collapsed {
  std::vector<int64_t> dims;
  std::vector<bool> reduced;
};

Collapsed collapse(const std::vector<int64_t>& shape, const std::vector<bool>& reduced) {
  Collapsed c;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 1) continue;
    if (!c.dims.empty() && c.reduced.back() == reduced[i]) {
      c.dims.back() *= shape[i];
    } else {
      c.dims.push_back(shape[i]);
      c.reduced.push_back(reduced[i]);
    }
  }
  return c;
}

// Any pattern: for each output, an odometer over the reduced dims with the last reduced dim as the inner loop.
template <typename P>
void general(const float* x, const Collapsed& c, float* out) {
  const size_t rank = c.dims.size();
  std::vector<int64_t> strides(rank);
  int64_t stride = 1;
  for (size_t i = rank; i-- > 0;) {
    strides[i] = stride;
    stride *= c.dims[i];
  }
  std::vector<size_t> keptDims;
  std::vector<size_t> redDims;
  int64_t outSize = 1;
  int64_t redSize = 1;
  for (size_t i = 0; i < rank; ++i) {
    (c.reduced[i] ? redDims : keptDims).push_back(i);
    (c.reduced[i] ? redSize : outSize) *= c.dims[i];
  }
  const size_t innerDim = redDims.back();
  const int64_t innerLen = c.dims[innerDim];
  const int64_t innerStride = strides[innerDim];
  const auto count = static_cast<double>(redSize);
  const size_t grain = std::max<size_t>(1, kGrain / static_cast<size_t>(redSize));
  parallelFor(static_cast<size_t>(outSize), grain, [&](size_t begin, size_t end) {
    std::vector<int64_t> idx(rank);
    for (size_t o = begin; o < end; ++o) {
      int64_t rem = static_cast<int64_t>(o);
      int64_t base = 0;
      for (size_t k = keptDims.size(); k-- > 0;) {
        const size_t d = keptDims[k];
        base += (rem % c.dims[d]) * strides[d];
        rem /= c.dims[d];
      }
      typename P::Acc acc = P::init(x[base]);
      for (size_t d : redDims) idx[d] = 0;
      for (;;) {
        int64_t off = base;
        for (size_t d : redDims) off += idx[d] * strides[d];
        for (int64_t j = 0; j < innerLen; ++j) acc = P::add(acc, x[off + j * innerStride]);
        size_t k = redDims.size() - 1;
        while (k-- > 0) {
          const size_t d = redDims[k];
          if (++idx[d] < c.dims[d]) break;
          idx[d] = 0;
        }
        if (k == static_cast<size_t>(-1)) break;
      }
      out[o] = P::finish(acc, count);
    }
  });
}

template <typename P>
void run(const float* x, const std::vector<int64_t>& shape, const std::vector<bool>& reduced, float* out) {
  int64_t outSize = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (!reduced[i]) outSize *= shape[i];
  }
  if (outSize == 0) return;
  const Collapsed c = collapse(shape, reduced);
  const size_t rank = c.dims.size();
  if (rank == 0 || (rank == 1 && !c.reduced[0])) {  // nothing left to reduce: every output is one element
    parallelFor(static_cast<size_t>(outSize), kGrain, [&](size_t begin, size_t end) {
      for (size_t i = begin; i < end; ++i) out[i] = P::finish(P::add(P::init(x[i]), x[i]), 1.0);
    });
    return;
  }
  if (c.reduced.back() && rank <= 2) {
    rows<P>(x, rank == 2 ? c.dims[0] : 1, c.dims.back(), out);
  } else if (!c.reduced.back() && rank <= 3 && c.reduced[rank - 2]) {
    columns<P>(x, rank == 3 ? c.dims[0] : 1, c.dims[rank - 2], c.dims[rank - 1], out);
  } else {
    general<P>(x, c, out);
  }
}

}  // namespace

bool parseReduceOp(std::string_view name, ReduceOp* op) {
  static constexpr std::pair<std::string_view, ReduceOp> kNames[] = {
      {"sum", ReduceOp::Sum}, {"mean", ReduceOp::Mean}, {"max", ReduceOp::Max},
      {"min", ReduceOp::Min}, {"prod", ReduceOp::Prod},
  };
  for (const auto& [n, o] : kNames) {
    if (n == name) {
      *op = o;
      return true;
    }
  }
  return false;
}

void reduce(ReduceOp op, const float* x, const std::vector<int64_t>& shape, const std::vector<bool>& reduced,
            float* out) {
  switch (op) {
    case ReduceOp::Sum: return run<SumAcc>(x, shape, reduced, out);
    case ReduceOp::Mean: return run<MeanAcc>(x, shape, reduced, out);
    case ReduceOp::Max: return run<MaxAcc>(x, shape, reduced, out);
    case ReduceOp::Min: return run<MinAcc>(x, shape, reduced, out);
    case ReduceOp::Prod: return run<ProdAcc>(x, shape, reduced, out);
  }
}

void argMax(const float* x, int64_t outer, int64_t r, int64_t inner, int32_t* out) {
  const size_t grain = std::max<size_t>(1, kGrain / static_cast<size_t>(r * inner));
  parallelFor(static_cast<size_t>(outer), grain, [&](size_t begin, size_t end) {
    std::vector<float> best(inner);
    for (size_t o = begin; o < end; ++o) {
      const float* xs = x + o * r * inner;
      int32_t* os = out + o * inner;
      for (int64_t i = 0; i < inner; ++i) {
        best[i] = xs[i];
        os[i] = 0;
      }
      for (int64_t j = 1; j < r; ++j) {
        const float* row = xs + j * inner;
        for (int64_t i = 0; i < inner; ++i) {
          if (row[i] > best[i]) {
            best[i] = row[i];
            os[i] = static_cast<int32_t>(j);
          }
        }
      }
    }
  });
}

}  // namespace pact::reduce
