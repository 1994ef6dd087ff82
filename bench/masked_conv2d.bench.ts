/**
 * maskedConv2d and maskedResidualUnit on pact-cpu at ResNet-32's three stage shapes (batch 128, 3×3, stride 1),
 * densities {0.05, 0.1, 0.25, 0.5, 0.75, 1}, pixel-random and 4×4-block masks, against, in the same run:
 *   - dense: tf.conv2d on pact-cpu (the native dense kernels: at these shapes the masked kernels' Winograd tiles with
 *     every position active, native/cpu/dense_conv.h), or the dense pre-activation unit;
 *   - oneDNN: tf.conv2d with PACT_CONV_TILES=0, oneDNN's direct convolution (pact-cpu's dense kernel before the
 *     tiles, and what PyTorch runs on this CPU);
 *   - dense SACT: the same dense computation, then multiplied by the mask.
 * Forward and forward+backward (tf.grads with a given dy: both backprops) times, minimum of --reps runs after one
 * warm-up (contenders alternate; see timeAll); ratios are the median over the runs of masked / dense within a run
 * (pairs measured back to back share the machine's load; the minima of two series need not). The targets on
 * the masked conv: time(d) <= (d + 0.1) x dense for d >= 0.1 with block masks, <= (d + 0.2) x dense with pixel
 * masks, <= 1.15 x dense at d = 1; the table applies them against both dense convolutions.
 *
 *   npx tsx bench/masked_conv2d.bench.ts [--reps 3] [--clock wall|cpu] [--shapes 0,1,2] [--no-unit] [--out dir]
 * writes masked_conv2d.json (every figure, the machine, date, commit, load) and masked_conv2d.md.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import * as tf from '@tensorflow/tfjs';

import { nativeAddon, PACT_CPU, pactCpuStatus, PactCpuBackend } from '../src';
import { batchNormReluTrain } from '../src/ops/batch_norm_train';
import { maskedConv2d } from '../src/ops/masked_conv2d';
import { maskedResidualUnit, MaskedResidualUnitParams } from '../src/ops/masked_residual_unit';
import { Rng } from '../test/helpers/random';
import { withEnv } from '../test/helpers/env';
import { blockMask, gitCommit } from './util';

const DENSITIES = [0.05, 0.1, 0.25, 0.5, 0.75, 1];
const MASKS = ['pixel', 'block4'] as const;
const SHAPES: Array<[number, number, number, number]> = [
  [128, 32, 32, 16],
  [128, 16, 16, 32],
  [128, 8, 8, 64],
];

type Clock = 'wall' | 'cpu';

interface Args {
  reps: number;
  clock: Clock;
  shapes: number[];
  unit: boolean;
  out: string;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { reps: 3, clock: 'wall', shapes: [0, 1, 2], unit: true, out: path.join(__dirname, 'results') };
  for (let i = 0; i < argv.length; ++i) {
    if (argv[i] === '--reps') args.reps = Number(argv[++i]);
    else if (argv[i] === '--clock') args.clock = argv[++i] === 'cpu' ? 'cpu' : 'wall';
    else if (argv[i] === '--shapes') args.shapes = argv[++i].split(',').map(Number);
    else if (argv[i] === '--no-unit') args.unit = false;
    else if (argv[i] === '--out') args.out = argv[++i];
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  return args;
}

/**
 * Times in ms of several functions, each the minimum of `reps` runs after one warm-up, the functions run in turn
 * within each repetition: on a shared machine interference only adds time, and alternating the contenders exposes
 * them to the same load. `wall` is elapsed time; `cpu` is the process's CPU time (user + system, every thread):
 * the work done, which waiting for a busy machine's cores does not inflate (with PACT_NUM_THREADS=1 it is the
 * single-thread run time).
 */
function timeAll(reps: number, clock: Clock, fns: Array<() => tf.Tensor | tf.Tensor[]>): Timed {
  const now = () => {
    if (clock === 'wall') return Number(process.hrtime.bigint()) / 1e6;
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e3;
  };
  // pact-cpu's kernels have finished when they return: the outputs are disposed unread, as in a training step, so
  // that they go back to the buffer pool (a read output never does; each run would then pay a fresh 8 MiB array's
  // zeroing and page faults, as no training step does).
  const once = (fn: () => tf.Tensor | tf.Tensor[]) => {
    const t0 = now();
    tf.tidy(() => {
      fn();
    });
    return now() - t0;
  };
  const runs: number[][] = fns.map(() => []);
  for (let r = 0; r <= reps; ++r) {
    fns.forEach((fn, i) => {
      const t = once(fn);
      if (r > 0) runs[i].push(t);
    });
  }
  return { best: runs.map((times) => Math.min(...times)), runs };
}

