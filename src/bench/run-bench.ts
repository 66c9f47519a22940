/**
 * The bench's orchestration: decides which columns can run here (and why the others cannot),
 * runs each scenario in a fresh process, merges torch_baseline.py results, and writes the JSON,
 * markdown and PNG under the results directory.
 */
import { execFileSync, fork } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadModel } from '../model/load-model.js';
import { gzipCodecStatus } from '../native/gzip-codec.js';
import { volumeKernelsStatus } from '../native/volume-kernels.js';
import { getRuntimeInfo, type RuntimeInfo } from '../runtime-info.js';
import {
  benchChartSpec,
  mergeColumns,
  renderBenchMarkdown,
  ROW_LABELS,
  torchBaselineColumns,
  type BenchCell,
  type BenchColumn,
  type BenchResults,
  type RowId,
} from './bench-report.js';
import { onednnInfo } from '../native/onednn.js';
import type { BenchScenario, ColumnId, RunPlan, WorkerReply } from './bench-worker.js';
import { renderBarChart } from './png-chart.js';

export interface RunBenchOptions {
  /** Fewer iterations (CI-like smoke run); the numbers are rougher. */
  quick?: boolean;
  /** Also run the MSD-like 512x512x90 phantom on the CPU (GPU columns always run it). */
  large?: boolean;
  /** Also run a 512x512x300 abdominal series at 0.7x0.7x1 mm (every column; slow on a CPU). */
  xlarge?: boolean;
  /** torch_baseline.py JSON files to add as columns. */
  merge?: string[];
  /** Re-render an earlier results JSON (with `merge`) instead of measuring. */
  from?: string;
  /** Where results go; default bench/results under the current directory. */
  outDir?: string;
  /** Model directory or ONNX; default the embedded model. */
  model?: string;
  /** onnxruntime intra-op threads; default all cores. */
  threads?: number;
  /** Write the PNG chart (default true). */
  chart?: boolean;
  /** Progress lines. */
  log?: (line: string) => void;
  /** The command line to record. */
  command?: string;
}

export interface RunBenchResult {
  results: BenchResults;
  markdown: string;
  files: string[];
}

const CPU_PLANS: Record<'quick' | 'default', Record<RowId, RunPlan>> = {
  default: {
    'model-b1': { warmupIterations: 2, warmupMs: 200, minIterations: 20, minDurationMs: 5000, maxIterations: 1000 },
    'model-b4': { warmupIterations: 2, warmupMs: 200, minIterations: 12, minDurationMs: 8000, maxIterations: 1000 },
    end2end: { warmupIterations: 1, warmupMs: 0, minIterations: 8, minDurationMs: 20000, maxIterations: 100 },
    'end2end-large': { warmupIterations: 1, warmupMs: 0, minIterations: 3, minDurationMs: 10000, maxIterations: 100 },
    'end2end-xlarge': { warmupIterations: 1, warmupMs: 0, minIterations: 2, minDurationMs: 0, maxIterations: 100 },
  },
  quick: {
    'model-b1': { warmupIterations: 1, warmupMs: 200, minIterations: 3, minDurationMs: 500, maxIterations: 100 },
    'model-b4': { warmupIterations: 1, warmupMs: 200, minIterations: 3, minDurationMs: 500, maxIterations: 100 },
    end2end: { warmupIterations: 1, warmupMs: 0, minIterations: 2, minDurationMs: 0, maxIterations: 10 },
    'end2end-large': { warmupIterations: 1, warmupMs: 0, minIterations: 1, minDurationMs: 0, maxIterations: 10 },
    'end2end-xlarge': { warmupIterations: 0, warmupMs: 0, minIterations: 1, minDurationMs: 0, maxIterations: 10 },
  },
};

/** trtexec's defaults for GPU compute (200 ms warm-up, at least 10 runs and 3 s). */
const GPU_PLANS: Record<'quick' | 'default', Record<RowId, RunPlan>> = {
  default: {
    'model-b1': { warmupIterations: 1, warmupMs: 200, minIterations: 10, minDurationMs: 3000, maxIterations: 20000 },
    'model-b4': { warmupIterations: 1, warmupMs: 200, minIterations: 10, minDurationMs: 3000, maxIterations: 20000 },
    end2end: { warmupIterations: 1, warmupMs: 0, minIterations: 10, minDurationMs: 5000, maxIterations: 100 },
    'end2end-large': { warmupIterations: 1, warmupMs: 0, minIterations: 5, minDurationMs: 5000, maxIterations: 100 },
    'end2end-xlarge': { warmupIterations: 1, warmupMs: 0, minIterations: 3, minDurationMs: 3000, maxIterations: 100 },
  },
  quick: {
    'model-b1': { warmupIterations: 1, warmupMs: 200, minIterations: 10, minDurationMs: 500, maxIterations: 5000 },
    'model-b4': { warmupIterations: 1, warmupMs: 200, minIterations: 10, minDurationMs: 500, maxIterations: 5000 },
    end2end: { warmupIterations: 1, warmupMs: 0, minIterations: 2, minDurationMs: 0, maxIterations: 10 },
    'end2end-large': { warmupIterations: 1, warmupMs: 0, minIterations: 2, minDurationMs: 0, maxIterations: 10 },
    'end2end-xlarge': { warmupIterations: 1, warmupMs: 0, minIterations: 2, minDurationMs: 0, maxIterations: 10 },
  },
};

