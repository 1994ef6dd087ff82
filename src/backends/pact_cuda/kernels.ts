/**
 * pact-cuda's device kernels: float32 element-wise ops (native/cuda/elementwise.cu) and the views that need no
 * kernel (Reshape, Identity share the buffer). A configuration they do not handle (another dtype) runs on the
 * host as every other kernel does, counted as a fallback.
 */
import * as tf from '@tensorflow/tfjs';

import { deviceKernel, PACT_CUDA, PactCudaBackend } from './backend';
import { transposeOnDevice, typeCode } from './layout_kernels';

/** Codes of native/cuda/elementwise.cuh's UnaryOp, in its order. */
export const CUDA_UNARY_OPS = [
  tf.Relu,
  tf.Neg,
  tf.Exp,
  tf.Log,
  tf.Sqrt,
  tf.Rsqrt,
  tf.Sigmoid,
  tf.Tanh,
  tf.Abs,
  tf.Square,
  tf.Step,
  tf.Softplus,
] as const;

/** Codes of native/cuda/elementwise.cuh's BinaryOp, in its order. */
export const CUDA_BINARY_OPS = [
  tf.Add,
  tf.Sub,
  tf.Multiply,
  tf.RealDiv,
  tf.Maximum,
  tf.Minimum,
  tf.SquaredDifference,
  tf.Pow,
] as const;

const unaryKernels = CUDA_UNARY_OPS.map((name, op) =>
  deviceKernel(name, ({ inputs, attrs, backend }) => {
    const x = inputs.x as tf.TensorInfo;
    if (x.dtype !== 'float32') return null;
    // Step's device kernel is alpha = 0 (ReLU's gradient); another alpha runs on the host.
    if (name === tf.Step && ((attrs as { alpha?: number } | undefined)?.alpha ?? 0) !== 0) return null;
    const y = backend.makeOutput(x.shape, 'float32');
    backend.native.cudaUnary(op, backend.bufferOf(x, 'x'), backend.bufferOf(y, 'y'), tf.util.sizeFromShape(x.shape));
    return y;
  }),
);

const binaryKernels = CUDA_BINARY_OPS.map((name, op) =>
  deviceKernel(name, ({ inputs, backend }) => {
    const { a, b } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    if (a.dtype !== 'float32' || b.dtype !== 'float32' || Math.max(a.shape.length, b.shape.length) > 6) return null;
    const shape = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
    const out = backend.makeOutput(shape, 'float32');
    backend.native.cudaBinary(
      op,
      backend.bufferOf(a, 'a'),
      a.shape,
      backend.bufferOf(b, 'b'),
      b.shape,
      backend.bufferOf(out, 'out'),
    );
    return out;
  }),
);

/** The same buffer under another shape (tfjs' engine counts the reference). */
const reshape: tf.KernelConfig = {
  kernelName: tf.Reshape,
  backendName: PACT_CUDA,
  kernelFunc: ({ inputs, attrs, backend }) => {
    const x = inputs.x as tf.TensorInfo;
    const size = tf.util.sizeFromShape(x.shape);
    const shape = tf.util.inferFromImplicitShape((attrs as unknown as { shape: number[] }).shape, size);
    if (tf.util.sizeFromShape(shape) !== size) {
      throw new Error(`Reshape: cannot reshape [${x.shape}] (${size} elements) into [${shape}]`);
    }
    (backend as PactCudaBackend).incRef(x.dataId);
    return { dataId: x.dataId, shape, dtype: x.dtype };
  },
};

/** ExpandDims shares the buffer, as Reshape does. */
const expandDims: tf.KernelConfig = {
  kernelName: tf.ExpandDims,
  backendName: PACT_CUDA,
  kernelFunc: ({ inputs, attrs, backend }) => {
    const x = inputs.input as tf.TensorInfo;
    const rank = x.shape.length + 1;
    const dim = (attrs as unknown as { dim: number }).dim;
    const axis = dim < 0 ? dim + rank : dim;
    if (!(axis >= 0 && axis < rank)) throw new Error(`ExpandDims: dim ${dim} outside [-${rank}, ${rank - 1}]`);
    (backend as PactCudaBackend).incRef(x.dataId);
    return { dataId: x.dataId, shape: [...x.shape.slice(0, axis), 1, ...x.shape.slice(axis)], dtype: x.dtype };
  },
};

