/**
 * A minimal protobuf codec for the parts of onnx.proto (IR version 8) the package writes and reads:
 * ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto, ValueInfoProto.
 *
 * Written by hand so the package needs no protobuf dependency. Field numbers are onnx.proto's.
 * The encoder collects chunks and concatenates once, so a 20 MB model costs one copy of its
 * weights; tensor data is always written as little-endian `raw_data`. The decoder accepts both
 * packed and unpacked repeated scalars (onnx.proto is proto2: writers may use either), and converts
 * `float_data`/`int32_data`/`int64_data` tensors to little-endian raw bytes.
 *
 * Nothing a decoded model carries is lost when it is written back (metadata_props, doc strings,
 * value_info, training info, functions, fields of later ONNX versions):
 * - every field a message does not model is kept, as its raw bytes, in `unknown`, and written
 *   again after the modelled ones (spreading a message into a new object carries them along);
 * - a decoded message whose modelled fields are still what was decoded (same values, same child
 *   objects, themselves unchanged) is written as the very bytes it was decoded from, so
 *   decode -> encode is byte-identical, and an edit re-encodes only the messages on its path.
 */
import { SpleenTrtError } from '../errors.js';

/** TensorProto.DataType values used here (onnx.proto numbering). */
export const TensorDataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  INT32: 6,
  INT64: 7,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
} as const;

/** Fields a message does not model, each as its raw protobuf bytes (tag and value), in file order. */
export interface UnknownFields {
  unknown?: Uint8Array[];
}

export interface TensorProto extends UnknownFields {
  name: string;
  /** onnx.proto TensorProto.DataType (1 = FLOAT, 7 = INT64, ...). */
  dataType: number;
  dims: number[];
  /** Element bytes, little-endian, C order. */
  rawData: Uint8Array;
}

export type AttributeProto = (
  | { name: string; type: 'FLOAT'; f: number }
  | { name: string; type: 'INT'; i: number }
  | { name: string; type: 'STRING'; s: string }
  | { name: string; type: 'TENSOR'; t: TensorProto }
  | { name: string; type: 'FLOATS'; floats: number[] }
  | { name: string; type: 'INTS'; ints: number[] }
  | { name: string; type: 'STRINGS'; strings: string[] }
  /** Any other attribute type (graphs, sparse tensors...): its type code; written back only as decoded. */
  | { name: string; type: 'OTHER'; typeCode: number }
) &
  UnknownFields;

export interface NodeProto extends UnknownFields {
  name: string;
  opType: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attributes: AttributeProto[];
}

/** A tensor value's declared type: element type plus dims (number, symbolic name, or unknown). */
export interface ValueInfoProto extends UnknownFields {
  name: string;
  elemType: number;
  /** null when the value has no shape at all. */
  dims: Array<number | string | null> | null;
}

export interface GraphProto extends UnknownFields {
  name: string;
  nodes: NodeProto[];
  initializers: TensorProto[];
  inputs: ValueInfoProto[];
  outputs: ValueInfoProto[];
  /** Declared types of intermediate values (onnx.proto value_info); absent when there are none. */
  valueInfo?: ValueInfoProto[];
}

export interface OperatorSetId extends UnknownFields {
  domain: string;
  version: number;
}

export interface ModelProto extends UnknownFields {
  irVersion: number;
  opsetImports: OperatorSetId[];
  producerName: string;
  producerVersion: string;
  docString: string;
  graph: GraphProto;
}

// ---------------------------------------------------------------- provenance

/** Where a decoded message came from: its bytes, and its modelled fields as decoded. */
interface Provenance {
  /** The message's bytes in the decoded file (a view, not a copy). */
  source: Uint8Array;
  /** Own enumerable properties as decoded; arrays copied one level (their elements by reference). */
  snapshot: Record<string, unknown>;
  /** Tensors whose raw bytes were converted from float_data/int32_data/int64_data: those bytes as decoded. */
  convertedRaw?: Uint8Array;
}

const provenance = new WeakMap<object, Provenance>();

function remember<T extends object>(message: T, source: Uint8Array, convertedRaw?: Uint8Array): T {
  const snapshot: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(message)) snapshot[key] = Array.isArray(value) ? [...value] : value;
  provenance.set(message, { source, snapshot, convertedRaw: convertedRaw?.slice() });
  return message;
}

