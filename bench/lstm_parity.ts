/**
 * The adaptive LSTM on Graves' parity task (PACT section 4.2): PACT trained relaxed vs ACT, for a few τ, each run
 * through the package's one trainer (src/train/trainer.ts). For every run and evaluation mode it reports the test
 * accuracy and the mean ponder steps, and the mean number of iterations executed as a function of the input's
 * number of non-zero entries (ACT's paper: harder inputs get more steps; does PACT reproduce that?).
 *
 *   PACT_NUM_THREADS=1 PACT_ADDON=$PWD/build/Release/pact.node npx tsx bench/lstm_parity.ts [--bits 4]
 *     [--hidden 32] [--L 8] [--steps 600] [--batch 64] [--lr 0.01] [--taus 0.001,0.003,0.01]
 *     [--trainings relaxed,act] [--eval-batches 8] [--seed 1] [--out bench/results/lstm_parity]
 *
 * The defaults take about 10 minutes on 2 busy cores (6 runs of 600 steps; one thread is enough for these
 * dispatch-bound small matrices). Results are deterministic for a seed: batches and noise are seeded.
 *
 * Writes <out>.json (machine, date, commit, configuration, every figure) and <out>.md (the tables).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import * as tf from '@tensorflow/tfjs';

import { nativeAddon, pactCpuStatus } from '../src';
import { ParityGenerator } from '../src/data/sequence_tasks';
import { AdaptiveLstm } from '../src/models/adaptive_lstm';
import type { AdaptiveMode } from '../src/ops/adaptive_block';
import { SequenceTask, type SequenceEvaluation, type SequenceTraining } from '../src/train/sequence_task';
import { train } from '../src/train/trainer';
import { argValue, gitCommit } from './util';

function argList(name: string, fallback: string): string[] {
  const i = process.argv.indexOf(`--${name}`);
  return (i < 0 ? fallback : process.argv[i + 1]).split(',');
}

function argString(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? fallback : process.argv[i + 1];
}

const config = {
  bits: argValue('bits', 4),
  hidden: argValue('hidden', 32),
  maxIterations: argValue('L', 8),
  steps: argValue('steps', 600),
  batch: argValue('batch', 64),
  lr: argValue('lr', 0.01),
  evalBatches: argValue('eval-batches', 8),
  seed: argValue('seed', 1),
  taus: argList('taus', '0.001,0.003,0.01').map(Number),
  trainings: argList('trainings', 'relaxed,act') as SequenceTraining[],
  milestones: [0.75],
};
const out = argString('out', path.join('bench', 'results', 'lstm_parity'));

interface ModeSummary {
  accuracy: number;
  /** Mean N (PACT modes) or ρ (ACT) per sequence. */
  ponder: number;
  /** Mean iterations executed per sequence. */
  steps: number;
  /** Mean LSTM transitions run per batch (what the early stop costs: the slowest sequence of the batch). */
  batchSteps: number;
  /** Per non-zero count c = 1 … bits: [examples, mean iterations, mean ponder, accuracy]. */
  byNonZero: Array<[number, number, number, number]>;
}

function summarise(e: SequenceEvaluation, bits: number): ModeSummary {
  const sums = Array.from({ length: bits + 1 }, () => [0, 0, 0, 0]);
  for (let i = 0; i < e.difficulty.length; ++i) {
    const s = sums[e.difficulty[i]];
    s[0] += 1;
    s[1] += e.iterations[i];
    s[2] += e.ponder[i];
    s[3] += e.correct[i];
  }
  const mean = (a: ArrayLike<number>) => Array.from(a).reduce((x, y) => x + y, 0) / a.length;
  return {
    accuracy: mean(e.correct),
    ponder: mean(e.ponder),
    steps: mean(e.iterations),
    batchSteps: e.cellCallsPerStep,
    byNonZero: sums.slice(1).map(([n, it, p, c]) => [n, n ? it / n : NaN, n ? p / n : NaN, n ? c / n : NaN]),
  };
}

