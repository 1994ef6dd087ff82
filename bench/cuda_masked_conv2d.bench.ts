/**
 * The CUDA masked convolution on the GPU (pact.node's device): ResNet-32's three stage shapes (3×3, stride 1, same),
 * batch 128, densities {0, 0.05, 0.1, 0.25, 0.5, 0.75, 1}, pixel-random and 4×4-block masks. On device buffers, in
 * the same run:
 *   - masked: the masked kernels (forward, input gradient, filter gradient);
 *   - dense: the same kernels in their dense form (mask id 0: no compaction, no zeroing), which is what pact-cuda
 *     runs for Conv2D;
 *   - dense SACT: dense forward then times the mask; backward: dy times the mask, then the dense gradients;
 *   - cuDNN: the dense convolutions through cuDNN (cudaConv2dDense), where pact.node loads it.
 * Each call is timed to cudaSynchronize; contenders alternate; minimum of --reps runs after one warm-up. With
 * `--torch <json>` (bench/pytorch_cuda.py's output, same machine), the ratios to PyTorch/cuDNN's dense convolution
 * on the same shapes (float32, and TF32, PyTorch's default).
 *
 *   PACT_ADDON=build-gpu/Release/pact.node npx tsx bench/cuda_masked_conv2d.bench.ts [--reps 10] [--batch 128]
 *     [--shapes 0,1,2] [--torch pytorch_cuda.json] [--out dir] [--commit <hash>]
 * PACT_DEVICE=sim runs it on the simulated device (use --batch 1 --reps 1: only to check the script).
 * Writes cuda_masked_conv2d.json (every figure, the device, date, commit) and cuda_masked_conv2d.md.
 */
import * as fs from 'fs';
import * as path from 'path';

import * as tf from '@tensorflow/tfjs';

import { CUDA_BINARY_OPS } from '../src/backends/pact_cuda/kernels';
import { cudaTensorAddon, type CudaTensorAddon, type CudnnStatus } from '../src/native/binding';
import { Rng } from '../test/helpers/random';
import { argOptional, argValue, blockMask, gitCommit, machine } from './util';

const DENSITIES = [0, 0.05, 0.1, 0.25, 0.5, 0.75, 1];
const MASKS = [
  ['pixel', 1],
  ['block4', 4],
] as const;
const SHAPES: Array<[number, number, number]> = [
  [32, 32, 16],
  [16, 16, 32],
  [8, 8, 64],
];
const MULTIPLY = CUDA_BINARY_OPS.indexOf(tf.Multiply);

interface Pass {
  fwd: number;
  bwdInput: number;
  bwdFilter: number;
  fwdBwd: number;
}

interface Ratio {
  fwd: number;
  fwdBwd: number;
}

interface Row {
  shape: string;
  mask: string;
  density: number;
  activeFraction: number;
  masked: Pass;
  dense: Pass;
  /** Dense through cuDNN in this process (cudaConv2dDense), where pact.node loads it. */
  cudnn: Pass | null;
  denseSact: Ratio;
  ratio: Ratio;
  ratioToSact: Ratio;
  ratioToTorch: { fp32: Ratio; tf32: Ratio } | null;
  target: number;
}

interface TorchConv {
  fp32: Pass;
  tf32: Pass;
}

/** Device buffers of one case, freed by `free`. */
class Buffers {
  private readonly ids: number[] = [];
  constructor(private readonly cuda: CudaTensorAddon) {}
  make(values: Float32Array): number {
    const id = this.cuda.cudaBufferCreate(values.byteLength);
    this.ids.push(id);
    this.cuda.cudaBufferWrite(id, values);
    return id;
  }
  free(): void {
    for (const id of this.ids) this.cuda.cudaBufferFree(id);
  }
}

/** ms of each function, the minimum of `reps` runs after one warm-up, the functions taking turns. */
function timeAll(cuda: CudaTensorAddon, reps: number, fns: Array<() => void>): number[] {
  const best = fns.map(() => Infinity);
  for (let r = 0; r <= reps; ++r) {
    fns.forEach((fn, i) => {
      cuda.cudaSynchronize();
      const t0 = performance.now();
      fn();
      cuda.cudaSynchronize();
      const ms = performance.now() - t0;
      if (r > 0) best[i] = Math.min(best[i], ms);
    });
  }
  return best;
}

function pass(t: number[]): Pass {
  return { fwd: t[0], bwdInput: t[1], bwdFilter: t[2], fwdBwd: t[0] + t[1] + t[2] };
}

