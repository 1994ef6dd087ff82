import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import * as tf from '@tensorflow/tfjs';

import { SeededRng } from '../../src/data/rng';
import {
  CHECKPOINT_FILE,
  learningRateAt,
  METRICS_FILE,
  train,
  type TrainOptions,
  type TrainTask,
} from '../../src/train/trainer';

/** Softmax regression on data drawn from (seed, step): small, but with momentum slots and a task state. */
class TinyTask implements TrainTask {
  readonly w = tf.variable(tf.randomNormal([6, 3], 0, 0.1, 'float32', 7));
  readonly b = tf.variable(tf.zeros([3]));
  readonly optimizer = tf.train.momentum(0.1, 0.9);
  emaLoss = 0;
  calls = 0;

  constructor(private readonly failAtStep = -1) {}

  variables(): tf.Variable[] {
    return [this.w, this.b];
  }

  trainStep(step: number, learningRate: number) {
    if (step === this.failAtStep) throw new Error('killed');
    this.calls += 1;
    (this.optimizer as tf.MomentumOptimizer).setLearningRate(learningRate);
    const rng = new SeededRng(1000 + step);
    const x = tf.tensor2d(
      Float32Array.from({ length: 8 * 6 }, () => rng.next()),
      [8, 6],
    );
    const y = tf.tidy(() =>
      tf.oneHot(
        tf.tensor1d(
          Int32Array.from({ length: 8 }, () => rng.below(3)),
          'int32',
        ),
        3,
      ),
    );
    const loss = this.optimizer.minimize(() => tf.losses.softmaxCrossEntropy(y, x.matMul(this.w).add(this.b)), true)!;
    const value = loss.dataSync()[0];
    tf.dispose([x, y, loss]);
    this.emaLoss = 0.9 * this.emaLoss + 0.1 * value;
    return { metrics: { loss: value }, examples: 8 };
  }

  evaluate() {
    return { norm: tf.tidy(() => this.w.norm().dataSync()[0]) };
  }

  saveState() {
    return { emaLoss: this.emaLoss };
  }

  loadState(state: Record<string, number>) {
    this.emaLoss = state.emaLoss;
  }

  dispose() {
    tf.dispose([this.w, this.b]);
    this.optimizer.dispose();
  }
}

/** TinyTask plus one variable the checkpoint does not hold: a model built with another configuration. */
class ExtraVariableTask extends TinyTask {
  readonly extra = tf.variable(tf.zeros([2]));

  override variables(): tf.Variable[] {
    return [...super.variables(), this.extra];
  }

  override dispose() {
    super.dispose();
    this.extra.dispose();
  }
}

/** TinyTask whose weight matrix has 4 columns instead of 3: as many variables as the checkpoint, one reshaped. */
class WiderTask extends TinyTask {
  readonly wide = tf.variable(tf.zeros([6, 4]));

  override variables(): tf.Variable[] {
    return [this.wide, this.b];
  }

  override dispose() {
    super.dispose();
    this.wide.dispose();
  }
}

/** TinyTask whose bias has 4 entries: the first variable matches the checkpoint, the second does not. */
class WiderBiasTask extends TinyTask {
  readonly wideB = tf.variable(tf.zeros([4]));

  override variables(): tf.Variable[] {
    return [this.w, this.wideB];
  }

  override dispose() {
    super.dispose();
    this.wideB.dispose();
  }
}

describe('trainer', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pact-train-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const options = (runDir: string, resume: boolean): TrainOptions => ({
    totalSteps: 12,
    schedule: { learningRate: 0.1, milestones: [0.5, 0.75], decay: 10 },
    runDir,
    checkpointEvery: 4,
    evalEvery: 6,
    config: { test: true },
    resume,
  });

  it('steps the learning rate down at the milestones', () => {
    const s = { learningRate: 0.1, milestones: [0.5, 0.75], decay: 10 };
    assert.deepEqual(
      [0, 49, 50, 74, 75, 99].map((k) => learningRateAt(s, k, 100)),
      [0.1, 0.1, 0.01, 0.01, 0.001, 0.001],
    );
  });

  it('resumed after a kill, ends exactly where an uninterrupted run ends', async () => {
    const whole = new TinyTask();
    await train(whole, options(path.join(dir, 'a'), false));

    const killed = new TinyTask(9);
    await assert.rejects(train(killed, options(path.join(dir, 'b'), false)), /killed/);
    const resumed = new TinyTask();
    await train(resumed, options(path.join(dir, 'b'), true));
    assert.equal(resumed.calls, 4, 'resume continues from the checkpoint at step 8');

    assert.deepEqual(resumed.w.dataSync(), whole.w.dataSync());
    assert.deepEqual(resumed.b.dataSync(), whole.b.dataSync());
    assert.equal(resumed.emaLoss, whole.emaLoss);
    const lines = (run: string) =>
      fs
        .readFileSync(path.join(dir, run, METRICS_FILE), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
    assert.deepEqual(lines('b'), lines('a'), 'the metrics log has no duplicated steps');
    [whole, killed, resumed].forEach((t) => t.dispose());
  });

  // A checkpoint resumed into a model it was not written for must stop the run before a single step, with a message
  // naming the file and the mismatch. Without the checks, the extra variable would read an array the checkpoint
  // lacks (a TypeError) and the reshaped one would fail inside tfjs's assign, neither naming the file or variable.
  it('refuses to resume into a model with another number of variables or another shape', async () => {
    const saved = new TinyTask();
    const run = path.join(dir, 'r');
    await train(saved, { ...options(run, false), totalSteps: 4 });
    const checkpoint = fs.readFileSync(path.join(run, CHECKPOINT_FILE));

    const extra = new ExtraVariableTask();
    await assert.rejects(
      train(extra, options(run, true)),
      /resume: .*checkpoint\.bin holds 2 variables but the model has 3 \(was it written with another model/,
    );
    assert.equal(extra.calls, 0, 'no step ran');

    const wider = new WiderTask();
    await assert.rejects(
      train(wider, options(run, true)),
      new RegExp(
        `resume: .*checkpoint\\.bin variable ${saved.w.name} has shape \\[6,3\\] \\(float32\\), model has \\[6,4\\]`,
      ),
    );
    assert.equal(wider.calls, 0, 'no step ran');

    // Every variable is checked before any is assigned: w (which matches) keeps its own values.
    const widerBias = new WiderBiasTask();
    const before = widerBias.w.dataSync().slice();
    await assert.rejects(
      train(widerBias, options(run, true)),
      /variable .* has shape \[3\] \(float32\), model has \[4\]/,
    );
    assert.deepEqual(widerBias.w.dataSync(), before, 'a refused resume leaves the model as it was');

    assert.deepEqual(fs.readFileSync(path.join(run, CHECKPOINT_FILE)), checkpoint, 'the checkpoint is untouched');
    [saved, extra, wider, widerBias].forEach((t) => t.dispose());
  });

  it('keeps tf.memory() flat across steps', async () => {
    const task = new TinyTask();
    await train(task, { ...options(path.join(dir, 'm'), false), totalSteps: 3 });
    const before = tf.memory().numTensors;
    await train(task, { ...options(path.join(dir, 'm2'), false), totalSteps: 9 });
    assert.equal(tf.memory().numTensors, before);
    task.dispose();
  });
});
