/**
 * maskedConv2d: every implementation (the composite on tfjs-backend-cpu, the op on pact-cpu, and the native
 * sparse and dense paths called directly) against a float64 reference of conv2d * [mask > 0] and of its two
 * gradients, on fresh random inputs; finite-difference gradient checks; bad input from TS and from native code.
 */
import { strict as assert } from 'assert';

import * as tf from '@tensorflow/tfjs';

import { nativeAddon } from '../../src';
import { maskedConv2d, MaskedConvPad, maskedConvInfo } from '../../src/ops/masked_conv2d';
import { requirePactCpu, NATIVE, REFERENCE } from '../helpers/backends';
import { expectClose, Tolerance } from '../helpers/compare';
import { withEnv } from '../helpers/env';
import { freshRng, Rng } from '../helpers/random';

// The native sparse kernels take Winograd F(4x4, 3x3) on 4x4 tiles, whose rounding grows with the sum of the
// terms' magnitudes (measured: up to 2.1e-6 of it at 16 and 64 channels, against 2e-7 for the direct sums): mtol
// allows 1e-5 of it on top (a wrong term would be off by about its own size, 0.1-1 of the magnitude, or more). An
// output's rounding comes from its whole tile's inputs, so y is held to the largest magnitude among its tile's
// outputs (winogradMagnitude): an active output whose window lies wholly in the padding is exactly 0 in the
// reference, but not in a tile with other active outputs.
const TOL: Tolerance = { atol: 1e-4, rtol: 1e-4, mtol: 1e-5 };
const DFILTER_TOL: Tolerance = { atol: 1e-3, rtol: 1e-4, mtol: 1e-5 };
const SPARSE = 1;
const DENSE = 2;
const SPARSE_DIRECT = 3; // the sparse path without Winograd

interface Case {
  xShape: [number, number, number, number];
  filterShape: [number, number, number, number];
  strides: [number, number];
  pad: MaskedConvPad;
  outShape: [number, number, number, number];
  pads: [number, number, number, number];
  x: Float32Array;
  filter: Float32Array;
  mask: Float32Array;
  dy: Float32Array;
  label: string;
}

type MaskKind = 'pixel' | 'block2' | 'block4';

/** A mask of the output grid: each pixel (or each 2x2 / 4x4 block) active with probability `density`. */
function randomMask(rng: Rng, b: number, h: number, w: number, density: number, kind: MaskKind): Float32Array {
  const block = kind === 'pixel' ? 1 : kind === 'block2' ? 2 : 4;
  const bh = Math.ceil(h / block),
    bw = Math.ceil(w / block);
  const blocks = Array.from({ length: b * bh * bw }, () => rng.next() < density);
  const mask = new Float32Array(b * h * w);
  for (let n = 0; n < b; ++n) {
    for (let y = 0; y < h; ++y) {
      for (let x = 0; x < w; ++x) {
        // Active values are arbitrary positive numbers, inactive ones zero or negative: only the sign counts.
        const active = blocks[(n * bh + Math.floor(y / block)) * bw + Math.floor(x / block)];
        mask[(n * h + y) * w + x] = active ? 0.01 + rng.next() : -rng.next() * (rng.next() < 0.5 ? 1 : 0);
      }
    }
  }
  return mask;
}

function makeCase(
  rng: Rng,
  density: number,
  kind: MaskKind,
  stride: number | [number, number],
  pad: MaskedConvPad,
  k: number | [number, number] = 3,
  channels?: [number, number],
  batch?: number,
  size?: readonly [number, number],
): Case {
  const [kh, kw] = typeof k === 'number' ? [k, k] : k;
  const strides: [number, number] = typeof stride === 'number' ? [stride, stride] : stride;
  const b = batch ?? rng.int(1, 3),
    h = size?.[0] ?? rng.int(kh, 14),
    w = size?.[1] ?? rng.int(kw, 14),
    // Odd small widths, and the widths that have direct kernels on pact-cpu (8 to 64, each register blocking of
    // native/cpu/masked_conv2d.cc: 1, 2, 3 and 4 vectors per chunk).
    c = channels?.[0] ?? (rng.next() < 0.5 ? rng.int(1, 5) : rng.pick([8, 16, 24, 32, 48, 64])),
    o = channels?.[1] ?? (rng.next() < 0.5 ? rng.int(1, 6) : rng.pick([8, 16, 24, 32, 48, 64]));
  const xShape: Case['xShape'] = [b, h, w, c];
  const filterShape: Case['filterShape'] = [kh, kw, c, o];
  const info = maskedConvInfo(xShape, filterShape, strides, pad);
  const outShape: Case['outShape'] = [b, info.outHeight, info.outWidth, o];
  const p = info.padInfo;
  return {
    xShape,
    filterShape,
    strides,
    pad,
    outShape,
    pads: [p.top, p.bottom, p.left, p.right],
    x: rng.normal(b * h * w * c),
    filter: rng.normal(kh * kw * c * o),
    mask: randomMask(rng, b, info.outHeight, info.outWidth, density, kind),
    dy: rng.normal(b * info.outHeight * info.outWidth * o),
    label:
      `seed ${rng.seed} d=${density} ${kind} strides ${strides} ${String(pad)} x [${xShape}] filter ` +
      `[${filterShape}]`,
  };
}

/** A 3x3, stride-1, 'same' case with the given input shape, output channels and mask. */
function sameCase(rng: Rng, xShape: Case['xShape'], o: number, mask: Float32Array, label: string): Case {
  const [b, h, w, c] = xShape;
  const p = maskedConvInfo(xShape, [3, 3, c, o], [1, 1], 'same').padInfo;
  return {
    xShape,
    filterShape: [3, 3, c, o],
    strides: [1, 1],
    pad: 'same',
    outShape: [b, h, w, o],
    pads: [p.top, p.bottom, p.left, p.right],
    x: rng.normal(b * h * w * c),
    filter: rng.normal(9 * c * o),
    mask,
    dy: rng.normal(b * h * w * o),
    label,
  };
}

/** Float64 conv2d * [mask > 0] and its gradients (of sum(y * dy)), by direct loops. */
interface Reference {
  y: Float64Array;
  dx: Float64Array;
  dfilter: Float64Array;
  /** Per element, the sum of the absolute values of its terms. */
  yMagnitude: Float64Array;
  dxMagnitude: Float64Array;
  dfilterMagnitude: Float64Array;
}

function reference(c: Case): Reference {
  const [B, H, W, C] = c.xShape,
    [KH, KW, , O] = c.filterShape,
    [, OH, OW] = c.outShape;
  const [sh, sw] = c.strides,
    [top, , left] = c.pads;
  const y = new Float64Array(B * OH * OW * O),
    dx = new Float64Array(c.x.length);
  const dfilter = new Float64Array(c.filter.length);
  const yMagnitude = new Float64Array(y.length),
    dxMagnitude = new Float64Array(dx.length),
    dfilterMagnitude = new Float64Array(dfilter.length);
  for (let b = 0; b < B; ++b) {
    for (let oy = 0; oy < OH; ++oy) {
      for (let ox = 0; ox < OW; ++ox) {
        const pos = (b * OH + oy) * OW + ox;
        if (!(c.mask[pos] > 0)) continue;
        for (let ky = 0; ky < KH; ++ky) {
          const iy = oy * sh - top + ky;
          if (iy < 0 || iy >= H) continue;
          for (let kx = 0; kx < KW; ++kx) {
            const ix = ox * sw - left + kx;
            if (ix < 0 || ix >= W) continue;
            for (let ci = 0; ci < C; ++ci) {
              const xi = ((b * H + iy) * W + ix) * C + ci;
              for (let o = 0; o < O; ++o) {
                const fi = ((ky * KW + kx) * C + ci) * O + o;
                const yTerm = c.x[xi] * c.filter[fi],
                  dxTerm = c.dy[pos * O + o] * c.filter[fi],
                  dfilterTerm = c.dy[pos * O + o] * c.x[xi];
                y[pos * O + o] += yTerm;
                dx[xi] += dxTerm;
                dfilter[fi] += dfilterTerm;
                yMagnitude[pos * O + o] += Math.abs(yTerm);
                dxMagnitude[xi] += Math.abs(dxTerm);
                dfilterMagnitude[fi] += Math.abs(dfilterTerm);
              }
            }
          }
        }
      }
    }
  }
  return { y, dx, dfilter, yMagnitude, dxMagnitude, dfilterMagnitude };
}

