/**
 * The CUDA halting step (native/cuda/halting_step.cu) against a float64 reference of its math
 * (native/cpu/halting_step.h, Algorithm 3 lines 7-15 with eq. 27's mask), on the same noise, at small odd shapes
 * whose last block is partial, in every mode, with and without the output accumulator, forward and backward.
 * Every CUDA implementation at hand runs the same cases: the simulated device (pact_sim.node) and, where a GPU
 * is present, pact.node's real one. The float64 backward is itself checked against central differences of the
 * float64 forward, so the comparison cannot pass on a wrong reference.
 */
import { strict as assert } from 'assert';

import { CudaOpsAddon, nativeAddon, simAddon, simAddonPath } from '../../src/native/binding';
import { expectClose } from '../helpers/compare';
import { freshRng, Rng } from '../helpers/random';
import { simBuild } from './sim_build';

const RELAXED = 0;
const DISCRETE = 1;
const THRESHOLDED = 2;
const MODES = [RELAXED, DISCRETE, THRESHOLDED];
const TOL = { atol: 2e-6, rtol: 2e-5 };

interface Config {
  mode: number;
  iteration: number;
  last: boolean;
  temperature: number;
  delta: number;
}

interface Inputs {
  positions: number;
  channels: number;
  accumulate: boolean;
  sXi: Float32Array;
  sH: Float32Array;
  n: Float32Array;
  haltLogits: Float32Array;
  noise: Float32Array;
  output: Float32Array;
  u: Float32Array;
  gSXi: Float32Array;
  gSH: Float32Array;
  gN: Float32Array;
  gActive: Float32Array;
  gOutput: Float32Array;
}

const sigmoid = (v: number): number => 1 / (1 + Math.exp(-v));
const logit = (e: number): number => Math.log(e) - Math.log1p(-e);

interface Draw {
  xi: number;
  xic: number;
  h: number;
  hc: number;
  dXiDx: number;
}

function draw(cfg: Config, x: number, eps: number): Draw {
  if (cfg.last) return { xi: 1, xic: 0, h: 1, hc: 0, dXiDx: 0 };
  const h = sigmoid(x);
  const hc = sigmoid(-x);
  if (cfg.mode === RELAXED) {
    const scaled = (x + logit(eps)) / cfg.temperature;
    const xi = sigmoid(scaled);
    const xic = sigmoid(-scaled);
    return { xi, xic, h, hc, dXiDx: (xi * xic) / cfg.temperature };
  }
  const xi = (cfg.mode === DISCRETE ? x + logit(eps) : x) > 0 ? 1 : 0;
  return { xi, xic: 1 - xi, h, hc, dXiDx: 0 };
}

interface Forward {
  sXi: number[];
  sH: number[];
  n: number[];
  active: number[];
  output: number[];
}

type StepArrays = Record<'sXi' | 'sH' | 'n' | 'haltLogits' | 'noise' | 'output' | 'u', ArrayLike<number>>;

/** The step in float64 (any arrays of numbers, so the finite differences can perturb them). */
function forward64(cfg: Config, a: StepArrays, positions: number, channels: number, accumulate: boolean): Forward {
  const out: Forward = { sXi: [], sH: [], n: [], active: [], output: [] };
  for (let p = 0; p < positions; ++p) {
    const d = draw(cfg, a.haltLogits[p], a.noise[p]);
    const rest = a.sXi[p] * d.xic;
    out.sXi.push(rest);
    out.sH.push(a.sH[p] * d.hc);
    out.n.push(a.n[p] + cfg.iteration * a.sH[p] * d.h);
    out.active.push(rest > cfg.delta ? rest : 0);
    if (accumulate) {
      for (let c = 0; c < channels; ++c)
        out.output.push(a.output[p * channels + c] + a.sXi[p] * d.xi * a.u[p * channels + c]);
    }
  }
  return out;
}

interface Backward {
  gHaltLogits: number[];
  gNoise: number[];
  gSXi: number[];
  gSH: number[];
  gU: number[];
}

