import { strict as assert } from 'assert';

import * as tf from '@tensorflow/tfjs';

import { haltingDistribution, haltingLogProb } from '../../src';
import { expectClose } from '../helpers/compare';
import { freshRng } from '../helpers/random';
import { discreteProbabilities, haltingDistributionRef, Mode, numericGradient, rows, sigmoid } from './pact_reference';

const MODES: Mode[] = ['relaxed', 'discrete', 'thresholded'];

describe('haltingDistribution (eqs. 12-18, 23)', () => {
  it('matches the float64 reference in every mode, weights summing to 1', () => {
    const rng = freshRng();
    const [batch, L] = [37, rng.int(2, 7)];
    const xs = rng.uniform(batch * (L - 1), -4, 4);
    const noise = rng.uniform(batch * (L - 1), 0.001, 0.999);
    for (const mode of MODES) {
      const temperature = 0.4;
      const d = haltingDistribution(tf.tensor(xs, [batch, L - 1]), {
        mode,
        temperature,
        noise: tf.tensor(noise, [batch, L - 1]),
      });
      assert.deepEqual(d.weights.shape, [batch, L]);
      assert.deepEqual(d.expectedIterations.shape, [batch]);
      const refs = rows(xs, L - 1).map((x, b) =>
        haltingDistributionRef(x, mode, Array.from(noise).slice(b * (L - 1), (b + 1) * (L - 1)), temperature),
      );
      const label = `${mode} L=${L} seed=${rng.seed}`;
      expectClose(
        d.weights.dataSync(),
        refs.flatMap((r) => r.weights),
        { atol: 1e-6, rtol: 1e-5 },
        label,
      );
      expectClose(
        d.expectedIterations.dataSync(),
        refs.map((r) => r.n),
        { atol: 1e-5, rtol: 1e-5 },
        label,
      );
      expectClose(tf.sum(d.weights, -1).dataSync(), new Array(batch).fill(1), { atol: 1e-5, rtol: 0 }, `${label} Σẑ`);
    }
  });

  it('thresholded equals a literal transcription of Algorithm 2', () => {
    const rng = freshRng();
    const [batch, L] = [50, 6];
    const xs = rng.uniform(batch * (L - 1), -3, 3);
    const w = haltingDistribution(tf.tensor(xs, [batch, L - 1]), { mode: 'thresholded' }).weights.dataSync();
    rows(xs, L - 1).forEach((x, b) => {
      let z = L;
      for (let l = 1; l < L; ++l) {
        if (sigmoid(x[l - 1]) > 0.5) {
          z = l;
          break;
        }
      }
      const oneHot = new Array(L).fill(0).map((_, i) => (i === z - 1 ? 1 : 0));
      assert.deepEqual(Array.from(w.slice(b * L, (b + 1) * L)), oneHot, `row ${b} seed=${rng.seed}`);
    });
  });

  it('samples z with frequencies q(z = l) = h^l ∏(1 − h^i) (chi-square, p < 1e-6 to fail by chance)', () => {
    const rng = freshRng();
    // L = 5 iterations: 4 halting logits, chosen so that every q(z = l) is at least a few percent.
    const x = [
      rng.uniform(1, -1.5, -0.5)[0],
      rng.uniform(1, -1, 0)[0],
      rng.uniform(1, -0.5, 0.5)[0],
      rng.uniform(1, 0, 1)[0],
    ];
    const draws = 20000;
    const seed = rng.int(0, 2 ** 30);
    const counts = tf.tidy(() => {
      const logits = tf.tile(tf.tensor([x]), [draws, 1]);
      return tf.sum(haltingDistribution(logits, { mode: 'discrete', seed }).weights, 0).dataSync();
    });
    const q = discreteProbabilities(x);
    const chi2 = q.reduce((acc, p, l) => acc + (counts[l] - draws * p) ** 2 / (draws * p), 0);
    // 4 degrees of freedom: P(χ² > 35) = e^{-17.5}(1 + 17.5) ≈ 4.6e-7.
    assert.ok(
      chi2 < 35,
      `χ² = ${chi2}, counts ${Array.from(counts)} vs expected ${q.map((p) => p * draws)} (tf seed ${seed})`,
    );
  });

  it('relaxed tends to discrete on the same noise as λ → 0', () => {
    const rng = freshRng();
    const [batch, L] = [40, 5];
    const xs = rng.uniform(batch * (L - 1), -3, 3);
    const noise = rng.uniform(batch * (L - 1), 0.01, 0.99);
    for (let i = 0; i < xs.length; ++i) if (Math.abs(xs[i] + Math.log(noise[i] / (1 - noise[i]))) < 0.01) xs[i] += 0.05;
    const args = (mode: Mode) => ({ mode, temperature: 1e-4, noise: tf.tensor(noise, [batch, L - 1]) });
    const relaxed = haltingDistribution(tf.tensor(xs, [batch, L - 1]), args('relaxed')).weights.dataSync();
    const discrete = haltingDistribution(tf.tensor(xs, [batch, L - 1]), args('discrete')).weights.dataSync();
    expectClose(relaxed, discrete, { atol: 1e-6, rtol: 0 }, `seed=${rng.seed}`);
  });

  it('has the float64 reference gradient in relaxed mode (weights and N), and an N gradient in every mode', () => {
    const rng = freshRng();
    const L = 5;
    const x = Array.from(rng.uniform(L - 1, -2, 2));
    const noise = Array.from(rng.uniform(L - 1, 0.05, 0.95));
    const cw = Array.from(rng.uniform(L, -1, 1));
    const cn = 0.3;
    for (const mode of MODES) {
      const loss = (t: tf.Tensor) => {
        const d = haltingDistribution(t, { mode, temperature: 0.7, noise: tf.tensor([noise]) });
        return tf.add(tf.sum(tf.mul(d.weights, tf.tensor([cw]))), tf.mul(tf.sum(d.expectedIterations), cn));
      };
      const g = tf
        .grad(loss)(tf.tensor([x]))
        .dataSync();
      const f = (v: number[]) => {
        const r = haltingDistributionRef(v, mode, noise, 0.7);
        // Discrete and thresholded weights are step functions: zero gradient almost everywhere.
        return (mode === 'relaxed' ? r.weights.reduce((a, w, l) => a + w * cw[l], 0) : 0) + cn * r.n;
      };
      expectClose(g, numericGradient(f, x), { atol: 1e-5, rtol: 1e-3 }, `${mode} seed=${rng.seed}`);
    }
  });

  it('haltingLogProb is log q(z) of eq. 14', () => {
    const rng = freshRng();
    const [batch, L] = [20, 4];
    const xs = rng.uniform(batch * (L - 1), -3, 3);
    const steps = Array.from({ length: batch }, () => rng.int(1, L));
    const lp = haltingLogProb(tf.tensor(xs, [batch, L - 1]), tf.tensor(steps, [batch], 'int32')).dataSync();
    const ref = rows(xs, L - 1).map((x, b) => Math.log(discreteProbabilities(x)[steps[b] - 1]));
    expectClose(lp, ref, { atol: 1e-5, rtol: 1e-5 }, `seed=${rng.seed}`);
  });

  it('rejects bad arguments, naming them', () => {
    const x = tf.zeros([2, 3]);
    assert.throws(
      () => haltingDistribution(x, { mode: 'relaxed', temperature: 0 }),
      /haltingDistribution: temperature/,
    );
    assert.throws(() => haltingDistribution(x, { mode: 'relaxed' }), /temperature must be a positive finite number/);
    assert.throws(() => haltingDistribution(x, { mode: 'soft' as Mode }), /haltingDistribution: mode must be one of/);
    assert.throws(() => haltingDistribution(tf.scalar(1), { mode: 'thresholded' }), /haltLogits must have rank >= 1/);
    assert.throws(
      () => haltingDistribution(tf.tensor([[0, NaN]]), { mode: 'thresholded' }),
      /haltLogits must not contain NaN/,
    );
    assert.throws(
      () => haltingDistribution(x, { mode: 'discrete', noise: tf.zeros([2, 2]) }),
      /haltingDistribution: noise must have shape \[2,3\]/,
    );
    assert.throws(() => haltingLogProb(x, tf.ones([3])), /haltingLogProb: steps must have shape \[2\]/);
    // x is [2, 3]: L = 4, z in {1 … 4}.
    for (const z of [
      [0, 1],
      [1, 5],
      [1.5, 2],
      [NaN, 1],
    ]) {
      assert.throws(
        () => haltingLogProb(x, tf.tensor(z)),
        /haltingLogProb: steps must hold integers in \[1, 4\]/,
        `steps ${z}`,
      );
    }
    assert.throws(
      () => haltingLogProb(x, undefined as unknown as tf.Tensor),
      /steps must be a float32 or int32 tf.Tensor/,
    );
    assert.throws(() => haltingLogProb(tf.tensor([[0, NaN]]), tf.ones([1])), /haltingLogProb: haltLogits must not/);
    assert.throws(() => haltingLogProb(tf.scalar(1), tf.scalar(1)), /haltLogits must have rank >= 1/);
  });
});
