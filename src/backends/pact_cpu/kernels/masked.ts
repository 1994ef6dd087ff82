/**
 * pact-cpu kernels of the masked convolution (src/ops/masked_conv2d.ts): forward, backprop-input and
 * backprop-filter, of dilateMask (src/ops/dilate_mask.ts), all native (native/cpu/masked_conv2d.cc), and the
 * masked batch norm + ReLU of maskedResidualUnit and its gradient (native/cpu/masked_residual_unit.cc).
 * tfjs-backend-cpu has no such kernels, so there is no fallback: the addon that registered pact-cpu has them all.
 */
import * as tf from '@tensorflow/tfjs';

import {
  MaskedConv2DAttrs,
  MaskedConv2DBackpropFilterAttrs,
  MaskedConv2DBackpropInputAttrs,
  maskedConvGeometry as geometry,
  PACT_MASKED_CONV2D,
  PACT_MASKED_CONV2D_BACKPROP_FILTER,
  PACT_MASKED_CONV2D_BACKPROP_INPUT,
} from '../../../ops/masked_conv2d';
import { DilateMaskAttrs, PACT_DILATE_MASK } from '../../../ops/dilate_mask';
import {
  MaskedBatchNormReluAttrs,
  PACT_MASKED_BATCH_NORM_RELU,
  PACT_MASKED_BATCH_NORM_RELU_GRAD,
} from '../../../ops/masked_residual_unit';
import { PACT_CPU, PactCpuBackend } from '../backend';
import { rowsAndChannels } from '../kernel_util';

/** Automatic choice between the sparse and the dense path (native/cpu/masked_conv2d.h, MaskedAlgo). */
const ALGO_AUTO = 0;

function config(
  kernelName: string,
  kernelFunc: (args: {
    inputs: tf.NamedTensorInfoMap;
    backend: PactCpuBackend;
    attrs: tf.NamedAttrMap;
  }) => tf.TensorInfo,
): tf.KernelConfig {
  return {
    kernelName,
    backendName: PACT_CPU,
    kernelFunc: ({ inputs, backend, attrs }) =>
      kernelFunc({ inputs, backend: backend as PactCpuBackend, attrs: attrs ?? {} }),
  };
}

const forward = config(PACT_MASKED_CONV2D, ({ inputs, backend, attrs }) => {
  const { x, filter, mask } = inputs as Record<string, tf.TensorInfo>;
  const g = geometry(x.shape, filter.shape, attrs as unknown as MaskedConv2DAttrs);
  const y = new Float32Array(tf.util.sizeFromShape(g.outShape));
  backend.native.maskedConv2d(
    g.xShape,
    g.filterShape,
    g.strides,
    g.pads,
    backend.floats(x, 'x'),
    backend.floats(filter, 'filter'),
    backend.floats(mask, 'mask'),
    y,
    ALGO_AUTO,
  );
  return backend.floatOutput(y, g.outShape);
});

const backpropInput = config(PACT_MASKED_CONV2D_BACKPROP_INPUT, ({ inputs, backend, attrs }) => {
  const { dy, filter, mask } = inputs as Record<string, tf.TensorInfo>;
  const a = attrs as unknown as MaskedConv2DBackpropInputAttrs;
  const g = geometry(a.inputShape, filter.shape, a);
  const dx = new Float32Array(tf.util.sizeFromShape(g.xShape));
  backend.native.maskedConv2dBackpropInput(
    g.xShape,
    g.filterShape,
    g.strides,
    g.pads,
    backend.floats(dy, 'dy'),
    backend.floats(filter, 'filter'),
    backend.floats(mask, 'mask'),
    dx,
    ALGO_AUTO,
  );
  return backend.floatOutput(dx, g.xShape);
});

