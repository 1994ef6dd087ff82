/**
 * The addon's own argument checks on calls that TypeScript would never make: shapes whose element count overflows
 * (each dimension valid, their product not: such a call used to pass the length checks with empty arrays, the
 * product having wrapped to 0, and then crash or read out of bounds in the kernel) and outputs that overlap an
 * input or another output (views of one ArrayBuffer: the kernels gave wrong results silently). Each must throw an
 * Error that names the function and the argument, before any kernel runs.
 */
import { strict as assert } from 'assert';

import { nativeAddon } from '../../src';
import { requirePactCpu } from '../helpers/backends';

type AnyFn = (...args: unknown[]) => unknown;

// Each call must throw an Error whose text matches its pattern (the message is shown when it does not).
function expectErrors(cases: Array<[string, () => unknown, RegExp]>): void {
  for (const [name, call, expected] of cases) {
    let error: unknown = null;
    try {
      call();
    } catch (e) {
      error = e;
    }
    assert.ok(error instanceof Error, `${name}: no Error thrown`);
    assert.match(String(error), expected, name);
  }
}

describe('addon argument checks: overflowing sizes and overlapping buffers', () => {
  let n: Record<string, AnyFn>;
  const F = (length: number): Float32Array => new Float32Array(length);

  before(() => {
    requirePactCpu();
    n = nativeAddon() as unknown as Record<string, AnyFn>;
  });

  it('rejects shapes whose element count overflows, naming the argument', () => {
    const geometry = [2 ** 30, 2 ** 30, 16, 1, 2 ** 30, 16, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0];
    const cases: Array<[string, () => unknown, RegExp]> = [
      [
        'batchNormInference',
        () => n.batchNormInference(F(0), 2 ** 40, 2 ** 24, F(1), F(1), null, null, 1e-3, F(0)),
        /^Error: batchNormInference: x is too large/,
      ],
      [
        'batchNormTrain',
        () => n.batchNormTrain(F(0), F(1), F(1), 2 ** 40, 2 ** 24, 1e-3, false, F(0), F(1), F(1)),
        /^Error: batchNormTrain: x is too large/,
      ],
      [
        'reduce',
        () => n.reduce('sum', F(0), [2 ** 32, 2, 2 ** 31], [0, 2], F(2)),
        /^Error: reduce: shape is too large/,
      ],
      [
        'reduce, a zero dimension beside two huge ones',
        () => n.reduce('sum', F(0), [0, 2 ** 39, 2 ** 39], [0], F(0)),
        /^Error: reduce: shape is too large/,
      ],
      ['argMax', () => n.argMax(F(0), [2 ** 25, 2 ** 39], 1, new Int32Array(1)), /^Error: argMax: shape is too large/],
      [
        'binaryOp',
        () => n.binaryOp('add', F(2), [239075442, 1, 77158673929], F(3), [1, 3, 1], F(6)),
        /^Error: binaryOp: aShape is too large/,
      ],
      [
        'binaryOp, broadcast to an overflowing shape',
        () => n.binaryOp('add', F(0), [2 ** 39, 1, 0], F(0), [1, 2 ** 39, 0], F(0)),
        /^Error: binaryOp: outShape is too large/,
      ],
      [
        'haltingStep',
        () => n.haltingStep(F(1), F(1), F(1), F(1), F(1), null, null, 2 ** 40, 2 ** 24, 0, 1, false, 1, 0),
        /^Error: haltingStep: u is too large/,
      ],
    ];
    // The dense convolutions and matmul exist only in a build with oneDNN (PACT_ADDON may name one without).
    if (nativeAddon()!.buildInfo().dnnl) {
      expectErrors([
        [
          'conv2dForward',
          () => n.conv2dForward(geometry, F(0), F(1), null, F(0), 'linear', 0),
          /^Error: conv2dForward: geometry: x, y and the filter must each have at most 2\^48 elements/,
        ],
        [
          'conv2dBackpropFilter',
          () => n.conv2dBackpropFilter(geometry, F(0), F(0), F(1)),
          /^Error: conv2dBackpropFilter: geometry: x, y and the filter must each have at most 2\^48 elements/,
        ],
        [
          'batchMatMul',
          () => n.batchMatMul([2 ** 39, 2 ** 39, 0], F(0), [0, 4], F(0), false, false, null, F(0), 'linear', 0),
          /^Error: batchMatMul: aShape is too large/,
        ],
      ]);
    }
    expectErrors(cases);
  });

  it('rejects outputs that overlap an input or another output, naming both', () => {
    const buffer = (values: number[], extra: number): Float32Array => {
      const b = F(values.length + extra);
      b.set(values);
      return b;
    };
    const b5 = buffer([1, 2, 3, 4, 5], 0);
    const shared = F(16);
    const cases: Array<[string, () => unknown, RegExp]> = [
      [
        'haltingStep, an output over an input',
        () =>
          n.haltingStep(
            b5.subarray(0, 4),
            F(4).fill(1),
            F(4),
            F(4).fill(-10),
            null,
            null,
            null,
            4,
            1,
            2,
            2,
            false,
            1,
            0,
            b5.subarray(1, 5),
            F(4),
            F(4),
            F(4),
            null,
          ),
        /^Error: haltingStep: sXiOut must not overlap sXi/,
      ],
      [
        'haltingStep, outputs over each other',
        () =>
          n.haltingStep(
            F(4),
            F(4),
            F(4),
            F(4),
            null,
            null,
            null,
            4,
            1,
            2,
            2,
            false,
            1,
            0,
            shared.subarray(0, 4),
            shared.subarray(0, 4),
            F(4),
            F(4),
            null,
          ),
        /^Error: haltingStep: sHOut must not overlap sXiOut/,
      ],
      [
        'haltingStep, the accumulator over u',
        () =>
          n.haltingStep(
            F(2),
            F(2),
            F(2),
            F(2),
            null,
            F(4),
            shared.subarray(0, 4),
            2,
            2,
            2,
            2,
            false,
            1,
            0,
            F(2),
            F(2),
            F(2),
            F(2),
            shared.subarray(2, 6),
          ),
        /^Error: haltingStep: outputOut must not overlap u/,
      ],
      [
        'haltingStepGrad',
        () =>
          n.haltingStepGrad(
            F(4),
            F(4),
            F(4),
            null,
            null,
            shared.subarray(0, 4),
            F(4),
            F(4),
            F(4),
            null,
            4,
            1,
            2,
            2,
            false,
            1,
            0,
            shared.subarray(3, 7),
            F(4),
            F(4),
            F(4),
            null,
          ),
        /^Error: haltingStepGrad: gHaltLogits must not overlap gSXi/,
      ],
      [
        'batchNormTrain, the mean over scale',
        () => {
          const scale = F(2).fill(1);
          return n.batchNormTrain(F(4), scale, F(2), 2, 2, 1e-3, false, F(4), scale, F(2));
        },
        /^Error: batchNormTrain: mean must not overlap scale/,
      ],
      [
        'batchNormTrainGrad',
        () =>
          n.batchNormTrainGrad(
            shared.subarray(0, 4),
            F(2),
            F(2),
            F(4),
            F(2),
            F(2),
            F(2),
            null,
            2,
            2,
            1e-3,
            false,
            shared.subarray(2, 6),
            F(2),
            F(2),
          ),
        /^Error: batchNormTrainGrad: dx must not overlap dy/,
      ],
      [
        'batchNormInference',
        () => n.batchNormInference(shared.subarray(0, 6), 6, 1, F(1), F(1), null, null, 0, shared.subarray(1, 7)),
        /^Error: batchNormInference: y must not overlap x/,
      ],
      [
        'batchNormInference, y over a parameter',
        () => n.batchNormInference(F(6), 6, 1, shared.subarray(0, 1), F(1), null, null, 0, shared.subarray(0, 6)),
        /^Error: batchNormInference: y must not overlap mean/,
      ],
      [
        'dilateMask',
        () => n.dilateMask([2, 2, 2], shared.subarray(0, 8), 1, shared.subarray(4, 12)),
        /^Error: dilateMask: out must not overlap mask/,
      ],
      [
        'zeroActiveRows',
        () => n.zeroActiveRows(new Int32Array(shared.buffer, 0, 1), 2, shared.subarray(0, 8)),
        /^Error: zeroActiveRows: data must not overlap bits/,
      ],
      [
        'packActive',
        () => n.packActive(shared.subarray(0, 8), new Int32Array(shared.buffer, 4, 1)),
        /^Error: packActive: bits must not overlap mask/,
      ],
      [
        'binaryOp',
        () => n.binaryOp('add', shared.subarray(0, 3), [3], F(2), [2, 1], shared.subarray(0, 6)),
        /^Error: binaryOp: out must not overlap a/,
      ],
      [
        'unaryOp',
        () => n.unaryOp('neg', shared.subarray(0, 4), shared.subarray(1, 5), 0, 0),
        /^Error: unaryOp: out must not overlap x/,
      ],
      [
        'addN',
        () => n.addN([F(4), shared.subarray(1, 5)], shared.subarray(0, 4)),
        /^Error: addN: out must not overlap inputs\[1\]/,
      ],
      [
        'reduce',
        () => n.reduce('sum', shared.subarray(0, 8), [2, 4], [1], shared.subarray(7, 9)),
        /^Error: reduce: out must not overlap x/,
      ],
      [
        'argMax, an Int32Array over the Float32Array x',
        () => n.argMax(shared.subarray(0, 8), [2, 4], 1, new Int32Array(shared.buffer, 4, 2)),
        /^Error: argMax: out must not overlap x/,
      ],
    ];
    expectErrors(cases);
    // The same calls on disjoint buffers run (the checks reject only overlaps).
    const y = F(4);
    n.unaryOp('neg', Float32Array.from([1, 2, 3, 4]), y, 0, 0);
    assert.deepEqual(Array.from(y), [-1, -2, -3, -4]);
    const out = F(6);
    n.binaryOp('add', Float32Array.from([1, 2, 3]), [3], Float32Array.from([10, 20]), [2, 1], out);
    assert.deepEqual(Array.from(out), [11, 12, 13, 21, 22, 23]);
  });
});
