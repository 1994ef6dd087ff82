/**
 * Dense convolution on pact-cpu (oneDNN) against tfjs-backend-cpu, measured in the same run, on the 3x3 'same'
 * convolutions of a CIFAR ResNet (batch 128): forward, and forward + backward (input and filter gradients), in
 * GFLOP/s (2 flops per multiply-add; forward+backward counts 3 convolutions' worth). Also the per-call overhead of a
 * tiny convolution (native call alone, and through tf.conv2d).
 *
 *   npx tsx bench/conv.bench.ts            the full run (about a minute; run it on a quiet machine)
 *   BENCH_QUICK=1 npx tsx bench/conv.bench.ts   a few seconds, to check that it works
 *
 * Time box: tfjs-backend-cpu runs about 1 GFLOP/s, so it runs at a smaller batch (BENCH_CPU_BATCH, default 2) and
 * its time is scaled per image; the output says so. Writes bench/results/conv.json and prints a Markdown table.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import * as tf from '@tensorflow/tfjs';

import { nativeAddon, PACT_CPU, pactCpuStatus } from '../src';
import { gitCommit } from './util';

const QUICK = process.env.BENCH_QUICK === '1';
const BATCH = Number(process.env.BENCH_BATCH ?? (QUICK ? 16 : 128));
const CPU_BATCH = Number(process.env.BENCH_CPU_BATCH ?? (QUICK ? 1 : 2));
const PACT_SECONDS = QUICK ? 0.2 : 2; // time each pact-cpu figure for at least this long
const CPU_REPEATS = QUICK ? 1 : 2;

interface ConvShape {
  name: string;
  size: number;
  inChannels: number;
  outChannels: number;
  stride: 1 | 2;
}

const SHAPES: ConvShape[] = [
  { name: '32x32 16->16', size: 32, inChannels: 16, outChannels: 16, stride: 1 },
  { name: '16x16 32->32', size: 16, inChannels: 32, outChannels: 32, stride: 1 },
  { name: '8x8 64->64', size: 8, inChannels: 64, outChannels: 64, stride: 1 },
  { name: '32x32 16->32 stride 2', size: 32, inChannels: 16, outChannels: 32, stride: 2 },
  { name: '16x16 32->64 stride 2', size: 16, inChannels: 32, outChannels: 64, stride: 2 },
];

interface Timing {
  msPerBatch: number;
  gflops: number;
}

/** Multiply-adds x 2 of one 3x3 'same' convolution of the shape at `batch`. */
function convFlops(s: ConvShape, batch: number): number {
  const out = Math.ceil(s.size / s.stride);
  return 2 * batch * out * out * s.outChannels * 9 * s.inChannels;
}

/** Median ms of `fn` over runs that together take at least `seconds` (at least `minRuns`), after one warm-up. */
function medianMs(fn: () => void, seconds: number, minRuns: number): number {
  fn();
  const times: number[] = [];
  const start = process.hrtime.bigint();
  while (times.length < minRuns || Number(process.hrtime.bigint() - start) / 1e9 < seconds) {
    const t0 = process.hrtime.bigint();
    fn();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

interface ConvRun {
  forward: () => void;
  backward: () => void;
}

/** Forward, and both gradients, of one convolution at `batch` on the current backend (inputs made once). */
function convRun(s: ConvShape, batch: number): { run: ConvRun; dispose: () => void } {
  const x = tf.randomUniform([batch, s.size, s.size, s.inChannels], -1, 1) as tf.Tensor4D;
  const filter = tf.randomUniform([3, 3, s.inChannels, s.outChannels], -1, 1) as tf.Tensor4D;
  const outSize = Math.ceil(s.size / s.stride);
  const dy = tf.randomUniform([batch, outSize, outSize, s.outChannels], -1, 1) as tf.Tensor4D;
  const attrs = { strides: s.stride, pad: 'same', dataFormat: 'NHWC', dimRoundingMode: undefined };
  const run: ConvRun = {
    forward: () => tf.conv2d(x, filter, s.stride, 'same').dispose(),
    backward: () => {
      (
        tf.engine().runKernel(tf.Conv2DBackpropInput, { dy, filter }, {
          ...attrs,
          inputShape: x.shape,
        } as unknown as tf.NamedAttrMap) as tf.Tensor
      ).dispose();
      (
        tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy }, {
          ...attrs,
          filterShape: filter.shape,
        } as unknown as tf.NamedAttrMap) as tf.Tensor
      ).dispose();
    },
  };
  return { run, dispose: () => tf.dispose([x, filter, dy]) };
}

