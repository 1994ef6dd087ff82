/**
 * The only module that loads the native addon. It declares the signature of every exported native function;
 * kernels reach native code through `nativeAddon()` and nothing else `require`s the `.node` file.
 *
 * The addon is `build/Release/pact.node` (built by `npm ci`), or the file named by `PACT_ADDON` (a sanitizer
 * or no-oneDNN build, for instance).
 */
import * as path from 'path';

export interface CudaStatus {
  compiled: boolean;
  available: boolean;
  deviceCount: number;
  device: string;
  reason: string;
}

export interface BuildInfo {
  dnnl: boolean;
  threads: number;
  cuda: CudaStatus;
  sanitizer: string;
  /** Whether the addon set glibc's allocator to keep large blocks in the heap (PACT_MALLOC_TUNING=0: not). */
  mallocTuning: boolean;
  /** Whether this CPU runs the AVX-512 versions of our own kernels (native/cpu/isa.h). */
  avx512: boolean;
  /** The vector instructions our own kernels use now: 'avx512' where supported unless PACT_CPU_ISA=avx2. */
  isa: 'avx512' | 'avx2';
  /**
   * Whose measurements the masked convolution's AVX-512 kernels access memory by (prefetches, how the forward zeroes
   * its output): 'amd' where PACT_MEMORY_TUNING=amd, else 'intel', on any CPU (native/cpu/isa.h).
   */
  memoryTuning: 'amd' | 'intel';
}

/** Activations that the dense primitives fuse (oneDNN post-ops). */
export type DenseActivation = 'linear' | 'relu' | 'relu6' | 'leakyrelu' | 'elu' | 'sigmoid';

/**
 * Dense primitives on oneDNN (native/binding/dense.cc), present only when `buildInfo().dnnl`. `geometry` is
 * [batch, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels, filterHeight, filterWidth, strideHeight,
 * strideWidth, dilationHeight, dilationWidth, padTop, padLeft, padBottom, padRight]; x/dx/y/dy are NHWC, filters
 * HWIO; outputs are written into the last Float32Array.
 */
export interface DenseAddon {
  conv2dForward?(
    geometry: number[],
    x: Float32Array,
    filter: Float32Array,
    bias: Float32Array | null,
    y: Float32Array,
    activation: DenseActivation,
    leakyreluAlpha: number,
  ): void;
  conv2dBackpropInput?(geometry: number[], dy: Float32Array, filter: Float32Array, dx: Float32Array): void;
  conv2dBackpropFilter?(geometry: number[], x: Float32Array, dy: Float32Array, dfilter: Float32Array): void;
  /**
   * Whether the three above run the masked convolution's kernels with every position active (Winograd F(4x4, 3x3)
   * tiles; the forward's bias and activation then in place) rather than oneDNN's: stride-1 3x3 'same' convolutions from
   * 16 channels with enough images for the threads, unless PACT_CONV_TILES=0 (native/cpu/dense_conv.h).
   */
  conv2dByTiles?(geometry: number[]): boolean;
  batchMatMul?(
    aShape: number[],
    a: Float32Array,
    bShape: number[],
    b: Float32Array,
    transposeA: boolean,
    transposeB: boolean,
    bias: Float32Array | null,
    out: Float32Array,
    activation: DenseActivation,
    leakyreluAlpha: number,
  ): void;
}

/**
 * Elementwise float32 ops (native/binding/elementwise.cc). The caller allocates `out`; shapes are tfjs shapes
 * and are checked again natively (a wrong length or incompatible broadcast throws).
 */
export interface ElementwiseAddon {
  /** op: add, sub, mul, div, maximum, minimum, squaredDifference, pow; out has the broadcast shape's size. */
  binaryOp(op: string, a: Float32Array, aShape: number[], b: Float32Array, bShape: number[], out: Float32Array): void;
  /** op: relu, relu6, neg, square, sqrt, rsqrt, exp, log, sigmoid, tanh, abs, reciprocal, step (p0 = alpha),
   *  leakyRelu (p0 = alpha), elu, clipByValue (p0 = min, p1 = max), softplus. */
  unaryOp(op: string, x: Float32Array, out: Float32Array, p0: number, p1: number): void;
  /** out = inputs[0] + inputs[1] + ..., all of out's length. */
  addN(inputs: Float32Array[], out: Float32Array): void;
}

