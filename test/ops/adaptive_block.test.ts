import { strict as assert } from 'assert';

import * as tf from '@tensorflow/tfjs';

import { actHalting, adaptiveBlock, AdaptiveMode, haltingDistribution, haltingLogProb } from '../../src';
import { NATIVE, REFERENCE, requirePactCpu } from '../helpers/backends';
import { expectClose } from '../helpers/compare';
import { freshRng, Rng } from '../helpers/random';
import { actRef, discreteProbabilities, haltingStepRef, rows, sigmoid } from './pact_reference';

const TOL = { atol: 2e-5, rtol: 2e-5 };

/**
 * A block over [batch, positions] with 3 channels whose halting logits are a fixed table X[..., l-1] (so that the
 * block's result can be computed from haltingDistribution on the same table) and whose iteration is
 * u^l = 0.5 u^{l-1} + l·v, recording how often it ran and the masks it got.
 */
function setup(rng: Rng, L: number) {
  const shape = [3, 4];
  const X = tf.tensor(rng.uniform(12 * (L - 1), -3, 3), [...shape, L - 1]);
  const v = tf.tensor(rng.uniform(12 * 3, -1, 1), [...shape, 3]);
  const input = tf.tensor(rng.uniform(12 * 3, -1, 1), [...shape, 3]);
  const calls: number[] = [];
  const masks: Array<tf.Tensor | null> = [];
  const iterate = (u: tf.Tensor, l: number, active: tf.Tensor | null) => {
    calls.push(l);
    masks.push(active === null ? null : tf.keep(active.clone()));
    return tf.add(tf.mul(u, 0.5), tf.mul(v, l));
  };
  const halt = (_u: tf.Tensor, l: number) => tf.squeeze(tf.slice(X, [0, 0, l - 1], [...shape, 1]), [2]);
  /** u^1 … u^L of the same recurrence, run densely: [L][...shape, 3]. */
  const dense = () => {
    const us: tf.Tensor[] = [];
    let u = input;
    for (let l = 1; l <= L; ++l) us.push((u = tf.add(tf.mul(u, 0.5), tf.mul(v, l))));
    return us;
  };
  return { X, v, input, iterate, halt, dense, calls, masks };
}

/** Σ_l w[..., l] u^l. */
function mix(weights: tf.Tensor, us: tf.Tensor[]): tf.Tensor {
  return us.map((u, l) => tf.mul(tf.expandDims(tf.gather(weights, l, 2), -1), u)).reduce((a, b) => tf.add(a, b));
}

const dot = (a: number[], b: number[]): number => a.reduce((acc, ai, k) => acc + ai * b[k], 0);

/** u + â (step − u), â = null at l = 1 (every position runs): how an iteration uses the active mask (eq. 27). */
function blend(u: number[], step: number[], active: number | null): number[] {
  return active === null ? step : u.map((ui, k) => ui + active * (step[k] - ui));
}

/**
 * A differentiable version of setup()'s block for gradient checks over [3, 4] positions × 3 channels: the iteration
 * u^l = u + â (0.5 u + l·v − u) (â = 1 at l = 1) with v an argument, and halting logits x^l = X[..., l-1] + a·u^l
 * that depend on u (so that d/du^0 reaches h); loss weights w of the output.
 */
function gradientProblem(rng: Rng) {
  const aValues = Array.from(rng.uniform(3, -0.5, 0.5));
  const wValues = rng.uniform(36, -1, 1);
  const a = tf.tensor(aValues);
  const w = tf.tensor(wValues, [3, 4, 3]);
  return {
    aValues,
    w,
    wRows: rows(wValues, 3),
    step: (u: number[], v: number[], l: number) => u.map((ui, k) => 0.5 * ui + l * v[k]),
    iterate: (v: tf.Tensor) => (u: tf.Tensor, l: number, active: tf.Tensor | null) => {
      const next = tf.add(tf.mul(u, 0.5), tf.mul(v, l));
      return active === null ? next : tf.add(u, tf.mul(tf.expandDims(active, -1), tf.sub(next, u)));
    },
    halt: (X: tf.Tensor, L: number) => (u: tf.Tensor, l: number) => {
      if (l >= L) throw new Error(`halt called at l = ${l} = L`);
      return tf.add(tf.squeeze(tf.slice(X, [0, 0, l - 1], [3, 4, 1]), [2]), tf.sum(tf.mul(u, a), 2));
    },
  };
}

