/**
 * The `TrainTask` of the adaptive ResNets (models/psact.ts): PSACT trained relaxed (eq. 26, reparameterised) or
 * discrete (REINFORCE, eq. 25, with the exponential-moving-average baseline, Adam as in the paper), and SACT trained
 * with ACT's objective. Evaluation runs the trained parameters in every requested mode.
 *
 * Penalty: τ_k = τ / (H_k W_k) per position of stage k (PACT section 4.1); with n×n grouping one latent variable
 * stands for n² positions, so each latent's N is penalised τ n² / (H_k W_k) and the total stays τ × mean N.
 *
 * Randomness is a function of (seed, step): the batch (data/batches.ts) and the halting noise, so a resumed run
 * repeats the uninterrupted one; evaluation noise is a function of (seed, test batch index).
 */
import * as tf from '@tensorflow/tfjs';

import { type Batch, normalisationOf, testBatches, TrainBatches, type Normalisation } from '../data/batches';
import type { ImageDataset } from '../data/dataset';
import { mixSeed } from '../data/rng';
import { forwardFlops } from '../models/flops';
import {
  type AdaptiveForwardResult,
  ADAPTIVE_MODES,
  type AdaptiveMode,
  AdaptiveResNet,
  DEFAULT_DELTA,
  DEFAULT_TEMPERATURE,
  disposeForward,
  GROUP_SIZES,
  type GroupSize,
} from '../models/psact';
import { actLoss, type PonderTerm, ReinforceBaseline, relaxedLoss } from '../ops/objectives';
import { correctCount } from './classifier_task';
import { FusedMomentumOptimizer, gradientUpdates, ScheduledAdam } from './optimizers';
import { checkClasses, checkLabels, type SgdConfig } from './step';
import type { StepResult, TrainTask } from './trainer';

export type AdaptiveTrainMode = 'relaxed' | 'discrete' | 'act';
export const ADAPTIVE_TRAIN_MODES: readonly AdaptiveTrainMode[] = ['relaxed', 'discrete', 'act'];

export interface AdaptiveTaskOptions {
  batchSize: number;
  seed: number;
  trainMode: AdaptiveTrainMode;
  /** τ, the global computation penalty. */
  tau: number;
  /** λ of the relaxed mode. */
  temperature?: number;
  /** δ of â = r·[r > δ]. */
  delta?: number;
  /** ε of ACT. */
  actEpsilon?: number;
  /** SGD momentum and weight decay (relaxed, act); `learningRate` is the base of the schedule. */
  sgd: SgdConfig;
  /** Adam's rate for discrete training (the paper: 1e-3), scaled by the schedule as SGD's is. */
  adamLearningRate?: number;
  /** The first n steps (trainStep's step 0…n−1, as the trainer counts them) train with the halting units frozen at
   *  their initialisation (every unit then trains at nearly every position); default 0. */
  haltWarmupSteps?: number;
  evalLimit?: number;
  /** Modes evaluated by `evaluate` (default: relaxed, discrete, thresholded, and act for an ACT-trained model). */
  evalModes?: AdaptiveMode[];
}

