/**
 * Training objectives of PACT (eqs. 25-26) and of ACT, as losses to minimise (the negated objectives, averaged
 * over the batch).
 */
import * as tf from '@tensorflow/tfjs';

import { checkFloat32 } from './halting_util';

/**
 * One block's penalty term: `cost` per latent variable (N_k in PACT, ρ_k in ACT), shape [batch, ...], and the
 * penalty τ_k of each of its elements (PSACT: τ / (H W) for a stage of H×W positions). The term is
 * τ_k Σ cost over the non-batch axes.
 */
export interface PonderTerm {
  cost: tf.Tensor;
  tau: number;
}

function checkLogLikelihood(op: string, logLikelihood: tf.Tensor): number {
  checkFloat32(op, 'logLikelihood', logLikelihood);
  if (logLikelihood.rank !== 1) {
    throw new Error(
      `${op}: logLikelihood must have shape [batch] (log p(y|z,x) per example), got [${logLikelihood.shape}]`,
    );
  }
  if (logLikelihood.shape[0] === 0) throw new Error(`${op}: logLikelihood must hold at least one example, got [0]`);
  return logLikelihood.shape[0];
}

/** Σ_k τ_k Σ cost_k per example, shape [batch]. */
function ponderPenalty(op: string, terms: PonderTerm[], batch: number): tf.Tensor {
  if (!Array.isArray(terms)) throw new Error(`${op}: ponder must be an array of { cost, tau }, got ${String(terms)}`);
  return tf.tidy(() => {
    let total: tf.Tensor = tf.zeros([batch]);
    terms.forEach((term, k) => {
      checkFloat32(op, `ponder[${k}].cost`, term?.cost);
      if (term.cost.rank < 1 || term.cost.shape[0] !== batch) {
        throw new Error(
          `${op}: ponder[${k}].cost must have shape [${batch}, ...] (the batch first), got [${term.cost.shape}]`,
        );
      }
      if (typeof term.tau !== 'number' || !(term.tau >= 0) || !Number.isFinite(term.tau)) {
        throw new Error(`${op}: ponder[${k}].tau must be a finite number >= 0, got ${String(term.tau)}`);
      }
      const perExample =
        term.cost.rank === 1
          ? term.cost
          : tf.sum(
              term.cost,
              term.cost.shape.slice(1).map((_, i) => i + 1),
            );
      total = tf.add(total, tf.mul(perExample, term.tau));
    });
    return total;
  });
}

/** mean_b(Σ_k τ_k cost_k − log p(y | ·, x)). */
function penalisedLoss(op: string, logLikelihood: tf.Tensor, ponder: PonderTerm[]): tf.Scalar {
  const batch = checkLogLikelihood(op, logLikelihood);
  return tf.tidy(() => tf.mean(tf.sub(ponderPenalty(op, ponder, batch), logLikelihood)) as tf.Scalar);
}

/**
 * The relaxed objective (eq. 26), as a loss: mean over the batch of −(log p(y | ẑ, x) − Σ_k τ_k N_k), with N_k
 * the expected iterations of each block (differentiable, reparameterised through ẑ).
 *
 * @param logLikelihood log p(y | ẑ, x) per example, shape [batch].
 * @param ponder the blocks' N_k with their τ_k.
 */
export function relaxedLoss(logLikelihood: tf.Tensor, ponder: PonderTerm[]): tf.Scalar {
  return penalisedLoss('relaxedLoss', logLikelihood, ponder);
}

/**
 * ACT's objective, as a loss: mean over the batch of −(log p(y | ẑ, x) − Σ_k τ_k ρ_k), ρ_k the ponder costs.
 */
export function actLoss(logLikelihood: tf.Tensor, ponder: PonderTerm[]): tf.Scalar {
  return penalisedLoss('actLoss', logLikelihood, ponder);
}

/**
 * REINFORCE for the discrete model (eq. 25) with an exponential-moving-average baseline c of log p(y | z, x)
 * (decay 0.99 as in the paper). Keep one instance per model: it holds c between steps.
 */
export class ReinforceBaseline {
  private average: number | undefined;

  constructor(readonly decay = 0.99) {
    if (!(decay >= 0 && decay < 1)) throw new Error(`ReinforceBaseline: decay must be in [0, 1), got ${decay}`);
  }

  /** The current baseline c (undefined before the first `loss`). */
  /** Sets the moving average (a checkpoint's), or clears it with undefined. */
  restore(average: number | undefined): void {
    this.average = average;
  }

  get value(): number | undefined {
    return this.average;
  }

  /**
   * The surrogate loss whose gradient is minus eq. 25 (averaged over the batch) plus minus ∇θ log p(y|z,x):
   *   −mean_b[ log p(y|z,x) + (log p(y|z,x) − c) log q(z|x) − Σ_k τ_k N_k ]
   * with (log p − c) a constant of the backward pass. c is the baseline before this batch (the batch mean on the
   * first call); afterwards c ← decay·c + (1 − decay)·mean_b log p. Reads `logLikelihood` back (a sync point).
   *
   * @param logLikelihood log p(y | z, x) per example, shape [batch].
   * @param logProb log q(z | x) = Σ_k log q(z_k) per example (`adaptiveBlock` / `haltingLogProb`), shape [batch].
   * @param ponder the blocks' N_k with their τ_k (the prior's term, computed analytically, eq. 23).
   */
  loss(logLikelihood: tf.Tensor, logProb: tf.Tensor, ponder: PonderTerm[]): tf.Scalar {
    const op = 'ReinforceBaseline.loss';
    const batch = checkLogLikelihood(op, logLikelihood);
    checkFloat32(op, 'logProb', logProb);
    if (!tf.util.arraysEqual(logProb.shape, [batch])) {
      throw new Error(`${op}: logProb must have shape [${batch}] (log q(z|x) per example), got [${logProb.shape}]`);
    }
    const values = Array.from(logLikelihood.dataSync());
    const mean = values.reduce((a, b) => a + b, 0) / batch;
    const c = this.average ?? mean;
    this.average = this.decay * c + (1 - this.decay) * mean;
    return tf.tidy(() => {
      const advantage = tf.tensor1d(values.map((v) => v - c));
      const objective = tf.sub(tf.add(logLikelihood, tf.mul(advantage, logProb)), ponderPenalty(op, ponder, batch));
      return tf.neg(tf.mean(objective)) as tf.Scalar;
    });
  }
}
