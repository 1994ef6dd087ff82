// Row helpers shared by the masked kernels (masked convolution, masked batch norm): a mask [rows] selects the rows
// [channels] of a row-major tensor; a row is active where its mask value is > 0 (NaN and -0 are inactive).
#pragma once
#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <vector>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "cpu/threads.h"

namespace pact::masked {

inline bool isActive(float m) { return m > 0.0f; }

#if defined(__AVX2__)
// Bit k set where mask[k] > 0, for k in [0, 8) (isActive on 8 values: one comparison, NaN and -0 inactive).
inline uint32_t activeLanes8(const float* mask) {
  return static_cast<uint32_t>(
      _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(mask), _mm256_setzero_ps(), _CMP_GT_OQ)));
}
#endif

// The active columns of a mask row of w <= 64 values, as bits.
inline uint64_t activeBits(const float* row, int64_t w) {
  uint64_t bits = 0;
  int64_t x = 0;
#if defined(__AVX2__)
  for (; x + 8 <= w; x += 8) bits |= static_cast<uint64_t>(activeLanes8(row + x)) << x;
#endif
  for (; x < w; ++x) bits |= static_cast<uint64_t>(isActive(row[x]) ? 1 : 0) << x;
  return bits;
}

// The number of active rows.
inline int64_t countActive(const float* mask, int64_t rows) {
  int64_t count = 0, i = 0;
#if defined(__AVX2__)
  for (; i + 8 <= rows; i += 8) count += _mm_popcnt_u32(activeLanes8(mask + i));
#endif
  for (; i < rows; ++i) count += isActive(mask[i]) ? 1 : 0;
  return count;
}

// A mask's active rows counted in shares, one a thread above kParallelMaskRows rows (the mask's scans ran on one
// thread while the other waited: 15% of a sparse 16-channel forward at d = 0.1), for activeIndices to list them in
// parallel at the shares' offsets.
constexpr int64_t kParallelMaskRows = 1 << 14;

struct ActiveCounts {
  const float* mask;
  int64_t rows;
  std::vector<int64_t> first;  // [shares + 1]: the active rows before each share's first row; back() the total
  int64_t unit = 1;            // the shares' bounds are multiples of unit (which divides rows)

  int64_t shares() const { return static_cast<int64_t>(first.size()) - 1; }
  int64_t total() const { return first.back(); }
  int64_t bound(int64_t k) const { return rows / unit * k / shares() * unit; }
};

inline ActiveCounts countActiveShares(const float* mask, int64_t rows) {
  const int64_t shares = rows >= kParallelMaskRows ? std::max(1, numThreads()) : 1;
  ActiveCounts counts{mask, rows, std::vector<int64_t>(static_cast<size_t>(shares) + 1, 0)};
  parallelFor(static_cast<size_t>(shares), 1, [&](size_t begin, size_t end) {
    for (size_t k = begin; k < end; ++k) {
      const int64_t lo = counts.bound(static_cast<int64_t>(k)), hi = counts.bound(static_cast<int64_t>(k) + 1);
      counts.first[k + 1] = countActive(mask + lo, hi - lo);
    }
  });
  for (int64_t k = 0; k < shares; ++k) counts.first[k + 1] += counts.first[k];
  return counts;
}

#if defined(__AVX2__) && defined(__BMI2__)
// Writes i + k for the set bits k of the 8 `bits` to out[next, next + 8) (the first popcount(bits) of them are the
// ones kept) and returns next + popcount(bits). Byte k of `lanes`: the k-th set bit's lane (pdep spreads the 8 bits
// to bytes, pext packs their lanes).
inline int64_t appendLanes8(uint32_t bits, int64_t i, int64_t* out, int64_t next) {
  const uint64_t lanes = _pext_u64(0x0706050403020100ull, _pdep_u64(bits, 0x0101010101010101ull) * 0xff);
  const __m256i base = _mm256_set1_epi64x(i);
  const __m128i packed = _mm_cvtsi64_si128(static_cast<int64_t>(lanes));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + next), _mm256_add_epi64(base, _mm256_cvtepu8_epi64(packed)));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + next + 4),
                      _mm256_add_epi64(base, _mm256_cvtepu8_epi64(_mm_srli_si128(packed, 4))));
  return next + _mm_popcnt_u32(bits);
}
#endif

