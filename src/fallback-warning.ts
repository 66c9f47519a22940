/**
 * The one warning a user gets when `backend: 'auto'` cannot use what the package or the machine
 * is meant for: the native addon did not load (no TensorRT backend, CPU stages in TypeScript), or
 * a CUDA GPU is there but TensorRT is not usable. Once per process, since a service may create
 * many Segmenters; `segmenter.info.fallbackReason` keeps the reason for each. A machine without a
 * GPU gets no warning when the addon loaded: onnxruntime on the CPU is what it should run.
 */
let warned = false;

/** Emits the warning (process 'warning' event, code SPLEEN_TRT_FALLBACK) if due; true when it did. */
export function warnFallbackOnce(reason: string): boolean {
  if (warned) return false;
  let message: string;
  if (reason.startsWith('native addon not loaded')) {
    message = `spleen-trt runs on onnxruntime (CPU) without its native addon, so without TensorRT and with the CPU stages in TypeScript: ${reason}`;
  } else if (reason.startsWith('no TensorRT') || reason.startsWith('TensorRT backend failed')) {
    message = `spleen-trt found a CUDA GPU but runs on onnxruntime (CPU): ${reason}. \`npx spleen-trt info\` shows what is missing.`;
  } else {
    return false;
  }
  warned = true;
  process.emitWarning(message, { code: 'SPLEEN_TRT_FALLBACK' });
  return true;
}
