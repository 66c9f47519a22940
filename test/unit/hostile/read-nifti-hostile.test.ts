/**
 * Findings 3, 4 and 7 on readNifti: non-regular files refused without blocking, sizes decided from
 * the header before inflating, implausible geometry refused with a code, file-system failures coded.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { readNifti } from '../../../src/nifti/index.js';
import { encodeNifti1Header } from '../../../src/nifti/nifti-header.js';
import { baseHeader, fileFor } from '../nifti/fixtures.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'spleen-trt-hostile-nifti-'));
const isRoot = process.getuid?.() === 0;

describe('readNifti on hostile files', () => {
  it('refuses a FIFO at once with ERR_FILE_UNREADABLE (it used to wait forever for a writer)', async () => {
    const fifo = path.join(tmp, 'f.nii.gz');
    execFileSync('mkfifo', [fifo]);
    const started = Date.now();
    await expect(readNifti(fifo)).rejects.toMatchObject({ code: 'ERR_FILE_UNREADABLE', message: expect.stringMatching(/FIFO/) });
    expect(Date.now() - started).toBeLessThan(5000);
  }, 10_000);

  it('refuses a device (/dev/zero) with ERR_FILE_UNREADABLE', async () => {
    await expect(readNifti('/dev/zero')).rejects.toMatchObject({ code: 'ERR_FILE_UNREADABLE' });
  });

  it('codes a symlink loop, a NUL in the path and (not as root) an unreadable file', async () => {
    const loop = path.join(tmp, 'loop.nii');
    symlinkSync(loop, loop);
    await expect(readNifti(loop)).rejects.toMatchObject({ code: 'ERR_FILE_UNREADABLE', message: expect.stringMatching(/symbolic link loop/) });
    await expect(readNifti(path.join(tmp, 'a\0b.nii'))).rejects.toMatchObject({ code: 'ERR_FILE_UNREADABLE' });
    if (!isRoot) {
      const locked = path.join(tmp, 'locked.nii');
      writeFileSync(locked, fileFor(baseHeader()));
      chmodSync(locked, 0);
      await expect(readNifti(locked)).rejects.toMatchObject({ code: 'ERR_FILE_UNREADABLE', message: expect.stringMatching(/permission/) });
    }
  });

  it('refuses a gzip whose header declares more bytes than allowed before inflating any voxel (float64 1024x1024x512)', async () => {
    // Only the header is real: if the reader inflated the declared 4 GiB first, this would be slow and huge.
    const header = { ...baseHeader(), dim: [3, 1024, 1024, 512, 1, 1, 1, 1], datatype: 64, bitpix: 64 };
    const bytes = new Uint8Array(352 + 1024);
    bytes.set(encodeNifti1Header(header));
    await expect(readNifti(gzipSync(bytes))).rejects.toMatchObject({ code: 'ERR_INPUT_TOO_LARGE' });
    await expect(readNifti(gzipSync(bytes), { maxVoxels: 2 ** 30, maxBytes: 2 ** 30 })).rejects.toMatchObject({ code: 'ERR_INPUT_TOO_LARGE', message: expect.stringMatching(/bytes exceed/) });
  });

  it('refuses geometry no scanner writes with ERR_NIFTI_INVALID (rank-deficient sform, 1e30 entries, pixdim 1e6)', async () => {
    // pixdim agrees with the sform's column norms, so MONAI's consistency repair keeps the sform.
    const sform = (rows: number[][]) => {
      const norms = [0, 1, 2].map((c) => Math.hypot(rows[0][c], rows[1][c], rows[2][c]));
      return fileFor({ ...baseHeader(), pixdim: [1, ...norms, 1, 1, 1, 1], sform_code: 1, srow_x: rows[0], srow_y: rows[1], srow_z: rows[2] });
    };
    const singular = sform([[1, 1, 0, 0], [1, 1 + 1e-9, 0, 0], [0, 0, 1, 0]]);
    await expect(readNifti(singular)).rejects.toMatchObject({ code: 'ERR_NIFTI_INVALID', message: expect.stringMatching(/full rank|voxel size/) });
    const huge = sform([[1e30, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]]);
    await expect(readNifti(huge)).rejects.toMatchObject({ code: 'ERR_NIFTI_INVALID', message: expect.stringMatching(/voxel size/) });
    const pixdim = fileFor({ ...baseHeader(), pixdim: [1, 1e6, 1, 1, 1, 1, 1, 1] });
    await expect(readNifti(pixdim)).rejects.toMatchObject({ code: 'ERR_NIFTI_INVALID', message: expect.stringMatching(/voxel size 1000000 mm/) });
    // The same plausible once the range allows it (configurable).
    await expect(readNifti(pixdim, { maxSpacingMm: 1e7 })).resolves.toBeDefined();
    // An ordinary file still reads.
    await expect(readNifti(fileFor(baseHeader()))).resolves.toBeDefined();
  });
});
