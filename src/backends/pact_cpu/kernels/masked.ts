/**
 * pact-cpu kernels of the masked convolution (src/ops/masked_conv2d.ts): forward, backprop-input and
 * backprop-filter, of dilateMask (src/ops/dilate_mask.ts), all native (native/cpu/masked_conv2d.cc), and the
 * masked batch norm + ReLU of maskedResidualUnit and its gradient, and evaluation's batch norm + ReLU with given
 * statistics, masked and dense (native/cpu/masked_residual_unit.cc); and the optimizer's fused SGD-momentum step
 * (native/cpu/sgd_momentum.cc).
 * tfjs-backend-cpu has no such kernels, so there is no fallback: the addon that registered pact-cpu has them all.
 */
import * as tf from '@tensorflow/tfjs';

import {
  MASKED_CONV_KERNELS,
  MaskedConv2DAttrs,
  MaskedConvGeometry,
  maskedConvOperands,
} from '../../../ops/masked_conv2d';
import { PACT_BATCH_NORM_RELU_INFERENCE } from '../../../ops/batch_norm_relu_inference';
import { DilateMaskAttrs, PACT_DILATE_MASK } from '../../../ops/dilate_mask';
import {
  MaskedBatchNormReluAttrs,
  PACT_MASKED_BATCH_NORM_RELU,
  PACT_MASKED_BATCH_NORM_RELU_GRAD,
  PACT_MASKED_BATCH_NORM_RELU_INFERENCE,
  PACT_SCALED_RESIDUAL_ADD,
  PACT_SCALED_RESIDUAL_ADD_GRAD,
} from '../../../ops/masked_residual_unit';
import { PACT_SGD_MOMENTUM, type SgdMomentumAttrs } from '../../../ops/sgd_momentum';
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

/** Masked-convolution kernel `which` (0 forward, 1 backprop-input, 2 backprop-filter), native. */
function maskedConv(which: 0 | 1 | 2): tf.KernelConfig {
  const run = ['maskedConv2d', 'maskedConv2dBackpropInput', 'maskedConv2dBackpropFilter'] as const;
  return config(MASKED_CONV_KERNELS[which], ({ inputs, backend, attrs }) => {
    const o = maskedConvOperands(which, inputs as Record<string, tf.TensorInfo>, attrs as unknown as MaskedConv2DAttrs);
    const g = o.geometry;
    // A fresh array is all zeros, and so is a disposed forward output or input gradient once the rows where it may
    // be nonzero are cleared: the sparse forward and backprop-input then skip their clearing.
    const n = tf.util.sizeFromShape(o.outShape);
    const { values: out, zeroed } = which === 2 ? backend.allocFloats(n) : backend.zeroOutputFloats(n);
    const mask = backend.floats(o.mask, 'mask');
    const active = backend.native[run[which]](
      g.xShape,
      g.filterShape,
      g.strides,
      g.pads,
      backend.floats(o.a, o.names[0]),
      backend.floats(o.b, o.names[1]),
      mask,
      out,
      ALGO_AUTO,
      zeroed,
    );
    if (which === 0) backend.markZeroOutside(out, mask, o.outShape[3], active as number);
    const radius = footprintRadius(g);
    if (which === 1 && (active as number) >= 0 && radius !== undefined) {
      // The sparse backprop-input's dx is 0 outside the active windows: the mask dilated by the filter's radius.
      const shape: [number, number, number] = [g.xShape[0], g.xShape[1], g.xShape[2]];
      backend.markZeroOutsideDilated(out, mask, shape, radius, g.xShape[3], active as number);
    }
    return backend.floatOutput(out, o.outShape);
  });
}

/**
 * The radius r when the input positions that a masked convolution's active windows reach are its mask dilated by r
 * (a stride-1 'same' convolution with a square (2r+1)^2 filter), else undefined.
 */
function footprintRadius(g: MaskedConvGeometry): number | undefined {
  const [kH, kW] = g.filterShape;
  const r = (kH - 1) / 2;
  const same = g.pads.every((p) => p === r);
  return kH === kW && kH % 2 === 1 && g.strides[0] === 1 && g.strides[1] === 1 && same ? r : undefined;
}

