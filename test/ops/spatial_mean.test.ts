import { strict as assert } from 'assert';

import * as tf from '@tensorflow/tfjs';

import { PACT_CPU } from '../../src';
import { spatialMean } from '../../src/ops/spatial_mean';
import { onBackend, requirePactCpu } from '../helpers/backends';
import { expectClose } from '../helpers/compare';
import { freshRng } from '../helpers/random';

describe('spatialMean (tf.mean over height and width with a one-pass gradient)', () => {
  before(requirePactCpu);

  it('equals tf.mean(x, [1, 2]) and its gradient (float64 sums), on pact-cpu and tfjs-backend-cpu', () => {
    const rng = freshRng();
    for (let i = 0; i < 6; ++i) {
      const shape: [number, number, number, number] = [rng.int(1, 4), rng.int(1, 9), rng.int(1, 9), rng.int(1, 20)];
      const [b, h, w, c] = shape;
      const x = rng.normal(b * h * w * c);
      const weights = rng.normal(b * c); // loss = sum(spatialMean(x) * weights)
      // Float64 reference: mean[b, c] = sum over (y, x) / (h w); d loss / d x[b, y, x, c] = weights[b, c] / (h w).
      const mean = new Float64Array(b * c);
      for (let p = 0; p < b * h * w; ++p) {
        for (let k = 0; k < c; ++k) mean[Math.floor(p / (h * w)) * c + k] += x[p * c + k] / (h * w);
      }
      const grad = Float64Array.from(x, (_, j) => {
        const p = Math.floor(j / c);
        return weights[Math.floor(p / (h * w)) * c + (j % c)] / (h * w);
      });
      for (const backend of [PACT_CPU, 'cpu']) {
        const [value, dx] = onBackend(backend, () => {
          const xt = tf.tensor4d(x, shape);
          const loss = (t: tf.Tensor) => tf.sum(tf.mul(spatialMean(t as tf.Tensor4D), tf.tensor2d(weights, [b, c])));
          return [spatialMean(xt), tf.grad(loss)(xt)];
        });
        const label = `${backend} x [${shape}] (seed ${rng.seed})`;
        expectClose(value, mean, { atol: 1e-5, rtol: 1e-5 }, `${label} value`);
        expectClose(dx, grad, { atol: 1e-6, rtol: 1e-5 }, `${label} gradient`);
      }
    }
  });

  it('rejects anything but a 4-D tensor, naming the argument', () => {
    assert.throws(() => spatialMean(tf.zeros([2, 3, 4]) as unknown as tf.Tensor4D), /spatialMean: x must be a 4-D/);
    assert.throws(() => spatialMean([1, 2] as unknown as tf.Tensor4D), /x must be a 4-D tf.Tensor .* got object/);
  });
});
