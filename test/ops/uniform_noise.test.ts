import { strict as assert } from 'assert';

import * as tf from '@tensorflow/tfjs';

import { nativeAddon, PACT_CPU, PACT_UNIFORM_NOISE, uniformNoise } from '../../src';
import { requirePactCpu } from '../helpers/backends';
import { freshRng } from '../helpers/random';

/** Kolmogorov-Smirnov statistic of `values` against U(0, 1). */
function ksUniform(values: Float32Array): number {
  const sorted = Float64Array.from(values).sort();
  const n = sorted.length;
  let d = 0;
  for (let i = 0; i < n; ++i) d = Math.max(d, (i + 1) / n - sorted[i], sorted[i] - i / n);
  return d;
}

// Each statistical check below fails by chance with probability < 1e-4 for a correct generator (fresh seeds).
describe('uniformNoise (the halting units’ U(0, 1) draws: counter-based, native on pact-cpu)', () => {
  before(() => {
    requirePactCpu();
    tf.setBackend(PACT_CPU);
  });

  it('runs natively on pact-cpu and gives draws strictly inside (0, 1) of the asked shape', () => {
    assert.equal(tf.getBackend(), PACT_CPU);
    assert.ok(tf.getKernel(PACT_UNIFORM_NOISE, PACT_CPU) !== undefined);
    const rng = freshRng();
    const t = uniformNoise([3, 7, 5], rng.int(0, 2 ** 30));
    assert.deepEqual(t.shape, [3, 7, 5]);
    assert.equal(t.dtype, 'float32');
    for (const v of t.dataSync()) assert.ok(v > 0 && v < 1, `draw ${v} outside (0, 1) (seed=${rng.seed})`);
    t.dispose();
  });

  it('is uniform (Kolmogorov-Smirnov), serially uncorrelated and uniform in pairs (chi-squared), fresh seeds', () => {
    const rng = freshRng();
    const n = 200_000;
    for (const seed of [rng.int(0, 2 ** 30), -rng.int(1, 2 ** 30), rng.int(0, 2 ** 30) * 2 ** 20]) {
      const v = scopedDraws([n], seed);
      const label = `noise seed ${seed} (seed=${rng.seed})`;
      // P(D > 2.0 / sqrt(n)) < 1e-3 asymptotically (Kolmogorov's distribution: 2 e^{-2 * 4} = 6.7e-4).
      const d = ksUniform(v);
      assert.ok(d < 2.0 / Math.sqrt(n), `KS D = ${d} >= ${2.0 / Math.sqrt(n)}, ${label}`);
      // Lag-1 correlation: about N(0, 1/n); |r| < 4.5 / sqrt(n) fails with probability 7e-6.
      let sxy = 0;
      for (let i = 0; i + 1 < n; ++i) sxy += (v[i] - 0.5) * (v[i + 1] - 0.5);
      const r = sxy / (n - 1) / (1 / 12);
      assert.ok(Math.abs(r) < 4.5 / Math.sqrt(n), `lag-1 correlation ${r}, ${label}`);
      // Consecutive pairs on a 10 x 10 grid: chi-squared with 99 degrees of freedom, P(> 160) < 1e-4.
      const counts = new Float64Array(100);
      for (let i = 0; i + 1 < n; i += 2) counts[Math.floor(v[i] * 10) * 10 + Math.floor(v[i + 1] * 10)]++;
      const expected = n / 2 / 100;
      const chi2 = counts.reduce((s, c) => s + (c - expected) ** 2 / expected, 0);
      assert.ok(chi2 < 160, `pairs chi-squared ${chi2}, ${label}`);
    }
  });

  it('gives the same draws for a seed, others for another seed or none, whatever the thread count', () => {
    const rng = freshRng();
    const seed = rng.int(0, 2 ** 40);
    const n = 3 * 65_536 + 17; // several threads' shares (native/cpu/random.cc: 32,768 draws a share at least)
    const a = scopedDraws([n], seed);
    assert.deepEqual(scopedDraws([n], seed), a, `seed ${seed} (seed=${rng.seed})`);
    const addon = nativeAddon()!;
    const threads = addon.buildInfo().threads;
    addon.setNumThreads(1);
    try {
      assert.deepEqual(scopedDraws([n], seed), a, `one thread, seed ${seed} (seed=${rng.seed})`);
    } finally {
      addon.setNumThreads(threads);
    }
    // Another seed (one apart) or no seed: other draws, not a shifted copy of these.
    for (const other of [scopedDraws([n], seed + 1), scopedDraws([n])]) {
      let equal = 0;
      for (let i = 0; i < n; ++i) if (other[i] === a[i] || (i + 1 < n && other[i] === a[i + 1])) ++equal;
      assert.ok(equal < 100, `${equal} of ${n} draws repeat seed ${seed}'s (seed=${rng.seed})`);
    }
  });

  it('gives the same draws without the kernel (its JavaScript loop) as natively; refuses bad input', () => {
    const rng = freshRng();
    for (const seed of [rng.int(0, 2 ** 52), -rng.int(1, 2 ** 52), 0, 2 ** 32 + 5]) {
      const n = rng.int(1, 70_000);
      const native = scopedDraws([n], seed);
      const previous = tf.getBackend();
      tf.setBackend('cpu');
      try {
        assert.equal(tf.getKernel(PACT_UNIFORM_NOISE, 'cpu'), undefined);
        assert.deepEqual(scopedDraws([n], seed), native, `noise seed ${seed}, ${n} draws (seed=${rng.seed})`);
      } finally {
        tf.setBackend(previous);
      }
    }
    assert.throws(() => uniformNoise([3], NaN), /uniformNoise: seed must be finite, got NaN/);
    assert.throws(() => uniformNoise([3, -1]), /uniformNoise: shape must be an array of whole numbers >= 0, got 3,-1/);
    assert.throws(() => uniformNoise([2.5]), /uniformNoise: shape must be an array of whole numbers >= 0/);
    const addon = nativeAddon()!;
    const out = new Float32Array(4);
    assert.throws(
      () => addon.uniformNoise(-1, 0, out),
      /uniformNoise: seedHigh must be an integer in \[0, 4294967295\]/,
    );
    assert.throws(() => addon.uniformNoise(0, 2 ** 32, out), /uniformNoise: seedLow must be an integer/);
    assert.throws(() => addon.uniformNoise(0, 0.5, out), /uniformNoise: seedLow must be an integer/);
    assert.throws(
      () => addon.uniformNoise(0, 0, new Float64Array(4) as unknown as Float32Array),
      /uniformNoise: out must be a Float32Array/,
    );
  });
});

function scopedDraws(shape: number[], seed?: number): Float32Array {
  const t = uniformNoise(shape, seed);
  const values = Float32Array.from(t.dataSync());
  t.dispose();
  return values;
}
