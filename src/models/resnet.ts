/**
 * The pre-activation CIFAR ResNet of He, Zhang, Ren & Sun, "Identity Mappings in Deep Residual Networks" (2016),
 * the base network of SACT and of PACT's PSACT experiments (PACT section 4.1), NHWC:
 *
 *   conv3x3(inputChannels -> 16)
 *   3 stages of n residual units, 16/32/64 channels at 32x32/16x16/8x8 (for a 32x32 input);
 *     unit: u + f(u), f = BN-ReLU-conv3x3-BN-ReLU-conv3x3 (the first conv strided in the first unit of
 *     stages 2 and 3)
 *   BN-ReLU, global average pool, linear layer to the classes.
 *
 * ResNet-32 is n = 5, ResNet-110 is n = 18 (depth 6n + 2).
 *
 * Choices, where the papers leave one open:
 * - Shortcut of the stride-2 units: a 1x1 stride-2 convolution of the pre-activated input relu(bn1(u)) (the
 *   projection of He et al.'s pre-activation code). SACT's CIFAR model uses a parameter-free shortcut (2x2
 *   average pool and zero channel padding) instead; both have the same cost within 1%.
 * - Every other shortcut is the identity of the unit's raw input u.
 * - Batch norm: epsilon 1e-5, running averages with momentum 0.9 (SACT's decay and PyTorch's default),
 *   running variance unbiased (x N/(N-1)) as in PyTorch; evaluation uses the running averages.
 * - He initialisation: convolution weights ~ N(0, 2 / fan_in); the linear layer ~ N(0, 1 / fan_in), bias 0;
 *   BN scale 1, offset 0. Seeded, so two models built with the same seed are equal.
 * - Convolutions have no bias (a batch norm follows each one) and use 'same' padding.
 *
 * The residual branch f (`residualBranch`) and the shortcut are computed apart and added explicitly in
 * `forward`, so an adaptive unit (PSACT: u + f(u) * mask, with a halting branch after each unit) can reuse them.
 */
import * as tf from '@tensorflow/tfjs';

import { mixSeed } from '../data/rng';
import { batchNormReluInference } from '../ops/batch_norm_relu_inference';
import { batchNormReluTrain } from '../ops/batch_norm_train';
import { spatialMean } from '../ops/spatial_mean';
import { newVariable } from './variables';

export interface ResNetConfig {
  /** Residual units per stage, n (5: ResNet-32, 18: ResNet-110). */
  unitsPerStage: number;
  numClasses: number;
  /** Channels of the input image (3 for CIFAR). */
  inputChannels?: number;
  /** Channels of the three stages. */
  widths?: readonly [number, number, number];
  /** Running-average momentum of batch norm: running = momentum * running + (1 - momentum) * batch. */
  bnMomentum?: number;
  bnEpsilon?: number;
  /** Seed of the initialisation. */
  seed?: number;
}

/** One batch-norm layer: trainable scale and offset, and the running statistics used in evaluation. */
export interface BatchNormParams {
  scale: tf.Variable<tf.Rank.R1>;
  offset: tf.Variable<tf.Rank.R1>;
  movingMean: tf.Variable<tf.Rank.R1>;
  movingVariance: tf.Variable<tf.Rank.R1>;
}

/** One pre-activation residual unit. */
export interface ResidualUnitParams {
  stride: 1 | 2;
  bn1: BatchNormParams;
  conv1: tf.Variable<tf.Rank.R4>;
  bn2: BatchNormParams;
  conv2: tf.Variable<tf.Rank.R4>;
  /** 1x1 convolution of the shortcut where the unit changes the resolution or the width. */
  projection: tf.Variable<tf.Rank.R4> | null;
}

export interface ForwardOptions {
  /** Batch statistics (and running-average updates) when true; running averages when false. */
  training: boolean;
}

/** The residual branch of a unit and its shortcut; the unit's output is shortcut + residual. */
export interface UnitBranches {
  residual: tf.Tensor4D;
  shortcut: tf.Tensor4D;
}

export class PreActResNet {
  readonly config: Required<ResNetConfig>;
  readonly stem: tf.Variable<tf.Rank.R4>;
  /** stages[s][u]: unit u of stage s. */
  readonly stages: ResidualUnitParams[][];
  readonly finalBn: BatchNormParams;
  readonly dense: tf.Variable<tf.Rank.R2>;
  readonly denseBias: tf.Variable<tf.Rank.R1>;
  private layer: number;

