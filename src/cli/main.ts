#!/usr/bin/env node
/**
 * `pact`: train and evaluate the package's models from the command line.
 *
 *   pact info                         native build, backend, CUDA status
 *   pact train [options]              train (flags or --config file.json); --resume continues a run
 *   pact eval --run DIR               evaluate a run's last checkpoint on the test split
 *   pact --backend NAME <command>     run the command on another tfjs backend (pact-cuda: the GPU)
 */
import * as fs from 'fs';
import * as path from 'path';

import * as tf from '@tensorflow/tfjs';
import { Command, InvalidArgumentError, Option } from 'commander';

import { nativeAddon, PACT_CUDA, pactCpuStatus, pactCudaStatus, registerPactCuda } from '../index';
import { ADAPTIVE_MODES, type AdaptiveMode } from '../models/psact';
import { PreActResNet } from '../models/resnet';
import { AdaptiveLstm } from '../models/adaptive_lstm';
import { SEQUENCE_TASKS, sequenceGenerator, type SequenceTaskName } from '../data/sequence_tasks';
import { SEQUENCE_TRAININGS, SequenceTask, type SequenceTraining } from '../train/sequence_task';
import { AdaptiveTask, buildAdaptiveTask, parseAdaptiveModel } from '../train/adaptive_task';
import { ClassifierTask } from '../train/classifier_task';
import { loadCheckpoint } from '../train/checkpoint';
import { CHECKPOINT_FILE, train } from '../train/trainer';
import { DATASETS, loadDataset, type DatasetName } from './datasets';
import { writePonderMaps } from './maps';
import { writeReport } from './report';
import { TrainingProgress } from './progress';

/** Everything a training run depends on; saved as the run's config.json and inside its checkpoints. */
export interface RunConfig {
  dataset: DatasetName;
  dataDir?: string;
  trainCount?: number;
  testCount?: number;
  model: string;
  steps: number;
  batchSize: number;
  lr: number;
  momentum: number;
  weightDecay: number;
  milestones: number[];
  seed: number;
  evalEvery: number;
  checkpointEvery: number;
  evalLimit?: number;
  /** Channels of the first stage (the next two have 2x and 4x); default 16. */
  width?: number;
  /** Adaptive models (psact*, sact*): PSACT's training mode, τ, λ, δ, n×n grouping, initial halting bias. */
  mode?: string;
  tau?: number;
  temperature?: number;
  delta?: number;
  group?: number;
  haltBias?: number;
  haltWarmup?: number;
  /** --model lstm (defaults in LSTM_DEFAULTS; it also reads tau, temperature, haltBias). */
  task?: SequenceTaskName;
  training?: SequenceTraining;
  hidden?: number;
  maxIterations?: number;
  bits?: number;
  maxNonZero?: number;
  length?: number;
  maxDigits?: number;
  evalBatches?: number;
}

const DEFAULTS: RunConfig = {
  dataset: 'shapes',
  model: 'resnet32',
  steps: 600,
  batchSize: 128,
  lr: 0.1,
  momentum: 0.9,
  weightDecay: 1e-4,
  milestones: [0.5, 0.75],
  seed: 1,
  evalEvery: 100,
  checkpointEvery: 50,
};

const CONFIG_KEYS = new Set([
  ...Object.keys(DEFAULTS),
  'dataDir',
  'trainCount',
  'testCount',
  'evalLimit',
  'width',
  'mode',
  'tau',
  'temperature',
  'delta',
  'group',
  'haltBias',
  'haltWarmup',
  'task',
  'training',
  'hidden',
  'maxIterations',
  'bits',
  'maxNonZero',
  'length',
  'maxDigits',
  'evalBatches',
]);

/** --model lstm: what it changes in DEFAULTS (Adam's rate, a smaller batch) and its own settings. */
const LSTM_DEFAULTS: Partial<RunConfig> = {
  task: 'parity',
  training: 'relaxed',
  hidden: 32,
  maxIterations: 8,
  tau: 0.001,
  bits: 8,
  evalBatches: 8,
  steps: 2000,
  batchSize: 64,
  lr: 0.01,
  milestones: [0.75],
  evalEvery: 200,
  checkpointEvery: 200,
};

