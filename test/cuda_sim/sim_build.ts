/**
 * Where the CUDA simulation build under test lives: `PACT_SIM_BUILD` (scripts/cuda_sim_test.sh sets it to
 * build-sim-asan, then build-sim-tsan), else build-sim. Its fixtures are programs in cuda_sim_fixtures/, its
 * sanitizer is read from CMakeCache.txt. With `PACT_REQUIRE_SIM=1` a missing build fails the tests instead of
 * skipping them (the plain `npm test` has no simulation build).
 */
import * as fs from 'fs';
import * as path from 'path';

export interface SimBuild {
  dir: string;
  sanitizer: '' | 'address' | 'thread';
  fixtures: string;
}

export function simBuild(): SimBuild | null {
  const dir = path.resolve(process.env.PACT_SIM_BUILD ?? path.join(__dirname, '..', '..', 'build-sim'));
  const cache = path.join(dir, 'CMakeCache.txt');
  if (!fs.existsSync(cache)) {
    if (process.env.PACT_REQUIRE_SIM === '1') throw new Error(`no CUDA simulation build in ${dir}`);
    return null;
  }
  const match = /^PACT_SANITIZE:STRING=(.*)$/m.exec(fs.readFileSync(cache, 'utf8'));
  const sanitizer = (match?.[1] ?? '').trim();
  if (sanitizer !== '' && sanitizer !== 'address' && sanitizer !== 'thread') {
    throw new Error(`unexpected PACT_SANITIZE=${sanitizer} in ${cache}`);
  }
  return { dir, sanitizer, fixtures: path.join(dir, 'cuda_sim_fixtures') };
}
