/**
 * pact-cpu's output-array pool (src/backends/pact_cpu/backend.ts): disposed outputs of native kernels are reused;
 * an array that was read (dataSync) or that a tfjs-backend-cpu kernel's output shares (Slice's views) is never
 * reused; every native kernel writes all of a reused (dirty) array, so a training step gives bit-identical results
 * with the pool full of stale arrays and with the pool off; a repeated step allocates nothing new. A disposed
 * masked-convolution output or input gradient comes back all zeros (the rows where it may be nonzero cleared) for the
 * next masked convolution.
 */
import { strict as assert } from 'assert';

import * as tf from '@tensorflow/tfjs';

import { AdaptiveResNet, PACT_CPU, PactCpuBackend, PreActResNet, softmaxCrossEntropy } from '../../src';
import { maskedConv2d } from '../../src/ops/masked_conv2d';
import { requirePactCpu } from '../helpers/backends';
import { freshRng } from '../helpers/random';

const POOL_BYTES = 256 * 1024 * 1024;

/** [mask > 0] dilated by 1 (3x3 windows) in each image of shape [b, h, w]. */
function dilated(mask: Float32Array, [b, h, w]: number[]): Float32Array {
  const out = new Float32Array(mask.length);
  for (let i = 0; i < b; ++i)
    for (let y = 0; y < h; ++y)
      for (let x = 0; x < w; ++x)
        for (let dy = -1; dy <= 1; ++dy)
          for (let dx = -1; dx <= 1; ++dx) {
            const [yy, xx] = [y + dy, x + dx];
            if (yy >= 0 && yy < h && xx >= 0 && xx < w && mask[(i * h + yy) * w + xx] > 0) out[(i * h + y) * w + x] = 1;
          }
  return out;
}

