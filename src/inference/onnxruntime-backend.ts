/**
 * The CPU backend: onnxruntime-node running any ONNX model with one input `[N, 1, d0, d1, d2]` and
 * one output `[N, C, d0, d1, d2]` (float32). Names, channel count and fixed dims are read from the
 * model, so the bundle's own export (`input_0`/`output_0`, dynamic batch) and this package's
 * builder output run alike.
 *
 * onnxruntime-node's `session.run` computes synchronously on the calling thread (it only defers to
 * setImmediate), which would freeze the event loop for ~0.3 s per 96^3 window. So by default the
 * session lives in a worker thread; `thread: 'main'` keeps it in-process (no copies, no thread).
 */
import { readRegularFile } from '../io/read-regular-file.js';
import { createRequire } from 'node:module';
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import type { InferenceSession } from 'onnxruntime-node';
import { expectedRange, expectedType, SpleenTrtError } from '../errors.js';
import type { Shape3 } from '../volume/volume.js';
import { checkBatchInput } from './check-batch-input.js';
import { volumeKernels } from '../native/volume-kernels.js';
import { uninitializedFloats } from '../volume/uninitialized.js';
import type { BatchResult, InferenceBackend } from './backend.js';
import { commandLineBytes, ortWorkerStackMb } from './ort-worker-stack.js';

/** Command-line bytes the main thread's 8 MiB stack survives in onnxruntime's telemetry regex (crashes near 50 KB). */
const MAIN_THREAD_SAFE_CMDLINE_BYTES = 16 * 1024;
/** Whether a session was created in this process, so the process-wide OrtEnv exists. */
let ortEnvCreated = false;

export interface OnnxRuntimeBackendOptions {
  /** Threads inside one operator (default: all cores, `os.availableParallelism()`). */
  intraOpThreads?: number;
  /** Threads across independent operators (default 1: the UNet is a chain). */
  interOpThreads?: number;
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /**
   * Where the session runs: `'worker'` (default) a worker thread, so the event loop stays free
   * during inference; `'main'` the calling thread (blocks it for the duration of each batch).
   */
  thread?: 'worker' | 'main';
}

/** One model value as the backend sees it: name and dims (number, symbolic name, or unknown). */
interface TensorSignature {
  name: string;
  type: string;
  dims: Array<number | string | null>;
}

interface RunOutput {
  data: Float32Array;
  dims: number[];
  type: string;
  computeMs: number;
}

/** A loaded session, in this thread or in a worker. */
interface SessionHost {
  readonly inputs: TensorSignature[];
  readonly outputs: TensorSignature[];
  readonly version: string;
  run(inputName: string, outputName: string, input: Float32Array, dims: number[]): Promise<RunOutput>;
  release(): Promise<void>;
}

type OrtModule = typeof import('onnxruntime-node');
type SessionOptions = InferenceSession.SessionOptions;

let ortModule: Promise<OrtModule> | undefined;

/** Loads onnxruntime-node on first use, so a platform without its binary fails here, not at import. */
function loadOrt(): Promise<OrtModule> {
  ortModule ??= import('onnxruntime-node').catch((error: unknown) => {
    ortModule = undefined;
    throw unavailable(error);
  });
  return ortModule;
}

