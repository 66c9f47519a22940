/**
 * `infer`'s inputs: each argument a file or a directory of NIfTI files. A directory without any is
 * that input's failure (reported, the others still run), not the batch's.
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { SpleenTrtError } from '../errors.js';

export const NIFTI_NAME = /\.nii(\.gz)?$/i;

/** One input to run, or one argument that failed before any run (reported like a failed file). */
export type InferInput = { file: string } | { file: string; error: SpleenTrtError };

export async function expandInputs(inputs: string[]): Promise<InferInput[]> {
  const out: InferInput[] = [];
  for (const input of inputs) {
    const info = await stat(input).catch(() => null);
    if (info?.isDirectory()) {
      let names: string[];
      try {
        names = (await readdir(input)).filter((n) => NIFTI_NAME.test(n)).sort();
      } catch (error) {
        out.push({ file: input, error: new SpleenTrtError('ERR_FILE_UNREADABLE', `Cannot list directory ${input}: ${(error as Error).message}`, { cause: error }) });
        continue;
      }
      if (names.length === 0) out.push({ file: input, error: new SpleenTrtError('ERR_FILE_NOT_FOUND', `No .nii or .nii.gz files in directory ${input}`) });
      // FIFOs and other non-regular entries are refused per file by the reader, the rest still run.
      out.push(...names.map((n) => ({ file: path.join(input, n) })));
    } else {
      // Missing or unreadable files are reported per file by the reader, with the other files still running.
      out.push({ file: input });
    }
  }
  return out;
}
