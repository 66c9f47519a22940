/**
 * One bench scenario, run in a fresh process (`fork`ed by run-bench.ts) so that no scenario
 * inherits another's warmed caches, allocator state or JIT: the scenario comes as JSON in argv[2],
 * the BenchCell goes back over the IPC channel.
 *
 * Method (trtexec's): warm-up runs until both a minimum count and a minimum time have passed and
 * are reported, not counted; then measured runs until both a minimum count and a minimum time
 * have passed (capped by a maximum count). "Model computation" is the backend's own compute time
 * per batch (onnxruntime: `session.run`; TensorRT: CUDA events around the enqueue, on device
 * buffers), divided by the batch for a per-window figure; the wall time around each call is kept
 * as host latency.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeMaskNifti } from '../cli/infer-command.js';
import { SpleenTrtError } from '../errors.js';
import type { InferenceBackend } from '../inference/backend.js';
import { createOnednnBackend } from '../inference/onednn-backend.js';
import { createOnnxRuntimeBackend } from '../inference/onnxruntime-backend.js';
import { createTensorRtBackend } from '../inference/tensorrt-backend.js';
import type { TensorRtPrecision } from '../inference/tensorrt-native.js';
import { loadModel, onnxRuntimeGraph, tensorRtModel } from '../model/load-model.js';
import { readNifti, writeNifti } from '../nifti/index.js';
import { makePhantom, mulberry32 } from '../phantom/make-phantom.js';
import { Segmenter } from '../segmenter.js';
import type { Shape3, Vec3 } from '../volume/volume.js';
import type { BenchCell } from './bench-report.js';
import { scaleStats, summarizeSamples } from './sample-stats.js';

/** When to stop warming up and measuring. */
export interface RunPlan {
  warmupIterations: number;
  warmupMs: number;
  minIterations: number;
  minDurationMs: number;
  maxIterations: number;
}

/** The columns the worker knows how to run. */
export type ColumnId =
  | 'onnxruntime-cpu-fp32'
  | 'onednn-cpu-fp32'
  | 'onnxruntime-cuda-fp32'
  | 'tensorrt-fp32'
  | 'tensorrt-tf32'
  | 'tensorrt-fp16';

export type PhantomSize = 'small' | 'large' | 'xlarge';

/** The phantoms: the small CPU case, an MSD-like CT and a thin-slice abdominal series. */
export const PHANTOMS: Record<PhantomSize, { shape: Shape3; spacingMm: Vec3 }> = {
  small: { shape: [256, 256, 60], spacingMm: [0.8, 0.8, 5.0] },
  large: { shape: [512, 512, 90], spacingMm: [0.8, 0.8, 2.5] },
  xlarge: { shape: [512, 512, 300], spacingMm: [0.7, 0.7, 1.0] },
};

export type BenchScenario =
  | { kind: 'model'; column: ColumnId; batch: number; plan: RunPlan; model?: string; threads?: number }
  | { kind: 'end2end'; column: ColumnId; phantom: PhantomSize; plan: RunPlan; model?: string; threads?: number };

export type WorkerReply = { ok: true; cell: BenchCell } | { ok: false; error: { code: string; message: string } };

const ROI: Shape3 = [96, 96, 96];
const EVENT_LOOP_RESOLUTION_MS = 2;

interface Measured<T> {
  samples: T[];
  warmup: { iterations: number; totalMs: number; firstMs: number };
}

/** Runs `once` through a warm-up and a measured phase; `once` returns its own wall time and data. */
export async function measure<T extends { wallMs: number }>(plan: RunPlan, once: () => Promise<T>, onMeasureStart?: () => void): Promise<Measured<T>> {
  let iterations = 0;
  let firstMs = 0;
  const warmStart = performance.now();
  while (iterations < plan.warmupIterations || performance.now() - warmStart < plan.warmupMs) {
    const r = await once();
    if (iterations === 0) firstMs = r.wallMs;
    iterations++;
  }
  const warmup = { iterations, totalMs: performance.now() - warmStart, firstMs };
  onMeasureStart?.();
  const samples: T[] = [];
  const start = performance.now();
  while (samples.length < plan.maxIterations && (samples.length < plan.minIterations || performance.now() - start < plan.minDurationMs)) {
    samples.push(await once());
  }
  return { samples, warmup };
}

