/**
 * Adaptive Computation Time's halting distribution (Graves 2016), Algorithm 4 and eqs. 28-29 of the PACT paper:
 * the baseline PACT is compared with (SACT when applied per position).
 */
import * as tf from '@tensorflow/tfjs';

import { checkFloat32, checkRange, detached } from './halting_util';

export interface ActHalting {
  /** ẑ^l = h^l for l < N, R at l = N, 0 after (eq. 29); shape [..., L]. */
  weights: tf.Tensor;
  /** ρ = N + R, the differentiable upper bound on the iterations executed; shape [...]. */
  ponderCost: tf.Tensor;
  /** N, the iterations executed (integer-valued float32, zero gradient); shape [...]. */
  steps: tf.Tensor;
}

/**
 * ACT halting of Algorithm 4: with c_l = Σ_{i≤l} h^i accumulated in order (float32), N is the first l with
 * c_l ≥ 1 − ε (eq. 28; h^L is taken as 1, so N ≤ L), R = 1 − Σ_{l<N} h^l, weights per eq. 29, ρ = N + R.
 * Gradients flow through h^l (l < N) into the weights and R; N is piecewise constant (which is why ρ is
 * discontinuous in h, Fig. 2).
 *
 * @param haltProbs h^l in [0, 1], shape [..., L] (rank ≥ 1); the last entry is ignored and treated as 1.
 * @param epsilon ε in (0, 1), default 0.01.
 */
export function actHalting(haltProbs: tf.Tensor, epsilon = 0.01): ActHalting {
  const op = 'actHalting';
  checkFloat32(op, 'haltProbs', haltProbs);
  if (haltProbs.rank < 1) throw new Error(`${op}: haltProbs must have rank >= 1 ([..., L]), got a scalar`);
  if (typeof epsilon !== 'number' || !(epsilon > 0 && epsilon < 1)) {
    throw new Error(`${op}: epsilon must be a number in (0, 1), got ${String(epsilon)}`);
  }
  const L = haltProbs.shape[haltProbs.rank - 1];
  if (L < 1) throw new Error(`${op}: haltProbs' last dimension (L, the iterations) must be at least 1, got 0`);
  checkRange(op, 'haltProbs', haltProbs, 0, 1, 'probabilities');
  const [weights, ponderCost, steps] = tf.tidy(() => {
    const axis = haltProbs.rank - 1;
    const lead = haltProbs.shape.slice(0, -1);
    // running^l = [c_l < 1 − ε]: iteration l did not halt (l < N); never true at l = L where h^L = 1.
    const running =
      L === 1
        ? tf.zerosLike(haltProbs)
        : detached((h) => {
            const notLast = tf.concat([tf.ones([...lead, L - 1]), tf.zeros([...lead, 1])], axis);
            const below = tf.cast(tf.less(tf.cumsum(h, axis), 1 - epsilon), 'float32');
            return tf.mul(below, notLast);
          }, haltProbs);
    // halts^l = running^{l-1} − running^l (running^0 = 1): one-hot at l = N.
    const previous =
      L === 1 ? tf.onesLike(running) : tf.concat([tf.ones([...lead, 1]), tf.slice(running, 0, [...lead, L - 1])], axis);
    const halts = tf.sub(previous, running);
    const before = tf.mul(haltProbs, running);
    const remainder = tf.sub(1, tf.sum(before, -1));
    const w = tf.add(before, tf.mul(halts, tf.expandDims(remainder, -1)));
    const n = tf.add(tf.sum(running, -1), 1);
    return [w, tf.add(n, remainder), n];
  });
  return { weights, ponderCost, steps };
}
