/**
 * One gzip member compressed a piece at a time on the libuv thread pool, as pigz does it: every
 * piece but the last is a raw deflate stream ended by a sync flush (byte-aligned, no final block),
 * the last one is finished, so their concatenation is a single deflate stream; the trailer holds
 * the CRC-32 and length of the whole. Any gzip reader reads the result as usual.
 *
 * Pieces are produced on this thread (into a few reused buffers) while earlier pieces compress on
 * other threads: a large image is compressed on several cores and never held twice in memory.
 * On the project's 2-core VM a 94 MB float32 mask took 131-156 ms through zlib.gzip and 93-104 ms
 * in 4 pieces, before counting the encoding that now overlaps it.
 *
 * A source may compress runs of its pieces itself (deflateRange: the addon's label-map encoder,
 * run-deflate.ts): those ranges, one per core, go to the thread pool at once, and only the ranges
 * it declines are filled and deflated by zlib. Every segment ends byte-aligned (sync flush), so
 * the file is still one gzip member; the CRC-32s of the parts are joined with crc32_combine.
 */
import os from 'node:os';
import zlib from 'node:zlib';
import { gzipCodec } from '../native/gzip-codec.js';
import { runDeflate, type DeflatedSegment } from '../native/run-deflate.js';

/** What gzipPieces compresses: `count` pieces, piece i of `length(i)` bytes written by `fill`. */
export interface PieceSource {
  count: number;
  length(index: number): number;
  /** Writes piece `index` into the start of `into` (a reused buffer of at least length(index) bytes). */
  fill(index: number, into: Uint8Array): void;
  /**
   * Optional: pieces [first, end) (never piece 0) compressed by the source itself, off this thread,
   * as one raw DEFLATE segment ending in a sync flush (the final block when `last`), with the CRC-32
   * and length of their bytes; null (or a promise of null) leaves them to zlib. Deterministic: the
   * same pieces always give the same answer.
   */
  deflateRange?(first: number, end: number, last: boolean): Promise<DeflatedSegment | null> | null;
}

/** gzip's header as zlib writes it: no name, no time, XFL from the level, OS 3 (Unix). */
function gzipHeader(level: number): Uint8Array {
  const extraFlags = level === 9 ? 2 : level < 2 ? 4 : 0;
  return Uint8Array.of(0x1f, 0x8b, 8, 0, 0, 0, 0, 0, extraFlags, 3);
}

function deflatePiece(piece: Uint8Array, level: number, last: boolean): Promise<Uint8Array> {
  const finishFlush = last ? zlib.constants.Z_FINISH : zlib.constants.Z_SYNC_FLUSH;
  return new Promise((resolve, reject) => {
    zlib.deflateRaw(piece, { level, finishFlush }, (error, result) => (error ? reject(error) : resolve(result)));
  });
}

/** Compressed parts in stream order, the CRC-32 of their bytes (from 0) and its length. */
interface Part {
  chunks: Uint8Array[];
  crc: number;
  length: number;
}

/**
 * Pieces [first, end) through zlib: filled here while earlier pieces compress on the pool, at most
 * `inFlight` at once, each in its own buffer, reused once its piece is done.
 */
async function zlibPart(source: PieceSource, first: number, end: number, level: number, last: boolean, inFlight: number): Promise<Part> {
  let maxLength = 0;
  for (let i = first; i < end; i++) maxLength = Math.max(maxLength, source.length(i));
  const free: Uint8Array[] = [];
  const pending: Promise<Uint8Array>[] = [];
  const chunks: Uint8Array[] = [];
  // The CRC-32 runs on the thread pool where the addon has libdeflate (a 94 MB mask's took 20 ms
  // of this thread through zlib.crc32), chained piece after piece; else here, as before.
  const codec = gzipCodec();
  let crcChain: Promise<number> = Promise.resolve(0);
  let crc = 0;
  let length = 0;
  try {
    for (let i = first; i < end; i++) {
      if (pending.length >= inFlight) chunks.push(await pending.shift()!);
      const buffer = free.pop() ?? new Uint8Array(maxLength);
      const piece = buffer.subarray(0, source.length(i));
      source.fill(i, piece);
      let crcDone: Promise<unknown> = crcChain;
      if (codec !== null) crcDone = crcChain = crcChain.then((previous) => codec.crc32(previous, piece));
      else crc = zlib.crc32(piece, crc);
      length += piece.length;
      pending.push(
        // The buffer is reused only once both its deflate and its CRC are done.
        Promise.all([deflatePiece(piece, level, last && i === end - 1), crcDone]).then(([result]) => {
          free.push(buffer);
          return result;
        }),
      );
    }
    for (const piece of pending.splice(0)) chunks.push(await piece);
    if (codec !== null) crc = await crcChain;
  } finally {
    // After a failure, let the pieces still on the thread pool finish before their buffers go.
    await Promise.allSettled([...pending, crcChain]);
  }
  return { chunks, crc, length };
}

