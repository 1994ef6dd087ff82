/** Shared plumbing for `pact-cpu` kernel configs. */
import * as tf from '@tensorflow/tfjs';

import { PACT_CPU, PactCpuBackend } from './backend';

type KernelArgs = Parameters<tf.KernelFunc>[0];
type KernelResult = ReturnType<tf.KernelFunc>;

/**
 * A tfjs-backend-cpu kernel run on pact-cpu: its outputs are checked for buffers shared with its inputs, which
 * the buffer pool must then never reuse (PactCpuBackend.guardAliases).
 */
export function guardedCpuKernel(kernelFunc: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const out = kernelFunc(args);
    (args.backend as PactCpuBackend).guardAliases(args.inputs as tf.NamedTensorInfoMap, out);
    return out;
  };
}

/** tfjs-backend-cpu's implementation of a kernel (alias-guarded), captured before `pact-cpu` replaces it. */
export function cpuKernel(kernelName: string): tf.KernelFunc {
  const config = tf.getKernel(kernelName, 'cpu');
  if (config === undefined) throw new Error(`${PACT_CPU}: tfjs-backend-cpu has no kernel ${kernelName}`);
  return guardedCpuKernel(config.kernelFunc);
}

/**
 * A `pact-cpu` kernel: `native` returns its result, or `null` with the reason when the configuration is not
 * handled natively, in which case tfjs-backend-cpu's kernel runs on the same tensors and the fallback is counted.
 */
export function nativeKernel(
  kernelName: string,
  native: (args: KernelArgs & { backend: PactCpuBackend }) => KernelResult | string,
): tf.KernelConfig {
  let fallback: tf.KernelFunc | undefined;
  return {
    kernelName,
    backendName: PACT_CPU,
    kernelFunc: (args) => {
      const backend = args.backend as PactCpuBackend;
      const result = native({ ...args, backend });
      if (typeof result !== 'string') return result;
      backend.noteFallback(kernelName, result);
      fallback ??= cpuKernel(kernelName);
      return fallback(args);
    },
  };
}

/** A tensor seen as [rows, channels] with channels its last dimension (the batch-norm layouts). */
export function rowsAndChannels(x: tf.TensorInfo): { rows: number; channels: number } {
  const channels = x.shape[x.shape.length - 1];
  return { rows: tf.util.sizeFromShape(x.shape) / channels, channels };
}
