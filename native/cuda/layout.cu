// Data-movement and pooling kernels (layout.cuh): grid-stride loops, one thread per output element, no atomics
// (every gradient is a gather over the windows that cover an input position).
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "cuda/launch.h"
#include "cuda/layout.cuh"

namespace pact::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 4096;

int blocksFor(int64_t items) { return gridStrideBlocks(items, kThreads, kMaxBlocks); }


template <typename T>
__global__ void stridedCopyKernel(const T* src, T* dst, CopyShape s, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t rest = i, from = s.srcOffset, to = s.dstOffset;
    for (int d = s.rank - 1; d >= 0; --d) {
      const int64_t coord = rest % s.shape[d];
      rest /= s.shape[d];
      from += coord * s.srcStrides[d];
      to += coord * s.dstStrides[d];
    }
    dst[to] = src[from];
  }
}

template <typename T>
__global__ void oneHotKernel(const int32_t* indices, int64_t n, int64_t depth, T on, T off, T* out) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n * depth;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    out[i] = indices[i / depth] == i % depth ? on : off;
  }
}

// The first row (column) of the window of output index o that lies in [0, extent), and the end (exclusive).
__device__ inline void windowRange(int64_t o, int64_t stride, int64_t pad, int64_t filter, int64_t extent,
                                   int64_t& begin, int64_t& end) {
  const int64_t corner = o * stride - pad;
  begin = corner < 0 ? 0 : corner;
  end = corner + filter < extent ? corner + filter : extent;
}

__global__ void pool2dKernel(PoolOp op, PoolGeometry g, const float* x, float* y) {
  const int64_t n = g.batch * g.outH * g.outW * g.channels;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t ch = i % g.channels;
    const int64_t oc = (i / g.channels) % g.outW;
    const int64_t orow = (i / (g.channels * g.outW)) % g.outH;
    const int64_t b = i / (g.channels * g.outW * g.outH);
    int64_t r0, r1, c0, c1;
    windowRange(orow, g.strideH, g.padTop, g.filterH, g.inH, r0, r1);
    windowRange(oc, g.strideW, g.padLeft, g.filterW, g.inW, c0, c1);
    float best = -INFINITY, sum = 0.0f;
    int64_t count = 0;
    for (int64_t r = r0; r < r1; ++r) {
      for (int64_t c = c0; c < c1; ++c) {
        const float v = x[((b * g.inH + r) * g.inW + c) * g.channels + ch];
        if (v > best) best = v;
        sum += v;
        ++count;
      }
    }
    y[i] = op == PoolOp::kMax ? best : sum / static_cast<float>(count);
  }
}