/** Reductions over an axis list of a contiguous float32 tensor (native/binding/reduce.cc). */
export interface ReduceAddon {
  /** op: sum, mean, max, min, prod; out has the product of the dims not in `axes`. */
  reduce(op: string, x: Float32Array, shape: number[], axes: number[], out: Float32Array): void;
  /** Index of the first maximum along `axis` (tfjs' rule); out has the product of the other dims. */
  argMax(x: Float32Array, shape: number[], axis: number, out: Int32Array): void;
}

/** Batch normalisation (native/binding/norm.cc). The caller allocates every output; `rows` = N*H*W of NHWC. */
export interface NormAddon {
  batchNormTrain(
    x: Float32Array,
    scale: Float32Array,
    offset: Float32Array,
    rows: number,
    channels: number,
    epsilon: number,
    relu: boolean,
    y: Float32Array,
    mean: Float32Array,
    variance: Float32Array,
  ): void;
  batchNormTrainGrad(
    dy: Float32Array,
    dmean: Float32Array,
    dvariance: Float32Array,
    x: Float32Array,
    scale: Float32Array,
    mean: Float32Array,
    variance: Float32Array,
    y: Float32Array | null,
    rows: number,
    channels: number,
    epsilon: number,
    relu: boolean,
    dx: Float32Array,
    dscale: Float32Array,
    doffset: Float32Array,
  ): void;
  batchNormInference(
    x: Float32Array,
    rows: number,
    channels: number,
    mean: Float32Array,
    variance: Float32Array,
    scale: Float32Array | null,
    offset: Float32Array | null,
    epsilon: number,
    y: Float32Array,
  ): void;
}

/**
 * PACT's own kernels (native/binding/pact_ops.cc, native/cpu/halting_step.h): the fused halting step and its
 * gradient. `mode` is 0 relaxed, 1 discrete, 2 thresholded; the caller allocates every output. haltLogits may be
 * null when `last`, noise when `last` or thresholded; output, u and outputOut (u, gOutput and gU) are all null for
 * a block without an output accumulator.
 */
export interface PactOpsAddon {
  /**
   * out <- U(0, 1) draws of the 64-bit seed seedHigh * 2^32 + seedLow (native/cpu/random.h: counter-based, strictly
   * inside (0, 1), the same for any number of threads); each half a whole number in [0, 2^32).
   */
  uniformNoise(seedHigh: number, seedLow: number, out: Float32Array): void;
  haltingStep(
    sXi: Float32Array,
    sH: Float32Array,
    n: Float32Array,
    haltLogits: Float32Array | null,
    noise: Float32Array | null,
    output: Float32Array | null,
    u: Float32Array | null,
    positions: number,
    channels: number,
    mode: number,
    iteration: number,
    last: boolean,
    temperature: number,
    delta: number,
    sXiOut: Float32Array,
    sHOut: Float32Array,
    nOut: Float32Array,
    activeOut: Float32Array,
    outputOut: Float32Array | null,
  ): void;
  haltingStepGrad(
    sXi: Float32Array,
    sH: Float32Array,
    haltLogits: Float32Array | null,
    noise: Float32Array | null,
    u: Float32Array | null,
    gSXi: Float32Array,
    gSH: Float32Array,
    gN: Float32Array,
    gActive: Float32Array,
    gOutput: Float32Array | null,
    positions: number,
    channels: number,
    mode: number,
    iteration: number,
    last: boolean,
    temperature: number,
    delta: number,
    gHaltLogits: Float32Array,
    gNoise: Float32Array,
    gSXiOut: Float32Array,
    gSHOut: Float32Array,
    gU: Float32Array | null,
  ): void;
}

