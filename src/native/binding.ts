/**
 * The only module that loads the native addon. It declares the signature of every exported native function;
 * kernels reach native code through `nativeAddon()` and nothing else `require`s the `.node` file.
 *
 * The addon is `build/Release/pact.node` (built by `npm ci`), or the file named by `PACT_ADDON` (a sanitizer
 * or no-oneDNN build, for instance).
 */
import * as path from 'path';

export interface CudaStatus {
  compiled: boolean;
  available: boolean;
  deviceCount: number;
  device: string;
  reason: string;
}

export interface BuildInfo {
  dnnl: boolean;
  threads: number;
  cuda: CudaStatus;
  sanitizer: string;
}

/** Dense primitives on oneDNN (present when `buildInfo().dnnl`). */
export interface DenseAddon {}

/** Elementwise ops with broadcasting. */
export interface ElementwiseAddon {}

/** Reductions. */
export interface ReduceAddon {}

/** Batch normalisation. */
export interface NormAddon {}

/** PACT's own kernels: halting step, ACT halting, RelaxedBernoulli. */
export interface PactOpsAddon {}

/** Masked (sparse) convolution. */
export interface MaskedConvAddon {}

/** CUDA kernels run on host arrays (a real GPU, or the simulated device of `pact_sim.node`). */
export interface CudaOpsAddon {}

/** Signatures of the addon's functions, one interface per kernel group. */
export interface PactAddon
  extends DenseAddon, ElementwiseAddon, ReduceAddon, NormAddon, PactOpsAddon, MaskedConvAddon, CudaOpsAddon {
  buildInfo(): BuildInfo;
  setNumThreads(n: number): void;
}

let loaded: PactAddon | null | undefined;
let loadFailure = '';

export function addonPath(): string {
  return process.env.PACT_ADDON ?? path.resolve(__dirname, '..', '..', 'build', 'Release', 'pact.node');
}

/** The addon, or null when it cannot be loaded (see `nativeLoadError()`). */
export function nativeAddon(): PactAddon | null {
  if (loaded === undefined) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      loaded = require(addonPath()) as PactAddon;
    } catch (e) {
      loaded = null;
      loadFailure = `cannot load the native addon ${addonPath()}: ${(e as Error).message} ` +
        '(build it with `npm run build:native`; see the README)';
    }
  }
  return loaded;
}

export function nativeLoadError(): string {
  nativeAddon();
  return loadFailure;
}
