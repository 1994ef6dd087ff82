/**
 * pact-cpu's dense kernels (Conv2D, FusedConv2D, Conv2DBackpropInput, Conv2DBackpropFilter, BatchMatMul,
 * _FusedMatMul) against tfjs-backend-cpu on fresh random shapes, their gradients through tf.grads, and the native
 * functions' argument checks. With an addon built with oneDNN every case must run natively (PACT_STRICT_NATIVE=1
 * and no fallback counted); without oneDNN the same cases must fall back (counted) and still agree.
 */
import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as path from 'path';

import * as tf from '@tensorflow/tfjs';

import { nativeAddon, PACT_CPU, PactCpuBackend } from '../../src';
import { addonPath } from '../../src/native/binding';
import { expectClose, type Tolerance } from '../helpers/compare';
import { withEnv } from '../helpers/env';
import { NATIVE, onBackend, REFERENCE, requirePactCpu } from '../helpers/backends';
import { freshRng, Rng } from '../helpers/random';

/** The one tolerance of this file: float32 sums of at most a few hundred products of values in [-1, 1]. */
const TOL = { atol: 1e-4, rtol: 1e-4 };
const CASES = 50;

type Shape4D = [number, number, number, number];
type Pad = 'same' | 'valid' | number | [[number, number], [number, number], [number, number], [number, number]];
type RoundingMode = 'floor' | 'round' | 'ceil' | undefined;

interface ConvCase {
  xShape: Shape4D;
  filterShape: Shape4D;
  strides: [number, number];
  dilations: [number, number];
  pad: Pad;
  dimRoundingMode: RoundingMode;
  x: Float32Array;
  filter: Float32Array;
  outShape: Shape4D;
  label: string;
}

const hasDnnl = nativeAddon()?.buildInfo().dnnl === true;

function pactBackend(): PactCpuBackend {
  return tf.findBackend(PACT_CPU) as PactCpuBackend;
}

/**
 * A random convolution that tfjs accepts and pact-cpu handles natively: batch 1 to 3, odd and even sizes from 1,
 * 1x1 to 4x4 (also non-square) filters, strides 1 or 2 (also mixed), dilation 2 when the strides are 1 (tfjs'
 * rule), 'same', 'valid', a number or explicit (asymmetric) pads below the dilated filter size, and
 * dimRoundingMode with numeric pads (unless `rounding` is false: tfjs' conv2d gradient drops dimRoundingMode, so its
 * backprop shapes disagree with the forward ones under 'ceil').
 */
function randomConvCase(rng: Rng, index: number, { dilated = true, rounding = true } = {}): ConvCase {
  for (;;) {
    const batch = rng.pick([1, 1, 2, 3]);
    const [inH, inW] = [rng.int(1, 9), rng.int(1, 9)];
    const [inC, outC] = [rng.int(1, 5), rng.int(1, 6)];
    const square = rng.pick([1, 1, 3, 3, 2, 4]);
    const [fH, fW] = rng.next() < 0.75 ? [square, square] : [rng.int(1, 4), rng.int(1, 4)];
    const strides: [number, number] = rng.pick([
      [1, 1],
      [2, 2],
      [2, 2],
      [1, 2],
      [2, 1],
    ] as [number, number][]);
    const dilations: [number, number] =
      dilated && strides[0] === 1 && strides[1] === 1 && rng.next() < 0.3
        ? rng.pick([
            [2, 2],
            [1, 2],
            [2, 1],
          ] as [number, number][])
        : [1, 1];
    const reachH = (fH - 1) * dilations[0] + 1;
    const reachW = (fW - 1) * dilations[1] + 1;
    const kind = rng.pick(['same', 'valid', 'number', 'explicit'] as const);
    let pad: Pad;
    let dimRoundingMode: RoundingMode;
    if (kind === 'same' || kind === 'valid') {
      pad = kind;
    } else if (kind === 'number' && fH === fW && strides[0] === strides[1] && dilations[0] === dilations[1]) {
      // (tfjs sizes both axes of a numeric pad with the filter height and stride: square ones only)
      pad = rng.int(0, reachH - 1);
      dimRoundingMode = rounding ? rng.pick(['floor', 'round', 'ceil', undefined] as RoundingMode[]) : undefined;
    } else {
      pad = [
        [0, 0],
        [rng.int(0, reachH - 1), rng.int(0, reachH - 1)],
        [rng.int(0, reachW - 1), rng.int(0, reachW - 1)],
        [0, 0],
      ];
      dimRoundingMode = rounding ? rng.pick(['floor', 'ceil', undefined] as RoundingMode[]) : undefined;
    }
    const xShape: Shape4D = [batch, inH, inW, inC];
    const filterShape: Shape4D = [fH, fW, inC, outC];
    let info: tf.backend_util.Conv2DInfo;
    try {
      info = tf.backend_util.computeConv2DInfo(xShape, filterShape, strides, dilations, pad, dimRoundingMode);
    } catch {
      continue;
    }
    const { top, bottom, left, right } = info.padInfo;
    if (info.outHeight < 1 || info.outWidth < 1 || inH + top + bottom < reachH || inW + left + right < reachW) {
      continue;
    }
    const label =
      `case ${index} x [${xShape}] filter [${filterShape}] strides [${strides}] dilations ` +
      `[${dilations}] pad ${JSON.stringify(pad)} rounding ${dimRoundingMode} (seed ${rng.seed})`;
    return {
      xShape,
      filterShape,
      strides,
      dilations,
      pad,
      dimRoundingMode,
      x: rng.uniform(tf.util.sizeFromShape(xShape)),
      filter: rng.uniform(tf.util.sizeFromShape(filterShape)),
      outShape: info.outShape as Shape4D,
      label,
    };
  }
}

