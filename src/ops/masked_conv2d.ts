/**
 * Masked (sparse) 2-D convolution, PSACT's residual-unit convolution (PACT.md, "PSACT": `F(u) = u + f(u)·a`, where
 * `a = 0` the unit's value need not be computed): `conv2d(x, filter)` at the output positions where `mask > 0`,
 * exactly 0 elsewhere. Its gradients with respect to `x` and `filter` come only from the active positions (they
 * equal the gradients of `conv2d(x, filter) * [mask > 0]`); the mask gets none.
 *
 * On a backend that registers the `PactMaskedConv2D` kernel (pact-cpu: native/cpu/masked_conv2d.cc, cost
 * proportional to the active count) the op runs it, with the `PactMaskedConv2DBackpropInput` and
 * `PactMaskedConv2DBackpropFilter` kernels as its gradient; on any other backend it is the composite below (a dense
 * convolution times the mask), which is also the tests' reference.
 */
import * as tf from '@tensorflow/tfjs';

export const PACT_MASKED_CONV2D = 'PactMaskedConv2D';
export const PACT_MASKED_CONV2D_BACKPROP_INPUT = 'PactMaskedConv2DBackpropInput';
export const PACT_MASKED_CONV2D_BACKPROP_FILTER = 'PactMaskedConv2DBackpropFilter';

export type MaskedConvPad = 'same' | 'valid' | number;

/** Attributes of the three kernels (the backprop kernels also take the shape of the tensor they produce). */
export interface MaskedConv2DAttrs {
  strides: [number, number];
  pad: MaskedConvPad;
}
export interface MaskedConv2DBackpropInputAttrs extends MaskedConv2DAttrs {
  inputShape: [number, number, number, number];
}
export interface MaskedConv2DBackpropFilterAttrs extends MaskedConv2DAttrs {
  filterShape: [number, number, number, number];
}

/**
 * The pad as tfjs' convolutions take it: a number becomes explicit padding of that many rows and columns on every
 * side (tfjs' own numeric pad sizes both axes from the filter's height and the row stride, wrong for a non-square
 * filter or strides).
 */
export function tfPad(pad: MaskedConvPad): 'same' | 'valid' | tf.backend_util.ExplicitPadding {
  return typeof pad === 'number'
    ? [
        [0, 0],
        [pad, pad],
        [pad, pad],
        [0, 0],
      ]
    : pad;
}

/** The convolution's geometry (output size and explicit pads), as tfjs' conv2d computes it. */
export function maskedConvInfo(
  xShape: number[],
  filterShape: number[],
  strides: [number, number],
  pad: MaskedConvPad,
): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    strides,
    1,
    tfPad(pad),
  );
}

/**
 * conv2d(x, filter, strides, pad) where mask > 0, 0 elsewhere.
 * @param x NHWC input [batch, height, width, inChannels], float32.
 * @param filter HWIO [kH, kW, inChannels, outChannels], float32.
 * @param mask the active positions of the output, [batch, outHeight, outWidth] or [batch, outHeight, outWidth, 1];
 *   a position is active where its value is > 0 (the values themselves do not scale the output).
 */
function maskedConv2d_(
  x: tf.Tensor4D,
  filter: tf.Tensor4D,
  mask: tf.Tensor,
  strides: number | [number, number] = 1,
  pad: MaskedConvPad = 'same',
): tf.Tensor4D {
  const attrs: MaskedConv2DAttrs = { strides: stridePair(strides), pad };
  const mask3 = checkArgs(x, filter, mask, attrs);
  if (tf.getKernel(PACT_MASKED_CONV2D, tf.getBackend()) === undefined) {
    return maskedConv2dComposite(x, filter, mask3, attrs.strides, pad);
  }
  return tf.engine().runKernel(PACT_MASKED_CONV2D, { x, filter, mask: mask3 }, toAttrMap(attrs)) as tf.Tensor4D;
}

/**
 * conv2d(x, filter, strides, pad) where mask > 0, 0 elsewhere (arguments as documented at maskedConv2d_); a tfjs
 * op, so its intermediate tensors (a reshaped mask) are disposed with the op's scope.
 */
export const maskedConv2d = tf.op({ maskedConv2d_ });

/**
 * [mask > 0] as float32 (tfjs' Step: a native kernel on pact-cpu and pact-cuda, where Greater + Cast are not; a NaN
 * stays NaN, where halting_util's stepMask gives 0), with no gradient path to `mask`.
 */