/** Per-function minima, and every run's time (runs[i][r]: function i in repetition r). */
interface Timed {
  best: number[];
  runs: number[][];
}

/** Median over the repetitions of runs[i][r] / runs[j][r]. */
function pairedRatio({ runs }: Timed, i: number, j: number): number {
  const ratios = runs[i].map((t, r) => t / runs[j][r]).sort((a, b) => a - b);
  const mid = ratios.length >> 1;
  return ratios.length % 2 === 1 ? ratios[mid] : (ratios[mid - 1] + ratios[mid]) / 2;
}

function mask(rng: Rng, b: number, h: number, w: number, density: number, kind: (typeof MASKS)[number]): tf.Tensor3D {
  return tf.tensor3d(blockMask(rng, b, h, w, density, kind === 'pixel' ? 1 : 4), [b, h, w]);
}

interface Times {
  fwd: number;
  fwdBwd: number;
}

interface Row {
  shape: string;
  mask: string;
  density: number;
  activeFraction: number;
  /**
   * Masked conv, dense conv, dense SACT (dense conv times the mask) and the dense conv on oneDNN, measured together;
   * ratio: masked / dense, ratioOneDnn: masked / oneDNN.
   */
  conv: Contenders & { oneDnn: Times; ratioOneDnn: Times };
  /**
   * Forward+backward of the masked conv and of the dense conv (timed together) when dy is already 0 outside the
   * mask, as in PSACT's u + f(u)·a: the masked backprops then skip their masked copy of dy on the dense path.
   */
  convDyMasked: { masked: number; dense: number; ratio: number; oneDnn: number; ratioOneDnn: number };
  /** The same for the residual unit: maskedResidualUnit, the dense unit, the dense unit's branch times the mask. */
  unit?: Contenders;
  target: number;
  /** Against the dense conv, and against oneDNN's. */
  meetsTarget: { fwd: boolean; fwdBwd: boolean };
  meetsTargetOneDnn: { fwd: boolean; fwdBwd: boolean };
}

interface Contenders {
  masked: Times;
  dense: Times;
  denseSact: Times;
  ratio: Times;
}

/** fn() with PACT_CONV_TILES=0: pact-cpu's dense convolutions on oneDNN, forward and gradients. */
function onOneDnn<T>(fn: () => T): T {
  return withEnv('PACT_CONV_TILES', '0', fn);
}

/**
 * Forward and forward+backward times of the contenders [masked, dense, dense SACT] of one input, and with
 * `oneDnnToo` a fourth, the dense one again on oneDNN (`oneDnn`, `ratioOneDnn`).
 */
type ContenderFns = Array<(...t: tf.Tensor[]) => tf.Tensor>;
function contenders(reps: number, clock: Clock, fns: ContenderFns, inputs: tf.Tensor[], dy: tf.Tensor): Contenders;
function contenders(
  reps: number,
  clock: Clock,
  fns: ContenderFns,
  inputs: tf.Tensor[],
  dy: tf.Tensor,
  oneDnnToo: true,
): Row['conv'];
function contenders(
  reps: number,
  clock: Clock,
  fns: ContenderFns,
  inputs: tf.Tensor[],
  dy: tf.Tensor,
  oneDnnToo = false,
): Contenders | Row['conv'] {
  const all = oneDnnToo ? [...fns, fns[1]] : fns;
  const run = (i: number, fn: () => tf.Tensor | tf.Tensor[]) => (i === 3 ? () => onOneDnn(fn) : fn);
  const fwd = timeAll(
    reps,
    clock,
    all.map((f, i) => run(i, () => f(...inputs))),
  );
  const fwdBwd = timeAll(
    reps,
    clock,
    all.map((f, i) => run(i, () => tf.grads(f)(inputs, dy))),
  );
  const pick = (i: number) => ({ fwd: fwd.best[i], fwdBwd: fwdBwd.best[i] });
  const ratio = (j: number) => ({ fwd: pairedRatio(fwd, 0, j), fwdBwd: pairedRatio(fwdBwd, 0, j) });
  return {
    masked: pick(0),
    dense: pick(1),
    denseSact: pick(2),
    ratio: ratio(1),
    ...(oneDnnToo ? { oneDnn: pick(3), ratioOneDnn: ratio(3) } : {}),
  };
}

