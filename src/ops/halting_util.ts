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
  if (noise === undefined) return uniformNoise(shape, seed);
  checkFloat32(op, 'noise', noise);
  checkShape(op, 'noise', noise, shape, 'one U(0,1) draw per halting unit');
  if (checkValues) checkRange(op, 'noise', noise, 0, 1, 'U(0,1) draws');
  return noise;
}

/** The kernel of `uniformNoise` on backends that have one (pact-cpu). */
export const PACT_UNIFORM_NOISE = 'PactUniformNoise';

export interface UniformNoiseAttrs {
  shape: number[];
  /** The seed's high and low 32 bits, each a whole number in [0, 2^32). */
  seedHigh: number;
  seedLow: number;
}

/** Wellons' lowbias32 integer hash on unsigned 32-bit values (native/cpu/random.cc's `mix`). */
function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/**
 * U(0, 1) draws of `shape`, counter-based (native/cpu/random.h): draw i of the 64-bit seed is mix(mix(i + a) ^ b)
 * with keys a, b from the seed, its top 23 bits k as (k + 1/2) / 2^23, strictly inside (0, 1). The backend's
 * `PactUniformNoise` kernel computes them where it has one (pact-cpu), this loop elsewhere: a seed gives the same
 * draws on every backend. Without a seed, a fresh one from Math.random. (tfjs' randomUniform took 1.4 ms for a
 * 128x32x32 halting step's draws, the native kernel a few hundredths.)
 */
export function uniformNoise(shape: readonly number[], seed?: number): tf.Tensor {
  if (seed !== undefined && !Number.isFinite(seed)) throw new Error(`uniformNoise: seed must be finite, got ${seed}`);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new Error(`uniformNoise: shape must be an array of whole numbers >= 0, got ${String(shape)}`);
  }
  const n = tf.util.sizeFromShape(shape as number[]);
  if (n > 2 ** 32) throw new Error(`uniformNoise: at most 2^32 draws, got shape [${shape}]`);
  const whole = seed === undefined ? Math.floor(Math.random() * 2 ** 53) : Math.floor(seed);
  // The seed's 64-bit two's complement as two 32-bit halves (exact for |seed| < 2^53).
  const high = Math.floor(whole / 2 ** 32);
  const attrs: UniformNoiseAttrs = {
    shape: [...shape],
    seedHigh: ((high % 2 ** 32) + 2 ** 32) % 2 ** 32,
    seedLow: whole - high * 2 ** 32,
  };
  if (tf.getKernel(PACT_UNIFORM_NOISE, tf.getBackend()) !== undefined) {
    return tf.engine().runKernel(PACT_UNIFORM_NOISE, {}, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
  }
  const a = mix32(attrs.seedLow ^ mix32((attrs.seedHigh + 0x9e3779b9) >>> 0));
  const b = mix32((a + 0x85ebca6b) >>> 0);
  const values = new Float32Array(n);
  for (let i = 0; i < n; ++i) values[i] = ((mix32(mix32((i + a) >>> 0) ^ b) >>> 9) + 0.5) / 8388608;
  return tf.tensor(values, shape as number[], 'float32');
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
