/**
 * pact-cpu's reductions (Sum, Mean, Max, Min, Prod, ArgMax) against tfjs-backend-cpu on fresh random shapes and
 * axis sets (rank 0..5, negative axes, keepDims, size-1 dims), the native layouts (leading axes kept last, trailing
 * axes, middle axes, all axes, other patterns) above the parallel threshold, NaN/Inf semantics, gradients, and
 * bad input to the native functions.
 *
 * Tolerance (|a - e| <= atol + rtol*|e|, stated once): TOL for Sum, Mean and Prod (both accumulate in double, in a
 * different order; tfjs' Mean divides each element first); Max, Min and ArgMax must be exact.
 */
import { strict as assert } from 'assert';

import * as tf from '@tensorflow/tfjs';

import { nativeAddon, PACT_CPU, PactCpuBackend } from '../../src';
import { NATIVE, REFERENCE, requirePactCpu, tensorOn } from '../helpers/backends';
import { expectClose, Tolerance } from '../helpers/compare';
import { freshRng, Rng } from '../helpers/random';

const TOL: Tolerance = { atol: 1e-6, rtol: 1e-6 };
const EXACT: Tolerance = { atol: 0, rtol: 0 };

const RANDOM_CASES = 50;

interface Result {
  values: Float32Array | Int32Array;
  shape: number[];
}

function runOn(backend: string, fn: () => tf.Tensor): Result {
  const previous = tf.getBackend();
  tf.setBackend(backend);
  try {
    return tf.tidy(() => {
      const out = fn();
      const values = out.dataSync();
      return {
        values: values instanceof Int32Array ? Int32Array.from(values) : Float32Array.from(values),
        shape: out.shape,
      };
    });
  } finally {
    tf.setBackend(previous);
  }
}

function pactBackend(): PactCpuBackend {
  return tf.findBackend(PACT_CPU) as PactCpuBackend;
}

/** Runs fn on both backends: same shape and dtype, values within tol, no fallback counted for `kernel`. */
function compareBackends(kernel: string, fn: () => tf.Tensor, tol: Tolerance, label: string): void {
  const expected = runOn(REFERENCE, fn);
  pactBackend().resetFallbackCounts();
  const actual = runOn(NATIVE, fn);
  assert.equal(pactBackend().fallbackCounts()[kernel], undefined, `${label}: ${kernel} fell back`);
  assert.deepEqual(actual.shape, expected.shape, `${label}: shape`);
  assert.equal(actual.values.constructor, expected.values.constructor, `${label}: dtype`);
  expectClose(actual.values, expected.values, tol, label);
}

/** Runs fn on both backends and requires identical values, NaN for NaN (exact kernels on special values). */
function compareExactly(fn: () => tf.Tensor, label: string): void {
  const expected = runOn(REFERENCE, fn).values;
  const actual = runOn(NATIVE, fn).values;
  assert.equal(actual.length, expected.length, `${label}: length`);
  for (let i = 0; i < expected.length; ++i) {
    assert.ok(Object.is(actual[i], expected[i]), `${label}: element ${i} is ${actual[i]}, expected ${expected[i]}`);
  }
}

interface ReduceCase {
  kernel: string;
  op: (x: tf.Tensor, axis: number | number[] | undefined, keepDims: boolean) => tf.Tensor;
  tol: Tolerance;
  values: (rng: Rng, n: number) => Float32Array;
}

const normal = (rng: Rng, n: number): Float32Array => rng.normal(n);

const REDUCTIONS: ReduceCase[] = [
  { kernel: tf.Sum, op: tf.sum, tol: TOL, values: normal },
  { kernel: tf.Mean, op: tf.mean, tol: TOL, values: normal },
  { kernel: tf.Max, op: tf.max, tol: EXACT, values: normal },
  { kernel: tf.Min, op: tf.min, tol: EXACT, values: normal },
  // Factors near 1 with random signs keep products of 100k elements finite.
  {
    kernel: tf.Prod,
    op: tf.prod,
    tol: TOL,
    values: (rng, n) => rng.uniform(n, 0.9, 1.1).map((v) => (rng.next() < 0.5 ? -v : v)),
  },
];

function randomShape(rng: Rng, minRank: number, maxSize: number): number[] {
  for (;;) {
    const shape = Array.from({ length: rng.int(minRank, 5) }, () => rng.pick([1, 2, 3, 5, 7, 8, 11, 16]));
    if (tf.util.sizeFromShape(shape) <= maxSize) return shape;
  }
}