const identity: tf.KernelConfig = {
  kernelName: tf.Identity,
  backendName: PACT_CUDA,
  kernelFunc: ({ inputs, backend }) => {
    const x = inputs.x as tf.TensorInfo;
    (backend as PactCudaBackend).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  },
};

const CAST_CODES: Partial<Record<tf.DataType, number>> = { float32: 0, int32: 1, bool: 2 };

/** Cast: to the tensor's own dtype it shares the buffer (as tfjs-backend-cpu's does); float32/int32/bool convert. */
const cast = deviceKernel(tf.Cast, ({ inputs, attrs, backend }) => {
  const x = inputs.x as tf.TensorInfo;
  const dtype = (attrs as unknown as { dtype: tf.DataType }).dtype;
  if (x.dtype === dtype) {
    backend.incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype };
  }
  const [from, to] = [CAST_CODES[x.dtype], CAST_CODES[dtype]];
  if (from === undefined || to === undefined) return null;
  const y = backend.makeOutput(x.shape, dtype);
  backend.native.cudaCast(backend.bufferOf(x, 'x'), from, backend.bufferOf(y, 'y'), to, tf.util.sizeFromShape(x.shape));
  return y;
});

const fill = deviceKernel(tf.Fill, ({ attrs, backend }) => {
  const { shape, value, dtype } = attrs as unknown as { shape: number[]; value: number | string; dtype: tf.DataType };
  if ((dtype ?? 'float32') !== 'float32' || typeof value !== 'number') return null;
  const y = backend.makeOutput(shape, 'float32');
  backend.native.cudaFill(backend.bufferOf(y, 'y'), value, tf.util.sizeFromShape(shape));
  return y;
});

/** ZerosLike and OnesLike of float32 tensors. */
const likeKernels = (
  [
    [tf.ZerosLike, 0],
    [tf.OnesLike, 1],
  ] as const
).map(([name, value]) =>
  deviceKernel(name, ({ inputs, backend }) => {
    const x = inputs.x as tf.TensorInfo;
    if (x.dtype !== 'float32') return null;
    const y = backend.makeOutput(x.shape, 'float32');
    backend.native.cudaFill(backend.bufferOf(y, 'y'), value, tf.util.sizeFromShape(x.shape));
    return y;
  }),
);

/**
 * The product of BatchMatMul (and _FusedMatMul's, then its bias and a linear or ReLU activation on the device):
 * rank 2 or 3, each batch the other's or 1. Anything else runs on the host.
 */
function matMulOnDevice(
  backend: PactCudaBackend,
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
): tf.TensorInfo | null {
  const rank = a.shape.length;
  if (a.dtype !== 'float32' || b.dtype !== 'float32' || rank !== b.shape.length || rank < 2 || rank > 3) return null;
  const [batchA, batchB] = rank === 3 ? [a.shape[0], b.shape[0]] : [1, 1];
  const batch = Math.max(batchA, batchB);
  if ((batchA !== batch && batchA !== 1) || (batchB !== batch && batchB !== 1)) return null;
  const [ar, ac] = a.shape.slice(-2);
  const [br, bc] = b.shape.slice(-2);
  const [M, K] = transposeA ? [ac, ar] : [ar, ac];
  const [K2, N] = transposeB ? [bc, br] : [br, bc];
  if (K !== K2) throw new Error(`MatMul: inner dimensions ${K} and ${K2} differ ([${a.shape}] x [${b.shape}])`);
  // The device kernel's grid: a batch per grid z (at most 65535) and 16 rows per grid y (at most 65535 of them).
  if (batch > 65535 || Math.ceil(M / 16) > 65535) return null;
  const c = backend.makeOutput(rank === 3 ? [batch, M, N] : [M, N], 'float32');
  backend.native.cudaBatchMatMul(
    backend.bufferOf(a, 'a'),
    backend.bufferOf(b, 'b'),
    backend.bufferOf(c, 'c'),
    batch,
    batchA,
    batchB,
    M,
    N,
    K,
    transposeA,
    transposeB,
  );
  return c;
}

