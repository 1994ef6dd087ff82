import { strict as assert } from 'assert';

import * as tf from '@tensorflow/tfjs';

import { actHalting, adaptiveBlock, AdaptiveMode, haltingDistribution, haltingLogProb } from '../../src';
import { NATIVE, REFERENCE, requirePactCpu } from '../helpers/backends';
import { expectClose } from '../helpers/compare';
import { freshRng, Rng } from '../helpers/random';

const TOL = { atol: 2e-5, rtol: 2e-5 };

/**
 * A block over [batch, positions] with 3 channels whose halting logits are a fixed table X[..., l-1] (so that the
 * block's result can be computed from haltingDistribution on the same table) and whose iteration is
 * u^l = 0.5 u^{l-1} + l·v, recording how often it ran and the masks it got.
 */
function setup(rng: Rng, L: number) {
  const shape = [3, 4];
  const X = tf.tensor(rng.uniform(12 * (L - 1), -3, 3), [...shape, L - 1]);
  const v = tf.tensor(rng.uniform(12 * 3, -1, 1), [...shape, 3]);
  const input = tf.tensor(rng.uniform(12 * 3, -1, 1), [...shape, 3]);
  const calls: number[] = [];
  const masks: Array<tf.Tensor | null> = [];
  const iterate = (u: tf.Tensor, l: number, active: tf.Tensor | null) => {
    calls.push(l);
    masks.push(active === null ? null : tf.keep(active.clone()));
    return tf.add(tf.mul(u, 0.5), tf.mul(v, l));
  };
  const halt = (_u: tf.Tensor, l: number) => tf.squeeze(tf.slice(X, [0, 0, l - 1], [...shape, 1]), [2]);
  /** u^1 … u^L of the same recurrence, run densely: [L][...shape, 3]. */
  const dense = () => {
    const us: tf.Tensor[] = [];
    let u = input;
    for (let l = 1; l <= L; ++l) us.push((u = tf.add(tf.mul(u, 0.5), tf.mul(v, l))));
    return us;
  };
  return { X, input, iterate, halt, dense, calls, masks };
}

/** Σ_l w[..., l] u^l. */
function mix(weights: tf.Tensor, us: tf.Tensor[]): tf.Tensor {
  return us.map((u, l) => tf.mul(tf.expandDims(tf.gather(weights, l, 2), -1), u)).reduce((a, b) => tf.add(a, b));
}

function onBoth(fn: (backend: string) => void): void {
  for (const backend of [NATIVE, REFERENCE]) {
    tf.setBackend(backend);
    try {
      tf.tidy(() => fn(backend));
    } finally {
      tf.setBackend(NATIVE);
    }
  }
}

