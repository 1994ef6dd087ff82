#include "cpu/random.h"

#include "cpu/threads.h"

namespace pact {

namespace {

// Draws a thread takes at least: a draw costs about a nanosecond.
constexpr size_t kGrain = 1 << 15;

inline uint32_t mix(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

}  // namespace

void uniformNoise(uint32_t high, uint32_t low, int64_t n, float* out) {
  const uint32_t a = mix(low ^ mix(high + 0x9e3779b9U)), b = mix(a + 0x85ebca6bU);
  parallelFor(static_cast<size_t>(n), kGrain, [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      const uint32_t x = mix(mix(static_cast<uint32_t>(i) + a) ^ b);
      out[i] = (static_cast<float>(x >> 9) + 0.5f) * (1.0f / 8388608.0f);
    }
  });
}

}  // namespace pact
