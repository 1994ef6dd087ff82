/**
 * The prior on the number of iterations of a block: the truncated geometric distribution (eq. 19), and the
 * analytic expectation of its log-probability under the halting distribution (eq. 23).
 */
import * as tf from '@tensorflow/tfjs';

import { checkFloat32, checkInteger } from './halting_util';

function checkTau(op: string, tau: unknown): number {
  // Up to 1e30, so that τ·z stays finite in float32 for any z up to 1e8 iterations.
  if (typeof tau !== 'number' || !(tau > 0) || !(tau <= 1e30)) {
    throw new Error(`${op}: tau must be a positive number at most 1e30, got ${String(tau)}`);
  }
  return tau;
}

/**
 * log of the normalising constant of eq. 19, log((e^τ − 1) / (1 − e^{−τL})), computed as
 * τ + log(−expm1(−τ)) − log(−expm1(−τL)) so that it is accurate for small τ and does not overflow for large τ.
 */
export function truncatedGeometricLogNormalizer(tau: number, L: number): number {
  return tau + Math.log(-Math.expm1(-tau)) - Math.log(-Math.expm1(-tau * L));
}

/**
 * log TruncatedGeometric(z | τ, L) = log((e^τ − 1) / (1 − e^{−τL})) − τ z (eq. 19), for z ∈ {1 … L}.
 *
 * @param z numbers of iterations (any shape; values outside {1 … L} are not checked and give the formula's value).
 * @param tau τ > 0, the log-scale penalty per iteration (α = 1 − e^{−τ}).
 * @param L the block's maximum number of iterations, an integer ≥ 1.
 */
export function truncatedGeometricLogProb(z: tf.Tensor, tau: number, L: number): tf.Tensor {
  const op = 'truncatedGeometricLogProb';
  checkFloat32(op, 'z', z);
  checkTau(op, tau);
  checkInteger(op, 'L', L, 1);
  return tf.tidy(() => tf.sub(truncatedGeometricLogNormalizer(tau, L), tf.mul(z, tau)));
}

/**
 * E_{q(z)} log p(z) = log((e^τ − 1) / (1 − e^{−τL})) − τ N (eq. 23 with its constant): exactly the expectation of
 * `truncatedGeometricLogProb` under the halting distribution whose expected number of iterations is N, because the
 * log-prior is linear in z. Differentiable in N (gradient −τ).
 *
 * @param expectedIterations N, any shape.
 */
export function expectedLogPrior(expectedIterations: tf.Tensor, tau: number, L: number): tf.Tensor {
  const op = 'expectedLogPrior';
  checkFloat32(op, 'expectedIterations', expectedIterations);
  checkTau(op, tau);
  checkInteger(op, 'L', L, 1);
  return tf.tidy(() => tf.sub(truncatedGeometricLogNormalizer(tau, L), tf.mul(expectedIterations, tau)));
}
