/**
 * `pact train`'s handling of run directories and settings, on a tiny dense ResNet (fast): a --config file is checked
 * setting by setting as the flags are; settings that the model or dataset would ignore are refused; --resume
 * continues a run with its own settings only, starts over a run killed before its first checkpoint, reports a
 * finished one, and drops a metrics line cut short by the kill; a new run in an old run's directory does not leave
 * the old checkpoint for a later --resume.
 */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { nativeAddon } from '../../src';
import { ClassifierTask } from '../../src/train/classifier_task';
import { loadCheckpoint } from '../../src/train/checkpoint';
import { CHECKPOINT_FILE, METRICS_FILE } from '../../src/train/trainer';
import { requirePactCpu } from '../helpers/backends';
import { pact } from '../helpers/cli';
import { withEnvAsync } from '../helpers/env';

/** A resnet8 of width 2 on 16 generated images: a step takes milliseconds. */
const TINY = {
  dataset: 'shapes',
  trainCount: 16,
  testCount: 8,
  model: 'resnet8',
  width: 2,
  batchSize: 8,
  steps: 4,
  checkpointEvery: 2,
  evalEvery: 4,
};

const FLAGS = [
  '--train-count',
  '16',
  '--test-count',
  '8',
  '--model',
  'resnet8',
  '--width',
  '2',
  '--batch-size',
  '8',
  '--checkpoint-every',
  '2',
  '--eval-every',
  '4',
];

/** Runs `fn` with ClassifierTask's step `step` throwing, as a kill there would stop the run. */
async function killedAt(step: number, fn: () => Promise<unknown>): Promise<void> {
  const trainStep = ClassifierTask.prototype.trainStep;
  ClassifierTask.prototype.trainStep = function (this: ClassifierTask, s: number, rate: number) {
    if (s === step) throw new Error('killed');
    return trainStep.call(this, s, rate);
  };
  try {
    await assert.rejects(fn(), /killed/);
  } finally {
    ClassifierTask.prototype.trainStep = trainStep;
  }
}

