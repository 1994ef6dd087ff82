/**
 * One SGD-momentum step of a variable as one kernel: `accumulation' = accumulation · momentum + gradient`,
 * `value' = value − learningRate · accumulation'`, rounded exactly as tfjs' MomentumOptimizer rounds its four ops
 * (each product and sum to float32 on its own), so the results are bit for bit tfjs'. The optimizer of a training
 * step issues one kernel per variable instead of four: on pact-cuda, where a step is bound by the host issuing
 * tfjs ops, that is a quarter fewer of them in a ResNet-32 step.
 *
 * Kernels: `PactSgdMomentum` on pact-cpu (native/cpu/sgd_momentum.cc) and pact-cuda (native/cuda/elementwise.cu);
 * elsewhere the composite of tfjs ops below, which is what MomentumOptimizer computes. No gradient: an update is
 * not differentiated.
 */
import * as tf from '@tensorflow/tfjs';

/** Inputs value, accumulation, gradient (float32, one shape); attrs learningRate, momentum; outputs [value, acc]. */
export const PACT_SGD_MOMENTUM = 'PactSgdMomentum';

export interface SgdMomentumAttrs {
  learningRate: number;
  momentum: number;
}

/** An update's signature: value, accumulation, gradient, rates -> the new value and accumulation (the caller's). */
export type SgdMomentumUpdate = (
  value: tf.Tensor,
  accumulation: tf.Tensor,
  gradient: tf.Tensor,
  attrs: SgdMomentumAttrs,
) => [tf.Tensor, tf.Tensor];

/** The new value and accumulation (fresh tensors, the caller's). */
export const sgdMomentumStep: SgdMomentumUpdate = (value, accumulation, gradient, { learningRate, momentum }) => {
  for (const [name, t] of [
    ['value', value],
    ['accumulation', accumulation],
    ['gradient', gradient],
  ] as const) {
    if (t.dtype !== 'float32') throw new Error(`sgdMomentumStep: ${name} must be float32, got ${t.dtype}`);
    if (!tf.util.arraysEqual(t.shape, value.shape)) {
      throw new Error(`sgdMomentumStep: ${name} has shape [${t.shape}], value [${value.shape}]`);
    }
  }
  for (const [name, v] of [
    ['learningRate', learningRate],
    ['momentum', momentum],
  ] as const) {
    if (!Number.isFinite(v)) throw new Error(`sgdMomentumStep: ${name} must be a finite number, got ${v}`);
  }
  if (tf.getKernel(PACT_SGD_MOMENTUM, tf.getBackend()) !== undefined) {
    const attrs = { learningRate, momentum } as unknown as tf.NamedAttrMap;
    return tf.engine().runKernel(PACT_SGD_MOMENTUM, { value, accumulation, gradient }, attrs) as [tf.Tensor, tf.Tensor];
  }
  return sgdMomentumComposite(value, accumulation, gradient, { learningRate, momentum });
};

/** MomentumOptimizer's own ops (without Nesterov), the reference of the kernels. */
export const sgdMomentumComposite: SgdMomentumUpdate = (value, accumulation, gradient, { learningRate, momentum }) =>
  tf.tidy(() => {
    const next = tf.add(tf.mul(accumulation, tf.scalar(momentum)), gradient);
    return [tf.add(tf.mul(tf.scalar(-learningRate), next), value), next];
  });
