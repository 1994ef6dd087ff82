#include "cpu/batch_norm.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/threads.h"

namespace pact {

namespace {

// Below this many elements a block of rows is not worth a thread (the loops run at several GB/s).
constexpr size_t kMinBlockElements = 1 << 15;

struct RowBlocks {
  size_t count;
  size_t rows;
  size_t begin(size_t b) const { return rows * b / count; }
  size_t end(size_t b) const { return rows * (b + 1) / count; }
};

RowBlocks rowBlocks(size_t rows, size_t channels) {
  const size_t byWork = std::max<size_t>(1, rows * channels / kMinBlockElements);
  return {std::max<size_t>(1, std::min({static_cast<size_t>(numThreads()), byWork, rows})), rows};
}

// Sums per-channel double partials [blocks][width] into out[width].
void reducePartials(const std::vector<double>& partial, size_t blocks, size_t width, std::vector<double>& out) {
  out.assign(width, 0.0);
  for (size_t b = 0; b < blocks; ++b) {
    const double* p = partial.data() + b * width;
    for (size_t k = 0; k < width; ++k) out[k] += p[k];
  }
}

// y[r, c] = (x[r, c] - center[c]) * a[c] + b[c], optionally clamped at 0; parallel over rows. Centering first
// (rather than folding center into b) keeps y exact to rounding when |mean| is large against the deviation.
void affineRows(const float* x, size_t rows, size_t channels, const float* center, const float* a, const float* b,
                bool relu, float* y) {
  const RowBlocks blocks = rowBlocks(rows, channels);
  parallelFor(blocks.count, 1, [&](size_t b0, size_t b1) {
    for (size_t r = blocks.begin(b0); r < blocks.end(b1 - 1); ++r) {
      const float* xr = x + r * channels;
      float* yr = y + r * channels;
      if (relu) {
        for (size_t c = 0; c < channels; ++c) yr[c] = std::max((xr[c] - center[c]) * a[c] + b[c], 0.0f);
      } else {
        for (size_t c = 0; c < channels; ++c) yr[c] = (xr[c] - center[c]) * a[c] + b[c];
      }
    }
  });
}

// s1[c] += sum of g, s2[c] += sum of g * (x - mean[c]) over `size / channels` rows, g = dy, or dy where y > 0
// when y is given (the ReLU's mask, applied row by row into a small buffer: gcc vectorizes neither a select
// nor a multiplication by the mask inside the double-accumulating loop).
void gradientSums(const float* __restrict dy, const float* __restrict x, const float* __restrict y,
                  const float* __restrict mean, size_t size, size_t channels, double* __restrict s1,
                  double* __restrict s2) {
  std::vector<float> masked(y == nullptr ? 0 : channels);
  for (size_t r = 0; r < size; r += channels) {
    const float* g = dy + r;
    if (y != nullptr) {
      float* m = masked.data();
      for (size_t c = 0; c < channels; ++c) {
        const float d = g[c];  // loaded unconditionally: the select compiled to a masked load (vmaskmovps), slow
        m[c] = y[r + c] > 0.0f ? d : 0.0f;
      }
      g = m;
    }
    for (size_t c = 0; c < channels; ++c) {
      s1[c] += static_cast<double>(g[c]);
      s2[c] += static_cast<double>(g[c]) * (static_cast<double>(x[r + c]) - static_cast<double>(mean[c]));
    }
  }
}

}  // namespace

void batchNormTrain(const float* x, const float* scale, const float* offset, size_t rows, size_t channels,
                    float epsilon, bool relu, float* y, float* mean, float* variance) {
  // Sums of (x - shift) and its square, shifted by the first row so that a large mean does not cancel the
  // variance's digits (one pass over x for both moments).
  const float* shift = x;
  const RowBlocks blocks = rowBlocks(rows, channels);
  std::vector<double> partial(blocks.count * 2 * channels, 0.0);
  parallelFor(blocks.count, 1, [&](size_t b0, size_t b1) {
    for (size_t b = b0; b < b1; ++b) {
      double* s1 = partial.data() + b * 2 * channels;
      double* s2 = s1 + channels;
      for (size_t r = blocks.begin(b); r < blocks.end(b); ++r) {
        const float* xr = x + r * channels;
        for (size_t c = 0; c < channels; ++c) {
          const double d = static_cast<double>(xr[c]) - static_cast<double>(shift[c]);
          s1[c] += d;
          s2[c] += d * d;
        }
      }
    }
  });
  std::vector<double> sums;
  reducePartials(partial, blocks.count, 2 * channels, sums);

  std::vector<float> a(channels);
  const double n = static_cast<double>(rows);
  for (size_t c = 0; c < channels; ++c) {
    const double m1 = sums[c] / n;
    const double var = std::max(0.0, sums[channels + c] / n - m1 * m1);
    const double mu = m1 + static_cast<double>(shift[c]);
    const double invStd = 1.0 / std::sqrt(var + static_cast<double>(epsilon));
    mean[c] = static_cast<float>(mu);
    variance[c] = static_cast<float>(var);
    a[c] = static_cast<float>(scale[c] * invStd);
  }
  affineRows(x, rows, channels, mean, a.data(), offset, relu, y);
}

void batchNormTrainGrad(const float* dy, const float* dmean, const float* dvariance, const float* x,
                        const float* scale, const float* mean, const float* variance, const float* y, size_t rows,
                        size_t channels, float epsilon, bool relu, float* dx, float* dscale, float* doffset) {
  // Pass 1: s1 = sum(g), s2 = sum(g * (x - mean)), g = dy masked by the ReLU.
  const RowBlocks blocks = rowBlocks(rows, channels);
  std::vector<double> partial(blocks.count * 2 * channels, 0.0);
  parallelFor(blocks.count, 1, [&](size_t b0, size_t b1) {
    for (size_t b = b0; b < b1; ++b) {
      double* s1 = partial.data() + b * 2 * channels;
      double* s2 = s1 + channels;
      const size_t begin = blocks.begin(b) * channels;
      const size_t end = blocks.end(b) * channels;
      gradientSums(dy + begin, x + begin, relu ? y + begin : nullptr, mean, end - begin, channels, s1, s2);
    }
  });
  std::vector<double> sums;
  reducePartials(partial, blocks.count, 2 * channels, sums);

  // Pass 2: dx = g * a + (x - mean) * k + b, the closed form of
  //   scale*invStd*(g - s1/n - xhat*sum(g*xhat)/n) + dmean/n + dvariance*2*(x - mean)/n.
  std::vector<float> a(channels), k(channels), b(channels);
  const double n = static_cast<double>(rows);
  for (size_t c = 0; c < channels; ++c) {
    const double invStd = 1.0 / std::sqrt(static_cast<double>(variance[c]) + static_cast<double>(epsilon));
    const double ac = scale[c] * invStd;
    const double kc = -ac * invStd * invStd * sums[channels + c] / n + 2.0 * dvariance[c] / n;
    const double constant = -ac * sums[c] / n + dmean[c] / n;
    a[c] = static_cast<float>(ac);
    k[c] = static_cast<float>(kc);
    b[c] = static_cast<float>(constant);
    dscale[c] = static_cast<float>(sums[channels + c] * invStd);
    doffset[c] = static_cast<float>(sums[c]);
  }
  parallelFor(blocks.count, 1, [&](size_t b0, size_t b1) {
    for (size_t r = blocks.begin(b0); r < blocks.end(b1 - 1); ++r) {
      const float* dyr = dy + r * channels;
      const float* xr = x + r * channels;
      float* dxr = dx + r * channels;
      if (relu) {
        const float* yr = y + r * channels;
        for (size_t c = 0; c < channels; ++c) {
          const float d = dyr[c];  // as in gradientSums
          const float g = yr[c] > 0.0f ? d : 0.0f;
          dxr[c] = g * a[c] + (xr[c] - mean[c]) * k[c] + b[c];
        }
      } else {
        for (size_t c = 0; c < channels; ++c) dxr[c] = dyr[c] * a[c] + (xr[c] - mean[c]) * k[c] + b[c];
      }
    }
  });
}

void batchNormInference(const float* x, size_t rows, size_t channels, ChannelParam mean, ChannelParam variance,
                        ChannelParam scale, ChannelParam offset, float epsilon, float* y) {
  auto at = [](ChannelParam p, size_t c, float none) {
    if (p.data == nullptr) return none;
    return p.length == 1 ? p.data[0] : p.data[c];
  };
  std::vector<float> m(channels), a(channels), b(channels);
  for (size_t c = 0; c < channels; ++c) {
    // tfjs-backend-cpu's formula: (x - mean) * scale / sqrt(variance + epsilon) + offset.
    m[c] = at(mean, c, 0.0f);
    a[c] = at(scale, c, 1.0f) / std::sqrt(at(variance, c, 0.0f) + epsilon);
    b[c] = at(offset, c, 0.0f);
  }
  affineRows(x, rows, channels, m.data(), a.data(), b.data(), false, y);
}

}  // namespace pact
