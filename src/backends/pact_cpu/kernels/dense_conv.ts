/**
 * Conv2D, FusedConv2D, Conv2DBackpropInput and Conv2DBackpropFilter on oneDNN (native/cpu/dense_conv.h).
 *
 * The geometry (output size, 'same'/'valid'/explicit pads, dimRoundingMode, dilations) is tfjs' own
 * `computeConv2DInfo`, passed to native code as explicit numbers. Native: NHWC data, HWIO filters, float32, pads
 * smaller than the dilated filter; FusedConv2D fuses its bias (a per-channel vector or a scalar) and its activation
 * (linear, relu, relu6, leakyrelu, elu, sigmoid; prelu runs as pact-cpu's Prelu kernel on the native result).
 * Falls back to tfjs-backend-cpu (counted) for NCHW, other dtypes, empty tensors, larger pads, other bias shapes,
 * and everywhere when the addon was built without oneDNN.
 */
import * as tf from '@tensorflow/tfjs';

import { PactCpuBackend } from '../backend';
import { nativeKernel } from '../kernel_util';
import { applyPrelu, biasValues, denseNative, denseOperandProblem, firstProblem, planActivation } from './dense_native';

type Shape4D = [number, number, number, number];

interface ConvSpec extends Pick<tf.Conv2DAttrs, 'strides' | 'dilations' | 'pad' | 'dimRoundingMode' | 'dataFormat'> {
  inShape: Shape4D;
  filterShape: Shape4D;
}

type ForwardAttrs = tf.Conv2DAttrs & Partial<Pick<tf.FusedConv2DAttrs, 'activation' | 'leakyreluAlpha'>>;

/** Whether `out` is the floor- or ceil-rounded number of filter positions on a padded axis (what native accepts). */
function outputSizeReachable(padded: number, reach: number, stride: number, out: number): boolean {
  return (
    padded >= reach &&
    out >= Math.floor((padded - reach) / stride) + 1 &&
    out <= Math.ceil((padded - reach) / stride) + 1
  );
}

/** The native geometry array (see DenseAddon) of a convolution, or why it is not handled natively. */
function nativeGeometry(spec: ConvSpec): { info: tf.backend_util.Conv2DInfo; geometry: number[] } | string {
  if (spec.dataFormat !== 'NHWC') return `dataFormat ${spec.dataFormat} (only NHWC is native)`;
  const info = tf.backend_util.computeConv2DInfo(
    spec.inShape,
    spec.filterShape,
    spec.strides,
    spec.dilations,
    spec.pad,
    spec.dimRoundingMode,
    false,
    'channelsLast',
  );
  if (
    info.outHeight <= 0 ||
    info.outWidth <= 0 ||
    info.batchSize <= 0 ||
    info.inChannels <= 0 ||
    info.outChannels <= 0
  ) {
    return 'empty output';
  }
  const { top, left, bottom, right } = info.padInfo;
  const reachH = info.effectiveFilterHeight;
  const reachW = info.effectiveFilterWidth;
  if (Math.max(top, bottom) >= reachH || Math.max(left, right) >= reachW) {
    return 'padding not smaller than the dilated filter';
  }
  if (
    !outputSizeReachable(info.inHeight + top + bottom, reachH, info.strideHeight, info.outHeight) ||
    !outputSizeReachable(info.inWidth + left + right, reachW, info.strideWidth, info.outWidth)
  ) {
    // tfjs sizes both axes of a numeric pad with the filter height and stride (computeOutputShape2D).
    return "output size not reachable from the padded input (tfjs' numeric pad with a non-square filter or stride)";
  }
  return {
    info,
    geometry: [
      info.batchSize,
      info.inHeight,
      info.inWidth,
      info.inChannels,
      info.outHeight,
      info.outWidth,
      info.outChannels,
      info.filterHeight,
      info.filterWidth,
      info.strideHeight,
      info.strideWidth,
      info.dilationHeight,
      info.dilationWidth,
      top,
      left,
      bottom,
      right,
    ],
  };
}

