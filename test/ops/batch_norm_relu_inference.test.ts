/**
 * batchNormReluInference (evaluation's batch norm + ReLU with given statistics): pact-cpu's one-pass kernel against
 * float64 and against tfjs' FusedBatchNorm + Relu on tfjs-backend-cpu, values and gradients (w.r.t. x, scale,
 * offset, mean, variance), a finite-difference check of the hand-written gradient, and bad lengths at the addon.
 */
import { strict as assert } from 'assert';

import * as tf from '@tensorflow/tfjs';

import { nativeAddon } from '../../src';
import { batchNormReluInference } from '../../src/ops/batch_norm_relu_inference';
import { NATIVE, onBackend, REFERENCE, requirePactCpu } from '../helpers/backends';
import { expectClose } from '../helpers/compare';
import { freshRng } from '../helpers/random';

const EPS = 1e-3;

describe('batchNormReluInference', () => {
  before(requirePactCpu);

  it('matches float64 and FusedBatchNorm + Relu, values and gradients, and runs one native kernel', async () => {
    const rng = freshRng();
    const shape: [number, number, number, number] = [3, 5, 4, 9];
    const c = shape[3];
    const x = rng.normal(shape.reduce((a, b) => a * b)),
      dy = rng.normal(x.length);
    const [mean, scale, offset] = [rng.normal(c), rng.uniform(c, 0.5, 1.5), rng.uniform(c, -0.5, 0.5)];
    const variance = rng.uniform(c, 0.3, 2);
    const expected = Array.from(x, (v, i) => {
      const k = i % c;
      return Math.max(0, ((v - mean[k]) / Math.sqrt(variance[k] + EPS)) * scale[k] + offset[k]);
    });
    const run = (backend: string) =>
      onBackend(backend, () => {
        const inputs = [tf.tensor4d(x, shape), ...[scale, offset, mean, variance].map((v) => tf.tensor1d(v))];
        const f = (xx: tf.Tensor, s: tf.Tensor, o: tf.Tensor, m: tf.Tensor, v: tf.Tensor) =>
          batchNormReluInference(
            xx as tf.Tensor4D,
            m as tf.Tensor1D,
            v as tf.Tensor1D,
            o as tf.Tensor1D,
            s as tf.Tensor1D,
            EPS,
          );
        const y = f(...(inputs as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]));
        return [y, ...tf.grads(f)(inputs, tf.tensor4d(dy, shape))];
      });
    const native = run(NATIVE),
      reference = run(REFERENCE);
    expectClose(native[0], expected, { atol: 1e-5, rtol: 1e-5 }, `y vs float64, seed ${rng.seed}`);
    expectClose(reference[0], expected, { atol: 1e-5, rtol: 1e-5 }, `reference y vs float64, seed ${rng.seed}`);
    const names = ['x', 'scale', 'offset', 'mean', 'variance'];
    for (let i = 1; i < native.length; ++i) {
      expectClose(native[i], reference[i], { atol: 1e-4, rtol: 1e-4 }, `d${names[i - 1]}, seed ${rng.seed}`);
    }
    // Central differences in float64 of L = sum(y * dy) w.r.t. one variance element (the hand-written term).
    const loss = (v: Float32Array): number =>
      Array.from(x).reduce((sum, xi, i) => {
        const k = i % c;
        return sum + dy[i] * Math.max(0, ((xi - mean[k]) / Math.sqrt(v[k] + EPS)) * scale[k] + offset[k]);
      }, 0);
    const k = rng.int(0, c - 1),
      h = 1e-4;
    const at = (delta: number) => loss(variance.map((v, j) => (j === k ? v + delta : v)));
    expectClose([native[5][k]], [(at(h) - at(-h)) / (2 * h)], { atol: 2e-3, rtol: 2e-3 }, `dvariance[${k}]`);
    const previous = tf.getBackend();
    tf.setBackend(NATIVE);
    try {
      const info = await tf.profile(() => tf.tidy(() => run(NATIVE)));
      assert.ok(info.kernelNames.includes('PactBatchNormReluInference'), `kernels: ${info.kernelNames}`);
      assert.ok(!info.kernelNames.includes('FusedBatchNorm'), `kernels: ${info.kernelNames}`);
    } finally {
      tf.setBackend(previous);
    }
  });

  it('keeps NaN as tf.relu does and ±Inf as the affine map gives them, on both backends', () => {
    const rng = freshRng();
    // 2 x 3 x 3 x 12 (12 channels: one 8-lane block and a scalar tail), with NaN and infinities spread around.
    const shape: [number, number, number, number] = [2, 3, 3, 12];
    const x = rng.normal(2 * 3 * 3 * 12);
    for (let i = 0; i < x.length; i += 7) x[i] = [NaN, Infinity, -Infinity][i % 3];
    const stats = [rng.normal(12), rng.uniform(12, 0.5, 2), rng.normal(12), rng.uniform(12, 0.5, 2)];
    const [native, reference] = [NATIVE, REFERENCE].map(
      (backend) =>
        onBackend(backend, () => {
          const [mean, variance, offset, scale] = stats.map((v) => tf.tensor1d(v));
          return batchNormReluInference(tf.tensor4d(x, shape), mean, variance, offset, scale, 1e-3);
        })[0],
    );
    assert.ok(
      reference.some((v) => Number.isNaN(v)),
      'the reference holds NaN',
    );
    native.forEach((v, i) => {
      const e = reference[i];
      if (!Number.isFinite(e))
        assert.ok(Object.is(v, e) || (Number.isNaN(v) && Number.isNaN(e)), `[${i}] ${v} vs ${e}`);
    });
    expectClose(
      native.map((v) => (Number.isFinite(v) ? v : 0)),
      reference.map((v) => (Number.isFinite(v) ? v : 0)),
      { atol: 1e-5, rtol: 1e-5 },
      'finite values',
    );
  });

  it('takes tf.batchNorm + relu for statistics that are not per-channel vectors ([1], broadcast)', () => {
    const rng = freshRng();
    const x = rng.normal(2 * 3 * 3 * 4);
    const out = (backend: string) =>
      onBackend(backend, () => {
        const xt = tf.tensor4d(x, [2, 3, 3, 4]);
        const [mean, variance, offset, scale] = [0.3, 1.7, -0.2, 1.1].map((v) => tf.tensor1d([v]));
        return batchNormReluInference(xt, mean, variance, offset, scale, EPS);
      })[0];
    const expected = Array.from(x, (v) => Math.max(0, ((v - 0.3) / Math.sqrt(1.7 + EPS)) * 1.1 - 0.2));
    expectClose(out(NATIVE), expected, { atol: 1e-5, rtol: 1e-5 }, `pact-cpu, seed ${rng.seed}`);
    expectClose(out(REFERENCE), expected, { atol: 1e-5, rtol: 1e-5 }, `cpu, seed ${rng.seed}`);
  });

  it('rejects bad lengths at the addon (every row active: a null mask)', () => {
    const addon = nativeAddon()!;
    const f = (n: number) => new Float32Array(n);
    assert.throws(
      () => addon.maskedBatchNormReluInference(4, 3, f(11), null, f(3), f(3), f(3), f(3), EPS, f(12)),
      /maskedBatchNormReluInference: x must have 12 elements, got 11/,
    );
    assert.throws(
      () => addon.maskedBatchNormReluInference(4, 3, f(12), null, f(3), f(3), f(3), f(2), EPS, f(12)),
      /maskedBatchNormReluInference: variance must have 3 elements, got 2/,
    );
  });
});
