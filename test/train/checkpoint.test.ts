import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { loadCheckpoint, saveCheckpoint } from '../../src/train/checkpoint';
import { freshRng } from '../helpers/random';

describe('checkpoints', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pact-ckpt-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('round-trips metadata and arrays exactly', () => {
    const rng = freshRng();
    const a = rng.normal(7 * 3);
    const b = Int32Array.from({ length: 5 }, () => rng.int(-100, 100));
    const file = path.join(dir, 'sub', 'ckpt.bin');
    saveCheckpoint(
      file,
      { step: 17, name: 'x' },
      {
        a: { shape: [7, 3], dtype: 'float32', values: a },
        b: { shape: [5], dtype: 'int32', values: b },
        empty: { shape: [0], dtype: 'float32', values: new Float32Array(0) },
      },
    );
    const back = loadCheckpoint<{ step: number; name: string }>(file);
    assert.deepEqual(back.meta, { step: 17, name: 'x' });
    assert.deepEqual(back.arrays.a.values, a);
    assert.deepEqual(back.arrays.b.values, b);
    assert.deepEqual(back.arrays.a.shape, [7, 3]);
    assert.equal(back.arrays.empty.values.length, 0);
    assert.deepEqual(fs.readdirSync(path.dirname(file)), ['ckpt.bin'], 'no temporary file is left behind');
  });

  it('replaces the previous checkpoint only once the new one is complete', () => {
    const file = path.join(dir, 'ckpt.bin');
    saveCheckpoint(file, { step: 1 }, {});
    assert.throws(
      () =>
        saveCheckpoint(file, { step: 2 }, { bad: { shape: [2, 2], dtype: 'float32', values: new Float32Array(3) } }),
      /array bad has 3 values, its shape \[2,2\] needs 4/,
    );
    assert.equal(loadCheckpoint<{ step: number }>(file).meta.step, 1);
  });

  it('names the file and the fault when it is corrupt or truncated', () => {
    const file = path.join(dir, 'ckpt.bin');
    saveCheckpoint(file, { step: 1 }, { w: { shape: [100], dtype: 'float32', values: new Float32Array(100) } });
    const full = fs.readFileSync(file);
    fs.writeFileSync(file, full.subarray(0, full.length - 10));
    assert.throws(() => loadCheckpoint(file), /ckpt.bin is truncated \(array w ends past the file\)/);
    fs.writeFileSync(file, Buffer.from('NOTACKPTxxxx'));
    assert.throws(() => loadCheckpoint(file), /ckpt.bin is not a tfjs-pact checkpoint/);
    assert.throws(() => loadCheckpoint(path.join(dir, 'missing')), /cannot read .*missing/);
  });
});
