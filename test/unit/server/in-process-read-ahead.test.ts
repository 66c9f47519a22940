// The in-process runner reads the next queued job's input while the current job is in the network
// (read-ahead.ts's rule: on with TensorRT, off with the CPU backends), one volume ahead at most, a
// failed read reported at its job's turn.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SpleenTrtError, type SegmentOptions, type SegmentResult, type Volume } from '../../../src/index.js';
import { InProcessRunner } from '../../../src/server/in-process-runner.js';
import { JobStore } from '../../../src/server/job-store.js';
import type { JobRecord } from '../../../src/server/job-record.js';
import { readUploadedInput, type UploadedInput } from '../../../src/server/upload/read-upload.js';
import type { UploadKind } from '../../../src/server/upload/inspect-upload.js';
import { ControlledSegmenter, smallCtBytes, smallPhantom } from './server-test-helpers.js';

/** ControlledSegmenter as a given backend, noting which inputs had been read when each run started. */
class BackendSegmenter extends ControlledSegmenter {
  override readonly info;
  readsAtStart: string[][] = [];
  constructor(
    backend: 'tensorrt' | 'onnxruntime',
    private readonly reads: string[],
  ) {
    super({ autoRelease: false });
    this.info = { backend, model: { name: 'test-double', source: 'test', sha256: '0' } } as unknown as ControlledSegmenter['info'];
  }
  override segment(volume: Volume, options?: SegmentOptions): Promise<SegmentResult> {
    this.readsAtStart.push([...this.reads]);
    return super.segment(volume, options);
  }
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'spleen-read-ahead-'));
  await mkdir(path.join(dir, 'uploads'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** `failRead`: the index of the read that fails (a corrupt input), if any. */
async function openRunner(backend: 'tensorrt' | 'onnxruntime', failRead = -1) {
  const reads: string[] = [];
  const segmenter = new BackendSegmenter(backend, reads);
  const runner = await InProcessRunner.open({
    segmenter,
    store: new JobStore(path.join(dir, 'data')),
    maxQueue: 8,
    maxVoxels: 1e8,
    jobTimeoutMs: 60_000,
    retention: { maxAgeMs: 3_600_000, maxBytes: 1e9 },
    readInput: async (file: string, kind: UploadKind, limits): Promise<UploadedInput> => {
      const id = path.basename(path.dirname(file));
      reads.push(id);
      if (reads.length - 1 === failRead) throw new SpleenTrtError('ERR_NIFTI_INVALID', 'corrupt input');
      return readUploadedInput(file, kind, limits);
    },
  });
  return { runner, segmenter, reads };
}

let uploads = 0;
/** Submits a small CT as the routes do: the decoded volume given only for the first job. */
async function submit(runner: InProcessRunner, withVolume: boolean): Promise<JobRecord> {
  const file = path.join(dir, 'uploads', `u${uploads++}.nii.gz`);
  await writeFile(file, smallCtBytes());
  const phantom = smallPhantom();
  const { shape, spacingMm } = phantom.image;
  return runner.submit({
    upload: {
      kind: 'nifti', gzip: true, shape, path: file, bytes: 1, receiveMs: 0,
      header: { pixdim: [1, spacingMm[0], spacingMm[1], spacingMm[2], 0, 0, 0, 0] } as never,
    },
    volume: withVolume ? phantom.image : undefined,
    probability: false,
    validateMs: 0,
  });
}

async function settle(runner: InProcessRunner, segmenter: ControlledSegmenter, ids: string[]): Promise<JobRecord[]> {
  segmenter.autoRelease = true;
  segmenter.release();
  return Promise.all(ids.map(async (id) => (await runner.wait(id, 30_000))!));
}

describe('in-process runner read-ahead', () => {
  it('with TensorRT reads the next job\'s input before the current job enters the network, and only once', async () => {
    const { runner, segmenter, reads } = await openRunner('tensorrt');
    const a = await submit(runner, true);
    await segmenter.started();
    // b waits with its input still on disk (the routes keep a decoded volume only for the head of an empty queue).
    const b = await submit(runner, false);
    const c = await submit(runner, false);
    // Read ahead at once: a is in the network.
    expect(reads).toEqual([b.id]);
    segmenter.release();
    await new Promise<void>((resolve) => {
      const poll = (): void => void (segmenter.readsAtStart.length >= 2 ? resolve() : setTimeout(poll, 5));
      poll();
    });
    // When b entered the network, c's read had started (and b's was the one read ahead).
    expect(segmenter.readsAtStart[1]).toEqual([b.id, c.id]);
    const records = await settle(runner, segmenter, [a.id, b.id, c.id]);
    expect(records.map((r) => r.state)).toEqual(['done', 'done', 'done']);
    expect(reads).toEqual([b.id, c.id]);
    await runner.close(1000);
  });

  it('with onnxruntime reads each input only when its job starts', async () => {
    const { runner, segmenter, reads } = await openRunner('onnxruntime');
    const a = await submit(runner, true);
    await segmenter.started();
    const b = await submit(runner, false);
    const c = await submit(runner, false);
    expect(reads).toEqual([]);
    const records = await settle(runner, segmenter, [a.id, b.id, c.id]);
    expect(records.map((r) => r.state)).toEqual(['done', 'done', 'done']);
    expect(segmenter.readsAtStart).toEqual([[], [b.id], [b.id, c.id]]);
    await runner.close(1000);
  });

  it('reports a failed read ahead at its job\'s turn; the jobs around it run', async () => {
    // The first read is b's, ahead of its turn.
    const { runner, segmenter, reads } = await openRunner('tensorrt', 0);
    const a = await submit(runner, true);
    await segmenter.started();
    const b = await submit(runner, false);
    const c = await submit(runner, false);
    const records = await settle(runner, segmenter, [a.id, b.id, c.id]);
    expect(records.map((r) => r.state)).toEqual(['done', 'failed', 'done']);
    expect(records[1].error?.code).toBe('ERR_NIFTI_INVALID');
    expect(reads).toEqual([b.id, c.id]);
    await runner.close(1000);
  });
});
