import { describe, expect, it } from 'vitest';
import { isSpleenTrtError } from '../../../src/errors.js';
import { PickleCallable, PickleGlobal, PickleObject, unpickle } from '../../../src/model/pickle-reader.js';

/** Assembles a pickle from opcodes (single chars or bytes) and raw byte groups. */
function bytes(...parts: Array<string | number | number[]>): Uint8Array {
  const out: number[] = [];
  for (const p of parts) {
    if (typeof p === 'number') out.push(p);
    else if (Array.isArray(p)) out.push(...p);
    else out.push(...new TextEncoder().encode(p));
  }
  return Uint8Array.from(out);
}
const u32 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
const unicode = (s: string): Array<string | number | number[]> => ['X', u32(new TextEncoder().encode(s).length), s];

function message(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (isSpleenTrtError(error, 'ERR_MODEL_INVALID')) return error.message;
    throw error;
  }
  throw new Error('expected ERR_MODEL_INVALID');
}

describe('unpickle', () => {
  it('decodes the protocol-2 opcodes torch.save emits into plain values', () => {
    // {'a': (1, 300, -2, 70000), 'b': [None, True, False, 0.5], 'c': <memo of the tuple>, 'd': -129 (LONG1)}
    const p = bytes(
      0x80, 2, '}', 'q', 0, '(',
      ...unicode('a'), '(', 'K', 1, 'M', [0x2c, 0x01], 'J', u32(-2 >>> 0), 'J', u32(70000), 't', 'q', 1,
      ...unicode('b'), ']', 'q', 2, '(', 'N', 0x88, 0x89, 'G', [0x3f, 0xe0, 0, 0, 0, 0, 0, 0], 'e',
      ...unicode('c'), 'h', 1,
      ...unicode('d'), 0x8a, 2, [0x7f, 0xff],
      'u', '.',
    );
    const value = unpickle(p) as Map<string, unknown>;
    expect(value).toBeInstanceOf(Map);
    expect([...value.keys()]).toEqual(['a', 'b', 'c', 'd']);
    expect(value.get('a')).toEqual([1, 300, -2, 70000]);
    expect(value.get('b')).toEqual([null, true, false, 0.5]);
    expect(value.get('c')).toBe(value.get('a'));
    expect(value.get('d')).toBe(-129);
  });

  it('handles TUPLE1-3, EMPTY_TUPLE, SETITEM, APPEND, LONG_BINPUT/GET, SHORT_BINSTRING and huge LONG1 values', () => {
    const p = bytes(
      0x80, 2, ']', '(',
      'K', 7, 0x85,
      'K', 1, 'K', 2, 0x86,
      'K', 1, 'K', 2, 'K', 3, 0x87,
      ')',
      'e',
      'r', u32(1000),
      '}', ...unicode('k'), 'U', 3, 'abc', 's', 'a',
      'j', u32(1000), 'a',
      0x8a, 9, [0, 0, 0, 0, 0, 0, 0, 0, 1],
      'a', '.',
    );
    const list = unpickle(p) as unknown[];
    expect(list.slice(0, 4)).toEqual([[7], [1, 2], [1, 2, 3], []]);
    expect(list[4]).toEqual(new Map([['k', 'abc']]));
    expect(list[5]).toBe(list); // the list itself, stored with LONG_BINPUT 1000
    expect(list[6]).toBe(2n ** 64n);
  });

  it('decodes protocol-4 framing, SHORT_BINUNICODE, STACK_GLOBAL and MEMOIZE', () => {
    const p = bytes(0x80, 4, 0x95, [20, 0, 0, 0, 0, 0, 0, 0], 0x8c, 5, 'torch', 0x94, 0x8c, 11, 'FloatStorag', 0x93, 0x94, 'h', 1, 0x86, '.');
    const [a, b] = unpickle(p) as PickleGlobal[];
    expect(a).toBe(b);
    expect(a).toBeInstanceOf(PickleGlobal);
    expect(a.qualifiedName).toBe('torch.FloatStorag');
  });

  it('calls only the JS stand-ins the caller whitelists; other globals stay inert objects', () => {
    const seen: string[] = [];
    const findClass = (module: string, name: string) => {
      seen.push(`${module}.${name}`);
      return name === 'double' ? new PickleCallable('m.double', (args) => (args[0] as number) * 2) : new PickleGlobal(module, name);
    };
    const p = bytes(0x80, 2, '(', 'c', 'm\ndouble\n', 'K', 21, 0x85, 'R', 'c', 'os\nsystem\n', ...unicode('rm -rf /'), 0x85, 'R', '}', 'b', 't', '.');
    const [doubled, inert] = unpickle(p, { findClass }) as [number, PickleObject];
    expect(doubled).toBe(42);
    expect(inert).toBeInstanceOf(PickleObject);
    expect(inert.global.qualifiedName).toBe('os.system');
    expect(inert.args).toEqual(['rm -rf /']);
    expect(inert.state).toEqual(new Map());
    expect(seen).toEqual(['m.double', 'os.system']);
  });

  it('resolves BINPERSID through persistentLoad', () => {
    const p = bytes(0x80, 2, '(', ...unicode('storage'), ...unicode('7'), 't', 'Q', '.');
    expect(unpickle(p, { persistentLoad: (pid) => `loaded ${(pid as string[])[1]}` })).toBe('loaded 7');
    expect(message(() => unpickle(p))).toMatch(/persistent id but no storage/);
  });

  it('fails clearly on malformed streams, with the byte offset', () => {
    expect(message(() => unpickle(bytes(0x80, 2, 'h', 3, '.'), { source: 'x.pkl' }))).toMatch(/^Cannot read x\.pkl: memo entry 3 was never stored at byte 4/);
    expect(message(() => unpickle(bytes(0x80, 2, 't', '.')))).toMatch(/no MARK/);
    expect(message(() => unpickle(bytes(0x80, 2, 0x85, '.')))).toMatch(/stack underflow/);
    expect(message(() => unpickle(bytes(0x80, 2, 'K', 1, 'K', 2, '.')))).toMatch(/STOP with 2 values/);
    expect(message(() => unpickle(bytes(0x80, 2, 'X', u32(100), 'ab')))).toMatch(/unexpected end of data/);
    expect(message(() => unpickle(bytes(0x80, 2, 'K', 1)))).toMatch(/no STOP opcode/);
    expect(message(() => unpickle(bytes(0x80, 2, 'K', 1, 's', '.')))).toMatch(/stack underflow|not a dict/);
    expect(message(() => unpickle(bytes(0x80, 9, '.')))).toMatch(/protocol newer than 5/);
    expect(message(() => unpickle(bytes(0x80, 2, 'c', 'no newline')))).toMatch(/unterminated text line/);
    expect(message(() => unpickle(bytes(0x80, 2, 0xfe, '.')))).toMatch(/unsupported pickle opcode 0xfe at byte 2/);
    expect(message(() => unpickle(bytes(0x80, 2, 'X', u32(2), [0xc3, 0x28], '.')))).toMatch(/invalid UTF-8/);
  });
});