function backward64(cfg: Config, a: Inputs): Backward {
  const out: Backward = { gHaltLogits: [], gNoise: [], gSXi: [], gSH: [], gU: [] };
  const c = a.channels;
  for (let p = 0; p < a.positions; ++p) {
    let gz = 0;
    if (a.accumulate) for (let k = 0; k < c; ++k) gz += a.gOutput[p * c + k] * a.u[p * c + k];
    const eps = a.noise[p];
    const d = draw(cfg, a.haltLogits[p], eps);
    const rest = a.sXi[p] * d.xic;
    const gRest = a.gSXi[p] + (rest > cfg.delta ? a.gActive[p] : 0);
    const l = cfg.iteration;
    const gXiDx = a.sXi[p] * (gz - gRest) * d.dXiDx;
    const gH = a.sH[p] * (l * a.gN[p] - a.gSH[p]);
    out.gHaltLogits.push(gXiDx + gH * d.h * d.hc);
    out.gNoise.push(gXiDx === 0 ? 0 : gXiDx / (eps * (1 - eps)));
    out.gSXi.push(gz * d.xi + gRest * d.xic);
    out.gSH.push(a.gSH[p] * d.hc + a.gN[p] * l * d.h);
    if (a.accumulate) for (let k = 0; k < c; ++k) out.gU.push(a.gOutput[p * c + k] * a.sXi[p] * d.xi);
  }
  return out;
}

/** Inputs away from the steps of ξ and of the mask, where float32 and float64 could take different branches. */
function makeInputs(rng: Rng, positions: number, channels: number, accumulate: boolean, cfg: Config): Inputs {
  const pc = positions * channels;
  const sXi = rng.uniform(positions, 0.05, 1);
  const haltLogits = rng.uniform(positions, -3, 3);
  const noise = rng.uniform(positions, 0.02, 0.98);
  for (let p = 0; p < positions; ++p) {
    const d = draw(cfg, haltLogits[p], noise[p]);
    while (
      Math.abs(haltLogits[p]) < 1e-3 ||
      Math.abs(haltLogits[p] + logit(noise[p])) < 1e-3 ||
      Math.abs(sXi[p] * d.xic - cfg.delta) < 1e-3
    ) {
      haltLogits[p] = rng.uniform(1, -3, 3)[0];
      sXi[p] = rng.uniform(1, 0.05, 1)[0];
      Object.assign(d, draw(cfg, haltLogits[p], noise[p]));
    }
  }
  return {
    positions,
    channels,
    accumulate,
    sXi,
    haltLogits,
    noise,
    sH: rng.uniform(positions, 0.05, 1),
    n: rng.uniform(positions, 0, 3),
    output: rng.uniform(pc),
    u: rng.normal(pc),
    gSXi: rng.normal(positions),
    gSH: rng.normal(positions),
    gN: rng.normal(positions),
    gActive: rng.normal(positions),
    gOutput: rng.normal(pc),
  };
}

function runForward(addon: HaltingStepOps, cfg: Config, a: Inputs): Forward {
  const P = a.positions;
  const o = { sXi: new Float32Array(P), sH: new Float32Array(P), n: new Float32Array(P), active: new Float32Array(P) };
  const outputOut = a.accumulate ? new Float32Array(P * a.channels) : null;
  addon.cudaHaltingStep(
    a.sXi,
    a.sH,
    a.n,
    cfg.last ? null : a.haltLogits,
    a.noise,
    a.accumulate ? a.output : null,
    a.accumulate ? a.u : null,
    P,
    a.channels,
    cfg.mode,
    cfg.iteration,
    cfg.last,
    cfg.temperature,
    cfg.delta,
    o.sXi,
    o.sH,
    o.n,
    o.active,
    outputOut,
  );
  return {
    sXi: [...o.sXi],
    sH: [...o.sH],
    n: [...o.n],
    active: [...o.active],
    output: outputOut ? [...outputOut] : [],
  };
}

function runBackward(addon: HaltingStepOps, cfg: Config, a: Inputs): Backward {
  const P = a.positions;
  const g = { x: new Float32Array(P), noise: new Float32Array(P), sXi: new Float32Array(P), sH: new Float32Array(P) };
  const gU = a.accumulate ? new Float32Array(P * a.channels) : null;
  addon.cudaHaltingStepGrad(
    a.sXi,
    a.sH,
    a.haltLogits,
    a.noise,
    a.accumulate ? a.u : null,
    a.gSXi,
    a.gSH,
    a.gN,
    a.gActive,
    a.accumulate ? a.gOutput : null,
    P,
    a.channels,
    cfg.mode,
    cfg.iteration,
    cfg.last,
    cfg.temperature,
    cfg.delta,
    g.x,
    g.noise,
    g.sXi,
    g.sH,
    gU,
  );
  return { gHaltLogits: [...g.x], gNoise: [...g.noise], gSXi: [...g.sXi], gSH: [...g.sH], gU: gU ? [...gU] : [] };
}

type HaltingStepOps = Pick<CudaOpsAddon, 'cudaHaltingStep' | 'cudaHaltingStepGrad'>;

