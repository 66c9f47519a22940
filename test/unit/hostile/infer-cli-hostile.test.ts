/**
 * Findings 3, 7, 8, 9, 10 and the smaller CLI items, through the CLI as a user runs it (a child
 * process on dist/): no input overwritten, no output replaced by another input's, a FIFO or an
 * empty directory reported while the rest runs, a failed case leaves none of its files, usage
 * mistakes exit 2 with a code.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makePhantom, writeNifti } from '../../../src/index.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const CLI = path.join(ROOT, 'dist/cli/main.js');

function run(args: string[], timeout = 120_000) {
  const result = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout });
  return { code: result.status, signal: result.signal, stdout: result.stdout, stderr: result.stderr };
}

function allFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => !e.isDirectory()).map((e) => path.relative(dir, path.join(e.parentPath, e.name))).sort();
}

/** A tmpfs mount where the disk fills (root and a kernel that allows it); undefined elsewhere. */
function tinyDisk(dir: string): string | undefined {
  mkdirSync(dir, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { stdio: 'ignore' });
    return dir;
  } catch {
    return undefined;
  }
}

describe.runIf(existsSync(CLI))('infer with hostile inputs and outputs', () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'spleen-trt-hostile-cli-'));
  const good = path.join(tmp, 'in', 'ct.nii.gz');
  let disk: string | undefined;

  beforeAll(async () => {
    mkdirSync(path.join(tmp, 'in'));
    const { image } = makePhantom({ shape: [48, 40, 12], spacingMm: [3, 3, 8], seed: 5 });
    await writeNifti(good, image, { datatype: 'int16' });
    disk = tinyDisk(path.join(tmp, 'disk'));
  });
  afterAll(() => {
    if (disk) execFileSync('umount', [disk]);
  });

  it('never overwrites an input: infer ct.nii.gz -o ct.nii.gz is a usage error and the CT is untouched', () => {
    const before = readFileSync(good);
    const { code, stderr } = run(['infer', good, '-o', good]);
    expect(code).toBe(2);
    expect(stderr).toMatch(/error ERR_USAGE: output .* would overwrite the input/);
    expect(readFileSync(good).equals(before)).toBe(true);
  });

  it('gives two inputs with one name distinct outputs (a/ct.nii.gz, b/ct.nii.gz) and a FIFO or an empty folder fails alone', () => {
    const a = path.join(tmp, 'a');
    const b = path.join(tmp, 'b');
    const empty = path.join(tmp, 'empty');
    for (const d of [a, b, empty]) mkdirSync(d);
    writeFileSync(path.join(a, 'ct.nii.gz'), readFileSync(good));
    writeFileSync(path.join(b, 'ct.nii.gz'), readFileSync(good));
    // In b, a FIFO sorts before the file: it used to hang the batch there.
    execFileSync('mkfifo', [path.join(b, 'aaa.nii.gz')]);
    const out = path.join(tmp, 'out-dupes');
    const { code, stderr, signal } = run(['infer', empty, a, b, '-o', out], 90_000);
    expect(signal).toBeNull();
    expect(code).toBe(1);
    expect(stderr).toMatch(/empty: error ERR_FILE_NOT_FOUND: No \.nii or \.nii\.gz files/);
    expect(stderr).toMatch(/aaa\.nii\.gz: error ERR_FILE_UNREADABLE: .*FIFO/);
    expect(allFiles(out)).toEqual([path.join('ct', 'ct_trans.nii.gz'), path.join('ct_2', 'ct_2_trans.nii.gz')]);
  });

  it('a case whose stage file cannot be written leaves none of its files (mask and stages are one unit)', () => {
    const out = path.join(tmp, 'out-unit');
    // A directory where probability.nii.gz must go: the last rename fails after the mask's.
    mkdirSync(path.join(out, 'ct', 'probability.nii.gz'), { recursive: true });
    const { code, stderr } = run(['infer', good, '-o', out, '--save-stages']);
    expect(code).toBe(1);
    expect(stderr).toMatch(/error ERR_WRITE_FAILED/);
    expect(allFiles(out)).toEqual([]);
  });

  it('codes a parent that is a file (ERR_WRITE_FAILED) and leaves nothing', () => {
    const file = path.join(tmp, 'plain-file');
    writeFileSync(file, 'x');
    const { code, stderr } = run(['infer', good, '-o', path.join(file, 'out')]);
    expect(code).toBe(1);
    expect(stderr).toMatch(/error ERR_WRITE_FAILED: .*not a directory/);
    expect(stderr).not.toMatch(/ERR_UNEXPECTED/);
  });

  it('on a full disk reports ERR_WRITE_FAILED and leaves no empty output directory', ({ skip }) => {
    if (!disk) skip('needs root and a tmpfs mount');
    const out = path.join(disk!, 'out');
    const { code, stderr } = run(['infer', good, '-o', out, '--save-stages']);
    expect(code).toBe(1);
    expect(stderr).toMatch(/error ERR_WRITE_FAILED: .*no space left/);
    expect(existsSync(path.join(out, 'ct'))).toBe(false);
  });

  it.each([
    [['info', '--bogus'], /Unknown option '--bogus'/],
    [['infer', 'x.nii', '--threads', '-1'], /--threads expects an integer in 1\.\.1024, got "-1"/],
    [['infer', 'x.nii', '--overlap', '0x0'], /--overlap expects/],
    [['infer', 'x.nii', '--overlap', '0.99'], /--overlap expects a number in \[0, 0\.9\]/],
    [['infer', 'x.nii', '--sw-batch-size', '1e1'], /--sw-batch-size expects/],
  ])('%j is a usage error with a code (exit 2)', (args, message) => {
    const { code, stderr } = run(args);
    expect(code).toBe(2);
    expect(stderr).toMatch(/^error ERR_USAGE: /);
    expect(stderr).toMatch(message);
  });
});
