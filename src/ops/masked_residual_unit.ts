/**
 * PSACT's residual unit with an active-positions mask (PACT.md, "PSACT"): `F(u) = u + f(u)·a`, where `f` is the
 * pre-activation unit BN-ReLU-conv3×3-BN-ReLU-conv3×3 (stride 1, C → C, identity shortcut) and `a >= 0` the
 * active mask (discrete, thresholded or relaxed `â`). Where `a = 0` the unit returns `u`, computes nothing and
 * passes no gradient through `f`.
 *
 * Work is confined to the active set A = [a > 0] and its halo:
 *   - conv2 is a masked convolution on A;
 *   - conv1 on D = dilateMask(A, 3), the positions conv2 reads ("its first 3×3 convolution is needed on the active
 *     set dilated by one pixel");
 *   - BN1-ReLU on D2 = dilateMask(A, 5), the positions conv1 reads; BN2-ReLU on D.
 * Batch-norm statistics (training): each batch norm's mean and biased variance are taken over the positions where
 * it is computed (BN1 over D2, BN2 over D), over the whole batch. This is the choice that keeps the unit's cost
 * proportional to the active set and makes an all-ones mask the dense unit exactly; statistics over A alone would
 * normalise the halo with numbers from elsewhere, and statistics over every position would need f on all of them.
 * With an all-zero mask the statistics are empty: the unit returns `u` without computing anything (and reports
 * zero statistics). Evaluation (`options.moving` given) uses the moving statistics instead.
 *
 * Kernels: on a backend that registers `PactMaskedBatchNormRelu` (pact-cpu: native/cpu/masked_residual_unit.cc)
 * each training batch norm + ReLU is one native kernel over the set's rows, with `PactMaskedBatchNormReluGrad` as
 * its gradient; elsewhere (and in evaluation) a tfjs composite over the whole tensor multiplied by the set. When a
 * set is all-ones the fused `batchNormReluTrain` runs instead.
 */
import * as tf from '@tensorflow/tfjs';

import { inferenceGradients } from './batch_norm_relu_inference';
import { batchNormReluTrain } from './batch_norm_train';
import { dilateMask } from './dilate_mask';
import { binaryMask, maskedConv2d } from './masked_conv2d';

export const PACT_MASKED_BATCH_NORM_RELU = 'PactMaskedBatchNormRelu';
export const PACT_MASKED_BATCH_NORM_RELU_GRAD = 'PactMaskedBatchNormReluGrad';
/** Evaluation's masked batch norm + ReLU with given statistics: inputs x, scale, offset, mean, variance, mask. */
export const PACT_MASKED_BATCH_NORM_RELU_INFERENCE = 'PactMaskedBatchNormReluInference';

/** The unit's output u + c·a in one pass: inputs u and c [B,H,W,C], a [B,H,W] (one factor per position). */
export const PACT_SCALED_RESIDUAL_ADD = 'PactScaledResidualAdd';
/** Its gradient w.r.t. c and a: inputs dy, c, a; outputs dc = dy·a and da = sum over channels of dy·c. */
export const PACT_SCALED_RESIDUAL_ADD_GRAD = 'PactScaledResidualAddGrad';

/** Attributes of the masked batch-norm kernels. */
export interface MaskedBatchNormReluAttrs {
  epsilon: number;
}

export interface MaskedBatchNormParams {
  scale: tf.Tensor1D;
  offset: tf.Tensor1D;
}

export interface MaskedResidualUnitParams {
  bn1: MaskedBatchNormParams;
  /** [3, 3, C, C] HWIO */
  conv1: tf.Tensor4D;
  bn2: MaskedBatchNormParams;
  /** [3, 3, C, C] HWIO */
  conv2: tf.Tensor4D;
}

export interface BatchStats {
  mean: tf.Tensor1D;
  variance: tf.Tensor1D;
}

export interface MaskedResidualUnitOptions {
  epsilon?: number;
  /** Evaluation: normalise with these statistics instead of the batch's. */
  moving?: { bn1: BatchStats; bn2: BatchStats };
}

