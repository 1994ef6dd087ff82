/**
 * The one training loop for every model (ResNets, PSACT, the adaptive LSTM): learning-rate schedule, periodic
 * evaluation, metrics as JSON lines, atomic checkpoints and exact resume. What a model computes lives in its
 * `TrainTask`; this file only orders the steps.
 *
 * Resume is exact: batches are a function of (seed, step) (see data/batches.ts), the checkpoint holds every
 * variable, the optimizer's slots and the task's own state, so a run resumed from step s continues as the
 * uninterrupted run would have.
 */
import * as fs from 'fs';
import * as path from 'path';

import * as tf from '@tensorflow/tfjs';

import { loadCheckpoint, saveCheckpoint, type StoredArray } from './checkpoint';

export interface StepResult {
  /** Scalar metrics of the step (loss, accuracy, FLOPs fraction...), already read back. */
  metrics: Record<string, number>;
  /** Examples processed (for the rate). */
  examples: number;
}

export interface TrainTask {
  /** Every variable whose value a checkpoint must keep (weights and running statistics), in a fixed order. */
  variables(): tf.Variable[];
  /** One optimisation step at this learning rate; disposes every tensor it makes. */
  trainStep(step: number, learningRate: number): StepResult;
  /** Test-set metrics, keyed by name (e.g. `relaxed.accuracy`). */
  evaluate(): Record<string, number>;
  /** The optimizer whose slots are checkpointed. */
  optimizer: tf.Optimizer;
  /** Extra state to checkpoint (e.g. a REINFORCE baseline). */
  saveState?(): Record<string, number>;
  loadState?(state: Record<string, number>): void;
}

export interface Schedule {
  learningRate: number;
  /** Fractions of training at which the rate is divided by `decay`. */
  milestones: number[];
  decay: number;
}

export function learningRateAt(schedule: Schedule, step: number, totalSteps: number): number {
  const passed = schedule.milestones.filter((m) => step >= Math.round(m * totalSteps)).length;
  return schedule.learningRate / schedule.decay ** passed;
}

export interface TrainOptions {
  totalSteps: number;
  schedule: Schedule;
  /** Directory for checkpoint.bin, metrics.jsonl and config.json. */
  runDir: string;
  checkpointEvery: number;
  evalEvery: number;
  /** Written into config.json and the checkpoint: the run's whole configuration. */
  config: Record<string, unknown>;
  resume: boolean;
  /** Called after every step and evaluation (progress bar). */
  onProgress?(event: ProgressEvent): void;
}

export type ProgressEvent =
  | {
      kind: 'step';
      step: number;
      totalSteps: number;
      metrics: Record<string, number>;
      examplesPerSecond: number;
      stepsPerSecond: number;
    }
  | { kind: 'eval'; step: number; metrics: Record<string, number> }
  | { kind: 'checkpoint'; step: number; file: string };

interface CheckpointMeta {
  step: number;
  config: Record<string, unknown>;
  taskState: Record<string, number>;
  variableNames: string[];
  optimizerNames: string[];
}

export const CHECKPOINT_FILE = 'checkpoint.bin';
export const METRICS_FILE = 'metrics.jsonl';

function stored(t: tf.Tensor): StoredArray {
  const dtype = t.dtype === 'int32' ? 'int32' : 'float32';
  return {
    shape: t.shape,
    dtype,
    values: dtype === 'int32' ? (t.dataSync() as Int32Array) : (t.dataSync() as Float32Array),
  };
}

async function writeCheckpoint(
  task: TrainTask,
  file: string,
  step: number,
  config: Record<string, unknown>,
): Promise<void> {
  const arrays: Record<string, StoredArray> = {};
  const variableNames: string[] = [];
  task.variables().forEach((v, i) => {
    const key = `var/${i}`;
    arrays[key] = stored(v);
    variableNames.push(v.name);
  });
  const slots = await task.optimizer.getWeights();
  const optimizerNames: string[] = [];
  slots.forEach((slot, i) => {
    arrays[`opt/${i}`] = stored(slot.tensor);
    optimizerNames.push(slot.name);
  });
  // getWeights() returns the optimizer's own slot variables plus fresh tensors (its iteration count): free those.
  tf.dispose(slots.map((s) => s.tensor).filter((t) => !(t instanceof tf.Variable)));
  const meta: CheckpointMeta = { step, config, taskState: task.saveState?.() ?? {}, variableNames, optimizerNames };
  saveCheckpoint(file, meta, arrays);
}

