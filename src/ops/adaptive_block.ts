/**
 * A generic adaptive computation block (Algorithms 1-4): runs u^l = iterate(u^{l-1}, l) for l = 1 … L with a
 * halting unit after each iteration, in any of PACT's three modes or as ACT.
 */
import * as tf from '@tensorflow/tfjs';

import {
  checkFloat32,
  checkInteger,
  checkMode,
  detached,
  HALTING_MODES,
  HaltingMode,
  logSigmoid,
} from './halting_util';
import { haltingStep, HaltingState, initialHaltingState } from './halting_step';

export type AdaptiveMode = HaltingMode | 'act';

/**
 * One iteration: u^l from u^{l-1}. `active` (the positions' shape) is null at l = 1, where every position runs;
 * after that it is the mask a^l of eq. 27 (0/1 in discrete, thresholded and ACT modes; r·[r > δ] in relaxed mode).
 * Where it is 0 the iteration's value at that position is not used (discrete, thresholded: the block keeps
 * u^{l-1} there; ACT: weight 0), so an implementation may skip those positions.
 */
export type IterateFn = (u: tf.Tensor, l: number, active: tf.Tensor | null) => tf.Tensor;

/** The halting unit after iteration l < L: logit(h^l) of u^l, with the positions' shape (a prefix of u's). */
export type HaltFn = (u: tf.Tensor, l: number) => tf.Tensor;

export interface AdaptiveBlockOptions {
  mode: AdaptiveMode;
  /** u^0. */
  input: tf.Tensor;
  /** λ > 0, relaxed mode. */
  temperature?: number;
  /** δ ∈ [0, 1) of the relaxed active mask â = r·[r > δ]; default 0. */
  delta?: number;
  /** ε of ACT (Alg. 4), default 0.01. */
  epsilon?: number;
  /** U(0,1) noise of shape [...positions, L-1] (relaxed, discrete); drawn per iteration (with `seed + l`) if absent. */
  noise?: tf.Tensor;
  seed?: number;
}

export interface AdaptiveBlockResult {
  /** Σ_l ẑ^l u^l (relaxed, ACT) or u^z (discrete, thresholded), u's shape. */
  output: tf.Tensor;
  /** N (eq. 23) per position, PACT modes. */
  expectedIterations?: tf.Tensor;
  /** ρ = N + R per position, ACT mode. */
  ponderCost?: tf.Tensor;
  /** Iterations each position executed (a^l > 0), integer-valued float32. */
  iterations: tf.Tensor;
  /** log q(z) of the sampled z (eq. 14), discrete mode: REINFORCE's score (eq. 25). */
  logProb?: tf.Tensor;
}

const ADAPTIVE_MODES: readonly AdaptiveMode[] = [...HALTING_MODES, 'act'];

/** Replaces the tensors of `previous` that are not in `next` (the block's own intermediates). */
function disposeReplaced(previous: tf.Tensor[], next: tf.Tensor[], keep: tf.Tensor): void {
  for (const t of previous) if (t !== keep && !next.includes(t)) t.dispose();
}

function broadcastOver(perPosition: tf.Tensor, u: tf.Tensor): tf.Tensor {
  return tf.reshape(perPosition, [...perPosition.shape, ...new Array(u.rank - perPosition.rank).fill(1)]);
}

/** tf.tidy for a result object whose type tfjs' TensorContainer does not describe (optional fields). */
function tidyObject<T>(fn: () => T): T {
  return tf.tidy(fn as unknown as () => tf.TensorContainer) as unknown as T;
}

function allZero(mask: tf.Tensor): boolean {
  return tf.tidy(() => tf.any(tf.greater(mask, 0)).dataSync()[0]) === 0;
}

/**
 * Runs an adaptive computation block of at most L iterations.
 *
 * - relaxed (Alg. 3): all L iterations, output Σ ẑ^l u^l, N, with the fused `haltingStep`.
 * - discrete (Alg. 1) and thresholded (Alg. 2): no output accumulator (the running u is frozen where a position
 *   has halted, so it ends as u^z); once every position has halted, `iterate` is not called again (only `halt`, on
 *   the frozen u, to complete N exactly: a full run would compute the same halting logits there). Discrete mode also
 *   returns log q(z).
 * - act (Alg. 4): h^l = σ(halt(u^l, l)), weights and ponder cost ρ = N + R; stops once every position has halted.
 */
