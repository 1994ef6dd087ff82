/**
 * What the dense kernels (dense_conv.ts, dense_matmul.ts) share: the addon's oneDNN functions, or the reason they
 * are missing, and the fused epilogue (bias + activation) in the form the native functions take.
 */
import * as tf from '@tensorflow/tfjs';

import type { DenseActivation, DenseAddon } from '../../../native/binding';
import { PACT_CPU, PactCpuBackend } from '../backend';

const NO_DNNL_REASON = 'the native addon was built without oneDNN';
let warnedNoDnnl = false;

/** The oneDNN functions of the addon, or the fallback reason (with one console warning per process). */
export function denseNative(backend: PactCpuBackend): Required<DenseAddon> | string {
  const native = backend.native;
  if (
    native.conv2dForward !== undefined &&
    native.conv2dBackpropInput !== undefined &&
    native.conv2dBackpropFilter !== undefined &&
    native.batchMatMul !== undefined
  ) {
    return native as Required<DenseAddon>;
  }
  if (!warnedNoDnnl) {
    warnedNoDnnl = true;
    console.warn(
      `tfjs-pact: ${NO_DNNL_REASON}, so convolutions and matrix products run on tfjs' slow JS kernels. ` +
        'Install oneDNN (Debian/Ubuntu: apt-get install libdnnl-dev) and rebuild the addon (npm rebuild tfjs-pact).',
    );
  }
  return NO_DNNL_REASON;
}

/** A float32 tensor with no zero-size dimension, or why not. */
export function denseOperandProblem(t: tf.TensorInfo, name: string): string {
  if (t.dtype !== 'float32') return `${name} is ${t.dtype}, not float32`;
  if (t.shape.some((d) => d === 0)) return `${name} is empty`;
  return '';
}

/** The first non-empty problem of several checks, or ''. */
export function firstProblem(...problems: string[]): string {
  return problems.find((p) => p !== '') ?? '';
}

/** The fused activation as the native functions take it: oneDNN post-op, prelu (applied after), or unsupported. */
export type FusedActivationPlan = { native: DenseActivation; prelu: boolean } | string;

export function planActivation(activation: tf.fused.Activation | undefined): FusedActivationPlan {
  switch (activation ?? 'linear') {
    case 'linear':
    case 'relu':
    case 'relu6':
    case 'leakyrelu':
    case 'elu':
    case 'sigmoid':
      return { native: (activation ?? 'linear') as DenseActivation, prelu: false };
    case 'prelu':
      return { native: 'linear', prelu: true };
    default:
      return `activation ${activation} is not fused natively`;
  }
}

/**
 * The bias as `channels` values added along the last axis, or why it cannot be: it must broadcast to the output
 * without changing its shape, so a scalar or a tensor whose only non-1 dimension is the last, of size `channels`.
 */
export function biasValues(
  backend: PactCpuBackend,
  bias: tf.TensorInfo | undefined,
  channels: number,
  outRank: number,
): Float32Array | null | string {
  if (bias === undefined) return null;
  const problem = denseOperandProblem(bias, 'bias');
  if (problem !== '') return problem;
  if (bias.shape.length > outRank) return `bias of shape [${bias.shape}] has a higher rank than the output`;
  const size = tf.util.sizeFromShape(bias.shape);
  const values = backend.floats(bias, 'bias');
  if (size === 1) return new Float32Array(channels).fill(values[0]);
  const last = bias.shape[bias.shape.length - 1];
  if (last !== channels || size !== channels) {
    return `bias of shape [${bias.shape}] is not a vector along the output's last axis (${channels})`;
  }
  return values;
}

/** Runs `pact-cpu`'s Prelu kernel on a native result, and disposes that result. */
export function applyPrelu(backend: PactCpuBackend, x: tf.TensorInfo, alpha: tf.TensorInfo | undefined): tf.TensorInfo {
  if (alpha === undefined) throw new Error('activation prelu needs preluActivationWeights');
  const prelu = tf.getKernel(tf.Prelu, PACT_CPU);
  if (prelu === undefined) throw new Error(`${PACT_CPU} has no Prelu kernel`);
  const out = prelu.kernelFunc({ inputs: { x, alpha }, backend, attrs: {} }) as tf.TensorInfo;
  backend.disposeIntermediateTensorInfo(x);
  return out;
}
