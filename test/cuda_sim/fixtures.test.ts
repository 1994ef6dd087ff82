/**
 * The simulator's own proof (issue 9): correct kernels run clean and match float64 references, and every planted
 * bug is reported, each by the tool that is meant to see it. Each fixture runs as a child process (a sanitizer
 * report aborts it), so the assertions are on its exit status and output.
 */
import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

import { SimBuild, simBuild } from './sim_build';

interface Run {
  status: number | null;
  output: string;
}

function runFixture(build: SimBuild, name: string): Run {
  const env: NodeJS.ProcessEnv = { ...process.env };
  // The fixtures link their sanitizer runtime themselves and run with its default options.
  for (const k of ['LD_PRELOAD', 'ASAN_OPTIONS', 'TSAN_OPTIONS']) delete env[k];
  const r = spawnSync(path.join(build.fixtures, name), { env, encoding: 'utf8', timeout: 120_000 });
  if (r.error) throw r.error;
  return { status: r.status, output: `${r.stdout}\n${r.stderr}` };
}

/** The 1-based numbers of the lines of test/cuda_sim/fixtures/<file> that contain `text`, as a regex alternation. */
function linesOf(file: string, text: string): string {
  const lines = fs.readFileSync(path.join(__dirname, 'fixtures', file), 'utf8').split('\n');
  const found = lines.flatMap((line, i) => (line.includes(text) ? [String(i + 1)] : []));
  assert.ok(found.length > 0, `${file} has no line with ${text}`);
  return `(${found.join('|')})`;
}

const SANITIZER_REPORT = /ERROR: AddressSanitizer|WARNING: ThreadSanitizer|runtime error:/;

function expectClean(run: Run, label: string): void {
  assert.ok(!SANITIZER_REPORT.test(run.output), `${label}: sanitizer report on a correct kernel:\n${run.output}`);
  assert.equal(run.status, 0, `${label}: exit status ${run.status}:\n${run.output}`);
}

describe('CUDA simulation: fixtures', function () {
  const build = simBuild();
  before(function () {
    if (build === null) this.skip();
  });

  for (const name of ['sgemm_tiled', 'warp_reduce', 'launch_config']) {
    it(`runs the correct kernel ${name} clean and matching its reference`, () => {
      expectClean(runFixture(build!, name), name);
    });
  }

  it('reports an out-of-bounds write at its line (AddressSanitizer)', function () {
    if (build!.sanitizer !== 'address') this.skip();
    const run = runFixture(build!, 'planted_oob_write');
    assert.notEqual(run.status, 0);
    assert.match(run.output, /ERROR: AddressSanitizer: heap-buffer-overflow/);
    const store = linesOf('sgemm.cuh', 'c[row * n + col] = acc');
    assert.match(run.output, new RegExp(`#0 .* in void sgemmTiled<false, true>.*sgemm\\.cuh:${store}\\b`));
  });

  it('reports a missing barrier as a data race on the shared tile (ThreadSanitizer)', function () {
    if (build!.sanitizer !== 'thread') this.skip();
    const run = runFixture(build!, 'planted_missing_barrier');
    assert.notEqual(run.status, 0);
    assert.match(run.output, /WARNING: ThreadSanitizer: data race/);
    const tileAccess = linesOf('sgemm.cuh', 'Tile[');
    assert.match(run.output, new RegExp(`#0 void sgemmTiled<true, false>.*sgemm\\.cuh:${tileAccess}\\b`));
  });

  it('shows a read of shared memory that this block never wrote (NaN poison)', () => {
    const run = runFixture(build!, 'planted_uninit_shared');
    assert.equal(run.status, 1, run.output);
    assert.match(run.output, /treeSum: mismatch at element \d+: -?nan/);
  });

  it('refuses a launch the device refuses, with the device error', () => {
    const run = runFixture(build!, 'planted_bad_launch');
    assert.equal(run.status, 2, run.output);
    assert.match(run.output, /invalid configuration argument \(cudaErrorInvalidConfiguration\)/);
  });
});
