/**
 * dilateMask and maskedResidualUnit: an all-ones mask reproduces the dense pre-activation unit (an independent
 * tfjs composite on tfjs-backend-cpu); a partial mask matches the dense unit with the documented statistics (BN1
 * over dilate(A, 5), BN2 over dilate(A, 3)) and leaves u unchanged where a = 0; pact-cpu and the composite agree
 * on values and gradients; finite-difference gradient check; an all-zero mask returns u; bad input.
 */
import { strict as assert } from 'assert';

import * as tf from '@tensorflow/tfjs';

import { nativeAddon } from '../../src';
import { dilateMask } from '../../src/ops/dilate_mask';
import {
  maskedResidualUnit,
  maskedResidualUnitWithStats,
  MaskedResidualUnitParams,
  PACT_MASKED_BATCH_NORM_RELU_INFERENCE,
} from '../../src/ops/masked_residual_unit';
import { NATIVE, REFERENCE, requirePactCpu, scoped } from '../helpers/backends';
import { expectClose, Tolerance } from '../helpers/compare';
import { freshRng, Rng } from '../helpers/random';

const TOL: Tolerance = { atol: 2e-4, rtol: 2e-4 };
const EPS = 1e-5;

interface UnitCase {
  shape: [number, number, number, number];
  u: Float32Array;
  a: Float32Array;
  scale1: Float32Array;
  offset1: Float32Array;
  w1: Float32Array;
  scale2: Float32Array;
  offset2: Float32Array;
  w2: Float32Array;
  label: string;
}

function unitCase(rng: Rng, shape: [number, number, number, number], density: number, block = 1): UnitCase {
  const [b, h, w, c] = shape;
  const bw = Math.ceil(w / block),
    bh = Math.ceil(h / block);
  const blocks = Array.from({ length: b * bh * bw }, () => rng.next() < density);
  const a = new Float32Array(b * h * w);
  for (let i = 0; i < a.length; ++i) {
    const n = Math.floor(i / (h * w)),
      y = Math.floor((i % (h * w)) / w),
      x = i % w;
    a[i] = blocks[(n * bh + Math.floor(y / block)) * bw + Math.floor(x / block)] ? 0.2 + 0.8 * rng.next() : 0;
  }
  return {
    shape,
    u: rng.normal(b * h * w * c),
    a,
    scale1: rng.uniform(c, 0.5, 1.5),
    offset1: rng.uniform(c, -0.5, 0.5),
    w1: rng.normal(9 * c * c).map((v) => v / 3),
    scale2: rng.uniform(c, 0.5, 1.5),
    offset2: rng.uniform(c, -0.5, 0.5),
    w2: rng.normal(9 * c * c).map((v) => v / 3),
    label: `seed ${rng.seed} shape [${shape}] density ${density} block ${block}`,
  };
}

function tensors(c: UnitCase): { u: tf.Tensor4D; a: tf.Tensor3D; params: MaskedResidualUnitParams } {
  const [b, h, w, ch] = c.shape;
  return {
    u: tf.tensor4d(c.u, c.shape),
    a: tf.tensor3d(c.a, [b, h, w]),
    params: {
      bn1: { scale: tf.tensor1d(c.scale1), offset: tf.tensor1d(c.offset1) },
      conv1: tf.tensor4d(c.w1, [3, 3, ch, ch]),
      bn2: { scale: tf.tensor1d(c.scale2), offset: tf.tensor1d(c.offset2) },
      conv2: tf.tensor4d(c.w2, [3, 3, ch, ch]),
    },
  };
}

/** Dense BN-ReLU with statistics over the positions of `set` (all positions when undefined), via tf.moments. */
function denseBnRelu(x: tf.Tensor4D, scale: tf.Tensor, offset: tf.Tensor, set?: tf.Tensor): tf.Tensor4D {
  let mean: tf.Tensor, variance: tf.Tensor;
  if (set === undefined) {
    ({ mean, variance } = tf.moments(x, [0, 1, 2]));
  } else {
    const m = tf.expandDims(set, 3),
      n = tf.sum(m);
    mean = tf.div(tf.sum(tf.mul(x, m), [0, 1, 2]), n);
    variance = tf.div(tf.sum(tf.mul(tf.square(tf.sub(x, mean)), m), [0, 1, 2]), n);
  }
  return tf.relu(tf.batchNorm(x, mean, variance, offset, scale, EPS)) as tf.Tensor4D;
}

/** The dense unit u + f(u)·a computed everywhere, BN statistics over the given sets (all positions by default). */
function denseUnit(c: UnitCase, sets?: { bn1: tf.Tensor; bn2: tf.Tensor }): tf.Tensor {
  const { u, a, params } = tensors(c);
  const h1 = denseBnRelu(u, params.bn1.scale, params.bn1.offset, sets?.bn1);
  const c1 = tf.conv2d(h1, params.conv1, 1, 'same');
  const h2 = denseBnRelu(c1, params.bn2.scale, params.bn2.offset, sets?.bn2);
  const c2 = tf.conv2d(h2, params.conv2, 1, 'same');
  return tf.add(u, tf.mul(c2, tf.expandDims(a, 3)));
}