// Writes the indices of the active rows among mask[i, hi) to out[next, limit), ascending, and no further.
// Branch-free where it can be (a random mask's branch mispredicts half the time: 12-15% of a sparse convolution at
// d = 0.5). With AVX2 and BMI2, 8 rows at a time: their active lanes' offsets packed by pext, written as 8 indices of
// which the count of active ones are kept (the next group writes over the rest), while 8 entries fit before `limit`;
// one by one after that. Without, every index is written at the current count, which advances only past active
// rows.
inline void listActive(const float* mask, int64_t i, int64_t hi, int64_t* out, int64_t next, int64_t limit) {
#if defined(__AVX2__) && defined(__BMI2__)
  for (; i + 8 <= hi && next < limit; i += 8) {
    uint32_t bits = activeLanes8(mask + i);
    if (next + 8 <= limit) {
      next = appendLanes8(bits, i, out, next);
      continue;
    }
    for (; bits != 0 && next < limit; bits &= bits - 1) out[next++] = i + _tzcnt_u32(bits);
  }
#endif
  for (; i < hi && next < limit; ++i) {
    out[next] = i;
    next += isActive(mask[i]) ? 1 : 0;
  }
}

// activeIndices from countActiveShares: each share listed by its own thread, at its offset (listActive).
inline std::vector<int64_t> activeIndices(const ActiveCounts& counts) {
  std::vector<int64_t> active(static_cast<size_t>(counts.total()));
  parallelFor(static_cast<size_t>(counts.shares()), 1, [&](size_t begin, size_t end) {
    for (size_t k = begin; k < end; ++k) {
      const auto share = static_cast<int64_t>(k);
      listActive(counts.mask, counts.bound(share), counts.bound(share + 1), active.data(), counts.first[k],
                 counts.first[k + 1]);
    }
  });
  return active;
}

// The indices of the active rows, ascending (counted and listed in parallel above kParallelMaskRows rows).
inline std::vector<int64_t> activeIndices(const float* mask, int64_t rows) {
  return activeIndices(countActiveShares(mask, rows));
}

// Words of packed bits per thread from which packActive and zeroActiveRows run in parallel (32 rows a word).
constexpr size_t kPackGrainWords = 256;

// Mask rows up to this wide are read as bits (activeBits, MaskScan).
constexpr int64_t kBitRowsMaxWidth = 64;

// The bits of a row of w <= 64 positions: bits 0 to w - 1 set.
inline uint64_t widthBits(int64_t w) { return w >= 64 ? ~uint64_t{0} : (uint64_t{1} << w) - 1; }

// out[y] = rows[y] dilated by `radius` (a (2 radius + 1)^2 window) for the h rows of one image w <= 64 wide, as bits
// (bit x: column x): the rows within `radius` ORed, then spread by shifts (the two commute).
inline void dilateRowBits(const uint64_t* rows, int64_t h, int64_t w, int64_t radius, uint64_t* out) {
  for (int64_t y = 0; y < h; ++y) {
    uint64_t bits = 0;
    for (int64_t yy = std::max<int64_t>(0, y - radius); yy <= std::min(h - 1, y + radius); ++yy) bits |= rows[yy];
    uint64_t spread = bits;
    for (int64_t d = 1; d <= radius && d < 64; ++d) spread |= (bits << d) | (bits >> d);
    out[y] = spread & widthBits(w);
  }
}

// A mask of `rows` rows of `width` values (the masked convolution's [batch * outH, outW]) scanned once: its active
// values counted in shares of whole rows (as countActiveShares) and, where rows are up to kBitRowsMaxWidth wide,
// each row's active bits, from which the active list and the Winograd tiles are then read (1/32 of the mask's bytes).
// The forward had scanned the mask three times (to count, to decide on Winograd tiles, to split): 0.07 ms of a
// 0.32 ms F(4x4, 3x3) forward at 128x32x32x16, 4x4 blocks at d = 0.1; with one scan, 0.95-0.98x each pass's time.
struct MaskScan {
  ActiveCounts counts;
  int64_t width;
  std::vector<uint64_t> bits;  // [rows]: bit x of bits[r] is mask[r * width + x] > 0; empty for wider rows

