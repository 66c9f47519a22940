/**
 * Helpers for the service tests: small CT volumes, a real listening server on 127.0.0.1, and a
 * Segmenter double whose runs the test controls (to hold a job running, time it out, cancel it).
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { encodeNifti, makePhantom, SpleenTrtError, summarizeMask, type SegmentOptions, type SegmentResult, type Volume } from '../../../src/index.js';
import { gzipSync } from 'node:zlib';
import { createSegmentationServer, type CreateSegmentationServerOptions } from '../../../src/server/create-segmentation-server.js';
import type { SegmentationServiceHandle } from '../../../src/server/segmentation-plugin.js';
import type { SegmenterLike } from '../../../src/server/server-options.js';
import type { FastifyInstance } from 'fastify';

/** A small phantom CT: one 96^3 window after resampling, so a real segmentation takes about a second. */
export function smallPhantom(seed = 1) {
  return makePhantom({ seed, shape: [48, 48, 16], spacingMm: [2.5, 2.5, 5] });
}

export function smallCtBytes(seed = 1): Uint8Array {
  return gzipSync(encodeNifti(smallPhantom(seed).image, { datatype: 'int16' }), { level: 1 });
}

export interface TestServer {
  app: FastifyInstance;
  base: string;
  handle: SegmentationServiceHandle;
  dataDir: string;
  close(): Promise<void>;
}

export async function startServer(options: Partial<CreateSegmentationServerOptions> & { segmenter: SegmenterLike }): Promise<TestServer> {
  const dataDir = options.dataDir ?? (await mkdtemp(path.join(os.tmpdir(), 'spleen-serve-')));
  let handle: SegmentationServiceHandle | undefined;
  const app = createSegmentationServer({
    auth: false,
    logger: false,
    ...options,
    dataDir,
    onReady: (h) => {
      handle = h;
    },
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address() as { port: number };
  return {
    app,
    base: `http://127.0.0.1:${address.port}`,
    handle: handle!,
    dataDir,
    async close() {
      await app.close();
      if (!options.dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Job folders and upload leftovers in a data dir: what "nothing stored" is checked against. */
export async function storedFiles(dataDir: string): Promise<{ jobs: string[]; uploads: string[] }> {
  return {
    jobs: await readdir(path.join(dataDir, 'jobs')).catch(() => []),
    uploads: await readdir(path.join(dataDir, 'uploads')).catch(() => []),
  };
}

export async function postVolume(base: string, body: Uint8Array, query = '', headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${base}/v1/segmentations${query}`, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/octet-stream', ...headers },
  });
}

/** Polls a job until it is finished (bounded). */
export async function waitFinished(base: string, id: string, headers: Record<string, string> = {}, timeoutMs = 60_000): Promise<any> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const job = await (await fetch(`${base}/v1/segmentations/${id}`, { headers })).json();
    if (['done', 'failed', 'cancelled'].includes(job.state)) return job;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`job ${id} did not finish within ${timeoutMs} ms`);
}

/**
 * A Segmenter double: each run reports progress, then waits until `release()` (or `autoRelease`),
 * honours the AbortSignal as the real one does (ERR_ABORTED), and returns a threshold mask.
 */
export class ControlledSegmenter implements SegmenterLike {
  readonly info = { backend: 'onnxruntime' as const, model: { name: 'test-double', source: 'test', sha256: '0' } };
  running = 0;
  maxRunning = 0;
  runs = 0;
  aborted = 0;
  closed = false;
  autoRelease: boolean;
  #releases: (() => void)[] = [];
  #started: (() => void)[] = [];

  constructor(options: { autoRelease?: boolean } = {}) {
    this.autoRelease = options.autoRelease ?? true;
  }

  /** Resolves once a run has started (immediately if one is running). */
  started(): Promise<void> {
    if (this.running > 0) return Promise.resolve();
    return new Promise((resolve) => this.#started.push(resolve));
  }

  release(): void {
    for (const release of this.#releases.splice(0)) release();
  }

  async segment(volume: Volume, options: SegmentOptions = {}): Promise<SegmentResult> {
    this.runs++;
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    for (const s of this.#started.splice(0)) s();
    try {
      options.onProgress?.({ stage: 'network', windowsDone: 1, windowsTotal: 4 });
      if (!this.autoRelease) {
        await new Promise<void>((resolve, reject) => {
          this.#releases.push(resolve);
          const onAbort = (): void => {
            this.aborted++;
            reject(new SpleenTrtError('ERR_ABORTED', 'The operation was aborted'));
          };
          if (options.signal?.aborted) onAbort();
          options.signal?.addEventListener('abort', onAbort, { once: true });
        });
      }
      const data = Uint8Array.from(volume.data, (v) => (v > 20 && v < 80 ? 1 : 0));
      const mask = { data, shape: volume.shape, spacingMm: volume.spacingMm, affine: volume.affine };
      const zero = { preprocessMs: 1, computeMs: 1, h2dMs: 0, d2hMs: 0, stitchMs: 0, networkMs: 1, postprocessMs: 1, totalMs: 3 };
      return {
        mask,
        summary: summarizeMask(data, volume.shape, volume.affine),
        timings: zero,
        windowCount: 4,
        stages: options.keepStages
          ? { preprocessed: volume, logits: { ...volume, channels: 1 }, probability: { ...volume, data: Float32Array.from(data) } }
          : undefined,
      };
    } finally {
      this.running--;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