describe('pact train: settings and run directories', function () {
  this.timeout(120000);
  let dir: string;
  beforeEach(() => {
    requirePactCpu();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pact-train-cli-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const writeConfig = (settings: unknown): string => {
    const file = path.join(dir, 'config.json');
    fs.writeFileSync(file, JSON.stringify(settings));
    return file;
  };
  const stepOf = (run: string) => loadCheckpoint<{ step: number }>(path.join(run, CHECKPOINT_FILE)).meta.step;

  it('pact info says where dense convolutions run, following PACT_CONV_TILES', async () => {
    const denseConv = async () => JSON.parse(await pact(['info'])).pactCpu.denseConv as string;
    if (nativeAddon()?.buildInfo().dnnl !== true) {
      assert.match(await denseConv(), /tfjs-backend-cpu \(the addon was built without oneDNN\)/);
      return;
    }
    assert.match(await withEnvAsync('PACT_CONV_TILES', '1', denseConv), /Winograd F\(4x4, 3x3\) tiles/);
    assert.equal(
      await withEnvAsync('PACT_CONV_TILES', '0', denseConv),
      "oneDNN's direct convolution (PACT_CONV_TILES=0)",
    );
  });

  it('checks a --config file setting by setting, as the flags are checked', async () => {
    const run = path.join(dir, 'run');
    const bad: Array<[unknown, RegExp]> = [
      [{ ...TINY, steps: '3' }, /--config .*: "steps" must be a number, got "3"/],
      [{ ...TINY, steps: -3 }, /--config .*: "steps": --steps must be a positive integer, got -3/],
      [{ ...TINY, batch_size: 4 }, /--config .*: unknown setting "batch_size" \(the settings are dataset, model/],
      [[1, 2], /--config .*: must hold a JSON object of settings, got \[1,2\]/],
      [null, /--config .*: must hold a JSON object of settings, got null/],
      [{ ...TINY, lr: 'fast' }, /--config .*: "lr" must be a number, got "fast"/],
      [{ ...TINY, dataset: 'mnist' }, /--config .*: "dataset" must be one of shapes, fashion-mnist, cifar10/],
      [{ ...TINY, milestones: 0.5 }, /--config .*: "milestones" must be an array of numbers, got 0.5/],
    ];
    for (const [settings, expected] of bad) {
      await assert.rejects(pact(['train', '--run', run, '--config', writeConfig(settings)]), expected);
    }
    assert.ok(!fs.existsSync(path.join(run, CHECKPOINT_FILE)), 'no bad configuration trained');
    const final = JSON.parse(await pact(['train', '--run', run, '--config', writeConfig(TINY)]));
    assert.ok(final.accuracy >= 0 && final.accuracy <= 1);
    assert.equal(stepOf(run), 4);
  });

  it("refuses settings that the run's model or dataset would ignore, naming them", async () => {
    const run = ['--run', path.join(dir, 'run'), '--steps', '1'];
    await assert.rejects(
      pact(['train', ...run, ...FLAGS, '--hidden', '5', '--task', 'addition']),
      /--hidden, --task: only for --model lstm, not resnet8/,
    );
    await assert.rejects(
      pact(['train', ...run, '--model', 'lstm', '--width', '4', '--delta', '0.5']),
      /--width: only for the image models, not --model lstm/,
    );
    await assert.rejects(
      pact(['train', ...run, '--model', 'lstm', '--task', 'addition', '--bits', '3']),
      /--bits: only for --task parity/,
    );
    await assert.rejects(
      pact(['train', ...run, '--model', 'resnet8', '--dataset', 'fashion-mnist', '--train-count', '10']),
      /--train-count: only for the generated shapes dataset, not fashion-mnist/,
    );
    await assert.rejects(
      pact(['train', ...run, ...FLAGS, '--data-dir', dir]),
      /--data-dir: only for fashion-mnist and cifar10/,
    );
  });

  it('resumes with the run’s own settings only, and says so when there is nothing left to train', async () => {
    const run = path.join(dir, 'run');
    await killedAt(3, () => pact(['train', '--run', run, ...FLAGS, '--steps', '4']));
    assert.equal(stepOf(run), 2);
    await assert.rejects(
      pact(['train', '--run', run, '--resume', '--steps', '12', '--model', 'resnet14']),
      /--resume continues .* with the settings it was started with: drop --steps, --model/,
    );
    await assert.rejects(pact(['train', '--run', run, '--resume', '--config', writeConfig(TINY)]), /drop --config/);
    const final = JSON.parse(await pact(['train', '--run', run, '--resume']));
    assert.equal(stepOf(run), 4);
    // Finished: nothing trains, the last evaluation is printed again.
    const log: string[] = [];
    const again = JSON.parse(await pact(['train', '--run', run, '--resume'], log));
    assert.deepEqual(again, final);
    assert.match(log.join(''), /already finished \(step 4 of 4\): nothing to train/);
    await assert.rejects(
      pact(['train', '--run', path.join(dir, 'never'), '--resume']),
      /--resume: .*never holds no checkpoint and no config.json: there is no run to resume/,
    );
  });

  it('starts over a run killed before its first checkpoint, with its own settings', async () => {
    const run = path.join(dir, 'run');
    await killedAt(1, () => pact(['train', '--run', run, ...FLAGS, '--steps', '4', '--seed', '5']));
    assert.ok(!fs.existsSync(path.join(run, CHECKPOINT_FILE)));
    const log: string[] = [];
    await pact(['train', '--run', run, '--resume'], log);
    assert.match(log.join(''), /has no checkpoint yet: starting it over from step 0 with its config.json/);
    const meta = loadCheckpoint<{ step: number; config: { seed: number; model: string } }>(
      path.join(run, CHECKPOINT_FILE),
    ).meta;
    assert.deepEqual([meta.step, meta.config.model, meta.config.seed], [4, 'resnet8', 5]);
  });

  it("does not leave an old run's checkpoint in the directory of a new run", async () => {
    const run = path.join(dir, 'run');
    await pact(['train', '--run', run, ...FLAGS, '--steps', '2', '--seed', '1']);
    assert.equal(stepOf(run), 2);
    // A new run there, killed before its first checkpoint: a later --resume must not take the old run's.
    await killedAt(1, () => pact(['train', '--run', run, ...FLAGS, '--steps', '4', '--seed', '7']));
    assert.ok(!fs.existsSync(path.join(run, CHECKPOINT_FILE)), 'the old checkpoint was removed');
    await pact(['train', '--run', run, '--resume']);
    const meta = loadCheckpoint<{ step: number; config: { seed: number } }>(path.join(run, CHECKPOINT_FILE)).meta;
    assert.deepEqual([meta.step, meta.config.seed], [4, 7]);
  });

  it('drops a last metrics line cut short by a kill when it resumes', async () => {
    const run = path.join(dir, 'run');
    await killedAt(3, () => pact(['train', '--run', run, ...FLAGS, '--steps', '4']));
    fs.appendFileSync(path.join(run, METRICS_FILE), '{"step":3,"split":"tr');
    await pact(['train', '--run', run, '--resume']);
    const steps = fs
      .readFileSync(path.join(run, METRICS_FILE), 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { step: number; split: string }).step);
    assert.deepEqual(steps, [1, 2, 3, 4, 4]);
    // A line that is not JSON before the last one is corruption: an error naming the file and line.
    const other = path.join(dir, 'other');
    await killedAt(3, () => pact(['train', '--run', other, ...FLAGS, '--steps', '4']));
    fs.writeFileSync(path.join(other, METRICS_FILE), 'not json\n{"step":1,"split":"train"}\n');
    await assert.rejects(pact(['train', '--run', other, '--resume']), /metrics.jsonl:1: not JSON/);
  });

  it('refuses a --run that is a file before loading anything', async () => {
    const file = path.join(dir, 'a-file');
    fs.writeFileSync(file, '');
    await assert.rejects(pact(['train', '--run', file, ...FLAGS]), /--run .*a-file: exists and is not a directory/);
  });
});
