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
constexpr int kTile = 16;           // reduction elements staged in shared memory per step (K, or positions)
constexpr int kMicro = 4;           // each thread accumulates kMicro x kMicro outputs
constexpr int64_t kFilterBlocks = 1024;  // backpropFilter: about this many blocks in all, over position spans

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

// The active list: a scratch block holding [count, positions...] for up to `capacity` positions; or, `dense`, no
// block (count() and positions() null: the kernels take every position, countOf/positionAt).
class ActiveList {
 public:
  ActiveList(int64_t capacity, bool dense) : dense_(dense), buffer_(dense ? 0 : checkedBytes(capacity)) {}
  int* count() const { return dense_ ? nullptr : buffer_.as<int>(); }
  int* positions() const { return dense_ ? nullptr : buffer_.as<int>() + 1; }

 private:
  bool dense_;
  static size_t checkedBytes(int64_t capacity) {
    if (capacity >= (int64_t{1} << 31)) throw std::runtime_error("maskedConv2d (CUDA): batch*outH*outW >= 2^31");
    return sizeof(int) * static_cast<size_t>(capacity + 1);
  }
  Scratch buffer_;
};

__global__ void compactKernel(const float* mask, int64_t n, int* count, int* positions) {
  for (int64_t p = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; p < n;
       p += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    if (mask[p] > 0.0f) positions[atomicAdd(count, 1)] = static_cast<int>(p);
  }
}

// The input positions (b, iy, ix) that some active output reads (the mask dilated by the window): those whose
// input gradient can be nonzero.
__global__ void compactReadKernel(ConvGeometry g, const float* mask, int* count, int* positions) {
  const int64_t n = g.batch * g.inH * g.inW;
  for (int64_t q = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; q < n;
       q += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t b = q / (g.inH * g.inW), iy = (q / g.inW) % g.inH, ix = q % g.inW;
    bool read = false;
    for (int64_t ky = 0; ky < g.kH && !read; ++ky) {
      const int64_t ny = iy + g.padTop - ky;
      if (ny < 0 || ny % g.strideH != 0 || ny / g.strideH >= g.outH) continue;
      for (int64_t kx = 0; kx < g.kW && !read; ++kx) {
        const int64_t nx = ix + g.padLeft - kx;
        if (nx < 0 || nx % g.strideW != 0 || nx / g.strideW >= g.outW) continue;
        read = mask[(b * g.outH + ny / g.strideH) * g.outW + nx / g.strideW] > 0.0f;
      }
    }
    if (read) positions[atomicAdd(count, 1)] = static_cast<int>(q);
  }
}

void compact(const ConvGeometry& g, const float* mask, const ActiveList& list) {
  check(cudaMemsetAsync(list.count(), 0, sizeof(int), nullptr), "cudaMemsetAsync");
  const int64_t n = outPositions(g);
  PACT_LAUNCH(compactKernel, blocksFor(n), kThreads, 0, nullptr, mask, n, list.count(), list.positions());
  check(cudaGetLastError(), "compact launch");
}

// The active list's size and slot i's position; a null list is the dense one (every position active, slot i is
// position i, `dense` of them), so a dense convolution skips the mask, the compaction and the output's zeroing.
__device__ inline int64_t countOf(const int* count, int64_t dense) { return count != nullptr ? *count : dense; }
__device__ inline int64_t positionAt(const int* positions, int64_t slot) {
  return positions != nullptr ? positions[slot] : slot;
}

// Output position p's window: the input pixel index of its batch image's origin and its top-left input
// coordinates (possibly in the padding).
struct Window {
  int64_t pixelBase;  // b * inH * inW; -1 marks "no position"
  int64_t top, left;
};

__device__ inline Window windowOf(const ConvGeometry& g, int64_t p) {
  const int64_t plane = g.outH * g.outW, b = p / plane, oy = (p % plane) / g.outW, ox = p % g.outW;
  return {b * g.inH * g.inW, oy * g.strideH - g.padTop, ox * g.strideW - g.padLeft};
}

// Patch element k = (ky*kW + kx)*inC + ci as its tap (ky, kx) and channel; channel -1 past K.
struct Tap {
  int ky, kx, ci;
};

__device__ inline Tap tapOf(const ConvGeometry& g, int64_t k, int64_t K) {
  if (k >= K) return {0, 0, -1};
  return {static_cast<int>(k / (g.inC * g.kW)), static_cast<int>((k / g.inC) % g.kW), static_cast<int>(k % g.inC)};
}

