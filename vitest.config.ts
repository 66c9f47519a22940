import { defineConfig } from 'vitest/config';

// Projects as in the architecture guide: `unit` runs anywhere, `native` needs the built addon (no
// GPU), `gpu` skips itself where no GPU and TensorRT are present; `unit-ts-kernels` repeats the
// pipeline's unit tests without the addon's CPU kernels. Anything that loads a native module (the
// addon, onnxruntime-node) runs in forked processes: worker threads and native addons with
// process-wide state do not mix.
export default defineConfig({
  test: {
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      { extends: true, test: { name: 'native', include: ['test/native/**/*.test.ts'] } },
      // The pipeline's tests once more on the TypeScript loops the addon's CPU kernels replace, so
      // the fallback is checked against the MONAI fixtures too, not only against the kernels.
      {
        extends: true,
        test: {
          name: 'unit-ts-kernels',
          include: ['test/unit/{volume,inference,nifti,parity}/**/*.test.ts'],
          env: { SPLEEN_TRT_JS_KERNELS: '1' },
        },
      },
      { extends: true, test: { name: 'gpu', include: ['test/gpu/**/*.test.ts'] } },
      // The package as users install it: npm pack, npm install into a temporary project with no
      // compiler on PATH, then the CLI and the library from there (test/package/pack-install.test.ts).
      { extends: true, test: { name: 'package', include: ['test/package/**/*.test.ts'] } },
    ],
  },
});
