import { describe, expect, it } from 'vitest';
import { readAhead, readAheadWanted } from '../../../src/io/read-ahead.js';

describe('readAhead', () => {
  it('reads the next file while the caller works, and hands that read over when its turn comes', async () => {
    const started: string[] = [];
    const reader = readAhead(true, async (file: string) => {
      started.push(file);
      return `volume of ${file}`;
    });
    expect(await reader.read('a')).toBe('volume of a');
    reader.prefetch('b');
    // Started before the caller asks for it.
    await Promise.resolve();
    expect(started).toEqual(['a', 'b']);
    expect(await reader.read('b')).toBe('volume of b');
    // Not read twice; a file other than the prefetched one is read on demand.
    reader.prefetch('c');
    expect(await reader.read('d')).toBe('volume of d');
    expect(started.slice(0, 2)).toEqual(['a', 'b']);
    expect(started.slice(2).sort()).toEqual(['c', 'd']);
  });

  it('reports a failed read ahead at its turn, not as an unhandled rejection', async () => {
    const reader = readAhead(true, async (file: string) => {
      if (file === 'bad') throw new Error('corrupt');
      return file;
    });
    reader.prefetch('bad');
    await new Promise((resolve) => setTimeout(resolve, 10));
    await expect(reader.read('bad')).rejects.toThrow('corrupt');
    expect(await reader.read('good')).toBe('good');
  });

  it('reads nothing ahead when off', async () => {
    const started: string[] = [];
    const reader = readAhead(false, async (file: string) => {
      started.push(file);
      return file;
    });
    reader.prefetch('b');
    await Promise.resolve();
    expect(started).toEqual([]);
    expect(await reader.read('b')).toBe('b');
    expect(started).toEqual(['b']);
  });

  it('is on for TensorRT, off for onnxruntime on the CPU, and SPLEEN_TRT_READ_AHEAD overrides both', () => {
    expect(readAheadWanted('tensorrt', {})).toBe(true);
    expect(readAheadWanted('onnxruntime', {})).toBe(false);
    expect(readAheadWanted('onnxruntime', { SPLEEN_TRT_READ_AHEAD: '1' })).toBe(true);
    expect(readAheadWanted('tensorrt', { SPLEEN_TRT_READ_AHEAD: '0' })).toBe(false);
  });
});