export function binaryMask(mask: tf.Tensor): tf.Tensor {
  const cut = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => ({
    value: tf.step(tf.cast(args[0] as tf.Tensor, 'float32')),
    gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
  }));
  return cut(mask);
}

/**
 * The reference implementation on any backend: dense conv2d where mask > 0 (selected, so that a NaN or an infinity
 * at an inactive output gives 0, as the native kernels do), with the masked gradients.
 */
export function maskedConv2dComposite(
  x: tf.Tensor4D,
  filter: tf.Tensor4D,
  mask: tf.Tensor3D,
  strides: [number, number],
  pad: MaskedConvPad,
): tf.Tensor4D {
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [xs, fs, ms] = args as tf.Tensor[];
    const save = args[3] as tf.GradSaveFunc;
    const conv = tf.conv2d(xs as tf.Tensor4D, fs as tf.Tensor4D, strides, tfPad(pad));
    const active = tf.broadcastTo(tf.expandDims(tf.greater(ms, 0), 3), conv.shape);
    save([xs, fs, active]);
    const value = tf.where(active, conv, tf.zerosLike(conv));
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sf, sm] = saved;
        const dyMasked = tf.where(sm, dy, tf.zerosLike(dy)) as tf.Tensor4D;
        const dx = tf.conv2dTranspose(
          dyMasked,
          sf as tf.Tensor4D,
          sx.shape as [number, number, number, number],
          strides,
          tfPad(pad),
        );
        const dfilter = tf.engine().runKernel('Conv2DBackpropFilter', { x: sx, dy: dyMasked }, {
          strides,
          pad: tfPad(pad),
          dataFormat: 'NHWC',
          dilations: 1,
          filterShape: sf.shape,
        } as unknown as tf.NamedAttrMap) as tf.Tensor;
        return [dx, dfilter, tf.zerosLike(ms)];
      },
    };
  });
  return f(x, filter, mask) as tf.Tensor4D;
}

function stridePair(strides: number | [number, number]): [number, number] {
  return typeof strides === 'number' ? [strides, strides] : [strides[0], strides[1]];
}

function toAttrMap(attrs: object): tf.NamedAttrMap {
  return attrs as unknown as tf.NamedAttrMap;
}

/** Validates the arguments (with messages naming the argument) and returns the mask as [batch, outH, outW]. */
function checkArgs(x: tf.Tensor, filter: tf.Tensor, mask: tf.Tensor, attrs: MaskedConv2DAttrs): tf.Tensor3D {
  const op = 'maskedConv2d';
  for (const [name, t] of [
    ['x', x],
    ['filter', filter],
    ['mask', mask],
  ] as const) {
    if (!(t instanceof tf.Tensor)) throw new Error(`${op}: ${name} must be a tf.Tensor, got ${typeof t}`);
    if (t.dtype !== 'float32') throw new Error(`${op}: ${name} must be float32, got ${t.dtype}`);
  }
  if (x.rank !== 4) throw new Error(`${op}: x must be 4-D [batch, height, width, inChannels], got [${x.shape}]`);
  if (filter.rank !== 4) {
    throw new Error(`${op}: filter must be 4-D [kH, kW, inChannels, outChannels], got [${filter.shape}]`);
  }
  if (filter.shape[2] !== x.shape[3]) {
    throw new Error(
      `${op}: filter's inChannels (shape[2] = ${filter.shape[2]}) must equal x's channels ` + `(${x.shape[3]})`,
    );
  }
  if (x.size === 0 || filter.size === 0) {
    throw new Error(`${op}: x and filter must not be empty, got [${x.shape}] and [${filter.shape}]`);
  }
  for (const s of attrs.strides) {
    if (!Number.isInteger(s) || s < 1 || s >= 2 ** 31)
      throw new Error(`${op}: strides must be positive integers below 2^31, got ${attrs.strides}`);
  }
  const { pad } = attrs;
  if (!(pad === 'same' || pad === 'valid' || (Number.isInteger(pad) && pad >= 0 && pad < 2 ** 31))) {
    throw new Error(`${op}: pad must be 'same', 'valid' or a non-negative integer below 2^31, got ${String(pad)}`);
  }
  const info = maskedConvInfo(x.shape, filter.shape, attrs.strides, pad);
  if (info.outHeight < 1 || info.outWidth < 1) {
    throw new Error(
      `${op}: the ${filter.shape[0]}x${filter.shape[1]} filter does not fit in x [${x.shape}] ` +
        `with pad ${String(pad)}`,
    );
  }
  const expected: [number, number, number] = [x.shape[0], info.outHeight, info.outWidth];
  const matches =
    expected.every((d, i) => mask.shape[i] === d) && (mask.rank === 3 || (mask.rank === 4 && mask.shape[3] === 1));
  if (!matches) {
    throw new Error(
      `${op}: mask must have shape [${expected}] (the output's batch, height, width) or ` +
        `[${expected},1], got [${mask.shape}]`,
    );
  }
  return (mask.rank === 3 ? mask : tf.reshape(mask, expected)) as tf.Tensor3D;
}

