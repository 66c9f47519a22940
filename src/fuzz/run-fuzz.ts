/**
 * `npm run fuzz`: a seeded mutation fuzzer over every parser that takes outside input (NIfTI-1/2
 * plain, gzip and big-endian through readNifti and through the pipeline; torch checkpoints, their
 * zip and pickle layers; ONNX; MONAI bundle configs; model manifests). Each target's cases run in a
 * worker thread watched from here: a case that runs past --timeout-ms is a hang, one that takes the
 * process past --max-rss-mb is over memory, an uncaught error in the worker a crash; the worker is
 * then replaced and the run goes on with the next case. Outcomes are counted per target; anything
 * but `ok` and `coded` is a finding, listed with the index that replays it.
 *
 *   node dist/fuzz/run-fuzz.js --cases 10000 --seed 1 [--targets nifti,pickle] [--only 1234] [--json out.json]
 */
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';

export const FUZZ_TARGETS = ['nifti', 'nifti-segment', 'checkpoint', 'zip', 'pickle', 'onnx', 'bundle-config', 'manifest'] as const;

export interface FuzzOptions {
  cases: number;
  seed: number;
  targets?: readonly string[];
  /** Replay one case index (per target) instead of 0..cases-1. */
  only?: number;
  timeoutMs?: number;
  maxRssMb?: number;
  onTarget?: (report: TargetReport) => void;
}

export type Outcome = 'ok' | 'coded' | 'uncoded' | 'crash' | 'hang' | 'overMemory';

export interface Finding {
  index: number;
  outcome: Outcome;
  message?: string;
}

export interface TargetReport {
  target: string;
  cases: number;
  counts: Record<Outcome, number>;
  /** Coded errors by code. */
  codes: Record<string, number>;
  /** Every case that was not ok or coded (first 20). */
  findings: Finding[];
  wallMs: number;
  peakRssMb: number;
}

const WORKER_URL = new URL('./fuzz-worker.js', import.meta.url);

function runTarget(target: string, options: FuzzOptions): Promise<TargetReport> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const maxRss = (options.maxRssMb ?? 3072) * 1024 * 1024;
  const first = options.only ?? 0;
  const end = options.only !== undefined ? options.only + 1 : options.cases;
  const report: TargetReport = {
    target,
    cases: 0,
    counts: { ok: 0, coded: 0, uncoded: 0, crash: 0, hang: 0, overMemory: 0 },
    codes: {},
    findings: [],
    wallMs: 0,
    peakRssMb: 0,
  };
  const started = performance.now();
  const record = (index: number, outcome: Outcome, code?: string, message?: string): void => {
    report.cases++;
    report.counts[outcome]++;
    if (outcome === 'coded' && code) report.codes[code] = (report.codes[code] ?? 0) + 1;
    if (outcome !== 'ok' && outcome !== 'coded' && report.findings.length < 20) report.findings.push({ index, outcome, message });
  };

  return new Promise((resolve) => {
    const startWorker = (from: number): void => {
      if (from >= end) {
        report.wallMs = performance.now() - started;
        resolve(report);
        return;
      }
      const worker = new Worker(WORKER_URL, { workerData: { target, seed: options.seed, start: from, end } });
      let current = from;
      let caseStarted = performance.now();
      let over = false;
      const watch = setInterval(() => {
        const rss = process.memoryUsage.rss();
        report.peakRssMb = Math.max(report.peakRssMb, Math.round(rss / 2 ** 20));
        if (performance.now() - caseStarted > timeoutMs) stop('hang', `no result after ${timeoutMs} ms`);
        else if (rss > maxRss) stop('overMemory', `RSS ${Math.round(rss / 2 ** 20)} MiB`);
      }, 25);
      const stop = (outcome: Outcome, message: string): void => {
        if (over) return;
        over = true;
        clearInterval(watch);
        record(current, outcome, undefined, message);
        void worker.terminate().then(() => startWorker(current + 1));
      };
      worker.on('message', (msg: { type: string; index: number; outcome: Outcome; code?: string; message?: string }) => {
        if (msg.type === 'start') {
          current = msg.index;
          caseStarted = performance.now();
        } else if (msg.type === 'done') {
          record(msg.index, msg.outcome, msg.code, msg.message);
          current = msg.index + 1;
          caseStarted = performance.now();
        } else if (msg.type === 'finished') {
          over = true;
          clearInterval(watch);
          void worker.terminate().then(() => startWorker(end));
        }
      });
      worker.on('error', (error) => stop('crash', `${error.name}: ${error.message}`.slice(0, 300)));
      worker.on('exit', (code) => {
        if (!over) stop('crash', `worker exited with code ${code}`);
      });
    };
    startWorker(first);
  });
}

