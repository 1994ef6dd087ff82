#include "cpu/narrow_conv.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <vector>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

#include "cpu/dispatch.h"
#include "cpu/isa.h"
#include "cpu/threads.h"

namespace pact {

namespace {

// The input row and column of tap k of output row/column o, or -1 outside the image.
inline int64_t inputIndex(int64_t o, int64_t k, int64_t stride, int64_t dilation, int64_t padLow, int64_t size) {
  const int64_t i = o * stride - padLow + k * dilation;
  return i >= 0 && i < size ? i : -1;
}

// The filter HWIO [taps, C, O] as [O, taps, C]: each output channel's weights contiguous per tap.
std::vector<float> filterByOutput(const Conv2DGeometry& g, const float* filter) {
  const int64_t taps = g.filterHeight * g.filterWidth, C = g.inChannels, O = g.outChannels;
  std::vector<float> w(static_cast<size_t>(O * taps * C));
  for (int64_t t = 0; t < taps; ++t) {
    for (int64_t c = 0; c < C; ++c) {
      for (int64_t o = 0; o < O; ++o) w[(o * taps + t) * C + c] = filter[(t * C + c) * O + o];
    }
  }
  return w;
}

#if defined(__AVX2__) && defined(__FMA__)
inline float horizontalSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
#endif

// sum(x[0, n) * w[0, n)): into the vector accumulator for the 8-float groups where AVX2 is compiled in, the rest
// returned.
inline float dot(const float* x, const float* w, int64_t n, [[maybe_unused]] void* vacc) {
  int64_t i = 0;
#if defined(__AVX2__) && defined(__FMA__)
  __m256& acc = *static_cast<__m256*>(vacc);
  for (; i + 8 <= n; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(w + i), acc);
#endif
  float tail = 0.0f;
  for (; i < n; ++i) tail += x[i] * w[i];
  return tail;
}

// The range [lo, hi) of output indices o (rows or columns, [0, outSize)) whose tap k reads an input index
// o*stride + k*dilation - padLow inside [0, size).
void validRange(int64_t k, int64_t stride, int64_t dilation, int64_t padLow, int64_t size, int64_t outSize,
                int64_t& lo, int64_t& hi) {
  const int64_t offset = k * dilation - padLow;
  lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  hi = size - 1 - offset < 0 ? 0 : std::min(outSize, (size - 1 - offset) / stride + 1);
  lo = std::min(lo, hi);
}

// The sums over the batch of what body(b, partial) adds into partial[0, size) for image b (sumShares: one share of
// the images a thread, added in share order).
template <typename Body>
std::vector<float> imageSums(int64_t batch, int64_t size, Body&& body) {
  return sumShares<float>(static_cast<size_t>(batch), size, [&](size_t first, size_t last, float* partial) {
    for (size_t b = first; b < last; ++b) body(static_cast<int64_t>(b), partial);
  });
}

#if defined(__AVX2__) && defined(__FMA__)
// One output channel, a 3x3 filter, strides and dilations 1, 16 to 64 input channels in steps of 16, on AVX-512
// (PSACT's halting logits): the forward and backprop-filter below. The loops above compute each window's dot products
// in 8-float lanes and reduce each output on its own (forward), or sweep the image once per tap and 8 channels with
// two loads per FMA (backprop-filter); at 128x32x32x16 they took 0.8 and 0.9 ms, 40% of a 16 -> 16 channel
// convolution that does 16x the work.
bool singleChannel3x3(const Conv2DGeometry& g) {
  return g.outChannels == 1 && g.filterHeight == 3 && g.filterWidth == 3 && g.strideHeight == 1 &&
         g.strideWidth == 1 && g.dilationHeight == 1 && g.dilationWidth == 1 &&
         (g.inChannels == 16 || g.inChannels == 32 || g.inChannels == 48 || g.inChannels == 64) && useAvx512();
}

#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx512dq,avx512bw")
// GCC 12's AVX-512 headers build several intrinsics (unpacks, 128-bit shuffles, _mm512_reduce_add_ps, the 512 -> 256
// cast) on an undefined source that its -Wuninitialized then reports (GCC bug 105593, fixed in GCC 13).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
namespace avx512 {

// The lane sums of a[0..15] as one vector (lane k: the sum of a[k]'s lanes): pairs of accumulators interleaved and
// added, then quads, then the 128-bit quarters, 45 operations instead of 16 reductions of 7 or more.
inline __m512 sums16(const __m512 (&a)[16]) {
  __m512 t[8], u[4];
  for (int k = 0; k < 8; ++k) {
    t[k] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * k], a[2 * k + 1]), _mm512_unpackhi_ps(a[2 * k], a[2 * k + 1]));
  }
  for (int k = 0; k < 4; ++k) {
    const __m512d lo = _mm512_unpacklo_pd(_mm512_castps_pd(t[2 * k]), _mm512_castps_pd(t[2 * k + 1]));
    const __m512d hi = _mm512_unpackhi_pd(_mm512_castps_pd(t[2 * k]), _mm512_castps_pd(t[2 * k + 1]));
    u[k] = _mm512_add_ps(_mm512_castpd_ps(lo), _mm512_castpd_ps(hi));  // lane quarter q: a[4k..4k+3]'s q-th sums
  }
  __m512 w[2];
  for (int k = 0; k < 2; ++k) {
    const __m512 front = _mm512_shuffle_f32x4(u[2 * k], u[2 * k + 1], _MM_SHUFFLE(1, 0, 1, 0));
    const __m512 back = _mm512_shuffle_f32x4(u[2 * k], u[2 * k + 1], _MM_SHUFFLE(3, 2, 3, 2));
    w[k] = _mm512_add_ps(front, back);
  }
  const __m512 even = _mm512_shuffle_f32x4(w[0], w[1], _MM_SHUFFLE(2, 0, 2, 0));
  const __m512 odd = _mm512_shuffle_f32x4(w[0], w[1], _MM_SHUFFLE(3, 1, 3, 1));
  return _mm512_add_ps(even, odd);
}

