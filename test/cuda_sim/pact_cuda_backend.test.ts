/**
 * The pact-cuda backend on the simulated device (pact_sim.node): storage round trips for every dtype, the device
 * element-wise kernels against tfjs-backend-cpu on fresh random inputs with broadcasting (no fallback allowed),
 * gradients through them, the counted host fallback (and its strict mode), device memory accounting through
 * tf.memory() with the caching allocator's reuse, bad buffer ids, and the PACT ops and whole ResNet/PSACT training
 * steps against tfjs-backend-cpu's composites. The reference is tfjs-backend-cpu, not pact-cpu: pact-cpu's OpenMP
 * kernels run in uninstrumented libgomp, which ThreadSanitizer (this suite's second run) reports as races.
 */
import { strict as assert } from 'assert';

import * as tf from '@tensorflow/tfjs';

import {
  AdaptiveResNet,
  haltingStep,
  initialHaltingState,
  maskedConv2d,
  PACT_CUDA,
  PactCudaBackend,
  PreActResNet,
  registerPactCuda,
  softmaxCrossEntropy,
} from '../../src';
import { CUDA_BINARY_OPS, CUDA_UNARY_OPS } from '../../src/backends/pact_cuda/kernels';
import { expectClose } from '../helpers/compare';
import { freshRng, type Rng } from '../helpers/random';
import { ON_GPU, usePactCudaSim, valuesOn } from './on_backend';