/**
 * Masked (sparse) convolution (native/binding/masked_conv2d.cc). Each takes the geometry (xShape [B,H,W,C],
 * filterShape [kH,kW,C,outC], strides [sH,sW], pads [top,bottom,left,right]), its inputs, the output to fill
 * (NHWC / HWIO, mask [B,outH,outW], active where > 0) and `algo`: 0 automatic, 1 sparse (Winograd F(2x2, 3x3) on
 * fully active 2x2 tiles where they hold most active positions, native/cpu/masked_winograd.h), 2 dense oneDNN +
 * masking (sparse in a build without oneDNN), 3 sparse without Winograd. `outputZeroed` (forward and
 * backprop-input): the caller promises the output array is all zeros (a fresh array), so the sparse path writes the
 * active rows only. The forward returns the number of active positions, the backprop-input that number when its
 * sparse path ran (dx is then exactly 0 outside the active positions' windows) and -1 after the dense one.
 */
export interface MaskedConvAddon {
  maskedConv2d(
    xShape: number[],
    filterShape: number[],
    strides: number[],
    pads: number[],
    x: Float32Array,
    filter: Float32Array,
    mask: Float32Array,
    y: Float32Array,
    algo: number,
    outputZeroed?: boolean,
  ): number;
  maskedConv2dBackpropInput(
    xShape: number[],
    filterShape: number[],
    strides: number[],
    pads: number[],
    dy: Float32Array,
    filter: Float32Array,
    mask: Float32Array,
    dx: Float32Array,
    algo: number,
    outputZeroed?: boolean,
  ): number;
  maskedConv2dBackpropFilter(
    xShape: number[],
    filterShape: number[],
    strides: number[],
    pads: number[],
    x: Float32Array,
    dy: Float32Array,
    mask: Float32Array,
    dfilter: Float32Array,
    algo: number,
  ): void;
  /**
   * out[b,y,x] = 1 where mask > 0 within `radius` (Chebyshev distance) of (y, x), else 0; shape [B,H,W]. Returns
   * the number of ones in out.
   */
  dilateMask(maskShape: number[], mask: Float32Array, radius: number, out: Float32Array): number;
  /**
   * bits [ceil(mask.length / 32)] <- the rows where mask > 0, bit i % 32 of bits[i / 32] for row i (the last
   * element's bits past mask.length clear); returns their count.
   */
  packActive(mask: Float32Array, bits: Int32Array): number;
  /** data [rows, rowLength] set to 0 at the rows whose bit is set in bits (packActive's layout), the others untouched. */
  zeroActiveRows(bits: Int32Array, rowLength: number, data: Float32Array): void;
  /** relu(batch norm) over the rows where mask > 0 (statistics from those rows), 0 elsewhere; x [rows, channels]. */
  maskedBatchNormRelu(
    rows: number,
    channels: number,
    x: Float32Array,
    mask: Float32Array,
    scale: Float32Array,
    offset: Float32Array,
    epsilon: number,
    y: Float32Array,
    mean: Float32Array,
    variance: Float32Array,
  ): void;
  /**
   * One SGD-momentum step (src/ops/sgd_momentum.ts): accumulationOut = accumulation * momentum + gradient,
   * valueOut = value - learningRate * accumulationOut, rounded as tfjs' ops.
   */
  sgdMomentum(
    value: Float32Array,
    accumulation: Float32Array,
    gradient: Float32Array,
    learningRate: number,
    momentum: number,
    valueOut: Float32Array,
    accumulationOut: Float32Array,
  ): void;
  /** y = u + c * a, u and c [rows, channels], a [rows] scaling each row of c (the masked unit's u + f(u)·a). */
  scaledResidualAdd(
    rows: number,
    channels: number,
    u: Float32Array,
    c: Float32Array,
    a: Float32Array,
    y: Float32Array,
  ): void;
  /** Its gradient: dc = dy * a, da[r] = <dy[r], c[r]>. */
  scaledResidualAddGrad(
    rows: number,
    channels: number,
    dy: Float32Array,
    c: Float32Array,
    a: Float32Array,
    dc: Float32Array,
    da: Float32Array,
  ): void;
  /**
   * relu(batch norm) with the given statistics over the rows where mask > 0, 0 elsewhere (evaluation); a null mask
   * makes every row active.
   */
  maskedBatchNormReluInference(
    rows: number,
    channels: number,
    x: Float32Array,
    mask: Float32Array | null,
    scale: Float32Array,
    offset: Float32Array,
    mean: Float32Array,
    variance: Float32Array,
    epsilon: number,
    y: Float32Array,
  ): void;
  maskedBatchNormReluGrad(
    rows: number,
    channels: number,
    dy: Float32Array,
    x: Float32Array,
    mask: Float32Array,
    y: Float32Array,
    scale: Float32Array,
    mean: Float32Array,
    variance: Float32Array,
    epsilon: number,
    dx: Float32Array,
    dscale: Float32Array,
    doffset: Float32Array,
  ): void;
}

