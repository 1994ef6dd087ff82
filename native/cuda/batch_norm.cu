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

// What a pass sums per element, two sums per channel:
//   kMoments:  d = x - shift and d^2 (shift: row 0, so that a large mean does not cancel the variance's digits);
//   kGradient: g and g * (x - mean), g = dy, zeroed where y <= 0 with ReLU.
enum class Pass { kMoments, kGradient };

struct SumInputs {
  const float* x;
  const float* shiftOrMean;  // row 0 of x (kMoments) or the batch mean (kGradient)
  const float* dy;
  const float* y;  // ReLU's output, or null
};

// Block (bx, s): channels bx*width .. +width (width = min(channels, 32) lanes) times kThreads / width rows striding
// through span s of the rows; rows combined in order; partial[s, 0 or 1, c].
template <Pass P>
__global__ void sumsKernel(SumInputs in, int64_t rows, int64_t channels, int64_t span, double* partial) {
  __shared__ double first[kThreads];
  __shared__ double second[kThreads];
  const int width = channels < 32 ? static_cast<int>(channels) : 32;
  const int rowsPer = kThreads / width;
  const int lane = threadIdx.x % width, row = threadIdx.x / width;
  const int64_t c = static_cast<int64_t>(blockIdx.x) * width + lane, s = blockIdx.y;
  const int64_t end = (s + 1) * span < rows ? (s + 1) * span : rows;
  double a = 0.0, b = 0.0;
  if (row < rowsPer && c < channels) {
    const double center = in.shiftOrMean[c];
    for (int64_t r = s * span + row; r < end; r += rowsPer) {
      const int64_t e = r * channels + c;
      const double d = static_cast<double>(in.x[e]) - center;
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
  __syncthreads();
  if (row == 0 && c < channels) {
    for (int k = 1; k < rowsPer; ++k) {
      a += first[k * width + lane];
      b += second[k * width + lane];
    }
    partial[(s * 2) * channels + c] = a;
    partial[(s * 2 + 1) * channels + c] = b;
  }
}

// The two sums of channel c over all spans: lane l adds spans l, l + 32, ..., then a fixed shuffle tree; the
// result is in lane 0.
__device__ inline void sumSpans(const double* partial, int64_t spans, int64_t channels, int64_t c, int lane,
                                double& a, double& b) {
  a = 0.0;
  b = 0.0;
  for (int64_t s = lane; s < spans; s += 32) {
    a += partial[(s * 2) * channels + c];
    b += partial[(s * 2 + 1) * channels + c];
  }
  for (int d = 16; d > 0; d /= 2) {
    a += __shfl_down_sync(0xffffffffu, a, d);
    b += __shfl_down_sync(0xffffffffu, b, d);
  }
}

// One warp per channel: mean, biased variance, and the affine coefficient scale / sqrt(variance + epsilon).
__global__ void momentsKernel(const double* partial, int64_t spans, int64_t rows, int64_t channels, const float* x,
                              const float* scale, float epsilon, float* mean, float* variance, float* coef) {
  const int lane = threadIdx.x % 32;
  const int64_t warps = gridDim.x * static_cast<int64_t>(blockDim.x) / 32;
  for (int64_t c = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) / 32; c < channels; c += warps) {
    double s1, s2;
    sumSpans(partial, spans, channels, c, lane, s1, s2);
    if (lane != 0) continue;
    const double n = static_cast<double>(rows), m1 = s1 / n;
    const double var = fmax(0.0, s2 / n - m1 * m1);
    mean[c] = static_cast<float>(m1 + static_cast<double>(x[c]));
    variance[c] = static_cast<float>(var);
    coef[c] = static_cast<float>(scale[c] / sqrt(var + static_cast<double>(epsilon)));
  }
}

__global__ void affineKernel(const float* x, const float* mean, const float* coef, const float* offset,
                             int64_t total, int64_t channels, bool relu, float* y) {
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t c = e % channels;
    const float v = (x[e] - mean[c]) * coef[c] + offset[c];
    y[e] = relu && !(v > 0.0f) ? 0.0f : v;
  }
}

