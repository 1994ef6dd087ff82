/**
 * Shared pieces of the PACT ops: argument checks whose errors name the op and the argument, the noise ε (drawn
 * with tfjs' seedable RNG when not given), logit(ε), and `detached`, a constant of the backward pass (tfjs has no
 * stopGradient, and no gradient for comparisons: masks built from differentiable inputs go through it).
 */
import * as tf from '@tensorflow/tfjs';

/** The modes of an adaptive computation block (Algorithms 1-3). */
export type HaltingMode = 'relaxed' | 'discrete' | 'thresholded';

export const HALTING_MODES: readonly HaltingMode[] = ['relaxed', 'discrete', 'thresholded'];

export function checkMode<M extends string>(op: string, mode: unknown, allowed: readonly M[]): M {
  if (!allowed.includes(mode as M)) {
    throw new Error(`${op}: mode must be one of ${allowed.map((m) => `'${m}'`).join(', ')}, got ${String(mode)}`);
  }
  return mode as M;
}

export function checkTemperature(op: string, temperature: unknown): number {
  if (typeof temperature !== 'number' || !(temperature > 0) || !Number.isFinite(temperature)) {
    throw new Error(`${op}: temperature must be a positive finite number, got ${String(temperature)}`);
  }
  return temperature;
}

export function checkInteger(op: string, name: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new Error(`${op}: ${name} must be an integer >= ${min}, got ${String(value)}`);
  }
  return value;
}

export function checkFloat32(op: string, name: string, x: unknown): tf.Tensor {
  if (!(x instanceof tf.Tensor)) throw new Error(`${op}: ${name} must be a tf.Tensor`);
  if (x.dtype !== 'float32') throw new Error(`${op}: ${name} must be float32, got ${x.dtype}`);
  return x;
}

export function checkShape(op: string, name: string, x: tf.Tensor, shape: readonly number[], what: string): void {
  if (!tf.util.arraysEqual(x.shape, shape as number[])) {
    throw new Error(`${op}: ${name} must have shape [${shape.join(',')}] (${what}), got [${x.shape.join(',')}]`);
  }
}

/** Throws when `x` holds a NaN (one boolean is read back: a synchronisation point on asynchronous backends). */
export function checkNoNaN(op: string, name: string, x: tf.Tensor): void {
  if (tf.tidy(() => tf.any(tf.isNaN(x)).dataSync()[0]) !== 0) throw new Error(`${op}: ${name} must not contain NaN`);
}

/** Throws unless every value of `x` is in [lo, hi] (NaN fails). */
export function checkRange(op: string, name: string, x: tf.Tensor, lo: number, hi: number, what: string): void {
  const outside = tf.tidy(() => tf.any(tf.logicalNot(tf.logicalAnd(tf.greaterEqual(x, lo), tf.lessEqual(x, hi)))));
  const bad = outside.dataSync()[0] !== 0;
  outside.dispose();
  if (bad) throw new Error(`${op}: ${name} must hold ${what} in [${lo}, ${hi}]`);
}

/**
 * The U(0,1) noise ε of a stochastic op: `noise` checked against `shape` (and its values, unless a native kernel
 * checks them itself), or a fresh (seedable) draw.
 */
export function noiseFor(
  op: string,
  shape: readonly number[],
  noise?: tf.Tensor,
  seed?: number,
  checkValues = true,
): tf.Tensor {
  if (noise === undefined) return tf.randomUniform(shape as number[], 0, 1, 'float32', seed);
  checkFloat32(op, 'noise', noise);
  checkShape(op, 'noise', noise, shape, 'one U(0,1) draw per halting unit');
  if (checkValues) checkRange(op, 'noise', noise, 0, 1, 'U(0,1) draws');
  return noise;
}

/** logit(ε) = log ε − log(1 − ε), finite for ε in (0, 1), ∓∞ at 0 and 1. */
export function logit(eps: tf.Tensor): tf.Tensor {
  return tf.sub(tf.log(eps), tf.log1p(tf.neg(eps)));
}

/** log σ(x) = −softplus(−x), exact in the tails (tfjs' softplus is stable). */
export function logSigmoid(x: tf.Tensor): tf.Tensor {
  return tf.neg(tf.softplus(tf.neg(x)));
}

/**
 * `fn(x)` as a constant of the backward pass: its gradient with respect to x is zero. (When `fn` returns its input
 * itself, tfjs' customGrad would pass the gradient through: the value is then a copy.)
 */
export function detached(fn: (x: tf.Tensor) => tf.Tensor, x: tf.Tensor): tf.Tensor {
  return tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const input = args[0] as tf.Tensor;
    const value = fn(input);
    return { value: value === input ? tf.clone(value) : value, gradFunc: () => tf.zerosLike(input) };
  })(x);
}

/** A float mask [x > threshold] with zero gradient. */
export function stepMask(x: tf.Tensor, threshold = 0): tf.Tensor {
  return detached((v) => tf.cast(tf.greater(v, threshold), 'float32'), x);
}
