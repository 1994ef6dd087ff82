/**
 * pact-cpu's elementwise kernels against tfjs-backend-cpu on fresh random shapes and values (every broadcasting
 * pattern, size-1 dims, odd sizes, cases above the parallel threshold), NaN/Inf/signed-zero semantics, the
 * gradients of an expression built from them, and bad input to the native functions.
 *
 * Tolerance (|a - e| <= atol + rtol*|e|, stated once): EXACT for ops that are correctly rounded in float, as
 * tfjs' double-then-round is (+ - * /, max, min, sqrt, rsqrt, squaredDifference, relu..., computed in double
 * where tfjs' result depends on it); LIBM for exp, log, tanh, sigmoid, elu, softplus and pow, where float
 * libm may differ from V8's double functions by an ulp or two (atol covers results that underflow in float).
 * Non-finite and zero results must match exactly (NaN, the sign of infinities and zeros).
 */
import { strict as assert } from 'assert';

import * as tf from '@tensorflow/tfjs';

import { nativeAddon, PACT_CPU, PactCpuBackend } from '../../src';
import { NATIVE, onBackend, REFERENCE, requirePactCpu, tensorOn } from '../helpers/backends';
import { expectClose, Tolerance } from '../helpers/compare';
import { freshRng, Rng } from '../helpers/random';

const EXACT: Tolerance = { atol: 0, rtol: 0 };
const LIBM: Tolerance = { atol: 1e-7, rtol: 1e-6 };

const RANDOM_CASES = 50;
/** Above 2 * the kernels' grain (32768 elements), so two threads run (the named large layouts are too). */
const LARGE = 70_000;

/** expectClose, after requiring that non-finite and zero expected values are matched exactly (Object.is). */
function expectMatch(actual: Float32Array, expected: Float32Array, tol: Tolerance, label: string): void {
  assert.equal(actual.length, expected.length, `${label}: length`);
  const a = Float32Array.from(actual);
  const e = Float32Array.from(expected);
  for (let i = 0; i < e.length; ++i) {
    if (!Number.isFinite(e[i]) || e[i] === 0 || !Number.isFinite(a[i])) {
      const exactZeroOk = tol.atol > 0 && e[i] === 0 && Number.isFinite(a[i]);
      assert.ok(Object.is(a[i], e[i]) || exactZeroOk, `${label}: element ${i} is ${a[i]}, expected ${e[i]}`);
      a[i] = 0;
      e[i] = 0;
    }
  }
  expectClose(a, e, tol, label);
}

function pactBackend(): PactCpuBackend {
  return tf.findBackend(PACT_CPU) as PactCpuBackend;
}

/** Runs fn on both backends and compares; no fallback may be counted for `kernel` on pact-cpu. */
function compareBackends(kernel: string, fn: () => tf.Tensor | tf.Tensor[], tol: Tolerance, label: string): void {
  const expected = onBackend(REFERENCE, fn);
  pactBackend().resetFallbackCounts();
  const actual = onBackend(NATIVE, fn);
  assert.equal(pactBackend().fallbackCounts()[kernel], undefined, `${label}: ${kernel} fell back`);
  assert.equal(actual.length, expected.length);
  actual.forEach((a, i) => expectMatch(a, expected[i], tol, `${label} output ${i}`));
}

const shapeStr = (s: number[]): string => `[${s.join(',')}]`;

/** A random output shape of rank 0..5 with size-1 and odd dims, and two operand shapes broadcasting to it. */
function randomBroadcastPair(rng: Rng, maxSize: number): [number[], number[]] {
  for (;;) {
    const rank = rng.int(0, 5);
    const out = Array.from({ length: rank }, () => rng.pick([1, 1, 2, 3, 4, 5, 7, 8, 13, 16]));
    if (tf.util.sizeFromShape(out) > maxSize) continue;
    const a: number[] = [];
    const b: number[] = [];
    for (const d of out) {
      const pattern = rng.int(0, 3); // 0, 3: both full; 1: a broadcasts; 2: b broadcasts
      a.push(pattern === 1 ? 1 : d);
      b.push(pattern === 2 ? 1 : d);
    }
    const dropA = rng.next() < 0.3 ? rng.int(0, rank) : 0; // leading dims absent (rank 0 = scalar operand)
    const dropB = dropA === 0 && rng.next() < 0.3 ? rng.int(0, rank) : 0;
    return [a.slice(dropA), b.slice(dropB)];
  }
}

