/**
 * Runs the same computation on two backends: tfjs-backend-cpu (`cpu`, the reference) and `pact-cpu`.
 * `fn` must return tensors (they are read back and disposed here).
 */
import * as tf from '@tensorflow/tfjs';

import { PACT_CPU, pactCpuStatus } from '../../src';

export function requirePactCpu(): void {
  if (!pactCpuStatus.registered) throw new Error(`pact-cpu is not registered: ${pactCpuStatus.reason}`);
}

/**
 * fn() in a tfjs scope that disposes every tensor it made, returning plain data (tf.tidy would walk the result for
 * tensors and its types take only tensor containers).
 */
export function scoped<T>(fn: () => T): T {
  tf.engine().startScope();
  try {
    return fn();
  } finally {
    tf.engine().endScope();
  }
}

export function onBackend<T extends tf.Tensor | tf.Tensor[]>(name: string, fn: () => T): Float32Array[] {
  const previous = tf.getBackend();
  tf.setBackend(name);
  try {
    return tf.tidy(() => {
      const out = fn();
      const list = Array.isArray(out) ? out : [out];
      return list.map((t) => Float32Array.from(t.dataSync()));
    });
  } finally {
    tf.setBackend(previous);
  }
}

/** Creates the inputs on the given backend from plain arrays, so both runs see identical values. */
export function tensorOn(values: Float32Array, shape: number[]): tf.Tensor {
  return tf.tensor(values, shape, 'float32');
}

export const REFERENCE = 'cpu';
export const NATIVE = PACT_CPU;
