/**
 * The one interface every inference backend (onnxruntime CPU, TensorRT) implements: run a batch of
 * ROI windows through the network and return logits. Everything around the network (sliding
 * window, stitching) is backend-independent and lives in sliding-window.ts.
 */
import type { Shape3 } from '../volume/volume.js';

export type BackendName = 'onnxruntime' | 'onednn' | 'tensorrt';

/** Timings of one batch, in trtexec's words (h2d/d2h only where a device copy exists). */
export interface BatchTimings {
  h2dMs?: number;
  computeMs: number;
  d2hMs?: number;
}

export interface BatchResult {
  /** `[batch][outputChannels][roi0][roi1][roi2]` float32 logits, C order. */
  logits: Float32Array;
  timings: BatchTimings;
}

export interface InferenceBackend {
  readonly name: BackendName;
  /** Input and output tensor names as the model declares them. */
  readonly inputName: string;
  readonly outputName: string;
  /** Number of output channels C (2 for the spleen bundle). */
  readonly outputChannels: number;
  /** Human-readable detail for runtime info (provider, threads, precision...). */
  readonly description: string;
  /**
   * Runs `batch` windows. `input` is `[batch][1][roi0][roi1][roi2]` float32, C order. The backend
   * must not keep a reference to `input` after the promise settles.
   */
  run(input: Float32Array, batch: number, roi: Shape3): Promise<BatchResult>;
  /** Frees the session/engine; idempotent. */
  close(): Promise<void>;
}
