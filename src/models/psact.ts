/**
 * PSACT and SACT: the pre-activation CIFAR ResNet (models/resnet.ts) with one adaptive computation block per
 * spatial position (or n×n patch) of each stage (PACT section 4.1; Figurnov et al. 2017 for SACT).
 *
 * Stage k has L = unitsPerStage iterations. Iteration 1 is the stage's first unit (the strided one in stages 2
 * and 3), which always runs, densely, so z ≥ 1. Iteration l ≥ 2 is the masked residual unit of eq. 27,
 * `u^l = u^{l-1} + f(u^{l-1}) · a^l` (ops/masked_residual_unit.ts), which computes nothing where a^l = 0. After
 * iteration l < L the halting unit gives `h^l = σ(W̃ ∗ u^l + W · pool(u^l) + b)` per position (`haltLogits`).
 *
 * Modes (`AdaptiveMode`), every one usable on any trained parameters:
 * - relaxed (Alg. 3): ξ̂ ~ RelaxedBernoulli(h, λ), a^l = â = r·[r > δ] (eq. 27), output Σ ẑ^l u^l;
 * - discrete (Alg. 1): ξ ~ Bernoulli(h), a^l ∈ {0, 1}, output u^z (no accumulator), and log q(z) for REINFORCE;
 * - thresholded (Alg. 2): ξ = [h > 0.5]; output u^z; keeps only the current u per stage, no per-iteration outputs;
 * - act (Alg. 4, SACT): ACT per position, weights h^l and the remainder R, ponder cost ρ = N + R.
 * The per-iteration stick-breaking step is the fused `haltingStep` op.
 *
 * Latent grouping (section 6): with `group` = n > 1 the halting logits are averaged over non-overlapping n×n
 * patches and one latent variable is shared per patch (ResNet-32: M = 1344, 336, 84, 21 for n = 1, 2, 4, 8); its
 * masks are broadcast back to the patch's positions.
 *
 * Choices where the papers leave one open:
 * - Halting bias initialised to −3 (SACT's value: h ≈ 0.047, so a new model runs almost every unit, like the dense
 *   ResNet); the halting convolution W̃ and the pooled weights W start at zero, so every position starts at exactly
 *   σ(−3) and the gradient decides what the branch looks at.
 * - The halting logits are computed at every position (a 3×3 convolution to one channel costs 1/(2C) of a unit);
 *   FLOPs (models/flops.ts) count them only where the unit before them ran, as SACT's flopsometer does.
 * - Batch-norm running averages of the masked units are updated from the statistics over the positions each batch
 *   norm was computed on (see masked_residual_unit.ts), unbiased by count/(count − 1), SACT's momentum 0.9.
 */
import * as tf from '@tensorflow/tfjs';

import type { AdaptiveMode } from '../ops/adaptive_block';
import { dilateMask } from '../ops/dilate_mask';
import { haltingStep, initialHaltingState } from '../ops/halting_step';
import { detached, type HaltingMode, logSigmoid } from '../ops/halting_util';
import { binaryMask } from '../ops/masked_conv2d';
import { maskedResidualUnitWithStats, type BatchStats } from '../ops/masked_residual_unit';
import { spatialMean } from '../ops/spatial_mean';
import { type BatchNormParams, PreActResNet, type ResidualUnitParams, type ResNetConfig } from './resnet';
import { newVariable } from './variables';

export type { AdaptiveMode };
export const ADAPTIVE_MODES: readonly AdaptiveMode[] = ['relaxed', 'discrete', 'thresholded', 'act'];
export const GROUP_SIZES = [1, 2, 4, 8] as const;
export type GroupSize = (typeof GROUP_SIZES)[number];

export interface AdaptiveResNetConfig extends ResNetConfig {
  /** n of the n×n latent grouping (1: one latent variable per position). */
  group?: GroupSize;
  /** Initial halting bias b (SACT: −3). */
  haltBias?: number;
}