// For every input position: the windows (output positions) whose range contains it, then that window's dy when
// this position is the window's first maximum (max) or dy / window size (avg).
__global__ void pool2dGradKernel(PoolOp op, PoolGeometry g, const float* x, const float* dy, float* dx) {
  const int64_t n = g.batch * g.inH * g.inW * g.channels;
  const float scale = 1.0f / static_cast<float>(g.filterH * g.filterW);
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t ch = i % g.channels;
    const int64_t xc = (i / g.channels) % g.inW;
    const int64_t xr = (i / (g.channels * g.inW)) % g.inH;
    const int64_t b = i / (g.channels * g.inW * g.inH);
    // Output rows whose window [o strideH - padTop, + filterH) contains xr.
    // (std::max/min are host functions for nvcc.) The bounds may be loose; the window test below is exact.
    const int64_t rFirst = (xr + g.padTop - g.filterH + g.strideH) / g.strideH;
    const int64_t rLast = (xr + g.padTop) / g.strideH;
    const int64_t cFirst = (xc + g.padLeft - g.filterW + g.strideW) / g.strideW;
    const int64_t cLast = (xc + g.padLeft) / g.strideW;
    const int64_t rLo = rFirst < 0 ? 0 : rFirst, rHi = rLast < g.outH - 1 ? rLast : g.outH - 1;
    const int64_t cLo = cFirst < 0 ? 0 : cFirst, cHi = cLast < g.outW - 1 ? cLast : g.outW - 1;
    float acc = 0.0f;
    for (int64_t orow = rLo; orow <= rHi; ++orow) {
      if (orow * g.strideH - g.padTop > xr || orow * g.strideH - g.padTop + g.filterH <= xr) continue;
      for (int64_t oc = cLo; oc <= cHi; ++oc) {
        if (oc * g.strideW - g.padLeft > xc || oc * g.strideW - g.padLeft + g.filterW <= xc) continue;
        const float d = dy[((b * g.outH + orow) * g.outW + oc) * g.channels + ch];
        if (op == PoolOp::kAvg) {
          acc += d * scale;
          continue;
        }
        int64_t r0, r1, c0, c1;
        windowRange(orow, g.strideH, g.padTop, g.filterH, g.inH, r0, r1);
        windowRange(oc, g.strideW, g.padLeft, g.filterW, g.inW, c0, c1);
        float best = -INFINITY;
        int64_t bestR = -1, bestC = -1;
        for (int64_t r = r0; r < r1; ++r) {
          for (int64_t c = c0; c < c1; ++c) {
            const float v = x[((b * g.inH + r) * g.inW + c) * g.channels + ch];
            if (v > best) {
              best = v;
              bestR = r;
              bestC = c;
            }
          }
        }
        if (bestR == xr && bestC == xc) acc += d;
      }
    }
    dx[i] = acc;
  }
}

}  // namespace

void stridedCopy(const void* src, void* dst, int elementBytes, const CopyShape& shape) {
  int64_t n = 1;
  for (int d = 0; d < shape.rank; ++d) n *= shape.shape[d];
  if (n == 0) return;
  if (elementBytes == 4) {
    PACT_LAUNCH(stridedCopyKernel<uint32_t>, blocksFor(n), kThreads, 0, nullptr, static_cast<const uint32_t*>(src),
                static_cast<uint32_t*>(dst), shape, n);
  } else {
    PACT_LAUNCH(stridedCopyKernel<uint8_t>, blocksFor(n), kThreads, 0, nullptr, static_cast<const uint8_t*>(src),
                static_cast<uint8_t*>(dst), shape, n);
  }
  checkLaunch("stridedCopyKernel");
}

void oneHot(const int32_t* indices, int64_t n, int64_t depth, double on, double off, bool asFloat, void* out) {
  if (n * depth == 0) return;
  if (asFloat) {
    PACT_LAUNCH(oneHotKernel<float>, blocksFor(n * depth), kThreads, 0, nullptr, indices, n, depth,
                static_cast<float>(on), static_cast<float>(off), static_cast<float*>(out));
  } else {
    PACT_LAUNCH(oneHotKernel<int32_t>, blocksFor(n * depth), kThreads, 0, nullptr, indices, n, depth,
                static_cast<int32_t>(on), static_cast<int32_t>(off), static_cast<int32_t*>(out));
  }
  checkLaunch("oneHotKernel");
}

void pool2d(PoolOp op, const PoolGeometry& g, const float* x, float* y) {
  const int64_t n = g.batch * g.outH * g.outW * g.channels;
  if (n == 0) return;
  PACT_LAUNCH(pool2dKernel, blocksFor(n), kThreads, 0, nullptr, op, g, x, y);
  checkLaunch("pool2dKernel");
}

void pool2dGrad(PoolOp op, const PoolGeometry& g, const float* x, const float* dy, float* dx) {
  const int64_t n = g.batch * g.inH * g.inW * g.channels;
  if (n == 0) return;
  PACT_LAUNCH(pool2dGradKernel, blocksFor(n), kThreads, 0, nullptr, op, g, x, dy, dx);
  checkLaunch("pool2dGradKernel");
}

}  // namespace pact::cuda