describe('adaptiveBlock (Algorithms 1-4)', () => {
  before(requirePactCpu);

  it('relaxed: output Σ ẑ^l u^l and N equal haltingDistribution on the same noise; iterations count â > 0', () => {
    const rng = freshRng();
    const L = 5;
    onBoth((backend) => {
      const s = setup(rng, L);
      const noise = tf.tensor(rng.uniform(12 * (L - 1), 0.01, 0.99), [3, 4, L - 1]);
      const delta = 0.2;
      const r = adaptiveBlock(s.iterate, s.halt, L, {
        mode: 'relaxed',
        input: s.input,
        temperature: 0.5,
        delta,
        noise,
      });
      const d = haltingDistribution(s.X, { mode: 'relaxed', temperature: 0.5, noise });
      const label = `${backend} seed=${rng.seed}`;
      assert.deepEqual(s.calls, [1, 2, 3, 4, 5], label);
      expectClose(r.output.dataSync(), mix(d.weights, s.dense()).dataSync(), TOL, `output ${label}`);
      expectClose((r.expectedIterations as tf.Tensor).dataSync(), d.expectedIterations.dataSync(), TOL, `N ${label}`);
      // â^{l+1} = r·[r > δ] with r = 1 − Σ_{t≤l} ẑ^t: iterations = 1 + #{l < L : r^l > δ}.
      const remaining = tf.sub(1, tf.cumsum(d.weights, 2));
      const expected = tf.add(
        1,
        tf.sum(tf.cast(tf.greater(tf.slice(remaining, [0, 0, 0], [3, 4, L - 1]), delta), 'float32'), 2),
      );
      assert.deepEqual(Array.from(r.iterations.dataSync()), Array.from(expected.dataSync()), label);
      s.masks.slice(1).forEach((m, i) => {
        const r = tf.squeeze(tf.slice(remaining, [0, 0, i], [3, 4, 1]), [2]);
        expectClose(
          (m as tf.Tensor).dataSync(),
          tf.mul(r, tf.cast(tf.greater(r, delta), 'float32')).dataSync(),
          TOL,
          `â^${i + 2} ${label}`,
        );
      });
    });
  });

  for (const mode of ['discrete', 'thresholded'] as const) {
    it(`${mode}: output u^z, N and log q(z) as haltingDistribution; iterate stops once all halted`, () => {
      const rng = freshRng();
      const L = 6;
      onBoth((backend) => {
        const s = setup(rng, L);
        const noise = tf.tensor(rng.uniform(12 * (L - 1), 0.01, 0.99), [3, 4, L - 1]);
        const r = adaptiveBlock(s.iterate, s.halt, L, { mode, input: s.input, noise });
        const d = haltingDistribution(s.X, { mode, noise });
        const label = `${backend} seed=${rng.seed}`;
        const z = tf.add(tf.argMax(d.weights, 2), 1);
        const zMax = tf.max(z).dataSync()[0];
        assert.deepEqual(
          s.calls,
          Array.from({ length: zMax }, (_, i) => i + 1),
          `iterate called up to max z = ${zMax} ${label}`,
        );
        expectClose(r.output.dataSync(), mix(d.weights, s.dense()).dataSync(), TOL, `output ${label}`);
        expectClose((r.expectedIterations as tf.Tensor).dataSync(), d.expectedIterations.dataSync(), TOL, `N ${label}`);
        assert.deepEqual(Array.from(r.iterations.dataSync()), Array.from(tf.cast(z, 'float32').dataSync()), label);
        if (mode === 'discrete') {
          expectClose((r.logProb as tf.Tensor).dataSync(), haltingLogProb(s.X, z).dataSync(), TOL, `log q(z) ${label}`);
        }
      });
    });
  }

  it('discrete/thresholded stop calling iterate after the iteration where every position halted', () => {
    onBoth(() => {
      const s = setup(freshRng(), 8);
      const halt = (u: tf.Tensor, l: number) => tf.fill(u.shape.slice(0, 2), l >= 3 ? 50 : -50);
      const r = adaptiveBlock(s.iterate, halt, 8, { mode: 'thresholded', input: s.input });
      assert.deepEqual(s.calls, [1, 2, 3]);
      assert.deepEqual(Array.from(r.iterations.dataSync()), new Array(12).fill(3));
    });
  });

  it('leaves no tensor behind but its results, in every mode', () => {
    for (const mode of ['relaxed', 'discrete', 'thresholded', 'act'] as AdaptiveMode[]) {
      const s = setup(freshRng(), 4);
      const noise = tf.randomUniform([3, 4, 3]);
      const before = tf.memory().numTensors;
      // An iterate that returns a tensor it does not own: the block must not dispose it.
      const owned = tf.ones([3, 4, 3]);
      const iterate = (u: tf.Tensor, l: number, active: tf.Tensor | null) =>
        l === 2 ? owned : s.iterate(u, l, active);
      const r = adaptiveBlock(iterate, s.halt, 4, { mode, input: s.input, temperature: 0.5, noise });
      assert.ok(!owned.isDisposed, mode);
      const results = Object.values(r).filter((t) => t instanceof tf.Tensor) as tf.Tensor[];
      const masks = s.masks.filter((m) => m !== null).length;
      assert.equal(tf.memory().numTensors - before, results.length + masks + 1, mode);
      tf.dispose([...results, ...(s.masks.filter((m) => m !== null) as tf.Tensor[]), s.X, s.input, noise, owned]);
    }
  });

  it('L = 1: one iteration, z = 1 everywhere (N = 1; ACT: ρ = N + R = 2), nothing left behind', () => {
    const rng = freshRng();
    for (const mode of ['relaxed', 'discrete', 'thresholded', 'act'] as AdaptiveMode[]) {
      const input = tf.tensor(rng.uniform(12 * 3, -1, 1), [3, 4, 3]);
      const before = tf.memory().numTensors;
      const r = adaptiveBlock(
        (u) => tf.add(tf.mul(u, 0.5), 1),
        () => tf.zeros([3, 4]),
        1,
        {
          mode,
          input,
          temperature: 0.5,
        },
      );
      const results = Object.values(r).filter((t) => t instanceof tf.Tensor) as tf.Tensor[];
      assert.equal(tf.memory().numTensors - before, results.length, `${mode}: tensors left behind`);
      const expected = tf.tidy(() => tf.add(tf.mul(input, 0.5), 1));
      expectClose(r.output.dataSync(), expected.dataSync(), TOL, `seed ${rng.seed} ${mode} output`);
      assert.deepEqual(Array.from(r.iterations.dataSync()), new Array(12).fill(1), mode);
      const ponder = mode === 'act' ? r.ponderCost : r.expectedIterations;
      assert.deepEqual(Array.from((ponder as tf.Tensor).dataSync()), new Array(12).fill(mode === 'act' ? 2 : 1), mode);
      tf.dispose([...results, input, expected]);
    }
  });

  it('act: output, ponder cost and steps equal actHalting; stops once all halted', () => {
    const rng = freshRng();
    const L = 6;
    onBoth((backend) => {
      const s = setup(rng, L);
      const r = adaptiveBlock(s.iterate, s.halt, L, { mode: 'act', input: s.input, epsilon: 0.05 });
      const h = tf.concat([tf.sigmoid(s.X), tf.ones([3, 4, 1])], 2);
      const a = actHalting(h, 0.05);
      const label = `${backend} seed=${rng.seed}`;
      const maxSteps = tf.max(a.steps).dataSync()[0];
      assert.equal(s.calls.length, maxSteps, label);
      expectClose(
        r.output.dataSync(),
        mix(
          a.weights,
          s
            .dense()
            .slice(0, maxSteps)
            .concat(new Array(L - maxSteps).fill(tf.zeros([3, 4, 3]))),
        ).dataSync(),
        TOL,
        `output ${label}`,
      );
      expectClose((r.ponderCost as tf.Tensor).dataSync(), a.ponderCost.dataSync(), TOL, `ρ ${label}`);
      assert.deepEqual(Array.from(r.iterations.dataSync()), Array.from(a.steps.dataSync()), label);
    });
  });

  it('relaxed: gradients reach the halting logits and the iteration parameters', () => {
    onBoth((backend) => {
      const rng = freshRng();
      const s = setup(rng, 4);
      const w = tf.tensor(rng.uniform(3, -1, 1));
      const noise = tf.tensor(rng.uniform(12 * 3, 0.05, 0.95), [3, 4, 3]);
      const f = (X: tf.Tensor, scale: tf.Tensor) => {
        const halt = (_u: tf.Tensor, l: number) => tf.squeeze(tf.slice(X, [0, 0, l - 1], [3, 4, 1]), [2]);
        const iterate = (u: tf.Tensor, l: number) => tf.add(tf.mul(u, scale), l);
        const r = adaptiveBlock(iterate, halt, 4, { mode: 'relaxed', input: s.input, temperature: 0.5, noise });
        return tf.add(tf.sum(tf.mul(r.output, w)), tf.sum(r.expectedIterations as tf.Tensor)) as tf.Scalar;
      };
      const [gX, gScale] = tf.grads(f)([s.X, tf.scalar(0.7)]);
      assert.ok(tf.sum(tf.abs(gX)).dataSync()[0] > 0 && gScale.dataSync()[0] !== 0, backend);
    });
  });

  it('rejects bad arguments, naming them', () => {
    const s = setup(freshRng(), 3);
    const opts = { mode: 'relaxed' as AdaptiveMode, input: s.input, temperature: 1 };
    assert.throws(() => adaptiveBlock(s.iterate, s.halt, 0, opts), /adaptiveBlock: L must be an integer >= 1/);
    assert.throws(
      () => adaptiveBlock(s.iterate, s.halt, 3, { ...opts, mode: 'x' as AdaptiveMode }),
      /adaptiveBlock: mode must be one of/,
    );
    assert.throws(
      () => adaptiveBlock(s.iterate, s.halt, 3, { ...opts, temperature: -1 }),
      /haltingStep: temperature must be a positive/,
    );
    assert.throws(
      () => adaptiveBlock(s.iterate, () => tf.zeros([5]), 3, opts),
      /adaptiveBlock: halt\(u, 1\) must return a tensor whose shape is a prefix of u's \[3,4,3\], got \[5\]/,
    );
    assert.throws(
      () => adaptiveBlock(s.iterate, s.halt, 3, { ...opts, mode: 'act', epsilon: 2 }),
      /adaptiveBlock: epsilon must be/,
    );
  });
});
