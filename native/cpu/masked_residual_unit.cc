#include "cpu/masked_residual_unit.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "cpu/mask_rows.h"
#include "cpu/threads.h"

namespace pact::masked {

namespace {

// Sums fn(j, acc) over j in [0, count) into `channels` accumulators (sumShares). fn adds into float accumulators (so
// its loop vectorises), which are flushed into double every kBlockRows terms: float rounding over at most 64 terms,
// double beyond.
template <typename F>
std::vector<double> sumOver(size_t count, int64_t channels, F&& fn) {
  constexpr size_t kBlockRows = 64;
  return sumShares<double>(count, channels, [&](size_t first, size_t last, double* acc) {
    std::vector<float> block(static_cast<size_t>(channels));
    for (size_t i = first; i < last; i += kBlockRows) {
      std::fill(block.begin(), block.end(), 0.0f);
      for (size_t j = i; j < std::min(last, i + kBlockRows); ++j) fn(j, block.data());
      for (int64_t k = 0; k < channels; ++k) acc[k] += block[k];
    }
  });
}

// sumOver the active rows: fn(row, acc).
template <typename F>
std::vector<double> sumOverRows(const std::vector<int64_t>& active, int64_t channels, F&& fn) {
  return sumOver(active.size(), channels, [&](size_t j, float* acc) { fn(active[j], acc); });
}

// One row of the gradient's sums: acc[k] += g, acc[channels + k] += g * (x - mean) * rstd, g = dy where y > 0.
// Restrict-qualified and branch-free so that gcc vectorises it (the select through a lambda's captures did not:
// 10 ms for 2M elements, five times the forward).
void gradientSumsRow(const float* __restrict dy, const float* __restrict x, const float* __restrict y,
                     const float* __restrict mean, const float* __restrict rstd, int64_t channels,
                     float* __restrict acc) {
  float* __restrict accX = acc + channels;
  for (int64_t k = 0; k < channels; ++k) {
    const float d = dy[k];  // loaded unconditionally: `y > 0 ? dy : 0` compiled to a masked load (vmaskmovps), slow
    const float g = y[k] > 0.0f ? d : 0.0f;
    acc[k] += g;
    accX[k] += g * ((x[k] - mean[k]) * rstd[k]);
  }
}

// One row of dx = u * g + v * (x - mean) + w, g = dy where y > 0 (centred first, as the forward does: exact to
// rounding when |mean| is large against the deviation).
void gradientRow(const float* __restrict dy, const float* __restrict x, const float* __restrict y,
                 const float* __restrict mean, const float* __restrict u, const float* __restrict v,
                 const float* __restrict w, int64_t channels, float* __restrict dx) {
  for (int64_t k = 0; k < channels; ++k) {
    const float d = dy[k];  // as above
    const float g = y[k] > 0.0f ? d : 0.0f;
    dx[k] = u[k] * g + v[k] * (x[k] - mean[k]) + w[k];
  }
}

// The sequential forms of the two rows above for a row whose mask value is m: as they are where m > 0, zero
// contributions (and dx = 0) where not, masked bitwise so that whatever dy, x, y hold there gives exactly 0.
inline uint32_t keepBits(float m) { return isActive(m) ? ~uint32_t{0} : 0; }

inline float maskFloat(float v, uint32_t keep) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof(bits));
  bits &= keep;
  std::memcpy(&v, &bits, sizeof(bits));
  return v;
}

