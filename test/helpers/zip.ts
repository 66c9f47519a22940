/** Zipped folders for the tests' DICOM uploads (the writer is the fuzzer's, src/fuzz/store-zip.ts). */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { zipFiles } from '../../src/fuzz/store-zip.js';

/** The files under `dir` (recursive), names relative to it. */
export function filesUnder(dir: string): Array<{ name: string; bytes: Uint8Array }> {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => {
      const full = path.join(e.parentPath, e.name);
      return { name: path.relative(dir, full), bytes: readFileSync(full) };
    });
}

/** Zips every file under `dir` (deflate), as a user's "compress folder" would. */
export function zipDirectory(dir: string): Uint8Array {
  return zipFiles(
    filesUnder(dir).map((f) => ({ name: f.name.split(path.sep).join('/'), bytes: f.bytes })),
    true,
  );
}
