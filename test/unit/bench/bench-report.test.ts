import { describe, expect, it } from 'vitest';
import {
  benchChartSpec,
  mergeColumns,
  renderBenchMarkdown,
  renderMainTable,
  speedup,
  torchBaselineColumns,
  type BenchColumn,
  type BenchResults,
} from '../../../src/bench/bench-report.js';
import { summarizeSamples } from '../../../src/bench/sample-stats.js';

const stats = (mean: number) => summarizeSamples([mean * 0.9, mean, mean * 1.1]);

function results(columns: BenchColumn[]): BenchResults {
  return {
    schema: 1,
    createdAt: '2026-01-01T00:00:00.000Z',
    command: 'spleen-trt bench',
    mode: 'default',
    git: { sha: 'abc', dirty: false },
    model: { name: 'm', source: 'builtin:default', sha256: 'f'.repeat(64) },
    machine: { cpu: 'cpu', cores: 2, totalMemoryBytes: 2 ** 30, platform: 'linux-x64', node: 'v20', gpus: [], loadAverage: [0.1, 0.2, 0.3] },
    threads: { onnxruntimeIntraOp: 2, onnxruntimeInterOp: 1, uvThreadpool: 4 },
    method: { statistic: 'mean' },
    runtime: {},
    rows: ['model-b1', 'model-b4', 'end2end', 'end2end-large'],
    columns,
    merged: [],
  };
}

const baseline: BenchColumn = {
  id: 'onnxruntime-cpu-fp32',
  label: 'onnxruntime CPU fp32',
  baseline: true,
  source: 'this machine',
  cells: { 'model-b1': { stats: stats(300) }, 'model-b4': { stats: stats(200) }, end2end: { stats: stats(2400) } },
};
const trt: BenchColumn = {
  id: 'tensorrt-fp16',
  label: 'TensorRT fp16',
  unavailable: 'no TensorRT',
  unavailableDetail: 'libnvinfer.so.10 not found',
  source: 'this machine',
  cells: { 'model-b1': { unavailable: 'no TensorRT' } },
};
const fast: BenchColumn = {
  id: 'x',
  label: 'fast',
  source: 'this machine',
  cells: { 'model-b1': { stats: stats(100) }, 'model-b4': { stats: stats(50) } },
};

describe('renderMainTable', () => {
  it('has a column per backend, n/a with the reason, and speedups baseline / column', () => {
    const table = renderMainTable(results([baseline, trt, fast]));
    const lines = table.split('\n');
    expect(lines[0]).toBe('| method | onnxruntime CPU fp32 (ms) | TensorRT fp16 (ms) | fast (ms) | speedup fast |');
    expect(lines[2]).toBe('| model computation (batch 1) | 300.0 | n/a: no TensorRT | 100.0 | 3.00x |');
    expect(lines[3]).toBe('| model computation (batch 4, per window) | 200.0 | n/a: no TensorRT | 50.00 | 4.00x |');
    // end2end: measured only by the baseline; the others say why, speedup n/a.
    expect(lines[4]).toBe('| end2end (per volume) | 2400 | n/a: no TensorRT | n/a: not measured | n/a |');
    expect(lines).toHaveLength(5); // end2end-large has no cell anywhere: no row
  });

  it('computes speedup only when both figures exist', () => {
    expect(speedup(baseline, fast, 'model-b4')).toBe(4);
    expect(speedup(baseline, fast, 'end2end')).toBeNull();
    expect(speedup(undefined, fast, 'model-b1')).toBeNull();
  });
});

describe('renderBenchMarkdown and the chart spec', () => {
  it('explains each unavailable column once and lists every measured cell', () => {
    const md = renderBenchMarkdown(results([baseline, trt, fast]));
    expect(md).toContain('- TensorRT fp16: libnvinfer.so.10 not found');
    expect(md).toContain('| model computation (batch 1) | fast | 100.0 | 100.0 | 110.0 |');
    const spec = benchChartSpec(results([baseline, trt, fast]));
    expect(spec.panels[0].bars.map((b) => b.value)).toEqual([300, null, 100]);
    expect(spec.panels[0].bars[1].note).toBe('n/a: no TensorRT');
    expect(spec.panels[0].bars[2].note).toBe('100.0 ms (3.00x)');
  });
});

describe('torchBaselineColumns', () => {
  const doc = {
    tool: 'bench/torch_baseline.py',
    schema: 1,
    torch: '2.4.0',
    device: { type: 'cuda', name: 'NVIDIA H100' },
    columns: [
      { id: 'torch-cuda-fp32', label: 'torch CUDA fp32', rows: { 'model-b1': { samples: [6, 7, 8] }, end2end: { unavailable: 'network only' } } },
      { id: 'torch-cuda-amp', label: 'torch CUDA amp', rows: { 'model-b1': { stats: stats(4.5) }, 'model-b8': { samples: [1] } } },
    ],
  };

  it('turns each torch column into a bench column (samples summarised, unknown rows dropped)', () => {
    const { columns, device } = torchBaselineColumns(doc, 'torch.json');
    expect(device).toBe('NVIDIA H100 (cuda), torch 2.4.0');
    expect(columns.map((c) => c.id)).toEqual(['torch-cuda-fp32', 'torch-cuda-amp']);
    expect(columns[0].cells['model-b1']?.stats?.mean).toBe(7);
    expect(columns[0].cells.end2end?.unavailable).toBe('network only');
    expect(Object.keys(columns[1].cells)).toEqual(['model-b1']);
    expect(columns[0].source).toContain('torch.json');
  });

  it('rejects documents that are not torch_baseline.py output', () => {
    expect(() => torchBaselineColumns({ schema: 2 }, 'x.json')).toThrow(TypeError);
    expect(() => torchBaselineColumns({ ...doc, columns: [] }, 'x.json')).toThrow(/x\.json/);
    const noStats = { ...doc, columns: [{ id: 'a', label: 'a', rows: { 'model-b1': { stats: { mean: 1 } } } }] };
    expect(() => torchBaselineColumns(noStats, 'x.json')).toThrow(TypeError);
  });

  it('merges by id: a second merge of the same column replaces it', () => {
    const first = torchBaselineColumns(doc, 'torch.json');
    let r = mergeColumns(results([baseline]), first.columns, { file: 'torch.json', device: first.device, tool: first.tool });
    r = mergeColumns(r, first.columns.slice(0, 1), { file: 'torch.json', device: first.device, tool: first.tool });
    expect(r.columns.map((c) => c.id)).toEqual(['onnxruntime-cpu-fp32', 'torch-cuda-amp', 'torch-cuda-fp32']);
    expect(r.merged).toHaveLength(1);
    expect(renderMainTable(r)).toContain('speedup torch CUDA fp32');
  });
});