  constructor(config: ResNetConfig) {
    if (!Number.isInteger(config.unitsPerStage) || config.unitsPerStage < 1) {
      throw new Error(`PreActResNet: unitsPerStage must be a positive integer, got ${config.unitsPerStage}`);
    }
    if (!Number.isInteger(config.numClasses) || config.numClasses < 1) {
      throw new Error(`PreActResNet: numClasses must be a positive integer, got ${config.numClasses}`);
    }
    // An explicit undefined takes the default too.
    const given = Object.fromEntries(Object.entries(config).filter(([, v]) => v !== undefined)) as ResNetConfig;
    this.config = {
      inputChannels: 3,
      widths: [16, 32, 64],
      bnMomentum: 0.9,
      bnEpsilon: 1e-5,
      seed: 1,
      ...given,
    };
    const { inputChannels, widths, bnMomentum, bnEpsilon, seed } = this.config;
    const bad = (name: string, what: string, value: unknown) =>
      new Error(`PreActResNet: ${name} must be ${what}, got ${JSON.stringify(value)}`);
    if (!Number.isInteger(inputChannels) || inputChannels < 1) {
      throw bad('inputChannels', 'a positive integer', inputChannels);
    }
    if (!Array.isArray(widths) || widths.length !== 3 || !widths.every((w) => Number.isInteger(w) && w >= 1)) {
      throw bad('widths', 'three positive integers (the stages)', widths);
    }
    if (typeof bnMomentum !== 'number' || !(bnMomentum >= 0 && bnMomentum < 1)) {
      throw bad('bnMomentum', 'a number in [0, 1)', bnMomentum);
    }
    if (typeof bnEpsilon !== 'number' || !(bnEpsilon > 0) || !Number.isFinite(bnEpsilon)) {
      throw bad('bnEpsilon', 'a positive finite number', bnEpsilon);
    }
    // tfjs takes a seed of 0 as "no seed" (a random draw); each layer's seed is hashed from this one and its index.
    if (!Number.isInteger(seed) || seed < 1 || seed > 2 ** 31) throw bad('seed', 'an integer in [1, 2^31]', seed);
    this.layer = 0;
    const [w1] = this.config.widths;
    this.stem = this.convWeights(3, this.config.inputChannels, w1);
    let channels = w1;
    this.stages = this.config.widths.map((width, s) =>
      Array.from({ length: this.config.unitsPerStage }, (_, u) => {
        const stride = s > 0 && u === 0 ? 2 : 1;
        const unit = this.unitParams(channels, width, stride);
        channels = width;
        return unit;
      }),
    );
    this.finalBn = this.batchNormParams(channels);
    this.dense = newVariable(() => this.normal([channels, this.config.numClasses], Math.sqrt(1 / channels)));
    this.denseBias = newVariable(() => tf.zeros([this.config.numClasses]));
  }

  /** Logits [N, numClasses] of NHWC images [N, H, W, inputChannels]. */
  forward(x: tf.Tensor4D, options: ForwardOptions): tf.Tensor2D {
    if (
      !(x instanceof tf.Tensor) ||
      x.rank !== 4 ||
      x.shape[3] !== this.config.inputChannels ||
      x.dtype !== 'float32'
    ) {
      throw new Error(
        `PreActResNet.forward: x must be float32 of shape [N, H, W, ${this.config.inputChannels}], got ` +
          `${x instanceof tf.Tensor ? `${x.dtype} [${x.shape}]` : String(x)}`,
      );
    }
    if (typeof options?.training !== 'boolean') {
      throw new Error(`PreActResNet.forward: options.training must be a boolean, got ${String(options?.training)}`);
    }
    return tf.tidy(() => {
      let u = tf.conv2d(x, this.stem, 1, 'same');
      for (const stage of this.stages) {
        for (const unit of stage) {
          const { residual, shortcut } = this.residualBranch(unit, u, options);
          u = tf.add(shortcut, residual);
        }
      }
      const features = spatialMean(this.batchNormRelu(this.finalBn, u, options));
      return tf.fused.matMul({ a: features, b: this.dense, bias: this.denseBias }) as tf.Tensor2D;
    });
  }

  /** f(u) of one pre-activation unit (BN-ReLU-conv3x3-BN-ReLU-conv3x3) and its shortcut. */
  residualBranch(unit: ResidualUnitParams, u: tf.Tensor4D, options: ForwardOptions): UnitBranches {
    const preact = this.batchNormRelu(unit.bn1, u, options);
    const shortcut = unit.projection === null ? u : tf.conv2d(preact, unit.projection, unit.stride, 'same');
    const h = this.batchNormRelu(unit.bn2, tf.conv2d(preact, unit.conv1, unit.stride, 'same'), options);
    return { residual: tf.conv2d(h, unit.conv2, 1, 'same'), shortcut };
  }

