/**
 * The CUDA masked convolution (native/cuda/masked_conv2d.cu) against float64 references of conv2d where
 * mask > 0 (0 elsewhere) and of its two gradients from the active positions only (native/cpu/masked_conv2d.h),
 * at small shapes that still cover the kernels' branches: the three channel-block widths (16, 32, 64, and two blocks
 * of 64), K = kH*kW*inC not a multiple of the 16-element step, more active positions than one forward block holds,
 * non-square windows and asymmetric pads at stride 1 (the input gradient as a forward pass on the flipped filter),
 * K split over blocks (forward from K = 144, input gradient from 9 * outC = 144), stride 2 (the gather kernel),
 * no and all positions active. Every implementation at
 * hand runs the same cases: the simulated device, a real GPU when pact.node finds one, and pact.node's C++ kernel.
 */
import { strict as assert } from 'assert';

import { nativeAddon, simAddon, simAddonPath } from '../../src/native/binding';
import { expectClose } from '../helpers/compare';
import { freshRng, Rng } from '../helpers/random';
import { simBuild } from './sim_build';

interface Geometry {
  batch: number;
  inH: number;
  inW: number;
  inC: number;
  kH: number;
  kW: number;
  outC: number;
  strides: [number, number];
  pads: [number, number, number, number];
}

interface Derived extends Geometry {
  outH: number;
  outW: number;
}

function derive(g: Geometry): Derived {
  const [sH, sW] = g.strides;
  const [top, bottom, left, right] = g.pads;
  return {
    ...g,
    outH: Math.floor((g.inH + top + bottom - g.kH) / sH) + 1,
    outW: Math.floor((g.inW + left + right - g.kW) / sW) + 1,
  };
}

/** Calls fn(b, oy, ox, o... ) for every active output and every input/filter element it reads. */
function forEachTap(
  d: Derived,
  mask: Float32Array,
  fn: (yIndex: number, xIndex: number, fIndex: number, outRow: number) => void,
): void {
  for (let b = 0; b < d.batch; ++b) {
    for (let oy = 0; oy < d.outH; ++oy) {
      for (let ox = 0; ox < d.outW; ++ox) {
        const row = (b * d.outH + oy) * d.outW + ox;
        if (!(mask[row] > 0)) continue;
        for (let ky = 0; ky < d.kH; ++ky) {
          const iy = oy * d.strides[0] - d.pads[0] + ky;
          if (iy < 0 || iy >= d.inH) continue;
          for (let kx = 0; kx < d.kW; ++kx) {
            const ix = ox * d.strides[1] - d.pads[2] + kx;
            if (ix < 0 || ix >= d.inW) continue;
            for (let c = 0; c < d.inC; ++c) {
              fn(row, ((b * d.inH + iy) * d.inW + ix) * d.inC + c, ((ky * d.kW + kx) * d.inC + c) * d.outC, row);
            }
          }
        }
      }
    }
  }
}

function forward64(d: Derived, x: Float32Array, filter: Float32Array, mask: Float32Array): Float64Array {
  const y = new Float64Array(d.batch * d.outH * d.outW * d.outC);
  forEachTap(d, mask, (row, xi, fi) => {
    for (let o = 0; o < d.outC; ++o) y[row * d.outC + o] += x[xi] * filter[fi + o];
  });
  return y;
}

function backpropInput64(d: Derived, dy: Float32Array, filter: Float32Array, mask: Float32Array): Float64Array {
  const dx = new Float64Array(d.batch * d.inH * d.inW * d.inC);
  forEachTap(d, mask, (row, xi, fi) => {
    for (let o = 0; o < d.outC; ++o) dx[xi] += dy[row * d.outC + o] * filter[fi + o];
  });
  return dx;
}

function backpropFilter64(d: Derived, x: Float32Array, dy: Float32Array, mask: Float32Array): Float64Array {
  const df = new Float64Array(d.kH * d.kW * d.inC * d.outC);
  forEachTap(d, mask, (row, xi, fi) => {
    for (let o = 0; o < d.outC; ++o) df[fi + o] += x[xi] * dy[row * d.outC + o];
  });
  return df;
}