type MatMulAttrs = { transposeA: boolean; transposeB: boolean; activation?: string };

const batchMatMul = deviceKernel(tf.BatchMatMul, ({ inputs, attrs, backend }) => {
  const { a, b } = inputs as Record<string, tf.TensorInfo>;
  const { transposeA, transposeB } = attrs as unknown as MatMulAttrs;
  return matMulOnDevice(backend, a, b, transposeA, transposeB);
});

const fusedMatMul = deviceKernel(tf._FusedMatMul, ({ inputs, attrs, backend }) => {
  const { a, b, bias, preluActivationWeights } = inputs as Record<string, tf.TensorInfo | undefined>;
  const { transposeA, transposeB, activation = 'linear' } = attrs as unknown as MatMulAttrs;
  if (preluActivationWeights != null || (activation !== 'linear' && activation !== 'relu')) return null;
  if (bias != null && (bias.dtype !== 'float32' || bias.shape.length > 6)) return null;
  const c = matMulOnDevice(backend, a as tf.TensorInfo, b as tf.TensorInfo, transposeA, transposeB);
  if (c === null) return null;
  const id = backend.bufferOf(c, 'c');
  if (bias != null) backend.native.cudaBinary(0, id, c.shape, backend.bufferOf(bias, 'bias'), bias.shape, id);
  if (activation === 'relu') backend.native.cudaUnary(0, id, id, tf.util.sizeFromShape(c.shape));
  return c;
});

/** Reductions and their codes in native/cuda/elementwise.cuh's ReduceOp; Any and All are max and min of bools. */
const REDUCE_OPS = [
  [tf.Sum, 0],
  [tf.Mean, 1],
  [tf.Max, 2],
  [tf.Min, 3],
  [tf.Any, 2],
  [tf.All, 3],
] as const;

/** The dtypes each reduction takes on the device (Sum of bool counts, as int32, after a cast). */
const REDUCE_DTYPES: Record<string, readonly tf.DataType[]> = {
  [tf.Sum]: ['float32', 'int32', 'bool'],
  [tf.Mean]: ['float32'],
  [tf.Max]: ['float32', 'int32'],
  [tf.Min]: ['float32', 'int32'],
  [tf.Any]: ['bool'],
  [tf.All]: ['bool'],
};

/**
 * Reductions as a [outer, reduced, inner] pass: over contiguous axes directly, over any other axis set after a
 * device transpose that moves the reduced axes last.
 */
const reduceKernels = REDUCE_OPS.map(([name, op]) =>
  deviceKernel(name, ({ inputs, attrs, backend }) => {
    const input = inputs.x as tf.TensorInfo;
    // Max names its axes `reductionIndices`, the others `axis`.
    const a = attrs as unknown as { axis?: number | number[]; reductionIndices?: number | number[]; keepDims: boolean };
    if (!REDUCE_DTYPES[name].includes(input.dtype) || input.shape.length > 8) return null;
    const axes = tf.util
      .parseAxisParam((a.axis ?? a.reductionIndices) as number | number[], input.shape)
      .sort((p, q) => p - q);
    const size = (dims: number[]) => dims.reduce((p, d) => p * d, 1);
    if (size(axes.map((i) => input.shape[i])) === 0) return null;
    const outShape = a.keepDims
      ? input.shape.map((d, i) => (axes.includes(i) ? 1 : d))
      : input.shape.filter((_, i) => !axes.includes(i));
    const temporaries: tf.TensorInfo[] = [];
    try {
      let x = input;
      if (name === tf.Sum && x.dtype === 'bool') {
        x = backend.makeOutput(x.shape, 'int32');
        temporaries.push(x);
        backend.native.cudaCast(backend.bufferOf(input, 'x'), 2, backend.bufferOf(x, 'x'), 1, size(x.shape));
      }
      let [first, end] = axes.length > 0 ? [axes[0], axes[axes.length - 1] + 1] : [0, 0];
      if (axes.some((v, i) => i > 0 && v !== axes[i - 1] + 1)) {
        const kept = x.shape.map((_, i) => i).filter((i) => !axes.includes(i));
        x = transposeOnDevice(backend, x, [...kept, ...axes]) as tf.TensorInfo;
        temporaries.push(x);
        [first, end] = [kept.length, x.shape.length];
      }
      const out = backend.makeOutput(outShape, x.dtype);
      backend.native.cudaReduce(
        op,
        typeCode(x.dtype) as number,
        backend.bufferOf(x, 'x'),
        size(x.shape.slice(0, first)),
        size(x.shape.slice(first, end)),
        size(x.shape.slice(end)),
        backend.bufferOf(out, 'out'),
      );
      return out;
    } finally {
      temporaries.forEach((t) => backend.disposeData(t.dataId, true));
    }
  }),
);

