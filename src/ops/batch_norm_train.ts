/**
 * Training-mode batch normalisation of an NHWC (or any channels-last) tensor: the statistics are the mean and
 * the biased variance over every axis but the last (N*H*W values per channel), as in Ioffe & Szegedy 2015, eq. of
 * Algorithm 1, and as PyTorch and TensorFlow normalise in training.
 *
 * On a backend that registers the `PactBatchNormTrain` kernel (pact-cpu) the op runs it, and its gradient is the
 * `PactBatchNormTrainGrad` kernel (dx, dscale, doffset in two passes over the data); on any other backend it is the
 * composite below, built from tfjs ops (and the reference the tests compare the kernel with).
 *
 * `batchNormReluTrain` is the same with the ReLU that follows batch norm in a pre-activation residual unit fused
 * into the kernel: one pass over the activation fewer, forward and backward.
 */
import * as tf from '@tensorflow/tfjs';

export const PACT_BATCH_NORM_TRAIN = 'PactBatchNormTrain';
export const PACT_BATCH_NORM_TRAIN_GRAD = 'PactBatchNormTrainGrad';

/** Attributes of both kernels. */
export interface BatchNormTrainAttrs {
  epsilon: number;
  relu: boolean;
}

export interface BatchNormTrainResult {
  /** The normalised (and, for batchNormReluTrain, rectified) tensor, x's shape. */
  y: tf.Tensor;
  /** Per-channel batch mean, shape [C]. */
  mean: tf.Tensor1D;
  /** Per-channel biased batch variance (divided by N*H*W), shape [C]. */
  variance: tf.Tensor1D;
}

/** y = (x - mean) / sqrt(variance + epsilon) * scale + offset, with the batch's own statistics. */
export function batchNormTrain(
  x: tf.Tensor,
  scale: tf.Tensor1D,
  offset: tf.Tensor1D,
  epsilon = 1e-5,
): BatchNormTrainResult {
  return run('batchNormTrain', x, scale, offset, epsilon, false);
}

/** max(batchNormTrain(x, scale, offset, epsilon).y, 0), and the same statistics. */
export function batchNormReluTrain(
  x: tf.Tensor,
  scale: tf.Tensor1D,
  offset: tf.Tensor1D,
  epsilon = 1e-5,
): BatchNormTrainResult {
  return run('batchNormReluTrain', x, scale, offset, epsilon, true);
}

/** The tfjs-ops implementation (any backend): the path taken where the kernel is not registered. */
export function batchNormTrainComposite(
  x: tf.Tensor,
  scale: tf.Tensor1D,
  offset: tf.Tensor1D,
  epsilon: number,
  relu: boolean,
): BatchNormTrainResult {
  const [y, mean, variance] = tf.tidy(() => {
    const axes = x.shape.slice(0, -1).map((_, i) => i);
    const moments = tf.moments(x, axes);
    const normalised = tf.add(
      tf.mul(tf.mul(tf.sub(x, moments.mean), tf.rsqrt(tf.add(moments.variance, epsilon))), scale),
      offset,
    );
    return [relu ? tf.relu(normalised) : normalised, moments.mean, moments.variance];
  });
  return { y, mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D };
}

function run(
  op: string,
  x: tf.Tensor,
  scale: tf.Tensor1D,
  offset: tf.Tensor1D,
  epsilon: number,
  relu: boolean,
): BatchNormTrainResult {
  checkArgs(op, x, scale, offset, epsilon);
  if (tf.getKernel(PACT_BATCH_NORM_TRAIN, tf.getBackend()) === undefined) {
    return batchNormTrainComposite(x, scale, offset, epsilon, relu);
  }
  const attrs: BatchNormTrainAttrs = { epsilon, relu };
  const [y, mean, variance] = tf
    .engine()
    .runKernel(PACT_BATCH_NORM_TRAIN, { x, scale, offset }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
  return { y, mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D };
}

function checkArgs(op: string, x: tf.Tensor, scale: tf.Tensor, offset: tf.Tensor, epsilon: number): void {
  for (const [name, t] of [
    ['x', x],
    ['scale', scale],
    ['offset', offset],
  ] as const) {
    if (!(t instanceof tf.Tensor)) throw new Error(`${op}: ${name} must be a tf.Tensor, got ${typeof t}`);
    if (t.dtype !== 'float32') throw new Error(`${op}: ${name} must be float32, got ${t.dtype}`);
  }
  if (x.rank < 2) throw new Error(`${op}: x must have rank >= 2 (channels last), got shape [${x.shape}]`);
  const channels = x.shape[x.rank - 1];
  if (channels < 1 || x.size === 0) throw new Error(`${op}: x must not be empty, got shape [${x.shape}]`);
  for (const [name, t] of [
    ['scale', scale],
    ['offset', offset],
  ] as const) {
    if (t.rank !== 1 || t.shape[0] !== channels) {
      throw new Error(`${op}: ${name} must have shape [${channels}] (x's channels), got [${t.shape}]`);
    }
  }
  if (!(epsilon > 0) || !Number.isFinite(epsilon)) throw new Error(`${op}: epsilon must be positive, got ${epsilon}`);
}

// Gradient of the kernel with respect to all three inputs, from the gradients of all three outputs (the engine
// passes zeros for the outputs that did not reach the loss).
tf.registerGradient({
  kernelName: PACT_BATCH_NORM_TRAIN,
  inputsToSave: ['x', 'scale'],
  outputsToSave: [true, true, true],
  gradFunc: (dys, saved, attrs) => {
    const [dy, dmean, dvariance] = dys as tf.Tensor[];
    const [x, scale, y, mean, variance] = saved;
    const [dx, dscale, doffset] = tf
      .engine()
      .runKernel(
        PACT_BATCH_NORM_TRAIN_GRAD,
        { dy, dmean, dvariance, x, scale, mean, variance, y },
        attrs,
      ) as tf.Tensor[];
    return { x: () => dx, scale: () => dscale, offset: () => doffset };
  },
});
