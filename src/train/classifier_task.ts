/**
 * The `TrainTask` of an image classifier trained with SGD momentum (the dense ResNets; the adaptive models add
 * their own terms through the same interface).
 */
import * as tf from '@tensorflow/tfjs';

import { normalisationOf, testBatches, TrainBatches, type Normalisation } from '../data/batches';
import type { ImageDataset } from '../data/dataset';
import type { PreActResNet } from '../models/resnet';
import { checkClasses, SgdTrainer, softmaxCrossEntropy, type SgdConfig } from './step';
import type { StepResult, TrainTask } from './trainer';

export interface ClassifierTaskOptions {
  batchSize: number;
  seed: number;
  sgd: SgdConfig;
  /** Evaluate on at most this many test examples (all by default). */
  evalLimit?: number;
}

/** Number of correct predictions in a batch. */
export function correctCount(logits: tf.Tensor2D, labels: tf.Tensor1D): number {
  return tf.tidy(() => tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), labels), 'int32')).dataSync()[0]);
}

export class ClassifierTask implements TrainTask {
  readonly sgd: SgdTrainer;
  readonly optimizer: tf.Optimizer;
  private readonly batches: TrainBatches;
  private readonly norm: Normalisation;

  constructor(
    readonly model: PreActResNet,
    readonly dataset: ImageDataset,
    private readonly options: ClassifierTaskOptions,
  ) {
    checkClasses('ClassifierTask', model.config.numClasses, dataset.numClasses);
    this.sgd = new SgdTrainer(model, options.sgd);
    this.optimizer = this.sgd.optimizer;
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
    this.sgd.optimizer.setLearningRate(learningRate);
    const { x, labels } = this.batches.batch(step);
    try {
      const { loss, correct } = this.sgd.step(x, labels);
      return { metrics: { loss, accuracy: correct / labels.shape[0] }, examples: labels.shape[0] };
    } finally {
      tf.dispose([x, labels]);
    }
  }

  evaluate(): Record<string, number> {
    let loss = 0;
    let correct = 0;
    let count = 0;
    for (const { x, labels } of testBatches(this.dataset, this.norm, this.options.batchSize, this.options.evalLimit)) {
      tf.tidy(() => {
        const logits = this.model.forward(x, { training: false });
        loss += softmaxCrossEntropy(logits, labels).dataSync()[0] * labels.shape[0];
        correct += correctCount(logits, labels);
      });
      count += labels.shape[0];
      tf.dispose([x, labels]);
    }
    return { loss: loss / count, accuracy: correct / count };
  }
}
