/**
 * Reading the next input while the current one is in the network (`infer` on several files, the
 * service's in-process queue). It pays where the network runs on a GPU: the CPU and the event loop
 * are idle meanwhile, so the next file's read and decompression come for free. With a CPU backend
 * the network already uses every core and the read only competes with it (README, Benchmark), so
 * there it is off unless asked for. `SPLEEN_TRT_READ_AHEAD=1` / `=0` forces it on / off (for measuring).
 * Holds at most one volume ahead.
 */
import type { BackendName } from '../inference/backend.js';

type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

function settle<T>(promise: Promise<T>): Promise<Settled<T>> {
  // Settled at once into a value: a failed read ahead is reported when its turn comes, never as an unhandled rejection.
  return promise.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
}

/** Whether `infer` and the service read ahead with this backend (and environment). */
export function readAheadWanted(backend: BackendName, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.SPLEEN_TRT_READ_AHEAD === '1') return true;
  if (env.SPLEEN_TRT_READ_AHEAD === '0') return false;
  return backend === 'tensorrt';
}

export interface ReadAhead<T> {
  /** `file`'s result: the read started ahead for it, or a read started now. */
  read(file: string): Promise<T>;
  /** Starts reading `file` for the next read(file) call (a no-op when read-ahead is off). */
  prefetch(file: string): void;
}

export function readAhead<T>(enabled: boolean, read: (file: string) => Promise<T>): ReadAhead<T> {
  let pending: { file: string; result: Promise<Settled<T>> } | undefined;
  return {
    async read(file) {
      const result = pending?.file === file ? pending.result : settle(read(file));
      pending = undefined;
      const settled = await result;
      if (!settled.ok) throw settled.error;
      return settled.value;
    },
    prefetch(file) {
      if (enabled) pending = { file, result: settle(Promise.resolve().then(() => read(file))) };
    },
  };
}
