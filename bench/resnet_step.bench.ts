/**
 * A full ResNet-32 training step (forward, backward, SGD momentum + weight decay update) on random 32x32x3 data:
 * images/s on pact-cpu (median step after warm-up), and, where Debian's PyTorch is installed
 * (`/usr/bin/python3 -c 'import torch'`), the same model and step in PyTorch (bench/pytorch_resnet.py, its faster
 * memory layout) measured in the same run, with the ratio.
 *
 *   PACT_ADDON=$PWD/build/Release/pact.node npx tsx bench/resnet_step.bench.ts [--batch 128] [--steps 5]
 *     [--warmup 2] [--units 5] [--threads 2] [--no-torch]
 *
 * Writes bench/results/resnet_step.json (machine, date, commit, load average, every step time) and prints a line.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import * as tf from '@tensorflow/tfjs';

import { argValue, gitCommit, machine, median } from './util';
import { cifarResNet, nativeAddon, PACT_CPU, PactCpuBackend, pactCpuStatus, SgdTrainer } from '../src';

export interface StepOptions {
  batch: number;
  units: number;
  size: number;
  /** The trainer's optimizer: FusedMomentumOptimizer (the default, one kernel a variable) or tf.train.momentum. */
  optimizer?: 'fused' | 'tfjs';
}

/** A ResNet-(6n+2) with its trainer and one fixed random batch, on the current backend. */
export function makeTrainingStep({ batch, units, size, optimizer = 'fused' }: StepOptions): {
  step: () => number;
  dispose: () => void;
} {
  const model = cifarResNet(units, 10, 1);
  const trainer = new SgdTrainer(model);
  if (optimizer === 'tfjs') {
    trainer.optimizer.dispose();
    Object.assign(trainer, { optimizer: tf.train.momentum(trainer.learningRate, trainer.momentum) });
  }
  const x = tf.randomNormal([batch, size, size, 3], 0, 1, 'float32', 2) as tf.Tensor4D;
  const labels = tf.tensor1d(
    Array.from({ length: batch }, (_, i) => (i * 7) % 10),
    'int32',
  );
  return {
    step: () => trainer.step(x, labels).loss,
    dispose: () => {
      tf.dispose([x, labels]);
      trainer.dispose();
      model.dispose();
    },
  };
}

function timeSteps(step: () => number, warmup: number, steps: number): number[] {
  for (let i = 0; i < warmup; ++i) step();
  return Array.from({ length: steps }, () => {
    const t0 = process.hrtime.bigint();
    step();
    return Number(process.hrtime.bigint() - t0) / 1e9;
  });
}

function torchAvailable(): boolean {
  return spawnSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
}

function runTorch(opts: StepOptions, warmup: number, steps: number, threads: number): Record<string, unknown> {
  const script = path.join(__dirname, 'pytorch_resnet.py');
  const args = [
    script,
    '--units',
    `${opts.units}`,
    '--batch',
    `${opts.batch}`,
    '--size',
    `${opts.size}`,
    '--steps',
    `${steps}`,
    '--warmup',
    `${warmup}`,
    '--threads',
    `${threads}`,
  ];
  const out = spawnSync('/usr/bin/python3', args, { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`pytorch_resnet.py failed: ${out.stderr}`);
  return JSON.parse(out.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
}

function main(): void {
  if (!pactCpuStatus.registered) throw new Error(`pact-cpu is not registered: ${pactCpuStatus.reason}`);
  const opts: StepOptions = { batch: argValue('batch', 128), units: argValue('units', 5), size: argValue('size', 32) };
  const steps = argValue('steps', 5);
  const warmup = argValue('warmup', 2);
  const threads = argValue('threads', 2);
  const native = nativeAddon()!;
  native.setNumThreads(threads);
  tf.setBackend(PACT_CPU);
  const backend = tf.backend() as PactCpuBackend;
  backend.resetFallbackCounts();
  const run = makeTrainingStep(opts);
  const times = timeSteps(run.step, warmup, steps);
  run.dispose();
  const pactSeconds = median(times);
  const pact = { medianStepSeconds: pactSeconds, imagesPerSecond: opts.batch / pactSeconds, stepSeconds: times };
  const fallbacks = backend.fallbackCounts();

  const torch =
    !process.argv.includes('--no-torch') && torchAvailable() ? runTorch(opts, warmup, steps, threads) : null;
  const ratio = torch === null ? null : pact.imagesPerSecond / (torch.imagesPerSecond as number);

  const depth = 6 * opts.units + 2;
  const result = {
    bench: 'resnet_step',
    model: `ResNet-${depth}`,
    date: new Date().toISOString(),
    commit: gitCommit(),
    machine: { ...machine(), threads },
    build: native.buildInfo(),
    ...opts,
    warmup,
    steps,
    pactCpu: {
      ...pact,
      fallbacksPerStep: Object.fromEntries(Object.entries(fallbacks).map(([k, v]) => [k, v / (warmup + steps)])),
    },
    pytorch: torch,
    ratioToPytorch: ratio,
  };
  const outPath = path.join(__dirname, 'results', 'resnet_step.json');
  fs.mkdirSync(path.dirname(outPath), { recursive: true });
  fs.writeFileSync(outPath, `${JSON.stringify(result, null, 2)}\n`);
  const torchText =
    torch === null
      ? 'PyTorch not measured'
      : `PyTorch ${torch.torch} (${torch.best}) ${(torch.imagesPerSecond as number).toFixed(1)} images/s, ratio ${ratio!.toFixed(2)}`;
  console.log(
    `ResNet-${depth} batch ${opts.batch}: pact-cpu ${pact.imagesPerSecond.toFixed(1)} images/s ` +
      `(median step ${pactSeconds.toFixed(3)} s); ${torchText}; load ${os.loadavg()[0].toFixed(1)}; -> ${outPath}`,
  );
}

if (require.main === module) main();
