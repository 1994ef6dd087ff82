/**
 * `pact-cpu`: tfjs-backend-cpu's storage (plain typed arrays, zero copies) with native kernels in place of the
 * ones a training step spends its time in. Kernels the addon does not handle run tfjs-backend-cpu's kernel on
 * the same data; each such fallback is counted by kernel name (`fallbackCounts()`), and `PACT_STRICT_NATIVE=1`
 * turns a fallback into an error (the tests use it to prove a path is native).
 */
import * as tf from '@tensorflow/tfjs';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';

import type { PactAddon } from '../../native/binding';

export const PACT_CPU = 'pact-cpu';

export class PactCpuBackend extends MathBackendCPU {
  private readonly fallbacks = new Map<string, number>();

  constructor(readonly native: PactAddon) {
    super();
    // tfjs-backend-cpu advises Node users to install tfjs-node on first write; this backend is the fast path.
    (this as unknown as { firstUse: boolean }).firstUse = false;
  }

  /**
   * The float32 values of a tensor held by this backend (no copy). tfjs-backend-cpu's Cast to float32 from bool
   * or int32 keeps the source storage (a Uint8Array or Int32Array under a float32 dtype): such a tensor is
   * converted (a copy), not refused.
   */
  floats(t: tf.TensorInfo, argName: string): Float32Array {
    if (t.dtype !== 'float32') throw new Error(`${argName} must be float32, got ${t.dtype}`);
    const values = this.data.get(t.dataId).values;
    if (values instanceof Float32Array) return values;
    if (values instanceof Uint8Array || values instanceof Int32Array) return Float32Array.from(values);
    throw new Error(`${argName} has no numeric storage on ${PACT_CPU}`);
  }

  /** A new float32 output tensor of `shape` around `values` (which it takes ownership of). */
  floatOutput(values: Float32Array, shape: number[]): tf.TensorInfo {
    return this.makeTensorInfo(shape, 'float32', values);
  }

  /** Records that `kernelName` ran tfjs-backend-cpu's JS implementation, and why. */
  noteFallback(kernelName: string, reason: string): void {
    if (process.env.PACT_STRICT_NATIVE === '1') {
      throw new Error(`${PACT_CPU}: ${kernelName} is not handled natively (${reason}) and PACT_STRICT_NATIVE=1`);
    }
    this.fallbacks.set(kernelName, (this.fallbacks.get(kernelName) ?? 0) + 1);
  }

  fallbackCounts(): Record<string, number> {
    return Object.fromEntries(this.fallbacks);
  }

  resetFallbackCounts(): void {
    this.fallbacks.clear();
  }
}
