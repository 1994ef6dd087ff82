/**
 * The pact-cuda backend on the simulated device (pact_sim.node): storage round trips for every dtype, the device
 * element-wise kernels against tfjs-backend-cpu on fresh random inputs with broadcasting (no fallback allowed),
 * gradients through them, the counted host fallback (and its strict mode), device memory accounting through
 * tf.memory() with the caching allocator's reuse, and bad buffer ids. The same file runs on a real GPU's pact.node
 * when one is present (PACT_DEVICE unset there).
 */
import { strict as assert } from 'assert';

import * as tf from '@tensorflow/tfjs';

import { PACT_CUDA, PactCudaBackend, registerPactCuda } from '../../src';
import { CUDA_BINARY_OPS, CUDA_UNARY_OPS } from '../../src/backends/pact_cuda/kernels';
import { simAddon } from '../../src/native/binding';
import { expectClose } from '../helpers/compare';
import { freshRng, type Rng } from '../helpers/random';
import { simBuild } from './sim_build';

const TOL = { atol: 1e-6, rtol: 1e-5 };

/** Runs `f` on `backend` and returns its result's values. */
function valuesOn(backend: string, f: () => tf.Tensor): Float32Array {
  const previous = tf.getBackend();
  tf.setBackend(backend);
  try {
    return tf.tidy(f).dataSync() as Float32Array;
  } finally {
    tf.setBackend(previous);
  }
}

function randomShape(rng: Rng, rank: number): number[] {
  return Array.from({ length: rank }, () => rng.int(1, 5));
}

/** A shape that broadcasts against `shape`: some dimensions 1, maybe fewer leading ones. */
function broadcastPartner(rng: Rng, shape: number[]): number[] {
  const drop = rng.int(0, shape.length);
  return shape.slice(drop).map((d) => (rng.next() < 0.4 ? 1 : d));
}