function positiveInt(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1)
      throw new InvalidArgumentError(`${name} must be a positive integer, got ${value}`);
    return n;
  };
}

function nonNegative(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!(n >= 0) || !Number.isFinite(n)) throw new InvalidArgumentError(`${name} must be a number >= 0, got ${value}`);
    return n;
  };
}

function fractions(value: string): number[] {
  const list = value.split(',').map(Number);
  if (list.some((f) => !(f > 0 && f < 1)))
    throw new InvalidArgumentError(`milestones must be fractions in (0, 1), got ${value}`);
  return list;
}

function finiteNumber(name: string, min = -Infinity, max = Infinity) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < min || n >= max) {
      throw new InvalidArgumentError(`${name} must be a number in [${min}, ${max}), got ${value}`);
    }
    return n;
  };
}

function groupSize(value: string): number {
  if (!['1', '2', '4', '8'].includes(value))
    throw new InvalidArgumentError(`--group must be 1, 2, 4 or 8, got ${value}`);
  return Number(value);
}

/** `resnet32`, `resnet110`, `resnet<6n+2>` or the adaptive `psact<6n+2>`, `sact<6n+2>`: n units per stage. */
export function unitsPerStage(model: string): number {
  const adaptive = parseAdaptiveModel(model);
  if (adaptive !== null) return adaptive.unitsPerStage;
  const m = /^resnet(\d+)$/.exec(model);
  const depth = m === null ? NaN : Number(m[1]);
  if (!(depth >= 8) || (depth - 2) % 6 !== 0) {
    throw new Error(
      `--model must be resnet<depth>, psact<depth> or sact<depth> with depth = 6n + 2 (resnet32, psact32, ...), ` +
        `got ${model}`,
    );
  }
  return (depth - 2) / 6;
}

/** The three stages' channels for a first-stage width w: [w, 2w, 4w]. */
export function stageWidths(width = 16): [number, number, number] {
  return [width, 2 * width, 4 * width];
}

/** --model lstm: the adaptive LSTM on a generated sequence task. */
function buildSequenceTask(config: RunConfig): SequenceTask {
  const c = { ...LSTM_DEFAULTS, ...config };
  const generator = sequenceGenerator(c.task as SequenceTaskName, {
    bits: c.bits as number,
    maxNonZero: c.maxNonZero,
    length: c.length,
    maxDigits: c.maxDigits,
  });
  const model = new AdaptiveLstm({
    inputSize: generator.inputSize,
    hiddenSize: c.hidden as number,
    outputSize: generator.outputSize,
    maxIterations: c.maxIterations as number,
    haltBias: c.haltBias,
    seed: c.seed,
  });
  return new SequenceTask(model, generator, {
    training: c.training as SequenceTraining,
    tau: c.tau as number,
    temperature: c.temperature,
    batchSize: c.batchSize,
    seed: c.seed,
    learningRate: c.lr,
    evalBatches: c.evalBatches,
  });
}

function buildTask(config: RunConfig): ClassifierTask | AdaptiveTask | SequenceTask {
  if (config.model === 'lstm') return buildSequenceTask(config);
  const adaptive = parseAdaptiveModel(config.model) !== null;
  const adaptiveOnly = (['mode', 'tau', 'temperature', 'delta', 'group', 'haltBias', 'haltWarmup'] as const).filter(
    (key) => config[key] !== undefined,
  );
  if (!adaptive && adaptiveOnly.length > 0) {
    throw new Error(`${adaptiveOnly.join(', ')}: only for adaptive models (psact*, sact*), not ${config.model}`);
  }
  const dataset = loadDataset({ ...config, seed: config.seed });
  if (adaptive) return buildAdaptiveTask({ ...config, widths: stageWidths(config.width) }, dataset);
  const model = new PreActResNet({
    unitsPerStage: unitsPerStage(config.model),
    numClasses: dataset.numClasses,
    inputChannels: dataset.channels,
    seed: config.seed,
    widths: stageWidths(config.width),
  });
  return new ClassifierTask(model, dataset, {
    batchSize: config.batchSize,
    seed: config.seed,
    sgd: { learningRate: config.lr, momentum: config.momentum, weightDecay: config.weightDecay },
    evalLimit: config.evalLimit,
  });
}

