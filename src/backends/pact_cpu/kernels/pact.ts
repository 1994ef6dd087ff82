/**
 * PACT's own kernels on pact-cpu: the fused halting step and its gradient (native/cpu/halting_step.cc), which
 * exist on no other backend (src/ops/halting_step.ts runs its composite there), and the halting units' U(0, 1)
 * noise (native/cpu/random.h; elsewhere the same draws from a JavaScript loop, src/ops/halting_util.ts). The op
 * checked the arguments; the addon checks every length and value again and throws, so these never fall back.
 */
import * as tf from '@tensorflow/tfjs';

import {
  HaltingStepAttrs,
  haltingConfigArgs,
  haltingExtents,
  haltingStepGradInputs,
  haltingStepInputs,
  PACT_HALTING_STEP,
  PACT_HALTING_STEP_GRAD,
} from '../../../ops/halting_step_kernel';
import { PACT_UNIFORM_NOISE, UniformNoiseAttrs } from '../../../ops/halting_util';
import type { PactCpuBackend } from '../backend';
import { nativeKernel } from '../kernel_util';

function floatsOrNull(backend: PactCpuBackend, t: tf.TensorInfo | undefined, name: string): Float32Array | null {
  return t === undefined ? null : backend.floats(t, name);
}

const haltingStepConfig = nativeKernel(PACT_HALTING_STEP, ({ inputs, attrs, backend }) => {
  const a = attrs as unknown as HaltingStepAttrs;
  const x = haltingStepInputs(inputs as unknown as tf.TensorInfo[], a);
  const { positions, channels } = haltingExtents(x.sXi, x.u);
  // The native step writes every element of its outputs: reused arrays serve.
  const [sXi, sH, n, active] = [0, 1, 2, 3].map(() => backend.outputFloats(positions));
  const output = a.accumulate ? backend.outputFloats(positions * channels) : null;
  backend.native.haltingStep(
    backend.floats(x.sXi, 'sXi'),
    backend.floats(x.sH, 'sH'),
    backend.floats(x.expectedIterations, 'n'),
    floatsOrNull(backend, x.haltLogits, 'haltLogits'),
    floatsOrNull(backend, x.noise, 'noise'),
    floatsOrNull(backend, x.output, 'output'),
    floatsOrNull(backend, x.u, 'u'),
    positions,
    channels,
    ...haltingConfigArgs(a),
    sXi,
    sH,
    n,
    active,
    output,
  );
  const outs = [sXi, sH, n, active].map((v) => backend.floatOutput(v, x.sXi.shape));
  if (output !== null && x.u !== undefined) outs.push(backend.floatOutput(output, x.u.shape));
  return outs;
});

const haltingStepGradConfig = nativeKernel(PACT_HALTING_STEP_GRAD, ({ inputs, attrs, backend }) => {
  const a = attrs as unknown as HaltingStepAttrs;
  const x = haltingStepGradInputs(inputs as unknown as tf.TensorInfo[], a);
  const { positions, channels } = haltingExtents(x.sXi, x.u);
  const [gHaltLogits, gNoise, gSXi, gSH] = [0, 1, 2, 3].map(() => backend.outputFloats(positions));
  const gU = a.accumulate ? backend.outputFloats(positions * channels) : null;
  backend.native.haltingStepGrad(
    backend.floats(x.sXi, 'sXi'),
    backend.floats(x.sH, 'sH'),
    floatsOrNull(backend, x.haltLogits, 'haltLogits'),
    floatsOrNull(backend, x.noise, 'noise'),
    floatsOrNull(backend, x.u, 'u'),
    backend.floats(x.gSXi, 'gSXi'),
    backend.floats(x.gSH, 'gSH'),
    backend.floats(x.gN, 'gN'),
    backend.floats(x.gActive, 'gActive'),
    floatsOrNull(backend, x.gOutput, 'gOutput'),
    positions,
    channels,
    ...haltingConfigArgs(a),
    gHaltLogits,
    gNoise,
    gSXi,
    gSH,
    gU,
  );
  // The positions' gradients take sXi's shape; a last or thresholded step has no haltLogits/noise input, and the
  // op's gradient drops those outputs.
  const outs = [gHaltLogits, gNoise, gSXi, gSH].map((v) => backend.floatOutput(v, x.sXi.shape));
  if (gU !== null && x.u !== undefined) outs.push(backend.floatOutput(gU, x.u.shape));
  return outs;
});

const uniformNoiseConfig = nativeKernel(PACT_UNIFORM_NOISE, ({ attrs, backend }) => {
  const { shape, seedHigh, seedLow } = attrs as unknown as UniformNoiseAttrs;
  const out = backend.outputFloats(tf.util.sizeFromShape(shape));
  backend.native.uniformNoise(seedHigh, seedLow, out);
  return backend.floatOutput(out, shape);
});

export const pactKernels: tf.KernelConfig[] = [haltingStepConfig, haltingStepGradConfig, uniformNoiseConfig];
