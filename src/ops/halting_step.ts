/**
 * The fused per-iteration step of an adaptive computation block (Algorithm 3, lines 7-15, and the active mask of
 * eq. 27): the "RelaxedBernoulli stick-breaking" kernel, for relaxed, discrete and thresholded blocks.
 *
 * On a backend that registers the `PactHaltingStep` kernel (pact-cpu: native/cpu/halting_step.cc) the op runs it,
 * and its registered gradient runs `PactHaltingStepGrad`; on any other backend it runs the composite below, built
 * from tfjs ops (the reference the tests compare the kernels with). A backend that registers the first must
 * register the second.
 */
import * as tf from '@tensorflow/tfjs';

import {
  checkFloat32,
  checkInteger,
  checkMode,
  checkNoNaN,
  checkShape,
  checkTemperature,
  HALTING_MODES,
  HaltingMode,
  logit,
  noiseFor,
  stepMask,
} from './halting_util';
import {
  HaltingStepAttrs,
  HaltingStepInputs,
  haltingStepInputList,
  PACT_HALTING_STEP,
  readsNoise,
} from './halting_step_kernel';
import './halting_step_grad';

export { PACT_HALTING_STEP, PACT_HALTING_STEP_GRAD } from './halting_step_kernel';
export type { HaltingStepAttrs, HaltingStepInputs } from './halting_step_kernel';

/** The running state of a block between iterations; every tensor but `output` has the positions' shape. */
export interface HaltingState {
  /** S_ξ̂ = ∏_{t<l} (1 − ξ̂^t), the remaining stick of ξ̂ (r of eq. 27). */
  sXi: tf.Tensor;
  /** S_h = ∏_{t<l} (1 − h^t). */
  sH: tf.Tensor;
  /** N accumulated so far, Σ_{t<l} t S_h^t h^t. */
  expectedIterations: tf.Tensor;
  /** Σ_{t<l} ẑ^t u^t, shape [...positions, ...channels]; absent for a block that keeps no accumulator. */
  output?: tf.Tensor;
}

export interface HaltingStepOptions {
  mode: HaltingMode;
  /** l, 1-based. */
  iteration: number;
  /** L ≥ 1; at l = L the block always halts (h^L = 1) and `haltLogits` may be null. */
  maxIterations: number;
  /** λ > 0, relaxed mode. */
  temperature?: number;
  /** δ ∈ [0, 1) of â = r·[r > δ] (eq. 27); default 0. */
  delta?: number;
  /** U(0,1) draws ε with the positions' shape (relaxed and discrete); `uniformNoise` with `seed` if absent. */
  noise?: tf.Tensor;
  seed?: number;
}

export interface HaltingStepResult {
  state: HaltingState;
  /** â of iteration l+1: r·[r > δ] with r the new S_ξ̂ (relaxed), or the 0/1 mask of running positions. */
  active: tf.Tensor;
}

/** The state before iteration 1: both sticks 1, N = 0, and a zero accumulator of `outputShape` if given. */
export function initialHaltingState(positionsShape: number[], outputShape?: number[]): HaltingState {
  return {
    sXi: tf.ones(positionsShape),
    sH: tf.ones(positionsShape),
    expectedIterations: tf.zeros(positionsShape),
    ...(outputShape === undefined ? {} : { output: tf.zeros(outputShape) }),
  };
}

/**
 * One iteration l of an adaptive computation block at every position, in one fused pass (Alg. 3 lines 7-15):
 * ξ from the halting logit (relaxed: RelaxedBernoulli(h, λ), eq. 16; discrete: [logit h + logit ε > 0];
 * thresholded: [h > 0.5], eq. 15; at l = L: 1), ẑ = S_ξ̂ ξ, output += ẑ u^l (eq. 18), N += l S_h h,
 * S_ξ̂ ← S_ξ̂ (1 − ξ), S_h ← S_h (1 − h), and the next iteration's active mask â = S_ξ̂·[S_ξ̂ > δ] (eq. 27).
 * Differentiable in relaxed mode with respect to the state, haltLogits and u (in the other modes ξ is a step
 * function: only N, the accumulator and the sticks carry gradients).
 *
 * @param state the state before iteration l (`initialHaltingState` for l = 1).
 * @param haltLogits logit(h^l), the positions' shape; null only at l = L.
 * @param u u^l, shape [...positions, ...channels]; null when the state has no accumulator.
 */