describe('pact-cuda backend (simulated device)', function () {
  this.timeout(300000);
  let backend: PactCudaBackend;
  let strict: string | undefined;

  before(function () {
    if (simBuild() === null || simAddon() === null) this.skip();
    const status = registerPactCuda({ sim: true });
    assert.ok(status.registered, status.reason);
    assert.match(status.device, /H100/);
    tf.setBackend(PACT_CUDA);
    backend = tf.backend() as PactCudaBackend;
    tf.setBackend('cpu');
    strict = process.env.PACT_STRICT_NATIVE;
  });
  afterEach(() => {
    if (strict === undefined) delete process.env.PACT_STRICT_NATIVE;
    else process.env.PACT_STRICT_NATIVE = strict;
  });

  it('round-trips float32, int32, bool, string and empty tensors through device memory', () => {
    const rng = freshRng();
    tf.setBackend(PACT_CUDA);
    try {
      const f = rng.normal(rng.int(1, 300));
      const i = Int32Array.from(rng.uniform(rng.int(1, 300), -1e6, 1e6), Math.round);
      const b = Uint8Array.from(rng.uniform(rng.int(1, 300), 0, 1), (v) => (v > 0.5 ? 1 : 0));
      const tensors = [tf.tensor1d(f), tf.tensor1d(i, 'int32'), tf.tensor1d(b, 'bool'), tf.tensor1d(['a', 'bc'])];
      assert.deepEqual(tensors[0].dataSync(), f);
      assert.deepEqual(tensors[1].dataSync(), i);
      assert.deepEqual(tensors[2].dataSync(), b);
      assert.deepEqual(tensors[3].arraySync(), ['a', 'bc']);
      const empty = tf.zeros([0, 3]);
      assert.deepEqual(empty.dataSync(), new Float32Array(0));
      tf.dispose([...tensors, empty]);
    } finally {
      tf.setBackend('cpu');
    }
  });

  it('runs the element-wise kernels on the device, equal to tfjs-backend-cpu, with broadcasting', () => {
    process.env.PACT_STRICT_NATIVE = '1';
    const rng = freshRng();
    for (let trial = 0; trial < 12; ++trial) {
      const shape = randomShape(rng, rng.int(0, 4));
      const partner = broadcastPartner(rng, shape);
      const [aShape, bShape] = rng.next() < 0.5 ? [shape, partner] : [partner, shape];
      const a = rng.normal(tf.util.sizeFromShape(aShape));
      const b = rng.normal(tf.util.sizeFromShape(bShape));
      const positive = Float32Array.from(a, (v) => Math.abs(v) + 0.1);
      for (const name of CUDA_BINARY_OPS) {
        const op = (x: tf.Tensor, y: tf.Tensor) => tf.engine().runKernel(name, { a: x, b: y }) as tf.Tensor;
        const run = () => op(tf.tensor(a, aShape), tf.tensor(b, bShape));
        expectClose(
          valuesOn(PACT_CUDA, run),
          valuesOn('cpu', run),
          TOL,
          `seed ${rng.seed} ${name} [${aShape}] [${bShape}]`,
        );
      }
      for (const name of CUDA_UNARY_OPS) {
        const input = name === tf.Log || name === tf.Sqrt || name === tf.Rsqrt ? positive : a;
        const run = () => tf.engine().runKernel(name, { x: tf.tensor(input, aShape) }) as tf.Tensor;
        expectClose(valuesOn(PACT_CUDA, run), valuesOn('cpu', run), TOL, `seed ${rng.seed} ${name} [${aShape}]`);
      }
    }
    assert.deepEqual(backend.fallbackCounts(), {});
  });

  it('differentiates through device kernels as tfjs-backend-cpu does', () => {
    process.env.PACT_STRICT_NATIVE = '1';
    const rng = freshRng();
    const shape = [rng.int(2, 6), rng.int(2, 6)];
    const x = rng.normal(shape[0] * shape[1]);
    const w = rng.normal(shape[0] * shape[1]);
    const dy = rng.normal(shape[0] * shape[1]);
    // The vector-Jacobian product dy · d/dx (tanh(x * w) + sigmoid(x))^2: every op and its gradient is a device
    // kernel (dy given: tf.grad's default ones would be a Fill, not a device kernel yet).
    const s2 = shape as [number, number];
    const run = () =>
      tf.grad((t: tf.Tensor) => {
        const h = tf.add(tf.tanh(tf.mul(t, tf.tensor2d(w, s2))), tf.sigmoid(t));
        return tf.mul(h, h);
      })(tf.tensor2d(x, s2), tf.tensor2d(dy, s2));
    expectClose(valuesOn(PACT_CUDA, run), valuesOn('cpu', run), TOL, `seed ${rng.seed}`);
    assert.deepEqual(backend.fallbackCounts(), {});
  });

  it('runs any other kernel on host copies, counted, and refuses it under PACT_STRICT_NATIVE=1', () => {
    const rng = freshRng();
    const x = rng.normal(2 * 5 * 5 * 3);
    const f = rng.normal(3 * 3 * 3 * 4);
    const run = () => tf.conv2d(tf.tensor4d(x, [2, 5, 5, 3]), tf.tensor4d(f, [3, 3, 3, 4]), 1, 'same');
    backend.resetFallbackCounts();
    expectClose(valuesOn(PACT_CUDA, run), valuesOn('cpu', run), TOL, `seed ${rng.seed} conv2d`);
    assert.equal(backend.fallbackCounts().Conv2D, 1);
    process.env.PACT_STRICT_NATIVE = '1';
    assert.throws(() => valuesOn(PACT_CUDA, run), /pact-cuda: Conv2D has no device kernel .* PACT_STRICT_NATIVE=1/);
  });

  it('reports device bytes in tf.memory(), frees on dispose and reuses cached blocks', () => {
    tf.setBackend(PACT_CUDA);
    try {
      const start = tf.memory() as tf.MemoryInfo & { numBytesInGPU: number };
      const a = tf.ones([64, 33]);
      const b = tf.reshape(a, [33, 64]);
      const after = tf.memory() as tf.MemoryInfo & { numBytesInGPU: number };
      assert.equal(after.numBytesInGPU - start.numBytesInGPU, 64 * 33 * 4, 'one buffer, the reshape shares it');
      tf.dispose(tf.tidy(() => tf.add(tf.mul(a, 2), 1)));
      const allocations = backend.native.cudaMemoryInfo().deviceAllocations;
      for (let i = 0; i < 4; ++i) tf.dispose(tf.tidy(() => tf.add(tf.mul(a, 2), 1)));
      assert.equal(backend.native.cudaMemoryInfo().deviceAllocations, allocations, 'no cudaMalloc: blocks reused');
      tf.dispose([a, b]);
      assert.equal((tf.memory() as typeof start).numBytesInGPU, start.numBytesInGPU);
    } finally {
      tf.setBackend('cpu');
    }
  });

  it('refuses unknown buffer ids and mismatched sizes with an Error naming the function', () => {
    const native = backend.native;
    assert.throws(() => native.cudaBufferFree(0x7fffffff), /cudaBufferFree: id: no live device buffer/);
    const id = native.cudaBufferCreate(16);
    assert.throws(
      () => native.cudaBufferWrite(id, new Float32Array(5)),
      /cudaBufferWrite: values has 20 bytes, the buffer 16/,
    );
    assert.throws(() => native.cudaUnary(99, id, id, 4), /cudaUnary: op must be an integer in \[0, 9\]/);
    assert.throws(() => native.cudaUnary(0, id, id, 5), /cudaUnary: x holds 16 bytes, expected 5 float32 values/);
    assert.throws(() => native.cudaBinary(0, id, [4], id, [3], id), /cudaBinary: b holds 16 bytes, expected 3/);
    native.cudaBufferFree(id);
    assert.throws(() => native.cudaBufferRead(id, new Float32Array(4)), /no live device buffer with id/);
  });
});
