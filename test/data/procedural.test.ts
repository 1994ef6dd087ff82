import { strict as assert } from 'assert';

import { proceduralShapes, SHAPE_CLASSES } from '../../src/data/procedural';
import { freshRng } from '../helpers/random';

describe('pact-shapes procedural dataset', () => {
  const seed = freshRng().int(1, 1e9);
  const ds = proceduralShapes({ seed, trainCount: 200, testCount: 50 });

  it('is the same for the same seed and different for another', () => {
    const again = proceduralShapes({ seed, trainCount: 200, testCount: 50 });
    assert.deepEqual(again.train.images, ds.train.images, `seed ${seed}`);
    assert.deepEqual(again.test.labels, ds.test.labels);
    const other = proceduralShapes({ seed: seed + 1, trainCount: 200, testCount: 50 });
    assert.notDeepEqual(other.train.images, ds.train.images);
  });

  it('has balanced classes, values in [0, 1] and the declared sizes', () => {
    assert.equal(ds.train.images.length, 200 * 32 * 32 * 3);
    const counts = new Array(SHAPE_CLASSES.length).fill(0);
    for (const l of ds.train.labels) counts[l] += 1;
    assert.deepEqual(counts, new Array(SHAPE_CLASSES.length).fill(20));
    for (const v of ds.train.images) assert.ok(v >= 0 && v <= 1);
  });

  it('puts one object covering a small part of each image, where the mask says', () => {
    const pixels = 32 * 32;
    for (let i = 0; i < ds.train.count; ++i) {
      const mask = ds.train.objectMasks.subarray(i * pixels, (i + 1) * pixels);
      const area = mask.reduce((a, b) => a + b, 0);
      assert.ok(area > 12 && area < 0.45 * pixels, `image ${i} (seed ${seed}): object area ${area}`);
    }
  });

  it('rejects bad options with the argument named', () => {
    assert.throws(() => proceduralShapes({ trainCount: 0 }), /trainCount must be an integer >= 1, got 0/);
    assert.throws(() => proceduralShapes({ size: 4.5 }), /size must be an integer >= 8/);
    assert.throws(
      () => proceduralShapes({ trainCount: 1e12 }),
      /trainCount 1000000000000 at 32x32 needs more than 2\^31/,
    );
  });
});
