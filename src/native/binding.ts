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

/** Signatures of the addon's functions. Arrays are written in place where an `out` argument is given. */
export interface PactAddon {
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
