/**
 * The `TrainTask` of the adaptive LSTM on a synthetic sequence task (parity, addition): trained relaxed (eq. 26),
 * discrete with REINFORCE (eq. 25) or as ACT (Graves' objective), with Adam; evaluated in any of the relaxed,
 * discrete, thresholded and ACT modes, reporting the loss, accuracy and mean ponder steps of each.
 *
 * Every random draw is a function of (seed, step): the batch (data/sequence_tasks.ts) and the relaxed / discrete
 * noise (tfjs' seeded uniform), so with the checkpointed Adam slots and REINFORCE baseline a resumed run is exact.
 */
import * as tf from '@tensorflow/tfjs';

import { ADDITION_CLASSES, sequenceBatchAt, type SequenceBatch, type SequenceGenerator } from '../data/sequence_tasks';
import { mixSeed } from '../data/rng';
import { gradientUpdates, ScheduledAdam } from './optimizers';
import type { AdaptiveLstm } from '../models/adaptive_lstm';
import type { AdaptiveMode } from '../ops/adaptive_block';
import { actLoss, ReinforceBaseline, relaxedLoss } from '../ops/objectives';
import type { StepResult, TrainTask } from './trainer';

/** How the halting is trained: relaxed PACT (reparameterised), discrete PACT with REINFORCE, or ACT. */
export type SequenceTraining = 'relaxed' | 'reinforce' | 'act';

export const SEQUENCE_TRAININGS: readonly SequenceTraining[] = ['relaxed', 'reinforce', 'act'];
export const EVAL_MODES: readonly AdaptiveMode[] = ['relaxed', 'discrete', 'thresholded', 'act'];

export interface SequenceTaskOptions {
  training: SequenceTraining;
  /** τ, the same for every timestep. */
  tau: number;
  batchSize: number;
  seed: number;
  /** λ of the relaxed mode (the model's default if absent). */
  temperature?: number;
  /** Adam's initial rate (the trainer's schedule sets it at every step). */
  learningRate?: number;
  /** The fixed test set: evalBatches batches of batchSize sequences, drawn from the seed. */
  evalBatches?: number;
  /** Modes `evaluate` reports (all four by default). */
  evalModes?: readonly AdaptiveMode[];
}

/** log p(y | x) per sequence, [batch]: Σ over timesteps (and digits) of the targets' log-likelihoods. */
export function sequenceLogLikelihood(gen: SequenceGenerator, logits: tf.Tensor3D, targets: tf.Tensor): tf.Tensor1D {
  return tf.tidy(() => {
    const [B, T] = logits.shape;
    if (gen.name === 'parity') {
      // log σ(z) for y = 1, log σ(−z) for y = 0: y z − softplus(z).
      const z = tf.reshape(logits, [B, T]);
      return tf.sum(tf.sub(tf.mul(targets, z), tf.softplus(z)), 1) as tf.Tensor1D;
    }
    const digits = targets.shape[2] as number;
    const logProbs = tf.logSoftmax(tf.reshape(logits, [B, T, digits, ADDITION_CLASSES]));
    const picked = tf.mul(logProbs, tf.oneHot(targets as tf.Tensor3D, ADDITION_CLASSES));
    return tf.sum(picked, [1, 2, 3]) as tf.Tensor1D;
  });
}

/** Whether each timestep's whole target is predicted right, [batch, T] as 0/1 float32. */
export function stepCorrect(gen: SequenceGenerator, logits: tf.Tensor3D, targets: tf.Tensor): tf.Tensor2D {
  return tf.tidy(() => {
    const [B, T] = logits.shape;
    if (gen.name === 'parity') {
      const predicted = tf.cast(tf.greater(tf.reshape(logits, [B, T]), 0), 'float32');
      return tf.cast(tf.equal(predicted, targets), 'float32') as tf.Tensor2D;
    }
    const digits = targets.shape[2] as number;
    const predicted = tf.argMax(tf.reshape(logits, [B, T, digits, ADDITION_CLASSES]), 3);
    return tf.cast(tf.all(tf.equal(predicted, targets), 2), 'float32') as tf.Tensor2D;
  });
}

