/**
 * Sum's and Mean's gradients on pact-cuda. tfjs' own ones broadcast dy by multiplying it with `ones(x.shape)`,
 * an array of ones filled on the host and copied to the device for every call: on the GPU that was most of a
 * training step's host time (batch norm's statistics and the masked units' means are Sums and Means). While
 * pact-cuda is the active backend the wrapped gradients make the ones on the device (OnesLike, a fill kernel);
 * on every other backend they are tfjs' own, unchanged.
 */
import * as tf from '@tensorflow/tfjs';

import { PACT_CUDA } from './backend';

let wrapped = false;

/** dy reshaped to x's rank (1 on the reduced axes), broadcast to x's shape on the device. */
function broadcastDy(dy: tf.Tensor, x: tf.Tensor, axisAttr: number | number[]): tf.Tensor {
  const axes = tf.util.parseAxisParam(axisAttr, x.shape);
  const expanded = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  return tf.mul(tf.reshape(dy, expanded), tf.onesLike(x));
}

/** Replaces the registered gradients of Sum and Mean by ones that take the device path on pact-cuda. */
export function wrapReductionGradients(): void {
  if (wrapped) return;
  wrapped = true;
  for (const kernelName of [tf.Sum, tf.Mean]) {
    const original = tf.getGradient(kernelName);
    tf.registerGradient({
      ...original,
      gradFunc: (dy, saved, attrs) => {
        if (tf.getBackend() !== PACT_CUDA) return original.gradFunc(dy, saved, attrs);
        const [x] = saved;
        const { axis } = attrs as unknown as { axis: number | number[] };
        if (kernelName === tf.Sum) return { x: () => broadcastDy(dy as tf.Tensor, x, axis) };
        const axes = tf.util.parseAxisParam(axis, x.shape);
        const reduceSize = axes.reduce((n, i) => n * x.shape[i], 1);
        return { x: () => tf.div(broadcastDy(dy as tf.Tensor, x, axis), reduceSize) };
      },
    });
  }
}