/** Runs `fn` on both backends and compares every output. */
function compareBackends(fn: () => tf.Tensor | tf.Tensor[], label: string): void {
  const expected = onBackend(REFERENCE, fn);
  const actual = onBackend(NATIVE, fn);
  assert.equal(actual.length, expected.length);
  actual.forEach((a, i) => expectClose(a, expected[i], TOL, `${label} output ${i}`));
}

/** Asserts how `kernels` ran since the last reset: natively with oneDNN, as counted fallbacks without. */
function expectNativeOrCountedFallback(kernels: string[]): void {
  const counts = pactBackend().fallbackCounts();
  for (const k of kernels) {
    if (hasDnnl) assert.equal(counts[k], undefined, `${k} fell back: ${JSON.stringify(counts)}`);
    else assert.ok((counts[k] ?? 0) > 0, `${k} should be a counted fallback without oneDNN`);
  }
}

describe(`pact-cpu dense kernels (${hasDnnl ? 'oneDNN' : 'addon without oneDNN: fallbacks'})`, () => {
  let strictBefore: string | undefined;

  before(() => {
    requirePactCpu();
    strictBefore = process.env.PACT_STRICT_NATIVE;
    if (hasDnnl) process.env.PACT_STRICT_NATIVE = '1';
  });

  after(() => {
    if (strictBefore === undefined) delete process.env.PACT_STRICT_NATIVE;
    else process.env.PACT_STRICT_NATIVE = strictBefore;
  });

  beforeEach(() => {
    tf.setBackend(NATIVE);
    pactBackend().resetFallbackCounts();
  });

  it(`Conv2D matches tfjs-backend-cpu on ${CASES} random convolutions`, () => {
    const rng = freshRng();
    for (let i = 0; i < CASES; ++i) {
      const c = randomConvCase(rng, i);
      compareBackends(
        () =>
          tf.conv2d(
            tf.tensor4d(c.x, c.xShape),
            tf.tensor4d(c.filter, c.filterShape),
            c.strides,
            c.pad,
            'NHWC',
            c.dilations,
            c.dimRoundingMode,
          ),
        c.label,
      );
    }
    expectNativeOrCountedFallback([tf.Conv2D]);
  });

  it(`FusedConv2D (bias, every activation) matches tfjs-backend-cpu on ${CASES} random convolutions`, () => {
    const rng = freshRng();
    const activations: tf.fused.Activation[] = ['linear', 'relu', 'relu6', 'leakyrelu', 'elu', 'sigmoid', 'prelu'];
    for (let i = 0; i < CASES; ++i) {
      const c = randomConvCase(rng, i);
      const outC = c.filterShape[3];
      const activation = activations[i % activations.length];
      const biasShape = rng.pick([[outC], [], [1, 1, 1, outC], null]);
      const bias = biasShape === null ? null : rng.uniform(tf.util.sizeFromShape(biasShape));
      const alpha = rng.uniform(outC, 0, 0.5);
      const leakyreluAlpha = rng.uniform(1, 0.01, 0.5)[0];
      compareBackends(
        () =>
          tf.fused.conv2d({
            x: tf.tensor4d(c.x, c.xShape),
            filter: tf.tensor4d(c.filter, c.filterShape),
            strides: c.strides,
            pad: c.pad,
            dataFormat: 'NHWC',
            dilations: c.dilations,
            dimRoundingMode: c.dimRoundingMode,
            bias: bias === null ? undefined : tf.tensor(bias, biasShape!),
            activation,
            preluActivationWeights: activation === 'prelu' ? tf.tensor1d(alpha) : undefined,
            leakyreluAlpha,
          }),
        `${c.label} bias [${biasShape}] ${activation}`,
      );
    }
    expectNativeOrCountedFallback([tf.FusedConv2D]);
  });

  it(`Conv2DBackpropInput matches tfjs-backend-cpu on ${CASES} random convolutions`, () => {
    const rng = freshRng();
    for (let i = 0; i < CASES; ++i) {
      const c = randomConvCase(rng, i, { dilated: false });
      const dy = rng.uniform(tf.util.sizeFromShape(c.outShape));
      compareBackends(
        () =>
          tf
            .engine()
            .runKernel(
              tf.Conv2DBackpropInput,
              { dy: tf.tensor4d(dy, c.outShape), filter: tf.tensor4d(c.filter, c.filterShape) },
              {
                strides: c.strides,
                pad: c.pad,
                dataFormat: 'NHWC',
                dimRoundingMode: c.dimRoundingMode,
                inputShape: c.xShape,
              } as unknown as tf.NamedAttrMap,
            ) as tf.Tensor,
        c.label,
      );
    }
    expectNativeOrCountedFallback([tf.Conv2DBackpropInput]);
  });

  it(`Conv2DBackpropFilter matches tfjs-backend-cpu on ${CASES} random convolutions`, () => {
    const rng = freshRng();
    for (let i = 0; i < CASES; ++i) {
      const c = randomConvCase(rng, i, { dilated: false });
      const dy = rng.uniform(tf.util.sizeFromShape(c.outShape));
      compareBackends(
        () =>
          tf
            .engine()
            .runKernel(tf.Conv2DBackpropFilter, { x: tf.tensor4d(c.x, c.xShape), dy: tf.tensor4d(dy, c.outShape) }, {
              strides: c.strides,
              pad: c.pad,
              dataFormat: 'NHWC',
              dimRoundingMode: c.dimRoundingMode,
              filterShape: c.filterShape,
            } as unknown as tf.NamedAttrMap) as tf.Tensor,
        c.label,
      );
    }
    expectNativeOrCountedFallback([tf.Conv2DBackpropFilter]);
  });

  it('ResNet-shaped layers (16 to 64 channels, stride-2 and 1x1 shortcuts) match in forward and both gradients', () => {
    // oneDNN takes other code paths (blocked by 8 channels, jit_1x1) than on the few channels of the random cases.
    const rng = freshRng();
    const layers: [Shape4D, Shape4D, number, 'same' | 'valid'][] = [
      [[2, 8, 8, 16], [3, 3, 16, 16], 1, 'same'],
      [[1, 8, 8, 16], [3, 3, 16, 32], 2, 'same'],
      [[2, 8, 8, 32], [1, 1, 32, 64], 2, 'valid'],
      [[1, 4, 4, 64], [3, 3, 64, 64], 1, 'same'],
      [[1, 7, 7, 24], [3, 3, 24, 40], 2, 'valid'],
    ];
    for (const [xShape, filterShape, stride, pad] of layers) {
      const x = rng.uniform(tf.util.sizeFromShape(xShape));
      const filter = rng.uniform(tf.util.sizeFromShape(filterShape));
      const info = tf.backend_util.computeConv2DInfo(xShape, filterShape, stride, 1, pad);
      const w = rng.uniform(tf.util.sizeFromShape(info.outShape));
      compareBackends(() => {
        const [xt, ft] = [tf.tensor4d(x, xShape), tf.tensor4d(filter, filterShape)];
        const loss = (a: tf.Tensor, b: tf.Tensor) =>
          tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, stride, pad), tf.tensor(w, info.outShape)));
        return [tf.conv2d(xt, ft, stride, pad), ...tf.grads(loss)([xt, ft])];
      }, `x [${xShape}] filter [${filterShape}] stride ${stride} ${pad} (seed ${rng.seed})`);
    }
    expectNativeOrCountedFallback([tf.Conv2D, tf.Conv2DBackpropInput, tf.Conv2DBackpropFilter]);
  });

  it("3x3 'same' stride-1 layers with enough images run on Winograd tiles, as oneDNN in all passes", function () {
    const FUSED_ACTIVATIONS = ['linear', 'relu', 'relu6', 'leakyrelu', 'elu', 'sigmoid'] as const;
    // native/cpu/dense_conv.cc, denseConvByTiles: the masked convolution's kernels with every position active, against
    // oneDNN's direct convolution (PACT_CONV_TILES=0; the cases above check it against tfjs-backend-cpu). The
    // F(4x4, 3x3) tiles round more than a direct sum: the tolerance grows with each output's magnitude, the sum of
    // its terms' absolute values (the same pass on |x|, |filter| and |dy|).
    if (!hasDnnl) this.skip();
    const native = nativeAddon()!;
    const threads = native.buildInfo().threads;
    const rng = freshRng();
    const layers: [Shape4D, number][] = [
      [[4 * threads, 20, 20, 16], 16],
      [[8 * threads, 12, 12, 32], 32],
      [[4 * threads, 14, 14, 16], 32], // sides not multiples of 4: partial tiles, the input gradient by tile sums
      [[16 * threads, 8, 8, 64], 64],
    ];
    const tol: Tolerance = { atol: 1e-5, rtol: 1e-5, mtol: 1e-5 };
    const withTiles = <T>(on: boolean, fn: () => T): T => withEnv('PACT_CONV_TILES', on ? '1' : '0', fn);
    for (const [xShape, outC] of layers) {
      const filterShape: Shape4D = [3, 3, xShape[3], outC];
      const outShape: Shape4D = [xShape[0], xShape[1], xShape[2], outC];
      const geometry = [...xShape, xShape[1], xShape[2], outC, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1];
      assert.ok(native.conv2dByTiles!(geometry), `x [${xShape}] to ${outC} channels should take the tiles`);
      const values = [xShape, filterShape, outShape, [outC]].map((s) => rng.uniform(tf.util.sizeFromShape(s)));
      const label = `x [${xShape}] filter [${filterShape}] (seed ${rng.seed})`;
      const passes = ([x, filter, dy, bias]: Float32Array[]) =>
        onBackend(NATIVE, () => {
          const [xt, ft, dyt] = [tf.tensor4d(x, xShape), tf.tensor4d(filter, filterShape), tf.tensor4d(dy, outShape)];
          const attrs = { strides: 1, pad: 'same', dataFormat: 'NHWC', filterShape } as unknown as tf.NamedAttrMap;
          return [
            tf.conv2d(xt, ft, 1, 'same'),
            tf.conv2dTranspose(dyt, ft, xShape, 1, 'same'),
            tf.engine().runKernel(tf.Conv2DBackpropFilter, { x: xt, dy: dyt }, attrs) as tf.Tensor,
            // FusedConv2D: the tiles, then the bias and the activation in place.
            ...FUSED_ACTIVATIONS.map((activation) =>
              tf.fused.conv2d({ x: xt, filter: ft, strides: 1, pad: 'same', bias: tf.tensor1d(bias), activation }),
            ),
          ];
        });
      const actual = withTiles(true, () => passes(values));
      const expected = withTiles(false, () => passes(values));
      const magnitude = withTiles(false, () => passes(values.map((v) => v.map(Math.abs))));
      // The activations are at most 1-Lipschitz: a fused output's magnitude is its sum's, plus |bias|.
      const fusedMagnitude = magnitude[0].map((m, i) => m + Math.abs(values[3][i % outC]));
      ['forward', 'input gradient', 'filter gradient', ...FUSED_ACTIVATIONS].forEach((pass, i) =>
        expectClose(actual[i], expected[i], tol, `${label} ${pass}`, i < 3 ? magnitude[i] : fusedMagnitude),
      );
    }
    expectNativeOrCountedFallback([tf.Conv2D, tf.FusedConv2D, tf.Conv2DBackpropInput, tf.Conv2DBackpropFilter]);
  });

  it('PACT_CONV_TILES=0 keeps convolutions on oneDNN; tiles need 3x3, stride 1, same pads, 16 channels', function () {
    if (!hasDnnl) this.skip();
    const native = nativeAddon()!;
    const batch = 8 * native.buildInfo().threads;
    const geometry = (h: number, c: number, k: number, stride: number, pad: number, outC = c, n = batch) => {
      const out = Math.floor((h + 2 * pad - k) / stride) + 1;
      return [n, h, h, c, out, out, outC, k, k, stride, stride, 1, 1, pad, pad, pad, pad];
    };
    assert.equal(native.conv2dByTiles!(geometry(32, 16, 3, 1, 1)), true);
    assert.equal(native.conv2dByTiles!(geometry(32, 16, 3, 2, 1, 32)), false, 'stride 2');
    assert.equal(native.conv2dByTiles!(geometry(32, 16, 1, 1, 0)), false, '1x1');
    assert.equal(native.conv2dByTiles!(geometry(32, 16, 3, 1, 0)), false, "'valid'");
    assert.equal(native.conv2dByTiles!(geometry(32, 8, 3, 1, 1)), false, '8 channels');
    assert.equal(native.conv2dByTiles!(geometry(32, 16, 3, 1, 1, 16, 1)), false, 'one image');
    withEnv('PACT_CONV_TILES', '0', () =>
      assert.equal(native.conv2dByTiles!(geometry(32, 16, 3, 1, 1)), false, 'PACT_CONV_TILES=0'),
    );
    assert.throws(() => native.conv2dByTiles!([1, 2, 3]), /conv2dByTiles: geometry must have 17 entries/);
  });

  it('narrow outputs (1-2 channels, own loops instead of oneDNN) match in forward and both gradients', () => {
    // native/cpu/narrow_conv.cc: PSACT's halting logits (3x3 to 1 channel). Widths >= 9 so that rows have inside
    // windows in blocks of 4 and border ones; channels with and without a remainder past groups of 8.
    const rng = freshRng();
    for (let i = 0; i < 12; ++i) {
      const inC = rng.pick([8, 12, 16, 32, 64, 3]);
      const outC = rng.pick([1, 2]);
      const [fH, fW] = rng.pick([
        [3, 3],
        [5, 5],
        [1, 3],
        [3, 2],
      ] as [number, number][]);
      const stride = rng.pick([1, 2, [1, 2]] as (number | [number, number])[]);
      const pad = rng.pick(['same', 'valid'] as const);
      const xShape: Shape4D = [rng.int(1, 3), rng.int(9, 13), rng.int(9, 15), inC];
      const filterShape: Shape4D = [fH, fW, inC, outC];
      const x = rng.uniform(tf.util.sizeFromShape(xShape));
      const filter = rng.uniform(tf.util.sizeFromShape(filterShape));
      const info = tf.backend_util.computeConv2DInfo(xShape, filterShape, stride, 1, pad);
      const w = rng.uniform(tf.util.sizeFromShape(info.outShape));
      const label = `x [${xShape}] filter [${filterShape}] stride ${stride} ${pad} (seed ${rng.seed})`;
      compareBackends(() => {
        const [xt, ft] = [tf.tensor4d(x, xShape), tf.tensor4d(filter, filterShape)];
        const loss = (a: tf.Tensor, b: tf.Tensor) =>
          tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, stride, pad), tf.tensor(w, info.outShape)));
        return [tf.conv2d(xt, ft, stride, pad), ...tf.grads(loss)([xt, ft])];
      }, label);
      // Dilated (forward only: tfjs has no dilated conv2d gradient).
      const dilations = rng.pick([
        [2, 2],
        [2, 1],
      ] as [number, number][]);
      compareBackends(
        () => tf.conv2d(tf.tensor4d(x, xShape), tf.tensor4d(filter, filterShape), 1, pad, 'NHWC', dilations),
        `${label} dilations [${dilations}]`,
      );
    }
    expectNativeOrCountedFallback([tf.Conv2D, tf.Conv2DBackpropInput, tf.Conv2DBackpropFilter]);
  });

  it('3x3 convolutions to 1 channel (AVX-512 kernels where the CPU has them) match at the stage widths', () => {
    // native/cpu/narrow_conv.cc's single-channel path: 16-64 input channels, stride 1, 'same' rows of 4, 8 or a
    // multiple of 16 outputs in whole-row blocks (edge blocks skip their padding taps), other widths and pads in
    // inside blocks and border outputs; the backprop-filter's registers over each image. Each case also on AVX2
    // (PACT_CPU_ISA=avx2: the 8-lane loops), and without a CPU with AVX-512 both runs take those.
    const rng = freshRng();
    const cases: Array<[number, number, number, 'same' | 'valid' | number]> = [
      [32, 32, 16, 'same'],
      [16, 16, 32, 'same'],
      [8, 8, 64, 'same'],
      [4, 6, 48, 'same'],
      [3, 4, 32, 'same'],
      [6, 48, 16, 'same'],
      [7, 12, 32, 'same'],
      [5, 5, 16, 'same'],
      [9, 20, 64, 'valid'],
      [8, 16, 16, 2],
    ];
    for (const [h, w, c, pad] of cases) {
      const xShape: Shape4D = [rng.int(1, 3), h, w, c];
      const filterShape: Shape4D = [3, 3, c, 1];
      const x = rng.uniform(tf.util.sizeFromShape(xShape));
      const filter = rng.uniform(tf.util.sizeFromShape(filterShape));
      const info = tf.backend_util.computeConv2DInfo(xShape, filterShape, 1, 1, pad);
      const dy = rng.uniform(tf.util.sizeFromShape(info.outShape));
      for (const isa of ['auto', 'avx2']) {
        withEnv('PACT_CPU_ISA', isa, () =>
          compareBackends(() => {
            const [xt, ft] = [tf.tensor4d(x, xShape), tf.tensor4d(filter, filterShape)];
            const loss = (a: tf.Tensor, b: tf.Tensor) =>
              tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, pad), tf.tensor(dy, info.outShape)));
            return [tf.conv2d(xt, ft, 1, pad), ...tf.grads(loss)([xt, ft])];
          }, `x [${xShape}] pad ${pad} ${isa} (seed ${rng.seed})`),
        );
      }
    }
    expectNativeOrCountedFallback([tf.Conv2D, tf.Conv2DBackpropFilter]);
  });

  it('conv2d gradients through tf.grads match tfjs-backend-cpu on 15 random convolutions and a small convnet', () => {
    const rng = freshRng();
    for (let i = 0; i < 15; ++i) {
      const c = randomConvCase(rng, i, { dilated: false, rounding: false });
      const w = rng.uniform(tf.util.sizeFromShape(c.outShape));
      compareBackends(
        () =>
          tf.grads((x: tf.Tensor, f: tf.Tensor) =>
            tf.sum(tf.mul(tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, c.strides, c.pad), tf.tensor4d(w, c.outShape))),
          )([tf.tensor4d(c.x, c.xShape), tf.tensor4d(c.filter, c.filterShape)]),
        `grads ${c.label}`,
      );
    }
    // conv 3x3 'same' + bias + relu, conv 3x3 stride 2, dense layer: every dense kernel and its gradients.
    const x = rng.uniform(2 * 7 * 7 * 3);
    const f1 = rng.uniform(3 * 3 * 3 * 4);
    const b1 = rng.uniform(4);
    const f2 = rng.uniform(3 * 3 * 4 * 5);
    const dense = rng.uniform(4 * 4 * 5 * 3);
    const outWeights = rng.uniform(2 * 3);
    // A linear read-out of the logits (not their squares): the loss's gradient is then a sum of terms of the
    // size of the result, so float32 rounding stays within TOL instead of cancelling between large terms.
    compareBackends(
      () =>
        tf.grads((f1t: tf.Tensor, b1t: tf.Tensor, f2t: tf.Tensor, dt: tf.Tensor) => {
          const h = tf.relu(tf.add(tf.conv2d(tf.tensor4d(x, [2, 7, 7, 3]), f1t as tf.Tensor4D, 1, 'same'), b1t));
          const g = tf.conv2d(h as tf.Tensor4D, f2t as tf.Tensor4D, 2, 'same');
          return tf.sum(
            tf.mul(tf.matMul(tf.reshape(g, [2, 4 * 4 * 5]), dt as tf.Tensor2D), tf.tensor2d(outWeights, [2, 3])),
          );
        })([
          tf.tensor4d(f1, [3, 3, 3, 4]),
          tf.tensor1d(b1),
          tf.tensor4d(f2, [3, 3, 4, 5]),
          tf.tensor2d(dense, [80, 3]),
        ]),
      `small convnet (seed ${rng.seed})`,
    );
    expectNativeOrCountedFallback([tf.Conv2D, tf.Conv2DBackpropInput, tf.Conv2DBackpropFilter, tf.BatchMatMul]);
  });

  /**
   * Random operand shapes for a product: rank 2 to 4, transposes, and batch broadcasting of the forms
   * tfjs-backend-cpu computes correctly (equal batches, one side's batch all ones, or a shorter batch that is a
   * suffix of the longer one).
   */
  function randomMatMulCase(
    rng: Rng,
    fused = false,
  ): { aShape: number[]; bShape: number[]; transposeA: boolean; transposeB: boolean } {
    const [m, k, n] = [rng.int(1, 9), rng.int(1, 17), rng.int(1, 9)];
    const batch = rng.pick([[], [1], [rng.int(2, 4)], [rng.int(2, 3), rng.int(2, 3)]]);
    // tfjs' fused matMul flattens each batch to one dimension first, so only equal or all-ones batches broadcast.
    const form = rng.pick(
      fused ? (['same', 'aOnes', 'bOnes'] as const) : (['same', 'aOnes', 'bOnes', 'aShorter', 'bShorter'] as const),
    );
    let aBatch = batch;
    let bBatch = batch;
    if (form === 'aOnes') aBatch = batch.map(() => 1);
    if (form === 'bOnes') bBatch = batch.map(() => 1);
    if (form === 'aShorter') aBatch = batch.slice(1);
    if (form === 'bShorter') bBatch = batch.slice(1);
    const transposeA = rng.next() < 0.5;
    const transposeB = rng.next() < 0.5;
    return {
      aShape: [...aBatch, ...(transposeA ? [k, m] : [m, k])],
      bShape: [...bBatch, ...(transposeB ? [n, k] : [k, n])],
      transposeA,
      transposeB,
    };
  }

  it(`BatchMatMul matches tfjs-backend-cpu on ${CASES} random products`, () => {
    const rng = freshRng();
    for (let i = 0; i < CASES; ++i) {
      const s = randomMatMulCase(rng);
      const a = rng.uniform(tf.util.sizeFromShape(s.aShape));
      const b = rng.uniform(tf.util.sizeFromShape(s.bShape));
      compareBackends(
        () => tf.matMul(tf.tensor(a, s.aShape), tf.tensor(b, s.bShape), s.transposeA, s.transposeB),
        `case ${i} ${JSON.stringify(s)} (seed ${rng.seed})`,
      );
    }
    expectNativeOrCountedFallback([tf.BatchMatMul]);
  });

  it('BatchMatMul broadcasts batch dimensions both ways, against a float64 reference', function () {
    // tfjs-backend-cpu pairs batches by index modulo each side's batch size and gets this shape wrong: the
    // reference binds only the native path.
    if (!hasDnnl) this.skip();
    const rng = freshRng();
    const [m, k, n] = [3, 5, 4];
    const a = rng.uniform(2 * 1 * m * k);
    const b = rng.uniform(1 * 3 * k * n);
    const out = onBackend(NATIVE, () => tf.matMul(tf.tensor(a, [2, 1, m, k]), tf.tensor(b, [1, 3, k, n])))[0];
    assert.equal(out.length, 2 * 3 * m * n);
    const expected = new Float64Array(out.length);
    for (let i = 0; i < 2; ++i) {
      for (let j = 0; j < 3; ++j) {
        for (let r = 0; r < m; ++r) {
          for (let c = 0; c < n; ++c) {
            let sum = 0;
            for (let t = 0; t < k; ++t) sum += a[(i * m + r) * k + t] * b[(j * k + t) * n + c];
            expected[((i * 3 + j) * m + r) * n + c] = sum;
          }
        }
      }
    }
    expectClose(out, expected, TOL, `broadcast [2,1] x [1,3] (seed ${rng.seed})`);
  });

  it(`_FusedMatMul (bias, every activation) matches tfjs-backend-cpu on ${CASES} random products`, () => {
    const rng = freshRng();
    const activations: tf.fused.Activation[] = ['linear', 'relu', 'relu6', 'leakyrelu', 'elu', 'sigmoid', 'prelu'];
    for (let i = 0; i < CASES; ++i) {
      const s = randomMatMulCase(rng, true);
      const n = s.transposeB ? s.bShape[s.bShape.length - 2] : s.bShape[s.bShape.length - 1];
      const a = rng.uniform(tf.util.sizeFromShape(s.aShape));
      const b = rng.uniform(tf.util.sizeFromShape(s.bShape));
      const activation = activations[i % activations.length];
      const biasShape = rng.pick([[n], [], null]);
      const bias = biasShape === null ? null : rng.uniform(tf.util.sizeFromShape(biasShape));
      const alpha = rng.uniform(n, 0, 0.5);
      compareBackends(
        () =>
          tf.fused.matMul({
            a: tf.tensor(a, s.aShape),
            b: tf.tensor(b, s.bShape),
            transposeA: s.transposeA,
            transposeB: s.transposeB,
            bias: bias === null ? undefined : tf.tensor(bias, biasShape!),
            activation,
            preluActivationWeights: activation === 'prelu' ? tf.tensor1d(alpha) : undefined,
            leakyreluAlpha: 0.15,
          }),
        `case ${i} ${JSON.stringify(s)} bias [${biasShape}] ${activation} (seed ${rng.seed})`,
      );
    }
    expectNativeOrCountedFallback([tf._FusedMatMul]);
  });

  it('leaves no tensor data behind (fused prelu epilogues dispose their intermediate)', () => {
    const backend = pactBackend();
    const run = () =>
      tf.tidy(() => {
        const x = tf.ones([1, 5, 5, 3]) as tf.Tensor4D;
        const f = tf.ones([3, 3, 3, 4]) as tf.Tensor4D;
        const alpha = tf.fill([4], 0.1);
        const bias = tf.fill([4], -20);
        tf.fused.conv2d({
          x,
          filter: f,
          pad: 'same',
          strides: 1,
          bias,
          activation: 'prelu',
          preluActivationWeights: alpha,
        });
        tf.fused.matMul({
          a: tf.ones([2, 3]),
          b: tf.ones([3, 4]),
          bias,
          activation: 'prelu',
          preluActivationWeights: alpha,
        });
        tf.conv2d(x, f, 2, 'valid');
      });
    run();
    const before = backend.numDataIds();
    for (let i = 0; i < 3; ++i) run();
    assert.equal(backend.numDataIds(), before);
  });

  it('falls back (counted) for NCHW, and for padding not smaller than the filter', function () {
    if (!hasDnnl) this.skip();
    delete process.env.PACT_STRICT_NATIVE;
    const rng = freshRng();
    const x = rng.uniform(1 * 3 * 5 * 5);
    const f = rng.uniform(3 * 3 * 3 * 2);
    const big: Pad = [
      [0, 0],
      [3, 3],
      [0, 0],
      [0, 0],
    ];
    compareBackends(
      () => tf.conv2d(tf.tensor4d(x, [1, 5, 5, 3]), tf.tensor4d(f, [3, 3, 3, 2]), 1, big),
      `pad 3 with a 3x3 filter (seed ${rng.seed})`,
    );
    assert.equal(pactBackend().fallbackCounts()[tf.Conv2D], 1);
    process.env.PACT_STRICT_NATIVE = '1';
    assert.throws(
      () =>
        onBackend(NATIVE, () =>
          tf.conv2d(tf.tensor4d(x, [1, 3, 5, 5]), tf.tensor4d(f, [3, 3, 3, 2]), 1, 'same', 'NCHW'),
        ),
      /Conv2D is not handled natively \(dataFormat NCHW/,
    );
  });
});

