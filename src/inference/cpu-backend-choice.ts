/**
 * The CPU backend `backend: 'auto'` runs when it does not use TensorRT: oneDNN where libdnnl 2.x
 * opened and the CPU has AVX-512 (oneDNN's 16-channel kernels), where it was measured about twice
 * as fast as onnxruntime per window (README, "oneDNN CPU backend"); onnxruntime elsewhere (on
 * AVX2 and older CPUs oneDNN was not measured faster) and for models oneDNN cannot run.
 */
import { onednnInfo, type OnednnInfo } from '../native/onednn.js';

export interface CpuBackendChoice {
  name: 'onednn' | 'onnxruntime';
  /** Why, in words: for `info` and logs. */
  reason: string;
}

export function autoCpuBackend(info: OnednnInfo = onednnInfo()): CpuBackendChoice {
  if (!info.available) return { name: 'onnxruntime', reason: `no oneDNN 2.x (${info.reason ?? 'unavailable'})` };
  if (info.isa !== 'avx512_core') return { name: 'onnxruntime', reason: `oneDNN ${info.version} found, but the CPU lacks AVX-512 (${info.isa})` };
  return { name: 'onednn', reason: `oneDNN ${info.version} with AVX-512` };
}
