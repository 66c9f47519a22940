// The TS side of a loaded engine (TensorRtEngine over the addon's engineRun/engineClose), driven
// by a stand-in addon so close semantics and error conversion are checked without a GPU. The
// stand-in mimics the native contract: close() settles after every accepted run.
import { describe, expect, it } from 'vitest';
import { isSpleenTrtError, SpleenTrtError } from '../../src/errors.js';
import { TensorRtEngine, type RawEngineInfo, type TensorRtAddon, type NativeRunResult } from '../../src/native/tensorrt.js';

// Local on purpose (not test/helpers): a test below checks that the error's stack names this file,
// and async stack traces only reach back as far as the function that awaits the rejection.
async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

const ITEM = 1 * 4 * 4 * 4; // C * d0 * d1 * d2 of the info below

function rawInfo(): RawEngineInfo {
  return {
    inputName: 'input_0',
    outputName: 'output_0',
    inputShapeMax: [8, 1, 4, 4, 4],
    outputShapeMax: [8, 2, 4, 4, 4],
    outputChannels: 2,
    profile: { min: 1, opt: 4, max: 8 },
    deviceMemoryBytes: 1234,
    tensorrtVersion: '10.13.0',
    log: ['[I] loaded'],
  };
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}
function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

class FakeAddon {
  runs: Array<{ batch: number; done: Deferred<NativeRunResult> }> = [];
  closeCalls = 0;
  private inFlight = new Set<Promise<unknown>>();

  engineRun(_handle: object, _input: Float32Array, batch: number): Promise<NativeRunResult> {
    const done = deferred<NativeRunResult>();
    this.runs.push({ batch, done });
    const settled = done.promise.catch(() => undefined);
    this.inFlight.add(settled);
    void settled.then(() => this.inFlight.delete(settled));
    return done.promise;
  }

  async engineClose(): Promise<void> {
    this.closeCalls += 1;
    await Promise.all([...this.inFlight]);
  }

  asAddon(): TensorRtAddon {
    return this as unknown as TensorRtAddon;
  }
}

function result(batch: number): NativeRunResult {
  return { output: new Float32Array(batch * 2 * ITEM), h2dMs: 0.5, computeMs: 2, d2hMs: 1, usedCudaGraph: true };
}


describe('TensorRtEngine', () => {
  it('exposes a frozen copy of the info without the load log', () => {
    const engine = new TensorRtEngine(new FakeAddon().asAddon(), {}, rawInfo());
    expect(engine.info).toEqual({
      inputName: 'input_0',
      outputName: 'output_0',
      inputShapeMax: [8, 1, 4, 4, 4],
      outputShapeMax: [8, 2, 4, 4, 4],
      outputChannels: 2,
      profile: { min: 1, opt: 4, max: 8 },
      deviceMemoryBytes: 1234,
      tensorrtVersion: '10.13.0',
    });
    expect(Object.isFrozen(engine.info)).toBe(true);
  });

  it('validates input and batch before calling the addon', async () => {
    const fake = new FakeAddon();
    const engine = new TensorRtEngine(fake.asAddon(), {}, rawInfo());
    expect(await rejection(engine.run(new Float64Array(ITEM) as unknown as Float32Array, 1))).toBeInstanceOf(TypeError);
    const tooBig = await rejection(engine.run(new Float32Array(9 * ITEM), 9));
    expect(tooBig).toBeInstanceOf(RangeError);
    expect(tooBig.message).toBe('Expected an integer in [1, 8] for batch but received 9');
    const wrongLength = await rejection(engine.run(new Float32Array(ITEM), 2));
    expect(wrongLength).toBeInstanceOf(RangeError);
    expect(wrongLength.message).toContain(`batch * ${ITEM} = ${2 * ITEM} floats`);
    expect(fake.runs).toHaveLength(0);
  });

  it('passes results through and converts native rejections into SpleenTrtError', async () => {
    const fake = new FakeAddon();
    const engine = new TensorRtEngine(fake.asAddon(), {}, rawInfo());
    const ok = engine.run(new Float32Array(2 * ITEM), 2);
    // Awaited before it fails, as callers do: the re-created error's async stack reaches here.
    const failing = rejection(engine.run(new Float32Array(ITEM), 1));
    expect(fake.runs.map((run) => run.batch)).toEqual([2, 1]);
    fake.runs[0].done.resolve(result(2));
    const native = Object.assign(new Error('TensorRT enqueueV3 failed'), { code: 'ERR_INFERENCE_FAILED', details: ['[E] bad'] });
    fake.runs[1].done.reject(native);

    expect((await ok).output).toHaveLength(2 * 2 * ITEM);
    const error = await failing;
    expect(error).toBeInstanceOf(SpleenTrtError);
    expect((error as SpleenTrtError).code).toBe('ERR_INFERENCE_FAILED');
    expect((error as SpleenTrtError).details).toEqual(['[E] bad']);
    expect(error.cause).toBe(native);
    expect(error.stack).toContain('tensorrt-engine.test.ts');
  });

  it('close() is idempotent, waits for in-flight runs, and later runs reject with ERR_CLOSED', async () => {
    const fake = new FakeAddon();
    const engine = new TensorRtEngine(fake.asAddon(), {}, rawInfo());
    const pending = [engine.run(new Float32Array(ITEM), 1), engine.run(new Float32Array(4 * ITEM), 4)];
    let closed = false;
    const first = engine.close().then(() => {
      closed = true;
    });
    const second = engine.close();
    expect(fake.closeCalls).toBe(1);

    await new Promise((resolve) => setImmediate(resolve));
    expect(closed).toBe(false); // two runs still in flight
    fake.runs[0].done.resolve(result(1));
    fake.runs[1].done.resolve(result(4));
    const results = await Promise.all(pending);
    await Promise.all([first, second]);
    expect(closed).toBe(true);
    expect(results.map((r) => r.output.length)).toEqual([2 * ITEM, 4 * 2 * ITEM]);

    const after = await rejection(engine.run(new Float32Array(ITEM), 1));
    expect(isSpleenTrtError(after, 'ERR_CLOSED')).toBe(true);
    expect(fake.runs).toHaveLength(2);
    await engine.close();
    expect(fake.closeCalls).toBe(1);
  });
});