/** Per-timestep results of one evaluation mode, row-major [example, timestep], plus the batch-level cost. */
export interface SequenceEvaluation {
  mode: AdaptiveMode;
  difficulty: Int32Array;
  /** Iterations executed. */
  iterations: Float32Array;
  /** N (PACT modes) or ρ (ACT). */
  ponder: Float32Array;
  correct: Float32Array;
  /** −log p(y | x) per sequence. */
  negLogLikelihood: Float32Array;
  /** Calls of the LSTM transition on the whole batch, per timestep of a batch (≤ L; what early stopping saves). */
  cellCallsPerStep: number;
}

function mean(values: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < values.length; ++i) s += values[i];
  return values.length === 0 ? NaN : s / values.length;
}

function joined<T extends Float32Array | Int32Array>(arrays: T[], kind: new (n: number) => T): T {
  const out = new kind(arrays.reduce((n, a) => n + a.length, 0));
  let at = 0;
  for (const a of arrays) {
    out.set(a, at);
    at += a.length;
  }
  return out;
}

const NOISE_SALT = 0x5bd1e995;
const TEST_SALT = 0x27d4eb2f;

export class SequenceTask implements TrainTask {
  readonly optimizer: ScheduledAdam;
  readonly baseline = new ReinforceBaseline(0.99);
  private testSet: SequenceBatch[] | undefined;

  constructor(
    readonly model: AdaptiveLstm,
    readonly generator: SequenceGenerator,
    readonly options: SequenceTaskOptions,
  ) {
    const op = 'SequenceTask';
    if (!Number.isInteger(options?.seed))
      throw new Error(`${op}: seed must be an integer, got ${String(options?.seed)}`);
    if (options.learningRate !== undefined && !(options.learningRate >= 0 && Number.isFinite(options.learningRate))) {
      throw new Error(`${op}: learningRate must be a finite number >= 0, got ${options.learningRate}`);
    }
    if (!SEQUENCE_TRAININGS.includes(options?.training)) {
      throw new Error(
        `${op}: training must be one of ${SEQUENCE_TRAININGS.join(', ')}, got ${String(options?.training)}`,
      );
    }
    if (typeof options.tau !== 'number' || !(options.tau >= 0) || !Number.isFinite(options.tau)) {
      throw new Error(`${op}: tau must be a finite number >= 0, got ${String(options.tau)}`);
    }
    if (options.evalBatches !== undefined && (!Number.isInteger(options.evalBatches) || options.evalBatches < 1)) {
      throw new Error(`${op}: evalBatches must be a positive integer, got ${String(options.evalBatches)}`);
    }
    if (!Number.isInteger(options.batchSize) || options.batchSize < 1) {
      throw new Error(`${op}: batchSize must be a positive integer, got ${String(options.batchSize)}`);
    }
    for (const mode of options.evalModes ?? []) {
      if (!EVAL_MODES.includes(mode))
        throw new Error(`${op}: evalModes must be among ${EVAL_MODES.join(', ')}, got ${mode}`);
    }
    const { inputSize, outputSize } = model.config;
    if (inputSize !== generator.inputSize || outputSize !== generator.outputSize) {
      throw new Error(
        `${op}: the model's inputSize/outputSize ${inputSize}/${outputSize} must match the ${generator.name} task's ` +
          `${generator.inputSize}/${generator.outputSize}`,
      );
    }
    this.optimizer = new ScheduledAdam(options.learningRate ?? 1e-3, 0.9, 0.999, 1e-8);
  }

  variables(): tf.Variable[] {
    return this.model.variables();
  }

  private get trainMode(): AdaptiveMode {
    const { training } = this.options;
    return training === 'reinforce' ? 'discrete' : training;
  }

  /** The loss to minimise of one batch: eq. 26 (relaxed), eq. 25's surrogate (REINFORCE) or ACT's. */
  private loss(batch: SequenceBatch, seed: number, metrics: Record<string, number>): tf.Scalar {
    const out = this.model.forward(batch.x, {
      mode: this.trainMode,
      temperature: this.options.temperature,
      seed,
    });
    const logLikelihood = sequenceLogLikelihood(this.generator, out.logits, batch.targets);
    const ponder = [{ cost: out.ponder, tau: this.options.tau }];
    const { training } = this.options;
    const loss =
      training === 'relaxed'
        ? relaxedLoss(logLikelihood, ponder)
        : training === 'act'
          ? actLoss(logLikelihood, ponder)
          : this.baseline.loss(logLikelihood, out.logProb as tf.Tensor1D, ponder);
    metrics.nll = -tf.mean(logLikelihood).dataSync()[0];
    metrics.accuracy = tf.mean(stepCorrect(this.generator, out.logits, batch.targets)).dataSync()[0];
    metrics.ponder = tf.mean(out.ponder).dataSync()[0];
    metrics.steps = tf.mean(out.iterations).dataSync()[0];
    return loss;
  }

