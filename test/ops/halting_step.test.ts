import { strict as assert } from 'assert';

import * as tf from '@tensorflow/tfjs';

import { haltingStep, HaltingState, initialHaltingState, nativeAddon, PACT_HALTING_STEP } from '../../src';
import { NATIVE, REFERENCE, requirePactCpu } from '../helpers/backends';
import { expectClose } from '../helpers/compare';
import { freshRng, Rng } from '../helpers/random';
import { haltingStepRef, Mode, numericGradient } from './pact_reference';

const MODES: Mode[] = ['relaxed', 'discrete', 'thresholded'];

interface Case {
  positions: number[];
  channels: number[];
  mode: Mode;
  l: number;
  L: number;
  temperature: number;
  delta: number;
  accumulate: boolean;
  sXi: Float32Array;
  sH: Float32Array;
  n: Float32Array;
  x: Float32Array;
  eps: Float32Array;
  output: Float32Array;
  u: Float32Array;
}

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

function randomCase(
  rng: Rng,
  mode: Mode,
  last: boolean,
  accumulate: boolean,
  positions = [rng.int(1, 3), rng.int(1, 5), rng.int(1, 4)],
): Case {
  const channels = rng.pick([[1], [3], [2, 3]]);
  const P = size(positions);
  const C = size(channels);
  const L = rng.int(2, 6);
  const sXi = rng.uniform(P, 0.05, 1);
  return {
    positions,
    channels,
    mode,
    L,
    l: last ? L : rng.int(1, L - 1),
    temperature: rng.uniform(1, 0.3, 2)[0],
    delta: rng.pick([0, 0.1, 0.4]),
    accumulate,
    sXi,
    sH: rng.uniform(P, 0.05, 1),
    n: rng.uniform(P, 0, 3),
    x: rng.uniform(P, -4, 4),
    eps: rng.uniform(P, 0.01, 0.99),
    output: rng.uniform(P * C, -1, 1),
    u: rng.uniform(P * C, -2, 2),
  };
}

/** The step on the current backend: [sXi', sH', N', active, output'?]. */
function runStep(
  c: Case,
  x = tf.tensor(c.x, c.positions),
  u = tf.tensor(c.u, [...c.positions, ...c.channels]),
): tf.Tensor[] {
  const state: HaltingState = {
    sXi: tf.tensor(c.sXi, c.positions),
    sH: tf.tensor(c.sH, c.positions),
    expectedIterations: tf.tensor(c.n, c.positions),
    ...(c.accumulate ? { output: tf.tensor(c.output, [...c.positions, ...c.channels]) } : {}),
  };
  const r = haltingStep(state, c.l === c.L ? null : x, c.accumulate ? u : null, {
    mode: c.mode,
    iteration: c.l,
    maxIterations: c.L,
    temperature: c.temperature,
    delta: c.delta,
    noise: tf.tensor(c.eps, c.positions),
  });
  return [
    r.state.sXi,
    r.state.sH,
    r.state.expectedIterations,
    r.active,
    ...(c.accumulate ? [r.state.output as tf.Tensor] : []),
  ];
}

function reference(c: Case): number[][] {
  const C = size(c.channels);
  const out: number[][] = [[], [], [], [], []];
  for (let p = 0; p < c.sXi.length; ++p) {
    const r = haltingStepRef(
      {
        sXi: c.sXi[p],
        sH: c.sH[p],
        n: c.n[p],
        x: c.x[p],
        eps: c.eps[p],
        output: Array.from(c.output.slice(p * C, (p + 1) * C)),
        u: Array.from(c.u.slice(p * C, (p + 1) * C)),
      },
      c.mode,
      c.l,
      c.l === c.L,
      c.temperature,
      c.delta,
    );
    out[0].push(r.sXi);
    out[1].push(r.sH);
    out[2].push(r.n);
    out[3].push(r.active);
    out[4].push(...r.output);
  }
  return c.accumulate ? out : out.slice(0, 4);
}

function on(backend: string, fn: () => tf.Tensor[]): Float32Array[] {
  const previous = tf.getBackend();
  tf.setBackend(backend);
  try {
    return tf.tidy(fn).map((t) => {
      const v = Float32Array.from(t.dataSync());
      t.dispose();
      return v;
    });
  } finally {
    tf.setBackend(previous);
  }
}

const NAMES = ['sXi', 'sH', 'expectedIterations', 'active', 'output'];
// Float32 evaluation of a handful of transcendentals against float64.
const TOL = { atol: 1e-5, rtol: 1e-5 };