/** CUDA kernels run on host arrays (a real GPU, or the simulated device of `pact_sim.node`). */
export interface CudaOpsAddon {
  /**
   * The fused halting step (native/cuda/halting_step.cu; layout and math in native/cpu/halting_step.h) run on the
   * device from host arrays. `mode`: 0 relaxed, 1 discrete, 2 thresholded. haltLogits may be null only when
   * `last`, noise only when it is not read (last or thresholded); output, u and outputOut are all null (no
   * accumulator) or all positions*channels. Present in pact.node when `buildInfo().cuda.compiled` (it throws
   * "CUDA unavailable: <reason>" without a GPU) and in the simulation addon.
   */
  cudaHaltingStep: PactOpsAddon['haltingStep'];
  /**
   * The masked convolution (native/cuda/masked_conv2d.cu; semantics and layouts in native/cpu/masked_conv2d.h)
   * on the device from host arrays, with the arguments of `maskedConv2d` (MaskedConvAddon) less `algo`; a null mask
   * is the dense convolution (every position active).
   */
  cudaMaskedConv2d(
    xShape: number[],
    filterShape: number[],
    strides: number[],
    pads: number[],
    x: Float32Array,
    filter: Float32Array,
    mask: Float32Array | null,
    y: Float32Array,
  ): void;
  cudaMaskedConv2dBackpropInput(
    xShape: number[],
    filterShape: number[],
    strides: number[],
    pads: number[],
    dy: Float32Array,
    filter: Float32Array,
    mask: Float32Array | null,
    dx: Float32Array,
  ): void;
  cudaMaskedConv2dBackpropFilter(
    xShape: number[],
    filterShape: number[],
    strides: number[],
    pads: number[],
    x: Float32Array,
    dy: Float32Array,
    mask: Float32Array | null,
    dfilter: Float32Array,
  ): void;
  /** Gradient of `cudaHaltingStep`; u, gOutput and gU are all null (no accumulator) or all positions*channels. */
  cudaHaltingStepGrad: PactOpsAddon['haltingStepGrad'];
}

/** Device memory statistics of the pact-cuda backend's caching allocator (native/cuda/memory.cuh). */
export interface CudaMemoryInfo {
  /** Requested bytes of live buffers. */
  bytesInUse: number;
  /** Bytes held from cudaMalloc: live blocks and the cache. */
  bytesReserved: number;
  peakBytesInUse: number;
  buffers: number;
  deviceAllocations: number;
}

/**
 * The pact-cuda backend's device buffers and kernels (native/binding/cuda_tensors.cc): buffers are addressed by
 * integer ids; an unknown id, a size that does not match or an op code out of range throws.
 */
