/**
 * RelaxedBernoulli (the binary Concrete distribution), eq. 7 of the PACT paper.
 */
import * as tf from '@tensorflow/tfjs';

import { checkFloat32, checkNoNaN, checkTemperature, logit, noiseFor } from './halting_util';

/**
 * Draws v̂ ~ RelaxedBernoulli(γ, λ) with `logits = logit(γ)` (eq. 7): ℓ = logit(γ) + logit(ε), v̂ = σ(ℓ / λ),
 * ε ~ U(0,1). P(v̂ > 0.5) = γ for every λ; λ → 0 gives Bernoulli(γ). Computed from the logits, so nothing
 * overflows at large |logit(γ)|.
 *
 * @param logits logit(γ), any shape, float32, no NaN (±∞ allowed: γ = 0 or 1).
 * @param temperature λ > 0.
 * @param noise the U(0,1) draws ε, same shape as `logits`; drawn with `uniformNoise` (and `seed`) if absent.
 * @param seed seed of that draw, for reproducible runs.
 * @returns v̂, shape of `logits`; differentiable with respect to `logits` (and `noise`).
 */
export function relaxedBernoulli(logits: tf.Tensor, temperature: number, noise?: tf.Tensor, seed?: number): tf.Tensor {
  const op = 'relaxedBernoulli';
  checkFloat32(op, 'logits', logits);
  checkTemperature(op, temperature);
  checkNoNaN(op, 'logits', logits);
  return tf.tidy(() => {
    const eps = noiseFor(op, logits.shape, noise, seed);
    // An infinite logit is a certain outcome whatever ε: it wins over logit(ε) = ∓∞ at ε = 0 or 1 (∞ − ∞ is NaN).
    const l = tf.where(tf.isInf(logits), logits, tf.add(logits, logit(eps)));
    return tf.sigmoid(tf.div(l, temperature));
  });
}
