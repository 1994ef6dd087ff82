/**
 * FLOPs per image of the dense and adaptive pre-activation ResNets, by the rule of SACT's flopsometer (Figurnov et
 * al. 2017, used by PACT section 6): a convolution costs 2 × (multiply-adds) = 2 × outputPositions × kH × kW ×
 * inChannels × outChannels, counted only at the output positions that are computed; the halting branch is
 * included; batch norm, ReLU, additions and pooling are ignored.
 *
 * Dense ResNet-32 on 32×32×3 (10 classes): 69,124,736 multiply-adds = 0.138 GFLOP (0.1377 without the two 1×1
 * projection shortcuts, which SACT's parameter-free shortcut does not have: the field notes' 0.137).
 *
 * Adaptive model: the stem, the first unit of every stage (it always runs) and the linear layer count in full;
 * unit l ≥ 2 counts both 3×3 convolutions at the positions where it ran (`'sact'` rule) or, with the `'executed'`
 * rule, its first convolution on the active set dilated by one pixel (what the masked convolution really computes,
 * models/psact.ts); the halting unit after iteration l counts its 3×3 convolution to one channel where unit l ran
 * and its pooled linear term (C multiply-adds) once per image in which it ran anywhere.
 */
import type { AdaptiveForwardResult, AdaptiveResNet } from './psact';
import type { PreActResNet } from './resnet';

export type FlopsRule = 'sact' | 'executed';

/** The sizes the count depends on. */
export interface ResNetGeometry {
  height: number;
  width: number;
  inputChannels: number;
  widths: readonly number[];
  unitsPerStage: number;
  numClasses: number;
}

/** What ran in one stage of one image. */
export interface StageActivity {
  /** Σ over units l ≥ 2 of the positions where the unit ran (its active set A_l). */
  unitPositions: number;
  /** Σ over units l ≥ 2 of |dilate(A_l, 3)|, where their first convolution ran. */
  conv1Positions: number;
  /** Σ over l < L of |A_l| (A_1 = every position): positions where a halting unit ran. */
  haltPositions: number;
  /** The number of halting units that ran at one position at least. */
  haltUnits: number;
}

export function geometryOf(config: PreActResNet['config'], height: number, width: number): ResNetGeometry {
  for (const [name, v] of [
    ['height', height],
    ['width', width],
  ] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`geometryOf: ${name} must be a positive integer, got ${v}`);
  }
  const { inputChannels, widths, unitsPerStage, numClasses } = config;
  return { height, width, inputChannels, widths, unitsPerStage, numClasses };
}

/** 2 × multiply-adds of a convolution computed at `positions` output positions. */
export function convFlops(positions: number, kernel: number, inChannels: number, outChannels: number): number {
  return 2 * positions * kernel * kernel * inChannels * outChannels;
}

function stageSize(g: ResNetGeometry, s: number): number {
  return Math.ceil(g.height / 2 ** s) * Math.ceil(g.width / 2 ** s);
}

/** Stem, the first unit of every stage, and the linear layer: what runs in every model at every position. */
function alwaysRunFlops(g: ResNetGeometry): number {
  let flops = convFlops(g.height * g.width, 3, g.inputChannels, g.widths[0]);
  let channels = g.widths[0];
  g.widths.forEach((width, s) => {
    const positions = stageSize(g, s);
    flops += convFlops(positions, 3, channels, width) + convFlops(positions, 3, width, width);
    if (channels !== width || s > 0) flops += convFlops(positions, 1, channels, width);
    channels = width;
  });
  return flops + 2 * channels * g.numClasses;
}

/** FLOPs per image of the dense ResNet (every unit at every position, no halting branch). */
export function denseResNetFlops(g: ResNetGeometry): number {
  const rest = g.widths.reduce(
    (sum, width, s) => sum + (g.unitsPerStage - 1) * 2 * convFlops(stageSize(g, s), 3, width, width),
    0,
  );
  return alwaysRunFlops(g) + rest;
}

/** FLOPs per image of the adaptive ResNet given what ran in each stage. */
export function adaptiveResNetFlops(g: ResNetGeometry, stages: StageActivity[], rule: FlopsRule = 'sact'): number {
  if (rule !== 'sact' && rule !== 'executed') {
    throw new Error(`adaptiveResNetFlops: rule must be 'sact' or 'executed', got ${String(rule)}`);
  }
  if (stages.length !== g.widths.length) {
    throw new Error(
      `adaptiveResNetFlops: stages must have one entry per stage (${g.widths.length}), got ` + `${stages.length}`,
    );
  }
  return stages.reduce((sum, a, s) => {
    const c = g.widths[s];
    const conv1 = rule === 'sact' ? a.unitPositions : a.conv1Positions;
    const units = convFlops(conv1, 3, c, c) + convFlops(a.unitPositions, 3, c, c);
    const halting = convFlops(a.haltPositions, 3, c, 1) + 2 * c * a.haltUnits;
    return sum + units + halting;
  }, alwaysRunFlops(g));
}

/** The activity of one image of one stage from its map of units executed per position (values 1 … L). */
export function stageActivity(iterations: ArrayLike<number>, L: number, conv1Positions: number): StageActivity {
  let unitPositions = 0;
  let haltPositions = 0;
  let most = 0;
  for (let i = 0; i < iterations.length; ++i) {
    const k = Math.round(iterations[i]);
    if (!(k >= 1 && k <= L)) throw new Error(`stageActivity: iterations[${i}] is ${iterations[i]}, expected 1 … ${L}`);
    unitPositions += k - 1;
    haltPositions += Math.min(k, L - 1);
    most = Math.max(most, k);
  }
  return { unitPositions, conv1Positions, haltPositions, haltUnits: Math.min(most, L - 1) };
}

export interface ForwardFlops {
  /** Per image, SACT's rule. */
  flops: number[];
  /** Per image, the convolutions the masked kernels executed. */
  executedFlops: number[];
  /** The dense ResNet's FLOPs per image on this input size. */
  denseFlops: number;
}

/** FLOPs of each image of a forward pass of `model` on images of height × width. Reads the maps back. */
export function forwardFlops(
  model: AdaptiveResNet,
  result: AdaptiveForwardResult,
  height: number,
  width: number,
): ForwardFlops {
  const g = geometryOf(model.config, height, width);
  const L = model.maxIterations;
  const perStage = result.stages.map((stage, s) => {
    const [b, h, w] = stage.iterations.shape;
    // Each stage halves the map (ceil): the maps must be those of images of height × width.
    if (h !== Math.ceil(height / 2 ** s) || w !== Math.ceil(width / 2 ** s)) {
      throw new Error(
        `forwardFlops: stage ${s}'s maps are ${h}x${w}, not those of ${height}x${width} images ` +
          `(${Math.ceil(height / 2 ** s)}x${Math.ceil(width / 2 ** s)})`,
      );
    }
    const maps = stage.iterations.dataSync();
    const conv1 = stage.conv1Positions.dataSync();
    return Array.from({ length: b }, (_, i) => stageActivity(maps.subarray(i * h * w, (i + 1) * h * w), L, conv1[i]));
  });
  const batch = result.logits.shape[0];
  const images = Array.from({ length: batch }, (_, i) => perStage.map((stage) => stage[i]));
  return {
    flops: images.map((stages) => adaptiveResNetFlops(g, stages, 'sact')),
    executedFlops: images.map((stages) => adaptiveResNetFlops(g, stages, 'executed')),
    denseFlops: denseResNetFlops(g),
  };
}
