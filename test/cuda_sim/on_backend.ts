/**
 * Shared by the pact-cuda tests: registering the backend on the simulated device (skipping without a simulation
 * build), running a computation on a named backend, and strict mode (no host fallback) around a test.
 *
 * `PACT_CUDA_TESTS=gpu` runs the same tests on pact.node's real device instead (a machine with a GPU and an addon
 * built with nvcc): `PACT_CUDA_TESTS=gpu npx mocha test/cuda_sim/pact_cuda_*.test.ts`; without a usable device they
 * are skipped with the reason.
 */
import { strict as assert } from 'assert';

import * as tf from '@tensorflow/tfjs';

import { PACT_CUDA, PactCudaBackend, registerPactCuda } from '../../src';
import { simAddon } from '../../src/native/binding';
import { simBuild } from './sim_build';

/** Runs `f` on `backend` and returns its result's values (any dtype). */
export function valuesOn(backend: string, f: () => tf.Tensor): tf.backend_util.TypedArray {
  const previous = tf.getBackend();
  tf.setBackend(backend);
  try {
    const t = tf.tidy(f);
    const values = t.dataSync() as tf.backend_util.TypedArray;
    t.dispose();
    return values;
  } finally {
    tf.setBackend(previous);
  }
}

/**
 * In a mocha `before`: registers pact-cuda on the simulated device (the test is skipped without a simulation
 * build) and returns a getter of the backend; the default backend stays cpu.
 */
export const ON_GPU = process.env.PACT_CUDA_TESTS === 'gpu';

export function usePactCudaSim(suite: Mocha.Suite): () => PactCudaBackend {
  let backend: PactCudaBackend | undefined;
  let strict: string | undefined;
  suite.beforeAll(function () {
    if (ON_GPU) {
      const status = registerPactCuda({ sim: false });
      if (!status.registered) {
        process.stdout.write(`      (skipped: PACT_CUDA_TESTS=gpu but pact-cuda is unavailable: ${status.reason})\n`);
        this.skip();
      }
    } else {
      if (simBuild() === null || simAddon() === null) this.skip();
      const status = registerPactCuda({ sim: true });
      assert.ok(status.registered, status.reason);
    }
    tf.setBackend(PACT_CUDA);
    backend = tf.backend() as PactCudaBackend;
    tf.setBackend('cpu');
    strict = process.env.PACT_STRICT_NATIVE;
  });
  suite.afterEach(() => {
    if (strict === undefined) delete process.env.PACT_STRICT_NATIVE;
    else process.env.PACT_STRICT_NATIVE = strict;
  });
  return () => backend as PactCudaBackend;
}
