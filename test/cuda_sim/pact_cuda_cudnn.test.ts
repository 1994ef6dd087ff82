/**
 * pact-cuda's dense convolutions: cuDNN where pact.node loads it and the padding is symmetric
 * (native/cuda/cudnn_conv.h), our masked kernels with every position active elsewhere. Conv2D and both gradients
 * against tfjs-backend-cpu on fresh random inputs, strict (no host fallback), and where each ran.
 *
 * On the simulated device (CI) cuDNN is never loaded: every convolution runs our kernels and the status says why.
 * On a GPU (`PACT_CUDA_TESTS=gpu`) the same cases run through cuDNN; `PACT_CUDNN_REQUIRED=1` (scripts/gpu_session.sh)
 * makes a GPU run without cuDNN a failure instead of a run of our kernels alone; cuDNN is loaded only with PACT_CUDNN
 * set (1 or filter: the backend sends it the filter gradient; all: every dense convolution; this test sends all three).
 */
import { strict as assert } from 'assert';

import * as tf from '@tensorflow/tfjs';

import { PACT_CUDA, pactCudaStatus, registerPactCuda } from '../../src';
import { expectClose } from '../helpers/compare';
import { withEnv } from '../helpers/env';
import { freshRng } from '../helpers/random';
import { ON_GPU, usePactCudaSim, valuesOn } from './on_backend';

// Sums of up to 5*5*20 products of values in [-1, 1], in float32 in another order.
const TOL = { atol: 2e-4, rtol: 2e-4 };

interface ConvCase {
  label: string;
  xShape: [number, number, number, number];
  filterShape: [number, number, number, number];
  strides: number;
  pad: 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];
  /** Whether cuDNN can run it: tfjs' padding is symmetric. */
  symmetric: boolean;
}

describe('pact-cuda dense convolutions: cuDNN, else our kernels', function () {
  this.timeout(300000);
  const backend = usePactCudaSim(this);
  const cudnnRequired = ON_GPU && process.env.PACT_CUDNN_REQUIRED === '1';

  it('refuses a PACT_CUDNN that names no mode, naming the variable', () => {
    withEnv('PACT_CUDNN', 'yes', () =>
      assert.throws(() => registerPactCuda(), /PACT_CUDNN must be 0, 1, filter or all \(or unset\), got 'yes'/),
    );
  });

  it('says where dense convolutions run, and why not on cuDNN', () => {
    const { denseConv } = pactCudaStatus();
    const usesCudnn = backend().cudnnAvailable;
    if (!ON_GPU) {
      assert.equal(usesCudnn, false);
      assert.equal(denseConv, 'own kernels (cuDNN: the CUDA simulation has no cuDNN)');
    } else if (usesCudnn) {
      assert.match(denseConv, /^cuDNN 9\.\d+\.\d+$/);
    } else {
      assert.match(denseConv, /^own kernels \(cuDNN: .+\)$/);
      assert.ok(!cudnnRequired, `PACT_CUDNN_REQUIRED=1 but ${denseConv}`);
    }
  });

  it('computes conv2d and both gradients as tfjs-backend-cpu does, on cuDNN where the padding is symmetric', () => {
    const rng = freshRng();
    const channels = () => rng.int(1, 20);
    const batch = rng.int(1, 3);
    const cases: ConvCase[] = [
      {
        label: '3x3 same',
        xShape: [batch, rng.int(3, 9), rng.int(3, 9), channels()],
        filterShape: [3, 3, 0, 0],
        strides: 1,
        pad: 'same',
        symmetric: true,
      },
      {
        label: '3x3 stride 2 valid',
        xShape: [batch, rng.int(4, 9), rng.int(4, 9), channels()],
        filterShape: [3, 3, 0, 0],
        strides: 2,
        pad: 'valid',
        symmetric: true,
      },
      {
        label: '1x1 stride 2 same',
        xShape: [batch, 8, 6, channels()],
        filterShape: [1, 1, 0, 0],
        strides: 2,
        pad: 'same',
        symmetric: true,
      },
      {
        label: '5x3 explicit pads',
        xShape: [batch, rng.int(5, 9), rng.int(3, 9), channels()],
        filterShape: [5, 3, 0, 0],
        strides: 1,
        pad: [
          [0, 0],
          [2, 2],
          [1, 1],
          [0, 0],
        ],
        symmetric: true,
      },
      // tfjs' 'same' at stride 2 on an even size pads 0 above and 1 below: not cuDNN's.
      {
        label: '3x3 stride 2 same, even size',
        xShape: [batch, 8, 6, channels()],
        filterShape: [3, 3, 0, 0],
        strides: 2,
        pad: 'same',
        symmetric: false,
      },
    ];
    for (const c of cases) {
      c.filterShape[2] = c.xShape[3];
      c.filterShape[3] = channels();
      const label = `seed ${rng.seed} ${c.label} x ${c.xShape} filter ${c.filterShape}`;
      const x = rng.uniform(tf.util.sizeFromShape(c.xShape));
      const w = rng.uniform(tf.util.sizeFromShape(c.filterShape));
      const conv = (xt: tf.Tensor4D, wt: tf.Tensor4D) => tf.conv2d(xt, wt, c.strides, c.pad);
      const yShape = tf.tidy(() => conv(tf.zeros(c.xShape), tf.zeros(c.filterShape)).shape);
      const r = rng.uniform(tf.util.sizeFromShape(yShape));
      // y, then the gradients of sum(y * r) with respect to x and the filter, concatenated.
      const run = () => {
        const [xt, wt] = [tf.tensor4d(x, c.xShape), tf.tensor4d(w, c.filterShape)];
        const y = conv(xt, wt);
        const loss = (a: tf.Tensor, b: tf.Tensor) => conv(a as tf.Tensor4D, b as tf.Tensor4D).mul(tf.tensor(r, yShape));
        const [dx, dw] = tf.grads((a, b) => loss(a, b).sum())([xt, wt]);
        return tf.concat([y.flatten(), dx.flatten(), dw.flatten()]);
      };
      const expected = valuesOn('cpu', run);
      const before = { ...backend().denseConvCounts };
      const useCudnnFor = backend().useCudnnFor;
      backend().useCudnnFor = [true, true, true]; // all three through cuDNN where it is loaded
      process.env.PACT_STRICT_NATIVE = '1';
      let actual: tf.backend_util.TypedArray;
      try {
        actual = valuesOn(PACT_CUDA, run);
      } finally {
        backend().useCudnnFor = useCudnnFor;
        delete process.env.PACT_STRICT_NATIVE;
      }
      expectClose(actual, expected, TOL, label);
      const after = backend().denseConvCounts;
      const onCudnn = backend().cudnnAvailable && c.symmetric;
      // The forward twice (y, and inside tf.grads), then both gradients.
      assert.deepEqual(
        { cudnn: after.cudnn - before.cudnn, own: after.own - before.own },
        onCudnn ? { cudnn: 4, own: 0 } : { cudnn: 0, own: 4 },
        `${label}: where the forwards and both gradients ran`,
      );
    }
  });
});
