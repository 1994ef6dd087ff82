// Winograd F(2x2, 3x3) on fully active 2x2 tiles; see masked_winograd.h for the algebra.
//
// Per chunk of tiles (a few dozen, so that a chunk's transformed data stays in L2):
//   forward: the input transform of every tile into V [tiles][16][inC], 16 GEMMs M_k = V_k * U_k with the transformed
//   filter U [16][inC][outC] (computed once per call), then the output transform of M [tiles][16][outC] into y;
//   filter gradient: the input transform into V as above, the output-gradient transform into E [tiles][16][outC],
//   and 16 GEMMs S_k += V_k^T * E_k into a per-thread sum S [16][inC][outC], transformed back to [3][3][inC][outC]
//   once per call;
//   input gradient: E as above, 16 GEMMs D_k = E_k * U_k^T, and the transpose of the input transform of D added into
//   each tile's 4x4 input rows of dx.
// The transforms run over the channels one vector at a time (masked_winograd.inc): 16 channels a vector where the
// CPU has AVX-512 and inC and outC are multiples of 16 (see hasAvx512Kernels), else 8 (inC and outC are multiples of
// 8).
#include "cpu/masked_winograd.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "cpu/dispatch.h"
#include "cpu/isa.h"
#include "cpu/mask_rows.h"
#include "cpu/simd_vec.h"
#include "cpu/threads.h"

