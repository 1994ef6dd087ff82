import { strict as assert } from 'assert';

import * as tf from '@tensorflow/tfjs';

import { relaxedBernoulli } from '../../src';
import { expectClose } from '../helpers/compare';
import { freshRng } from '../helpers/random';
import { numericGradient, relaxedBernoulliRef } from './pact_reference';

// Two-sided normal bound with z = 5: a correct sampler fails one check with probability < 6e-7 (binomial counts of
// 20000 draws are normal to well within that), so the 9 checks below fail by chance with probability < 6e-6.
const Z = 5;

describe('relaxedBernoulli (eq. 7)', () => {
  it('matches the float64 reference on given noise, at moderate and extreme logits', () => {
    const rng = freshRng();
    const n = 300;
    const logits = rng.uniform(n, -8, 8);
    for (const i of [0, 1, 2]) logits[i] = [-80, 80, 0][i];
    const noise = rng.uniform(n, 1e-6, 1 - 1e-6);
    for (const lambda of [0.1, 0.7, 3]) {
      const v = relaxedBernoulli(tf.tensor(logits), lambda, tf.tensor(noise)).dataSync();
      const ref = Array.from(logits, (x, i) => relaxedBernoulliRef(x, lambda, noise[i]));
      expectClose(v, ref, { atol: 2e-6, rtol: 1e-5 }, `λ=${lambda} seed=${rng.seed}`);
    }
  });

  it('has P(v > 0.5) = γ for every λ, within a 5σ binomial bound', () => {
    const rng = freshRng();
    const draws = 20000;
    for (const gamma of [0.1, 0.5, 0.85]) {
      for (const lambda of [0.05, 1, 5]) {
        const seed = rng.int(0, 2 ** 30);
        const count = tf.tidy(() => {
          const v = relaxedBernoulli(tf.fill([draws], Math.log(gamma / (1 - gamma))), lambda, undefined, seed);
          return tf.sum(tf.cast(tf.greater(v, 0.5), 'float32')).dataSync()[0];
        });
        const bound = Z * Math.sqrt((gamma * (1 - gamma)) / draws);
        assert.ok(
          Math.abs(count / draws - gamma) <= bound,
          `γ=${gamma} λ=${lambda}: frequency ${count / draws} outside γ ± ${bound} (tf seed ${seed}, seed=${rng.seed})`,
        );
      }
    }
  });

  it('is reproducible for a given seed', () => {
    const a = relaxedBernoulli(tf.zeros([50]), 0.5, undefined, 1234).dataSync();
    const b = relaxedBernoulli(tf.zeros([50]), 0.5, undefined, 1234).dataSync();
    assert.deepEqual(Array.from(a), Array.from(b));
  });

  it('tends to Bernoulli as λ → 0 and collapses to 0/1 as γ → 0/1 for any λ', () => {
    const rng = freshRng();
    const n = 200;
    const logits = rng.uniform(n, -4, 4);
    const noise = rng.uniform(n, 0.01, 0.99);
    // Keep |logit γ + logit ε| >= 0.01 so that ℓ/λ >= 100 at λ = 1e-4: σ is then within e^-100 of a step.
    for (let i = 0; i < n; ++i) if (Math.abs(logits[i] + Math.log(noise[i] / (1 - noise[i]))) < 0.01) logits[i] += 0.05;
    const hard = Array.from(logits, (x, i) => (x + Math.log(noise[i] / (1 - noise[i])) > 0 ? 1 : 0));
    const v = relaxedBernoulli(tf.tensor(logits), 1e-4, tf.tensor(noise)).dataSync();
    expectClose(v, hard, { atol: 1e-6, rtol: 0 }, `λ→0 seed=${rng.seed}`);
    for (const lambda of [0.1, 1, 10]) {
      const low = relaxedBernoulli(tf.fill([n], -200), lambda, tf.tensor(noise)).dataSync();
      const high = relaxedBernoulli(tf.fill([n], 200), lambda, tf.tensor(noise)).dataSync();
      expectClose(low, new Array(n).fill(0), { atol: 1e-6, rtol: 0 }, `γ→0 λ=${lambda}`);
      expectClose(high, new Array(n).fill(1), { atol: 1e-6, rtol: 0 }, `γ→1 λ=${lambda}`);
    }
    // γ = 0 or 1 exactly (infinite logits) is certain even at ε = 0 or 1, where logit(ε) is infinite too.
    const edge = relaxedBernoulli(tf.tensor([Infinity, -Infinity, Infinity, -Infinity]), 1, tf.tensor([0, 1, 1, 0]));
    assert.deepEqual(Array.from(edge.dataSync()), [1, 0, 1, 0]);
  });

  it('has the gradient of the float64 reference (central differences) with respect to the logits', () => {
    const rng = freshRng();
    const n = 40;
    const logits = rng.uniform(n, -3, 3);
    const noise = rng.uniform(n, 0.05, 0.95);
    const weights = rng.uniform(n, -1, 1);
    const lambda = 0.6;
    const g = tf.grad((x: tf.Tensor) =>
      tf.sum(tf.mul(relaxedBernoulli(x, lambda, tf.tensor(noise)), tf.tensor(weights))),
    )(tf.tensor(logits));
    const f = (x: number[]) =>
      x.reduce((acc, xi, i) => acc + weights[i] * relaxedBernoulliRef(xi, lambda, noise[i]), 0);
    expectClose(g.dataSync(), numericGradient(f, Array.from(logits)), { atol: 1e-5, rtol: 1e-3 }, `seed=${rng.seed}`);
  });

  it('rejects bad arguments, naming them', () => {
    assert.throws(() => relaxedBernoulli(tf.zeros([3]), 0), /relaxedBernoulli: temperature must be a positive/);
    assert.throws(() => relaxedBernoulli(tf.zeros([3]), -1), /temperature/);
    assert.throws(() => relaxedBernoulli(tf.zeros([3]), NaN), /temperature/);
    assert.throws(() => relaxedBernoulli(tf.tensor([0, NaN]), 1), /relaxedBernoulli: logits must not contain NaN/);
    assert.throws(
      () => relaxedBernoulli(tf.zeros([3]), 1, tf.zeros([4])),
      /relaxedBernoulli: noise must have shape \[3\]/,
    );
    assert.throws(() => relaxedBernoulli(tf.zeros([2]), 1, tf.tensor([0.5, 1.5])), /noise must hold U\(0,1\) draws/);
    assert.throws(() => relaxedBernoulli(tf.zeros([2], 'int32'), 1), /logits must be float32/);
  });
});