void gradientSumsRowMasked(const float* __restrict dy, const float* __restrict x, const float* __restrict y,
                           const float* __restrict mean, const float* __restrict rstd, float m, int64_t channels,
                           float* __restrict acc) {
  const uint32_t keep = keepBits(m);
  float* __restrict accX = acc + channels;
  int64_t k = 0;
#if defined(__AVX2__)
  const __m256 keepV = _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(keep)));
  for (; k + 8 <= channels; k += 8) {
    const __m256 pass = _mm256_and_ps(_mm256_cmp_ps(_mm256_loadu_ps(y + k), _mm256_setzero_ps(), _CMP_GT_OQ), keepV);
    const __m256 g = _mm256_and_ps(_mm256_loadu_ps(dy + k), pass);
    const __m256 xhat = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + k), _mm256_loadu_ps(mean + k)),
                                      _mm256_loadu_ps(rstd + k));
    _mm256_storeu_ps(acc + k, _mm256_add_ps(_mm256_loadu_ps(acc + k), g));
    _mm256_storeu_ps(accX + k, _mm256_add_ps(_mm256_loadu_ps(accX + k), _mm256_and_ps(_mm256_mul_ps(g, xhat), pass)));
  }
#endif
  for (; k < channels; ++k) {
    const float g = maskFloat(y[k] > 0.0f ? dy[k] : 0.0f, keep);
    acc[k] += g;
    accX[k] += maskFloat(g * ((x[k] - mean[k]) * rstd[k]), keep);
  }
}

void gradientRowMasked(const float* __restrict dy, const float* __restrict x, const float* __restrict y,
                       const float* __restrict mean, const float* __restrict u, const float* __restrict v,
                       const float* __restrict w, float m, int64_t channels, float* __restrict dx) {
  const uint32_t keep = keepBits(m);
  int64_t k = 0;
#if defined(__AVX2__)
  const __m256 keepV = _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(keep)));
  for (; k + 8 <= channels; k += 8) {
    const __m256 pass = _mm256_cmp_ps(_mm256_loadu_ps(y + k), _mm256_setzero_ps(), _CMP_GT_OQ);
    const __m256 g = _mm256_and_ps(_mm256_loadu_ps(dy + k), pass);
    const __m256 centred = _mm256_sub_ps(_mm256_loadu_ps(x + k), _mm256_loadu_ps(mean + k));
    const __m256 d = _mm256_add_ps(_mm256_fmadd_ps(_mm256_loadu_ps(u + k), g,
                                                   _mm256_mul_ps(_mm256_loadu_ps(v + k), centred)),
                                   _mm256_loadu_ps(w + k));
    _mm256_storeu_ps(dx + k, _mm256_and_ps(d, keepV));
  }
#endif
  for (; k < channels; ++k) {
    const float g = y[k] > 0.0f ? dy[k] : 0.0f;
    dx[k] = maskFloat(u[k] * g + v[k] * (x[k] - mean[k]) + w[k], keep);
  }
}

// y = relu(a * x + b) at rows row(0), ..., row(count - 1).
template <typename Row>
void affineReluRows(const float* x, size_t count, Row&& row, int64_t channels, const float* a, const float* b,
                    float* y) {
  parallelFor(count, 256, [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      const float* in = x + row(i) * channels;
      float* out = y + row(i) * channels;
      // std::max(v, 0) keeps a NaN (as tf.relu does); std::max(0, v) would make it 0.
      for (int64_t k = 0; k < channels; ++k) out[k] = std::max(a[k] * in[k] + b[k], 0.0f);
    }
  });
}

// The same at the active rows.
void affineReluRows(const float* x, const std::vector<int64_t>& active, int64_t channels, const float* a,
                    const float* b, float* y) {
  affineReluRows(x, active.size(), [&](size_t i) { return active[i]; }, channels, a, b, y);
}

// From this active fraction on, the masked batch norm's passes (forward, gradient, evaluation) run over every row
// in order, the inactive ones masked off bitwise (whatever x, dy or y hold there gives exactly 0), instead of
// gathering the active rows and clearing the others: sequential reads beat scattered ones. Same-process A/B at
// 128x32x32x16, caches cold: forward 0.61-0.80x the time at d = 0.3-0.6 (pixel and 4x4-block masks), gradient
// 0.64-0.93x; below, the gathered passes win (forward 1.1-1.3x slower sequential at d <= 0.05, 4x4 blocks at
// d = 0.15 1.08x, gradient 1.37x).
constexpr double kSequentialFraction = 0.25;

