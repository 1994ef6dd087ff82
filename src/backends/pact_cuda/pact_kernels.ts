/**
 * PACT's own kernels on pact-cuda, on device buffers: the fused halting step and its gradient
 * (native/cuda/halting_step.cu), the masked convolution with both gradients (native/cuda/masked_conv2d.cu), and
 * batch norm (training, with its gradient) and the masked residual unit's batch norm + ReLU (training, gradient,
 * evaluation) and u + c·a (native/cuda/batch_norm.cu).
 * The ops (src/ops) checked the arguments; the addon checks every buffer's size again.
 */
import * as tf from '@tensorflow/tfjs';

import {
  type HaltingStepAttrs,
  haltingConfigArgs,
  haltingExtents,
  haltingStepGradInputs,
  haltingStepInputs,
  PACT_HALTING_STEP,
  PACT_HALTING_STEP_GRAD,
} from '../../ops/halting_step_kernel';
import {
  type BatchNormTrainAttrs,
  PACT_BATCH_NORM_TRAIN,
  PACT_BATCH_NORM_TRAIN_GRAD,
} from '../../ops/batch_norm_train';
import { PACT_BATCH_NORM_RELU_INFERENCE } from '../../ops/batch_norm_relu_inference';
import { MASKED_CONV_KERNELS, type MaskedConv2DAttrs, maskedConvOperands } from '../../ops/masked_conv2d';
import {
  PACT_MASKED_BATCH_NORM_RELU,
  PACT_MASKED_BATCH_NORM_RELU_GRAD,
  PACT_MASKED_BATCH_NORM_RELU_INFERENCE,
  PACT_SCALED_RESIDUAL_ADD,
  PACT_SCALED_RESIDUAL_ADD_GRAD,
} from '../../ops/masked_residual_unit';
import { PACT_SGD_MOMENTUM, type SgdMomentumAttrs } from '../../ops/sgd_momentum';
import { rowsAndChannels } from '../pact_cpu/kernel_util';
import { deviceKernel, PACT_CUDA, PactCudaBackend } from './backend';

type Args = { inputs: tf.NamedTensorInfoMap; attrs: tf.NamedAttrMap; backend: PactCudaBackend };

function config(kernelName: string, run: (args: Args) => tf.TensorInfo | tf.TensorInfo[]): tf.KernelConfig {
  return {
    kernelName,
    backendName: PACT_CUDA,
    kernelFunc: ({ inputs, attrs, backend }) =>
      run({ inputs, attrs: attrs ?? {}, backend: backend as PactCudaBackend }),
  };
}

/** The halting step's (or its gradient's) outputs: four per position, and one like u with the accumulator. */
function haltingOutputShapes(x: { sXi: tf.TensorInfo; u?: tf.TensorInfo }, a: HaltingStepAttrs): number[][] {
  const shapes = [0, 1, 2, 3].map(() => x.sXi.shape);
  if (a.accumulate && x.u !== undefined) shapes.push(x.u.shape);
  return shapes;
}

const haltingStep = config(PACT_HALTING_STEP, ({ inputs, attrs, backend }) => {
  const a = attrs as unknown as HaltingStepAttrs;
  const x = haltingStepInputs(inputs as unknown as tf.TensorInfo[], a);
  const { positions, channels } = haltingExtents(x.sXi, x.u);
  const id = (t: tf.TensorInfo | undefined, name: string) => (t === undefined ? 0 : backend.bufferOf(t, name));
  return backend.launchInto(haltingOutputShapes(x, a), (out) =>
    backend.native.cudaHaltingStepDevice(
      id(x.sXi, 'sXi'),
      id(x.sH, 'sH'),
      id(x.expectedIterations, 'n'),
      id(x.haltLogits, 'haltLogits'),
      id(x.noise, 'noise'),
      id(x.output, 'output'),
      id(x.u, 'u'),
      positions,
      channels,
      ...haltingConfigArgs(a),
      out[0],
      out[1],
      out[2],
      out[3],
      out[4] ?? 0,
    ),
  );
});

