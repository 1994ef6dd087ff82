/**
 * pact-cuda's device kernels: float32 element-wise ops (native/cuda/elementwise.cu) and the views that need no
 * kernel (Reshape, Identity share the buffer). A configuration they do not handle (another dtype) runs on the
 * host as every other kernel does, counted as a fallback.
 */
import * as tf from '@tensorflow/tfjs';

import { PACT_CUDA, PactCudaBackend } from './backend';

type KernelArgs = Parameters<tf.KernelFunc>[0];

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

/** A device kernel that returns null (with nothing allocated) when it does not handle the call: the host runs it. */
export function deviceKernel(
  kernelName: string,
  run: (args: KernelArgs & { backend: PactCudaBackend }) => tf.TensorInfo | null,
): tf.KernelConfig {
  let hostKernel: tf.KernelFunc | undefined;
  return {
    kernelName,
    backendName: PACT_CUDA,
    kernelFunc: (args) => {
      const backend = args.backend as PactCudaBackend;
      const out = run({ ...args, backend });
      if (out !== null) return out;
      hostKernel ??= (tf.getKernel(kernelName, 'cpu') as tf.KernelConfig).kernelFunc;
      return backend.runOnHost(kernelName, hostKernel, args);
    },
  };
}

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

const REDUCE_OPS = [tf.Sum, tf.Mean, tf.Max, tf.Min] as const;

/**
 * Sum, Mean, Max, Min over contiguous axes (the common cases: the last axes, the first ones as in batch-norm
 * statistics, a middle run), as a [outer, reduced, inner] reduction; other axis sets run on the host.
 */
const reduceKernels = REDUCE_OPS.map((name, op) =>
  deviceKernel(name, ({ inputs, attrs, backend }) => {
    const x = inputs.x as tf.TensorInfo;
    // Max names its axes `reductionIndices`, the others `axis`.
    const a = attrs as unknown as { axis?: number | number[]; reductionIndices?: number | number[]; keepDims: boolean };
    const keepDims = a.keepDims;
    if (x.dtype !== 'float32') return null;
    const axes = tf.util
      .parseAxisParam((a.axis ?? a.reductionIndices) as number | number[], x.shape)
      .sort((p, q) => p - q);
    if (axes.some((a, i) => i > 0 && a !== axes[i - 1] + 1)) return null;
    const size = (dims: number[]) => dims.reduce((p, d) => p * d, 1);
    const first = axes.length > 0 ? axes[0] : 0;
    const end = axes.length > 0 ? axes[axes.length - 1] + 1 : 0;
    const [outer, reduced, inner] = [
      size(x.shape.slice(0, first)),
      size(x.shape.slice(first, end)),
      size(x.shape.slice(end)),
    ];
    if (reduced === 0) return null;
    const outShape = keepDims
      ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d))
      : x.shape.filter((_, i) => !axes.includes(i));
    const out = backend.makeOutput(outShape, 'float32');
    backend.native.cudaReduce(op, backend.bufferOf(x, 'x'), outer, reduced, inner, backend.bufferOf(out, 'out'));
    return out;
  }),
);

export const pactCudaKernels: tf.KernelConfig[] = [
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