// The input rows that output row oy's window reads (3x3, stride 1), or null outside the image.
struct WindowRows {
  const float* rows[3];

  WindowRows(const Conv2DGeometry& g, const float* image, int64_t oy) {
    for (int64_t ky = 0; ky < 3; ++ky) {
      const int64_t iy = oy - g.padTop + ky;
      rows[ky] = iy >= 0 && iy < g.inHeight ? image + iy * g.inWidth * g.inChannels : nullptr;
    }
  }
};

// N consecutive outputs of a row from input column ix0 (the first one's kx = 0 tap): N independent accumulators of 16
// channel lanes, each filter vector loaded once for the N, then each accumulator's lanes summed into its output.
// LeftEdge: the first output's kx = 0 tap lies left of the image (skipped); RightEdge: the last one's kx = 2 tap
// right of it. The loops over the N outputs are unrolled so that the accumulators stay in registers.
template <int N, int C, bool LeftEdge, bool RightEdge>
void forwardBlock(const WindowRows& window, const float* w, int64_t ix0, float* out) {
  __m512 acc[N];
#pragma GCC unroll 16
  for (int j = 0; j < N; ++j) acc[j] = _mm512_setzero_ps();
  for (int ky = 0; ky < 3; ++ky) {
    if (window.rows[ky] == nullptr) continue;
#pragma GCC unroll 3
    for (int kx = 0; kx < 3; ++kx) {
      const float* base = window.rows[ky] + (ix0 + kx) * C;
      const float* tap = w + (ky * 3 + kx) * C;
#pragma GCC unroll 4
      for (int c = 0; c < C; c += 16) {
        const __m512 wv = _mm512_loadu_ps(tap + c);
#pragma GCC unroll 16
        for (int j = 0; j < N; ++j) {
          if ((LeftEdge && kx == 0 && j == 0) || (RightEdge && kx == 2 && j == N - 1)) continue;
          acc[j] = _mm512_fmadd_ps(_mm512_loadu_ps(base + j * C + c), wv, acc[j]);
        }
      }
    }
  }
  if constexpr (N == 16) {
    _mm512_storeu_ps(out, sums16(acc));
  } else {
#pragma GCC unroll 16
    for (int j = 0; j < N; ++j) out[j] = _mm512_reduce_add_ps(acc[j]);
  }
}

