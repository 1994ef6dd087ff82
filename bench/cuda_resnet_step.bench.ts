/**
 * The ResNet-32 training step of bench/resnet_step.bench.ts (forward, backward, SGD momentum + weight decay update,
 * loss read back) on pact-cuda, against PyTorch's same step on the same GPU (bench/pytorch_cuda.py's output, passed
 * with --torch). Median step after warm-up, dense convolutions on cuDNN (where pact.node loads it) and on our own
 * kernels, steps alternating; host fallbacks per step are recorded (none expected).
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
  // Dense convolutions on our own kernels, on cuDNN (where loaded: PACT_CUDNN=1), and with only the filter
  // gradient on cuDNN; steps alternating.
  const configs: Array<[boolean, boolean, boolean]> = [
    [false, false, false],
    [true, true, true],
    [false, false, true],
  ];
  const timed = (useCudnnFor: [boolean, boolean, boolean]) => {
    backend.useCudnnFor = useCudnnFor;
    const t0 = performance.now();
    run.step();
    return (performance.now() - t0) / 1000;
  };
  for (let i = 0; i < warmup; ++i) configs.forEach(timed);
  backend.resetFallbackCounts();
  const [ownTimes, times, filterTimes]: number[][] = [[], [], []];
  for (let i = 0; i < steps; ++i) {
    ownTimes.push(timed(configs[0]));
    times.push(timed(configs[1]));
    filterTimes.push(timed(configs[2]));
  }
  const fallbacks = backend.fallbackCounts();
  backend.useCudnnFor = configs[1];
  const before = { ...backend.denseConvCounts };
  run.step();
  const convsPerStep = {
    cudnn: backend.denseConvCounts.cudnn - before.cudnn,
    own: backend.denseConvCounts.own - before.own,
  };
  const profile = process.argv.includes('--profile') ? await profileStep(run.step) : null;
  run.dispose();
  backend.useCudnnFor = configs[0];
  const seconds = median(times);
  const ownSeconds = median(ownTimes);
  const filterSeconds = median(filterTimes);
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
    pactCuda: {
      medianStepSeconds: seconds,
      imagesPerSecond,
      stepSeconds: times,
      convsPerStep,
      fallbacksPerStep: Object.fromEntries(Object.entries(fallbacks).map(([k, v]) => [k, v / (3 * steps)])),
    },
    pactCudaCudnnFilterGradOnly: {
      medianStepSeconds: filterSeconds,
      imagesPerSecond: opts.batch / filterSeconds,
      stepSeconds: filterTimes,
    },
    pactCudaOwnConv: {
      medianStepSeconds: ownSeconds,
      imagesPerSecond: opts.batch / ownSeconds,
      stepSeconds: ownTimes,
    },
    profile,
    pytorch: torch,
    ratioToPytorch: torch === null ? null : imagesPerSecond / torch.imagesPerSecond,
    ownConvRatioToPytorch: torch === null ? null : opts.batch / ownSeconds / torch.imagesPerSecond,
  };
  const out = argOptional('out') ?? path.join(__dirname, 'results');
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'cuda_resnet_step.json'), `${JSON.stringify(result, null, 2)}\n`);
  console.log(
    `${result.model} training step on pact-cuda (${status.device}), batch ${opts.batch}: ` +
      `${imagesPerSecond.toFixed(0)} images/s (median ${(seconds * 1000).toFixed(1)} ms; dense convolutions on ` +
      `${status.denseConv}, ${JSON.stringify(convsPerStep)} a step); with our own convolutions ` +
      `${(opts.batch / ownSeconds).toFixed(0)} images/s (median ${(ownSeconds * 1000).toFixed(1)} ms); cuDNN for ` +
      `the filter gradient only ${(opts.batch / filterSeconds).toFixed(0)} images/s` +
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