function sameValue(a: unknown, b: unknown, cache: Map<object, boolean>): boolean {
  if (a === b) return typeof a !== 'object' || a === null || a instanceof Uint8Array || pristine(a, cache);
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((value, i) => sameValue(value, b[i], cache));
  }
  return false;
}

/**
 * True when a decoded message still holds what was decoded, all the way down: it may then be
 * written as its source bytes. Messages built in code have no provenance and are never pristine.
 */
function pristine(message: object, cache: Map<object, boolean>): boolean {
  const known = cache.get(message);
  if (known !== undefined) return known;
  const origin = provenance.get(message);
  let result = origin !== undefined;
  if (origin !== undefined) {
    const current = message as Record<string, unknown>;
    const keys = new Set([...Object.keys(current), ...Object.keys(origin.snapshot)]);
    for (const key of keys) {
      if (!sameValue(current[key], origin.snapshot[key], cache)) {
        result = false;
        break;
      }
    }
    // Bytes converted from float_data etc. are not in the source: compare their contents.
    const raw = current.rawData;
    if (result && origin.convertedRaw !== undefined && raw instanceof Uint8Array) {
      result = raw.length === origin.convertedRaw.length && raw.every((b, i) => b === origin.convertedRaw![i]);
    }
  }
  cache.set(message, result);
  return result;
}

// ---------------------------------------------------------------- encoding

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LENGTH = 2;
const WIRE_FIXED32 = 5;

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8', { fatal: false });
const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Appends protobuf fields. Small fields go into a growing scratch buffer; large byte blocks and
 * nested messages are appended as references, so nothing is copied until `finish()`.
 */
class ProtoWriter {
  private readonly chunks: Uint8Array[] = [];
  private scratch = new Uint8Array(256);
  private pos = 0;
  length = 0;

  private ensure(n: number): void {
    if (this.pos + n <= this.scratch.length) return;
    this.flush();
    if (n > this.scratch.length) this.scratch = new Uint8Array(Math.max(n, this.scratch.length * 2));
  }

  private flush(): void {
    if (this.pos === 0) return;
    this.chunks.push(this.scratch.subarray(0, this.pos));
    this.scratch = new Uint8Array(this.scratch.length);
    this.pos = 0;
  }

  private byte(b: number): void {
    this.scratch[this.pos++] = b;
    this.length++;
  }