// acc[k] += v, acc[channels + k] += v * v for v = row - shift where m > 0, 0 elsewhere (bitwise: NaN-proof).
inline void momentsRowMasked(const float* __restrict row, const float* __restrict shift, float m, int64_t channels,
                             float* __restrict acc) {
  const uint32_t keep = keepBits(m);
  int64_t k = 0;
#if defined(__AVX2__)
  const __m256 keepV = _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(keep)));
  for (; k + 8 <= channels; k += 8) {
    const __m256 v = _mm256_and_ps(_mm256_sub_ps(_mm256_loadu_ps(row + k), _mm256_loadu_ps(shift + k)), keepV);
    _mm256_storeu_ps(acc + k, _mm256_add_ps(_mm256_loadu_ps(acc + k), v));
    _mm256_storeu_ps(acc + channels + k, _mm256_fmadd_ps(v, v, _mm256_loadu_ps(acc + channels + k)));
  }
#endif
  for (; k < channels; ++k) {
    const float v = maskFloat(row[k] - shift[k], keep);
    acc[k] += v;
    acc[channels + k] += v * v;
  }
}

#if defined(__AVX2__)
// The sequential passes' sums with the accumulators in registers (the row-at-a-time form above keeps them in memory:
// every row's adds wait on the previous row's stores): rows in chunks of kRegisterRows per share (sumShares),
// channels in groups of VC vectors of 8, each group's float sums added into acc (double [2 * channels]) after each
// chunk.
// body(r, c, sum, second) adds row r's contributions of the 8 * VC channels from c into sum[VC] and second[VC].
constexpr size_t kRegisterRows = 64;

template <int VC, typename Body>
std::vector<double> sumSequential(int64_t rows, int64_t channels, Body&& body) {
  const auto rowCount = static_cast<size_t>(rows);
  return sumShares<double>(rowCount, 2 * channels, [&](size_t first, size_t last, double* acc) {
    for (size_t i = first; i < last; i += kRegisterRows) {
      const size_t stop = std::min(last, i + kRegisterRows);
      for (int64_t c = 0; c < channels; c += 8 * VC) {
        __m256 sum[VC], second[VC];
        for (int j = 0; j < VC; ++j) sum[j] = second[j] = _mm256_setzero_ps();
        for (size_t r = i; r < stop; ++r) body(r, c, sum, second);
        alignas(32) float out[2][8 * VC];
        for (int j = 0; j < VC; ++j) {
          _mm256_store_ps(out[0] + 8 * j, sum[j]);
          _mm256_store_ps(out[1] + 8 * j, second[j]);
        }
        for (int k = 0; k < 8 * VC; ++k) {
          acc[c + k] += out[0][k];
          acc[channels + c + k] += out[1][k];
        }
      }
    }
  });
}

// The forward's moments over every row in order (momentsRowMasked's sums), channels a multiple of 8 * VC.
template <int VC>
std::vector<double> momentsSequential(const float* x, const float* mask, const float* shift, int64_t rows,
                                     int64_t channels) {
  return sumSequential<VC>(rows, channels, [&](size_t r, int64_t c, __m256* sum, __m256* second) {
    const __m256 keep = _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(keepBits(mask[r]))));
    const float* row = x + r * channels + c;
    for (int j = 0; j < VC; ++j) {
      const __m256 v = _mm256_and_ps(_mm256_sub_ps(_mm256_loadu_ps(row + 8 * j), _mm256_loadu_ps(shift + c + 8 * j)),
                                     keep);
      sum[j] = _mm256_add_ps(sum[j], v);
      second[j] = _mm256_fmadd_ps(v, v, second[j]);
    }
  });
}

