/**
 * A minimal, non-executing pickle virtual machine: the opcodes `torch.save` emits (protocol 2,
 * plus the protocol 3-5 ones a `pickle_protocol=` argument may add), values as plain JS data.
 *
 * Nothing in the stream is ever executed. GLOBAL names go to the caller's `findClass`, which
 * returns a JS stand-in (a `PickleCallable` the caller wrote, for the few functions it whitelists)
 * or an inert `PickleGlobal`; calling an inert global yields an inert `PickleObject` that records
 * what the file asked for, so the caller can refuse it by name if it ends up where data was
 * expected. Each opcode consumes at least one byte, so the loop is bounded by the input length.
 */
import { SpleenTrtError } from '../errors.js';

/** A global the caller did not whitelist, e.g. `numpy.core.multiarray scalar`. */
export class PickleGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}

  get qualifiedName(): string {
    return `${this.module}.${this.name}`;
  }
}

/** What REDUCE/NEWOBJ/BUILD of an inert global produced: never constructed, only described. */
export class PickleObject {
  /** BUILD state, when the stream set one. */
  state: unknown = undefined;
  constructor(
    readonly global: PickleGlobal,
    readonly args: readonly unknown[],
  ) {}
}

/** A whitelisted function, implemented by the caller in JS. */
export class PickleCallable {
  constructor(
    readonly qualifiedName: string,
    readonly call: (args: readonly unknown[]) => unknown,
  ) {}
}

export interface UnpickleOptions {
  /** Resolves GLOBAL module/name to a stand-in; default: every global is inert. */
  findClass?: (module: string, name: string) => PickleCallable | PickleGlobal;
  /** Resolves a BINPERSID id (torch: ('storage', type, key, location, numel)). */
  persistentLoad?: (pid: unknown) => unknown;
  /** Name used in error messages, e.g. `archive/data.pkl`. */
  source?: string;
  /**
   * Most values on the stack plus marks at once (default 2^20), and most opcodes run (default
   * 2^24): a pickle of 256 MiB of EMPTY_LIST or MARK otherwise grows the heap until V8 aborts.
   * Past either: ERR_INPUT_TOO_LARGE. A real checkpoint's pickle runs a few thousand.
   */
  maxStack?: number;
  maxOps?: number;
}

export const DEFAULT_PICKLE_LIMITS = { maxStack: 1 << 20, maxOps: 1 << 24 } as const;

/** Dicts (and OrderedDicts) keep insertion order, as Python's do. */
export type PickleDict = Map<unknown, unknown>;

const MARK = Symbol('mark');

const textDecoder = new TextDecoder('utf-8', { fatal: true });
const latin1 = new TextDecoder('latin1');

