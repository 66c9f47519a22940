/**
 * Writes checkpoints in torch.save's zip format from test data, independently of the reader under
 * test: a pickle emitter for the opcodes torch uses (protocol 2) and a stored/deflate zip writer
 * with optional zip64 records. Checked once by hand: the plain and deflate variants load in torch
 * 1.13 (`torch.load`), the zip64 variant passes Python's zipfile and `unzip -t` (torch 1.13 reads
 * no `byteorder` record, so big-endian files are checked by values in the tests). The committed
 * fixtures from scripts/fixtures/make_checkpoint_fixtures.py cover torch's own writer.
 */
import { crc32, deflateRawSync } from 'node:zlib';

export type Dtype = 'float32' | 'float16' | 'float64' | 'int64';

/** A tensor to write: values in C order of `shape` (optionally laid out with other strides). */
export interface TensorNode {
  kind: 'tensor';
  dtype: Dtype;
  shape: number[];
  /** Storage contents (element values) and the view into it; default: contiguous from 0. */
  storage: number[];
  offset?: number;
  stride?: number[];
  /** Storage key; tensors with the same key share one storage. */
  key?: string;
}

export type PickleNode =
  | { kind: 'dict'; ordered?: boolean; items: Array<[string, PickleNode]> }
  | { kind: 'list'; items: PickleNode[] }
  | { kind: 'tuple'; items: PickleNode[] }
  | { kind: 'int'; value: number }
  | { kind: 'float'; value: number }
  | { kind: 'str'; value: string }
  | { kind: 'none' }
  | { kind: 'object'; module: string; name: string; args: PickleNode[] }
  | TensorNode;

const STORAGE_NAMES: Record<Dtype, string> = { float32: 'FloatStorage', float16: 'HalfStorage', float64: 'DoubleStorage', int64: 'LongStorage' };
const SIZES: Record<Dtype, number> = { float32: 4, float16: 2, float64: 8, int64: 8 };