export function adaptiveBlock(
  iterate: IterateFn,
  halt: HaltFn,
  L: number,
  options: AdaptiveBlockOptions,
): AdaptiveBlockResult {
  const op = 'adaptiveBlock';
  if (typeof iterate !== 'function') throw new Error(`${op}: iterate must be a function (u, l, active) => u`);
  if (typeof halt !== 'function') throw new Error(`${op}: halt must be a function (u, l) => halting logits`);
  checkInteger(op, 'L', L, 1);
  const mode = checkMode(op, options?.mode, ADAPTIVE_MODES);
  checkFloat32(op, 'options.input', options.input);
  if (options.noise !== undefined) checkFloat32(op, 'options.noise', options.noise);
  return mode === 'act' ? runAct(iterate, halt, L, options) : runPact(iterate, halt, L, mode, options);
}

function haltLogitsAt(halt: HaltFn, u: tf.Tensor, l: number): tf.Tensor {
  const x = halt(u, l);
  if (!(x instanceof tf.Tensor) || x.rank > u.rank || !tf.util.arraysEqual(u.shape.slice(0, x.rank), x.shape)) {
    throw new Error(
      `adaptiveBlock: halt(u, ${l}) must return a tensor whose shape is a prefix of u's ` +
        `[${u.shape.join(',')}], got ${x instanceof tf.Tensor ? `[${x.shape.join(',')}]` : String(x)}`,
    );
  }
  return x;
}

function runPact(
  iterate: IterateFn,
  halt: HaltFn,
  L: number,
  mode: HaltingMode,
  options: AdaptiveBlockOptions,
): AdaptiveBlockResult {
  const accumulate = mode === 'relaxed';
  const noise = options.noise === undefined || L === 1 ? undefined : tf.unstack(options.noise, options.noise.rank - 1);
  let u = options.input;
  let state: HaltingState | undefined;
  let active: tf.Tensor | null = null;
  let iterations: tf.Tensor | undefined;
  let logProb: tf.Tensor | undefined;
  let halted = false;
  for (let l = 1; l <= L; ++l) {
    const previous = [
      u,
      ...(state ? Object.values(state) : []),
      ...(active ? [active] : []),
      ...(iterations ? [iterations] : []),
      ...(logProb ? [logProb] : []),
    ];
    const next = tidyObject(() => {
      let uNext = u;
      if (!halted) {
        // A clone, so that disposing the block's own copy later never frees a tensor that iterate returned as is.
        const computed = tf.clone(iterate(u, l, active));
        // Discrete/thresholded keep u^{l-1} where a position has halted, so u ends as u^z with no accumulator.
        uNext =
          active === null || accumulate ? computed : tf.add(u, tf.mul(broadcastOver(active, u), tf.sub(computed, u)));
      }
      const x = l < L ? haltLogitsAt(halt, uNext, l) : null;
      // With L = 1 no halting unit runs: its output's shape still names the positions.
      const positions = x !== null ? x.shape : (state?.sXi.shape ?? haltLogitsAt(halt, uNext, l).shape);
      const before = state ?? initialHaltingState(positions, accumulate ? uNext.shape : undefined);
      const step = haltingStep(before, x, accumulate ? uNext : null, {
        mode,
        iteration: l,
        maxIterations: L,
        temperature: options.temperature,
        delta: options.delta,
        noise: noise?.[l - 1],
        seed: options.seed === undefined ? undefined : options.seed + l,
      });
      const wasActive = active ?? tf.onesLike(step.active);
      const ran = tf.cast(tf.greater(wasActive, 0), 'float32');
      const count = iterations === undefined ? ran : tf.add(iterations, ran);
      let score = logProb;
      if (mode === 'discrete' && x !== null) {
        // a^l ξ^l = a^l − a^{l+1} and a^l (1 − ξ^l) = a^{l+1} for binary masks: log h^l where the position halts at
        // l, log(1 − h^l) where it goes on (eq. 14; log h^L = 0).
        // Both masks are functions of step functions of the logits only: their gradient is zero.
        const stopped = tf.sub(wasActive, step.active);
        const term = tf.add(tf.mul(stopped, logSigmoid(x)), tf.mul(step.active, logSigmoid(tf.neg(x))));
        score = score === undefined ? term : tf.add(score, term);
      } else if (mode === 'discrete' && score === undefined) {
        score = tf.zerosLike(step.active);
      }
      return { u: uNext, state: step.state, active: step.active, iterations: count, logProb: score };
    });
    const nextList = [
      next.u,
      ...Object.values(next.state),
      next.active,
      next.iterations,
      ...(next.logProb ? [next.logProb] : []),
    ];
    disposeReplaced(previous, nextList, options.input);
    ({ u, state, active, iterations, logProb } = next);
    if (!accumulate && !halted) halted = allZero(active as tf.Tensor);
  }
  const final = state as HaltingState;
  tf.dispose(noise ?? []);
  (active as tf.Tensor).dispose();
  final.sXi.dispose();
  final.sH.dispose();
  if (accumulate && u !== options.input) u.dispose();
  return {
    output: accumulate ? (final.output as tf.Tensor) : u,
    expectedIterations: final.expectedIterations,
    iterations: iterations as tf.Tensor,
    ...(logProb === undefined ? {} : { logProb }),
  };
}