function precisionOf(column: ColumnId): TensorRtPrecision {
  return column === 'tensorrt-tf32' ? 'tf32' : column === 'tensorrt-fp16' ? 'fp16' : 'fp32';
}

/** onnxruntime with the CUDA execution provider, timed around session.run (copies included). */
async function onnxRuntimeCudaBackend(onnx: Uint8Array): Promise<InferenceBackend> {
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(onnx, { executionProviders: ['cuda'], graphOptimizationLevel: 'all' });
  const [inputName] = session.inputNames;
  const [outputName] = session.outputNames;
  return {
    name: 'onnxruntime',
    inputName,
    outputName,
    outputChannels: 2,
    description: `onnxruntime-node ${ort.env.versions.node ?? ''} CUDA execution provider (host tensors: copies included)`,
    async run(input, batch, roi) {
      const t0 = performance.now();
      const out = (await session.run({ [inputName]: new ort.Tensor('float32', input, [batch, 1, ...roi]) }))[outputName];
      return { logits: out.data as Float32Array, timings: { computeMs: performance.now() - t0 } };
    },
    close: () => session.release(),
  };
}

async function openBackend(scenario: BenchScenario): Promise<InferenceBackend> {
  const model = await loadModel(scenario.model);
  switch (scenario.column) {
    case 'onnxruntime-cpu-fp32':
      return createOnnxRuntimeBackend(onnxRuntimeGraph(model), { intraOpThreads: scenario.threads ?? os.availableParallelism() });
    case 'onednn-cpu-fp32': {
      const { input, output } = model.manifest;
      return createOnednnBackend(tensorRtModel(model).onnx, { inputName: input.name, outputName: output.name }, { threads: scenario.threads });
    }
    case 'onnxruntime-cuda-fp32':
      return onnxRuntimeCudaBackend(model.onnx);
    default:
      return createTensorRtBackend({
        model,
        precision: precisionOf(scenario.column),
        stableBatch: scenario.kind === 'model' ? scenario.batch : 4,
      });
  }
}

async function runModel(scenario: Extract<BenchScenario, { kind: 'model' }>): Promise<BenchCell> {
  const t0 = performance.now();
  const backend = await openBackend(scenario);
  const setupMs = performance.now() - t0;
  try {
    const { batch } = scenario;
    // Deterministic values in [0, 1): the range of the intensity-windowed network input.
    const random = mulberry32(7);
    const input = new Float32Array(batch * ROI[0] * ROI[1] * ROI[2]);
    for (let i = 0; i < input.length; i++) input[i] = random();
    const { samples, warmup } = await measure(scenario.plan, async () => {
      const start = performance.now();
      const { timings } = await backend.run(input, batch, ROI);
      return { wallMs: performance.now() - start, computeMs: timings.computeMs };
    });
    return {
      stats: scaleStats(summarizeSamples(samples.map((s) => s.computeMs)), 1 / batch),
      hostLatency: scaleStats(summarizeSamples(samples.map((s) => s.wallMs)), 1 / batch),
      warmup,
      setupMs,
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
      detail: `${backend.description}; batch ${batch} x 1 x ${ROI.join('x')}`,
    };
  } finally {
    await backend.close();
  }
}