  /** Unsigned varint of a non-negative safe integer, or a negative int64 as 10 bytes two's complement. */
  varint(value: number): void {
    this.ensure(10);
    if (value >= 0) {
      let v = value;
      while (v >= 0x80) {
        this.byte((v % 0x80) | 0x80);
        v = Math.floor(v / 0x80);
      }
      this.byte(v);
      return;
    }
    let v = BigInt.asUintN(64, BigInt(value));
    while (v >= 0x80n) {
      this.byte(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.byte(Number(v));
  }

  tag(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }

  int(field: number, value: number): void {
    if (!Number.isSafeInteger(value)) throw new RangeError(`Expected a safe integer for protobuf field ${field} but received ${value}`);
    this.tag(field, WIRE_VARINT);
    this.varint(value);
  }

  float(field: number, value: number): void {
    this.tag(field, WIRE_FIXED32);
    this.ensure(4);
    new DataView(this.scratch.buffer, this.scratch.byteOffset + this.pos, 4).setFloat32(0, value, true);
    this.pos += 4;
    this.length += 4;
  }

  bytes(field: number, data: Uint8Array): void {
    this.tag(field, WIRE_LENGTH);
    this.varint(data.length);
    if (data.length <= 64) {
      this.ensure(data.length);
      this.scratch.set(data, this.pos);
      this.pos += data.length;
    } else {
      this.flush();
      this.chunks.push(data);
    }
    this.length += data.length;
  }

  string(field: number, value: string): void {
    this.bytes(field, textEncoder.encode(value));
  }

  /** Appends bytes that are already protobuf fields (kept unknown fields). */
  raw(data: Uint8Array): void {
    this.flush();
    this.chunks.push(data);
    this.length += data.length;
  }

  message(field: number, write: (w: ProtoWriter) => void): void {
    const child = new ProtoWriter();
    write(child);
    child.flush();
    this.tag(field, WIRE_LENGTH);
    this.varint(child.length);
    this.flush();
    for (const c of child.chunks) this.chunks.push(c);
    this.length += child.length;
  }

  finish(): Uint8Array {
    this.flush();
    const out = new Uint8Array(this.length);
    let offset = 0;
    for (const c of this.chunks) {
      out.set(c, offset);
      offset += c.length;
    }
    return out;
  }
}

type Cache = Map<object, boolean>;

/**
 * Writes a sub-message: its decoded bytes when it is unchanged, else its modelled fields
 * followed by the fields it keeps as unknown.
 */
function writeMessage<T extends UnknownFields>(w: ProtoWriter, field: number, message: T, cache: Cache, write: (m: ProtoWriter, message: T, cache: Cache) => void): void {
  if (pristine(message, cache)) {
    w.bytes(field, provenance.get(message)!.source);
    return;
  }
  w.message(field, (m) => {
    write(m, message, cache);
    for (const u of message.unknown ?? []) m.raw(u);
  });
}

function writeTensor(w: ProtoWriter, t: TensorProto): void {
  for (const d of t.dims) w.int(1, d);
  w.int(2, t.dataType);
  w.string(8, t.name);
  w.bytes(9, t.rawData);
}

const ATTRIBUTE_TYPE_CODES = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7, STRINGS: 8 } as const;

function writeAttribute(w: ProtoWriter, a: AttributeProto, cache: Cache): void {
  w.string(1, a.name);
  switch (a.type) {
    case 'FLOAT':
      w.float(2, a.f);
      break;
    case 'INT':
      w.int(3, a.i);
      break;
    case 'STRING':
      w.string(4, a.s);
      break;
    case 'TENSOR':
      writeMessage(w, 5, a.t, cache, writeTensor);
      break;
    case 'FLOATS':
      for (const f of a.floats) w.float(7, f);
      break;
    case 'INTS':
      for (const i of a.ints) w.int(8, i);
      break;
    case 'STRINGS':
      for (const s of a.strings) w.string(9, s);
      break;
    case 'OTHER':
      throw new RangeError(`Expected an encodable attribute type for attribute ${a.name} but received ${a.typeCode}`);
  }
  w.int(20, ATTRIBUTE_TYPE_CODES[a.type]);
}

function writeNode(w: ProtoWriter, n: NodeProto, cache: Cache): void {
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  if (n.name) w.string(3, n.name);
  w.string(4, n.opType);
  for (const a of n.attributes) writeMessage(w, 5, a, cache, writeAttribute);
  if (n.domain) w.string(7, n.domain);
}

function writeValueInfo(w: ProtoWriter, v: ValueInfoProto): void {
  w.string(1, v.name);
  w.message(2, (type) =>
    type.message(1, (tensor) => {
      tensor.int(1, v.elemType);
      if (v.dims === null) return;
      tensor.message(2, (shape) => {
        for (const d of v.dims ?? []) {
          shape.message(1, (dim) => {
            if (typeof d === 'number') dim.int(1, d);
            else if (typeof d === 'string') dim.string(2, d);
          });
        }
      });
    }),
  );
}

function writeGraph(w: ProtoWriter, g: GraphProto, cache: Cache): void {
  for (const n of g.nodes) writeMessage(w, 1, n, cache, writeNode);
  w.string(2, g.name);
  for (const t of g.initializers) writeMessage(w, 5, t, cache, writeTensor);
  for (const v of g.inputs) writeMessage(w, 11, v, cache, writeValueInfo);
  for (const v of g.outputs) writeMessage(w, 12, v, cache, writeValueInfo);
  for (const v of g.valueInfo ?? []) writeMessage(w, 13, v, cache, writeValueInfo);
}

function writeOperatorSet(w: ProtoWriter, o: OperatorSetId): void {
  if (o.domain) w.string(1, o.domain);
  w.int(2, o.version);
}

/**
 * Serialises a ModelProto to ONNX bytes. A model from decodeModel comes back byte for byte where
 * it was not changed, with every field the codec does not model.
 */
export function encodeModel(model: ModelProto): Uint8Array {
  const cache: Cache = new Map();
  if (pristine(model, cache)) return provenance.get(model)!.source.slice();
  const w = new ProtoWriter();
  w.int(1, model.irVersion);
  if (model.producerName) w.string(2, model.producerName);
  if (model.producerVersion) w.string(3, model.producerVersion);
  if (model.docString) w.string(6, model.docString);
  writeMessage(w, 7, model.graph, cache, writeGraph);
  for (const o of model.opsetImports) writeMessage(w, 8, o, cache, writeOperatorSet);
  for (const u of model.unknown ?? []) w.raw(u);
  return w.finish();
}

/** Attribute constructors for node building. */
export const intsAttribute = (name: string, values: number[]): AttributeProto => ({ name, type: 'INTS', ints: values });
export const intAttribute = (name: string, value: number): AttributeProto => ({ name, type: 'INT', i: value });
export const stringAttribute = (name: string, value: string): AttributeProto => ({ name, type: 'STRING', s: value });

/** A FLOAT tensor whose raw_data is `data` in little-endian order (no copy on little-endian hosts). */
export function floatTensor(name: string, dims: readonly number[], data: Float32Array): TensorProto {
  const count = dims.reduce((a, b) => a * b, 1);
  if (count !== data.length) {
    throw new RangeError(`Expected ${count} elements for tensor ${name} but received ${data.length}`);
  }
  let raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (!LITTLE_ENDIAN_HOST) {
    raw = new Uint8Array(data.byteLength);
    const view = new DataView(raw.buffer);
    data.forEach((v, i) => view.setFloat32(i * 4, v, true));
  }
  return { name, dataType: TensorDataType.FLOAT, dims: [...dims], rawData: raw };
}

/** An INT64 tensor (shape operands of Reshape and the like). */
export function int64Tensor(name: string, dims: readonly number[], values: readonly number[]): TensorProto {
  const raw = new Uint8Array(values.length * 8);
  const view = new DataView(raw.buffer);
  values.forEach((v, i) => view.setBigInt64(i * 8, BigInt(v), true));
  return { name, dataType: TensorDataType.INT64, dims: [...dims], rawData: raw };
}

/** The float32 values of a FLOAT tensor (copied, host order). */
export function tensorToFloat32(t: TensorProto): Float32Array {
  if (t.dataType !== TensorDataType.FLOAT) throw new RangeError(`Expected a FLOAT tensor for ${t.name} but received data type ${t.dataType}`);
  const out = new Float32Array(t.rawData.length / 4);
  const view = new DataView(t.rawData.buffer, t.rawData.byteOffset, t.rawData.byteLength);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

/** The values of an INT64 tensor as numbers. */
export function tensorToInt64(t: TensorProto): number[] {
  if (t.dataType !== TensorDataType.INT64) throw new RangeError(`Expected an INT64 tensor for ${t.name} but received data type ${t.dataType}`);
  const view = new DataView(t.rawData.buffer, t.rawData.byteOffset, t.rawData.byteLength);
  const out: number[] = [];
  for (let i = 0; i < t.rawData.length / 8; i++) out.push(Number(view.getBigInt64(i * 8, true)));
  return out;
}

// ---------------------------------------------------------------- decoding

class ProtoReader {
  pos: number;
  /** Unmodelled fields met so far, as raw bytes (see `keep`). */
  readonly unknown: Uint8Array[] = [];
  constructor(
    readonly buf: Uint8Array,
    readonly begin = 0,
    readonly end = buf.length,
  ) {
    this.pos = begin;
  }

  /** This message's bytes. */
  get source(): Uint8Array {
    return this.buf.subarray(this.begin, this.end);
  }

  /** Skips the field whose tag started at `start`, keeping its bytes in `unknown`. */
  keep(start: number, wire: number): void {
    this.skip(wire);
    this.unknown.push(this.buf.subarray(start, this.pos));
  }

  /** Attaches the kept unknown fields and the provenance to a decoded message. */
  finish<T extends UnknownFields>(message: T, convertedRaw?: Uint8Array): T {
    if (this.unknown.length > 0) message.unknown = this.unknown;
    return remember(message, this.source, convertedRaw);
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  private fail(what: string): never {
    throw new SpleenTrtError('ERR_MODEL_INVALID', `Not a valid ONNX protobuf: ${what} at byte ${this.pos}`);
  }

  /** A varint as a JS number; int64 values beyond 2^53 lose precision, negatives decode correctly. */
  varint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.fail('truncated varint');
      const b = this.buf[this.pos++];
      if (i === 9 || (i >= 7 && scale * (b & 0x7f) >= 2 ** 53)) {
        // Long varints are negative int64s (10 bytes) or huge values: redo exactly with BigInt.
        return this.bigVarintFrom(this.pos - i - 1);
      }
      result += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return result;
      scale *= 128;
    }
    return this.fail('varint longer than 10 bytes');
  }

  private bigVarintFrom(start: number): number {
    this.pos = start;
    let v = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.fail('truncated varint');
      const b = this.buf[this.pos++];
      v |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return Number(BigInt.asIntN(64, v));
      shift += 7n;
    }
    return this.fail('varint longer than 10 bytes');
  }