  // The rows' bits, or null where rows are wider than kBitRowsMaxWidth.
  const uint64_t* rowBits() const { return bits.empty() ? nullptr : bits.data(); }
};

inline MaskScan scanMask(const float* mask, int64_t rows, int64_t width) {
  const int64_t n = rows * width;
  const int64_t shares = n >= kParallelMaskRows && rows > 1 ? std::max(1, numThreads()) : 1;
  const bool byBits = width > 0 && width <= kBitRowsMaxWidth;
  std::vector<int64_t> first(static_cast<size_t>(shares) + 1, 0);
  MaskScan scan{ActiveCounts{mask, n, std::move(first), byBits ? width : 1}, width, {}};
  if (byBits) scan.bits.resize(static_cast<size_t>(rows));
  ActiveCounts& counts = scan.counts;
  parallelFor(static_cast<size_t>(shares), 1, [&](size_t begin, size_t end) {
    for (size_t k = begin; k < end; ++k) {
      const int64_t lo = counts.bound(static_cast<int64_t>(k)), hi = counts.bound(static_cast<int64_t>(k) + 1);
      if (scan.bits.empty()) {
        counts.first[k + 1] = countActive(mask + lo, hi - lo);
        continue;
      }
      int64_t count = 0;
      for (int64_t r = lo / width; r < hi / width; ++r) {
        const uint64_t bits = activeBits(mask + r * width, width);
        scan.bits[static_cast<size_t>(r)] = bits;
        count += std::popcount(bits);
      }
      counts.first[k + 1] = count;
    }
  });
  for (int64_t k = 0; k < shares; ++k) counts.first[k + 1] += counts.first[k];
  return scan;
}

// The active indices of a scanned mask, ascending: from the rows' bits where it has them.
inline std::vector<int64_t> activeIndices(const MaskScan& scan) {
  const ActiveCounts& counts = scan.counts;
  if (scan.bits.empty()) return activeIndices(counts);
  std::vector<int64_t> active(static_cast<size_t>(counts.total()));
  const int64_t w = scan.width;
  parallelFor(static_cast<size_t>(counts.shares()), 1, [&](size_t begin, size_t end) {
    for (size_t k = begin; k < end; ++k) {
      const auto share = static_cast<int64_t>(k);
      const int64_t limit = counts.first[k + 1];  // the next share's first entry: never written here
      int64_t next = counts.first[k];
      for (int64_t r = counts.bound(share) / w; r < counts.bound(share + 1) / w; ++r) {
        // The row's bits 8 at a time, 8 entries written where they fit before `limit` (see listActive).
        for (uint64_t bits = scan.bits[static_cast<size_t>(r)], x = 0; bits != 0; x += 8, bits >>= 8) {
          auto lanes = static_cast<uint32_t>(bits & 0xFF);
          const int64_t i = r * w + static_cast<int64_t>(x);
#if defined(__AVX2__) && defined(__BMI2__)
          if (next + 8 <= limit) {
            next = appendLanes8(lanes, i, active.data(), next);
            continue;
          }
#endif
          for (; lanes != 0; lanes &= lanes - 1) active[static_cast<size_t>(next++)] = i + std::countr_zero(lanes);
        }
      }
    }
  });
  return active;
}

// n floats (zeroed) starting on a cache line (64 bytes): the direct kernels' 64-byte vector loads of a filter never
// straddle two lines, which costs two loads. Arrays from JavaScript start 16 bytes into a line as often as not: the
// 16-channel forward kernel took 1.12x the time with such a filter (synthetic, caches warm). The Winograd kernels'
// transformed tiles too (rows a multiple of 16 floats apart, each one line): in std::vector's storage (glibc's
// malloc: 16-byte boundaries) the 16-channel forward and input gradient took 1.04-1.24x the time (32x32x16, all
// active, one thread, the two alternating in one process; 1.15-1.23x at batch 128 on two threads).
class LineAlignedFloats {
 public:
  explicit LineAlignedFloats(size_t n) : storage_(n + kLineFloats - 1) {
    const auto address = reinterpret_cast<uintptr_t>(storage_.data());
    data_ = storage_.data() + (kLineFloats - address / sizeof(float) % kLineFloats) % kLineFloats;
  }
  // Movable (the storage keeps its address), not copyable (a copy's data() would point into this one's storage).
  LineAlignedFloats(const LineAlignedFloats&) = delete;
  LineAlignedFloats& operator=(const LineAlignedFloats&) = delete;
  LineAlignedFloats(LineAlignedFloats&&) noexcept = default;
  LineAlignedFloats& operator=(LineAlignedFloats&&) noexcept = default;

