/**
 * Test doubles for the native TensorRT layer and the addon's machine probe: they follow
 * src/native/tensorrt.ts's contract so the TS side is tested without a GPU.
 */
import { SpleenTrtError } from '../../../src/errors.js';
import type {
  MachineInfo,
  NativeBuildOptions,
  NativeBuildResult,
  NativeEngine,
  NativeEngineInfo,
  NativeLoadOptions,
  NativeRunResult,
  TensorRtDependencies,
  TensorRtLibraryStatus,
  TensorRtNativeApi,
} from '../../../src/inference/tensorrt-native.js';

/** A plan-shaped byte string: "ftrt" magic, version bytes at 24..27, then `body`. */
export function fakePlan(version: [number, number, number, number] = [10, 3, 0, 26], body = 'engine'): Uint8Array {
  const text = new TextEncoder().encode(body);
  const plan = new Uint8Array(32 + text.length);
  plan.set([0x66, 0x74, 0x72, 0x74], 0); // "ftrt"
  plan.set(version, 24);
  plan.set(text, 32);
  return plan;
}

export interface FakeGpu {
  name: string;
  computeCapability: string;
}

export const A100: FakeGpu = { name: 'NVIDIA A100-SXM4-80GB', computeCapability: '8.0' };
export const H100: FakeGpu = { name: 'NVIDIA H100 80GB HBM3', computeCapability: '9.0' };

/** What getNativeRuntimeInfo reports on a machine with these GPUs and TensorRT libraries. */
export function fakeMachine(gpus: FakeGpu[] = [A100], tensorrt: { available: boolean; reason?: string } = { available: true }): MachineInfo {
  return {
    available: true,
    addonPath: '/fake/spleen_trt.node',
    addonVersion: '0.1.0',
    napiVersion: 9,
    napiBuildVersion: 8,
    cuda: {
      driverAvailable: true,
      driverVersion: '12.4',
      devices: gpus.map((g, index) => ({ index, name: g.name, computeCapability: g.computeCapability, totalMemoryBytes: 80 * 2 ** 30, pciBusId: `0000:0${index}:00.0` })),
    },
    tensorrt: {
      available: tensorrt.available,
      version: tensorrt.available ? '10.3.0' : undefined,
      reason: tensorrt.reason,
      parserAvailable: tensorrt.available,
      builderResourceAvailable: tensorrt.available,
    },
    compiledWith: { cudaToolkit: '12.4.131', tensorrtHeaders: '10.3.0' },
  };
}

/**
 * A fake engine over `roi` windows with `channels` outputs: output[b][c][v] = input[b][v] * (c + 1)
 * + c. Like pinned staging memory, the returned output views one buffer that the next run
 * overwrites, so a caller that keeps it without copying sees the next batch's values.
 */
export class FakeEngine implements NativeEngine {
  readonly info: NativeEngineInfo;
  readonly runs: number[] = [];
  closed = false;
  active = 0;
  maxActive = 0;
  /** Make run() wait for this before computing (to hold runs in flight). */
  gate: Promise<void> = Promise.resolve();
  /** Make the next run() reject with this. */
  failNext: Error | undefined;
  readonly #staging: Float32Array;

  constructor(
    readonly roi: [number, number, number] = [4, 4, 4],
    readonly channels = 2,
    profile = { min: 1, opt: 4, max: 8 },
    version = '10.3.0',
  ) {
    this.info = {
      inputName: 'input_0',
      outputName: 'output_0',
      inputShapeMax: [profile.max, 1, ...roi],
      outputShapeMax: [profile.max, channels, ...roi],
      outputChannels: channels,
      profile,
      deviceMemoryBytes: 1 << 20,
      tensorrtVersion: version,
    };
    this.#staging = new Float32Array(profile.max * channels * roi[0] * roi[1] * roi[2]);
  }

  async run(input: Float32Array, batch: number): Promise<NativeRunResult> {
    if (this.closed) throw new SpleenTrtError('ERR_CLOSED', 'engine closed');
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      await this.gate;
      if (this.failNext) {
        const error = this.failNext;
        this.failNext = undefined;
        throw error;
      }
      const { min, max } = this.info.profile;
      if (batch < min || batch > max) throw new SpleenTrtError('ERR_INFERENCE_FAILED', `batch ${batch} outside the profile`);
      const v = this.roi[0] * this.roi[1] * this.roi[2];
      if (input.length !== batch * v) throw new SpleenTrtError('ERR_INFERENCE_FAILED', `input has ${input.length} values`);
      this.runs.push(batch);
      const out = this.#staging.subarray(0, batch * this.channels * v);
      for (let b = 0; b < batch; b++) {
        for (let c = 0; c < this.channels; c++) {
          for (let i = 0; i < v; i++) out[(b * this.channels + c) * v + i] = input[b * v + i] * (c + 1) + c;
        }
      }
      return { output: out, h2dMs: 0.5, computeMs: 2, d2hMs: 1, usedCudaGraph: true };
    } finally {
      this.active--;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

export interface FakeNativeOptions {
  version?: string;
  available?: boolean;
  reason?: string;
  /** Replaces the default build (which returns fakePlan(version)). */
  build?: (options: NativeBuildOptions) => Promise<NativeBuildResult>;
  /** Replaces the default load (which checks the magic and returns a FakeEngine). */
  load?: (plan: Uint8Array, options?: NativeLoadOptions) => Promise<NativeEngine>;
  engine?: () => FakeEngine;
}

/** A fake native module that records its calls. */
export class FakeNative implements TensorRtNativeApi {
  readonly builds: NativeBuildOptions[] = [];
  readonly loads: Array<{ plan: Uint8Array; options?: NativeLoadOptions }> = [];
  readonly engines: FakeEngine[] = [];
  constructor(readonly options: FakeNativeOptions = {}) {}

  get version(): string {
    return this.options.version ?? '10.3.0';
  }

  async getTensorRtLibraryStatus(): Promise<TensorRtLibraryStatus> {
    if (this.options.available === false) return { available: false, reason: this.options.reason ?? 'libnvinfer.so.10 not found' };
    return { available: true, version: this.version };
  }

  async buildEngineNative(options: NativeBuildOptions): Promise<NativeBuildResult> {
    this.builds.push(options);
    options.onProgress?.({ phase: 'parse', current: 1, total: 1 });
    if (this.options.build) return this.options.build(options);
    options.onProgress?.({ phase: 'tactics', current: 3, total: 3 });
    const [major, minor, patch] = this.version.split('.').map(Number);
    const cache = new Uint8Array([...(options.timingCache ?? []), this.builds.length]);
    return { plan: fakePlan([major, minor, patch ?? 0, 7], `built #${this.builds.length}`), timingCache: cache, tensorrtVersion: this.version, log: ['[W] a warning'] };
  }

  async loadEngineNative(plan: Uint8Array, options?: NativeLoadOptions): Promise<NativeEngine> {
    this.loads.push({ plan, options });
    if (this.options.load) return this.options.load(plan, options);
    const engine = this.options.engine?.() ?? new FakeEngine(undefined, undefined, undefined, this.version);
    this.engines.push(engine);
    return engine;
  }
}

/** Dependencies with a fake native module and a fake machine. */
export function fakeDeps(native: FakeNative = new FakeNative(), machine: MachineInfo = fakeMachine()): TensorRtDependencies & { native: FakeNative } {
  return { native, machineInfo: async () => machine };
}
