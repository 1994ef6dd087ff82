/**
 * Whole training steps and evaluations on pact-cuda with fallbacks as errors (PACT_STRICT_NATIVE=1): the dense
 * ResNet, PSACT trained relaxed and discrete (REINFORCE) with 1×1 and 2×2 latent grouping, SACT (ACT), and the
 * adaptive LSTM trained relaxed, with REINFORCE and as ACT. Each runs one optimiser step, then evaluates every
 * mode, on the simulated device and on tfjs-backend-cpu from the same seed: the step's metrics, every variable
 * after the update and the evaluation's metrics must agree (float32 reassociation only). Device memory stays
 * flat across steps.
 *
 * REINFORCE's discrete halting draws [logit h + logit ε > 0]: a rounding difference flips a draw only when the
 * sum is within ~1e-6 of 0 (probability ~1e-3 per run over the few hundred draws here); the seed is printed.
 */
import { strict as assert } from 'assert';

import * as tf from '@tensorflow/tfjs';

import { AdaptiveLstm, PACT_CUDA, PreActResNet } from '../../src';
import { proceduralShapes } from '../../src/data/procedural';
import { sequenceGenerator } from '../../src/data/sequence_tasks';
import { buildAdaptiveTask } from '../../src/train/adaptive_task';
import { ClassifierTask } from '../../src/train/classifier_task';
import { SequenceTask, type SequenceTraining } from '../../src/train/sequence_task';
import type { TrainTask } from '../../src/train/trainer';
import { expectClose } from '../helpers/compare';
import { freshRng } from '../helpers/random';
import { usePactCudaSim } from './on_backend';

const TOL = { atol: 2e-4, rtol: 2e-3 };

interface Outcome {
  step: Record<string, number>;
  variables: Float32Array[];
  evaluation: Record<string, number>;
}

/** Builds the task on `backend`, runs one step and an evaluation, and reads everything back. */
function outcomeOn(backend: string, make: () => TrainTask): Outcome {
  const previous = tf.getBackend();
  tf.setBackend(backend);
  try {
    const task = make();
    const step = task.trainStep(1, 0.05).metrics;
    const variables = task.variables().map((v) => v.dataSync() as Float32Array);
    const evaluation = task.evaluate();
    task.variables().forEach((v) => v.dispose());
    return { step, variables, evaluation };
  } finally {
    tf.setBackend(previous);
  }
}

function expectSameMetrics(actual: Record<string, number>, expected: Record<string, number>, label: string): void {
  assert.deepEqual(Object.keys(actual).sort(), Object.keys(expected).sort(), label);
  for (const key of Object.keys(expected)) {
    expectClose([actual[key]], [expected[key]], TOL, `${label} ${key}`);
  }
}

describe('pact-cuda: training steps and evaluation of every model on the device (simulated)', function () {
  this.timeout(600000);
  const backend = usePactCudaSim(this);
  const rng = freshRng();
  const seed = rng.int(1, 1e6);
  const dataset = proceduralShapes({ size: 8, trainCount: 8, testCount: 4, seed });
  const adaptive = { seed, batchSize: 2, lr: 0.05, momentum: 0.9, weightDecay: 1e-4, evalLimit: 4 };
  const widths: [number, number, number] = [4, 4, 8];
  const image = (model: string, extra: Record<string, unknown>) => () =>
    buildAdaptiveTask({ ...adaptive, model, widths, haltBias: 0, steps: 4, haltWarmup: 0, ...extra }, dataset);
  const lstm = (training: SequenceTraining) => () => {
    const gen = sequenceGenerator('parity', { bits: 4 } as Parameters<typeof sequenceGenerator>[1]);
    const model = new AdaptiveLstm({
      inputSize: gen.inputSize,
      hiddenSize: 4,
      outputSize: gen.outputSize,
      maxIterations: 3,
      haltBias: 0,
      seed,
    });
    return new SequenceTask(model, gen, { training, tau: 0.01, batchSize: 2, seed, evalBatches: 1 });
  };
  const cases: [string, () => TrainTask][] = [
    [
      'dense ResNet',
      () =>
        new ClassifierTask(
          new PreActResNet({ unitsPerStage: 1, numClasses: dataset.numClasses, inputChannels: 3, seed, widths }),
          dataset,
          { batchSize: 2, seed, sgd: { learningRate: 0.05, momentum: 0.9, weightDecay: 1e-4 }, evalLimit: 4 },
        ),
    ],
    ['PSACT relaxed', image('psact14', { mode: 'relaxed' })],
    ['PSACT relaxed, 2x2 groups', image('psact14', { mode: 'relaxed', group: 2 })],
    ['PSACT discrete (REINFORCE)', image('psact14', { mode: 'discrete' })],
    ['PSACT discrete, 2x2 groups', image('psact14', { mode: 'discrete', group: 2 })],
    ['SACT (ACT)', image('sact14', {})],
    ['PACT-LSTM relaxed', lstm('relaxed')],
    ['PACT-LSTM REINFORCE', lstm('reinforce')],
    ['PACT-LSTM ACT', lstm('act')],
  ];

  for (const [name, make] of cases) {
    it(`${name}: one step and every evaluation mode, no host fallback, equal to tfjs-backend-cpu`, () => {
      const expected = outcomeOn('cpu', make);
      process.env.PACT_STRICT_NATIVE = '1';
      const actual = outcomeOn(PACT_CUDA, make);
      const label = `seed ${seed} ${name}`;
      expectSameMetrics(actual.step, expected.step, `${label} step`);
      assert.equal(actual.variables.length, expected.variables.length);
      actual.variables.forEach((v, i) => expectClose(v, expected.variables[i], TOL, `${label} variable ${i}`));
      expectSameMetrics(actual.evaluation, expected.evaluation, `${label} evaluation`);
      assert.deepEqual(backend().fallbackCounts(), {});
    });
  }

  it('keeps device memory and the tensor count flat across PSACT training steps', () => {
    process.env.PACT_STRICT_NATIVE = '1';
    tf.setBackend(PACT_CUDA);
    try {
      const task = image('psact14', { mode: 'relaxed', group: 2 })();
      task.trainStep(1, 0.05);
      const before = tf.memory() as tf.MemoryInfo & { numBytesInGPU: number };
      task.trainStep(2, 0.05);
      task.trainStep(3, 0.05);
      const after = tf.memory() as tf.MemoryInfo & { numBytesInGPU: number };
      // (The seed in the messages: CI runs of 2026-11-26 and -27 saw 128 more device bytes with the tensor count equal,
      // PACT_TEST_SEED=410827160: moving statistics first assigned in step 2 left their initial tensors' buffers behind,
      // fixed by src/models/variables.ts.)
      assert.equal(after.numTensors, before.numTensors, `tensors, PACT_TEST_SEED=${rng.seed}`);
      assert.equal(after.numBytesInGPU, before.numBytesInGPU, `device bytes, PACT_TEST_SEED=${rng.seed}`);
      task.variables().forEach((v) => v.dispose());
    } finally {
      tf.setBackend('cpu');
    }
  });
});