const haltingStepGrad = config(PACT_HALTING_STEP_GRAD, ({ inputs, attrs, backend }) => {
  const a = attrs as unknown as HaltingStepAttrs;
  const x = haltingStepGradInputs(inputs as unknown as tf.TensorInfo[], a);
  const { positions, channels } = haltingExtents(x.sXi, x.u);
  const id = (t: tf.TensorInfo | undefined, name: string) => (t === undefined ? 0 : backend.bufferOf(t, name));
  return backend.launchInto(haltingOutputShapes(x, a), (out) =>
    backend.native.cudaHaltingStepGradDevice(
      id(x.sXi, 'sXi'),
      id(x.sH, 'sH'),
      id(x.haltLogits, 'haltLogits'),
      id(x.noise, 'noise'),
      id(x.u, 'u'),
      id(x.gSXi, 'gSXi'),
      id(x.gSH, 'gSH'),
      id(x.gN, 'gN'),
      id(x.gActive, 'gActive'),
      id(x.gOutput, 'gOutput'),
      positions,
      channels,
      ...haltingConfigArgs(a),
      out[0],
      out[1],
      out[2],
      out[3],
      out[4] ?? 0,
    ),
  );
});

const batchNormTrain = config(PACT_BATCH_NORM_TRAIN, ({ inputs, attrs, backend }) => {
  const { x, scale, offset } = inputs as Record<string, tf.TensorInfo>;
  const { epsilon, relu } = attrs as unknown as BatchNormTrainAttrs;
  const { rows, channels } = rowsAndChannels(x);
  const [ix, is, io] = [backend.bufferOf(x, 'x'), backend.bufferOf(scale, 'scale'), backend.bufferOf(offset, 'offset')];
  return backend.launchInto([x.shape, [channels], [channels]], ([y, mean, variance]) =>
    backend.native.cudaBatchNormTrainDevice(rows, channels, epsilon, relu, ix, is, io, y, mean, variance),
  );
});

const batchNormTrainGrad = config(PACT_BATCH_NORM_TRAIN_GRAD, ({ inputs, attrs, backend }) => {
  const t = inputs as Record<string, tf.TensorInfo>;
  const { epsilon, relu } = attrs as unknown as BatchNormTrainAttrs;
  const { rows, channels } = rowsAndChannels(t.x);
  const ids = ['dy', 'dmean', 'dvariance', 'x', 'scale', 'mean', 'variance'].map((n) => backend.bufferOf(t[n], n));
  const y = relu ? backend.bufferOf(t.y, 'y') : 0;
  return backend.launchInto([t.x.shape, [channels], [channels]], ([dx, dscale, doffset]) =>
    backend.native.cudaBatchNormTrainGradDevice(
      rows,
      channels,
      epsilon,
      relu,
      ids[0],
      ids[1],
      ids[2],
      ids[3],
      ids[4],
      ids[5],
      ids[6],
      y,
      dx,
      dscale,
      doffset,
    ),
  );
});

/** Buffer ids of the named inputs, in order. */
function ids(backend: PactCudaBackend, inputs: tf.NamedTensorInfoMap, names: string[]): number[] {
  return names.map((n) => backend.bufferOf((inputs as Record<string, tf.TensorInfo>)[n], n));
}

const epsilonOf = (attrs: tf.NamedAttrMap) => (attrs as unknown as { epsilon: number }).epsilon;

const maskedBatchNormRelu = config(PACT_MASKED_BATCH_NORM_RELU, ({ inputs, attrs, backend }) => {
  const x = inputs.x as tf.TensorInfo;
  const { rows, channels } = rowsAndChannels(x);
  const [ix, im, is, io] = ids(backend, inputs, ['x', 'mask', 'scale', 'offset']);
  return backend.launchInto([x.shape, [channels], [channels]], ([y, mean, variance]) =>
    backend.native.cudaMaskedBatchNormReluDevice(rows, channels, epsilonOf(attrs), ix, im, is, io, y, mean, variance),
  );
});