function unitParams(rng: Rng, c: number): MaskedResidualUnitParams {
  return {
    bn1: { scale: tf.tensor1d(rng.uniform(c, 0.5, 1.5)), offset: tf.tensor1d(rng.uniform(c, -0.1, 0.1)) },
    conv1: tf.tensor4d(
      rng.normal(9 * c * c).map((v) => v * 0.1),
      [3, 3, c, c],
    ),
    bn2: { scale: tf.tensor1d(rng.uniform(c, 0.5, 1.5)), offset: tf.tensor1d(rng.uniform(c, -0.1, 0.1)) },
    conv2: tf.tensor4d(
      rng.normal(9 * c * c).map((v) => v * 0.1),
      [3, 3, c, c],
    ),
  };
}

/** The dense pre-activation unit's branch f(u) (native batch norm and conv on pact-cpu). */
function denseBranch(u: tf.Tensor4D, p: MaskedResidualUnitParams): tf.Tensor4D {
  const h1 = batchNormReluTrain(u, p.bn1.scale, p.bn1.offset).y as tf.Tensor4D;
  const h2 = batchNormReluTrain(tf.conv2d(h1, p.conv1, 1, 'same'), p.bn2.scale, p.bn2.offset).y as tf.Tensor4D;
  return tf.conv2d(h2, p.conv2, 1, 'same');
}

function target(kind: string, d: number): number {
  if (d === 1) return 1.15;
  return d + (kind === 'pixel' ? 0.2 : 0.1);
}

