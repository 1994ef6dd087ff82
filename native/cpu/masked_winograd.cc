// Winograd F(M x M, 3 x 3), M = 2 or 4, on fully active M x M tiles; see masked_winograd.h for the algebra. With
// P = (M + 2)^2 transformed points per tile, per chunk of tiles (a few dozen, so that a chunk's transformed data
// stays in L2):
//   forward: the input transform of every tile into V [tiles][P][inC], P GEMMs M_k = V_k * U_k with the transformed
//   filter U [P][inC][outC] (computed once per call), then the output transform of M [tiles][P][outC] into y;
//   filter gradient: the input transform into V as above, the output-gradient transform into E [tiles][P][outC],
//   and P GEMMs S_k += V_k^T * E_k into a per-thread sum S [P][inC][outC], transformed back to [3][3][inC][outC]
//   once per call;
//   input gradient: E as above, P GEMMs D_k = E_k * U_k^T, and the transpose of the input transform of D added into
//   each tile's (M + 2) x (M + 2) input rows of dx.
// The transforms run over the channels one vector at a time (masked_winograd.inc): 16 channels a vector where the
// CPU has AVX-512 and inC and outC are multiples of 16 (see hasAvx512Kernels), else 8 (inC and outC are multiples of
// 8).
#include "cpu/masked_winograd.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
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

// F(M x M, 3 x 3) transforms (M + 2) x (M + 2) points per tile.
template <int M>
constexpr int kPoints = (M + 2) * (M + 2);

constexpr int64_t kLanes = 8;  // the narrowest vector: inC and outC are multiples of it

// f(std::integral_constant<int, M>) for the tile size M (2 or 4).
template <typename F>
void withTile(int size, F&& f) {
  if (!withConstant<2, 4>(size, f)) throw std::invalid_argument("winograd: tile size must be 2 or 4");
}

// Tiles per chunk: the chunk's V and M (or E) take about 64 KiB each; a multiple of 12, the GEMMs' row blocks.
template <int M>
int64_t chunkTiles(const ConvGeometry& g) {
  return std::clamp<int64_t>(16 * 1024 / kPoints<M> / std::max(g.inC, g.outC) / 12 * 12, 12, 60);
}

// Tiles per chunk of the filter gradient: twice chunkTiles (48 at 16 channels, 24 at 32 and 64). Its GEMMs add into
// the transformed filter's gradient, loaded and stored once per point and chunk, so longer chunks pay that less often:
// 0.88-0.97x the filter gradient's time from d = 0.5 at the three stage shapes, 0.94-1.01x below (same-process A/B of
// the builds, batch 128, Intel Xeon, 2026-11-27); chunks of 60 took 1.04-1.12x that from 32 channels.
template <int M>
int64_t filterGradientChunkTiles(const ConvGeometry& g) {
  return 2 * chunkTiles<M>(g);
}

