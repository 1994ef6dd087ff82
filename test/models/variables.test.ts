/**
 * Every model's parameters own their buffers alone (src/models/variables.ts): constructing a model adds exactly one
 * tensor per variable, assigning every variable a new value leaves tf.memory() as it was, and disposing the model
 * returns it to where it started. tf.variable(tf.zeros(...)) kept the initial tensor registered, and after the first
 * assign (a batch norm's moving statistics in a unit that a PSACT step reaches only later) its buffer too.
 */
import { strict as assert } from 'assert';

import * as tf from '@tensorflow/tfjs';

import { AdaptiveLstm } from '../../src/models/adaptive_lstm';
import { AdaptiveResNet } from '../../src/models/psact';
import { PreActResNet } from '../../src/models/resnet';
import { requirePactCpu } from '../helpers/backends';
import { freshRng } from '../helpers/random';

describe('model variables own their buffers', () => {
  before(requirePactCpu);
  const rng = freshRng();
  const seed = rng.int(1, 1000);
  const cases: Array<[string, () => { variables: tf.Variable[]; dispose: () => void }]> = [
    [
      'PreActResNet',
      () => {
        const m = new PreActResNet({ unitsPerStage: 2, numClasses: 3, widths: [4, 4, 8], seed });
        return { variables: m.allVariables(), dispose: () => m.dispose() };
      },
    ],
    [
      'AdaptiveResNet (PSACT)',
      () => {
        const m = new AdaptiveResNet({ unitsPerStage: 3, numClasses: 3, widths: [4, 4, 8], seed });
        return { variables: m.allVariables(), dispose: () => m.dispose() };
      },
    ],
    [
      'AdaptiveLstm',
      () => {
        const m = new AdaptiveLstm({ inputSize: 3, hiddenSize: 4, outputSize: 2, maxIterations: 3, seed });
        return { variables: m.variables(), dispose: () => m.dispose() };
      },
    ],
  ];
  for (const [name, build] of cases) {
    it(`${name}: one tensor per variable, flat memory across assign, none left after dispose (seed ${seed})`, () => {
      const start = tf.memory();
      const model = build();
      const built = tf.memory();
      const constants = name === 'AdaptiveLstm' ? 4 : 0; // its four block-identity matrices
      assert.equal(built.numTensors - start.numTensors, model.variables.length + constants, 'tensors made');
      for (const v of model.variables) tf.tidy(() => v.assign(tf.add(v, 1)));
      const assigned = tf.memory();
      assert.equal(assigned.numTensors, built.numTensors, 'tensors after assign');
      assert.equal(assigned.numBytes, built.numBytes, 'bytes after assign');
      model.dispose();
      assert.equal(tf.memory().numTensors, start.numTensors, 'tensors after dispose');
      assert.equal(tf.memory().numBytes, start.numBytes, 'bytes after dispose');
    });
  }
});
