/**
 * JPEG lossless (process 14), JPEG-LS and JPEG 2000 decoders from npm: jpeg-lossless-decoder-js
 * (pure JS) and the Cornerstone WASM builds of CharLS and OpenJPEG. The WASM modules load from the
 * packages' own files (no network, no install script) on first use and stay loaded.
 */
import { createRequire } from 'node:module';
import { SpleenTrtError } from '../../errors.js';
import { dicomInvalid } from '../dicom-errors.js';

const require = createRequire(import.meta.url);

/** The part of the embind decoders both WASM packages share. */
interface WasmDecoder {
  getEncodedBuffer(length: number): Uint8Array;
  decode(): void;
  getDecodedBuffer(): Uint8Array;
  getFrameInfo(): { width: number; height: number; bitsPerSample: number; componentCount: number };
  delete(): void;
}
type DecoderModule = Record<string, new () => WasmDecoder>;
/**
 * A WASM module, loaded on first use. A decode that fails inside it throws a C++ exception (a
 * bare pointer) that nothing frees, and a trap can leave its heap in any state: the fuzzer saw
 * "memory access out of bounds" after a few hundred failed JPEG-LS decodes. So a module that has
 * failed once is dropped, and the next frame gets a fresh instance.
 */
class WasmModule {
  #instance: Promise<DecoderModule> | undefined;
  constructor(private readonly specifier: string) {}
  get(): Promise<DecoderModule> {
    // OpenJPEG prints "[INFO] ..." lines per frame through Emscripten's print: silenced, they
    // would land in a service's stdout between its JSON log lines.
    const quiet = { print: () => undefined, printErr: () => undefined };
    this.#instance ??= (require(this.specifier) as (module: typeof quiet) => Promise<DecoderModule>)(quiet);
    return this.#instance;
  }
  discard(): void {
    this.#instance = undefined;
  }
}

const charls = new WasmModule('@cornerstonejs/codec-charls/decodewasmjs');
const openjpeg = new WasmModule('@cornerstonejs/codec-openjpeg/decodewasmjs');

/** What the decoded frame must be; anything else is a file that lies about its pixels. */
export interface FrameExpectation {
  rows: number;
  columns: number;
  bytesPerSample: number;
}

function checkDecoded(what: string, info: { width: number; height: number; componentCount: number }, expected: FrameExpectation): void {
  if (info.width !== expected.columns || info.height !== expected.rows || info.componentCount !== 1) {
    throw dicomInvalid(
      `${what} frame is ${info.width}x${info.height}x${info.componentCount} components, the header says ${expected.columns}x${expected.rows}x1`,
    );
  }
}

async function decodeWithWasm(what: string, module: WasmModule, className: string, frame: Uint8Array, expected: FrameExpectation): Promise<Uint8Array> {
  const Decoder = (await module.get())[className];
  let decoder: WasmDecoder | undefined;
  try {
    decoder = new Decoder();
    decoder.getEncodedBuffer(frame.length).set(frame);
    decoder.decode();
    checkDecoded(what, decoder.getFrameInfo(), expected);
    // The decoded buffer is a view into WASM memory: copy it before the decoder is freed.
    const samples = decoder.getDecodedBuffer().slice(0, expected.rows * expected.columns * expected.bytesPerSample);
    decoder.delete();
    return samples;
  } catch (error) {
    if (error instanceof SpleenTrtError) {
      decoder?.delete();
      throw error;
    }
    // Failed inside the module: nothing of this instance is trusted again (not even delete()).
    module.discard();
    throw dicomInvalid(`${what} frame does not decode: ${error instanceof Error ? error.message : `decoder error ${String(error)}`}`, error);
  }
}

/** Decodes a JPEG-LS lossless frame to little-endian samples. */
export function decodeJpegLs(frame: Uint8Array, expected: FrameExpectation): Promise<Uint8Array> {
  return decodeWithWasm('JPEG-LS', charls, 'JpegLSDecoder', frame, expected);
}

/** Decodes a JPEG 2000 (lossless) codestream to little-endian samples. */
export function decodeJpeg2000(frame: Uint8Array, expected: FrameExpectation): Promise<Uint8Array> {
  return decodeWithWasm('JPEG 2000', openjpeg, 'J2KDecoder', frame, expected);
}

interface LosslessDecoder {
  decode(buffer: ArrayBuffer, offset: number, length: number, numBytes: number): Uint8Array | Uint16Array;
  xDim: number;
  yDim: number;
  numComp: number;
}

/** Decodes a JPEG lossless (process 14) frame to little-endian samples. */
export async function decodeJpegLossless(frame: Uint8Array, expected: FrameExpectation): Promise<Uint8Array> {
  const { Decoder } = require('jpeg-lossless-decoder-js') as { Decoder: new () => LosslessDecoder };
  const decoder = new Decoder();
  let out: Uint8Array | Uint16Array;
  try {
    out = decoder.decode(frame.buffer as ArrayBuffer, frame.byteOffset, frame.length, expected.bytesPerSample);
  } catch (error) {
    throw dicomInvalid(`JPEG lossless frame does not decode: ${String(error)}`, error);
  }
  checkDecoded('JPEG lossless', { width: decoder.xDim, height: decoder.yDim, componentCount: decoder.numComp }, expected);
  // Uint16Array in platform order: little-endian on every platform Node runs on that we support.
  return new Uint8Array(out.buffer, out.byteOffset, expected.rows * expected.columns * expected.bytesPerSample);
}
