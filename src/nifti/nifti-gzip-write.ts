/**
 * The .nii.gz writer's compression: libdeflate in one call off the JS thread where the addon has
 * it, else zlib in parallel pieces (gzip-pieces.ts). Either way the file is one gzip member that
 * any gzip reader reads; the inflated bytes are the same, the compressed ones differ.
 *
 * libdeflate has no sync flush, so its pieces cannot be joined into one deflate stream; one
 * libdeflate call on the whole image beat zlib's pieces on two cores anyway (README, Benchmark).
 * The image is encoded into one buffer a piece at a time, yielding to the event loop between
 * pieces, so no single step blocks it for long.
 */
import { gzipCodec } from '../native/gzip-codec.js';
import { gzipPieces, type PieceSource } from './gzip-pieces.js';

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** All pieces of `source` concatenated, filled one at a time with the event loop free in between. */
export async function joinPieces(source: PieceSource): Promise<Uint8Array> {
  let total = 0;
  for (let i = 0; i < source.count; i++) total += source.length(i);
  const out = new Uint8Array(total);
  let offset = 0;
  for (let i = 0; i < source.count; i++) {
    const length = source.length(i);
    source.fill(i, out.subarray(offset, offset + length));
    offset += length;
    if (i + 1 < source.count) await yieldToEventLoop();
  }
  return out;
}

/** One gzip member of the pieces' concatenation at zlib `level` (1..9). */
export async function gzipNiftiPieces(source: PieceSource, level: number): Promise<Uint8Array> {
  const codec = gzipCodec();
  if (codec === null) return gzipPieces(source, level);
  return codec.gzip(await joinPieces(source), level);
}
