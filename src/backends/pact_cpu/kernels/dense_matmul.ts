/**
 * BatchMatMul and _FusedMatMul on oneDNN (native/cpu/dense_matmul.h): [...batch, M, K] x [...batch, K, N] with
 * transposeA/transposeB and numpy broadcasting of the batch dimensions, expressed as strides (no copies).
 * _FusedMatMul fuses its bias (a vector along N, or a scalar) and its activation (prelu runs as pact-cpu's Prelu
 * kernel on the native result). Falls back to tfjs-backend-cpu (counted) for other dtypes, empty tensors, rank
 * above 12, other bias shapes, and everywhere when the addon was built without oneDNN.
 */
import * as tf from '@tensorflow/tfjs';

import { PactCpuBackend } from '../backend';
import { nativeKernel } from '../kernel_util';
import { applyPrelu, biasValues, denseNative, denseOperandProblem, firstProblem, planActivation } from './dense_native';

const MAX_RANK = 12;

type MatMulAttrs = tf.BatchMatMulAttrs & Partial<Pick<tf._FusedMatMulAttrs, 'activation' | 'leakyreluAlpha'>>;

function matMulOutShape(a: number[], b: number[], transposeA: boolean, transposeB: boolean): number[] | string {
  const m = transposeA ? a[a.length - 1] : a[a.length - 2];
  const k = transposeA ? a[a.length - 2] : a[a.length - 1];
  const kb = transposeB ? b[b.length - 1] : b[b.length - 2];
  const n = transposeB ? b[b.length - 2] : b[b.length - 1];
  if (k !== kb) return `inner dimensions differ: a [${a}], b [${b}]`;
  try {
    const batch = tf.broadcast_util.assertAndGetBroadcastShape(a.slice(0, -2), b.slice(0, -2));
    return [...batch, m, n];
  } catch {
    return `batch dimensions of a [${a}] and b [${b}] do not broadcast`;
  }
}

function batchMatMul(
  backend: PactCpuBackend,
  inputs: tf._FusedMatMulInputs,
  attrs: MatMulAttrs,
): tf.TensorInfo | string {
  const native = denseNative(backend);
  if (typeof native === 'string') return native;
  const { a, b, bias, preluActivationWeights } = inputs;
  const problem = firstProblem(denseOperandProblem(a, 'a'), denseOperandProblem(b, 'b'));
  if (problem !== '') return problem;
  if (Math.min(a.shape.length, b.shape.length) < 2 || Math.max(a.shape.length, b.shape.length) > MAX_RANK) {
    return `ranks ${a.shape.length} and ${b.shape.length} (native handles 2 to ${MAX_RANK})`;
  }
  const outShape = matMulOutShape(a.shape, b.shape, attrs.transposeA, attrs.transposeB);
  if (typeof outShape === 'string') return outShape;
  const plan = planActivation(attrs.activation);
  if (typeof plan === 'string') return plan;
  const biasArray = biasValues(backend, bias, outShape[outShape.length - 1], outShape.length);
  if (typeof biasArray === 'string') return biasArray;

  // An empty inner dimension gives zeros, which the native product may leave unwritten.
  const inner = attrs.transposeA ? a.shape[a.shape.length - 2] : a.shape[a.shape.length - 1];
  const size = tf.util.sizeFromShape(outShape);
  const values = inner === 0 ? backend.zeroedFloats(size) : backend.outputFloats(size);
  native.batchMatMul(
    a.shape,
    backend.floats(a, 'a'),
    b.shape,
    backend.floats(b, 'b'),
    attrs.transposeA,
    attrs.transposeB,
    biasArray,
    values,
    plan.native,
    attrs.leakyreluAlpha ?? 0.2,
  );
  const out = backend.floatOutput(values, outShape);
  return plan.prelu ? applyPrelu(backend, out, preluActivationWeights) : out;
}

export const denseMatMulKernels: tf.KernelConfig[] = [
  nativeKernel(tf.BatchMatMul, ({ inputs, backend, attrs }) =>
    batchMatMul(backend, inputs as tf._FusedMatMulInputs, attrs as unknown as tf.BatchMatMulAttrs),
  ),
  nativeKernel(tf._FusedMatMul, ({ inputs, backend, attrs }) =>
    batchMatMul(backend, inputs as tf._FusedMatMulInputs, attrs as unknown as tf._FusedMatMulAttrs),
  ),
];
