/**
 * spatialMean(x): the mean over the height and width of NHWC x [B, H, W, C], [B, C] — tf.mean(x, [1, 2]) with a
 * cheaper gradient. tfjs' Mean gradient is three passes over a tensor of x's size (a ones tensor, dy times it, the
 * quotient by H·W); this one is a single write: the batched product ones[H·W, 1] × (dy / (H·W))[B, 1, C], a
 * BatchMatMul that every backend has (oneDNN's on pact-cpu). PSACT takes the mean of u in every halting unit, so
 * its training step computes this gradient 15 times per ResNet-32 step.
 */
import * as tf from '@tensorflow/tfjs';

export function spatialMean(x: tf.Tensor4D): tf.Tensor2D {
  if (!(x instanceof tf.Tensor) || x.rank !== 4) {
    throw new Error(`spatialMean: x must be a 4-D tf.Tensor [batch, height, width, channels], got ${describe(x)}`);
  }
  const [b, h, w, c] = x.shape;
  const mean = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => ({
    value: tf.mean(args[0] as tf.Tensor4D, [1, 2]),
    gradFunc: (dy: tf.Tensor) =>
      tf.tidy(() => {
        const ones = tf.ones([1, h * w, 1]);
        const scaled = tf.reshape(tf.div(dy, h * w), [b, 1, c]);
        return tf.reshape(tf.matMul(ones, scaled), [b, h, w, c]);
      }),
  }));
  return mean(x) as tf.Tensor2D;
}

function describe(x: unknown): string {
  return x instanceof tf.Tensor ? `shape [${x.shape}]` : typeof x;
}