type Conv = (
  xShape: number[],
  filterShape: number[],
  strides: number[],
  pads: number[],
  a: Float32Array,
  b: Float32Array,
  mask: Float32Array | null,
  out: Float32Array,
) => void;

interface Implementation {
  name: string;
  /** Takes a null mask: the dense form (every position active, no compaction). */
  dense: boolean;
  forward: Conv;
  backpropInput: Conv;
  backpropFilter: Conv;
}

function implementations(): Implementation[] {
  const list: Implementation[] = [];
  if (simBuild() !== null || process.env.PACT_SIM_ADDON !== undefined) {
    const sim = simAddon();
    if (sim === null) throw new Error(`cannot load ${simAddonPath()}`);
    list.push({
      name: 'simulated CUDA',
      dense: true,
      forward: sim.cudaMaskedConv2d.bind(sim),
      backpropInput: sim.cudaMaskedConv2dBackpropInput.bind(sim),
      backpropFilter: sim.cudaMaskedConv2dBackpropFilter.bind(sim),
    });
  }
  const native = process.env.LD_PRELOAD === undefined ? nativeAddon() : null;
  if (native !== null && native.buildInfo().cuda.available) {
    list.push({
      name: 'CUDA',
      dense: true,
      forward: native.cudaMaskedConv2d.bind(native),
      backpropInput: native.cudaMaskedConv2dBackpropInput.bind(native),
      backpropFilter: native.cudaMaskedConv2dBackpropFilter.bind(native),
    });
  }
  if (list.length > 0 && native !== null && typeof native.maskedConv2d === 'function') {
    const sparse = 1;
    list.push({
      name: 'C++ (pact.node, sparse)',
      dense: false,
      forward: (xs, fs, st, pd, a, b, m, out) => native.maskedConv2d(xs, fs, st, pd, a, b, m!, out, sparse),
      backpropInput: (xs, fs, st, pd, a, b, m, out) =>
        native.maskedConv2dBackpropInput(xs, fs, st, pd, a, b, m!, out, sparse),
      backpropFilter: (xs, fs, st, pd, a, b, m, out) =>
        native.maskedConv2dBackpropFilter(xs, fs, st, pd, a, b, m!, out, sparse),
    });
  }
  return list;
}

interface Case {
  label: string;
  geometry: Geometry;
  activeFraction: number;
}

const CASES: Case[] = [
  {
    label: '3x3 same, odd sizes',
    activeFraction: 0.5,
    geometry: { batch: 2, inH: 7, inW: 9, inC: 3, kH: 3, kW: 3, outC: 5, strides: [1, 1], pads: [1, 1, 1, 1] },
  },
  {
    label: '>64 output channels, K over two chunks, >128 active',
    activeFraction: 0.6,
    geometry: { batch: 3, inH: 10, inW: 12, inC: 8, kH: 3, kW: 3, outC: 70, strides: [1, 1], pads: [1, 1, 1, 1] },
  },
  {
    label: '32-channel block, 2x3 window, asymmetric pads, K split in two, >256 active',
    activeFraction: 0.9,
    geometry: { batch: 2, inH: 13, inW: 11, inC: 24, kH: 2, kW: 3, outC: 24, strides: [1, 1], pads: [1, 0, 2, 1] },
  },
  {
    label: 'stride 2, asymmetric pads',
    activeFraction: 0.7,
    geometry: { batch: 2, inH: 8, inW: 7, inC: 4, kH: 3, kW: 3, outC: 6, strides: [2, 2], pads: [0, 1, 0, 1] },
  },
  {
    label: '1x1, all active',
    activeFraction: 1,
    geometry: { batch: 1, inH: 5, inW: 3, inC: 2, kH: 1, kW: 1, outC: 3, strides: [1, 1], pads: [0, 0, 0, 0] },
  },
  {
    label: 'none active',
    activeFraction: 0,
    geometry: { batch: 1, inH: 4, inW: 4, inC: 2, kH: 3, kW: 3, outC: 2, strides: [1, 1], pads: [1, 1, 1, 1] },
  },
];