function conv2dForward(
  backend: PactCpuBackend,
  inputs: tf.FusedConv2DInputs,
  attrs: ForwardAttrs,
): tf.TensorInfo | string {
  const native = denseNative(backend);
  if (typeof native === 'string') return native;
  const { x, filter, bias, preluActivationWeights } = inputs;
  const problem = firstProblem(denseOperandProblem(x, 'x'), denseOperandProblem(filter, 'filter'));
  if (problem !== '') return problem;
  if (x.shape.length !== 4 || filter.shape.length !== 4) return 'x and filter must be 4-D';
  const plan = planActivation(attrs.activation);
  if (typeof plan === 'string') return plan;
  const conv = nativeGeometry({ ...attrs, inShape: x.shape as Shape4D, filterShape: filter.shape as Shape4D });
  if (typeof conv === 'string') return conv;
  const biasArray = biasValues(backend, bias, conv.info.outChannels, 4);
  if (typeof biasArray === 'string') return biasArray;

  const y = backend.outputFloats(tf.util.sizeFromShape(conv.info.outShape));
  native.conv2dForward(
    conv.geometry,
    backend.floats(x, 'x'),
    backend.floats(filter, 'filter'),
    biasArray,
    y,
    plan.native,
    attrs.leakyreluAlpha ?? 0.2,
  );
  const out = backend.floatOutput(y, conv.info.outShape);
  return plan.prelu ? applyPrelu(backend, out, preluActivationWeights) : out;
}

const conv2dConfig = nativeKernel(tf.Conv2D, ({ inputs, backend, attrs }) =>
  conv2dForward(backend, inputs as tf.FusedConv2DInputs, attrs as unknown as tf.Conv2DAttrs),
);

const fusedConv2dConfig = nativeKernel(tf.FusedConv2D, ({ inputs, backend, attrs }) =>
  conv2dForward(backend, inputs as tf.FusedConv2DInputs, attrs as unknown as tf.FusedConv2DAttrs),
);

const conv2dBackpropInputConfig = nativeKernel(tf.Conv2DBackpropInput, ({ inputs, backend, attrs }) => {
  const native = denseNative(backend);
  if (typeof native === 'string') return native;
  const { dy, filter } = inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const a = attrs as unknown as tf.Conv2DBackpropInputAttrs;
  const problem = firstProblem(denseOperandProblem(dy, 'dy'), denseOperandProblem(filter, 'filter'));
  if (problem !== '') return problem;
  if (filter.shape.length !== 4) return 'filter must be 4-D';
  const conv = nativeGeometry({ ...a, inShape: a.inputShape, filterShape: filter.shape as Shape4D, dilations: 1 });
  if (typeof conv === 'string') return conv;
  if (!tf.util.arraysEqual(dy.shape, conv.info.outShape)) {
    return `dy has shape [${dy.shape}], the convolution's output has [${conv.info.outShape}]`;
  }
  const dx = backend.outputFloats(tf.util.sizeFromShape(a.inputShape));
  native.conv2dBackpropInput(conv.geometry, backend.floats(dy, 'dy'), backend.floats(filter, 'filter'), dx);
  return backend.floatOutput(dx, [...a.inputShape]);
});

const conv2dBackpropFilterConfig = nativeKernel(tf.Conv2DBackpropFilter, ({ inputs, backend, attrs }) => {
  const native = denseNative(backend);
  if (typeof native === 'string') return native;
  const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const a = attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  const problem = firstProblem(denseOperandProblem(x, 'x'), denseOperandProblem(dy, 'dy'));
  if (problem !== '') return problem;
  if (x.shape.length !== 4) return 'x must be 4-D';
  const conv = nativeGeometry({ ...a, inShape: x.shape as Shape4D, dilations: 1 });
  if (typeof conv === 'string') return conv;
  if (!tf.util.arraysEqual(dy.shape, conv.info.outShape)) {
    return `dy has shape [${dy.shape}], the convolution's output has [${conv.info.outShape}]`;
  }
  const dfilter = new Float32Array(tf.util.sizeFromShape(a.filterShape));
  native.conv2dBackpropFilter(conv.geometry, backend.floats(x, 'x'), backend.floats(dy, 'dy'), dfilter);
  return backend.floatOutput(dfilter, [...a.filterShape]);
});

export const denseConvKernels: tf.KernelConfig[] = [
  conv2dConfig,
  fusedConv2dConfig,
  conv2dBackpropInputConfig,
  conv2dBackpropFilterConfig,
];