/** Pearson correlation of the non-zero count with the iterations executed, over the test examples. */
function correlation(e: SequenceEvaluation): number {
  const n = e.difficulty.length;
  const mx = Array.from(e.difficulty).reduce((a, b) => a + b, 0) / n;
  const my = Array.from(e.iterations).reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; ++i) {
    sxy += (e.difficulty[i] - mx) * (e.iterations[i] - my);
    sxx += (e.difficulty[i] - mx) ** 2;
    syy += (e.iterations[i] - my) ** 2;
  }
  return sxx > 0 && syy > 0 ? sxy / Math.sqrt(sxx * syy) : 0;
}

async function runOne(training: SequenceTraining, tau: number) {
  const gen = new ParityGenerator({ bits: config.bits });
  const model = new AdaptiveLstm({
    inputSize: config.bits,
    hiddenSize: config.hidden,
    outputSize: 1,
    maxIterations: config.maxIterations,
    seed: config.seed,
  });
  const modes: AdaptiveMode[] =
    training === 'act' ? ['act', 'thresholded'] : ['relaxed', 'discrete', 'thresholded', 'act'];
  const task = new SequenceTask(model, gen, {
    training,
    tau,
    batchSize: config.batch,
    seed: config.seed,
    learningRate: config.lr,
    evalBatches: config.evalBatches,
    evalModes: modes,
  });
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pact-lstm-parity-'));
  const started = Date.now();
  await train(task, {
    totalSteps: config.steps,
    schedule: { learningRate: config.lr, milestones: config.milestones, decay: 10 },
    runDir,
    checkpointEvery: config.steps,
    evalEvery: config.steps,
    config: { ...config, training, tau },
    resume: false,
    onProgress: (e) => {
      if (e.kind === 'step' && e.step % 100 === 0) {
        const m = e.metrics;
        process.stderr.write(
          `  ${training} τ=${tau} step ${e.step}: loss ${m.loss.toFixed(3)} acc ${m.accuracy.toFixed(3)} ` +
            `ponder ${m.ponder.toFixed(2)} (${e.stepsPerSecond.toFixed(1)} steps/s)\n`,
        );
      }
    },
  });
  const trainSeconds = (Date.now() - started) / 1000;
  const metrics = fs
    .readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, number | string>);
  fs.rmSync(runDir, { recursive: true, force: true });
  const evaluations = Object.fromEntries(modes.map((m) => [m, task.evaluateMode(m)]));
  const result = {
    training,
    tau,
    trainSeconds,
    finalTrainLoss: metrics.filter((m) => m.split === 'train').slice(-1)[0]?.loss,
    modes: Object.fromEntries(modes.map((m) => [m, summarise(evaluations[m], config.bits)])),
    correlation: Object.fromEntries(modes.map((m) => [m, correlation(evaluations[m])])),
  };
  task.dispose();
  model.dispose();
  return result;
}

function fmt(v: number, digits = 2): string {
  return Number.isFinite(v) ? v.toFixed(digits) : '–';
}

