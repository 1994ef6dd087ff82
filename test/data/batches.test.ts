import { strict as assert } from 'assert';

import * as tf from '@tensorflow/tfjs';

import { makeBatch, normalisationOf, testBatches, TrainBatches } from '../../src/data/batches';
import type { ImageDataset } from '../../src/data/dataset';
import { freshRng } from '../helpers/random';

function tinyDataset(flip: boolean): ImageDataset {
  const rng = freshRng();
  const n = 24;
  const split = () => ({
    images: rng.uniform(n * 8 * 8 * 2, 0, 1),
    labels: Int32Array.from({ length: n }, (_, i) => i % 3),
    count: n,
  });
  return {
    name: 'tiny',
    height: 8,
    width: 8,
    channels: 2,
    numClasses: 3,
    classNames: ['a', 'b', 'c'],
    flipAugment: flip,
    train: split(),
    test: split(),
  };
}

describe('batches and augmentation', () => {
  it('normalises per channel to mean 0 and std 1 over the training split', () => {
    const ds = tinyDataset(false);
    const norm = normalisationOf(ds);
    const all = Array.from({ length: ds.train.count }, (_, i) => i);
    const { x, labels } = makeBatch(ds, ds.train, all, norm, null);
    const values = x.dataSync();
    for (let c = 0; c < 2; ++c) {
      let s = 0;
      let s2 = 0;
      for (let i = c; i < values.length; i += 2) {
        s += values[i];
        s2 += values[i] * values[i];
      }
      const n = values.length / 2;
      assert.ok(Math.abs(s / n) < 1e-5, `channel ${c} mean ${s / n}`);
      assert.ok(Math.abs(s2 / n - 1) < 1e-4, `channel ${c} var ${s2 / n}`);
    }
    tf.dispose([x, labels]);
  });

  it('augments by a shift of at most 4 pixels with zero padding, flipping only where allowed', () => {
    for (const flip of [false, true]) {
      const ds = tinyDataset(flip);
      const norm = { mean: [0, 0], std: [1, 1] };
      const batches = new TrainBatches(ds, norm, 6, freshRng().int(0, 1e9));
      let flips = 0;
      for (let step = 0; step < 8; ++step) {
        const { x, labels } = batches.batch(step);
        const got = x.dataSync() as Float32Array;
        const lab = labels.dataSync();
        for (let b = 0; b < 6; ++b) {
          const image = got.subarray(b * 128, (b + 1) * 128);
          const match = findShift(ds, image, lab[b]);
          assert.ok(match !== null, `batch ${step} image ${b} is no shift/flip of a training image`);
          if (match.flip) flips += 1;
        }
        tf.dispose([x, labels]);
      }
      if (!flip) assert.equal(flips, 0);
      else assert.ok(flips > 5 && flips < 43, `${flips} flips of 48 (P(outside) < 1e-6)`);
    }
  });

  it('draws the same batch for the same step, whatever came before (resume)', () => {
    const ds = tinyDataset(true);
    const norm = normalisationOf(ds);
    const a = new TrainBatches(ds, norm, 5, 42);
    const b = new TrainBatches(ds, norm, 5, 42);
    for (let s = 0; s < 6; ++s) tf.dispose(Object.values(a.batch(s)));
    const fromA = a.batch(9);
    const fromB = b.batch(9);
    assert.deepEqual(fromA.x.dataSync(), fromB.x.dataSync());
    assert.deepEqual(fromA.labels.dataSync(), fromB.labels.dataSync());
    tf.dispose([fromA.x, fromA.labels, fromB.x, fromB.labels]);
  });

  it('covers the test split in order, once', () => {
    const ds = tinyDataset(false);
    const seen: number[] = [];
    for (const { x, labels } of testBatches(ds, normalisationOf(ds), 10)) {
      seen.push(...labels.dataSync());
      tf.dispose([x, labels]);
    }
    assert.deepEqual(seen, Array.from(ds.test.labels));
  });

  it('rejects a batch size larger than the split, and an empty evaluation', () => {
    const ds = tinyDataset(false);
    const batches = new TrainBatches(ds, normalisationOf(ds), 4, 1);
    for (const step of [-1, 1.5]) {
      assert.throws(() => batches.batch(step), /TrainBatches.batch: step must be an integer >= 0/, `step ${step}`);
    }
    for (const limit of [0, -5, 1.5, NaN]) {
      assert.throws(
        () => testBatches(ds, normalisationOf(ds), 10, limit).next(),
        /testBatches: the evaluation limit \(evalLimit\) must be a positive integer/,
        `limit ${limit}`,
      );
    }
    assert.throws(() => new TrainBatches(ds, normalisationOf(ds), 25, 1), /batchSize 25 exceeds the 24 training/);
  });
});

/** The (dy, dx, flip) under which `image` is a zero-padded crop of a training image with this label, if any. */
function findShift(ds: ImageDataset, image: Float32Array, label: number): { flip: boolean } | null {
  for (let i = 0; i < ds.train.count; ++i) {
    if (ds.train.labels[i] !== label) continue;
    const src = ds.train.images.subarray(i * 128, (i + 1) * 128);
    for (const flip of [false, true]) {
      for (let dy = -4; dy <= 4; ++dy) {
        for (let dx = -4; dx <= 4; ++dx) {
          let ok = true;
          for (let y = 0; y < 8 && ok; ++y) {
            for (let x = 0; x < 8 && ok; ++x) {
              const sy = y + dy;
              const sx = (flip ? 7 - x : x) + dx;
              for (let c = 0; c < 2 && ok; ++c) {
                const expected = sy >= 0 && sy < 8 && sx >= 0 && sx < 8 ? src[(sy * 8 + sx) * 2 + c] : 0;
                ok = image[(y * 8 + x) * 2 + c] === expected;
              }
            }
          }
          if (ok) return { flip };
        }
      }
    }
  }
  return null;
}
