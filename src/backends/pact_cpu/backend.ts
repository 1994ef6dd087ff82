/**
 * `pact-cpu`: tfjs-backend-cpu's storage (plain typed arrays, zero copies) with native kernels in place of the
 * ones a training step spends its time in. Kernels the addon does not handle run tfjs-backend-cpu's kernel on
 * the same data; each such fallback is counted by kernel name (`fallbackCounts()`), and `PACT_STRICT_NATIVE=1`
 * turns a fallback into an error (the tests use it to prove a path is native).
 *
 * Buffer pool: the output arrays of native kernels are reused once their tensor is disposed, instead of a fresh
 * zero-filled array per op (whose allocation, first-touch page faults and the garbage collections that V8 runs
 * under the external-memory pressure of hundreds of MB per training step cost more than many kernels). An array
 * is reused only while nothing outside the backend can see it: reading a tensor (dataSync, data, array, ...) takes
 * its array out of reuse for good, and so does any tfjs-backend-cpu kernel output that shares its buffer (Slice's
 * subarray views). PACT_BUFFER_POOL_MB bounds the MiB kept for reuse (default 2048: a PSACT ResNet-32 step at
 * batch 128 settles at 1.2 GiB, with the process's RSS the same as with a 1 GiB bound; 0 turns the pool off).
 * An output of the masked convolution is zero outside its mask's rows (its input gradient outside the mask dilated
 * by the filter's radius): disposed, it waits in a pool of its own with those rows, and the next masked convolution
 * of its size gets it back all zeros after clearing those rows only (`zeroOutputFloats`), instead of writing the
 * zeros of every inactive output again (a tenth of a dense convolution's time at 128x32x32x16 on AVX-512). Plain
 * outputs leave that pool alone unless the pool holds more than half its bound.
 */
import * as tf from '@tensorflow/tfjs';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';

import type { PactAddon } from '../../native/binding';

export const PACT_CPU = 'pact-cpu';

const DEFAULT_POOL_MB = 2048;

/**
 * The largest share of active rows for which a masked output is kept to be cleared for reuse as zeros: clearing costs
 * those rows, the kernel's own zeroing the inactive ones of the next mask (masks of one layer have similar
 * densities), and a dense path (high density) writes every row anyway. Denser outputs go to the ordinary pool.
 */
const ZERO_POOL_MAX_FRACTION = 0.3;

/** PACT_BUFFER_POOL_MB in bytes (registration checks it first, so a bad value leaves pact-cpu unregistered, with
 * the reason in pactCpuStatus). */
export function poolLimitBytes(): number {
  const env = process.env.PACT_BUFFER_POOL_MB;
  const mb = env === undefined || env === '' ? DEFAULT_POOL_MB : Number(env);
  if (!Number.isFinite(mb) || mb < 0) {
    throw new Error(`PACT_BUFFER_POOL_MB must be a number of MiB >= 0, got ${env}`);
  }
  return mb * 1024 * 1024;
}

/**
 * Checks the settings that the addon reads at each call, where a value it cannot parse means the default:
 * PACT_NARROW_CONV, the most output channels for which the native dense convolution takes its own loops instead of
 * oneDNN's (native/cpu/narrow_conv.h; unset: 2, 0: oneDNN always), and PACT_CPU_ISA, `avx2` to keep our own kernels
 * on AVX2 on a CPU with AVX-512 (native/cpu/isa.h; unset or `auto`: AVX-512 where the CPU has it), and
 * PACT_CONV_TILES, `0` to keep every dense convolution on oneDNN (native/cpu/dense_conv.h, denseConvByTiles; unset or
 * `1`: stride-1 3x3 'same' ones from 16 channels run on the masked convolution's Winograd tiles), and
 * PACT_MEMORY_TUNING, `amd` or `intel`: the masked convolution's AVX-512 kernels access memory (prefetches, how the
 * forward zeroes its output) as measured on an AMD EPYC with random pixel masks, or as on the Intel Xeon
 * (native/cpu/isa.h; unset or `auto`: `intel`, on any CPU). Registration checks them first, like
 * PACT_BUFFER_POOL_MB.
 */