export interface MaskedResidualUnitResult {
  y: tf.Tensor4D;
  /** The statistics used by each batch norm (the batch's over its set in training, else the moving ones). */
  bn1: BatchStats;
  bn2: BatchStats;
  /** |A|, |D|, |D2|: the positions where conv2, conv1 and BN1 were computed. */
  activeCounts: [number, number, number];
}

/** u + f(u)·a (see the file comment); u [B,H,W,C], activeMask [B,H,W] or [B,H,W,1]. */
export function maskedResidualUnit(
  u: tf.Tensor4D,
  params: MaskedResidualUnitParams,
  activeMask: tf.Tensor,
  options: MaskedResidualUnitOptions = {},
): tf.Tensor4D {
  return tf.tidy(() => maskedResidualUnitWithStats(u, params, activeMask, options).y);
}

/** maskedResidualUnit with the statistics it used (for the caller's moving averages). */
export function maskedResidualUnitWithStats(
  u: tf.Tensor4D,
  params: MaskedResidualUnitParams,
  activeMask: tf.Tensor,
  options: MaskedResidualUnitOptions = {},
): MaskedResidualUnitResult {
  const epsilon = options.epsilon ?? 1e-5;
  checkArgs(u, params, activeMask, options.moving);
  if (typeof epsilon !== 'number' || !(epsilon > 0) || !Number.isFinite(epsilon)) {
    throw new Error(`maskedResidualUnit: options.epsilon must be a positive finite number, got ${String(epsilon)}`);
  }
  const [b, h, w, c] = u.shape;
  const active = binaryMask(tf.reshape(activeMask, [b, h, w]));
  const count = (m: tf.Tensor) => tf.sum(m).dataSync()[0];
  const countA = count(active);
  if (countA === 0) {
    const zeros = () => tf.zeros([c]) as tf.Tensor1D;
    return {
      y: tf.clone(u),
      bn1: options.moving?.bn1 ?? { mean: zeros(), variance: zeros() },
      bn2: options.moving?.bn2 ?? { mean: zeros(), variance: zeros() },
      activeCounts: [0, 0, 0],
    };
  }
  const conv1Set = dilateMask(active, 3);
  const bn1Set = dilateMask(active, 5);
  const counts: [number, number, number] = [countA, count(conv1Set), count(bn1Set)];
  const bn1 = maskedBatchNormRelu(u, params.bn1, bn1Set, counts[2], epsilon, options.moving?.bn1);
  const c1 = maskedConv2d(bn1.y, params.conv1, conv1Set, 1, 'same');
  const bn2 = maskedBatchNormRelu(c1, params.bn2, conv1Set, counts[1], epsilon, options.moving?.bn2);
  const c2 = maskedConv2d(bn2.y, params.conv2, active, 1, 'same');
  const y = scaledResidualAdd(u, c2, tf.cast(tf.reshape(activeMask, [b, h, w]), 'float32') as tf.Tensor3D);
  return { y, bn1: bn1.stats, bn2: bn2.stats, activeCounts: counts };
}

/**
 * u + c·a (a [B,H,W] scales each position of c): one kernel where the backend has it, else tfjs ops. Exported for
 * the backends' tests.
 */
export function scaledResidualAdd(u: tf.Tensor4D, c: tf.Tensor4D, a: tf.Tensor3D): tf.Tensor4D {
  if (tf.getKernel(PACT_SCALED_RESIDUAL_ADD, tf.getBackend()) !== undefined) {
    return tf.engine().runKernel(PACT_SCALED_RESIDUAL_ADD, { u, c, a }) as tf.Tensor4D;
  }
  return tf.add(u, tf.mul(c, tf.expandDims(a, 3)));
}

/**
 * relu(batchNorm(x)) on the positions of `set` ([B,H,W], 0/1, `count` ones), 0 elsewhere, with the statistics of
 * those positions (training) or the given ones. Exported for the backends' tests.
 */