namespace pact::masked::winograd {

namespace {

constexpr int kPoints = 16;  // the 4x4 transformed tile

constexpr int64_t kLanes = 8;  // the narrowest vector: inC and outC are multiples of it

// Tiles per chunk: the chunk's V and M (or E) take about 64 KiB each; a multiple of 12, the GEMMs' row blocks.
int64_t chunkTiles(const ConvGeometry& g) {
  return std::clamp<int64_t>(1024 / std::max(g.inC, g.outC) / 12 * 12, 12, 60);
}

// Floats from one tile's transformed rows to the next in a chunk's V, M, E or D ([tile][16 points][C]): one cache
// line more than the 16 rows, so that a GEMM's rows for one point, a tile apart, do not all map to one L1 set (at 64
// channels the 16 rows are 4 KiB).
template <typename Ch>
constexpr int64_t tileStride(Ch C) {
  return 16 * static_cast<int64_t>(C) + 16;
}

// Output position p = (b*outH + oy)*outW + ox as (b, oy, ox); in 32-bit arithmetic where p fits (64-bit divisions
// took ~11% of a 16-channel forward).
struct Position {
  int64_t b, oy, ox;
};
inline Position decode(const ConvGeometry& g, int64_t p) {
  const int64_t plane = g.outH * g.outW;
  if (p <= INT32_MAX && plane <= INT32_MAX) {
    const uint32_t q = static_cast<uint32_t>(p), pl = static_cast<uint32_t>(plane), w = static_cast<uint32_t>(g.outW);
    const uint32_t b = q / pl, r = q - b * pl, oy = r / w;
    return {b, oy, r - oy * w};
  }
  return {p / plane, (p % plane) / g.outW, p % g.outW};
}

// The 16 rows [inC] of `base` (x, or dx) that tile p's windows reach: rows[4*i + j] at input row oy - padTop + i,
// column ox - padLeft + j, or `outside` where that lies outside the image (tiles at a border; the kernels read and
// write the rows of a tile inside the image through one pointer instead).
template <typename T>
void tileRows(const ConvGeometry& g, T* base, int64_t p, T* outside, T* rows[kPoints]) {
  const Position t = decode(g, p);
  for (int i = 0; i < 4; ++i) {
    const int64_t iy = t.oy - g.padTop + i;
    for (int j = 0; j < 4; ++j) {
      const int64_t ix = t.ox - g.padLeft + j;
      const bool inside = iy >= 0 && iy < g.inH && ix >= 0 && ix < g.inW;
      rows[4 * i + j] = inside ? base + ((t.b * g.inH + iy) * g.inW + ix) * g.inC : outside;
    }
  }
}

// Asks for tile p's input rows to be brought into the cache (the tiles are scattered over x).
void prefetchTile(const ConvGeometry& g, const float* x, int64_t p) {
  const Position t = decode(g, p);
  const int64_t ix0 = std::max<int64_t>(0, t.ox - g.padLeft), ix1 = std::min(g.inW, t.ox - g.padLeft + 4);
  if (ix0 >= ix1) return;
  for (int64_t iy = std::max<int64_t>(0, t.oy - g.padTop); iy < std::min(g.inH, t.oy - g.padTop + 4); ++iy) {
    prefetchRow(x + ((t.b * g.inH + iy) * g.inW + ix0) * g.inC, (ix1 - ix0) * g.inC);
  }
}

// U [16][inC][outC] = G g G^T for every (input, output) channel pair of the HWIO filter, G = [1 0 0; 1/2 1/2 1/2;
// 1/2 -1/2 1/2; 0 0 1]: G v = (v0, (v0 + v1 + v2) / 2, (v0 - v1 + v2) / 2, v2), on the columns then the rows. Each
// step runs over all the channel pairs at once (contiguous, vectorised; the planes are 4 KiB multiples apart, and a
// loop over the planes per pair would miss L1 on each of them).
std::vector<float> filterTransform(const ConvGeometry& g, const float* filter) {
  const int64_t IO = g.inC * g.outC;
  std::vector<float> t(static_cast<size_t>(12 * IO)), u(static_cast<size_t>(kPoints * IO));
  // out[k * IO + i] = (G v)_k for v_j = in[j * stride + i].
  const auto gv = [IO](const float* in, int64_t stride, float* out) {
    for (int64_t i = 0; i < IO; ++i) {
      const float v0 = in[i], v1 = in[stride + i], v2 = in[2 * stride + i];
      out[i] = v0;
      out[IO + i] = 0.5f * (v0 + v1 + v2);
      out[2 * IO + i] = 0.5f * (v0 - v1 + v2);
      out[3 * IO + i] = v2;
    }
  };
  for (int kx = 0; kx < 3; ++kx) gv(filter + kx * IO, 3 * IO, t.data() + 4 * kx * IO);  // t[kx][a] = (G g)[a][kx]
  for (int a = 0; a < 4; ++a) gv(t.data() + a * IO, 4 * IO, u.data() + 4 * a * IO);      // u[a][b] = (G g G^T)[a][b]
  return u;
}

// Whether the 2x2 tile at columns 2j, 2j + 1 of the mask rows m and m + W is fully active (branch-free).
inline uint8_t fullTile(const float* m, int64_t W, int64_t j) {
  return isActive(m[2 * j]) & isActive(m[2 * j + 1]) & isActive(m[W + 2 * j]) & isActive(m[W + 2 * j + 1]);
}

int64_t chunkCount(int64_t n, int64_t size) { return (n + size - 1) / size; }

#if defined(__AVX2__) && defined(__FMA__)
namespace avx2 {
using Vec = simd::Avx2Vec;
#include "cpu/masked_winograd.inc"
}  // namespace avx2

#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx512dq,avx512bw")
namespace avx512 {
using Vec = simd::Avx512Vec;
#include "cpu/masked_winograd.inc"
}  // namespace avx512
#pragma GCC pop_options
#else
namespace avx2 {
using Vec = simd::PortableVec;
#include "cpu/masked_winograd.inc"
}  // namespace avx2
namespace avx512 = avx2;  // never run: hasAvx512Kernels is false
#endif

}  // namespace

bool hasAvx512Kernels(const ConvGeometry& g) {
#if defined(__AVX2__) && defined(__FMA__)
  return useAvx512() && g.inC % 16 == 0 && g.outC % 16 == 0;
#else
  (void)g;
  return false;
#endif
}

bool applies(const ConvGeometry& g) {
  return g.kH == 3 && g.kW == 3 && g.strideH == 1 && g.strideW == 1 && g.inC % kLanes == 0 &&
         g.outC % kLanes == 0;
}

int64_t countTiles(const ConvGeometry& g, const float* mask) {
  const int64_t W = g.outW, pairs = W / 2;
  // Images split among the threads (a serial scan kept one thread waiting).
  return sumShares<int64_t>(static_cast<size_t>(g.batch), 1, [&](size_t b0, size_t b1, int64_t* count) {
    for (auto b = static_cast<int64_t>(b0); b < static_cast<int64_t>(b1); ++b) {
      for (int64_t oy = 0; oy + 1 < g.outH; oy += 2) {
        const float* m = mask + (b * g.outH + oy) * W;
        for (int64_t j = 0; j < pairs; ++j) *count += fullTile(m, W, j);
      }
    }
  })[0];
}

namespace {

// split's lists for images [b0, b1) into tiles and rest, which have room for every position of those images
// (written unconditionally at the next free slot, which advances by 0 or 1: no branch on the mask, where random
// masks would mispredict every other position); returns the lengths written.
std::pair<int64_t, int64_t> splitImages(const ConvGeometry& g, const float* mask, int64_t b0, int64_t b1,
                                        int64_t* tiles, int64_t* rest) {
  const int64_t W = g.outW, pairs = W / 2;
  int64_t nTiles = 0, nRest = 0;
  std::vector<uint8_t> full(static_cast<size_t>(W + 1), 0);  // per column: its tile in the current row pair is full
  // Row pairs in order: their tiles, then each row's active positions outside them (both lists stay ascending).
  for (int64_t row = b0 * g.outH; row < b1 * g.outH; ++row) {
    const int64_t oy = row % g.outH, first = row * W;
    const float* m = mask + first;
    if (oy % 2 == 0 && oy + 1 == g.outH) {
      std::fill(full.begin(), full.end(), 0);  // a last row of its own (odd outH): no tile, no row below to read
    } else if (oy % 2 == 0) {
      for (int64_t j = 0; j < pairs; ++j) {
        const uint8_t f = fullTile(m, W, j);
        full[static_cast<size_t>(2 * j)] = full[static_cast<size_t>(2 * j + 1)] = f;
        tiles[nTiles] = first + 2 * j;
        nTiles += f;
      }
    }
    for (int64_t ox = 0; ox < W; ++ox) {
      rest[nRest] = first + ox;
      nRest += isActive(m[ox]) & !full[static_cast<size_t>(ox)];
    }
  }
  return {nTiles, nRest};
}

}  // namespace

Split split(const ConvGeometry& g, const float* mask, int64_t activeCount) {
  // Images split among the threads, each listing its share into a scratch list; the shares joined in order.
  const int64_t shares = std::max<int64_t>(1, std::min<int64_t>(numThreads(), g.batch));
  const int64_t plane = g.outH * g.outW;
  std::vector<int64_t> tileCounts(static_cast<size_t>(shares)), restCounts(static_cast<size_t>(shares));
  std::vector<std::unique_ptr<int64_t[]>> tiles(static_cast<size_t>(shares)), rest(static_cast<size_t>(shares));
  const auto bound = [&](int64_t k) { return g.batch * k / shares; };
  parallelFor(static_cast<size_t>(shares), 1, [&](size_t begin, size_t end) {
    for (size_t k = begin; k < end; ++k) {
      const int64_t b0 = bound(static_cast<int64_t>(k)), b1 = bound(static_cast<int64_t>(k) + 1);
      const auto room = static_cast<size_t>((b1 - b0) * plane + 1);
      tiles[k].reset(new int64_t[room / 4 + 1]);
      rest[k].reset(new int64_t[room]);
      std::tie(tileCounts[k], restCounts[k]) = splitImages(g, mask, b0, b1, tiles[k].get(), rest[k].get());
    }
  });
  Split s;
  s.tiles.reserve(static_cast<size_t>(activeCount / 4 + 1));
  s.rest.reserve(static_cast<size_t>(activeCount));
  for (size_t k = 0; k < static_cast<size_t>(shares); ++k) {
    s.tiles.insert(s.tiles.end(), tiles[k].get(), tiles[k].get() + tileCounts[k]);
    s.rest.insert(s.rest.end(), rest[k].get(), rest[k].get() + restCounts[k]);
  }
  return s;
}

void forward(const ConvGeometry& g, const float* x, const float* filter, const std::vector<int64_t>& tiles,
             const float* zeroMask, float* y) {
  const int64_t n = static_cast<int64_t>(tiles.size());
  if (n == 0) {
    if (zeroMask != nullptr) zeroInactiveRows(zeroMask, g.batch * g.outH * g.outW, g.outC, y, /*stream=*/true);
    return;
  }
  const std::vector<float> u = filterTransform(g, filter);
  if (hasAvx512Kernels(g)) {
    avx512::forwardTiles(g, x, u.data(), tiles, zeroMask, y);
  } else {
    avx2::forwardTiles(g, x, u.data(), tiles, zeroMask, y);
  }
}

std::vector<float> transposedFilterTransform(const ConvGeometry& g, const float* filter) {
  const std::vector<float> u = filterTransform(g, filter);
  const int64_t IC = g.inC, OC = g.outC;
  std::vector<float> ut(u.size());
  for (int k = 0; k < kPoints; ++k) {
    for (int64_t c = 0; c < IC; ++c) {
      for (int64_t o = 0; o < OC; ++o) {
        ut[static_cast<size_t>((k * OC + o) * IC + c)] = u[static_cast<size_t>((k * IC + c) * OC + o)];
      }
    }
  }
  return ut;
}

void addBackpropInput(const ConvGeometry& g, const float* dy, const std::vector<float>& ut, const int64_t* tiles,
                      int64_t n, float* dx, const std::function<void(int64_t)>& before) {
  if (n == 0) return;
  if (hasAvx512Kernels(g)) {
    avx512::addTileInputGradients(g, dy, ut.data(), tiles, n, dx, before);
  } else {
    avx2::addTileInputGradients(g, dy, ut.data(), tiles, n, dx, before);
  }
}

void addBackpropFilter(const ConvGeometry& g, const float* x, const float* dy, const std::vector<int64_t>& tiles,
                       float* dfilter) {
  const int64_t n = static_cast<int64_t>(tiles.size());
  if (n == 0) return;
  const int64_t IO = g.inC * g.outC, chunks = chunkCount(n, chunkTiles(g));
  // One sum per part of the tiles (as many parts as threads, fixed for a thread count), added in order below.
  const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(numThreads(), chunks));
  std::vector<float> sums(static_cast<size_t>(parts * kPoints * IO), 0.0f);
  if (hasAvx512Kernels(g)) {
    avx512::sumTileGradients(g, x, dy, tiles, parts, sums.data());
  } else {
    avx2::sumTileGradients(g, x, dy, tiles, parts, sums.data());
  }
  // dfilter[ky][kx] += G^T S G with G^T w = (w0 + (w1 + w2) / 2, (w1 - w2) / 2, (w1 + w2) / 2 + w3), on the
  // columns then the rows, each step over all the channel pairs at once (as in filterTransform).
  float* sum = sums.data();
  for (int64_t part = 1; part < parts; ++part) {
    const float* other = sums.data() + part * kPoints * IO;
    for (int64_t i = 0; i < kPoints * IO; ++i) sum[i] += other[i];
  }
  // out[k * outStride + i] (+)= (G^T w)_k for w_j = in[j * stride + i].
  const auto gtv = [IO](const float* in, int64_t stride, float* out, int64_t outStride, bool accumulate) {
    for (int64_t i = 0; i < IO; ++i) {
      const float w0 = in[i], w1 = in[stride + i], w2 = in[2 * stride + i], w3 = in[3 * stride + i];
      const float r0 = w0 + 0.5f * (w1 + w2), r1 = 0.5f * (w1 - w2), r2 = 0.5f * (w1 + w2) + w3;
      out[i] = accumulate ? out[i] + r0 : r0;
      out[outStride + i] = accumulate ? out[outStride + i] + r1 : r1;
      out[2 * outStride + i] = accumulate ? out[2 * outStride + i] + r2 : r2;
    }
  };
  std::vector<float> t(static_cast<size_t>(12 * IO));  // t[b][ky] = (G^T S)[ky][b]
  for (int b = 0; b < 4; ++b) gtv(sum + b * IO, 4 * IO, t.data() + 3 * b * IO, IO, false);
  // dfilter[ky][kx] += (G^T (G^T S)[ky][.])_kx: the four values (G^T S)[ky][b] lie at t[b][ky], 3 * IO apart.
  for (int ky = 0; ky < 3; ++ky) gtv(t.data() + ky * IO, 3 * IO, dfilter + 3 * ky * IO, IO, true);
}

}  // namespace pact::masked::winograd
