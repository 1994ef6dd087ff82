/**
 * Same-process A/B of two builds of the addon on the masked convolution's native kernels: both .node files loaded in
 * one process (each dlopen'ed on its own, so each runs its own code), calls alternating A, B, A, B on the same
 * arrays, so that the machine's drifts hit both alike. Prints, per shape, mask kind, active fraction and kernel, the
 * minimum times (warm-up runs dropped) and the median over the runs of B's time / A's. The "same-process A/B"
 * figures in bench/README.md and the native sources' comments come from this (and, before it was committed, from
 * the scratch script it was made from).
 *
 *   npx tsx bench/addon_ab.ts --a OLD/build/Release/pact.node --b build/Release/pact.node
 *       [--shapes 128,32,32,16;128,16,16,32] [--densities 0.1,0.25,0.5] [--masks pixel,block4]
 *       [--kinds fwd,bi,bf] [--reps 20] [--algo 0] [--zeroed 1]
 *
 * Build A from another checkout (`git worktree add /tmp/old <commit>`, then `npx cmake-js compile` there). --algo is
 * native/cpu/masked_conv2d.h's MaskedAlgo (0 automatic, 1 sparse, 2 dense, 3 sparse without Winograd). --zeroed 1
 * passes outputZeroed to the forward and the input gradient, as the backend does with a buffer from its zero pool
 * (the output's inactive rows are then left as they are: times only).
 */
import * as path from 'path';

import { Rng } from '../test/helpers/random';
import { argText, argValue, blockMask, median } from './util';

type Addon = Record<string, (...args: unknown[]) => unknown>;

const list = (text: string) => text.split(',').filter((s) => s !== '');
// An addon is a native module: require loads it (as src/native/binding.ts does).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const load = (file: string): Addon => require(path.resolve(file)) as Addon;
const A = load(argText('a')),
  B = load(argText('b'));
const shapes = argText('shapes', '128,32,32,16;128,16,16,32;128,8,8,64')
  .split(';')
  .map((s) => list(s).map(Number));
const densities = list(argText('densities', '0.1,0.25,0.5')).map(Number);
const masks = list(argText('masks', 'pixel,block4'));
const kinds = list(argText('kinds', 'fwd,bi,bf'));
const reps = argValue('reps', 20);
const algo = Number(argText('algo', '0'));
const zeroedText = argText('zeroed', '0');
const zeroed = zeroedText === '1';
const WARMUP = 2;

for (const s of shapes) {
  if (s.length !== 4 || s.some((v) => !Number.isInteger(v) || v <= 0)) {
    throw new Error(`--shapes must be batch,height,width,channels entries separated by ';', got ${s}`);
  }
}
for (const m of masks) {
  if (m !== 'pixel' && m !== 'block4') throw new Error(`--masks must hold pixel and/or block4, got ${m}`);
}
if (![0, 1, 2, 3].includes(algo)) throw new Error(`--algo must be 0, 1, 2 or 3 (MaskedAlgo), got ${argText('algo')}`);
if (zeroedText !== '0' && zeroedText !== '1') throw new Error(`--zeroed must be 0 or 1, got ${zeroedText}`);
for (const k of kinds) {
  if (!['fwd', 'bi', 'bf'].includes(k)) throw new Error(`--kinds must hold fwd, bi and/or bf, got ${k}`);
}

const rng = new Rng(1);
for (const [b, h, w, c] of shapes) {
  const x = rng.normal(b * h * w * c),
    f = rng.normal(9 * c * c),
    dy = rng.normal(b * h * w * c);
  const out = new Float32Array(b * h * w * c),
    df = new Float32Array(9 * c * c);
  const g = [
    [b, h, w, c],
    [3, 3, c, c],
    [1, 1],
    [1, 1, 1, 1],
  ];
  for (const kind of masks) {
    for (const d of densities) {
      const m = blockMask(rng, b, h, w, d, kind === 'block4' ? 4 : 1);
      const line: string[] = [];
      for (const k of kinds) {
        const call = (M: Addon) => {
          if (k === 'fwd') M.maskedConv2d(...g, x, f, m, out, algo, zeroed);
          else if (k === 'bi') M.maskedConv2dBackpropInput(...g, dy, f, m, out, algo, zeroed);
          else M.maskedConv2dBackpropFilter(...g, x, dy, m, df, algo);
        };
        const ta: number[] = [],
          tb: number[] = [];
        for (let r = 0; r < reps + WARMUP; ++r) {
          for (const [M, times] of [
            [A, ta],
            [B, tb],
          ] as const) {
            const t = performance.now();
            call(M);
            times.push(performance.now() - t);
          }
        }
        const a = ta.slice(WARMUP),
          bt = tb.slice(WARMUP);
        const ratio = median(bt.map((v, i) => v / a[i]));
        line.push(
          `${k} ${Math.min(...a).toFixed(3)} -> ${Math.min(...bt).toFixed(3)} ms ` +
            `(${(Math.min(...bt) / Math.min(...a)).toFixed(2)}x, median ${ratio.toFixed(2)}x)`,
        );
      }
      console.log(`${b}x${h}x${w}x${c} ${kind} d=${d}: ${line.join(' | ')}`);
    }
  }
}