/** A random axis argument: undefined (all), one axis, or a list, with negative axes sometimes. */
function randomAxes(rng: Rng, rank: number): number | number[] | undefined {
  if (rank === 0 || rng.next() < 0.1) return undefined;
  const axes = Array.from({ length: rank }, (_, i) => i).filter(() => rng.next() < 0.5);
  const signed = axes.map((a) => (rng.next() < 0.3 ? a - rank : a));
  return signed.length === 1 && rng.next() < 0.5 ? signed[0] : signed;
}

/** The native layouts, above the parallel threshold (65536 elements), plus the general path. */
const NAMED: Array<[number[], number[]]> = [
  [
    [128, 8, 8, 16],
    [0, 1, 2],
  ],
  [[70_001], [0]],
  [[300, 257], [1]],
  [[257, 300], [0]],
  [[5, 3000, 7], [1]],
  [[2, 9000, 5], [1]],
  [
    [6, 50, 7, 40],
    [0, 2],
  ],
  [
    [4, 5, 6, 7],
    [1, 3],
  ],
  [
    [4, 1, 6, 1],
    [1, 3],
  ],
  [[3, 4, 5], []],
  [[0, 4], [0]],
];

describe('pact-cpu reductions', () => {
  before(requirePactCpu);

  for (const c of REDUCTIONS) {
    describe(c.kernel, () => {
      it(`matches tfjs-backend-cpu on ${RANDOM_CASES} random shapes and axis sets, with and without keepDims`, () => {
        const rng = freshRng();
        for (let k = 0; k < RANDOM_CASES; ++k) {
          const shape = randomShape(rng, 0, 5000);
          const axes = randomAxes(rng, shape.length);
          const keepDims = rng.next() < 0.5;
          const x = c.values(rng, tf.util.sizeFromShape(shape));
          const label = `${c.kernel} [${shape}] axes ${JSON.stringify(axes)} keepDims ${keepDims} seed ${rng.seed}`;
          compareBackends(c.kernel, () => c.op(tensorOn(x, shape), axes, keepDims), c.tol, label);
        }
      });

      it('matches tfjs-backend-cpu on every native layout above the parallel threshold', () => {
        const rng = freshRng();
        for (const [shape, axes] of NAMED) {
          const x = c.values(rng, tf.util.sizeFromShape(shape));
          const label = `${c.kernel} [${shape}] axes [${axes}] seed ${rng.seed}`;
          if (shape.includes(0)) {
            compareBackends(c.kernel, () => c.op(tensorOn(x, shape), [1], true), c.tol, label);
          } else {
            compareBackends(c.kernel, () => c.op(tensorOn(x, shape), axes, false), c.tol, label);
          }
        }
      });
    });
  }

  describe(tf.ArgMax, () => {
    it(`matches tfjs-backend-cpu on ${RANDOM_CASES} random shapes and axes, ties included`, () => {
      const rng = freshRng();
      for (let k = 0; k < RANDOM_CASES; ++k) {
        const shape = randomShape(rng, 1, 5000);
        const axis = rng.int(-shape.length, shape.length - 1);
        const size = tf.util.sizeFromShape(shape);
        const x = k % 2 === 0 ? rng.normal(size) : Float32Array.from({ length: size }, () => rng.int(0, 2));
        const label = `ArgMax [${shape}] axis ${axis} seed ${rng.seed}`;
        compareBackends(tf.ArgMax, () => tf.argMax(tensorOn(x, shape), axis), EXACT, label);
      }
      const large: Array<[number[], number]> = [
        [[70_001], 0],
        [[3000, 10], 1],
        [[10, 9000], 0],
        [[40, 60, 30], 1],
      ];
      for (const [shape, axis] of large) {
        const x = rng.normal(tf.util.sizeFromShape(shape));
        compareBackends(tf.ArgMax, () => tf.argMax(tensorOn(x, shape), axis), EXACT, `ArgMax [${shape}] ${axis}`);
      }
    });
  });

  it('follows tfjs on NaN and infinities (Max/Min: any NaN wins; ArgMax: a NaN wins only first)', () => {
    const rows = [
      [NaN, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, NaN],
      [1, 2, 3, NaN, 5, 6, 7, 8, 9, 10, 11],
      [-Infinity, -Infinity, -Infinity, -Infinity, -Infinity, -Infinity, -Infinity, -Infinity, -Infinity, -1, 0],
      [Infinity, 1, 2, 3, 4, 5, 6, 7, 8, 9, -Infinity],
      [0, -0, 0, -0, 0, -0, 0, -0, 0, -0, 0],
    ];
    const x = Float32Array.from(rows.flat());
    const t = (): tf.Tensor => tensorOn(x, [rows.length, rows[0].length]);
    for (const axis of [0, 1]) {
      compareExactly(() => tf.max(t(), axis), `Max axis ${axis}`);
      compareExactly(() => tf.min(t(), axis), `Min axis ${axis}`);
      compareExactly(() => tf.argMax(t(), axis), `ArgMax axis ${axis}`);
      compareExactly(() => tf.sum(t(), axis), `Sum axis ${axis}`);
      compareExactly(() => tf.prod(t(), axis), `Prod axis ${axis}`);
    }
  });

  it('falls back, counted, for int32 input and for a reduction over an empty axis', () => {
    pactBackend().resetFallbackCounts();
    const ints = runOn(NATIVE, () => tf.sum(tf.tensor([1, 2, 3, 4], [2, 2], 'int32'), 0));
    assert.deepEqual(Array.from(ints.values), [4, 6]);
    const empty = runOn(NATIVE, () => tf.max(tf.zeros([3, 0]), 1));
    assert.equal(empty.values.length, 3);
    assert.deepEqual(pactBackend().fallbackCounts(), { [tf.Sum]: 1, [tf.Max]: 1 });
  });

  it('gives the same gradients as tfjs-backend-cpu for an expression of reductions (tf.grads)', () => {
    const rng = freshRng();
    const shape = [4, 6, 5, 8];
    const xv = rng.normal(tf.util.sizeFromShape(shape));
    const gv = rng.uniform(8, 0.5, 1.5);
    const f = (x: tf.Tensor, g: tf.Tensor): tf.Scalar => {
      const mean = tf.mean(x, [0, 1, 2], true);
      const centered = tf.sub(x, mean);
      const variance = tf.mean(tf.square(centered), [0, 1, 2]);
      const y = tf.mul(tf.div(centered, tf.sqrt(tf.add(variance, 1e-3))), g);
      return tf.add(tf.sum(tf.max(y, [1, 3])), tf.mean(tf.sum(tf.relu(y), -1)));
    };
    const grads = (): tf.Tensor[] => tf.grads(f)([tensorOn(xv, shape), tensorOn(gv, [8])]);
    const expected = runOn(REFERENCE, () => tf.concat(grads().map((t) => tf.reshape(t, [-1]))));
    pactBackend().resetFallbackCounts();
    const actual = runOn(NATIVE, () => tf.concat(grads().map((t) => tf.reshape(t, [-1]))));
    assert.deepEqual(pactBackend().fallbackCounts(), {});
    expectClose(actual.values, expected.values, { atol: 1e-5, rtol: 1e-4 }, `gradients seed ${rng.seed}`);
  });

  describe('native functions called directly', () => {
    const addon = (): NonNullable<ReturnType<typeof nativeAddon>> => nativeAddon()!;
    const f = (n: number): Float32Array => new Float32Array(n);

    it('reduce rejects wrong lengths, bad axes and unknown ops', () => {
      assert.throws(() => addon().reduce('sum', f(5), [2, 3], [0], f(3)), /reduce: x must have 6 elements, got 5/);
      assert.throws(() => addon().reduce('sum', f(6), [2, 3], [0], f(2)), /reduce: out must have 3 elements, got 2/);
      assert.throws(
        () => addon().reduce('sum', f(6), [2, 3], [2], f(1)),
        /axes must hold distinct axes in \[0, 2\), got 2/,
      );
      assert.throws(() => addon().reduce('sum', f(6), [2, 3], [1, 1], f(2)), /axes must be distinct, got 1 twice/);
      assert.throws(() => addon().reduce('sum', f(6), [2, 3], [-1], f(2)), /axes must contain non-negative integers/);
      assert.throws(() => addon().reduce('median', f(6), [2, 3], [0], f(3)), /reduce: unknown op 'median'/);
      assert.throws(() => addon().reduce('max', f(0), [3, 0], [1], f(3)), /reduce: cannot reduce over an empty axis/);
    });

    it('argMax rejects a bad axis, a wrong out type or length and an empty axis', () => {
      assert.throws(
        () => addon().argMax(f(6), [2, 3], 2, new Int32Array(2)),
        /argMax: axis must be an integer in \[0, 1\]/,
      );
      assert.throws(
        () => addon().argMax(f(6), [2, 3], 1, f(2) as unknown as Int32Array),
        /argMax: out must be an Int32Array/,
      );
      assert.throws(
        () => addon().argMax(f(6), [2, 3], 1, new Int32Array(3)),
        /argMax: out must have 2 elements, got 3/,
      );
      assert.throws(
        () => addon().argMax(f(0), [2, 0], 1, new Int32Array(2)),
        /argMax: cannot reduce over an empty axis/,
      );
      assert.throws(() => addon().argMax(f(1), [], 0, new Int32Array(1)), /argMax: shape must have rank >= 1/);
    });
  });
});
