/**
 * Streams an upload body to a file under the data dir's uploads/, counting bytes as they pass:
 * fastify's bodyLimit does not apply to stream parsers, so the limit is enforced here. The first
 * bytes are inspected as they arrive (inspect-upload.ts), so a body that is not a volume, or
 * declares one over the limits, is refused before the rest is read. A body that stops arriving
 * (idle timeout) or is cut off fails too, and on every failure the partial file is removed.
 */
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ServiceError } from '../service-error.js';
import { INSPECT_BYTES, inspectUpload, type UploadHeader, type VolumeLimits } from './inspect-upload.js';

export interface ReceiveLimits extends VolumeLimits {
  maxUploadBytes: number;
  uploadIdleTimeoutMs: number;
}

export type ReceivedUpload = UploadHeader & {
  /** Where the body now lies (under uploads/). */
  path: string;
  bytes: number;
  receiveMs: number;
};

/** Counts bytes, enforces the size limit and inspects the start of the stream before passing it on. */
class UploadGate extends Transform {
  bytes = 0;
  header: UploadHeader | undefined;
  readonly #limits: ReceiveLimits;
  #prefix: Buffer[] = [];
  #prefixBytes = 0;

  constructor(limits: ReceiveLimits) {
    super();
    this.#limits = limits;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.#limits.maxUploadBytes) {
      callback(new ServiceError('ERR_PAYLOAD_TOO_LARGE', `The upload exceeds the limit of ${this.#limits.maxUploadBytes} bytes`));
      return;
    }
    if (this.header) {
      callback(null, chunk);
      return;
    }
    this.#prefix.push(chunk);
    this.#prefixBytes += chunk.length;
    if (this.#prefixBytes < INSPECT_BYTES) {
      callback();
      return;
    }
    this.#inspect(callback);
  }

  override _flush(callback: TransformCallback): void {
    if (this.header) callback();
    else if (this.#prefixBytes === 0) callback(new ServiceError('ERR_BAD_REQUEST', 'The request has an empty body; send a .nii, .nii.gz or a zipped DICOM series'));
    else this.#inspect(callback);
  }

  #inspect(callback: TransformCallback): void {
    const prefix = Buffer.concat(this.#prefix);
    this.#prefix = [];
    inspectUpload(prefix, this.#limits).then(
      (header) => {
        this.header = header;
        callback(null, prefix);
      },
      (error: unknown) => callback(error as Error),
    );
  }
}

/** Fails the pipeline when no byte arrives for `ms`. */
function idleWatch(ms: number): Transform & { stop(): void } {
  let timer: NodeJS.Timeout | undefined;
  const watch = new Transform({
    transform(chunk, _encoding, callback) {
      arm();
      callback(null, chunk);
    },
  }) as Transform & { stop(): void };
  const arm = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => watch.destroy(new ServiceError('ERR_UPLOAD_TIMEOUT', `No upload data arrived for ${ms} ms`)), ms);
  };
  watch.stop = () => clearTimeout(timer);
  arm();
  return watch;
}

/**
 * The source is piped in by hand rather than through pipeline(): on a refusal the source (the
 * request) must stay open so that the refusal can still be sent; it is drained instead, and the
 * error handler closes the connection after the answer.
 */
export async function receiveUpload(source: Readable, target: string, limits: ReceiveLimits): Promise<ReceivedUpload> {
  const t0 = performance.now();
  const gate = new UploadGate(limits);
  const idle = idleWatch(limits.uploadIdleTimeoutMs);
  let ended = false;
  const cutOff = (cause?: unknown): void => {
    if (ended) return;
    // A multipart file stream reports its own size limit as an error of the stream.
    const tooLarge = (cause as { code?: string } | undefined)?.code === 'FST_REQ_FILE_TOO_LARGE';
    idle.destroy(
      tooLarge
        ? new ServiceError('ERR_PAYLOAD_TOO_LARGE', `The upload exceeds the limit of ${limits.maxUploadBytes} bytes`)
        : new ServiceError('ERR_UPLOAD_INCOMPLETE', 'The upload was cut off before its end', { cause }),
    );
  };
  const onEnd = (): void => {
    ended = true;
  };
  const onClose = (): void => cutOff();
  source.on('end', onEnd);
  source.on('error', cutOff);
  source.on('close', onClose);
  source.pipe(idle);
  const sink = createWriteStream(target, { flags: 'wx', mode: 0o600 });
  try {
    await pipeline(idle, gate, sink);
  } catch (error) {
    source.unpipe(idle);
    source.resume();
    // pipeline() rejects at the first error, possibly while the file's open() is still in flight:
    // removing it then would leave the file that the open creates after. The destroyed sink
    // closes only after its open has settled, so wait for that before removing.
    // (Not events.once: it rejects on the sink's 'error', which pipeline's destroy emits first.)
    if (!sink.closed) await new Promise<void>((resolve) => sink.once('close', () => resolve()));
    await rm(target, { force: true });
    throw error;
  } finally {
    idle.stop();
    source.off('end', onEnd);
    source.off('close', onClose);
    // Keep a listener: a late socket error must not become an uncaught exception.
    source.off('error', cutOff);
    source.on('error', () => undefined);
  }
  // _flush always inspects, so a completed pipeline has a header.
  return { ...gate.header!, path: target, bytes: gate.bytes, receiveMs: performance.now() - t0 };
}
