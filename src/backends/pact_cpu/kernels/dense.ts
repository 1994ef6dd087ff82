import type * as tf from '@tensorflow/tfjs';

export const denseKernels: tf.KernelConfig[] = [];
