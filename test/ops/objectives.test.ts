import { strict as assert } from 'assert';

import * as tf from '@tensorflow/tfjs';

import { actLoss, haltingDistribution, haltingLogProb, ReinforceBaseline, relaxedLoss } from '../../src';
import { expectClose } from '../helpers/compare';
import { freshRng } from '../helpers/random';
import { discreteProbabilities, numericGradient, sigmoid } from './pact_reference';

describe('objectives (eqs. 25-26, ACT)', () => {
  it('relaxedLoss and actLoss are mean_b(Σ_k τ_k Σ cost_k − log p), with gradient τ_k/batch on each cost', () => {
    const rng = freshRng();
    const ll = rng.uniform(4, -3, 0);
    const n1 = rng.uniform(4 * 6, 1, 5);
    const n2 = rng.uniform(4, 1, 3);
    const expected = Array.from(ll).reduce((acc, v, b) => {
      const s1 = Array.from(n1.slice(b * 6, b * 6 + 6)).reduce((a, x) => a + x, 0);
      return acc + (0.01 * s1 + 0.5 * n2[b] - v) / 4;
    }, 0);
    for (const loss of [relaxedLoss, actLoss]) {
      const f = (a: tf.Tensor, c: tf.Tensor, d: tf.Tensor) =>
        loss(a, [
          { cost: c, tau: 0.01 },
          { cost: d, tau: 0.5 },
        ]);
      const args = [tf.tensor(ll), tf.tensor(n1, [4, 2, 3]), tf.tensor(n2)];
      expectClose(f(args[0], args[1], args[2]).dataSync(), [expected], { atol: 1e-5, rtol: 1e-5 }, `seed=${rng.seed}`);
      const [gl, g1, g2] = tf.grads(f)(args);
      expectClose(gl.dataSync(), new Array(4).fill(-0.25), { atol: 1e-7, rtol: 0 }, 'd/dlog p');
      expectClose(g1.dataSync(), new Array(24).fill(0.0025), { atol: 1e-7, rtol: 0 }, 'd/dN_1');
      expectClose(g2.dataSync(), new Array(4).fill(0.125), { atol: 1e-7, rtol: 0 }, 'd/dN_2');
    }
  });

  it('REINFORCE: the surrogate gradient equals eq. 25 computed by hand, with the EMA baseline (decay 0.99)', () => {
    const rng = freshRng();
    const [batch, L, tau] = [3, 4, 0.2];
    const x = Array.from(rng.uniform(batch * (L - 1), -1.5, 1.5));
    const steps = Array.from({ length: batch }, () => rng.int(1, L));
    // log p(y | z, x) = −(θ − z/2)² per example: depends on θ (the model) and on the sampled z.
    const logLik = (t: number, z: number) => -((t - z / 2) ** 2);
    const baseline = new ReinforceBaseline();
    const grads = (c: number | undefined, theta: number) => {
      const lls = steps.map((z) => logLik(theta, z));
      const f = (logits: tf.Tensor, t: tf.Tensor) => {
        const ll = tf.neg(tf.square(tf.sub(t, tf.div(tf.tensor(steps), 2))));
        const logProb = tf.sum(haltingLogProb(logits, tf.tensor(steps, [batch], 'int32')).reshape([batch, 1]), 1);
        const n = haltingDistribution(logits, { mode: 'thresholded' }).expectedIterations;
        return baseline.loss(ll, logProb, [{ cost: n, tau }]);
      };
      const [gx, gt] = tf.grads(f)([tf.tensor(x, [batch, L - 1]), tf.scalar(theta)]);
      const cUsed = c ?? lls.reduce((a, b) => a + b, 0) / batch;
      // Eq. 25 by hand, as a loss (negated, batch mean): −[(log p − c) ∇ log q(z) − τ ∇N] per example.
      const byHand: number[] = [];
      for (let b = 0; b < batch; ++b) {
        const row = x.slice(b * (L - 1), (b + 1) * (L - 1));
        for (let i = 0; i < L - 1; ++i) {
          // d log q(z)/dx_i: −h_i for i < z − 1 (a (1 − h) factor), 1 − h_i at i = z − 1 < L − 1 (the h^z factor).
          const h = sigmoid(row[i]);
          const dLogQ = i < steps[b] - 1 ? -h : i === steps[b] - 1 ? 1 - h : 0;
          const dN = numericGradient((v) => discreteProbabilities(v).reduce((a, q, l) => a + (l + 1) * q, 0), row)[i];
          byHand.push(-((lls[b] - cUsed) * dLogQ - tau * dN) / batch);
        }
      }
      expectClose(gx.dataSync(), byHand, { atol: 1e-5, rtol: 1e-4 }, `∇φ seed=${rng.seed}`);
      // ∇θ of −mean log p(y | z, x): the advantage is a constant of the backward pass.
      const dTheta = steps.reduce((a, z) => a + 2 * (theta - z / 2), 0) / batch;
      expectClose(gt.dataSync(), [dTheta], { atol: 1e-5, rtol: 1e-4 }, `∇θ seed=${rng.seed}`);
      return lls.reduce((a, b) => a + b, 0) / batch;
    };
    const mean1 = grads(undefined, rng.uniform(1, 0.5, 1.5)[0]);
    // The first call's baseline is the batch mean itself; then c ← 0.99 c + 0.01 mean.
    expectClose([baseline.value as number], [mean1], { atol: 1e-6, rtol: 0 }, 'c after the first batch');
    // The second batch (another θ) is scored against the baseline before its own update.
    const mean2 = grads(mean1, rng.uniform(1, 2, 3)[0]);
    expectClose([baseline.value as number], [0.99 * mean1 + 0.01 * mean2], { atol: 1e-6, rtol: 0 }, 'EMA');
  });

  it('rejects bad arguments, naming them', () => {
    const ll = tf.zeros([2]);
    assert.throws(() => relaxedLoss(tf.zeros([2, 1]), []), /relaxedLoss: logLikelihood must have shape \[batch\]/);
    assert.throws(
      () => actLoss(ll, [{ cost: tf.zeros([3]), tau: 1 }]),
      /actLoss: ponder\[0\].cost must have shape \[2, \.\.\.\]/,
    );
    assert.throws(
      () => relaxedLoss(ll, [{ cost: tf.zeros([2]), tau: -1 }]),
      /relaxedLoss: ponder\[0\].tau must be a finite number >= 0/,
    );
    assert.throws(
      () => new ReinforceBaseline().loss(ll, tf.zeros([3]), []),
      /ReinforceBaseline.loss: logProb must have shape \[2\]/,
    );
    assert.throws(() => new ReinforceBaseline(1), /decay must be in \[0, 1\)/);
    assert.throws(() => relaxedLoss(ll, undefined as never), /relaxedLoss: ponder must be an array of \{ cost, tau \}/);
    // An empty batch has no mean (it used to leave the baseline NaN for good).
    const baseline = new ReinforceBaseline();
    assert.throws(
      () => baseline.loss(tf.zeros([0]), tf.zeros([0]), []),
      /ReinforceBaseline.loss: logLikelihood must hold at least one example/,
    );
    assert.equal(baseline.value, undefined);
  });
});
