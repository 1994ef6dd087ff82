/** Optimizers the trainer's schedule and checkpoints need beyond what tfjs provides. */
import * as tf from '@tensorflow/tfjs';

import { sgdMomentumStep } from '../ops/sgd_momentum';

const ACC_BETAS = ['accBeta1', 'accBeta2'] as const;

type NamedTensors = Awaited<ReturnType<tf.Optimizer['getWeights']>>;

/**
 * Adam whose rate the trainer's schedule can change (tfjs' AdamOptimizer has no setter) and whose checkpointed
 * weights resume exactly: tfjs' setWeights recomputes β^(t+1) with pow, which differs in the last bits from the
 * running product the uninterrupted run holds, so the two products travel with the slots.
 */
export class ScheduledAdam extends tf.AdamOptimizer {
  setLearningRate(learningRate: number): void {
    this.learningRate = learningRate;
  }

  private get betaProducts(): Record<(typeof ACC_BETAS)[number], tf.Variable> {
    return this as unknown as Record<(typeof ACC_BETAS)[number], tf.Variable>;
  }

  override async getWeights(): Promise<NamedTensors> {
    const weights = await super.getWeights();
    return [...weights, ...ACC_BETAS.map((name) => ({ name, tensor: this.betaProducts[name] }))];
  }

  override async setWeights(weights: NamedTensors): Promise<void> {
    const products = weights.filter((w) => (ACC_BETAS as readonly string[]).includes(w.name));
    await super.setWeights(weights.filter((w) => !products.includes(w)));
    for (const { name, tensor } of products) this.betaProducts[name as (typeof ACC_BETAS)[number]].assign(tensor);
  }
}

/** An optimizer's input: one named gradient per variable. */
export type GradientUpdate = { name: string; tensor: tf.Tensor };

/**
 * One update per variable of `variables`, in that order: its gradient, zeros where the loss did not depend on it
 * this step (a PSACT unit no position reached), plus `weightDecay · v` for the variables in `decayed`. tfjs'
 * optimizers keep their slots by position in the list they are given, so a variable missing from one step's
 * gradients would pair every later variable with another one's momentum. The tensors are the caller's.
 */
export function gradientUpdates(
  variables: readonly tf.Variable[],
  grads: tf.NamedTensorMap,
  decayed: ReadonlySet<tf.Variable> = new Set(),
  weightDecay = 0,
): GradientUpdate[] {
  return tf.tidy(() =>
    variables.map((v) => {
      const g: tf.Tensor = grads[v.name] ?? tf.zerosLike(v);
      const tensor = weightDecay > 0 && decayed.has(v) ? tf.add(g, tf.mul(v, weightDecay)) : tf.clone(g);
      return { name: v.name, tensor };
    }),
  );
}

type OptimizerSlot = { originalName: string; variable: tf.Variable };

/**
 * tfjs' MomentumOptimizer (no Nesterov) with each variable's update as one kernel, `sgdMomentumStep`, instead of
 * four ops: the same values bit for bit, the same slots, weights and checkpoints (`<name>/momentum`), a quarter of
 * the kernels in the optimizer's part of a training step.
 */
export class FusedMomentumOptimizer extends tf.MomentumOptimizer {
  constructor(learningRate: number, momentum: number) {
    super(learningRate, momentum, false);
  }

  private get slots(): Array<OptimizerSlot | undefined> {
    return (this as unknown as { accumulations: Array<OptimizerSlot | undefined> }).accumulations;
  }

  override applyGradients(variableGradients: tf.NamedTensorMap | GradientUpdate[]): void {
    const names = Array.isArray(variableGradients)
      ? variableGradients.map((item) => item.name)
      : Object.keys(variableGradients);
    const momentum = (this as unknown as { momentum: number }).momentum;
    names.forEach((name, i) => {
      const value = tf.engine().registeredVariables[name];
      if (value === undefined) throw new Error(`FusedMomentumOptimizer: no variable named ${name}`);
      this.slots[i] ??= {
        originalName: `${name}/momentum`,
        variable: tf.tidy(() => tf.zerosLike(value).variable(false)),
      };
      const accumulation = (this.slots[i] as OptimizerSlot).variable;
      const gradient = Array.isArray(variableGradients) ? variableGradients[i].tensor : variableGradients[name];
      if (gradient == null) return;
      tf.tidy(() => {
        const [next, nextAccumulation] = sgdMomentumStep(value, accumulation, gradient, {
          learningRate: this.learningRate,
          momentum,
        });
        accumulation.assign(nextAccumulation);
        value.assign(next);
      });
    });
    this.incrementIterations();
  }
}
