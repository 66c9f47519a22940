/**
 * The fuzz harness's short deterministic slice (the long run's figures are in the README): every
 * target, a fixed seed, a few hundred cases each; every case must end in a result or a coded error,
 * none may crash, hang or exceed the memory limit. Run through the built CLI, as `npm run fuzz` is.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const FUZZ = path.join(ROOT, 'dist/fuzz/run-fuzz.js');

interface Report {
  target: string;
  cases: number;
  counts: Record<string, number>;
  findings: unknown[];
}

function fuzz(args: string[]): Report[] {
  const out = path.join(mkdtempSync(path.join(os.tmpdir(), 'spleen-trt-fuzz-test-')), 'report.json');
  const result = spawnSync(process.execPath, [FUZZ, ...args, '--json', out], { encoding: 'utf8', timeout: 120_000 });
  expect(result.stderr).toBe('');
  expect(result.status, result.stdout).toBe(0);
  return (JSON.parse(readFileSync(out, 'utf8')) as { reports: Report[] }).reports;
}

describe.runIf(existsSync(FUZZ))('fuzz slice', () => {
  it('300 cases per target (seed 20261204): only results and coded errors', () => {
    const reports = fuzz(['--cases', '300', '--seed', '20261204']);
    expect(reports.map((r) => r.target)).toEqual(['nifti', 'nifti-segment', 'checkpoint', 'zip', 'pickle', 'onnx', 'bundle-config', 'manifest']);
    for (const r of reports) {
      expect(r.cases).toBe(300);
      expect(r.findings, r.target).toEqual([]);
      expect(r.counts.ok + r.counts.coded).toBe(300);
      // The mutations reach both ends: some inputs still parse, some are refused.
      expect(r.counts.ok, r.target).toBeGreaterThan(0);
      expect(r.counts.coded, r.target).toBeGreaterThan(0);
    }
  });

  it('replays a case from its index alone (deterministic)', () => {
    const [a] = fuzz(['--cases', '40', '--seed', '7', '--targets', 'nifti']);
    const [b] = fuzz(['--cases', '40', '--seed', '7', '--targets', 'nifti']);
    expect(b.counts).toEqual(a.counts);
    const [one] = fuzz(['--cases', '40', '--seed', '7', '--targets', 'nifti', '--only', '13']);
    expect(one.cases).toBe(1);
  });
});
