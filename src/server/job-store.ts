/**
 * The data directory: one folder per job (`jobs/<id>/`: job.json, the input, the artifacts) and
 * `uploads/` for bodies still arriving. Every file is written whole or not at all
 * (write-file-atomic), a job's folder appears by one rename once its input and record are in
 * place, and deletion renames the folder away before removing it, so a reader (or a restart)
 * never sees half a job. Ids are checked before they become paths.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../write-file-atomic.js';
import { isJobId } from './job-id.js';
import { ARTIFACT_NAMES, type ArtifactName, type JobRecord } from './job-record.js';

const RECORD = 'job.json';

/** How an input is stored: its format, and for NIfTI whether it is gzipped. */
export type InputFileKind = 'nii' | 'nii.gz' | 'zip';
const INPUT_FILES: Record<InputFileKind, string> = { nii: 'input.nii', 'nii.gz': 'input.nii.gz', zip: 'input.zip' };

/** The stored input file kind of an upload. */
export function inputFileKind(upload: { kind: 'nifti' | 'dicom'; gzip: boolean }): InputFileKind {
  if (upload.kind === 'dicom') return 'zip';
  return upload.gzip ? 'nii.gz' : 'nii';
}

function checkId(id: string): string {
  if (!isJobId(id)) throw new RangeError(`Expected a job id but received ${JSON.stringify(id)}`);
  return id;
}

export class JobStore {
  readonly dataDir: string;
  readonly #jobs: string;
  readonly #uploads: string;
  readonly #trash: string;

  constructor(dataDir: string) {
    this.dataDir = path.resolve(dataDir);
    this.#jobs = path.join(this.dataDir, 'jobs');
    this.#uploads = path.join(this.dataDir, 'uploads');
    this.#trash = path.join(this.dataDir, 'trash');
  }

  /** Creates the folders; drops uploads, half-created and half-deleted jobs left by a previous process. */
  async open(): Promise<void> {
    await mkdir(this.#jobs, { recursive: true });
    await rm(this.#uploads, { recursive: true, force: true });
    await rm(this.#trash, { recursive: true, force: true });
    await mkdir(this.#uploads, { recursive: true });
    await mkdir(this.#trash, { recursive: true });
    for (const name of await readdir(this.#jobs)) {
      if (!isJobId(name)) await rm(path.join(this.#jobs, name), { recursive: true, force: true });
    }
  }

  /** A fresh path under uploads/ for a body being received. */
  uploadPath(): string {
    return path.join(this.#uploads, `${randomBytes(12).toString('hex')}.part`);
  }

  #dir(id: string): string {
    return path.join(this.#jobs, checkId(id));
  }

  /** The input's file: input.nii, input.nii.gz, or input.zip (a zipped DICOM series). */
  inputPath(id: string, kind: InputFileKind): string {
    return path.join(this.#dir(id), INPUT_FILES[kind]);
  }

  artifactPath(id: string, name: ArtifactName): string {
    if (!ARTIFACT_NAMES.includes(name)) throw new RangeError(`Expected an artifact name but received ${JSON.stringify(name)}`);
    return path.join(this.#dir(id), name);
  }

  /** Moves a received upload in as the job's input and writes its record; the folder appears at once. */
  async create(record: JobRecord, upload: string, kind: InputFileKind): Promise<string> {
    const staging = path.join(this.#jobs, `.${checkId(record.id)}.staging`);
    await mkdir(staging);
    try {
      const input = path.join(staging, path.basename(this.inputPath(record.id, kind)));
      await rename(upload, input);
      await writeFileAtomic(path.join(staging, RECORD), JSON.stringify(record));
      await rename(staging, this.#dir(record.id));
    } catch (error) {
      await rm(staging, { recursive: true, force: true });
      throw error;
    }
    return this.inputPath(record.id, kind);
  }

  async save(record: JobRecord): Promise<void> {
    await writeFileAtomic(path.join(this.#dir(record.id), RECORD), JSON.stringify(record), { createDirectory: false });
  }

  async writeArtifact(id: string, name: ArtifactName, bytes: Uint8Array): Promise<void> {
    await writeFileAtomic(this.artifactPath(id, name), bytes, { createDirectory: false });
  }

  /** Removes the job's input (it is not needed once the job is finished). */
  async removeInput(id: string): Promise<void> {
    for (const kind of Object.keys(INPUT_FILES) as InputFileKind[]) await rm(this.inputPath(id, kind), { force: true });
  }

  /** Deletes a job's folder: renamed away first, so it vanishes at once. */
  async remove(id: string): Promise<void> {
    const away = path.join(this.#trash, `${checkId(id)}.${randomBytes(4).toString('hex')}`);
    try {
      await rename(this.#dir(id), away);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    await rm(away, { recursive: true, force: true });
  }

  /** Every stored job record (unreadable ones are removed: they can only be half-written leftovers). */
  async list(): Promise<JobRecord[]> {
    const records: JobRecord[] = [];
    for (const name of await readdir(this.#jobs)) {
      if (!isJobId(name)) continue;
      try {
        const record = JSON.parse(await readFile(path.join(this.#jobs, name, RECORD), 'utf8')) as JobRecord;
        if (record.id === name) {
          records.push(record);
          continue;
        }
      } catch {
        // fall through: not a complete job
      }
      await rm(path.join(this.#jobs, name), { recursive: true, force: true });
    }
    return records;
  }

  /** Bytes a job's folder holds. */
  async size(id: string): Promise<number> {
    let total = 0;
    const dir = this.#dir(id);
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      total += (await stat(path.join(dir, name)).catch(() => ({ size: 0 }))).size;
    }
    return total;
  }
}
