/**
 * The pre-activation ResNet and its training step: equal loss and gradients on tfjs-backend-cpu and pact-cpu,
 * flat memory over training steps, the running statistics, the parameter count of ResNet-32, bad input.
 */
import { strict as assert } from 'assert';

import * as tf from '@tensorflow/tfjs';

import { cifarResNet, PactCpuBackend, PreActResNet, SgdTrainer, softmaxCrossEntropy } from '../../src';
import { NATIVE, REFERENCE, requirePactCpu } from '../helpers/backends';
import { expectClose } from '../helpers/compare';
import { freshRng } from '../helpers/random';

/** Runs fn with `name` as the backend, then restores the previous one. */
function withBackend<T>(name: string, fn: () => T): T {
  const previous = tf.getBackend();
  tf.setBackend(name);
  try {
    return fn();
  } finally {
    tf.setBackend(previous);
  }
}

describe('pre-activation ResNet', () => {
  before(() => requirePactCpu());

  it('has the loss and gradients of tfjs-backend-cpu on pact-cpu (n = 1, batch 3, 8x8)', () => {
    const rng = freshRng();
    const images = rng.normal(3 * 8 * 8 * 3);
    const labels = Int32Array.from({ length: 3 }, () => rng.int(0, 9));
    const seed = rng.int(1, 1000);
    const run = (backend: string) =>
      withBackend(backend, () => {
        const model = cifarResNet(1, 10, seed);
        const trainer = new SgdTrainer(model);
        const x = tf.tensor4d(images, [3, 8, 8, 3]);
        const { loss, grads, logits } = trainer.gradients(x, tf.tensor1d(labels, 'int32'));
        const values = model.trainableVariables().map((v) => Float32Array.from(grads[v.name].dataSync()));
        const out = { loss: loss.dataSync()[0], values };
        tf.dispose([x, loss, grads, logits]);
        trainer.dispose();
        model.dispose();
        return out;
      });
    const native = run(NATIVE);
    const reference = run(REFERENCE);
    const label = `seed ${rng.seed}`;
    expectClose([native.loss], [reference.loss], { atol: 1e-5, rtol: 1e-5 }, `${label} loss`);
    assert.equal(native.values.length, reference.values.length);
    native.values.forEach((g, i) => {
      const scale = Math.max(...reference.values[i].map(Math.abs));
      expectClose(g, reference.values[i], { atol: 1e-4 * scale + 1e-6, rtol: 1e-3 }, `${label} gradient ${i}`);
    });
  });

  it('keeps tf.memory() flat over 5 training steps on pact-cpu, and the loss falls', () => {
    const rng = freshRng();
    withBackend(NATIVE, () => {
      const model = cifarResNet(1, 4, rng.int(1, 1000));
      const trainer = new SgdTrainer(model, { learningRate: 0.05 });
      const x = tf.tensor4d(rng.normal(4 * 8 * 8 * 3), [4, 8, 8, 3]);
      const y = tf.tensor1d([0, 1, 2, 3], 'int32');
      const losses = [trainer.step(x, y).loss];
      const after = tf.memory();
      for (let i = 0; i < 4; ++i) {
        const { loss, correct } = trainer.step(x, y);
        assert.ok(Number.isInteger(correct) && correct >= 0 && correct <= 4, `correct ${correct}`);
        losses.push(loss);
        assert.equal(tf.memory().numTensors, after.numTensors, `seed ${rng.seed} step ${i + 2} numTensors`);
        assert.equal(tf.memory().numBytes, after.numBytes, `seed ${rng.seed} step ${i + 2} numBytes`);
      }
      assert.ok(losses[4] < losses[0], `seed ${rng.seed}: loss did not fall: ${losses}`);
      tf.dispose([x, y]);
      trainer.dispose();
      model.dispose();
    });
  });

  it('runs a ResNet-32 training step and evaluation on pact-cpu with every kernel native (no fallback)', () => {
    const rng = freshRng();
    withBackend(NATIVE, () => {
      const backend = tf.backend() as PactCpuBackend;
      const model = cifarResNet(5, 10, rng.int(1, 1000));
      const trainer = new SgdTrainer(model, { learningRate: 0.05, momentum: 0.9, weightDecay: 1e-4 });
      const x = tf.tensor4d(rng.normal(2 * 32 * 32 * 3), [2, 32, 32, 3]);
      const y = tf.tensor1d([rng.int(0, 9), rng.int(0, 9)], 'int32');
      const before = { ...backend.fallbackCounts() };
      trainer.step(x, y);
      tf.tidy(() => {
        model.forward(x, { training: false }).dataSync();
      });
      assert.deepEqual(backend.fallbackCounts(), before, 'a kernel fell back to tfjs-backend-cpu');
      tf.dispose([x, y]);
      trainer.dispose();
      model.dispose();
    });
  });

  it('draws the same weights for the same seed and unrelated ones for consecutive seeds (no layer shared)', () => {
    const build = (seed: number) => new PreActResNet({ unitsPerStage: 1, numClasses: 3, widths: [2, 2, 2], seed });
    const [a, again, b] = [build(1), build(1), build(2)];
    const weights = (m: PreActResNet) => m.trainableVariables().map((v) => Array.from(v.dataSync()).join());
    assert.deepEqual(weights(again), weights(a), 'same seed, same weights');
    // Before the seeds were hashed, seed 2's layer i was seed 1's layer i + 1 wherever the shapes matched.
    const first = new Set(weights(a).filter((w) => !/^(0,)*0$|^(1,)*1$/.test(w)));
    const shared = weights(b).filter((w) => first.has(w));
    assert.equal(shared.length, 0, `${shared.length} weight tensors of seed 2 are seed 1's`);
    [a, again, b].forEach((m) => m.dispose());
  });

  it('updates the running statistics in training and uses them in evaluation', () => {
    const rng = freshRng();
    withBackend(NATIVE, () => {
      const model = cifarResNet(1, 10, rng.int(1, 1000));
      const x = tf.tensor4d(
        rng.normal(2 * 8 * 8 * 3).map((v) => 2 + v),
        [2, 8, 8, 3],
      );
      const stem = tf.conv2d(x, model.stem, 1, 'same');
      const { mean, variance } = tf.moments(stem, [0, 1, 2]);
      const count = stem.size / stem.shape[3];
      tf.dispose(model.forward(x, { training: true }));
      const bn = model.stages[0][0].bn1;
      const tol = { atol: 1e-5, rtol: 1e-4 };
      expectClose(bn.movingMean.dataSync(), tf.mul(mean, 0.1).dataSync(), tol, `seed ${rng.seed} movingMean`);
      const expectedVariance = tf.add(0.9, tf.mul(variance, (0.1 * count) / (count - 1)));
      expectClose(bn.movingVariance.dataSync(), expectedVariance.dataSync(), tol, `seed ${rng.seed} movingVariance`);
      // Evaluation is deterministic per image: a batch gives each image's logits alone.
      const both = model.forward(x, { training: false });
      const first = model.forward(tf.slice(x, [0, 0, 0, 0], [1, 8, 8, 3]), { training: false });
      expectClose(first.dataSync(), tf.slice(both, [0, 0], [1, 10]).dataSync(), tol, `seed ${rng.seed} eval`);
      tf.dispose([x, stem, mean, variance, expectedVariance, both, first]);
      model.dispose();
    });
  });

  it('builds ResNet-32 with 466,714 parameters (464,154 of SACT plus two 1x1 projections) and 32x32 -> logits', () => {
    const model = cifarResNet(5, 10);
    const count = model.trainableVariables().reduce((n, v) => n + v.size, 0);
    assert.equal(count, 464154 + 16 * 32 + 32 * 64);
    assert.equal(model.stages.flat().length, 15);
    assert.deepEqual(
      model.stages.map((s) => s.map((u) => u.stride)),
      [
        [1, 1, 1, 1, 1],
        [2, 1, 1, 1, 1],
        [2, 1, 1, 1, 1],
      ],
    );
    const logits = model.forward(tf.zeros([1, 32, 32, 3]) as tf.Tensor4D, { training: false });
    assert.deepEqual(logits.shape, [1, 10]);
    const u = tf.zeros([1, 32, 32, 16]) as tf.Tensor4D;
    const [residual, shortcut] = tf.tidy(() => {
      const branches = model.residualBranch(model.stages[1][0], u, { training: true });
      return [branches.residual, branches.shortcut];
    });
    assert.deepEqual(residual.shape, [1, 16, 16, 32]);
    assert.deepEqual(shortcut.shape, [1, 16, 16, 32]);
    tf.dispose([u, logits, residual, shortcut]);
    model.dispose();
  });

  it('rejects bad input with an Error naming the argument', () => {
    assert.throws(
      () => new PreActResNet({ unitsPerStage: 0, numClasses: 10 }),
      /unitsPerStage must be a positive integer/,
    );
    assert.throws(
      () => new PreActResNet({ unitsPerStage: 1, numClasses: 1.5 }),
      /numClasses must be a positive integer/,
    );
    const base = { unitsPerStage: 1, numClasses: 3 };
    for (const [config, expected] of [
      [{ seed: 0 }, /seed must be an integer in \[1, 2\^31\], got 0/],
      [{ seed: 1.5 }, /seed must be an integer/],
      [{ bnMomentum: -1 }, /bnMomentum must be a number in \[0, 1\), got -1/],
      [{ bnEpsilon: 0 }, /bnEpsilon must be a positive finite number, got 0/],
      [{ inputChannels: 0 }, /inputChannels must be a positive integer, got 0/],
      [{ widths: [0, 2, 2] }, /widths must be three positive integers \(the stages\), got \[0,2,2\]/],
      [{ widths: [2, 2] }, /widths must be three positive integers/],
    ] as Array<[object, RegExp]>) {
      assert.throws(() => new PreActResNet({ ...base, ...config }), expected, JSON.stringify(config));
    }
    // An explicit undefined takes the default.
    new PreActResNet({ ...base, inputChannels: undefined, widths: undefined, seed: undefined }).dispose();
    const model = cifarResNet(1, 10);
    assert.throws(
      () => model.forward(tf.zeros([1, 8, 8, 1]) as tf.Tensor4D, { training: false }),
      /x must be float32 of shape \[N, H, W, 3\], got float32 \[1,8,8,1\]/,
    );
    assert.throws(
      () => model.forward(tf.zeros([1, 8, 8, 3], 'int32') as tf.Tensor4D, { training: false }),
      /PreActResNet.forward: x must be float32 of shape \[N, H, W, 3\], got int32/,
    );
    assert.throws(
      () => model.forward(tf.zeros([1, 8, 8, 3]) as tf.Tensor4D, undefined as never),
      /PreActResNet.forward: options.training must be a boolean, got undefined/,
    );
    assert.throws(() => softmaxCrossEntropy(tf.zeros([0, 10]) as tf.Tensor2D, tf.tensor1d([], 'int32')), /empty/);
    const logits = tf.zeros([2, 10]) as tf.Tensor2D;
    assert.throws(
      () => softmaxCrossEntropy(logits, tf.tensor1d([1, 2, 3], 'int32')),
      /labels must have shape \[2\] \(one per row of the logits\), got \[3\]/,
    );
    assert.throws(() => softmaxCrossEntropy(logits, tf.tensor1d([1, 2])), /labels must be int32, got float32/);
    // Out of range, one-hot would give a row of zeros: an example with zero loss.
    for (const labels of [
      [3, 10],
      [-1, 0],
    ]) {
      assert.throws(
        () => softmaxCrossEntropy(logits, tf.tensor1d(labels, 'int32')),
        /softmaxCrossEntropy: labels must be classes in \[0, 9\]/,
      );
    }
    assert.throws(
      () => new SgdTrainer(model, {}).step(tf.zeros([2, 8, 8, 3]) as tf.Tensor4D, tf.tensor1d([7, 12], 'int32')),
      /labels must be classes in \[0, 9\]/,
    );
    assert.throws(() => new SgdTrainer(model, { learningRate: -1 }), /learningRate must be a finite number >= 0/);
    model.dispose();
  });
});