  tag(): { field: number; wire: number } {
    const t = this.varint();
    const field = Math.floor(t / 8);
    if (field === 0) this.fail('field number 0');
    return { field, wire: t % 8 };
  }

  bytes(): Uint8Array {
    const n = this.varint();
    if (n < 0 || this.pos + n > this.end) this.fail('length-delimited field past the end');
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  sub(): ProtoReader {
    const n = this.varint();
    if (n < 0 || this.pos + n > this.end) this.fail('message past the end');
    const r = new ProtoReader(this.buf, this.pos, this.pos + n);
    this.pos += n;
    return r;
  }

  string(): string {
    return textDecoder.decode(this.bytes());
  }

  float(): number {
    if (this.pos + 4 > this.end) this.fail('truncated fixed32');
    const v = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 4).getFloat32(0, true);
    this.pos += 4;
    return v;
  }

  skip(wire: number): void {
    switch (wire) {
      case WIRE_VARINT:
        this.varint();
        return;
      case WIRE_FIXED64:
        this.pos += 8;
        break;
      case WIRE_LENGTH:
        this.bytes();
        return;
      case WIRE_FIXED32:
        this.pos += 4;
        break;
      default:
        this.fail(`unsupported wire type ${wire}`);
    }
    if (this.pos > this.end) this.fail('truncated field');
  }

