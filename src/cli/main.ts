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
import { CHECKPOINT_FILE, METRICS_FILE, train } from '../train/trainer';
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

/** Settings that only some models or datasets read: given for another, they would be ignored silently. */
const LSTM_KEYS = [
  'task',
  'training',
  'hidden',
  'maxIterations',
  'bits',
  'maxNonZero',
  'length',
  'maxDigits',
  'evalBatches',
];
const IMAGE_KEYS = ['dataset', 'dataDir', 'trainCount', 'testCount', 'width', 'evalLimit', 'momentum', 'weightDecay'];
const ADAPTIVE_KEYS = ['mode', 'tau', 'temperature', 'delta', 'group', 'haltBias', 'haltWarmup'];
/** The adaptive settings the LSTM reads too. */
const LSTM_ADAPTIVE_KEYS = ['tau', 'temperature', 'haltBias'];

/** Every setting of a run (a flag's camelCase name): config.json's and a --config file's keys. */
const CONFIG_KEYS = new Set([...Object.keys(DEFAULTS), ...IMAGE_KEYS, ...ADAPTIVE_KEYS, ...LSTM_KEYS]);

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

function positiveInt(name: string, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1 || n > max) {
      const range = max === Number.MAX_SAFE_INTEGER ? '' : ` up to ${max}`;
      throw new InvalidArgumentError(`${name} must be a positive integer${range}, got ${value}`);
    }
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

/**
 * A --config file's settings, each checked as its flag is (the same parser or choices): a JSON object whose keys
 * are the flags' camelCase names, numbers for numeric flags, strings for the others, an array for milestones.
 */
function readConfigFile(file: string, command: Command): Partial<RunConfig> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`--config ${file}: ${(e as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error(`--config ${file}: must hold a JSON object of settings, got ${JSON.stringify(parsed)}`);
  }
  const settings: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(parsed)) {
    const option = CONFIG_KEYS.has(key) ? command.options.find((o) => o.attributeName() === key) : undefined;
    if (option === undefined) {
      throw new Error(`--config ${file}: unknown setting "${key}" (the settings are ${[...CONFIG_KEYS].join(', ')})`);
    }
    const bad = (what: string) => new Error(`--config ${file}: "${key}" must be ${what}, got ${JSON.stringify(value)}`);
    try {
      if (key === 'milestones') {
        if (!Array.isArray(value) || !value.every((v) => typeof v === 'number')) throw bad('an array of numbers');
        settings[key] = option.parseArg!(value.join(','), undefined);
      } else if (option.argChoices !== undefined) {
        if (typeof value !== 'string' || !option.argChoices.includes(value)) {
          throw bad(`one of ${option.argChoices.join(', ')}`);
        }
        settings[key] = value;
      } else if (option.parseArg !== undefined) {
        if (typeof value !== 'number') throw bad('a number');
        settings[key] = option.parseArg(String(value), undefined);
      } else {
        if (typeof value !== 'string') throw bad('a string');
        settings[key] = value;
      }
    } catch (e) {
      const message = (e as Error).message;
      throw message.startsWith('--config') ? e : new Error(`--config ${file}: "${key}": ${message}`);
    }
  }
  return settings as Partial<RunConfig>;
}

/** Throws when a setting the user gave does not apply to the run's model, dataset or task. */
function checkApplicable(given: Partial<RunConfig>, config: RunConfig, flagOf: (key: string) => string): void {
  const keys = Object.keys(given);
  const refuse = (list: string[], why: string) => {
    const wrong = keys.filter((k) => list.includes(k));
    if (wrong.length > 0) throw new Error(`${wrong.map(flagOf).join(', ')}: ${why}`);
  };
  if (config.model === 'lstm') {
    refuse(IMAGE_KEYS, 'only for the image models, not --model lstm');
    refuse(
      ADAPTIVE_KEYS.filter((k) => !LSTM_ADAPTIVE_KEYS.includes(k)),
      'only for psact/sact, not --model lstm',
    );
    if (config.task !== 'parity') refuse(['bits', 'maxNonZero'], 'only for --task parity');
    if (config.task !== 'addition') refuse(['maxDigits'], 'only for --task addition');
    return;
  }
  refuse(LSTM_KEYS, `only for --model lstm, not ${config.model}`);
  if (config.dataset === 'shapes') refuse(['dataDir'], 'only for fashion-mnist and cifar10 (shapes is generated)');
  else refuse(['trainCount', 'testCount'], `only for the generated shapes dataset, not ${config.dataset}`);
}

/** The last test evaluation logged in a run's metrics.jsonl ({} when there is none). */
function lastTestMetrics(runDir: string): Record<string, number> {
  const file = path.join(runDir, METRICS_FILE);
  if (!fs.existsSync(file)) return {};
  let last: Record<string, number> = {};
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    const record = JSON.parse(line) as Record<string, unknown>;
    if (record.split === 'test') last = record as Record<string, number>;
  }
  return Object.fromEntries(Object.entries(last).filter(([k]) => k !== 'step' && k !== 'split'));
}

async function trainCommand(opts: Record<string, unknown>, command: Command): Promise<void> {
  const runDir = String(opts.run);
  if (fs.existsSync(runDir) && !fs.statSync(runDir).isDirectory()) {
    throw new Error(`--run ${runDir}: exists and is not a directory`);
  }
  const checkpoint = path.join(runDir, CHECKPOINT_FILE);
  const savedConfig = path.join(runDir, 'config.json');
  const flagOf = (key: string) => command.options.find((o) => o.attributeName() === key)?.long ?? key;
  const flags = Object.fromEntries(Object.entries(opts).filter(([k, v]) => CONFIG_KEYS.has(k) && v !== undefined));
  let config: RunConfig;
  let resume = opts.resume === true;
  if (resume) {
    // A run continues with the settings it was started with (they are in its checkpoint).
    const given = [...Object.keys(flags).map(flagOf), ...(opts.config === undefined ? [] : ['--config'])];
    if (given.length > 0) {
      throw new Error(
        `--resume continues ${runDir} with the settings it was started with: drop ${given.join(', ')} (or start ` +
          'a new run without --resume)',
      );
    }
    if (fs.existsSync(checkpoint)) {
      const meta = loadCheckpoint<{ config: RunConfig; step: number }>(checkpoint).meta;
      config = meta.config;
      if (meta.step >= config.steps) {
        process.stderr.write(`${runDir} already finished (step ${meta.step} of ${config.steps}): nothing to train\n`);
        process.stdout.write(`${JSON.stringify({ run: runDir, ...lastTestMetrics(runDir) })}\n`);
        return;
      }
      process.stderr.write(`resuming ${runDir} from its checkpoint at step ${meta.step}\n`);
    } else if (fs.existsSync(savedConfig)) {
      // Killed before its first checkpoint: there is nothing to keep, so it starts over with its own settings.
      config = JSON.parse(fs.readFileSync(savedConfig, 'utf8')) as RunConfig;
      resume = false;
      process.stderr.write(`${runDir} has no checkpoint yet: starting it over from step 0 with its config.json\n`);
    } else {
      throw new Error(`--resume: ${runDir} holds no checkpoint and no config.json: there is no run to resume`);
    }
  } else {
    const file = opts.config === undefined ? {} : readConfigFile(String(opts.config), command);
    const given = { ...file, ...flags } as Partial<RunConfig>;
    const lstm = given.model === 'lstm' ? LSTM_DEFAULTS : {};
    config = { ...DEFAULTS, ...lstm, ...given } as RunConfig;
    checkApplicable(given, config, flagOf);
    if (fs.existsSync(checkpoint)) {
      process.stderr.write(
        `${runDir} holds a run: starting a new one there (its checkpoint and metrics are replaced)\n`,
      );
    }
  }
  if (config.model !== 'lstm') unitsPerStage(config.model);
  await tf.ready();
  const data =
    config.model === 'lstm' ? `task ${config.task}, training ${config.training}` : `dataset ${config.dataset}`;
  process.stderr.write(`backend ${tf.getBackend()}, ${data}, model ${config.model}\n`);
  const task = buildTask(config);
  const progress = new TrainingProgress();
  // Ctrl-C or a kill between steps: the bar gives the terminal back (cursor, line wrap) and says how to go on.
  const interrupted = (signal: NodeJS.Signals) => {
    progress.stop();
    process.stderr.write(`\n${signal}: stopped; continue with \`pact train --run ${runDir} --resume\`\n`);
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  let finalMetrics: Record<string, number>;
  try {
    ({ finalMetrics } = await train(task, {
      totalSteps: config.steps,
      schedule: { learningRate: config.lr, milestones: config.milestones, decay: 10 },
      runDir,
      checkpointEvery: config.checkpointEvery,
      evalEvery: config.evalEvery,
      config: config as unknown as Record<string, unknown>,
      resume,
      onProgress: (event) => {
        progress.handle(event);
        // The report follows the run: rewritten at every test evaluation.
        if (event.kind === 'eval') writeReport(runDir);
      },
    }));
  } finally {
    progress.stop();
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
  }
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
  if (maps.length < opts.count) {
    process.stderr.write(
      `pact maps: the test split has ${maps.length} images: wrote ${maps.length} maps, not ${opts.count}\n`,
    );
  }
  process.stdout.write(`${JSON.stringify({ run: opts.run, mode: opts.mode, maps }, null, 2)}\n`);
}