interface Implementation {
  name: string;
  addon: HaltingStepOps;
}

/**
 * Every implementation available here: the simulated device; then, outside the sanitizer runs (pact.node's
 * OpenMP code is not instrumented), a real GPU when pact.node finds one, and pact.node's C++ kernel, which shares
 * the per-position math with the CUDA one. The C++ kernel alone does not make the suite run.
 */
function implementations(): Implementation[] {
  const list: Implementation[] = [];
  if (simBuild() !== null || process.env.PACT_SIM_ADDON !== undefined) {
    const sim = simAddon();
    if (sim === null) throw new Error(`cannot load ${simAddonPath()}`);
    list.push({ name: 'simulated CUDA', addon: sim });
  }
  const native = process.env.LD_PRELOAD === undefined ? nativeAddon() : null;
  if (native !== null && native.buildInfo().cuda.available) list.push({ name: 'CUDA', addon: native });
  if (list.length > 0 && native !== null && typeof native.haltingStep === 'function') {
    list.push({
      name: 'C++ (pact.node)',
      addon: {
        cudaHaltingStep: native.haltingStep.bind(native),
        cudaHaltingStepGrad: native.haltingStepGrad.bind(native),
      },
    });
  }
  return list;
}

// (positions, channels): partial last blocks of 256 threads, one position, one channel, an exact block.
const SHAPES: [number, number][] = [
  [301, 3],
  [1, 5],
  [77, 1],
  [256, 2],
];