/** Runs the targets one after another; resolves with one report per target. */
export async function runFuzz(options: FuzzOptions): Promise<TargetReport[]> {
  const reports: TargetReport[] = [];
  for (const target of options.targets ?? FUZZ_TARGETS) {
    const report = await runTarget(target, options);
    options.onTarget?.(report);
    reports.push(report);
  }
  return reports;
}

function formatReport(r: TargetReport): string {
  const c = r.counts;
  const codes = Object.entries(r.codes).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ');
  const lines = [
    `${r.target.padEnd(14)} ${String(r.cases).padStart(7)} cases in ${(r.wallMs / 1000).toFixed(1)} s: ok ${c.ok}, coded ${c.coded}, uncoded ${c.uncoded}, crash ${c.crash}, hang ${c.hang}, over memory ${c.overMemory}; peak RSS ${r.peakRssMb} MiB`,
    `${''.padEnd(14)} codes: ${codes || '-'}`,
  ];
  for (const f of r.findings) lines.push(`${''.padEnd(14)} FINDING ${f.outcome} at --only ${f.index}: ${f.message ?? ''}`);
  return lines.join('\n');
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      cases: { type: 'string', default: '1000' },
      seed: { type: 'string', default: '1' },
      targets: { type: 'string' },
      only: { type: 'string' },
      'timeout-ms': { type: 'string' },
      'max-rss-mb': { type: 'string' },
      json: { type: 'string' },
    },
  });
  const targets = values.targets?.split(',').filter(Boolean);
  const unknown = targets?.filter((t) => !(FUZZ_TARGETS as readonly string[]).includes(t));
  if (unknown?.length) {
    process.stderr.write(`error ERR_USAGE: unknown fuzz target(s) ${unknown.join(', ')}; targets: ${FUZZ_TARGETS.join(', ')}\n`);
    return 2;
  }
  const options: FuzzOptions = {
    cases: Number(values.cases),
    seed: Number(values.seed),
    targets,
    only: values.only === undefined ? undefined : Number(values.only),
    timeoutMs: values['timeout-ms'] === undefined ? undefined : Number(values['timeout-ms']),
    maxRssMb: values['max-rss-mb'] === undefined ? undefined : Number(values['max-rss-mb']),
    onTarget: (r) => process.stdout.write(`${formatReport(r)}\n`),
  };
  const started = Date.now();
  const reports = await runFuzz(options);
  const bad = reports.reduce((n, r) => n + r.counts.uncoded + r.counts.crash + r.counts.hang + r.counts.overMemory, 0);
  const total = reports.reduce((n, r) => n + r.cases, 0);
  process.stdout.write(`total ${total} cases in ${((Date.now() - started) / 1000).toFixed(1)} s, seed ${options.seed}: ${bad} findings\n`);
  if (values.json) writeFileSync(values.json, `${JSON.stringify({ seed: options.seed, casesPerTarget: options.cases, reports }, null, 2)}\n`);
  return bad === 0 ? 0 : 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`error ERR_UNEXPECTED: ${String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
