/**
 * The ResNet-32 training step of bench/resnet_step.bench.ts (forward, backward, SGD momentum + weight decay update,
 * loss read back) on pact-cuda, against PyTorch's same step on the same GPU (bench/pytorch_cuda.py's output, passed
 * with --torch). Median step after warm-up, steps alternating between the default (our convolutions,
 * FusedMomentumOptimizer), tf.train.momentum's four kernels a variable, and dense convolutions on cuDNN (where pact.node
 * loads it: PACT_CUDNN=1), all three or the filter gradient alone; host fallbacks per step are recorded (none
 * expected). --profile profiles the default.
 *
 *   PACT_ADDON=build-gpu/Release/pact.node npx tsx bench/cuda_resnet_step.bench.ts [--batch 128] [--steps 10]
 *     [--warmup 3] [--units 5] [--torch pytorch_cuda.json] [--out dir] [--commit <hash>]
 * --profile adds one step under tf.profile: device time per kernel name (pact-cuda's time() synchronises around each
 * kernel), the top ones printed, all in the JSON.
 * PACT_DEVICE=sim runs it on the simulated device (tiny --batch and --units only: to check the script).
 * Writes cuda_resnet_step.json and prints a line.
 */
import * as fs from 'fs';
import * as path from 'path';

import * as tf from '@tensorflow/tfjs';

import { PACT_CUDA, PactCudaBackend, registerPactCuda } from '../src';
import { makeTrainingStep, StepOptions } from './resnet_step.bench';
import { argOptional, argValue, gitCommit, machine, median } from './util';

/** One step under tf.profile: total ms per kernel name, largest first, and the step's wall time. */
async function profileStep(step: () => number): Promise<{ wallMs: number; kernels: Array<[string, number, number]> }> {
  const t0 = performance.now();
  const info = await tf.profile(() => {
    step();
  });
  const wallMs = performance.now() - t0;
  const byName = new Map<string, [number, number]>();
  for (const k of info.kernels) {
    const [ms, calls] = byName.get(k.name) ?? [0, 0];
    byName.set(k.name, [ms + (k.kernelTimeMs as number), calls + 1]);
  }
  const kernels = [...byName].map(([name, [ms, calls]]): [string, number, number] => [name, ms, calls]);
  return { wallMs, kernels: kernels.sort((a, b) => b[1] - a[1]) };
}

