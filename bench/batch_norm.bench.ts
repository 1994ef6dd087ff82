/**
 * Training-mode batch norm + ReLU, forward and forward+backward, on the ResNet-32 activations at batch 128
 * (32x32x16, 16x16x32, 8x8x64): the fused native kernel (batchNormReluTrain), the native kernel followed by tfjs'
 * Relu (batchNormTrain + tf.relu: what the fusion saves), and the composite (tf.moments etc.) on pact-cpu and on
 * tfjs-backend-cpu, all measured in the same run. Short run (a few seconds on an idle machine).
 *
 *   PACT_ADDON=$PWD/build/Release/pact.node npx tsx bench/batch_norm.bench.ts [--repeats 10] [--threads 2]
 *
 * Prints a table and writes bench/results/batch_norm.json.
 */
import * as fs from 'fs';
import * as path from 'path';

import * as tf from '@tensorflow/tfjs';

import {
  batchNormReluTrain,
  batchNormTrain,
  batchNormTrainComposite,
  nativeAddon,
  PACT_CPU,
  pactCpuStatus,
} from '../src';
import { argValue, gitCommit, machine } from './util';

type Variant = (x: tf.Tensor, scale: tf.Tensor1D, offset: tf.Tensor1D) => tf.Tensor;

const VARIANTS: { name: string; backend: string; fn: Variant }[] = [
  { name: 'fused native (batchNormReluTrain)', backend: PACT_CPU, fn: (x, s, o) => batchNormReluTrain(x, s, o).y },
  { name: 'native + tf.relu', backend: PACT_CPU, fn: (x, s, o) => tf.relu(batchNormTrain(x, s, o).y) },
  {
    name: 'composite on pact-cpu',
    backend: PACT_CPU,
    fn: (x, s, o) => batchNormTrainComposite(x, s, o, 1e-5, true).y,
  },
  {
    name: 'composite on tfjs-backend-cpu',
    backend: 'cpu',
    fn: (x, s, o) => batchNormTrainComposite(x, s, o, 1e-5, true).y,
  },
];

const SHAPES = [
  [128, 32, 32, 16],
  [128, 16, 16, 32],
  [128, 8, 8, 64],
];

/** Median ms of `repeats` runs after one warm-up. */
function medianMs(repeats: number, fn: () => void): number {
  const once = () => {
    const t0 = process.hrtime.bigint();
    fn();
    return Number(process.hrtime.bigint() - t0) / 1e6;
  };
  once();
  const times = Array.from({ length: repeats }, once).sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

function main(): void {
  if (!pactCpuStatus.registered) throw new Error(`pact-cpu is not registered: ${pactCpuStatus.reason}`);
  const repeats = argValue('repeats', 10);
  const threads = argValue('threads', 2);
  nativeAddon()!.setNumThreads(threads);
  const rows: Record<string, unknown>[] = [];
  for (const shape of SHAPES) {
    for (const variant of VARIANTS) {
      tf.setBackend(variant.backend);
      const slow = variant.backend === 'cpu';
      const x = tf.randomNormal(shape, 0, 1, 'float32', 1);
      const scale = tf.ones([shape[3]]) as tf.Tensor1D;
      const offset = tf.zeros([shape[3]]) as tf.Tensor1D;
      const dy = tf.randomNormal(shape, 0, 1, 'float32', 2);
      const n = slow ? Math.min(2, repeats) : repeats;
      // The callbacks return nothing: tf.tidy would walk a returned TypedArray element by element.
      const forwardMs = medianMs(n, () => tf.tidy(() => void variant.fn(x, scale, offset).dataSync()));
      const grads = tf.grads((a: tf.Tensor, s: tf.Tensor, o: tf.Tensor) =>
        variant.fn(a, s as tf.Tensor1D, o as tf.Tensor1D),
      );
      const forwardBackwardMs = medianMs(n, () => tf.tidy(() => void grads([x, scale, offset], dy)[0].dataSync()));
      tf.dispose([x, scale, offset, dy]);
      rows.push({ shape, variant: variant.name, forwardMs, forwardBackwardMs });
      console.log(
        `[${shape}] ${variant.name.padEnd(34)} forward ${forwardMs.toFixed(2).padStart(8)} ms   ` +
          `forward+backward ${forwardBackwardMs.toFixed(2).padStart(8)} ms`,
      );
    }
  }
  const out = {
    bench: 'batch_norm',
    date: new Date().toISOString(),
    commit: gitCommit(),
    machine: machine(),
    threads,
    repeats,
    rows,
  };
  const outPath = path.join(__dirname, 'results', 'batch_norm.json');
  fs.mkdirSync(path.dirname(outPath), { recursive: true });
  fs.writeFileSync(outPath, `${JSON.stringify(out, null, 2)}\n`);
  console.log(`-> ${outPath}`);
}

if (require.main === module) main();
