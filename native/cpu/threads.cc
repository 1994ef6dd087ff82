#include "cpu/threads.h"

#include <cstdlib>

namespace pact {

namespace {
int initialThreads() {
  if (const char* env = std::getenv("PACT_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n > 0) {
      omp_set_num_threads(n);
      return n;
    }
  }
  return omp_get_max_threads();
}
int gThreads = initialThreads();
}  // namespace

int numThreads() { return gThreads; }

void setNumThreads(int n) {
  gThreads = n;
  omp_set_num_threads(n);  // oneDNN's OpenMP primitives read this too
}

}  // namespace pact