export function checkNativeSettings(): void {
  const narrow = process.env.PACT_NARROW_CONV;
  if (narrow !== undefined && narrow !== '' && !/^\d+$/.test(narrow)) {
    throw new Error(`PACT_NARROW_CONV must be a whole number of output channels >= 0, got ${narrow}`);
  }
  const isa = process.env.PACT_CPU_ISA;
  if (isa !== undefined && !['', 'auto', 'avx2'].includes(isa)) {
    throw new Error(`PACT_CPU_ISA must be auto or avx2, got ${isa}`);
  }
  const tiles = process.env.PACT_CONV_TILES;
  if (tiles !== undefined && !['', '0', '1'].includes(tiles)) {
    throw new Error(`PACT_CONV_TILES must be 0 or 1, got ${tiles}`);
  }
  const tuning = process.env.PACT_MEMORY_TUNING;
  if (tuning !== undefined && !['', 'auto', 'amd', 'intel'].includes(tuning)) {
    throw new Error(`PACT_MEMORY_TUNING must be auto, amd or intel, got ${tuning}`);
  }
}

/** Counters of the output-array pool (`PactCpuBackend.bufferPoolStats()`). */
export interface BufferPoolStats {
  /** Outputs served from the pool / newly allocated. */
  hits: number;
  misses: number;
  /** Of the hits: all-zero outputs made from a masked output by clearing its active rows (`zeroOutputFloats`). */
  zeroHits: number;
  /** Bytes held for reuse now, and the bound. */
  pooledBytes: number;
  limitBytes: number;
}

type TensorInputs = tf.NamedTensorInfoMap | tf.TensorInfo[];

export class PactCpuBackend extends MathBackendCPU {
  private readonly fallbacks = new Map<string, number>();
  /** Disposed output arrays by length, ready for reuse. */
  private readonly pool = new Map<number, Float32Array[]>();
  /** Output arrays allocated here that nothing outside the backend has seen: reusable once disposed. */
  private readonly reusable = new WeakSet<Float32Array>();
  /**
   * Arrays that are zero except at the rows where `mask` > 0 (rows of `rowLength` values), and those of them that
   * were disposed, by length.
   */
  private readonly zeroOutside = new WeakMap<Float32Array, { bits: Int32Array; rowLength: number }>();
  private readonly zeroPool = new Map<number, Float32Array[]>();
  /**
   * The rows' packed bits (native packActive: a 32nd of the mask's bytes) once their arrays left the zero pool, by
   * length; and a dilated mask's scratch, by length.
   */
  private readonly bitsCopies = new Map<number, Int32Array[]>();
  private readonly dilatedScratch = new Map<number, Float32Array>();
  private readonly poolStats: BufferPoolStats = {
    hits: 0,
    misses: 0,
    zeroHits: 0,
    pooledBytes: 0,
    limitBytes: poolLimitBytes(),
  };

  constructor(readonly native: PactAddon) {
    super();
    // tfjs-backend-cpu advises Node users to install tfjs-node on first write; this backend is the fast path.
    (this as unknown as { firstUse: boolean }).firstUse = false;
  }

  /**
   * The float32 values of a tensor held by this backend (no copy). tfjs-backend-cpu's Cast to float32 from bool
   * or int32 keeps the source storage (a Uint8Array or Int32Array under a float32 dtype): such a tensor is
   * converted (a copy), not refused.
   */
  floats(t: tf.TensorInfo, argName: string): Float32Array {
    if (t.dtype !== 'float32') throw new Error(`${argName} must be float32, got ${t.dtype}`);
    const values = this.data.get(t.dataId).values;
    if (values instanceof Float32Array) return values;
    if (values instanceof Uint8Array || values instanceof Int32Array) return Float32Array.from(values);
    // tfjs-backend-cpu keeps some results (an empty Concat's) as a plain array of numbers.
    if (Array.isArray(values) && values.every((v) => typeof v === 'number')) return Float32Array.from(values);
    throw new Error(`${argName} has no numeric storage on ${PACT_CPU}`);
  }

  /** A new float32 output tensor of `shape` around `values` (which it takes ownership of). */
  floatOutput(values: Float32Array, shape: number[]): tf.TensorInfo {
    return this.makeTensorInfo(shape, 'float32', values);
  }

