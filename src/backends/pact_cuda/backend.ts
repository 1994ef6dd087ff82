/**
 * `pact-cuda`: a tfjs backend whose tensors live in device memory (native/cuda/memory.cuh: a caching allocator,
 * buffers addressed by id). `write`/`move` copy to the device, `read`/`readSync` copy back, `disposeData` returns
 * the buffer to the allocator's cache, and `memory()` reports the device bytes (so `tf.memory()` shows them).
 *
 * Kernels: the native ones (kernels/*.ts) run on the device buffers. Every other tfjs kernel runs tfjs-backend-cpu's
 * implementation on host copies (inputs downloaded, outputs uploaded): each such fallback is counted by kernel name
 * (`fallbackCounts()`), and `PACT_STRICT_NATIVE=1` makes it an error, as on pact-cpu. So every tfjs program runs,
 * and a test can prove that a path stays on the device.
 *
 * Strings stay on the host (no kernel of ours reads them); complex64 is not supported.
 */
import * as tf from '@tensorflow/tfjs';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';

import type { CudaTensorAddon } from '../../native/binding';

export const PACT_CUDA = 'pact-cuda';

type BackendValues = tf.backend_util.BackendValues;

interface DeviceData {
  /** Buffer id; 0 for strings (kept in `host`). */
  id: number;
  dtype: tf.DataType;
  /** Elements. */
  size: number;
  refCount: number;
  host?: BackendValues;
}

const BYTES: Partial<Record<tf.DataType, number>> = { float32: 4, int32: 4, bool: 1 };

/** The typed array tfjs uses for `dtype`, of `size` elements. */
function emptyValues(dtype: tf.DataType, size: number): Float32Array | Int32Array | Uint8Array {
  if (dtype === 'float32') return new Float32Array(size);
  if (dtype === 'int32') return new Int32Array(size);
  if (dtype === 'bool') return new Uint8Array(size);
  throw new Error(`${PACT_CUDA}: no device storage for dtype ${dtype}`);
}

/** `values` as the typed array of `dtype` (a copy only when the type differs). */
function typedValues(values: BackendValues, dtype: tf.DataType): Float32Array | Int32Array | Uint8Array {
  if (dtype === 'float32')
    return values instanceof Float32Array ? values : Float32Array.from(values as ArrayLike<number>);
  if (dtype === 'int32') return values instanceof Int32Array ? values : Int32Array.from(values as ArrayLike<number>);
  if (dtype === 'bool') return values instanceof Uint8Array ? values : Uint8Array.from(values as ArrayLike<number>);
  throw new Error(`${PACT_CUDA}: no device storage for dtype ${dtype}`);
}

export class PactCudaBackend extends tf.KernelBackend {
  private readonly data: WeakMap<tf.DataId, DeviceData> = new WeakMap();
  private dataCount = 0;
  private readonly fallbacks = new Map<string, number>();
  /** Kernels whose first fallback was warned about (once per kernel name and backend). */
  private readonly warned = new Set<string>();
  /** Where fallback kernels run (tfjs-backend-cpu, on host copies). */
  readonly host = new MathBackendCPU();

  constructor(readonly native: CudaTensorAddon) {
    super();
    (this.host as unknown as { firstUse: boolean }).firstUse = false;
  }

  /** The device buffer id of a float32 tensor, for native kernels. */
  bufferOf(t: tf.TensorInfo, argName: string): number {
    const d = this.data.get(t.dataId);
    if (d === undefined) throw new Error(`${argName} is not a tensor of ${PACT_CUDA} (disposed?)`);
    if (d.dtype !== t.dtype || d.id === 0) throw new Error(`${argName}: no ${t.dtype} device buffer`);
    return d.id;
  }

  /** A new tensor of `shape` and `dtype` with an uninitialised device buffer, for a native kernel to fill. */
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo {
    const bytesPer = BYTES[dtype];
    if (bytesPer === undefined) throw new Error(`${PACT_CUDA}: no device storage for dtype ${dtype}`);
    const size = tf.util.sizeFromShape(shape);
    const dataId = {};
    this.data.set(dataId, { id: this.native.cudaBufferCreate(size * bytesPer), dtype, size, refCount: 1 });
    this.dataCount++;
    this.madeByKernel[this.madeByKernel.length - 1]?.push(dataId);
    return { dataId, shape, dtype };
  }

  /** Per device kernel running (innermost last): the outputs it made with makeOutput. */
  private readonly madeByKernel: tf.DataId[][] = [];

