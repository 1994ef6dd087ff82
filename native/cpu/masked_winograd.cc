// Winograd F(2x2, 3x3) on fully active 2x2 tiles; see masked_winograd.h for the algebra.
//
// Per chunk of tiles (a few dozen, so that a chunk's transformed data stays in L2):
//   forward: the input transform of every tile into V [16][tiles][inC], 16 GEMMs M_k = V_k * U_k with the transformed
//   filter U [16][inC][outC] (computed once per call), then the output transform of M [16][tiles][outC] into y;
//   filter gradient: the input transform into V as above, the output-gradient transform into E [16][tiles][outC],
//   and 16 GEMMs S_k += V_k^T * E_k into a per-thread sum S [16][inC][outC], transformed back to [3][3][inC][outC]
//   once per call (in double).
// The transforms run over the channels with one vector of 8 channels at a time (inC and outC are multiples of 8).
#include "cpu/masked_winograd.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

#include "cpu/mask_rows.h"
#include "cpu/threads.h"

namespace pact::masked::winograd {

namespace {

constexpr int kPoints = 16;  // the 4x4 transformed tile

// Eight floats: AVX2 registers where compiled for them, a plain array otherwise (the same code either way).
#if defined(__AVX2__) && defined(__FMA__)
using Vec = __m256;
inline Vec load(const float* p) { return _mm256_loadu_ps(p); }
inline void store(float* p, Vec v) { _mm256_storeu_ps(p, v); }
inline Vec add(Vec a, Vec b) { return _mm256_add_ps(a, b); }
inline Vec sub(Vec a, Vec b) { return _mm256_sub_ps(a, b); }
inline Vec neg(Vec a) { return _mm256_sub_ps(_mm256_setzero_ps(), a); }
inline Vec broadcast(const float* p) { return _mm256_broadcast_ss(p); }
inline Vec fma(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
#else
struct Vec {
  float v[8];
};
inline Vec load(const float* p) {
  Vec r;
  std::memcpy(r.v, p, sizeof(r.v));
  return r;
}
inline void store(float* p, Vec a) { std::memcpy(p, a.v, sizeof(a.v)); }
template <typename F>
inline Vec lanes(F&& f) {
  Vec r;
  for (int i = 0; i < 8; ++i) r.v[i] = f(i);
  return r;
}
inline Vec add(Vec a, Vec b) { return lanes([&](int i) { return a.v[i] + b.v[i]; }); }
inline Vec sub(Vec a, Vec b) { return lanes([&](int i) { return a.v[i] - b.v[i]; }); }
inline Vec neg(Vec a) { return lanes([&](int i) { return -a.v[i]; }); }
inline Vec broadcast(const float* p) { return lanes([&](int) { return *p; }); }
inline Vec fma(Vec a, Vec b, Vec c) { return lanes([&](int i) { return a.v[i] * b.v[i] + c.v[i]; }); }
#endif
constexpr int64_t kLanes = 8;

// Tiles per chunk: the chunk's V and M (or E) take about 64 KiB each; a multiple of 12, the GEMMs' row blocks.
int64_t chunkTiles(const ConvGeometry& g) {
  return std::clamp<int64_t>(1024 / std::max(g.inC, g.outC) / 12 * 12, 12, 60);
}

// Floats between the 16 points' planes of a chunk's V, M or E [16][chunk][C]: one cache line more than the plane,
// so that a tile's 16 values of one channel do not map to one L1 set (plain planes are multiples of 4 KiB apart).
int64_t pointStride(int64_t chunk, int64_t C) { return chunk * C + 16; }

// The 16 input rows [inC] that tile p's outputs read (rows[4*i + j]: input row oy - padTop + i, column
// ox - padLeft + j), `zero` where that lies outside the image.
void tileInputRows(const ConvGeometry& g, const float* x, int64_t p, const float* zero, const float* rows[kPoints]) {
  const int64_t plane = g.outH * g.outW, b = p / plane, oy = (p % plane) / g.outW, ox = p % g.outW;
  for (int i = 0; i < 4; ++i) {
    const int64_t iy = oy - g.padTop + i;
    for (int j = 0; j < 4; ++j) {
      const int64_t ix = ox - g.padLeft + j;
      const bool inside = iy >= 0 && iy < g.inH && ix >= 0 && ix < g.inW;
      rows[4 * i + j] = inside ? x + ((b * g.inH + iy) * g.inW + ix) * g.inC : zero;
    }
  }
}

// Asks for tile p's input rows to be brought into the cache (the tiles are scattered over x).
void prefetchTile(const ConvGeometry& g, const float* x, int64_t p) {
  const int64_t plane = g.outH * g.outW, b = p / plane, oy = (p % plane) / g.outW, ox = p % g.outW;
  const int64_t ix0 = std::max<int64_t>(0, ox - g.padLeft), ix1 = std::min(g.inW, ox - g.padLeft + 4);
  if (ix0 >= ix1) return;
  for (int64_t iy = std::max<int64_t>(0, oy - g.padTop); iy < std::min(g.inH, oy - g.padTop + 4); ++iy) {
    prefetchRow(x + ((b * g.inH + iy) * g.inW + ix0) * g.inC, (ix1 - ix0) * g.inC);
  }
}

// out[k * pointStride + c] = (B^T d B)_k for the channels c of the 16 rows, B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0;
// 0 1 0 -1].
void inputTransform(const float* const rows[kPoints], int64_t C, float* out, int64_t pointStride) {
  for (int64_t c = 0; c < C; c += kLanes) {
    Vec t[4][4];
    for (int j = 0; j < 4; ++j) {
      const Vec d0 = load(rows[j] + c), d1 = load(rows[4 + j] + c), d2 = load(rows[8 + j] + c),
                d3 = load(rows[12 + j] + c);
      t[0][j] = sub(d0, d2);
      t[1][j] = add(d1, d2);
      t[2][j] = sub(d2, d1);
      t[3][j] = sub(d1, d3);
    }
    for (int i = 0; i < 4; ++i) {
      float* o = out + 4 * i * pointStride + c;
      store(o, sub(t[i][0], t[i][2]));
      store(o + pointStride, add(t[i][1], t[i][2]));
      store(o + 2 * pointStride, sub(t[i][2], t[i][1]));
      store(o + 3 * pointStride, sub(t[i][1], t[i][3]));
    }
  }
}

// The 2x2 outputs A^T m A of m[k * pointStride + c], A^T = [1 1 1 0; 0 1 -1 -1], into rows[2*i + j].
void outputTransform(const float* m, int64_t pointStride, int64_t C, float* const rows[4]) {
  for (int64_t c = 0; c < C; c += kLanes) {
    Vec s[2][4];
    for (int j = 0; j < 4; ++j) {
      const Vec m0 = load(m + j * pointStride + c), m1 = load(m + (4 + j) * pointStride + c),
                m2 = load(m + (8 + j) * pointStride + c), m3 = load(m + (12 + j) * pointStride + c);
      s[0][j] = add(add(m0, m1), m2);
      s[1][j] = sub(sub(m1, m2), m3);
    }
    for (int i = 0; i < 2; ++i) {
      store(rows[2 * i] + c, add(add(s[i][0], s[i][1]), s[i][2]));
      store(rows[2 * i + 1] + c, sub(sub(s[i][1], s[i][2]), s[i][3]));
    }
  }
}

// out[k * pointStride + c] = (A e A^T)_k for the 2x2 output gradient rows e[2*i + j], A = [1 0; 1 1; 1 -1; 0 -1].
void gradientTransform(const float* const e[4], int64_t C, float* out, int64_t pointStride) {
  for (int64_t c = 0; c < C; c += kLanes) {
    Vec t[4][2];
    for (int j = 0; j < 2; ++j) {
      const Vec e0 = load(e[j] + c), e1 = load(e[2 + j] + c);
      t[0][j] = e0;
      t[1][j] = add(e0, e1);
      t[2][j] = sub(e0, e1);
      t[3][j] = neg(e1);
    }
    for (int i = 0; i < 4; ++i) {
      float* o = out + 4 * i * pointStride + c;
      store(o, t[i][0]);
      store(o + pointStride, add(t[i][0], t[i][1]));
      store(o + 2 * pointStride, sub(t[i][0], t[i][1]));
      store(o + 3 * pointStride, neg(t[i][1]));
    }
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

// C[rows][N] = A[rows][K] * B[K][N] (row-major, N a multiple of 8): PB rows and VB vectors of columns at a time in
// registers, so that each B vector loaded feeds PB FMAs.
template <int PB, int VB>
void gemmRows(int64_t rows, int64_t K, int64_t N, const float* A, const float* B, float* C) {
  for (int64_t r = 0; r + PB <= rows; r += PB) {
    for (int64_t n = 0; n < N; n += VB * kLanes) {
      Vec acc[PB][VB];
      for (int p = 0; p < PB; ++p) {
        const Vec a = broadcast(A + (r + p) * K);
        for (int j = 0; j < VB; ++j) acc[p][j] = fma(a, load(B + n + j * kLanes), Vec{});
      }
      for (int64_t k = 1; k < K; ++k) {
        Vec b[VB];
        for (int j = 0; j < VB; ++j) b[j] = load(B + k * N + n + j * kLanes);
        for (int p = 0; p < PB; ++p) {
          const Vec a = broadcast(A + (r + p) * K + k);
          for (int j = 0; j < VB; ++j) acc[p][j] = fma(a, b[j], acc[p][j]);
        }
      }
      for (int p = 0; p < PB; ++p)
        for (int j = 0; j < VB; ++j) store(C + (r + p) * N + n + j * kLanes, acc[p][j]);
    }
  }
}

// C[M][N] = A[M][K] * B[K][N], N a multiple of 8.
void gemm(int64_t M, int64_t K, int64_t N, const float* A, const float* B, float* C) {
  const int64_t full = N % 16 == 0 ? M / 6 * 6 : M / 12 * 12;
  if (N % 16 == 0) {
    gemmRows<6, 2>(full, K, N, A, B, C);
  } else {
    gemmRows<12, 1>(full, K, N, A, B, C);
  }
  gemmRows<1, 1>(M - full, K, N, A + full * K, B, C + full * N);
}

// S[K][N] += A[rows][K]^T * B[rows][N] (K a multiple of 8, N of 8): PB rows of S and VB vectors of its columns in
// registers across all the rows of A and B.
template <int PB, int VB>
void gemmTransposedAccumulate(int64_t rows, int64_t K, int64_t N, const float* A, const float* B, float* S) {
  for (int64_t k = 0; k < K; k += PB) {
    for (int64_t n = 0; n < N; n += VB * kLanes) {
      Vec acc[PB][VB];
      for (int p = 0; p < PB; ++p)
        for (int j = 0; j < VB; ++j) acc[p][j] = load(S + (k + p) * N + n + j * kLanes);
      for (int64_t r = 0; r < rows; ++r) {
        Vec b[VB];
        for (int j = 0; j < VB; ++j) b[j] = load(B + r * N + n + j * kLanes);
        for (int p = 0; p < PB; ++p) {
          const Vec a = broadcast(A + r * K + k + p);
          for (int j = 0; j < VB; ++j) acc[p][j] = fma(a, b[j], acc[p][j]);
        }
      }
      for (int p = 0; p < PB; ++p)
        for (int j = 0; j < VB; ++j) store(S + (k + p) * N + n + j * kLanes, acc[p][j]);
    }
  }
}

void gemmTransposedAccumulate(int64_t rows, int64_t K, int64_t N, const float* A, const float* B, float* S) {
  if (N % 16 == 0) {
    gemmTransposedAccumulate<4, 2>(rows, K, N, A, B, S);
  } else {
    gemmTransposedAccumulate<8, 1>(rows, K, N, A, B, S);
  }
}

// Whether the 2x2 tile at columns 2j, 2j + 1 of the mask rows m and m + W is fully active (branch-free).
inline uint8_t fullTile(const float* m, int64_t W, int64_t j) {
  return isActive(m[2 * j]) & isActive(m[2 * j + 1]) & isActive(m[W + 2 * j]) & isActive(m[W + 2 * j + 1]);
}

int64_t chunkCount(int64_t n, int64_t size) { return (n + size - 1) / size; }

// Transforms the inputs of tiles[first, first + count) into v [16][chunk][inC], prefetching a few tiles ahead.
void transformInputs(const ConvGeometry& g, const float* x, const std::vector<int64_t>& tiles, int64_t first,
                     int64_t count, int64_t stride, const float* zero, float* v) {
  constexpr int64_t kAhead = 4;
  const int64_t n = static_cast<int64_t>(tiles.size());
  for (int64_t t = 0; t < count; ++t) {
    if (first + t + kAhead < n) prefetchTile(g, x, tiles[static_cast<size_t>(first + t + kAhead)]);
    const float* rows[kPoints];
    tileInputRows(g, x, tiles[static_cast<size_t>(first + t)], zero, rows);
    inputTransform(rows, g.inC, v + t * g.inC, stride);
  }
}

}  // namespace

bool applies(const ConvGeometry& g) {
  return g.kH == 3 && g.kW == 3 && g.strideH == 1 && g.strideW == 1 && g.inC % kLanes == 0 &&
         g.outC % kLanes == 0;
}

int64_t countTiles(const ConvGeometry& g, const float* mask) {
  const int64_t W = g.outW, pairs = W / 2;
  int64_t count = 0;
  for (int64_t b = 0; b < g.batch; ++b) {
    for (int64_t oy = 0; oy + 1 < g.outH; oy += 2) {
      const float* m = mask + (b * g.outH + oy) * W;
      for (int64_t j = 0; j < pairs; ++j) {
        count += fullTile(m, W, j);
      }
    }
  }
  return count;
}

Split split(const ConvGeometry& g, const float* mask, int64_t activeCount) {
  const int64_t W = g.outW, pairs = W / 2, positions = g.batch * g.outH * W;
  Split s;
  // Written unconditionally at the next free slot, which advances by 0 or 1 (no branch on the mask: random masks
  // would mispredict every other position), then trimmed.
  s.tiles.resize(static_cast<size_t>(positions / 4 + 1));
  s.rest.resize(static_cast<size_t>(activeCount + 1));
  size_t tiles = 0, rest = 0;
  std::vector<uint8_t> full(static_cast<size_t>(W + 1), 0);  // per column: its tile in the current row pair is full
  // Row pairs in order: their tiles, then each row's active positions outside them (both lists stay ascending).
  for (int64_t row = 0; row < g.batch * g.outH; ++row) {
    const int64_t oy = row % g.outH, first = row * W;
    const float* m = mask + first;
    if (oy % 2 == 0 && oy + 1 == g.outH) {
      std::fill(full.begin(), full.end(), 0);  // a last row of its own (odd outH): no tile, no row below to read
    } else if (oy % 2 == 0) {
      for (int64_t j = 0; j < pairs; ++j) {
        const uint8_t f = fullTile(m, W, j);
        full[static_cast<size_t>(2 * j)] = full[static_cast<size_t>(2 * j + 1)] = f;
        s.tiles[tiles] = first + 2 * j;
        tiles += f;
      }
    }
    for (int64_t ox = 0; ox < W; ++ox) {
      s.rest[rest] = first + ox;
      rest += static_cast<size_t>(isActive(m[ox]) & !full[static_cast<size_t>(ox)]);
    }
  }
  s.tiles.resize(tiles);
  s.rest.resize(rest);
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
  const int64_t IC = g.inC, OC = g.outC, chunk = chunkTiles(g), W = g.outW;
  const std::vector<float> zero(static_cast<size_t>(IC), 0.0f);
  parallelFor(static_cast<size_t>(chunkCount(n, chunk)), 1, [&](size_t begin, size_t end) {
    const int64_t vStride = pointStride(chunk, IC), mStride = pointStride(chunk, OC);
    std::vector<float> v(static_cast<size_t>(kPoints * vStride)), m(static_cast<size_t>(kPoints * mStride));
    for (size_t c = begin; c < end; ++c) {
      const int64_t first = static_cast<int64_t>(c) * chunk, count = std::min(chunk, n - first);
      if (zeroMask != nullptr) {
        // This chunk's share of the inactive rows: from the start of its first tile's row (0 for the first chunk)
        // to that of the next chunk's first tile (the end for the last one).
        const auto rowStart = [&](int64_t i) { return tiles[static_cast<size_t>(i)] / W * W; };
        const int64_t from = c == 0 ? 0 : rowStart(first);
        const int64_t to = first + count == n ? g.batch * g.outH * W : rowStart(first + count);
        zeroInactiveRange(zeroMask, static_cast<size_t>(from), static_cast<size_t>(to), OC, y, /*stream=*/true);
      }
      transformInputs(g, x, tiles, first, count, vStride, zero.data(), v.data());
      for (int k = 0; k < kPoints; ++k) {
        gemm(count, IC, OC, v.data() + k * vStride, u.data() + k * IC * OC, m.data() + k * mStride);
      }
      for (int64_t t = 0; t < count; ++t) {
        const int64_t p = tiles[static_cast<size_t>(first + t)];
        float* const rows[4] = {y + p * OC, y + (p + 1) * OC, y + (p + W) * OC, y + (p + W + 1) * OC};
        outputTransform(m.data() + t * OC, mStride, OC, rows);
      }
    }
    if (zeroMask != nullptr) streamFence();
  });
}

void addBackpropFilter(const ConvGeometry& g, const float* x, const float* dy, const std::vector<int64_t>& tiles,
                       float* dfilter) {
  const int64_t n = static_cast<int64_t>(tiles.size());
  if (n == 0) return;
  const int64_t IC = g.inC, OC = g.outC, IO = IC * OC, chunk = chunkTiles(g), W = g.outW;
  const int64_t chunks = chunkCount(n, chunk);
  // One sum per part of the tiles (as many parts as threads, fixed for a thread count), added in order below.
  const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(numThreads(), chunks));
  std::vector<float> sums(static_cast<size_t>(parts * kPoints * IO), 0.0f);
  const std::vector<float> zero(static_cast<size_t>(IC), 0.0f);
  parallelFor(static_cast<size_t>(parts), 1, [&](size_t begin, size_t end) {
    const int64_t vStride = pointStride(chunk, IC), eStride = pointStride(chunk, OC);
    std::vector<float> v(static_cast<size_t>(kPoints * vStride)), e(static_cast<size_t>(kPoints * eStride));
    for (size_t part = begin; part < end; ++part) {
      float* s = sums.data() + part * kPoints * IO;
      const int64_t from = chunks * static_cast<int64_t>(part) / parts;
      const int64_t to = chunks * (static_cast<int64_t>(part) + 1) / parts;
      for (int64_t c = from; c < to; ++c) {
        const int64_t first = c * chunk, count = std::min(chunk, n - first);
        transformInputs(g, x, tiles, first, count, vStride, zero.data(), v.data());
        for (int64_t t = 0; t < count; ++t) {
          const int64_t p = tiles[static_cast<size_t>(first + t)];
          const float* const rows[4] = {dy + p * OC, dy + (p + 1) * OC, dy + (p + W) * OC, dy + (p + W + 1) * OC};
          gradientTransform(rows, OC, e.data() + t * OC, eStride);
        }
        for (int k = 0; k < kPoints; ++k) {
          gemmTransposedAccumulate(count, IC, OC, v.data() + k * vStride, e.data() + k * eStride, s + k * IO);
        }
      }
    }
  });
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
