// Winograd F(2x2, 3x3) for the masked convolution's forward and both gradients on fully active 2x2 output tiles.
//
// PSACT's latent grouping makes block masks (n x n blocks aligned to multiples of n), whose 2x2 tiles at even output
// coordinates are all active or all inactive. On such a tile the forward is y = A^T [(G g G^T) ⊙ (B^T d B)] A
// (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", 2016): 16 products per (input channel,
// output channel) for 4 outputs instead of 36, i.e. 2.25x fewer multiply-adds, at the cost of an input transform per
// tile and an output transform per tile, both additions only. By the same trilinear form the filter gradient of a
// tile is G^T [(A e A^T) ⊙ (B^T d B)] G with e its 2x2 output gradient, so the products are summed over every tile
// in the transformed domain (16 GEMMs [inC x tiles] x [tiles x outC]) and transformed back once per call. The input
// gradient of a tile is the forward's transpose, B [(G g G^T)^T (A e A^T)] B^T over its 4x4 input rows, the
// transpose taken over the channels at each of the 16 points.
//
// Arithmetic differs from the direct sum by a few ulps of the terms' magnitude (the transforms add and subtract up
// to 4 terms; G and its transpose hold 1 and 1/2 only, exact in binary).
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "cpu/masked_conv2d.h"

namespace pact::masked::winograd {

// Whether this geometry has the Winograd kernels: a 3x3 filter at stride 1, and input and output channels that are
// multiples of 8 (the vector width).
bool applies(const ConvGeometry& g);

// Whether the kernels run 16 floats a vector here (AVX-512, see pact::useAvx512; inC and outC multiples of 16)
// rather than 8.
bool hasAvx512Kernels(const ConvGeometry& g);

// The number of fully active 2x2 tiles at even (oy, ox) of mask [batch, outH, outW].
int64_t countTiles(const ConvGeometry& g, const float* mask);

// The `activeCount` active positions of mask [batch, outH, outW] (linear b*outH*outW + oy*outW + ox) split into the
// top-left positions of the fully active 2x2 tiles at even (oy, ox) (ascending), and every other active position
// (ascending).
struct Split {
  std::vector<int64_t> tiles, rest;
};
Split split(const ConvGeometry& g, const float* mask, int64_t activeCount);

// Writes the 4 output rows [outC] of each tile of y and, when `zeroMask` is not null, zeroes the rows of y where
// zeroMask [batch, outH, outW] is inactive (streamed, chunk by chunk between the tiles' work); nothing else.
void forward(const ConvGeometry& g, const float* x, const float* filter, const std::vector<int64_t>& tiles,
             const float* zeroMask, float* y);

// Adds the filter gradient from the tiles' positions (dy at their 4 positions, x at their windows) into dfilter
// [3, 3, inC, outC]. Deterministic: the tiles are summed in a fixed order for a given thread count.
void addBackpropFilter(const ConvGeometry& g, const float* x, const float* dy, const std::vector<int64_t>& tiles,
                       float* dfilter);

// The transformed filter with each point's [inC][outC] transposed: [16][outC][inC], for addBackpropInput.
std::vector<float> transposedFilterTransform(const ConvGeometry& g, const float* filter);

// Adds the input gradient from tiles[0, n) (ascending; dy at their 4 positions) into dx: per tile, the transpose of
// the forward, B [U^T (A e A^T)] B^T over the 4x4 input rows its windows reach (the rows outside the image skipped).
// `ut` from transposedFilterTransform. Calls before(p) before the tiles up to p add into dx. Runs on the calling
// thread, which must own the dx rows the tiles reach (their images, say).
void addBackpropInput(const ConvGeometry& g, const float* dy, const std::vector<float>& ut, const int64_t* tiles,
                      int64_t n, float* dx, const std::function<void(int64_t)>& before);

}  // namespace pact::masked::winograd
