/**
 * Registers `pact-cpu` when the native addon loads: every tfjs-backend-cpu kernel is copied onto it, then the
 * native ones replace theirs. Its priority is above `cpu`'s, so importing the package makes it the default
 * backend in Node; `tf.setBackend('cpu')` still selects plain tfjs.
 */
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs';

import { nativeAddon, nativeLoadError } from '../../native/binding';
import { checkNativeSettings, PACT_CPU, PactCpuBackend, poolLimitBytes } from './backend';
import { guardedCpuKernel } from './kernel_util';
import { pactCpuKernels } from './register_all_kernels';

const PACT_CPU_PRIORITY = 3;

export interface PactCpuStatus {
  registered: boolean;
  reason: string;
}

let status: PactCpuStatus | undefined;

export function registerPactCpu(): PactCpuStatus {
  if (status !== undefined) return status;
  const native = nativeAddon();
  if (native === null) {
    status = { registered: false, reason: nativeLoadError() };
    return status;
  }
  try {
    poolLimitBytes();
    checkNativeSettings();
  } catch (e) {
    status = { registered: false, reason: (e as Error).message };
    return status;
  }
  if (tf.findBackendFactory(PACT_CPU) === null) {
    tf.registerBackend(PACT_CPU, () => new PactCpuBackend(native), PACT_CPU_PRIORITY);
    // tfjs-backend-cpu's kernels, each followed by the buffer pool's alias check (backend.ts).
    for (const config of tf.getKernelsForBackend('cpu')) {
      tf.registerKernel({ ...config, backendName: PACT_CPU, kernelFunc: guardedCpuKernel(config.kernelFunc) });
    }
    for (const config of pactCpuKernels) {
      // pact-cpu's own kernels (PactMaskedConv2D, ...) have no tfjs-backend-cpu copy to replace.
      if (tf.getKernel(config.kernelName, PACT_CPU) !== undefined) tf.unregisterKernel(config.kernelName, PACT_CPU);
      tf.registerKernel(config);
    }
  }
  status = { registered: true, reason: '' };
  return status;
}
