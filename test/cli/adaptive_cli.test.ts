/**
 * The `pact` CLI end to end with an adaptive model on a small shapes set, in-process: train (PSACT discrete with
 * REINFORCE, so the checkpoint holds Adam's slots and the baseline), a run killed mid-step and resumed ends exactly
 * where the uninterrupted one ends, `pact eval` prints every mode with FLOPs and memory, `pact maps` writes valid
 * PNGs, and bad flags fail with a message naming them.
 */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import * as tf from '@tensorflow/tfjs';
import { PNG } from 'pngjs';

import { PACT_CPU, pactCudaStatus } from '../../src';
import { heatColour, mapPng } from '../../src/cli/maps';
import { AdaptiveTask } from '../../src/train/adaptive_task';
import { loadCheckpoint } from '../../src/train/checkpoint';
import { CHECKPOINT_FILE, METRICS_FILE } from '../../src/train/trainer';
import { requirePactCpu } from '../helpers/backends';
import { pact } from '../helpers/cli';
import { expectClose } from '../helpers/compare';

const TRAIN = [
  'train',
  '--dataset',
  'shapes',
  '--train-count',
  '16',
  '--test-count',
  '8',
  '--model',
  'psact14',
  '--width',
  '4',
  '--mode',
  'discrete',
  '--tau',
  '0.05',
  '--group',
  '2',
  '--batch-size',
  '8',
  '--steps',
  '4',
  '--checkpoint-every',
  '2',
  '--eval-every',
  '4',
  '--seed',
  '3',
  '--milestones',
  '0.5',
];