/** [first, end) ranges of pieces 1.. in `parts` runs of about equal bytes. */
function splitRanges(source: PieceSource, parts: number): [number, number][] {
  let total = 0;
  for (let i = 1; i < source.count; i++) total += source.length(i);
  const ranges: [number, number][] = [];
  let first = 1;
  let sum = 0;
  for (let i = 1; i < source.count; i++) {
    sum += source.length(i);
    if (sum * parts >= total * (ranges.length + 1) || i === source.count - 1) {
      ranges.push([first, i + 1]);
      first = i + 1;
    }
  }
  return ranges;
}

/** libuv's thread pool size: more segments than its threads would only queue. */
function threadPoolSize(): number {
  const size = Number(process.env.UV_THREADPOOL_SIZE);
  return Number.isInteger(size) && size >= 1 ? size : 4;
}

/**
 * The parts of a source with deflateRange: its own segments where it takes them, zlib elsewhere.
 * One segment per core, at most one per pool thread: each segment reads its slices of every
 * source row, so more and thinner segments would mean more passes over the labels.
 */
async function mixedParts(source: PieceSource, level: number, inFlight: number): Promise<Part[]> {
  const ranges = splitRanges(source, Math.min(inFlight, threadPoolSize()));
  const own = ranges.map(async ([first, end]) => source.deflateRange!(first, end, end === source.count));
  // Whatever happens here, every segment on the pool settles before this returns.
  const settled = Promise.allSettled(own);
  try {
    const parts: Part[] = [await zlibPart(source, 0, 1, level, source.count === 1, inFlight)];
    const segments = await Promise.all(own);
    for (let r = 0; r < ranges.length; r++) {
      const segment = segments[r];
      const [first, end] = ranges[r];
      parts.push(segment ? { chunks: [segment.deflated], crc: segment.crc, length: segment.length } : await zlibPart(source, first, end, level, end === source.count, inFlight));
    }
    return parts;
  } finally {
    await settled;
  }
}

/**
 * The gzip file of the pieces' concatenation. At most `inFlight` pieces are compressing at once
 * (default: one per core, at least 2), each in its own buffer, reused once its piece is done.
 */
export async function gzipPieces(source: PieceSource, level: number, inFlight = Math.max(2, os.availableParallelism())): Promise<Uint8Array> {
  if (source.count === 0) return zlib.gzipSync(new Uint8Array(0), { level });
  const combiner = runDeflate();
  const parts = source.deflateRange !== undefined && combiner !== null && source.count > 1
    ? await mixedParts(source, level, inFlight)
    : [await zlibPart(source, 0, source.count, level, true, inFlight)];
  let crc = parts[0].crc;
  let size = parts[0].length;
  for (const part of parts.slice(1)) {
    crc = combiner!.crc32Combine(crc, part.crc, part.length);
    size += part.length;
  }
  const trailer = new Uint8Array(8);
  const view = new DataView(trailer.buffer);
  view.setUint32(0, crc >>> 0, true);
  // ISIZE is the length modulo 2^32 (RFC 1952).
  view.setUint32(4, size % 2 ** 32, true);
  return Buffer.concat([gzipHeader(level), ...parts.flatMap((part) => part.chunks), trailer]);
}
