import { strict as assert } from 'assert';
import { execFileSync } from 'child_process';

import * as tf from '@tensorflow/tfjs';

import { nativeAddon, PACT_CPU, pactCpuStatus } from '../../src';

describe('pact-cpu registration', () => {
  it('registers and becomes the default backend when the addon loads', async () => {
    assert.ok(pactCpuStatus.registered, pactCpuStatus.reason);
    await tf.ready();
    assert.equal(tf.getBackend(), PACT_CPU);
  });

  it('has every kernel of tfjs-backend-cpu', () => {
    const cpu = tf.getKernelsForBackend('cpu').map((k) => k.kernelName);
    const pact = new Set(tf.getKernelsForBackend(PACT_CPU).map((k) => k.kernelName));
    assert.deepEqual(
      cpu.filter((k) => !pact.has(k)),
      [],
    );
  });

  it('reports CUDA as unavailable with a reason rather than failing when there is no GPU', () => {
    const info = nativeAddon()!.buildInfo();
    assert.equal(typeof info.cuda.available, 'boolean');
    if (!info.cuda.available) assert.ok(info.cuda.reason.length > 0);
  });

  it('keeps large blocks in the heap (glibc tuning) unless PACT_MALLOC_TUNING=0', function () {
    const info = nativeAddon()!.buildInfo();
    // Sanitizer runtimes replace glibc's malloc (mallopt is then a no-op or refused); musl has no mallopt.
    if (info.sanitizer !== '' || process.report?.getReport === undefined) this.skip();
    const glibc = (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header
      ?.glibcVersionRuntime;
    if (glibc === undefined) this.skip();
    assert.equal(info.mallocTuning, true);
    const addon = process.env.PACT_ADDON ?? require.resolve('../../build/Release/pact.node');
    const child = execFileSync(
      process.execPath,
      ['-e', `console.log(require(${JSON.stringify(addon)}).buildInfo().mallocTuning)`],
      {
        env: { ...process.env, PACT_MALLOC_TUNING: '0' },
      },
    );
    assert.equal(String(child).trim(), 'false');
  });

  it('stays unregistered, saying why, when PACT_BUFFER_POOL_MB is not a size', () => {
    const src = require.resolve('../../src');
    const script = `const s = require(${JSON.stringify(src)}).pactCpuStatus; console.log(JSON.stringify(s));`;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '-e', script], {
      env: { ...process.env, PACT_BUFFER_POOL_MB: 'lots' },
    });
    const status = JSON.parse(String(out).trim().split('\n').pop() as string);
    assert.equal(status.registered, false);
    assert.match(status.reason, /PACT_BUFFER_POOL_MB must be a number of MiB >= 0, got lots/);
  });

  it('stays unregistered, saying why, when a setting the addon reads at each call has a bad value', () => {
    const src = require.resolve('../../src');
    const script = `const s = require(${JSON.stringify(src)}).pactCpuStatus; console.log(JSON.stringify(s));`;
    for (const [name, bad, message] of [
      ['PACT_NARROW_CONV', 'two', 'PACT_NARROW_CONV must be a whole number of output channels >= 0, got two'],
      ['PACT_NARROW_CONV', '-1', 'PACT_NARROW_CONV must be a whole number of output channels >= 0, got -1'],
      ['PACT_NARROW_CONV', '1.5', 'PACT_NARROW_CONV must be a whole number of output channels >= 0, got 1.5'],
      ['PACT_CPU_ISA', 'avx512f', 'PACT_CPU_ISA must be auto or avx2, got avx512f'],
      ['PACT_CONV_TILES', 'yes', 'PACT_CONV_TILES must be 0 or 1, got yes'],
      ['PACT_MEMORY_TUNING', 'arm', 'PACT_MEMORY_TUNING must be auto, amd or intel, got arm'],
    ]) {
      const out = execFileSync(process.execPath, ['--import', 'tsx', '-e', script], {
        env: { ...process.env, [name]: bad },
      });
      const status = JSON.parse(String(out).trim().split('\n').pop() as string);
      assert.equal(status.registered, false, `${name}=${bad}`);
      assert.ok(status.reason.includes(message), `${name}=${bad}: ${status.reason}`);
    }
  });

  it('rejects a bad thread count with an Error naming the argument', () => {
    assert.throws(() => nativeAddon()!.setNumThreads(0), /setNumThreads: n must be an integer in \[1, 1024\]/);
    assert.throws(() => nativeAddon()!.setNumThreads('2' as unknown as number), /n must be a number/);
  });
});
