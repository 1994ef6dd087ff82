/**
 * Dense convolutions with few output channels (PSACT's halting logits: 3x3 to 1 channel) on pact-cpu's native
 * functions: native/cpu/narrow_conv.cc's loops against oneDNN's primitives, chosen per call with PACT_NARROW_CONV
 * (0: oneDNN; 4: the loops up to 4 channels), alternating in one process, a 64 MiB buffer written between calls so that every call starts with cold
 * caches (as in a training step). Median of --reps runs (default 9), wall ms, at ResNet-32's stage shapes (batch
 * 128) and 1-4 output channels. kNarrowConvMaxOutChannels comes from this.
 *
 *   npx tsx bench/narrow_conv.ts [--reps 9] [--out dir]
 *
 * Prints a Markdown table and writes narrow_conv.md to --out (default bench/results).
 */
import * as fs from 'fs';
import * as path from 'path';

import { nativeAddon } from '../src';
import { argText, argValue, gitCommit, machine, median } from './util';

const addon = nativeAddon();
if (addon === null || !('conv2dForward' in addon)) throw new Error('narrow_conv needs the addon built with oneDNN');
const A = addon;
const reps = argValue('reps', 9);
const out = argText('out', path.join(__dirname, 'results'));
const shapes = [
  [128, 32, 32, 16],
  [128, 16, 16, 32],
  [128, 8, 8, 64],
];
const evict = new Float32Array(16 << 20);
const random = (n: number) => Float32Array.from({ length: n }, () => Math.random() * 2 - 1);

const rows: string[] = [];
for (const [B, H, W, C] of shapes) {
  for (const O of [1, 2, 3, 4]) {
    const x = random(B * H * W * C),
      filter = random(9 * C * O),
      dy = random(B * H * W * O);
    const y = new Float32Array(B * H * W * O),
      dfilter = new Float32Array(9 * C * O);
    const geometry = [B, H, W, C, H, W, O, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1];
    const ops: Record<string, () => void> = {
      forward: () => A.conv2dForward!(geometry, x, filter, null, y, 'linear', 0),
      'backprop-filter': () => A.conv2dBackpropFilter!(geometry, x, dy, dfilter),
    };
    const times: Record<string, number[]> = {};
    for (let r = 0; r <= reps; ++r) {
      for (const [name, op] of Object.entries(ops)) {
        for (const mode of r % 2 ? ['narrow', 'oneDNN'] : ['oneDNN', 'narrow']) {
          if (mode === 'oneDNN') process.env.PACT_NARROW_CONV = '0';
          else process.env.PACT_NARROW_CONV = '4';
          evict.fill(r);
          const start = performance.now();
          op();
          const ms = performance.now() - start;
          if (r > 0) (times[`${name} ${mode}`] ??= []).push(ms);
        }
      }
    }
    delete process.env.PACT_NARROW_CONV;
    const cells = Object.keys(ops).flatMap((name) => {
      const [d, n] = [median(times[`${name} oneDNN`]), median(times[`${name} narrow`])];
      return [d.toFixed(2), n.toFixed(2), (d / n).toFixed(2)];
    });
    rows.push(`| ${B}x${H}x${W}x${C} | ${O} | ${cells.join(' | ')} |`);
    console.log(rows[rows.length - 1]);
  }
}

const m = machine();
const table = [
  '# Dense convolutions to 1-4 channels: own loops vs oneDNN (pact-cpu native functions)',
  '',
  `${new Date().toISOString()}, commit ${gitCommit()}, ${m.cpu} x${m.cores}, load average ` +
    `${(m.loadAverage as number[]).map((v) => v.toFixed(1)).join(' ')}; median of ${reps} alternating runs, wall ` +
    `ms, caches cold. Command: \`npx tsx bench/narrow_conv.ts ${process.argv.slice(2).join(' ')}\``.trim() +
    '. 3x3 filter, stride 1, same padding. pact-cpu uses ' +
    'the loops up to kNarrowConvMaxOutChannels = 2 output channels (native/cpu/narrow_conv.h).',
  '',
  '| x | out channels | forward oneDNN | forward loops | speedup | backprop-filter oneDNN | backprop-filter loops | speedup |',
  '|---|---|---|---|---|---|---|---|',
  ...rows,
  '',
];
fs.mkdirSync(out, { recursive: true });
fs.writeFileSync(path.join(out, 'narrow_conv.md'), table.join('\n'));
