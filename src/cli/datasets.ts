/** The datasets the CLI knows, by name. */
import type { ImageDataset } from '../data/dataset';
import { loadCifar10 } from '../data/cifar10';
import { FASHION_MNIST_DIR, loadFashionMnist } from '../data/fashion_mnist';
import { proceduralShapes } from '../data/procedural';

export const DATASETS = ['shapes', 'fashion-mnist', 'cifar10'] as const;
export type DatasetName = (typeof DATASETS)[number];

export interface DatasetOptions {
  dataset: DatasetName;
  dataDir?: string;
  seed: number;
  trainCount?: number;
  testCount?: number;
}

export function loadDataset(o: DatasetOptions): ImageDataset {
  switch (o.dataset) {
    case 'shapes':
      return proceduralShapes({ seed: o.seed, trainCount: o.trainCount, testCount: o.testCount });
    case 'fashion-mnist':
      return loadFashionMnist(o.dataDir ?? FASHION_MNIST_DIR);
    case 'cifar10':
      if (o.dataDir === undefined)
        throw new Error('--data-dir is required for cifar10 (the directory of its .bin files)');
      return loadCifar10(o.dataDir);
    default:
      throw new Error(`--dataset must be one of ${DATASETS.join(', ')}, got ${String(o.dataset)}`);
  }
}