/** Counts calls of the addon's halting-step functions, to prove that a run took the native path. */
function countNativeCalls<T>(fn: () => T): { result: T; forward: number; backward: number } {
  const addon = nativeAddon()!;
  const [forward0, backward0] = [addon.haltingStep, addon.haltingStepGrad];
  let forward = 0;
  let backward = 0;
  addon.haltingStep = (...args) => (++forward, forward0(...args));
  addon.haltingStepGrad = (...args) => (++backward, backward0(...args));
  try {
    return { result: fn(), forward, backward };
  } finally {
    addon.haltingStep = forward0;
    addon.haltingStepGrad = backward0;
  }
}

describe('haltingStep (Alg. 3 lines 7-15, eq. 27)', () => {
  before(requirePactCpu);

  it('is native on pact-cpu and composite on cpu', () => {
    assert.ok(tf.getKernel(PACT_HALTING_STEP, NATIVE) !== undefined);
    assert.equal(tf.getKernel(PACT_HALTING_STEP, REFERENCE), undefined);
    const c = randomCase(freshRng(), 'relaxed', false, true);
    assert.equal(countNativeCalls(() => on(NATIVE, () => runStep(c))).forward, 1);
    assert.equal(countNativeCalls(() => on(REFERENCE, () => runStep(c))).forward, 0);
  });

  for (const mode of MODES) {
    for (const last of [false, true]) {
      for (const accumulate of [true, false]) {
        it(`${mode}${last ? ', last iteration' : ''}${accumulate ? '' : ', no accumulator'}: native = composite = float64`, () => {
          const rng = freshRng();
          for (let trial = 0; trial < 4; ++trial) {
            const c = randomCase(rng, mode, last, accumulate);
            const ref = reference(c);
            const native = on(NATIVE, () => runStep(c));
            const composite = on(REFERENCE, () => runStep(c));
            ref.forEach((r, i) => {
              const label = `${NAMES[i]} trial ${trial} seed=${rng.seed}`;
              expectClose(native[i], r, TOL, `native ${label}`);
              expectClose(composite[i], r, TOL, `composite ${label}`);
              expectClose(native[i], composite[i], TOL, `native vs composite ${label}`);
            });
          }
        });
      }
    }
  }

  it('takes an accumulator with zero channels (u [positions, 0]) on both backends, with its gradient', () => {
    for (const mode of MODES) {
      const results = [NATIVE, REFERENCE].map((backend) =>
        on(backend, () => {
          const logits = tf.tensor([-1, 0.5, 2]);
          const u = tf.ones([3, 0]);
          const step = (x: tf.Tensor) =>
            haltingStep(initialHaltingState([3], [3, 0]), x, u, {
              mode,
              iteration: 1,
              maxIterations: 3,
              temperature: 0.5,
              noise: tf.tensor([0.2, 0.5, 0.9]),
            });
          const s = step(logits);
          const g = tf.grad((x: tf.Tensor) => tf.sum(step(x).state.expectedIterations))(logits);
          assert.deepEqual(s.state.output!.shape, [3, 0], `${backend} ${mode}`);
          return [s.state.sXi, s.state.sH, s.state.expectedIterations, s.active, g];
        }),
      );
      results[0].forEach((v, i) => expectClose(v, results[1][i], TOL, `${mode} output ${i}, native vs composite`));
    }
  });

  it('keeps the sticks accurate at extreme logits (log-space ξ, 1 − ξ as σ(−·))', () => {
    const c = randomCase(freshRng(), 'relaxed', false, true);
    c.x = c.x.map((_, i) => (i % 2 === 0 ? 60 : -60));
    for (const backend of [NATIVE, REFERENCE]) {
      const out = on(backend, () => runStep(c));
      out.forEach((v, i) => assert.ok(v.every(Number.isFinite), `${backend} ${NAMES[i]} finite`));
      const exact = Array.from(
        c.sH,
        (sh, p) => sh * (c.x[p] > 0 ? Math.exp(-c.x[p]) / (1 + Math.exp(-c.x[p])) : 1 / (1 + Math.exp(c.x[p]))),
      );
      expectClose(out[1], exact, { atol: 0, rtol: 1e-5 }, `${backend} S_h = S_h σ(−x) keeps its relative precision`);
    }
  });

  it('takes infinite logits as h = 1 and h = 0 (certain halting and going on)', () => {
    for (const mode of MODES) {
      const c = randomCase(freshRng(), mode, false, true);
      c.x = c.x.map((_, i) => (i % 2 === 0 ? Infinity : -Infinity));
      for (const backend of [NATIVE, REFERENCE]) {
        const out = on(backend, () => runStep(c));
        reference(c).forEach((r, i) => expectClose(out[i], r, TOL, `${mode} ${backend} ${NAMES[i]}`));
      }
    }
  });

  const INPUT_NAMES = ['haltLogits', 'noise', 'sXi', 'sH', 'expectedIterations', 'output', 'u'];

  /**
   * A scalar loss of every output with fixed random weights, and its gradient with respect to every input the step
   * reads (not haltLogits and noise at the last iteration, nor noise in thresholded mode).
   */
  function gradients(c: Case, weights: Float32Array[]): tf.Tensor[] {
    const last = c.l === c.L;
    const used = INPUT_NAMES.filter(
      (name) =>
        !(last && (name === 'haltLogits' || name === 'noise')) && !(c.mode === 'thresholded' && name === 'noise'),
    );
    const values: Record<string, Float32Array> = {
      haltLogits: c.x,
      noise: c.eps,
      sXi: c.sXi,
      sH: c.sH,
      expectedIterations: c.n,
      output: c.output,
      u: c.u,
    };
    const uShape = [...c.positions, ...c.channels];
    const f = (...t: tf.Tensor[]) => {
      const get = (name: string) => t[used.indexOf(name)];
      const state: HaltingState = {
        sXi: get('sXi'),
        sH: get('sH'),
        expectedIterations: get('expectedIterations'),
        output: get('output'),
      };
      const r = haltingStep(state, last ? null : get('haltLogits'), get('u'), {
        mode: c.mode,
        iteration: c.l,
        maxIterations: c.L,
        temperature: c.temperature,
        delta: c.delta,
        noise: used.includes('noise') ? get('noise') : undefined,
      });
      const outs = [r.state.sXi, r.state.sH, r.state.expectedIterations, r.active, r.state.output as tf.Tensor];
      return outs
        .map((o, i) => tf.sum(tf.mul(o, tf.tensor(weights[i], o.shape))))
        .reduce((a, b) => tf.add(a, b)) as tf.Scalar;
    };
    const xs = used.map((name) => tf.tensor(values[name], name === 'output' || name === 'u' ? uShape : c.positions));
    return tf.grads(f)(xs);
  }

  it('relaxed: native gradient = composite autodiff = float64 central differences, for every input', () => {
    const rng = freshRng();
    const c = randomCase(rng, 'relaxed', false, true);
    c.delta = 0.3;
    // Keep S_ξ̂' = s(1 − ξ) away from δ, where the active mask jumps (finite differences would straddle it).
    for (let p = 0; p < c.sXi.length; ++p) {
      const rest = c.sXi[p] * (1 - 1 / (1 + Math.exp(-(c.x[p] + Math.log(c.eps[p] / (1 - c.eps[p]))) / c.temperature)));
      if (Math.abs(rest - c.delta) < 0.02) c.sXi[p] = rest > c.delta ? Math.min(1, c.sXi[p] * 1.2) : c.sXi[p] * 0.8;
    }
    const P = c.sXi.length;
    const C = size(c.channels);
    const weights = [P, P, P, P, P * C].map((n) => rng.uniform(n, -1, 1));
    const native = on(NATIVE, () => gradients(c, weights));
    const composite = on(REFERENCE, () => gradients(c, weights));
    const loss = (v: number[]) => {
      let total = 0;
      for (let p = 0; p < P; ++p) {
        const r = haltingStepRef(
          {
            x: v[p],
            eps: v[P + p],
            sXi: v[2 * P + p],
            sH: v[3 * P + p],
            n: v[4 * P + p],
            output: v.slice(5 * P + p * C, 5 * P + (p + 1) * C),
            u: v.slice(5 * P + P * C + p * C, 5 * P + P * C + (p + 1) * C),
          },
          'relaxed',
          c.l,
          false,
          c.temperature,
          c.delta,
        );
        total += weights[0][p] * r.sXi + weights[1][p] * r.sH + weights[2][p] * r.n + weights[3][p] * r.active;
        r.output.forEach((o, k) => (total += weights[4][p * C + k] * o));
      }
      return total;
    };
    const flat = [c.x, c.eps, c.sXi, c.sH, c.n, c.output, c.u].flatMap((a) => Array.from(a));
    const numeric = numericGradient(loss, flat);
    const offsets = [0, P, 2 * P, 3 * P, 4 * P, 5 * P, 5 * P + P * C, 5 * P + 2 * P * C];
    ['haltLogits', 'noise', 'sXi', 'sH', 'expectedIterations', 'output', 'u'].forEach((name, i) => {
      const expected = numeric.slice(offsets[i], offsets[i + 1]);
      const label = `d/d${name} seed=${rng.seed}`;
      expectClose(native[i], expected, { atol: 2e-4, rtol: 2e-3 }, `native ${label}`);
      expectClose(composite[i], expected, { atol: 2e-4, rtol: 2e-3 }, `composite ${label}`);
    });
  });

  for (const mode of ['discrete', 'thresholded'] as Mode[]) {
    for (const last of [false, true]) {
      it(`${mode}${last ? ', last iteration' : ''}: native gradient = composite autodiff (N, sticks, accumulator)`, () => {
        const rng = freshRng();
        const c = randomCase(rng, mode, last, true);
        const P = c.sXi.length;
        const weights = [P, P, P, P, P * size(c.channels)].map((n) => rng.uniform(n, -1, 1));
        const { result: native, backward } = countNativeCalls(() => on(NATIVE, () => gradients(c, weights)));
        assert.equal(backward, 1, 'the native gradient kernel ran');
        const composite = on(REFERENCE, () => gradients(c, weights));
        native.forEach((g, i) =>
          expectClose(g, composite[i], { atol: 1e-5, rtol: 1e-5 }, `input ${i} seed=${rng.seed}`),
        );
      });
    }
  }

  // The native step runs 8 positions at a time in vector lanes, 256 at a time per chunk, the rest one by one, and
  // splits positions between threads from 4096: sizes that reach every part, forward and gradient.
  it('8-lane blocks, chunks, the scalar tail and the threads agree with float64 and with autodiff', () => {
    const rng = freshRng();
    for (const positions of [
      [1, 8, 1],
      [3, 7, 29],
      [2, 47, 53],
    ]) {
      for (const mode of MODES) {
        const c = randomCase(rng, mode, false, true, positions);
        c.x = c.x.map((v, i) => (i % 97 === 5 ? 40 * Math.sign(v) : v)); // some saturated sigmoids
        const label = `${mode} ${positions.join('x')} seed=${rng.seed}`;
        const native = on(NATIVE, () => runStep(c));
        reference(c).forEach((r, i) => expectClose(native[i], r, TOL, `${NAMES[i]} ${label}`));
        const P = c.sXi.length;
        const weights = [P, P, P, P, P * size(c.channels)].map((n) => rng.uniform(n, -1, 1));
        const nativeGrad = on(NATIVE, () => gradients(c, weights));
        const compositeGrad = on(REFERENCE, () => gradients(c, weights));
        // Both sides are float32 in different orders of operations. d/dnoise divides by ε(1 − ε) (up to ~100 for
        // ε in [0.01, 0.99]), which scales their rounding differences by as much: 5e-5 there, 1e-5 elsewhere.
        const names = INPUT_NAMES.filter((name) => !(mode === 'thresholded' && name === 'noise'));
        nativeGrad.forEach((g, i) => {
          const atol = names[i] === 'noise' ? 5e-5 : 1e-5;
          expectClose(g, compositeGrad[i], { atol, rtol: 1e-5 }, `d/d${names[i]} ${label}`);
        });
      }
    }
  });

  it('rejects bad arguments, naming them', () => {
    const state = { sXi: tf.ones([2, 3]), sH: tf.ones([2, 3]), expectedIterations: tf.zeros([2, 3]) };
    const x = tf.zeros([2, 3]);
    const base = { mode: 'relaxed' as const, iteration: 1, maxIterations: 3, temperature: 0.5 };
    for (const backend of [NATIVE, REFERENCE]) {
      tf.setBackend(backend);
      assert.throws(
        () => haltingStep(state, x, null, { ...base, temperature: 0 }),
        /haltingStep: temperature must be a positive/,
      );
      assert.throws(
        () => haltingStep(state, x, null, { ...base, delta: -0.1 }),
        /haltingStep: delta must be a number in \[0, 1\)/,
      );
      assert.throws(
        () => haltingStep(state, x, null, { ...base, mode: 'hard' as Mode }),
        /haltingStep: mode must be one of/,
      );
      assert.throws(
        () => haltingStep(state, x, null, { ...base, maxIterations: 0 }),
        /haltingStep: maxIterations must be an integer >= 1/,
      );
      assert.throws(
        () => haltingStep(state, x, null, { ...base, iteration: 4 }),
        /haltingStep: iteration must be <= maxIterations/,
      );
      assert.throws(
        () => haltingStep(state, tf.zeros([3, 2]), null, base),
        /haltingStep: haltLogits must have shape \[2,3\]/,
      );
      assert.throws(() => haltingStep(state, null, null, base), /haltingStep: haltLogits must be a tf.Tensor/);
      assert.throws(
        () =>
          haltingStep(
            state,
            tf.tensor([
              [0, 1, NaN],
              [0, 0, 0],
            ]),
            null,
            base,
          ),
        /haltLogits must not contain NaN/,
      );
      assert.throws(
        () => haltingStep(state, x, null, { ...base, noise: tf.ones([6]) }),
        /haltingStep: noise must have shape \[2,3\]/,
      );
      assert.throws(
        () => haltingStep(state, x, null, { ...base, noise: tf.fill([2, 3], 1.5) }),
        /haltingStep: noise must hold U\(0,1\) draws/,
      );
      assert.throws(
        () => haltingStep(state, x, tf.ones([2, 3, 4]), base),
        /haltingStep: u must be null when the state has no/,
      );
      const withOutput = { ...state, output: tf.zeros([2, 3, 4]) };
      assert.throws(
        () => haltingStep(withOutput, x, tf.ones([2, 4, 4]), base),
        /haltingStep: u must have shape \[2,3, \.\.\.channels\]/,
      );
      assert.throws(
        () => haltingStep(withOutput, x, tf.ones([2, 3, 5]), base),
        /haltingStep: state.output must have shape \[2,3,5\] \(u's shape\)/,
      );
      assert.throws(
        () => haltingStep({ ...state, sH: tf.ones([6]) }, x, null, base),
        /haltingStep: state.sH must have shape \[2,3\]/,
      );
    }
    tf.setBackend(NATIVE);
  });

  it('the addon re-checks lengths, values and attributes itself', () => {
    const addon = nativeAddon()!;
    const f = (n: number) => new Float32Array(n);
    const ok = () =>
      [
        f(4),
        f(4),
        f(4),
        f(4),
        f(4).fill(0.5),
        f(8),
        f(8),
        4,
        2,
        0,
        1,
        false,
        0.5,
        0.1,
        f(4),
        f(4),
        f(4),
        f(4),
        f(8),
      ] as const;
    const call = (patch: Record<number, unknown>) => {
      const args: unknown[] = [...ok()];
      for (const [i, v] of Object.entries(patch)) args[Number(i)] = v;
      (addon.haltingStep as (...a: unknown[]) => void)(...args);
    };
    call({});
    assert.throws(() => call({ 0: f(3) }), /haltingStep: sXi must have 4 elements, got 3/);
    assert.throws(() => call({ 6: f(7) }), /haltingStep: u must have 8 elements, got 7/);
    assert.throws(
      () => call({ 3: Float32Array.from([0, NaN, 0, 0]) }),
      /haltingStep: haltLogits must not contain NaN \(element 1\)/,
    );
    assert.throws(
      () => call({ 4: Float32Array.from([0.5, 2, 0.5, 0.5]) }),
      /haltingStep: noise must hold U\(0,1\) draws/,
    );
    assert.throws(() => call({ 9: 3 }), /haltingStep: mode .* must be an integer in \[0, 2\]/);
    assert.throws(() => call({ 12: 0 }), /haltingStep: temperature must be a positive finite number/);
    assert.throws(() => call({ 13: -0.5 }), /haltingStep: delta must be in \[0, 1\)/);
    assert.throws(() => call({ 18: null }), /haltingStep: outputOut must be a Float32Array/);
    assert.throws(() => call({ 5: null }), /haltingStep: u and outputOut must be null when output is null/);
    assert.throws(() => call({ 3: null }), /haltingStep: haltLogits must be a Float32Array/);
    call({ 3: null, 4: null, 11: true });
    assert.throws(
      () =>
        (addon.haltingStepGrad as (...a: unknown[]) => void)(
          f(4),
          f(4),
          f(4),
          f(4),
          null,
          f(4),
          f(4),
          f(4),
          f(3),
          null,
          4,
          1,
          0,
          1,
          false,
          1,
          0,
          f(4),
          f(4),
          f(4),
          f(4),
          null,
        ),
      /haltingStepGrad: gActive must have 4 elements, got 3/,
    );
  });
});