const dilate = config(PACT_DILATE_MASK, ({ inputs, backend, attrs }) => {
  const { mask } = inputs as Record<string, tf.TensorInfo>;
  const out = backend.outputFloats(tf.util.sizeFromShape(mask.shape));
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
  const y = backend.outputFloats(rows * channels),
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

/** Evaluation's batch norm + ReLU with given statistics, at the rows of `mask` (masked) or at every row. */
function batchNormReluInference(kernelName: string, masked: boolean): tf.KernelConfig {
  return config(kernelName, ({ inputs, backend, attrs }) => {
    const { x, scale, offset, mean, variance, mask } = inputs as Record<string, tf.TensorInfo>;
    const { rows, channels } = rowsAndChannels(x);
    const y = backend.outputFloats(rows * channels);
    backend.native.maskedBatchNormReluInference(
      rows,
      channels,
      backend.floats(x, 'x'),
      masked ? backend.floats(mask, 'mask') : null,
      backend.floats(scale, 'scale'),
      backend.floats(offset, 'offset'),
      backend.floats(mean, 'mean'),
      backend.floats(variance, 'variance'),
      (attrs as unknown as MaskedBatchNormReluAttrs).epsilon,
      y,
    );
    return backend.floatOutput(y, x.shape);
  });
}

const maskedBatchNormReluGrad = configMulti(PACT_MASKED_BATCH_NORM_RELU_GRAD, ({ inputs, backend, attrs }) => {
  const { dy, x, mask, y, scale, mean, variance } = inputs;
  const { rows, channels } = rowsAndChannels(x);
  const dx = backend.outputFloats(rows * channels),
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

const scaledResidualAdd = config(PACT_SCALED_RESIDUAL_ADD, ({ inputs, backend }) => {
  const { u, c, a } = inputs as Record<string, tf.TensorInfo>;
  const { rows, channels } = rowsAndChannels(u);
  const y = backend.outputFloats(rows * channels);
  backend.native.scaledResidualAdd(
    rows,
    channels,
    backend.floats(u, 'u'),
    backend.floats(c, 'c'),
    backend.floats(a, 'a'),
    y,
  );
  return backend.floatOutput(y, u.shape);
});

const scaledResidualAddGrad = configMulti(PACT_SCALED_RESIDUAL_ADD_GRAD, ({ inputs, backend }) => {
  const { dy, c, a } = inputs;
  const { rows, channels } = rowsAndChannels(c);
  const dc = backend.outputFloats(rows * channels),
    da = backend.outputFloats(rows);
  backend.native.scaledResidualAddGrad(
    rows,
    channels,
    backend.floats(dy, 'dy'),
    backend.floats(c, 'c'),
    backend.floats(a, 'a'),
    dc,
    da,
  );
  return [backend.floatOutput(dc, c.shape), backend.floatOutput(da, a.shape)];
});

/** One SGD-momentum step (src/ops/sgd_momentum.ts): outputs the new value and accumulation. */
const sgdMomentum = configMulti(PACT_SGD_MOMENTUM, ({ inputs, backend, attrs }) => {
  const { value, accumulation, gradient } = inputs;
  const { learningRate, momentum } = attrs as unknown as SgdMomentumAttrs;
  const n = tf.util.sizeFromShape(value.shape);
  const [valueOut, accumulationOut] = [backend.outputFloats(n), backend.outputFloats(n)];
  backend.native.sgdMomentum(
    backend.floats(value, 'value'),
    backend.floats(accumulation, 'accumulation'),
    backend.floats(gradient, 'gradient'),
    learningRate,
    momentum,
    valueOut,
    accumulationOut,
  );
  return [backend.floatOutput(valueOut, value.shape), backend.floatOutput(accumulationOut, value.shape)];
});

export const maskedKernels: tf.KernelConfig[] = [
  sgdMomentum,
  maskedConv(0),
  maskedConv(1),
  maskedConv(2),
  dilate,
  maskedBatchNormRelu,
  batchNormReluInference(PACT_MASKED_BATCH_NORM_RELU_INFERENCE, true),
  batchNormReluInference(PACT_BATCH_NORM_RELU_INFERENCE, false),
  maskedBatchNormReluGrad,
  scaledResidualAdd,
  scaledResidualAddGrad,
];
