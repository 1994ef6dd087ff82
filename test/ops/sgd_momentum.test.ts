/**
 * The fused SGD-momentum step (src/ops/sgd_momentum.ts) and FusedMomentumOptimizer: pact-cpu's native kernel equal
 * bit for bit to tfjs' MomentumOptimizer ops on tfjs-backend-cpu (the point of the kernel: a run may switch
 * optimizers or resume from either's checkpoint), close to a float64 reference, and bad input refused.
 */
import { strict as assert } from 'assert';

import * as tf from '@tensorflow/tfjs';

import { nativeAddon } from '../../src/native/binding';
import { sgdMomentumComposite, sgdMomentumStep } from '../../src/ops/sgd_momentum';
import { FusedMomentumOptimizer } from '../../src/train/optimizers';
import { NATIVE, onBackend, REFERENCE, requirePactCpu } from '../helpers/backends';
import { expectClose } from '../helpers/compare';
import { freshRng, type Rng } from '../helpers/random';

const EXACT = { atol: 0, rtol: 0 };

function randomCase(rng: Rng): { shape: number[]; value: Float32Array; acc: Float32Array; grad: Float32Array } {
  const shape = Array.from({ length: rng.int(0, 4) }, () => rng.int(0, 9));
  const n = tf.util.sizeFromShape(shape);
  return { shape, value: rng.normal(n), acc: rng.normal(n), grad: rng.normal(n) };
}

describe('sgdMomentumStep and FusedMomentumOptimizer', () => {
  before(requirePactCpu);

  it('equals MomentumOptimizer bit for bit on pact-cpu, and a float64 reference to rounding', () => {
    const rng = freshRng();
    for (let trial = 0; trial < 12; ++trial) {
      // A long array first, past the kernel's threading threshold.
      const c = trial === 0 ? { shape: [300_001], ...bigArrays(rng, 300_001) } : randomCase(rng);
      const attrs = { learningRate: rng.uniform(1, 1e-4, 0.5)[0], momentum: rng.uniform(1, 0, 0.99)[0] };
      const label = `seed ${rng.seed} trial ${trial} shape [${c.shape}] ${JSON.stringify(attrs)}`;
      const tensors = () => [c.value, c.acc, c.grad].map((v) => tf.tensor(v, c.shape, 'float32'));
      const expected = onBackend(REFERENCE, () => {
        const [v, a, g] = tensors();
        return sgdMomentumComposite(v, a, g, attrs);
      });
      const actual = onBackend(NATIVE, () => {
        const [v, a, g] = tensors();
        return sgdMomentumStep(v, a, g, attrs);
      });
      expectClose(actual[0], expected[0], EXACT, `${label}: value`);
      expectClose(actual[1], expected[1], EXACT, `${label}: accumulation`);
      const lr = Math.fround(attrs.learningRate),
        m = Math.fround(attrs.momentum);
      const acc64 = Float64Array.from(c.acc, (a, i) => a * m + c.grad[i]);
      const value64 = Float64Array.from(c.value, (v, i) => v - lr * acc64[i]);
      expectClose(actual[1], acc64, { atol: 1e-6, rtol: 1e-6 }, `${label}: accumulation vs float64`);
      expectClose(actual[0], value64, { atol: 1e-6, rtol: 1e-6 }, `${label}: value vs float64`);
    }
  });

  it('trains variables exactly as tf.train.momentum does, with the same checkpointed slots', async () => {
    const rng = freshRng();
    const shapes = [[3, 3, 4, 5], [5], [7, 2]];
    const initial = shapes.map((s) => rng.normal(tf.util.sizeFromShape(s)));
    const grads = [0, 1, 2].map(() => shapes.map((s) => rng.normal(tf.util.sizeFromShape(s))));
    const run = async (backend: string, make: () => tf.MomentumOptimizer) => {
      const previous = tf.getBackend();
      tf.setBackend(backend);
      try {
        const vars = shapes.map((s, i) =>
          tf.variable(tf.tensor(initial[i], s), true, `sgd_${backend}_${i}_${rng.seed}`),
        );
        const opt = make();
        for (const step of grads) {
          tf.tidy(() =>
            opt.applyGradients(vars.map((v, i) => ({ name: v.name, tensor: tf.tensor(step[i], shapes[i]) }))),
          );
        }
        opt.setLearningRate(0.03);
        tf.tidy(() =>
          opt.applyGradients(vars.map((v, i) => ({ name: v.name, tensor: tf.tensor(grads[0][i], shapes[i]) }))),
        );
        const weights = await opt.getWeights();
        const out = {
          values: vars.map((v) => Float32Array.from(v.dataSync())),
          slots: weights.map((w) => [w.name.replace(`_${backend}_`, '_'), Array.from(w.tensor.dataSync())]),
        };
        opt.dispose();
        tf.dispose(vars);
        return out;
      } finally {
        tf.setBackend(previous);
      }
    };
    // tfjs' own optimizer leaves a few tensors behind (getWeights' iteration count, the learning-rate scalar that
    // MomentumOptimizer.dispose forgets): the fused one may leave those and no more.
    let before = tf.memory().numTensors;
    const reference = await run(REFERENCE, () => tf.train.momentum(0.1, 0.9));
    const referenceLeft = tf.memory().numTensors - before;
    for (const backend of [REFERENCE, NATIVE]) {
      before = tf.memory().numTensors;
      const fused = await run(backend, () => new FusedMomentumOptimizer(0.1, 0.9));
      assert.equal(tf.memory().numTensors - before, referenceLeft, `${backend}: tensors left behind`);
      fused.values.forEach((v, i) =>
        expectClose(v, reference.values[i], EXACT, `seed ${rng.seed} ${backend} var ${i}`),
      );
      assert.deepEqual(fused.slots, reference.slots, `seed ${rng.seed} ${backend}: slots`);
    }
  });

  it('refuses bad input with errors naming the argument', () => {
    const v = tf.zeros([2, 3]);
    const attrs = { learningRate: 0.1, momentum: 0.9 };
    assert.throws(
      () => sgdMomentumStep(v, tf.zeros([3, 2]), v, attrs),
      /accumulation has shape \[3,2\], value \[2,3\]/,
    );
    assert.throws(() => sgdMomentumStep(v, v, tf.zeros([2, 3], 'int32'), attrs), /gradient must be float32/);
    assert.throws(() => sgdMomentumStep(v, v, v, { ...attrs, momentum: NaN }), /momentum must be a finite number/);
    const native = nativeAddon()!;
    const a = new Float32Array(4);
    assert.throws(
      () => native.sgdMomentum(a, a, new Float32Array(3), 0.1, 0.9, new Float32Array(4), new Float32Array(4)),
      /sgdMomentum: gradient must have 4 elements, got 3/,
    );
    assert.throws(
      () => native.sgdMomentum(a, a, a, Infinity, 0.9, new Float32Array(4), new Float32Array(4)),
      /sgdMomentum: learningRate and momentum must be finite/,
    );
    assert.throws(
      () => native.sgdMomentum(a, a, a, 0.1, 0.9, a, new Float32Array(4)),
      /sgdMomentum: valueOut must not overlap value/,
    );
    tf.dispose(v);
  });
});

function bigArrays(rng: Rng, n: number): { value: Float32Array; acc: Float32Array; grad: Float32Array } {
  return { value: rng.normal(n), acc: rng.normal(n), grad: rng.normal(n) };
}
