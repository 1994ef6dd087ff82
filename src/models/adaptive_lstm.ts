/**
 * An LSTM whose every timestep is an adaptive computation block (PACT section 4.2; ACT's recurrent setting):
 *
 *   u^0_k = the block output of timestep k − 1 (zeros at k = 1), u = [h, c] (the LSTM's output and cell state)
 *   u^l_k = F(x_k, [l = 1], u^{l−1}_k)        l = 1 … L, F the LSTM transition with the flag as an extra input
 *   h^l_k = σ(W u^l_k + b)                     the halting unit, for l < L (h^L = 1)
 *   u_k   = the block's output (relaxed / ACT: Σ_l ẑ^l u^l; discrete / thresholded: u^z)
 *   y_k   = V h_k + c_y                        the timestep's prediction, from the h half of u_k
 *
 * The same penalty τ applies to every timestep (the objectives take N_k or ρ_k per step). The block itself is
 * `adaptiveBlock` (ops/adaptive_block.ts), which uses the fused halting step (native on pact-cpu) and, in discrete,
 * thresholded and ACT modes, stops calling F once every sequence of the batch has halted at this timestep.
 *
 * Choices, where the papers leave one open:
 * - F's pre-activations are x_k W_x + b + [l = 1] w_flag + h W_h per gate: the flag's weight row is added only at
 *   the first iteration, which equals feeding the binary flag as one more input column, and x_k W_x + b is computed
 *   once per timestep instead of once per iteration. Each gate has its own weight tensors (no slicing of a fused
 *   [.., 4H] product: see `takeH`).
 * - The halting unit reads the whole state [h, c] (the paper's u); its weights start at 0 and its bias at
 *   log(2 / (L − 1)) = logit(2 / (L + 1)), so every input starts with h = 2 / (L + 1): the untruncated geometric
 *   mean 1 / h is (L + 1) / 2 and ACT's cumulative halting first reaches 1 − ε after about (L + 1) / 2 iterations.
 *   Early halting is not forced (a large bias would give h ≈ 1 at l = 1 and no gradient to the later iterations,
 *   so the model could never learn to ponder), nor is the maximum (a very negative one would let τ alone decide).
 * - Gate order i, f, g, o; forget-gate bias 1 (Jozefowicz et al. 2015), other biases 0; input and recurrent weights
 *   ~ U(±1/√H) as in PyTorch's LSTM; the output layer ~ U(±1/√H), bias 0. Seeded.
 * - L ≥ 2 (L = 1 is a plain LSTM).
 */
import * as tf from '@tensorflow/tfjs';

import { mixSeed } from '../data/rng';
import { adaptiveBlock, type AdaptiveMode } from '../ops/adaptive_block';
import { newVariable } from './variables';

export interface AdaptiveLstmConfig {
  inputSize: number;
  hiddenSize: number;
  /** Output units per timestep (logits). */
  outputSize: number;
  /** L, the most iterations per timestep (≥ 2). */
  maxIterations: number;
  /** Initial bias of the halting unit; default log(2 / (L − 1)) (see the file comment). */
  haltBias?: number;
  forgetBias?: number;
  seed?: number;
}

export interface AdaptiveLstmRunOptions {
  mode: AdaptiveMode;
  /** λ of the relaxed mode (default 2/3, Maddison et al.'s recommendation for binary Concrete variables). */
  temperature?: number;
  /** ε of ACT (default 0.01). */
  epsilon?: number;
  /** U(0,1) noise [batch, T, L − 1] of the relaxed and discrete modes; drawn from `seed` if absent. */
  noise?: tf.Tensor3D;
  seed?: number;
}

