import { describe, expect, it } from 'vitest';
import { isSpleenTrtError } from '../../../src/errors.js';
import { looksLikeZip, readZipDirectory, readZipEntry } from '../../../src/model/zip-reader.js';
import { fixtureBytes } from './import-fixtures.js';
import { writeZip } from './torch-writer.js';

function message(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (isSpleenTrtError(error, 'ERR_MODEL_INVALID')) return error.message;
    throw error;
  }
  throw new Error('expected ERR_MODEL_INVALID');
}

const text = (s: string) => new TextEncoder().encode(s);
const FILES = [
  { name: 'a/data.pkl', data: text('pickle bytes') },
  { name: 'a/data/0', data: Uint8Array.from({ length: 1000 }, (_, i) => i % 7), deflate: true },
  { name: 'a/empty', data: new Uint8Array(0) },
];

describe('zip reader', () => {
  it("lists torch's own archive: aligned stored entries with a data descriptor flag", () => {
    const bytes = fixtureBytes('ckpt-mixed.pt');
    expect(looksLikeZip(bytes)).toBe(true);
    const entries = readZipDirectory(bytes);
    // 148 tensors, but the two biases share one storage: 147 storages + data.pkl + version.
    expect(entries.map((e) => e.name).filter((n) => n.startsWith('ckpt-mixed/data/'))).toHaveLength(147);
    expect(entries[0].name).toBe('ckpt-mixed/data.pkl');
    expect(entries.every((e) => e.method === 0)).toBe(true);
    expect(new TextDecoder().decode(readZipEntry(bytes, entries.find((e) => e.name.endsWith('/version'))!)).trim()).toBe('3');
  });

  for (const zip64 of [false, true]) {
    it(`reads stored, deflated and empty entries${zip64 ? ' through zip64 records' : ''}`, () => {
      const bytes = writeZip(FILES, { zip64 });
      const entries = readZipDirectory(bytes);
      expect(entries.map((e) => [e.name, e.method, e.uncompressedSize])).toEqual([
        ['a/data.pkl', 0, 12],
        ['a/data/0', 8, 1000],
        ['a/empty', 0, 0],
      ]);
      for (const [i, e] of entries.entries()) expect(readZipEntry(bytes, e)).toEqual(FILES[i].data);
    });
  }

  it('finds the end record behind an archive comment', () => {
    const bytes = writeZip(FILES);
    const comment = text('a comment of some length');
    const withComment = new Uint8Array(bytes.length + comment.length);
    withComment.set(bytes);
    withComment.set(comment, bytes.length);
    new DataView(withComment.buffer).setUint16(bytes.length - 2, comment.length, true);
    expect(readZipDirectory(withComment)).toHaveLength(3);
  });

  it('rejects damage with a message saying what is wrong', () => {
    const bytes = writeZip(FILES);
    expect(message(() => readZipDirectory(bytes.subarray(0, 10)))).toMatch(/only 10 bytes/);
    expect(message(() => readZipDirectory(bytes.subarray(0, bytes.length - 5)))).toMatch(/no end-of-central-directory record/);
    const entries = readZipDirectory(bytes);
    const view = new DataView(bytes.buffer);
    const dataStart = (offset: number) => offset + 30 + view.getUint16(offset + 26, true) + view.getUint16(offset + 28, true);
    const flipped = bytes.slice();
    flipped[dataStart(entries[0].localHeaderOffset) + 3] ^= 1;
    expect(message(() => readZipEntry(flipped, entries[0]))).toMatch(/fails its CRC-32 check/);
    const badDeflate = bytes.slice();
    const e1 = entries[1];
    const start = dataStart(e1.localHeaderOffset);
    badDeflate.fill(0xff, start, start + 4);
    expect(message(() => readZipEntry(badDeflate, e1))).toMatch(/does not inflate|CRC-32|inflates to/);
    // Central directory offset pointing past the end.
    const badOffset = bytes.slice();
    new DataView(badOffset.buffer).setUint32(badOffset.length - 6, bytes.length, true);
    expect(message(() => readZipDirectory(badOffset))).toMatch(/past the end/);
    // An absurd entry count cannot make the reader loop: it is bounded by the directory size.
    const badCount = bytes.slice();
    new DataView(badCount.buffer).setUint16(badCount.length - 12, 60000, true);
    expect(message(() => readZipDirectory(badCount))).toMatch(/60000 entries cannot fit/);
  });
});
