/**
 * "pact-shapes": the embedded dataset, generated from a seed with no download. Each 32×32 RGB image holds one
 * filled shape of one of ten classes, at a random position, scale, small rotation and colour, on a cluttered
 * background (smooth colour noise, thin random strokes and dots). The object covers a small part of the image,
 * so a spatially adaptive model should spend its computation there; each image's object mask is kept so that
 * ponder-cost maps can be scored against it.
 *
 * Shapes are drawn by signed distance (negative inside), antialiased over one pixel.
 */
import type { ImageDataset, ImageSplit } from './dataset';
import { SeededRng } from './rng';

export const SHAPE_CLASSES = [
  'disk',
  'square',
  'triangle',
  'diamond',
  'plus',
  'ring',
  'hexagon',
  'star',
  'ellipse',
  'ell',
] as const;

export interface ProceduralOptions {
  seed?: number;
  trainCount?: number;
  testCount?: number;
  size?: number;
}

export interface ShapeSplit extends ImageSplit {
  /** N*H*W coverage of the object in [0, 1]: where the computation should go. */
  objectMasks: Float32Array;
}

export interface ShapesDataset extends ImageDataset {
  train: ShapeSplit;
  test: ShapeSplit;
}

type Sdf = (x: number, y: number) => number;

const box = (x: number, y: number, hx: number, hy: number): number => {
  const dx = Math.abs(x) - hx;
  const dy = Math.abs(y) - hy;
  return Math.hypot(Math.max(dx, 0), Math.max(dy, 0)) + Math.min(Math.max(dx, dy), 0);
};

/** Signed distance of a regular polygon with `n` sides and circumradius r (approximate outside, exact sign). */
const polygon = (x: number, y: number, n: number, r: number): number => {
  const sector = (2 * Math.PI) / n;
  const a = Math.atan2(y, x) + Math.PI / 2;
  const local = (((a % sector) + sector) % sector) - sector / 2;
  return Math.hypot(x, y) * Math.cos(local) - r * Math.cos(Math.PI / n);
};

const star = (x: number, y: number): number => {
  const a = Math.atan2(y, x) + Math.PI / 2;
  const radius = 0.55 + 0.45 * Math.cos(5 * a) ** 2 * Math.sign(Math.cos(5 * a));
  return Math.hypot(x, y) - Math.max(radius, 0.45);
};

// Each class in object-local units: the shape fits the unit disk.
const SHAPES: Sdf[] = [
  (x, y) => Math.hypot(x, y) - 0.9,
  (x, y) => box(x, y, 0.75, 0.75),
  (x, y) => polygon(x, y, 3, 1),
  (x, y) => (Math.abs(x) + Math.abs(y) - 0.95) / Math.SQRT2,
  (x, y) => Math.min(box(x, y, 0.9, 0.28), box(x, y, 0.28, 0.9)),
  (x, y) => Math.abs(Math.hypot(x, y) - 0.7) - 0.22,
  (x, y) => polygon(x, y, 6, 0.95),
  star,
  (x, y) => (Math.hypot(x / 1.0, y / 0.45) - 1) * 0.45,
  (x, y) => Math.min(box(x + 0.45, y, 0.25, 0.9), box(x, y - 0.65, 0.7, 0.25)),
];

interface Colour {
  r: number;
  g: number;
  b: number;
}

function randomColour(rng: SeededRng): Colour {
  return { r: rng.next(), g: rng.next(), b: rng.next() };
}

/** A colour far enough from `avoid` (in RGB distance) to be seen against it. */
function contrastingColour(rng: SeededRng, avoid: Colour): Colour {
  for (;;) {
    const c = randomColour(rng);
    if (Math.hypot(c.r - avoid.r, c.g - avoid.g, c.b - avoid.b) > 0.6) return c;
  }
}

function drawBackground(rng: SeededRng, size: number, out: Float32Array, offset: number): Colour {
  const base = randomColour(rng);
  const waves = Array.from({ length: 3 }, () => ({
    fx: rng.between(-0.3, 0.3),
    fy: rng.between(-0.3, 0.3),
    phase: rng.between(0, 2 * Math.PI),
    amp: [rng.between(-0.15, 0.15), rng.between(-0.15, 0.15), rng.between(-0.15, 0.15)],
  }));
  for (let y = 0; y < size; ++y) {
    for (let x = 0; x < size; ++x) {
      const p = offset + (y * size + x) * 3;
      const rgb = [base.r, base.g, base.b];
      for (const w of waves) {
        const s = Math.sin(w.fx * x + w.fy * y + w.phase);
        for (let c = 0; c < 3; ++c) rgb[c] += w.amp[c] * s;
      }
      for (let c = 0; c < 3; ++c) out[p + c] = rgb[c];
    }
  }
  return base;
}