function timeConv(
  backend: string,
  s: ConvShape,
  batch: number,
  seconds: number,
  minRuns: number,
): { forward: Timing; forwardBackward: Timing; backward: Timing } {
  tf.setBackend(backend);
  const { run, dispose } = convRun(s, batch);
  const forwardMs = medianMs(run.forward, seconds, minRuns);
  const backwardMs = medianMs(run.backward, seconds, minRuns);
  dispose();
  const flops = convFlops(s, batch);
  const timing = (ms: number, f: number): Timing => ({ msPerBatch: ms, gflops: f / (ms * 1e6) });
  return {
    forward: timing(forwardMs, flops),
    backward: timing(backwardMs, 2 * flops),
    forwardBackward: timing(forwardMs + backwardMs, 3 * flops),
  };
}

/**
 * Microseconds per call of a 1x4x4x4 -> 4 3x3 convolution: the native function alone (its primitive cached), through
 * tf.conv2d, and the first call of a geometry not seen before (creating the oneDNN primitive: what the cache saves).
 */
function perCallOverhead(): { nativeUs: number; tfConv2dUs: number; firstCallUs: number } {
  const native = nativeAddon();
  const calls = QUICK ? 2000 : 20000;
  const x = new Float32Array(64).fill(0.5);
  const filter = new Float32Array(144).fill(0.25);
  const y = new Float32Array(64);
  const geometry = [1, 4, 4, 4, 4, 4, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1];
  const perCall = (fn: () => void): number => {
    for (let i = 0; i < 100; ++i) fn();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < calls; ++i) fn();
    return Number(process.hrtime.bigint() - t0) / 1e3 / calls;
  };
  let nativeUs = NaN;
  let firstCallUs = NaN;
  if (native?.conv2dForward !== undefined) {
    const conv = native.conv2dForward;
    nativeUs = perCall(() => conv(geometry, x, filter, null, y, 'linear', 0));
    // New geometries: 4x4 inputs with 5 to 12 channels (never used elsewhere in this run).
    const firsts = [5, 6, 7, 8, 9, 10, 11, 12].map((c) => {
      const g = [1, 4, 4, c, 4, 4, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1];
      const [xc, fc] = [new Float32Array(16 * c), new Float32Array(36 * c)];
      const t0 = process.hrtime.bigint();
      conv(g, xc, fc, null, y, 'linear', 0);
      return Number(process.hrtime.bigint() - t0) / 1e3;
    });
    firstCallUs = firsts.sort((a, b) => a - b)[firsts.length >> 1];
  }
  tf.setBackend(PACT_CPU);
  const xt = tf.tensor4d(x, [1, 4, 4, 4]);
  const ft = tf.tensor4d(filter, [3, 3, 4, 4]);
  const tfConv2dUs = perCall(() => tf.conv2d(xt, ft, 1, 'same').dispose());
  tf.dispose([xt, ft]);
  return { nativeUs, tfConv2dUs, firstCallUs };
}

/** The vector ISA oneDNN can use here (it JITs for the best one): AVX-512 doubles the FMA width of AVX2. */
function vectorIsa(): string {
  try {
    const flags = fs.readFileSync('/proc/cpuinfo', 'utf8');
    return /\bavx512f\b/.test(flags) ? 'avx512' : /\bavx2\b/.test(flags) ? 'avx2' : 'other';
  } catch {
    return 'unknown';
  }
}

const fmt = (v: number, digits = 1): string => (Number.isFinite(v) ? v.toFixed(digits) : 'n/a');
/** Two significant digits, for tfjs-backend-cpu's small figures. */
const fmt2 = (v: number): string => (Number.isFinite(v) ? v.toPrecision(2) : 'n/a');