export interface CudaTensorAddon {
  cudaBufferCreate(bytes: number): number;
  cudaBufferFree(id: number): void;
  /** Copies `values` (of exactly the buffer's size in bytes) to the device. */
  cudaBufferWrite(id: number, values: Float32Array | Int32Array | Uint8Array): void;
  /** Copies the buffer into `out` (of exactly its size in bytes). */
  cudaBufferRead(id: number, out: Float32Array | Int32Array | Uint8Array): void;
  cudaMemoryInfo(): CudaMemoryInfo;
  cudaEmptyCache(): void;
  /** Waits for every kernel launched so far (cudaDeviceSynchronize); benchmarks time the device with it. */
  cudaSynchronize(): void;
  /** y = op(x) on n float32 values; op codes in native/cuda/elementwise.cuh (UnaryOp). */
  cudaUnary(op: number, x: number, y: number, n: number): void;
  /** out = op(a, b) with NumPy broadcasting; op codes in native/cuda/elementwise.cuh (BinaryOp). */
  cudaBinary(op: number, a: number, aShape: number[], b: number, bShape: number[], out: number): void;
  /** n float32 values of y set to `value`. */
  cudaFill(y: number, value: number, n: number): void;
  /**
   * out[o, i] = op over r of x[o, r, i], x viewed as [outer, reduced, inner]; op 0 sum, 1 mean, 2 max, 3 min;
   * x and out of `type` (0 float32, 1 int32, 2 bool: max is any, min is all).
   */
  cudaReduce(op: number, type: number, x: number, outer: number, reduced: number, inner: number, out: number): void;
  /** out (int32 [outer, inner]) = the first index of the maximum (op 0) or minimum (1) over r of x[o, r, i]. */
  cudaArgReduce(op: number, type: number, x: number, outer: number, reduced: number, inner: number, out: number): void;
  /** out (bool) = op(a, b) with broadcasting, a and b of `type`; op codes in elementwise.cuh (CompareOp). */
  cudaCompare(op: number, type: number, a: number, aShape: number[], b: number, bShape: number[], out: number): void;
  /**
   * dst[dstOffset + Σ c·dstStrides] = src[srcOffset + Σ c·srcStrides] over the coordinates c of `shape` (elements
   * of 1 or 4 bytes; strides and offsets in elements).
   */
  cudaStridedCopy(
    elementBytes: 1 | 4,
    src: number,
    dst: number,
    shape: number[],
    srcStrides: number[],
    srcOffset: number,
    dstStrides: number[],
    dstOffset: number,
  ): void;
  /** out [n, depth] (float32 when asFloat, else int32) = on where indices[i] == j, off elsewhere. */
  cudaOneHot(indices: number, n: number, depth: number, on: number, off: number, asFloat: boolean, out: number): void;
  /**
   * NHWC pooling, op 0 max, 1 average; geometry [batch, inH, inW, channels, outH, outW, filterH, filterW, strideH,
   * strideW, padTop, padLeft].
   */
  cudaPool2d(op: number, geometry: number[], x: number, y: number): void;
  /** The gradient of cudaPool2d (x is read by max only). */
  cudaPool2dGrad(op: number, geometry: number[], x: number, dy: number, dx: number): void;
  /** c[b] = op(a[b]) op(bm[b]), row-major, batchA/batchB the batch or 1 (broadcast). */
  cudaBatchMatMul(
    a: number,
    b: number,
    c: number,
    batch: number,
    batchA: number,
    batchB: number,
    M: number,
    N: number,
    K: number,
    transposeA: boolean,
    transposeB: boolean,
  ): void;
  /** n values converted between float32 (0), int32 (1) and bool (2). */
  cudaCast(x: number, from: number, y: number, to: number, n: number): void;
  /** `cudaHaltingStep`'s arguments with buffer ids in place of the arrays (0 for an absent one). */
  cudaHaltingStepDevice(
    sXi: number,
    sH: number,
    n: number,
    haltLogits: number,
    noise: number,
    output: number,
    u: number,
    positions: number,
    channels: number,
    mode: number,
    iteration: number,
    last: boolean,
    temperature: number,
    delta: number,
    sXiOut: number,
    sHOut: number,
    nOut: number,
    activeOut: number,
    outputOut: number,
  ): void;
  /** `cudaHaltingStepGrad`'s arguments with buffer ids in place of the arrays (0 for an absent one). */
  cudaHaltingStepGradDevice(
    sXi: number,
    sH: number,
    haltLogits: number,
    noise: number,
    u: number,
    gSXi: number,
    gSH: number,
    gN: number,
    gActive: number,
    gOutput: number,
    positions: number,
    channels: number,
    mode: number,
    iteration: number,
    last: boolean,
    temperature: number,
    delta: number,
    gHaltLogits: number,
    gNoise: number,
    gSXiOut: number,
    gSHOut: number,
    gU: number,
  ): void;
  /**
   * Training-mode batch norm (native/cuda/batch_norm.cu; the math of native/cpu/batch_norm.h) on device buffers:
   * x and y hold rows * channels floats, the others channels.
   */
  cudaBatchNormTrainDevice(
    rows: number,
    channels: number,
    epsilon: number,
    relu: boolean,
    x: number,
    scale: number,
    offset: number,
    y: number,
    mean: number,
    variance: number,
  ): void;
  /** Its gradient; y (the forward output) is read with relu only and may be 0 without it. */
  cudaBatchNormTrainGradDevice(
    rows: number,
    channels: number,
    epsilon: number,
    relu: boolean,
    dy: number,
    dmean: number,
    dvariance: number,
    x: number,
    scale: number,
    mean: number,
    variance: number,
    y: number,
    dx: number,
    dscale: number,
    doffset: number,
  ): void;
  /** The masked residual unit's batch norm + ReLU (native/cpu/masked_residual_unit.h) on device buffers. */
  cudaMaskedBatchNormReluDevice(
    rows: number,
    channels: number,
    epsilon: number,
    x: number,
    mask: number,
    scale: number,
    offset: number,
    y: number,
    mean: number,
    variance: number,
  ): void;
  cudaMaskedBatchNormReluGradDevice(
    rows: number,
    channels: number,
    epsilon: number,
    dy: number,
    x: number,
    mask: number,
    y: number,
    scale: number,
    mean: number,
    variance: number,
    dx: number,
    dscale: number,
    doffset: number,
  ): void;
  /** Evaluation's batch norm + ReLU with given statistics, at the rows of `mask` (0: every row). */
  cudaBatchNormReluInferenceDevice(
    rows: number,
    channels: number,
    epsilon: number,
    x: number,
    mask: number,
    scale: number,
    offset: number,
    mean: number,
    variance: number,
    y: number,
  ): void;
  /** y = u + c * a[row] and its gradient (dc, da). */
  cudaScaledResidualAddDevice(rows: number, channels: number, u: number, c: number, a: number, y: number): void;
  cudaScaledResidualAddGradDevice(
    rows: number,
    channels: number,
    dy: number,
    c: number,
    a: number,
    dc: number,
    da: number,
  ): void;
  /**
   * The masked convolution on device buffers; which 0: (x, filter) -> y, 1: (dy, filter) -> dx,
   * 2: (x, dy) -> dfilter. Mask id 0: the dense convolution (every position active).
   */
  cudaMaskedConv2dDevice(...args: [...DeviceConvHead, a: number, b: number, mask: number, out: number]): void;
  /** One SGD-momentum step on n-float device buffers (src/ops/sgd_momentum.ts). */
  cudaSgdMomentumDevice(
    n: number,
    learningRate: number,
    momentum: number,
    value: number,
    accumulation: number,
    gradient: number,
    valueOut: number,
    accumulationOut: number,
  ): void;
  /**
   * The dense convolution `which` (operands as in cudaMaskedConv2dDevice, no mask) through cuDNN, loaded at run
   * time; false, with nothing launched, where cuDNN cannot run it (then the masked kernels run it, every position
   * active).
   */
  cudaConv2dDense(...args: [...DeviceConvHead, a: number, b: number, out: number]): boolean;
  /** Whether dense convolutions run on cuDNN (loaded on the first call), which version, and why not. */
  cudaCudnnStatus(): CudnnStatus;
  buildInfo(): { cuda: CudaStatus };
}