function readConfigFile(file: string | undefined): Partial<RunConfig> {
  if (file === undefined) return {};
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<RunConfig>;
  } catch (e) {
    throw new Error(`--config ${file}: ${(e as Error).message}`);
  }
}

async function trainCommand(opts: Record<string, unknown>): Promise<void> {
  const runDir = String(opts.run);
  const checkpoint = path.join(runDir, CHECKPOINT_FILE);
  let config: RunConfig;
  if (opts.resume === true && fs.existsSync(checkpoint)) {
    config = loadCheckpoint<{ config: RunConfig }>(checkpoint).meta.config;
    process.stderr.write(`resuming ${runDir} from its checkpoint\n`);
  } else {
    const flags = Object.fromEntries(Object.entries(opts).filter(([k, v]) => CONFIG_KEYS.has(k) && v !== undefined));
    const file = readConfigFile(opts.config as string | undefined);
    const lstm = (flags.model ?? file.model) === 'lstm' ? LSTM_DEFAULTS : {};
    config = { ...DEFAULTS, ...lstm, ...file, ...flags } as RunConfig;
  }
  if (config.model !== 'lstm') unitsPerStage(config.model);
  await tf.ready();
  const data =
    config.model === 'lstm' ? `task ${config.task}, training ${config.training}` : `dataset ${config.dataset}`;
  process.stderr.write(`backend ${tf.getBackend()}, ${data}, model ${config.model}\n`);
  const task = buildTask(config);
  const progress = new TrainingProgress();
  const { finalMetrics } = await train(task, {
    totalSteps: config.steps,
    schedule: { learningRate: config.lr, milestones: config.milestones, decay: 10 },
    runDir,
    checkpointEvery: config.checkpointEvery,
    evalEvery: config.evalEvery,
    config: config as unknown as Record<string, unknown>,
    resume: opts.resume === true,
    onProgress: (event) => {
      progress.handle(event);
      // The report follows the run: rewritten at every test evaluation.
      if (event.kind === 'eval') writeReport(runDir);
    },
  });
  progress.stop();
  if (task instanceof AdaptiveTask)
    writePonderMaps(task, { out: path.join(runDir, 'maps'), count: 8, mode: 'thresholded' });
  const report = writeReport(runDir);
  process.stderr.write(`report: ${report.markdown}, ${report.html}\n`);
  process.stdout.write(`${JSON.stringify({ run: runDir, ...finalMetrics })}\n`);
}

/** The task of a run, with the variables of its last checkpoint. */
export async function restoreTask(
  run: string,
  overrides: Partial<RunConfig> = {},
): Promise<{ task: ClassifierTask | AdaptiveTask | SequenceTask; step: number }> {
  const file = path.join(run, CHECKPOINT_FILE);
  const { meta, arrays } = loadCheckpoint<{ config: RunConfig; step: number }>(file);
  await tf.ready();
  const task = buildTask({ ...meta.config, ...overrides });
  task.variables().forEach((v, i) => {
    const a = arrays[`var/${i}`];
    tf.tidy(() => v.assign(tf.tensor(a.values, a.shape, a.dtype)));
  });
  return { task, step: meta.step };
}

async function evalCommand(opts: { run: string; evalLimit?: number | 'all' }): Promise<void> {
  const limit = opts.evalLimit;
  const { task, step } = await restoreTask(
    opts.run,
    limit === undefined ? {} : { evalLimit: limit === 'all' ? undefined : limit },
  );
  // Adaptive models: every mode, FLOPs, and the peak tensor memory of evaluating one batch in each mode.
  const memory = task instanceof AdaptiveTask ? await task.peakMemory() : {};
  process.stdout.write(`${JSON.stringify({ run: opts.run, step, ...task.evaluate(), ...memory })}\n`);
}