function maskOf(rng: Rng, n: number, fraction: number): Float32Array {
  const m = new Float32Array(n);
  for (let i = 0; i < n; ++i) m[i] = rng.next() < fraction ? rng.uniform(1, 0.1, 1)[0] : 0;
  return m;
}

/**
 * One implementation on one case, fresh inputs, outputs filled with NaN first (an element it fails to write shows):
 * against the float64 references with the case's random mask, or with `dense` a null mask (the dense form) against
 * the all-active reference.
 */
function checkCase(impl: Implementation, c: Case, dense: boolean): void {
  const d = derive(c.geometry);
  const xShape = [d.batch, d.inH, d.inW, d.inC];
  const fShape = [d.kH, d.kW, d.inC, d.outC];
  const yCount = d.batch * d.outH * d.outW * d.outC;
  const rng = freshRng();
  const label = `${impl.name}${dense ? ' dense' : ''} ${c.label} seed ${rng.seed}`;
  const x = rng.uniform(xShape.reduce((a, b) => a * b));
  const filter = rng.uniform(fShape.reduce((a, b) => a * b));
  const dy = rng.uniform(yCount);
  const positions = d.batch * d.outH * d.outW;
  const mask = dense ? new Float32Array(positions).fill(1) : maskOf(rng, positions, c.activeFraction);
  const given = dense ? null : mask;
  const tol = { atol: 1e-4, rtol: 1e-4 };
  const y = new Float32Array(yCount).fill(NaN);
  impl.forward(xShape, fShape, d.strides, d.pads, x, filter, given, y);
  expectClose(y, forward64(d, x, filter, mask), tol, `${label} y`);
  const dx = new Float32Array(x.length).fill(NaN);
  impl.backpropInput(xShape, fShape, d.strides, d.pads, dy, filter, given, dx);
  expectClose(dx, backpropInput64(d, dy, filter, mask), tol, `${label} dx`);
  const df = new Float32Array(filter.length).fill(NaN);
  impl.backpropFilter(xShape, fShape, d.strides, d.pads, x, dy, given, df);
  expectClose(df, backpropFilter64(d, x, dy, mask), { atol: 5e-4, rtol: 1e-4 }, `${label} dfilter`);
}

describe('CUDA masked convolution vs float64 reference', function () {
  const impls = implementations();
  before(function () {
    if (impls.length === 0) this.skip();
  });

  for (const c of CASES) {
    it(`matches forward, input and filter gradients: ${c.label}`, () => {
      for (const impl of impls) checkCase(impl, c, false);
    });
  }

  it('computes the dense form (null mask: no compaction, outputs written whole) as the all-active reference', () => {
    for (const c of CASES) {
      for (const impl of impls.filter((i) => i.dense)) checkCase(impl, c, true);
    }
  });

  it('rejects bad arguments with errors naming them, before touching the device', () => {
    const device = impls[0];
    const f = (n: number): Float32Array => new Float32Array(n);
    const xs = [1, 4, 4, 2];
    const fs = [3, 3, 2, 2];
    device.forward(xs, fs, [1, 1], [1, 1, 1, 1], f(32), f(36), f(16), f(32));
    assert.throws(
      () => device.forward(xs, [3, 3, 3, 2], [1, 1], [1, 1, 1, 1], f(32), f(54), f(16), f(32)),
      /filterShape\[2\] \(3\) must equal the input channels xShape\[3\] \(2\)/,
    );
    assert.throws(
      () => device.forward(xs, fs, [1, 1], [1, 1, 1, 1], f(32), f(36), f(15), f(32)),
      /mask must have 16 elements, got 15/,
    );
    assert.throws(
      () => device.forward(xs, fs, [0, 1], [1, 1, 1, 1], f(32), f(36), f(16), f(32)),
      /strides must be positive/,
    );
    assert.throws(
      () => device.forward([1, 2, 2, 2], fs, [1, 1], [0, 0, 0, 0], f(8), f(36), f(1), f(2)),
      /the filter does not fit in the padded input/,
    );
    assert.throws(
      () => device.backpropFilter(xs, fs, [1, 1], [1, 1, 1, 1], f(32), f(32), f(16), f(35)),
      /dfilter must have 36 elements, got 35/,
    );
  });
});
