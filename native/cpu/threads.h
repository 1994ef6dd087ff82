// One thread runtime for the whole addon: OpenMP, the runtime oneDNN (Debian's build) also uses, so our
// loops and oneDNN's primitives share the same pool and never oversubscribe the cores.
#pragma once
#include <omp.h>

#include <algorithm>
#include <cstddef>

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

}  // namespace pact
