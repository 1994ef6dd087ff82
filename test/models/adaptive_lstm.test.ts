import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import * as tf from '@tensorflow/tfjs';

import { PACT_CPU, PACT_HALTING_STEP, pactCpuStatus, type PactCpuBackend } from '../../src';
import { ParityGenerator, sequenceBatchAt } from '../../src/data/sequence_tasks';
import { AdaptiveLstm } from '../../src/models/adaptive_lstm';
import type { AdaptiveMode } from '../../src/ops/adaptive_block';
import { SequenceTask, sequenceLogLikelihood } from '../../src/train/sequence_task';
import { train } from '../../src/train/trainer';
import { expectClose } from '../helpers/compare';
import { freshRng, Rng } from '../helpers/random';

const MODES: AdaptiveMode[] = ['relaxed', 'discrete', 'thresholded', 'act'];

function randomInput(rng: Rng, shape: [number, number, number]): tf.Tensor3D {
  return tf.tensor3d(rng.uniform(shape[0] * shape[1] * shape[2], -1, 1), shape);
}

/** Sets every element of a variable to random values in [-scale, scale]. */
function randomise(v: tf.Variable, rng: Rng, scale: number): void {
  tf.tidy(() => v.assign(tf.tensor(rng.uniform(v.size, -scale, scale), v.shape)));
}

