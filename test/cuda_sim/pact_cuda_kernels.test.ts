/**
 * pact-cuda's comparison, typed-reduction, arg-reduction, data-movement, one-hot, pooling, AddN, Softplus and
 * inference batch-norm kernels on the simulated device, with fallbacks as errors (PACT_STRICT_NATIVE=1), against
 * tfjs-backend-cpu on fresh random inputs: float32, int32 and bool tensors, broadcasting, every axis, ties
 * (integer-valued inputs) for the max pooling gradient and arg-reductions; bad calls of the new bindings.
 */
import { strict as assert } from 'assert';

import * as tf from '@tensorflow/tfjs';

import { PACT_CUDA } from '../../src';
import { CUDA_COMPARE_OPS } from '../../src/backends/pact_cuda/layout_kernels';
import { batchNormReluTrain, batchNormTrain, PACT_BATCH_NORM_TRAIN } from '../../src/ops/batch_norm_train';
import {
  maskedBatchNormRelu,
  maskedResidualUnit,
  maskedResidualUnitWithStats,
  PACT_MASKED_BATCH_NORM_RELU,
  PACT_SCALED_RESIDUAL_ADD,
  scaledResidualAdd,
} from '../../src/ops/masked_residual_unit';
import { sgdMomentumComposite, sgdMomentumStep } from '../../src/ops/sgd_momentum';
import { expectClose } from '../helpers/compare';
import { freshRng, type Rng } from '../helpers/random';
import { usePactCudaSim, valuesOn } from './on_backend';

const EXACT = { atol: 0, rtol: 0 };
const TOL = { atol: 1e-6, rtol: 1e-5 };

function randomShape(rng: Rng, rank: number, hi = 5): number[] {
  return Array.from({ length: rank }, () => rng.int(1, hi));
}

/** Small integers (ties are likely) as float32 or int32, or 0/1 as bool. */
function tensorOf(rng: Rng, shape: number[], dtype: 'float32' | 'int32' | 'bool'): () => tf.Tensor {
  const n = tf.util.sizeFromShape(shape);
  const values = Array.from({ length: n }, () => (dtype === 'bool' ? rng.int(0, 1) : rng.int(-3, 3)));
  return () => tf.tensor(values, shape, dtype);
}

/** Checks `run` on pact-cuda against tfjs-backend-cpu, strict. */
function same(run: () => tf.Tensor, label: string, tol = EXACT): void {
  const expected = valuesOn('cpu', run);
  process.env.PACT_STRICT_NATIVE = '1';
  try {
    const actual = valuesOn(PACT_CUDA, run);
    assert.equal(actual.constructor, expected.constructor, `${label}: dtype`);
    expectClose(actual, expected, tol, label);
  } finally {
    delete process.env.PACT_STRICT_NATIVE;
  }
}