function onBackend<T>(backend: string, fn: () => T): T {
  const previous = tf.getBackend();
  tf.setBackend(backend);
  try {
    return fn();
  } finally {
    tf.setBackend(previous);
  }
}

function unitOutput(backend: string, c: UnitCase): Float32Array {
  return onBackend(backend, () =>
    tf.tidy(() => {
      const { u, a, params } = tensors(c);
      return Float32Array.from(maskedResidualUnit(u, params, a).dataSync());
    }),
  );
}

/** Gradients of sum(unit(u, params, a) * g) w.r.t. u, a, bn1.scale, bn1.offset, conv1, bn2.scale, conv2. */
function unitGrads(backend: string, c: UnitCase, g: Float32Array): Float32Array[] {
  return onBackend(backend, () =>
    tf.tidy(() => {
      const { u, a, params } = tensors(c);
      const f = (
        uu: tf.Tensor,
        aa: tf.Tensor,
        s1: tf.Tensor,
        o1: tf.Tensor,
        w1: tf.Tensor,
        s2: tf.Tensor,
        w2: tf.Tensor,
      ) =>
        maskedResidualUnit(
          uu as tf.Tensor4D,
          {
            bn1: { scale: s1 as tf.Tensor1D, offset: o1 as tf.Tensor1D },
            conv1: w1 as tf.Tensor4D,
            bn2: { scale: s2 as tf.Tensor1D, offset: params.bn2.offset },
            conv2: w2 as tf.Tensor4D,
          },
          aa,
        );
      const grads = tf.grads(f)(
        [u, a, params.bn1.scale, params.bn1.offset, params.conv1, params.bn2.scale, params.conv2],
        tf.tensor4d(g, c.shape),
      );
      return grads.map((t) => Float32Array.from(t.dataSync()));
    }),
  );
}