/** log p(y | ·, x) per example [B]. */
export function logLikelihood(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor1D {
  checkLabels('logLikelihood', logits, labels);
  return tf.tidy(() => tf.sum(tf.mul(tf.logSoftmax(logits), tf.oneHot(labels, logits.shape[1])), 1) as tf.Tensor1D);
}

/** Batch summaries of a forward pass: correct count, mean ponder, mean FLOPs fractions. Reads back. */
interface ForwardSummary {
  correct: number;
  ponder: number;
  flops: number;
  flopsFraction: number;
  executedFlopsFraction: number;
}

export class AdaptiveTask implements TrainTask {
  readonly optimizer: tf.Optimizer;
  readonly evalModes: AdaptiveMode[];
  private readonly batches: TrainBatches;
  private readonly norm: Normalisation;
  private readonly baseline: ReinforceBaseline | null;
  private readonly decayed: Set<tf.Variable>;
  private readonly baseRate: number;

  constructor(
    readonly model: AdaptiveResNet,
    readonly dataset: ImageDataset,
    private readonly options: AdaptiveTaskOptions,
  ) {
    const op = 'AdaptiveTask';
    if (!ADAPTIVE_TRAIN_MODES.includes(options.trainMode)) {
      throw new Error(
        `${op}: trainMode must be one of ${ADAPTIVE_TRAIN_MODES.join(', ')}, got ` + `${String(options.trainMode)}`,
      );
    }
    if (typeof options.tau !== 'number' || !(options.tau >= 0) || !Number.isFinite(options.tau)) {
      throw new Error(`${op}: tau must be a finite number >= 0, got ${String(options.tau)}`);
    }
    // Checked here rather than at the first step, with the option's name.
    const optional: Array<[string, unknown, (v: number) => boolean, string]> = [
      ['temperature', options.temperature, (v) => v > 0 && Number.isFinite(v), 'a positive finite number'],
      ['delta', options.delta, (v) => v >= 0 && v < 1, 'a number in [0, 1)'],
      ['actEpsilon', options.actEpsilon, (v) => v > 0 && v < 1, 'a number in (0, 1)'],
      ['adamLearningRate', options.adamLearningRate, (v) => v >= 0 && Number.isFinite(v), 'a finite number >= 0'],
      ['haltWarmupSteps', options.haltWarmupSteps, (v) => Number.isInteger(v) && v >= 0, 'an integer >= 0'],
    ];
    for (const [name, value, ok, what] of optional) {
      if (value !== undefined && (typeof value !== 'number' || !ok(value))) {
        throw new Error(`${op}: ${name} must be ${what}, got ${String(value)}`);
      }
    }
    for (const mode of options.evalModes ?? []) {
      if (!ADAPTIVE_MODES.includes(mode)) {
        throw new Error(`${op}: evalModes must be among ${ADAPTIVE_MODES.join(', ')}, got ${String(mode)}`);
      }
    }
    const { learningRate = 0.1, momentum = 0.9, weightDecay = 1e-4 } = options.sgd;
    for (const [name, v] of [
      ['learningRate', learningRate],
      ['momentum', momentum],
      ['weightDecay', weightDecay],
    ]) {
      if (typeof v !== 'number' || !(v >= 0) || !Number.isFinite(v)) {
        throw new Error(`${op}: sgd.${name} must be a finite number >= 0, got ${String(v)}`);
      }
    }
    model.stageSizes(dataset.height, dataset.width);
    checkClasses(op, model.resnet.config.numClasses, dataset.numClasses);
    this.baseRate = learningRate;
    this.optimizer =
      options.trainMode === 'discrete'
        ? new ScheduledAdam(options.adamLearningRate ?? 1e-3, 0.9, 0.999)
        : new FusedMomentumOptimizer(learningRate, momentum);
    this.baseline = options.trainMode === 'discrete' ? new ReinforceBaseline(0.99) : null;
    this.decayed = new Set(weightDecay > 0 ? model.weightDecayVariables() : []);
    this.evalModes =
      options.evalModes ??
      (options.trainMode === 'act'
        ? ['act', 'relaxed', 'discrete', 'thresholded']
        : ['relaxed', 'discrete', 'thresholded']);
    this.norm = normalisationOf(dataset);
    this.batches = new TrainBatches(dataset, this.norm, options.batchSize, options.seed);
  }

  get stepsPerEpoch(): number {
    return this.batches.stepsPerEpoch;
  }

  variables(): tf.Variable[] {
    return this.model.allVariables();
  }

  trainStep(step: number, learningRate: number): StepResult {
    const { trainMode, tau, sgd } = this.options;
    this.setLearningRate(learningRate);
    const { x, labels } = this.batches.batch(step);
    let summary: ForwardSummary | undefined;
    let crossEntropy = 0;
    try {
      const variables = this.model.trainableVariables();
      const frozen = new Set(step < (this.options.haltWarmupSteps ?? 0) ? this.model.haltingVariables() : []);
      const { value, grads } = tf.variableGrads(
        () => {
          const result = this.model.forward(x, this.forwardOptions(trainMode, true, mixSeed(this.options.seed, step)));
          summary = this.summarise(result, labels);
          const logLik = logLikelihood(result.logits, labels);
          crossEntropy = -tf.mean(logLik).dataSync()[0];
          const ponder = this.ponderTerms(result, tau);
          if (trainMode === 'relaxed') return relaxedLoss(logLik, ponder);
          if (trainMode === 'act') return actLoss(logLik, ponder);
          const logProb = tf.addN(result.stages.map((s) => s.logProb as tf.Tensor1D));
          return (this.baseline as ReinforceBaseline).loss(logLik, logProb, ponder);
        },
        variables.filter((v) => !frozen.has(v)),
      );
      const updates = gradientUpdates(variables, grads, this.decayed, sgd.weightDecay ?? 1e-4);
      this.optimizer.applyGradients(updates);
      const loss = value.dataSync()[0];
      tf.dispose([value, grads, updates.map((u) => u.tensor)]);
      const s = summary as ForwardSummary;
      return {
        metrics: {
          loss,
          crossEntropy,
          accuracy: s.correct / labels.shape[0],
          flopsFraction: s.flopsFraction,
          ponder: s.ponder,
        },
        examples: labels.shape[0],
      };
    } finally {
      tf.dispose([x, labels]);
    }
  }

  /** Test metrics in every mode of `evalModes`: `<mode>.loss` (cross-entropy), `.accuracy`, `.flopsFraction`,
   *  `.executedFlopsFraction`, `.gflops` (per image) and `.ponder` (mean N, or ρ in ACT mode, per latent). */
  evaluate(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const mode of this.evalModes) {
      const total = { loss: 0, correct: 0, ponder: 0, flops: 0, flopsFraction: 0, executedFlopsFraction: 0 };
      let count = 0;
      let index = 0;
      for (const { x, labels } of testBatches(
        this.dataset,
        this.norm,
        this.options.batchSize,
        this.options.evalLimit,
      )) {
        const result = this.model.forward(
          x,
          this.forwardOptions(mode, false, mixSeed(this.options.seed ^ 0x5eed, index)),
        );
        const n = labels.shape[0];
        const s = this.summarise(result, labels);
        total.loss -= tf.tidy(() => tf.sum(logLikelihood(result.logits, labels)).dataSync()[0]);
        total.correct += s.correct;
        total.ponder += s.ponder * n;
        total.flops += s.flops * n;
        total.flopsFraction += s.flopsFraction * n;
        total.executedFlopsFraction += s.executedFlopsFraction * n;
        count += n;
        index += 1;
        disposeForward(result);
        tf.dispose([x, labels]);
      }
      out[`${mode}.loss`] = total.loss / count;
      out[`${mode}.accuracy`] = total.correct / count;
      out[`${mode}.flopsFraction`] = total.flopsFraction / count;
      out[`${mode}.executedFlopsFraction`] = total.executedFlopsFraction / count;
      out[`${mode}.gflops`] = total.flops / count / 1e9;
      out[`${mode}.ponder`] = total.ponder / count;
    }
    return out;
  }

  /**
   * Peak tensor memory (MiB above what was allocated before) of evaluating one test batch in each mode: the
   * paper's memory claim, thresholded vs relaxed and ACT. Measured with tf.profile.
   */
  async peakMemory(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    const first = testBatches(this.dataset, this.norm, this.options.batchSize, this.options.evalLimit).next();
    if (first.done === true) return out;
    const { x, labels } = first.value;
    for (const mode of this.evalModes) {
      const start = tf.memory().numBytes;
      const info = await tf.profile(() => {
        disposeForward(this.model.forward(x, this.forwardOptions(mode, false, 1)));
      });
      out[`${mode}.peakMiB`] = (info.peakBytes - start) / 2 ** 20;
    }
    tf.dispose([x, labels]);
    return out;
  }

  /** The first `count` test images, normalised as in evaluation. */
  testBatch(count: number): Batch {
    if (!Number.isInteger(count) || count < 1) {
      throw new Error(`AdaptiveTask.testBatch: count must be a positive integer, got ${count}`);
    }
    const first = testBatches(this.dataset, this.norm, count, count).next();
    if (first.done === true) throw new Error('AdaptiveTask.testBatch: the dataset has no test images');
    return first.value;
  }

  saveState(): Record<string, number> {
    const c = this.baseline?.value;
    return c === undefined ? {} : { reinforceBaseline: c };
  }

  loadState(state: Record<string, number>): void {
    if (this.baseline === null || state.reinforceBaseline === undefined) return;
    this.baseline.restore(state.reinforceBaseline);
  }

  forwardOptions(mode: AdaptiveMode, training: boolean, seed: number) {
    const { temperature, delta, actEpsilon } = this.options;
    return { mode, training, temperature, delta, actEpsilon, seed };
  }

  private setLearningRate(rate: number): void {
    // Not `instanceof`: tfjs' Optimizer answers it for any optimizer (Symbol.hasInstance checks the methods only).
    if (this.options.trainMode === 'discrete') {
      const adam = this.options.adamLearningRate ?? 1e-3;
      (this.optimizer as ScheduledAdam).setLearningRate(this.baseRate > 0 ? (adam * rate) / this.baseRate : 0);
    } else {
      (this.optimizer as tf.MomentumOptimizer).setLearningRate(rate);
    }
  }

  /** Each stage's ponder (N or ρ) with τ per latent variable: τ / (number of latents of the stage). */
  private ponderTerms(result: AdaptiveForwardResult, tau: number): PonderTerm[] {
    return result.stages.map((s) => ({ cost: s.ponder, tau: tau / (s.ponder.shape[1] * s.ponder.shape[2]) }));
  }

  private summarise(result: AdaptiveForwardResult, labels: tf.Tensor1D): ForwardSummary {
    const { height, width } = this.dataset;
    const f = forwardFlops(this.model, result, height, width);
    const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
    const ponder = mean(result.stages.map((s) => tf.tidy(() => tf.mean(s.ponder).dataSync()[0])));
    return {
      correct: correctCount(result.logits, labels),
      ponder,
      flops: mean(f.flops),
      flopsFraction: mean(f.flops) / f.denseFlops,
      executedFlopsFraction: mean(f.executedFlops) / f.denseFlops,
    };
  }
}