describe('pact-cuda kernels beyond element-wise float32 (simulated device)', function () {
  this.timeout(300000);
  const backend = usePactCudaSim(this);

  it('compares float32, int32 and bool tensors with broadcasting (NaN compares false), logical ops on bools', () => {
    const rng = freshRng();
    for (let trial = 0; trial < 6; ++trial) {
      const shape = randomShape(rng, rng.int(0, 4));
      const partner = shape.slice(rng.int(0, shape.length)).map((d) => (rng.next() < 0.4 ? 1 : d));
      for (const dtype of ['float32', 'int32', 'bool'] as const) {
        const [a, b] = [tensorOf(rng, shape, dtype), tensorOf(rng, partner, dtype)];
        for (const name of CUDA_COMPARE_OPS) {
          if ((name === tf.LogicalAnd || name === tf.LogicalOr) && dtype !== 'bool') continue;
          same(() => tf.engine().runKernel(name, { a: a(), b: b() }) as tf.Tensor, `seed ${rng.seed} ${name} ${dtype}`);
        }
      }
    }
    const withNaN = () => tf.tensor1d([NaN, 1, NaN]);
    for (const name of CUDA_COMPARE_OPS.slice(0, 6)) {
      same(() => tf.engine().runKernel(name, { a: withNaN(), b: tf.tensor1d([NaN, NaN, 2]) }) as tf.Tensor, name);
    }
  });

  it('reduces int32 and bool tensors and over any axis set (through a device transpose)', () => {
    const rng = freshRng();
    for (let trial = 0; trial < 6; ++trial) {
      const shape = randomShape(rng, rng.int(1, 5));
      const axes = shape.map((_, i) => i).filter(() => rng.next() < 0.5);
      const keepDims = rng.next() < 0.5;
      const label = `seed ${rng.seed} [${shape}] axes [${axes}] keepDims ${keepDims}`;
      const f = tensorOf(rng, shape, 'float32');
      const i = tensorOf(rng, shape, 'int32');
      const b = tensorOf(rng, shape, 'bool');
      for (const op of [tf.sum, tf.max, tf.min]) {
        same(() => op(f(), axes, keepDims), `${label} ${op.name} float32`, TOL);
        same(() => op(i(), axes, keepDims), `${label} ${op.name} int32`);
      }
      same(() => tf.mean(f(), axes, keepDims), `${label} mean`, TOL);
      same(() => tf.sum(b(), axes, keepDims), `${label} sum of bool`);
      same(() => tf.any(b(), axes, keepDims), `${label} any`);
      same(() => tf.all(b(), axes, keepDims), `${label} all`);
    }
  });

  it('reduces long axes in parallel spans as tfjs-backend-cpu (per-channel and full sums, NaN, int32 wrap-around)', () => {
    // Few outputs and at least 512 reduced elements take the split path (native/cuda/elementwise.cu); sizes kept
    // small, as the simulation runs every CUDA thread of every block.
    const rng = freshRng();
    for (let trial = 0; trial < 3; ++trial) {
      const shape = [rng.int(1, 2), rng.int(512, 1000), [1, 3, 16][trial]];
      const n = tf.util.sizeFromShape(shape);
      const floats = rng.normal(n);
      if (trial === 1) floats[rng.int(0, n - 1)] = NaN;
      const ints = Array.from({ length: n }, () => rng.int(-(2 ** 30), 2 ** 30));
      const bools = Array.from({ length: n }, () => (rng.next() < 0.999 ? 1 : 0));
      const f = () => tf.tensor(floats, shape);
      const i = () => tf.tensor(ints, shape, 'int32');
      const b = () => tf.tensor(bools, shape, 'bool');
      for (const axes of [[1], [0, 1, 2]]) {
        const label = `seed ${rng.seed} [${shape}] axes [${axes}]${trial === 1 ? ' with a NaN' : ''}`;
        same(() => tf.sum(f(), axes), `${label} sum float32`, TOL);
        same(() => tf.mean(f(), axes), `${label} mean`, TOL);
        same(() => tf.max(f(), axes), `${label} max float32`);
        same(() => tf.sum(i(), axes), `${label} sum int32`);
        same(() => tf.min(i(), axes), `${label} min int32`);
        same(() => tf.all(b(), axes), `${label} all`);
      }
    }
  });

  it('trains batch norm (with and without ReLU) on the device as the composite on tfjs-backend-cpu, gradients too', () => {
    // pact-cuda runs PactBatchNormTrain(Grad) (native/cuda/batch_norm.cu); tfjs-backend-cpu has no such kernel and
    // runs the composite of tfjs ops, autodiffed. Rows from one span to many, channels 3, 16 and 40 (two blocks of
    // lanes), a mean far from 0 (the moments are shifted), a loss that reads y, the mean and the variance.
    const rng = freshRng();
    for (const [rows, channels] of [
      [7, 3],
      [300, 16],
      [700, 40],
    ]) {
      const shape = [2, Math.ceil(rows / 2), channels];
      const n = tf.util.sizeFromShape(shape);
      const x = Float32Array.from(rng.normal(n), (v) => 3 + 2 * v);
      const [scale, offset, wy, wm, wv] = [channels, channels, n, channels, channels].map((k) => rng.normal(k));
      for (const relu of [false, true]) {
        const op = relu ? batchNormReluTrain : batchNormTrain;
        const run = () => {
          const f = (xt: tf.Tensor, s: tf.Tensor, o: tf.Tensor) => {
            const r = op(xt, s as tf.Tensor1D, o as tf.Tensor1D);
            return tf.addN([
              tf.sum(tf.mul(r.y, tf.tensor(wy, shape))),
              tf.sum(tf.mul(r.mean, tf.tensor1d(wm))),
              tf.sum(tf.mul(r.variance, tf.tensor1d(wv))),
            ]);
          };
          const inputs = [tf.tensor(x, shape), tf.tensor1d(scale), tf.tensor1d(offset)];
          const r = op(inputs[0], inputs[1] as tf.Tensor1D, inputs[2] as tf.Tensor1D);
          const grads = tf.grads(f)(inputs);
          return tf.concat([r.y, r.mean, r.variance, ...grads].map((t) => t.flatten()));
        };
        const label = `seed ${rng.seed} [${shape}] relu ${relu}`;
        expectClose(valuesOn(PACT_CUDA, run), valuesOn('cpu', run), { atol: 2e-4, rtol: 2e-4 }, label);
      }
    }
    assert.equal(backend().fallbackCounts()[PACT_BATCH_NORM_TRAIN], undefined);
  });

  it("differentiates Sum and Mean over any axes as tfjs-backend-cpu (pact-cuda's gradients broadcast on the device)", () => {
    const rng = freshRng();
    for (let trial = 0; trial < 6; ++trial) {
      const shape = randomShape(rng, rng.int(1, 4));
      const axes = shape.map((_, i) => i).filter(() => rng.next() < 0.5);
      const keepDims = rng.next() < 0.5;
      const x = rng.normal(tf.util.sizeFromShape(shape));
      for (const op of [tf.sum, tf.mean]) {
        const w = rng.normal(tf.util.sizeFromShape(op(tf.zeros(shape), axes, keepDims).shape));
        const run = () =>
          tf.grad((t: tf.Tensor) => tf.sum(tf.mul(op(t, axes, keepDims), tf.tensor(w, op(t, axes, keepDims).shape))))(
            tf.tensor(x, shape),
          );
        same(run, `seed ${rng.seed} ${op.name} [${shape}] axes [${axes}] keepDims ${keepDims}`, TOL);
      }
    }
  });

  it('runs the masked residual unit on the device as the composite on tfjs-backend-cpu: training, gradients, evaluation', () => {
    // pact-cuda runs PactMaskedBatchNormRelu(Grad, Inference) and PactScaledResidualAdd(Grad); tfjs-backend-cpu runs
    // the unit's composite. Masks: none, some and every position active; the statistics compared as values (they
    // carry no gradient: they feed the moving averages only).
    const rng = freshRng();
    const [b, h, w, c] = [2, 6, 5, 8];
    const param = (shape: number[], scale = 1) =>
      Float32Array.from(rng.normal(tf.util.sizeFromShape(shape)), (v) => v * scale);
    const values = {
      u: param([b, h, w, c]),
      conv1: param([3, 3, c, c], 0.3),
      conv2: param([3, 3, c, c], 0.3),
      scales: [param([c]), param([c]), param([c]), param([c])],
      weights: param([b, h, w, c]),
    };
    for (const fraction of [0, 0.3, 1]) {
      const mask = Float32Array.from({ length: b * h * w }, () => (rng.next() < fraction ? 1 : 0));
      const make = () => ({
        bn1: { scale: tf.tensor1d(values.scales[0]), offset: tf.tensor1d(values.scales[1]) },
        conv1: tf.tensor4d(values.conv1, [3, 3, c, c]),
        bn2: { scale: tf.tensor1d(values.scales[2]), offset: tf.tensor1d(values.scales[3]) },
        conv2: tf.tensor4d(values.conv2, [3, 3, c, c]),
      });
      const training = () => {
        const p = make();
        const u = tf.tensor4d(values.u, [b, h, w, c]);
        const loss = (x: tf.Tensor, s1: tf.Tensor, s2: tf.Tensor) => {
          const q = { ...p, bn1: { ...p.bn1, scale: s1 as tf.Tensor1D }, bn2: { ...p.bn2, scale: s2 as tf.Tensor1D } };
          const r = maskedResidualUnitWithStats(x as tf.Tensor4D, q, tf.tensor3d(mask, [b, h, w]));
          return tf.sum(tf.mul(r.y, tf.tensor4d(values.weights, [b, h, w, c])));
        };
        const r = maskedResidualUnitWithStats(u, p, tf.tensor3d(mask, [b, h, w]));
        // With no active position the scales do not reach y (tf.grads refuses them): u's gradient only.
        const xs = fraction === 0 ? [u] : [u, p.bn1.scale, p.bn2.scale];
        const grads = tf.grads((...t: tf.Tensor[]) => loss(t[0], t[1] ?? p.bn1.scale, t[2] ?? p.bn2.scale))(xs);
        return tf.concat(
          [r.y, r.bn1.mean, r.bn1.variance, r.bn2.mean, r.bn2.variance, ...grads].map((t) => t.flatten()),
        );
      };
      const evaluation = () => {
        const moving = {
          bn1: { mean: tf.tensor1d(values.scales[1]), variance: tf.abs(tf.tensor1d(values.scales[2])) as tf.Tensor1D },
          bn2: { mean: tf.tensor1d(values.scales[3]), variance: tf.abs(tf.tensor1d(values.scales[0])) as tf.Tensor1D },
        };
        return maskedResidualUnit(tf.tensor4d(values.u, [b, h, w, c]), make(), tf.tensor3d(mask, [b, h, w]), {
          moving,
        });
      };
      for (const [name, run] of [
        ['training', training],
        ['evaluation', evaluation],
      ] as const) {
        same(run, `seed ${rng.seed} ${name}, active fraction ${fraction}`, { atol: 2e-4, rtol: 2e-4 });
      }
    }
    // The kernels alone, where the unit cannot see them: dx at the inactive positions (0), and a's gradient.
    const x = () => tf.tensor4d(values.u, [b, h, w, c]);
    const set = Float32Array.from({ length: b * h * w }, () => (rng.next() < 0.5 ? 1 : 0));
    const count = set.reduce((n, v) => n + v, 0);
    const weights = () => tf.tensor4d(values.weights, [b, h, w, c]);
    same(
      () => {
        const f = (t: tf.Tensor, s: tf.Tensor, o: tf.Tensor) => {
          const params = { scale: s as tf.Tensor1D, offset: o as tf.Tensor1D };
          const r = maskedBatchNormRelu(t as tf.Tensor4D, params, tf.tensor3d(set, [b, h, w]), count, 1e-5, undefined);
          return tf.sum(tf.mul(r.y, weights()));
        };
        const grads = tf.grads(f)([x(), tf.tensor1d(values.scales[0]), tf.tensor1d(values.scales[1])]);
        return tf.concat(grads.map((t) => t.flatten()));
      },
      `seed ${rng.seed} masked batch norm + ReLU gradients`,
      { atol: 2e-4, rtol: 2e-4 },
    );
    same(
      () => {
        const f = (u: tf.Tensor, cc: tf.Tensor, a: tf.Tensor) =>
          tf.sum(tf.mul(scaledResidualAdd(u as tf.Tensor4D, cc as tf.Tensor4D, a as tf.Tensor3D), weights()));
        const grads = tf.grads(f)([x(), tf.tensor4d(values.weights, [b, h, w, c]), tf.tensor3d(set, [b, h, w])]);
        return tf.concat(grads.map((t) => t.flatten()));
      },
      `seed ${rng.seed} u + c·a gradients`,
      TOL,
    );
    for (const kernel of [PACT_MASKED_BATCH_NORM_RELU, PACT_SCALED_RESIDUAL_ADD]) {
      assert.ok(tf.getKernel(kernel, PACT_CUDA) !== undefined, `${kernel} is a pact-cuda kernel`);
    }
  });

  it('finds the first maximum and minimum along any axis (ties: the first index)', () => {
    const rng = freshRng();
    for (let trial = 0; trial < 6; ++trial) {
      const shape = randomShape(rng, rng.int(1, 4));
      const axis = rng.int(0, shape.length - 1);
      for (const dtype of ['float32', 'int32'] as const) {
        const x = tensorOf(rng, shape, dtype);
        same(() => tf.argMax(x(), axis), `seed ${rng.seed} argMax [${shape}] axis ${axis} ${dtype}`);
        same(() => tf.argMin(x(), axis), `seed ${rng.seed} argMin [${shape}] axis ${axis} ${dtype}`);
      }
    }
  });

  it('transposes, slices, concatenates, stacks, unstacks and tiles float32, int32 and bool tensors', () => {
    const rng = freshRng();
    for (let trial = 0; trial < 6; ++trial) {
      const rank = rng.int(1, 4);
      const shape = randomShape(rng, rank);
      const perm = shape.map((_, i) => i).sort(() => rng.next() - 0.5);
      const begin = shape.map((d) => rng.int(0, d - 1));
      const size = shape.map((d, i) => rng.int(0, d - begin[i]));
      const axis = rng.int(0, rank - 1);
      const reps = shape.map(() => rng.int(1, 3));
      const stackAxis = rng.int(0, rank);
      const label = `seed ${rng.seed} [${shape}]`;
      for (const dtype of ['float32', 'int32', 'bool'] as const) {
        const x = tensorOf(rng, shape, dtype);
        const other = tensorOf(
          rng,
          shape.map((d, i) => (i === axis ? rng.int(1, 3) : d)),
          dtype,
        );
        const y = tensorOf(rng, shape, dtype);
        same(() => tf.transpose(x(), perm), `${label} transpose [${perm}] ${dtype}`);
        same(() => tf.slice(x(), begin, size), `${label} slice ${begin} ${size} ${dtype}`);
        same(() => tf.concat([x(), other(), x()], axis), `${label} concat axis ${axis} ${dtype}`);
        same(() => tf.stack([x(), y()], stackAxis), `${label} stack axis ${stackAxis} ${dtype}`);
        same(() => tf.stack(tf.unstack(x(), axis), axis), `${label} unstack axis ${axis} ${dtype}`);
        same(() => tf.tile(x(), reps), `${label} tile [${reps}] ${dtype}`);
      }
    }
  });

  it('makes one-hot rows (float32 and int32, indices out of range give off rows)', () => {
    const rng = freshRng();
    const depth = rng.int(2, 6);
    const indices = Array.from({ length: rng.int(1, 12) }, () => rng.int(-1, depth));
    for (const dtype of ['float32', 'int32'] as const) {
      same(
        () => tf.oneHot(tf.tensor1d(indices, 'int32'), depth, 2, -1, dtype),
        `seed ${rng.seed} oneHot depth ${depth} ${dtype}`,
      );
    }
  });

  it('max- and average-pools, forward and backward, as tfjs-backend-cpu (same/valid, strides, ties)', () => {
    const rng = freshRng();
    for (let trial = 0; trial < 8; ++trial) {
      const [b, h, w, c] = [rng.int(1, 2), rng.int(2, 7), rng.int(2, 7), rng.int(1, 3)];
      const filter = [rng.int(1, Math.min(3, h)), rng.int(1, Math.min(3, w))] as [number, number];
      const strides = [rng.int(1, 2), rng.int(1, 2)] as [number, number];
      const pad = rng.pick(['same', 'valid'] as const);
      const x = tensorOf(rng, [b, h, w, c], 'float32');
      const label = `seed ${rng.seed} [${b},${h},${w},${c}] filter ${filter} strides ${strides} ${pad}`;
      for (const pool of [tf.maxPool, tf.avgPool]) {
        const probe = valuesOn('cpu', () => pool(x() as tf.Tensor4D, filter, strides, pad));
        const dy = rng.normal(probe.length);
        same(() => pool(x() as tf.Tensor4D, filter, strides, pad), `${label} ${pool.name}`, TOL);
        same(
          () => {
            const xs = x();
            const y = pool(xs as tf.Tensor4D, filter, strides, pad);
            return tf.grad((t: tf.Tensor) => pool(t as tf.Tensor4D, filter, strides, pad))(xs, tf.tensor(dy, y.shape));
          },
          `${label} ${pool.name} gradient`,
          TOL,
        );
      }
    }
  });

  it('adds n tensors, computes softplus and inference batch norm on the device', () => {
    const rng = freshRng();
    const shape = randomShape(rng, 3);
    const channels = shape[2];
    const xs = Array.from({ length: 4 }, () => rng.normal(tf.util.sizeFromShape(shape)));
    for (const n of [1, 2, 4]) {
      same(() => tf.addN(xs.slice(0, n).map((v) => tf.tensor(v, shape))), `seed ${rng.seed} addN of ${n}`, TOL);
    }
    const wide = Float32Array.from(rng.normal(64), (v) => v * 12);
    same(() => tf.softplus(tf.tensor1d(wide)), `seed ${rng.seed} softplus`, TOL);
    const [mean, variance, offset, scale] = [
      rng.normal(channels),
      rng.uniform(channels, 0.1, 2),
      rng.normal(channels),
      rng.normal(channels),
    ];
    const x = () => tf.tensor(xs[0], shape as [number, number, number]) as tf.Tensor3D;
    const v = (a: Float32Array) => tf.tensor1d(a);
    same(() => tf.batchNorm(x(), v(mean), v(variance), v(offset), v(scale), 1e-3), `seed ${rng.seed} batchNorm`, TOL);
    same(() => tf.batchNorm(x(), v(mean), v(variance), undefined, undefined, 1e-5), `seed ${rng.seed} bn plain`, TOL);
  });

  it('runs the fused SGD-momentum step as the ops of MomentumOptimizer on tfjs-backend-cpu, bit for bit', () => {
    const rng = freshRng();
    for (let trial = 0; trial < 4; ++trial) {
      const shape = randomShape(rng, rng.int(0, 3), 40);
      const n = tf.util.sizeFromShape(shape);
      const [v, a, g] = [rng.normal(n), rng.normal(n), rng.normal(n)];
      const attrs = { learningRate: rng.uniform(1, 1e-3, 0.5)[0], momentum: rng.uniform(1, 0, 0.99)[0] };
      for (const out of [0, 1]) {
        const expected = valuesOn(
          'cpu',
          () => sgdMomentumComposite(tf.tensor(v, shape), tf.tensor(a, shape), tf.tensor(g, shape), attrs)[out],
        );
        process.env.PACT_STRICT_NATIVE = '1';
        const actual = valuesOn(
          PACT_CUDA,
          () => sgdMomentumStep(tf.tensor(v, shape), tf.tensor(a, shape), tf.tensor(g, shape), attrs)[out],
        );
        delete process.env.PACT_STRICT_NATIVE;
        expectClose(actual, expected, EXACT, `seed ${rng.seed} shape [${shape}] output ${out}`);
      }
    }
    const native = backend().native;
    const [x, y] = [native.cudaBufferCreate(16), native.cudaBufferCreate(12)];
    try {
      assert.throws(() => native.cudaSgdMomentumDevice(4, 0.1, 0.9, x, x, y, x, x), /cudaSgdMomentumDevice: gradient/);
      assert.throws(
        () => native.cudaSgdMomentumDevice(4, NaN, 0.9, x, x, x, x, x),
        /learningRate and momentum must be finite/,
      );
      assert.throws(
        () => native.cudaSgdMomentumDevice(4, 0.1, 0.9, x, x, x, x, x),
        /an output buffer is also an input/,
      );
    } finally {
      native.cudaBufferFree(x);
      native.cudaBufferFree(y);
    }
  });

  it('refuses bad calls of the new bindings with an Error naming the function and argument', () => {
    const native = backend().native;
    const id = native.cudaBufferCreate(16);
    try {
      assert.throws(
        () => native.cudaStridedCopy(4, id, id, [2, 2], [2, 1], 1, [2, 1], 0),
        /cudaStridedCopy: the copy reads past the end of src \(16 bytes\)/,
      );
      assert.throws(
        () => native.cudaStridedCopy(4, id, id, [5], [0], 0, [1], 0),
        /cudaStridedCopy: the copy writes past the end of dst/,
      );
      assert.throws(() => native.cudaStridedCopy(2 as 4, id, id, [1], [1], 0, [1], 0), /elementBytes must be 1 or 4/);
      assert.throws(() => native.cudaStridedCopy(4, id, id, [1, 1], [1], 0, [1, 1], 0), /one entry per dimension/);
      assert.throws(() => native.cudaCompare(0, 0, id, [5], id, [4], id), /cudaCompare: a holds 16 bytes, expected 5/);
      assert.throws(() => native.cudaCompare(0, 3, id, [4], id, [4], id), /cudaCompare: type must be an integer/);
      assert.throws(() => native.cudaOneHot(id, 4, 2, 1, 0, true, id), /cudaOneHot: out holds 16 bytes, expected 8/);
      assert.throws(
        () => native.cudaPool2d(0, [1, 2, 2, 1, 1, 1, 0, 2, 1, 1, 0, 0], id, id),
        /cudaPool2d: filter and stride sizes must be >= 1/,
      );
      assert.throws(() => native.cudaPool2d(0, [1, 2, 2], id, id), /cudaPool2d: geometry must be \[batch/);
      assert.throws(
        () => native.cudaArgReduce(0, 0, id, 1, 4, 1, id),
        /cudaArgReduce: out holds 16 bytes, expected 1 values/,
      );
      // Batch norm and the masked unit's kernels: sizes, epsilon, unknown buffers.
      const c = native.cudaBufferCreate(8);
      try {
        assert.throws(
          () => native.cudaBatchNormTrainDevice(2, 2, 0, false, id, c, c, id, c, c),
          /cudaBatchNormTrainDevice: epsilon must be positive and finite/,
        );
        assert.throws(
          () => native.cudaBatchNormTrainDevice(3, 2, 1e-5, false, id, c, c, id, c, c),
          /cudaBatchNormTrainDevice: x holds 16 bytes, expected 6 float32 values/,
        );
        assert.throws(
          () => native.cudaBatchNormTrainGradDevice(2, 2, 1e-5, true, id, c, c, id, c, c, c, 0, id, c, c),
          /cudaBatchNormTrainGradDevice: y/,
        );
        assert.throws(
          () => native.cudaMaskedBatchNormReluDevice(2, 2, 1e-5, id, id, c, c, id, c, c),
          /cudaMaskedBatchNormReluDevice: mask holds 16 bytes, expected 2 float32 values/,
        );
        assert.throws(
          () => native.cudaScaledResidualAddGradDevice(2, 2, id, id, c, id, 987654321),
          /cudaScaledResidualAddGradDevice: da: no live device buffer with id 987654321/,
        );
        assert.throws(() => native.cudaScaledResidualAddDevice(-1, 2, id, id, c, id), /rows must be/);
      } finally {
        native.cudaBufferFree(c);
      }
    } finally {
      native.cudaBufferFree(id);
    }
  });
});
