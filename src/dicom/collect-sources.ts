/**
 * Gathers the candidate files of a DICOM input: a directory (walked to any depth, any file names),
 * a .zip of one, a single file, or buffers already in memory (the HTTP service's uploads).
 * Nothing here parses DICOM; files that are not DICOM are dropped later by the header scan.
 */
import { lstat, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { SpleenTrtError } from '../errors.js';
import { looksLikeZip, readZipDirectory, readZipEntry } from '../model/zip-reader.js';
import { dicomInvalid } from './dicom-errors.js';

/** One candidate file: a name for messages (never written anywhere) and its bytes. */
export interface DicomSource {
  name: string;
  bytes: Uint8Array;
}

export interface CollectLimits {
  /** Most files considered (default 100000). */
  maxFiles?: number;
  /** Most bytes read in total, compressed zip entries counted inflated (default 8 GiB). */
  maxTotalBytes?: number;
}

const DEFAULT_MAX_FILES = 100_000;
const DEFAULT_MAX_TOTAL_BYTES = 8 * 1024 ** 3;

class Budget {
  files = 0;
  bytes = 0;
  constructor(private readonly limits: Required<CollectLimits>) {}
  take(name: string, bytes: number): void {
    this.files += 1;
    this.bytes += bytes;
    if (this.files > this.limits.maxFiles) throw dicomInvalid(`More than ${this.limits.maxFiles} files in the DICOM input`);
    if (this.bytes > this.limits.maxTotalBytes) {
      throw dicomInvalid(`The DICOM input holds more than ${this.limits.maxTotalBytes} bytes (at ${name})`);
    }
  }
}

function budgetFor(limits: CollectLimits): Budget {
  return new Budget({ maxFiles: limits.maxFiles ?? DEFAULT_MAX_FILES, maxTotalBytes: limits.maxTotalBytes ?? DEFAULT_MAX_TOTAL_BYTES });
}

/** True when `file` names a zip archive by its first bytes. */
export function isZipBytes(bytes: Uint8Array): boolean {
  return looksLikeZip(bytes);
}

/**
 * The files inside a zip archive (directories skipped). Declared sizes are checked against the
 * budget before any entry is inflated, and each entry is checked against its declared size and CRC.
 */
export function unzipSources(zip: Uint8Array, limits: CollectLimits = {}): DicomSource[] {
  const budget = budgetFor(limits);
  try {
    const entries = readZipDirectory(zip).filter((e) => !e.name.endsWith('/'));
    for (const entry of entries) budget.take(entry.name, entry.uncompressedSize);
    return entries.map((entry) => ({ name: entry.name, bytes: readZipEntry(zip, entry) }));
  } catch (error) {
    if (error instanceof SpleenTrtError && error.code === 'ERR_MODEL_INVALID') {
      throw dicomInvalid(error.message.replace('(corrupt or truncated checkpoint?)', '(corrupt or truncated?)'), error);
    }
    throw error;
  }
}

async function walk(dir: string, budget: Budget, out: DicomSource[]): Promise<void> {
  const names = (await readdir(dir)).sort();
  for (const name of names) {
    const full = path.join(dir, name);
    // lstat: symbolic links are not followed (no loops, nothing outside the given tree).
    const info = await lstat(full);
    if (info.isDirectory()) await walk(full, budget, out);
    else if (info.isFile()) {
      budget.take(full, info.size);
      out.push({ name: full, bytes: await readFile(full) });
    }
  }
}

/** The candidate files of a path: a directory tree, a zip archive, or one file. */
export async function collectSources(input: string, limits: CollectLimits = {}): Promise<DicomSource[]> {
  const info = await lstat(input).catch(() => null);
  if (info === null) throw new SpleenTrtError('ERR_FILE_NOT_FOUND', `No such file or directory: ${input}`);
  if (info.isDirectory()) {
    const out: DicomSource[] = [];
    await walk(input, budgetFor(limits), out);
    return out;
  }
  const bytes = await readFile(input);
  if (isZipBytes(bytes)) return unzipSources(bytes, limits);
  budgetFor(limits).take(input, bytes.length);
  return [{ name: input, bytes }];
}