export interface AdaptiveLstmOutput {
  /** Predictions, [batch, T, outputSize]. */
  logits: tf.Tensor3D;
  /** The ponder term per timestep, [batch, T]: N (eq. 23) in PACT modes, ρ = N + R in ACT mode. */
  ponder: tf.Tensor2D;
  /** Iterations executed per timestep, [batch, T] (integer-valued; L everywhere in relaxed mode). */
  iterations: tf.Tensor2D;
  /** log q(z | x) = Σ_k log q(z_k), [batch] (discrete mode only): REINFORCE's score. */
  logProb?: tf.Tensor1D;
}

export const DEFAULT_TEMPERATURE = 2 / 3;

/** The seed of weight `index`: hashed (seed + index made consecutive seeds share weights: seed 2's first gate was
 *  seed 1's second), never 0 (tfjs' "no seed"). */
function layerSeed(seed: number, index: number): number {
  return mixSeed(seed, index) + 1;
}

function uniformVariable(shape: number[], limit: number, seed: number, name: string): tf.Variable {
  return newVariable(() => tf.randomUniform(shape, -limit, limit, 'float32', seed), true, name);
}

let instances = 0;

const GATES = ['i', 'f', 'g', 'o'] as const;
type Gate = (typeof GATES)[number];
type PerGate<T> = Record<Gate, T>;

function perGate<T>(make: (gate: Gate, index: number) => T): PerGate<T> {
  return Object.fromEntries(GATES.map((g, i) => [g, make(g, i)])) as PerGate<T>;
}

/** [rows, cols] with ones at (offset + j, j) or (j, offset + j): a constant that selects or places a block. */
function blockIdentity(rows: number, cols: number, offset: number, transpose: boolean): tf.Tensor2D {
  const values = new Float32Array(rows * cols);
  const n = Math.min(rows, cols);
  for (let j = 0; j < n; ++j) values[transpose ? j * cols + offset + j : (offset + j) * cols + j] = 1;
  return tf.tensor2d(values, [rows, cols]);
}

export class AdaptiveLstm {
  readonly config: Required<AdaptiveLstmConfig>;
  /** Per gate: [inputSize, H], [H], [1, H] (the first-iteration flag's row), [H, H]. */
  readonly inputKernel: PerGate<tf.Variable>;
  readonly bias: PerGate<tf.Variable>;
  readonly flagKernel: PerGate<tf.Variable>;
  readonly recurrentKernel: PerGate<tf.Variable>;
  /** [2H, 1] and [1]: logit h = [h, c] W + b. */
  readonly haltKernel: tf.Variable;
  readonly haltBias: tf.Variable;
  /** [H, outputSize], [outputSize]. */
  readonly outputKernel: tf.Variable;
  readonly outputBias: tf.Variable;
  /** Calls of the transition F so far (each on the whole batch): what the early stop saves. */
  cellCalls = 0;
  /**
   * Constant 0/1 matrices that take h and c out of u = [h, c] and put them back by matrix products: tfjs-backend-cpu
   * slices and concatenates along a non-leading axis element by element (≈ 10-20 ms for a [64, 64] state, backward
   * included), a native matrix product of this size costs little more than its dispatch.
   */
  private readonly takeH: tf.Tensor2D;
  private readonly takeC: tf.Tensor2D;
  private readonly putH: tf.Tensor2D;
  private readonly putC: tf.Tensor2D;

