import { mkdtempSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { UnrecoverableError } from 'bullmq';
import { SpleenTrtError } from '../../../src/index.js';
import { checkJobData, isValidJobId } from '../../../src/queue/contract.js';
import { classifyJobFailure, parseFailedReason, toQueueError } from '../../../src/queue/process-segment-job.js';
import { parseRedisUrl } from '../../../src/queue/connection.js';
import { DirectoryStorage } from '../../../src/queue/shared-storage.js';
import { rejection } from '../../helpers/rejection.js';

describe('DirectoryStorage', () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'spleen-trt-storage-'));
  const storage = new DirectoryStorage(root);

  it('stores inputs by job id, with the extension their bytes call for', async () => {
    const gz = new Uint8Array([0x1f, 0x8b, 1, 2, 3]);
    expect(await storage.putInput('seg-a', gz)).toBe('inputs/seg-a.nii.gz');
    expect(await storage.putInput('seg-b', new Uint8Array([1, 2]))).toBe('inputs/seg-b.nii');
    expect(Array.from(await storage.getInput('inputs/seg-a.nii.gz'))).toEqual(Array.from(gz));
  });

  it('refuses keys outside its inputs and reports a missing input with ERR_FILE_NOT_FOUND', async () => {
    expect((await rejection(storage.getInput('../etc/passwd'))).code).toBe('ERR_FILE_NOT_FOUND');
    expect((await rejection(storage.getInput('inputs/../../x.nii'))).code).toBe('ERR_FILE_NOT_FOUND');
    expect((await rejection(storage.getInput('inputs/seg-missing.nii'))).code).toBe('ERR_FILE_NOT_FOUND');
    await expect(storage.putInput('../x', new Uint8Array(1))).rejects.toThrow(TypeError);
  });

  it('commits a result whole; a second run of the job keeps the first result and leaves nothing behind', async () => {
    const first = await storage.putResult('seg-r', { 'mask.nii': new Uint8Array([1, 1, 1]), 'summary.json': '{"run":1}' });
    expect(first).toEqual({ ref: 'results/seg-r', stored: true });
    const second = await storage.putResult('seg-r', { 'mask.nii': new Uint8Array([2, 2]), 'summary.json': '{"run":2}' });
    expect(second.stored).toBe(false);
    expect(Array.from((await storage.getResultFile('seg-r', 'mask.nii'))!)).toEqual([1, 1, 1]);
    expect(Buffer.from((await storage.getResultFile('seg-r', 'summary.json'))!).toString()).toBe('{"run":1}');
    expect(readdirSync(path.join(root, 'results')).sort()).toEqual(['seg-r']);
    expect(readdirSync(path.join(root, 'results', 'seg-r')).sort()).toEqual(['mask.nii', 'summary.json']);
    expect(await storage.getResultFile('seg-none', 'mask.nii')).toBeNull();
  });

  it('removes a job input and result', async () => {
    await storage.putInput('seg-x', new Uint8Array([1]));
    await storage.putResult('seg-x', { 'mask.nii': new Uint8Array([1]) });
    await storage.remove('seg-x');
    expect(await storage.getResultFile('seg-x', 'mask.nii')).toBeNull();
    expect((await rejection(storage.getInput('inputs/seg-x.nii'))).code).toBe('ERR_FILE_NOT_FOUND');
  });
});

describe('queue contract and failure mapping', () => {
  it('accepts only safe job ids', () => {
    expect(isValidJobId('seg-1234')).toBe(true);
    expect(isValidJobId('1234')).toBe(false); // BullMQ: all-digit ids are its own
    expect(isValidJobId('a:b')).toBe(false);
    expect(isValidJobId('../x')).toBe(false);
  });

  it('checks the job data version and fields', () => {
    expect(checkJobData({ v: 1, inputRef: 'inputs/a.nii', clientId: 'c', submittedAt: 1 }).ok).toBe(true);
    expect(checkJobData({ v: 2, inputRef: 'inputs/a.nii', clientId: 'c' })).toEqual({ ok: false, reason: 'job data version 2 is not 1' });
    expect(checkJobData(null).ok).toBe(false);
  });

  it('fails bad input once and retries the rest, with the code in the reason', () => {
    const bad = toQueueError(new SpleenTrtError('ERR_NIFTI_INVALID', 'not a NIfTI'));
    expect(bad).toBeInstanceOf(UnrecoverableError);
    expect(parseFailedReason(bad.message)).toEqual({ code: 'ERR_NIFTI_INVALID', message: 'not a NIfTI' });
    const oom = toQueueError(new SpleenTrtError('ERR_OUT_OF_MEMORY', 'no memory'));
    expect(oom).not.toBeInstanceOf(UnrecoverableError);
    expect(parseFailedReason(oom.message)?.code).toBe('ERR_OUT_OF_MEMORY');
    expect(classifyJobFailure(new TypeError('x'))).toBe('permanent');
    expect(classifyJobFailure(new Error('connection reset'))).toBe('transient');
    expect(parseFailedReason('job stalled more than allowable limit')?.code).toBe('ERR_WORKER_LOST');
    expect(parseFailedReason('job started more than allowable limit')?.code).toBe('ERR_WORKER_LOST');
    expect(parseFailedReason('something else')).toEqual({ code: 'ERR_UNEXPECTED', message: 'something else' });
  });

  it('parses Redis URLs', () => {
    expect(parseRedisUrl('redis://10.0.0.5:6380/2')).toEqual({ host: '10.0.0.5', port: 6380, db: 2 });
    expect(parseRedisUrl('rediss://u:p%40ss@h')).toEqual({ host: 'h', port: 6379, username: 'u', password: 'p@ss', tls: {} });
    expect(() => parseRedisUrl('http://h')).toThrow(TypeError);
    expect(() => parseRedisUrl('localhost:6379')).toThrow(TypeError);
  });
});