describe('dilateMask', () => {
  before(requirePactCpu);

  it('matches max-pooling of [mask > 0] (NaN inactive; pact-cpu kernel vs composite on cpu) for k = 1, 3, 5, 7 (window maximum) and 9, 13 (scans), up to 64 wide (bit rows) and wider, and counts its ones', () => {
    const rng = freshRng();
    for (const [k, wide] of [1, 3, 5, 7, 9, 13].flatMap((k) => [[k, false] as const, [k, true] as const])) {
      const shape: [number, number, number] = [rng.int(1, 3), rng.int(1, 20), wide ? rng.int(65, 80) : rng.int(1, 64)];
      // About 5% NaN entries: inactive, like 0 (not > 0) on every backend.
      const m = rng.uniform(shape[0] * shape[1] * shape[2]).map((v) => (v > 0.85 ? v : v < 0.05 ? NaN : -v));
      const expected = onBackend(REFERENCE, () =>
        tf.tidy(() =>
          Float32Array.from(
            tf
              .maxPool(tf.cast(tf.greater(tf.tensor4d(m, [...shape, 1]), 0), 'float32') as tf.Tensor4D, k, 1, 'same')
              .dataSync(),
          ),
        ),
      );
      for (const backend of [NATIVE, REFERENCE]) {
        const got = onBackend(backend, () =>
          tf.tidy(() => Float32Array.from(dilateMask(tf.tensor3d(m, shape), k).dataSync())),
        );
        expectClose(got, expected, { atol: 0, rtol: 0 }, `${backend} k=${k} seed ${rng.seed} shape [${shape}]`);
      }
      const out = new Float32Array(m.length);
      const ones = nativeAddon()!.dilateMask(shape, m, (k - 1) / 2, out);
      assert.equal(ones, expected.filter((v) => v === 1).length, `ones, k=${k} seed ${rng.seed} shape [${shape}]`);
    }
  });

  it('keeps a [B,H,W,1] shape and rejects bad k, shapes and native lengths', () => {
    assert.deepEqual(dilateMask(tf.zeros([2, 4, 4, 1]), 3).shape, [2, 4, 4, 1]);
    // A window wider than the image (here beyond the addon's radius limit, 2^20) covers all of it.
    for (const backend of [NATIVE, REFERENCE]) {
      for (const w of [3, 70]) {
        const m = new Float32Array(2 * w);
        m[w + 1] = 1;
        const wide = onBackend(backend, () =>
          tf.tidy(() => Array.from(dilateMask(tf.tensor3d(m, [2, 1, w]), 2 ** 21 + 3).dataSync())),
        );
        assert.deepEqual(wide, [...new Array(w).fill(0), ...new Array(w).fill(1)], `${backend} width ${w}`);
      }
    }
    assert.throws(() => dilateMask(tf.zeros([2, 4, 4]), 2), /dilateMask: k must be an odd positive integer, got 2/);
    assert.throws(() => dilateMask(tf.zeros([4, 4]), 3), /dilateMask: mask must have shape \[batch, height, width\]/);
    assert.throws(
      () => nativeAddon()!.dilateMask([2, 4, 4], new Float32Array(31), 1, new Float32Array(32)),
      /dilateMask: mask must have 32 elements, got 31/,
    );
    assert.throws(
      () => nativeAddon()!.dilateMask([2, 4], new Float32Array(8), 1, new Float32Array(8)),
      /dilateMask: maskShape must have 3 entries/,
    );
  });

  it("packActive and zeroActiveRows (the buffer pool's clearing) clear exactly the rows where mask > 0", () => {
    const rng = freshRng();
    const addon = nativeAddon()!;
    // Any row length (a memset per run of set bits), and rows of 8 to 64 floats (vector stores, a row per bit), over
    // fewer rows than a thread's share and over two shares (from 16,384 rows, 512 words; row counts that are not a
    // multiple of 32 leave bits past the end in the last word).
    for (const [rows, length] of [
      [rng.int(1, 5000), rng.int(1, 40)],
      [rng.int(1, 5000), rng.pick([8, 16, 24, 32, 64])],
      [rng.int(16384, 20000), rng.pick([8, 16, 24, 32, 64])],
      [rng.int(16384, 20000), rng.int(1, 7)],
    ]) {
      const mask = Float32Array.from({ length: rows }, () => rng.pick([1, 0.5, 0, -0, -1, NaN]));
      const bits = new Int32Array(Math.ceil(rows / 32)).fill(-1);
      const count = addon.packActive(mask, bits);
      const active = mask.reduce((n, v) => n + (v > 0 ? 1 : 0), 0);
      assert.equal(count, active, `seed ${rng.seed}: count`);
      for (let i = 0; i < bits.length * 32; ++i) {
        const bit = (bits[i >> 5] >>> (i & 31)) & 1;
        assert.equal(bit, i < rows && mask[i] > 0 ? 1 : 0, `seed ${rng.seed}, ${rows} rows: bit ${i}`);
      }
      const data = rng.normal(rows * length);
      const expected = data.map((v, i) => (mask[Math.floor(i / length)] > 0 ? 0 : v));
      // Set bits past the rows are ignored.
      if (rows % 32 !== 0) bits[bits.length - 1] |= 1 << 31;
      addon.zeroActiveRows(bits, length, data);
      assert.deepEqual(data, expected, `seed ${rng.seed}, ${rows} rows of ${length}`);
    }
    assert.throws(
      () => addon.packActive(new Float32Array(33), new Int32Array(1)),
      /packActive: bits must have 2 elements/,
    );
    assert.throws(
      () => addon.packActive(new Float32Array(4), new Float32Array(1) as never),
      /bits must be an Int32Array/,
    );
    assert.throws(
      () => addon.zeroActiveRows(new Int32Array(1), 3, new Float32Array(11)),
      /zeroActiveRows: data must hold whole rows of rowLength \(3\) values, got 11/,
    );
    assert.throws(
      () => addon.zeroActiveRows(new Int32Array(1), 3, new Float32Array(99)),
      /zeroActiveRows: bits must have 2 elements \(one per 32 rows of data\), got 1/,
    );
    assert.throws(
      () => addon.zeroActiveRows(new Int32Array(1), 0, new Float32Array(0)),
      /zeroActiveRows: rowLength must be/,
    );
  });
});

