/**
 * The halting distribution of one adaptive computation block from all its halting logits at once (eqs. 12-18),
 * and the log-probability log q(z) of a number of iterations (eq. 14), which REINFORCE needs.
 */
import * as tf from '@tensorflow/tfjs';

import {
  checkFloat32,
  checkMode,
  checkNoNaN,
  checkTemperature,
  detached,
  HALTING_MODES,
  HaltingMode,
  logit,
  logSigmoid,
  noiseFor,
} from './halting_util';

export interface HaltingDistributionOptions {
  mode: HaltingMode;
  /** λ > 0, relaxed mode only. */
  temperature?: number;
  /** U(0,1) draws ε of shape [..., L-1] (relaxed and discrete modes); `uniformNoise` with `seed` if absent. */
  noise?: tf.Tensor;
  seed?: number;
}

export interface HaltingDistribution {
  /** ẑ, shape [..., L]: a distribution over the iterations (one-hot in discrete and thresholded modes). */
  weights: tf.Tensor;
  /** N = Σ_l l h^l ∏_{i<l} (1 − h^i) (eq. 23, Alg. 3), from h whatever the mode; shape [...]. */
  expectedIterations: tf.Tensor;
}

/**
 * Stick-breaking in log space: with log ξ^l and log(1 − ξ^l) for l < L (shape [..., L-1]) and ξ^L = 1, returns
 * log ẑ^l = log ξ^l + Σ_{i<l} log(1 − ξ^i) (eqs. 13, 17), shape [..., L].
 */
export function stickBreakingLog(logXi: tf.Tensor, logXiComplement: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const axis = logXi.rank - 1;
    const padding: Array<[number, number]> = logXi.shape.map((_, i) => (i === axis ? [0, 1] : [0, 0]));
    return tf.add(tf.pad(logXi, padding), tf.cumsum(tf.pad(logXiComplement, padding), axis, true));
  });
}

/** N = Σ_l l q_l over the last axis of weights q [..., L]. */
export function expectedIterationsOf(weights: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const L = weights.shape[weights.rank - 1];
    return tf.sum(tf.mul(weights, tf.range(1, L + 1, 1, 'float32')), -1);
  });
}

/** One-hot of the first l with ξ^l = 1 (ξ^L = 1 appended), from a binary ξ of shape [..., L-1]. */
function firstHalt(xi: tf.Tensor): tf.Tensor {
  const axis = xi.rank - 1;
  const full = tf.concat([xi, tf.ones([...xi.shape.slice(0, -1), 1])], axis);
  return tf.mul(full, tf.cast(tf.equal(tf.cumsum(full, axis, true), 0), 'float32'));
}

/**
 * The halting distribution ẑ of an adaptive computation block and its expected number of iterations N.
 *
 * - relaxed (Alg. 3, eqs. 16-17): ξ̂^l ~ RelaxedBernoulli(h^l, λ), ẑ^l = ξ̂^l ∏_{i<l} (1 − ξ̂^i), computed in log
 *   space; differentiable with respect to `haltLogits`.
 * - discrete (Alg. 1, eqs. 12-13): ξ^l = [logit(h^l) + logit(ε^l) > 0] ~ Bernoulli(h^l), the λ → 0 limit of
 *   relaxed on the same noise; ẑ is one-hot at the first l with ξ^l = 1.
 * - thresholded (Alg. 2, eq. 15): ξ^l = [h^l > 0.5]; ẑ one-hot.
 * In the last two, ẑ has zero gradient; N is differentiable in every mode (eq. 23).
 *
 * @param haltLogits logit(h^l) for l = 1 … L−1, shape [..., L-1] (rank ≥ 1; h^L = 1 always); no NaN.
 */
