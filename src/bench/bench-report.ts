/**
 * The bench's results: the JSON document, the bundle-style markdown table (a column per backend
 * and precision, then speedups against the fp32 baseline), the details behind each cell, and the
 * merge of `bench/torch_baseline.py` output as extra columns.
 */
import { expectedType } from '../errors.js';
import type { BarChartSpec } from './png-chart.js';
import { summarizeSamples, type SampleStats } from './sample-stats.js';

/** The table's rows, as in the bundle's README. */
export type RowId = 'model-b1' | 'model-b4' | 'end2end' | 'end2end-large' | 'end2end-xlarge';

export const ROW_LABELS: Record<RowId, string> = {
  'model-b1': 'model computation (batch 1)',
  'model-b4': 'model computation (batch 4, per window)',
  end2end: 'end2end (per volume)',
  'end2end-large': 'end2end (per volume, MSD-like 512x512x90)',
  'end2end-xlarge': 'end2end (per volume, abdominal 512x512x300)',
};

export const ROW_ORDER: readonly RowId[] = ['model-b1', 'model-b4', 'end2end', 'end2end-large', 'end2end-xlarge'];

/** One measured (or not measured) table cell. */
export interface BenchCell {
  /** The cell's figure: ms per window (model rows) or per volume (end2end rows). */
  stats?: SampleStats;
  /** Why there is no figure. */
  unavailable?: string;
  /** Excluded warm-up runs. */
  warmup?: { iterations: number; totalMs: number; firstMs: number };
  /** Wall time around each backend call (data transfers and thread hand-off included), per window. */
  hostLatency?: SampleStats;
  /** end2end: each stage's per-volume statistics (readMs, preprocessMs, computeMs, ...). */
  stages?: Record<string, SampleStats>;
  /** end2end: sliding-window windows per volume. */
  windowCount?: number;
  /**
   * end2end: event-loop delay while the measured runs went on (perf_hooks.monitorEventLoopDelay,
   * ms): how long the main thread was kept from timers, i.e. the longest stall a service would see.
   */
  eventLoop?: { p50Ms: number; p99Ms: number; maxMs: number; resolutionMs: number };
  /** Peak resident set size of the measuring process (bytes). */
  peakRssBytes?: number;
  /** One-time costs before the first run: model build, session or engine load (ms). */
  setupMs?: number;
  /** Free text: input shape, phantom, provider detail. */
  detail?: string;
}

export interface BenchColumn {
  id: string;
  label: string;
  /** The fp32 reference every speedup divides by. */
  baseline?: boolean;
  /** Short reason the whole column could not run here (`no TensorRT`); the cell texts repeat it. */
  unavailable?: string;
  /** Longer explanation of `unavailable`. */
  unavailableDetail?: string;
  /** Where the figures come from: `this machine`, or the merged file and its device. */
  source: string;
  cells: Partial<Record<RowId, BenchCell>>;
}

export interface BenchResults {
  schema: 1;
  createdAt: string;
  command: string;
  mode: 'quick' | 'default';
  git: { sha: string | null; dirty: boolean | null };
  model: { name: string; source: string; sha256: string };
  machine: {
    cpu: string;
    cores: number;
    totalMemoryBytes: number;
    platform: string;
    node: string;
    gpus: Array<{ name: string; computeCapability?: string; memoryBytes?: number }>;
    loadAverage: number[];
  };
  threads: { onnxruntimeIntraOp: number; onnxruntimeInterOp: number; uvThreadpool: number };
  /** Method notes: warm-up and iteration rules, statistic. */
  method: Record<string, string>;
  /** getRuntimeInfo() of the measuring machine. */
  runtime: unknown;
  rows: RowId[];
  columns: BenchColumn[];
  merged: Array<{ file: string; device: string; tool: string }>;
}