describe('dense native functions: argument checks', () => {
  // [batch, inH, inW, inC, outH, outW, outC, fH, fW, strideH, strideW, dilationH, dilationW, top, left, bottom, right]
  const geometry = [2, 5, 5, 3, 5, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1];
  const x = new Float32Array(2 * 5 * 5 * 3);
  const filter = new Float32Array(3 * 3 * 3 * 4);
  const y = new Float32Array(2 * 5 * 5 * 4);

  it('without oneDNN the dense functions are absent and a fresh process warns once, naming libdnnl-dev', function () {
    if (hasDnnl) this.skip();
    const native = nativeAddon()!;
    for (const fn of ['conv2dForward', 'conv2dBackpropInput', 'conv2dBackpropFilter', 'batchMatMul'] as const) {
      assert.equal(native[fn], undefined, `${fn} should be absent`);
    }
    const src = JSON.stringify(path.resolve(__dirname, '../../src'));
    const script =
      `const tf = require("@tensorflow/tfjs"); require(${src});` +
      'for (let i = 0; i < 3; ++i) { tf.matMul(tf.ones([2, 2]), tf.ones([2, 2])); ' +
      "tf.conv2d(tf.ones([1, 3, 3, 1]), tf.ones([1, 1, 1, 1]), 1, 'same'); }";
    const run = spawnSync(process.execPath, ['-r', 'tsx/cjs', '-e', script], { encoding: 'utf8', env: process.env });
    assert.equal(run.status, 0, run.stderr);
    const warnings = run.stderr.split('\n').filter((line) => line.startsWith('tfjs-pact:'));
    assert.equal(warnings.length, 1, run.stderr);
    assert.match(warnings[0], /built without oneDNN.*apt-get install libdnnl-dev/);
  });

  describe('with oneDNN', () => {
    before(function () {
      if (!hasDnnl) this.skip();
    });

    it('makes a new primitive when the thread count changes (oneDNN keeps the count it was created with)', () => {
      // A convolution at 1 thread, then twice at 2: oneDNN's own log (ONEDNN_VERBOSE=2) must show two creations of
      // the convolution primitive, one per thread count (a cached 1-thread primitive ran at half speed ever after).
      const script =
        `const n = require(${JSON.stringify(addonPath())});` +
        'const g = [1, 6, 6, 16, 6, 6, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1];' +
        'const x = new Float32Array(576), f = new Float32Array(2304), y = new Float32Array(576);' +
        "n.setNumThreads(1); n.conv2dForward(g, x, f, null, y, 'linear', 0);" +
        "n.setNumThreads(2); n.conv2dForward(g, x, f, null, y, 'linear', 0);" +
        "n.conv2dForward(g, x, f, null, y, 'linear', 0);";
      const run = spawnSync(process.execPath, ['-e', script], {
        encoding: 'utf8',
        env: { ...process.env, ONEDNN_VERBOSE: '2' },
      });
      assert.equal(run.status, 0, run.stderr);
      const lines = run.stdout.split('\n');
      const created = lines.filter((l) => /^onednn_verbose,create:\w+,cpu,convolution,/.test(l)).length;
      const executed = lines.filter((l) => /^onednn_verbose,exec,cpu,convolution,/.test(l)).length;
      assert.equal(executed, 3, run.stdout);
      assert.equal(created, 2, run.stdout);
    });

    it('runs a valid call, and rejects buffers whose length does not match the geometry', () => {
      const n = nativeAddon()!;
      n.conv2dForward!(geometry, x, filter, null, y, 'linear', 0);
      assert.throws(
        () => n.conv2dForward!(geometry, x.subarray(1), filter, null, y, 'relu', 0),
        /conv2dForward: x must have 150 elements, got 149/,
      );
      assert.throws(
        () => n.conv2dForward!(geometry, x, filter, new Float32Array(3), y, 'relu', 0),
        /conv2dForward: bias must have 4 elements, got 3/,
      );
      assert.throws(
        () => n.conv2dForward!(geometry, x, filter, null, y.subarray(0, 10), 'relu', 0),
        /conv2dForward: y must have 200 elements, got 10/,
      );
      assert.throws(
        () => n.conv2dBackpropInput!(geometry, y, filter.subarray(1), x),
        /conv2dBackpropInput: filter must have 108 elements, got 107/,
      );
      assert.throws(
        () => n.conv2dBackpropInput!(geometry, y, filter, new Float32Array(5)),
        /conv2dBackpropInput: dx must have 150 elements, got 5/,
      );
      assert.throws(
        () => n.conv2dBackpropFilter!(geometry, x, y.subarray(2), filter),
        /conv2dBackpropFilter: dy must have 200 elements, got 198/,
      );
      assert.throws(
        () => n.conv2dBackpropFilter!(geometry, x, y, [] as unknown as Float32Array),
        /conv2dBackpropFilter: dfilter must be a Float32Array/,
      );
    });

    it('rejects inconsistent geometry: strides, pads, output size, entry count', () => {
      const n = nativeAddon()!;
      const withEntry = (i: number, v: number) => geometry.map((g, j) => (j === i ? v : g));
      assert.throws(
        () => n.conv2dForward!(withEntry(9, 0), x, filter, null, y, 'linear', 0),
        /conv2dForward: geometry: height stride must be positive, got 0/,
      );
      assert.throws(
        () => n.conv2dForward!(withEntry(13, 3), x, filter, null, y, 'linear', 0),
        /height pads must be in \[0, 3\)/,
      );
      assert.throws(
        () => n.conv2dForward!(withEntry(15, -1), x, filter, null, y, 'linear', 0),
        /geometry must contain non-negative integers/,
      );
      assert.throws(
        () => n.conv2dForward!(withEntry(4, 6), x, filter, null, y, 'linear', 0),
        /height output size must be 5, got 6/,
      );
      assert.throws(
        () => n.conv2dForward!(geometry.slice(1), x, filter, null, y, 'linear', 0),
        /geometry must have 17 entries, got 16/,
      );
      assert.throws(
        () => n.conv2dBackpropInput!(withEntry(10, 0), y, filter, x),
        /conv2dBackpropInput: geometry: width stride must be positive/,
      );
    });

    it('rejects a bad activation, overlapping output, and mismatched matmul operands', () => {
      const n = nativeAddon()!;
      assert.throws(
        () => n.conv2dForward!(geometry, x, filter, null, y, 'gelu' as 'relu', 0),
        /activation must be one of linear, relu, relu6, leakyrelu, elu, sigmoid, got 'gelu'/,
      );
      const shared = new Float32Array(400);
      assert.throws(
        () => n.conv2dBackpropInput!(geometry, shared.subarray(0, 200), filter, shared.subarray(100, 250)),
        /dx must not overlap an input/,
      );
      const a = new Float32Array(6);
      const b = new Float32Array(12);
      n.batchMatMul!([2, 3], a, [3, 4], b, false, false, null, new Float32Array(8), 'linear', 0);
      assert.throws(
        () => n.batchMatMul!([2, 3], a, [4, 3], b, false, false, null, new Float32Array(8), 'linear', 0),
        /batchMatMul: inner dimensions differ/,
      );
      assert.throws(
        () => n.batchMatMul!([2, 3], a, [3, 4], b, false, false, null, new Float32Array(7), 'linear', 0),
        /batchMatMul: out must have 8 elements, got 7/,
      );
      assert.throws(
        () => n.batchMatMul!([2, 2, 3], a, [3, 3, 4], b, false, false, null, y, 'linear', 0),
        /batchMatMul: a must have 12 elements, got 6/,
      );
      assert.throws(
        () =>
          n.batchMatMul!(
            [2, 1, 3],
            new Float32Array(6),
            [3, 3, 4],
            new Float32Array(36),
            false,
            false,
            null,
            y,
            'linear',
            0,
          ),
        /batch dimensions do not broadcast/,
      );
      assert.throws(
        () => n.batchMatMul!([3], a.subarray(0, 3), [3, 4], b, false, false, null, y, 'linear', 0),
        /operands must have rank 2 to 12/,
      );
    });
  });
});