/** The leading arguments of the device convolutions: geometry, then which (0 forward, 1 input grad, 2 filter grad). */
type DeviceConvHead = [xShape: number[], filterShape: number[], strides: number[], pads: number[], which: 0 | 1 | 2];

/** cuDNN as pact-cuda's dense convolutions see it (native/cuda/cudnn_conv.h). */
export interface CudnnStatus {
  available: boolean;
  /** cudnnGetVersion(): major * 10000 + minor * 100 + patch; 0 when not loaded. */
  version: number;
  /** The library loaded or tried (PACT_CUDNN_LIBRARY, default libcudnn.so.9). */
  library: string;
  /** Why cuDNN is not used, when it is not. */
  reason: string;
}

/** Signatures of the addon's functions, one interface per kernel group. */
export interface PactAddon
  extends
    DenseAddon,
    ElementwiseAddon,
    ReduceAddon,
    NormAddon,
    PactOpsAddon,
    MaskedConvAddon,
    CudaOpsAddon,
    CudaTensorAddon {
  buildInfo(): BuildInfo;
  setNumThreads(n: number): void;
}

let loaded: PactAddon | null | undefined;
let loadFailure = '';

export function addonPath(): string {
  return process.env.PACT_ADDON ?? path.resolve(__dirname, '..', '..', 'build', 'Release', 'pact.node');
}

