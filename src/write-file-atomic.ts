/**
 * Whole-or-nothing file writes: data goes to a temporary file in the target's directory (same
 * file system, so rename is atomic), is flushed to disk, then renamed over the target. A reader
 * never sees a partial NIfTI, plan, sidecar, report or image, and a failed write leaves no file
 * behind. The one implementation for every file the package writes.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { SpleenTrtError } from './errors.js';

/**
 * A failed write as the package's error: a read-only or full disk, a parent that is a file, a
 * missing directory. Errors that already carry a package code pass through.
 */
export function writeError(error: unknown, target: string): Error {
  if (error instanceof SpleenTrtError) return error;
  const errno = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  const why =
    errno === 'ENOSPC' ? 'no space left on the device'
    : errno === 'EROFS' ? 'read-only file system'
    : errno === 'EACCES' || errno === 'EPERM' ? 'permission denied'
    : errno === 'ENOTDIR' ? 'a parent is not a directory'
    : errno === 'ENOENT' ? 'its directory does not exist'
    : errno === 'EISDIR' ? 'it is a directory'
    : (error as Error)?.message ?? String(error);
  return new SpleenTrtError('ERR_WRITE_FAILED', `Cannot write ${target}: ${why}`, { cause: error });
}

/** A temporary name next to `target`, unique per process and call. */
export function temporaryPathFor(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

export interface AtomicWriteOptions {
  /** Create the target's directory when missing (default true); false fails like fs.writeFile. */
  createDirectory?: boolean;
}

/** Writes `data` to a temporary file next to `target` and fsyncs it; returns the temporary path. */
export async function writeTemporary(target: string, data: Uint8Array | string, options: AtomicWriteOptions = {}): Promise<string> {
  try {
    return await writeTemporaryUncoded(target, data, options);
  } catch (error) {
    throw writeError(error, target);
  }
}

async function writeTemporaryUncoded(target: string, data: Uint8Array | string, options: AtomicWriteOptions): Promise<string> {
  if (options.createDirectory !== false) await mkdir(path.dirname(target), { recursive: true });
  const temporary = temporaryPathFor(target);
  // 'wx': never follow or clobber an existing file at the temporary name.
  const handle = await open(temporary, 'wx', 0o644);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (error) {
    await handle.close().catch(() => undefined);
    await rm(temporary, { force: true });
    throw error;
  }
  await handle.close();
  return temporary;
}

/** Moves a file made by writeTemporary into place; removes it if the rename fails. */
export async function commitTemporary(temporary: string, target: string): Promise<void> {
  try {
    await rename(temporary, target);
  } catch (error) {
    await rm(temporary, { force: true });
    throw writeError(error, target);
  }
}

/** writeTemporary + commitTemporary: `target` holds either its old content or all of `data`. */
export async function writeFileAtomic(target: string, data: Uint8Array | string, options: AtomicWriteOptions = {}): Promise<void> {
  await commitTemporary(await writeTemporary(target, data, options), target);
}
