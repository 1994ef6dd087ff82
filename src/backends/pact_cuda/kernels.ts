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
] as const;

/** A device kernel that returns null (with nothing allocated) when it does not handle the call: the host runs it. */
function deviceKernel(
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
  deviceKernel(name, ({ inputs, backend }) => {
    const x = inputs.x as tf.TensorInfo;
    if (x.dtype !== 'float32') return null;
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

const identity: tf.KernelConfig = {
  kernelName: tf.Identity,
  backendName: PACT_CUDA,
  kernelFunc: ({ inputs, backend }) => {
    const x = inputs.x as tf.TensorInfo;
    (backend as PactCudaBackend).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  },
};

/** Cast to the tensor's own dtype shares the buffer (as tfjs-backend-cpu's does); a conversion runs on the host. */
const cast = deviceKernel(tf.Cast, ({ inputs, attrs, backend }) => {
  const x = inputs.x as tf.TensorInfo;
  if (x.dtype !== (attrs as unknown as { dtype: tf.DataType }).dtype) return null;
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
});

export const pactCudaKernels: tf.KernelConfig[] = [...unaryKernels, ...binaryKernels, reshape, identity, cast];
