/**
 * Where volumes live while Redis carries only references: storage every node can reach, keyed by
 * job id. `JobStorage` is the whole contract; `DirectoryStorage` implements it on a directory that
 * every node mounts (NFS, CephFS, a k8s ReadWriteMany volume). An S3-compatible store implements
 * the same four methods (README, "Scale-out"): PutObject is atomic per object, and a result is
 * committed by writing its manifest (summary.json) last.
 *
 * Results are committed whole: the files are written into a private staging directory and the
 * directory is renamed into place. A job that runs twice (a worker killed after writing, its job
 * picked up again) cannot leave a mixed result: the second rename fails because the first result
 * is there, and the second run's files are dropped (they are equal: same input, same model).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { SpleenTrtError } from '../errors.js';
import { writeFileAtomic } from '../write-file-atomic.js';
import { isValidJobId } from './contract.js';

/** The files of a stored result. */
export const RESULT_FILES = {
  mask: 'mask.nii.gz',
  preview: 'preview.png',
  probability: 'probability.nii.gz',
  summary: 'summary.json',
  /** DICOM jobs: the SEG, the mask surface and the CT read (for the viewer). */
  seg: 'seg.dcm',
  stl: 'mask.stl',
  ct: 'ct.nii.gz',
} as const;

/** Storage for job inputs and results, keyed by job id. */
export interface JobStorage {
  /** Stores a job's input (.nii, .nii.gz or a zipped DICOM series) whole; returns its key for the job data. */
  putInput(jobId: string, bytes: Uint8Array): Promise<string>;
  /** The input stored under `ref`; ERR_FILE_NOT_FOUND when it is not there. */
  getInput(ref: string): Promise<Uint8Array>;
  /**
   * Commits a job's result files at once. `stored` is false when a complete result of the same
   * job was already there: it is kept and `files` are dropped.
   */
  putResult(jobId: string, files: Readonly<Record<string, Uint8Array | string>>): Promise<{ ref: string; stored: boolean }>;
  /** One file of a job's committed result, or null when there is none (yet). */
  getResultFile(jobId: string, name: string): Promise<Uint8Array | null>;
  /** Deletes a job's input (it has finished and will not run again). */
  removeInput(jobId: string): Promise<void>;
  /** Deletes a job's input and result (a cancelled or expired job). */
  remove(jobId: string): Promise<void>;
}

const INPUT_REF = /^inputs\/([A-Za-z0-9][A-Za-z0-9_-]*)\.(nii|nii\.gz|zip)$/;
/** The extensions an input is stored under, by content. */
const INPUT_EXTENSIONS = ['.nii', '.nii.gz', '.zip'] as const;
const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

function checkJobId(jobId: string): void {
  if (!isValidJobId(jobId)) throw new TypeError(`Expected a job id (letters, digits, _ and -) for jobId but received ${JSON.stringify(jobId)}`);
}

function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** A zip archive (a zipped DICOM series) starts with a local file header. */
export function isZipInput(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
}

function inputExtension(bytes: Uint8Array): (typeof INPUT_EXTENSIONS)[number] {
  if (isZipInput(bytes)) return '.zip';
  return isGzip(bytes) ? '.nii.gz' : '.nii';
}

function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/**
 * `<root>/inputs/<jobId>.{nii,nii.gz,zip}` and `<root>/results/<jobId>/{mask.nii.gz,preview.png,summary.json}`.
 * @example
 * const storage = new DirectoryStorage('/mnt/spleen-jobs');
 */
export class DirectoryStorage implements JobStorage {
  readonly root: string;

  constructor(root: string) {
    if (typeof root !== 'string' || root === '') throw new TypeError(`Expected a directory path for root but received ${JSON.stringify(root)}`);
    this.root = path.resolve(root);
  }

  async putInput(jobId: string, bytes: Uint8Array): Promise<string> {
    checkJobId(jobId);
    const ref = `inputs/${jobId}${inputExtension(bytes)}`;
    await writeFileAtomic(path.join(this.root, ref), bytes);
    return ref;
  }

  async getInput(ref: string): Promise<Uint8Array> {
    // The ref comes out of Redis: never let it name a file outside the inputs directory.
    if (typeof ref !== 'string' || !INPUT_REF.test(ref)) {
      throw new SpleenTrtError('ERR_FILE_NOT_FOUND', `Not an input key of this storage: ${JSON.stringify(ref)}`);
    }
    try {
      return await readFile(path.join(this.root, ref));
    } catch (error) {
      if (isMissing(error)) throw new SpleenTrtError('ERR_FILE_NOT_FOUND', `The job's input ${ref} is not in shared storage ${this.root}`, { cause: error });
      throw error;
    }
  }

  #resultDir(jobId: string): string {
    return path.join(this.root, 'results', jobId);
  }

  async putResult(jobId: string, files: Readonly<Record<string, Uint8Array | string>>): Promise<{ ref: string; stored: boolean }> {
    checkJobId(jobId);
    const ref = `results/${jobId}`;
    const target = this.#resultDir(jobId);
    const staging = path.join(this.root, 'results', `.staging-${jobId}-${process.pid}-${randomBytes(6).toString('hex')}`);
    await mkdir(staging, { recursive: true });
    try {
      for (const [name, data] of Object.entries(files)) {
        if (!FILE_NAME.test(name)) throw new TypeError(`Expected a plain file name for a result file but received ${JSON.stringify(name)}`);
        await writeFileAtomic(path.join(staging, name), data);
      }
      try {
        await rename(staging, target);
        return { ref, stored: true };
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        // rename(2) onto a non-empty directory: another run of this job committed first.
        if (code === 'ENOTEMPTY' || code === 'EEXIST') return { ref, stored: false };
        throw error;
      }
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  }

  /** The local path of a result file (this storage is a directory; the service streams from it). */
  resultPath(jobId: string, name: string): string {
    checkJobId(jobId);
    if (!FILE_NAME.test(name)) throw new TypeError(`Expected a plain file name but received ${JSON.stringify(name)}`);
    return path.join(this.#resultDir(jobId), name);
  }

  async getResultFile(jobId: string, name: string): Promise<Uint8Array | null> {
    checkJobId(jobId);
    if (!FILE_NAME.test(name)) return null;
    try {
      return await readFile(path.join(this.#resultDir(jobId), name));
    } catch (error) {
      if (isMissing(error)) return null;
      throw error;
    }
  }

  async removeInput(jobId: string): Promise<void> {
    checkJobId(jobId);
    for (const extension of INPUT_EXTENSIONS) await rm(path.join(this.root, 'inputs', `${jobId}${extension}`), { force: true });
  }

  async remove(jobId: string): Promise<void> {
    await this.removeInput(jobId);
    await rm(this.#resultDir(jobId), { recursive: true, force: true });
  }
}
