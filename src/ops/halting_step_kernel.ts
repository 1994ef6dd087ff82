/**
 * The `PactHaltingStep` and `PactHaltingStepGrad` kernels' names, attributes and positional inputs, shared by the
 * op (halting_step.ts), its gradient (halting_step_grad.ts) and the backends' kernels.
 */
import type { HaltingMode } from './halting_util';

export const PACT_HALTING_STEP = 'PactHaltingStep';
export const PACT_HALTING_STEP_GRAD = 'PactHaltingStepGrad';

/** Attributes of both kernels; which optional inputs are present follows from them (`haltingStepInputs`). */
export interface HaltingStepAttrs {
  mode: HaltingMode;
  iteration: number;
  last: boolean;
  temperature: number;
  delta: number;
  accumulate: boolean;
}

/** The named inputs of a `PactHaltingStep` kernel call, in their positional order. */
export interface HaltingStepInputs<T> {
  sXi: T;
  sH: T;
  expectedIterations: T;
  haltLogits?: T;
  noise?: T;
  output?: T;
  u?: T;
}

/** The named inputs of a `PactHaltingStepGrad` kernel call: forward inputs, then upstream gradients. */
export interface HaltingStepGradInputs<T> {
  sXi: T;
  sH: T;
  haltLogits?: T;
  noise?: T;
  u?: T;
  gSXi: T;
  gSH: T;
  gN: T;
  gActive: T;
  gOutput?: T;
}

/** Whether the step reads ε (relaxed and discrete before the last iteration). */
export function readsNoise(attrs: Pick<HaltingStepAttrs, 'mode' | 'last'>): boolean {
  return !attrs.last && attrs.mode !== 'thresholded';
}

/** Which inputs a call has: haltLogits unless last, noise if `readsNoise`, output, u and gOutput if accumulating. */
function present(attrs: HaltingStepAttrs, name: string): boolean {
  if (name === 'haltLogits') return !attrs.last;
  if (name === 'noise') return readsNoise(attrs);
  if (name === 'output' || name === 'u' || name === 'gOutput') return attrs.accumulate;
  return true;
}

const STEP_ORDER = ['sXi', 'sH', 'expectedIterations', 'haltLogits', 'noise', 'output', 'u'] as const;
const GRAD_ORDER = ['sXi', 'sH', 'haltLogits', 'noise', 'u', 'gSXi', 'gSH', 'gN', 'gActive', 'gOutput'] as const;

// Kernel inputs are positional (tfjs saves every input for a gradient only when the inputs are an array): the
// names of `order` that the attributes say are present, in that order.
function named<N>(order: readonly string[], list: ArrayLike<unknown>, attrs: HaltingStepAttrs): N {
  const names = order.filter((name) => present(attrs, name));
  if (list.length !== names.length) {
    throw new Error(`halting step kernel: expected ${names.length} inputs (${names.join(', ')}), got ${list.length}`);
  }
  return Object.fromEntries(names.map((name, i) => [name, list[i]])) as N;
}

function positional<T>(order: readonly string[], values: Partial<Record<string, T>>, attrs: HaltingStepAttrs): T[] {
  return order.filter((name) => present(attrs, name)).map((name) => values[name] as T);
}

export function haltingStepInputs<T>(list: ArrayLike<T>, attrs: HaltingStepAttrs): HaltingStepInputs<T> {
  return named<HaltingStepInputs<T>>(STEP_ORDER, list, attrs);
}

export function haltingStepInputList<T>(inputs: HaltingStepInputs<T>, attrs: HaltingStepAttrs): T[] {
  return positional(STEP_ORDER, inputs as unknown as Record<string, T>, attrs);
}

export function haltingStepGradInputs<T>(list: ArrayLike<T>, attrs: HaltingStepAttrs): HaltingStepGradInputs<T> {
  return named<HaltingStepGradInputs<T>>(GRAD_ORDER, list, attrs);
}

export function haltingStepGradInputList<T>(inputs: HaltingStepGradInputs<T>, attrs: HaltingStepAttrs): T[] {
  return positional(GRAD_ORDER, inputs as unknown as Record<string, T>, attrs);
}

const MODE_CODES = { relaxed: 0, discrete: 1, thresholded: 2 } as const;

/** The native kernels' scalar arguments: mode code (0 relaxed, 1 discrete, 2 thresholded), l, last, λ, δ. */
export function haltingConfigArgs(attrs: HaltingStepAttrs): [number, number, boolean, number, number] {
  return [MODE_CODES[attrs.mode], attrs.iteration, attrs.last, attrs.temperature, attrs.delta];
}

/** positions = the state's size; channels = u's size per position (1 without u or positions). */
export function haltingExtents(
  state: { shape: number[] },
  u: { shape: number[] } | undefined,
): { positions: number; channels: number } {
  const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
  const positions = size(state.shape);
  return { positions, channels: u === undefined || positions === 0 ? 1 : size(u.shape) / positions };
}