// The gradient's sums over every row in order (gradientSumsRowMasked's), channels a multiple of 8 * VC.
template <int VC>
std::vector<double> gradientSumsSequential(const float* dy, const float* x, const float* y, const float* mask,
                                           const float* mean, const float* rstd, int64_t rows, int64_t channels) {
  return sumSequential<VC>(rows, channels, [&](size_t r, int64_t c, __m256* sum, __m256* second) {
    const __m256 keep = _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(keepBits(mask[r]))));
    const size_t at = r * static_cast<size_t>(channels) + static_cast<size_t>(c);
    for (int j = 0; j < VC; ++j) {
      const __m256 pass =
          _mm256_and_ps(_mm256_cmp_ps(_mm256_loadu_ps(y + at + 8 * j), _mm256_setzero_ps(), _CMP_GT_OQ), keep);
      const __m256 g = _mm256_and_ps(_mm256_loadu_ps(dy + at + 8 * j), pass);
      const __m256 centred = _mm256_sub_ps(_mm256_loadu_ps(x + at + 8 * j), _mm256_loadu_ps(mean + c + 8 * j));
      const __m256 xhat = _mm256_mul_ps(centred, _mm256_loadu_ps(rstd + c + 8 * j));
      sum[j] = _mm256_add_ps(sum[j], g);
      second[j] = _mm256_add_ps(second[j], _mm256_and_ps(_mm256_mul_ps(g, xhat), pass));
    }
  });
}
#endif

// y = relu(a * x + b) at the rows where mask > 0 and exactly 0 at the others, in one sequential pass over every row
// (branch-free: the inactive rows' results are masked off bitwise, so a NaN in x there still gives 0).
void affineReluMaskedRows(const float* x, const float* mask, int64_t rows, int64_t channels, const float* a,
                          const float* b, float* y) {
  parallelFor(static_cast<size_t>(rows), 256, [&](size_t begin, size_t end) {
    for (size_t r = begin; r < end; ++r) {
      const uint32_t keep = keepBits(mask[r]);
      const float* __restrict in = x + r * channels;
      float* __restrict out = y + r * channels;
      int64_t k = 0;
#if defined(__AVX2__)
      const __m256 keepV = _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(keep)));
      for (; k + 8 <= channels; k += 8) {
        const __m256 v = _mm256_fmadd_ps(_mm256_loadu_ps(a + k), _mm256_loadu_ps(in + k), _mm256_loadu_ps(b + k));
        // max_ps returns its second operand when either is NaN: v, so a NaN at an active row stays NaN.
        _mm256_storeu_ps(out + k, _mm256_and_ps(_mm256_max_ps(_mm256_setzero_ps(), v), keepV));
      }
#endif
      for (; k < channels; ++k) out[k] = maskFloat(std::max(a[k] * in[k] + b[k], 0.0f), keep);
    }
  });
}

}  // namespace

