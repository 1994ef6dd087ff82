/**
 * Fashion-MNIST from its IDX files (gzipped or not), as Debian's `dataset-fashion-mnist` installs them in
 * /usr/share/datasets/fashion-mnist. 28×28 grey images are zero-padded to 32×32 (the ResNet's input size).
 */
import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';

import type { ImageDataset, ImageSplit } from './dataset';

export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';
export const FASHION_CLASSES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];

const IMAGES_MAGIC = 0x00000803; // unsigned byte, 3 dimensions
const LABELS_MAGIC = 0x00000801; // unsigned byte, 1 dimension

function readMaybeGz(file: string): Buffer {
  let raw: Buffer;
  try {
    raw = fs.readFileSync(file);
  } catch (e) {
    throw new Error(`Fashion-MNIST: cannot read ${file}: ${(e as Error).message}`);
  }
  if (raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b) {
    try {
      return zlib.gunzipSync(raw);
    } catch (e) {
      throw new Error(`Fashion-MNIST: ${file} is not a valid gzip file: ${(e as Error).message}`);
    }
  }
  return raw;
}

/** The first existing file among `base` and `base.gz` in `dir`. */
function findFile(dir: string, base: string): string {
  for (const name of [base, `${base}.gz`]) {
    const file = path.join(dir, name);
    if (fs.existsSync(file)) return file;
  }
  throw new Error(
    `Fashion-MNIST: neither ${base} nor ${base}.gz found in ${dir}` +
      (dir === FASHION_MNIST_DIR ? " (install Debian's dataset-fashion-mnist)" : ''),
  );
}

/** Parses an IDX images file into padded float images in [0, 1]. */
export function parseIdxImages(buf: Buffer, file: string, padTo: number): { images: Float32Array; count: number } {
  if (buf.length < 16) throw new Error(`Fashion-MNIST: ${file} is truncated (${buf.length} bytes, header needs 16)`);
  const magic = buf.readUInt32BE(0);
  if (magic !== IMAGES_MAGIC) {
    throw new Error(`Fashion-MNIST: ${file} has magic number 0x${magic.toString(16)}, expected 0x803 (images)`);
  }
  const count = buf.readUInt32BE(4);
  const rows = buf.readUInt32BE(8);
  const cols = buf.readUInt32BE(12);
  if (rows > padTo || cols > padTo || rows === 0 || cols === 0) {
    throw new Error(`Fashion-MNIST: ${file} has ${rows}x${cols} images, expected at most ${padTo}x${padTo}`);
  }
  const expected = 16 + count * rows * cols;
  if (buf.length !== expected) {
    throw new Error(`Fashion-MNIST: ${file} has ${buf.length} bytes, expected ${expected} for ${count} images`);
  }
  const top = Math.floor((padTo - rows) / 2);
  const left = Math.floor((padTo - cols) / 2);
  const images = new Float32Array(count * padTo * padTo);
  for (let i = 0; i < count; ++i) {
    for (let y = 0; y < rows; ++y) {
      const src = 16 + (i * rows + y) * cols;
      const dst = (i * padTo + y + top) * padTo + left;
      for (let x = 0; x < cols; ++x) images[dst + x] = buf[src + x] / 255;
    }
  }
  return { images, count };
}

export function parseIdxLabels(buf: Buffer, file: string, numClasses: number): Int32Array {
  if (buf.length < 8) throw new Error(`Fashion-MNIST: ${file} is truncated (${buf.length} bytes, header needs 8)`);
  const magic = buf.readUInt32BE(0);
  if (magic !== LABELS_MAGIC) {
    throw new Error(`Fashion-MNIST: ${file} has magic number 0x${magic.toString(16)}, expected 0x801 (labels)`);
  }
  const count = buf.readUInt32BE(4);
  if (buf.length !== 8 + count) {
    throw new Error(`Fashion-MNIST: ${file} has ${buf.length} bytes, expected ${8 + count} for ${count} labels`);
  }
  const labels = new Int32Array(count);
  for (let i = 0; i < count; ++i) {
    const label = buf[8 + i];
    if (label >= numClasses) {
      throw new Error(`Fashion-MNIST: ${file} label ${i} is ${label}, expected 0..${numClasses - 1}`);
    }
    labels[i] = label;
  }
  return labels;
}

function loadSplit(dir: string, prefix: string): ImageSplit {
  const imagesFile = findFile(dir, `${prefix}-images-idx3-ubyte`);
  const labelsFile = findFile(dir, `${prefix}-labels-idx1-ubyte`);
  const { images, count } = parseIdxImages(readMaybeGz(imagesFile), imagesFile, 32);
  const labels = parseIdxLabels(readMaybeGz(labelsFile), labelsFile, FASHION_CLASSES.length);
  if (count === 0) throw new Error(`Fashion-MNIST: ${imagesFile} holds no images`);
  if (labels.length !== count) {
    throw new Error(`Fashion-MNIST: ${imagesFile} has ${count} images but ${labelsFile} has ${labels.length} labels`);
  }
  return { images, labels, count };
}

export function loadFashionMnist(dir = FASHION_MNIST_DIR): ImageDataset {
  return {
    name: 'fashion-mnist',
    height: 32,
    width: 32,
    channels: 1,
    numClasses: FASHION_CLASSES.length,
    classNames: FASHION_CLASSES,
    flipAugment: true,
    train: loadSplit(dir, 'train'),
    test: loadSplit(dir, 't10k'),
  };
}
