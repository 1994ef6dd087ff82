/**
 * The synthetic sequence tasks of Graves' "Adaptive Computation Time for Recurrent Neural Networks" (2016), generated
 * procedurally (nothing is downloaded), with difficulty controls.
 *
 * - Parity: each timestep's input is a vector of `bits` entries, of which a uniformly random number in
 *   [minNonZero, maxNonZero] at random places are ±1 (sign uniform) and the rest 0; the target is the parity of the
 *   number of non-zero entries (1 when odd). Graves' text says "1 if there was an odd number of ones", which read
 *   literally counts only the +1 entries; we follow the issue and count the non-zero ones (the same XOR-of-many-bits
 *   difficulty: the −1 entries are then signal, not distractors). Graves uses one timestep per sequence (`length`
 *   1), 64 bits and up to 64 non-zero entries.
 * - Addition: `length` timesteps (Graves: 5); each input is a number of D digits, D uniform in [1, maxDigits]
 *   (Graves: 5), given as maxDigits one-hot blocks of 10 (most significant first, unused blocks all zero); the target
 *   at every step is the running sum, as `sumDigits` classes in {0…9, 10 = no digit} (least significant first).
 *   Graves ignores the output of the first step; here every step has a target (the first one's is its input).
 *
 * A batch is a function of (seed, step) only (`sequenceBatchAt`), so a resumed run sees the batches an
 * uninterrupted one sees.
 */
import * as tf from '@tensorflow/tfjs';

import { mixSeed, SeededRng } from './rng';

export type SequenceTaskName = 'parity' | 'addition';

export const SEQUENCE_TASKS: readonly SequenceTaskName[] = ['parity', 'addition'];

export interface ParityOptions {
  /** Entries of each input vector (Graves: 64). */
  bits: number;
  /** The number of non-zero entries is uniform in [minNonZero, maxNonZero] (default 1 and `bits`). */
  minNonZero?: number;
  maxNonZero?: number;
  /** Timesteps per sequence, each an independent parity problem (Graves: 1). */
  length?: number;
}

export interface AdditionOptions {
  /** Timesteps per sequence (Graves: 5). */
  length?: number;
  /** Digits of each input number at most (Graves: 5). */
  maxDigits?: number;
}

export interface SequenceBatch {
  /** Inputs, [batch, T, inputSize]. */
  x: tf.Tensor3D;
  /** Parity: the target bit, float32 [batch, T]; addition: digit classes, int32 [batch, T, sumDigits]. */
  targets: tf.Tensor;
  /** Per example and step, row-major [batch, T]: parity's non-zero count, addition's number of input digits. */
  difficulty: Int32Array;
}

/** A generator of one task at fixed difficulty: shapes and `batch` (the random draws come from `rng`). */
export interface SequenceGenerator {
  readonly name: SequenceTaskName;
  readonly length: number;
  readonly inputSize: number;
  /** Per-step output units of a model for this task: 1 logit (parity) or sumDigits × 11 (addition). */
  readonly outputSize: number;
  batch(batchSize: number, rng: SeededRng): SequenceBatch;
}

function checkInt(op: string, name: string, value: unknown, min: number, max = Infinity): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    const range = max === Infinity ? `>= ${min}` : `in [${min}, ${max}]`;
    throw new Error(`${op}: ${name} must be an integer ${range}, got ${String(value)}`);
  }
  return value;
}

export class ParityGenerator implements SequenceGenerator {
  readonly name = 'parity';
  readonly length: number;
  readonly inputSize: number;
  readonly outputSize = 1;
  readonly minNonZero: number;
  readonly maxNonZero: number;

  constructor(options: ParityOptions) {
    const op = 'ParityGenerator';
    this.inputSize = checkInt(op, 'bits', options?.bits, 1);
    this.maxNonZero = checkInt(op, 'maxNonZero', options.maxNonZero ?? this.inputSize, 1, this.inputSize);
    this.minNonZero = checkInt(op, 'minNonZero', options.minNonZero ?? 1, 0, this.maxNonZero);
    this.length = checkInt(op, 'length', options.length ?? 1, 1);
  }