async function main(): Promise<void> {
  const status = registerPactCuda();
  if (!status.registered) throw new Error(`pact-cuda is not registered: ${status.reason}`);
  const opts: StepOptions = { batch: argValue('batch', 128), units: argValue('units', 5), size: 32 };
  const steps = argValue('steps', 10);
  const warmup = argValue('warmup', 3);
  tf.setBackend(PACT_CUDA);
  const backend = tf.backend() as PactCudaBackend;
  const run = makeTrainingStep(opts);
  const runTfjsOptimizer = makeTrainingStep({ ...opts, optimizer: 'tfjs' });
  // Steps alternating between three configurations: the default (our convolutions, the fused optimizer), tfjs'
  // MomentumOptimizer (four kernels a variable), and dense convolutions on cuDNN (where loaded: PACT_CUDNN=1).
  const own: [boolean, boolean, boolean] = [false, false, false];
  const cudnnAll: [boolean, boolean, boolean] = [true, true, true];
  const cudnnFilter: [boolean, boolean, boolean] = [false, false, true];
  const configs: Array<[() => number, [boolean, boolean, boolean]]> = [
    [run.step, own],
    [runTfjsOptimizer.step, own],
    [run.step, cudnnAll],
    [run.step, cudnnFilter],
  ];
  const timed = ([step, useCudnnFor]: [() => number, [boolean, boolean, boolean]]) => {
    backend.useCudnnFor = useCudnnFor;
    const t0 = performance.now();
    step();
    return (performance.now() - t0) / 1000;
  };
  for (let i = 0; i < warmup; ++i) configs.forEach(timed);
  backend.resetFallbackCounts();
  const [ownTimes, tfjsOptimizerTimes, cudnnTimes, cudnnFilterTimes]: number[][] = [[], [], [], []];
  for (let i = 0; i < steps; ++i) {
    ownTimes.push(timed(configs[0]));
    tfjsOptimizerTimes.push(timed(configs[1]));
    cudnnTimes.push(timed(configs[2]));
    cudnnFilterTimes.push(timed(configs[3]));
  }
  const fallbacks = backend.fallbackCounts();
  backend.useCudnnFor = cudnnAll;
  const before = { ...backend.denseConvCounts };
  run.step();
  const convsPerStep = {
    cudnn: backend.denseConvCounts.cudnn - before.cudnn,
    own: backend.denseConvCounts.own - before.own,
  };
  backend.useCudnnFor = own;
  const profile = process.argv.includes('--profile') ? await profileStep(run.step) : null;
  run.dispose();
  runTfjsOptimizer.dispose();
  const seconds = median(ownTimes);
  const tfjsOptimizerSeconds = median(tfjsOptimizerTimes);
  const cudnnSeconds = median(cudnnTimes);
  const cudnnFilterSeconds = median(cudnnFilterTimes);
  const torchPath = argOptional('torch');
  const torch = torchPath === undefined ? null : JSON.parse(fs.readFileSync(torchPath, 'utf8')).resnetStep;
  const imagesPerSecond = opts.batch / seconds;
  const result = {
    bench: 'cuda_resnet_step',
    model: `ResNet-${6 * opts.units + 2}`,
    date: new Date().toISOString(),
    commit: argOptional('commit') ?? gitCommit(),
    device: status.device,
    machine: machine(),
    ...opts,
    warmup,
    steps,
    denseConv: status.denseConv,
    /** The default: our convolutions and FusedMomentumOptimizer. */
    pactCuda: {
      medianStepSeconds: seconds,
      imagesPerSecond,
      stepSeconds: ownTimes,
      fallbacksPerStep: Object.fromEntries(Object.entries(fallbacks).map(([k, v]) => [k, v / (4 * steps)])),
    },
    pactCudaTfjsOptimizer: {
      medianStepSeconds: tfjsOptimizerSeconds,
      imagesPerSecond: opts.batch / tfjsOptimizerSeconds,
      stepSeconds: tfjsOptimizerTimes,
    },
    pactCudaCudnnConv: {
      medianStepSeconds: cudnnSeconds,
      imagesPerSecond: opts.batch / cudnnSeconds,
      stepSeconds: cudnnTimes,
      convsPerStep,
    },
    pactCudaCudnnFilterGradOnly: {
      medianStepSeconds: cudnnFilterSeconds,
      imagesPerSecond: opts.batch / cudnnFilterSeconds,
      stepSeconds: cudnnFilterTimes,
    },
    profile,
    pytorch: torch,
    ratioToPytorch: torch === null ? null : imagesPerSecond / torch.imagesPerSecond,
    tfjsOptimizerRatioToPytorch: torch === null ? null : opts.batch / tfjsOptimizerSeconds / torch.imagesPerSecond,
    cudnnRatioToPytorch: torch === null ? null : opts.batch / cudnnSeconds / torch.imagesPerSecond,
    cudnnFilterRatioToPytorch: torch === null ? null : opts.batch / cudnnFilterSeconds / torch.imagesPerSecond,
  };
  const out = argOptional('out') ?? path.join(__dirname, 'results');
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'cuda_resnet_step.json'), `${JSON.stringify(result, null, 2)}\n`);
  console.log(
    `${result.model} training step on pact-cuda (${status.device}), batch ${opts.batch}: ` +
      `${imagesPerSecond.toFixed(0)} images/s (median ${(seconds * 1000).toFixed(1)} ms; our convolutions, fused ` +
      `optimizer); tf.train.momentum ${(opts.batch / tfjsOptimizerSeconds).toFixed(0)} images/s (median ` +
      `${(tfjsOptimizerSeconds * 1000).toFixed(1)} ms); convolutions on ${status.denseConv} ` +
      `${(opts.batch / cudnnSeconds).toFixed(0)} images/s (${JSON.stringify(convsPerStep)} a step), cuDNN for the ` +
      `filter gradient only ${(opts.batch / cudnnFilterSeconds).toFixed(0)} images/s` +
      (torch === null
        ? ''
        : `; PyTorch ${torch.imagesPerSecond.toFixed(0)} images/s; ratio ${result.ratioToPytorch!.toFixed(3)}`) +
      `; fallbacks per step: ${JSON.stringify(result.pactCuda.fallbacksPerStep)}`,
  );
  if (profile !== null) {
    const total = profile.kernels.reduce((s, k) => s + k[1], 0);
    console.log(`profiled step: ${profile.wallMs.toFixed(1)} ms wall, ${total.toFixed(1)} ms in kernels; top kernels:`);
    for (const [name, ms, calls] of profile.kernels.slice(0, 15)) {
      console.log(`  ${name.padEnd(28)} ${ms.toFixed(2).padStart(9)} ms  ${calls} calls`);
    }
  }
}

void main();
