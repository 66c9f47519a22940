/**
 * `infer`'s outputs, decided before anything runs and written as one unit per input:
 * - each input's case name is unique in the batch (a/ct.nii and b/ct.nii, or ct.nii and ct.nii.gz,
 *   get ct and ct_2: the second no longer replaces the first);
 * - no output may be one of the inputs (`infer ct.nii.gz -o ct.nii.gz` is a usage error);
 * - a case's files (mask, DICOM SEG, STL, --save-stages volumes, preview) are written to temporary
 *   names and renamed together at the end, so a failed file leaves none of them, nor a directory it
 *   created.
 * A DICOM input's case name comes from its SeriesInstanceUID (never a file or patient name), known
 * only once the series is read: `bindCaseName` renames that case then, under the same rules.
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

/** `-o` naming one file: a mask (.nii / .nii.gz) or a SEG (.dcm); anything else is a directory. */
const OUTPUT_FILE = /\.(nii(\.gz)?|dcm)$/i;

/** True when `-o` names a file (.nii, .nii.gz or .dcm) rather than a directory. */
export function isOutputFile(output: string): boolean {
  return OUTPUT_FILE.test(output);
}

/** The format a `-o` file's extension asks for. */
export function formatOfOutputFile(output: string): 'nifti' | 'dicom-seg' {
  return /\.dcm$/i.test(output) ? 'dicom-seg' : 'nifti';
}

export const STAGE_FILES = ['preprocessed.nii.gz', 'logits.nii.gz', 'probability.nii.gz'] as const;

export interface CaseOutputs {
  input: string;
  /** Unique in the batch; the input's case name, with _2, _3... when an earlier input had it. */
  name: string;
  caseDir: string;
  /** The NIfTI mask. */
  mask: string;
  /** The DICOM SEG and the STL mesh, written when the input and the options ask for them. */
  seg: string;
  stl: string;
  /** preprocessed / logits / probability, when --save-stages. */
  stages?: Record<(typeof STAGE_FILES)[number], string>;
  preview?: string;
}

export interface OutputPlanOptions {
  outputDir: string;
  /** `-o mask.nii.gz` (or `-o seg.dcm`) with one input. */
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

/** The paths of one case named `name`: the layout rules in one place. */
function casePaths(input: string, name: string, inputCount: number, options: OutputPlanOptions): CaseOutputs {
  const { outputFile } = options;
  const caseDir = outputFile ? path.dirname(outputFile) : path.join(options.outputDir, name);
  const stem = outputFile?.replace(OUTPUT_FILE, '');
  const mask = outputFile ? (NIFTI_NAME.test(outputFile) ? outputFile : `${stem}.nii.gz`) : path.join(caseDir, `${name}_trans.nii.gz`);
  const seg = outputFile ? (/\.dcm$/i.test(outputFile) ? outputFile : `${stem}.dcm`) : path.join(caseDir, `${name}_seg.dcm`);
  const stl = outputFile ? `${stem}.stl` : path.join(caseDir, `${name}.stl`);
  const stages = options.saveStages
    ? (Object.fromEntries(STAGE_FILES.map((f) => [f, path.join(caseDir, inputCount > 1 && outputFile ? `${name}_${f}` : f)])) as CaseOutputs['stages'])
    : undefined;
  const preview = options.preview ? (inputCount === 1 ? options.preview : options.preview.replace(/(\.png)?$/i, `_${name}.png`)) : undefined;
  return { input, name, caseDir, mask, seg, stl, stages, preview };
}

/** A name not yet taken (case-insensitively, for file systems that fold case): base, base_2, ... */
function uniqueName(base: string, taken: Set<string>): string {
  let name = base;
  for (let n = 2; taken.has(name.toLowerCase()); n++) name = `${base}_${n}`;
  taken.add(name.toLowerCase());
  return name;
}

/** Every output path of a case, for the overwrite check. */
function outputsOf(plan: CaseOutputs): string[] {
  return [plan.mask, plan.seg, plan.stl, ...Object.values(plan.stages ?? {}), ...(plan.preview ? [plan.preview] : [])];
}

/**
 * Every input's outputs, decided before anything runs; `bindCaseName` renames a case later (a
 * DICOM series, once its UID is known) under the same rules.
 */
export class OutputPlan {
  readonly cases: CaseOutputs[];
  #options: OutputPlanOptions;
  #taken = new Set<string>();
  #inputIds: Map<string, string>;

  /** A usage error when an output would replace an input. */
  constructor(inputs: string[], options: OutputPlanOptions) {
    this.#options = options;
    this.#inputIds = new Map(inputs.map((f) => [identity(f), f]));
    this.cases = inputs.map((input) => casePaths(input, uniqueName(caseName(input), this.#taken), inputs.length, options));
    for (const plan of this.cases) this.#checkOverwrite(plan);
  }

  /** Renames case `index` to a unique form of `name` (its old name is freed); returns its new paths. */
  bindCaseName(index: number, name: string): CaseOutputs {
    const old = this.cases[index];
    this.#taken.delete(old.name.toLowerCase());
    const plan = casePaths(old.input, uniqueName(name, this.#taken), this.cases.length, this.#options);
    this.#checkOverwrite(plan);
    this.cases[index] = plan;
    return plan;
  }

  #checkOverwrite(plan: CaseOutputs): void {
    for (const out of outputsOf(plan)) {
      const clash = this.#inputIds.get(identity(out));
      if (clash !== undefined) throw new UsageError(`output ${out} would overwrite the input ${clash}; choose another -o`);
    }
  }
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