function main(): void {
  const reps = argValue('reps', 10);
  const batch = argValue('batch', 128);
  const { addon: cuda, reason } = cudaTensorAddon();
  if (cuda === null) throw new Error(`no CUDA device: ${reason}`);
  const info = cuda.buildInfo().cuda;
  if (!info.available) throw new Error(`no CUDA device: ${info.reason}`);
  const torchPath = argOptional('torch');
  const torch = torchPath === undefined ? null : JSON.parse(fs.readFileSync(torchPath, 'utf8'));
  const cudnnStatus = cuda.cudaCudnnStatus();
  const cudnn = cudnnStatus.available;
  const rng = new Rng(7);
  const rows: Row[] = [];
  const hostCosts: Record<string, { own: number[]; cudnn: number[] | null }> = {};
  const shapes = (argOptional('shapes') ?? '0,1,2').split(',').map((i) => {
    const shape = SHAPES[Number(i)];
    if (shape === undefined) throw new Error(`--shapes takes indices 0..${SHAPES.length - 1}, got ${i}`);
    return shape;
  });
  for (const [h, w, c] of shapes) {
    const xShape = [batch, h, w, c],
      filterShape = [3, 3, c, c],
      strides = [1, 1],
      pads = [1, 1, 1, 1];
    const n = batch * h * w;
    const bufs = new Buffers(cuda);
    const x = bufs.make(rng.normal(n * c)),
      filter = bufs.make(rng.normal(9 * c * c)),
      dy = bufs.make(rng.normal(n * c));
    const y = bufs.make(new Float32Array(n * c)),
      dx = bufs.make(new Float32Array(n * c)),
      dfilter = bufs.make(new Float32Array(9 * c * c));
    const conv = (which: 0 | 1 | 2, a: number, b: number, m: number, out: number) => () =>
      cuda.cudaMaskedConv2dDevice(xShape, filterShape, strides, pads, which, a, b, m, out);
    const torchConv: TorchConv | undefined = torch?.conv?.[`${h}x${w}x${c}`];
    // Host time of a call, queued without waiting (the device catches up afterwards): what a training step, which
    // queues ahead, pays per convolution on the host. Our dense kernels and cuDNN's, 20 calls each, best of 5.
    const hostMicros = (fn: () => void) => {
      let best = Infinity;
      for (let r = 0; r < 5; ++r) {
        cuda.cudaSynchronize();
        const t0 = performance.now();
        for (let i = 0; i < 20; ++i) fn();
        best = Math.min(best, ((performance.now() - t0) * 1000) / 20);
        cuda.cudaSynchronize();
      }
      return best;
    };
    const cudnnConv = (which: 0 | 1 | 2, a: number, b: number, out: number) => () => {
      if (!cuda.cudaConv2dDense(xShape, filterShape, strides, pads, which, a, b, out)) {
        throw new Error(`cuDNN did not run conv ${which} at ${h}x${w}x${c}`);
      }
    };
    const host = {
      own: [conv(0, x, filter, 0, y), conv(1, dy, filter, 0, dx), conv(2, x, dy, 0, dfilter)].map(hostMicros),
      cudnn: cudnn
        ? [cudnnConv(0, x, filter, y), cudnnConv(1, dy, filter, dx), cudnnConv(2, x, dy, dfilter)].map(hostMicros)
        : null,
    };
    hostCosts[`${h}x${w}x${c}`] = host;
    process.stdout.write(
      `${h}x${w}x${c} host µs per dense call (fwd, input grad, filter grad): ${JSON.stringify(host)}\n`,
    );
    for (const [kind, block] of MASKS) {
      for (const density of DENSITIES) {
        const maskValues = blockMask(rng, batch, h, w, density, block);
        const mask = bufs.make(maskValues);
        const times = timeAll(cuda, reps, [
          conv(0, x, filter, mask, y),
          conv(1, dy, filter, mask, dx),
          conv(2, x, dy, mask, dfilter),
          conv(0, x, filter, 0, y),
          conv(1, dy, filter, 0, dx),
          conv(2, x, dy, 0, dfilter),
          () => cuda.cudaBinary(MULTIPLY, y, xShape, mask, [batch, h, w, 1], y),
          ...(cudnn ? [cudnnConv(0, x, filter, y), cudnnConv(1, dy, filter, dx), cudnnConv(2, x, dy, dfilter)] : []),
        ]);
        const masked = pass(times.slice(0, 3)),
          dense = pass(times.slice(3, 6));
        const multiply = times[6];
        const onCudnn = cudnn ? pass(times.slice(7, 10)) : null;
        // Dense SACT: the dense forward and its mask multiply; backward multiplies dy by the mask, then runs both
        // dense gradients (the multiply is timed once and counted twice).
        const denseSact = { fwd: dense.fwd + multiply, fwdBwd: dense.fwdBwd + 2 * multiply };
        const active = maskValues.reduce((s, v) => s + v, 0) / n;
        rows.push({
          shape: `${h}x${w}x${c}`,
          mask: kind,
          density,
          activeFraction: active,
          masked,
          dense,
          cudnn: onCudnn,
          denseSact,
          ratio: { fwd: masked.fwd / dense.fwd, fwdBwd: masked.fwdBwd / dense.fwdBwd },
          ratioToSact: { fwd: masked.fwd / denseSact.fwd, fwdBwd: masked.fwdBwd / denseSact.fwdBwd },
          ratioToTorch:
            torchConv === undefined
              ? null
              : {
                  fp32: { fwd: masked.fwd / torchConv.fp32.fwd, fwdBwd: masked.fwdBwd / torchConv.fp32.fwdBwd },
                  tf32: { fwd: masked.fwd / torchConv.tf32.fwd, fwdBwd: masked.fwdBwd / torchConv.tf32.fwdBwd },
                },
          target: density + 0.1 * (block === 4 ? 1 : 2),
        });
        process.stdout.write(
          `${h}x${w}x${c} ${kind} d=${density}: masked fwd ${masked.fwd.toFixed(3)} ms ` +
            `(${(masked.fwd / dense.fwd).toFixed(2)} of dense), f+b ${masked.fwdBwd.toFixed(3)} ms ` +
            `(${(masked.fwdBwd / dense.fwdBwd).toFixed(2)})\n`,
        );
      }
    }
    cuda.cudaSynchronize();
    bufs.free();
  }
  writeResults(rows, info.device, torch, batch, reps, cudnnStatus, hostCosts);
}

