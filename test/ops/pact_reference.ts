/**
 * Float64 references of the PACT ops in plain JS, written from the paper (eqs. 7, 12-19, 23, 28-29, Algorithms
 * 1-4) independently of the tfjs code, plus central finite differences for gradient checks.
 */
export const sigmoid = (v: number): number => (v >= 0 ? 1 / (1 + Math.exp(-v)) : Math.exp(v) / (1 + Math.exp(v)));
export const logit = (p: number): number => Math.log(p) - Math.log1p(-p);

/** Eq. 7: v̂ = σ((logit γ + logit ε) / λ). */
export function relaxedBernoulliRef(logitGamma: number, temperature: number, eps: number): number {
  return sigmoid((logitGamma + logit(eps)) / temperature);
}

export type Mode = 'relaxed' | 'discrete' | 'thresholded';

/** ξ^l of one halting unit (l < L). */
export function xiRef(mode: Mode, x: number, eps: number, temperature: number): number {
  if (mode === 'relaxed') return relaxedBernoulliRef(x, temperature, eps);
  if (mode === 'discrete') return x + logit(eps) > 0 ? 1 : 0;
  return sigmoid(x) > 0.5 ? 1 : 0;
}

/** Eqs. 13/17 and 23 for one block: weights ẑ (L) and N from its L-1 halting logits. */
export function haltingDistributionRef(
  xs: number[],
  mode: Mode,
  noise: number[],
  temperature: number,
): { weights: number[]; n: number } {
  const L = xs.length + 1;
  const weights: number[] = [];
  let stick = 1;
  let stickH = 1;
  let n = 0;
  for (let l = 1; l <= L; ++l) {
    const xi = l < L ? xiRef(mode, xs[l - 1], noise[l - 1], temperature) : 1;
    const h = l < L ? sigmoid(xs[l - 1]) : 1;
    weights.push(stick * xi);
    n += l * stickH * h;
    stick *= 1 - xi;
    stickH *= 1 - h;
  }
  return { weights, n };
}

/** q(z = l) = h^l ∏_{i<l} (1 − h^i) (eq. 14). */
export function discreteProbabilities(xs: number[]): number[] {
  const q: number[] = [];
  let stick = 1;
  for (let l = 0; l <= xs.length; ++l) {
    const h = l < xs.length ? sigmoid(xs[l]) : 1;
    q.push(stick * h);
    stick *= 1 - h;
  }
  return q;
}

/** Algorithm 4, transcribed line by line (h^L = 1). */
export function actRef(hs: number[], epsilon: number): { weights: number[]; rho: number; steps: number } {
  const L = hs.length;
  const weights = new Array<number>(L).fill(0);
  let c = 0;
  let R = 1;
  let rho = 0;
  for (let l = 1; l <= L; ++l) {
    const h = l < L ? hs[l - 1] : 1;
    c = c + h;
    rho = rho + 1;
    if (c < 1 - epsilon) {
      weights[l - 1] = h;
      R = R - h;
    } else {
      weights[l - 1] = R;
      rho = rho + R;
      return { weights, rho, steps: l };
    }
  }
  throw new Error('unreachable: h^L = 1 always halts');
}

export interface StepRefInputs {
  sXi: number;
  sH: number;
  n: number;
  x: number;
  eps: number;
  output: number[];
  u: number[];
}

/** One halting step at one position (Alg. 3 lines 7-15, eq. 27). */
export function haltingStepRef(
  p: StepRefInputs,
  mode: Mode,
  l: number,
  last: boolean,
  temperature: number,
  delta: number,
): { sXi: number; sH: number; n: number; active: number; output: number[] } {
  const xi = last ? 1 : xiRef(mode, p.x, p.eps, temperature);
  const h = last ? 1 : sigmoid(p.x);
  const z = p.sXi * xi;
  const rest = p.sXi * (1 - xi);
  return {
    sXi: rest,
    sH: p.sH * (1 - h),
    n: p.n + l * p.sH * h,
    active: rest > delta ? rest : 0,
    output: p.output.map((o, k) => o + z * p.u[k]),
  };
}

/** Central finite difference of f at x along each coordinate. */
export function numericGradient(f: (x: number[]) => number, x: number[], step = 1e-6): number[] {
  return x.map((_, i) => {
    const plus = x.slice();
    const minus = x.slice();
    plus[i] += step;
    minus[i] -= step;
    return (f(plus) - f(minus)) / (2 * step);
  });
}

/** The tensors' values as rows of `width`. */
export function rows(values: ArrayLike<number>, width: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < values.length; i += width) out.push(Array.from(values).slice(i, i + width));
  return out;
}