const fmtMs = (ms: number): string => (ms >= 1000 ? ms.toFixed(0) : ms >= 100 ? ms.toFixed(1) : ms >= 10 ? ms.toFixed(2) : ms.toFixed(3));
const fmtSpeedup = (x: number): string => `${x >= 10 ? x.toFixed(1) : x.toFixed(2)}x`;
const fmtPct = (x: number): string => `${(x * 100).toFixed(1)} %`;

function cellText(column: BenchColumn, row: RowId): string {
  const cell = column.cells[row];
  if (cell?.stats) return fmtMs(cell.stats.mean);
  const why = cell?.unavailable ?? column.unavailable ?? 'not measured';
  return `n/a: ${why}`;
}

/** baseline mean / column mean for a row, when both were measured. */
export function speedup(baseline: BenchColumn | undefined, column: BenchColumn, row: RowId): number | null {
  const b = baseline?.cells[row]?.stats?.mean;
  const c = column.cells[row]?.stats?.mean;
  return b !== undefined && c !== undefined && c > 0 ? b / c : null;
}

/** Rows that have at least one cell (measured or explained). */
function presentRows(results: BenchResults): RowId[] {
  return results.rows.filter((row) => results.columns.some((c) => c.cells[row] !== undefined));
}

const escapeCell = (s: string): string => s.replace(/\|/g, '\\|');