async function mapsCommand(opts: { run: string; out: string; count: number; mode: AdaptiveMode; scale: number }) {
  const { task } = await restoreTask(opts.run);
  if (!(task instanceof AdaptiveTask)) throw new Error(`pact maps: ${opts.run} is not a psact or sact run`);
  const maps = writePonderMaps(task, opts);
  process.stdout.write(`${JSON.stringify({ run: opts.run, mode: opts.mode, maps }, null, 2)}\n`);
}

function reportCommand(opts: { run: string }): void {
  const files = writeReport(opts.run);
  process.stdout.write(`${JSON.stringify(files, null, 2)}\n`);
}

function infoCommand(): void {
  const info = nativeAddon()?.buildInfo() ?? null;
  process.stdout.write(
    `${JSON.stringify({ pactCpu: pactCpuStatus, pactCuda: pactCudaStatus(), native: info }, null, 2)}\n`,
  );
}

/**
 * --backend: the tfjs backend every command runs on (default: pact-cpu in Node). pact-cuda is registered here if
 * it is not yet (it needs a CUDA build and device, or PACT_DEVICE=sim); a backend that cannot be used is an error
 * that says why.
 */
export async function selectBackend(name: string | undefined): Promise<void> {
  if (name === undefined) return;
  if (name === PACT_CUDA) {
    const status = registerPactCuda();
    if (!status.registered) throw new Error(`--backend ${PACT_CUDA}: ${status.reason}`);
  }
  const known = Object.keys(tf.engine().registryFactory);
  if (!known.includes(name)) throw new Error(`--backend must be one of ${known.join(', ')}, got ${name}`);
  if (!(await tf.setBackend(name))) throw new Error(`--backend ${name}: the backend failed to initialise`);
}