  float* data() { return data_; }
  const float* data() const { return data_; }

 private:
  static constexpr size_t kLineFloats = 64 / sizeof(float);
  std::vector<float> storage_;
  float* data_;
};

// Asks for the `length` floats at `row` to be brought into the cache (a no-op without SSE2).
inline void prefetchRow(const float* row, int64_t length) {
#if defined(__SSE2__)
  const uintptr_t first = reinterpret_cast<uintptr_t>(row) & ~uintptr_t{63};
  const uintptr_t end = reinterpret_cast<uintptr_t>(row + length);
  for (uintptr_t line = first; line < end; line += 64) _mm_prefetch(reinterpret_cast<const char*>(line), _MM_HINT_T0);
#else
  (void)row;
  (void)length;
#endif
}

// Zeroes n floats, the whole 64-byte lines among them with non-temporal stores (memset for the partial lines at the
// ends, and for runs shorter than two lines): zeros that are not read back soon need not cost their lines' reads
// for ownership, nor evict cached data. Callers end with streamFence().
inline void streamZero(float* data, size_t n) {
#if defined(__SSE2__)
  const uintptr_t address = reinterpret_cast<uintptr_t>(data);
  const size_t head = (64 - address % 64) % 64 / sizeof(float);
  if (address % sizeof(float) != 0 || head + 32 > n) {  // fewer than two whole cache lines: memset
    std::memset(data, 0, sizeof(float) * n);
    return;
  }
  std::memset(data, 0, sizeof(float) * head);
  const __m128 zero = _mm_setzero_ps();
  size_t i = head;
  for (; i + 16 <= n; i += 16) {  // whole lines only: a partial streamed line is written back piecemeal
    _mm_stream_ps(data + i, zero);
    _mm_stream_ps(data + i + 4, zero);
    _mm_stream_ps(data + i + 8, zero);
    _mm_stream_ps(data + i + 12, zero);
  }
  std::memset(data + i, 0, sizeof(float) * (n - i));
#else
  std::memset(data, 0, sizeof(float) * n);
#endif
}

// Orders this thread's non-temporal stores before what follows.
inline void streamFence() {
#if defined(__SSE2__)
  _mm_sfence();
#endif
}

// Zeroes the rows [begin, end) of data [rows, channels] whose mask value is not > 0, one memset per run of such rows
// (8-10% faster than one per row where most rows are inactive), or one streamZero per run when `stream` (zeros
// nothing reads back soon; the caller then ends with streamFence()). On the calling thread.
inline void zeroInactiveRange(const float* mask, size_t begin, size_t end, int64_t channels, float* data,
                              bool stream) {
  for (size_t i = begin; i < end;) {
    if (isActive(mask[i])) {
      ++i;
      continue;
    }
    size_t j = i + 1;
    while (j < end && !isActive(mask[j])) ++j;
    const size_t n = static_cast<size_t>(channels) * (j - i);
    if (stream) {
      streamZero(data + i * channels, n);
    } else {
      std::memset(data + i * channels, 0, sizeof(float) * n);
    }
    i = j;
  }
}

