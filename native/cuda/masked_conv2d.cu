// CUDA kernels of the masked convolution (thread mapping and tiling in masked_conv2d.cuh; semantics and layouts in
// cpu/masked_conv2d.h, whose C++ kernels are the reference the tests compare these with).
#include <cuda_runtime.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "cuda/launch.h"
#include "cuda/masked_conv2d.cuh"
#include "cuda/memory.cuh"

namespace pact::cuda {

namespace {

using masked::ConvGeometry;

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 65535;
constexpr int kPositions = 16;                 // forward: active positions per block
constexpr int kLanes = kThreads / kPositions;  // forward: output-channel lanes per position
constexpr int kChannelsPerLane = 4;            // forward: output channels a thread accumulates
constexpr int kChunk = 64;                     // forward: patch elements staged in shared memory at a time
constexpr int kFilterChunk = 128;              // backpropFilter: active positions per block row

// Throws on an error, first clearing CUDA's last error (a failed cudaMalloc sets it too): left set, the next
// unrelated launch's check would report it as its own.
void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    cudaGetLastError();
    throw std::runtime_error(std::string("maskedConv2d (CUDA): ") + what + ": " + cudaGetErrorString(err));
  }
}

int blocksFor(int64_t items) { return gridStrideBlocks(items, kThreads, kMaxBlocks); }

int64_t outPositions(const ConvGeometry& g) { return g.batch * g.outH * g.outW; }

// The active list: a scratch block holding [count, positions...].
class ActiveList {
 public:
  explicit ActiveList(const ConvGeometry& g) : buffer_(checkedBytes(g)) {}
  int* count() const { return buffer_.as<int>(); }
  int* positions() const { return buffer_.as<int>() + 1; }

 private:
  static size_t checkedBytes(const ConvGeometry& g) {
    if (outPositions(g) >= (int64_t{1} << 31)) {
      throw std::runtime_error("maskedConv2d (CUDA): batch*outH*outW >= 2^31");
    }
    return sizeof(int) * static_cast<size_t>(outPositions(g) + 1);
  }
  Scratch buffer_;
};

__global__ void compactKernel(const float* mask, int64_t n, int* count, int* positions) {
  for (int64_t p = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; p < n;
       p += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    if (mask[p] > 0.0f) positions[atomicAdd(count, 1)] = static_cast<int>(p);
  }
}

void compact(const ConvGeometry& g, const float* mask, const ActiveList& list) {
  check(cudaMemsetAsync(list.count(), 0, sizeof(int), nullptr), "cudaMemsetAsync");
  const int64_t n = outPositions(g);
  PACT_LAUNCH(compactKernel, blocksFor(n), kThreads, 0, nullptr, mask, n, list.count(), list.positions());
  check(cudaGetLastError(), "compact launch");
}

// x at patch element k = (ky*kW + kx)*inC + ci of output position p, 0 in the padding.
__device__ inline float patchValue(const ConvGeometry& g, const float* x, int64_t p, int64_t k) {
  const int64_t plane = g.outH * g.outW, b = p / plane, oy = (p % plane) / g.outW, ox = p % g.outW;
  const int64_t ci = k % g.inC, kx = (k / g.inC) % g.kW, ky = k / (g.inC * g.kW);
  const int64_t iy = oy * g.strideH - g.padTop + ky, ix = ox * g.strideW - g.padLeft + kx;
  if (iy < 0 || iy >= g.inH || ix < 0 || ix >= g.inW) return 0.0f;
  return x[((b * g.inH + iy) * g.inW + ix) * g.inC + ci];
}

// Block: kPositions active positions x kLanes channel lanes. The patch rows of the block's positions pass through
// shared memory kChunk elements at a time (each position's row is loaded by its own lanes, read by the same lanes).
__global__ void forwardKernel(ConvGeometry g, const float* x, const float* filter, const int* count,
                              const int* positions, float* y) {
  __shared__ float patch[kPositions][kChunk];
  const int n = *count;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kPositions;
  if (first >= n) return;  // uniform across the block, before any barrier
  const int slot = threadIdx.x / kLanes, lane = threadIdx.x % kLanes;
  const int64_t p = first + slot < n ? positions[first + slot] : -1;
  const int64_t K = g.kH * g.kW * g.inC;
  for (int64_t oc0 = 0; oc0 < g.outC; oc0 += kLanes * kChannelsPerLane) {
    float acc[kChannelsPerLane] = {};
    for (int64_t k0 = 0; k0 < K; k0 += kChunk) {
      for (int j = lane; j < kChunk; j += kLanes) {
        patch[slot][j] = (p >= 0 && k0 + j < K) ? patchValue(g, x, p, k0 + j) : 0.0f;
      }
      __syncthreads();
      const int64_t kc = K - k0 < kChunk ? K - k0 : kChunk;
      for (int64_t j = 0; j < kc; ++j) {
        const float a = patch[slot][j];
        const float* w = filter + (k0 + j) * g.outC;
        for (int t = 0; t < kChannelsPerLane; ++t) {
          const int64_t o = oc0 + lane + t * kLanes;
          if (o < g.outC) acc[t] += a * w[o];
        }
      }
      __syncthreads();
    }
    if (p >= 0) {
      for (int t = 0; t < kChannelsPerLane; ++t) {
        const int64_t o = oc0 + lane + t * kLanes;
        if (o < g.outC) y[p * g.outC + o] = acc[t];
      }
    }
  }
}

