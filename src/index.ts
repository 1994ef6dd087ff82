/**
 * tfjs-pact: Probabilistic Adaptive Computation Time for TensorFlow.js.
 * Importing the package registers the `pact-cpu` backend (when the native addon loads) and exports the ops.
 */
import { registerPactCpu } from './backends/pact_cpu/register';
import { registerPactCuda } from './backends/pact_cuda/register';

export { PACT_CPU, PactCpuBackend } from './backends/pact_cpu/backend';
export { registerPactCpu } from './backends/pact_cpu/register';
export type { PactCpuStatus } from './backends/pact_cpu/register';
export { PACT_CUDA, PactCudaBackend } from './backends/pact_cuda/backend';
export { pactCudaStatus, registerPactCuda } from './backends/pact_cuda/register';
export type { PactCudaStatus } from './backends/pact_cuda/register';
export { nativeAddon, nativeLoadError } from './native/binding';
export type { BuildInfo, CudaStatus } from './native/binding';
export { batchNormTrain, batchNormReluTrain, batchNormTrainComposite } from './ops/batch_norm_train';
export type { BatchNormTrainResult } from './ops/batch_norm_train';
export { maskedConv2d, maskedConv2dComposite, binaryMask } from './ops/masked_conv2d';
export type { MaskedConvPad } from './ops/masked_conv2d';
export { dilateMask } from './ops/dilate_mask';
export { maskedResidualUnit, maskedResidualUnitWithStats } from './ops/masked_residual_unit';
export type {
  MaskedResidualUnitParams,
  MaskedResidualUnitOptions,
  MaskedResidualUnitResult,
  MaskedBatchNormParams,
  BatchStats,
} from './ops/masked_residual_unit';
export { PreActResNet, cifarResNet } from './models/resnet';
export type { ResNetConfig, ResidualUnitParams, BatchNormParams, UnitBranches } from './models/resnet';
export { SgdTrainer, softmaxCrossEntropy } from './train/step';
export type { SgdConfig, Classifier, StepStats } from './train/step';
export { FusedMomentumOptimizer } from './train/optimizers';
export { sgdMomentumStep, sgdMomentumComposite, PACT_SGD_MOMENTUM } from './ops/sgd_momentum';
export type { SgdMomentumAttrs } from './ops/sgd_momentum';
export { relaxedBernoulli } from './ops/relaxed_bernoulli';
export { haltingDistribution, haltingLogProb } from './ops/halting_distribution';
export type { HaltingDistribution, HaltingDistributionOptions } from './ops/halting_distribution';
export { actHalting } from './ops/act_halting';
export type { ActHalting } from './ops/act_halting';
export { truncatedGeometricLogProb, expectedLogPrior } from './ops/priors';
export { haltingStep, haltingStepComposite, initialHaltingState, PACT_HALTING_STEP } from './ops/halting_step';
export type { HaltingState, HaltingStepOptions, HaltingStepResult } from './ops/halting_step';
export type { HaltingMode } from './ops/halting_util';
export { uniformNoise, PACT_UNIFORM_NOISE } from './ops/halting_util';
export { adaptiveBlock } from './ops/adaptive_block';
export type { AdaptiveBlockOptions, AdaptiveBlockResult, AdaptiveMode, HaltFn, IterateFn } from './ops/adaptive_block';
export { relaxedLoss, actLoss, ReinforceBaseline } from './ops/objectives';
export type { PonderTerm } from './ops/objectives';
export { AdaptiveResNet, ADAPTIVE_MODES, GROUP_SIZES, disposeForward } from './models/psact';
export type {
  AdaptiveResNetConfig,
  AdaptiveForwardOptions,
  AdaptiveForwardResult,
  StageOutput,
  HaltingUnitParams,
  GroupSize,
} from './models/psact';
export {
  adaptiveResNetFlops,
  convFlops,
  denseResNetFlops,
  forwardFlops,
  geometryOf,
  stageActivity,
} from './models/flops';
export type { FlopsRule, ForwardFlops, ResNetGeometry, StageActivity } from './models/flops';
export { AdaptiveTask, buildAdaptiveTask, parseAdaptiveModel, logLikelihood } from './train/adaptive_task';
export type { AdaptiveRunOptions, AdaptiveTaskOptions, AdaptiveTrainMode } from './train/adaptive_task';
export { AdaptiveLstm } from './models/adaptive_lstm';
export type { AdaptiveLstmConfig, AdaptiveLstmOutput, AdaptiveLstmRunOptions } from './models/adaptive_lstm';
export { AdditionGenerator, ParityGenerator, sequenceBatchAt, sequenceGenerator } from './data/sequence_tasks';
export type { SequenceBatch, SequenceGenerator, SequenceTaskName } from './data/sequence_tasks';
export { SequenceTask, sequenceLogLikelihood } from './train/sequence_task';
export type { SequenceEvaluation, SequenceTaskOptions, SequenceTraining } from './train/sequence_task';

export const pactCpuStatus = registerPactCpu();
// pact-cuda when a GPU is usable (and pact.node was built with CUDA); opt in with tf.setBackend(PACT_CUDA).
registerPactCuda();