  batch(batchSize: number, rng: SeededRng): SequenceBatch {
    checkInt('ParityGenerator.batch', 'batchSize', batchSize, 1);
    const { length: T, inputSize: D } = this;
    const x = new Float32Array(batchSize * T * D);
    const y = new Float32Array(batchSize * T);
    const difficulty = new Int32Array(batchSize * T);
    for (let i = 0; i < batchSize * T; ++i) {
      const count = this.minNonZero + rng.below(this.maxNonZero - this.minNonZero + 1);
      const places = rng.permutation(D);
      for (let j = 0; j < count; ++j) x[i * D + places[j]] = rng.next() < 0.5 ? -1 : 1;
      y[i] = count % 2;
      difficulty[i] = count;
    }
    return { x: tf.tensor3d(x, [batchSize, T, D]), targets: tf.tensor2d(y, [batchSize, T]), difficulty };
  }
}

export const ADDITION_CLASSES = 11;
/** The class of a digit position beyond the number's most significant digit. */
export const NO_DIGIT = 10;

export class AdditionGenerator implements SequenceGenerator {
  readonly name = 'addition';
  readonly length: number;
  readonly maxDigits: number;
  readonly inputSize: number;
  /** Digits of the largest running sum, length × (10^maxDigits − 1). */
  readonly sumDigits: number;
  readonly outputSize: number;

  constructor(options: AdditionOptions = {}) {
    const op = 'AdditionGenerator';
    this.length = checkInt(op, 'length', options.length ?? 5, 1);
    // 10^maxDigits · length must stay an exact integer in a double.
    this.maxDigits = checkInt(op, 'maxDigits', options.maxDigits ?? 5, 1, 12);
    this.inputSize = 10 * this.maxDigits;
    // The running sum must stay an exact integer in a double: length · (10^maxDigits − 1) < 2^53.
    if ((10 ** this.maxDigits - 1) * this.length >= Number.MAX_SAFE_INTEGER) {
      throw new Error(
        `${op}: length ${this.length} numbers of up to ${this.maxDigits} digits can sum past 2^53 (no longer exact)`,
      );
    }
    this.sumDigits = String((10 ** this.maxDigits - 1) * this.length).length;
    this.outputSize = this.sumDigits * ADDITION_CLASSES;
  }

  batch(batchSize: number, rng: SeededRng): SequenceBatch {
    checkInt('AdditionGenerator.batch', 'batchSize', batchSize, 1);
    const { length: T, maxDigits, inputSize: D, sumDigits: S } = this;
    const x = new Float32Array(batchSize * T * D);
    const y = new Int32Array(batchSize * T * S);
    const difficulty = new Int32Array(batchSize * T);
    for (let b = 0; b < batchSize; ++b) {
      let sum = 0;
      for (let t = 0; t < T; ++t) {
        const i = b * T + t;
        const digits = 1 + rng.below(maxDigits);
        let value = 0;
        for (let d = 0; d < digits; ++d) {
          const digit = rng.below(10);
          value = value * 10 + digit;
          x[i * D + d * 10 + digit] = 1;
        }
        sum += value;
        const text = String(sum);
        for (let s = 0; s < S; ++s) y[i * S + s] = s < text.length ? Number(text[text.length - 1 - s]) : NO_DIGIT;
        difficulty[i] = digits;
      }
    }
    return { x: tf.tensor3d(x, [batchSize, T, D]), targets: tf.tensor3d(y, [batchSize, T, S], 'int32'), difficulty };
  }
}

export function sequenceGenerator(name: SequenceTaskName, options: ParityOptions & AdditionOptions): SequenceGenerator {
  if (name === 'parity') return new ParityGenerator(options);
  if (name === 'addition') return new AdditionGenerator(options);
  throw new Error(`sequenceGenerator: task must be one of ${SEQUENCE_TASKS.join(', ')}, got ${String(name)}`);
}

/** The batch of `step` for a run seeded `seed`: a pure function of the two. */
export function sequenceBatchAt(gen: SequenceGenerator, batchSize: number, seed: number, step: number): SequenceBatch {
  return gen.batch(batchSize, new SeededRng(mixSeed(seed, step)));
}
