/**
 * The one comparison rule of the test suite: element i passes when |actual_i - expected_i| <= atol + rtol*|expected_i|
 * (+ mtol*magnitude_i where a magnitude is given: the sum of the absolute values of the terms that make expected_i,
 * for algorithms whose rounding grows with it), or when both are NaN.
 * A failure names the worst element, its index, both values and the tolerance.
 */
import { strict as assert } from 'assert';

export interface Tolerance {
  atol: number;
  rtol: number;
  /** Times the element's magnitude (see expectClose's `magnitude`). */
  mtol?: number;
}

export type NumericArray = ArrayLike<number>;

export function expectClose(
  actual: NumericArray,
  expected: NumericArray,
  tol: Tolerance,
  label = '',
  magnitude?: NumericArray,
): void {
  assert.equal(actual.length, expected.length, `${label}: length ${actual.length} != expected ${expected.length}`);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < expected.length; ++i) {
    const a = actual[i];
    const e = expected[i];
    if (Number.isNaN(a) && Number.isNaN(e)) continue;
    const allowed = tol.atol + tol.rtol * Math.abs(e) + (magnitude ? (tol.mtol ?? 0) * magnitude[i] : 0);
    const excess = Math.abs(a - e) - allowed;
    if (!(excess <= 0) && (worst < 0 || !(excess <= worstExcess))) {
      worst = i;
      worstExcess = excess;
      if (Number.isNaN(excess)) break;
    }
  }
  if (worst >= 0) {
    assert.fail(
      `${label}: element ${worst} is ${actual[worst]}, expected ${expected[worst]} ` +
        `(|diff| ${Math.abs(actual[worst] - expected[worst])} > atol ${tol.atol} + rtol ${tol.rtol}*|expected|` +
        (magnitude ? ` + mtol ${tol.mtol ?? 0}*magnitude ${magnitude[worst]})` : ')'),
    );
  }
}