/**
 * FusedBatchNorm (inference: given statistics) as device element-wise passes: factor = scale / sqrt(variance + ε)
 * on the [C] vectors, then y = (x − mean) · factor + offset with broadcasting. Statistics that do not broadcast
 * against x (tfjs-backend-cpu cycles through them) run on the host.
 */
const fusedBatchNorm = deviceKernel(tf.FusedBatchNorm, ({ inputs, attrs, backend }) => {
  const { x, mean, variance, offset, scale } = inputs as Record<string, tf.TensorInfo | undefined>;
  const epsilon = (attrs as unknown as { varianceEpsilon?: number }).varianceEpsilon ?? 0.001;
  const operands = [x, mean, variance, offset, scale].filter((t): t is tf.TensorInfo => t != null);
  if (operands.some((t) => t.dtype !== 'float32' || t.shape.length > 6)) return null;
  const xs = (x as tf.TensorInfo).shape;
  const broadcasts = (t: tf.TensorInfo) => {
    try {
      return tf.util.arraysEqual(tf.backend_util.assertAndGetBroadcastShape(xs, t.shape), xs);
    } catch {
      return false;
    }
  };
  if (!operands.every(broadcasts)) return null;
  const [m, v] = [mean as tf.TensorInfo, variance as tf.TensorInfo];
  const id = (t: tf.TensorInfo, name: string) => backend.bufferOf(t, name);
  const temporaries: tf.TensorInfo[] = [];
  const temp = (shape: number[]) => {
    const t = backend.makeOutput(shape, 'float32');
    temporaries.push(t);
    return t;
  };
  try {
    const eps = temp([]);
    backend.native.cudaFill(id(eps, 'eps'), epsilon, 1);
    const factor = temp(v.shape);
    backend.native.cudaBinary(0, id(v, 'variance'), v.shape, id(eps, 'eps'), [], id(factor, 'factor'));
    backend.native.cudaUnary(5, id(factor, 'factor'), id(factor, 'factor'), tf.util.sizeFromShape(v.shape));
    let f = factor;
    if (scale != null) {
      f = temp(tf.backend_util.assertAndGetBroadcastShape(v.shape, scale.shape));
      backend.native.cudaBinary(2, id(factor, 'factor'), v.shape, id(scale, 'scale'), scale.shape, id(f, 'factor'));
    }
    const y = backend.makeOutput(xs, 'float32');
    const yId = id(y, 'y');
    backend.native.cudaBinary(1, id(x as tf.TensorInfo, 'x'), xs, id(m, 'mean'), m.shape, yId);
    backend.native.cudaBinary(2, yId, xs, id(f, 'factor'), f.shape, yId);
    if (offset != null) backend.native.cudaBinary(0, yId, xs, id(offset, 'offset'), offset.shape, yId);
    return y;
  } finally {
    temporaries.forEach((t) => backend.disposeData(t.dataId, true));
  }
});

export const pactCudaKernels: tf.KernelConfig[] = [
  fusedBatchNorm,
  ...unaryKernels,
  ...binaryKernels,
  ...reduceKernels,
  ...likeKernels,
  batchMatMul,
  fusedMatMul,
  reshape,
  expandDims,
  identity,
  cast,
  fill,
];
