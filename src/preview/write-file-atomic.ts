/**
 * Writes a file through a temporary name in the same directory and a rename, so a failure (disk
 * full, interrupted run) never leaves a partial file under the final name.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** Atomically replaces `file` with `bytes` (a string is written as UTF-8), creating its directory. */
export async function writeFileAtomic(file: string, bytes: Uint8Array | string): Promise<void> {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  await mkdir(path.dirname(file), { recursive: true });
  try {
    await writeFile(temp, bytes, { flag: 'wx' });
    await rename(temp, file);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
}
