/**
 * Fresh random inputs for every run; the seed is printed on failure so a failing case can be replayed with
 * PACT_TEST_SEED=<seed>.
 */
import { SeededRng } from '../../src/data/rng';

export class Rng extends SeededRng {
  constructor(readonly seed: number) {
    super(seed);
  }

  int(lo: number, hiInclusive: number): number {
    return lo + Math.floor(this.next() * (hiInclusive - lo + 1));
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }

  uniform(n: number, lo = -1, hi = 1): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; ++i) out[i] = lo + (hi - lo) * this.next();
    return out;
  }

  normal(n: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; ++i) {
      const u = 1 - this.next();
      out[i] = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
    }
    return out;
  }
}

export function testSeed(): number {
  const env = process.env.PACT_TEST_SEED;
  return env !== undefined ? Number(env) : Math.floor(Math.random() * 2 ** 31);
}

/** A new generator for one test, with its seed in the test's failure messages via `label`. */
export function freshRng(): Rng {
  return new Rng(testSeed());
}