describe('AdaptiveLstm', () => {
  it('returns logits [B,T,out], ponder and iterations [B,T] in every mode, log q(z) in discrete mode', () => {
    const rng = freshRng();
    const [B, T, D, H, out, L] = [
      rng.int(1, 4),
      rng.int(1, 3),
      rng.int(1, 5),
      rng.int(2, 6),
      rng.int(1, 3),
      rng.int(2, 5),
    ];
    const model = new AdaptiveLstm({ inputSize: D, hiddenSize: H, outputSize: out, maxIterations: L, seed: rng.seed });
    randomise(model.haltKernel, rng, 2);
    const x = randomInput(rng, [B, T, D]);
    const before = tf.memory().numTensors;
    for (const mode of MODES) {
      const label = `seed ${rng.seed} ${mode}`;
      tf.tidy(() => {
        const o = model.forward(x, { mode, seed: 7 });
        assert.deepEqual(o.logits.shape, [B, T, out], label);
        assert.deepEqual(o.ponder.shape, [B, T], label);
        assert.deepEqual(o.iterations.shape, [B, T], label);
        assert.equal(o.logProb !== undefined, mode === 'discrete', label);
        if (o.logProb) {
          assert.deepEqual(o.logProb.shape, [B], label);
          assert.ok(
            Array.from(o.logProb.dataSync()).every((v) => v <= 1e-6),
            `${label}: log q(z) <= 0`,
          );
        }
        const its = Array.from(o.iterations.dataSync());
        const ponder = Array.from(o.ponder.dataSync());
        assert.ok(
          its.every((n) => Number.isInteger(n) && n >= 1 && n <= L),
          `${label}: iterations ${its}`,
        );
        if (mode === 'relaxed') {
          assert.ok(
            ponder.every((n) => n >= 1 - 1e-5 && n <= L + 1e-5),
            `${label}: N ${ponder}`,
          );
        } else if (mode === 'act') {
          // ρ = N + R with the remainder R in (0, 1].
          ponder.forEach((r, i) => assert.ok(r > its[i] && r <= its[i] + 1 + 1e-5, `${label}: ρ ${r}, N ${its[i]}`));
        }
        assert.ok(Array.from(o.logits.dataSync()).every(Number.isFinite), label);
      });
    }
    assert.equal(tf.memory().numTensors, before, `seed ${rng.seed}: forward leaks tensors`);
    x.dispose();
    model.dispose();
  });

  it('feeds the first-iteration flag [l = 1] to the cell', () => {
    const rng = freshRng();
    const [B, D, H] = [3, 4, 5];
    const model = new AdaptiveLstm({ inputSize: D, hiddenSize: H, outputSize: 2, maxIterations: 3, seed: rng.seed });
    const x = randomInput(rng, [B, 1, D]);
    const u = tf.tensor2d(rng.uniform(B * 2 * H), [B, 2 * H]);
    const cellAt = (first: boolean) =>
      tf.tidy(() => {
        const xk = tf.reshape(x, [B, D]);
        const projection = {
          i: tf.add(tf.matMul(xk, model.inputKernel.i), model.bias.i) as tf.Tensor2D,
          f: tf.add(tf.matMul(xk, model.inputKernel.f), model.bias.f) as tf.Tensor2D,
          g: tf.add(tf.matMul(xk, model.inputKernel.g), model.bias.g) as tf.Tensor2D,
          o: tf.add(tf.matMul(xk, model.inputKernel.o), model.bias.o) as tf.Tensor2D,
        };
        return Array.from(model.cell(projection, first, u as tf.Tensor2D).dataSync());
      });
    const differ = (a: number[], b: number[]) => a.some((v, i) => Math.abs(v - b[i]) > 1e-4);
    assert.ok(differ(cellAt(true), cellAt(false)), `seed ${rng.seed}: the flag changes nothing`);
    // Its effect is through the flag's weights alone: with them at zero the first and later iterations agree.
    const forwardOutput = () => tf.tidy(() => Array.from(model.forward(x, { mode: 'thresholded' }).logits.dataSync()));
    const withFlag = forwardOutput();
    for (const g of ['i', 'f', 'g', 'o'] as const)
      tf.tidy(() => model.flagKernel[g].assign(tf.zerosLike(model.flagKernel[g])));
    expectClose(cellAt(true), cellAt(false), { atol: 0, rtol: 0 }, `seed ${rng.seed}: flag weights zero`);
    assert.ok(differ(forwardOutput(), withFlag), `seed ${rng.seed}: the flag does not reach the block's output`);
    tf.dispose([x, u]);
    model.dispose();
  });

  it('stops iterating a timestep once every sequence has halted (discrete, thresholded, ACT)', () => {
    const rng = freshRng();
    const [B, T, D, H, L] = [6, 3, 4, 4, 6];
    const x = randomInput(rng, [B, T, D]);
    for (const mode of ['discrete', 'thresholded', 'act'] as const) {
      for (const [haltBias, calls] of [
        [30, T],
        [-30, T * L],
      ]) {
        const model = new AdaptiveLstm({ inputSize: D, hiddenSize: H, outputSize: 1, maxIterations: L, haltBias });
        tf.tidy(() => {
          model.forward(x, { mode, seed: 1 });
        });
        assert.equal(model.cellCalls, calls, `${mode}, halting bias ${haltBias}`);
        model.dispose();
      }
      // Input-dependent halting: each timestep runs exactly as long as its slowest sequence.
      const model = new AdaptiveLstm({ inputSize: D, hiddenSize: H, outputSize: 1, maxIterations: L, seed: rng.seed });
      randomise(model.haltKernel, rng, 3);
      const iterations = tf.tidy(() => model.forward(x, { mode, seed: 2 }).iterations.arraySync());
      const slowest = Array.from({ length: T }, (_, t) => Math.max(...iterations.map((row) => row[t])));
      assert.equal(
        model.cellCalls,
        slowest.reduce((a, b) => a + b, 0),
        `seed ${rng.seed} ${mode}: ${iterations}`,
      );
      model.dispose();
    }
    x.dispose();
  });

  it('has the gradient of central differences in relaxed mode (fixed noise)', () => {
    const rng = freshRng();
    const [B, T, D, H, L] = [2, 2, 2, 2, 3];
    const model = new AdaptiveLstm({ inputSize: D, hiddenSize: H, outputSize: 2, maxIterations: L, seed: rng.seed });
    randomise(model.haltKernel, rng, 1);
    const x = randomInput(rng, [B, T, D]);
    const noise = tf.tensor3d(rng.uniform(B * T * (L - 1), 0.05, 0.95), [B, T, L - 1]);
    const weights = tf.tensor3d(rng.uniform(B * T * 2), [B, T, 2]);
    const loss = () =>
      tf.tidy(() => {
        const o = model.forward(x, { mode: 'relaxed', temperature: 0.7, noise });
        return tf.add(tf.sum(tf.mul(o.logits, weights)), tf.mul(tf.sum(o.ponder), 0.3)) as tf.Scalar;
      });
    const checked = [
      model.recurrentKernel.f,
      model.flagKernel.i,
      model.inputKernel.g,
      model.haltKernel,
      model.haltBias,
    ];
    const { grads } = tf.variableGrads(loss, checked);
    const eps = 5e-3;
    for (const v of checked) {
      const analytic = Array.from(grads[v.name].dataSync());
      const values = Float32Array.from(v.dataSync());
      const numeric = Array.from(values, (_, i) => {
        const at = (delta: number) => {
          const shifted = Float32Array.from(values);
          shifted[i] += delta;
          tf.tidy(() => v.assign(tf.tensor(shifted, v.shape)));
          const value = loss();
          const out = value.dataSync()[0];
          value.dispose();
          return out;
        };
        const g = (at(eps) - at(-eps)) / (2 * eps);
        tf.tidy(() => v.assign(tf.tensor(values, v.shape)));
        return g;
      });
      expectClose(analytic, numeric, { atol: 3e-3, rtol: 3e-2 }, `seed ${rng.seed}: d loss / d ${v.name}`);
    }
    tf.dispose([x, noise, weights, grads]);
    model.dispose();
  });

  it('rejects bad configurations and inputs, naming the argument', () => {
    assert.throws(
      () => new AdaptiveLstm({ inputSize: 2, hiddenSize: 3, outputSize: 1, maxIterations: 1 }),
      /AdaptiveLstm: maxIterations must be an integer >= 2, got 1/,
    );
    assert.throws(
      () => new AdaptiveLstm({ inputSize: 0, hiddenSize: 3, outputSize: 1, maxIterations: 3 }),
      /inputSize must be an integer >= 1, got 0/,
    );
    const model = new AdaptiveLstm({ inputSize: 2, hiddenSize: 3, outputSize: 1, maxIterations: 3 });
    assert.throws(
      () => model.forward(tf.zeros([4, 2, 5]) as tf.Tensor3D, { mode: 'relaxed' }),
      /AdaptiveLstm.forward: x must be float32 \[batch, T, 2\], got float32 \[4,2,5\]/,
    );
    assert.throws(
      () =>
        model.forward(tf.zeros([4, 2, 2]) as tf.Tensor3D, {
          mode: 'relaxed',
          noise: tf.zeros([4, 2, 3]) as tf.Tensor3D,
        }),
      /noise must have shape \[4, 2, 2\]/,
    );
    assert.throws(
      () =>
        tf.tidy(() => {
          model.forward(tf.zeros([4, 2, 2]) as tf.Tensor3D, { mode: 'fast' as 'relaxed' });
        }),
      /mode must be one of/,
    );
    model.dispose();
  });
});