describe('pact-cpu buffer pool', () => {
  let backend: PactCpuBackend;
  let limit: number;
  before(() => {
    requirePactCpu();
    // (tf.findBackend before the engine has chosen a backend can return an instance the engine then replaces.)
    tf.setBackend(PACT_CPU);
    backend = tf.backend() as PactCpuBackend;
    limit = backend.bufferPoolStats().limitBytes;
  });
  after(() => backend.resetBufferPool(limit));

  it('reuses the array of a disposed output for the next output of that length', () => {
    backend.resetBufferPool(POOL_BYTES);
    const rng = freshRng();
    const x = tf.tensor1d(rng.normal(1000));
    tf.relu(x).dispose();
    const misses = backend.bufferPoolStats().misses;
    const y = tf.neg(x);
    const stats = backend.bufferPoolStats();
    assert.equal(stats.misses, misses, 'no new array');
    assert.ok(stats.hits >= 1);
    const expected = Float32Array.from(x.dataSync(), (v) => -v);
    assert.deepEqual(y.dataSync(), expected);
    tf.dispose([x, y]);
  });

  it('gives exact zeros and ones from ZerosLike/OnesLike on reused (stale) arrays', () => {
    backend.resetBufferPool(POOL_BYTES);
    const rng = freshRng();
    const n = rng.int(100, 2000);
    const x = tf.tensor1d(rng.normal(n));
    for (let i = 0; i < 3; ++i) tf.neg(x).dispose(); // stale values of length n in the pool
    const [zeros, ones] = [tf.zerosLike(x), tf.onesLike(x)];
    assert.ok(backend.bufferPoolStats().hits >= 2);
    assert.deepEqual(zeros.dataSync(), new Float32Array(n));
    assert.deepEqual(ones.dataSync(), new Float32Array(n).fill(1));
    assert.deepEqual(tf.zerosLike(tf.tensor1d([3, 4], 'int32')).dataSync(), new Int32Array(2));
    tf.dispose([x, zeros, ones]);
  });

  it('never reuses an array that was read: values held from dataSync stay as they were', () => {
    backend.resetBufferPool(POOL_BYTES);
    const rng = freshRng();
    const x = tf.tensor2d(rng.normal(4 * 250), [4, 250]);
    const t = tf.relu(x);
    const held = t.dataSync();
    const copy = Float32Array.from(held);
    t.dispose();
    const others = Array.from({ length: 5 }, () => tf.neg(x));
    assert.deepEqual(held, copy);
    tf.dispose([x, ...others]);
  });

  it("never reuses an array a tfjs-backend-cpu view shares (a contiguous Slice's subarray)", () => {
    backend.resetBufferPool(POOL_BYTES);
    const rng = freshRng();
    const values = rng.normal(4 * 250);
    const x = tf.tensor2d(values, [4, 250]);
    const t = tf.relu(x);
    const s = tf.slice(t, [1, 0], [2, 250]);
    t.dispose();
    const others = Array.from({ length: 5 }, () => tf.neg(x));
    const expected = Float32Array.from(values.subarray(250, 750), (v) => Math.max(0, v));
    assert.deepEqual(s.dataSync(), expected);
    tf.dispose([x, s, ...others]);
  });

  it('serves a disposed masked output, its active rows cleared, as the zeros of the next masked convolution', () => {
    // Each round a new mask: the previous output's active rows (stale values) must be cleared where the new mask is
    // inactive, and the result equals the one computed into a fresh array. A kernel that writes every element may
    // take such an array too.
    const rng = freshRng();
    const [b, h, w, c] = [2, rng.int(5, 9), rng.int(5, 9), 8];
    const x = tf.tensor4d(rng.normal(b * h * w * c), [b, h, w, c]);
    const filter = tf.tensor4d(rng.normal(9 * c * c), [3, 3, c, c]);
    // Three rounds reuse a sparse output (cleared), one a dense one (not cleared: the kernel zeroes).
    const masks = [0.15, 0.05, 0.8, 0.1].map((density) => {
      return Float32Array.from({ length: b * h * w }, () => (rng.next() < density ? 1 : rng.next() < 0.2 ? NaN : 0));
    });
    const conv = (m: Float32Array, input = x) => maskedConv2d(input, filter, tf.tensor3d(m, [b, h, w]), 1, 'same');
    backend.resetBufferPool(0);
    const expected = masks.map((m) => conv(m).dataSync());
    backend.resetBufferPool(POOL_BYTES);
    let previous = conv(masks[masks.length - 1]);
    for (const [i, m] of masks.entries()) {
      const previousMask = masks[(i + masks.length - 1) % masks.length];
      previous.dispose();
      // The input gradient (same length as y here) is not zero outside the mask, only outside its dilation by the
      // filter's radius: it joins the zero pool only when that holds at most 30% of the rows.
      tf.grad((t: tf.Tensor) => conv(previousMask, t as tf.Tensor4D))(x).dispose();
      const zeroHits = backend.bufferPoolStats().zeroHits;
      const y = conv(m);
      // The gradient's forward output (the previous mask) or its input gradient is the array y gets: cleared only
      // when at most 30% of its rows may be nonzero (else the kernel zeroes the inactive rows itself).
      const sparse = (v: Float32Array) => v.filter((a) => a > 0).length <= 0.3 * v.length;
      const cleared = sparse(previousMask) || sparse(dilated(previousMask, [b, h, w]));
      assert.equal(backend.bufferPoolStats().zeroHits, zeroHits + (cleared ? 1 : 0), `round ${i}: zero pool`);
      // Read a copy through a kernel, so that y's own array stays reusable.
      const copy = tf.mul(y, 1);
      assert.deepEqual(copy.dataSync(), expected[i], `seed ${rng.seed} round ${i}`);
      copy.dispose();
      previous = y;
    }
    previous.dispose();
    // A plain output of y's length leaves the zero pool's arrays to the next masked convolution (a dense
    // convolution between two masked ones must not take them every time) while the pool holds less than half its
    // bound; above that it takes them, and being a kernel that writes every element, it gives exact values on the
    // stale array.
    const bytes = b * h * w * c * 4;
    backend.resetBufferPool(POOL_BYTES); // only the zero pool holds arrays of y's length after this
    const [first, second] = [conv(masks[0]), conv(masks[3])];
    const values = tf.mul(first, 1);
    first.dispose();
    const plain = backend.bufferPoolStats();
    const doubled = tf.add(values, values);
    assert.equal(backend.bufferPoolStats().misses, plain.misses + 1, 'the zero-pool array was taken');
    const zeroHits = backend.bufferPoolStats().zeroHits;
    const again = conv(masks[0]);
    assert.equal(backend.bufferPoolStats().zeroHits, zeroHits + 1, 'the masked convolution found no zeroed array');
    second.dispose();
    backend.resetBufferPool(1.5 * bytes); // one pooled array fills more than half of it
    again.dispose();
    const missesCrowded = backend.bufferPoolStats().misses;
    const negated = tf.neg(values);
    assert.equal(backend.bufferPoolStats().misses, missesCrowded, 'a crowded pool kept its zero-pool array');
    assert.deepEqual(
      negated.dataSync(),
      Float32Array.from(values.dataSync(), (v) => -v),
    );
    assert.deepEqual(
      doubled.dataSync(),
      Float32Array.from(values.dataSync(), (v) => 2 * v),
    );
    tf.dispose([x, filter, values, negated, doubled]);
  });

  it("serves a disposed masked input gradient, its mask's dilation cleared, as the zeros of the next masked convolution", () => {
    // Rounds of forward + backward with sparse masks (their dilations under 30% of the rows): each round's forward
    // and backprop-input take the previous round's disposed outputs, cleared at the rows they may be nonzero, and
    // must give the values of a fresh array bit for bit (dx's stale values lie in the whole 3x3 footprint).
    const rng = freshRng();
    const [b, h, w, c] = [2, rng.int(10, 14), rng.int(10, 14), 8];
    const x = tf.tensor4d(rng.normal(b * h * w * c), [b, h, w, c]);
    const filter = tf.tensor4d(rng.normal(9 * c * c), [3, 3, c, c]);
    const dy = tf.tensor4d(rng.normal(b * h * w * c), [b, h, w, c]);
    const masks = Array.from({ length: 4 }, () => {
      for (;;) {
        const m = Float32Array.from({ length: b * h * w }, () => (rng.next() < 0.03 ? 1 : 0));
        const ones = dilated(m, [b, h, w]).filter((v) => v > 0).length;
        if (ones > 0 && ones <= 0.3 * m.length) return m;
      }
    });
    const step = (m: Float32Array) => {
      const mask = tf.tensor3d(m, [b, h, w]);
      const [dx, df] = tf.grads((a, f) => maskedConv2d(a as tf.Tensor4D, f as tf.Tensor4D, mask, 1, 'same'))(
        [x, filter],
        dy,
      );
      mask.dispose();
      return [dx, df];
    };
    backend.resetBufferPool(0);
    const expected = masks.map((m) => tf.tidy(() => step(m).map((t) => t.dataSync())));
    backend.resetBufferPool(POOL_BYTES);
    step(masks[masks.length - 1]).forEach((t) => t.dispose());
    for (const [i, m] of masks.entries()) {
      const zeroHits = backend.bufferPoolStats().zeroHits;
      const [dx, df] = step(m);
      assert.equal(backend.bufferPoolStats().zeroHits, zeroHits + 2, `round ${i}: forward and backprop-input`);
      // Read copies through a kernel, so that the outputs' arrays stay reusable.
      const copies = [tf.mul(dx, 1), tf.mul(df, 1)];
      assert.deepEqual(copies[0].dataSync(), expected[i][0], `dx, seed ${rng.seed} round ${i}`);
      assert.deepEqual(copies[1].dataSync(), expected[i][1], `dfilter, seed ${rng.seed} round ${i}`);
      tf.dispose([dx, df, ...copies]);
    }
    tf.dispose([x, filter, dy]);
  });

  it('gives bit-identical training steps with stale arrays in the pool and with the pool off', () => {
    const rng = freshRng();
    const seed = rng.int(1, 1000);
    const x = rng.normal(4 * 8 * 8 * 3);
    const labels = Int32Array.from({ length: 4 }, () => rng.int(0, 9));
    const step = (adaptive: boolean) => {
      const model = adaptive
        ? new AdaptiveResNet({ unitsPerStage: 2, numClasses: 10, widths: [8, 16, 16], seed, haltBias: 0 })
        : new PreActResNet({ unitsPerStage: 1, numClasses: 10, widths: [8, 16, 16], seed });
      const vars = model.trainableVariables();
      const { value, grads } = tf.variableGrads(() => {
        const input = tf.tensor4d(x, [4, 8, 8, 3]);
        const logits =
          model instanceof AdaptiveResNet
            ? model.forward(input, { mode: 'relaxed', training: true, temperature: 0.5, delta: 0.01, seed }).logits
            : model.forward(input, { training: true });
        return softmaxCrossEntropy(logits, tf.tensor1d(labels, 'int32'));
      }, vars);
      const out = [value, ...vars.map((v) => grads[v.name] ?? tf.zerosLike(v))].map((t) =>
        Float32Array.from(t.dataSync()),
      );
      tf.dispose([value, ...Object.values(grads)]);
      model.dispose();
      return out;
    };
    for (const adaptive of [false, true]) {
      backend.resetBufferPool(0);
      const reference = step(adaptive);
      backend.resetBufferPool(POOL_BYTES);
      step(adaptive); // fills the pool with arrays of every size the step uses
      // Poison the pool: stale values that a kernel not writing every element would leak.
      const poisoned = step(adaptive);
      assert.ok(backend.bufferPoolStats().hits > 0, 'the pool served outputs');
      poisoned.forEach((v, i) => assert.deepEqual(v, reference[i], `${adaptive ? 'PSACT' : 'ResNet'} output ${i}`));
    }
  });

  it('serves a repeated training step from the pool (no new arrays after the first)', () => {
    backend.resetBufferPool(POOL_BYTES);
    const model = new PreActResNet({ unitsPerStage: 1, numClasses: 10, widths: [8, 8, 16], seed: 1 });
    const x = tf.randomNormal([4, 8, 8, 3]);
    const labels = tf.tensor1d([1, 2, 3, 4], 'int32');
    const step = () =>
      tf.tidy(() => {
        const { value, grads } = tf.variableGrads(() =>
          softmaxCrossEntropy(model.forward(x as tf.Tensor4D, { training: true }), labels as tf.Tensor1D),
        );
        tf.dispose([value, ...Object.values(grads)]);
      });
    step();
    step();
    const misses = backend.bufferPoolStats().misses;
    step();
    assert.equal(backend.bufferPoolStats().misses, misses);
    tf.dispose([x, labels]);
    model.dispose();
  });
});