  trainStep(step: number, learningRate: number): StepResult {
    this.optimizer.setLearningRate(learningRate);
    const { batchSize, seed } = this.options;
    const batch = sequenceBatchAt(this.generator, batchSize, seed, step);
    const metrics: Record<string, number> = {};
    try {
      tf.tidy(() => {
        const variables = this.variables();
        const { value, grads } = tf.variableGrads(
          () => this.loss(batch, mixSeed(seed ^ NOISE_SALT, step), metrics),
          variables,
        );
        metrics.loss = value.dataSync()[0];
        this.optimizer.applyGradients(gradientUpdates(variables, grads));
      });
    } finally {
      tf.dispose([batch.x, batch.targets]);
    }
    return { metrics, examples: batchSize };
  }

  private testBatches(): SequenceBatch[] {
    if (this.testSet === undefined) {
      const { batchSize, seed, evalBatches = 4 } = this.options;
      this.testSet = Array.from({ length: evalBatches }, (_, i) =>
        sequenceBatchAt(this.generator, batchSize, seed ^ TEST_SALT, i),
      );
      for (const b of this.testSet) {
        tf.keep(b.x);
        tf.keep(b.targets);
      }
    }
    return this.testSet;
  }

  /** Runs the fixed test set in `mode` (noise seeded, so repeatable) and returns per-timestep results. */
  evaluateMode(mode: AdaptiveMode): SequenceEvaluation {
    const parts: Array<Omit<SequenceEvaluation, 'mode' | 'cellCallsPerStep'>> = [];
    const callsBefore = this.model.cellCalls;
    const batches = this.testBatches();
    batches.forEach((batch, i) => {
      tf.tidy(() => {
        const out = this.model.forward(batch.x, {
          mode,
          temperature: this.options.temperature,
          seed: mixSeed(this.options.seed ^ TEST_SALT ^ NOISE_SALT, i),
        });
        parts.push({
          difficulty: batch.difficulty,
          iterations: Float32Array.from(out.iterations.dataSync()),
          ponder: Float32Array.from(out.ponder.dataSync()),
          correct: Float32Array.from(stepCorrect(this.generator, out.logits, batch.targets).dataSync()),
          negLogLikelihood: Float32Array.from(
            tf.neg(sequenceLogLikelihood(this.generator, out.logits, batch.targets)).dataSync(),
          ),
        });
      });
    });
    return {
      mode,
      difficulty: joined(
        parts.map((p) => p.difficulty),
        Int32Array,
      ),
      iterations: joined(
        parts.map((p) => p.iterations),
        Float32Array,
      ),
      ponder: joined(
        parts.map((p) => p.ponder),
        Float32Array,
      ),
      correct: joined(
        parts.map((p) => p.correct),
        Float32Array,
      ),
      negLogLikelihood: joined(
        parts.map((p) => p.negLogLikelihood),
        Float32Array,
      ),
      cellCallsPerStep: (this.model.cellCalls - callsBefore) / (batches.length * this.generator.length),
    };
  }

  /** Per mode: nll, accuracy (timesteps right), ponder (mean N or ρ), steps (iterations executed), cellCalls. */
  evaluate(): Record<string, number> {
    const metrics: Record<string, number> = {};
    for (const mode of this.options.evalModes ?? EVAL_MODES) {
      const e = this.evaluateMode(mode);
      metrics[`${mode}.nll`] = mean(e.negLogLikelihood);
      metrics[`${mode}.accuracy`] = mean(e.correct);
      metrics[`${mode}.ponder`] = mean(e.ponder);
      metrics[`${mode}.steps`] = mean(e.iterations);
      metrics[`${mode}.cellCalls`] = e.cellCallsPerStep;
    }
    return metrics;
  }

  saveState(): Record<string, number> {
    const c = this.baseline.value;
    return c === undefined ? {} : { reinforceBaseline: c };
  }

  loadState(state: Record<string, number>): void {
    if (state.reinforceBaseline === undefined) return;
    this.baseline.restore(state.reinforceBaseline);
  }

  dispose(): void {
    for (const b of this.testSet ?? []) tf.dispose([b.x, b.targets]);
    this.testSet = undefined;
    this.optimizer.dispose();
  }
}