// Floats from one tile's transformed rows to the next in a chunk's V, M, E or D ([tile][points][C]): one cache line
// more than the rows, so that a GEMM's rows for one point, a tile apart, do not all map to one L1 set (at 64
// channels F(2x2, 3x3)'s 16 rows are 4 KiB).
template <int M, typename Ch>
constexpr int64_t tileStride(Ch C) {
  return kPoints<M> * static_cast<int64_t>(C) + 16;
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

// The (M + 2)^2 rows [inC] of `base` (x, or dx) that tile p's windows reach: rows[(M + 2)*i + j] at input row
// oy - padTop + i, column ox - padLeft + j, or `outside` where that lies outside the image (tiles at a border; the
// kernels read and write the rows of a tile inside the image through one pointer instead).
template <int M, typename T>
void tileRows(const ConvGeometry& g, T* base, int64_t p, T* outside, T* rows[kPoints<M>]) {
  constexpr int N = M + 2;
  const Position t = decode(g, p);
  for (int i = 0; i < N; ++i) {
    const int64_t iy = t.oy - g.padTop + i;
    for (int j = 0; j < N; ++j) {
      const int64_t ix = t.ox - g.padLeft + j;
      const bool inside = iy >= 0 && iy < g.inH && ix >= 0 && ix < g.inW;
      rows[N * i + j] = inside ? base + ((t.b * g.inH + iy) * g.inW + ix) * g.inC : outside;
    }
  }
}

// Asks for tile p's input rows to be brought into the cache (the tiles are scattered over x).
template <int M>
void prefetchTile(const ConvGeometry& g, const float* x, int64_t p) {
  constexpr int N = M + 2;
  const Position t = decode(g, p);
  const int64_t ix0 = std::max<int64_t>(0, t.ox - g.padLeft), ix1 = std::min(g.inW, t.ox - g.padLeft + N);
  if (ix0 >= ix1) return;
  for (int64_t iy = std::max<int64_t>(0, t.oy - g.padTop); iy < std::min(g.inH, t.oy - g.padTop + N); ++iy) {
    prefetchRow(x + ((t.b * g.inH + iy) * g.inW + ix0) * g.inC, (ix1 - ix0) * g.inC);
  }
}

// G [M + 2][3], the filter transform: F(2x2, 3x3) G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1] (exact in binary);
// F(4x4, 3x3) G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1].
template <int M>
struct FilterMatrix;
template <>
struct FilterMatrix<2> {
  static constexpr float G[4][3] = {{1, 0, 0}, {0.5f, 0.5f, 0.5f}, {0.5f, -0.5f, 0.5f}, {0, 0, 1}};
};
template <>
struct FilterMatrix<4> {
  static constexpr float G[6][3] = {{1.0f / 4, 0, 0},
                                    {-1.0f / 6, -1.0f / 6, -1.0f / 6},
                                    {-1.0f / 6, 1.0f / 6, -1.0f / 6},
                                    {1.0f / 24, 1.0f / 12, 1.0f / 6},
                                    {1.0f / 24, -1.0f / 12, 1.0f / 6},
                                    {0, 0, 1}};
};

// out[k * outStride + i] (+)= sum_j coefficient(k, j) * in[j * inStride + i] for k < rows, j < cols, i < IO: a
// small matrix applied to planes of IO channel pairs, each step over all the pairs at once (contiguous, vectorised;
// the planes are 4 KiB multiples apart, and a loop over the planes per pair would miss L1 on each of them).
template <typename Coefficient>
void applyToPlanes(int rows, int cols, Coefficient&& coefficient, const float* in, int64_t inStride, float* out,
                   int64_t outStride, int64_t IO, bool accumulate) {
  for (int k = 0; k < rows; ++k) {
    float* o = out + k * outStride;
    if (!accumulate) std::fill(o, o + IO, 0.0f);
    for (int j = 0; j < cols; ++j) {
      const float w = coefficient(k, j);
      if (w == 0.0f) continue;
      const float* v = in + j * inStride;
      for (int64_t i = 0; i < IO; ++i) o[i] += w * v[i];
    }
  }
}

// U [points][inC][outC] = G g G^T for every (input, output) channel pair of the HWIO filter: G on the columns, then
// on the rows.
template <int M>
LineAlignedFloats filterTransform(const ConvGeometry& g, const float* filter) {
  constexpr int N = M + 2;
  const auto& G = FilterMatrix<M>::G;
  const int64_t IO = g.inC * g.outC;
  std::vector<float> t(static_cast<size_t>(3 * N * IO));
  LineAlignedFloats u(static_cast<size_t>(kPoints<M> * IO));
  const auto gv = [&](int k, int j) { return G[k][j]; };
  // t[kx][a] = (G g)[a][kx], then u[a][b] = (G (G g)^T)[b][a]^T = (G g G^T)[a][b].
  for (int kx = 0; kx < 3; ++kx) {
    applyToPlanes(N, 3, gv, filter + kx * IO, 3 * IO, t.data() + N * kx * IO, IO, IO, false);
  }
  for (int a = 0; a < N; ++a) {
    applyToPlanes(N, 3, gv, t.data() + a * IO, N * IO, u.data() + N * a * IO, IO, IO, false);
  }
  return u;
}

// A tile's active bits when all its M x M positions are active.
template <int M>
constexpr uint32_t kFullTile = (1u << (M * M)) - 1;

// The (M + 2) x (M + 2) input positions (bit (M + 2)*i + j: row i, column j) that the 3x3 windows of a tile's active
// outputs (bits as in Split::masks) reach: row by row, without branches (output row i's active columns j reach input
// columns j..j+2 of input rows i..i+2).
template <int M>
constexpr uint64_t inputReach(uint32_t active) {
  constexpr int N = M + 2;
  uint64_t reach = 0;
  for (int i = 0; i < M; ++i) {
    const uint64_t row = (active >> (M * i)) & ((1u << M) - 1);
    const uint64_t columns = row | row << 1 | row << 2;
    reach |= (columns | columns << N | columns << (2 * N)) << (N * i);
  }
  return reach;
}

// inputReach of a full tile: all (M + 2)^2 input positions.
template <int M>
constexpr uint64_t kFullReach = inputReach<M>(kFullTile<M>);
static_assert(kFullReach<2> == (uint64_t{1} << 16) - 1 && kFullReach<4> == (uint64_t{1} << 36) - 1);

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

namespace {

// The active positions of the M x M tile at columns M*j .. M*j + M - 1 of the M mask rows from m (W apart), as bits
// (bit M*i + k: row i, column M*j + k): from the rows' bits where they are given (rows up to 64 wide), else from m.
template <int M>
inline uint32_t tileBits(const float* m, const uint64_t* rowBits, int64_t W, int64_t j) {
  uint32_t bits = 0;
  for (int i = 0; i < M; ++i) {
    uint32_t row = 0;
    if (rowBits != nullptr) {
      row = static_cast<uint32_t>(rowBits[i] >> (M * j)) & ((1u << M) - 1);
    } else {
      for (int k = 0; k < M; ++k) row |= static_cast<uint32_t>(isActive(m[i * W + M * j + k])) << k;
    }
    bits |= row << (M * i);
  }
  return bits;
}

// Calls visit(first, rows, bits) for each group of M rows (fewer at an image's end) of images [b0, b1): first the
// group's first position, bits its rows' active bits from rowBits (MaskScan::rowBits) where given, else null.
template <int M, typename Visit>
void forEachRowGroup(const ConvGeometry& g, const uint64_t* rowBits, int64_t b0, int64_t b1, Visit&& visit) {
  const int64_t W = g.outW;
  for (int64_t b = b0; b < b1; ++b) {
    for (int64_t oy = 0; oy < g.outH; oy += M) {
      const int64_t rows = std::min<int64_t>(M, g.outH - oy), row = b * g.outH + oy;
      visit(row * W, rows, rowBits == nullptr ? nullptr : rowBits + row);
    }
  }
}

// Calls f(j) for the tiles j < groups of a group of M full rows that have an active position: from the rows' bits
// where given (a tile's bits ORed over the rows and folded onto its first column; most tiles of a sparse mask are
// empty), else every tile.
template <int M, typename F>
void forEachOccupiedTile(const uint64_t* groupBits, int64_t groups, F&& f) {
  if (groupBits == nullptr) {
    for (int64_t j = 0; j < groups; ++j) f(j);
    return;
  }
  uint64_t occupied = 0;
  for (int i = 0; i < M; ++i) occupied |= groupBits[i];
  for (int shift = 1; shift < M; shift <<= 1) occupied |= occupied >> shift;
  constexpr uint64_t kFirstColumns = M == 2 ? 0x5555555555555555ull : 0x1111111111111111ull;
  occupied &= kFirstColumns & (groups * M >= 64 ? ~uint64_t{0} : (uint64_t{1} << (groups * M)) - 1);
  for (; occupied != 0; occupied &= occupied - 1) f(std::countr_zero(occupied) / M);
}

template <int M>
TileCensus censusOf(const ConvGeometry& g, const float* mask, const uint64_t* rowBits, int minActive) {
  const int64_t W = g.outW, groups = W / M;
  // Images split among the threads (a serial scan kept one thread waiting).
  const std::vector<int64_t> sums =
      sumShares<int64_t>(static_cast<size_t>(g.batch), 3, [&](size_t b0, size_t b1, int64_t* count) {
        forEachRowGroup<M>(g, rowBits, static_cast<int64_t>(b0), static_cast<int64_t>(b1),
                           [&](int64_t first, int64_t rows, const uint64_t* groupBits) {
                             if (rows < M) return;
                             forEachOccupiedTile<M>(groupBits, groups, [&](int64_t j) {
                               const int active = std::popcount(tileBits<M>(mask + first, groupBits, W, j));
                               if (active >= minActive) count[0] += active;
                               count[1] += active > 0;
                               count[2] += active;
                             });
                           });
      });
  return {sums[0], sums[1], sums[2]};
}

// split's lists for images [b0, b1) into tiles (with their active bits in masks) and rest, which have room for
// every position of those images, and their rows' uncovered bits where rowBits is given (uncovered then not null:
// Split::uncovered); returns the lengths written. Each group of M rows lists its tiles, then its rows'
// active positions outside them, one set bit at a time where rows are up to 64 wide (the cost goes with the active
// count: the position-by-position scan took 13% of a 32x32x16 F(4x4, 3x3) forward at d = 0.25).
template <int M>
std::pair<int64_t, int64_t> splitImages(const ConvGeometry& g, const float* mask, const uint64_t* rowBits, int64_t b0,
                                        int64_t b1, int minActive, int64_t* tiles, uint16_t* masks, int64_t* rest,
                                        uint64_t* uncovered) {
  const int64_t W = g.outW, groups = W / M;
  int64_t nTiles = 0, nRest = 0;
  std::vector<uint8_t> taken(static_cast<size_t>(W), 0);  // rows over 64 wide: per column, in a tile of the group
  forEachRowGroup<M>(g, rowBits, b0, b1, [&](int64_t first, int64_t rows, const uint64_t* groupBits) {
    uint64_t takenBits = 0;  // rows up to 64 wide: the columns in a tile of the group
    if (groupBits == nullptr) std::fill(taken.begin(), taken.end(), 0);
    if (rows == M) {
      forEachOccupiedTile<M>(groupBits, groups, [&](int64_t j) {
        const uint32_t bits = tileBits<M>(mask + first, groupBits, W, j);
        if (std::popcount(bits) < minActive) return;
        tiles[nTiles] = first + M * j;
        masks[nTiles++] = static_cast<uint16_t>(bits);
        if (groupBits != nullptr) {
          takenBits |= ((uint64_t{1} << M) - 1) << (M * j);
        } else {
          std::fill_n(taken.begin() + M * j, M, 1);
        }
      });
    }
    for (int64_t i = 0; i < rows; ++i) {
      const int64_t row = first + i * W;
      if (uncovered != nullptr) uncovered[row / W] = ~groupBits[i] & ~takenBits & widthBits(W);
      if (groupBits != nullptr) {
        for (uint64_t r = groupBits[i] & ~takenBits; r != 0; r &= r - 1) rest[nRest++] = row + std::countr_zero(r);
      } else {
        for (int64_t ox = 0; ox < W; ++ox) {
          if (isActive(mask[row + ox]) && !taken[static_cast<size_t>(ox)]) rest[nRest++] = row + ox;
        }
      }
    }
  });
  return {nTiles, nRest};
}

}  // namespace

TileCensus tileCensus(const ConvGeometry& g, const float* mask, const uint64_t* rowBits, int size, int minActive) {
  TileCensus census;
  withTile(size, [&](auto m) { census = censusOf<m>(g, mask, rowBits, minActive); });
  return census;
}

Split split(const ConvGeometry& g, const float* mask, const uint64_t* rowBits, int64_t activeCount, int size,
            int minActive, bool uncovered) {
  // Images split among the threads, each listing its share into a scratch list; the shares joined in order.
  const int64_t shares = std::max<int64_t>(1, std::min<int64_t>(numThreads(), g.batch));
  const int64_t plane = g.outH * g.outW;
  std::vector<int64_t> tileCounts(static_cast<size_t>(shares)), restCounts(static_cast<size_t>(shares));
  std::vector<std::unique_ptr<int64_t[]>> tiles(static_cast<size_t>(shares)), rest(static_cast<size_t>(shares));
  std::vector<std::unique_ptr<uint16_t[]>> masks(static_cast<size_t>(shares));
  Split s;
  s.size = size;
  if (uncovered && rowBits != nullptr) s.uncovered.resize(static_cast<size_t>(g.batch * g.outH));
  const auto bound = [&](int64_t k) { return g.batch * k / shares; };
  withTile(size, [&](auto m) {
    parallelFor(static_cast<size_t>(shares), 1, [&](size_t begin, size_t end) {
      for (size_t k = begin; k < end; ++k) {
        const int64_t b0 = bound(static_cast<int64_t>(k)), b1 = bound(static_cast<int64_t>(k) + 1);
        const auto room = static_cast<size_t>((b1 - b0) * plane + 1);
        tiles[k].reset(new int64_t[room / (m * m) + 1]);
        masks[k].reset(new uint16_t[room / (m * m) + 1]);
        rest[k].reset(new int64_t[room]);
        std::tie(tileCounts[k], restCounts[k]) =
            splitImages<m>(g, mask, rowBits, b0, b1, minActive, tiles[k].get(), masks[k].get(), rest[k].get(),
                           s.uncovered.empty() ? nullptr : s.uncovered.data());
      }
    });
  });
  s.tiles.reserve(static_cast<size_t>(activeCount / (size * size) + 1));
  s.masks.reserve(s.tiles.capacity());
  s.rest.reserve(static_cast<size_t>(activeCount));
  for (size_t k = 0; k < static_cast<size_t>(shares); ++k) {
    s.tiles.insert(s.tiles.end(), tiles[k].get(), tiles[k].get() + tileCounts[k]);
    s.masks.insert(s.masks.end(), masks[k].get(), masks[k].get() + tileCounts[k]);
    s.rest.insert(s.rest.end(), rest[k].get(), rest[k].get() + restCounts[k]);
  }
  return s;
}

void forward(const ConvGeometry& g, const float* x, const float* filter, const Split& s, const float* zeroMask,
             float* y) {
  if (s.tiles.empty()) {
    if (zeroMask != nullptr) zeroInactiveRows(zeroMask, g.batch * g.outH * g.outW, g.outC, y, /*stream=*/true);
    return;
  }
  withTile(s.size, [&](auto m) {
    const LineAlignedFloats u = filterTransform<m>(g, filter);
    if (hasAvx512Kernels(g)) {
      avx512::forwardTiles<m>(g, x, u.data(), s, zeroMask, y);
    } else {
      avx2::forwardTiles<m>(g, x, u.data(), s, zeroMask, y);
    }
  });
}

LineAlignedFloats transposedFilterTransform(const ConvGeometry& g, const float* filter, int size) {
  LineAlignedFloats u(0);
  withTile(size, [&](auto m) { u = filterTransform<m>(g, filter); });
  const int64_t IC = g.inC, OC = g.outC, points = (size + 2) * (size + 2);
  LineAlignedFloats ut(static_cast<size_t>(points * OC * IC));
  for (int64_t k = 0; k < points; ++k) {
    for (int64_t c = 0; c < IC; ++c) {
      for (int64_t o = 0; o < OC; ++o) {
        ut.data()[(k * OC + o) * IC + c] = u.data()[(k * IC + c) * OC + o];
      }
    }
  }
  return ut;
}

void addBackpropInput(const ConvGeometry& g, const float* dy, const Split& s, const LineAlignedFloats& ut,
                      int64_t first, int64_t n, float* dx, const std::function<void(int64_t)>& before) {
  if (n == 0) return;
  withTile(s.size, [&](auto m) {
    if (hasAvx512Kernels(g)) {
      avx512::addTileInputGradients<m>(g, dy, ut.data(), s, first, n, dx, before);
    } else {
      avx2::addTileInputGradients<m>(g, dy, ut.data(), s, first, n, dx, before);
    }
  });
}

int64_t forwardChunkTiles4(const ConvGeometry& g) { return chunkTiles<4>(g); }

bool transposedForwardApplies(const ConvGeometry& g) {
  return applies(g) && g.padTop == 1 && g.padBottom == 1 && g.padLeft == 1 && g.padRight == 1 && g.outH % 4 == 0 &&
         g.outW % 4 == 0 && g.outW <= kBitRowsMaxWidth;
}

Footprint footprint(const ConvGeometry& g, const float* mask, const uint64_t* rowBits) {
  const int64_t H = g.outH;
  Footprint f;
  f.rows.resize(static_cast<size_t>(g.batch * H));
  parallelFor(static_cast<size_t>(g.batch), 1, [&](size_t begin, size_t end) {
    for (size_t b = begin; b < end; ++b) dilateRowBits(rowBits + b * H, H, g.outW, 1, f.rows.data() + b * H);
  });
  for (const uint64_t r : f.rows) f.positions += std::popcount(r);
  // (tileCensus reads the bits only; `mask` has the footprint's shape.)
  f.tiles = tileCensus(g, mask, f.rows.data(), 4, 1).occupied;
  return f;
}

bool backpropInputByTiles(const ConvGeometry& g, const float* dy, const float* filter, const float* mask,
                          const uint64_t* rowBits, const Footprint& f, float* dx, bool outputZeroed) {
  const int64_t rows = g.batch * g.outH;
  if (!transposedForwardApplies(g) || rowBits == nullptr || static_cast<int64_t>(f.rows.size()) != rows) {
    return false;
  }
  const int64_t IC = g.inC, OC = g.outC;
  // The transposed convolution: dy [batch, outH, outW, outC] in, dx out, the filter turned by 180 degrees with its
  // channels swapped: ft[ky][kx][o][c] = filter[2 - ky][2 - kx][c][o].
  const ConvGeometry gt = makeConvGeometry(g.batch, g.outH, g.outW, OC, 3, 3, IC, 1, 1, 1, 1, 1, 1);
  std::vector<float> ft(static_cast<size_t>(9 * IC * OC));
  for (int64_t k = 0; k < 9; ++k) {
    const float* from = filter + (8 - k) * IC * OC;
    for (int64_t c = 0; c < IC; ++c) {
      for (int64_t o = 0; o < OC; ++o) ft[static_cast<size_t>((k * OC + o) * IC + c)] = from[c * OC + o];
    }
  }
  // The footprint's 4x4 tiles: with rows and columns multiples of 4, every footprint position lies in one. (split
  // reads the bits only; `mask` has the footprint's shape and is not read.)
  const Split s = split(gt, mask, f.rows.data(), f.positions, 4, /*minActive=*/1, /*uncovered=*/!outputZeroed);
  if (!s.rest.empty()) return false;  // (not with sides multiples of 4; dx untouched)
  if (s.tiles.empty()) {
    if (!outputZeroed) zeroInactiveRows(mask, rows * g.outW, IC, dx, /*stream=*/true);  // (no active position)
    return true;
  }
  const LineAlignedFloats u = filterTransform<4>(gt, ft.data());
  // With dx not zeroed, Split::uncovered lists the rows' positions outside the footprint, which forwardTiles zeroes
  // (the tiles write zeros at theirs): it reads no zeroMask then, and `mask` only says that it should zero. dy is
  // read where the mask's rowBits are set.
  const float* zeroMask = outputZeroed ? nullptr : mask;
  if (hasAvx512Kernels(gt)) {
    avx512::forwardTiles<4>(gt, dy, u.data(), s, zeroMask, dx, rowBits);
  } else {
    avx2::forwardTiles<4>(gt, dy, u.data(), s, zeroMask, dx, rowBits);
  }
  return true;
}

void addBackpropFilter(const ConvGeometry& g, const float* x, const float* dy, const Split& s, float* dfilter) {
  const int64_t n = static_cast<int64_t>(s.tiles.size());
  if (n == 0) return;
  withTile(s.size, [&](auto m) {
    constexpr int N = m + 2, P = kPoints<m>;
    const int64_t IO = g.inC * g.outC, chunks = chunkCount(n, filterGradientChunkTiles<m>(g));
    // One sum per part of the tiles (as many parts as threads, fixed for a thread count), added in order below.
    const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(numThreads(), chunks));
    LineAlignedFloats sums(static_cast<size_t>(parts * P * IO));
    if (hasAvx512Kernels(g)) {
      avx512::sumTileGradients<m>(g, x, dy, s, parts, sums.data());
    } else {
      avx2::sumTileGradients<m>(g, x, dy, s, parts, sums.data());
    }
    float* sum = sums.data();
    for (int64_t part = 1; part < parts; ++part) {
      const float* other = sums.data() + part * P * IO;
      for (int64_t i = 0; i < P * IO; ++i) sum[i] += other[i];
    }
    // dfilter[ky][kx] += (G^T S G)[ky][kx]: t[ky][b] = (G^T S)[ky][b], then G^T on the rows of each t[ky].
    const auto& G = FilterMatrix<m>::G;
    const auto gt = [&](int k, int j) { return G[j][k]; };
    std::vector<float> t(static_cast<size_t>(3 * N * IO));
    for (int b = 0; b < N; ++b) applyToPlanes(3, N, gt, sum + b * IO, N * IO, t.data() + b * IO, N * IO, IO, false);
    for (int ky = 0; ky < 3; ++ky) {
      applyToPlanes(3, N, gt, t.data() + N * ky * IO, IO, dfilter + 3 * ky * IO, IO, IO, true);
    }
  });
}

}  // namespace pact::masked::winograd