export function haltingDistribution(haltLogits: tf.Tensor, options: HaltingDistributionOptions): HaltingDistribution {
  const op = 'haltingDistribution';
  checkFloat32(op, 'haltLogits', haltLogits);
  if (haltLogits.rank < 1) throw new Error(`${op}: haltLogits must have rank >= 1 ([..., L-1]), got a scalar`);
  const mode = checkMode(op, options?.mode, HALTING_MODES);
  const temperature = mode === 'relaxed' ? checkTemperature(op, options.temperature) : 0;
  checkNoNaN(op, 'haltLogits', haltLogits);
  const [weights, expectedIterations] = tf.tidy(() => {
    const q = tf.exp(stickBreakingLog(logSigmoid(haltLogits), logSigmoid(tf.neg(haltLogits))));
    const n = expectedIterationsOf(q);
    if (mode === 'thresholded') {
      return [detached((x) => firstHalt(tf.cast(tf.greater(x, 0), 'float32')), haltLogits), n];
    }
    const eps = noiseFor(op, haltLogits.shape, options.noise, options.seed);
    if (mode === 'discrete') {
      const xi = (x: tf.Tensor) => tf.cast(tf.greater(tf.add(x, logit(eps)), 0), 'float32');
      return [detached((x) => firstHalt(xi(x)), haltLogits), n];
    }
    const scaled = tf.div(tf.add(haltLogits, logit(eps)), temperature);
    return [tf.exp(stickBreakingLog(logSigmoid(scaled), logSigmoid(tf.neg(scaled)))), n];
  });
  return { weights, expectedIterations };
}

function describe(x: unknown): string {
  return x instanceof tf.Tensor ? `a ${x.dtype} tensor` : String(x);
}

/**
 * log q(z) = log h^z + Σ_{i<z} log(1 − h^i) (eq. 14; log h^L = 0) of z = `steps` iterations, differentiable with
 * respect to `haltLogits`: the score ∇ log q(z|x) of REINFORCE (eq. 25).
 *
 * @param haltLogits shape [..., L-1].
 * @param steps z ∈ {1 … L}, shape [...] (float32 or int32 holding integers).
 */
export function haltingLogProb(haltLogits: tf.Tensor, steps: tf.Tensor): tf.Tensor {
  const op = 'haltingLogProb';
  checkFloat32(op, 'haltLogits', haltLogits);
  if (haltLogits.rank < 1) throw new Error(`${op}: haltLogits must have rank >= 1 ([..., L-1]), got a scalar`);
  if (!(steps instanceof tf.Tensor) || (steps.dtype !== 'float32' && steps.dtype !== 'int32')) {
    throw new Error(`${op}: steps must be a float32 or int32 tf.Tensor, got ${describe(steps)}`);
  }
  const L = haltLogits.shape[haltLogits.rank - 1] + 1;
  if (!tf.util.arraysEqual(steps.shape, haltLogits.shape.slice(0, -1))) {
    throw new Error(
      `${op}: steps must have shape [${haltLogits.shape.slice(0, -1).join(',')}] (haltLogits' without its last axis), ` +
        `got [${steps.shape.join(',')}]`,
    );
  }
  checkNoNaN(op, 'haltLogits', haltLogits);
  // z must be an iteration count: an integer in [1, L] (outside, no entry would be picked and log q would read 0).
  const bad = tf.tidy(() => {
    const z = tf.cast(steps, 'float32');
    const outside = tf.logicalOr(tf.less(z, 1), tf.greater(z, L));
    return tf.any(tf.logicalOr(outside, tf.logicalNot(tf.equal(z, tf.floor(z))))).dataSync()[0] !== 0;
  });
  if (bad)
    throw new Error(`${op}: steps must hold integers in [1, ${L}] (the iterations z; L = haltLogits' last axis + 1)`);
  return tf.tidy(() => {
    const logQ = stickBreakingLog(logSigmoid(haltLogits), logSigmoid(tf.neg(haltLogits)));
    const pick = tf.oneHot(tf.sub(tf.cast(steps, 'int32'), tf.scalar(1, 'int32')), L, 1, 0, 'float32');
    return tf.sum(tf.where(tf.cast(pick, 'bool'), logQ, tf.zerosLike(logQ)), -1);
  });
}