function reportCommand(opts: { run: string }): void {
  const files = writeReport(opts.run);
  process.stdout.write(`${JSON.stringify(files, null, 2)}\n`);
}

function infoCommand(): void {
  const info = nativeAddon()?.buildInfo() ?? null;
  const pactCpu = { ...pactCpuStatus, denseConv: pactCpuDenseConv() };
  process.stdout.write(`${JSON.stringify({ pactCpu, pactCuda: pactCudaStatus(), native: info }, null, 2)}\n`);
}

/** Where pact-cpu's dense convolutions run (native/cpu/dense_conv.h; PACT_CONV_TILES is read at each call). */
function pactCpuDenseConv(): string {
  if (nativeAddon()?.conv2dForward === undefined) return 'tfjs-backend-cpu (the addon was built without oneDNN)';
  if (process.env.PACT_CONV_TILES === '0') return "oneDNN's direct convolution (PACT_CONV_TILES=0)";
  return (
    "oneDNN's direct convolution; stride-1 3x3 'same' ones from 16 channels, with at least 4 images a thread, on " +
    'Winograd F(4x4, 3x3) tiles (PACT_CONV_TILES=0 keeps oneDNN)'
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
  if (name === 'cpu') {
    // tfjs-backend-cpu's first write advises installing tfjs-node (which this package replaces): say what is true.
    (tf.backend() as unknown as { firstUse: boolean }).firstUse = false;
    process.stderr.write(
      "tfjs-pact: --backend cpu runs tfjs-backend-cpu's JavaScript kernels, far slower than pact-cpu (the default)\n",
    );
  }
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
    .option('--seed <n>', 'seed of data order, augmentation and initialisation', positiveInt('--seed', 2 ** 31))
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