// One output whose window may cross the image's left or right edge.
void forwardOne(const Conv2DGeometry& g, const WindowRows& window, const float* w, int64_t ox, float* out) {
  const int64_t C = g.inChannels;
  __m512 acc = _mm512_setzero_ps();
  for (int ky = 0; ky < 3; ++ky) {
    if (window.rows[ky] == nullptr) continue;
    for (int kx = 0; kx < 3; ++kx) {
      const int64_t ix = ox - g.padLeft + kx;
      if (ix < 0 || ix >= g.inWidth) continue;
      for (int64_t c = 0; c < C; c += 16) {
        acc = _mm512_fmadd_ps(_mm512_loadu_ps(window.rows[ky] + ix * C + c),
                              _mm512_loadu_ps(w + (ky * 3 + kx) * C + c), acc);
      }
    }
  }
  *out = _mm512_reduce_add_ps(acc);
}

template <int C>
void forward(const Conv2DGeometry& g, const float* x, const float* filter, float* y) {
  const int64_t inImage = g.inHeight * g.inWidth * C;
  // 'same' rows of 4, 8 or a multiple of 16 outputs (ResNet's 32, 16 and 8): whole rows in blocks, the edge blocks
  // skipping their padding taps.
  const int64_t width = g.outWidth, block = width >= 16 ? 16 : width;
  if (g.padLeft == 1 && g.padRight == 1 && g.inWidth == width && (block == 4 || block == 8 || block == 16) &&
      width % block == 0) {
    parallelFor(static_cast<size_t>(g.batch * g.outHeight), 1, [&](size_t begin, size_t end) {
      for (size_t row = begin; row < end; ++row) {
        const int64_t b = static_cast<int64_t>(row) / g.outHeight, oy = static_cast<int64_t>(row) % g.outHeight;
        const WindowRows window(g, x + b * inImage, oy);
        float* out = y + static_cast<int64_t>(row) * width;
        const auto blocks = [&](auto n) {
          constexpr int N = decltype(n)::value;
          if (width == N) return forwardBlock<N, C, true, true>(window, filter, -1, out);
          forwardBlock<N, C, true, false>(window, filter, -1, out);
          for (int64_t ox = N; ox + N < width; ox += N) {
            forwardBlock<N, C, false, false>(window, filter, ox - 1, out + ox);
          }
          forwardBlock<N, C, false, true>(window, filter, width - N - 1, out + width - N);
        };
        if (block == 16) {
          blocks(std::integral_constant<int, 16>{});
        } else if (block == 8) {
          blocks(std::integral_constant<int, 8>{});
        } else {
          blocks(std::integral_constant<int, 4>{});
        }
      }
    });
    return;
  }
  // Outputs [lo, hi) of a row have every tap inside the image horizontally; blocks of 16, 8 or 4 of them, the last
  // block of a row moved back to end at hi (a few outputs computed twice, the same way).
  const int64_t lo = std::min(g.outWidth, g.padLeft);
  const int64_t hi = std::max(lo, std::min(g.outWidth, g.inWidth + g.padLeft - 2));
  parallelFor(static_cast<size_t>(g.batch * g.outHeight), 1, [&](size_t begin, size_t end) {
    for (size_t row = begin; row < end; ++row) {
      const int64_t b = static_cast<int64_t>(row) / g.outHeight, oy = static_cast<int64_t>(row) % g.outHeight;
      const WindowRows window(g, x + b * inImage, oy);
      float* out = y + static_cast<int64_t>(row) * g.outWidth;
      for (int64_t ox = 0; ox < lo; ++ox) forwardOne(g, window, filter, ox, out + ox);
      const auto blocks = [&](auto n) {
        constexpr int N = decltype(n)::value;
        for (int64_t ox = lo; ox < hi; ox += N) {
          const int64_t start = std::min(ox, hi - N);
          forwardBlock<N, C, false, false>(window, filter, start - g.padLeft, out + start);
        }
      };
      const int64_t inside = hi - lo;
      if (inside >= 16) {
        blocks(std::integral_constant<int, 16>{});
      } else if (inside >= 8) {
        blocks(std::integral_constant<int, 8>{});
      } else if (inside >= 4) {
        blocks(std::integral_constant<int, 4>{});
      } else {
        for (int64_t ox = lo; ox < hi; ++ox) forwardOne(g, window, filter, ox, out + ox);
      }
      for (int64_t ox = hi; ox < g.outWidth; ++ox) forwardOne(g, window, filter, ox, out + ox);
    }
  });
}