  /**
   * Runs a device kernel's body; if it throws, the outputs it made with makeOutput and has not freed are freed
   * before the error goes on (a native launch can refuse a call after its outputs were allocated).
   */
  runTracked<T>(body: () => T): T {
    const made: tf.DataId[] = [];
    this.madeByKernel.push(made);
    try {
      return body();
    } catch (e) {
      for (const id of made) if (this.data.has(id)) this.disposeData(id, true);
      throw e;
    } finally {
      this.madeByKernel.pop();
    }
  }

  /**
   * New float32 outputs of `shapes` for a device kernel: `launch` gets their buffer ids and fills them; if it
   * throws, the outputs are freed before the error goes on.
   */
  launchInto(shapes: number[][], launch: (ids: number[]) => void): tf.TensorInfo[] {
    const outs = shapes.map((shape) => this.makeOutput(shape, 'float32'));
    try {
      launch(outs.map((o) => this.bufferOf(o, 'output')));
    } catch (e) {
      outs.forEach((o) => this.disposeData(o.dataId, true));
      throw e;
    }
    return outs;
  }

  override write(values: BackendValues | null, shape: number[], dtype: tf.DataType): tf.DataId {
    const dataId = {};
    this.move(dataId, values, shape, dtype, 1);
    return dataId;
  }

  override move(
    dataId: tf.DataId,
    values: BackendValues | null,
    shape: number[],
    dtype: tf.DataType,
    refCount: number,
  ): void {
    if (dtype === 'complex64') throw new Error(`${PACT_CUDA}: complex64 tensors are not supported`);
    if (dtype === 'string') {
      this.data.set(dataId, { id: 0, dtype, size: tf.util.sizeFromShape(shape), refCount, host: values ?? [] });
    } else {
      const size = tf.util.sizeFromShape(shape);
      const typed = values === null ? emptyValues(dtype, size) : typedValues(values, dtype);
      if (typed.length !== size) {
        throw new Error(`${PACT_CUDA}: ${typed.length} values for shape [${shape}] (${size} elements)`);
      }
      const id = this.native.cudaBufferCreate(typed.byteLength);
      try {
        this.native.cudaBufferWrite(id, typed);
      } catch (e) {
        this.native.cudaBufferFree(id);
        throw e;
      }
      this.data.set(dataId, { id, dtype, size, refCount });
    }
    this.dataCount++;
  }

  override readSync(dataId: tf.DataId): BackendValues {
    const d = this.data.get(dataId);
    if (d === undefined) throw new Error(`${PACT_CUDA}: readSync of a tensor that is not on this backend (disposed?)`);
    if (d.dtype === 'string') return d.host as BackendValues;
    const out = emptyValues(d.dtype, d.size);
    this.native.cudaBufferRead(d.id, out);
    return out;
  }

  override read(dataId: tf.DataId): Promise<BackendValues> {
    return Promise.resolve(this.readSync(dataId));
  }

  override disposeData(dataId: tf.DataId, force = false): boolean {
    const d = this.data.get(dataId);
    if (d === undefined) return true;
    d.refCount--;
    if (!force && d.refCount > 0) return false;
    if (d.id !== 0) this.native.cudaBufferFree(d.id);
    this.data.delete(dataId);
    this.dataCount--;
    return true;
  }

  override refCount(dataId: tf.DataId): number {
    return this.data.get(dataId)?.refCount ?? 0;
  }

  override incRef(dataId: tf.DataId): void {
    const d = this.data.get(dataId);
    if (d !== undefined) d.refCount++;
  }

  override numDataIds(): number {
    return this.dataCount;
  }

  override memory(): { unreliable: boolean; reasons?: string[] } & Record<string, number | boolean> {
    const m = this.native.cudaMemoryInfo();
    return {
      unreliable: false,
      numBytesInGPU: m.bytesInUse,
      numBytesInGPUAllocated: m.bytesReserved,
      numBytesInGPUFree: m.bytesReserved - m.bytesInUse,
      peakBytesInGPU: m.peakBytesInUse,
    };
  }

  override timerAvailable(): boolean {
    return true;
  }

  /** Wall time of `f` between two device synchronisations, so it includes the kernels `f` launched. */
  override time(f: () => void): Promise<tf.TimingInfo> {
    this.native.cudaSynchronize();
    const start = process.hrtime.bigint();
    f();
    this.native.cudaSynchronize();
    return Promise.resolve({ kernelMs: Number(process.hrtime.bigint() - start) / 1e6 } as tf.TimingInfo);
  }

  override floatPrecision(): 32 {
    return 32;
  }

  override epsilon(): number {
    return 1e-7;
  }

  override dispose(): void {
    this.host.dispose();
    this.native.cudaEmptyCache();
  }