export interface AdaptiveForwardOptions {
  mode: AdaptiveMode;
  /** Batch statistics and running-average updates when true; running averages when false. */
  training: boolean;
  /** λ of the relaxed mode (default 0.5). */
  temperature?: number;
  /** δ of â = r·[r > δ], relaxed mode (default 0.01). */
  delta?: number;
  /** ε of ACT (default 0.01). */
  actEpsilon?: number;
  /** Seed of the halting noise (relaxed, discrete): the same seed draws the same ε. Unseeded when absent. */
  seed?: number;
  /**
   * Whether discrete mode reports log q(z) (`StageOutput.logProb`, REINFORCE's score): by default when training.
   * Evaluation skips it (two softplus passes per iteration, 6-9% of a discrete forward) unless asked.
   */
  logProb?: boolean;
}

/** One halting unit H(u) = σ(W̃ ∗ u + W · pool(u) + b). */
export interface HaltingUnitParams {
  /** W̃: 3×3 convolution to one channel, [3, 3, C, 1]. */
  conv: tf.Variable<tf.Rank.R4>;
  /** W: weights of the globally average-pooled u, [C, 1]. */
  pooled: tf.Variable<tf.Rank.R2>;
  /** b, [1]. */
  bias: tf.Variable<tf.Rank.R1>;
}

/** What one stage (adaptive block) reports; every tensor belongs to the caller. */
export interface StageOutput {
  /** Per latent variable [B, H/n, W/n]: N (eq. 23) in the PACT modes, ρ = N + R in ACT mode. */
  ponder: tf.Tensor3D;
  /** Units executed per position [B, H, W], 1 … L (integer-valued). */
  iterations: tf.Tensor3D;
  /** Per image [B]: Σ over units l ≥ 2 of the positions where their first convolution ran (the active set
   *  dilated by one pixel): the work the masked convolution actually does. */
  conv1Positions: tf.Tensor1D;
  /** log q(z) per image [B] (eq. 14), discrete mode only, when training or asked (`options.logProb`). */
  logProb?: tf.Tensor1D;
}

export interface AdaptiveForwardResult {
  logits: tf.Tensor2D;
  stages: StageOutput[];
}

export const DEFAULT_TEMPERATURE = 0.5;
export const DEFAULT_DELTA = 0.01;
export const DEFAULT_ACT_EPSILON = 0.01;

/** Tensors of a carry object (its defined values). */
function tensorsOf(carry: Record<string, tf.Tensor | undefined>): tf.Tensor[] {
  return Object.values(carry).filter((t): t is tf.Tensor => t !== undefined);
}

/**
 * Runs one iteration in a tf.tidy and frees what the previous carry held that the next one does not, so an
 * evaluation holds one iteration's tensors at a time (the tape keeps what a gradient needs).
 */
function advance<C extends Record<string, tf.Tensor | undefined>>(previous: C, fn: () => C): C {
  const next = tf.tidy(fn as unknown as () => tf.TensorContainer) as unknown as C;
  const kept = new Set(tensorsOf(next));
  for (const t of tensorsOf(previous)) if (!kept.has(t)) t.dispose();
  return next;
}

function allZero(mask: tf.Tensor): boolean {
  return tf.tidy(() => tf.any(tf.greater(mask, 0)).dataSync()[0]) === 0;
}

export class AdaptiveResNet {
  readonly resnet: PreActResNet;
  readonly group: GroupSize;
  /** halting[s][l - 1]: the halting unit after iteration l < L of stage s. */
  readonly halting: HaltingUnitParams[][];

