/** What every benchmark records and parses: the commit, the machine, numeric flags, a median. */
import { execSync } from 'child_process';
import * as os from 'os';

import * as tf from '@tensorflow/tfjs';

/** `--name <positive number>` from the command line, or `fallback`. */
export function argValue(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number, got ${process.argv[i + 1]}`);
  return v;
}

/** The milliseconds that fn() takes, by the monotonic clock. */
export function elapsedMs(fn: () => void): number {
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

/** `--name <text>` from the command line, or undefined. */
export function argOptional(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? undefined : process.argv[i + 1];
}

/** `--name <text>` from the command line, or `fallback`; without either, an Error saying the flag is required. */
export function argText(name: string, fallback?: string): string {
  const value = argOptional(name) ?? fallback;
  if (value === undefined) throw new Error(`--${name} is required`);
  return value;
}

/** The short hash of the checkout the benchmark ran in, or 'unknown'. */
export function gitCommit(): string {
  try {
    return execSync('git rev-parse --short HEAD', { cwd: __dirname, stdio: ['ignore', 'pipe', 'ignore'] })
      .toString()
      .trim();
  } catch {
    return 'unknown';
  }
}

export function machine(): Record<string, unknown> {
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    loadAverage: os.loadavg(),
    node: process.version,
    tfjs: tf.version.tfjs,
  };
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/**
 * A [b, h, w] mask of 0/1 whose `block`×`block` cells are each active with probability `density` (block 1: pixel
 * masks; 4: the 4×4 blocks of PSACT's latent grouping), drawn from `rng`.
 */
export function blockMask(
  rng: { next(): number },
  b: number,
  h: number,
  w: number,
  density: number,
  block: number,
): Float32Array {
  const bh = Math.ceil(h / block),
    bw = Math.ceil(w / block);
  const blocks = Array.from({ length: b * bh * bw }, () => rng.next() < density);
  const values = new Float32Array(b * h * w);
  for (let i = 0; i < values.length; ++i) {
    const n = Math.floor(i / (h * w)),
      y = Math.floor((i % (h * w)) / w),
      x = i % w;
    values[i] = blocks[(n * bh + Math.floor(y / block)) * bw + Math.floor(x / block)] ? 1 : 0;
  }
  return values;
}