describe('CUDA halting step vs float64 reference', function () {
  const impls = implementations();
  before(function () {
    if (impls.length === 0) this.skip();
  });

  it('has a float64 backward that matches central differences of the float64 forward', () => {
    const rng = freshRng();
    const cfg: Config = { mode: RELAXED, iteration: 2, last: false, temperature: 0.7, delta: 0.01 };
    const a = makeInputs(rng, 5, 3, true, cfg);
    const analytic = backward64(cfg, a);
    const base: Record<string, number[]> = {};
    for (const k of ['sXi', 'sH', 'n', 'haltLogits', 'noise', 'output', 'u'] as const) base[k] = [...a[k]];
    const loss = (v: Record<string, number[]>): number => {
      const f = forward64(cfg, v as unknown as StepArrays, a.positions, a.channels, true);
      let s = 0;
      for (let p = 0; p < a.positions; ++p) {
        s += a.gSXi[p] * f.sXi[p] + a.gSH[p] * f.sH[p] + a.gN[p] * f.n[p] + a.gActive[p] * f.active[p];
      }
      f.output.forEach((o, i) => (s += a.gOutput[i] * o));
      return s;
    };
    const numeric = (k: string, i: number): number => {
      const h = 1e-6;
      const plus = { ...base, [k]: base[k].map((v, j) => (j === i ? v + h : v)) };
      const minus = { ...base, [k]: base[k].map((v, j) => (j === i ? v - h : v)) };
      return (loss(plus) - loss(minus)) / (2 * h);
    };
    const pairs: [string, number[]][] = [
      ['haltLogits', analytic.gHaltLogits],
      ['noise', analytic.gNoise],
      ['sXi', analytic.gSXi],
      ['sH', analytic.gSH],
      ['u', analytic.gU],
    ];
    for (const [k, g] of pairs) {
      expectClose(
        g,
        g.map((_, i) => numeric(k, i)),
        { atol: 1e-6, rtol: 1e-5 },
        `d/d${k} seed ${rng.seed}`,
      );
    }
  });

  for (const mode of MODES) {
    for (const last of [false, true]) {
      for (const accumulate of [true, false]) {
        const what = `mode ${mode}${last ? ', last iteration' : ''}${accumulate ? ', accumulator' : ''}`;
        it(`matches forward and backward: ${what}`, () => {
          for (const impl of impls) {
            for (const [positions, channels] of SHAPES) {
              const rng = freshRng();
              const cfg: Config = { mode, iteration: 3, last, temperature: 0.6, delta: 0.05 };
              const a = makeInputs(rng, positions, channels, accumulate, cfg);
              const label = `${impl.name} ${what} [${positions}, ${channels}] seed ${rng.seed}`;
              const want = forward64(cfg, a, positions, channels, accumulate);
              const got = runForward(impl.addon, cfg, a);
              for (const k of ['sXi', 'sH', 'n', 'active', 'output'] as const) {
                expectClose(got[k], want[k], TOL, `${label} ${k}`);
              }
              const wantGrad = backward64(cfg, a);
              const gotGrad = runBackward(impl.addon, cfg, a);
              for (const k of ['gHaltLogits', 'gNoise', 'gSXi', 'gSH', 'gU'] as const) {
                expectClose(gotGrad[k], wantGrad[k], { atol: 1e-5, rtol: 1e-4 }, `${label} ${k}`);
              }
            }
          }
        });
      }
    }
  }

  it('rejects bad arguments with errors naming them, before touching the device', () => {
    const { addon } = impls[0];
    const f = (n: number): Float32Array => new Float32Array(n);
    const call = (over: Partial<Record<string, unknown>>): void => {
      const v: Record<string, unknown> = {
        sXi: f(4),
        sH: f(4),
        n: f(4),
        x: f(4),
        noise: f(4),
        output: null,
        u: null,
        positions: 4,
        channels: 2,
        mode: RELAXED,
        iteration: 1,
        last: false,
        temperature: 0.5,
        delta: 0,
        outs: [f(4), f(4), f(4), f(4)],
        outputOut: null,
        ...over,
      };
      const outs = v.outs as Float32Array[];
      (addon.cudaHaltingStep as (...args: unknown[]) => void)(
        v.sXi,
        v.sH,
        v.n,
        v.x,
        v.noise,
        v.output,
        v.u,
        v.positions,
        v.channels,
        v.mode,
        v.iteration,
        v.last,
        v.temperature,
        v.delta,
        ...outs,
        v.outputOut,
      );
    };
    call({});
    assert.throws(() => call({ sH: f(3) }), /cudaHaltingStep: sH must have 4 elements, got 3/);
    assert.throws(
      () => call({ mode: 3 }),
      /cudaHaltingStep: mode \(0 relaxed, 1 discrete, 2 thresholded\) must be an integer in \[0, 2\]/,
    );
    assert.throws(() => call({ noise: null }), /cudaHaltingStep: noise must be a Float32Array/);
    assert.throws(() => call({ temperature: 0 }), /temperature must be a positive finite number/);
    assert.throws(() => call({ output: f(8) }), /cudaHaltingStep: u must be a Float32Array/);
    assert.throws(() => call({ u: f(8) }), /u must be null when output is null/);
    assert.throws(() => call({ outs: [f(4), f(4), f(4), f(5)] }), /activeOut must have 4 elements, got 5/);
    call({ mode: THRESHOLDED, noise: null });
    call({ last: true, x: null, noise: null });
    const grad = addon.cudaHaltingStepGrad as (...args: unknown[]) => void;
    assert.throws(
      () =>
        grad(
          f(4),
          f(4),
          f(4),
          f(4),
          null,
          f(4),
          f(4),
          f(4),
          f(4),
          f(8),
          4,
          2,
          RELAXED,
          1,
          false,
          0.5,
          0,
          f(4),
          f(4),
          f(4),
          f(4),
          null,
        ),
      /gOutput and gU must be null when u is null/,
    );
  });

  it('throws "CUDA unavailable" with the reason when the device has no GPU', function () {
    const sim = impls.find((i) => i.name === 'simulated CUDA');
    if (sim === undefined) this.skip();
    const f = (): Float32Array => new Float32Array(2);
    process.env.PACT_SIM_NO_DEVICE = '1';
    try {
      assert.throws(
        () =>
          sim!.addon.cudaHaltingStep(
            f(),
            f(),
            f(),
            f(),
            f(),
            null,
            null,
            2,
            1,
            RELAXED,
            1,
            false,
            0.5,
            0,
            f(),
            f(),
            f(),
            f(),
            null,
          ),
        /cudaHaltingStep: CUDA unavailable: .*no CUDA-capable device is detected/,
      );
    } finally {
      delete process.env.PACT_SIM_NO_DEVICE;
    }
  });
});

describe('CUDA bindings of pact.node', () => {
  it('throws "CUDA unavailable" from pact.node built with CUDA on a machine without a GPU', function () {
    const native = process.env.LD_PRELOAD === undefined ? nativeAddon() : null;
    const cuda = native?.buildInfo().cuda;
    if (native === null || !cuda?.compiled || cuda.available) this.skip();
    const f = (): Float32Array => new Float32Array(2);
    assert.throws(
      () =>
        native!.cudaHaltingStep(
          f(),
          f(),
          f(),
          f(),
          f(),
          null,
          null,
          2,
          1,
          RELAXED,
          1,
          false,
          0.5,
          0,
          f(),
          f(),
          f(),
          f(),
          null,
        ),
      /cudaHaltingStep: CUDA unavailable: .+/,
    );
  });
});
