/**
 * CIFAR-10 from its binary version (data_batch_1..5.bin, test_batch.bin in one directory): each record is one
 * label byte then 3072 bytes of 32×32 red, green and blue planes. Returned as NHWC floats in [0, 1].
 */
import * as fs from 'fs';
import * as path from 'path';

import type { ImageDataset, ImageSplit } from './dataset';

export const CIFAR10_CLASSES = [
  'airplane',
  'automobile',
  'bird',
  'cat',
  'deer',
  'dog',
  'frog',
  'horse',
  'ship',
  'truck',
];

const PIXELS = 32 * 32;
const RECORD = 1 + 3 * PIXELS;

export function parseCifarBatch(buf: Buffer, file: string): ImageSplit {
  if (buf.length === 0 || buf.length % RECORD !== 0) {
    throw new Error(`CIFAR-10: ${file} has ${buf.length} bytes, expected a positive multiple of ${RECORD}`);
  }
  const count = buf.length / RECORD;
  const images = new Float32Array(count * PIXELS * 3);
  const labels = new Int32Array(count);
  for (let i = 0; i < count; ++i) {
    const base = i * RECORD;
    const label = buf[base];
    if (label >= CIFAR10_CLASSES.length) {
      throw new Error(`CIFAR-10: ${file} record ${i} has label ${label}, expected 0..9`);
    }
    labels[i] = label;
    for (let p = 0; p < PIXELS; ++p) {
      for (let c = 0; c < 3; ++c) images[(i * PIXELS + p) * 3 + c] = buf[base + 1 + c * PIXELS + p] / 255;
    }
  }
  return { images, labels, count };
}

function loadFiles(dir: string, names: string[]): ImageSplit {
  const parts = names.map((name) => {
    const file = path.join(dir, name);
    let buf: Buffer;
    try {
      buf = fs.readFileSync(file);
    } catch (e) {
      throw new Error(`CIFAR-10: cannot read ${file}: ${(e as Error).message}`);
    }
    return parseCifarBatch(buf, file);
  });
  const count = parts.reduce((n, p) => n + p.count, 0);
  const images = new Float32Array(count * PIXELS * 3);
  const labels = new Int32Array(count);
  let at = 0;
  for (const p of parts) {
    images.set(p.images, at * PIXELS * 3);
    labels.set(p.labels, at);
    at += p.count;
  }
  return { images, labels, count };
}

export function loadCifar10(dir: string): ImageDataset {
  if (!dir) throw new Error('CIFAR-10: a directory holding data_batch_1..5.bin and test_batch.bin is required');
  return {
    name: 'cifar10',
    height: 32,
    width: 32,
    channels: 3,
    numClasses: CIFAR10_CLASSES.length,
    classNames: CIFAR10_CLASSES,
    flipAugment: true,
    train: loadFiles(
      dir,
      [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`),
    ),
    test: loadFiles(dir, ['test_batch.bin']),
  };
}