  /** relu(batchNorm(x)): batch statistics in training (updating the running averages), running ones otherwise. */
  batchNormRelu(bn: BatchNormParams, x: tf.Tensor4D, { training }: ForwardOptions): tf.Tensor4D {
    const { bnEpsilon: epsilon, bnMomentum: momentum } = this.config;
    if (!training) return batchNormReluInference(x, bn.movingMean, bn.movingVariance, bn.offset, bn.scale, epsilon);
    const { y, mean, variance } = batchNormReluTrain(x, bn.scale, bn.offset, epsilon);
    const count = x.size / x.shape[3];
    const unbiased = count > 1 ? count / (count - 1) : 1;
    bn.movingMean.assign(tf.add(tf.mul(bn.movingMean, momentum), tf.mul(mean, 1 - momentum)));
    bn.movingVariance.assign(tf.add(tf.mul(bn.movingVariance, momentum), tf.mul(variance, (1 - momentum) * unbiased)));
    return y as tf.Tensor4D;
  }

  /** Every trainable parameter. */
  trainableVariables(): tf.Variable[] {
    const bn = (p: BatchNormParams) => [p.scale, p.offset];
    const units = this.stages
      .flat()
      .flatMap((unit) => [
        ...bn(unit.bn1),
        unit.conv1,
        ...bn(unit.bn2),
        unit.conv2,
        ...(unit.projection === null ? [] : [unit.projection]),
      ]);
    return [this.stem, ...units, ...bn(this.finalBn), this.dense, this.denseBias];
  }

  /** The parameters L2 weight decay applies to: convolution and linear weights (not BN parameters, not biases). */
  weightDecayVariables(): tf.Variable[] {
    const convs = this.stages
      .flat()
      .flatMap((unit) => [unit.conv1, unit.conv2, ...(unit.projection === null ? [] : [unit.projection])]);
    return [this.stem, ...convs, this.dense];
  }

  /** Every variable, running statistics included (for disposal and checkpoints). */
  allVariables(): tf.Variable[] {
    const stats = (p: BatchNormParams) => [p.movingMean, p.movingVariance];
    const allBn = [...this.stages.flat().flatMap((unit) => [unit.bn1, unit.bn2]), this.finalBn];
    return [...this.trainableVariables(), ...allBn.flatMap(stats)];
  }

  dispose(): void {
    for (const v of this.allVariables()) v.dispose();
  }

  private unitParams(inChannels: number, outChannels: number, stride: 1 | 2): ResidualUnitParams {
    const needsProjection = stride !== 1 || inChannels !== outChannels;
    return {
      stride,
      bn1: this.batchNormParams(inChannels),
      conv1: this.convWeights(3, inChannels, outChannels),
      bn2: this.batchNormParams(outChannels),
      conv2: this.convWeights(3, outChannels, outChannels),
      projection: needsProjection ? this.convWeights(1, inChannels, outChannels) : null,
    };
  }

  private batchNormParams(channels: number): BatchNormParams {
    return {
      scale: newVariable(() => tf.ones([channels])),
      offset: newVariable(() => tf.zeros([channels])),
      movingMean: newVariable(() => tf.zeros([channels]), false),
      movingVariance: newVariable(() => tf.ones([channels]), false),
    };
  }

  private convWeights(size: number, inChannels: number, outChannels: number): tf.Variable<tf.Rank.R4> {
    const fanIn = size * size * inChannels;
    return newVariable(() => this.normal([size, size, inChannels, outChannels], Math.sqrt(2 / fanIn)));
  }

  private normal<R extends tf.Rank>(shape: number[], std: number): tf.Tensor<R> {
    // Hashed, not seed + layer: with consecutive seeds, seed 2's layer i was seed 1's layer i + 1.
    const seed = mixSeed(this.config.seed, this.layer++) + 1;
    return tf.tidy(() => tf.randomNormal(shape, 0, std, 'float32', seed)) as unknown as tf.Tensor<R>;
  }
}

/** ResNet-(6n+2) for CIFAR-like input: resnet(5) is ResNet-32, resnet(18) is ResNet-110. */
export function cifarResNet(unitsPerStage: number, numClasses = 10, seed = 1): PreActResNet {
  return new PreActResNet({ unitsPerStage, numClasses, seed });
}