// Zeroes, streamed (the caller then ends with streamFence()), the positions of rows [rowBegin, rowEnd) of `data`
// (rows of w <= 64 positions of `channels` values) whose bits are set in bits[row] (bit x: position x), one
// streamZero per run of consecutive positions (runs continue across rows). On the calling thread.
inline void zeroBitsRange(const uint64_t* bits, size_t rowBegin, size_t rowEnd, int64_t w, int64_t channels,
                          float* data) {
  int64_t runStart = 0, runEnd = 0;  // the pending run of positions [runStart, runEnd)
  const auto flush = [&] {
    if (runEnd > runStart) streamZero(data + runStart * channels, static_cast<size_t>((runEnd - runStart) * channels));
  };
  for (size_t r = rowBegin; r < rowEnd; ++r) {
    const int64_t base = static_cast<int64_t>(r) * w;
    for (uint64_t b = bits[r]; b != 0;) {
      const int start = std::countr_zero(b);
      const int length = std::countr_zero(~(b >> start));  // 64 for a row of 64 set bits
      if (base + start != runEnd) {
        flush();
        runStart = base + start;
      }
      runEnd = base + start + length;
      b = start + length >= 64 ? 0 : b & (~uint64_t{0} << (start + length));
    }
  }
  flush();
}

// zeroInactiveRange over all the rows, parallel over blocks of rows.
inline void zeroInactiveRows(const float* mask, int64_t rows, int64_t channels, float* data, bool stream = false) {
  parallelFor(static_cast<size_t>(rows), 4096, [&](size_t begin, size_t end) {
    zeroInactiveRange(mask, begin, end, channels, data, stream);
    if (stream) streamFence();
  });
}

// Packs the active rows of mask [n] as bits, bit i % 32 of words[i / 32] for row i (words [ceil(n / 32)], the last
// one's bits past n clear), and returns their count: the buffer pool's record of where a masked output may be
// nonzero (1/32 of the mask's bytes, 1/512 of a 16-channel output's).
inline int64_t packActive(const float* mask, int64_t n, uint32_t* words) {
  const auto nWords = static_cast<size_t>((n + 31) / 32);
  const size_t shares = nWords >= 2 * kPackGrainWords ? static_cast<size_t>(std::max(1, numThreads())) : 1;
  std::vector<int64_t> counts(shares, 0);
  parallelFor(shares, 1, [&](size_t begin, size_t end) {
    for (size_t k = begin; k < end; ++k) {
      for (size_t w = nWords * k / shares; w < nWords * (k + 1) / shares; ++w) {
        const int64_t i = static_cast<int64_t>(w) * 32;
        const auto bits = static_cast<uint32_t>(activeBits(mask + i, std::min<int64_t>(32, n - i)));
        words[w] = bits;
        counts[k] += std::popcount(bits);
      }
    }
  });
  int64_t total = 0;
  for (const int64_t c : counts) total += c;
  return total;
}

// Zeroes the rows of data [rows, channels] whose bit is set in words (packActive's layout; bits past `rows` are
// ignored), parallel over blocks of rows: an output of a masked kernel, zero elsewhere, made all zeros for reuse at a
// cost proportional to its active rows. Rows of 8 to 64 floats (a multiple of 8) as zero vectors, a row per set bit;
// others one memset per run of set bits.
inline void zeroActiveRows(const uint32_t* words, int64_t rows, int64_t channels, float* data) {
  const auto nWords = static_cast<size_t>((rows + 31) / 32);
  parallelFor(nWords, kPackGrainWords, [&](size_t w0, size_t w1) {
    for (size_t w = w0; w < w1; ++w) {
      const int64_t first = static_cast<int64_t>(w) * 32;
      uint32_t bits = words[w];
      if (rows - first < 32) bits &= (uint32_t{1} << (rows - first)) - 1;
#if defined(__AVX2__)
      if (channels % 8 == 0 && channels <= 64) {
        const __m256 zero = _mm256_setzero_ps();
        for (; bits != 0; bits &= bits - 1) {
          float* row = data + (first + std::countr_zero(bits)) * channels;
          for (int64_t k = 0; k < channels; k += 8) _mm256_storeu_ps(row + k, zero);
        }
        continue;
      }
#endif
      while (bits != 0) {
        const int start = std::countr_zero(bits);
        const int run = std::countr_one(bits >> start);
        std::memset(data + (first + start) * channels, 0, sizeof(float) * static_cast<size_t>(run * channels));
        bits = run + start >= 32 ? 0 : bits & ~((uint32_t{1} << (start + run)) - 1);
      }
    }
  });
}

}  // namespace pact::masked
