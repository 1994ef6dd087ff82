// Training-mode batch norm on the device (batch_norm.cuh).
#include <cuda_runtime.h>

#include <algorithm>
#include <stdexcept>

#include "cuda/batch_norm.cuh"
#include "cuda/launch.h"
#include "cuda/memory.cuh"

namespace pact::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 4096;
constexpr int64_t kSpanBlocks = 1024;  // about this many blocks for the sums
constexpr int64_t kMaxSpans = 65535;

int blocksFor(int64_t items) { return gridStrideBlocks(items, kThreads, kMaxBlocks); }

// What a pass sums per element of an active row (mask > 0, or every row without a mask), two sums per channel,
// and the active rows counted:
//   kMoments:  d = x - center and d^2 (center: row 0 without a mask, so that a large mean does not cancel the
//              variance's digits; 0 with one, where row 0 may be inactive and hold anything);
//   kGradient: g and g * (x - mean), g = dy, zeroed where y <= 0 with ReLU.
enum class Pass { kMoments, kGradient };

struct SumInputs {
  const float* x;
  const float* center;  // per channel (kMoments: row 0 or null for 0; kGradient: the batch mean)
  const float* dy;
  const float* y;  // ReLU's output, or null
  const float* mask;
};

__device__ inline bool activeRow(const float* mask, int64_t r) { return mask == nullptr || mask[r] > 0.0f; }

// Block (bx, s): channels bx*width .. +width (width = min(channels, 32) lanes) times kThreads / width rows striding
// through span s of the rows; rows combined in order; partial[s, 0..2, c] = the two sums and the active count.
template <Pass P>
__global__ void sumsKernel(SumInputs in, int64_t rows, int64_t channels, int64_t span, double* partial) {
  __shared__ double first[kThreads];
  __shared__ double second[kThreads];
  __shared__ double counted[kThreads];
  const int width = channels < 32 ? static_cast<int>(channels) : 32;
  const int rowsPer = kThreads / width;
  const int lane = threadIdx.x % width, row = threadIdx.x / width;
  const int64_t c = static_cast<int64_t>(blockIdx.x) * width + lane, s = blockIdx.y;
  const int64_t end = (s + 1) * span < rows ? (s + 1) * span : rows;
  double a = 0.0, b = 0.0, n = 0.0;
  if (row < rowsPer && c < channels) {
    const double center = in.center == nullptr ? 0.0 : static_cast<double>(in.center[c]);
    for (int64_t r = s * span + row; r < end; r += rowsPer) {
      if (!activeRow(in.mask, r)) continue;
      const int64_t e = r * channels + c;
      const double d = static_cast<double>(in.x[e]) - center;
      n += 1.0;
      if (P == Pass::kMoments) {
        a += d;
        b += d * d;
      } else {
        const double g = in.y != nullptr && !(in.y[e] > 0.0f) ? 0.0 : static_cast<double>(in.dy[e]);
        a += g;
        b += g * d;
      }
    }
  }
  first[threadIdx.x] = a;
  second[threadIdx.x] = b;
  counted[threadIdx.x] = n;
  __syncthreads();
  if (row == 0 && c < channels) {
    for (int k = 1; k < rowsPer; ++k) {
      a += first[k * width + lane];
      b += second[k * width + lane];
      n += counted[k * width + lane];
    }
    partial[(s * 3) * channels + c] = a;
    partial[(s * 3 + 1) * channels + c] = b;
    partial[(s * 3 + 2) * channels + c] = n;
  }
}

// The three sums of channel c over all spans: lane l adds spans l, l + 32, ..., then a fixed shuffle tree; the
// result is in lane 0.
__device__ inline void sumSpans(const double* partial, int64_t spans, int64_t channels, int64_t c, int lane,
                                double (&sums)[3]) {
  for (int k = 0; k < 3; ++k) sums[k] = 0.0;
  for (int64_t s = lane; s < spans; s += 32) {
    for (int k = 0; k < 3; ++k) sums[k] += partial[(s * 3 + k) * channels + c];
  }
  for (int d = 16; d > 0; d /= 2) {
    for (int k = 0; k < 3; ++k) sums[k] += __shfl_down_sync(0xffffffffu, sums[k], d);
  }
}

// One warp per channel: mean, biased variance over the active rows, and scale / sqrt(variance + epsilon) (all 0
// with no active row).
__global__ void momentsKernel(const double* partial, int64_t spans, int64_t channels, const float* center,
                              const float* scale, float epsilon, float* mean, float* variance, float* coef) {
  const int lane = threadIdx.x % 32;
  const int64_t warps = gridDim.x * static_cast<int64_t>(blockDim.x) / 32;
  for (int64_t c = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) / 32; c < channels; c += warps) {
    double sums[3];
    sumSpans(partial, spans, channels, c, lane, sums);
    if (lane != 0) continue;
    const double n = sums[2];
    if (n == 0.0) {
      mean[c] = variance[c] = coef[c] = 0.0f;
      continue;
    }
    const double m1 = sums[0] / n, var = fmax(0.0, sums[1] / n - m1 * m1);
    mean[c] = static_cast<float>(m1 + (center == nullptr ? 0.0 : static_cast<double>(center[c])));
    variance[c] = static_cast<float>(var);
    coef[c] = static_cast<float>(scale[c] / sqrt(var + static_cast<double>(epsilon)));
  }
}