/** The bundle-style table: mean ms per column, then speedups against the baseline. */
export function renderMainTable(results: BenchResults): string {
  const baseline = results.columns.find((c) => c.baseline);
  const others = results.columns.filter((c) => !c.baseline && ROW_ORDER.some((r) => c.cells[r]?.stats));
  const header = [
    'method',
    ...results.columns.map((c) => `${c.label} (ms)`),
    ...(baseline ? others.map((c) => `speedup ${c.label}`) : []),
  ];
  const lines = [`| ${header.map(escapeCell).join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const row of presentRows(results)) {
    const cells = [
      ROW_LABELS[row],
      ...results.columns.map((c) => cellText(c, row)),
      ...(baseline
        ? others.map((c) => {
            const s = speedup(baseline, c, row);
            return s === null ? 'n/a' : fmtSpeedup(s);
          })
        : []),
    ];
    lines.push(`| ${cells.map(escapeCell).join(' | ')} |`);
  }
  return lines.join('\n');
}

/** Every measured cell's full statistics. */
export function renderDetailsTable(results: BenchResults): string {
  const lines = [
    '| row | column | mean | median | p90 | p95 | p99 | CV | runs | warm-up (excluded) | host latency mean |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const row of presentRows(results)) {
    for (const column of results.columns) {
      const cell = column.cells[row];
      const s = cell?.stats;
      if (!s) continue;
      const warm = cell.warmup ? `${cell.warmup.iterations} runs, ${fmtMs(cell.warmup.totalMs)} ms (first ${fmtMs(cell.warmup.firstMs)})` : '-';
      const host = cell.hostLatency ? fmtMs(cell.hostLatency.mean) : '-';
      lines.push(
        `| ${ROW_LABELS[row]} | ${escapeCell(column.label)} | ${fmtMs(s.mean)} | ${fmtMs(s.median)} | ${fmtMs(s.p90)} | ${fmtMs(s.p95)} | ` +
          `${fmtMs(s.p99)} | ${fmtPct(s.cv)} | ${s.count} | ${warm} | ${host} |`,
      );
    }
  }
  return lines.join('\n');
}

/** Stage names of an end2end run, in pipeline order, with their labels. */
export const STAGE_LABELS: ReadonlyArray<[string, string]> = [
  ['readMs', 'read + decompress'],
  ['preprocessMs', 'preprocess (orientation, spacing, intensity)'],
  ['networkMs', 'sliding window (all windows)'],
  ['h2dMs', '  of which host to device'],
  ['computeMs', '  of which model computation'],
  ['d2hMs', '  of which device to host'],
  ['stitchMs', '  of which gather + stitch'],
  ['postprocessMs', 'postprocess (softmax, inverse, argmax)'],
  ['writeMs', 'write mask (.nii.gz)'],
  ['totalMs', 'end2end (read start to file written)'],
  ['outsideNetworkMs', 'end2end minus model computation'],
];

/** Per-stage means of every end2end cell. */
export function renderStagesTable(results: BenchResults, row: RowId): string | null {
  const columns = results.columns.filter((c) => c.cells[row]?.stages);
  if (columns.length === 0) return null;
  const lines = [`| stage (${ROW_LABELS[row]}) | ${columns.map((c) => `${escapeCell(c.label)} (ms)`).join(' | ')} |`, `|---|${columns.map(() => '---').join('|')}|`];
  for (const [key, label] of STAGE_LABELS) {
    if (!columns.some((c) => c.cells[row]?.stages?.[key])) continue;
    lines.push(`| ${label} | ${columns.map((c) => {
      const s = c.cells[row]?.stages?.[key];
      return s ? fmtMs(s.mean) : '-';
    }).join(' | ')} |`);
  }
  lines.push(
    `| event-loop delay p99 / max (ms) | ${columns.map((c) => {
      const e = c.cells[row]?.eventLoop;
      return e === undefined ? '-' : `${e.p99Ms.toFixed(1)} / ${e.maxMs.toFixed(1)}`;
    }).join(' | ')} |`,
  );
  lines.push(`| windows per volume | ${columns.map((c) => String(c.cells[row]?.windowCount ?? '-')).join(' | ')} |`);
  lines.push(
    `| peak RSS (MiB) | ${columns.map((c) => {
      const b = c.cells[row]?.peakRssBytes;
      return b === undefined ? '-' : (b / 2 ** 20).toFixed(0);
    }).join(' | ')} |`,
  );
  return lines.join('\n');
}

/** The whole markdown report. */
export function renderBenchMarkdown(results: BenchResults): string {
  const m = results.machine;
  const gpus = m.gpus.length ? m.gpus.map((g) => `${g.name}${g.computeCapability ? ` (sm ${g.computeCapability})` : ''}`).join(', ') : 'none';
  const parts = [
    `# spleen-trt bench (${results.mode})`,
    '',
    `${results.createdAt}; \`${results.command}\``,
    '',
    `- machine: ${m.cpu}, ${m.cores} cores, ${(m.totalMemoryBytes / 2 ** 30).toFixed(1)} GiB, ${m.platform}, Node ${m.node}; GPU: ${gpus}; load average at start ${m.loadAverage.map((x) => x.toFixed(2)).join(' ')}`,
    `- threads: onnxruntime intra-op ${results.threads.onnxruntimeIntraOp}, inter-op ${results.threads.onnxruntimeInterOp}; libuv pool ${results.threads.uvThreadpool}`,
    `- model: ${results.model.name} (${results.model.source}), ONNX sha256 ${results.model.sha256}`,
    `- git: ${results.git.sha ?? 'unknown'}${results.git.dirty ? ' (with uncommitted changes)' : ''}`,
    ...Object.entries(results.method).map(([k, v]) => `- ${k}: ${v}`),
    '',
    renderMainTable(results),
    '',
  ];
  // One note per distinct explanation (the three TensorRT columns usually share theirs).
  const notes = new Map<string, string[]>();
  for (const c of results.columns) {
    const text = [c.unavailableDetail, c.source !== 'this machine' ? `measured elsewhere: ${c.source}` : undefined].filter(Boolean).join('; ');
    if (text) notes.set(text, [...(notes.get(text) ?? []), c.label]);
  }
  if (notes.size) parts.push(...[...notes].map(([text, labels]) => `- ${labels.join(', ')}: ${text}`), '');
  parts.push('## Details', '', renderDetailsTable(results), '');
  for (const row of ['end2end', 'end2end-large', 'end2end-xlarge'] as const) {
    const stages = renderStagesTable(results, row);
    if (stages) parts.push(stages, '');
  }
  return parts.join('\n');
}

