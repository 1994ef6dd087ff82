/**
 * pact-cuda's data-movement, comparison, one-hot, arg-reduction and pooling kernels on the device: Transpose,
 * Slice, Concat, Pack, Unpack and Tile are strided copies (native/cuda/layout.cuh); Equal ... LogicalOr give bool
 * tensors; ArgMax/ArgMin give int32; MaxPool/AvgPool and their gradients compute what tfjs-backend-cpu computes
 * (first maximum of a window, the average's gradient divided by the whole window). Any other dtype or
 * configuration returns null and runs on the host, counted.
 */
import * as tf from '@tensorflow/tfjs';

import { deviceKernel, PactCudaBackend } from './backend';

/** Element bytes of a dtype on the device (null: not stored there). */
function elementBytes(dtype: tf.DataType): 1 | 4 | null {
  if (dtype === 'float32' || dtype === 'int32') return 4;
  return dtype === 'bool' ? 1 : null;
}

/** The code of native/cuda/elementwise.cuh's CastType. */
export function typeCode(dtype: tf.DataType): number | null {
  const code = { float32: 0, int32: 1, bool: 2 }[dtype as string];
  return code ?? null;
}

function stridesOf(shape: number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let d = shape.length - 1; d >= 0; --d) {
    strides[d] = s;
    s *= shape[d];
  }
  return strides;
}

/** Copies x, read with `srcStrides` from `srcOffset` over `shape`, into `out` at `dstStrides` from `dstOffset`. */
function copyInto(
  backend: PactCudaBackend,
  x: tf.TensorInfo,
  out: tf.TensorInfo,
  shape: number[],
  srcStrides: number[],
  srcOffset: number,
  dstStrides: number[],
  dstOffset: number,
): void {
  backend.native.cudaStridedCopy(
    elementBytes(x.dtype) as 1 | 4,
    backend.bufferOf(x, 'x'),
    backend.bufferOf(out, 'out'),
    shape,
    srcStrides,
    srcOffset,
    dstStrides,
    dstOffset,
  );
}

/** x with its axes permuted (a new buffer); null for a dtype not on the device. */
export function transposeOnDevice(backend: PactCudaBackend, x: tf.TensorInfo, perm: number[]): tf.TensorInfo | null {
  if (elementBytes(x.dtype) === null || x.shape.length > 8) return null;
  const shape = perm.map((p) => x.shape[p]);
  const xStrides = stridesOf(x.shape);
  const out = backend.makeOutput(shape, x.dtype);
  copyInto(
    backend,
    x,
    out,
    shape,
    perm.map((p) => xStrides[p]),
    0,
    stridesOf(shape),
    0,
  );
  return out;
}

/** The block of x starting at `begin` of extent `size` (a new buffer). */
function sliceOnDevice(backend: PactCudaBackend, x: tf.TensorInfo, begin: number[], size: number[]): tf.TensorInfo {
  const xStrides = stridesOf(x.shape);
  const out = backend.makeOutput(size, x.dtype);
  const offset = begin.reduce((o, b, d) => o + b * xStrides[d], 0);
  copyInto(backend, x, out, size, xStrides, offset, stridesOf(size), 0);
  return out;
}

/** Inputs (same dtype, same rank) laid side by side along `axis`; null for a dtype not on the device. */
function concatOnDevice(backend: PactCudaBackend, xs: tf.TensorInfo[], axis: number): tf.TensorInfo | null {
  const dtype = xs[0].dtype;
  if (elementBytes(dtype) === null || xs.some((x) => x.dtype !== dtype) || xs[0].shape.length > 8) return null;
  const shape = tf.backend_util.computeOutShape(
    xs.map((x) => x.shape),
    axis,
  );
  const out = backend.makeOutput(shape, dtype);
  const outStrides = stridesOf(shape);
  let at = 0;
  for (const x of xs) {
    if (tf.util.sizeFromShape(x.shape) > 0) {
      copyInto(backend, x, out, x.shape, stridesOf(x.shape), 0, outStrides, at * outStrides[axis]);
    }
    at += x.shape[axis];
  }
  return out;
}

type KernelArgs = Parameters<tf.KernelFunc>[0];
const attrsOf = <T>(args: KernelArgs) => args.attrs as unknown as T;

const transpose = deviceKernel(tf.Transpose, (args) =>
  transposeOnDevice(args.backend, args.inputs.x as tf.TensorInfo, attrsOf<{ perm: number[] }>(args).perm),
);

const slice = deviceKernel(tf.Slice, (args) => {
  const x = args.inputs.x as tf.TensorInfo;
  const { begin, size } = attrsOf<{ begin: number | number[]; size: number | number[] }>(args);
  if (elementBytes(x.dtype) === null || x.shape.length > 8) return null;
  const [b, s] = tf.slice_util.parseSliceParams(x as tf.Tensor, begin, size);
  tf.slice_util.assertParamsValid(x as tf.Tensor, b, s);
  return sliceOnDevice(args.backend, x, b, s);
});