  /** A repeated varint field, packed (one length-delimited run) or not (one value). */
  repeatedVarint(wire: number, into: number[]): void {
    if (wire === WIRE_LENGTH) {
      const r = this.sub();
      while (!r.done) into.push(r.varint());
    } else if (wire === WIRE_VARINT) {
      into.push(this.varint());
    } else {
      this.fail(`wire type ${wire} for a varint field`);
    }
  }

  repeatedFloat(wire: number, into: number[]): void {
    if (wire === WIRE_LENGTH) {
      const r = this.sub();
      while (!r.done) into.push(r.float());
    } else if (wire === WIRE_FIXED32) {
      into.push(this.float());
    } else {
      this.fail(`wire type ${wire} for a float field`);
    }
  }
}

function expectWire(r: ProtoReader, wire: number, expected: number, what: string): void {
  if (wire !== expected) {
    throw new SpleenTrtError('ERR_MODEL_INVALID', `Not a valid ONNX protobuf: ${what} has wire type ${wire} at byte ${r.pos}`);
  }
}

function readTensor(r: ProtoReader): TensorProto {
  const t: TensorProto = { name: '', dataType: 0, dims: [], rawData: new Uint8Array(0) };
  const floats: number[] = [];
  const ints: number[] = [];
  let intField = 0;
  let hasRaw = false;
  while (!r.done) {
    const start = r.pos;
    const { field, wire } = r.tag();
    if (field === 1) r.repeatedVarint(wire, t.dims);
    else if (field === 2) t.dataType = r.varint();
    else if (field === 4) r.repeatedFloat(wire, floats);
    else if (field === 5 || field === 7) {
      intField = field;
      r.repeatedVarint(wire, ints);
    } else if (field === 8) t.name = r.string();
    else if (field === 9) {
      expectWire(r, wire, WIRE_LENGTH, 'raw_data');
      t.rawData = r.bytes();
      hasRaw = true;
    } else r.keep(start, wire);
  }
  let converted = false;
  if (!hasRaw && floats.length > 0) {
    const raw = new Uint8Array(floats.length * 4);
    const view = new DataView(raw.buffer);
    floats.forEach((v, i) => view.setFloat32(i * 4, v, true));
    t.rawData = raw;
    converted = true;
  } else if (!hasRaw && ints.length > 0) {
    // int32_data also carries the small types (int8/16, uint8/16, bool, float16 bits).
    const size = t.dataType === TensorDataType.INT64 ? 8 : t.dataType === TensorDataType.INT32 ? 4 : 0;
    if (intField === 7 || size === 8) {
      const raw = new Uint8Array(ints.length * 8);
      const view = new DataView(raw.buffer);
      ints.forEach((v, i) => view.setBigInt64(i * 8, BigInt(v), true));
      t.rawData = raw;
      converted = true;
    } else if (size === 4) {
      const raw = new Uint8Array(ints.length * 4);
      const view = new DataView(raw.buffer);
      ints.forEach((v, i) => view.setInt32(i * 4, v, true));
      t.rawData = raw;
      converted = true;
    }
  }
  return r.finish(t, converted ? t.rawData : undefined);
}

