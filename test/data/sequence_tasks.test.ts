import { strict as assert } from 'assert';

import {
  AdditionGenerator,
  NO_DIGIT,
  ParityGenerator,
  sequenceBatchAt,
  sequenceGenerator,
} from '../../src/data/sequence_tasks';
import { freshRng } from '../helpers/random';

describe('sequence tasks', () => {
  it('parity: ±1 entries at a random count in [min, max], target the parity of the non-zero count', () => {
    const rng = freshRng();
    const bits = rng.int(4, 20);
    const maxNonZero = rng.int(2, bits);
    const minNonZero = rng.int(0, maxNonZero - 1);
    const length = rng.int(1, 3);
    const gen = new ParityGenerator({ bits, minNonZero, maxNonZero, length });
    const batch = gen.batch(50, rng);
    assert.deepEqual(batch.x.shape, [50, length, bits]);
    assert.deepEqual(batch.targets.shape, [50, length]);
    const x = batch.x.dataSync();
    const y = batch.targets.dataSync();
    const counts = new Set<number>();
    for (let i = 0; i < 50 * length; ++i) {
      let count = 0;
      for (let j = 0; j < bits; ++j) {
        const v = x[i * bits + j];
        assert.ok(v === 0 || v === 1 || v === -1, `seed ${rng.seed}: entry ${v}`);
        if (v !== 0) count += 1;
      }
      assert.ok(count >= minNonZero && count <= maxNonZero, `seed ${rng.seed}: count ${count}`);
      assert.equal(y[i], count % 2, `seed ${rng.seed}: target of sequence step ${i}`);
      assert.equal(batch.difficulty[i], count, `seed ${rng.seed}: difficulty of ${i}`);
      counts.add(count);
    }
    // 50·length draws over at most 19 values: more than one value must appear.
    assert.ok(counts.size > 1, `seed ${rng.seed}: the non-zero count never varied`);
    batch.x.dispose();
    batch.targets.dispose();
  });

  it('addition: one-hot digits in, the running sum out (least significant digit first)', () => {
    const rng = freshRng();
    const length = rng.int(1, 6);
    const maxDigits = rng.int(1, 5);
    const gen = new AdditionGenerator({ length, maxDigits });
    assert.equal(gen.inputSize, 10 * maxDigits);
    assert.equal(gen.sumDigits, String((10 ** maxDigits - 1) * length).length);
    assert.equal(gen.outputSize, 11 * gen.sumDigits);
    const batch = gen.batch(20, rng);
    assert.deepEqual(batch.x.shape, [20, length, 10 * maxDigits]);
    assert.deepEqual(batch.targets.shape, [20, length, gen.sumDigits]);
    const x = batch.x.dataSync();
    const y = batch.targets.dataSync();
    const S = gen.sumDigits;
    for (let b = 0; b < 20; ++b) {
      let sum = 0;
      for (let t = 0; t < length; ++t) {
        const i = b * length + t;
        let value = 0;
        let digits = 0;
        for (let d = 0; d < maxDigits; ++d) {
          const block = Array.from(x.subarray((i * maxDigits + d) * 10, (i * maxDigits + d + 1) * 10));
          const ones = block.filter((v) => v === 1).length;
          assert.ok(
            block.every((v) => v === 0 || v === 1),
            `seed ${rng.seed}: one-hot block`,
          );
          if (ones === 0) {
            assert.ok(block.every((v) => v === 0));
            continue;
          }
          assert.equal(ones, 1, `seed ${rng.seed}: one digit per block`);
          assert.equal(digits, d, `seed ${rng.seed}: digits come first, unused blocks last`);
          value = value * 10 + block.indexOf(1);
          digits += 1;
        }
        assert.ok(digits >= 1 && digits <= maxDigits);
        assert.equal(batch.difficulty[i], digits);
        sum += value;
        let decoded = 0;
        let place = 1;
        let ended = false;
        for (let s = 0; s < S; ++s) {
          const c = y[i * S + s];
          if (c === NO_DIGIT) {
            ended = true;
            continue;
          }
          assert.ok(!ended, `seed ${rng.seed}: a digit after the end marker`);
          decoded += c * place;
          place *= 10;
        }
        assert.equal(decoded, sum, `seed ${rng.seed}: running sum of sequence ${b} at step ${t}`);
      }
    }
    batch.x.dispose();
    batch.targets.dispose();
  });

  it('a batch is a function of (seed, step) only', () => {
    const gen = sequenceGenerator('parity', { bits: 16 });
    const a = sequenceBatchAt(gen, 8, 3, 5);
    const b = sequenceBatchAt(gen, 8, 3, 5);
    const c = sequenceBatchAt(gen, 8, 3, 6);
    assert.deepEqual(Array.from(a.x.dataSync()), Array.from(b.x.dataSync()));
    assert.notDeepEqual(Array.from(a.x.dataSync()), Array.from(c.x.dataSync()));
    for (const t of [a, b, c]) {
      t.x.dispose();
      t.targets.dispose();
    }
  });

  it('rejects bad difficulty settings, naming the argument', () => {
    assert.throws(() => new ParityGenerator({ bits: 0 }), /ParityGenerator: bits must be an integer >= 1, got 0/);
    // 250,000 numbers of 12 digits sum past 2^53 (the targets were wrong from t = 196,873).
    assert.throws(
      () => new AdditionGenerator({ maxDigits: 12, length: 250000 }),
      /AdditionGenerator: length 250000 numbers of up to 12 digits can sum past 2\^53/,
    );
    assert.throws(() => new ParityGenerator({ bits: 8, maxNonZero: 9 }), /maxNonZero must be an integer in \[1, 8\]/);
    assert.throws(
      () => new ParityGenerator({ bits: 8, minNonZero: 5, maxNonZero: 4 }),
      /minNonZero must be an integer in \[0, 4\]/,
    );
    assert.throws(() => new AdditionGenerator({ maxDigits: 13 }), /maxDigits must be an integer in \[1, 12\]/);
    assert.throws(() => new AdditionGenerator({ length: 0 }), /length must be an integer >= 1/);
    assert.throws(() => sequenceGenerator('sort' as 'parity', { bits: 4 }), /task must be one of parity, addition/);
    assert.throws(() => new ParityGenerator({ bits: 4 }).batch(0, freshRng()), /batchSize must be an integer >= 1/);
  });
});