const concat = deviceKernel(tf.Concat, (args) => {
  const xs = args.inputs as unknown as tf.TensorInfo[];
  const axis = tf.util.parseAxisParam(attrsOf<{ axis: number }>(args).axis, xs[0].shape)[0];
  tf.backend_util.assertParamsConsistent(
    xs.map((x) => x.shape),
    axis,
  );
  return concatOnDevice(args.backend, xs, axis);
});

/** Pack: each input with a new axis of 1, concatenated along it. */
const pack = deviceKernel(tf.Pack, (args) => {
  const xs = args.inputs as unknown as tf.TensorInfo[];
  const rank = xs[0].shape.length + 1;
  const attr = attrsOf<{ axis: number }>(args).axis;
  const axis = attr < 0 ? attr + rank : attr;
  if (xs.some((x) => !tf.util.arraysEqual(x.shape, xs[0].shape))) {
    throw new Error(`Pack: all inputs must have the same shape, got ${xs.map((x) => `[${x.shape}]`).join(', ')}`);
  }
  const expanded = xs.map((x) => ({ ...x, shape: [...x.shape.slice(0, axis), 1, ...x.shape.slice(axis)] }));
  return concatOnDevice(args.backend, expanded, axis);
});

/** Unpack: one slice per index along the axis, without that axis. Returns several outputs. */
const unpack: tf.KernelConfig = (() => {
  const config = deviceKernel(tf.Unpack, () => null);
  const hostPath = config.kernelFunc;
  return {
    ...config,
    kernelFunc: (args) => {
      const backend = args.backend as PactCudaBackend;
      const x = args.inputs.value as tf.TensorInfo;
      if (elementBytes(x.dtype) === null || x.shape.length > 8) return hostPath(args);
      const attr = attrsOf<{ axis: number }>(args).axis;
      const axis = attr < 0 ? attr + x.shape.length : attr;
      const size = x.shape.map((d, i) => (i === axis ? 1 : d));
      const outShape = x.shape.filter((_, i) => i !== axis);
      return Array.from({ length: x.shape[axis] }, (_, i) => {
        const begin = x.shape.map((_, d) => (d === axis ? i : 0));
        return { ...sliceOnDevice(backend, x, begin, size), shape: outShape };
      });
    },
  };
})();

/** Tile as one copy of rank 2r: [reps_d, shape_d] pairs, the source stride 0 along each reps axis. */
const tile = deviceKernel(tf.Tile, (args) => {
  const x = args.inputs.x as tf.TensorInfo;
  const { reps } = attrsOf<{ reps: number[] }>(args);
  if (elementBytes(x.dtype) === null || x.shape.length > 4 || reps.length !== x.shape.length) return null;
  const shape = x.shape.map((d, i) => d * reps[i]);
  const out = args.backend.makeOutput(shape, x.dtype);
  const xStrides = stridesOf(x.shape);
  const outStrides = stridesOf(shape);
  copyInto(
    args.backend,
    x,
    out,
    x.shape.flatMap((d, i) => [reps[i], d]),
    xStrides.flatMap((s) => [0, s]),
    0,
    outStrides.flatMap((s, i) => [s * x.shape[i], s]),
    0,
  );
  return out;
});

/** Codes of native/cuda/elementwise.cuh's CompareOp, in its order. */
export const CUDA_COMPARE_OPS = [
  tf.Equal,
  tf.NotEqual,
  tf.Less,
  tf.LessEqual,
  tf.Greater,
  tf.GreaterEqual,
  tf.LogicalAnd,
  tf.LogicalOr,
] as const;

const compareKernels = CUDA_COMPARE_OPS.map((name, op) =>
  deviceKernel(name, ({ inputs, backend }) => {
    const { a, b } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const type = typeCode(a.dtype);
    if (type === null || a.dtype !== b.dtype || Math.max(a.shape.length, b.shape.length) > 6) return null;
    // tf.logicalAnd/Or take bools (tfjs-backend-cpu would store a || b of numbers into a byte).
    if ((name === tf.LogicalAnd || name === tf.LogicalOr) && a.dtype !== 'bool') return null;
    const out = backend.makeOutput(tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape), 'bool');
    backend.native.cudaCompare(
      op,
      type,
      backend.bufferOf(a, 'a'),
      a.shape,
      backend.bufferOf(b, 'b'),
      b.shape,
      backend.bufferOf(out, 'out'),
    );
    return out;
  }),
);

const argReduceKernels = ([tf.ArgMax, tf.ArgMin] as const).map((name, op) =>
  deviceKernel(name, ({ inputs, attrs, backend }) => {
    const x = inputs.x as tf.TensorInfo;
    const type = typeCode(x.dtype);
    if (type === null) return null;
    const axis = tf.util.parseAxisParam((attrs as unknown as { axis: number }).axis, x.shape)[0];
    const size = (dims: number[]) => dims.reduce((p, d) => p * d, 1);
    const reduced = x.shape[axis];
    if (reduced === 0) return null;
    const out = backend.makeOutput(
      x.shape.filter((_, i) => i !== axis),
      'int32',
    );
    backend.native.cudaArgReduce(
      op,
      type,
      backend.bufferOf(x, 'x'),
      size(x.shape.slice(0, axis)),
      reduced,
      size(x.shape.slice(axis + 1)),
      backend.bufferOf(out, 'out'),
    );
    return out;
  }),
);

