/**
 * Mini-batches as tensors: per-channel normalisation, and the standard CIFAR augmentation (pad by 4 with zeros,
 * random 32×32 crop, horizontal flip where the dataset allows it).
 *
 * Every random choice is derived from (seed, epoch) for the order and (seed, step) for augmentation, so a run
 * resumed from a checkpoint at step s draws exactly the batches an uninterrupted run draws after step s.
 */
import * as tf from '@tensorflow/tfjs';

import { channelStats, imageSize, type ImageDataset, type ImageSplit } from './dataset';
import { mixSeed, SeededRng } from './rng';

export interface Batch {
  x: tf.Tensor4D;
  labels: tf.Tensor1D;
}

export interface Normalisation {
  mean: number[];
  std: number[];
}

export function normalisationOf(ds: ImageDataset): Normalisation {
  return channelStats(ds.train, ds.channels);
}

const PAD = 4;

/** Fills one normalised example into `out` at `offset`, cropped at (dy, dx) from the padded image and maybe flipped. */
function writeExample(
  ds: ImageDataset,
  split: ImageSplit,
  index: number,
  norm: Normalisation,
  dy: number,
  dx: number,
  flip: boolean,
  out: Float32Array,
  offset: number,
): void {
  const { height: h, width: w, channels: c } = ds;
  const src = index * h * w * c;
  for (let y = 0; y < h; ++y) {
    const sy = y + dy;
    for (let x = 0; x < w; ++x) {
      const sx = (flip ? w - 1 - x : x) + dx;
      const inside = sy >= 0 && sy < h && sx >= 0 && sx < w;
      for (let k = 0; k < c; ++k) {
        const v = inside ? split.images[src + (sy * w + sx) * c + k] : 0;
        out[offset + (y * w + x) * c + k] = (v - norm.mean[k]) / norm.std[k];
      }
    }
  }
}

export function makeBatch(
  ds: ImageDataset,
  split: ImageSplit,
  indices: ArrayLike<number>,
  norm: Normalisation,
  augmentRng: SeededRng | null,
): Batch {
  const size = imageSize(ds);
  const x = new Float32Array(indices.length * size);
  const labels = new Int32Array(indices.length);
  for (let i = 0; i < indices.length; ++i) {
    const index = indices[i];
    let dy = 0;
    let dx = 0;
    let flip = false;
    if (augmentRng !== null) {
      dy = augmentRng.below(2 * PAD + 1) - PAD;
      dx = augmentRng.below(2 * PAD + 1) - PAD;
      flip = ds.flipAugment && augmentRng.next() < 0.5;
    }
    writeExample(ds, split, index, norm, dy, dx, flip, x, i * size);
    labels[i] = split.labels[index];
  }
  return {
    x: tf.tensor4d(x, [indices.length, ds.height, ds.width, ds.channels]),
    labels: tf.tensor1d(labels, 'int32'),
  };
}

/** The training batches of step `step` (0-based): epoch order from (seed, epoch), augmentation from (seed, step). */
export class TrainBatches {
  readonly stepsPerEpoch: number;
  private orderEpoch = -1;
  private order: Int32Array = new Int32Array(0);

  constructor(
    private readonly ds: ImageDataset,
    private readonly norm: Normalisation,
    private readonly batchSize: number,
    private readonly seed: number,
  ) {
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new Error(`TrainBatches: batchSize must be a positive integer, got ${batchSize}`);
    }
    if (ds.train.count < batchSize) {
      throw new Error(`TrainBatches: batchSize ${batchSize} exceeds the ${ds.train.count} training examples`);
    }
    this.stepsPerEpoch = Math.floor(ds.train.count / batchSize);
  }

  batch(step: number): Batch {
    if (!Number.isInteger(step) || step < 0) {
      throw new Error(`TrainBatches.batch: step must be an integer >= 0 (the trainer's step), got ${step}`);
    }
    const epoch = Math.floor(step / this.stepsPerEpoch);
    if (epoch !== this.orderEpoch) {
      this.order = new SeededRng(mixSeed(this.seed, epoch)).permutation(this.ds.train.count);
      this.orderEpoch = epoch;
    }
    const at = (step % this.stepsPerEpoch) * this.batchSize;
    const indices = this.order.subarray(at, at + this.batchSize);
    return makeBatch(this.ds, this.ds.train, indices, this.norm, new SeededRng(mixSeed(this.seed ^ 0xa5a5a5a5, step)));
  }
}

/** The test split in order, in batches of at most `batchSize`, without augmentation. */
export function* testBatches(
  ds: ImageDataset,
  norm: Normalisation,
  batchSize: number,
  limit = Infinity,
): Generator<Batch> {
  // An empty evaluation would give NaN metrics (0 / 0).
  if (!(limit >= 1) || (limit !== Infinity && !Number.isInteger(limit))) {
    throw new Error(`testBatches: the evaluation limit (evalLimit) must be a positive integer, got ${limit}`);
  }
  const count = Math.min(ds.test.count, limit);
  for (let at = 0; at < count; at += batchSize) {
    const n = Math.min(batchSize, count - at);
    const indices = Array.from({ length: n }, (_, i) => at + i);
    yield makeBatch(ds, ds.test, indices, norm, null);
  }
}