// dfilter[tap, c0 + 16v + lane] += the sum over one image's outputs p of x[window(p) + tap] * dy[p], V vectors of
// channels from c0: the 9 x V sums stay in registers over the image (one broadcast of dy[p] feeds them all).
template <int C, int V>
void backpropFilterImage(const Conv2DGeometry& g, const float* image, const float* dy, int64_t c0, float* dfilter) {
  __m512 acc[9][V];
  for (int t = 0; t < 9; ++t)
    for (int v = 0; v < V; ++v) acc[t][v] = _mm512_setzero_ps();
  const int64_t lo = std::min(g.outWidth, g.padLeft);
  const int64_t hi = std::max(lo, std::min(g.outWidth, g.inWidth + g.padLeft - 2));
  for (int64_t oy = 0; oy < g.outHeight; ++oy) {
    const WindowRows window(g, image + c0, oy);
    const float* d = dy + oy * g.outWidth;
    const auto position = [&](int64_t ox, auto checked) {
      const __m512 b = _mm512_set1_ps(d[ox]);
      for (int ky = 0; ky < 3; ++ky) {
        if (window.rows[ky] == nullptr) continue;
        for (int kx = 0; kx < 3; ++kx) {
          const int64_t ix = ox - g.padLeft + kx;
          if (decltype(checked)::value && (ix < 0 || ix >= g.inWidth)) continue;
          for (int v = 0; v < V; ++v) {
            acc[ky * 3 + kx][v] = _mm512_fmadd_ps(_mm512_loadu_ps(window.rows[ky] + ix * C + 16 * v), b,
                                                  acc[ky * 3 + kx][v]);
          }
        }
      }
    };
    for (int64_t ox = 0; ox < lo; ++ox) position(ox, std::true_type{});
    for (int64_t ox = lo; ox < hi; ++ox) position(ox, std::false_type{});
    for (int64_t ox = hi; ox < g.outWidth; ++ox) position(ox, std::true_type{});
  }
  for (int t = 0; t < 9; ++t) {
    for (int v = 0; v < V; ++v) {
      float* target = dfilter + t * C + c0 + 16 * v;
      _mm512_storeu_ps(target, _mm512_add_ps(_mm512_loadu_ps(target), acc[t][v]));
    }
  }
}

// dfilter [3, 3, C, 1]: each image's channels in passes of 32 (16 for the last when C is an odd multiple of 16).
template <int C>
void backpropFilter(const Conv2DGeometry& g, const float* x, const float* dy, float* dfilter) {
  const int64_t inImage = g.inHeight * g.inWidth * C, outPlane = g.outHeight * g.outWidth;
  const std::vector<float> total = imageSums(g.batch, 9 * C, [&](int64_t b, float* sum) {
    int64_t c0 = 0;
    for (; c0 + 32 <= C; c0 += 32) backpropFilterImage<C, 2>(g, x + b * inImage, dy + b * outPlane, c0, sum);
    if (c0 < C) backpropFilterImage<C, 1>(g, x + b * inImage, dy + b * outPlane, c0, sum);
  });
  std::copy(total.begin(), total.end(), dfilter);
}

}  // namespace avx512
#pragma GCC diagnostic pop
#pragma GCC pop_options

// The AVX-512 single-channel kernels where singleChannel3x3 holds (returning true), else nothing (false).
bool singleChannelForward(const Conv2DGeometry& g, const float* x, const float* filter, float* y) {
  const auto run = [&](auto c) { avx512::forward<decltype(c)::value>(g, x, filter, y); };
  return singleChannel3x3(g) && withConstant<16, 32, 48, 64>(g.inChannels, run);
}

bool singleChannelBackpropFilter(const Conv2DGeometry& g, const float* x, const float* dy, float* dfilter) {
  const auto run = [&](auto c) { avx512::backpropFilter<decltype(c)::value>(g, x, dy, dfilter); };
  return singleChannel3x3(g) && withConstant<16, 32, 48, 64>(g.inChannels, run);
}
#else
bool singleChannelForward(const Conv2DGeometry&, const float*, const float*, float*) { return false; }
bool singleChannelBackpropFilter(const Conv2DGeometry&, const float*, const float*, float*) { return false; }
#endif

}  // namespace

bool useNarrowConv(const Conv2DGeometry& g) {
  // A whole number >= 0, else the default (pact-cpu's registration refuses other values with a message).
  const char* setting = std::getenv("PACT_NARROW_CONV");
  int64_t limit = kNarrowConvMaxOutChannels;
  if (setting != nullptr && *setting != '\0') {
    char* end = nullptr;
    const long long value = std::strtoll(setting, &end, 10);
    if (*end == '\0' && value >= 0) limit = value;
  }
  return g.outChannels <= limit;
}