/** y, dx, dfilter from the op on a backend, with tf.grads given dy. */
function viaOp(backend: string, c: Case): Float32Array[] {
  const previous = tf.getBackend();
  tf.setBackend(backend);
  try {
    return tf.tidy(() => {
      const x = tf.tensor4d(c.x, c.xShape),
        filter = tf.tensor4d(c.filter, c.filterShape);
      const mask = tf.tensor3d(c.mask, c.outShape.slice(0, 3) as [number, number, number]);
      const f = (a: tf.Tensor, b: tf.Tensor) =>
        maskedConv2d(a as tf.Tensor4D, b as tf.Tensor4D, mask, c.strides, c.pad);
      const y = f(x, filter);
      const [dx, dfilter] = tf.grads(f)([x, filter], tf.tensor4d(c.dy, c.outShape));
      return [y, dx, dfilter].map((t) => Float32Array.from(t.dataSync()));
    });
  } finally {
    tf.setBackend(previous);
  }
}

/**
 * y, dx, dfilter from the addon's functions called directly with a forced algorithm; outputs start as NaN (every
 * element must be written), or as zeros passed with `outputZeroed`.
 */
function viaAddon(c: Case, algo: number, outputZeroed = false): Float32Array[] {
  const addon = nativeAddon()!;
  const y = new Float32Array(c.dy.length),
    dx = new Float32Array(c.x.length),
    df = new Float32Array(c.filter.length);
  const geometry = [c.xShape, c.filterShape, c.strides, c.pads] as const;
  const start = outputZeroed ? 0 : NaN;
  const active = c.mask.filter((v) => v > 0).length;
  assert.equal(addon.maskedConv2d(...geometry, c.x, c.filter, c.mask, y.fill(start), algo, outputZeroed), active);
  // The backprop-input returns the active count after its sparse path, -1 after the dense one (dx may then be nonzero
  // outside the active windows), which forced dense is unless the pads are too large for oneDNN's convolution.
  const sparse = addon.maskedConv2dBackpropInput(
    ...geometry,
    c.dy,
    c.filter,
    c.mask,
    dx.fill(start),
    algo,
    outputZeroed,
  );
  // (native/cpu/masked_conv2d.cc, useDense: oneDNN's convolution takes pads below the filter size only.)
  const [kh, kw] = c.filterShape;
  const denseFits = c.pads[0] < kh && c.pads[1] < kh && c.pads[2] < kw && c.pads[3] < kw;
  const paths =
    algo === SPARSE || algo === SPARSE_DIRECT || !addon.buildInfo().dnnl || !denseFits
      ? [active]
      : algo === DENSE
        ? [-1]
        : [-1, active];
  assert.ok(paths.includes(sparse), `backprop-input's path ${sparse}, algo ${algo}, ${c.label}`);
  addon.maskedConv2dBackpropFilter(...geometry, c.x, c.dy, c.mask, df.fill(NaN), algo);
  return [y, dx, df];
}

/** `run` with our own kernels on AVX2 (PACT_CPU_ISA=avx2: the AVX-512 ones stay off on a CPU that has them). */
function onAvx2<T>(run: () => T): T {
  return withEnv('PACT_CPU_ISA', 'avx2', run);
}

const IMPLEMENTATIONS: Record<string, (c: Case) => Float32Array[]> = {
  'composite (cpu)': (c) => viaOp(REFERENCE, c),
  'op (pact-cpu)': (c) => viaOp(NATIVE, c),
  'native sparse': (c) => viaAddon(c, SPARSE),
  'native sparse, zeroed outputs': (c) => viaAddon(c, SPARSE, true),
  'native sparse, no Winograd': (c) => viaAddon(c, SPARSE_DIRECT),
  // On a CPU with AVX-512 the lines above run its kernels (widths a multiple of 16); this one the AVX2 ones.
  'native sparse, no Winograd, AVX2': (c) => onAvx2(() => viaAddon(c, SPARSE_DIRECT)),
  'native sparse, AVX2': (c) => onAvx2(() => viaAddon(c, SPARSE)),
  'native dense': (c) => viaAddon(c, DENSE),
};

/** The native implementations (the sparse ones directly, and through the op on pact-cpu). */
const NATIVE_ONLY = ['op (pact-cpu)', 'native sparse', 'native sparse, no Winograd'];

/**
 * y's magnitudes for the implementations that take Winograd tiles: per element, the largest of the magnitudes of
 * the same channel's outputs in its 4x4 tile (at multiples of 4; F(2x2, 3x3)'s tiles lie within those).
 */
function winogradMagnitude(magnitude: Float64Array, outShape: [number, number, number, number]): Float64Array {
  const [B, OH, OW, O] = outShape;
  const out = new Float64Array(magnitude.length);
  const at = (b: number, y: number, x: number) => ((b * OH + y) * OW + x) * O;
  for (let b = 0; b < B; ++b) {
    for (let ty = 0; ty < OH; ty += 4) {
      for (let tx = 0; tx < OW; tx += 4) {
        for (let o = 0; o < O; ++o) {
          let largest = 0;
          for (let y = ty; y < Math.min(ty + 4, OH); ++y) {
            for (let x = tx; x < Math.min(tx + 4, OW); ++x) largest = Math.max(largest, magnitude[at(b, y, x) + o]);
          }
          for (let y = ty; y < Math.min(ty + 4, OH); ++y) {
            for (let x = tx; x < Math.min(tx + 4, OW); ++x) out[at(b, y, x) + o] = largest;
          }
        }
      }
    }
  }
  return out;
}

/** The implementations that never take Winograd tiles: held to the tolerances without their magnitude term. */
const WITHOUT_WINOGRAD = new Set([
  'composite (cpu)',
  'native sparse, no Winograd',
  'native sparse, no Winograd, AVX2',
  'native dense',
]);

/** Checks the implementations named in `only` (all by default) against the float64 reference. */
function checkCase(c: Case, only = Object.keys(IMPLEMENTATIONS)): void {
  const ref = reference(c);
  for (const name of only) {
    const run = IMPLEMENTATIONS[name];
    const [y, dx, dfilter] = run(c);
    const winograd = !WITHOUT_WINOGRAD.has(name);
    const yMagnitude = winograd ? winogradMagnitude(ref.yMagnitude, c.outShape) : undefined;
    expectClose(y, ref.y, TOL, `${name} y, ${c.label}`, yMagnitude);
    for (let i = 0; i < ref.y.length; ++i) {
      const inactive = !(c.mask[Math.floor(i / c.outShape[3])] > 0);
      if (inactive) assert.ok(y[i] === 0, `${name}: y[${i}] is ${y[i]} at an inactive position, ${c.label}`);
    }
    expectClose(dx, ref.dx, TOL, `${name} dx, ${c.label}`, winograd ? ref.dxMagnitude : undefined);
    const dfilterMagnitude = winograd ? ref.dfilterMagnitude : undefined;
    expectClose(dfilter, ref.dfilter, DFILTER_TOL, `${name} dfilter, ${c.label}`, dfilterMagnitude);
  }
}

