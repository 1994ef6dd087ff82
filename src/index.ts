/**
 * tfjs-pact: Probabilistic Adaptive Computation Time for TensorFlow.js.
 * Importing the package registers the `pact-cpu` backend (when the native addon loads) and exports the ops.
 */
import { registerPactCpu } from './backends/pact_cpu/register';

export { PACT_CPU, PactCpuBackend } from './backends/pact_cpu/backend';
export { registerPactCpu } from './backends/pact_cpu/register';
export type { PactCpuStatus } from './backends/pact_cpu/register';
export { nativeAddon, nativeLoadError } from './native/binding';
export type { BuildInfo, CudaStatus } from './native/binding';

export const pactCpuStatus = registerPactCpu();
