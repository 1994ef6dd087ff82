/**
 * The masked convolution's two memory-access tunings side by side (PACT_MEMORY_TUNING, native/cpu/isa.h: which
 * prefetches its AVX-512 kernels issue and how the forward zeroes its output), alternating in one process:
 *   - the maskedConv2d op on pact-cpu, forward and forward+backward, at 128x32x32x16 with pixel and 4x4-block masks,
 *     each call after two dense convolutions and a multiply (as in a network: the output arrays and much else cold),
 *     as the median over the runs of each tuning's time over the Intel tuning's;
 *   - with --psact <run>, PSACT training steps of that checkpoint, the tunings taking turns step by step.
 *
 *   npx tsx bench/memory_tuning.ts [--shape 128,32,32,16] [--densities 0.05,0.1,0.25,0.5] [--reps 20]
 *                                 [--psact runs/psact32-300 --steps 20]
 */
import * as tf from '@tensorflow/tfjs';

import { pactCpuStatus } from '../src';
import { restoreTask } from '../src/cli/main';
import { maskedConv2d } from '../src/ops/masked_conv2d';
import { Rng } from '../test/helpers/random';
import { withEnv } from '../test/helpers/env';
import { argOptional, argText, argValue, blockMask, elapsedMs, median } from './util';

const TUNINGS = ['intel', 'amd'] as const;

/** The tunings' indices in the order they run in repetition r: each goes first every other time. */
function order(r: number): number[] {
  return r % 2 === 0 ? [0, 1] : [1, 0];
}

/** Median over the runs of times[j][r] / times[0][r]. */
function relative(times: number[][], j: number): string {
  return median(times[j].map((t, r) => t / times[0][r])).toFixed(2);
}

function ops(): void {
  const [B, H, W, C] = argText('shape', '128,32,32,16').split(',').map(Number);
  const reps = argValue('reps', 20);
  const rng = new Rng(7);
  const x = tf.tensor4d(rng.uniform(B * H * W * C), [B, H, W, C]);
  const filter = tf.tensor4d(rng.uniform(9 * C * C, -0.1, 0.1), [3, 3, C, C]);
  const dy = tf.tensor4d(rng.uniform(B * H * W * C), [B, H, W, C]);
  const disturb = () => tf.tidy(() => void tf.mul(tf.conv2d(tf.conv2d(x, filter, 1, 'same'), filter, 1, 'same'), 2));
  for (const block of [1, 4]) {
    for (const density of argText('densities', '0.05,0.1,0.25,0.5').split(',').map(Number)) {
      // Two masks taking turns, as consecutive layers' and steps' masks differ.
      const masks = [0, 1].map(() => tf.tensor3d(blockMask(rng, B, H, W, density, block), [B, H, W]));
      const forward: number[][] = TUNINGS.map(() => []);
      const both: number[][] = TUNINGS.map(() => []);
      for (let r = 0; r <= reps; ++r) {
        const f = (a: tf.Tensor, b: tf.Tensor) =>
          maskedConv2d(a as tf.Tensor4D, b as tf.Tensor4D, masks[r % 2], 1, 'same');
        order(r).forEach((j) =>
          withEnv('PACT_MEMORY_TUNING', TUNINGS[j], () => {
            disturb();
            const t1 = elapsedMs(() => tf.tidy(() => void f(x, filter)));
            disturb();
            const t2 = elapsedMs(() => tf.tidy(() => void tf.grads(f)([x, filter], dy)));
            if (r === 0) return; // warm-up
            forward[j].push(t1);
            both[j].push(t2);
          }),
        );
      }
      tf.dispose(masks);
      console.log(
        `${B}x${H}x${W}x${C} ${block === 1 ? 'pixel' : 'block4'} d=${density}: intel ` +
          `${median(forward[0]).toFixed(3)} / ${median(both[0]).toFixed(3)} ms (forward / forward+backward); ` +
          `amd ${relative(forward, 1)} / ${relative(both, 1)} of that`,
      );
    }
  }
  tf.dispose([x, filter, dy]);
}

async function psactSteps(run: string): Promise<void> {
  const restored = await restoreTask(run);
  const steps = argValue('steps', 20);
  const times: number[][] = TUNINGS.map(() => []);
  let step = restored.step;
  for (let i = 0; i < 2 + steps; ++i) {
    order(i).forEach((j) => {
      const t = withEnv('PACT_MEMORY_TUNING', TUNINGS[j], () =>
        elapsedMs(() => restored.task.trainStep(++step, 0.001)),
      );
      if (i >= 2) times[j].push(t);
    });
  }
  console.log(
    `PSACT training step (${run}, ${steps} steps each): intel ${median(times[0]).toFixed(1)} ms, ` +
      `amd ${relative(times, 1)} of that (median of the steps' ratios)`,
  );
}

async function main(): Promise<void> {
  if (!pactCpuStatus.registered) throw new Error(`pact-cpu is not registered: ${pactCpuStatus.reason}`);
  tf.setBackend('pact-cpu');
  ops();
  const run = argOptional('psact');
  if (run !== undefined) await psactSteps(run);
}

void main();