export function maskedBatchNormRelu(
  x: tf.Tensor4D,
  params: MaskedBatchNormParams,
  set: tf.Tensor,
  count: number,
  epsilon: number,
  moving: BatchStats | undefined,
): { y: tf.Tensor4D; stats: BatchStats } {
  if (moving === undefined && count === set.size) {
    const r = batchNormReluTrain(x, params.scale, params.offset, epsilon);
    return { y: r.y as tf.Tensor4D, stats: { mean: r.mean, variance: r.variance } };
  }
  if (moving === undefined && tf.getKernel(PACT_MASKED_BATCH_NORM_RELU, tf.getBackend()) !== undefined) {
    const attrs: MaskedBatchNormReluAttrs = { epsilon };
    const [y, mean, variance] = tf
      .engine()
      .runKernel(
        PACT_MASKED_BATCH_NORM_RELU,
        { x, scale: params.scale, offset: params.offset, mask: set },
        attrs as unknown as tf.NamedAttrMap,
      ) as tf.Tensor[];
    return { y: y as tf.Tensor4D, stats: { mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D } };
  }
  if (moving !== undefined && tf.getKernel(PACT_MASKED_BATCH_NORM_RELU_INFERENCE, tf.getBackend()) !== undefined) {
    const attrs: MaskedBatchNormReluAttrs = { epsilon };
    const y = tf
      .engine()
      .runKernel(
        PACT_MASKED_BATCH_NORM_RELU_INFERENCE,
        { x, scale: params.scale, offset: params.offset, mean: moving.mean, variance: moving.variance, mask: set },
        attrs as unknown as tf.NamedAttrMap,
      ) as tf.Tensor4D;
    return { y, stats: moving };
  }
  const m4 = tf.expandDims(set, 3);
  const axes = [0, 1, 2];
  const stats =
    moving ??
    (() => {
      const mean = tf.div(tf.sum(tf.mul(x, m4), axes), count) as tf.Tensor1D;
      const variance = tf.div(tf.sum(tf.mul(tf.square(tf.sub(x, mean)), m4), axes), count) as tf.Tensor1D;
      return { mean, variance };
    })();
  const normalised = tf.add(
    tf.mul(tf.mul(tf.sub(x, stats.mean), tf.rsqrt(tf.add(stats.variance, epsilon))), params.scale),
    params.offset,
  );
  return { y: tf.mul(tf.relu(normalised), m4) as tf.Tensor4D, stats };
}

function checkArgs(
  u: tf.Tensor,
  params: MaskedResidualUnitParams,
  activeMask: tf.Tensor,
  moving: MaskedResidualUnitOptions['moving'],
): void {
  const op = 'maskedResidualUnit';
  if (!(u instanceof tf.Tensor) || u.rank !== 4 || u.dtype !== 'float32' || u.shape[3] === 0) {
    throw new Error(
      `${op}: u must be a float32 4-D tensor [batch, height, width, channels] with channels >= 1, got ` +
        `${u instanceof tf.Tensor ? `${u.dtype} [${u.shape}]` : typeof u}`,
    );
  }
  if (typeof params !== 'object' || params === null) {
    throw new Error(`${op}: params must be an object { conv1, conv2, bn1, bn2 }, got ${String(params)}`);
  }
  const [b, h, w, c] = u.shape;
  for (const name of ['conv1', 'conv2'] as const) {
    const f = params[name];
    if (
      !(f instanceof tf.Tensor) ||
      f.dtype !== 'float32' ||
      f.rank !== 4 ||
      f.shape[0] !== 3 ||
      f.shape[1] !== 3 ||
      f.shape[2] !== c ||
      f.shape[3] !== c
    ) {
      throw new Error(
        `${op}: params.${name} must be a float32 tensor of shape [3,3,${c},${c}], got ` +
          `${f instanceof tf.Tensor ? `${f.dtype} [${f.shape}]` : typeof f}`,
      );
    }
  }
  const checkVector = (t: unknown, name: string) => {
    if (!(t instanceof tf.Tensor) || t.rank !== 1 || t.shape[0] !== c || t.dtype !== 'float32') {
      throw new Error(
        `${op}: ${name} must be a float32 tensor of shape [${c}], got ` +
          `${t instanceof tf.Tensor ? `${t.dtype} [${t.shape}]` : typeof t}`,
      );
    }
  };
  for (const name of ['bn1', 'bn2'] as const) {
    for (const key of ['scale', 'offset'] as const) checkVector(params[name]?.[key], `params.${name}.${key}`);
    if (moving !== undefined) {
      for (const key of ['mean', 'variance'] as const)
        checkVector(moving[name]?.[key], `options.moving.${name}.${key}`);
    }
  }
  const ok =
    activeMask instanceof tf.Tensor &&
    activeMask.dtype === 'float32' &&
    activeMask.shape[0] === b &&
    activeMask.shape[1] === h &&
    activeMask.shape[2] === w &&
    (activeMask.rank === 3 || (activeMask.rank === 4 && activeMask.shape[3] === 1));
  if (!ok) {
    throw new Error(
      `${op}: activeMask must be float32 of shape [${b},${h},${w}] or [${b},${h},${w},1] (u's batch, height, ` +
        `width), got ${activeMask instanceof tf.Tensor ? `${activeMask.dtype} [${activeMask.shape}]` : typeof activeMask}`,
    );
  }
}