function runAct(iterate: IterateFn, halt: HaltFn, L: number, options: AdaptiveBlockOptions): AdaptiveBlockResult {
  const epsilon = options.epsilon ?? 0.01;
  if (typeof epsilon !== 'number' || !(epsilon > 0 && epsilon < 1)) {
    throw new Error(`adaptiveBlock: epsilon must be a number in (0, 1), got ${String(epsilon)}`);
  }
  let u = options.input;
  // Alg. 4's c, R, output, ρ, and b = [still running] per position.
  let acc:
    | { c: tf.Tensor; R: tf.Tensor; output: tf.Tensor; rho: tf.Tensor; running: tf.Tensor; iterations: tf.Tensor }
    | undefined;
  for (let l = 1; l <= L; ++l) {
    const previous = acc === undefined ? [u] : [u, ...Object.values(acc)];
    const next = tf.tidy(() => {
      const uNext = tf.clone(iterate(u, l, acc === undefined ? null : acc.running));
      const x = l < L ? haltLogitsAt(halt, uNext, l) : null;
      const positions = x !== null ? x.shape : (acc?.c.shape ?? haltLogitsAt(halt, uNext, l).shape);
      const s = acc ?? {
        c: tf.zeros(positions),
        R: tf.ones(positions),
        output: tf.zeros(uNext.shape),
        rho: tf.zeros(positions),
        running: tf.ones(positions),
        iterations: tf.zeros(positions),
      };
      const h = x === null ? tf.onesLike(s.c) : tf.sigmoid(x);
      const c = tf.add(s.c, h);
      // goesOn = b·[c < 1 − ε] (never at l = L): Alg. 4 line 12; stops = b − goesOn halts at this l.
      const goesOn =
        x === null
          ? tf.zerosLike(c)
          : detached((v) => tf.mul(s.running, tf.cast(tf.less(v, 1 - epsilon), 'float32')), c);
      const stops = tf.sub(s.running, goesOn);
      const weight = tf.add(tf.mul(goesOn, h), tf.mul(stops, s.R));
      return {
        u: uNext,
        c,
        R: tf.sub(s.R, tf.mul(goesOn, h)),
        output: tf.add(s.output, tf.mul(broadcastOver(weight, uNext), uNext)),
        rho: tf.add(s.rho, tf.add(s.running, tf.mul(stops, s.R))),
        running: goesOn,
        iterations: tf.add(s.iterations, s.running),
      };
    });
    const { u: uNext, ...state } = next;
    disposeReplaced(previous, [uNext, ...Object.values(state)], options.input);
    u = uNext;
    acc = state;
    if (allZero(acc.running)) break;
  }
  const final = acc as NonNullable<typeof acc>;
  for (const t of [final.c, final.R, final.running]) t.dispose();
  if (u !== options.input) u.dispose();
  return { output: final.output, ponderCost: final.rho, iterations: final.iterations };
}