const TOL = { atol: 1e-6, rtol: 1e-5 };

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
  const backendOf = usePactCudaSim(this);
  let backend: PactCudaBackend;
  before(() => {
    backend = backendOf();
    // The simulated device reports an H100; a real one whatever it is.
    if (!ON_GPU) assert.match(registerPactCuda({ sim: true }).device, /H100/);
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

  it('writes small and large arrays in launch order: blocks freed and rewritten while queued kernels read them', () => {
    // Arrays up to 16 KiB reach the device inside kernel arguments, 2 KiB a launch, without waiting for queued
    // kernels; larger ones by cudaMemcpy. Each y_i is queued before x_i's block goes back to the cache and the next
    // x takes it, so a write that overtook a queued kernel would change an earlier y.
    const rng = freshRng();
    tf.setBackend(PACT_CUDA);
    try {
      for (const n of [1, 511, 512, 513, 4096, 4097, 20000]) {
        const values = Array.from({ length: 6 }, () => rng.normal(n));
        const ys = values.map((v) => {
          const x = tf.tensor1d(v);
          const y = tf.mul(x, 2);
          x.dispose();
          return y;
        });
        ys.forEach((y, i) =>
          expectClose(
            y.dataSync(),
            values[i].map((v) => 2 * v),
            TOL,
            `${n} floats, array ${i}`,
          ),
        );
        tf.dispose(ys);
      }
      const bools = Uint8Array.from({ length: 2049 }, () => rng.int(0, 1));
      assert.deepEqual(tf.tensor1d(bools, 'bool').dataSync(), bools);
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
        // Pow of a negative base to a fractional power is NaN: positive bases.
        const run = () => op(tf.tensor(name === tf.Pow ? positive : a, aShape), tf.tensor(b, bShape));
        expectClose(
          valuesOn(PACT_CUDA, run),
          valuesOn('cpu', run),
          TOL,
          `seed ${rng.seed} ${name} [${aShape}] [${bShape}]`,
        );
      }
      for (const name of CUDA_UNARY_OPS) {
        const input = name === tf.Log || name === tf.Sqrt || name === tf.Rsqrt ? positive : a;
        const run = () => tf.engine().runKernel(name, { x: tf.tensor(input, aShape) }, { alpha: 0 }) as tf.Tensor;
        expectClose(valuesOn(PACT_CUDA, run), valuesOn('cpu', run), TOL, `seed ${rng.seed} ${name} [${aShape}]`);
      }
    }
    assert.deepEqual(backend.fallbackCounts(), {});
  });

  it('sums and averages 2^24 + 8 values exactly where a float accumulator would stop at 2^24', () => {
    process.env.PACT_STRICT_NATIVE = '1';
    const n = 2 ** 24 + 8;
    for (const [op, expected] of [
      [tf.sum, n],
      [tf.mean, 1],
    ] as const) {
      const got = valuesOn(PACT_CUDA, () => op(tf.ones([n])));
      assert.equal(got[0], expected, op.name);
    }
  });

  it('reduces over contiguous axes, casts and fills on the device, equal to tfjs-backend-cpu', () => {
    process.env.PACT_STRICT_NATIVE = '1';
    const rng = freshRng();
    for (let trial = 0; trial < 8; ++trial) {
      const shape = randomShape(rng, rng.int(1, 4));
      const first = rng.int(0, shape.length - 1);
      const axes = Array.from({ length: rng.int(1, shape.length - first) }, (_, i) => first + i);
      const keepDims = rng.next() < 0.5;
      const x = rng.normal(tf.util.sizeFromShape(shape));
      for (const op of [tf.sum, tf.mean, tf.max, tf.min]) {
        const run = () => op(tf.tensor(x, shape), axes, keepDims);
        const label = `seed ${rng.seed} ${op.name} [${shape}] axes [${axes}] keepDims ${keepDims}`;
        expectClose(valuesOn(PACT_CUDA, run), valuesOn('cpu', run), TOL, label);
      }
      const ints = () => tf.cast(tf.mul(tf.tensor(x, shape), 3), 'int32');
      for (const run of [
        () => tf.cast(ints(), 'float32'),
        () => tf.cast(tf.cast(tf.tensor(x, shape), 'bool'), 'float32'),
        () => tf.cast(tf.cast(ints(), 'bool'), 'int32'),
        () => tf.fill(shape, x[0]),
        () => tf.expandDims(tf.tensor(x, shape), rng.int(-shape.length - 1, shape.length)),
        () => tf.onesLike(tf.tensor(x, shape)),
      ]) {
        expectClose(
          valuesOn(PACT_CUDA, run),
          valuesOn('cpu', run),
          { atol: 0, rtol: 0 },
          `seed ${rng.seed} [${shape}]`,
        );
      }
    }
    assert.deepEqual(backend.fallbackCounts(), {});
  });

  it('multiplies matrices on the device (transposes, batch broadcast, fused bias and ReLU)', () => {
    process.env.PACT_STRICT_NATIVE = '1';
    const rng = freshRng();
    for (let trial = 0; trial < 6; ++trial) {
      const [M, N, K] = [rng.int(1, 20), rng.int(1, 20), rng.int(1, 40)];
      const [transposeA, transposeB] = [rng.next() < 0.5, rng.next() < 0.5];
      const batch = rng.int(1, 3);
      const [batchA, batchB] = rng.next() < 0.5 ? [batch, 1] : [1, batch];
      const a = rng.normal(batchA * M * K);
      const b = rng.normal(batchB * K * N);
      const bias = rng.normal(N);
      const aShape = [batchA, ...(transposeA ? [K, M] : [M, K])];
      const bShape = [batchB, ...(transposeB ? [N, K] : [K, N])];
      const label = `seed ${rng.seed} ${M}x${K}x${N} transposes ${transposeA} ${transposeB} batches ${batchA} ${batchB}`;
      const batched = () => tf.matMul(tf.tensor(a, aShape), tf.tensor(b, bShape), transposeA, transposeB);
      expectClose(valuesOn(PACT_CUDA, batched), valuesOn('cpu', batched), { atol: 1e-5, rtol: 1e-5 }, label);
      const fused = () =>
        tf.fused.matMul({
          a: tf.tensor(a.subarray(0, M * K), aShape.slice(1) as [number, number]) as tf.Tensor2D,
          b: tf.tensor(b.subarray(0, K * N), bShape.slice(1) as [number, number]) as tf.Tensor2D,
          transposeA,
          transposeB,
          bias: tf.tensor1d(bias),
          activation: 'relu',
        });
      expectClose(valuesOn(PACT_CUDA, fused), valuesOn('cpu', fused), { atol: 1e-5, rtol: 1e-5 }, `${label} fused`);
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

  it('runs any other kernel on host copies, counted, warns once, and refuses it under PACT_STRICT_NATIVE=1', async () => {
    const rng = freshRng();
    const x = rng.normal(2 * 7);
    const run = () => tf.cumsum(tf.tensor2d(x, [2, 7]), 1);
    backend.resetFallbackCounts();
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      expectClose(valuesOn(PACT_CUDA, run), valuesOn('cpu', run), TOL, `seed ${rng.seed} cumsum`);
      valuesOn(PACT_CUDA, run);
      // Warnings are emitted on the next tick.
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', onWarning);
    }
    assert.equal(backend.fallbackCounts().Cumsum, 2);
    const cumsumWarnings = warnings.filter(
      (w) => w.name === 'PactCudaFallback' && /^Cumsum has no device/.test(w.message),
    );
    assert.equal(cumsumWarnings.length, 1, 'one warning per kernel, however many calls');
    process.env.PACT_STRICT_NATIVE = '1';
    assert.throws(() => valuesOn(PACT_CUDA, run), /pact-cuda: Cumsum has no device kernel .* PACT_STRICT_NATIVE=1/);
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

  it('frees the outputs of a device kernel that fails after allocating them', () => {
    tf.setBackend(PACT_CUDA);
    try {
      const a = tf.ones([2, 3]),
        b = tf.ones([3, 4]),
        bias = tf.ones([3, 2, 4]);
      const start = {
        ids: backend.numDataIds(),
        bytes: (tf.memory() as tf.MemoryInfo & { numBytesInGPU: number }).numBytesInGPU,
      };
      // The product is made on the device, then the bias add refuses [2,4] + [3,2,4] (tfjs-backend-cpu refuses it
      // too): the product must not stay allocated.
      assert.throws(() => tf.fused.matMul({ a: a as tf.Tensor2D, b: b as tf.Tensor2D, bias }));
      assert.equal(backend.numDataIds(), start.ids, 'data ids');
      assert.equal(
        (tf.memory() as tf.MemoryInfo & { numBytesInGPU: number }).numBytesInGPU,
        start.bytes,
        'device bytes',
      );
      tf.dispose([a, b, bias]);
    } finally {
      tf.setBackend('cpu');
    }
  });

  it('runs on the host what the device kernels cannot: matMul past their grid, ceil-rounded and empty convolutions, with the results of tfjs-backend-cpu', () => {
    const rng = freshRng();
    const tall = rng.normal(16 * 65535 + 3),
      image = rng.normal(25);
    const runs: Array<[string, () => tf.Tensor]> = [
      ['matMul with M > 16 * 65535', () => tf.matMul(tf.tensor2d(tall, [tall.length, 1]), tf.tensor2d([[2, -1]]))],
      ['batch matMul with batch > 65535', () => tf.matMul(tf.ones([65536, 1, 2]), tf.ones([65536, 2, 1]))],
      [
        'conv2d rounding up',
        () => tf.conv2d(tf.tensor4d(image, [1, 5, 5, 1]), tf.ones([2, 2, 1, 1]), 2, 1, 'NHWC', 1, 'ceil'),
      ],
      [
        'conv2d on an empty batch',
        () => tf.conv2d(tf.zeros([0, 4, 4, 1]) as tf.Tensor4D, tf.ones([3, 3, 1, 2]), 1, 'same'),
      ],
    ];
    for (const [label, run] of runs) {
      const [got, expected] = [PACT_CUDA, 'cpu'].map((name) => {
        tf.setBackend(name);
        try {
          return tf.tidy(() => {
            const t = run();
            return { shape: t.shape, values: Float32Array.from(t.dataSync()) };
          });
        } finally {
          tf.setBackend('cpu');
        }
      });
      assert.deepEqual(got.shape, expected.shape, label);
      expectClose(got.values, expected.values, TOL, label);
    }
  });

  it('casts NaN, infinities and values past int32 to int32 as tfjs-backend-cpu does (ToInt32)', () => {
    const x = [NaN, 3e9, -3e9, Infinity, -Infinity, 2.5, -2.5, 2 ** 31, -(2 ** 31), 1e20, 0];
    const run = () => tf.cast(tf.tensor1d(x), 'int32');
    assert.deepEqual(Array.from(valuesOn(PACT_CUDA, run)), Array.from(valuesOn('cpu', run)));
  });

  it('runs maskedConv2d and its gradients on the device, equal to the composite on tfjs-backend-cpu', () => {
    const rng = freshRng();
    for (let trial = 0; trial < 3; ++trial) {
      const [b, h, w, c, o] = [rng.int(1, 2), rng.int(3, 7), rng.int(3, 7), rng.int(1, 5), rng.int(1, 6)];
      const stride = rng.pick([1, 2] as const);
      const pad = rng.pick(['same', 'valid'] as const);
      const x = rng.normal(b * h * w * c);
      const f = rng.normal(9 * c * o);
      const probe = tf.conv2d(
        tf.zeros([b, h, w, c]) as tf.Tensor4D,
        tf.zeros([3, 3, c, o]) as tf.Tensor4D,
        stride,
        pad,
      );
      const [oh, ow] = [probe.shape[1], probe.shape[2]];
      probe.dispose();
      const mask = Float32Array.from(rng.uniform(b * oh * ow, 0, 1), (v) => (v < 0.5 ? 1 : 0));
      const dy = rng.normal(b * oh * ow * o);
      // y, dL/dx and dL/dfilter of L = sum(y * dy), concatenated.
      const run = () => {
        const xs = tf.tensor4d(x, [b, h, w, c]);
        const fs = tf.tensor4d(f, [3, 3, c, o]);
        const ms = tf.tensor3d(mask, [b, oh, ow]);
        const dys = tf.tensor4d(dy, [b, oh, ow, o]);
        const loss = (xv: tf.Tensor, fv: tf.Tensor) =>
          tf.mul(maskedConv2d(xv as tf.Tensor4D, fv as tf.Tensor4D, ms, stride, pad), dys);
        const [dx, df] = tf.grads(loss)([xs, fs], tf.onesLike(dys));
        const y = maskedConv2d(xs, fs, ms, stride, pad);
        return tf.concat([y.flatten(), dx.flatten(), df.flatten()]);
      };
      backend.resetFallbackCounts();
      const label = `seed ${rng.seed} [${b},${h},${w},${c}]->${o} stride ${stride} ${pad}`;
      expectClose(valuesOn(PACT_CUDA, run), valuesOn('cpu', run), { atol: 2e-5, rtol: 2e-5 }, label);
      const onHost = Object.keys(backend.fallbackCounts());
      assert.ok(!onHost.some((k) => k.startsWith('Conv2D') || k.startsWith('PactMasked')), `${label}: ${onHost}`);
    }
  });

  it('runs the fused halting step and its gradient on the device, equal to the composite on tfjs-backend-cpu', () => {
    const rng = freshRng();
    for (const mode of ['relaxed', 'discrete', 'thresholded'] as const) {
      const positions = [rng.int(1, 3), rng.int(2, 9)];
      const channels = rng.int(1, 4);
      const count = positions[0] * positions[1];
      const logits = rng.normal(count);
      const noise = rng.uniform(count, 0.01, 0.99);
      const u = rng.normal(count * channels);
      const weights = rng.normal(count * 4);
      // Two iterations of L = 3 with the accumulator; the gradient of a weighted sum of every output w.r.t. the
      // halting logits and u.
      const run = () => {
        const lg = tf.tensor(logits, positions);
        const us = tf.tensor(u, [...positions, channels]);
        const f = (l: tf.Tensor, uu: tf.Tensor) => {
          let state = initialHaltingState(positions, [...positions, channels]);
          let active: tf.Tensor = tf.ones(positions);
          for (const iteration of [1, 2]) {
            const step = haltingStep(state, l, uu, {
              mode,
              iteration,
              maxIterations: 3,
              temperature: 0.5,
              delta: 0.01,
              noise: tf.tensor(noise, positions),
            });
            state = step.state;
            active = step.active;
          }
          const parts = [state.sXi, state.sH, state.expectedIterations, active];
          const w = tf.tensor(weights, [4, count]);
          return tf.add(
            tf.sum(tf.mul(tf.stack(parts.map((p) => tf.reshape(p, [count]))), w)),
            tf.sum(state.output as tf.Tensor),
          );
        };
        const [gl, gu] = tf.grads(f)([lg, us]);
        return tf.concat([tf.reshape(f(lg, us), [1]), gl.flatten(), gu.flatten()]);
      };
      expectClose(
        valuesOn(PACT_CUDA, run),
        valuesOn('cpu', run),
        { atol: 2e-5, rtol: 2e-5 },
        `seed ${rng.seed} ${mode}`,
      );
    }
  });

  it('computes a ResNet training step (loss and every gradient) as tfjs-backend-cpu does, convolutions on the device', () => {
    const rng = freshRng();
    const seed = rng.int(1, 1000);
    const x = rng.normal(2 * 8 * 8 * 3);
    const labels = Int32Array.from({ length: 2 }, () => rng.int(0, 9));
    // Both backends build the same model from the seed and return [loss, ...every gradient] flattened.
    const run = () => {
      const model = new PreActResNet({ unitsPerStage: 1, numClasses: 10, widths: [4, 4, 8], seed });
      const vars = model.trainableVariables();
      const { value, grads } = tf.variableGrads(
        () =>
          softmaxCrossEntropy(
            model.forward(tf.tensor4d(x, [2, 8, 8, 3]), { training: true }),
            tf.tensor1d(labels, 'int32'),
          ),
        vars,
      );
      const out = tf.concat([tf.reshape(value, [1]), ...vars.map((v) => tf.reshape(grads[v.name], [-1]))]);
      model.dispose();
      return out;
    };
    backend.resetFallbackCounts();
    expectClose(valuesOn(PACT_CUDA, run), valuesOn('cpu', run), { atol: 1e-4, rtol: 1e-3 }, `seed ${rng.seed}`);
    const onHost = Object.keys(backend.fallbackCounts());
    for (const name of ['Conv2D', 'Conv2DBackpropInput', 'Conv2DBackpropFilter', 'Relu', 'Add', 'Multiply', 'Mean']) {
      assert.ok(!onHost.includes(name), `${name} ran on the host (host kernels: ${onHost.join(', ')})`);
    }
  });

  it('computes a PSACT training step (relaxed, seeded noise) as tfjs-backend-cpu does', () => {
    const rng = freshRng();
    const seed = rng.int(1, 1000);
    const x = rng.normal(2 * 8 * 8 * 3);
    const labels = Int32Array.from({ length: 2 }, () => rng.int(0, 9));
    const run = () => {
      const model = new AdaptiveResNet({ unitsPerStage: 2, numClasses: 10, widths: [4, 4, 8], seed, haltBias: 0 });
      const vars = model.trainableVariables();
      const { value, grads } = tf.variableGrads(() => {
        const out = model.forward(tf.tensor4d(x, [2, 8, 8, 3]), {
          mode: 'relaxed',
          training: true,
          temperature: 0.5,
          delta: 0.01,
          seed,
        });
        return softmaxCrossEntropy(out.logits, tf.tensor1d(labels, 'int32'));
      }, vars);
      const out = tf.concat([
        tf.reshape(value, [1]),
        ...vars.map((v) => tf.reshape(grads[v.name] ?? tf.zerosLike(v), [-1])),
      ]);
      model.dispose();
      return out;
    };
    backend.resetFallbackCounts();
    expectClose(valuesOn(PACT_CUDA, run), valuesOn('cpu', run), { atol: 1e-4, rtol: 1e-3 }, `seed ${rng.seed}`);
    const onHost = Object.keys(backend.fallbackCounts());
    for (const name of ['PactMaskedConv2D', 'PactHaltingStep', 'Conv2D', 'Conv2DBackpropFilter']) {
      assert.ok(!onHost.includes(name), `${name} ran on the host (host kernels: ${onHost.join(', ')})`);
    }
  });

  it('refuses unknown buffer ids and mismatched sizes with an Error naming the function', () => {
    const native = backend.native;
    assert.throws(() => native.cudaBufferFree(0x7fffffff), /cudaBufferFree: id: no live device buffer/);
    // Ids are 64-bit (exact in JavaScript to 2^53): one past 2^32 is looked up, not refused as out of range.
    assert.throws(() => native.cudaBufferFree(2 ** 32 + 1), /no live device buffer with id 4294967297/);
    assert.throws(() => native.cudaBufferFree(2 ** 53 + 2), /id must be an integer in \[1, 9007199254740992\]/);
    const id = native.cudaBufferCreate(16);
    assert.throws(
      () => native.cudaBufferWrite(id, new Float32Array(5)),
      /cudaBufferWrite: values has 20 bytes, the buffer 16/,
    );
    assert.throws(() => native.cudaUnary(99, id, id, 4), /cudaUnary: op must be an integer in \[0, 11\]/);
    assert.throws(() => native.cudaUnary(0, id, id, 5), /cudaUnary: x holds 16 bytes, expected 5 float32 values/);
    assert.throws(() => native.cudaBinary(0, id, [4], id, [3], id), /cudaBinary: b holds 16 bytes, expected 3/);
    native.cudaBufferFree(id);
    assert.throws(() => native.cudaBufferRead(id, new Float32Array(4)), /no live device buffer with id/);
  });
});