const backpropFilter = config(PACT_MASKED_CONV2D_BACKPROP_FILTER, ({ inputs, backend, attrs }) => {
  const { x, dy, mask } = inputs as Record<string, tf.TensorInfo>;
  const a = attrs as unknown as MaskedConv2DBackpropFilterAttrs;
  const g = geometry(x.shape, a.filterShape, a);
  const dfilter = new Float32Array(tf.util.sizeFromShape(g.filterShape));
  backend.native.maskedConv2dBackpropFilter(
    g.xShape,
    g.filterShape,
    g.strides,
    g.pads,
    backend.floats(x, 'x'),
    backend.floats(dy, 'dy'),
    backend.floats(mask, 'mask'),
    dfilter,
    ALGO_AUTO,
  );
  return backend.floatOutput(dfilter, g.filterShape);
});

const dilate = config(PACT_DILATE_MASK, ({ inputs, backend, attrs }) => {
  const { mask } = inputs as Record<string, tf.TensorInfo>;
  const out = new Float32Array(tf.util.sizeFromShape(mask.shape));
  backend.native.dilateMask(
    mask.shape,
    backend.floats(mask, 'mask'),
    (attrs as unknown as DilateMaskAttrs).radius,
    out,
  );
  return backend.floatOutput(out, mask.shape);
});

/** NHWC as [rows, channels]. */
function configMulti(
  kernelName: string,
  kernelFunc: (args: {
    inputs: Record<string, tf.TensorInfo>;
    backend: PactCpuBackend;
    attrs: tf.NamedAttrMap;
  }) => tf.TensorInfo[],
): tf.KernelConfig {
  return {
    kernelName,
    backendName: PACT_CPU,
    kernelFunc: ({ inputs, backend, attrs }) =>
      kernelFunc({
        inputs: inputs as Record<string, tf.TensorInfo>,
        backend: backend as PactCpuBackend,
        attrs: attrs ?? {},
      }),
  };
}

const maskedBatchNormRelu = configMulti(PACT_MASKED_BATCH_NORM_RELU, ({ inputs, backend, attrs }) => {
  const { x, scale, offset, mask } = inputs;
  const { rows, channels } = rowsAndChannels(x);
  const y = new Float32Array(rows * channels),
    mean = new Float32Array(channels);
  const variance = new Float32Array(channels);
  backend.native.maskedBatchNormRelu(
    rows,
    channels,
    backend.floats(x, 'x'),
    backend.floats(mask, 'mask'),
    backend.floats(scale, 'scale'),
    backend.floats(offset, 'offset'),
    (attrs as unknown as MaskedBatchNormReluAttrs).epsilon,
    y,
    mean,
    variance,
  );
  return [
    backend.floatOutput(y, x.shape),
    backend.floatOutput(mean, [channels]),
    backend.floatOutput(variance, [channels]),
  ];
});

const maskedBatchNormReluGrad = configMulti(PACT_MASKED_BATCH_NORM_RELU_GRAD, ({ inputs, backend, attrs }) => {
  const { dy, x, mask, y, scale, mean, variance } = inputs;
  const { rows, channels } = rowsAndChannels(x);
  const dx = new Float32Array(rows * channels),
    dscale = new Float32Array(channels);
  const doffset = new Float32Array(channels);
  backend.native.maskedBatchNormReluGrad(
    rows,
    channels,
    backend.floats(dy, 'dy'),
    backend.floats(x, 'x'),
    backend.floats(mask, 'mask'),
    backend.floats(y, 'y'),
    backend.floats(scale, 'scale'),
    backend.floats(mean, 'mean'),
    backend.floats(variance, 'variance'),
    (attrs as unknown as MaskedBatchNormReluAttrs).epsilon,
    dx,
    dscale,
    doffset,
  );
  return [
    backend.floatOutput(dx, x.shape),
    backend.floatOutput(dscale, [channels]),
    backend.floatOutput(doffset, [channels]),
  ];
});

export const maskedKernels: tf.KernelConfig[] = [
  forward,
  backpropInput,
  backpropFilter,
  dilate,
  maskedBatchNormRelu,
  maskedBatchNormReluGrad,
];
