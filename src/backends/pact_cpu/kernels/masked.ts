import type * as tf from '@tensorflow/tfjs';

export const maskedKernels: tf.KernelConfig[] = [];