interface ColumnPlan {
  id: ColumnId;
  label: string;
  gpu: boolean;
  baseline?: boolean;
  unavailable?: string;
  unavailableDetail?: string;
}

/** Whether onnxruntime-node was installed with its CUDA execution provider (it is downloaded separately). */
export function onnxRuntimeCudaStatus(runtime: RuntimeInfo): { usable: boolean; short: string; detail: string } {
  const version = runtime.onnxruntime.version ?? 'unknown';
  let binDir: string | undefined;
  try {
    const pkg = path.dirname(createRequire(import.meta.url).resolve('onnxruntime-node/package.json'));
    const napi = path.join(pkg, 'bin');
    const napiDir = existsSync(napi) ? readdirSync(napi).find((d) => d.startsWith('napi-v')) : undefined;
    if (napiDir) binDir = path.join(napi, napiDir, process.platform, process.arch);
  } catch {
    binDir = undefined;
  }
  const provider = binDir ? path.join(binDir, 'libonnxruntime_providers_cuda.so') : undefined;
  if (!provider || !existsSync(provider)) {
    return {
      usable: false,
      short: 'onnxruntime-node without CUDA EP',
      detail: `onnxruntime-node ${version} is installed without its CUDA execution provider (libonnxruntime_providers_cuda.so absent; the package downloads it separately at install, which .npmrc skips)`,
    };
  }
  const gpus = 'cuda' in runtime.native ? runtime.native.cuda.devices.length : 0;
  if (gpus === 0) return { usable: false, short: 'no CUDA GPU', detail: `onnxruntime-node ${version} has the CUDA provider, but no CUDA GPU is usable here` };
  return { usable: true, short: '', detail: '' };
}

/** Short and long reasons why TensorRT cannot run here, library first (it is the column's name). */
export function tensorRtUnavailable(runtime: RuntimeInfo): { short: string; detail: string } | null {
  if (runtime.tensorrt.usable) return null;
  const native = runtime.native;
  if (!('cuda' in native)) return { short: 'native addon not loaded', detail: runtime.tensorrt.reason };
  const trt = native.tensorrt;
  if (!trt.available) {
    const gpu = native.cuda.driverAvailable ? `${native.cuda.devices.length} CUDA GPU(s)` : `no CUDA driver (${native.cuda.reason ?? 'unknown'})`;
    return { short: 'no TensorRT', detail: `${trt.reason ?? 'TensorRT libraries not found'}; ${gpu}` };
  }
  if (!native.cuda.driverAvailable) return { short: 'no CUDA driver', detail: runtime.tensorrt.reason };
  if (native.cuda.devices.length === 0) return { short: 'no GPU', detail: runtime.tensorrt.reason };
  return { short: runtime.tensorrt.reason.split(':')[0], detail: runtime.tensorrt.reason };
}

function planColumns(runtime: RuntimeInfo): ColumnPlan[] {
  const cuda = onnxRuntimeCudaStatus(runtime);
  const trt = tensorRtUnavailable(runtime);
  const onednn = onednnInfo();
  const trtColumn = (id: ColumnId, label: string): ColumnPlan => ({
    id,
    label,
    gpu: true,
    ...(trt ? { unavailable: trt.short, unavailableDetail: trt.detail } : {}),
  });
  return [
    { id: 'onnxruntime-cpu-fp32', label: 'onnxruntime CPU fp32', gpu: false, baseline: true },
    {
      id: 'onednn-cpu-fp32',
      label: 'onednn CPU fp32',
      gpu: false,
      ...(onednn.available ? {} : { unavailable: 'no oneDNN 2.x', unavailableDetail: onednn.reason ?? 'oneDNN unavailable' }),
    },
    {
      id: 'onnxruntime-cuda-fp32',
      label: 'onnxruntime CUDA fp32',
      gpu: true,
      ...(cuda.usable ? {} : { unavailable: cuda.short, unavailableDetail: cuda.detail }),
    },
    trtColumn('tensorrt-fp32', 'TensorRT fp32'),
    trtColumn('tensorrt-tf32', 'TensorRT tf32'),
    trtColumn('tensorrt-fp16', 'TensorRT fp16'),
  ];
}

