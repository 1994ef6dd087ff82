/**
 * PSACT's point on pact-cpu (or pact-cuda with --backend): a training step of a trained PSACT ResNet (relaxed mode, its learned halting, so its
 * learned FLOPs fraction) against a training step of the dense ResNet, images/s measured in the same run, steps
 * alternating so that both see the same machine load. Both models come from runs' checkpoints (`pact train`), train
 * on their own dataset's batches at the runs' final learning rate, and are not written back.
 *
 *   npx tsx bench/psact_throughput.bench.ts --psact runs/fmnist-psact32 --dense runs/fmnist-resnet32
 *     [--steps 6] [--warmup 2] [--out bench/results/psact_throughput] [--backend pact-cpu|pact-cuda]
 *
 * Then evaluation (inference, no gradient): one test batch of the same size through the PSACT model in each
 * evaluation mode (thresholded, discrete, relaxed: the masked kernels compute only the positions that the halting
 * leaves active) and through the dense model, alternating, --eval-reps times (default 10).
 *
 * Writes <out>.json (machine, date, commit, every step and forward time, the FLOPs fractions) and <out>.md.
 */
import * as fs from 'fs';

import * as tf from '@tensorflow/tfjs';

import { PACT_CUDA, pactCpuStatus, registerPactCuda } from '../src';
import { restoreTask } from '../src/cli/main';
import { disposeForward } from '../src/models/psact';
import { forwardFlops } from '../src/models/flops';
import type { AdaptiveMode } from '../src/ops/adaptive_block';
import { AdaptiveTask } from '../src/train/adaptive_task';
import { ClassifierTask } from '../src/train/classifier_task';
import { argText, argValue, gitCommit, machine, median } from './util';

async function main(): Promise<void> {
  const backend = argText('backend', 'pact-cpu');
  if (backend === PACT_CUDA) {
    const status = registerPactCuda();
    if (!status.registered) throw new Error(`pact-cuda is not registered: ${status.reason}`);
  } else if (!pactCpuStatus.registered) {
    throw new Error(`pact-cpu is not registered: ${pactCpuStatus.reason}`);
  }
  tf.setBackend(backend);
  const psactRun = argText('psact');
  const denseRun = argText('dense');
  const out = argText('out', 'bench/results/psact_throughput');
  const steps = argValue('steps', 6);
  const warmup = argValue('warmup', 2);
  const psact = await restoreTask(psactRun);
  const dense = await restoreTask(denseRun);
  if (!(psact.task instanceof AdaptiveTask)) throw new Error(`--psact ${psactRun} is not a psact run`);
  if (dense.task instanceof AdaptiveTask) throw new Error(`--dense ${denseRun} is a psact/sact run`);
  const rate = 0.001;
  const times = { psact: [] as number[], dense: [] as number[] };
  const flops: number[] = [];
  const batchSizes = { psact: 0, dense: 0 };
  for (let i = 0; i < warmup + steps; ++i) {
    for (const [name, run] of [
      ['psact', psact],
      ['dense', dense],
    ] as const) {
      const t0 = process.hrtime.bigint();
      const { metrics, examples } = run.task.trainStep(run.step + 1 + i, rate);
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      batchSizes[name] = examples;
      if (i < warmup) continue;
      times[name].push(seconds);
      if (name === 'psact') flops.push(metrics.flopsFraction);
    }
  }
  const evaluation = timeEvaluation(
    psact.task,
    dense.task as ClassifierTask,
    batchSizes.psact,
    argValue('eval-reps', 10),
  );
  const imagesPerSecond = {
    psact: batchSizes.psact / median(times.psact),
    dense: batchSizes.dense / median(times.dense),
  };
  const ratio = imagesPerSecond.psact / imagesPerSecond.dense;
  const meanFlops = flops.reduce((a, b) => a + b, 0) / flops.length;
  const result = {
    date: new Date().toISOString(),
    commit: argText('commit', gitCommit()),
    machine: machine(),
    backend: tf.getBackend(),
    device: backend === PACT_CUDA ? registerPactCuda().device : null,
    psactRun,
    psactStep: psact.step,
    denseRun,
    denseStep: dense.step,
    batch: batchSizes,
    steps,
    warmup,
    secondsPerStep: times,
    psactFlopsFraction: flops,
    imagesPerSecond,
    ratio,
    evaluation,
  };
  fs.writeFileSync(`${out}.json`, `${JSON.stringify(result, null, 2)}\n`);
  const md = [
    `# PSACT vs dense ResNet training throughput on ${backend}`,
    '',
    `${result.date}, commit ${result.commit}, ${result.device === null ? '' : `${result.device}, host `}` +
      `${String(result.machine.cpu)} x${String(result.machine.cores)}, ` +
      `load average ${(result.machine.loadAverage as number[]).map((v) => v.toFixed(1)).join(' ')}. ` +
      `Command: \`npx tsx bench/psact_throughput.bench.ts --psact ${psactRun} --dense ${denseRun} --steps ${steps}` +
      `${backend === 'pact-cpu' ? '' : ` --backend ${backend}`}\`.`,
    '',
    '| model | checkpoint step | batch | median s/step | images/s | FLOPs fraction |',
    '|---|---:|---:|---:|---:|---:|',
    `| PSACT (relaxed training step) | ${psact.step} | ${batchSizes.psact} | ${median(times.psact).toFixed(3)} | ` +
      `${imagesPerSecond.psact.toFixed(1)} | ${meanFlops.toFixed(3)} |`,
    `| dense ResNet | ${dense.step} | ${batchSizes.dense} | ${median(times.dense).toFixed(3)} | ` +
      `${imagesPerSecond.dense.toFixed(1)} | 1 |`,
    '',
    `PSACT / dense images/s: **${ratio.toFixed(2)}×**.`,
    '',
    `## Evaluation (inference): one test batch of ${batchSizes.psact}, median of ${evaluation.reps} forwards`,
    '',
    '| model | mode | median ms | images/s | FLOPs fraction | executed FLOPs fraction | speed-up vs dense |',
    '|---|---|---:|---:|---:|---:|---:|',
    ...evaluation.rows.map(
      (r) =>
        `| ${r.model} | ${r.mode} | ${r.medianMs.toFixed(1)} | ${r.imagesPerSecond.toFixed(1)} | ` +
        `${r.flopsFraction.toFixed(3)} | ${r.executedFlopsFraction.toFixed(3)} | ${r.speedup.toFixed(2)}× |`,
    ),
    '',
  ].join('\n');
  fs.writeFileSync(`${out}.md`, md);
  process.stdout.write(md);
}