async function runEnd2end(scenario: Extract<BenchScenario, { kind: 'end2end' }>): Promise<BenchCell> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'spleen-trt-bench-'));
  try {
    const geometry = PHANTOMS[scenario.phantom];
    const phantom = makePhantom({ ...geometry, seed: 1 });
    const input = path.join(dir, 'phantom_ct.nii.gz');
    // An int16 .nii.gz, as a converted DICOM series usually is.
    await writeNifti(input, phantom.image, { datatype: 'int16' });
    const outDir = path.join(dir, 'out');
    await mkdir(outDir);
    const output = path.join(outDir, 'phantom_ct_trans.nii.gz');

    const t0 = performance.now();
    const isTensorRt = scenario.column.startsWith('tensorrt');
    if (scenario.column === 'onnxruntime-cuda-fp32') {
      throw new SpleenTrtError('ERR_BACKEND_UNAVAILABLE', 'end2end runs through Segmenter, which has no onnxruntime CUDA backend');
    }
    const segmenter = await Segmenter.create({
      model: scenario.model,
      backend: isTensorRt ? 'tensorrt' : scenario.column === 'onednn-cpu-fp32' ? 'onednn' : 'onnxruntime',
      threads: scenario.threads,
      ...(isTensorRt ? { precision: precisionOf(scenario.column) } : {}),
    });
    const setupMs = performance.now() - t0;
    let windowCount = 0;
    // Event-loop stalls during the measured runs (warm-up excluded): a timer every 2 ms that
    // records how late it fires.
    const delay = monitorEventLoopDelay({ resolution: EVENT_LOOP_RESOLUTION_MS });
    try {
      delay.enable();
      const { samples, warmup } = await measure(scenario.plan, async () => {
        const start = performance.now();
        const { volume } = await readNifti(input);
        const readMs = performance.now() - start;
        const result = await segmenter.segment(volume);
        const writeStart = performance.now();
        await writeMaskNifti(output, result.mask);
        const end = performance.now();
        windowCount = result.windowCount;
        const t = result.timings;
        const stages: Record<string, number> = { readMs, preprocessMs: t.preprocessMs, networkMs: t.networkMs };
        // Host/device copies only exist with a device.
        if (isTensorRt) Object.assign(stages, { h2dMs: t.h2dMs, computeMs: t.computeMs, d2hMs: t.d2hMs });
        else stages.computeMs = t.computeMs;
        Object.assign(stages, { stitchMs: t.stitchMs, postprocessMs: t.postprocessMs, writeMs: end - writeStart, totalMs: end - start });
        // Everything but the network: what the CPU path's stages cost around it, per volume.
        stages.outsideNetworkMs = end - start - t.computeMs;
        return { wallMs: end - start, stages };
      }, () => delay.reset());
      delay.disable();
      const stages: Record<string, ReturnType<typeof summarizeSamples>> = {};
      for (const key of Object.keys(samples[0].stages)) stages[key] = summarizeSamples(samples.map((s) => s.stages[key]));
      return {
        stats: stages.totalMs,
        stages,
        warmup,
        setupMs,
        windowCount,
        eventLoop: {
          p50Ms: delay.percentile(50) / 1e6,
          p99Ms: delay.percentile(99) / 1e6,
          maxMs: delay.max / 1e6,
          resolutionMs: EVENT_LOOP_RESOLUTION_MS,
        },
        peakRssBytes: process.resourceUsage().maxRSS * 1024,
        detail: `${segmenter.info.backendDescription}; phantom ${geometry.shape.join('x')} at ${geometry.spacingMm.join('x')} mm, LPS int16 .nii.gz`,
      };
    } finally {
      await segmenter.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Runs one scenario in this process. */
export function runScenario(scenario: BenchScenario): Promise<BenchCell> {
  return scenario.kind === 'model' ? runModel(scenario) : runEnd2end(scenario);
}

async function main(): Promise<void> {
  let reply: WorkerReply;
  try {
    const scenario = JSON.parse(process.argv[2] ?? '') as BenchScenario;
    reply = { ok: true, cell: await runScenario(scenario) };
  } catch (error) {
    const code = error instanceof SpleenTrtError ? error.code : 'ERR_UNEXPECTED';
    reply = { ok: false, error: { code, message: error instanceof Error ? error.message : String(error) } };
  }
  if (process.send) await new Promise<void>((resolve) => process.send?.(reply, () => resolve()));
  else process.stdout.write(`${JSON.stringify(reply)}\n`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  main().then(
    () => process.exit(0),
    () => process.exit(1),
  );
}