  constructor(config: AdaptiveResNetConfig) {
    const { group = 1, haltBias = -3, ...base } = config;
    if (!GROUP_SIZES.includes(group)) {
      throw new Error(`AdaptiveResNet: group must be one of ${GROUP_SIZES.join(', ')}, got ${String(group)}`);
    }
    if (typeof haltBias !== 'number' || !Number.isFinite(haltBias)) {
      throw new Error(`AdaptiveResNet: haltBias must be a finite number, got ${String(haltBias)}`);
    }
    this.resnet = new PreActResNet(base);
    this.group = group;
    this.halting = this.resnet.config.widths.map((width) =>
      Array.from({ length: this.resnet.config.unitsPerStage - 1 }, () => ({
        conv: newVariable(() => tf.zeros<tf.Rank.R4>([3, 3, width, 1])),
        pooled: newVariable(() => tf.zeros<tf.Rank.R2>([width, 1])),
        bias: newVariable(() => tf.fill<tf.Rank.R1>([1], haltBias)),
      })),
    );
  }

  get config(): PreActResNet['config'] {
    return this.resnet.config;
  }

  /** L, the iterations of every block. */
  get maxIterations(): number {
    return this.resnet.config.unitsPerStage;
  }

  /** Logits and each stage's ponder statistics for NHWC images [B, H, W, inputChannels]. */
  forward(x: tf.Tensor4D, options: AdaptiveForwardOptions): AdaptiveForwardResult {
    const op = 'AdaptiveResNet.forward';
    const { inputChannels } = this.resnet.config;
    if (!(x instanceof tf.Tensor) || x.rank !== 4 || x.shape[3] !== inputChannels) {
      throw new Error(
        `${op}: x must have shape [N, H, W, ${inputChannels}], got ` +
          `${x instanceof tf.Tensor ? `[${x.shape}]` : typeof x}`,
      );
    }
    if (!ADAPTIVE_MODES.includes(options?.mode)) {
      throw new Error(`${op}: mode must be one of ${ADAPTIVE_MODES.join(', ')}, got ${String(options?.mode)}`);
    }
    this.stageSizes(x.shape[1], x.shape[2]);
    let u = tf.tidy(() => tf.conv2d(x, this.resnet.stem, 1, 'same'));
    const stages: StageOutput[] = [];
    for (let s = 0; s < this.resnet.stages.length; ++s) {
      const { output, stats } = this.stage(s, u, options);
      u.dispose();
      u = output;
      stages.push(stats);
    }
    const logits = tf.tidy(() => {
      const features = spatialMean(this.resnet.batchNormRelu(this.resnet.finalBn, u, options));
      return tf.fused.matMul({ a: features, b: this.resnet.dense, bias: this.resnet.denseBias }) as tf.Tensor2D;
    });
    u.dispose();
    return { logits, stages };
  }

  /** Each stage's [height, width] for an input of this size; throws unless the group divides them. */
  stageSizes(height: number, width: number): Array<[number, number]> {
    const sizes = this.resnet.stages.map((_, s) => [Math.ceil(height / 2 ** s), Math.ceil(width / 2 ** s)]) as Array<
      [number, number]
    >;
    for (const [h, w] of sizes) {
      if (h % this.group !== 0 || w % this.group !== 0) {
        throw new Error(
          `AdaptiveResNet: the ${this.group}x${this.group} latent grouping must divide every stage's ` +
            `size; an input of ${height}x${width} has stages of ${sizes.map(([a, b]) => `${a}x${b}`).join(', ')}`,
        );
      }
    }
    return sizes;
  }

  /** logit(h^l) of the halting unit after iteration l of stage s, per latent variable [B, H/n, W/n]. */
  haltLogits(s: number, l: number, u: tf.Tensor4D): tf.Tensor3D {
    return tf.tidy(() => {
      const p = this.halting[s][l - 1];
      const [b, h, w] = u.shape;
      const local = tf.reshape(tf.conv2d(u, p.conv, 1, 'same'), [b, h, w]);
      const global = tf.reshape(tf.matMul(spatialMean(u), p.pooled), [b, 1, 1]);
      const logits = tf.add(tf.add(local, global), p.bias) as tf.Tensor3D;
      const n = this.group;
      if (n === 1) return logits;
      const pooled = tf.avgPool(tf.expandDims(logits, 3) as tf.Tensor4D, n, n, 'valid');
      return tf.reshape(pooled, [b, h / n, w / n]) as tf.Tensor3D;
    });
  }