// x at window w's tap t, 0 in the padding, past K, for no position, or where xMask (if given, [batch, inH, inW])
// is not > 0.
__device__ inline float tapValue(const ConvGeometry& g, const float* x, const float* xMask, const Window& w,
                                 const Tap& t) {
  if (w.pixelBase < 0 || t.ci < 0) return 0.0f;
  const int64_t iy = w.top + t.ky, ix = w.left + t.kx;
  if (iy < 0 || iy >= g.inH || ix < 0 || ix >= g.inW) return 0.0f;
  const int64_t pixel = w.pixelBase + iy * g.inW + ix;
  if (xMask != nullptr && !(xMask[pixel] > 0.0f)) return 0.0f;
  return x[pixel * g.inC + t.ci];
}

// Forward as a GEMM over the active list: y[p, :] = patch(p) . filter, patch(p) the im2col row of position p.
// Block: BM = 4 * kThreads / (BN / 4) active positions x BN output channels (blockIdx.y picks the channel block);
// each thread accumulates kMicro x kMicro outputs, rows ty + i*TY and channels tx + j*TX (strided, so that a warp
// reads shared memory without bank conflicts). K passes through shared memory kTile elements at a time; the patch
// tile is loaded with consecutive threads on consecutive channels (coalesced when inC >= kTile). Blocks past the
// active count exit at once: the cost follows the active count. Each output sums K in order: deterministic.
//
// K may be split over blockIdx.z (kSpan elements each, a multiple of kTile) so that a few active positions still
// make many short blocks; then split z writes its sums to partial[z, slot, channel] (capacity slots a split) and
// sumSplitsKernel adds the splits in order; with one split the block writes y itself (partial is null).
template <int BN>
__global__ void forwardKernel(ConvGeometry g, const float* x, const float* xMask, const float* filter,
                              const int* count, const int* positions, int64_t kSpan, int64_t capacity,
                              float* partial, float* y) {
  constexpr int TX = BN / kMicro, TY = kThreads / TX, BM = TY * kMicro;
  __shared__ float patch[kTile][BM + 1];  // +1: the loads' stores (kk fastest) avoid bank conflicts
  __shared__ float weights[kTile][BN];
  __shared__ Window windows[BM];
  __shared__ Tap taps[kTile];
  const int64_t n = countOf(count, capacity);
  const int64_t first = static_cast<int64_t>(blockIdx.x) * BM;
  if (first >= n) return;  // uniform across the block, before any barrier
  const int64_t oc0 = static_cast<int64_t>(blockIdx.y) * BN, kEnd = g.kH * g.kW * g.inC;
  const int64_t kBegin = blockIdx.z * kSpan, K = kBegin + kSpan < kEnd ? kBegin + kSpan : kEnd;
  for (int m = threadIdx.x; m < BM; m += kThreads) {
    windows[m] = first + m < n ? windowOf(g, positionAt(positions, first + m)) : Window{-1, 0, 0};
  }
  const int tx = threadIdx.x % TX, ty = threadIdx.x / TX;
  float acc[kMicro][kMicro] = {};
  for (int64_t k0 = kBegin; k0 < K; k0 += kTile) {
    __syncthreads();  // the last step's reads are done (first time: the windows are written)
    if (threadIdx.x < kTile) taps[threadIdx.x] = tapOf(g, k0 + threadIdx.x, K);
    __syncthreads();
    for (int e = threadIdx.x; e < kTile * BM; e += kThreads) {
      const int kk = e % kTile, m = e / kTile;
      patch[kk][m] = tapValue(g, x, xMask, windows[m], taps[kk]);
    }
    for (int e = threadIdx.x; e < kTile * BN; e += kThreads) {
      const int kk = e / BN, c = e % BN;
      weights[kk][c] = (k0 + kk < K && oc0 + c < g.outC) ? filter[(k0 + kk) * g.outC + oc0 + c] : 0.0f;
    }
    __syncthreads();
    for (int kk = 0; kk < kTile; ++kk) {
      float a[kMicro], b[kMicro];
      for (int i = 0; i < kMicro; ++i) a[i] = patch[kk][ty + i * TY];
      for (int j = 0; j < kMicro; ++j) b[j] = weights[kk][tx + j * TX];
      for (int i = 0; i < kMicro; ++i) {
        for (int j = 0; j < kMicro; ++j) acc[i][j] += a[i] * b[j];
      }
    }
  }
  for (int i = 0; i < kMicro; ++i) {
    const int64_t slot = first + ty + i * TY;
    if (slot >= n) continue;
    float* row = partial != nullptr ? partial + (blockIdx.z * capacity + slot) * g.outC
                                    : y + positionAt(positions, slot) * g.outC;
    for (int j = 0; j < kMicro; ++j) {
      const int64_t o = oc0 + tx + j * TX;
      if (o < g.outC) row[o] = acc[i][j];
    }
  }
}