describe('maskedConv2d', () => {
  before(requirePactCpu);

  for (const density of [0, 0.01, 0.3, 1]) {
    for (const kind of ['pixel', 'block2', 'block4'] as const) {
      it(`matches conv2d * mask and its gradients: density ${density}, ${kind} mask`, () => {
        const rng = freshRng();
        for (const stride of [1, 2]) {
          for (const pad of ['same', 'valid'] as const) checkCase(makeCase(rng, density, kind, stride, pad));
        }
      });
    }
  }

  it('handles 1x1, 5x5 and 7x7 filters, explicit pads and an all-active batch of 1', () => {
    const rng = freshRng();
    checkCase(makeCase(rng, 0.5, 'pixel', 1, 'same', 1));
    checkCase(makeCase(rng, 0.5, 'block2', 2, 'valid', 5));
    checkCase(makeCase(rng, 0.4, 'pixel', 1, 2, 3));
    // Numeric pads with a non-square filter or strides: each axis sized on its own (tfjs' numeric pad would size
    // both from the filter's height and the row stride).
    checkCase(makeCase(rng, 0.5, 'pixel', 1, 1, [1, 3]));
    checkCase(makeCase(rng, 0.5, 'block2', [1, 2], 1, 1));
    checkCase(makeCase(rng, 0.6, 'pixel', [2, 1], 2, [3, 5]));
    checkCase(makeCase(rng, 0.6, 'pixel', [2, 3], 'same', [5, 3]));
    const single = makeCase(rng, 1, 'pixel', 1, 'same');
    checkCase({ ...single, label: single.label });
    // Direct widths, where the block kernels group positions by the taps of their windows that lie in the image: a
    // 7x7 'same' filter has up to 49 kinds (beyond the 16 pending at once, the rest run one by one), and pads of 4
    // around a 3x3 filter leave some windows with no tap in the image.
    checkCase(makeCase(rng, 0.6, 'pixel', 1, 'same', 7, [16, 16]));
    checkCase(makeCase(rng, 0.7, 'block2', 1, 'same', 5, [32, 64]));
    checkCase(makeCase(rng, 0.6, 'pixel', 1, 4, 3, [16, 32]));
  });

  it('uses the whole thread pool without changing the result (large case, sparse vs dense vs reference)', () => {
    // Batch 4: the backprop-input's bands run in two parallel phases (even bands, then odd ones); from 4 images per
    // thread each thread takes whole images instead (all of an image's positions in one call: with 32 channels on
    // AVX-512 its border windows go in packed groups).
    const rng = freshRng();
    const threads = nativeAddon()!.buildInfo().threads;
    for (const [b, cin, o] of [
      [4, 8, 8],
      [4 * threads + 1, 8, 8],
      [4 * threads + 1, 32, 32],
    ]) {
      const [h, w] = [16, 16];
      const mask = randomMask(rng, b, h, w, 0.6, 'block2');
      // The 32-channel case: the native kernels only (the composite one is the slow part, and checked above).
      const only = cin === 8 ? undefined : NATIVE_ONLY;
      checkCase(sameCase(rng, [b, h, w, cin], o, mask, `seed ${rng.seed} large, batch ${b}, ${cin} channels`), only);
    }
    // 2 x 96 x 96 = 18,432 output positions: from 16,384 the active list is counted and built in one share a
    // thread (native/cpu/mask_rows.h, countActiveShares).
    checkCase(
      sameCase(rng, [2, 96, 96, 2], 8, randomMask(rng, 2, 96, 96, 0.3, 'pixel'), `seed ${rng.seed} shares`),
      NATIVE_ONLY,
    );
    // 9 x 48 x 48 = 20,736: the same shares, from the rows' bits (rows up to 64 wide, MaskScan), the list written
    // 8 entries at a time up to the next share's first.
    for (const [kind, d] of [
      ['pixel', 0.3],
      ['block4', 0.5],
    ] as const) {
      const mask = randomMask(rng, 9, 48, 48, d, kind);
      checkCase(sameCase(rng, [9, 48, 48, 2], 8, mask, `seed ${rng.seed} shares of bit rows, ${kind}`), NATIVE_ONLY);
    }
    // Whole images per thread, the last active position in the top band of an image and none after it: that
    // image's positions end before its last band (an image once ran none of them when its later bands were left
    // unset).
    for (const cin of [16, 32]) {
      const [b, h, w] = [4 * threads + 1, 12, 12];
      const mask = new Float32Array(b * h * w);
      for (let i = 0; i < 2 * w; ++i) mask[h * w + i] = rng.next() < 0.5 ? 1 : 0;
      checkCase(
        sameCase(rng, [b, h, w, cin], cin, mask, `seed ${rng.seed} active rows only at the top of image 1`),
        NATIVE_ONLY,
      );
    }
  });

  it('runs the AVX-512 direct kernels where the CPU has them, as the AVX2 ones (widths a multiple of 16)', () => {
    // native/cpu/masked_direct.inc, compiled for 8 floats a vector and, where the CPU has AVX-512, for 16: every
    // width with an AVX-512 kernel (1 to 4 vectors), inC != outC, stride 1 and 2, groups of 6 or 8 interior
    // positions and border ones. buildInfo says which runs; PACT_CPU_ISA=avx2 forces the AVX2 kernels.
    const rng = freshRng();
    const info = nativeAddon()!.buildInfo();
    assert.equal(info.isa, info.avx512 && process.env.PACT_CPU_ISA !== 'avx2' ? 'avx512' : 'avx2');
    assert.equal(
      onAvx2(() => nativeAddon()!.buildInfo().isa),
      'avx2',
    );
    for (const [cin, cout, stride, kind] of [
      [16, 16, 1, 'block4'],
      [32, 32, 1, 'pixel'],
      [48, 48, 2, 'block2'],
      [64, 64, 1, 'block2'],
      [16, 32, 2, 'pixel'],
      [64, 16, 1, 'block4'],
      [32, 48, 1, 'pixel'],
      // Input channels the filter gradient's channel chunks do not divide (the last in chunks of 2 and 1).
      [3, 16, 1, 'pixel'],
      [7, 32, 2, 'block2'],
      [13, 64, 1, 'pixel'],
    ] as const) {
      const c = makeCase(rng, 0.7, kind, stride, 'same', 3, [cin, cout]);
      checkCase(c, ['native sparse, no Winograd', 'native sparse, no Winograd, AVX2', 'native sparse, zeroed outputs']);
    }
  });

  it("accesses memory as measured on either maker's cores with the same results (PACT_MEMORY_TUNING)", () => {
    // native/cpu/masked_conv2d.cc: on AVX-512 under the AMD tuning the forward zeroes its whole output first below 40%
    // active (zeroesFirst) and its direct kernels prefetch their windows (Prefetch::kRows), the filter gradient each
    // window; the input gradient prefetches its footprint under the Intel one, whose forward zeroes the inactive rows
    // between its work. The variable picks either regardless of the CPU. Sparse masks at 16 and 32 channels, where
    // the direct kernels run, into outputs zeroed or not.
    const rng = freshRng();
    for (const tuning of ['amd', 'intel'] as const) {
      withEnv('PACT_MEMORY_TUNING', tuning, () => {
        assert.equal(nativeAddon()!.buildInfo().memoryTuning, tuning);
        for (const [channels, density, kind] of [
          [16, 0.1, 'pixel'],
          [16, 0.25, 'block4'],
          [32, 0.3, 'pixel'],
          [32, 0.6, 'block2'],
        ] as const) {
          const c = makeCase(rng, density, kind, 1, 'same', 3, [channels, channels], 4, [16, 16]);
          checkCase({ ...c, label: `${c.label}, ${tuning} tuning` }, [
            'native sparse',
            'native sparse, no Winograd',
            'native sparse, zeroed outputs',
          ]);
        }
      });
    }
  });

  it('zeroes every inactive output when the active positions span several tiles (16 and 24 channels)', () => {
    // The direct forward zeroes the inactive rows between its active ones tile by tile (about 170 positions a tile
    // at 16 channels, 113 at 24): runs of zeros cross tile boundaries, and with 24 channels (96-byte rows) two
    // tiles' runs share cache lines. The addon's sparse kernels only (the tfjs ops' paths are checked above).
    const rng = freshRng();
    for (const [channels, density, kind] of [
      [16, 0.05, 'block4'],
      [16, 0.3, 'pixel'],
      [24, 0.1, 'pixel'],
      [24, 0.5, 'block2'],
    ] as const) {
      const mask = randomMask(rng, 6, 16, 16, density, kind);
      const c = sameCase(rng, [6, 16, 16, channels], channels, mask, `seed ${rng.seed}, ${channels} channels`);
      checkCase(c, ['native sparse', 'native sparse, zeroed outputs']);
    }
  });

  it('Winograd F(2x2, 3x3) and F(4x4, 3x3) on fully active tiles: forward, input gradient and filter gradient', () => {
    // native/cpu/masked_winograd.cc, on 3x3 stride-1 convolutions with channels a multiple of 8 when at least half
    // the active positions lie in full tiles (2x2 or 4x4, at coordinates multiples of the size): block masks (every
    // tile full or empty), odd sizes (last rows or columns in no tile), pads 0, 1 and 2 (tiles whose windows leave
    // the image), dense pixel masks (tiles and leftover positions mixed), inC != outC, one tile to several chunks of
    // tiles; the input gradient only where each thread takes whole images (from 4 a thread: the batches of
    // 4 * threads + 1 below, tiles reaching across image edges).
    // F(4x4, 3x3) takes the 4x4 tiles with at least 12 of 16 positions active, or every occupied tile where they
    // are full enough on average, computing partial ones whole (their inactive outputs stay 0)
    // (native/cpu/masked_conv2d.cc, winograd4MinActive, winograd4From), for both instruction sets: up to 16
    // channels (the wider of inC and outC) at any active fraction of the outputs, up to 32 from 0.1; wider, the
    // forward from 0.25, the input gradient from 0.4, the filter gradient from 0.2. Otherwise F(2x2, 3x3): with the
    // AVX2 kernels (forced by PACT_CPU_ISA=avx2 on an AVX-512 CPU) the filter gradient always, the forward and input
    // gradient from 32 channels, and from 16 at a fraction of 0.2; the AVX-512 kernels (channels multiples of 16;
    // avx512WinogradFrom) the forward from 32 channels at 0.2, the input gradient at 0.2 up to 32 channels and 0.4
    // above, the filter gradient from 32 channels at any fraction, at 16 from 0.25.
    const rng = freshRng();
    const avx512 = nativeAddon()!.buildInfo().isa === 'avx512'; // the kernels that run (PACT_CPU_ISA may force AVX2)
    const images = 4 * nativeAddon()!.buildInfo().threads + 1;
    for (const [cin, cout, kind, density, pad, batch, size] of [
      [32, 32, 'block2', 0.6, 'same', 0],
      [40, 64, 'block4', 0.5, 'valid', 0],
      [64, 32, 'pixel', 0.95, 2, 0],
      [16, 16, 'block4', 0.7, 'same', 0],
      [8, 24, 'block2', 0.8, 1, 0],
      [48, 48, 'pixel', 1, 'same', 0],
      [32, 40, 'block2', 0.05, 'same', 0],
      [64, 64, 'block2', 0.6, 'same', 0],
      [32, 48, 'block4', 0.5, 'same', images],
      [40, 32, 'pixel', 0.9, 2, images],
      [16, 32, 'block2', 0.7, 'same', images],
      [32, 32, 'block4', 0.12, 1, images],
      [16, 16, 'block2', 0.15, 'same', images],
      [64, 48, 'block4', 0.3, 'same', images],
      [16, 16, 'block4', 0.3, 2, images],
      [8, 16, 'block4', 0.05, 'same', images],
      [64, 64, 'block4', 0.3, 'valid', images],
      [24, 16, 'pixel', 1, 1, images],
      [16, 16, 'pixel', 0.85, 'same', images],
      [32, 16, 'pixel', 0.8, 1, 0],
      [16, 24, 'pixel', 0.9, 'valid', images],
      // Occupied 4x4 tiles filled 0.4-0.6 on average: F(4x4, 3x3) on all of them where a pass takes that fill (0.45:
      // the 16-channel forward into an output not zeroed only).
      [16, 16, 'pixel', 0.4, 'same', images],
      [16, 16, 'pixel', 0.45, 'same', images],
      [16, 16, 'pixel', 0.5, 'same', images],
      [16, 16, 'pixel', 0.59, 1, images],
      [32, 32, 'pixel', 0.52, 'same', images],
      [32, 32, 'pixel', 0.5, 'same', images, [16, 16]],
      [16, 16, 'pixel', 0.5, 'same', images, [12, 8]],
      [32, 16, 'pixel', 0.6, 'same', images],
      [16, 48, 'pixel', 0.6, 1, 0],
    ] as const) {
      const c = makeCase(rng, density, kind, 1, pad, 3, [cin, cout], batch || undefined, size);
      checkCase(c, [
        'native sparse',
        'native sparse, AVX2',
        'native sparse, zeroed outputs',
        'native sparse, no Winograd',
        'op (pact-cpu)',
      ]);
      const [, oh, ow] = c.outShape;
      const active = c.mask.filter((m) => m > 0).length;
      // The size x size tiles' active counts.
      const tileCounts = (size: number) => {
        const counts: number[] = [];
        for (let b = 0; b < c.xShape[0]; ++b) {
          for (let ty = 0; ty + size <= oh; ty += size) {
            for (let tx = 0; tx + size <= ow; tx += size) {
              let count = 0;
              for (let i = 0; i < size * size; ++i) {
                if (c.mask[(b * oh + ty + Math.floor(i / size)) * ow + tx + (i % size)] > 0) ++count;
              }
              counts.push(count);
            }
          }
        }
        return counts;
      };
      const sum = (values: number[]) => values.reduce((a, v) => a + v, 0);
      // Whether size x size tiles with at least minActive active positions hold at least half the active positions.
      const tiled = (size: number, minActive: number) => {
        const inTiles = sum(tileCounts(size).filter((n) => n >= minActive));
        return inTiles > 0 && inTiles >= 0.5 * active;
      };
      // Whether the occupied 4x4 tiles hold at least half the active positions and `fill` of their positions
      // (compared as the native code does).
      const counts4 = tileCounts(4).filter((n) => n > 0);
      const filled = (fill: number) => counts4.length > 0 && tiled(4, 1) && sum(counts4) >= fill * 16 * counts4.length;
      // Winograd runs when there are full tiles and they hold at least half the active positions; where it ran,
      // its rounding differs from the direct sums' somewhere, and where it did not the bits are the same.
      const narrow = Math.min(cin, cout),
        wide = Math.max(cin, cout);
      const wholeImages = batch > 0;
      const sixteens = cin % 16 === 0 && cout % 16 === 0;
      // At least `fraction` of the outputs active, compared as native/cpu/masked_conv2d.cc does (in double).
      const atLeast = (fraction: number) => active >= fraction * c.mask.length;
      // F(4x4, 3x3) takes every occupied tile where they are full enough (winograd4AllFrom: at 16 channels a fill of
      // 0.4 for the forward into an output not zeroed and 0.5 into a zeroed one, 0.45 for the filter gradient, 0.35
      // for the input gradient with the AVX-512 kernels and 0.55 with the AVX2 ones; from 32 channels 0.5, 0.5 and
      // 0.55), else those with 12 or more active positions.
      const tiles2 = tiled(2, 4);
      const four = (from: number, fill16: number, fillWide: number) =>
        (filled(wide > 16 ? fillWide : fill16) || tiled(4, 12)) && atLeast(wide <= 16 ? 0 : wide <= 32 ? 0.1 : from);
      const forward4 = four(0.25, 0.4, 0.5),
        forward4Zeroed = four(0.25, 0.5, 0.5),
        filter4 = four(0.2, 0.45, 0.5);
      // The input gradient may run as the forward of the transposed convolution (backpropInputByTiles) with pads of
      // 1 and output sides multiples of 4 (up to 64 wide): then from 0.45 where it took 0.55.
      const transposed = c.pads.every((p) => p === 1) && oh % 4 === 0 && ow % 4 === 0 && ow <= 64;
      const fillIn = transposed ? 0.45 : 0.55;
      const input4 = (avx512Kernels: boolean) => wholeImages && four(0.4, avx512Kernels ? 0.35 : fillIn, fillIn);
      const forward2 = narrow >= 32 || (narrow >= 16 && atLeast(0.2));
      type Expected = [
        string,
        boolean,
        boolean,
        boolean,
        boolean,
        (zeroed?: boolean) => Float32Array[],
        () => Float32Array[],
      ];
      const isas: Expected[] = [
        [
          'AVX2',
          forward4 || (tiles2 && forward2),
          forward4Zeroed || (tiles2 && forward2),
          input4(false) || (tiles2 && forward2 && wholeImages),
          filter4 || tiles2,
          (zeroed) => onAvx2(() => viaAddon(c, SPARSE, zeroed)),
          () => onAvx2(() => viaAddon(c, SPARSE_DIRECT)),
        ],
      ];
      if (avx512) {
        const forward512 = sixteens && narrow >= 32 && atLeast(0.2);
        const input512 = wholeImages && sixteens && atLeast(wide <= 32 ? 0.2 : 0.4);
        const filter512 = sixteens && (narrow >= 32 || atLeast(0.25));
        isas.push([
          'AVX-512',
          forward4 || (tiles2 && forward512),
          forward4Zeroed || (tiles2 && forward512),
          input4(sixteens) || (tiles2 && input512),
          filter4 || (tiles2 && filter512),
          (zeroed) => viaAddon(c, SPARSE, zeroed),
          () => viaAddon(c, SPARSE_DIRECT),
        ]);
      }
      for (const [isa, forward, forwardZeroed, input, filter, sparse, direct] of isas) {
        const [y, dx, dfilter] = sparse();
        const [yZeroed] = sparse(true);
        const [yDirect, dxDirect, dfilterDirect] = direct();
        assert.equal(
          y.some((v, i) => v !== yDirect[i]),
          forward,
          `${isa} forward: Winograd expected ${forward}, ${c.label}`,
        );
        assert.equal(
          yZeroed.some((v, i) => v !== yDirect[i]),
          forwardZeroed,
          `${isa} forward into a zeroed output: Winograd expected ${forwardZeroed}, ${c.label}`,
        );
        assert.equal(
          dx.some((v, i) => v !== dxDirect[i]),
          input,
          `${isa} input gradient: Winograd expected ${input}, ${c.label}`,
        );
        assert.equal(
          dfilter.some((v, i) => v !== dfilterDirect[i]),
          filter,
          `${isa} filter gradient: Winograd expected ${filter}, ${c.label}`,
        );
      }
    }
  });

  it("finds the partial 4x4 tiles whose first column is inactive (tiles found from the rows' bits)", () => {
    // The tile scan visits only tiles with an active position, found by ORing a row group's bits and folding each
    // tile's columns onto its first; a tile with 12 of 16 active and its first column empty must still be found.
    // Every active position here lies in such a tile, so at 16 channels F(4x4, 3x3) takes them all, and its
    // rounding differs from the direct kernels' somewhere.
    const rng = freshRng();
    const [b, h, w, c] = [2, 16, 20, 16];
    const mask = new Float32Array(b * h * w);
    for (let n = 0; n < b; ++n) {
      for (let ty = 0; ty < h; ty += 4) {
        for (let tx = 0; tx < w; tx += 4) {
          if (rng.next() >= 0.6) continue;
          for (let i = 0; i < 4; ++i) mask.fill(1, (n * h + ty + i) * w + tx + 1, (n * h + ty + i) * w + tx + 4);
        }
      }
    }
    const label = `seed ${rng.seed} partial tiles, first column inactive`;
    const cs = sameCase(rng, [b, h, w, c], c, mask, label);
    checkCase(cs, NATIVE_ONLY);
    const [y] = viaAddon(cs, SPARSE);
    const [direct] = viaAddon(cs, SPARSE_DIRECT);
    assert.ok(
      y.some((v, i) => v !== direct[i]),
      `${label}: the sparse path took no F(4x4, 3x3) tile (its forward equals the direct kernels' bit for bit)`,
    );
  });

  it('splits masks with rows of more than 64 outputs into Winograd tiles column by column', () => {
    // native/cpu/masked_winograd.cc: rows up to 64 outputs wide are split by bits, wider ones position by position;
    // F(4x4, 3x3) at 16 channels and F(2x2, 3x3) on the AVX2 kernels' filter gradient (8 channels) take any
    // fraction, so each split runs here. Its tiles and leftovers: the same results as the direct kernels' within
    // Winograd's rounding, different bits.
    const rng = freshRng();
    for (const [shape, kind] of [
      [[2, 9, 70, 16], 'block4'],
      [[2, 7, 67, 8], 'block2'],
    ] as const) {
      const [b, h, w, ch] = shape;
      const mask = randomMask(rng, b, h, w, 0.6, kind);
      const c = sameCase(rng, [b, h, w, ch], ch, mask, `seed ${rng.seed}, ${kind}, x [${shape}]`);
      checkCase(c, ['native sparse', 'native sparse, no Winograd']);
      const [, , dfilter] = onAvx2(() => viaAddon(c, SPARSE));
      const [, , dfilterDirect] = onAvx2(() => viaAddon(c, SPARSE_DIRECT));
      assert.ok(
        dfilter.some((v, i) => v !== dfilterDirect[i]),
        `Winograd's filter gradient expected, ${c.label}`,
      );
    }
  });

  it('clears the positions outside the tiles of 64-wide rows when the tiles write their own zeros', () => {
    // native/cpu/masked_winograd.cc: when F(4x4, 3x3) takes every occupied tile (dense pixel masks) and the output
    // is not zeroed beforehand, the tiles write zeros at their inactive outputs and the other positions are cleared
    // from the rows' bits a run at a time (zeroBitsRange), runs continuing across rows: here rows whose 64 bits are
    // all set (whole inactive rows and images), and runs ending at a row's last position. The native outputs start
    // as NaN, so a position left out stays NaN.
    const rng = freshRng();
    const [b, h, w, ch] = [3, 13, 64, 16];
    const mask = randomMask(rng, b, h, w, 0.85, 'pixel');
    const plane = h * w;
    mask.fill(0, plane + 4 * w, plane + 9 * w); // image 1: rows 4-8 inactive
    mask.fill(0, 2 * plane, 3 * plane); // image 2: inactive but for one tile and a position at a row's end
    for (let i = 0; i < 4; ++i) mask.fill(1, 2 * plane + (4 + i) * w + 8, 2 * plane + (4 + i) * w + 12);
    mask[2 * plane + 10 * w + w - 1] = 1;
    for (let y = 0; y < h; ++y) mask.fill(0, y * w + 60, y * w + 64); // image 0: the last 4 columns inactive
    const c = sameCase(rng, [b, h, w, ch], ch, mask, `seed ${rng.seed}, x [${[b, h, w, ch]}]`);
    checkCase(c, ['native sparse', 'native sparse, AVX2', 'op (pact-cpu)']);
  });

  it('F(2x2, 3x3) input gradient at 16 channels: one 2x2 block in each 4x4 tile', () => {
    // The AVX-512 kernels' 16-channel GEMMs hold the transformed filter in registers (gemmRowsHeld) for both tile
    // sizes; F(4x4, 3x3) covers the 4x4 ones above. Here every 4x4 tile holds one active 2x2 block at a random corner
    // (fill 0.25: F(4x4, 3x3) takes none), so the input gradient (whole images per thread, active fraction 0.25)
    // runs F(2x2, 3x3) with K = 16 on both instruction sets.
    const rng = freshRng();
    const [b, h, w, ch] = [4 * nativeAddon()!.buildInfo().threads + 1, 12, 16, 16];
    const mask = new Float32Array(b * h * w);
    for (let i = 0; i < b; ++i) {
      for (let ty = 0; ty < h; ty += 4) {
        for (let tx = 0; tx < w; tx += 4) {
          const y0 = ty + 2 * rng.int(0, 1),
            x0 = tx + 2 * rng.int(0, 1);
          for (const [dy, dx] of [
            [0, 0],
            [0, 1],
            [1, 0],
            [1, 1],
          ]) {
            mask[(i * h + y0 + dy) * w + x0 + dx] = 1;
          }
        }
      }
    }
    const c = sameCase(rng, [b, h, w, ch], ch, mask, `seed ${rng.seed}, x [${[b, h, w, ch]}]`);
    checkCase(c, ['native sparse', 'native sparse, AVX2', 'native sparse, no Winograd']);
    const [, dx] = viaAddon(c, SPARSE);
    const [, dxDirect] = viaAddon(c, SPARSE_DIRECT);
    assert.ok(
      dx.some((v, i) => v !== dxDirect[i]),
      `Winograd's input gradient expected, ${c.label}`,
    );
  });

  it('automatic choice: the dense backprops read dy as it is only where it is exactly 0 outside the mask', () => {
    // native/cpu/masked_conv2d.cc (denseFractions): from an active fraction of 0.7 (backprop-input) or 0.85
    // (backprop-filter) at 16 channels on AVX2, 0.6 and 0.75 on AVX-512, the automatic choice runs oneDNN on dy
    // itself when dy is 0 (or -0) at every inactive position, and on a masked copy otherwise. Exact fractions on both
    // sides of those thresholds, with dy left as drawn (non-zero everywhere), zeroed outside the mask, zeroed but for
    // one value (a tiny one, or NaN) at an inactive position.
    const rng = freshRng();
    for (const fraction of [0.3, 0.5, 0.65, 0.75, 0.9]) {
      // 2,048 to 5,760 positions: the native scan of dy works in blocks of 1,024 per thread, so with 2 threads the
      // last inactive row (spoiled below) lies past a thread's first block.
      const b = rng.int(32, 40),
        h = rng.int(8, 12),
        w = rng.int(8, 12),
        ch = 16;
      const n = b * h * w;
      const order = Array.from({ length: n }, (_, i) => i).sort(() => rng.next() - 0.5);
      const mask = new Float32Array(n);
      order.slice(0, Math.round(fraction * n)).forEach((i) => (mask[i] = 1));
      const inactive = order.slice(Math.round(fraction * n));
      const c = sameCase(rng, [b, h, w, ch], ch, mask, `seed ${rng.seed} fraction ${fraction}`);
      const zeroed = Float32Array.from(c.dy);
      for (const i of inactive) zeroed.fill(-0, i * ch, (i + 1) * ch);
      const variants: Array<[string, Float32Array]> = [
        ['dy as drawn', c.dy],
        ['dy zero outside', zeroed],
      ];
      for (const [odd, row] of [
        [1e-30, Math.max(...inactive)],
        [NaN, rng.pick(inactive)],
      ]) {
        const spoiled = Float32Array.from(zeroed);
        spoiled[row * ch + rng.int(0, ch - 1)] = odd;
        variants.push([`dy zero outside but one ${odd}`, spoiled]);
      }
      const ref = reference({ ...c, dy: zeroed });
      for (const [name, dy] of variants) {
        const v = { ...c, dy, label: `${c.label}, ${name}` };
        const [, dx, dfilter] = viaAddon(v, 0);
        expectClose(dx, ref.dx, TOL, `auto dx, ${v.label}`, ref.dxMagnitude);
        expectClose(dfilter, ref.dfilter, DFILTER_TOL, `auto dfilter, ${v.label}`, ref.dfilterMagnitude);
      }
    }
  });

  it('passes a finite-difference gradient check (native and composite)', () => {
    const rng = freshRng();
    const c = makeCase(rng, 0.5, 'pixel', 1, 'same');
    for (const backend of [NATIVE, REFERENCE]) {
      const [, dx, dfilter] = viaOp(backend, c);
      // loss(x, filter) = sum(maskedConv2d(x, filter) * dy), accumulated in float64.
      const loss = (x: Float32Array, filter: Float32Array) => {
        const [y] = viaOp(backend, { ...c, x, filter });
        return y.reduce((s, v, i) => s + v * c.dy[i], 0);
      };
      // The loss is linear in x and in the filter, so a central difference is exact at any step in exact
      // arithmetic; what it measures beside the gradient is the forward's float32 rounding divided by 2 eps.
      // F(4x4, 3x3) rounds every output of a tile from all its inputs, so with a step of 1e-2 that noise reached
      // 0.01 (seed 1271946948: dx[33] -2.9806 against -2.9705, one run in twelve failing); a step of 0.5 makes it
      // 50x smaller, and a wrong gradient is off by far more than the tolerance at any step.
      const eps = 0.5;
      for (const [name, values, analytic] of [
        ['x', c.x, dx],
        ['filter', c.filter, dfilter],
      ] as const) {
        for (let trial = 0; trial < 6; ++trial) {
          const i = rng.int(0, values.length - 1);
          const plus = Float32Array.from(values),
            minus = Float32Array.from(values);
          plus[i] += eps;
          minus[i] -= eps;
          const args = (v: Float32Array): [Float32Array, Float32Array] => (name === 'x' ? [v, c.filter] : [c.x, v]);
          const numeric = (loss(...args(plus)) - loss(...args(minus))) / (2 * eps);
          expectClose([analytic[i]], [numeric], { atol: 2e-3, rtol: 2e-3 }, `${backend} d${name}[${i}], ${c.label}`);
        }
      }
    }
  });

  it('gives exactly 0 at inactive outputs whatever x holds, and treats a NaN mask entry as inactive (every backend)', () => {
    const rng = freshRng();
    // 2x2 blocks at 0.15 of a 12x12 grid: most positions lie outside every active window (all of them read has
    // probability below 1e-20).
    const blocks = sameCase(rng, [2, 12, 12, 8], 16, randomMask(rng, 2, 12, 12, 0.15, 'block2'), `seed ${rng.seed}`);
    // Every other 4x4 tile of every other tile row, with the first three outputs of its top row inactive (13 of 16
    // positions active) and nothing active around it: F(4x4, 3x3) takes these tiles whole
    // (native/cpu/masked_conv2d.cc, kWinograd4MinActive), and the first three inputs of the top row of each tile's
    // 6x6 input window are read by no active window; batches of 4 * threads + 1 give the input gradient's tiles too.
    const images = 4 * nativeAddon()!.buildInfo().threads + 1;
    const checker = new Float32Array(images * 16 * 16);
    for (let p = 0; p < checker.length; ++p) {
      const [y, x] = [Math.floor(p / 16) % 16, p % 16];
      const tile = Math.floor(y / 4) % 2 === 0 && Math.floor(x / 4) % 2 === 0;
      checker[p] = tile && !(y % 4 === 0 && x % 4 < 3) ? 0.5 + rng.next() : 0;
    }
    const partial = sameCase(rng, [images, 16, 16, 16], 16, checker, `seed ${rng.seed}, partial 4x4 tiles`);
    for (const c of [blocks, partial]) {
      const [B, H, W, C] = c.xShape;
      // NaN and infinities in x wherever no active output's window reads them, NaN in a fifth of the inactive mask.
      const x = Float32Array.from(c.x);
      const mask = Float32Array.from(c.mask);
      const read = new Uint8Array(B * H * W);
      for (let b = 0; b < B; ++b) {
        for (let oy = 0; oy < c.outShape[1]; ++oy) {
          for (let ox = 0; ox < c.outShape[2]; ++ox) {
            if (!(mask[(b * c.outShape[1] + oy) * c.outShape[2] + ox] > 0)) continue;
            for (let iy = Math.max(0, oy - 1); iy <= Math.min(H - 1, oy + 1); ++iy) {
              for (let ix = Math.max(0, ox - 1); ix <= Math.min(W - 1, ox + 1); ++ix) read[(b * H + iy) * W + ix] = 1;
            }
          }
        }
      }
      let unread = 0;
      for (let p = 0; p < read.length; ++p) {
        if (!read[p]) x.fill([NaN, Infinity, -Infinity][unread++ % 3], p * C, (p + 1) * C);
      }
      assert.ok(unread > 0, `no position is outside every active window: ${c.label}`);
      for (let p = 0; p < mask.length; ++p) if (!(mask[p] > 0) && rng.next() < 0.2) mask[p] = NaN;
      const dy = Float32Array.from(c.dy);
      for (let p = 0; p < mask.length; ++p)
        if (!(mask[p] > 0)) dy.fill(NaN, p * c.outShape[3], (p + 1) * c.outShape[3]);
      const ref = reference({ ...c, x: Float32Array.from(x, (v) => (Number.isFinite(v) ? v : 0)), mask, dy: c.dy });
      for (const backend of [NATIVE, REFERENCE]) {
        const [y, dx] = viaOp(backend, { ...c, x, mask, dy });
        expectClose(y, ref.y, TOL, `${backend} y, ${c.label}`, winogradMagnitude(ref.yMagnitude, c.outShape));
        // dx at the positions no active window reads is 0 too (dy's NaN at inactive outputs must not leak). dfilter
        // is not compared: the dense paths (the composite, and pact-cpu from 0.5-0.9 of the positions active)
        // multiply every window by dy, so x's NaN gives NaN there as in tfjs' conv2d.
        expectClose(dx, ref.dx, TOL, `${backend} dx, ${c.label}`, ref.dxMagnitude);
      }
      if (c === partial) {
        // The tiles' kernels ran (their rounding differs from the direct sums'), and their filter gradient is
        // finite: the unread inputs and the inactive outputs' dy were read as 0.
        const [y, dx, dfilter] = viaAddon({ ...c, x, mask, dy }, SPARSE);
        const [yDirect, dxDirect] = viaAddon({ ...c, x, mask, dy }, SPARSE_DIRECT);
        assert.ok(
          y.some((v, i) => v !== yDirect[i]),
          `forward: Winograd expected, ${c.label}`,
        );
        assert.ok(
          dx.some((v, i) => v !== dxDirect[i]),
          `input gradient: Winograd expected, ${c.label}`,
        );
        // Exactly 0 (not rounding noise) where no active window reads: the backend's buffer pool relies on it.
        const leak = dx.findIndex((v, i) => !read[Math.floor(i / C)] && v !== 0);
        assert.equal(leak, -1, `dx[${leak}] = ${dx[leak]} where no active window reads, ${c.label}`);
        expectClose(dfilter, ref.dfilter, DFILTER_TOL, `native dfilter, ${c.label}`, ref.dfilterMagnitude);
      }
    }
  });

  it('runs the dense input gradient as the transposed forward, reading no dy at inactive outputs', () => {
    // native/cpu/masked_winograd.cc, backpropInputByTiles: pads of 1, output sides multiples of 4 and most 4x4 tiles
    // occupied (pixel masks from d = 0.35 at 16 channels): every 4x4 tile of dx's footprint by F(4x4, 3x3) from the
    // 6x6 dy rows its windows reach, inactive ones read as 0 by masked loads. NaN in dy at every inactive output,
    // one image all inactive and an 8x8 hole in another (positions outside the footprint: exactly 0), dx zeroed or
    // not beforehand.
    const rng = freshRng();
    const images = 4 * nativeAddon()!.buildInfo().threads + 1;
    // 28 tiles an image: more than 4 chunks of 24 tiles a thread (byTransposedForward).
    const [H, W, C] = [16, 28, 16];
    const mask = randomMask(rng, images, H, W, 0.6, 'pixel');
    mask.fill(0, 0, H * W);
    for (let y = 4; y < 12; ++y) mask.fill(0, (H + y) * W + 2, (H + y) * W + 10);
    const c = sameCase(rng, [images, H, W, C], C, mask, `seed ${rng.seed}, pixel 0.6, holes`);
    const dy = Float32Array.from(c.dy);
    for (let p = 0; p < mask.length; ++p) if (!(mask[p] > 0)) dy.fill(NaN, p * C, (p + 1) * C);
    const ref = reference(c);
    const reached = new Uint8Array(mask.length);
    for (let p = 0; p < mask.length; ++p) {
      if (!(mask[p] > 0)) continue;
      const [b, y, x] = [Math.floor(p / (H * W)), Math.floor(p / W) % H, p % W];
      for (let iy = Math.max(0, y - 1); iy <= Math.min(H - 1, y + 1); ++iy) {
        for (let ix = Math.max(0, x - 1); ix <= Math.min(W - 1, x + 1); ++ix) reached[(b * H + iy) * W + ix] = 1;
      }
    }
    const [, dxDirect] = viaAddon({ ...c, dy }, SPARSE_DIRECT);
    for (const zeroed of [false, true]) {
      const label = `${c.label}, dx ${zeroed ? '' : 'not '}zeroed`;
      const [, dx] = viaAddon({ ...c, dy }, SPARSE, zeroed);
      expectClose(dx, ref.dx, TOL, `dx, ${label}`, ref.dxMagnitude);
      assert.ok(
        dx.some((v, i) => v !== dxDirect[i]),
        `input gradient: Winograd expected, ${label}`,
      );
      const leak = dx.findIndex((v, i) => !reached[Math.floor(i / C)] && v !== 0);
      assert.equal(leak, -1, `dx[${leak}] = ${dx[leak]} outside the footprint, ${label}`);
    }
  });

  it('gives the mask no gradient', () => {
    const rng = freshRng();
    const c = makeCase(rng, 0.5, 'pixel', 1, 'same');
    for (const backend of [NATIVE, REFERENCE]) {
      tf.setBackend(backend);
      const dmask = tf.tidy(() => {
        const x = tf.tensor4d(c.x, c.xShape),
          filter = tf.tensor4d(c.filter, c.filterShape);
        const f = (m: tf.Tensor) => tf.sum(maskedConv2d(x, filter, m, c.strides, c.pad));
        return Float32Array.from(
          tf
            .grad(f)(tf.tensor3d(c.mask, [c.outShape[0], c.outShape[1], c.outShape[2]]))
            .dataSync(),
        );
      });
      tf.setBackend(NATIVE);
      assert.ok(
        dmask.every((v) => v === 0),
        `${backend}: mask gradient must be zero, ${c.label}`,
      );
    }
  });

  it('accepts a [B, Ho, Wo, 1] mask', () => {
    const rng = freshRng();
    const c = makeCase(rng, 0.5, 'pixel', 2, 'same');
    const y = tf.tidy(() =>
      Float32Array.from(
        maskedConv2d(
          tf.tensor4d(c.x, c.xShape),
          tf.tensor4d(c.filter, c.filterShape),
          tf.tensor4d(c.mask, [c.outShape[0], c.outShape[1], c.outShape[2], 1]),
          c.strides,
          c.pad,
        ).dataSync(),
      ),
    );
    const ref = reference(c);
    expectClose(y, ref.y, TOL, c.label, ref.yMagnitude);
  });

  describe('bad input', () => {
    const x = () => tf.zeros([2, 8, 8, 3]) as tf.Tensor4D;
    const filter = () => tf.zeros([3, 3, 3, 4]) as tf.Tensor4D;

    it('rejects a mask whose shape does not match the output (TS)', () => {
      assert.throws(
        () => maskedConv2d(x(), filter(), tf.ones([2, 8, 8]), 2, 'same'),
        /maskedConv2d: mask must have shape \[2,4,4\] \(the output's batch, height, width\) or \[2,4,4,1\], got \[2,8/,
      );
      assert.throws(
        () => maskedConv2d(x(), filter(), tf.ones([2, 6, 6, 2]), 1, 'valid'),
        /mask must have shape \[2,6,6\]/,
      );
    });

    it('rejects non-4-D inputs, channel mismatches and bad strides (TS)', () => {
      assert.throws(
        () => maskedConv2d(tf.zeros([8, 8, 3]) as unknown as tf.Tensor4D, filter(), tf.ones([2, 8, 8])),
        /maskedConv2d: x must be 4-D \[batch, height, width, inChannels\], got \[8,8,3\]/,
      );
      assert.throws(
        () => maskedConv2d(x(), tf.zeros([3, 3, 3]) as unknown as tf.Tensor4D, tf.ones([2, 8, 8])),
        /maskedConv2d: filter must be 4-D/,
      );
      assert.throws(
        () => maskedConv2d(x(), tf.zeros([3, 3, 2, 4]) as tf.Tensor4D, tf.ones([2, 8, 8])),
        /filter's inChannels \(shape\[2\] = 2\) must equal x's channels \(3\)/,
      );
      assert.throws(() => maskedConv2d(x(), filter(), tf.ones([2, 8, 8]), 0), /strides must be positive integers/);
      assert.throws(() => maskedConv2d(x(), filter(), tf.ones([2, 8, 8], 'int32')), /mask must be float32, got int32/);
    });

    it('rejects wrong shapes and lengths when native code is called directly', () => {
      const addon = nativeAddon()!;
      const xs = [2, 8, 8, 3],
        fs = [3, 3, 3, 4],
        st = [1, 1],
        pads = [1, 1, 1, 1];
      const xv = new Float32Array(2 * 8 * 8 * 3),
        fv = new Float32Array(27 * 4),
        mv = new Float32Array(128);
      const yv = new Float32Array(2 * 8 * 8 * 4);
      assert.throws(
        () => addon.maskedConv2d(xs, fs, st, pads, xv, fv, new Float32Array(100), yv, 0),
        /maskedConv2d: mask must have shape \[2,8,8\] \(the output's batch, height, width: 128 elements\), got 100/,
      );
      assert.throws(
        () => addon.maskedConv2d([8, 8, 3], fs, st, pads, xv, fv, mv, yv, 0),
        /maskedConv2d: xShape must have 4 entries \[batch, height, width, inChannels\], got \[8,8,3\]/,
      );
      assert.throws(
        () => addon.maskedConv2d(xs, [3, 3, 2, 4], st, pads, xv, fv, mv, yv, 0),
        /filterShape\[2\] \(2\) must equal the input channels xShape\[3\] \(3\)/,
      );
      assert.throws(
        () => addon.maskedConv2d(xs, fs, st, pads, xv.subarray(1), fv, mv, yv, 0),
        /maskedConv2d: x must have 384 elements, got 383/,
      );
      assert.throws(() => addon.maskedConv2d(xs, fs, st, pads, xv, fv, mv, yv.subarray(1), 0), /y must have 512/);
      assert.throws(() => addon.maskedConv2d(xs, fs, [0, 1], pads, xv, fv, mv, yv, 0), /strides must be positive/);
      assert.throws(
        () => addon.maskedConv2d(xs, fs, st, pads, xv, fv, mv, yv, 7),
        /algo .* must be an integer in \[0, 3\]/,
      );
      assert.throws(
        () => addon.maskedConv2d(xs, [9, 9, 3, 4], st, [0, 0, 0, 0], xv, new Float32Array(81 * 12), mv, yv, 0),
        /the filter does not fit in the padded input/,
      );
      assert.throws(
        () => addon.maskedConv2dBackpropInput(xs, fs, st, pads, yv, fv, mv, xv.subarray(2), 0),
        /maskedConv2dBackpropInput: dx must have 384 elements, got 382/,
      );
      assert.throws(
        () => addon.maskedConv2dBackpropFilter(xs, fs, st, pads, xv, yv, new Float32Array(3), fv, 0),
        /maskedConv2dBackpropFilter: mask must have shape \[2,8,8\]/,
      );
      assert.throws(
        () => addon.maskedConv2dBackpropFilter(xs, fs, st, pads, xv, yv, mv, [] as unknown as Float32Array, 0),
        /maskedConv2dBackpropFilter: dfilter must be a Float32Array/,
      );
      // An output sharing memory with an input (the kernels read inputs after writing outputs).
      const shared = new Float32Array(xv.length + yv.length);
      const xIn = shared.subarray(0, xv.length),
        yOut = shared.subarray(xv.length - 1, xv.length - 1 + yv.length);
      assert.throws(
        () => addon.maskedConv2d(xs, fs, st, pads, xIn, fv, mv, yOut, 0),
        /maskedConv2d: y must not overlap an input/,
      );
      assert.throws(
        () => addon.maskedConv2dBackpropInput(xs, fs, st, pads, yv, fv, mv, yv.subarray(0, xv.length), 0),
        /maskedConv2dBackpropInput: dx must not overlap an input/,
      );
      assert.throws(
        () => addon.maskedConv2dBackpropFilter(xs, fs, st, pads, xv, yv, mv, xv.subarray(0, fv.length), 0),
        /maskedConv2dBackpropFilter: dfilter must not overlap an input/,
      );
    });
  });
});