async function restoreCheckpoint(task: TrainTask, file: string): Promise<CheckpointMeta> {
  const { meta, arrays } = loadCheckpoint<CheckpointMeta>(file);
  const variables = task.variables();
  if (variables.length !== meta.variableNames.length) {
    throw new Error(
      `resume: ${file} holds ${meta.variableNames.length} variables but the model has ${variables.length}` +
        ' (was it written with another model or configuration?)',
    );
  }
  // Everything is checked before anything is assigned: a refused resume leaves the model as it was.
  variables.forEach((v, i) => {
    const a = arrays[`var/${i}`];
    if (a === undefined || a.shape.join(',') !== v.shape.join(',') || a.dtype !== v.dtype) {
      throw new Error(
        `resume: ${file} variable ${meta.variableNames[i]} has shape [${a?.shape}] (${a?.dtype}), model has ` +
          `[${v.shape}] (${v.dtype})`,
      );
    }
  });
  // Optimizer slots named after a variable ("<variable>/m", ...) must have its shape (tfjs' setWeights does not
  // check: a mismatch would surface at the next step).
  meta.optimizerNames.forEach((name, i) => {
    const a = arrays[`opt/${i}`];
    const owner = meta.variableNames.findIndex((v) => name.startsWith(`${v}/`));
    if (a === undefined || (owner >= 0 && a.shape.join(',') !== variables[owner].shape.join(','))) {
      throw new Error(
        `resume: ${file} optimizer slot ${name} has shape [${a?.shape}], its variable has ` +
          `[${owner >= 0 ? variables[owner].shape : '?'}]`,
      );
    }
  });
  variables.forEach((v, i) => {
    const a = arrays[`var/${i}`];
    tf.tidy(() => v.assign(tf.tensor(a.values, a.shape, a.dtype)));
  });
  const slots = meta.optimizerNames.map((name, i) => {
    const a = arrays[`opt/${i}`];
    return { name, tensor: tf.tensor(a.values, a.shape, a.dtype) };
  });
  if (slots.length > 0) await task.optimizer.setWeights(slots);
  tf.dispose(slots.map((s) => s.tensor)); // setWeights copies them into its own variables
  task.loadState?.(meta.taskState);
  return meta;
}

/**
 * Keeps only the metric lines at or before `step` (a killed run may have logged past its last checkpoint). A last
 * line cut short by the kill is dropped too; a line before it that is not JSON is an error naming the file and line.
 */
function truncateMetrics(file: string, step: number): void {
  if (!fs.existsSync(file)) return;
  const lines = fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '');
  const kept: string[] = [];
  lines.forEach((line, i) => {
    let record: { step: number };
    try {
      record = JSON.parse(line) as { step: number };
    } catch {
      if (i === lines.length - 1) return;
      throw new Error(`resume: ${file}:${i + 1}: not JSON`);
    }
    if (record.step <= step) kept.push(line);
  });
  fs.writeFileSync(file, kept.map((l) => `${l}\n`).join(''));
}

export async function train(task: TrainTask, options: TrainOptions): Promise<{ finalMetrics: Record<string, number> }> {
  const { totalSteps, runDir } = options;
  fs.mkdirSync(runDir, { recursive: true });
  const checkpointFile = path.join(runDir, CHECKPOINT_FILE);
  const metricsFile = path.join(runDir, METRICS_FILE);
  let step = 0;
  if (options.resume && fs.existsSync(checkpointFile)) {
    step = (await restoreCheckpoint(task, checkpointFile)).step;
    truncateMetrics(metricsFile, step);
  } else {
    // A new run in this directory: the previous run's checkpoint must not be resumed into it later.
    fs.rmSync(checkpointFile, { force: true });
    if (fs.existsSync(metricsFile)) fs.rmSync(metricsFile);
    fs.writeFileSync(path.join(runDir, 'config.json'), `${JSON.stringify(options.config, null, 2)}\n`);
  }
  const log = (record: Record<string, unknown>) => fs.appendFileSync(metricsFile, `${JSON.stringify(record)}\n`);
  let finalMetrics: Record<string, number> = {};
  let windowStart = Date.now();
  let windowExamples = 0;
  let windowSteps = 0;
  while (step < totalSteps) {
    // Let the event loop turn between steps: a signal handler (Ctrl-C) runs after the current step, not at the end.
    await new Promise((resolve) => setImmediate(resolve));
    const lr = learningRateAt(options.schedule, step, totalSteps);
    const result = task.trainStep(step, lr);
    step += 1;
    windowExamples += result.examples;
    windowSteps += 1;
    const seconds = (Date.now() - windowStart) / 1000;
    const rate = seconds > 0 ? windowExamples / seconds : 0;
    const stepsPerSecond = seconds > 0 ? windowSteps / seconds : 0;
    if (seconds > 10) {
      windowStart = Date.now();
      windowExamples = 0;
      windowSteps = 0;
    }
    log({ step, split: 'train', lr, ...result.metrics });
    options.onProgress?.({
      kind: 'step',
      step,
      totalSteps,
      metrics: result.metrics,
      examplesPerSecond: rate,
      stepsPerSecond,
    });
    if (step % options.evalEvery === 0 || step === totalSteps) {
      finalMetrics = task.evaluate();
      log({ step, split: 'test', ...finalMetrics });
      options.onProgress?.({ kind: 'eval', step, metrics: finalMetrics });
    }
    if (step % options.checkpointEvery === 0 || step === totalSteps) {
      await writeCheckpoint(task, checkpointFile, step, options.config);
      options.onProgress?.({ kind: 'checkpoint', step, file: checkpointFile });
    }
  }
  return { finalMetrics };
}
