/**
 * `infer`'s outputs, decided before anything runs and written as one unit per input:
 * - each input's case name is unique in the batch (a/ct.nii and b/ct.nii, or ct.nii and ct.nii.gz,
 *   get ct and ct_2: the second no longer replaces the first);
 * - no output may be one of the inputs (`infer ct.nii.gz -o ct.nii.gz` is a usage error);
 * - a case's files (mask, --save-stages volumes, preview) are written to temporary names and
 *   renamed together at the end, so a failed file leaves none of them, nor a directory it created.
 */
import { realpathSync } from 'node:fs';
import { mkdir, rename, rm, rmdir } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { writeError } from '../write-file-atomic.js';
import { NIFTI_NAME } from './infer-inputs.js';
import { UsageError } from './usage-error.js';

/** The input's name as the bundle uses it: the file name without .nii / .nii.gz. */
export function caseName(file: string): string {
  return path.basename(file).replace(NIFTI_NAME, '');
}

export const STAGE_FILES = ['preprocessed.nii.gz', 'logits.nii.gz', 'probability.nii.gz'] as const;

export interface CaseOutputs {
  input: string;
  /** Unique in the batch; the input's case name, with _2, _3... when an earlier input had it. */
  name: string;
  caseDir: string;
  mask: string;
  /** preprocessed / logits / probability, when --save-stages. */
  stages?: Record<(typeof STAGE_FILES)[number], string>;
  preview?: string;
}

export interface OutputPlanOptions {
  outputDir: string;
  /** `-o mask.nii.gz` with one input. */
  outputFile?: string;
  saveStages: boolean;
  preview?: string;
}

/** The file a path names, links and `..` resolved as far as they exist (so ./a and a/../a compare equal). */
function identity(file: string): string {
  const absolute = path.resolve(file);
  try {
    return realpathSync(absolute);
  } catch {
    const parent = path.dirname(absolute);
    return parent === absolute ? absolute : path.join(identity(parent), path.basename(absolute));
  }
}

/** Every input's outputs; a usage error when an output would replace an input. */
export function planOutputs(inputs: string[], options: OutputPlanOptions): CaseOutputs[] {
  const taken = new Map<string, number>();
  const plans = inputs.map((input): CaseOutputs => {
    const base = caseName(input);
    // Case-insensitively, for file systems that fold case.
    const key = base.toLowerCase();
    const seen = taken.get(key) ?? 0;
    taken.set(key, seen + 1);
    let name = seen === 0 ? base : `${base}_${seen + 1}`;
    while (seen > 0 && taken.has(name.toLowerCase())) name = `${name}_`;
    if (seen > 0) taken.set(name.toLowerCase(), 1);
    const caseDir = options.outputFile ? path.dirname(options.outputFile) : path.join(options.outputDir, name);
    const mask = options.outputFile ?? path.join(caseDir, `${name}_trans.nii.gz`);
    const stages = options.saveStages
      ? (Object.fromEntries(STAGE_FILES.map((f) => [f, path.join(caseDir, inputs.length > 1 && options.outputFile ? `${name}_${f}` : f)])) as CaseOutputs['stages'])
      : undefined;
    const preview = options.preview ? (inputs.length === 1 ? options.preview : options.preview.replace(/(\.png)?$/i, `_${name}.png`)) : undefined;
    return { input, name, caseDir, mask, stages, preview };
  });
  const inputIds = new Map(inputs.map((f) => [identity(f), f]));
  for (const plan of plans) {
    for (const out of [plan.mask, ...Object.values(plan.stages ?? {}), ...(plan.preview ? [plan.preview] : [])]) {
      const clash = inputIds.get(identity(out));
      if (clash !== undefined) throw new UsageError(`output ${out} would overwrite the input ${clash}; choose another -o`);
    }
  }
  return plans;
}

/**
 * One case's files as a unit: `stage(final)` gives a temporary name next to `final` to write to;
 * `commit()` renames them all into place; `abort()` removes them and any directory `open()` made.
 */
export class OutputUnit {
  #staged = new Map<string, string>();
  #createdDir: string | undefined;
  #caseDir: string;

  constructor(caseDir: string) {
    this.#caseDir = caseDir;
  }

  async open(): Promise<void> {
    try {
      this.#createdDir = await mkdir(this.#caseDir, { recursive: true });
    } catch (error) {
      throw writeError(error, this.#caseDir);
    }
  }

  /** A temporary path for `final`, with the same extension (the writers pick gzip from it). */
  stage(final: string): string {
    const temporary = path.join(path.dirname(final), `.staging-${process.pid}-${randomBytes(4).toString('hex')}-${path.basename(final)}`);
    this.#staged.set(final, temporary);
    return temporary;
  }

  async commit(): Promise<void> {
    const committed: string[] = [];
    try {
      for (const [final, temporary] of this.#staged) {
        await rename(temporary, final);
        committed.push(final);
      }
    } catch (error) {
      // A rename that fails part-way (a directory in the way) takes back the ones before it.
      await Promise.all(committed.map((f) => rm(f, { force: true })));
      await this.abort();
      throw writeError(error, this.#caseDir);
    }
    this.#staged.clear();
  }

  async abort(): Promise<void> {
    await Promise.all([...this.#staged.values()].map((t) => rm(t, { force: true })));
    this.#staged.clear();
    // Only directories this unit made, innermost first, and only while empty.
    if (this.#createdDir) {
      for (let dir = this.#caseDir; dir.length >= this.#createdDir.length; dir = path.dirname(dir)) {
        if (!(await rmdir(dir).then(() => true, () => false))) break;
        if (dir === this.#createdDir) break;
      }
    }
  }
}