// y = (x - mean) * coef + offset (then ReLU) at the active rows, 0 elsewhere. coef null: scale[c] / sqrt(variance[c]
// + epsilon) computed here (evaluation, given statistics).
__global__ void affineKernel(const float* x, const float* mask, const float* mean, const float* coef,
                             const float* scale, const float* variance, float epsilon, const float* offset,
                             int64_t total, int64_t channels, bool relu, float* y) {
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t c = e % channels;
    if (!activeRow(mask, e / channels)) {
      y[e] = 0.0f;
      continue;
    }
    const float a = coef != nullptr ? coef[c] : scale[c] / sqrtf(variance[c] + epsilon);
    const float v = (x[e] - mean[c]) * a + offset[c];
    y[e] = relu && !(v > 0.0f) ? 0.0f : v;
  }
}

// One warp per channel: dscale, doffset, and dx = g * a + (x - mean) * k + b's coefficients (cpu/batch_norm.cc's
// closed form of scale*invStd*(g - s1/n - xhat*sum(g*xhat)/n) + dmean/n + dvariance*2*(x - mean)/n, n the active
// rows; dmean and dvariance null for 0).
__global__ void gradientCoefficientsKernel(const double* partial, int64_t spans, int64_t channels,
                                           const float* dmean, const float* dvariance, const float* scale,
                                           const float* variance, float epsilon, float* dscale, float* doffset,
                                           float* coef) {
  const int lane = threadIdx.x % 32;
  const int64_t warps = gridDim.x * static_cast<int64_t>(blockDim.x) / 32;
  for (int64_t c = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) / 32; c < channels; c += warps) {
    double sums[3];
    sumSpans(partial, spans, channels, c, lane, sums);
    if (lane != 0) continue;
    const double s1 = sums[0], s2 = sums[1], n = sums[2] > 0.0 ? sums[2] : 1.0;
    const double invStd = 1.0 / sqrt(static_cast<double>(variance[c]) + static_cast<double>(epsilon));
    const double ac = scale[c] * invStd;
    const double dm = dmean == nullptr ? 0.0 : dmean[c], dv = dvariance == nullptr ? 0.0 : dvariance[c];
    coef[c] = static_cast<float>(ac);
    coef[channels + c] = static_cast<float>(-ac * invStd * invStd * s2 / n + 2.0 * dv / n);
    coef[2 * channels + c] = static_cast<float>(-ac * s1 / n + dm / n);
    dscale[c] = static_cast<float>(s2 * invStd);
    doffset[c] = static_cast<float>(s1);
  }
}

__global__ void gradientKernel(const float* dy, const float* x, const float* y, const float* mask, const float* mean,
                               const float* coef, int64_t total, int64_t channels, float* dx) {
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t c = e % channels;
    if (!activeRow(mask, e / channels)) {
      dx[e] = 0.0f;
      continue;
    }
    const float g = y != nullptr && !(y[e] > 0.0f) ? 0.0f : dy[e];
    dx[e] = g * coef[c] + (x[e] - mean[c]) * coef[channels + c] + coef[2 * channels + c];
  }
}

__global__ void scaledResidualAddKernel(const float* u, const float* c, const float* a, int64_t total,
                                        int64_t channels, float* y) {
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    y[e] = u[e] + c[e] * a[e / channels];
  }
}

// dc element-wise; da one warp per row (lanes over the channels, a fixed shuffle tree).
__global__ void scaledResidualAddGradKernel(const float* dy, const float* c, const float* a, int64_t rows,
                                            int64_t channels, float* dc, float* da) {
  const int lane = threadIdx.x % 32;
  const int64_t warps = gridDim.x * static_cast<int64_t>(blockDim.x) / 32;
  for (int64_t r = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) / 32; r < rows; r += warps) {
    float dot = 0.0f;
    for (int64_t k = lane; k < channels; k += 32) {
      const int64_t e = r * channels + k;
      dc[e] = dy[e] * a[r];
      dot += dy[e] * c[e];
    }
    for (int d = 16; d > 0; d /= 2) dot += __shfl_down_sync(0xffffffffu, dot, d);
    if (lane == 0) da[r] = dot;
  }
}

// How the rows are split for the sums: laneBlocks blocks of up to 32 channels times `spans` spans of `span` rows.
struct SpanPlan {
  int64_t laneBlocks, span, spans;
};

SpanPlan planSpans(int64_t rows, int64_t channels) {
  const int64_t width = std::min<int64_t>(channels, 32), rowsPer = kThreads / width;
  const int64_t laneBlocks = (channels + width - 1) / width;
  const int64_t wanted = std::max<int64_t>(1, kSpanBlocks / laneBlocks);
  const int64_t count = std::max<int64_t>(1, std::min({wanted, (rows + rowsPer - 1) / rowsPer, kMaxSpans}));
  const int64_t span = std::max<int64_t>(1, (rows + count - 1) / count);
  return {laneBlocks, span, std::max<int64_t>(1, (rows + span - 1) / span)};
}