/** One position's float64 loss; `margin`: distance to the nearest discontinuity; `key`: the discrete branch taken. */
interface RefLoss {
  loss: number;
  margin: number;
  key: string;
}

/**
 * Compares tf.grads [d/du^0, d/dX, d/dv] (each [3, 4, ·]) of Σ_p loss_p with float64 central differences (step 1e-6)
 * of `ref` at each position p (positions are independent: ref(p, ...) is position p's loss alone). Positions within
 * 1e-3 of a discontinuity (margin) are dropped: the float32 forward could take the other branch there; at the others
 * the ± evaluations must take the same branch (key). Returns the keys of the positions checked.
 *
 * Tolerance atol 1e-4 + rtol 1e-4: the reference is exact to ~1e-8 (round-off ~1e-16·|loss|/1e-6, truncation
 * ~1e-12·|third derivative|); the float32 forward and backward through ≤ 6 iterations with |u| ≲ 12 and
 * |gradients| ≲ 15 round at ~1e-6 relative (observed worst |diff|: 4.3e-6 in 400 runs of each test, so a margin
 * of ~25). A wrong gradient path (a detached remainder or mask, dh/du lost) is off by ≳ 5e-3.
 */
function checkBlockGradients(
  grads: tf.Tensor[],
  s: { input: tf.Tensor; X: tf.Tensor; v: tf.Tensor },
  L: number,
  ref: (p: number, u0: number[], xs: number[], v: number[]) => RefLoss,
  label: string,
): string[] {
  const [u0s, xss, vs] = [rows(s.input.dataSync(), 3), rows(s.X.dataSync(), L - 1), rows(s.v.dataSync(), 3)];
  const [gU, gX, gV] = grads.map((g, i) => rows(g.dataSync(), i === 1 ? L - 1 : 3));
  const step = 1e-6;
  const checked: string[] = [];
  for (let p = 0; p < 12; ++p) {
    const at = (theta: number[]) => ref(p, theta.slice(0, 3), theta.slice(3, L + 2), theta.slice(L + 2));
    const theta = [...u0s[p], ...xss[p], ...vs[p]];
    const base = at(theta);
    if (!(base.margin > 1e-3)) continue;
    const numeric = theta.map((_, i) => {
      const [plus, minus] = [theta.slice(), theta.slice()];
      plus[i] += step;
      minus[i] -= step;
      const [fp, fm] = [at(plus), at(minus)];
      assert.ok(fp.key === base.key && fm.key === base.key, `${label}: branch changed at position ${p}, input ${i}`);
      return (fp.loss - fm.loss) / (2 * step);
    });
    const analytic = [...gU[p], ...gX[p], ...gV[p]];
    expectClose(analytic, numeric, { atol: 1e-4, rtol: 1e-4 }, `${label} position ${p} [du0 ×3, dX ×${L - 1}, dv ×3]`);
    checked.push(base.key);
  }
  return checked;
}

function onBoth(fn: (backend: string) => void): void {
  for (const backend of [NATIVE, REFERENCE]) {
    tf.setBackend(backend);
    try {
      tf.tidy(() => fn(backend));
    } finally {
      tf.setBackend(NATIVE);
    }
  }
}