// Filter gradient as a GEMM over the active list: dfilter[k, o] = sum over active p of patch(p)[k] * dy[p, o].
// Block (blockIdx.x, s, blockIdx.z): BK = 4 * kThreads / (BN / 4) rows of K times BN channels, over span s of the
// active list (gridDim.y spans, each a multiple of kTile long); kTile positions pass through shared memory at a
// time. Each block writes its sums to partial[s, k, o] (zeros when its span is empty); sumSpansKernel adds the spans
// in order, so the result does not depend on scheduling (only on the active list's order).
template <int BN>
__global__ void backpropFilterKernel(ConvGeometry g, const float* x, const float* dy, const int* count,
                                     const int* positions, int64_t denseCount, float* partial) {
  constexpr int TX = BN / kMicro, TY = kThreads / TX, BK = TY * kMicro;
  __shared__ float patch[kTile][BK];
  __shared__ float grads[kTile][BN];
  __shared__ Tap taps[BK];
  __shared__ Window windows[kTile];
  __shared__ int64_t rows[kTile];
  const int64_t n = countOf(count, denseCount), K = g.kH * g.kW * g.inC;
  const int64_t k0 = static_cast<int64_t>(blockIdx.x) * BK, oc0 = static_cast<int64_t>(blockIdx.z) * BN;
  const int64_t span = ((n + gridDim.y - 1) / gridDim.y + kTile - 1) / kTile * kTile;
  const int64_t begin = blockIdx.y * span, end = begin + span < n ? begin + span : n;
  for (int kk = threadIdx.x; kk < BK; kk += kThreads) taps[kk] = tapOf(g, k0 + kk, K);
  const int tx = threadIdx.x % TX, ty = threadIdx.x / TX;
  float acc[kMicro][kMicro] = {};
  for (int64_t p0 = begin; p0 < end; p0 += kTile) {
    __syncthreads();  // the last step's reads are done (first time: the taps are written)
    if (threadIdx.x < kTile) {
      const int64_t slot = p0 + threadIdx.x;
      rows[threadIdx.x] = slot < end ? positionAt(positions, slot) : -1;
      windows[threadIdx.x] = slot < end ? windowOf(g, rows[threadIdx.x]) : Window{-1, 0, 0};
    }
    __syncthreads();
    for (int e = threadIdx.x; e < kTile * BK; e += kThreads) {
      const int kk = e % BK, r = e / BK;
      patch[r][kk] = tapValue(g, x, nullptr, windows[r], taps[kk]);
    }
    for (int e = threadIdx.x; e < kTile * BN; e += kThreads) {
      const int c = e % BN, r = e / BN;
      grads[r][c] = (rows[r] >= 0 && oc0 + c < g.outC) ? dy[rows[r] * g.outC + oc0 + c] : 0.0f;
    }
    __syncthreads();
    for (int r = 0; r < kTile; ++r) {
      float a[kMicro], b[kMicro];
      for (int i = 0; i < kMicro; ++i) a[i] = patch[r][ty + i * TY];
      for (int j = 0; j < kMicro; ++j) b[j] = grads[r][tx + j * TX];
      for (int i = 0; i < kMicro; ++i) {
        for (int j = 0; j < kMicro; ++j) acc[i][j] += a[i] * b[j];
      }
    }
  }
  float* out = partial + blockIdx.y * K * g.outC;
  for (int i = 0; i < kMicro; ++i) {
    const int64_t k = k0 + ty + i * TY;
    if (k >= K) continue;
    for (int j = 0; j < kMicro; ++j) {
      const int64_t o = oc0 + tx + j * TX;
      if (o < g.outC) out[k * g.outC + o] = acc[i][j];
    }
  }
}

// out[e] = sum over s < spans of partial[s * n + e]: one warp per element (grid-stride over warps), lane l adding
// spans l, l + 32, ... in order, then the lanes in a fixed shuffle tree (the same result in every run).
__global__ void sumSpansKernel(const float* partial, int64_t spans, int64_t n, float* out) {
  const int lane = threadIdx.x % 32;
  const int64_t warps = gridDim.x * static_cast<int64_t>(blockDim.x) / 32;
  for (int64_t e = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) / 32; e < n; e += warps) {
    float sum = 0.0f;
    for (int64_t s = lane; s < spans; s += 32) sum += partial[s * n + e];
    for (int d = 16; d > 0; d /= 2) sum += __shfl_down_sync(0xffffffffu, sum, d);
    if (lane == 0) out[e] = sum;
  }
}