  /** A per-latent map [B, H/n, W/n] broadcast to the positions [B, H, W]. */
  expand(latent: tf.Tensor, height: number, width: number): tf.Tensor3D {
    const n = this.group;
    if (n === 1) return latent as tf.Tensor3D;
    return tf.tidy(() => {
      const [b, h, w] = latent.shape;
      const spread = tf.mul(tf.reshape(latent, [b, h, 1, w, 1]), tf.ones([1, 1, n, 1, n]));
      return tf.reshape(spread, [b, height, width]) as tf.Tensor3D;
    });
  }

  trainableVariables(): tf.Variable[] {
    return [...this.resnet.trainableVariables(), ...this.haltingVariables()];
  }

  /** The resnet's decayed weights and the halting weights (not their biases). */
  weightDecayVariables(): tf.Variable[] {
    return [...this.resnet.weightDecayVariables(), ...this.halting.flat().flatMap((p) => [p.conv, p.pooled])];
  }

  allVariables(): tf.Variable[] {
    return [...this.resnet.allVariables(), ...this.haltingVariables()];
  }

  dispose(): void {
    this.resnet.dispose();
    tf.dispose(this.haltingVariables());
  }

  /** The halting units' variables (W̃, W, b of every halting unit). */
  haltingVariables(): tf.Variable[] {
    return this.halting.flat().flatMap((p) => [p.conv, p.pooled, p.bias]);
  }

  /** One adaptive block: u^1 from the stage's first unit, then the mode's loop. */
  private stage(
    s: number,
    input: tf.Tensor4D,
    options: AdaptiveForwardOptions,
  ): {
    output: tf.Tensor4D;
    stats: StageOutput;
  } {
    const first = this.resnet.stages[s][0];
    const u1 = tf.tidy(() => {
      const { residual, shortcut } = this.resnet.residualBranch(first, input, options);
      return tf.add(shortcut, residual) as tf.Tensor4D;
    });
    return options.mode === 'act' ? this.actStage(s, u1, options) : this.pactStage(s, u1, options.mode, options);
  }

  /** Iteration l ≥ 2 at the positions where `mask` > 0 (eq. 27), updating the running statistics in training. */
  private maskedUnit(unit: ResidualUnitParams, u: tf.Tensor4D, mask: tf.Tensor3D, training: boolean): tf.Tensor4D {
    const { bnEpsilon: epsilon, bnMomentum: momentum } = this.resnet.config;
    const moving = (bn: BatchNormParams): BatchStats => ({ mean: bn.movingMean, variance: bn.movingVariance });
    const result = maskedResidualUnitWithStats(u, unit, mask, {
      epsilon,
      ...(training ? {} : { moving: { bn1: moving(unit.bn1), bn2: moving(unit.bn2) } }),
    });
    const [countA, countConv1, countBn1] = result.activeCounts;
    if (training && countA > 0) {
      const update = (bn: BatchNormParams, stats: BatchStats, count: number) => {
        const unbiased = count > 1 ? count / (count - 1) : 1;
        bn.movingMean.assign(tf.add(tf.mul(bn.movingMean, momentum), tf.mul(stats.mean, 1 - momentum)));
        bn.movingVariance.assign(
          tf.add(tf.mul(bn.movingVariance, momentum), tf.mul(stats.variance, (1 - momentum) * unbiased)),
        );
      };
      update(unit.bn1, result.bn1, countBn1);
      update(unit.bn2, result.bn2, countConv1);
    }
    return result.y;
  }

