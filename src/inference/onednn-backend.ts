/**
 * The oneDNN CPU backend: the model's graph (its torch-export-like form: plain ConvTranspose,
 * PRelu) translated by onednn-plan.ts and run by the addon with oneDNN 2.x's primitives in
 * blocked layouts, on the libuv pool (the event loop stays free). Opt-in with
 * `backend: 'onednn'`; libdnnl.so.2 is opened at run time, never linked.
 *
 * Threads: Debian's libdnnl2 uses OpenMP; `threads` is set with omp_set_num_threads on the thread
 * that runs each batch, else OpenMP's default applies (OMP_NUM_THREADS, else all cores).
 */
import { SpleenTrtError } from '../errors.js';
import { createOnednnNetwork, onednnInfo, toSpleenError, type OnednnNetworkHandle } from '../native/onednn.js';
import type { Shape3 } from '../volume/volume.js';
import { checkBatchInput } from './check-batch-input.js';
import type { BatchResult, InferenceBackend } from './backend.js';
import { onednnNetworkSpec, type OnednnNetworkSpec, type OnednnPlanOptions } from './onednn-plan.js';

/** Opens the backend for `onnx` (ModelProto bytes); ERR_BACKEND_UNAVAILABLE without oneDNN or for an op it lacks. */
export function createOnednnBackend(
  onnx: Uint8Array,
  names: { inputName: string; outputName: string },
  options: { threads?: number } & OnednnPlanOptions & Pick<OnednnNetworkSpec, 'directConv' | 'subpixelSplit' | 'channelsLast'> = {},
): InferenceBackend {
  const info = onednnInfo();
  if (!info.available) throw new SpleenTrtError('ERR_BACKEND_UNAVAILABLE', `oneDNN backend unavailable: ${info.reason}`);
  const spec = onednnNetworkSpec(onnx, { upSampling: options.upSampling });
  if (spec.inputChannels !== 1) throw new SpleenTrtError('ERR_BACKEND_UNAVAILABLE', 'The oneDNN backend runs single-channel models');
  const threads = options.threads ?? 0;
  const network = createOnednnNetwork({
    ...spec,
    threads,
    directConv: options.directConv ?? true,
    subpixelSplit: options.subpixelSplit ?? true,
    // brgconv, oneDNN 2.6's AVX-512 kernels for channels-last tensors, measured a few % faster
    // here than its blocked-layout JIT kernels (bench/onednn-vs-ort.mjs); below AVX-512, blocked.
    channelsLast: options.channelsLast ?? info.isa === 'avx512_core',
  });
  const count = threads > 0 ? String(threads) : process.env.OMP_NUM_THREADS ?? 'all';
  const description = `oneDNN ${info.version} CPU fp32 (${info.isa}, ${count} OpenMP threads)`;
  return new OnednnBackend(network, names.inputName, names.outputName, description);
}

class OnednnBackend implements InferenceBackend {
  readonly name = 'onednn' as const;
  readonly outputChannels: number;
  private readonly inFlight = new Set<Promise<unknown>>();
  private closing: Promise<void> | undefined;

  constructor(
    private readonly network: OnednnNetworkHandle,
    readonly inputName: string,
    readonly outputName: string,
    readonly description: string,
  ) {
    this.outputChannels = network.outputChannels;
  }

  async run(input: Float32Array, batch: number, roi: Shape3): Promise<BatchResult> {
    if (this.closing) throw new SpleenTrtError('ERR_CLOSED', 'The oneDNN backend is closed');
    checkBatchInput(input, batch, roi);
    const task = (async () => {
      let out;
      try {
        out = await this.network.run(input, batch, roi);
      } catch (error) {
        throw toSpleenError(error);
      }
      const { computeMs } = out;
      if (out.dims.some((d, i) => d !== roi[i])) {
        throw new SpleenTrtError('ERR_INFERENCE_FAILED', `The network's output is ${out.dims.join('x')} for a ${roi.join('x')} window`);
      }
      return { logits: out.logits, timings: { computeMs } };
    })();
    this.inFlight.add(task);
    try {
      return await task;
    } finally {
      this.inFlight.delete(task);
    }
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.allSettled([...this.inFlight]);
      this.network.close();
    })();
    return this.closing;
  }
}