// y at the active positions from the forward's K splits: y[positions[slot], o] = sum over z of
// partial[z, slot, o], in split order.
__global__ void sumSplitsKernel(const int* count, const int* positions, const float* partial, int64_t splits,
                                int64_t capacity, int64_t outC, float* y) {
  const int64_t n = countOf(count, capacity) * outC, stride = capacity * outC;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < n;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float sum = 0.0f;
    for (int64_t z = 0; z < splits; ++z) sum += partial[z * stride + e];
    y[positionAt(positions, e / outC) * outC + e % outC] = sum;
  }
}

// The filter of the input gradient as a forward convolution (stride 1): rotated by 180 degrees, in and out channels
// swapped: flipped[ky][kx][o][ci] = filter[kH-1-ky][kW-1-kx][ci][o].
__global__ void flipFilterKernel(ConvGeometry g, const float* filter, float* flipped) {
  const int64_t total = g.kH * g.kW * g.inC * g.outC;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t ci = e % g.inC, o = (e / g.inC) % g.outC, kx = (e / (g.inC * g.outC)) % g.kW;
    const int64_t ky = e / (g.inC * g.outC * g.kW);
    flipped[e] = filter[(((g.kH - 1 - ky) * g.kW + (g.kW - 1 - kx)) * g.inC + ci) * g.outC + o];
  }
}

// Launches forwardKernel with the channel block that fits outC (16, 32, or 64, with blockIdx.y over blocks of 64),
// K split into pieces of about kSplitK elements (deep layers: 64 channels x 9 taps make 6 splits).
constexpr int64_t kSplitK = 96;

void launchForward(const ConvGeometry& g, const float* x, const float* xMask, const float* filter,
                   const ActiveList& list, int64_t capacity, float* y) {
  const int64_t K = g.kH * g.kW * g.inC;
  const int64_t splits = std::max<int64_t>(1, (K + kSplitK / 2) / kSplitK);
  const int64_t kSpan = ((K + splits - 1) / splits + kTile - 1) / kTile * kTile;
  const int64_t used = std::max<int64_t>(1, (K + kSpan - 1) / kSpan);
  const auto run = [&](auto kernel, int bn) {
    const int64_t bm = kMicro * kThreads / (bn / kMicro);
    const dim3 grid(static_cast<unsigned>((capacity + bm - 1) / bm), static_cast<unsigned>((g.outC + bn - 1) / bn),
                    static_cast<unsigned>(used));
    if (grid.x == 0) return;
    if (used == 1) {
      PACT_LAUNCH(kernel, grid, kThreads, 0, nullptr, g, x, xMask, filter, list.count(), list.positions(), kSpan,
                  capacity, nullptr, y);
      check(cudaGetLastError(), "forward launch");
      return;
    }
    Scratch partial(sizeof(float) * static_cast<size_t>(used * capacity * g.outC));
    PACT_LAUNCH(kernel, grid, kThreads, 0, nullptr, g, x, xMask, filter, list.count(), list.positions(), kSpan,
                capacity, partial.as<float>(), y);
    check(cudaGetLastError(), "forward launch");
    PACT_LAUNCH(sumSplitsKernel, blocksFor(capacity * g.outC), kThreads, 0, nullptr, list.count(), list.positions(),
                partial.as<float>(), used, capacity, g.outC, y);
    check(cudaGetLastError(), "sumSplits launch");
  };
  if (g.outC <= 16) run(forwardKernel<16>, 16);
  else if (g.outC <= 32) run(forwardKernel<32>, 32);
  else run(forwardKernel<64>, 64);
}

// Input gradient for any stride (the stride-1 case runs forwardKernel on the flipped filter): one thread per dx
// element (gather form, grid-stride), summing dy*W over the <= kH*kW outputs that read it, skipping inactive ones.
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
        if (mask != nullptr && !(mask[p] > 0.0f)) continue;
        const float* d = dy + p * g.outC;
        const float* w = filter + ((ky * g.kW + kx) * g.inC + ci) * g.outC;
        for (int64_t o = 0; o < g.outC; ++o) acc += d[o] * w[o];
      }
    }
    dx[i] = acc;
  }
}

}  // namespace

