#include "cpu/narrow_conv.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

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
  const int64_t taps = g.filterHeight * g.filterWidth, C = g.inChannels, O = g.outChannels, size = O * taps * C;
  const int64_t inImage = g.inHeight * g.inWidth * C, outPlane = g.outHeight * g.outWidth;
  // dfilter[tap, c, o] = the sum over output positions p of x[window(p) + tap, c] * dy[p, o]: per (o, tap, 8
  // channels), over the positions whose tap lies inside the image (a rectangle), in kChains independent
  // accumulators. One partial [O, taps, C] per chunk of images, summed in chunk order.
  constexpr int64_t kChains = 4;
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(numThreads(), g.batch));
  std::vector<float> partial(static_cast<size_t>(chunks * size), 0.0f);
  parallelFor(static_cast<size_t>(chunks), 1, [&](size_t begin, size_t end) {
    for (size_t chunk = begin; chunk < end; ++chunk) {
      float* acc = partial.data() + chunk * size;
      const int64_t first = g.batch * static_cast<int64_t>(chunk) / chunks;
      const int64_t last = g.batch * (static_cast<int64_t>(chunk) + 1) / chunks;
      for (int64_t b = first; b < last; ++b) {
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
              __m256 total = _mm256_add_ps(_mm256_add_ps(sum[0], sum[1]), _mm256_add_ps(sum[2], sum[3]));
              _mm256_storeu_ps(target + c, _mm256_add_ps(_mm256_loadu_ps(target + c), total));
            }
#endif
            for (; c < C; ++c) {
              float total = 0.0f;
              for (int64_t oy = yLo; oy < yHi; ++oy) {
                const int64_t iy = oy * g.strideHeight - g.padTop + ky * g.dilationHeight;
                for (int64_t ox = xLo; ox < xHi; ++ox) {
                  const int64_t ix = ox * g.strideWidth - g.padLeft + kx * g.dilationWidth;
                  total += grad[(oy * g.outWidth + ox) * O + o] * image[(iy * g.inWidth + ix) * C + c];
                }
              }
              target[c] += total;
            }
          }
        }
      }
    }
  });
  for (int64_t t = 0; t < taps; ++t) {
    for (int64_t c = 0; c < C; ++c) {
      for (int64_t o = 0; o < O; ++o) {
        float s = 0.0f;
        for (int64_t k = 0; k < chunks; ++k) s += partial[k * size + (o * taps + t) * C + c];
        dfilter[(t * C + c) * O + o] = s;
      }
    }
  }
}

}  // namespace pact