const ATTRIBUTE_TYPE_NAMES: Record<number, AttributeProto['type']> = {
  1: 'FLOAT',
  2: 'INT',
  3: 'STRING',
  4: 'TENSOR',
  6: 'FLOATS',
  7: 'INTS',
  8: 'STRINGS',
};

function readAttribute(r: ProtoReader): AttributeProto {
  let name = '';
  let typeCode = 0;
  let f = 0;
  let i = 0;
  let s = '';
  let t: TensorProto | undefined;
  const floats: number[] = [];
  const ints: number[] = [];
  const strings: string[] = [];
  while (!r.done) {
    const start = r.pos;
    const { field, wire } = r.tag();
    if (field === 1) name = r.string();
    else if (field === 2) f = r.float();
    else if (field === 3) i = r.varint();
    else if (field === 4) s = r.string();
    else if (field === 5) t = readTensor(r.sub());
    else if (field === 7) r.repeatedFloat(wire, floats);
    else if (field === 8) r.repeatedVarint(wire, ints);
    else if (field === 9) strings.push(r.string());
    else if (field === 20) typeCode = r.varint();
    else r.keep(start, wire);
  }
  return r.finish(attributeOf(name, typeCode, f, i, s, t, floats, ints, strings));
}

function attributeOf(
  name: string,
  typeCode: number,
  f: number,
  i: number,
  s: string,
  t: TensorProto | undefined,
  floats: number[],
  ints: number[],
  strings: string[],
): AttributeProto {
  switch (ATTRIBUTE_TYPE_NAMES[typeCode]) {
    case 'FLOAT':
      return { name, type: 'FLOAT', f };
    case 'INT':
      return { name, type: 'INT', i };
    case 'STRING':
      return { name, type: 'STRING', s };
    case 'TENSOR':
      return { name, type: 'TENSOR', t: t ?? { name: '', dataType: 0, dims: [], rawData: new Uint8Array(0) } };
    case 'FLOATS':
      return { name, type: 'FLOATS', floats };
    case 'INTS':
      return { name, type: 'INTS', ints };
    case 'STRINGS':
      return { name, type: 'STRINGS', strings };
    default:
      return { name, type: 'OTHER', typeCode };
  }
}

function readNode(r: ProtoReader): NodeProto {
  const n: NodeProto = { name: '', opType: '', domain: '', inputs: [], outputs: [], attributes: [] };
  while (!r.done) {
    const start = r.pos;
    const { field, wire } = r.tag();
    if (field === 1) n.inputs.push(r.string());
    else if (field === 2) n.outputs.push(r.string());
    else if (field === 3) n.name = r.string();
    else if (field === 4) n.opType = r.string();
    else if (field === 5) n.attributes.push(readAttribute(r.sub()));
    else if (field === 7) n.domain = r.string();
    else r.keep(start, wire);
  }
  return r.finish(n);
}