// The native masked batch norm's gradient w.r.t. x, scale and offset (its statistics outputs feed moving averages
// and carry no gradient; the set gets none).
tf.registerGradient({
  kernelName: PACT_MASKED_BATCH_NORM_RELU,
  inputsToSave: ['x', 'scale', 'mask'],
  outputsToSave: [true, true, true],
  gradFunc: (dys, saved, attrs) => {
    const dy = (dys as tf.Tensor[])[0];
    const [x, scale, mask, y, mean, variance] = saved;
    const [dx, dscale, doffset] = tf
      .engine()
      .runKernel(PACT_MASKED_BATCH_NORM_RELU_GRAD, { dy, x, mask, y, scale, mean, variance }, attrs) as tf.Tensor[];
    return { x: () => dx, scale: () => dscale, offset: () => doffset, mask: () => tf.zerosLike(mask) };
  },
});

// The gradient of evaluation's kernel (batch_norm_relu_inference.ts; y > 0 only at the set); the set gets none.
tf.registerGradient({
  kernelName: PACT_MASKED_BATCH_NORM_RELU_INFERENCE,
  inputsToSave: ['x', 'scale', 'mean', 'variance', 'mask'],
  outputsToSave: [true],
  gradFunc: (dy, saved, attrs) => {
    const [x, scale, mean, variance, mask, y] = saved;
    const { epsilon } = attrs as unknown as MaskedBatchNormReluAttrs;
    const grads = inferenceGradients(dy as tf.Tensor, x, y, scale, mean, variance, epsilon);
    return { ...grads, mask: () => tf.zerosLike(mask) };
  },
});

// The gradient of u + c·a: du = dy, dc = dy·a, da = sum over channels of dy·c (one native pass for both on
// pact-cpu).
tf.registerGradient({
  kernelName: PACT_SCALED_RESIDUAL_ADD,
  inputsToSave: ['c', 'a'],
  gradFunc: (dys, saved) => {
    const dy = dys as tf.Tensor;
    const [c, a] = saved;
    const [dc, da] =
      tf.getKernel(PACT_SCALED_RESIDUAL_ADD_GRAD, tf.getBackend()) !== undefined
        ? (tf.engine().runKernel(PACT_SCALED_RESIDUAL_ADD_GRAD, { dy, c, a }) as tf.Tensor[])
        : [tf.mul(dy, tf.expandDims(a, 3)), tf.sum(tf.mul(dy, c), 3)];
    return { u: () => tf.clone(dy), c: () => dc, a: () => da };
  },
});