function markdown(results: Awaited<ReturnType<typeof runOne>>[], meta: Record<string, unknown>): string {
  const lines = [
    '# Adaptive LSTM on parity: PACT (relaxed) vs ACT',
    '',
    `Command: \`${meta.command}\``,
    '',
    `Machine: ${meta.machineLine}. Commit ${meta.commit}, ${meta.date}.`,
    '',
    `Task: Graves' parity, ${config.bits} entries per vector (Graves: 64), 1 to ${config.bits} of them ±1, target the ` +
      `parity of the non-zero count; one timestep per sequence. Model: LSTM with ${config.hidden} units (Graves: a ` +
      `128-unit tanh RNN), at most L = ${config.maxIterations} iterations per timestep (Graves: 100). ` +
      `${config.steps} Adam steps of ${config.batch} sequences (lr ${config.lr}, /10 at ${config.milestones[0] * 100}%), ` +
      `seed ${config.seed}; test set ${config.evalBatches * config.batch} fresh sequences.`,
    '',
    '## Accuracy and mean ponder steps',
    '',
    'ponder: mean N (PACT modes) or ρ = N + R (ACT); steps: mean iterations executed per sequence; batch steps: LSTM ' +
      'transitions per batch (evaluation stops a timestep when the whole batch has halted; relaxed mode runs all L).',
    '',
    '| training | τ | eval mode | accuracy | ponder | steps | batch steps | corr(non-zeros, steps) | train s |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const r of results) {
    for (const [mode, s] of Object.entries(r.modes)) {
      lines.push(
        `| ${r.training} | ${r.tau} | ${mode} | ${fmt(s.accuracy, 3)} | ${fmt(s.ponder)} | ${fmt(s.steps)} | ` +
          `${fmt(s.batchSteps)} | ${fmt(r.correlation[mode], 3)} | ${fmt(r.trainSeconds, 0)} |`,
      );
    }
  }
  lines.push(
    '',
    '## Mean iterations executed by number of non-zero entries',
    '',
    'Each model in the mode it would be deployed in: PACT thresholded (deterministic) and ACT as trained.',
    '',
    `| training | τ | mode | ${Array.from({ length: config.bits }, (_, i) => i + 1).join(' | ')} |`,
    `| --- | --- | --- | ${Array.from({ length: config.bits }, () => '---').join(' | ')} |`,
  );
  for (const r of results) {
    for (const mode of r.training === 'act' ? ['act'] : ['thresholded', 'discrete']) {
      const s = r.modes[mode];
      lines.push(`| ${r.training} | ${r.tau} | ${mode} | ${s.byNonZero.map(([, it]) => fmt(it)).join(' | ')} |`);
    }
  }
  lines.push('', '## Accuracy by number of non-zero entries', '');
  lines.push(`| training | τ | mode | ${Array.from({ length: config.bits }, (_, i) => i + 1).join(' | ')} |`);
  lines.push(`| --- | --- | --- | ${Array.from({ length: config.bits }, () => '---').join(' | ')} |`);
  for (const r of results) {
    const mode = r.training === 'act' ? 'act' : 'thresholded';
    lines.push(
      `| ${r.training} | ${r.tau} | ${mode} | ${r.modes[mode].byNonZero.map(([, , , a]) => fmt(a)).join(' | ')} |`,
    );
  }
  return `${lines.join('\n')}\n`;
}

function threadsPrefix(): string {
  const threads = process.env.PACT_NUM_THREADS;
  return threads === undefined ? '' : `PACT_NUM_THREADS=${threads}`;
}

async function main(): Promise<void> {
  await tf.ready();
  const started = Date.now();
  const results = [];
  for (const tau of config.taus) {
    for (const training of config.trainings) {
      process.stderr.write(`${training}, τ = ${tau}\n`);
      results.push(await runOne(training, tau));
    }
  }
  const cpus = os.cpus();
  const meta = {
    bench: 'lstm_parity',
    command: [threadsPrefix(), 'npx tsx bench/lstm_parity.ts', ...process.argv.slice(2)].filter(Boolean).join(' '),
    date: new Date().toISOString(),
    commit: gitCommit(),
    machine: {
      cpu: cpus[0]?.model ?? 'unknown',
      cores: cpus.length,
      loadAverage: os.loadavg().map((v) => Number(v.toFixed(2))),
      node: process.version,
      tfjs: tf.version.tfjs,
      backend: tf.getBackend(),
      pactCpu: pactCpuStatus.registered,
      threads: nativeAddon()?.buildInfo().threads ?? null,
    },
    machineLine: '',
    totalSeconds: 0,
  };
  meta.totalSeconds = (Date.now() - started) / 1000;
  meta.machineLine =
    `${meta.machine.cpu}, ${meta.machine.cores} cores (load average ${meta.machine.loadAverage.join(' / ')} at the end), ` +
    `backend ${meta.machine.backend}, total ${meta.totalSeconds.toFixed(0)} s`;
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(`${out}.json`, `${JSON.stringify({ ...meta, config, results }, null, 2)}\n`);
  fs.writeFileSync(`${out}.md`, markdown(results, meta));
  process.stdout.write(fs.readFileSync(`${out}.md`, 'utf8'));
}

main().catch((e: Error) => {
  process.stderr.write(`${e.stack ?? e.message}\n`);
  process.exit(1);
});
