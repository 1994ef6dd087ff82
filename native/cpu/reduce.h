// Reductions of pact-cpu over any axis set of a contiguous float32 tensor: Sum, Mean, Max, Min, Prod, and
// ArgMax over one axis. Plain functions on raw pointers and shapes; the binding checks lengths first.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace pact::reduce {

enum class ReduceOp { Sum, Mean, Max, Min, Prod };

bool parseReduceOp(std::string_view name, ReduceOp* op);

// out[kept index] = op over the dims flagged in `reduced` (same length as `shape`). `out` holds the product of
// the kept dims. Every reduced dim must be non-empty when out is (the binding checks).
void reduce(ReduceOp op, const float* x, const std::vector<int64_t>& shape, const std::vector<bool>& reduced,
            float* out);

// out[o, i] = the first j with x[o, j, i] maximal over j < r (tfjs' rule: a NaN wins only at j = 0).
// x is [outer, r, inner], r >= 1.
void argMax(const float* x, int64_t outer, int64_t r, int64_t inner, int32_t* out);

}  // namespace pact::reduce