/** Named layouts that must each be right: the fast paths and the strided path, small and above the threshold. */
const NAMED_PAIRS: Array<[number[], number[]]> = [
  [
    [2, 3, 4, 5],
    [2, 3, 4, 5],
  ],
  [[3, 5], []],
  [[], [4, 7]],
  [[2, 4, 4, 16], [16]],
  [[16], [2, 4, 4, 16]],
  [
    [2, 4, 4, 16],
    [1, 1, 1, 16],
  ],
  [
    [3, 1, 5],
    [1, 4, 1],
  ],
  [
    [4, 1],
    [1, 5],
  ],
  [
    [2, 3, 1, 5],
    [3, 4, 1],
  ],
  [
    [6, 1, 2, 1, 3],
    [1, 5, 1, 4, 1],
  ],
  [[1, 1, 1], [1]],
  [[0, 3], [3]],
  [[8, 16, 16, 36], [36]],
  [
    [8, 16, 16, 36],
    [8, 16, 16, 36],
  ],
  [[LARGE + 1], []],
  [
    [3, 1, 12_001],
    [1, 2, 12_001],
  ],
  [
    [22_001, 1],
    [1, 3],
  ],
  [
    [2, 128, 300],
    [2, 128, 1],
  ],
];

interface BinaryCase {
  kernel: string;
  op: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor;
  tol: Tolerance;
  values: (rng: Rng, n: number, operand: 0 | 1) => Float32Array;
}

const normal = (rng: Rng, n: number): Float32Array => rng.normal(n);

const BINARY: BinaryCase[] = [
  { kernel: tf.Add, op: tf.add, tol: EXACT, values: normal },
  { kernel: tf.Sub, op: tf.sub, tol: EXACT, values: normal },
  { kernel: tf.Multiply, op: tf.mul, tol: EXACT, values: normal },
  { kernel: tf.RealDiv, op: tf.div, tol: EXACT, values: normal },
  { kernel: tf.Maximum, op: tf.maximum, tol: EXACT, values: normal },
  { kernel: tf.Minimum, op: tf.minimum, tol: EXACT, values: normal },
  { kernel: tf.SquaredDifference, op: tf.squaredDifference, tol: EXACT, values: normal },
  {
    kernel: tf.Pow,
    op: tf.pow,
    tol: LIBM,
    values: (rng, n, operand) => (operand === 0 ? rng.uniform(n, 0.05, 3) : rng.uniform(n, -3, 3)),
  },
];

interface UnaryCase {
  kernel: string;
  op: (x: tf.Tensor, rng: Rng) => tf.Tensor;
  tol: Tolerance;
  positive?: boolean;
}