function unavailable(error: unknown): SpleenTrtError {
  return new SpleenTrtError('ERR_BACKEND_UNAVAILABLE', `onnxruntime-node cannot be loaded: ${messageOf(error)}`, { cause: error });
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function checkThreads(value: unknown, name: string): void {
  if (value === undefined) return;
  if (typeof value !== 'number') throw expectedType('a positive integer', name, value);
  if (!Number.isInteger(value) || value < 1) throw expectedRange('a positive integer', name, value);
}

async function readModelBytes(model: Uint8Array | string): Promise<Uint8Array> {
  if (model instanceof Uint8Array) return model;
  if (typeof model !== 'string') throw expectedType('ONNX bytes (Uint8Array) or a file path', 'model', model);
  // Regular files only, size-checked first: a FIFO would block and /dev/zero never end.
  return readRegularFile(model, {
    what: 'ONNX model',
    maxBytes: 2 * 1024 ** 3,
    directoryError: (file) => new SpleenTrtError('ERR_MODEL_INVALID', `ONNX model ${file} is a directory`),
  });
}

function signatures(metadata: readonly InferenceSession.ValueMetadata[]): TensorSignature[] {
  return metadata.map((m) =>
    m.isTensor ? { name: m.name, type: m.type, dims: [...m.shape] } : { name: m.name, type: 'non-tensor', dims: [] },
  );
}

const describeDims = (s: TensorSignature): string => `[${s.dims.map((d) => (d === null ? '?' : String(d))).join(', ')}]`;

/** Checks the one-input/one-output volumetric signature; returns the output channel count. */
function checkSignature(inputs: TensorSignature[], outputs: TensorSignature[], source: string): number {
  const fail = (what: string): never => {
    throw new SpleenTrtError('ERR_MODEL_INVALID', `ONNX model ${source} is not a segmentation network: ${what}`);
  };
  if (inputs.length !== 1) fail(`expected 1 input, found ${inputs.length} (${inputs.map((s) => s.name).join(', ')})`);
  if (outputs.length !== 1) fail(`expected 1 output, found ${outputs.length} (${outputs.map((s) => s.name).join(', ')})`);
  const [input] = inputs;
  const [output] = outputs;
  for (const [role, s] of [
    ['input', input],
    ['output', output],
  ] as const) {
    if (s.type !== 'float32') fail(`${role} ${s.name} has type ${s.type}, expected float32`);
    if (s.dims.length !== 5) fail(`${role} ${s.name} has shape ${describeDims(s)}, expected [N, C, d0, d1, d2]`);
  }
  const inChannels = input.dims[1];
  if (typeof inChannels === 'number' && inChannels !== 1) {
    fail(`input ${input.name} has ${inChannels} channels (shape ${describeDims(input)}), expected 1`);
  }
  const channels = output.dims[1];
  if (typeof channels !== 'number' || channels < 1) {
    fail(`output ${output.name} has shape ${describeDims(output)}: its channel dimension must be a fixed number`);
  }
  return channels as number;
}

function runError(error: unknown, what: string): SpleenTrtError {
  const message = messageOf(error);
  const code = /allocat|out of memory|bad_alloc/i.test(message) ? 'ERR_OUT_OF_MEMORY' : 'ERR_INFERENCE_FAILED';
  return new SpleenTrtError(code, `onnxruntime failed on ${what}: ${message}`, { cause: error });
}

// ---------------------------------------------------------------- in-process session

async function mainThreadHost(bytes: Uint8Array, sessionOptions: SessionOptions, source: string): Promise<SessionHost> {
  const ort = await loadOrt();
  let session: InferenceSession;
  try {
    session = await ort.InferenceSession.create(bytes, sessionOptions);
  } catch (error) {
    throw new SpleenTrtError('ERR_MODEL_INVALID', `onnxruntime cannot load ONNX model ${source}: ${messageOf(error)}`, { cause: error });
  }
  let queue: Promise<void> = Promise.resolve();
  return {
    inputs: signatures(session.inputMetadata),
    outputs: signatures(session.outputMetadata),
    version: ort.env.versions.node ?? ort.env.versions.common,
    run(inputName, outputName, input, dims) {
      // One run at a time, in order, as in the worker (a queued run would compete for the threads).
      const run = queue.then(async () => {
        const t0 = performance.now();
        const out = (await session.run({ [inputName]: new ort.Tensor('float32', input, dims) }))[outputName];
        const computeMs = performance.now() - t0;
        if (!out || !('dims' in out)) throw new Error(`output ${outputName} is missing or not a tensor`);
        return { data: out.data as Float32Array, dims: [...out.dims], type: out.type, computeMs };
      });
      queue = run.then(
        () => undefined,
        () => undefined,
      );
      return run;
    },
    release: () => session.release(),
  };
}

/**
 * A transferable copy of a batch's input: made on the libuv pool by the addon where it is there
 * (no 14 MB copy on the JS thread per batch), else here.
 */
async function copyForTransfer(input: Float32Array): Promise<Float32Array<ArrayBuffer>> {
  const kernels = volumeKernels();
  if (kernels === null) return new Float32Array(input);
  const copy = uninitializedFloats(input.length) as Float32Array<ArrayBuffer>;
  await kernels.copyFloatsAsync(input, copy);
  return copy;
}

// ---------------------------------------------------------------- worker-thread session

/**
 * The worker's program (CommonJS, run with `eval: true` so it needs no file next to the compiled
 * module: the same source works from dist/ and from the TypeScript sources under vitest).
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { performance } = require('node:perf_hooks');
const messageOf = (e) => (e && e.message) || String(e);
let ort;
try {
  ort = require(workerData.ortPath);
} catch (e) {
  parentPort.postMessage({ type: 'unavailable', message: messageOf(e) });
}
if (ort) {
const signatures = (metadata) =>
  metadata.map((m) => (m.isTensor ? { name: m.name, type: m.type, dims: [...m.shape] } : { name: m.name, type: 'non-tensor', dims: [] }));
ort.InferenceSession.create(workerData.model, workerData.options).then(
  (session) => {
    parentPort.postMessage({
      type: 'ready',
      inputs: signatures(session.inputMetadata),
      outputs: signatures(session.outputMetadata),
      version: ort.env.versions.node || ort.env.versions.common,
    });
    const handle = async (msg) => {
      if (msg.type === 'close') {
        await session.release();
        parentPort.postMessage({ type: 'closed' });
        parentPort.close();
        return;
      }
      try {
        const t0 = performance.now();
        const out = (await session.run({ [msg.inputName]: new ort.Tensor('float32', msg.input, msg.dims) }))[msg.outputName];
        const computeMs = performance.now() - t0;
        if (!out || !out.dims) throw new Error('output ' + msg.outputName + ' is missing or not a tensor');
        const reply = { type: 'result', id: msg.id, data: out.data, dims: [...out.dims], dataType: out.type, computeMs };
        try {
          parentPort.postMessage(reply, [out.data.buffer]);
        } catch {
          parentPort.postMessage(reply); // a buffer that cannot be transferred is copied
        }
      } catch (e) {
        parentPort.postMessage({ type: 'runError', id: msg.id, message: messageOf(e) });
      }
    };
    // One message at a time, in order: a run that arrives while another computes waits here, so
    // the caller can queue the next batch and the session never idles between the two.
    let queue = Promise.resolve();
    parentPort.on('message', (msg) => {
      queue = queue.then(() => handle(msg));
    });
  },
  (e) => parentPort.postMessage({ type: 'loadError', message: messageOf(e) }),
);
}
`;

type WorkerMessage =
  | { type: 'ready'; inputs: TensorSignature[]; outputs: TensorSignature[]; version: string }
  | { type: 'unavailable' | 'loadError'; message: string }
  | { type: 'result'; id: number; data: Float32Array; dims: number[]; dataType: string; computeMs: number }
  | { type: 'runError'; id: number; message: string }
  | { type: 'closed' };

function workerHost(bytes: Uint8Array, sessionOptions: SessionOptions, source: string): Promise<SessionHost> {
  let ortPath: string;
  try {
    ortPath = createRequire(import.meta.url).resolve('onnxruntime-node');
  } catch (error) {
    return Promise.reject(unavailable(error));
  }
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    // The worker's source is CommonJS: a parent started with --input-type=module must not make it ESM.
    execArgv: process.execArgv.filter((a) => !a.startsWith('--input-type')),
    // Sized from the command line: onnxruntime's telemetry regex-matches it recursively (ort-worker-stack.ts).
    resourceLimits: { stackSizeMb: ortWorkerStackMb() },
    workerData: { ortPath, model: bytes, options: sessionOptions },
  });
  const pending = new Map<number, { resolve: (out: RunOutput) => void; reject: (error: unknown) => void }>();
  let nextId = 0;
  let failure: SpleenTrtError | undefined;
  let lastPosted: Promise<unknown> = Promise.resolve();
  let onClosed: (() => void) | undefined;

  return new Promise<SessionHost>((resolve, reject) => {
    const fail = (error: SpleenTrtError): void => {
      failure ??= error;
      reject(error);
      for (const p of pending.values()) p.reject(error);
      pending.clear();
      onClosed?.();
    };
    worker.on('error', (error) => fail(runError(error, 'its worker thread')));
    worker.on('exit', (code) => {
      // A clean exit after 'closed' is expected; anything else is a crash.
      fail(new SpleenTrtError('ERR_INFERENCE_FAILED', `The onnxruntime worker thread exited (code ${code})`));
    });
    worker.on('message', (msg: WorkerMessage) => {
      switch (msg.type) {
        case 'unavailable':
          fail(unavailable(new Error(msg.message)));
          void worker.terminate();
          return;
        case 'loadError':
          fail(new SpleenTrtError('ERR_MODEL_INVALID', `onnxruntime cannot load ONNX model ${source}: ${msg.message}`));
          void worker.terminate();
          return;
        case 'ready':
          // Idle workers must not keep the process alive; `ref` while runs are pending.
          worker.unref();
          resolve({
            inputs: msg.inputs,
            outputs: msg.outputs,
            version: msg.version,
            run(inputName, outputName, input, dims) {
              if (failure) return Promise.reject(failure);
              const id = nextId++;
              // Copy: the caller keeps its buffer; the copy is transferred, not cloned again. The
              // copy (14 MB for 4 windows) runs on the libuv pool where the addon has the kernel;
              // runs are still posted in the order they were asked for.
              const ready = Promise.all([copyForTransfer(input), lastPosted]);
              const posted = ready.then(([copy]) => {
                if (failure) throw failure;
                return new Promise<RunOutput>((resolveRun, rejectRun) => {
                  pending.set(id, { resolve: resolveRun, reject: rejectRun });
                  worker.ref();
                  worker.postMessage({ type: 'run', id, inputName, outputName, input: copy, dims }, [copy.buffer]);
                });
              });
              // Registered after the post above: the next run waits until this one is posted.
              lastPosted = ready.then(() => undefined, () => undefined);
              return posted;
            },
            release() {
              if (failure) return Promise.resolve();
              return new Promise<void>((resolveClose) => {
                onClosed = resolveClose;
                worker.ref();
                worker.postMessage({ type: 'close' });
              });
            },
          });
          return;
        case 'result':
        case 'runError': {
          const p = pending.get(msg.id);
          pending.delete(msg.id);
          if (pending.size === 0) worker.unref();
          if (!p) return;
          if (msg.type === 'result') p.resolve({ data: msg.data, dims: msg.dims, type: msg.dataType, computeMs: msg.computeMs });
          else p.reject(new Error(msg.message));
          return;
        }
        case 'closed':
          failure = new SpleenTrtError('ERR_CLOSED', 'The onnxruntime backend is closed');
          onClosed?.();
          return;
      }
    });
  });
}

// ---------------------------------------------------------------- the backend

/**
 * An InferenceBackend on onnxruntime-node's CPU provider. `model` is ONNX bytes or a file path.
 * Throws ERR_FILE_NOT_FOUND for a missing file, ERR_MODEL_INVALID for bytes onnxruntime cannot
 * load or a model without the `[N, 1, d0, d1, d2] -> [N, C, d0, d1, d2]` signature.
 * @example
 * const backend = await createOnnxRuntimeBackend(buildUnetOnnx(seededUnetWeights(1)));
 * const { logits } = await backend.run(new Float32Array(96 ** 3), 1, [96, 96, 96]);
 * await backend.close();
 */
export async function createOnnxRuntimeBackend(
  model: Uint8Array | string,
  options: OnnxRuntimeBackendOptions = {},
): Promise<InferenceBackend> {
  if (typeof options !== 'object' || options === null) throw expectedType('an options object', 'options', options);
  checkThreads(options.intraOpThreads, 'options.intraOpThreads');
  checkThreads(options.interOpThreads, 'options.interOpThreads');
  const level = options.graphOptimizationLevel ?? 'all';
  if (!['disabled', 'basic', 'extended', 'all'].includes(level)) {
    throw expectedRange('"disabled", "basic", "extended" or "all"', 'options.graphOptimizationLevel', level);
  }
  const thread = options.thread ?? 'worker';
  if (thread !== 'worker' && thread !== 'main') throw expectedRange('"worker" or "main"', 'options.thread', thread);
  const source = typeof model === 'string' ? model : `(${model instanceof Uint8Array ? model.length : 0} bytes)`;
  const bytes = await readModelBytes(model);
  const intraOpThreads = options.intraOpThreads ?? os.availableParallelism();
  const sessionOptions: SessionOptions = {
    executionProviders: ['cpu'],
    intraOpNumThreads: intraOpThreads,
    interOpNumThreads: options.interOpThreads ?? 1,
    graphOptimizationLevel: level,
    executionMode: 'sequential',
  };
  if (thread === 'main' && !ortEnvCreated && commandLineBytes() > MAIN_THREAD_SAFE_CMDLINE_BYTES) {
    // The process's OrtEnv is created once, by the first session: let a worker with a big enough
    // stack create it, since the main thread's stack is fixed (ort-worker-stack.ts).
    await (await workerHost(bytes, sessionOptions, source)).release();
  }
  const host = thread === 'worker' ? await workerHost(bytes, sessionOptions, source) : await mainThreadHost(bytes, sessionOptions, source);
  ortEnvCreated = true;
  let outputChannels: number;
  try {
    outputChannels = checkSignature(host.inputs, host.outputs, source);
  } catch (error) {
    await host.release();
    throw error;
  }
  return new OnnxRuntimeBackend(host, outputChannels, `onnxruntime-node ${host.version} CPU, ${intraOpThreads} intra-op threads, ${thread} thread`);
}

class OnnxRuntimeBackend implements InferenceBackend {
  readonly name = 'onnxruntime' as const;
  readonly inputName: string;
  readonly outputName: string;
  readonly description: string;
  private readonly input: TensorSignature;
  private readonly inFlight = new Set<Promise<unknown>>();
  private closing: Promise<void> | undefined;
  /** The model's fixed batch size, if its batch dim is not symbolic. */
  private readonly fixedBatch: number | undefined;

  constructor(
    private readonly host: SessionHost,
    readonly outputChannels: number,
    runtime: string,
  ) {
    [this.input] = host.inputs;
    const [output] = host.outputs;
    this.inputName = this.input.name;
    this.outputName = output.name;
    const batchDim = this.input.dims[0];
    this.fixedBatch = typeof batchDim === 'number' && batchDim > 0 ? batchDim : undefined;
    this.description = `${runtime}, ${this.inputName} ${describeDims(this.input)} -> ${this.outputName} ${describeDims(output)}`;
  }

  async run(input: Float32Array, batch: number, roi: Shape3): Promise<BatchResult> {
    if (this.closing) throw new SpleenTrtError('ERR_CLOSED', 'The onnxruntime backend is closed');
    const windowSize = checkBatchInput(input, batch, roi);
    for (let axis = 0; axis < 3; axis++) {
      const dim = this.input.dims[axis + 2];
      if (typeof dim === 'number' && dim !== roi[axis]) {
        throw new SpleenTrtError(
          'ERR_MODEL_INVALID',
          `The model's input ${this.inputName} ${describeDims(this.input)} is fixed at a different size than the ROI ${roi.join('x')}`,
        );
      }
    }
    const task = this.runBatches(input, batch, roi, windowSize);
    this.inFlight.add(task);
    try {
      return await task;
    } finally {
      this.inFlight.delete(task);
    }
  }

  private async runBatches(input: Float32Array, batch: number, roi: Shape3, windowSize: number): Promise<BatchResult> {
    const step = this.fixedBatch ?? batch;
    const outWindow = this.outputChannels * windowSize;
    let computeMs = 0;
    const logits = step === batch ? undefined : new Float32Array(batch * outWindow);
    for (let start = 0; start < batch; start += step) {
      const count = Math.min(step, batch - start);
      let chunk = input.subarray(start * windowSize, (start + count) * windowSize);
      if (count < step) {
        // A fixed-batch model gets its last chunk zero-padded; the padding's output is dropped.
        const padded = new Float32Array(step * windowSize);
        padded.set(chunk);
        chunk = padded;
      }
      let out: RunOutput;
      try {
        out = await this.host.run(this.inputName, this.outputName, chunk, [step, 1, ...roi]);
      } catch (error) {
        if (error instanceof SpleenTrtError) throw error;
        throw runError(error, `a batch of ${step} windows ${roi.join('x')}`);
      }
      computeMs += out.computeMs;
      const expected = [step, this.outputChannels, ...roi];
      if (out.type !== 'float32' || out.dims.length !== 5 || out.dims.some((d, i) => d !== expected[i])) {
        throw new SpleenTrtError(
          'ERR_INFERENCE_FAILED',
          `The model's output ${this.outputName} is ${out.type} [${out.dims.join(', ')}], expected float32 [${expected.join(', ')}]`,
        );
      }
      if (!logits) return { logits: out.data, timings: { computeMs } };
      logits.set(out.data.subarray(0, count * outWindow), start * outWindow);
    }
    return { logits: logits as Float32Array, timings: { computeMs } };
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      // Wait for in-flight runs (their failures belong to their callers), then free the session.
      await Promise.allSettled([...this.inFlight]);
      await this.host.release();
    })();
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