/** float -> IEEE half bits, round to nearest even (values here are small and normal). */
export function floatToHalfBits(value: number): number {
  const f = new Float32Array([value]);
  const x = new Uint32Array(f.buffer)[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = ((x >>> 23) & 0xff) - 127 + 15;
  let mant = x & 0x7fffff;
  if (exp <= 0) return sign; // flush tiny values (not used by the tests)
  if (exp >= 31) return sign | 0x7c00;
  let half = sign | (exp << 10) | (mant >>> 13);
  mant &= 0x1fff;
  if (mant > 0x1000 || (mant === 0x1000 && (half & 1))) half++;
  return half;
}

class Bytes {
  private parts: number[] = [];
  push(...b: number[]): void {
    for (const x of b) this.parts.push(x);
  }
  append(b: ArrayLike<number>): void {
    for (let i = 0; i < b.length; i++) this.parts.push(b[i]);
  }
  u32(v: number): void {
    this.push(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
  }
  str(s: string): void {
    this.append(new TextEncoder().encode(s));
  }
  get length(): number {
    return this.parts.length;
  }
  finish(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

export interface PickleResult {
  pickle: Uint8Array;
  storages: Map<string, Uint8Array>;
}

/** Emits `root` as torch.save's data.pkl does; storages collected for data/<key>. */
export function emitPickle(root: PickleNode, bigEndian = false): PickleResult {
  const out = new Bytes();
  const storages = new Map<string, Uint8Array>();
  let nextKey = 0;
  const op = (c: string): void => out.push(c.charCodeAt(0));
  const global = (module: string, name: string): void => {
    op('c');
    out.str(`${module}\n${name}\n`);
  };
  const unicode = (s: string): void => {
    const b = new TextEncoder().encode(s);
    op('X');
    out.u32(b.length);
    out.append(b);
  };
  const int = (v: number): void => {
    if (v >= 0 && v < 256) out.push(0x4b, v);
    else if (v >= 0 && v < 65536) out.push(0x4d, v & 0xff, v >> 8);
    else if (v >= -(2 ** 31) && v < 2 ** 31) {
      op('J');
      out.u32(v >>> 0);
    } else {
      // LONG1, 8 bytes two's complement.
      const b = new Uint8Array(8);
      new DataView(b.buffer).setBigInt64(0, BigInt(v), true);
      out.push(0x8a, 8);
      out.append(b);
    }
  };
  const emit = (n: PickleNode): void => {
    switch (n.kind) {
      case 'int':
        int(n.value);
        return;
      case 'float': {
        const b = new Uint8Array(8);
        new DataView(b.buffer).setFloat64(0, n.value, false);
        out.push(0x47);
        out.append(b);
        return;
      }
      case 'str':
        unicode(n.value);
        return;
      case 'none':
        op('N');
        return;
      case 'tuple':
        if (n.items.length === 0) {
          op(')');
          return;
        }
        op('(');
        n.items.forEach(emit);
        op('t');
        return;
      case 'list':
        op(']');
        if (n.items.length) {
          op('(');
          n.items.forEach(emit);
          op('e');
        }
        return;
      case 'dict':
        if (n.ordered) {
          global('collections', 'OrderedDict');
          op(')');
          op('R');
        } else {
          op('}');
        }
        if (n.items.length) {
          op('(');
          for (const [k, v] of n.items) {
            unicode(k);
            emit(v);
          }
          op('u');
        }
        return;
      case 'object':
        global(n.module, n.name);
        emit({ kind: 'tuple', items: n.args });
        op('R');
        return;
      case 'tensor': {
        const key = n.key ?? String(nextKey++);
        if (!storages.has(key)) {
          const size = SIZES[n.dtype];
          const b = new Uint8Array(n.storage.length * size);
          const view = new DataView(b.buffer);
          n.storage.forEach((v, i) => {
            if (n.dtype === 'float32') view.setFloat32(i * 4, v, !bigEndian);
            else if (n.dtype === 'float64') view.setFloat64(i * 8, v, !bigEndian);
            else if (n.dtype === 'float16') view.setUint16(i * 2, floatToHalfBits(v), !bigEndian);
            else view.setBigInt64(i * 8, BigInt(v), !bigEndian);
          });
          storages.set(key, b);
        }
        const stride = n.stride ?? n.shape.map((_, d) => n.shape.slice(d + 1).reduce((a, b) => a * b, 1));
        global('torch._utils', '_rebuild_tensor_v2');
        op('(');
        op('(');
        unicode('storage');
        global('torch', STORAGE_NAMES[n.dtype]);
        unicode(key);
        unicode('cpu');
        int(n.storage.length);
        op('t');
        op('Q');
        int(n.offset ?? 0);
        emit({ kind: 'tuple', items: n.shape.map((value) => ({ kind: 'int', value })) });
        emit({ kind: 'tuple', items: stride.map((value) => ({ kind: 'int', value })) });
        out.push(0x89); // NEWFALSE: requires_grad
        global('collections', 'OrderedDict');
        op(')');
        op('R');
        op('t');
        op('R');
        return;
      }
    }
  };
  out.push(0x80, 2);
  emit(root);
  op('.');
  return { pickle: out.finish(), storages };
}

export interface ZipFile {
  name: string;
  data: Uint8Array;
  deflate?: boolean;
}

/** A zip archive; `zip64` writes the zip64 end records with 0xFFFF/0xFFFFFFFF placeholders. */
export function writeZip(files: ZipFile[], options: { zip64?: boolean } = {}): Uint8Array {
  const out = new Bytes();
  const u16 = (v: number): void => out.push(v & 0xff, (v >>> 8) & 0xff);
  const central: Array<{ name: Uint8Array; crc: number; csize: number; usize: number; method: number; offset: number }> = [];
  for (const f of files) {
    const name = new TextEncoder().encode(f.name);
    const method = f.deflate ? 8 : 0;
    const body = f.deflate ? new Uint8Array(deflateRawSync(f.data)) : f.data;
    const crc = crc32(f.data) >>> 0;
    const offset = out.length;
    out.u32(0x04034b50);
    u16(20);
    u16(0);
    u16(method);
    u16(0);
    u16(0);
    out.u32(crc);
    out.u32(body.length);
    out.u32(f.data.length);
    u16(name.length);
    // Pad the local extra field so the data is 64-byte aligned, as torch does.
    const pad = (64 - ((offset + 30 + name.length + 4) % 64)) % 64;
    u16(4 + pad);
    out.append(name);
    u16(0x4346); // an arbitrary private extra id, like torch's "FB" padding
    u16(pad);
    out.push(...new Uint8Array(pad));
    out.append(body);
    central.push({ name, crc, csize: body.length, usize: f.data.length, method, offset });
  }
  const dirOffset = out.length;
  for (const c of central) {
    out.u32(0x02014b50);
    u16(45);
    u16(20);
    u16(0);
    u16(c.method);
    u16(0);
    u16(0);
    out.u32(c.crc);
    out.u32(c.csize);
    out.u32(c.usize);
    u16(c.name.length);
    u16(options.zip64 ? 12 : 0);
    u16(0);
    u16(0);
    u16(0);
    out.u32(0);
    out.u32(options.zip64 ? 0xffffffff : c.offset);
    out.append(c.name);
    if (options.zip64) {
      u16(0x0001);
      u16(8);
      out.u32(c.offset);
      out.u32(0);
    }
  }
  const dirSize = out.length - dirOffset;
  if (options.zip64) {
    const eocd64 = out.length;
    out.u32(0x06064b50);
    out.u32(44);
    out.u32(0);
    u16(45);
    u16(45);
    out.u32(0);
    out.u32(0);
    for (const v of [central.length, central.length, dirSize, dirOffset]) {
      out.u32(v);
      out.u32(0);
    }
    out.u32(0x07064b50);
    out.u32(0);
    out.u32(eocd64);
    out.u32(0);
    out.u32(1);
  }
  out.u32(0x06054b50);
  u16(0);
  u16(0);
  u16(options.zip64 ? 0xffff : central.length);
  u16(options.zip64 ? 0xffff : central.length);
  out.u32(options.zip64 ? 0xffffffff : dirSize);
  out.u32(options.zip64 ? 0xffffffff : dirOffset);
  u16(0);
  return out.finish();
}

export interface CheckpointOptions {
  archive?: string;
  bigEndian?: boolean;
  deflate?: boolean;
  zip64?: boolean;
  /** Replace data.pkl by these bytes (for truncated/corrupt pickles). */
  pickle?: (pickle: Uint8Array) => Uint8Array;
}

/** A torch.save-style checkpoint of `root`. */
export function writeCheckpoint(root: PickleNode, options: CheckpointOptions = {}): Uint8Array {
  const archive = options.archive ?? 'archive';
  const { pickle, storages } = emitPickle(root, options.bigEndian);
  const files: ZipFile[] = [{ name: `${archive}/data.pkl`, data: options.pickle ? options.pickle(pickle) : pickle, deflate: options.deflate }];
  for (const [key, data] of storages) files.push({ name: `${archive}/data/${key}`, data, deflate: options.deflate });
  files.push({ name: `${archive}/version`, data: new TextEncoder().encode('3\n') });
  if (options.bigEndian !== undefined) files.push({ name: `${archive}/byteorder`, data: new TextEncoder().encode(options.bigEndian ? 'big' : 'little') });
  return writeZip(files, { zip64: options.zip64 });
}

/** A state_dict node from float32 maps (shapes from `shapes`). */
export function stateDictNode(weights: Map<string, Float32Array>, shapes: Map<string, number[]>, ordered = true): PickleNode {
  return {
    kind: 'dict',
    ordered,
    items: [...weights].map(([k, v]): [string, PickleNode] => [
      k,
      { kind: 'tensor', dtype: k.endsWith('num_batches_tracked') ? 'int64' : 'float32', shape: shapes.get(k) ?? [v.length], storage: Array.from(v) },
    ]),
  };
}
