/**
 * Reduction kernels of pact-cpu (native/cpu/reduce.cc): Sum, Mean, Max, Min, Prod over any axis list with
 * keepDims, and ArgMax (int32 indices), on float32 tensors without the transpose tfjs-backend-cpu does first.
 * Falls back to tfjs-backend-cpu (counted) for other dtypes, ranks above 8, repeated axes, and reductions over
 * an empty axis (tfjs' own results there: Max of nothing is NaN, Sum 0).
 */
import * as tf from '@tensorflow/tfjs';

import { nativeKernel } from '../kernel_util';

/** The addon's largest rank (native/binding/reduce.cc kMaxRank). */
const MAX_RANK = 8;

/** Why `axes` of `x` cannot be reduced natively, or '' when it can. */
function unsupported(x: tf.TensorInfo, axes: number[]): string {
  if (x.dtype !== 'float32') return `dtype ${x.dtype} (native: float32)`;
  if (x.shape.length > MAX_RANK) return `rank above ${MAX_RANK}`;
  if (new Set(axes).size !== axes.length) return `repeated axes ${axes}`;
  const outSize = tf.util.sizeFromShape(x.shape.filter((_, i) => !axes.includes(i)));
  if (outSize > 0 && axes.some((a) => x.shape[a] === 0)) return 'reduction over an empty axis';
  return '';
}

function reduceConfig(kernelName: string, op: string, axisAttr: 'axis' | 'reductionIndices'): tf.KernelConfig {
  return nativeKernel(kernelName, ({ inputs, attrs, backend }) => {
    const { x } = inputs as { x: tf.TensorInfo };
    const { [axisAttr]: axis, keepDims } = (attrs ?? {}) as Record<string, unknown>;
    const axes = tf.util.parseAxisParam(axis as number | number[], x.shape);
    const reason = unsupported(x, axes);
    if (reason !== '') return reason;
    const [outShape] = tf.backend_util.computeOutAndReduceShapes(x.shape, axes);
    const out = new Float32Array(tf.util.sizeFromShape(outShape));
    backend.native.reduce(op, backend.floats(x, 'x'), x.shape, axes, out);
    const shape = keepDims === true ? tf.backend_util.expandShapeToKeepDim(outShape, axes) : outShape;
    return backend.floatOutput(out, shape);
  });
}

// tfjs reduces the first axis of the list only.
const argMaxConfig = nativeKernel(tf.ArgMax, ({ inputs, attrs, backend }) => {
  const { x } = inputs as { x: tf.TensorInfo };
  if (x.shape.length === 0) return 'rank 0';
  const axis = tf.util.parseAxisParam((attrs ?? {}).axis as number | number[], x.shape)[0];
  const reason = unsupported(x, [axis]);
  if (reason !== '') return reason;
  const shape = x.shape.filter((_, i) => i !== axis);
  const out = new Int32Array(tf.util.sizeFromShape(shape));
  backend.native.argMax(backend.floats(x, 'x'), x.shape, axis, out);
  return backend.makeTensorInfo(shape, 'int32', out);
});

export const reduceKernels: tf.KernelConfig[] = [
  reduceConfig(tf.Sum, 'sum', 'axis'),
  reduceConfig(tf.Mean, 'mean', 'axis'),
  reduceConfig(tf.Max, 'max', 'reductionIndices'),
  reduceConfig(tf.Min, 'min', 'axis'),
  reduceConfig(tf.Prod, 'prod', 'axis'),
  argMaxConfig,
];