const UNARY: UnaryCase[] = [
  { kernel: tf.Relu, op: (x) => tf.relu(x), tol: EXACT },
  { kernel: tf.Relu6, op: (x) => tf.relu6(x), tol: EXACT },
  { kernel: tf.Neg, op: (x) => tf.neg(x), tol: EXACT },
  { kernel: tf.Square, op: (x) => tf.square(x), tol: EXACT },
  { kernel: tf.Sqrt, op: (x) => tf.sqrt(x), tol: EXACT, positive: true },
  { kernel: tf.Rsqrt, op: (x) => tf.rsqrt(x), tol: EXACT, positive: true },
  { kernel: tf.Exp, op: (x) => tf.exp(x), tol: LIBM },
  { kernel: tf.Log, op: (x) => tf.log(x), tol: LIBM, positive: true },
  { kernel: tf.Sigmoid, op: (x) => tf.sigmoid(x), tol: LIBM },
  { kernel: tf.Tanh, op: (x) => tf.tanh(x), tol: LIBM },
  { kernel: tf.Abs, op: (x) => tf.abs(x), tol: EXACT },
  { kernel: tf.Reciprocal, op: (x) => tf.reciprocal(x), tol: EXACT },
  { kernel: tf.Step, op: (x, rng) => tf.step(x, 2 * rng.next() - 1), tol: EXACT },
  { kernel: tf.LeakyRelu, op: (x, rng) => tf.leakyRelu(x, rng.next()), tol: EXACT },
  { kernel: tf.Elu, op: (x) => tf.elu(x), tol: LIBM },
  {
    kernel: tf.ClipByValue,
    op: (x, rng) => tf.clipByValue(x, -0.1 - 3 * rng.next(), 0.1 + 3 * rng.next()),
    tol: EXACT,
  },
  { kernel: tf.Softplus, op: (x) => tf.softplus(x), tol: LIBM },
];

function randomShape(rng: Rng, maxSize: number): number[] {
  for (;;) {
    const shape = Array.from({ length: rng.int(0, 5) }, () => rng.pick([1, 2, 3, 5, 7, 8, 11, 16]));
    if (tf.util.sizeFromShape(shape) <= maxSize) return shape;
  }
}

const SPECIALS = [NaN, Infinity, -Infinity, 0, -0, 1, -1, 0.5, -0.5, 6, 7, -7, 1e-30, -1e-30, 100, -100, 3e38, -3e38];

