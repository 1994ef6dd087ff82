/**
 * Registers `pact-cuda` when a CUDA device is usable (pact.node built with CUDA and a GPU present, or the
 * simulated device with `PACT_DEVICE=sim`); otherwise `pactCudaStatus()` says why not. Every tfjs-backend-cpu
 * kernel is registered to run on host copies (counted fallbacks), then the device kernels replace theirs.
 *
 * Priority 1, below pact-cpu: the device kernels cover the training step and evaluation of every model here (tested
 * on the simulated device and on an H100), but a step is still slower than PyTorch's on the same GPU and PSACT does
 * not beat the dense network there (bench/README.md), so pact-cuda is chosen with `tf.setBackend('pact-cuda')` (or
 * `pact --backend pact-cuda`), never by default.
 */
import * as tf from '@tensorflow/tfjs';

import { cudaTensorAddon } from '../../native/binding';
import { PACT_CUDA, PactCudaBackend } from './backend';
import { wrapReductionGradients } from './gradients';
import { pactCudaKernels } from './kernels';
import { pactCudaLayoutKernels } from './layout_kernels';
import { pactCudaPactKernels } from './pact_kernels';

const PACT_CUDA_PRIORITY = 1;

export interface PactCudaStatus {
  registered: boolean;
  /** The device's name, when registered. */
  device: string;
  /** Why it is not registered. */
  reason: string;
  /**
   * Where dense convolutions run: cuDNN (with its version) when pact.node loads it at run time (`PACT_CUDNN=1`:
   * the filter gradient, `PACT_CUDNN=all`: all three; `PACT_CUDNN_LIBRARY` names the library), else our own
   * kernels, with the reason.
   */
  denseConv: string;
}

let status: PactCudaStatus | undefined;

/**
 * Registers pact-cuda on the device `cudaTensorAddon()` finds (`sim`: the simulated device, whatever
 * PACT_DEVICE says). Once registered, later calls return the same status.
 */
export function registerPactCuda(options: { sim?: boolean } = {}): PactCudaStatus {
  checkCudnnSetting();
  if (status?.registered === true) return status;
  const { addon, reason } = cudaTensorAddon(options.sim);
  if (addon === null) {
    status = { registered: false, device: '', reason, denseConv: '' };
    return status;
  }
  const { cuda } = addon.buildInfo();
  if (cuda.deviceCount === 0) {
    status = { registered: false, device: '', reason: `CUDA unavailable: ${cuda.reason}`, denseConv: '' };
    return status;
  }
  if (tf.findBackendFactory(PACT_CUDA) === null) {
    tf.registerBackend(PACT_CUDA, () => new PactCudaBackend(addon), PACT_CUDA_PRIORITY);
    const deviceKernels = [...pactCudaKernels, ...pactCudaLayoutKernels, ...pactCudaPactKernels];
    const own = new Set(deviceKernels.map((k) => k.kernelName));
    for (const config of tf.getKernelsForBackend('cpu')) {
      if (own.has(config.kernelName)) continue;
      const { kernelName, kernelFunc } = config;
      tf.registerKernel({
        kernelName,
        backendName: PACT_CUDA,
        kernelFunc: (args) => (args.backend as PactCudaBackend).runOnHost(kernelName, kernelFunc, args),
      });
    }
    for (const config of deviceKernels) tf.registerKernel(config);
    wrapReductionGradients();
  }
  const cudnn = addon.cudaCudnnStatus();
  const denseConv = cudnn.available
    ? `cuDNN ${Math.floor(cudnn.version / 10000)}.${Math.floor(cudnn.version / 100) % 100}.${cudnn.version % 100}`
    : `own kernels (cuDNN: ${cudnn.reason})`;
  status = { registered: true, device: cuda.device, reason: '', denseConv };
  return status;
}

const CUDNN_MODES = ['', '0', '1', 'filter', 'all'];

/** PACT_CUDNN, if set, must name a mode (native/cuda/cudnn_conv.h): a typo would silently leave cuDNN off. */
function checkCudnnSetting(): void {
  const mode = process.env.PACT_CUDNN;
  if (mode !== undefined && !CUDNN_MODES.includes(mode)) {
    throw new Error(`PACT_CUDNN must be 0, 1, filter or all (or unset), got '${mode}'`);
  }
}

/** Whether pact-cuda is registered, on which device, or why not. */
export function pactCudaStatus(): PactCudaStatus {
  return status ?? registerPactCuda();
}