const maskedBatchNormReluGrad = config(PACT_MASKED_BATCH_NORM_RELU_GRAD, ({ inputs, attrs, backend }) => {
  const x = inputs.x as tf.TensorInfo;
  const { rows, channels } = rowsAndChannels(x);
  const [idy, ix, im, iy, is, imean, ivar] = ids(backend, inputs, [
    'dy',
    'x',
    'mask',
    'y',
    'scale',
    'mean',
    'variance',
  ]);
  return backend.launchInto([x.shape, [channels], [channels]], ([dx, dscale, doffset]) =>
    backend.native.cudaMaskedBatchNormReluGradDevice(
      rows,
      channels,
      epsilonOf(attrs),
      idy,
      ix,
      im,
      iy,
      is,
      imean,
      ivar,
      dx,
      dscale,
      doffset,
    ),
  );
});

/** Evaluation's batch norm + ReLU with given statistics, at the rows of `mask` (masked) or at every row. */
function batchNormReluInference(kernelName: string, masked: boolean): tf.KernelConfig {
  return config(kernelName, ({ inputs, attrs, backend }) => {
    const x = inputs.x as tf.TensorInfo;
    const { rows, channels } = rowsAndChannels(x);
    const [ix, is, io, imean, ivar] = ids(backend, inputs, ['x', 'scale', 'offset', 'mean', 'variance']);
    const im = masked ? ids(backend, inputs, ['mask'])[0] : 0;
    return backend.launchInto([x.shape], ([y]) =>
      backend.native.cudaBatchNormReluInferenceDevice(rows, channels, epsilonOf(attrs), ix, im, is, io, imean, ivar, y),
    )[0];
  });
}

const scaledResidualAdd = config(PACT_SCALED_RESIDUAL_ADD, ({ inputs, backend }) => {
  const u = inputs.u as tf.TensorInfo;
  const { rows, channels } = rowsAndChannels(u);
  const [iu, ic, ia] = ids(backend, inputs, ['u', 'c', 'a']);
  return backend.launchInto([u.shape], ([y]) =>
    backend.native.cudaScaledResidualAddDevice(rows, channels, iu, ic, ia, y),
  )[0];
});

const scaledResidualAddGrad = config(PACT_SCALED_RESIDUAL_ADD_GRAD, ({ inputs, backend }) => {
  const { c, a } = inputs as Record<string, tf.TensorInfo>;
  const { rows, channels } = rowsAndChannels(c);
  const [idy, ic, ia] = ids(backend, inputs, ['dy', 'c', 'a']);
  return backend.launchInto([c.shape, a.shape], ([dc, da]) =>
    backend.native.cudaScaledResidualAddGradDevice(rows, channels, idy, ic, ia, dc, da),
  );
});

/** Masked-convolution kernel `which` (0 forward, 1 backprop-input, 2 backprop-filter) on device buffers. */
function maskedConv(which: 0 | 1 | 2): tf.KernelConfig {
  return config(MASKED_CONV_KERNELS[which], ({ inputs, attrs, backend }) => {
    const o = maskedConvOperands(which, inputs as Record<string, tf.TensorInfo>, attrs as unknown as MaskedConv2DAttrs);
    const g = o.geometry;
    const [ia, ib, im] = [
      backend.bufferOf(o.a, o.names[0]),
      backend.bufferOf(o.b, o.names[1]),
      backend.bufferOf(o.mask, 'mask'),
    ];
    return backend.launchInto([o.outShape], ([out]) =>
      backend.native.cudaMaskedConv2dDevice(g.xShape, g.filterShape, g.strides, g.pads, which, ia, ib, im, out),
    )[0];
  });
}