void maskedBatchNormRelu(const float* x, const float* mask, int64_t rows, int64_t channels, const float* scale,
                         const float* offset, float epsilon, float* y, float* mean, float* variance) {
  const ActiveCounts counts = countActiveShares(mask, rows);
  const double n = static_cast<double>(counts.total());
  if (counts.total() == 0) {
    zeroInactiveRows(mask, rows, channels, y);
    std::fill(mean, mean + channels, 0.0f);
    std::fill(variance, variance + channels, 0.0f);
    return;
  }
  // Where at least kSequentialFraction of the rows are active, the passes run over every row in order (see there),
  // and need no list of the active rows.
  const bool sequential = n >= kSequentialFraction * static_cast<double>(rows);
  const std::vector<int64_t> active = sequential ? std::vector<int64_t>{} : activeIndices(counts);
  int64_t firstActive = sequential ? 0 : active[0];
  while (!isActive(mask[firstActive])) ++firstActive;
  // One pass for both moments: sums of x and x^2 in double (E[x^2] - mean^2 loses nothing that matters in double
  // at batch-norm scales), in two halves of one accumulator.
  // Shifted by the first active row (a per-channel constant), so that E[(x-s)^2] - E[x-s]^2 cancels little.
  const float* shift = x + firstActive * channels;
  const auto sequentialSums = [&] {
#if defined(__AVX2__)
    if (channels % 32 == 0) return momentsSequential<4>(x, mask, shift, rows, channels);
    if (channels % 16 == 0) return momentsSequential<2>(x, mask, shift, rows, channels);
    if (channels % 8 == 0) return momentsSequential<1>(x, mask, shift, rows, channels);
#endif
    return sumOver(static_cast<size_t>(rows), 2 * channels, [&](size_t r, float* acc) {
      momentsRowMasked(x + r * channels, shift, mask[r], channels, acc);
    });
  };
  const std::vector<double> sums =
      sequential ? sequentialSums()
                 : sumOverRows(active, 2 * channels, [&](int64_t r, float* acc) {
                     const float* row = x + r * channels;
                     for (int64_t k = 0; k < channels; ++k) {
                       const float v = row[k] - shift[k];
                       acc[k] += v;
                       acc[channels + k] += v * v;
                     }
                   });
  std::vector<double> squares(channels);
  for (int64_t k = 0; k < channels; ++k) {
    const double m = sums[k] / n;
    mean[k] = static_cast<float>(m + shift[k]);
    squares[k] = std::max(0.0, sums[channels + k] / n - m * m) * n;
  }
  std::vector<float> a(channels), b(channels);  // y = relu(a * x + b)
  for (int64_t k = 0; k < channels; ++k) {
    variance[k] = static_cast<float>(squares[k] / n);
    a[k] = scale[k] / std::sqrt(variance[k] + epsilon);
    b[k] = offset[k] - mean[k] * a[k];
  }
  if (sequential) return affineReluMaskedRows(x, mask, rows, channels, a.data(), b.data(), y);
  zeroInactiveRows(mask, rows, channels, y);
  affineReluRows(x, active, channels, a.data(), b.data(), y);
}

void maskedBatchNormReluInference(const float* x, const float* mask, int64_t rows, int64_t channels,
                                  const float* scale, const float* offset, const float* mean, const float* variance,
                                  float epsilon, float* y) {
  std::vector<float> a(channels), b(channels);  // y = relu(a * x + b)
  for (int64_t k = 0; k < channels; ++k) {
    a[k] = scale[k] / std::sqrt(variance[k] + epsilon);
    b[k] = offset[k] - mean[k] * a[k];
  }
  if (mask == nullptr) {
    const auto all = [](size_t i) { return static_cast<int64_t>(i); };
    return affineReluRows(x, static_cast<size_t>(rows), all, channels, a.data(), b.data(), y);
  }
  const ActiveCounts counts = countActiveShares(mask, rows);
  if (static_cast<double>(counts.total()) >= kSequentialFraction * static_cast<double>(rows)) {
    return affineReluMaskedRows(x, mask, rows, channels, a.data(), b.data(), y);
  }
  zeroInactiveRows(mask, rows, channels, y);
  affineReluRows(x, activeIndices(counts), channels, a.data(), b.data(), y);
}