function gitInfo(): BenchResults['git'] {
  try {
    const opts = { encoding: 'utf8' as const, stdio: ['ignore', 'pipe', 'ignore'] as ['ignore', 'pipe', 'ignore'] };
    const sha = execFileSync('git', ['rev-parse', 'HEAD'], opts).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], opts).trim() !== '';
    return { sha, dirty };
  } catch {
    return { sha: null, dirty: null };
  }
}

/** Runs one scenario in a fresh Node process. */
function runInFreshProcess(scenario: BenchScenario): Promise<WorkerReply> {
  const worker = fileURLToPath(new URL('./bench-worker.js', import.meta.url));
  return new Promise((resolve) => {
    let reply: WorkerReply | undefined;
    const child = fork(worker, [JSON.stringify(scenario)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    child.on('message', (message) => {
      reply = message as WorkerReply;
    });
    child.on('error', (error) => {
      reply ??= { ok: false, error: { code: 'ERR_UNEXPECTED', message: error.message } };
    });
    child.on('exit', (code, signal) => {
      resolve(reply ?? { ok: false, error: { code: 'ERR_UNEXPECTED', message: `bench worker exited (${signal ?? `code ${code}`}) without a result` } });
    });
  });
}

const fmt = (ms: number): string => (ms >= 100 ? ms.toFixed(1) : ms.toFixed(2));

async function measureAll(options: RunBenchOptions, log: (line: string) => void): Promise<BenchResults> {
  const mode = options.quick ? 'quick' : 'default';
  const runtime = await getRuntimeInfo();
  const model = await loadModel(options.model);
  const threads = options.threads ?? os.availableParallelism();
  const columnsPlan = planColumns(runtime);
  const rows: RowId[] = ['model-b1', 'model-b4', 'end2end', 'end2end-large', ...(options.xlarge ? ['end2end-xlarge' as const] : [])];
  const columns: BenchColumn[] = columnsPlan.map((c) => ({
    id: c.id,
    label: c.label,
    baseline: c.baseline,
    unavailable: c.unavailable,
    unavailableDetail: c.unavailableDetail,
    source: 'this machine',
    cells: {},
  }));

  const jobs: Array<{ column: BenchColumn; row: RowId; scenario: BenchScenario }> = [];
  columnsPlan.forEach((plan, index) => {
    const column = columns[index];
    for (const row of rows) {
      if (plan.unavailable) {
        column.cells[row] = { unavailable: plan.unavailable };
        continue;
      }
      if (row === 'end2end-large' && !plan.gpu && !options.large) {
        column.cells[row] = { unavailable: 'GPU only by default (--large runs it here)' };
        continue;
      }
      const runPlan = (plan.gpu ? GPU_PLANS : CPU_PLANS)[mode][row];
      const common = { column: plan.id, plan: runPlan, model: options.model, threads };
      const scenario: BenchScenario =
        row === 'model-b1' || row === 'model-b4'
          ? { kind: 'model', batch: row === 'model-b1' ? 1 : 4, ...common }
          : { kind: 'end2end', phantom: row === 'end2end' ? 'small' : row === 'end2end-large' ? 'large' : 'xlarge', ...common };
      jobs.push({ column, row, scenario });
    }
  });

  for (const [index, job] of jobs.entries()) {
    const what = `${job.column.label}, ${ROW_LABELS[job.row]}`;
    log(`[${index + 1}/${jobs.length}] ${what} ...`);
    const started = performance.now();
    const reply = await runInFreshProcess(job.scenario);
    let cell: BenchCell;
    if (reply.ok) {
      cell = reply.cell;
      const s = cell.stats;
      log(
        `[${index + 1}/${jobs.length}] ${what}: ${s ? `${fmt(s.mean)} ms mean, median ${fmt(s.median)}, CV ${(s.cv * 100).toFixed(1)} %, ${s.count} runs` : 'no figure'}` +
          (cell.eventLoop ? `, event loop p99 ${cell.eventLoop.p99Ms.toFixed(1)} ms, max ${cell.eventLoop.maxMs.toFixed(1)} ms` : '') +
          ` (${((performance.now() - started) / 1000).toFixed(1)} s)`,
      );
    } else {
      cell = { unavailable: `failed: ${reply.error.code}`, detail: reply.error.message };
      log(`[${index + 1}/${jobs.length}] ${what}: failed: ${reply.error.code}: ${reply.error.message}`);
    }
    job.column.cells[job.row] = cell;
  }

  const cpus = os.cpus();
  const gpus = 'cuda' in runtime.native ? runtime.native.cuda.devices : [];
  const plans = CPU_PLANS[mode];
  return {
    schema: 1,
    createdAt: new Date().toISOString(),
    command: options.command ?? 'spleen-trt bench',
    mode,
    git: gitInfo(),
    model: { name: model.manifest.name, source: model.source, sha256: model.sha256 },
    machine: {
      cpu: cpus[0]?.model ?? 'unknown',
      cores: os.availableParallelism(),
      totalMemoryBytes: os.totalmem(),
      platform: `${process.platform}-${process.arch}`,
      node: process.version,
      gpus: gpus.map((g) => ({ name: g.name, computeCapability: g.computeCapability, memoryBytes: g.totalMemoryBytes })),
      loadAverage: os.loadavg(),
    },
    threads: { onnxruntimeIntraOp: threads, onnxruntimeInterOp: 1, uvThreadpool: Number(process.env.UV_THREADPOOL_SIZE ?? 4) },
    method: {
      statistic: 'mean (the bundle table\'s statistic); median, p90/p95/p99 and CV in the details',
      'model computation':
        'the backend\'s compute time per call divided by the batch (onnxruntime CPU: session.run; TensorRT: CUDA events around the enqueue on device-resident buffers), random input in [0, 1)',
      'end2end': 'read .nii.gz -> Segmenter.segment -> write the float32 mask .nii.gz, on a generated LPS int16 phantom (256x256x60 at 0.8x0.8x5 mm, 12 windows)',
      // The measuring processes inherit this process's addon and environment.
      'cpu stages': volumeKernelsStatus().reason,
      '.nii.gz codec': gzipCodecStatus().reason,
      'event loop': 'perf_hooks.monitorEventLoopDelay (2 ms resolution) over the measured end2end runs, p99 and max in the stage tables',
      'runs (CPU)': `warm-up >= ${plans['model-b4'].warmupIterations} runs and ${plans['model-b4'].warmupMs} ms (excluded, reported); model rows >= ${plans['model-b1'].minIterations} (batch 1) / ${plans['model-b4'].minIterations} (batch 4) runs and ${plans['model-b4'].minDurationMs / 1000} s; end2end >= ${plans.end2end.minIterations} runs and ${plans.end2end.minDurationMs / 1000} s`,
      isolation: 'each scenario in a fresh Node process',
    },
    runtime,
    rows,
    columns,
    merged: [],
  };
}

function stamp(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
}

/** Measures (or re-renders `from`), merges, writes `<outDir>/bench-<stamp>.{json,md,png}` and `latest.*`. */
export async function runBench(options: RunBenchOptions = {}): Promise<RunBenchResult> {
  const log = options.log ?? (() => undefined);
  let results: BenchResults;
  if (options.from) {
    results = JSON.parse(await readFile(options.from, 'utf8')) as BenchResults;
    if (results?.schema !== 1 || !Array.isArray(results.columns)) throw new TypeError(`Expected a spleen-trt bench results JSON for ${options.from}`);
  } else {
    results = await measureAll(options, log);
  }
  for (const file of options.merge ?? []) {
    const merged = torchBaselineColumns(JSON.parse(await readFile(file, 'utf8')), path.basename(file));
    results = mergeColumns(results, merged.columns, { file: path.basename(file), device: merged.device, tool: merged.tool });
  }
  const markdown = renderBenchMarkdown(results);
  const outDir = options.outDir ?? path.join('bench', 'results');
  await mkdir(outDir, { recursive: true });
  const base = path.join(outDir, `bench-${stamp(new Date(results.createdAt))}${options.from ? '-merged' : ''}`);
  const files: string[] = [];
  const write = async (file: string, data: string | Uint8Array): Promise<void> => {
    await writeFile(file, data);
    files.push(file);
  };
  const json = `${JSON.stringify(results, null, 2)}\n`;
  await write(`${base}.json`, json);
  await write(`${base}.md`, markdown);
  await write(path.join(outDir, 'latest.json'), json);
  await write(path.join(outDir, 'latest.md'), markdown);
  if (options.chart !== false) {
    const png = renderBarChart(benchChartSpec(results));
    await write(`${base}.png`, png);
    await write(path.join(outDir, 'latest.png'), png);
  }
  return { results, markdown, files };
}