/** Thin strokes and dots: clutter with edges, so that finding the object takes more than an edge detector. */
function drawClutter(rng: SeededRng, size: number, out: Float32Array, offset: number): void {
  const strokes = 2 + rng.below(4);
  for (let s = 0; s < strokes; ++s) {
    const colour = randomColour(rng);
    let x = rng.between(0, size);
    let y = rng.between(0, size);
    const angle = rng.between(0, 2 * Math.PI);
    const length = rng.between(4, 12);
    for (let t = 0; t < length; t += 0.5) {
      x += 0.5 * Math.cos(angle);
      y += 0.5 * Math.sin(angle);
      const xi = Math.floor(x);
      const yi = Math.floor(y);
      if (xi < 0 || yi < 0 || xi >= size || yi >= size) break;
      const p = offset + (yi * size + xi) * 3;
      out[p] = 0.5 * out[p] + 0.5 * colour.r;
      out[p + 1] = 0.5 * out[p + 1] + 0.5 * colour.g;
      out[p + 2] = 0.5 * out[p + 2] + 0.5 * colour.b;
    }
  }
  const dots = 5 + rng.below(15);
  for (let d = 0; d < dots; ++d) {
    const p = offset + (rng.below(size) * size + rng.below(size)) * 3;
    const v = rng.next();
    out[p] = v;
    out[p + 1] = v;
    out[p + 2] = v;
  }
}

function drawShape(
  rng: SeededRng,
  label: number,
  size: number,
  background: Colour,
  out: Float32Array,
  offset: number,
  mask: Float32Array,
  maskOffset: number,
): void {
  const radius = rng.between(size * 0.16, size * 0.3);
  const cx = rng.between(radius, size - radius);
  const cy = rng.between(radius, size - radius);
  const angle = rng.between(-0.25, 0.25);
  const cos = Math.cos(angle);
  const sin = Math.sin(angle);
  const colour = contrastingColour(rng, background);
  const sdf = SHAPES[label];
  for (let y = 0; y < size; ++y) {
    for (let x = 0; x < size; ++x) {
      const dx = (x + 0.5 - cx) / radius;
      const dy = (y + 0.5 - cy) / radius;
      const d = sdf(cos * dx + sin * dy, -sin * dx + cos * dy) * radius;
      const coverage = Math.min(Math.max(0.5 - d, 0), 1);
      if (coverage === 0) continue;
      const p = offset + (y * size + x) * 3;
      out[p] += coverage * (colour.r - out[p]);
      out[p + 1] += coverage * (colour.g - out[p + 1]);
      out[p + 2] += coverage * (colour.b - out[p + 2]);
      mask[maskOffset + y * size + x] = coverage;
    }
  }
}

function generateSplit(rng: SeededRng, count: number, size: number): ShapeSplit {
  const pixels = size * size;
  const images = new Float32Array(count * pixels * 3);
  const objectMasks = new Float32Array(count * pixels);
  const labels = new Int32Array(count);
  for (let i = 0; i < count; ++i) {
    const label = i % SHAPE_CLASSES.length;
    labels[i] = label;
    const offset = i * pixels * 3;
    const background = drawBackground(rng, size, images, offset);
    drawClutter(rng, size, images, offset);
    drawShape(rng, label, size, background, images, offset, objectMasks, i * pixels);
  }
  for (let i = 0; i < images.length; ++i) images[i] = Math.min(Math.max(images[i], 0), 1);
  shuffleInPlace(rng, { images, labels, objectMasks, count }, pixels);
  return { images, labels, objectMasks, count };
}

/** Shuffles examples so that classes are interleaved at random (labels were assigned round-robin: balanced). */
function shuffleInPlace(rng: SeededRng, split: ShapeSplit, pixels: number): void {
  const order = rng.permutation(split.count);
  const images = split.images.slice();
  const masks = split.objectMasks.slice();
  const labels = split.labels.slice();
  for (let i = 0; i < split.count; ++i) {
    const j = order[i];
    split.images.set(images.subarray(j * pixels * 3, (j + 1) * pixels * 3), i * pixels * 3);
    split.objectMasks.set(masks.subarray(j * pixels, (j + 1) * pixels), i * pixels);
    split.labels[i] = labels[j];
  }
}

/** Generates pact-shapes; the same options always give the same images. */
export function proceduralShapes(options: ProceduralOptions = {}): ShapesDataset {
  const { seed = 1, trainCount = 10000, testCount = 2000, size = 32 } = options;
  for (const [name, value, min] of [
    ['trainCount', trainCount, 1],
    ['testCount', testCount, 1],
    ['size', size, 8],
  ] as const) {
    if (!Number.isInteger(value) || value < min) {
      throw new Error(`proceduralShapes: ${name} must be an integer >= ${min}, got ${value}`);
    }
  }
  // Each split is one Float32Array of count·size²·3 values: past 2^31 elements no typed array holds it.
  for (const [name, count] of [
    ['trainCount', trainCount],
    ['testCount', testCount],
  ] as const) {
    if (count * size * size * 3 > 2 ** 31) {
      throw new Error(`proceduralShapes: ${name} ${count} at ${size}x${size} needs more than 2^31 values (8 GiB)`);
    }
  }
  const rng = new SeededRng(seed);
  const train = generateSplit(rng, trainCount, size);
  const test = generateSplit(new SeededRng(seed ^ 0x5bd1e995), testCount, size);
  return {
    name: 'pact-shapes',
    height: size,
    width: size,
    channels: 3,
    numClasses: SHAPE_CLASSES.length,
    classNames: [...SHAPE_CLASSES],
    flipAugment: false,
    train,
    test,
  };
}