function main(): void {
  const args = parseArgs(process.argv.slice(2));
  if (!pactCpuStatus.registered) throw new Error(`pact-cpu is not registered: ${pactCpuStatus.reason}`);
  tf.setBackend(PACT_CPU);
  const backend = tf.backend() as PactCpuBackend;
  const rng = new Rng(20261125);
  const rows: Row[] = [];
  for (const si of args.shapes) {
    const [b, h, w, c] = SHAPES[si];
    const shape = `${h}x${w}x${c}`;
    const x = tf.tensor4d(rng.normal(b * h * w * c), [b, h, w, c]);
    const filter = tf.tensor4d(
      rng.normal(9 * c * c).map((v) => v * 0.1),
      [3, 3, c, c],
    );
    const dy = tf.tensor4d(rng.normal(b * h * w * c), [b, h, w, c]);
    const params = unitParams(rng, c);
    const convFn = (a: tf.Tensor, f: tf.Tensor) => tf.conv2d(a as tf.Tensor4D, f as tf.Tensor4D, 1, 'same');
    const denseUnit = (u: tf.Tensor) => tf.add(u, denseBranch(u as tf.Tensor4D, params));
    backend.resetFallbackCounts();
    for (const kind of MASKS) {
      for (const d of DENSITIES) {
        const m = mask(rng, b, h, w, d, kind);
        const m4 = tf.expandDims(m, 3);
        const activeFraction = tf.mean(m).dataSync()[0];
        const conv = contenders(
          args.reps,
          args.clock,
          [
            (a, f) => maskedConv2d(a as tf.Tensor4D, f as tf.Tensor4D, m, 1, 'same'),
            convFn,
            (a, f) => tf.mul(convFn(a, f), m4),
          ],
          [x, filter],
          dy,
          true,
        );
        const dyMasked = tf.mul(dy, m4);
        const timedDyMasked = timeAll(args.reps, args.clock, [
          () =>
            tf.grads((a, f) => maskedConv2d(a as tf.Tensor4D, f as tf.Tensor4D, m, 1, 'same'))([x, filter], dyMasked),
          () => tf.grads(convFn)([x, filter], dyMasked),
          () => onOneDnn(() => tf.grads(convFn)([x, filter], dyMasked)),
        ]);
        const convDyMasked = {
          masked: timedDyMasked.best[0],
          dense: timedDyMasked.best[1],
          ratio: pairedRatio(timedDyMasked, 0, 1),
          oneDnn: timedDyMasked.best[2],
          ratioOneDnn: pairedRatio(timedDyMasked, 0, 2),
        };
        const unit = args.unit
          ? contenders(
              args.reps,
              args.clock,
              [
                (u) => maskedResidualUnit(u as tf.Tensor4D, params, m),
                denseUnit,
                (u) => tf.add(u, tf.mul(denseBranch(u as tf.Tensor4D, params), m4)),
              ],
              [x],
              dy,
            )
          : undefined;
        const t = target(kind, d);
        rows.push({
          shape,
          mask: kind,
          density: d,
          activeFraction,
          conv,
          convDyMasked,
          unit,
          target: t,
          meetsTarget: {
            fwd: conv.ratio.fwd <= t,
            fwdBwd: conv.ratio.fwdBwd <= t,
          },
          meetsTargetOneDnn: {
            fwd: conv.ratioOneDnn.fwd <= t,
            fwdBwd: conv.ratioOneDnn.fwdBwd <= t,
          },
        });
        const f = (v: number) => v.toFixed(2);
        console.log(
          `${shape} ${kind} d=${d}: conv masked ${f(conv.masked.fwd)} / ${f(conv.masked.fwdBwd)} ms, ` +
            `dense ${f(conv.dense.fwd)} / ${f(conv.dense.fwdBwd)}, ` +
            `oneDNN ${f(conv.oneDnn.fwd)} / ${f(conv.oneDnn.fwdBwd)}, ` +
            `SACT ${f(conv.denseSact.fwd)} / ${f(conv.denseSact.fwdBwd)} ` +
            `(ratio ${f(conv.ratio.fwd)} / ${f(conv.ratio.fwdBwd)}, to oneDNN ${f(conv.ratioOneDnn.fwd)} / ` +
            `${f(conv.ratioOneDnn.fwdBwd)}, ` +
            `target ${f(t)}; f+b with dy 0 outside: ${f(convDyMasked.masked)} vs ${f(convDyMasked.dense)})` +
            (unit
              ? `; unit masked ${f(unit.masked.fwd)} / ${f(unit.masked.fwdBwd)}, dense ${f(unit.dense.fwd)} / ` +
                `${f(unit.dense.fwdBwd)}, SACT ${f(unit.denseSact.fwd)} / ${f(unit.denseSact.fwdBwd)}`
              : ''),
        );
        tf.dispose([m, m4, dyMasked]);
      }
    }
    const fallbacks = backend.fallbackCounts();
    if (Object.keys(fallbacks).length > 0)
      console.log(`${shape}: kernels that fell back to tfjs-backend-cpu: ${JSON.stringify(fallbacks)}`);
    tf.dispose([
      x,
      filter,
      dy,
      params.conv1,
      params.conv2,
      params.bn1.scale,
      params.bn1.offset,
      params.bn2.scale,
      params.bn2.offset,
    ]);
  }
  writeResults(args, rows, backend.fallbackCounts());
}

