/**
 * The evaluation report as files: a CSV with one row per case (for spreadsheets) and a JSON
 * document with the cases, the mean and the run's context (model, backend). Both are written
 * atomically; NaN Dice (empty label) is "nan" in the CSV, as MONAI's metric writers print it, and
 * null in the JSON.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { expectedType } from '../errors.js';
import { writeFileAtomic } from '../write-file-atomic.js';
import type { EvaluationReport } from './evaluate-segmentations.js';

const CSV_COLUMNS = [
  'name', 'dice', 'predicted_volume_ml', 'true_volume_ml', 'predicted_voxels', 'true_voxels', 'intersection_voxels', 'total_ms', 'image', 'label', 'error',
] as const;

function csvField(value: string | number): string {
  if (typeof value === 'number') return Number.isNaN(value) ? 'nan' : String(value);
  return /[",\n\r]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

function round(value: number, digits: number): number {
  if (!Number.isFinite(value)) return value;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** One header row and one row per case. */
export function formatEvaluationCsv(report: EvaluationReport): string {
  const rows = [CSV_COLUMNS.join(',')];
  for (const c of report.cases) {
    rows.push(
      [
        c.name, round(c.dice, 6), round(c.predictedVolumeMl, 3), round(c.trueVolumeMl, 3), c.predictedVoxels, c.trueVoxels, c.intersectionVoxels,
        round(c.totalMs, 1), c.image, c.label, c.error ? `${c.error.code}: ${c.error.message}` : '',
      ].map(csvField).join(','),
    );
  }
  return `${rows.join('\n')}\n`;
}

/** The report as JSON text (NaN as null), with `context` (model, backend, ...) alongside. */
export function formatEvaluationJson(report: EvaluationReport, context: Record<string, unknown> = {}): string {
  return `${JSON.stringify({ ...context, ...report }, (_key, value) => (typeof value === 'number' && !Number.isFinite(value) ? null : value), 2)}\n`;
}

/**
 * Writes `<base>.csv` and `<base>.json` (a trailing .csv or .json on `base` is dropped).
 * @example
 * const { csv, json } = await writeEvaluationReport('out/report', report, { model: 'default' });
 */
export async function writeEvaluationReport(base: string, report: EvaluationReport, context: Record<string, unknown> = {}): Promise<{ csv: string; json: string }> {
  if (typeof base !== 'string' || base === '') throw expectedType('a file path', 'base', base);
  const stem = base.replace(/\.(csv|json)$/i, '');
  const csv = `${stem}.csv`;
  const json = `${stem}.json`;
  await mkdir(path.dirname(path.resolve(stem)), { recursive: true });
  await writeFileAtomic(csv, formatEvaluationCsv(report));
  await writeFileAtomic(json, formatEvaluationJson(report, context));
  return { csv, json };
}
