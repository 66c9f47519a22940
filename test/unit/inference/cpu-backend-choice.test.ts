/**
 * `backend: 'auto'`'s CPU choice: oneDNN only where libdnnl 2.x opened and the CPU has AVX-512.
 */
import { describe, expect, it } from 'vitest';
import { autoCpuBackend } from '../../../src/inference/cpu-backend-choice.js';
import type { OnednnInfo } from '../../../src/native/onednn.js';

const found: OnednnInfo = { available: true, version: '2.6.3', path: '/usr/lib/x86_64-linux-gnu/libdnnl.so.2', reason: null, isa: 'avx512_core' };

describe('autoCpuBackend', () => {
  it('picks oneDNN with AVX-512', () => {
    expect(autoCpuBackend(found)).toEqual({ name: 'onednn', reason: 'oneDNN 2.6.3 with AVX-512' });
  });

  it('picks onnxruntime below AVX-512 and without oneDNN, saying why', () => {
    expect(autoCpuBackend({ ...found, isa: 'below avx512_core' })).toEqual({
      name: 'onnxruntime',
      reason: 'oneDNN 2.6.3 found, but the CPU lacks AVX-512 (below avx512_core)',
    });
    const missing = { available: false, version: null, path: null, reason: 'oneDNN not found: libdnnl.so.2: cannot open', isa: null };
    expect(autoCpuBackend(missing)).toEqual({ name: 'onnxruntime', reason: 'no oneDNN 2.x (oneDNN not found: libdnnl.so.2: cannot open)' });
  });
});