export type AdaptiveKind = 'psact' | 'sact';

/** The kind and units per stage of `psact<6n+2>` / `sact<6n+2>` (psact32, sact110, ...), or null for another name. */
export function parseAdaptiveModel(model: string): { kind: AdaptiveKind; unitsPerStage: number } | null {
  const m = /^(psact|sact)(\d+)$/.exec(model);
  if (m === null) return null;
  const depth = Number(m[2]);
  if (!(depth >= 14) || (depth - 2) % 6 !== 0) {
    throw new Error(`--model ${model}: the depth must be 6n + 2 with n >= 2 units per stage (psact32, sact110, ...)`);
  }
  return { kind: m[1] as AdaptiveKind, unitsPerStage: (depth - 2) / 6 };
}

/** The options of an adaptive run (the CLI's run configuration has these fields). */
export interface AdaptiveRunOptions {
  model: string;
  seed: number;
  batchSize: number;
  lr: number;
  momentum: number;
  weightDecay: number;
  evalLimit?: number;
  /** Channels of the three stages (default 16, 32, 64). */
  widths?: [number, number, number];
  /** Training mode of a PSACT model: relaxed (default) or discrete (REINFORCE). SACT trains with ACT. */
  mode?: string;
  tau?: number;
  temperature?: number;
  delta?: number;
  group?: number;
  haltBias?: number;
  /** Fraction of `steps` trained with the halting units frozen (default ADAPTIVE_DEFAULTS.haltWarmup). */
  haltWarmup?: number;
  /** Training steps of the run (for haltWarmup). */
  steps?: number;
}

