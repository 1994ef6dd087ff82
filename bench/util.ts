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
