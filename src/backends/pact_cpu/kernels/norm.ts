/**
 * Batch-norm kernels of pact-cpu (native/cpu/batch_norm.cc): training-mode batch norm (optionally fused with the
 * ReLU after it) and its gradient, which are pact-cpu's own kernels (src/ops/batch_norm_train.ts), and tfjs'
 * inference `FusedBatchNorm`, which falls back to tfjs-backend-cpu when a statistic is neither per-channel nor a
 * scalar (the JS kernel cycles any length) or a tensor is not float32. (Evaluation's fused batch norm + ReLU is in
 * masked.ts, beside its masked form.)
 */
import * as tf from '@tensorflow/tfjs';

import { BatchNormTrainAttrs, PACT_BATCH_NORM_TRAIN, PACT_BATCH_NORM_TRAIN_GRAD } from '../../../ops/batch_norm_train';
import { nativeKernel, rowsAndChannels } from '../kernel_util';

/** NHWC as a [rows, channels] matrix. */
// pact-cpu's own kernels exist on no other backend, so they never return a fallback reason: the op checked the
// arguments, and the addon re-checks every length and throws.
const batchNormTrainConfig = nativeKernel(PACT_BATCH_NORM_TRAIN, ({ inputs, attrs, backend }) => {
  const { x, scale, offset } = inputs as { x: tf.TensorInfo; scale: tf.TensorInfo; offset: tf.TensorInfo };
  const { epsilon, relu } = attrs as unknown as BatchNormTrainAttrs;
  const { rows, channels } = rowsAndChannels(x);
  const y = backend.outputFloats(rows * channels);
  const mean = new Float32Array(channels);
  const variance = new Float32Array(channels);
  backend.native.batchNormTrain(
    backend.floats(x, 'x'),
    backend.floats(scale, 'scale'),
    backend.floats(offset, 'offset'),
    rows,
    channels,
    epsilon,
    relu,
    y,
    mean,
    variance,
  );
  return [
    backend.floatOutput(y, x.shape),
    backend.floatOutput(mean, [channels]),
    backend.floatOutput(variance, [channels]),
  ];
});

const batchNormTrainGradConfig = nativeKernel(PACT_BATCH_NORM_TRAIN_GRAD, ({ inputs, attrs, backend }) => {
  const { dy, dmean, dvariance, x, scale, mean, variance, y } = inputs as Record<string, tf.TensorInfo>;
  const { epsilon, relu } = attrs as unknown as BatchNormTrainAttrs;
  const { rows, channels } = rowsAndChannels(x);
  const dx = backend.outputFloats(rows * channels);
  const dscale = new Float32Array(channels);
  const doffset = new Float32Array(channels);
  backend.native.batchNormTrainGrad(
    backend.floats(dy, 'dy'),
    backend.floats(dmean, 'dmean'),
    backend.floats(dvariance, 'dvariance'),
    backend.floats(x, 'x'),
    backend.floats(scale, 'scale'),
    backend.floats(mean, 'mean'),
    backend.floats(variance, 'variance'),
    relu ? backend.floats(y, 'y') : null,
    rows,
    channels,
    epsilon,
    relu,
    dx,
    dscale,
    doffset,
  );
  return [
    backend.floatOutput(dx, x.shape),
    backend.floatOutput(dscale, [channels]),
    backend.floatOutput(doffset, [channels]),
  ];
});

const fusedBatchNormConfig = nativeKernel(tf.FusedBatchNorm, ({ inputs, attrs, backend }) => {
  const { x, mean, variance, scale, offset } = inputs as Record<string, tf.TensorInfo | undefined>;
  if (x === undefined || mean === undefined || variance === undefined) return 'x, mean or variance missing';
  const { rows, channels } = x.shape.length === 0 ? { rows: 1, channels: 1 } : rowsAndChannels(x);
  if (channels === 0) return 'x has no channels';
  const params = [x, mean, variance, scale, offset].filter((t): t is tf.TensorInfo => t !== undefined);
  if (params.some((t) => t.dtype !== 'float32')) return 'a tensor is not float32';
  const perChannel = (t: tf.TensorInfo | undefined) => {
    const size = t === undefined ? 1 : tf.util.sizeFromShape(t.shape);
    return size === channels || size === 1;
  };
  if (![mean, variance, scale, offset].every(perChannel)) return 'a statistic is neither per-channel nor a scalar';
  const { varianceEpsilon } = attrs as unknown as tf.FusedBatchNormAttrs;
  const y = backend.outputFloats(rows * channels);
  backend.native.batchNormInference(
    backend.floats(x, 'x'),
    rows,
    channels,
    backend.floats(mean, 'mean'),
    backend.floats(variance, 'variance'),
    scale === undefined ? null : backend.floats(scale, 'scale'),
    offset === undefined ? null : backend.floats(offset, 'offset'),
    varianceEpsilon ?? 0.001,
    y,
  );
  return backend.floatOutput(y, x.shape);
});

export const normKernels: tf.KernelConfig[] = [batchNormTrainConfig, batchNormTrainGradConfig, fusedBatchNormConfig];
