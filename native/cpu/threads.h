// One thread runtime for the whole addon: OpenMP, the runtime oneDNN (Debian's build) also uses, so our
// loops and oneDNN's primitives share the same pool and never oversubscribe the cores.
#pragma once
#include <omp.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace pact {

int numThreads();
void setNumThreads(int n);

// Chunks a loop of n independent items over the pool when it is worth it (at least `grain` items a thread).
template <typename F>
inline void parallelFor(size_t n, size_t grain, F&& body) {
  const int threads = numThreads();
  if (threads <= 1 || n < 2 * grain) {
    body(size_t{0}, n);
    return;
  }
  const size_t chunks = std::min(static_cast<size_t>(threads), (n + grain - 1) / grain);
#pragma omp parallel for num_threads(static_cast<int>(chunks)) schedule(static)
  for (size_t c = 0; c < chunks; ++c) {
    const size_t begin = n * c / chunks;
    const size_t end = n * (c + 1) / chunks;
    body(begin, end);
  }
}

// Sums over [0, count) into `width` accumulators of type T: one share of [0, count) per thread, share(first, last,
// acc) adding its terms into its own zeroed partial, the partials added in share order so that the result does not
// depend on timing.
template <typename T, typename Share>
std::vector<T> sumShares(size_t count, int64_t width, Share&& share) {
  const size_t chunks = static_cast<size_t>(std::max(1, numThreads()));
  const auto w = static_cast<size_t>(width);
  std::vector<T> partial(chunks * w, T{0});
  parallelFor(chunks, 1, [&](size_t begin, size_t end) {
    for (size_t c = begin; c < end; ++c) share(count * c / chunks, count * (c + 1) / chunks, partial.data() + c * w);
  });
  std::vector<T> total(w, T{0});
  for (size_t c = 0; c < chunks; ++c) {
    for (size_t k = 0; k < w; ++k) total[k] += partial[c * w + k];
  }
  return total;
}

}  // namespace pact
