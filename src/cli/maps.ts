/**
 * `pact maps`: ponder-cost maps of an adaptive ResNet as PNG images, the input and its heat map side by side (like
 * Fig. 6 of the PACT paper and the maps of SACT). The map of an image is the number of residual units executed at
 * each input position, summed over the three stages (each stage's map nearest-upsampled to the input size): from
 * 3 (only the always-run first units) to 3L (every unit). The colour scale is fixed to that range, so maps are
 * comparable across images and runs.
 *
 * On the procedural shapes dataset each image's object mask is known: the summary reports the mean map inside and
 * outside the object, which says whether the model spends its computation on the object.
 */
import * as fs from 'fs';
import * as path from 'path';

import * as tf from '@tensorflow/tfjs';
import { PNG } from 'pngjs';

import type { ShapeSplit } from '../data/procedural';
import { type AdaptiveMode, disposeForward } from '../models/psact';
import type { AdaptiveTask } from '../train/adaptive_task';

export interface MapsOptions {
  /** Directory the PNG files go to (created). */
  out: string;
  /** Number of test images. */
  count: number;
  mode: AdaptiveMode;
  /** Pixels per input pixel in the PNG. */
  scale?: number;
}

export interface MapSummary {
  file: string;
  label: number;
  predicted: number;
  /** Mean units executed per position (summed over stages). */
  meanPonder: number;
  /** Shapes dataset: mean map where the object covers at least half of a pixel, and elsewhere. */
  objectPonder?: number;
  backgroundPonder?: number;
}

type Rgb = [number, number, number];

/** A perceptually ordered dark-to-bright scale (approximately matplotlib's inferno). */
const HEAT: Rgb[] = [
  [0, 0, 4],
  [66, 10, 104],
  [147, 38, 103],
  [221, 81, 58],
  [252, 165, 10],
  [252, 255, 164],
];

export function heatColour(t: number): Rgb {
  const x = Math.min(Math.max(Number.isFinite(t) ? t : 0, 0), 1) * (HEAT.length - 1);
  const i = Math.min(Math.floor(x), HEAT.length - 2);
  const f = x - i;
  return HEAT[i].map((c, k) => Math.round(c + f * (HEAT[i + 1][k] - c))) as Rgb;
}

/** Units executed per input position, summed over stages: [count][H*W] for the images of a forward pass. */
export function ponderMaps(iterations: tf.Tensor3D[], height: number, width: number): Float32Array[] {
  const batch = iterations[0].shape[0];
  const maps = Array.from({ length: batch }, () => new Float32Array(height * width));
  for (const stage of iterations) {
    const [, h, w] = stage.shape;
    const values = stage.dataSync();
    for (let b = 0; b < batch; ++b) {
      for (let y = 0; y < height; ++y) {
        const sy = Math.floor((y * h) / height);
        for (let x = 0; x < width; ++x) {
          maps[b][y * width + x] += values[(b * h + sy) * w + Math.floor((x * w) / width)];
        }
      }
    }
  }
  return maps;
}

/** The input (values in [0, 1], 1 or 3 channels) and the heat map side by side, `scale` pixels per position. */
export function mapPng(
  image: Float32Array,
  channels: number,
  map: Float32Array,
  range: [number, number],
  height: number,
  width: number,
  scale: number,
): Buffer {
  if (!Number.isInteger(scale) || scale < 1) throw new Error(`mapPng: scale must be a positive integer, got ${scale}`);
  const gap = 2 * scale;
  const png = new PNG({ width: 2 * width * scale + gap, height: height * scale });
  png.data.fill(255);
  const put = (px: number, py: number, [r, g, b]: Rgb) => {
    const at = (py * png.width + px) * 4;
    png.data[at] = r;
    png.data[at + 1] = g;
    png.data[at + 2] = b;
    png.data[at + 3] = 255;
  };
  for (let y = 0; y < height; ++y) {
    for (let x = 0; x < width; ++x) {
      const pixel = (y * width + x) * channels;
      const grey = (k: number) => Math.round(255 * Math.min(Math.max(image[pixel + (channels === 3 ? k : 0)], 0), 1));
      const input: Rgb = [grey(0), grey(1), grey(2)];
      const heat = heatColour((map[y * width + x] - range[0]) / (range[1] - range[0]));
      for (let dy = 0; dy < scale; ++dy) {
        for (let dx = 0; dx < scale; ++dx) {
          put(x * scale + dx, y * scale + dy, input);
          put(width * scale + gap + x * scale + dx, y * scale + dy, heat);
        }
      }
    }
  }
  return PNG.sync.write(png);
}

/** Writes ponder_<i>.png for the first `count` test images and returns one summary per image. */
export function writePonderMaps(task: AdaptiveTask, options: MapsOptions): MapSummary[] {
  const { dataset, model } = task;
  if (!Number.isInteger(options.count) || options.count < 1) {
    throw new Error(`pact maps: --count must be a positive integer, got ${options.count}`);
  }
  const scale = options.scale ?? 4;
  const { height, width, channels } = dataset;
  const { x, labels } = task.testBatch(options.count);
  const result = model.forward(x, task.forwardOptions(options.mode, false, 1));
  const maps = ponderMaps(
    result.stages.map((s) => s.iterations),
    height,
    width,
  );
  const predicted = tf.tidy(() => tf.argMax(result.logits, 1).dataSync());
  const labelValues = labels.dataSync();
  disposeForward(result);
  tf.dispose([x, labels]);
  const stages = model.resnet.stages.length;
  const range: [number, number] = [stages, stages * model.maxIterations];
  const objectMasks = (dataset.test as Partial<ShapeSplit>).objectMasks;
  fs.mkdirSync(options.out, { recursive: true });
  return maps.map((map, i) => {
    const pixels = height * width;
    const image = dataset.test.images.subarray(i * pixels * channels, (i + 1) * pixels * channels);
    const file = path.join(options.out, `ponder_${String(i).padStart(3, '0')}.png`);
    fs.writeFileSync(file, mapPng(image, channels, map, range, height, width, scale));
    const summary: MapSummary = {
      file,
      label: labelValues[i],
      predicted: predicted[i],
      meanPonder: map.reduce((a, b) => a + b, 0) / pixels,
    };
    if (objectMasks !== undefined) {
      const mask = objectMasks.subarray(i * pixels, (i + 1) * pixels);
      const mean = (keep: (m: number) => boolean) => {
        let sum = 0;
        let n = 0;
        mask.forEach((m, p) => {
          if (keep(m)) {
            sum += map[p];
            n += 1;
          }
        });
        return n > 0 ? sum / n : NaN;
      };
      summary.objectPonder = mean((m) => m >= 0.5);
      summary.backgroundPonder = mean((m) => m < 0.5);
    }
    return summary;
  });
}