function writeResults(
  rows: Row[],
  device: string,
  torch: Record<string, unknown> | null,
  batch: number,
  reps: number,
  cudnn: CudnnStatus,
  hostMicrosPerCall: Record<string, unknown>,
) {
  const out = argOptional('out') ?? path.join(__dirname, 'results');
  const commit = argOptional('commit') ?? gitCommit();
  const date = new Date().toISOString();
  fs.mkdirSync(out, { recursive: true });
  const result = {
    bench: 'cuda_masked_conv2d',
    date,
    commit,
    device,
    machine: machine(),
    batch,
    reps,
    cudnn,
    hostMicrosPerCall,
    torch,
    rows,
  };
  fs.writeFileSync(path.join(out, 'cuda_masked_conv2d.json'), `${JSON.stringify(result, null, 2)}\n`);
  const f = (v: number) => v.toFixed(3);
  const r = (v: number) => v.toFixed(2);
  const lines = [
    `# CUDA maskedConv2d on ${device}, batch ${batch}`,
    '',
    `${date}, commit ${commit}; minimum of ${reps} runs per figure, contenders alternating. Times in ms; ` +
      'ratios: masked / dense (our dense conv: the same kernels in their dense form, no mask), masked / dense SACT, ' +
      'masked / PyTorch-cuDNN dense conv (float32 with TF32 off; TF32 in the next column), masked / cuDNN dense ' +
      `conv in this process (what pact-cuda's Conv2D runs where cuDNN loads: ${cudnn.available ? `cuDNN ${cudnn.version}` : `not loaded, ${cudnn.reason}`}).`,
    '',
    '| shape | mask | d | active | masked fwd | masked f+b | dense fwd | dense f+b | fwd/dense | f+b/dense | ' +
      'f+b/SACT | fwd/cuDNN | f+b/cuDNN | f+b/cuDNN TF32 | f+b/our cuDNN | pact-cpu target |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const row of rows) {
    const t = row.ratioToTorch;
    lines.push(
      `| ${row.shape} | ${row.mask} | ${row.density} | ${r(row.activeFraction)} | ${f(row.masked.fwd)} | ` +
        `${f(row.masked.fwdBwd)} | ${f(row.dense.fwd)} | ${f(row.dense.fwdBwd)} | ${r(row.ratio.fwd)} | ` +
        `${r(row.ratio.fwdBwd)} | ${r(row.ratioToSact.fwdBwd)} | ${t ? r(t.fp32.fwd) : '-'} | ` +
        `${t ? r(t.fp32.fwdBwd) : '-'} | ${t ? r(t.tf32.fwdBwd) : '-'} | ` +
        `${row.cudnn ? r(row.masked.fwdBwd / row.cudnn.fwdBwd) : '-'} | ${row.density >= 0.1 ? r(row.target) : '-'} |`,
    );
  }
  fs.writeFileSync(path.join(out, 'cuda_masked_conv2d.md'), `${lines.join('\n')}\n`);
}

main();