export function haltingStep(
  state: HaltingState,
  haltLogits: tf.Tensor | null,
  u: tf.Tensor | null,
  options: HaltingStepOptions,
): HaltingStepResult {
  const op = 'haltingStep';
  const mode = checkMode(op, options?.mode, HALTING_MODES);
  const L = checkInteger(op, 'maxIterations', options.maxIterations, 1);
  // The native kernels count iterations in 32-bit integers.
  if (L > 2 ** 30) throw new Error(`${op}: maxIterations must be at most 2^30, got ${L}`);
  const l = checkInteger(op, 'iteration', options.iteration, 1);
  if (l > L) throw new Error(`${op}: iteration must be <= maxIterations (${L}), got ${l}`);
  const last = l === L;
  const temperature = mode === 'relaxed' && !last ? checkTemperature(op, options.temperature) : 1;
  const delta = options.delta ?? 0;
  if (typeof delta !== 'number' || !(delta >= 0 && delta < 1)) {
    throw new Error(`${op}: delta must be a number in [0, 1), got ${String(delta)}`);
  }
  const positions = checkFloat32(op, 'state.sXi', state?.sXi).shape;
  const perPosition = (name: string, t: tf.Tensor | null | undefined) =>
    checkShape(op, name, checkFloat32(op, name, t), positions, 'the positions, as state.sXi');
  perPosition('state.sH', state.sH);
  perPosition('state.expectedIterations', state.expectedIterations);
  if (!last || haltLogits !== null) perPosition('haltLogits', haltLogits);
  const accumulate = state.output !== undefined;
  if (accumulate) {
    const uShape = checkFloat32(op, 'u', u).shape;
    if (!tf.util.arraysEqual(uShape.slice(0, positions.length), positions)) {
      throw new Error(`${op}: u must have shape [${positions}, ...channels] (the positions first), got [${uShape}]`);
    }
    checkShape(op, 'state.output', checkFloat32(op, 'state.output', state.output), uShape, "u's shape");
  } else if (u !== null) {
    throw new Error(`${op}: u must be null when the state has no output accumulator (state.output is undefined)`);
  }
  const attrs: HaltingStepAttrs = { mode, iteration: l, last, temperature, delta, accumulate };
  const native = tf.getKernel(PACT_HALTING_STEP, tf.getBackend()) !== undefined;
  if (!native && !last) checkNoNaN(op, 'haltLogits', haltLogits as tf.Tensor);
  return tf.tidy(() => {
    const inputs: HaltingStepInputs<tf.Tensor> = {
      sXi: state.sXi,
      sH: state.sH,
      expectedIterations: state.expectedIterations,
      ...(last ? {} : { haltLogits: haltLogits as tf.Tensor }),
      ...(readsNoise(attrs) ? { noise: noiseFor(op, positions, options.noise, options.seed, !native) } : {}),
      ...(accumulate ? { output: state.output, u: u as tf.Tensor } : {}),
    };
    const outs = native
      ? (tf
          .engine()
          .runKernel(
            PACT_HALTING_STEP,
            haltingStepInputList(inputs, attrs) as unknown as tf.NamedTensorMap,
            attrs as unknown as tf.NamedAttrMap,
          ) as tf.Tensor[])
      : haltingStepComposite(inputs, attrs);
    const [sXi, sH, expectedIterations, active, output] = outs;
    return { state: { sXi, sH, expectedIterations, ...(accumulate ? { output } : {}) }, active };
  });
}

/** Reshapes per-position values to broadcast over u's trailing (channel) axes. */
function overChannels(perPosition: tf.Tensor, u: tf.Tensor): tf.Tensor {
  return tf.reshape(perPosition, [...perPosition.shape, ...new Array(u.rank - perPosition.rank).fill(1)]);
}

/**
 * The step from tfjs ops, run on backends without the kernel: [S_ξ̂', S_h', N', â, output'] (output' only when
 * accumulating). Gradients come from tfjs' autodiff; the masks are constants of the backward pass.
 */
export function haltingStepComposite(inputs: HaltingStepInputs<tf.Tensor>, attrs: HaltingStepAttrs): tf.Tensor[] {
  return tf.tidy(() => {
    const { sXi, sH, expectedIterations: n } = inputs;
    let h: tf.Tensor, hc: tf.Tensor, xi: tf.Tensor, xic: tf.Tensor;
    if (attrs.last) {
      [h, hc, xi, xic] = [tf.onesLike(sXi), tf.zerosLike(sXi), tf.onesLike(sXi), tf.zerosLike(sXi)];
    } else {
      const x = inputs.haltLogits as tf.Tensor;
      [h, hc] = [tf.sigmoid(x), tf.sigmoid(tf.neg(x))];
      if (attrs.mode === 'relaxed') {
        const scaled = tf.div(tf.add(x, logit(inputs.noise as tf.Tensor)), attrs.temperature);
        [xi, xic] = [tf.sigmoid(scaled), tf.sigmoid(tf.neg(scaled))];
      } else {
        xi = stepMask(attrs.mode === 'discrete' ? tf.add(x, logit(inputs.noise as tf.Tensor)) : x);
        xic = tf.sub(1, xi);
      }
    }
    const rest = tf.mul(sXi, xic);
    const outs = [
      rest,
      tf.mul(sH, hc),
      tf.add(n, tf.mul(tf.mul(sH, h), attrs.iteration)),
      tf.mul(rest, stepMask(rest, attrs.delta)),
    ];
    if (attrs.accumulate) {
      const u = inputs.u as tf.Tensor;
      outs.push(tf.add(inputs.output as tf.Tensor, tf.mul(overChannels(tf.mul(sXi, xi), u), u)));
    }
    return outs;
  });
}
