/**
 * A minimal ZIP reader for PyTorch checkpoints (torch.save since 1.6 writes a zip through miniz:
 * entries STORED, 64-byte aligned, sizes in a data descriptor). Reads the central directory
 * (zip64 when the archive needs it), then stored or deflated entries, each checked against its
 * CRC-32. Everything is bounded by the input size; every malformation is ERR_MODEL_INVALID.
 */
import { crc32, inflateRawSync } from 'node:zlib';
import { SpleenTrtError } from '../errors.js';

/** One file of the archive as its central directory describes it. */
export interface ZipEntry {
  name: string;
  /** 0 = stored, 8 = deflate. */
  method: number;
  compressedSize: number;
  uncompressedSize: number;
  crc32: number;
  localHeaderOffset: number;
}

const EOCD_SIGNATURE = 0x06054b50;
const EOCD64_LOCATOR_SIGNATURE = 0x07064b50;
const EOCD64_SIGNATURE = 0x06064b50;
const CENTRAL_SIGNATURE = 0x02014b50;
const LOCAL_SIGNATURE = 0x04034b50;
const EOCD_SIZE = 22;
const CENTRAL_SIZE = 46;
const LOCAL_SIZE = 30;
const MAX_COMMENT = 0xffff;

function fail(what: string): never {
  throw new SpleenTrtError('ERR_MODEL_INVALID', `Not a valid zip archive (corrupt or truncated checkpoint?): ${what}`);
}

function u64(view: DataView, offset: number): number {
  const value = view.getBigUint64(offset, true);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) fail(`64-bit field at byte ${offset} is out of range`);
  return Number(value);
}

/** True when `bytes` starts like a zip archive (a local file header). */
export function looksLikeZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
}

const textDecoder = new TextDecoder('utf-8', { fatal: false });

/** Largest inflated size of one entry (the bundle's biggest tensor is a few MB). */
export const MAX_ZIP_ENTRY_BYTES = 512 * 1024 ** 2;
/** Largest inflated size of all entries together. */
export const MAX_ZIP_TOTAL_BYTES = 1024 ** 3;

/**
 * The archive's entries in central-directory order; throws ERR_MODEL_INVALID for anything malformed
 * and ERR_INPUT_TOO_LARGE when the declared sizes together exceed `maxTotalBytes`.
 */
export function readZipDirectory(bytes: Uint8Array, maxTotalBytes: number = MAX_ZIP_TOTAL_BYTES): ZipEntry[] {
  const entries = readEntries(bytes);
  let total = 0;
  for (const e of entries) total += e.method === 0 ? 0 : e.uncompressedSize;
  if (total > maxTotalBytes) {
    throw new SpleenTrtError('ERR_INPUT_TOO_LARGE', `zip entries declare ${total} inflated bytes, more than the limit of ${maxTotalBytes}`);
  }
  return entries;
}