interface EvaluationRow {
  model: string;
  mode: string;
  medianMs: number;
  imagesPerSecond: number;
  flopsFraction: number;
  executedFlopsFraction: number;
  speedup: number;
}

/** Forward-only times of one test batch: the PSACT model in each of its evaluation modes, and the dense model. */
function timeEvaluation(
  psact: AdaptiveTask,
  dense: ClassifierTask,
  batch: number,
  reps: number,
): { reps: number; rows: EvaluationRow[] } {
  const { x, labels } = psact.testBatch(batch);
  const modes = psact.evalModes.filter((m): m is AdaptiveMode => m !== 'act');
  const times: Record<string, number[]> = {};
  const flops: Record<string, { fraction: number; executed: number }> = {};
  const { height, width } = psact.dataset;
  for (let r = 0; r <= reps; ++r) {
    for (const name of [...modes, 'dense']) {
      const t0 = process.hrtime.bigint();
      if (name === 'dense') {
        tf.tidy(() => {
          dense.model.forward(x, { training: false }).dataSync();
        });
      } else {
        const result = psact.model.forward(x, psact.forwardOptions(name as AdaptiveMode, false, r + 1));
        result.logits.dataSync();
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        const f = forwardFlops(psact.model, result, height, width);
        const mean = (a: number[]) => a.reduce((p, q) => p + q, 0) / a.length;
        flops[name] = { fraction: mean(f.flops) / f.denseFlops, executed: mean(f.executedFlops) / f.denseFlops };
        disposeForward(result);
        if (r > 0) (times[name] ??= []).push(ms);
        continue;
      }
      if (r > 0) (times[name] ??= []).push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  }
  tf.dispose([x, labels]);
  const denseMs = median(times.dense);
  const row = (model: string, mode: string, ms: number, fraction: number, executed: number): EvaluationRow => ({
    model,
    mode,
    medianMs: ms,
    imagesPerSecond: (1000 * batch) / ms,
    flopsFraction: fraction,
    executedFlopsFraction: executed,
    speedup: denseMs / ms,
  });
  return {
    reps,
    rows: [
      ...modes.map((m) => row('PSACT', m, median(times[m]), flops[m].fraction, flops[m].executed)),
      row('dense ResNet', '-', denseMs, 1, 1),
    ],
  };
}

void main();