interface ConvAttrs {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat?: 'NHWC' | 'NCHW';
  dilations?: number | [number, number];
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

/**
 * Dense Conv2D and its two gradients on the device: cuDNN where it is loaded and the padding is symmetric
 * (native/cuda/cudnn_conv.h, with PACT_CUDNN=1), else the masked-convolution kernels in their dense form (no mask:
 * their implicit GEMM over every position).
 * NHWC without dilation; anything else runs on the host.
 */
function denseConv(kernelName: string, which: 0 | 1 | 2): tf.KernelConfig {
  return deviceKernel(kernelName, ({ inputs, attrs, backend }) => {
    const a = attrs as unknown as ConvAttrs & { inputShape?: number[]; filterShape?: number[] };
    const t = inputs as Record<string, tf.TensorInfo>;
    const [first, second] = [t.x ?? t.dy, which === 2 ? t.dy : t.filter];
    if (first.dtype !== 'float32' || second.dtype !== 'float32' || (a.dataFormat ?? 'NHWC') !== 'NHWC') return null;
    const xShape = which === 1 ? (a.inputShape as number[]) : t.x.shape;
    const filterShape = which === 2 ? (a.filterShape as number[]) : t.filter.shape;
    const info = tf.backend_util.computeConv2DInfo(
      xShape as [number, number, number, number],
      filterShape as [number, number, number, number],
      a.strides,
      a.dilations ?? 1,
      a.pad,
      a.dimRoundingMode,
    );
    if (info.dilationHeight !== 1 || info.dilationWidth !== 1) return null;
    const p = info.padInfo;
    if (p.top < 0 || p.bottom < 0 || p.left < 0 || p.right < 0) return null;
    // The device geometry rounds the output size down and needs every dimension positive: tfjs' 'ceil' rounding
    // and empty tensors run on the host.
    const floorSize = (input: number, pads: number, k: number, s: number) => Math.floor((input + pads - k) / s) + 1;
    if (
      xShape.some((d) => d === 0) ||
      filterShape.some((d) => d === 0) ||
      floorSize(xShape[1], p.top + p.bottom, filterShape[0], info.strideHeight) !== info.outHeight ||
      floorSize(xShape[2], p.left + p.right, filterShape[1], info.strideWidth) !== info.outWidth
    ) {
      return null;
    }
    const outShape = [xShape[0], info.outHeight, info.outWidth, filterShape[3]];
    const strides = [info.strideHeight, info.strideWidth];
    const pads = [p.top, p.bottom, p.left, p.right];
    const outputShape = [outShape, xShape, filterShape][which];
    if (backend.cudnnAvailable && backend.useCudnnFor[which] && p.top === p.bottom && p.left === p.right) {
      const [ia, ib] = [backend.bufferOf(first, 'x'), backend.bufferOf(second, 'w')];
      let ran = false;
      const [out] = backend.launchInto([outputShape], ([o]) => {
        ran = backend.native.cudaConv2dDense(xShape, filterShape, strides, pads, which, ia, ib, o);
      });
      if (ran) {
        backend.denseConvCounts.cudnn++;
        return out;
      }
      backend.disposeData(out.dataId, true);
    }
    backend.denseConvCounts.own++;
    const [ia, ib] = [backend.bufferOf(first, 'x'), backend.bufferOf(second, 'w')];
    // Mask id 0: the dense convolution (no mask, no compaction, the output written whole).
    return backend.launchInto([outputShape], ([out]) =>
      backend.native.cudaMaskedConv2dDevice(xShape, filterShape, strides, pads, which, ia, ib, 0, out),
    )[0];
  });
}

/** One SGD-momentum step (src/ops/sgd_momentum.ts) on device buffers. */
const sgdMomentum = config(PACT_SGD_MOMENTUM, ({ inputs, attrs, backend }) => {
  const value = inputs.value as tf.TensorInfo;
  const { learningRate, momentum } = attrs as unknown as SgdMomentumAttrs;
  const [iv, ia, ig] = ids(backend, inputs, ['value', 'accumulation', 'gradient']);
  const n = tf.util.sizeFromShape(value.shape);
  return backend.launchInto([value.shape, value.shape], ([vOut, aOut]) =>
    backend.native.cudaSgdMomentumDevice(n, learningRate, momentum, iv, ia, ig, vOut, aOut),
  );
});

export const pactCudaPactKernels: tf.KernelConfig[] = [
  sgdMomentum,
  denseConv(tf.Conv2D, 0),
  denseConv(tf.Conv2DBackpropInput, 1),
  denseConv(tf.Conv2DBackpropFilter, 2),
  haltingStep,
  haltingStepGrad,
  maskedConv(0),
  maskedConv(1),
  maskedConv(2),
  batchNormTrain,
  batchNormTrainGrad,
  maskedBatchNormRelu,
  maskedBatchNormReluGrad,
  batchNormReluInference(PACT_MASKED_BATCH_NORM_RELU_INFERENCE, true),
  batchNormReluInference(PACT_BATCH_NORM_RELU_INFERENCE, false),
  scaledResidualAdd,
  scaledResidualAddGrad,
];