// The sums of pass P, in a scratch block of plan.spans * 3 * channels doubles.
template <Pass P>
void launchSums(const SumInputs& in, int64_t rows, int64_t channels, const SpanPlan& plan, double* partial) {
  const dim3 grid(static_cast<unsigned>(plan.laneBlocks), static_cast<unsigned>(plan.spans));
  PACT_LAUNCH(sumsKernel<P>, grid, kThreads, 0, nullptr, in, rows, channels, plan.span, partial);
  checkLaunch("batchNorm sumsKernel");
}

void checkSizes(int64_t rows, int64_t channels) {
  if (rows < 0 || channels < 1) throw std::runtime_error("batchNorm (CUDA): rows must be >= 0 and channels >= 1");
}

}  // namespace

void batchNormTrain(const float* x, const float* mask, const float* scale, const float* offset, int64_t rows,
                    int64_t channels, float epsilon, bool relu, float* y, float* mean, float* variance) {
  checkSizes(rows, channels);
  const SpanPlan plan = planSpans(rows, channels);
  Scratch partial(sizeof(double) * static_cast<size_t>(plan.spans * 3 * channels));
  const float* center = mask == nullptr && rows > 0 ? x : nullptr;
  launchSums<Pass::kMoments>({x, center, nullptr, nullptr, mask}, rows, channels, plan, partial.as<double>());
  Scratch coef(sizeof(float) * static_cast<size_t>(channels));
  PACT_LAUNCH(momentsKernel, blocksFor(32 * channels), kThreads, 0, nullptr, partial.as<double>(), plan.spans,
              channels, center, scale, epsilon, mean, variance, coef.as<float>());
  checkLaunch("batchNorm momentsKernel");
  if (rows == 0) return;
  PACT_LAUNCH(affineKernel, blocksFor(rows * channels), kThreads, 0, nullptr, x, mask, mean, coef.as<float>(), nullptr,
              nullptr, epsilon, offset, rows * channels, channels, relu, y);
  checkLaunch("batchNorm affineKernel");
}

void batchNormTrainGrad(const float* dy, const float* dmean, const float* dvariance, const float* x,
                        const float* mask, const float* scale, const float* mean, const float* variance,
                        const float* y, int64_t rows, int64_t channels, float epsilon, bool relu, float* dx,
                        float* dscale, float* doffset) {
  checkSizes(rows, channels);
  const float* reluOut = relu ? y : nullptr;
  const SpanPlan plan = planSpans(rows, channels);
  Scratch partial(sizeof(double) * static_cast<size_t>(plan.spans * 3 * channels));
  launchSums<Pass::kGradient>({x, mean, dy, reluOut, mask}, rows, channels, plan, partial.as<double>());
  Scratch coef(sizeof(float) * static_cast<size_t>(3 * channels));
  PACT_LAUNCH(gradientCoefficientsKernel, blocksFor(32 * channels), kThreads, 0, nullptr, partial.as<double>(),
              plan.spans, channels, dmean, dvariance, scale, variance, epsilon, dscale, doffset, coef.as<float>());
  checkLaunch("batchNorm gradientCoefficientsKernel");
  if (rows == 0) return;
  PACT_LAUNCH(gradientKernel, blocksFor(rows * channels), kThreads, 0, nullptr, dy, x, reluOut, mask, mean,
              coef.as<float>(), rows * channels, channels, dx);
  checkLaunch("batchNorm gradientKernel");
}

void batchNormReluInference(const float* x, const float* mask, const float* scale, const float* offset,
                            const float* mean, const float* variance, int64_t rows, int64_t channels, float epsilon,
                            float* y) {
  checkSizes(rows, channels);
  if (rows == 0) return;
  PACT_LAUNCH(affineKernel, blocksFor(rows * channels), kThreads, 0, nullptr, x, mask, mean, nullptr, scale, variance,
              epsilon, offset, rows * channels, channels, true, y);
  checkLaunch("batchNorm affineKernel");
}

void scaledResidualAdd(const float* u, const float* c, const float* a, int64_t rows, int64_t channels, float* y) {
  checkSizes(rows, channels);
  if (rows == 0) return;
  PACT_LAUNCH(scaledResidualAddKernel, blocksFor(rows * channels), kThreads, 0, nullptr, u, c, a, rows * channels,
              channels, y);
  checkLaunch("scaledResidualAddKernel");
}

void scaledResidualAddGrad(const float* dy, const float* c, const float* a, int64_t rows, int64_t channels, float* dc,
                           float* da) {
  checkSizes(rows, channels);
  if (rows == 0) return;
  PACT_LAUNCH(scaledResidualAddGradKernel, blocksFor(32 * rows), kThreads, 0, nullptr, dy, c, a, rows, channels, dc,
              da);
  checkLaunch("scaledResidualAddGradKernel");
}

}  // namespace pact::cuda
