import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { receiveUpload } from '../../../src/server/upload/receive-upload.js';

const LIMITS = { maxUploadBytes: 1000, uploadIdleTimeoutMs: 5000, maxVoxels: 1e9, maxDim: 4096 };

describe('receiveUpload', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('a body refused at its first chunk leaves no file once the promise has rejected', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'spleen-trt-upload-'));
    // The refusal comes with the first chunk, while the target's open() may still be in flight:
    // the partial file must be gone by the time the promise rejects, every time.
    for (let i = 0; i < 300; i++) {
      const target = path.join(dir, `upload-${i}.part`);
      const source = Readable.from([Buffer.alloc(LIMITS.maxUploadBytes + 1)]);
      await expect(receiveUpload(source, target, LIMITS)).rejects.toMatchObject({ code: 'ERR_PAYLOAD_TOO_LARGE' });
      expect(await readdir(dir)).toEqual([]);
    }
  });
});