describe('adaptiveBlock (Algorithms 1-4)', () => {
  before(requirePactCpu);

  it('relaxed: output Σ ẑ^l u^l and N equal haltingDistribution on the same noise; iterations count â > 0', () => {
    const rng = freshRng();
    const L = 5;
    onBoth((backend) => {
      const s = setup(rng, L);
      const noise = tf.tensor(rng.uniform(12 * (L - 1), 0.01, 0.99), [3, 4, L - 1]);
      const delta = 0.2;
      const r = adaptiveBlock(s.iterate, s.halt, L, {
        mode: 'relaxed',
        input: s.input,
        temperature: 0.5,
        delta,
        noise,
      });
      const d = haltingDistribution(s.X, { mode: 'relaxed', temperature: 0.5, noise });
      const label = `${backend} seed=${rng.seed}`;
      assert.deepEqual(s.calls, [1, 2, 3, 4, 5], label);
      expectClose(r.output.dataSync(), mix(d.weights, s.dense()).dataSync(), TOL, `output ${label}`);
      expectClose((r.expectedIterations as tf.Tensor).dataSync(), d.expectedIterations.dataSync(), TOL, `N ${label}`);
      // â^{l+1} = r·[r > δ] with r = 1 − Σ_{t≤l} ẑ^t: iterations = 1 + #{l < L : r^l > δ}.
      const remaining = tf.sub(1, tf.cumsum(d.weights, 2));
      const expected = tf.add(
        1,
        tf.sum(tf.cast(tf.greater(tf.slice(remaining, [0, 0, 0], [3, 4, L - 1]), delta), 'float32'), 2),
      );
      assert.deepEqual(Array.from(r.iterations.dataSync()), Array.from(expected.dataSync()), label);
      s.masks.slice(1).forEach((m, i) => {
        const r = tf.squeeze(tf.slice(remaining, [0, 0, i], [3, 4, 1]), [2]);
        expectClose(
          (m as tf.Tensor).dataSync(),
          tf.mul(r, tf.cast(tf.greater(r, delta), 'float32')).dataSync(),
          TOL,
          `â^${i + 2} ${label}`,
        );
      });
    });
  });

  for (const mode of ['discrete', 'thresholded'] as const) {
    it(`${mode}: output u^z, N and log q(z) as haltingDistribution; iterate stops once all halted`, () => {
      const rng = freshRng();
      const L = 6;
      onBoth((backend) => {
        const s = setup(rng, L);
        const noise = tf.tensor(rng.uniform(12 * (L - 1), 0.01, 0.99), [3, 4, L - 1]);
        const r = adaptiveBlock(s.iterate, s.halt, L, { mode, input: s.input, noise });
        const d = haltingDistribution(s.X, { mode, noise });
        const label = `${backend} seed=${rng.seed}`;
        const z = tf.add(tf.argMax(d.weights, 2), 1);
        const zMax = tf.max(z).dataSync()[0];
        assert.deepEqual(
          s.calls,
          Array.from({ length: zMax }, (_, i) => i + 1),
          `iterate called up to max z = ${zMax} ${label}`,
        );
        expectClose(r.output.dataSync(), mix(d.weights, s.dense()).dataSync(), TOL, `output ${label}`);
        expectClose((r.expectedIterations as tf.Tensor).dataSync(), d.expectedIterations.dataSync(), TOL, `N ${label}`);
        assert.deepEqual(Array.from(r.iterations.dataSync()), Array.from(tf.cast(z, 'float32').dataSync()), label);
        if (mode === 'discrete') {
          expectClose((r.logProb as tf.Tensor).dataSync(), haltingLogProb(s.X, z).dataSync(), TOL, `log q(z) ${label}`);
        }
      });
    });
  }

  it('discrete/thresholded stop calling iterate after the iteration where every position halted', () => {
    onBoth(() => {
      const s = setup(freshRng(), 8);
      const halt = (u: tf.Tensor, l: number) => tf.fill(u.shape.slice(0, 2), l >= 3 ? 50 : -50);
      const r = adaptiveBlock(s.iterate, halt, 8, { mode: 'thresholded', input: s.input });
      assert.deepEqual(s.calls, [1, 2, 3]);
      assert.deepEqual(Array.from(r.iterations.dataSync()), new Array(12).fill(3));
    });
  });

  it('leaves no tensor behind but its results, in every mode', () => {
    for (const mode of ['relaxed', 'discrete', 'thresholded', 'act'] as AdaptiveMode[]) {
      const s = setup(freshRng(), 4);
      const noise = tf.randomUniform([3, 4, 3]);
      const before = tf.memory().numTensors;
      // An iterate that returns a tensor it does not own: the block must not dispose it.
      const owned = tf.ones([3, 4, 3]);
      const iterate = (u: tf.Tensor, l: number, active: tf.Tensor | null) =>
        l === 2 ? owned : s.iterate(u, l, active);
      const r = adaptiveBlock(iterate, s.halt, 4, { mode, input: s.input, temperature: 0.5, noise });
      assert.ok(!owned.isDisposed, mode);
      const results = Object.values(r).filter((t) => t instanceof tf.Tensor) as tf.Tensor[];
      const masks = s.masks.filter((m) => m !== null).length;
      assert.equal(tf.memory().numTensors - before, results.length + masks + 1, mode);
      tf.dispose([...results, ...(s.masks.filter((m) => m !== null) as tf.Tensor[]), s.X, s.input, noise, owned]);
    }
  });

  it('L = 1: one iteration, z = 1 everywhere (N = 1; ACT: ρ = N + R = 2), nothing left behind', () => {
    const rng = freshRng();
    for (const mode of ['relaxed', 'discrete', 'thresholded', 'act'] as AdaptiveMode[]) {
      const input = tf.tensor(rng.uniform(12 * 3, -1, 1), [3, 4, 3]);
      const before = tf.memory().numTensors;
      const r = adaptiveBlock(
        (u) => tf.add(tf.mul(u, 0.5), 1),
        () => tf.zeros([3, 4]),
        1,
        {
          mode,
          input,
          temperature: 0.5,
        },
      );
      const results = Object.values(r).filter((t) => t instanceof tf.Tensor) as tf.Tensor[];
      assert.equal(tf.memory().numTensors - before, results.length, `${mode}: tensors left behind`);
      const expected = tf.tidy(() => tf.add(tf.mul(input, 0.5), 1));
      expectClose(r.output.dataSync(), expected.dataSync(), TOL, `seed ${rng.seed} ${mode} output`);
      assert.deepEqual(Array.from(r.iterations.dataSync()), new Array(12).fill(1), mode);
      const ponder = mode === 'act' ? r.ponderCost : r.expectedIterations;
      assert.deepEqual(Array.from((ponder as tf.Tensor).dataSync()), new Array(12).fill(mode === 'act' ? 2 : 1), mode);
      tf.dispose([...results, input, expected]);
    }
  });

  it('act: output, ponder cost and steps equal actHalting; stops once all halted', () => {
    const rng = freshRng();
    const L = 6;
    onBoth((backend) => {
      const s = setup(rng, L);
      const r = adaptiveBlock(s.iterate, s.halt, L, { mode: 'act', input: s.input, epsilon: 0.05 });
      const h = tf.concat([tf.sigmoid(s.X), tf.ones([3, 4, 1])], 2);
      const a = actHalting(h, 0.05);
      const label = `${backend} seed=${rng.seed}`;
      const maxSteps = tf.max(a.steps).dataSync()[0];
      assert.equal(s.calls.length, maxSteps, label);
      expectClose(
        r.output.dataSync(),
        mix(
          a.weights,
          s
            .dense()
            .slice(0, maxSteps)
            .concat(new Array(L - maxSteps).fill(tf.zeros([3, 4, 3]))),
        ).dataSync(),
        TOL,
        `output ${label}`,
      );
      expectClose((r.ponderCost as tf.Tensor).dataSync(), a.ponderCost.dataSync(), TOL, `ρ ${label}`);
      assert.deepEqual(Array.from(r.iterations.dataSync()), Array.from(a.steps.dataSync()), label);
    });
  });

  it('act: gradients of Σ w·output + Σ ρ (u^0, halting logits, v) match float64 central differences of actRef', () => {
    const L = 6;
    const epsilon = 0.05;
    onBoth((backend) => {
      const rng = freshRng();
      const s = setup(rng, L);
      const g = gradientProblem(rng);
      const f = (input: tf.Tensor, X: tf.Tensor, v: tf.Tensor) => {
        const r = adaptiveBlock(g.iterate(v), g.halt(X, L), L, { mode: 'act', input, epsilon });
        return tf.add(tf.sum(tf.mul(r.output, g.w)), tf.sum(r.ponderCost as tf.Tensor)) as tf.Scalar;
      };
      // u^1 … u^L densely (ACT's masks are 0/1 and a halted position's later iterations get weight 0), h^l =
      // σ(X^l + a·u^l), Algorithm 4 (actRef), loss = Σ_l weight^l w·u^l + ρ. N is a step function of the partial
      // sums c^l = Σ_{t≤l} h^t compared with 1 − ε for l ≤ min(N, L − 1): the margin is the closest of them.
      const ref = (p: number, u0: number[], xs: number[], v: number[]): RefLoss => {
        const us: number[][] = [];
        const hs: number[] = [];
        let u = u0;
        for (let l = 1; l <= L; ++l) {
          us.push((u = g.step(u, v, l)));
          hs.push(l < L ? sigmoid(xs[l - 1] + dot(g.aValues, u)) : 1);
        }
        const a = actRef(hs, epsilon);
        let [margin, c] = [Infinity, 0];
        for (let l = 1; l <= Math.min(a.steps, L - 1); ++l) {
          c += hs[l - 1];
          margin = Math.min(margin, Math.abs(c - (1 - epsilon)));
        }
        const loss = a.weights.reduce((acc, weight, l) => acc + weight * dot(g.wRows[p], us[l]), a.rho);
        return { loss, margin, key: String(a.steps) };
      };
      const label = `act ${backend} seed=${rng.seed}`;
      const checked = checkBlockGradients(tf.grads(f)([s.input, s.X, s.v]), s, L, ref, label);
      // Dropping a position (a partial sum within 1e-3 of 1 − ε) has a probability of ~0.6% (measured), and N ≥ 2
      // (where R = 1 − Σ_{l<N} h^l depends on h) ~0.95 (measured: ≥ 9 of 12 in 200 runs): fewer than 9 usable, or 4
      // with N ≥ 2, fails by chance for < 1e-5 of the seeds.
      assert.ok(checked.length >= 9, `only ${checked.length} usable positions ${label}`);
      const multiStep = checked.filter((n) => Number(n) >= 2).length;
      assert.ok(multiStep >= 4, `only ${multiStep} usable positions with N ≥ 2 (steps ${checked}) ${label}`);
    });
  });

  it('discrete without explicit noise: iterations follow q(z = l) = h^l ∏_{i<l}(1 − h^i) (χ², seed + l)', () => {
    const L = 5;
    const positions = 20000;
    onBoth((backend) => {
      const rng = freshRng();
      // Constant halting logits per iteration, chosen so that every q(z = l) is at least ~5%: expected counts ≥ 1000,
      // far above the 5 a χ² bin needs (no bins to merge; asserted below).
      const x = [
        rng.uniform(1, -1.5, -0.5)[0],
        rng.uniform(1, -1, 0)[0],
        rng.uniform(1, -0.5, 0.5)[0],
        rng.uniform(1, 0, 1)[0],
      ];
      const seed = rng.int(0, 2 ** 30);
      const label = `${backend} seed=${rng.seed} tf seed=${seed}`;
      // u counts the iterations a position ran (discrete keeps u^{l-1} where it has halted): output u^z = z.
      const run = () =>
        adaptiveBlock(
          (u) => tf.add(u, 1),
          (_u, l) => tf.fill([positions], x[l - 1]),
          L,
          { mode: 'discrete', input: tf.zeros([positions, 1]), seed },
        );
      const r = run();
      const z = r.iterations.dataSync();
      assert.deepEqual(Array.from(r.output.dataSync()), Array.from(z), `output u^z = z ${label}`);
      assert.deepEqual(Array.from(run().iterations.dataSync()), Array.from(z), `same seed, same draws ${label}`);
      const counts = new Array<number>(L).fill(0);
      for (const zi of z) ++counts[zi - 1];
      // discreteProbabilities: q(z = l) = h^l ∏_{i<l}(1 − h^i) for l < L and ∏_{i<L}(1 − h^i) at L (h^L = 1), eq. 14
      // and Alg. 1 (ξ^l = [logit h^l + logit ε^l > 0] is 1 with probability h^l, ε^l drawn anew per iteration).
      const q = discreteProbabilities(x);
      for (const p of q) assert.ok(p * positions >= 5, `expected count ${p * positions} < 5 ${label}`);
      const chi2 = q.reduce((acc, p, l) => acc + (counts[l] - positions * p) ** 2 / (positions * p), 0);
      // 5 bins, 4 degrees of freedom: P(χ² > 35) = e^{-17.5}(1 + 17.5) ≈ 4.6e-7 per backend, ~9e-7 per run. One
      // draw shared by every iteration (seed without + l) makes ξ^l = [ε > 1 − h^l] for the same ε: χ² in the
      // hundreds or more.
      assert.ok(chi2 < 35, `χ² = ${chi2}, counts ${counts} vs expected ${q.map((p) => p * positions)} ${label}`);
    });
  });

  it('relaxed: gradients of Σ w·output + Σ N (u^0, halting logits, v) match float64 central differences', () => {
    const L = 5;
    const [temperature, delta] = [0.5, 0.05];
    onBoth((backend) => {
      const rng = freshRng();
      const s = setup(rng, L);
      const g = gradientProblem(rng);
      const noise = tf.tensor(rng.uniform(12 * (L - 1), 0.05, 0.95), [3, 4, L - 1]);
      const f = (input: tf.Tensor, X: tf.Tensor, v: tf.Tensor) => {
        const r = adaptiveBlock(g.iterate(v), g.halt(X, L), L, { mode: 'relaxed', input, temperature, delta, noise });
        return tf.add(tf.sum(tf.mul(r.output, g.w)), tf.sum(r.expectedIterations as tf.Tensor)) as tf.Scalar;
      };
      const noiseRows = rows(noise.dataSync(), L - 1);
      // Alg. 3 step by step with haltingStepRef, the iteration blending with â as g.iterate does. The only
      // discontinuity is â = r·[r > δ] at r = δ: the margin is min_l |r^l − δ| over the masks used (l < L).
      const ref = (p: number, u0: number[], xs: number[], v: number[]): RefLoss => {
        let st = { sXi: 1, sH: 1, n: 0, output: [0, 0, 0] };
        let u = u0;
        let active: number | null = null;
        let margin = Infinity;
        const key: number[] = [];
        for (let l = 1; l <= L; ++l) {
          u = blend(u, g.step(u, v, l), active);
          const last = l === L;
          const x = last ? 0 : xs[l - 1] + dot(g.aValues, u);
          const eps = last ? 0.5 : noiseRows[p][l - 1];
          const next = haltingStepRef({ ...st, x, eps, u }, 'relaxed', l, last, temperature, delta);
          st = { sXi: next.sXi, sH: next.sH, n: next.n, output: next.output };
          if (!last) {
            margin = Math.min(margin, Math.abs(next.sXi - delta));
            key.push(next.active > 0 ? 1 : 0);
          }
          active = next.active;
        }
        return { loss: dot(g.wRows[p], st.output) + st.n, margin, key: key.join('') };
      };
      const label = `relaxed ${backend} seed=${rng.seed}`;
      const checked = checkBlockGradients(tf.grads(f)([s.input, s.X, s.v]), s, L, ref, label);
      // Dropping a position (r within 1e-3 of δ at one of 4 masks) has a probability of ~1.3% (measured): fewer than
      // 9 of 12 usable happens for ~1e-5 of the seeds. A position whose â^2 is 0 checks no gradient through the
      // mask: at least one must use it (measured: ≥ 3 of 12 in 400 runs; P(none) ≲ 0.3^12).
      assert.ok(checked.length >= 9, `only ${checked.length} usable positions ${label}`);
      const masked = checked.filter((k) => k.includes('1')).length;
      assert.ok(masked >= 1, `no usable position with a non-zero mask at l ≥ 2 (masks ${checked}) ${label}`);
    });
  });

  it('rejects bad arguments, naming them', () => {
    const s = setup(freshRng(), 3);
    const opts = { mode: 'relaxed' as AdaptiveMode, input: s.input, temperature: 1 };
    assert.throws(() => adaptiveBlock(s.iterate, s.halt, 0, opts), /adaptiveBlock: L must be an integer >= 1/);
    assert.throws(
      () => adaptiveBlock(s.iterate, s.halt, 3, { ...opts, mode: 'x' as AdaptiveMode }),
      /adaptiveBlock: mode must be one of/,
    );
    assert.throws(
      () => adaptiveBlock(s.iterate, s.halt, 3, { ...opts, temperature: -1 }),
      /haltingStep: temperature must be a positive/,
    );
    assert.throws(
      () => adaptiveBlock(s.iterate, () => tf.zeros([5]), 3, opts),
      /adaptiveBlock: halt\(u, 1\) must return a tensor whose shape is a prefix of u's \[3,4,3\], got \[5\]/,
    );
    assert.throws(
      () => adaptiveBlock(s.iterate, s.halt, 3, { ...opts, mode: 'act', epsilon: 2 }),
      /adaptiveBlock: epsilon must be/,
    );
  });
});