describe('SequenceTask', () => {
  const tinyParity = (training: 'relaxed' | 'reinforce' | 'act', seed: number) => {
    const gen = new ParityGenerator({ bits: 2 });
    const model = new AdaptiveLstm({ inputSize: 2, hiddenSize: 16, outputSize: 1, maxIterations: 3, seed });
    return new SequenceTask(model, gen, { training, tau: 1e-3, batchSize: 32, seed, evalBatches: 2 });
  };

  it("draws unrelated weights for consecutive seeds (no gate shares another seed's)", () => {
    const build = (seed: number) =>
      new AdaptiveLstm({ inputSize: 3, hiddenSize: 3, outputSize: 3, maxIterations: 3, seed });
    const [a, b] = [build(1), build(2)];
    // The drawn weights (the biases are constants, equal for every seed).
    const weights = (m: AdaptiveLstm) =>
      m
        .variables()
        .map((v) => Array.from(v.dataSync()))
        .filter((w) => new Set(w).size > 1)
        .map((w) => w.join());
    const first = new Set(weights(a));
    assert.ok(first.size >= 13, `${first.size} drawn weights`);
    assert.equal(weights(b).filter((w) => first.has(w)).length, 0);
    [a, b].forEach((m) => m.dispose());
  });

  it('rejects an empty test set (evalBatches < 1), a missing seed, a negative rate and an empty sequence', () => {
    const gen = new ParityGenerator({ bits: 2 });
    const model = new AdaptiveLstm({ inputSize: 2, hiddenSize: 4, outputSize: 1, maxIterations: 3, seed: 1 });
    const base = { training: 'relaxed' as const, tau: 1e-3, batchSize: 8, seed: 1 };
    assert.throws(() => new SequenceTask(model, gen, { ...base, seed: undefined as never }), /seed must be an integer/);
    assert.throws(
      () => new SequenceTask(model, gen, { ...base, learningRate: -1 }),
      /SequenceTask: learningRate must be a finite number >= 0, got -1/,
    );
    assert.throws(
      () => model.forward(tf.zeros([2, 0, 2]) as tf.Tensor3D, { mode: 'thresholded' }),
      /AdaptiveLstm.forward: x must hold at least one timestep, got T = 0/,
    );
    for (const evalBatches of [0, -1, 1.5]) {
      assert.throws(
        () => new SequenceTask(model, gen, { training: 'relaxed', tau: 1e-3, batchSize: 8, seed: 1, evalBatches }),
        /SequenceTask: evalBatches must be a positive integer/,
      );
    }
    model.dispose();
  });

  for (const training of ['relaxed', 'act'] as const) {
    it(`lowers the loss on a tiny parity problem (${training})`, () => {
      const rng = freshRng();
      const task = tinyParity(training, rng.seed);
      const heldOut = sequenceBatchAt(task.generator, 128, rng.seed + 1, 0);
      const mode = training === 'act' ? 'act' : 'thresholded';
      const nll = () =>
        tf.tidy(
          () =>
            -tf
              .mean(
                sequenceLogLikelihood(task.generator, task.model.forward(heldOut.x, { mode }).logits, heldOut.targets),
              )
              .dataSync()[0],
        );
      const before = nll();
      for (let step = 0; step < 60; ++step) task.trainStep(step, 0.03);
      const after = nll();
      // Chance is log 2 ≈ 0.69; 100 steps solve this 2-bit problem (nll < 0.01 for the seeds we tried).
      assert.ok(after < 0.5 * before, `seed ${rng.seed}: held-out nll ${before} -> ${after}`);
      tf.dispose([heldOut.x, heldOut.targets]);
      task.dispose();
      task.model.dispose();
    });
  }

  it('trains and evaluates on pact-cpu natively: the halting step kernel, no fallback', function () {
    if (!pactCpuStatus.registered) this.skip();
    const previous = tf.getBackend();
    tf.setBackend(PACT_CPU);
    try {
      assert.ok(tf.getKernel(PACT_HALTING_STEP, PACT_CPU) !== undefined, 'PactHaltingStep is not registered');
      const backend = tf.backend() as PactCpuBackend;
      backend.resetFallbackCounts();
      for (const training of ['relaxed', 'reinforce', 'act'] as const) {
        const task = tinyParity(training, 1);
        task.trainStep(0, 0.01);
        task.evaluate();
        task.dispose();
        task.model.dispose();
      }
      assert.deepEqual(backend.fallbackCounts(), {});
    } finally {
      tf.setBackend(previous);
    }
  });

  it('resumes exactly from a checkpoint (REINFORCE: Adam slots and the baseline)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pact-lstm-'));
    const seed = freshRng().seed;
    const run = async (runDir: string, totalSteps: number, resume: boolean, task: SequenceTask) => {
      await train(task, {
        totalSteps,
        schedule: { learningRate: 0.01, milestones: [], decay: 10 },
        runDir,
        checkpointEvery: 2,
        evalEvery: 100,
        config: {},
        resume,
      });
      return task.variables().map((v) => Array.from(v.dataSync()));
    };
    try {
      const straight = tinyParity('reinforce', seed);
      const expected = await run(path.join(dir, 'a'), 4, false, straight);
      const first = tinyParity('reinforce', seed);
      await run(path.join(dir, 'b'), 2, false, first);
      const resumed = tinyParity('reinforce', seed);
      const actual = await run(path.join(dir, 'b'), 4, true, resumed);
      assert.equal(resumed.baseline.value, straight.baseline.value, `seed ${seed}: REINFORCE baseline`);
      actual.forEach((a, i) => expectClose(a, expected[i], { atol: 0, rtol: 0 }, `seed ${seed}: variable ${i}`));
      for (const t of [straight, first, resumed]) {
        t.dispose();
        t.model.dispose();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