void narrowConv2dForward(const Conv2DGeometry& g, const float* x, const float* filter, float* y) {
  if (singleChannelForward(g, x, filter, y)) return;
  const int64_t taps = g.filterHeight * g.filterWidth, C = g.inChannels, O = g.outChannels;
  const std::vector<float> w = filterByOutput(g, filter);
  const int64_t inImage = g.inHeight * g.inWidth * C;
  // A filter row's taps are contiguous in x too when they are adjacent columns (dilation 1): one dot of kW*C floats
  // per filter row, for kBlock outputs of a row at once where every window lies inside the image (each weight
  // vector loaded once for them, kBlock independent FMA chains).
  constexpr int64_t kBlock = 4;
  int64_t insideLo = 0, insideHi = 0, unused = 0;
  validRange(0, g.strideWidth, g.dilationWidth, g.padLeft, g.inWidth, g.outWidth, insideLo, unused);
  validRange(g.filterWidth - 1, g.strideWidth, g.dilationWidth, g.padLeft, g.inWidth, g.outWidth, unused, insideHi);
  if (g.dilationWidth != 1 || insideHi < insideLo) insideLo = insideHi = 0;
  parallelFor(static_cast<size_t>(g.batch * g.outHeight), 1, [&](size_t begin, size_t end) {
    for (size_t row = begin; row < end; ++row) {
      const int64_t b = static_cast<int64_t>(row) / g.outHeight, oy = static_cast<int64_t>(row) % g.outHeight;
      const float* image = x + b * inImage;
      float* out = y + static_cast<int64_t>(row) * g.outWidth * O;
      auto one = [&](int64_t ox, int64_t o) {
#if defined(__AVX2__) && defined(__FMA__)
        __m256 acc = _mm256_setzero_ps();
#else
        float acc = 0.0f;
#endif
        float sum = 0.0f;
        for (int64_t ky = 0; ky < g.filterHeight; ++ky) {
          const int64_t iy = inputIndex(oy, ky, g.strideHeight, g.dilationHeight, g.padTop, g.inHeight);
          if (iy < 0) continue;
          const float* wRow = w.data() + (o * taps + ky * g.filterWidth) * C;
          for (int64_t kx = 0; kx < g.filterWidth; ++kx) {
            const int64_t ix = inputIndex(ox, kx, g.strideWidth, g.dilationWidth, g.padLeft, g.inWidth);
            if (ix >= 0) sum += dot(image + (iy * g.inWidth + ix) * C, wRow + kx * C, C, &acc);
          }
        }
#if defined(__AVX2__) && defined(__FMA__)
        sum += horizontalSum(acc);
#endif
        out[ox * O + o] = sum;
      };
      for (int64_t o = 0; o < O; ++o) {
        int64_t ox = 0;
        for (; ox < insideLo; ++ox) one(ox, o);
#if defined(__AVX2__) && defined(__FMA__)
        const int64_t span = g.filterWidth * C, vectorSpan = span / 8 * 8;
        for (; ox + kBlock <= insideHi; ox += kBlock) {
          __m256 acc[kBlock];
          float tail[kBlock] = {};
          for (int64_t j = 0; j < kBlock; ++j) acc[j] = _mm256_setzero_ps();
          for (int64_t ky = 0; ky < g.filterHeight; ++ky) {
            const int64_t iy = inputIndex(oy, ky, g.strideHeight, g.dilationHeight, g.padTop, g.inHeight);
            if (iy < 0) continue;
            const float* wRow = w.data() + (o * taps + ky * g.filterWidth) * C;
            const float* in = image + (iy * g.inWidth + ox * g.strideWidth - g.padLeft) * C;
            const int64_t step = g.strideWidth * C;
            for (int64_t k = 0; k < vectorSpan; k += 8) {
              const __m256 wv = _mm256_loadu_ps(wRow + k);
              for (int64_t j = 0; j < kBlock; ++j) {
                acc[j] = _mm256_fmadd_ps(_mm256_loadu_ps(in + j * step + k), wv, acc[j]);
              }
            }
            for (int64_t k = vectorSpan; k < span; ++k) {
              for (int64_t j = 0; j < kBlock; ++j) tail[j] += in[j * step + k] * wRow[k];
            }
          }
          for (int64_t j = 0; j < kBlock; ++j) out[(ox + j) * O + o] = tail[j] + horizontalSum(acc[j]);
        }
#endif
        for (; ox < g.outWidth; ++ox) one(ox, o);
      }
    }
  });
}

