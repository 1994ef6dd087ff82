/**
 * Model parameters as tf.Variables that own their buffers alone. tf.variable(t) shares t's buffer and leaves t
 * registered (counted in tf.memory()); once the variable is assigned a new value, t's buffer stays behind, unreachable,
 * for the life of the process. Made here, the initial tensor is disposed at once and the variable keeps the buffer.
 */
import * as tf from '@tensorflow/tfjs';

export function newVariable<R extends tf.Rank>(
  init: () => tf.Tensor<R>,
  trainable = true,
  name?: string,
): tf.Variable<R> {
  return tf.tidy(() => tf.variable(init(), trainable, name));
}
