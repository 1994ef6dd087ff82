/**
 * pact-cpu's two dense convolutions side by side on the native calls: oneDNN's direct convolution
 * (conv2dForward and its gradients with PACT_CONV_TILES=0) against the masked convolution's kernels with an
 * all-active mask (maskedConv2d and its gradients: what those run where `conv2dByTiles` says so,
 * native/cpu/dense_conv.h, and what they would run elsewhere), alternating in one process on the same arrays. Per
 * shape (batch, height, width, channels; 3x3 'same', stride 1, channels in = out): whether the rule takes the tiles,
 * and per pass the two minima and the median over the runs of masked / oneDNN. These are the figures behind
 * masked::denseByTiles (native/cpu/masked_conv2d.cc).
 *
 *   npx tsx bench/conv_tiles.ts [--shapes 128,32,32,16;128,16,16,32;128,8,8,64] [--reps 12]
 *
 * Run with PACT_CPU_ISA=avx2 DNNL_MAX_CPU_ISA=AVX2 for both on AVX2.
 */
import { nativeAddon } from '../src';
import { Rng } from '../test/helpers/random';
import { withEnv } from '../test/helpers/env';
import { argText, argValue, elapsedMs, median } from './util';

const native = nativeAddon();
if (native?.conv2dForward === undefined || native.conv2dByTiles === undefined) {
  throw new Error('conv_tiles needs the addon built with oneDNN');
}
const addon = native as Required<typeof native>;
const shapes = argText('shapes', '128,32,32,16;128,16,16,32;128,8,8,64')
  .split(';')
  .map((s) => s.split(',').map(Number));
const reps = argValue('reps', 12);
const rng = new Rng(1);
for (const [B, H, W, C] of shapes) {
  const geometry = [B, H, W, C, H, W, C, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1];
  const [x, dy, filter] = [rng.uniform(B * H * W * C), rng.uniform(B * H * W * C), rng.uniform(9 * C * C)];
  const [y, dx, dfilter] = [
    new Float32Array(B * H * W * C),
    new Float32Array(B * H * W * C),
    new Float32Array(9 * C * C),
  ];
  const ones = new Float32Array(B * H * W).fill(1);
  const bias = rng.uniform(C);
  const conv: [number[], number[], number[], number[]] = [
    [B, H, W, C],
    [3, 3, C, C],
    [1, 1],
    [1, 1, 1, 1],
  ];
  const passes: Array<[string, () => void, () => void]> = [
    [
      'forward',
      () => addon.conv2dForward(geometry, x, filter, null, y, 'linear', 0.2),
      () => addon.maskedConv2d(...conv, x, filter, ones, y, 0),
    ],
    [
      'input gradient',
      () => addon.conv2dBackpropInput(geometry, dy, filter, dx),
      () => addon.maskedConv2dBackpropInput(...conv, dy, filter, ones, dx, 0),
    ],
    [
      'forward + bias + relu (tf.conv2d, tiles on)',
      () => addon.conv2dForward(geometry, x, filter, bias, y, 'relu', 0.2),
      () => withEnv('PACT_CONV_TILES', '1', () => addon.conv2dForward(geometry, x, filter, bias, y, 'relu', 0.2)),
    ],
    [
      'filter gradient',
      () => addon.conv2dBackpropFilter(geometry, x, dy, dfilter),
      () => addon.maskedConv2dBackpropFilter(...conv, x, dy, ones, dfilter, 0),
    ],
  ];
  const results = passes.map(([name, dense, masked]) => {
    const oneDnn: number[] = [];
    const tiles: number[] = [];
    for (let r = 0; r <= reps; ++r) {
      const a = withEnv('PACT_CONV_TILES', '0', () => elapsedMs(dense));
      const b = elapsedMs(masked);
      if (r > 0) {
        oneDnn.push(a);
        tiles.push(b);
      }
    }
    const ratio = median(tiles.map((t, i) => t / oneDnn[i]));
    return `${name} ${Math.min(...oneDnn).toFixed(3)} / ${Math.min(...tiles).toFixed(3)} ms (${ratio.toFixed(2)})`;
  });
  const rule = addon.conv2dByTiles(geometry) ? 'tf.conv2d takes the tiles' : 'tf.conv2d stays on oneDNN';
  console.log(`${B}x${H}x${W}x${C} (${rule}): oneDNN / masked, all active: ${results.join(', ')}`);
}
