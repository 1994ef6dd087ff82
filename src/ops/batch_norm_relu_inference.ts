/**
 * relu(batchNorm(x)) with given statistics (evaluation's moving averages) over the last axis of x:
 * y = max(0, (x - mean) / sqrt(variance + epsilon) * scale + offset). On a backend that registers the
 * `PactBatchNormReluInference` kernel (pact-cpu) it is one pass over x instead of tfjs' FusedBatchNorm then Relu,
 * when x is float32 and mean, variance, offset and scale are float32 vectors of x's channel count; otherwise (other
 * backends, broadcast statistics) those two ops, which accept whatever tf.batchNorm does. Differentiable (w.r.t. x,
 * scale, offset, mean and variance), though evaluation needs no gradient; `inferenceGradients` is that gradient,
 * shared with the masked unit's evaluation kernel.
 */
import * as tf from '@tensorflow/tfjs';

export const PACT_BATCH_NORM_RELU_INFERENCE = 'PactBatchNormReluInference';

/** Attributes of the kernel. */
export interface BatchNormReluInferenceAttrs {
  epsilon: number;
}

export function batchNormReluInference(
  x: tf.Tensor4D,
  mean: tf.Tensor1D,
  variance: tf.Tensor1D,
  offset: tf.Tensor1D,
  scale: tf.Tensor1D,
  epsilon: number,
): tf.Tensor4D {
  const channels = x.shape[x.rank - 1];
  const perChannel = (t: tf.Tensor) => t.rank === 1 && t.shape[0] === channels && t.dtype === 'float32';
  const native =
    tf.getKernel(PACT_BATCH_NORM_RELU_INFERENCE, tf.getBackend()) !== undefined &&
    x.dtype === 'float32' &&
    [mean, variance, offset, scale].every(perChannel);
  if (!native) return tf.relu(tf.batchNorm4d(x, mean, variance, offset, scale, epsilon));
  const attrs: BatchNormReluInferenceAttrs = { epsilon };
  return tf
    .engine()
    .runKernel(
      PACT_BATCH_NORM_RELU_INFERENCE,
      { x, scale, offset, mean, variance },
      attrs as unknown as tf.NamedAttrMap,
    ) as tf.Tensor4D;
}

/**
 * The gradients of y = relu((x - mean) * r * scale + offset), r = 1 / sqrt(variance + epsilon), given dy and y:
 * with g = dy where y > 0, dx = g * scale * r, doffset = sum(g), dscale = sum(g * (x - mean)) * r,
 * dmean = -sum(g) * scale * r, dvariance = -sum(g * (x - mean)) * scale * r^3 / 2 (sums over all axes but the last).
 */
export function inferenceGradients(
  dy: tf.Tensor,
  x: tf.Tensor,
  y: tf.Tensor,
  scale: tf.Tensor,
  mean: tf.Tensor,
  variance: tf.Tensor,
  epsilon: number,
): Record<'x' | 'scale' | 'offset' | 'mean' | 'variance', () => tf.Tensor> {
  const axes = Array.from({ length: x.rank - 1 }, (_, i) => i);
  const r = tf.rsqrt(tf.add(variance, epsilon));
  const g = tf.mul(dy, tf.step(y));
  const centred = tf.sub(x, mean);
  const sumG = tf.sum(g, axes);
  const sumGc = tf.sum(tf.mul(g, centred), axes);
  return {
    x: () => tf.mul(g, tf.mul(scale, r)),
    offset: () => sumG,
    scale: () => tf.mul(sumGc, r),
    mean: () => tf.neg(tf.mul(sumG, tf.mul(scale, r))),
    variance: () => tf.mul(sumGc, tf.mul(tf.mul(scale, tf.pow(r, 3)), -0.5)),
  };
}

tf.registerGradient({
  kernelName: PACT_BATCH_NORM_RELU_INFERENCE,
  inputsToSave: ['x', 'scale', 'mean', 'variance'],
  outputsToSave: [true],
  gradFunc: (dy, saved, attrs) => {
    const [x, scale, mean, variance, y] = saved;
    const { epsilon } = attrs as unknown as BatchNormReluInferenceAttrs;
    return inferenceGradients(dy as tf.Tensor, x, y, scale, mean, variance, epsilon);
  },
});
