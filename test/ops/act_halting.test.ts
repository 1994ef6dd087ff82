import { strict as assert } from 'assert';

import * as tf from '@tensorflow/tfjs';

import { actHalting } from '../../src';
import { NATIVE, onBackend, REFERENCE } from '../helpers/backends';
import { expectClose } from '../helpers/compare';
import { freshRng } from '../helpers/random';
import { actRef, rows } from './pact_reference';

function act(h: number[][], epsilon?: number) {
  const r = actHalting(tf.tensor(h), epsilon);
  return {
    weights: rows(r.weights.dataSync(), h[0].length),
    rho: Array.from(r.ponderCost.dataSync()),
    steps: Array.from(r.steps.dataSync()),
  };
}

describe('actHalting (Algorithm 4, eqs. 28-29)', () => {
  it('gives the hand-worked results of Algorithm 4', () => {
    // Dyadic values, so that float32 and the hand computation agree exactly.
    // c = 0.25, 0.75, 0.875 = 1 − ε: the sum lands exactly on the threshold and halts (c < 1 − ε fails).
    let r = act([[0.25, 0.5, 0.125, 0.5]], 0.125);
    assert.deepEqual(r.weights[0], [0.25, 0.5, 0.25, 0]);
    assert.deepEqual(r.steps, [3]);
    assert.deepEqual(r.rho, [3.25]);
    // Never above 1 − ε before L: the last iteration takes R = 1 − 0.375 (its own h is ignored).
    r = act([[0.125, 0.125, 0.125, 0.75]], 0.01);
    assert.deepEqual(r.weights[0], [0.125, 0.125, 0.125, 0.625]);
    assert.deepEqual([r.steps[0], r.rho[0]], [4, 4.625]);
    // Halts at once: N = 1, R = 1, ρ = 2.
    r = act([[0.995, 0.5, 0.5]], 0.01);
    assert.deepEqual(r.weights[0], [1, 0, 0]);
    assert.deepEqual([r.steps[0], r.rho[0]], [1, 2]);
    // Fig. 2's setting, h2 = h3 = h4 = 1/3: h1 = 0.5 gives c = 0.5, 0.833, 1.167 → N = 3, R = 1/6, ρ = 3 + 1/6.
    r = act([[0.5, 1 / 3, 1 / 3, 1 / 3]], 0.01);
    expectClose(r.weights[0], [0.5, 1 / 3, 1 / 6, 0], { atol: 1e-6, rtol: 0 }, 'Fig. 2 h1 = 0.5');
    assert.equal(r.steps[0], 3);
    expectClose(r.rho, [3 + 1 / 6], { atol: 1e-6, rtol: 0 }, 'Fig. 2 ρ');
  });

  it('equals the float64 transcription of Algorithm 4 on random inputs', () => {
    const rng = freshRng();
    const [batch, L, epsilon] = [200, 6, 0.01];
    const h = rows(rng.uniform(batch * L, 0, 0.5), L);
    // Rows where a partial sum is within float32 rounding of 1 − ε are decided by the rounding: the hand-worked
    // test covers the exact tie; keep them out of this comparison.
    const clear = h.filter((row) => {
      let c = 0;
      return row.slice(0, -1).every((v) => Math.abs((c += v) - (1 - epsilon)) > 1e-5);
    });
    const r = act(clear, epsilon);
    clear.forEach((row, b) => {
      const ref = actRef(row.map(Math.fround), epsilon);
      const label = `row ${b} seed=${rng.seed}`;
      assert.equal(r.steps[b], ref.steps, label);
      expectClose(r.weights[b], ref.weights, { atol: 1e-6, rtol: 0 }, label);
      expectClose([r.rho[b]], [ref.rho], { atol: 2e-6, rtol: 0 }, label);
    });
  });

  it('passes gradients to h^l for l < N through the weights and ρ = N + R', () => {
    const h = tf.tensor([[0.25, 0.5, 0.125, 0.5]]);
    const g = tf
      .grad((t: tf.Tensor) => tf.sum(actHalting(t, 0.01).ponderCost))(h)
      .dataSync();
    // N = 4 here (c = 0.875 < 0.99), R = 1 − Σ_{l<4} h^l: dρ/dh^l = −1 for l < 4, 0 for the ignored last entry.
    assert.deepEqual(Array.from(g), [-1, -1, -1, 0]);
  });

  it('passes gradients through the weights and ρ that match float64 central differences (random rows)', () => {
    const rng = freshRng();
    const [batch, L, epsilon, eps] = [40, 5, 0.01, 1e-4];
    // Rows whose partial sums stay 1e-3 away from 1 − ε: N does not change within ±eps, so both sides are smooth.
    const h = rows(rng.uniform(batch * L, 0, 0.45), L).filter((row) => {
      let c = 0;
      return row.slice(0, -1).every((v) => Math.abs((c += v) - (1 - epsilon)) > 1e-3);
    });
    const c = rows(rng.normal(h.length * L), L);
    const lossRef = (row: number[], b: number): number => {
      const r = actRef(row, epsilon);
      return r.weights.reduce((s, w, l) => s + c[b][l] * w, 0) + r.rho;
    };
    const grad = tf
      .grad((t: tf.Tensor) => {
        const r = actHalting(t, epsilon);
        return tf.add(tf.sum(tf.mul(r.weights, tf.tensor(c))), tf.sum(r.ponderCost));
      })(tf.tensor(h))
      .dataSync();
    h.forEach((row, b) => {
      const numeric = row.map((_, l) => {
        const plus = row.map(Math.fround),
          minus = row.map(Math.fround);
        plus[l] += eps;
        minus[l] -= eps;
        return (lossRef(plus, b) - lossRef(minus, b)) / (2 * eps);
      });
      expectClose(grad.slice(b * L, (b + 1) * L), numeric, { atol: 1e-4, rtol: 1e-3 }, `row ${b} seed=${rng.seed}`);
    });
  });

  it('takes L = 1 (one iteration, R = 1) and an empty batch', () => {
    for (const backend of [NATIVE, REFERENCE]) {
      const r = onBackend(backend, () => {
        const a = actHalting(tf.tensor([[0.3], [0.9]]));
        return [a.weights, a.ponderCost, a.steps];
      });
      assert.deepEqual(
        r.map((v) => Array.from(v)),
        [
          [1, 1],
          [2, 2],
          [1, 1],
        ],
        backend,
      );
      const empty = onBackend(backend, () => {
        const a = actHalting(tf.zeros([0, 3]));
        return [a.weights, a.ponderCost, a.steps];
      });
      assert.deepEqual(
        empty.map((v) => v.length),
        [0, 0, 0],
        backend,
      );
    }
    assert.deepEqual(actRef([0.3], 0.01), { weights: [1], rho: 2, steps: 1 });
  });

  it('rejects bad arguments, naming them', () => {
    assert.throws(
      () => actHalting(tf.tensor([[0.5, 1.5]])),
      /actHalting: haltProbs must hold probabilities in \[0, 1\]/,
    );
    assert.throws(() => actHalting(tf.tensor([[0.5, NaN]])), /haltProbs must hold probabilities/);
    assert.throws(() => actHalting(tf.tensor([[0.5, 0.5]]), 0), /actHalting: epsilon must be a number in \(0, 1\)/);
    assert.throws(() => actHalting(tf.scalar(0.5)), /haltProbs must have rank >= 1/);
    assert.throws(
      () => actHalting(tf.zeros([2, 0])),
      /actHalting: haltProbs' last dimension \(L, the iterations\) must/,
    );
  });
});
