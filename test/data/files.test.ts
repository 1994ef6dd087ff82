import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';

import { loadCifar10, parseCifarBatch } from '../../src/data/cifar10';
import { FASHION_MNIST_DIR, loadFashionMnist } from '../../src/data/fashion_mnist';
import { freshRng } from '../helpers/random';

function idxImages(count: number, rows: number, cols: number, pixels: Uint8Array): Buffer {
  const header = Buffer.alloc(16);
  header.writeUInt32BE(0x803, 0);
  header.writeUInt32BE(count, 4);
  header.writeUInt32BE(rows, 8);
  header.writeUInt32BE(cols, 12);
  return Buffer.concat([header, Buffer.from(pixels)]);
}

function idxLabels(labels: number[]): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt32BE(0x801, 0);
  header.writeUInt32BE(labels.length, 4);
  return Buffer.concat([header, Buffer.from(labels)]);
}

describe('dataset files', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pact-data-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  describe('Fashion-MNIST IDX', () => {
    function writeSplit(prefix: string, count: number, gz: boolean, pixels: Uint8Array, labels: number[]): void {
      const write = (name: string, buf: Buffer) =>
        fs.writeFileSync(path.join(dir, gz ? `${name}.gz` : name), gz ? zlib.gzipSync(buf) : buf);
      write(`${prefix}-images-idx3-ubyte`, idxImages(count, 28, 28, pixels));
      write(`${prefix}-labels-idx1-ubyte`, idxLabels(labels));
    }

    it('reads gzipped and plain files, pads 28x28 to 32x32 centred', () => {
      const rng = freshRng();
      const pixels = Uint8Array.from({ length: 3 * 784 }, () => rng.int(0, 255));
      const labels = [rng.int(0, 9), rng.int(0, 9), rng.int(0, 9)];
      writeSplit('train', 3, true, pixels, labels);
      writeSplit('t10k', 3, false, pixels, labels);
      const ds = loadFashionMnist(dir);
      assert.deepEqual(Array.from(ds.train.labels), labels);
      assert.equal(ds.test.images.length, 3 * 32 * 32);
      for (let i = 0; i < 3; ++i) {
        for (let y = 0; y < 32; ++y) {
          for (let x = 0; x < 32; ++x) {
            const inside = y >= 2 && y < 30 && x >= 2 && x < 30;
            const expected = inside ? pixels[i * 784 + (y - 2) * 28 + (x - 2)] / 255 : 0;
            assert.equal(ds.train.images[(i * 32 + y) * 32 + x], Math.fround(expected), `seed ${rng.seed}`);
          }
        }
      }
    });

    it('names the file and the fault for wrong magic, truncation, bad labels and missing files', () => {
      const pixels = new Uint8Array(2 * 784);
      writeSplit('t10k', 2, false, pixels, [1, 2]);
      fs.writeFileSync(path.join(dir, 'train-images-idx3-ubyte'), idxLabels(new Array(20).fill(1)));
      fs.writeFileSync(path.join(dir, 'train-labels-idx1-ubyte'), idxLabels([1, 2]));
      assert.throws(() => loadFashionMnist(dir), /train-images-idx3-ubyte has magic number 0x801, expected 0x803/);
      fs.writeFileSync(path.join(dir, 'train-images-idx3-ubyte'), idxImages(2, 28, 28, pixels).subarray(0, 500));
      assert.throws(() => loadFashionMnist(dir), /train-images-idx3-ubyte has 500 bytes, expected 1584 for 2 images/);
      fs.writeFileSync(path.join(dir, 'train-images-idx3-ubyte'), idxImages(2, 28, 28, pixels));
      fs.writeFileSync(path.join(dir, 'train-labels-idx1-ubyte'), idxLabels([1, 12]));
      assert.throws(() => loadFashionMnist(dir), /train-labels-idx1-ubyte label 1 is 12, expected 0..9/);
      fs.writeFileSync(path.join(dir, 'train-labels-idx1-ubyte'), idxLabels([1]));
      assert.throws(() => loadFashionMnist(dir), /has 2 images but .*train-labels-idx1-ubyte has 1 labels/);
      fs.writeFileSync(path.join(dir, 'train-images-idx3-ubyte'), idxImages(0, 28, 28, new Uint8Array(0)));
      fs.writeFileSync(path.join(dir, 'train-labels-idx1-ubyte'), idxLabels([]));
      assert.throws(() => loadFashionMnist(dir), /train-images-idx3-ubyte holds no images/);
      fs.rmSync(path.join(dir, 'train-labels-idx1-ubyte'));
      assert.throws(() => loadFashionMnist(dir), /neither train-labels-idx1-ubyte nor train-labels-idx1-ubyte.gz/);
      fs.writeFileSync(path.join(dir, 'train-labels-idx1-ubyte.gz'), Buffer.from([0x1f, 0x8b, 1, 2, 3]));
      assert.throws(() => loadFashionMnist(dir), /train-labels-idx1-ubyte.gz is not a valid gzip file/);
    });

    const real = fs.existsSync(path.join(FASHION_MNIST_DIR, 'train-images-idx3-ubyte.gz'));
    (real ? it : it.skip)("reads the real files of Debian's dataset-fashion-mnist", function () {
      this.timeout(60000);
      const ds = loadFashionMnist();
      assert.equal(ds.train.count, 60000);
      assert.equal(ds.test.count, 10000);
      const counts = new Array(10).fill(0);
      for (const l of ds.test.labels) counts[l] += 1;
      assert.deepEqual(counts, new Array(10).fill(1000));
    });
  });

  describe('CIFAR-10 binary', () => {
    function record(label: number, rng: ReturnType<typeof freshRng>): Buffer {
      return Buffer.from([label, ...Array.from({ length: 3072 }, () => rng.int(0, 255))]);
    }

    it('reads label and planar RGB into NHWC', () => {
      const rng = freshRng();
      const recs = [record(3, rng), record(9, rng)];
      const split = parseCifarBatch(Buffer.concat(recs), 'x.bin');
      assert.deepEqual(Array.from(split.labels), [3, 9]);
      for (let i = 0; i < 2; ++i) {
        for (const p of [0, 1, 517, 1023]) {
          for (let c = 0; c < 3; ++c) {
            const expected = recs[i][1 + c * 1024 + p] / 255;
            assert.equal(split.images[(i * 1024 + p) * 3 + c], Math.fround(expected), `seed ${rng.seed}`);
          }
        }
      }
    });

    it('loads the six files of a directory and names the bad one', () => {
      const rng = freshRng();
      for (const name of [
        'data_batch_1',
        'data_batch_2',
        'data_batch_3',
        'data_batch_4',
        'data_batch_5',
        'test_batch',
      ]) {
        fs.writeFileSync(path.join(dir, `${name}.bin`), Buffer.concat([record(1, rng), record(2, rng)]));
      }
      const ds = loadCifar10(dir);
      assert.equal(ds.train.count, 10);
      assert.equal(ds.test.count, 2);
      fs.writeFileSync(path.join(dir, 'data_batch_3.bin'), Buffer.alloc(3000));
      assert.throws(() => loadCifar10(dir), /data_batch_3.bin has 3000 bytes, expected a positive multiple of 3073/);
      fs.writeFileSync(path.join(dir, 'data_batch_3.bin'), record(10, rng));
      assert.throws(() => loadCifar10(dir), /data_batch_3.bin record 0 has label 10, expected 0..9/);
      fs.writeFileSync(path.join(dir, 'data_batch_3.bin'), record(1, rng));
      fs.rmSync(path.join(dir, 'test_batch.bin'));
      assert.throws(() => loadCifar10(dir), /cannot read .*test_batch.bin/);
    });
  });
});
