/**
 * FLOPs (SACT's flopsometer rule): the dense ResNet-32 against a layer-by-layer hand count and the field notes'
 * 0.137 GFLOP, known masks (every unit, first units only, a given iterations map) against hand counts, and the
 * counts a forward pass of the adaptive model reports.
 */
import { strict as assert } from 'assert';

import * as tf from '@tensorflow/tfjs';

import {
  adaptiveResNetFlops,
  denseResNetFlops,
  forwardFlops,
  geometryOf,
  stageActivity,
  type ResNetGeometry,
} from '../../src/models/flops';
import { AdaptiveResNet, disposeForward } from '../../src/models/psact';
import { requirePactCpu } from '../helpers/backends';
import { freshRng } from '../helpers/random';

const RESNET32: ResNetGeometry = {
  height: 32,
  width: 32,
  inputChannels: 3,
  widths: [16, 32, 64],
  unitsPerStage: 5,
  numClasses: 10,
};

/** Multiply-adds of one 3x3 convolution at an output of size s x s. */
const conv3 = (s: number, cin: number, cout: number) => s * s * 9 * cin * cout;

describe('FLOPs (SACT flopsometer rule)', function () {
  this.timeout(60000);

  it('counts the dense ResNet-32 as a layer-by-layer hand count: 69,124,736 multiply-adds = 0.138 GFLOP', () => {
    const stem = conv3(32, 3, 16);
    const stage1 = 10 * conv3(32, 16, 16);
    const stage2 = conv3(16, 16, 32) + 16 * 16 * 16 * 32 + 9 * conv3(16, 32, 32);
    const stage3 = conv3(8, 32, 64) + 8 * 8 * 32 * 64 + 9 * conv3(8, 64, 64);
    const linear = 64 * 10;
    const macs = stem + stage1 + stage2 + stage3 + linear;
    assert.equal(macs, 69124736);
    assert.equal(denseResNetFlops(RESNET32), 2 * macs);
    // The field notes' 0.137 GFLOP is SACT's ResNet-32, whose shortcuts have no 1x1 projections.
    const withoutProjections = 2 * (macs - 16 * 16 * 16 * 32 - 8 * 8 * 32 * 64);
    assert.ok(Math.abs(withoutProjections / 0.137e9 - 1) < 0.01, `${withoutProjections} vs 0.137e9`);
    // ResNet-110: 17 more units of two convolutions per stage than ResNet-32's 4 (+ 13 x 2 convs per stage).
    const r110 = denseResNetFlops({ ...RESNET32, unitsPerStage: 18 });
    const extra = 13 * 2 * (conv3(32, 16, 16) + conv3(16, 32, 32) + conv3(8, 64, 64));
    assert.equal(r110, 2 * (macs + extra));
  });

  it('counts known activity: all units, first units only, and an iterations map', () => {
    const L = RESNET32.unitsPerStage;
    const sizes = [32, 16, 8];
    const haltConv = (s: number, c: number) => s * s * 9 * c;
    const all = sizes.map((s) => ({
      unitPositions: (L - 1) * s * s,
      conv1Positions: (L - 1) * s * s,
      haltPositions: (L - 1) * s * s,
      haltUnits: L - 1,
    }));
    const halting = sizes.reduce(
      (sum, s, k) => sum + (L - 1) * (haltConv(s, RESNET32.widths[k]) + RESNET32.widths[k]),
      0,
    );
    assert.equal(adaptiveResNetFlops(RESNET32, all), denseResNetFlops(RESNET32) + 2 * halting);

    const firstOnly = sizes.map((s) => ({ unitPositions: 0, conv1Positions: 0, haltPositions: s * s, haltUnits: 1 }));
    const removed = (L - 1) * 2 * (conv3(32, 16, 16) + conv3(16, 32, 32) + conv3(8, 64, 64));
    const onceHalting = sizes.reduce((sum, s, k) => sum + haltConv(s, RESNET32.widths[k]) + RESNET32.widths[k], 0);
    assert.equal(adaptiveResNetFlops(RESNET32, firstOnly), denseResNetFlops(RESNET32) - 2 * removed + 2 * onceHalting);

    // A 2x2 map with L = 3: units executed 1, 2, 3, 3 -> masked units ran at 0 + 1 + 2 + 2 positions; halting units
    // after iterations 1 and 2 ran at min(k, 2) = 1 + 2 + 2 + 2 positions; both halting units ran somewhere.
    assert.deepEqual(stageActivity([1, 2, 3, 3], 3, 7), {
      unitPositions: 5,
      conv1Positions: 7,
      haltPositions: 7,
      haltUnits: 2,
    });
    assert.deepEqual(stageActivity([1, 1, 1, 1], 3, 0), {
      unitPositions: 0,
      conv1Positions: 0,
      haltPositions: 4,
      haltUnits: 1,
    });
    // The executed rule counts the first convolution on the dilated set instead.
    const g: ResNetGeometry = {
      height: 2,
      width: 2,
      inputChannels: 1,
      widths: [1, 1, 1],
      unitsPerStage: 3,
      numClasses: 1,
    };
    const act = [stageActivity([1, 2, 3, 3], 3, 7), stageActivity([1], 3, 0), stageActivity([1], 3, 0)];
    assert.equal(adaptiveResNetFlops(g, act, 'executed') - adaptiveResNetFlops(g, act, 'sact'), 2 * (7 - 5) * 9);
    assert.throws(() => adaptiveResNetFlops(g, act.slice(1)), /stages must have one entry per stage \(3\), got 2/);
  });

  it('reports the FLOPs of a forward pass: dense plus halting when nothing halts, first units when all halt', () => {
    requirePactCpu();
    const rng = freshRng();
    const model = new AdaptiveResNet({ unitsPerStage: 3, numClasses: 4, widths: [4, 8, 8], seed: rng.int(1, 100) });
    const g = geometryOf(model.config, 8, 8);
    const x = tf.tensor4d(rng.normal(2 * 8 * 8 * 3), [2, 8, 8, 3]);
    for (const [bias, units] of [
      [-100, 3],
      [100, 1],
    ] as const) {
      for (const p of model.halting.flat()) p.bias.assign(tf.tensor1d([bias]));
      const r = model.forward(x, { mode: 'thresholded', training: false });
      const f = forwardFlops(model, r, 8, 8);
      const expected = adaptiveResNetFlops(
        g,
        [8, 4, 2].map((s) => stageActivity(new Array(s * s).fill(units), 3, units === 3 ? 2 * s * s : 0)),
      );
      assert.deepEqual(f.flops, [expected, expected], `seed ${rng.seed} bias ${bias}`);
      assert.deepEqual(f.executedFlops, f.flops, `seed ${rng.seed} bias ${bias}: dilation adds nothing here`);
      assert.equal(f.denseFlops, denseResNetFlops(g));
      // Maps of 8x8 images are not those of 32x32 ones.
      assert.throws(() => forwardFlops(model, r, 32, 32), /forwardFlops: stage 0's maps are 8x8, not those of 32x32/);
      disposeForward(r);
    }
    assert.throws(() => adaptiveResNetFlops(g, [], 'bogus' as 'sact'), /rule must be 'sact' or 'executed'/);
    assert.throws(() => stageActivity([5, 0, -1], 3, 0), /stageActivity: iterations\[0\] is 5, expected 1 … 3/);
    assert.throws(() => geometryOf(model.config, 0, 8), /geometryOf: height must be a positive integer, got 0/);
    x.dispose();
    model.dispose();
  });
});
