import { defineConfig } from 'vitest/config';

// Three projects, as in the architecture guide: `unit` runs anywhere, `native` needs the built
// addon (no GPU), `gpu` skips itself where no GPU and TensorRT are present. Anything that loads a
// native module (the addon, onnxruntime-node) runs in forked processes: worker threads and native
// addons with process-wide state do not mix.
export default defineConfig({
  test: {
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      { extends: true, test: { name: 'native', include: ['test/native/**/*.test.ts'] } },
      { extends: true, test: { name: 'gpu', include: ['test/gpu/**/*.test.ts'] } },
    ],
  },
});