const oneHot = deviceKernel(tf.OneHot, ({ inputs, attrs, backend }) => {
  const indices = inputs.indices as tf.TensorInfo;
  const { depth, onValue, offValue, dtype } = attrs as unknown as {
    depth: number;
    onValue: number;
    offValue: number;
    dtype: tf.DataType;
  };
  if (indices.dtype !== 'int32' || (dtype !== 'float32' && dtype !== 'int32')) return null;
  const out = backend.makeOutput([...indices.shape, depth], dtype);
  backend.native.cudaOneHot(
    backend.bufferOf(indices, 'indices'),
    tf.util.sizeFromShape(indices.shape),
    depth,
    onValue,
    offValue,
    dtype === 'float32',
    backend.bufferOf(out, 'out'),
  );
  return out;
});

type PoolAttrs = {
  filterSize: [number, number] | number;
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
};

/** The native pooling geometry of tfjs' Conv2DInfo (dilation 1). */
function poolGeometry(x: tf.TensorInfo, a: PoolAttrs): { info: tf.backend_util.Conv2DInfo; geometry: number[] } {
  const info = tf.backend_util.computePool2DInfo(
    x.shape as [number, number, number, number],
    a.filterSize,
    a.strides,
    1,
    a.pad,
    a.dimRoundingMode,
  );
  return {
    info,
    geometry: [
      info.batchSize,
      info.inHeight,
      info.inWidth,
      info.inChannels,
      info.outHeight,
      info.outWidth,
      info.filterHeight,
      info.filterWidth,
      info.strideHeight,
      info.strideWidth,
      info.padInfo.top,
      info.padInfo.left,
    ],
  };
}

const POOL_OPS = [
  [tf.MaxPool, tf.MaxPoolGrad],
  [tf.AvgPool, tf.AvgPoolGrad],
] as const;

const poolKernels = POOL_OPS.flatMap(([forward, gradient], op) => [
  deviceKernel(forward, ({ inputs, attrs, backend }) => {
    const x = inputs.x as tf.TensorInfo;
    if (x.dtype !== 'float32' || x.shape.length !== 4) return null;
    const { info, geometry } = poolGeometry(x, attrs as unknown as PoolAttrs);
    const y = backend.makeOutput(info.outShape, 'float32');
    backend.native.cudaPool2d(op, geometry, backend.bufferOf(x, 'x'), backend.bufferOf(y, 'y'));
    return y;
  }),
  deviceKernel(gradient, ({ inputs, attrs, backend }) => {
    const { dy, input } = inputs as { dy: tf.TensorInfo; input: tf.TensorInfo };
    if (input.dtype !== 'float32' || dy.dtype !== 'float32' || input.shape.length !== 4) return null;
    const { info, geometry } = poolGeometry(input, attrs as unknown as PoolAttrs);
    if (!tf.util.arraysEqual(dy.shape, info.outShape)) {
      throw new Error(`${gradient}: dy has shape [${dy.shape}], the pooling's output [${info.outShape}]`);
    }
    const dx = backend.makeOutput(input.shape, 'float32');
    backend.native.cudaPool2dGrad(
      op,
      geometry,
      backend.bufferOf(input, 'input'),
      backend.bufferOf(dy, 'dy'),
      backend.bufferOf(dx, 'dx'),
    );
    return dx;
  }),
]);

/** AddN of float32 tensors of one shape: a chain of in-place device additions. */
const addN = deviceKernel(tf.AddN, ({ inputs, backend }) => {
  const xs = inputs as unknown as tf.TensorInfo[];
  if (xs.some((x) => x.dtype !== 'float32' || !tf.util.arraysEqual(x.shape, xs[0].shape)) || xs[0].shape.length > 6) {
    return null;
  }
  const out = backend.makeOutput(xs[0].shape, 'float32');
  const id = backend.bufferOf(out, 'out');
  const shape = xs[0].shape;
  if (xs.length === 1) {
    copyInto(backend, xs[0], out, [tf.util.sizeFromShape(shape)], [1], 0, [1], 0);
    return out;
  }
  backend.native.cudaBinary(
    0,
    backend.bufferOf(xs[0], 'tensors[0]'),
    shape,
    backend.bufferOf(xs[1], 'tensors[1]'),
    shape,
    id,
  );
  for (let i = 2; i < xs.length; ++i) {
    backend.native.cudaBinary(0, id, shape, backend.bufferOf(xs[i], `tensors[${i}]`), shape, id);
  }
  return out;
});

export const pactCudaLayoutKernels: tf.KernelConfig[] = [
  transpose,
  slice,
  concat,
  pack,
  unpack,
  tile,
  ...compareKernels,
  ...argReduceKernels,
  oneHot,
  ...poolKernels,
  addN,
];