/** Defaults of the CLI's adaptive runs: τ = 0.01 (the paper's Fig. 3 model), SACT's halting bias −3. */
export const ADAPTIVE_DEFAULTS = {
  tau: 0.01,
  temperature: DEFAULT_TEMPERATURE,
  delta: DEFAULT_DELTA,
  group: 1,
  haltBias: -3,
  haltWarmup: 0.1,
} as const;

/** Builds the model and task of a `psact*` or `sact*` run on `dataset`. */
export function buildAdaptiveTask(options: AdaptiveRunOptions, dataset: ImageDataset): AdaptiveTask {
  const parsed = parseAdaptiveModel(options.model);
  if (parsed === null) throw new Error(`--model must be psact<6n+2> or sact<6n+2>, got ${options.model}`);
  let trainMode: AdaptiveTrainMode = 'act';
  if (parsed.kind === 'psact') {
    const mode = options.mode ?? 'relaxed';
    if (mode !== 'relaxed' && mode !== 'discrete') {
      throw new Error(`--mode must be relaxed or discrete for ${options.model}, got ${mode}`);
    }
    trainMode = mode;
  } else if (options.mode !== undefined && options.mode !== 'act') {
    throw new Error(`--mode ${options.mode}: ${options.model} is SACT, which trains with ACT (use a psact model)`);
  }
  const group = options.group ?? ADAPTIVE_DEFAULTS.group;
  if (!GROUP_SIZES.includes(group as GroupSize)) {
    throw new Error(`--group must be one of ${GROUP_SIZES.join(', ')}, got ${group}`);
  }
  const haltWarmup = options.haltWarmup ?? ADAPTIVE_DEFAULTS.haltWarmup;
  if (!(haltWarmup >= 0 && haltWarmup <= 1)) throw new Error(`--halt-warmup must be in [0, 1], got ${haltWarmup}`);
  const model = new AdaptiveResNet({
    unitsPerStage: parsed.unitsPerStage,
    numClasses: dataset.numClasses,
    inputChannels: dataset.channels,
    seed: options.seed,
    ...(options.widths === undefined ? {} : { widths: options.widths }),
    group: group as GroupSize,
    haltBias: options.haltBias ?? ADAPTIVE_DEFAULTS.haltBias,
  });
  return new AdaptiveTask(model, dataset, {
    batchSize: options.batchSize,
    seed: options.seed,
    trainMode,
    tau: options.tau ?? ADAPTIVE_DEFAULTS.tau,
    temperature: options.temperature ?? ADAPTIVE_DEFAULTS.temperature,
    delta: options.delta ?? ADAPTIVE_DEFAULTS.delta,
    sgd: { learningRate: options.lr, momentum: options.momentum, weightDecay: options.weightDecay },
    haltWarmupSteps: Math.round(haltWarmup * (options.steps ?? 0)),
    evalLimit: options.evalLimit,
  });
}