// The gradient of the native kernel: both products of dy at the active positions; none for the mask.
tf.registerGradient({
  kernelName: PACT_MASKED_CONV2D,
  inputsToSave: ['x', 'filter', 'mask'],
  gradFunc: (dy, saved, attrs) => {
    const [x, filter, mask] = saved;
    const { strides, pad } = attrs as unknown as MaskedConv2DAttrs;
    const engine = tf.engine();
    return {
      x: () =>
        engine.runKernel(
          PACT_MASKED_CONV2D_BACKPROP_INPUT,
          { dy: dy as tf.Tensor, filter, mask },
          toAttrMap({ strides, pad, inputShape: x.shape }),
        ) as tf.Tensor,
      filter: () =>
        engine.runKernel(
          PACT_MASKED_CONV2D_BACKPROP_FILTER,
          { x, dy: dy as tf.Tensor, mask },
          toAttrMap({ strides, pad, filterShape: filter.shape }),
        ) as tf.Tensor,
      mask: () => tf.zerosLike(mask),
    };
  },
});

/** The native kernels' view of a masked convolution: shapes, strides, pads [top, bottom, left, right]. */
export interface MaskedConvGeometry {
  xShape: number[];
  filterShape: number[];
  strides: [number, number];
  pads: [number, number, number, number];
  outShape: number[];
}

export function maskedConvGeometry(
  xShape: number[],
  filterShape: number[],
  attrs: MaskedConv2DAttrs,
): MaskedConvGeometry {
  const info = maskedConvInfo(xShape, filterShape, attrs.strides, attrs.pad);
  const p = info.padInfo;
  return {
    xShape,
    filterShape,
    strides: attrs.strides,
    pads: [p.top, p.bottom, p.left, p.right],
    outShape: [xShape[0], info.outHeight, info.outWidth, filterShape[3]],
  };
}

/** The three masked-convolution kernels, in the order of the native `which` codes: forward, input and filter grads. */
export const MASKED_CONV_KERNELS = [
  PACT_MASKED_CONV2D,
  PACT_MASKED_CONV2D_BACKPROP_INPUT,
  PACT_MASKED_CONV2D_BACKPROP_FILTER,
] as const;

/**
 * What a backend's masked-convolution kernel `which` (0 forward, 1 backprop-input, 2 backprop-filter) computes from:
 * the geometry, its two operands (x, filter | dy, filter | x, dy) with their names, the mask, the output's shape.
 */
export function maskedConvOperands<T extends { shape: number[] }>(
  which: 0 | 1 | 2,
  inputs: Record<string, T>,
  attrs: MaskedConv2DAttrs & Partial<MaskedConv2DBackpropInputAttrs & MaskedConv2DBackpropFilterAttrs>,
): { geometry: MaskedConvGeometry; a: T; b: T; mask: T; names: [string, string]; outShape: number[] } {
  const { x, dy, filter, mask } = inputs;
  const xShape = which === 1 ? (attrs.inputShape as number[]) : x.shape;
  const filterShape = which === 2 ? (attrs.filterShape as number[]) : filter.shape;
  const geometry = maskedConvGeometry(xShape, filterShape, attrs);
  const operands: Array<[T, T, [string, string]]> = [
    [x, filter, ['x', 'filter']],
    [dy, filter, ['dy', 'filter']],
    [x, dy, ['x', 'dy']],
  ];
  const [a, b, names] = operands[which];
  return { geometry, a, b, mask, names, outShape: [geometry.outShape, geometry.xShape, geometry.filterShape][which] };
}
