import { describe, expect, it } from 'vitest';
import { volumeKernels, volumeKernelsStatus } from '../../../src/native/volume-kernels.js';

describe('CPU kernel selection', () => {
  it.runIf(process.env.SPLEEN_TRT_JS_KERNELS === '1')('SPLEEN_TRT_JS_KERNELS=1 runs the TypeScript loops', () => {
    expect(volumeKernels()).toBeNull();
    expect(volumeKernelsStatus()).toEqual({ native: false, reason: 'TypeScript loops (SPLEEN_TRT_JS_KERNELS=1)' });
  });

  it.runIf(process.env.SPLEEN_TRT_JS_KERNELS !== '1')('uses the kernels exactly when the status says so', () => {
    expect(volumeKernels() !== null).toBe(volumeKernelsStatus().native);
  });
});