void maskedConv2dForward(const ConvGeometry& g, const float* x, const float* filter, const float* mask, float* y) {
  const bool dense = mask == nullptr;  // every position active and written: no list, no zeros
  ActiveList list(outPositions(g), dense);
  if (!dense) {
    compact(g, mask, list);
    check(cudaMemsetAsync(y, 0, sizeof(float) * outPositions(g) * g.outC, nullptr), "cudaMemsetAsync");
  }
  launchForward(g, x, nullptr, filter, list, outPositions(g), y);
}

void maskedConv2dBackpropInput(const ConvGeometry& g, const float* dy, const float* filter, const float* mask,
                               float* dx) {
  const int64_t inputs = g.batch * g.inH * g.inW;
  if (g.strideH != 1 || g.strideW != 1) {
    PACT_LAUNCH(backpropInputKernel, blocksFor(inputs * g.inC), kThreads, 0, nullptr, g, dy, filter, mask, dx);
    check(cudaGetLastError(), "backpropInput launch");
    return;
  }
  // Stride 1: dx is the forward convolution of dy (masked) with the flipped filter, padded by k - 1 - pad, computed
  // at the input positions that some active output reads.
  ConvGeometry t = g;
  t.inH = g.outH;
  t.inW = g.outW;
  t.inC = g.outC;
  t.outC = g.inC;
  t.outH = g.inH;
  t.outW = g.inW;
  t.padTop = g.kH - 1 - g.padTop;
  t.padLeft = g.kW - 1 - g.padLeft;
  t.padBottom = g.kH - 1 - g.padBottom;
  t.padRight = g.kW - 1 - g.padRight;
  Scratch flipped(sizeof(float) * static_cast<size_t>(g.kH * g.kW * g.inC * g.outC));
  PACT_LAUNCH(flipFilterKernel, blocksFor(g.kH * g.kW * g.inC * g.outC), kThreads, 0, nullptr, g, filter,
              flipped.as<float>());
  check(cudaGetLastError(), "flipFilter launch");
  // Dense: every input position, each row of dx written (0 where no window reaches).
  const bool dense = mask == nullptr;
  ActiveList list(inputs, dense);
  if (!dense) {
    check(cudaMemsetAsync(list.count(), 0, sizeof(int), nullptr), "cudaMemsetAsync");
    PACT_LAUNCH(compactReadKernel, blocksFor(inputs), kThreads, 0, nullptr, g, mask, list.count(), list.positions());
    check(cudaGetLastError(), "compactRead launch");
    check(cudaMemsetAsync(dx, 0, sizeof(float) * inputs * g.inC, nullptr), "cudaMemsetAsync");
  }
  launchForward(t, dy, mask, flipped.as<float>(), list, inputs, dx);
}

void maskedConv2dBackpropFilter(const ConvGeometry& g, const float* x, const float* dy, const float* mask,
                                float* dfilter) {
  const int64_t K = g.kH * g.kW * g.inC, total = K * g.outC;
  if (total == 0) return;
  ActiveList list(outPositions(g), mask == nullptr);
  if (mask != nullptr) compact(g, mask, list);
  const auto run = [&](auto kernel, int bn) {
    const int64_t bk = kMicro * kThreads / (bn / kMicro);
    const int64_t kBlocks = (K + bk - 1) / bk, cBlocks = (g.outC + bn - 1) / bn;
    const int64_t spans = std::max<int64_t>(
        1, std::min({kFilterBlocks / (kBlocks * cBlocks), (outPositions(g) + 255) / 256, kMaxBlocks}));
    Scratch partial(sizeof(float) * static_cast<size_t>(spans * total));
    const dim3 grid(static_cast<unsigned>(kBlocks), static_cast<unsigned>(spans), static_cast<unsigned>(cBlocks));
    PACT_LAUNCH(kernel, grid, kThreads, 0, nullptr, g, x, dy, list.count(), list.positions(), outPositions(g),
                partial.as<float>());
    check(cudaGetLastError(), "backpropFilter launch");
    PACT_LAUNCH(sumSpansKernel, blocksFor(32 * total), kThreads, 0, nullptr, partial.as<float>(), spans, total,
                dfilter);
    check(cudaGetLastError(), "sumSpans launch");
  };
  if (g.outC <= 16) run(backpropFilterKernel<16>, 16);
  else if (g.outC <= 32) run(backpropFilterKernel<32>, 32);
  else run(backpropFilterKernel<64>, 64);
}

}  // namespace pact::cuda