void narrowConv2dBackpropFilter(const Conv2DGeometry& g, const float* x, const float* dy, float* dfilter) {
  if (singleChannelBackpropFilter(g, x, dy, dfilter)) return;
  const int64_t taps = g.filterHeight * g.filterWidth, C = g.inChannels, O = g.outChannels, size = O * taps * C;
  const int64_t inImage = g.inHeight * g.inWidth * C, outPlane = g.outHeight * g.outWidth;
  // dfilter[tap, c, o] = the sum over output positions p of x[window(p) + tap, c] * dy[p, o]: per (o, tap, 8
  // channels), over the positions whose tap lies inside the image (a rectangle), in kChains independent
  // accumulators. One partial [O, taps, C] per chunk of images, summed in chunk order.
  constexpr int64_t kChains = 4;
  const std::vector<float> total = imageSums(g.batch, size, [&](int64_t b, float* acc) {
    const float* image = x + b * inImage;
    const float* grad = dy + b * outPlane * O;
    for (int64_t tap = 0; tap < taps; ++tap) {
      const int64_t ky = tap / g.filterWidth, kx = tap % g.filterWidth;
      int64_t yLo, yHi, xLo, xHi;
      validRange(ky, g.strideHeight, g.dilationHeight, g.padTop, g.inHeight, g.outHeight, yLo, yHi);
      validRange(kx, g.strideWidth, g.dilationWidth, g.padLeft, g.inWidth, g.outWidth, xLo, xHi);
      const int64_t step = g.strideWidth * C;
      for (int64_t o = 0; o < O; ++o) {
        float* target = acc + (o * taps + tap) * C;
        int64_t c = 0;
#if defined(__AVX2__) && defined(__FMA__)
        for (; c + 8 <= C; c += 8) {
          __m256 sum[kChains];
          for (int64_t j = 0; j < kChains; ++j) sum[j] = _mm256_setzero_ps();
          for (int64_t oy = yLo; oy < yHi; ++oy) {
            const int64_t iy = oy * g.strideHeight - g.padTop + ky * g.dilationHeight;
            const int64_t ix = xLo * g.strideWidth - g.padLeft + kx * g.dilationWidth;
            const float* in = image + (iy * g.inWidth + ix) * C + c;
            const float* d = grad + (oy * g.outWidth + xLo) * O + o;
            int64_t ox = xLo;
            for (; ox + kChains <= xHi; ox += kChains, in += kChains * step, d += kChains * O) {
              for (int64_t j = 0; j < kChains; ++j) {
                sum[j] = _mm256_fmadd_ps(_mm256_set1_ps(d[j * O]), _mm256_loadu_ps(in + j * step), sum[j]);
              }
            }
            for (; ox < xHi; ++ox, in += step, d += O) {
              sum[0] = _mm256_fmadd_ps(_mm256_set1_ps(d[0]), _mm256_loadu_ps(in), sum[0]);
            }
          }
          const __m256 chains = _mm256_add_ps(_mm256_add_ps(sum[0], sum[1]), _mm256_add_ps(sum[2], sum[3]));
          _mm256_storeu_ps(target + c, _mm256_add_ps(_mm256_loadu_ps(target + c), chains));
        }
#endif
        for (; c < C; ++c) {
          float sum = 0.0f;
          for (int64_t oy = yLo; oy < yHi; ++oy) {
            const int64_t iy = oy * g.strideHeight - g.padTop + ky * g.dilationHeight;
            for (int64_t ox = xLo; ox < xHi; ++ox) {
              const int64_t ix = ox * g.strideWidth - g.padLeft + kx * g.dilationWidth;
              sum += grad[(oy * g.outWidth + ox) * O + o] * image[(iy * g.inWidth + ix) * C + c];
            }
          }
          target[c] += sum;
        }
      }
    }
  });
  for (int64_t t = 0; t < taps; ++t) {
    for (int64_t c = 0; c < C; ++c) {
      for (int64_t o = 0; o < O; ++o) dfilter[(t * C + c) * O + o] = total[(o * taps + t) * C + c];
    }
  }
}

}  // namespace pact