  /** The bookkeeping shared by every mode when iteration l ≥ 2 runs on `mask`: units and conv1 positions. */
  private countRun(mask: tf.Tensor3D, iterations: tf.Tensor, conv1Positions: tf.Tensor) {
    const ran = binaryMask(mask);
    return {
      iterations: tf.add(iterations, ran),
      conv1Positions: tf.add(conv1Positions, tf.sum(dilateMask(ran, 3), [1, 2])),
    };
  }

  private pactStage(s: number, u1: tf.Tensor4D, mode: HaltingMode, options: AdaptiveForwardOptions) {
    const L = this.maxIterations;
    const units = this.resnet.stages[s];
    const [b, height, width] = u1.shape;
    const latent = [b, height / this.group, width / this.group];
    const relaxed = mode === 'relaxed';
    const start = initialHaltingState(latent);
    let carry: Record<string, tf.Tensor | undefined> = {
      u: u1,
      sXi: start.sXi,
      sH: start.sH,
      n: start.expectedIterations,
      active: undefined,
      output: relaxed ? tf.zerosLike(u1) : undefined,
      iterations: tf.ones([b, height, width]),
      conv1Positions: tf.zeros([b]),
      logProb: mode === 'discrete' && (options.logProb ?? options.training) ? tf.zeros([b]) : undefined,
    };
    for (let l = 1; l <= L; ++l) {
      const c = carry;
      carry = advance(c, () => {
        let u = c.u as tf.Tensor4D;
        let counts = { iterations: c.iterations as tf.Tensor, conv1Positions: c.conv1Positions as tf.Tensor };
        if (l > 1) {
          const mask = this.expand(c.active as tf.Tensor, height, width);
          u = this.maskedUnit(units[l - 1], u, mask, options.training);
          counts = this.countRun(mask, counts.iterations, counts.conv1Positions);
        }
        const x = l < L ? this.haltLogits(s, l, u) : null;
        // Without grouping the latents are the positions: the fused step also accumulates output += ẑ^l u^l.
        const fused = relaxed && this.group === 1;
        const step = haltingStep(
          {
            sXi: c.sXi as tf.Tensor,
            sH: c.sH as tf.Tensor,
            expectedIterations: c.n as tf.Tensor,
            ...(fused ? { output: c.output as tf.Tensor } : {}),
          },
          x,
          fused ? u : null,
          {
            mode,
            iteration: l,
            maxIterations: L,
            temperature: options.temperature ?? DEFAULT_TEMPERATURE,
            delta: options.delta ?? DEFAULT_DELTA,
            seed: options.seed === undefined ? undefined : options.seed + 1009 * s + l,
          },
        );
        let output = fused ? step.state.output : c.output;
        if (relaxed && !fused) {
          // ẑ^l = S_ξ̂^l ξ̂^l = S_ξ̂^l − S_ξ̂^{l+1} (eq. 17); output += ẑ^l u^l (eq. 18), ẑ^l upsampled from the latents.
          const z = this.expand(tf.sub(c.sXi as tf.Tensor, step.state.sXi), height, width);
          output = tf.add(c.output as tf.Tensor, tf.mul(tf.expandDims(z, 3), u));
        }
        let logProb = c.logProb;
        if (c.logProb !== undefined && x !== null) {
          // Eq. 14: log h^l where the latent halts at l (a^l − a^{l+1}), log(1 − h^l) where it goes on (a^{l+1}).
          const wasActive = c.active ?? tf.onesLike(step.active);
          const term = tf.add(
            tf.mul(tf.sub(wasActive, step.active), logSigmoid(x)),
            tf.mul(step.active, logSigmoid(tf.neg(x))),
          );
          logProb = tf.add(c.logProb as tf.Tensor, tf.sum(term, [1, 2]));
        }
        return {
          u,
          sXi: step.state.sXi,
          sH: step.state.sH,
          n: step.state.expectedIterations,
          active: step.active,
          output,
          ...counts,
          logProb,
        };
      });
    }
    tf.dispose([carry.sXi, carry.sH, carry.active] as tf.Tensor[]);
    if (relaxed) (carry.u as tf.Tensor).dispose();
    return {
      output: (relaxed ? carry.output : carry.u) as tf.Tensor4D,
      stats: {
        ponder: carry.n as tf.Tensor3D,
        iterations: carry.iterations as tf.Tensor3D,
        conv1Positions: carry.conv1Positions as tf.Tensor1D,
        ...(carry.logProb === undefined ? {} : { logProb: carry.logProb as tf.Tensor1D }),
      },
    };
  }

