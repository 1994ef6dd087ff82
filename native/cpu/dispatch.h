// Run-time sizes as compile-time constants, for kernels whose offsets and register blocking depend on a width.
#pragma once
#include <cstdint>
#include <type_traits>

namespace pact {

// Calls f(std::integral_constant<int, V>{}) for the V among Values equal to n and returns true; returns false,
// calling nothing, when none is.
template <int... Values, typename F>
bool withConstant(int64_t n, F&& f) {
  return ((n == Values ? (f(std::integral_constant<int, Values>{}), true) : false) || ...);
}

}  // namespace pact
