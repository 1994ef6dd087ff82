/**
 * Elementwise kernels of pact-cpu (native/cpu/elementwise.cc): the binary ops with numpy/tfjs broadcasting, the
 * unary ops and AddN, all float32, multithreaded and vectorized; ZerosLike/OnesLike of float32 from the buffer pool.
 * Other dtypes (int32, bool, complex64) and ranks above 8 fall back to tfjs-backend-cpu (counted). The gradients
 * tfjs registers for these ops are compositions of the same kernels (Relu's is Multiply(dy, Step(x)); a broadcast
 * operand's is Sum then Reshape), so they run natively too.
 */
import * as tf from '@tensorflow/tfjs';

import { nativeKernel } from '../kernel_util';

/** The addon's largest rank (native/cpu/elementwise.h kMaxRank). */
const MAX_RANK = 8;

/** tfjs kernel name -> the addon's op name. */
const BINARY_OPS: ReadonlyArray<[string, string]> = [
  [tf.Add, 'add'],
  [tf.Sub, 'sub'],
  [tf.Multiply, 'mul'],
  [tf.RealDiv, 'div'],
  [tf.Maximum, 'maximum'],
  [tf.Minimum, 'minimum'],
  [tf.SquaredDifference, 'squaredDifference'],
  [tf.Pow, 'pow'],
];

type UnaryParams = (attrs: tf.NamedAttrMap) => [number, number];

const noParams: UnaryParams = () => [0, 0];
const alphaParam: UnaryParams = (attrs) => [attrs.alpha as number, 0];
const clipParams: UnaryParams = (attrs) => [attrs.clipValueMin as number, attrs.clipValueMax as number];

const UNARY_OPS: ReadonlyArray<[string, string, UnaryParams]> = [
  [tf.Relu, 'relu', noParams],
  [tf.Relu6, 'relu6', noParams],
  [tf.Neg, 'neg', noParams],
  [tf.Square, 'square', noParams],
  [tf.Sqrt, 'sqrt', noParams],
  [tf.Rsqrt, 'rsqrt', noParams],
  [tf.Exp, 'exp', noParams],
  [tf.Log, 'log', noParams],
  [tf.Sigmoid, 'sigmoid', noParams],
  [tf.Tanh, 'tanh', noParams],
  [tf.Abs, 'abs', noParams],
  [tf.Reciprocal, 'reciprocal', noParams],
  [tf.Step, 'step', alphaParam],
  [tf.LeakyRelu, 'leakyRelu', alphaParam],
  [tf.Elu, 'elu', noParams],
  [tf.ClipByValue, 'clipByValue', clipParams],
  [tf.Softplus, 'softplus', noParams],
];

function binaryConfig(kernelName: string, op: string): tf.KernelConfig {
  return nativeKernel(kernelName, ({ inputs, backend }) => {
    const { a, b } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    if (a.dtype !== 'float32' || b.dtype !== 'float32') return `dtypes ${a.dtype} and ${b.dtype} (native: float32)`;
    if (a.shape.length > MAX_RANK || b.shape.length > MAX_RANK) return `rank above ${MAX_RANK}`;
    const shape = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
    const out = backend.outputFloats(tf.util.sizeFromShape(shape));
    backend.native.binaryOp(op, backend.floats(a, 'a'), a.shape, backend.floats(b, 'b'), b.shape, out);
    return backend.floatOutput(out, shape);
  });
}

function unaryConfig(kernelName: string, op: string, params: UnaryParams): tf.KernelConfig {
  return nativeKernel(kernelName, ({ inputs, attrs, backend }) => {
    const { x } = inputs as { x: tf.TensorInfo };
    if (x.dtype !== 'float32') return `dtype ${x.dtype} (native: float32)`;
    const [p0, p1] = params(attrs ?? {});
    const values = backend.floats(x, 'x');
    const out = backend.outputFloats(values.length);
    backend.native.unaryOp(op, values, out, p0, p1);
    return backend.floatOutput(out, x.shape);
  });
}

const addNConfig = nativeKernel(tf.AddN, ({ inputs, backend }) => {
  const tensors = inputs as unknown as tf.TensorInfo[];
  if (tensors.some((t) => t.dtype !== 'float32')) return 'a tensor is not float32 (native: float32)';
  const out = backend.outputFloats(tf.util.sizeFromShape(tensors[0].shape));
  backend.native.addN(
    tensors.map((t, i) => backend.floats(t, `inputs[${i}]`)),
    out,
  );
  return backend.floatOutput(out, tensors[0].shape);
});

/** ZerosLike and OnesLike of float32 tensors from the buffer pool (tfjs' allocate a fresh array each). */
const likeConfigs = (
  [
    [tf.ZerosLike, 0],
    [tf.OnesLike, 1],
  ] as const
).map(([name, value]) =>
  nativeKernel(name, ({ inputs, backend }) => {
    const { x } = inputs as { x: tf.TensorInfo };
    if (x.dtype !== 'float32') return `dtype ${x.dtype} (native: float32)`;
    const n = tf.util.sizeFromShape(x.shape);
    const out = value === 0 ? backend.zeroedFloats(n) : backend.outputFloats(n).fill(value);
    return backend.floatOutput(out, x.shape);
  }),
);

export const elementwiseKernels: tf.KernelConfig[] = [
  ...likeConfigs,
  ...BINARY_OPS.map(([name, op]) => binaryConfig(name, op)),
  ...UNARY_OPS.map(([name, op, params]) => unaryConfig(name, op, params)),
  addNConfig,
];
