/**
 * The registered gradient of the `PactHaltingStep` kernel: it runs `PactHaltingStepGrad` on the same backend
 * (native/cpu/halting_step.h states the formulas) and maps its outputs onto the kernel's positional inputs. The
 * gradients of N and of the output accumulator are the upstream ones (both are updated by addition).
 */
import * as tf from '@tensorflow/tfjs';

import {
  HaltingStepAttrs,
  haltingStepGradInputList,
  haltingStepInputList,
  haltingStepInputs,
  PACT_HALTING_STEP,
  PACT_HALTING_STEP_GRAD,
} from './halting_step_kernel';

tf.registerGradient({
  kernelName: PACT_HALTING_STEP,
  saveAllInputs: true,
  gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrMap: tf.NamedAttrMap) => {
    const attrs = attrMap as unknown as HaltingStepAttrs;
    const backend = tf.getBackend();
    if (tf.getKernel(PACT_HALTING_STEP_GRAD, backend) === undefined) {
      throw new Error(
        `haltingStep: backend ${backend} registers ${PACT_HALTING_STEP} but not ${PACT_HALTING_STEP_GRAD}`,
      );
    }
    const [gSXi, gSH, gN, gActive, gOutput] = dy as tf.Tensor[];
    const x = haltingStepInputs(saved, attrs);
    const gradInputs = haltingStepGradInputList({ ...x, gSXi, gSH, gN, gActive, gOutput }, attrs);
    const [gHaltLogits, gNoise, gSXiIn, gSHIn, gU] = tf
      .engine()
      .runKernel(PACT_HALTING_STEP_GRAD, gradInputs as unknown as tf.NamedTensorMap, attrMap) as tf.Tensor[];
    const grads = haltingStepInputList(
      {
        sXi: gSXiIn,
        sH: gSHIn,
        expectedIterations: gN,
        haltLogits: gHaltLogits,
        noise: gNoise,
        output: gOutput,
        u: gU,
      },
      attrs,
    );
    return Object.fromEntries(grads.map((g, i) => [String(i), () => g]));
  },
});