  /**
   * An array of n float32 values for a native kernel's output: a reused one (`zeroed` false: its old values
   * remain, the kernel must write every element) or a new one (all zeros).
   */
  allocFloats(n: number): { values: Float32Array; zeroed: boolean } {
    // Zero-pool arrays are kept for the masked kernels: a dense convolution of the same shape between two masked
    // ones (a layer's dense shortcut, the benchmark's alternation) took them, and the masked kernels then cleared
    // all of their outputs (a PSACT ResNet-32 training step: 266 zeroed outputs in 6 steps against 168, the same
    // pooled bytes and RSS). Only when the pool holds more than half its bound do plain outputs take them too, so
    // that arrays a program no longer uses as masked outputs cannot keep the plain ones from being pooled.
    const zeroList = this.zeroPool.get(n);
    const crowded = 2 * this.poolStats.pooledBytes > this.poolStats.limitBytes;
    const reused = this.pool.get(n)?.pop() ?? (crowded ? zeroList?.pop() : undefined);
    if (reused !== undefined) {
      this.dropZeroOutside(reused);
      this.poolStats.hits++;
      this.poolStats.pooledBytes -= reused.byteLength;
      return { values: reused, zeroed: false };
    }
    this.poolStats.misses++;
    const values = new Float32Array(n);
    if (this.poolStats.limitBytes > 0) this.reusable.add(values);
    return { values, zeroed: true };
  }

  /** An output array for a kernel that writes every element (reused when the pool has one). */
  outputFloats(n: number): Float32Array {
    return this.allocFloats(n).values;
  }

  /**
   * An output array for a kernel that can skip the zeros of a zeroed one (`zeroed` true): a disposed masked output
   * with its active rows cleared where there is one (markZeroOutside keeps only those with few), else as
   * `allocFloats`.
   */
  zeroOutputFloats(n: number): { values: Float32Array; zeroed: boolean } {
    const reused = this.zeroPool.get(n)?.pop();
    if (reused === undefined) return this.allocFloats(n);
    const { bits, rowLength } = this.zeroOutside.get(reused)!;
    this.native.zeroActiveRows(bits, rowLength, reused);
    this.dropZeroOutside(reused);
    this.poolStats.hits++;
    this.poolStats.zeroHits++;
    this.poolStats.pooledBytes -= reused.byteLength;
    return { values: reused, zeroed: true };
  }

  /**
   * Records that `values` (an output of this backend) is zero except at the `active` rows where `mask` > 0, rows of
   * `rowLength` values, when those are few enough to be worth clearing (ZERO_POOL_MAX_FRACTION). The mask's active
   * rows are kept as packed bits (a tensor's array can be its creator's, which may change it later). At 128x32x32
   * (4x4 blocks, d = 0.1-0.25), packing took 0.018-0.020 ms against 0.023-0.028 for a copy of the mask, and the
   * clearing 0.030-0.073 against 0.040-0.081 from the copy (16-channel rows, medians of 50).
   */
  markZeroOutside(values: Float32Array, mask: Float32Array, rowLength: number, active: number): void {
    if (!this.reusable.has(values) || mask.length * rowLength !== values.length) return;
    if (active > ZERO_POOL_MAX_FRACTION * mask.length) return;
    this.keepActiveRows(values, mask, rowLength);
  }

  /**
   * As markZeroOutside, with the rows where `mask` [B, H, W] dilated by `radius` is 1: an input gradient of a
   * stride-1 'same' masked convolution, nonzero only within its active positions' windows. `active` of the mask's
   * positions are active: the dilated mask has at least as many, so from ZERO_POOL_MAX_FRACTION it is not formed.
   */
  markZeroOutsideDilated(
    values: Float32Array,
    mask: Float32Array,
    maskShape: [number, number, number],
    radius: number,
    rowLength: number,
    active: number,
  ): void {
    if (!this.reusable.has(values) || mask.length * rowLength !== values.length) return;
    if (active > ZERO_POOL_MAX_FRACTION * mask.length) return;
    let dilated = this.dilatedScratch.get(mask.length);
    if (dilated === undefined) {
      dilated = new Float32Array(mask.length);
      this.dilatedScratch.set(mask.length, dilated);
    }
    const ones = this.native.dilateMask(maskShape, mask, radius, dilated);
    if (ones > ZERO_POOL_MAX_FRACTION * mask.length) return;
    this.keepActiveRows(values, dilated, rowLength);
  }

  /** Records `values` as zero but at the rows where `mask` > 0, kept as packed bits. */
  private keepActiveRows(values: Float32Array, mask: Float32Array, rowLength: number): void {
    const words = Math.ceil(mask.length / 32);
    const bits = this.bitsCopies.get(words)?.pop() ?? new Int32Array(words); // its old values are overwritten
    this.native.packActive(mask, bits);
    this.zeroOutside.set(values, { bits, rowLength });
  }