/** The addon, or null when it cannot be loaded (see `nativeLoadError()`). */
export function nativeAddon(): PactAddon | null {
  if (loaded === undefined) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      loaded = require(addonPath()) as PactAddon;
    } catch (e) {
      loaded = null;
      loadFailure =
        `cannot load the native addon ${addonPath()}: ${(e as Error).message} ` +
        '(build it with `npm run build:native`; see the README)';
    }
  }
  return loaded;
}

export function nativeLoadError(): string {
  nativeAddon();
  return loadFailure;
}

/** What `buildInfo()` of the simulation addon reports. */
export interface SimBuildInfo {
  simulated: true;
  cuda: CudaStatus;
  sanitizer: string;
}

/**
 * pact_sim.node: the project's CUDA kernels compiled for the CPU simulation of the device (native/cuda/sim), built
 * with `npx cmake-js compile --out build-sim --CDPACT_CUDA_SIM=ON`. A sanitizer build of it loads only with the
 * sanitizer's runtime preloaded (scripts/cuda_sim_test.sh does that).
 */
export interface SimAddon extends CudaOpsAddon, CudaTensorAddon {
  buildInfo(): SimBuildInfo;
}

let simLoaded: SimAddon | null | undefined;
let simLoadFailure = '';

export function simAddonPath(): string {
  return process.env.PACT_SIM_ADDON ?? path.resolve(__dirname, '..', '..', 'build-sim', 'Release', 'pact_sim.node');
}

/** The simulation addon, or null when it cannot be loaded (see `simLoadError()`). */
export function simAddon(): SimAddon | null {
  if (simLoaded === undefined) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      simLoaded = require(simAddonPath()) as SimAddon;
    } catch (e) {
      simLoaded = null;
      simLoadFailure =
        `cannot load the CUDA simulation addon ${simAddonPath()}: ${(e as Error).message} ` +
        '(build it with `npx cmake-js compile --out build-sim --CDPACT_CUDA_SIM=ON`)';
    }
  }
  return simLoaded;
}

export function simLoadError(): string {
  simAddon();
  return simLoadFailure;
}

/**
 * The CUDA kernels to run: the simulated device when `PACT_DEVICE=sim`, else pact.node's (null when it was built
 * without CUDA). Their functions throw "CUDA unavailable: <reason>" when pact.node finds no GPU.
 */
export function cudaOpsAddon(): CudaOpsAddon | null {
  if (process.env.PACT_DEVICE === 'sim') return simAddon();
  const native = nativeAddon();
  return native !== null && native.buildInfo().cuda.compiled ? native : null;
}

/**
 * The device of the pact-cuda backend: the simulated one when `sim` (default: `PACT_DEVICE=sim`), else pact.node's when it was built
 * with CUDA; null with the reason otherwise. Whether a device is present is `buildInfo().cuda.deviceCount`.
 */
export function cudaTensorAddon(sim = process.env.PACT_DEVICE === 'sim'): {
  addon: CudaTensorAddon | null;
  reason: string;
} {
  if (sim) {
    const sim = simAddon();
    return { addon: sim, reason: sim === null ? simLoadError() : '' };
  }
  const native = nativeAddon();
  if (native === null) return { addon: null, reason: nativeLoadError() };
  const { cuda } = native.buildInfo();
  return cuda.compiled
    ? { addon: native, reason: '' }
    : { addon: null, reason: `the native addon was built without CUDA: ${cuda.reason}` };
}
