/**
 * One supervised training step of a classifier: softmax cross-entropy, L2 weight decay, SGD with momentum.
 *
 * Defaults follow He et al. 2016 (CIFAR): learning rate 0.1, momentum 0.9, weight decay 1e-4. The decay is
 * applied as the gradient of (weightDecay / 2) * sum(w^2), i.e. g + weightDecay * w, on the model's
 * `weightDecayVariables()` (convolution and linear weights: SACT and most CIFAR code leave BN parameters and
 * biases undecayed), so the loss reported is the data term alone. Everything runs inside tf.tidy, and the
 * optimizer's state is created once, so tf.memory() is flat from the second step on.
 */
import * as tf from '@tensorflow/tfjs';
import { FusedMomentumOptimizer, gradientUpdates } from './optimizers';

export interface Classifier {
  forward(x: tf.Tensor4D, options: { training: boolean }): tf.Tensor2D;
  trainableVariables(): tf.Variable[];
  weightDecayVariables(): tf.Variable[];
}

export interface StepStats {
  /** Mean softmax cross-entropy of the batch (without the weight-decay term). */
  loss: number;
  /** Examples whose largest logit is the label's. */
  correct: number;
}

export interface SgdConfig {
  learningRate?: number;
  momentum?: number;
  weightDecay?: number;
}

/**
 * Throws unless `labels` are int32 class labels [N] in [0, C) for logits [N, C] (one-hot would turn a label out of
 * range into a row of zeros: an example with zero loss). Reads one boolean back.
 */
export function checkLabels(op: string, logits: tf.Tensor2D, labels: tf.Tensor1D): void {
  const [n, classes] = logits.shape;
  if (!(labels instanceof tf.Tensor) || labels.rank !== 1 || labels.shape[0] !== n) {
    throw new Error(`${op}: labels must have shape [${n}] (one per row of the logits), got [${labels?.shape}]`);
  }
  if (labels.dtype !== 'int32') throw new Error(`${op}: labels must be int32, got ${labels.dtype}`);
  const outside = tf.tidy(() => tf.any(tf.logicalOr(tf.less(labels, 0), tf.greaterEqual(labels, classes))));
  const bad = outside.dataSync()[0] !== 0;
  outside.dispose();
  if (bad) throw new Error(`${op}: labels must be classes in [0, ${classes - 1}] (the logits' columns)`);
}

/** Throws unless a model's classes are the dataset's (a label past the model's logits would count as zero loss). */
export function checkClasses(op: string, modelClasses: number, datasetClasses: number): void {
  if (modelClasses !== datasetClasses) {
    throw new Error(`${op}: the model has ${modelClasses} classes but the dataset has ${datasetClasses}`);
  }
}

/** Mean softmax cross-entropy of logits [N, C] against int32 class labels [N] in [0, C). */
export function softmaxCrossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  checkLabels('softmaxCrossEntropy', logits, labels);
  if (logits.shape[0] === 0) throw new Error('softmaxCrossEntropy: the batch is empty (no mean)');
  return tf.tidy(() => tf.losses.softmaxCrossEntropy(tf.oneHot(labels, logits.shape[1]), logits) as tf.Scalar);
}

export class SgdTrainer {
  readonly learningRate: number;
  readonly momentum: number;
  readonly weightDecay: number;
  readonly optimizer: tf.MomentumOptimizer;
  private readonly decayed: Set<tf.Variable>;

  constructor(
    readonly model: Classifier,
    { learningRate = 0.1, momentum = 0.9, weightDecay = 1e-4 }: SgdConfig = {},
  ) {
    for (const [name, v] of [
      ['learningRate', learningRate],
      ['momentum', momentum],
      ['weightDecay', weightDecay],
    ] as const) {
      if (!(v >= 0) || !Number.isFinite(v))
        throw new Error(`SgdTrainer: ${name} must be a finite number >= 0, got ${v}`);
    }
    this.learningRate = learningRate;
    this.momentum = momentum;
    this.weightDecay = weightDecay;
    this.optimizer = new FusedMomentumOptimizer(learningRate, momentum);
    this.decayed = new Set(model.weightDecayVariables());
  }

  /**
   * Gradients of the loss (and of the weight decay) for every trainable variable, the loss, and the logits
   * (all owned by the caller).
   */
  gradients(x: tf.Tensor4D, labels: tf.Tensor1D): { loss: tf.Scalar; grads: tf.NamedTensorMap; logits: tf.Tensor2D } {
    let logits: tf.Tensor2D | undefined;
    const { loss, grads } = tf.tidy(() => {
      const vars = this.model.trainableVariables();
      const { value, grads } = tf.variableGrads(() => {
        logits = tf.keep(this.model.forward(x, { training: true }));
        return softmaxCrossEntropy(logits, labels);
      }, vars);
      const updates = gradientUpdates(vars, grads, this.decayed, this.weightDecay);
      return { loss: value, grads: Object.fromEntries(updates.map((u) => [u.name, u.tensor])) };
    });
    return { loss, grads, logits: logits! };
  }

  /** One step: forward, backward, SGD momentum update. Returns the batch's mean cross-entropy and correct count. */
  step(x: tf.Tensor4D, labels: tf.Tensor1D): StepStats {
    const { loss, grads, logits } = this.gradients(x, labels);
    this.optimizer.applyGradients(Object.entries(grads).map(([name, tensor]) => ({ name, tensor })));
    const stats = {
      loss: loss.dataSync()[0],
      // Counted in float32 (exact below 2^24), the dtype pact-cpu's native Sum handles.
      correct: tf.tidy(() => tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), labels), 'float32')).dataSync()[0]),
    };
    tf.dispose([loss, grads, logits]);
    return stats;
  }

  dispose(): void {
    this.optimizer.dispose();
  }
}