__global__ void backpropInputKernel(ConvGeometry g, const float* dy, const float* filter, const float* mask,
                                    float* dx) {
  const int64_t total = g.batch * g.inH * g.inW * g.inC;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t ci = i % g.inC, ix = (i / g.inC) % g.inW, iy = (i / (g.inC * g.inW)) % g.inH;
    const int64_t b = i / (g.inC * g.inW * g.inH);
    float acc = 0.0f;
    for (int64_t ky = 0; ky < g.kH; ++ky) {
      const int64_t ny = iy + g.padTop - ky;  // = oy * strideH when output row oy reads input row iy via ky
      if (ny < 0 || ny % g.strideH != 0 || ny / g.strideH >= g.outH) continue;
      const int64_t oy = ny / g.strideH;
      for (int64_t kx = 0; kx < g.kW; ++kx) {
        const int64_t nx = ix + g.padLeft - kx;
        if (nx < 0 || nx % g.strideW != 0 || nx / g.strideW >= g.outW) continue;
        const int64_t p = (b * g.outH + oy) * g.outW + nx / g.strideW;
        if (!(mask[p] > 0.0f)) continue;
        const float* d = dy + p * g.outC;
        const float* w = filter + ((ky * g.kW + kx) * g.inC + ci) * g.outC;
        for (int64_t o = 0; o < g.outC; ++o) acc += d[o] * w[o];
      }
    }
    dx[i] = acc;
  }
}

// grid.x covers the K*outC elements of dfilter, grid.y the chunks of kFilterChunk active positions.
__global__ void backpropFilterKernel(ConvGeometry g, const float* x, const float* dy, const int* count,
                                     const int* positions, float* dfilter) {
  const int n = *count;
  const int64_t K = g.kH * g.kW * g.inC, total = K * g.outC;
  const int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  for (int64_t chunk = blockIdx.y; chunk * kFilterChunk < n; chunk += gridDim.y) {
    if (e >= total) continue;
    const int64_t k = e / g.outC, o = e % g.outC;
    const int64_t end = (chunk + 1) * kFilterChunk < n ? (chunk + 1) * kFilterChunk : n;
    float acc = 0.0f;
    for (int64_t i = chunk * kFilterChunk; i < end; ++i) {
      const int64_t p = positions[i];
      acc += patchValue(g, x, p, k) * dy[p * g.outC + o];
    }
    atomicAdd(dfilter + e, acc);
  }
}

}  // namespace

void maskedConv2dForward(const ConvGeometry& g, const float* x, const float* filter, const float* mask, float* y) {
  ActiveList list(g);
  compact(g, mask, list);
  check(cudaMemsetAsync(y, 0, sizeof(float) * outPositions(g) * g.outC, nullptr), "cudaMemsetAsync");
  const int64_t blocks = (outPositions(g) + kPositions - 1) / kPositions;  // an upper bound: extra blocks exit
  PACT_LAUNCH(forwardKernel, static_cast<unsigned>(blocks), kThreads, 0, nullptr, g, x, filter, list.count(),
              list.positions(), y);
  check(cudaGetLastError(), "forward launch");
}

void maskedConv2dBackpropInput(const ConvGeometry& g, const float* dy, const float* filter, const float* mask,
                               float* dx) {
  PACT_LAUNCH(backpropInputKernel, blocksFor(g.batch * g.inH * g.inW * g.inC), kThreads, 0, nullptr, g, dy, filter,
              mask, dx);
  check(cudaGetLastError(), "backpropInput launch");
}

void maskedConv2dBackpropFilter(const ConvGeometry& g, const float* x, const float* dy, const float* mask,
                                float* dfilter) {
  ActiveList list(g);
  compact(g, mask, list);
  const int64_t total = g.kH * g.kW * g.inC * g.outC;
  check(cudaMemsetAsync(dfilter, 0, sizeof(float) * total, nullptr), "cudaMemsetAsync");
  const dim3 grid(static_cast<unsigned>((total + kThreads - 1) / kThreads),
                  static_cast<unsigned>(std::min<int64_t>((outPositions(g) + kFilterChunk - 1) / kFilterChunk,
                                                          kMaxBlocks)));
  PACT_LAUNCH(backpropFilterKernel, grid, kThreads, 0, nullptr, g, x, dy, list.count(), list.positions(), dfilter);
  check(cudaGetLastError(), "backpropFilter launch");
}

}  // namespace pact::cuda
