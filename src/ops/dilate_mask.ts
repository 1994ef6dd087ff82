/**
 * dilateMask(mask, k): the positions within a k×k window (k odd) of an active one, as 0/1 float32 of the mask's
 * shape. PSACT (PACT.md, "PSACT") computes a residual unit's first 3×3 convolution on the active set dilated by one
 * pixel, `dilateMask(a, 3)`, because the second convolution reads it there.
 *
 * On pact-cpu the `PactDilateMask` kernel (native/cpu/masked_conv2d.cc, separable: O(B·H·W) whatever k); elsewhere
 * the composite: max-pooling of [mask > 0]. The result is a set, not a function of the mask's values: no gradient.
 */
import * as tf from '@tensorflow/tfjs';

import { stepMask } from './halting_util';

export const PACT_DILATE_MASK = 'PactDilateMask';

export interface DilateMaskAttrs {
  radius: number;
}

/**
 * @param mask [batch, height, width] or [batch, height, width, 1]; active where > 0.
 * @param k odd window size (1 binarises the mask, 3 adds the 8 neighbours of every active position).
 */
export function dilateMask(mask: tf.Tensor, k: number): tf.Tensor {
  if (!(mask instanceof tf.Tensor)) throw new Error(`dilateMask: mask must be a tf.Tensor, got ${typeof mask}`);
  if (mask.dtype !== 'float32') throw new Error(`dilateMask: mask must be float32, got ${mask.dtype}`);
  if (!(mask.rank === 3 || (mask.rank === 4 && mask.shape[3] === 1))) {
    throw new Error(
      `dilateMask: mask must have shape [batch, height, width] or [batch, height, width, 1], got ` + `[${mask.shape}]`,
    );
  }
  if (!Number.isInteger(k) || k < 1 || k % 2 === 0)
    throw new Error(`dilateMask: k must be an odd positive integer, got ${k}`);
  const shape3 = mask.shape.slice(0, 3) as [number, number, number];
  return tf.tidy(() => {
    const m3 = tf.reshape(mask, shape3);
    // A window wider than the image covers all of it: the radius past max(height, width) changes nothing.
    const attrs: DilateMaskAttrs = { radius: Math.min((k - 1) / 2, Math.max(shape3[1], shape3[2])) };
    const out =
      tf.getKernel(PACT_DILATE_MASK, tf.getBackend()) === undefined
        ? dilateMaskComposite(m3 as tf.Tensor3D, 2 * attrs.radius + 1)
        : (tf.engine().runKernel(PACT_DILATE_MASK, { mask: m3 }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor);
    return tf.reshape(out, mask.shape);
  });
}

/** The tfjs-ops implementation (any backend): a k×k stride-1 'same' max-pool of [mask > 0] (a NaN is inactive). */
export function dilateMaskComposite(mask: tf.Tensor3D, k: number): tf.Tensor3D {
  const pooled = tf.maxPool(tf.expandDims(stepMask(mask), 3) as tf.Tensor4D, k, 1, 'same');
  return tf.reshape(pooled, mask.shape) as tf.Tensor3D;
}

tf.registerGradient({
  kernelName: PACT_DILATE_MASK,
  inputsToSave: ['mask'],
  gradFunc: (_dy, saved) => ({ mask: () => tf.zerosLike(saved[0]) }),
});