describe('pact-cpu elementwise kernels', () => {
  before(requirePactCpu);

  for (const c of BINARY) {
    describe(c.kernel, () => {
      it(`matches tfjs-backend-cpu on ${RANDOM_CASES} random broadcast shapes and the named layouts`, () => {
        const rng = freshRng();
        const pairs = [...Array.from({ length: RANDOM_CASES }, () => randomBroadcastPair(rng, 4000)), ...NAMED_PAIRS];
        for (const [aShape, bShape] of pairs) {
          const a = c.values(rng, tf.util.sizeFromShape(aShape), 0);
          const b = c.values(rng, tf.util.sizeFromShape(bShape), 1);
          const label = `${c.kernel} ${shapeStr(aShape)} op ${shapeStr(bShape)} seed ${rng.seed}`;
          compareBackends(c.kernel, () => c.op(tensorOn(a, aShape), tensorOn(b, bShape)), c.tol, label);
        }
      });

      it('matches tfjs on NaN, infinities and signed zeros in either operand', () => {
        const n = SPECIALS.length;
        const a = new Float32Array(n * n);
        const b = new Float32Array(n * n);
        SPECIALS.forEach((x, i) => SPECIALS.forEach((y, j) => ((a[i * n + j] = x), (b[i * n + j] = y))));
        compareBackends(c.kernel, () => c.op(tensorOn(a, [n, n]), tensorOn(b, [n, n])), c.tol, `${c.kernel} specials`);
      });
    });
  }

  for (const c of UNARY) {
    describe(c.kernel, () => {
      it(`matches tfjs-backend-cpu on ${RANDOM_CASES} random shapes, two above the parallel threshold`, () => {
        const rng = freshRng();
        const shapes = [
          ...Array.from({ length: RANDOM_CASES }, () => randomShape(rng, 5000)),
          [LARGE + 3],
          [7, 128, 128],
        ];
        for (const shape of shapes) {
          const size = tf.util.sizeFromShape(shape);
          const x = c.positive ? rng.uniform(size, 0.01, 10) : rng.normal(size).map((v) => 4 * v);
          const attrSeed = rng.int(1, 2 ** 30);
          const label = `${c.kernel} ${shapeStr(shape)} seed ${rng.seed}`;
          // The attributes are drawn inside fn from the same seed, identically on both backends.
          compareBackends(c.kernel, () => c.op(tensorOn(x, shape), new Rng(attrSeed)), c.tol, label);
        }
      });

      it('matches tfjs on NaN, infinities, signed zeros and extreme values', () => {
        const x = Float32Array.from(SPECIALS);
        compareBackends(c.kernel, () => c.op(tensorOn(x, [x.length]), new Rng(7)), c.tol, `${c.kernel} specials`);
      });
    });
  }

  describe(tf.AddN, () => {
    it(`matches tfjs-backend-cpu on ${RANDOM_CASES} random shapes and input counts`, () => {
      const rng = freshRng();
      const shapes = [...Array.from({ length: RANDOM_CASES }, () => randomShape(rng, 3000)), [LARGE + 5]];
      for (const shape of shapes) {
        const size = tf.util.sizeFromShape(shape);
        const inputs = Array.from({ length: rng.int(1, 5) }, () => rng.normal(size));
        inputs[0][0] = -0; // tfjs' sum starts at +0
        const label = `AddN ${inputs.length} x ${shapeStr(shape)} seed ${rng.seed}`;
        compareBackends(tf.AddN, () => tf.addN(inputs.map((v) => tensorOn(v, shape))), EXACT, label);
      }
    });
  });

  it('falls back, counted, for int32 and keeps tfjs results', () => {
    pactBackend().resetFallbackCounts();
    const out = onBackend(NATIVE, () => tf.add(tf.tensor([1, 2, 3], [3], 'int32'), tf.tensor([4], [1], 'int32')));
    assert.deepEqual(Array.from(out[0]), [5, 6, 7]);
    assert.equal(pactBackend().fallbackCounts()[tf.Add], 1);
  });

  it('takes float32 tensors that tfjs-backend-cpu cast from bool or int32 (their storage is not a Float32Array)', () => {
    const rng = freshRng();
    const x = rng.normal(300);
    const fn = (): tf.Tensor[] => {
      const t = tensorOn(x, [300]);
      const mask = tf.cast(tf.greater(t, 0), 'float32');
      const ints = tf.cast(
        tf.tensor(
          Array.from({ length: 300 }, (_, i) => i - 150),
          [300],
          'int32',
        ),
        'float32',
      );
      return [tf.mul(t, mask), tf.add(ints, t), tf.sum(mask), tf.relu(ints)];
    };
    compareBackends(tf.Multiply, fn, EXACT, `cast inputs seed ${rng.seed}`);
    assert.deepEqual(pactBackend().fallbackCounts(), {});
  });

  it('gives the same gradients as tfjs-backend-cpu for an expression of these ops (tf.grads)', () => {
    const rng = freshRng();
    const shape = [3, 5, 4, 6];
    const xv = rng.normal(tf.util.sizeFromShape(shape));
    const wv = rng.uniform(6, 0.5, 1.5);
    const bv = rng.normal(6);
    const f = (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor): tf.Tensor => {
      const h = tf.relu(tf.add(tf.mul(x, w), tf.reshape(b, [1, 1, 1, 6])));
      const s = tf.sub(tf.sigmoid(h), tf.div(tf.tanh(x), tf.add(tf.square(w), 1)));
      const t = tf.maximum(tf.exp(tf.neg(tf.abs(s))), tf.sqrt(tf.add(tf.square(h), 0.5)));
      return tf.sum(tf.addN([t, tf.squaredDifference(t, s), tf.leakyRelu(s, 0.1)]));
    };
    const grads = (): tf.Tensor[] => tf.grads(f)([tensorOn(xv, shape), tensorOn(wv, [6]), tensorOn(bv, [6])]);
    const expected = onBackend(REFERENCE, grads);
    pactBackend().resetFallbackCounts();
    const actual = onBackend(NATIVE, grads);
    assert.deepEqual(pactBackend().fallbackCounts(), {});
    actual.forEach((a, i) => expectClose(a, expected[i], { atol: 1e-5, rtol: 1e-5 }, `gradient ${i} seed ${rng.seed}`));
  });

  it('matches a central finite difference of a smooth expression on pact-cpu', () => {
    const rng = freshRng();
    const xv = rng.normal(12);
    const f = (x: tf.Tensor): tf.Scalar =>
      tf.sum(tf.mul(tf.sigmoid(x), tf.add(tf.exp(tf.div(x, 3)), tf.pow(tf.add(tf.square(x), 1), 0.5))));
    const analytic = onBackend(NATIVE, () => tf.grad(f)(tensorOn(xv, [12])))[0];
    const eps = 1e-2;
    for (let i = 0; i < xv.length; ++i) {
      const at = (d: number): number => {
        const v = Float32Array.from(xv);
        v[i] += d;
        return onBackend(NATIVE, () => f(tensorOn(v, [12])))[0][0];
      };
      const numeric = (at(eps) - at(-eps)) / (2 * eps);
      expectClose([analytic[i]], [numeric], { atol: 2e-3, rtol: 2e-3 }, `d/dx[${i}] seed ${rng.seed}`);
    }
  });

  describe('native functions called directly', () => {
    const addon = (): NonNullable<ReturnType<typeof nativeAddon>> => nativeAddon()!;
    const f = (n: number): Float32Array => new Float32Array(n);

    it('binaryOp rejects wrong lengths, incompatible shapes, unknown ops and wrong types', () => {
      assert.throws(
        () => addon().binaryOp('add', f(5), [2, 3], f(3), [3], f(6)),
        /binaryOp: a must have 6 elements, got 5/,
      );
      assert.throws(
        () => addon().binaryOp('add', f(6), [2, 3], f(2), [3], f(6)),
        /binaryOp: b must have 3 elements, got 2/,
      );
      assert.throws(
        () => addon().binaryOp('add', f(6), [2, 3], f(2), [2], f(6)),
        /shapes \[2,3\] and \[2\] cannot be broadcast/,
      );
      assert.throws(
        () => addon().binaryOp('add', f(6), [2, 3], f(3), [3], f(5)),
        /binaryOp: out must have 6 elements, got 5/,
      );
      assert.throws(() => addon().binaryOp('atan2', f(1), [], f(1), [], f(1)), /binaryOp: unknown op 'atan2'/);
      assert.throws(
        () => addon().binaryOp('add', new Float64Array(1) as unknown as Float32Array, [], f(1), [], f(1)),
        /binaryOp: a must be a Float32Array/,
      );
      assert.throws(
        () => addon().binaryOp('add', f(1), [1, 1, 1, 1, 1, 1, 1, 1, 1], f(1), [], f(1)),
        /aShape must have at most 8 entries/,
      );
      assert.throws(
        () => addon().binaryOp('add', f(1), [-1], f(1), [], f(1)),
        /aShape must contain non-negative integers/,
      );
    });

    it('unaryOp rejects a wrong out length, an unknown op and missing attributes', () => {
      assert.throws(() => addon().unaryOp('relu', f(4), f(3), 0, 0), /unaryOp: out must have 4 elements, got 3/);
      assert.throws(() => addon().unaryOp('gelu', f(4), f(4), 0, 0), /unaryOp: unknown op 'gelu'/);
      assert.throws(
        () => (addon().unaryOp as (...a: unknown[]) => void)('step', f(4), f(4)),
        /unaryOp: p0 must be a number/,
      );
    });

    it('addN rejects an empty list and inputs of the wrong length or type', () => {
      assert.throws(() => addon().addN([], f(3)), /addN: inputs must hold at least one array/);
      assert.throws(() => addon().addN([f(3), f(2)], f(3)), /addN: inputs\[1\] must have 3 elements \(out's\), got 2/);
      assert.throws(
        () => addon().addN([f(3), new Int32Array(3) as unknown as Float32Array], f(3)),
        /addN: inputs\[1\] must be a Float32Array/,
      );
    });
  });
});