  /** SACT: ACT (Alg. 4) per latent variable; stops the stage once every latent has halted. */
  private actStage(s: number, u1: tf.Tensor4D, options: AdaptiveForwardOptions) {
    const L = this.maxIterations;
    const epsilon = options.actEpsilon ?? DEFAULT_ACT_EPSILON;
    if (typeof epsilon !== 'number' || !(epsilon > 0 && epsilon < 1)) {
      throw new Error(`AdaptiveResNet.forward: actEpsilon must be a number in (0, 1), got ${String(epsilon)}`);
    }
    const units = this.resnet.stages[s];
    const [b, height, width] = u1.shape;
    const latent = [b, height / this.group, width / this.group];
    let carry: Record<string, tf.Tensor | undefined> = {
      u: u1,
      c: tf.zeros(latent),
      remainder: tf.ones(latent),
      rho: tf.zeros(latent),
      running: tf.ones(latent),
      output: tf.zerosLike(u1),
      iterations: tf.ones([b, height, width]),
      conv1Positions: tf.zeros([b]),
    };
    for (let l = 1; l <= L; ++l) {
      const c = carry;
      carry = advance(c, () => {
        let u = c.u as tf.Tensor4D;
        let counts = { iterations: c.iterations as tf.Tensor, conv1Positions: c.conv1Positions as tf.Tensor };
        const running = c.running as tf.Tensor;
        if (l > 1) {
          const mask = this.expand(running, height, width);
          u = this.maskedUnit(units[l - 1], u, mask, options.training);
          counts = this.countRun(mask, counts.iterations, counts.conv1Positions);
        }
        const x = l < L ? this.haltLogits(s, l, u) : null;
        const h = x === null ? tf.onesLike(running) : tf.sigmoid(x);
        const cumulative = tf.add(c.c as tf.Tensor, h);
        // Alg. 4: a latent goes on while Σ h < 1 − ε (never past L); `stops` is one-hot at its N.
        const goesOn =
          x === null
            ? tf.zerosLike(running)
            : detached((v) => tf.mul(running, tf.cast(tf.less(v, 1 - epsilon), 'float32')), cumulative);
        const stops = tf.sub(running, goesOn);
        const remainder = c.remainder as tf.Tensor;
        const weight = this.expand(tf.add(tf.mul(goesOn, h), tf.mul(stops, remainder)), height, width);
        return {
          u,
          c: cumulative,
          remainder: tf.sub(remainder, tf.mul(goesOn, h)),
          rho: tf.add(c.rho as tf.Tensor, tf.add(running, tf.mul(stops, remainder))),
          running: goesOn,
          output: tf.add(c.output as tf.Tensor, tf.mul(tf.expandDims(weight, 3), u)),
          ...counts,
        };
      });
      if (allZero(carry.running as tf.Tensor)) break;
    }
    tf.dispose([carry.c, carry.remainder, carry.running, carry.u] as tf.Tensor[]);
    return {
      output: carry.output as tf.Tensor4D,
      stats: {
        ponder: carry.rho as tf.Tensor3D,
        iterations: carry.iterations as tf.Tensor3D,
        conv1Positions: carry.conv1Positions as tf.Tensor1D,
      },
    };
  }
}

/** Frees every tensor of a forward result. */
export function disposeForward(result: AdaptiveForwardResult): void {
  tf.dispose(result.logits);
  for (const stage of result.stages) tf.dispose(tensorsOf({ ...stage }));
}