describe('pact CLI with PSACT', function () {
  this.timeout(300000);
  let dir: string;
  before(() => {
    requirePactCpu();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pact-cli-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('trains; a run killed after its step-2 checkpoint and resumed ends exactly like the uninterrupted run', async () => {
    const whole = path.join(dir, 'whole');
    const final = JSON.parse(await pact([...TRAIN, '--run', whole]));
    for (const mode of ['relaxed', 'discrete', 'thresholded']) {
      assert.ok(final[`${mode}.accuracy`] >= 0 && final[`${mode}.accuracy`] <= 1, `${mode}.accuracy`);
    }

    const killed = path.join(dir, 'killed');
    const trainStep = AdaptiveTask.prototype.trainStep;
    AdaptiveTask.prototype.trainStep = function (this: AdaptiveTask, step: number, rate: number) {
      if (step === 3) throw new Error('killed');
      return trainStep.call(this, step, rate);
    };
    try {
      await assert.rejects(pact([...TRAIN, '--run', killed]), /killed/);
    } finally {
      AdaptiveTask.prototype.trainStep = trainStep;
    }
    assert.equal(loadCheckpoint<{ step: number }>(path.join(killed, CHECKPOINT_FILE)).meta.step, 2);
    await pact(['train', '--run', killed, '--resume']);

    const a = loadCheckpoint<{ step: number; taskState: Record<string, number> }>(path.join(whole, CHECKPOINT_FILE));
    const b = loadCheckpoint<{ step: number; taskState: Record<string, number> }>(path.join(killed, CHECKPOINT_FILE));
    assert.equal(b.meta.step, 4);
    assert.ok(Number.isFinite(a.meta.taskState.reinforceBaseline), 'the REINFORCE baseline is checkpointed');
    assert.deepEqual(b.meta.taskState, a.meta.taskState);
    assert.deepEqual(Object.keys(b.arrays), Object.keys(a.arrays));
    for (const key of Object.keys(a.arrays)) {
      assert.deepEqual(b.arrays[key].values, a.arrays[key].values, `checkpoint array ${key}`);
    }
    const metrics = (run: string) => fs.readFileSync(path.join(run, METRICS_FILE), 'utf8');
    assert.equal(metrics(killed), metrics(whole));
  });

  it('writes the report (Markdown + SVG charts, self-contained HTML) and ponder maps when training ends', () => {
    const whole = path.join(dir, 'whole');
    const md = fs.readFileSync(path.join(whole, 'report.md'), 'utf8');
    const last = fs
      .readFileSync(path.join(whole, METRICS_FILE), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((r) => r.split === 'test')
      .pop();
    for (const mode of ['relaxed', 'discrete', 'thresholded']) {
      const row = md.split('\n').find((l) => l.startsWith(`| ${mode} |`));
      assert.ok(row !== undefined, `no ${mode} row in report.md`);
      assert.equal(Number(row.split('|')[2]), Number(last[`${mode}.accuracy`].toPrecision(4)), `${mode} accuracy`);
    }
    const svgs = fs.readdirSync(path.join(whole, 'report'));
    for (const chart of ['train-loss', 'train-flops', 'test-accuracy', 'test-flops', 'learning-rate']) {
      assert.ok(svgs.includes(`${chart}.svg`), `${chart}.svg missing`);
      assert.ok(md.includes(`](report/${chart}.svg)`), `report.md does not show ${chart}`);
    }
    const html = fs.readFileSync(path.join(whole, 'report.html'), 'utf8');
    assert.equal((html.match(/<svg /g) ?? []).length, svgs.length, 'every chart inline in the HTML');
    const maps = fs.readdirSync(path.join(whole, 'maps')).filter((f) => f.endsWith('.png'));
    assert.equal(maps.length, 8);
    assert.ok(md.includes(`](maps/${maps.sort()[0]})`), 'report.md shows the ponder maps');
  });

  it('evaluates a run in every mode with FLOPs and peak memory', async () => {
    const result = JSON.parse(await pact(['eval', '--run', path.join(dir, 'whole')]));
    assert.equal(result.step, 4);
    for (const mode of ['relaxed', 'discrete', 'thresholded']) {
      for (const key of ['loss', 'accuracy', 'flopsFraction', 'executedFlopsFraction', 'gflops', 'ponder', 'peakMiB']) {
        assert.ok(Number.isFinite(result[`${mode}.${key}`]), `${mode}.${key} = ${result[`${mode}.${key}`]}`);
      }
      assert.ok(result[`${mode}.flopsFraction`] > 0.3 && result[`${mode}.flopsFraction`] < 1.1, `${mode} FLOPs`);
    }
    assert.ok(result['thresholded.peakMiB'] < result['relaxed.peakMiB'], 'thresholded needs less memory');
  });

  it('evaluates on the first n test images with --eval-limit n, and rejects a limit that is not n >= 1 or all', async () => {
    const run = path.join(dir, 'whole');
    const result = JSON.parse(await pact(['eval', '--run', run, '--eval-limit', '3']));
    for (const mode of ['relaxed', 'discrete', 'thresholded']) {
      const correct = result[`${mode}.accuracy`] * 3;
      assert.ok(Math.abs(correct - Math.round(correct)) < 1e-9, `${mode}: accuracy ${result[`${mode}.accuracy`]} of 3`);
    }
    const all = JSON.parse(await pact(['eval', '--run', run, '--eval-limit', 'all']));
    assert.ok(Number.isFinite(all['thresholded.accuracy']));
    await assert.rejects(pact(['eval', '--run', run, '--eval-limit', '0']), /--eval-limit must be a positive integer/);
  });

  it('runs a command on the backend --backend names, and refuses one that cannot run with the reason', async () => {
    const run = path.join(dir, 'whole');
    const args = ['eval', '--run', run, '--eval-limit', '3'];
    try {
      const onPactCpu = JSON.parse(await pact(args));
      const stderr: string[] = [];
      const onCpu = JSON.parse(await pact(['--backend', 'cpu', ...args], stderr));
      assert.equal(tf.getBackend(), 'cpu');
      assert.match(stderr.join(''), /--backend cpu runs tfjs-backend-cpu's JavaScript kernels/);
      assert.doesNotMatch(stderr.join(''), /install our node backend/);
      for (const mode of ['relaxed', 'discrete', 'thresholded']) {
        expectClose([onCpu[`${mode}.loss`]], [onPactCpu[`${mode}.loss`]], { atol: 1e-4, rtol: 1e-4 }, mode);
      }
    } finally {
      tf.setBackend(PACT_CPU);
    }
    await assert.rejects(pact(['--backend', 'webgl', ...args]), /--backend must be one of .*cpu.*, got webgl/);
    if (!pactCudaStatus().registered) {
      await assert.rejects(pact(['--backend', 'pact-cuda', ...args]), /--backend pact-cuda: \S/);
    }
    assert.equal(tf.getBackend(), PACT_CPU);
  });

  it('writes ponder maps as PNG: the input and the heat map side by side', async () => {
    const out = path.join(dir, 'maps');
    const printed = JSON.parse(
      await pact(['maps', '--run', path.join(dir, 'whole'), '--out', out, '--count', '2', '--scale', '2']),
    );
    assert.equal(printed.maps.length, 2);
    for (const entry of printed.maps) {
      const png = PNG.sync.read(fs.readFileSync(entry.file));
      assert.equal(png.width, 2 * 32 * 2 + 4);
      assert.equal(png.height, 64);
      // Thresholded maps hold whole numbers of units, 3 … 3L = 6: every heat-map pixel has one of their colours.
      const colours = [3, 4, 5, 6].map((v) => heatColour((v - 3) / 3).join());
      for (let y = 0; y < 64; y += 5) {
        for (let x = 68; x < png.width; x += 5) {
          const at = (y * png.width + x) * 4;
          const colour = Array.from(png.data.subarray(at, at + 3)).join();
          assert.ok(colours.includes(colour), `pixel (${x}, ${y}) has colour ${colour}, not one of ${colours}`);
        }
      }
      assert.ok(entry.meanPonder >= 3 && entry.meanPonder <= 6, `mean ponder ${entry.meanPonder} in [3, 3L]`);
      assert.ok(Number.isFinite(entry.objectPonder) && Number.isFinite(entry.backgroundPonder));
    }
    assert.throws(
      () => mapPng(new Float32Array(4), 1, new Float32Array(4), [3, 6], 2, 2, 0),
      /mapPng: scale must be a positive integer, got 0/,
    );
  });

  it('rejects bad flags with a message naming them', async () => {
    // A tiny run, so that a flag wrongly accepted fails the test quickly instead of training a ResNet-32.
    const run = [
      '--run',
      path.join(dir, 'bad'),
      '--train-count',
      '8',
      '--test-count',
      '8',
      '--batch-size',
      '8',
      '--steps',
      '1',
      '--width',
      '2',
    ];
    await assert.rejects(pact(['train', ...run, '--model', 'psact8']), /psact8: the depth must be 6n \+ 2 with n >= 2/);
    await assert.rejects(
      pact(['train', ...run, '--model', 'sact14', '--mode', 'discrete']),
      /--mode discrete: sact14 is SACT, which trains with ACT/,
    );
    await assert.rejects(pact(['train', ...run, '--model', 'psact14', '--group', '3']), /--group must be 1, 2, 4 or 8/);
    await assert.rejects(
      pact(['train', ...run, '--model', 'psact14', '--delta', '1']),
      /--delta must be a number in \[0, 1\)/,
    );
    await assert.rejects(
      pact(['train', ...run, '--model', 'resnet14', '--tau', '0.1']),
      /tau: only for adaptive models \(psact\*, sact\*\), not resnet14/,
    );
    await assert.rejects(pact(['maps', '--run', path.join(dir, 'missing'), '--out', dir]), /cannot read/);
  });
});