  /** Records that `kernelName` ran tfjs-backend-cpu's implementation on host copies. */
  noteFallback(kernelName: string): void {
    if (process.env.PACT_STRICT_NATIVE === '1') {
      throw new Error(
        `${PACT_CUDA}: ${kernelName} has no device kernel (it would run on the host) and PACT_STRICT_NATIVE=1`,
      );
    }
    this.fallbacks.set(kernelName, (this.fallbacks.get(kernelName) ?? 0) + 1);
    if (!this.warned.has(kernelName)) {
      this.warned.add(kernelName);
      process.emitWarning(
        `${kernelName} has no device kernel: it runs on the host through copies (counted in fallbackCounts(); ` +
          `PACT_STRICT_NATIVE=1 makes it an error)`,
        { type: 'PactCudaFallback', code: 'PACT_CUDA_FALLBACK' },
      );
    }
  }

  /** Dense convolutions so far, by where they ran: cuDNN, or our kernels (cuDNN absent or unable). */
  readonly denseConvCounts = { cudnn: 0, own: 0 };

  /**
   * Which dense convolutions (forward, input gradient, filter gradient) go to cuDNN where it is loaded: the filter
   * gradient (PACT_CUDNN=1 or filter: the fastest ResNet-32 step measured on an H100), or all three
   * (PACT_CUDNN=all); benchmarks switch them to compare.
   */
  useCudnnFor: [boolean, boolean, boolean] =
    process.env.PACT_CUDNN === 'all' ? [true, true, true] : [false, false, true];

  /** Whether cuDNN is loaded for dense convolutions (PACT_CUDNN set; asked of the addon once). */
  get cudnnAvailable(): boolean {
    this.cudnn ??= this.native.cudaCudnnStatus().available;
    return this.cudnn;
  }
  private cudnn: boolean | undefined;

  fallbackCounts(): Record<string, number> {
    return Object.fromEntries(this.fallbacks);
  }

  resetFallbackCounts(): void {
    this.fallbacks.clear();
  }

  /**
   * Runs tfjs-backend-cpu's `kernel` on host copies of the inputs and uploads its outputs (the fallback path).
   */
  runOnHost(
    kernelName: string,
    kernel: tf.KernelFunc,
    args: Parameters<tf.KernelFunc>[0],
  ): tf.TensorInfo | tf.TensorInfo[] {
    this.noteFallback(kernelName);
    const hostIds: tf.DataId[] = [];
    const toHost = (t: tf.TensorInfo): tf.TensorInfo => {
      const dataId = this.host.write(this.readSync(t.dataId), t.shape, t.dtype);
      hostIds.push(dataId);
      return { dataId, shape: t.shape, dtype: t.dtype };
    };
    // Concat, Pack, AddN, ... take an array of tensors; the rest a map by name (optional ones may be absent).
    const inputs = (
      Array.isArray(args.inputs)
        ? (args.inputs as tf.TensorInfo[]).map(toHost)
        : Object.fromEntries(
            Object.entries(args.inputs)
              .filter(([, t]) => t != null)
              .map(([name, t]) => [name, toHost(t as tf.TensorInfo)]),
          )
    ) as tf.NamedTensorInfoMap;
    try {
      const out = kernel({ inputs, attrs: args.attrs, backend: this.host });
      const outs = Array.isArray(out) ? out : [out];
      const uploaded = outs.map((o) => {
        hostIds.push(o.dataId);
        if (o.dtype === 'complex64') throw new Error(`${PACT_CUDA}: ${kernelName} returned complex64, not supported`);
        return { dataId: this.write(this.host.readSync(o.dataId), o.shape, o.dtype), shape: o.shape, dtype: o.dtype };
      });
      return Array.isArray(out) ? uploaded : uploaded[0];
    } finally {
      for (const id of new Set(hostIds)) this.host.disposeData(id, true);
    }
  }
}

type KernelArgs = Parameters<tf.KernelFunc>[0];

/** A device kernel that returns null (with nothing allocated) when it does not handle the call: the host runs it. */
export function deviceKernel(
  kernelName: string,
  run: (args: KernelArgs & { backend: PactCudaBackend }) => tf.TensorInfo | null,
): tf.KernelConfig {
  let hostKernel: tf.KernelFunc | undefined;
  return {
    kernelName,
    backendName: PACT_CUDA,
    kernelFunc: (args) => {
      const backend = args.backend as PactCudaBackend;
      const out = backend.runTracked(() => run({ ...args, backend }));
      if (out !== null) return out;
      hostKernel ??= (tf.getKernel(kernelName, 'cpu') as tf.KernelConfig).kernelFunc;
      return backend.runOnHost(kernelName, hostKernel, args);
    },
  };
}