  constructor(config: AdaptiveLstmConfig) {
    const positive = (name: keyof AdaptiveLstmConfig, min: number) => {
      const v = config?.[name];
      if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
        throw new Error(`AdaptiveLstm: ${name} must be an integer >= ${min}, got ${String(v)}`);
      }
      return v;
    };
    const inputSize = positive('inputSize', 1);
    const H = positive('hiddenSize', 1);
    const outputSize = positive('outputSize', 1);
    const L = positive('maxIterations', 2);
    const haltBias = config.haltBias ?? Math.log(2 / (L - 1));
    const forgetBias = config.forgetBias ?? 1;
    const seed = config.seed ?? 1;
    for (const [name, v] of [
      ['haltBias', haltBias],
      ['forgetBias', forgetBias],
      ['seed', seed],
    ] as const) {
      if (!Number.isFinite(v)) throw new Error(`AdaptiveLstm: ${name} must be a finite number, got ${v}`);
    }
    this.config = { inputSize, hiddenSize: H, outputSize, maxIterations: L, haltBias, forgetBias, seed };
    const limit = 1 / Math.sqrt(H);
    const id = `adaptive_lstm${instances++}`;
    this.inputKernel = perGate((g, i) =>
      uniformVariable([inputSize, H], limit, layerSeed(seed, i), `${id}/input_kernel_${g}`),
    );
    this.flagKernel = perGate((g, i) =>
      uniformVariable([1, H], limit, layerSeed(seed, 4 + i), `${id}/flag_kernel_${g}`),
    );
    this.recurrentKernel = perGate((g, i) =>
      uniformVariable([H, H], limit, layerSeed(seed, 8 + i), `${id}/recurrent_kernel_${g}`),
    );
    this.bias = perGate((g) => newVariable(() => tf.fill([H], g === 'f' ? forgetBias : 0), true, `${id}/bias_${g}`));
    this.haltKernel = newVariable(() => tf.zeros([2 * H, 1]), true, `${id}/halt_kernel`);
    this.haltBias = newVariable(() => tf.tensor1d([haltBias]), true, `${id}/halt_bias`);
    this.outputKernel = uniformVariable([H, outputSize], limit, layerSeed(seed, 12), `${id}/output_kernel`);
    this.outputBias = newVariable(() => tf.zeros([outputSize]), true, `${id}/output_bias`);
    this.takeH = blockIdentity(2 * H, H, 0, false);
    this.takeC = blockIdentity(2 * H, H, H, false);
    this.putH = blockIdentity(H, 2 * H, 0, true);
    this.putC = blockIdentity(H, 2 * H, H, true);
  }

  /** Every variable, in a fixed order (checkpoints). All are trainable. */
  variables(): tf.Variable[] {
    return [
      ...GATES.map((g) => this.inputKernel[g]),
      ...GATES.map((g) => this.bias[g]),
      ...GATES.map((g) => this.flagKernel[g]),
      ...GATES.map((g) => this.recurrentKernel[g]),
      this.haltKernel,
      this.haltBias,
      this.outputKernel,
      this.outputBias,
    ];
  }

  /**
   * x_k W_x + b per gate for every timestep, computed once per timestep rather than once per iteration. The
   * timesteps are taken along the leading axis of a transposed copy (a contiguous slice), x carries no gradient.
   */
  private inputProjections(x: tf.Tensor3D): Array<PerGate<tf.Tensor2D>> {
    const [B, T, D] = x.shape;
    const timeMajor = tf.transpose(x, [1, 0, 2]);
    return Array.from({ length: T }, (_, k) => {
      const xk = tf.reshape(tf.slice(timeMajor, [k, 0, 0], [1, B, D]), [B, D]);
      return perGate((g) => tf.add(tf.matMul(xk, this.inputKernel[g]), this.bias[g]) as tf.Tensor2D);
    });
  }

  /** The h half of a state u = [h, c], [batch, H]. */
  hiddenOf(u: tf.Tensor2D): tf.Tensor2D {
    return tf.matMul(u, this.takeH);
  }

  /**
   * F(x_k, [l = 1], u): one LSTM transition of the state u = [h, c] ([batch, 2H]), given x_k W_x + b per gate.
   * Public so that tests can check the cell alone.
   */
  cell(inputProjection: PerGate<tf.Tensor2D>, first: boolean, u: tf.Tensor2D): tf.Tensor2D {
    this.cellCalls += 1;
    return tf.tidy(() => {
      const h = tf.matMul(u, this.takeH);
      const c = tf.matMul(u, this.takeC);
      const pre = perGate((g) => {
        const p = tf.add(inputProjection[g], tf.matMul(h, this.recurrentKernel[g]));
        return first ? tf.add(p, this.flagKernel[g]) : p;
      });
      const cNext = tf.add(tf.mul(tf.sigmoid(pre.f), c), tf.mul(tf.sigmoid(pre.i), tf.tanh(pre.g)));
      const hNext = tf.mul(tf.sigmoid(pre.o), tf.tanh(cNext));
      return tf.add(tf.matMul(hNext, this.putH), tf.matMul(cNext, this.putC));
    });
  }

  /** logit(h) of the state u, [batch]. */
  haltLogits(u: tf.Tensor2D): tf.Tensor1D {
    return tf.tidy(() => tf.reshape(tf.add(tf.matMul(u, this.haltKernel), this.haltBias), [u.shape[0]]) as tf.Tensor1D);
  }

  /**
   * Runs the sequences x ([batch, T, inputSize]) with one adaptive block per timestep. Call inside tf.tidy (or
   * tf.variableGrads): the result's tensors are the caller's.
   */
  forward(x: tf.Tensor3D, options: AdaptiveLstmRunOptions): AdaptiveLstmOutput {
    const { inputSize, hiddenSize: H, maxIterations: L } = this.config;
    if (!(x instanceof tf.Tensor) || x.rank !== 3 || x.shape[2] !== inputSize || x.dtype !== 'float32') {
      const got = x instanceof tf.Tensor ? `${x.dtype} [${x.shape}]` : String(x);
      throw new Error(`AdaptiveLstm.forward: x must be float32 [batch, T, ${inputSize}], got ${got}`);
    }
    const [B, T] = x.shape;
    if (T === 0) throw new Error('AdaptiveLstm.forward: x must hold at least one timestep, got T = 0');
    const noise = options.noise;
    if (noise !== undefined && !tf.util.arraysEqual(noise.shape, [B, T, L - 1])) {
      throw new Error(
        `AdaptiveLstm.forward: noise must have shape [${B}, ${T}, ${L - 1}] (batch, T, L − 1), got [${noise.shape}]`,
      );
    }
    const noisePerStep = noise === undefined ? undefined : tf.unstack(noise, 1);
    const projections = this.inputProjections(x);
    let u: tf.Tensor2D = tf.zeros([B, 2 * H]);
    const logits: tf.Tensor[] = [];
    const ponder: tf.Tensor[] = [];
    const iterations: tf.Tensor[] = [];
    const logProbs: tf.Tensor[] = [];
    projections.forEach((projection, k) => {
      const block = adaptiveBlock(
        (state, l) => this.cell(projection, l === 1, state as tf.Tensor2D),
        (state) => this.haltLogits(state as tf.Tensor2D),
        L,
        {
          mode: options.mode,
          input: u,
          temperature: options.temperature ?? DEFAULT_TEMPERATURE,
          epsilon: options.epsilon,
          noise: noisePerStep?.[k],
          seed: options.seed === undefined ? undefined : options.seed + k * (L + 1),
        },
      );
      u = block.output as tf.Tensor2D;
      logits.push(tf.add(tf.matMul(this.hiddenOf(u), this.outputKernel), this.outputBias));
      ponder.push((block.expectedIterations ?? block.ponderCost) as tf.Tensor);
      iterations.push(block.iterations);
      if (block.logProb !== undefined) logProbs.push(block.logProb);
    });
    return {
      logits: tf.stack(logits, 1) as tf.Tensor3D,
      ponder: tf.stack(ponder, 1) as tf.Tensor2D,
      iterations: tf.stack(iterations, 1) as tf.Tensor2D,
      ...(logProbs.length === 0 ? {} : { logProb: tf.addN(logProbs) as tf.Tensor1D }),
    };
  }

  dispose(): void {
    tf.dispose([...this.variables(), this.takeH, this.takeC, this.putH, this.putC]);
  }
}
