// Scratch arrays of floats that start at a cache-line boundary.
#pragma once
#include <cstddef>
#include <cstring>
#include <new>
#include <utility>

namespace pact {

// n floats, zeroed, from a 64-byte boundary, so that rows a multiple of 16 floats apart each start a cache line: a
// vector load or store across two lines costs about two (glibc's malloc, behind std::vector, gives 16-byte
// boundaries). The Winograd kernels' transformed tiles live in these: with std::vector's storage the 16-channel
// forward and input gradient took 1.15-1.25x the time (rdtsc and same-process A/B, 128x32x32x16, Intel Xeon,
// 2026-11-27). Move-only.
class LineFloats {
 public:
  explicit LineFloats(size_t n)
      : data_(static_cast<float*>(::operator new(n * sizeof(float), kAlign))), size_(n) {
    std::memset(data_, 0, n * sizeof(float));
  }
  ~LineFloats() { ::operator delete(data_, kAlign); }
  LineFloats(const LineFloats&) = delete;
  LineFloats& operator=(const LineFloats&) = delete;
  LineFloats(LineFloats&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  LineFloats& operator=(LineFloats&&) = delete;

  float* data() { return data_; }
  const float* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  static constexpr std::align_val_t kAlign{64};
  float* data_;
  size_t size_;
};

}  // namespace pact
