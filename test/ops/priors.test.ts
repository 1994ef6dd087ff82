import { strict as assert } from 'assert';

import * as tf from '@tensorflow/tfjs';

import { expectedLogPrior, haltingDistribution, truncatedGeometricLogProb } from '../../src';
import { expectClose } from '../helpers/compare';
import { freshRng } from '../helpers/random';
import { discreteProbabilities } from './pact_reference';

/** Eq. 19 in float64, straight from the formula. */
const logPrior = (z: number, tau: number, L: number) =>
  Math.log((Math.exp(tau) - 1) / (1 - Math.exp(-tau * L))) - tau * z;

describe('priors (eqs. 19, 23)', () => {
  it('the truncated geometric log-probability matches eq. 19 and sums to 1 over z = 1 … L', () => {
    for (const [tau, L] of [
      [0.01, 5],
      [0.1, 18],
      [1, 3],
      [3, 1],
      [1e-4, 7],
    ]) {
      const z = Array.from({ length: L }, (_, i) => i + 1);
      const lp = truncatedGeometricLogProb(tf.tensor(z), tau, L).dataSync();
      expectClose(
        lp,
        z.map((v) => logPrior(v, tau, L)),
        { atol: 1e-5, rtol: 1e-5 },
        `τ=${tau} L=${L}`,
      );
      const total = Array.from(lp).reduce((a, v) => a + Math.exp(v), 0);
      expectClose([total], [1], { atol: 1e-5, rtol: 0 }, `Σ p(z), τ=${tau} L=${L}`);
    }
  });

  it('does not overflow at large τ', () => {
    const lp = truncatedGeometricLogProb(tf.tensor([1, 2]), 200, 4).dataSync();
    expectClose(lp, [0 + 200 - 200, -200], { atol: 1e-3, rtol: 1e-6 }, 'τ = 200');
  });

  it('expectedLogPrior equals Σ_z q(z) log p(z) exactly, q the halting distribution with that N', () => {
    const rng = freshRng();
    const [batch, L] = [30, 6];
    const xs = rng.uniform(batch * (L - 1), -3, 3);
    const n = haltingDistribution(tf.tensor(xs, [batch, L - 1]), { mode: 'thresholded' }).expectedIterations;
    for (const tau of [0.01, 0.5]) {
      const got = expectedLogPrior(n, tau, L).dataSync();
      const ref = Array.from({ length: batch }, (_, b) =>
        discreteProbabilities(Array.from(xs.slice(b * (L - 1), (b + 1) * (L - 1)))).reduce(
          (acc, q, l) => acc + q * logPrior(l + 1, tau, L),
          0,
        ),
      );
      expectClose(got, ref, { atol: 1e-5, rtol: 1e-5 }, `τ=${tau} seed=${rng.seed}`);
    }
    const g = tf
      .grad((t: tf.Tensor) => tf.sum(expectedLogPrior(t, 0.3, L)))(n)
      .dataSync();
    expectClose(g, new Array(batch).fill(-0.3), { atol: 1e-7, rtol: 0 }, 'dE/dN = −τ');
  });

  it('rejects bad arguments, naming them', () => {
    assert.throws(
      () => truncatedGeometricLogProb(tf.ones([2]), 0, 3),
      /truncatedGeometricLogProb: tau must be a positive/,
    );
    assert.throws(
      () => truncatedGeometricLogProb(tf.ones([2]), 0.1, 0),
      /truncatedGeometricLogProb: L must be an integer >= 1/,
    );
    assert.throws(() => expectedLogPrior(tf.ones([2]), -1, 3), /expectedLogPrior: tau must be a positive/);
    // τ·z overflows float32 past ~3e38: τ is capped at 1e30 (it gave NaN).
    assert.throws(
      () => truncatedGeometricLogProb(tf.ones([2]), 1e300, 3),
      /tau must be a positive number at most 1e30/,
    );
    assert.throws(() => expectedLogPrior(tf.ones([2]), 0.1, 2.5), /expectedLogPrior: L must be an integer >= 1/);
  });
});
