/**
 * Where the automatic choice of native/cpu/masked_conv2d.cc should switch from the sparse path to oneDNN's dense
 * one: each native kernel forced sparse (s) or dense (d) at pixel-random active fractions 0.5-1, the dense
 * backprops with a random dy (masked copy) and with dy already 0 outside the mask ("van": read as it is). Minimum of
 * REPS (default 7) alternating runs, wall ms. denseFractions in native/cpu/masked_conv2d.cc comes from this.
 *
 *   npx tsx bench/masked_crossover.ts [B,H,W,C]      (default 128,32,32,16; DENS=0.2,0.3 other active fractions;
 *                                                     MASK=block4 4x4-block masks instead of pixel-random ones)
 */
import { nativeAddon } from '../src';

const A = nativeAddon()!;
const [B, H, W, C] = (process.argv[2] ?? '128,32,32,16').split(',').map(Number);
const dens = (process.env.DENS ?? '0.5,0.6,0.7,0.8,0.9,1').split(',').map(Number);
const reps = Number(process.env.REPS ?? 7);
const blocks = process.env.MASK === 'block4';
const rnd = (n: number) => Float32Array.from({ length: n }, () => Math.random() * 2 - 1);
const x = rnd(B * H * W * C),
  f = rnd(9 * C * C),
  dyRaw = rnd(B * H * W * C);
const y = new Float32Array(B * H * W * C),
  dx = new Float32Array(B * H * W * C),
  df = new Float32Array(9 * C * C);
const xs = [B, H, W, C],
  fs = [3, 3, C, C],
  st = [1, 1],
  pads = [1, 1, 1, 1];
const rows: string[] = [];
for (const d of dens) {
  const m = new Float32Array(B * H * W);
  if (blocks) {
    for (let b = 0; b < B; ++b)
      for (let by = 0; by < H; by += 4)
        for (let bx = 0; bx < W; bx += 4) {
          if (Math.random() >= d) continue;
          for (let y = by; y < Math.min(by + 4, H); ++y)
            m.fill(1, (b * H + y) * W + bx, (b * H + y) * W + Math.min(bx + 4, W));
        }
  } else {
    for (let i = 0; i < m.length; ++i) m[i] = Math.random() < d ? 1 : 0;
  }
  const dyV = dyRaw.slice();
  for (let i = 0; i < m.length; ++i) if (!(m[i] > 0)) dyV.fill(0, i * C, (i + 1) * C);
  const fns: Record<string, () => void> = {
    'fwd s': () => A.maskedConv2d(xs, fs, st, pads, x, f, m, y, 1),
    'fwd d': () => A.maskedConv2d(xs, fs, st, pads, x, f, m, y, 2),
    'bi s': () => A.maskedConv2dBackpropInput(xs, fs, st, pads, dyRaw, f, m, dx, 1),
    'bi d': () => A.maskedConv2dBackpropInput(xs, fs, st, pads, dyRaw, f, m, dx, 2),
    'bi d van': () => A.maskedConv2dBackpropInput(xs, fs, st, pads, dyV, f, m, dx, 2),
    'bf s': () => A.maskedConv2dBackpropFilter(xs, fs, st, pads, x, dyRaw, m, df, 1),
    'bf d': () => A.maskedConv2dBackpropFilter(xs, fs, st, pads, x, dyRaw, m, df, 2),
    'bf d van': () => A.maskedConv2dBackpropFilter(xs, fs, st, pads, x, dyV, m, df, 2),
  };
  const best: Record<string, number> = {};
  for (let r = 0; r < reps; ++r)
    for (const [n, fn] of Object.entries(fns)) {
      const t = performance.now();
      fn();
      const e = performance.now() - t;
      if (r > 0) best[n] = Math.min(best[n] ?? 1e9, e);
    }
  rows.push(
    `d=${d} ` +
      Object.entries(best)
        .map(([k, v]) => `${k} ${v.toFixed(2)}`)
        .join(' | '),
  );
}
console.log(`${B}x${H}x${W}x${C}${blocks ? ' block4' : ''}`);
rows.forEach((r) => console.log(r));
