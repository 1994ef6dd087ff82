import type * as tf from '@tensorflow/tfjs';

export const pactKernels: tf.KernelConfig[] = [];
