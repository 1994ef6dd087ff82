// Winograd F(M x M, 3 x 3), M = 2 or 4, for the masked convolution's forward and both gradients on fully active
// M x M output tiles.
//
// PSACT's latent grouping makes block masks (n x n blocks aligned to multiples of n), whose M x M tiles at output
// coordinates that are multiples of M (M dividing n) are all active or all inactive. On such a tile the forward is
// y = A^T [(G g G^T) ⊙ (B^T d B)] A (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", 2016):
// (M + 2)^2 products per (input channel, output channel) for M^2 outputs instead of 9 M^2, i.e. 2.25x fewer
// multiply-adds at M = 2 and 4x fewer at M = 4, at the cost of an input transform and an output transform per tile.
// By the same trilinear form the filter gradient of a tile is G^T [(A e A^T) ⊙ (B^T d B)] G with e its M x M output
// gradient, so the products are summed over every tile in the transformed domain (a GEMM [inC x tiles] x
// [tiles x outC] per point) and transformed back once per call. The input gradient of a tile is the forward's
// transpose, B [(G g G^T)^T (A e A^T)] B^T over its (M + 2) x (M + 2) input rows, the transpose taken over the
// channels at each point; or, for a 'same' convolution on dense masks, the forward of the transposed convolution on
// dx's tiles (backpropInputByTiles).
//
// Arithmetic differs from the direct sum by rounding: at M = 2 a few ulps of the terms' magnitude (the transforms
// add and subtract up to 4 terms; G holds 1 and 1/2 only, exact in binary); at M = 4 more (B^T and A^T hold
// multipliers up to 8, G the inexact 1/6 and 1/24): about 1e-6 of the terms' magnitude at 16 channels.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "cpu/mask_rows.h"
#include "cpu/masked_conv2d.h"

namespace pact::masked::winograd {

// Whether this geometry has the Winograd kernels: a 3x3 filter at stride 1, and input and output channels that are
// multiples of 8 (the vector width).
bool applies(const ConvGeometry& g);

// Whether the kernels run 16 floats a vector here (AVX-512, see pact::useAvx512; inC and outC multiples of 16)
// rather than 8.
bool hasAvx512Kernels(const ConvGeometry& g);

// The size x size tiles of mask [batch, outH, outW] (size 2 or 4, at (oy, ox) multiples of size; those that would
// cross an image's last row or column are not tiles). Read from rowBits, the mask rows' active bits
// (MaskScan::rowBits), where given (rows up to 64 wide), else from mask.
struct TileCensus {
  int64_t tiled = 0;     // active positions in tiles with at least minActive of their size^2 positions active
  int64_t occupied = 0;  // tiles with an active position
  int64_t inTiles = 0;   // active positions in tiles
};
TileCensus tileCensus(const ConvGeometry& g, const float* mask, const uint64_t* rowBits, int size, int minActive);

// The `activeCount` active positions of mask [batch, outH, outW] (linear b*outH*outW + oy*outW + ox) split into the
// top-left positions of the size x size tiles at (oy, ox) multiples of size with at least minActive active positions
// (ascending), with each tile's active positions as bits (masks: bit size*i + j for row i, column j), and every other
// active position (ascending). A tile with inactive positions (minActive < size^2) is computed whole, its inactive
// outputs left alone (or written as zeros, see forward) and its inactive output gradients read as 0.
struct Split {
  int size = 2;
  std::vector<int64_t> tiles;
  std::vector<uint16_t> masks;
  std::vector<int64_t> rest;
  // Where asked for and the mask's rows are up to 64 wide (rowBits given): per output row (b*outH + oy), its
  // inactive positions outside the tiles as bits (bit ox), which the forward zeroes while its tiles write zeros at
  // their inactive outputs. Else empty.
  std::vector<uint64_t> uncovered;
};
// Read as tileCensus; Split::uncovered filled when `uncovered` (the forward into an output not zeroed beforehand).
Split split(const ConvGeometry& g, const float* mask, const uint64_t* rowBits, int64_t activeCount, int size,
            int minActive, bool uncovered = false);

// Writes the active output rows [outC] of each tile of y and, when `zeroMask` is not null, zeroes the rows of y
// where zeroMask [batch, outH, outW] is inactive (streamed, chunk by chunk between the tiles' work; the tiles' own
// inactive outputs written as zeros with their active ones where s.uncovered lists the others); nothing else.
void forward(const ConvGeometry& g, const float* x, const float* filter, const Split& s, const float* zeroMask,
             float* y);

// Adds the filter gradient from the tiles' active positions (dy there, x at their windows) into dfilter
// [3, 3, inC, outC]. Deterministic: the tiles are summed in a fixed order for a given thread count.
void addBackpropFilter(const ConvGeometry& g, const float* x, const float* dy, const Split& s, float* dfilter);

// The transformed filter with each point's [inC][outC] transposed: [(size + 2)^2][outC][inC], for addBackpropInput.
LineAlignedFloats transposedFilterTransform(const ConvGeometry& g, const float* filter, int size);

// Adds the input gradient from tiles [first, first + n) of s (dy at their active positions) into dx: per tile, the
// transpose of the forward, B [U^T (A e A^T)] B^T over the (size + 2)^2 input rows its windows reach (the rows
// outside the image skipped). `ut` from transposedFilterTransform. Calls before(p) before the tiles up to p add into
// dx. Runs on the calling thread, which must own the dx rows the tiles reach (their images, say).
void addBackpropInput(const ConvGeometry& g, const float* dy, const Split& s, const LineAlignedFloats& ut,
                      int64_t first, int64_t n, float* dx, const std::function<void(int64_t)>& before);

// Whether backpropInputByTiles takes this geometry: applies, pads of 1 (3x3 'same'), output rows and columns
// multiples of 4, rows up to 64 wide (kBitRowsMaxWidth).
bool transposedForwardApplies(const ConvGeometry& g);

// The F(4x4, 3x3) forward's tiles per chunk (a thread's unit of work) at this geometry's channels.
int64_t forwardChunkTiles4(const ConvGeometry& g);

// dx's footprint where transposedForwardApplies: the mask [batch, outH, outW] dilated by one (the positions its
// active windows reach), as row bits, with its positions and its occupied 4x4 tiles (those backpropInputByTiles
// computes). rowBits: the mask rows' active bits (MaskScan::rowBits).
struct Footprint {
  std::vector<uint64_t> rows;
  int64_t positions = 0, tiles = 0;
};
Footprint footprint(const ConvGeometry& g, const float* mask, const uint64_t* rowBits);

// dx = the input gradient of dy * [mask > 0] where transposedForwardApplies, as the forward of the transposed
// convolution (dy in, the filter turned by 180 degrees and its channels swapped) by F(4x4, 3x3) on every 4x4 tile of
// dx's footprint: each tile written whole, its positions outside the footprint as zeros, from the 6x6 dy rows its
// windows reach, those at inactive positions read as 0 (by masked loads: dy's values there are never read). Writes
// every element of dx unless `outputZeroed` (then the footprint's tiles only). Against addBackpropInput's tiles,
// which add their 6x6 input rows into dx (zeroed first), this writes each row once and has no overlaps, but computes
// every footprint tile: the choice is in masked_conv2d.cc. Returns false, dx untouched, where it does not apply.
// rowBits: the mask rows' active bits (MaskScan::rowBits); `f`: footprint(g, mask, rowBits).
bool backpropInputByTiles(const ConvGeometry& g, const float* dy, const float* filter, const float* mask,
                          const uint64_t* rowBits, const Footprint& f, float* dx, bool outputZeroed);

}  // namespace pact::masked::winograd
