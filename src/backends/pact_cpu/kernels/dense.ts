/** The dense group of pact-cpu: convolutions and matrix products on oneDNN (dense_conv.ts, dense_matmul.ts). */
import type * as tf from '@tensorflow/tfjs';

import { denseConvKernels } from './dense_conv';
import { denseMatMulKernels } from './dense_matmul';

export const denseKernels: tf.KernelConfig[] = [...denseConvKernels, ...denseMatMulKernels];