  /** Forgets that `values` is zero outside some rows (it is about to be written), keeping the bits' array. */
  private dropZeroOutside(values: Float32Array): void {
    const entry = this.zeroOutside.get(values);
    if (entry === undefined) return;
    this.zeroOutside.delete(values);
    const list = this.bitsCopies.get(entry.bits.length) ?? [];
    list.push(entry.bits);
    this.bitsCopies.set(entry.bits.length, list);
  }

  /** An output array of zeros (a reused one is cleared). */
  zeroedFloats(n: number): Float32Array {
    const { values, zeroed } = this.allocFloats(n);
    return zeroed ? values : values.fill(0);
  }

  bufferPoolStats(): BufferPoolStats {
    return { ...this.poolStats };
  }

  /** Drops the arrays held for reuse (and sets the bound, for tests). */
  resetBufferPool(limitBytes = this.poolStats.limitBytes): void {
    this.pool.clear();
    this.zeroPool.clear();
    this.bitsCopies.clear();
    this.dilatedScratch.clear();
    Object.assign(this.poolStats, { hits: 0, misses: 0, zeroHits: 0, pooledBytes: 0, limitBytes });
  }

  /**
   * After a tfjs-backend-cpu kernel: an input array that an output shares a buffer with (a view, or the array
   * itself) is visible through that output and is never reused.
   */
  guardAliases(inputs: TensorInputs, outputs: tf.TensorInfo | tf.TensorInfo[]): void {
    // (DataStorage.get of an id it does not hold asks the engine to move data: `has` first.)
    const valuesOf = (t: tf.TensorInfo | null | undefined) =>
      t != null && this.data.has(t.dataId) ? this.data.get(t.dataId).values : undefined;
    const inputList = Array.isArray(inputs) ? inputs : Object.values(inputs);
    // An output with an input's own data id (Reshape, Identity) shares it by reference count: no alias.
    const inputIds = new Set(inputList.map((t) => t?.dataId));
    const buffers = new Set<ArrayBufferLike>();
    for (const o of Array.isArray(outputs) ? outputs : [outputs]) {
      const values = inputIds.has(o.dataId) ? undefined : valuesOf(o);
      if (ArrayBuffer.isView(values)) buffers.add(values.buffer);
    }
    for (const t of inputList) {
      const values = valuesOf(t);
      if (values instanceof Float32Array && buffers.has(values.buffer)) this.reusable.delete(values);
    }
  }

  /** Reading a tensor exposes its array: it is never reused. */
  override readSync(dataId: tf.DataId): tf.backend_util.BackendValues {
    const values = super.readSync(dataId);
    if (values instanceof Float32Array) {
      this.reusable.delete(values);
      this.dropZeroOutside(values);
    }
    return values;
  }

  override disposeData(dataId: tf.DataId, force = false): boolean {
    const values = this.data.has(dataId) ? this.data.get(dataId).values : undefined;
    const disposed = super.disposeData(dataId, force);
    if (disposed && values instanceof Float32Array && this.reusable.has(values)) {
      this.reusable.delete(values);
      if (this.poolStats.pooledBytes + values.byteLength <= this.poolStats.limitBytes) {
        const pool = this.zeroOutside.has(values) ? this.zeroPool : this.pool;
        const list = pool.get(values.length) ?? [];
        list.push(values);
        pool.set(values.length, list);
        this.poolStats.pooledBytes += values.byteLength;
        this.reusable.add(values);
      } else {
        this.dropZeroOutside(values);
      }
    }
    return disposed;
  }

  override dispose(): void {
    this.pool.clear();
    this.zeroPool.clear();
    this.bitsCopies.clear();
    this.dilatedScratch.clear();
    super.dispose();
  }

  /** Records that `kernelName` ran tfjs-backend-cpu's JS implementation, and why. */
  noteFallback(kernelName: string, reason: string): void {
    if (process.env.PACT_STRICT_NATIVE === '1') {
      throw new Error(`${PACT_CPU}: ${kernelName} is not handled natively (${reason}) and PACT_STRICT_NATIVE=1`);
    }
    this.fallbacks.set(kernelName, (this.fallbacks.get(kernelName) ?? 0) + 1);
  }

  fallbackCounts(): Record<string, number> {
    return Object.fromEntries(this.fallbacks);
  }

  resetFallbackCounts(): void {
    this.fallbacks.clear();
  }
}
