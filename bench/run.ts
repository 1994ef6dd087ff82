/**
 * `npm run bench`: every benchmark, one after another, each in its own process (so one's memory and threads do
 * not disturb the next). Each writes its JSON (and Markdown where it has one) under bench/results/; bench/README.md
 * summarises them. Run it on an idle machine: the figures are ratios measured within one run, but a busy machine
 * still distorts them. `npm run bench -- conv resnet_step` runs a subset.
 */
import { spawnSync } from 'child_process';
import * as path from 'path';

const BENCHMARKS: Record<string, string[]> = {
  conv: ['bench/conv.bench.ts'],
  elementwise: ['bench/elementwise.bench.ts'],
  batch_norm: ['bench/batch_norm.bench.ts'],
  resnet_step: ['bench/resnet_step.bench.ts', '--batch', '128', '--steps', '5', '--warmup', '2'],
  profile_step: ['bench/profile_step.ts', '--batch', '128'],
  halting_step: ['bench/halting_step.bench.ts'],
  masked_conv2d: ['bench/masked_conv2d.bench.ts'],
};

const selected = process.argv.slice(2);
for (const name of selected) {
  if (!(name in BENCHMARKS)) {
    throw new Error(`bench: unknown benchmark ${name}; expected one of ${Object.keys(BENCHMARKS).join(', ')}`);
  }
}
const root = path.resolve(__dirname, '..');
let failures = 0;
for (const name of selected.length > 0 ? selected : Object.keys(BENCHMARKS)) {
  process.stdout.write(`\n## ${name}\n`);
  const tsx = path.join(root, 'node_modules', '.bin', 'tsx');
  const result = spawnSync(tsx, BENCHMARKS[name], { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) {
    failures += 1;
    process.stdout.write(`bench ${name} failed (exit ${result.status})\n`);
  }
}
process.exit(failures === 0 ? 0 : 1);
