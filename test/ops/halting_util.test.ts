/**
 * `detached(fn, x)`: the value of fn(x) with zero gradient with respect to x, also when fn returns x itself (tfjs'
 * customGrad passes the gradient through an output that is its input), and `stepMask`, built on it.
 */
import { strict as assert } from 'assert';

import * as tf from '@tensorflow/tfjs';

import { detached, stepMask } from '../../src/ops/halting_util';
import { freshRng } from '../helpers/random';

describe('detached and stepMask', () => {
  it('give their values with zero gradient, whatever fn returns', () => {
    const rng = freshRng();
    const values = rng.normal(7);
    const x = tf.tensor(values);
    const cases: Array<[string, (u: tf.Tensor) => tf.Tensor, number[]]> = [
      ['identity', (u) => u, Array.from(values)],
      ['a new tensor', (u) => tf.mul(u, 2), Array.from(values, (v) => Math.fround(2 * v))],
    ];
    for (const [name, fn, expected] of cases) {
      // loss = Σ 3·detached(x) + Σ x: only the second term has a gradient (1 everywhere).
      const loss = (t: tf.Tensor) => tf.add(tf.sum(tf.mul(detached(fn, t), 3)), tf.sum(t));
      assert.deepEqual(Array.from(detached(fn, x).dataSync()), expected, `${name}: value`);
      assert.deepEqual(Array.from(tf.grad(loss)(x).dataSync()), new Array(7).fill(1), `${name}: gradient`);
    }
    const mask = (t: tf.Tensor) => tf.sum(tf.mul(stepMask(t), t));
    assert.deepEqual(
      Array.from(tf.grad(mask)(x).dataSync()),
      Array.from(values, (v) => (v > 0 ? 1 : 0)),
      'stepMask: [x > 0] as a constant',
    );
  });
});