/** The chart: one panel per row, one bar per column (n/a columns as text). */
export function benchChartSpec(results: BenchResults): BarChartSpec {
  const baseline = results.columns.find((c) => c.baseline);
  return {
    title: 'spleen-trt bench: mean ms, lower is better',
    subtitle: `${results.machine.cpu.slice(0, 40)}, ${results.machine.cores} cores${results.machine.gpus[0] ? `, ${results.machine.gpus[0].name}` : ''}`,
    panels: presentRows(results).map((row) => ({
      title: ROW_LABELS[row],
      bars: results.columns.map((c) => {
        const s = c.cells[row]?.stats;
        if (!s) return { label: c.label, value: null, note: cellText(c, row) };
        const x = c.baseline ? null : speedup(baseline, c, row);
        return { label: c.label, value: s.mean, note: `${fmtMs(s.mean)} ms${x === null ? '' : ` (${fmtSpeedup(x)})`}` };
      }),
    })),
  };
}

// ---------------------------------------------------------------- torch_baseline.py merge

interface TorchJson {
  tool: string;
  schema: number;
  device: { type: string; name: string };
  torch: string;
  columns: Array<{ id: string; label: string; rows: Record<string, unknown>; note?: string }>;
}

function isStats(value: unknown): value is SampleStats {
  if (typeof value !== 'object' || value === null) return false;
  const s = value as Record<string, unknown>;
  return ['count', 'mean', 'median', 'p90', 'p95', 'p99', 'min', 'max', 'stdev', 'cv'].every((k) => typeof s[k] === 'number' && Number.isFinite(s[k]));
}

/**
 * Columns from a `bench/torch_baseline.py` JSON document. Throws a TypeError naming `file` when
 * the document is not one.
 */
export function torchBaselineColumns(json: unknown, file: string): { columns: BenchColumn[]; device: string; tool: string } {
  const doc = json as TorchJson;
  const bad = (what: string): TypeError => expectedType(`a bench/torch_baseline.py result (${what})`, file, json);
  if (typeof doc !== 'object' || doc === null || doc.schema !== 1 || typeof doc.tool !== 'string') throw bad('schema 1');
  if (typeof doc.device !== 'object' || doc.device === null || typeof doc.device.name !== 'string') throw bad('device.name');
  if (!Array.isArray(doc.columns) || doc.columns.length === 0) throw bad('columns[]');
  const device = `${doc.device.name} (${doc.device.type}), torch ${doc.torch}`;
  const columns = doc.columns.map((col): BenchColumn => {
    if (typeof col.id !== 'string' || typeof col.label !== 'string' || typeof col.rows !== 'object' || col.rows === null) throw bad('column id, label, rows');
    const cells: Partial<Record<RowId, BenchCell>> = {};
    for (const [row, value] of Object.entries(col.rows)) {
      if (!(ROW_ORDER as readonly string[]).includes(row)) continue;
      const cell = value as { stats?: unknown; samples?: unknown; unavailable?: unknown; warmup?: BenchCell['warmup'] };
      if (typeof cell.unavailable === 'string') {
        cells[row as RowId] = { unavailable: cell.unavailable };
        continue;
      }
      let stats: SampleStats;
      if (Array.isArray(cell.samples) && cell.samples.length > 0) stats = summarizeSamples(cell.samples as number[]);
      else if (isStats(cell.stats)) stats = cell.stats;
      else throw bad(`statistics for ${col.id} ${row}`);
      cells[row as RowId] = { stats, warmup: cell.warmup, detail: col.note };
    }
    return { id: col.id, label: col.label, source: `${file} (${device})`, cells };
  });
  return { columns, device, tool: doc.tool };
}

/** Adds (or replaces, by id) merged columns, keeping the results' row list. */
export function mergeColumns(results: BenchResults, columns: BenchColumn[], note: { file: string; device: string; tool: string }): BenchResults {
  const ids = new Set(columns.map((c) => c.id));
  return {
    ...results,
    columns: [...results.columns.filter((c) => !ids.has(c.id)), ...columns],
    merged: [...results.merged.filter((m) => m.file !== note.file), note],
  };
}
