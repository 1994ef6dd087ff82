/**
 * The one comparison rule of the test suite: element i passes when |actual_i - expected_i| <= atol + rtol*|expected_i|,
 * or when both are NaN.
 * A failure names the worst element, its index, both values and the tolerance.
 */
import { strict as assert } from 'assert';

export interface Tolerance {
  atol: number;
  rtol: number;
}

export type NumericArray = ArrayLike<number>;

export function expectClose(actual: NumericArray, expected: NumericArray, tol: Tolerance, label = ''): void {
  assert.equal(actual.length, expected.length, `${label}: length ${actual.length} != expected ${expected.length}`);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < expected.length; ++i) {
    const a = actual[i];
    const e = expected[i];
    if (Number.isNaN(a) && Number.isNaN(e)) continue;
    const excess = Math.abs(a - e) - (tol.atol + tol.rtol * Math.abs(e));
    if (!(excess <= 0) && (worst < 0 || !(excess <= worstExcess))) {
      worst = i;
      worstExcess = excess;
      if (Number.isNaN(excess)) break;
    }
  }
  if (worst >= 0) {
    assert.fail(
      `${label}: element ${worst} is ${actual[worst]}, expected ${expected[worst]} ` +
        `(|diff| ${Math.abs(actual[worst] - expected[worst])} > atol ${tol.atol} + rtol ${tol.rtol}*|expected|)`,
    );
  }
}