function main(): void {
  if (!pactCpuStatus.registered) throw new Error(`pact-cpu is not registered: ${pactCpuStatus.reason}`);
  const info = nativeAddon()!.buildInfo();
  if (!info.dnnl) console.warn('The addon was built without oneDNN: pact-cpu runs the JS kernels here.');

  const overhead = perCallOverhead();
  const rows = SHAPES.map((s) => {
    const pact = timeConv(PACT_CPU, s, BATCH, PACT_SECONDS, 3);
    const cpu = timeConv('cpu', s, CPU_BATCH, 0, CPU_REPEATS);
    const cpuPerImage = {
      forwardMs: cpu.forward.msPerBatch / CPU_BATCH,
      forwardBackwardMs: cpu.forwardBackward.msPerBatch / CPU_BATCH,
    };
    const row = {
      shape: s,
      flopsForward: convFlops(s, BATCH),
      pactCpu: pact,
      tfjsCpu: { batch: CPU_BATCH, ...cpu, ...cpuPerImage },
      ratioForward: cpuPerImage.forwardMs / (pact.forward.msPerBatch / BATCH),
      ratioForwardBackward: cpuPerImage.forwardBackwardMs / (pact.forwardBackward.msPerBatch / BATCH),
    };
    console.error(
      `${s.name}: forward ${fmt(pact.forward.gflops)} GFLOP/s, forward+backward ` +
        `${fmt(pact.forwardBackward.gflops)} GFLOP/s (tfjs-backend-cpu ${fmt2(cpu.forward.gflops)} / ` +
        `${fmt2(cpu.forwardBackward.gflops)})`,
    );
    return row;
  });

  const result = {
    benchmark: 'conv',
    machine: {
      cpu: os.cpus()[0]?.model ?? 'unknown',
      cores: os.cpus().length,
      isa: vectorIsa(),
      threads: info.threads,
      memoryGiB: Math.round(os.totalmem() / 2 ** 30),
      node: process.version,
      platform: `${os.platform()} ${os.release()}`,
      oneDNN: info.dnnl,
      loadAverage: os.loadavg(),
    },
    date: new Date().toISOString(),
    commit: gitCommit(),
    quick: QUICK,
    batch: BATCH,
    tfjsCpuBatch: CPU_BATCH,
    note:
      `tfjs-backend-cpu runs at batch ${CPU_BATCH} and its time is scaled per image (time box); ratios compare ` +
      'time per image. Forward+backward = forward + input gradient + filter gradient (3x the forward flops).',
    perCallOverheadUs: { shape: '1x4x4x4 -> 4, 3x3 same', ...overhead },
    rows,
  };
  const out = path.join(__dirname, 'results', 'conv.json');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify(result, null, 2) + '\n');

  console.log(
    `\n3x3 'same' convolutions, NHWC float32, batch ${BATCH} on pact-cpu (${info.threads} threads, ` +
      `${result.machine.cpu}); tfjs-backend-cpu measured in the same run at batch ${CPU_BATCH}, scaled per image.\n`,
  );
  console.log(
    '| shape | pact-cpu fwd GFLOP/s | pact-cpu fwd+bwd GFLOP/s | tfjs-cpu fwd GFLOP/s | tfjs-cpu fwd+bwd GFLOP/s ' +
      '| speed-up fwd | speed-up fwd+bwd |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    console.log(
      `| ${r.shape.name} | ${fmt(r.pactCpu.forward.gflops)} | ${fmt(r.pactCpu.forwardBackward.gflops)} | ` +
        `${fmt2(r.tfjsCpu.forward.gflops)} | ${fmt2(r.tfjsCpu.forwardBackward.gflops)} | ` +
        `${fmt(r.ratioForward, 0)}x | ${fmt(r.ratioForwardBackward, 0)}x |`,
    );
  }
  console.log(
    `\nPer-call overhead (${result.perCallOverheadUs.shape}): native ${fmt(overhead.nativeUs)} us, ` +
      `tf.conv2d on pact-cpu ${fmt(overhead.tfConv2dUs)} us; first call of a new geometry (primitive creation) ` +
      `${fmt(overhead.firstCallUs)} us. Wrote ${path.relative(process.cwd(), out)}.`,
  );
}

main();