export function cli(): Command {
  const program = new Command('pact').description('PACT for TensorFlow.js: train and evaluate adaptive networks');
  program
    .option('--backend <name>', 'tfjs backend of every command: pact-cpu (default), pact-cuda (GPU), cpu')
    .hook('preAction', async () => selectBackend(program.opts<{ backend?: string }>().backend));
  program.command('info').description('native build, backends and CUDA status').action(infoCommand);
  program
    .command('train')
    .description('train a model; metrics go to RUN/metrics.jsonl, checkpoints to RUN/checkpoint.bin')
    .requiredOption('--run <dir>', 'run directory')
    .option('--config <file>', 'JSON file with any of the options below (flags override it)')
    .addOption(new Option('--dataset <name>', 'dataset').choices(DATASETS))
    .option('--data-dir <dir>', 'directory of the dataset files (fashion-mnist, cifar10)')
    .option('--train-count <n>', 'shapes: training images to generate', positiveInt('--train-count'))
    .option('--test-count <n>', 'shapes: test images to generate', positiveInt('--test-count'))
    .option('--model <name>', 'resnet32, resnet110, resnet<6n+2>; adaptive psact<6n+2>, sact<6n+2>; lstm (--task)')
    .option('--steps <n>', 'training steps', positiveInt('--steps'))
    .option('--batch-size <n>', 'batch size', positiveInt('--batch-size'))
    .option('--width <n>', 'channels of the first stage (2x, 4x in the next two; default 16)', positiveInt('--width'))
    .option('--lr <x>', 'initial learning rate', nonNegative('--lr'))
    .option('--momentum <x>', 'SGD momentum', nonNegative('--momentum'))
    .option('--weight-decay <x>', 'L2 weight decay', nonNegative('--weight-decay'))
    .option('--milestones <list>', 'fractions of training where lr /= 10', fractions)
    .option('--seed <n>', 'seed of data order, augmentation and initialisation', positiveInt('--seed'))
    .option('--eval-every <n>', 'steps between test evaluations', positiveInt('--eval-every'))
    .option('--eval-limit <n>', 'evaluate on at most n test images', positiveInt('--eval-limit'))
    .option('--checkpoint-every <n>', 'steps between checkpoints', positiveInt('--checkpoint-every'))
    .option('--resume', 'continue the run in --run from its last checkpoint')
    .addOption(
      new Option('--mode <mode>', 'psact: relaxed (eq. 26) or discrete (REINFORCE, Adam 1e-3)').choices([
        'relaxed',
        'discrete',
      ]),
    )
    .option('--tau <x>', 'psact/sact: computation penalty tau (default 0.01)', nonNegative('--tau'))
    .option(
      '--temperature <x>',
      'psact: RelaxedBernoulli temperature lambda (default 0.5)',
      finiteNumber('--temperature', Number.MIN_VALUE),
    )
    .option(
      '--delta <x>',
      'psact: clipping delta of the relaxed active mask (default 0.01)',
      finiteNumber('--delta', 0, 1),
    )
    .option('--group <n>', 'psact/sact: n x n latent grouping, 1, 2, 4 or 8 (default 1)', groupSize)
    .option('--halt-bias <x>', 'psact/sact: initial halting bias (default -3)', finiteNumber('--halt-bias'))
    .option(
      '--halt-warmup <fraction>',
      'psact/sact: fraction of the steps trained with the halting units frozen, so every unit learns before ' +
        'positions start to stop (default 0.1)',
      finiteNumber('--halt-warmup', 0, 1),
    )
    .addOption(new Option('--task <name>', 'lstm: sequence task (default parity)').choices(SEQUENCE_TASKS))
    .addOption(
      new Option('--training <how>', 'lstm: relaxed, reinforce or act (default relaxed)').choices(SEQUENCE_TRAININGS),
    )
    .option('--hidden <n>', 'lstm: LSTM units (default 32)', positiveInt('--hidden'))
    .option(
      '--max-iterations <n>',
      'lstm: L, iterations per timestep at most, >= 2 (default 8)',
      positiveInt('--max-iterations'),
    )
    .option('--bits <n>', 'parity: entries per input vector (default 8)', positiveInt('--bits'))
    .option(
      '--max-non-zero <n>',
      'parity: non-zero entries at most (difficulty; default --bits)',
      positiveInt('--max-non-zero'),
    )
    .option('--length <n>', 'parity (default 1), addition (default 5): timesteps per sequence', positiveInt('--length'))
    .option('--max-digits <n>', 'addition: digits per number at most (default 5)', positiveInt('--max-digits'))
    .option('--eval-batches <n>', 'lstm: test set of n batches (default 8)', positiveInt('--eval-batches'))
    .action(trainCommand);
  program
    .command('eval')
    .description("evaluate a run's last checkpoint on the test split")
    .requiredOption('--run <dir>', 'run directory')
    .option('--eval-limit <n|all>', "test images (default: the run's --eval-limit)", (v: string) =>
      v === 'all' ? 'all' : positiveInt('--eval-limit')(v),
    )
    .action(evalCommand);
  program
    .command('maps')
    .description('psact/sact: ponder-cost maps (input and heat map side by side) of test images, as PNG')
    .requiredOption('--run <dir>', 'run directory')
    .requiredOption('--out <dir>', 'directory for ponder_<i>.png')
    .option('--count <n>', 'test images', positiveInt('--count'), 8)
    .addOption(new Option('--mode <mode>', 'evaluation mode').choices(ADAPTIVE_MODES).default('thresholded'))
    .option('--scale <n>', 'PNG pixels per input pixel', positiveInt('--scale'), 4)
    .action(mapsCommand);
  program
    .command('report')
    .description("a run's metrics as RUN/report.md (charts in RUN/report/*.svg) and a self-contained RUN/report.html")
    .requiredOption('--run <dir>', 'run directory')
    .action(reportCommand);
  return program;
}

if (require.main === module) {
  cli()
    .parseAsync(process.argv)
    .catch((e: Error) => {
      process.stderr.write(`pact: ${e.message}\n`);
      process.exit(1);
    });
}