/** Runs the pickle in `bytes` and returns the object that STOP leaves on the stack. */
export function unpickle(bytes: Uint8Array, options: UnpickleOptions = {}): unknown {
  const source = options.source ?? 'pickle';
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const findClass = options.findClass ?? ((module: string, name: string) => new PickleGlobal(module, name));
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();
  let pos = 0;

  const fail = (what: string): never => {
    throw new SpleenTrtError('ERR_MODEL_INVALID', `Cannot read ${source}: ${what} at byte ${pos} (truncated or corrupt checkpoint?)`);
  };
  const need = (n: number): void => {
    if (n < 0 || pos + n > bytes.length) fail(`unexpected end of data (needs ${n} more bytes)`);
  };
  const u8 = (): number => {
    need(1);
    return bytes[pos++];
  };
  const u16 = (): number => {
    need(2);
    const v = view.getUint16(pos, true);
    pos += 2;
    return v;
  };
  const u32 = (): number => {
    need(4);
    const v = view.getUint32(pos, true);
    pos += 4;
    return v;
  };
  const u64 = (): number => {
    need(8);
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(bytes.length)) fail('length field larger than the data');
    return Number(v);
  };
  const take = (n: number): Uint8Array => {
    need(n);
    const out = bytes.subarray(pos, pos + n);
    pos += n;
    return out;
  };
  const utf8 = (n: number): string => {
    const data = take(n);
    try {
      return textDecoder.decode(data);
    } catch {
      return fail('invalid UTF-8 in a string');
    }
  };
  const line = (): string => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) fail('unterminated text line');
    const s = latin1.decode(bytes.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const pop = (): unknown => {
    if (stack.length === 0 || (marks.length > 0 && stack.length <= marks[marks.length - 1])) fail('stack underflow');
    return stack.pop();
  };
  const top = (): unknown => {
    if (stack.length === 0) fail('stack underflow');
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const m = marks.pop();
    if (m === undefined) return fail('no MARK on the stack');
    return stack.splice(m);
  };
  const signedLittleEndian = (data: Uint8Array): number | bigint => {
    if (data.length === 0) return 0;
    let v = 0n;
    for (let i = data.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(data[i]);
    if (data[data.length - 1] & 0x80) v -= 1n << BigInt(8 * data.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };
  const setItems = (target: unknown, items: unknown[]): void => {
    if (items.length % 2 !== 0) fail('odd number of items for SETITEMS');
    if (target instanceof Map) {
      for (let i = 0; i < items.length; i += 2) target.set(items[i], items[i + 1]);
    } else if (target instanceof PickleObject) {
      // An inert object's dict items: kept as its state for diagnostics only.
    } else {
      fail('SETITEM(S) on something that is not a dict');
    }
  };
  const appendItems = (target: unknown, items: unknown[]): void => {
    if (Array.isArray(target)) for (const item of items) target.push(item);
    else if (!(target instanceof PickleObject)) fail('APPEND(S) on something that is not a list');
  };
  const call = (callable: unknown, args: unknown): unknown => {
    if (!Array.isArray(args)) fail('REDUCE arguments are not a tuple');
    const list = args as unknown[];
    if (callable instanceof PickleCallable) return callable.call(list);
    if (callable instanceof PickleGlobal) return new PickleObject(callable, list);
    return fail('REDUCE of something that is not a global');
  };

  const maxStack = options.maxStack ?? DEFAULT_PICKLE_LIMITS.maxStack;
  const maxOps = options.maxOps ?? DEFAULT_PICKLE_LIMITS.maxOps;
  let ops = 0;
  for (;;) {
    if (pos >= bytes.length) fail('no STOP opcode (the pickle is truncated)');
    if (++ops > maxOps || stack.length + marks.length > maxStack || memo.size > maxStack) {
      throw new SpleenTrtError(
        'ERR_INPUT_TOO_LARGE',
        `${source}: more than ${ops > maxOps ? `${maxOps} opcodes` : `${maxStack} values held`} (a pickle bomb, or not a model checkpoint)`,
      );
    }
    const op = bytes[pos++];
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) fail('pickle protocol newer than 5');
        break;
      case 0x95: // FRAME (protocol 4): a length hint only
        u64();
        break;
      case 0x2e: // STOP
        if (stack.length !== 1 || marks.length > 0) fail(`STOP with ${stack.length} values on the stack`);
        return stack[0];
      case 0x28: // MARK
        marks.push(stack.length);
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push([]);
        break;
      case 0x8f: // EMPTY_SET
        stack.push(new Set());
        break;
      case 0x74: // TUPLE
        stack.push(popMark());
        break;
      case 0x85: // TUPLE1
        stack.push([pop()]);
        break;
      case 0x86: { // TUPLE2
        const b = pop();
        const a = pop();
        stack.push([a, b]);
        break;
      }
      case 0x87: { // TUPLE3
        const c = pop();
        const b = pop();
        const a = pop();
        stack.push([a, b, c]);
        break;
      }
      case 0x6c: // LIST
        stack.push(popMark());
        break;
      case 0x64: { // DICT
        const items = popMark();
        const d = new Map();
        setItems(d, items);
        stack.push(d);
        break;
      }
      case 0x91: // FROZENSET
        stack.push(new Set(popMark()));
        break;
      case 0x90: { // ADDITEMS
        const items = popMark();
        const s = top();
        if (!(s instanceof Set)) fail('ADDITEMS on something that is not a set');
        for (const item of items) (s as Set<unknown>).add(item);
        break;
      }
      case 0x58: // BINUNICODE
        stack.push(utf8(u32()));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(utf8(u8()));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(utf8(u64()));
        break;
      case 0x55: // SHORT_BINSTRING (Python 2 str: bytes, decoded as latin-1 like pickle's default)
        stack.push(latin1.decode(take(u8())));
        break;
      case 0x54: // BINSTRING (a signed length; negative ones fail in take)
        stack.push(latin1.decode(take(u32() | 0)));
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(take(u8()));
        break;
      case 0x42: // BINBYTES
        stack.push(take(u32()));
        break;
      case 0x8e: // BINBYTES8
        stack.push(take(u64()));
        break;
      case 0x4a: // BININT
        need(4);
        stack.push(view.getInt32(pos, true));
        pos += 4;
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: // LONG1
        stack.push(signedLittleEndian(take(u8())));
        break;
      case 0x8b: { // LONG4
        const n = u32();
        if (n > 64) fail(`a ${n}-byte integer`);
        stack.push(signedLittleEndian(take(n)));
        break;
      }
      case 0x47: // BINFLOAT (big-endian double)
        need(8);
        stack.push(view.getFloat64(pos, false));
        pos += 8;
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x73: { // SETITEM
        const value = pop();
        const key = pop();
        setItems(top(), [key, value]);
        break;
      }
      case 0x75: { // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x61: { // APPEND
        const value = pop();
        appendItems(top(), [value]);
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark();
        appendItems(top(), items);
        break;
      }
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
      case 0x6a: { // LONG_BINGET
        const index = op === 0x68 ? u8() : u32();
        if (!memo.has(index)) fail(`memo entry ${index} was never stored`);
        stack.push(memo.get(index));
        break;
      }
      case 0x63: { // GLOBAL
        const module = line();
        const name = line();
        stack.push(findClass(module, name));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL without two strings');
        stack.push(findClass(module as string, name as string));
        break;
      }
      case 0x52: { // REDUCE
        const args = pop();
        const callable = pop();
        stack.push(call(callable, args));
        break;
      }
      case 0x81: { // NEWOBJ
        const args = pop();
        const cls = pop();
        stack.push(call(cls, args));
        break;
      }
      case 0x62: { // BUILD
        const state = pop();
        const target = top();
        if (target instanceof PickleObject) target.state = state;
        // OrderedDict and tensors: torch sets no state a reader needs (e.g. an empty `_metadata`).
        break;
      }
      case 0x51: { // BINPERSID
        const pid = pop();
        if (!options.persistentLoad) fail('a persistent id but no storage to resolve it');
        stack.push(options.persistentLoad!(pid));
        break;
      }
      case 0x30: // POP
        if (marks.length > 0 && stack.length === marks[marks.length - 1]) marks.pop();
        else pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      default:
        pos--;
        fail(`unsupported pickle opcode 0x${op.toString(16).padStart(2, '0')}`);
    }
  }
}
