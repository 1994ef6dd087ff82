/**
 * An in-memory image classification dataset: NHWC float32 images in [0, 1] and int32 labels, for each split.
 * Every loader (procedural, Fashion-MNIST, CIFAR-10) returns this shape, so the trainer knows nothing of files.
 */
export interface ImageSplit {
  /** N*H*W*C values in [0, 1], NHWC. */
  images: Float32Array;
  /** N labels in [0, numClasses). */
  labels: Int32Array;
  count: number;
}

export interface ImageDataset {
  name: string;
  height: number;
  width: number;
  channels: number;
  numClasses: number;
  classNames: string[];
  /** Horizontal flips are label-preserving (natural images yes; digits or text no). */
  flipAugment: boolean;
  train: ImageSplit;
  test: ImageSplit;
}

export function imageSize(ds: Pick<ImageDataset, 'height' | 'width' | 'channels'>): number {
  return ds.height * ds.width * ds.channels;
}

/** Per-channel mean and standard deviation of a split (for input normalisation). */
export function channelStats(split: ImageSplit, channels: number): { mean: number[]; std: number[] } {
  const sum = new Float64Array(channels);
  const sumSq = new Float64Array(channels);
  const { images } = split;
  for (let i = 0; i < images.length; ++i) {
    const c = i % channels;
    sum[c] += images[i];
    sumSq[c] += images[i] * images[i];
  }
  const n = images.length / channels;
  const mean = Array.from(sum, (s) => s / n);
  const std = Array.from(sumSq, (s, c) => Math.sqrt(Math.max(s / n - mean[c] * mean[c], 1e-12)));
  return { mean, std };
}

/** A split holding the first `count` examples of `split` (views, no copy). */
export function takeSplit(split: ImageSplit, count: number, imageLength: number): ImageSplit {
  const n = Math.min(count, split.count);
  return { images: split.images.subarray(0, n * imageLength), labels: split.labels.subarray(0, n), count: n };
}
