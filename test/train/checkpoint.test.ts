import { strict as assert } from 'assert';
import * as fs from 'fs';
// The module object itself (not the read-only namespace view above): checkpoint.ts looks its functions up on it at
// each call, so replacing one here makes the checkpoint's own write fail.
import fsModule from 'fs';
import * as os from 'os';
import * as path from 'path';

import { loadCheckpoint, saveCheckpoint } from '../../src/train/checkpoint';
import { freshRng } from '../helpers/random';

const bytesOf = (v: Float32Array | Int32Array) => Buffer.from(v.buffer, v.byteOffset, v.byteLength);

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

  // The test above fails before any file is opened (the length check), so it would pass with a plain
  // fs.writeFileSync(file, data). Here the write itself fails once it has started: a disk that fills up half-way
  // through the bytes (writeSync writes part of them, then throws ENOSPC), and one whose flush fails (fsyncSync
  // throws EIO after every byte was written). Either way the previous checkpoint must survive intact, since a run
  // resumes from it; an in-place write would have truncated it already.
  for (const [fn, fault] of [
    ['writeSync', 'ENOSPC'],
    ['fsyncSync', 'EIO'],
  ] as const) {
    it(`keeps the previous checkpoint byte for byte when ${fn} fails part-way through a save (${fault})`, () => {
      const rng = freshRng();
      const file = path.join(dir, 'ckpt.bin');
      const w = rng.normal(64);
      const k = Int32Array.from({ length: 9 }, () => rng.int(-1000, 1000));
      saveCheckpoint(
        file,
        { step: 1 },
        {
          w: { shape: [8, 8], dtype: 'float32', values: w },
          k: { shape: [9], dtype: 'int32', values: k },
        },
      );
      const before = fs.readFileSync(file);

      const real = { writeSync: fsModule.writeSync, fsyncSync: fsModule.fsyncSync };
      let calls = 0;
      const fail = () => Object.assign(new Error(`${fault}: injected failure, ${fn}`), { code: fault });
      const fakeWriteSync = (fd: number, data: NodeJS.ArrayBufferView) => {
        calls += 1;
        const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
        real.writeSync(fd, bytes.subarray(0, bytes.length >> 1)); // half the bytes reach the file
        throw fail();
      };
      const fakeFsyncSync = () => {
        calls += 1;
        throw fail();
      };
      Object.assign(fsModule, fn === 'writeSync' ? { writeSync: fakeWriteSync } : { fsyncSync: fakeFsyncSync });
      try {
        assert.throws(
          () =>
            saveCheckpoint(
              file,
              { step: 2 },
              {
                w: { shape: [16, 16], dtype: 'float32', values: rng.normal(256) },
                k: { shape: [9], dtype: 'int32', values: new Int32Array(9).fill(7) },
              },
            ),
          new RegExp(`${fault}: injected failure`),
        );
      } finally {
        Object.assign(fsModule, real);
      }
      assert.ok(calls > 0, `the save reached ${fn}`);

      assert.deepEqual(fs.readFileSync(file), before, 'the checkpoint file is unchanged');
      const back = loadCheckpoint<{ step: number }>(file);
      assert.equal(back.meta.step, 1);
      assert.deepEqual(back.arrays.w.shape, [8, 8]);
      assert.deepEqual(bytesOf(back.arrays.w.values), bytesOf(w));
      assert.deepEqual(bytesOf(back.arrays.k.values), bytesOf(k));
      assert.deepEqual(fs.readdirSync(dir), ['ckpt.bin'], 'the temporary file is removed');
    });
  }

  // write(2) may take fewer bytes than asked (a single call writes at most about 2 GiB on Linux): the save must go
  // on until every byte is written, not fsync and rename a truncated file over the good one.
  it('completes a save whose writes each take only part of the bytes', () => {
    const rng = freshRng();
    const file = path.join(dir, 'ckpt.bin');
    const w = rng.normal(1000);
    const real = fsModule.writeSync;
    let calls = 0;
    const shortWrite = (fd: number, data: NodeJS.ArrayBufferView, offset = 0, length?: number) => {
      calls += 1;
      const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      const n = Math.min(length ?? bytes.length - offset, 777);
      return real(fd, bytes, offset, n);
    };
    Object.assign(fsModule, { writeSync: shortWrite });
    try {
      saveCheckpoint(file, { step: 3 }, { w: { shape: [1000], dtype: 'float32', values: w } });
    } finally {
      Object.assign(fsModule, { writeSync: real });
    }
    assert.ok(calls > 5, `the save took ${calls} short writes`);
    const back = loadCheckpoint<{ step: number }>(file);
    assert.equal(back.meta.step, 3);
    assert.deepEqual(bytesOf(back.arrays.w.values), bytesOf(w));
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