function readEntries(bytes: Uint8Array): ZipEntry[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const size = bytes.length;
  if (size < EOCD_SIZE) fail(`only ${size} bytes`);
  // The end-of-central-directory record sits in the last 22 + 65535 bytes (its comment is variable).
  let eocd = -1;
  const lowest = Math.max(0, size - EOCD_SIZE - MAX_COMMENT);
  for (let p = size - EOCD_SIZE; p >= lowest; p--) {
    if (view.getUint32(p, true) === EOCD_SIGNATURE && p + EOCD_SIZE + view.getUint16(p + 20, true) <= size) {
      eocd = p;
      break;
    }
  }
  if (eocd < 0) fail('no end-of-central-directory record');
  let count = view.getUint16(eocd + 10, true);
  let dirSize = view.getUint32(eocd + 12, true);
  let dirOffset = view.getUint32(eocd + 16, true);
  if (count === 0xffff || dirSize === 0xffffffff || dirOffset === 0xffffffff) {
    const locator = eocd - 20;
    if (locator < 0 || view.getUint32(locator, true) !== EOCD64_LOCATOR_SIGNATURE) fail('zip64 fields without a zip64 locator');
    const eocd64 = u64(view, locator + 8);
    if (eocd64 + 56 > locator || view.getUint32(eocd64, true) !== EOCD64_SIGNATURE) fail('zip64 end record missing');
    count = u64(view, eocd64 + 32);
    dirSize = u64(view, eocd64 + 40);
    dirOffset = u64(view, eocd64 + 48);
  }
  if (dirOffset + dirSize > size) fail(`central directory (${dirSize} bytes at ${dirOffset}) past the end of the ${size}-byte file`);
  if (count * CENTRAL_SIZE > dirSize) fail(`${count} entries cannot fit a ${dirSize}-byte central directory`);

  const entries: ZipEntry[] = [];
  let p = dirOffset;
  const dirEnd = dirOffset + dirSize;
  for (let i = 0; i < count; i++) {
    if (p + CENTRAL_SIZE > dirEnd || view.getUint32(p, true) !== CENTRAL_SIGNATURE) fail(`central directory entry ${i} is damaged`);
    const flags = view.getUint16(p + 8, true);
    const method = view.getUint16(p + 10, true);
    const crc = view.getUint32(p + 16, true);
    let compressedSize = view.getUint32(p + 20, true);
    let uncompressedSize = view.getUint32(p + 24, true);
    const nameLength = view.getUint16(p + 28, true);
    const extraLength = view.getUint16(p + 30, true);
    const commentLength = view.getUint16(p + 32, true);
    let localHeaderOffset = view.getUint32(p + 42, true);
    const next = p + CENTRAL_SIZE + nameLength + extraLength + commentLength;
    if (next > dirEnd) fail(`central directory entry ${i} runs past the directory`);
    if (flags & 0x1) fail('encrypted entries are not supported');
    const name = textDecoder.decode(bytes.subarray(p + CENTRAL_SIZE, p + CENTRAL_SIZE + nameLength));
    // zip64 extended information: present values replace the 0xFFFFFFFF placeholders, in this order.
    let e = p + CENTRAL_SIZE + nameLength;
    const extraEnd = e + extraLength;
    while (e + 4 <= extraEnd) {
      const id = view.getUint16(e, true);
      const length = view.getUint16(e + 2, true);
      if (e + 4 + length > extraEnd) fail(`extra field of ${name} is damaged`);
      if (id === 0x0001) {
        let q = e + 4;
        const take = (): number => {
          if (q + 8 > e + 4 + length) fail(`zip64 extra field of ${name} is too short`);
          const v = u64(view, q);
          q += 8;
          return v;
        };
        if (uncompressedSize === 0xffffffff) uncompressedSize = take();
        if (compressedSize === 0xffffffff) compressedSize = take();
        if (localHeaderOffset === 0xffffffff) localHeaderOffset = take();
      }
      e += 4 + length;
    }
    if (localHeaderOffset + LOCAL_SIZE > size) fail(`entry ${name} starts past the end of the file`);
    entries.push({ name, method, compressedSize, uncompressedSize, crc32: crc, localHeaderOffset });
    p = next;
  }
  return entries;
}

/**
 * The bytes of one entry: a view into `bytes` when stored, inflated when deflated. Verifies the
 * CRC-32, so a flipped byte in a weight tensor is an error rather than a silently wrong model.
 */
export function readZipEntry(bytes: Uint8Array, entry: ZipEntry, maxBytes: number = MAX_ZIP_ENTRY_BYTES): Uint8Array {
  // Decided from the declared size before inflating: a 3.9 MB checkpoint may declare 3.9 GB of zeros.
  if (entry.method === 8 && entry.uncompressedSize > maxBytes) {
    throw new SpleenTrtError('ERR_INPUT_TOO_LARGE', `zip entry ${entry.name} declares ${entry.uncompressedSize} bytes, more than the limit of ${maxBytes}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const h = entry.localHeaderOffset;
  if (view.getUint32(h, true) !== LOCAL_SIGNATURE) fail(`local header of ${entry.name} is damaged`);
  // The local extra field differs from the central one (torch pads it to align the data).
  const start = h + LOCAL_SIZE + view.getUint16(h + 26, true) + view.getUint16(h + 28, true);
  const end = start + entry.compressedSize;
  if (end > bytes.length) fail(`entry ${entry.name} (${entry.compressedSize} bytes at ${start}) runs past the end of the file`);
  let data: Uint8Array;
  if (entry.method === 0) {
    if (entry.compressedSize !== entry.uncompressedSize) fail(`stored entry ${entry.name} has differing sizes`);
    data = bytes.subarray(start, end);
  } else if (entry.method === 8) {
    try {
      data = new Uint8Array(inflateRawSync(bytes.subarray(start, end), { maxOutputLength: Math.max(1, entry.uncompressedSize) }));
    } catch (error) {
      throw new SpleenTrtError('ERR_MODEL_INVALID', `Not a valid zip archive: entry ${entry.name} does not inflate (${(error as Error).message})`, {
        cause: error,
      });
    }
    if (data.length !== entry.uncompressedSize) fail(`entry ${entry.name} inflates to ${data.length} bytes, expected ${entry.uncompressedSize}`);
  } else {
    fail(`entry ${entry.name} uses compression method ${entry.method} (only stored and deflate are supported)`);
  }
  const actual = crc32(data) >>> 0;
  if (actual !== entry.crc32 >>> 0) {
    fail(`entry ${entry.name} fails its CRC-32 check (0x${actual.toString(16)} != 0x${(entry.crc32 >>> 0).toString(16)}): the file is corrupt`);
  }
  return data;
}