function readDimension(r: ProtoReader): number | string | null {
  let value: number | string | null = null;
  while (!r.done) {
    const { field, wire } = r.tag();
    if (field === 1) value = r.varint();
    else if (field === 2) value = r.string();
    else r.skip(wire);
  }
  return value;
}

function readValueInfo(r: ProtoReader): ValueInfoProto {
  const v: ValueInfoProto = { name: '', elemType: 0, dims: null };
  while (!r.done) {
    const start = r.pos;
    const { field, wire } = r.tag();
    if (field === 1) v.name = r.string();
    else if (field === 2) {
      const type = r.sub();
      while (!type.done) {
        const tt = type.tag();
        if (tt.field !== 1) {
          type.skip(tt.wire);
          continue;
        }
        // TypeProto.tensor_type
        const tensor = type.sub();
        while (!tensor.done) {
          const ft = tensor.tag();
          if (ft.field === 1) v.elemType = tensor.varint();
          else if (ft.field === 2) {
            v.dims = [];
            const shape = tensor.sub();
            while (!shape.done) {
              const st = shape.tag();
              if (st.field === 1) v.dims.push(readDimension(shape.sub()));
              else shape.skip(st.wire);
            }
          } else tensor.skip(ft.wire);
        }
      }
    } else r.keep(start, wire);
  }
  return r.finish(v);
}

function readGraph(r: ProtoReader): GraphProto {
  const g: GraphProto = { name: '', nodes: [], initializers: [], inputs: [], outputs: [] };
  const valueInfo: ValueInfoProto[] = [];
  while (!r.done) {
    const start = r.pos;
    const { field, wire } = r.tag();
    if (field === 1) g.nodes.push(readNode(r.sub()));
    else if (field === 2) g.name = r.string();
    else if (field === 5) g.initializers.push(readTensor(r.sub()));
    else if (field === 11) g.inputs.push(readValueInfo(r.sub()));
    else if (field === 12) g.outputs.push(readValueInfo(r.sub()));
    else if (field === 13) valueInfo.push(readValueInfo(r.sub()));
    else r.keep(start, wire);
  }
  if (valueInfo.length > 0) g.valueInfo = valueInfo;
  return r.finish(g);
}

/**
 * Parses ONNX bytes. Initializer `rawData` views the input buffer (no copy). Throws
 * ERR_MODEL_INVALID for bytes that are not a ModelProto with a graph.
 */
export function decodeModel(bytes: Uint8Array): ModelProto {
  const r = new ProtoReader(bytes);
  const model: ModelProto = {
    irVersion: 0,
    opsetImports: [],
    producerName: '',
    producerVersion: '',
    docString: '',
    graph: { name: '', nodes: [], initializers: [], inputs: [], outputs: [] },
  };
  let hasGraph = false;
  while (!r.done) {
    const start = r.pos;
    const { field, wire } = r.tag();
    if (field === 1) {
      expectWire(r, wire, WIRE_VARINT, 'ir_version');
      model.irVersion = r.varint();
    } else if (field === 2) model.producerName = r.string();
    else if (field === 3) model.producerVersion = r.string();
    else if (field === 6) model.docString = r.string();
    else if (field === 7) {
      expectWire(r, wire, WIRE_LENGTH, 'graph');
      model.graph = readGraph(r.sub());
      hasGraph = true;
    } else if (field === 8) {
      const o: OperatorSetId = { domain: '', version: 0 };
      const s = r.sub();
      while (!s.done) {
        const opsetStart = s.pos;
        const t = s.tag();
        if (t.field === 1) o.domain = s.string();
        else if (t.field === 2) o.version = s.varint();
        else s.keep(opsetStart, t.wire);
      }
      model.opsetImports.push(s.finish(o));
    } else r.keep(start, wire);
  }
  if (!hasGraph || model.irVersion <= 0) {
    throw new SpleenTrtError('ERR_MODEL_INVALID', 'Not a valid ONNX model: no ir_version or no graph');
  }
  return r.finish(model);
}