// One warp per channel: dscale, doffset, and dx = g * a + (x - mean) * k + b's coefficients (cpu/batch_norm.cc's
// closed form of scale*invStd*(g - s1/n - xhat*sum(g*xhat)/n) + dmean/n + dvariance*2*(x - mean)/n).
__global__ void gradientCoefficientsKernel(const double* partial, int64_t spans, int64_t rows, int64_t channels,
                                           const float* dmean, const float* dvariance, const float* scale,
                                           const float* variance, float epsilon, float* dscale, float* doffset,
                                           float* coef) {
  const int lane = threadIdx.x % 32;
  const int64_t warps = gridDim.x * static_cast<int64_t>(blockDim.x) / 32;
  for (int64_t c = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) / 32; c < channels; c += warps) {
    double s1, s2;
    sumSpans(partial, spans, channels, c, lane, s1, s2);
    if (lane != 0) continue;
    const double n = static_cast<double>(rows);
    const double invStd = 1.0 / sqrt(static_cast<double>(variance[c]) + static_cast<double>(epsilon));
    const double ac = scale[c] * invStd;
    coef[c] = static_cast<float>(ac);
    coef[channels + c] = static_cast<float>(-ac * invStd * invStd * s2 / n + 2.0 * dvariance[c] / n);
    coef[2 * channels + c] = static_cast<float>(-ac * s1 / n + dmean[c] / n);
    dscale[c] = static_cast<float>(s2 * invStd);
    doffset[c] = static_cast<float>(s1);
  }
}

__global__ void gradientKernel(const float* dy, const float* x, const float* y, const float* mean, const float* coef,
                               int64_t total, int64_t channels, float* dx) {
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t c = e % channels;
    const float g = y != nullptr && !(y[e] > 0.0f) ? 0.0f : dy[e];
    dx[e] = g * coef[c] + (x[e] - mean[c]) * coef[channels + c] + coef[2 * channels + c];
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
  const int64_t count = std::min({wanted, (rows + rowsPer - 1) / rowsPer, kMaxSpans});
  const int64_t span = (rows + count - 1) / count;
  return {laneBlocks, span, (rows + span - 1) / span};
}

template <Pass P>
void launchSums(const SumInputs& in, int64_t rows, int64_t channels, const SpanPlan& plan, double* partial) {
  const dim3 grid(static_cast<unsigned>(plan.laneBlocks), static_cast<unsigned>(plan.spans));
  PACT_LAUNCH(sumsKernel<P>, grid, kThreads, 0, nullptr, in, rows, channels, plan.span, partial);
  checkLaunch("batchNorm sumsKernel");
}

void checkSizes(int64_t rows, int64_t channels) {
  if (rows < 1 || channels < 1) throw std::runtime_error("batchNorm (CUDA): rows and channels must be >= 1");
}

}  // namespace

void batchNormTrain(const float* x, const float* scale, const float* offset, int64_t rows, int64_t channels,
                    float epsilon, bool relu, float* y, float* mean, float* variance) {
  checkSizes(rows, channels);
  const SpanPlan plan = planSpans(rows, channels);
  const int64_t spans = plan.spans;
  Scratch partial(sizeof(double) * static_cast<size_t>(spans * 2 * channels));
  launchSums<Pass::kMoments>({x, x, nullptr, nullptr}, rows, channels, plan, partial.as<double>());
  Scratch coef(sizeof(float) * static_cast<size_t>(channels));
  PACT_LAUNCH(momentsKernel, blocksFor(32 * channels), kThreads, 0, nullptr, partial.as<double>(), spans, rows,
              channels, x, scale, epsilon, mean, variance, coef.as<float>());
  checkLaunch("batchNorm momentsKernel");
  PACT_LAUNCH(affineKernel, blocksFor(rows * channels), kThreads, 0, nullptr, x, mean, coef.as<float>(), offset,
              rows * channels, channels, relu, y);
  checkLaunch("batchNorm affineKernel");
}

void batchNormTrainGrad(const float* dy, const float* dmean, const float* dvariance, const float* x,
                        const float* scale, const float* mean, const float* variance, const float* y, int64_t rows,
                        int64_t channels, float epsilon, bool relu, float* dx, float* dscale, float* doffset) {
  checkSizes(rows, channels);
  const float* reluOut = relu ? y : nullptr;
  const SpanPlan plan = planSpans(rows, channels);
  const int64_t spans = plan.spans;
  Scratch partial(sizeof(double) * static_cast<size_t>(spans * 2 * channels));
  launchSums<Pass::kGradient>({x, mean, dy, reluOut}, rows, channels, plan, partial.as<double>());
  Scratch coef(sizeof(float) * static_cast<size_t>(3 * channels));
  PACT_LAUNCH(gradientCoefficientsKernel, blocksFor(32 * channels), kThreads, 0, nullptr, partial.as<double>(),
              spans, rows, channels, dmean, dvariance, scale, variance, epsilon, dscale, doffset, coef.as<float>());
  checkLaunch("batchNorm gradientCoefficientsKernel");
  PACT_LAUNCH(gradientKernel, blocksFor(rows * channels), kThreads, 0, nullptr, dy, x, reluOut, mean,
              coef.as<float>(), rows * channels, channels, dx);
  checkLaunch("batchNorm gradientKernel");
}

}  // namespace pact::cuda
