import type * as tf from '@tensorflow/tfjs';

export const normKernels: tf.KernelConfig[] = [];