describe('maskedResidualUnit', () => {
  before(requirePactCpu);

  it('reproduces the dense unit with an all-ones mask (pact-cpu and composite)', () => {
    const rng = freshRng();
    const c = unitCase(rng, [2, 6, 5, 4], 1);
    c.a.fill(1);
    const expected = onBackend(REFERENCE, () => tf.tidy(() => Float32Array.from(denseUnit(c).dataSync())));
    for (const backend of [NATIVE, REFERENCE])
      expectClose(unitOutput(backend, c), expected, TOL, `${backend} ${c.label}`);
  });

  for (const block of [1, 2]) {
    it(`matches the dense unit with statistics over the computed sets, ${block}x${block} blocks`, () => {
      const rng = freshRng();
      const c = unitCase(rng, [2, 8, 7, 3], 0.3, block);
      const expected = onBackend(REFERENCE, () =>
        tf.tidy(() => {
          const active = tf.cast(tf.greater(tf.tensor3d(c.a, [2, 8, 7]), 0), 'float32');
          const sets = { bn1: dilateMask(active, 5), bn2: dilateMask(active, 3) };
          return Float32Array.from(denseUnit(c, sets).dataSync());
        }),
      );
      for (const backend of [NATIVE, REFERENCE]) {
        const got = unitOutput(backend, c);
        expectClose(got, expected, TOL, `${backend} ${c.label}`);
        for (let i = 0; i < got.length; ++i) {
          if (c.a[Math.floor(i / 3)] === 0) assert.equal(got[i], c.u[i], `${backend}: y[${i}] must be u where a = 0`);
        }
      }
    });
  }

  it('has the same gradients on pact-cpu as the composite, and they pass a finite-difference check', () => {
    const rng = freshRng();
    const c = unitCase(rng, [2, 5, 6, 3], 0.4);
    const g = rng.normal(c.u.length);
    const native = unitGrads(NATIVE, c, g),
      composite = unitGrads(REFERENCE, c, g);
    const names = ['u', 'a', 'bn1.scale', 'bn1.offset', 'conv1', 'bn2.scale', 'conv2'];
    native.forEach((d, i) => expectClose(d, composite[i], { atol: 5e-4, rtol: 5e-4 }, `d${names[i]} ${c.label}`));
    // Finite differences of L = sum(unit * g), summed in float64, on a few elements of u and conv1. The unit is
    // piecewise smooth (ReLU): a kink within a step makes a central difference wrong, but then the analytic
    // gradient (the slope at the point) still equals the one-sided difference away from the kink. So the check
    // passes when the analytic value matches one of: central differences at two steps, forward, backward.
    const loss = (cc: UnitCase) => unitOutput(NATIVE, cc).reduce((s, v, i) => s + v * g[i], 0);
    const tol = { atol: 1e-2, rtol: 1e-2 };
    for (const [name, key, index] of [
      ['u', 'u', 0],
      ['conv1', 'w1', 4],
    ] as const) {
      for (let trial = 0; trial < 4; ++trial) {
        const values = c[key];
        const i = rng.int(0, values.length - 1);
        const at = (delta: number) => {
          const v = Float32Array.from(values);
          v[i] += delta;
          return loss({ ...c, [key]: v });
        };
        const l0 = at(0),
          h = 5e-4;
        const lPlus = at(h),
          lMinus = at(-h);
        const estimates = [
          (at(2e-3) - at(-2e-3)) / 4e-3,
          (lPlus - lMinus) / (2 * h),
          (lPlus - l0) / h,
          (l0 - lMinus) / h,
        ];
        const analytic = native[index][i];
        const closest = estimates.reduce((best, v) => (Math.abs(v - analytic) < Math.abs(best - analytic) ? v : best));
        expectClose([analytic], [closest], tol, `d${name}[${i}] (estimates ${estimates}) ${c.label}`);
      }
    }
  });

  it('returns u and computes nothing with an all-zero mask', () => {
    const rng = freshRng();
    const c = unitCase(rng, [2, 6, 6, 3], 0);
    const r = tf.tidy(() => {
      const { u, a, params } = tensors(c);
      const out = maskedResidualUnitWithStats(u, params, a);
      return { y: Float32Array.from(out.y.dataSync()), counts: out.activeCounts };
    });
    assert.deepEqual(r.counts, [0, 0, 0]);
    expectClose(r.y, c.u, { atol: 0, rtol: 0 }, c.label);
  });

  it('runs its batch norms natively on pact-cpu, and the native kernel rejects bad lengths', () => {
    const addon = nativeAddon()!;
    const rows = 6,
      ch = 2;
    const f = (n: number) => new Float32Array(n);
    type Arrays = Partial<Record<'x' | 'mask' | 'y' | 'dy' | 'dx' | 'dscale' | 'doffset', Float32Array>>;
    const forward = (a: Arrays, epsilon = 1e-5) =>
      addon.maskedBatchNormRelu(
        rows,
        ch,
        a.x ?? f(12),
        a.mask ?? f(rows),
        f(ch),
        f(ch),
        epsilon,
        a.y ?? f(12),
        f(ch),
        f(ch),
      );
    const backward = (a: Arrays) =>
      addon.maskedBatchNormReluGrad(
        rows,
        ch,
        a.dy ?? f(12),
        f(12),
        f(rows),
        f(12),
        f(ch),
        f(ch),
        f(ch),
        1e-5,
        a.dx ?? f(12),
        a.dscale ?? f(ch),
        a.doffset ?? f(ch),
      );
    assert.throws(() => forward({ x: f(11) }), /maskedBatchNormRelu: x must have 12 elements, got 11/);
    assert.throws(() => forward({ mask: f(5) }), /maskedBatchNormRelu: mask must have 6 elements, got 5/);
    assert.throws(() => forward({}, 0), /epsilon must be positive/);
    assert.throws(() => backward({ dscale: f(3) }), /maskedBatchNormReluGrad: dscale must have 2 elements, got 3/);
    const shared = f(24);
    assert.throws(
      () => forward({ x: shared.subarray(0, 12), y: shared.subarray(11, 23) }),
      /maskedBatchNormRelu: y must not overlap an input/,
    );
    assert.throws(
      () => backward({ dy: shared.subarray(0, 12), dx: shared.subarray(0, 12) }),
      /maskedBatchNormReluGrad: dx must not overlap an input/,
    );
    const stats = f(4);
    assert.throws(
      () => backward({ dscale: stats.subarray(0, 2), doffset: stats.subarray(1, 3) }),
      /maskedBatchNormReluGrad: dscale must not overlap an input/,
    );
    // The statistics are those of the active rows: rows 0 and 3 active, x = [1, 2] and [3, 6].
    const x = Float32Array.from([1, 2, 9, 9, 9, 9, 3, 6, 9, 9, 9, 9]);
    const mask = Float32Array.from([1, 0, -1, 0.5, 0, NaN]);
    const y = f(12),
      mean = f(ch),
      variance = f(ch);
    addon.maskedBatchNormRelu(
      rows,
      ch,
      x,
      mask,
      Float32Array.from([1, 1]),
      Float32Array.from([0, 0]),
      1e-5,
      y,
      mean,
      variance,
    );
    expectClose(mean, [2, 4], { atol: 1e-6, rtol: 0 }, 'mean');
    expectClose(variance, [1, 4], { atol: 1e-6, rtol: 0 }, 'variance');
    expectClose(y, [0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0], { atol: 1e-4, rtol: 0 }, 'y');
  });

  it('evaluates with given statistics: native kernel vs float64, unit and gradients vs the composite', () => {
    const rng = freshRng();
    const addon = nativeAddon()!;
    // The kernel alone against float64, output NaN-filled (every element must be written).
    const rows = 37,
      ch = 11;
    const x = rng.normal(rows * ch),
      mask = rng.uniform(rows, 0, 1).map((v) => (v < 0.5 ? 1 : 0));
    const [scale, offset, mean] = [rng.normal(ch), rng.normal(ch), rng.normal(ch)];
    const variance = rng.uniform(ch, 0.5, 2);
    const y = new Float32Array(rows * ch).fill(NaN);
    addon.maskedBatchNormReluInference(rows, ch, x, mask, scale, offset, mean, variance, EPS, y);
    const expected = Array.from(y, (_, i) => {
      const k = i % ch;
      const v = ((x[i] - mean[k]) / Math.sqrt(variance[k] + EPS)) * scale[k] + offset[k];
      return mask[Math.floor(i / ch)] > 0 ? Math.max(0, v) : 0;
    });
    expectClose(y, expected, { atol: 1e-5, rtol: 1e-5 }, `kernel, seed ${rng.seed}`);
    const f = (n: number) => new Float32Array(n);
    assert.throws(
      () => addon.maskedBatchNormReluInference(rows, ch, x, mask, scale, offset, f(ch - 1), variance, EPS, y),
      /maskedBatchNormReluInference: mean must have 11 elements, got 10/,
    );
    assert.throws(
      () => addon.maskedBatchNormReluInference(rows, ch, x, mask, scale, offset, mean, variance, EPS, x),
      /maskedBatchNormReluInference: y must not overlap an input/,
    );
    // The unit in evaluation: pact-cpu (native kernel) against the composite on tfjs-backend-cpu, values and the
    // gradients w.r.t. u, bn1's scale and offset and the moving statistics.
    const c = unitCase(rng, [2, 6, 7, 5], 0.4);
    const stats = {
      mean1: rng.normal(5),
      variance1: rng.uniform(5, 0.5, 1.5),
      mean2: rng.normal(5),
      variance2: rng.uniform(5, 0.5, 1.5),
    };
    const g = rng.normal(c.u.length);
    const run = (backend: string, cc: UnitCase, st: typeof stats) =>
      onBackend(backend, () =>
        tf.tidy(() => {
          const { u, a, params } = tensors(cc);
          const moving = (m: Float32Array, v: Float32Array) => ({ mean: tf.tensor1d(m), variance: tf.tensor1d(v) });
          const [m1, v1] = [tf.tensor1d(st.mean1), tf.tensor1d(st.variance1)];
          const unit = (uu: tf.Tensor, s1: tf.Tensor, o1: tf.Tensor, mm: tf.Tensor, vv: tf.Tensor) =>
            tf
              .mul(
                maskedResidualUnit(
                  uu as tf.Tensor4D,
                  { ...params, bn1: { scale: s1 as tf.Tensor1D, offset: o1 as tf.Tensor1D } },
                  a,
                  {
                    moving: {
                      bn1: { mean: mm as tf.Tensor1D, variance: vv as tf.Tensor1D },
                      bn2: moving(st.mean2, st.variance2),
                    },
                  },
                ),
                tf.tensor4d(g, cc.shape),
              )
              .sum();
          const { value, grads } = tf.valueAndGrads(unit)([u, params.bn1.scale, params.bn1.offset, m1, v1]);
          return { loss: value.dataSync()[0], grads: grads.map((t) => Float32Array.from(t.dataSync())) };
        }),
      );
    const native = run(NATIVE, c, stats),
      composite = run(REFERENCE, c, stats);
    expectClose([native.loss], [composite.loss], { atol: 1e-3, rtol: 1e-4 }, `loss ${c.label}`);
    const names = ['u', 'bn1.scale', 'bn1.offset', 'bn1 mean', 'bn1 variance'];
    native.grads.forEach((d, i) =>
      expectClose(d, composite.grads[i], { atol: 5e-4, rtol: 5e-4 }, `d${names[i]} ${c.label}`),
    );
    // The kernel's own gradient against float64 central differences of L = sum(dy * y) over the rows of `mask`
    // above (one BN + ReLU: kinks only where an input crosses 0, which a step of 1e-4 rarely straddles; through the
    // whole unit the downstream ReLUs made differences at any usable step unreliable).
    const kernelGrads = onBackend(NATIVE, () =>
      scoped(() => {
        const dyK = tf.tensor2d(rng.normal(rows * ch), [rows, ch]);
        const f = (xx: tf.Tensor, s: tf.Tensor, o: tf.Tensor, m: tf.Tensor, v: tf.Tensor) =>
          tf
            .engine()
            .runKernel(
              PACT_MASKED_BATCH_NORM_RELU_INFERENCE,
              { x: xx, scale: s, offset: o, mean: m, variance: v, mask: tf.tensor1d(mask) },
              { epsilon: EPS },
            ) as tf.Tensor;
        const inputs = [tf.tensor2d(x, [rows, ch]), ...[scale, offset, mean, variance].map((t) => tf.tensor1d(t))];
        const grads = tf.grads(f)(inputs, dyK);
        return { dy: Float64Array.from(dyK.dataSync()), grads: grads.map((t) => Float64Array.from(t.dataSync())) };
      }),
    );
    const loss64 = (p: Float32Array[]) => {
      const [xx, s, o, m, v] = p.map((t) => Float64Array.from(t));
      let sum = 0;
      for (let i = 0; i < rows * ch; ++i) {
        const k = i % ch;
        if (!(mask[Math.floor(i / ch)] > 0)) continue;
        sum += kernelGrads.dy[i] * Math.max(0, ((xx[i] - m[k]) / Math.sqrt(v[k] + EPS)) * s[k] + o[k]);
      }
      return sum;
    };
    const params = [x, scale, offset, mean, variance];
    ['x', 'scale', 'offset', 'mean', 'variance'].forEach((name, which) => {
      const i = rng.int(0, params[which].length - 1),
        h = 1e-4;
      const at = (delta: number) =>
        loss64(params.map((t, j) => (j === which ? t.map((v, e) => (e === i ? v + delta : v)) : t)));
      const numeric = (at(h) - at(-h)) / (2 * h);
      expectClose([kernelGrads.grads[which][i]], [numeric], { atol: 2e-3, rtol: 2e-3 }, `kernel d${name}[${i}]`);
    });
    const kernels = onBackend(NATIVE, () => tf.profile(() => run(NATIVE, c, stats)));
    return kernels.then((info) => {
      assert.ok(info.kernelNames.includes('PactMaskedBatchNormReluInference'), `kernels: ${info.kernelNames}`);
    });
  });

  it('masked batch norm + ReLU and its gradient: native kernels vs float64, gathered and sequential paths', () => {
    // native/cpu/masked_residual_unit.cc gathers the active rows below a quarter of them and runs over every row in
    // order above, masking the inactive ones bitwise: NaN in x, dy and y's inactive rows must still give exact
    // zeros, every output element must be written (NaN-filled), and 19 channels run both the 8-wide AVX2 loop and
    // the remainder; multiples of 8 run the sequential sums with register accumulators (8, 16 or 32 channels a
    // group). 20,011 rows: from 16,384 the active rows are counted and listed in one share a thread, and the
    // sequential sums run in two shares of 64-row chunks.
    const rng = freshRng();
    const addon = nativeAddon()!;
    const cases: Array<[number, number, number]> = [
      [19, 301, 0.1],
      [19, 301, 0.6],
      [19, 20011, 0.1],
      [rng.pick([8, 24]), 20011, 0.6],
      [16, rng.int(200, 400), 0.6],
      [rng.pick([32, 64]), 20011, 0.6],
    ];
    for (const [ch, rows, density] of cases) {
      const mask = rng.uniform(rows, 0, 1).map((v) => (v < density ? 1 : 0));
      const active = (r: number) => mask[r] > 0;
      const x = rng.normal(rows * ch),
        dy = rng.normal(rows * ch);
      for (let i = 0; i < rows * ch; ++i) {
        if (!active(Math.floor(i / ch)) && i % 3 === 0) x[i] = dy[i] = NaN;
      }
      const scale = rng.uniform(ch, 0.5, 1.5),
        offset = rng.uniform(ch, -0.5, 0.5);
      const y = new Float32Array(rows * ch).fill(NaN),
        mean = new Float32Array(ch).fill(NaN),
        variance = new Float32Array(ch).fill(NaN);
      addon.maskedBatchNormRelu(rows, ch, x, mask, scale, offset, EPS, y, mean, variance);
      const dx = new Float32Array(rows * ch).fill(NaN),
        dscale = new Float32Array(ch).fill(NaN),
        doffset = new Float32Array(ch).fill(NaN);
      addon.maskedBatchNormReluGrad(rows, ch, dy, x, mask, y, scale, mean, variance, EPS, dx, dscale, doffset);
      // float64 reference
      const n = mask.reduce((a, v) => a + (v > 0 ? 1 : 0), 0);
      const m64 = new Float64Array(ch),
        v64 = new Float64Array(ch);
      for (let r = 0; r < rows; ++r) if (active(r)) for (let k = 0; k < ch; ++k) m64[k] += x[r * ch + k] / n;
      for (let r = 0; r < rows; ++r) {
        if (active(r)) for (let k = 0; k < ch; ++k) v64[k] += (x[r * ch + k] - m64[k]) ** 2 / n;
      }
      const xhat = (i: number) => (x[i] - m64[i % ch]) / Math.sqrt(v64[i % ch] + EPS);
      const y64 = Array.from(y, (_, i) =>
        active(Math.floor(i / ch)) ? Math.max(0, xhat(i) * scale[i % ch] + offset[i % ch]) : 0,
      );
      const g = (i: number) => (active(Math.floor(i / ch)) && y64[i] > 0 ? dy[i] : 0);
      const sumG = new Float64Array(ch),
        sumGx = new Float64Array(ch);
      for (let i = 0; i < rows * ch; ++i) {
        if (!active(Math.floor(i / ch))) continue;
        sumG[i % ch] += g(i);
        sumGx[i % ch] += g(i) * xhat(i);
      }
      const dx64 = Array.from(dx, (_, i) => {
        const k = i % ch;
        if (!active(Math.floor(i / ch))) return 0;
        return (scale[k] / Math.sqrt(v64[k] + EPS)) * (g(i) - sumG[k] / n - (xhat(i) * sumGx[k]) / n);
      });
      const label = `${rows} rows of ${ch}, density ${density}, seed ${rng.seed}`;
      const tol = { atol: 1e-4, rtol: 1e-4 };
      expectClose(mean, Array.from(m64), tol, `mean, ${label}`);
      expectClose(variance, Array.from(v64), tol, `variance, ${label}`);
      expectClose(y, y64, tol, `y, ${label}`);
      expectClose(doffset, Array.from(sumG), { atol: 1e-3, rtol: 1e-4 }, `doffset, ${label}`);
      expectClose(dscale, Array.from(sumGx), { atol: 1e-3, rtol: 1e-4 }, `dscale, ${label}`);
      expectClose(dx, dx64, tol, `dx, ${label}`);
      for (let i = 0; i < rows * ch; ++i) {
        if (!active(Math.floor(i / ch))) assert.ok(y[i] === 0 && dx[i] === 0, `inactive ${i} not 0, ${label}`);
      }
    }
  });

  it('adds the residual u + c·a and takes its gradient natively, against float64, and rejects bad lengths', () => {
    const rng = freshRng();
    const addon = nativeAddon()!;
    const rows = 53,
      ch = 13;
    const u = rng.normal(rows * ch),
      c = rng.normal(rows * ch),
      dy = rng.normal(rows * ch);
    const a = rng.uniform(rows, 0, 1).map((v) => (v < 0.4 ? 0 : v)); // zeros and arbitrary positive factors
    const y = new Float32Array(rows * ch).fill(NaN),
      dc = new Float32Array(rows * ch).fill(NaN),
      da = new Float32Array(rows).fill(NaN);
    addon.scaledResidualAdd(rows, ch, u, c, a, y);
    addon.scaledResidualAddGrad(rows, ch, dy, c, a, dc, da);
    const row = (i: number) => Math.floor(i / ch);
    expectClose(
      y,
      Array.from(u, (v, i) => v + c[i] * a[row(i)]),
      { atol: 1e-6, rtol: 1e-6 },
      `y, seed ${rng.seed}`,
    );
    expectClose(
      dc,
      Array.from(dy, (v, i) => v * a[row(i)]),
      { atol: 1e-6, rtol: 1e-6 },
      `dc, seed ${rng.seed}`,
    );
    const dot = Array.from(da, (_, r) => {
      let sum = 0;
      for (let k = 0; k < ch; ++k) sum += dy[r * ch + k] * c[r * ch + k];
      return sum;
    });
    expectClose(da, dot, { atol: 1e-5, rtol: 1e-5 }, `da, seed ${rng.seed}`);
    assert.throws(() => addon.scaledResidualAdd(rows, ch, u, c, a.subarray(1), y), /scaledResidualAdd: a must have 53/);
    assert.throws(
      () => addon.scaledResidualAdd(rows, ch, u, c, a, u),
      /scaledResidualAdd: y must not overlap an input/,
    );
    assert.throws(
      () => addon.scaledResidualAddGrad(rows, ch, dy, c, a, dc, dc.subarray(0, rows)),
      /scaledResidualAddGrad: da must not overlap/,
    );
    // Through the unit on pact-cpu the fused kernel runs (forward and gradient).
    const k = unitCase(rng, [2, 5, 5, 3], 0.5);
    const info = onBackend(NATIVE, () =>
      tf.profile(() =>
        tf.tidy(() => {
          const { u: uu, a: aa, params } = tensors(k);
          return tf.grad((x: tf.Tensor) => maskedResidualUnit(x as tf.Tensor4D, params, aa).sum())(uu);
        }),
      ),
    );
    return info.then((p) => {
      for (const name of ['PactScaledResidualAdd', 'PactScaledResidualAddGrad']) {
        assert.ok(p.kernelNames.includes(name), `${name} not in ${p.kernelNames}`);
      }
    });
  });

  it('rejects bad shapes with an Error naming the argument', () => {
    const rng = freshRng();
    const c = unitCase(rng, [2, 4, 4, 3], 0.5);
    const { u, params } = tensors(c);
    assert.throws(
      () => maskedResidualUnit(u, params, tf.ones([2, 4, 5])),
      /maskedResidualUnit: activeMask must be float32 of shape \[2,4,4\] or \[2,4,4,1\] \(u's batch, height, width\), got float32 \[2,4/,
    );
    assert.throws(
      () => maskedResidualUnit(tf.zeros([4, 4, 3]) as unknown as tf.Tensor4D, params, tf.ones([2, 4, 4])),
      /maskedResidualUnit: u must be a float32 4-D tensor/,
    );
    assert.throws(
      () => maskedResidualUnit(tf.cast(u, 'int32') as tf.Tensor4D, params, tf.ones([2, 4, 4])),
      /maskedResidualUnit: u must be a float32 4-D tensor \[batch, height, width, channels\] with channels >= 1, got int32/,
    );
    assert.throws(
      () => maskedResidualUnit(u, undefined as never, tf.ones([2, 4, 4])),
      /maskedResidualUnit: params must be an object/,
    );
    assert.throws(
      () =>
        maskedResidualUnit(u, { ...params, conv1: tf.cast(params.conv1, 'int32') as tf.Tensor4D }, tf.ones([2, 4, 4])),
      /maskedResidualUnit: params.conv1 must be a float32 tensor of shape \[3,3,3,3\], got int32/,
    );
    for (const epsilon of [-1, 0, NaN, Infinity]) {
      assert.throws(
        () => maskedResidualUnit(u, params, tf.ones([2, 4, 4]), { epsilon }),
        /maskedResidualUnit: options.epsilon must be a positive finite number/,
        `epsilon ${epsilon}`,
      );
    }
    assert.throws(
      () => maskedResidualUnit(u, { ...params, conv2: tf.zeros([3, 3, 3, 4]) as tf.Tensor4D }, tf.ones([2, 4, 4])),
      /params.conv2 must be a float32 tensor of shape \[3,3,3,3\], got float32 \[3,3,3,4\]/,
    );
    // Evaluation's statistics are checked before any kernel sees them.
    const stats = () => ({ mean: tf.zeros([3]) as tf.Tensor1D, variance: tf.ones([3]) as tf.Tensor1D });
    assert.throws(
      () =>
        maskedResidualUnit(u, params, tf.ones([2, 4, 4]), {
          moving: { bn1: stats(), bn2: { ...stats(), variance: tf.ones([4]) as tf.Tensor1D } },
        }),
      /maskedResidualUnit: options.moving.bn2.variance must be a float32 tensor of shape \[3\], got float32 \[4\]/,
    );
    assert.throws(
      () => maskedResidualUnit(u, params, tf.ones([2, 4, 4]), { moving: { bn1: stats() } as never }),
      /maskedResidualUnit: options.moving.bn2.mean must be a float32 tensor of shape \[3\], got undefined/,
    );
  });
});
