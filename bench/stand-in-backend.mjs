/**
 * The benches' stand-in inference backend: channel 1 = 20 * (intensity - 0.95), channel 0 = its
 * negative: sure almost everywhere, with a thin undecided shell, as a trained model's logits are.
 * Each batch's logits are computed on the first run (the warm-up) and handed out again on later
 * runs (the same volume each time, so the same logits), so that the stand-in takes no CPU from
 * the stages measured, as a GPU would not (its cache holds a volume's logits: ~350 MB for 50
 * windows). Answers at once, or with `gpuMsPerWindow` > 0 like a GPU's serial queue on a timer
 * (each batch starts when the one before has ended and takes windows x gpuMsPerWindow ms, no
 * CPU). `computing`: the logits computed on every run instead, on this thread.
 *
 * `startRun()` before each volume; `stats` then holds that run's `standInMs` (the stand-in's own
 * loop on this thread) and `modelMs` (the simulated GPU time).
 */
export function standInBackend({ gpuMsPerWindow = 0, computing = false } = {}) {
  const cache = [];
  const stats = { standInMs: 0, modelMs: 0 };
  let batchIndex = 0;
  let gpuFreeAt = 0;
  return {
    name: 'onnxruntime', inputName: 'x', outputName: 'y', outputChannels: 2, description: 'instant stand-in',
    stats,
    startRun() {
      batchIndex = 0;
      stats.standInMs = 0;
      stats.modelMs = 0;
    },
    async run(input, batch, roi) {
      const index = batchIndex++;
      if (!computing && cache[index] !== undefined) {
        if (gpuMsPerWindow > 0) {
          // Batches run one after another on the GPU: this one starts when the one before ends.
          const start = Math.max(performance.now(), gpuFreeAt);
          gpuFreeAt = start + batch * gpuMsPerWindow;
          stats.modelMs += batch * gpuMsPerWindow;
          await new Promise((resolve) => setTimeout(resolve, gpuFreeAt - performance.now()));
          return { logits: cache[index], timings: { computeMs: batch * gpuMsPerWindow } };
        }
        await new Promise((resolve) => setImmediate(resolve));
        return { logits: cache[index], timings: { computeMs: 0 } };
      }
      const n = roi[0] * roi[1] * roi[2];
      const logits = new Float32Array(batch * 2 * n);
      if (!computing) cache[index] = logits;
      for (let b = 0; b < batch; b++) {
        // One window at a time with the event loop free in between: the stand-in's own loop is not
        // what is measured.
        await new Promise((resolve) => setImmediate(resolve));
        const t = performance.now();
        for (let v = 0; v < n; v++) {
          const x = (input[b * n + v] - 0.95) * 20;
          logits[b * 2 * n + v] = -x;
          logits[b * 2 * n + n + v] = x;
        }
        stats.standInMs += performance.now() - t;
      }
      return { logits, timings: { computeMs: 0 } };
    },
    async close() {},
  };
}