void maskedBatchNormReluGrad(const float* dy, const float* x, const float* mask, const float* y, int64_t rows,
                             int64_t channels, const float* scale, const float* mean, const float* variance,
                             float epsilon, float* dx, float* dscale, float* doffset) {
  const ActiveCounts counts = countActiveShares(mask, rows);
  const double n = static_cast<double>(counts.total());
  // Over every row in order where at least kSequentialFraction of them are active (as in the forward).
  const bool sequential = n >= kSequentialFraction * static_cast<double>(rows);
  const std::vector<int64_t> active = sequential ? std::vector<int64_t>{} : activeIndices(counts);
  if (!sequential) zeroInactiveRows(mask, rows, channels, dx);
  std::vector<float> rstd(channels);
  for (int64_t k = 0; k < channels; ++k) rstd[k] = 1.0f / std::sqrt(variance[k] + epsilon);
  // g = dy where the ReLU passed; sums of g and g * xhat over the active rows, in two halves of one accumulator.
  const auto sequentialSums = [&] {
#if defined(__AVX2__)
    if (channels % 32 == 0) return gradientSumsSequential<4>(dy, x, y, mask, mean, rstd.data(), rows, channels);
    if (channels % 16 == 0) return gradientSumsSequential<2>(dy, x, y, mask, mean, rstd.data(), rows, channels);
    if (channels % 8 == 0) return gradientSumsSequential<1>(dy, x, y, mask, mean, rstd.data(), rows, channels);
#endif
    return sumOver(static_cast<size_t>(rows), 2 * channels, [&](size_t r, float* acc) {
      const size_t at = r * static_cast<size_t>(channels);
      gradientSumsRowMasked(dy + at, x + at, y + at, mean, rstd.data(), mask[r], channels, acc);
    });
  };
  const std::vector<double> sums =
      sequential
          ? sequentialSums()
          : sumOverRows(active, 2 * channels, [&](int64_t r, float* acc) {
              gradientSumsRow(dy + r * channels, x + r * channels, y + r * channels, mean, rstd.data(), channels,
                              acc);
            });
  std::vector<float> meanG(channels), meanGx(channels);
  for (int64_t k = 0; k < channels; ++k) {
    doffset[k] = static_cast<float>(sums[k]);
    dscale[k] = static_cast<float>(sums[channels + k]);
    meanG[k] = n == 0 ? 0.0f : static_cast<float>(sums[k] / n);
    meanGx[k] = n == 0 ? 0.0f : static_cast<float>(sums[channels + k] / n);
  }
  // dx = scale * rstd * (g - mean(g) - xhat * mean(g * xhat)) at the active rows, as u * g + v * (x - mean) + w.
  std::vector<float> u(channels), v(channels), w(channels);
  for (int64_t k = 0; k < channels; ++k) {
    u[k] = scale[k] * rstd[k];
    v[k] = -u[k] * rstd[k] * meanGx[k];
    w[k] = -u[k] * meanG[k];
  }
  if (sequential) {
    parallelFor(static_cast<size_t>(rows), 256, [&](size_t begin, size_t end) {
      for (size_t r = begin; r < end; ++r) {
        const size_t at = r * static_cast<size_t>(channels);
        gradientRowMasked(dy + at, x + at, y + at, mean, u.data(), v.data(), w.data(), mask[r], channels, dx + at);
      }
    });
    return;
  }
  parallelFor(active.size(), 256, [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      const int64_t r = active[i];
      gradientRow(dy + r * channels, x + r * channels, y + r * channels, mean, u.data(), v.data(), w.data(), channels,
                  dx + r * channels);
    }
  });
}

namespace {

constexpr size_t kRowsPerTask = 512;

void scaledAddRow(const float* __restrict u, const float* __restrict c, float a, int64_t channels,
                  float* __restrict y) {
  for (int64_t k = 0; k < channels; ++k) y[k] = u[k] + c[k] * a;
}

float scaledRowGrad(const float* __restrict dy, const float* __restrict c, float a, int64_t channels,
                    float* __restrict dc) {
  float dot = 0.0f;
  for (int64_t k = 0; k < channels; ++k) {
    dc[k] = dy[k] * a;
    dot += dy[k] * c[k];
  }
  return dot;
}

}  // namespace

void scaledResidualAdd(const float* u, const float* c, const float* a, int64_t rows, int64_t channels, float* y) {
  parallelFor(static_cast<size_t>(rows), kRowsPerTask, [&](size_t begin, size_t end) {
    for (size_t r = begin; r < end; ++r) {
      const size_t at = r * static_cast<size_t>(channels);
      scaledAddRow(u + at, c + at, a[r], channels, y + at);
    }
  });
}

void scaledResidualAddGrad(const float* dy, const float* c, const float* a, int64_t rows, int64_t channels,
                           float* dc, float* da) {
  parallelFor(static_cast<size_t>(rows), kRowsPerTask, [&](size_t begin, size_t end) {
    for (size_t r = begin; r < end; ++r) {
      const size_t at = r * static_cast<size_t>(channels);
      da[r] = scaledRowGrad(dy + at, c + at, a[r], channels, dc + at);
    }
  });
}

}  // namespace pact::masked
