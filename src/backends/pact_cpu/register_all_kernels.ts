/** Every native kernel config of `pact-cpu`, by group (one file per group under kernels/). */
import type * as tf from '@tensorflow/tfjs';

import { denseKernels } from './kernels/dense';
import { elementwiseKernels } from './kernels/elementwise';
import { maskedKernels } from './kernels/masked';
import { normKernels } from './kernels/norm';
import { pactKernels } from './kernels/pact';
import { reduceKernels } from './kernels/reduce';

export const pactCpuKernels: tf.KernelConfig[] = [
  ...denseKernels,
  ...elementwiseKernels,
  ...reduceKernels,
  ...normKernels,
  ...pactKernels,
  ...maskedKernels,
];
