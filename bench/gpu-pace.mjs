// Everything around the network at "GPU pace": read .nii.gz -> segmentVolume -> write the mask,
// with a stand-in backend that answers each batch at once (logits from the window's intensities,
// so the decided-region postprocess has boundaries to resolve), so what is left is
// what the CPU stages cost and how long they block the event loop. Reports per-stage medians and
// every event-loop stall >= 10 ms with the stage that was running (a 1 ms interval timer watches
// for late ticks), plus monitorEventLoopDelay's p99/max. Usage:
//   npm run build && node bench/gpu-pace.mjs [--large|--xlarge] [--runs 5] [--js-kernels] [--no-huge-pages]
//     [--kernel-times] [--kernel-threads N] [--gpu-ms-per-window X] [--stitch-ab A/B[/...]]
// --gpu-ms-per-window X: the stand-in answers each batch X ms per window after the previous batch
// (a serial GPU queue on a timer, no CPU taken), as a GPU would (the bundle publishes ~2 ms per
// window for TensorRT fp16); `model` is that simulated time, `totalMinusModel` = total - model.
// --stitch-ab A/B: the measured runs alternate between stitch tunings (sliding-window.ts
// setStitchTuning; each a comma list of key=value, e.g. fused=0,firstStore=0 for the previous
// versions' stitch, or - for the default), medians per tuning in `variants`: an in-process A/B.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { PHANTOMS } from '../dist/bench/bench-worker.js';
import { writeMaskNifti } from '../dist/cli/infer-command.js';
import { loadModel } from '../dist/model/load-model.js';
import { setVolumeKernelsEnabled, volumeKernels, volumeKernelsStatus } from '../dist/native/volume-kernels.js';
import { readNifti, writeNifti } from '../dist/nifti/index.js';
import { makePhantom } from '../dist/phantom/make-phantom.js';
import { segmentVolume } from '../dist/segment-volume.js';
import { standInBackend } from './stand-in-backend.mjs';
import { setStitchTuning } from '../dist/inference/sliding-window.js';

