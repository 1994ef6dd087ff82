/**
 * Elementwise ops and reductions on one ResNet stage-1 activation ([128,32,32,16], 2.1 M floats): ms per op on
 * pact-cpu and on tfjs-backend-cpu measured in the same run, and the ratio; then the same work as direct calls of
 * the addon into preallocated outputs (the kernels alone, without tfjs' fresh output allocation) with their
 * effective bandwidth. Short run (a few seconds).
 *
 *   PACT_ADDON=$PWD/build-elem/Release/pact.node npx tsx bench/elementwise.bench.ts
 *
 * Prints a table and writes bench/results/elementwise.json.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import * as tf from '@tensorflow/tfjs';

import { nativeAddon, PACT_CPU, pactCpuStatus } from '../src';
import type { PactAddon } from '../src/native/binding';
import { gitCommit } from './util';

const SHAPE = [128, 32, 32, 16];
const PACT_REPEATS = 30;
const CPU_REPEATS = 3;

/** The inputs of every case: x, y of SHAPE and a channel vector c, as tensors and as the addon's arrays. */
interface Inputs {
  x: tf.Tensor;
  y: tf.Tensor;
  c: tf.Tensor;
  xs: Float32Array;
  ys: Float32Array;
  cs: Float32Array;
  out: Float32Array;
  out2: Float32Array;
  channels: Float32Array;
}

interface Case {
  name: string;
  run: (i: Inputs) => tf.Tensor;
  /** The same work as direct addon calls into preallocated outputs. */
  native: (addon: PactAddon, i: Inputs) => void;
  /** Bytes the native version reads and writes, in units of one SHAPE-sized float array. */
  arrays: number;
}

const AXES = [0, 1, 2];

const CASES: Case[] = [
  {
    name: 'relu',
    run: ({ x }) => tf.relu(x),
    native: (a, { xs, out }) => a.unaryOp('relu', xs, out, 0, 0),
    arrays: 2,
  },
  {
    name: 'mul by channel vector [16]',
    run: ({ x, c }) => tf.mul(x, c),
    native: (a, { xs, cs, out }) => a.binaryOp('mul', xs, SHAPE, cs, [SHAPE[3]], out),
    arrays: 2,
  },
  {
    name: 'add (same shape)',
    run: ({ x, y }) => tf.add(x, y),
    native: (a, { xs, ys, out }) => a.binaryOp('add', xs, SHAPE, ys, SHAPE, out),
    arrays: 3,
  },
  {
    name: 'relu gradient (dy * step(x))',
    run: ({ x, y }) => tf.grad((v: tf.Tensor) => tf.relu(v))(x, y),
    native: (a, { xs, ys, out, out2 }) => {
      a.unaryOp('step', xs, out, 0, 0);
      a.binaryOp('mul', ys, SHAPE, out, SHAPE, out2);
    },
    arrays: 5,
  },
  {
    name: 'sum over [0,1,2]',
    run: ({ x }) => tf.sum(x, AXES),
    native: (a, { xs, channels }) => a.reduce('sum', xs, SHAPE, AXES, channels),
    arrays: 1,
  },
  {
    name: 'moments over [0,1,2] (variance)',
    run: ({ x }) => tf.tidy(() => tf.moments(x, AXES).variance),
    native: (a, { xs, out, channels }) => {
      a.reduce('mean', xs, SHAPE, AXES, channels);
      a.binaryOp('squaredDifference', xs, SHAPE, channels, [1, 1, 1, SHAPE[3]], out);
      a.reduce('mean', out, SHAPE, AXES, channels);
    },
    arrays: 4,
  },
];

interface Timing {
  medianMs: number;
  minMs: number;
}

/** Median and fastest of `repeats` runs (after one warm-up), reading the result back each time. */
function timeOn(backend: string, repeats: number, fn: () => tf.Tensor): Timing {
  tf.setBackend(backend);
  const once = (): number => {
    const t0 = process.hrtime.bigint();
    const out = fn();
    out.dataSync();
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    out.dispose();
    return ms;
  };
  once();
  const times = Array.from({ length: repeats }, once).sort((a, b) => a - b);
  return { medianMs: times[Math.floor(times.length / 2)], minMs: times[0] };
}

