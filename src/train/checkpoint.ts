/**
 * Checkpoints: one file holding a JSON header (the run's metadata and a table of arrays) followed by the arrays'
 * bytes. Written atomically: to a temporary file in the same directory, flushed, then renamed over the old one,
 * so a run killed at any moment leaves either the previous checkpoint or the new one, never a torn file.
 *
 * Layout: "PACTCKPT" (8 bytes), header length (uint32 LE), header JSON (UTF-8), then each array's bytes at the
 * offset its table entry gives (8-byte aligned).
 */
import * as fs from 'fs';
import * as path from 'path';

const MAGIC = 'PACTCKPT';
const FORMAT_VERSION = 1;

export type ArrayDtype = 'float32' | 'int32';

export interface StoredArray {
  shape: number[];
  dtype: ArrayDtype;
  values: Float32Array | Int32Array;
}

interface TableEntry {
  name: string;
  shape: number[];
  dtype: ArrayDtype;
  offset: number;
  length: number;
}

interface Header<M> {
  version: number;
  meta: M;
  arrays: TableEntry[];
}

function align8(n: number): number {
  return (n + 7) & ~7;
}

export function saveCheckpoint<M>(file: string, meta: M, arrays: Record<string, StoredArray>): void {
  const table: TableEntry[] = [];
  let offset = 0;
  for (const [name, a] of Object.entries(arrays)) {
    const expected = a.shape.reduce((x, y) => x * y, 1);
    if (a.values.length !== expected) {
      throw new Error(
        `saveCheckpoint: array ${name} has ${a.values.length} values, its shape [${a.shape}] needs ${expected}`,
      );
    }
    table.push({ name, shape: a.shape, dtype: a.dtype, offset, length: a.values.length });
    offset = align8(offset + a.values.byteLength);
  }
  const header = Buffer.from(JSON.stringify({ version: FORMAT_VERSION, meta, arrays: table } satisfies Header<M>));
  const start = align8(MAGIC.length + 4 + header.length);
  const buf = Buffer.alloc(start + offset);
  buf.write(MAGIC, 0, 'latin1');
  buf.writeUInt32LE(header.length, MAGIC.length);
  header.copy(buf, MAGIC.length + 4);
  for (const entry of table) {
    const v = arrays[entry.name].values;
    Buffer.from(v.buffer, v.byteOffset, v.byteLength).copy(buf, start + entry.offset);
  }
  writeFileAtomically(file, buf);
}

/** Writes `data` to a temporary file beside `file`, flushes it, and renames it over `file`: a reader (or a run
 *  killed meanwhile) sees the old file or the new one, never a part. Creates the directory; on failure the
 *  temporary file is removed and `file` is left as it was. */
export function writeFileAtomically(file: string, data: Uint8Array | string): void {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  try {
    const fd = fs.openSync(tmp, 'w');
    try {
      // One write may take fewer bytes than asked (at most about 2 GiB a call on Linux): loop until all are written.
      for (let done = 0; done < bytes.length;) {
        const n = fs.writeSync(fd, bytes, done, bytes.length - done);
        if (n <= 0) throw new Error(`writeFileAtomically: no progress writing ${tmp} at byte ${done}`);
        done += n;
      }
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

export function loadCheckpoint<M>(file: string): { meta: M; arrays: Record<string, StoredArray> } {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    throw new Error(`loadCheckpoint: cannot read ${file}: ${(e as Error).message}`);
  }
  if (buf.length < MAGIC.length + 4 || buf.toString('latin1', 0, MAGIC.length) !== MAGIC) {
    throw new Error(`loadCheckpoint: ${file} is not a tfjs-pact checkpoint (bad magic)`);
  }
  const headerLength = buf.readUInt32LE(MAGIC.length);
  if (MAGIC.length + 4 + headerLength > buf.length) {
    throw new Error(`loadCheckpoint: ${file} is truncated (header of ${headerLength} bytes does not fit)`);
  }
  let header: Header<M>;
  try {
    header = JSON.parse(buf.toString('utf8', MAGIC.length + 4, MAGIC.length + 4 + headerLength)) as Header<M>;
  } catch (e) {
    throw new Error(`loadCheckpoint: ${file} has a corrupt header: ${(e as Error).message}`);
  }
  if (header.version !== FORMAT_VERSION) {
    throw new Error(`loadCheckpoint: ${file} has format version ${header.version}, expected ${FORMAT_VERSION}`);
  }
  const start = align8(MAGIC.length + 4 + headerLength);
  const arrays: Record<string, StoredArray> = {};
  for (const e of header.arrays) {
    const end = start + e.offset + e.length * 4;
    if (end > buf.length) throw new Error(`loadCheckpoint: ${file} is truncated (array ${e.name} ends past the file)`);
    const bytes = buf.buffer.slice(buf.byteOffset + start + e.offset, buf.byteOffset + end);
    const values = e.dtype === 'int32' ? new Int32Array(bytes) : new Float32Array(bytes);
    arrays[e.name] = { shape: e.shape, dtype: e.dtype, values };
  }
  return { meta: header.meta, arrays };
}