const args = process.argv.slice(2);
const size = args.includes('--xlarge') ? 'xlarge' : args.includes('--large') ? 'large' : 'small';
const runs = Number(args[args.indexOf('--runs') + 1]) || 5;
const gpuMsPerWindow = args.includes('--gpu-ms-per-window') ? Number(args[args.indexOf('--gpu-ms-per-window') + 1]) : 0;
if (!(gpuMsPerWindow >= 0)) throw new Error('--gpu-ms-per-window takes a number of milliseconds >= 0');
const parseTuning = (spec) => (spec === '-' ? {} : Object.fromEntries(spec.split(',').map((kv) => {
  const [k, v] = kv.split('=');
  return [k, v === 'true' ? true : v === 'false' ? false : k === 'threads' ? Number(v) : v === '1'];
})));
const variantSpecs = args.includes('--stitch-ab') ? args[args.indexOf('--stitch-ab') + 1].split('/') : ['-'];
const defaultTuning = setStitchTuning({});
const variantOf = (r) => variantSpecs[(r - 1 + variantSpecs.length) % variantSpecs.length];
if (args.includes('--js-kernels')) setVolumeKernelsEnabled(false);
// At most N threads per addon kernel (1 = every kernel on one pool thread), for an A/B of the split.
if (args.includes('--kernel-threads')) volumeKernels()?.setKernelThreads(Number(args[args.indexOf('--kernel-threads') + 1]), false);
// --kernel-times: each addon kernel's time per volume (call to settle; on the pool the wait for a
// pool thread included), medians over the measured runs in `kernelMs`.
const kernelRun = {};
const kernelTimes = {};
if (args.includes('--kernel-times') && volumeKernels() !== null) {
  const kernels = volumeKernels();
  for (const [name, f] of Object.entries(kernels)) {
    if (typeof f !== 'function' || name === 'setKernelThreads') continue;
    const add = (t) => { kernelRun[name] = (kernelRun[name] ?? 0) + performance.now() - t; };
    kernels[name] = (...a) => {
      const t = performance.now();
      const result = f.apply(kernels, a);
      if (result instanceof Promise) return result.then((value) => { add(t); return value; });
      add(t);
      return result;
    };
  }
}
// Huge-page advice for big fresh buffers off (src/native/memory.ts), for an A/B of the advice.
if (args.includes('--no-huge-pages')) await import('../dist/native/memory.js').then((m) => m.setHugePageAdvice(false));
// Optional, so the script also runs on a checkout from before the libdeflate codec (for a before/after).
const gzipCodecStatus = await import('../dist/native/gzip-codec.js').then((m) => m.gzipCodecStatus, () => () => ({ reason: 'zlib (no libdeflate support in this build)' }));
// CPU time of the JS thread itself (Linux: /proc/self/task/<pid>/stat, 10 ms ticks), the part of the
// stages that blocks the event loop whatever the load; null elsewhere.
const mainThreadCpuMs = () => {
  try {
    const fields = readFileSync(`/proc/${process.pid}/task/${process.pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) * (1000 / 100);
  } catch {
    return null;
  }
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// The stand-in backend (bench/stand-in-backend.mjs): instant, or paced like a GPU.
const computing = args.includes('--computing-stand-in');
const backend = standInBackend({ gpuMsPerWindow, computing });
const { stats } = backend;

// Stage changes with their times; a stall is charged to every stage that ran during it.
const changes = [{ t: performance.now(), stage: 'idle' }];
const setStage = (name) => { if (changes.at(-1).stage !== name) changes.push({ t: performance.now(), stage: name }); };
const stagesBetween = (from, to) => {
  const names = new Set();
  for (let i = 0; i < changes.length; i++) {
    const end = i + 1 < changes.length ? changes[i + 1].t : Infinity;
    if (changes[i].t < to && end > from) names.add(changes[i].stage);
  }
  return [...names].join('+');
};
const stalls = [];
let currentVariant = '-';
let last = performance.now();
const watcher = setInterval(() => {
  const now = performance.now();
  if (now - last >= 11) stalls.push({ ms: +(now - last - 1).toFixed(1), stage: stagesBetween(last, now), variant: currentVariant });
  last = now;
}, 1);

const dir = await mkdtemp(path.join(os.tmpdir(), 'spleen-trt-gpu-pace-'));
try {
  const model = await loadModel();
  const phantom = makePhantom({ ...PHANTOMS[size], seed: 1 });
  const input = path.join(dir, 'ct.nii.gz');
  await writeNifti(input, phantom.image, { datatype: 'int16' });
  // stitch: the sliding window's gather + stitch + normalise time (kernel wall time where they run
  // on the pool, so it may overlap the stand-in); standIn: the stand-in's own logits loop (on this
  // thread), the "model computation" here.
  const newTimes = () => ({ read: [], preprocess: [], network: [], stitch: [], standIn: [], model: [], postprocess: [], write: [], total: [], totalMinusStandIn: [], totalMinusModel: [], segmentMainThreadCpu: [] });
  const timesByVariant = Object.fromEntries(variantSpecs.map((v) => [v, newTimes()]));
  const delay = monitorEventLoopDelay({ resolution: 2 });
  for (let r = 0; r <= runs; r++) {
    if (r === 1) {
      stalls.length = 0;
      changes.splice(0, changes.length - 1);
      delay.enable();
      delay.reset();
    }
    const variant = variantOf(r);
    currentVariant = variant;
    const times = timesByVariant[variant];
    setStitchTuning({ ...defaultTuning, ...parseTuning(variant) });
    const t0 = performance.now();
    backend.startRun();
    setStage('read');
    const { volume } = await readNifti(input);
    const t1 = performance.now();
    setStage('preprocess');
    const cpu0 = mainThreadCpuMs();
    const result = await segmentVolume(volume, backend, model.manifest.pipeline, {
      onProgress: (p) => setStage(p.stage),
    });
    const cpu1 = mainThreadCpuMs();
    setStage('write');
    const t2 = performance.now();
    await writeMaskNifti(path.join(dir, 'mask.nii.gz'), result.mask);
    const t3 = performance.now();
    setStage('idle');
    for (const [name, ms] of Object.entries(kernelRun)) {
      if (r > 0) ((kernelTimes[variant] ??= {})[name] ??= []).push(ms);
      delete kernelRun[name];
    }
    if (r > 0) {
      times.read.push(t1 - t0);
      times.preprocess.push(result.timings.preprocessMs);
      times.network.push(result.timings.networkMs);
      times.stitch.push(result.timings.stitchMs);
      times.standIn.push(stats.standInMs);
      times.postprocess.push(result.timings.postprocessMs);
      times.write.push(t3 - t2);
      times.total.push(t3 - t0);
      times.totalMinusStandIn.push(t3 - t0 - stats.standInMs);
      times.model.push(stats.modelMs);
      times.totalMinusModel.push(t3 - t0 - stats.standInMs - stats.modelMs);
      // segmentVolume's share of the JS thread (preprocess, sliding window, postprocess); the
      // stand-in's own loop (--computing-stand-in) excluded.
      if (cpu0 !== null) times.segmentMainThreadCpu.push(cpu1 - cpu0 - (computing ? stats.standInMs : 0));
    }
  }
  delay.disable();
  const medians = (times) => Object.fromEntries(Object.entries(times).filter(([k]) => k !== 'segmentMainThreadCpu').map(([k, v]) => [k, +median(v).toFixed(1)]));
  const times = timesByVariant[variantSpecs[0]];
  const maxima = (times) => Object.fromEntries(['network', 'stitch', 'total'].map((k) => [k, +Math.max(...times[k]).toFixed(1)]));
  const kernelMedians = (v) => Object.fromEntries(Object.entries(kernelTimes[v] ?? {}).map(([k, xs]) => [k, +median(xs).toFixed(1)]));
  const stallsByStage = (list) => {
    const out = {};
    for (const s of list) out[s.stage] = Math.max(out[s.stage] ?? 0, s.ms);
    return out;
  };
  const byStage = stallsByStage(stalls);
  console.log(JSON.stringify({
    size, shape: PHANTOMS[size].shape, runs, kernels: volumeKernelsStatus().reason, codec: gzipCodecStatus().reason, inflater: gzipCodecStatus().inflater ?? null,
    loadavg: os.loadavg().map((x) => +x.toFixed(2)),
    gpuMsPerWindow,
    medianMs: medians(times),
    ...(variantSpecs.length > 1 ? { variants: Object.fromEntries(variantSpecs.map((v) => [v, { runs: timesByVariant[v].total.length, medianMs: medians(timesByVariant[v]), maxMs: maxima(timesByVariant[v]), longestStallByStageMs: stallsByStage(stalls.filter((x) => x.variant === v)), ...(args.includes('--kernel-times') ? { kernelMs: kernelMedians(v) } : {}) }])) } : {}),
    // A mean: the clock ticks in 10 ms.
    segmentMainThreadCpuMsMean: times.segmentMainThreadCpu.length ? +(times.segmentMainThreadCpu.reduce((a, b) => a + b, 0) / runs).toFixed(1) : null,
    eventLoop: { p99Ms: +(delay.percentile(99) / 1e6).toFixed(1), maxMs: +(delay.max / 1e6).toFixed(1) },
    ...(args.includes('--kernel-times') ? { kernelMs: kernelMedians(variantSpecs[0]) } : {}),
    longestStallByStageMs: byStage,
    stallsOver10Ms: stalls.length,
    longestStalls: [...stalls].sort((a, b) => b.ms - a.ms).slice(0, 8).map(({ ms, stage, variant }) => (variantSpecs.length > 1 ? { ms, stage, variant } : { ms, stage })),
    peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
  }, null, 1));
} finally {
  clearInterval(watcher);
  await rm(dir, { recursive: true, force: true });
}