/** Median and fastest of `repeats` direct addon calls (after one warm-up). */
function timeNative(repeats: number, fn: () => void): Timing {
  const once = (): number => {
    const t0 = process.hrtime.bigint();
    fn();
    return Number(process.hrtime.bigint() - t0) / 1e6;
  };
  once();
  const times = Array.from({ length: repeats }, once).sort((a, b) => a - b);
  return { medianMs: times[Math.floor(times.length / 2)], minMs: times[0] };
}

function main(): void {
  if (!pactCpuStatus.registered) throw new Error(`pact-cpu is not registered: ${pactCpuStatus.reason}`);
  const addon = nativeAddon()!;
  tf.setBackend('cpu');
  const x = tf.randomNormal(SHAPE);
  const y = tf.randomNormal(SHAPE);
  const c = tf.randomNormal([SHAPE[3]]);
  const size = tf.util.sizeFromShape(SHAPE);
  const inputs: Inputs = {
    x,
    y,
    c,
    xs: x.dataSync() as Float32Array,
    ys: y.dataSync() as Float32Array,
    cs: c.dataSync() as Float32Array,
    out: new Float32Array(size),
    out2: new Float32Array(size),
    channels: new Float32Array(SHAPE[3]),
  };
  const rows = CASES.map(({ name, run, native, arrays }) => {
    const pactCpu = timeOn(PACT_CPU, PACT_REPEATS, () => run(inputs));
    const cpu = timeOn('cpu', CPU_REPEATS, () => run(inputs));
    const kernel = timeNative(PACT_REPEATS, () => native(addon, inputs));
    return {
      name,
      pactCpu,
      cpu,
      speedupMedian: cpu.medianMs / pactCpu.medianMs,
      speedupMin: cpu.minMs / pactCpu.minMs,
      kernel,
      kernelGBperS: (arrays * size * 4) / (kernel.medianMs * 1e6),
    };
  });
  const ms = (t: Timing, digits: number): string => `${t.medianMs.toFixed(digits)} / ${t.minMs.toFixed(digits)}`;
  console.log(
    `shape [${SHAPE}], ${addon.buildInfo().threads} threads, ` +
      `OMP_WAIT_POLICY ${process.env.OMP_WAIT_POLICY ?? '(default)'}, load average ${os.loadavg()[0].toFixed(1)}, ` +
      `median / fastest of ${PACT_REPEATS} (pact-cpu, kernel) and ${CPU_REPEATS} (cpu) runs\n`,
  );
  console.log('| op | pact-cpu ms | cpu ms | speedup | kernel alone ms | kernel GB/s |');
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    console.log(
      `| ${r.name} | ${ms(r.pactCpu, 2)} | ${ms(r.cpu, 1)} | ` +
        `${r.speedupMedian.toFixed(1)}x / ${r.speedupMin.toFixed(1)}x | ${ms(r.kernel, 2)} | ` +
        `${r.kernelGBperS.toFixed(1)} |`,
    );
  }
  const result = {
    bench: 'elementwise',
    date: new Date().toISOString(),
    commit: gitCommit(),
    machine: {
      cpu: os.cpus()[0]?.model ?? 'unknown',
      cores: os.cpus().length,
      threads: nativeAddon()!.buildInfo().threads,
      loadAverage1m: os.loadavg()[0],
      ompWaitPolicy: process.env.OMP_WAIT_POLICY ?? '(default)',
    },
    shape: SHAPE,
    repeats: { pactCpu: PACT_REPEATS, cpu: CPU_REPEATS },
    rows,
  };
  const dir = path.join(__dirname, 'results');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'elementwise.json'), JSON.stringify(result, null, 2) + '\n');
  tf.dispose([x, y, c]);
}

main();