function writeResults(args: Args, rows: Row[], fallbacks: Record<string, number>): void {
  const info = nativeAddon()!.buildInfo();
  const meta = {
    date: new Date().toISOString(),
    commit: gitCommit(),
    machine: {
      cpu: os.cpus()[0]?.model ?? 'unknown',
      cores: os.cpus().length,
      threads: info.threads,
      loadAverage: os.loadavg(),
      dnnl: info.dnnl,
      node: process.version,
    },
    reps: args.reps,
    clock: args.clock,
    command: `npx tsx bench/masked_conv2d.bench.ts ${process.argv.slice(2).join(' ')}`.trim(),
  };
  fs.mkdirSync(args.out, { recursive: true });
  fs.writeFileSync(
    path.join(args.out, 'masked_conv2d.json'),
    JSON.stringify({ ...meta, fallbacks, rows }, null, 2) + '\n',
  );
  const f = (v: number) => v.toFixed(2);
  const withUnit = rows[0]?.unit !== undefined;
  const lines = [
    '# maskedConv2d on pact-cpu (batch 128, 3x3, stride 1)',
    '',
    `${meta.date}, commit ${meta.commit}, ${meta.machine.cpu} x${meta.machine.cores}, ${info.threads} threads, ` +
      `load average ${meta.machine.loadAverage.map((l) => l.toFixed(1)).join(' ')} (a shared machine: absolute ` +
      `times are inflated, ratios measured side by side hold better), ${args.reps} alternating runs, ` +
      `${args.clock === 'cpu' ? 'CPU time (user + system)' : 'wall time'}: times are the minimum, ratios the median ` +
      'over the runs of masked / dense within a run. ' +
      `Command: \`${meta.command}\`.`,
    '',
    'Times in ms. ratio = masked / dense (tf.conv2d on pact-cpu: Winograd tiles at these shapes), ' +
      "the median of the runs' " +
      "ratios; oneDNN = tf.conv2d with PACT_CONV_TILES=0 (oneDNN's direct convolution), ratio' = masked / oneDNN; " +
      'SACT = dense conv times the mask; ' +
      'target as in issue 4: (d + 0.1) with block masks, (d + 0.2) with pixel masks, 1.15 at d = 1; ' +
      'met against dense, ' +
      'met (oneDNN) against oneDNN. ' +
      'f+b (dy 0 out): forward+backward of the masked and the dense conv (timed together) when dy is already 0 outside ' +
      "the mask, as in PSACT's u + f(u)·a (the masked backprops then read dy as it is on their dense path); met' " +
      'applies the target to it.' +
      (withUnit ? ' unit: maskedResidualUnit vs the dense pre-activation unit and the dense unit times the mask.' : ''),
    '',
    '| shape | mask | d | dense fwd | masked fwd | ratio | SACT fwd | dense f+b | masked f+b | ratio | SACT f+b | ' +
      "oneDNN fwd | ratio' | oneDNN f+b | ratio' | target | met | met (oneDNN) | f+b (dy 0 out) | ratio | met' |" +
      (withUnit ? ' unit f+b | dense unit f+b | SACT unit f+b |' : ''),
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|' +
      (withUnit ? '---|---|---|' : ''),
  ];
  for (const r of rows) {
    const { masked, dense, denseSact } = r.conv;
    const ratioDyMasked = r.convDyMasked.ratio;
    const metDyMasked = r.meetsTarget.fwd && ratioDyMasked <= r.target ? 'yes' : 'no';
    const metText = (m: { fwd: boolean; fwdBwd: boolean }) =>
      m.fwd && m.fwdBwd ? 'yes' : m.fwd ? 'fwd only' : m.fwdBwd ? 'f+b only' : 'no';
    lines.push(
      `| ${r.shape} | ${r.mask} | ${r.density} | ${f(dense.fwd)} | ${f(masked.fwd)} | ` +
        `${f(r.conv.ratio.fwd)} | ${f(denseSact.fwd)} | ${f(dense.fwdBwd)} | ${f(masked.fwdBwd)} | ` +
        `${f(r.conv.ratio.fwdBwd)} | ${f(denseSact.fwdBwd)} | ` +
        `${f(r.conv.oneDnn.fwd)} | ${f(r.conv.ratioOneDnn.fwd)} | ` +
        `${f(r.conv.oneDnn.fwdBwd)} | ${f(r.conv.ratioOneDnn.fwdBwd)} | ${f(r.target)} | ${metText(r.meetsTarget)} | ` +
        `${metText(r.meetsTargetOneDnn)} | ` +
        `${f(r.convDyMasked.masked)} | ${f(ratioDyMasked)} | ${metDyMasked} |` +
        (r.unit ? ` ${f(r.unit.masked.fwdBwd)} | ${f(r.unit.dense.fwdBwd)} | ${f(r.unit.denseSact.fwdBwd)} |` : ''),
    );
  }
  const counted = rows.filter((r) => r.density >= 0.1);
  const met = counted.filter((r) => r.meetsTarget.fwd && r.meetsTarget.fwdBwd).length;
  const metOneDnn = counted.filter((r) => r.meetsTargetOneDnn.fwd && r.meetsTargetOneDnn.fwdBwd).length;
  const metDyMasked = counted.filter((r) => r.meetsTarget.fwd && r.convDyMasked.ratio <= r.target).length;
  lines.push(
    '',
    `Targets met (forward and forward+backward, d >= 0.1): against tf.conv2d as pact-cpu runs it ${met} of ` +
      `${counted.length} rows; against oneDNN's direct convolution ${metOneDnn} of ${counted.length}; ` +
      `with dy 0 outside the mask (forward and that forward+backward, against tf.conv2d): ${metDyMasked} of ` +
      `${counted.length}.`,
    '',
  );
  fs.writeFileSync(path.join(args.out, 'masked_conv2d.md'), lines.join('\n'));
  console.log(lines.slice(-2).join('\n'));
}

main();
